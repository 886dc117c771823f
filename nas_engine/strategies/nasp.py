"""NASP (Yao et al., AAAI 2020): a proximal search. Forward and backward run on the discrete
architecture ᾱ (the one-hot argmax of α per edge). The α gradient is the gradient w.r.t. ᾱ
(straight-through), applied to the continuous α by the α optimiser; clipping α to [0, 1]
afterwards is the proximal step of the box constraint. Optionally the α loss adds NASP's
model-size term  λ · Σ_edges Σ_ops ᾱ·params(op) / 1e6.

Speed: the w step (and validation) computes only the chosen op of each edge. The α step does
too with `nasp_alpha_all_ops` off; by default it computes every op, as the official code does,
because ∂L/∂ᾱ of an unchosen op needs that op's output: without it the unchosen α get no
gradient, only weight decay, and sink to 0 until rows tie and argmax picks column 0 (`none`).

The model does the discretising (`SearchModel.discrete`: mixing weights are ᾱ and every edge
block is told, once per forward, what to compute); validation and the records therefore see
the discrete supernet too, while the records keep softmax α for the heatmap."""

from __future__ import annotations

import torch

from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel
from nas_engine.strategies.base import Batch
from nas_engine.strategies.darts import DartsStrategy


class NaspStrategy(DartsStrategy):
    def __init__(self, model: SearchModel, config: SearchConfig) -> None:
        super().__init__(model, config)
        model.discrete = True
        self.size_penalty = config.strategy.nasp_size_penalty
        self.alpha_all_ops = config.strategy.nasp_alpha_all_ops
        self.op_parameters = {cell: n.to(self.alphas[0]) / 1e6
                              for cell, n in model.op_parameter_counts().items()}
        self.project()  # α starts inside the box too

    def project(self) -> None:
        """The proximal step of the constraint α ∈ [0, 1]: clip."""
        with torch.no_grad():
            for alpha in self.alphas:
                alpha.clamp_(0.0, 1.0)

    def alpha_step(self, train: Batch, val: Batch) -> torch.Tensor:
        self.model.only_chosen = not self.alpha_all_ops
        try:
            val_loss = super().alpha_step(train, val)
        finally:
            self.model.only_chosen = True  # the w step and validation
        self.project()
        return val_loss

    def alpha_penalty(self) -> torch.Tensor | None:
        reg = super().alpha_penalty()
        if not self.size_penalty:
            return reg
        weights = self.model.one_hot_weights()
        size = self.size_penalty * sum(
            (weights[cell] * n).sum() for cell, n in self.op_parameters.items()
        )
        return size if reg is None else reg + size
