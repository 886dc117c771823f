"""The app in a real browser: a `streamlit run` server on 127.0.0.1 and the system Chromium.
Start the classroom preset from the home page, see the α heatmap change between two polls,
count the progress line's polls, open the live parameters, pause, reload and find the same run
(also in a second tab, and from the home page's table). Last, the progress feed asked for ids
no run has, and for a damaged folder, answers without a traceback in the server's log.
A screenshot of the live view is kept under test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.app_latency import CHROMIUM, HEATMAP, launch_chromium, streamlit_server
from nas_engine.config import preset
from nas_engine.store import RunFolder
from pages.ui.progress_feed import FEED_PATH

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
WAIT_MS = 120_000


def test_start_watch_pause_and_find_the_run_again(tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with streamlit_server(tmp_path / "runs") as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/lesson")  # a deep link as a fresh server's first visit
        expect(page.get_by_role("link", name="Collapse inspector")).to_be_visible()
        page.goto(server)
        page.get_by_role("button", name="Start classroom").click()
        page.wait_for_url("**/live?run=*")
        run_id = page.url.split("run=", 1)[1]

        heatmap = page.locator(HEATMAP).first
        heatmap.wait_for()
        box = heatmap.bounding_box()
        assert box["width"] > 500 and box["height"] > 14 * 20  # two cells of 8 ops, 14 edges
        first = heatmap.screenshot()
        for _ in range(WAIT_MS // 500):  # the picture changes with α, within a few polls
            page.wait_for_timeout(500)
            if heatmap.screenshot() != first:
                break
        else:
            raise AssertionError("the α heatmap did not change while the run went on")

        # The progress line polls the feed about once a second (a request, not a script run).
        feed = FEED_PATH.format(run_id=run_id)
        polls: list[str] = []
        page.on("request", lambda request: polls.append(request.url) if feed in request.url
                else None)
        page.wait_for_timeout(4000)  # a poll that finds a record waits for its rerun
        assert 2 <= len(polls) <= 6, polls

        # A field in the live-parameter popover starts from the value in force and, drawn only
        # when the popover opens, sends nothing back by itself (it once sent its default, 0).
        alpha_lr = f"{preset('classroom').optim.alpha_lr:g}"
        page.get_by_role("button", name="Live parameters").click()
        expect(page.get_by_label("α learning rate", exact=True)).to_have_value(alpha_lr)
        page.wait_for_timeout(3000)  # polls and a record: each sends the fields' values
        expect(page.get_by_label("α learning rate", exact=True)).to_have_value(alpha_lr)
        page.keyboard.press("Escape")
        expect(page.get_by_text("In force:")).to_contain_text(f"α learning rate {alpha_lr}")

        page.get_by_role("button", name="Pause").click()
        header = page.get_by_text(f"{run_id} — paused")
        header.wait_for()
        page.wait_for_timeout(1500)  # the poller stops when the component gets the new state
        polls.clear()
        page.wait_for_timeout(2500)
        assert not polls  # ... and not at all while the run is paused
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-live-view.png"), full_page=True)

        page.reload()
        expect(page.get_by_text(f"{run_id} — paused")).to_be_visible()
        expect(page.get_by_role("button", name="Resume")).to_be_enabled()
        other = browser.new_page()
        other.goto(f"{server}/live?run={run_id}")
        expect(other.get_by_text(f"{run_id} — paused")).to_be_visible(timeout=WAIT_MS)
        page.locator(HEATMAP).first.wait_for()

        other.goto(server)
        table = other.get_by_test_id("stDataFrame")  # the runs table, drawn on a canvas:
        table.click(position={"x": 18, "y": 35 + 17})  # select its first row (the newest run)
        other.wait_for_url(f"**/live?run={run_id}")
        expect(other.get_by_text(f"{run_id} — paused")).to_be_visible()

        damaged = tmp_path / "runs" / "20200101-000000-damaged"
        damaged.mkdir()
        (damaged / "config.json").write_text("{not json")
        for asked, status in (("x" * 300, 404), (damaged.name, 422)):
            reply = page.request.get(server + FEED_PATH.format(run_id=asked))
            assert reply.status == status, (asked, reply.status)
        browser.close()
        folder = RunFolder(tmp_path / "runs" / run_id)
        assert folder.read_status()["state"] == "paused"  # closing every tab left it alone
    assert folder.read_status()["state"] == "stopped"  # stopping the server stopped it
    assert (folder.path / "checkpoints" / "latest.pt").is_file()
    (log,) = tmp_path.glob("streamlit-*.log")
    lines = log.read_text().splitlines()
    assert not [line for line in lines if "Traceback" in line], lines
    assert len([line for line in lines if "progress feed" in line]) == 1, lines  # the damaged


def test_discrete_runs_draw_in_the_browser(tmp_path, monkeypatch) -> None:
    """Finished discrete runs (toy scores, no training) drawn by Chromium: the live view's
    best-so-far charts, population and incumbent cell, then the Compare strategies page's
    curves and table. Screenshots of both are kept under test-artifacts/."""
    from playwright.sync_api import expect, sync_playwright

    import nas_engine.discrete.job as discrete_job
    from nas_engine.runner import RunRegistry
    from tests.test_discrete_pages import ToyEvaluator, discrete_config

    monkeypatch.setattr(discrete_job, "Evaluator", ToyEvaluator)
    registry = RunRegistry(tmp_path / "runs")
    ids = []
    for strategy in ("evolution", "random"):
        for seed in (0, 1):
            run = registry.create(discrete_config(strategy, seed=seed, epochs=20)).start()
            run.join()
            ids.append(run.run_id)
    with streamlit_server(tmp_path / "runs") as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/live?run={ids[0]}")
        expect(page.get_by_text(f"{ids[0]} — finished")).to_be_visible()
        for chart in ("live-best-evaluations", "live-best-seconds", "live-population"):
            box = page.locator(f".st-key-{chart} canvas").first.bounding_box()
            assert box["width"] > 300 and box["height"] > 150, chart
        expect(page.get_by_test_id("stGraphVizChart").locator("svg").first).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-discrete-live.png"), full_page=True)

        page.goto(f"{server}/strategies?runs={','.join(ids)}")
        expect(page.get_by_text("Final best scores")).to_be_visible()
        expect(page.locator(".st-key-strategies-curves .main-svg").first).to_be_visible()
        expect(page.get_by_text("evolution (2 runs)")).to_be_visible()
        expect(page.get_by_text("80/80 evaluations · 4 finished")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "browser-strategies.png"), full_page=True)
        browser.close()
    (log,) = tmp_path.glob("streamlit-*.log")
    assert "Traceback" not in log.read_text()


def test_the_zero_cost_page_draws_a_stored_study(tmp_path) -> None:
    """A tiny proxy study (4 NB201 cells, one epoch at C=4: seconds) stored, then picked on
    the Zero-cost page in Chromium: the table, the cost chart and a scatter per column are
    drawn. A screenshot is kept under test-artifacts/."""
    from playwright.sync_api import expect, sync_playwright

    from nas_engine.evaluations import EvaluationsDB
    from nas_engine.proxies.study import plan_study, run_study
    from tests.test_zero_cost_page import TINY, TINY_LINES

    runs = tmp_path / "runs"
    result = run_study(EvaluationsDB(runs), plan_study("nb201", 2, 0, "digits", TINY))
    with streamlit_server(runs) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 3600})  # all of it
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/zero_cost")
        sample = page.get_by_label("sample N", exact=True)
        sample.fill("2")
        sample.press("Enter")
        page.get_by_label("dataset", exact=True).click()
        page.get_by_role("option", name="digits", exact=True).click()
        page.get_by_text("Other settings", exact=True).click()
        other = page.get_by_label("other settings", exact=True)
        other.fill("\n".join(TINY_LINES))
        other.press("Control+Enter")
        expect(page.get_by_text("Agreement with retrained accuracy")).to_be_visible(
            timeout=WAIT_MS)  # the bootstrap intervals take seconds on a busy machine
        for column in ("synflow", "vote"):
            box = page.locator(f".st-key-zero-cost-scatter-{column} canvas").first
            box.wait_for()
            assert box.bounding_box()["width"] > 250, column
        cost = page.locator(".st-key-zero-cost-cost canvas").first
        cost.wait_for()
        assert cost.bounding_box()["height"] > 22 * len(result.columns())
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-zero-cost.png"), full_page=True)
        browser.close()
    (log,) = tmp_path.glob("streamlit-*.log")
    assert "Traceback" not in log.read_text()
