"""What a discrete run's live view draws under its progress line, at every evaluation: where
the search stands, the incumbent's score against evaluations and seconds, the strategy's mind
(population or controller), and the incumbent drawn. Figures come from
`nas_engine.discrete_viz`; built once per evaluation for every tab (`common.memo`)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from nas_engine import discrete_viz as dv
from nas_engine.snapshot import Snapshot
from pages.ui.common import guarded, memo
from pages.ui.panels import vega_chart
from pages.ui.progress_feed import duration

MIND = {
    "evolution": "**The population** · aging evolution mutates the best of a random sample "
                 "and removes the oldest member, not the worst, so no lucky architecture "
                 "lives forever.",
    "ga": "**The generation** · the better half survives as elites; each newcomer is a "
          "crossover of two elites with one mutation.",
    "reinforce": "**The controller's probabilities** · one softmax per decision (the "
                 "analogue of α): each evaluation makes the choices it sampled more likely "
                 "when they beat the baseline.",
    "gradient": "**The relaxation's weights** · DARTS on the MLP: a softmax over each "
                "differentiable decision's choices after the supernet's search, every one "
                "derived by argmax (learning rate, optimiser and dropout are fixed: one-hot).",
}


@guarded("Where the search stands could not be shown")
def progress_strip(snap: Snapshot) -> None:
    """Evaluations against the budget, the incumbent's validation and test scores, the
    database's share, the time left."""
    latest = snap.latest or {}
    metric = dv.metric_of(snap)
    done, budget = len(snap.epochs), snap.config.epochs
    columns = st.columns(5)
    columns[0].metric("evaluations", f"{done} of {budget}", border=True,
                      help="proposals answered; a step of this run is one evaluation")
    columns[1].metric(f"best val {dv.score_name(metric)}",
                      dv.score_text(latest.get("best_score"), metric), border=True,
                      help="the incumbent's score on the validation part (what the strategy "
                           "sees)")
    columns[2].metric(f"its test {dv.score_name(metric)}",
                      dv.score_text(latest.get("best_test_score"), metric), border=True,
                      help="the incumbent's held-out figure (no strategy sees it)")
    hits = latest.get("cache_hits", 0)
    columns[3].metric("cache hits", f"{hits} of {done}", border=True,
                      help="evaluations the evaluations database answered: an architecture "
                           "trained before (by this run or any other) costs a lookup")
    if snap.is_active and snap.eta_s:
        columns[4].metric("time left", f"about {duration(snap.eta_s)}", border=True,
                          help="from the recent evaluations' pace")
    else:
        seconds = float(snap.epochs.time_s[-1]) if done else 0.0
        columns[4].metric("time searched", duration(seconds), border=True)


@guarded("The best-so-far curves could not be drawn")
def curves(snap: Snapshot, key: str) -> None:
    """Best so far against evaluations and against seconds, side by side."""
    if not len(snap.epochs):
        st.info("The curves start with the first evaluation.")
        return
    stamp = (snap.run_id, len(snap.epochs))
    left, right = st.columns(2)
    for column, axis in ((left, "evaluations"), (right, "seconds")):
        with column:
            spec = memo(f"{key}:best:{axis}", stamp, lambda a=axis: dv.best_so_far_chart(snap, a))
            vega_chart(spec, key=f"{key}-best-{axis}")
    st.caption("Red: the best score so far (the incumbent). Points: every evaluation, orange "
               "where the database answered; a triangle on the lower edge is a score far below "
               "the rest (its value in the tooltip).")


@guarded("The strategy's state could not be drawn")
def mind(snap: Snapshot, key: str) -> None:
    """The population (evolution, GA) or the controller's probabilities (REINFORCE)."""
    strategy = snap.config.discrete.strategy
    stamp = (snap.run_id, len(snap.epochs))
    population = memo(f"{key}:population", stamp, lambda: dv.population_chart(snap))
    heatmap = memo(f"{key}:probabilities", stamp, lambda: dv.probability_heatmap(snap))
    if strategy == "zeroshot":
        ranking(snap)
        return
    if population is None and heatmap is None:
        if strategy == "random":
            st.caption("Random search keeps no state: every proposal is drawn afresh, "
                       "uniformly over the choices.")
        return
    st.markdown(MIND.get(strategy, f"**What {strategy} holds**"))
    if population is not None:
        vega_chart(population, key=f"{key}-population")
    if heatmap is not None:
        vega_chart(heatmap, key=f"{key}-probabilities")
        view = (snap.latest or {}).get("strategy") or {}
        baseline = view.get("baseline")
        metric = dv.metric_of(snap)
        where = "Along the most likely path; " if strategy == "reinforce" else ""
        st.caption(f"{where}darker = more probable. "
                   + ("" if baseline is None else
                      f"Baseline (moving average of the rewards): {baseline:.4g} "
                      f"({dv.score_title(metric)})."))


def ranking(snap: Snapshot) -> None:
    """Zero-shot search: the proxy's best candidates, the trained ones ticked."""
    view = (snap.latest or {}).get("strategy") or {}
    if not view.get("ranked"):
        return
    st.markdown(f"**The proxy's ranking** · {view['proxy']} scored {view['scored']} untrained "
                f"architectures in the first step; they are trained best first "
                f"({view['trained']} so far). The top {len(view['ranked'])}:")
    st.dataframe([{"rank": i + 1, "architecture": r["arch"], "proxy score": r["proxy_score"],
                   "trained": r["trained"]} for i, r in enumerate(view["ranked"])],
                 hide_index=True, width="stretch")


@guarded("The incumbent could not be drawn")
def incumbent(snap: Snapshot, key: str) -> None:
    """The best architecture so far: drawn, and as the text a retrain takes."""
    text = dv.incumbent(snap)
    if not text:
        return
    scores = np.asarray(snap.epochs.score, dtype=float)
    found = int(np.nanargmax(scores)) + 1 if len(scores) else None
    st.markdown(f"**The incumbent** · found at evaluation {found}")
    graphs = memo(f"{key}:incumbent", (snap.run_id, text), lambda: dv.incumbent_graphs(snap))
    columns = st.columns(len(graphs)) if len(graphs) > 1 else [st.container()]
    for column, graph in zip(columns, graphs.values()):
        column.graphviz_chart(graph)
    if snap.config.space != "mlp":
        st.caption("A discrete cell is a decided α: each kept edge holds its op at weight 1; "
                   "dashed grey edges are the ones the cell does not keep.")
    st.code(text, language="json" if snap.config.space == "mlp" else "python", wrap_lines=True)


def discrete_panel(snap: Snapshot, key: str) -> None:
    """Each part has its own error boundary: one figure failing leaves the others."""
    progress_strip(snap)
    curves(snap, key)
    mind(snap, key)
    incumbent(snap, key)
