"""Retrained accuracy on demand: the stored row of a train config's key, or the training that
makes it. One function serves every caller that needs ground truth (a discrete search's
candidates, the proxies' sample, a fan-out of retrains), so a key is trained once."""

from __future__ import annotations

import dataclasses

from nas_engine.config import SearchConfig
from nas_engine.evaluation.training import evaluation_key, training_job
from nas_engine.evaluations import Evaluation, EvaluationsDB


def train_row(config: SearchConfig, run_id: str | None = None) -> Evaluation:
    """Train `config` (a `train` run's config) without a run folder and return its row, not
    stored. Raises `loop.NonFiniteLossError` when the training diverges."""
    job = training_job(config, None)
    job.run()
    assert job.result is not None
    return dataclasses.replace(job.result, run_id=run_id)


def train_once(config: SearchConfig, db: EvaluationsDB | None,
               run_id: str | None = None) -> Evaluation:
    """The database's row for `config`'s key (`cached` True), else trained now and stored."""
    if db is not None:
        stored = db.get(evaluation_key(config))
        if stored is not None:
            return stored
    row = train_row(config, run_id)
    return row if db is None else db.put(row)
