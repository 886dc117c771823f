"""NASP: one op computed per edge, the straight-through α gradient against a dense forward,
α in the box, the model-size term, and whole searches (Search, SearchRun) in both spaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel
from nas_engine.runner import RunRegistry
from nas_engine.search import Search
from nas_engine.spaces import make_space
from nas_engine.strategies.nasp import NaspStrategy
from tests.test_search import EPOCH_KEYS, tiny

TIMEOUT = 120
f64 = torch.float64



def nasp(space: str, **changes) -> tuple[NaspStrategy, SearchConfig]:
    """A float64 NASP strategy on a tiny supernet (1 input channel, 3 classes, 8x8)."""
    config = SearchConfig(space=space).with_changes(
        {"network": {"channels": 4, "layers": 3, "cells_per_stage": 1},
         "strategy.name": "nasp", **changes})
    torch.manual_seed(0)
    return NaspStrategy(SearchModel(make_space(config), 1, 3, 8).double(), config), config


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(6, 1, 8, 8, generator=g, dtype=f64),
            torch.randint(0, 3, (6,), generator=g))


def set_choice(model: SearchModel, column_of) -> None:  # noqa: ANN001
    """α = 0.9 on column `column_of(source, target)` of each row, 0.1 elsewhere."""
    with torch.no_grad():
        for alpha in model.alphas.values():
            alpha.fill_(0.1)
            for row, (source, target) in enumerate(model.space.edges()):
                alpha[row, column_of(source, target)] = 0.9


def computations(model: SearchModel, x: torch.Tensor) -> tuple[list, list]:
    """(computed, chosen): one (op module, edges it computed) per call of a cell op in a
    forward, and the (op module, 1) each edge's argmax asks for (`none`: nothing)."""
    computed, chosen, hooks = [], [], []
    for cell, dag in model.net.cell_dags():
        for edge_ops, rows in zip(dag.sources, dag.rows):
            for op, column in zip(edge_ops.ops, edge_ops.columns):
                hooks.append(op.register_forward_hook(
                    lambda m, args, out: computed.append((id(m), out.shape[1]))))
                picked = [r for r in rows if model.alphas[cell][r].argmax() == column]
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
    # Every edge of a source a different op (none excluded): one computation per edge.
    set_choice(model, lambda s, t: 1 + (s + t) % (n_ops - 1))
    computed, chosen = computations(model, x)
    cells = sum(1 for _ in model.net.cell_dags())
    assert len(computed) == cells * len(model.space.edges())
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
    one_hot = {cell: F.one_hot(a.argmax(-1), a.shape[-1]).double().requires_grad_()
               for cell, a in model.alphas.items()}
    dense_logits = dense(x, one_hot)
    expected = torch.autograd.grad(F.cross_entropy(dense_logits, y), list(one_hot.values()))
    with torch.no_grad():
        assert (model(x) - dense_logits).abs().max() < 1e-12

    strategy.alpha_step(batch(2), (x, y))
    for (cell, hot), want in zip(one_hot.items(), expected):
        got = model.alphas[cell].grad
        chosen = hot.detach().bool()
        assert (got[chosen] - want[chosen]).abs().max() < 1e-12
        assert want[chosen].abs().max() > 1e-6
        if all_ops:
            assert (got - want).abs().max() < 1e-12
        else:  # unchosen ops are not computed
            assert torch.all(got[~chosen] == 0) and want[~chosen].abs().max() > 1e-6


def test_alpha_stays_in_the_unit_box() -> None:
    strategy, _ = nasp("darts", **{"optim.alpha_lr": 0.3})
    alphas = strategy.model.arch_parameters()
    assert all(((a >= 0) & (a <= 1)).all() for a in alphas)  # projected at the start
    for seed in range(4):
        strategy.step(batch(2 * seed), batch(2 * seed + 1))
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

    penalty = strategy.alpha_penalty()
    grads = torch.autograd.grad(penalty, strategy.alphas)
    for n, g in zip(counts.values(), grads):
        assert torch.allclose(g, 100.0 * n.double() / 1e6)  # ∂/∂α through ᾱ: every entry
    chosen = sum(n.double()[torch.arange(len(edges)), model.alphas[c].argmax(-1)].sum()
                 for c, n in counts.items())
    assert torch.isclose(penalty, 100.0 * chosen / 1e6)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_search_records(space: str) -> None:
    search = Search(tiny(space, epochs=1, **{"strategy.name": "nasp",
                                             "strategy.nasp_size_penalty": 1.0}))
    (record,) = [r for r in search.run() if r["kind"] == "epoch"]
    assert EPOCH_KEYS <= set(record)
    model = search.model
    assert model.discrete
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
