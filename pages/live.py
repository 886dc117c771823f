"""Live view of one run (`?run=ID`): controls, progress, α heatmap, cell graphs, curves,
collapse diagnostics and the live parameters; for a discrete run its evaluations, the
strategy's state and the incumbent (`pages/ui/discrete_panel.py`).

Only the progress line polls, from the browser (about once a second while the run can change by
itself, never otherwise: `progress_feed`). A new record reruns the fragment with the charts; a
new state, epoch or live change reruns the page. The charts thus cost the search one rebuild per
record, not one per poll.
"""

from __future__ import annotations

import math

import streamlit as st

from nas_engine import config as cfg
from nas_engine import viz
from nas_engine.live import live_parameters
from nas_engine.runner import Run
from nas_engine.snapshot import Snapshot
from nas_engine.states import RunState
from pages.ui import common, panels, progress_feed
from pages.ui.discrete_panel import discrete_panel


def unit(snap: Snapshot) -> str:
    """What one step of the run is, as the controls name it: a discrete run steps (and
    branches, and counts its budget) by evaluation; the others by step and epoch."""
    return "evaluation" if snap.config.kind == "discrete" else "step"


def controls(run: Run, snap: Snapshot) -> None:
    """The same controls for every run kind: what each state allows (RunState) decides which
    are enabled. A discrete run's step is one evaluation, and so is its epoch: it has no
    Epoch button."""
    state = snap.state
    cols = st.columns([1, 1, 1, 1.2, 1, 1, 1.6, 1.4])
    steps_key = f"nsteps:{run.run_id}"
    what = unit(snap)
    cols[3].number_input("steps", min_value=1, max_value=10_000, value=1, key=steps_key,
                         label_visibility="collapsed", help=f"how many {what}s Step runs")
    buttons = [  # column, label, icon, action, enabled, help
        (0, "Pause", "pause", (run.pause,), state is RunState.RUNNING,
         f"pause after the current {what}"),
        (1, "Resume", "play_arrow", (run.resume,), state is RunState.PAUSED, None),
        (2, "Step", "skip_next", (_step, run, steps_key), state is RunState.PAUSED,
         f"run this many {what}s, then pause"),
        *([(4, "Epoch", "fast_forward", (run.step_epoch,), state is RunState.PAUSED,
            "run to the end of this epoch, then pause")] if what == "step" else []),
        (5, "Stop", "stop", (run.stop,), state.is_live,
         "checkpoint and end the run (Continue picks it up again)"),
    ]
    for col, label, icon, action, enabled, tip in buttons:
        cols[col].button(label, icon=f":material/{icon}:", on_click=common.call, args=action,
                         disabled=not enabled, help=tip, width="stretch")
    with cols[6].popover("Live parameters", icon=":material/tune:", width="stretch",
                         help="change learning rates, regulariser weights or the speed limit "
                              "while the run goes on"):
        live_fields(run, snap)
    if state.can_continue:
        cols[7].button("Continue", icon=":material/replay:", on_click=common.call,
                       args=(common.continue_run, run), help="resume from the newest checkpoint",
                       width="stretch")
    else:
        with cols[7].popover("Branch", icon=":material/call_split:", width="stretch"):
            branch_form(run, snap)
    if snap.config.kind == "search":
        with st.popover("Retrain this cell", icon=":material/model_training:",
                        help="is the chosen cell any good? train it alone from scratch and "
                             "score it on held-out images"):
            retrain_form(run, snap)


def retrain_form(run: Run, snap: Snapshot) -> None:
    """A `train` run of the cell derived now or at a finished epoch, on the hard offline task:
    the supernet's accuracy does not say how good its cell is; retraining does."""
    cells = common.recorded_cells(snap)
    if not cells:
        st.info("The cell appears with the first record.")
        return
    moment = st.selectbox("the cell of", list(cells), index=len(cells) - 1,
                          key=f"retrain-at:{run.run_id}")
    profile = st.selectbox("profile", list(cfg.TRAIN_PROFILES), key=f"retrain-p:{run.run_id}",
                           help="classroom: minutes on 2 CPU cores; paper: the published "
                                "recipe (a GPU's days)")
    seed = st.number_input("seed", min_value=0, value=snap.config.seed, step=1,
                           key=f"retrain-s:{run.run_id}")
    st.caption("On digits_clutter (the offline task where cells differ), scored on its "
               "held-out test images; a cell trained before comes back from the database.")
    if st.button("Retrain", icon=":material/model_training:", type="primary",
                 key=f"retrain-go:{run.run_id}"):
        epoch, step, genotype = cells[moment]
        try:
            child = common.retrain_run(run, genotype, epoch, step, profile, int(seed))
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            st.error(str(exc))
            return
        st.switch_page(common.LIVE, query_params={"run": child.run_id})


def _step(run: Run, steps_key: str) -> None:
    """The step count as typed when the button is pressed (not as last drawn)."""
    run.step(int(st.session_state[steps_key]))


