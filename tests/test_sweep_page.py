"""The Sweeps page through AppTest, on a sweep whose trials ran here without Ray (the page
only reads sweep.json and run folders): the trials table, the phase diagram holding the runs'
final records, the progress line, the build form refusing a bad value and launching a good
one (its driver replaced by a stand-in), and the one line that says how to install Ray."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from starlette.requests import Request

from nas_engine.device import cpu_threads
from nas_engine.store import RunFolder
from nas_engine.sweep import INSTALL
from nas_engine.sweep.folder import SweepFolder, list_sweeps
from nas_engine.sweep.spec import SweepSpec
from nas_engine.sweep.trial import run_trial
from pages.ui import sweep_builder, sweep_feed
from pages.ui.common import runs_dir
from tests.test_app import button, no_failure, on_page, progress, vega_datasets

TINY = {"space": "nb201", "ops": None, "epochs": 2, "device": "cpu", "network.channels": 4,
        "data.subset": 200, "data.batch_size": 32}
SETTINGS = [0.003, 0.03]


def make_sweep(runs: Path) -> SweepFolder:
    """A 2 settings × 2 seeds sweep under `runs` whose first three trials ran here (the last
    is pending) and whose driver is gone."""
    spec = SweepSpec("page", None, {"optim.alpha_lr": SETTINGS}, [0, 1], TINY).validate()
    folder = SweepFolder.create(runs, spec)
    data = folder.read()
    for trial, config in list(zip(data["trials"], spec.configs()))[:3]:
        run = run_trial(config, runs, "page", None, lambda m, names: None)
        trial.update(state="finished", run_id=run.run_id)
    data["driver"]["state"] = "running"  # no process holds its lock: interrupted
    folder.write(data)
    return folder


@pytest.fixture
def sweep(app) -> SweepFolder:
    return make_sweep(runs_dir())


def final(folder_id: str) -> dict:
    folder = RunFolder(runs_dir() / folder_id)
    return [r for r in folder.read_records() if r["kind"] == "epoch"][-1]


def test_the_page_shows_the_trials_and_their_phase_diagram(app, sweep) -> None:
    at = on_page(app, "pages/sweeps.py", sweep=sweep.sweep_id)
    no_failure(at)
    data = sweep.read()
    (table,) = at.dataframe
    trials = table.value
    assert list(trials["state"]) == ["finished"] * 3 + ["pending"]
    assert list(trials["open"][:3]) == [f"live?run={t['run_id']}" for t in data["trials"][:3]]
    assert trials["skip count"][0] == final(data["trials"][0]["run_id"])["skip_count"]
    line = progress(at)
    assert line["line"]["text"].startswith("driver interrupted · 3/4 trials done · 0 running")
    assert line["every_ms"] == 0  # nothing will change by itself
    assert button(at, "Go on")  # only the unfinished trial would run

    phase = vega_datasets(at)["phase"]  # x: the α lr, y: the seed, colour: skip count
    expected = {(f"{t['point']['optim.alpha_lr']:g}", str(t["point"]["seed"])):
                final(t["run_id"])["skip_count"] for t in data["trials"][:3]}
    assert dict(zip(zip(phase["x"], phase["y"]), phase["value"])) == {
        **expected, ("0.03", "1"): None}
    assert phase["link"][0] == f"live?run={data['trials'][0]['run_id']}"

    at.selectbox(key="sweep:value").set_value("lambda_max").run()
    phase = vega_datasets(at)["phase"]
    assert phase["value"][:3] == [final(t["run_id"])["hessian_max_eigenvalue"]
                                  for t in data["trials"][:3]]


def test_the_feed_answers_for_a_sweep_and_refuses_others(app, sweep) -> None:
    (route,) = sweep_feed.ROUTES
    for query, status in ((f"sweep={sweep.sweep_id}", 200), ("sweep=nope", 404),
                          ("sweep=..", 404)):
        request = Request({"type": "http", "query_string": query.encode(), "headers": []})
        reply = route.endpoint(request)
        assert reply.status_code == status, query
    (sweep.path / "sweep.json").write_text("{not json")
    request = Request({"type": "http", "query_string": f"sweep={sweep.sweep_id}".encode(),
                       "headers": []})
    reply = route.endpoint(request)
    assert reply.status_code == 422 and json.loads(reply.body)["error"].startswith(
        "unreadable: sweep.json: is not JSON")


def test_the_form_refuses_a_bad_value_and_launches_a_good_sweep(app, monkeypatch) -> None:
    started = []
    monkeypatch.setattr(sweep_builder, "start_driver", started.append)
    at = on_page(app, "pages/sweeps.py")
    no_failure(at)
    at.text_input(key="sweep:values0").set_value("0.01, -1").run()
    assert [e.value for e in at.error] == [
        "--grid optim.alpha_lr=-1: optim.alpha_lr must be a number >= 0.0 and <= 10.0; "
        "got -1"]
    assert button(at, "Launch").disabled
    at.text_input(key="sweep:values0").set_value("0.01, 0.1").run()
    at.text_input(key="sweep:key1").set_value("regularizers.entropy.weight")
    at.text_input(key="sweep:values1").set_value("-1, 1").run()
    at.text_input(key="sweep:seeds").set_value("3").run()
    no_failure(at)
    button(at, "Launch").click().run()
    (folder,) = list_sweeps(runs_dir())
    assert [f.path for f in started] == [folder.path]
    assert at.query_params["sweep"] == folder.sweep_id
    data = folder.read()
    assert data["grid"] == {"optim.alpha_lr": [0.01, 0.1],
                            "regularizers.entropy.weight": [-1, 1]}
    assert data["seeds"] == [3] and len(data["trials"]) == 4
    assert data["preset"] == "classroom" and data["max_concurrent"] == cpu_threads(None)


def test_without_ray_the_page_says_how_to_install_it(app, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    at = on_page(app, "pages/sweeps.py")
    no_failure(at)
    assert [i.value for i in at.info][0] == (
        f"Sweeps need Ray Tune, which is not installed: {INSTALL}")
    assert button(at, "Launch collapse-map").disabled
