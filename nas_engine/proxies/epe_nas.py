"""EPE-NAS (Lopes, Alirezazadeh & Alexandre, "EPE-NAS: Efficient Performance Estimation
Without Training for NAS", ICANN 2021): the input Jacobians' correlations within each class.

For each class c with at least two samples in the batch, s_c = Σ_ij log(|Σ_c[i, j]| + k)
(Σ_c the correlation matrix of its samples' Jacobians, k = 1e-5); the score is Σ_c |s_c| for
up to 100 classes, and for more, with s_c divided by the class's sample count,
Σ_c Σ_c' |s_c − s_c'| / (classes seen), as the official code. One batch of 64, train mode.
A class with one sample in the batch has a trivial 1×1 matrix and is skipped (the official
code adds its log(1 + k) ≈ 1e-5). Needs class labels: undefined for a regression.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nas_engine.proxies.base import Batch, LossFn, Undefined
from nas_engine.proxies.jacobians import input_jacobians

K = 1e-5
MANY_CLASSES = 100


def class_scores(jacobians: np.ndarray, labels: np.ndarray, many: bool) -> list[float]:
    scores = []
    for c in np.unique(labels):
        rows = jacobians[labels == c]
        if len(rows) < 2:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            s = float(np.sum(np.log(np.abs(np.corrcoef(rows)) + K)))
        scores.append(s / len(rows) if many else s)
    return scores


def epe_nas(model: nn.Module, batch: Batch, loss_fn: LossFn) -> float:
    y = batch[1]
    if y.dtype.is_floating_point or y.dim() != 1:
        raise Undefined("EPE-NAS needs class labels (this batch is a regression)")
    labels = y.cpu().numpy()
    many = len(np.unique(labels)) > MANY_CLASSES
    scores = class_scores(input_jacobians(model, batch), labels, many)
    if not scores:
        raise Undefined("EPE-NAS needs a class with two samples in the batch")
    if not many:
        return float(np.sum(np.abs(scores)))
    s = torch.tensor(scores, dtype=torch.float64)
    return float((s[:, None] - s[None, :]).abs().sum() / len(s))
