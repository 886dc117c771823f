"""Collapse instruments as components: λmax of the α Hessian and the published early-stop
rules. The measurements themselves are pure functions in `nas_engine.diagnostics`. A one-shot
search (SPOS) trains no α, so none of them is part of it."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from nas_engine.components.base import Component, SearchContext
from nas_engine.config import ONE_SHOT_STRATEGIES, SearchConfig
from nas_engine.diagnostics import Alarm, darts_plus_rule, hessian_max_eigenvalue, rdarts_rule
from nas_engine.records import Record


class HessianEigenvalue(Component):
    """λmax of ∇²α L_val every f epochs (R-DARTS, Zela et al., ICLR 2020): its rise foretells
    collapse. Measured on a fixed validation batch in train mode, as the search sees the
    supernet. What the measurement touches is put back (BatchNorm's running statistics, the
    Gumbel sampler), so a run with λmax follows the same trajectory as one without; a discrete
    mixing computes every op meanwhile, so the Hessian covers the whole of α. It runs in
    float32 (`hessian_max_eigenvalue`), on the eager network (`Precision.compiled`)."""

    name = "hessian"

    def __init__(self, every: int, iterations: int, tolerance: float, batch: int, seed: int
                 ) -> None:
        self.every = every
        self.iterations = iterations
        self.tolerance = tolerance
        self.batch = batch
        self.seed = seed
        self.vector: list[torch.Tensor] | None = None  # warm start for the next measurement

    @classmethod
    def from_config(cls, config: SearchConfig) -> HessianEigenvalue | None:
        d = config.diagnostics
        if not d.hessian_every or config.strategy.name in ONE_SHOT_STRATEGIES:
            return None
        return cls(d.hessian_every, d.hessian_iterations, d.hessian_tolerance, d.hessian_batch,
                   config.seed)

    def bind(self, context: SearchContext) -> None:
        self.model = context.model
        self.fixed_val_batch = context.fixed_val_batch

    def epoch_fields(self, epoch: int) -> Record:
        if epoch % self.every:
            return {}
        started = time.perf_counter()
        value, method = self.measure()
        over = "α and β" if self.model.betas else "α"
        return {"hessian_max_eigenvalue": value, "hessian_method": method,
                "hessian_over": over, "hessian_seconds": round(time.perf_counter() - started, 4)}

    def measure(self) -> tuple[float, str]:
        x, y = self.fixed_val_batch(self.batch)
        model, mixing = self.model, self.model.mixing
        buffers = {k: b.clone() for k, b in model.net.named_buffers()}
        mixing_state = mixing.state_dict()
        all_ops = getattr(mixing, "all_ops", None)
        model.train()
        try:
            if all_ops is not None:
                mixing.all_ops = True
            value, method, self.vector = hessian_max_eigenvalue(
                lambda: F.cross_entropy(model(x), y), model.arch_parameters(),
                self.iterations, self.tolerance, seed=self.seed, start=self.vector)
            return value, method
        finally:
            if all_ops is not None:
                mixing.all_ops = all_ops
            mixing.load_state_dict(mixing_state)
            for k, b in model.net.named_buffers():
                b.copy_(buffers[k])

    def state_dict(self) -> dict[str, Any]:
        return {"vector": None if self.vector is None else [v.cpu() for v in self.vector]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = next(iter(self.model.alphas.values())).device
        vector = state["vector"]
        self.vector = None if vector is None else [v.to(device) for v in vector]


class DartsPlusRule(Component):
    """DARTS+ (Liang et al. 2019): collapse once the normal cell holds 2 skip_connects."""

    name = "darts+"

    @classmethod
    def from_config(cls, config: SearchConfig) -> DartsPlusRule | None:
        return None if config.strategy.name in ONE_SHOT_STRATEGIES else cls()

    def judge(self, epochs: list[Record]) -> Alarm | None:
        return darts_plus_rule(epochs)


class RDartsRule(Component):
    """R-DARTS' early stop (DARTS-ES) on the λmax series, at the measuring cadence."""

    name = "rdarts"

    def __init__(self, every: int) -> None:
        self.every = every

    @classmethod
    def from_config(cls, config: SearchConfig) -> RDartsRule | None:
        every = config.diagnostics.hessian_every
        return cls(every) if every and config.strategy.name not in ONE_SHOT_STRATEGIES else None

    def judge(self, epochs: list[Record]) -> Alarm | None:
        return rdarts_rule(epochs, every=self.every)


DIAGNOSTICS: tuple[type[Component], ...] = (HessianEigenvalue, DartsPlusRule, RDartsRule)
