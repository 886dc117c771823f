"""Fisher (Theis et al. 2018, Turner et al. 2020 "BlockSwap"; as a NAS proxy Abdelfattah et
al. 2021): per output channel k of each Conv2d/Linear layer, with a its activation (the
layer's output) and g = ∂L/∂a, Δ_k = ½ · mean_n (Σ_spatial a·g)², the loss change estimated
for removing the channel.

The total is zero-cost-nas's: each channel's Δ_k is broadcast to every weight of that channel
and summed, i.e. Σ_layers Σ_k Δ_k · (weights per output channel). One batch of 64, train mode;
a layer called twice in a pass adds both calls.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_engine.proxies.base import Batch, LossFn, Tensor, logits, weighted_layers


def fisher(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    total = torch.zeros((), dtype=torch.float64)

    def on_output(layer: nn.Module, _: tuple[Tensor, ...], out: Tensor) -> None:
        per_channel = layer.weight[0].numel()
        act = out.detach()

        def on_grad(grad: Tensor) -> None:
            nonlocal total
            g_nk = act * grad if act.dim() == 2 else (act * grad).sum(tuple(range(2, act.dim())))
            total = total + g_nk.double().pow(2).mean(0).mul(0.5).sum() * per_channel

        if out.requires_grad:
            out.register_hook(on_grad)

    handles = [layer.register_forward_hook(on_output) for layer in weighted_layers(model)]
    try:
        x, y = batch
        loss_fn(logits(model(x)), y).backward()
    finally:
        for handle in handles:
            handle.remove()
    return total.item()
