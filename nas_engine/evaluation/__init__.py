"""Evaluating a derived cell (or an MLP of seed 001's space): the networks retrained from a
genotype and the canonical keys under which their results are stored. The retrain jobs are
`training.training_job`'s."""

from nas_engine.evaluation.canonical import (
    architecture_key,
    darts_key,
    nb201_is_zero,
    nb201_key,
    nb201_network_key,
)
from nas_engine.evaluation.networks import (
    NETWORKS,
    build_mlp,
    build_network,
    count_flops,
    count_parameters,
)

__all__ = [
    "NETWORKS",
    "architecture_key",
    "build_mlp",
    "build_network",
    "count_flops",
    "count_parameters",
    "darts_key",
    "nb201_is_zero",
    "nb201_key",
    "nb201_network_key",
]
