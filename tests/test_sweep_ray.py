"""Sweeps on Ray, end to end and few (Ray starts in seconds): one Ray head on 127.0.0.1 for
the module (`ray start --head --block`, stopped by its pid at the end), which the sweeps here
reach through `--address`; one driver started as a process of its own on a local Ray, killed,
and resumed. Trials are one- or two-epoch searches on 120 digits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas_engine.cli import main
from nas_engine.config import train_config
from nas_engine.evaluation.ground_truth import train_once
from nas_engine.evaluation.training import evaluation_key
from nas_engine.evaluations import EvaluationsDB
from nas_engine.store import RunFolder, list_runs
from nas_engine.sweep import ray_missing
from nas_engine.sweep.folder import list_sweeps
from nas_engine.sweep.phase import phase_cells
from nas_engine.sweep.results import final_cell_retrain, trial_rows

pytestmark = pytest.mark.skipif(ray_missing() is not None, reason="Ray Tune is not installed")

RAY = Path(sys.executable).parent / "ray"
TINY = ["--set", "network.layers=3", "--set", "network.channels=4", "--set", "data.subset=120"]
TINY_RETRAIN = ["--retrain", "--retrain-set", "epochs=1", "--retrain-set",
                "data.clutter.images=300", "--retrain-set", "network.channels=4",
                "--retrain-set", "network.layers=3"]
START_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A Ray head of 2 CPUs on 127.0.0.1 (no dashboard, a small object store, no auth
    token), its address; stopped by the SIGTERM of the process that runs it."""
    port = _free_port()
    log = tmp_path_factory.mktemp("ray") / "head.log"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(RAY), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             "--object-store-memory=134217728", "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + START_S
    while b"Ray runtime started" not in log.read_bytes():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    process.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
    process.wait(60)


def _sweep_of(runs: Path):
    (folder,) = list_sweeps(runs)
    return folder


