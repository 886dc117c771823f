"""Discrete runs in the app: the live view of finished and running discrete runs (figures hold
the records' numbers, the controls step one evaluation, branch and continue, the live
parameter reaches REINFORCE), the Compare strategies page (its table is `final_table`'s, and
that equals what the records give by hand), launching a named comparison, starting a discrete
run from the Search page, the home table, and the figures of `discrete_viz` on their own.

Nothing trains: every run's evaluator is a toy score of the architecture's text, so a run of
a dozen evaluations takes milliseconds, and the same architecture twice is a cache hit."""

from __future__ import annotations

import json
import statistics
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.requests import Request

import nas_engine.discrete.job as discrete_job
from nas_engine import comparison
from nas_engine import discrete_viz as dv
from nas_engine.config import SearchConfig
from nas_engine.discrete import DISCRETE_STRATEGIES
from nas_engine.discrete.decisions import decision_space
from nas_engine.discrete.evaluator import Scored
from nas_engine.runner import Run, RunRegistry
from nas_engine.snapshot import Snapshot
from nas_engine.spaces.genotypes import NB201Genotype, darts_from_text
from nas_engine.spaces.mlp import MlpArch
from pages.ui import group_feed
from pages.ui.common import registry, served
from tests.test_app import TIMEOUT, button, dot_sources, no_failure, on_page, progress
from tests.test_app_bad_inputs import plotly_array
from tests.test_viz import write_run

SMALL_MLP = {"mlp.layers": [1, 2], "mlp.widths": [8], "mlp.learning_rates": [0.01],
             "mlp.optimizers": ["adam"], "mlp.dropouts": [0.0], "ops": ["relu", "tanh"]}


def toy_score(text: str, mse: bool) -> float:
    """Deterministic in the architecture: convolutions help a cell, a hash splits ties; an
    MLP's (negated) MSE from its text."""
    tie = zlib.crc32(text.encode()) % 1000 / 1e5
    if mse:
        return -(0.1 + len(text) % 7 / 20 + tie)
    return text.count("conv") / 20 + tie


class ToyEvaluator:
    """Stands for `Evaluator`: scores from `toy_score`, a repeat is a cache hit; evaluation
    number `outlier_at` scores -800 (a diverging MLP's MSE)."""

    outlier_at: int | None = None

    def __init__(self, config: SearchConfig, runs_dir: Any = None, run_id: Any = None) -> None:
        self.mse = config.space == "mlp"
        self.seen: set[str] = set()
        self.calls = 0

    def __call__(self, text: str) -> Scored:
        self.calls += 1
        cached = text in self.seen
        self.seen.add(text)
        score = -800.0 if self.calls == self.outlier_at else toy_score(text, self.mse)
        return Scored(score, score - 0.05, "mse" if self.mse else "accuracy", 0.001, cached)


@pytest.fixture(autouse=True)
def toy_evaluations(monkeypatch):
    monkeypatch.setattr(discrete_job, "Evaluator", ToyEvaluator)


def discrete_config(strategy: str = "evolution", space: str = "nb201", epochs: int = 12,
                    seed: int = 0, **changes: Any) -> SearchConfig:
    data = {"data.name": "regression1d"} if space == "mlp" else {}
    return SearchConfig(space=space).with_changes({
        "kind": "discrete", "discrete.strategy": strategy, "discrete.population": 4,
        "discrete.sample": 2, "epochs": epochs, "seed": seed, "device": "cpu", "threads": 1,
        **data, **changes})


def finished_run(runs: Path, *args: Any, **kwargs: Any) -> Run:
    """A finished discrete run folder (as the CLI would leave it), opened from disk."""
    run = RunRegistry(runs).create(discrete_config(*args, **kwargs)).start()
    run.join(TIMEOUT)
    assert run.state == "finished", run.snapshot().message
    return Run.open(run.folder.path)


def evaluations(run: Run) -> list[dict]:
    return [r for r in run.folder.read_records() if r["kind"] == "evaluation"]


