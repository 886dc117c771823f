"""Networks retrained from a genotype: sizes against hand formulas and published numbers,
shapes on tiny data, drop path, and what the FLOP count sees."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_engine.evaluation.networks import (
    AuxiliaryHead,
    DartsEvalCell,
    SingleEdge,
    build_network,
    count_flops,
    count_parameters,
    drop_path,
)
from nas_engine.spaces.genotypes import NB201_SOURCES, DartsGenotype, NB201Genotype
from nas_engine.spaces.ops import EdgeInput, ReLUConvBN, SepConv

# DARTS (2nd order), the cell of the paper's CIFAR-10 result (quark0/darts genotypes.py).
DARTS_V2 = DartsGenotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)
CONV3 = NB201Genotype(tuple(("nor_conv_3x3", s) for s in NB201_SOURCES)).to_arch_str()
SKIPS = NB201Genotype(tuple(("skip_connect", s) for s in NB201_SOURCES)).to_arch_str()
# NB201 arch index 2211, whose size and FLOPs the official API prints (NATS-Bench issue #19).
ARCH_2211 = "|none~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|"


def bn(c: int) -> int:
    return 2 * c  # affine BatchNorm: γ and β


def darts_op_params(name: str, c: int, stride: int) -> int:
    k = int(name[-1]) if "conv" in name else 0
    if name.startswith("sep_conv"):  # two (depthwise k×k, pointwise, BN) blocks
        return 2 * (c * k * k + c * c + bn(c))
    if name.startswith("dil_conv"):
        return c * k * k + c * c + bn(c)
    if name == "skip_connect" and stride == 2:  # FactorizedReduce: two c -> c/2 1x1 convs, BN
        return c * c + bn(c)
    return 0  # pools, identity, none


def darts_params(g: DartsGenotype, c: int, layers: int, in_channels: int, classes: int
                 ) -> tuple[int, int]:
    """(network without the auxiliary head, auxiliary head) by the official NetworkCIFAR."""
    total = in_channels * 3 * c * 9 + bn(3 * c)
    c_pp = c_p = 3 * c
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        c *= 2 if reduction else 1
        # preprocess0 (ReLU-conv 1x1-BN, or FactorizedReduce: the same count) and preprocess1
        total += c_pp * c + bn(c) + c_p * c + bn(c)
        pairs = g.reduce if reduction else g.normal
        total += sum(darts_op_params(op, c, 2 if reduction and src < 2 else 1)
                     for op, src in pairs)
        c_pp, c_p = c_p, 4 * c
        if i == 2 * layers // 3:
            aux_in = c_p
    total += c_p * classes + classes
    aux = aux_in * 128 + bn(128) + 128 * 768 * 2 * 2 + bn(768) + 768 * classes + classes
    return total, aux


def nb201_params(arch: str, c: int, n: int, in_channels: int, classes: int) -> int:
    """The benchmark's TinyNetwork: nor_conv k×k is c·c·k² + BN, the other ops are free."""
    ops = [op for op, _ in NB201Genotype.from_arch_str(arch).edges]

    def cell_params(width: int) -> int:
        return sum(width * width * int(op[-1]) ** 2 + bn(width)
                   for op in ops if op.startswith("nor_conv"))

    def resnet_block(c_in: int, c_out: int) -> int:  # conv a, conv b (with BN), 1x1 shortcut
        return c_in * c_out * 9 + bn(c_out) + c_out * c_out * 9 + bn(c_out) + c_in * c_out

    total = in_channels * c * 9 + bn(c)
    total += n * (cell_params(c) + cell_params(2 * c) + cell_params(4 * c))
    total += resnet_block(c, 2 * c) + resnet_block(2 * c, 4 * c)
    return total + bn(4 * c) + 4 * c * classes + classes


def test_darts_v2_parameters_match_the_hand_count_and_the_paper() -> None:
    net = build_network("darts", DARTS_V2, 3, 10, 32, channels=36, layers=20, auxiliary=True)
    body, aux = darts_params(DARTS_V2, 36, 20, 3, 10)
    assert count_parameters(net) == body == 3_349_342
    assert count_parameters(net, exclude_auxiliary=False) == body + aux
    assert round(body / 1e6, 1) == 3.3  # the paper's 3.3M for DARTS (second order)


def test_darts_tiny_network_runs_in_training_and_eval() -> None:
    torch.manual_seed(0)
    net = build_network("darts", DARTS_V2, 1, 3, 8, channels=4, layers=5, auxiliary=True)
    x = torch.randn(6, 1, 8, 8)
    net.train()
    net.drop_path_prob = 0.2
    logits, aux_logits = net(x)
    assert logits.shape == aux_logits.shape == (6, 3)
    (logits.sum() + 0.4 * aux_logits.sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (6, 3)
    plain = build_network("darts", DARTS_V2, 1, 3, 8, channels=4, layers=5, auxiliary=False)
    assert plain.train()(x).shape == (6, 3)  # no head: logits alone in training too


def test_drop_path_zeroes_whole_samples_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    y = drop_path(torch.ones(20_000, 2, 3, 3), 0.25)
    per_sample = y.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])  # one decision per sample
    assert per_sample[:, 0].unique().tolist() == [0.0, pytest.approx(4 / 3)]
    assert (per_sample[:, 0] == 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)


