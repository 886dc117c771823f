"""`python -m nas_engine`: the engine without the browser.

    search   run a search into a new run folder, with a progress line
    train    retrain a cell from scratch and score it on held-out images (cached)
    resume   continue a stopped or interrupted run (optionally for more epochs)
    show     summarise a run folder
    proxies  rank-correlate zero-cost proxies with retrained accuracy on a sample of cells
    sweep    a grid of settings × seeds as runs on Ray Tune, with a summary table
    evaluations  export the evaluations database's retrained results, or import them
    params   list the live parameters a run of a config declares

Exit codes: 0 done; 2 refused before anything ran (a mistake in the arguments or settings, or
a run folder that is damaged, edited or in use), with one line naming the problem; 1 the run
failed (its message in one line, the traceback in the folder's error.log); 130 stopped. Runs go
through the app's own driver (`runner.Run`): Ctrl-C or SIGTERM stops one as the app's Stop does
(a checkpoint to resume from, state `stopped`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from nas_engine.comparison import COMPARISONS, comparison_configs, final_table
from nas_engine.config import (
    DATASETS,
    DEVICES,
    DISCRETE_STRATEGIES,
    ORDERS,
    PRESETS,
    SPACE_OPS,
    STRATEGIES,
    TRAIN_PROFILES,
    SearchConfig,
    parse_assignment,
    preset,
    train_config,
)
from nas_engine.history import HistoryView
from nas_engine.snapshot import Snapshot
from nas_engine.states import RunState
from nas_engine.store import RunFolder, check_runs_dir
from nas_engine.sweep import cli as sweep_cli  # it imports this module only when it runs

if TYPE_CHECKING:
    from nas_engine.runner import Run

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class UsageError(Exception):
    """A mistake of the person at the keyboard: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m nas_engine", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    search = commands.add_parser("search", help="run a search into a new run folder")
    search.add_argument("--preset", choices=sorted(PRESETS), help="starting configuration")
    search.add_argument("--space", choices=sorted(SPACE_OPS))
    search.add_argument("--dataset", choices=DATASETS)
    search.add_argument("--epochs", type=int)
    search.add_argument("--order", choices=ORDERS, help="DARTS first or second order")
    search.add_argument("--strategy", choices=[*STRATEGIES, *DISCRETE_STRATEGIES],
                        help="a gradient method, or a discrete one (a discrete run)")
    search.add_argument("--budget", type=int, help="a discrete run's evaluations")
    search.add_argument("--seed", type=int)
    search.add_argument("--device", choices=DEVICES)
    search.add_argument("--runs-dir", default="runs", help="where run folders go (./runs)")
    search.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting by dotted name, e.g. --set data.batch_size=32")
    search.add_argument("--quiet", action="store_true", help="no progress line")
    train = commands.add_parser("train", help="retrain a cell (or an MLP) and score it on "
                                               "held-out data")
    cell = train.add_mutually_exclusive_group(required=True)
    cell.add_argument("--from", dest="source", metavar="RUN_DIR",
                      help="a search run: its final cell, or its cell at --epoch")
    cell.add_argument("--genotype", help="a DARTS cell: 'Genotype(normal=[...], ...)'")
    cell.add_argument("--arch-str", help="an NB201 cell: '|op~0|+|op~0|op~1|+|...|'")
    cell.add_argument("--mlp", metavar="JSON", help="an MLP: a JSON object of layers, width, "
                      "activations (one name or a list), lr, optimizer, dropout")
    train.add_argument("--space", choices=sorted(SPACE_OPS),
                       help="optional: the space the cell flag already names")
    train.add_argument("--epoch", type=int, help="with --from: the cell at the end of epoch N")
    train.add_argument("--profile", choices=sorted(TRAIN_PROFILES), default="classroom")
    train.add_argument("--dataset", choices=DATASETS,
                       help="default: regression1d for an MLP, else digits_clutter")
    train.add_argument("--seed", type=int, help="default: 0, or the search's with --from")
    train.add_argument("--device", choices=DEVICES)
    train.add_argument("--runs-dir", default="runs", help="where run folders go (./runs)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a profile setting, e.g. --set epochs=4")
    train.add_argument("--json", action="store_true", help="print the result as one JSON "
                                                           "object")
    train.add_argument("--quiet", action="store_true", help="no progress line")
    compare = commands.add_parser("strategies", help="run a named comparison of discrete "
                                  "strategies (every strategy on every seed) and tabulate it")
    compare.add_argument("comparison", choices=sorted(COMPARISONS))
    compare.add_argument("--jobs", type=int, default=None,
                         help="runs at a time, one core each (default: the cores)")
    compare.add_argument("--runs-dir", default="runs", help="where run folders go (./runs)")
    compare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a setting for every run, e.g. --set epochs=50")
    compare.add_argument("--json", action="store_true", help="one JSON object per strategy")
    params = commands.add_parser("params", help="list the live parameters of a config")
    params.add_argument("--preset", choices=sorted(PRESETS))
    params.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    resume = commands.add_parser("resume", help="continue a stopped or interrupted run")
    resume.add_argument("run_dir")
    resume.add_argument("--epochs", type=int, help="run to this many epochs in all")
    resume.add_argument("--quiet", action="store_true", help="no progress line")
    show = commands.add_parser("show", help="summarise a run folder")
    show.add_argument("run_dir")
    evaluations = commands.add_parser(
        "evaluations", help="export the retrained results of the evaluations database to a "
                            "file, or import such a file (another machine's) into it")
    evaluations.add_argument("action", choices=("export", "import"))
    evaluations.add_argument("file", help="JSON lines: written by export, read by import")
    evaluations.add_argument("--runs-dir", default="runs", help="where the evaluations "
                                                                "database is (./runs)")
    evaluations.add_argument("--space", choices=sorted(SPACE_OPS),
                             help="export: only this space's rows")
    from nas_engine.proxies import cli as proxies_cli  # it imports this module

    proxies_cli.add_parser(commands)
    sweep_cli.add_parser(commands)
    return parser


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    base = preset(args.preset) if args.preset else SearchConfig().validate()
    changes: dict[str, Any] = {}
    for flag, key in [("space", "space"), ("dataset", "data.name"), ("epochs", "epochs"),
                      ("order", "strategy.order"), ("seed", "seed"), ("device", "device.name")]:
        value = getattr(args, flag)
        if value is not None:
            changes[key] = value
    if args.space and args.space != base.space:
        changes["ops"] = None  # the other space's ops; --set ops=... may still narrow them
    space = args.space or base.space
    if space == "mlp" and args.strategy in STRATEGIES:
        raise UsageError(f"--strategy {args.strategy} searches cells; the mlp space takes a "
                         "discrete strategy (" + ", ".join(DISCRETE_STRATEGIES) + ")")
    discrete = args.strategy in DISCRETE_STRATEGIES or (space == "mlp" and not args.strategy)
    if args.strategy:
        changes["discrete.strategy" if discrete else "strategy.name"] = args.strategy
    if discrete:
        changes["kind"] = "discrete"
        if space == "mlp" and not args.dataset and base.space != "mlp":
            changes["data.name"] = "regression1d"  # seed 001's task
    if args.budget is not None:
        if not discrete:
            raise UsageError("--budget is the evaluations of a discrete strategy ("
                             + ", ".join(DISCRETE_STRATEGIES) + "); a gradient search "
                             "takes --epochs")
        changes["epochs"] = args.budget
    for item in args.set:
        key, value = parse_assignment(item)
        changes[key] = value
    return base.with_changes(changes)


