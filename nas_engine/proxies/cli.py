"""`python -m nas_engine proxies`: a proxy study from the command line (the sample, the
missing retrains with a progress line, every proxy's rank agreement with retrained accuracy)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from nas_engine.catalog import IMAGE_DATASETS
from nas_engine.cli import UsageError
from nas_engine.config import DEVICES, parse_assignment
from nas_engine.device import configure_threads, resolve_device
from nas_engine.evaluations import EvaluationsDB
from nas_engine.proxies.agreement import Agreement
from nas_engine.proxies.registry import PROXIES
from nas_engine.proxies.sample import SAMPLED_SPACES
from nas_engine.proxies.study import (
    ONE_SHOT,
    OneShotSource,
    StudyResult,
    missing_truth,
    one_shot_column,
    plan_study,
    run_study,
)
from nas_engine.store import check_runs_dir


def add_parser(commands: Any) -> None:
    proxies = commands.add_parser(
        "proxies", help="rank-correlate zero-cost proxies with retrained accuracy on a sample")
    proxies.add_argument("--space", choices=SAMPLED_SPACES, default="nb201")
    proxies.add_argument("--sample", type=int, required=True, metavar="N",
                         help="cells drawn (one per isomorphism class), plus the all-skip "
                              "and all-conv extremes")
    proxies.add_argument("--seed", type=int, default=0,
                         help="the draw, the retrains' and the proxies' initial weights")
    proxies.add_argument("--proxies", help=f"comma-separated, default all: {','.join(PROXIES)}")
    proxies.add_argument("--dataset", choices=IMAGE_DATASETS,
                         help="default: the hard offline task (digits_clutter)")
    proxies.add_argument("--device", choices=DEVICES)
    proxies.add_argument("--runs-dir", default="runs", help="where the evaluations database "
                                                             "is (./runs)")
    proxies.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a retrain setting, as train --set (it keys the truth apart)")
    proxies.add_argument("--oneshot", metavar="RUN_DIR",
                         help="a search run (e.g. preset spos-clutter) whose supernet scores "
                              "every cell with inherited weights: the one-shot column")
    proxies.add_argument("--ray", action="store_true",
                         help="retrain the missing cells in parallel as Ray tasks, one core "
                              "each (a local Ray on every core, or RAY_ADDRESS)")
    proxies.add_argument("--address", help="the Ray cluster for --ray (implies it)")
    proxies.add_argument("--json", action="store_true", help="one JSON object per proxy")
    proxies.add_argument("--quiet", action="store_true", help="no progress line")


def _proxies(text: str | None) -> list[str]:
    if text is None:
        return list(PROXIES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROXIES]
    if unknown or not names:
        raise UsageError(f"--proxies must name some of {', '.join(PROXIES)}; got {text!r}")
    return names


class _ProgressLine:
    """`retrain 12/202 · 41 s each · 2h07m left`, rewritten in place on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = sys.stderr.isatty()
        self.started: dict[str, float] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.quiet or not (self.live or done == total or done % max(1, total // 10) == 0):
            return
        started = self.started.setdefault(what, time.perf_counter() - 1e-9)
        each = (time.perf_counter() - started) / done
        left = each * (total - done)
        text = f"{what} {done}/{total} · {each:.1f} s each · {left / 60:.0f} min left"
        end = "\n" if done == total or not self.live else ""
        sys.stderr.write(("\r\033[K" if self.live else "") + text + end)
        sys.stderr.flush()


def cmd_proxies(args: argparse.Namespace) -> int:
    try:
        check_runs_dir(args.runs_dir)
        names = _proxies(args.proxies)
        if args.sample < 0:
            raise UsageError(f"--sample must be >= 0; got {args.sample}")
        changes = dict(parse_assignment(item) for item in args.set)
        if args.device is not None:
            changes["device.name"] = args.device
        plan = plan_study(args.space, args.sample, args.seed, args.dataset, changes)
        device = resolve_device(plan.configs[0].device.name)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        source = None if args.oneshot is None else OneShotSource.of(args.oneshot, plan)
    except ValueError as exc:
        raise UsageError(f"--oneshot: {exc}") from exc
    configure_threads(device, plan.configs[0].threads)
    db = EvaluationsDB(args.runs_dir)
    if not args.quiet:
        missing = len(missing_truth(db, plan))
        print(f"{len(plan.configs)} cells of {args.space} on {plan.configs[0].data.name}; "
              f"{missing} to retrain", file=sys.stderr)
    if args.ray or args.address:
        failed = _fan_out(missing_truth(db, plan), db, args.address)
        if failed:
            print(f"{len(failed)} retrains failed, the first: {failed[0]}", file=sys.stderr)
            return 1
    progress = _ProgressLine(args.quiet)
    result = run_study(db, plan, names, progress, device=device)
    if source is not None:
        result.extra[ONE_SHOT] = one_shot_column(db, plan, source, progress, device)
    _print(result, result.table(args.seed), args.json)
    return 0


def _fan_out(configs: list[Any], db: EvaluationsDB, address: str | None) -> list[str]:
    """Retrain `configs` as Ray tasks (the sweep's fan-out; this process alone writes the
    database); the failures' one-line reasons."""
    from nas_engine.sweep import ray_missing

    missing = ray_missing()
    if missing:
        raise UsageError(f"--ray: {missing}")
    from nas_engine.sweep.driver import SweepError, connect
    from nas_engine.sweep.fanout import Failed, train_all

    try:
        started = connect(address or os.environ.get("RAY_ADDRESS") or None)
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    try:
        outcomes = train_all(configs, db)
    finally:
        if started:
            import ray

            ray.shutdown()
    return [o.message for o in outcomes if isinstance(o, Failed)]


def _interval(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")


def _print(result: StudyResult, table: list[Agreement], as_json: bool) -> None:
    if as_json:
        for row in table:
            print(json.dumps(row.to_dict()))
        return
    retrain = result.retrain_ms
    print(f"{'proxy':<10}{'Spearman ρ [95% CI]':>24}{'Kendall τ [95% CI]':>24}{'top-10%':>9}"
          f"{'ms/arch':>10}{'× cheaper':>11}{'undefined':>11}")
    for row in table:
        top = "-" if row.top10_overlap is None else f"{row.top10_overlap:.2f}"
        ms = "-" if row.ms_per_arch is None else f"{row.ms_per_arch:.1f}"
        cheaper = "-" if not row.ms_per_arch else f"{retrain / row.ms_per_arch:,.0f}"
        print(f"{row.proxy:<10}{_interval(row.spearman, row.spearman_ci):>24}"
              f"{_interval(row.kendall, row.kendall_ci):>24}{top:>9}{ms:>10}{cheaper:>11}"
              f"{row.undefined:>11}")
    print(f"truth: classroom retrain test accuracy of {len(result.truth)} cells "
          f"(one retrain {retrain / 1e3:.1f} s)")
