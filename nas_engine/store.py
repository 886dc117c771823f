"""The run folder: the one format the CLI, the app and later tools share (see README).

    config.json      the full SearchConfig (its `kind` names the job that runs it)
    metrics.jsonl    append-only, one JSON record per line (kind "step", "epoch", "live" or
                     "evaluation")
    genotype.json    the cell derived from the latest α (DARTS Genotype / NB201 arch string)
    status.json      {"state": ..., "message": ..., "pid": ...}
    checkpoints/     epoch_0001.pt, ... after each epoch; latest.pt on pause/stop (mid-epoch);
                     each ends with its length and SHA-256 (`checkpoints.py`)
    lineage.json     for a branch: the parent run, the epoch it branched at, the changes
    error.log        the traceback when a run failed
    run.lock         locked (flock) by the process writing the folder, for the run's whole life

`RunFolder` reads a folder; `Recorder` is the only code that writes one, and holds the folder's
lock while it exists, so one process at a time writes a run (the OS drops the lock when that
process dies: a killed run never leaves a stale lock). Every write that replaces a file goes
through a temporary file and `os.replace`, so a crash leaves the old or the new file; temporary
files left by a kill or a full disk are removed when a Recorder next opens the folder. The log
is only appended to, except that a resume cuts it back to what its checkpoint had seen.

Readers skip a log line that is not a record (cut off by a crash, corrupted, `42`), but count it
as a line: a checkpoint stores how many lines the log had, so a resume cuts at the same place
whatever happened to the lines before it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from nas_engine import checkpoints
from nas_engine.checkpoints import DamagedCheckpoint
from nas_engine.config import SearchConfig
from nas_engine.states import RunState

Record = dict[str, Any]

CONFIG = "config.json"
LOG = "metrics.jsonl"
STATUS = "status.json"
LOCK = "run.lock"
CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"
LOCK_WAIT_S = 0.5  # how long an opener waits out a reader's brief probe of the lock
_TEMP = re.compile(r"\..+\.tmp\d+")  # what `_atomic_write_bytes` names its temporary files
# What the store and the runner read from every checkpoint (the job owns the rest).
CHECKPOINT_FIELDS: dict[str, tuple[type, ...]] = {
    "epoch": (int,), "step_count": (int,), "records": (int,), "config": (dict,)}


class RunFolderError(ValueError):
    """A file of a run folder that cannot be used as it is: `path` names it, `reason` says
    what is wrong with it (one line)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RunInUse(RunFolderError):
    """Another Recorder (in this process or another) holds the run's lock."""


def _write_all(f: Any, data: bytes) -> None:
    """Write every byte to an unbuffered file (a write may take only part on a full disk)."""
    view = memoryview(data)
    while view:
        view = view[f.write(view):]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one. On failure the
    temporary file goes (it would keep a full disk full) and the error names `path`."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb", buffering=0) as f:
            _write_all(f, data)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_record(line: bytes) -> Record | None:
    """A log line's record, or None for a line that is not one: every record the engine writes
    is a JSON object with a string `kind` and integer `step` and `epoch`."""
    try:
        record = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if (isinstance(record, dict) and isinstance(record.get("kind"), str)
            and _is_int(record.get("step")) and _is_int(record.get("epoch"))):
        return record
    return None


@dataclass(frozen=True)
class LogPrefix:
    """The first `lines` complete lines of a metrics log: their records and their size in
    bytes (where a resume cuts the log)."""

    records: list[Record]
    lines: int
    size: int


class Checkpoint(NamedTuple):
    """A checkpoint found to resume from, and the newer ones passed over as damaged."""

    state: dict[str, Any]
    path: Path
    skipped: tuple[DamagedCheckpoint, ...]


def unique_folder(root: Path, base: str) -> Path:
    """Make and return `root/base`, or `base-2`, `base-3`, ... where that exists (made
    atomically: two writers starting at once get two folders)."""
    path, n = root / base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = root / f"{base}-{n}"


