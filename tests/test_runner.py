"""Run and RunRegistry: controls between steps, live changes, resume, faults, threads; the
states and what each allows; the Recorder as the run folder's one writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from nas_engine import live, snapshot
from nas_engine.cli import summary as shown
from nas_engine.config import RUN_KINDS, SearchConfig
from nas_engine.runner import JOBS, Run, RunRegistry, RunSummary
from nas_engine.search import Search
from nas_engine.states import RunState
from nas_engine.store import Recorder, RunFolder
from tests.test_search import without_timings

TIMEOUT = 120


def tiny(epochs: int = 3, **changes) -> SearchConfig:
    # 100 train images / batch 32: 4 steps an epoch, a few ms each.
    base = {"space": "nb201", "epochs": epochs, "device": "cpu", "threads": 1,
            "network.channels": 4, "data.subset": 200, "data.batch_size": 32,
            "record.log_every": 1, "optim.alpha_lr": 3e-3}
    base.update(changes)
    return SearchConfig().with_changes(base)


def comparable(records: list[dict]) -> list[dict]:
    """Records without wall time and without live-change notes."""
    return without_timings([r for r in records if r["kind"] != "live"])


@pytest.fixture
def registry(tmp_path):
    reg = RunRegistry(tmp_path / "runs")
    yield reg
    reg.stop_all()


def test_pause_holds_and_step_advances_exactly(registry) -> None:
    run = registry.create(tiny(epochs=20)).start()
    assert run.wait_for(lambda s: s.step >= 2, TIMEOUT)
    run.pause()
    assert run.wait_for(lambda s: s.state == "paused", TIMEOUT)
    held = run.snapshot().step
    time.sleep(1.0)
    assert run.snapshot().step == held
    run.step(3)
    assert run.wait_for(lambda s: s.state == "paused" and s.step != held, TIMEOUT)
    assert run.snapshot().step == held + 3
    run.step_epoch()
    assert run.wait_for(lambda s: s.state == "paused" and s.step > held + 3, TIMEOUT)
    snap = run.snapshot()
    assert snap.step % snap.steps_per_epoch == 0 and snap.step <= held + 3 + 4
    assert snap.checkpoint_epochs == tuple(range(1, snap.epoch + 1))  # kept by the run
    run.resume()
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)
    assert run.snapshot().step == 20 * 4


def test_live_change_applies_at_next_step_and_is_logged(registry) -> None:
    run = registry.create(tiny(epochs=3)).start()
    assert run.wait_for(lambda s: s.step >= 1, TIMEOUT)
    run.pause()
    assert run.wait_for(lambda s: s.state == "paused", TIMEOUT)
    at = run.snapshot().step
    run.set("alpha_lr", 0.05)
    with pytest.raises(ValueError, match="^alpha_lr must be"):
        run.set("alpha_lr", -1)
    with pytest.raises(ValueError, match="^name must be a live parameter"):
        run.set("channels", 4)
    run.step(1)
    assert run.wait_for(lambda s: s.step == at + 1 and s.state == "paused", TIMEOUT)
    snap = run.snapshot()
    assert snap.live["alpha_lr"] == 0.05
    assert snap.latest["live"]["alpha_lr"] == 0.05  # the step after the change used it
    assert snap.steps.live[-2]["alpha_lr"] == 3e-3  # the step before did not
    (change,) = snap.live_changes
    assert (change["name"], change["value"], change["previous"], change["step"]) == (
        "alpha_lr", 0.05, 3e-3, at + 1)
    logged = [r for r in run.folder.read_records() if r["kind"] == "live"]
    assert logged == [change]
    assert snap.live["speed"] == 0 and "speed" not in snap.live_in_force  # 0 = no limit
    assert snap.live_in_force["alpha_lr"] == 0.05
    run.stop()
    assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)
    with pytest.raises(ValueError, match="is stopped; nothing is live any more"):
        run.set("alpha_lr", 0.1)  # it would never apply: Continue makes a new session


def test_resume_equals_uninterrupted(registry, tmp_path) -> None:
    whole = Search(tiny(epochs=3)).run()
    run = registry.create(tiny(epochs=3)).start()
    assert run.wait_for(lambda s: s.step >= 1, TIMEOUT)
    run.pause()
    assert run.wait_for(lambda s: s.state == "paused", TIMEOUT)
    run.step(6)  # into the middle of epoch 2
    assert run.wait_for(lambda s: s.state == "paused" and s.step >= 7, TIMEOUT)
    run.stop()
    assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)
    assert RunFolder(run.folder.path).effective_state() == "stopped"
    resumed = registry.resume(run.run_id)
    resumed.start()
    assert resumed.wait_for(lambda s: s.state == "finished", TIMEOUT)
    assert comparable(resumed.folder.read_records()) == comparable(whole)
    assert len(resumed.snapshot().steps) == 12


def test_sigkilled_process_leaves_readable_resumable_folder(tmp_path) -> None:
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "nas_engine", "search", "--runs-dir", str(runs), "--quiet",
           "--space", "nb201", "--epochs", "200", "--device", "cpu",
           "--set", "network.channels=4", "--set", "data.subset=200",
           "--set", "data.batch_size=32", "--set", "threads=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            folders = list(runs.glob("*/metrics.jsonl"))
            if folders and open(folders[0]).read().count('"kind":"epoch"') >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the search did not reach epoch 2: " + proc.stderr.read().decode())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    folder = RunFolder(folders[0].parent)
    records = folder.read_records()
    epochs = [r["epoch"] for r in records if r["kind"] == "epoch"]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 2
    assert folder.effective_state() == "interrupted"
    assert "state    interrupted" in shown(folder).splitlines()  # what `show` prints
    registry = RunRegistry(runs)
    (summary,) = registry.list()
    assert summary.state == "interrupted" and summary.epoch >= 2
    run = registry.resume(folder.run_id, epochs=max(epochs) + 1).start()
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)
    after = [r["epoch"] for r in folder.read_records() if r["kind"] == "epoch"]
    assert after == list(range(1, max(epochs) + 2))


def with_strategy_step(monkeypatch, wrap) -> None:
    """Searches built from now on step their strategy through `wrap(original step)` (the job
    table is where a run gets its job)."""

    def build(config, recorder):
        search = Search(config, recorder)
        search.strategy.step = wrap(search.strategy.step)
        return search

    monkeypatch.setitem(JOBS, "search", build)


def test_nan_loss_fails_with_step_and_keeps_history(registry, monkeypatch) -> None:
    calls = {"n": 0}

    def poison(original):
        def step(*args):
            result = original(*args)
            calls["n"] += 1
            if calls["n"] == 6:
                result.train_loss = torch.tensor(float("nan"))
            return result
        return step

    with_strategy_step(monkeypatch, poison)
    run = registry.create(tiny(epochs=3)).start()
    assert run.wait_for(lambda s: s.state == "failed", TIMEOUT)
    snap = run.snapshot()
    assert "step 6" in snap.message and "nan" in snap.message
    assert run.folder.read_status()["state"] == "failed"
    assert len(run.folder.read_records()) == 5 + 1  # steps 1-5, epoch 1
    assert sorted(run.folder.checkpoints()) == [1] and snap.checkpoint_epochs == (1,)


def test_worker_exception_is_reported(registry, monkeypatch) -> None:
    def broken(original):
        def step(*args):
            raise RuntimeError("boom")
        return step

    with_strategy_step(monkeypatch, broken)
    run = registry.create(tiny()).start()
    assert run.wait_for(lambda s: s.state == "failed", TIMEOUT)
    assert "RuntimeError: boom" in run.snapshot().message
    assert "Traceback" in (run.folder.path / "error.log").read_text()
    monkeypatch.undo()
    other = registry.create(tiny(epochs=1)).start()  # the registry keeps working
    assert other.wait_for(lambda s: s.state == "finished", TIMEOUT)


def test_three_concurrent_runs_do_not_cross_talk(registry) -> None:
    configs = [tiny(epochs=2, seed=s) for s in (0, 1, 2)]
    alone = [comparable(Search(c).run()) for c in configs]
    runs = [registry.create(c).start() for c in configs]
    for run in runs:
        assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)
    together = [comparable(r.folder.read_records()) for r in runs]
    assert together == alone
    assert len({r.run_id for r in runs}) == 3


def test_snapshot_is_consistent_while_running(registry) -> None:
    run = registry.create(tiny(epochs=30)).start()
    versions = []
    for _ in range(30):
        snap = run.snapshot()
        n = len(snap.steps.step)
        for column in (snap.steps.train_loss, snap.steps.entropy, snap.steps.skip_count):
            assert len(column) == n
        assert all(len(a) == n for a in snap.steps.alphas.values())
        assert len(snap.steps.genotypes) == n and len(snap.steps.live) == n
        if n:
            assert snap.steps.step[-1] <= snap.step
            assert np.all(np.diff(snap.steps.step) > 0)
        versions.append(snap.version)
        time.sleep(0.02)
    assert versions == sorted(versions) and versions[-1] > versions[0]
    run.stop()
    assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)


def test_branch_starts_from_parent_checkpoint(registry) -> None:
    parent = registry.create(tiny(epochs=2)).start()
    assert parent.wait_for(lambda s: s.state == "finished", TIMEOUT)
    child = registry.branch(parent.run_id, 1, {"alpha_lr": 0.02, "epochs": 3})
    with pytest.raises(ValueError, match="network.channels cannot change"):
        registry.branch(parent.run_id, 1, {"network.channels": 8})
    inherited = comparable(child.folder.read_records())
    parent_records = comparable(parent.folder.read_records())
    assert inherited == parent_records[:5]  # steps 1-4 and epoch 1
    child.start()
    assert child.wait_for(lambda s: s.state == "finished", TIMEOUT)
    snap = child.snapshot()
    assert snap.lineage["parent"] == parent.run_id and snap.lineage["epoch"] == 1
    assert [int(e) for e in snap.epochs.epoch] == [1, 2, 3]
    assert snap.epochs.live[1]["alpha_lr"] == 0.02
    assert snap.live_changes[0]["step"] == 5
    summaries = {s.run_id: s for s in registry.list()}
    assert summaries[child.run_id].parent == parent.run_id
    assert snap.checkpoint_epochs == (2, 3)  # its own; epoch 1 is the parent's


def test_open_reads_a_finished_run(registry) -> None:
    run = registry.create(tiny(epochs=1)).start()
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)
    view = Run.open(run.folder.path)
    snap = view.snapshot()
    assert snap.state is RunState.FINISHED and len(snap.epochs) == 1 and snap.step == 4
    assert np.array_equal(snap.steps.alphas["cell"], run.snapshot().steps.alphas["cell"])
    assert snap.checkpoint_epochs == run.snapshot().checkpoint_epochs == (1,)
    record = run.folder.last_record(("epoch",))
    assert list(snap.epochs.alarms) == [record["alarm"]]
    np.testing.assert_array_equal(snap.epochs.hessian_max_eigenvalue,
                                  [record.get("hessian_max_eigenvalue", np.nan)])
    assert list(snap.epochs.regularizers) == [record["regularizers"]]
    assert RunSummary.of_folder(run.folder) == RunSummary.of_run(run)  # the table agrees
    assert RunSummary.of_run(run).kind == "search"
    for control in (view.start, view.pause, view.resume, view.stop, view.step_epoch):
        with pytest.raises(RuntimeError, match="is finished and not run by this process"):
            control()


# state: is_active, is_live, is_controllable, is_terminal, can_continue
STATE_TABLE = {
    "created": (True, True, False, False, False),
    "running": (True, True, True, False, False),
    "paused": (False, True, True, False, False),
    "finished": (False, False, False, True, False),
    "stopped": (False, False, False, False, True),
    "failed": (False, False, False, True, False),
    "interrupted": (False, False, False, False, True),
}


def test_each_state_allows_what_its_table_row_says() -> None:
    assert [state.value for state in RunState] == list(STATE_TABLE)
    for value, row in STATE_TABLE.items():
        state = RunState(value)
        assert state == value and f"{state}" == value and json.dumps(state) == f'"{value}"'
        assert (state.is_active, state.is_live, state.is_controllable, state.is_terminal,
                state.can_continue) == row


def test_every_run_kind_has_a_job() -> None:
    assert set(JOBS) == set(RUN_KINDS)


def test_the_snapshot_names_the_speed_limit_as_live_declares_it() -> None:
    assert snapshot.SPEED == live.SPEED.name  # snapshot stays free of live's imports


def test_the_recorder_is_the_only_writer(tmp_path) -> None:
    writes = ("write", "append", "save", "keep", "create", "set_aside", "close")
    assert not [name for name in vars(RunFolder) if name.startswith(writes)]
    recorder = Recorder.create(tmp_path, tiny())
    assert json.loads((recorder.path / "config.json").read_text())["kind"] == "search"
    assert recorder.read_status()["state"] == "created"
    with pytest.raises(ValueError, match="'runing' is not a valid RunState"):
        recorder.write_status("runing")

    def state(epoch, step):
        return {"epoch": epoch, "step_count": step, "records": 0, "config": {}}

    recorder.save_checkpoint(state(2, 8), 2)
    recorder.save_checkpoint(state(1, 4), 1)
    recorder.save_checkpoint(state(1, 6))
    assert recorder.checkpoint_epochs == (1, 2) == tuple(RunFolder(recorder.path).checkpoints())
    assert recorder.load_checkpoint() == state(1, 6)  # latest.pt first
    assert recorder.load_checkpoint(2) == state(2, 8)
    recorder.append_record({"kind": "step", "step": 1, "epoch": 0})
    recorder.append_record({"kind": "step", "step": 2, "epoch": 0})
    recorder.keep_records(recorder.log_prefix(1))
    assert recorder.record_count == 1 and RunFolder(recorder.path).read_records() == [
        {"kind": "step", "step": 1, "epoch": 0}]
