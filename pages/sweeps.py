"""Sweeps on Ray: build a grid from a preset (one or two settings × seeds) and launch it on
the local Ray, watch its trials (state, epoch, skip count), and read its phase diagram: a
setting against a setting or the seed, coloured by final skip count, retrained accuracy, λmax
or the alarm's epoch, each cell a link to its run. `?sweep=ID` keeps the sweep in the URL.
Rows come from `nas_engine.sweep.results`, the diagram from `nas_engine.sweep.phase`; the
sweep's driver is a process of its own (`nas_engine.sweep.launch`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from nas_engine.sweep import ray_missing
from nas_engine.sweep.folder import SweepFolder, list_sweeps
from nas_engine.sweep.launch import start_driver, stop_driver
from nas_engine.sweep.phase import VALUES, axis_values, label, phase_cells, phase_heatmap
from nas_engine.sweep.results import TrialRow, trial_rows
from nas_engine.sweep.spec import SEED_AXIS
from pages.ui import common, sweep_builder, sweep_feed
from pages.ui.panels import vega_chart


def trials_table(data: dict[str, Any], rows: list[TrialRow]) -> None:
    axes = [*data["grid"], SEED_AXIS]
    table = pd.DataFrame([{
        "open": f"live?run={r.run_id}" if r.run_id else None, "trial": r.index,
        **{a: label(r.point[a]) for a in axes}, "state": r.state,
        "epoch": f"{r.epoch or 0}/{r.epochs}", "skip count": r.skip_count,
        "val acc": r.val_acc, "λmax": r.lambda_max, "alarm epoch": r.alarm_epoch,
        "retrained": r.retrained, "message": r.message or ""} for r in rows])
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(table, hide_index=True, key="sweep-trials", column_config={
        "open": st.column_config.LinkColumn("open", display_text="open ↗",
                                            help="the trial's run in the live view"),
        "val acc": number, "retrained": st.column_config.NumberColumn(
            format="%.3f", help="the final cell's test accuracy, retrained from scratch"),
        "λmax": st.column_config.NumberColumn(format="%.3g")})


def phase_panel(data: dict[str, Any], rows: list[TrialRow], stamp: tuple[Any, ...]) -> None:
    """The phase diagram, with its two axes and its colour picked here."""
    axes = [*data["grid"], SEED_AXIS]
    if len(axes) < 2:
        st.info("A phase diagram needs two axes: a setting and seeds, or two settings.")
        return
    left, middle, right = st.columns(3)
    x = left.selectbox("x axis", axes, index=0, key="sweep:x")
    others = [a for a in axes if a != x]
    y = middle.selectbox("y axis", others, index=0, key="sweep:y")
    value = right.selectbox("colour", list(VALUES), format_func=lambda v: VALUES[v][0],
                            key="sweep:value")
    spec = common.memo("sweep:phase", (*stamp, x, y, value), lambda: phase_heatmap(
        phase_cells(rows, x, y, value), x, y, value, axis_values(data, x),
        axis_values(data, y)))
    vega_chart(spec, key="sweep-phase")
    pooled = [a for a in axes if a not in (x, y)]
    st.caption("Each square: its trials' mean" + (f" over {', '.join(pooled)}" if pooled else "")
               + " (in brackets how many have a value); grey: none yet. Click a square to open"
               " its run (several: the Compare page).")


def driver_panel(folder: SweepFolder, data: dict[str, Any]) -> None:
    """The driver's state, with Stop while it runs and Go on once it was cut short."""
    state = folder.driver_state()
    message = data.get("driver", {}).get("message")
    st.markdown(f"**{folder.sweep_id}** — driver {state}" + (f": {message}" if message else ""))
    if state == "running":
        st.button("Stop the sweep", icon=":material/stop:", key="sweep:stop",
                  on_click=common.call, args=(stop_driver, folder),
                  help="as Ctrl-C: running trials stop with a checkpoint; Go on resumes")
    elif state in ("interrupted", "failed") and not ray_missing():
        st.button("Go on", icon=":material/play_arrow:", key="sweep:resume",
                  on_click=common.call, args=(start_driver, folder),
                  help="only the unfinished trials run (Ray Tune restores the sweep)")


@common.page("The sweeps page failed")
def page() -> None:
    st.title(":material/grid_on: Sweeps")
    st.markdown("One run says little about collapse: outcomes differ by seed, and the "
                "questions are maps. A sweep runs a grid of settings × seeds as ordinary "
                "runs on Ray, one per core, and draws where skip_connect takes over.")
    common.show_flash()
    missing = ray_missing()
    if missing:
        st.info(missing[0].upper() + missing[1:], icon=":material/download:")
    sweeps = list_sweeps(common.runs_dir())
    sweep_builder.launch_panel(expanded=not sweeps, disabled=bool(missing))
    if not sweeps:
        st.info("No sweeps yet: launch one above, or from the command line "
                "(`python -m nas_engine sweep collapse-map`).")
        return
    ids = [s.sweep_id for s in sweeps]
    wanted = st.query_params.get("sweep")
    if wanted and wanted not in ids:
        st.warning(f"There is no sweep {common.shown_id(wanted)}. Pick one below.",
                   icon=":material/warning:")
        wanted = None
    chosen = st.selectbox("sweep", ids, index=ids.index(wanted) if wanted else 0,
                          key=f"sweep:pick:{wanted}", help="newest first; the URL keeps it")
    if chosen != wanted:
        st.query_params["sweep"] = chosen
    folder = sweep_feed.sweep_folder(chosen)
    if folder is None:
        st.warning(f"Sweep {common.shown_id(chosen)} is gone.", icon=":material/warning:")
        return

    def draw(data: dict[str, Any]) -> None:
        driver_panel(folder, data)
        stamp = (folder.sweep_id, sweep_feed.sweep_line(folder)["stamp"])
        rows = common.memo("sweep:rows", stamp, lambda: trial_rows(folder, data))
        st.subheader("Phase diagram")
        phase_panel(data, rows, stamp)
        st.subheader("Trials")
        trials_table(data, rows)

    sweep_feed.follow_sweep(folder, draw, key=folder.sweep_id)


page()
