"""The sweep's driver: Ray Tune runs one trial per point of the grid (`trial.tune_trial`, one
CPU each, `max_concurrent` at a time), and this process follows them, keeps `sweep.json`
current, and retrains each finished trial's final cell as a Ray task when asked
(`fanout.Fanout`), storing the results in the evaluations database itself: only the driver
writes SQLite.

The Tune experiment lives in the sweep's folder. `drive` on a folder whose experiment has
begun restores it (Tune's `Tuner.restore`): finished and failed trials stay as they are, the
others run again (each going on with its own run folder, `trial`), and finished trials whose
retrain was lost are sent again (the database skips the ones it has).

Tune pickles its callbacks with the experiment, so the callback here holds only the sweep's
path and hands every event to the `Driver` of this process that runs that sweep.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ray
from ray import tune

from nas_engine.device import available_cores
from nas_engine.evaluations import EvaluationsDB
from nas_engine.store import RunFolder
from nas_engine.sweep.fanout import Failed, Fanout, KeyColumns
from nas_engine.sweep.folder import SweepFolder
from nas_engine.sweep.results import final_cell_retrain
from nas_engine.sweep.trial import tune_trial

OBJECT_STORE_BYTES = 128 * 1024**2  # trials pass a few numbers; Ray's floor is 75 MiB
ENDED = ("finished", "failed")

_DRIVERS: dict[str, Driver] = {}  # sweep folder → the driver running it in this process


class SweepError(RuntimeError):
    """The sweep could not run (no Ray cluster at the address, Tune refused it)."""


class Driver:
    """One sweep's trials as sweep.json holds them, kept current from Tune's events."""

    def __init__(self, folder: SweepFolder,
                 on_change: Callable[[Driver], None] | None = None) -> None:
        self.folder = folder
        self.data = folder.read()
        self.trials: list[dict[str, Any]] = self.data["trials"]
        self.on_change = on_change
        self.retrain: str | None = self.data.get("retrain")
        self.fanout = (Fanout(EvaluationsDB(folder.runs_dir), self._retrained)
                       if self.retrain else None)
        self._retrain_of: dict[KeyColumns, list[int]] = {}  # key → the trials it serves

    @property
    def state(self) -> str:
        return self.data["driver"]["state"]

    # -- the run ---------------------------------------------------------------------------
    def run(self, address: str | None, max_concurrent: int) -> None:
        for trial in self.trials:  # a dead driver's trials run again
            if trial["state"] not in ENDED:
                trial["state"] = "pending"
        self.data["driver"] = {"state": "running", "pid": os.getpid(), "address": address,
                               "message": None,
                               "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        self._save()
        for trial in self.trials:
            if trial["state"] == "finished":
                self._send_retrain(trial)
        _DRIVERS[str(self.folder.path)] = self
        try:
            with _own_sigint():
                _tuner(self.folder, self.data, max_concurrent).fit()
            left = [t for t in self.trials if t["state"] not in ENDED]
            if self.fanout is not None and not left:  # stopped: the retrains wait too
                self.fanout.drain()
        except BaseException as exc:  # Ctrl-C outside Tune's own handler, or a failure
            interrupted = isinstance(exc, KeyboardInterrupt)
            self._end("interrupted" if interrupted else "failed",
                      None if interrupted else f"{exc}".splitlines()[0])
            raise
        finally:
            _DRIVERS.pop(str(self.folder.path), None)
        self._end("interrupted" if left else "finished", None)

    def _end(self, state: str, message: str | None) -> None:
        for trial in self.trials:
            if trial["state"] == "running":
                trial["state"] = "interrupted"
        self.data["driver"].update(state=state, message=message)
        self._save()

    def _save(self) -> None:
        self.folder.write(self.data)
        if self.on_change is not None:
            self.on_change(self)

    # -- Tune's events (through `_Events`) ---------------------------------------------------
    def started(self, index: int) -> None:
        self.trials[index]["state"] = "running"
        self._save()

    def result(self, index: int, result: dict[str, Any]) -> None:
        trial = self.trials[index]
        trial.update({k: result[k] for k in ("run_id", "epoch", "skip_count", "val_acc")
                      if k in result})
        self._save()

    def completed(self, index: int) -> None:
        trial = self.trials[index]
        trial.update(state="finished", message=None)
        self._send_retrain(trial)
        self._save()

    def errored(self, index: int, error: str) -> None:
        trial = self.trials[index]
        message = error
        if trial.get("run_id"):  # the run's own message ("step 6: the loss is not finite ...")
            with contextlib.suppress(ValueError):  # a folder that cannot be read
                status = RunFolder(self.folder.runs_dir / trial["run_id"]).read_status()
                message = status.get("message") or error
        trial.update(state="failed", message=message)
        self._save()

    def step(self) -> None:
        """Between Tune's steps: store the retrains that have come back."""
        if self.fanout is not None:
            self.fanout.collect()

    # -- retrains ----------------------------------------------------------------------------
    def _send_retrain(self, trial: dict[str, Any]) -> None:
        """The trial's final cell, retrained on a Ray task unless the database has it."""
        if self.fanout is None or not trial.get("run_id"):
            return
        config = final_cell_retrain(RunFolder(self.folder.runs_dir / trial["run_id"]),
                                    self.retrain, self.data.get("retrain_changes"))
        if config is None:
            return
        key = self.fanout.submit(config)
        served = self._retrain_of.setdefault(key, [])
        if trial["index"] not in served:
            served.append(trial["index"])
        trial["retrain"] = self.fanout.state(key)

    def _retrained(self, key: KeyColumns, outcome: Any) -> None:
        state = f"failed: {outcome.message}" if isinstance(outcome, Failed) else "done"
        for index in self._retrain_of.get(key, []):
            self.trials[index]["retrain"] = state
        self._save()


