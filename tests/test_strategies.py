"""The α gradient of DARTS second order against exact autograd through one unrolled SGD step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel
from nas_engine.strategies.gradient import GradientStrategy
from tests.builders import TINY_NETWORK, tiny_strategy


def tiny_model(space: str, seed: int = 0, **changes) -> tuple[GradientStrategy, SearchConfig]:
    # A supernet this small has kinks (ReLU, max-pool ties) within DARTS' R = 0.01 of w:
    # a smaller radius isolates the formula (the 2ε precedence) from finite-difference error.
    config = SearchConfig(space=space, epochs=4).with_changes(
        {"network": TINY_NETWORK, "strategy.order": "second", "optim.w_lr": 0.05,
         "strategy.fd_radius": 1e-7, **changes}
    )
    strategy = tiny_strategy(config, seed)
    with torch.no_grad():  # α away from uniform so the gradient is not symmetric
        for alpha in strategy.model.arch_parameters():
            alpha.normal_(0, 0.5)
    return strategy, config


def batches(seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    g = torch.Generator().manual_seed(seed)
    make = lambda: (torch.randn(6, 1, 8, 8, generator=g, dtype=torch.float64),  # noqa: E731
                    torch.randint(0, 3, (6,), generator=g))
    return make(), make()


def exact_unrolled_gradient(model: SearchModel, config: SearchConfig, xi: float,
                            weight_decay: float, strategy: GradientStrategy, train, val
                            ) -> list[torch.Tensor]:
    """d/dα L_val(w − ξ(m·buf + ∇w L_train(w, α) + wd·w), α), differentiated exactly, with ξ
    and wd given by the caller (what should be in force)."""
    net = model.net
    names = [n for n, _ in net.named_parameters()]
    weights = list(net.parameters())
    opt = config.optim
    loss = F.cross_entropy(net(train[0], model.mixing_weights()), train[1])
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    unrolled = {}
    for name, w, g in zip(names, weights, grads):
        step = g + weight_decay * w
        buf = strategy.w_optimizer.state.get(w, {}).get("momentum_buffer")
        if buf is not None:
            step = step + opt.w_momentum * buf
        unrolled[name] = w - xi * step
    val_loss = F.cross_entropy(
        functional_call(net, unrolled, (val[0], model.mixing_weights())), val[1]
    )
    return list(torch.autograd.grad(val_loss, model.arch_parameters()))


def relative_error(exact: list[torch.Tensor], approx: list[torch.Tensor]) -> float:
    return max((torch.linalg.vector_norm(e - a) / torch.linalg.vector_norm(e)).item()
               for e, a in zip(exact, approx))


@pytest.mark.parametrize("space", ["darts", "nb201"])
@pytest.mark.parametrize("with_momentum", [False, True])
def test_second_order_gradient_matches_autograd(space: str, with_momentum: bool) -> None:
    strategy, config = tiny_model(space)
    model = strategy.model
    train, val = batches(1)
    if with_momentum:  # one w step first, so SGD has a momentum buffer to unroll with
        strategy.weight_step(train, 0.0)
    exact = exact_unrolled_gradient(model, config, config.optim.w_lr,
                                    config.optim.w_weight_decay, strategy, train, val)
    _, approx = strategy.unrolled_gradients(train, val)
    first_order = torch.autograd.grad(model.loss(*val), model.arch_parameters())
    for e, a, f in zip(exact, approx, first_order):
        rel = (torch.linalg.vector_norm(e - a) / torch.linalg.vector_norm(e)).item()
        assert rel < 1e-2, f"second-order α gradient off by {rel:.2e} (relative)"
        # The Hessian term must matter here, or the test could not tell the orders apart.
        assert torch.linalg.vector_norm(e - f) > 10 * torch.linalg.vector_norm(e - a)


def test_unrolled_step_includes_weight_decay() -> None:
    """At a large weight decay the wd·w term of the unrolled step moves the gradient far more
    than the tolerance (at 3e-4 it would hide inside it)."""
    strategy, config = tiny_model("nb201", **{"optim.w_weight_decay": 0.5})
    model, (train, val) = strategy.model, batches(2)
    exact = exact_unrolled_gradient(model, config, config.optim.w_lr, 0.5, strategy, train, val)
    without = exact_unrolled_gradient(model, config, config.optim.w_lr, 0.0, strategy, train,
                                      val)
    _, approx = strategy.unrolled_gradients(train, val)
    assert relative_error(exact, approx) < 1e-2
    assert relative_error(exact, without) > 5e-2


def test_unrolled_step_uses_the_learning_rate_in_force() -> None:
    """ξ is the lr in force: after the cosine schedule has moved, and after a live change,
    not the config's w_lr."""
    strategy, config = tiny_model("nb201")
    model, (train, val) = strategy.model, batches(4)
    strategy.w_optimizer.step()  # no gradients yet: w stays; the scheduler may step after it
    strategy.after_epoch(1)
    strategy.after_epoch(2)  # cosine over 4 epochs: lr at epoch 2 is the midpoint
    scheduled = strategy.w_lr
    midpoint = (config.optim.w_lr + config.optim.w_lr_min) / 2
    assert scheduled == pytest.approx(midpoint)
    wd = config.optim.w_weight_decay
    for xi in (scheduled, 0.3):
        if xi == 0.3:
            strategy.set_live("w_lr", 0.3)
        exact = exact_unrolled_gradient(model, config, xi, wd, strategy, train, val)
        stale = exact_unrolled_gradient(model, config, config.optim.w_lr, wd, strategy, train,
                                        val)
        _, approx = strategy.unrolled_gradients(train, val)
        assert relative_error(exact, approx) < 1e-2
        assert relative_error(stale, approx) > 5e-2


def test_first_order_step_moves_alpha_against_val_gradient() -> None:
    strategy, config = tiny_model("darts", **{"strategy.order": "first",
                                              "optim.alpha_weight_decay": 0.0})
    model = strategy.model
    train, val = batches(3)
    before = [a.detach().clone() for a in model.arch_parameters()]
    grad = torch.autograd.grad(model.loss(*val), model.arch_parameters())
    strategy.alpha_step(train, val, 0.0)
    for b, a, g in zip(before, model.arch_parameters(), grad):
        step = a.detach() - b
        # Adam's first step is −lr·sign(g) wherever g is not tiny.
        big = g.abs() > 1e-4
        assert torch.all(torch.sign(step[big]) == -torch.sign(g[big]))
        assert torch.allclose(step[big].abs(), torch.full_like(step[big], config.optim.alpha_lr),
                              rtol=1e-3)
