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
from nas_engine.diagnostics import (
    RULES,
    Alarm,
    first_alarm,
    hessian_max_eigenvalue,
    mean_entropy,
    parameter_free_mass,
)
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
                                     images.image_size, config.partial_channels).to(self.device)
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
        self._epoch_records: list[Record] = []  # what the early-stop rules read
        self.alarm: Alarm | None = None
        self._hessian_vector: list[torch.Tensor] | None = None  # warm start for λmax
        self.early_stop: Alarm | None = None  # the alarm that ended the search, if one did
        self._reset_epoch_sums()

    # -- progress --------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs or self.early_stop is not None

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
        genotype = self.model.genotype()
        return {
            "alphas": {cell: _rows(p) for cell, p in probs.items()},
            "alphas_raw": {cell: _rows(a) for cell, a in self.model.raw_alphas().items()},
            "genotype": self.space.genotype_dict(genotype),
            "skip_count": self.space.skip_count(genotype),
            "entropy": mean_entropy(probs),
            "parameter_free_mass": {cell: float(parameter_free_mass(p, self.config.ops or []))
                                    for cell, p in probs.items()},
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
            **self._hessian_fields(),
        }
        self._judge(record)
        self.strategy.after_epoch(self.epoch)
        self._reset_epoch_sums()
        self._emit(record)
        if self.folder is not None:
            self.folder.write_genotype(self._final_genotype(record))
            if self.config.record.checkpoint:
                self.folder.save_checkpoint(self.state_dict(), self.epoch)
        return record

    # -- collapse diagnostics ----------------------------------------------------------------
    def _hessian_fields(self) -> Record:
        every = self.config.diagnostics.hessian_every
        if not every or self.epoch % every:
            return {}
        started = time.perf_counter()
        value, method = self.hessian_max_eigenvalue()
        return {"hessian_max_eigenvalue": value, "hessian_method": method,
                "hessian_seconds": round(time.perf_counter() - started, 4)}

    def hessian_max_eigenvalue(self) -> tuple[float, str]:
        """λmax of ∇²α L_val on a fixed validation batch, in train mode as the search sees it
        (BatchNorm's running statistics are restored afterwards)."""
        x, y = self._fixed_val_batch(self.config.diagnostics.hessian_batch)
        buffers = {k: b.clone() for k, b in self.model.net.named_buffers()}
        self.model.train()
        try:
            value, method, self._hessian_vector = hessian_max_eigenvalue(
                lambda: torch.nn.functional.cross_entropy(self.model(x), y),
                self.model.arch_parameters(), self.config.diagnostics.hessian_iterations,
                self.config.diagnostics.hessian_tolerance, seed=self.config.seed,
                start=self._hessian_vector,
            )
            return value, method
        finally:
            for k, b in self.model.net.named_buffers():
                b.copy_(buffers[k])

    def _fixed_val_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys, have = [], [], 0
        for x, y in self.val_stream.iter_pass():
            xs.append(x)
            ys.append(y)
            have += len(y)
            if have >= size:
                break
        return torch.cat(xs)[:size], torch.cat(ys)[:size]

    def _judge(self, record: Record) -> None:
        """Run the rules over the epochs so far: the first alarm sticks; the configured rule
        may end the search."""
        self._epoch_records.append({k: record.get(k) for k in (
            "epoch", "skip_count", "hessian_max_eigenvalue", "genotype")})
        if self.alarm is None:
            self.alarm = first_alarm(self._epoch_records)
        rule = self.config.diagnostics.early_stop
        if rule != "none" and self.early_stop is None:
            self.early_stop = RULES[rule](self._epoch_records)
        record["alarm"] = self.alarm.to_dict() if self.alarm else None
        if self.early_stop is not None:
            record["early_stop"] = self.early_stop.to_dict()

    def _final_genotype(self, record: Record) -> Record:
        """The genotype to keep: the current one, or the one the R-DARTS rule rolls back to."""
        stop = self.early_stop
        if stop is None or stop.rollback_epoch is None:
            return record["genotype"]
        earlier = next(r for r in self._epoch_records if r["epoch"] == stop.rollback_epoch)
        return {**earlier["genotype"], "rolled_back_to": stop.rollback_epoch,
                "stopped_by": stop.message}

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
            "epoch_records": list(self._epoch_records),
            "alarm": self.alarm.to_dict() if self.alarm else None,
            "hessian_vector": self._hessian_vector,
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
        self._epoch_records = list(state["epoch_records"])
        self.alarm = Alarm(**state["alarm"]) if state["alarm"] else None
        vector = state["hessian_vector"]
        self._hessian_vector = None if vector is None else [v.to(self.device) for v in vector]
