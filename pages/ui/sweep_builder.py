"""Building a sweep on the Sweeps page: a named sweep in one click, or a preset with one or two
settings and seeds. Every field goes through the engine's own parsing and validation
(`sweep.spec`), its message under the field it names, and Launch waits until all are valid.
Launch writes the sweep's folder and starts its driver as a process of its own on the local
Ray (`sweep.launch`), one trial per core but the one the app keeps.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from nas_engine import config as cfg
from nas_engine.device import cpu_threads
from nas_engine.sweep.folder import SweepFolder
from nas_engine.sweep.launch import start_driver
from nas_engine.sweep.phase import label
from nas_engine.sweep.presets import SWEEPS
from nas_engine.sweep.spec import SweepSpec, parse_grid, parse_seeds
from pages.ui import common

KEY = "sweep:"
SETTINGS = 2  # a phase diagram has two axes: two settings, or one and the seeds


def _served(spec: SweepSpec) -> SweepSpec:
    """The spec reading its data from the server's data folder (`common.served`)."""
    served = {"data.root": str(common.data_dir()), "data.download": common.downloads_allowed()}
    return dataclasses.replace(spec, changes={**spec.changes, **served})


def launch(spec: SweepSpec) -> None:
    """Write the sweep's folder, start its driver, and show it (its id goes into the URL)."""
    folder = SweepFolder.create(common.runs_dir(), _served(spec).validate(),
                                max_concurrent=cpu_threads(None))
    start_driver(folder)
    st.query_params["sweep"] = folder.sweep_id
    st.rerun()


def describe(spec: SweepSpec) -> str:
    grid = " × ".join(f"{k} ∈ {{{', '.join(map(label, vs))}}}" for k, vs in spec.grid.items())
    trials = len(spec.points())
    return (f"{spec.preset} · {grid or 'no grid'} × seeds {', '.join(map(str, spec.seeds))}: "
            f"{trials} trials" + (f", each cell retrained ({spec.retrain})" if spec.retrain
                                   else ""))


def named_panel(disabled: bool) -> None:
    name = st.selectbox("named sweep", list(SWEEPS), key=f"{KEY}named")
    spec = SWEEPS[name]
    st.caption(describe(spec))
    retrain = st.checkbox("retrain every trial's cell (classroom profile, about 70 s a "
                          "trial on one core)", key=f"{KEY}named-retrain")
    if st.button(f"Launch {name}", icon=":material/rocket_launch:", type="primary",
                 key=f"{KEY}launch-named", disabled=disabled):
        launch(dataclasses.replace(spec, retrain="classroom" if retrain else None))


def own_panel(disabled: bool) -> None:
    """A preset, up to two settings with their values, the seeds, the epochs."""
    offline = [n for n in cfg.PRESETS
               if cfg.PRESETS[n].get("data", {}).get("name", "digits") == "digits"]
    name = st.selectbox("preset", offline, key=f"{KEY}preset",
                        help="every trial starts from it")
    base = cfg.preset(name)
    problems = False
    grid: dict[str, list] = {}
    for i in range(SETTINGS):
        left, right = st.columns([2, 3])
        key = left.text_input(f"setting {i + 1}", value="optim.alpha_lr" if i == 0 else "",
                              key=f"{KEY}key{i}", placeholder="a dotted name, e.g. "
                              "regularizers.entropy.weight", help="empty: none")
        values = right.text_input("its values", value="0.003, 0.01, 0.03" if i == 0 else "",
                                  key=f"{KEY}values{i}", placeholder="comma-separated")
        if not key.strip():
            continue
        try:
            grid.update(parse_grid([f"{key.strip()}={values}"]))
        except ValueError as exc:
            st.error(str(exc), icon=":material/error:")
            problems = True
    left, right = st.columns(2)
    seeds_text = left.text_input("seeds", value="0-2", key=f"{KEY}seeds",
                                 help="e.g. 0-4 or 0,2,5: every point of the grid on each")
    epochs = right.number_input("epochs", min_value=1, max_value=1000, value=base.epochs,
                                key=f"{KEY}epochs")
    retrain = st.checkbox("retrain every trial's final cell (classroom profile)",
                          key=f"{KEY}retrain")
    try:
        seeds = parse_seeds(seeds_text)
    except ValueError as exc:
        left.error(str(exc), icon=":material/error:")
        seeds, problems = [], True
    spec = None
    if not problems:
        spec = SweepSpec(name, name, grid, seeds, {"epochs": int(epochs)},
                         "classroom" if retrain else None)
        try:
            spec.validate()
            st.caption(describe(spec))
        except ValueError as exc:
            st.error(str(exc), icon=":material/error:")
            spec = None
    if st.button("Launch", icon=":material/rocket_launch:", type="primary",
                 key=f"{KEY}launch-own", disabled=disabled or spec is None):
        launch(spec)


def launch_panel(expanded: bool, disabled: bool) -> None:
    with st.expander("Launch a sweep on the local Ray", icon=":material/play_arrow:",
                     expanded=expanded):
        named, own = st.tabs(["named sweep", "build one"])
        with named:
            named_panel(disabled)
        with own:
            own_panel(disabled)
        st.caption(f"Trials run {cpu_threads(None)} at a time (one torch thread each, one "
                   "core left to this app), each an ordinary run you can open, resume and "
                   "branch; the sweep goes on when the page closes.")
