"""Fair DARTS: sigmoid mixing, the zero-one term in the α loss, the genotype rule on σ(α) with
its threshold count, and its live weight."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_engine.live import live_parameters
from nas_engine.spaces import genotypes
from tests.builders import batch, tiny_config, tiny_strategy


def fair(space: str = "darts", **changes):  # noqa: ANN201
    config = tiny_config(space, **{"strategy.name": "fair_darts", **changes})
    return tiny_strategy(config), config


def test_ops_are_weighted_by_their_own_sigmoid() -> None:
    strategy, _ = fair("nb201")
    model = strategy.model
    with torch.no_grad():
        model.alphas["cell"].normal_(0, 2, generator=torch.Generator().manual_seed(1))
    weights = model.mixing_weights()["cell"]
    assert torch.equal(weights, torch.sigmoid(model.alphas["cell"]))
    assert not torch.allclose(weights.sum(-1), torch.ones(6, dtype=torch.float64))
    x, _ = batch(0)
    dense = model.space.build_supernet(1, 3, 8).double()
    dense.load_state_dict(model.net.state_dict())
    with torch.no_grad():
        assert (model(x) - dense(x, {"cell": torch.sigmoid(model.alphas["cell"])})).abs().max() \
            < 1e-12


def test_alpha_loss_adds_the_zero_one_term() -> None:
    strategy, config = fair("nb201", **{"optim.alpha_weight_decay": 0.0})
    model = strategy.model
    a = model.alphas["cell"]
    sigma = torch.sigmoid(a.detach())
    term = strategy.alpha_terms(dict(model.alphas))
    assert term.item() == pytest.approx(-10.0 * ((sigma - 0.5) ** 2).mean().item())
    train, val = batch(1), batch(2)
    expected = torch.autograd.grad(
        model.loss(*val) - 10.0 * ((torch.sigmoid(a) - 0.5) ** 2).mean(), [a])[0]
    strategy.alpha_step(train, val, 0.0)
    assert torch.allclose(a.grad, expected, atol=1e-12)
    strategy.set_live("fair_zero_one_weight", 0.0)
    assert strategy.alpha_terms(dict(model.alphas)) is None
    assert "fair_zero_one_weight" in live_parameters(config)
    assert live_parameters(config)["fair_zero_one_weight"].config_path == \
        "strategy.fair_zero_one_weight"


def test_genotype_is_the_darts_rule_on_sigmoid_alpha() -> None:
    """α chosen so that softmax and σ rank node 3's inputs differently: the cell follows σ."""
    strategy, config = fair("darts")
    model = strategy.model
    ops = config.ops
    conv = ops.index("sep_conv_3x3")
    with torch.no_grad():
        for a in model.alphas.values():
            a.fill_(-4.0)
            a[:, conv] = 1.0  # σ 0.73 and softmax 0.95 on every edge's conv ...
            a[2, :] = 3.0  # ... but row 2 (node 3 from node 0) flat: σ 0.95, softmax 1/8
    sigma = {c: torch.sigmoid(a.detach()).numpy() for c, a in model.alphas.items()}
    softmax = {c: F.softmax(a.detach(), -1).numpy() for c, a in model.alphas.items()}
    by_sigmoid = genotypes.derive_darts(sigma["normal"], sigma["reduce"], ops)
    by_softmax = genotypes.derive_darts(softmax["normal"], softmax["reduce"], ops)
    assert by_sigmoid != by_softmax
    assert model.genotype() == by_sigmoid
    # Only row 2's op (σ 0.95) passes 0.85; the other kept edges have 0.73. Raise two more.
    assert strategy.record_fields()["edges_above_threshold"] == {"normal": 1, "reduce": 1}
    with torch.no_grad():
        model.alphas["normal"][0, conv] = 3.0  # node 2's two inputs
        model.alphas["normal"][1, conv] = 3.0
    assert np.isclose(torch.sigmoid(torch.tensor(3.0)).item(), 0.9526, atol=1e-4)
    assert strategy.record_fields()["edges_above_threshold"] == {"normal": 3, "reduce": 1}
