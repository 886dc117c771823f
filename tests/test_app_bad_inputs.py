"""The app against what a hostile or careless visitor sends, and against damaged run folders:
bad `?run=` / `?runs=` values, unreadable folders, paths typed into the Search page, the
progress feed with ids no folder can have. Each case asserts the one message it gets (never
the error boundary's traceback), or the feed's exact reply.

A folder is unreadable here through an invalid config.json. A log whose last line is `42`
(the other damage of issue 13, item 6) is not: the engine skips the line, and the records
before it are shown."""

from __future__ import annotations

import asyncio
import base64
import builtins
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from starlette.applications import Starlette
from streamlit.testing.v1 import AppTest

from nas_engine.config import preset
from nas_engine.runner import Run
from nas_engine.store import Recorder, RunFolder
from pages.ui import progress_feed
from pages.ui.common import (
    DOWNLOAD_ENV,
    SHOWN_ID_CHARS,
    registry,
)
from tests.test_app import TIMEOUT, button, on_page, progress, set_state
from tests.test_runner import tiny
from tests.test_viz import write_run

LONG = "x" * 300  # longer than any file name may be
LONG_SHOWN = f"'{'x' * SHOWN_ID_CHARS}…'"
UNREADABLE = ("unreadable: config.json: is not valid JSON (Expecting property name enclosed in "
              "double quotes: line 1 column 2 (char 1))")  # what `unreadable_folder` gives


def ends_in_a_number(runs: Path, seed: int = 5) -> Run:
    """A finished run whose log's last line is `42`, as an editor or a bad tool may leave it."""
    run = write_run(runs, "nb201", seed=seed)
    with open(run.folder.path / "metrics.jsonl", "a") as log:
        log.write("42\n")
    return run


def unreadable_folder(runs: Path, name: str = "20200101-000000-damaged") -> str:
    """A run folder whose config.json is not JSON."""
    (runs / name).mkdir(parents=True)
    (runs / name / "config.json").write_text("{not json")
    return name


def one_message(at: AppTest) -> str:
    """The page's only message (warning, error or info), with no traceback drawn."""
    assert not at.exception, at.exception
    assert "details" not in [e.label for e in at.expander]  # the error boundary's
    messages = [m.value for m in (*at.warning, *at.error)]
    assert len(messages) == 1, messages
    return messages[0]


# -- ?run= ------------------------------------------------------------------------------------
@pytest.mark.parametrize("page_file", ["pages/live.py", "pages/inspector.py"])
@pytest.mark.parametrize("wanted, shown", [("no-such-run", "'no-such-run'"), (LONG, LONG_SHOWN),
                                           ("../etc", "'../etc'"), ("a\x00b", "'a\\x00b'")],
                         ids=["unknown", "300 chars", "../etc", "NUL"])
def test_a_run_id_that_names_no_folder_gets_one_message(app, tmp_path, page_file, wanted,
                                                        shown) -> None:
    write_run(tmp_path / "runs", "nb201")
    app.run()
    at = on_page(app, page_file, run=wanted)
    assert one_message(at) == (f"There is no run {shown} under {tmp_path / 'runs'}. Pick one "
                               "below.")
    assert at.selectbox(key="pick:None").value is None  # the picker, nothing opened


@pytest.mark.parametrize("page_file", ["pages/live.py", "pages/inspector.py"])
def test_an_unreadable_folder_named_in_the_url_gets_one_message(app, tmp_path,
                                                                page_file) -> None:
    write_run(tmp_path / "runs", "nb201")
    bad = unreadable_folder(tmp_path / "runs")
    app.run()
    at = on_page(app, page_file, run=bad)
    assert one_message(at) == f"Run '{bad}' cannot be opened: {UNREADABLE}."


@pytest.mark.parametrize("key", ["run", "cure", "branch"])
@pytest.mark.parametrize("wanted, problem", [("no-such-run", "no such run"),
                                             (LONG, "no such run"),
                                             ("../etc", "no such run")],
                         ids=["unknown", "300 chars", "../etc"])
def test_the_lesson_names_a_bad_run_in_its_url(app, tmp_path, key, wanted, problem) -> None:
    demo = write_run(tmp_path / "runs", "darts")
    app.run()
    params = {"run": demo.run_id, key: wanted} if key != "run" else {"run": wanted}
    at = on_page(app, "pages/lesson.py", **params)
    shown = LONG_SHOWN if wanted == LONG else repr(wanted)
    assert one_message(at) == f"Run {shown} cannot be opened: {problem}."


