"""The run folder: the one format the CLI, the app and later tools share (see README).

    config.json      the full SearchConfig
    metrics.jsonl    append-only, one JSON record per line (kind "step" or "epoch"), flushed
    genotype.json    the cell derived from the latest α (DARTS Genotype / NB201 arch string)
    status.json      {"state": ..., "message": ...}
    checkpoints/     epoch_0001.pt, ... written atomically (write, then rename)

Every write that replaces a file goes through a temporary file and `os.replace`, so a crash
leaves either the old or the new file; a metrics line cut off by a crash is skipped on read.
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

STATES = ("created", "running", "paused", "finished", "stopped", "failed", "interrupted")


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
    """Reads and writes one run's folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_dir: str | Path, config: SearchConfig, label: str = "") -> RunFolder:
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
        folder = cls(path)
        folder.write_config(config)
        folder.write_status("created")
        return folder

    # -- writing ---------------------------------------------------------------------------
    def write_config(self, config: SearchConfig) -> None:
        _atomic_write_json(self.path / "config.json", config.to_dict())

    def append_record(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def write_status(self, state: str, message: str | None = None, **extra: Any) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}; got {state!r}")
        status = {"state": state, "updated": time.time(), "pid": os.getpid(), **extra}
        if message is not None:
            status["message"] = message
        _atomic_write_json(self.path / "status.json", status)

    def write_genotype(self, genotype: dict[str, Any]) -> None:
        _atomic_write_json(self.path / "genotype.json", genotype)

    def save_checkpoint(self, state: dict[str, Any], epoch: int) -> Path:
        directory = self.path / "checkpoints"
        directory.mkdir(exist_ok=True)
        path = directory / f"epoch_{epoch:04d}.pt"
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    # -- reading ---------------------------------------------------------------------------
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

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"state": "created"}

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
        """The checkpoint of `epoch`, or the latest one."""
        found = self.checkpoints()
        if not found:
            raise FileNotFoundError(f"run {self.run_id} has no checkpoint")
        if epoch is None:
            epoch = max(found)
        if epoch not in found:
            raise ValueError(
                f"epoch must be one of the checkpointed epochs {sorted(found)}; got {epoch}"
            )
        return torch.load(found[epoch], map_location="cpu", weights_only=False)


def list_runs(runs_dir: str | Path) -> list[RunFolder]:
    """Run folders under `runs_dir`, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [RunFolder(p) for p in root.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)
