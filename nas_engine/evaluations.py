"""The evaluations database: one SQLite file under the runs root holding every retrained
architecture's result, so that nothing is trained twice.

A row is keyed by what decides the result: the space, the canonical architecture (equal cells
share one key: `evaluation.canonical`), the dataset with its parameters, the training profile
and the seed. Its `metric` says what was measured: accuracy (classification; `val_acc`,
`test_acc`) or MSE (the MLP space's regression sets; `val_mse`, `test_mse`); the other pair is
NULL. A file from before the metric existed gains its columns on first use (its rows read as
accuracy). Writers insert once (`INSERT OR IGNORE`): of two processes that trained the same
key, the first row stays and both read it back. WAL mode lets readers (the app's pages) read
while a writer writes, from several threads and processes; every connection is short-lived, so
no handle crosses a thread.

A profile's name in a key stands for its settings when the row was written (`profiles` holds
them): when the code's profile changes, the rows move to a name that carries a digest of the
settings they were trained with (`_align_profiles`), so a new default never answers with an old
training.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas_engine.config import TRAIN_PROFILES

FILENAME = "evaluations.sqlite"
PROXY_PROFILE = "classroom"  # the proxies score this profile's network (proxies.scores)
LATENCY_EXPONENT = -0.07  # seed 002's multi-objective score: accuracy × latency^−0.07

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    space TEXT NOT NULL,
    arch TEXT NOT NULL,
    dataset TEXT NOT NULL,
    dataset_params TEXT NOT NULL,
    profile TEXT NOT NULL,
    seed INTEGER NOT NULL,
    test_acc REAL,
    val_acc REAL,
    params INTEGER,
    flops INTEGER,
    latency_ms REAL,
    seconds REAL,
    run_id TEXT,
    arch_text TEXT,
    created REAL NOT NULL,
    metric TEXT NOT NULL DEFAULT 'accuracy',
    val_mse REAL,
    test_mse REAL,
    PRIMARY KEY (space, arch, dataset, dataset_params, profile, seed)
)
"""
# Columns added since the first schema, with their declarations: ALTER TABLE adds them to an
# older file.
_ADDED = (("metric", "TEXT NOT NULL DEFAULT 'accuracy'"), ("val_mse", "REAL"),
          ("test_mse", "REAL"))
METRICS = ("accuracy", "mse")


@dataclass(frozen=True)
class EvaluationKey:
    """What decides a retrained result. `dataset_params` is stored as canonical JSON."""

    space: str
    arch: str  # the canonical key
    dataset: str
    dataset_params: dict[str, Any]
    profile: str
    seed: int

    def columns(self) -> tuple[Any, ...]:
        params = json.dumps(self.dataset_params, sort_keys=True, separators=(",", ":"))
        return (self.space, self.arch, self.dataset, params, self.profile, self.seed)


@dataclass(frozen=True)
class Evaluation:
    """One stored row (`cached`: read back rather than trained by this request). `metric`
    says which pair holds the result: val_acc/test_acc or val_mse/test_mse."""

    key: EvaluationKey
    test_acc: float | None
    val_acc: float | None
    params: int | None
    flops: int | None
    latency_ms: float | None
    seconds: float | None
    run_id: str | None
    arch_text: str | None = None
    metric: str = "accuracy"
    val_mse: float | None = None
    test_mse: float | None = None
    created: float = field(default_factory=time.time)
    cached: bool = False

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}; got "
                             f"{self.metric!r}")

    @property
    def search_score(self) -> float | None:
        """Higher is better, what a search ranks by: val accuracy, or −val MSE."""
        return self.val_acc if self.metric == "accuracy" else _negated(self.val_mse)

    @property
    def test_score(self) -> float | None:
        """The held-out figure, higher is better: test accuracy, or −test MSE."""
        return self.test_acc if self.metric == "accuracy" else _negated(self.test_mse)

    @property
    def score(self) -> float | None:
        """Seed 002's multi-objective score: test accuracy × latency_ms^−0.07."""
        if self.test_acc is None or not self.latency_ms:
            return None
        return self.test_acc * self.latency_ms ** LATENCY_EXPONENT

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row.update(row.pop("key"))
        row.update(score=self.score, search_score=self.search_score,
                   test_score=self.test_score)
        return row


def _negated(value: float | None) -> float | None:
    return None if value is None else -value


