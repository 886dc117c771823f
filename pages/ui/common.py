"""What every page shares: the process-wide run registry, the server's data policy, the error
boundary, the run picker, page addresses, and a small figure memo shared by every tab, so a run
that has not moved costs no rebuilding.

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
from nas_engine.device import cpu_threads
from nas_engine.evaluation.training import evaluation_key, retrain_config
from nas_engine.evaluations import EvaluationsDB
from nas_engine.runner import Run, RunRegistry, start_in_turn
from nas_engine.snapshot import Snapshot
from nas_engine.store import RunFolderError, list_runs

T = TypeVar("T")

MEMO_ENTRIES = 64
_memo: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_memo_lock = threading.Lock()
_registries: list[RunRegistry] = []  # made by this process (one per runs folder)

RUNS_DIR_ENV = "ALPHASCOPE_RUNS_DIR"
DATA_DIR_ENV = "ALPHASCOPE_DATA_DIR"
DOWNLOAD_ENV = "ALPHASCOPE_ALLOW_DOWNLOAD"
SERVER_SETTINGS = ("data", "data.root", "data.download")  # set by the server, not by visitors
SHOWN_ID_CHARS = 60  # a longer run id (garbage in a URL) is cut short in messages
NAME_MAX_BYTES = 255  # the longest file name the usual file systems take

# Page files, as st.switch_page / st.page_link name them.
HOME = "app.py"
SEARCH = "pages/search.py"
LIVE = "pages/live.py"
INSPECT = "pages/inspector.py"
COMPARE = "pages/compare.py"
STRATEGIES = "pages/strategies.py"
LESSON = "pages/lesson.py"
ZERO_COST = "pages/zero_cost.py"
SWEEPS = "pages/sweeps.py"
PAGES = [  # file, title, icon: the sidebar, in this order
    (HOME, "Home", "home"),
    (SEARCH, "Search", "rocket_launch"),
    (LIVE, "Live view", "monitoring"),
    (INSPECT, "Collapse inspector", "troubleshoot"),
    (COMPARE, "Compare runs", "compare_arrows"),
    (STRATEGIES, "Compare strategies", "leaderboard"),
    (ZERO_COST, "Zero-cost proxies", "bolt"),
    (SWEEPS, "Sweeps", "grid_on"),
    (LESSON, "Lesson: collapse", "school"),
]
MAX_NAMED = 5  # a message names this many left-out runs, then counts the rest


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


def own_run(run_id: str) -> Run | None:
    """The run `run_id` if this process runs it (its snapshot is in memory), else None."""
    return next((run for run in registry().live_runs() if run.run_id == run_id), None)


# -- the server's data -------------------------------------------------------------------------
# Visitors pick a dataset, never a path: whoever starts the server decides where datasets live
# and whether the app may download them, so no visitor can make it create folders or fetch
# files anywhere its user can write. (The CLI keeps data.root and data.download.)
def data_dir() -> Path:
    """`./data` unless ALPHASCOPE_DATA_DIR names another folder."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data").expanduser().resolve()


def downloads_allowed() -> bool:
    """Only when the server was started with ALPHASCOPE_ALLOW_DOWNLOAD=1."""
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def served(config: SearchConfig) -> SearchConfig:
    """`config` reading its dataset from the server's data folder, downloading it there only
    where the server allows it, whatever `config` said."""
    return config.with_changes({"data.root": str(data_dir()),
                                "data.download": downloads_allowed()})


def data_refusal(config: SearchConfig, run_id: str) -> str | None:
    """Why the app must not run `config` again (Continue, Branch), or None: its dataset would
    come from another folder than the server's (a run started from the CLI), or be downloaded
    where the server allows no downloads. The CLI can still continue it."""
    data = config.data
    if not data.reads_root:
        return None
    root = Path(data.root).expanduser().resolve()
    if root != data_dir():
        return (f"run {run_id} reads {data.name} from {root}, not from this server's data "
                f"folder {data_dir()}; continue or branch it from the command line")
    if data.download and not downloads_allowed():
        return (f"run {run_id} may download {data.name}, and this server allows no downloads "
                f"({DOWNLOAD_ENV}=1 when it starts); continue or branch it from the command "
                "line")
    return None


def _require_served_data(run: Run) -> None:
    refusal = data_refusal(run.config, run.run_id)
    if refusal:
        raise ValueError(refusal)


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
def shown_id(run_id: str) -> str:
    """A run id as a message quotes it, a long one cut short."""
    return repr(run_id if len(run_id) <= SHOWN_ID_CHARS else run_id[:SHOWN_ID_CHARS] + "…")


def plausible_run_id(run_id: str) -> bool:
    """Whether `run_id` could name a folder under the runs folder: one path part, not longer
    than a file name may be (the OS raises for a longer one instead of finding nothing)."""
    return (0 < len(run_id.encode("utf-8", "surrogatepass")) <= NAME_MAX_BYTES
            and run_id not in (".", "..") and not any(c in run_id for c in "/\\\0"))


def reason(exc: BaseException, folder: Path | None = None) -> str:
    """An exception as one short line; a file of the run folder `folder` named within it, as
    the runs table names it (no server path in a visitor's message)."""
    if isinstance(exc, RunFolderError) and folder and exc.path.is_relative_to(folder):
        text = [f"{exc.path.relative_to(folder)}: {exc.reason}"]
    else:
        text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:200] + "…"


