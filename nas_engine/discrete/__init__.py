"""Discrete search: strategies that propose whole architectures, each scored by retraining it
(through the evaluations database), run as `discrete` runs (`DiscreteSearch`)."""

from __future__ import annotations

from nas_engine.config import SearchConfig
from nas_engine.discrete.base import DiscreteStrategy
from nas_engine.discrete.decisions import DecisionSpace
from nas_engine.discrete.evolution import RegularizedEvolution
from nas_engine.discrete.generational import GenerationalEvolution
from nas_engine.discrete.gradient_mlp import GradientMlp
from nas_engine.discrete.random_search import RandomSearch
from nas_engine.discrete.reinforce import Reinforce
from nas_engine.discrete.zero_shot import ZeroShot

# config.DISCRETE_STRATEGIES names these ("gradient": the MLP space only).
DISCRETE_STRATEGIES: dict[str, type[DiscreteStrategy]] = {
    "random": RandomSearch,
    "evolution": RegularizedEvolution,
    "ga": GenerationalEvolution,
    "reinforce": Reinforce,
    "gradient": GradientMlp,
    "zeroshot": ZeroShot,
}


def make_discrete_strategy(space: DecisionSpace, config: SearchConfig) -> DiscreteStrategy:
    return DISCRETE_STRATEGIES[config.discrete.strategy](space, config)


__all__ = ["DISCRETE_STRATEGIES", "DiscreteStrategy", "make_discrete_strategy"]
