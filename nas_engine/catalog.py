"""The names a config may use: each space's candidate ops (in α's column order), which of them
have no weights, and the datasets. The one source the config, the supernets, the data and the
diagnostics share (torch-free, so the CLI checks settings without importing torch)."""

from __future__ import annotations

SPACE_OPS: dict[str, tuple[str, ...]] = {
    # DARTS' `PRIMITIVES`, in that order.
    "darts": ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"),
    # NAS-Bench-201's op list, in that order.
    "nb201": ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
}

PARAMETER_FREE = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"})

DATASETS: tuple[str, ...] = ("digits", "digits_clutter", "mnist", "fashion_mnist", "cifar10")
