"""`SearchConfig`: everything that defines a search, validated, JSON round-trippable, with presets.

Validation lives here so that the CLI, the app and the run folder all give the same message for
the same mistake: every `ValueError` names the field (dotted path) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

from nas_engine.catalog import CELL_SPACES, DATASETS, SPACE_OPS, TABULAR_DATASETS

DEVICES = ("auto", "cpu", "cuda", "mps")
RUN_KINDS = ("search", "train", "discrete")
STRATEGIES = ("darts", "pcdarts", "nasp", "gdas", "fair_darts", "spos")  # strategies.STRATEGIES
# discrete.DISCRETE_STRATEGIES: random search, aging evolution, seed 001's generational GA,
# REINFORCE, (MLP space) DARTS' relaxation of the per-layer choices, and zero-shot ranking.
DISCRETE_STRATEGIES = ("random", "evolution", "ga", "reinforce", "gradient", "zeroshot")
# proxies.PROXIES by name, and their vote: what ranks a zeroshot search's candidates
ZERO_SHOT_PROXIES = ("naswot", "jacob_cov", "synflow", "grad_norm", "snip", "grasp", "fisher",
                     "zen", "epe_nas", "params", "flops", "vote")
MLP_OPTIMIZERS = ("adam", "sgd", "rmsprop")
FIRST_ORDER_ONLY = ("nasp", "gdas", "spos")
# One-shot strategies train no α: no collapse diagnostic reads it (components.diagnostics).
ONE_SHOT_STRATEGIES = ("spos",)
ORDERS = ("first", "second")


class ConfigError(ValueError):
    """A setting that is wrong: `path` is its dotted name (e.g. `optim.w_lr`), `allowed` what
    it may be. Forms place the message under the field named by `path`."""

    def __init__(self, path: str, allowed: str, value: Any) -> None:
        super().__init__(f"{path} must be {allowed}; got {value!r}")
        self.path = path
        self.allowed = allowed
        self.value = value


def _fail(path: str, allowed: str, value: Any) -> NoReturn:
    raise ConfigError(path, allowed, value)


def _check_int(path: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
        high is not None and value > high
    ):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        _fail(path, allowed, value)


def _check_float(path: str, value: Any, low: float, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > low if low_open else value >= low
        ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        top = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        _fail(path, f"a number {bound}{top}", value)


def _check_bool(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(path, "true or false", value)


def _check_choice(path: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(path, "one of " + ", ".join(choices), value)


SWITCHES = ("auto", "on", "off")  # "auto": on on CUDA, off elsewhere
RECOMPILING_STRATEGIES = ("gdas", "nasp", "spos")  # their ops change from step to step


@dataclass
class DeviceConfig:
    """Where a run computes and how. `amp`: bf16 autocast for the forward passes, float32
    master weights and α (Micikevicius et al., ICLR 2018; bf16 needs no loss scaling);
    `channels_last`: images and conv weights stored NHWC. "auto" turns both on on CUDA only,
    so CPU runs keep their float32 records. `compile`: the steps' network under
    `torch.compile`, off unless measured to pay (README, The GPU path)."""

    name: str = "auto"  # auto | cpu | cuda | mps
    amp: str = "auto"
    channels_last: str = "auto"
    compile: bool = False

    def validate(self, kind: str, strategy: str, drop_path: float) -> None:
        _check_choice("device.name", self.name, DEVICES)
        _check_choice("device.amp", self.amp, SWITCHES)
        _check_choice("device.channels_last", self.channels_last, SWITCHES)
        _check_bool("device.compile", self.compile)
        # torch.compile traces one graph per Python-level choice: where the choice changes as
        # the run goes, it would compile again and again (and fall back to eager).
        if self.compile and kind not in ("search", "train"):
            _fail("device.compile", f"false for a {kind} run (only search and train runs "
                  "compile)", self.compile)
        if self.compile and kind == "search" and strategy in RECOMPILING_STRATEGIES:
            _fail("device.compile", f"false for {strategy} (the ops it computes change every "
                  "step)", self.compile)
        if self.compile and kind == "train" and drop_path > 0:
            _fail("device.compile", "false with train.drop_path > 0 (the drop-path rate "
                  "changes every epoch)", self.compile)


@dataclass
class NetworkConfig:
    """Size of the supernet: the knobs that trade fidelity for speed on a CPU."""

    channels: int = 16
    layers: int = 8  # DARTS space: number of cells
    cells_per_stage: int = 1  # NB201 space: the benchmark uses 5; 1 keeps the CPU quick

    def validate(self, space: str) -> None:
        _check_int("network.channels", self.channels, 2, 512)
        if space == "darts" and self.channels % 2:
            _fail("network.channels", "even for the DARTS space (FactorizedReduce halves it)",
                  self.channels)
        _check_int("network.layers", self.layers, 3, 64)
        _check_int("network.cells_per_stage", self.cells_per_stage, 1, 32)


@dataclass
class ClutterConfig:
    """The `digits_clutter` task (nas_engine/clutter.py): each digit at a random place on a
    canvas, among fragments of other digits, in Gaussian noise."""

    # Calibrated (benchmarks/retrain_calibration.py): few training images, so that the cell's
    # own capacity decides; at the classroom retrain the all-skip NB201 cell is 15 points
    # below a convolutional cell, each within 2 points over 3 seeds. With 10000 images the
    # gap is 8 points, with 15000 about 6.
    images: int = 6000
    canvas: int = 20
    fragments: int = 6
    fragment_size: int = 4
    noise: float = 0.3
    seed: int = 0  # the task's own: every run of a task sees the same images

    def validate(self) -> None:
        _check_int("data.clutter.images", self.images, 100, 100_000)
        _check_int("data.clutter.canvas", self.canvas, 8, 64)
        _check_int("data.clutter.fragments", self.fragments, 0, 32)
        _check_int("data.clutter.fragment_size", self.fragment_size, 1, 8)
        _check_float("data.clutter.noise", self.noise, 0.0, 2.0)
        _check_int("data.clutter.seed", self.seed, 0, 2**31 - 1)


DEFAULT_TEST_PORTION = 0.2
# digits_clutter holds out half (3000 images): a retrain's test accuracy then moves by about
# 1 point from its binomial noise alone, within the calibration's 2-point seed spread.
TEST_PORTIONS = {"digits_clutter": 0.5}


@dataclass
class DataConfig:
    """Which images, the held-out test part no search sees, how the rest is split into the w
    half and the α half, and batching."""

    name: str = "digits"
    root: str = "./data"
    download: bool = False
    resize: int | None = None
    subset: int | None = None  # use only this many search images (a harder task)
    # Held out before anything else, the same images whatever the seed: retrained cells are
    # scored on them, and no search ever sees them. None: the dataset's own (`held_out_portion`).
    test_portion: float | None = None
    train_portion: float = 0.5
    batch_size: int = 64
    augment: bool = False
    clutter: ClutterConfig = field(default_factory=ClutterConfig)  # for digits_clutter

    @property
    def held_out_portion(self) -> float:
        """The part held out for testing: `test_portion`, else the dataset's own."""
        if self.test_portion is not None:
            return self.test_portion
        return TEST_PORTIONS.get(self.name, DEFAULT_TEST_PORTION)

    def task(self) -> dict[str, Any]:
        """What decides the images (not how a run batches them): the evaluations key."""
        task: dict[str, Any] = {"resize": self.resize, "test_portion": self.held_out_portion}
        if self.name == "digits_clutter":
            task["clutter"] = dataclasses.asdict(self.clutter)
        return task

    @property
    def reads_root(self) -> bool:
        """Whether loading reads files under `root` (and, with `download`, fetches them there):
        the torchvision sets do; the digits tasks come with scikit-learn."""
        return self.name in ("mnist", "fashion_mnist", "cifar10")

    def validate(self) -> None:
        _check_choice("data.name", self.name, DATASETS)
        if self.test_portion is not None:
            _check_float("data.test_portion", self.test_portion, 0.0, 0.5, low_open=True)
        self.clutter.validate()
        if not isinstance(self.root, str) or not self.root:
            _fail("data.root", "a non-empty folder path", self.root)
        _check_bool("data.download", self.download)
        if self.resize is not None:
            _check_int("data.resize", self.resize, 4, 512)
        if self.subset is not None:
            _check_int("data.subset", self.subset, 20)
        _check_float("data.train_portion", self.train_portion, 0.0, 1.0, low_open=True,
                     high_open=True)
        _check_int("data.batch_size", self.batch_size, 1, 4096)
        _check_bool("data.augment", self.augment)


