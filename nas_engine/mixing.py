"""How a supernet's edges weigh their ops: the mixing weights each strategy makes from α.

The supernet knows nothing of α (pt.darts' split): it is called with one (edges, ops) weight
matrix per cell type. A strategy picks its `Mixing` in `adapt_search_space`, so a new way of
mixing is one class here, not a flag threaded through the model:
- `SoftmaxMixing`: softmax α (DARTS), times softmax β over a node's incoming edges when the
  model has edge weights (PC-DARTS' edge normalisation);
- `SigmoidMixing`: σ(α), ops no longer compete (Fair DARTS);
- `ProximalMixing`: the discrete architecture ᾱ (NASP): one op per edge, 2 edges per node;
- `GumbelMixing`: a hard Gumbel-softmax sample per edge (GDAS);
- `UniformMixing`: one path drawn uniformly per training step, α unused (SPOS);
- `FixedMixing`: one given cell, to score a supernet's inherited weights.
The discrete ones also tell every edge block which op to compute (`MixedDag.choose`), so an
unchosen op costs nothing; its weight (0 in value) still passes gradient straight through
where the mixing has a gradient to pass (NASP, GDAS).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from nas_engine.model import SearchModel

Weights = dict[str, torch.Tensor]
# A change to softmax α before it is used (SDARTS-RS' noise in the w step).
Perturbation = Callable[[Weights], Weights]


class Mixing(ABC):
    """Turns a model's α (and β) into mixing weights, and says what the genotype rule reads."""

    @abstractmethod
    def weights(self, model: SearchModel, perturb: Perturbation | None = None) -> Weights:
        """Mixing weights for one forward pass (a discrete mixing also sets each edge's op)."""

    def derivation_weights(self, model: SearchModel) -> dict[str, np.ndarray]:
        """What the space's discretisation rule reads (host sync): softmax α by default,
        times PC-DARTS' edge weights as its official `genotype()` does."""
        with torch.no_grad():
            return {cell: w.double().cpu().numpy() for cell, w in softmax_weights(model).items()}

    def genotype(self, model: SearchModel) -> Any:
        return model.space.derive(self.derivation_weights(model))

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        pass


def softmax_weights(model: SearchModel, perturb: Perturbation | None = None) -> Weights:
    """Softmax α per edge (perturbed if asked), times the edge weight where the model has β."""
    probs = {cell: F.softmax(alpha, dim=-1) for cell, alpha in model.alphas.items()}
    if perturb is not None:
        probs = perturb(probs)
    if not model.betas:
        return probs
    rows = model.space.incoming_rows()
    scales = {cell: torch.cat([F.softmax(beta[r], dim=0) for r in rows])
              for cell, beta in model.betas.items()}
    return {cell: p * scales[cell].unsqueeze(1) for cell, p in probs.items()}


class SoftmaxMixing(Mixing):
    def weights(self, model: SearchModel, perturb: Perturbation | None = None) -> Weights:
        return softmax_weights(model, perturb)


class SigmoidMixing(Mixing):
    """Fair DARTS: each op weighted by σ(α) on its own, so skip_connect's advantage no longer
    takes weight from the others (Chu et al., ECCV 2020). The genotype rule reads σ(α)."""

    def weights(self, model: SearchModel, perturb: Perturbation | None = None) -> Weights:
        return {cell: torch.sigmoid(alpha) for cell, alpha in model.alphas.items()}

    def derivation_weights(self, model: SearchModel) -> dict[str, np.ndarray]:
        with torch.no_grad():
            return {cell: torch.sigmoid(a).double().cpu().numpy()
                    for cell, a in model.alphas.items()}


