"""Comparing search strategies fairly: the same space, task and budget, several seeds each.
A comparison is a set of ordinary discrete runs; what it shows is computed from their
snapshots: each strategy's best-so-far curve on a common axis (evaluations or seconds) with its
mean and spread over seeds, and the table of final best scores with how often each won.

Seed 001 compares RL, evolution and gradient on its MLP space with one run each; one run says
little when outcomes differ by seed, hence seeds and spreads here.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas_engine.config import ConfigError, SearchConfig
from nas_engine.snapshot import Snapshot

AXES = ("evaluations", "seconds")

# Named comparisons: a base config, the strategies and the seeds. `strategies-mlp` is seed
# 001's comparison (RL, evolution, gradient) plus random search, on its 1-D regression.
COMPARISONS: dict[str, dict[str, Any]] = {
    "strategies-mlp": {
        "base": {"space": "mlp", "kind": "discrete", "epochs": 100, "device": "cpu",
                 "threads": 1, "data": {"name": "regression1d"},
                 "discrete": {"population": 20, "sample": 5}},
        "strategies": ["reinforce", "evolution", "gradient", "random"],
        "seeds": [0, 1, 2, 3, 4],
    },
    # Zero-shot search against random search at equal cost on the hard task: synflow ranks
    # 100 random cells (seconds), then the best are retrained in its order.
    "zeroshot-nb201": {
        "base": {"space": "nb201", "kind": "discrete", "epochs": 10, "device": "cpu",
                 "threads": 1, "data": {"name": "digits_clutter"},
                 "discrete": {"proxy": "synflow", "proxy_sample": 100}},
        "strategies": ["zeroshot", "random"],
        "seeds": [0, 1, 2],
    },
}


def comparison_configs(name: str, changes: dict[str, Any] | None = None
                       ) -> list[SearchConfig]:
    """One config per (strategy, seed) of a named comparison, `changes` (dotted paths)
    applied to each."""
    if name not in COMPARISONS:
        raise ConfigError("comparison", "one of " + ", ".join(COMPARISONS), name)
    spec = COMPARISONS[name]
    base = SearchConfig.from_dict(json.loads(json.dumps(spec["base"])))
    base = base.with_changes(changes or {})
    return [base.with_changes({"discrete.strategy": strategy, "seed": seed})
            for strategy in spec["strategies"] for seed in spec["seeds"]]


def best_so_far(snap: Snapshot, axis: str = "evaluations") -> tuple[np.ndarray, np.ndarray]:
    """The incumbent's score after each evaluation, against the evaluation's index or the
    search's cost in seconds then: the strategy's own time plus the training time of every
    evaluation, answered from the database or not, so that runs sharing one database (random
    search and evolution start from the same cells on the same seed) are charged alike."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {', '.join(AXES)}; got {axis!r}")
    view = snap.epochs
    x = np.arange(1, len(view) + 1, dtype=float) if axis == "evaluations" else view.cost_s
    return np.asarray(x, dtype=float), np.asarray(view.best_score, dtype=float)


@dataclass(frozen=True)
class StrategyCurve:
    """A strategy's best-so-far over its runs on a shared grid: mean and the range (min-max)
    over seeds; a run adds to a grid point only once it has reached it."""

    strategy: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int


def _strategy(snap: Snapshot) -> str:
    return snap.config.discrete.strategy


def curves(snaps: Sequence[Snapshot], axis: str = "evaluations", points: int = 100
           ) -> list[StrategyCurve]:
    """Per strategy (in order of first appearance), the best-so-far curves of its runs on one
    grid from the earliest to the latest x any run reached. A run's value at x is its
    incumbent then (step-wise), and its final one after it ended; a strategy's curve starts
    where every one of its runs has its first evaluation, so the mean of best-so-far curves
    never falls (on the seconds axis the runs' first evaluations differ in cost)."""
    series = [(s, *best_so_far(s, axis)) for s in snaps if len(s.epochs)]
    if not series:
        return []
    top = max(float(x[-1]) for _, x, _ in series)
    bottom = min(float(x[0]) for _, x, _ in series)
    grid = np.linspace(bottom, top, points) if top > bottom else np.array([top])
    out = []
    for strategy in dict.fromkeys(_strategy(s) for s, _, _ in series):
        rows = []
        for snap, x, y in series:
            if _strategy(snap) != strategy:
                continue
            at = np.searchsorted(x, grid, side="right") - 1
            rows.append(np.where(at >= 0, y[np.clip(at, 0, None)], np.nan))
        values = np.vstack(rows)
        every = ~np.isnan(values).any(axis=0)  # all its runs have begun
        values = values[:, every]
        out.append(StrategyCurve(strategy, grid[every], values.mean(axis=0),
                                 values.min(axis=0), values.max(axis=0), len(rows)))
    return out


@dataclass(frozen=True)
class FinalRow:
    """A strategy's final best scores over its runs: mean, sample sd (0 for one run), and
    wins: seeds on which its final best was the highest of all strategies run on that seed
    (a tie is a win for each)."""

    strategy: str
    runs: int
    mean: float
    sd: float
    best: float
    wins: int
    test_mean: float | None  # the incumbents' held-out scores
    evaluations: float  # mean evaluations done
    cache_hits: float  # mean database answers
    seconds: float  # mean search cost (`cost_s`: training seconds, cached ones included)


def final_table(snaps: Sequence[Snapshot]) -> list[FinalRow]:
    finals = [(s, s.epochs) for s in snaps if len(s.epochs)]
    by_seed: dict[int, float] = {}
    for snap, view in finals:
        seed = snap.config.seed
        by_seed[seed] = max(by_seed.get(seed, -np.inf), float(view.best_score[-1]))
    rows = []
    for strategy in dict.fromkeys(_strategy(s) for s, _ in finals):
        mine = [(s, v) for s, v in finals if _strategy(s) == strategy]
        best = [float(v.best_score[-1]) for _, v in mine]
        tests = [_incumbent_test(v) for _, v in mine]
        tests = [t for t in tests if t is not None]
        rows.append(FinalRow(
            strategy, len(mine), statistics.mean(best),
            statistics.stdev(best) if len(best) > 1 else 0.0, max(best),
            sum(float(v.best_score[-1]) >= by_seed[s.config.seed] for s, v in mine),
            statistics.mean(tests) if tests else None,
            statistics.mean(len(v) for _, v in mine),
            statistics.mean(float(np.nansum(v.cached)) for _, v in mine),
            statistics.mean(float(v.cost_s[-1]) for _, v in mine)))
    return rows


def _incumbent_test(view: Any) -> float | None:
    """The held-out score of the evaluation that holds the final best (the first such)."""
    scores = np.asarray(view.score, dtype=float)
    value = float(view.test_score[int(np.nanargmax(scores))])
    return None if np.isnan(value) else value
