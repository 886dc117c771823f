"""Retrained results carried between machines: `evaluations export` writes a database's rows
as JSON lines, `evaluations import` merges such a file into another runs root. A retrain costs
minutes; a proxy study's ground truth is hours of them, worth keeping when the machine goes.

The file's first line names the format and the training profiles' settings on the exporting
side, so a row keyed by a profile's bare name still means the settings it was trained with
where the importer's profile differs (it then takes that settings' digest name, as
`evaluations._align_profiles` does). Import inserts once: a key the database has keeps its row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from nas_engine.config import TRAIN_PROFILES
from nas_engine.evaluations import (
    Evaluation,
    EvaluationKey,
    EvaluationsDB,
    current_label,
    profile_name,
)

FORMAT = "alphascope-evaluations"
VERSION = 1
_KEY_FIELDS = tuple(f.name for f in fields(EvaluationKey))
_KEY_TYPES = {"space": str, "arch": str, "dataset": str, "dataset_params": dict, "profile": str,
              "seed": int}
_ROW_FIELDS = tuple(f.name for f in fields(Evaluation) if f.name not in ("key", "cached"))


@dataclass(frozen=True)
class Imported:
    added: int
    present: int  # keys the database had already (their rows kept)
    relabelled: int  # rows whose profile was another version's (now its settings' digest)


def export_rows(db: EvaluationsDB, path: str | Path, **where: Any) -> int:
    """Write the database's rows (optionally filtered by key columns, as `rows`) to `path`;
    how many."""
    rows = db.rows(**where)
    header = {"format": FORMAT, "version": VERSION, "profiles": TRAIN_PROFILES}
    lines = [json.dumps(header, sort_keys=True)]
    for row in rows:
        entry = {name: getattr(row.key, name) for name in _KEY_FIELDS}
        entry.update({name: getattr(row, name) for name in _ROW_FIELDS})
        lines.append(json.dumps(entry, sort_keys=True))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(rows)


def import_rows(db: EvaluationsDB, path: str | Path) -> Imported:
    """Merge the rows of an exported file; ValueError naming the line and what is wrong
    before anything is stored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not text; expected an `evaluations export` file") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: empty; expected an `evaluations export` file")
    header = _parse(path, *lines[0])
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"{path} line 1: not an `evaluations export` file (format "
                         f"{FORMAT!r} version {VERSION})")
    profiles = header.get("profiles")
    if not isinstance(profiles, dict):
        raise ValueError(f"{path} line 1: 'profiles' must be an object")
    rows = [_evaluation(path, n, _parse(path, n, line), profiles) for n, line in lines[1:]]
    added = sum(not db.put(row).cached for row, _ in rows)
    return Imported(added, len(rows) - added, sum(moved for _, moved in rows))


def _parse(path: str | Path, number: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} line {number}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} line {number}: expected a JSON object")
    return value


def _evaluation(path: str | Path, number: int, entry: dict[str, Any],
                profiles: dict[str, Any]) -> tuple[Evaluation, bool]:
    """The row, its profile named for this version's settings; whether that name changed."""
    missing = [name for name in (*_KEY_FIELDS, *_ROW_FIELDS) if name not in entry]
    if missing:
        raise ValueError(f"{path} line {number}: missing {', '.join(missing)}")
    wrong = [name for name in _KEY_FIELDS if not isinstance(entry[name], _KEY_TYPES[name])]
    if wrong:
        raise ValueError(f"{path} line {number}: " + ", ".join(
            f"{name} must be {_KEY_TYPES[name].__name__}" for name in wrong))
    key = EvaluationKey(**{name: entry[name] for name in _KEY_FIELDS})
    label = _local_label(key.profile, key.space, profiles)
    try:
        row = Evaluation(EvaluationKey(**{**key.__dict__, "profile": label}),
                         **{name: entry[name] for name in _ROW_FIELDS})
    except ValueError as exc:
        raise ValueError(f"{path} line {number}: {exc}") from None
    return row, label != key.profile


def _local_label(profile: str, space: str, profiles: dict[str, Any]) -> str:
    """The exporter's label as this version calls it: a bare name means the exporter's
    settings of that profile (the file's header)."""
    name = profile_name(profile)
    current = TRAIN_PROFILES.get(name, {}).get(space)
    if current is None:
        return profile
    return current_label(profile, profiles.get(name, {}).get(space), current)
