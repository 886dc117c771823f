"""The records a run logs, as types: what crosses from the job to the recorder, the history,
the snapshot and the figures. One line of metrics.jsonl is one `Record` (README: the run
folder); the keys are a contract with other tools, so they are added, never renamed."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

RecordKind = Literal["init", "step", "epoch", "live", "evaluation"]


class AlarmFields(TypedDict):
    """A collapse rule's verdict (`diagnostics.Alarm.to_dict`)."""

    rule: str
    epoch: int
    rollback_epoch: int | None
    message: str


class RegularizerFields(TypedDict):
    weight: float  # the weight in force at the step
    value: float  # the unweighted term


class Record(TypedDict, total=False):
    """A step or epoch record (an `init` one is the same without losses; a `live` one notes a
    live change: `name`, `value`, `previous`, and `step` = the first step that used it)."""

    kind: RecordKind
    epoch: int  # epochs completed
    step: int  # search steps done
    time_s: float
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float  # epoch records only
    alphas: dict[str, list[list[float]]]  # cell type -> softmax α, rows = edges, cols = ops
    alphas_raw: dict[str, list[list[float]]]
    genotype: dict[str, Any]  # as genotype.json
    skip_count: int
    entropy: float
    parameter_free_mass: dict[str, float]
    live: dict[str, float]  # the live parameters in force
    regularizers: dict[str, RegularizerFields]
    alarm: AlarmFields | None
    early_stop: AlarmFields
    hessian_max_eigenvalue: float
    hessian_method: str
    hessian_over: str
    hessian_seconds: float
    test_loss: float  # a retrain's last epoch: its result on the held-out images
    test_acc: float
    val_mse: float  # an MLP regression's epochs (its accuracy fields are then None)
    test_mse: float
    params: int
    flops: int
    latency_ms: float
    test_split: dict[str, Any]
    tau: float  # GDAS
    edges_above_threshold: dict[str, int]  # Fair DARTS
    name: str  # live records
    value: float
    previous: float | None
    # A discrete run's `evaluation` records: one per proposal answered.
    index: int  # evaluations done, this one included
    arch: str  # the architecture as a train run takes it
    choices: dict[str, str]  # decision -> choice
    score: float  # higher is better on the validation part (accuracy, or −MSE)
    test_score: float | None
    metric: str  # accuracy | mse
    best_score: float
    best_arch: str
    best_test_score: float | None
    seconds: float  # this evaluation's wall time (a cache hit: the lookup)
    cost_s: float  # the search's cost so far: the strategy's time plus every evaluation's
    # training seconds, cached ones included (a fair x axis when runs share the database)
    cached: bool
    diverged: bool
    cache_hits: int
    strategy: dict[str, Any]  # the strategy's view: population with ages, probabilities
