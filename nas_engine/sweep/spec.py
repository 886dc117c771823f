"""What a sweep is: a base config (a preset plus fixed settings), a grid of settings whose
values multiply, and seeds; one trial per point. Everything is checked before anything runs,
so a bad value is refused in one line naming the flag and the setting (`config.ConfigError`
names the dotted field).

The points go seed by seed (all settings of the first seed, then the next), so that a sweep
cut short or still running has covered every setting on some seed.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from nas_engine.config import TRAIN_PROFILES, SearchConfig, parse_assignment, preset

MAX_TRIALS = 1000
SEED_AXIS = "seed"  # the name a phase diagram gives the seeds' axis
_SEEDS = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


@dataclass(frozen=True)
class SweepSpec:
    """`grid`: setting (dotted path) → its values, in the order given; `changes`: fixed
    settings for every trial (`--set`); `retrain`: the profile every trial's final cell is
    retrained with, or None, and `retrain_changes` its settings changed (`--retrain-set`,
    e.g. fewer epochs: a cheaper score the database keys apart)."""

    name: str
    preset: str | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    changes: dict[str, Any] = field(default_factory=dict)
    retrain: str | None = None
    retrain_changes: dict[str, Any] = field(default_factory=dict)

    def base(self) -> SearchConfig:
        """The config every trial starts from: one torch thread unless `--set threads=N`
        (N cores then run N trials)."""
        config = preset(self.preset) if self.preset else SearchConfig().validate()
        return config.with_changes({"threads": 1, **self.changes})

    def points(self) -> list[dict[str, Any]]:
        """Each trial's changes to the base: its grid values and its seed."""
        keys = list(self.grid)
        return [{**dict(zip(keys, values)), SEED_AXIS: seed} for seed in self.seeds
                for values in itertools.product(*(self.grid[k] for k in keys))]

    def configs(self) -> list[SearchConfig]:
        """Every trial's config, checked; ValueError naming the grid setting and value that
        is refused (the first one)."""
        base = self.base()
        configs = []
        for point in self.points():
            try:
                configs.append(base.with_changes(point))
            except ValueError as exc:
                path = getattr(exc, "path", None)  # a ConfigError's setting
                where = (f"--grid {path}={point[path]!r}: " if path in self.grid else
                         "--seeds: " if path == SEED_AXIS else "")
                raise ValueError(where + str(exc)) from None
        return configs

    def validate(self) -> SweepSpec:
        """Check the spec as a whole and every trial's config; returns self."""
        if self.retrain is not None and self.retrain not in TRAIN_PROFILES:
            raise ValueError(f"--retrain must be one of {', '.join(TRAIN_PROFILES)}; got "
                             f"{self.retrain!r}")
        if self.retrain_changes and self.retrain is None:
            raise ValueError("--retrain-set goes with --retrain")
        if SEED_AXIS in self.changes:
            raise ValueError("--set seed: give the seeds with --seeds (e.g. --seeds 0-4)")
        for key in self.grid:
            if key == SEED_AXIS:
                raise ValueError("--grid seed: give the seeds with --seeds (e.g. --seeds 0-4)")
            if key in self.changes:
                raise ValueError(f"--set {key} is also in --grid; give it in one of them")
            if not self.grid[key]:
                raise ValueError(f"--grid {key} needs at least one value")
        trials = len(self.seeds) * math.prod(len(v) for v in self.grid.values())
        if trials > MAX_TRIALS:
            raise ValueError(f"a sweep has at most {MAX_TRIALS} trials; this grid × seeds has "
                             f"{trials}")
        configs = self.configs()
        if self.retrain is not None:
            from nas_engine.evaluation.training import retrain_config  # torch: only here

            if configs[0].kind != "search":
                raise ValueError(f"--retrain retrains a search's cell; these trials are "
                                 f"{configs[0].kind} runs")
            try:  # the profile as changed, on a stand-in: the cell of a uniform α
                retrain_config(configs[0], _uniform_cell(configs[0]), self.retrain,
                               changes=self.retrain_changes)
            except ValueError as exc:
                raise ValueError(f"--retrain-set: {exc}") from None
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "preset": self.preset, "grid": self.grid,
                "seeds": self.seeds, "changes": self.changes, "retrain": self.retrain,
                "retrain_changes": self.retrain_changes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        return cls(**json.loads(json.dumps(data)))


def _uniform_cell(config: SearchConfig) -> dict[str, Any]:
    """The cell a uniform α derives, as a record holds it."""
    import numpy as np

    from nas_engine.spaces import make_space

    space = make_space(config)
    shapes = space.alpha_shapes()
    return space.genotype_dict(space.derive({c: np.ones(s) for c, s in shapes.items()}))


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """`--grid key=v1,v2,...` flags as setting → values; each value is read as `--set` reads
    one (JSON when it parses, else text)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, raw = item.split("=", 1) if "=" in item else ("", "")
        key = key.strip()
        parts = [p.strip() for p in raw.split(",")]
        if not key or not all(parts):
            raise ValueError(f"--grid must be key=value1,value2,...; got {item!r}")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; give its values once, "
                             "comma-separated")
        values = [parse_assignment(f"{key}={part}")[1] for part in parts]
        if any(value in values[:i] for i, value in enumerate(values)):
            raise ValueError(f"--grid {key} repeats a value; got {raw!r}")
        grid[key] = values
    return grid


def parse_seeds(text: str) -> list[int]:
    """`0-4`, `0,2,5` or a mix (`0-2,7`): the seeds in the order given, each once."""
    text = text.replace(" ", "")
    if not _SEEDS.fullmatch(text):
        raise ValueError(f"--seeds must be seeds or ranges such as 0-4 or 0,2,5; got {text!r}")
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ValueError(f"--seeds range {part} runs backwards; write {last}-{first}")
        seeds += [s for s in range(first, last + 1) if s not in seeds]
    return seeds
