"""Live parameters: the settings a person may change while a run goes.

They apply at the next step (restart parameters such as the space or the channels need a new
run). Nothing here names them: the strategy and each component declare their own
(`declared(config)`), and the run itself declares its speed limit. `Run.set`, the CLI and
the app's forms all list `live_parameters(config)`, so they validate and explain a parameter
the same way, and a new component's parameters appear everywhere by themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas_engine.components import LiveParameter, declared_live_parameters
from nas_engine.config import SearchConfig
from nas_engine.discrete import DISCRETE_STRATEGIES
from nas_engine.evaluation.training import LIVE as TRAINING_PARAMETERS
from nas_engine.strategies import STRATEGIES

SPEED = LiveParameter("speed", "speed limit (steps/s)",
                      "slow motion for teaching: at most this many search steps per second; "
                      "0 is full speed", 0.0, 1000.0)


def _search_parameters(config: SearchConfig) -> list[LiveParameter]:
    return [*STRATEGIES[config.strategy.name].declared(config),
            *declared_live_parameters(config)]


# What each run kind's job declares (config.RUN_KINDS).
KIND_PARAMETERS: dict[str, Callable[[SearchConfig], list[LiveParameter]]] = {
    "search": _search_parameters,
    "train": lambda config: list(TRAINING_PARAMETERS),
    "discrete": lambda config: DISCRETE_STRATEGIES[config.discrete.strategy].declared(config),
}


def live_parameters(config: SearchConfig) -> dict[str, LiveParameter]:
    """The live parameters a run of `config` declares, by name, in the order forms show them."""
    return {p.name: p for p in [*KIND_PARAMETERS[config.kind](config), SPEED]}


def validate_live(config: SearchConfig, name: str, value: Any) -> float:
    declared = live_parameters(config)
    if name not in declared:
        raise ValueError(f"name must be a live parameter ({', '.join(declared)}); "
                         f"got {name!r}")
    return declared[name].validate(value)
