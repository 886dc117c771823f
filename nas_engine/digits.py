"""The UCI hand-written digits that scikit-learn bundles (1,797 images of 8×8, 0..16), read
from scikit-learn's own file.

Why not `sklearn.datasets.load_digits`: importing `sklearn.datasets` takes about 2 s of CPU
(it pulls in scipy and pandas), paid by every process that trains on digits: each Ray worker of
a sweep, each run the app starts. Reading the file takes milliseconds. Where an installation
keeps the file elsewhere, `load_digits` is used after all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

FILE = Path("datasets", "data", "digits.csv.gz")  # inside the scikit-learn package


def bundled_file() -> Path | None:
    """scikit-learn's digits file, found without importing scikit-learn; None if absent."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / FILE
    return path if path.is_file() else None


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(pixels (1797, 64) as float64 in 0..16, labels (1797,) as int64), as
    `load_digits(return_X_y=True)` gives them."""
    path = bundled_file()
    if path is None:
        from sklearn.datasets import load_digits

        pixels, labels = load_digits(return_X_y=True)
        return pixels, labels.astype(np.int64)
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)
