"""Panels that more than one page draws: the α heatmap with the cell graphs, the curves, the
collapse diagnostics and the exports. Figures come from nas_engine.viz; these functions only lay
them out, caption them and skip rebuilding them while the run has not moved.
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from nas_engine import viz
from nas_engine.runner import Run
from nas_engine.snapshot import Snapshot
from nas_engine.spaces import SPACES
from nas_engine.states import RunState
from pages.ui.common import guarded, memo
from pages.ui.teaching import explain

PLOTLY_CONFIG = {"displaylogo": False}
STATE_ICONS = {RunState.CREATED: "hourglass_empty", RunState.RUNNING: "play_circle",
               RunState.PAUSED: "pause_circle", RunState.FINISHED: "check_circle",
               RunState.STOPPED: "stop_circle", RunState.FAILED: "error",
               RunState.INTERRUPTED: "warning"}


def vega_chart(*specs: dict[str, Any], key: str) -> None:
    """Vega-Lite specs from viz, one under the other in a container keyed `key` (the browser
    test finds it by that). Their datasets travel apart from the specs, so while a spec stays
    the same the browser swaps the new numbers into the chart it has."""
    with st.container(key=key):
        for spec in specs:
            st.vega_lite_chart(spec=spec)


@guarded("The α heatmap and the cell graphs could not be drawn")
def arch_panel(snap: Snapshot, point: viz.ArchPoint, key: str) -> None:
    """α heatmap (softmax or raw) of every cell type at `point`, and the graph of one cell type
    at a time (a browser lays out each new graph, the costliest thing a live page draws)."""
    ops, labels = snap.config.ops or [], snap.edge_labels
    raw = st.toggle("show raw α", key=f"{key}:raw",
                    help="α before the softmax (the numbers the optimiser moves)")
    stamp = (snap.run_id, point.step, point.kind, raw)
    heatmap = memo(f"{key}:heatmap", stamp,
                   lambda: viz.alpha_heatmap(point, ops, labels, raw=raw))
    vega_chart(heatmap, key=f"{key}-heatmap")
    explain("heatmap")
    cells = list(point.alphas)
    cell = st.radio("cell graph", cells, horizontal=True, key=f"{key}:cell",
                    format_func=viz.cell_title) if len(cells) > 1 else cells[0]
    edges = viz.space_edges(snap)
    st.graphviz_chart(memo(f"{key}:dag", (*stamp[:3], cell),
                           lambda: viz.cell_dag(point, cell, ops, edges)))
    explain("dag")


@guarded("The curves could not be drawn")
def curves_panel(snap: Snapshot, key: str) -> None:
    if not len(snap.steps) and not len(snap.epochs):
        st.info("The curves start at the first logged step.")
        return
    stamp = (snap.run_id, len(snap.steps), len(snap.epochs), len(snap.live_changes))
    vega_chart(*memo(f"{key}:curves", stamp, lambda: viz.loss_curves(snap)), key=f"{key}-curves")
    explain("curves")


@guarded("The collapse diagnostics could not be drawn")
def diagnostics_strip(snap: Snapshot) -> None:
    """Skip count, entropy, parameter-free mass, λmax when measured, and the alarm state."""
    latest = snap.latest or {}
    ops = snap.config.ops or []
    columns = st.columns(4)
    skips = latest.get("skip_count")
    edges = SPACES[snap.config.space].derived_edges
    columns[0].metric("skip_connects in the cell", "–" if skips is None else
                      f"{int(skips)} of {edges}",
                      help="in the derived normal cell (the NB201 cell); DARTS+ calls ≥ 2 "
                           "collapse, and half the edges is a collapsed cell", border=True)
    entropy = latest.get("entropy")
    columns[1].metric("α entropy", "–" if entropy is None else f"{entropy:.3f}",
                      help=f"mean over edges; {math.log(max(len(ops), 1)):.3f} = undecided "
                           "(uniform), 0 = every edge decided", border=True)
    mass = latest.get("parameter_free_mass") or {}
    first_cell = next(iter(mass), None)
    columns[2].metric("parameter-free mass", "–" if first_cell is None else
                      f"{mass[first_cell]:.2f}",
                      help=f"softmax weight on skip, pools and none ({first_cell} cell), mean "
                           "over edges", border=True)
    lam = snap.epochs.last("hessian_max_eigenvalue")
    columns[3].metric("Hessian λmax", "–" if lam is None else f"{lam:.3g}",
                      help="largest eigenvalue of ∇²α L_val at the last measured epoch "
                           "(R-DARTS: a fast rise precedes collapse); set "
                           "diagnostics.hessian_every to measure it", border=True)
    alarm = snap.epochs.alarms[-1] if len(snap.epochs) else None
    if alarm:
        st.error(f"**Collapse alarm** ({alarm.get('rule')}, epoch {alarm.get('epoch')}): "
                 f"{alarm.get('message')}", icon=":material/e911_emergency:")
    elif skips is not None:
        st.success("No collapse alarm so far.", icon=":material/check_circle:")
    explain("diagnostics")


@guarded("The retrained result could not be shown")
def retrain_result(snap: Snapshot) -> None:
    """A retrain's cell and, after its last epoch, its result on the held-out test images."""
    config = snap.config
    st.markdown(f"**The cell** · `{config.train.genotype}`")
    latest = snap.latest or {}
    if "test_acc" not in latest:
        st.info(f"Training from scratch ({config.train.profile} profile, {config.epochs} "
                "epochs); the test accuracy comes after the last epoch, on images no search "
                "has seen.")
        return
    columns = st.columns(4)
    columns[0].metric("test accuracy", f"{latest['test_acc']:.3f}", border=True,
                      help="on the dataset's held-out test images")
    columns[1].metric("parameters", f"{latest['params']:,}", border=True,
                      help="without the auxiliary head")
    columns[2].metric("FLOPs", f"{latest['flops'] / 1e6:.1f} M", border=True,
                      help="multiply-accumulates of the convolutions and linear layers, one "
                           "image")
    columns[3].metric("latency", f"{latest['latency_ms']:.2f} ms", border=True,
                      help="one image, CPU, eval mode (median of 20)")


