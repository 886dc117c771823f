"""Calibrate the offline task: retrain NB201 cells at the classroom profile on digits_clutter and
print test accuracy per cell and seed, with each cell's mean and spread.

Why: retraining can only show that a collapsed cell is worse on a task where cells differ
(plain digits cannot: shared/notes/hard-task-calibration.md). The target is the all-skip cell at
least 10 points of test accuracy below a good convolutional cell (mean of 3 seeds), seed spread
at most 2 points.

    python benchmarks/retrain_calibration.py [--seeds 0,1,2] [--jobs 2]
        [--set data.clutter.noise=0.3 ...]

`--jobs N` runs N retrains at once, each in a process of its own on one thread.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from nas_engine.config import parse_assignment, train_config
from nas_engine.evaluation.training import Training


def cell(*ops: str) -> str:
    """An NB201 arch string from six ops in edge order 1←0, 2←0, 2←1, 3←0, 3←1, 3←2."""
    o = [f"{op}~{src}" for op, src in zip(ops, (0, 0, 1, 0, 1, 2))]
    return f"|{o[0]}|+|{o[1]}|{o[2]}|+|{o[3]}|{o[4]}|{o[5]}|"


CELLS = {
    "all skip_connect": cell(*["skip_connect"] * 6),
    "all nor_conv_3x3": cell(*["nor_conv_3x3"] * 6),
    # NAS-Bench-201's best cell on CIFAR-10 (94.37 %): convolutions, and a skip from the input.
    "conv with input skip": cell("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect",
                                 "nor_conv_3x3", "nor_conv_3x3"),
    "mixed": cell("nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3",
                  "nor_conv_3x3", "skip_connect"),
    "all avg_pool_3x3": cell(*["avg_pool_3x3"] * 6),
    "all none": cell(*["none"] * 6),
}


def retrain(name: str, seed: int, changes: dict[str, Any]) -> tuple[float, float]:
    """(test accuracy, seconds) of one classroom retrain of CELLS[name], on one thread."""
    torch.set_num_threads(1)
    config = train_config("nb201", CELLS[name], seed=seed, changes=changes)
    started = time.perf_counter()
    last = Training(config).run()[-1]
    return last["test_acc"], time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cells", default=",".join(CELLS), help="names from CELLS")
    parser.add_argument("--jobs", type=int, default=1, help="retrains at once (processes)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    changes = dict(parse_assignment(item) for item in args.set)
    changes.update(device="cpu", threads=1)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.cells.split(",")
    print(f"NB201 classroom retrain on digits_clutter, 1 thread each, {args.jobs} at once; "
          f"changes {changes}\n")
    print(f"{'cell':<20}" + "".join(f"{'seed ' + str(s):>9}" for s in seeds)
          + f"{'mean':>8}{'spread':>8}{'s/cell':>8}")
    means = {}
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = {name: [pool.submit(retrain, name, seed, changes) for seed in seeds]
                for name in names}
        for name in names:
            accs, seconds = zip(*(job.result() for job in jobs[name]), strict=True)
            means[name] = statistics.mean(accs)
            print(f"{name:<20}" + "".join(f"{a:>9.3f}" for a in accs)
                  + f"{means[name]:>8.3f}{max(accs) - min(accs):>8.3f}"
                  + f"{statistics.mean(seconds):>8.1f}", flush=True)
    good = [name for name in ("conv with input skip", "all nor_conv_3x3") if name in means]
    for name in good if "all skip_connect" in means else []:
        print(f"{name} - all skip_connect: "
              f"{100 * (means[name] - means['all skip_connect']):.1f} points")


if __name__ == "__main__":
    main()
