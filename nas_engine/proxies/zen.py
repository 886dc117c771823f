"""Zen-score (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
ICCV 2021): log E‖f(x) − f(x + αε)‖ + Σ_BN log σ̄, with f the feature map before global
pooling, x, ε ~ N(0, 1), α = 0.01, the Conv2d/Linear weights re-drawn from N(0, 1) (BN
weight 1, bias 0, biases 0), train mode.

‖·‖ is the official L1 sum per sample, averaged over the batch; σ̄ of a BatchNorm layer is
sqrt of the mean over channels of its input's batch variance (the paper's definition; the
official code reads `running_var`, which after one pass is mostly its initial 1). The input
is random, not the data: only the batch's shape (64 samples) is used, one repeat (the paper
averages 32), drawn from a generator seeded `SEED` so the score is deterministic. f is the
input of the last global-pooling layer, or of the last Linear layer in a network without one
(the MLP's head). A network whose features ignore the input (an all-`none` cell) gives
log 0 = −inf: undefined.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_engine.proxies.base import Batch, LossFn, Tensor, Undefined, weighted_layers

ALPHA = 0.01
SEED = 0
_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _log(value: float) -> float:
    return math.log(value) if value > 0 else float("-inf")


def gaussian_init(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.normal_(generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, _NORMS) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()


def feature_layer(model: nn.Module) -> nn.Module:
    """The layer whose input is the pre-pooling feature map."""
    pools = [m for m in model.modules() if isinstance(m, _POOLS)]
    layers = pools or weighted_layers(model)
    if not layers:
        raise Undefined("Zen-score needs a pooling or Linear layer to read features at")
    return layers[-1]


def zen(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    x = batch[0]
    generator = torch.Generator(device=x.device).manual_seed(SEED)
    gaussian_init(model, generator)
    features: list[Tensor] = []
    log_sigma: list[float] = []

    def on_features(_: nn.Module, inp: tuple[Tensor, ...]) -> None:
        features.append(inp[0])

    def on_norm(_: nn.Module, inp: tuple[Tensor, ...]) -> None:
        dims = [d for d in range(inp[0].dim()) if d != 1]  # all but the channels
        log_sigma.append(0.5 * _log(inp[0].var(dims, unbiased=False).mean().item()))

    shape, kw = x.shape, {"generator": generator, "device": x.device, "dtype": x.dtype}
    clean = torch.randn(shape, **kw)
    mixed = clean + ALPHA * torch.randn(shape, **kw)
    handles = [feature_layer(model).register_forward_pre_hook(on_features)]
    norms = [m.register_forward_pre_hook(on_norm) for m in model.modules()
             if isinstance(m, _NORMS)]
    try:
        with torch.no_grad():
            model(clean)
            for handle in norms:  # σ̄ from the clean pass only
                handle.remove()
            model(mixed)
    finally:
        for handle in handles + norms:
            handle.remove()
    half = len(features) // 2  # the feature layer's calls of each pass
    diff = (features[half - 1] - features[-1]).abs().reshape(len(x), -1).sum(1).mean().item()
    return _log(diff) + sum(log_sigma)
