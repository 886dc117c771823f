"""What every page shares: the process-wide run registry, the error boundary, the run picker,
page addresses, and a small figure memo shared by every tab, so a run that has not moved costs
no rebuilding.

The pages are app.py (home) and the files in pages/; Streamlit does not look for pages in this
folder (pages/ui/), so what is here is only imported.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import math
import os
import threading
import traceback
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st
import torch

from nas_engine.config import DataConfig, SearchConfig
from nas_engine.data import load_images
from nas_engine.runner import Run, RunRegistry
from nas_engine.store import list_runs

T = TypeVar("T")

MEMO_ENTRIES = 64
_memo: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_memo_lock = threading.Lock()
_registries: list[RunRegistry] = []  # made by this process (one per runs folder)

RUNS_DIR_ENV = "ALPHASCOPE_RUNS_DIR"

# Page files, as st.switch_page / st.page_link name them.
HOME = "app.py"
SEARCH = "pages/search.py"
LIVE = "pages/live.py"
INSPECT = "pages/inspector.py"
COMPARE = "pages/compare.py"
LESSON = "pages/lesson.py"
PAGES = [  # file, title, icon: the sidebar, in this order
    (HOME, "Home", "home"),
    (SEARCH, "Search", "rocket_launch"),
    (LIVE, "Live view", "monitoring"),
    (INSPECT, "Collapse inspector", "troubleshoot"),
    (COMPARE, "Compare runs", "compare_arrows"),
    (LESSON, "Lesson: collapse", "school"),
]


def runs_dir() -> Path:
    """`./runs` unless ALPHASCOPE_RUNS_DIR names another folder (tests point it at a tmp dir)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs").resolve()


@st.cache_resource(show_spinner=False, on_release=RunRegistry.stop_all)
def _registry(path: str) -> RunRegistry:
    registry = RunRegistry(path)
    # on_release is not promised at server shutdown: `stop_runs_at_shutdown` stops (and
    # checkpoints) the runs then, atexit at the end of any other process (AppTest).
    _registries.append(registry)
    atexit.register(registry.stop_all)
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
    return registry


def _warm_up() -> None:
    """Load what the first search of a fresh server would otherwise wait for, while the person
    reads the page: the digits (scikit-learn) and torch's optimiser machinery, which imports
    torch._dynamo (together about 3 s on 2 cores, measured)."""
    load_images(DataConfig())
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


@contextlib.asynccontextmanager
async def stop_runs_at_shutdown(_app: Any) -> AsyncIterator[None]:
    """The server's lifespan (app.py): stop every run when it shuts down. (Uvicorn ends the
    process by re-raising the signal that stopped it, so atexit does not run there.)"""
    yield
    for made in _registries:
        await asyncio.to_thread(made.stop_all)


def registry() -> RunRegistry:
    """The one registry of this server process: every tab and every session sees the same
    runs, and a run goes on when its tabs close."""
    return _registry(str(runs_dir()))


# -- errors ------------------------------------------------------------------------------------
def show_error(what: str, exc: BaseException) -> None:
    """A friendly line, the traceback folded away."""
    message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    st.error(f"{what}: {message}", icon=":material/warning:")
    with st.expander("details"):
        st.code("".join(traceback.format_exception(exc)), language="text")


def guarded(what: str) -> Callable[[Callable[..., T]], Callable[..., T | None]]:
    """Decorator: a failure inside a page or panel becomes a message, never a traceback.
    Streamlit's own control flow (rerun, stop, switch_page) derives from BaseException and
    passes through."""

    def decorate(body: Callable[..., T]) -> Callable[..., T | None]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> T | None:
            try:
                return body(*args, **kwargs)
            except Exception as exc:  # the boundary: everything else is shown, not raised
                show_error(what, exc)
                return None

        return wrapper

    return decorate


def _frame() -> None:
    """Page config and the sidebar's page list, drawn by every page. Streamlit finds the pages
    in pages/ by itself. (A pages/ folder rules out st.navigation: Streamlit 1.67 runs such a
    folder in its file-based mode until some session calls st.navigation, so a fresh server
    routed its first visitor differently from later ones.) Its own list, named after the
    files, is hidden in .streamlit/config.toml for this one, with titles and icons."""
    st.set_page_config(page_title="alphascope", page_icon=":material/biotech:", layout="wide")
    with st.sidebar:
        for path, title, icon in PAGES:
            st.page_link(path, label=title, icon=f":material/{icon}:")


def page(what: str) -> Callable[[Callable[..., T]], Callable[..., T | None]]:
    """Decorator for a page's body: the frame every page shares, then `guarded`."""

    def decorate(body: Callable[..., T]) -> Callable[..., T | None]:
        safe_body = guarded(what)(body)

        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> T | None:
            _frame()
            return safe_body(*args, **kwargs)

        return wrapper

    return decorate


def flash(message: str) -> None:
    """Keep a message for the next run of the page (callbacks cannot draw)."""
    st.session_state["flash"] = message


def show_flash() -> None:
    message = st.session_state.pop("flash", None)
    if message:
        st.warning(message, icon=":material/warning:")


def call(action: Callable[..., Any], *args: Any) -> None:
    """A button callback: run a control, keep its refusal (e.g. 'run is finished') or failure
    as a flash (a callback runs before the page, outside its error boundary)."""
    try:
        action(*args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        flash(str(exc))
    except Exception as exc:  # the boundary for callbacks
        flash(f"{type(exc).__name__}: {exc}")


# -- runs in the URL -------------------------------------------------------------------------
def pick_run(key: str = "run") -> Run | None:
    """The run named by `?run=ID` (so a refresh, a second tab or a shared link shows it), or
    one picked here, which then goes into the URL."""
    runs = [folder.run_id for folder in list_runs(runs_dir())]
    wanted = st.query_params.get(key)
    if wanted and wanted not in runs:
        st.warning(f"There is no run {wanted!r} under {runs_dir()}. Pick one below.")
        wanted = None
    if not runs:
        st.info("No runs yet: start one from the home page or the Search page.")
        return None
    index = runs.index(wanted) if wanted else None
    chosen = st.selectbox("run", runs, index=index, key=f"pick:{wanted}",
                          placeholder="choose a run", help="newest first; the URL keeps it")
    if chosen is None:
        return None
    if chosen != wanted:
        st.query_params[key] = chosen
    return registry().get(chosen)


def start_run(config: SearchConfig, label: str = "", live: dict[str, float] | None = None
              ) -> None:
    """Create and start a run, then open its live view (the run id goes into the URL)."""
    run = registry().create(config, label=label)
    for name, value in (live or {}).items():
        run.set(name, value)
    run.start()
    st.switch_page(LIVE, query_params={"run": run.run_id})


def memo(name: str, stamp: tuple[Any, ...], build: Callable[[], T]) -> T:
    """`build()` once per (name, stamp) for the whole server (stamp: e.g. run id and record
    count), so every tab watching a run shares its figures; they are never changed once built.
    The newest MEMO_ENTRIES are kept."""
    key = (name, *stamp)
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    value = build()
    with _memo_lock:
        _memo[key] = value
        while len(_memo) > MEMO_ENTRIES:
            _memo.popitem(last=False)
    return value


def number_step(value: float) -> float:
    """A +/- step for a number input: the value's order of magnitude (0.01 around zero)."""
    return 10.0 ** math.floor(math.log10(abs(value))) if value else 0.01
