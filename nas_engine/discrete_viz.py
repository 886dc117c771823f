"""Figures of discrete runs (random search, evolution, GA, REINFORCE), from snapshots only.

A discrete run logs one `evaluation` record per proposal answered; a snapshot holds them as its
`epochs` rows. From those this module draws what its live view and the strategies page show:
the incumbent's score against evaluations and seconds with every evaluation as a point, the
strategy's mind (a population, or the controller's per-decision probabilities), the incumbent
itself (a cell graph through `viz.cell_dag`, or a layer diagram for an MLP), and the
comparison of strategies over seeds (`comparison.curves`, `comparison.final_table`).

Like `viz`, pure functions without streamlit or thread code, so notebooks and tests draw the
same pictures. The charts a live run redraws at every evaluation are Vega-Lite specs whose
numbers sit in named datasets, so the browser swaps numbers into the chart it has (`viz`
explains the measurement); the comparison, drawn once per visit, is a plotly figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import graphviz
import numpy as np
import plotly.graph_objects as go

from nas_engine.catalog import REGRESSION_DATASETS
from nas_engine.comparison import FinalRow, StrategyCurve
from nas_engine.config import SearchConfig
from nas_engine.discrete.decisions import decision_space
from nas_engine.snapshot import Snapshot
from nas_engine.spaces import make_space
from nas_engine.spaces.genotypes import (
    NB201Genotype,
    darts_from_text,
    darts_to_dict,
    nb201_to_dict,
)
from nas_engine.spaces.mlp import MlpArch
from nas_engine.viz import FONT, ON_CANVAS, ArchPoint, cell_dag, derived_edges

# The seconds axis is the search's cost (`cost_s`): its own time plus every evaluation's
# training seconds, a cache hit's included, as `comparison` charges runs sharing a database.
AXIS_TITLES = {"evaluations": "evaluations", "seconds": "search cost (s)"}
STRATEGY_COLOURS = {"random": "#7f7f7f", "evolution": "#2ca02c", "ga": "#bcbd22",
                    "reinforce": "#9467bd", "gradient": "#1f77b4"}
OTHER_COLOUR = "#17becf"
HOW_COLOURS = {"trained": "#1f77b4", "cache hit": "#ff7f0e"}
INCUMBENT_COLOUR = "#d62728"
FENCE = 1.5  # Tukey's fence: scores further below the quartiles than this many IQRs may be
# drawn at the chart's lower edge (an MLP with lr 0.1 scores an MSE of 800 beside 0.1)


def strategy_colour(strategy: str) -> str:
    return STRATEGY_COLOURS.get(strategy, OTHER_COLOUR)


def metric_of(snap: Snapshot) -> str:
    """"accuracy" or "mse", as the records name it (before the first: from the dataset)."""
    latest = snap.latest or {}
    if latest.get("metric"):
        return str(latest["metric"])
    return "mse" if snap.config.data.name in REGRESSION_DATASETS else "accuracy"


def score_title(metric: str, where: str = "validation") -> str:
    """What a score axis shows: scores are higher-is-better, so an MSE appears negated."""
    return f"{where} accuracy" if metric == "accuracy" else f"−{where} MSE (higher is better)"


def score_text(value: float | None, metric: str) -> str:
    """A score as a person reads it: an accuracy, or the MSE itself (records keep −MSE)."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.3f}" if metric == "accuracy" else f"{-value:.4g}"


def score_name(metric: str) -> str:
    return "acc" if metric == "accuracy" else "MSE"


def result_text(record: Mapping[str, Any]) -> str:
    """An evaluation record's incumbent in one line (the home table): its validation score
    and its test score; "" before the first evaluation."""
    if record.get("best_score") is None:
        return ""
    metric = str(record.get("metric", "accuracy"))
    test = record.get("best_test_score")
    tested = "" if test is None else f" · test {score_text(test, metric)}"
    return f"val {score_name(metric)} {score_text(record['best_score'], metric)}{tested}"


def _floor(scores: np.ndarray) -> float:
    """The lowest score drawn as itself: Tukey's lower fence where the scores below it would
    stretch the axis further than all the others span, else -inf (nothing is cut; nor below
    4 scores)."""
    finite = scores[np.isfinite(scores)]
    if len(finite) < 4:
        return -math.inf
    q1, q3 = np.percentile(finite, [25, 75])
    fence = float(q1 - FENCE * (q3 - q1))
    low, high = float(finite.min()), float(finite.max())
    return fence if fence - low > high - fence else -math.inf


