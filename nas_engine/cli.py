"""`python -m nas_engine`: the engine without the browser.

    search   run a search into a new run folder, with a progress line
    resume   continue a stopped or interrupted run (optionally for more epochs)
    show     summarise a run folder

Mistakes in arguments or settings end with exit code 2 and one line that names the problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn, TextIO

from nas_engine.config import (
    DATASETS,
    DEVICES,
    ORDERS,
    PRESETS,
    SPACE_OPS,
    SearchConfig,
    parse_assignment,
    preset,
)
from nas_engine.store import RunFolder

EXIT_USAGE = 2


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
    search.add_argument("--seed", type=int)
    search.add_argument("--device", choices=DEVICES)
    search.add_argument("--runs-dir", default="runs", help="where run folders go (./runs)")
    search.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting by dotted name, e.g. --set data.batch_size=32")
    search.add_argument("--quiet", action="store_true", help="no progress line")
    resume = commands.add_parser("resume", help="continue a stopped or interrupted run")
    resume.add_argument("run_dir")
    resume.add_argument("--epochs", type=int, help="run to this many epochs in all")
    resume.add_argument("--quiet", action="store_true", help="no progress line")
    show = commands.add_parser("show", help="summarise a run folder")
    show.add_argument("run_dir")
    return parser


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    base = preset(args.preset) if args.preset else SearchConfig().validate()
    changes: dict[str, Any] = {}
    for flag, key in [("space", "space"), ("dataset", "data.name"), ("epochs", "epochs"),
                      ("order", "strategy.order"), ("seed", "seed"), ("device", "device")]:
        value = getattr(args, flag)
        if value is not None:
            changes[key] = value
    if args.space and args.space != base.space:
        changes["ops"] = None  # the other space's ops; --set ops=... may still narrow them
    for item in args.set:
        key, value = parse_assignment(item)
        changes[key] = value
    return base.with_changes(changes)


class Progress:
    """One line, rewritten in place on a terminal; a line per epoch otherwise."""

    def __init__(self, total_steps: int, stream: TextIO) -> None:
        self.total = total_steps
        self.stream = stream
        self.live = stream.isatty()

    def show(self, step: int, record: dict[str, Any]) -> None:
        width = 24
        filled = int(width * step / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        text = (f"[{bar}] {step}/{self.total} ep {record['epoch']} "
                f"train {record['train_loss']:.3f}/{100 * record['train_acc']:.0f}% "
                f"val {record['val_loss']:.3f}")
        if "val_acc" in record:
            text += f"/{100 * record['val_acc']:.0f}%"
        text += f" skip {record['skip_count']} | {_genotype_line(record['genotype'])}"
        if self.live:
            self.stream.write("\r\033[K" + text[:200])
            if record["kind"] == "epoch":
                self.stream.write("\n")
        elif record["kind"] == "epoch":
            self.stream.write(text + "\n")
        self.stream.flush()


def _genotype_line(genotype: dict[str, Any]) -> str:
    if "arch_str" in genotype:
        return genotype["arch_str"]
    return "normal " + " ".join(f"{op}~{node}" for op, node in genotype["normal"])


def cmd_search(args: argparse.Namespace) -> int:
    from nas_engine.search import Search  # torch import only when searching

    try:
        search = Search(config_from_args(args))
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    # The folder only once the settings and data proved good: no empty runs for a typo.
    folder = search.folder = RunFolder.create(args.runs_dir, search.config)
    folder.write_status("running")
    progress = None if args.quiet else Progress(search.total_steps, sys.stderr)
    try:
        while not search.done:
            for record in search.step():
                if progress:
                    progress.show(search.step_count, record)
    except KeyboardInterrupt:
        folder.save_checkpoint(search.state_dict(), search.epoch)
        folder.write_status("stopped", "stopped with Ctrl-C", step=search.step_count)
        print(f"\nstopped; resume from {folder.path}", file=sys.stderr)
        return 130
    except Exception as exc:
        folder.write_status("failed", f"{type(exc).__name__}: {exc}", step=search.step_count)
        raise
    stop = search.early_stop
    folder.write_status("finished", f"stopped early: {stop.message}" if stop else None,
                        step=search.step_count)
    genotype = folder.read_genotype() or {}
    print(folder.path)
    print(genotype.get("text") or genotype.get("arch_str", ""))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue in the run's own folder through a `SearchRun`, so the CLI and the app resume
    the same way (the log is cut back to the checkpoint, then rewritten identically)."""
    from nas_engine.runner import SearchRun

    if not (Path(args.run_dir) / "config.json").is_file():
        raise UsageError(f"run_dir {args.run_dir!r} is not a run folder (no config.json)")
    try:
        run = SearchRun.resume_from(args.run_dir, args.epochs)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    run.start()
    progress = None
    version, shown = -1, None
    try:
        while True:
            run.wait_for(lambda s, seen=version: s.version != seen or not s.is_active, 3600)
            snap = run.snapshot()
            version = snap.version
            if snap.latest is not shown and snap.latest is not None and not args.quiet:
                progress = progress or Progress(snap.total_steps, sys.stderr)
                progress.show(snap.step, snap.latest)
            shown = snap.latest
            if not snap.is_active:
                break
    except KeyboardInterrupt:
        run.stop()
        run.join()
        print(f"\nstopped; resume from {run.folder.path}", file=sys.stderr)
        return 130
    run.join()
    snap = run.snapshot()
    if snap.state == "failed":
        print(f"error: {snap.message}", file=sys.stderr)
        return 1
    genotype = run.folder.read_genotype() or {}
    print(run.folder.path)
    print(genotype.get("text") or genotype.get("arch_str", ""))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    folder = RunFolder(args.run_dir)
    if not (folder.path / "config.json").is_file():
        raise UsageError(f"run_dir {args.run_dir!r} is not a run folder (no config.json)")
    print(summary(folder))
    return 0


def summary(folder: RunFolder) -> str:
    """A few lines a person reads to know what a run is and how it went."""
    config = folder.read_config()
    status = folder.read_status()
    epochs = [r for r in folder.read_records() if r.get("kind") == "epoch"]
    lines = [
        f"run      {folder.run_id}",
        f"state    {status['state']}" + (f": {status['message']}" if "message" in status else ""),
        f"space    {config.space} ({len(config.ops or [])} ops: {', '.join(config.ops or [])})",
        f"data     {config.data.name}, batch {config.data.batch_size}, seed {config.seed}",
        f"strategy {config.strategy.name} ({config.strategy.order} order)",
        f"epochs   {len(epochs)}/{config.epochs}",
    ]
    if epochs:
        last = epochs[-1]
        lines += [
            f"train    loss {last['train_loss']:.4f}  acc {100 * last['train_acc']:.1f}%",
            f"val      loss {last['val_loss']:.4f}  acc {100 * last['val_acc']:.1f}%",
            f"alpha    entropy {last['entropy']:.4f}  skip_connect edges {last['skip_count']}",
            f"time     {last['time_s']:.1f} s",
        ]
    genotype = folder.read_genotype()
    if genotype:
        lines.append("genotype " + (genotype.get("text") or genotype.get("arch_str", "")))
    return "\n".join(lines)


COMMANDS = {"search": cmd_search, "resume": cmd_resume, "show": cmd_show}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
