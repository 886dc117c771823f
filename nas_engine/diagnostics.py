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
    """Largest *algebraic* eigenvalue of ∇²_params loss (R-DARTS' λmax) by Lanczos on
    Hessian-vector products.

    Lanczos rather than power iteration: its top Ritz value is the largest algebraic eigenvalue
    even when a negative one dominates in magnitude (common early in a search), and it converges
    in far fewer products, each a double backward through the supernet, which is the whole
    cost. α has a few hundred entries, so full reorthogonalisation is cheap and keeps it exact.
    Stops when the top Ritz value changes by less than `tolerance` (relative). Returns the
    value, how it was computed, and the Ritz vector: passed back as `start` at the next
    measurement, it cuts the products needed again (α moves little between measurements).
    """
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: torch.Tensor) -> torch.Tensor:
        products = torch.autograd.grad(flat_grad @ v, params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in products]).detach()

    if start is None:
        generator = torch.Generator().manual_seed(seed)
        start = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
    q = torch.cat([s.reshape(-1) for s in start]).to(flat_grad)
    value, ritz, products = _lanczos_top(hvp, q, iterations, tolerance)
    sizes = [p.numel() for p in params]
    vector = [c.view_as(p) for c, p in zip(torch.split(ritz, sizes), params)]
    return value, f"Lanczos, {products} Hessian-vector products", vector


def _lanczos_top(hvp: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
                 iterations: int, tolerance: float) -> tuple[float, torch.Tensor, int]:
    """Top eigenpair of a symmetric operator from at most `iterations` products."""
    basis = [start / start.norm()]
    diagonal: list[float] = []
    off_diagonal: list[float] = []
    value = float("nan")
    for k in range(min(iterations, start.numel())):
        w = hvp(basis[-1])
        diagonal.append(float(basis[-1] @ w))
        stacked = torch.stack(basis)
        for _ in range(2):  # twice is enough to stay orthogonal in float32
            w = w - stacked.T @ (stacked @ w)
        tridiagonal = np.diag(diagonal) + np.diag(off_diagonal, 1) + np.diag(off_diagonal, -1)
        eigenvalues, eigenvectors = np.linalg.eigh(tridiagonal)
        previous, value = value, float(eigenvalues[-1])
        size = float(w.norm())
        converged = k > 0 and abs(value - previous) <= tolerance * max(abs(value), 1e-12)
        if converged or size <= 1e-10 * max(abs(value), 1.0):  # or an invariant subspace
            break
        off_diagonal.append(size)
        basis.append(w / size)
    top = torch.as_tensor(eigenvectors[:, -1], dtype=start.dtype, device=start.device)
    ritz = torch.stack(basis[:len(diagonal)]).T @ top
    return value, ritz, len(diagonal)


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
