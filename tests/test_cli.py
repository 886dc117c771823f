"""`python -m nas_engine`: a search end to end, `show`, one-line errors with exit code 2, and
Ctrl-C / SIGTERM stopping a run as the app's Stop does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from nas_engine.cli import Progress, main
from nas_engine.device import available_cores, cpu_threads, resolve_device
from nas_engine.runner import JOBS, Run
from nas_engine.search import Search
from nas_engine.store import RunFolder, list_runs
from tests.test_search import without_timings

TINY = ["--set", "network.layers=3", "--set", "network.channels=4", "--set", "data.subset=120",
        "--set", "threads=1"]


def test_search_then_show(tmp_path, capsys) -> None:
    code = main(["search", "--preset", "classroom", "--epochs", "1", "--seed", "3",
                 "--runs-dir", str(tmp_path), *TINY])
    assert code == 0
    out = capsys.readouterr()
    path, genotype = out.out.strip().splitlines()
    folder = RunFolder(path)
    assert folder.read_status()["state"] == "finished"
    assert folder.read_config().seed == 3 and folder.read_config().network.layers == 3
    assert genotype == folder.read_genotype()["text"] and genotype.startswith("Genotype(")
    assert "[" in out.err  # the progress bar went to stderr
    assert main(["show", path]) == 0
    shown = capsys.readouterr().out
    assert "state    finished" in shown and "epochs   1/1" in shown and genotype in shown


def test_resume_extends_a_finished_run(tmp_path, capsys) -> None:
    assert main(["search", "--space", "nb201", "--epochs", "1", "--device", "cpu",
                 "--runs-dir", str(tmp_path), "--quiet", *TINY]) == 0
    path = capsys.readouterr().out.splitlines()[0]
    assert main(["resume", path]) == 2  # finished: nothing to continue without --epochs
    assert "give epochs" in capsys.readouterr().err
    assert main(["resume", path, "--epochs", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == path
    folder = RunFolder(path)
    assert [r["epoch"] for r in folder.read_records() if r["kind"] == "epoch"] == [1, 2]
    assert folder.read_status()["state"] == "finished"


def test_space_flag_switches_ops(tmp_path, capsys) -> None:
    assert main(["search", "--space", "nb201", "--epochs", "1", "--device", "cpu",
                 "--runs-dir", str(tmp_path), "--quiet", *TINY]) == 0
    (folder,) = list_runs(tmp_path)
    config = folder.read_config()
    assert config.space == "nb201" and "nor_conv_3x3" in config.ops
    assert folder.read_genotype()["arch_str"].count("~") == 6


@pytest.mark.parametrize("argv, needle", [
    (["search", "--epochs", "0"], "epochs must be"),
    (["search", "--set", "data.batch_size=0"], "data.batch_size must be"),
    (["search", "--set", "network.chanels=8"], "network.chanels must be a known setting"),
    (["search", "--set", "ops=skip_connect"], "ops must be at least two ops"),
    (["search", "--space", "resnet"], "invalid choice"),
    (["search", "--dataset", "cifar10", "--set", "data.root=/nonexistent"], "not found"),
    (["search", "--device", "cuda"] if not torch.cuda.is_available() else ["search", "--x"],
     "device must be" if not torch.cuda.is_available() else "unrecognized"),
    (["show", "/nonexistent"], "not a run folder"),
    ([], "required"),
    (["search", "--space", "mlp", "--strategy", "darts"], "the mlp space takes a discrete"),
    (["search", "--space", "nb201", "--strategy", "gradient"],
     "discrete.strategy must be one of random, evolution, ga, reinforce for the nb201"),
    (["search", "--budget", "5"], "--budget is the evaluations of a discrete strategy"),
    (["search", "--space", "mlp", "--dataset", "digits"], "a feature-vector dataset"),
    (["search", "--space", "mlp", "--set", "mlp.optimizers=adamw"],
     "mlp.optimizers must be one of adam, sgd, rmsprop; got 'adamw'"),
    (["strategies", "strategies-mlp", "--set", "discrete.sample=99"],
     "discrete.sample must be at most"),
])
def test_mistakes_exit_2_with_one_line(tmp_path, capsys, argv, needle) -> None:
    assert main([*argv, "--runs-dir", str(tmp_path)] if argv[:1] in (["search"], ["strategies"])
                else argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert needle in err
    assert not list(tmp_path.iterdir())  # no run folder for a mistake


def test_module_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "nas_engine", "search", "--epochs", "-1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "epochs must be" in done.stderr


def test_device_and_threads() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert cpu_threads(3) == 3
    # One core is left to the app's server.
    assert cpu_threads(None) == max(1, available_cores() - 1)


def test_ctrl_c_and_sigterm_stop_like_the_apps_stop_and_resume_writes_the_same_records(
        tmp_path, capsys, monkeypatch) -> None:
    def slow(config, recorder):  # 20 ms a step: the signal lands while epochs remain
        search = Search(config, recorder)
        step = search.step
        search.step = lambda: (time.sleep(0.02), step())[1]
        return search

    monkeypatch.setitem(JOBS, "search", slow)
    pending = [signal.SIGINT, signal.SIGTERM]  # the search gets Ctrl-C, the resume SIGTERM
    show = Progress.show

    def signal_after_an_epoch(self, snap):
        before = self._epochs
        show(self, snap)
        if len(snap.epochs) > before and pending:
            signal.raise_signal(pending.pop(0))  # delivered to this, the main thread

    monkeypatch.setattr(Progress, "show", signal_after_an_epoch)
    sigterm = signal.getsignal(signal.SIGTERM)
    args = ["--space", "nb201", "--epochs", "8", "--device", "cpu", "--runs-dir",
            str(tmp_path), *TINY, "--set", "data.batch_size=16"]
    codes = [main(["search", *args])]
    (folder,) = list_runs(tmp_path)
    for command in (["resume", str(folder.path)], ["resume", str(folder.path), "--quiet"]):
        assert codes[-1] == 130
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"stopped; resume from {folder.path}")
        assert signal.getsignal(signal.SIGTERM) is sigterm  # restored
        assert folder.read_status()["state"] == "stopped"
        assert (folder.path / "checkpoints" / "latest.pt").is_file()
        epoch_ends = {r["epoch"]: r["step"] for r in folder.read_records()
                      if r["kind"] == "epoch"}
        for epoch in folder.checkpoints():  # end-of-epoch states only
            state = folder.load_checkpoint(epoch)
            assert (state["epoch"], state["step_count"]) == (epoch, epoch_ends[epoch])
            assert state["step_count"] == epoch * epoch_ends[1]
        codes.append(main(command))
    assert codes == [130, 130, 0] and not pending and epoch_ends[1] > 1
    assert folder.read_status()["state"] == "finished"
    assert sorted(folder.checkpoints()) == list(range(1, 9))
    config = folder.read_config()
    assert without_timings(folder.read_records()) == without_timings(Search(config).run())


def test_a_second_ctrl_c_quits_at_once_and_the_run_still_stops(tmp_path, capsys,
                                                                monkeypatch) -> None:
    stopping, runs = threading.Event(), []
    stop = Run.stop

    def stop_and_tell(self) -> None:
        stop(self)
        runs.append(self)
        stopping.set()

    def build(config, recorder):
        search = Search(config, recorder)
        step = search.strategy.step

        def interrupted(*args):
            if search.step_count == 1:  # the 2nd step: Ctrl-C, then Ctrl-C while it stops
                os.kill(os.getpid(), signal.SIGINT)
                assert stopping.wait(60)
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)  # the main thread quits before this step ends
            return step(*args)

        search.strategy.step = interrupted
        return search

    monkeypatch.setattr(Run, "stop", stop_and_tell)
    monkeypatch.setitem(JOBS, "search", build)
    assert main(["search", "--space", "nb201", "--epochs", "2", "--device", "cpu",
                 "--runs-dir", str(tmp_path), "--quiet", *TINY]) == 130
    (folder,) = list_runs(tmp_path)
    assert capsys.readouterr().err.splitlines() == [f"interrupted; resume from {folder.path}"]
    (run,) = runs  # its worker still ends its step, checkpoints and stops (a join cut by
    assert run.wait_for(lambda s: s.state == "stopped", 60)  # Ctrl-C may not wait again)
    assert folder.read_status()["state"] == "stopped"
    assert folder.load_checkpoint()["step_count"] == 2


def test_ctrl_c_before_the_run_starts_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    def interrupted(config):
        raise KeyboardInterrupt  # e.g. while a large dataset loads

    monkeypatch.setattr("nas_engine.runner.preflight", interrupted)
    assert main(["search", "--runs-dir", str(tmp_path), *TINY]) == 130
    assert capsys.readouterr().err.splitlines() == ["interrupted before the run started"]
    assert not list_runs(tmp_path)
