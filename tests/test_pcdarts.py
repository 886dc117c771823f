"""PC-DARTS: partial channels and edge normalisation against the official formulas, memory, the
α warm-up, and whole searches (Search, Run, resume) in both spaces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from nas_engine.catalog import SPACE_OPS
from nas_engine.config import ConfigError, SearchConfig, preset
from nas_engine.runner import RunRegistry
from nas_engine.search import Search
from nas_engine.spaces.dag import MixedDag, edge_list
from nas_engine.spaces.ops import DARTS_OPS, EdgeOps, EdgeOptions, channel_shuffle
from tests.builders import tiny_config, tiny_strategy
from tests.test_search import EPOCH_KEYS, tiny, without_timings

TIMEOUT = 120
f64 = torch.float64


def official_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS' channel_shuffle, written as the channel permutation it is: output channel
    i·groups + g is input channel g·(C/groups) + i."""
    per_group = x.shape[1] // groups
    order = [g * per_group + i for i in range(per_group) for g in range(groups)]
    return x[:, order]


def test_channel_shuffle_matches_official_formula() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 4).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    y = torch.randn(2, 12, 3, 3)
    assert torch.equal(channel_shuffle(y, 3), official_shuffle(y, 3))
    assert torch.equal(channel_shuffle(y, 1), y)


def node_softmax(beta: torch.Tensor, edges: list[tuple[int, int]]) -> torch.Tensor:
    """softmax(β) over each node's incoming edges, rows in `edges` order (built independently
    of the model's row ranges)."""
    weights = []
    for row, (_, target) in enumerate(edges):
        rows = [r for r, (_, t) in enumerate(edges) if t == target]
        weights.append(F.softmax(beta[rows], dim=0)[rows.index(row)])
    return torch.stack(weights)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_k1_equals_darts_supernet_with_edge_weights(space: str) -> None:
    """K=1: no bypass, no shuffle. The PC-DARTS model must then be the DARTS supernet mixing
    with softmax(α)·softmax_node(β): same logits, same α and β gradients (β random, so a
    wrong node grouping shows; β = 0 is the uniform case)."""
    config = tiny_config(space, **{"strategy.name": "pcdarts", "strategy.pc_partial": 1,
                                   "strategy.pc_warmup_epochs": 0})
    model = tiny_strategy(config).model
    darts = model.space.build_supernet(1, 3, 8).double()
    darts.load_state_dict(model.net.state_dict())
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=f64))
    x = torch.randn(4, 1, 8, 8, generator=g, dtype=f64)
    y = torch.randint(0, 3, (4,), generator=g)
    edges = model.space.edges()
    for betas_zero in (False, True):
        if betas_zero:
            with torch.no_grad():
                for beta in model.betas.values():
                    beta.zero_()
        params = model.arch_parameters()
        ours = model(x)
        weights = {cell: F.softmax(a, dim=-1) * node_softmax(model.betas[cell], edges)[:, None]
                   for cell, a in model.alphas.items()}
        reference = darts(x, weights)
        assert (ours - reference).abs().max() < 1e-12
        for a, b in zip(torch.autograd.grad(F.cross_entropy(ours, y), params),
                        torch.autograd.grad(F.cross_entropy(reference, y), params)):
            assert (a - b).abs().max() < 1e-12
            assert b.abs().max() > 1e-8 or betas_zero  # real gradients, not zeros on both sides


