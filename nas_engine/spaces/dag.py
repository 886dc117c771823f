"""The mixed DAG both cell spaces share: input nodes, then intermediate nodes that each receive
a mixed edge from every earlier node.

Edge rows are ordered by target node, then source node ascending — DARTS' 14 rows (2 inputs,
4 steps) and NB201's 6 rows (1 input, 3 steps: 1<-0, 2<-0, 2<-1, 3<-0, ...) both follow it.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_engine.spaces.ops import EdgeOps, OpFactory


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
    """

    def __init__(self, table: dict[str, OpFactory], ops: list[str], channels: int, inputs: int,
                 steps: int, reduction: bool = False) -> None:
        super().__init__()
        self.inputs = inputs
        self.steps = steps
        last = inputs + steps - 1  # the last node feeds no edge
        self.sources = nn.ModuleList()
        self.targets: list[list[int]] = []
        for source in range(last):
            targets = list(range(max(inputs, source + 1), inputs + steps))
            stride = 2 if reduction and source < inputs else 1
            self.sources.append(EdgeOps(table, ops, channels, len(targets), stride))
            self.targets.append(targets)
            rows = torch.tensor([edge_row(inputs, t, source) for t in targets])
            self.register_buffer(f"rows_{source}", rows, persistent=False)

    def forward(self, inputs: list[torch.Tensor], weights: torch.Tensor) -> list[torch.Tensor]:
        states = list(inputs)
        incoming: list[list[torch.Tensor]] = [[] for _ in range(self.steps)]
        for source, edge_ops in enumerate(self.sources):
            if source >= self.inputs:
                states.append(_sum(incoming[source - self.inputs]))
            rows = getattr(self, f"rows_{source}")
            mixed = edge_ops(states[source], weights.index_select(0, rows))
            for e, target in enumerate(self.targets[source]):
                incoming[target - self.inputs].append(mixed[:, e])
        states.append(_sum(incoming[-1]))
        return states[self.inputs:]


def _sum(terms: list[torch.Tensor]) -> torch.Tensor:
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total
