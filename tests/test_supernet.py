"""The edge-batched supernets against the plain ones of benchmarks/plain_supernet.py.

Batching edges reorders channels (edge-major grouped convs, interleaved FactorizedReduce halves,
one BN per source); a slip there still runs, just computes another network. So, on the same
weights, both must give the same logits and gradients in float64, down to rounding.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.plain_supernet import build_plain, copy_weights, tensor_matches
from nas_engine.config import SearchConfig
from nas_engine.spaces import SearchSpace, make_space

TOL = 1e-9
Weights = dict[str, torch.Tensor]



def build(space: str, network: dict, ops: list[str] | None = None
          ) -> tuple[SearchSpace, nn.Module, nn.Module]:
    changes: dict = {"network": network}
    if ops is not None:
        changes["ops"] = ops
    search_space = make_space(SearchConfig(space=space).with_changes(changes))
    torch.manual_seed(0)
    ours = search_space.build_supernet(1, 3, 8).double()
    plain = build_plain(search_space, 1, 3).double()
    copy_weights(plain, ours)
    return search_space, ours, plain


def mixing_weights(space: SearchSpace, seed: int = 1) -> Weights:
    """Softmax of N(0, 1) logits: far from uniform, so a swapped edge or column shows."""
    g = torch.Generator().manual_seed(seed)
    return {cell: F.softmax(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)
            for cell, shape in space.alpha_shapes().items()}


def batch(seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(6, 1, 8, 8, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (6,), generator=g))


def forward_backward(net: nn.Module, weights: Weights) -> tuple[torch.Tensor, Weights]:
    """Train-mode logits; leaves the loss gradient in the parameters, returns the weights'."""
    x, y = batch()
    leaves = {cell: w.clone().requires_grad_() for cell, w in weights.items()}
    net.train()
    logits = net(x, leaves)
    F.cross_entropy(logits, y).backward()
    return logits.detach(), {cell: w.grad for cell, w in leaves.items()}


CASES = [
    ("darts", {"channels": 4, "layers": 4}, None),
    ("darts", {"channels": 4, "layers": 3}, ["none", "skip_connect", "sep_conv_3x3"]),
    ("nb201", {"channels": 4, "cells_per_stage": 1}, None),
    ("nb201", {"channels": 4, "cells_per_stage": 2}, None),
    ("nb201", {"channels": 4, "cells_per_stage": 1}, ["skip_connect", "nor_conv_3x3"]),
]


@pytest.mark.parametrize(("space", "network", "ops"), CASES)
def test_batched_supernet_equals_plain(space: str, network: dict, ops: list[str] | None) -> None:
    search_space, ours, plain = build(space, network, ops)
    weights = mixing_weights(search_space)
    our_logits, our_grads = forward_backward(ours, weights)
    plain_logits, plain_grads = forward_backward(plain, weights)

    assert (our_logits - plain_logits).abs().max() < TOL
    for cell in weights:
        assert plain_grads[cell].abs().max() > 1e-6  # a real gradient, not zeros on both sides
        assert (our_grads[cell] - plain_grads[cell]).abs().max() < TOL, cell

    our_params, plain_params = dict(ours.named_parameters()), dict(plain.named_parameters())
    our_state, plain_state = ours.state_dict(), plain.state_dict()
    for m in tensor_matches(plain, ours):
        if m.plain_key in plain_params:
            diff = m.take(our_params[m.our_key].grad) - plain_params[m.plain_key].grad
        else:  # BN running statistics, updated by the train-mode forward
            diff = m.take(our_state[m.our_key]).double() - plain_state[m.plain_key].double()
        assert diff.abs().max() < TOL, m


def test_edge_slices_by_hand() -> None:
    """A few slices written out, independent of `tensor_matches`' bookkeeping (C=4, all ops)."""
    search_space, ours, plain = build("darts", {"channels": 4, "layers": 4})
    weights = mixing_weights(search_space)
    forward_backward(ours, weights)
    forward_backward(plain, weights)

    # Normal cell 0: node 1 feeds nodes 2..5; edge 1->4 is its 3rd edge (e=2) and row 6.
    # sep_conv_3x3 is α column 4, the 4th op our source keeps (`none` is skipped).
    ours_sep = ours.cells[0].dag.sources[1].ops[3]
    plain_sep = plain.cells[0].dag.edges[6].ops[4]
    assert torch.allclose(ours_sep.pointwise1.weight.grad[8:12], plain_sep.pointwise1.weight.grad,
                          rtol=0, atol=TOL)
    assert torch.allclose(ours_sep.depthwise2.weight.grad[8:12], plain_sep.depthwise2.weight.grad,
                          rtol=0, atol=TOL)

    # Reduction cell 1 (C=8): node 0's skip_connect is a FactorizedReduce; edge 0->3 is e=1,
    # row 2. Its convs own rows 4:8 (C/2 each), its BN channels 8:16 ([conv_1 | conv_2]).
    ours_fr = ours.cells[1].dag.sources[0].ops[2]
    plain_fr = plain.cells[1].dag.edges[2].ops[3]
    assert torch.allclose(ours_fr.conv_2.weight.grad[4:8], plain_fr.conv_2.weight.grad,
                          rtol=0, atol=TOL)
    assert torch.allclose(ours_fr.bn.running_var[8:16], plain_fr.bn.running_var, rtol=0,
                          atol=TOL)

    search_space, ours, plain = build("nb201", {"channels": 4, "cells_per_stage": 1})
    weights = mixing_weights(search_space)
    forward_backward(ours, weights)
    forward_backward(plain, weights)
    # First cell: node 0 feeds 1, 2, 3; edge 0->2 is e=1 and row 1; nor_conv_3x3 is column 3.
    ours_conv = ours.layers[0].dag.sources[0].ops[2]
    plain_conv = plain.layers[0].dag.edges[1].ops[3]
    assert torch.allclose(ours_conv.conv.weight.grad[4:8], plain_conv.conv.weight.grad, rtol=0,
                          atol=TOL)


def test_darts_reduction_cell_halves_resolution() -> None:
    search_space, ours, _ = build("darts", {"channels": 4, "layers": 4})
    weights = mixing_weights(search_space)
    x, _ = batch()
    with torch.no_grad():
        stem = ours.stem(x)
        normal = ours.cells[0](stem, stem, weights["normal"])
        reduced = ours.cells[1](stem, normal, weights["reduce"])
    assert ours.cells[1].reduction and not ours.cells[0].reduction
    assert normal.shape == (6, 4 * 4, 8, 8)
    assert reduced.shape == (6, 4 * 8, 4, 4)


@pytest.mark.parametrize(("space", "network"), [("darts", {"channels": 4, "layers": 4}),
                                                 ("nb201", {"channels": 4, "cells_per_stage": 1})])
def test_none_weight_has_no_effect(space: str, network: dict) -> None:
    search_space, ours, _ = build(space, network)
    assert search_space.ops[0] == "none"
    weights = mixing_weights(search_space)
    x, _ = batch()

    def logits_with(column: int) -> torch.Tensor:
        changed = {cell: w.clone() for cell, w in weights.items()}
        for w in changed.values():
            w[:, column] += 3.0
        with torch.no_grad():
            return ours(x, changed)

    base = ours(x, weights).detach()
    assert torch.equal(logits_with(0), base)
    # The control: moving any other column does change the output.
    assert (logits_with(1) - base).abs().max() > 1e-6
