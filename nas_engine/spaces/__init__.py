"""Search spaces: the supernets, their α shapes and how a cell is derived from α."""

from __future__ import annotations

from nas_engine.config import SearchConfig
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.darts import DartsSpace
from nas_engine.spaces.nb201 import NB201Space

SPACES: dict[str, type[SearchSpace]] = {"darts": DartsSpace, "nb201": NB201Space}


def make_space(config: SearchConfig) -> SearchSpace:
    """The space a validated config names, with its op subset and network size."""
    return SPACES[config.space](list(config.ops or []), config.network)


__all__ = ["SPACES", "SearchSpace", "make_space"]
