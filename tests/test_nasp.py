"""NASP: the discrete network is the derived cell (one op per edge, 2 inputs per node), the
straight-through α gradient against a dense forward, α in the box from 0.5, the model-size term
on the chosen ops, λmax over the whole α, and whole searches in both spaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_engine.components.diagnostics import HessianEigenvalue
from nas_engine.config import SearchConfig
from nas_engine.diagnostics import hessian_max_eigenvalue
from nas_engine.mixing import ProximalMixing
from nas_engine.model import SearchModel
from nas_engine.runner import RunRegistry
from nas_engine.search import Search
from nas_engine.strategies.nasp import Nasp
from tests.builders import batch, tiny_config, tiny_strategy
from tests.test_search import EPOCH_KEYS, tiny

TIMEOUT = 120


def nasp(space: str, **changes) -> tuple[Nasp, SearchConfig]:
    """A float64 NASP strategy on a tiny supernet (1 input channel, 3 classes, 8x8)."""
    config = tiny_config(space, **{"strategy.name": "nasp", **changes})
    return tiny_strategy(config), config


def derived_one_hot(model: SearchModel) -> dict[str, torch.Tensor]:
    """ᾱ as the genotype rule makes it: 1 on each kept edge's op, rows of dropped edges 0."""
    columns = model.space.genotype_columns(model.genotype())
    hot = {}
    for cell, alpha in model.alphas.items():
        h = torch.zeros_like(alpha.detach())
        for row, column in enumerate(columns[cell]):
            if column is not None:
                h[row, column] = 1.0
        hot[cell] = h
    return hot


def set_choice(model: SearchModel, column_of) -> None:  # noqa: ANN001
    """α = 0.9 on column `column_of(source, target)` of each row, 0.1 elsewhere."""
    with torch.no_grad():
        for alpha in model.alphas.values():
            alpha.fill_(0.1)
            for row, (source, target) in enumerate(model.space.edges()):
                alpha[row, column_of(source, target)] = 0.9


def computations(model: SearchModel, x: torch.Tensor) -> tuple[list, list]:
    """(computed, chosen): one (op module, edges it computed) per call of a cell op in a
    forward, and the (op module, 1) each kept edge of the derived cell asks for (`none`:
    nothing)."""
    computed, chosen, hooks = [], [], []
    columns = model.space.genotype_columns(model.genotype())
    for cell, dag in model.net.cell_dags():
        for edge_ops, rows in zip(dag.sources, dag.rows):
            for op, column in zip(edge_ops.ops, edge_ops.columns):
                hooks.append(op.register_forward_hook(
                    lambda m, args, out: computed.append((id(m), out.shape[1]))))
                picked = [r for r in rows if columns[cell][r] == column]
                chosen += [(id(op), 1)] * len(picked)
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return computed, chosen


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_forward_computes_exactly_the_chosen_op_of_each_edge(space: str) -> None:
    strategy, _ = nasp(space)
    model = strategy.model
    x, _ = batch(0)
    n_ops = len(model.space.ops)
    # Every edge of a source a different op (none excluded): one computation per kept edge,
    # the derived cell's (2 inputs per node in DARTS: 8 of 14 edges; all 6 in NB201).
    set_choice(model, lambda s, t: 1 + (s + t) % (n_ops - 1))
    computed, chosen = computations(model, x)
    cells = sum(1 for _ in model.net.cell_dags())
    assert len(computed) == cells * model.space.derived_edges
    assert sorted(computed) == sorted(chosen)
    # One parametric op on every edge but `none` on some: runs of edges, one conv per run;
    # each edge computed once, the `none` edges not at all.
    conv = 4 if space == "darts" else 3  # sep_conv_3x3 / nor_conv_3x3
    set_choice(model, lambda s, t: 0 if (s + t) % 3 == 0 else conv)
    computed, chosen = computations(model, x)
    assert {m for m, _ in computed} == {m for m, _ in chosen}
    assert sum(n for _, n in computed) == len(chosen) < cells * len(model.space.edges())
    assert any(n > 1 for _, n in computed)  # batched runs happened


