"""The progress line of a live page, kept current by the browser itself.

A small component polls `/alphascope/progress/<run>` about once a second, redraws the bar and
its text in place, and asks Streamlit to rerun what is drawn under it only when a new record
has arrived (the whole page on a new state, epoch or live change). A poll thus costs one small
JSON request, not a script run whose messages make the browser re-render every element of the
page: with the browser on the search's machine, that re-rendering was most of what watching
cost the search (see benchmarks/app_latency.py).

`app.py` serves the route (`streamlit run app.py` finds the `st.App` there).
"""

from __future__ import annotations

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
from pages.ui import common

POLL_MS = 1000  # how often a live page reads the newest snapshot
FIRST_POLL_MS = 250  # ... while it waits for a new run's first α
FEED_PATH = "/alphascope/progress/{run_id}"

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


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def outside_records(snap: Snapshot) -> tuple[Any, ...]:
    """What a live page shows apart from its newest records: the run's state, whether α exists
    yet, the finished epochs (schedules in force), the checkpoints to branch from and live
    changes."""
    return (snap.state, snap.latest is None, len(snap.epochs), snap.checkpoint_epochs,
            len(snap.live_changes))


def progress_line(snap: Snapshot) -> dict[str, Any]:
    """The bar's fraction, its text, and the stamp of what a page drawn from `snap` shows
    (`outside_records` and the records; the step count moves only the bar)."""
    epochs = snap.config.epochs
    stamp = "|".join(map(str, (*outside_records(snap), len(snap.steps))))
    if snap.total_steps:
        done, where = snap.progress, f"step {snap.step}/{snap.total_steps}"
    elif snap.is_active:
        return {"fraction": 0.0, "text": "building the supernet and loading the data…",
                "stamp": stamp}
    else:  # a run read from disk: its epoch length is known only to a live search
        done, where = snap.epoch / epochs, f"step {snap.step}"
    eta = f" · about {_duration(snap.eta_s)} left" if snap.eta_s and snap.is_active else ""
    searched = max(snap.elapsed_s, (snap.latest or {}).get("time_s", 0.0))
    current = min(snap.epoch + 1, epochs)  # 1-based, as the charts name epochs
    return {"fraction": min(done, 1.0), "stamp": stamp,
            "text": f"epoch {current}/{epochs} · {where} · {_duration(searched)} searched{eta}"}


def follow(run: Run, page_snap: Snapshot, draw: Callable[[Snapshot], None]) -> None:
    """The run's progress line and `draw(snapshot)` under it, in a fragment. The line polls
    while the run can change by itself (never otherwise) and reruns the fragment when a record
    has arrived; the fragment reruns the whole page (drawn from `page_snap`) when what lies
    outside it has moved (`outside_records`). It has an error boundary of its own: its own
    reruns do not pass through the page's."""

    @st.fragment
    @common.guarded("The progress and the charts could not be drawn")
    def records() -> None:
        snap = run.snapshot()
        if outside_records(snap) != outside_records(page_snap):
            st.rerun()
        every_ms = (FIRST_POLL_MS if snap.latest is None else POLL_MS) if snap.is_active else 0
        _progress_bar(key=f"progress:{snap.run_id}", on_stale_change=lambda: None, data={
            "line": progress_line(snap),
            "url": FEED_PATH.format(run_id=quote(snap.run_id, safe="")),
            "every_ms": every_ms})
        draw(snap)

    records()


def _feed(request: Request) -> JSONResponse:
    run = common.registry().get(request.path_params["run_id"])
    if run is None:
        return JSONResponse({"error": "no such run"}, status_code=404)
    return JSONResponse(progress_line(run.snapshot()))


ROUTES = [Route(FEED_PATH, _feed)]