def requested(text: str, runs: list[str], problems: dict[str, str], limit: int
              ) -> tuple[list[str], list[str]]:
    """The runs a comma-separated `?runs=` names that may be shown, each once and at most
    `limit`, and why each of the others is left out (unknown, unreadable or of another kind
    as `problems` says, named twice, one too many)."""
    asked: list[str] = []
    left_out: list[str] = []
    seen: set[str] = set()
    for run_id in filter(None, (part.strip() for part in text.split(","))):
        shown = shown_id(run_id)
        if run_id in seen:  # said once is enough for one that is left out anyway
            if run_id in asked:
                left_out.append(f"{shown} (named twice; compared once)")
            continue
        seen.add(run_id)
        if run_id in problems:
            left_out.append(f"{shown} ({problems[run_id]})")
        elif run_id not in runs:
            left_out.append(f"{shown} (no such run)")
        elif len(asked) == limit:
            left_out.append(f"{shown} (at most {limit} runs at once)")
        else:
            asked.append(run_id)
    return asked, left_out


def left_out_message(left_out: list[str]) -> str:
    more = len(left_out) - MAX_NAMED
    return ("Left out of the comparison: " + "; ".join(left_out[:MAX_NAMED])
            + (f"; and {more} more" if more > 0 else "") + ".")


def try_open(run_id: str) -> tuple[Run | None, str | None]:
    """The run `run_id`, or None and why not ("no such run", "unreadable: ..."). A damaged
    folder is a finding the page states, not a failure of the page."""
    if not plausible_run_id(run_id):
        return None, "no such run"
    try:
        run = registry().get(run_id)
    except Exception as exc:  # a damaged folder fails in many ways; each is named, not raised
        return None, f"unreadable: {reason(exc, registry().runs_dir / run_id)}"
    return (run, None) if run is not None else (None, "no such run")


def open_run(run_id: str) -> Run | None:
    """`try_open`, saying why not on the page."""
    run, problem = try_open(run_id)
    if run is None:
        st.warning(f"Run {shown_id(run_id)} cannot be opened: {problem}.",
                   icon=":material/warning:")
    return run


def pick_run(key: str = "run") -> Run | None:
    """The run named by `?run=ID` (so a refresh, a second tab or a shared link shows it), or
    one picked here, which then goes into the URL. A bad id or folder gives one message."""
    runs = [folder.run_id for folder in list_runs(runs_dir())]
    wanted = st.query_params.get(key)
    if wanted and wanted not in runs:
        st.warning(f"There is no run {shown_id(wanted)} under {runs_dir()}. Pick one below.",
                   icon=":material/warning:")
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
    return open_run(chosen)


def create_run(config: SearchConfig, label: str = "", live: dict[str, float] | None = None
               ) -> Run:
    """Create and start a run of `config` on the server's data (`served`)."""
    run = registry().create(served(config), label=label)
    for name, value in (live or {}).items():
        run.set(name, value)
    return run.start()


def create_runs_in_turn(configs: list[SearchConfig], label: str) -> list[Run]:
    """Runs of `configs` on the server's data, created now and started in turn, as many at a
    time as the cores less the one the app keeps (`runner.start_in_turn`)."""
    runs = [registry().create(served(c), label=label) for c in configs]
    start_in_turn(runs, cpu_threads(None))
    return runs


def start_run(config: SearchConfig, label: str = "", live: dict[str, float] | None = None
              ) -> None:
    """`create_run`, then open its live view (the run id goes into the URL)."""
    run = create_run(config, label, live)
    st.switch_page(LIVE, query_params={"run": run.run_id})


def branch_run(run: Run, epoch: int, changes: dict[str, Any]) -> Run:
    """A started branch of `run` (`RunRegistry.branch`); ValueError where `data_refusal`
    refuses it."""
    _require_served_data(run)
    return registry().branch(run.run_id, epoch, changes).start()


def recorded_cells(snap: Snapshot) -> dict[str, tuple[int | None, int, dict[str, Any]]]:
    """The cells a search has recorded, by label, as (epoch or None, step, genotype): each
    finished epoch's, and the newest."""
    epochs = snap.epochs
    cells: dict[str, tuple[int | None, int, dict[str, Any]]] = {
        f"end of epoch {int(e)}": (int(e), int(step), g)
        for e, step, g in zip(epochs.epoch, epochs.step, epochs.genotypes) if g}
    latest = (snap.latest or {}).get("genotype")
    if latest:
        cells[f"now (step {snap.step})"] = (None, snap.step, latest)
    return cells


def retrain_run(run: Run, genotype: dict[str, Any], epoch: int | None, step: int,
                profile: str, seed: int) -> Run:
    """A started `train` run of a search's cell on the server's copy of the hard offline
    task, its lineage naming the search, and the epoch (None: mid-epoch) and step of the cell."""
    config = served(retrain_config(run.config, genotype, profile, seed=seed))
    stored = EvaluationsDB(runs_dir()).get(evaluation_key(config))
    trained = stored and stored.run_id and registry().get(stored.run_id)
    if trained:  # a cell is trained once: show the run that did
        flash(f"This cell was retrained before (run {stored.run_id}, test accuracy "
              f"{stored.test_acc:.3f}): here it is.")
        return trained
    lineage = {"parent": run.run_id, "epoch": epoch, "step": step, "retrain": True}
    return registry().create(config, label="train", lineage=lineage).start()


def continue_run(run: Run) -> Run:
    """`run` resumed and started (`RunRegistry.resume`); ValueError where `data_refusal`
    refuses it."""
    _require_served_data(run)
    return registry().resume(run.run_id).start()


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
