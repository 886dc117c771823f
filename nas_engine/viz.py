"""Figures and DOT sources of a search, from snapshots and run folders.

Pure functions (no streamlit) so that the app, a notebook and the tests draw the same pictures:
Vega-Lite specs (plain dicts, data included) for the two charts a live run redraws at every
record, the α heatmap and the loss curves; plotly figures for the others; `graphviz.Digraph`
for cells (rendered by the browser, so no `dot` binary is needed except for an SVG file
export); plain text for exports.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import graphviz
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nas_engine.catalog import PARAMETER_FREE as PARAMETER_FREE_OPS
from nas_engine.config import SearchConfig
from nas_engine.diagnostics import parameter_free_mass
from nas_engine.history import SCALARS, HistoryView
from nas_engine.snapshot import Snapshot
from nas_engine.spaces import make_space

Edge = tuple[int, int]

# One colour per op everywhere (heatmap hover aside): skip_connect red, the other
# parameter-free ops greys, the convolutions blues and greens.
OP_COLOURS: dict[str, str] = {
    "skip_connect": "#d62728",
    "none": "#9e9e9e",
    "max_pool_3x3": "#8c6d31",
    "avg_pool_3x3": "#bd9e39",
    "sep_conv_3x3": "#1f77b4",
    "sep_conv_5x5": "#17becf",
    "dil_conv_3x3": "#2ca02c",
    "dil_conv_5x5": "#98df8a",
    "nor_conv_1x1": "#17becf",
    "nor_conv_3x3": "#1f77b4",
}
OTHER_COLOUR = "#7f7f7f"
DAG_WEIGHT_STEP = 0.05  # α as the cell graph shows it (see cell_dag)
CELL_COLOURS = ("#253494", "#7b3294")  # normal / reduce (or NB201's one cell)
RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")  # runs side by side
FONT = "Helvetica"
# Vega-Lite charts draw on a canvas: redrawing one is cheaper for a browser than updating the
# hundreds of SVG nodes of a heatmap (Streamlit reads the renderer from the spec's usermeta).
ON_CANVAS = {"usermeta": {"embedOptions": {"renderer": "canvas"}}}


def op_colour(op: str) -> str:
    return OP_COLOURS.get(op, OTHER_COLOUR)


def cell_title(cell: str) -> str:
    """'normal cell', 'reduce cell'; NB201's single cell type is just 'cell'."""
    return cell if cell == "cell" else f"{cell} cell"


# -- moments of a run ------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchPoint:
    """α and the derived cell at one recorded moment of a run."""

    step: int
    epoch: int
    kind: str  # "init", "step" or "epoch"
    alphas: Mapping[str, np.ndarray]  # cell type -> (edges, ops) softmax α
    alphas_raw: Mapping[str, np.ndarray]
    genotype: Mapping[str, Any]

    @property
    def label(self) -> str:
        where = {"init": "initial α", "epoch": f"end of epoch {self.epoch}"}.get(
            self.kind, f"epoch {self.epoch + 1}")
        return f"step {self.step} · {where}"


def latest_point(snap: Snapshot) -> ArchPoint | None:
    """The newest α the run has shown (its initial α before the first record)."""
    record = snap.latest
    if not record or "alphas" not in record:
        return None
    return ArchPoint(
        step=int(record["step"]), epoch=int(record["epoch"]), kind=record.get("kind", "step"),
        alphas={c: np.asarray(a, dtype=float) for c, a in record["alphas"].items()},
        alphas_raw={c: np.asarray(a, dtype=float)
                    for c, a in record.get("alphas_raw", record["alphas"]).items()},
        genotype=record["genotype"],
    )


def uniform_point(config: SearchConfig) -> ArchPoint:
    """α as every search of `config` starts (each edge undecided: 1/ops on every op), for a
    preview of the heatmap's shape before anything runs."""
    shapes = make_space(config).alpha_shapes()
    return ArchPoint(0, 0, "init", {c: np.full(shape, 1.0 / shape[1]) for c, shape in
                                    shapes.items()},
                     {c: np.zeros(shape) for c, shape in shapes.items()}, {})


