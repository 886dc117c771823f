"""`SearchModel`: a supernet (the weights w) and the architecture parameters α that own it.

The split follows the controller pattern: the supernet knows nothing of α; it is called with
mixing weights. The model turns α into weights (softmax by default), so strategies that mix
differently (a one-hot for NASP, sigmoid for Fair-DARTS) reuse the same supernet.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_engine.spaces import SearchSpace
from nas_engine.spaces.ops import EdgeOps


class SearchModel(nn.Module):
    def __init__(self, space: SearchSpace, in_channels: int, num_classes: int, image_size: int
                 ) -> None:
        super().__init__()
        self.space = space
        self.net = space.build_supernet(in_channels, num_classes, image_size)
        # DARTS initialises α at 1e-3·N(0, 1): all ops start (almost) equal.
        self.alphas = nn.ParameterDict(
            {cell: nn.Parameter(1e-3 * torch.randn(*shape))
             for cell, shape in space.alpha_shapes().items()}
        )

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        return self.net.parameters()

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def mixing_weights(self) -> dict[str, torch.Tensor]:
        return {cell: F.softmax(alpha, dim=-1) for cell, alpha in self.alphas.items()}

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor] | None = None
                ) -> torch.Tensor:
        return self.net(x, self.mixing_weights() if weights is None else weights)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(x), y)

    def softmax_alphas(self) -> dict[str, np.ndarray]:
        """Softmax α on the host (a sync: call at logging points only)."""
        with torch.no_grad():
            return {cell: w.double().cpu().numpy() for cell, w in self.mixing_weights().items()}

    def set_network_options(self, aux_skip: float, skip_dropout: float) -> None:
        """DARTS- auxiliary skip weight and P-DARTS skip dropout, for every mixed edge."""
        for module in self.net.modules():
            if isinstance(module, EdgeOps):
                module.aux_skip = aux_skip
                module.skip_dropout = skip_dropout

    def raw_alphas(self) -> dict[str, np.ndarray]:
        """α itself on the host (a sync: logging points only)."""
        with torch.no_grad():
            return {cell: a.double().cpu().numpy() for cell, a in self.alphas.items()}

    def derivation_weights(self) -> dict[str, np.ndarray]:
        """What the space's discretisation rule reads (host sync): softmax α here; a strategy
        with edge weights (PC-DARTS' β) scales them in."""
        return self.softmax_alphas()

    def genotype(self):  # noqa: ANN201 - the space's genotype type
        return self.space.derive(self.derivation_weights())
