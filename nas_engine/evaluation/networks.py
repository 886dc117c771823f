"""Networks built from a derived genotype, to retrain from scratch: is the chosen cell any good?

A supernet's accuracy does not say (REFERENCE.md §5): the derived cell has to be trained alone.
- DARTS (Liu et al., ICLR 2019; quark0/darts `model.py` NetworkCIFAR): stem conv 3x3 with 3·C
  channels + BN, `layers` cells with reductions at layers//3 and 2·layers//3 (channels doubled
  there), each cell preprocessing its two inputs and applying the genotype's two ops per node,
  output the concat of the `concat` nodes; affine BatchNorm everywhere, no BN after pools;
  drop path on the ops that are not identities; optional auxiliary head after cell
  2·layers//3 (weight 0.4 in the official `train.py`).
- NAS-Bench-201 (Dong & Yang, ICLR 2020; the benchmark's TinyNetwork): stem conv 3x3 C + BN,
  three stages of N cells (C, 2C, 4C) with a stride-2 ResNet block between them, BN-ReLU,
  global pooling, classifier.
- MLP (seed 001's space): Linear-activation-Dropout per hidden layer, a Linear head.

The ops are those of `nas_engine.spaces.ops`, built for one edge with affine BN, so a retrained
op is the supernet's op (DARTS' pools lose the supernet's BN, as in the official net).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_engine.catalog import CELL_SPACES
from nas_engine.spaces.dag import edge_list
from nas_engine.spaces.darts import reduction_layers
from nas_engine.spaces.genotypes import (
    DARTS_INPUTS,
    NB201_INPUTS,
    NB201_STEPS,
    DartsGenotype,
    NB201Genotype,
)
from nas_engine.spaces.mlp import MlpArch
from nas_engine.spaces.nb201 import skeleton
from nas_engine.spaces.ops import DilConv, EdgeInput, FactorizedReduce, ReLUConvBN, SepConv

Tensor = torch.Tensor
REDUCTIONS = 2  # both spaces halve the image twice


class SingleEdge(nn.Module):
    """One op of `nas_engine.spaces.ops` (built with edges=1) as a plain `x -> y` module."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: Tensor) -> Tensor:
        return self.op(EdgeInput(x))[:, 0]


class Zero(nn.Module):
    """`none`: zeros shaped like the edge's output (subsampled on a stride-2 edge)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


def _identity(channels: int, stride: int) -> nn.Module:
    if stride == 1:
        return nn.Identity()
    return SingleEdge(FactorizedReduce(channels, channels, affine=True))


# (channels, stride) -> the op of one edge of a retrained cell, for the names of both spaces.
EvalOp = Callable[[int, int], nn.Module]
EVAL_OPS: dict[str, EvalOp] = {
    "none": lambda c, s: Zero(s),
    "skip_connect": _identity,
    # No BN after the pools: the official evaluation net drops the supernet's.
    "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, s, 1),
    "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, s, 1, count_include_pad=False),
    "sep_conv_3x3": lambda c, s: SingleEdge(SepConv(c, 1, 3, s, affine=True)),
    "sep_conv_5x5": lambda c, s: SingleEdge(SepConv(c, 1, 5, s, affine=True)),
    "dil_conv_3x3": lambda c, s: SingleEdge(DilConv(c, 1, 3, s, affine=True)),
    "dil_conv_5x5": lambda c, s: SingleEdge(DilConv(c, 1, 5, s, affine=True)),
    "nor_conv_1x1": lambda c, s: SingleEdge(ReLUConvBN(c, c, 1, 1, s, affine=True)),
    "nor_conv_3x3": lambda c, s: SingleEdge(ReLUConvBN(c, c, 1, 3, s, affine=True)),
}


def eval_op(name: str, channels: int, stride: int = 1) -> nn.Module:
    """The retrained network's op `name`, with a clear error for a name no space has."""
    if name not in EVAL_OPS:
        raise ValueError(f"unknown op {name!r}; known ops: {sorted(EVAL_OPS)}")
    return EVAL_OPS[name](channels, stride)


