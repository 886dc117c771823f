"""Retraining a derived cell: the profile fills every setting, the last record holds the
result (test accuracy on held-out images only, parameters, FLOPs, latency), the database keeps
it under the canonical key, drop path ramps, cutout cuts, and a resumed retrain is exact."""

from __future__ import annotations

import json

import pytest
import torch

from nas_engine.config import ConfigError, DataConfig, train_config
from nas_engine.data import BatchStream, load_images
from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluation.networks import build_network, count_parameters
from nas_engine.evaluation.training import (
    Training,
    evaluation_key,
    network_size,
    profile_key,
)
from nas_engine.evaluations import EvaluationsDB
from nas_engine.spaces.genotypes import parse_genotype
from nas_engine.store import Recorder
from tests.test_search import without_timings

SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|" \
       "skip_connect~2|"
CONV = SKIP.replace("skip_connect", "nor_conv_3x3")
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
            "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
            "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
            "reduce_concat=[2, 3, 4, 5])")
TINY = {"device": "cpu", "threads": 1, "epochs": 2, "network.channels": 4,
        "data.subset": 200, "data.batch_size": 50, "record.log_every": 2}


def tiny(space: str, genotype: str, **changes):  # noqa: ANN201
    return train_config(space, genotype, dataset="digits", changes={**TINY, **changes})


def test_profiles_fill_every_setting() -> None:
    darts = train_config("darts", DARTS_V2)
    assert (darts.epochs, darts.network.channels, darts.network.layers) == (4, 8, 5)
    assert (darts.train.auxiliary_weight, darts.train.drop_path) == (0.4, 0.2)
    paper = train_config("darts", DARTS_V2, "paper")
    assert (paper.epochs, paper.network.channels, paper.network.layers, paper.data.batch_size,
            paper.train.cutout, paper.data.augment) == (600, 36, 20, 96, 16, True)
    nb201 = train_config("nb201", CONV, "paper")
    assert (nb201.epochs, nb201.data.batch_size, nb201.optim.w_lr, nb201.optim.w_nesterov,
            nb201.optim.w_weight_decay, nb201.network.cells_per_stage) == \
        (200, 256, 0.1, True, 5e-4, 5)
    assert train_config("nb201", CONV).data.name == "digits_clutter"
    assert profile_key(train_config("nb201", CONV)) == "classroom"
    changed = profile_key(train_config("nb201", CONV, changes={"epochs": 3}))
    assert changed.startswith("classroom+") and changed != "classroom"


def test_bad_cells_name_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        train_config("nb201", "|nor_conv_3x3~0|+|")
    assert caught.value.path == "train.genotype"
    with pytest.raises(ConfigError, match=r"^train\.genotype must be a darts cell \(unknown op "
                                          r"'conv_7x7'"):
        train_config("darts", DARTS_V2.replace("dil_conv_3x3", "conv_7x7"))


@pytest.mark.parametrize("space, genotype", [("nb201", CONV), ("darts", DARTS_V2)])
def test_retrain_reports_its_result_on_held_out_images(tmp_path, space, genotype) -> None:
    config = tiny(space, genotype, **({"network.layers": 3} if space == "darts" else {}))
    recorder = Recorder.create(tmp_path, config)
    training = Training(config, recorder)
    test = set(training.test_stream.indices.tolist())
    assert test.isdisjoint(training.train_stream.indices.tolist())
    assert test.isdisjoint(training.val_stream.indices.tolist())
    assert len(test) == 360  # digits' held-out fifth, whatever the subset
    records = training.run()
    last = records[-1]
    assert last["kind"] == "epoch" and last["epoch"] == 2
    assert 0.0 <= last["test_acc"] <= 1.0 and last["params"] == count_parameters(training.model)
    assert last["flops"] > 0 and last["latency_ms"] > 0
    assert last["test_split"] == load_images(DataConfig()).test_split()
    assert all("test_acc" not in r for r in records[:-1])
    weights = torch.load(recorder.path / "weights.pt", weights_only=True)
    rebuilt = build_network(space, parse_genotype(space, genotype), 1, 10, 8,
                            **network_size(config))
    rebuilt.load_state_dict(weights)  # the README's snippet: the weights load into the cell
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(),
                                                  training.model.state_dict().values()))
    row = EvaluationsDB(tmp_path).get(evaluation_key(config))
    assert row is not None and row.test_acc == last["test_acc"]
    assert row.run_id == recorder.run_id and row.arch_text == genotype
    key = evaluation_key(config)
    assert key.arch == architecture_key(space, parse_genotype(space, genotype))
    assert key.dataset_params == {"resize": None, "test_portion": 0.2}