def _clipped(values: np.ndarray, floor: float) -> tuple[list[float | None], list[bool]]:
    """Values as drawn (at `floor` where below it) and which were moved up."""
    shown = [None if not np.isfinite(v) else float(max(v, floor)) for v in values]
    return shown, [bool(np.isfinite(v) and v < floor) for v in values]


# -- the evaluations and the incumbent's score -------------------------------------------------
@dataclass(frozen=True)
class Evaluations:
    """One row per evaluation, as recorded: index (1-based), the search's cost then (its
    wall time in records older than `cost_s`), the score, the incumbent's score, how it was
    answered and the architecture."""

    index: np.ndarray
    seconds: np.ndarray
    score: np.ndarray
    best: np.ndarray
    how: list[str]  # "trained" or "cache hit" (the evaluations database answered)
    archs: list[str]


def evaluations(snap: Snapshot) -> Evaluations:
    view = snap.epochs
    how = ["cache hit" if c == 1 else "trained" for c in np.asarray(view.cached, dtype=float)]
    cost = np.asarray(view.cost_s, dtype=float)
    seconds = cost if np.isfinite(cost).all() else np.asarray(view.time_s, dtype=float)
    return Evaluations(np.arange(1, len(view) + 1), seconds,
                       np.asarray(view.score, dtype=float),
                       np.asarray(view.best_score, dtype=float), how,
                       [a or "" for a in view.archs])


def best_so_far_chart(snap: Snapshot, axis: str = "evaluations") -> dict[str, Any]:
    """The incumbent's score (a step line) and every evaluation (a point: trained or cache hit)
    against evaluations or seconds, as a Vega-Lite spec with its numbers in the
    dataset `evaluations`. Scores far below the rest (Tukey's fence) sit on the lower edge as
    triangles, their value in the tooltip, so one diverged MLP does not flatten the picture.
    The spec does not depend on the numbers, so a live chart only swaps its dataset."""
    if axis not in AXIS_TITLES:
        raise ValueError(f"axis must be one of {', '.join(AXIS_TITLES)}; got {axis!r}")
    rows = evaluations(snap)
    floor = _floor(rows.score)
    shown, below = _clipped(rows.score, floor)
    best_shown, _ = _clipped(rows.best, floor)
    data = {"evaluation": rows.index.tolist(), "seconds": rows.seconds.tolist(),
            "score": rows.score.tolist(), "shown": shown, "below": below,
            "best": rows.best.tolist(), "best_shown": best_shown, "how": rows.how,
            "arch": rows.archs}
    metric = metric_of(snap)
    x = {"field": "evaluation" if axis == "evaluations" else "seconds",
         "type": "quantitative", "title": AXIS_TITLES[axis],
         **({"axis": {"format": "d", "tickMinStep": 1}} if axis == "evaluations" else {})}
    y = {"type": "quantitative", "title": score_title(metric), "scale": {"zero": False}}
    tooltip = [{"field": "evaluation"}, {"field": "seconds", "title": AXIS_TITLES["seconds"],
                                         "format": ".1f"},
               {"field": "score", "format": ".4f"}, {"field": "best", "title": "best so far",
                                                     "format": ".4f"},
               {"field": "how"}, {"field": "arch"}]
    return {
        **ON_CANVAS, "datasets": {"evaluations": data}, "data": {"name": "evaluations"},
        "width": "container", "height": 240, "autosize": {"type": "fit-x", "contains": "padding"},
        "layer": [
            {"mark": {"type": "line", "interpolate": "step-after", "color": INCUMBENT_COLOUR,
                      "strokeWidth": 2},
             "encoding": {"x": x, "y": {**y, "field": "best_shown"}}},
            {"mark": {"type": "point", "filled": True, "size": 45, "opacity": 0.8},
             "encoding": {
                 "x": x, "y": {**y, "field": "shown"},
                 "color": {"field": "how", "type": "nominal", "title": None,
                           "scale": {"domain": list(HOW_COLOURS),
                                     "range": list(HOW_COLOURS.values())},
                           "legend": {"orient": "bottom"}},
                 "shape": {"condition": {"test": "datum.below", "value": "triangle-down"},
                           "value": "circle"},
                 "tooltip": tooltip}}]}


