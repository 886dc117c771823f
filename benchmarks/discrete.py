"""Discrete search speed: seconds per evaluation on the MLP space (1-D regression, the
classroom profile) and on NB201 (classroom profile, digits_clutter), each against a bare torch
loop training the same network for the same steps in the same run (the machinery's overhead),
and a 100-evaluation evolution run on the MLP space end to end. One thread.

    .venv/bin/python benchmarks/discrete.py [--skip-nb201] [--evaluations 100]

Targets (the discrete-search issue): an MLP evaluation well under a second; seed 001's
comparison (4 strategies x 5 seeds) in under 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from nas_engine.config import SearchConfig, train_config
from nas_engine.evaluation.training import training_job
from nas_engine.runner import RunRegistry
from nas_engine.spaces.mlp import MlpArch

MLP = MlpArch(2, 64, ("relu", "relu"), 1e-3, "adam", 0.0).to_text()
NB201 = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|"
         "skip_connect~2|")


def timed(build) -> tuple[float, float]:
    """(seconds of our retrain job, seconds of a bare loop over the same model and steps)."""
    job = build()
    started = time.perf_counter()
    job.run()
    ours = time.perf_counter() - started
    fresh = build()
    model, stream, steps = fresh.model, fresh.train_stream, fresh.total_steps
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    regression = getattr(fresh, "regression", False)
    started = time.perf_counter()
    model.train()
    for _ in range(steps):
        x, y = stream.next()
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        loss = F.mse_loss(out, y) if regression else F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return ours, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-nb201", action="store_true")
    parser.add_argument("--evaluations", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    changes = {"threads": 1, "device": "cpu"}
    rows = [("mlp, regression1d", lambda: training_job(
        train_config("mlp", MLP, dataset="regression1d", changes=changes), None))]
    if not args.skip_nb201:
        rows.append(("nb201, digits_clutter", lambda: training_job(
            train_config("nb201", NB201, changes=changes), None)))
    print(f"{'evaluation':24}{'ours s':>9}{'bare loop s':>13}{'ratio':>7}{'evals/s':>9}")
    for name, build in rows:
        ours, bare = timed(build)
        print(f"{name:24}{ours:>9.2f}{bare:>13.2f}{ours / bare:>7.2f}{1 / ours:>9.2f}",
              flush=True)
    config = SearchConfig(space="mlp").with_changes({
        "kind": "discrete", "data.name": "regression1d", "epochs": args.evaluations,
        "record.checkpoint": False, **changes})
    with tempfile.TemporaryDirectory() as runs:
        started = time.perf_counter()
        run = RunRegistry(runs).create(config, label="bench").start()
        run.join()
        wall = time.perf_counter() - started
        view = run.snapshot().epochs
    per = [s for s, c in zip(view.seconds, view.cached, strict=True) if not c]
    print(f"\nevolution, {len(view)} evaluations on the MLP space: {wall:.1f} s end to end, "
          f"{int(sum(view.cached))} from the database, median trained evaluation "
          f"{statistics.median(per):.2f} s; best score {view.best_score[-1]:.4f}")


if __name__ == "__main__":
    main()