def _point(view: HistoryView, i: int, kind: str) -> ArchPoint:
    return ArchPoint(int(view.step[i]), int(view.epoch[i]), kind,
                     {c: a[i] for c, a in view.alphas.items()},
                     {c: a[i] for c, a in view.alphas_raw.items()}, view.genotypes[i])


def recorded_points(snap: Snapshot) -> list[ArchPoint]:
    """Every recorded moment, oldest first; where an epoch ends on a logged step, the epoch
    record stands for both."""
    by_step = {int(s): _point(snap.steps, i, "step") for i, s in enumerate(snap.steps.step)}
    by_step.update({int(s): _point(snap.epochs, i, "epoch")
                    for i, s in enumerate(snap.epochs.step)})
    return [by_step[s] for s in sorted(by_step)]


def space_edges(snap: Snapshot) -> list[Edge]:
    """(source, target) per α row of the run's space."""
    return make_space(snap.config).edges()


# -- α heatmap -------------------------------------------------------------------------------
def softmax_colour_scale(n_ops: int) -> dict[str, Any]:
    """A diverging scale centred on the uniform weight 1/n (white): red above it (winning),
    blue below (losing), reaching as far as the data do (Vega-Lite takes the domain from the
    data, around `domainMid`). On a fixed 0..1 scale the classroom heatmap (every weight
    0.12-0.13 for 8 ops) was a white square; here its small moves show. The spec itself does
    not depend on the data, so a live chart only swaps its numbers."""
    u = 1.0 / max(n_ops, 1)
    # The data's extent, widened to u ± 0.001 at least: at initialisation every weight is u.
    return {"type": "linear", "domain": {"unionWith": [u - 1e-3, u + 1e-3]}, "domainMid": u,
            "range": ["#2c7bb6", "#f7f7f7", "#d7191c"], "clamp": True}


def alpha_heatmap(point: ArchPoint, ops: Sequence[str], edge_labels: Sequence[str], *,
                  raw: bool = False) -> dict[str, Any]:
    """Edges × ops, one panel per cell type side by side, as a Vega-Lite spec whose numbers
    sit in its dataset `alpha` (cell, edge, op, value). Softmax weights are coloured around
    the uniform weight, as far as the data reach (`softmax_colour_scale`); raw α around 0.

    Vega-Lite, where the other figures are plotly: Streamlit puts a new dataset into the chart
    already on the page when only the data changed, while a changed plotly figure is drawn
    again from nothing. This chart changes at every record of a live run (measured: the browser
    spent ~80 ms/s per live tab on the plotly heatmap, ~30 on this one)."""
    arrays = {c: np.asarray(a, dtype=float) for c, a in
              (point.alphas_raw if raw else point.alphas).items()}
    if raw:
        reach = max(float(np.abs(a).max()) for a in arrays.values()) or 1.0
        colour: dict[str, Any] = {"scheme": "redblue", "reverse": True, "domainMid": 0}
        dark = {c: np.abs(a) > 0.6 * reach for c, a in arrays.items()}
        what = "α"
    else:
        colour = softmax_colour_scale(len(ops))
        u = colour["domainMid"]
        reach = max(float(np.abs(a - u).max()) for a in arrays.values())
        dark = {c: np.abs(a - u) > 0.6 * reach if reach > 0 else np.zeros(a.shape, bool)
                for c, a in arrays.items()}
        what = f"softmax weight (white = 1/{len(ops)})"
    n_edges, n_ops = len(edge_labels), len(ops)
    titles = [cell_title(c) for c in arrays]
    data: dict[str, list[Any]] = {"cell": [], "edge": [], "op": [], "value": [], "dark": []}
    for cell, title in zip(arrays, titles):
        data["cell"] += [title] * (n_edges * n_ops)
        data["edge"] += [e for e in edge_labels for _ in ops]
        data["op"] += list(ops) * n_edges
        data["value"] += arrays[cell].ravel().tolist()
        data["dark"] += dark[cell].ravel().tolist()
    position = {
        "x": {"field": "op", "type": "nominal", "sort": list(ops), "title": None,
              "axis": {"labelAngle": -45, "labelOverlap": False}},
        "y": {"field": "edge", "type": "nominal", "sort": list(edge_labels),
              "title": "edge (from→to)"}}
    legend = {"title": what} if raw else {"title": what, "format": ".3g"}
    return {
        **ON_CANVAS, "datasets": {"alpha": data}, "data": {"name": "alpha"},
        "facet": {"column": {"field": "cell", "type": "nominal", "sort": titles, "title": None,
                             "header": {"labelFontSize": 14}}},
        "spec": {"width": {"step": 30}, "height": {"step": 20}, "encoding": position, "layer": [
            {"mark": "rect", "encoding": {
                "color": {"field": "value", "type": "quantitative", "scale": colour,
                          "legend": legend},
                "tooltip": [{"field": "cell"}, {"field": "edge"}, {"field": "op"},
                            {"field": "value", "title": what, "format": ".4f"}]}},
            {"mark": {"type": "text", "fontSize": 9}, "encoding": {
                "text": {"field": "value", "format": ".2f"},
                "color": {"condition": {"test": "datum.dark", "value": "white"},
                          "value": "black"}}}]},
    }


