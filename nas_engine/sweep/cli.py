"""`python -m nas_engine sweep`: a grid of settings × seeds as ordinary runs on Ray Tune, with
a progress line, a summary table at the end, and `--resume` for a sweep cut short.

    sweep collapse-map                                    # the named sweep (27 trials)
    sweep --preset collapse-demo --grid optim.alpha_lr=0.003,0.03 --seeds 0-2 --retrain
    sweep --resume runs/sweeps/<sweep>                    # go on after Ctrl-C or a kill

Exit codes as `search`: 0 every trial ended (a failed trial is a result, shown as failed); 2
refused before anything ran, in one line naming the flag or setting; 1 the sweep itself
failed; 130 interrupted (the line says how to resume). Registered by `nas_engine.cli`; this
module imports that one only inside functions (it imports this one at its top).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, TextIO

from nas_engine.config import PRESETS, TRAIN_PROFILES, parse_assignment, preset
from nas_engine.sweep import ray_missing
from nas_engine.sweep.presets import SWEEPS, named_sweep
from nas_engine.sweep.spec import SweepSpec, parse_grid, parse_seeds


def add_parser(commands: Any) -> None:
    """The `sweep` subcommand on `nas_engine.cli`'s subparsers."""
    sweep = commands.add_parser("sweep", help="run a grid of settings × seeds as runs on Ray "
                                "Tune (local, or a cluster)")
    sweep.add_argument("name", nargs="?", choices=sorted(SWEEPS),
                       help="a named sweep; --grid, --seeds and --set adjust it")
    sweep.add_argument("--preset", choices=sorted(PRESETS), help="every trial's starting "
                       "configuration")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a setting and its values; several --grid multiply")
    sweep.add_argument("--seeds", help="e.g. 0-4 or 0,2,5 (default: the preset's seed)")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a setting for every trial, e.g. --set epochs=4")
    sweep.add_argument("--retrain", nargs="?", const="classroom",
                       choices=sorted(TRAIN_PROFILES), help="retrain every trial's final "
                       "cell (default profile: classroom) as Ray tasks")
    sweep.add_argument("--retrain-set", action="append", default=[], metavar="KEY=VALUE",
                       help="a setting of the retrain profile, e.g. --retrain-set epochs=2")
    sweep.add_argument("--runs-dir", default="runs", help="where run folders go (./runs); "
                       "the sweep's own folder goes under its sweeps/")
    sweep.add_argument("--max-concurrent", type=int,
                       help="trials at a time (default: one per CPU of the Ray cluster)")
    sweep.add_argument("--address", help="a Ray cluster's address (default: RAY_ADDRESS, "
                       "else a local Ray started for the sweep)")
    sweep.add_argument("--resume", metavar="SWEEP_DIR", help="go on with a sweep that was "
                       "cut short: only its unfinished trials run")
    sweep.add_argument("--quiet", action="store_true", help="no progress line")


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The sweep the flags describe, checked (ValueError naming the flag or setting)."""
    changes = dict(parse_assignment(item) for item in args.set)
    retrain_changes = dict(parse_assignment(item) for item in args.retrain_set)
    grid = parse_grid(args.grid)
    named = named_sweep(args.name) if args.name else SweepSpec(args.preset or "sweep")
    spec = dataclasses.replace(
        named, preset=args.preset or named.preset, grid={**named.grid, **grid},
        changes={**named.changes, **changes}, retrain=args.retrain or named.retrain,
        retrain_changes={**named.retrain_changes, **retrain_changes})
    if args.seeds:
        spec = dataclasses.replace(spec, seeds=parse_seeds(args.seeds))
    elif not args.name:  # the preset's seed
        spec = dataclasses.replace(spec, seeds=[preset(spec.preset).seed if spec.preset
                                                else 0])
    return spec.validate()


def cmd_sweep(args: argparse.Namespace) -> int:
    """A new sweep (or, with --resume, one cut short) driven to its end."""
    from nas_engine.cli import UsageError

    missing = ray_missing()
    if missing:
        raise UsageError(missing)
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UsageError(f"--max-concurrent must be >= 1; got {args.max_concurrent}")
    from nas_engine.sweep.driver import SweepError, connect

    folder, spec = _resumed(args) if args.resume else (None, _checked_spec(args))
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    try:
        started = connect(address)
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    try:
        return _drive(folder, spec, address, args)
    finally:
        if started:
            import ray

            ray.shutdown()


def _checked_spec(args: argparse.Namespace) -> SweepSpec:
    from nas_engine.cli import UsageError
    from nas_engine.runner import preflight
    from nas_engine.store import check_runs_dir

    try:
        check_runs_dir(args.runs_dir)
    except ValueError as exc:
        raise UsageError(f"--runs-dir {exc}") from None
    try:
        spec = spec_from_args(args)
        preflight(spec.configs()[0])  # the device and the data, once (the trials share them)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    return spec


def _resumed(args: argparse.Namespace) -> tuple[Any, None]:
    """The sweep folder `--resume` names, if it has trials left to run."""
    from nas_engine.cli import UsageError
    from nas_engine.sweep.folder import SWEEP_FILE, SweepFolder

    given = [flag for flag, value in (("a sweep name", args.name), ("--preset", args.preset),
                                      ("--grid", args.grid), ("--seeds", args.seeds),
                                      ("--set", args.set), ("--retrain", args.retrain),
                                      ("--retrain-set", args.retrain_set),
                                      ("--max-concurrent", args.max_concurrent)) if value]
    if given:
        raise UsageError(f"--resume goes on with the sweep as it was made; drop {given[0]}")
    folder = SweepFolder(args.resume)
    if not (folder.path / SWEEP_FILE).is_file():
        raise UsageError(f"--resume {args.resume!r} is not a sweep folder (no {SWEEP_FILE})")
    try:
        state = folder.driver_state()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if state == "finished":
        raise UsageError(f"sweep {folder.sweep_id} is finished: every trial has ended")
    return folder, None


def _drive(folder: Any, spec: SweepSpec | None, address: str | None,
           args: argparse.Namespace) -> int:
    from nas_engine.cli import EXIT_INTERRUPTED, UsageError
    from nas_engine.store import RunInUse
    from nas_engine.sweep.driver import drive
    from nas_engine.sweep.folder import SweepFolder
    from nas_engine.sweep.results import trial_rows

    if folder is None:
        folder = SweepFolder.create(args.runs_dir, spec, args.max_concurrent)
    progress = None if args.quiet else SweepProgress(sys.stderr)
    where = address or "a local Ray"
    print(f"sweep {folder.path} on {where}", file=sys.stderr)
    try:
        driver = drive(folder, address=address, on_change=progress)
    except RunInUse as exc:
        raise UsageError(exc.reason) from None
    except KeyboardInterrupt:
        driver = None
    finally:
        if progress:
            progress.close()
    print(folder.path)
    print(summary_table(folder.read(), trial_rows(folder)))
    if driver is None or driver.state != "finished":
        print(f"interrupted; go on with: python -m nas_engine sweep --resume {folder.path}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


class SweepProgress:
    """The sweep's line (`results.progress_text`), rewritten in place on a terminal, else a
    line each time it changes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._last = ""

    def __call__(self, driver: Any) -> None:
        from nas_engine.sweep.results import progress_text

        text = progress_text(driver.trials)
        if text == self._last:
            return
        self._last = text
        self.stream.write(f"\r\033[K{text[:200]}" if self.live else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._last:
            self.stream.write("\n")


def summary_table(data: dict[str, Any], rows: list[Any]) -> str:
    """One line per trial: its grid values and seed, state, epochs, final skip count,
    validation accuracy, last λmax, alarm epoch, retrained accuracy and run."""
    axes = [*data["grid"], "seed"]
    header = ["#", *axes, "state", "epoch", "skip", "val acc", "λmax", "alarm", "retrained",
              "run"]

    def shown(value: Any, spec: str = "") -> str:
        if value is None:
            return "-"
        return format(value, spec) if spec else (f"{value:g}" if isinstance(value, float)
                                                 else str(value))

    lines = [[str(r.index), *(shown(r.point[a]) for a in axes), r.state,
              f"{shown(r.epoch)}/{r.epochs}", shown(r.skip_count), shown(r.val_acc, ".3f"),
              shown(r.lambda_max, ".3g"), shown(r.alarm_epoch), shown(r.retrained, ".3f"),
              shown(r.run_id)] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    text = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    text += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    failed = [r for r in rows if r.state == "failed" and r.message]
    text += [f"trial {r.index} failed: {r.message}" for r in failed]
    return "\n".join(text)
