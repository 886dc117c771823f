"""Configure and launch a search. Settings come in two groups, as TensorFlow Playground shows
them: *restart* settings fix the network and the data (a change needs a new run), *live* ones
can also be changed while the run goes (Live view). Every value is checked by the engine's own
validation, and its message appears under the field it names; Start waits until all are valid.
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from nas_engine import config as cfg
from nas_engine import discrete_viz, viz
from nas_engine.catalog import CELL_SPACES, IMAGE_DATASETS, TABULAR_DATASETS
from nas_engine.components.regularizers import REGULARIZERS
from nas_engine.config import ConfigError, SearchConfig
from nas_engine.discrete import DISCRETE_STRATEGIES
from nas_engine.live import LiveParameter, live_parameters
from nas_engine.spaces import make_space
from nas_engine.strategies import STRATEGIES
from pages.ui import common
from pages.ui.panels import vega_chart

DEFAULTS = "(defaults)"
KEY = "cfg:"  # prefix of every widget key on this page (cleared when the preset changes)
KINDS = ["search", "discrete"]
KIND_LABELS = {"search": "gradient search (DARTS family)",
               "discrete": "discrete search (random, evolution, REINFORCE)"}
DISCRETE_LABELS = {"random": "random search", "evolution": "regularized (aging) evolution",
                   "ga": "generational GA (seed 001)", "reinforce": "REINFORCE controller",
                   "gradient": "gradient (DARTS relaxation of the MLP)",
                   "zeroshot": "zero-shot (a proxy ranks, the best are trained)"}
MLP_CHOICES = (  # path, label, choices offered besides the preset's
    ("mlp.layers", "hidden layers", [1, 2, 3, 4, 5, 6, 8]),
    ("mlp.widths", "widths", [8, 16, 32, 64, 128, 256, 512, 1024]),
    ("mlp.learning_rates", "learning rates", [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001]),
    ("mlp.optimizers", "optimizers", list(cfg.MLP_OPTIMIZERS)),
    ("mlp.dropouts", "dropouts", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
)

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
                     "per edge), Fair DARTS (sigmoid mixing), SPOS (one-shot: one uniformly "
                     "drawn path per step, α not trained)",
    "strategy.order": "first: α steps on the current w; second: DARTS' unrolled step (about "
                      "twice the cost)",
    "label": "a word or two appended to the run's folder name",
    "kind": "gradient: one supernet learns α and the cell is derived from it; discrete: a "
            "strategy proposes whole architectures and each is trained and scored (through "
            "the evaluations database: one seen before costs nothing)",
    "mlp.ops": "the hidden layers' activations to choose among",
    "data.name:mlp": "regression1d: seed 001's noisy 1-D function; diabetes: scikit-learn's "
                     "(regression); digits_flat: the 8×8 digits as 64 numbers "
                     "(classification)",
    "discrete.strategy": "random: uniform proposals; evolution: mutate the best of a sample, "
                         "remove the oldest (Real et al. 2019); GA: seed 001's generations; "
                         "REINFORCE: an LSTM controller learns which choices score well; "
                         "zero-shot: a zero-cost proxy scores many untrained networks and "
                         "the best are trained, best first (Mellor et al. 2021)",
    "discrete.proxy": "what ranks the candidates: one proxy, or vote (synflow, jacob_cov "
                      "and snip by mean rank)",
    "discrete.proxy_sample": "random architectures the proxy scores before any training "
                             "(Mellor et al.: 100)",
    "discrete.budget": "how many proposals to answer (a cache hit counts as one)",
    "discrete.seconds": "stop after this many seconds as well; 0 = no time limit",
    "discrete.profile": "how each candidate is trained: classroom (minutes on a CPU) or "
                        "paper (the published recipe)",
    "discrete.population": "evolution: members kept (NASLib: 30); GA: a generation's size",
    "discrete.sample": "evolution: members drawn for each tournament (NASLib: 10)",
    "discrete.controller_hidden": "the controller LSTM's width",
    "discrete.controller_lr": "Adam's learning rate for the controller",
    "discrete.baseline_decay": "the reward baseline's moving-average weight (0: the last "
                               "reward)",
    "mlp.per_layer_activation": "one activation decision per hidden layer instead of one for "
                                "all",
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


def run_kind(form: Form) -> str:
    """A gradient search (the DARTS family) or a discrete one (whole architectures proposed
    and each trained: random search, evolution, REINFORCE)."""
    current = form.default("kind")
    return form.add("kind", st.radio, "run kind", KINDS,
                    index=KINDS.index(current) if current in KINDS else 0, horizontal=True,
                    format_func=KIND_LABELS.get)


def pick(form: Form, path: str, label: str, options: list[str], key: str, **kwargs: Any
         ) -> Any:
    """A selectbox of `options` only, starting from the preset's value where it is one (else
    the first): what fits depends on other fields (the space's datasets), so the field is
    keyed by `key` and starts afresh when they change."""
    current = form.default(path)
    return form.add(path, st.selectbox, label, options, key=key,
                    index=options.index(current) if current in options else 0, **kwargs)


def restart_group(form: Form, kind: str) -> str:
    """The space, its ops and the data; a search's network and epochs. Returns the space."""
    left, right = st.columns(2)
    with left:
        spaces = [s for s in cfg.SPACE_OPS if kind == "discrete" or s in CELL_SPACES]
        space = pick(form, "space", "search space", spaces,
                     key="space" if kind == "search" else f"space:{kind}")
        space_ops = list(cfg.SPACE_OPS.get(space, ()))
        chosen = form.default("ops") if form.default("space") == space else space_ops
        form.add("ops", st.multiselect, "activations" if space == "mlp" else "candidate ops",
                 space_ops, default=[o for o in chosen or space_ops if o in space_ops],
                 key=f"ops:{space}", help=HELP["mlp.ops"] if space == "mlp" else None)
        datasets = list(TABULAR_DATASETS if space == "mlp" else IMAGE_DATASETS)
        dataset = pick(form, "data.name", "dataset", datasets,
                       key="data.name" if space != "mlp" else "data.name:mlp",
                       help=HELP["data.name:mlp"] if space == "mlp" else None)
        if cfg.DataConfig(name=dataset).reads_root:
            st.caption(data_note(dataset))
        if kind == "search":
            form.number("data.subset", "images used", placeholder="all", step=1)
            form.choice("strategy.name", "strategy", cfg.STRATEGIES,
                        format_func=lambda n: STRATEGIES[n].label if n in STRATEGIES else n)
            form.choice("strategy.order", "order", cfg.ORDERS)
    with right:
        if kind == "search":
            form.number("network.channels", "channels", step=2)
            if space == "nb201":
                form.number("network.cells_per_stage", "cells per stage")
            else:
                form.number("network.layers", "cells (layers)")
            form.number("epochs", "epochs")
            form.number("data.batch_size", "batch size")
        form.number("seed", "seed")
        # the device section's name (its key stays "device": links and tests name it so)
        form.choice("device.name", "device", cfg.DEVICES, key="device", help=HELP["device"])
    return space


def discrete_group(form: Form, space: str) -> None:
    """The strategy, its budget and its own settings; the MLP space's choices."""
    left, right = st.columns(2)
    offered = [s for s in cfg.DISCRETE_STRATEGIES if s in DISCRETE_STRATEGIES
               and (s != "gradient" or space == "mlp")]
    with left:
        strategy = pick(form, "discrete.strategy", "strategy", offered,
                        key="discrete.strategy", format_func=lambda n: DISCRETE_LABELS.get(n, n))
        budget = form.default("epochs") if form.default("kind") == "discrete" else \
            form.default("discrete.budget")
        form.add("epochs", st.number_input, "evaluations (the budget)", value=budget,
                 min_value=1, step=1, key="epochs:discrete", help=HELP["discrete.budget"])
        form.number("discrete.seconds", "time budget (s)", step=10.0, min_value=0.0)
        form.choice("discrete.profile", "candidates' training", tuple(cfg.TRAIN_PROFILES))
    with right:
        if strategy in ("evolution", "ga"):
            form.number("discrete.population", "population" if strategy == "evolution" else
                        "generation size", step=1)
        if strategy == "evolution":
            form.number("discrete.sample", "tournament sample", step=1)
        if strategy == "reinforce":
            form.number("discrete.controller_hidden", "controller width", step=1)
            form.number("discrete.controller_lr", "controller learning rate")
            form.number("discrete.baseline_decay", "baseline decay")
        if strategy == "zeroshot":
            form.choice("discrete.proxy", "proxy", cfg.ZERO_SHOT_PROXIES)
            form.number("discrete.proxy_sample", "architectures scored", step=1)
    if space == "mlp":
        mlp_choices(form)


def mlp_choices(form: Form) -> None:
    """Seed 001's decisions, each a list of choices to search among."""
    st.markdown("**The MLP space's choices** (each evaluation trains one pick of each)")
    columns = st.columns(3)
    for i, (path, label, more) in enumerate(MLP_CHOICES):
        current = list(form.default(path))
        options = sorted({*current, *more}) if path != "mlp.optimizers" else list(more)
        with columns[i % 3]:
            form.add(path, st.multiselect, label, options, default=current)
    form.add("mlp.per_layer_activation", st.toggle, "one activation per hidden layer",
             value=form.default("mlp.per_layer_activation"))


def data_note(dataset: str) -> str:
    """Where `dataset` comes from: the folder the server was started with, never one typed
    here (a visitor must not make the server write or download anywhere)."""
    where = f"Read from the server's data folder `{common.data_dir()}`"
    if common.downloads_allowed():
        return f"{where}, and downloaded there if it is missing."
    return (f"{where}; this server downloads nothing ({common.DOWNLOAD_ENV}=1 when it starts "
            f"allows it), so the {dataset} files must be there.")


def declared(form: Form) -> dict[str, LiveParameter]:
    """The live parameters of the run kind and strategy chosen in the form (they depend on
    them)."""
    config = SearchConfig.from_dict(form.base)
    config.kind = form.changes.get("kind", config.kind)
    if config.kind == "discrete":
        chosen = form.changes.get("discrete.strategy", config.discrete.strategy)
        if chosen in DISCRETE_STRATEGIES:
            config.discrete.strategy = chosen
    else:
        chosen = form.changes.get("strategy.name", config.strategy.name)
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
    if form.changes.get("kind") == "discrete":
        return run_only
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


def decisions_preview(config: SearchConfig) -> None:
    """What a discrete search chooses among: its decisions and their choices."""
    rows = discrete_viz.decision_rows(config)
    count = math.prod(row["choices"] for row in rows)
    st.markdown(f"**What this search chooses**: {len(rows)} decisions, {count:,} choice "
                "vectors" + (" (activations below the depth change nothing)"
                             if config.mlp.per_layer_activation and config.space == "mlp"
                             else "") + ".")
    st.dataframe(rows, hide_index=True, key="decisions")


def preview(config: SearchConfig) -> None:
    """The α this search will start from: its shape follows the space and the ops chosen."""
    if config.kind == "discrete":
        decisions_preview(config)
        return
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
    kind = run_kind(form)
    space = restart_group(form, kind)
    if kind == "discrete":
        discrete_group(form, space)
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
