"""Seed 001's MLP space: an architecture is a handful of decisions (depth, width, activation,
learning rate, optimiser, dropout), stored as one canonical JSON text so that equal MLPs share
one key in the evaluations database.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from nas_engine.catalog import SPACE_OPS
from nas_engine.config import MLP_OPTIMIZERS

FIELDS = ("layers", "width", "activations", "lr", "optimizer", "dropout")


@dataclass(frozen=True)
class MlpArch:
    """One MLP: `layers` hidden layers of `width` units, activation i after layer i (the same
    in every layer unless the space has one decision per layer), trained with `optimizer` at
    `lr`, dropout after each hidden activation."""

    layers: int
    width: int
    activations: tuple[str, ...]
    lr: float
    optimizer: str
    dropout: float

    def __post_init__(self) -> None:
        # Equal MLPs must write one text (their database key): 0 and 0.0, a list and a tuple.
        object.__setattr__(self, "activations", tuple(self.activations))
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "dropout", float(self.dropout))
        if len(self.activations) != self.layers:
            raise ValueError(f"activations must name one activation per hidden layer "
                             f"({self.layers}); got {len(self.activations)}")
        unknown = sorted(set(self.activations) - set(SPACE_OPS["mlp"]))
        if unknown:
            raise ValueError(f"unknown activation {unknown[0]!r} (the mlp activations: "
                             f"{', '.join(SPACE_OPS['mlp'])})")
        if self.optimizer not in MLP_OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(MLP_OPTIMIZERS)}; got "
                             f"{self.optimizer!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0; got {self.lr!r}")
        if self.layers < 1 or self.width < 1:
            raise ValueError(f"layers and width must be >= 1; got {self.layers}, {self.width}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "activations": list(self.activations)}

    def to_text(self) -> str:
        """Canonical JSON: sorted keys, no spaces, numbers as floats where they are rates."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MlpArch:
        if not isinstance(data, dict):
            raise ValueError("an MLP is a JSON object with " + ", ".join(FIELDS))
        missing = [f for f in FIELDS if f not in data]
        extra = sorted(set(data) - set(FIELDS))
        if missing or extra:
            what = f"missing {', '.join(missing)}" if missing else f"unknown {extra[0]!r}"
            raise ValueError(f"an MLP has the fields {', '.join(FIELDS)} ({what})")
        layers, width = data["layers"], data["width"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (layers, width)):
            raise ValueError(f"layers and width must be integers; got {layers!r}, {width!r}")
        activations = data["activations"]
        if isinstance(activations, str):
            activations = [activations] * layers
        if not isinstance(activations, list):
            raise ValueError(f"activations must be a list or one name; got {activations!r}")
        try:
            lr, dropout = float(data["lr"]), float(data["dropout"])
        except (TypeError, ValueError):
            raise ValueError(f"lr and dropout must be numbers; got {data['lr']!r}, "
                             f"{data['dropout']!r}") from None
        return cls(layers, width, tuple(activations), lr, data["optimizer"], dropout)

    @classmethod
    def from_text(cls, text: str) -> MlpArch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"an MLP is JSON text ({exc.msg} at character {exc.pos})") from None
        return cls.from_dict(data)