@dataclass
class OptimConfig:
    """Optimisers of w (SGD, cosine lr) and α (Adam); defaults are DARTS' train_search.py."""

    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_nesterov: bool = False
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_beta1: float = 0.5
    alpha_beta2: float = 0.999
    alpha_weight_decay: float = 1e-3

    def validate(self) -> None:
        _check_float("optim.w_lr", self.w_lr, 0.0, 10.0, low_open=True)
        _check_float("optim.w_lr_min", self.w_lr_min, 0.0, self.w_lr)
        _check_float("optim.w_momentum", self.w_momentum, 0.0, 0.999)
        _check_bool("optim.w_nesterov", self.w_nesterov)
        _check_float("optim.w_weight_decay", self.w_weight_decay, 0.0, 1.0)
        _check_float("optim.grad_clip", self.grad_clip, 0.0, low_open=True)
        _check_float("optim.alpha_lr", self.alpha_lr, 0.0, 10.0)
        _check_float("optim.alpha_beta1", self.alpha_beta1, 0.0, 0.999)
        _check_float("optim.alpha_beta2", self.alpha_beta2, 0.0, 0.99999)
        _check_float("optim.alpha_weight_decay", self.alpha_weight_decay, 0.0, 1.0)


@dataclass
class StrategyConfig:
    """How w and α are updated: DARTS, PC-DARTS (partial channels, edge normalisation), NASP
    (proximal: forward and backward on the discrete architecture), GDAS (one Gumbel-sampled op
    per edge), Fair DARTS (sigmoid mixing) or SPOS (one uniformly drawn path per step, α not
    trained: a one-shot supernet)."""

    name: str = "darts"
    order: str = "first"  # "second": DARTS unrolled, finite-difference Hessian-vector product
    # DARTS' R: the finite-difference step is ε = R / ‖∇w' L_val‖. 0.01 suits real data; a
    # tiny or very non-smooth supernet needs less (the curvature changes within 0.01).
    fd_radius: float = 0.01
    pc_partial: int = 4  # PC-DARTS' K: 1/K of each edge's channels go through its mixed op
    pc_warmup_epochs: int = 15  # PC-DARTS: α and β start moving after this many epochs
    nasp_size_penalty: float = 0.0  # NASP: weight of Σ ᾱ·params(op)/1e6 in the α loss
    # NASP: the α step computes every op, so ∇ᾱ has all entries (the official code); false:
    # only the chosen ops (faster, but unchosen α then only decay and ties pick column 0)
    nasp_alpha_all_ops: bool = True
    gdas_tau_max: float = 10.0  # GDAS: the Gumbel-softmax temperature falls linearly ...
    gdas_tau_min: float = 0.1  # ... from max to min over the search
    fair_zero_one_weight: float = 10.0  # Fair DARTS: weight of the zero-one term
    fair_threshold: float = 0.85  # Fair DARTS: σ(α) an op needs to count as chosen

    def validate(self, epochs: int) -> None:
        _check_choice("strategy.name", self.name, STRATEGIES)
        _check_choice("strategy.order", self.order, ORDERS)
        _check_float("strategy.fd_radius", self.fd_radius, 0.0, 1.0, low_open=True)
        _check_int("strategy.pc_partial", self.pc_partial, 1, 64)
        _check_int("strategy.pc_warmup_epochs", self.pc_warmup_epochs, 0, 10000)
        _check_float("strategy.nasp_size_penalty", self.nasp_size_penalty, 0.0, 1000.0)
        _check_bool("strategy.nasp_alpha_all_ops", self.nasp_alpha_all_ops)
        _check_float("strategy.gdas_tau_max", self.gdas_tau_max, 0.0, 1000.0, low_open=True)
        _check_float("strategy.gdas_tau_min", self.gdas_tau_min, 0.0, self.gdas_tau_max,
                     low_open=True)
        _check_float("strategy.fair_zero_one_weight", self.fair_zero_one_weight, 0.0, 1000.0)
        _check_float("strategy.fair_threshold", self.fair_threshold, 0.5, 1.0, low_open=True)
        if self.name in FIRST_ORDER_ONLY and self.order != "first":
            _fail("strategy.order", f"first for {self.name} (its update is first order)",
                  self.order)
        if self.name == "pcdarts" and self.pc_warmup_epochs >= epochs:
            _fail("strategy.pc_warmup_epochs", f"fewer than the search's epochs ({epochs}) for "
                  "pcdarts, or α never moves (the paper: 15 of 50)", self.pc_warmup_epochs)

    def check_channels(self, channels: int) -> None:
        """PC-DARTS splits every edge's channels into K parts: K must divide network.channels
        (the doubled channels of later stages follow)."""
        if self.name == "pcdarts" and channels % self.pc_partial:
            _fail("strategy.pc_partial", f"a divisor of network.channels ({channels}) for "
                  "pcdarts", self.pc_partial)


