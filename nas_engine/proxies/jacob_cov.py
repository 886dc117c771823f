"""jacob_cov (Mellor et al. 2021, v1 of "Neural Architecture Search without Training"; the
form of SamsungLabs zero-cost-nas): with Σ the correlation matrix of the batch's input
Jacobians (`jacobians.input_jacobians`) and λ its eigenvalues,
score = −Σ_i [log(λ_i + k) + 1/(λ_i + k)], k = 1e-5: highest when the Jacobians of different
samples are uncorrelated (Σ ≈ I). One batch of 64; train mode. A sample whose Jacobian is
constant makes the correlation NaN: undefined.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from nas_engine.proxies.base import Batch, LossFn
from nas_engine.proxies.jacobians import input_jacobians

K = 1e-5


def correlation_score(jacobians: np.ndarray) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jacobians)
    if not np.all(np.isfinite(corr)):
        return float("nan")
    eig = np.linalg.eigvalsh(corr)  # symmetric: real eigenvalues
    return float(-np.sum(np.log(eig + K) + 1.0 / (eig + K)))


def jacob_cov(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    return correlation_score(input_jacobians(model, batch))
