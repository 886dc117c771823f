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

from nas_engine.components import Components, SearchContext
from nas_engine.config import SearchConfig
from nas_engine.data import load_images, make_streams
from nas_engine.device import configure_threads, resolve_device
from nas_engine.diagnostics import Alarm, mean_entropy, parameter_free_mass
from nas_engine.model import SearchModel, SupernetOptions
from nas_engine.records import Record
from nas_engine.spaces import make_space
from nas_engine.store import Recorder
from nas_engine.strategies import StepResult, Strategy, make_strategy

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


def build_model(config: SearchConfig, strategy: Strategy, components: Components,
                in_channels: int, num_classes: int, image_size: int) -> SearchModel:
    """The supernet and α, as the strategy and the components shape them."""
    options = SupernetOptions()
    strategy.adapt_search_space(options)
    components.adapt_search_space(options)
    return SearchModel(make_space(config), in_channels, num_classes, image_size, options)


class Search:
    def __init__(self, config: SearchConfig, recorder: Recorder | None = None) -> None:
        """`recorder` (the run folder's one writer) receives every record, the genotype and
        the epoch checkpoints; None keeps everything in memory (tests, notebooks)."""
        self.config = config.validate()
        self.recorder = recorder
        self.device = resolve_device(config.device)
        configure_threads(self.device, config.threads)
        data = config.data
        images = load_images(data, config.seed)
        self.strategy = make_strategy(config, self.device)
        self.components = Components(config)
        with _BUILD_LOCK:
            seed_everything(config.seed)
            self.model = build_model(config, self.strategy, self.components, images.in_channels,
                                     images.num_classes, images.image_size).to(self.device)
        self.space = self.model.space
        self.strategy.attach(self.model, self.components)
        self.train_stream, self.val_stream = make_streams(images, data, config.seed, self.device)
        self.components.bind(SearchContext(config, self.model, self.strategy.w_optimizer,
                                           self._fixed_val_batch))
        self.steps_per_epoch = len(self.train_stream)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step_count = 0  # search steps done, over all epochs
        self.epoch = 0  # epochs completed
        self.elapsed_before = 0.0  # search time of earlier sessions (resume)
        self.progress = 0.0  # where the last step was in the search, in [0, 1)
        self._started = time.perf_counter()
        self._unchecked: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self._epoch_records: list[Record] = []  # what the early-stop rules read
        self.alarm: Alarm | None = None
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
        self.progress = self.step_count / self.total_steps
        result = self.strategy.step(self.train_stream.next(), self.val_stream.next(),
                                    self.progress)
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
        if self.recorder is not None:
            self.recorder.append_record(record)

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

    def initial_record(self) -> Record:
        """α at initialisation, for a viewer to draw before the first logged record (not
        logged itself)."""
        return {"kind": "init", "epoch": 0, "step": 0, "time_s": 0.0, **self._arch_fields()}

    def live_values(self) -> dict[str, float]:
        """The live parameters in force, by name (the strategy's and the components')."""
        return {**self.strategy.live_values(), **self.components.live_values()}

    def set_live(self, name: str, value: float) -> None:
        """Apply a validated live parameter from the next step on, by its declaring owner."""
        owner = self.components if self.components.owns(name) else self.strategy
        owner.set_live(name, value)

    @property
    def finish_message(self) -> str | None:
        """Why the search ended before its last epoch (an early-stop rule), if it did."""
        return f"stopped early: {self.early_stop.message}" if self.early_stop else None

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
            "live": self.live_values(),
            "regularizers": {},
            **self.components.record_fields(self.progress),
            **self.strategy.record_fields(),
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
            **self.components.epoch_fields(self.epoch),
        }
        self._judge(record)
        self.strategy.after_epoch(self.epoch)
        self.components.after_epoch(self.epoch)
        self._reset_epoch_sums()
        self._emit(record)
        if self.recorder is not None:
            self.recorder.write_genotype(self._final_genotype(record))
            if self.config.record.checkpoint:
                self.recorder.save_checkpoint(self.state_dict(), self.epoch)
        return record

    # -- collapse diagnostics ----------------------------------------------------------------
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
        alarm, stop = self.components.judge(self._epoch_records)
        self.alarm = self.alarm or alarm
        self.early_stop = self.early_stop or stop
        record["alarm"] = self.alarm.to_dict() if self.alarm else None
        if self.early_stop is not None:
            record["early_stop"] = self.early_stop.to_dict()

    def _final_genotype(self, record: Record) -> Record:
        """The genotype to keep: the one the R-DARTS rule rolls back to, else a component's
        rule for the final cell (P-DARTS' skip cap), else the current one."""
        stop = self.early_stop
        if stop is not None and stop.rollback_epoch is not None:
            earlier = next(r for r in self._epoch_records if r["epoch"] == stop.rollback_epoch)
            return {**earlier["genotype"], "rolled_back_to": stop.rollback_epoch,
                    "stopped_by": stop.message}
        final = self.components.final_genotype(self.model)
        return record["genotype"] if final is None else self.space.genotype_dict(final)

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
            "records": self.recorder.record_count if self.recorder is not None else None,
            "step_count": self.step_count,
            "epoch": self.epoch,
            "elapsed": self.elapsed(),
            "epoch_sums": [self._loss_sum.cpu(), self._correct_sum.cpu(), self._seen],
            "epoch_records": list(self._epoch_records),
            "alarm": self.alarm.to_dict() if self.alarm else None,
            "early_stop": self.early_stop.to_dict() if self.early_stop else None,
            "components": self.components.state_dict(),
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
        self.early_stop = Alarm(**state["early_stop"]) if state["early_stop"] else None
        self.components.load_state_dict(state["components"])
