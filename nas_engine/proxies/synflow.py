"""SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
synaptic flow", NeurIPS 2020; as a NAS proxy Abdelfattah et al. 2021): log Σ θ ⊙ ∂R/∂θ over the
Conv2d/Linear weights, R = Σ f(1) the summed output of the network with every parameter
replaced by |θ| in float64, BatchNorm off (its forward is the identity, zero-cost-nas's
`bn=False` copy), eval mode, on an all-ones input.

The input is one all-ones example of the batch's example shape ([1] + x.shape[1:], as the
official code): the score does not depend on the batch's values, and with BN off the samples
are independent, so a batch of n ones would add only log n. The log (as the issue's
convention) keeps the product of layer norms in range; a zero flow (an all-`none` cell)
is log 0 = −inf: undefined. With BN off the score is invariant to rescaling consecutive
bias-free layers by α and 1/α.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_engine.proxies.base import Batch, LossFn, Tensor, logits, weighted_layers

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _identity(x: Tensor) -> Tensor:
    return x


def synflow(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    model.eval().double()
    for module in model.modules():
        if isinstance(module, _NORMS):
            module.forward = _identity  # BN off
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones(1, *batch[0].shape[1:], dtype=torch.float64, device=batch[0].device)
    logits(model(ones)).sum().backward()
    flow = sum((layer.weight * layer.weight.grad).sum().item()
               for layer in weighted_layers(model) if layer.weight.grad is not None)
    return math.log(flow) if flow > 0 else float("-inf")
