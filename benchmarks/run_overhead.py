"""What watching costs: steps per second of a headless `Search` against the same search inside
a `Run` while a reader takes a snapshot every 100 ms (as a live page does).

Runs alternate (headless, live, headless, live, ...) so machine noise hits both; the table
gives each run's steps/s and the median overhead. Target: <= 5 %.

    .venv/bin/python benchmarks/run_overhead.py [--repeats 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

from nas_engine.config import SearchConfig, preset
from nas_engine.runner import RunRegistry
from nas_engine.search import Search


def config(epochs: int) -> SearchConfig:
    return preset("classroom").with_changes(
        {"epochs": epochs, "threads": 1, "record.checkpoint": False})


def headless(cfg: SearchConfig) -> float:
    search = Search(cfg)
    started = time.perf_counter()
    search.run()
    return search.step_count / (time.perf_counter() - started)


def watched(cfg: SearchConfig, runs_dir: str) -> tuple[float, int]:
    run = RunRegistry(runs_dir).create(cfg)
    snapshots = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal snapshots
        while not done.is_set():
            run.snapshot()
            snapshots += 1
            time.sleep(0.1)

    watcher = threading.Thread(target=reader, daemon=True)
    run.start()
    run.wait_for(lambda s: s.steps_per_epoch > 0, 600)  # data loaded, model built
    first = run.snapshot()
    started, start_step = time.perf_counter(), first.step
    watcher.start()
    run.wait_for(lambda s: not s.is_active, 3600)
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    return (run.snapshot().step - start_step) / elapsed, snapshots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    cfg = config(args.epochs)
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for _ in range(args.repeats):
            plain = headless(cfg)
            live, snaps = watched(cfg, runs_dir)
            rows.append((plain, live, snaps))
    print(f"classroom preset, {args.epochs} epochs, 1 torch thread, snapshot every 100 ms")
    print(f"{'headless steps/s':>17} {'live steps/s':>13} {'snapshots':>10} {'overhead':>9}")
    for plain, live, snaps in rows:
        print(f"{plain:17.2f} {live:13.2f} {snaps:10d} {100 * (1 - live / plain):8.1f}%")
    overhead = statistics.median(1 - live / plain for plain, live, _ in rows)
    print(f"median overhead: {100 * overhead:.1f}% (target <= 5%)")


if __name__ == "__main__":
    main()
