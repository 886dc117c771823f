"""Scoring a proposed architecture: the evaluation issue's retrain (the space's network and
the discrete run's training profile) through the evaluations database, so an architecture seen
before (by this run or any other) costs a lookup, not a training."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nas_engine.catalog import REGRESSION_DATASETS
from nas_engine.config import SearchConfig, train_config
from nas_engine.evaluation.ground_truth import train_once
from nas_engine.evaluations import Evaluation, EvaluationsDB
from nas_engine.loop import NonFiniteLossError

# What the candidates' training takes from the discrete run's own config.
_INHERITED = ("data.root", "data.download", "data.test_portion", "device", "threads")


@dataclass(frozen=True)
class Scored:
    """One answered proposal. `score` is higher-is-better on the validation part (what the
    strategy sees); `test_score` the held-out figure; `diverged` says the training's loss
    became non-finite: `score` is then the floor of its metric (accuracy 0; −1, the MSE of
    predicting the mean of standardised targets)."""

    score: float
    test_score: float | None
    metric: str
    seconds: float  # this answer's wall time (a cache hit: the lookup)
    cached: bool
    diverged: bool = False
    train_seconds: float | None = None  # what training it cost, whoever paid (the row's)


class Evaluator:
    def __init__(self, config: SearchConfig, runs_dir: Path | None, run_id: str | None) -> None:
        self.config = config
        self.db = None if runs_dir is None else EvaluationsDB(runs_dir)
        self.run_id = run_id
        data = config.to_dict()
        changes = {path: _get(data, path) for path in _INHERITED}
        if config.data.name == "digits_clutter":
            changes["data.clutter"] = data["data"]["clutter"]
        if config.discrete.train_epochs is not None:
            changes["epochs"] = config.discrete.train_epochs
        self.changes = changes
        self.metric = metric(config)
        self._diverged: set[str] = set()  # not stored: the database holds trained results

    def train_config(self, text: str) -> SearchConfig:
        c = self.config
        return train_config(c.space, text, c.discrete.profile, c.data.name, c.seed, self.changes)

    def __call__(self, text: str) -> Scored:
        started = time.perf_counter()
        if text in self._diverged:
            return self._floor(started, cached=True)
        try:
            row = train_once(self.train_config(text), self.db, self.run_id)
        except NonFiniteLossError:
            self._diverged.add(text)
            return self._floor(started, cached=False)
        return _scored(row, time.perf_counter() - started)

    def _floor(self, started: float, cached: bool) -> Scored:
        return Scored(score_floor(self.config), None, self.metric,
                      time.perf_counter() - started, cached, diverged=True)


def metric(config: SearchConfig) -> str:
    return "mse" if config.data.name in REGRESSION_DATASETS else "accuracy"


def score_floor(config: SearchConfig) -> float:
    """The worst score worth telling apart: accuracy 0, or −1, the MSE of predicting the mean
    of standardised targets. A strategy sees scores clipped at it, so one wild candidate (an
    MSE of 800 is possible at lr 0.1) cannot swamp REINFORCE's baseline."""
    return -1.0 if metric(config) == "mse" else 0.0


def _get(data: dict, path: str) -> object:
    for part in path.split("."):
        data = data[part]
    return data


def _scored(row: Evaluation, seconds: float) -> Scored:
    return Scored(row.search_score, row.test_score, row.metric, seconds, row.cached,
                  train_seconds=row.seconds)
