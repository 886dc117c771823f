"""GDAS (Dong & Yang, CVPR 2019): each forward pass samples one op per edge by the Gumbel-softmax
trick, used hard (straight-through), so a step costs about one op per edge instead of all of
them; the temperature τ falls linearly from 10 to 0.1 over the search, once per epoch as in the
official code (τ_max − (τ_max − τ_min)·epoch/(epochs − 1)). α's gradient is first order; the
genotype is the DARTS rule on softmax α."""

from __future__ import annotations

from typing import Any

import torch

from nas_engine.config import SearchConfig
from nas_engine.mixing import GumbelMixing
from nas_engine.model import SupernetOptions
from nas_engine.strategies.base import Batch, StepResult
from nas_engine.strategies.gradient import GradientStrategy


class Gdas(GradientStrategy):
    name = "gdas"
    label = "GDAS"

    def __init__(self, config: SearchConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.epochs = config.epochs

    def adapt_search_space(self, options: SupernetOptions) -> None:
        # Its own generator: the samples are part of the state a checkpoint restores.
        generator = torch.Generator(self.device).manual_seed(self.config.seed)
        options.mixing = GumbelMixing(generator, self.tau_at(0))

    def tau_at(self, epoch: int) -> float:
        s = self.config.strategy
        span = max(self.epochs - 1, 1)
        return s.gdas_tau_max - (s.gdas_tau_max - s.gdas_tau_min) * min(epoch, span) / span

    def step(self, train: Batch, val: Batch, progress: float) -> StepResult:
        self.model.mixing.tau = self.tau_at(self.epochs_done)
        return super().step(train, val, progress)

    def record_fields(self) -> dict[str, Any]:
        return {"tau": self.model.mixing.tau}

    def set_epochs(self, epochs: int) -> None:
        super().set_epochs(epochs)
        self.epochs = epochs
