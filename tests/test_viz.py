"""nas_engine.viz against numbers: figures hold exactly the snapshot's α, the DAG names every
candidate edge and the derived ops, the collapse measures are computed right, exports have one
row per record. The runs are written by hand (no training), so every value is known."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import graphviz
import numpy as np
import pytest

from nas_engine import viz
from nas_engine.config import SearchConfig
from nas_engine.diagnostics import mean_entropy
from nas_engine.history import History
from nas_engine.runner import Run
from nas_engine.spaces import make_space
from nas_engine.store import Recorder

PARAMETER_FREE = {"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"}
ALARM = {"rule": "darts+", "message": "2 or more skip_connects in the normal cell"}


def hessian_fields(epoch: int) -> dict:
    return {"hessian_max_eigenvalue": 0.25 * epoch, "hessian_method": "lanczos",
            "hessian_seconds": 0.01}


def write_run(root, space: str = "darts", epochs: int = 3, steps_per_epoch: int = 4,
              seed: int = 0, live_change_at: int | None = None, alarm_at: int | None = None
              ) -> Run:
    """A finished run folder with records made from seeded random α (no training), opened as
    the app opens a run from disk. λmax is measured every second epoch, the alarm
    fires at epoch `alarm_at` (ALARM) and stays."""
    config = SearchConfig().with_changes({"space": space, "epochs": epochs, "seed": seed,
                                          "record.log_every": 2})
    folder = Recorder.create(root, config, label=f"fake-{space}")
    model_space = make_space(config)
    rng = np.random.default_rng(seed)
    raw = {cell: rng.normal(0, 0.5, shape) for cell, shape in model_space.alpha_shapes().items()}
    for step in range(1, epochs * steps_per_epoch + 1):
        for cell in raw:  # drift toward skip_connect, as a collapse does
            raw[cell][:, config.ops.index("skip_connect")] += 0.3
            raw[cell] += rng.normal(0, 0.1, raw[cell].shape)
        probs = {c: np.exp(a) / np.exp(a).sum(-1, keepdims=True) for c, a in raw.items()}
        genotype = model_space.derive(probs)
        epoch_done = step % steps_per_epoch == 0
        record = {
            "kind": "step", "epoch": (step - 1) // steps_per_epoch, "step": step,
            "time_s": step * 0.5, "train_loss": 2.0 / step, "train_acc": 0.05 * step,
            "val_loss": 2.2 / step,
            "alphas": {c: p.tolist() for c, p in probs.items()},
            "alphas_raw": {c: a.tolist() for c, a in raw.items()},
            "genotype": model_space.genotype_dict(genotype),
            "skip_count": model_space.skip_count(genotype), "entropy": mean_entropy(probs),
            "live": {"w_lr": 0.025, "alpha_lr": 3e-4 if step <= (live_change_at or 10**9)
                     else 1e-2},
            "regularizers": {"entropy": {"weight": 0.1, "value": 0.01 * step}},
        }
        if live_change_at == step:
            folder.append_record({"kind": "live", "step": step + 1, "epoch": record["epoch"],
                                  "time_s": step * 0.5, "name": "alpha_lr", "value": 1e-2,
                                  "previous": 3e-4})
        if step % 2 == 0 and not epoch_done:
            folder.append_record(record)
        if epoch_done:
            epoch = step // steps_per_epoch
            fired = alarm_at is not None and epoch >= alarm_at
            folder.append_record({**record, "kind": "epoch", "epoch": epoch,
                                  "train_loss": 1.5 / step, "val_acc": 0.06 * step,
                                  **(hessian_fields(epoch) if epoch % 2 == 0 else {}),
                                  "alarm": {**ALARM, "epoch": alarm_at} if fired else None})
    folder.write_status("finished")
    folder.close()  # a finished run's writer lets go of its folder
    return Run.open(folder.path)


@pytest.fixture(scope="module")
def darts(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("runs"), "darts", live_change_at=5,
                     alarm_at=2).snapshot()


@pytest.fixture(scope="module")
def nb201(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("runs"), "nb201").snapshot()


def heatmap_arrays(alpha: dict[str, list]) -> dict[str, np.ndarray]:
    """The heatmap's dataset (cell, edge, op, value columns) back as an edges × ops array per
    cell type, rows and columns in the order the chart sorts them."""
    cells = list(dict.fromkeys(alpha["cell"]))
    edges, ops = list(dict.fromkeys(alpha["edge"])), list(dict.fromkeys(alpha["op"]))
    values = np.full((len(cells), len(edges), len(ops)), np.nan)
    for cell, edge, op, value in zip(alpha["cell"], alpha["edge"], alpha["op"], alpha["value"]):
        values[cells.index(cell), edges.index(edge), ops.index(op)] = value
    return {cell.removesuffix(" cell"): v for cell, v in zip(cells, values)}


def test_heatmap_holds_the_snapshots_alpha_edges_by_ops(darts) -> None:
    point = viz.latest_point(darts)
    assert point.step == darts.latest["step"] == 12
    specs = []
    for raw, source in ((False, darts.latest["alphas"]), (True, darts.latest["alphas_raw"])):
        spec = viz.alpha_heatmap(point, darts.config.ops, darts.edge_labels, raw=raw)
        alpha = spec["datasets"]["alpha"]
        assert len(alpha["value"]) == 2 * 14 * 8
        z = heatmap_arrays(alpha)
        assert list(z) == ["normal", "reduce"]
        for cell, values in z.items():
            np.testing.assert_allclose(values, np.asarray(source[cell]))
        inner = spec["spec"]
        assert inner["encoding"]["x"]["sort"] == darts.config.ops
        assert inner["encoding"]["y"]["sort"] == list(darts.edge_labels)
        assert [t["field"] for t in inner["layer"][0]["encoding"]["tooltip"]] == [
            "cell", "edge", "op", "value"]
        specs.append({k: v for k, v in spec.items() if k != "datasets"})
    np.testing.assert_allclose(z["normal"], darts.epochs.alphas_raw["normal"][-1])
    # The spec apart from its data stays the same from record to record, so the browser swaps
    # the numbers in instead of drawing the chart anew.
    earlier = viz.recorded_points(darts)[0]
    again = viz.alpha_heatmap(earlier, darts.config.ops, darts.edge_labels)
    assert json.dumps({k: v for k, v in again.items() if k != "datasets"}) == json.dumps(specs[0])
    assert again["datasets"] != viz.alpha_heatmap(point, darts.config.ops,
                                                  darts.edge_labels)["datasets"]


def test_uniform_point_has_the_spaces_shape() -> None:
    config = SearchConfig().with_changes({"space": "nb201",
                                          "ops": ["skip_connect", "nor_conv_3x3", "none"]})
    point = viz.uniform_point(config)
    assert list(point.alphas) == ["cell"] and point.kind == "init"
    np.testing.assert_allclose(point.alphas["cell"], np.full((6, 3), 1 / 3))


def test_softmax_colours_centre_on_uniform_and_follow_the_data() -> None:
    """White at 1/n, red above, blue below, and no fixed 0..1 domain: Vega-Lite spans the
    data around the midpoint, so the classroom's 0.12-0.13 around 1/8 fills the scale."""
    scale = viz.softmax_colour_scale(8)
    assert scale["domainMid"] == 0.125
    assert scale["domain"] == {"unionWith": [pytest.approx(0.124), pytest.approx(0.126)]}
    assert scale["range"] == ["#2c7bb6", "#f7f7f7", "#d7191c"]
    assert viz.softmax_colour_scale(3)["domainMid"] == pytest.approx(1 / 3)