class RunFolder:
    """Reads one run's folder (any process, any number of readers)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    # -- config and status -------------------------------------------------------------------
    def read_config(self) -> SearchConfig:
        """The validated config; RunFolderError names config.json and what is wrong in it."""
        data = self._read_json(CONFIG)
        try:
            return SearchConfig.from_dict(data)
        except (ValueError, TypeError) as exc:  # ConfigError names the setting
            raise RunFolderError(self.path / CONFIG, str(exc)) from None

    def read_status(self) -> dict[str, Any]:
        """status.json, checked; without one, the state `recorded_state` gives."""
        path = self.path / STATUS
        if not path.exists():
            return {"state": self._state_without_status().value}
        status = self._read_json(STATUS)
        if not isinstance(status, dict):
            raise RunFolderError(path, f"must be a JSON object; got {status!r:.40}")
        if status.get("state") not in {s.value for s in RunState}:
            raise RunFolderError(path, "state must be one of "
                                 f"{', '.join(s.value for s in RunState)}; got "
                                 f"{status.get('state')!r:.40}")
        if not isinstance(status.get("message") or "", str):
            raise RunFolderError(path, f"message must be text; got {status['message']!r:.40}")
        return status

    def recorded_state(self) -> RunState:
        """The state status.json holds (a run with records or checkpoints but no status.json,
        whose writer died before writing one, is `interrupted`, not `created`)."""
        return RunState(self.read_status()["state"])

    def effective_state(self) -> RunState:
        """The recorded state, except that a live run (created, running, paused) whose process
        is gone (killed, crashed, machine restarted) is `interrupted`."""
        status = self.read_status()
        state = RunState(status["state"])
        if state.is_live and not self._writer_alive(status):
            return RunState.INTERRUPTED
        return state

    def lock_holder(self) -> str | None:
        """Who holds the run's lock ("process 123 since 2025-01-02 10:00:00"), or None when no
        process does. A probe takes a shared lock for an instant; openers wait that out."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        finally:
            os.close(fd)  # drops the probe's own lock
        return None

    def _writer_alive(self, status: dict[str, Any]) -> bool:
        if (self.path / LOCK).exists():
            return self.lock_holder() is not None
        # A folder from before run locks: its writer's pid is all there is.
        return _process_alive(status.get("pid"))

    def _state_without_status(self) -> RunState:
        log = self.path / LOG
        started = self.checkpoints() or (log.exists() and log.stat().st_size > 0)
        return RunState.INTERRUPTED if started else RunState.CREATED

    def _read_json(self, name: str) -> Any:
        path = self.path / name
        try:
            return json.loads(path.read_bytes())
        except OSError as exc:
            raise RunFolderError(path, f"cannot be read ({exc.strerror})") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise RunFolderError(path, f"is not valid JSON ({exc})") from None

    def _read_optional(self, name: str) -> dict[str, Any] | None:
        """A JSON object a run may lack (lineage, genotype): None if missing or unreadable."""
        try:
            data = self._read_json(name)
        except RunFolderError:
            return None
        return data if isinstance(data, dict) else None

    def read_lineage(self) -> dict[str, Any] | None:
        return self._read_optional("lineage.json")

    def read_genotype(self) -> dict[str, Any] | None:
        return self._read_optional("genotype.json")

    # -- the metrics log ---------------------------------------------------------------------
    def read_records(self) -> list[Record]:
        """Every record; lines that are not records (a last line cut off by a crash, `42`,
        `{}`) are skipped."""
        return self._scan_log(None).records

    def log_prefix(self, lines: int) -> LogPrefix:
        """The log's first `lines` lines (what a checkpoint had seen); RunFolderError if it
        holds fewer (lines were removed since)."""
        prefix = self._scan_log(lines)
        if prefix.lines < lines:
            raise RunFolderError(self.path / LOG, f"holds {prefix.lines} complete lines, fewer "
                                 f"than the {lines} its checkpoint had seen (lines were removed)")
        return prefix

    def _scan_log(self, lines: int | None) -> LogPrefix:
        records, count, size = [], 0, 0
        try:
            f = open(self.path / LOG, "rb")
        except FileNotFoundError:
            return LogPrefix([], 0, 0)
        with f:
            for line in f:
                if not line.endswith(b"\n") or count == lines:
                    break  # a line cut off by a crash is not one the recorder finished
                count += 1
                size += len(line)
                record = _parse_record(line)
                if record is not None:
                    records.append(record)
        return LogPrefix(records, count, size)

    def last_record(self, kinds: tuple[str, ...] = ("epoch", "step", "evaluation")
                    ) -> Record | None:
        """The newest record of these kinds, reading the log from its end (runs lists stay
        fast however long the runs are)."""
        path = self.path / LOG
        if not path.exists():
            return None
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            block = 1 << 16
            tail = b""
            while end > 0:
                start = max(0, end - block)
                f.seek(start)
                tail = f.read(end - start) + tail
                end = start
                lines = tail.split(b"\n")
                for line in reversed(lines[1:] if start else lines):
                    record = _parse_record(line)
                    if record is not None and record["kind"] in kinds:
                        return record
                tail = lines[0] if start else b""
        return None

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoints(self) -> dict[int, Path]:
        """Saved checkpoints by epoch."""
        directory = self.path / CHECKPOINTS
        if not directory.is_dir():
            return {}
        found = {}
        for p in directory.glob("epoch_*.pt"):
            match = re.fullmatch(r"epoch_(\d+)\.pt", p.name)
            if match:
                found[int(match.group(1))] = p
        return dict(sorted(found.items()))

    def load_checkpoint(self, epoch: int | None = None) -> dict[str, Any]:
        """The checkpoint of `epoch`, or the newest usable one (see `newest_checkpoint`).
        A damaged or crafted file raises CheckpointError naming it."""
        if epoch is None:
            return self.newest_checkpoint().state
        found = self.checkpoints()
        if epoch not in found:
            raise ValueError(
                f"epoch must be one of the checkpointed epochs {sorted(found)}; got {epoch}"
            )
        return self._read_checkpoint(found[epoch], epoch)

    def newest_checkpoint(self) -> Checkpoint:
        """The newest checkpoint that loads: a mid-epoch latest.pt first, then the epochs from
        the last. Damaged ones are passed over (and named in `skipped`); a crafted one stops
        the search for one (RefusedCheckpoint)."""
        latest = self.path / CHECKPOINTS / LATEST
        candidates = [(latest, None)] if latest.is_file() else []
        candidates += [(path, epoch) for epoch, path in reversed(self.checkpoints().items())]
        skipped: list[DamagedCheckpoint] = []
        for path, epoch in candidates:
            try:
                return Checkpoint(self._read_checkpoint(path, epoch), path, tuple(skipped))
            except DamagedCheckpoint as exc:
                skipped.append(exc)
        if skipped:
            raise RunFolderError(self.path / CHECKPOINTS, "no usable checkpoint to continue "
                                 f"from ({skipped[0].path.name}: {skipped[0].reason})")
        raise FileNotFoundError(f"run {self.run_id} has no checkpoint to continue from")

    def _read_checkpoint(self, path: Path, epoch: int | None) -> dict[str, Any]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DamagedCheckpoint(path, f"cannot be read ({exc.strerror})") from None
        state = checkpoints.decode(data, path)
        for key, types in CHECKPOINT_FIELDS.items():
            if not isinstance(state.get(key), types) or isinstance(state.get(key), bool):
                raise DamagedCheckpoint(path, f"damaged: {key} is missing or of the wrong type")
        if epoch is not None and state["epoch"] != epoch:
            raise DamagedCheckpoint(path, f"damaged: it holds epoch {state['epoch']}")
        return state


