"""Seed 001's MLP space retrained: the network is Linear-activation-Dropout per layer (its
size by hand), a short retrain on regression1d beats predicting the mean by far, the database
row carries the metric (mse or accuracy) and a higher-is-better score, a repeated request is a
cache hit, an older database file gains the new columns, and a resumed retrain is exact."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch
from torch import nn

from nas_engine.config import ConfigError, train_config
from nas_engine.evaluation.mlp_training import MlpTraining
from nas_engine.evaluation.networks import build_mlp, count_flops, count_parameters
from nas_engine.evaluation.training import Training, evaluation_key, training_job
from nas_engine.evaluations import Evaluation, EvaluationKey, EvaluationsDB
from nas_engine.spaces.mlp import MlpArch
from nas_engine.store import Recorder, list_runs
from tests.test_search import without_timings

ARCH = MlpArch(2, 64, ("tanh", "tanh"), 0.01, "adam", 0.0)
FAST = {"device": "cpu", "threads": 1, "epochs": 10, "record.log_every": 5}


def mlp_config(arch: MlpArch = ARCH, dataset: str = "regression1d", **changes):  # noqa: ANN201
    return train_config("mlp", arch.to_text(), dataset=dataset, changes={**FAST, **changes})


@pytest.mark.parametrize("layers, width, features, outputs", [(1, 32, 1, 1), (3, 128, 10, 1),
                                                               (5, 16, 64, 10)])
def test_the_network_has_the_hand_counted_size(layers, width, features, outputs) -> None:
    arch = MlpArch(layers, width, ("relu",) * layers, 0.01, "sgd", 0.2)
    model = build_mlp(arch, features, outputs)
    weights = features * width + (layers - 1) * width * width + width * outputs
    biases = layers * width + outputs
    assert count_parameters(model) == weights + biases
    assert count_flops(model, (features,)) == weights  # a MAC per weight of a Linear
    kinds = [type(m) for m in model]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout] * layers + [nn.Linear]


def test_each_layer_takes_its_own_activation() -> None:
    model = build_mlp(MlpArch(3, 8, ("relu", "leaky_relu", "tanh"), 0.01, "adam", 0.0), 4, 2)
    assert [type(m) for m in model][1::3] == [nn.ReLU, nn.LeakyReLU, nn.Tanh]


def test_equal_mlps_write_one_text() -> None:
    a = MlpArch(1, 32, ["relu"], 1e-2, "adam", 0)
    b = MlpArch.from_text('{"width": 32, "layers": 1, "activations": "relu", "lr": 0.01, '
                          '"optimizer": "adam", "dropout": 0.0}')
    assert a == b and a.to_text() == b.to_text()


def test_the_factory_picks_the_spaces_job() -> None:
    assert isinstance(training_job(mlp_config(epochs=1)), MlpTraining)
    from tests.test_training import CONV, tiny

    assert type(training_job(tiny("nb201", CONV, epochs=1))) is Training


def test_a_short_retrain_beats_the_mean_and_stores_the_mse(tmp_path) -> None:
    config = mlp_config()
    recorder = Recorder.create(tmp_path, config)
    job = MlpTraining(config, recorder)
    records = job.run()
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 10 and all("val_mse" in r and r["train_acc"] is None for r in epochs)
    assert all("test_mse" not in r for r in records[:-1])
    last = records[-1]
    # Predicting the training mean: the variance baseline of the standardised targets.
    val_y = job.val_part[1]
    baseline = ((val_y - 0.0) ** 2).mean().item()
    assert baseline > 0.8 and last["val_mse"] < 0.25 * baseline
    assert last["metric"] == "mse" and last["val_mse"] == last["val_loss"]
    assert last["params"] == count_parameters(job.model) and last["latency_ms"] > 0
    assert (recorder.path / "weights.pt").is_file()
    assert json.loads((recorder.path / "split.json").read_text())["test_rows"] == 200
    db = EvaluationsDB(tmp_path)
    row = db.get(evaluation_key(config))
    assert row.cached and row.metric == "mse" and row.test_mse == last["test_mse"]
    assert row.val_acc is None and row.test_acc is None and row.score is None
    assert row.search_score == -row.val_mse and row.test_score == -row.test_mse
    assert row.arch_text == ARCH.to_text() and row.run_id == recorder.run_id
    # The same request again (the arch written another way): the stored row, no training.
    again = evaluation_key(train_config("mlp", '{"dropout":0,"lr":0.01,"optimizer":"adam",'
                                        '"layers":2,"width":64,"activations":"tanh"}',
                                        dataset="regression1d", changes=FAST))
    assert again == evaluation_key(config) and db.get(again).run_id == recorder.run_id
    assert db.put(job.evaluation(last)).cached


def test_classification_on_digits_flat_scores_accuracy() -> None:
    job = MlpTraining(mlp_config(MlpArch(1, 64, ("relu",), 0.01, "adam", 0.0), "digits_flat",
                                 epochs=3))
    job.run()
    row = job.result
    assert row.metric == "accuracy" and row.val_mse is None and row.test_mse is None
    assert row.val_acc > 0.85 and row.search_score == row.val_acc
    assert row.test_score == row.test_acc and row.key.dataset == "digits_flat"


def test_a_resumed_retrain_with_dropout_is_exact() -> None:
    config = mlp_config(MlpArch(2, 32, ("relu", "tanh"), 0.01, "rmsprop", 0.4), epochs=3,
                        **{"record.log_every": 1})
    whole = MlpTraining(config).run()
    first = MlpTraining(config)
    for _ in range(7):
        first.step()
    state = first.state_dict()
    torch.manual_seed(123)  # whatever the process did meanwhile
    second = MlpTraining(config)
    second.load_state_dict(state)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "latency_ms"}  # noqa: E731
                        for r in without_timings(rs)]
    assert strip(second.run()) == strip(whole[7:])


def test_an_old_database_file_gains_the_metric_columns(tmp_path) -> None:
    with sqlite3.connect(tmp_path / "evaluations.sqlite") as db:  # the first schema
        db.execute("CREATE TABLE evaluations (space TEXT NOT NULL, arch TEXT NOT NULL, "
                   "dataset TEXT NOT NULL, dataset_params TEXT NOT NULL, profile TEXT NOT "
                   "NULL, seed INTEGER NOT NULL, test_acc REAL, val_acc REAL, params INTEGER, "
                   "flops INTEGER, latency_ms REAL, seconds REAL, run_id TEXT, arch_text TEXT, "
                   "created REAL NOT NULL, PRIMARY KEY (space, arch, dataset, dataset_params, "
                   "profile, seed))")
        db.execute("INSERT INTO evaluations VALUES ('nb201', 'a', 'digits', '{}', "
                   "'classroom', 0, 0.9, 0.8, 10, 20, 1.0, 2.0, 'old', 'a', 1.0)")
    db = EvaluationsDB(tmp_path)
    old = db.get(EvaluationKey("nb201", "a", "digits", {}, "classroom", 0))
    assert (old.metric, old.val_mse, old.search_score, old.test_score) == \
        ("accuracy", None, 0.8, 0.9)
    key = EvaluationKey("mlp", "m", "regression1d", {}, "classroom", 0)
    db.put(Evaluation(key, None, None, 5, 4, 0.01, 0.2, "new", metric="mse", val_mse=0.1,
                      test_mse=0.2))
    rows = {r.run_id: r for r in EvaluationsDB(tmp_path).rows()}
    assert rows["old"].metric == "accuracy" and rows["new"].search_score == -0.1
    with pytest.raises(ValueError, match="^metric must be one of accuracy, mse"):
        Evaluation(key, None, None, 5, 4, 0.01, 0.2, "new", metric="r2")


def test_the_cli_trains_an_mlp_once(tmp_path, capsys) -> None:
    from nas_engine.cli import main

    argv = ["train", "--space", "mlp", "--mlp", ARCH.to_text(), "--runs-dir", str(tmp_path),
            "--quiet", "--set", "epochs=2", "--set", "threads=1", "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert "-mlp-regression1d-" in out[0] and out[1].startswith("test MSE ")
    assert main([*argv, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["cached"] and row["metric"] == "mse" and row["val_acc"] is None
    assert row["search_score"] == -row["val_mse"] and row["test_mse"] > 0
    assert len(list_runs(tmp_path)) == 1


@pytest.mark.parametrize("argv, needle", [
    (["--mlp", '{"layers": 2,'], "--mlp an MLP is JSON text (Expecting"),
    (["--mlp", '{"layers": 2}'], "--mlp an MLP has the fields"),
    (["--mlp", ARCH.to_text().replace("adam", "nadam")], "--mlp optimizer must be one of"),
    (["--space", "nb201", "--mlp", ARCH.to_text()], "does not go with --mlp"),
    (["--mlp", ARCH.to_text(), "--dataset", "digits"], "data.name must be a feature-vector"),
])
def test_cli_mlp_mistakes_are_one_line(tmp_path, capsys, argv, needle) -> None:
    from nas_engine.cli import main

    assert main(["train", *argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1


def test_cell_tricks_are_refused_for_an_mlp() -> None:
    with pytest.raises(ConfigError) as caught:
        mlp_config(**{"train.drop_path": 0.2})
    assert caught.value.path == "train.drop_path"
    with pytest.raises(ConfigError, match=r"^train\.genotype must be an mlp architecture"):
        train_config("mlp", "{}", dataset="regression1d")