class Progress:
    """One line, rewritten in place on a terminal; a line per epoch otherwise. It draws from
    snapshots, as the app does, so no epoch is missed between two looks."""

    WIDTH = 24

    def __init__(self, snap: Snapshot, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._epochs = len(snap.epochs)  # those done before (a resumed run) are not repeated
        self._steps = len(snap.steps)
        self._partial = False  # a step line waits on the terminal for its newline

    def show(self, snap: Snapshot) -> None:
        for i in range(self._epochs, len(snap.epochs)):
            self._write(self._line(snap, snap.epochs, i), end="\n")
        if self.live and len(snap.steps) > self._steps:
            step = len(snap.steps) - 1
            if not len(snap.epochs) or snap.steps.step[step] > snap.epochs.step[-1]:
                self._write(self._line(snap, snap.steps, step), end="")
        self._epochs, self._steps = len(snap.epochs), len(snap.steps)
        self.stream.flush()

    def close(self) -> None:
        """End a step line left on the terminal, so what follows starts a line."""
        if self._partial:
            self.stream.write("\n")
            self._partial = False

    def _write(self, text: str, end: str) -> None:
        if self.live:
            self.stream.write("\r\033[K" + text[:200] + end)
            self._partial = not end
        else:
            self.stream.write(text + end)

    def _line(self, snap: Snapshot, view: HistoryView, i: int) -> str:
        step, total = int(view.step[i]), snap.total_steps
        filled = int(self.WIDTH * step / max(total, 1))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        if view.archs[i]:  # a discrete run's evaluation
            hit = " (cached)" if view.cached[i] else ""
            best = max(range(i + 1), key=lambda k: view.score[k])  # the first of the best
            return (f"[{bar}] {step}/{total} score {view.score[i]:.4f}{hit} best "
                    f"{view.best_score[i]:.4f} | {view.archs[best]}")
        text = f"[{bar}] {step}/{total} ep {int(view.epoch[i])} train {view.train_loss[i]:.3f}"
        if math.isfinite(view.train_acc[i]):  # none for a regression
            text += f"/{100 * view.train_acc[i]:.0f}%"
        if math.isfinite(view.val_loss[i]):
            text += f" val {view.val_loss[i]:.3f}"
        if math.isfinite(view.val_acc[i]):
            text += f"/{100 * view.val_acc[i]:.0f}%"
        if math.isfinite(view.test_acc[i]):  # a retrain's last epoch
            text += f" test {100 * view.test_acc[i]:.1f}%"
        if view.genotypes[i]:  # a search's cell
            text += f" skip {int(view.skip_count[i])} | {_genotype_line(view.genotypes[i])}"
        return text


def _genotype_line(genotype: dict[str, Any]) -> str:
    if "arch_str" in genotype:
        return genotype["arch_str"]
    return "normal " + " ".join(f"{op}~{node}" for op, node in genotype["normal"])


def cmd_search(args: argparse.Namespace) -> int:
    """A new run of the configured kind, driven by a `Run` as the app drives it."""
    from nas_engine.runner import RunRegistry, preflight  # torch import only when running

    try:
        check_runs_dir(args.runs_dir)  # before the data loads: a minute for some datasets
    except ValueError as exc:
        raise UsageError(f"--runs-dir {exc}") from exc
    try:
        # The folder only once the settings and data proved good: no empty runs for a typo.
        config = preflight(config_from_args(args))
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    report = _print_incumbent if config.kind == "discrete" else _print_cell
    return follow(RunRegistry(args.runs_dir).create(config).start(), args.quiet, report)


def train_from_args(args: argparse.Namespace) -> tuple[SearchConfig, dict[str, Any] | None]:
    """The train run's config and, with --from, its lineage to the search."""
    from nas_engine.evaluation.training import retrain_config

    changes = dict(parse_assignment(item) for item in args.set)
    if args.device is not None:
        changes["device.name"] = args.device
    if args.source is None:
        if args.epoch is not None:
            raise UsageError("--epoch goes with --from RUN_DIR")
        space, flag, text = next((space, flag, text) for space, flag, text in (
            ("darts", "--genotype", args.genotype), ("nb201", "--arch-str", args.arch_str),
            ("mlp", "--mlp", args.mlp)) if text is not None)
        if args.space not in (None, space):
            raise UsageError(f"--space {args.space} does not go with {flag}, which is for "
                             f"--space {space}")
        if space == "mlp":
            from nas_engine.spaces.mlp import MlpArch

            try:  # the canonical text, so equal MLPs share a run label and a row
                text = MlpArch.from_text(text).to_text()
            except ValueError as exc:
                raise UsageError(f"--mlp {exc}") from None
        return train_config(space, text, args.profile, args.dataset,
                            args.seed or 0, changes), None
    if args.space is not None:
        raise UsageError("--space goes with --genotype, --arch-str or --mlp (--from takes "
                         "the search's)")
    folder = RunFolder(args.source)
    if not (folder.path / "config.json").is_file():
        raise UsageError(f"--from {args.source!r} is not a run folder (no config.json)")
    search = folder.read_config()
    if search.kind != "search":
        raise UsageError(f"--from {args.source!r} is a {search.kind} run; give a search run")
    if args.epoch is None:
        record, genotype = folder.last_record(("epoch",)) or {}, folder.read_genotype()
    else:
        record = next((r for r in folder.read_records()
                       if r.get("kind") == "epoch" and r.get("epoch") == args.epoch), {})
        genotype = record.get("genotype")
    if not genotype:
        at = "any cell yet" if args.epoch is None else f"epoch {args.epoch}"
        raise UsageError(f"--from {args.source!r} has not recorded {at}")
    lineage = {"parent": folder.run_id, "epoch": args.epoch, "step": record.get("step"),
               "retrain": True}
    return retrain_config(search, genotype, args.profile, args.dataset,
                          args.seed, changes), lineage


def cmd_train(args: argparse.Namespace) -> int:
    """Retrain a cell, unless the evaluations database has it already (then: its row)."""
    from nas_engine.evaluation.training import evaluation_key
    from nas_engine.evaluations import EvaluationsDB
    from nas_engine.runner import RunRegistry, preflight

    try:
        check_runs_dir(args.runs_dir)
        config, lineage = train_from_args(args)
        key = evaluation_key(config)
        db = EvaluationsDB(args.runs_dir)
        stored = db.get(key)
        if stored is None:
            config = preflight(config)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if stored is not None:
        _print_result(stored, args.json)
        return 0
    run = RunRegistry(args.runs_dir).create(config, label="train", lineage=lineage).start()

    def report(done: Run) -> None:
        print(done.folder.path)
        _print_result(dataclasses.replace(db.get(key), cached=False), args.json)

    return follow(run, args.quiet, report)


def _print_result(row: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(row.to_dict()))
        return
    where = f"cached from run {row.run_id}" if row.cached else f"run {row.run_id}"
    name, test, val = (("test MSE", row.test_mse, row.val_mse) if row.metric == "mse"
                       else ("test accuracy", row.test_acc, row.val_acc))
    small = row.key.space == "mlp"  # an MLP: a few thousand FLOPs, a fraction of a second
    flops = f"{row.flops:,} FLOPs" if small else f"{row.flops / 1e6:.1f} M FLOPs"
    print(f"{name} {test:.4f} · val {val:.4f} · {row.params:,} parameters · {flops} · "
          f"{row.latency_ms:.{3 if small else 2}f} ms · {row.seconds:.{1 if small else 0}f} s"
          f" · {where}")


def cmd_strategies(args: argparse.Namespace) -> int:
    """Every (strategy, seed) run of a named comparison, then the table of final bests."""
    from nas_engine.comparison_runner import run_configs
    from nas_engine.device import available_cores
    from nas_engine.runner import Run, preflight

    try:
        check_runs_dir(args.runs_dir)
        changes = dict(parse_assignment(item) for item in args.set)
        configs = [preflight(c) for c in comparison_configs(args.comparison, changes)]
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    jobs = args.jobs or available_cores()
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1; got {jobs}")
    done = 0

    def report(run_id: str, state: str, message: str | None) -> None:
        nonlocal done
        done += 1
        print(f"[{done}/{len(configs)}] {run_id} {state}" + (f": {message}" if message
                                                              else ""), file=sys.stderr)

    ids = run_configs(configs, args.runs_dir, args.comparison, jobs, report)
    rows = final_table([Run.open(Path(args.runs_dir) / i).snapshot() for i in ids])
    if args.json:
        for row in rows:
            print(json.dumps(dataclasses.asdict(row)))
        return 0
    print(f"{'strategy':<11}{'runs':>5}{'best score (mean ± sd)':>25}{'max':>9}{'wins':>6}"
          f"{'test':>9}{'evals':>7}{'cached':>8}{'seconds':>9}")
    for r in rows:
        test = "-" if r.test_mean is None else f"{r.test_mean:.4f}"
        print(f"{r.strategy:<11}{r.runs:>5}{f'{r.mean:.4f} ± {r.sd:.4f}':>25}{r.best:>9.4f}"
              f"{r.wins:>6}{test:>9}{r.evaluations:>7.0f}{r.cache_hits:>8.1f}"
              f"{r.seconds:>9.1f}")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from nas_engine.live import live_parameters

    base = preset(args.preset) if args.preset else SearchConfig().validate()
    try:
        config = base.with_changes(dict(parse_assignment(item) for item in args.set))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    for p in live_parameters(config).values():
        bound = f"{'(' if p.low_open else '['}{p.low:g}, {p.high:g}]"
        print(f"{p.name:<22}{p.config_path or '(the run' + chr(39) + 's own)':<30}{bound:<16}"
              f"{p.help}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue in the run's own folder through a `Run`, so the CLI and the app resume the
    same way (the log is cut back to the checkpoint, then rewritten identically)."""
    from nas_engine.runner import Run

    if not (Path(args.run_dir) / "config.json").is_file():
        raise UsageError(f"run_dir {args.run_dir!r} is not a run folder (no config.json)")
    try:  # a damaged, edited or busy folder is refused here, untouched
        run = Run.resume_from(args.run_dir, args.epochs)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    for notice in run.notices:  # e.g. a damaged checkpoint passed over for an older one
        print(f"warning: {notice}", file=sys.stderr)
    return follow(run.start(), args.quiet)


def _print_cell(run: Run) -> None:
    genotype = run.folder.read_genotype() or {}
    print(run.folder.path)
    print(genotype.get("text") or genotype.get("arch_str", ""))


def _print_incumbent(run: Run) -> None:
    """A discrete run's best architecture, its scores and the database's share of the work."""
    print(run.folder.path)
    last = run.folder.last_record(("evaluation",))
    if last is None:
        print("no evaluation finished")
        return
    test = last["best_test_score"]
    shown = "" if test is None else f" · test {test:.4f}"
    print(f"best {last['metric']} score {last['best_score']:.4f}{shown} · "
          f"{last['index']} evaluations, {last['cache_hits']} from the database")
    print(last["best_arch"])


def follow(run: Run, quiet: bool, report: Callable[[Run], None] = _print_cell) -> int:
    """Show a started run's progress until it ends, then its folder and genotype (exit 0), or
    its error (exit 1). Ctrl-C or SIGTERM stops it as the app's Stop does: the worker ends
    its step, checkpoints to latest.pt and marks the run stopped (exit 130)."""
    progress = None if quiet else Progress(run.snapshot(), sys.stderr)
    version = -1
    quit_now = False  # a second Ctrl-C while the run stops
    with _sigterm_as_interrupt():
        try:
            while True:
                run.wait_for(lambda s, seen=version: s.version != seen or not s.is_active, 3600)
                snap = run.snapshot()
                version = snap.version
                if progress:
                    progress.show(snap)
                if not snap.is_active:
                    break
        except KeyboardInterrupt:
            run.stop()
        try:
            run.join()
        except KeyboardInterrupt:  # quit now; the newest checkpoint stands
            quit_now = True
    if progress:
        progress.close()
    if quit_now:
        print(f"interrupted; resume from {run.folder.path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    snap = run.snapshot()
    if snap.state is RunState.STOPPED:
        print(f"stopped; resume from {run.folder.path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if snap.state is RunState.FAILED:
        print(f"error: {snap.message}", file=sys.stderr)
        return 1
    report(run)
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, while the block runs; the previous
    handler comes back after. Only the main thread may set handlers (elsewhere: nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_show(args: argparse.Namespace) -> int:
    folder = RunFolder(args.run_dir)
    if not (folder.path / "config.json").is_file():
        raise UsageError(f"run_dir {args.run_dir!r} is not a run folder (no config.json)")
    try:
        text = summary(folder)
    except ValueError as exc:  # RunFolderError: which file, and what is wrong in it
        raise UsageError(str(exc)) from exc
    print(text)
    return 0


def summary(folder: RunFolder) -> str:
    """A few lines a person reads to know what a run is and how it went."""
    config = folder.read_config()
    status = folder.read_status()
    epochs = [r for r in folder.read_records() if r.get("kind") == "epoch"]
    lines = [
        f"run      {folder.run_id} ({config.kind})",
        f"state    {folder.effective_state()}"
        + (f": {status['message']}" if "message" in status else ""),
        f"space    {config.space} ({len(config.ops or [])} ops: {', '.join(config.ops or [])})",
        f"data     {config.data.name}, batch {config.data.batch_size}, seed {config.seed}",
        f"strategy {config.strategy.name} ({config.strategy.order} order)",
        f"epochs   {len(epochs)}/{config.epochs}",
    ]
    if epochs:
        last = epochs[-1]

        def number(key: str, spec: str, scale: float = 1) -> str:
            """A field of the last epoch record, or ? where a hand-edited record lacks it."""
            value = last.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return format(scale * value, spec) if ok else "?"

        lines += [
            f"train    loss {number('train_loss', '.4f')}  acc "
            f"{number('train_acc', '.1f', 100)}%",
            f"val      loss {number('val_loss', '.4f')}  acc {number('val_acc', '.1f', 100)}%",
            f"alpha    entropy {number('entropy', '.4f')}  skip_connect edges "
            f"{number('skip_count', 'g')}",
            f"time     {number('time_s', '.1f')} s",
        ]
    genotype = folder.read_genotype()
    if genotype:
        lines.append("genotype " + (genotype.get("text") or genotype.get("arch_str", "")))
    return "\n".join(lines)


def cmd_proxies(args: argparse.Namespace) -> int:
    from nas_engine.proxies.cli import cmd_proxies as run  # it imports this module

    return run(args)


def cmd_evaluations(args: argparse.Namespace) -> int:
    from nas_engine.evaluations import EvaluationsDB
    from nas_engine.evaluations_transfer import export_rows, import_rows

    if args.action == "import" and not Path(args.file).is_file():
        raise UsageError(f"file {args.file!r} does not exist")
    if args.action == "import" and args.space:
        raise UsageError("--space filters an export; an import takes the whole file")
    if args.action == "export":
        db = EvaluationsDB(args.runs_dir)
        if not db.path.is_file():
            raise UsageError(f"--runs-dir {args.runs_dir!r}: no evaluations database there "
                             f"({db.path.name})")
        count = export_rows(db, args.file, **({"space": args.space} if args.space else {}))
        print(f"exported {_rows(count)} to {args.file}")
        return 0
    try:
        db = EvaluationsDB(check_runs_dir(args.runs_dir))
        done = import_rows(db, args.file)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"imported {_rows(done.added)} into {db.path} ({done.present} it had already"
          + (f"; {done.relabelled} trained with other profile settings, kept apart under "
             "their settings' digest" if done.relabelled else "") + ")")
    return 0


def _rows(count: int) -> str:
    return f"{count} row" + ("" if count == 1 else "s")


COMMANDS = {"search": cmd_search, "train": cmd_train, "resume": cmd_resume, "show": cmd_show,
            "params": cmd_params, "strategies": cmd_strategies, "proxies": cmd_proxies,
            "sweep": sweep_cli.cmd_sweep, "evaluations": cmd_evaluations}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk while making the run folder, say
        print(f"error: {exc.filename or 'the run folder'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before a run started (loading data, checking a folder)
        print("interrupted before the run started", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