_KEY_COLUMNS = ("space", "arch", "dataset", "dataset_params", "profile", "seed")
_RESULTS = ("test_acc", "val_acc", "params", "flops", "latency_ms", "seconds", "run_id",
            "arch_text", "metric", "val_mse", "test_mse", "created")  # Evaluation's order


# Zero-cost proxy scores (issue 16), one row per (architecture, data, proxy, seed): `value`
# NULL is an undefined score (NaN, ±inf, or a proxy that does not apply; `reason` says which),
# `ms` the milliseconds it took. A table of its own: `evaluations` is unchanged.
_PROXY_SCHEMA = """
CREATE TABLE IF NOT EXISTS proxy_scores (
    space TEXT NOT NULL,
    arch TEXT NOT NULL,
    dataset TEXT NOT NULL,
    dataset_params TEXT NOT NULL,
    proxy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    value REAL,
    ms REAL,
    reason TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (space, arch, dataset, dataset_params, proxy, seed)
)
"""
_PROXY_KEY_COLUMNS = ("space", "arch", "dataset", "dataset_params", "proxy", "seed")
_PROXY_COLUMNS = (*_PROXY_KEY_COLUMNS, "value", "ms", "reason", "created")


# One-shot supernets' scores (issue 16): a cell's validation accuracy on a search run's
# supernet weights (`evaluation.inherited`), keyed by the run, its checkpoint epoch, the cell
# and how many batches recalibrated BatchNorm.
_INHERITED_SCHEMA = """
CREATE TABLE IF NOT EXISTS inherited_scores (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    space TEXT NOT NULL,
    arch TEXT NOT NULL,
    bn_batches INTEGER NOT NULL,
    val_acc REAL NOT NULL,
    ms REAL,
    created REAL NOT NULL,
    PRIMARY KEY (run_id, epoch, space, arch, bn_batches)
)
"""
_INHERITED_KEY_COLUMNS = ("run_id", "epoch", "space", "arch", "bn_batches")
_INHERITED_COLUMNS = (*_INHERITED_KEY_COLUMNS, "val_acc", "ms", "created")


@dataclass(frozen=True)
class InheritedKey:
    """What decides an inherited accuracy: the supernet (its run and the epoch its weights
    are from), the cell (canonical key) and the BatchNorm recalibration."""

    run_id: str
    epoch: int
    space: str
    arch: str
    bn_batches: int

    def columns(self) -> tuple[Any, ...]:
        return (self.run_id, self.epoch, self.space, self.arch, self.bn_batches)


@dataclass(frozen=True)
class InheritedScore:
    key: InheritedKey
    val_acc: float
    ms: float | None
    created: float = field(default_factory=time.time)
    cached: bool = False


# The settings each training profile had when its rows were written (`_align_profiles`).
_PROFILES_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    profile TEXT NOT NULL,
    space TEXT NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (profile, space)
)
"""


def profile_label(name: str, settings: dict[str, Any], profile_settings: dict[str, Any]) -> str:
    """What a key calls a training: the profile's name when `settings` are the profile's own,
    else `settings_label` (a run that overrode some of them)."""
    return name if settings == profile_settings else settings_label(name, settings)


def settings_label(name: str, settings: dict[str, Any]) -> str:
    """The profile's name and a digest of `settings`: a training with settings other than
    the profile's current ones."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return f"{name}+{digest}"


def profile_name(label: str) -> str:
    """The profile a key's label belongs to (`settings_label`'s name)."""
    return label.split("+", 1)[0]


def current_label(label: str, written: dict[str, Any] | None,
                  current: dict[str, Any]) -> str:
    """A key's label, written where its profile had the settings `written` (None: not known,
    taken to be `current`), as this version of the profile calls it: a bare name means
    `written`, so it becomes their digest name unless they are `current`; the digest name of
    `current` becomes the bare name; any other digest name stays (it names its settings)."""
    name = profile_name(label)
    if label == name:
        return label if written is None else profile_label(name, written, current)
    return name if label == settings_label(name, current) else label


def _canonical_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ProxyKey:
    """What decides a proxy score: the architecture (canonical key), the data, the proxy and
    the seed of the network's initial weights and of the batch."""

    space: str
    arch: str  # the canonical key (`evaluation.canonical.architecture_key`)
    dataset: str
    dataset_params: dict[str, Any]
    proxy: str
    seed: int

    def columns(self) -> tuple[Any, ...]:
        return (self.space, self.arch, self.dataset, _canonical_json(self.dataset_params),
                self.proxy, self.seed)


