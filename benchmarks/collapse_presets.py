"""Does a preset show skip-connect collapse, and does its twin cure it? For each config and
seed: seconds and epochs until the derived cell first has skip_connect on at least half of its
edges, the final genotype and the final skip count.

    .venv/bin/python benchmarks/collapse_presets.py [--seeds 0,1,2] [--set key=value ...]
        [--presets NAME,NAME]

Without --presets it runs the two candidates below (the best found so far; see
`collapse_exploration.md`); once `collapse-demo` / `collapse-cured` presets exist, name them.
"""

from __future__ import annotations

import argparse
from typing import Any

from nas_engine.config import SearchConfig, parse_assignment, preset
from nas_engine.search import Search

CANDIDATES: dict[str, dict[str, Any]] = {
    "deep-nb201": {"space": "nb201", "epochs": 12, "network.channels": 8,
                   "network.cells_per_stage": 5, "optim.alpha_lr": 0.03,
                   "optim.w_lr": 0.002, "optim.w_lr_min": 0.001},
    "deep-nb201+darts-": {"space": "nb201", "epochs": 12, "network.channels": 8,
                          "network.cells_per_stage": 5, "optim.alpha_lr": 0.03,
                          "optim.w_lr": 0.002, "optim.w_lr_min": 0.001,
                          "mitigations.aux_skip": True},
}


def measure(name: str, config: SearchConfig) -> str:
    search = Search(config)
    edges = len(search.space.edges())
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
    return (f"{name:20} {config.seed:4d} {reached} {last['skip_count']:5d}/{edges:<3d} "
            f"{genotype}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--presets", default="")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    overrides = dict(parse_assignment(s) for s in args.set)
    overrides.setdefault("threads", 1)
    overrides["record.checkpoint"] = False
    if args.presets:
        configs = {n: preset(n).with_changes(overrides) for n in args.presets.split(",")}
    else:
        configs = {n: SearchConfig().with_changes({**c, **overrides})
                   for n, c in CANDIDATES.items()}
    print(f"{'config':20} {'seed':>4} {'half s':>7} {'epoch':>6} {'final':>9} genotype")
    for name, config in configs.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            print(measure(name, config.with_changes({"seed": seed})), flush=True)


if __name__ == "__main__":
    main()
