"""A run's records as columns that only grow, so a snapshot is a window, not a copy.

The worker appends; a reader asks for `view()` and gets arrays of the first n rows. Rows below n
are never written again and a growing buffer is replaced, never resized in place, so a view
stays valid and consistent however long the run goes on — and taking one costs the same at
epoch 1 and epoch 100.

The view holds every field a page draws (λmax, the alarm and the regularizer terms included),
so pages draw from snapshots alone and never read the run folder behind them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas_engine.records import AlarmFields, Record, RegularizerFields

SCALARS = ("step", "epoch", "time_s", "train_loss", "train_acc", "val_loss", "val_acc",
           "entropy", "skip_count", "hessian_max_eigenvalue", "test_acc",
           "score", "best_score", "test_score", "seconds", "cost_s", "cached")  # discrete
# Per-row values kept as recorded: view field -> record key. A record without one gets None,
# or {} for the dict-valued ones (step records carry no alarm; old records no regularizers).
OBJECTS = {"genotypes": "genotype", "live": "live", "regularizers": "regularizers",
           "alarms": "alarm", "early_stops": "early_stop", "archs": "arch",
           "strategy_views": "strategy"}
_DICT_VALUED = ("live", "regularizers")


class _Prefix(Sequence):
    """The first n items of a list that only grows (no copy)."""

    def __init__(self, items: list[Any], n: int) -> None:
        self._items, self._n = items, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):  # noqa: ANN001, ANN204 - Sequence protocol
        if isinstance(index, slice):
            return [self._items[i] for i in range(*index.indices(self._n))]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError(index)
        return self._items[index]


@dataclass(frozen=True)
class HistoryView:
    """Read-only arrays of equal length n: one row per record. Missing values are NaN (λmax
    where it was not measured) or None (no alarm yet)."""

    step: np.ndarray
    epoch: np.ndarray
    time_s: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    entropy: np.ndarray
    skip_count: np.ndarray
    hessian_max_eigenvalue: np.ndarray
    test_acc: np.ndarray  # a retrain's last epoch
    score: np.ndarray  # a discrete run's evaluations: higher is better (accuracy, −MSE)
    best_score: np.ndarray  # the incumbent's score so far
    test_score: np.ndarray
    seconds: np.ndarray  # the evaluation's wall time
    cost_s: np.ndarray  # the search's cost so far (training seconds, cached ones included)
    cached: np.ndarray  # 1 where the evaluations database answered
    alphas: dict[str, np.ndarray]  # cell type -> (n, edges, ops) softmax α
    alphas_raw: dict[str, np.ndarray]  # the same for α itself
    genotypes: Sequence[dict[str, Any]]
    live: Sequence[dict[str, float]]
    regularizers: Sequence[dict[str, RegularizerFields]]  # term -> weight in force, value
    alarms: Sequence[AlarmFields | None]  # the collapse alarm once a rule fired
    early_stops: Sequence[AlarmFields | None]  # the alarm that ended the search
    archs: Sequence[str | None]  # a discrete run's evaluated architectures
    strategy_views: Sequence[dict[str, Any] | None]  # population, controller probabilities

    def __len__(self) -> int:
        return len(self.step)

    def last(self, column: str) -> float | None:
        """The newest finite value of a scalar column (λmax of the last measured epoch)."""
        values = getattr(self, column)
        finite = values[np.isfinite(values)]
        return float(finite[-1]) if len(finite) else None


class History:
    def __init__(self, alpha_shapes: dict[str, tuple[int, int]], capacity: int = 64) -> None:
        self._n = 0
        self._columns = {name: np.full(capacity, np.nan) for name in SCALARS}
        self._alphas = {c: np.zeros((capacity, *shape)) for c, shape in alpha_shapes.items()}
        self._raw = {c: np.zeros((capacity, *shape)) for c, shape in alpha_shapes.items()}
        self._objects: dict[str, list[Any]] = {name: [] for name in OBJECTS}

    def __len__(self) -> int:
        return self._n

    def append(self, record: Record) -> None:
        n = self._n
        if n == len(self._columns["step"]):
            self._grow()
        for name, column in self._columns.items():
            value = record.get(name)
            column[n] = np.nan if value is None else value
        for cell, array in self._alphas.items():
            array[n] = record["alphas"][cell]
            self._raw[cell][n] = record["alphas_raw"][cell]
        for name, key in OBJECTS.items():
            value = record.get(key)
            self._objects[name].append({} if value is None and name in _DICT_VALUED else value)
        self._n = n + 1  # last: a concurrent view never sees a half-written row

    def _grow(self) -> None:
        def bigger(a: np.ndarray) -> np.ndarray:
            b = np.full((2 * len(a), *a.shape[1:]), np.nan) if a.ndim == 1 else np.zeros(
                (2 * len(a), *a.shape[1:]))
            b[: len(a)] = a
            return b

        self._columns = {k: bigger(v) for k, v in self._columns.items()}
        self._alphas = {k: bigger(v) for k, v in self._alphas.items()}
        self._raw = {k: bigger(v) for k, v in self._raw.items()}

    def view(self) -> HistoryView:
        n = self._n
        columns, alphas, raw = self._columns, self._alphas, self._raw

        def window(a: np.ndarray) -> np.ndarray:
            v = a[:n]
            v.flags.writeable = False
            return v

        return HistoryView(
            **{name: window(columns[name]) for name in SCALARS},
            alphas={cell: window(a) for cell, a in alphas.items()},
            alphas_raw={cell: window(a) for cell, a in raw.items()},
            **{name: _Prefix(items, n) for name, items in self._objects.items()},
        )
