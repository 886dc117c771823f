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
    # Seed 001's MLP space: its activations are the "ops" (what the gradient method relaxes).
    "mlp": ("relu", "leaky_relu", "tanh"),
}

# Spaces whose networks are cells on images (the MLP space reads feature vectors).
CELL_SPACES: tuple[str, ...] = ("darts", "nb201")

PARAMETER_FREE = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"})

IMAGE_DATASETS: tuple[str, ...] = ("digits", "digits_clutter", "mnist", "fashion_mnist",
                                   "cifar10")
# Feature vectors for the MLP space: seed 001's noisy 1-D function, scikit-learn's diabetes
# (both regression) and the digits as 64 pixels (classification).
TABULAR_DATASETS: tuple[str, ...] = ("regression1d", "diabetes", "digits_flat")
REGRESSION_DATASETS: tuple[str, ...] = ("regression1d", "diabetes")
DATASETS: tuple[str, ...] = IMAGE_DATASETS + TABULAR_DATASETS