@pytest.mark.parametrize("space", ["darts", "nb201"])
@pytest.mark.parametrize("all_ops", [True, False])
def test_alpha_gradient_is_the_one_hot_gradient(space: str, all_ops: bool) -> None:
    """The straight-through gradient equals autograd of L_val w.r.t. the one-hot mixing weights
    of a *dense* supernet (every op computed, same weights): on every entry when the α step
    computes all ops, on the chosen ones (and 0 elsewhere) when it computes only those. The
    discrete forward gives the dense supernet's logits exactly."""
    strategy, _ = nasp(space, **{"optim.alpha_weight_decay": 0.0,
                                 "strategy.nasp_alpha_all_ops": all_ops})
    model = strategy.model
    with torch.no_grad():
        for alpha in model.alphas.values():
            alpha.uniform_(0, 1, generator=torch.Generator().manual_seed(3))
    dense = model.space.build_supernet(1, 3, 8).double()
    dense.load_state_dict(model.net.state_dict())
    x, y = batch(1)
    one_hot = {c: h.requires_grad_() for c, h in derived_one_hot(model).items()}
    dense_logits = dense(x, one_hot)
    expected = torch.autograd.grad(F.cross_entropy(dense_logits, y), list(one_hot.values()))
    with torch.no_grad():
        assert (model(x) - dense_logits).abs().max() < 1e-12

    strategy.alpha_step(batch(2), (x, y), 0.0)
    for (cell, hot), want in zip(one_hot.items(), expected):
        got = model.alphas[cell].grad
        chosen = hot.detach().bool()
        assert (got[chosen] - want[chosen]).abs().max() < 1e-12
        assert want[chosen].abs().max() > 1e-6
        if all_ops:
            assert (got - want).abs().max() < 1e-12
        else:  # unchosen ops are not computed: their weights pass one shared gradient
            kept = chosen.any(1)
            rest = got[kept][~chosen[kept]].view(int(kept.sum()), -1)
            assert torch.allclose(rest, rest[:, :1].expand_as(rest))
            assert want[~chosen].abs().max() > 1e-6


def test_alpha_starts_at_one_half_and_derives_from_alpha() -> None:
    strategy, _ = nasp("darts")
    assert all(torch.all(a == 0.5) for a in strategy.model.alphas.values())
    assert isinstance(strategy.model.mixing, ProximalMixing)
    raw = strategy.model.raw_alphas()
    assert all(np.array_equal(strategy.model.derivation_weights()[c], raw[c]) for c in raw)


def test_alpha_stays_in_the_unit_box() -> None:
    strategy, _ = nasp("darts", **{"optim.alpha_lr": 0.3})
    alphas = strategy.model.arch_parameters()
    assert all(((a >= 0) & (a <= 1)).all() for a in alphas)  # projected at the start
    for seed in range(4):
        strategy.step(batch(2 * seed), batch(2 * seed + 1), 0.0)
        assert all(((a >= 0) & (a <= 1)).all() for a in alphas)
    values = torch.cat([a.detach().flatten() for a in alphas])
    assert (values == 0).any() and (values == 1).any()  # the clip did act


