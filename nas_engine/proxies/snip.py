"""SNIP (Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR
2019; as a NAS proxy Abdelfattah et al. 2021): Σ |θ ⊙ ∂L/∂θ| over the Conv2d/Linear weights.

zero-cost-nas takes the gradient of a mask of ones multiplying each weight; that gradient is
θ ⊙ ∂L/∂θ, so it is computed directly. One batch of 64, train mode.
"""

from __future__ import annotations

from torch import nn

from nas_engine.proxies.base import Batch, LossFn, loss_gradients, weighted_layers


def snip(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    loss_gradients(model, batch, loss_fn)
    return sum((layer.weight * layer.weight.grad).abs().sum().item()
               for layer in weighted_layers(model) if layer.weight.grad is not None)
