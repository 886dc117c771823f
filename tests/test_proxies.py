"""Zero-cost proxies (issue 16): each against an independent formula on a tiny hand-made
network, synflow's data independence and rescaling invariance, undefined scores (a singular
NASWOT kernel, NaN, a proxy that does not apply), weights left as they were, the database
round trip, determinism per seed, and the size baselines equal the network's counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_engine.config import DataConfig
from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluation.networks import build_network, count_flops, count_parameters
from nas_engine.evaluations import EvaluationsDB, ProxyKey, ProxyScore
from nas_engine.proxies import PROXIES, Undefined, evaluate, proxy_scores, score
from nas_engine.proxies import zen as zen_module
from nas_engine.spaces.genotypes import parse_genotype
from nas_engine.spaces.mlp import MlpArch

NB201_ARCH = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+"
              "|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|")
DARTS_ARCH = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
    "('dil_conv_3x3', 2), ('max_pool_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('avg_pool_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('sep_conv_5x5', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


# -- a tiny hand-made network: x -> W1 -> ReLU -> W2, no biases ------------------------------
def two_layer(w1: np.ndarray, w2: np.ndarray) -> nn.Module:
    net = nn.Sequential(nn.Linear(w1.shape[1], w1.shape[0], bias=False), nn.ReLU(),
                        nn.Linear(w2.shape[1], w2.shape[0], bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w1))
        net[2].weight.copy_(torch.from_numpy(w2))
    return net


RNG = np.random.default_rng(0)
W1 = RNG.normal(size=(5, 4))
W2 = RNG.normal(size=(3, 5))
X = RNG.normal(size=(8, 4))
Y = np.array([0, 1, 2, 0, 1, 2, 0, 0])
WIDE = RNG.normal(size=(32, 4))  # enough units that the 8 samples' codes are distinct


def tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(X), torch.from_numpy(Y)


def numpy_backward() -> dict[str, np.ndarray]:
    """Cross-entropy (mean over the batch) gradients of the tiny net, by hand."""
    a1 = X @ W1.T
    h = np.maximum(a1, 0)
    z = h @ W2.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[Y]) / len(X)
    dh = dz @ W2
    da1 = dh * (a1 > 0)
    return {"a1": a1, "z": z, "dz": dz, "da1": da1, "dW2": dz.T @ h, "dW1": da1.T @ X}


def numpy_jacobians() -> np.ndarray:
    """d(Σ_k z_k)/dx per sample: Σ_k W2[k] ⊙ relu'(a1) through W1."""
    on = (X @ W1.T > 0).astype(float)
    return (W2.sum(0)[None, :] * on) @ W1


def run(name: str, net: nn.Module | None = None, batch=None) -> float | None:
    return score(name, net if net is not None else two_layer(W1, W2),
                 batch if batch is not None else tiny_batch(), F.cross_entropy)


# -- each proxy against an independent formula -----------------------------------------------
def test_naswot_is_the_log_det_of_the_hamming_kernel_on_known_codes() -> None:
    # W1 = I: the ReLU codes are the inputs' signs, [1, 0] and [1, 1]; they agree on one unit
    # of two, so K = [[2, 1], [1, 2]] and log|K| = log 3.
    net = two_layer(np.eye(2), np.ones((2, 2)))
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    assert run("naswot", net, (x, torch.tensor([0, 1]))) == pytest.approx(math.log(3))