def run_header(snap: Snapshot) -> None:
    icon = f":material/{STATE_ICONS[snap.state]}:"
    config = snap.config
    st.markdown(f"#### {icon} `{snap.run_id}` — {snap.state}")
    lineage = snap.lineage
    line = (f"{config.space} space · {config.data.name} · {len(config.ops or [])} ops · "
            f"seed {config.seed} · {config.strategy.name} ({config.strategy.order} order)")
    if config.kind == "train":
        line = (f"retraining a {config.space} cell · {config.data.name} · seed {config.seed} · "
                f"{config.train.profile} profile")
    elif config.kind == "discrete":
        d = config.discrete
        time_budget = f" or {d.seconds:g} s" if d.seconds else ""
        line = (f"discrete search: {d.strategy} · {config.space} space · {config.data.name} · "
                f"budget {config.epochs} evaluations{time_budget} · seed {config.seed} · "
                f"candidates trained with the {d.profile} profile")
    if lineage and lineage.get("retrain"):
        at = "as it was" if lineage.get("epoch") is None else f"at epoch {lineage['epoch']}"
        line += f" · the cell of `{lineage['parent']}` {at}"
    elif lineage:
        changes = ", ".join(f"{k}={v}" for k, v in lineage.get("changes", {}).items())
        at = "after evaluation" if config.kind == "discrete" else "at epoch"
        line += f" · branched from `{lineage['parent']}` {at} {lineage['epoch']}"
        line += f" ({changes})" if changes else ""
    st.caption(line)
    if snap.message:
        (st.error if snap.state is RunState.FAILED else st.info)(snap.message)


@guarded("The exports could not be prepared")
def exports_panel(run: Run, key: str, point: viz.ArchPoint | None = None) -> None:
    """The derived cell as text/JSON/graph and the metrics as CSV. Files are made when a button
    is pressed, from the run as it is then (or from `point`, a moment picked on the page)."""
    snap = run.snapshot()
    shown = point or viz.latest_point(snap)
    if shown is None:
        st.info("Nothing to export before the supernet is built.")
        return

    def current() -> viz.ArchPoint:
        return point or viz.latest_point(run.snapshot()) or shown

    st.caption(f"Derived cell at {shown.label}" + ("" if point else
                                                   " (downloads take the newest one)"))
    st.code(viz.genotype_text(shown.genotype), language="python", wrap_lines=True)
    columns = st.columns(5)
    name = snap.run_id
    columns[0].download_button("genotype.txt", lambda: viz.genotype_text(current().genotype),
                               f"{name}-genotype.txt", "text/plain", key=f"{key}:txt",
                               on_click="ignore")
    columns[1].download_button("genotype.json", lambda: viz.genotype_json(current().genotype),
                               f"{name}-genotype.json", "application/json", key=f"{key}:json",
                               on_click="ignore")
    columns[2].download_button("step metrics.csv", lambda: viz.metrics_csv(run.snapshot().steps),
                               f"{name}-steps.csv", "text/csv", key=f"{key}:steps",
                               on_click="ignore")
    columns[3].download_button("epoch metrics.csv",
                               lambda: viz.metrics_csv(run.snapshot().epochs),
                               f"{name}-epochs.csv", "text/csv", key=f"{key}:epochs",
                               on_click="ignore")
    edges = viz.space_edges(snap)
    graphs = {cell: viz.cell_dag(shown, cell, snap.config.ops or [], edges)
              for cell in shown.alphas}
    for cell, graph in graphs.items():
        title, file = viz.cell_title(cell), f"{name}-{cell}"
        if viz.dot_available():
            columns[4].download_button(f"{title}.svg", lambda g=graph: viz.svg_of(g),
                                       f"{file}.svg", "image/svg+xml", key=f"{key}:svg-{cell}",
                                       on_click="ignore")
        else:
            columns[4].download_button(f"{title}.dot", graph.source, f"{file}.dot",
                                       "text/vnd.graphviz", key=f"{key}:dot-{cell}",
                                       on_click="ignore")
    if not viz.dot_available():
        st.caption("Graphviz' `dot` program is not installed here, so the cells export as DOT "
                   "source: render with `dot -Tsvg cell.dot -o cell.svg`, or paste it into any "
                   "Graphviz viewer.")