def test_recorded_points_merge_steps_and_epochs(darts) -> None:
    points = viz.recorded_points(darts)
    steps = [p.step for p in points]
    assert steps == sorted(set(steps)) == [2, 4, 6, 8, 10, 12]
    assert [p.kind for p in points if p.step % 4 == 0] == ["epoch"] * 3
    np.testing.assert_allclose(points[0].alphas["reduce"], darts.steps.alphas["reduce"][0])
    assert points[-1].label == "step 12 · end of epoch 3"


def _edges_in(source: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"^\s*(\d+) -> (\d+) ", source, re.M)]


def test_dag_draws_every_candidate_edge_and_labels_the_derived_ops(darts) -> None:
    point = viz.latest_point(darts)
    edges = viz.space_edges(darts)
    assert len(edges) == 14
    for cell in ("normal", "reduce"):
        source = viz.cell_dag(point, cell, darts.config.ops, edges).source
        assert sorted(_edges_in(source)) == sorted(edges)
        pairs = darts.latest["genotype"][cell]
        for op, _ in pairs:
            assert f'label="{op} ' in source
        labelled = re.findall(r'label="([a-z_0-9]+) [0-9.]+"', source)
        assert sorted(labelled) == sorted(op for op, _ in pairs)
        assert source.count("->") == 14 + 4  # candidates, plus the 4 nodes into the output
        assert source.count('!"') == 2 + 4 + 1  # every node pinned: the browser only routes