def test_drop_path_is_off_in_eval_and_spares_identities() -> None:
    torch.manual_seed(0)
    net = build_network("darts", DARTS_V2, 1, 3, 8, channels=4, layers=5, auxiliary=False)
    x = torch.randn(4, 1, 8, 8)
    net.eval()
    reference = net(x)
    net.drop_path_prob = 0.5
    assert torch.equal(net(x), reference)
    net.train()
    assert not torch.equal(net(x), net(x))  # on in training: two draws differ
    # A cell of identities only (skip_connect, stride 1) is untouched even at p = 0.9.
    cell = DartsEvalCell([("skip_connect", 0), ("skip_connect", 1)] * 2, [2, 3], 4, 4, 4,
                         reduction=False, reduction_prev=False).train()
    s0, s1 = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    assert torch.equal(cell(s0, s1, 0.9), cell(s0, s1, 0.0))


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_auxiliary_head_takes_small_maps(size: int) -> None:
    head = AuxiliaryHead(12, 5).eval()
    assert head(torch.randn(3, 12, size, size)).shape == (3, 5)
    assert count_parameters(head, exclude_auxiliary=False) == (
        12 * 128 + bn(128) + 128 * 768 * 4 + bn(768) + 768 * 5 + 5)


@pytest.mark.parametrize("arch, expected", [(CONV3, 1_531_546), (SKIPS, 73_306),
                                            (ARCH_2211, 344_346)])
def test_nb201_parameters_match_the_hand_count(arch: str, expected: int) -> None:
    net = build_network("nb201", NB201Genotype.from_arch_str(arch), 3, 10, 32, channels=16,
                        cells_per_stage=5)
    assert count_parameters(net) == nb201_params(arch, 16, 5, 3, 10) == expected


def test_nb201_size_and_flops_match_the_benchmark_for_arch_2211() -> None:
    # The official API prints FLOP= 47.10 M, Params=0.344 MB on CIFAR-10 and 47.11 M, 0.350 MB
    # on CIFAR-100 for this cell.
    g = NB201Genotype.from_arch_str(ARCH_2211)
    for classes, flops, params in [(10, 47.10, 0.344), (100, 47.11, 0.350)]:
        net = build_network("nb201", g, 3, classes, 32)
        assert round(count_flops(net, (3, 32, 32)) / 1e6, 2) == flops
        assert round(count_parameters(net) / 1e6, 3) == params
    tiny = build_network("nb201", g, 1, 3, 8, channels=4, cells_per_stage=1)
    assert tiny(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_count_flops_counts_conv_and_linear_macs() -> None:
    assert count_flops(nn.Linear(5, 3), (5,)) == 15
    grouped = nn.Conv2d(2, 4, 3, padding=1, groups=2, bias=False)
    assert count_flops(grouped, (2, 5, 5)) == 4 * 25 * 1 * 9
    # The depthwise convs of a single-edge sep_conv run through their modules, so hooks see
    # them: 2 × (depthwise 4·36·9 + pointwise 4·36·4).
    sep = SingleEdge(SepConv(4, 1, 3, 1, affine=True))
    assert count_flops(sep, (4, 6, 6)) == 2 * (4 * 36 * 9 + 4 * 36 * 4)
    assert sep.training  # the mode is restored


def test_affine_ops_keep_per_edge_slices_consistent() -> None:
    torch.manual_seed(0)
    op = ReLUConvBN(3, 4, 2, 3, 1, affine=True).train()
    assert op.bn.affine and not ReLUConvBN(3, 4, 2, 3, 1).bn.affine
    with torch.no_grad():
        op.bn.weight.uniform_(0.5, 2.0)
        op.bn.bias.uniform_(-1.0, 1.0)
    inp = EdgeInput(torch.randn(5, 3, 6, 6))
    torch.testing.assert_close(op(inp, range(1, 2))[:, 0], op(inp)[:, 1])


def test_build_network_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="no network for space"):
        build_network("nb101", DARTS_V2, 3, 10, 32)
    with pytest.raises(TypeError, match="MlpArch"):
        build_network("mlp", DARTS_V2, 3, 10, 32)
    with pytest.raises(ValueError, match="multiple of 4"):
        build_network("darts", DARTS_V2, 3, 10, 30)
    with pytest.raises(TypeError, match="NB201Genotype"):
        build_network("nb201", DARTS_V2, 3, 10, 32)