# -- the cell as a graph ---------------------------------------------------------------------
def derived_edges(genotype: Mapping[str, Any], cell: str, edges: Sequence[Edge]
                  ) -> dict[Edge, str]:
    """The edges the derived cell keeps, with their ops: DARTS lists (op, input) pairs per
    intermediate node; NB201 lists one (op, input) per edge row ('none' included)."""
    if cell in genotype:
        first = min(t for _, t in edges)
        pairs = genotype[cell]
        per_node = len(pairs) // len({t for _, t in edges})
        return {(int(src), first + i // per_node): op for i, (op, src) in enumerate(pairs)}
    return {edge: op for (op, _), edge in zip(genotype["edges"], edges)}


def _node_names(edges: Sequence[Edge]) -> dict[int, str]:
    first = min(t for _, t in edges)
    nodes = sorted({n for e in edges for n in e})
    if first == 2:  # DARTS: the outputs of the two previous cells feed the cell
        return {n: {0: "c_{k-2}", 1: "c_{k-1}"}.get(n, str(n)) for n in nodes}
    return {n: str(n) for n in nodes}


def _positions(nodes: Sequence[int], first: int) -> dict[int | str, tuple[float, float]]:
    """Fixed places (inches): inputs stacked on the left, the other nodes left to right in a
    zigzag, the output last. Pinned nodes keep the picture still from record to record and
    spare the browser a layout (neato only routes the edges: 3-4x cheaper than dot)."""
    height, gap = 2.6, 2.3
    places: dict[int | str, tuple[float, float]] = {
        n: (0.0, height * (n / (first - 1) if first > 1 else 0.5)) for n in nodes if n < first}
    inner = [n for n in nodes if n >= first]
    for k, n in enumerate(inner):
        places[n] = (gap * (k + 1), height / 2 + (0.85 if k % 2 == 0 else -0.85))
    places["out"] = (gap * (len(inner) + 1), height / 2)
    return places


def _opacity_hex(opacity: float) -> str:
    """Two hex digits of alpha for a Graphviz colour."""
    return f"{round(255 * min(max(opacity, 0.0), 1.0)):02x}"


def cell_dag(point: ArchPoint, cell: str, ops: Sequence[str], edges: Sequence[Edge]
             ) -> graphviz.Digraph:
    """Every candidate edge, its width and opacity following the weight of its best op (the
    derived op on kept edges, else the best op other than `none`) from thin at the uniform
    weight 1/ops to thick at 1; the derived cell's edges drawn in their op's colour and
    labelled.

    Weights enter the graph rounded to DAG_WEIGHT_STEP around the uniform weight (so the
    undecided start sits mid-bin), and its source changes only when the picture visibly would:
    a browser lays a graph out again on every change, which is costly, while α moves a little
    at every record."""
    uniform = 1.0 / max(len(ops), 1)
    weights = uniform + np.round((np.asarray(point.alphas[cell]) - uniform) / DAG_WEIGHT_STEP
                                 ) * DAG_WEIGHT_STEP
    kept = derived_edges(point.genotype, cell, edges)
    first = min(t for _, t in edges)
    graph = graphviz.Digraph(name=f"{cell}_cell", engine="neato", graph_attr={
        "layout": "neato", "bgcolor": "transparent", "fontname": FONT, "splines": "true",
        "label": cell_title(cell), "labelloc": "t", "fontsize": "16"})
    graph.attr("node", style="filled", fontname=FONT, fontsize="14", color="#5a6b7d")
    graph.attr("edge", fontname=FONT, fontsize="11", arrowsize="0.7")
    names = _node_names(edges)
    places = _positions(list(names), first)
    for node, name in names.items():
        graph.node(str(node), name, shape="box" if node < first else "circle",
                   fillcolor="#dfe8d8" if node < first else "#eef2f7",
                   pos="{:.2f},{:.2f}!".format(*places[node]))
    candidates = [i for i, op in enumerate(ops) if op != "none"] or list(range(len(ops)))
    for row, edge in enumerate(edges):
        op = kept.get(edge)
        best = ops.index(op) if op in ops else max(candidates, key=lambda c: weights[row, c])
        weight = float(weights[row, best])
        lead = min(max((weight - uniform) / (1.0 - uniform), 0.0), 1.0) if uniform < 1 else 1.0
        tip = f"{edge[0]}→{edge[1]}: " + ", ".join(
            f"{ops[c]} ≈{weights[row, c]:.2f}" for c in np.argsort(-weights[row],
                                                                  kind="stable")[:3])
        attrs = {"tooltip": tip, "edgetooltip": tip}
        if op is not None and op != "none":
            attrs.update(penwidth=f"{1.5 + 4.5 * lead:.2f}", label=f"{op} {weight:.2f}",
                         color=op_colour(op) + _opacity_hex(0.6 + 0.4 * lead),
                         fontcolor=op_colour(op))
        else:
            attrs.update(penwidth=f"{0.6 + 3 * lead:.2f}", style="dashed", arrowhead="none",
                         color="#9e9e9e" + _opacity_hex(0.3 + 0.5 * lead),
                         label="none" if op == "none" else "")
        graph.edge(str(edge[0]), str(edge[1]), **attrs)
    concat = point.genotype.get(f"{cell}_concat")
    if concat:  # DARTS: the cell's output concatenates its intermediate nodes
        graph.node("out", "c_{k}", shape="box", fillcolor="#f6e3c5",
                   pos="{:.2f},{:.2f}!".format(*places["out"]))
        for node in concat:
            graph.edge(str(node), "out", color="#707070", style="dotted", arrowsize="0.5")
    return graph


@functools.cache
def dot_available() -> bool:
    """Whether Graphviz' `dot` program is installed (only file export needs it)."""
    return shutil.which("dot") is not None


def svg_of(graph: graphviz.Digraph) -> bytes | None:
    """The graph as SVG, or None when Graphviz' `dot` program is not installed."""
    try:
        return graph.pipe(format="svg")
    except graphviz.ExecutableNotFound:
        return None


# -- curves ----------------------------------------------------------------------------------
def _change_label(change: Mapping[str, Any]) -> str:
    previous = change.get("previous")
    before = "" if previous is None else f"{previous:g} → "
    return f"{change['name']} {before}{change['value']:g}"


# (panel, view, column, series, colour, mark): "line" for batches at logged steps.
_CURVES = (
    ("loss", "steps", "train_loss", "train (batch)", "#1f77b4", "line"),
    ("loss", "steps", "val_loss", "val (batch)", "#ff7f0e", "line"),
    ("loss", "epochs", "train_loss", "train (epoch mean)", "#1f77b4", "point"),
    ("loss", "epochs", "val_loss", "val (whole split)", "#ff7f0e", "both"),
    ("accuracy", "steps", "train_acc", "train acc (batch)", "#1f77b4", "line"),
    ("accuracy", "epochs", "train_acc", "train acc (epoch mean)", "#1f77b4", "point"),
    ("accuracy", "epochs", "val_acc", "val acc (whole split)", "#ff7f0e", "both"),
)


def loss_curves(snap: Snapshot) -> list[dict[str, Any]]:
    """Loss, then accuracy, against search steps: one Vega-Lite spec per panel (data in the
    datasets `curves` and `changes`, for the reason alpha_heatmap gives; two charts because
    Vega-Lite cannot stretch stacked views to the page). Batch values at logged steps are thin
    lines, epoch means and full validation at epoch ends markers, and dotted vertical marks,
    labelled on the loss panel, show where a live parameter changed."""
    changes = snap.live_changes
    specs = []
    for panel in ("loss", "accuracy"):
        rows = [c for c in _CURVES if c[0] == panel]
        data: dict[str, list[Any]] = {"step": [], "value": [], "series": [], "mark": []}
        for _, view_name, column, series, _, mark in rows:
            view = getattr(snap, view_name)
            y = np.asarray(getattr(view, column), dtype=float)
            keep = np.isfinite(y)
            data["step"] += np.asarray(view.step)[keep].astype(int).tolist()
            data["value"] += y[keep].tolist()
            data["series"] += [series] * int(keep.sum())
            data["mark"] += [mark] * int(keep.sum())
        x = {"field": "step", "type": "quantitative", "title": "search step",
             "axis": {"format": "d", "tickMinStep": 1}}
        y = {"field": "value", "type": "quantitative", "title": panel,
             **({"scale": {"domain": [0, 1]}} if panel == "accuracy" else {})}
        colour = {"field": "series", "type": "nominal", "title": None,
                  "scale": {"domain": [r[3] for r in rows], "range": [r[4] for r in rows]},
                  "legend": {"orient": "bottom"}}
        batch = {"test": "datum.mark == 'line'"}
        layers: list[dict[str, Any]] = [
            {"transform": [{"filter": "datum.mark != 'point'"}], "mark": "line",
             "encoding": {"x": x, "y": y, "color": colour,
                          "strokeWidth": {"condition": {**batch, "value": 1}, "value": 2},
                          "opacity": {"condition": {**batch, "value": 0.55}, "value": 1}}},
            # every logged value answers the pointer; only epoch values show a marker
            {"mark": {"type": "point", "filled": True, "size": 40},
             "encoding": {"x": x, "y": y, "color": colour,
                          "opacity": {"condition": {**batch, "value": 0}, "value": 1},
                          "tooltip": [{"field": "series"}, {"field": "step"},
                                      {"field": "value", "format": ".4f"}]}}]
        spec: dict[str, Any] = {
            **ON_CANVAS, "datasets": {"curves": data}, "data": {"name": "curves"},
            "width": "container", "height": 170, "layer": layers,
            "autosize": {"type": "fit-x", "contains": "padding"}}
        if changes:
            spec["datasets"]["changes"] = {"step": [int(c["step"]) for c in changes],
                                           "label": [_change_label(c) for c in changes]}
            at = {"field": "step", "type": "quantitative"}
            layers.append({"data": {"name": "changes"},
                           "mark": {"type": "rule", "strokeDash": [2, 2], "color": "#ff7f0e"},
                           "encoding": {"x": at, "tooltip": [{"field": "label"}]}})
            if panel == "loss":
                layers.append({"data": {"name": "changes"},
                               "mark": {"type": "text", "angle": 270, "align": "right",
                                        "baseline": "bottom", "dx": -4, "fontSize": 10,
                                        "color": "#ff7f0e"},
                               "encoding": {"x": at, "y": {"value": 0},
                                            "text": {"field": "label"}}})
        specs.append(spec)
    return specs


# -- collapse inspector ----------------------------------------------------------------------
def alpha_trajectories(view: HistoryView, cell: str, ops: Sequence[str],
                       edge_labels: Sequence[str], *, columns: int = 4) -> go.Figure:
    """Softmax weight of every op on every edge against steps, one small panel per edge:
    skip_connect drawn thick red, the other parameter-free ops dotted, the parametric ops in
    their colours; a grey dotted line at the uniform weight. The panels share a y range fitted
    to the data, so early, small moves show."""
    alphas = view.alphas[cell]
    rows = math.ceil(len(edge_labels) / columns)
    fig = make_subplots(rows=rows, cols=columns, shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[f"edge {e}" for e in edge_labels],
                        vertical_spacing=0.3 / rows, horizontal_spacing=0.03)
    for e in range(len(edge_labels)):
        for o, op in enumerate(ops):
            fig.add_trace(go.Scatter(
                x=view.step, y=alphas[:, e, o], mode="lines", name=op, legendgroup=op,
                showlegend=e == 0,
                line={"color": op_colour(op), "width": 3 if op == "skip_connect" else 1.3,
                      "dash": "dot" if op in PARAMETER_FREE_OPS and op != "skip_connect"
                      else "solid"},
                hovertemplate=f"edge {edge_labels[e]}<br>{op}<br>step %{{x}}<br>"
                              "weight %{y:.3f}<extra></extra>"),
                row=e // columns + 1, col=e % columns + 1)
    fig.add_hline(y=1 / max(len(ops), 1), line={"dash": "dot", "color": "#888", "width": 1},
                  row="all", col="all", exclude_empty_subplots=True)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=170 * rows + 80, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.06}, font={"family": FONT})
    return fig


def parameter_free_share(view: HistoryView, ops: Sequence[str]) -> go.Figure:
    """Share of softmax mass on parameter-free ops (skip, pools, none), mean over edges, per
    cell type against steps; the skip_connect share alone dashed."""
    fig = go.Figure()
    skip = list(ops).index("skip_connect") if "skip_connect" in ops else None
    for (cell, alphas), colour in zip(view.alphas.items(), CELL_COLOURS):
        fig.add_trace(go.Scatter(x=view.step, y=parameter_free_mass(alphas, ops), mode="lines",
                                 name=f"{cell}: parameter-free ops", line={"color": colour},
                                 hovertemplate="step %{x}<br>%{y:.3f}<extra></extra>"))
        if skip is not None:
            fig.add_trace(go.Scatter(x=view.step, y=alphas[:, :, skip].mean(axis=1),
                                     mode="lines", line={"dash": "dash", "color": colour},
                                     name=f"{cell}: skip_connect",
                                     hovertemplate="step %{x}<br>%{y:.3f}<extra></extra>"))
    free = [op for op in ops if op in PARAMETER_FREE_OPS]
    uniform = len(free) / len(ops) if ops else 0.0
    fig.add_hline(y=uniform, line={"dash": "dot", "color": "#888"},
                  annotation_text=f"uniform α ({len(free)}/{len(ops)})",
                  annotation_position="bottom right")
    fig.update_layout(height=320, yaxis={"title": "softmax mass"},
                      xaxis={"title": "search step"}, font={"family": FONT},
                      margin={"l": 10, "r": 10, "t": 20, "b": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def genotype_timeline(view: HistoryView, cell: str, ops: Sequence[str],
                      edges: Sequence[Edge], edge_labels: Sequence[str]) -> go.Figure:
    """Which op each edge of the derived cell holds, epoch by epoch (blank: edge not kept)."""
    codes = np.full((len(edges), len(view)), np.nan)
    names = np.full((len(edges), len(view)), "", dtype=object)
    for j, genotype in enumerate(view.genotypes):
        kept = derived_edges(genotype, cell, edges)
        for i, edge in enumerate(edges):
            if edge in kept:
                codes[i, j] = list(ops).index(kept[edge]) if kept[edge] in ops else np.nan
                names[i, j] = kept[edge]
    n = max(len(ops), 1)
    scale = []
    for o, op in enumerate(ops):  # a stepped colour scale: one flat band per op
        scale += [[o / n, op_colour(op)], [(o + 1) / n, op_colour(op)]]
    fig = go.Figure(go.Heatmap(
        z=codes, x=[int(e) for e in view.epoch], y=list(edge_labels), text=names,
        zmin=-0.5, zmax=n - 0.5, colorscale=scale, xgap=1, ygap=1,
        colorbar={"tickvals": list(range(n)), "ticktext": list(ops), "title": {"text": "op"}},
        hovertemplate="epoch %{x}<br>edge %{y}<br>%{text}<extra></extra>"))
    fig.update_layout(height=120 + 22 * len(edges), font={"family": FONT},
                      xaxis={"title": "epoch", "dtick": 1}, margin={"l": 10, "r": 10, "t": 20,
                                                                    "b": 10},
                      yaxis={"autorange": "reversed", "title": "edge"})
    return fig


# -- comparing runs --------------------------------------------------------------------------
def compare_curves(snaps: Sequence[tuple[str, Snapshot]]) -> go.Figure:
    """Validation accuracy, training loss, skip count and α entropy per epoch, one colour per
    run, so runs that differ in one setting can be read against each other."""
    panels = [("val_acc", "val accuracy"), ("train_loss", "train loss"),
              ("skip_count", "skip_connects in the cell"), ("entropy", "α entropy")]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in panels],
                        vertical_spacing=0.16, shared_xaxes=True)
    for r, (label, snap) in enumerate(snaps):
        for p, (column, title) in enumerate(panels):
            fig.add_trace(go.Scatter(
                x=snap.epochs.epoch, y=getattr(snap.epochs, column), mode="lines+markers",
                name=label, legendgroup=label, showlegend=p == 0,
                line={"color": RUN_COLOURS[r % len(RUN_COLOURS)]},
                hovertemplate=f"{label}<br>epoch %{{x}}<br>{title} %{{y:.4g}}<extra></extra>"),
                row=p // 2 + 1, col=p % 2 + 1)
    fig.update_xaxes(dtick=1)
    fig.update_xaxes(title_text="epoch", row=2)
    fig.update_layout(height=560, font={"family": FONT}, legend={"orientation": "h", "y": -0.15},
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def genotype_text(genotype: Mapping[str, Any]) -> str:
    """The one-line form people paste: DARTS' Genotype(...) repr, NB201's arch string."""
    return str(genotype.get("text") or genotype.get("arch_str") or json.dumps(genotype))


def compare_rows(snaps: Sequence[tuple[str, Snapshot]],
                 retrained: dict[str, str] | None = None,
                 inherited: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per run: where it stands, its collapse signals, its derived cell, and beside the
    supernet's validation accuracy the cell's inherited accuracy (on the supernet's weights)
    and retrained test accuracy where `inherited` and `retrained` (label -> value) have them:
    R-DARTS' picture, a collapsed supernet can read the better, its cell the worse."""
    rows = []
    for label, snap in snaps:
        latest = snap.latest or {}
        changed = (snap.lineage or {}).get("changes", {})
        rows.append({
            "run": label, "state": snap.state, "seed": snap.config.seed,
            "epoch": f"{snap.epoch}/{snap.config.epochs}",
            "live": ", ".join(f"{k}={v:g}" for k, v in sorted(snap.live.items())),
            "branched with": ", ".join(f"{k}={v}" for k, v in changed.items()),
            "skip count": latest.get("skip_count"),
            "entropy": None if latest.get("entropy") is None else round(latest["entropy"], 4),
            "val acc": _last(snap.epochs.val_acc),
            "inherited acc": (None if (inherited or {}).get(label) is None
                              else round(inherited[label], 4)),  # type: ignore[index]
            "retrained test acc": (retrained or {}).get(label, ""),
            "genotype": genotype_text(latest["genotype"]) if "genotype" in latest else "",
        })
    return rows


def _last(column: np.ndarray) -> float | None:
    finite = column[np.isfinite(column)]
    return round(float(finite[-1]), 4) if len(finite) else None


# -- exports ---------------------------------------------------------------------------------
def metrics_csv(view: HistoryView) -> str:
    """One row per record: the scalar columns, then the live parameters in force."""
    live_names = sorted({name for live in view.live for name in live})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*SCALARS, *live_names])
    for i in range(len(view)):
        values = [getattr(view, name)[i] for name in SCALARS]
        cells = ["" if not np.isfinite(v) else (int(v) if name in ("step", "epoch", "skip_count")
                                                 else float(v))
                 for name, v in zip(SCALARS, values)]
        writer.writerow([*cells, *(view.live[i].get(name, "") for name in live_names)])
    return out.getvalue()


def genotype_json(genotype: Mapping[str, Any]) -> str:
    return json.dumps(dict(genotype), indent=2) + "\n"
