"""Every page through Streamlit's AppTest: start runs from the home page and the Search page,
control a run from the Live view, open runs by `?run=ID`, and check that the figures on the
page hold the snapshot's numbers. The progress line polls from the browser, which AppTest does
not run, so each poll is an explicit `at.run()`. Searches are tiny (a few ms a step) except the
one-click preset, which is stopped at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from starlette.requests import Request
from streamlit.testing.v1 import AppTest

from nas_engine.config import preset
from nas_engine.store import RunFolder
from pages.ui import progress_feed
from pages.ui.common import registry, served
from tests.test_runner import tiny
from tests.test_viz import ALARM, heatmap_arrays, write_run

TIMEOUT = 120
TINY = {  # widget key on the Search page -> value: a DARTS search of a few ms a step
    "cfg:network.layers": 3, "cfg:network.channels": 4, "cfg:data.subset": 200,
    "cfg:epochs": 50, "cfg:data.batch_size": 32,
}


def set_state(folder: Path, state: str) -> None:
    """The state a run folder records, as its writer (long gone) left it."""
    (folder / "status.json").write_text(json.dumps({"state": state}))


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def on_page(at: AppTest, page: str, **params: str) -> AppTest:
    at.query_params.clear()
    at.query_params.update(params)
    return at.switch_page(page).run()


def field(at: AppTest, prefix: str):
    """A live parameter's number field (its key also names the value in force it started from)."""
    (found,) = [n for n in at.number_input if n.key.startswith(f"{prefix}:")]
    return found


def no_failure(at: AppTest) -> None:
    """No exception and no red message other than a collapse alarm (a finding, not a fault)."""
    assert not at.exception, at.exception
    errors = [e.value for e in at.error if not e.value.startswith("**Collapse alarm**")]
    assert not errors, errors


def progress(at: AppTest) -> dict:
    """What the progress line was drawn with: its line and how often it polls (0: never)."""
    (line,) = at.get("bidi_component")
    return json.loads(line.proto.json)


def feed(run_id: str) -> tuple[int, dict]:
    """The progress feed's reply for `run_id`, as the progress line's poll gets it."""
    (route,) = progress_feed.ROUTES
    reply = route.endpoint(Request({"type": "http", "path_params": {"run_id": run_id}}))
    return reply.status_code, json.loads(reply.body)


def vega_datasets(at: AppTest, index: int = 0) -> dict[str, dict[str, list]]:
    """The datasets of the page's `index`-th Vega-Lite chart as the browser receives them
    (Arrow)."""
    proto = at.get("vega_lite_chart")[index].proto
    return {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pydict()
            for d in proto.datasets}


def heatmaps(at: AppTest) -> dict[str, np.ndarray]:
    """Each cell's edges × ops values in the page's first Vega-Lite chart (the α heatmap)."""
    return heatmap_arrays(vega_datasets(at)["alpha"])


def dot_sources(at: AppTest) -> list[str]:
    return [chart.proto.spec for chart in at.get("graphviz_chart")]


