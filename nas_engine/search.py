"""`Search`: one search, advanced a step at a time so that a CLI loop and a live thread can both
drive it, pause between steps and checkpoint anywhere.

A step is one α update and one w update. Records come out at logging points only (every
`record.log_every` steps, and at each epoch end); between them nothing leaves the device.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import numpy as np
import torch

from nas_engine.config import SearchConfig
from nas_engine.data import load_images, make_streams
from nas_engine.device import configure_threads, resolve_device
from nas_engine.diagnostics import mean_entropy
from nas_engine.model import SearchModel
from nas_engine.spaces import make_space
from nas_engine.store import RunFolder
from nas_engine.strategies import StepResult, make_strategy

Record = dict[str, Any]

# Model initialisation draws from torch's process-wide RNG; runs built one at a time each get
# exactly their seed's weights even when several start together.
_BUILD_LOCK = threading.Lock()


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: the run cannot go on from here."""

    def __init__(self, step: int, train_loss: float, val_loss: float) -> None:
        super().__init__(
            f"step {step}: the loss is not finite (train loss {train_loss}, val loss "
            f"{val_loss}); try a smaller optim.w_lr or optim.alpha_lr"
        )
        self.step = step


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rows(probs: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 6) for v in row] for row in probs]


class Search:
    def __init__(self, config: SearchConfig, folder: RunFolder | None = None) -> None:
        self.config = config.validate()
        self.folder = folder
        self.device = resolve_device(config.device)
        configure_threads(self.device, config.threads)
        data = config.data
        images = load_images(data.name, data.root, data.download, data.resize, data.subset,
                             config.seed)
        self.space = make_space(config)
        with _BUILD_LOCK:
            seed_everything(config.seed)
            self.model = SearchModel(self.space, images.in_channels, images.num_classes,
                                     images.image_size).to(self.device)
        self.strategy = make_strategy(self.model, config)
        self.train_stream, self.val_stream = make_streams(
            images, data.train_portion, data.batch_size, config.seed, self.device, data.augment
        )
        self.steps_per_epoch = len(self.train_stream)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step_count = 0  # search steps done, over all epochs
        self.epoch = 0  # epochs completed
        self.elapsed_before = 0.0  # search time of earlier sessions (resume)
        self._started = time.perf_counter()
        self._unchecked: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self._reset_epoch_sums()

    # -- progress --------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    @property
    def step_in_epoch(self) -> int:
        return self.step_count - self.epoch * self.steps_per_epoch

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._started

    def _reset_epoch_sums(self) -> None:
        zero = torch.zeros((), device=self.device)
        self._loss_sum, self._correct_sum = zero, zero.clone()
        self._seen = 0

    # -- stepping --------------------------------------------------------------------------
    def step(self) -> list[Record]:
        """One search step; returns the records it produced (none, a step record, and/or the
        epoch record when it ended an epoch)."""
        if self.done:
            raise RuntimeError("the search has already run all its epochs")
        self.model.train()
        result = self.strategy.step(self.train_stream.next(), self.val_stream.next(),
                                    self.step_count / self.total_steps)
        self._accumulate(result)
        self.step_count += 1
        self._unchecked.append((self.step_count, result.train_loss, result.val_loss))
        records = []
        if self.step_count % self.config.record.log_every == 0:
            self._check_finite()
            records.append(self._step_record(result))
            self._emit(records[-1])
        if self.step_in_epoch == self.steps_per_epoch:
            self._check_finite()
            records.append(self._end_epoch())
        return records

    def _emit(self, record: Record) -> None:
        if self.folder is not None:
            self.folder.append_record(record)

    def _check_finite(self) -> None:
        """One host sync per logging point checks every step since the last one."""
        if not self._unchecked:
            return
        losses = torch.stack([torch.stack([t, v]) for _, t, v in self._unchecked])
        finite = torch.isfinite(losses).all(dim=1)
        if not bool(finite.all()):
            step, train_loss, val_loss = self._unchecked[int((~finite).nonzero()[0, 0])]
            raise NonFiniteLossError(step, train_loss.item(), val_loss.item())
        self._unchecked.clear()

    def run(self) -> list[Record]:
        records = []
        while not self.done:
            records.extend(self.step())
        return records

    def _accumulate(self, result: StepResult) -> None:
        n = result.batch_size
        self._loss_sum = self._loss_sum + result.train_loss * n
        self._correct_sum = self._correct_sum + result.train_correct
        self._seen += n

    def _arch_fields(self) -> Record:
        probs = self.model.softmax_alphas()
        genotype = self.space.derive(probs)
        return {
            "alphas": {cell: _rows(p) for cell, p in probs.items()},
            "alphas_raw": {cell: _rows(a) for cell, a in self.model.raw_alphas().items()},
            "genotype": self.space.genotype_dict(genotype),
            "skip_count": self.space.skip_count(genotype),
            "entropy": mean_entropy(probs),
            "live": self.strategy.live_values(),
            "regularizers": self.strategy.regularizers.record(self.step_count / self.total_steps),
        }

    def _step_record(self, result: StepResult) -> Record:
        return {
            "kind": "step",
            "epoch": self.epoch,
            "step": self.step_count,
            "time_s": round(self.elapsed(), 4),
            "train_loss": result.train_loss.item(),
            "train_acc": result.train_correct.item() / result.batch_size,
            "val_loss": result.val_loss.item(),
            **self._arch_fields(),
        }

    def _end_epoch(self) -> Record:
        val_loss, val_acc = self.evaluate()
        self.epoch += 1
        record = {
            "kind": "epoch",
            "epoch": self.epoch,
            "step": self.step_count,
            "time_s": round(self.elapsed(), 4),
            "train_loss": (self._loss_sum / self._seen).item(),
            "train_acc": self._correct_sum.item() / self._seen,
            "val_loss": val_loss,
            "val_acc": val_acc,
            **self._arch_fields(),
        }
        self.strategy.after_epoch(self.epoch)
        self._reset_epoch_sums()
        self._emit(record)
        if self.folder is not None:
            self.folder.write_genotype(record["genotype"])
            if self.config.record.checkpoint:
                self.folder.save_checkpoint(self.state_dict(), self.epoch)
        return record

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Loss and accuracy of the supernet on the whole validation split (eval mode, as
        DARTS' `infer`)."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        count = 0
        for x, y in self.val_stream.iter_pass():
            logits = self.model(x)
            loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            count += y.shape[0]
        self.model.train()
        return (loss_sum / count).item(), correct.item() / count

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs: weights, α, optimisers, data order (the streams
        own their RNGs), and how many metrics records belong before this point."""
        return {
            "model": self.model.state_dict(),
            "strategy": self.strategy.state_dict(),
            "train_stream": self.train_stream.state_dict(),
            "val_stream": self.val_stream.state_dict(),
            "records": self.folder.record_count if self.folder is not None else None,
            "step_count": self.step_count,
            "epoch": self.epoch,
            "elapsed": self.elapsed(),
            "epoch_sums": [self._loss_sum.cpu(), self._correct_sum.cpu(), self._seen],
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(state["strategy"])
        self.train_stream.load_state_dict(state["train_stream"])
        self.val_stream.load_state_dict(state["val_stream"])
        self.step_count = state["step_count"]
        self.epoch = state["epoch"]
        self.elapsed_before = state["elapsed"]
        self._started = time.perf_counter()
        loss, correct, self._seen = state["epoch_sums"]
        self._loss_sum, self._correct_sum = loss.to(self.device), correct.to(self.device)
        self.strategy.set_epochs(self.config.epochs)