def datasets(at, name: str) -> list[dict[str, list]]:
    """Every Vega-Lite chart's dataset `name` on the page, as the browser receives it."""
    import pyarrow as pa

    found = []
    for chart in at.get("vega_lite_chart"):
        for d in chart.proto.datasets:
            if d.name == name:
                found.append(pa.ipc.open_stream(d.data.data).read_all().to_pydict())
    return found


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def check_evaluations_chart(data: dict[str, list], records: list[dict]) -> None:
    """A best-so-far chart's numbers are the records': every evaluation, the incumbent as the
    running maximum (never down), cache hits where the database answered."""
    assert data["evaluation"] == [r["index"] for r in records]
    assert data["score"] == pytest.approx([r["score"] for r in records])
    assert data["best"] == pytest.approx([r["best_score"] for r in records])
    assert data["best"] == pytest.approx(np.maximum.accumulate(data["score"]).tolist())
    assert all(b >= a for a, b in zip(data["best"], data["best"][1:]))
    assert data["seconds"] == pytest.approx([r["cost_s"] for r in records])
    assert data["how"] == ["cache hit" if r["cached"] else "trained" for r in records]


# -- the live view ---------------------------------------------------------------------------
def test_the_live_view_of_a_finished_evolution_run(app, tmp_path) -> None:
    run = finished_run(tmp_path / "runs", "evolution")
    records = evaluations(run)
    last = records[-1]
    app.run()
    at = on_page(app, "pages/live.py", run=run.run_id)
    no_failure(at)
    shown = metrics(at)
    assert shown["evaluations"] == "12 of 12"
    assert shown["best val acc"] == f"{last['best_score']:.3f}"
    assert shown["its test acc"] == f"{last['best_test_score']:.3f}"
    assert shown["cache hits"] == f"{last['cache_hits']} of 12"
    labels = [b.label for b in at.button]
    assert "Epoch" not in labels and button(at, "Stop").disabled and button(at, "Step").disabled
    line = progress(at)
    assert line["every_ms"] == 0 and line["line"]["fraction"] == 1.0
    assert line["line"]["text"].startswith("evaluation 12/12")
    assert any("discrete search: evolution" in c.value for c in at.caption)

    charts = datasets(at, "evaluations")
    assert len(charts) == 2  # against evaluations and against seconds: the same numbers
    for data in charts:
        check_evaluations_chart(data, records)
    (population,) = datasets(at, "population")
    members = last["strategy"]["population"]
    assert population["age"] == [m["age"] for m in members]
    assert population["score"] == pytest.approx([m["score"] for m in members])
    roles = population["role"]
    assert roles[int(np.argmax(population["score"]))] == "best"
    oldest = int(np.argmax(population["age"]))
    assert roles[oldest] in ("oldest: leaves next", "best")  # the population is full (P=4)

    (source,) = dot_sources(at)  # the incumbent's cell
    for op, _ in NB201Genotype.from_arch_str(last["best_arch"]).edges:
        if op != "none":
            assert f'label="{op} ' in source
    assert last["best_arch"] in [c.value for c in at.code]


def test_the_live_view_of_reinforce_shows_its_probabilities_and_its_live_parameter(
        app, tmp_path) -> None:
    """DARTS decisions have 1 to 10 choices: the heatmap holds each decision's row (summing
    to 1) with the space's labels, and both cells of the incumbent are drawn."""
    run = finished_run(tmp_path / "runs", "reinforce", space="darts", epochs=6)
    last = evaluations(run)[-1]
    app.run()
    at = on_page(app, "pages/live.py", run=run.run_id)
    no_failure(at)
    (heatmap,) = datasets(at, "probabilities")
    space = decision_space(run.config)
    rows = last["strategy"]["probabilities"]
    assert len(rows) == len(space) == 24
    for decision, row in zip(space.decisions, rows):
        mine = [i for i, d in enumerate(heatmap["decision"]) if d == decision.name]
        assert [heatmap["choice"][i] for i in mine] == [decision.label(k)
                                                         for k in range(len(row))]
        assert [heatmap["p"][i] for i in mine] == pytest.approx(row)
        assert sum(heatmap["p"][i] for i in mine) == pytest.approx(1.0, abs=1e-5)
    sizes = {len(row) for row in rows}
    assert min(sizes) == 1 and max(sizes) == 10  # padded to the widest in the figure's table

    caption = next(c.value for c in at.caption if c.value.startswith("In force:"))
    assert caption == "In force: controller entropy bonus **0.0001**"
    (entropy,) = [n for n in at.number_input
                  if n.key.startswith(f"live:{run.run_id}:entropy_weight:")]
    assert entropy.value == pytest.approx(1e-4) and entropy.disabled  # finished: nothing live
    genotype = darts_from_text(last["best_arch"])
    sources = dot_sources(at)
    assert len(sources) == 2
    for source, cell in zip(sources, (genotype.normal, genotype.reduce)):
        for op, _ in cell:
            assert f'label="{op} ' in source