SCHEDULES = ("constant", "linear", "cosine", "aer")


@dataclass
class RegularizerConfig:
    """One α regulariser: its weight (live-adjustable) and how the weight moves over the search.

    constant: `weight` throughout; linear / cosine: a ramp from `start` to `weight`;
    aer: DARTS-AER's λ(t) = −weight·cos(πt), i.e. −weight early (keep options open) to
    +weight late (commit); weight 0.2 is the paper's −0.2 → +0.2.
    """

    weight: float = 0.0
    schedule: str = "constant"
    start: float = 0.0

    def validate(self, path: str) -> None:
        _check_float(f"{path}.weight", self.weight, -1000.0, 1000.0)
        _check_choice(f"{path}.schedule", self.schedule, SCHEDULES)
        _check_float(f"{path}.start", self.start, -1000.0, 1000.0)


@dataclass
class RegularizersConfig:
    """Terms added to the α loss (REFERENCE.md §3); all off (weight 0) by default."""

    entropy: RegularizerConfig = field(default_factory=RegularizerConfig)  # > 0 sharpens
    exp_neg: RegularizerConfig = field(default_factory=RegularizerConfig)  # tutorial Σ exp(−α)
    l2: RegularizerConfig = field(default_factory=RegularizerConfig)  # Σ α²
    beta: RegularizerConfig = field(default_factory=RegularizerConfig)  # β-DARTS logsumexp
    zero_one: RegularizerConfig = field(default_factory=RegularizerConfig)  # σ(α) to 0 or 1

    def validate(self) -> None:
        for f in fields(self):
            getattr(self, f.name).validate(f"regularizers.{f.name}")


