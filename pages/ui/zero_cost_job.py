"""A proxy study computed by the command line in a process of its own (`python -m nas_engine
proxies`), started from the Zero-cost page. Its retrains take minutes to hours, far longer
than a script run, and a process of its own outlives the tab (and the server); the page
follows it by re-reading the evaluations database, so this module only starts it, keeps one
process per plan, and says how it ended.

Files under `<runs root>/proxy-studies/`: `<plan id>.pid` while it runs (made exclusively:
two tabs pressing Compute start one process), `<plan id>.log` its output, `<plan id>.exit`
its exit code once this server saw it end.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from nas_engine.evaluation.training import evaluation_key
from nas_engine.proxies.study import StudyPlan
from pages.ui import common

FOLDER = "proxy-studies"
TAIL_BYTES = 8192  # enough of the log's end for its last lines
_children: dict[Path, subprocess.Popen[bytes]] = {}  # this server's studies, by pid file
_lock = threading.Lock()


def plan_id(plan: StudyPlan) -> str:
    """A file name for the plan: readable, plus a digest of the cells' database keys (plans
    that retrain the same keys are the same study)."""
    keys = json.dumps([evaluation_key(c).columns() for c in plan.configs])
    digest = hashlib.sha256(keys.encode()).hexdigest()[:10]
    return (f"{plan.space}-{plan.configs[0].data.name}-n{plan.sample}-seed{plan.seed}-"
            f"{digest}")


def cli_arguments(plan: StudyPlan, proxies: list[str], settings: list[str], runs_dir: Path,
                  quiet: bool = True, one_shot: str | None = None) -> list[str]:
    """`python -m nas_engine proxies` arguments computing `plan` (`settings`: its `key=value`
    lines, as typed) into the evaluations database under `runs_dir`, with the one-shot column
    of the search run `one_shot` if given; `quiet`: without the progress line (a log file has
    no use for it). A torchvision set is read from the server's data folder, as the app's own
    runs do."""
    data = plan.configs[0].data
    server = ([f"data.root={common.data_dir()}",
               f"data.download={str(common.downloads_allowed()).lower()}"]
              if data.reads_root else [])
    return ["proxies", "--space", plan.space, "--sample", str(plan.sample), "--seed",
            str(plan.seed), "--dataset", data.name, "--proxies", ",".join(proxies),
            "--runs-dir", str(runs_dir), *(["--quiet"] if quiet else []),
            *(["--oneshot", str(runs_dir / one_shot)] if one_shot else []),
            *(part for line in [*settings, *server] for part in ("--set", line))]


@dataclass(frozen=True)
class JobState:
    """Where a plan's process stands: running, or its exit code (None: it never ran here, or
    it ended while no server of this runs root watched it), and its log's last line."""

    running: bool
    returncode: int | None
    last_line: str


class StudyJob:
    """The process computing the plan named `name` (`plan_id`) under `runs_dir`."""

    def __init__(self, runs_dir: Path, name: str) -> None:
        self.folder = runs_dir / FOLDER
        self.pid_file = self.folder / f"{name}.pid"
        self.log_file = self.folder / f"{name}.log"
        self.exit_file = self.folder / f"{name}.exit"

    def state(self) -> JobState:
        with _lock:
            running = self._running()
        code = self.exit_file.read_text().strip() if self.exit_file.is_file() else ""
        last = self.log_lines(1) if self.log_file.is_file() else []
        return JobState(running, None if running or not code else int(code),
                        last[0] if last else "")

    def _running(self) -> bool:
        """Whether it runs; notes the exit code of one that has ended (under `_lock`)."""
        child = _children.get(self.pid_file)
        if child is not None:
            code = child.poll()
            if code is None:
                return True
            del _children[self.pid_file]
            self.exit_file.write_text(f"{code}\n")
            self.pid_file.unlink(missing_ok=True)
            return False
        if not self.pid_file.is_file():
            return False
        if _alive(int(self.pid_file.read_text().strip() or 0)):  # another server's process
            return True
        self.pid_file.unlink(missing_ok=True)  # it ended unwatched: its code is unknown
        return False

    def start(self, arguments: list[str]) -> None:
        """Start `python -m nas_engine <arguments>`, detached, its output to the log; a
        RuntimeError while the plan's process runs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with _lock:
            if self._running():
                raise RuntimeError("this study is being computed already")
            try:
                pid_fd = os.open(self.pid_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:  # another server started it a moment ago
                raise RuntimeError("this study is being computed already") from None
            try:
                self.exit_file.unlink(missing_ok=True)
                with open(self.log_file, "wb") as log:
                    child = subprocess.Popen(
                        [sys.executable, "-m", "nas_engine", *arguments], stdout=log,
                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        start_new_session=True)  # not stopped with the server
                os.write(pid_fd, f"{child.pid}\n".encode())
            except BaseException:
                self.pid_file.unlink(missing_ok=True)
                raise
            finally:
                os.close(pid_fd)
            _children[self.pid_file] = child

    def log_lines(self, count: int) -> list[str]:
        """The log's last `count` non-empty lines."""
        with open(self.log_file, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - TAIL_BYTES))
            text = log.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if line.strip()][-count:]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, a process of another user
        return True
    return True
