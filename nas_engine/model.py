"""`SearchModel`: a supernet (the weights w) and the architecture parameters α that own it.

The split follows the controller pattern: the supernet knows nothing of α; it is called with
mixing weights, which the model's `Mixing` makes from α (softmax by default). How the model is
built is a `SupernetOptions` that the strategy and the components shape before it exists
(`adapt_search_space`), so PC-DARTS' partial channels and β, NASP's α at 0.5 or DARTS-'
stride-2 auxiliary skip need no flag inside the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_engine.mixing import Mixing, Perturbation, SoftmaxMixing
from nas_engine.spaces import SearchSpace
from nas_engine.spaces.ops import EdgeOps, EdgeOptions


@dataclass
class SupernetOptions:
    """What `adapt_search_space` hooks may change before the model is built."""

    edges: EdgeOptions = field(default_factory=EdgeOptions)
    edge_normalization: bool = False  # PC-DARTS: β per edge, softmax over a node's inputs
    alpha_init: float | None = None  # None: DARTS' 1e-3·N(0, 1); a value: α filled with it
    mixing: Mixing = field(default_factory=SoftmaxMixing)


class SearchModel(nn.Module):
    def __init__(self, space: SearchSpace, in_channels: int, num_classes: int, image_size: int,
                 options: SupernetOptions | None = None) -> None:
        super().__init__()
        options = options or SupernetOptions()
        self.space = space
        self.mixing = options.mixing
        self.net = space.build_supernet(in_channels, num_classes, image_size, options.edges)
        shapes = space.alpha_shapes()
        self.alphas = nn.ParameterDict({
            cell: nn.Parameter(1e-3 * torch.randn(*shape) if options.alpha_init is None
                               else torch.full(shape, float(options.alpha_init)))
            for cell, shape in shapes.items()
        })
        self.betas = nn.ParameterDict(  # PC-DARTS' edge weights, 1e-3·N(0, 1); none otherwise
            {cell: nn.Parameter(1e-3 * torch.randn(shape[0])) for cell, shape in shapes.items()}
            if options.edge_normalization else {}
        )

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        return self.net.parameters()

    def arch_parameters(self) -> list[nn.Parameter]:
        """α, then β where the model has it: what the architecture optimiser updates."""
        return [*self.alphas.values(), *self.betas.values()]

    def mixing_weights(self, perturb: Perturbation | None = None) -> dict[str, torch.Tensor]:
        return self.mixing.weights(self, perturb)

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor] | None = None
                ) -> torch.Tensor:
        return self.net(x, self.mixing_weights() if weights is None else weights)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(x), y)

    def softmax_alphas(self) -> dict[str, np.ndarray]:
        """Softmax α on the host (a sync: call at logging points only)."""
        with torch.no_grad():
            return {cell: F.softmax(a, dim=-1).double().cpu().numpy()
                    for cell, a in self.alphas.items()}

    def raw_alphas(self) -> dict[str, np.ndarray]:
        """α itself on the host (a sync: logging points only)."""
        with torch.no_grad():
            return {cell: a.double().cpu().numpy() for cell, a in self.alphas.items()}

    def derivation_weights(self) -> dict[str, np.ndarray]:
        """What the space's discretisation rule reads (host sync)."""
        return self.mixing.derivation_weights(self)

    def genotype(self) -> Any:
        return self.mixing.genotype(self)

    def edge_blocks(self) -> Iterator[EdgeOps]:
        """Every mixed-edge block (what mitigations such as DARTS- and P-DARTS adjust)."""
        for _, dag in self.net.cell_dags():
            yield from dag.sources

    def op_parameter_counts(self) -> dict[str, torch.Tensor]:
        """Parameters of op o on edge e, summed over the cells one α drives: (edges, ops) per
        cell type (NASP's model-size penalty)."""
        counts = {cell: torch.zeros(shape) for cell, shape in self.space.alpha_shapes().items()}
        for cell, dag in self.net.cell_dags():
            for edge_ops, rows in zip(dag.sources, dag.rows):
                for column, n in edge_ops.parameter_counts():
                    counts[cell][rows, column] += n
        return counts
