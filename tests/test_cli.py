"""`python -m nas_engine`: a search end to end, `show`, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nas_engine.cli import main
from nas_engine.device import available_cores, cpu_threads, resolve_device
from nas_engine.store import RunFolder, list_runs

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
])
def test_mistakes_exit_2_with_one_line(tmp_path, capsys, argv, needle) -> None:
    assert main([*argv, "--runs-dir", str(tmp_path)] if argv[:1] == ["search"] else argv) == 2
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
