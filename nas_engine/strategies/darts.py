"""DARTS (Liu et al., ICLR 2019): softmax mixing, first or second order (the bilevel
alternation and both gradients are `GradientStrategy`'s)."""

from __future__ import annotations

from nas_engine.strategies.gradient import GradientStrategy


class Darts(GradientStrategy):
    name = "darts"
    label = "DARTS"
