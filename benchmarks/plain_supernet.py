"""The DARTS and NB201 supernets written the textbook way: one `MixedOp` per edge, one module
per candidate op (`none` included, computed as zeros), the weighted sum in Python.

Why keep a second, slower supernet: it is the ground truth of the engine's edge-batched one
(`nas_engine.spaces.ops`). `copy_weights` gives it the engine's exact parameters and BN buffers,
so the tests can demand equal logits and gradients, and `search_step.py` measures what the
batching buys. On purpose, no cell or op computation is shared with the engine: only the
macro modules outside the cells (NB201's ResNet block) are reused, as they are not under test,
and the engine's op classes are only inspected to know where each tensor lives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nas_engine.spaces import SearchSpace
from nas_engine.spaces.dag import MixedDag
from nas_engine.spaces.nb201 import skeleton
from nas_engine.spaces.ops import SharedOp

Tensor = torch.Tensor


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=False)


class Zero(nn.Module):
    """`none`, computed as DARTS does (`x.mul(0.)`), so the plain net pays for it as DARTS did."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class ReLUConvBN(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, kernel, stride, kernel // 2, bias=False)
        self.bn = _bn(channels_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(F.relu(x)))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs, the second offset by one pixel."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(channels_in, channels_out // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(channels_in, channels_out // 2, 1, 2, bias=False)
        self.bn = _bn(channels_out)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class DilConv(nn.Module):
    """ReLU, depthwise k x k with dilation 2, pointwise, BN."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, stride, kernel - 1, 2,
                                   groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = _bn(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.pointwise(self.depthwise(F.relu(x))))


class SepConv(nn.Module):
    """Two stacked ReLU - depthwise k x k - pointwise - BN blocks; only the first strides."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.depthwise1 = nn.Conv2d(channels, channels, kernel, stride, pad, groups=channels,
                                    bias=False)
        self.pointwise1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = _bn(channels)
        self.depthwise2 = nn.Conv2d(channels, channels, kernel, 1, pad, groups=channels,
                                    bias=False)
        self.pointwise2 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = _bn(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn1(self.pointwise1(self.depthwise1(F.relu(x))))
        return self.bn2(self.pointwise2(self.depthwise2(F.relu(x))))


# An op factory: (channels, stride) -> the op of one edge.
PlainOpFactory = Callable[[int, int], nn.Module]


def _pool(average: bool, with_bn: bool) -> PlainOpFactory:
    def build(channels: int, stride: int) -> nn.Module:
        if average:
            pool: nn.Module = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        else:
            pool = nn.MaxPool2d(3, stride, 1)
        return nn.Sequential(pool, _bn(channels)) if with_bn else pool

    return build


def _skip(channels: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)


DARTS_OPS: dict[str, PlainOpFactory] = {
    "none": lambda c, s: Zero(s),
    "max_pool_3x3": _pool(average=False, with_bn=True),
    "avg_pool_3x3": _pool(average=True, with_bn=True),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, s: SepConv(c, 3, s),
    "sep_conv_5x5": lambda c, s: SepConv(c, 5, s),
    "dil_conv_3x3": lambda c, s: DilConv(c, 3, s),
    "dil_conv_5x5": lambda c, s: DilConv(c, 5, s),
}

NB201_OPS: dict[str, PlainOpFactory] = {
    "none": lambda c, s: Zero(s),
    "skip_connect": _skip,
    "nor_conv_1x1": lambda c, s: ReLUConvBN(c, c, 1, s),
    "nor_conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, s),
    "avg_pool_3x3": _pool(average=True, with_bn=False),
}


class MixedOp(nn.Module):
    """One edge: every candidate op on its own, mixed by the edge's weights."""

    def __init__(self, table: dict[str, PlainOpFactory], ops: list[str], channels: int,
                 stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(table[name](channels, stride) for name in ops)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class PlainDag(nn.Module):
    """A cell's mixed edges, one `MixedOp` each, rows ordered by target node, then source.

    `edge_ids[(source, target)]` is the row (and the `edges` index) of that edge.
    """

    def __init__(self, table: dict[str, PlainOpFactory], ops: list[str], channels: int,
                 inputs: int, steps: int, reduction: bool = False) -> None:
        super().__init__()
        self.steps = steps
        self.edges = nn.ModuleList()
        self.edge_ids: dict[tuple[int, int], int] = {}
        for target in range(inputs, inputs + steps):
            for source in range(target):
                stride = 2 if reduction and source < inputs else 1
                self.edge_ids[(source, target)] = len(self.edges)
                self.edges.append(MixedOp(table, ops, channels, stride))

    def forward(self, inputs: list[Tensor], weights: Tensor) -> list[Tensor]:
        """Every node state, inputs first."""
        states = list(inputs)
        offset = 0
        for _ in range(self.steps):
            node = sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(node)
        return states


DARTS_STEPS = 4


class PlainDartsCell(nn.Module):
    def __init__(self, ops: list[str], channels_pp: int, channels_p: int, channels: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(channels_pp, channels)
        else:
            self.preprocess0 = ReLUConvBN(channels_pp, channels, 1, 1)
        self.preprocess1 = ReLUConvBN(channels_p, channels, 1, 1)
        self.dag = PlainDag(DARTS_OPS, ops, channels, 2, DARTS_STEPS, reduction)

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        states = self.dag([self.preprocess0(s0), self.preprocess1(s1)], weights)
        return torch.cat(states[-DARTS_STEPS:], dim=1)


class PlainDartsSupernet(nn.Module):
    """DARTS' search network: stem (3C), `layers` cells, reductions at layers//3, 2*layers//3."""

    def __init__(self, ops: list[str], channels: int, layers: int, in_channels: int,
                 num_classes: int) -> None:
        super().__init__()
        stem_channels = 3 * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
        )
        channels_pp, channels_p, current = stem_channels, stem_channels, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                current *= 2
            self.cells.append(
                PlainDartsCell(ops, channels_pp, channels_p, current, reduction, reduction_prev)
            )
            reduction_prev = reduction
            channels_pp, channels_p = channels_p, DARTS_STEPS * current
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels_p, num_classes)

    def forward(self, x: Tensor, weights: dict[str, Tensor]) -> Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights["reduce" if cell.reduction else "normal"])
        return self.classifier(self.pool(s1).flatten(1))


