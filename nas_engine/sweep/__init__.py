"""Sweeps: a grid of settings × seeds run as ordinary run folders on Ray Tune, one trial per
point, and retrains fanned out as Ray tasks (README, Sweeps on Ray).

Ray is an optional extra (`pip install -e '.[sweep]'`): `spec`, `presets`, `folder`,
`results`, `phase`, `launch` and `cli` describe, read and draw sweeps without it (the app
lists and draws them anywhere); only `driver`, `trial` and `fanout` import Ray.
"""

from __future__ import annotations

import importlib.util

INSTALL = ".venv/bin/pip install -e '.[sweep]'"  # the one line that adds Ray Tune


def ray_missing() -> str | None:
    """Why sweeps cannot run here (Ray Tune is not installed, with the line that installs
    it), or None when they can."""
    if importlib.util.find_spec("ray") is None:
        return f"sweeps need Ray Tune, which is not installed: {INSTALL}"
    return None
