"""The MLP space's datasets: the held-out rows are fixed whatever the seed and never reach
training, standardisation uses the training rows only, regression1d is the documented noisy
function, and row batches resume exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_engine import tabular
from nas_engine.config import DataConfig
from nas_engine.data import held_out
from nas_engine.tabular import RowStream, load_tabular, regression1d_function


@pytest.mark.parametrize("name, rows, features, task, outputs", [
    ("regression1d", 1000, 1, "regression", 1),
    ("diabetes", 442, 10, "regression", 1),
    ("digits_flat", 1797, 64, "classification", 10),
])
def test_the_test_rows_are_fixed_and_never_train(name, rows, features, task, outputs) -> None:
    data = DataConfig(name=name, train_portion=0.75)
    a, b = load_tabular(data, 0), load_tabular(data, 1)
    assert (len(a), a.num_features, a.task, a.num_outputs) == (rows, features, task, outputs)
    assert torch.equal(a.test, b.test) and a.test_split() == b.test_split()
    assert torch.equal(a.test, held_out(rows, 0.2)[1])  # data.py's rule and SPLIT_SEED
    assert a.test_split() == {"test_rows": len(a.test), "test_sha256": a.test_digest}
    assert len(a.test) == int(np.ceil(0.2 * rows))
    assert not torch.equal(a.train, b.train)  # the run's seed splits the rest
    for s in (a, b):
        parts = [set(s.train.tolist()), set(s.val.tolist()), set(s.test.tolist())]
        assert sum(map(len, parts)) == rows and len(set().union(*parts)) == rows
        assert len(parts[0]) == int(0.75 * (rows - len(parts[2])))


def test_standardisation_uses_the_training_rows_only(monkeypatch) -> None:
    n = 200
    x = np.random.default_rng(0).normal(size=(n, 3))
    y = x.sum(1)
    test = held_out(n, 0.2)[1].numpy()
    x[test] += 1000.0  # outliers in the held-out rows: they must not move the statistics
    y[test] -= 500.0
    monkeypatch.setattr(tabular, "_raw", lambda name: (x, y))
    rows = load_tabular(DataConfig(name="diabetes"), 3)
    train = rows.train.numpy()
    expected = (x - x[train].mean(0)) / x[train].std(0, ddof=1)
    assert np.allclose(rows.features.numpy(), expected, atol=1e-4)
    assert np.allclose(rows.features[rows.train].mean(0), 0, atol=1e-5)
    assert np.allclose(rows.features[rows.train].std(0), 1, atol=1e-5)
    target = (y - y[train].mean()) / y[train].std(ddof=1)
    assert np.allclose(rows.targets[:, 0].numpy(), target, atol=1e-4)
    assert rows.features[rows.test].min() > 100  # still outliers: scaled by train's stats


def test_constant_columns_are_only_centred() -> None:
    digits = load_tabular(DataConfig(name="digits_flat"))
    assert torch.isfinite(digits.features).all()
    assert digits.targets.dtype == torch.int64 and int(digits.targets.max()) == 9


def test_regression1d_is_the_documented_noisy_function() -> None:
    x, y = tabular._regression1d()
    assert x.shape == (1000, 1) and -3 <= x.min() and x.max() <= 3
    residual = y - regression1d_function(x[:, 0])
    assert residual.std() == pytest.approx(tabular.REGRESSION1D_NOISE, rel=0.1)
    assert np.array_equal(y, tabular._regression1d()[1])  # the task's own seed, not the run's


@pytest.mark.parametrize("changes, field", [
    ({"subset": 100}, "data.subset"), ({"resize": 8}, "data.resize"),
    ({"augment": True}, "data.augment"), ({"name": "digits"}, "data.name"),
])
def test_bad_settings_name_the_field(changes, field) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        load_tabular(DataConfig(**{"name": "regression1d", **changes}))


def test_a_resumed_row_stream_continues_exactly() -> None:
    rows = load_tabular(DataConfig(name="regression1d"))
    whole = RowStream(rows, rows.train, 64, 5)
    expected = [whole.next()[0] for _ in range(25)]
    first = RowStream(rows, rows.train, 64, 5)
    for _ in range(12):
        first.next()
    second = RowStream(rows, rows.train, 64, 5)
    second.load_state_dict(first.state_dict())
    assert all(torch.equal(second.next()[0], e) for e in expected[12:])
