"""Strategies on tiny float64 supernets, built the way a search builds them (`build_model`)."""

from __future__ import annotations

import torch

from nas_engine.components import Components, SearchContext
from nas_engine.config import SearchConfig
from nas_engine.search import build_model
from nas_engine.strategies import Strategy, make_strategy

Batch = tuple[torch.Tensor, torch.Tensor]
TINY_NETWORK = {"channels": 4, "layers": 3, "cells_per_stage": 1}


def tiny_config(space: str, **changes) -> SearchConfig:
    return SearchConfig(space=space).with_changes({"network": TINY_NETWORK, **changes})


def batch(seed: int, size: int = 6, classes: int = 3, image: int = 8,
          dtype: torch.dtype = torch.float64) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(size, 1, image, image, generator=g, dtype=torch.float64).to(dtype),
            torch.randint(0, classes, (size,), generator=g))


def tiny_strategy(config: SearchConfig, seed: int = 0, image: int = 8,
                  dtype: torch.dtype = torch.float64) -> Strategy:
    """A float64 strategy (1 input channel, 3 classes; `dtype` another type) with its
    components bound; λmax reads a fixed batch of seed 99."""
    strategy = make_strategy(config, torch.device("cpu"))
    components = Components(config)
    torch.manual_seed(seed)
    model = build_model(config, strategy, components, 1, 3, image).to(dtype)
    strategy.attach(model, components)
    fixed = batch(99, 16, image=image, dtype=dtype)
    components.bind(SearchContext(config, model, strategy.w_optimizer, lambda n: fixed))
    return strategy
