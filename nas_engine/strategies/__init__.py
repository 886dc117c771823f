"""How w and α are updated; `make_strategy` picks one by the config's strategy name."""

from __future__ import annotations

from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel
from nas_engine.strategies.base import Batch, StepResult, Strategy
from nas_engine.strategies.darts import DartsStrategy
from nas_engine.strategies.nasp import NaspStrategy
from nas_engine.strategies.pcdarts import PCDartsStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    "darts": DartsStrategy, "pcdarts": PCDartsStrategy, "nasp": NaspStrategy,
}


def make_strategy(model: SearchModel, config: SearchConfig) -> Strategy:
    return STRATEGIES[config.strategy.name](model, config)


__all__ = ["STRATEGIES", "Batch", "StepResult", "Strategy", "make_strategy"]
