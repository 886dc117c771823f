"""Time a classroom retrain of a DARTS and an NB201 cell on the offline task (1 thread), and a
repeated request, which the evaluations database answers without training.

Targets (issue: retrain derived cells): a cached request under 50 ms; a classroom NB201 retrain
under 2 minutes on one core.

    python benchmarks/retrain.py [--spaces nb201,darts] [--set epochs=2 ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from nas_engine.config import parse_assignment, train_config
from nas_engine.evaluation.training import Training, evaluation_key
from nas_engine.evaluations import EvaluationsDB
from nas_engine.store import Recorder

CELLS = {
    "nb201": "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|"
             "skip_connect~2|",
    "darts": ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
              "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), "
              "('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
              "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
              "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), "
              "('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", default="nb201,darts")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    changes = {**dict(parse_assignment(item) for item in args.set), "device": "cpu",
               "threads": 1}
    print(f"classroom retrain on digits_clutter, 1 thread; changes {changes}\n")
    print(f"{'space':<7}{'epochs':>7}{'images':>8}{'seconds':>9}{'images/s':>10}"
          f"{'test acc':>10}{'cached ms':>11}")
    with tempfile.TemporaryDirectory() as runs:
        for space in args.spaces.split(","):
            config = train_config(space, CELLS[space], changes=changes)
            recorder = Recorder.create(runs, config, label="bench")
            training = Training(config, recorder)
            started = time.perf_counter()
            last = training.run()[-1]
            seconds = time.perf_counter() - started
            recorder.close()
            images = training.train_stream.num_samples * config.epochs
            db, key = EvaluationsDB(runs), evaluation_key(config)
            lookups = []
            for _ in range(20):  # the cache path of `train`: the key, then the row
                t = time.perf_counter()
                row = EvaluationsDB(runs).get(evaluation_key(config))
                lookups.append(1e3 * (time.perf_counter() - t))
            assert row is not None and row.test_acc == last["test_acc"] and db.get(key)
            print(f"{space:<7}{config.epochs:>7}{training.train_stream.num_samples:>8}"
                  f"{seconds:>9.1f}{images / seconds:>10.0f}{last['test_acc']:>10.3f}"
                  f"{sorted(lookups)[10]:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
