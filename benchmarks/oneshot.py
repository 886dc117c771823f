"""How well a one-shot supernet ranks cells, against their classroom retrains: for each
checkpointed epoch asked, the Spearman ρ of the inherited accuracies (BatchNorm recalibrated
on `BN_BATCHES` batches) with the retrained test accuracies of the sampled cells that the
evaluations database has; then, at the last epoch asked, ρ and the mean shift of the scores
for other recalibration sizes (0: the supernet's own statistics). Nothing is trained: the
cells without a stored retrain are left out (`proxies --sample N` trains them).

    python benchmarks/oneshot.py --run runs/<spos-clutter run> [--sample 200] [--seed 0]
        [--epochs 10,20,40] [--bn 0,5,50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nas_engine.evaluation.inherited import BN_BATCHES, InheritedSupernet  # noqa: E402
from nas_engine.evaluation.training import evaluation_key  # noqa: E402
from nas_engine.evaluations import EvaluationsDB  # noqa: E402
from nas_engine.proxies.study import plan_study  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", default="10,20,40")
    parser.add_argument("--bn", default="0,5,50", help="other recalibration sizes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    db = EvaluationsDB(args.runs_dir)
    plan = plan_study("nb201", args.sample, args.seed)
    truth = [(c.train.genotype, db.get(evaluation_key(c))) for c in plan.configs]
    cells = [(arch, row.test_acc) for arch, row in truth if row is not None]
    archs, accuracies = [a for a, _ in cells], [t for _, t in cells]
    print(f"{len(cells)} of {len(plan.configs)} cells have a classroom retrain")
    epochs = [int(e) for e in args.epochs.split(",")]
    print(f"{'epoch':>6}{'BN batches':>12}{'Spearman ρ':>12}{'mean acc':>10}{'shift':>8}")
    reference: list[float] = []
    for epoch in epochs:
        supernet = InheritedSupernet(args.run, epoch=epoch)
        columns = [supernet.columns(a) for a in archs]
        sizes = [BN_BATCHES] + ([int(b) for b in args.bn.split(",")] if epoch == epochs[-1]
                                else [])
        for bn in sizes:
            scores = [supernet.accuracy(c, bn) for c in columns]
            if bn == BN_BATCHES:
                reference = scores
            shift = statistics.mean(abs(s - r) for s, r in zip(scores, reference))
            rho = spearmanr(scores, accuracies).statistic
            print(f"{epoch:>6}{bn:>12}{rho:>12.2f}{statistics.mean(scores):>10.3f}"
                  f"{shift:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
