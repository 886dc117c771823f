"""How w and α are updated; `make_strategy` picks one by the config's strategy name. Adding a
strategy = one class in its own module and its entry here (GDAS is the worked example)."""

from __future__ import annotations

import torch

from nas_engine.config import SearchConfig
from nas_engine.strategies.base import Batch, StepResult, Strategy
from nas_engine.strategies.darts import Darts
from nas_engine.strategies.fair_darts import FairDarts
from nas_engine.strategies.gdas import Gdas
from nas_engine.strategies.nasp import Nasp
from nas_engine.strategies.pcdarts import PCDarts
from nas_engine.strategies.spos import Spos

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Darts, PCDarts, Nasp, Gdas, FairDarts, Spos)
}


def make_strategy(config: SearchConfig, device: torch.device) -> Strategy:
    return STRATEGIES[config.strategy.name](config, device)


__all__ = ["STRATEGIES", "Batch", "StepResult", "Strategy", "make_strategy"]
