"""Collapse instruments: λmax against the dense Hessian, the early-stop rules on synthetic
histories, and the recorded diagnostics of a real search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_engine.components import Components
from nas_engine.config import SearchConfig
from nas_engine.diagnostics import (
    darts_plus_rule,
    edge_entropy,
    hessian_max_eigenvalue,
    parameter_free_mass,
    rdarts_rule,
    rdarts_stop,
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


def lam_on(epochs: range, value) -> dict[int, float]:
    return {e: value(e) for e in epochs}


def test_rdarts_rule_known_answer_every_2() -> None:
    # f=2: λ=1 at 2..22, 3 from 24. At 24 the newest local average (epochs 16..24, standing
    # for 24-2·2=20) is (4·1+3)/5 = 1.4, the one δ=4 earlier (8..16, for 12) is 1: ratio 1.4 >
    # 1.3, roll back to 24-4-8 = 12. (The old rule rolled back to 24-8 = 16.)
    lam = lam_on(range(2, 31, 2), lambda e: 1.0 if e <= 22 else 3.0)
    fired = rdarts_rule(epochs_with(lam=lam), every=2)
    assert (fired.rule, fired.epoch, fired.rollback_epoch) == ("rdarts", 24, 12)
    assert "1.40x from epoch 12 to 20" in fired.message
    assert rdarts_stop(sorted(lam.items()), 2) == (24, 12, pytest.approx(1.4))


def test_rdarts_rule_known_answer_every_1() -> None:
    # f=1, λ=0.1·e: a centred mean of a line is its centre value. Roll-back e-2-4 ≥ 10 first
    # at e=16: average for 14 is 1.4, for 10 is 1.0, ratio 1.4 > 1.3: fires at 16, back to 10.
    # (The old rule fired at 10, back to 2.)
    lam = lam_on(range(1, 31), lambda e: 0.1 * e)
    fired = rdarts_rule(epochs_with(lam=lam), every=1)
    assert (fired.epoch, fired.rollback_epoch) == (16, 10)
    assert rdarts_stop(sorted(lam.items()), 1) == (16, 10, pytest.approx(1.4))


def test_rdarts_rule_fires_at_every_3() -> None:
    # f=3 (the old rule never fired: e-8 is never a measured epoch). λ=1 at 3..21, 2 from 24.
    # At 27 the ratio is 1.4 (15..27: (3+2·2)/5 vs 3..15: 1) but the roll-back 27-6-12 = 9
    # is < 10; at 30: 18..30 gives (2+3·2)/5 = 1.6 vs 6..18 = 1, back to 30-18 = 12.
    lam = lam_on(range(3, 37, 3), lambda e: 1.0 if e <= 21 else 2.0)
    fired = rdarts_rule(epochs_with(lam=lam), every=3)
    assert (fired.epoch, fired.rollback_epoch) == (30, 12)
    assert rdarts_stop(sorted(lam.items()), 3) == (30, 12, pytest.approx(1.6))
    assert rdarts_stop([(e, v) for e, v in sorted(lam.items()) if e <= 27], 3) is None


def test_rdarts_rule_waits_for_rollback_epoch_10() -> None:
    # f=2, λ=1 at 2..12, 3 from 14. At 14 the ratio is already 1.4 (6..14 vs the truncated
    # first average, mean of λ2, λ4, λ6 = 1), but the roll-back epoch 14-12 = 2 < 10: nothing
    # up to epoch 20 (the old rule fired at 14). At 22: 14..22 = 3 vs 6..14 = 7/5, ratio 15/7,
    # roll back to 10.
    lam = lam_on(range(2, 23, 2), lambda e: 1.0 if e <= 12 else 3.0)
    up_to_20 = [(e, v) for e, v in sorted(lam.items()) if e <= 20]
    assert rdarts_rule(epochs_with(lam=dict(up_to_20))) is None
    assert rdarts_stop(up_to_20, 2, not_before=0) == (14, 2, pytest.approx(1.4))
    fired = rdarts_rule(epochs_with(lam=lam))
    assert (fired.epoch, fired.rollback_epoch) == (22, 10)
    assert rdarts_stop(sorted(lam.items()), 2) == (22, 10, pytest.approx(15 / 7))


def test_rdarts_rule_flat_never_fires() -> None:
    # Flat 0.2 after a low first measurement (0.1): the old rule compared its trailing mean
    # at 10, (0.1+4·0.2)/5 = 0.18, with λ2 alone and fired (1.8x); every average compared here
    # stands for epoch ≥ 10 and is 0.2, ratio 1.
    lam = {**lam_on(range(2, 51, 2), lambda e: 0.2), 2: 0.1}
    assert rdarts_rule(epochs_with(lam=lam)) is None
    for every in (1, 2, 3):
        flat = [(e, 0.2) for e in range(every, 61, every)]
        assert rdarts_stop(flat, every) is None


def test_rdarts_stop_follows_official_quirks() -> None:
    # Plain ratio, as EVLocalAvg: an earlier average of 0 gives inf (λ=0 to 18, 1 from 20: at
    # 22, 14..22 = 2/5 over 6..14 = 0) and two negative ones fire on a *fall* (λ=-1 to 20,
    # -2 from 22: at 24, 16..24 = -7/5 over 8..16 = -1, ratio 1.4). The old rule skipped both.
    zero = [(e, 0.0 if e <= 18 else 1.0) for e in range(2, 31, 2)]
    assert rdarts_stop(zero, 2) == (22, 10, math.inf)
    assert rdarts_rule(epochs_with(lam=dict(zero))).rollback_epoch == 10
    negative = [(e, -1.0 if e <= 20 else -2.0) for e in range(2, 31, 2)]
    assert rdarts_stop(negative, 2) == (24, 12, pytest.approx(1.4))
    # R-DARTS also measures the final epoch off its grid (49 at f=2) and never checks there.
    off_grid_last = [(e, 1.0) for e in range(2, 49, 2)] + [(49, 100.0)]
    assert rdarts_stop(off_grid_last, 2) is None
    assert rdarts_stop(off_grid_last[:-1] + [(50, 100.0)], 2) == (50, 38, pytest.approx(20.8))


def test_first_alarm_picks_the_earliest() -> None:
    """The alarm is the earliest rule to fire; the early stop, the configured rule's verdict."""
    components = Components(SearchConfig().with_changes({"diagnostics.early_stop": "darts+"}))
    rising = {e: 0.2 * (1.05 ** e) for e in range(2, 31, 2)}  # R-DARTS fires at 22 (1.05^8)
    history = epochs_with(skips=[0] * 23 + [2] * 7, lam=rising)  # DARTS+ at 24
    alarm, stop = components.judge(history)
    assert (alarm.rule, alarm.epoch) == ("rdarts", 22)
    assert (stop.rule, stop.epoch) == ("darts+", 24)
    alarm, _ = components.judge(epochs_with(skips=[0, 2] + [2] * 28, lam=rising))
    assert (alarm.rule, alarm.epoch) == ("darts+", 2)


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
