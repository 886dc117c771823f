"""What the evaluations database knows of a search's cell: its retrained accuracies, for the
home table and the Compare page (the R-DARTS picture: supernet accuracy beside the truth)."""

from __future__ import annotations

import statistics
from typing import Any

from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluations import Evaluation, EvaluationsDB
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