# -- the strategy's mind -----------------------------------------------------------------------
def _view(snap: Snapshot) -> dict[str, Any]:
    return (snap.latest or {}).get("strategy") or {}


def population_chart(snap: Snapshot) -> dict[str, Any] | None:
    """Evolution: each member's score against its age (evaluations since it was born), the
    oldest (the next to leave once the population is full) and the best marked; GA: this
    generation's members by rank, the surviving elites marked. None for other strategies."""
    view = _view(snap)
    members = view.get("population")
    if members is None:
        return None
    scores = np.asarray([m["score"] for m in members], dtype=float)
    shown, below = _clipped(scores, _floor(scores))
    best = int(np.argmax(scores)) if len(scores) else -1
    if "generation" not in view:  # aging evolution
        ages = [int(m.get("age", 0)) for m in members]
        full = len(members) >= snap.config.discrete.population
        oldest = ages.index(max(ages)) if ages and full else -1
        roles = ["best" if i == best else "oldest: leaves next" if i == oldest else "member"
                 for i in range(len(members))]
        x_field, x_title, xs = "age", "age (evaluations since it was born)", ages
        domain = ["best", "oldest: leaves next", "member"]
    else:
        order = np.argsort(-scores, kind="stable")
        rank = np.empty(len(scores), dtype=int)
        rank[order] = np.arange(1, len(scores) + 1)
        roles = ["elite (survivor)" if m.get("elite") else "this generation" for m in members]
        x_field, x_title, xs = "rank", f"rank in generation {view.get('generation', 0)}", \
            rank.tolist()
        domain = ["elite (survivor)", "this generation"]
    data = {x_field: xs, "score": scores.tolist(), "shown": shown, "below": below,
            "role": roles, "arch": [m["arch"] for m in members]}
    colours = {"best": INCUMBENT_COLOUR, "oldest: leaves next": "#ff7f0e", "member": "#1f77b4",
               "elite (survivor)": "#2ca02c", "this generation": "#1f77b4"}
    return {
        **ON_CANVAS, "datasets": {"population": data}, "data": {"name": "population"},
        "width": "container", "height": 240, "autosize": {"type": "fit-x", "contains": "padding"},
        "mark": {"type": "point", "filled": True, "size": 70},
        "encoding": {
            "x": {"field": x_field, "type": "quantitative", "title": x_title,
                  "scale": {"zero": False, "padding": 12},
                  "axis": {"format": "d", "tickMinStep": 1}},
            "y": {"field": "shown", "type": "quantitative", "scale": {"zero": False},
                  "title": score_title(metric_of(snap))},
            "color": {"field": "role", "type": "nominal", "title": None,
                      "scale": {"domain": domain, "range": [colours[d] for d in domain]},
                      "legend": {"orient": "bottom"}},
            "shape": {"condition": {"test": "datum.below", "value": "triangle-down"},
                      "value": "circle"},
            "tooltip": [{"field": x_field}, {"field": "score", "format": ".4f"},
                        {"field": "role"}, {"field": "arch"}]}}


@dataclass(frozen=True)
class Probabilities:
    """The controller's softmax per decision: rows = decisions, columns = choices; a decision
    with fewer choices than the widest is padded with NaN (label "")."""

    decisions: list[str]
    labels: list[list[str]]
    p: np.ndarray


def probabilities(snap: Snapshot) -> Probabilities | None:
    """REINFORCE's per-decision probabilities in the newest record; None for other strategies."""
    rows = _view(snap).get("probabilities")
    if rows is None:
        return None
    space = decision_space(snap.config)
    width = max((len(r) for r in rows), default=0)
    p = np.full((len(rows), width), np.nan)
    labels = []
    for i, (row, decision) in enumerate(zip(rows, space.decisions, strict=True)):
        p[i, : len(row)] = row
        labels.append([decision.label(k) for k in range(len(row))] + [""] * (width - len(row)))
    return Probabilities([d.name for d in space.decisions], labels, p)


