"""A guided lesson on skip-connect collapse: start the collapse preset, watch the skip count
grow, start its cured twin, try entropy regularisation on a branch, retrain both cells on the
hard task to see the supernet's ranking reversed, compare. The lesson's runs live in the URL
(`?run=A&cure=B&branch=C&retrain_demo=D&retrain_cure=E`), so a refresh or a shared link picks
the lesson up where it was.
"""

from __future__ import annotations

import streamlit as st

from nas_engine import config as cfg
from nas_engine import viz
from nas_engine.live import live_parameters
from nas_engine.runner import Run
from nas_engine.snapshot import Snapshot
from pages.ui import common, panels, progress_feed

DEMO_PRESET = "collapse-demo"
CURED_PRESET = "collapse-cured"
ENTROPY = "entropy_weight"
TRY_LAMBDA = 1.0  # the branch's starting suggestion: sharpen, and see what wins


def _watch(run: Run) -> None:
    progress_feed.follow(run, run.snapshot(), _records)


def _records(snap: Snapshot) -> None:
    panels.diagnostics_strip(snap)
    point = viz.latest_point(snap)
    if point is not None:
        panels.arch_panel(snap, point, key=f"lesson-{snap.run_id}")


def _run_from_url(key: str) -> Run | None:
    run_id = st.query_params.get(key)
    return common.open_run(run_id) if run_id else None


def _start(preset: str, key: str, seed: int | None = None) -> None:
    """A button that starts `preset` (on `seed`) and keeps the run in the URL under `key`."""
    if st.button(f"Start {preset}", type="primary", key=f"start:{key}"):
        config = cfg.preset(preset)
        if seed is not None:
            config = config.with_changes({"seed": seed})
        run = common.create_run(config, label=f"lesson-{key}")
        st.query_params[key] = run.run_id
        st.rerun()


def step_start() -> Run | None:
    st.subheader("1 · Start a search that collapses")
    st.markdown(f"The **{DEMO_PRESET}** preset searches a NAS-Bench-201 cell on the hard "
                "offline task (the bundled digits placed among clutter and noise) with three "
                "candidate ops per edge: `none`, `skip_connect` and `nor_conv_3x3` (R-DARTS' "
                "space S3, built to show collapse). Press start and keep this page open; the "
                "search runs in the background either way.")
    run = _run_from_url("run")
    if run is None:
        _start(DEMO_PRESET, "run")
        return None
    st.success(f"Your lesson run: `{run.run_id}`")
    st.page_link(common.LIVE, label="Open it in the full live view (pause, step, tune)",
                 query_params={"run": run.run_id}, icon=":material/monitoring:")
    return run


def step_watch(run: Run) -> None:
    st.subheader("2 · Watch the skip count grow")
    st.markdown("Keep an eye on **skip_connects in the cell** and on the red edges of the "
                "graph. In the heatmap, the `skip_connect` column brightens edge after edge "
                "while the convolutions fade: early on, an untrained convolution only adds "
                "noise, so passing the input through is the quickest way to a low loss *now*. "
                "Within a few epochs every edge of the cell is a skip_connect, and the cell "
                "the search would hand you has no convolution left.")
    _watch(run)


def step_cure(run: Run) -> Run | None:
    st.subheader("3 · Start its twin with a cure")
    st.markdown(f"**{CURED_PRESET}** is the same search on the same seed with one change: "
                "P-DARTS' dropout on skip_connect's output (0.95, fading to 0 over the search). "
                "A skip that often drops out is no longer the sure way to a low loss, so α "
                "stops favouring it while the convolutions learn, and they keep their edges.")
    child = _run_from_url("cure")
    if child is None:
        _start(CURED_PRESET, "cure", seed=run.config.seed)
        return None
    st.success(f"The cured twin: `{child.run_id}`")
    _watch(child)
    return child


def step_entropy(run: Run) -> Run | None:
    st.subheader("4 · Your turn: does entropy regularisation help?")
    st.markdown("Entropy of α is the usual first idea. **λ > 0** rewards decided edges: "
                "whichever op leads wins faster. Branch once skip_connect leads and it "
                "still takes every edge; set from the very start it can commit edges to "
                "`none` before anything has learnt, and leave a cell with no path through it. "
                "**λ < 0** rewards undecided ones: α flattens, and the cell follows whichever "
                "op the gradient favours at the moment. Here the gradient itself favours "
                "skip_connect, so the cell still collapses: entropy decides how sharply α "
                "follows the loss, not what the loss prefers. Branch the run and see.")
    child = _run_from_url("branch")
    if child is not None:
        st.success(f"Your branch: `{child.run_id}`")
        _watch(child)
        return child
    epochs = run.snapshot().checkpoint_epochs
    if not epochs:
        st.info("The branch button appears when the first epoch has ended.")
        return None
    lam = st.number_input("entropy weight λ", value=TRY_LAMBDA, format="%g", step=0.5,
                          help=live_parameters(run.config)[ENTROPY].help)
    if st.button(f"Branch at epoch {epochs[-1]} with λ = {lam:g}"):
        try:
            child = common.branch_run(run, epochs[-1], {ENTROPY: lam})
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            st.error(str(exc))
            return None
        st.query_params["branch"] = child.run_id
        st.rerun()
    return None


