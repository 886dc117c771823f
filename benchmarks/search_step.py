"""Time one first-order DARTS search step on the engine's edge-batched supernet and on the plain
one (`plain_supernet.py`), and a GDAS step (one sampled op per edge) on ours.

Why: batching a node's edges is the engine's main speed lever and also its main source of
subtle bugs, so its gain should be measured, not assumed. Both DARTS sides run the very same
step (the `darts` strategy: Adam on ∇α L_val, then SGD with momentum and grad clipping on w);
only `model.net` differs. The script first checks that the two supernets give the same loss on
the same weights, then times them interleaved (ABAB...) so machine noise hits both; the GDAS
step joins the interleaving and is reported against ours.

    python benchmarks/search_step.py [--threads 1] [--steps 15] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from nas_engine.components import Components, SearchContext
from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel
from nas_engine.search import build_model
from nas_engine.strategies import make_strategy
from nas_engine.strategies.gradient import GradientStrategy

# `make bench` runs this file as a script: put the repo root on the path for `benchmarks`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.plain_supernet import build_plain, copy_weights  # noqa: E402

# DARTS: the classroom preset's network; NB201: NetworkConfig's defaults.
SETTINGS: dict[str, dict] = {
    "darts": {"space": "darts", "network": {"channels": 8, "layers": 5}},
    "nb201": {"space": "nb201", "network": {"channels": 16, "cells_per_stage": 1}},
}
BATCH, IMAGE, IN_CHANNELS, CLASSES = 64, 16, 3, 10
WARMUP = 3
LOSS_RTOL = 1e-4

Batch = tuple[torch.Tensor, torch.Tensor]


def build(config: SearchConfig, device: torch.device, image: int, plain: bool = False
          ) -> GradientStrategy:
    """The strategy of `config` on `image`-sized inputs (IN_CHANNELS, CLASSES), built as a
    search builds it (seed 0, so every one starts from the same w and α), at its device
    settings; `plain` swaps in the unbatched supernet."""
    found = make_strategy(config, device)
    components = Components(config)
    torch.manual_seed(0)
    model = build_model(config, found, components, IN_CHANNELS, CLASSES, image)
    if plain:
        reference = model.net
        model.net = build_plain(model.space, IN_CHANNELS, CLASSES)
        copy_weights(model.net, reference)
    found.attach(found.precision.place(model), components)
    components.bind(SearchContext(config, model, found.w_optimizer, lambda n: None))
    return found


def strategy(space: str, device: torch.device, name: str = "darts", plain: bool = False
             ) -> GradientStrategy:
    """A strategy on the space's benchmark network."""
    config = SearchConfig().with_changes({**SETTINGS[space], "strategy.name": name})
    return build(config, device, IMAGE, plain)


def batches(device: torch.device, batch: int = BATCH, image: int = IMAGE
            ) -> tuple[Batch, Batch]:
    """A (train, val) pair of seeded random batches."""
    g = torch.Generator().manual_seed(1)

    def make() -> Batch:
        x = torch.randn(batch, IN_CHANNELS, image, image, generator=g)
        return x.to(device), torch.randint(0, CLASSES, (batch,), generator=g).to(device)

    return make(), make()


def check_same_loss(ours: SearchModel, plain: SearchModel, val: Batch, rtol: float = LOSS_RTOL
                    ) -> None:
    """Same weights, same batch, train mode (as in a step): the losses must agree (to `rtol`:
    a GPU's TF32 convolutions need more than the CPU's float32)."""
    x, y = val
    with torch.no_grad():
        logits_ours, logits_plain = ours(x), plain(x)
    a = F.cross_entropy(logits_ours, y).item()
    b = F.cross_entropy(logits_plain, y).item()
    rel = abs(a - b) / max(abs(b), 1e-12)
    logits_diff = (logits_ours - logits_plain).abs().max().item()
    verdict = "ok" if rel <= rtol else "MISMATCH"
    print(f"  same-weights check: loss ours {a:.6f} plain {b:.6f} (rel diff {rel:.1e}), "
          f"max |logit diff| {logits_diff:.1e}: {verdict}")
    if rel > rtol:
        raise SystemExit(f"the two supernets disagree (rel diff {rel:.1e} > {rtol})")


def timed_step(strategy: GradientStrategy, train: Batch, val: Batch,
               sync: Callable[[], None]) -> float:
    """Milliseconds of one α step + w step."""
    sync()
    start = time.perf_counter()
    strategy.step(train, val, 0.0)
    sync()
    return 1e3 * (time.perf_counter() - start)


def bench_space(space: str, steps: int, device: torch.device) -> dict[str, float]:
    """Median ms of plain DARTS, ours DARTS and ours GDAS over `steps` interleaved steps after
    the warm-up."""
    runs = {"plain": strategy(space, device, plain=True), "ours": strategy(space, device),
            "gdas": strategy(space, device, "gdas")}
    train, val = batches(device)
    print(f"{space}: {SETTINGS[space]['network']}, batch {BATCH}, "
          f"{IMAGE}x{IMAGE}x{IN_CHANNELS}, {CLASSES} classes, ops {runs['ours'].model.space.ops}")
    check_same_loss(runs["ours"].model, runs["plain"].model, val)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(WARMUP + steps):
        for name, run in runs.items():
            ms = timed_step(run, train, val, sync)
            if i >= WARMUP:
                times[name].append(ms)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=15, help="timed steps per supernet")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} thread(s), "
          f"first-order step, {WARMUP} warm-up + {args.steps} timed steps, median\n")
    rows = [(space, bench_space(space, args.steps, device)) for space in SETTINGS]
    print(f"\n{'space':<8}{'plain ms':>10}{'ours ms':>10}{'speed-up':>10}{'GDAS ms':>10}"
          f"{'GDAS/ours':>11}")
    for space, ms in rows:
        print(f"{space:<8}{ms['plain']:>10.1f}{ms['ours']:>10.1f}"
              f"{ms['plain'] / ms['ours']:>9.2f}x{ms['gdas']:>10.1f}"
              f"{ms['gdas'] / ms['ours']:>10.2f}x")


if __name__ == "__main__":
    main()
