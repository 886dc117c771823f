"""The common shape of a search strategy (in the spirit of NASLib's optimizer interface):
build its optimisers from a model and a config, then `step` per batch pair, `after_epoch` at
each epoch end, and `state_dict` for checkpoints. Everything a step returns stays on the device
so the loop can avoid host syncs between logging points."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class StepResult:
    """Device tensors of one search step (no `.item()` here)."""

    train_loss: torch.Tensor
    train_correct: torch.Tensor
    val_loss: torch.Tensor
    batch_size: int


class Strategy(ABC):
    def __init__(self, model: SearchModel, config: SearchConfig) -> None:
        self.model = model
        self.config = config

    @abstractmethod
    def step(self, train: Batch, val: Batch, progress: float = 0.0) -> StepResult:
        """One search step: an α update on the validation batch, a w update on the train batch.
        `progress` ∈ [0, 1] is how far the search is (schedules of regularisers, mitigations)."""

    @abstractmethod
    def after_epoch(self, epoch: int) -> None:
        """Called once each epoch ends (schedulers, warm-ups)."""

    @abstractmethod
    def live_values(self) -> dict[str, float]:
        """The live parameters in force, recorded with every metrics record."""

    @abstractmethod
    def set_live(self, name: str, value: float) -> None:
        """Apply a validated live parameter from the next step on."""

    @abstractmethod
    def set_epochs(self, epochs: int) -> None:
        """A resumed search may run longer than planned: stretch the schedules."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Optimiser and scheduler states, for exact resume."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
