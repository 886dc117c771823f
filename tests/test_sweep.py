"""Sweeps without Ray: the grid and seeds as parsed and checked, the points in their order, a
trial's run folder resumed in place (what `sweep --resume` relies on), the phase diagram's
cells and links, the summary table, and the one line that says how to install Ray."""

from __future__ import annotations

import sys

import pytest

from nas_engine.cli import main
from nas_engine.runner import RunRegistry
from nas_engine.store import RunFolder, list_runs
from nas_engine.sweep import INSTALL
from nas_engine.sweep.cli import summary_table
from nas_engine.sweep.folder import SweepFolder
from nas_engine.sweep.phase import phase_cells, phase_heatmap
from nas_engine.sweep.presets import SWEEPS
from nas_engine.sweep.results import TrialRow, progress_text, trial_rows
from nas_engine.sweep.spec import SweepSpec, parse_grid, parse_seeds
from nas_engine.sweep.trial import run_trial
from tests.test_runner import tiny
from tests.test_search import without_timings


def test_grid_values_are_read_as_set_reads_them() -> None:
    grid = parse_grid(["optim.alpha_lr=0.003, 1e-2", "strategy.name=darts,gdas",
                       "mitigations.aux_skip=true,false"])
    assert grid == {"optim.alpha_lr": [0.003, 0.01], "strategy.name": ["darts", "gdas"],
                    "mitigations.aux_skip": [True, False]}
    assert parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    assert parse_seeds("4") == [4]


@pytest.mark.parametrize("items, message", [
    (["optim.alpha_lr"], "--grid must be key=value1,value2,...; got 'optim.alpha_lr'"),
    (["optim.alpha_lr=0.1,"], "--grid must be key=value1,value2,...; got 'optim.alpha_lr=0.1,'"),
    (["optim.alpha_lr=1,2", "optim.alpha_lr=3"], "--grid optim.alpha_lr is given twice"),
    (["optim.alpha_lr=1,1.0"], "--grid optim.alpha_lr repeats a value"),
])
def test_a_bad_grid_is_one_line_naming_the_flag(items, message) -> None:
    with pytest.raises(ValueError) as caught:
        parse_grid(items)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("text", ["", "x", "1-", "-3", "1,,2", "0.5"])
def test_bad_seeds_are_refused(text) -> None:
    with pytest.raises(ValueError, match="--seeds must be seeds or ranges"):
        parse_seeds(text)


def test_points_go_seed_by_seed_and_multiply() -> None:
    spec = SweepSpec("s", "collapse-demo", {"optim.alpha_lr": [0.003, 0.03],
                                            "regularizers.entropy.weight": [-1.0, 0.0, 1.0]},
                     [5, 7])
    points = spec.points()
    assert len(points) == 2 * 3 * 2
    assert [p["seed"] for p in points] == [5] * 6 + [7] * 6  # every setting on seed 5 first
    assert points[:3] == [{"optim.alpha_lr": 0.003, "regularizers.entropy.weight": w,
                           "seed": 5} for w in (-1.0, 0.0, 1.0)]
    configs = spec.validate().configs()
    assert {(c.optim.alpha_lr, c.regularizers.entropy.weight, c.seed) for c in configs} == {
        (p["optim.alpha_lr"], p["regularizers.entropy.weight"], p["seed"]) for p in points}
    assert {c.threads for c in configs} == {1}  # one torch thread per trial
    assert {tuple(c.ops) for c in configs} == {("none", "skip_connect", "nor_conv_3x3")}


