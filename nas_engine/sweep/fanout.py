"""Retraining many architectures at once as Ray tasks (a sweep's final cells, the proxies'
ground truth, a discrete search's batch), with the evaluations database's promise kept: a key
is trained once.

The driver alone touches the database: it skips every key the database already has, sends
each other key once (the first config of a key stands for the rest) to a task that trains it
without a run folder (`ground_truth.train_row`, one CPU, one torch thread), and stores each
result as it comes back. SQLite is thus written from one process on one machine, never from
the nodes of a cluster over a network filesystem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ray

from nas_engine.config import SearchConfig
from nas_engine.evaluation.ground_truth import train_row
from nas_engine.evaluation.training import evaluation_key
from nas_engine.evaluations import Evaluation, EvaluationsDB

KeyColumns = tuple[Any, ...]  # EvaluationKey.columns(): hashable, unlike the key itself


@dataclass(frozen=True)
class Failed:
    """A key whose training raised (a diverging loss): its one-line reason."""

    key: KeyColumns
    message: str


@ray.remote(num_cpus=1)
def _train(config_json: str) -> Evaluation:
    return train_row(SearchConfig.from_json(config_json))


class Fanout:
    """Retrains in flight. `submit` sends a config's key unless the database has it or it is
    already sent; `collect` stores what has finished; `drain` waits for the rest."""

    def __init__(self, db: EvaluationsDB,
                 on_done: Callable[[KeyColumns, Evaluation | Failed], None] | None = None
                 ) -> None:
        self.db = db
        self.on_done = on_done
        self._flying: dict[ray.ObjectRef, KeyColumns] = {}
        self._sent: set[KeyColumns] = set()
        self.trained = 0  # results stored by this fan-out
        self.failed: list[Failed] = []

    def submit(self, config: SearchConfig) -> KeyColumns:
        """Send `config` (a train config) unless its key is stored or already sent."""
        key = evaluation_key(config).columns()
        if key not in self._sent and self.db.get(evaluation_key(config)) is None:
            self._sent.add(key)
            one_thread = config.with_changes({"threads": config.threads or 1})
            self._flying[_train.remote(one_thread.to_json())] = key
        return key

    def state(self, key: KeyColumns) -> str:
        """"running", "failed: <why>" or "done" (stored, by this fan-out or before)."""
        if key in self._flying.values():
            return "running"
        failed = next((f for f in self.failed if f.key == key), None)
        return "done" if failed is None else f"failed: {failed.message}"

    def collect(self, timeout: float = 0.0) -> int:
        """Store the results that have come back (waiting up to `timeout` s for the first);
        returns how many retrains are still running."""
        if self._flying:
            done, _ = ray.wait(list(self._flying), num_returns=len(self._flying),
                               timeout=timeout)
            for ref in done:
                self._finish(ref, self._flying.pop(ref))
        return len(self._flying)

    def drain(self) -> None:
        while self.collect(timeout=1.0):
            pass

    def _finish(self, ref: ray.ObjectRef, key: KeyColumns) -> None:
        try:
            outcome: Evaluation | Failed = self.db.put(ray.get(ref))
            self.trained += 1
        except ray.exceptions.RayTaskError as exc:  # e.g. NonFiniteLossError in the task
            cause = exc.cause if exc.cause is not None else exc
            outcome = Failed(key, f"{type(cause).__name__}: {cause}".splitlines()[0])
            self.failed.append(outcome)
        if self.on_done is not None:
            self.on_done(key, outcome)


def train_all(configs: Sequence[SearchConfig], db: EvaluationsDB) -> list[Evaluation | Failed]:
    """Each config's row, in order: the database's (`cached`), else trained by a Ray task
    (in parallel, each key once) and stored. Needs `ray.init` first."""
    outcomes: dict[KeyColumns, Evaluation | Failed] = {}
    fanout = Fanout(db, on_done=outcomes.__setitem__)
    keys = [fanout.submit(config) for config in configs]
    fanout.drain()
    return [outcomes.get(key) or db.get(evaluation_key(config))
            for key, config in zip(keys, configs)]
