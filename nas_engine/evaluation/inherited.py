"""Inherited accuracy: a cell scored with a trained supernet's own weights, without training
it (one-shot NAS; SPOS, Guo et al., ECCV 2020). Every edge computes the cell's op (NB201),
or each node its two inputs' ops with every other edge off (the DARTS space), through
`FixedMixing`. BatchNorm's running statistics are then recomputed for that cell, as SPOS does
before scoring a path: the supernet's statistics are a blend over all the paths it trained
and fit none of them. They are reset and averaged cumulatively (each batch weighing the same)
over the first `bn_batches` training batches, the same images for every cell, and the cell is
scored on the run's whole validation split in eval mode.

Applied to a DARTS (or any gradient strategy's) supernet and its own derived cell, it gives the
middle figure of the weight-sharing gap: the supernet's validation accuracy, the derived cell's
inherited accuracy, its retrained accuracy.

The supernet is rebuilt in memory as its search built it (`Search` on the run's config,
loaded from the newest checkpoint); nothing is written to the run folder. Building it seeds
torch's, numpy's and Python's global generators with the run's seed, as a search does."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from nas_engine.evaluations import EvaluationsDB, InheritedKey, InheritedScore
from nas_engine.mixing import Columns, FixedMixing
from nas_engine.search import Search
from nas_engine.spaces import SPACES, darts
from nas_engine.spaces.genotypes import DARTS_EDGES_PER_NODE, DartsGenotype, parse_genotype
from nas_engine.store import RunFolder

# 20 batches of the run's batch size (1280 images at 64): past the point where more batches
# change a cell's score; without recalibration scores fall far (benchmarks/oneshot.py).
BN_BATCHES = 20


class InheritedSupernet:
    """A finished search's supernet, loaded once, scoring any number of cells of its space.
    `epoch` picks a checkpointed epoch (None: the newest usable checkpoint)."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", epoch: int | None = None
                 ) -> None:
        folder = RunFolder(run_dir)
        self.run = folder.path
        config = folder.read_config()
        if config.kind != "search":
            raise ValueError(f"{self.run}: a {config.kind} run has no supernet; inherited "
                             "accuracy needs a search run")
        try:
            state = folder.load_checkpoint(epoch)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{self.run}: no checkpoint holds the supernet's weights (a search saves one "
                "per epoch unless record.checkpoint is false)") from None
        # The caller's thread count stands: `Search` would set its own.
        self.search = Search(config.with_changes({
            "device.name": device, "device.compile": False, "threads": torch.get_num_threads()}))
        self.search.load_state_dict(state)
        self.space = self.search.space
        self.model = self.search.model
        # The cell alone, as it is retrained: no DARTS- auxiliary skip, no P-DARTS dropout.
        for block in self.model.edge_blocks():
            block.aux_skip = 0.0
            block.skip_dropout = 0.0
        self.norms = [m for m in self.model.net.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.supernet_stats = [(bn.running_mean.clone(), bn.running_var.clone())
                               for bn in self.norms]
        # What the search's own rule derives from the checkpoint's α (SPOS: the most-drawn path).
        self.derived_cell = self.space.genotype_text(self.model.genotype())

    # -- cells -------------------------------------------------------------------------------
    def columns(self, text: str) -> Columns:
        """The op column each edge of the supernet computes for cell `text` (None: off);
        ValueError saying what in it does not fit this supernet (its text not repeated)."""
        space = self.space.name
        try:
            genotype = parse_genotype(space, text)
        except ValueError as exc:
            for other in SPACES:
                if other != space and _parses(other, text):
                    raise ValueError(f"is a {other} cell, but {self.run.name} searched the "
                                     f"{space} space") from None
            raise ValueError(f"is not a {space} cell: {exc}") from None
        if isinstance(genotype, DartsGenotype):
            _check_darts_cell(genotype)
            ops = [op for op, _ in (*genotype.normal, *genotype.reduce)]
        else:
            ops = [op for op, _ in genotype.edges]
        missing = sorted(set(ops) - set(self.space.ops))
        if missing:
            raise ValueError(f"uses {missing[0]!r}, which the supernet of "
                             f"{self.run.name} does not have (its ops: "
                             f"{', '.join(self.space.ops)})")
        return self.space.genotype_columns(genotype)

    # -- scoring -----------------------------------------------------------------------------
    @staticmethod
    def check_bn_batches(bn_batches: int) -> None:
        if isinstance(bn_batches, bool) or not isinstance(bn_batches, int) or bn_batches < 0:
            raise ValueError(f"bn_batches must be an integer >= 0; got {bn_batches!r}")

    def accuracy(self, columns: Columns, bn_batches: int = BN_BATCHES) -> float:
        """Validation accuracy of the cell with these columns, its BatchNorm statistics
        recomputed on `bn_batches` training batches (0: the supernet's own kept; a training
        split of fewer batches is used whole)."""
        self.check_bn_batches(bn_batches)
        self.model.mixing = FixedMixing(columns)
        if bn_batches:
            self.recalibrate(bn_batches)
        else:  # the supernet's, not those of the cell scored before
            with torch.no_grad():
                for bn, (mean, var) in zip(self.norms, self.supernet_stats):
                    bn.running_mean.copy_(mean)
                    bn.running_var.copy_(var)
        return self.search.evaluate()[1]

    @torch.no_grad()
    def recalibrate(self, bn_batches: int) -> None:
        """Running statistics = the mean over the first `bn_batches` training batches (in stored
        order, unaugmented: the same for every cell) of each batch's statistics: reset, then
        momentum 1/k at batch k. Weights are untouched."""
        momenta = [bn.momentum for bn in self.norms]
        precision = self.search.precision
        self.model.train()
        for bn in self.norms:
            bn.reset_running_stats()
        for k, (x, _) in enumerate(self.search.train_stream.iter_pass(), start=1):
            if k > bn_batches:
                break
            for bn in self.norms:
                bn.momentum = 1.0 / k
            with precision.autocast():
                self.model(x, precision.mixing(self.model.mixing_weights()))
        for bn, momentum in zip(self.norms, momenta):
            bn.momentum = momentum


def _shown(text: object, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def _parses(space: str, text: str) -> bool:
    try:
        parse_genotype(space, text)
    except ValueError:
        return False
    return True


def _check_darts_cell(genotype: DartsGenotype) -> None:
    """The supernet's cells have `darts.STEPS` nodes, one edge per pair of nodes, and
    concatenate every intermediate node."""
    nodes = list(range(darts.INPUTS, darts.INPUTS + darts.STEPS))
    for cell in ("normal", "reduce"):
        pairs = getattr(genotype, cell)
        if len(pairs) != DARTS_EDGES_PER_NODE * darts.STEPS:
            raise ValueError(f"has {len(pairs) // DARTS_EDGES_PER_NODE} nodes in its {cell} "
                             f"cell; the supernet's cells have {darts.STEPS}")
        if getattr(genotype, f"{cell}_concat") != nodes:
            raise ValueError(f"has {cell}_concat {getattr(genotype, f'{cell}_concat')}; the "
                             f"supernet concatenates every intermediate node, {nodes}")
        for node, start in zip(nodes, range(0, len(pairs), DARTS_EDGES_PER_NODE)):
            inputs = [source for _, source in pairs[start:start + DARTS_EDGES_PER_NODE]]
            if len(set(inputs)) < len(inputs):
                raise ValueError(f"takes input {inputs[0]} twice into node {node} of its {cell} "
                                 "cell; the supernet has one edge per pair of nodes")


def inherited_accuracies(run_dir: str | Path, arch_texts: list[str],
                         bn_batches: int = BN_BATCHES, device: str = "cpu") -> list[float]:
    """The inherited validation accuracy of each cell (NB201 arch strings, or `Genotype(...)`
    texts for a DARTS-space run) on the supernet of the search in `run_dir`. Every text is
    checked before any is scored; a bad one raises ValueError naming it."""
    InheritedSupernet.check_bn_batches(bn_batches)
    supernet = InheritedSupernet(run_dir, device)
    cells = []
    for i, text in enumerate(arch_texts):
        try:
            cells.append(supernet.columns(text))
        except ValueError as exc:
            raise ValueError(f"arch_texts[{i}] {_shown(text)} {exc}") from None
    return [supernet.accuracy(columns, bn_batches) for columns in cells]


def derived_cell_inherited_accuracy(run_dir: str | Path, bn_batches: int = BN_BATCHES,
                                    device: str = "cpu") -> float:
    """The inherited accuracy of the cell the search derives from its newest checkpoint's α
    (`InheritedSupernet.derived_cell`; the epoch record's `genotype`, before any early-stop
    roll-back or skip cap)."""
    supernet = InheritedSupernet(run_dir, device)
    return supernet.accuracy(supernet.columns(supernet.derived_cell), bn_batches)


def store_score(db: EvaluationsDB, supernet: InheritedSupernet, key: InheritedKey, text: str
                ) -> InheritedScore:
    """Score cell `text` on `supernet` with `key`'s recalibration, timed, and store it under
    `key` (the row already stored wins)."""
    started = time.perf_counter()
    accuracy = supernet.accuracy(supernet.columns(text), key.bn_batches)
    return db.put_inherited(InheritedScore(key, accuracy, 1e3 * (time.perf_counter() - started)))
