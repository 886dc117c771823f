"""`DiscreteSearch`: the job of a `discrete` run. One step is one evaluation: the strategy
proposes, the evaluator answers (from the database when it can), the strategy observes. The
run's epochs are its evaluation budget, so pause, step, stop, continue (with more epochs) and
branch (from any evaluation's checkpoint) work as for every run; `discrete.seconds` ends it
early on time."""

from __future__ import annotations

import time
from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.device import configure_threads, resolve_device
from nas_engine.discrete import make_discrete_strategy
from nas_engine.discrete.decisions import decision_space
from nas_engine.discrete.evaluator import Evaluator, score_floor
from nas_engine.records import Record
from nas_engine.store import Recorder


class DiscreteSearch:
    steps_per_epoch = 1

    def __init__(self, config: SearchConfig, recorder: Recorder | None = None) -> None:
        self.config = config.validate()
        configure_threads(resolve_device(config.device.name), config.threads)
        self.recorder = recorder
        self.space = decision_space(config)
        self.strategy = make_discrete_strategy(self.space, config)
        self.evaluator = Evaluator(config, None if recorder is None else recorder.path.parent,
                                   None if recorder is None else recorder.run_id)
        self.floor = score_floor(config)  # what the strategy sees is clipped at it
        self.epochs = config.epochs
        self.step_count = 0
        self.best: dict[str, Any] | None = None  # the incumbent: arch, score, test_score
        self.cache_hits = 0
        self.cost = 0.0  # the search's cost: its own time plus training, even when cached
        self.elapsed_before = 0.0
        self._started = time.perf_counter()

    # -- the Job protocol ------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self.step_count

    @property
    def total_steps(self) -> int:
        return self.epochs

    @property
    def finish_message(self) -> str | None:
        seconds = self.config.discrete.seconds
        if seconds and self.elapsed() >= seconds and self.step_count < self.epochs:
            return f"the time budget ({seconds:g} s) ended it after {self.step_count} evaluations"
        if self.strategy.exhausted and self.step_count < self.epochs:
            return f"the strategy proposed all it had after {self.step_count} evaluations"
        return None

    @property
    def done(self) -> bool:
        return self.step_count >= self.epochs or self.finish_message is not None

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._started

    def step(self) -> list[Record]:
        if self.done:
            raise RuntimeError("the run has already used its whole budget")
        started = time.perf_counter()
        arch = self.strategy.propose()
        text = self.space.text(arch)
        scored = self.evaluator(text)
        self.strategy.observe(arch, max(scored.score, self.floor))
        thinking = time.perf_counter() - started - scored.seconds  # the strategy's own time
        training = scored.seconds if scored.train_seconds is None else scored.train_seconds
        self.cost += thinking + training
        self.step_count += 1
        self.cache_hits += scored.cached
        if self.best is None or scored.score > self.best["score"]:
            self.best = {"arch": text, "score": scored.score, "test_score": scored.test_score,
                         "index": self.step_count}
        record: Record = {
            "kind": "evaluation", "epoch": self.step_count, "step": self.step_count,
            "time_s": round(self.elapsed(), 4), "index": self.step_count, "arch": text,
            "choices": self.space.labels(arch), "score": scored.score,
            "test_score": scored.test_score, "metric": scored.metric,
            "best_score": self.best["score"], "best_arch": self.best["arch"],
            "best_test_score": self.best["test_score"],
            "seconds": round(scored.seconds, 4), "cost_s": round(self.cost, 4),
            "cached": scored.cached,
            "diverged": scored.diverged, "cache_hits": self.cache_hits,
            "strategy": self.strategy.view(), "live": self.live_values()}
        if self.recorder is not None:
            self.recorder.append_record(record)
            if self.config.record.checkpoint:
                self.recorder.save_checkpoint(self.state_dict(), self.step_count)
        return [record]

    def run(self) -> list[Record]:
        records = []
        while not self.done:
            records.extend(self.step())
        return records

    def initial_record(self) -> Record:
        return {"kind": "init", "epoch": 0, "step": 0, "time_s": 0.0,
                "strategy": self.strategy.view(), "live": self.live_values()}

    def live_values(self) -> dict[str, float]:
        return self.strategy.live_values()

    def set_live(self, name: str, value: float) -> None:
        self.strategy.set_live(name, value)

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.recorder.record_count if self.recorder is not None else None,
                "epoch": self.step_count, "step_count": self.step_count,
                "elapsed": self.elapsed(), "best": self.best, "cache_hits": self.cache_hits,
                "cost": self.cost,
                "strategy": self.strategy.state_dict(), "config": self.config.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = state["step_count"]
        self.elapsed_before = state["elapsed"]
        self._started = time.perf_counter()
        self.best = state["best"]
        self.cache_hits = state["cache_hits"]
        self.cost = state["cost"]
        self.strategy.load_state_dict(state["strategy"])
