"""Zero-cost proxies judged against the truth (issue 16): pick a sample of a space's cells and
the proxies; the page says how many cells still lack their retrained accuracy, Compute runs
`python -m nas_engine proxies` for them in a process of its own (`zero_cost_job`), and the page
follows it by re-reading the evaluations database. Once every cell has its truth: each
proxy's score against it, the ρ / τ table with 95 % intervals beside the published figures,
and each proxy's cost against one retrain. Numbers come from `nas_engine.proxies.study`,
figures from `nas_engine.proxies_viz`.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from nas_engine import proxies_viz as pv
from nas_engine.catalog import IMAGE_DATASETS
from nas_engine.config import parse_assignment
from nas_engine.evaluations import EvaluationsDB
from nas_engine.proxies.registry import PROXIES
from nas_engine.proxies.sample import SAMPLED_SPACES
from nas_engine.proxies.study import (
    ONE_SHOT,
    Column,
    OneShotSource,
    StudyPlan,
    StudyResult,
    missing_truth,
    plan_study,
    scored_cells,
    stored_one_shot,
    stored_study,
)
from pages.ui import common
from pages.ui.panels import vega_chart
from pages.ui.zero_cost_job import JobState, StudyJob, cli_arguments, plan_id

KEY = "zero-cost:"
DEFAULT_SAMPLE = 20
MAX_SAMPLE = 1000  # each cell is a classroom retrain: the note uses 200
DEFAULT_DATASET = "digits_clutter"  # the hard offline task, where cells differ
POLL_S = 3.0  # while a study computes, the page re-reads the database this often
GRID = 3  # scatters per row
ROW_PX = 35  # a dataframe row: the table is as tall as its rows


def settings(text: str) -> tuple[list[str], dict[str, Any], list[str]]:
    """The `key=value` lines typed (as the CLI's `--set` takes them), their changes, and why
    the lines that cannot be taken are refused."""
    lines, changes, refused = [], {}, []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        try:
            path, value = parse_assignment(line)
        except ValueError as exc:
            refused.append(str(exc))
            continue
        if path in common.SERVER_SETTINGS:
            refused.append(f"{path} cannot be set here: the app reads datasets from the "
                           "server's data folder; pick the dataset above")
            continue
        lines.append(line)
        changes[path] = value
    return lines, changes, refused


@dataclass(frozen=True)
class Picked:
    """The study picked on the form: its plan and the plan's id, the proxies, the settings'
    lines (for the command line) and the search run whose supernet gives the one-shot column
    (None: no such column)."""

    plan: StudyPlan
    plan_id: str
    proxies: list[str]
    lines: list[str]
    one_shot: str | None


def study_form() -> Picked | None:
    """The study picked, or None after one message per field that is wrong."""
    space_col, sample_col, seed_col, data_col = st.columns(4)
    space = space_col.selectbox("space", SAMPLED_SPACES, key=KEY + "space")
    sample = sample_col.number_input(
        "sample N", value=DEFAULT_SAMPLE, step=1, key=KEY + "sample",
        help=f"cells drawn, one per isomorphism class (1 to {MAX_SAMPLE}); the all-skip and "
             "all-conv extremes come on top. A larger sample reuses a smaller one's retrains")
    seed = seed_col.number_input("seed", min_value=0, value=0, step=1, key=KEY + "seed",
                                 help="the draw, the retrains' and the proxies' weights")
    dataset = data_col.selectbox("dataset", IMAGE_DATASETS,
                                 index=IMAGE_DATASETS.index(DEFAULT_DATASET), key=KEY + "data",
                                 help="the task the cells are retrained and scored on")
    proxies = st.multiselect("proxies", list(PROXIES), default=list(PROXIES),
                             key=KEY + "proxies",
                             help="the vote (mean rank) comes with synflow, jacob_cov and snip")
    supernets = [s.run_id for s in common.registry().list()
                 if s.kind == "search" and s.space == space and s.dataset == dataset and s.epoch]
    one_shot = st.selectbox(
        "one-shot supernet", [None, *supernets], key=KEY + "one-shot",
        format_func=lambda run_id: "none" if run_id is None else run_id,
        help="a search run of this space and dataset (best: the spos-clutter preset, a "
             "single-path supernet) whose weights score every cell without training it: the "
             "one-shot column, its inherited accuracy")
    with st.expander("Other settings"):
        text = st.text_area("other settings", key=KEY + "other",
                            placeholder="epochs=4\nnetwork.channels=8",
                            help="retrain settings as `train --set` takes them, one "
                                 "`key=value` a line; they key the truth apart, so other "
                                 "settings make another study")
    lines, changes, refused = settings(text)
    problems = [f"**other settings**: {reason}" for reason in refused]
    if not 1 <= sample <= MAX_SAMPLE:
        problems.append(f"**sample N** must be between 1 and {MAX_SAMPLE} (each cell is a "
                        f"retrain); got {sample}.")
    if not proxies:
        problems.append("**proxies**: pick at least one.")
    planned = None
    if not problems:
        def build() -> tuple[StudyPlan, str]:
            plan = plan_study(space, int(sample), int(seed), dataset, changes)
            return plan, plan_id(plan)

        try:
            planned = common.memo("zero-cost:plan", (space, sample, seed, dataset, *lines),
                                  build)
        except ValueError as exc:
            problems.append(f"**other settings**: {exc}")
    for problem in problems:
        st.error(problem, icon=":material/edit:")
    return None if planned is None else Picked(*planned, proxies, lines, one_shot)


def progress_line(plan: StudyPlan, missing: int, scored: dict[str, int], running: bool
                  ) -> None:
    """The cells with their truth and the scores present; a bar while the study computes."""
    total = len(plan.configs)
    scores = sum(scored.values())
    truth = (f"{missing} of {total} cells still lack ground truth (a classroom retrain each)"
             if missing else f"all {total} cells have their ground truth")
    text = f"{truth} · proxy scores: {scores} of {total * len(scored)}"
    if running:  # the retrains, then the (much quicker) scores
        done = scores / (total * len(scored)) if not missing else (total - missing) / total
        st.progress(done, text=f"Computing in the background · {text}")
    else:
        st.markdown(text)


def failure(job: StudyJob, state: JobState) -> None:
    st.error(f"The computation failed (exit code {state.returncode}): {state.last_line}",
             icon=":material/error:")
    with st.expander("its log's last lines"):
        st.code("\n".join(job.log_lines(30)), language="text")


def results(result: StudyResult, stamp: tuple[Any, ...], left_out: list[str]) -> None:
    """The table, the cost chart and one scatter per column of a study."""
    if left_out:
        st.caption(f"Not shown until every cell has its score: {', '.join(left_out)}.")
    if not result.columns():
        st.info("Every cell has its ground truth; the proxy scores are still missing "
                "(Compute scores them, in seconds).")
        return
    st.subheader("Agreement with retrained accuracy")
    table = common.memo("zero-cost:table", stamp, lambda: result.table(result.plan.seed))
    rows = pv.agreement_rows(result, table)
    number = st.column_config.NumberColumn(format="%+.2f")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="zero-cost-table",
                 height=ROW_PX * (len(rows) + 1) + 3, column_config={
                     "Spearman ρ": number, "Kendall τ": number,
                     pv.PUBLISHED_TITLE: st.column_config.TextColumn(
                         help="another task and dataset: all 15,625 NB201 cells trained on "
                              "CIFAR-10"),
                     "top-10 %": st.column_config.NumberColumn(
                         format="%.2f", width="small",
                         help="top-10 % overlap: of the best tenth by accuracy, the share the "
                              "score also puts in its best tenth"),
                     "undefined": st.column_config.NumberColumn(
                         width="small", help="cells without a score (NaN, ±inf, or not "
                                             "applicable), left out of the statistics"),
                     "ms / arch": st.column_config.NumberColumn(format="%.1f", width="small"),
                     "× cheaper": st.column_config.NumberColumn(
                         format="%.0f", width="small",
                         help="one retrain's milliseconds over this score's")})
    st.caption(f"Rank agreement of each score with the retrained test accuracy of "
               f"{len(result.truth)} cells; 95 % intervals from a paired bootstrap over the "
               "cells. *Published*: Spearman ρ (Abdelfattah et al. 2021; Kendall τ for "
               "NASWOT, Mellor et al. 2021) over every NB201 cell on CIFAR-10, another task "
               "and dataset: a point of orientation, not a target.")
    if ONE_SHOT not in result.extra:
        st.caption("**One-shot**: pick a supernet above (a search run; best a single-path "
                   "one, preset spos-clutter) and its inherited accuracy of each cell joins "
                   f"this table, the cost chart and the scatters as the column `{ONE_SHOT}`.")

    st.subheader("Cost against one retrain")
    vega_chart(common.memo("zero-cost:cost", stamp, lambda: pv.cost_chart(result)),
               key="zero-cost-cost")
    st.caption(f"Milliseconds to score one cell (log scale) beside one classroom retrain "
               f"({result.retrain_ms / 1e3:.1f} s, the sample's mean): the vote costs its "
               "three proxies together.")

    st.subheader("Each score against the truth")
    st.caption("One point per cell: its score before any training against its test accuracy "
               "after a classroom retrain; hover for the cell. A proxy that ranks well puts "
               "the points on a rising curve (ρ counts ranks, not a line). Red squares: the "
               "all-skip cell; green diamonds: all-conv.")
    columns = result.columns()
    for start in range(0, len(columns), GRID):
        for place, column in zip(st.columns(GRID), columns[start:start + GRID]):
            with place:
                vega_chart(common.memo("zero-cost:scatter", (*stamp, column),
                                       lambda c=column: pv.scatter_chart(result, c)),
                           key=f"zero-cost-scatter-{column}")


def follow(picked: Picked, was_running: bool) -> None:
    """Where the study stands, Compute, and the study as far as the database has it."""
    plan, proxies = picked.plan, picked.proxies
    runs = common.runs_dir()
    job = StudyJob(runs, picked.plan_id)
    state = job.state()
    if state.running != was_running:  # it started or ended: the page redraws (and polls or not)
        st.rerun()
    db = EvaluationsDB(runs)
    missing = len(missing_truth(db, plan))
    scored = scored_cells(db, plan, proxies)
    progress_line(plan, missing, scored, state.running)
    if state.returncode not in (None, 0):
        failure(job, state)
    one_shot = picked_one_shot(db, picked, runs)
    complete = (not missing and all(n == len(plan.configs) for n in scored.values())
                and (picked.one_shot is None or one_shot is not None))
    arguments = cli_arguments(plan, proxies, picked.lines, runs, one_shot=picked.one_shot)
    if st.button("Compute", icon=":material/play_arrow:", type="primary", key=KEY + "compute",
                 disabled=state.running or complete,
                 help="retrains the cells that lack ground truth and scores every proxy "
                      "(and the one-shot supernet's inherited accuracy), in a process of its "
                      "own; the page follows it"):
        try:
            job.start(arguments)
        except (RuntimeError, OSError) as exc:
            st.warning(f"Compute did not start: {exc}", icon=":material/warning:")
            return
        st.rerun()
    if missing == len(plan.configs) and not state.running:
        st.info(f"None of these {len(plan.configs)} cells has its ground truth yet: each needs "
                "a classroom retrain, stored in the evaluations database so that nothing is "
                "trained twice. Press Compute, or run it from a terminal:",
                icon=":material/info:")
        terminal = cli_arguments(plan, proxies, picked.lines, runs, quiet=False,
                                 one_shot=picked.one_shot)
        st.code(shlex.join(["python", "-m", "nas_engine", *terminal]), language="bash")
    stamp = (picked.plan_id, *proxies, missing, *scored.values(), picked.one_shot,
             one_shot is not None)
    result = common.memo("zero-cost:study", stamp, lambda: stored_study(db, plan, proxies))
    if result is not None:
        if one_shot is not None:  # a column like a proxy's in the table, the cost, the scatters
            result = dataclasses.replace(result, extra={ONE_SHOT: one_shot})
        results(result, stamp, [p for p in proxies if p not in result.scores])


def picked_one_shot(db: EvaluationsDB, picked: Picked, runs: Path) -> Column | None:
    """The picked supernet's stored column (None: none picked, or not every cell scored yet;
    a run that cannot score these cells says why)."""
    if picked.one_shot is None:
        return None
    try:
        source = OneShotSource.of(runs / picked.one_shot, picked.plan)
    except ValueError as exc:
        st.warning(f"**one-shot supernet**: {exc}", icon=":material/warning:")
        return None
    column = stored_one_shot(db, picked.plan, source)
    if column is None:
        st.caption(f"One-shot: {picked.one_shot}'s inherited accuracies are computed with the "
                   "study (Compute), after the ground truth.")
    return column


@common.page("The zero-cost page failed")
def page() -> None:
    st.title(":material/bolt: Zero-cost proxies")
    st.markdown("Can a network be judged **before it is trained**? Zero-cost proxies score an "
                "untrained cell from one batch in milliseconds. Here each is judged the only "
                "way that counts: how well it ranks a sample of cells the way their retrained "
                "accuracy does, and what it costs next to one retrain.")
    picked = study_form()
    if picked is None:
        return
    running = StudyJob(common.runs_dir(), picked.plan_id).state().running
    st.fragment(run_every=POLL_S if running else None)(
        common.guarded("The study could not be shown")(follow))(picked, running)


page()
