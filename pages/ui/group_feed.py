"""One progress line for several runs at once (a comparison of strategies over seeds), kept
current by the browser as `progress_feed` keeps one run's: the line polls
`/alphascope/group-progress?runs=A,B,...` about once a second while any of them can change by
itself, and reruns the fragment drawn under it when one of them has a new record or state.

Its stamp joins the runs' own stamps (`progress_feed.progress_line`, `folder_line`), so a poll
reads what polling each run would (memory for this process's runs, a folder's tail for the
others), and costs no script run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import streamlit as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nas_engine.snapshot import Snapshot
from nas_engine.states import RunState
from nas_engine.store import RunFolder
from pages.ui import common, progress_feed

GROUP_PATH = "/alphascope/group-progress"


@dataclass(frozen=True)
class _Where:
    """Where one run stands, as the line counts it."""

    stamp: str
    done: int  # evaluations (a discrete run's steps)
    budget: int
    state: RunState


def _where(run_id: str) -> _Where | None:
    """From memory for a run of this process, else from its folder's small reads; None for an
    id that names no run or a folder that cannot be read (the page names those)."""
    run = common.own_run(run_id)
    if run is not None:
        snap = run.snapshot()
        return _Where(progress_feed.progress_line(snap)["stamp"], snap.step, snap.config.epochs,
                      snap.state)
    if not common.plausible_run_id(run_id):
        return None
    folder = RunFolder(common.registry().runs_dir / run_id)
    if not (folder.path / "config.json").is_file():
        return None
    try:
        stamp = progress_feed.folder_line(folder)["stamp"]
        last = folder.last_record() or {}
        return _Where(stamp, int(last.get("step", 0)), folder.read_config().epochs,
                      folder.effective_state())
    except Exception:  # a damaged folder: left out of the line, named by the page
        return None


def group_line(run_ids: Sequence[str]) -> dict[str, Any]:
    """The line of `run_ids`: evaluations done of all their budgets, how many runs are in each
    state, the stamp that moves with any run's records or state, and whether any can still
    move."""
    found = [w for w in map(_where, run_ids) if w is not None]
    done = sum(w.done for w in found)
    # a finished run may have ended before its budget (a time budget, a strategy with no
    # more to propose): what it did is all it will do
    budget = sum(w.done if w.state is RunState.FINISHED else w.budget for w in found)
    states = Counter(str(w.state) for w in found)
    text = (f"{done}/{budget} evaluations · "
            + ", ".join(f"{n} {state}" for state, n in sorted(states.items())))
    return {"stamp": "|".join(w.stamp for w in found), "fraction": done / max(budget, 1),
            "text": text, "active": any(w.state.is_active for w in found),
            "runs": len(found)}


def group_url(run_ids: Sequence[str]) -> str:
    return f"{GROUP_PATH}?runs={quote(','.join(run_ids), safe=',')}"


def follow_group(run_ids: Sequence[str], draw: Callable[[list[Snapshot]], None],
                 key: str) -> None:
    """The runs' progress line and `draw(snapshots)` under it, in a fragment that reruns when
    the line finds a new record or state of any of them (`progress_feed.follow` does this for
    one run). The line is read before the snapshots, so these hold at least what its stamp
    counts. Runs that cannot be opened are left out (the page names them)."""
    ids = list(run_ids)

    @st.fragment
    @common.guarded("The runs could not be followed")
    def records() -> None:
        line = group_line(ids)
        runs = [run for run, _ in map(common.try_open, ids) if run is not None]
        snaps = [run.snapshot() for run in runs]
        every_ms = progress_feed.POLL_MS if line["active"] else 0
        progress_feed.bar(line, group_url(ids), every_ms, key=f"group-progress:{key}")
        draw(snaps)

    records()


def _feed(request: Request) -> JSONResponse:
    """`group_line` of the `runs` query parameter; 404 when it names no run at all."""
    ids = [r for r in request.query_params.get("runs", "").split(",") if r]
    line = group_line(ids)
    if not line["runs"]:
        return JSONResponse({"error": "no such runs"}, status_code=404)
    return JSONResponse(line)


ROUTES = [Route(GROUP_PATH, _feed)]
