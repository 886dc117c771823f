"""What every zero-cost proxy shares: the signature, the "undefined" signal, the layers the
SamsungLabs zero-cost-nas measures sum over, and the copy of the network a proxy works on.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021) score an untrained
network on one batch; their measures (and NASLib's) sum a per-weight value over the weights of
every Conv2d and Linear layer, which `weighted_layers` lists.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

Tensor = torch.Tensor
Batch = tuple[Tensor, Tensor]  # (inputs, targets)
LossFn = Callable[[Tensor, Tensor], Tensor]
Proxy = Callable[[nn.Module, Batch, LossFn], float]


class Undefined(Exception):
    """A proxy that does not apply to this network or batch (the reason is the message): the
    score is recorded as undefined (None), never as a made-up number."""


def logits(out: Tensor | tuple[Tensor, ...]) -> Tensor:
    """The main output: the DARTS evaluation network returns (logits, aux) in train mode."""
    return out[0] if isinstance(out, tuple) else out


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear layers, in module order (zero-cost-nas `get_layer_metric_array`)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def working_copy(model: nn.Module) -> nn.Module:
    """A deep copy a proxy may change freely (weights, BN statistics, modes, hooks), so the
    caller's network is never touched.

    The copy scores the network as it is evaluated: the DARTS auxiliary head (a training aid,
    left out of the parameter count too) is dropped, drop path is off, and it is in train mode
    (BatchNorm on batch statistics, as zero-cost-nas runs its measures) with dropout off, so a
    score is a function of the weights and the batch, not of a random thinning.
    """
    model = copy.deepcopy(model)
    if getattr(model, "auxiliary_head", None) is not None:
        model.auxiliary_head = None
    if hasattr(model, "drop_path_prob"):
        model.drop_path_prob = 0.0
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    for p in model.parameters():
        p.requires_grad_(True)
        p.grad = None
    return model


def loss_gradients(model: nn.Module, batch: Batch, loss_fn: LossFn) -> None:
    """One forward and backward pass of the loss on the batch: the weights' `.grad`."""
    x, y = batch
    loss_fn(logits(model(x)), y).backward()