def test_a_running_discrete_run_steps_by_evaluation_takes_live_changes_branches_and_continues(
        app) -> None:
    app.run()
    run = registry().create(served(discrete_config("reinforce", epochs=400))).start()
    run.pause()
    assert run.wait_for(lambda s: s.state == "paused", TIMEOUT)
    at = on_page(app, "pages/live.py", run=run.run_id)
    no_failure(at)
    held = run.snapshot().step
    assert held < 400
    at.number_input(key=f"nsteps:{run.run_id}").set_value(3)
    button(at, "Step").click().run()
    assert run.wait_for(lambda s: s.state == "paused" and s.step == held + 3, TIMEOUT)
    assert len(run.snapshot().epochs) == held + 3  # a step is one evaluation

    at.run()
    (entropy,) = [n for n in at.number_input
                  if n.key.startswith(f"live:{run.run_id}:entropy_weight:")]
    entropy.set_value(0.05).run()
    button(at, "Step").click().run()  # a change applies from the next evaluation on
    assert run.wait_for(lambda s: s.state == "paused" and s.step == held + 6, TIMEOUT)
    snap = run.snapshot()
    assert snap.live["entropy_weight"] == 0.05
    assert snap.live_changes[-1]["name"] == "entropy_weight"
    assert snap.latest["live"]["entropy_weight"] == 0.05

    at.run()
    no_failure(at)
    at.select_slider(key=f"branch-epoch:{run.run_id}").set_value(held + 3)
    (branch_entropy,) = [n for n in at.number_input
                         if n.key.startswith(f"branch:{run.run_id}:entropy_weight:")]
    branch_entropy.set_value(0.5)
    at.number_input(key=f"branch-epochs:{run.run_id}").set_value(held + 8)
    button(at, "Branch and start").click().run()
    no_failure(at)
    child = registry().get(at.query_params["run"])
    assert child.run_id != run.run_id
    assert child.wait_for(lambda s: s.state == "finished", TIMEOUT), child.snapshot().message
    assert child.snapshot().lineage == {"parent": run.run_id, "epoch": held + 3,
                                        "step": held + 3,
                                        "changes": {"epochs": held + 8, "entropy_weight": 0.5}}
    kept = evaluations(child)
    assert len(kept) == held + 8
    assert [r["arch"] for r in kept[:held + 3]] == [r["arch"] for r in evaluations(run)[
        :held + 3]]  # the parent's evaluations up to the branch point

    at = on_page(app, "pages/live.py", run=run.run_id)
    button(at, "Stop").click().run()
    assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)
    at.run()
    button(at, "Continue").click().run()
    no_failure(at)
    resumed = registry().get(run.run_id)
    assert resumed.state in ("running", "finished")
    resumed.stop()
    assert resumed.wait_for(lambda s: not s.state.is_live, TIMEOUT)
    assert resumed.snapshot().step >= held + 6


def test_the_live_view_of_an_mlp_run_draws_its_layers_and_its_cache_hits(app, tmp_path,
                                                                          monkeypatch) -> None:
    """Four MLPs in all: twelve evaluations are mostly cache hits. One evaluation diverges to
    an MSE of 800 and is drawn on the chart's lower edge."""
    monkeypatch.setattr(ToyEvaluator, "outlier_at", 2)
    run = finished_run(tmp_path / "runs", "random", space="mlp", **SMALL_MLP)
    records = evaluations(run)
    last = records[-1]
    assert last["cache_hits"] >= 8
    app.run()
    at = on_page(app, "pages/live.py", run=run.run_id)
    no_failure(at)
    shown = metrics(at)
    assert shown["best val MSE"] == f"{-last['best_score']:.4g}"
    assert shown["cache hits"] == f"{last['cache_hits']} of 12"
    data = datasets(at, "evaluations")[0]
    check_evaluations_chart(data, records)
    assert data["below"] == [i == 1 for i in range(12)]  # the outlier only, at the floor
    assert data["shown"][1] == min(data["shown"]) > -800
    (source,) = dot_sources(at)
    mlp = MlpArch.from_text(last["best_arch"])
    assert source.count("units") == mlp.layers
    for k, activation in enumerate(mlp.activations):
        assert f"layer {k + 1}" in source and activation in source
    assert f"trained with {mlp.optimizer}, lr {mlp.lr:g}" in source


