"""grad_norm (Abdelfattah et al., ICLR 2021, SamsungLabs zero-cost-nas): Σ_layers ‖∂L/∂W‖₂,
the Euclidean norm of the loss gradient of each Conv2d/Linear weight, summed over layers.
One batch of 64, train mode (BatchNorm on batch statistics); biases and BN are not counted.
"""

from __future__ import annotations

from torch import nn

from nas_engine.proxies.base import Batch, LossFn, loss_gradients, weighted_layers


def grad_norm(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    loss_gradients(model, batch, loss_fn)
    return sum(layer.weight.grad.norm().item() for layer in weighted_layers(model)
               if layer.weight.grad is not None)
