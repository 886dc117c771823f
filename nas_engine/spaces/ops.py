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
channels is `m` BNs over `C`); `tests/test_supernet.py` checks that against a plain supernet.

Two strategies narrow what a block computes:
- NASP (one op per edge): `EdgeOps.choose` names each edge's op; ops no edge chose are skipped
  and a parametric op runs only on the contiguous runs of edges that chose it, on the slices of
  its edge-major weights that belong to them.
- PC-DARTS (partial channels): the ops are built on C/K channels and see `x[:, :C/K]`;
  `EdgeOps.bypass` gives the other channels, which `MixedDag` joins and shuffles per node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor
# Which of an op's edges to compute: a contiguous range of edge indices, None for all of them.
Edges = range | None


class EdgeInput:
    """The input of one source node and the derived tensors its ops share, computed lazily."""

    def __init__(self, x: Tensor) -> None:
        self.x = x
        self._relu: Tensor | None = None

    @property
    def relu(self) -> Tensor:
        if self._relu is None:
            self._relu = F.relu(self.x)
        return self._relu


def _count(edges: Edges, total: int) -> int:
    return total if edges is None else len(edges)


def _whole(edges: Edges, total: int) -> bool:
    return edges is None or len(edges) == total


def _edge_conv(conv: nn.Conv2d, x: Tensor, edges: Edges, total: int) -> Tensor:
    """`conv` (edge-major output blocks for `total` edges) on `edges` only: the blocks' weight
    rows are a slice, so a run of edges is still one conv. A grouped conv keeps its groups per
    edge; an ungrouped one (shared input) just makes fewer output channels."""
    if _whole(edges, total):
        return conv(x)
    rows = conv.out_channels // total
    groups = 1 if conv.groups == 1 else conv.groups // total * len(edges)
    weight = conv.weight[edges.start * rows:edges.stop * rows]
    return F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, groups)


def _shared_depthwise(conv: nn.Conv2d, x: Tensor, edges: Edges, total: int) -> Tensor:
    """The first depthwise conv of `edges`, on the input (B, C, H, W) they all share: one conv
    with a depth multiplier (groups=C) instead of a copy of x per edge. `conv` holds the
    edge-major weights (total·C, 1, k, k); the output comes back edge-major (B, n·C, H', W')."""
    n = _count(edges, total)
    if total == 1 and n == 1:  # a plain single-edge op: call the module, so its hooks fire
        return conv(x)
    c = conv.in_channels // total
    weight = conv.weight if _whole(edges, total) else conv.weight[edges.start * c:edges.stop * c]
    if n > 1:  # output channel g·n + e must use edge e's kernel for channel g
        weight = weight.view(n, c, *weight.shape[1:]).transpose(0, 1).flatten(0, 1)
    y = F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, groups=c)
    if n == 1:
        return y
    b, _, h, w = y.shape
    return y.view(b, c, n, h, w).transpose(1, 2).reshape(b, n * c, h, w)


def _edge_bn(bn: nn.BatchNorm2d, y: Tensor, edges: Edges, total: int) -> Tensor:
    """`bn` on the channels of `edges`; its running statistics are updated through views, so
    the slices of the other edges keep theirs."""
    if _whole(edges, total):
        return bn(y)
    rows = bn.num_features // total
    part = slice(edges.start * rows, edges.stop * rows)
    weight, bias = (bn.weight[part], bn.bias[part]) if bn.affine else (None, None)
    return F.batch_norm(y, bn.running_mean[part], bn.running_var[part], weight, bias,
                        bn.training, bn.momentum, bn.eps)


