"""What every search space offers the engine, the viewer and the run folder."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch import nn

from nas_engine.config import NetworkConfig
from nas_engine.spaces.dag import MixedDag
from nas_engine.spaces.ops import PLAIN_EDGES, EdgeOptions


class Supernet(nn.Module, ABC):
    """A space's supernet, called as `net(x, weights)` with weights: cell type -> (edges, ops).

    `cell_dags` lets a strategy reach every cell's edges without knowing the macro layout:
    NASP tells them which op to compute and counts each op's parameters."""

    @abstractmethod
    def cell_dags(self) -> Iterator[tuple[str, MixedDag]]:
        """Each cell's mixed DAG with the cell type whose α drives it."""


class SearchSpace(ABC):
    """A cell space: its ops, its edges, a supernet builder and the discretisation rule."""

    name: str
    cell_types: tuple[str, ...]
    derived_edges: int  # edges of the derived cell the skip count is out of (collapse: half)
    inputs_per_node: int | None  # incoming edges a derived node keeps (None: all of them)
    reductions = 2  # stride-2 stages the image passes through

    def __init__(self, ops: list[str], network: NetworkConfig) -> None:
        self.ops = ops
        self.network = network

    @abstractmethod
    def edges(self) -> list[tuple[int, int]]:
        """(source node, target node) per α row."""

    def edge_labels(self) -> list[str]:
        return [f"{s}→{t}" for s, t in self.edges()]

    def alpha_shapes(self) -> dict[str, tuple[int, int]]:
        rows = len(self.edges())
        return {cell: (rows, len(self.ops)) for cell in self.cell_types}

    def check_image_size(self, image_size: int) -> None:
        factor = 2**self.reductions
        if image_size % factor:
            raise ValueError(
                f"data.resize must make the image size a multiple of {factor} for the "
                f"{self.name} space ({self.reductions} stride-2 stages); the images are "
                f"{image_size}x{image_size}"
            )

    def incoming_rows(self) -> list[slice]:
        """The α rows of each intermediate node's incoming edges (rows are ordered by target)."""
        targets = [t for _, t in self.edges()]
        starts = [i for i, t in enumerate(targets) if i == 0 or t != targets[i - 1]]
        return [slice(a, b) for a, b in zip(starts, [*starts[1:], len(targets)])]

    @abstractmethod
    def build_supernet(self, in_channels: int, num_classes: int, image_size: int,
                       options: EdgeOptions = PLAIN_EDGES) -> Supernet:
        """The supernet, its mixed edges built as `options` say (partial channels, the
        auxiliary skip's weights)."""

    @abstractmethod
    def derive(self, weights: dict[str, np.ndarray]) -> Any:
        """The discrete cell (genotype) the published rule derives from softmax α."""

    @abstractmethod
    def genotype_dict(self, genotype: Any) -> dict[str, Any]:
        """The genotype as stored in genotype.json and in epoch records."""

    @abstractmethod
    def genotype_text(self, genotype: Any) -> str:
        """The one-line text form people paste (Genotype(...) repr, NB201 arch string)."""

    def capped_skips(self, weights: dict[str, np.ndarray], max_skips: int) -> Any:
        """P-DARTS' rule for the final cell: while the derived cell (the normal cell for DARTS)
        holds more than `max_skips` skip_connects, the kept skip with the smallest weight is
        struck out and the cell derived again, so that edge takes its next-best op (or the
        node another input)."""
        cell = self.cell_types[0]
        skip = self.ops.index("skip_connect") if "skip_connect" in self.ops else None
        weights = {c: np.array(w, dtype=np.float64) for c, w in weights.items()}
        genotype = self.derive(weights)
        while skip is not None and self.skip_count(genotype) > max_skips:
            rows = self.skip_rows(genotype)
            weakest = min(rows, key=lambda r: weights[cell][r, skip])
            weights[cell][weakest, skip] = -np.inf
            genotype = self.derive(weights)
        return genotype

    @abstractmethod
    def genotype_columns(self, genotype: Any) -> dict[str, list[int | None]]:
        """Per cell type, the α column each edge row computes in the derived cell (None: the
        edge is not kept). The discrete network of NASP is built from it."""

    @abstractmethod
    def skip_rows(self, genotype: Any) -> list[int]:
        """α rows of the skip_connect edges in the derived cell (the one `skip_count` counts)."""

    @abstractmethod
    def skip_count(self, genotype: Any) -> int:
        """skip_connect edges in the derived cell (the normal cell for DARTS): the collapse
        signal."""
