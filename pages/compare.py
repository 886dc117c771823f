"""Compare two to four runs (e.g. one seed with different entropy weights): overlaid curves,
the final cells as graphs, and the collapse signals in one table. `?runs=A,B` keeps the choice
in the URL."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from nas_engine import viz
from nas_engine.evaluation import results
from nas_engine.evaluations import EvaluationsDB
from pages.ui import common, panels
from pages.ui.teaching import explain

MAX_RUNS = 4


@common.page("The comparison failed")
def page() -> None:
    st.title(":material/compare_arrows: Compare runs")
    summaries = common.registry().list()
    runs = [s.run_id for s in summaries if s.problem is None and s.kind != "discrete"]
    problems = {s.run_id: s.problem for s in summaries if s.problem is not None}
    if problems:
        st.caption("Not offered, their folders cannot be read: " + "; ".join(
            f"`{run_id}` ({problem})" for run_id, problem in problems.items()))
    discrete = [s.run_id for s in summaries if s.problem is None and s.kind == "discrete"]
    if discrete:
        st.page_link(common.STRATEGIES, icon=":material/leaderboard:",
                     label=f"Discrete runs ({len(discrete)}) are compared on Compare "
                           "strategies", query_params={"runs": ",".join(discrete)})
    if len(runs) < 2:
        st.info("Comparing needs at least two runs; branch one from the Live view.")
        return
    elsewhere = {run_id: "a discrete run: see Compare strategies" for run_id in discrete}
    asked, left_out = common.requested(st.query_params.get("runs", ""), runs,
                                       {**problems, **elsewhere}, MAX_RUNS)
    chosen = st.multiselect("runs", runs, default=asked or runs[:2],
                            max_selections=MAX_RUNS,
                            key=f"compare:{','.join(asked)}",
                            help="two to four runs; the URL keeps the choice")
    if ",".join(chosen) != st.query_params.get("runs"):
        st.query_params["runs"] = ",".join(chosen)
    opened = [(run_id, *common.try_open(run_id)) for run_id in chosen]
    left_out += [f"{common.shown_id(run_id)} ({problem})" for run_id, _, problem in opened
                 if problem]
    snaps = [(run_id, run.snapshot()) for run_id, run, _ in opened if run is not None]
    notes = [common.left_out_message(left_out)] if left_out else []
    if len(snaps) < 2:
        notes.append("Pick at least two runs.")
    if notes:  # one message for all that went wrong
        st.warning(" ".join(notes), icon=":material/warning:")
    if len(snaps) < 2:
        return

    st.plotly_chart(viz.compare_curves(snaps), key="compare-curves",
                    config=panels.PLOTLY_CONFIG)
    explain("compare")
    db = EvaluationsDB(common.runs_dir())
    folders = {run_id: run.folder for run_id, run, _ in opened if run is not None}
    retrained = {run_id: results.summary(results.of_folder(db, folder))
                 for run_id, folder in folders.items()}
    inherited = {run_id: results.inherited(db, folder) for run_id, folder in folders.items()}
    st.dataframe(pd.DataFrame(viz.compare_rows(
        snaps, retrained, {r: s.val_acc for r, s in inherited.items() if s is not None})),
        hide_index=True)
    st.caption("*val acc* is the supernet's, on its validation half; *inherited acc* its final "
               "cell's alone on the supernet's weights (BatchNorm recalibrated), the one-shot "
               "estimate; *retrained test acc* the cell's own, trained from scratch and scored "
               "on held-out images (Retrain this cell, in the live view). A collapsed supernet "
               "often has the better first and the worse last: the weight-sharing gap.")
    unscored = [r for r, score in inherited.items()
                if score is None and results.can_score_inherited(folders[r])]
    if unscored and st.button(
            "Score the final cells on their supernets", icon=":material/calculate:",
            help="inherited accuracy: each finished search's final cell evaluated with the "
                 "supernet's weights of its newest checkpoint (seconds each; stored)"):
        with st.spinner("Scoring the cells with inherited weights…"):
            for run_id in unscored:
                common.call(results.score_inherited, db, folders[run_id])
        st.rerun()

    st.subheader("The derived cells")
    for column, (run_id, snap) in zip(st.columns(len(snaps)), snaps):
        point = viz.latest_point(snap)
        with column:
            st.markdown(f"`{run_id}`")
            if point is None:
                st.info("no record yet")
                continue
            for cell in point.alphas:
                st.graphviz_chart(viz.cell_dag(point, cell, snap.config.ops or [],
                                               viz.space_edges(snap)))
    if any(snap.is_active for _, snap in snaps):
        st.button("catch up with the running runs", icon=":material/refresh:")


page()