class SharedOp(nn.Module):
    """A parameter-free op (its output is the same on every edge): returns (B, 1, C, H, W)."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, inp: EdgeInput, edges: Edges = None) -> Tensor:
        return self.fn(inp.x).unsqueeze(1)


class Identity(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


def _bn(channels: int, affine: bool = False) -> nn.BatchNorm2d:
    # Search supernets use BatchNorm without affine parameters (DARTS, NB201); the networks
    # retrained from a genotype use affine ones (`affine=True` on the op classes).
    return nn.BatchNorm2d(channels, affine=affine)


def _per_edge(y: Tensor, edges: int) -> Tensor:
    b, mc, h, w = y.shape
    return y.view(b, edges, mc // edges, h, w)


class ReLUConvBN(nn.Module):
    """ReLU-Conv-BN (NB201's nor_conv_k, DARTS' cell preprocessing). The input is shared, so
    all edges are one conv with m*C output channels."""

    def __init__(self, channels_in: int, channels_out: int, edges: int, kernel: int, stride: int,
                 *, affine: bool = False) -> None:
        super().__init__()
        self.edges = edges
        self.conv = nn.Conv2d(channels_in, edges * channels_out, kernel, stride, kernel // 2,
                              bias=False)
        self.bn = _bn(edges * channels_out, affine)

    def forward(self, inp: EdgeInput, edges: Edges = None) -> Tensor:
        y = _edge_conv(self.conv, inp.relu, edges, self.edges)
        return _per_edge(_edge_bn(self.bn, y, edges, self.edges), _count(edges, self.edges))


class DilConv(nn.Module):
    """DARTS dil_conv: ReLU - depthwise (dilation 2) - pointwise - BN, for m edges."""

    def __init__(self, channels: int, edges: int, kernel: int, stride: int, dilation: int = 2,
                 *, affine: bool = False) -> None:
        super().__init__()
        mc = edges * channels
        self.edges = edges
        pad = dilation * (kernel - 1) // 2
        self.depthwise = nn.Conv2d(mc, mc, kernel, stride, pad, dilation, groups=mc, bias=False)
        self.pointwise = nn.Conv2d(mc, mc, 1, groups=edges, bias=False)
        self.bn = _bn(mc, affine)

    def forward(self, inp: EdgeInput, edges: Edges = None) -> Tensor:
        n = _count(edges, self.edges)
        y = _shared_depthwise(self.depthwise, inp.relu, edges, self.edges)
        y = _edge_bn(self.bn, _edge_conv(self.pointwise, y, edges, self.edges), edges, self.edges)
        return _per_edge(y, n)


class SepConv(nn.Module):
    """DARTS sep_conv: two stacked ReLU - depthwise - pointwise - BN blocks, for m edges."""

    def __init__(self, channels: int, edges: int, kernel: int, stride: int, *,
                 affine: bool = False) -> None:
        super().__init__()
        mc = edges * channels
        self.edges = edges
        pad = kernel // 2
        self.depthwise1 = nn.Conv2d(mc, mc, kernel, stride, pad, groups=mc, bias=False)
        self.pointwise1 = nn.Conv2d(mc, mc, 1, groups=edges, bias=False)
        self.bn1 = _bn(mc, affine)
        self.depthwise2 = nn.Conv2d(mc, mc, kernel, 1, pad, groups=mc, bias=False)
        self.pointwise2 = nn.Conv2d(mc, mc, 1, groups=edges, bias=False)
        self.bn2 = _bn(mc, affine)

    def forward(self, inp: EdgeInput, edges: Edges = None) -> Tensor:
        n, m = _count(edges, self.edges), self.edges
        y = _shared_depthwise(self.depthwise1, inp.relu, edges, m)
        y = _edge_bn(self.bn1, _edge_conv(self.pointwise1, y, edges, m), edges, m)
        y = _edge_conv(self.depthwise2, F.relu(y), edges, m)
        y = _edge_bn(self.bn2, _edge_conv(self.pointwise2, y, edges, m), edges, m)
        return _per_edge(y, n)


class FactorizedReduce(nn.Module):
    """DARTS skip_connect on a stride-2 edge: ReLU, two offset 1x1 stride-2 convs, concat, BN.

    For m edges the two convs each make m*C/2 channels; the per-edge halves are interleaved so
    each edge's C channels are [conv_1 half, conv_2 half] as in the single-edge op.
    """

    def __init__(self, channels_in: int, channels_out: int, edges: int = 1, *,
                 affine: bool = False) -> None:
        super().__init__()
        if channels_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count; got {channels_out}")
        self.edges = edges
        half = edges * channels_out // 2
        self.conv_1 = nn.Conv2d(channels_in, half, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(channels_in, half, 1, 2, bias=False)
        self.bn = _bn(edges * channels_out, affine)

    def forward(self, inp: EdgeInput, edges: Edges = None) -> Tensor:
        n, m = _count(edges, self.edges), self.edges
        r = inp.relu
        a = _per_edge(_edge_conv(self.conv_1, r, edges, m), n)
        b = _per_edge(_edge_conv(self.conv_2, r[:, :, 1:, 1:], edges, m), n)
        return _per_edge(_edge_bn(self.bn, torch.cat([a, b], dim=2).flatten(1, 2), edges, m), n)


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

def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave `groups` equal channel blocks (ShuffleNet; PC-DARTS after the partial mixed
    op): output channel i·groups + g is input channel g·(C/groups) + i."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


@dataclass(frozen=True)
class EdgeOptions:
    """How every mixed edge of a supernet is built, as strategies and components shape it
    (`adapt_search_space`): PC-DARTS' partial channels K, DARTS-' stride-2 auxiliary skip."""

    partial: int = 1
    aux_reduce: bool = False


PLAIN_EDGES = EdgeOptions()


# A job of `EdgeOps`: an index into its ops and the runs of edges that op is computed on.
Job = tuple[int, list[range]]


class EdgeOps(nn.Module):
    """Every candidate op on the `edges` edges that leave one node.

    `forward(x, weights)` takes the mixing weights of those edges, shape (edges, len(ops)), and
    returns the mixed outputs (B, edges, C/partial, H, W): Σ_o weights[e, o] · op_o(x) for each
    edge e, on the first C/partial channels of x (all of them unless PC-DARTS).
    """

    def __init__(self, table: dict[str, OpFactory], ops: list[str], channels: int, edges: int,
                 stride: int, options: EdgeOptions = PLAIN_EDGES) -> None:
        super().__init__()
        self.edges = edges
        self.stride = stride
        self.op_channels = channels // options.partial
        self.n_columns = len(ops)
        self.columns = [i for i, name in enumerate(ops) if name != "none"]
        self.names = [ops[i] for i in self.columns]
        self.ops = nn.ModuleList(
            table[ops[i]](self.op_channels, edges, stride) for i in self.columns
        )
        self.choose(None)
        # Collapse mitigations, set by their components (0 = off); with partial channels they
        # act on the mixed part.
        self.aux_skip = 0.0  # DARTS-: + β·x (β·FactorizedReduce(x) on a stride-2 edge)
        self.skip_dropout = 0.0  # P-DARTS: dropout on skip_connect's output (stride 1)
        # DARTS-' stride-2 auxiliary skip has weights of its own, one set per edge.
        self.aux_reduce = (FactorizedReduce(self.op_channels, self.op_channels, edges)
                           if options.aux_reduce and stride == 2 else None)

    def choose(self, choice: list[int | None] | None) -> None:
        """Compute only the op in α column `choice[e]` on edge e (one op per edge: NASP, GDAS;
        `none` or None computes nothing), or every op on every edge (None). Host ints:
        deciding here costs no device sync per op."""
        self.jobs_cover_all_edges = choice is None
        if choice is None:
            self.jobs: list[Job] = [(k, [range(self.edges)]) for k in range(len(self.ops))]
            self._unchosen: Tensor | None = None
            return
        runs: dict[int, list[range]] = {}
        unchosen = torch.ones(self.edges, self.n_columns, dtype=torch.bool)
        for e, column in enumerate(choice):
            if column is not None:
                unchosen[e, column] = False  # `none` too: its weight multiplies a zero
            if column not in self.columns:
                continue
            op_runs = runs.setdefault(self.columns.index(column), [])
            if op_runs and op_runs[-1].stop == e:  # extend the run: one conv for both edges
                op_runs[-1] = range(op_runs[-1].start, e + 1)
            else:
                op_runs.append(range(e, e + 1))
        self.jobs = sorted(runs.items())
        self._unchosen = unchosen

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        # Channels last: the layout CPU convolutions and pools run fastest on.
        inp = EdgeInput(x[:, :self.op_channels].contiguous(memory_format=torch.channels_last))
        stride = self.stride
        dense = self.jobs_cover_all_edges
        mixed: Tensor | None = None
        per_edge: list[Tensor | None] = [None] * self.edges
        for k, runs in self.jobs:
            op, column = self.ops[k], self.columns[k]
            shared = op(inp) if isinstance(op, SharedOp) else None  # once for all its runs
            for edges in runs:
                out = shared if shared is not None else op(inp, edges)
                if (self.names[k] == "skip_connect" and self.skip_dropout and self.training
                        and stride == 1):
                    # Each edge its own mask, as if each had its own skip op.
                    out = F.dropout(out.expand(-1, len(edges), -1, -1, -1), self.skip_dropout)
                scale = weights[edges.start:edges.stop, column].view(1, -1, 1, 1, 1)
                if dense:  # out of place: in-place adds into a buffer cost a copy in backward
                    mixed = out * scale if mixed is None else torch.addcmul(mixed, out, scale)
                else:  # one op per edge (NASP): keep each edge's own output
                    term = out * scale
                    for i, e in enumerate(edges):
                        per_edge[e] = term[:, min(i, term.shape[1] - 1)]
        if not dense:
            b, c, h, w = inp.x.shape
            zero = inp.x.new_zeros(b, c, -(-h // stride), -(-w // stride))
            mixed = torch.stack([zero if t is None else t for t in per_edge], dim=1)
            # The unchosen ops' weights (0 in value) still pass their gradient straight
            # through, as in the official GDAS and NASP forward (`w·op(x) if chosen else w`).
            self._unchosen = self._unchosen.to(weights.device, non_blocking=True)
            rest = (weights * self._unchosen).sum(1)
            mixed = mixed + rest.view(1, -1, 1, 1, 1)
        if self.aux_skip:
            if stride == 1:
                mixed = mixed + self.aux_skip * inp.x.unsqueeze(1)
            elif self.aux_reduce is not None:
                mixed = mixed + self.aux_skip * self.aux_reduce(inp)
        return mixed

    def bypass(self, x: Tensor) -> Tensor:
        """PC-DARTS: the channels that skip the mixed op, halved in resolution on a stride-2
        edge by a 2x2 max pool (as the official MixedOp)."""
        rest = x[:, self.op_channels:]
        return F.max_pool2d(rest, 2, 2) if self.stride == 2 else rest

    def parameter_counts(self) -> list[tuple[int, int]]:
        """(α column, parameters of that op on one edge) for each op this block holds."""
        return [(column, sum(p.numel() for p in op.parameters()) // self.edges)
                for column, op in zip(self.columns, self.ops)]