def straight_through(values: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """`values` in the forward pass, the gradient of `source` in the backward pass."""
    return values.detach() + (source - source.detach())


Columns = dict[str, list[int | None]]  # per cell type, the op column of each edge (None: off)


class _DiscreteMixing(Mixing):
    """A one-hot weight per edge that also decides what every edge block computes."""

    def __init__(self) -> None:
        self.all_ops = False  # compute every op (their weights are 0) for a full α gradient

    @abstractmethod
    def sample(self, model: SearchModel) -> tuple[Weights, Weights, Columns]:
        """The one-hot weights per cell type, what their gradient passes to, and the host
        columns (one device sync at most)."""

    def weights(self, model: SearchModel, perturb: Perturbation | None = None) -> Weights:
        hard, source, columns = self.sample(model)
        for cell, dag in model.net.cell_dags():
            dag.choose(None if self.all_ops else columns[cell])
        return {cell: straight_through(hard[cell], source[cell]) for cell in hard}


def _one_hot(columns: list[int | None], like: torch.Tensor) -> torch.Tensor:
    hard = torch.zeros(like.shape, dtype=like.dtype)
    for row, column in enumerate(columns):
        if column is not None:
            hard[row, column] = 1.0
    return hard.to(like.device, non_blocking=True)


class ProximalMixing(_DiscreteMixing):
    """NASP's discrete architecture ᾱ (Yao et al., AAAI 2020; `binarization` in the official
    code): one op per edge and, in the DARTS space, only the 2 strongest inputs per node, the
    rest computing nothing. It is taken from the genotype rule on α itself, so the network
    trained is exactly the derived cell. Gradients pass straight through to α."""

    def sample(self, model: SearchModel) -> tuple[Weights, Weights, Columns]:
        columns = model.space.genotype_columns(self.genotype(model))
        hard = {cell: _one_hot(columns[cell], a) for cell, a in model.alphas.items()}
        return hard, dict(model.alphas), columns

    def derivation_weights(self, model: SearchModel) -> dict[str, np.ndarray]:
        """α itself, kept in [0, 1] by the proximal step (the official binarization ranks the
        chosen α of a node's edges). Read every forward pass: one device-to-host copy for all
        cell types, the one sync."""
        alphas = dict(model.alphas)
        with torch.no_grad():
            flat = torch.cat([a.reshape(-1) for a in alphas.values()]).double().cpu().numpy()
        ends = np.cumsum([a.numel() for a in alphas.values()])
        return {cell: part.reshape(a.shape)
                for (cell, a), part in zip(alphas.items(), np.split(flat, ends[:-1]))}


class GumbelMixing(_DiscreteMixing):
    """GDAS (Dong & Yang, CVPR 2019): per edge a Gumbel-softmax sample at temperature τ, used
    hard (the one-hot of its argmax, straight-through to the soft sample), so each edge computes
    one op. The uniform draws are kept inside (0, 1), so no sample is infinite (the official
    code draws again instead: a host sync per forward). In eval mode the argmax of α stands in
    for the sample, so validation is deterministic."""

    def __init__(self, generator: torch.Generator, tau: float = 10.0) -> None:
        super().__init__()
        self.generator = generator
        self.tau = tau

    def sample(self, model: SearchModel) -> tuple[Weights, Weights, Columns]:
        soft = {}
        for cell, alpha in model.alphas.items():
            if model.training:
                u = torch.rand(alpha.shape, generator=self.generator, device=alpha.device,
                               dtype=alpha.dtype)
                info = torch.finfo(alpha.dtype)
                gumbels = -torch.log(-torch.log(u.clamp(info.tiny, 1 - info.eps)))
                soft[cell] = F.softmax((F.log_softmax(alpha, -1) + gumbels) / self.tau, dim=-1)
            else:
                soft[cell] = F.softmax(alpha, -1)
        chosen = torch.stack([s.detach().argmax(-1) for s in soft.values()])
        hard = {cell: F.one_hot(c, s.shape[-1]).to(s.dtype)
                for (cell, s), c in zip(soft.items(), chosen)}
        columns = dict(zip(soft, chosen.tolist()))  # the one sync
        return hard, soft, columns

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "tau": self.tau}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.tau = state["tau"]


class UniformMixing(_DiscreteMixing):
    """SPOS (Guo et al., ECCV 2020): each training step trains one path of the supernet, every
    edge's op drawn uniformly and independently, so all ops' weights are trained equally often
    and α plays no part. `draw` picks the step's path, which every training-mode forward uses
    until the next draw; an eval-mode forward draws a path of its own (validation then scores
    random paths, one per batch). The draws come from a host generator (the columns are host
    ints anyway: no device sync), counted per edge and op for the records; the genotype rule
    reads those frequencies, i.e. the most-trained path. No gradient reaches α."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.generator = generator
        self.path: Columns | None = None  # the training step's path
        self.counts: dict[str, torch.Tensor] = {}  # per cell type: draws per (edge, op)

    def _uniform(self, model: SearchModel) -> Columns:
        return {cell: torch.randint(a.shape[1], (a.shape[0],), generator=self.generator).tolist()
                for cell, a in model.alphas.items()}

    def draw(self, model: SearchModel) -> Columns:
        """A new path for the training forwards that follow, counted."""
        self.path = self._uniform(model)
        counts = self.counted(model)
        for cell, columns in self.path.items():
            counts[cell][torch.arange(len(columns)), torch.tensor(columns)] += 1
        return self.path

    def counted(self, model: SearchModel) -> dict[str, torch.Tensor]:
        """The training paths drawn so far, per cell type: a count per (edge, op)."""
        for cell, alpha in model.alphas.items():
            self.counts.setdefault(cell, torch.zeros(alpha.shape, dtype=torch.int64))
        return self.counts

    def sample(self, model: SearchModel) -> tuple[Weights, Weights, Columns]:
        if not model.training:
            columns = self._uniform(model)
        else:
            columns = self.path if self.path is not None else self.draw(model)
        hard = {cell: _one_hot(columns[cell], a) for cell, a in model.alphas.items()}
        return hard, hard, columns

    def derivation_weights(self, model: SearchModel) -> dict[str, np.ndarray]:
        """How often each op was drawn on each edge (uniform before the first draw)."""
        frequencies = {}
        for cell, counts in self.counted(model).items():
            total = counts.sum(1, keepdim=True).double()
            frequencies[cell] = torch.where(total > 0, counts / total.clamp(min=1),
                                            1.0 / counts.shape[1]).numpy()
        return frequencies

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "path": self.path,
                "counts": {cell: c.clone() for cell, c in self.counts.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.path = state["path"]
        self.counts = {cell: c.clone() for cell, c in state["counts"].items()}


class FixedMixing(_DiscreteMixing):
    """One given path, in training and eval mode alike: a cell of the supernet's space (its
    `genotype_columns`) computed on the supernet's own weights, the other edges off. This is how
    a one-shot supernet scores a candidate with inherited weights (SPOS' evaluation)."""

    def __init__(self, columns: Columns) -> None:
        super().__init__()
        self.columns = columns

    def sample(self, model: SearchModel) -> tuple[Weights, Weights, Columns]:
        hard = {cell: _one_hot(self.columns[cell], a) for cell, a in model.alphas.items()}
        return hard, hard, self.columns
