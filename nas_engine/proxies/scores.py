"""`proxy_scores`: every chosen proxy of one architecture, on the network a classroom retrain
would train (same size, same seeded initial weights) and one batch of the search part of the
data (the held-out test part is never read).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from nas_engine.catalog import TABULAR_DATASETS
from nas_engine.config import DataConfig, train_config
from nas_engine.data import BatchStream, load_images
from nas_engine.evaluation.networks import build_network
from nas_engine.evaluation.training import network_size
from nas_engine.evaluations import PROXY_PROFILE
from nas_engine.loop import seed_everything
from nas_engine.proxies.base import Batch, LossFn
from nas_engine.proxies.registry import PROXIES
from nas_engine.proxies.scoring import ProxyResult, evaluate
from nas_engine.spaces.genotypes import parse_genotype
from nas_engine.tabular import RowStream, load_tabular

BATCH_SIZE = 64  # the zero-cost convention (REFERENCE.md §4)


class ProxyScores(dict[str, float | None]):
    """proxy -> score (None: undefined), with `.seconds` and `.reasons` (the undefined ones')
    per proxy."""

    def __init__(self, results: dict[str, ProxyResult]) -> None:
        super().__init__({name: r.value for name, r in results.items()})
        self.seconds = {name: r.seconds for name, r in results.items()}
        self.reasons = {name: r.reason for name, r in results.items() if r.reason}


def network_and_batch(space: str, arch_text: str, data: DataConfig, seed: int
                      ) -> tuple[nn.Module, Batch, LossFn]:
    """The seeded classroom network of the arch, one batch of the search part and the loss."""
    genotype = parse_genotype(space, arch_text)
    if data.name in TABULAR_DATASETS:
        rows = load_tabular(data, seed)
        stream = RowStream(rows, torch.cat([rows.train, rows.val]), BATCH_SIZE, seed)
        seed_everything(seed)
        model = build_network(space, genotype, rows.num_features, rows.num_outputs, 0)
        loss: LossFn = F.mse_loss if rows.task == "regression" else F.cross_entropy
        return model, stream.next(), loss
    images = load_images(data, seed)
    stream = BatchStream(images, images.search, BATCH_SIZE, seed)
    size = network_size(train_config(space, arch_text, PROXY_PROFILE, data.name, seed))
    seed_everything(seed)  # as `Training`: the retrain's initial weights
    model = build_network(space, genotype, images.in_channels, images.num_classes,
                          images.image_size, **size)
    return model, stream.next(), F.cross_entropy


def proxy_scores(space: str, arch_text: str, data: DataConfig, seed: int,
                 proxies: Iterable[str] = tuple(PROXIES),
                 device: torch.device | str = "cpu") -> ProxyScores:
    """Each proxy's score of `arch_text` (None where undefined), with its seconds; the
    network is initialised on the CPU (the same weights whatever the device), then moved."""
    names = list(proxies)
    unknown = sorted(set(names) - set(PROXIES))
    if unknown:
        raise ValueError(f"unknown proxies {unknown}; known: {', '.join(PROXIES)}")
    model, (x, y), loss = network_and_batch(space, arch_text, data, seed)
    model, batch = model.to(device), (x.to(device), y.to(device))
    return ProxyScores({name: evaluate(name, model, batch, loss) for name in names})
