"""A sweep's progress line, kept current by the browser as `progress_feed` keeps one run's:
the line polls `/alphascope/sweep-progress?sweep=ID` about once a second while the sweep's
driver runs, and reruns the fragment drawn under it when sweep.json has changed (its driver
rewrites it at every trial's start, epoch and end). A poll reads one small file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import streamlit as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nas_engine.sweep.folder import SWEEP_FILE, SWEEPS_DIR, SweepFolder
from nas_engine.sweep.results import progress_text
from pages.ui import common, progress_feed

SWEEP_PATH = "/alphascope/sweep-progress"
ACTIVE = ("created", "running")  # a driver that may still change the sweep


def sweep_line(folder: SweepFolder) -> dict[str, Any]:
    """The line: trials done, running and failed, the best so far, the share of all the
    trials' epochs done, and a stamp that moves with every change of sweep.json."""
    stat = (folder.path / SWEEP_FILE).stat()
    data = folder.read()
    state = folder.driver_state()
    trials = data["trials"]
    epochs = max(int(data["base"].get("epochs", 1)), 1)
    done = sum(epochs if t["state"] in ("finished", "failed") else min(t.get("epoch") or 0,
                                                                         epochs)
               for t in trials)
    return {"stamp": f"{stat.st_mtime_ns}|{stat.st_size}|{state}",
            "fraction": done / max(len(trials) * epochs, 1),
            "text": f"driver {state} · {progress_text(trials)}", "active": state in ACTIVE}


def sweep_folder(sweep_id: str) -> SweepFolder | None:
    """The sweep `sweep_id` under the server's runs folder, or None."""
    if not common.plausible_run_id(sweep_id):
        return None
    folder = SweepFolder(common.runs_dir() / SWEEPS_DIR / sweep_id)
    return folder if (folder.path / SWEEP_FILE).is_file() else None


def follow_sweep(folder: SweepFolder, draw: Callable[[dict[str, Any]], None], key: str
                 ) -> None:
    """The sweep's progress line and `draw(sweep.json)` under it, in a fragment that reruns
    when the line's stamp moves. The line is read before the file, so what is drawn holds at
    least what the stamp counts."""

    @st.fragment
    @common.guarded("The sweep could not be followed")
    def records() -> None:
        line = sweep_line(folder)
        every_ms = progress_feed.POLL_MS if line["active"] else 0
        url = f"{SWEEP_PATH}?sweep={quote(folder.sweep_id, safe='')}"
        progress_feed.bar(line, url, every_ms, key=f"sweep-progress:{key}")
        draw(folder.read())

    records()


def _feed(request: Request) -> JSONResponse:
    """`sweep_line` of the `sweep` query parameter; 404 for one that names no sweep, 422 for
    a sweep.json that cannot be read."""
    folder = sweep_folder(request.query_params.get("sweep", ""))
    if folder is None:
        return JSONResponse({"error": "no such sweep"}, status_code=404)
    try:
        return JSONResponse(sweep_line(folder))
    except Exception as exc:  # a damaged sweep.json: said in one line, never a traceback
        return JSONResponse({"error": f"unreadable: {common.reason(exc, folder.path)}"},
                            status_code=422)


ROUTES = [Route(SWEEP_PATH, _feed)]
