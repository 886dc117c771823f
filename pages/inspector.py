"""Collapse inspector: how α and the derived cell got where they are. α trajectories per edge,
the share of weight on parameter-free ops, the genotype epoch by epoch, and a slider that
scrubs the heatmap and the cell graphs back to any recorded moment.

The page draws the run as it was when opened (a running run keeps going: "catch up" redraws it), so
scrubbing never fights a poll.
"""

from __future__ import annotations

import streamlit as st

from nas_engine import viz
from pages.ui import common, panels
from pages.ui.teaching import explain


@common.page("The collapse inspector failed")
def page() -> None:
    st.title(":material/troubleshoot: Collapse inspector")
    run = common.pick_run()
    if run is None:
        return
    snap = run.snapshot()
    panels.run_header(snap)
    if snap.config.kind == "discrete":  # no α to scrub: its evaluations are the live view's
        st.info("A discrete run has no α to scrub: each of its evaluations, the strategy's "
                "state and the incumbent are in its live view.", icon=":material/info:")
        st.page_link(common.LIVE, query_params={"run": run.run_id}, label="Open its live view",
                     icon=":material/monitoring:")
        return
    if snap.is_active:
        st.button("catch up with the run", icon=":material/refresh:",
                  help=f"shown as of step {snap.step}")
    points = viz.recorded_points(snap)
    if not points:
        st.info("Nothing recorded yet: the first record comes after `record.log_every` steps.")
        return

    st.subheader("Scrub through the search")
    index = st.select_slider("recorded moment", options=range(len(points)),
                             value=len(points) - 1, format_func=lambda i: points[i].label,
                             key=f"scrub:{snap.run_id}:{len(points)}")
    panels.arch_panel(snap, points[index], key="inspect")
    chosen = points[index]
    if snap.config.kind == "search" and chosen.genotype:
        if st.button("Retrain this cell", icon=":material/model_training:",
                     help="train the cell of this moment alone from scratch (classroom "
                          "profile, digits_clutter) and score it on held-out images"):
            epoch = chosen.epoch if chosen.kind == "epoch" else None
            child = common.retrain_run(run, dict(chosen.genotype), epoch, chosen.step,
                                       "classroom", snap.config.seed)
            st.switch_page(common.LIVE, query_params={"run": child.run_id})

    ops, labels = snap.config.ops or [], snap.edge_labels
    cells = list(snap.steps.alphas or snap.epochs.alphas)
    cell = st.radio("cell type", cells, horizontal=True) if len(cells) > 1 else cells[0]
    history = snap.steps if len(snap.steps) else snap.epochs
    stamp = (snap.run_id, len(snap.steps), len(snap.epochs))

    st.subheader("α trajectories per edge")
    st.plotly_chart(common.memo(f"trajectories:{cell}", stamp, lambda: viz.alpha_trajectories(
        history, cell, ops, labels)), key="trajectories", config=panels.PLOTLY_CONFIG)
    explain("trajectories")

    st.subheader("Weight on parameter-free ops")
    st.plotly_chart(common.memo("mass", stamp, lambda: viz.parameter_free_share(history, ops)),
                    key="mass", config=panels.PLOTLY_CONFIG)
    explain("mass")

    st.subheader("The derived cell, epoch by epoch")
    if len(snap.epochs):
        st.plotly_chart(common.memo(f"timeline:{cell}", stamp, lambda: viz.genotype_timeline(
            snap.epochs, cell, ops, viz.space_edges(snap), labels)), key="timeline",
            config=panels.PLOTLY_CONFIG)
        explain("timeline")
    else:
        st.info("The timeline starts when the first epoch ends.")

    with st.expander("Export the cell at the chosen moment and the metrics"):
        panels.exports_panel(run, key="inspect-export", point=points[index])


page()
