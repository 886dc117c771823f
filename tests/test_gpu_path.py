"""The GPU path, checked on the CPU (issue 18): the `device` section and the string form it
replaced, bf16 AMP against float32, the float32 islands (finite-difference Hessian-vector
product, λmax), host syncs between logging points, the batch streams' transfers, the compile
switch, and the GPU benchmark's smoke run."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import sys
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from nas_engine.cli import build_parser, config_from_args
from nas_engine.config import (
    ConfigError,
    DeviceConfig,
    SearchConfig,
    parse_assignment,
    preset,
    train_config,
)
from nas_engine.data import BatchStream, load_images
from nas_engine.diagnostics import hessian_max_eigenvalue
from nas_engine.evaluation.training import Training
from nas_engine.precision import Precision
from nas_engine.runner import RESUMABLE_CHANGES, _check_same_search
from nas_engine.search import Search
from tests.builders import batch, tiny_config, tiny_strategy
from tests.test_training import CONV, DARTS_V2

ENGINE = str(Path(__file__).resolve().parents[1] / "nas_engine")
TINY_SEARCH = {"epochs": 2, "device.name": "cpu", "threads": 1, "network.channels": 4,
               "network.layers": 3, "data.subset": 200, "data.batch_size": 16,
               "record.log_every": 1000, "record.checkpoint": False}


# -- the device section -------------------------------------------------------------------------
def test_the_old_string_form_still_loads() -> None:
    """Run folders, presets, `--set device=cpu` and `--device` from before the section."""
    expected = SearchConfig().with_changes({"device.name": "cpu"})
    saved = json.loads(SearchConfig().to_json())
    saved["device"] = "cpu"  # a config.json written before the section
    assert SearchConfig.from_dict(saved) == expected
    assert SearchConfig().with_changes(dict([parse_assignment("device=cpu")])) == expected
    assert preset("classroom").device == DeviceConfig(name="cpu")
    args = build_parser().parse_args(["search", "--device", "cpu", "--set", "device.amp=on"])
    assert config_from_args(args).device == DeviceConfig(name="cpu", amp="on")
    for order in ({"device": "cpu", "device.amp": "on"}, {"device.amp": "on", "device": "cpu"}):
        assert SearchConfig().with_changes(order).device == DeviceConfig(name="cpu", amp="on")
    # resuming an old folder: its checkpoint's config has the string, config.json too
    _check_same_search(expected, saved, Path("config.json"), Path("epoch_0001.pt"),
                       RESUMABLE_CHANGES)
    assert SearchConfig.from_json(expected.to_json()) == expected


@pytest.mark.parametrize("changes, path", [
    ({"device": "tpu"}, "device.name"),
    ({"device.amp": True}, "device.amp"),
    ({"device.amp": "fast"}, "device.amp"),
    ({"device.channels_last": "yes"}, "device.channels_last"),
    ({"device.compile": "on"}, "device.compile"),
    ({"device.compile": True, "strategy.name": "gdas"}, "device.compile"),
    ({"device.compile": True, "strategy.name": "nasp"}, "device.compile"),
    ({"device.speed": 1}, "device.speed"),
])
def test_bad_device_settings_name_the_field(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SearchConfig().with_changes(changes)
    assert caught.value.path == path, str(caught.value)


def test_compile_refuses_a_changing_drop_path() -> None:
    with pytest.raises(ConfigError, match=r"^device\.compile must be false with train\.drop"):
        train_config("darts", DARTS_V2, changes={"device.compile": True})
    assert train_config("darts", DARTS_V2, changes={"device.compile": True,
                                                    "train.drop_path": 0.0}).device.compile


@pytest.mark.parametrize("settings, device, on", [
    (DeviceConfig(), "cpu", False), (DeviceConfig(), "cuda", True),
    (DeviceConfig(amp="on", channels_last="on"), "cpu", True),
    (DeviceConfig(amp="off", channels_last="off"), "cuda", False),
])
def test_auto_means_cuda(settings: DeviceConfig, device: str, on: bool) -> None:
    precision = Precision.of(settings, torch.device(device))
    assert (precision.amp, precision.channels_last) == (on, on)


# -- mixed precision ----------------------------------------------------------------------------
def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@pytest.mark.parametrize("space, strategy, order", [
    ("darts", "darts", "first"), ("darts", "darts", "second"), ("nb201", "darts", "first"),
    ("darts", "pcdarts", "first")])
def test_amp_loss_and_alpha_gradient_against_float32(space: str, strategy: str,
                                                     order: str) -> None:
    """The loss agrees to 1e-2. The α gradient cannot: rounding w to bf16 alone, computed in
    float32, moves it by 4-45 % on these supernets (it is a small difference of large terms).
    So AMP's α gradient must move no more than 3x that and less than half as much as another
    batch moves it, the noise the search already lives with."""
    config = tiny_config(space, **{"strategy.name": strategy, "strategy.order": order,
                                   "strategy.pc_warmup_epochs": 0})
    found = tiny_strategy(config, dtype=torch.float32)
    train, val, other = (batch(seed, 16, dtype=torch.float32) for seed in (1, 2, 3))
    state = copy.deepcopy(found.model.state_dict())

    def alpha_gradient(amp: bool, rounded: bool = False, on: Any = val
                       ) -> tuple[float, torch.Tensor]:
        found.model.load_state_dict(state)  # the same w, α and BN statistics each time
        found.precision = dataclasses.replace(found.precision, amp=amp)
        if rounded:
            with torch.no_grad():
                for w in found.weights:
                    w.copy_(w.to(torch.bfloat16))
        loss, grads = found.alpha_gradients(train, on)
        assert loss.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads)
        return float(loss.detach()), torch.cat([g.flatten() for g in grads])

    loss, exact = alpha_gradient(amp=False)
    amp_loss, amp = alpha_gradient(amp=True)
    _, rounded = alpha_gradient(amp=False, rounded=True)
    _, elsewhere = alpha_gradient(amp=False, on=other)
    assert abs(amp_loss - loss) <= 1e-2 * abs(loss)
    error = _rel(amp, exact)
    assert 1e-4 < error <= 3 * _rel(rounded, exact)  # > 0: bf16 was in force
    assert error <= 0.5 * _rel(elsewhere, exact)


def test_amp_steps_keep_float32_master_weights() -> None:
    found = tiny_strategy(tiny_config("darts", **{"device.amp": "on"}), dtype=torch.float32)
    result = found.step(batch(1, 16, dtype=torch.float32), batch(2, 16, dtype=torch.float32),
                        0.0)
    assert {result.train_loss.dtype, result.val_loss.dtype} == {torch.float32}
    assert {p.dtype for p in found.model.parameters()} == {torch.float32}
    assert {s["momentum_buffer"].dtype for s in found.w_optimizer.state.values()} \
        == {torch.float32}
    assert {s["exp_avg"].dtype for s in found.alpha_optimizer.state.values()} \
        == {torch.float32}


def test_amp_retrain_step_agrees_with_float32() -> None:
    losses = {}
    for amp in ("off", "on"):
        job = Training(train_config("darts", DARTS_V2, dataset="digits", changes={
            "threads": 1, "network.channels": 4, "network.layers": 3, "data.subset": 200,
            "data.batch_size": 32, "device.amp": amp}))
        losses[amp] = float(job.train_step().train_loss)
        assert {p.dtype for p in job.model.parameters()} == {torch.float32}
    assert losses["on"] != losses["off"]  # bf16 was in force
    assert abs(losses["on"] - losses["off"]) <= 1e-2 * losses["off"]


def test_the_finite_difference_and_lambda_max_stay_float32() -> None:
    """Inside an AMP forward, both give what they give in float32; the same code without the
    guard would not (first assertion)."""
    found = tiny_strategy(tiny_config("darts", **{"strategy.order": "second"}),
                          dtype=torch.float32)
    train = batch(1, 16, dtype=torch.float32)
    model, bf16 = found.model, functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
    with torch.no_grad():
        with bf16():
            unguarded = F.cross_entropy(model(train[0]), train[1])
        assert float(unguarded) != float(F.cross_entropy(model(train[0]), train[1]))
    names = [n for n, _ in model.net.named_parameters()]
    direction = tuple(torch.ones_like(w) for w in found.weights)
    scale = torch.tensor(1e-3)
    plain = found._train_alpha_gradient(train, names, direction, scale)
    with bf16():
        inside = found._train_alpha_gradient(train, names, direction, scale)
    assert all(torch.equal(a, b) for a, b in zip(plain, inside))

    def loss() -> torch.Tensor:
        return F.cross_entropy(model(train[0]), train[1])

    value, _, _ = hessian_max_eigenvalue(loss, model.arch_parameters(), 6, 1e-6)
    with bf16():
        again, _, _ = hessian_max_eigenvalue(loss, model.arch_parameters(), 6, 1e-6)
    assert value == again


# -- host syncs -------------------------------------------------------------------------------
READS = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__", "__index__", "__format__")


class HostReads:
    """Counts what makes the host wait for the device. On CUDA: the sync debug mode's warnings.
    On the CPU, where nothing waits, the engine's own calls of the Tensor methods that read a
    value to the host (calls inside torch, e.g. Adam's step count, read CPU tensors on every
    device and are left out)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.count = 0

    def __enter__(self) -> HostReads:
        if self.device.type == "cuda":
            self._caught = warnings.catch_warnings(record=True)
            self._warnings = self._caught.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            return self
        self._saved = {name: getattr(torch.Tensor, name) for name in READS}
        for name, method in self._saved.items():
            setattr(torch.Tensor, name, self._counted(method))
        return self

    def _counted(self, method: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_filename.startswith(ENGINE):
                self.count += 1
            return method(*args, **kwargs)

        return counted

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
            self.count = sum("synchroniz" in str(w.message) for w in self._warnings)
            self._caught.__exit__(kind, error, trace)
            return
        for name, method in self._saved.items():
            setattr(torch.Tensor, name, method)


DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
STEPS = 3


@pytest.mark.parametrize("changes, per_step", [
    ({}, 0),
    ({"strategy.order": "second"}, 0),
    ({"strategy.name": "pcdarts", "strategy.pc_warmup_epochs": 0}, 0),
    ({"space": "nb201", "strategy.name": "fair_darts"}, 0),
    ({"regularizers.entropy.weight": 0.1, "mitigations.sdarts_epsilon": 0.3,
      "mitigations.aux_skip": True, "mitigations.skip_dropout": 0.5, "data.augment": True}, 0),
    # A discrete mixing must know on the host which op each edge computes: one read per
    # sample (mixing.py), one in the α step and one in the w step.
    ({"space": "nb201", "strategy.name": "gdas"}, 2),
    ({"strategy.name": "nasp"}, 2),
])
def test_search_steps_read_nothing_back_between_logging_points(changes: dict[str, Any],
                                                               per_step: int) -> None:
    search = Search(SearchConfig().with_changes({**TINY_SEARCH, "device.name": DEVICE.type,
                                                 **changes}))
    assert search.steps_per_epoch > STEPS + 1
    search.step()
    with HostReads(DEVICE) as reads:
        for _ in range(STEPS):
            assert search.step() == []  # not a logging point
    assert reads.count == per_step * STEPS
    search.log_every = search.step_count + 1
    with HostReads(DEVICE) as reads:
        assert [r["kind"] for r in search.step()] == ["step"]
    assert reads.count > 0  # the logging point does read (the counter counts)


def test_a_retrain_step_reads_nothing_back() -> None:
    job = Training(train_config("darts", DARTS_V2, "paper", dataset="digits", changes={
        "threads": 1, "network.channels": 4, "network.layers": 3, "data.batch_size": 16,
        "record.log_every": 1000, "device.name": DEVICE.type}))  # augment, cutout, aux head
    job.epoch = 1  # drop path on
    job.train_step()
    with HostReads(DEVICE) as reads:
        for _ in range(STEPS):
            job.train_step()
    assert reads.count == 0


# -- transfers and memory format -------------------------------------------------------------
def test_a_stream_gives_the_same_batches_from_the_host() -> None:
    """A set too big for the device waits in (pinned) host memory: same batches, same order."""
    digits = load_images(SearchConfig().data)
    idx = digits.search[:40]
    streams = [BatchStream(digits, idx, 16, seed=3, augment=True, cutout=4, resident=resident)
               for resident in (True, False)]
    assert [s.resident for s in streams] == [True, False]
    for _ in range(2 * streams[0].batches_per_pass + 1):  # across a reshuffle
        (xa, ya), (xb, yb) = (s.next() for s in streams)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(*(s.iter_pass() for s in streams)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    nhwc = BatchStream(digits, idx, 16, seed=3, augment=True, cutout=4, channels_last=True)
    x, _ = nhwc.next()
    assert x.shape[1] == 1 or x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, BatchStream(digits, idx, 16, seed=3, augment=True, cutout=4).next()[0])


def test_channels_last_runs_the_same_search() -> None:
    """NHWC weights and batches change no number of consequence (CPU convolutions pick other
    kernels, so not bit for bit)."""
    runs = [Search(SearchConfig().with_changes({**TINY_SEARCH, "data.resize": 16,
                                                "device.channels_last": c}))
            for c in ("off", "on")]
    stem = runs[1].model.net.stem[0].weight
    assert stem.is_contiguous(memory_format=torch.channels_last)
    for _ in range(STEPS):
        a, b = (r.strategy.step(r.train_stream.next(), r.val_stream.next(), 0.0) for r in runs)
        assert math.isclose(float(a.train_loss), float(b.train_loss), rel_tol=1e-4)


# -- compilation ------------------------------------------------------------------------------
def test_compile_wraps_the_steps_passes(monkeypatch) -> None:
    """`device.compile`: the steps call the supernet under torch.compile (sharing its
    parameters), with the eager numbers; λmax and validation use the eager supernet. Inductor
    takes minutes on this CPU, so the graph runs on dynamo's eager backend here: what is
    checked is the wiring, and that a step compiles once (192 images: no short last batch,
    whose new shape would compile once more)."""
    import torch._dynamo

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    base = {**TINY_SEARCH, "space": "nb201", "epochs": 1, "data.subset": 192,
            "diagnostics.hessian_every": 1}
    eager = Search(SearchConfig().with_changes(base))
    compiled = Search(SearchConfig().with_changes({**base, "device.compile": True}))
    assert eager.strategy.net is eager.model.net
    assert isinstance(compiled.strategy.net, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.strategy.net._orig_mod is compiled.model.net
    a, b = eager.run(), compiled.run()  # an epoch: steps, validation, λmax
    assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b],
                                                         rel=1e-5)
    assert b[-1]["hessian_max_eigenvalue"] == pytest.approx(a[-1]["hessian_max_eigenvalue"],
                                                            rel=1e-4)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    torch._dynamo.reset()


