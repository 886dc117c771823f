"""The size baselines: #params and FLOPs, which NAS-Bench-Suite-Zero (Krishnakumar et al.,
NeurIPS 2022 Datasets & Benchmarks) found about as predictive as most zero-cost proxies
(REFERENCE.md §4). The network's own counts (`evaluation.networks`): trainable parameters
without the auxiliary head, and multiply-accumulates of one example of the batch's shape.
"""

from __future__ import annotations

from torch import nn

from nas_engine.evaluation.networks import count_flops, count_parameters
from nas_engine.proxies.base import Batch, LossFn


def params(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    return float(count_parameters(model))


def flops(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    return float(count_flops(model, tuple(batch[0].shape[1:])))
