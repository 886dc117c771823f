"""Seed 001's generational evolution, as written there: a generation of P architectures; the
better half survives, and each new member is a uniform crossover of two surviving elites with
one mutation. Survivors keep their scores (the evaluations database would answer them anyway).
"""

from __future__ import annotations

from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.discrete.base import DiscreteStrategy
from nas_engine.discrete.decisions import Arch, DecisionSpace


class GenerationalEvolution(DiscreteStrategy):
    def __init__(self, space: DecisionSpace, config: SearchConfig) -> None:
        super().__init__(space, config)
        self.generation = 0
        self.elites: list[tuple[Arch, float]] = []  # survivors of the last generation
        self.members: list[tuple[Arch, float]] = []  # this generation, scored so far

    def propose(self) -> Arch:
        if not self.elites:  # generation 0: at random
            return self.space.sample(self.rng)
        i, j = self.rng.choice(len(self.elites), size=2, replace=len(self.elites) < 2)
        child = self.space.crossover(self.elites[int(i)][0], self.elites[int(j)][0], self.rng)
        return self.space.mutate(child, self.rng)

    def observe(self, arch: Arch, score: float) -> None:
        self.members.append((arch, score))
        if len(self.elites) + len(self.members) < self.config.discrete.population:
            return
        ranked = sorted([*self.elites, *self.members], key=lambda m: -m[1])
        self.elites = ranked[: max(1, self.config.discrete.population // 2)]
        self.members = []
        self.generation += 1

    def view(self) -> dict[str, Any]:
        return {"generation": self.generation,
                "population": [{"arch": self.space.text(a), "score": s, "elite": e}
                               for group, e in ((self.elites, True), (self.members, False))
                               for a, s in group]}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generation": self.generation,
                "elites": [[list(a), s] for a, s in self.elites],
                "members": [[list(a), s] for a, s in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generation = state["generation"]
        self.elites = [(tuple(a), s) for a, s in state["elites"]]
        self.members = [(tuple(a), s) for a, s in state["members"]]
