"""Live searches: `SearchRun` runs a `Search` in a daemon thread that people can pause, step,
retune and stop while they watch; `RunRegistry` holds every run of the process.

Threading rule: the UI never touches the model. Control methods only leave a request under the
run's condition variable; the worker applies requests between steps, so a step is never cut in
half and every change has a well-defined first step. Readers call `snapshot()`, which copies
nothing large (see `history.py`).

CPU threads: `torch.set_num_threads` is process-wide. Runs of one process share that pool
(cores − 1 by default); each run's Python thread releases the GIL inside torch ops, so two runs
on one pool each go at about half speed, and none blocks another.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.history import History, HistoryView
from nas_engine.live import LIVE_PARAMETERS, validate_live
from nas_engine.search import NonFiniteLossError, Search
from nas_engine.spaces import make_space
from nas_engine.store import RunFolder, list_runs

STEP_TIME_SMOOTHING = 0.1  # weight of the newest step in the ETA's moving average

# Config keys a branch may change (the checkpoint's tensors fix everything else).
BRANCHABLE_PREFIXES = ("epochs", "optim.", "record.", "strategy.order", "strategy.fd_radius")


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of a run at one moment. `version` grows with every change, so a viewer
    can skip a redraw when it has not moved."""

    run_id: str
    config: SearchConfig
    state: str
    message: str | None
    version: int
    step: int
    epoch: int
    steps_per_epoch: int
    total_steps: int
    elapsed_s: float
    eta_s: float | None
    latest: dict[str, Any] | None
    steps: HistoryView
    epochs: HistoryView
    live: dict[str, float]
    live_changes: tuple[dict[str, Any], ...]
    lineage: dict[str, Any] | None
    edge_labels: tuple[str, ...]

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def is_active(self) -> bool:
        """Still able to change by itself (a viewer keeps polling)."""
        return self.state in ("created", "running")