@dataclass
class MitigationsConfig:
    """Network-side cures for skip-connect collapse (REFERENCE.md §3)."""

    aux_skip: bool = False  # DARTS-: β·x on every stride-1 mixed edge, β decays 1 → 0
    skip_dropout: float = 0.0  # P-DARTS: dropout on skip_connect, decays linearly to 0
    sdarts_epsilon: float = 0.0  # SDARTS-RS: U[−ε, ε] on the mixing weights in the w step,
    # ε ramping from a tenth of this to this (the paper's 0.03 → 0.3)
    wd_multiplier: float = 1.0  # R-DARTS L2: weight decay of w × this (1, 3, 9, 27, 81)
    max_skips: int | None = None  # P-DARTS: at most this many skip_connects in the final cell

    def validate(self) -> None:
        _check_bool("mitigations.aux_skip", self.aux_skip)
        _check_float("mitigations.skip_dropout", self.skip_dropout, 0.0, 0.95)
        _check_float("mitigations.sdarts_epsilon", self.sdarts_epsilon, 0.0, 1.0)
        _check_float("mitigations.wd_multiplier", self.wd_multiplier, 0.0, 1000.0)
        if self.max_skips is not None:
            _check_int("mitigations.max_skips", self.max_skips, 0, 64)


EARLY_STOP_RULES = ("none", "darts+", "rdarts")


@dataclass
class DiagnosticsConfig:
    """Collapse instruments: how often the Hessian's λmax is measured, early stopping."""

    hessian_every: int = 2  # epochs between λmax measurements (as R-DARTS' rule uses); 0 = off
    hessian_iterations: int = 20  # at most this many Lanczos steps (Hessian-vector products)
    # Lanczos stops once λmax changes by less than this (relative). R-DARTS' rule looks for a
    # 30 % rise; at 3 % the value was within 0.6 % of the converged one on the classroom
    # search, from 4-7 Hessian-vector products (the whole cost) instead of 8-10.
    hessian_tolerance: float = 0.03
    hessian_batch: int = 32  # validation images λmax is measured on
    early_stop: str = "none"  # none | darts+ (≥ 2 skips in the normal cell) | rdarts

    def validate(self) -> None:
        _check_int("diagnostics.hessian_every", self.hessian_every, 0, 1000)
        _check_int("diagnostics.hessian_iterations", self.hessian_iterations, 2, 1000)
        _check_int("diagnostics.hessian_batch", self.hessian_batch, 2, 4096)
        _check_float("diagnostics.hessian_tolerance", self.hessian_tolerance, 0.0, 0.5,
                     low_open=True)
        _check_choice("diagnostics.early_stop", self.early_stop, EARLY_STOP_RULES)
        if self.early_stop == "rdarts" and not self.hessian_every:
            _fail("diagnostics.hessian_every", "> 0 for the rdarts early-stop rule (it needs "
                  "λmax; R-DARTS measures it every 2 epochs)", self.hessian_every)


def _check_choices(path: str, values: Any, check: Any) -> None:
    """A non-empty list without repeats whose items each pass `check(path, item)`."""
    if not isinstance(values, list) or not values or len(set(map(repr, values))) != len(values):
        _fail(path, "a non-empty list without repeats", values)
    for value in values:
        check(path, value)