@dataclass(frozen=True)
class ProxyScore:
    """One stored proxy score (`value` None: undefined)."""

    key: ProxyKey
    value: float | None
    ms: float | None
    reason: str | None = None
    created: float = field(default_factory=time.time)
    cached: bool = False

    def __post_init__(self) -> None:
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"a proxy score must be finite or None (undefined); got "
                             f"{self.value!r}")


class EvaluationsDB:
    """The database under `runs_dir`; the file is made by the first write (a page that only
    reads leaves the runs folder as it was)."""

    def __init__(self, runs_dir: str | Path) -> None:
        self.path = Path(runs_dir) / FILENAME
        self._current = False  # the file's table is known to have every column

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A generous timeout: a writer holds the lock for a single-row insert only.
        with closing(sqlite3.connect(self.path, timeout=30.0)) as db, db:
            if not self._current:
                self._current = _migrate(db)
            yield db

    def _has_table(self, table: str) -> bool:
        """Whether the file holds `table` yet (an empty file, e.g. one a viewer's `sqlite3`
        made, reads as no rows rather than an error)."""
        if not self.path.exists():
            return False
        with self._connect() as db:
            return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)
                              ).fetchone() is not None

    def get(self, key: EvaluationKey) -> Evaluation | None:
        found = self._select("evaluations", _RESULTS, dict(zip(_KEY_COLUMNS, key.columns())))
        return Evaluation(key, *found[0], cached=True) if found else None

    def put(self, evaluation: Evaluation) -> Evaluation:
        """Store the result unless the key has one already; returns the stored row (`cached`
        when another writer got there first)."""
        values = [getattr(evaluation, c) for c in _RESULTS]
        if self._insert_once("evaluations", _SCHEMA, (*_KEY_COLUMNS, *_RESULTS),
                             (*evaluation.key.columns(), *values)):
            return evaluation
        stored = self.get(evaluation.key)
        assert stored is not None  # the row that won
        return stored

    def _insert_once(self, table: str, schema: str, columns: tuple[str, ...],
                     values: tuple[Any, ...]) -> bool:
        """INSERT OR IGNORE one row into `table` (made by `schema` if new); whether it went
        in (False: the key had a row)."""
        self._create()
        with self._connect() as db:
            db.execute(schema)
            return bool(db.execute(
                f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})", values).rowcount)

    def _select(self, table: str, columns: tuple[str, ...], where: dict[str, Any]
                ) -> list[tuple[Any, ...]]:
        """The rows of `table` matching `where` (key column → value); none before the table
        exists."""
        if not self._has_table(table):
            return []
        clause = " AND ".join(f"{c} = ?" for c in where)
        query = f"SELECT {', '.join(columns)} FROM {table}"
        with self._connect() as db:
            return db.execute(query + (f" WHERE {clause}" if clause else ""),
                              tuple(where.values())).fetchall()

    def rows(self, **where: Any) -> list[Evaluation]:
        """Every stored row, optionally filtered by key columns (e.g. space="nb201")."""
        unknown = set(where) - set(_KEY_COLUMNS)
        if unknown:
            raise ValueError(f"filter must be one of {', '.join(_KEY_COLUMNS)}; got "
                             f"{sorted(unknown)}")
        n = len(_KEY_COLUMNS)
        return [Evaluation(EvaluationKey(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]),
                           *r[n:], cached=True)
                for r in self._select("evaluations", (*_KEY_COLUMNS, *_RESULTS), where)]

    # -- zero-cost proxy scores (the `proxy_scores` table, beside the accuracies) ------------
    def put_proxy(self, score: ProxyScore) -> ProxyScore:
        """Store a proxy's score unless its key has one; returns the stored row."""
        if self._insert_once("proxy_scores", _PROXY_SCHEMA, _PROXY_COLUMNS,
                             (*score.key.columns(), score.value, score.ms, score.reason,
                              score.created)):
            return score
        stored = self.get_proxy(score.key)
        assert stored is not None  # the row that won
        return stored

    def get_proxy(self, key: ProxyKey) -> ProxyScore | None:
        found = self._proxy_query(dict(zip(_PROXY_KEY_COLUMNS, key.columns())))
        return found[0] if found else None

    def proxy_rows(self, **where: Any) -> list[ProxyScore]:
        """Every stored proxy score, optionally filtered by key columns (e.g. proxy="snip")."""
        unknown = set(where) - set(_PROXY_KEY_COLUMNS)
        if unknown:
            raise ValueError(f"filter must be one of {', '.join(_PROXY_KEY_COLUMNS)}; got "
                             f"{sorted(unknown)}")
        if "dataset_params" in where:
            where["dataset_params"] = _canonical_json(where["dataset_params"])
        return self._proxy_query(where)

    def _proxy_query(self, where: dict[str, Any]) -> list[ProxyScore]:
        n = len(_PROXY_KEY_COLUMNS)
        return [ProxyScore(ProxyKey(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]), *r[n:],
                           cached=True)
                for r in self._select("proxy_scores", _PROXY_COLUMNS, where)]

    # -- inherited accuracies (the `inherited_scores` table: one-shot supernets' scores) -----
    def put_inherited(self, score: InheritedScore) -> InheritedScore:
        """Store a cell's inherited accuracy unless its key has one; returns the stored row."""
        if self._insert_once("inherited_scores", _INHERITED_SCHEMA, _INHERITED_COLUMNS,
                             (*score.key.columns(), score.val_acc, score.ms, score.created)):
            return score
        stored = self.get_inherited(score.key)
        assert stored is not None  # the row that won
        return stored

    def get_inherited(self, key: InheritedKey) -> InheritedScore | None:
        found = self._select("inherited_scores", _INHERITED_COLUMNS,
                             dict(zip(_INHERITED_KEY_COLUMNS, key.columns())))
        n = len(_INHERITED_KEY_COLUMNS)
        return InheritedScore(key, *found[0][n:], cached=True) if found else None