def test_the_lesson_names_an_unreadable_run(app, tmp_path) -> None:
    bad = unreadable_folder(tmp_path / "runs")
    app.run()
    at = on_page(app, "pages/lesson.py", run=bad)
    assert one_message(at) == f"Run '{bad}' cannot be opened: {UNREADABLE}."
    assert "Start collapse-demo" in [b.label for b in at.button]  # the lesson starts anew


# -- the runs table and Compare (item 6) -------------------------------------------------------
def test_a_bad_folder_is_a_row_and_hides_no_run(app, tmp_path) -> None:
    runs = tmp_path / "runs"
    good, numbered = write_run(runs, "nb201"), ends_in_a_number(runs)
    bad = unreadable_folder(runs)
    app.run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    rows = dict(zip(table["run"], table["state"]))
    assert rows == {good.run_id: "finished", numbered.run_id: "finished", bad: UNREADABLE}


def test_a_log_ending_in_a_number_opens_with_the_records_before_it(app, tmp_path) -> None:
    run = ends_in_a_number(tmp_path / "runs")
    app.run()
    at = on_page(app, "pages/live.py", run=run.run_id)
    assert not at.exception and not at.error and not at.warning
    assert progress(at)["line"]["text"] == "epoch 3/3 · step 12 · 6 s searched"


def test_compare_offers_the_good_runs_and_names_the_bad_one(app, tmp_path) -> None:
    runs = tmp_path / "runs"
    first, second = write_run(runs, "nb201", seed=1), write_run(runs, "nb201", seed=2)
    bad = unreadable_folder(runs)
    app.run()
    at = on_page(app, "pages/compare.py", runs=f"{first.run_id},{bad},{second.run_id}")
    assert one_message(at) == f"Left out of the comparison: '{bad}' ({UNREADABLE})."
    assert at.multiselect[0].options == sorted([first.run_id, second.run_id], reverse=True)
    assert at.multiselect[0].value == [first.run_id, second.run_id]
    (caption,) = [c.value for c in at.caption if c.value.startswith("Not offered")]
    assert caption == f"Not offered, their folders cannot be read: `{bad}` ({UNREADABLE})"


@pytest.mark.parametrize("asked, message", [
    ("{a},{a},{b}", "Left out of the comparison: '{a}' (named twice; compared once)."),
    ("{a},nope,{b}", "Left out of the comparison: 'nope' (no such run)."),
    ("{a},{b},{c},{d},{e}", "Left out of the comparison: '{e}' (at most 4 runs at once)."),
    ("{a},../etc,{long},{b}", "Left out of the comparison: '../etc' (no such run); "
                              "{long_shown} (no such run)."),
    ("{a},{a}", "Left out of the comparison: '{a}' (named twice; compared once). Pick at least "
                "two runs."),
], ids=["twice", "unknown", "five", "junk", "one run twice"])
def test_compare_takes_each_good_run_once_and_says_what_it_left_out(app, tmp_path, asked,
                                                                    message) -> None:
    ids = [write_run(tmp_path / "runs", "nb201", seed=seed).run_id for seed in range(5)]
    names = {**dict(zip("abcde", ids)), "long": LONG, "long_shown": LONG_SHOWN}
    app.run()
    at = on_page(app, "pages/compare.py", runs=asked.format(**names))
    assert one_message(at) == message.format(**names)
    wanted = list(dict.fromkeys(r for r in asked.format(**names).split(",") if r in ids))[:4]
    assert at.multiselect[0].value == wanted
    assert at.query_params["runs"] == ",".join(wanted)  # the URL keeps what is compared


@pytest.mark.parametrize("asked", [",,,", "%%,;;\x00", LONG], ids=["commas", "junk", "300 chars"])
def test_compare_with_garbage_in_the_url_compares_the_newest_two(app, tmp_path,
                                                                 asked) -> None:
    for seed in range(3):
        write_run(tmp_path / "runs", "nb201", seed=seed)
    app.run()
    at = on_page(app, "pages/compare.py", runs=asked)
    newest = [s.run_id for s in registry().list()][:2]
    assert at.multiselect[0].value == newest
    if asked.strip(","):
        assert one_message(at).startswith("Left out of the comparison: ")
    else:
        assert not at.warning and not at.error and not at.exception


