"""GDAS: one Gumbel-sampled op computed per edge, the hard sample's forward equal to a dense
supernet on that one-hot, τ from 10 to 0.1 over the search, exact resume of the sampler, the
DARTS genotype rule on α, and a classroom GDAS search from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_engine.cli import main
from nas_engine.mixing import GumbelMixing
from nas_engine.search import Search
from nas_engine.store import RunFolder
from tests.builders import batch, tiny_config, tiny_strategy
from tests.test_search import tiny, without_timings

NO_NONE = {"nb201": ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"],
           "darts": ["skip_connect", "sep_conv_3x3", "dil_conv_3x3", "max_pool_3x3"]}


def gdas(space: str, **changes):  # noqa: ANN201
    return tiny_strategy(tiny_config(space, **{"strategy.name": "gdas",
                                               "ops": NO_NONE[space], **changes}))


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_forward_computes_exactly_one_op_per_edge(space: str) -> None:
    strategy = gdas(space)
    model = strategy.model
    computed, hooks = [], []
    for block in model.edge_blocks():
        for op in block.ops:
            hooks.append(op.register_forward_hook(
                lambda m, args, out: computed.append(out.shape[1])))
    x, _ = batch(0)
    model.train()
    for _ in range(3):  # three samples, each one op per edge
        computed.clear()
        with torch.no_grad():
            model(x)
        cells = sum(1 for _ in model.net.cell_dags())
        # Parameter-free ops are computed once for all edges that chose them (one slot).
        per_edge = sum(len(edges) for block in model.edge_blocks()
                       for _, runs in block.jobs for edges in runs)
        assert per_edge == cells * len(model.space.edges())
        assert sum(computed) <= per_edge
        for block in model.edge_blocks():  # no edge appears in two jobs
            edges = [e for _, runs in block.jobs for r in runs for e in r]
            assert sorted(edges) == list(range(block.edges))
    for hook in hooks:
        hook.remove()


def test_hard_sample_forward_equals_the_dense_supernet_on_its_one_hot() -> None:
    strategy = gdas("nb201")
    model = strategy.model
    model.train()
    with torch.no_grad():
        for a in model.alphas.values():
            a.normal_(0, 1, generator=torch.Generator().manual_seed(4))
    x, y = batch(1)
    state = model.mixing.state_dict()
    hard, soft, columns = model.mixing.sample(model)
    model.mixing.load_state_dict(state)  # the forward draws the same sample
    logits = model(x)
    dense = model.space.build_supernet(1, 3, 8).double()
    dense.load_state_dict(model.net.state_dict())
    dense_logits = dense(x, hard)
    assert (logits - dense_logits).abs().max() < 1e-12
    assert columns["cell"] == hard["cell"].argmax(-1).tolist()
    assert torch.allclose(soft["cell"].sum(-1), torch.ones(6, dtype=torch.float64))
    grads = torch.autograd.grad(F.cross_entropy(logits, y), model.arch_parameters())
    assert (grads[0] != 0).all()  # straight through to every α entry


def test_tau_falls_linearly_from_10_to_0_1() -> None:
    search = Search(tiny("nb201", epochs=4, **{"strategy.name": "gdas"}))
    epochs = [r for r in search.run() if r["kind"] == "epoch"]
    # τ of epoch e (from 0) is 10 − 9.9·e/3; an epoch record shows the τ of its epoch.
    assert [r["tau"] for r in epochs] == pytest.approx([10.0, 6.7, 3.4, 0.1])
    last = epochs[-1]
    probs = np.array(last["alphas"]["cell"])
    assert last["genotype"] == search.space.genotype_dict(search.space.derive({"cell": probs}))


def test_sampler_resumes_exactly() -> None:
    config = tiny("nb201", epochs=2, **{"strategy.name": "gdas", "record.log_every": 1})
    whole = Search(config).run()
    first = Search(config)
    while first.step_count < 3:
        first.step()
    state = first.state_dict()
    second = Search(config)
    second.load_state_dict(state)
    rest = second.run()
    assert isinstance(second.model.mixing, GumbelMixing)
    assert without_timings(rest) == without_timings(whole[3:])


def test_classroom_gdas_search_from_the_cli(tmp_path, capsys) -> None:
    code = main(["search", "--preset", "classroom", "--epochs", "1", "--runs-dir",
                 str(tmp_path), "--quiet", "--set", "strategy.name=gdas", "--set",
                 "data.subset=200", "--set", "threads=1"])
    assert code == 0, capsys.readouterr().err
    path = capsys.readouterr().out.splitlines()[0]
    folder = RunFolder(path)
    assert folder.read_config().strategy.name == "gdas"
    (epoch,) = [r for r in folder.read_records() if r["kind"] == "epoch"]
    assert epoch["tau"] == 10.0  # a one-epoch search stays at τ_max
    assert json.loads((folder.path / "genotype.json").read_text())["text"].startswith(
        "Genotype(")
