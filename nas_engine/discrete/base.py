"""`DiscreteStrategy`: the ask-and-tell interface every discrete search method has (NASLib's
small optimizer interface): propose an architecture, observe its score, and hold a state that
a checkpoint can carry, so a resumed run proposes exactly what the uninterrupted one would."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from nas_engine.components import LiveParameter
from nas_engine.config import SearchConfig
from nas_engine.discrete.decisions import Arch, DecisionSpace


class DiscreteStrategy(ABC):
    """Scores are higher-is-better (accuracy, or −MSE)."""

    def __init__(self, space: DecisionSpace, config: SearchConfig) -> None:
        self.space = space
        self.config = config
        self.rng = np.random.default_rng(config.seed)

    @classmethod
    def declared(cls, config: SearchConfig) -> list[LiveParameter]:
        """Live parameters the strategy reads at each proposal."""
        return []

    @property
    def exhausted(self) -> bool:
        """Nothing more to propose (a method that proposes a fixed number of candidates)."""
        return False

    @abstractmethod
    def propose(self) -> Arch:
        """The next architecture to evaluate."""

    @abstractmethod
    def observe(self, arch: Arch, score: float) -> None:
        """The score of the architecture `propose` returned last."""

    def view(self) -> dict[str, Any]:
        """What the live view draws of the strategy's mind (population, probabilities)."""
        return {}

    def live_values(self) -> dict[str, float]:
        return {}

    def set_live(self, name: str, value: float) -> None:
        raise KeyError(name)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
