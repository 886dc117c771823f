"""The run folder: the one format the CLI, the app and later tools share (see README).

    config.json      the full SearchConfig (its `kind` names the job that runs it)
    metrics.jsonl    append-only, one JSON record per line (kind "step" or "epoch"), flushed
    genotype.json    the cell derived from the latest α (DARTS Genotype / NB201 arch string)
    status.json      {"state": ..., "message": ..., "pid": ...}
    checkpoints/     epoch_0001.pt, ... after each epoch; latest.pt on pause/stop (mid-epoch)
    lineage.json     for a branch: the parent run, the epoch it branched at, the changes
    error.log        the traceback when a run failed

`RunFolder` reads a folder; `Recorder` is the only code that writes one (the run that owns
it holds the one Recorder), so every write goes through one place. Every write that replaces
a file goes through a temporary file and `os.replace`, so a crash leaves either the old or the
new file; a metrics line cut off by a crash is skipped on read.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from nas_engine.config import SearchConfig
from nas_engine.states import RunState


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


class RunFolder:
    """Reads one run's folder (any process, any number of readers)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def read_config(self) -> SearchConfig:
        return SearchConfig.from_json((self.path / "config.json").read_text())

    def read_records(self) -> list[dict[str, Any]]:
        """Every complete record; a last line cut off by a crash is skipped."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def last_record(self, kinds: tuple[str, ...] = ("epoch", "step")) -> dict[str, Any] | None:
        """The newest record of these kinds, reading the log from its end (runs lists stay
        fast however long the runs are)."""
        path = self.path / "metrics.jsonl"
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
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if record.get("kind") in kinds:
                        return record
                tail = lines[0] if start else b""
        return None

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"state": RunState.CREATED.value}

    def read_lineage(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / "lineage.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def effective_state(self) -> RunState:
        """The recorded state, except that a live run (created, running, paused) whose process
        is gone (killed, crashed, machine restarted) is `interrupted`."""
        status = self.read_status()
        state = RunState(status.get("state", RunState.CREATED))
        if state.is_live and not _process_alive(status.get("pid")):
            return RunState.INTERRUPTED
        return state

    def read_genotype(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / "genotype.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def checkpoints(self) -> dict[int, Path]:
        """Saved checkpoints by epoch."""
        directory = self.path / "checkpoints"
        if not directory.is_dir():
            return {}
        found = {}
        for p in directory.glob("epoch_*.pt"):
            match = re.fullmatch(r"epoch_(\d+)\.pt", p.name)
            if match:
                found[int(match.group(1))] = p
        return dict(sorted(found.items()))

    def load_checkpoint(self, epoch: int | None = None) -> dict[str, Any]:
        """The checkpoint of `epoch`, or the newest one (a mid-epoch `latest.pt` first)."""
        found = self.checkpoints()
        latest = self.path / "checkpoints" / "latest.pt"
        if epoch is None and latest.is_file():
            path = latest
        elif epoch is None and found:
            path = found[max(found)]
        elif epoch is not None and epoch in found:
            path = found[epoch]
        elif epoch is None:
            raise FileNotFoundError(f"run {self.run_id} has no checkpoint to continue from")
        else:
            raise ValueError(
                f"epoch must be one of the checkpointed epochs {sorted(found)}; got {epoch}"
            )
        return torch.load(path, map_location="cpu", weights_only=False)




class Recorder(RunFolder):
    """The one writer of a run folder: config, records (append, cut back on resume), status,
    genotype, lineage, error log and checkpoints. The run that owns the folder holds it, and
    a job (e.g. `Search`) receives it to log records and epoch checkpoints."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._record_count: int | None = None
        self._checkpoint_epochs: tuple[int, ...] | None = None

    @classmethod
    def create(cls, runs_dir: str | Path, config: SearchConfig, label: str = "") -> Recorder:
        """A new folder named by time, space, dataset and seed, unique under `runs_dir`."""
        root = Path(runs_dir)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{config.space}-{config.data.name}-s{config.seed}"
        if label:
            base += "-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")
        path, n = root / base, 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                n += 1
                path = root / f"{base}-{n}"
        recorder = cls(path)
        recorder.write_config(config)
        recorder.write_status(RunState.CREATED)
        return recorder

    @property
    def record_count(self) -> int:
        """Complete records in metrics.jsonl (a checkpoint stores it: what to keep on resume)."""
        if self._record_count is None:
            self._record_count = len(self.read_records())
        return self._record_count

    @property
    def checkpoint_epochs(self) -> tuple[int, ...]:
        """Epochs with a checkpoint, kept current as this recorder saves them (a snapshot
        offers them to branch from without listing the folder)."""
        if self._checkpoint_epochs is None:
            self._checkpoint_epochs = tuple(self.checkpoints())
        return self._checkpoint_epochs

    def write_config(self, config: SearchConfig) -> None:
        _atomic_write_json(self.path / "config.json", config.to_dict())

    def append_record(self, record: dict[str, Any]) -> None:
        count = self.record_count
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
        self._record_count = count + 1

    def keep_records(self, count: int) -> None:
        """Cut the log back to its first `count` records: what a checkpoint had seen. The steps
        after it are run again on resume and write the same records again."""
        kept = self.read_records()[:count]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept)
        _atomic_write_bytes(self.path / "metrics.jsonl", text.encode())
        self._record_count = len(kept)

    def write_status(self, state: RunState | str, message: str | None = None,
                     **extra: Any) -> None:
        """`state` is checked against RunState (a typo raises ValueError)."""
        status = {"state": RunState(state).value, "updated": time.time(), "pid": os.getpid(),
                  **extra}
        if message is not None:
            status["message"] = message
        _atomic_write_json(self.path / "status.json", status)

    def write_genotype(self, genotype: dict[str, Any]) -> None:
        _atomic_write_json(self.path / "genotype.json", genotype)

    def write_lineage(self, lineage: dict[str, Any]) -> None:
        _atomic_write_json(self.path / "lineage.json", lineage)

    def write_error(self, text: str) -> None:
        _atomic_write_bytes(self.path / "error.log", text.encode())

    def save_checkpoint(self, state: dict[str, Any], epoch: int | None = None) -> Path:
        """After an epoch: `epoch_NNNN.pt`, and any older mid-epoch `latest.pt` goes. Without
        an epoch (pause, stop): `latest.pt`. Only a job's end of epoch gives an epoch, so an
        epoch checkpoint always holds an end-of-epoch state."""
        directory = self.path / "checkpoints"
        directory.mkdir(exist_ok=True)
        path = directory / ("latest.pt" if epoch is None else f"epoch_{epoch:04d}.pt")
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, path)
        if epoch is not None:
            (directory / "latest.pt").unlink(missing_ok=True)
            self._checkpoint_epochs = tuple(sorted({*self.checkpoint_epochs, epoch}))
        return path


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
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


def list_runs(runs_dir: str | Path) -> list[RunFolder]:
    """Run folders under `runs_dir`, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [RunFolder(p) for p in root.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)