# -- comparing strategies --------------------------------------------------------------------
def strategy_runs(runs: Path) -> list[Run]:
    return [finished_run(runs, strategy, seed=seed)
            for strategy in ("random", "evolution") for seed in (0, 1)]


def by_hand(runs: list[Run]) -> dict[str, dict[str, float]]:
    """The final table from the records alone."""
    finals = {r.run_id: evaluations(r) for r in runs}
    best_of_seed: dict[int, float] = {}
    for run in runs:
        seed = run.config.seed
        best_of_seed[seed] = max(best_of_seed.get(seed, -1e9), finals[run.run_id][-1]
                                 ["best_score"])
    table = {}
    for strategy in ("random", "evolution"):
        mine = [r for r in runs if r.config.discrete.strategy == strategy]
        best = [finals[r.run_id][-1]["best_score"] for r in mine]
        tests = []
        for r in mine:
            scores = [e["score"] for e in finals[r.run_id]]
            tests.append(finals[r.run_id][scores.index(max(scores))]["test_score"])
        table[strategy] = {
            "runs": len(mine), "mean": statistics.mean(best), "sd": statistics.stdev(best),
            "best": max(best),
            "wins": sum(b >= best_of_seed[r.config.seed] for r, b in zip(mine, best)),
            "test mean": statistics.mean(tests),
            "evaluations": statistics.mean(len(finals[r.run_id]) for r in mine),
            "cache hits": statistics.mean(sum(e["cached"] for e in finals[r.run_id])
                                          for r in mine),
            "seconds": statistics.mean(finals[r.run_id][-1]["cost_s"] for r in mine)}
    return table


def test_the_strategies_page_groups_runs_and_its_table_is_the_records(app, tmp_path) -> None:
    runs = strategy_runs(tmp_path / "runs")
    search = write_run(tmp_path / "runs", "nb201")
    ids = [r.run_id for r in runs]
    app.run()
    at = on_page(app, "pages/strategies.py", runs=",".join([*ids, search.run_id, "nope"]))
    assert not at.exception and not at.error
    assert [w.value for w in at.warning] == [
        f"Left out of the comparison: '{search.run_id}' (a search run, not a discrete one: "
        "see Compare runs); 'nope' (no such run)."]
    assert at.multiselect[0].value == ids
    assert at.query_params["runs"] == ",".join(ids)
    snaps = [r.snapshot() for r in runs]

    table = at.dataframe[0].value
    rows = comparison.final_table(snaps)
    hand = by_hand(runs)
    assert table["strategy"].tolist() == [r.strategy for r in rows] == ["random", "evolution"]
    for row, (_, shown) in zip(rows, table.iterrows()):
        expected = hand[row.strategy]
        for column, field in (("runs", "runs"), ("mean", "mean"), ("sd", "sd"),
                              ("best", "best"), ("wins", "wins"), ("test mean", "test_mean"),
                              ("evaluations", "evaluations"), ("cache hits", "cache_hits"),
                              ("seconds", "seconds")):
            assert shown[column] == pytest.approx(getattr(row, field)), column
            assert getattr(row, field) == pytest.approx(expected[column]), column
        assert shown["mean ± sd"] == f"{row.mean:.4f} ± {row.sd:.4f}"
    assert sum(table["wins"]) >= 2  # each seed has a winner (a tie: both)

    for axis in comparison.AXES:
        at.radio(key="strategies:axis").set_value(axis).run()
        (chart,) = at.get("plotly_chart")
        traces = json.loads(chart.proto.spec)["data"]
        curves = comparison.curves(snaps, axis)
        assert len(traces) == 3 * len(curves)  # band top, band bottom, mean
        for k, curve in enumerate(curves):
            high, low, mean = traces[3 * k: 3 * k + 3]
            assert mean["name"] == f"{curve.strategy} (2 runs)"
            np.testing.assert_allclose(plotly_array(mean["x"]), curve.x)
            np.testing.assert_allclose(plotly_array(mean["y"]), curve.mean)
            np.testing.assert_allclose(plotly_array(low["y"]), curve.low)
            np.testing.assert_allclose(plotly_array(high["y"]), curve.high)
            assert np.all(np.diff(curve.mean) >= 0)  # a mean of best-so-far curves
    assert progress(at)["every_ms"] == 0  # all finished: nothing to poll

    code, line = feed(ids)
    assert code == 200 and line["text"] == "48/48 evaluations · 4 finished"
    assert line["fraction"] == 1.0 and not line["active"]
    assert feed(["nope", "../etc"])[0] == 404


