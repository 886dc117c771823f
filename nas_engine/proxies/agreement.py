"""How well a score ranks architectures the way retrained accuracy does: Spearman ρ and
Kendall τ (scipy's), each with a paired-bootstrap 95 % interval (scipy's `bootstrap`, the
percentile method: resampling architectures), and the top-10 % overlap (Abdelfattah et al.
2021 report it beside ρ: of the best tenth by accuracy, the share the score also puts in its
best tenth). Architectures whose score is undefined are left out and counted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

RESAMPLES = 1000
VOTE = "vote"
VOTERS = ("synflow", "jacob_cov", "snip")  # Abdelfattah et al. 2021's vote
TOP_SHARE = 0.1


@dataclass(frozen=True)
class Agreement:
    """One score's agreement with the truth over `n` architectures (`undefined` more had no
    score). A statistic is None where it is undefined (fewer than 3 scores, or constant)."""

    proxy: str
    n: int
    undefined: int
    spearman: float | None
    spearman_ci: tuple[float, float] | None
    kendall: float | None
    kendall_ci: tuple[float, float] | None
    top10_overlap: float | None
    ms_per_arch: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return stats.spearmanr(x, y).statistic


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    return stats.kendalltau(x, y).statistic


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _interval(statistic: Any, x: np.ndarray, y: np.ndarray, seed: int
              ) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of scipy's paired bootstrap distribution, over the
    resamples where the statistic is defined (a resample of a small sample can be constant);
    None when fewer than half are."""
    with warnings.catch_warnings():  # a constant resample's NaN
        warnings.simplefilter("ignore")
        result = stats.bootstrap((x, y), statistic, paired=True, vectorized=False,
                                 n_resamples=RESAMPLES, method="percentile",
                                 rng=np.random.default_rng(seed))
    values = np.asarray(result.bootstrap_distribution)
    values = values[np.isfinite(values)]
    if len(values) < RESAMPLES / 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def top_overlap(scores: np.ndarray, truth: np.ndarray, share: float = TOP_SHARE) -> float:
    """Of the best `share` of architectures by `truth`, the fraction also in the best `share`
    by `scores` (at least one architecture; ties broken by position)."""
    k = max(1, round(share * len(truth)))
    best_truth = set(np.argsort(-truth, kind="stable")[:k].tolist())
    best_score = set(np.argsort(-scores, kind="stable")[:k].tolist())
    return len(best_truth & best_score) / k


def agreement(proxy: str, scores: Sequence[float | None], truth: Sequence[float],
              ms_per_arch: float | None = None, seed: int = 0) -> Agreement:
    """`scores[i]` (None: undefined) against `truth[i]`, both higher-is-better."""
    if len(scores) != len(truth):
        raise ValueError(f"{proxy}: {len(scores)} scores for {len(truth)} accuracies")
    pairs = [(s, t) for s, t in zip(scores, truth, strict=True) if s is not None]
    undefined = len(scores) - len(pairs)
    x = np.array([s for s, _ in pairs], dtype=float)
    y = np.array([t for _, t in pairs], dtype=float)
    if len(pairs) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Agreement(proxy, len(pairs), undefined, None, None, None, None,
                         top_overlap(x, y) if len(pairs) else None, ms_per_arch)
    return Agreement(proxy, len(pairs), undefined,
                     _finite(_spearman(x, y)), _interval(_spearman, x, y, seed),
                     _finite(_kendall(x, y)), _interval(_kendall, x, y, seed),
                     top_overlap(x, y), ms_per_arch)


def rank_vote(columns: Sequence[Sequence[float | None]]) -> list[float | None]:
    """The vote of several scores (zero-cost-nas' synflow + jacob_cov + snip): each
    architecture's mean rank across them (higher is better), undefined where any is."""
    n = len(columns[0])
    defined = [i for i in range(n) if all(c[i] is not None for c in columns)]
    votes: list[float | None] = [None] * n
    if not defined:
        return votes
    ranks = [stats.rankdata([c[i] for i in defined]) for c in columns]
    for j, i in enumerate(defined):
        votes[i] = float(np.mean([r[j] for r in ranks]))
    return votes
