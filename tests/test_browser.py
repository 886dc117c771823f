"""The app in a real browser: a `streamlit run` server on 127.0.0.1 and the system Chromium.
Start the classroom preset from the home page, see the α heatmap change between two polls,
pause, reload and find the same run (also in a second tab, and from the home page's table).
A screenshot of the live view is kept under test-artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.app_latency import CHROMIUM, HEATMAP, launch_chromium, streamlit_server
from nas_engine.store import RunFolder

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
WAIT_MS = 120_000
# The heatmap's numbers as plotly holds them in the page (decoded from its binary transfer).
HEATMAP_VALUES = (f"() => JSON.stringify(document.querySelector('{HEATMAP}')"
                  ".closest('.js-plotly-plot')._fullData"
                  ".map(trace => Array.from(trace.z, row => Array.from(row))))")


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

        page.locator(HEATMAP).first.wait_for()
        first = page.evaluate(HEATMAP_VALUES)
        page.wait_for_function(f"first => ({HEATMAP_VALUES})() !== first", arg=first,
                               polling=500)
        before, after = json.loads(first), json.loads(page.evaluate(HEATMAP_VALUES))
        assert len(after) == 2 and len(after[0]) == 14 and len(after[0][0]) == 8
        assert after != before

        page.get_by_role("button", name="Pause").click()
        header = page.get_by_text(f"{run_id} — paused")
        header.wait_for()
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
        browser.close()
        folder = RunFolder(tmp_path / "runs" / run_id)
        assert folder.read_status()["state"] == "paused"  # closing every tab left it alone
    assert folder.read_status()["state"] == "stopped"  # stopping the server stopped it
    assert (folder.path / "checkpoints" / "latest.pt").is_file()
