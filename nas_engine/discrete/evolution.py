"""Regularized (aging) evolution, Real et al. 2019, Algorithm 1: a population of P, filled at
random first; then each cycle samples S members (with replacement), mutates the best of the
sample and adds the child, and removes the *oldest* member, not the worst, so that no lucky
architecture lives forever."""

from __future__ import annotations

from collections import deque
from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.discrete.base import DiscreteStrategy
from nas_engine.discrete.decisions import Arch, DecisionSpace


class RegularizedEvolution(DiscreteStrategy):
    def __init__(self, space: DecisionSpace, config: SearchConfig) -> None:
        super().__init__(space, config)
        self.population: deque[tuple[Arch, float, int]] = deque()  # (arch, score, born)
        self.born = 0  # architectures observed so far

    def propose(self) -> Arch:
        size, sample = self.config.discrete.population, self.config.discrete.sample
        if len(self.population) < size:
            return self.space.sample(self.rng)
        picks = self.rng.integers(len(self.population), size=sample)
        parent = max((self.population[int(i)] for i in picks), key=lambda m: m[1])
        return self.space.mutate(parent[0], self.rng)

    def observe(self, arch: Arch, score: float) -> None:
        self.population.append((arch, score, self.born))
        self.born += 1
        if len(self.population) > self.config.discrete.population:
            self.population.popleft()  # the oldest

    def view(self) -> dict[str, Any]:
        return {"population": [{"arch": self.space.text(a), "score": s, "age": self.born - b}
                               for a, s, b in self.population]}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "born": self.born,
                "population": [[list(a), s, b] for a, s, b in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.born = state["born"]
        self.population = deque((tuple(a), s, b) for a, s, b in state["population"])