def test_compile_a_retrain(monkeypatch) -> None:
    """A retrain's steps and evaluations compiled (dynamo's eager backend, as above); FLOPs
    and latency on the eager network: the same record."""
    import torch._dynamo

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    records = []
    for compile_ in (False, True):
        job = Training(train_config("nb201", CONV, dataset="digits", changes={
            "threads": 1, "epochs": 1, "network.channels": 4, "data.subset": 200,
            "data.batch_size": 50, "device.compile": compile_}))
        assert (job.forward is job.model) != compile_
        records.append(job.run()[-1])
    eager, compiled = records
    assert compiled["test_acc"] == eager["test_acc"] and compiled["flops"] == eager["flops"]
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-5)
    torch._dynamo.reset()


# -- the benchmark ----------------------------------------------------------------------------
def test_the_gpu_benchmark_runs_quick_on_the_cpu(capsys) -> None:
    from benchmarks import gpu

    rows = gpu.main(["--device", "cpu", "--quick"])
    out = capsys.readouterr().out
    assert out.count("same-weights check") == 2 and "MISMATCH" not in out
    assert [r.what.split(": ")[-1] for r in rows[:4]] == ["plain fp32", "ours fp32", "ours AMP",
                                                         "ours AMP, NCHW"]
    assert len(rows) == 13 and all(r.what.split()[0] in out for r in rows)
    assert all(math.isfinite(r.rate) and r.rate > 0 for r in rows)
    assert all(r.peak_mib is None for r in rows)  # n/a off CUDA
    assert rows[1].baseline == rows[0].rate and "of bf16 matmul" in rows[-4].note
    assert "% of it (target <= 5 %)" in rows[-2].note