class PlainNB201Cell(nn.Module):
    def __init__(self, ops: list[str], channels: int) -> None:
        super().__init__()
        self.dag = PlainDag(NB201_OPS, ops, channels, 1, 3)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return self.dag([x], weights)[-1]


class PlainNB201Supernet(nn.Module):
    """NB201's search network: stem, three stages of cells (C, 2C, 4C) joined by ResNet blocks."""

    def __init__(self, ops: list[str], channels: int, cells_per_stage: int, in_channels: int,
                 num_classes: int) -> None:
        super().__init__()
        # The macro network is ours (only the cells are the textbook twin).
        self.stem, layers, self.head, self.classifier = skeleton(
            in_channels, channels, cells_per_stage, num_classes,
            lambda c: PlainNB201Cell(ops, c))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, weights: dict[str, Tensor]) -> Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights["cell"]) if isinstance(layer, PlainNB201Cell) else layer(x)
        return self.classifier(self.head(x).flatten(1))


def build_plain(space: SearchSpace, in_channels: int, num_classes: int) -> nn.Module:
    """The plain twin of `space.build_supernet(...)`: same ops, sizes and module names outside
    the cells' edges."""
    network = space.network
    if space.name == "darts":
        return PlainDartsSupernet(space.ops, network.channels, network.layers, in_channels,
                                  num_classes)
    if space.name == "nb201":
        return PlainNB201Supernet(space.ops, network.channels, network.cells_per_stage,
                                  in_channels, num_classes)
    raise ValueError(f"no plain supernet for the {space.name!r} space")


class Match(NamedTuple):
    """A plain tensor and where it lives in the batched supernet: `rows` of dim 0 of `our_key`
    (None: the whole tensor)."""

    plain_key: str
    our_key: str
    rows: slice | None

    def take(self, ours: Tensor) -> Tensor:
        """The part of our tensor (a value, a gradient) that corresponds to the plain one."""
        return ours if self.rows is None else ours[self.rows]


def tensor_matches(plain: nn.Module, ours: nn.Module) -> list[Match]:
    """Every parameter and buffer of `plain` (state_dict keys) with its source in `ours`.

    Inside a cell, our source node s with m outgoing edges holds each parametric op once for
    all m edges, edge-major: edge e owns rows e*n:(e+1)*n of every tensor whose plain copy has
    n rows (conv outputs, grouped pointwise rows, FactorizedReduce's conv halves and its
    interleaved BN). Shared ops (pools with BN) are one module per source: every edge's plain
    copy gets all of it. Outside the edges, the module names are the same in both nets.
    Raises if a tensor of either net is left without a counterpart or the shapes disagree.
    """
    matches: list[Match] = []
    for name, dag in plain.named_modules():
        if not isinstance(dag, PlainDag):
            continue
        our_dag = ours.get_submodule(name)
        if not isinstance(our_dag, MixedDag):
            raise TypeError(f"{name} is a {type(our_dag).__name__} in the batched supernet")
        for source, edge_ops in enumerate(our_dag.sources):
            for e, target in enumerate(our_dag.targets[source]):
                row = dag.edge_ids[(source, target)]
                for k, column in enumerate(edge_ops.columns):
                    shared = isinstance(edge_ops.ops[k], SharedOp)
                    our_prefix = f"{name}.sources.{source}.ops.{k}." + ("fn." if shared else "")
                    plain_op = dag.edges[row].ops[column]
                    for key, tensor in plain_op.state_dict().items():
                        n = tensor.shape[0] if tensor.dim() else 0
                        rows = None if shared or not n else slice(e * n, (e + 1) * n)
                        matches.append(Match(f"{name}.edges.{row}.ops.{column}.{key}",
                                             our_prefix + key, rows))
    in_edges = {m.plain_key for m in matches}
    matches += [Match(key, key, None) for key in plain.state_dict() if key not in in_edges]
    _check(matches, plain.state_dict(), ours.state_dict())
    return matches


def _check(matches: list[Match], plain_state: dict[str, Tensor], our_state: dict[str, Tensor]
           ) -> None:
    for m in matches:
        if m.our_key not in our_state:
            raise KeyError(f"{m.plain_key}: no {m.our_key} in the batched supernet")
        ours = m.take(our_state[m.our_key])
        if ours.shape != plain_state[m.plain_key].shape:
            raise ValueError(f"{m.plain_key} {tuple(plain_state[m.plain_key].shape)} vs "
                             f"{m.our_key}[{m.rows}] {tuple(ours.shape)}")
    unused = sorted(set(our_state) - {m.our_key for m in matches})
    if unused:
        raise ValueError(f"batched tensors without a plain counterpart: {unused[:5]}")


def copy_weights(plain: nn.Module, ours: nn.Module) -> None:
    """Give `plain` every parameter and BN buffer of the batched supernet `ours`."""
    plain_state, our_state = plain.state_dict(), ours.state_dict()
    with torch.no_grad():
        for m in tensor_matches(plain, ours):
            plain_state[m.plain_key].copy_(m.take(our_state[m.our_key]))
