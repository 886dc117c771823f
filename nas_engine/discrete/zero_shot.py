"""Zero-shot search (Mellor et al. 2021, "NAS without training", §5): score M random
architectures with a zero-cost proxy on their untrained networks, then train them best-first.
The proxy's seconds are the strategy's own time, so its cost axis charges them against the
retrains it saves (compared with random search at equal seconds in `comparison`).

`discrete.proxy` is one proxy or `vote` (Abdelfattah et al. 2021: synflow, jacob_cov and snip
by mean rank). Architectures whose score is undefined rank last, in their drawn order.
"""

from __future__ import annotations

from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.discrete.base import DiscreteStrategy
from nas_engine.discrete.decisions import Arch, DecisionSpace
from nas_engine.discrete.evaluator import Evaluator
from nas_engine.proxies.scores import proxy_scores

SHOWN = 10  # ranked candidates the live view lists


class ZeroShot(DiscreteStrategy):
    def __init__(self, space: DecisionSpace, config: SearchConfig) -> None:
        super().__init__(space, config)
        self.ranked: list[tuple[Arch, float | None]] = []  # best first, once scored
        self.position = 0

    @property
    def exhausted(self) -> bool:
        return bool(self.ranked) and self.position >= len(self.ranked)

    def propose(self) -> Arch:
        if not self.ranked:
            self.ranked = self._rank(self._draw())
        arch = self.ranked[self.position][0]
        self.position += 1
        return arch

    def observe(self, arch: Arch, score: float) -> None:
        pass

    def _draw(self) -> list[Arch]:
        """M distinct choice vectors, uniformly at random."""
        wanted = self.config.discrete.proxy_sample
        drawn: dict[Arch, None] = {}
        for _ in range(100 * wanted):  # a small space may hold fewer than M
            drawn.setdefault(self.space.sample(self.rng))
            if len(drawn) == wanted:
                break
        return list(drawn)

    def _rank(self, archs: list[Arch]) -> list[tuple[Arch, float | None]]:
        # scipy (1 s to import) only when ranking: not in every process that loads the runner
        from nas_engine.proxies.agreement import VOTE, VOTERS, rank_vote

        proxy = self.config.discrete.proxy
        names = list(VOTERS) if proxy == VOTE else [proxy]
        data = Evaluator(self.config, None, None).train_config(self.space.text(archs[0])).data
        scored = [proxy_scores(self.space.space, self.space.text(a), data, self.config.seed,
                               names) for a in archs]
        values = (rank_vote([[s[n] for s in scored] for n in names]) if proxy == VOTE
                  else [s[proxy] for s in scored])
        order = sorted(range(len(archs)), key=lambda i: (values[i] is None,
                                                         -(values[i] or 0.0), i))
        return [(archs[i], values[i]) for i in order]

    def view(self) -> dict[str, Any]:
        return {"proxy": self.config.discrete.proxy, "scored": len(self.ranked),
                "trained": self.position,
                "ranked": [{"arch": self.space.text(a), "proxy_score": v, "trained": i <
                            self.position} for i, (a, v) in enumerate(self.ranked[:SHOWN])]}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "position": self.position,
                "ranked": [[list(a), v] for a, v in self.ranked]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.position = state["position"]
        self.ranked = [(tuple(a), v) for a, v in state["ranked"]]