@pytest.mark.parametrize("reduction", [False, True])
def test_partial_dag_matches_official_mixed_op(reduction: bool) -> None:
    """K=4 cell against the official per-edge formula: node = Σ_e b_e ·
    shuffle(cat(Σ_o w_o op_o(x[:, :C/4]), bypass), 4), bypass = x[:, C/4:] max-pooled 2x2 on
    stride-2 edges. The ops are the same weights run as a plain C/4-channel EdgeOps."""
    channels, k = 8, 4
    ops = list(SPACE_OPS["darts"])
    torch.manual_seed(0)
    dag = MixedDag(DARTS_OPS, ops, channels, 2, 4, reduction, EdgeOptions(partial=k)).double()
    refs = []
    for edge_ops in dag.sources:
        ref = EdgeOps(DARTS_OPS, ops, channels // k, edge_ops.edges, edge_ops.stride).double()
        ref.load_state_dict(edge_ops.state_dict())
        refs.append(ref)
    g = torch.Generator().manual_seed(1)
    weights = F.softmax(torch.randn(14, len(ops), generator=g, dtype=f64), dim=-1)
    edge_weights = torch.rand(14, generator=g, dtype=f64) + 0.5
    inputs = [torch.randn(3, channels, 8, 8, generator=g, dtype=f64) for _ in range(2)]

    ours = dag(inputs, weights * edge_weights[:, None])

    edges = edge_list(2, 4)
    states = list(inputs)
    for target in range(2, 6):
        node = 0.0
        for source in range(target):
            out_rows = [edges.index((source, t)) for t in range(max(2, source + 1), 6)]
            row = edges.index((source, target))
            x = states[source]
            mixed = refs[source](x[:, :channels // k], weights[out_rows])[:, out_rows.index(row)]
            bypass = x[:, channels // k:]
            if reduction and source < 2:
                bypass = F.max_pool2d(bypass, 2, 2)
            node = node + edge_weights[row] * official_shuffle(torch.cat([mixed, bypass], 1), k)
        states.append(node)
    assert ours[-1].shape == (3, channels, 4 if reduction else 8, 4 if reduction else 8)
    for mine, official in zip(ours, states[2:]):
        assert (mine - official).abs().max() < 1e-12


def peak_bytes(fn) -> int:  # noqa: ANN001
    """Peak of the tensor memory `fn` allocates on the CPU: the profiler's allocator events
    (+bytes on allocation, −bytes on free) summed in time order. (tracemalloc does not see
    torch's CPU allocator; the raw Kineto events are the one place these come unaggregated.)"""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    return max(itertools.accumulate(n for _, n in events))


def test_peak_memory_check_measures_tensors() -> None:
    """The instrument itself: a known 4 MiB float32 tensor and its 4 MiB relu."""
    def make() -> None:
        x = torch.ones(1024, 1024)
        torch.relu(x)

    assert 8 * 2**20 <= peak_bytes(make) < 8 * 2**20 + 2**16


def test_pc_darts_step_needs_less_memory_than_darts() -> None:
    """Peak tensor memory of one w step (forward + backward + SGD), same supernet config."""
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(32, 1, 16, 16, generator=g), torch.randint(0, 3, (32,), generator=g))
    peaks = {}
    for name in ("darts", "pcdarts"):
        config = SearchConfig().with_changes(
            {"network": {"channels": 8, "layers": 3}, "strategy.name": name,
             "strategy.pc_warmup_epochs": 0})
        strategy = tiny_strategy(config, image=16)
        strategy.model.float()
        strategy.weight_step(batch, 0.0)  # optimiser state exists before measuring
        peaks[name] = peak_bytes(lambda s=strategy: s.weight_step(batch, 0.0))
    ratio = peaks["pcdarts"] / peaks["darts"]
    assert ratio < 0.7, f"PC-DARTS/DARTS peak memory {ratio:.2f} ({peaks})"


def test_alpha_and_beta_wait_for_the_warmup() -> None:
    config = tiny("nb201", epochs=2, **{"strategy.name": "pcdarts", "strategy.pc_partial": 2,
                                        "strategy.pc_warmup_epochs": 1})
    search = Search(config)
    params = search.model.arch_parameters()
    assert len(params) == 2  # α and β of the one NB201 cell type
    start = [p.detach().clone() for p in params]
    while search.epoch < 1:
        search.step()
        assert all(torch.equal(p, s) for p, s in zip(params, start))
    search.step()  # the first step of epoch 2
    assert all(not torch.equal(p, s) for p, s in zip(params, start))


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_search_records_and_genotype(space: str) -> None:
    config = tiny(space, epochs=1, **{"strategy.name": "pcdarts", "strategy.pc_partial": 2,
                                      "strategy.pc_warmup_epochs": 0})
    search = Search(config)
    (record,) = [r for r in search.run() if r["kind"] == "epoch"]
    assert EPOCH_KEYS <= set(record)
    model = search.model
    derivation = model.derivation_weights()
    for cell, alpha in model.alphas.items():
        probs = F.softmax(alpha.detach().double(), dim=-1)
        assert np.allclose(record["alphas"][cell], probs.numpy(), atol=1e-6)  # α, not α·β
        scale = node_softmax(model.betas[cell].detach().double(), model.space.edges())
        assert np.allclose(derivation[cell], (probs * scale[:, None]).numpy())
    assert record["genotype"] == model.space.genotype_dict(model.space.derive(derivation))
    state = search.state_dict()["model"]
    assert all(f"betas.{cell}" in state for cell in model.alphas)


def test_runs_live_and_resumes_exactly(tmp_path) -> None:
    """The runner needs nothing new; a run stopped in epoch 2 (β and the partial supernet in
    its checkpoint) resumes to the very records of an uninterrupted search."""
    config = tiny("darts", epochs=3, **{"strategy.name": "pcdarts", "strategy.pc_partial": 2,
                                        "strategy.pc_warmup_epochs": 1, "record.log_every": 1})
    whole = Search(config).run()
    registry = RunRegistry(tmp_path)
    try:
        run = registry.create(config).start()
        run.pause()  # at once: the first step is the earliest it can hold
        assert run.wait_for(lambda s: s.state == "paused", TIMEOUT), run.snapshot().message
        run.step(6 - run.snapshot().step)  # into epoch 2 (4 steps an epoch)
        assert run.wait_for(lambda s: s.state == "paused" and s.step == 6, TIMEOUT)
        run.stop()
        assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)
        resumed = registry.resume(run.run_id).start()
        assert resumed.wait_for(lambda s: s.state == "finished", TIMEOUT)
    finally:
        registry.stop_all()

    assert without_timings(resumed.folder.read_records()) == without_timings(whole)


def test_warmup_of_the_whole_search_is_refused() -> None:
    """A warm-up as long as the search would leave α where it started: the classroom preset's
    6 epochs against the default 15 is a config error naming the field."""
    with pytest.raises(ConfigError) as caught:
        preset("classroom").with_changes({"strategy.name": "pcdarts"})
    assert caught.value.path == "strategy.pc_warmup_epochs"
    assert "fewer than the search's epochs (6)" in str(caught.value)
    preset("classroom").with_changes({"strategy.name": "pcdarts",
                                      "strategy.pc_warmup_epochs": 5})


def test_partial_must_divide_channels() -> None:
    with pytest.raises(ValueError, match=r"^strategy\.pc_partial must be a divisor of network"):
        tiny("nb201", **{"network.channels": 6, "strategy.name": "pcdarts",
                         "strategy.pc_partial": 4})
    with pytest.raises(ValueError, match=r"^strategy\.pc_partial must be"):
        tiny("nb201", **{"strategy.pc_partial": 0})


def test_lambda_max_says_it_covers_beta() -> None:
    """Under PC-DARTS λmax is taken over α and β together (the arch parameters the optimiser
    moves), and the record says so; under DARTS over α alone."""
    measured = {"diagnostics.hessian_every": 1, "diagnostics.hessian_batch": 16,
                "diagnostics.hessian_iterations": 3}
    pc = Search(tiny("nb201", epochs=1, **{"strategy.name": "pcdarts", "strategy.pc_partial": 2,
                                           "strategy.pc_warmup_epochs": 0, **measured}))
    (record,) = [r for r in pc.run() if r["kind"] == "epoch"]
    assert record["hessian_over"] == "α and β" and len(pc.model.arch_parameters()) == 2
    darts = Search(tiny("nb201", epochs=1, **measured))
    (record,) = [r for r in darts.run() if r["kind"] == "epoch"]
    assert record["hessian_over"] == "α"