def test_search_page_validates_then_starts_and_the_live_view_controls_the_run(app) -> None:
    at = app
    at.run()
    at.switch_page("pages/search.py").run()
    no_failure(at)
    for key, value in TINY.items():
        at.number_input(key=key).set_value(value)
    at.number_input(key="cfg:network.channels").set_value(5)
    at.selectbox(key="cfg:device").set_value("cpu")
    at.text_area(key="cfg:other").set_value("record.log_every=0\nthreads=1\nnot a setting")
    at.run()
    channels, other = (e.value for e in at.error)  # each under its own field
    assert channels == ("network.channels must be even for the DARTS space (FactorizedReduce "
                        "halves it); got 5")
    assert "record.log_every must be an integer >= 1; got 0" in other
    assert "--set must be key=value; got 'not a setting'" in other
    assert button(at, "Start").disabled
    at.number_input(key="cfg:network.channels").set_value(4)
    at.text_area(key="cfg:other").set_value("record.log_every=1\nthreads=1").run()
    no_failure(at)
    np.testing.assert_allclose(heatmaps(at)["normal"], np.full((14, 8), 1 / 8))  # the preview
    ops = ["max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]
    at.multiselect(key="cfg:ops:darts").set_value(ops).run()
    np.testing.assert_allclose(heatmaps(at)["reduce"], np.full((14, 4), 1 / 4))
    button(at, "Start").click().run()
    no_failure(at)

    run = registry().get(at.query_params["run"])  # Start put the run id in the URL
    assert run is not None and "Live view" in at.title[0].value
    at.switch_page("pages/live.py")  # AppTest would rerun the page it was last sent to
    assert run.config.network.layers == 3 and run.config.record.log_every == 1
    assert run.config.ops == ops
    assert run.wait_for(lambda s: s.step >= 2, TIMEOUT)
    at.run()
    assert progress(at)["every_ms"] == 1000  # polls while the run goes on
    assert progress(at)["url"] == f"/alphascope/progress/{run.run_id}"

    button(at, "Pause").click().run()
    assert run.wait_for(lambda s: s.state == "paused", TIMEOUT)
    at.run()
    no_failure(at)
    assert button(at, "Pause").disabled and not button(at, "Step").disabled
    held = run.snapshot().step
    line = progress(at)
    assert line["every_ms"] == 0  # ... and not at all while it is paused
    assert line["line"]["text"].startswith(f"epoch {run.snapshot().epoch + 1}/50 · step {held}/")
    assert line["line"]["fraction"] == pytest.approx(held / run.snapshot().total_steps)
    assert feed(run.run_id) == (200, line["line"])  # a poll would find nothing new to draw
    assert feed("no-such-run")[0] == 404

    at.number_input(key=f"nsteps:{run.run_id}").set_value(2)
    button(at, "Step").click().run()
    assert run.wait_for(lambda s: s.state == "paused" and s.step == held + 2, TIMEOUT)
    assert feed(run.run_id)[1]["stamp"] != line["line"]["stamp"]  # new records: a rerun

    at.run()
    assert field(at, f"live:{run.run_id}:alpha_lr").value == run.snapshot().live["alpha_lr"]
    field(at, f"live:{run.run_id}:alpha_lr").set_value(-1).run()
    assert any(e.value.startswith("alpha_lr must be a number >= 0") for e in at.error)
    field(at, f"live:{run.run_id}:alpha_lr").set_value(0.02).run()
    assert run.wait_for(lambda s: s.live["alpha_lr"] == 0.02, TIMEOUT)
    at.run()
    assert "in force: 0.02" in [c.value for c in at.caption]
    assert field(at, f"live:{run.run_id}:alpha_lr").value == 0.02
    assert not [e.value for e in at.error if "alpha_lr" in e.value]  # the bad value's message went

    snap = run.snapshot()
    z = heatmaps(at)
    assert set(z) == {"normal", "reduce"}
    for cell, values in z.items():
        assert values.shape == (14, 4)
        np.testing.assert_allclose(values, snap.latest["alphas"][cell], atol=1e-9)
    for cell in ("normal", "reduce"):
        at.radio(key="live:cell").set_value(cell).run()
        (source,) = dot_sources(at)
        assert f"{cell} cell" in source
        for op, _ in snap.latest["genotype"][cell]:
            assert f'label="{op} ' in source

    button(at, "Resume").click().run()
    assert run.wait_for(lambda s: s.epoch >= 1, TIMEOUT)  # a checkpoint to branch from
    assert run.snapshot().live_changes[-1]["name"] == "alpha_lr"

    at.run()
    field(at, f"branch:{run.run_id}:entropy_weight").set_value(-0.1)
    button(at, "Branch and start").click().run()
    no_failure(at)
    child = registry().get(at.query_params["run"])
    assert child.run_id != run.run_id
    assert child.snapshot().lineage["parent"] == run.run_id
    assert child.snapshot().lineage["changes"] == {"entropy_weight": -0.1}


def test_home_preset_starts_a_run_listed_in_the_runs_table(app) -> None:
    at = app
    at.run()
    no_failure(at)
    button(at, "Start classroom").click().run()
    no_failure(at)
    run = registry().get(at.query_params["run"])
    assert run is not None and run.state in ("created", "running")
    run.stop()
    assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)
    on_page(at, "app.py")
    no_failure(at)
    table = at.dataframe[0].value
    assert table["run"].tolist() == [run.run_id]
    assert table["open"].tolist() == [f"live?run={run.run_id}"]
    assert table["state"].tolist() == ["stopped"]
    assert table["kind"].tolist() == ["search"]


