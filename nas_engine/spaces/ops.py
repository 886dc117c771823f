"""Candidate ops, computed for all edges that leave one node at once.

Why batched: in a DARTS cell every node feeds several edges, and every edge runs every candidate
op on the *same* input. A straightforward supernet computes `relu(x)`, each pool and each skip
once per edge and launches one small conv per op per edge. Here an `EdgeOps` block computes, for
one source node and its `m` outgoing edges:
- parameter-free ops (skip, pools) once, shared by all `m` edges (they are identical),
- each parametric op for all `m` edges in one grouped convolution (edge-major channels),
- `relu(x)` once for all conv ops, and `none` never (its output is zero),
and returns every edge's mixed output as one `(B, m, C, H, W)` tensor. The maths equals the
per-edge formulation exactly (BatchNorm without affine is per channel, so one BN over `m*C`
channels is `m` BNs over `C`); `tests/test_spaces.py` checks that against a plain supernet.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


class EdgeInput:
    """The input of one source node and the derived tensors its ops share, computed lazily."""

    def __init__(self, x: Tensor, edges: int) -> None:
        self.x = x
        self.edges = edges
        self._relu: Tensor | None = None
        self._relu_per_edge: Tensor | None = None

    @property
    def relu(self) -> Tensor:
        if self._relu is None:
            self._relu = F.relu(self.x)
        return self._relu

    @property
    def relu_per_edge(self) -> Tensor:
        """relu(x) repeated edge-major, (B, m*C, H, W): the input of depthwise convs whose
        weights differ per edge."""
        if self._relu_per_edge is None:
            r = self.relu
            self._relu_per_edge = r if self.edges == 1 else r.repeat(1, self.edges, 1, 1)
        return self._relu_per_edge


class SharedOp(nn.Module):
    """A parameter-free op (its output is the same on every edge): returns (B, 1, C, H, W)."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, inp: EdgeInput) -> Tensor:
        return self.fn(inp.x).unsqueeze(1)


