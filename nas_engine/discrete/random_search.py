"""Random search: every decision drawn uniformly, independently of what was seen (the baseline
every NAS method must beat; Li & Talwalkar 2019)."""

from __future__ import annotations

from nas_engine.discrete.base import DiscreteStrategy
from nas_engine.discrete.decisions import Arch


class RandomSearch(DiscreteStrategy):
    def propose(self) -> Arch:
        return self.space.sample(self.rng)

    def observe(self, arch: Arch, score: float) -> None:
        pass