def test_pages_open_runs_from_the_url(app, tmp_path) -> None:
    at = app
    runs = tmp_path / "runs"
    first = write_run(runs, "darts", seed=1)
    second = write_run(runs, "darts", seed=2)
    at.run()

    on_page(at, "pages/live.py", run=first.run_id)
    no_failure(at)
    snap = first.snapshot()
    z = heatmaps(at)
    np.testing.assert_allclose(z["normal"], snap.latest["alphas"]["normal"])
    assert button(at, "Stop").disabled  # finished: nothing to stop
    assert progress(at)["every_ms"] == 0 and progress(at)["line"]["fraction"] == 1.0
    epochs = snap.config.epochs
    assert progress(at)["line"]["text"].startswith(f"epoch {epochs}/{epochs} · ")
    assert any(first.run_id in m.value for m in at.markdown)

    on_page(at, "pages/inspector.py", run=first.run_id)
    no_failure(at)
    slider = at.select_slider[0]
    slider.set_value(0).run()
    no_failure(at)
    np.testing.assert_allclose(heatmaps(at)["reduce"], snap.steps.alphas["reduce"][0])
    assert len(at.get("plotly_chart")) == 3  # trajectories, mass, timeline (and the heatmap)
    for op, _ in snap.steps.genotypes[0]["normal"]:  # the graph is the cell at that moment
        assert f'label="{op} ' in dot_sources(at)[0]
    assert snap.steps.genotypes[0]["text"] in [c.value for c in at.code]  # the export's text
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[:4] == ["genotype.txt", "genotype.json", "step metrics.csv",
                          "epoch metrics.csv"]
    assert labels[4:] in (["normal cell.svg", "reduce cell.svg"],
                          ["normal cell.dot", "reduce cell.dot"])
    assert at.get("graphviz_chart")[0].proto.engine == "neato"

    on_page(at, "pages/compare.py", runs=f"{first.run_id},{second.run_id}")
    no_failure(at)
    assert at.multiselect[0].value == [first.run_id, second.run_id]
    table = at.dataframe[0].value
    assert table["skip count"].tolist() == [first.snapshot().latest["skip_count"],
                                            second.snapshot().latest["skip_count"]]
    assert len(dot_sources(at)) == 4  # normal and reduce cell of each run

    on_page(at, "pages/lesson.py", run=first.run_id)
    no_failure(at)
    assert any(first.run_id in s.value for s in at.success)


def test_lesson_starts_the_cured_twin_on_the_demo_seed(app, tmp_path) -> None:
    at = app
    demo = write_run(tmp_path / "runs", "darts", seed=3)
    at.run()
    on_page(at, "pages/lesson.py", run=demo.run_id)
    no_failure(at)
    button(at, "Start collapse-cured").click().run()
    no_failure(at)
    twin = registry().get(at.query_params["cure"])
    try:
        assert at.query_params["run"] == demo.run_id
        assert twin.config.seed == 3
        assert twin.config.to_dict() == served(preset("collapse-cured").with_changes(
            {"seed": 3})).to_dict()
        assert "6 · Compare" in [h.value for h in at.subheader]
    finally:
        twin.stop()
        assert twin.wait_for(lambda s: not s.is_active, TIMEOUT)


