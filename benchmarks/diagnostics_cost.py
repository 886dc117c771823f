"""What the λmax diagnostic costs: its share of search time at the default cadence, per space.
Target: <= 10 %.

    .venv/bin/python benchmarks/diagnostics_cost.py [--epochs 4] [--every N] [--iterations N]
"""

from __future__ import annotations

import argparse

from nas_engine.config import DiagnosticsConfig, preset
from nas_engine.search import Search

SPACES = {
    "darts": {"space": "darts"},
    "nb201": {"space": "nb201", "ops": None, "network.cells_per_stage": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    defaults = DiagnosticsConfig()
    parser.add_argument("--every", type=int, default=defaults.hessian_every)
    parser.add_argument("--iterations", type=int, default=defaults.hessian_iterations)
    parser.add_argument("--batch", type=int, default=defaults.hessian_batch)
    args = parser.parse_args()
    print(f"classroom preset, {args.epochs} epochs, λmax every {args.every} epochs, "
          f"at most {args.iterations} Lanczos steps on {args.batch} validation images, 1 thread")
    print(f"{'space':6} {'search s':>9} {'λmax s':>8} {'share':>7}  "
          "λmax values (Hessian-vector products)")
    for name, changes in SPACES.items():
        config = preset("classroom").with_changes({
            **changes, "epochs": args.epochs, "threads": 1, "record.checkpoint": False,
            "diagnostics.hessian_every": args.every,
            "diagnostics.hessian_iterations": args.iterations,
            "diagnostics.hessian_batch": args.batch,
        })
        search = Search(config)
        records = search.run()
        total = search.elapsed()
        measured = [r for r in records if "hessian_seconds" in r]
        spent = sum(r["hessian_seconds"] for r in measured)
        values = ", ".join(f"{r['hessian_max_eigenvalue']:.3g} ({r['hessian_method'].split()[1]})"
                           for r in measured)
        print(f"{name:6} {total:9.1f} {spent:8.1f} {100 * spent / total:6.1f}%  {values}")


if __name__ == "__main__":
    main()
