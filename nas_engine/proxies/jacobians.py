"""Input Jacobians of a batch, shared by jacob_cov and EPE-NAS (Mellor et al. 2021 v1; Lopes
et al. 2021): the gradient of the sum of each sample's outputs with respect to its input,
`d(Σ_k f_k(x_n)) / dx_n`, flattened to one row per sample (one backward pass of all ones, as
the official code; in train mode BatchNorm couples the samples slightly, as it does there).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from nas_engine.proxies.base import Batch, Undefined, logits


def input_jacobians(model: nn.Module, batch: Batch) -> np.ndarray:
    """(batch, input size) float64 rows; a correlation needs inputs of two values or more."""
    if batch[0][0].numel() < 2:
        raise Undefined("Jacobian correlations need inputs of at least two values")
    x = batch[0].detach().clone().requires_grad_(True)
    out = logits(model(x))
    out.backward(out.new_ones(out.shape))
    return x.grad.reshape(len(x), -1).double().cpu().numpy()
