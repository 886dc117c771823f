"""The DARTS CNN cell space (Liu et al., ICLR 2019): 2 inputs, 4 nodes, 14 edges, normal and
reduction cells with their own α."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from nas_engine.spaces import genotypes
from nas_engine.spaces.base import SearchSpace, Supernet
from nas_engine.spaces.dag import MixedDag, edge_list, edge_row
from nas_engine.spaces.ops import (
    DARTS_OPS,
    PLAIN_EDGES,
    EdgeInput,
    EdgeOptions,
    FactorizedReduce,
    ReLUConvBN,
)

STEPS = 4
INPUTS = 2


class DartsCell(nn.Module):
    def __init__(self, ops: list[str], channels_pp: int, channels_p: int, channels: int,
                 reduction: bool, reduction_prev: bool, options: EdgeOptions) -> None:
        super().__init__()
        self.reduction = reduction
        self.cell_type = "reduce" if reduction else "normal"
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(channels_pp, channels)
        else:
            self.preprocess0 = ReLUConvBN(channels_pp, channels, 1, 1, 1)
        self.preprocess1 = ReLUConvBN(channels_p, channels, 1, 1, 1)
        self.dag = MixedDag(DARTS_OPS, ops, channels, INPUTS, STEPS, reduction, options)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        s0 = self.preprocess0(EdgeInput(s0))[:, 0]
        s1 = self.preprocess1(EdgeInput(s1))[:, 0]
        return torch.cat(self.dag([s0, s1], weights), dim=1)


class DartsSupernet(Supernet):
    """Stem, `layers` cells (reductions at 1/3 and 2/3), global pooling, classifier."""

    def __init__(self, ops: list[str], channels: int, layers: int, in_channels: int,
                 num_classes: int, options: EdgeOptions, stem_multiplier: int = 3) -> None:
        super().__init__()
        stem_channels = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
        )
        channels_pp, channels_p, current = stem_channels, stem_channels, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                current *= 2
            self.cells.append(
                DartsCell(ops, channels_pp, channels_p, current, reduction, reduction_prev,
                          options)
            )
            reduction_prev = reduction
            channels_pp, channels_p = channels_p, STEPS * current
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels_p, num_classes)

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        s0 = s1 = self.stem(x.contiguous(memory_format=torch.channels_last))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights[cell.cell_type])
        return self.classifier(self.pool(s1).flatten(1))

    def cell_dags(self) -> Iterator[tuple[str, MixedDag]]:
        for cell in self.cells:
            yield cell.cell_type, cell.dag


def reduction_layers(layers: int) -> tuple[int, int]:
    return (layers // 3, 2 * layers // 3)


class DartsSpace(SearchSpace):
    name = "darts"
    cell_types = ("normal", "reduce")
    derived_edges = 2 * STEPS  # two inputs per intermediate node
    inputs_per_node = 2

    def edges(self) -> list[tuple[int, int]]:
        return edge_list(INPUTS, STEPS)

    def build_supernet(self, in_channels: int, num_classes: int, image_size: int,
                       options: EdgeOptions = PLAIN_EDGES) -> Supernet:
        self.check_image_size(image_size)
        return DartsSupernet(self.ops, self.network.channels, self.network.layers, in_channels,
                             num_classes, options)

    def derive(self, weights: dict[str, np.ndarray]) -> genotypes.DartsGenotype:
        return genotypes.derive_darts(weights["normal"], weights["reduce"], self.ops)

    def genotype_dict(self, genotype: Any) -> dict[str, Any]:
        return genotypes.darts_to_dict(genotype)

    def genotype_text(self, genotype: Any) -> str:
        return genotypes.darts_to_text(genotype)

    def genotype_columns(self, genotype: Any) -> dict[str, list[int | None]]:
        columns: dict[str, list[int | None]] = {}
        for cell in self.cell_types:
            row_columns: list[int | None] = [None] * len(self.edges())
            for i, (op, source) in enumerate(getattr(genotype, cell)):
                row_columns[edge_row(INPUTS, INPUTS + i // 2, source)] = self.ops.index(op)
            columns[cell] = row_columns
        return columns

    def skip_rows(self, genotype: Any) -> list[int]:
        return [edge_row(INPUTS, INPUTS + i // 2, source)
                for i, (op, source) in enumerate(genotype.normal) if op == genotypes.SKIP]

    def skip_count(self, genotype: Any) -> int:
        return genotypes.skip_count_darts(genotype, "normal")
