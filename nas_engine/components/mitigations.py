"""Network-side cures for skip-connect collapse (REFERENCE.md §3), one component each."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from nas_engine.components.base import Component, LiveParameter, SearchContext
from nas_engine.config import SearchConfig
from nas_engine.mixing import Perturbation, Weights
from nas_engine.model import SearchModel, SupernetOptions


class AuxiliarySkip(Component):
    """DARTS- (Chu et al., ICLR 2021): an auxiliary skip β·x beside every mixed edge, and on a
    stride-2 edge β·FactorizedReduce(x) with weights of its own; β decays linearly 1 → 0, so
    the skip's advantage goes to the auxiliary path and the final cell owes it nothing."""

    name = "aux_skip"

    @classmethod
    def from_config(cls, config: SearchConfig) -> AuxiliarySkip | None:
        return cls() if config.mitigations.aux_skip else None

    def adapt_search_space(self, options: SupernetOptions) -> None:
        options.edges = dataclasses.replace(options.edges, aux_reduce=True)

    def bind(self, context: SearchContext) -> None:
        self.model = context.model

    def before_step(self, progress: float) -> None:
        for block in self.model.edge_blocks():
            block.aux_skip = 1.0 - progress


class SkipDropout(Component):
    """P-DARTS (Chen et al., ICCV 2019): dropout on skip_connect's output, decaying linearly to
    0, so the parameter-free path cannot win early only because it trains fastest."""

    name = "skip_dropout"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    @classmethod
    def from_config(cls, config: SearchConfig) -> SkipDropout | None:
        rate = config.mitigations.skip_dropout
        return cls(rate) if rate else None

    def bind(self, context: SearchContext) -> None:
        self.model = context.model

    def before_step(self, progress: float) -> None:
        for block in self.model.edge_blocks():
            block.skip_dropout = self.rate * (1.0 - progress)


class SkipCap(Component):
    """P-DARTS' rule for the final cell: at most M skip_connects (the paper: 2); the weakest
    extra skips give way to their edges' next-best ops."""

    name = "max_skips"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    @classmethod
    def from_config(cls, config: SearchConfig) -> SkipCap | None:
        limit = config.mitigations.max_skips
        return None if limit is None else cls(limit)

    def final_genotype(self, model: SearchModel) -> Any:
        return model.space.capped_skips(model.derivation_weights(), self.limit)


class RandomSmoothing(Component):
    """SDARTS-RS (Chen & Hsieh, ICML 2020): the w step sees softmax α plus U[−ε, ε] noise,
    clamped to [0, 1] and renormalised per edge (SmoothDARTS `perturb.py`), ε ramping from a
    tenth of its value to its value; the weights learn to work for nearby architectures, which
    flattens the validation loss around α."""

    name = "sdarts"

    def __init__(self, epsilon: float, seed: int) -> None:
        self.epsilon = epsilon
        self.seed = seed

    @classmethod
    def from_config(cls, config: SearchConfig) -> RandomSmoothing | None:
        epsilon = config.mitigations.sdarts_epsilon
        return cls(epsilon, config.seed) if epsilon else None

    def bind(self, context: SearchContext) -> None:
        device = next(iter(context.model.alphas.values())).device
        self.generator = torch.Generator(device).manual_seed(self.seed)

    def perturbation(self, progress: float) -> Perturbation:
        eps = self.epsilon * (0.1 + 0.9 * progress)

        def perturb(probs: Weights) -> Weights:
            noisy = {}
            for cell, p in probs.items():
                u = torch.rand(p.shape, generator=self.generator, device=p.device, dtype=p.dtype)
                q = (p.detach() + (2 * u - 1) * eps).clamp(0.0, 1.0)
                noisy[cell] = q / q.sum(-1, keepdim=True)
            return noisy

        return perturb

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class WeightDecayMultiplier(Component):
    """R-DARTS L2 (Zela et al., ICLR 2020): the weights' decay × m (3, 9, 27, 81 delay
    collapse). Always present, so m can change live."""

    name = "wd_multiplier"

    def __init__(self, multiplier: float) -> None:
        self.multiplier = multiplier

    @classmethod
    def from_config(cls, config: SearchConfig) -> WeightDecayMultiplier:
        return cls(config.mitigations.wd_multiplier)

    @classmethod
    def declared(cls, config: SearchConfig) -> tuple[LiveParameter, ...]:
        return (LiveParameter("wd_multiplier", "weight-decay multiplier",
                              "R-DARTS L2: the weights' decay × this (3, 9, 27, 81 delay collapse)",
                              0.0, 1000.0, config_path="mitigations.wd_multiplier"),)

    def bind(self, context: SearchContext) -> None:
        self.optimizer = context.w_optimizer
        self.base = context.config.optim.w_weight_decay
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["weight_decay"] = self.base * self.multiplier

    def live_values(self) -> dict[str, float]:
        return {"wd_multiplier": self.multiplier}

    def set_live(self, name: str, value: float) -> None:
        self.multiplier = value
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.multiplier = state["multiplier"]
        self._apply()


MITIGATIONS: tuple[type[Component], ...] = (
    AuxiliarySkip, SkipDropout, SkipCap, RandomSmoothing, WeightDecayMultiplier,
)
