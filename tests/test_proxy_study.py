"""Issue 16's ground truth and its statistics: the sample (isomorphism-unique, prefix-stable,
with the extremes), the rank agreement equal to scipy's own functions and to hand-counted
top-10 % overlaps, the vote's mean rank, a study that trains and scores each cell once (a
re-run answers from the database), the `proxies` command, and zero-shot search (its ranking
is the proxy's, its cost includes the proxy's seconds, it resumes exactly)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy import stats

from nas_engine import cli
from nas_engine.config import SearchConfig
from nas_engine.discrete.job import DiscreteSearch
from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluations import EvaluationsDB
from nas_engine.proxies import study as study_module
from nas_engine.proxies.agreement import agreement, rank_vote, top_overlap
from nas_engine.proxies.sample import EXTREMES, sample_architectures
from nas_engine.proxies.scores import proxy_scores
from nas_engine.proxies.study import missing_truth, plan_study, run_study, stored_study
from nas_engine.spaces.genotypes import parse_genotype

TINY = {"epochs": 1, "network.channels": 4, "data.batch_size": 32}


def test_the_sample_is_one_cell_per_isomorphism_class_prefix_stable_with_the_extremes() -> None:
    cells = sample_architectures("nb201", 60, 3)
    keys = [architecture_key("nb201", parse_genotype("nb201", c)) for c in cells]
    assert len(set(keys)) == len(keys) == 62
    assert cells[-2:] == list(EXTREMES["nb201"].values())
    assert sample_architectures("nb201", 25, 3)[:25] == cells[:25]
    assert sample_architectures("nb201", 25, 4)[:25] != cells[:25]
    darts = sample_architectures("darts", 2, 0)
    assert len(darts) == 4 and all(parse_genotype("darts", c) for c in darts)
    with pytest.raises(ValueError, match="space must be one of nb201, darts"):
        sample_architectures("mlp", 3, 0)


def test_agreement_is_scipys_statistics_and_the_hand_counted_overlap() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random(40)
    scores = truth + rng.normal(0, 0.2, 40)
    with_undefined = [None, None, *scores[2:]]
    row = agreement("p", with_undefined, list(truth))
    assert (row.n, row.undefined) == (38, 2)
    assert row.spearman == pytest.approx(stats.spearmanr(scores[2:], truth[2:]).statistic)
    assert row.kendall == pytest.approx(stats.kendalltau(scores[2:], truth[2:]).statistic)
    low, high = row.spearman_ci
    assert low < row.spearman < high and 0.1 < high - low < 0.6
    assert agreement("p", with_undefined, list(truth)) == row  # the bootstrap is seeded
    # Top 10 % of 10 = 1: the best by truth (index 9) is the best by score, or it is not.
    assert top_overlap(np.arange(10.0), np.arange(10.0)) == 1.0
    assert top_overlap(-np.arange(10.0), np.arange(10.0)) == 0.0
    # Top 10 % of 20 = 2: truth's best are 19 and 18, the score's 19 and 0: one of two.
    score = np.arange(20.0)
    score[0] = 100.0
    score[18] = -1.0
    assert top_overlap(score, np.arange(20.0)) == 0.5
    constant = agreement("c", [1.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert constant.spearman is None and constant.kendall is None


def test_the_vote_is_the_mean_rank_over_cells_every_voter_scored() -> None:
    votes = rank_vote([[3.0, 1.0, 2.0, None], [10.0, 30.0, 20.0, 5.0], [0.1, 0.2, 0.3, 0.4]])
    # ranks over the first three cells: (3,1,2), (1,3,2), (1,2,3)
    assert votes == [pytest.approx(5 / 3), pytest.approx(2.0), pytest.approx(7 / 3), None]


def test_a_study_trains_and_scores_each_cell_once(tmp_path, monkeypatch) -> None:
    db = EvaluationsDB(tmp_path)
    plan = plan_study("nb201", 2, 0, "digits", TINY)
    assert len(missing_truth(db, plan)) == 4 and stored_study(db, plan) is None
    seen = []
    result = run_study(db, plan, ["synflow", "params", "jacob_cov", "snip"],
                       lambda what, done, total: seen.append((what, done, total)))
    assert seen[-1] == ("score", 4, 4) and ("retrain", 4, 4) in seen
    assert missing_truth(db, plan) == []
    assert [r.test_acc for r in result.truth] == [
        db.get(study_module.evaluation_key(c)).test_acc for c in plan.configs]
    fresh = proxy_scores("nb201", plan.archs[0], plan.configs[0].data, 0, ["synflow"])
    assert result.values("synflow")[0] == pytest.approx(fresh["synflow"])
    names = [row.proxy for row in result.table()]
    assert names == ["synflow", "params", "jacob_cov", "snip", "vote"]

    def fail(*args, **kwargs):
        raise AssertionError("a stored result was computed again")

    monkeypatch.setattr(study_module, "train_once", lambda c, db, run_id: db.get(
        study_module.evaluation_key(c)) or fail())
    monkeypatch.setattr(study_module, "proxy_scores", fail)
    again = run_study(db, plan, ["synflow", "params", "jacob_cov", "snip"])
    assert again.table() == result.table()
    stored = stored_study(db, plan, ["synflow", "params", "naswot"])
    assert list(stored.scores) == ["synflow", "params"]  # naswot was never scored


def test_the_proxies_command_prints_one_json_object_per_proxy(tmp_path, capsys) -> None:
    argv = ["proxies", "--sample", "2", "--dataset", "digits", "--runs-dir", str(tmp_path),
            "--proxies", "synflow,params", "--json", "--quiet"]
    for key, value in TINY.items():
        argv += ["--set", f"{key}={value}"]
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["proxy"] for r in rows] == ["synflow", "params"]
    assert {"spearman", "kendall", "top10_overlap", "ms_per_arch", "undefined"} <= set(rows[0])
    assert rows[0]["n"] + rows[0]["undefined"] == 4 and rows[0]["ms_per_arch"] > 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--proxies", "synflow,magic"], "--proxies must name some of naswot"),
    (["--sample", "-1"], "--sample must be >= 0"),
    (["--set", "epochs=0"], "epochs"),
])
def test_proxies_mistakes_get_one_line(tmp_path, capsys, argv, message) -> None:
    argv = ["proxies", "--sample", "2", "--runs-dir", str(tmp_path), *argv]  # the last wins
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def zeroshot_config(**discrete) -> SearchConfig:
    return SearchConfig.from_dict({
        "space": "nb201", "kind": "discrete", "epochs": 3, "threads": 1,
        "data": {"name": "digits"},
        "discrete": {"strategy": "zeroshot", "proxy": "synflow", "proxy_sample": 6,
                     "train_epochs": 1, **discrete}}).validate()


def test_zero_shot_trains_the_proxys_best_first_and_charges_its_seconds(monkeypatch) -> None:
    from nas_engine.discrete import zero_shot

    pause = 0.2  # each proxy scoring is made to take at least this long, so its charge is known
    scoring = zero_shot.proxy_scores

    def slow_scoring(*args, **kwargs):
        time.sleep(pause)
        return scoring(*args, **kwargs)

    monkeypatch.setattr(zero_shot, "proxy_scores", slow_scoring)
    job = DiscreteSearch(zeroshot_config())
    answers = []
    evaluate = job.evaluator
    job.evaluator = lambda text: answers.append(evaluate(text)) or answers[-1]
    records = [job.step()[-1] for _ in range(3)]
    ranked = job.strategy.ranked
    assert len(ranked) == 6
    values = [v for _, v in ranked]
    assert values == sorted(values, reverse=True)
    data = evaluate.train_config(records[0]["arch"]).data
    for (arch, value), record in zip(ranked, records, strict=False):
        assert record["arch"] == job.space.text(arch)
        assert proxy_scores("nb201", record["arch"], data, 0, ["synflow"])["synflow"] == \
            pytest.approx(value)
    # Beyond its training, the first proposal is charged the six scorings; later ones are not.
    costs = [0.0] + [r["cost_s"] for r in records]
    beyond_training = [costs[i + 1] - costs[i] - a.train_seconds for i, a in enumerate(answers)]
    assert beyond_training[0] >= 6 * pause
    assert all(-1e-3 < extra < pause for extra in beyond_training[1:])  # cost_s is rounded
    assert job.strategy.view()["trained"] == 3


def test_zero_shot_ends_when_its_ranking_is_spent_and_resumes_exactly() -> None:
    whole = DiscreteSearch(zeroshot_config(proxy_sample=2))
    archs = [whole.step()[-1]["arch"] for _ in range(2)]
    assert whole.done and "proposed all it had after 2" in whole.finish_message
    part = DiscreteSearch(zeroshot_config(proxy_sample=2))
    part.step()
    resumed = DiscreteSearch(zeroshot_config(proxy_sample=2))
    resumed.load_state_dict(part.state_dict())
    assert resumed.step()[-1]["arch"] == archs[1]


def test_the_configs_proxy_names_are_the_registry_and_the_vote() -> None:
    from nas_engine.config import ZERO_SHOT_PROXIES
    from nas_engine.proxies import PROXIES

    assert ZERO_SHOT_PROXIES == (*PROXIES, "vote")
    with pytest.raises(ValueError, match="discrete.proxy"):
        zeroshot_config(proxy="magic")
