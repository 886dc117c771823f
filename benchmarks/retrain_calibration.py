"""Calibrate the offline task: retrain NB201 cells at the classroom profile on digits_clutter and
print test accuracy per cell and seed, with each cell's mean and spread.

Why: retraining can only show that a collapsed cell is worse on a task where cells differ
(plain digits cannot: shared/notes/hard-task-calibration.md). The target is the all-skip cell at
least 10 points of test accuracy below a good convolutional cell (mean of 3 seeds), seed spread
at most 2 points.

    python benchmarks/retrain_calibration.py [--seeds 0,1,2] [--set data.clutter.noise=0.3 ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cells", default=",".join(CELLS), help="names from CELLS")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    changes = dict(parse_assignment(item) for item in args.set)
    changes.update(device="cpu", threads=1)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"NB201 classroom retrain on digits_clutter, 1 thread; changes {changes}\n")
    print(f"{'cell':<20}" + "".join(f"{'seed ' + str(s):>9}" for s in seeds)
          + f"{'mean':>8}{'spread':>8}{'s/cell':>8}")
    means = {}
    for name in args.cells.split(","):
        accs, seconds = [], []
        for seed in seeds:
            config = train_config("nb201", CELLS[name], seed=seed, changes=changes)
            started = time.perf_counter()
            last = Training(config).run()[-1]
            seconds.append(time.perf_counter() - started)
            accs.append(last["test_acc"])
        means[name] = statistics.mean(accs)
        print(f"{name:<20}" + "".join(f"{a:>9.3f}" for a in accs)
              + f"{means[name]:>8.3f}{max(accs) - min(accs):>8.3f}"
              + f"{statistics.mean(seconds):>8.1f}", flush=True)
    if {"all skip_connect", "all nor_conv_3x3"} <= set(means):
        gap = means["all nor_conv_3x3"] - means["all skip_connect"]
        print(f"\nconv - skip: {100 * gap:.1f} points")


if __name__ == "__main__":
    main()