def drop_path(x: Tensor, prob: float) -> Tensor:
    """Zero whole samples of an op's output with probability `prob`, scaling the rest by
    1/(1-prob) (the official `utils.drop_path`, out of place)."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


def _preprocess(channels_in: int, channels: int, reduce: bool) -> nn.Module:
    """A cell input brought to `channels`: FactorizedReduce after a reduction, else ReLU-conv
    1x1-BN."""
    if reduce:
        return SingleEdge(FactorizedReduce(channels_in, channels, affine=True))
    return SingleEdge(ReLUConvBN(channels_in, channels, 1, 1, 1, affine=True))


class DartsEvalCell(nn.Module):
    """One cell of a genotype: two (op, input) pairs per intermediate node, summed."""

    def __init__(self, pairs: list[tuple[str, int]], concat: list[int], channels_pp: int,
                 channels_p: int, channels: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = _preprocess(channels_pp, channels, reduction_prev)
        self.preprocess1 = _preprocess(channels_p, channels, False)
        self.inputs = [source for _, source in pairs]
        self.ops = nn.ModuleList(
            eval_op(name, channels, 2 if reduction and source < DARTS_INPUTS else 1)
            for name, source in pairs
        )
        self.concat = list(concat)
        self.channels_out = len(self.concat) * channels

    def forward(self, s0: Tensor, s1: Tensor, drop_prob: float) -> Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for first in range(0, len(self.ops), 2):
            node = None
            for op, source in zip(self.ops[first:first + 2], self.inputs[first:first + 2]):
                h = op(states[source])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                node = h if node is None else node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """The official AuxiliaryHeadCIFAR: ReLU, pool to 2x2, conv 1x1 128-BN-ReLU, conv 2x2
    768-BN-ReLU, linear.

    The official pool (5x5, stride 3, no padding) assumes the 8x8 map of a 32x32 image; on any
    other map size an adaptive average pool to 2x2 stands in, so small images (digits at 8x8
    give 2x2 maps there) still work and the parameters are the same.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        # Out of place: the official in-place ReLU also rectifies the cell output the next
        # cells read (harmless there, as they all start with a ReLU).
        x = F.relu(x)
        if x.shape[-2:] == (8, 8):
            x = F.avg_pool2d(x, 5, 3, count_include_pad=False)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """The DARTS evaluation network (NetworkCIFAR) for a genotype.

    `forward` returns the logits, or (logits, auxiliary logits) in training mode when the
    auxiliary head is on. Set `drop_path_prob` before each epoch; the official schedule is
    `drop_path_prob = 0.2 * epoch / epochs`.
    """

    def __init__(self, genotype: DartsGenotype, channels: int, layers: int, in_channels: int,
                 num_classes: int, auxiliary: bool = False, stem_multiplier: int = 3) -> None:
        super().__init__()
        self.drop_path_prob = 0.0
        self.auxiliary_at = 2 * layers // 3
        stem_channels = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
        )
        channels_pp, channels_p, current = stem_channels, stem_channels, channels
        reduction_prev = False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                current *= 2
            pairs, concat = ((genotype.reduce, genotype.reduce_concat) if reduction
                             else (genotype.normal, genotype.normal_concat))
            cell = DartsEvalCell(list(pairs), list(concat), channels_pp, channels_p, current,
                                 reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            channels_pp, channels_p = channels_p, cell.channels_out
            if i == self.auxiliary_at:
                auxiliary_channels = channels_p
        self.auxiliary_head = (AuxiliaryHead(auxiliary_channels, num_classes) if auxiliary
                               else None)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels_p, num_classes)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        aux_logits = None
        s0 = s1 = self.stem(x.contiguous(memory_format=torch.channels_last))
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.auxiliary_at and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(self.pool(s1).flatten(1))
        return logits if aux_logits is None else (logits, aux_logits)


class NB201EvalCell(nn.Module):
    """A 4-node cell: node j is the sum over i < j of the genotype's op on edge j <- i."""

    def __init__(self, genotype: NB201Genotype, channels: int) -> None:
        super().__init__()
        self.edges = edge_list(NB201_INPUTS, NB201_STEPS)
        self.ops = nn.ModuleList(eval_op(name, channels) for name, _ in genotype.edges)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x] + [None] * NB201_STEPS
        for op, (source, target) in zip(self.ops, self.edges):
            h = op(nodes[source])
            nodes[target] = h if nodes[target] is None else nodes[target] + h
        return nodes[-1]


