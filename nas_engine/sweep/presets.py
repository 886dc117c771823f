"""Named sweeps: a preset, a grid and seeds that answer one question.

`collapse-map`: where does skip_connect take over the collapse demo (R-DARTS' space S3 in the
NB201 cell, on digits_clutter), as the entropy weight (λ < 0 flattens α, λ > 0 sharpens it)
and the α learning rate change, on 3 seeds? `benchmarks/collapse_exploration.md` tried these
values one run at a time; the map puts all 27 side by side, in about 10 minutes on 2 cores;
`--retrain` adds one classroom retrain per trial."""

from __future__ import annotations

from nas_engine.config import ConfigError
from nas_engine.sweep.spec import SweepSpec

SWEEPS: dict[str, SweepSpec] = {
    "collapse-map": SweepSpec(
        name="collapse-map", preset="collapse-demo",
        grid={"regularizers.entropy.weight": [-10.0, 0.0, 10.0],
              "optim.alpha_lr": [0.003, 0.01, 0.03]},
        seeds=[0, 1, 2]),
}


def named_sweep(name: str) -> SweepSpec:
    if name not in SWEEPS:
        raise ConfigError("sweep", "one of " + ", ".join(SWEEPS), name)
    return SWEEPS[name]