class Identity(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


def _bn(channels: int) -> nn.BatchNorm2d:
    # Search supernets use BatchNorm without affine parameters (DARTS, NB201).
    return nn.BatchNorm2d(channels, affine=False)


def _per_edge(y: Tensor, edges: int) -> Tensor:
    b, mc, h, w = y.shape
    return y.view(b, edges, mc // edges, h, w)


class ReLUConvBN(nn.Module):
    """ReLU-Conv-BN (NB201's nor_conv_k, DARTS' cell preprocessing). The input is shared, so
    all edges are one conv with m*C output channels."""

    def __init__(self, channels_in: int, channels_out: int, edges: int, kernel: int, stride: int
                 ) -> None:
        super().__init__()
        self.edges = edges
        self.conv = nn.Conv2d(channels_in, edges * channels_out, kernel, stride, kernel // 2,
                              bias=False)
        self.bn = _bn(edges * channels_out)

    def forward(self, inp: EdgeInput) -> Tensor:
        return _per_edge(self.bn(self.conv(inp.relu)), self.edges)


class DilConv(nn.Module):
    """DARTS dil_conv: ReLU - depthwise (dilation 2) - pointwise - BN, for m edges."""

    def __init__(self, channels: int, edges: int, kernel: int, stride: int, dilation: int = 2
                 ) -> None:
        super().__init__()
        mc = edges * channels
        self.edges = edges
        pad = dilation * (kernel - 1) // 2
        self.depthwise = nn.Conv2d(mc, mc, kernel, stride, pad, dilation, groups=mc, bias=False)
        self.pointwise = nn.Conv2d(mc, mc, 1, groups=edges, bias=False)
        self.bn = _bn(mc)

    def forward(self, inp: EdgeInput) -> Tensor:
        y = self.bn(self.pointwise(self.depthwise(inp.relu_per_edge)))
        return _per_edge(y, self.edges)


class SepConv(nn.Module):
    """DARTS sep_conv: two stacked ReLU - depthwise - pointwise - BN blocks, for m edges."""

    def __init__(self, channels: int, edges: int, kernel: int, stride: int) -> None:
        super().__init__()
        mc = edges * channels
        self.edges = edges
        pad = kernel // 2
        self.depthwise1 = nn.Conv2d(mc, mc, kernel, stride, pad, groups=mc, bias=False)
        self.pointwise1 = nn.Conv2d(mc, mc, 1, groups=edges, bias=False)
        self.bn1 = _bn(mc)
        self.depthwise2 = nn.Conv2d(mc, mc, kernel, 1, pad, groups=mc, bias=False)
        self.pointwise2 = nn.Conv2d(mc, mc, 1, groups=edges, bias=False)
        self.bn2 = _bn(mc)

    def forward(self, inp: EdgeInput) -> Tensor:
        y = self.bn1(self.pointwise1(self.depthwise1(inp.relu_per_edge)))
        y = self.bn2(self.pointwise2(self.depthwise2(F.relu(y))))
        return _per_edge(y, self.edges)


class FactorizedReduce(nn.Module):
    """DARTS skip_connect on a stride-2 edge: ReLU, two offset 1x1 stride-2 convs, concat, BN.

    For m edges the two convs each make m*C/2 channels; the per-edge halves are interleaved so
    each edge's C channels are [conv_1 half, conv_2 half] as in the single-edge op.
    """

    def __init__(self, channels_in: int, channels_out: int, edges: int = 1) -> None:
        super().__init__()
        if channels_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count; got {channels_out}")
        self.edges = edges
        half = edges * channels_out // 2
        self.conv_1 = nn.Conv2d(channels_in, half, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(channels_in, half, 1, 2, bias=False)
        self.bn = _bn(edges * channels_out)

    def forward(self, inp: EdgeInput) -> Tensor:
        r = inp.relu
        a = _per_edge(self.conv_1(r), self.edges)
        b = _per_edge(self.conv_2(r[:, :, 1:, 1:]), self.edges)
        return _per_edge(self.bn(torch.cat([a, b], dim=2).flatten(1, 2)), self.edges)


# An op factory: (channels, edges, stride) -> module taking an EdgeInput.
OpFactory = Callable[[int, int, int], nn.Module]


def _pool_bn(pool: type[nn.Module], with_bn: bool) -> OpFactory:
    def build(channels: int, edges: int, stride: int) -> nn.Module:
        if pool is nn.AvgPool2d:
            layer = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        else:
            layer = nn.MaxPool2d(3, stride, 1)
        return SharedOp(nn.Sequential(layer, _bn(channels)) if with_bn else layer)

    return build


def _skip(channels: int, edges: int, stride: int) -> nn.Module:
    if stride == 1:
        return SharedOp(Identity())
    return FactorizedReduce(channels, channels, edges)


DARTS_OPS: dict[str, OpFactory] = {
    # DARTS puts a non-affine BN after each pool in the search supernet.
    "max_pool_3x3": _pool_bn(nn.MaxPool2d, with_bn=True),
    "avg_pool_3x3": _pool_bn(nn.AvgPool2d, with_bn=True),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, m, s: SepConv(c, m, 3, s),
    "sep_conv_5x5": lambda c, m, s: SepConv(c, m, 5, s),
    "dil_conv_3x3": lambda c, m, s: DilConv(c, m, 3, s),
    "dil_conv_5x5": lambda c, m, s: DilConv(c, m, 5, s),
}

NB201_OPS: dict[str, OpFactory] = {
    "skip_connect": _skip,
    "nor_conv_1x1": lambda c, m, s: ReLUConvBN(c, c, m, 1, s),
    "nor_conv_3x3": lambda c, m, s: ReLUConvBN(c, c, m, 3, s),
    "avg_pool_3x3": _pool_bn(nn.AvgPool2d, with_bn=False),
}

PARAMETER_FREE = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"})


class EdgeOps(nn.Module):
    """Every candidate op on the `edges` edges that leave one node.

    `forward(x, weights)` takes the mixing weights of those edges, shape (edges, len(ops)), and
    returns the mixed outputs (B, edges, C, H, W): Σ_o weights[e, o] · op_o(x) for each edge e.
    """

    def __init__(self, table: dict[str, OpFactory], ops: list[str], channels: int, edges: int,
                 stride: int) -> None:
        super().__init__()
        self.edges = edges
        self.stride = stride
        self.columns = [i for i, name in enumerate(ops) if name != "none"]
        self.names = [ops[i] for i in self.columns]
        self.ops = nn.ModuleList(table[ops[i]](channels, edges, stride) for i in self.columns)
        # Collapse mitigations on stride-1 edges, set by the strategy (0 = off).
        self.aux_skip = 0.0  # DARTS-: + β·x on every edge
        self.skip_dropout = 0.0  # P-DARTS: dropout on skip_connect's output

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        inp = EdgeInput(x, self.edges)
        w = weights.t().reshape(weights.shape[1], 1, self.edges, 1, 1, 1)
        mixed = None
        for column, name, op in zip(self.columns, self.names, self.ops):
            out = op(inp)
            if name == "skip_connect" and self.skip_dropout and self.training and self.stride == 1:
                # Each edge its own mask, as if each had its own skip op.
                out = F.dropout(out.expand(-1, self.edges, -1, -1, -1), self.skip_dropout)
            mixed = out * w[column] if mixed is None else torch.addcmul(mixed, out, w[column])
        if self.aux_skip and self.stride == 1:
            mixed = mixed + self.aux_skip * x.unsqueeze(1)
        return mixed
