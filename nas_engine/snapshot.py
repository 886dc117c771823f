"""`Snapshot`: an immutable view of a run at one moment, everything a page or a notebook draws.

It sits in its own module so that `viz` and the pages read runs without importing the thread
that runs them (`runner`). Its history views are windows on columns that only grow (see
`history.py`), so taking one copies nothing large.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas_engine.config import SearchConfig
from nas_engine.history import HistoryView
from nas_engine.records import Record
from nas_engine.states import RunState

SPEED = "speed"  # the run's own live parameter (steps per second, 0 = full speed)


@dataclass(frozen=True)
class Snapshot:
    """A run at one moment. `version` grows with every change, so a viewer can skip a redraw
    when it has not moved."""

    run_id: str
    config: SearchConfig
    state: RunState
    message: str | None
    version: int
    step: int
    epoch: int
    steps_per_epoch: int  # 0 until the job is built (a run read from disk never knows it)
    total_steps: int
    elapsed_s: float
    eta_s: float | None
    latest: Record | None
    steps: HistoryView
    epochs: HistoryView
    live: dict[str, float]
    live_changes: tuple[Record, ...]
    lineage: dict[str, Any] | None
    edge_labels: tuple[str, ...]
    checkpoint_epochs: tuple[int, ...]  # epochs with a checkpoint: where a branch may start

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def is_active(self) -> bool:
        """Still able to change by itself (a viewer keeps polling)."""
        return self.state.is_active

    @property
    def live_in_force(self) -> dict[str, float]:
        """The live values worth stating: all but a speed limit of 0 (full speed, the
        default, which is no limit)."""
        return {name: value for name, value in self.live.items() if value or name != SPEED}
