"""The evaluations database: a key is stored once, read back as cached, survives concurrent
writers (threads and processes), and the multi-objective score is seed 002's formula."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from nas_engine.evaluations import Evaluation, EvaluationKey, EvaluationsDB

KEY = EvaluationKey("nb201", "|skip_connect~0|+|...", "digits_clutter",
                    {"canvas": 20, "noise": 0.2}, "classroom", 0)


def result(test_acc: float, run_id: str, key: EvaluationKey = KEY) -> Evaluation:
    return Evaluation(key, test_acc, test_acc - 0.01, 1234, 56789, 2.0, 3.5, run_id)


def test_put_then_get_returns_the_stored_row(tmp_path) -> None:
    db = EvaluationsDB(tmp_path)
    assert db.get(KEY) is None
    stored = db.put(result(0.61, "run-a"))
    assert not stored.cached
    again = EvaluationsDB(tmp_path).get(KEY)  # another handle, as another process would
    assert again.cached and (again.test_acc, again.run_id, again.params) == (0.61, "run-a", 1234)
    # Same key with the dataset parameters in another order: the same row.
    reordered = EvaluationKey(**{**KEY.__dict__, "dataset_params": {"noise": 0.2, "canvas": 20}})
    assert db.get(reordered).run_id == "run-a"
    other = EvaluationKey(**{**KEY.__dict__, "seed": 1})
    assert db.get(other) is None


def test_an_empty_database_file_reads_as_no_rows_and_takes_writes(tmp_path) -> None:
    (tmp_path / "evaluations.sqlite").touch()  # what `sqlite3 FILE` leaves behind
    db = EvaluationsDB(tmp_path)
    assert (db.get(KEY), db.rows(), db.proxy_rows()) == (None, [], [])
    db.put(result(0.5, "run-a"))
    assert db.get(KEY).test_acc == 0.5


def test_a_key_is_trained_once(tmp_path) -> None:
    db = EvaluationsDB(tmp_path)
    db.put(result(0.61, "first"))
    late = db.put(result(0.99, "second"))
    assert late.cached and late.run_id == "first" and late.test_acc == 0.61
    assert [r.run_id for r in db.rows()] == ["first"]
    assert db.rows(space="darts") == []
    with pytest.raises(ValueError, match="^filter must be one of space, arch"):
        db.rows(accuracy=1)


def test_score_is_accuracy_times_latency_to_the_minus_0_07() -> None:
    row = result(0.8, "r")
    assert row.score == pytest.approx(0.8 * 2.0 ** -0.07)
    assert row.to_dict()["score"] == pytest.approx(0.8 * 2.0 ** -0.07)
    assert row.to_dict()["space"] == "nb201"


def _write_many(path: str, worker: int, count: int) -> None:
    db = EvaluationsDB(path)
    for i in range(count):
        key = EvaluationKey("nb201", f"arch-{i}", "digits", {}, "classroom", 0)
        db.put(result(0.5 + 0.001 * worker, f"w{worker}", key))


def test_concurrent_writers_keep_one_row_per_key(tmp_path) -> None:
    """Four processes and four threads write the same 25 keys at once: 25 rows, each one
    writer's whole row, no error."""
    processes = [multiprocessing.get_context("spawn").Process(
        target=_write_many, args=(str(tmp_path), w, 25)) for w in range(4)]
    threads = [threading.Thread(target=_write_many, args=(str(tmp_path), 10 + w, 25))
               for w in range(4)]
    for t in (*processes, *threads):
        t.start()
    for t in (*processes, *threads):
        t.join(60)
    assert all(p.exitcode == 0 for p in processes)
    rows = EvaluationsDB(tmp_path).rows()
    assert sorted(r.key.arch for r in rows) == sorted(f"arch-{i}" for i in range(25))
    for r in rows:  # a row is one writer's: its accuracy matches its run id
        assert r.test_acc == pytest.approx(0.5 + 0.001 * int(r.run_id[1:]))


def test_a_changed_profile_keeps_its_old_rows_apart_and_finds_them_again(tmp_path,
                                                                       monkeypatch) -> None:
    from nas_engine.config import TRAIN_PROFILES, train_config
    from nas_engine.evaluation.training import evaluation_key
    from nas_engine.evaluations import ProxyKey, ProxyScore

    cell = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"

    def key(**changes):
        return evaluation_key(train_config("nb201", cell, "classroom", "digits", 0, changes))

    def proxy(space: str) -> ProxyScore:
        return ProxyScore(ProxyKey(space, "a", "digits", {}, "synflow", 0), 1.5, 2.0, None)

    epochs = TRAIN_PROFILES["classroom"]["nb201"]["epochs"]
    db = EvaluationsDB(tmp_path)
    trained = key()
    assert trained.profile == "classroom"
    db.put(result(0.61, "trained", trained))
    db.put_proxy(proxy("nb201"))
    db.put_proxy(proxy("darts"))
    # A new default, one epoch more. Its key is the bare name, which no longer holds the older
    # row; asking for the old epochs as an override finds it; the NB201 network's proxy
    # scores are gone.
    monkeypatch.setitem(TRAIN_PROFILES["classroom"]["nb201"], "epochs", epochs + 1)
    changed = EvaluationsDB(tmp_path)
    assert key().profile == "classroom" and changed.get(key()) is None
    assert key(epochs=epochs).profile.startswith("classroom+")
    assert changed.get(key(epochs=epochs)).run_id == "trained"
    assert [p.key.space for p in changed.proxy_rows()] == ["darts"]
    changed.put(result(0.66, "newer", key()))
    # Back to the old default (an older checkout): each row is found under its own settings.
    monkeypatch.undo()
    back = EvaluationsDB(tmp_path)
    assert back.get(trained).run_id == "trained"
    assert back.get(key(epochs=epochs + 1)).run_id == "newer"
    assert sorted(r.run_id for r in back.rows()) == ["newer", "trained"]
    assert EvaluationsDB(tmp_path).get(trained).run_id == "trained"  # aligned once


def test_current_label_renames_a_bare_name_by_its_settings_and_leaves_other_digests() -> None:
    from nas_engine.evaluations import current_label, settings_label

    old, new, other = {"epochs": 8}, {"epochs": 9}, {"epochs": 3}
    assert current_label("classroom", old, new) == settings_label("classroom", old)
    assert current_label("classroom", new, new) == "classroom"
    assert current_label("classroom", None, new) == "classroom"  # settings not known
    assert current_label(settings_label("classroom", new), old, new) == "classroom"
    assert current_label(settings_label("classroom", other), old, new) == settings_label(
        "classroom", other)
    assert settings_label("classroom", old) != settings_label("classroom", other)
