"""The progress line of a live page, kept current by the browser itself.

A small component polls `/alphascope/progress/<run>` about once a second, redraws the bar and
its text in place, and asks Streamlit to rerun what is drawn under it only when a new record
has arrived (the whole page on a new state, epoch or live change). A poll thus costs one small
JSON request, not a script run whose messages make the browser re-render every element of the
page: with the browser on the search's machine, that re-rendering was most of what watching
cost the search (see benchmarks/app_latency.py).

`app.py` serves the route (`streamlit run app.py` finds the `st.App` there). A poll costs no
read of the run's log: a run of this process answers from its snapshot in memory, one that
another process runs (the CLI) from its status and the log's last record, read from the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import streamlit as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nas_engine.runner import Run
from nas_engine.snapshot import Snapshot
from nas_engine.store import RunFolder
from pages.ui import common

log = logging.getLogger(__name__)

POLL_MS = 1000  # how often a live page reads the newest snapshot
FIRST_POLL_MS = 250  # ... while it waits for a new run's first α
FEED_PATH = "/alphascope/progress/{run_id}"
BUILDING = {"fraction": 0.0, "text": "building the supernet and loading the data…"}

_HTML = '<div class="text"></div><div class="track"><div class="bar"></div></div>'
_CSS = """
.text { font-family: var(--st-font); color: var(--st-text-color); font-size: 0.875rem;
        margin-bottom: 0.25rem; }
.track { height: 0.5rem; border-radius: 0.25rem;
         background: var(--st-secondary-background-color); overflow: hidden; }
.bar { height: 100%; background: var(--st-primary-color); }
"""
_progress_bar = st.components.v2.component(
    "alphascope_progress", html=_HTML, css=_CSS,
    js=(Path(__file__).parent / "progress_feed.js").read_text(encoding="utf-8"))


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def outside_records(snap: Snapshot) -> tuple[Any, ...]:
    """What a live page shows apart from its newest records: the run's state, whether α exists
    yet, the finished epochs (schedules in force), the checkpoints to branch from and live
    changes."""
    return (snap.state, snap.latest is None, len(snap.epochs), snap.checkpoint_epochs,
            len(snap.live_changes))


def _bar(epochs: int, epoch: int, step: int, total_steps: int, searched_s: float,
         eta_s: float | None) -> dict[str, Any]:
    """The bar's fraction and text."""
    if total_steps:
        done, where = step / total_steps, f"step {step}/{total_steps}"
    else:  # a run read from disk: its epoch length is known only to a live search
        done, where = epoch / epochs, f"step {step}"
    eta = f" · about {duration(eta_s)} left" if eta_s else ""
    current = min(epoch + 1, epochs)  # 1-based, as the charts name epochs
    return {"fraction": min(done, 1.0),
            "text": f"epoch {current}/{epochs} · {where} · {duration(searched_s)} searched{eta}"}


def _evaluations_bar(budget: int, done: int, cache_hits: int, searched_s: float,
                     eta_s: float | None) -> dict[str, Any]:
    """A discrete run's bar: one step is one evaluation, the budget its epochs."""
    eta = f" · about {duration(eta_s)} left" if eta_s else ""
    hits = f" · {cache_hits} from the database" if cache_hits else ""
    return {"fraction": min(done / max(budget, 1), 1.0),
            "text": f"evaluation {done}/{budget}{hits} · {duration(searched_s)} searched{eta}"}


def progress_line(snap: Snapshot) -> dict[str, Any]:
    """The bar's fraction, its text, and the stamp of what a page drawn from `snap` shows
    (`outside_records` and the records; the step count moves only the bar)."""
    stamp = "|".join(map(str, (*outside_records(snap), len(snap.steps))))
    if snap.is_active and not snap.total_steps:
        return {**BUILDING, "stamp": stamp}
    latest = snap.latest or {}
    searched = max(snap.elapsed_s, latest.get("time_s", 0.0))
    eta = snap.eta_s if snap.is_active else None
    if snap.config.kind == "discrete":
        return {"stamp": stamp, **_evaluations_bar(snap.config.epochs, snap.step,
                                                   latest.get("cache_hits", 0), searched, eta)}
    return {"stamp": stamp, **_bar(snap.config.epochs, snap.epoch, snap.step, snap.total_steps,
                                   searched, eta)}


