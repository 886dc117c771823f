"""Running a comparison's configs as ordinary runs, `jobs` at a time, each in its own process
(one torch thread each: N cores run N runs; the MLP's small steps are bound by Python, so
threads of one process would queue on its interpreter lock)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from nas_engine.config import SearchConfig


def _run_one(config_json: str, runs_dir: str, label: str) -> tuple[str, str, str | None]:
    from nas_engine.runner import RunRegistry

    run = RunRegistry(runs_dir).create(SearchConfig.from_json(config_json), label=label)
    run.start().join()
    snap = run.snapshot()
    return run.run_id, str(snap.state), snap.message


def run_configs(configs: Sequence[SearchConfig], runs_dir: str | Path, label: str,
                jobs: int = 1,
                on_done: Callable[[str, str, str | None], None] | None = None) -> list[str]:
    """Run every config to its end (`jobs` processes); returns the run ids in config order.
    `on_done(run_id, state, message)` is called as each ends."""
    ids: list[str | None] = [None] * len(configs)
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_run_one, c.to_json(), str(runs_dir), label): i
                   for i, c in enumerate(configs)}
        for future in as_completed(futures):
            run_id, state, message = future.result()
            ids[futures[future]] = run_id
            if on_done is not None:
                on_done(run_id, state, message)
    return [i for i in ids if i is not None]