def test_size_penalty_counts_each_ops_parameters() -> None:
    strategy, _ = nasp("darts", **{"strategy.nasp_size_penalty": 100.0})
    model = strategy.model
    counts = model.op_parameter_counts()
    ops, edges = model.space.ops, model.space.edges()
    sep3, dil3 = ops.index("sep_conv_3x3"), ops.index("dil_conv_3x3")
    skip = ops.index("skip_connect")
    # 3 layers, C=4: one normal cell (C=4) and two reduction cells (C=8, C=16).
    sep = lambda c: 2 * (9 * c + c * c)  # noqa: E731 - two depthwise 3x3 + pointwise
    assert torch.all(counts["normal"][:, sep3] == sep(4))
    assert torch.all(counts["normal"][:, dil3] == 9 * 4 + 4 * 4)
    assert torch.all(counts["reduce"][:, sep3] == sep(8) + sep(16))
    stride2 = torch.tensor([s < 2 for s, _ in edges])  # FactorizedReduce: two C x C/2 convs
    assert torch.all(counts["reduce"][stride2, skip] == 8 * 8 + 16 * 16)
    assert torch.all(counts["reduce"][~stride2, skip] == 0)
    assert torch.all(counts["normal"][:, ops.index("none")] == 0)

    with torch.no_grad():
        for alpha in model.alphas.values():
            alpha.uniform_(0, 1, generator=torch.Generator().manual_seed(5))
    hot = derived_one_hot(model)
    penalty = strategy.alpha_terms(dict(model.alphas))
    grads = torch.autograd.grad(penalty, strategy.alphas)
    for cell, g in zip(counts, grads):  # only the derived cell's ops feel the penalty
        assert torch.allclose(g, 100.0 * hot[cell] * counts[cell].double() / 1e6)
    chosen = sum((hot[c] * n.double()).sum() for c, n in counts.items())
    assert torch.isclose(penalty, 100.0 * chosen / 1e6)


def test_hessian_covers_every_op() -> None:
    """λmax under NASP is taken with every op computed: the Hessian has entries for the
    unchosen ops too (with the chosen ones only, it is another, smaller operator)."""
    strategy, config = nasp("nb201", **{"diagnostics.hessian_iterations": 30,
                                        "diagnostics.hessian_tolerance": 1e-6})
    model = strategy.model
    with torch.no_grad():
        for alpha in model.alphas.values():
            alpha.uniform_(0, 1, generator=torch.Generator().manual_seed(7))
    (measure,) = [c for c in strategy.components.items if isinstance(c, HessianEigenvalue)]
    x, y = measure.fixed_val_batch(16)

    def by_hand(all_ops: bool) -> float:
        model.mixing.all_ops = all_ops
        try:
            return hessian_max_eigenvalue(lambda: F.cross_entropy(model(x), y),
                                          model.arch_parameters(), 30, 1e-6)[0]
        finally:
            model.mixing.all_ops = False

    value, _ = measure.measure()
    assert value == pytest.approx(by_hand(True), rel=1e-4)
    assert abs(by_hand(False) - value) > 1e-3 * abs(value)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_search_records(space: str) -> None:
    search = Search(tiny(space, epochs=1, **{"strategy.name": "nasp",
                                             "strategy.nasp_size_penalty": 1.0}))
    (record,) = [r for r in search.run() if r["kind"] == "epoch"]
    assert EPOCH_KEYS <= set(record)
    model = search.model
    assert isinstance(model.mixing, ProximalMixing)
    for cell, alpha in model.alphas.items():
        assert ((alpha >= 0) & (alpha <= 1)).all()
        probs = F.softmax(alpha.detach().double(), dim=-1).numpy()
        assert np.allclose(record["alphas"][cell], probs, atol=1e-6)
    assert record["genotype"] == model.space.genotype_dict(model.genotype())


def test_runs_live(tmp_path) -> None:
    registry = RunRegistry(tmp_path)
    try:
        run = registry.create(tiny("nb201", epochs=2, **{"strategy.name": "nasp"})).start()
        assert run.wait_for(lambda s: s.state == "finished", TIMEOUT), run.snapshot().message
        assert [r["epoch"] for r in run.folder.read_records() if r["kind"] == "epoch"] == [1, 2]
    finally:
        registry.stop_all()


def test_second_order_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^strategy\.order must be first for nasp"):
        tiny("nb201", **{"strategy.name": "nasp", "strategy.order": "second"})
