"""Feature vectors for the MLP space: seed 001's noisy 1-D function, scikit-learn's diabetes
(both regression) and the digits as 64 pixels (classification), with the held-out test part of
`data.py` and seeded batches.

The held-out rows come from `data.held_out` (SPLIT_SEED, never the run's seed), so a dataset's
test rows are the same for every retrain and no search scores on them. The rest is split
train/val by `data.train_portion` with the run's seed. Features, and regression targets, are
standardised with the training part's statistics only: nothing of the val or test rows leaks
into the inputs. An MSE is therefore in units of the training targets' variance: predicting
their mean scores about 1.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas_engine.catalog import REGRESSION_DATASETS, TABULAR_DATASETS
from nas_engine.config import DataConfig
from nas_engine.data import Shuffle, held_out, split_indices
from nas_engine.digits import load_digits_arrays

# regression1d, seed 001's kind of task: y = sin(2x) + 0.3·x + ε, x ~ U(−3, 3), ε ~ N(0, 0.2²),
# 1000 points drawn once from a fixed task seed (every run of the task sees the same points).
# After standardisation the noise alone leaves an MSE of about 0.08.
REGRESSION1D_POINTS = 1000
REGRESSION1D_NOISE = 0.2
REGRESSION1D_SEED = 1


def regression1d_function(x: np.ndarray) -> np.ndarray:
    """The smooth function under the noise."""
    return np.sin(2.0 * x) + 0.3 * x


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field by field is ambiguous
class TabularSet:
    """A dataset's rows in memory, standardised, with the row indices of each part.

    `targets` is (N, 1) float32 for regression (standardised), (N,) int64 classes otherwise.
    """

    name: str
    task: str  # "regression" | "classification"
    features: torch.Tensor  # (N, F) float32
    targets: torch.Tensor
    num_outputs: int  # 1 for regression, the number of classes otherwise
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor  # the held-out rows, the same whatever the seed
    test_digest: str  # sha256 of the dataset's name and its test rows

    @property
    def num_features(self) -> int:
        return self.features.shape[1]

    def test_split(self) -> dict[str, Any]:
        """What a run folder records of the held-out part (`split.json`)."""
        return {"test_rows": len(self.test), "test_sha256": self.test_digest}

    def __len__(self) -> int:
        return self.features.shape[0]


def _regression1d() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(REGRESSION1D_SEED)
    x = rng.uniform(-3.0, 3.0, REGRESSION1D_POINTS)
    y = regression1d_function(x) + rng.normal(0.0, REGRESSION1D_NOISE, REGRESSION1D_POINTS)
    return x[:, None], y


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, targets) as the source gives them; scikit-learn's sets are bundled (offline)."""
    if name == "regression1d":
        return _regression1d()
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(return_X_y=True)
    return load_digits_arrays()  # digits_flat: 64 pixels, 0..16


def _standardise(values: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(values − mean) / std per column, both of the training rows; a column constant there
    (digits' border pixels) is only centred."""
    mean = values[train].mean(0)
    std = values[train].std(0)
    return (values - mean) / torch.where(std > 0, std, torch.ones_like(std))


def load_tabular(data: DataConfig, seed: int = 0) -> TabularSet:
    """Load a feature-vector dataset, hold out its test rows (fixed whatever the seed), split
    the rest train/val with `seed` and standardise with the training rows' statistics."""
    data.validate()
    if data.name not in TABULAR_DATASETS:
        raise ValueError(f"data.name must be a feature-vector dataset ("
                         f"{', '.join(TABULAR_DATASETS)}); got {data.name!r}")
    for field, value in (("data.subset", data.subset), ("data.resize", data.resize)):
        if value is not None:
            raise ValueError(f"{field} must be null for the feature-vector datasets (it sizes "
                             f"images); got {value!r}")
    if data.augment:
        raise ValueError("data.augment must be false for the feature-vector datasets (it "
                         "crops and flips images); got True")
    x, y = _raw(data.name)
    search, test = held_out(len(x), data.held_out_portion)
    train_part, val_part = split_indices(len(search), data.train_portion, seed)
    train, val = search[train_part], search[val_part]
    features = _standardise(torch.as_tensor(x, dtype=torch.float32), train)
    if data.name in REGRESSION_DATASETS:
        task, outputs = "regression", 1
        targets = _standardise(torch.as_tensor(y, dtype=torch.float32)[:, None], train)
    else:
        targets = torch.as_tensor(y, dtype=torch.int64)
        task, outputs = "classification", int(targets.max()) + 1
    digest = hashlib.sha256(f"{data.name}:{sorted(test.tolist())}".encode()).hexdigest()
    return TabularSet(data.name, task, features, targets, outputs, train, val, test, digest)


class RowStream:
    """Endless, seeded, reshuffled-per-pass batches of some rows of a TabularSet, on one device
    (`data.BatchStream`'s contract for rows: its state can be saved and a resumed retrain sees
    the batches an uninterrupted one would have)."""

    def __init__(self, rows: TabularSet, indices: torch.Tensor, batch_size: int, seed: int,
                 device: torch.device | str = "cpu") -> None:
        if len(indices) == 0:
            raise ValueError("a RowStream needs at least one row")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.num_samples = len(indices)
        self.batches_per_pass = math.ceil(self.num_samples / batch_size)
        self._x = rows.features[indices].to(self.device)
        self._y = rows.targets[indices].to(self.device)
        self._order = Shuffle(self.num_samples, seed)

    def __len__(self) -> int:
        return self.batches_per_pass

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        part, _ = self._order.take(self.batch_size)
        idx = self._order.perm[part].to(self.device)
        return self._x[idx], self._y[idx]

    def state_dict(self) -> dict[str, Any]:
        return self._order.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._order.load_state_dict(state, "rows")
