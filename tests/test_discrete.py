"""Discrete strategies and their job, on scores computed from the architecture itself (so the
best one is known and nothing trains): evolution's aging, mutation, REINFORCE on a bandit,
determinism, the incumbent, and resume."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from nas_engine.config import SearchConfig
from nas_engine.discrete import DISCRETE_STRATEGIES, make_discrete_strategy
from nas_engine.discrete.decisions import DartsDecisions, decision_space
from nas_engine.discrete.evaluator import Scored
from nas_engine.discrete.evolution import RegularizedEvolution
from nas_engine.discrete.job import DiscreteSearch
from nas_engine.spaces.genotypes import NB201Genotype, darts_from_text
from nas_engine.spaces.mlp import MlpArch


def discrete_config(space: str = "nb201", strategy: str = "evolution", **changes
                    ) -> SearchConfig:
    data = {"mlp": {"data.name": "regression1d"}}.get(space, {})
    return SearchConfig(space=space).with_changes({
        "kind": "discrete", "discrete.strategy": strategy, "discrete.population": 6,
        "discrete.sample": 3, "epochs": 40, "record.checkpoint": False, **data, **changes})


def conv_count(text: str) -> float:
    """The NB201 toy score: how many edges hold nor_conv_3x3 (best: all six)."""
    return sum(op == "nor_conv_3x3" for op, _ in NB201Genotype.from_arch_str(text).edges) / 6


def fake_job(config: SearchConfig) -> DiscreteSearch:
    job = DiscreteSearch(config)
    job.evaluator = lambda text: Scored(conv_count(text), None, "accuracy", 0.0, False)
    return job


@pytest.mark.parametrize("space", ["nb201", "darts", "mlp"])
def test_a_mutation_changes_exactly_one_decision_that_matters(space):
    decisions = decision_space(discrete_config(space, **(
        {"mlp.per_layer_activation": True} if space == "mlp" else {})))
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = decisions.sample(rng)
        child = decisions.mutate(arch, rng)
        changed = [i for i, (a, b) in enumerate(zip(arch, child)) if a != b]
        assert len(changed) == 1
        assert changed[0] in decisions.active(arch)
        assert decisions.text(child) != decisions.text(arch)


def test_darts_decisions_give_cells_with_two_different_inputs_and_no_none():
    decisions = DartsDecisions(["none", "skip_connect", "sep_conv_3x3"])
    rng = np.random.default_rng(1)
    for _ in range(100):
        genotype = darts_from_text(decisions.text(decisions.sample(rng)))
        for cell in (genotype.normal, genotype.reduce):
            assert len(cell) == 8
            for node in range(4):
                (op_a, a), (op_b, b) = cell[2 * node: 2 * node + 2]
                assert a < b <= node + 1 and "none" not in (op_a, op_b)


def test_mlp_per_layer_activations_below_the_depth_are_inactive():
    decisions = decision_space(discrete_config("mlp", **{"mlp.per_layer_activation": True}))
    names = [d.name for d in decisions.decisions]
    arch = [0] * len(names)  # one layer (the first depth choice)
    active = {names[i] for i in decisions.active(tuple(arch))}
    assert "activation 1" in active and "activation 2" not in active
    mlp = MlpArch.from_text(decisions.text(tuple(arch)))
    assert mlp.layers == 1 and len(mlp.activations) == 1


def test_evolution_removes_the_oldest_not_the_worst():
    config = discrete_config(**{"discrete.population": 3, "discrete.sample": 3})
    evolution = RegularizedEvolution(decision_space(config), config)
    archs = [evolution.propose() for _ in range(3)]
    for arch, score in zip(archs, (0.1, 0.9, 0.5)):  # the oldest is the worst? no: 0.1 first
        evolution.observe(arch, score)
    evolution.observe(evolution.propose(), 0.0)  # a child worse than all
    ages = [(score, born) for _, score, born in evolution.population]
    assert ages == [(0.9, 1), (0.5, 2), (0.0, 3)]  # the first-born left, the worst stayed
    evolution.observe(evolution.propose(), 0.2)
    assert [s for _, s, _ in evolution.population] == [0.5, 0.0, 0.2]  # 0.9 aged out


def test_evolution_mutates_the_best_of_its_sample():
    config = discrete_config(**{"discrete.population": 4, "discrete.sample": 4})
    evolution = RegularizedEvolution(decision_space(config), config)
    for score in (0.1, 0.2, 0.3, 0.8):
        evolution.observe(evolution.propose(), score)
    best = evolution.population[3][0]
    # with S = P = 4 and 4 draws, the best is in the sample unless it was never drawn
    children = [evolution.propose() for _ in range(20)]
    from_best = sum(sum(a != b for a, b in zip(c, best)) == 1 for c in children)
    assert from_best >= 12


def test_reinforce_learns_a_bandit_with_a_known_best_arm():
    config = discrete_config("nb201", "reinforce", **{"discrete.controller_lr": 0.05})
    space = decision_space(config)
    controller = make_discrete_strategy(space, config)
    best = 3  # arm: the first edge's op index
    for _ in range(150):
        arch = controller.propose()
        controller.observe(arch, 1.0 if arch[0] == best else 0.0)
    first_edge = controller.probabilities()[0]
    assert first_edge[best] > 0.8, first_edge


CELL_STRATEGIES = sorted(set(DISCRETE_STRATEGIES) - {"gradient"})  # gradient: MLP only


@pytest.mark.parametrize("strategy", CELL_STRATEGIES)
def test_the_same_seed_gives_the_same_evaluations_and_the_incumbent_never_drops(strategy):
    runs = [fake_job(discrete_config(strategy=strategy)).run() for _ in range(2)]
    assert [r["arch"] for r in runs[0]] == [r["arch"] for r in runs[1]]
    best = [r["best_score"] for r in runs[0]]
    assert best == sorted(best) and best[-1] == max(r["score"] for r in runs[0])
    other = fake_job(discrete_config(strategy=strategy, seed=1)).run()
    assert [r["arch"] for r in other] != [r["arch"] for r in runs[0]]


@pytest.mark.parametrize("strategy", CELL_STRATEGIES)
def test_resume_from_a_state_continues_the_same_sequence(strategy):
    config = discrete_config(strategy=strategy)
    whole = [r["arch"] for r in fake_job(config).run()]
    first = fake_job(config)
    for _ in range(17):
        first.step()
    state = first.state_dict()
    resumed = fake_job(config)
    resumed.load_state_dict(state)
    rest = [r["arch"] for r in resumed.run()]
    assert rest == whole[17:]
    assert resumed.step_count == 40


def test_evolution_finds_better_cells_than_random_on_the_toy_score():
    def final_best(strategy: str, seed: int) -> float:
        config = discrete_config(strategy=strategy, seed=seed, epochs=60)
        return fake_job(config).run()[-1]["best_score"]
    evolution = np.mean([final_best("evolution", s) for s in range(5)])
    random = np.mean([final_best("random", s) for s in range(5)])
    assert evolution > random


def test_a_time_budget_ends_the_run_with_a_message():
    job = DiscreteSearch(discrete_config(**{"discrete.seconds": 0.25}))

    def slow(text: str) -> Scored:
        time.sleep(0.1)
        return Scored(conv_count(text), None, "accuracy", 0.1, False)
    job.evaluator = slow
    records = job.run()
    assert 2 <= len(records) <= 3 < job.epochs
    assert "time budget (0.25 s)" in job.finish_message


def test_the_mlp_gradient_method_derives_every_layer_not_only_the_first():
    config = discrete_config("mlp", "gradient", **{"mlp.per_layer_activation": True})
    decisions = decision_space(config)
    gradient = make_discrete_strategy(decisions, config)
    ops = config.ops  # relu, leaky_relu, tanh
    # layer k's activation weights peak on op k % 3; depth on 3 layers; width on 64
    activation = torch.full((5, 3), 0.1)
    for k in range(5):
        activation[k, k % 3] = 0.8
    gradient.alphas = {"activation": activation,
                       "layers": torch.tensor([0.1, 0.1, 0.6, 0.1, 0.1]),
                       "width": torch.tensor([0.1, 0.6, 0.1, 0.1, 0.1])}
    arch = MlpArch.from_text(decisions.text(gradient._derive({"lr": 0.001, "optimizer": "adam",
                                                              "dropout": 0.0})))
    assert arch.layers == 3 and arch.width == 64
    assert arch.activations == (ops[0], ops[1], ops[2])
    assert (arch.lr, arch.optimizer, arch.dropout) == (0.001, "adam", 0.0)


def test_the_mlp_gradient_search_proposes_once_and_its_weights_sum_to_one():
    config = discrete_config("mlp", "gradient", **{"mlp.per_layer_activation": True})
    job = DiscreteSearch(config)
    job.evaluator = lambda text: Scored(-1.0, None, "mse", 0.0, False)
    records = job.run()
    assert len(records) == 1 and "proposed all it had" in job.finish_message
    probabilities = records[0]["strategy"]["probabilities"]
    assert len(probabilities) == len(job.space)
    assert all(abs(sum(row) - 1) < 1e-5 for row in probabilities)
    derived = [int(np.argmax(row)) for row in probabilities]
    assert MlpArch.from_text(job.space.text(tuple(derived))) == MlpArch.from_text(
        records[0]["arch"])
