"""Compare search strategies fairly: discrete runs grouped by strategy, each strategy's
best-so-far mean over its seeds inside the min-max band of its runs on one axis (evaluations or
seconds), and the table of final best scores (mean ± sd, best, wins). `?runs=A,B,...` keeps the
runs in the URL; a named comparison (`strategies-mlp`: seed 001's RL, evolution, gradient and
random search on its 1-D regression, 5 seeds) starts all its runs from here, and the page
follows them while they go (`group_feed`). Numbers come from `nas_engine.comparison`, figures
from `nas_engine.discrete_viz`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from nas_engine import comparison
from nas_engine import discrete_viz as dv
from nas_engine.discrete import DISCRETE_STRATEGIES
from nas_engine.runner import RunSummary
from nas_engine.snapshot import Snapshot
from pages.ui import common, group_feed
from pages.ui.panels import PLOTLY_CONFIG

MAX_RUNS = 60  # a named comparison is 20 runs; more would crowd the chart and the line


def offered(summaries: list[RunSummary]) -> tuple[list[str], dict[str, str]]:
    """The discrete runs, and why each other run cannot be compared here."""
    runs = [s.run_id for s in summaries if s.problem is None and s.kind == "discrete"]
    problems = {s.run_id: s.problem for s in summaries if s.problem is not None}
    problems.update({s.run_id: f"a {s.kind} run, not a discrete one: see Compare runs"
                     for s in summaries if s.problem is None and s.kind != "discrete"})
    return runs, problems


def default_choice(summaries: list[RunSummary]) -> list[str]:
    """Without a choice in the URL: every discrete run on the newest one's space and task
    (scores of other tasks do not compare)."""
    discrete = [s for s in summaries if s.problem is None and s.kind == "discrete"]
    if not discrete:
        return []
    task = (discrete[0].space, discrete[0].dataset)
    return [s.run_id for s in discrete if (s.space, s.dataset) == task][:MAX_RUNS]


def launch_panel(expanded: bool) -> None:
    """Start every run of a named comparison; their ids go into the URL."""
    with st.expander("Run a named comparison", icon=":material/play_arrow:", expanded=expanded):
        name = st.selectbox("comparison", list(comparison.COMPARISONS), key="strategies:named")
        spec = comparison.COMPARISONS[name]
        base = spec["base"]
        ready = [s for s in spec["strategies"] if s in DISCRETE_STRATEGIES]
        missing = [s for s in spec["strategies"] if s not in DISCRETE_STRATEGIES]
        budget = st.number_input("evaluations per run", min_value=1, max_value=10_000,
                                 value=int(base.get("epochs", 100)), key="strategies:budget",
                                 help="the same budget for every strategy: a fair comparison")
        runs = len(ready) * len(spec["seeds"])
        st.caption(f"{', '.join(ready)} × seeds {', '.join(map(str, spec['seeds']))}: {runs} "
                   f"runs on the {base.get('space')} space, {base['data']['name']}, started in "
                   "turn, one per core but the one this app keeps.")
        if missing:
            st.caption(f"Not in this version yet, so left out: {', '.join(missing)}.")
        if st.button("Launch", icon=":material/rocket_launch:", type="primary",
                     key="strategies:launch", disabled=not ready):
            try:
                configs = comparison.comparison_configs(name, {"epochs": int(budget)})
            except ValueError as exc:
                st.error(str(exc))
                return
            started = common.create_runs_in_turn(
                [c for c in configs if c.discrete.strategy in DISCRETE_STRATEGIES], name)
            st.query_params["runs"] = ",".join(run.run_id for run in started)
            st.rerun()


def draw(snaps: list[Snapshot]) -> None:
    """The curves, the final table and the runs, from the snapshots alone."""
    if not snaps:
        st.info("None of these runs can be opened.")
        return
    tasks = sorted({f"{s.config.space} on {s.config.data.name}" for s in snaps})
    if len(tasks) > 1:
        st.warning("These runs search different spaces or tasks (" + "; ".join(tasks)
                   + "): their scores do not compare.", icon=":material/warning:")
    axis = st.radio("x axis", comparison.AXES, horizontal=True, key="strategies:axis",
                    help="evaluations: the same budget for every strategy; seconds: the "
                         "search's cost, its own time plus the training of every evaluation "
                         "(a cache hit's included, so runs sharing the database pay alike)")
    metric = dv.metric_of(snaps[0])
    stamp = tuple((s.run_id, len(s.epochs)) for s in snaps)
    figure = common.memo("strategies:curves", (*stamp, axis), lambda: dv.strategy_curves(
        comparison.curves(snaps, axis), axis, metric))
    st.plotly_chart(figure, key="strategies-curves", config=PLOTLY_CONFIG)
    st.caption("Each line: a strategy's best score so far, mean over its runs; the band: the "
               "lowest and highest of its runs. A run counts from its first evaluation on; "
               "the axis leaves out scores far below the rest.")

    st.subheader("Final best scores")
    table = pd.DataFrame(dv.final_rows(comparison.final_table(snaps)))
    number = st.column_config.NumberColumn(format="%.4f")
    st.dataframe(table, hide_index=True, key="strategies-table", column_config={
        "mean": number, "sd": number, "best": number, "test mean": number,
        "evaluations": st.column_config.NumberColumn(format="%.1f"),
        "cache hits": st.column_config.NumberColumn(format="%.1f"),
        "seconds": st.column_config.NumberColumn(
            format="%.1f", help="mean search cost: the strategy's own time plus every "
                                "evaluation's training seconds, a cache hit's included"),
        "wins": st.column_config.NumberColumn(help="seeds on which its final best was the "
                                                   "highest of all strategies (ties count "
                                                   "for each)")})
    st.caption(f"Scores as recorded: {dv.score_title(metric)}. *test mean*: the incumbents' "
               "held-out scores; *evaluations*, *cache hits* (database answers) and *seconds* "
               "(search cost): means per run.")
    with st.expander(f"The {len(snaps)} runs"):
        st.dataframe(pd.DataFrame(dv.run_rows(snaps)), hide_index=True,
                     key="strategies-runs")


@common.page("The strategies comparison failed")
def page() -> None:
    st.title(":material/leaderboard: Compare strategies")
    st.markdown("Random search, regularized evolution, the seed's GA and REINFORCE on the same "
                "space and budget, several seeds each: one run says little when outcomes "
                "differ by seed.")
    summaries = common.registry().list()
    runs, problems = offered(summaries)
    text = st.query_params.get("runs", "")
    launch_panel(expanded=not runs)
    if not runs:
        left_out = common.requested(text, runs, problems, MAX_RUNS)[1]
        if left_out:
            st.warning(common.left_out_message(left_out), icon=":material/warning:")
        st.info("No discrete runs yet: launch a named comparison above, or start one on the "
                "Search page (run kind: discrete).")
        return
    asked, left_out = common.requested(text, runs, problems, MAX_RUNS)
    chosen = st.multiselect("runs", runs, default=asked or default_choice(summaries),
                            max_selections=MAX_RUNS, key=f"strategies:{','.join(asked)}",
                            help="discrete runs, newest first; grouped by strategy. The URL "
                                 "keeps the choice")
    if ",".join(chosen) != text:
        st.query_params["runs"] = ",".join(chosen)
    if left_out:
        st.warning(common.left_out_message(left_out), icon=":material/warning:")
    if not chosen:
        st.info("Pick discrete runs to compare.")
        return
    group_feed.follow_group(chosen, draw, key="strategies")


page()