def test_naswot_matches_a_numpy_kernel_and_sees_functional_relus() -> None:
    codes = (X @ WIDE.T > 0).astype(float)
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    expected = np.linalg.slogdet(kernel)[1]
    assert np.isfinite(expected)

    class Functional(nn.Module):  # F.relu inside an op, as the cell ops call it
        def __init__(self) -> None:
            super().__init__()
            self.inner = two_layer(WIDE, np.ones((3, 32)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner[2](F.relu(self.inner[0](x)))

    assert run("naswot", Functional().inner) == pytest.approx(expected)
    assert run("naswot", Functional()) == pytest.approx(expected)


def test_naswot_on_duplicate_inputs_is_undefined() -> None:
    x = torch.from_numpy(np.vstack([X[:3], X[:1]]))
    result = evaluate("naswot", two_layer(WIDE, np.ones((3, 32))), (x, torch.tensor([0, 1, 2, 0])),
                      F.cross_entropy)
    assert result.value is None and "not finite" in result.reason


def test_grad_norm_and_snip_are_the_explicit_sums() -> None:
    g = numpy_backward()
    norms = np.linalg.norm(g["dW1"]) + np.linalg.norm(g["dW2"])
    saliency = np.abs(W1 * g["dW1"]).sum() + np.abs(W2 * g["dW2"]).sum()
    assert run("grad_norm") == pytest.approx(norms, rel=1e-9)
    assert run("snip") == pytest.approx(saliency, rel=1e-9)


def test_grasp_is_minus_theta_times_hessian_gradient() -> None:
    shapes = [W1.shape, W2.shape]
    theta = torch.from_numpy(np.concatenate([W1.ravel(), W2.ravel()]))
    x, y = tiny_batch()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        w1 = flat[:W1.size].view(shapes[0])
        w2 = flat[W1.size:].view(shapes[1])
        return F.cross_entropy(F.relu(x @ w1.T) @ w2.T, y)

    grad = torch.autograd.functional.jacobian(loss, theta)
    hessian = torch.autograd.functional.hessian(loss, theta)
    expected = float(-(theta * (hessian @ grad)).sum())
    assert run("grasp") == pytest.approx(expected, rel=1e-7, abs=1e-12)


def test_fisher_is_the_channel_sum_broadcast_over_weights() -> None:
    g = numpy_backward()
    layer1 = 0.5 * ((g["a1"] * g["da1"]) ** 2).mean(0).sum() * W1.shape[1]
    layer2 = 0.5 * ((g["z"] * g["dz"]) ** 2).mean(0).sum() * W2.shape[1]
    assert run("fisher") == pytest.approx(layer1 + layer2, rel=1e-9)


def test_jacob_cov_is_the_eigen_formula_of_the_jacobian_correlations() -> None:
    eig = np.linalg.eigvalsh(np.corrcoef(numpy_jacobians()))
    k = 1e-5
    assert run("jacob_cov") == pytest.approx(-np.sum(np.log(eig + k) + 1 / (eig + k)))


def test_epe_nas_sums_the_per_class_correlation_scores() -> None:
    jac = numpy_jacobians()
    expected = sum(abs(np.sum(np.log(np.abs(np.corrcoef(jac[Y == c])) + 1e-5)))
                   for c in (0, 1, 2))
    assert run("epe_nas") == pytest.approx(expected)
    regression = (torch.from_numpy(X), torch.zeros(len(X), 1, dtype=torch.float64))
    result = evaluate("epe_nas", two_layer(W1, W2), regression, F.mse_loss)
    assert result.value is None and "class labels" in result.reason


def test_synflow_is_log_twice_the_path_product_of_absolute_weights() -> None:
    # R = 1ᵀ|W2||W1|1 is linear in each layer, so Σ θ ∂R/∂θ over both layers is 2R.
    flow = np.ones(3) @ np.abs(W2) @ np.abs(W1) @ np.ones(4)
    assert run("synflow") == pytest.approx(math.log(2 * flow))


def test_synflow_ignores_the_batch_and_rescaling_of_consecutive_layers() -> None:
    other = (torch.randn(8, 4, dtype=torch.float64) * 100, torch.from_numpy(Y))
    assert run("synflow", batch=other) == pytest.approx(run("synflow"))
    assert run("synflow", two_layer(W1 * 7.0, W2 / 7.0)) == pytest.approx(run("synflow"))


def test_zen_is_the_log_feature_difference_under_a_small_perturbation() -> None:
    # No BatchNorm: no σ̄ terms. The draws repeat the proxy's: weights in module order, then
    # the clean input and the noise, from one generator.
    gen = torch.Generator().manual_seed(zen_module.SEED)
    kw = {"generator": gen, "dtype": torch.float64}
    w1 = torch.empty(5, 4, dtype=torch.float64).normal_(generator=gen)
    torch.empty(3, 5, dtype=torch.float64).normal_(generator=gen)  # the head, unused by f
    clean = torch.randn(8, 4, **kw)
    mixed = clean + zen_module.ALPHA * torch.randn(8, 4, **kw)
    diff = (F.relu(clean @ w1.T) - F.relu(mixed @ w1.T)).abs().sum(1).mean()
    assert run("zen") == pytest.approx(math.log(diff.item()))


def test_zen_adds_the_log_batch_std_of_each_batchnorm() -> None:
    net = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)).double()
    gen = torch.Generator().manual_seed(zen_module.SEED)
    kw = {"generator": gen, "dtype": torch.float64}
    w1 = torch.empty(5, 4, dtype=torch.float64).normal_(generator=gen)  # biases zeroed
    torch.empty(3, 5, dtype=torch.float64).normal_(generator=gen)
    clean = torch.randn(8, 4, **kw)
    mixed = clean + zen_module.ALPHA * torch.randn(8, 4, **kw)

    def features(x: torch.Tensor) -> torch.Tensor:  # BN (weight 1, bias 0) on batch stats
        a = x @ w1.T
        return F.relu((a - a.mean(0)) / (a.var(0, unbiased=False) + 1e-5).sqrt())

    diff = (features(clean) - features(mixed)).abs().sum(1).mean().item()
    sigma = (clean @ w1.T).var(0, unbiased=False).mean().sqrt().item()
    expected = math.log(diff) + math.log(sigma)
    assert score("zen", net, tiny_batch(), F.cross_entropy) == pytest.approx(expected)


