"""Read-only measurements of α and the derived cell (the collapse instruments), and the
published early-stop rules built on them.

Everything here either reads numbers already on the host (softmax α, genotypes, earlier
records) or, for λmax, costs forward/backward passes — which is why the search measures λmax at
a sparse cadence (`diagnostics.hessian_every`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PARAMETER_FREE_OPS = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"})


def edge_entropy(probs: np.ndarray) -> np.ndarray:
    """−Σ_o p_o log p_o per edge (last axis) of softmax α; ln(ops) is an undecided edge, 0 a
    decided one."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def mean_entropy(probs_by_cell: dict[str, np.ndarray]) -> float:
    """Mean per-edge entropy over every edge of every cell type."""
    return float(np.concatenate([edge_entropy(p) for p in probs_by_cell.values()]).mean())


def parameter_free_mass(probs: np.ndarray, ops: Sequence[str]) -> np.ndarray:
    """Softmax mass on skip, pools and none, averaged over edges (last two axes: edges, ops).
    Rising mass is the collapse: the supernet routes around its convolutions."""
    columns = [i for i, op in enumerate(ops) if op in PARAMETER_FREE_OPS]
    return np.asarray(probs)[..., columns].sum(axis=-1).mean(axis=-1)


def top_margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 weight per edge: how decided each edge is."""
    top = np.sort(np.asarray(probs), axis=-1)
    return top[..., -1] - top[..., -2]


def hessian_max_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor],
                           iterations: int = 20, tolerance: float = 1e-3, seed: int = 0,
                           start: list[torch.Tensor] | None = None
                           ) -> tuple[float, str, list[torch.Tensor]]:
    """Largest *algebraic* eigenvalue of ∇²_params loss by power iteration on Hessian-vector
    products (R-DARTS' λmax).

    Plain power iteration finds the eigenvalue of largest magnitude, which early in a search can
    be negative; then it runs again on H + |λ|·I, whose dominant eigenvalue is λmax + |λ|.
    Returns the value, which computation gave it, and the eigenvector: passed back as `start`
    at the next measurement, it makes the iteration converge in a few steps (α moves little
    between measurements).
    """
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
        dot = sum((g * x).sum() for g, x in zip(grads, v))
        return [h.detach() for h in torch.autograd.grad(dot, params, retain_graph=True)]

    if start is None:
        generator = torch.Generator().manual_seed(seed)
        start = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
                 for p in params]
    dominant, vector = _power_iteration(hvp, start, iterations, tolerance, shift=0.0)
    if dominant >= 0:
        return dominant, "power iteration", vector
    shifted, vector = _power_iteration(hvp, start, iterations, tolerance, shift=-dominant)
    return (shifted + dominant,
            f"power iteration on H + {-dominant:.3g}·I (dominant was negative)", vector)


def _power_iteration(hvp: Callable[[list[torch.Tensor]], list[torch.Tensor]],
                     start: list[torch.Tensor], iterations: int, tolerance: float, shift: float
                     ) -> tuple[float, list[torch.Tensor]]:
    def norm(v: list[torch.Tensor]) -> torch.Tensor:
        return torch.sqrt(sum((x * x).sum() for x in v))

    v = [x / norm(start) for x in start]
    value = 0.0
    for i in range(iterations):
        hv = [h + shift * x for h, x in zip(hvp(v), v)]
        new = float(sum((a * b).sum() for a, b in zip(v, hv)))  # Rayleigh quotient
        size = norm(hv)
        if float(size) == 0.0:
            return 0.0, v
        v = [x / size for x in hv]
        if i and abs(new - value) <= tolerance * max(abs(new), 1e-12):
            return new, v
        value = new
    return value, v


@dataclass(frozen=True)
class Alarm:
    rule: str
    epoch: int  # when it fired
    rollback_epoch: int | None  # where the rule says the good architecture was
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "epoch": self.epoch, "rollback_epoch": self.rollback_epoch,
                "message": self.message}


def darts_plus_rule(epochs: Sequence[dict[str, Any]], limit: int = 2) -> Alarm | None:
    """DARTS+: collapse once the normal cell (the NB201 cell) holds `limit`+ skip_connects."""
    for record in epochs:
        skips = record.get("skip_count")
        if skips is not None and skips >= limit:
            return Alarm("darts+", record["epoch"], None,
                         f"{skips} skip_connect edges in the derived cell at epoch "
                         f"{record['epoch']} (DARTS+ stops at {limit})")
    return None


def rdarts_rule(epochs: Sequence[dict[str, Any]], ratio: float = 1.3, window: int = 8,
                smoothing: int = 5, not_before: int = 10) -> Alarm | None:
    """R-DARTS (DARTS-ES): λmax, smoothed by a `smoothing`-point moving average, grew by more
    than `ratio` over `window` epochs; not before epoch `not_before`. Roll back to the earlier
    epoch of that comparison."""
    measured = [(r["epoch"], r["hessian_max_eigenvalue"]) for r in epochs
                if r.get("hessian_max_eigenvalue") is not None]
    smooth: dict[int, float] = {}
    for i, (epoch, _) in enumerate(measured):
        recent = [v for _, v in measured[max(0, i - smoothing + 1): i + 1]]
        smooth[epoch] = float(np.mean(recent))
    for epoch, value in smooth.items():
        before = epoch - window
        if epoch < not_before or before not in smooth or smooth[before] <= 0:
            continue
        if value / smooth[before] > ratio:
            return Alarm("rdarts", epoch, before,
                         f"λmax grew {value / smooth[before]:.2f}x from epoch {before} to "
                         f"{epoch} (R-DARTS stops above {ratio}); roll back to epoch {before}")
    return None


RULES: dict[str, Callable[[Sequence[dict[str, Any]]], Alarm | None]] = {
    "darts+": darts_plus_rule,
    "rdarts": rdarts_rule,
}


def first_alarm(epochs: Sequence[dict[str, Any]]) -> Alarm | None:
    """Whichever rule fired first (by epoch): the single `alarm` a viewer shows."""
    fired = [a for a in (rule(epochs) for rule in RULES.values()) if a is not None]
    return min(fired, key=lambda a: a.epoch) if fired else None
