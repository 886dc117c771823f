"""Discrete runs for real (MLP candidates trained for a few epochs): through the evaluations
database, and as runs that pause, stop and resume into the same sequence."""

from __future__ import annotations

import pytest

from nas_engine.config import SearchConfig
from nas_engine.discrete import evaluator as evaluator_module
from nas_engine.discrete.evaluator import Evaluator
from nas_engine.evaluation import ground_truth
from nas_engine.runner import RunRegistry
from nas_engine.spaces.mlp import MlpArch

TIMEOUT = 300


def mlp_config(**changes) -> SearchConfig:
    return SearchConfig(space="mlp").with_changes({
        "kind": "discrete", "data.name": "regression1d", "device": "cpu", "threads": 1,
        "epochs": 6, "discrete.population": 3, "discrete.sample": 2,
        "discrete.train_epochs": 2, **changes})


ARCH = MlpArch(1, 32, ("tanh",), 0.01, "adam", 0.0).to_text()


def test_an_architecture_seen_before_is_answered_by_the_database(tmp_path, monkeypatch):
    first = Evaluator(mlp_config(), tmp_path, "run-a")(ARCH)
    assert not first.cached and first.metric == "mse" and first.score < 0

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")
    monkeypatch.setattr(ground_truth, "training_job", no_training)
    again = Evaluator(mlp_config(seed=0), tmp_path, "run-b")(ARCH)
    assert again.cached and again.score == first.score and again.test_score == first.test_score
    assert again.train_seconds == pytest.approx(first.train_seconds)


def test_a_diverging_candidate_scores_its_metric_floor_and_the_run_goes_on(tmp_path):
    wild = MlpArch(3, 512, ("relu",) * 3, 1e4, "sgd", 0.0).to_text()
    scored = Evaluator(mlp_config(), tmp_path, "run")(wild)
    assert scored.diverged and scored.score == -1.0 and scored.test_score is None


def records(run):
    return [(r["arch"], r["score"]) for r in run.folder.read_records()
            if r["kind"] == "evaluation"]


@pytest.mark.parametrize("strategy", ["evolution", "reinforce"])
def test_a_stopped_discrete_run_resumes_into_the_same_sequence(tmp_path, strategy):
    config = mlp_config(**{"discrete.strategy": strategy})
    whole = RunRegistry(tmp_path / "a").create(config).start()
    whole.join(TIMEOUT)
    registry = RunRegistry(tmp_path / "b")
    run = registry.create(config).start()
    assert run.wait_for(lambda s: s.step >= 1, TIMEOUT)
    run.pause()
    assert run.wait_for(lambda s: s.state == "paused", TIMEOUT)
    done = run.snapshot().step
    run.step(2)  # two evaluations, then paused again
    assert run.wait_for(lambda s: s.state == "paused" and s.step == done + 2, TIMEOUT)
    run.stop()
    assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)
    assert len(records(run)) == done + 2 < 6
    resumed = registry.resume(run.run_id).start()
    assert resumed.wait_for(lambda s: s.state == "finished", TIMEOUT)
    assert records(resumed) == records(whole)
    assert len(records(resumed)) == 6


def test_runs_started_in_turn_never_run_more_than_allowed_at_once(tmp_path):
    from nas_engine.runner import RunState, start_in_turn

    registry = RunRegistry(tmp_path)
    runs = [registry.create(mlp_config(seed=s, epochs=2)) for s in range(3)]
    queue = start_in_turn(runs, at_once=1)
    most = 0
    while queue.is_alive():
        most = max(most, sum(r.state is RunState.RUNNING for r in runs))
        queue.join(0.02)
    for run in runs:
        run.join(TIMEOUT)
    assert most <= 1
    assert [r.state for r in runs] == [RunState.FINISHED] * 3


def test_a_strategy_sees_scores_clipped_at_the_metric_floor(monkeypatch):
    from nas_engine.discrete.job import DiscreteSearch

    job = DiscreteSearch(mlp_config(**{"discrete.strategy": "random"}))
    seen = []
    monkeypatch.setattr(job.strategy, "observe", lambda arch, score: seen.append(score))
    job.evaluator = lambda text: evaluator_module.Scored(-800.0, None, "mse", 0.0, False)
    record = job.step()[0]
    assert seen == [-1.0] and record["score"] == -800.0  # the record keeps the truth


def test_a_branch_after_an_evaluation_continues_as_its_parent_or_with_a_new_setting(tmp_path):
    registry = RunRegistry(tmp_path)
    parent = registry.create(mlp_config(**{"discrete.strategy": "reinforce"})).start()
    parent.join(TIMEOUT)
    same = registry.branch(parent.run_id, 3).start()
    same.join(TIMEOUT)
    assert records(same) == records(parent)  # the first 3 copied, the rest proposed again
    bolder = registry.branch(parent.run_id, 3, {"entropy_weight": 5.0}).start()
    bolder.join(TIMEOUT)
    assert records(bolder)[:3] == records(parent)[:3]
    assert bolder.snapshot().live["entropy_weight"] == 5.0
    assert bolder.snapshot().lineage == {"parent": parent.run_id, "epoch": 3, "step": 3,
                                         "changes": {"entropy_weight": 5.0}}
