"""NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021, v2 of the
paper): log|K_H|, K_H[i, j] the number of rectified units on which samples i and j agree
(both on or both off), N_A minus their Hamming distance.

Each rectifier's input is flattened per sample into binary codes c (1 where > 0) and the
kernel sums c cᵀ + (1 − c)(1 − c)ᵀ over every rectifier call of one forward pass (train mode,
the fresh network's default, as the official code); each op of a retrained cell applies its
own ReLU (as the official ReLU modules), so each call counts. The batch is the one given
(64 images by default; the paper uses 128). A singular kernel (two samples with the same codes, e.g.
duplicate inputs) has log-determinant −inf: undefined. A network without ReLU-like units
(a tanh MLP) has no codes: undefined.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_engine.proxies.activations import RectifierInputs
from nas_engine.proxies.base import Batch, LossFn, Undefined

Tensor = torch.Tensor


def hamming_kernel(codes: Tensor) -> Tensor:
    """K = c cᵀ + (1 − c)(1 − c)ᵀ of (batch, units) 0/1 codes, in float64."""
    c = codes.double()
    return c @ c.T + (1 - c) @ (1 - c).T


def naswot(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    x = batch[0]
    kernel = x.new_zeros(len(x), len(x), dtype=torch.float64)

    calls = 0

    def add(inp: Tensor) -> None:
        nonlocal kernel, calls
        calls += 1
        kernel = kernel + hamming_kernel(inp.reshape(len(x), -1) > 0)

    with torch.no_grad(), RectifierInputs(add):
        model(x)
    if not calls:
        raise Undefined("no ReLU-like units: NASWOT needs rectifier on/off codes")
    sign, logdet = torch.linalg.slogdet(kernel)
    return logdet.item() if sign > 0 else float("-inf")  # K is PSD: sign ≤ 0 means singular
