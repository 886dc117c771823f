"""Each α regulariser: its gradient against autograd of the formula written out by hand, its
schedule, and its effect on a real search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nas_engine.components import Components
from nas_engine.components.regularizers import REGULARIZERS, scheduled_weight
from nas_engine.config import RegularizerConfig, SearchConfig
from nas_engine.search import Search

BY_NAME = {cls.name: cls for cls in REGULARIZERS}


def alphas(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {c: torch.randn(14, 8, generator=g, dtype=torch.float64, requires_grad=True)
            for c in ("normal", "reduce")}


def by_hand(name: str, a: dict[str, torch.Tensor]) -> torch.Tensor:
    """The published formulas, element by element (slow and plain on purpose)."""
    cells = list(a.values())
    if name == "entropy":
        per_cell = []
        for m in cells:
            rows = []
            for row in m:
                p = torch.exp(row) / torch.exp(row).sum()
                rows.append(-(p * torch.log(p)).sum())
            per_cell.append(sum(rows) / len(rows))
        return sum(per_cell) / len(per_cell)
    if name == "exp_neg":
        return sum(torch.exp(-x) for m in cells for x in m.flatten())
    if name == "l2":
        return sum(x * x for m in cells for x in m.flatten())
    if name == "beta":
        rows = [torch.log(torch.exp(row).sum()) for m in cells for row in m]
        return sum(rows) / len(rows)
    if name == "zero_one":
        xs = [x for m in cells for x in m.flatten()]
        return -sum((1 / (1 + torch.exp(-x)) - 0.5) ** 2 for x in xs) / len(xs)
    raise KeyError(name)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_gradient_matches_the_formula(name: str) -> None:
    a = alphas()
    reg = BY_NAME[name](RegularizerConfig(weight=1.0))
    ours = torch.autograd.grad(reg.term(a), list(a.values()))
    a2 = {k: v.detach().clone().requires_grad_() for k, v in a.items()}
    ref = by_hand(name, a2)
    assert torch.allclose(reg.term(a), ref)
    theirs = torch.autograd.grad(ref, list(a2.values()))
    for x, y in zip(ours, theirs):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_weighted_sum_and_live_weight() -> None:
    config = SearchConfig().with_changes({"regularizers.entropy.weight": 0.5,
                                          "regularizers.l2.weight": 0.1})
    regs = Components(config)
    a = alphas(1)
    expected = 0.5 * by_hand("entropy", a) + 0.1 * by_hand("l2", a)
    assert torch.allclose(regs.alpha_loss(a, 0.3), expected)
    regs.set_live("entropy_weight", -2.0)
    expected = -2.0 * by_hand("entropy", a) + 0.1 * by_hand("l2", a)
    assert torch.allclose(regs.alpha_loss(a, 0.3), expected)
    assert regs.live_values()["entropy_weight"] == -2.0
    recorded = regs.record_fields(0.3)["regularizers"]
    assert set(recorded) == {"entropy", "l2"}
    assert recorded["l2"]["value"] == pytest.approx(by_hand("l2", a).item())
    assert Components(SearchConfig()).alpha_loss(a, 0.0) is None


def test_alpha_loss_follows_the_schedule() -> None:
    """The weight in the α loss is the schedule's at the search's progress, from its start."""
    config = SearchConfig().with_changes({"regularizers.entropy.weight": 2.0,
                                          "regularizers.entropy.schedule": "linear",
                                          "regularizers.entropy.start": -1.0})
    regs, a = Components(config), alphas(2)
    for progress in (0.0, 0.25, 1.0):
        expected = (-1.0 + 3.0 * progress) * by_hand("entropy", a)
        assert torch.allclose(regs.alpha_loss(a, progress), expected)


def test_records_carry_the_weight_in_force() -> None:
    """Each step record's entropy weight is the linear ramp at the progress of its step."""
    config = SearchConfig().with_changes({
        "space": "nb201", "epochs": 2, "device": "cpu", "threads": 1, "network.channels": 4,
        "data.subset": 200, "data.batch_size": 32, "record.log_every": 1,
        "regularizers.entropy.weight": 2.0, "regularizers.entropy.schedule": "linear",
        "regularizers.entropy.start": -1.0})
    search = Search(config)
    steps = [r for r in search.run() if r["kind"] == "step"]
    assert len(steps) == search.total_steps
    for r in steps:
        progress = (r["step"] - 1) / search.total_steps
        assert r["regularizers"]["entropy"]["weight"] == pytest.approx(-1.0 + 3.0 * progress)


def test_schedules() -> None:
    assert scheduled_weight(0.4, "constant", 0.0, 0.7) == 0.4
    assert scheduled_weight(50.0, "linear", 0.0, 0.25) == pytest.approx(12.5)
    assert scheduled_weight(1.0, "cosine", 0.0, 0.5) == pytest.approx(0.5)
    # DARTS-AER: λ(t) = 0.2 − 0.4·(1 + cos πt)/2, from −0.2 to +0.2.
    for t in (0.0, 0.3, 0.5, 1.0):
        aer = 0.2 - 0.4 * (1 + math.cos(math.pi * t)) / 2
        assert scheduled_weight(0.2, "aer", 0.0, t) == pytest.approx(aer)


def entropy_curve(weight: float) -> np.ndarray:
    config = SearchConfig().with_changes({
        "space": "nb201", "epochs": 3, "device": "cpu", "threads": 1, "seed": 0,
        "network.channels": 4, "data.subset": 300, "data.batch_size": 32,
        "optim.alpha_lr": 3e-2, "record.log_every": 1,
        "regularizers.entropy.weight": weight,
    })
    records = Search(config).run()
    return np.array([r["entropy"] for r in records if r["kind"] == "step"])


def test_entropy_weight_moves_alpha_the_intended_way() -> None:
    free, sharpen, soften = entropy_curve(0.0), entropy_curve(5.0), entropy_curve(-5.0)
    start = math.log(5)
    # λ > 0: entropy falls faster than with λ = 0 (measured: 0.082 vs 0.008 below ln 5 after
    # 3 epochs); λ < 0: it stays higher (0.0016 below).
    assert start - sharpen[-1] > 4 * (start - free[-1])
    assert soften[-1] > free[-1] + 0.003
    assert np.all(soften[len(soften) // 2:] > free[len(free) // 2:])