def _tuner(folder: SweepFolder, data: dict[str, Any], max_concurrent: int) -> tune.Tuner:
    """The sweep's Tune experiment: restored from its folder once it has begun, else new."""
    base = data["base"]
    resources = {"cpu": base.get("threads") or 1}
    if base["device"]["name"] == "cuda":  # one GPU a trial, where a cluster has them
        resources["gpu"] = 1
    trainable = tune.with_resources(tune_trial, resources)
    if tune.Tuner.can_restore(str(folder.path)):
        return tune.Tuner.restore(str(folder.path), trainable, resume_unfinished=True,
                                  resume_errored=False, restart_errored=False)
    points = [{"index": t["index"], "changes": t["point"]} for t in data["trials"]]
    space = {"base": data["base"], "runs_dir": str(folder.runs_dir), "label": data["name"],
             "point": tune.grid_search(points)}
    return tune.Tuner(
        trainable, param_space=space,
        # reuse_actors: a trial's worker goes on to the next trial (no new process importing
        # torch, seconds on a small machine)
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=folder.sweep_id, storage_path=str(folder.path.parent), verbose=0,
            callbacks=[_Events(str(folder.path))],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=0)))


def _trial_dirname(trial: Any) -> str:
    return f"trial-{trial.config['point']['index']:03d}"


class _Events(tune.Callback):
    """Tune's events, handed to the driver of this sweep in this process."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _driver(self) -> Driver:
        return _DRIVERS[self.path]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._driver().started(_index(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        self._driver().result(_index(trial), result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._driver().completed(_index(trial))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.get_error()
        self._driver().errored(_index(trial), str(error).strip().splitlines()[-1]
                               if error else "the trial failed")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._driver().step()


def _index(trial: Any) -> int:
    return int(trial.config["point"]["index"])


def drive(folder: SweepFolder, *, address: str | None = None,
          on_change: Callable[[Driver], None] | None = None) -> Driver:
    """Run the sweep in `folder` to its end (or go on with it), holding its lock, its own
    `max_concurrent` trials at a time (default: one per CPU of the cluster). Ray: the
    cluster at `address` (or RAY_ADDRESS), else a local one started for the sweep with
    every core, stopped after. SIGTERM stops it as Ctrl-C does (Tune saves its state; the
    sweep resumes with `drive` again)."""
    with folder.driving(), _sigterm_as_sigint():
        driver = Driver(folder, on_change)
        address = address or os.environ.get("RAY_ADDRESS") or None
        started = connect(address)
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            driver.run(address, driver.data.get("max_concurrent") or cpus)
        finally:
            if started:
                ray.shutdown()
    return driver


def connect(address: str | None) -> bool:
    """Connect to the Ray cluster at `address`, or start a local one (every core, no
    dashboard, a small object store); True when this call did either (the caller shuts Ray
    down after), False when Ray was already up in this process."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's plain reporter: verbose=0 is quiet
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:  # "local": a new cluster even where `ray start` left one behind
        ray.init(address="local", num_cpus=available_cores(), include_dashboard=False,
                 object_store_memory=OBJECT_STORE_BYTES, **quiet)
        return True
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepError(f"--address {address}: no Ray cluster answered there ({reason})"
                         ) from None
    return True


@contextmanager
def _own_sigint() -> Iterator[None]:
    """Put back the Ctrl-C handler after Tune's run: Tune restores its own only when a signal
    came (else the next Ctrl-C would only set Tune's stale flag)."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)


@contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM (the app's Stop, a scheduler) becomes Ctrl-C, which Tune handles by saving its
    state and stopping the trials. Only the main thread may set handlers."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
