"""The architectures a proxy study scores: N cells drawn uniformly from a space, at most one
per canonical class (NB201 isomorphism, DARTS input order), and the space's two extremes.

The draw is prefix-stable: the first k cells of a sample of N are the sample of k with the
same seed, so a larger study reuses every retrain a smaller one paid for.
"""

from __future__ import annotations

import numpy as np

from nas_engine.config import SearchConfig
from nas_engine.discrete.decisions import decision_space
from nas_engine.evaluation.canonical import architecture_key
from nas_engine.spaces.genotypes import parse_genotype

SAMPLED_SPACES = ("nb201", "darts")

# The extremes of the collapse story: every edge skip_connect, every edge the plain conv.
EXTREMES = {
    "nb201": {
        "all-skip": "|skip_connect~0|+|skip_connect~0|skip_connect~1|"
                    "+|skip_connect~0|skip_connect~1|skip_connect~2|",
        "all-conv": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    },
    "darts": {
        name: "Genotype(normal=[{0}], normal_concat=[2, 3, 4, 5], reduce=[{0}], "
              "reduce_concat=[2, 3, 4, 5])".format(", ".join(
                  f"('{op}', {i})" for node in range(4) for i in (0, 1)))
        for name, op in (("all-skip", "skip_connect"), ("all-conv", "sep_conv_3x3"))
    },
}


def sample_architectures(space: str, n: int, seed: int) -> list[str]:
    """`n` architectures of distinct canonical classes, then the extremes not among them."""
    if space not in SAMPLED_SPACES:
        raise ValueError(f"space must be one of {', '.join(SAMPLED_SPACES)}; got {space!r}")
    if n < 0:
        raise ValueError(f"sample must be at least 0; got {n}")
    decisions = decision_space(SearchConfig.from_dict({"space": space}).validate())
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    texts: list[str] = []

    def add(text: str) -> None:
        key = architecture_key(space, parse_genotype(space, text))
        if key not in seen:
            seen.add(key)
            texts.append(text)

    while len(texts) < n:
        add(decisions.text(decisions.sample(rng)))
    for text in EXTREMES[space].values():
        add(text)
    return texts
