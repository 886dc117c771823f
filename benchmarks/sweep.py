"""What Ray costs and gives a sweep: 4 one-epoch classroom searches (seeds 0-3, one torch
thread each) run one after another in one process, then the same 4 as a sweep through Ray
Tune on a local Ray of `--cpus` cores (2). Printed: the wall times, the speed-up (the
sweep's target is 1.7× on 2 cores; the sweep's wall is `drive` on a running Ray, and Ray's
start and stop are counted apart, then in the second figure), Ray's start-up (`ray.init`, and
Tune's first trial from `fit` to the trial's run created: a worker process importing torch),
its shutdown, and the overhead per trial (the sweep's wall time beyond the searches' own time
spread over the cores).

    .venv/bin/python benchmarks/sweep.py [--cpus 2] [--trials 4] [--epochs 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray

from nas_engine.config import preset
from nas_engine.runner import RunRegistry
from nas_engine.store import RunFolder
from nas_engine.sweep.driver import OBJECT_STORE_BYTES, Driver, drive
from nas_engine.sweep.folder import SweepFolder
from nas_engine.sweep.spec import SweepSpec


def own_seconds(folder: RunFolder) -> float:
    """A run's own time: its last record's `time_s` (building the supernet, data, steps)."""
    return float(folder.last_record(("epoch",))["time_s"])


def sequential(runs_dir: Path, seeds: list[int], epochs: int) -> tuple[float, list[float]]:
    registry = RunRegistry(runs_dir)
    started = time.perf_counter()
    own = []
    for seed in seeds:
        config = preset("classroom").with_changes({"epochs": epochs, "threads": 1,
                                                   "seed": seed})
        run = registry.create(config, label="bench").start()
        run.join()
        own.append(own_seconds(run.folder))
    return time.perf_counter() - started, own


def through_ray(runs_dir: Path, seeds: list[int], cpus: int, epochs: int
                ) -> tuple[float, float, float, float, list[float]]:
    """(ray.init s, fit to the first trial's run s, sweep wall s, ray.shutdown s, the runs'
    own s)."""
    began = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
             object_store_memory=OBJECT_STORE_BYTES, logging_level="ERROR",
             log_to_driver=False)
    init_s = time.perf_counter() - began
    spec = SweepSpec("bench", "classroom", {}, seeds, {"epochs": epochs}).validate()
    folder = SweepFolder.create(runs_dir, spec)
    first: list[float] = []

    def watch(driver: Driver) -> None:
        if not first and any(t.get("run_id") for t in driver.trials):
            first.append(time.perf_counter())

    started = time.perf_counter()
    try:
        driver = drive(folder, on_change=watch)
        wall = time.perf_counter() - started
    finally:
        stopping = time.perf_counter()
        ray.shutdown()
    shutdown_s = time.perf_counter() - stopping
    own = [own_seconds(RunFolder(runs_dir / t["run_id"])) for t in driver.trials]
    return init_s, first[0] - started, wall, shutdown_s, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1, help="per trial (longer trials "
                        "spread Ray's fixed costs thinner)")
    args = parser.parse_args()
    seeds = list(range(args.trials))
    with tempfile.TemporaryDirectory() as root:
        seq_wall, seq_own = sequential(Path(root) / "seq", seeds, args.epochs)
        init_s, first_s, ray_wall, shutdown_s, ray_own = through_ray(
            Path(root) / "ray", seeds, args.cpus, args.epochs)
    ideal = sum(ray_own) / args.cpus  # the searches' own time, spread over the cores
    print(f"{'':34}{'wall s':>9}{'runs own s (each)':>30}")
    print(f"{'one after another, one process':34}{seq_wall:9.1f}   "
          + " ".join(f"{s:5.1f}" for s in seq_own))
    print(f"{f'Ray Tune, {args.cpus} CPUs':34}{ray_wall:9.1f}   "
          + " ".join(f"{s:5.1f}" for s in ray_own))
    print(f"speed-up {seq_wall / ray_wall:.2f}× (with ray.init and ray.shutdown: "
          f"{seq_wall / (init_s + ray_wall + shutdown_s):.2f}×; target 1.7×)")
    print(f"Ray start-up: ray.init {init_s:.1f} s; fit to the first trial's run {first_s:.1f} s;"
          f" ray.shutdown {shutdown_s:.1f} s")
    print(f"overhead per trial {(ray_wall - ideal) * args.cpus / args.trials:.1f} s (the "
          f"sweep's wall {ray_wall:.1f} s against {ideal:.1f} s of the runs' own time per "
          "core)")


if __name__ == "__main__":
    main()
