"""The sweep's folder, `sweeps/<id>/` under the runs root: `sweep.json` (the grid, the seeds,
the base config, and every trial with its point, state and run), the driver's lock and log,
and Ray Tune's own experiment state, from which `sweep --resume` restores. The trials' run
folders sit in the runs root itself, beside every other run, so the app lists, opens, resumes
and branches them as any run.

Only the driver writes `sweep.json`, holding the folder's lock as a run's writer holds
`run.lock`, and replaces it whole each time (write, then rename): the store's own lock and
atomic write, so a sweep's folder keeps a run folder's guarantees. A
driver whose process is gone while its sweep is running reads as `interrupted`.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nas_engine.store import (
    RunFolder,
    RunFolderError,
    RunInUse,
    _atomic_write_json,
    _lock,
    unique_folder,
)
from nas_engine.sweep.spec import SweepSpec

SWEEPS_DIR = "sweeps"
SWEEP_FILE = "sweep.json"
DRIVER_LOG = "driver.log"  # where the app's driver writes (the CLI's goes to the terminal)
TRIAL_STATES = ("pending", "running", "finished", "failed", "interrupted")
DRIVER_STATES = ("created", "running", "finished", "interrupted", "failed")


class SweepFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()

    @property
    def sweep_id(self) -> str:
        return self.path.name

    @property
    def runs_dir(self) -> Path:
        """The runs root the trials' run folders go to (two levels up)."""
        return self.path.parent.parent

    @classmethod
    def create(cls, runs_dir: str | Path, spec: SweepSpec,
               max_concurrent: int | None = None) -> SweepFolder:
        """A new sweep folder (named by time and the sweep's name) holding `sweep.json`
        with every trial pending; `spec` must be valid (`SweepSpec.validate`).
        `max_concurrent`: trials at a time (None: one per CPU of the cluster); the sweep
        keeps it when resumed (Tune restores its own setting)."""
        root = Path(runs_dir).resolve() / SWEEPS_DIR
        root.mkdir(parents=True, exist_ok=True)
        base = time.strftime("%Y%m%d-%H%M%S-") + re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.name)
        folder = cls(unique_folder(root, base))
        trials = [{"index": i, "point": point, "state": "pending", "run_id": None,
                   "message": None} for i, point in enumerate(spec.points())]
        folder.write({**spec.to_dict(), "base": spec.base().to_dict(),
                      "max_concurrent": max_concurrent,
                      "driver": {"state": "created", "pid": None, "message": None},
                      "trials": trials})
        return folder

    def read(self) -> dict[str, Any]:
        """sweep.json; RunFolderError naming it when it cannot be read."""
        path = self.path / SWEEP_FILE
        try:
            data = json.loads(path.read_bytes())
        except OSError as exc:
            raise RunFolderError(path, f"cannot be read ({exc.strerror})") from None
        except ValueError as exc:
            raise RunFolderError(path, f"is not JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("trials"), list):
            raise RunFolderError(path, "is not a sweep (no list of trials)")
        return data

    def write(self, data: dict[str, Any]) -> None:
        """Replace sweep.json whole (the driver only)."""
        _atomic_write_json(self.path / SWEEP_FILE, data)

    @contextlib.contextmanager
    def driving(self) -> Iterator[None]:
        """Hold the sweep's lock while a driver runs it (RunInUse naming the process that
        holds it)."""
        try:
            lock = _lock(self.path)
        except RunInUse as exc:
            holder = RunFolder(self.path).lock_holder() or "another process"
            raise RunInUse(exc.path, f"sweep {self.sweep_id} is being driven by {holder}; "
                           "wait for it to end or stop it there") from None
        try:
            yield
        finally:
            lock.close()

    def driver_state(self) -> str:
        """The driver's state as recorded, except that a running driver whose process is
        gone is `interrupted`."""
        state = self.read().get("driver", {}).get("state", "created")
        if state == "running" and RunFolder(self.path).lock_holder() is None:
            return "interrupted"
        return state


def list_sweeps(runs_dir: str | Path) -> list[SweepFolder]:
    """The sweeps under `runs_dir`, newest first."""
    root = Path(runs_dir) / SWEEPS_DIR
    if not root.is_dir():
        return []
    found = [SweepFolder(p) for p in root.iterdir() if (p / SWEEP_FILE).is_file()]
    return sorted(found, key=lambda s: s.sweep_id, reverse=True)