def branch_form(run: Run, snap: Snapshot) -> None:
    """A new run from a checkpoint of this one, with other live settings or more epochs."""
    epochs = list(snap.checkpoint_epochs)
    discrete = unit(snap) == "evaluation"
    if not epochs:
        st.info("A branch starts after an evaluation; none has finished yet." if discrete else
                "A branch starts from the end of an epoch; none has finished yet.")
        return
    st.markdown("Start a **new run** from this one's checkpoint, changing live settings: the "
                + ("same strategy state (population, controller, random generator) up to "
                   "that point." if discrete else "same network, data order and α up to "
                   "that point."))
    epoch = st.select_slider("after evaluation" if discrete else "from the end of epoch",
                             epochs, value=epochs[-1], key=f"branch-epoch:{run.run_id}")
    changes: dict[str, float] = {}
    for name, parameter in live_parameters(snap.config).items():
        current = in_force(snap, name) or 0.0
        value = st.number_input(parameter.label, value=current, format="%g",
                                step=common.number_step(current), help=parameter.help,
                                key=field_key(f"branch:{run.run_id}:{name}", current))
        if not math.isclose(value, current, rel_tol=1e-5, abs_tol=1e-12):
            changes[name] = value
    total = st.number_input("evaluations in all (the budget)" if discrete else "epochs in all",
                            min_value=1, value=snap.config.epochs,
                            key=f"branch-epochs:{run.run_id}")
    if total != snap.config.epochs:
        changes["epochs"] = int(total)
    if st.button("Branch and start", icon=":material/call_split:", type="primary",
                 key=f"branch-go:{run.run_id}"):
        try:
            child = common.branch_run(run, int(epoch), changes)
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            st.error(str(exc))
            return
        st.switch_page(common.LIVE, query_params={"run": child.run_id})


def in_force(snap: Snapshot, name: str) -> float | None:
    """Live parameter `name` in force, as its field shows it (a cosine lr is
    0.007000000000000001); None where the run has no value for it."""
    current = snap.live.get(name)
    return None if current is None else float(f"{current:.6g}")


def field_key(prefix: str, current: float | None) -> str:
    """A live parameter's field starts from the value in force and its key names that value: a
    new value in force (a schedule, another tab) makes a new field that shows it, and a
    person's edit stays until then. (Setting the field through the session instead fails in a
    popover: the browser draws a field only when its popover opens, and a field drawn then
    starts from its default and sends that back as an edit; Streamlit 1.67.)"""
    return f"{prefix}:{current}"


def _set_live(run: Run, name: str, key: str) -> None:
    try:
        run.set(name, st.session_state[key])
        st.session_state.pop(f"error:{key}", None)
    except (ValueError, RuntimeError) as exc:
        st.session_state[f"error:{key}"] = str(exc)


def live_fields(run: Run, snap: Snapshot) -> None:
    """One field per live parameter (see `field_key`); an edit goes to the run and shows under
    the field once the run has applied it. They sit in a popover beside Branch, so the charts
    get the page's width; `in_force_line` shows the values in force on the page itself."""
    st.caption("They apply from the next step; the value in force is shown under each.")
    over = not snap.state.is_live
    for name, parameter in live_parameters(snap.config).items():
        current = in_force(snap, name)
        key = field_key(f"live:{run.run_id}:{name}", current)
        st.number_input(parameter.label, value=current, format="%g", help=parameter.help,
                        key=key, step=common.number_step(current or 0.0),
                        on_change=_set_live, args=(run, name, key),
                        disabled=over or current is None)
        error = st.session_state.get(f"error:{key}")
        if error:
            st.error(error)
        st.caption("in force: –" if current is None else f"in force: {current:g}")


def in_force_line(snap: Snapshot) -> None:
    """The live parameters in force, on one line (their fields are in the popover); a speed
    limit of 0 (full speed) is left out (`Snapshot.live_in_force`)."""
    shown = snap.live_in_force
    values = [f"{parameter.label} **{value:g}**"
              for name, parameter in live_parameters(snap.config).items()
              if name in shown and (value := in_force(snap, name)) is not None]
    if values:
        st.caption("In force: " + " · ".join(values))


def one_shot_note(snap: Snapshot) -> None:
    """What a one-shot (SPOS) search shows instead of collapse signals: α is not trained, so
    the heatmap and the derived cell are no choice; the draws per op say what was trained."""
    counts = [n for rows in ((snap.latest or {}).get("path_counts") or {}).values()
              for row in rows for n in row]
    drawn = (f" Draws of each op on each edge so far: {min(counts)}–{max(counts)}."
             if counts else "")
    st.info("**One-shot supernet (SPOS).** Each step trains one path, every edge's op drawn "
            "uniformly at random; α is not trained, so the heatmap stays at the uniform weight "
            "and no collapse signal applies. The cell drawn is the path drawn most often, not "
            "a choice: rank cells by their inherited accuracy "
            "(`nas_engine.evaluation.inherited`)." + drawn, icon=":material/casino:")


def live_panel(snap: Snapshot) -> None:
    """What each record changes: the values in force, diagnostics, α and the curves (a retrain:
    its result, the curves)."""
    in_force_line(snap)
    if snap.config.kind == "discrete":
        discrete_panel(snap, key="live")
        return
    if snap.config.kind == "train":
        panels.retrain_result(snap)
        panels.curves_panel(snap, key="live")
        return
    if snap.config.strategy.name in cfg.ONE_SHOT_STRATEGIES:
        one_shot_note(snap)
    else:
        panels.diagnostics_strip(snap)
    point = viz.latest_point(snap)
    if point is None:
        st.info("The α heatmap appears as soon as the supernet is built.")
    else:
        st.markdown(f"**Architecture weights α** · {point.label}")
        panels.arch_panel(snap, point, key="live")
    panels.curves_panel(snap, key="live")


@common.page("The live view could not be shown")
def page() -> None:
    st.title(":material/monitoring: Live view")
    common.show_flash()
    run = common.pick_run()
    if run is None:
        return
    snap = run.snapshot()
    panels.run_header(snap)
    controls(run, snap)
    progress_feed.follow(run, snap, live_panel)
    if snap.config.kind == "discrete":
        st.page_link(common.STRATEGIES, query_params={"runs": run.run_id},
                     icon=":material/leaderboard:",
                     label="Set this run beside others of other strategies or seeds")
        return
    st.page_link(common.INSPECT, query_params={"run": run.run_id}, icon=":material/download:",
                 label="Scrub back through this run, or export its cell and metrics, in the "
                       "collapse inspector")


page()
