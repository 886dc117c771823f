"""Fair DARTS (Chu et al., ECCV 2020): ops on an edge no longer compete: each is weighted by
σ(α) on its own (`SigmoidMixing`), so skip_connect's head start cannot starve the others; the
α loss adds the zero-one term w·(−mean((σ(α) − 0.5)²)) (w = 10) that pushes each σ to 0 or 1.
The cell is derived from σ(α) by the official `threshold_sparse` rule: per node the two
strongest edges, each with its best op when σ ≥ 0.85; our genotype keeps 2 inputs per node,
so an edge below the threshold falls back to its best op, and each record counts the kept
edges that pass (`edges_above_threshold`)."""

from __future__ import annotations

from typing import Any

import torch

from nas_engine.components import LiveParameter
from nas_engine.components.regularizers import zero_one_term
from nas_engine.config import SearchConfig
from nas_engine.mixing import SigmoidMixing
from nas_engine.model import SupernetOptions
from nas_engine.strategies.gradient import GradientStrategy


class FairDarts(GradientStrategy):
    name = "fair_darts"
    label = "Fair DARTS"

    def __init__(self, config: SearchConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.zero_one_weight = config.strategy.fair_zero_one_weight

    @classmethod
    def declared(cls, config: SearchConfig) -> tuple[LiveParameter, ...]:
        return (*super().declared(config),
                LiveParameter("fair_zero_one_weight", "Fair DARTS zero-one weight",
                              "weight of −mean((σ(α) − 0.5)²) in the α loss (the paper: 10): "
                              "pushes each op's σ to 0 or 1", 0.0, 1000.0,
                              config_path="strategy.fair_zero_one_weight"))

    def adapt_search_space(self, options: SupernetOptions) -> None:
        options.mixing = SigmoidMixing()

    def alpha_terms(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return self.zero_one_weight * zero_one_term(alphas) if self.zero_one_weight else None

    def record_fields(self) -> dict[str, Any]:
        """Per cell type, how many kept edges have σ(α) of their op ≥ the threshold (a host
        sync: logging only)."""
        sigmoid = self.model.derivation_weights()
        columns = self.model.space.genotype_columns(self.model.genotype())
        threshold = self.config.strategy.fair_threshold
        return {"edges_above_threshold": {
            cell: sum(int(sigmoid[cell][row, c] >= threshold)
                      for row, c in enumerate(columns[cell]) if c is not None)
            for cell in columns}}

    def live_values(self) -> dict[str, float]:
        return {**super().live_values(), "fair_zero_one_weight": self.zero_one_weight}

    def set_live(self, name: str, value: float) -> None:
        if name == "fair_zero_one_weight":
            self.zero_one_weight = value
        else:
            super().set_live(name, value)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "zero_one_weight": self.zero_one_weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.zero_one_weight = state["zero_one_weight"]