def test_dag_source_ignores_moves_too_small_to_see(darts) -> None:
    point, edges, ops = viz.latest_point(darts), viz.space_edges(darts), darts.config.ops

    def dag(alphas: np.ndarray) -> str:
        moment = viz.ArchPoint(1, 0, "step", {"normal": alphas}, {"normal": alphas},
                               point.genotype)
        return viz.cell_dag(moment, "normal", ops, edges).source

    rng = np.random.default_rng(0)
    undecided = np.full((14, 8), 1 / 8) + rng.normal(0, 1e-3, (14, 8))  # a search's start
    assert dag(undecided) == dag(np.full((14, 8), 1 / 8))
    decided = undecided.copy()
    decided[0] = np.eye(8)[3]  # edge 0→2: all weight on skip_connect
    assert dag(decided) != dag(undecided)


def test_derived_edges_map_pairs_to_their_nodes(darts, nb201) -> None:
    genotype = {"normal": [["skip_connect", 0], ["sep_conv_3x3", 1], ["max_pool_3x3", 2],
                           ["skip_connect", 0], ["dil_conv_3x3", 3], ["skip_connect", 1],
                           ["sep_conv_5x5", 4], ["avg_pool_3x3", 0]]}
    kept = viz.derived_edges(genotype, "normal", viz.space_edges(darts))
    assert kept == {(0, 2): "skip_connect", (1, 2): "sep_conv_3x3", (2, 3): "max_pool_3x3",
                    (0, 3): "skip_connect", (3, 4): "dil_conv_3x3", (1, 4): "skip_connect",
                    (4, 5): "sep_conv_5x5", (0, 5): "avg_pool_3x3"}
    arch = {"edges": [["none", 0], ["skip_connect", 0], ["nor_conv_3x3", 1],
                      ["avg_pool_3x3", 0], ["nor_conv_1x1", 1], ["skip_connect", 2]]}
    kept = viz.derived_edges(arch, "cell", viz.space_edges(nb201))
    assert kept[(0, 1)] == "none" and kept[(2, 3)] == "skip_connect" and len(kept) == 6


def test_nb201_dag_cuts_none_edges(nb201) -> None:
    point = viz.latest_point(nb201)
    point = viz.ArchPoint(point.step, point.epoch, point.kind, point.alphas, point.alphas_raw,
                          {"edges": [["none", 0], *point.genotype["edges"][1:]]})
    source = viz.cell_dag(point, "cell", nb201.config.ops, viz.space_edges(nb201)).source
    assert sorted(_edges_in(source)) == sorted(viz.space_edges(nb201))
    line = next(ln for ln in source.splitlines() if re.match(r"\s*0 -> 1 ", ln))
    assert 'label=none' in line and "dashed" in line
    assert "c_{k}" not in source  # NB201's output is node 3 itself