@pytest.mark.parametrize("spec, message", [
    (SweepSpec("s", "classroom", {"optim.alpha_lr": [0.01, -1]}),
     "--grid optim.alpha_lr=-1: optim.alpha_lr must be a number >= 0.0"),
    (SweepSpec("s", "classroom", {"optim.alpa_lr": [1]}),
     "--grid optim.alpa_lr=1: optim.alpa_lr must be a known setting"),
    (SweepSpec("s", "classroom", {"seed": [1, 2]}), "--grid seed: give the seeds with --seeds"),
    (SweepSpec("s", "classroom", {}, changes={"seed": 2}), "--set seed: give the seeds"),
    (SweepSpec("s", "classroom", {"epochs": [1]}, changes={"epochs": 2}),
     "--set epochs is also in --grid"),
    (SweepSpec("s", "classroom", seeds=[2**31]), "--seeds: seed must be an integer in"),
    (SweepSpec("s", "classroom", {"optim.alpha_lr": list(range(1001))}),
     "a sweep has at most 1000 trials; this grid × seeds has 1001"),
    (SweepSpec("s", "classroom", retrain="classroom", retrain_changes={"epochs": 0}),
     "--retrain-set: epochs must be an integer in [1, 10000]; got 0"),
    (SweepSpec("s", "classroom", retrain_changes={"epochs": 1}),
     "--retrain-set goes with --retrain"),
])
def test_a_bad_sweep_is_refused_naming_the_setting(spec, message) -> None:
    with pytest.raises(ValueError) as caught:
        spec.validate()
    assert str(caught.value).startswith(message), str(caught.value)


def test_collapse_map_is_27_collapse_demo_trials() -> None:
    spec = SWEEPS["collapse-map"].validate()
    configs = spec.configs()
    assert len(configs) == 27 and {c.epochs for c in configs} == {10}
    assert {c.optim.alpha_lr for c in configs} == {0.003, 0.01, 0.03}
    assert {c.regularizers.entropy.weight for c in configs} == {-10.0, 0.0, 10.0}
    assert sorted({c.seed for c in configs}) == [0, 1, 2]


