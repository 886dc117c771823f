"""α regularisers: one small class each, a weight a person may change mid-run, a schedule.

Each term is a function of the raw α only (a dict cell type -> (edges, ops)), so its gradient
adds to whatever α gradient the strategy computed (first order, unrolled, proximal) without a
second pass through the network.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import fields

import torch
import torch.nn.functional as F

from nas_engine.config import RegularizerConfig, RegularizersConfig

Alphas = dict[str, torch.Tensor]


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


class Regularizer(ABC):
    name: str
    label: str
    help: str

    def __init__(self, config: RegularizerConfig) -> None:
        self.weight = config.weight
        self.schedule = config.schedule
        self.start = config.start

    def weight_at(self, progress: float) -> float:
        return scheduled_weight(self.weight, self.schedule, self.start, progress)

    @property
    def active(self) -> bool:
        return self.weight != 0 or (self.schedule in ("linear", "cosine") and self.start != 0)

    @abstractmethod
    def term(self, alphas: Alphas) -> torch.Tensor:
        """The unweighted term."""


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
    label = "Fair-DARTS zero-one weight"
    help = ("Fair DARTS' zero-one loss −mean((σ(α) − 0.5)²): pushes each op's sigmoid weight "
            "to 0 or 1 (the paper: 10)")

    def term(self, alphas: Alphas) -> torch.Tensor:
        return -torch.cat([((torch.sigmoid(a) - 0.5) ** 2).flatten()
                           for a in alphas.values()]).mean()


REGULARIZERS: dict[str, type[Regularizer]] = {
    cls.name: cls for cls in (Entropy, ExpNeg, L2, BetaDarts, ZeroOne)
}


class RegularizerSet:
    """The configured regularisers of one run; the weighted sum goes into the α loss."""

    def __init__(self, config: RegularizersConfig) -> None:
        self.items = {f.name: REGULARIZERS[f.name](getattr(config, f.name))
                      for f in fields(config)}
        self.last_terms: dict[str, torch.Tensor] = {}

    def alpha_loss(self, alphas: Alphas, progress: float) -> torch.Tensor | None:
        """Σ weight(t)·term over the active regularisers (None when none is active)."""
        total = None
        self.last_terms = {}
        for name, reg in self.items.items():
            if not reg.active:
                continue
            term = reg.term(alphas)
            self.last_terms[name] = term.detach()
            weighted = reg.weight_at(progress) * term
            total = weighted if total is None else total + weighted
        return total

    def set_weight(self, name: str, value: float) -> None:
        self.items[name].weight = value

    def live_values(self) -> dict[str, float]:
        return {f"{name}_weight": reg.weight for name, reg in self.items.items()}

    def record(self, progress: float) -> dict[str, dict[str, float]]:
        """Weight in force and last value of each active term (a host sync: logging only)."""
        return {name: {"weight": self.items[name].weight_at(progress), "value": term.item()}
                for name, term in self.last_terms.items()}