def probability_heatmap(snap: Snapshot) -> dict[str, Any] | None:
    """Decisions × choices, each cell coloured by its probability and labelled with the
    choice, as a Vega-Lite spec (dataset `probabilities`); the controller's analogue of the α
    heatmap. Padding cells are left out. None for strategies without a controller."""
    table = probabilities(snap)
    if table is None:
        return None
    data: dict[str, list[Any]] = {"decision": [], "position": [], "choice": [], "p": [],
                                  "dark": []}
    for decision, labels, row in zip(table.decisions, table.labels, table.p):
        for k, (label, value) in enumerate(zip(labels, row)):
            if np.isfinite(value):
                data["decision"].append(decision)
                data["position"].append(k + 1)
                data["choice"].append(label)
                data["p"].append(float(value))
                data["dark"].append(bool(value > 0.6))
    position = {"x": {"field": "position", "type": "ordinal", "title": "choice",
                      "axis": {"labelAngle": 0}},
                "y": {"field": "decision", "type": "nominal", "sort": table.decisions,
                      "title": None, "axis": {"labelLimit": 300}}}
    return {
        **ON_CANVAS, "datasets": {"probabilities": data}, "data": {"name": "probabilities"},
        "width": {"step": 84}, "height": {"step": 22}, "encoding": position,
        "layer": [
            {"mark": "rect", "encoding": {
                "color": {"field": "p", "type": "quantitative", "title": "probability",
                          "scale": {"domain": [0, 1], "scheme": "blues"}},
                "tooltip": [{"field": "decision"}, {"field": "choice"},
                            {"field": "p", "title": "probability", "format": ".3f"}]}},
            {"mark": {"type": "text", "fontSize": 9}, "encoding": {
                "text": {"field": "choice"},
                "color": {"condition": {"test": "datum.dark", "value": "white"},
                          "value": "black"}}}]}


# -- the incumbent -----------------------------------------------------------------------------
def incumbent(snap: Snapshot) -> str | None:
    """The best architecture so far, as a train run takes it."""
    return (snap.latest or {}).get("best_arch")


def cell_point(snap: Snapshot, text: str) -> ArchPoint:
    """A discrete cell as the point `viz.cell_dag` draws: its genotype, and α one-hot on the
    op each kept edge holds (a discrete cell is a decided α), zero elsewhere."""
    config = snap.config
    space = make_space(config)
    genotype_obj = (NB201Genotype.from_arch_str(text) if config.space == "nb201"
                    else darts_from_text(text))
    genotype = (nb201_to_dict(genotype_obj) if config.space == "nb201"
                else darts_to_dict(genotype_obj))
    ops, edges = list(config.ops or []), space.edges()
    alphas = {}
    for cell, (rows, columns) in space.alpha_shapes().items():
        weights = np.zeros((rows, columns))
        for edge, op in derived_edges(genotype, cell, edges).items():
            if op in ops:
                weights[edges.index(edge), ops.index(op)] = 1.0
        alphas[cell] = weights
    step = int(snap.epochs.step[-1]) if len(snap.epochs) else 0
    return ArchPoint(step, step, "evaluation", alphas, alphas, genotype)


def mlp_diagram(arch: MlpArch, metric: str = "mse") -> graphviz.Digraph:
    """An MLP as boxes left to right: the input, each hidden layer (width, activation, dropout),
    the output; the optimiser and learning rate in the title (decisions too, of training)."""
    graph = graphviz.Digraph(name="mlp", graph_attr={
        "rankdir": "LR", "bgcolor": "transparent", "fontname": FONT, "labelloc": "t",
        "fontsize": "14", "label": f"trained with {arch.optimizer}, lr {arch.lr:g}",
        "nodesep": "0.3"})
    graph.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="12",
               color="#5a6b7d")
    graph.attr("edge", color="#707070", arrowsize="0.7")
    graph.node("in", "input\nfeatures", fillcolor="#dfe8d8")
    previous = "in"
    for k, activation in enumerate(arch.activations):
        drop = f"\ndropout {arch.dropout:g}" if arch.dropout else ""
        name = f"h{k + 1}"
        graph.node(name, f"layer {k + 1}\n{arch.width} units\n{activation}{drop}",
                   fillcolor="#eef2f7")
        graph.edge(previous, name)
        previous = name
    graph.node("out", "output\n" + ("1 value" if metric == "mse" else "class scores"),
               fillcolor="#f6e3c5")
    graph.edge(previous, "out")
    return graph


def incumbent_graphs(snap: Snapshot) -> dict[str, graphviz.Digraph]:
    """The incumbent drawn, by title: a cell space's cell graph per cell type (`viz.cell_dag`),
    the MLP's layer diagram; empty before the first evaluation."""
    text = incumbent(snap)
    if not text:
        return {}
    if snap.config.space == "mlp":
        return {"MLP": mlp_diagram(MlpArch.from_text(text), metric_of(snap))}
    point = cell_point(snap, text)
    edges = make_space(snap.config).edges()
    ops = list(snap.config.ops or [])
    return {cell: cell_dag(point, cell, ops, edges) for cell in point.alphas}