def test_the_command_without_ray_says_how_to_install_it(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # find_spec("ray") is None: not installed
    assert main(["sweep", "collapse-map", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: sweeps need Ray Tune, which is not installed: {INSTALL}"
    assert not list(tmp_path.iterdir())  # nothing was made


def test_cli_refusals_are_one_line(capsys, tmp_path) -> None:
    cases = [(["--grid", "optim.alpha_lr=x,0.1"], "error: --grid optim.alpha_lr='x': "
                                                  "optim.alpha_lr must be a number"),
             (["--max-concurrent", "0"], "error: --max-concurrent must be >= 1; got 0"),
             (["--resume", str(tmp_path)], f"error: --resume '{tmp_path}' is not a sweep "
                                           "folder (no sweep.json)"),
             (["--resume", str(tmp_path), "--seeds", "1"], "error: --resume goes on with the "
                                                           "sweep as it was made; drop --seeds")]
    for flags, line in cases:
        assert main(["sweep", "--runs-dir", str(tmp_path / "runs"), *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith(line) and err.count("\n") == 1, err
    assert not (tmp_path / "runs" / "sweeps").exists()


def test_a_trial_goes_on_with_its_own_run_folder(tmp_path) -> None:
    """A restored trial continues the run it names from the run's checkpoint: one folder,
    the records an uninterrupted run writes."""
    config = tiny(epochs=2)
    reports: list[tuple[dict, bool]] = []
    straight = run_trial(config, tmp_path / "a", "t", None,
                         lambda m, names: reports.append((m, names)))
    assert [names for _, names in reports] == [True, False, False]  # the start names the run
    assert reports[0][0]["run_id"] == straight.run_id and reports[-1][0]["epoch"] == 2

    registry = RunRegistry(tmp_path / "b")
    cut = registry.create(config, label="t").start()
    assert cut.wait_for(lambda s: len(s.epochs) == 1, 60)
    cut.stop()  # what a killed driver leaves: a checkpoint and a run that can go on
    cut.join()
    reports.clear()
    resumed = run_trial(config, tmp_path / "b", "t", cut.run_id,
                        lambda m, names: reports.append((m, names)))
    assert resumed.run_id == cut.run_id and len(list_runs(tmp_path / "b")) == 1
    assert [m["epoch"] for m, _ in reports] == [1, 2] and not any(n for _, n in reports)
    assert without_timings(RunFolder(resumed.folder.path).read_records()) == \
        without_timings(RunFolder(straight.folder.path).read_records())
    again = run_trial(config, tmp_path / "b", "t", cut.run_id, lambda m, names: None)
    assert again.run_id == cut.run_id and len(list_runs(tmp_path / "b")) == 1  # only reported


def _row(index: int, point: dict, run_id: str | None, skip: int | None,
         retrained: float | None = None) -> TrialRow:
    return TrialRow(index, point, "finished" if run_id else "pending", run_id, 10, 10, skip,
                    0.9, 0.25, 1, retrained, None)


def test_phase_cells_pool_the_other_axes_and_link_to_their_runs() -> None:
    rows = [_row(i, {"lr": lr, "w": w, "seed": s}, f"r{i}", skip)
            for i, (lr, w, s, skip) in enumerate([(0.1, 0, 0, 8), (0.1, 0, 1, 6),
                                                  (0.1, 1, 0, 2), (0.3, 0, 0, 5)])]
    rows.append(_row(4, {"lr": 0.3, "w": 1, "seed": 0}, None, None))  # not started yet
    cells = {(c.x, c.y): c for c in phase_cells(rows, "lr", "w", "skip_count")}
    assert cells[(0.1, 0)].value == 7.0 and cells[(0.1, 0)].runs == ("r0", "r1")
    assert cells[(0.1, 0)].link == "compare?runs=r0,r1"
    assert cells[(0.1, 1)].value == 2.0 and cells[(0.1, 1)].link == "live?run=r2"
    assert cells[(0.3, 1)].value is None and cells[(0.3, 1)].link is None
    by_seed = {(c.x, c.y): c.value for c in phase_cells(rows, "lr", "seed", "skip_count")}
    assert by_seed == {(0.1, 0): 5.0, (0.1, 1): 6.0, (0.3, 0): 5.0}
    spec = phase_heatmap(list(cells.values()), "lr", "w", "skip_count", [0.1, 0.3], [0, 1])
    data = spec["datasets"]["phase"]
    assert data["text"] == ["7.0 (×2)", "2.0", "5.0", "–"]
    assert data["link"] == ["compare?runs=r0,r1", "live?run=r2", "live?run=r3", None]
    assert spec["encoding"]["x"]["sort"] == ["0.1", "0.3"]
    with pytest.raises(ValueError, match="value must be one of skip_count"):
        phase_cells(rows, "lr", "w", "accuracy")


def test_summary_rows_come_from_the_runs(tmp_path) -> None:
    """A sweep folder whose one trial ran (here without Ray): its row holds the run's final
    record; the other stays pending; the table and the progress line say so."""
    spec = SweepSpec("t", None, {"optim.alpha_lr": [0.003, 0.03]}, [0],
                     {"space": "nb201", "ops": None, "epochs": 2, "device": "cpu",
                      "network.channels": 4,
                      "data.subset": 200, "data.batch_size": 32}).validate()
    folder = SweepFolder.create(tmp_path, spec)
    data = folder.read()
    run = run_trial(spec.configs()[0], tmp_path, "t", None, lambda m, names: None)
    data["trials"][0].update(state="finished", run_id=run.run_id, val_acc=0.5, skip_count=1)
    rows = trial_rows(folder, data)
    last = [r for r in run.folder.read_records() if r["kind"] == "epoch"][-1]
    assert (rows[0].epoch, rows[0].skip_count, rows[0].val_acc, rows[0].lambda_max) == (
        2, last["skip_count"], last["val_acc"], last["hessian_max_eigenvalue"])
    assert rows[0].state == "finished" and rows[1].state == "pending" and rows[1].epoch is None
    table = summary_table(data, rows).splitlines()
    assert table[0].split() == ["#", "optim.alpha_lr", "seed", "state", "epoch", "skip",
                                "val", "acc", "λmax", "alarm", "retrained", "run"]
    assert table[1].split()[:5] == ["0", "0.003", "0", "finished", "2/2"]
    assert table[2].split() == ["1", "0.03", "0", "pending", "-/2", "-", "-", "-", "-", "-",
                                "-"]
    assert progress_text(data["trials"]) == ("1/2 trials done · 0 running · 0 failed · best "
                                             "val acc 0.500 (trial 0, skip 1)")
