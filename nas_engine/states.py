"""The states of a run and what each allows, in one place: the runner, the store, the CLI and
the pages ask a state what it permits instead of listing states themselves.

    created ──start──► running ◄──resume/step── paused
                          │  ╲──pause──────────────►│
                          ▼   ╲                     │
            finished / failed   stopped ◄───stop────┘      (interrupted: its process died)

`stopped` and `interrupted` continue from a checkpoint in a new session; `finished` and
`failed` are over (a finished run may still be extended by more epochs).
"""

from __future__ import annotations

from enum import Enum


class RunState(str, Enum):
    """A `str` enum: its values are what status.json holds, and it compares equal to them."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:  # "running" in messages and f-strings, not "RunState.RUNNING"
        return self.value

    @property
    def is_active(self) -> bool:
        """Can change by itself (a viewer keeps polling)."""
        return self in (RunState.CREATED, RunState.RUNNING)

    @property
    def is_live(self) -> bool:
        """A process owns it: it may still move, take controls and live changes."""
        return self in (RunState.CREATED, RunState.RUNNING, RunState.PAUSED)

    @property
    def is_controllable(self) -> bool:
        """Takes pause, step and step-epoch now (its worker is between or inside steps)."""
        return self in (RunState.RUNNING, RunState.PAUSED)

    @property
    def is_terminal(self) -> bool:
        """Over: nothing is live any more and there is nothing to continue."""
        return self in (RunState.FINISHED, RunState.FAILED)

    @property
    def can_continue(self) -> bool:
        """Ended early: resumes from its newest checkpoint with the same records."""
        return self in (RunState.STOPPED, RunState.INTERRUPTED)
