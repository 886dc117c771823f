"""What Ray costs and gives a sweep: 4 one-epoch classroom searches (seeds 0-3, one torch
thread each) run one after another in one process, then the same 4 as a sweep through Ray
Tune on a local Ray of `--cpus` cores (2).

Between the two, the same 4 shared among `--cpus` plain processes started for them (no Ray):
what the machine gives two programs side by side, Ray's ceiling on it.

Printed: the wall times; the speed-up (the sweep's target is 1.7× on 2 cores), first of the
sweep itself (`drive` on a running Ray), then with Ray's start and stop; Ray's start-up
(`ray.init`, and Tune's first trial from `fit` to the trial's run created: a worker process
importing torch) and shutdown; the overhead per trial (the sweep's wall time beyond the
searches' own time spread over the cores); and the CPU seconds of each way, with the speed-up
they allow at best (the one-process wall against Ray's CPU seconds spread over the cores:
Ray's daemons and each worker's imports are work the single process does not do).

    .venv/bin/python benchmarks/sweep.py [--cpus 2] [--trials 4] [--epochs 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ray
import torch

from nas_engine.config import preset
from nas_engine.runner import RunRegistry
from nas_engine.store import RunFolder
from nas_engine.sweep.driver import OBJECT_STORE_BYTES, Driver, drive
from nas_engine.sweep.folder import SweepFolder
from nas_engine.sweep.spec import SweepSpec


@dataclass
class Timing:
    wall_s: float
    own_s: list[float]  # each run's own time
    cpu_s: float  # every process's, while it ran
    init_s: float = 0.0  # Ray only: ray.init, fit to the first trial's run, ray.shutdown
    first_s: float = 0.0
    shutdown_s: float = 0.0


def own_seconds(folder: RunFolder) -> float:
    """A run's own time: its last record's `time_s` (building the supernet, data, steps)."""
    return float(folder.last_record(("epoch",))["time_s"])


class DescendantsCpu:
    """CPU seconds (user + system) of the processes below this one: Ray's daemons and
    workers, read from /proc (Linux; 0 elsewhere) at each `sample`, so that a worker Tune has
    ended by the last sample still counts with what it had used when last seen."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}

    def sample(self) -> None:
        parent_of, cpu_of = {}, {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            parent_of[int(entry.name)] = int(fields[1])
            cpu_of[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        for pid, cpu in cpu_of.items():
            ancestor = parent_of.get(pid)
            while ancestor not in (None, 0, 1, os.getpid()):
                ancestor = parent_of.get(ancestor)
            if ancestor == os.getpid():
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def one_after_another(runs_dir: Path, seeds: list[int], epochs: int) -> list[float]:
    """The searches of `seeds` run in turn in this process; each run's own seconds."""
    torch.set_num_threads(1)
    registry = RunRegistry(runs_dir)
    own = []
    for seed in seeds:
        config = preset("classroom").with_changes({"epochs": epochs, "threads": 1,
                                                   "seed": seed})
        run = registry.create(config, label="bench").start()
        run.join()
        own.append(own_seconds(run.folder))
    return own


def sequential(runs_dir: Path, seeds: list[int], epochs: int) -> Timing:
    started, cpu = time.perf_counter(), time.process_time()
    own = one_after_another(runs_dir, seeds, epochs)
    return Timing(time.perf_counter() - started, own, time.process_time() - cpu)


def in_processes(runs_dir: Path, seeds: list[int], cpus: int, epochs: int) -> Timing:
    """The same searches shared among `cpus` fresh processes (no Ray), each importing torch
    and the engine, then running its share in turn: what the cores give any two programs."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    shares = [seeds[i::cpus] for i in range(cpus)]
    with ProcessPoolExecutor(cpus, mp_context=multiprocessing.get_context("spawn")) as pool:
        owns = list(pool.map(one_after_another, [runs_dir] * cpus, shares, [epochs] * cpus))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    own = [owns[i % cpus][i // cpus] for i in range(len(seeds))]
    return Timing(wall, own, cpu)


def through_ray(runs_dir: Path, seeds: list[int], cpus: int, epochs: int) -> Timing:
    cpu = time.process_time()
    began = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
             object_store_memory=OBJECT_STORE_BYTES, logging_level="ERROR",
             log_to_driver=False)
    init_s = time.perf_counter() - began
    spec = SweepSpec("bench", "classroom", {}, seeds, {"epochs": epochs}).validate()
    folder = SweepFolder.create(runs_dir, spec)
    first: list[float] = []
    descendants = DescendantsCpu()

    def watch(driver: Driver) -> None:  # at each trial's start, epoch and end
        descendants.sample()
        if not first and any(t.get("run_id") for t in driver.trials):
            first.append(time.perf_counter())

    started = time.perf_counter()
    try:
        driver = drive(folder, on_change=watch)
        wall = time.perf_counter() - started
        descendants.sample()
        cpu = time.process_time() - cpu + descendants.seconds
    finally:
        stopping = time.perf_counter()
        ray.shutdown()
    shutdown_s = time.perf_counter() - stopping
    own = [own_seconds(RunFolder(runs_dir / t["run_id"])) for t in driver.trials]
    return Timing(wall, own, cpu, init_s, first[0] - started, shutdown_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1, help="per trial (longer trials "
                        "spread Ray's fixed costs thinner)")
    args = parser.parse_args()
    seeds = list(range(args.trials))
    with tempfile.TemporaryDirectory() as root:
        one = sequential(Path(root) / "seq", seeds, args.epochs)
        plain = in_processes(Path(root) / "processes", seeds, args.cpus, args.epochs)
        on_ray = through_ray(Path(root) / "ray", seeds, args.cpus, args.epochs)
    ideal = sum(on_ray.own_s) / args.cpus  # the searches' own time, spread over the cores
    whole = on_ray.init_s + on_ray.wall_s + on_ray.shutdown_s
    print(f"{'':34}{'wall s':>9}{'CPU s':>8}{'runs own s (each)':>30}")
    for name, timing in (("one after another, one process", one),
                         (f"{args.cpus} plain processes (no Ray)", plain),
                         (f"Ray Tune, {args.cpus} CPUs", on_ray)):
        print(f"{name:34}{timing.wall_s:9.1f}{timing.cpu_s:8.1f}   "
              + " ".join(f"{s:5.1f}" for s in timing.own_s))
    print(f"speed-up {one.wall_s / on_ray.wall_s:.2f}× (with ray.init and ray.shutdown: "
          f"{one.wall_s / whole:.2f}×; target 1.7×); at best, Ray's CPU seconds spread over "
          f"{args.cpus} cores: {one.wall_s / (on_ray.cpu_s / args.cpus):.2f}×")
    print(f"{args.cpus} plain processes: {one.wall_s / plain.wall_s:.2f}× (what the cores give "
          "any programs run side by side, their start and imports included)")
    print(f"Ray start-up: ray.init {on_ray.init_s:.1f} s; fit to the first trial's run "
          f"{on_ray.first_s:.1f} s; ray.shutdown {on_ray.shutdown_s:.1f} s")
    print(f"overhead per trial {(on_ray.wall_s - ideal) * args.cpus / args.trials:.1f} s (the "
          f"sweep's wall {on_ray.wall_s:.1f} s against {ideal:.1f} s of the runs' own time per "
          "core)")


if __name__ == "__main__":
    main()