# -- comparing strategies ----------------------------------------------------------------------
def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i: i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def strategy_curves(curves: Sequence[StrategyCurve], axis: str, metric: str) -> go.Figure:
    """Each strategy's best-so-far mean over its runs (a line) within the min-max band of its
    runs, on a common axis (`comparison.curves`). The y axis stops above values far below
    the rest (Tukey's fence, as `best_so_far_chart` does), so one diverged start does not
    flatten every curve."""
    fig = go.Figure()
    for curve in curves:
        colour = strategy_colour(curve.strategy)
        name = f"{curve.strategy} ({curve.runs} run{'s' if curve.runs != 1 else ''})"
        fig.add_trace(go.Scatter(x=curve.x, y=curve.high, mode="lines", line={"width": 0},
                                 legendgroup=curve.strategy, showlegend=False,
                                 hoverinfo="skip", name=f"{curve.strategy} max"))
        fig.add_trace(go.Scatter(x=curve.x, y=curve.low, mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor=_rgba(colour, 0.18),
                                 legendgroup=curve.strategy, showlegend=False,
                                 hoverinfo="skip", name=f"{curve.strategy} min"))
        fig.add_trace(go.Scatter(
            x=curve.x, y=curve.mean, mode="lines", line={"color": colour, "width": 2.5,
                                                          "shape": "hv"},
            name=name, legendgroup=curve.strategy,
            hovertemplate=f"{curve.strategy}<br>{AXIS_TITLES[axis]} %{{x:.4g}}<br>mean best "
                          "%{y:.4f}<extra></extra>"))
    yaxis: dict[str, Any] = {"title": f"best so far: {score_title(metric)}"}
    values = np.concatenate([np.concatenate([c.low, c.mean, c.high]) for c in curves]
                            ) if curves else np.array([])
    values = values[np.isfinite(values)]
    if len(values):  # bands reaching far below the rest (a diverged first MLP) are cut
        low, high = max(float(values.min()), _floor(values)), float(values.max())
        pad = 0.08 * (high - low) or 0.01
        yaxis["range"] = [low - pad, high + pad]
    fig.update_layout(height=420, font={"family": FONT}, legend={"orientation": "h", "y": -0.2},
                      margin={"l": 10, "r": 10, "t": 20, "b": 10},
                      xaxis={"title": AXIS_TITLES[axis]}, yaxis=yaxis)
    return fig


def final_rows(rows: Sequence[FinalRow]) -> list[dict[str, Any]]:
    """`comparison.final_table` as the table shows it: its numbers, plus mean ± sd as text."""
    return [{"strategy": r.strategy, "runs": r.runs, "mean ± sd": f"{r.mean:.4f} ± {r.sd:.4f}",
             "mean": r.mean, "sd": r.sd, "best": r.best, "wins": r.wins,
             "test mean": r.test_mean, "evaluations": r.evaluations,
             "cache hits": r.cache_hits, "seconds": r.seconds} for r in rows]


def decision_rows(config: SearchConfig) -> list[Mapping[str, Any]]:
    """The space as decisions and their choices (the Search page's preview): one row per
    decision."""
    return [{"decision": d.name, "choices": len(d.choices),
             "options": ", ".join(d.label(k) for k in range(len(d.choices)))}
            for d in decision_space(config).decisions]


def run_rows(snaps: Sequence[Snapshot]) -> list[dict[str, Any]]:
    """One row per run of a comparison: its strategy and seed, where it stands, its incumbent's
    scores (as recorded: higher is better), the database's share and its cost."""
    rows = []
    for snap in snaps:
        latest = snap.latest or {}
        view = snap.epochs
        rows.append({"run": snap.run_id, "strategy": snap.config.discrete.strategy,
                     "seed": snap.config.seed, "state": str(snap.state),
                     "evaluations": f"{len(view)}/{snap.config.epochs}",
                     "best": latest.get("best_score"), "test": latest.get("best_test_score"),
                     "cache hits": latest.get("cache_hits", 0),
                     "cost (s)": float(evaluations(snap).seconds[-1]) if len(view) else 0.0})
    return rows
