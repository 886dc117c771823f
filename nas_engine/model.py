"""`SearchModel`: a supernet (the weights w) and the architecture parameters α that own it.

The split follows the controller pattern: the supernet knows nothing of α; it is called with
mixing weights. The model turns α into weights (softmax by default), so strategies that mix
differently reuse the same supernet: PC-DARTS scales softmax α by edge weights β (and narrows
the supernet's mixed ops to part of the channels), NASP mixes with the one-hot argmax of α.
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
    def __init__(self, space: SearchSpace, in_channels: int, num_classes: int, image_size: int,
                 partial: int | None = None) -> None:
        """`partial` K makes a PC-DARTS model: 1/K of each edge's channels go through its mixed
        op, and each cell type gets edge weights β (1e-3·N(0, 1), one per edge)."""
        super().__init__()
        self.space = space
        self.net = space.build_supernet(in_channels, num_classes, image_size, partial or 1)
        # DARTS initialises α at 1e-3·N(0, 1): all ops start (almost) equal.
        shapes = space.alpha_shapes()
        self.alphas = nn.ParameterDict(
            {cell: nn.Parameter(1e-3 * torch.randn(*shape)) for cell, shape in shapes.items()}
        )
        self.betas = nn.ParameterDict(  # PC-DARTS' edge weights; none otherwise
            {} if partial is None else
            {cell: nn.Parameter(1e-3 * torch.randn(shape[0])) for cell, shape in shapes.items()}
        )
        self.discrete = False  # NASP: mix with the one-hot argmax of α ...
        self.only_chosen = True  # ... computing only the chosen op of each edge

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        return self.net.parameters()

    def arch_parameters(self) -> list[nn.Parameter]:
        """α, then β where the model has it: what the architecture optimiser updates."""
        return [*self.alphas.values(), *self.betas.values()]

    def edge_weights(self) -> dict[str, torch.Tensor]:
        """PC-DARTS edge normalisation: per row, softmax of β over the incoming edges of the
        row's target node."""
        rows = self.space.incoming_rows()
        return {cell: torch.cat([F.softmax(beta[r], dim=0) for r in rows])
                for cell, beta in self.betas.items()}

    def scaled_softmax(self) -> dict[str, torch.Tensor]:
        """Softmax α per edge, times the edge weight where the model has β (PC-DARTS)."""
        probs = {cell: F.softmax(alpha, dim=-1) for cell, alpha in self.alphas.items()}
        if not self.betas:
            return probs
        scales = self.edge_weights()
        return {cell: p * scales[cell].unsqueeze(1) for cell, p in probs.items()}

    def one_hot_weights(self) -> dict[str, torch.Tensor]:
        """NASP's discrete architecture ᾱ: the one-hot argmax of α per edge, straight-through
        (its value is exactly the one-hot; its gradient passes to α unchanged)."""
        return {cell: F.one_hot(alpha.argmax(-1), alpha.shape[-1]).to(alpha.dtype)
                + (alpha - alpha.detach()) for cell, alpha in self.alphas.items()}

    def mixing_weights(self) -> dict[str, torch.Tensor]:
        """What the supernet mixes with. In discrete mode (NASP) this also tells every edge
        block what to compute: the op α's argmax chose (one host sync per call) or, when
        `only_chosen` is off, every op (the zero-weighted ones still get gradients)."""
        if not self.discrete:
            return self.scaled_softmax()
        weights = self.one_hot_weights()
        columns = {}
        if self.only_chosen:
            # Every cell type has the same edges: one (cell types, edges) tensor, one sync.
            chosen = torch.stack([w.detach().argmax(-1) for w in weights.values()]).tolist()
            columns = dict(zip(weights, chosen))
        for cell, dag in self.net.cell_dags():
            dag.choose(columns.get(cell))
        return weights

    def op_parameter_counts(self) -> dict[str, torch.Tensor]:
        """Parameters of op o on edge e, summed over the cells one α drives: (edges, ops) per
        cell type (NASP's model-size penalty)."""
        counts = {cell: torch.zeros(shape) for cell, shape in self.space.alpha_shapes().items()}
        for cell, dag in self.net.cell_dags():
            for edge_ops, rows in zip(dag.sources, dag.rows):
                for column, n in edge_ops.parameter_counts():
                    counts[cell][rows, column] += n
        return counts

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
        """What the space's discretisation rule reads (host sync): softmax α, times PC-DARTS'
        edge weights as its official `genotype()` does."""
        with torch.no_grad():
            return {cell: w.double().cpu().numpy() for cell, w in self.scaled_softmax().items()}

    def genotype(self):  # noqa: ANN201 - the space's genotype type
        return self.space.derive(self.derivation_weights())
