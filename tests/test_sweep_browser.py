"""The Sweeps page in a real browser (a `streamlit run` server and the system Chromium): the
phase diagram is drawn, a click on one of its squares opens that square's run in the live
view. The screenshot is kept under test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.app_latency import CHROMIUM, launch_chromium, streamlit_server
from tests.test_sweep_page import make_sweep

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
WAIT_MS = 120_000
PHASE = ".st-key-sweep-phase canvas"  # the phase diagram, drawn by Vega


def test_the_phase_diagram_links_each_square_to_its_run(tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    sweep = make_sweep(tmp_path / "runs")
    runs = {(t["point"]["optim.alpha_lr"], t["point"]["seed"]): t["run_id"]
            for t in sweep.read()["trials"]}
    with streamlit_server(tmp_path / "runs") as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/sweeps?sweep={sweep.sweep_id}")
        chart = page.locator(PHASE).first
        chart.wait_for()
        expect(page.get_by_text("driver interrupted · 3/4 trials done")).to_be_visible()
        box = chart.bounding_box()
        assert box["width"] > 400 and box["height"] > 100
        page.get_by_test_id("stDataFrame").wait_for()  # the trials table
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sweep-phase-diagram.png"), full_page=True)

        # The square of α lr 0.003 on seed 0: the plot's top left quarter (the y axis' labels
        # on its left, the legend on its right).
        plot_left, plot_right, plot_bottom = 40, box["width"] - 100, box["height"] - 50
        page.mouse.click(box["x"] + plot_left + (plot_right - plot_left) / 4,
                         box["y"] + plot_bottom / 4)
        page.wait_for_url("**/live?run=*")
        run_id = page.url.split("run=", 1)[1]
        assert run_id == runs[(0.003, 0)]
        expect(page.get_by_text(f"{run_id} — finished")).to_be_visible()
        browser.close()
    (log,) = tmp_path.glob("streamlit-*.log")
    assert "Traceback" not in log.read_text()
