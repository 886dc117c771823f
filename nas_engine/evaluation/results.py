"""What the evaluations database knows of a search's cell: its retrained accuracies, for the
home table and the Compare page (the R-DARTS picture: supernet accuracy beside the truth), and
its inherited accuracy, the cell scored on the supernet's own weights (seed 000's
weight-sharing gap: supernet, inherited, retrained)."""

from __future__ import annotations

import statistics
from typing import Any

from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluations import Evaluation, EvaluationsDB, InheritedKey, InheritedScore
from nas_engine.spaces.genotypes import genotype_from_dict, parse_genotype
from nas_engine.store import RunFolder


def retrained(db: EvaluationsDB, space: str, genotype: dict[str, Any]) -> list[Evaluation]:
    """Every stored retrain of this cell (or of a cell equal to it), any task, profile, seed."""
    key = architecture_key(space, genotype_from_dict(space, genotype))
    return db.rows(space=space, arch=key)


def of_folder(db: EvaluationsDB, folder: RunFolder) -> list[Evaluation]:
    """The retrains of a run's cell: a search's final cell (genotype.json), a train run's own
    cell; [] while there is none, or for a folder that cannot be read."""
    try:
        config = folder.read_config()
        if config.kind == "train":
            genotype = parse_genotype(config.space, config.train.genotype)
            return db.rows(space=config.space, arch=architecture_key(config.space, genotype))
        recorded = folder.read_genotype()
    except ValueError:
        return []
    return retrained(db, config.space, recorded) if recorded else []


def summary(rows: list[Evaluation]) -> str:
    """One short line: the mean test accuracy and how many retrains it is of."""
    accuracies = [r.test_acc for r in rows if r.test_acc is not None]
    if not accuracies:
        return ""
    mean = statistics.mean(accuracies)
    profiles = sorted({r.key.profile for r in rows})
    return f"{mean:.3f} ({len(accuracies)}× {', '.join(profiles)})"


def _inherited_key(folder: RunFolder) -> InheritedKey | None:
    """The key of a search's final cell (genotype.json) on its newest epoch checkpoint; None
    for a train or discrete run, or before the cell and a checkpoint exist."""
    from nas_engine.evaluation.inherited import BN_BATCHES  # torch: only here

    try:
        config = folder.read_config()
        recorded = folder.read_genotype() if config.kind == "search" else None
    except ValueError:
        return None
    epochs = folder.checkpoints()
    if not recorded or not epochs:
        return None
    arch = architecture_key(config.space, genotype_from_dict(config.space, recorded))
    return InheritedKey(folder.run_id, max(epochs), config.space, arch, BN_BATCHES)


def inherited(db: EvaluationsDB, folder: RunFolder) -> InheritedScore | None:
    """The stored inherited accuracy of the search's final cell, if scored."""
    key = _inherited_key(folder)
    return None if key is None else db.get_inherited(key)


def can_score_inherited(folder: RunFolder) -> bool:
    return _inherited_key(folder) is not None


def score_inherited(db: EvaluationsDB, folder: RunFolder, device: str = "cpu"
                    ) -> InheritedScore:
    """Score the search's final cell on its supernet (stored: asked again, it is read back);
    ValueError when the run has no such cell or checkpoint."""
    from nas_engine.evaluation.inherited import InheritedSupernet, store_score  # torch: here

    key = _inherited_key(folder)
    if key is None:
        raise ValueError(f"run {folder.run_id} has no final cell with a checkpoint to score")
    stored = db.get_inherited(key)
    if stored is not None:
        return stored
    supernet = InheritedSupernet(folder.path, device, key.epoch)
    cell = genotype_from_dict(key.space, folder.read_genotype())
    return store_score(db, supernet, key, supernet.space.genotype_text(cell))
