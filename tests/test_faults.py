"""Faults and damaged run folders, through the command line and the registry (issue 13): a
stop at the end of an epoch or in the middle of one, SIGTERM, crashes between checkpoints,
corrupted log lines, edited configs, damaged and crafted checkpoints, two resumes at once, a
full disk, a bad runs folder, a NaN loss. A refusal is exit code 2 and one line naming the
file, with the folder as it was; a resumed run writes exactly the records of one that was
never interrupted."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from nas_engine import checkpoints, store
from nas_engine.cli import main
from nas_engine.runner import JOBS, Run, RunRegistry
from nas_engine.search import Search
from nas_engine.store import Recorder, RunFolder, RunInUse, list_runs
from tests.test_runner import TIMEOUT, comparable, tiny
from tests.test_search import without_timings
from tests.test_store import Payload, full_disk

# tiny() as command-line settings (4 steps an epoch, one record a step).
TINY = ["--space", "nb201", "--device", "cpu", "--set", "network.channels=4",
        "--set", "data.subset=200", "--set", "data.batch_size=32", "--set", "threads=1",
        "--set", "record.log_every=1", "--set", "optim.alpha_lr=0.003"]
STOP_STEP = 6  # the template run stopped here: mid epoch 2 of 3


@pytest.fixture(scope="module")
def whole() -> list[dict]:
    """The records of tiny(epochs=3) never interrupted."""
    return comparable(Search(tiny(epochs=3)).run())


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A run folder as a Stop at step 6 leaves it: 7 log lines, epoch_0001.pt, latest.pt."""
    recorder = Recorder.create(tmp_path_factory.mktemp("template"), tiny(epochs=3))
    search = Search(tiny(epochs=3), recorder)
    while search.step_count < STOP_STEP:
        search.step()
    recorder.save_checkpoint({**search.state_dict(), "speed": 0.0})  # as Run.stop saves it
    recorder.write_status("stopped")
    recorder.close()
    return recorder.path


@pytest.fixture
def stopped(template, tmp_path) -> RunFolder:
    """A copy of the template under tmp_path/runs."""
    return RunFolder(shutil.copytree(template, tmp_path / "runs" / template.name))


def contents(folder: RunFolder) -> dict[str, bytes]:
    """Every file but the lock (whose holder note each opener rewrites)."""
    return {str(p.relative_to(folder.path)): p.read_bytes()
            for p in sorted(folder.path.rglob("*")) if p.is_file() and p.name != "run.lock"}


