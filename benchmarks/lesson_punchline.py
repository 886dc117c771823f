"""The lesson's punchline in numbers: search with the collapse demo and its cured twin on each
seed, then retrain both derived cells from scratch on the hard offline task (classroom
profile) and score them on its held-out images. The collapsed supernet reads the higher
validation accuracy; its cell, retrained, scores lower.

    .venv/bin/python benchmarks/lesson_punchline.py [--seeds 0,1,2]
        [--presets collapse-demo,collapse-cured] [--set key=value ...] [--train-set key=value]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nas_engine.config import parse_assignment, preset
from nas_engine.evaluation.training import Training, retrain_config
from nas_engine.search import Search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--presets", default="collapse-demo,collapse-cured")
    parser.add_argument("--set", action="append", default=[], help="a search setting")
    parser.add_argument("--train-set", action="append", default=[], help="a retrain setting")
    args = parser.parse_args()
    torch.set_num_threads(1)
    search_changes = {"threads": 1, "record.checkpoint": False,
                      **dict(parse_assignment(s) for s in args.set)}
    train_changes = {"threads": 1, "device": "cpu",
                     **dict(parse_assignment(s) for s in args.train_set)}
    print(f"{'preset':16}{'seed':>5}{'skips':>7}{'supernet val':>14}{'retrained test':>16}"
          f"{'search s':>10}{'retrain s':>11}  cell")
    results: dict[str, list[tuple[float, float]]] = {}
    for name in args.presets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            config = preset(name).with_changes({**search_changes, "seed": seed})
            started = time.perf_counter()
            search = Search(config)
            last = [r for r in search.run() if r["kind"] == "epoch"][-1]
            searched = time.perf_counter() - started
            started = time.perf_counter()
            train = retrain_config(config, last["genotype"], changes=train_changes)
            test = Training(train).run()[-1]["test_acc"]
            retrained = time.perf_counter() - started
            results.setdefault(name, []).append((last["val_acc"], test))
            genotype = last["genotype"]
            normal = genotype.get("arch_str") or " ".join(op for op, _ in genotype["normal"])
            print(f"{name:16}{seed:>5}{last['skip_count']:>7}{last['val_acc']:>14.3f}"
                  f"{test:>16.3f}{searched:>10.0f}{retrained:>11.0f}  {normal}", flush=True)
    print()
    for name, pairs in results.items():
        val, test = zip(*pairs, strict=True)
        print(f"{name:16} supernet val {statistics.mean(val):.3f} (spread "
              f"{max(val) - min(val):.3f}) · retrained test {statistics.mean(test):.3f} "
              f"(spread {max(test) - min(test):.3f})")


if __name__ == "__main__":
    main()
