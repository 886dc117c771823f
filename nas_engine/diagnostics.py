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

from nas_engine.catalog import PARAMETER_FREE
from nas_engine.precision import float32


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
    columns = [i for i, op in enumerate(ops) if op in PARAMETER_FREE]
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
    Float32 throughout, whatever autocast is in force: Lanczos needs the products to be one
    symmetric operator, and bf16 rounding differs from product to product.
    """
    with float32(params[0].device):
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


def rdarts_stop(measurements: Sequence[tuple[int, float]], every: int, ratio: float = 1.3,
                window: int = 5, delta: int = 4, not_before: int = 10
                ) -> tuple[int, int, float] | None:
    """R-DARTS' early stop (DARTS-ES; Zela et al., ICLR 2020), as RobustDARTS' `utils.py`
    `EVLocalAvg` computes it, on (epoch, λmax) pairs measured every `every` epochs. Returns
    the first firing as (epoch, roll-back epoch, ratio), or None.

    From the ⌈window/2⌉-th measurement on, each measurement e adds a local average, the mean of
    the last `window` λmax, standing for epoch e − every·⌊window/2⌋. The newest is divided by
    the one `delta` averages earlier; above `ratio` the rule fires and rolls back to the epoch
    that earlier one stands for, e − every·(⌊window/2⌋ + delta). Following the official code:
    - `not_before` (their `es_start_epoch`) bounds the roll-back epoch, not e;
    - no full window is required: the first averages are means of the 3 or 4 λmax so far
      (compared only if the 1st or 2nd measurement is at epoch ≥ `not_before`);
    - a plain division, no sign guard: an earlier average of 0 gives inf (fires if the newer
      one is > 0), and with two negative averages a *falling* λmax fires;
    - measurements off the `every` grid are skipped: R-DARTS also measures its final epoch off
      the grid and never checks the rule there. (It never checks an on-grid final epoch either;
      this function cannot tell which epoch is final.)
    A comparison without `delta` earlier averages is skipped (the official code would fail).
    """
    if every < 1:
        raise ValueError(f"every must be ≥ 1, got {every}")
    values: list[float] = []
    averages: list[float] = []
    for epoch, value in measurements:
        if epoch % every:
            continue
        values.append(float(value))
        if len(values) < (window + 1) // 2:
            continue  # no local average yet
        averages.append(float(np.mean(values[-window:])))
        rollback = epoch - every * (window // 2) - every * delta
        if rollback < not_before or len(averages) <= delta:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):  # x/0 as numpy: ±inf or nan
            grown = float(np.float64(averages[-1]) / np.float64(averages[-1 - delta]))
        if grown > ratio:
            return epoch, rollback, grown
    return None


def rdarts_rule(epochs: Sequence[dict[str, Any]], every: int = 2, ratio: float = 1.3,
                window: int = 5, delta: int = 4, not_before: int = 10) -> Alarm | None:
    """R-DARTS (DARTS-ES) on epoch records: `rdarts_stop` over the measured λmax (`every` is
    the measuring cadence, `diagnostics.hessian_every`)."""
    measured = [(r["epoch"], r["hessian_max_eigenvalue"]) for r in epochs
                if r.get("hessian_max_eigenvalue") is not None]
    fired = rdarts_stop(measured, every, ratio, window, delta, not_before)
    if fired is None:
        return None
    epoch, rollback, grown = fired
    centre = epoch - every * (window // 2)
    return Alarm("rdarts", epoch, rollback,
                 f"λmax local average grew {grown:.2f}x from epoch {rollback} to {centre} "
                 f"(R-DARTS stops above {ratio}); roll back to epoch {rollback}")