class Recorder(RunFolder):
    """The one writer of a run folder: config, records (append, cut back on resume), status,
    genotype, lineage, error log and checkpoints. It holds the folder's lock from the moment
    it is made until `close()` (the run that owns it closes it when it ends), so a second
    Recorder of the same folder, in any process, raises RunInUse naming the first."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._lock_file: BinaryIO | None = _lock(self.path)  # or closed by GC, at the latest
        self._lines: int | None = None
        self._checkpoint_epochs: tuple[int, ...] | None = None
        _remove_temp_files(self.path)  # nobody else writes here: any left are a crash's

    @classmethod
    def create(cls, runs_dir: str | Path, config: SearchConfig, label: str = "") -> Recorder:
        """A new folder named by time, space, dataset and seed, unique under `runs_dir`."""
        root = Path(runs_dir)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{config.space}-{config.data.name}-s{config.seed}"
        if label:
            base += "-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")
        path = unique_folder(root, base)
        recorder = None
        try:
            recorder = cls(path)
            recorder.write_config(config)
            recorder.write_status(RunState.CREATED)
        except OSError:  # e.g. a full disk: leave no half-made run behind
            if recorder is not None:
                recorder.close()
            shutil.rmtree(path, ignore_errors=True)
            raise
        return recorder

    def close(self) -> None:
        """Release the folder's lock (the run is over); writing afterwards is a mistake."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @property
    def record_count(self) -> int:
        """Complete lines in metrics.jsonl, records or not: a checkpoint stores it, and a
        resume keeps that many lines."""
        if self._lines is None:
            self._lines = self._scan_log(None).lines
        return self._lines

    @property
    def checkpoint_epochs(self) -> tuple[int, ...]:
        """Epochs with a checkpoint, kept current as this recorder saves them (a snapshot
        offers them to branch from without listing the folder)."""
        if self._checkpoint_epochs is None:
            self._checkpoint_epochs = tuple(self.checkpoints())
        return self._checkpoint_epochs

    def write_config(self, config: SearchConfig) -> None:
        _atomic_write_json(self.path / CONFIG, config.to_dict())

    def append_record(self, record: Record) -> None:
        self.append_records([record])

    def append_records(self, records: list[Record]) -> None:
        """Append whole lines; on a failed write (a full disk) the log is cut back to where
        it was, so no half line is left for the next record to join."""
        count = self.record_count
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        path = self.path / LOG
        with open(path, "ab", buffering=0) as f:
            start = f.tell()
            try:
                _write_all(f, data)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    f.truncate(start)
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
        self._lines = count + len(records)

    def keep_records(self, prefix: LogPrefix) -> None:
        """Cut the log back to `prefix` (what a checkpoint had seen; `log_prefix`), in place:
        the steps after it run again on resume and write the same records again."""
        path = self.path / LOG
        if path.exists():
            os.truncate(path, prefix.size)
        self._lines = prefix.lines

    def write_status(self, state: RunState | str, message: str | None = None,
                     **extra: Any) -> None:
        """`state` is checked against RunState (a typo raises ValueError)."""
        status = {"state": RunState(state).value, "updated": time.time(), "pid": os.getpid(),
                  **extra}
        if message is not None:
            status["message"] = message
        _atomic_write_json(self.path / STATUS, status)

    def write_genotype(self, genotype: dict[str, Any]) -> None:
        _atomic_write_json(self.path / "genotype.json", genotype)

    def write_lineage(self, lineage: dict[str, Any]) -> None:
        _atomic_write_json(self.path / "lineage.json", lineage)

    def write_split(self, split: dict[str, Any]) -> None:
        """Which images the dataset holds out for testing (`ImageSet.test_split`)."""
        _atomic_write_json(self.path / "split.json", split)

    def write_error(self, text: str) -> None:
        _atomic_write_bytes(self.path / "error.log", text.encode())

    def save_checkpoint(self, state: dict[str, Any], epoch: int | None = None) -> Path:
        """After an epoch: `epoch_NNNN.pt`, and any older mid-epoch `latest.pt` goes. Without
        an epoch (pause, stop): `latest.pt`. Only a job's end of epoch gives an epoch, so an
        epoch checkpoint always holds an end-of-epoch state."""
        directory = self.path / CHECKPOINTS
        directory.mkdir(exist_ok=True)
        path = directory / (LATEST if epoch is None else f"epoch_{epoch:04d}.pt")
        _atomic_write_bytes(path, checkpoints.encode(state))
        if epoch is not None:
            (directory / LATEST).unlink(missing_ok=True)
            self._checkpoint_epochs = tuple(sorted({*self.checkpoint_epochs, epoch}))
        return path

    def write_weights(self, state_dict: dict[str, Any]) -> Path:
        """A retrained network's weights (`weights.pt`, the checkpoint format: its length and
        checksum at the end, loadable with `torch.load(weights_only=True)`)."""
        path = self.path / "weights.pt"
        _atomic_write_bytes(path, checkpoints.encode(state_dict))
        return path

    def set_aside(self, damaged: tuple[DamagedCheckpoint, ...]) -> None:
        """Rename damaged checkpoints to `<name>.damaged` (kept for a person to look at, no
        longer offered to branch or resume from)."""
        for exc in damaged:
            os.replace(exc.path, exc.path.with_name(exc.path.name + ".damaged"))
        self._checkpoint_epochs = None