def test_parameter_free_share_is_the_mean_mass_on_skip_pools_and_none(darts) -> None:
    fig = viz.parameter_free_share(darts.steps, darts.config.ops)
    columns = [i for i, op in enumerate(darts.config.ops) if op in PARAMETER_FREE]
    skip = darts.config.ops.index("skip_connect")
    for cell in ("normal", "reduce"):
        alphas = darts.steps.alphas[cell]
        expected = np.array([[row[columns].sum() for row in a] for a in alphas]).mean(axis=1)
        trace = next(t for t in fig.data if t.name == f"{cell}: parameter-free ops")
        np.testing.assert_allclose(trace.y, expected)
        skip_trace = next(t for t in fig.data if t.name == f"{cell}: skip_connect")
        np.testing.assert_allclose(skip_trace.y, alphas[:, :, skip].mean(axis=1))
    assert fig.layout.shapes[0].y0 == pytest.approx(4 / 8)  # uniform α: 4 of 8 ops are free


def test_alpha_trajectories_one_line_per_edge_and_op(darts) -> None:
    fig = viz.alpha_trajectories(darts.steps, "normal", darts.config.ops, darts.edge_labels)
    assert len(fig.data) == 14 * 8
    trace = fig.data[3 * 8 + darts.config.ops.index("skip_connect")]  # edge 3, skip_connect
    np.testing.assert_allclose(trace.y, darts.steps.alphas["normal"][:, 3, 3])
    assert trace.line.width > fig.data[3 * 8].line.width


def test_genotype_timeline_names_each_kept_edges_op_per_epoch(darts) -> None:
    edges = viz.space_edges(darts)
    fig = viz.genotype_timeline(darts.epochs, "normal", darts.config.ops, edges,
                                darts.edge_labels)
    z, text = np.asarray(fig.data[0].z, dtype=float), np.asarray(fig.data[0].text)
    assert z.shape == (14, 3) and list(fig.data[0].x) == [1, 2, 3]
    for j, genotype in enumerate(darts.epochs.genotypes):
        kept = viz.derived_edges(genotype, "normal", edges)
        for i, edge in enumerate(edges):
            if edge in kept:
                assert z[i, j] == darts.config.ops.index(kept[edge]) and text[i, j] == kept[edge]
            else:
                assert np.isnan(z[i, j]) and text[i, j] == ""


def test_loss_curves_mark_live_changes(darts) -> None:
    loss, accuracy = viz.loss_curves(darts)
    assert len(darts.live_changes) == 1
    for spec in (loss, accuracy):
        assert spec["datasets"]["changes"] == {"step": [6], "label": ["alpha_lr 0.0003 → 0.01"]}
    assert [layer["mark"] if isinstance(layer["mark"], str) else layer["mark"]["type"]
            for layer in loss["layer"]] == ["line", "point", "rule", "text"]
    assert len(accuracy["layer"]) == 3  # the label only once, on the loss panel
    curves = accuracy["datasets"]["curves"]
    val = [(s, v) for s, v, n in zip(curves["step"], curves["value"], curves["series"])
           if n == "val acc (whole split)"]
    assert [s for s, _ in val] == list(darts.epochs.step)
    np.testing.assert_allclose([v for _, v in val], darts.epochs.val_acc)
    curves = loss["datasets"]["curves"]
    batches = [v for v, n in zip(curves["value"], curves["series"]) if n == "train (batch)"]
    np.testing.assert_allclose(batches, darts.steps.train_loss)
    assert np.all(np.isfinite(curves["value"]))
    json.dumps([loss, accuracy])  # what Streamlit sends: plain JSON, no numpy values


