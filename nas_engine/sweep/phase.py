"""The phase diagram of a sweep: one setting against another (or against the seed), each cell
coloured by what its trials ended with (final skip count, retrained accuracy, λmax, the
alarm's epoch), the mean over the trials it pools (the other settings and seeds). Every cell
links to its run, or to the Compare page for several.

Pure functions of `results.TrialRow`s: a Vega-Lite spec (its numbers in the dataset `phase`),
drawn by the app, a notebook or a test alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from nas_engine.sweep.results import TrialRow
from nas_engine.sweep.spec import SEED_AXIS
from nas_engine.viz import ON_CANVAS

# What a cell can be coloured by: TrialRow field → (title, number format, colour scheme).
VALUES: dict[str, tuple[str, str, str]] = {
    "skip_count": ("final skip count", ".1f", "reds"),
    "retrained": ("retrained test accuracy", ".3f", "greens"),
    "lambda_max": ("λmax (last measured)", ".3g", "oranges"),
    "alarm_epoch": ("collapse alarm epoch", ".1f", "blues"),
}
COMPARE_MAX = 4  # the Compare page's limit
NO_VALUE = "#eeeeee"


@dataclass(frozen=True)
class PhaseCell:
    """The trials at one (x, y): the mean of their values (None: none has one yet), and
    their runs."""

    x: Any
    y: Any
    value: float | None
    values: tuple[float | None, ...]
    runs: tuple[str, ...]

    @property
    def link(self) -> str | None:
        """The run's live view; several runs: the Compare page (at most its four)."""
        if not self.runs:
            return None
        if len(self.runs) == 1:
            return f"live?run={quote(self.runs[0], safe='')}"
        return "compare?runs=" + ",".join(quote(r, safe="") for r in self.runs[:COMPARE_MAX])


def axis_values(data: dict[str, Any], axis: str) -> list[Any]:
    """An axis' values in the sweep's order: a grid setting's, or the seeds."""
    return list(data["seeds"]) if axis == SEED_AXIS else list(data["grid"][axis])


def phase_cells(rows: Sequence[TrialRow], x: str, y: str, value: str) -> list[PhaseCell]:
    """One cell per (x, y) some trial has, in trial order; `x`, `y`: grid settings or
    `seed`; `value`: a key of VALUES."""
    if value not in VALUES:
        raise ValueError(f"value must be one of {', '.join(VALUES)}; got {value!r}")
    if x == y:
        raise ValueError(f"the two axes must differ; both are {x!r}")
    groups: dict[tuple[str, str], list[TrialRow]] = {}
    for row in rows:
        groups.setdefault((repr(row.point[x]), repr(row.point[y])), []).append(row)
    cells = []
    for members in groups.values():
        values = tuple(r.value(value) for r in members)
        known = [v for v in values if v is not None]
        cells.append(PhaseCell(members[0].point[x], members[0].point[y],
                               statistics.mean(known) if known else None, values,
                               tuple(r.run_id for r in members if r.run_id)))
    return cells


def label(value: Any) -> str:
    """An axis value as the chart names it (0.003, not 0.0030000000000000001)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def phase_heatmap(cells: Sequence[PhaseCell], x: str, y: str, value: str,
                  x_values: Sequence[Any], y_values: Sequence[Any]) -> dict[str, Any]:
    """The diagram as a Vega-Lite spec: a square per cell coloured by its value (grey where
    no trial has one), the value written in it with how many trials it pools, a click
    opening its link."""
    title, number, scheme = VALUES[value]
    data: dict[str, list[Any]] = {"x": [], "y": [], "value": [], "text": [], "link": [],
                                  "runs": [], "dark": []}
    known_values = [c.value for c in cells if c.value is not None]
    low, high = (min(known_values), max(known_values)) if known_values else (0.0, 0.0)
    for cell in cells:
        known = [v for v in cell.values if v is not None]
        text = "–" if cell.value is None else format(cell.value, number)
        if len(cell.values) > 1:
            text += f" ({len(known)}/{len(cell.values)})" if len(known) < len(cell.values) \
                else f" (×{len(cell.values)})"
        data["x"].append(label(cell.x))
        data["y"].append(label(cell.y))
        data["value"].append(cell.value)
        data["text"].append(text)
        data["link"].append(cell.link)
        data["runs"].append(", ".join(cell.runs))
        # white text on the darker half of the scale, as the α heatmap writes it
        data["dark"].append(cell.value is not None and high > low
                            and cell.value - low > 0.6 * (high - low))
    position = {
        "x": {"field": "x", "type": "ordinal", "sort": [label(v) for v in x_values],
              "title": x, "axis": {"labelAngle": 0}},
        "y": {"field": "y", "type": "ordinal", "sort": [label(v) for v in y_values],
              "title": y}}
    tooltip = [{"field": "x", "title": x}, {"field": "y", "title": y},
               {"field": "value", "title": title, "format": number},
               {"field": "runs", "title": "runs"}]
    return {
        **ON_CANVAS, "datasets": {"phase": data}, "data": {"name": "phase"},
        "width": {"step": 90}, "height": {"step": 60}, "encoding": position,
        "layer": [
            {"mark": {"type": "rect", "color": NO_VALUE}},
            {"mark": {"type": "rect", "cursor": "pointer"}, "encoding": {
                "color": {"field": "value", "type": "quantitative",
                          "scale": {"scheme": scheme}, "legend": {"title": title}},
                "href": {"field": "link"}, "tooltip": tooltip}},
            {"mark": {"type": "text", "fontSize": 12, "cursor": "pointer"}, "encoding": {
                "text": {"field": "text"}, "href": {"field": "link"}, "tooltip": tooltip,
                "color": {"condition": {"test": "datum.dark", "value": "white"},
                          "value": "black"}}}]}