def one_line(capsys, needle: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ") and needle in line, line
    return line


def records(folder: RunFolder) -> list[dict]:
    return comparable(folder.read_records())


def dead_pid() -> int:
    """The pid of a process that has ended (status.json of a killed run names one)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


# -- stopping: at the end of an epoch, mid-epoch, SIGTERM ------------------------------------
@pytest.mark.parametrize("where, at, signum, stop_step", [
    ("evaluate", 1, signal.SIGINT, 4),  # Ctrl-C while the epoch's validation runs
    ("epoch_fields", 1, signal.SIGTERM, 4),  # SIGTERM while λmax is measured
    ("step", 6, signal.SIGINT, 6),  # Ctrl-C in the middle of epoch 2
], ids=["ctrl-c-in-validation", "sigterm-in-lambda-max", "ctrl-c-mid-epoch"])
def test_a_stop_anywhere_keeps_end_of_epoch_checkpoints_and_resumes_exactly(
        tmp_path, capsys, monkeypatch, where, at, signum, stop_step) -> None:
    stopping = threading.Event()
    stop = Run.stop

    def stop_and_tell(self) -> None:
        stop(self)
        stopping.set()

    pytest_sigterm = signal.getsignal(signal.SIGTERM)
    before: dict[int, bytes] = {}  # the epoch checkpoints when the signal came

    def build(config, recorder):
        search = Search(config, recorder)
        owner = {"evaluate": search, "epoch_fields": search.components,
                 "step": search.strategy}[where]
        original, calls = getattr(owner, where), []

        def interrupted(*args):
            calls.append(1)
            if len(calls) == at:
                while signal.getsignal(signal.SIGTERM) is pytest_sigterm:
                    time.sleep(0.001)  # until the CLI follows the run (its handler is set)
                before.update({epoch: path.read_bytes() for epoch, path
                               in RunFolder(recorder.path).checkpoints().items()})
                os.kill(os.getpid(), signum)  # the main thread gets it, as from a terminal
                assert stopping.wait(TIMEOUT)
            return original(*args)

        setattr(owner, where, interrupted)
        return search

    monkeypatch.setattr(Run, "stop", stop_and_tell)
    monkeypatch.setitem(JOBS, "search", build)
    sets = ["--set", "diagnostics.hessian_every=1"] if where == "epoch_fields" else []
    assert main(["search", "--epochs", "3", "--runs-dir", str(tmp_path), "--quiet", *TINY,
                 *sets]) == 130
    (folder,) = list_runs(tmp_path)
    err = capsys.readouterr().err
    assert err.splitlines() == [f"stopped; resume from {folder.path}"]
    assert folder.read_status()["state"] == "stopped"
    assert signal.getsignal(signal.SIGTERM) is pytest_sigterm
    assert sorted(folder.checkpoints()) == [1]  # an end-of-epoch state, never another
    saved = folder.load_checkpoint(1)
    assert (saved["epoch"], saved["step_count"]) == (1, 4)
    assert {e: folder.checkpoints()[e].read_bytes() for e in before} == before  # untouched
    latest = folder.load_checkpoint()
    assert (latest["step_count"], latest["epoch"]) == (stop_step, stop_step // 4)
    monkeypatch.setitem(JOBS, "search", Search)
    assert main(["resume", str(folder.path), "--quiet"]) == 0
    config = folder.read_config()
    assert without_timings(folder.read_records()) == without_timings(Search(config).run())
    assert sorted(folder.checkpoints()) == [1, 2, 3]


def test_sigterm_to_a_cli_search_stops_it_as_ctrl_c_does(tmp_path) -> None:
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "nas_engine", "search", "--epochs", "300", "--runs-dir",
           str(runs), "--quiet", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any(f.read_text().count('"kind":"epoch"') for f in runs.glob("*/metrics.jsonl")):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    (folder,) = list_runs(runs)
    assert proc.returncode == 130 and out == ""
    assert err.splitlines() == [f"stopped; resume from {folder.path}"]
    assert folder.read_status()["state"] == "stopped"
    latest = folder.load_checkpoint()
    done = latest["step_count"]
    log_lines = (folder.path / "metrics.jsonl").read_bytes().count(b"\n")
    assert done >= 4 and latest["records"] == log_lines  # nothing logged after the stop
    search = Search(folder.read_config())  # the same search, stepped as far: the same records
    expected = []
    while search.step_count < done:
        expected += search.step()
    assert without_timings(folder.read_records()) == without_timings(expected)


# -- crashes between checkpoints, corrupted lines --------------------------------------------
def crashed_in_epoch_2(tmp_path, last_line: int) -> RunFolder:
    """A finished tiny(3) run made to look killed mid epoch 2: its log has `last_line` lines
    (past epoch 1's checkpoint, the newest left), status.json says running, its pid dead."""
    recorder = Recorder.create(tmp_path / "runs", tiny(epochs=3))
    Search(tiny(epochs=3), recorder).run()
    for epoch in (2, 3):
        recorder.checkpoints()[epoch].unlink()
    log = recorder.path / "metrics.jsonl"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:last_line]))
    recorder.write_status("running", pid=dead_pid())
    recorder.close()
    return RunFolder(recorder.path)


def test_a_resume_after_a_crash_between_checkpoints_writes_every_record_once(
        tmp_path, whole) -> None:
    folder = crashed_in_epoch_2(tmp_path, 8)  # steps 1-4, epoch 1, steps 5-7
    assert folder.effective_state() == "interrupted"
    run = RunRegistry(tmp_path / "runs").resume(folder.run_id).start()
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)
    assert records(folder) == whole
    assert [int(e) for e in run.snapshot().epochs.epoch] == [1, 2, 3]


def test_a_corrupted_line_before_the_checkpoint_is_lost_alone(tmp_path, whole) -> None:
    folder = crashed_in_epoch_2(tmp_path, 8)
    log = folder.path / "metrics.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"kind": "step", "st\n'  # step 2's line, corrupted on disk
    log.write_bytes(b"".join(lines))
    run = RunRegistry(tmp_path / "runs").resume(folder.run_id).start()
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT)
    assert records(folder) == whole[:1] + whole[2:]  # steps 5-7 were cut and written once


def test_lines_that_are_not_records_are_skipped_and_cut_as_lines(stopped, capsys,
                                                                 whole) -> None:
    log = stopped.path / "metrics.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    for i, junk in zip((0, 2, 5, 6), (b"42\n", b"{}\n", b"[1]\n", b'"text"\n'), strict=True):
        lines[i] = junk  # records lost to corruption: steps 1, 3, 5 and 6
    log.write_bytes(b"".join(lines) + b"42\n{}\n")  # and junk after what the checkpoint saw
    assert main(["show", str(stopped.path)]) == 0
    assert "epochs   1/3" in capsys.readouterr().out
    assert main(["resume", str(stopped.path), "--quiet"]) == 0
    lost = {0, 2, 5, 6}
    assert records(stopped) == [r for i, r in enumerate(whole) if i not in lost]


