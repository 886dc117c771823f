"""What a sweep found, trial by trial, read from its trials' run folders (their final epoch
records) and the evaluations database: the rows of the CLI's summary table, the Sweeps page's
trials table and its phase diagram. No Ray and no thread code: the app draws any sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.evaluation.training import evaluation_key, retrain_config
from nas_engine.evaluations import EvaluationsDB
from nas_engine.states import RunState
from nas_engine.store import RunFolder
from nas_engine.sweep.folder import SweepFolder

LIVE_TRIAL_STATES = ("pending", "running")


@dataclass(frozen=True)
class TrialRow:
    """One trial: its point (grid values and seed), its state, and its run's final numbers
    (None where the run has none yet: no epoch, no λmax measured, no alarm, no retrain)."""

    index: int
    point: dict[str, Any]
    state: str
    run_id: str | None
    epoch: int | None
    epochs: int
    skip_count: int | None
    val_acc: float | None
    lambda_max: float | None  # the last λmax measured
    alarm_epoch: int | None  # when the collapse alarm fired
    retrained: float | None  # the final cell's test accuracy, retrained with the profile
    message: str | None

    def value(self, name: str) -> float | None:
        """A number the phase diagram colours by (`phase.VALUES`)."""
        value = getattr(self, name)
        return None if value is None else float(value)


def final_numbers(folder: RunFolder) -> dict[str, Any]:
    """A run's numbers at its last epoch record: epoch, skip count, validation accuracy, the
    last λmax measured and the alarm's epoch."""
    epochs = [r for r in folder.read_records() if r.get("kind") == "epoch"]
    if not epochs:
        return {}
    last = epochs[-1]
    measured = [r["hessian_max_eigenvalue"] for r in epochs
                if _finite(r.get("hessian_max_eigenvalue"))]
    alarm = last.get("alarm") or {}
    return {"epoch": last.get("epoch"), "skip_count": last.get("skip_count"),
            "val_acc": last.get("val_acc") if _finite(last.get("val_acc")) else None,
            "lambda_max": measured[-1] if measured else None,
            "alarm_epoch": alarm.get("epoch")}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def final_cell_retrain(folder: RunFolder, profile: str,
                       changes: dict[str, Any] | None = None) -> SearchConfig | None:
    """The train config that retrains a search run's final cell with `profile` (as changed:
    `--retrain-set`) on the default task and the run's seed; None before it has a cell."""
    genotype = folder.read_genotype()
    if not genotype:
        return None
    return retrain_config(folder.read_config(), genotype, profile, changes=changes)


def retrained_accuracy(db: EvaluationsDB, folder: RunFolder, profile: str,
                       changes: dict[str, Any] | None = None) -> float | None:
    """The database's test accuracy for the run's final cell so retrained, or None."""
    config = final_cell_retrain(folder, profile, changes)
    row = None if config is None else db.get(evaluation_key(config))
    return None if row is None else row.test_acc


def trial_rows(sweep: SweepFolder, data: dict[str, Any] | None = None) -> list[TrialRow]:
    """Every trial of the sweep, in its order. A trial the sweep.json of a driver that has
    died calls running reads as its run does (`interrupted`)."""
    data = data or sweep.read()
    db = EvaluationsDB(sweep.runs_dir)
    profile = data.get("retrain") or "classroom"
    epochs = int(data["base"].get("epochs", 0))
    rows = []
    for trial in data["trials"]:
        state, numbers, retrained = trial["state"], {}, None
        folder = RunFolder(sweep.runs_dir / trial["run_id"]) if trial.get("run_id") else None
        if folder is not None and (folder.path / "config.json").is_file():
            numbers = final_numbers(folder)
            run_state = folder.effective_state()
            if state in LIVE_TRIAL_STATES and not run_state.is_live:
                state = "finished" if run_state is RunState.FINISHED else str(run_state)
            retrained = retrained_accuracy(db, folder, profile, data.get("retrain_changes"))
        rows.append(TrialRow(
            index=trial["index"], point=trial["point"], state=state,
            run_id=trial.get("run_id"), epoch=numbers.get("epoch"), epochs=epochs,
            skip_count=numbers.get("skip_count"), val_acc=numbers.get("val_acc"),
            lambda_max=numbers.get("lambda_max"), alarm_epoch=numbers.get("alarm_epoch"),
            retrained=retrained, message=trial.get("message")))
    return rows


def progress_text(trials: list[dict[str, Any]]) -> str:
    """The sweep's progress line from sweep.json's trials: how many are done, running and
    failed, and the best so far (highest final validation accuracy)."""
    count = {s: sum(t["state"] == s for t in trials) for s in ("finished", "running",
                                                                "failed")}
    text = (f"{count['finished']}/{len(trials)} trials done · {count['running']} running · "
            f"{count['failed']} failed")
    done = [t for t in trials if t["state"] == "finished" and _finite(t.get("val_acc"))]
    if done:
        best = max(done, key=lambda t: t["val_acc"])
        text += (f" · best val acc {best['val_acc']:.3f} (trial {best['index']}, skip "
                 f"{best.get('skip_count', '?')})")
    retrains = [t["retrain"] for t in trials if t.get("retrain")]
    if retrains:
        text += f" · retrains {sum(r == 'done' for r in retrains)}/{len(retrains)} done"
    return text
