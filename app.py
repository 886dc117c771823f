"""alphascope's entry point and home page: what alphascope is, one-click presets, and every run
with a link that opens it. The other pages are the files in pages/ (Streamlit finds them
there; pages/ui/ holds what they share), and everything they draw comes from nas_engine.viz.

    streamlit run app.py            # http://127.0.0.1:8501 (see .streamlit/config.toml)

`streamlit run` imports this file, finds the `st.App` at the bottom and serves Streamlit with
the live pages' progress feeds beside it (`pages/ui/progress_feed.py`, `group_feed.py`); each
session then runs this file as the home page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pandas as pd
import streamlit as st

from nas_engine import config as cfg
from nas_engine import discrete_viz
from nas_engine.evaluation import results
from nas_engine.evaluations import EvaluationsDB
from nas_engine.runner import RunSummary
from nas_engine.store import RunFolder
from pages.ui import common, group_feed, progress_feed, sweep_feed

BLURBS = {
    "classroom": "The DARTS cell on the bundled 8×8 digits, small enough for a laptop CPU: watch "
                 "α move and the cell take shape.",
    "collapse-demo": "A search set up to collapse (R-DARTS' space S3 in the NB201 cell, on "
                     "the hard digits_clutter task): watch skip_connect take over every edge.",
    "collapse-cured": "The collapse demo's twin with P-DARTS' dropout on skip_connect: the same "
                      "seed, a cell that keeps its convolutions.",
}

COLUMNS = ["open", "run", "kind", "state", "space", "dataset", "epoch", "skip count", "alarm",
           "retrained", "started", "branched from"]


def _blurb(name: str, config: cfg.SearchConfig) -> str:
    sizes = (f"{config.space} space · {config.data.name} · {config.epochs} epochs · "
             f"C={config.network.channels}")
    return f"{BLURBS[name]} ({sizes})" if name in BLURBS else sizes


def one_click_presets() -> None:
    """Presets that run offline (the bundled digits), classroom first."""
    # In the order PRESETS lists them: the lesson's order (the demo before its cured twin).
    names = [n for n in cfg.PRESETS
             if cfg.PRESETS[n].get("data", {}).get("name", "digits") == "digits"]
    columns = st.columns(max(len(names), 1))
    for column, name in zip(columns, names):
        config = cfg.preset(name)
        with column.container(border=True):
            st.markdown(f"**{name}**")
            st.caption(_blurb(name, config))
            if st.button(f"Start {name}", key=f"preset:{name}", type="primary"):
                common.start_run(config, label=name)


def _alarm(summary: RunSummary) -> str:
    alarm = summary.alarm
    return f"collapse ({alarm.get('rule')}, epoch {alarm.get('epoch')})" if alarm else ""


def _incumbent(s: RunSummary) -> str:
    """A discrete run's best so far: every candidate it scored was retrained, so the best of
    them stands where a search shows its cell's retrained accuracy. From memory for a run of
    this process, else from the log's last evaluation (read from its end)."""
    run = common.own_run(s.run_id)
    last = (run.snapshot().latest if run is not None else
            RunFolder(common.runs_dir() / s.run_id).last_record(("evaluation",))) or {}
    return discrete_viz.result_text(last)


def _row(s: RunSummary, db: EvaluationsDB) -> dict[str, Any]:
    """A run's row; a folder that cannot be read is a row too, its state saying why (one bad
    folder must not hide the others). `retrained`: its cell's test accuracy from the
    evaluations database, where it was retrained; a discrete run's incumbent."""
    row = {"open": f"live?run={quote(s.run_id, safe='')}", "run": s.run_id}
    if s.problem is not None:
        return {**row, "state": s.problem, "started": s.started}
    if s.kind == "discrete":
        retrained = _incumbent(s)
    else:
        retrained = results.summary(results.of_folder(db, RunFolder(common.runs_dir() /
                                                                     s.run_id)))
    return {**row, "kind": s.kind, "state": s.state.value, "space": s.space,
            "dataset": s.dataset, "epoch": f"{s.epoch}/{s.epochs}", "skip count": s.skip_count,
            "alarm": _alarm(s), "retrained": retrained, "started": s.started,
            "branched from": s.parent or ""}


def runs_table() -> None:
    summaries = common.registry().list()
    if not summaries:
        st.info("No runs yet. Start a preset above, or configure one on the Search page.")
        return
    db = EvaluationsDB(common.runs_dir())
    table = pd.DataFrame([_row(s, db) for s in summaries], columns=COLUMNS)
    picked = st.dataframe(
        table, hide_index=True, on_select="rerun", selection_mode="single-row", key="runs",
        column_config={"open": st.column_config.LinkColumn("open", display_text="open ↗",
                                                           help="the run's live view; the "
                                                                "link can be shared"),
                       "epoch": st.column_config.TextColumn(
                           help="epochs done of all; a discrete run's evaluations of its "
                                "budget"),
                       "retrained": st.column_config.TextColumn(
                           help="a search: its cell's mean test accuracy retrained from "
                                "scratch (how many retrains, which profiles): Retrain this "
                                "cell in its live view. A discrete run: the best candidate "
                                "it trained, its validation and test scores")})
    st.caption("Click a row to open its live view (or the ↗ link for a new tab). Runs go on "
               "when every tab is closed.")
    rows = picked.selection.rows if picked else []
    if rows:
        st.switch_page(common.LIVE, query_params={"run": summaries[rows[0]].run_id})


@common.page("The home page failed")
def page() -> None:
    st.title(":material/biotech: alphascope")
    st.markdown(
        "alphascope lets you **watch differentiable architecture search think**. A DARTS-style "
        "search trains a supernet whose every edge mixes all candidate ops, weighted by "
        "architecture parameters α, and here you see α, the cell it would pick now, the losses "
        "and the signs of *skip-connect collapse* live, while it runs. You can pause, step, "
        "change learning rates and regularisers on the fly, branch a run and compare.")
    st.subheader("Start in one click")
    one_click_presets()
    st.page_link(common.SEARCH, label="…or configure every setting on the Search page",
                 icon=":material/rocket_launch:")
    st.page_link(common.STRATEGIES, label="…or run random search, evolution and REINFORCE "
                 "side by side over seeds", icon=":material/leaderboard:")
    st.page_link(common.ZERO_COST, label="…or see how well zero-cost proxies rank cells "
                 "without training them", icon=":material/bolt:")
    st.page_link(common.SWEEPS, label="…or map where collapse happens: a grid of settings × "
                 "seeds on Ray", icon=":material/grid_on:")
    st.page_link(common.LESSON, label="New here? Follow the 10-minute lesson on collapse",
                 icon=":material/school:")
    st.subheader("Runs")
    runs_table()


if __name__ == "__main__":  # Streamlit runs this file as the home page
    page()
else:  # `streamlit run app.py` imports it for the server: Streamlit plus the progress feed
    app = st.App(__file__, routes=[*progress_feed.ROUTES, *group_feed.ROUTES,
                                   *sweep_feed.ROUTES],
                 lifespan=common.stop_runs_at_shutdown)
