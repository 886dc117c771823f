"""SPOS, Single Path One-Shot (Guo et al., ECCV 2020): a supernet trained one path per step,
each edge's op drawn uniformly and independently (`UniformMixing`), so that every subnet's
weights are trained alike and their inherited accuracy can rank cells afterwards
(`nas_engine.evaluation.inherited`). There is no α step: α is filled with 0, so softmax α is
the uniform distribution the paths are drawn from and the heatmap shows exactly that. The
weights learn by the run's optimiser (SGD, cosine), whose machinery is the gradient strategies'
w step, held here rather than inherited; the records add `path_counts`, how often each op was
drawn on each edge."""

from __future__ import annotations

from typing import Any

import torch

from nas_engine.components import Components, LiveParameter
from nas_engine.config import SearchConfig
from nas_engine.mixing import UniformMixing
from nas_engine.model import SearchModel, SupernetOptions
from nas_engine.strategies.base import Batch, StepResult, Strategy
from nas_engine.strategies.gradient import GradientStrategy


class Spos(Strategy):
    name = "spos"
    label = "SPOS (one-shot, uniform paths)"

    def __init__(self, config: SearchConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.trainer = GradientStrategy(config, device)  # its w step; its α step never runs

    @classmethod
    def declared(cls, config: SearchConfig) -> tuple[LiveParameter, ...]:
        return tuple(p for p in GradientStrategy.declared(config) if p.name == "w_lr")

    def adapt_search_space(self, options: SupernetOptions) -> None:
        # Its own generator: the paths are part of the state a checkpoint restores.
        options.mixing = UniformMixing(torch.Generator().manual_seed(self.config.seed))
        options.alpha_init = 0.0

    def attach(self, model: SearchModel, components: Components) -> None:
        self.model = model
        self.components = components
        self.trainer.attach(model, components)
        self.w_optimizer = self.trainer.w_optimizer

    def step(self, train: Batch, val: Batch, progress: float) -> StepResult:
        self.components.before_step(progress)
        self.model.mixing.draw(self.model)  # one path for the whole step
        with torch.no_grad():  # the path's validation loss, for the records
            val_loss = self.trainer.loss(val, self.model.mixing_weights())[0]
        train_loss, correct = self.trainer.weight_step(train, progress)
        return StepResult(train_loss, correct, val_loss, train[0].shape[0])

    def after_epoch(self, epoch: int) -> None:
        self.trainer.after_epoch(epoch)

    def record_fields(self) -> dict[str, Any]:
        counts = self.model.mixing.counted(self.model)
        return {"path_counts": {cell: c.tolist() for cell, c in counts.items()}}

    def live_values(self) -> dict[str, float]:
        return {"w_lr": self.trainer.w_lr}

    def set_live(self, name: str, value: float) -> None:
        self.trainer.set_live(name, value)

    def set_epochs(self, epochs: int) -> None:
        self.trainer.set_epochs(epochs)

    def state_dict(self) -> dict[str, Any]:
        return self.trainer.state_dict()  # with the mixing's generator and counts

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state)
