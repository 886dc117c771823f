"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 4 nodes, 6 edges, one α shared by
every cell, ResNet blocks between the three stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from nas_engine.spaces import genotypes
from nas_engine.spaces.base import SearchSpace, Supernet
from nas_engine.spaces.dag import MixedDag, edge_list
from nas_engine.spaces.ops import NB201_OPS, PLAIN_EDGES, EdgeOptions

STEPS = 3
INPUTS = 1


class ResNetBlock(nn.Module):
    """NB201's stride-2 basic block between stages (affine BN, average-pool shortcut)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels_in, channels_out, 3, 2, 1, bias=False),
            nn.BatchNorm2d(channels_out),
        )
        self.conv_b = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels_out),
        )
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, 2), nn.Conv2d(channels_in, channels_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    def __init__(self, ops: list[str], channels: int, options: EdgeOptions) -> None:
        super().__init__()
        self.dag = MixedDag(NB201_OPS, ops, channels, INPUTS, STEPS, options=options)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.dag([x], weights)[-1]


def skeleton(in_channels: int, channels: int, cells_per_stage: int, num_classes: int,
             make_cell: Callable[[int], nn.Module]
             ) -> tuple[nn.Module, list[nn.Module], nn.Module, nn.Module]:
    """NB201's macro network around its cells, shared by the supernet and the retrained
    network: (stem conv3x3 + BN, [cells, ResNet block, cells (2C), ResNet block, cells (4C)],
    BN-ReLU-pooling head, classifier). Built in that order, so seeded weights match."""
    stem = nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
    )
    layers: list[nn.Module] = []
    current = channels
    for stage in range(3):
        if stage:
            layers.append(ResNetBlock(current, current * 2))
            current *= 2
        layers.extend(make_cell(current) for _ in range(cells_per_stage))
    head = nn.Sequential(nn.BatchNorm2d(current), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    return stem, layers, head, nn.Linear(current, num_classes)


class NB201Supernet(Supernet):
    """Stem, three stages of `cells_per_stage` cells (C, 2C, 4C), BN-ReLU, pooling, classifier."""

    def __init__(self, ops: list[str], channels: int, cells_per_stage: int, in_channels: int,
                 num_classes: int, options: EdgeOptions) -> None:
        super().__init__()
        self.stem, layers, self.head, self.classifier = skeleton(
            in_channels, channels, cells_per_stage, num_classes,
            lambda c: NB201Cell(ops, c, options))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        cell_weights = weights["cell"]
        for layer in self.layers:
            x = layer(x, cell_weights) if isinstance(layer, NB201Cell) else layer(x)
        return self.classifier(self.head(x).flatten(1))

    def cell_dags(self) -> Iterator[tuple[str, MixedDag]]:
        for layer in self.layers:
            if isinstance(layer, NB201Cell):
                yield "cell", layer.dag


class NB201Space(SearchSpace):
    name = "nb201"
    cell_types = ("cell",)
    derived_edges = STEPS * (STEPS + 1) // 2  # every edge of the cell is kept (6)
    inputs_per_node = None

    def edges(self) -> list[tuple[int, int]]:
        return edge_list(INPUTS, STEPS)

    def build_supernet(self, in_channels: int, num_classes: int, image_size: int,
                       options: EdgeOptions = PLAIN_EDGES) -> Supernet:
        self.check_image_size(image_size)
        return NB201Supernet(self.ops, self.network.channels, self.network.cells_per_stage,
                             in_channels, num_classes, options)

    def derive(self, weights: dict[str, np.ndarray]) -> genotypes.NB201Genotype:
        return genotypes.derive_nb201(weights["cell"], self.ops)

    def genotype_dict(self, genotype: Any) -> dict[str, Any]:
        return genotypes.nb201_to_dict(genotype)

    def genotype_text(self, genotype: Any) -> str:
        return genotype.to_arch_str()

    def genotype_columns(self, genotype: Any) -> dict[str, list[int | None]]:
        return {"cell": [self.ops.index(op) for op, _ in genotype.edges]}

    def skip_rows(self, genotype: Any) -> list[int]:
        return [row for row, (op, _) in enumerate(genotype.edges) if op == genotypes.SKIP]

    def skip_count(self, genotype: Any) -> int:
        return genotypes.skip_count_nb201(genotype)
