"""One-shot NAS: SPOS draws every op equally often, trains exactly the path it drew and resumes
exactly; a supernet's inherited accuracy recomputes BatchNorm statistics (and nothing else), on
a copy in memory, and equals an evaluation written out by hand; bad inputs get one message.
Inherited accuracies are stored once: a proxy study's one-shot column, and the final cells of
the Compare page's searches."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re

import numpy as np
import pytest
import torch
from scipy.stats import chisquare, spearmanr

from nas_engine import cli
from nas_engine.components import Components
from nas_engine.config import SearchConfig, preset, train_config
from nas_engine.data import load_images, make_streams
from nas_engine.evaluation import results
from nas_engine.evaluation.inherited import (
    InheritedSupernet,
    derived_cell_inherited_accuracy,
    inherited_accuracies,
)
from nas_engine.evaluation.training import evaluation_key
from nas_engine.evaluations import EvaluationsDB
from nas_engine.mixing import FixedMixing, UniformMixing
from nas_engine.proxies import study
from nas_engine.proxies.study import ONE_SHOT, OneShotSource, one_shot_column, plan_study
from nas_engine.runner import RunRegistry
from nas_engine.search import Search, build_model
from nas_engine.spaces.genotypes import genotype_from_dict
from nas_engine.store import Recorder, RunFolder
from nas_engine.strategies import make_strategy
from tests.builders import batch, tiny_config, tiny_strategy
from tests.test_search import tiny, without_timings

CELLS = ["|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|avg_pool_3x3~1|"
         "nor_conv_1x1~2|"]
DARTS_CELL = ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 0), "
              "('max_pool_3x3', 2), ('sep_conv_5x5', 1), ('avg_pool_3x3', 3), ('skip_connect', "
              "0), ('dil_conv_5x5', 4)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
              "('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('skip_connect', 2), ('dil_conv_3x3', "
              "1), ('sep_conv_5x5', 2), ('max_pool_3x3', 3), ('sep_conv_3x3', 4)], "
              "reduce_concat=[2, 3, 4, 5])")
PROXY_TINY = {"epochs": 1, "network.channels": 4, "data.batch_size": 32}  # the truth's retrains


def spos(space: str, **changes) -> SearchConfig:
    return tiny(space, **{"strategy.name": "spos", **changes})


def finished_run(root, config: SearchConfig) -> RunFolder:
    recorder = Recorder.create(root, config)
    Search(config, recorder).run()
    recorder.write_status("finished")
    recorder.close()
    return RunFolder(recorder.path)


@pytest.fixture(scope="module")
def spos_run(tmp_path_factory) -> RunFolder:
    return finished_run(tmp_path_factory.mktemp("runs"), spos("nb201"))


@pytest.fixture(scope="module")
def darts_run(tmp_path_factory) -> RunFolder:
    return finished_run(tmp_path_factory.mktemp("runs"), tiny("darts"))


def digests(folder: RunFolder) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted((folder.path / "checkpoints").iterdir())}


# -- SPOS ----------------------------------------------------------------------------------
@pytest.mark.parametrize("space, rows, ops", [("nb201", 6, 5), ("darts", 28, 8)])
def test_every_op_is_drawn_equally_often(space: str, rows: int, ops: int) -> None:
    """6000 paths: on every edge each op is drawn 6000/|ops| times give or take its binomial
    σ (every count within 4.5 σ), and χ² against the uniform law gives p > 1e-4 on each edge
    and for the counts pooled over the edges: each bound fails a uniform sampler with
    probability < 0.3 % over all the edges (Bonferroni)."""
    strategy = tiny_strategy(tiny_config(space, **{"strategy.name": "spos"}))
    model, mixing = strategy.model, strategy.model.mixing
    assert isinstance(mixing, UniformMixing)
    for _ in range(6000):
        mixing.draw(model)
    counts = torch.cat([mixing.counted(model)[cell] for cell in model.alphas]).numpy()
    assert counts.shape == (rows, ops) and (counts.sum(1) == 6000).all()
    sigma = math.sqrt(6000 * (1 / ops) * (1 - 1 / ops))
    assert np.abs(counts - 6000 / ops).max() < 4.5 * sigma
    p_values = [chisquare(row).pvalue for row in [*counts, counts.sum(0)]]
    assert min(p_values) > 1e-4, p_values
    # The test can fail: a sampler that never draws op 0 is off by miles.
    biased = counts.copy()
    biased[:, 1] += biased[:, 0]
    biased[:, 0] = 0
    assert max(chisquare(row).pvalue for row in biased) < 1e-100


def test_a_search_draws_one_counted_path_per_step_and_never_moves_alpha() -> None:
    search = Search(spos("nb201", epochs=2))
    weights = [w.detach().clone() for w in search.model.weight_parameters()]
    records = search.run()
    last = [r for r in records if r["kind"] == "epoch"][-1]
    counts = np.array(last["path_counts"]["cell"])
    assert (counts.sum(1) == search.step_count).all() and search.step_count == 8
    assert all((a == 0).all() for a in search.model.alphas.values())  # filled with 0, kept
    assert np.array(last["alphas"]["cell"]) == pytest.approx(0.2)  # the uniform draw law
    assert last["entropy"] == pytest.approx(math.log(5))
    # The cell shown is the path drawn most often (first maximum on ties).
    ops = search.config.ops
    assert [op for op, _ in last["genotype"]["edges"]] == [ops[i] for i in counts.argmax(1)]
    moved = [not torch.equal(w, v) for w, v in zip(weights, search.model.weight_parameters())]
    assert sum(moved) > len(moved) // 2  # the weights learn
    # No collapse diagnostic reads an untrained α: no λmax, no alarm.
    assert "hessian_max_eigenvalue" not in last and last["alarm"] is None


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_the_drawn_path_is_what_the_forward_computes(space: str) -> None:
    strategy = tiny_strategy(tiny_config(space, **{"strategy.name": "spos"}))
    model, mixing = strategy.model, strategy.model.mixing
    x, _ = batch(2)
    model.train()
    path = mixing.draw(model)
    logits = model(x)
    for cell, dag in model.net.cell_dags():  # each edge block computes its edges' drawn ops
        for block, rows in zip(dag.sources, dag.rows):
            chosen = {e: block.columns[k] for k, runs in block.jobs for r in runs for e in r}
            assert chosen == {e: path[cell][row] for e, row in enumerate(rows)
                              if path[cell][row] in block.columns}
    # The supernet on its own, every op computed, weighted by the path's one-hot.
    dense = model.space.build_supernet(1, 3, 8).double()
    dense.load_state_dict(model.net.state_dict())
    one_hot = {cell: torch.nn.functional.one_hot(torch.tensor(path[cell]), a.shape[1]).double()
               for cell, a in model.alphas.items()}
    assert (logits - dense(x, one_hot)).abs().max() < 1e-12
    assert torch.equal(model(x), logits)  # the step's path until the next draw
    counted = {cell: c.clone() for cell, c in mixing.counted(model).items()}
    model.eval()
    with torch.no_grad():
        model(x)  # an eval pass draws its own path, uncounted
    assert mixing.path == path
    assert all(torch.equal(counted[c], mixing.counted(model)[c]) for c in counted)


def test_a_resumed_search_continues_exactly(tmp_path) -> None:
    config = spos("nb201", epochs=3, **{"record.log_every": 1})
    whole = Search(config).run()
    # From the middle of an epoch (a pause's latest.pt holds this state)...
    first = Search(config)
    while first.step_count < 6:
        first.step()
    second = Search(config)
    second.load_state_dict(first.state_dict())
    assert without_timings(second.run()) == without_timings(
        [r for r in whole if r["step"] > 6])
    # ... and from an epoch checkpoint on disk.
    recorder = Recorder.create(tmp_path, config)
    Search(config, recorder).run()
    recorder.close()
    resumed = Search(config)
    resumed.load_state_dict(RunFolder(recorder.path).load_checkpoint(1))
    after = [r for r in whole if r["step"] > 4]
    assert without_timings(resumed.run()) == without_timings(after)


def test_a_live_run_paused_stepped_stopped_and_continued_equals_an_uninterrupted_one(
        tmp_path) -> None:
    from tests.test_runner import TIMEOUT, comparable

    config = spos("nb201", epochs=3, **{"record.log_every": 1})
    whole = Search(config).run()
    registry = RunRegistry(tmp_path / "runs")
    try:
        run = registry.create(config).start()
        assert run.wait_for(lambda s: s.step >= 1, TIMEOUT)
        run.pause()
        assert run.wait_for(lambda s: s.state == "paused", TIMEOUT)
        run.step(6)  # into the middle of epoch 2
        assert run.wait_for(lambda s: s.state == "paused" and s.step >= 7, TIMEOUT)
        run.stop()  # latest.pt, mid-epoch
        assert run.wait_for(lambda s: s.state == "stopped", TIMEOUT)
        resumed = registry.resume(run.run_id).start()
        assert resumed.wait_for(lambda s: s.state == "finished", TIMEOUT)
        assert comparable(resumed.folder.read_records()) == comparable(whole)
    finally:
        registry.stop_all()


def test_spos_settings_and_preset() -> None:
    with pytest.raises(ValueError, match=r"^diagnostics\.early_stop must be none for spos"):
        spos("nb201", **{"diagnostics.early_stop": "darts+"})
    with pytest.raises(ValueError, match=r"^strategy\.order must be first for spos"):
        spos("nb201", **{"strategy.order": "second"})
    with pytest.raises(ValueError, match=r"^device\.compile must be false for spos"):
        spos("nb201", **{"device.compile": True})
    config = preset("spos-clutter")
    assert (config.space, config.data.name, config.strategy.name) == (
        "nb201", "digits_clutter", "spos")
    assert (config.network.channels, config.network.cells_per_stage) == (16, 1)


# -- inherited accuracy --------------------------------------------------------------------
def test_recalibration_resets_and_averages_bn_statistics_and_nothing_else(spos_run) -> None:
    before = digests(spos_run)
    supernet = InheritedSupernet(spos_run.path)
    model = supernet.model
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.net.named_buffers()}
    model.mixing = FixedMixing(supernet.columns(CELLS[0]))  # as `accuracy` does
    supernet.recalibrate(3)
    assert all(torch.equal(p, params[n]) for n, p in model.named_parameters())
    changed = [n for n, b in model.net.named_buffers()
               if "running" in n and not torch.equal(b, buffers[n])]
    assert "stem.1.running_mean" in changed and len(changed) >= 6
    # The stem's BN now holds the mean of the 3 batches' statistics, exactly.
    conv, bn = model.net.stem[0], model.net.stem[1]
    batches = [x for _, (x, _) in zip(range(3), supernet.search.train_stream.iter_pass())]
    with torch.no_grad():
        outs = [conv(x) for x in batches]
    means = torch.stack([o.mean((0, 2, 3)) for o in outs]).mean(0)
    variances = torch.stack([o.var((0, 2, 3), unbiased=True) for o in outs]).mean(0)
    torch.testing.assert_close(bn.running_mean, means, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, variances, rtol=1e-5, atol=1e-6)
    assert bn.momentum == 0.1  # put back
    # 0 batches: the supernet's own statistics, whatever cell was scored before.
    supernet_own = supernet.accuracy(supernet.columns(CELLS[1]), 0)
    fresh = InheritedSupernet(spos_run.path)
    assert fresh.accuracy(fresh.columns(CELLS[1]), 0) == supernet_own
    assert supernet_own != supernet.accuracy(supernet.columns(CELLS[1]), 3)
    inherited_accuracies(spos_run.path, CELLS, bn_batches=2)
    assert digests(spos_run) == before  # the checkpoints are read, never written


def test_inherited_accuracy_equals_an_evaluation_by_hand(spos_run) -> None:
    """By hand: the checkpoint's weights in a fresh supernet, every op computed and weighted by
    the cell's one-hot, torch's own cumulative BN average (momentum None) over the first 3
    training batches, then the validation split counted image by image."""
    found = inherited_accuracies(spos_run.path, CELLS, bn_batches=3)
    config = spos_run.read_config()
    state = spos_run.load_checkpoint()
    images = load_images(config.data, config.seed)
    train, val = make_streams(images, config.data, config.seed)
    torch.manual_seed(0)
    model = build_model(config, make_strategy(config, torch.device("cpu")), Components(config),
                        images.in_channels, images.num_classes, images.image_size)
    expected = []
    for text in CELLS:
        model.load_state_dict(state["model"])
        ops = re.findall(r"(\w+)~\d", text)  # edge order 1<-0, 2<-0, 2<-1, 3<-0, ...
        one_hot = {"cell": torch.zeros(6, len(config.ops))}
        for row, op in enumerate(ops):
            one_hot["cell"][row, config.ops.index(op)] = 1.0
        norms = [m for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
        model.net.train()
        with torch.no_grad():
            for _, (x, _) in zip(range(3), train.iter_pass()):
                model.net(x, one_hot)
            model.net.eval()
            correct = sum(int((model.net(x, one_hot).argmax(1) == y).sum())
                          for x, y in val.iter_pass())
        expected.append(correct / val.num_samples)
    assert found == pytest.approx(expected, abs=1 / val.num_samples)
    assert len(set(found)) > 1  # the cells differ


def test_the_derived_cell_of_a_darts_supernet(darts_run) -> None:
    supernet = InheritedSupernet(darts_run.path)
    last = [r for r in darts_run.read_records() if r["kind"] == "epoch"][-1]
    assert supernet.derived_cell == last["genotype"]["text"]
    found = derived_cell_inherited_accuracy(darts_run.path, bn_batches=2)
    assert found == inherited_accuracies(darts_run.path, [supernet.derived_cell], bn_batches=2)[0]
    assert 0.0 <= found <= 1.0
    other = inherited_accuracies(darts_run.path, [DARTS_CELL], bn_batches=2)[0]
    assert 0.0 <= other <= 1.0


def test_bad_inputs_get_one_message(spos_run, darts_run, tmp_path) -> None:
    name = spos_run.path.name
    with pytest.raises(ValueError, match=r"^arch_texts\[1\] '\|foo~0\S* is not a nb201 cell: "
                                         r"unknown op 'foo'"):
        inherited_accuracies(spos_run.path, [CELLS[0], CELLS[0].replace("nor_conv_3x3", "foo")])
    with pytest.raises(ValueError, match=r"^arch_texts\[0\] \"Genotype\(.*… is a darts cell, but "
                                         + name + " searched the nb201 space$"):
        inherited_accuracies(spos_run.path, [DARTS_CELL])
    with pytest.raises(ValueError, match=r"^arch_texts\[0\] 'garbage' is not a nb201 cell"):
        inherited_accuracies(spos_run.path, ["garbage"])
    with pytest.raises(ValueError, match=r"^bn_batches must be an integer >= 0; got -1$"):
        inherited_accuracies(spos_run.path, CELLS, bn_batches=-1)
    twice = DARTS_CELL.replace("('skip_connect', 1)", "('skip_connect', 0)", 1)
    with pytest.raises(ValueError, match=r"takes input 0 twice into node 2 of its normal cell"):
        inherited_accuracies(darts_run.path, [twice])
    with pytest.raises(ValueError, match=r"has reduce_concat \[2, 3\]; the supernet "):
        inherited_accuracies(darts_run.path, [DARTS_CELL.replace(
            "reduce_concat=[2, 3, 4, 5]", "reduce_concat=[2, 3]")])
    no_none = finished_run(tmp_path, spos("nb201", epochs=1, ops=[
        "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]))
    with pytest.raises(ValueError, match=r"uses 'none', which the supernet of .* does not have "
                                         r"\(its ops: skip_connect, nor_conv_1x1"):
        inherited_accuracies(no_none.path, CELLS)
    unsaved = finished_run(tmp_path, spos("nb201", epochs=1, **{"record.checkpoint": False}))
    with pytest.raises(FileNotFoundError, match=r"no checkpoint holds the supernet's weights"):
        inherited_accuracies(unsaved.path, CELLS)
    retrain = Recorder.create(tmp_path, train_config("nb201", CELLS[0]))
    retrain.close()
    with pytest.raises(ValueError, match=r"a train run has no supernet"):
        derived_cell_inherited_accuracy(retrain.path)
    with pytest.raises(ValueError, match=r"config\.json: cannot be read"):
        inherited_accuracies(tmp_path / "no-such-run", CELLS)


def test_the_live_view_says_the_supernet_is_one_shot(app, tmp_path) -> None:
    from tests.test_app import heatmaps, no_failure, on_page

    run = finished_run(tmp_path / "runs", spos("nb201", epochs=1))
    app.run()
    at = on_page(app, "pages/live.py", run=run.path.name)
    no_failure(at)
    (note,) = [i.value for i in at.info if i.value.startswith("**One-shot supernet (SPOS).**")]
    counts = run.read_records()[-1]["path_counts"]["cell"]
    assert note.endswith(f"so far: {min(map(min, counts))}–{max(map(max, counts))}.")
    assert heatmaps(at)["cell"] == pytest.approx(0.2)  # softmax α: the uniform draw law
    assert not [s for s in at.success if "collapse" in s.value]  # no collapse signals here
    for page, key in (("pages/inspector.py", "run"), ("pages/compare.py", "runs")):
        no_failure(on_page(app, page, **{key: run.path.name}))


def test_the_one_shot_column_is_each_cells_inherited_accuracy_stored_once(
        spos_run, darts_run, tmp_path, monkeypatch) -> None:
    db = EvaluationsDB(tmp_path)
    plan = plan_study("nb201", 2, 0, spos_run.read_config().data.name, PROXY_TINY)
    source = OneShotSource.of(spos_run.path, plan)
    assert source.epoch == max(spos_run.checkpoints())
    values, ms = one_shot_column(db, plan, source)
    assert values == pytest.approx(inherited_accuracies(spos_run.path, plan.archs))
    assert ms > 0 and len(set(values)) > 1

    def no_supernet(*args, **kwargs):
        raise AssertionError("every cell is stored: no supernet is loaded")

    monkeypatch.setattr(study, "InheritedSupernet", no_supernet)
    assert one_shot_column(db, plan, source) == (values, ms)
    assert study.stored_one_shot(db, plan, source) == (values, ms)
    other = dataclasses.replace(source, epoch=source.epoch - 1)  # another epoch's weights
    assert study.stored_one_shot(db, plan, other) is None

    with pytest.raises(ValueError, match=r"its supernet is of darts on digits; the study's "
                                         r"cells are nb201 on digits$"):
        OneShotSource.of(darts_run.path, plan)
    with pytest.raises(ValueError, match=r"is not a run folder \(no config\.json\)$"):
        OneShotSource.of(tmp_path / "nowhere", plan)
    held_out = plan_study("nb201", 2, 0, "digits", {**PROXY_TINY, "data.test_portion": 0.3})
    with pytest.raises(ValueError, match=r"its supernet learnt another digits task than the "
                                         r"study's cells are scored on \(data\.test_portion "
                                         r"0\.2 against 0\.3\)$"):
        OneShotSource.of(spos_run.path, held_out)


def test_the_proxies_command_adds_the_one_shot_row(spos_run, tmp_path, capsys) -> None:
    argv = ["proxies", "--sample", "2", "--dataset", "digits", "--runs-dir", str(tmp_path),
            "--proxies", "params", "--json", "--quiet", "--oneshot", str(spos_run.path),
            *(part for key, value in PROXY_TINY.items() for part in ("--set", f"{key}={value}"))]
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["proxy"] for r in rows] == ["params", ONE_SHOT]
    plan = plan_study("nb201", 2, 0, "digits", PROXY_TINY)
    truth = [EvaluationsDB(tmp_path).get(evaluation_key(c)).test_acc for c in plan.configs]
    values = inherited_accuracies(spos_run.path, plan.archs)
    assert rows[1]["spearman"] == pytest.approx(spearmanr(values, truth).statistic)

    argv[argv.index("--oneshot") + 1] = str(tmp_path / "nowhere")
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.endswith("--oneshot: " + str(tmp_path / "nowhere") + " is not a run folder "
                        "(no config.json)") and len(err.splitlines()) == 1


def test_the_compare_page_scores_each_final_cell_on_its_supernet_once(app, tmp_path) -> None:
    from tests.test_app import no_failure, on_page

    runs = tmp_path / "runs"
    folders = [finished_run(runs, tiny("darts", seed=seed)) for seed in (0, 1)]
    db = EvaluationsDB(runs)
    assert [results.inherited(db, f) for f in folders] == [None, None]
    app.run()
    at = on_page(app, "pages/compare.py", runs=",".join(f.run_id for f in folders))
    no_failure(at)
    (frame,) = [d.value for d in at.dataframe]
    assert frame["inherited acc"].isna().all()
    (score,) = [b for b in at.button if b.label == "Score the final cells on their supernets"]
    at = score.click().run()
    no_failure(at)
    expected = []
    for folder in folders:
        supernet = InheritedSupernet(folder.path)
        cell = genotype_from_dict("darts", folder.read_genotype())
        expected.append(supernet.accuracy(supernet.columns(supernet.space.genotype_text(cell))))
    (frame,) = [d.value for d in at.dataframe]
    assert list(frame["inherited acc"]) == pytest.approx(expected, abs=1e-4)  # shown rounded
    stored = [results.inherited(db, f) for f in folders]
    assert [s.val_acc for s in stored] == pytest.approx(expected)
    assert results.score_inherited(db, folders[0]).cached  # asked again: read back
    assert not [b for b in at.button if b.label == "Score the final cells on their supernets"]
