"""PC-DARTS (Xu et al., ICLR 2020): DARTS on a supernet whose mixed ops see only 1/K of each
edge's channels (the rest bypass the op, then the channels are shuffled), with edge
normalisation: softmax(β) over a node's incoming edges scales each edge. Memory and time per
step drop by about K on the mixed ops, and β damps the instability partial channels add.
β is optimised with α by the same Adam; both are held for the first `pc_warmup_epochs` epochs,
as the official `train_search.py` does (the w step alone)."""

from __future__ import annotations

import dataclasses

from nas_engine.model import SupernetOptions
from nas_engine.strategies.gradient import GradientStrategy


class PCDarts(GradientStrategy):
    name = "pcdarts"
    label = "PC-DARTS"

    def adapt_search_space(self, options: SupernetOptions) -> None:
        options.edges = dataclasses.replace(options.edges, partial=self.config.strategy.pc_partial)
        options.edge_normalization = True

    def alpha_moves(self) -> bool:
        return self.epochs_done >= self.config.strategy.pc_warmup_epochs
