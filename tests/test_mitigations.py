"""The collapse cures as the papers define them: SDARTS-RS' clamped, renormalised noise, DARTS-'
auxiliary skip (own weights on stride-2 edges, β from 1 to 0), P-DARTS' skip dropout and skip
cap, R-DARTS' weight-decay multiplier; each one must move a search's trajectory. And λmax is a
pure observer: a search with it records exactly what one without it does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_engine.components.mitigations import AuxiliarySkip, RandomSmoothing
from nas_engine.config import SearchConfig
from nas_engine.search import Search
from nas_engine.spaces import make_space
from nas_engine.spaces.ops import DARTS_OPS, EdgeInput, EdgeOps, EdgeOptions
from tests.builders import tiny_config, tiny_strategy
from tests.test_search import tiny, without_timings


def test_sdarts_noise_is_clamped_and_renormalised() -> None:
    config = tiny_config("nb201", **{"mitigations.sdarts_epsilon": 0.3})
    strategy = tiny_strategy(config)
    (smoothing,) = [c for c in strategy.components.items if isinstance(c, RandomSmoothing)]
    p = torch.tensor([[0.9, 0.05, 0.05, 0.0, 0.0], [0.2] * 5], dtype=torch.float64)
    for progress, eps in ((0.0, 0.03), (1.0, 0.3)):
        state = smoothing.generator.get_state()
        noisy = smoothing.perturbation(progress)({"cell": p})["cell"]
        u = torch.rand(p.shape, generator=torch.Generator().set_state(state),
                       dtype=torch.float64)
        raw = p + (2 * u - 1) * eps
        by_hand = raw.clamp(0, 1) / raw.clamp(0, 1).sum(-1, keepdim=True)
        assert torch.allclose(noisy, by_hand)
        assert torch.allclose(noisy.sum(-1), torch.ones(2, dtype=torch.float64))
        assert (raw < 0).any() or eps < 0.1  # at ε = 0.3 the clamp has something to do
        assert (noisy >= 0).all() and (noisy <= 1).all()


def test_darts_minus_skip_on_stride_two_edges_has_its_own_weights() -> None:
    torch.manual_seed(0)
    ops = ["none", "skip_connect", "sep_conv_3x3"]
    block = EdgeOps(DARTS_OPS, ops, 4, 2, 2, EdgeOptions(aux_reduce=True)).double()
    plain = EdgeOps(DARTS_OPS, ops, 4, 2, 1, EdgeOptions(aux_reduce=True))
    assert plain.aux_reduce is None  # stride 1: β·x needs no weights
    aux_weights = sum(p.numel() for p in block.aux_reduce.parameters())
    assert aux_weights == 2 * 2 * (4 * 2)  # two edges, two 1x1 convs of 4 → 2 channels
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    w = torch.softmax(torch.randn(2, 3, dtype=torch.float64), -1)
    without = block(x, w)
    block.aux_skip = 0.7
    with_aux = block(x, w)
    reference = block.aux_reduce(EdgeInput(x.contiguous(memory_format=torch.channels_last)))
    assert torch.allclose(with_aux - without, 0.7 * reference)
    assert reference.shape == without.shape == (3, 2, 4, 4, 4)


def test_darts_minus_beta_decays_and_trains_its_weights() -> None:
    config = tiny_config("darts", **{"mitigations.aux_skip": True})
    strategy = tiny_strategy(config)
    (aux,) = [c for c in strategy.components.items if isinstance(c, AuxiliarySkip)]
    blocks = list(strategy.model.edge_blocks())
    aux.before_step(0.25)
    assert {b.aux_skip for b in blocks} == {0.75}
    aux.before_step(1.0)
    assert {b.aux_skip for b in blocks} == {0.0}
    reduce_params = {id(p) for b in blocks if b.aux_reduce is not None
                     for p in b.aux_reduce.parameters()}
    assert reduce_params  # the reduction cells' stride-2 edges
    assert reduce_params <= {id(p) for g in strategy.w_optimizer.param_groups
                             for p in g["params"]}


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_skip_cap_keeps_at_most_m_skips(space: str) -> None:
    """P-DARTS: the weakest surplus skips give way to their edges' next-best op."""
    config = SearchConfig(space=space).validate()
    s = make_space(config)
    ops, rows = s.ops, len(s.edges())
    skip, conv = ops.index("skip_connect"), ops.index(ops[-1])
    rng = np.random.default_rng(0)
    weights = {c: rng.uniform(0.0, 0.1, (rows, len(ops))) for c in s.cell_types}
    cell = s.cell_types[0]
    weights[cell][:, skip] = np.linspace(0.9, 0.5, rows)  # skip leads every edge, weakening
    weights[cell][:, conv] = 0.3  # the next best everywhere
    before = s.derive(weights)
    assert s.skip_count(before) == s.derived_edges
    capped = s.capped_skips(weights, 2)
    assert s.skip_count(capped) == 2
    kept = s.skip_rows(capped)
    # The two strongest skips (rows 0 and 1: 0.9 and the next step down) stay; every other
    # kept edge now has the next-best op.
    assert sorted(kept) == [0, 1]
    columns = s.genotype_columns(capped)[cell]
    assert {c for r, c in enumerate(columns) if c is not None and r not in kept} == {conv}
    assert s.capped_skips(weights, s.derived_edges) == before


def trajectory(**changes) -> list[list[list[float]]]:
    records = Search(tiny("nb201", epochs=2, **{"record.log_every": 1, **changes})).run()
    return [r["alphas"]["cell"] for r in records if r["kind"] == "epoch"]


@pytest.mark.parametrize("cure", [
    {"mitigations.sdarts_epsilon": 0.3},
    {"mitigations.aux_skip": True},
    {"mitigations.skip_dropout": 0.5},
    {"mitigations.wd_multiplier": 81.0},
])
def test_each_cure_moves_the_trajectory(cure: dict) -> None:
    base = np.array(trajectory())
    cured = np.array(trajectory(**cure))
    assert np.abs(cured - base).max() > 1e-4


def test_lambda_max_changes_nothing_it_measures() -> None:
    """BatchNorm statistics (and every RNG) are put back after λmax: the records with and
    without it are identical apart from the λmax fields."""
    hessian = {"hessian_max_eigenvalue", "hessian_method", "hessian_over", "hessian_seconds"}
    plain = without_timings(Search(tiny("nb201", epochs=3,
                                        **{"diagnostics.hessian_every": 0})).run())
    measured = without_timings(Search(tiny("nb201", epochs=3, **{
        "diagnostics.hessian_every": 1, "diagnostics.hessian_batch": 16,
        "diagnostics.hessian_iterations": 4})).run())
    assert sum("hessian_max_eigenvalue" in r for r in measured) == 3
    stripped = [{k: v for k, v in r.items() if k not in hessian} for r in measured]
    assert stripped == plain