def test_metrics_csv_has_one_row_per_record(darts) -> None:
    for view in (darts.steps, darts.epochs):
        rows = list(csv.DictReader(io.StringIO(viz.metrics_csv(view))))
        assert len(rows) == len(view)
        assert [int(r["step"]) for r in rows] == [int(s) for s in view.step]
        assert float(rows[-1]["entropy"]) == pytest.approx(view.entropy[-1])
        assert rows[-1]["alpha_lr"] != "" and "w_lr" in rows[0]
    rows = list(csv.DictReader(io.StringIO(viz.metrics_csv(darts.steps))))
    assert rows[0]["val_acc"] == ""  # step records have no validation accuracy


def test_genotype_exports(darts, nb201) -> None:
    genotype = darts.latest["genotype"]
    assert viz.genotype_text(genotype).startswith("Genotype(normal=[")
    assert json.loads(viz.genotype_json(genotype)) == genotype
    assert viz.genotype_text(nb201.latest["genotype"]).startswith("|")


def test_svg_export_needs_dot(darts, monkeypatch) -> None:
    graph = viz.cell_dag(viz.latest_point(darts), "normal", darts.config.ops,
                         viz.space_edges(darts))

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    assert viz.svg_of(graph) is None


def test_compare_rows_and_curves(darts, nb201) -> None:
    rows = viz.compare_rows([("a", darts), ("b", nb201)], {"b": "0.707 (3× classroom)"})
    assert [r["retrained test acc"] for r in rows] == ["", "0.707 (3× classroom)"]
    assert [r["skip count"] for r in rows] == [darts.latest["skip_count"],
                                                nb201.latest["skip_count"]]
    assert rows[0]["val acc"] == pytest.approx(darts.epochs.val_acc[-1], abs=1e-4)
    fig = viz.compare_curves([("a", darts), ("b", nb201)])
    assert len(fig.data) == 2 * 4
    np.testing.assert_allclose(fig.data[2].y, darts.epochs.skip_count)


def test_history_carries_lambda_max_alarm_and_regularizers_per_row(darts) -> None:
    epochs = darts.epochs
    np.testing.assert_array_equal(epochs.hessian_max_eigenvalue, [np.nan, 0.5, np.nan])
    assert epochs.last("hessian_max_eigenvalue") == 0.5  # the last measured epoch
    assert darts.steps.last("hessian_max_eigenvalue") is None  # steps never measure it
    assert list(epochs.alarms) == [None, {**ALARM, "epoch": 2}, {**ALARM, "epoch": 2}]
    assert list(darts.steps.alarms) == [None] * len(darts.steps)
    assert list(epochs.early_stops) == [None, None, None]
    assert [r["entropy"]["value"] for r in epochs.regularizers] == pytest.approx(
        [0.04, 0.08, 0.12])
    rows = list(csv.DictReader(io.StringIO(viz.metrics_csv(epochs))))
    assert [r["hessian_max_eigenvalue"] for r in rows] == ["", "0.5", ""]


def test_history_view_is_a_window_that_later_rows_do_not_change() -> None:
    history = History({"cell": (1, 2)})
    row = {"step": 1, "epoch": 0, "alphas": {"cell": [[0.5, 0.5]]},
           "alphas_raw": {"cell": [[0.0, 0.0]]}, "genotype": {}}
    history.append(row)
    before = history.view()
    for step in range(2, 100):  # grows the buffers past their capacity
        history.append({**row, "step": step, "hessian_max_eigenvalue": 1.0,
                        "alarm": {"rule": "darts+"}})
    assert len(before) == 1 and before.alarms[0] is None and before.live[0] == {}
    assert np.isnan(before.hessian_max_eigenvalue[0]) and before.regularizers[0] == {}
    after = history.view()
    assert len(after) == 99 and after.alarms[-1] == {"rule": "darts+"}
    assert after.last("hessian_max_eigenvalue") == 1.0 and after.step[-1] == 99


def test_viz_imports_no_thread_or_runner_code() -> None:
    code = ("import sys, nas_engine.viz; print(sorted(m for m in sys.modules if m in "
            "('nas_engine.runner', 'nas_engine.store', 'nas_engine.search')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"
