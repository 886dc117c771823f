"""What a component is: one regularizer, mitigation or diagnostic, as a small class with the hooks
it needs (confopt's one-class-per-component; NASLib's `after_epoch`).

The search calls every hook of every component; a component overrides only its own. Each one
declares its live parameters, so the forms, `Run.set` and the CLI list declarations instead of
decoding names, and adding a cure is one class here plus its config entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from nas_engine.records import Record

if TYPE_CHECKING:
    from nas_engine.config import SearchConfig
    from nas_engine.diagnostics import Alarm
    from nas_engine.mixing import Perturbation
    from nas_engine.model import SearchModel, SupernetOptions

Alphas = dict[str, torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class LiveParameter:
    """A setting a person may change while the run goes; it applies from the next step."""

    name: str  # its key in `Run.set`, in records' `live` and in live-change records
    label: str
    help: str
    low: float
    high: float
    low_open: bool = False
    config_path: str | None = None  # the setting it starts from; None: the run's own (speed)

    def validate(self, value: Any) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value <= self.high
        ok = ok and (value > self.low if self.low_open else value >= self.low)
        if not ok:
            bound = f"> {self.low}" if self.low_open else f">= {self.low}"
            raise ValueError(f"{self.name} must be a number {bound} and <= {self.high}; "
                             f"got {value!r}")
        return float(value)


@dataclass(frozen=True)
class SearchContext:
    """What a component may reach once the search is built."""

    config: SearchConfig
    model: SearchModel
    w_optimizer: torch.optim.Optimizer
    fixed_val_batch: Callable[[int], Batch]  # the first n validation images, always the same


class Component:
    """Hooks, in the order a search calls them. Every default does nothing."""

    name: ClassVar[str]

    @classmethod
    def from_config(cls, config: SearchConfig) -> Component | None:
        """This component for `config`, or None when the config leaves it out."""
        return cls()

    @classmethod
    def declared(cls, config: SearchConfig) -> tuple[LiveParameter, ...]:
        """The live parameters this component offers a run of `config`."""
        return ()

    def adapt_search_space(self, options: SupernetOptions) -> None:
        """Shape the supernet before it is built (extra weights go to the w optimiser)."""

    def bind(self, context: SearchContext) -> None:
        """The built model and optimisers."""

    def before_step(self, progress: float) -> None:
        """Before each search step; `progress` ∈ [0, 1] is how far the search is."""

    def alpha_loss(self, alphas: Alphas, progress: float) -> torch.Tensor | None:
        """A term of the α loss that depends on α alone (its gradient adds to the
        strategy's, whatever the update rule)."""
        return None

    def perturbation(self, progress: float) -> Perturbation | None:
        """A change to softmax α for the w step (SDARTS' noise)."""
        return None

    def record_fields(self, progress: float) -> Record:
        """Fields added to every step and epoch record (a host sync is fine: logging only)."""
        return {}

    def epoch_fields(self, epoch: int) -> Record:
        """Fields added to the record of the epoch just ended (`epoch` counts from 1)."""
        return {}

    def judge(self, epochs: list[Record]) -> Alarm | None:
        """A collapse rule's verdict on the epoch records so far (diagnostics only)."""
        return None

    def final_genotype(self, model: SearchModel) -> Any | None:
        """A rule for the cell kept at the end (P-DARTS' skip cap); None: the derived one."""
        return None

    def after_epoch(self, epoch: int) -> None:
        """Once each epoch ends."""

    def live_values(self) -> dict[str, float]:
        return {}

    def set_live(self, name: str, value: float) -> None:
        raise KeyError(name)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
