"""PC-DARTS (Xu et al., ICLR 2020): DARTS on a supernet whose mixed ops see only 1/K of each
edge's channels (the rest bypass the op, then the channels are shuffled), with edge
normalisation: softmax(β) over a node's incoming edges scales each edge. Memory and time per
step drop by about K on the mixed ops, and β damps the instability partial channels add.

The supernet side lives in `spaces.ops` / `spaces.dag` (partial channels, bypass, shuffle) and
`SearchModel` (β, mixing weights softmax(α)·softmax(β), the genotype rule on that product).
Here: optimise β with α by the same Adam, and hold both still for the
first `pc_warmup_epochs` epochs as the official `train_search.py` does (the w step alone)."""

from __future__ import annotations

import torch

from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel
from nas_engine.strategies.base import Batch
from nas_engine.strategies.darts import DartsStrategy


class PCDartsStrategy(DartsStrategy):
    def __init__(self, model: SearchModel, config: SearchConfig) -> None:
        if not model.betas:
            raise ValueError("PC-DARTS needs a model built with partial channels "
                             "(SearchModel(..., partial=K))")
        super().__init__(model, config)
        self.warmup_epochs = config.strategy.pc_warmup_epochs

    @property
    def epochs_done(self) -> int:
        # The cosine scheduler steps once per epoch and is restored on resume.
        return self.w_scheduler.last_epoch

    def alpha_step(self, train: Batch, val: Batch) -> torch.Tensor:
        if self.epochs_done < self.warmup_epochs:
            with torch.no_grad():  # the val loss for the records; α and β stay
                return self.model.loss(*val)
        return super().alpha_step(train, val)