# -- refusals that leave the folder as it was ------------------------------------------------
def edit_config(folder: RunFolder, **changes) -> None:
    config = folder.read_config().to_dict()
    (folder.path / "config.json").write_text(json.dumps({**config, **changes}))


@pytest.mark.parametrize("damage, needle", [
    (lambda f: edit_config(f, ops=["none", "skip_connect", "nor_conv_3x3"]),
     "config.json: ops is ['none', 'skip_connect', 'nor_conv_3x3'], but the checkpoint "
     "latest.pt was made with"),
    (lambda f: edit_config(f, seed=7), "config.json: seed is 7, but the checkpoint latest.pt "
     "was made with 0 (config.json was changed after the run: put it back)"),
    (lambda f: (f.path / "config.json").write_text("{"), "config.json: is not valid JSON"),
    (lambda f: (f.path / "status.json").write_text("[1]"),
     "status.json: must be a JSON object; got [1]"),
    (lambda f: (f.path / "metrics.jsonl").write_bytes(
        b"".join((f.path / "metrics.jsonl").read_bytes().splitlines(keepends=True)[:3])),
     "metrics.jsonl: holds 3 complete lines, fewer than the 7 its checkpoint had seen"),
    (lambda f: (f.path / "metrics.jsonl").write_bytes(
        b'{"kind": "epoch", "step": 4, "epoch": 1}\n'
        + b"".join((f.path / "metrics.jsonl").read_bytes().splitlines(keepends=True)[1:])),
     "metrics.jsonl: the epoch record of step 4 is not one this run writes (KeyError"),
], ids=["ops", "seed", "config-json", "status-json", "log-shortened", "record-edited"])
def test_a_refused_resume_leaves_the_folder_as_it_was(stopped, capsys, damage,
                                                      needle) -> None:
    damage(stopped)
    before = contents(stopped)
    assert main(["resume", str(stopped.path)]) == 2
    one_line(capsys, needle)
    assert contents(stopped) == before
    assert RunFolder(stopped.path).lock_holder() is None  # the refusal let go of the lock