@dataclass
class MlpConfig:
    """Seed 001's MLP space (REFERENCE.md §4): the choices of each decision. The activations
    are the config's `ops`."""

    layers: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    learning_rates: list[float] = field(default_factory=lambda: [0.1, 0.01, 0.001, 0.0001])
    optimizers: list[str] = field(default_factory=lambda: list(MLP_OPTIMIZERS))
    dropouts: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6])
    per_layer_activation: bool = False  # one activation decision per hidden layer

    def validate(self) -> None:
        for f in fields(self):  # one choice given alone (`--set mlp.optimizers=adam`)
            value = getattr(self, f.name)
            if f.name != "per_layer_activation" and not isinstance(value, list):
                setattr(self, f.name, [value])
        _check_choices("mlp.layers", self.layers, lambda p, v: _check_int(p, v, 1, 16))
        _check_choices("mlp.widths", self.widths, lambda p, v: _check_int(p, v, 1, 4096))
        _check_choices("mlp.learning_rates", self.learning_rates,
                       lambda p, v: _check_float(p, v, 0.0, 10.0, low_open=True))
        _check_choices("mlp.optimizers", self.optimizers,
                       lambda p, v: _check_choice(p, v, MLP_OPTIMIZERS))
        _check_choices("mlp.dropouts", self.dropouts,
                       lambda p, v: _check_float(p, v, 0.0, 1.0, high_open=True))
        _check_bool("mlp.per_layer_activation", self.per_layer_activation)


@dataclass
class DiscreteConfig:
    """A `discrete` run: a strategy proposes whole architectures, each trained with the
    evaluation profile (through the evaluations database) and scored. Defaults: NASLib's
    regularized evolution (P=30, S=10); AutoDL's REINFORCE (Adam lr 0.01, baseline momentum
    0.9) with ENAS' entropy bonus 1e-4."""

    strategy: str = "evolution"
    budget: int = 100  # evaluations (cache hits count: they are proposals answered)
    seconds: float = 0.0  # a time budget as well; 0 = none
    population: int = 30  # evolution: P; ga: the generation's size
    sample: int = 10  # evolution: tournament size S
    controller_hidden: int = 32  # reinforce: the LSTM's width
    controller_lr: float = 0.01
    baseline_decay: float = 0.9  # moving-average baseline; 0 = the last reward
    entropy_weight: float = 1e-4  # entropy bonus of the controller's policy
    profile: str = "classroom"  # how each candidate is trained (TRAIN_PROFILES)
    # Fewer epochs than the profile's: a cheaper, noisier score (a low-fidelity evaluation);
    # the database keys it apart from the profile's own. None: the profile's epochs.
    train_epochs: int | None = None
    # zeroshot: the proxy that ranks `proxy_sample` random architectures (Mellor et al.
    # score 100), or "vote" (synflow, jacob_cov, snip by mean rank)
    proxy: str = "synflow"
    proxy_sample: int = 100

    def validate(self) -> None:
        _check_choice("discrete.strategy", self.strategy, DISCRETE_STRATEGIES)
        _check_int("discrete.budget", self.budget, 1, 1_000_000)
        _check_float("discrete.seconds", self.seconds, 0.0)
        _check_int("discrete.population", self.population, 2, 100_000)
        _check_int("discrete.sample", self.sample, 1, 100_000)
        if self.sample > self.population:
            _fail("discrete.sample", f"at most discrete.population ({self.population})",
                  self.sample)
        _check_int("discrete.controller_hidden", self.controller_hidden, 1, 4096)
        _check_float("discrete.controller_lr", self.controller_lr, 0.0, 10.0, low_open=True)
        _check_float("discrete.baseline_decay", self.baseline_decay, 0.0, 1.0, high_open=True)
        _check_float("discrete.entropy_weight", self.entropy_weight, 0.0, 100.0)
        _check_choice("discrete.profile", self.profile, tuple(TRAIN_PROFILES))
        if self.train_epochs is not None:
            _check_int("discrete.train_epochs", self.train_epochs, 1, 10000)
        _check_choice("discrete.proxy", self.proxy, ZERO_SHOT_PROXIES)
        _check_int("discrete.proxy_sample", self.proxy_sample, 1, 100_000)


@dataclass
class RecordConfig:
    """What goes into the run folder and how often."""

    log_every: int = 10  # a step record every this many search steps
    checkpoint: bool = True  # a checkpoint per epoch

    def validate(self) -> None:
        _check_int("record.log_every", self.log_every, 1)
        _check_bool("record.checkpoint", self.checkpoint)


