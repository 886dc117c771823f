"""GraSP (Wang, Zhang & Grosse, "Picking Winning Tickets Before Training by Preserving Gradient
Flow", ICLR 2020; as a NAS proxy Abdelfattah et al. 2021): Σ −θ ⊙ (H g) over the Conv2d/Linear
weights, g the loss gradient and H the Hessian of the loss (temperature 1).

H g is the gradient of z = Σ g_detached · ∂L/∂θ (a second backward pass through the graph of
the first), as zero-cost-nas, whose sign makes higher better. One batch of 64, train mode; the
costliest proxy (a double backward).
"""

from __future__ import annotations

import torch
from torch import nn

from nas_engine.proxies.base import Batch, LossFn, logits, weighted_layers


def grasp(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    x, y = batch
    weights = [layer.weight for layer in weighted_layers(model)]
    g = torch.autograd.grad(loss_fn(logits(model(x)), y), weights, allow_unused=True)
    grad_f = torch.autograd.grad(loss_fn(logits(model(x)), y), weights, create_graph=True,
                                 allow_unused=True)
    z = sum((gw.detach() * gf).sum() for gw, gf in zip(g, grad_f)
            if gw is not None and gf is not None)
    if not isinstance(z, torch.Tensor):
        return 0.0  # no weight reaches the loss
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    return sum((-w.detach() * h).sum().item() for w, h in zip(weights, hg) if h is not None)