def _retrain(run: Run, key: str) -> Run | None:
    """The run's final cell retrained (its run id kept in the URL under `key`), or a button
    that starts it once the search has finished."""
    child = _run_from_url(key)
    if child is not None:
        return child
    snap = run.snapshot()
    cells = common.recorded_cells(snap)
    if snap.state.is_active or not cells:
        st.caption(f"`{run.run_id}`: the retrain button appears when the search has finished.")
        return None
    epoch, step, genotype = list(cells.values())[-1]
    if st.button(f"Retrain the cell of `{run.run_id}`", key=f"retrain:{key}"):
        child = common.retrain_run(run, genotype, epoch, step, "classroom", run.config.seed)
        st.query_params[key] = child.run_id
        st.rerun()
    return None


def _accuracy(snap: Snapshot, column: str) -> float | None:
    return snap.epochs.last(column) if len(snap.epochs) else None


def step_retrain(demo: Run, cured: Run) -> None:
    st.subheader("5 · Retrain both cells: is the better supernet the better cell?")
    st.markdown("By validation accuracy the collapsed supernet is usually ahead: passing "
                "inputs through is a quick way to a low loss. A supernet's accuracy is not the "
                "cell's, though. Retrain each derived cell from scratch on the same task and "
                "score it on held-out images no search has seen: does the supernet's ranking "
                "hold? A minute or two each on a laptop.")
    demo_train, cured_train = _retrain(demo, "retrain_demo"), _retrain(cured, "retrain_cure")
    rows = []
    for label, search, train in (("collapse-demo", demo, demo_train),
                                 ("collapse-cured", cured, cured_train)):
        if train is not None:
            progress_feed.follow(train, train.snapshot(), panels.retrain_result)
        result = None if train is None else _accuracy(train.snapshot(), "test_acc")
        rows.append({"search": label, "supernet val accuracy":
                     _accuracy(search.snapshot(), "val_acc"),
                     "retrained cell, test accuracy": result})
    st.dataframe(rows, hide_index=True)
    done = [r for r in rows if r["retrained cell, test accuracy"] is not None]
    if len(done) == 2 and None not in (done[0]["supernet val accuracy"],
                                       done[1]["supernet val accuracy"]):
        by_supernet = max(done, key=lambda r: r["supernet val accuracy"])["search"]
        by_cell = max(done, key=lambda r: r["retrained cell, test accuracy"])["search"]
        if by_supernet != by_cell:
            st.success(f"The ranking reverses: {by_supernet} has the better supernet, "
                       f"{by_cell} the better cell. Low supernet loss did not mean a good "
                       "architecture: collapse hides behind a good-looking curve.")
        else:
            st.info(f"{by_cell} wins both here: in this small network the stem and the "
                    "reduction cells carry much of the work, so a cell with few "
                    "convolutions can retrain nearly as well. The supernet's accuracy still "
                    "said nothing about that: only retraining did.")


def step_compare(runs: list[Run]) -> None:
    st.subheader("6 · Compare")
    st.markdown("Put them side by side: the same start, one setting apart. Which cell kept "
                "its convolutions? Which supernet has the lower validation loss, and does that "
                "make it the better architecture?")
    st.page_link(common.COMPARE, label=f"Compare the {len(runs)} runs",
                 query_params={"runs": ",".join(r.run_id for r in runs)},
                 icon=":material/compare_arrows:")


@common.page("The lesson failed")
def page() -> None:
    st.title(":material/school: Lesson: watching skip-connect collapse")
    st.markdown("1. start a search that collapses · 2. watch the skip count grow · 3. start its "
                "cured twin · 4. try entropy regularisation · 5. retrain both cells · "
                "6. compare")
    st.caption("About five minutes on a laptop. Runs going at once share the CPU, each at a "
               "fraction of the speed.")
    run = step_start()
    if run is None:
        return
    step_watch(run)
    cured = step_cure(run)
    branch = step_entropy(run)
    if cured is not None:
        step_retrain(run, cured)
    others = [r for r in (cured, branch) if r is not None]
    if others:
        step_compare([run, *others])


page()