def test_unknown_runs_and_failing_figures_give_messages_not_tracebacks(app, tmp_path,
                                                                       monkeypatch) -> None:
    at = app
    run = write_run(tmp_path / "runs", "nb201")
    at.run()
    on_page(at, "pages/live.py", run="no-such-run")
    assert not at.exception
    assert "There is no run 'no-such-run'" in at.warning[0].value

    set_state(run.folder.path, "stopped")  # stopped, no checkpoint to continue from
    on_page(at, "pages/live.py", run=run.run_id)
    button(at, "Continue").click().run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        f"run {run.run_id} has no checkpoint to continue from"]

    from nas_engine import viz

    def broken(*args, **kwargs):
        raise RuntimeError("the heatmap broke")

    monkeypatch.setattr(viz, "alpha_heatmap", broken)
    fresh = write_run(tmp_path / "runs", "nb201", seed=7)  # no figure of it drawn (memoised) yet
    on_page(at, "pages/live.py", run=fresh.run_id)
    assert not at.exception
    assert [e.value for e in at.error] == ["The α heatmap and the cell graphs could not be "
                                           "drawn: RuntimeError: the heatmap broke"]
    assert [b.label for b in at.button][:2] == ["Pause", "Resume"]  # the rest of the page stays
    assert "curves" in vega_datasets(at)  # the curves are still drawn
    assert "details" in [e.label for e in at.expander]


def test_live_pages_draw_from_the_snapshot_alone(app, monkeypatch) -> None:
    """λmax, the alarm and the epochs to branch from come with the snapshot: with every read
    of a run's records and checkpoints made to fail, the live view and the lesson still draw
    a run of this process."""
    at = app
    at.run()
    run = registry().create(tiny(epochs=2, **{"diagnostics.hessian_every": 1})).start()
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)
    snap = run.snapshot()

    def no_reads(*args, **kwargs):
        raise AssertionError("a page read the run folder behind the snapshot")

    for name in ("read_records", "last_record", "checkpoints", "load_checkpoint"):
        monkeypatch.setattr(RunFolder, name, no_reads)
    on_page(at, "pages/live.py", run=run.run_id)
    no_failure(at)
    metrics = {m.label: m.value for m in at.metric}
    lam = snap.epochs.hessian_max_eigenvalue
    assert np.isfinite(lam).all() and metrics["Hessian λmax"] == f"{lam[-1]:.3g}"
    assert metrics["skip_connects in the cell"] == f"{snap.latest['skip_count']} of 6"
    alarm = snap.epochs.alarms[-1]
    shown = [e.value for e in at.error if e.value.startswith("**Collapse alarm**")]
    assert shown == ([f"**Collapse alarm** ({alarm['rule']}, epoch {alarm['epoch']}): "
                      f"{alarm['message']}"] if alarm else [])
    (branch_from,) = at.select_slider
    assert snap.checkpoint_epochs == (1, 2)
    assert branch_from.options == ["1", "2"] and branch_from.value == 2
    caption = next(c.value for c in at.caption if c.value.startswith("In force:"))
    assert "speed" not in caption and f"α learning rate **{snap.live['alpha_lr']:g}**" in caption
    on_page(at, "pages/lesson.py", run=run.run_id)
    no_failure(at)
    assert "Branch at epoch 2 with λ = 1" in [b.label for b in at.button]


def test_the_home_table_names_the_alarm_from_the_summary(app, tmp_path) -> None:
    write_run(tmp_path / "runs", "darts", alarm_at=2)
    at = app
    at.run()
    no_failure(at)
    table = at.dataframe[0].value
    assert table["alarm"].tolist() == [f"collapse ({ALARM['rule']}, epoch 2)"]
    assert table["kind"].tolist() == ["search"] and table["state"].tolist() == ["finished"]


def tiny_classroom(monkeypatch, space: str, network: dict) -> None:
    """The classroom retrain of `space` cut to one epoch of a tiny network on 300 small
    images (its optimiser as the profile has it)."""
    from nas_engine import config as cfg

    profile = json.loads(json.dumps(cfg.TRAIN_PROFILES["classroom"][space]))
    profile.update(epochs=1, network=network)
    profile["data"]["clutter"] = {"images": 300, "canvas": 12}
    profile["train"].update(auxiliary_weight=0.0, drop_path=0.0, cutout=0)
    monkeypatch.setitem(cfg.TRAIN_PROFILES["classroom"], space, profile)


