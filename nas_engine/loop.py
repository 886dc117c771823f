"""`EpochLoop`: the stepping every job of a run shares (a search, a retrain).

A job advances one step at a time so that a run's thread can pause between steps and
checkpoint anywhere. Losses stay on the device between logging points (every `log_every` steps
and each epoch end), where one host sync checks that every step since the last one was finite.
Time is counted over sessions, so a resumed job reports its whole time.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas_engine.records import Record
from nas_engine.store import Recorder


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: the run cannot go on from here."""

    def __init__(self, step: int, losses: dict[str, float], advice: str) -> None:
        shown = ", ".join(f"{name} {value}" for name, value in losses.items())
        super().__init__(f"step {step}: the loss is not finite ({shown}); {advice}")
        self.step = step


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class StepLosses:
    """Device tensors of one step: the training loss and correct count over `batch_size`
    images, and any other loss that must stay finite (by name)."""

    train_loss: torch.Tensor
    train_correct: torch.Tensor
    batch_size: int
    checked: dict[str, torch.Tensor]


class EpochLoop(ABC):
    """Steps in epochs; a subclass says what one step does and what each record holds."""

    advice = "try a smaller learning rate"  # what NonFiniteLossError suggests

    def __init__(self, recorder: Recorder | None, device: torch.device, steps_per_epoch: int,
                 epochs: int, log_every: int) -> None:
        self.recorder = recorder
        self.device = device
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.log_every = log_every
        self.step_count = 0  # steps done, over all epochs
        self.epoch = 0  # epochs completed
        self.progress = 0.0  # where the last step was, in [0, 1)
        self.elapsed_before = 0.0  # time of earlier sessions (resume)
        self._started = time.perf_counter()
        self._unchecked: list[tuple[int, dict[str, torch.Tensor]]] = []
        self._reset_epoch_sums()

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs or self.finish_message is not None

    @property
    def finish_message(self) -> str | None:
        """Why the job ended before its last epoch, if it did."""
        return None

    @property
    def step_in_epoch(self) -> int:
        return self.step_count - self.epoch * self.steps_per_epoch

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._started

    def _reset_epoch_sums(self) -> None:
        zero = torch.zeros((), device=self.device)
        self._loss_sum, self._correct_sum = zero, zero.clone()
        self._seen = 0

    # -- what a job defines ----------------------------------------------------------------
    @abstractmethod
    def train_step(self) -> StepLosses:
        """One step at `self.progress`."""

    @abstractmethod
    def step_record(self, losses: StepLosses) -> Record:
        """The record of a logging point (its kind, epoch, step and time are added)."""

    @abstractmethod
    def epoch_record(self) -> Record:
        """The record of the epoch just ended (`self.epoch` already counts it; the mean train
        loss and accuracy are added)."""

    def after_epoch(self, record: Record) -> None:  # noqa: B027 - an optional hook
        """Once the epoch record is logged (schedulers, genotype, checkpoints)."""

    # -- stepping --------------------------------------------------------------------------
    def step(self) -> list[Record]:
        """One step; returns the records it produced (none, a step record, and/or the epoch
        record when it ended an epoch), each already logged."""
        if self.done:
            raise RuntimeError("the run has already run all its epochs")
        self.progress = self.step_count / self.total_steps
        losses = self.train_step()
        self._loss_sum = self._loss_sum + losses.train_loss * losses.batch_size
        self._correct_sum = self._correct_sum + losses.train_correct
        self._seen += losses.batch_size
        self.step_count += 1
        self._unchecked.append((self.step_count, {"train loss": losses.train_loss,
                                                  **losses.checked}))
        records = []
        if self.step_count % self.log_every == 0:
            self._check_finite()
            records.append(self._emit(self._stamped("step", self.step_record(losses))))
        if self.step_in_epoch == self.steps_per_epoch:
            self._check_finite()
            means = {"train_loss": (self._loss_sum / self._seen).item(),
                     "train_acc": self._correct_sum.item() / self._seen}
            self.epoch += 1
            record = self._stamped("epoch", {**means, **self.epoch_record()})
            self._reset_epoch_sums()
            records.append(self._emit(record))
            self.after_epoch(record)
        return records

    def run(self) -> list[Record]:
        records = []
        while not self.done:
            records.extend(self.step())
        return records

    def _stamped(self, kind: str, fields: Record) -> Record:
        head = {"kind": kind, "epoch": self.epoch, "step": self.step_count,
                "time_s": round(self.elapsed(), 4)}
        return {**head, **fields}  # type: ignore[return-value]

    def _emit(self, record: Record) -> Record:
        if self.recorder is not None:
            self.recorder.append_record(record)
        return record

    def _check_finite(self) -> None:
        """One host sync per logging point checks every step since the last one."""
        if not self._unchecked:
            return
        losses = torch.stack([torch.stack(list(v.values())) for _, v in self._unchecked])
        finite = torch.isfinite(losses).all(dim=1)
        if not bool(finite.all()):
            step, values = self._unchecked[int((~finite).nonzero()[0, 0])]
            shown = {name: value.item() for name, value in values.items()}
            raise NonFiniteLossError(step, shown, self.advice)
        self._unchecked.clear()

    # -- checkpoints -----------------------------------------------------------------------
    def loop_state(self) -> dict[str, Any]:
        return {
            "records": self.recorder.record_count if self.recorder is not None else None,
            "step_count": self.step_count,
            "epoch": self.epoch,
            "elapsed": self.elapsed(),
            "epoch_sums": [self._loss_sum.cpu(), self._correct_sum.cpu(), self._seen],
        }

    def load_loop_state(self, state: dict[str, Any]) -> None:
        self.step_count = state["step_count"]
        self.epoch = state["epoch"]
        self.elapsed_before = state["elapsed"]
        self._started = time.perf_counter()
        loss, correct, self._seen = state["epoch_sums"]
        self._loss_sum, self._correct_sum = loss.to(self.device), correct.to(self.device)
