"""Read-only measurements of α and the derived cell (the collapse instruments)."""

from __future__ import annotations

import numpy as np


def edge_entropy(probs: np.ndarray) -> np.ndarray:
    """−Σ_o p_o log p_o per edge (row) of softmax α; ln(ops) is an undecided edge, 0 a decided
    one."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def mean_entropy(probs_by_cell: dict[str, np.ndarray]) -> float:
    """Mean per-edge entropy over every edge of every cell type."""
    return float(np.concatenate([edge_entropy(p) for p in probs_by_cell.values()]).mean())
