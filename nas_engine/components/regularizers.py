"""α regularizers: one component each, a weight a person may change mid-run, a schedule.

Each term is a function of the raw α only (a dict cell type -> (edges, ops)), so its gradient
adds to whatever α gradient the strategy computed (first order, unrolled, proximal) without a
second pass through the network. Every regularizer is present in every run (weight 0 is off),
so its weight can be raised live.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from nas_engine.components.base import Alphas, Component, LiveParameter
from nas_engine.config import RegularizerConfig, SearchConfig
from nas_engine.records import Record

WEIGHT_LIMIT = 1000.0


def scheduled_weight(config_weight: float, schedule: str, start: float, progress: float
                     ) -> float:
    """The weight in force at `progress` ∈ [0, 1] of the search."""
    t = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        return start + (config_weight - start) * t
    if schedule == "cosine":
        return start + (config_weight - start) * (1 - math.cos(math.pi * t)) / 2
    if schedule == "aer":
        return -config_weight * math.cos(math.pi * t)
    return config_weight


def zero_one_term(alphas: Alphas) -> torch.Tensor:
    """−mean((σ(α) − 0.5)²): lowest when every sigmoid weight sits at 0 or 1 (Fair DARTS)."""
    return -torch.cat([((torch.sigmoid(a) - 0.5) ** 2).flatten() for a in alphas.values()]).mean()


class Regularizer(Component):
    label: ClassVar[str]
    help: ClassVar[str]

    def __init__(self, config: RegularizerConfig) -> None:
        self.weight = config.weight
        self.schedule = config.schedule
        self.start = config.start
        self.last_term: torch.Tensor | None = None

    @classmethod
    def from_config(cls, config: SearchConfig) -> Regularizer:
        return cls(getattr(config.regularizers, cls.name))

    @classmethod
    def live_name(cls) -> str:
        return f"{cls.name}_weight"

    @classmethod
    def declared(cls, config: SearchConfig) -> tuple[LiveParameter, ...]:
        return (LiveParameter(cls.live_name(), cls.label, cls.help, -WEIGHT_LIMIT, WEIGHT_LIMIT,
                              config_path=f"regularizers.{cls.name}.weight"),)

    def weight_at(self, progress: float) -> float:
        return scheduled_weight(self.weight, self.schedule, self.start, progress)

    @property
    def active(self) -> bool:
        return self.weight != 0 or (self.schedule in ("linear", "cosine") and self.start != 0)

    @abstractmethod
    def term(self, alphas: Alphas) -> torch.Tensor:
        """The unweighted term."""

    def alpha_loss(self, alphas: Alphas, progress: float) -> torch.Tensor | None:
        if not self.active:
            self.last_term = None
            return None
        term = self.term(alphas)
        self.last_term = term.detach()
        return self.weight_at(progress) * term

    def record_fields(self, progress: float) -> Record:
        """The weight in force and the term's last value (a host sync: logging only)."""
        if self.last_term is None:
            return {}
        value = {"weight": self.weight_at(progress), "value": self.last_term.item()}
        return {"regularizers": {self.name: value}}

    def live_values(self) -> dict[str, float]:
        return {self.live_name(): self.weight}

    def set_live(self, name: str, value: float) -> None:
        self.weight = value

    def state_dict(self) -> dict[str, Any]:
        return {"weight": self.weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weight = state["weight"]


class Entropy(Regularizer):
    name = "entropy"
    label = "entropy weight λ"
    help = ("λ·mean entropy of softmax α per edge: λ > 0 pushes each edge to one op (and speeds "
            "up skip collapse), λ < 0 keeps edges undecided")

    def term(self, alphas: Alphas) -> torch.Tensor:
        per_cell = [-(F.softmax(a, -1) * F.log_softmax(a, -1)).sum(-1).mean()
                    for a in alphas.values()]
        return torch.stack(per_cell).mean()


class ExpNeg(Regularizer):
    name = "exp_neg"
    label = "Σ exp(−α) weight"
    help = "the seed tutorial's Σ exp(−α) term (0.01 there): pushes every α up, away from −∞"

    def term(self, alphas: Alphas) -> torch.Tensor:
        return torch.stack([torch.exp(-a).sum() for a in alphas.values()]).sum()


class L2(Regularizer):
    name = "l2"
    label = "L2 on α weight"
    help = "Σ α²: keeps α small, so no op runs away"

    def term(self, alphas: Alphas) -> torch.Tensor:
        return torch.stack([(a * a).sum() for a in alphas.values()]).sum()


class BetaDarts(Regularizer):
    name = "beta"
    label = "β-DARTS weight"
    help = ("β-DARTS: mean over edges of logsumexp(α); evens out α's scale (the paper ramps "
            "the weight 0 → 50: schedule linear)")

    def term(self, alphas: Alphas) -> torch.Tensor:
        return torch.cat([torch.logsumexp(a, -1) for a in alphas.values()]).mean()


class ZeroOne(Regularizer):
    name = "zero_one"
    label = "zero-one weight"
    help = ("−mean((σ(α) − 0.5)²): pushes each op's sigmoid weight to 0 or 1. Fair DARTS' "
            "term, but it means that only under sigmoid mixing: the fair_darts strategy adds "
            "it by itself")

    def term(self, alphas: Alphas) -> torch.Tensor:
        return zero_one_term(alphas)


REGULARIZERS: tuple[type[Regularizer], ...] = (Entropy, ExpNeg, L2, BetaDarts, ZeroOne)
