"""Figures of a proxy study (issue 16), from a `StudyResult` alone: per column (a proxy, the
vote, or an extra column such as a one-shot supernet's inherited accuracy) a scatter of its
score against the retrained test accuracy, every column's cost against one retrain, and the
agreement table's rows with the published NB201 CIFAR-10 figures beside ours.

Like `viz` and `discrete_viz`: pure functions without streamlit or thread code, so the
Zero-cost page, a notebook and the tests draw the same pictures. Charts are Vega-Lite specs
whose numbers sit in named datasets (`scores`, `cost`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nas_engine.evaluation.canonical import architecture_key
from nas_engine.proxies.agreement import VOTE, VOTERS, Agreement
from nas_engine.proxies.sample import EXTREMES
from nas_engine.proxies.study import ONE_SHOT, StudyPlan, StudyResult
from nas_engine.spaces.genotypes import parse_genotype
from nas_engine.viz import FONT, ON_CANVAS

# REFERENCE.md §4: Abdelfattah et al. 2021's Spearman ρ over all NB201 cells on CIFAR-10, and
# NASWOT's Kendall τ (Mellor et al. 2021): another task and dataset than this study's.
PUBLISHED: dict[str, tuple[str, float]] = {
    "synflow": ("ρ", 0.74), "jacob_cov": ("ρ", 0.73), "snip": ("ρ", 0.60),
    "grad_norm": ("ρ", 0.59), "grasp": ("ρ", 0.51), "fisher": ("ρ", 0.36), VOTE: ("ρ", 0.82),
    "naswot": ("τ", 0.57)}
PUBLISHED_TITLE = "published (NB201 CIFAR-10)"
SCORE_TITLES = {VOTE: f"vote (mean rank of {'+'.join(VOTERS)})", "params": "#params",
                "flops": "FLOPs (multiply-accumulates)", "naswot": "NASWOT log|K|",
                "synflow": "log synflow", ONE_SHOT: "one-shot: inherited accuracy"}
SAMPLED = "sampled"
ROLE_COLOURS = {SAMPLED: "#1f77b4", "all-skip": "#d62728", "all-conv": "#2ca02c"}
KIND_COLOURS = {"zero-cost": "#1f77b4", "extra": "#ff7f0e", "retrain": "#7f7f7f"}
RETRAIN = "one retrain"
LABEL_ROOM = 10.0  # the log axis runs this far past the longest bar: room for its label


def roles(plan: StudyPlan) -> list[str]:
    """Each cell's role, in plan order: `all-skip` or `all-conv` for the space's extremes (or
    a sampled cell equal to one), else `sampled`."""
    def key(text: str) -> str:
        return architecture_key(plan.space, parse_genotype(plan.space, text))

    extremes = {key(text): name for name, text in EXTREMES[plan.space].items()}
    return [extremes.get(key(text), SAMPLED) for text in plan.archs]


def score_title(column: str) -> str:
    return SCORE_TITLES.get(column, f"{column} score")


def scatter_chart(result: StudyResult, column: str) -> dict[str, Any]:
    """Each cell whose `column` score is defined as a point: the score against its retrained
    test accuracy, the extremes coloured (dataset `scores`; the tooltip names the cell). The
    subtitle counts the cells left out, their score undefined."""
    values = result.values(column)
    points = [(value, accuracy, arch, role) for value, accuracy, arch, role in zip(
        values, result.accuracies, result.plan.archs, roles(result.plan), strict=True)
        if value is not None]
    undefined = len(values) - len(points)
    data = {"score": [p[0] for p in points], "accuracy": [p[1] for p in points],
            "arch": [p[2] for p in points], "role": [p[3] for p in points]}
    return {
        **ON_CANVAS, "datasets": {"scores": data}, "data": {"name": "scores"},
        "title": {"text": column, "font": FONT, "anchor": "start",
                  "subtitle": f"{undefined} undefined, not drawn" if undefined else ""},
        "width": "container", "height": 220, "autosize": {"type": "fit-x", "contains": "padding"},
        "mark": {"type": "point", "filled": True, "size": 60, "opacity": 0.85},
        "encoding": {
            "x": {"field": "score", "type": "quantitative", "title": score_title(column),
                  "scale": {"zero": False, "nice": False, "padding": 10}},
            "y": {"field": "accuracy", "type": "quantitative", "title": "retrained test accuracy",
                  "scale": {"zero": False, "padding": 10}},
            "color": {"field": "role", "type": "nominal", "title": None,
                      "scale": {"domain": list(ROLE_COLOURS), "range": list(ROLE_COLOURS.values())},
                      "legend": {"orient": "bottom"}},
            "shape": {"field": "role", "type": "nominal", "title": None,
                      "scale": {"domain": list(ROLE_COLOURS),
                                "range": ["circle", "square", "diamond"]}},
            "tooltip": [{"field": "arch", "title": "cell"}, {"field": "role"},
                        {"field": "score", "format": ".4g"},
                        {"field": "accuracy", "title": "test accuracy", "format": ".3f"}]}}


def cheaper(ms: float | None, retrain_ms: float) -> float | None:
    """How many of this score one retrain costs; None without a cost."""
    return retrain_ms / ms if ms else None


def _kind(result: StudyResult, column: str) -> str:
    return "extra" if column in result.extra else "zero-cost"


def cost_chart(result: StudyResult, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Milliseconds per architecture of each column (default every column that has a cost)
    and of one retrain, as bars on a log axis with a dashed line at the retrain, each bar
    labelled with how many times cheaper it is (dataset `cost`). The axis starts at the
    power of ten below the cheapest, where the bars start (a log axis has no zero)."""
    retrain = result.retrain_ms
    shown = [c for c in (result.columns() if columns is None else columns)
             if result.ms_per_arch(c)]
    ms = [result.ms_per_arch(c) for c in shown]
    data = {"name": [*shown, RETRAIN], "ms": [*ms, retrain],
            "kind": [*(_kind(result, c) for c in shown), "retrain"],
            "label": [*(f"{cheaper(m, retrain):,.0f}× cheaper" for m in ms), "the reference"]}
    kinds = [kind for kind in KIND_COLOURS if kind in data["kind"]]  # the legend's
    positive = [m for m in data["ms"] if m and m > 0]
    low = 10.0 ** math.floor(math.log10(min(positive, default=1.0)))
    high = LABEL_ROOM * max(positive, default=1.0)
    y = {"field": "name", "type": "nominal", "sort": None, "title": None}
    x = {"field": "ms", "type": "quantitative",
         "scale": {"type": "log", "domain": [low, high], "clamp": True},
         "title": "milliseconds per architecture (log scale)"}
    return {
        **ON_CANVAS, "datasets": {"cost": data}, "data": {"name": "cost"},
        "width": "container", "height": {"step": 22}, "padding": {"left": 12, "right": 5},
        "autosize": {"type": "fit-x", "contains": "padding"},
        "layer": [
            {"mark": {"type": "bar"}, "encoding": {
                "x": x, "x2": {"datum": low}, "y": y,
                "color": {"field": "kind", "type": "nominal", "title": None,
                          "scale": {"domain": kinds, "range": [KIND_COLOURS[k] for k in kinds]},
                          "legend": {"orient": "bottom"}},
                "tooltip": [{"field": "name"}, {"field": "ms", "format": ",.1f"},
                            {"field": "label", "title": "against one retrain"}]}},
            {"mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
             "encoding": {"x": x, "y": y, "text": {"field": "label"}}},
            {"mark": {"type": "rule", "strokeDash": [4, 3], "color": KIND_COLOURS["retrain"]},
             "encoding": {"x": {"datum": retrain}}}]}


def _published(column: str) -> str:
    if column not in PUBLISHED:
        return ""
    statistic, value = PUBLISHED[column]
    return f"{statistic} {value:.2f}"


def interval_text(ci: tuple[float, float] | None) -> str:
    """A 95 % interval as the table shows it; "" where it is undefined."""
    return "" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def agreement_rows(result: StudyResult, table: Sequence[Agreement]) -> list[dict[str, Any]]:
    """`table` (`StudyResult.table`) as the page shows it: its numbers, the intervals as
    text, the published figure where there is one, and the cost against one retrain (`n`
    is left out: the cells less the undefined)."""
    return [{"column": row.proxy, "Spearman ρ": row.spearman,
             "ρ 95 % CI": interval_text(row.spearman_ci), "Kendall τ": row.kendall,
             "τ 95 % CI": interval_text(row.kendall_ci), PUBLISHED_TITLE: _published(row.proxy),
             "top-10 %": row.top10_overlap, "undefined": row.undefined,
             "ms / arch": row.ms_per_arch,
             "× cheaper": cheaper(row.ms_per_arch, result.retrain_ms)} for row in table]
