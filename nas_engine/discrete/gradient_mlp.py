"""The gradient method on seed 001's MLP space: DARTS' continuous relaxation (Liu et al. 2019)
of the decisions that have a differentiable form, searched by first-order bilevel alternation,
then every decision derived by argmax and the derived MLP retrained like any candidate.

- activation: per hidden layer (or one shared, as the space says) a softmax mixture of the
  activations, as a DARTS edge mixes ops. Every layer's activation is derived: seed 001 keeps
  only layer 0's and applies it everywhere, a bug not copied here.
- depth: a softmax over exits, one per depth, sharing the head (the hidden width is the same at
  every depth), so the output is Σ_d w_d · head(h_d).
- width: FBNetV2's channel masking: the hidden units are those of the widest choice, multiplied
  by Σ_j w_j · m_j, where mask m_j keeps the first `widths[j]` units.
- learning rate, optimiser, dropout have no differentiable form; the supernet and the derived
  MLP use fixed values (`FIXED`), the nearest to a safe default among the space's choices.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_engine.config import SearchConfig
from nas_engine.discrete.base import DiscreteStrategy
from nas_engine.discrete.decisions import Arch, MlpDecisions
from nas_engine.evaluation.networks import ACTIVATIONS
from nas_engine.tabular import RowStream, load_tabular

# The non-differentiable decisions: the value wanted, else the space's closest choice.
FIXED = {"lr": 1e-3, "optimizer": "adam", "dropout": 0.0}
ALPHA_LR, ALPHA_BETAS, ALPHA_WEIGHT_DECAY = 3e-3, (0.5, 0.999), 1e-3  # DARTS' α optimiser


def _closest(choices: tuple[Any, ...], wanted: Any) -> int:
    if wanted in choices:
        return choices.index(wanted)
    if isinstance(wanted, str):
        return 0
    return min(range(len(choices)), key=lambda i: abs(float(choices[i]) - wanted))


class MlpSupernet(nn.Module):
    def __init__(self, in_features: int, outputs: int, depth: int, widths: list[int],
                 activations: list[str], per_layer: bool) -> None:
        super().__init__()
        width = max(widths)
        self.layers = nn.ModuleList(nn.Linear(in_features if k == 0 else width, width)
                                    for k in range(depth))
        self.head = nn.Linear(width, outputs)
        self.activations = nn.ModuleList(ACTIVATIONS[a]() for a in activations)
        masks = torch.zeros(len(widths), width)
        for j, w in enumerate(widths):
            masks[j, :w] = 1.0
        self.register_buffer("masks", masks)
        self.alphas = nn.ParameterDict({
            "activation": nn.Parameter(1e-3 * torch.randn(depth if per_layer else 1,
                                                          len(activations))),
            "layers": nn.Parameter(1e-3 * torch.randn(depth)),
            "width": nn.Parameter(1e-3 * torch.randn(len(widths)))})

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("alphas.")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.softmax(self.alphas["activation"], dim=-1)
        mask = F.softmax(self.alphas["width"], dim=-1) @ self.masks
        exits = F.softmax(self.alphas["layers"], dim=-1)
        h, out = x, 0.0
        for k, layer in enumerate(self.layers):
            z = layer(h)
            weights = act[min(k, len(act) - 1)]
            h = sum(w * a(z) for w, a in zip(weights, self.activations, strict=True)) * mask
            out = out + exits[k] * self.head(h)
        return out


class GradientMlp(DiscreteStrategy):
    """Proposes one architecture: the one the relaxation derives after the search."""

    def __init__(self, space: MlpDecisions, config: SearchConfig) -> None:
        super().__init__(space, config)
        self.derived: Arch | None = None
        self.proposed = False

    @property
    def exhausted(self) -> bool:
        return self.proposed

    def _decision(self, name: str) -> tuple[int, tuple[Any, ...]]:
        index = next(i for i, d in enumerate(self.space.decisions) if d.name == name)
        return index, self.space.decisions[index].choices

    def search(self) -> Arch:
        """First-order DARTS on the relaxed MLP: per step an α step on a validation batch,
        then a w step on a training batch, for the evaluation profile's epochs."""
        from nas_engine.config import TRAIN_PROFILES

        c = self.config
        mlp = c.mlp
        profile = TRAIN_PROFILES[c.discrete.profile]["mlp"]
        rows = load_tabular(c.data, c.seed)
        regression = rows.task == "regression"
        per_layer = self.space.per_layer
        fixed = {name: self._decision(name)[1][_closest(self._decision(name)[1], value)]
                 for name, value in FIXED.items()}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            net = MlpSupernet(rows.num_features, rows.num_outputs, max(mlp.layers),
                              list(mlp.widths), list(c.ops or ()), per_layer)
            batch = profile["data"]["batch_size"]
            train = RowStream(rows, rows.train, batch, c.seed)
            val = RowStream(rows, rows.val, batch, c.seed + 1)
            w_opt = torch.optim.Adam(net.weight_parameters(), lr=float(fixed["lr"]))
            a_opt = torch.optim.Adam(net.alphas.values(), lr=ALPHA_LR, betas=ALPHA_BETAS,
                                     weight_decay=ALPHA_WEIGHT_DECAY)

            def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                out = net(x)
                return F.mse_loss(out, y) if regression else F.cross_entropy(out, y)

            for _ in range(profile["epochs"] * len(train)):
                a_opt.zero_grad()
                loss(*val.next()).backward()
                a_opt.step()
                w_opt.zero_grad()
                loss(*train.next()).backward()
                w_opt.step()
        self.alphas = {k: F.softmax(a.detach(), dim=-1) for k, a in net.alphas.items()}
        return self._derive(fixed)

    def _derive(self, fixed: dict[str, Any]) -> Arch:
        """Every decision: argmax of its weights, the fixed ones as fixed."""
        arch = [0] * len(self.space)
        for name in ("layers", "width"):
            arch[self._decision(name)[0]] = int(self.alphas[name].argmax())
        acts = self.alphas["activation"].argmax(dim=-1).tolist()
        for k, choice in enumerate(acts):
            arch[self._decision(f"activation {k + 1}")[0]] = int(choice)
        for name, value in fixed.items():
            index, choices = self._decision(name)
            arch[index] = choices.index(value)
        return tuple(arch)

    def propose(self) -> Arch:
        if self.derived is None:
            self.derived = self.search()
        self.proposed = True
        return self.derived

    def observe(self, arch: Arch, score: float) -> None:
        pass

    def view(self) -> dict[str, Any]:
        """The relaxation's weights per decision in the decision order (fixed ones one-hot),
        as REINFORCE shows its probabilities."""
        if self.derived is None:
            return {}
        rows = []
        for i, d in enumerate(self.space.decisions):
            if d.name.startswith("activation "):
                probs = self.alphas["activation"][int(d.name.split()[1]) - 1]
            elif d.name in ("layers", "width"):
                probs = self.alphas[d.name]
            else:
                probs = F.one_hot(torch.tensor(self.derived[i]), len(d.choices)).float()
            rows.append([round(float(p), 6) for p in probs])
        return {"probabilities": rows}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "proposed": self.proposed,
                "derived": None if self.derived is None else list(self.derived),
                "alphas": {k: v.tolist() for k, v in getattr(self, "alphas", {}).items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.proposed = state["proposed"]
        self.derived = None if state["derived"] is None else tuple(state["derived"])
        self.alphas = {k: torch.tensor(v) for k, v in state["alphas"].items()}
