"""The mixed DAG both cell spaces share: input nodes, then intermediate nodes that each receive
a mixed edge from every earlier node.

Edge rows are ordered by target node, then source node ascending — DARTS' 14 rows (2 inputs,
4 steps) and NB201's 6 rows (1 input, 3 steps: 1<-0, 2<-0, 2<-1, 3<-0, ...) both follow it.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_engine.spaces.ops import PLAIN_EDGES, EdgeOps, EdgeOptions, OpFactory, channel_shuffle


def edge_count(inputs: int, steps: int) -> int:
    return sum(inputs + k for k in range(steps))


def edge_row(inputs: int, target: int, source: int) -> int:
    """Row of the edge source -> target (node ids count the inputs first)."""
    step = target - inputs
    return sum(inputs + k for k in range(step)) + source


def edge_list(inputs: int, steps: int) -> list[tuple[int, int]]:
    """(source, target) of every row, in row order."""
    return [(s, t) for t in range(inputs, inputs + steps) for s in range(t)]


class MixedDag(nn.Module):
    """One cell's mixed edges, grouped by source node so each node's ops run batched.

    `forward(inputs, weights)` takes the input node states and the (edges, ops) mixing weights
    and returns the states of the intermediate nodes.

    With `partial` K > 1 (PC-DARTS) an edge's op sees the first C/K channels of its source and
    the rest bypass it; the official edge output is shuffle(cat(mixed, bypass), K), scaled by
    the edge's weight. Cat and shuffle are linear, so a node sums its edges' mixed parts and
    their bypasses first and shuffles once: shuffle(cat(Σ mixed_e, Σ s_e·bypass_e), K), where
    s_e is the sum of edge e's mixing weights (the edge weight, as α's softmax sums to 1).
    """

    def __init__(self, table: dict[str, OpFactory], ops: list[str], channels: int, inputs: int,
                 steps: int, reduction: bool = False, options: EdgeOptions = PLAIN_EDGES
                 ) -> None:
        super().__init__()
        self.inputs = inputs
        self.steps = steps
        self.partial = options.partial
        last = inputs + steps - 1  # the last node feeds no edge
        self.sources = nn.ModuleList()
        self.targets: list[list[int]] = []
        self.rows: list[list[int]] = []  # α row of each outgoing edge, per source
        for source in range(last):
            targets = list(range(max(inputs, source + 1), inputs + steps))
            stride = 2 if reduction and source < inputs else 1
            self.sources.append(EdgeOps(table, ops, channels, len(targets), stride, options))
            self.targets.append(targets)
            self.rows.append([edge_row(inputs, t, source) for t in targets])
            self.register_buffer(f"rows_{source}", torch.tensor(self.rows[-1]), persistent=False)

    def choose(self, choice: list[int | None] | None) -> None:
        """The α column each row computes (one op per edge, NASP), or None for all of them."""
        for edge_ops, rows in zip(self.sources, self.rows):
            edge_ops.choose(None if choice is None else [choice[r] for r in rows])

    def forward(self, inputs: list[torch.Tensor], weights: torch.Tensor) -> list[torch.Tensor]:
        states = list(inputs)
        incoming: list[list[torch.Tensor]] = [[] for _ in range(self.steps)]
        bypassed: list[list[torch.Tensor]] = [[] for _ in range(self.steps)]
        for source, edge_ops in enumerate(self.sources):
            if source >= self.inputs:
                node = source - self.inputs
                states.append(self._node(incoming[node], bypassed[node]))
            edge_weights = weights.index_select(0, getattr(self, f"rows_{source}"))
            mixed = edge_ops(states[source], edge_weights)
            if self.partial > 1:
                bypass, scales = edge_ops.bypass(states[source]), edge_weights.sum(1)
            for e, target in enumerate(self.targets[source]):
                incoming[target - self.inputs].append(mixed[:, e])
                if self.partial > 1:
                    bypassed[target - self.inputs].append(bypass * scales[e])
        states.append(self._node(incoming[-1], bypassed[-1]))
        return states[self.inputs:]

    def _node(self, mixed: list[torch.Tensor], bypassed: list[torch.Tensor]) -> torch.Tensor:
        if not bypassed:
            return _sum(mixed)
        return channel_shuffle(torch.cat([_sum(mixed), _sum(bypassed)], dim=1), self.partial)


def _sum(terms: list[torch.Tensor]) -> torch.Tensor:
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total