def feed(ids: list[str]) -> tuple[int, dict]:
    """The group progress feed's reply, as the strategies page's poll gets it."""
    (route,) = group_feed.ROUTES
    query = f"runs={','.join(ids)}".encode()
    reply = route.endpoint(Request({"type": "http", "query_string": query, "path_params": {}}))
    return reply.status_code, json.loads(reply.body)


def test_the_strategies_page_launches_a_named_comparison_and_follows_it(app, monkeypatch
                                                                        ) -> None:
    named = {**comparison.COMPARISONS["strategies-mlp"], "strategies": ["random", "evolution"],
             "seeds": [0, 1]}
    monkeypatch.setitem(comparison.COMPARISONS, "strategies-mlp", named)
    app.run()
    at = on_page(app, "pages/strategies.py")
    no_failure(at)
    assert any("No discrete runs yet" in i.value for i in at.info)
    at.selectbox(key="strategies:named").set_value("strategies-mlp")
    at.number_input(key="strategies:budget").set_value(5)
    button(at, "Launch").click().run()
    no_failure(at)
    ids = at.query_params["runs"].split(",")
    started = [registry().get(run_id) for run_id in ids]
    expected = comparison.comparison_configs("strategies-mlp", {"epochs": 5})
    assert [served(c).to_dict() for c in expected] == [r.config.to_dict() for r in started]
    line = progress(at)
    assert line["url"] == group_feed.group_url(ids)
    for run in started:
        assert run.wait_for(lambda s: s.state == "finished", TIMEOUT), run.snapshot().message
    at.run()
    no_failure(at)
    assert progress(at)["line"]["text"] == "20/20 evaluations · 4 finished"
    table = at.dataframe[0].value
    assert table["strategy"].tolist() == ["random", "evolution"]
    assert table["runs"].tolist() == [2, 2] and table["evaluations"].tolist() == [5, 5]


def test_pages_given_runs_of_another_kind_say_so(app, tmp_path) -> None:
    discrete = finished_run(tmp_path / "runs", "random")
    first, second = write_run(tmp_path / "runs", "nb201", seed=1), write_run(tmp_path / "runs",
                                                                            "nb201", seed=2)
    app.run()
    at = on_page(app, "pages/compare.py", runs=f"{first.run_id},{discrete.run_id},"
                                               f"{second.run_id}")
    assert not at.exception and not at.error
    assert [w.value for w in at.warning] == [
        f"Left out of the comparison: '{discrete.run_id}' (a discrete run: see Compare "
        "strategies)."]
    assert at.multiselect[0].value == [first.run_id, second.run_id]
    at = on_page(app, "pages/inspector.py", run=discrete.run_id)
    assert not at.exception and not at.error
    assert [i.value for i in at.info][0].startswith("A discrete run has no α to scrub")


# -- starting and listing ----------------------------------------------------------------------
def test_the_search_page_starts_a_discrete_mlp_run(app) -> None:
    at = app
    at.run()
    at.switch_page("pages/search.py").run()
    at.radio(key="cfg:kind").set_value("discrete").run()
    no_failure(at)
    gradient = "gradient (DARTS relaxation of the MLP)"  # on cells: a search run
    cells = at.selectbox(key="cfg:discrete.strategy").options
    assert len(cells) == len(DISCRETE_STRATEGIES) - 1 and gradient not in cells
    at.selectbox(key="cfg:space:discrete").set_value("mlp").run()
    no_failure(at)
    on_mlp = at.selectbox(key="cfg:discrete.strategy").options
    assert gradient in on_mlp and [o for o in on_mlp if o != gradient] == cells
    assert at.selectbox(key="cfg:data.name:mlp").value == "regression1d"
    at.selectbox(key="cfg:discrete.strategy").set_value("reinforce").run()
    assert at.number_input(key="cfg:live:entropy_weight").value == pytest.approx(1e-4)
    at.number_input(key="cfg:epochs:discrete").set_value(4)
    at.multiselect(key="cfg:mlp.widths").set_value([]).run()
    assert [e.value for e in at.error] == ["mlp.widths must be a non-empty list without "
                                           "repeats; got []"]
    assert button(at, "Start").disabled
    at.multiselect(key="cfg:mlp.widths").set_value([8, 16])
    at.multiselect(key="cfg:mlp.layers").set_value([1, 2])
    at.selectbox(key="cfg:device").set_value("cpu").run()
    no_failure(at)
    preview = at.dataframe[0].value
    assert preview["decision"].tolist() == ["layers", "width", "activation 1", "lr",
                                            "optimizer", "dropout"]
    assert preview["choices"].tolist()[:2] == [2, 2]
    button(at, "Start").click().run()
    no_failure(at)
    run = registry().get(at.query_params["run"])
    at.switch_page("pages/live.py")
    config = run.config
    assert (config.kind, config.space, config.discrete.strategy, config.epochs) == (
        "discrete", "mlp", "reinforce", 4)
    assert config.mlp.widths == [8, 16] and config.mlp.layers == [1, 2]
    assert config.data.name == "regression1d"
    assert run.wait_for(lambda s: s.state == "finished", TIMEOUT), run.snapshot().message


