"""The Zero-cost page (issue 16 item 5) and its figures: on a tiny study computed once through
`run_study` (4 NB201 cells, one epoch at C=4, every proxy: seconds), the page's table is
`StudyResult.table()`'s numbers, each scatter holds the stored scores and accuracies, and the
cost chart the milliseconds per architecture; the missing-truth count of a larger sample is
the database's; Compute launches the CLI once per plan (a stand-in for `Popen`: nothing
trains) and a failure shows its exit code and last log line; bad inputs name their field.
The figure builders are checked on a hand-made study, and the background process on a real
CLI that refuses its arguments."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from nas_engine import proxies_viz as pv
from nas_engine.evaluation.training import evaluation_key
from nas_engine.evaluations import Evaluation, EvaluationsDB, ProxyKey, ProxyScore
from nas_engine.proxies.agreement import Agreement
from nas_engine.proxies.registry import PROXIES
from nas_engine.proxies.study import (
    OneShotSource,
    StudyResult,
    missing_truth,
    one_shot_column,
    plan_study,
    run_study,
)
from pages.ui import zero_cost_job
from pages.ui.zero_cost_job import StudyJob, plan_id
from tests.test_app import no_failure

PAGE = "pages/zero_cost.py"
TINY = {"epochs": 1, "network.channels": 4, "data.batch_size": 32}
TINY_LINES = ["epochs=1", "network.channels=4", "data.batch_size=32"]


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> tuple[Path, StudyResult]:
    """A runs folder whose database holds the tiny study, every proxy scored."""
    runs = tmp_path_factory.mktemp("zero-cost") / "runs"
    result = run_study(EvaluationsDB(runs), plan_study("nb201", 2, 0, "digits", TINY))
    return runs, result


@pytest.fixture
def stored(tiny_study, tmp_path) -> StudyResult:
    """The tiny study's database in this test's runs folder (the `app` fixture's)."""
    shutil.copytree(tiny_study[0], tmp_path / "runs")
    return tiny_study[1]


class FakeProcess:
    """Stands for `subprocess.Popen`: records its arguments and runs until told it ended."""

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        self.argv, self.kwargs = argv, kwargs
        self.pid = 4_000_000 + len(launched)
        self.returncode: int | None = None
        kwargs["stdout"].write(b"3 cells of nb201 on digits; 3 to retrain\n")
        launched.append(self)

    def poll(self) -> int | None:
        return self.returncode


launched: list[FakeProcess] = []


@pytest.fixture
def fake_popen(monkeypatch) -> list[FakeProcess]:
    launched.clear()
    monkeypatch.setattr(zero_cost_job.subprocess, "Popen", FakeProcess)
    return launched


def open_page(app, sample: int = 2, lines: list[str] = TINY_LINES,
              proxies: list[str] | None = None):
    app.run()
    at = app.switch_page(PAGE).run()
    at.number_input(key="zero-cost:sample").set_value(sample)
    at.selectbox(key="zero-cost:data").set_value("digits")
    at.text_area(key="zero-cost:other").set_value("\n".join(lines))
    if proxies is not None:
        at.multiselect(key="zero-cost:proxies").set_value(proxies)
    return at.run()


def charts(at) -> dict[str, dict[str, list]]:
    """Every Vega-Lite chart's data by its title (the scatters) or dataset name (the cost)."""
    found = {}
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        for d in chart.proto.datasets:
            title = spec.get("title", {}).get("text", d.name)
            found[title] = pa.ipc.open_stream(d.data.data).read_all().to_pydict()
    return found


def same(shown: Any, expected: float | None) -> bool:
    return pd.isna(shown) if expected is None else shown == pytest.approx(expected)


def compute_button(at):
    found = [b for b in at.button if b.key == "zero-cost:compute"]
    return found[0] if found else None


def texts(at) -> str:
    return "\n".join(e.value for kind in (at.markdown, at.info, at.error, at.caption)
                     for e in kind)


# -- the page on a stored study ----------------------------------------------------------------
def test_the_page_shows_the_stored_studys_table_scatters_and_costs(app, stored) -> None:
    at = open_page(app)
    no_failure(at)
    assert "all 4 cells have their ground truth" in texts(at)
    assert f"proxy scores: {4 * len(PROXIES)} of {4 * len(PROXIES)}" in texts(at)
    assert compute_button(at).disabled  # nothing is left to compute

    table = stored.table(0)
    (frame,) = [d.value for d in at.dataframe]
    assert list(frame["column"]) == [row.proxy for row in table] == [*PROXIES, "vote"]
    for row, (_, shown) in zip(table, frame.iterrows()):
        assert same(shown["Spearman ρ"], row.spearman) and same(shown["Kendall τ"], row.kendall)
        for name, ci in (("ρ", row.spearman_ci), ("τ", row.kendall_ci)):
            assert shown[f"{name} 95 % CI"] == ("" if ci is None else
                                                f"[{ci[0]:+.2f}, {ci[1]:+.2f}]")
        assert same(shown["top-10 %"], row.top10_overlap)
        assert shown["undefined"] == row.undefined == 4 - row.n
        assert same(shown["ms / arch"], row.ms_per_arch)
        assert same(shown["× cheaper"], stored.retrain_ms / row.ms_per_arch)
    assert frame["undefined"].sum() == sum(row.undefined for row in table)
    published = dict(zip(frame["column"], frame[pv.PUBLISHED_TITLE]))
    assert (published["synflow"], published["vote"], published["naswot"]) == (
        "ρ 0.74", "ρ 0.82", "τ 0.57")
    assert published["params"] == ""

    drawn = charts(at)
    for column in stored.columns():
        points = [(v, a, arch) for v, a, arch in zip(stored.values(column), stored.accuracies,
                                                     stored.plan.archs) if v is not None]
        data = drawn[column]
        assert data["score"] == pytest.approx([p[0] for p in points])
        assert data["accuracy"] == pytest.approx([p[1] for p in points])
        assert data["arch"] == [p[2] for p in points]
    assert drawn["synflow"]["role"] == ["sampled", "sampled", "all-skip", "all-conv"]
    cost = drawn["cost"]
    assert cost["name"] == [*stored.columns(), pv.RETRAIN]
    assert cost["ms"] == pytest.approx([*map(stored.ms_per_arch, stored.columns()),
                                        stored.retrain_ms])


def test_a_larger_sample_counts_the_cells_still_without_truth(app, stored, tmp_path) -> None:
    plan = plan_study("nb201", 3, 0, "digits", TINY)  # prefix-stable: 4 of its 5 are stored
    missing = len(missing_truth(EvaluationsDB(tmp_path / "runs"), plan))
    assert (missing, len(plan.configs)) == (1, 5)
    at = open_page(app, sample=3, proxies=["synflow", "params"])
    no_failure(at)
    assert "1 of 5 cells still lack ground truth" in texts(at)
    assert "proxy scores: 8 of 10" in texts(at)  # the stored four cells' scores
    assert not at.dataframe  # no study before every cell has its truth
    assert not compute_button(at).disabled


# -- Compute -----------------------------------------------------------------------------------
def test_compute_launches_the_cli_once_and_shows_how_it_failed(app, tmp_path,
                                                               fake_popen) -> None:
    at = open_page(app)
    no_failure(at)
    assert "4 of 4 cells still lack ground truth" in texts(at)
    runs = (tmp_path / "runs").resolve()
    arguments = ["proxies", "--space", "nb201", "--sample", "2", "--seed", "0", "--dataset",
                 "digits", "--proxies", ",".join(PROXIES), "--runs-dir", str(runs)]
    settings = [part for line in TINY_LINES for part in ("--set", line)]
    assert "None of these 4 cells has its ground truth yet" in texts(at)
    (command,) = [c.value for c in at.code]  # the terminal's command: with its progress line
    assert command.split() == ["python", "-m", "nas_engine", *arguments, *settings]

    at = compute_button(at).click().run()
    no_failure(at)
    (process,) = fake_popen
    assert process.argv == [sys.executable, "-m", "nas_engine", *arguments, "--quiet",
                            *settings]
    assert process.kwargs["start_new_session"] is True
    plan = plan_study("nb201", 2, 0, "digits", TINY)
    job = StudyJob(runs, plan_id(plan))
    assert Path(process.kwargs["stdout"].name) == job.log_file
    assert job.pid_file.read_text().strip() == str(process.pid)
    assert compute_button(at).disabled
    assert any("Computing in the background" in p.proto.text for p in at.get("progress"))
    with pytest.raises(RuntimeError, match="being computed already"):
        job.start(arguments)  # a second tab's Compute
    assert len(fake_popen) == 1

    with open(job.log_file, "ab") as log:
        log.write(b"error: --set epochs: must be an integer >= 1; got 0\n")
    process.returncode = 2
    at = at.run()
    (failed,) = at.error
    assert "exit code 2" in failed.value
    assert "error: --set epochs: must be an integer >= 1; got 0" in failed.value
    assert not job.pid_file.exists() and job.exit_file.read_text().strip() == "2"
    assert not compute_button(at).disabled  # it can be started again


def test_a_real_cli_process_ends_and_its_exit_code_and_last_line_are_kept(tmp_path) -> None:
    job = StudyJob(tmp_path, "refused")
    job.start(["proxies", "--sample", "-1", "--runs-dir", str(tmp_path)])
    deadline = time.monotonic() + 120
    while job.state().running:
        assert time.monotonic() < deadline, "the CLI did not end"
        time.sleep(0.2)
    state = job.state()
    assert state.returncode == 2  # the CLI's usage error
    assert "--sample must be >= 0" in state.last_line
    job.pid_file.write_text("0\n")  # a pid file no process stands behind
    assert not job.state().running and not job.pid_file.exists()


# -- bad inputs --------------------------------------------------------------------------------
@pytest.mark.parametrize(("sample", "lines", "proxies", "message"), [
    (0, TINY_LINES, None, "**sample N** must be between 1 and 1000"),
    (5000, TINY_LINES, None, "**sample N** must be between 1 and 1000"),
    (2, TINY_LINES, [], "**proxies**: pick at least one."),
    (2, ["epochs=0"], None, "**other settings**: epochs"),
    (2, ["data.root=/tmp"], None, "**other settings**: data.root cannot be set here"),
    (2, ["epochs"], None, "**other settings**: --set"),
])
def test_bad_inputs_give_one_message_naming_the_field(app, sample, lines, proxies,
                                                      message) -> None:
    at = open_page(app, sample=sample, lines=lines, proxies=proxies)
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith(message), error.value
    assert compute_button(at) is None


# -- the figures on a hand-made study ----------------------------------------------------------
def hand_made() -> StudyResult:
    """Four cells (the last two the extremes) with known accuracies, one retrain 1000 ms;
    synflow undefined on the second cell, 10 ms each; params 2 ms on average."""
    plan = plan_study("nb201", 2, 0, "digits", TINY)
    accuracies, seconds = [0.1, 0.4, 0.2, 0.3], [1.0, 0.5, 1.5, 1.0]
    truth = [Evaluation(evaluation_key(c), acc, acc, None, None, None, s, None)
             for c, acc, s in zip(plan.configs, accuracies, seconds)]

    def scores(proxy: str, values: list[float | None], ms: list[float]) -> list[ProxyScore]:
        key = ProxyKey("nb201", "cell", "digits", {}, proxy, 0)
        return [ProxyScore(key, v, m) for v, m in zip(values, ms)]

    return StudyResult(plan, truth, {
        "synflow": scores("synflow", [1.0, None, 3.0, 4.0], [10.0] * 4),
        "params": scores("params", [5.0, 8.0, 6.0, 7.0], [1.0, 2.0, 3.0, 2.0])})


def test_the_scatter_holds_each_defined_score_against_its_accuracy() -> None:
    result = hand_made()
    spec = pv.scatter_chart(result, "synflow")
    data = spec["datasets"]["scores"]
    assert data["score"] == [1.0, 3.0, 4.0]  # the undefined second cell is left out
    assert data["accuracy"] == [0.1, 0.2, 0.3]
    archs = result.plan.archs
    assert data["arch"] == [archs[0], archs[2], archs[3]]
    assert data["role"] == ["sampled", "all-skip", "all-conv"]
    assert spec["title"] == {"text": "synflow", "font": pv.FONT, "anchor": "start",
                             "subtitle": "1 undefined, not drawn"}
    assert pv.scatter_chart(result, "params")["title"]["subtitle"] == ""
    assert {"field": "arch", "title": "cell"} in spec["encoding"]["tooltip"]


def test_the_cost_chart_bars_are_ms_per_arch_beside_one_retrain() -> None:
    result = hand_made()
    result.extra[pv.ONE_SHOT] = ([0.15, 0.45, 0.25, 0.35], 50.0)
    assert result.retrain_ms == pytest.approx(1000.0)
    spec = pv.cost_chart(result)
    data = spec["datasets"]["cost"]
    assert data["name"] == ["synflow", "params", pv.ONE_SHOT, pv.RETRAIN]
    assert data["ms"] == pytest.approx([10.0, 2.0, 50.0, 1000.0])
    assert data["kind"] == ["zero-cost", "zero-cost", "extra", "retrain"]
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == [
        "zero-cost", "extra", "retrain"]
    assert pv.cost_chart(hand_made())["layer"][0]["encoding"]["color"]["scale"]["domain"] == [
        "zero-cost", "retrain"]  # no extra column, none in the legend
    assert data["label"] == ["100× cheaper", "500× cheaper", "20× cheaper", "the reference"]
    scale = spec["layer"][0]["encoding"]["x"]["scale"]
    assert scale["type"] == "log" and scale["domain"] == pytest.approx([1.0, 10_000.0])
    assert spec["layer"][0]["encoding"]["x2"] == {"datum": 1.0}  # bars start below 2 ms
    assert spec["layer"][-1]["encoding"]["x"] == {"datum": pytest.approx(1000.0)}


def test_the_table_rows_carry_the_agreement_and_the_published_figure() -> None:
    result = hand_made()
    result.extra[pv.ONE_SHOT] = ([0.15, 0.45, 0.25, 0.35], 50.0)
    rows = {row["column"]: row for row in pv.agreement_rows(result, result.table(0))}
    assert list(rows) == ["synflow", "params", pv.ONE_SHOT]
    synflow = rows["synflow"]
    assert synflow["undefined"] == 1
    assert synflow["Spearman ρ"] == pytest.approx(1.0)  # 1, 3, 4 against 0.1, 0.2, 0.3
    assert synflow["× cheaper"] == pytest.approx(100.0)
    assert synflow[pv.PUBLISHED_TITLE] == "ρ 0.74"
    one_shot = rows[pv.ONE_SHOT]
    assert one_shot["Spearman ρ"] == pytest.approx(1.0) and one_shot["Kendall τ"] == 1.0
    assert one_shot["× cheaper"] == pytest.approx(20.0) and one_shot[pv.PUBLISHED_TITLE] == ""
    naswot, few = pv.agreement_rows(result, [
        Agreement("naswot", 5, 0, 0.5, (0.1, 0.9), 0.4, (0.0, 0.8), 1.0, 4.0),
        Agreement("zen", 2, 3, None, None, None, None, 1.0, None)])
    assert (few["ρ 95 % CI"], few["τ 95 % CI"], few["× cheaper"]) == ("", "", None)
    assert (naswot["ρ 95 % CI"], naswot["τ 95 % CI"]) == ("[+0.10, +0.90]", "[+0.00, +0.80]")
    assert naswot["× cheaper"] == pytest.approx(250.0)
    assert naswot[pv.PUBLISHED_TITLE] == "τ 0.57"


def test_a_one_shot_supernet_adds_its_column_once_computed(app, stored, tmp_path,
                                                          fake_popen) -> None:
    from tests.test_oneshot import finished_run, spos

    runs = tmp_path / "runs"
    supernet = finished_run(runs, spos("nb201", epochs=1))
    at = open_page(app)
    picker = at.selectbox(key="zero-cost:one-shot")
    assert picker.options == ["none", supernet.run_id]  # the only search run of nb201 on digits
    at = picker.set_value(supernet.run_id).run()
    no_failure(at)
    assert "inherited accuracies are computed with the study" in texts(at)
    compute_button(at).click().run()
    (process,) = fake_popen
    assert process.argv[process.argv.index("--oneshot") + 1] == str(supernet.path)

    plan = stored.plan
    values, _ = one_shot_column(EvaluationsDB(runs), plan, OneShotSource.of(supernet.path, plan))
    process.returncode = 0
    at = at.run()
    no_failure(at)
    (frame,) = [d.value for d in at.dataframe]
    row = frame[frame["column"] == pv.ONE_SHOT].iloc[0]
    assert row["Spearman ρ"] == pytest.approx(spearmanr(values, stored.accuracies).statistic)
    assert charts(at)[pv.ONE_SHOT]["score"] == pytest.approx(values)
    assert compute_button(at).disabled
