"""The teaching presets: `collapse-demo` collapses and `collapse-cured`, one setting apart,
does not. The three-seed measurement is benchmarks/collapse_presets.py (and, retrained,
benchmarks/lesson_punchline.py); here seed 0, where the margins are wide (measured: 6 of 6
skip edges from epoch 5 on, against 1 of 6 at epoch 8 of 10 and 0 at the end)."""

from __future__ import annotations

from typing import Any

from nas_engine.config import preset
from nas_engine.search import Search
from nas_engine.spaces import SPACES


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_collapse_twins_differ_in_one_setting() -> None:
    """Comparing the twins isolates the effect of that one mitigation."""
    demo, cured = (_leaves(preset(n).to_dict()) for n in ("collapse-demo", "collapse-cured"))
    assert {k for k in demo if demo[k] != cured[k]} == {"mitigations.skip_dropout"}
    assert demo["data.name"] == "digits_clutter" and demo["device.name"] == "cpu"


def _epoch(name: str, epoch: int | None = None) -> dict[str, Any]:
    """The record of `epoch` (default: the last) of the whole search: its schedules depend on
    the search's length, so the search keeps it and stops there."""
    search = Search(preset(name).with_changes({"record.checkpoint": False, "threads": 1}))
    epoch = epoch or search.config.epochs
    while True:
        for record in search.step():
            if record["kind"] == "epoch" and record["epoch"] == epoch:
                return record


def test_demo_collapses_and_its_twin_does_not() -> None:
    edges = SPACES[preset("collapse-demo").space].derived_edges  # 6: the NB201 cell
    demo, cured = _epoch("collapse-demo", 5), _epoch("collapse-cured", 8)
    assert demo["skip_count"] == edges, demo["genotype"]  # measured: 6 from epoch 5 on
    assert cured["skip_count"] * 2 < edges, cured["genotype"]  # measured: 1, then 1 and 0
    skip = preset("collapse-demo").validate().ops.index("skip_connect")
    rows = demo["alphas"]["cell"]
    demo_skip_weight = sum(row[skip] for row in rows) / len(rows)
    assert demo_skip_weight > 1 / 3  # above uniform: skip_connect gains mass, not just argmax
