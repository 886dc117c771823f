"""Does the collapse demo collapse, and does its twin stay clear? For each preset and seed:
seconds and epochs until the derived cell (DARTS: the normal cell) first has skip_connect on
at least half of its edges, the final skip count and genotype, and how visible it is in the
heatmap (mean softmax weight of skip_connect against the best other op, at the end).

    .venv/bin/python benchmarks/collapse_presets.py [--seeds 0,1,2]
        [--presets collapse-demo,collapse-cured] [--set key=value ...]

Targets (the collapse-toolkit issue): the demo reaches half within 2 minutes and ends there on
3 of 3 seeds; its twin ends below half on 3 of 3. The settings tried on the way are in
`collapse_exploration.md`.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from nas_engine.config import SearchConfig, parse_assignment, preset
from nas_engine.search import Search


def measure(name: str, config: SearchConfig) -> str:
    search = Search(config)
    edges = search.space.derived_edges
    half_at = None
    last: dict[str, Any] = {}
    while not search.done:
        for record in search.step():
            if record["kind"] != "epoch":
                continue
            last = record
            if half_at is None and record["skip_count"] * 2 >= edges:
                half_at = (record["time_s"], record["epoch"])
    genotype = last["genotype"].get("arch_str") or last["genotype"]["text"]
    reached = f"{half_at[0]:7.1f} {half_at[1]:6d}" if half_at else f"{'never':>7} {'-':>6}"
    weights = np.asarray(next(iter(last["alphas"].values()))).mean(axis=0)
    skip = config.ops.index("skip_connect")
    best_other = max(w for i, w in enumerate(weights) if i != skip)
    return (f"{name:16} {config.seed:4d} {reached} {last['skip_count']:5d}/{edges:<3d} "
            f"{weights[skip]:6.2f} {best_other:6.2f}  {genotype}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--presets", default="collapse-demo,collapse-cured")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    overrides = dict(parse_assignment(s) for s in args.set)
    overrides.setdefault("threads", 1)
    overrides["record.checkpoint"] = False
    configs = {n: preset(n).with_changes(overrides) for n in args.presets.split(",")}
    print(f"{'preset':16} {'seed':>4} {'half s':>7} {'epoch':>6} {'final':>9} {'w_skip':>6} "
          f"{'w_next':>6}  genotype")
    for name, config in configs.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            print(measure(name, config.with_changes({"seed": seed})), flush=True)


if __name__ == "__main__":
    main()
