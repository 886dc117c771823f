"""`digits_clutter`: an offline task hard enough for the cell to matter, made from the bundled
digits.

Plain digits cannot tell cells apart: the stem and the reduction blocks alone solve them, so a
collapsed all-skip cell loses nothing (shared/notes/hard-task-calibration.md). Here each image is
one digit placed at a random position on a larger canvas, among fragments of other digits
(pixel-wise max) and Gaussian noise: recognising it now takes spatial reasoning the cell has to
supply. Generation is deterministic for its parameters (its own seed, not the run's, so every
search and retrain of a task sees the same images) and vectorised enough to take well under a
second for a few thousand images.
"""

from __future__ import annotations

import numpy as np
import torch

DIGIT = 8  # the bundled digits are 8x8


def make_clutter(digits: torch.Tensor, labels: torch.Tensor, count: int, canvas: int,
                 fragments: int, fragment_size: int, noise: float, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` images (count, 1, canvas, canvas) in [0, 1] with their labels.

    `digits` are (N, 1, 8, 8) in [0, 1]. Each image takes a random digit at a random position,
    then `fragments` random `fragment_size`² crops of digits of other classes at random
    positions (max with what is there), then N(0, noise²) on every pixel, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    source = digits[:, 0].numpy()
    classes = labels.numpy()
    n = len(source)
    chosen = rng.integers(0, n, count)
    out = np.zeros((count, canvas, canvas), dtype=np.float32)
    at = rng.integers(0, canvas - DIGIT + 1, (count, 2))
    for i, (k, (r, c)) in enumerate(zip(chosen, at)):
        out[i, r:r + DIGIT, c:c + DIGIT] = source[k]
    f = fragment_size
    for _ in range(fragments):
        # A digit of another class: redraw the (rare) same-class picks until none is left.
        other = rng.integers(0, n, count)
        same = classes[other] == classes[chosen]
        while same.any():
            other[same] = rng.integers(0, n, int(same.sum()))
            same = classes[other] == classes[chosen]
        crop = rng.integers(0, DIGIT - f + 1, (count, 2))
        place = rng.integers(0, canvas - f + 1, (count, 2))
        for i in range(count):
            (cr, cc), (pr, pc) = crop[i], place[i]
            patch = source[other[i], cr:cr + f, cc:cc + f]
            region = out[i, pr:pr + f, pc:pc + f]
            np.maximum(region, patch, out=region)
    out += rng.normal(0.0, noise, out.shape).astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return torch.from_numpy(out).unsqueeze(1), torch.from_numpy(classes[chosen]).long()
