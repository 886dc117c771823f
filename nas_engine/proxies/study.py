"""A proxy study: a sample of a space's cells, their retrained accuracy (the ground truth,
through the evaluations database: a key is trained once, whoever asks) and every proxy's
score (stored beside it), then each score's rank agreement with the truth.

Scoring a proxy is cheap next to a retrain, so scores are stored per (cell, proxy) too: a
study re-run, or the page drawing it, recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas_engine.config import SearchConfig, train_config
from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluation.ground_truth import train_once
from nas_engine.evaluation.inherited import BN_BATCHES, InheritedSupernet, store_score
from nas_engine.evaluation.training import evaluation_key
from nas_engine.evaluations import (
    Evaluation,
    EvaluationsDB,
    InheritedKey,
    InheritedScore,
    ProxyKey,
    ProxyScore,
)
from nas_engine.proxies.agreement import VOTE, VOTERS, Agreement, agreement, rank_vote
from nas_engine.proxies.registry import PROXIES
from nas_engine.proxies.sample import sample_architectures
from nas_engine.proxies.scores import proxy_scores
from nas_engine.spaces.genotypes import parse_genotype
from nas_engine.store import CONFIG, RunFolder

PROFILE = "classroom"
# The `StudyResult.extra` column of a supernet's inherited accuracy (one-shot NAS)
ONE_SHOT = "one-shot"

Progress = Callable[[str, int, int], None]  # (what: "retrain", "score" or ONE_SHOT, done, total)
Column = tuple[list[float | None], float | None]  # an extra column: values, ms per cell


@dataclass(frozen=True)
class StudyPlan:
    """What a study covers: the sampled cells as train configs (the retrain each needs)."""

    space: str
    sample: int
    seed: int
    configs: tuple[SearchConfig, ...]

    @property
    def archs(self) -> list[str]:
        return [c.train.genotype for c in self.configs]


def plan_study(space: str, sample: int, seed: int = 0, dataset: str | None = None,
               changes: dict[str, Any] | None = None) -> StudyPlan:
    """`sample` cells of `space` (and its extremes) as classroom retrains on `dataset` (the
    space's hard offline task by default); `changes` as `train --set`."""
    archs = sample_architectures(space, sample, seed)
    return StudyPlan(space, sample, seed, tuple(
        train_config(space, arch, PROFILE, dataset, seed, changes) for arch in archs))


def missing_truth(db: EvaluationsDB, plan: StudyPlan) -> list[SearchConfig]:
    """The plan's retrains the database lacks."""
    return [c for c in plan.configs if db.get(evaluation_key(c)) is None]


def _proxy_key(config: SearchConfig, proxy: str) -> ProxyKey:
    genotype = parse_genotype(config.space, config.train.genotype)
    return ProxyKey(config.space, architecture_key(config.space, genotype), config.data.name,
                    config.data.task(), proxy, config.seed)


@dataclass
class StudyResult:
    """Per cell (in plan order): the truth row and each proxy's stored score."""

    plan: StudyPlan
    truth: list[Evaluation]
    scores: dict[str, list[ProxyScore]]
    extra: dict[str, Column] = field(default_factory=dict)

    @property
    def accuracies(self) -> list[float]:
        return [row.test_score for row in self.truth]

    @property
    def retrain_ms(self) -> float:
        """Milliseconds of one retrain, the mean over the sample (a cached row keeps the
        seconds its training took)."""
        seconds = [row.seconds for row in self.truth if row.seconds is not None]
        return 1e3 * sum(seconds) / max(len(seconds), 1)

    def values(self, proxy: str) -> list[float | None]:
        if proxy == VOTE:
            return rank_vote([self.values(name) for name in VOTERS])
        if proxy in self.extra:
            return self.extra[proxy][0]
        return [s.value for s in self.scores[proxy]]

    def ms_per_arch(self, proxy: str) -> float | None:
        if proxy == VOTE:
            return sum(self.ms_per_arch(name) or 0.0 for name in VOTERS)
        if proxy in self.extra:
            return self.extra[proxy][1]
        ms = [s.ms for s in self.scores[proxy] if s.ms is not None]
        return sum(ms) / len(ms) if ms else None

    def columns(self) -> list[str]:
        voted = [VOTE] if all(name in self.scores for name in VOTERS) else []
        return [*self.scores, *voted, *self.extra]

    def table(self, seed: int = 0) -> list[Agreement]:
        return [agreement(name, self.values(name), self.accuracies, self.ms_per_arch(name),
                          seed) for name in self.columns()]


def run_study(db: EvaluationsDB, plan: StudyPlan, proxies: Sequence[str] = tuple(PROXIES),
              progress: Progress | None = None, run_id: str | None = None,
              device: torch.device | str = "cpu") -> StudyResult:
    """Retrain what the database lacks, score what it lacks (on `device`), and return the
    whole study."""
    unknown = sorted(set(proxies) - set(PROXIES))
    if unknown:
        raise ValueError(f"proxies must be among {', '.join(PROXIES)}; got {unknown}")
    report = progress or (lambda what, done, total: None)
    truth = _each(plan.configs, lambda c: train_once(c, db, run_id), "retrain", report)
    scored = _each(plan.configs, lambda c: _scores(db, c, proxies, device), "score", report)
    return StudyResult(plan, truth, {p: [row[p] for row in scored] for p in proxies})


def stored_study(db: EvaluationsDB, plan: StudyPlan, proxies: Sequence[str] = tuple(PROXIES)
                 ) -> StudyResult | None:
    """The study as far as the database has it, computing nothing: None until every cell of
    the plan has its truth; proxies with a score missing for any cell are left out."""
    truth = [db.get(evaluation_key(c)) for c in plan.configs]
    if any(row is None for row in truth):
        return None
    scores = {p: [db.get_proxy(_proxy_key(c, p)) for c in plan.configs] for p in proxies}
    return StudyResult(plan, truth, {p: rows for p, rows in scores.items()  # type: ignore[misc]
                                     if all(row is not None for row in rows)})


def scored_cells(db: EvaluationsDB, plan: StudyPlan, proxies: Sequence[str] = tuple(PROXIES)
                 ) -> dict[str, int]:
    """Per proxy, how many of the plan's cells have a stored score, in one query: the
    progress of a study that another process computes (the Zero-cost page follows the CLI)."""
    wanted = {_proxy_key(c, p).columns() for c in plan.configs for p in proxies}
    counts = dict.fromkeys(proxies, 0)
    for row in db.proxy_rows(space=plan.space, seed=plan.seed):
        if row.key.columns() in wanted:
            counts[row.key.proxy] += 1
    return counts


def _each(configs: Iterable[SearchConfig], fn: Callable[[SearchConfig], Any], what: str,
          report: Progress) -> list[Any]:
    configs = list(configs)
    results = []
    for i, config in enumerate(configs):
        results.append(fn(config))
        report(what, i + 1, len(configs))
    return results


def _scores(db: EvaluationsDB, config: SearchConfig, proxies: Sequence[str],
            device: torch.device | str) -> dict[str, ProxyScore]:
    stored = {p: db.get_proxy(_proxy_key(config, p)) for p in proxies}
    missing = [p for p, row in stored.items() if row is None]
    if missing:
        fresh = proxy_scores(config.space, config.train.genotype, config.data, config.seed,
                             missing, device)
        for p in missing:
            stored[p] = db.put_proxy(ProxyScore(_proxy_key(config, p), fresh[p],
                                                1e3 * fresh.seconds[p], fresh.reasons.get(p)))
    return stored  # type: ignore[return-value]


# -- one-shot: a supernet's inherited accuracy of each cell, as one more column ---------------
@dataclass(frozen=True)
class OneShotSource:
    """The supernet a study's one-shot column reads: a search run of the plan's space and
    dataset, at its newest epoch checkpoint."""

    folder: RunFolder
    epoch: int

    @classmethod
    def of(cls, run_dir: str | Path, plan: StudyPlan) -> OneShotSource:
        """ValueError saying why the run cannot score the plan's cells."""
        folder = RunFolder(run_dir)
        if not (folder.path / CONFIG).is_file():
            raise ValueError(f"{run_dir} is not a run folder (no {CONFIG})")
        config = folder.read_config()
        dataset = plan.configs[0].data.name
        if config.kind != "search":
            raise ValueError(f"run {folder.run_id}: a {config.kind} run has no "
                             "supernet; give a search run (e.g. the spos-clutter preset)")
        if config.space != plan.space or config.data.name != dataset:
            raise ValueError(f"run {folder.run_id}: its supernet is of {config.space} "
                             f"on {config.data.name}; the study's cells are {plan.space} on "
                             f"{dataset}")
        changed = _differences(config.data.task(), plan.configs[0].data.task(), "data")
        if changed:  # another task's images: its search part may hold the study's test part
            raise ValueError(f"run {folder.run_id}: its supernet learnt another {dataset} "
                             f"task than the study's cells are scored on ({'; '.join(changed)})")
        epochs = folder.checkpoints()
        if not epochs:
            raise ValueError(f"run {folder.run_id}: no epoch has finished with a "
                             "checkpoint yet")
        return cls(folder, max(epochs))

    def key(self, config: SearchConfig, bn_batches: int) -> InheritedKey:
        genotype = parse_genotype(config.space, config.train.genotype)
        return InheritedKey(self.folder.run_id, self.epoch, config.space,
                            architecture_key(config.space, genotype), bn_batches)


def _differences(mine: dict[str, Any], theirs: dict[str, Any], path: str) -> list[str]:
    """`path.key: mine against theirs` for each value that differs, at any depth."""
    found = []
    for name in sorted(mine.keys() | theirs.keys()):
        a, b = mine.get(name), theirs.get(name)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{path}.{name}")
        elif a != b:
            found.append(f"{path}.{name} {a!r} against {b!r}")
    return found


def one_shot_column(db: EvaluationsDB, plan: StudyPlan, source: OneShotSource,
                    progress: Progress | None = None, device: torch.device | str = "cpu",
                    bn_batches: int = BN_BATCHES) -> Column:
    """Each cell's inherited validation accuracy on `source`'s supernet (scored, and stored,
    where the database lacks it) and the mean milliseconds one took: a `StudyResult.extra`
    column."""
    report = progress or (lambda what, done, total: None)
    keys = [source.key(c, bn_batches) for c in plan.configs]
    rows = [db.get_inherited(k) for k in keys]
    supernet = None
    for i, (key, config) in enumerate(zip(keys, plan.configs)):
        if rows[i] is None:
            if supernet is None:  # loaded once, and only when a cell needs it
                supernet = InheritedSupernet(source.folder.path, str(device), source.epoch)
            rows[i] = store_score(db, supernet, key, config.train.genotype)
        report(ONE_SHOT, i + 1, len(keys))
    return _inherited_column(rows)  # type: ignore[arg-type]


def stored_one_shot(db: EvaluationsDB, plan: StudyPlan, source: OneShotSource,
                    bn_batches: int = BN_BATCHES) -> Column | None:
    """The one-shot column as far as the database has it: None until every cell is scored."""
    rows = [db.get_inherited(source.key(c, bn_batches)) for c in plan.configs]
    if any(row is None for row in rows):
        return None
    return _inherited_column(rows)  # type: ignore[arg-type]


def _inherited_column(rows: list[InheritedScore]) -> Column:
    ms = [row.ms for row in rows if row.ms is not None]
    return [row.val_acc for row in rows], (sum(ms) / len(ms) if ms else None)