def _lock(folder: Path) -> BinaryIO:
    """An exclusive flock on the folder's run.lock, noting who holds it inside; RunInUse
    when another holder has it."""
    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                holder = _holder(fd)
                os.close(fd)
                raise RunInUse(path, f"the run is in use by {holder}; wait for it to end or "
                               "stop it there") from None
            time.sleep(0.01)
    note = {"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    with contextlib.suppress(OSError):  # a full disk may refuse the note, not the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note).encode(), 0)
    return os.fdopen(fd, "r+b", buffering=0)


def _holder(fd: int) -> str:
    try:
        note = json.loads(os.pread(fd, 4096, 0))
        return f"process {int(note['pid'])} since {note['since']}"
    except (OSError, ValueError, TypeError, KeyError):  # written at this very moment
        return "another process"


def _remove_temp_files(folder: Path) -> None:
    for directory in (folder, folder / CHECKPOINTS):
        if directory.is_dir():
            for p in directory.iterdir():
                if _TEMP.fullmatch(p.name):
                    p.unlink(missing_ok=True)


def _process_alive(pid: Any) -> bool:
    if not _is_int(pid):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def check_runs_dir(path: str | Path) -> Path:
    """The runs root, made if missing and checked writable, before any work is done for a
    run there; ValueError in one line otherwise."""
    root = Path(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"{root} is a file, not a folder") from None
    except NotADirectoryError:
        raise ValueError(f"{root} is under a file, not a folder") from None
    except OSError as exc:
        raise ValueError(f"{root} cannot be made ({exc.strerror})") from None
    probe = root / f".write-test.tmp{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{root} is not writable ({exc.strerror})") from None
    return root


def list_runs(runs_dir: str | Path) -> list[RunFolder]:
    """Run folders under `runs_dir`, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [RunFolder(p) for p in root.iterdir() if (p / CONFIG).is_file()]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)