def test_drop_path_ramps_and_the_auxiliary_head_trains() -> None:
    training = Training(tiny("darts", DARTS_V2, **{"network.layers": 3, "epochs": 4}))
    seen = []
    while not training.done:
        training.step()
        seen.append(training.model.drop_path_prob)
    per_epoch = sorted(set(seen))
    assert per_epoch == pytest.approx([0.0, 0.05, 0.1, 0.15])  # 0.2 · epoch / 4
    assert any("auxiliary" in n for n, _ in training.model.named_parameters())


def test_cutout_zeroes_one_square_per_image() -> None:
    images = load_images(DataConfig(resize=16))
    plain = BatchStream(images, images.search[:8], 8, 0)
    cut = BatchStream(images, images.search[:8], 8, 0, cutout=8)
    x, _ = plain.next()
    y, _ = cut.next()
    changed = (x != y).flatten(1)
    assert (y.flatten(1)[changed] == 0).all()
    zeros = (y == 0).flatten(1).sum(1) - (x == 0).flatten(1).sum(1)
    assert (zeros <= 64).all() and (zeros > 0).any()  # at most an 8x8 square, clipped


def test_a_resumed_retrain_is_exact() -> None:
    config = tiny("nb201", CONV, **{"record.log_every": 1})
    whole = Training(config).run()
    first = Training(config)
    for _ in range(3):
        first.step()
    second = Training(config)
    second.load_state_dict(first.state_dict())
    rest = second.run()
    strip = lambda rs: [{k: v for k, v in r.items() if k != "latency_ms"}  # noqa: E731
                        for r in without_timings(rs)]
    assert strip(rest) == strip(whole[3:])


CLI_TINY = ["--dataset", "digits", "--set", "epochs=2", "--set", "network.channels=4",
            "--set", "data.subset=200", "--set", "threads=1", "--set", "device=cpu"]


def test_cli_retrains_a_search_cell_once(tmp_path, capsys) -> None:
    """`train --from RUN --epoch 1`: a train run with lineage to the search; the same request
    again is the stored row (no new folder); --json carries the row's fields."""
    from nas_engine.cli import main
    from nas_engine.store import RunFolder, list_runs

    assert main(["search", "--space", "nb201", "--epochs", "2", "--runs-dir", str(tmp_path),
                 "--quiet", "--set", "data.subset=200", "--set", "network.channels=4",
                 "--set", "threads=1", "--device", "cpu"]) == 0
    search = capsys.readouterr().out.splitlines()[0]
    argv = ["train", "--from", search, "--epoch", "1", "--runs-dir", str(tmp_path), "--quiet",
            *CLI_TINY]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    folder = RunFolder(out[0])
    assert folder.read_config().kind == "train" and out[1].startswith("test accuracy ")
    lineage = folder.read_lineage()
    assert lineage["parent"] == RunFolder(search).run_id and lineage["epoch"] == 1
    epoch1 = next(r for r in RunFolder(search).read_records()
                  if r["kind"] == "epoch" and r["epoch"] == 1)
    assert folder.read_config().train.genotype == epoch1["genotype"]["arch_str"]
    runs = len(list_runs(tmp_path))
    assert main([*argv, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["cached"] is True and row["run_id"] == folder.run_id
    assert {"test_acc", "val_acc", "params", "flops", "latency_ms", "seconds"} <= set(row)
    assert len(list_runs(tmp_path)) == runs  # nothing trained twice


@pytest.mark.parametrize("argv, needle", [
    (["--arch-str", "|nor_conv_3x3~0|+|"], "train.genotype must be a nb201 cell"),
    (["--genotype", "Genotype(normal=[])"], "train.genotype must be a darts cell"),
    (["--arch-str", SKIP, "--epoch", "2"], "--epoch goes with --from RUN_DIR"),
    (["--from", "/nonexistent/run"], "is not a run folder"),
])
def test_cli_train_mistakes_are_one_line(tmp_path, capsys, argv, needle) -> None:
    from nas_engine.cli import main

    assert main(["train", *argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1