# -- undefined scores ------------------------------------------------------------------------
def test_nan_and_inf_and_undefined_are_none_with_a_reason() -> None:
    def nan_proxy(model, batch, loss_fn) -> float:
        return float("nan")

    def inf_proxy(model, batch, loss_fn) -> float:
        return float("inf")

    def undefined(model, batch, loss_fn) -> float:
        raise Undefined("does not apply")

    net, batch = two_layer(W1, W2), tiny_batch()
    for proxy, reason in ((nan_proxy, "nan"), (inf_proxy, "inf"), (undefined, "apply")):
        result = evaluate(proxy, net, batch, F.cross_entropy)
        assert result.value is None and reason in result.reason and result.seconds >= 0
        assert score(proxy, net, batch, F.cross_entropy) is None


def test_naswot_on_a_tanh_mlp_is_undefined() -> None:
    arch = MlpArch(2, 8, ("tanh", "tanh"), 0.01, "adam", 0.0)
    net = build_network("mlp", arch, 3, 1, 0)
    result = evaluate("naswot", net, (torch.randn(6, 3), torch.randn(6, 1)), F.mse_loss)
    assert result.value is None and "ReLU" in result.reason


# -- every proxy on the spaces' networks ----------------------------------------------------
def tiny_cell_network(space: str) -> nn.Module:
    torch.manual_seed(0)
    text = NB201_ARCH if space == "nb201" else DARTS_ARCH
    size = ({"channels": 4, "cells_per_stage": 1} if space == "nb201"
            else {"channels": 4, "layers": 3, "auxiliary": True})
    return build_network(space, parse_genotype(space, text), 1, 10, 8, **size)


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_proxies_leave_the_network_as_it_was(space: str) -> None:
    net = tiny_cell_network(space)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = (torch.randn(16, 1, 8, 8), torch.arange(16) % 10)
    for name in PROXIES:
        result = evaluate(name, net, batch, F.cross_entropy)
        assert result.value is None or math.isfinite(result.value), name
        assert result.value is not None, (name, result.reason)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net.training and all(p.grad is None for p in net.parameters())


