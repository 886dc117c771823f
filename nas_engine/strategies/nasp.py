"""NASP (Yao et al., AAAI 2020): a proximal search. Forward and backward run on the discrete
architecture ᾱ, which is the derived cell itself (one op per edge, the 2 strongest inputs per
node in the DARTS space: `ProximalMixing`). The α gradient is the gradient w.r.t. ᾱ
(straight-through), applied to the continuous α by the α optimiser; clipping α to [0, 1]
afterwards is the proximal step of the box constraint; α starts at 0.5 as in the official code.
Optionally the α loss adds NASP's model-size term  λ · Σ ᾱ·params(op) / 1e6, which reaches the
chosen ops only (the official `_l2_loss` on the binarized α).

Speed: the w step (and validation) computes only the chosen ops. The α step computes every op
by default, as the official code does, because ∂L/∂ᾱ of an unchosen op needs that op's output;
with `nasp_alpha_all_ops` off it computes the chosen ones only."""

from __future__ import annotations

import torch

from nas_engine.components import Components
from nas_engine.mixing import ProximalMixing, straight_through
from nas_engine.model import SearchModel, SupernetOptions
from nas_engine.strategies.base import Batch
from nas_engine.strategies.gradient import Gradients, GradientStrategy


class Nasp(GradientStrategy):
    name = "nasp"
    label = "NASP"

    def adapt_search_space(self, options: SupernetOptions) -> None:
        options.mixing = ProximalMixing()
        options.alpha_init = 0.5

    def attach(self, model: SearchModel, components: Components) -> None:
        super().attach(model, components)
        self.op_parameters = {cell: n.to(self.alphas[0]) / 1e6
                              for cell, n in model.op_parameter_counts().items()}

    def alpha_gradients(self, train: Batch, val: Batch) -> tuple[torch.Tensor, Gradients]:
        mixing = self.model.mixing
        mixing.all_ops = self.config.strategy.nasp_alpha_all_ops
        try:
            return self.first_order_gradients(val)
        finally:
            mixing.all_ops = False  # the w step and validation

    def alpha_terms(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The size of the derived cell in M parameters; its gradient reaches the chosen ops
        only (ᾱ·params(op) there, 0 elsewhere)."""
        penalty = self.config.strategy.nasp_size_penalty
        if not penalty:
            return None
        hard, _, _ = self.model.mixing.sample(self.model)
        return penalty * sum((straight_through(hard[cell], hard[cell] * alphas[cell]) * n).sum()
                             for cell, n in self.op_parameters.items())

    def after_alpha_update(self) -> None:
        """The proximal step of the constraint α ∈ [0, 1]: clip."""
        with torch.no_grad():
            for alpha in self.model.alphas.values():
                alpha.clamp_(0.0, 1.0)
