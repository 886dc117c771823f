"""One trial of a sweep, in a Ray worker: an ordinary run folder under the runs root, driven
by a `Run` as the app and the CLI drive one (so it can be opened, resumed and branched like
any run), reporting each finished epoch to Ray Tune.

The trial's first report carries a Tune checkpoint that names its run folder. When
`sweep --resume` restores an interrupted sweep, Tune hands that checkpoint back to a trial it
starts again, and the trial continues its own run folder from the folder's newest checkpoint
(`Run.resume_from`: the same records an uninterrupted run writes); a run that had finished
before the driver died is only reported. A run killed before its first epoch checkpoint has
nothing to continue from: it stays `interrupted` and the trial begins in a new folder.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.runner import Run, RunRegistry
from nas_engine.snapshot import Snapshot
from nas_engine.states import RunState
from nas_engine.store import RunFolder

RUN_FILE = "run.json"  # in the trial's Tune checkpoint: {"run_id": ...}
WAIT_S = 3600.0  # one wait for the next epoch (a very slow epoch only waits again)

# report(metrics, names_run): names_run asks for a checkpoint naming the trial's run folder
Report = Callable[[dict[str, Any], bool], None]


class TrialFailed(RuntimeError):
    """The trial's run failed or was stopped: Tune marks the trial errored."""


def tune_trial(params: dict[str, Any]) -> None:
    """The Tune trainable: `params` holds the sweep's `base` config, `runs_dir`, `label`
    and this trial's `point` (changes to the base, its index)."""
    from ray import tune

    config = SearchConfig.from_dict(params["base"]).with_changes(params["point"]["changes"])
    checkpoint = tune.get_checkpoint()
    run_id = None
    if checkpoint is not None:
        with checkpoint.as_directory() as where:
            run_id = json.loads((Path(where) / RUN_FILE).read_text())["run_id"]

    def report(metrics: dict[str, Any], names_run: bool) -> None:
        if not names_run:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as where:
            (Path(where) / RUN_FILE).write_text(json.dumps({"run_id": metrics["run_id"]}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(where))

    label = f"{params['label']}-t{params['point']['index']:03d}"
    run_trial(config, params["runs_dir"], label, run_id, report)


def run_trial(config: SearchConfig, runs_dir: str | Path, label: str, run_id: str | None,
              report: Report) -> Run:
    """Run (or go on with) the trial's run to its end, reporting when it starts and after
    every epoch; TrialFailed when it does not finish."""
    run = _start(config, Path(runs_dir), label, run_id)
    snap = run.snapshot()
    report(metrics(snap), run.run_id != run_id)
    seen = len(snap.epochs)
    while snap.is_active:
        run.wait_for(lambda s, n=seen: len(s.epochs) > n or not s.is_active, WAIT_S)
        snap = run.snapshot()
        if len(snap.epochs) > seen:
            seen = len(snap.epochs)
            report(metrics(snap), False)
    run.join()
    snap = run.snapshot()
    if snap.state is not RunState.FINISHED:
        raise TrialFailed(f"run {run.run_id} {snap.state}" + (f": {snap.message}"
                                                             if snap.message else ""))
    return run


def _start(config: SearchConfig, runs_dir: Path, label: str, run_id: str | None) -> Run:
    """The trial's run, started: its own folder again when a restored trial names one that
    can go on (or has ended: then only opened), else a new folder."""
    if run_id is not None and (runs_dir / run_id / "config.json").is_file():
        path = runs_dir / run_id
        state = RunFolder(path).effective_state()
        if state.is_terminal:
            return Run.open(path)
        if state.can_continue:
            try:
                return Run.resume_from(path).start()
            except FileNotFoundError:  # killed before its first checkpoint
                pass
    return RunRegistry(runs_dir).create(config, label=label).start()


def metrics(snap: Snapshot) -> dict[str, Any]:
    """What a trial reports: its run, and the newest epoch's numbers it has."""
    out: dict[str, Any] = {"run_id": snap.run_id, "epoch": snap.epoch,
                           "epochs": snap.config.epochs, "state": str(snap.state)}
    view = snap.epochs
    if len(view):
        for key in ("skip_count", "val_acc", "val_loss"):
            value = float(getattr(view, key)[-1])
            if math.isfinite(value):
                out[key] = int(value) if key == "skip_count" else value
    return out
