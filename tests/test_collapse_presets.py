"""The teaching presets: `collapse-demo` collapses at once and `collapse-cured`, one setting
apart, does not. The full three-seed, whole-search measurement is
benchmarks/collapse_presets.py; here one epoch each on seed 0, where the margins are wide
(measured: 8 of 8 skip edges against 0 of 8)."""

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
    assert demo["data.name"] == "digits" and demo["device.name"] == "cpu"


def _first_epoch(name: str) -> dict[str, Any]:
    """Epoch 1 of the whole search (its schedules depend on the search's length)."""
    search = Search(preset(name).with_changes({"record.checkpoint": False, "threads": 1}))
    while True:
        for record in search.step():
            if record["kind"] == "epoch":
                return record


def test_demo_collapses_in_its_first_epoch_and_its_twin_does_not() -> None:
    edges = SPACES[preset("collapse-demo").space].derived_edges  # 8: the DARTS normal cell
    demo, cured = _first_epoch("collapse-demo"), _first_epoch("collapse-cured")
    assert demo["kind"] == cured["kind"] == "epoch"
    assert demo["skip_count"] * 2 >= edges, demo["genotype"]
    assert cured["skip_count"] * 2 < edges, cured["genotype"]
    skip = preset("collapse-demo").validate().ops.index("skip_connect")
    rows = demo["alphas"]["normal"]
    demo_skip_weight = sum(row[skip] for row in rows) / len(rows)
    assert demo_skip_weight > 1 / 3  # above uniform: skip_connect gains mass, not just argmax
