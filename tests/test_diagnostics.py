"""Collapse instruments: λmax against the dense Hessian, the early-stop rules on synthetic
histories, and the recorded diagnostics of a real search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_engine.config import SearchConfig
from nas_engine.diagnostics import (
    darts_plus_rule,
    edge_entropy,
    first_alarm,
    hessian_max_eigenvalue,
    parameter_free_mass,
    rdarts_rule,
    top_margin,
)
from nas_engine.model import SearchModel
from nas_engine.search import Search
from nas_engine.spaces import make_space


def test_per_edge_measures() -> None:
    probs = np.array([[0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]])
    assert edge_entropy(probs)[0] == pytest.approx(math.log(4))
    assert edge_entropy(probs)[1] == pytest.approx(-(0.7 * math.log(0.7) + 0.3 * math.log(0.1)))
    assert top_margin(probs) == pytest.approx([0.0, 0.6])
    ops = ["none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"]
    assert parameter_free_mass(probs, ops) == pytest.approx((0.75 + 0.9) / 2)


def test_lambda_max_matches_dense_hessian() -> None:
    """On NB201's 6x5 α (30 parameters) the dense Hessian is cheap to take exactly."""
    config = SearchConfig(space="nb201").with_changes(
        {"network": {"channels": 4, "layers": 3, "cells_per_stage": 1}})
    torch.manual_seed(0)
    model = SearchModel(make_space(config), 1, 3, 8).double()
    with torch.no_grad():
        for a in model.arch_parameters():
            a.normal_(0, 1.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=g)
    params = model.arch_parameters()
    shapes = [p.shape for p in params]

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        chunks, i = [], 0
        for shape in shapes:
            n = math.prod(shape)
            chunks.append(flat[i:i + n].view(shape))
            i += n
        weights = {c: F.softmax(a, -1) for c, a in zip(model.alphas.keys(), chunks)}
        return F.cross_entropy(model.net(x, weights), y)

    flat = torch.cat([p.detach().flatten() for p in params])
    dense = torch.autograd.functional.hessian(loss_of, flat)
    top = torch.linalg.eigvalsh(dense).max().item()
    value, method, vector = hessian_max_eigenvalue(lambda: F.cross_entropy(model(x), y), params,
                                                   iterations=500, tolerance=1e-12)
    assert abs(value - top) / abs(top) < 1e-3, (value, top, method)
    # Warm-started from its own eigenvector it is done at once, with the same value.
    again, _, _ = hessian_max_eigenvalue(lambda: F.cross_entropy(model(x), y), params,
                                         iterations=2, tolerance=1e-12, start=vector)
    assert abs(again - top) / abs(top) < 1e-3


def test_lambda_max_is_the_largest_algebraic_eigenvalue() -> None:
    """A quadratic whose dominant eigenvalue is negative: −5 dominates, but λmax is 2. Lanczos
    spans this 3-dimensional space in 3 products and is then exact."""
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    h = torch.diag(torch.tensor([-5.0, 2.0, 1.0], dtype=torch.float64))
    value, method, vector = hessian_max_eigenvalue(lambda: 0.5 * x @ h @ x, [x], iterations=500,
                                                   tolerance=1e-12)
    assert value == pytest.approx(2.0, rel=1e-9)
    assert method == "Lanczos, 3 Hessian-vector products"
    assert abs(vector[0][1].item()) == pytest.approx(1.0, rel=1e-9)  # the eigenvector of 2


def epochs_with(skips: list[int] | None = None, lam: dict[int, float] | None = None) -> list:
    n = max(len(skips or []), max(lam or {0: 0}))
    return [{"epoch": e, "skip_count": (skips or [0] * n)[e - 1],
             "hessian_max_eigenvalue": (lam or {}).get(e)} for e in range(1, n + 1)]


def test_darts_plus_rule() -> None:
    fired = darts_plus_rule(epochs_with(skips=[0, 1, 1, 2, 3]))
    assert fired.rule == "darts+" and fired.epoch == 4 and fired.rollback_epoch is None
    assert darts_plus_rule(epochs_with(skips=[0, 1, 1, 1, 0])) is None


def test_rdarts_rule() -> None:
    flat = {e: 0.2 for e in range(2, 31, 2)}
    assert rdarts_rule(epochs_with(lam=flat)) is None
    rising = {e: 0.2 * (1.05 ** e) for e in range(2, 31, 2)}  # +1.48x over 8 epochs
    fired = rdarts_rule(epochs_with(lam=rising))
    assert fired.rule == "rdarts" and fired.epoch >= 10
    assert fired.rollback_epoch == fired.epoch - 8
    # Steep growth, but the history ends before epoch 10: the rule waits.
    steep = {e: 0.1 * (1.3 ** e) for e in range(1, 10)}
    assert rdarts_rule(epochs_with(lam=steep)) is None
    assert rdarts_rule(epochs_with(lam={**steep, 10: 0.1 * 1.3 ** 10})).epoch == 10
    slow = {e: 0.2 * (1.02 ** e) for e in range(2, 31, 2)}  # 1.17x over 8 epochs
    assert rdarts_rule(epochs_with(lam=slow)) is None


def test_first_alarm_picks_the_earliest() -> None:
    rising = {e: 0.2 * (1.05 ** e) for e in range(2, 31, 2)}
    history = epochs_with(skips=[0] * 19 + [2] + [2] * 10, lam=rising)
    assert first_alarm(history).rule == "rdarts"
    history = epochs_with(skips=[0, 2] + [2] * 28, lam=rising)
    assert first_alarm(history).rule == "darts+"


def tiny(**changes) -> SearchConfig:
    base = {"space": "nb201", "epochs": 4, "device": "cpu", "threads": 1,
            "network.channels": 4, "data.subset": 200, "data.batch_size": 32,
            "record.log_every": 4}
    base.update(changes)
    return SearchConfig().with_changes(base)


def test_search_records_diagnostics_and_stops_early() -> None:
    search = Search(tiny(**{"diagnostics.hessian_every": 2, "diagnostics.hessian_batch": 16,
                            "diagnostics.hessian_iterations": 5}))
    epochs = [r for r in search.run() if r["kind"] == "epoch"]
    assert [("hessian_max_eigenvalue" in r) for r in epochs] == [False, True, False, True]
    assert all(np.isfinite(r["hessian_max_eigenvalue"]) for r in epochs[1::2])
    assert all(set(r["parameter_free_mass"]) == {"cell"} for r in epochs)
    assert all("alarm" in r for r in epochs)
    # Two ops, one of them skip: this cell derives 5 skip edges at epoch 1 (seed 0), so
    # DARTS+ as the early-stop rule ends the search there, of 4 epochs.
    two_ops = {"ops": ["skip_connect", "nor_conv_1x1"]}
    stopper = Search(tiny(**{"diagnostics.early_stop": "darts+", **two_ops}))
    records = stopper.run()
    assert records[-1]["skip_count"] >= 2
    assert stopper.epoch == stopper.early_stop.epoch == 1
    assert records[-1]["early_stop"]["rule"] == "darts+"
    assert records[-1]["alarm"]["rule"] == "darts+"
    # Without early stopping the alarm is recorded but the search runs on.
    watcher = Search(tiny(**two_ops))
    watcher.run()
    assert watcher.epoch == 4 and watcher.alarm.epoch == 1 and watcher.early_stop is None
