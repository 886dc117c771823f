"""The components of a search (regularizers, mitigations, diagnostics) and the one object that
calls their hooks. Adding one = a class in its module, its entry in COMPONENTS and its config
field."""

from __future__ import annotations

from typing import Any

import torch

from nas_engine.components.base import (
    Alphas,
    Component,
    LiveParameter,
    SearchContext,
)
from nas_engine.components.diagnostics import DIAGNOSTICS
from nas_engine.components.mitigations import MITIGATIONS
from nas_engine.components.regularizers import REGULARIZERS
from nas_engine.config import SearchConfig
from nas_engine.diagnostics import Alarm
from nas_engine.mixing import Perturbation, Weights
from nas_engine.model import SearchModel, SupernetOptions
from nas_engine.records import Record

COMPONENTS: tuple[type[Component], ...] = (*REGULARIZERS, *MITIGATIONS, *DIAGNOSTICS)


def declared_live_parameters(config: SearchConfig) -> list[LiveParameter]:
    return [p for cls in COMPONENTS for p in cls.declared(config)]


class Components:
    """The components a config asks for, in COMPONENTS order; each hook called on each."""

    def __init__(self, config: SearchConfig) -> None:
        built = (cls.from_config(config) for cls in COMPONENTS)
        self.items: list[Component] = [c for c in built if c is not None]
        self._owners = {p.name: c for c in self.items for p in c.declared(config)}
        self.early_stop_rule = config.diagnostics.early_stop

    def adapt_search_space(self, options: SupernetOptions) -> None:
        for c in self.items:
            c.adapt_search_space(options)

    def bind(self, context: SearchContext) -> None:
        for c in self.items:
            c.bind(context)

    def before_step(self, progress: float) -> None:
        for c in self.items:
            c.before_step(progress)

    def alpha_loss(self, alphas: Alphas, progress: float) -> torch.Tensor | None:
        """Σ of the components' α terms (None when none is active)."""
        terms = [t for c in self.items if (t := c.alpha_loss(alphas, progress)) is not None]
        return torch.stack(terms).sum() if terms else None

    def perturbation(self, progress: float) -> Perturbation | None:
        changes = [p for c in self.items if (p := c.perturbation(progress)) is not None]
        if not changes:
            return None

        def perturb(probs: Weights) -> Weights:
            for change in changes:
                probs = change(probs)
            return probs

        return perturb

    def record_fields(self, progress: float) -> Record:
        return _merged(c.record_fields(progress) for c in self.items)

    def epoch_fields(self, epoch: int) -> Record:
        return _merged(c.epoch_fields(epoch) for c in self.items)

    def judge(self, epochs: list[Record]) -> tuple[Alarm | None, Alarm | None]:
        """(the earliest alarm of any rule, the verdict of the rule that may stop the run)."""
        verdicts = {c.name: a for c in self.items if (a := c.judge(epochs)) is not None}
        first = min(verdicts.values(), key=lambda a: a.epoch) if verdicts else None
        return first, verdicts.get(self.early_stop_rule)

    def final_genotype(self, model: SearchModel) -> Any | None:
        for c in self.items:
            genotype = c.final_genotype(model)
            if genotype is not None:
                return genotype
        return None

    def after_epoch(self, epoch: int) -> None:
        for c in self.items:
            c.after_epoch(epoch)

    def owns(self, name: str) -> bool:
        return name in self._owners

    def live_values(self) -> dict[str, float]:
        return {k: v for c in self.items for k, v in c.live_values().items()}

    def set_live(self, name: str, value: float) -> None:
        self._owners[name].set_live(name, value)

    def state_dict(self) -> dict[str, Any]:
        return {c.name: c.state_dict() for c in self.items}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for c in self.items:
            c.load_state_dict(state[c.name])


def _merged(parts: Any) -> Record:
    """Record fields of several components; dict fields (e.g. `regularizers`) are joined."""
    merged: Record = {}
    for fields in parts:
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


__all__ = ["COMPONENTS", "Component", "Components", "LiveParameter", "SearchContext",
           "declared_live_parameters"]
