"""Live parameters: the settings a person may change while a search runs.

They apply at the next step (restart parameters such as the space or the channels need a new
run). Each one is declared once here, with its bounds and a help line, so that `SearchRun.set`,
the CLI and the app validate and explain it the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas_engine.regularizers import REGULARIZERS


@dataclass(frozen=True)
class LiveParameter:
    name: str
    label: str
    help: str
    low: float
    high: float
    low_open: bool = False

    def validate(self, value: Any) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value <= self.high
        ok = ok and (value > self.low if self.low_open else value >= self.low)
        if not ok:
            bound = f"> {self.low}" if self.low_open else f">= {self.low}"
            raise ValueError(f"{self.name} must be a number {bound} and <= {self.high}; "
                             f"got {value!r}")
        return float(value)


LIVE_PARAMETERS: dict[str, LiveParameter] = {
    p.name: p
    for p in (
        LiveParameter("w_lr", "weight learning rate",
                      "SGD learning rate of the network weights; the cosine schedule continues "
                      "from the new value", 0.0, 10.0, low_open=True),
        LiveParameter("alpha_lr", "α learning rate",
                      "Adam learning rate of the architecture weights α; 0 freezes α", 0.0, 10.0),
        LiveParameter("speed", "speed limit (steps/s)",
                      "slow motion for teaching: at most this many search steps per second; "
                      "0 is full speed", 0.0, 1000.0),
        LiveParameter("wd_multiplier", "weight-decay multiplier",
                      "R-DARTS L2: the weights' decay × this (3, 9, 27, 81 delay collapse)",
                      0.0, 1000.0),
        *(LiveParameter(f"{name}_weight", cls.label, cls.help, -1000.0, 1000.0)
          for name, cls in REGULARIZERS.items()),
    )
}


def validate_live(name: str, value: Any) -> float:
    if name not in LIVE_PARAMETERS:
        raise ValueError(f"name must be a live parameter ({', '.join(LIVE_PARAMETERS)}); "
                         f"got {name!r}")
    return LIVE_PARAMETERS[name].validate(value)