def test_a_two_by_two_grid_is_four_finished_runs_on_the_head(head, tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    code = main(["sweep", "--preset", "classroom", "--grid", "optim.alpha_lr=0.001,0.01",
                 "--grid", "optim.w_lr=0.025,0.05", "--set", "epochs=2", *TINY,
                 *TINY_RETRAIN, "--runs-dir", str(runs), "--address", head, "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    folders = list_runs(runs)
    assert len(folders) == 4
    assert {f.read_status()["state"] for f in folders} == {"finished"}
    configs = [f.read_config() for f in folders]
    assert sorted((c.optim.alpha_lr, c.optim.w_lr) for c in configs) == [
        (0.001, 0.025), (0.001, 0.05), (0.01, 0.025), (0.01, 0.05)]
    assert {(c.threads, c.epochs, c.network.channels) for c in configs} == {(1, 2, 4)}

    sweep = _sweep_of(runs)
    data = sweep.read()
    assert data["driver"]["state"] == "finished" and data["driver"]["address"] == head
    assert sorted(t["run_id"] for t in data["trials"]) == sorted(f.run_id for f in folders)
    lines = out.out.splitlines()
    assert lines[0] == str(sweep.path) and len(lines) == 1 + 1 + 4  # folder, header, trials
    assert all(" finished " in line and " 2/2 " in line for line in lines[2:])

    # The phase diagram holds what each trial's run recorded last.
    rows = trial_rows(sweep)
    for value, key in (("skip_count", "skip_count"), ("lambda_max", "hessian_max_eigenvalue")):
        for cell in phase_cells(rows, "optim.alpha_lr", "optim.w_lr", value):
            (run_id,) = cell.runs
            last = [r for r in RunFolder(runs / run_id).read_records()
                    if r["kind"] == "epoch"][-1]
            assert cell.value == pytest.approx(last[key]), (value, run_id)

    # Each final cell retrained once, by the driver's fan-out, and stored.
    db = EvaluationsDB(runs)
    keys = [evaluation_key(final_cell_retrain(RunFolder(runs / r.run_id), "classroom",
                                              data["retrain_changes"])) for r in rows]
    assert len(db.rows()) == len({k.columns() for k in keys})
    assert [r.retrained for r in rows] == [db.get(k).test_acc for k in keys]
    assert all(r.retrained is not None for r in rows)
    assert {t["retrain"] for t in data["trials"]} == {"done"}


def test_a_trial_that_diverges_fails_while_the_others_finish(head, tmp_path, capsys) -> None:
    """w lr 10 with weight decay 1 and no clipping: the weights blow up within a few dozen
    steps (a NaN loss); w lr 0.025 trains."""
    runs = tmp_path / "runs"
    code = main(["sweep", "--preset", "classroom", "--grid", "optim.w_lr=0.025,10",
                 "--set", "epochs=2", "--set", "data.batch_size=2", "--set",
                 "optim.w_weight_decay=1", "--set", "optim.grad_clip=1e30", *TINY,
                 "--runs-dir", str(runs), "--address", head, "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    trials = _sweep_of(runs).read()["trials"]
    assert [t["state"] for t in trials] == ["finished", "failed"]
    assert "the loss is not finite" in trials[1]["message"]
    states = {f.read_config().optim.w_lr: f.read_status()["state"] for f in list_runs(runs)}
    assert states == {0.025: "finished", 10: "failed"}
    assert "trial 1 failed: step" in out.out and "the loss is not finite" in out.out


def test_retrains_fan_out_once_per_key(head, tmp_path) -> None:
    """Three requests, two of one cell and one the database has: one Ray task trains."""
    import ray

    from nas_engine.sweep.fanout import Fanout

    tiny = {"epochs": 1, "data.clutter.images": 200, "network.channels": 4, "threads": 1}
    stored_cell, new_cell = ("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|"
                             "skip_connect~2|", "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|"
                             "none~0|none~1|skip_connect~2|")
    db = EvaluationsDB(tmp_path)
    before = train_once(train_config("nb201", stored_cell, changes=tiny), db)
    configs = [train_config("nb201", cell, changes=tiny)
               for cell in (new_cell, new_cell, stored_cell)]
    ray.init(address=head, logging_level="ERROR", log_to_driver=False)
    try:
        fanout = Fanout(db)
        keys = [fanout.submit(c) for c in configs]
        assert fanout.collect() == 1  # one task in flight: the new cell, once
        fanout.drain()
    finally:
        ray.shutdown()
    assert fanout.trained == 1 and keys[0] == keys[1] and not fanout.failed
    assert len(db.rows()) == 2
    assert db.get(evaluation_key(configs[2])).created == before.created  # left as it was
    assert 0 <= db.get(evaluation_key(configs[0])).test_acc <= 1


def test_a_proxy_studys_missing_truth_fans_out_to_ray(head, tmp_path, capsys,
                                                     monkeypatch) -> None:
    """`proxies --address`: the four retrains run as Ray tasks (this process trains none)
    and this process stores them; the table follows from the database."""
    from nas_engine.evaluation import ground_truth
    from nas_engine.proxies.study import plan_study

    def no_training_here(*args, **kwargs):
        raise AssertionError("the retrains run on Ray")

    monkeypatch.setattr(ground_truth, "training_job", no_training_here)
    tiny = {"epochs": 1, "network.channels": 4, "data.batch_size": 32}
    argv = ["proxies", "--sample", "2", "--dataset", "digits", "--runs-dir", str(tmp_path),
            "--proxies", "params", "--json", "--quiet", "--address", head,
            *(part for key, value in tiny.items() for part in ("--set", f"{key}={value}"))]
    assert main(argv) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["proxy"] == "params" and row["n"] + row["undefined"] == 4
    db = EvaluationsDB(tmp_path)
    plan = plan_study("nb201", 2, 0, "digits", tiny)
    assert all(db.get(evaluation_key(c)) is not None for c in plan.configs)


def test_resume_after_killing_the_driver_runs_only_what_was_missing(head, tmp_path) -> None:
    """A driver on a local Ray of its own runs three five-epoch trials one at a time; it is
    killed (with its Ray) once the second trial has an epoch done, well before its last (the
    four epochs left take seconds: more than the kill takes on a loaded machine). `--resume`
    leaves the first alone, lets the second go on in its own folder, and runs the third."""
    epochs = 5
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "nas_engine", "sweep", "--preset", "classroom",
               "--seeds", "0-2", "--set", f"epochs={epochs}", "--set", "data.batch_size=8",
               *TINY, "--max-concurrent", "1", "--runs-dir", str(runs), "--quiet"]
    local = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True, env=local)
    deadline = time.monotonic() + 240
    trials: list = []
    while not (trials and trials[0]["state"] == "finished" and trials[1].get("epoch")):
        assert driver.poll() is None and time.monotonic() < deadline, driver.stderr.read()
        time.sleep(0.1)
        sweeps = list_sweeps(runs)
        if sweeps:
            trials = json.loads((sweeps[0].path / "sweep.json").read_bytes())["trials"]
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
    driver.wait(30)
    sweep = _sweep_of(runs)
    assert sweep.driver_state() == "interrupted"
    first, second = (RunFolder(runs / t["run_id"]) for t in trials[:2])
    first_log = (first.path / "metrics.jsonl").read_bytes()
    while second.lock_holder() is not None:  # the killed trial's worker goes with its Ray
        assert time.monotonic() < deadline
        time.sleep(0.1)
    saved = sorted(second.checkpoints())
    assert second.effective_state() == "interrupted" and saved == list(range(1, len(saved) + 1))
    assert 1 <= len(saved) < epochs

    assert main(["sweep", "--resume", str(sweep.path), "--address", head, "--quiet"]) == 0
    data = sweep.read()
    assert [t["state"] for t in data["trials"]] == ["finished"] * 3
    assert [t["run_id"] for t in data["trials"][:2]] == [first.run_id, second.run_id]
    assert (first.path / "metrics.jsonl").read_bytes() == first_log  # not run again
    assert [r["epoch"] for r in second.read_records() if r["kind"] == "epoch"] == list(
        range(1, epochs + 1))
    assert len(list_runs(runs)) == 3  # one folder per trial
    assert {f.read_status()["state"] for f in list_runs(runs)} == {"finished"}
