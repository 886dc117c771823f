"""Configure and launch a search. Settings come in two groups, as TensorFlow Playground shows
them: *restart* settings fix the network and the data (a change needs a new run), *live* ones
can also be changed while the run goes (Live view). Every value is checked by the engine's own
validation, and its message appears under the field it names; Start waits until all are valid.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from nas_engine import config as cfg
from nas_engine import viz
from nas_engine.components.regularizers import REGULARIZERS
from nas_engine.config import ConfigError, SearchConfig
from nas_engine.live import LiveParameter, live_parameters
from nas_engine.spaces import make_space
from nas_engine.strategies import STRATEGIES
from pages.ui import common
from pages.ui.panels import vega_chart

DEFAULTS = "(defaults)"
KEY = "cfg:"  # prefix of every widget key on this page (cleared when the preset changes)

HELP = {
    "space": "the cell to search: DARTS (2 inputs, 4 nodes, 14 edges, normal and reduce cells) "
             "or NAS-Bench-201 (4 nodes, 6 edges, one cell type)",
    "ops": "candidate ops on every edge (at least two besides none); fewer ops, faster steps",
    "data.name": "digits is bundled and works offline; the others are read from the "
                 "server's data folder",
    "data.subset": "use only this many images (empty: all); fewer images make a quicker, "
                   "harder search",
    "network.channels": "channels of the first cells; the main cost knob on a CPU",
    "network.layers": "cells in the DARTS supernet (reduction cells at 1/3 and 2/3)",
    "network.cells_per_stage": "NAS-Bench-201 cells per stage (the benchmark uses 5)",
    "epochs": "passes over the training half of the data",
    "data.batch_size": "images per step, for both the w step and the α step",
    "seed": "the same seed and settings give the same search",
    "device": "auto picks a GPU when there is one",
    "strategy.name": "how w and α are updated: DARTS (softmax mixing), PC-DARTS (partial "
                     "channels), NASP (proximal, one op per edge), GDAS (one Gumbel-sampled op "
                     "per edge), Fair DARTS (sigmoid mixing)",
    "strategy.order": "first: α steps on the current w; second: DARTS' unrolled step (about "
                      "twice the cost)",
    "label": "a word or two appended to the run's folder name",
    "other": "any other setting by its dotted name, one key=value per line, as the CLI's --set "
             "(e.g. record.log_every=2, mitigations.aux_skip=true)",
}


class Form:
    """Widgets that remember where their error goes: a slot right under each field."""

    def __init__(self, base: SearchConfig) -> None:
        self.base = base.to_dict()
        self.changes: dict[str, Any] = {}
        self.slots: dict[str, Any] = {}
        self.typed: set[str] = set()  # settings given in "other settings"

    def show_errors(self, errors: dict[str, str]) -> None:
        """Each message under its field (a typed setting's under the text), the rest here."""
        by_slot: dict[str | None, list[str]] = {}
        for path, message in errors.items():
            slot = path if path in self.slots else "other" if path in self.typed else None
            by_slot.setdefault(slot, []).append(message)
        for slot, messages in by_slot.items():
            (self.slots[slot] if slot else st).error("\n\n".join(messages))

    def default(self, path: str) -> Any:
        node: Any = self.base
        for part in path.split("."):
            node = node[part]
        return node

    def add(self, path: str, widget: Any, *args: Any, key: str | None = None, **kwargs: Any
            ) -> Any:
        kwargs.setdefault("help", HELP.get(path))
        value = widget(*args, key=KEY + (key or path), **kwargs)
        self.slots[path] = st.empty()
        self.changes[path] = value
        return value

    def choice(self, path: str, label: str, options: tuple[str, ...] | list[str], **kwargs: Any
               ) -> Any:
        current = self.default(path)
        options = list(options) if current in options else [current, *options]
        return self.add(path, st.selectbox, label, options, index=options.index(current),
                        **kwargs)

    def number(self, path: str, label: str, **kwargs: Any) -> Any:
        value = self.default(path)
        if isinstance(value, float):
            kwargs.setdefault("format", "%g")
            kwargs.setdefault("step", common.number_step(value))
        return self.add(path, st.number_input, label, value=value, **kwargs)


def restart_group(form: Form) -> None:
    left, right = st.columns(2)
    with left:
        space = form.choice("space", "search space", tuple(cfg.SPACE_OPS))
        space_ops = list(cfg.SPACE_OPS.get(space, ()))
        chosen = form.default("ops") if form.default("space") == space else space_ops
        form.add("ops", st.multiselect, "candidate ops", space_ops,
                 default=[o for o in chosen or space_ops if o in space_ops], key=f"ops:{space}")
        dataset = form.choice("data.name", "dataset", cfg.DATASETS)
        if cfg.DataConfig(name=dataset).reads_root:
            st.caption(data_note(dataset))
        form.number("data.subset", "images used", placeholder="all", step=1)
        form.choice("strategy.name", "strategy", cfg.STRATEGIES,
                    format_func=lambda n: STRATEGIES[n].label if n in STRATEGIES else n)
        form.choice("strategy.order", "order", cfg.ORDERS)
    with right:
        form.number("network.channels", "channels", step=2)
        if space == "nb201":
            form.number("network.cells_per_stage", "cells per stage")
        else:
            form.number("network.layers", "cells (layers)")
        form.number("epochs", "epochs")
        form.number("data.batch_size", "batch size")
        form.number("seed", "seed")
        form.choice("device", "device", cfg.DEVICES)


def data_note(dataset: str) -> str:
    """Where `dataset` comes from: the folder the server was started with, never one typed
    here (a visitor must not make the server write or download anywhere)."""
    where = f"Read from the server's data folder `{common.data_dir()}`"
    if common.downloads_allowed():
        return f"{where}, and downloaded there if it is missing."
    return (f"{where}; this server downloads nothing ({common.DOWNLOAD_ENV}=1 when it starts "
            f"allows it), so the {dataset} files must be there.")


def declared(form: Form) -> dict[str, LiveParameter]:
    """The live parameters of the strategy chosen in the form (they depend on it)."""
    chosen = form.changes.get("strategy.name", form.base["strategy"]["name"])
    config = SearchConfig.from_dict(form.base)
    config.strategy.name = chosen if chosen in STRATEGIES else config.strategy.name
    return live_parameters(config)


def live_group(form: Form) -> dict[str, float]:
    """Live settings: those with a config field start the run there; the rest (the speed
    limit) are set on the run before it starts. Returns the latter."""
    run_only: dict[str, float] = {}
    columns = st.columns(3)
    for i, (name, parameter) in enumerate(declared(form).items()):
        with columns[i % 3]:
            if parameter.config_path is not None:
                form.number(parameter.config_path, parameter.label, key=f"live:{name}",
                            help=parameter.help)
                continue
            value = st.number_input(parameter.label, value=0.0, format="%g",
                                    help=parameter.help, key=f"{KEY}live:{name}")
            form.slots[name] = st.empty()
            run_only[name] = value
    with st.expander("Regularizer schedules (how each weight moves over the search)"):
        st.caption("constant: the weight throughout; linear / cosine: a ramp from *start* "
                   "to the weight; aer: DARTS-AER's −weight → +weight.")
        for regularizer in REGULARIZERS:
            left, right = st.columns(2)
            path = f"regularizers.{regularizer.name}"
            with left:
                form.choice(f"{path}.schedule", f"{regularizer.label}: schedule", cfg.SCHEDULES)
            with right:
                form.number(f"{path}.start", f"{regularizer.label}: start")
    return run_only


def other_settings(form: Form) -> list[str]:
    """Settings typed as the CLI's `key=value` lines; returns why the lines that cannot be
    taken (they do not parse, or set the server's data folder) are refused. Their settings'
    errors show under the text too (`Form.show_errors`)."""
    text = st.text_area("other settings", key=KEY + "other", help=HELP["other"],
                        placeholder="record.log_every=2\nmitigations.aux_skip=true")
    form.slots["other"] = st.empty()
    refused = []
    for line in text.splitlines():
        if line.strip():
            try:
                path, value = cfg.parse_assignment(line)
            except ValueError as exc:
                refused.append(str(exc))
                continue
            if path in common.SERVER_SETTINGS:
                refused.append(f"{path} cannot be set here: the app reads datasets from the "
                               "server's data folder and downloads only where the server "
                               "allows it; pick the dataset above")
                continue
            form.changes[path] = value
            form.typed.add(path)
    return refused


def validate(base: SearchConfig, changes: dict[str, Any]) -> tuple[SearchConfig | None,
                                                                     dict[str, str]]:
    """The config, or the engine's message for every field that is wrong: each failing field
    is set back to its preset value and the rest checked again, so all errors show at once."""
    errors: dict[str, str] = {}
    pending = dict(changes)
    while True:
        try:
            config = base.with_changes(pending)
        except ConfigError as exc:
            path = exc.path
            errors[path] = str(exc)
            if path not in pending:
                return None, errors
            del pending[path]
            continue
        return (None if errors else config), errors


def preview(config: SearchConfig) -> None:
    """The α this search will start from: its shape follows the space and the ops chosen."""
    point = viz.uniform_point(config)
    ops = config.ops or []
    rows = next(iter(point.alphas.values())).shape[0]
    st.markdown(f"**The α heatmap of this search** starts flat: {rows} edges × {len(ops)} ops "
                f"per cell type, every op at 1/{len(ops)}.")
    labels = make_space(config).edge_labels()
    vega_chart(common.memo("search:preview", (config.space, *ops),
                           lambda: viz.alpha_heatmap(point, ops, labels)), key="preview")


def _reset_fields() -> None:
    for key in [k for k in st.session_state if str(k).startswith(KEY)]:
        del st.session_state[key]


@common.page("The search form failed")
def page() -> None:
    st.title(":material/rocket_launch: Configure and start a search")
    presets = [DEFAULTS, *cfg.PRESETS]
    name = st.selectbox("start from", presets, index=presets.index("classroom")
                        if "classroom" in presets else 0, key="preset", on_change=_reset_fields,
                        help="a preset fills every field below; change what you like")
    base = SearchConfig().validate() if name == DEFAULTS else cfg.preset(name)
    form = Form(base)
    st.subheader("Restart settings")
    st.caption("They fix the network and the data: changing one later means a new run.")
    restart_group(form)
    st.subheader("Live settings")
    st.caption("Their starting values; you can change them while the run goes, in the Live "
               "view.")
    run_only = live_group(form)
    with st.expander("Other settings"):
        refused = other_settings(form)
    label = st.text_input("label (optional)", key=KEY + "label", help=HELP["label"],
                          value=name if name != DEFAULTS else "")

    config, errors = validate(base, form.changes)
    if config is not None:
        config = common.served(config)
    if refused:
        errors["other"] = "\n\n".join(refused)
    parameters = declared(form)
    for name_, value in run_only.items():
        try:
            parameters[name_].validate(value)
        except ValueError as exc:
            errors[name_] = str(exc)
    form.show_errors(errors)
    if config is not None:
        preview(config)
        with st.expander("The full configuration"):
            st.json(config.to_dict(), expanded=False)
    if st.button("Start", type="primary", disabled=bool(errors) or config is None,
                 help="fix the fields marked in red first" if errors else None):
        common.start_run(config, label, {k: v for k, v in run_only.items() if v})


page()