def test_params_and_flops_are_the_network_counts() -> None:
    net = tiny_cell_network("darts")  # with an auxiliary head, which neither counts
    batch = (torch.randn(4, 1, 8, 8), torch.arange(4))
    assert score("params", net, batch, F.cross_entropy) == count_parameters(net)
    assert score("flops", net, batch, F.cross_entropy) == count_flops(net, (1, 8, 8))


# -- proxy_scores on data, and the database --------------------------------------------------
def test_proxy_scores_are_deterministic_for_a_seed() -> None:
    data = DataConfig(name="digits")
    first = proxy_scores("nb201", NB201_ARCH, data, seed=3)
    again = proxy_scores("nb201", NB201_ARCH, data, seed=3)
    other = proxy_scores("nb201", NB201_ARCH, data, seed=4, proxies=["snip"])
    assert set(first) == set(PROXIES) and dict(first) == dict(again)
    assert all(first.seconds[name] >= 0 for name in PROXIES) and not first.reasons
    assert other["snip"] != first["snip"]


def test_proxy_scores_of_a_regression_mlp_say_what_does_not_apply() -> None:
    arch = MlpArch(2, 16, ("relu", "tanh"), 0.01, "adam", 0.2).to_text()
    scores = proxy_scores("mlp", arch, DataConfig(name="regression1d"), seed=0)
    assert scores["epe_nas"] is None and "class labels" in scores.reasons["epe_nas"]
    # One input feature: 64 samples fall into at most 17 ReLU patterns of the first layer's
    # 16 units, so NASWOT's kernel is singular; the gradient proxies apply.
    assert scores["naswot"] is None and "not finite" in scores.reasons["naswot"]
    assert all(scores[name] is not None for name in ("synflow", "snip", "grad_norm", "zen"))
    assert "two values" in scores.reasons["jacob_cov"]  # a correlation of 1-value Jacobians
    assert scores["params"] == 16 * 1 + 16 + 16 * 16 + 16 + 16 + 1


def test_proxy_scores_round_trip_through_the_database(tmp_path) -> None:
    db = EvaluationsDB(tmp_path)
    arch = architecture_key("nb201", parse_genotype("nb201", NB201_ARCH))
    key = ProxyKey("nb201", arch, "digits", {"test_portion": 0.2, "resize": None}, "snip", 0)
    undefined_key = ProxyKey(**{**key.__dict__, "proxy": "naswot"})
    assert db.get_proxy(key) is None and db.proxy_rows() == []
    stored = db.put_proxy(ProxyScore(key, 11.5, 42.0))
    assert not stored.cached
    db.put_proxy(ProxyScore(undefined_key, None, 3.0, "not finite (-inf)"))
    again = EvaluationsDB(tmp_path)
    reordered = ProxyKey(**{**key.__dict__, "dataset_params": {"resize": None,
                                                              "test_portion": 0.2}})
    assert (again.get_proxy(reordered).value, again.get_proxy(reordered).ms) == (11.5, 42.0)
    late = again.put_proxy(ProxyScore(key, 99.0, 1.0))
    assert late.cached and late.value == 11.5
    undefined = again.get_proxy(undefined_key)
    assert undefined.value is None and undefined.reason == "not finite (-inf)"
    assert [r.key.proxy for r in again.proxy_rows(proxy="naswot")] == ["naswot"]
    assert len(again.proxy_rows(dataset_params={"resize": None, "test_portion": 0.2})) == 2
    assert again.rows() == []  # the evaluations table is untouched
    with pytest.raises(ValueError, match="finite"):
        ProxyScore(key, float("nan"), 1.0)
