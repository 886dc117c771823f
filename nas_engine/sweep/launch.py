"""Starting and stopping a sweep's driver as a process of its own (what the app's Sweeps page
does): the CLI's `sweep --resume <folder>`, writing to the folder's driver.log. A driver of
its own keeps Ray, and Tune's signal handling, out of the app's server, and goes on when the
server stops; the page follows it through sweep.json and the trials' run folders.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from nas_engine.store import RunFolder
from nas_engine.sweep.folder import DRIVER_LOG, SweepFolder


def start_driver(folder: SweepFolder) -> int:
    """Run (or go on with) the sweep in `folder` in a new process, on the Ray of RAY_ADDRESS
    or a local one; returns its pid."""
    with open(folder.path / DRIVER_LOG, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nas_engine", "sweep", "--resume", str(folder.path),
             "--quiet"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # not in the server's process group: Ctrl-C there spares it
    threading.Thread(target=process.wait, name="sweep-driver", daemon=True).start()  # reaped
    return process.pid


def stop_driver(folder: SweepFolder) -> bool:
    """Ask the sweep's running driver to stop as Ctrl-C does (Tune saves its state; the
    sweep can go on later); False when no driver holds the sweep."""
    holder = RunFolder(folder.path).lock_holder()
    pid = folder.read().get("driver", {}).get("pid")
    if holder is None or not isinstance(pid, int) or not holder.startswith(f"process {pid} "):
        return False
    os.kill(pid, signal.SIGTERM)
    return True
