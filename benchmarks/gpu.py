"""The GPU path measured (issue 18): one table of search and retrain throughput, float32
against bf16 AMP, each against a baseline timed in the same run.

Rows: the DARTS space at the paper's search size (C=16, 8 cells, batch 64, 32x32x3 random
images) on the plain supernet of `plain_supernet.py` in float32 (the baseline), then ours in
float32, with AMP, and with AMP but without channels-last (what that switch buys); PC-DARTS
with K=4 at batch 256; NB201 at the benchmark's depth (5 cells per stage); the DARTS
evaluation network (C=36, 20 layers, the paper's retrain profile) in images/s, with its FLOPs
as a share of a bf16 matmul's throughput measured here; λmax's share of an epoch at the
default cadence. A step is the `darts` strategy's first-order α step and w step, as
`search_step.py` times it; `--compile` adds ours with AMP under torch.compile.

    python benchmarks/gpu.py                        # one GPU: sized for a few minutes
    python benchmarks/gpu.py --device cpu --quick   # the smoke test the suite runs
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas_engine.components.base import SearchContext
from nas_engine.components.diagnostics import HessianEigenvalue
from nas_engine.config import DataConfig, DiagnosticsConfig, SearchConfig, train_config
from nas_engine.evaluation.networks import count_flops
from nas_engine.evaluation.training import Training

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.retrain import CELLS  # noqa: E402
from benchmarks.search_step import batches, build, check_same_loss  # noqa: E402

CIFAR_IMAGES = 50_000  # CIFAR-10's training split, which a darts-paper search splits
PLAIN = {"device.amp": "off", "device.channels_last": "off"}  # the textbook baseline
FP32 = {"device.amp": "off"}
AMP = {"device.amp": "on"}


@dataclass(frozen=True)
class Sizes:
    darts: dict[str, int]
    nb201: dict[str, int]
    evaluation: dict[str, int]
    batch: int
    pc_batch: int
    eval_batch: int
    image: int
    warmup: int
    steps: int
    matmul: int  # side of the square bf16 matmul


FULL = Sizes(darts={"channels": 16, "layers": 8}, nb201={"channels": 16, "cells_per_stage": 5},
             evaluation={"channels": 36, "layers": 20}, batch=64, pc_batch=256, eval_batch=96,
             image=32, warmup=5, steps=30, matmul=8192)
QUICK = Sizes(darts={"channels": 4, "layers": 3}, nb201={"channels": 4, "cells_per_stage": 1},
              evaluation={"channels": 8, "layers": 5}, batch=8, pc_batch=16, eval_batch=8,
              image=16, warmup=1, steps=2, matmul=256)


@dataclass
class Row:
    what: str
    rate: float  # steps or images per second
    unit: str
    baseline: float | None = None  # the rate this row is compared with
    peak_mib: float | None = None
    note: str = ""


class Timer:
    """Rates and peak memory of a repeated call on one device."""

    def __init__(self, device: torch.device, sizes: Sizes) -> None:
        self.device = device
        self.sizes = sizes
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def rate(self, call: Callable[[], Any]) -> tuple[float, float | None]:
        """(calls per second after the warm-up, peak MiB allocated meanwhile; None off CUDA)."""
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        for _ in range(self.sizes.warmup):
            call()
        self.sync()
        started = time.perf_counter()
        for _ in range(self.sizes.steps):
            call()
        self.sync()
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else None
        return self.sizes.steps / seconds, peak

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def darts_label(sizes: Sizes) -> str:
    return f"DARTS C={sizes.darts['channels']}/{sizes.darts['layers']} b{sizes.batch}"


def search_config(space: str, network: dict[str, int], changes: dict[str, Any],
                  device: torch.device) -> SearchConfig:
    return SearchConfig().with_changes({
        "space": space, "network": network, "device.name": device.type,
        "strategy.pc_warmup_epochs": 0, **changes})


def search_rows(timer: Timer, label: str, space: str, network: dict[str, int], batch: int,
                variants: dict[str, dict[str, Any]], plain: bool) -> list[Row]:
    """One row per variant (config changes), each against the first one's rate; with `plain`
    the first is the plain supernet, whose loss must match ours on the same weights."""
    device, image = timer.device, timer.sizes.image
    train, val = batches(device, batch, image)
    if plain:
        reference = build(search_config(space, network, PLAIN, device), device, image)
        twin = build(search_config(space, network, PLAIN, device), device, image, plain=True)
        check_same_loss(reference.model, twin.model, val, rtol=1e-3)
        del reference, twin
    rows: list[Row] = []
    for i, (name, changes) in enumerate(variants.items()):
        strategy = build(search_config(space, network, changes, device), device, image,
                         plain=plain and i == 0)
        step_batches = tuple((strategy.precision.batch(x), y) for x, y in (train, val))
        started = time.perf_counter()
        strategy.step(*step_batches, 0.0)  # an untimed first step: it compiles, when asked
        note = (f"compiled in {time.perf_counter() - started:.0f} s"
                if strategy.precision.compile else "")
        rate, peak = timer.rate(lambda s=strategy, b=step_batches: s.step(*b, 0.0))
        rows.append(Row(f"{label}: {name}", rate, "steps/s", rows[0].rate if rows else None,
                        peak, note))
        del strategy
        timer.free()
    return rows


def lambda_max_row(timer: Timer, sizes: Sizes, amp_rate: float) -> Row:
    """One λmax measurement from a cold start on the DARTS search supernet, against the
    epochs it is amortised over (`diagnostics.hessian_every`) of a darts-paper search."""
    device = timer.device
    config = search_config("darts", sizes.darts, AMP, device)
    strategy = build(config, device, sizes.image)
    _, (x, y) = batches(device, max(sizes.batch, DiagnosticsConfig().hessian_batch), sizes.image)
    probe = HessianEigenvalue.from_config(config)
    assert probe is not None  # the default cadence measures λmax
    probe.bind(SearchContext(config, strategy.model, strategy.w_optimizer,
                             lambda n: (strategy.precision.batch(x[:n]), y[:n])))
    timer.sync()
    started = time.perf_counter()
    value, method = probe.measure()
    timer.sync()
    seconds = time.perf_counter() - started
    data = DataConfig(name="cifar10", batch_size=sizes.batch)
    search_images = CIFAR_IMAGES - math.ceil(data.held_out_portion * CIFAR_IMAGES)
    steps = math.ceil(math.floor(data.train_portion * search_images) / data.batch_size)
    epoch = steps / amp_rate
    share = seconds / (probe.every * epoch)
    return Row(f"λmax once per {probe.every} epochs ({darts_label(sizes)})", seconds,
               "s", note=f"{method.split(', ')[1]}, λ {value:.3g}; an AMP epoch of {steps} "
               f"steps takes {epoch:.0f} s: {100 * share:.1f} % of it (target <= 5 %)")


def evaluation_rows(timer: Timer, sizes: Sizes, matmul_flops: float) -> list[Row]:
    """The retrain step (`Training.train_step`: augmentation, cutout, auxiliary head, drop
    path at its mid-run rate) of the paper profile for DARTS V2 (`retrain.py`'s cell), on the
    digits resized to 32x32."""
    device = timer.device
    rows: list[Row] = []
    for name, changes in {"fp32": FP32, "AMP": AMP}.items():
        config = train_config("darts", CELLS["darts"], "paper", dataset="digits", changes={
            "network": sizes.evaluation, "data.batch_size": sizes.eval_batch,
            "data.resize": 32, "device.name": device.type, "record.checkpoint": False,
            **changes})
        job = Training(config)
        job.epoch = job.epochs // 2
        rate, peak = timer.rate(job.train_step)
        images = rate * sizes.eval_batch
        macs = count_flops(job.model, job.input_shape)
        achieved = 6 * macs * images  # 2 FLOPs a MAC; backward about twice the forward
        rows.append(Row(
            f"DARTS eval net C={sizes.evaluation['channels']}/{sizes.evaluation['layers']} "
            f"b{sizes.eval_batch}: {name}", images, "images/s", rows[0].rate if rows else None,
            peak, f"{macs / 1e6:.0f} M MACs/image, {achieved / 1e12:.2f} TFLOP/s = "
            f"{100 * achieved / matmul_flops:.1f} % of bf16 matmul (target >= 60 %)"))
        del job
        timer.free()
    return rows


def measured_matmul(timer: Timer, n: int) -> float:
    """FLOP/s of an n x n x n bf16 matmul, the throughput the evaluation net is held to."""
    a, b = (torch.randn(n, n, device=timer.device, dtype=torch.bfloat16) for _ in range(2))
    flops, _ = timer.rate(lambda: a @ b)
    return 2 * n**3 * flops


def table(rows: list[Row]) -> str:
    width = max(len(r.what) for r in rows)
    lines = [f"{'what':<{width}} {'rate':>10} {'unit':<10} {'x base':>7} {'peak MiB':>9}  note"]
    for r in rows:
        ratio = f"{r.rate / r.baseline:.2f}x" if r.baseline else ""
        peak = "n/a" if r.peak_mib is None else f"{r.peak_mib:.0f}"
        lines.append(f"{r.what:<{width}} {r.rate:>10.4g} {r.unit:<10} {ratio:>7} {peak:>9}  "
                     f"{r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 timed steps")
    parser.add_argument("--compile", action="store_true", help="add ours, AMP, compiled")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here (--device cpu runs it on "
                     "the CPU)")
    device = torch.device(args.device)
    sizes = QUICK if args.quick else FULL
    timer = Timer(device, sizes)
    where = (torch.cuda.get_device_name(device) if timer.cuda
             else f"CPU, {torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, {where}; {sizes.warmup} warm-up + {sizes.steps} timed "
          f"steps per row; random {sizes.image}x{sizes.image}x3 images for the searches")
    darts = darts_label(sizes)
    variants = {"plain fp32": PLAIN, "ours fp32": FP32, "ours AMP": AMP,
                "ours AMP, NCHW": {**AMP, "device.channels_last": "off"}}
    if args.compile:
        variants["ours AMP, compiled"] = {**AMP, "device.compile": True}
    rows = search_rows(timer, darts, "darts", sizes.darts, sizes.batch, variants, plain=True)
    amp_rate = rows[2].rate
    rows += search_rows(timer, f"PC-DARTS K=4 b{sizes.pc_batch}", "darts", sizes.darts,
                        sizes.pc_batch, {"ours fp32": {**FP32, "strategy.name": "pcdarts"},
                                         "ours AMP": {**AMP, "strategy.name": "pcdarts"}},
                        plain=False)
    nb201 = (f"NB201 C={sizes.nb201['channels']}, {sizes.nb201['cells_per_stage']}/stage "
             f"b{sizes.batch}")
    rows += search_rows(timer, nb201, "nb201", sizes.nb201, sizes.batch,
                        {"plain fp32": PLAIN, "ours fp32": FP32, "ours AMP": AMP}, plain=True)
    rows[2].note = f"target >= 2x plain fp32: {rows[2].rate / rows[0].rate:.2f}x"
    matmul = measured_matmul(timer, sizes.matmul)
    rows += evaluation_rows(timer, sizes, matmul)
    rows.append(lambda_max_row(timer, sizes, amp_rate))
    rows.append(Row(f"bf16 matmul {sizes.matmul}^3", matmul / 1e12, "TFLOP/s"))
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