def test_the_home_table_shows_a_discrete_runs_incumbent(app, tmp_path) -> None:
    run = finished_run(tmp_path / "runs", "ga", space="mlp", **SMALL_MLP)
    last = evaluations(run)[-1]
    app.run()
    no_failure(app)
    table = app.dataframe[0].value
    assert table["kind"].tolist() == ["discrete"] and table["epoch"].tolist() == ["12/12"]
    assert table["retrained"].tolist() == [
        f"val MSE {-last['best_score']:.4g} · test {-last['best_test_score']:.4g}"]


# -- the figures alone -------------------------------------------------------------------------
def snapshot(runs: Path, *args: Any, **kwargs: Any) -> Snapshot:
    return finished_run(runs, *args, **kwargs).snapshot()


def test_probabilities_are_padded_to_the_widest_decision_and_each_row_sums_to_one(tmp_path
                                                                                  ) -> None:
    snap = snapshot(tmp_path, "reinforce", space="darts", epochs=3)
    table = dv.probabilities(snap)
    assert table.p.shape == (24, 10)
    np.testing.assert_allclose(np.nansum(table.p, axis=1), 1.0, atol=1e-5)
    for labels, row in zip(table.labels, table.p):
        assert [label == "" for label in labels] == np.isnan(row).tolist()
    assert dv.population_chart(snap) is None
    other = snapshot(tmp_path, "random", epochs=3)
    assert dv.probabilities(other) is None and dv.population_chart(other) is None


def test_the_ga_chart_ranks_its_generation_and_marks_the_elites(tmp_path) -> None:
    snap = snapshot(tmp_path, "ga", epochs=10)
    spec = dv.population_chart(snap)
    data = spec["datasets"]["population"]
    members = snap.latest["strategy"]["population"]
    assert data["role"] == ["elite (survivor)" if m["elite"] else "this generation"
                            for m in members]
    ranked = sorted(range(len(members)), key=lambda i: -members[i]["score"])
    assert [data["rank"][i] for i in ranked] == list(range(1, len(members) + 1))


def test_the_mlp_diagram_has_one_box_per_hidden_layer() -> None:
    arch = MlpArch(3, 64, ("relu", "tanh", "relu"), 0.001, "sgd", 0.2)
    source = dv.mlp_diagram(arch, "accuracy").source
    assert source.count("units") == 3 and "class scores" in source
    assert "trained with sgd, lr 0.001" in source and source.count("dropout 0.2") == 3
    assert source.count("->") == 4  # input → 3 layers → output


def test_a_diverged_start_does_not_flatten_the_comparison(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ToyEvaluator, "outlier_at", 1)  # each run's first MLP: MSE 800
    snaps = [snapshot(tmp_path, strategy, space="mlp", seed=seed)
             for strategy in ("random", "evolution") for seed in (0, 1)]
    curves = comparison.curves(snaps)
    assert min(c.low.min() for c in curves) == -800
    low, high = dv.strategy_curves(curves, "evaluations", "mse").layout.yaxis.range
    assert -800 < low < min(c.mean[-1] for c in curves) and high > max(c.high.max()
                                                                      for c in curves)


def test_the_group_line_counts_a_run_that_ended_early_as_done(app, tmp_path) -> None:
    early = finished_run(tmp_path / "runs", "random", **{"discrete.seconds": 1e-6})
    whole = finished_run(tmp_path / "runs", "random", seed=1)
    assert len(early.snapshot().epochs) < 12
    code, line = feed([early.run_id, whole.run_id])
    done = len(early.snapshot().epochs) + 12
    assert code == 200 and line["text"] == f"{done}/{done} evaluations · 2 finished"
    assert line["fraction"] == 1.0