@dataclass
class TrainConfig:
    """A `train` run: the cell retrained from scratch (DARTS' evaluation phase). The network's
    size is `network`, the optimiser `optim.w_*`, the epochs `epochs`, the batches `data`;
    `train_config` fills them all from a profile."""

    genotype: str = ""  # the cell: Genotype(...) text (darts) or the arch string (nb201)
    profile: str = "classroom"
    auxiliary_weight: float = 0.4  # DARTS: the auxiliary head's loss weight (0 = no head)
    drop_path: float = 0.2  # DARTS: drop-path probability, ramped from 0 over the epochs
    cutout: int = 0  # side of the cutout square (DARTS' paper: 16); 0 = off

    def validate(self, space: str) -> None:
        _check_choice("train.profile", self.profile, tuple(TRAIN_PROFILES))
        _check_float("train.auxiliary_weight", self.auxiliary_weight, 0.0, 10.0)
        _check_float("train.drop_path", self.drop_path, 0.0, 0.9)
        _check_int("train.cutout", self.cutout, 0, 256)
        from nas_engine.spaces.genotypes import parse_genotype  # torch: only for train runs

        if space == "mlp":  # the cell network's tricks have no MLP counterpart
            for name in ("auxiliary_weight", "drop_path", "cutout"):
                if getattr(self, name):
                    _fail(f"train.{name}", "0 for the mlp space", getattr(self, name))
        try:
            parse_genotype(space, self.genotype)
        except ValueError as exc:
            what = "an mlp architecture" if space == "mlp" else f"a {space} cell"
            _fail("train.genotype", f"{what} ({exc})", self.genotype)


# What a retrain sets, per profile and space: `classroom` is the offline task in minutes on
# two CPU cores; `paper` the published recipe (REFERENCE.md §5).
TRAIN_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "classroom": {
        "darts": {"epochs": 4, "network": {"channels": 8, "layers": 5},
                  "data": {"batch_size": 64, "train_portion": 0.9},
                  "optim": {"w_lr": 0.025, "w_lr_min": 0.0, "w_nesterov": False,
                            "w_weight_decay": 3e-4},
                  "train": {"auxiliary_weight": 0.4, "drop_path": 0.2, "cutout": 0}},
        "nb201": {"epochs": 20, "network": {"channels": 16, "cells_per_stage": 1},
                  "data": {"batch_size": 64, "train_portion": 0.9},
                  "optim": {"w_lr": 0.1, "w_lr_min": 0.0, "w_nesterov": True,
                            "w_weight_decay": 5e-4},
                  "train": {"auxiliary_weight": 0.0, "drop_path": 0.0, "cutout": 0}},
        # The MLP's optimiser and learning rate are decisions of its architecture; no cell
        # tricks. 20 epochs: a typical MLP of seed 001's space trains in well under a second
        # on one thread (a search makes hundreds), the best nearly as well as in 50.
        "mlp": {"epochs": 20, "data": {"batch_size": 64, "train_portion": 0.75},
                "train": {"auxiliary_weight": 0.0, "drop_path": 0.0, "cutout": 0}},
    },
    "paper": {
        "darts": {"epochs": 600, "network": {"channels": 36, "layers": 20},
                  "data": {"batch_size": 96, "train_portion": 0.9, "augment": True},
                  "optim": {"w_lr": 0.025, "w_lr_min": 0.0, "w_nesterov": False,
                            "w_weight_decay": 3e-4},
                  "train": {"auxiliary_weight": 0.4, "drop_path": 0.2, "cutout": 16}},
        "nb201": {"epochs": 200, "network": {"channels": 16, "cells_per_stage": 5},
                  "data": {"batch_size": 256, "train_portion": 0.9, "augment": True},
                  "optim": {"w_lr": 0.1, "w_lr_min": 0.0, "w_nesterov": True,
                            "w_weight_decay": 5e-4},
                  "train": {"auxiliary_weight": 0.0, "drop_path": 0.0, "cutout": 0}},
        "mlp": {"epochs": 100, "data": {"batch_size": 32, "train_portion": 0.75},
                "train": {"auxiliary_weight": 0.0, "drop_path": 0.0, "cutout": 0}},
    },
}