def plotly_array(values: list | dict) -> np.ndarray:
    """A trace's numbers as the browser gets them: a list, or plotly's typed array."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def test_compare_draws_the_curves_of_every_run(app, tmp_path) -> None:
    first, second = (write_run(tmp_path / "runs", "darts", seed=s) for s in (1, 2))
    app.run()
    at = on_page(app, "pages/compare.py", runs=f"{first.run_id},{second.run_id}")
    assert not at.exception and not at.warning
    (chart,) = at.get("plotly_chart")
    traces = json.loads(chart.proto.spec)["data"]
    assert len(traces) == 2 * 4  # val accuracy, train loss, skip count, entropy per run
    for run in (first, second):
        epochs = run.snapshot().epochs
        (val_acc,) = [t for t in traces if t["name"] == run.run_id and t["showlegend"]]
        np.testing.assert_array_equal(plotly_array(val_acc["x"]), epochs.epoch)
        np.testing.assert_allclose(plotly_array(val_acc["y"]), epochs.val_acc)


# -- datasets are the server's (item 8) ------------------------------------------------------
def test_the_search_page_takes_a_dataset_not_a_path(app, tmp_path) -> None:
    at = app
    at.run()
    at.switch_page("pages/search.py").run()
    at.selectbox(key="cfg:data.name").set_value("mnist").run()
    keys = {w.key for w in (*at.text_input, *at.checkbox)}
    assert not keys & {"cfg:data.root", "cfg:data.download"}
    served = (tmp_path / "data").resolve()
    assert (f"Read from the server's data folder `{served}`; this server downloads nothing "
            f"({DOWNLOAD_ENV}=1 when it starts allows it), so the mnist files must be there."
            ) in [c.value for c in at.caption]
    elsewhere = tmp_path / "elsewhere"
    for typed, path in ((f"data.root={elsewhere}", "data.root"),
                        ("data.download=true", "data.download"),
                        (f'data={{"name": "mnist", "root": "{elsewhere}"}}', "data")):
        at.text_area(key="cfg:other").set_value(typed).run()
        assert [e.value for e in at.error] == [
            f"{path} cannot be set here: the app reads datasets from the server's data folder "
            "and downloads only where the server allows it; pick the dataset above"]
        assert button(at, "Start").disabled
    at.text_area(key="cfg:other").set_value("threads=1").run()
    button(at, "Start").click().run()
    run = registry().get(at.query_params["run"])
    at.switch_page("pages/live.py")
    assert (run.config.data.root, run.config.data.download) == (str(served), False)
    assert run.wait_for(lambda s: not s.is_active, TIMEOUT)
    assert run.state == "failed" and f"not found under {served}" in run.snapshot().message
    assert not elsewhere.exists()


def test_downloads_only_where_the_server_allows_them(app, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(DOWNLOAD_ENV, "1")
    at = app
    at.run()
    button(at, "Start classroom").click().run()
    run = registry().get(at.query_params["run"])
    run.stop()
    assert run.config.to_dict() == preset("classroom").with_changes({
        "data.root": str((tmp_path / "data").resolve()), "data.download": True}).to_dict()
    assert run.wait_for(lambda s: not s.is_active, TIMEOUT)


def cli_run(runs: Path, **data: object) -> Run:
    """A stopped run whose config reads mnist as the CLI may have set it, with epoch
    checkpoints to branch from (empty: nothing may get as far as loading them)."""
    path = write_run(runs, "nb201").folder.path
    config = Run.open(path).config.with_changes({"data.name": "mnist", **{
        f"data.{k}": v for k, v in data.items()}})
    (path / "config.json").write_text(json.dumps(config.to_dict()))
    (path / "checkpoints").mkdir()
    for epoch in (1, 2):
        (path / "checkpoints" / f"epoch_{epoch:04d}.pt").write_bytes(b"")
    set_state(path, "stopped")
    return Run.open(path)


@pytest.mark.parametrize("data, refusal", [
    ({"root": "/elsewhere"}, "run {id} reads mnist from /elsewhere, not from this server's data "
                             "folder {served}; continue or branch it from the command line"),
    ({"root": "{served}", "download": True},
     "run {id} may download mnist, and this server allows no downloads "
     f"({DOWNLOAD_ENV}=1 when it starts); continue or branch it from the command line"),
], ids=["another folder", "download"])
def test_branch_and_continue_keep_to_the_server_data(app, tmp_path, data, refusal) -> None:
    runs, served = tmp_path / "runs", str((tmp_path / "data").resolve())
    run = cli_run(runs, **{k: v.format(served=served) if isinstance(v, str) else v
                           for k, v in data.items()})
    expected = refusal.format(id=run.run_id, served=served)
    records = RunFolder(run.folder.path).read_records()
    app.run()
    at = on_page(app, "pages/live.py", run=run.run_id)
    button(at, "Continue").click().run()
    assert one_message(at) == expected
    set_state(run.folder.path, "finished")  # finished: Branch instead of Continue
    at = on_page(app, "pages/live.py", run=run.run_id)
    button(at, "Branch and start").click().run()
    assert one_message(at) == expected
    assert [p.name for p in runs.iterdir()] == [run.run_id]  # no branch folder
    assert RunFolder(run.folder.path).read_records() == records


# -- the progress feed (item 11) ---------------------------------------------------------------
def get(path: str) -> tuple[int, dict]:
    """GET `path` from the feed's routes as the server serves them (routing included)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "headers": [], "scheme": "http",
             "server": ("127.0.0.1", 8501)}
    asyncio.run(Starlette(routes=progress_feed.ROUTES)(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def feed_path(run_id: str) -> str:
    return progress_feed.FEED_PATH.format(run_id=run_id)


@pytest.mark.parametrize("run_id", [LONG, "é" * 128, "..", ".", "a\x00b", "no-such-run"],
                         ids=["300 chars", "256 bytes", "..", ".", "NUL", "unknown"])
def test_the_feed_answers_404_for_ids_that_name_no_run(app, tmp_path, caplog,
                                                       run_id) -> None:
    write_run(tmp_path / "runs", "nb201")
    caplog.set_level(logging.WARNING)
    assert get(feed_path(run_id)) == (404, {"error": "no such run"})
    assert not caplog.records


def test_the_feed_names_an_unreadable_folder_in_one_short_line(app, tmp_path, caplog) -> None:
    bad = unreadable_folder(tmp_path / "runs", "d" * 200)
    caplog.set_level(logging.WARNING)
    status, body = get(feed_path(bad))
    assert (status, body) == (422, {"error": UNREADABLE})
    (record,) = caplog.records
    assert record.getMessage() == f"progress feed: run '{'d' * SHOWN_ID_CHARS}…' is {UNREADABLE}"
    assert not record.exc_info


def test_the_feed_skips_a_non_object_line(app, tmp_path) -> None:
    run = ends_in_a_number(tmp_path / "runs")
    assert get(feed_path(run.run_id)) == (200, {
        "fraction": 1.0, "text": "epoch 3/3 · step 12 · 6 s searched",
        "stamp": progress_feed.folder_line(run.folder)["stamp"]})


def count_metrics_reads(monkeypatch) -> list[int]:
    """Bytes read from any metrics.jsonl from now on (one entry per read); a whole-log read
    (`read_records`) fails the test."""
    reads: list[int] = []
    real_open = builtins.open

    class Counted:
        def __init__(self, file) -> None:
            self._file = file

        def read(self, *args):
            data = self._file.read(*args)
            reads.append(len(data))
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self._file.close()

        def __getattr__(self, name):
            return getattr(self._file, name)

    def counting_open(file, *args, **kwargs):
        opened = real_open(file, *args, **kwargs)
        return Counted(opened) if Path(str(file)).name == "metrics.jsonl" else opened

    def whole_log(*args, **kwargs):
        raise AssertionError("the feed read the whole metrics log")

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(RunFolder, "read_records", whole_log)
    return reads


def test_the_feed_reads_the_tail_of_a_10_mb_log_of_another_process(app, tmp_path,
                                                                   monkeypatch) -> None:
    """A run that another process runs (the CLI) and the page watching it agree on the line,
    and neither poll reads the whole log."""
    source = write_run(tmp_path / "source", "nb201").folder.path / "metrics.jsonl"
    writer = Recorder.create(tmp_path / "runs", Run.open(source.parent).config)
    try:  # `writer` is the other process's, as far as the app knows: not in its registry
        writer.write_status("running")
        lines = source.read_text().splitlines(keepends=True)
        path = writer.path / "metrics.jsonl"
        path.write_text("".join(lines) + lines[-1] * (10 * 2**20 // len(lines[-1]) + 1))
        app.run()
        at = on_page(app, "pages/live.py", run=writer.run_id)
        assert not at.exception and not at.error
        reads = count_metrics_reads(monkeypatch)
        status, line = get(feed_path(writer.run_id))
        assert sum(reads) < 2**20, reads
        assert status == 200
        assert line["text"] == f"epoch 3/3 · step {json.loads(lines[-1])['step']} · 6 s searched"
        assert line == progress(at)["line"]  # the page's own line: a poll finds nothing new
        with open(path, "a") as log:
            log.write(lines[-1])
        assert get(feed_path(writer.run_id))[1]["stamp"] != line["stamp"]  # new: a rerun
    finally:
        writer.close()


def test_the_feed_answers_a_run_of_this_process_from_memory(app, monkeypatch) -> None:
    app.run()
    run = registry().create(tiny(epochs=1)).start()
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)

    def no_reads(*args, **kwargs):
        raise AssertionError("the feed read the run folder behind the snapshot")

    reads = count_metrics_reads(monkeypatch)
    for name in ("last_record", "read_config", "read_status", "checkpoints"):
        monkeypatch.setattr(RunFolder, name, no_reads)
    assert get(feed_path(run.run_id)) == (200, progress_feed.progress_line(run.snapshot()))
    assert not reads
