"""Every space as a list of decisions, so that one discrete strategy serves them all: an
architecture is one choice index per decision, a mutation changes exactly one decision that
matters, a crossover takes each decision from one parent (Real et al. 2019; seed 001).

- NB201: the op of each of the 6 edges.
- DARTS: per cell type and intermediate node, the pair of inputs (two different nodes, as the
  derived cell has) and the op on each of the two (never `none`, as DARTS' rule derives).
- MLP: depth, width, the activation (one, or one per layer), learning rate, optimiser, dropout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from nas_engine.config import SearchConfig
from nas_engine.spaces.dag import edge_list
from nas_engine.spaces.genotypes import (
    DARTS_INPUTS,
    NB201_INPUTS,
    NB201_STEPS,
    DartsGenotype,
    NB201Genotype,
    darts_to_text,
)
from nas_engine.spaces.mlp import MlpArch

Arch = tuple[int, ...]  # one choice index per decision
DARTS_STEPS = 4


@dataclass(frozen=True)
class Decision:
    name: str
    choices: tuple[Any, ...]

    def label(self, index: int) -> str:
        choice = self.choices[index]
        return "-".join(map(str, choice)) if isinstance(choice, tuple) else str(choice)


class DecisionSpace(ABC):
    """A space's decisions and how a choice vector becomes the text a retrain takes."""

    def __init__(self, space: str, decisions: Sequence[Decision]) -> None:
        self.space = space
        self.decisions = tuple(decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def sample(self, rng: np.random.Generator) -> Arch:
        return tuple(int(rng.integers(len(d.choices))) for d in self.decisions)

    def active(self, arch: Arch) -> list[int]:
        """The decisions that shape this architecture (all, except in the MLP space)."""
        return list(range(len(self.decisions)))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """`arch` with exactly one decision that matters changed to another of its choices."""
        candidates = [i for i in self.active(arch) if len(self.decisions[i].choices) > 1]
        if not candidates:
            return arch
        i = candidates[int(rng.integers(len(candidates)))]
        other = int(rng.integers(len(self.decisions[i].choices) - 1))
        changed = list(arch)
        changed[i] = other if other < arch[i] else other + 1
        return tuple(changed)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: each decision from either parent with probability 1/2."""
        pick = rng.random(len(self.decisions)) < 0.5
        return tuple(x if p else y for x, y, p in zip(a, b, pick, strict=True))

    @abstractmethod
    def text(self, arch: Arch) -> str:
        """The architecture as a train run takes it (arch string, Genotype(...), MLP JSON)."""

    def labels(self, arch: Arch) -> dict[str, str]:
        return {d.name: d.label(i) for d, i in zip(self.decisions, arch, strict=True)}


class NB201Decisions(DecisionSpace):
    def __init__(self, ops: Sequence[str]) -> None:
        edges = edge_list(NB201_INPUTS, NB201_STEPS)
        super().__init__("nb201", [Decision(f"edge {t}←{s}", tuple(ops)) for s, t in edges])
        self.sources = [s for s, _ in edges]

    def text(self, arch: Arch) -> str:
        ops = [d.choices[i] for d, i in zip(self.decisions, arch, strict=True)]
        return NB201Genotype(tuple(zip(ops, self.sources, strict=True))).to_arch_str()


class DartsDecisions(DecisionSpace):
    def __init__(self, ops: Sequence[str]) -> None:
        ops = tuple(op for op in ops if op != "none")
        decisions = []
        for cell in ("normal", "reduce"):
            for node in range(DARTS_STEPS):
                pairs = tuple(combinations(range(DARTS_INPUTS + node), 2))
                decisions += [Decision(f"{cell} node {node + DARTS_INPUTS} inputs", pairs),
                              Decision(f"{cell} node {node + DARTS_INPUTS} op a", ops),
                              Decision(f"{cell} node {node + DARTS_INPUTS} op b", ops)]
        super().__init__("darts", decisions)

    def text(self, arch: Arch) -> str:
        cells: dict[str, list[tuple[str, int]]] = {}
        for start in range(0, len(arch), 3):
            inputs, op_a, op_b = (self.decisions[start + k].choices[arch[start + k]]
                                  for k in range(3))
            cell = self.decisions[start].name.split()[0]
            cells.setdefault(cell, []).extend([(op_a, inputs[0]), (op_b, inputs[1])])
        concat = list(range(DARTS_INPUTS, DARTS_INPUTS + DARTS_STEPS))
        return darts_to_text(DartsGenotype(cells["normal"], concat, cells["reduce"], concat))


class MlpDecisions(DecisionSpace):
    def __init__(self, config: SearchConfig) -> None:
        mlp = config.mlp
        self.per_layer = mlp.per_layer_activation
        activations = [Decision(f"activation {k + 1}", tuple(config.ops or ()))
                       for k in range(max(mlp.layers) if self.per_layer else 1)]
        super().__init__("mlp", [
            Decision("layers", tuple(mlp.layers)), Decision("width", tuple(mlp.widths)),
            *activations, Decision("lr", tuple(mlp.learning_rates)),
            Decision("optimizer", tuple(mlp.optimizers)),
            Decision("dropout", tuple(mlp.dropouts))])

    def active(self, arch: Arch) -> list[int]:
        """A per-layer activation below the chosen depth changes nothing: never mutate it."""
        layers = self.decisions[0].choices[arch[0]]
        if not self.per_layer:
            return list(range(len(self.decisions)))
        return [i for i, d in enumerate(self.decisions)
                if not d.name.startswith("activation ") or int(d.name.split()[1]) <= layers]

    def arch(self, arch: Arch) -> MlpArch:
        chosen = {d.name: d.choices[i] for d, i in zip(self.decisions, arch, strict=True)}
        layers = chosen["layers"]
        activations = tuple(chosen[f"activation {k + 1 if self.per_layer else 1}"]
                            for k in range(layers))
        return MlpArch(layers, chosen["width"], activations, float(chosen["lr"]),
                       chosen["optimizer"], float(chosen["dropout"]))

    def text(self, arch: Arch) -> str:
        return self.arch(arch).to_text()


def decision_space(config: SearchConfig) -> DecisionSpace:
    """The decisions of a validated config's space and choices."""
    if config.space == "nb201":
        return NB201Decisions(config.ops or ())
    if config.space == "darts":
        return DartsDecisions(config.ops or ())
    return MlpDecisions(config)
