"""The shape of a search strategy (in the spirit of NASLib's optimizer interface): the update
rule only. It shapes its supernet before it is built (`adapt_search_space`), attaches to the
built model and the run's components, then `step`s per batch pair, hears `after_epoch`, and
keeps its state for checkpoints. Everything a step returns stays on the device so the loop
can avoid host syncs between logging points.

Regularizers, cures and diagnostics are components (`nas_engine.components`), not strategy
features: every strategy gets them through the hooks it calls."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from nas_engine.components import Components, LiveParameter
from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel, SupernetOptions

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class StepResult:
    """Device tensors of one search step (no `.item()` here)."""

    train_loss: torch.Tensor
    train_correct: torch.Tensor
    val_loss: torch.Tensor
    batch_size: int


class Strategy(ABC):
    name: ClassVar[str]
    label: ClassVar[str]  # what the Search page shows
    w_optimizer: torch.optim.Optimizer  # the weights' optimiser, once attached (components)

    def __init__(self, config: SearchConfig, device: torch.device) -> None:
        self.config = config
        self.device = device

    @classmethod
    def declared(cls, config: SearchConfig) -> tuple[LiveParameter, ...]:
        """The live parameters this strategy offers a run of `config`."""
        return ()

    def adapt_search_space(self, options: SupernetOptions) -> None:  # noqa: B027 - a hook
        """Shape the supernet before it is built: mixing, edge options, α's start."""

    @abstractmethod
    def attach(self, model: SearchModel, components: Components) -> None:
        """The built model and the run's components: build the optimisers."""

    @abstractmethod
    def step(self, train: Batch, val: Batch, progress: float) -> StepResult:
        """One search step; `progress` ∈ [0, 1] is how far the search is."""

    def after_epoch(self, epoch: int) -> None:  # noqa: B027 - an optional hook
        """Called once each epoch ends (schedulers, warm-ups)."""

    def record_fields(self) -> dict[str, Any]:
        """Fields of the strategy's own state added to every record (e.g. GDAS' τ)."""
        return {}

    @abstractmethod
    def live_values(self) -> dict[str, float]:
        """The strategy's live parameters in force."""

    @abstractmethod
    def set_live(self, name: str, value: float) -> None:
        """Apply one of its validated live parameters from the next step on."""

    @abstractmethod
    def set_epochs(self, epochs: int) -> None:
        """A resumed search may run longer than planned: stretch the schedules."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Optimiser and scheduler states, for exact resume."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