def _migrate(db: sqlite3.Connection) -> bool:
    """Add the columns an older file lacks and align its profiles; False while there is no
    table yet. The checks are repeated under an immediate transaction, so two processes
    migrating at once change the file once."""
    def missing() -> list[tuple[str, str]]:
        present = {row[1] for row in db.execute("PRAGMA table_info(evaluations)")}
        return [added for added in _ADDED if added[0] not in present]

    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'evaluations'").fetchone():
        return False
    if missing():
        db.execute("BEGIN IMMEDIATE")
        for column, declaration in missing():
            db.execute(f"ALTER TABLE evaluations ADD COLUMN {column} {declaration}")
        db.commit()
    db.execute(_PROFILES_SCHEMA)
    if _changed_profiles(db):
        db.execute("BEGIN IMMEDIATE")
        _align_profiles(db)
        db.commit()
    return True


def _changed_profiles(db: sqlite3.Connection) -> list[tuple[str, str, str | None, str]]:
    """(profile, space, the settings its rows were written with, the code's) where the two
    differ; None: a file from before `profiles`, whose rows are taken to be the code's."""
    stored = {(p, s): v for p, s, v in db.execute("SELECT profile, space, settings FROM "
                                                    "profiles")}
    current = [(name, space, _canonical_json(settings))
               for name, spaces in TRAIN_PROFILES.items() for space, settings in spaces.items()]
    return [(name, space, stored.get((name, space)), settings)
            for name, space, settings in current if stored.get((name, space)) != settings]


def _align_profiles(db: sqlite3.Connection) -> None:
    """A profile whose settings changed: the rows under its bare name take the digest of the
    settings they were trained with (where a request overriding the profile back to them looks),
    rows stored under the new settings' digest take the bare name, and the space's proxy scores
    are dropped when the proxies' network profile changed (recomputed in milliseconds)."""
    proxies = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'proxy_scores'").fetchone()
    for name, space, old, new in _changed_profiles(db):
        if old is not None:
            was, now = json.loads(old), json.loads(new)
            labels = [label for (label,) in db.execute(
                "SELECT DISTINCT profile FROM evaluations WHERE space = ?", (space,))
                if profile_name(label) == name]
            rename = "UPDATE OR IGNORE evaluations SET profile = ? WHERE space = ? AND profile = ?"
            for label in sorted(labels, key=lambda label: label != name):  # bare rows out first
                renamed = current_label(label, was, now)
                if renamed != label:
                    db.execute(rename, (renamed, space, label))
            if proxies and name == PROXY_PROFILE:
                db.execute("DELETE FROM proxy_scores WHERE space = ?", (space,))
        db.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?)", (name, space, new))
