"""Compare two to four runs (e.g. one seed with different entropy weights): overlaid curves,
the final cells as graphs, and the collapse signals in one table. `?runs=A,B` keeps the choice
in the URL."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from nas_engine import viz
from pages.ui import common, panels
from pages.ui.teaching import explain

MAX_RUNS = 4


@common.page("The comparison failed")
def page() -> None:
    st.title(":material/compare_arrows: Compare runs")
    runs = [s.run_id for s in common.registry().list()]
    if len(runs) < 2:
        st.info("Comparing needs at least two runs; branch one from the Live view.")
        return
    asked = [r for r in st.query_params.get("runs", "").split(",") if r in runs]
    chosen = st.multiselect("runs", runs, default=asked[:MAX_RUNS] or runs[:2],
                            max_selections=MAX_RUNS,
                            key=f"compare:{','.join(asked)}",
                            help="two to four runs; the URL keeps the choice")
    if ",".join(chosen) != st.query_params.get("runs"):
        st.query_params["runs"] = ",".join(chosen)
    if len(chosen) < 2:
        st.warning("Pick at least two runs.")
        return
    searches = [(run_id, common.registry().get(run_id)) for run_id in chosen]
    snaps = [(run_id, run.snapshot()) for run_id, run in searches if run is not None]

    st.plotly_chart(viz.compare_curves(snaps), key="compare-curves",
                    config=panels.PLOTLY_CONFIG)
    explain("compare")
    st.dataframe(pd.DataFrame(viz.compare_rows(snaps)), hide_index=True)

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
