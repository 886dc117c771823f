"""The one wrapper every proxy runs through: a copy of the network, the time it took, and an
undefined score (None, with the reason) for a proxy that does not apply or whose value is NaN
or ±inf, so no silent number ever stands in for a failed proxy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from torch import nn

from nas_engine.proxies.base import Batch, LossFn, Proxy, Undefined, working_copy
from nas_engine.proxies.registry import PROXIES


@dataclass(frozen=True)
class ProxyResult:
    """One proxy's score (None: undefined, `reason` says why) and its seconds."""

    value: float | None
    seconds: float
    reason: str | None = None


def resolve(proxy: str | Proxy) -> Proxy:
    if callable(proxy):
        return proxy
    if proxy not in PROXIES:
        raise ValueError(f"unknown proxy {proxy!r}; known: {', '.join(PROXIES)}")
    return PROXIES[proxy]


def evaluate(proxy: str | Proxy, model: nn.Module, batch: Batch, loss_fn: LossFn) -> ProxyResult:
    """Run `proxy` (a name of `PROXIES` or a callable) on a working copy of `model` (so the
    caller's weights, statistics and mode stay as they were)."""
    fn = resolve(proxy)
    start = time.perf_counter()
    try:
        value = float(fn(working_copy(model), batch, loss_fn))
    except Undefined as exc:
        return ProxyResult(None, time.perf_counter() - start, str(exc))
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return ProxyResult(None, seconds, f"not finite ({value})")
    return ProxyResult(value, seconds)


def score(proxy: str | Proxy, model: nn.Module, batch: Batch, loss_fn: LossFn) -> float | None:
    """The proxy's score, None when undefined (`evaluate` also says why and how long)."""
    return evaluate(proxy, model, batch, loss_fn).value