@pytest.mark.parametrize("damage", [
    lambda data: data[: len(data) // 3],
    lambda data: b"",
    lambda data: random.Random(1).randbytes(len(data)),
    lambda data: data[:1000] + bytes([data[1000] ^ 1]) + data[1001:],
], ids=["truncated", "empty", "random", "one-bit"])
def test_a_damaged_checkpoint_gives_way_to_the_one_before(stopped, capsys, whole,
                                                          damage) -> None:
    latest = stopped.path / "checkpoints" / "latest.pt"
    latest.write_bytes(damage(latest.read_bytes()))
    assert main(["resume", str(stopped.path), "--quiet"]) == 0
    err = capsys.readouterr().err
    (warning,) = err.splitlines()
    assert warning.startswith(f"warning: {latest}: damaged: ")
    assert warning.endswith("; resuming from epoch_0001.pt")
    assert records(stopped) == whole
    assert (latest.parent / "latest.pt.damaged").is_file()  # kept for a person to look at


def test_no_usable_checkpoint_is_one_line_and_changes_nothing(stopped, capsys) -> None:
    for path in (stopped.path / "checkpoints").iterdir():
        path.write_bytes(path.read_bytes()[:500])
    before = contents(stopped)
    assert main(["resume", str(stopped.path)]) == 2
    one_line(capsys, "checkpoints: no usable checkpoint to continue from (latest.pt: "
                     "damaged: cut short (its end is missing))")
    assert contents(stopped) == before


def test_a_crafted_checkpoint_runs_nothing_on_resume_or_branch(stopped, capsys,
                                                               tmp_path) -> None:
    marker = tmp_path / "ran"
    directory = stopped.path / "checkpoints"
    for name in ("latest.pt", "epoch_0001.pt"):
        state = checkpoints.decode((directory / name).read_bytes(), directory / name)
        (directory / name).write_bytes(checkpoints.encode({**state, "x": Payload(marker)}))
    before = contents(stopped)
    assert main(["resume", str(stopped.path)]) == 2
    one_line(capsys, "latest.pt: refused: it would load posix.system, which no checkpoint "
                     "holds (a crafted file?); nothing in it ran")
    registry = RunRegistry(stopped.path.parent)
    with pytest.raises(ValueError, match=r"epoch_0001\.pt: refused: it would load "
                       r"posix\.system") as caught:
        registry.branch(stopped.run_id, 1)
    assert "\n" not in str(caught.value)
    assert not marker.exists()
    assert contents(stopped) == before and len(list_runs(stopped.path.parent)) == 1


def test_two_resumes_of_one_run_cannot_both_run(stopped, capsys, whole) -> None:
    first = Run.resume_from(stopped.path)  # holds the folder from here on
    with pytest.raises(RunInUse, match=f"in use by process {os.getpid()} since"):
        Run.resume_from(stopped.path)
    other = subprocess.run([sys.executable, "-m", "nas_engine", "resume", str(stopped.path)],
                           capture_output=True, text=True, timeout=TIMEOUT)
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert other.stderr.splitlines() == [
        f"error: {stopped.path / 'run.lock'}: the run is in use by process {os.getpid()} "
        f"since {RunFolder(stopped.path).lock_holder().split(' since ')[1]}; wait for it to "
        "end or stop it there"]
    first.start()
    assert first.wait_for(lambda s: s.state == "finished", TIMEOUT)
    first.join()
    assert records(stopped) == whole  # each record once
    assert RunFolder(stopped.path).lock_holder() is None  # let go when the run ended


# -- a full disk ------------------------------------------------------------------------------
def checkpoint_fills_the_disk(monkeypatch) -> None:
    """The disk is full from the first checkpoint write on: each write takes some bytes and
    fails (a fault-injected writer: works without root)."""
    real, full = store._write_all, []

    def write_all(f, data) -> None:
        if full or data.startswith(checkpoints.ZIP_MAGIC):
            full.append(1)
            real(f, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(f, data)

    monkeypatch.setattr(store, "_write_all", write_all)


def no_temp_files(path: Path) -> bool:
    return not [p for p in path.rglob("*") if ".tmp" in p.name]


def test_a_full_disk_fails_the_run_and_the_registry_goes_on(tmp_path, monkeypatch) -> None:
    registry = RunRegistry(tmp_path / "runs")
    checkpoint_fills_the_disk(monkeypatch)
    run = registry.create(tiny(epochs=2)).start()
    assert run.wait_for(lambda s: s.state == "failed", TIMEOUT)
    run.join(TIMEOUT)
    assert run.snapshot().message == ("step 4: could not write checkpoints/epoch_0001.pt: no "
                                      "space left on device")  # error.log could not be written
    assert run.folder.read_status()["state"] == "running"  # the disk refused that too
    assert no_temp_files(run.folder.path)
    assert [r["kind"] for r in run.folder.read_records()] == ["step"] * 4 + ["epoch"]
    assert RunFolder(run.folder.path).lock_holder() is None
    (row,) = registry.list()
    assert (row.state, row.problem) == ("failed", None)
    monkeypatch.undo()
    other = registry.create(tiny(epochs=1)).start()
    assert other.wait_for(lambda s: s.state == "finished", TIMEOUT)
    assert RunFolder(run.folder.path).effective_state() == "interrupted"  # to other readers


def test_a_full_disk_is_one_line_from_the_cli(tmp_path, capsys, monkeypatch) -> None:
    checkpoint_fills_the_disk(monkeypatch)
    assert main(["search", "--epochs", "2", "--runs-dir", str(tmp_path), "--quiet",
                 *TINY]) == 1
    one_line(capsys, "error: step 4: could not write checkpoints/epoch_0001.pt: no space left "
                     "on device")
    assert no_temp_files(tmp_path)


def test_a_disk_full_before_the_run_folder_exists_leaves_none(tmp_path, capsys,
                                                             monkeypatch) -> None:
    full_disk(monkeypatch)
    assert main(["search", "--epochs", "1", "--runs-dir", str(tmp_path), "--quiet",
                 *TINY]) == 1
    line = one_line(capsys, "config.json: No space left on device")
    assert line.startswith(f"error: {tmp_path}/") and list(tmp_path.iterdir()) == []


@pytest.fixture
def small_disk(tmp_path):
    """A mount point for a tmpfs of a given size (tests run as root here; skipped when not)."""
    mounted = []

    def mount(size_kib: int, *options: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        opts = ",".join([f"size={size_kib}k", *options])
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs",
                                                str(point)], capture_output=True).returncode:
            pytest.skip("needs root to mount a tmpfs")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=True)


