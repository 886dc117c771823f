"""What the evaluations database knows of a search's cell: its retrained accuracies, for the
home table and the Compare page (the R-DARTS picture: supernet accuracy beside the truth)."""

from __future__ import annotations

import statistics
from typing import Any

from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluations import Evaluation, EvaluationsDB
from nas_engine.spaces.genotypes import genotype_from_dict


def retrained(db: EvaluationsDB, space: str, genotype: dict[str, Any]) -> list[Evaluation]:
    """Every stored retrain of this cell (or of a cell equal to it), any task, profile, seed."""
    key = architecture_key(space, genotype_from_dict(space, genotype))
    return db.rows(space=space, arch=key)


def summary(rows: list[Evaluation]) -> str:
    """One short line: the mean test accuracy and how many retrains it is of."""
    accuracies = [r.test_acc for r in rows if r.test_acc is not None]
    if not accuracies:
        return ""
    mean = statistics.mean(accuracies)
    profiles = sorted({r.key.profile for r in rows})
    return f"{mean:.3f} ({len(accuracies)}× {', '.join(profiles)})"
