"""Live runs: a `Run` drives a job (the loop of its config's kind, `JOBS`) in a daemon thread
that people can pause, step, retune and stop while they watch; `RunRegistry` holds every run of
the process. The app and the CLI drive runs through the same `Run`, so Stop in the browser and
Ctrl-C in a terminal do the same thing.

Threading rule: the UI never touches the model. Control methods only leave a request under the
run's condition variable; the worker applies requests between steps, so a step is never cut in
half and every change has a well-defined first step. Readers call `snapshot()`, which copies
nothing large (see `history.py`).

CPU threads: `torch.set_num_threads` is process-wide. Runs of one process share that pool
(cores − 1 by default); each run's Python thread releases the GIL inside torch ops, so two runs
on one pool each go at about half speed, and none blocks another.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nas_engine.catalog import TABULAR_DATASETS
from nas_engine.checkpoints import DamagedCheckpoint
from nas_engine.config import SearchConfig
from nas_engine.data import load_images
from nas_engine.device import resolve_device
from nas_engine.discrete.job import DiscreteSearch
from nas_engine.evaluation.training import training_job
from nas_engine.history import History
from nas_engine.live import live_parameters, validate_live
from nas_engine.loop import NonFiniteLossError
from nas_engine.search import Search
from nas_engine.snapshot import SPEED, Snapshot
from nas_engine.spaces import SPACES, make_space
from nas_engine.states import RunState
from nas_engine.store import Recorder, RunFolder, RunFolderError, list_runs
from nas_engine.tabular import load_tabular

Record = dict[str, Any]

EPOCH_KINDS = ("epoch", "evaluation")  # records a snapshot's `epochs` hold (one per unit)
STEP_TIME_SMOOTHING = 0.1  # weight of the newest step in the ETA's moving average

# Config keys a branch may change (the checkpoint's tensors fix everything else).
BRANCHABLE_PREFIXES = ("epochs", "optim.", "record.", "strategy.order", "strategy.fd_radius",
                       "discrete.seconds", "discrete.sample")
# Config keys in which config.json may differ from its checkpoint's config: how long a run goes
# (resume --epochs extends it) and where it runs. Any other difference is an edited config.json.
RESUMABLE_CHANGES = ("epochs", "device", "threads")


class Job(Protocol):
    """What a `Run` drives: a loop advanced one step at a time that logs through its
    `Recorder` and can be checkpointed between any two steps (`Search` is one)."""

    @property
    def steps_per_epoch(self) -> int: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def step_count(self) -> int: ...
    @property
    def epoch(self) -> int: ...  # epochs completed
    @property
    def done(self) -> bool: ...
    @property
    def finish_message(self) -> str | None: ...  # why it ended early, if it did

    def step(self) -> list[Record]: ...  # the records this step produced (already logged)
    def elapsed(self) -> float: ...
    def state_dict(self) -> dict[str, Any]: ...  # holds store.CHECKPOINT_FIELDS and the rest
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def initial_record(self) -> Record: ...  # what a viewer draws before the first record
    def live_values(self) -> dict[str, float]: ...
    def set_live(self, name: str, value: float) -> None: ...


# The job of each run kind (config.RUN_KINDS): a new kind is one entry here.
JOBS: dict[str, Callable[[SearchConfig, Recorder], Job]] = {"search": Search,
                                                             "train": training_job,
                                                             "discrete": DiscreteSearch}


def preflight(config: SearchConfig) -> SearchConfig:
    """Check what can be checked before a run folder exists: the settings, the device and the
    data (loaded once here, then again by the job: a second or two for CIFAR-10, nothing for
    the digits). The CLI calls it so that a mistake leaves no run folder; raises ValueError or
    FileNotFoundError with a one-line message."""
    config = config.validate()
    resolve_device(config.device.name)
    tabular = config.data.name in TABULAR_DATASETS
    (load_tabular if tabular else load_images)(config.data, config.seed)
    return config


class Run:
    """One job in a background thread, controlled between steps. Built on a `Recorder` it owns
    its folder, and holds the folder's lock until its thread ends (or, never started, until
    `stop`); built on a plain `RunFolder` (`open`) it is a read-only view."""

    def __init__(self, config: SearchConfig, folder: RunFolder, *,
                 checkpoint: dict[str, Any] | None = None, lineage: dict[str, Any] | None = None,
                 live: dict[str, float] | None = None,
                 state: RunState = RunState.CREATED,
                 records: list[Record] | None = None) -> None:
        """`records`: the history to start from (default: every record in the folder)."""
        self.config = config.validate()
        self.folder = folder
        self._recorder = folder if isinstance(folder, Recorder) else None
        self.run_id = folder.run_id
        self._checkpoint = checkpoint
        self._lineage = lineage
        space = make_space(self.config) if self.config.space in SPACES else None
        self._edge_labels = tuple(space.edge_labels()) if space else ()
        # α: searches only
        shapes = space.alpha_shapes() if space and self.config.kind == "search" else {}
        self._steps = History(shapes)
        self._epochs = History(shapes)
        self._live_changes: list[Record] = []
        self._checkpoint_epochs = tuple(folder.checkpoints())
        self._cond = threading.Condition()
        self._state = state
        self._message: str | None = None
        self._version = 0
        self._step = 0
        self._epoch = 0
        self._steps_per_epoch = 0
        self._total_steps = 0
        self._elapsed = 0.0
        self._step_time: float | None = None
        self._latest: Record | None = None
        self._speed = 0.0
        self._live: dict[str, float] = {}
        self._pending_live: list[tuple[str, float]] = list((live or {}).items())
        self._pause_requested = False
        self._stop_requested = False
        self._budget: int | None = None  # steps left to run before pausing (step / step_epoch)
        self._thread: threading.Thread | None = None
        self._status_pending = False  # a state set by a control, for the worker to write
        self.notices: tuple[str, ...] = ()  # what a resume passed over (damaged checkpoints)
        for record in folder.read_records() if records is None else records:
            try:
                self._add_record(record)
            except (KeyError, TypeError, ValueError) as exc:  # a line edited into nonsense
                raise RunFolderError(folder.path / "metrics.jsonl", f"the {record['kind']} "
                                     f"record of step {record['step']} is not one this run "
                                     f"writes ({type(exc).__name__}: {exc})") from None

    # -- construction from disk --------------------------------------------------------------
    @classmethod
    def open(cls, run_dir: str | Path) -> Run:
        """A read-only view of a run folder (finished, stopped, interrupted, or live in another
        process): its history and state, no thread, no controls."""
        folder = RunFolder(run_dir)
        run = cls(folder.read_config(), folder, lineage=folder.read_lineage(),
                  state=folder.effective_state())
        run._message = folder.read_status().get("message")
        return run

    @classmethod
    def resume_from(cls, run_dir: str | Path, epochs: int | None = None) -> Run:
        """Continue a stopped or interrupted run in its own folder from its newest usable
        checkpoint (damaged newer ones are set aside and named in `notices`); the records
        after it are cut and, the job being deterministic, written again identically.
        `epochs` may extend the run. Everything is checked, and the run built, before the
        folder changes: a refused resume leaves it as it was. RunInUse while another process
        (or Run) has the folder."""
        recorder = Recorder(run_dir)  # the lock first: nothing may change under the checks
        try:
            return cls._resume(recorder, epochs)
        except BaseException:
            recorder.close()
            raise

    @classmethod
    def _resume(cls, recorder: Recorder, epochs: int | None) -> Run:
        # Whatever status.json says (running, say), holding the lock means no process runs it.
        state = recorder.recorded_state()
        if state is RunState.FINISHED and epochs is None:
            raise ValueError(f"run {recorder.run_id} is finished; give epochs to extend it")
        config = recorder.read_config()
        if epochs is not None:
            config = config.with_changes({"epochs": epochs})
        found = recorder.newest_checkpoint()
        checkpoint = found.state
        _check_same_search(config, checkpoint["config"], recorder.path / "config.json",
                           found.path, RESUMABLE_CHANGES)
        if config.epochs <= checkpoint["epoch"] and epochs is not None:
            raise ValueError(f"epochs must be more than the {checkpoint['epoch']} already done; "
                             f"got {epochs}")
        prefix = recorder.log_prefix(checkpoint["records"])
        run = cls(config, recorder, checkpoint=checkpoint, lineage=recorder.read_lineage(),
                  records=prefix.records)
        # Checked and built: only now does the folder change.
        recorder.keep_records(prefix)
        recorder.set_aside(found.skipped)
        recorder.write_config(config)
        run._checkpoint_epochs = recorder.checkpoint_epochs
        run.notices = tuple(f"{exc}; resuming from {found.path.name}" for exc in found.skipped)
        return run

    # -- controls (any thread) ---------------------------------------------------------------
    def start(self) -> Run:
        with self._cond:
            self._require_owner()
            if self._thread is not None:
                raise RuntimeError(f"run {self.run_id} was already started")
            if self._state is not RunState.CREATED:
                raise RuntimeError(f"run {self.run_id} is {self._state}; it cannot start")
            self._set_state(RunState.RUNNING)
        self._thread = threading.Thread(target=self._work, daemon=True,
                                        name=f"{self.config.kind}-{self.run_id}")
        self._thread.start()
        return self

    def pause(self) -> None:
        with self._cond:
            self._require_owner()
            if self._state is RunState.RUNNING:
                self._pause_requested = True
                self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._require_owner()
            if self._state is RunState.PAUSED:
                self._budget = None
                self._set_state(RunState.RUNNING)
                self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """Advance exactly `n` steps, then stay paused."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1; got {n!r}")
        with self._cond:
            self._require_controllable()
            self._budget = n
            self._set_state(RunState.RUNNING)
            self._cond.notify_all()

    def step_epoch(self) -> None:
        """Run to the end of the current epoch, then stay paused."""
        with self._cond:
            self._require_controllable()
            spe = self._steps_per_epoch
            self._budget = spe - self._step % spe if spe else 1
            self._set_state(RunState.RUNNING)
            self._cond.notify_all()

    def stop(self) -> None:
        """Finish the current step, checkpoint to latest.pt, mark stopped (the thread then
        ends)."""
        with self._cond:
            recorder = self._require_owner()
            if self._thread is None and self._state is RunState.CREATED:
                self._set_state(RunState.STOPPED)
                with contextlib.suppress(OSError):  # a full disk: the state stays in memory
                    self._write_status(recorder)
                recorder.close()  # never started: its life ends here
            self._stop_requested = True
            self._cond.notify_all()

    def set(self, name: str, value: float) -> None:
        """Change a live parameter from the next step on (validated now, logged then)."""
        value = validate_live(self.config, name, value)
        with self._cond:
            if not self._state.is_live:
                raise ValueError(f"run {self.run_id} is {self._state}; nothing is live any more")
            self._require_owner()
            self._pending_live.append((name, value))
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_for(self, predicate: Callable[[Snapshot], bool], timeout: float = 60.0) -> bool:
        """Block until `predicate(snapshot)` holds or the timeout passes (tests, scripts)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.snapshot()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _require_owner(self) -> Recorder:
        if self._recorder is None:
            raise RuntimeError(f"run {self.run_id} is {self._state} and not run by this "
                               "process; control it where it runs")
        return self._recorder

    def _require_controllable(self) -> None:
        self._require_owner()
        if not self._state.is_controllable:
            raise RuntimeError(f"run {self.run_id} is {self._state}; start or resume it first")

    # -- reading (any thread) ----------------------------------------------------------------
    @property
    def state(self) -> RunState:
        return self._state

    def snapshot(self) -> Snapshot:
        with self._cond:
            left = self._total_steps - self._step
            eta = None if self._step_time is None else max(left, 0) * self._step_time
            return Snapshot(
                run_id=self.run_id, config=self.config, state=self._state,
                message=self._message, version=self._version, step=self._step,
                epoch=self._epoch, steps_per_epoch=self._steps_per_epoch,
                total_steps=self._total_steps, elapsed_s=self._elapsed, eta_s=eta,
                latest=self._latest, steps=self._steps.view(), epochs=self._epochs.view(),
                live={**self._live, SPEED: self._speed},
                live_changes=tuple(self._live_changes), lineage=self._lineage,
                edge_labels=self._edge_labels, checkpoint_epochs=self._checkpoint_epochs,
            )

    # -- the worker --------------------------------------------------------------------------
    def _set_state(self, state: RunState, message: str | None = None) -> None:
        """Caller holds the condition. The worker writes status.json (`_write_status`), so
        that a disk refusing the write fails the run there instead of a control call."""
        self._state = state
        self._message = message
        self._version += 1
        self._status_pending = self._recorder is not None
        self._cond.notify_all()

    def _write_status(self, recorder: Recorder) -> None:
        """Caller holds the condition."""
        if self._status_pending:
            recorder.write_status(self._state, self._message, step=self._step)
            self._status_pending = False

    def _add_record(self, record: Record) -> None:
        kind = record.get("kind")
        if kind == "live":
            self._live_changes.append(record)
            return
        (self._epochs if kind in EPOCH_KINDS else self._steps).append(record)
        self._latest = record
        self._step, self._epoch = record["step"], record["epoch"]
        self._live.update(record.get("live", {}))
        self._version += 1

    def _work(self) -> None:
        job: Job | None = None
        recorder = self._recorder
        assert recorder is not None  # start() refuses views
        try:
            with self._cond:
                self._write_status(recorder)  # running
            job = JOBS[self.config.kind](self.config, recorder)
            if self._checkpoint is not None:
                job.load_state_dict(self._checkpoint)
                self._speed = self._checkpoint.get(SPEED, 0.0)
                self._checkpoint = None
            # A fresh run shows its initial state before its first record (a viewer draws it
            # at once instead of after `record.log_every` steps); it is not logged.
            initial = None if self._latest else job.initial_record()
            with self._cond:
                self._steps_per_epoch = job.steps_per_epoch
                self._total_steps = job.total_steps
                self._live.update(job.live_values())
                self._latest = self._latest or initial
                self._version += 1
            self._loop(job, recorder)
        except NonFiniteLossError as exc:
            self._fail(str(exc), recorder)
        except OSError as exc:  # a full disk, a folder removed under the run
            self._fail(_explain_os_error(exc, job, recorder.path), recorder)
        except Exception as exc:  # the thread must never die silently
            self._fail(_explain(exc, job), recorder)
        finally:
            recorder.close()  # the run's life, and so its lock, ends with this thread

    def _fail(self, message: str, recorder: Recorder) -> None:
        """Mark the run failed, the traceback in error.log. Neither write may kill the thread:
        when the disk refuses them, the state and message live on in memory (snapshots show
        them) and status.json keeps the old state of a now dead writer (interrupted)."""
        try:
            recorder.write_error(traceback.format_exc())
            message += " (traceback in error.log)"
        except OSError:
            pass
        with self._cond:
            self._set_state(RunState.FAILED, message)
            with contextlib.suppress(OSError):
                self._write_status(recorder)

    def _loop(self, job: Job, recorder: Recorder) -> None:
        while True:
            with self._cond:
                self._apply_live(job, recorder)
                if self._pause_requested or self._budget == 0:
                    self._pause_requested = False
                    self._budget = None
                    self._checkpoint_now(job, recorder)
                    self._set_state(RunState.PAUSED)
                self._write_status(recorder)
                while self._state is RunState.PAUSED and not self._stop_requested:
                    self._cond.wait()
                    self._apply_live(job, recorder)
                if self._stop_requested:
                    self._checkpoint_now(job, recorder)
                    self._set_state(RunState.STOPPED)
                    self._write_status(recorder)
                    return
                if job.done:
                    self._set_state(RunState.FINISHED, job.finish_message)
                    self._write_status(recorder)
                    return
                self._write_status(recorder)  # running again after a resume or a step
                if self._budget is not None:
                    self._budget -= 1
            started = time.perf_counter()
            records = job.step()
            took = time.perf_counter() - started
            with self._cond:
                for record in records:
                    self._add_record(record)
                self._step = job.step_count
                self._elapsed = job.elapsed()
                self._checkpoint_epochs = recorder.checkpoint_epochs
                self._step_time = took if self._step_time is None else (
                    (1 - STEP_TIME_SMOOTHING) * self._step_time + STEP_TIME_SMOOTHING * took)
                self._version += 1
                if self._speed > 0 and not job.done:  # slow motion; controls wake it
                    self._cond.wait(max(0.0, 1.0 / self._speed - took))

    def _apply_live(self, job: Job, recorder: Recorder) -> None:
        """Caller holds the condition. Applies and logs every pending live change."""
        while self._pending_live:
            name, value = self._pending_live.pop(0)
            previous = self._speed if name == SPEED else self._live.get(name)
            if name == SPEED:
                self._speed = value
            else:
                job.set_live(name, value)
                self._live[name] = value
            record = {"kind": "live", "step": job.step_count + 1, "epoch": job.epoch,
                      "time_s": round(job.elapsed(), 4), "name": name, "value": value,
                      "previous": previous}
            recorder.append_record(record)
            self._add_record(record)

    def _checkpoint_now(self, job: Job, recorder: Recorder) -> None:
        """latest.pt (pause, stop): a state anywhere in an epoch, never an epoch checkpoint."""
        state = job.state_dict()
        state[SPEED] = self._speed
        recorder.save_checkpoint(state)


def _where(job: Job | None) -> str:
    return f"step {job.step_count}: " if job is not None else "while starting: "


def _explain(exc: Exception, job: Job | None) -> str:
    oom = getattr(__import__("torch").cuda, "OutOfMemoryError", ())
    if isinstance(exc, oom):
        return (_where(job) + "the GPU ran out of memory; try a smaller data.batch_size, "
                "fewer network.channels, or fewer network.layers / network.cells_per_stage")
    return f"{_where(job)}{type(exc).__name__}: {exc}"


def _explain_os_error(exc: OSError, job: Job | None, folder: Path) -> str:
    """E.g. "step 8: could not write checkpoints/epoch_0002.pt: no space left on device"."""
    what = (exc.strerror or str(exc)).lower()
    if exc.filename is None:
        return f"{_where(job)}{what}"
    path = Path(exc.filename)
    if not path.is_relative_to(folder):  # not the run folder's (e.g. the data's)
        return f"{_where(job)}{path}: {what}"
    return f"{_where(job)}could not write {path.relative_to(folder)}: {what}"


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _check_same_search(config: SearchConfig, saved: dict[str, Any], config_path: Path,
                       checkpoint_path: Path, may_differ: tuple[str, ...]) -> None:
    """A checkpoint's tensors fit the config it was made with: config.json must still be that
    config, but for the keys in `may_differ` (RunFolderError naming the first other key)."""
    try:
        theirs = _flat(SearchConfig.from_dict(saved).to_dict())
    except (ValueError, TypeError) as exc:
        raise DamagedCheckpoint(checkpoint_path, f"damaged: its config is invalid ({exc})"
                                ) from None
    ours = _flat(config.to_dict())
    for key in sorted(ours.keys() | theirs.keys()):
        if ours.get(key) != theirs.get(key) and not key.startswith(may_differ):
            raise RunFolderError(config_path, f"{key} is {ours.get(key)!r}, but the checkpoint "
                                 f"{checkpoint_path.name} was made with {theirs.get(key)!r} "
                                 "(config.json was changed after the run: put it back)")


def start_in_turn(runs: Sequence[Run], at_once: int) -> threading.Thread:
    """Start created `runs`, `at_once` at a time, each as soon as an earlier one has ended (in
    a daemon thread): runs of one process share its cores and interpreter lock, so twenty at
    once all crawl, while in turn the first results come early. A run stopped before its
    turn is passed over."""
    def work() -> None:
        going: list[Run] = []
        for run in runs:
            while len(going) >= at_once:
                going[0].join(0.5)
                going = [r for r in going if r.state.is_live]
            with contextlib.suppress(RuntimeError):  # stopped before its turn
                going.append(run.start())

    thread = threading.Thread(target=work, daemon=True, name="start-in-turn")
    thread.start()
    return thread


class RunRegistry:
    """Every run of this process, plus the ones found in the runs folder."""

    def __init__(self, runs_dir: str | Path = "runs") -> None:
        self.runs_dir = Path(runs_dir)
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def create(self, config: SearchConfig, label: str = "",
               lineage: dict[str, Any] | None = None) -> Run:
        """A new run of `config.kind` (not started: call `start()`); `lineage` names where it
        came from (a retrain: the search and epoch of its cell)."""
        config = config.validate()
        recorder = Recorder.create(self.runs_dir, config, label)
        if lineage is not None:
            recorder.write_lineage(lineage)
        return self._keep(Run(config, recorder, lineage=lineage))

    def _keep(self, run: Run) -> Run:
        with self._lock:
            self._runs[run.run_id] = run
        return run

    def get(self, run_id: str) -> Run | None:
        """A run of this process, or a read-only view of one on disk; None if unknown."""
        with self._lock:
            if run_id in self._runs:
                return self._runs[run_id]
        path = self.runs_dir / run_id
        if "/" in run_id or "\\" in run_id or not (path / "config.json").is_file():
            return None
        return Run.open(path)

    def live_runs(self) -> list[Run]:
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
        return summaries  # a folder that cannot be read is a row with its `problem`

    def resume(self, run_id: str, epochs: int | None = None) -> Run:
        """`Run.resume_from` for a run of this folder (ValueError, with RunInUse among them,
        when it cannot resume; the folder is then as it was)."""
        with self._lock:
            current = self._runs.get(run_id)
        if current is not None and current.state.is_live:
            raise ValueError(f"run {run_id} is {current.state}; nothing to resume")
        if current is not None:
            current.join()
        return self._keep(Run.resume_from(self.runs_dir / run_id, epochs))

    def branch(self, run_id: str, epoch: int, changes: dict[str, Any] | None = None) -> Run:
        """A new run from `run_id`'s checkpoint after `epoch`, with `changes`: live parameters
        by name (e.g. {"alpha_lr": 1e-3}) and/or config keys that leave the tensors' shapes
        alone (epochs, optim.*, record.*, strategy.order). Its history starts with the
        parent's records up to that point. Not started: call `start()`. A damaged or crafted
        checkpoint, or a config.json edited since it, raises ValueError naming the file."""
        parent = RunFolder(self.runs_dir / run_id)
        if not (parent.path / "config.json").is_file():
            raise ValueError(f"run_id {run_id!r} is not a run under {self.runs_dir}")
        changes = dict(changes or {})
        config = parent.read_config()
        checkpoint = parent.load_checkpoint(epoch)
        _check_same_search(config, checkpoint["config"], parent.path / "config.json",
                           parent.checkpoints()[epoch], RESUMABLE_CHANGES)
        prefix = parent.log_prefix(checkpoint["records"])
        declared = live_parameters(config)
        live = {k: validate_live(config, k, changes.pop(k)) for k in list(changes)
                if k in declared}
        for key in changes:
            if not key.startswith(BRANCHABLE_PREFIXES):
                raise ValueError(f"{key} cannot change in a branch (it would change the "
                                 "network); start a new run instead")
        config = config.with_changes(changes)
        recorder = Recorder.create(self.runs_dir, config, label=f"branch-e{epoch}")
        recorder.append_records(prefix.records)
        checkpoint["records"] = recorder.record_count
        lineage = {"parent": run_id, "epoch": epoch, "step": checkpoint["step_count"],
                   "changes": {**changes, **live}}
        recorder.write_lineage(lineage)
        return self._keep(Run(config, recorder, checkpoint=checkpoint, lineage=lineage,
                              live=live))

    def stop_all(self, timeout: float = 30.0) -> None:
        """Stop every live run and wait for its thread (the app calls this on shutdown)."""
        runs = self.live_runs()
        for run in runs:
            run.stop()
        for run in runs:
            run.join(timeout)


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table. A folder that cannot be read is a row too, so that one bad
    folder hides no other: its `problem` says why ("unreadable: config.json: ...") and the
    fields it could not give are None."""

    run_id: str
    kind: str | None
    state: RunState | None
    space: str | None
    dataset: str | None
    epoch: int | None
    epochs: int | None
    skip_count: int | None
    alarm: dict[str, Any] | None  # the collapse alarm of the newest epoch, once one fired
    started: str
    parent: str | None
    problem: str | None = None

    @classmethod
    def of_run(cls, run: Run) -> RunSummary:
        snap = run.snapshot()
        latest = snap.latest or {}
        alarm = snap.epochs.alarms[-1] if len(snap.epochs) else None
        return cls(run.run_id, snap.config.kind, snap.state, snap.config.space,
                   snap.config.data.name, snap.epoch, snap.config.epochs,
                   latest.get("skip_count"), alarm, _started(run.folder),
                   (snap.lineage or {}).get("parent"))

    @classmethod
    def of_folder(cls, folder: RunFolder) -> RunSummary:
        """From the folder's files alone: the config and the log's last lines (a long run
        lists as fast as a short one)."""
        try:
            config = folder.read_config()
            state = folder.effective_state()
            last = folder.last_record() or {}
            last_epoch = folder.last_record(("epoch",)) or {}
        except RunFolderError as exc:
            problem = f"{exc.path.relative_to(folder.path)}: {exc.reason}"
        except OSError as exc:  # e.g. permission denied
            problem = f"{Path(exc.filename or folder.path).name}: {exc.strerror}"
        else:
            lineage = folder.read_lineage() or {}
            return cls(folder.run_id, config.kind, state, config.space, config.data.name,
                       last.get("epoch", 0), config.epochs, last.get("skip_count"),
                       last_epoch.get("alarm"), _started(folder), lineage.get("parent"))
        return cls(folder.run_id, None, None, None, None, None, None, None, None,
                   _started(folder), None, problem=f"unreadable: {problem}")


def _started(folder: RunFolder) -> str:
    """From the folder name (`Recorder.create` begins it with the start time)."""
    try:
        stamp = time.strptime(folder.run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        stamp = time.localtime((folder.path / "config.json").stat().st_mtime)
    return time.strftime("%Y-%m-%d %H:%M", stamp)