def test_a_full_small_filesystem_fails_the_cli_run_cleanly(tmp_path, capsys,
                                                           small_disk) -> None:
    search = Search(tiny(epochs=1))
    search.run()  # optimiser states included
    size = len(checkpoints.encode(search.state_dict()))
    disk = small_disk(int(1.5 * size / 1024) + 64)  # one epoch checkpoint fits, two do not
    assert main(["search", "--epochs", "3", "--runs-dir", str(disk), "--quiet", *TINY]) == 1
    line = one_line(capsys, ": could not write checkpoints/epoch_0002.pt: no space left on "
                            "device")
    (folder,) = list_runs(disk)
    status = folder.read_status()
    assert status["state"] == "failed" and status["message"] == line.removeprefix("error: ")
    assert no_temp_files(disk)
    assert "Traceback" in (folder.path / "error.log").read_text()
    assert [s.state for s in RunRegistry(disk).list()] == ["failed"]
    shutil.rmtree(folder.path)
    assert main(["search", "--epochs", "1", "--runs-dir", str(disk), "--quiet", *TINY]) == 0


# -- the command line's one-line promises ----------------------------------------------------
@pytest.mark.parametrize("case", ["file", "under-a-file", "read-only"])
def test_a_bad_runs_dir_is_one_line_before_the_data_loads(tmp_path, capsys, monkeypatch,
                                                          small_disk, case) -> None:
    def no_data(*args, **kwargs):
        raise AssertionError("the data loaded before the runs folder was checked")

    monkeypatch.setattr("nas_engine.runner.load_images", no_data)
    afile = tmp_path / "afile"
    afile.write_text("")
    if case == "read-only":
        runs = small_disk(64, "ro")
        needle = f"--runs-dir {runs} is not writable (Read-only file system)"
    else:
        runs = afile if case == "file" else afile / "runs"
        needle = f"--runs-dir {runs} is {'a' if case == 'file' else 'under a'} file, not a folder"
    assert main(["search", "--epochs", "1", "--runs-dir", str(runs), *TINY]) == 2
    assert one_line(capsys, needle) == f"error: {needle}"


@pytest.mark.parametrize("name, text, reason", [
    ("config.json", '{"space": "nb201", ', "is not valid JSON (Expecting"),
    ("config.json", '{"space": "nb201", "epochs": 0}',
     "epochs must be an integer in [1, 10000]; got 0"),
    ("config.json", "[]", "config must be an object of settings; got []"),
    ("status.json", "", "is not valid JSON (Expecting value"),
    ("status.json", '{"state": 3}', "state must be one of created, running, paused, "
                                    "finished, stopped, failed, interrupted; got 3"),
])
def test_show_names_the_damaged_file_in_one_line(stopped, capsys, name, text,
                                                 reason) -> None:
    (stopped.path / name).write_text(text)
    assert main(["show", str(stopped.path)]) == 2
    assert one_line(capsys, reason).startswith(f"error: {stopped.path / name}: {reason}")


def test_show_gives_the_real_state(stopped, capsys) -> None:
    (stopped.path / "status.json").write_text(f'{{"state": "running", "pid": {dead_pid()}}}')
    assert main(["show", str(stopped.path)]) == 0
    assert "state    interrupted" in capsys.readouterr().out  # its process is gone
    (stopped.path / "status.json").unlink()  # records and a checkpoint, but no status
    assert main(["show", str(stopped.path)]) == 0
    assert "state    interrupted" in capsys.readouterr().out


def test_a_nan_loss_in_a_cli_search_is_one_line_and_error_log(tmp_path, capsys,
                                                               monkeypatch) -> None:
    def build(config, recorder):
        search = Search(config, recorder)
        step = search.strategy.step

        def poisoned(*args):
            result = step(*args)
            if search.step_count == 5:  # the 6th step
                result.train_loss = torch.tensor(float("nan"))
            return result

        search.strategy.step = poisoned
        return search

    monkeypatch.setitem(JOBS, "search", build)
    assert main(["search", "--epochs", "2", "--runs-dir", str(tmp_path), "--quiet",
                 *TINY]) == 1
    line = one_line(capsys, "error: step 6: the loss is not finite (train loss nan")
    assert line.endswith(" (traceback in error.log)")
    (folder,) = list_runs(tmp_path)
    status = folder.read_status()
    assert (status["state"], status["message"]) == ("failed", line.removeprefix("error: "))
    assert "NonFiniteLossError" in (folder.path / "error.log").read_text()


def test_show_reads_a_hand_edited_epoch_record(stopped, capsys) -> None:
    log = stopped.path / "metrics.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[4] = b'{"kind": "epoch", "step": 4, "epoch": 1, "train_loss": "low"}\n'
    log.write_bytes(b"".join(lines))
    assert main(["show", str(stopped.path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "train    loss ?  acc ?%" in shown and "epochs   1/3" in shown