def test_retrain_this_cell_from_the_live_view(app, monkeypatch) -> None:
    """Retrain a finished search's epoch-1 cell from its live view: a train run on the hard
    task, its lineage naming the search and the epoch, its own live view showing the result;
    the home table then shows the cell's retrained accuracy."""
    tiny_classroom(monkeypatch, "nb201", {"channels": 4, "cells_per_stage": 1})
    at = app
    at.run()
    search = registry().create(served(tiny(epochs=2, **{"space": "nb201", "ops": None})))
    search.start()
    assert search.wait_for(lambda s: s.state == "finished", TIMEOUT)
    on_page(at, "pages/live.py", run=search.run_id)
    no_failure(at)
    at.selectbox(key=f"retrain-at:{search.run_id}").set_value("end of epoch 1")
    button(at, "Retrain").click().run()
    no_failure(at)
    child = registry().get(at.query_params["run"])
    assert child is not None and child.config.kind == "train"
    epoch1_step = int(search.snapshot().epochs.step[0])
    assert child.snapshot().lineage == {"parent": search.run_id, "epoch": 1,
                                        "step": epoch1_step, "retrain": True}
    epoch1 = search.snapshot().epochs.genotypes[0]
    assert child.config.train.genotype == epoch1["arch_str"]
    assert child.config.data.name == "digits_clutter"
    assert child.wait_for(lambda s: s.state == "finished", TIMEOUT), child.snapshot().message
    on_page(at, "pages/live.py", run=child.run_id)
    no_failure(at)
    shown = {m.label: m.value for m in at.metric}
    result = child.snapshot().latest
    assert shown["test accuracy"] == f"{result['test_acc']:.3f}"
    assert shown["parameters"] == f"{result['params']:,}"
    on_page(at, "pages/inspector.py", run=search.run_id)  # any scrubbed moment, too
    no_failure(at)
    button(at, "Retrain this cell").click().run()
    no_failure(at)
    from_inspector = registry().get(at.query_params["run"])
    assert from_inspector.config.kind == "train"
    assert from_inspector.snapshot().lineage["parent"] == search.run_id
    from_inspector.wait_for(lambda s: not s.state.is_active, TIMEOUT)
    on_page(at, "pages/live.py", run=search.run_id)  # the epoch-1 cell again: trained once
    at.selectbox(key=f"retrain-at:{search.run_id}").set_value("end of epoch 1")
    button(at, "Retrain").click().run()
    assert at.query_params["run"] == child.run_id
    assert any("was retrained before" in w.value for w in at.warning)


def test_the_lesson_retrains_both_cells_and_tabulates_the_two_rankings(app, tmp_path,
                                                                       monkeypatch) -> None:
    """Step 5 of the lesson: each finished search's final cell retrained on the hard task,
    the table holding each supernet's validation accuracy beside its cell's test accuracy."""
    tiny_classroom(monkeypatch, "darts", {"channels": 4, "layers": 3})
    demo = write_run(tmp_path / "runs", "darts", seed=1)
    cured = write_run(tmp_path / "runs", "darts", seed=2)
    at = app
    at.run()
    on_page(at, "pages/lesson.py", run=demo.run_id, cure=cured.run_id)
    no_failure(at)
    button(at, f"Retrain the cell of `{demo.run_id}`").click().run()
    button(at, f"Retrain the cell of `{cured.run_id}`").click().run()
    no_failure(at)
    trains = [registry().get(at.query_params[k]) for k in ("retrain_demo", "retrain_cure")]
    for train, search in zip(trains, (demo, cured)):
        assert train.config.kind == "train" and train.config.data.name == "digits_clutter"
        assert train.snapshot().lineage["parent"] == search.run_id
        assert train.config.train.genotype == search.snapshot().epochs.genotypes[-1]["text"]
        assert train.wait_for(lambda s: s.state == "finished", TIMEOUT)
    at.run()
    no_failure(at)
    table = next(d.value for d in at.dataframe if "supernet val accuracy" in d.value)
    assert table["supernet val accuracy"].tolist() == [
        demo.snapshot().epochs.val_acc[-1], cured.snapshot().epochs.val_acc[-1]]
    assert table["retrained cell, test accuracy"].tolist() == [
        t.snapshot().latest["test_acc"] for t in trains]
    verdicts = [m.value for m in (*at.success, *at.info) if "supernet" in m.value
                or "wins both" in m.value]
    assert len(verdicts) == 1