def folder_line(folder: RunFolder) -> dict[str, Any]:
    """`progress_line` of a run that another process runs, from small reads: its status, its
    config and the log's last record (read from the end). Its stamp is the state, the log's
    size and the checkpoints, which every new record or state changes."""
    state = folder.effective_state()
    log_file = folder.path / "metrics.jsonl"
    size = log_file.stat().st_size if log_file.is_file() else 0
    stamp = "|".join(map(str, (state, size, tuple(folder.checkpoints()))))
    latest = folder.last_record()
    if latest is None and state.is_active:
        return {**BUILDING, "stamp": stamp}
    latest = latest or {}
    config = folder.read_config()
    if config.kind == "discrete":
        return {"stamp": stamp, **_evaluations_bar(config.epochs, latest.get("step", 0),
                                                   latest.get("cache_hits", 0),
                                                   latest.get("time_s", 0.0), None)}
    return {"stamp": stamp, **_bar(config.epochs, latest.get("epoch", 0),
                                   latest.get("step", 0), 0, latest.get("time_s", 0.0), None)}


def follow(run: Run, page_snap: Snapshot, draw: Callable[[Snapshot], None]) -> None:
    """The run's progress line and `draw(snapshot)` under it, in a fragment. The line polls
    while the run can change by itself (never otherwise) and reruns the fragment when a record
    has arrived; the fragment reruns the whole page (drawn from `page_snap`) when what lies
    outside it has moved (`outside_records`). A run that another process runs is read again
    on each rerun, the line as the feed reads it (`folder_line`). The fragment has an error
    boundary of its own: its own reruns do not pass through the page's."""

    elsewhere = page_snap.is_active and common.own_run(run.run_id) is None

    @st.fragment
    @common.guarded("The progress and the charts could not be drawn")
    def records() -> None:
        if elsewhere:  # the line as the feed reads it, then the records again: they hold
            line = folder_line(run.folder)  # at least what the line's stamp counts
            snap = (common.registry().get(run.run_id) or run).snapshot()
        else:
            snap = run.snapshot()
            line = progress_line(snap)
        if outside_records(snap) != outside_records(page_snap):
            st.rerun()
        every_ms = (FIRST_POLL_MS if snap.latest is None else POLL_MS) if snap.is_active else 0
        bar(line, FEED_PATH.format(run_id=quote(snap.run_id, safe="")), every_ms,
            key=f"progress:{snap.run_id}")
        draw(snap)

    records()


def bar(line: dict[str, Any], url: str, every_ms: int, key: str) -> None:
    """The progress line itself: drawn from `line`, polling `url` every `every_ms` (0: never),
    and rerunning the fragment it sits in when the feed's stamp moves on from `line`'s
    (`group_feed` follows several runs with it)."""
    _progress_bar(key=key, on_stale_change=lambda: None,
                  data={"line": line, "url": url, "every_ms": every_ms})


def _feed(request: Request) -> JSONResponse:
    """The progress line of `run_id` (`progress_line`, `folder_line`); 404 for an id that names
    no run, 422 and one short log line for a folder that cannot be read."""
    run_id = request.path_params["run_id"]
    missing = JSONResponse({"error": "no such run"}, status_code=404)
    if not common.plausible_run_id(run_id):
        return missing
    run = common.own_run(run_id)
    if run is not None:
        return JSONResponse(progress_line(run.snapshot()))
    folder = RunFolder(common.registry().runs_dir / run_id)
    if not (folder.path / "config.json").is_file():
        return missing
    try:
        return JSONResponse(folder_line(folder))
    except Exception as exc:  # a damaged folder: said in one line, never a traceback
        problem = f"unreadable: {common.reason(exc, folder.path)}"
        log.warning("progress feed: run %s is %s", common.shown_id(run_id), problem)
        return JSONResponse({"error": problem}, status_code=422)


ROUTES = [Route(FEED_PATH, _feed)]