@dataclass
class SearchConfig:
    """A whole search. `space`, `ops` and `seed` sit at the top: other tools key on them."""

    space: str = "darts"
    kind: str = "search"  # the run kind (RUN_KINDS): which job runs this config
    ops: list[str] | None = None  # None: every op of the space, in the space's order
    seed: int = 0
    epochs: int = 50
    device: DeviceConfig = field(default_factory=DeviceConfig)
    threads: int | None = None  # CPU threads for torch; None: cores - 1, at least 1
    network: NetworkConfig = field(default_factory=NetworkConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    regularizers: RegularizersConfig = field(default_factory=RegularizersConfig)
    mitigations: MitigationsConfig = field(default_factory=MitigationsConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    train: TrainConfig = field(default_factory=TrainConfig)  # kind "train" only
    mlp: MlpConfig = field(default_factory=MlpConfig)  # space "mlp" only
    discrete: DiscreteConfig = field(default_factory=DiscreteConfig)  # kind "discrete" only

    def validate(self) -> SearchConfig:
        """Check every field; fill `ops` with the space's full list when unset. Returns self."""
        _check_choice("kind", self.kind, RUN_KINDS)
        _check_choice("space", self.space, tuple(SPACE_OPS))
        space_ops = SPACE_OPS[self.space]
        if self.ops is None:
            self.ops = list(space_ops)
        if not isinstance(self.ops, list) or not all(isinstance(o, str) for o in self.ops):
            _fail("ops", f"a list of op names from {', '.join(space_ops)}", self.ops)
        unknown = [o for o in self.ops if o not in space_ops]
        if unknown:
            _fail("ops", f"ops of the {self.space} space ({', '.join(space_ops)})", unknown)
        if len(set(self.ops)) != len(self.ops):
            _fail("ops", "a list without repeats", self.ops)
        if self.space in CELL_SPACES and len([o for o in self.ops if o != "none"]) < 2:
            _fail("ops", "at least two ops besides 'none'", self.ops)
        if not self.ops:
            _fail("ops", f"at least one of {', '.join(space_ops)}", self.ops)
        # Keep the space's canonical order so α columns always line up across runs.
        self.ops = [o for o in space_ops if o in self.ops]
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_int("epochs", self.epochs, 1, 10000)
        self.device.validate(self.kind, self.strategy.name, self.train.drop_path)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, 1024)
        self.network.validate(self.space)
        self.strategy.check_channels(self.network.channels)
        self.data.validate()
        self.optim.validate()
        self.strategy.validate(self.epochs)
        self.regularizers.validate()
        self.mitigations.validate()
        self.diagnostics.validate()
        if self.strategy.name in ONE_SHOT_STRATEGIES and self.diagnostics.early_stop != "none":
            _fail("diagnostics.early_stop", f"none for {self.strategy.name} (the rules watch α, "
                  "which a one-shot search does not train)", self.diagnostics.early_stop)
        self.record.validate()
        self.mlp.validate()
        self._check_space_fits()
        if self.kind == "train":
            self.train.validate(self.space)
        if self.kind == "discrete":
            self.discrete.validate()
        return self

    def _check_space_fits(self) -> None:
        """The MLP space reads feature vectors and runs discrete strategies (or a retrain);
        the cell spaces read images."""
        tabular = self.data.name in TABULAR_DATASETS
        if self.space == "mlp" and not tabular:
            _fail("data.name", "a feature-vector dataset for the mlp space ("
                  + ", ".join(TABULAR_DATASETS) + ")", self.data.name)
        if self.space != "mlp" and tabular:
            _fail("data.name", f"an image dataset for the {self.space} space (the "
                  f"feature-vector sets {', '.join(TABULAR_DATASETS)} are for mlp)",
                  self.data.name)
        if self.space == "mlp" and self.kind == "search":
            _fail("kind", "discrete or train for the mlp space (its gradient method is "
                  "discrete.strategy gradient)", self.kind)
        if self.kind == "discrete" and self.discrete.strategy == "gradient" \
                and self.space != "mlp":
            _fail("discrete.strategy", f"one of random, evolution, ga, reinforce for the "
                  f"{self.space} space (its gradient method is a search run)",
                  self.discrete.strategy)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """Build and validate; unknown keys are errors, not silently dropped settings."""
        return _build(cls, data, "").validate()

    @classmethod
    def from_json(cls, text: str) -> SearchConfig:
        return cls.from_dict(json.loads(text))

    def with_changes(self, changes: dict[str, Any]) -> SearchConfig:
        """A validated copy with dotted-path changes, e.g. {"data.batch_size": 32}."""
        data = self.to_dict()
        for path, value in changes.items():
            _assign(data, path, value)
        return SearchConfig.from_dict(data)


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        _fail(prefix.rstrip(".") or "config", "an object of settings", data)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        _fail(prefix + unknown[0], "a known setting (one of " + ", ".join(known) + ")", "?")
    kwargs = {}
    for name, value in data.items():
        section = known[name].default_factory
        if section is DeviceConfig and isinstance(value, str):
            value = {"name": value}  # configs before the device section: "device": "cpu"
        nested = dataclasses.is_dataclass(section)
        kwargs[name] = _build(section, value, f"{prefix}{name}.") if nested else value
    return cls(**kwargs)


def _assign(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], dict):
            _fail(path, "a setting such as data.batch_size or optim.alpha_lr", path)
        node = node[part]
    if parts[-1] not in node:
        _fail(path, "a known setting (one of " + ", ".join(node) + ")", path)
    if path == "device" and isinstance(value, str) and isinstance(node["device"], dict):
        node["device"]["name"] = value  # the old spelling keeps the section's other settings
        return
    node[parts[-1]] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value` from the command line: the value is read as JSON when it parses, else as a
    string; a comma list becomes a list (handy for `ops=skip_connect,sep_conv_3x3`)."""
    if "=" not in text:
        _fail("--set", "key=value", text)
    key, raw = text.split("=", 1)
    key = key.strip()
    raw = raw.strip()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = [v.strip() for v in raw.split(",")] if "," in raw else raw
    if key == "ops" and isinstance(value, str):
        value = [value]
    return key, value


_CLASSROOM_NETWORK: dict[str, Any] = {
    "space": "darts",
    "device": "cpu",
    "network": {"channels": 8, "layers": 5},
    "data": {"name": "digits", "batch_size": 64},
    "record": {"log_every": 5},
}
_COLLAPSE_DEMO: dict[str, Any] = {
    "space": "nb201",
    "device": "cpu",
    "ops": ["none", "skip_connect", "nor_conv_3x3"],
    "epochs": 10,
    "network": {"channels": 8, "cells_per_stage": 1},
    "data": {"name": "digits_clutter", "batch_size": 64},
    "optim": {"alpha_lr": 1e-2, "w_lr": 0.1, "w_nesterov": True, "w_weight_decay": 5e-4},
    "record": {"log_every": 5},
}

PRESETS: dict[str, dict[str, Any]] = {
    # Digits on a CPU: a whole search in about a minute on 2 cores, for a class to watch.
    "classroom": {**_CLASSROOM_NETWORK, "epochs": 6, "optim": {"alpha_lr": 3e-3}},
    # Skip-connect collapse on the hard offline task, where retraining shows its cost: DARTS
    # on the NB201 cell with R-DARTS' space S3 (none, skip_connect, nor_conv_3x3),
    # the classroom retrain's optimiser for w, α lr 1e-2, 10 epochs (under a minute). On
    # seeds 0, 1, 2 skip_connect takes all 6 edges (benchmarks/collapse_presets.py).
    # On the digits NB201 keeps its convolutions; the DARTS cell collapses there but its
    # classroom network does not retrain to a difference (benchmarks/collapse_exploration.md).
    "collapse-demo": _COLLAPSE_DEMO,
    # The same search with P-DARTS' dropout on skip_connect (0.95, fading to 0): on the same
    # seeds the cell ends with convolutions and 0-2 skip_connects; retrained it scores 9
    # points above the demo's all-skip cell (benchmarks/lesson_punchline.py).
    "collapse-cured": {**_COLLAPSE_DEMO, "mitigations": {"skip_dropout": 0.95}},
    # The official CIFAR-10 search of DARTS (train_search.py defaults).
    "darts-paper": {
        "space": "darts",
        "epochs": 50,
        "network": {"channels": 16, "layers": 8},
        "data": {"name": "cifar10", "batch_size": 64, "augment": True, "train_portion": 0.5},
    },
    # A one-shot supernet on the hard offline task, at the classroom retrain's NB201 size and
    # optimiser (SGD 0.1 Nesterov, cosine, wd 5e-4), whose cells are then scored with
    # inherited weights (nas_engine.evaluation.inherited). Weight sharing learns slowly, so
    # 40 epochs: after 10 it ranks cells less well (benchmarks/oneshot.py).
    "spos-clutter": {
        "space": "nb201",
        "device": "cpu",
        "epochs": 40,
        "network": {"channels": 16, "cells_per_stage": 1},
        "data": {"name": "digits_clutter", "batch_size": 64},
        "strategy": {"name": "spos"},
        "optim": {"w_lr": 0.1, "w_lr_min": 0.0, "w_nesterov": True, "w_weight_decay": 5e-4},
        "record": {"log_every": 10},
    },
}


def preset(name: str) -> SearchConfig:
    """A named starting point; `with_changes` adjusts it."""
    if name not in PRESETS:
        _fail("preset", "one of " + ", ".join(PRESETS), name)
    return SearchConfig.from_dict(json.loads(json.dumps(PRESETS[name])))


# What a retrain trains on unless told: the hard offline task, or seed 001's regression.
DEFAULT_TRAIN_DATASETS = {"darts": "digits_clutter", "nb201": "digits_clutter",
                          "mlp": "regression1d"}


def train_config(space: str, genotype: str, profile: str = "classroom",
                 dataset: str | None = None, seed: int = 0,
                 changes: dict[str, Any] | None = None) -> SearchConfig:
    """A `train` run of `genotype` with a profile's settings (on the space's default dataset
    unless `dataset` names one); `changes` (dotted paths, as `--set`) override any of them."""
    _check_choice("train.profile", profile, tuple(TRAIN_PROFILES))
    _check_choice("space", space, tuple(SPACE_OPS))
    settings = json.loads(json.dumps(TRAIN_PROFILES[profile][space]))
    settings["data"]["name"] = dataset or DEFAULT_TRAIN_DATASETS[space]
    settings["train"].update(genotype=genotype, profile=profile)
    base = SearchConfig.from_dict({"kind": "train", "space": space, "seed": seed, **settings})
    return base.with_changes(changes or {})
