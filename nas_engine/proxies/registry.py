"""Every proxy by name: `(model, batch (x, y), loss_fn) -> float`."""

from __future__ import annotations

from nas_engine.proxies.base import Proxy
from nas_engine.proxies.baselines import flops, params
from nas_engine.proxies.epe_nas import epe_nas
from nas_engine.proxies.fisher import fisher
from nas_engine.proxies.grad_norm import grad_norm
from nas_engine.proxies.grasp import grasp
from nas_engine.proxies.jacob_cov import jacob_cov
from nas_engine.proxies.naswot import naswot
from nas_engine.proxies.snip import snip
from nas_engine.proxies.synflow import synflow
from nas_engine.proxies.zen import zen

PROXIES: dict[str, Proxy] = {
    "naswot": naswot, "jacob_cov": jacob_cov, "synflow": synflow, "grad_norm": grad_norm,
    "snip": snip, "grasp": grasp, "fisher": fisher, "zen": zen, "epe_nas": epe_nas,
    "params": params, "flops": flops,
}
