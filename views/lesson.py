"""A guided lesson on skip-connect collapse: start the collapse preset, watch the skip count
grow, branch the run with entropy regularisation, compare the two. The lesson's runs live in
the URL (`?run=A&branch=B`), so a refresh or a shared link picks the lesson up where it was.
"""

from __future__ import annotations

import streamlit as st

from nas_engine import config as cfg
from nas_engine import viz
from nas_engine.live import LIVE_PARAMETERS
from nas_engine.runner import SearchRun
from views import common, panels

DEMO_PRESETS = ("collapse-demo", "classroom")  # the first one the config offers
CURED_PRESET = "collapse-cured"
ENTROPY = "entropy_weight"
FALLBACK_LAMBDA = -0.2  # keep edges undecided (REFERENCE.md §3: the tutorials' strength 0.2)


def _demo_preset() -> str:
    return next(name for name in (*DEMO_PRESETS, *cfg.PRESETS) if name in cfg.PRESETS)


def _cure_lambda() -> float:
    if CURED_PRESET in cfg.PRESETS:
        weight = cfg.preset(CURED_PRESET).to_dict().get("regularizers", {}).get(
            "entropy", {}).get("weight")
        if weight:
            return float(weight)
    return FALLBACK_LAMBDA


def _watch(run: SearchRun) -> None:
    snap = run.snapshot()
    common.follow(snap, panels.progress_line)
    panels.diagnostics_strip(snap, panels.last_epoch_record(run, snap))
    point = viz.latest_point(snap)
    if point is not None:
        panels.arch_panel(snap, point, key=f"lesson-{snap.run_id}")


def _run_from_url(key: str) -> SearchRun | None:
    run_id = st.query_params.get(key)
    return common.registry().get(run_id) if run_id else None


def step_start() -> SearchRun | None:
    st.subheader("1 · Start a search that collapses")
    name = _demo_preset()
    st.markdown(f"The **{name}** preset searches a DARTS cell on the bundled digits. Press "
                "start and keep this page open; the search runs in the background either way.")
    run = _run_from_url("run")
    if run is None:
        if st.button(f"Start {name}", type="primary"):
            run = common.registry().create(cfg.preset(name), label="lesson").start()
            st.query_params["run"] = run.run_id
            st.rerun()
        return None
    st.success(f"Your lesson run: `{run.run_id}`")
    st.page_link(common.LIVE, label="Open it in the full live view (pause, step, tune)",
                 query_params={"run": run.run_id}, icon=":material/monitoring:")
    return run


def step_watch(run: SearchRun) -> None:
    st.subheader("2 · Watch the skip count grow")
    st.markdown("Keep an eye on **skip_connects in the cell** and on the red edges of the "
                "graph. In the heatmap, the `skip_connect` column brightens edge after edge "
                "while the convolutions fade: the supernet learns that skipping is the quickest "
                "way to a low loss *now*, and every step it skips, the convolutions learn less.")
    _watch(run)


def step_branch(run: SearchRun) -> SearchRun | None:
    st.subheader("3 · Branch with entropy regularisation")
    st.markdown("A **branch** copies the run at the end of an epoch and continues it with other "
                "settings. With an entropy weight λ < 0 the α loss rewards *undecided* edges, "
                "so skip_connect cannot run away early.")
    child = _run_from_url("branch")
    if child is not None:
        st.success(f"Your branch: `{child.run_id}`")
        _watch(child)
        return child
    if ENTROPY not in LIVE_PARAMETERS:
        st.info("This engine has no entropy regulariser yet.")
        return None
    epochs = sorted(run.folder.checkpoints())
    if not epochs:
        st.info("The branch button appears when the first epoch has ended.")
        return None
    lam = st.number_input("entropy weight λ", value=_cure_lambda(), format="%g", step=0.05,
                          help=LIVE_PARAMETERS[ENTROPY].help)
    if st.button(f"Branch at epoch {epochs[-1]} with λ = {lam:g}", type="primary"):
        child = common.registry().branch(run.run_id, epochs[-1], {ENTROPY: lam}).start()
        st.query_params["branch"] = child.run_id
        st.rerun()
    return None


def step_compare(run: SearchRun, child: SearchRun) -> None:
    st.subheader("4 · Compare")
    st.markdown("Put the two side by side: the same start, one setting apart. Which cell "
                "kept its convolutions? Which supernet has the lower validation loss, and "
                "does that make it the better architecture?")
    st.page_link(common.COMPARE, label="Compare the two runs",
                 query_params={"runs": f"{run.run_id},{child.run_id}"},
                 icon=":material/compare_arrows:")


@common.guarded("The lesson failed")
def page() -> None:
    st.title(":material/school: Lesson: watching skip-connect collapse")
    st.markdown("1. start a search that collapses · 2. watch the skip count grow · 3. branch it "
                "with entropy regularisation · 4. compare the two")
    st.caption("About ten minutes on a laptop. Two runs going at once each run at about half "
               "speed.")
    run = step_start()
    if run is None:
        return
    step_watch(run)
    child = step_branch(run)
    if child is not None:
        step_compare(run, child)


page()