class NB201Network(nn.Module):
    """The benchmark's TinyNetwork for one cell: stem, 3 stages of `cells_per_stage` cells (C,
    2C, 4C) joined by stride-2 ResNet blocks, BN-ReLU, global pooling, classifier."""

    def __init__(self, genotype: NB201Genotype, channels: int, cells_per_stage: int,
                 in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem, layers, self.head, self.classifier = skeleton(
            in_channels, channels, cells_per_stage, num_classes,
            lambda c: NB201EvalCell(genotype, c))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(self.stem(x.contiguous(memory_format=torch.channels_last)))
        return self.classifier(self.head(x).flatten(1))


def _build_darts(genotype: DartsGenotype, in_channels: int, num_classes: int,
                 channels: int = 36, layers: int = 20, auxiliary: bool = True) -> nn.Module:
    # Defaults: the paper's CIFAR-10 evaluation network.
    if not isinstance(genotype, DartsGenotype):
        raise TypeError(f"the darts network needs a DartsGenotype, got {type(genotype).__name__}")
    return DartsNetwork(genotype, channels, layers, in_channels, num_classes, auxiliary)


def _build_nb201(genotype: NB201Genotype, in_channels: int, num_classes: int,
                 channels: int = 16, cells_per_stage: int = 5) -> nn.Module:
    # Defaults: the benchmark's network (C=16, N=5).
    if not isinstance(genotype, NB201Genotype):
        raise TypeError(f"the nb201 network needs an NB201Genotype, got "
                        f"{type(genotype).__name__}")
    return NB201Network(genotype, channels, cells_per_stage, in_channels, num_classes)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}


def build_mlp(arch: MlpArch, in_features: int, outputs: int) -> nn.Module:
    """Seed 001's MLP: per hidden layer Linear → its activation → Dropout, then a Linear head
    (logits, or the regression output)."""
    if not isinstance(arch, MlpArch):
        raise TypeError(f"the mlp network needs an MlpArch, got {type(arch).__name__}")
    layers: list[nn.Module] = []
    width_in = in_features
    for activation in arch.activations:
        layers += [nn.Linear(width_in, arch.width), ACTIVATIONS[activation](),
                   nn.Dropout(arch.dropout)]
        width_in = arch.width
    return nn.Sequential(*layers, nn.Linear(width_in, outputs))


# space -> builder(genotype, in_channels, num_classes, **size); the MLP's "channels" are its
# input features, its "classes" the outputs.
NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "darts": _build_darts,
    "nb201": _build_nb201,
    "mlp": build_mlp,
}


def build_network(space: str, genotype: Any, in_channels: int, num_classes: int,
                  image_size: int, **size: Any) -> nn.Module:
    """The network of `space` for `genotype`, to train from scratch.

    `size`: darts `channels` (36), `layers` (20), `auxiliary` (True); nb201 `channels` (16),
    `cells_per_stage` (5). Both cell networks halve the image twice, so `image_size` must be a
    multiple of 4 (odd maps would misalign FactorizedReduce's and the ResNet block's halves).
    The MLP reads feature vectors: `in_channels` are its features, `image_size` is unused.
    """
    if space not in NETWORKS:
        raise ValueError(f"no network for space {space!r}; known: {sorted(NETWORKS)}")
    factor = 2**REDUCTIONS
    if space in CELL_SPACES and image_size % factor:
        raise ValueError(f"the {space} network needs an image size that is a multiple of "
                         f"{factor}; got {image_size}")
    return NETWORKS[space](genotype, in_channels, num_classes, **size)


def count_parameters(module: nn.Module, exclude_auxiliary: bool = True) -> int:
    """Trainable parameters; by default without the auxiliary head, as the official
    `count_parameters_in_MB` (and the papers' sizes) leave it out."""
    return sum(p.numel() for name, p in module.named_parameters()
               if p.requires_grad and not (exclude_auxiliary and "auxiliary" in name))


def count_flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one input, an image (channels, height, width) or a feature
    vector (features,), through every Conv2d and Linear, counted by forward hooks in eval mode
    (no auxiliary head, no drop path).

    A conv counts output elements × (input channels / groups) × kernel area, a linear layer
    input × output features; biases, BatchNorm, activations, pools and additions are not
    counted. NAS-Bench-201's FLOPs count the same layers (plus bias adds), so its published
    numbers compare at their precision.
    """
    total = 0

    def conv_hook(conv: nn.Module, _: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        kernel = conv.kernel_size[0] * conv.kernel_size[1]
        total += out[0].numel() * conv.in_channels // conv.groups * kernel

    def linear_hook(linear: nn.Module, _: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        total += out[0].numel() * linear.in_features

    handles = []
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            handles.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            handles.append(layer.register_forward_hook(linear_hook))
    was_training = module.training
    parameter = next(module.parameters())
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros(1, *input_shape, dtype=parameter.dtype, device=parameter.device))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return total