class SearchRun:
    """One search in a background thread, controlled between steps."""

    def __init__(self, config: SearchConfig, folder: RunFolder, *,
                 checkpoint: dict[str, Any] | None = None, lineage: dict[str, Any] | None = None,
                 live: dict[str, float] | None = None, state: str = "created") -> None:
        self.config = config.validate()
        self.folder = folder
        self.run_id = folder.run_id
        self._checkpoint = checkpoint
        self._lineage = lineage
        space = make_space(self.config)
        self._edge_labels = tuple(space.edge_labels())
        self._steps = History(space.alpha_shapes())
        self._epochs = History(space.alpha_shapes())
        self._live_changes: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._state = state
        self._message: str | None = None
        self._version = 0
        self._step = 0
        self._epoch = 0
        self._steps_per_epoch = 0
        self._elapsed = 0.0
        self._step_time: float | None = None
        self._latest: dict[str, Any] | None = None
        self._speed = 0.0
        self._live: dict[str, float] = {}
        self._pending_live: list[tuple[str, float]] = list((live or {}).items())
        self._pause_requested = False
        self._stop_requested = False
        self._budget: int | None = None  # steps left to run before pausing (step / step_epoch)
        self._thread: threading.Thread | None = None
        for record in folder.read_records():
            self._add_record(record)

    # -- construction from disk --------------------------------------------------------------
    @classmethod
    def open(cls, run_dir: str | Path) -> SearchRun:
        """A dormant view of a run folder (finished, stopped, interrupted, or live in another
        process): its history and state, no thread."""
        folder = RunFolder(run_dir)
        run = cls(folder.read_config(), folder, lineage=folder.read_lineage(),
                  state=folder.effective_state())
        run._message = folder.read_status().get("message")
        return run

    @classmethod
    def resume_from(cls, run_dir: str | Path, epochs: int | None = None) -> SearchRun:
        """Continue a stopped or interrupted run in its own folder from its newest checkpoint;
        the records after that checkpoint are cut and, the search being deterministic, written
        again identically. `epochs` may extend the search."""
        folder = RunFolder(run_dir)
        state = folder.effective_state()
        if state in ("running", "paused"):
            raise ValueError(f"run {folder.run_id} is {state} in another process; stop it first")
        if state == "finished" and epochs is None:
            raise ValueError(f"run {folder.run_id} is finished; give epochs to extend it")
        config = folder.read_config()
        if epochs is not None:
            config = config.with_changes({"epochs": epochs})
        checkpoint = folder.load_checkpoint()
        if config.epochs <= checkpoint["epoch"] and epochs is not None:
            raise ValueError(f"epochs must be more than the {checkpoint['epoch']} already done; "
                             f"got {epochs}")
        if checkpoint["records"] is not None:
            folder.keep_records(checkpoint["records"])
        folder.write_config(config)
        return cls(config, folder, checkpoint=checkpoint, lineage=folder.read_lineage())

    # -- controls (any thread) ---------------------------------------------------------------
    def start(self) -> SearchRun:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError(f"run {self.run_id} was already started")
            if self._state not in ("created", "stopped", "interrupted"):
                raise RuntimeError(f"run {self.run_id} is {self._state}; it cannot start")
            self._set_state("running")
        self._thread = threading.Thread(target=self._work, name=f"search-{self.run_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        with self._cond:
            if self._state == "running":
                self._pause_requested = True
                self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            if self._state == "paused":
                self._budget = None
                self._set_state("running")
                self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """Advance exactly `n` search steps, then stay paused."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1; got {n!r}")
        with self._cond:
            self._require_controllable()
            self._budget = n
            self._set_state("running")
            self._cond.notify_all()

    def step_epoch(self) -> None:
        """Run to the end of the current epoch, then stay paused."""
        with self._cond:
            self._require_controllable()
            spe = self._steps_per_epoch
            left = spe - self._step % spe if spe else 1
            self._budget = left
            self._set_state("running")
            self._cond.notify_all()

    def stop(self) -> None:
        """Finish the current step, checkpoint, mark stopped (the thread then ends)."""
        with self._cond:
            if self._thread is None and self._state == "created":
                self._set_state("stopped")
            self._stop_requested = True
            self._cond.notify_all()

    def set(self, name: str, value: float) -> None:
        """Change a live parameter from the next step on (validated now, logged then)."""
        value = validate_live(name, value)
        with self._cond:
            if self._state in ("finished", "failed"):
                raise ValueError(f"run {self.run_id} is {self._state}; nothing is live any more")
            self._pending_live.append((name, value))
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:  # noqa: ANN001
        """Block until `predicate(snapshot)` holds or the timeout passes (tests, scripts)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.snapshot()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _require_controllable(self) -> None:
        if self._state not in ("running", "paused"):
            raise RuntimeError(f"run {self.run_id} is {self._state}; start or resume it first")

    # -- reading (any thread) ----------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def snapshot(self) -> Snapshot:
        with self._cond:
            left = (self.config.epochs * self._steps_per_epoch) - self._step
            eta = None if self._step_time is None else max(left, 0) * self._step_time
            return Snapshot(
                run_id=self.run_id, config=self.config, state=self._state,
                message=self._message, version=self._version, step=self._step,
                epoch=self._epoch, steps_per_epoch=self._steps_per_epoch,
                total_steps=self.config.epochs * self._steps_per_epoch,
                elapsed_s=self._elapsed, eta_s=eta, latest=self._latest,
                steps=self._steps.view(), epochs=self._epochs.view(),
                live={**self._live, "speed": self._speed},
                live_changes=tuple(self._live_changes), lineage=self._lineage,
                edge_labels=self._edge_labels,
            )

    # -- the worker --------------------------------------------------------------------------
    def _set_state(self, state: str, message: str | None = None, write: bool = True) -> None:
        """Caller holds the condition."""
        self._state = state
        self._message = message
        self._version += 1
        if write:
            self.folder.write_status(state, message, step=self._step)
        self._cond.notify_all()

    def _add_record(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind == "live":
            self._live_changes.append(record)
            return
        (self._epochs if kind == "epoch" else self._steps).append(record)
        self._latest = record
        self._step, self._epoch = record["step"], record["epoch"]
        self._live.update(record.get("live", {}))
        self._version += 1

    def _work(self) -> None:
        search: Search | None = None
        try:
            search = Search(self.config, self.folder)
            if self._checkpoint is not None:
                search.load_state_dict(self._checkpoint)
                self._speed = self._checkpoint.get("speed", 0.0)
                self._checkpoint = None
            # A fresh run shows α at initialisation before its first record (a viewer draws
            # it at once instead of after `record.log_every` steps); it is not logged.
            initial = None if self._latest else {
                "kind": "init", "epoch": 0, "step": 0, "time_s": 0.0, **search._arch_fields()}
            with self._cond:
                self._steps_per_epoch = search.steps_per_epoch
                self._live.update(search.strategy.live_values())
                self._latest = self._latest or initial
                self._version += 1
            self._loop(search)
        except NonFiniteLossError as exc:
            self._fail(str(exc))
        except Exception as exc:  # the thread must never die silently
            self.folder.write_error(traceback.format_exc())
            self._fail(_explain(exc, search))

    def _fail(self, message: str) -> None:
        with self._cond:
            self._set_state("failed", message)

    def _loop(self, search: Search) -> None:
        while True:
            with self._cond:
                self._apply_live(search)
                if self._pause_requested or self._budget == 0:
                    self._pause_requested = False
                    self._budget = None
                    self._checkpoint_now(search)
                    self._set_state("paused")
                while self._state == "paused" and not self._stop_requested:
                    self._cond.wait()
                    self._apply_live(search)
                if self._stop_requested:
                    self._checkpoint_now(search)
                    self._set_state("stopped")
                    return
                if search.done:
                    stop = search.early_stop
                    self._set_state("finished", f"stopped early: {stop.message}" if stop else None)
                    return
                if self._budget is not None:
                    self._budget -= 1
            started = time.perf_counter()
            records = search.step()
            took = time.perf_counter() - started
            with self._cond:
                for record in records:
                    self._add_record(record)
                self._step = search.step_count
                self._elapsed = search.elapsed()
                self._step_time = took if self._step_time is None else (
                    (1 - STEP_TIME_SMOOTHING) * self._step_time + STEP_TIME_SMOOTHING * took)
                self._version += 1
                if self._speed > 0 and not search.done:  # slow motion; controls wake it
                    self._cond.wait(max(0.0, 1.0 / self._speed - took))

    def _apply_live(self, search: Search) -> None:
        """Caller holds the condition. Applies and logs every pending live change."""
        while self._pending_live:
            name, value = self._pending_live.pop(0)
            previous = self._speed if name == "speed" else self._live.get(name)
            if name == "speed":
                self._speed = value
            else:
                search.strategy.set_live(name, value)
                self._live[name] = value
            record = {"kind": "live", "step": search.step_count + 1, "epoch": search.epoch,
                      "time_s": round(search.elapsed(), 4), "name": name, "value": value,
                      "previous": previous}
            self.folder.append_record(record)
            self._add_record(record)

    def _checkpoint_now(self, search: Search) -> None:
        state = search.state_dict()
        state["speed"] = self._speed
        self.folder.save_checkpoint(state)


def _explain(exc: Exception, search: Search | None) -> str:
    step = f"step {search.step_count}: " if search is not None else "while starting: "
    oom = getattr(__import__("torch").cuda, "OutOfMemoryError", ())
    if isinstance(exc, oom):
        return (step + "the GPU ran out of memory; try a smaller data.batch_size, fewer "
                "network.channels, or fewer network.layers / network.cells_per_stage")
    return f"{step}{type(exc).__name__}: {exc} (traceback in error.log)"


class RunRegistry:
    """Every run of this process, plus the finished ones found in the runs folder."""

    def __init__(self, runs_dir: str | Path = "runs") -> None:
        self.runs_dir = Path(runs_dir)
        self._runs: dict[str, SearchRun] = {}
        self._lock = threading.Lock()

    def create(self, config: SearchConfig, label: str = "") -> SearchRun:
        """A new run (not started: call `start()`)."""
        config = config.validate()
        run = SearchRun(config, RunFolder.create(self.runs_dir, config, label))
        return self._keep(run)

    def _keep(self, run: SearchRun) -> SearchRun:
        with self._lock:
            self._runs[run.run_id] = run
        return run

    def get(self, run_id: str) -> SearchRun | None:
        """A run of this process, or a dormant view of one on disk; None if unknown."""
        with self._lock:
            if run_id in self._runs:
                return self._runs[run_id]
        path = self.runs_dir / run_id
        if "/" in run_id or "\\" in run_id or not (path / "config.json").is_file():
            return None
        return SearchRun.open(path)

    def live_runs(self) -> list[SearchRun]:
        with self._lock:
            return list(self._runs.values())

    def list(self) -> list[RunSummary]:
        """Every run, newest first: live ones from memory, the rest from their folders."""
        with self._lock:
            live = dict(self._runs)
        summaries = []
        for folder in list_runs(self.runs_dir):
            run = live.get(folder.run_id)
            summaries.append(RunSummary.of_run(run) if run else RunSummary.of_folder(folder))
        return summaries

    def resume(self, run_id: str, epochs: int | None = None) -> SearchRun:
        with self._lock:
            current = self._runs.get(run_id)
        if current is not None and current.state in ("running", "paused", "created"):
            raise ValueError(f"run {run_id} is {current.state}; nothing to resume")
        if current is not None:
            current.join()
        return self._keep(SearchRun.resume_from(self.runs_dir / run_id, epochs))

    def branch(self, run_id: str, epoch: int, changes: dict[str, Any] | None = None
               ) -> SearchRun:
        """A new run from `run_id`'s checkpoint after `epoch`, with `changes`: live parameters
        by name (e.g. {"alpha_lr": 1e-3}) and/or config keys that leave the tensors' shapes
        alone (epochs, optim.*, record.*, strategy.order). Its history starts with the
        parent's records up to that point. Not started: call `start()`."""
        parent = RunFolder(self.runs_dir / run_id)
        if not (parent.path / "config.json").is_file():
            raise ValueError(f"run_id {run_id!r} is not a run under {self.runs_dir}")
        changes = dict(changes or {})
        live = {k: validate_live(k, changes.pop(k)) for k in list(changes)
                if k in LIVE_PARAMETERS}
        for key in changes:
            if not key.startswith(BRANCHABLE_PREFIXES):
                raise ValueError(f"{key} cannot change in a branch (it would change the "
                                 "network); start a new run instead")
        config = parent.read_config().with_changes(changes)
        checkpoint = parent.load_checkpoint(epoch)
        folder = RunFolder.create(self.runs_dir, config, label=f"branch-e{epoch}")
        for record in parent.read_records()[: checkpoint["records"]]:
            folder.append_record(record)
        checkpoint["records"] = folder.record_count
        lineage = {"parent": run_id, "epoch": epoch, "step": checkpoint["step_count"],
                   "changes": {**changes, **live}}
        folder.write_lineage(lineage)
        run = SearchRun(config, folder, checkpoint=checkpoint, lineage=lineage, live=live)
        return self._keep(run)

    def stop_all(self, timeout: float = 30.0) -> None:
        """Stop every live run and wait for its thread (the app calls this on shutdown)."""
        runs = self.live_runs()
        for run in runs:
            run.stop()
        for run in runs:
            run.join(timeout)


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table."""

    run_id: str
    state: str
    space: str
    dataset: str
    epoch: int
    epochs: int
    skip_count: int | None
    started: str
    parent: str | None

    @classmethod
    def of_run(cls, run: SearchRun) -> RunSummary:
        snap = run.snapshot()
        latest = snap.latest or {}
        return cls(run.run_id, snap.state, snap.config.space, snap.config.data.name, snap.epoch,
                   snap.config.epochs, latest.get("skip_count"), _started(run.folder),
                   (snap.lineage or {}).get("parent"))

    @classmethod
    def of_folder(cls, folder: RunFolder) -> RunSummary:
        config = json.loads((folder.path / "config.json").read_text())
        last = folder.last_record()
        lineage = folder.read_lineage() or {}
        return cls(folder.run_id, folder.effective_state(), config["space"],
                   config["data"]["name"], (last or {}).get("epoch", 0), config["epochs"],
                   (last or {}).get("skip_count"), _started(folder), lineage.get("parent"))


def _started(folder: RunFolder) -> str:
    """From the folder name (`RunFolder.create` begins it with the start time)."""
    try:
        stamp = time.strptime(folder.run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        stamp = time.localtime((folder.path / "config.json").stat().st_mtime)
    return time.strftime("%Y-%m-%d %H:%M", stamp)
