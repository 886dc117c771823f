"""Canonical architecture keys: equal for the same network, different otherwise, and the
benchmark's counts over all 15,625 NB201 cells."""

from __future__ import annotations

import itertools

import pytest

from nas_engine.catalog import SPACE_OPS
from nas_engine.evaluation.canonical import (
    ZERO_NETWORK,
    architecture_key,
    darts_key,
    nb201_is_zero,
    nb201_key,
    nb201_network_key,
)
from nas_engine.evaluation.networks import build_network, count_parameters
from nas_engine.spaces.genotypes import NB201_SOURCES, DartsGenotype, NB201Genotype

V2_NORMAL = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
             ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)]
V2_REDUCE = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
             ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]
CONCAT = [2, 3, 4, 5]


def darts(normal: list, reduce: list = V2_REDUCE, normal_concat: list = CONCAT
          ) -> DartsGenotype:
    return DartsGenotype(normal, normal_concat, reduce, CONCAT)


def nb201(arch: str) -> NB201Genotype:
    return NB201Genotype.from_arch_str(arch)


def all_nb201_cells() -> list[NB201Genotype]:
    return [NB201Genotype(tuple(zip(ops, NB201_SOURCES, strict=True)))
            for ops in itertools.product(SPACE_OPS["nb201"], repeat=len(NB201_SOURCES))]


def test_darts_key_ignores_the_order_of_a_nodes_inputs() -> None:
    swapped = [V2_NORMAL[i ^ 1] for i in range(8)]  # each node's two pairs exchanged
    assert darts_key(darts(swapped)) == darts_key(darts(V2_NORMAL))
    swapped_reduce = [V2_REDUCE[i ^ 1] for i in range(8)]
    assert darts_key(darts(V2_NORMAL, swapped_reduce)) == darts_key(darts(V2_NORMAL))


def test_darts_key_renumbers_nodes_that_do_not_feed_each_other() -> None:
    # Nodes 3 and 4 take only inputs 0 and 1: numbering them the other way is the same cell.
    renumbered = V2_NORMAL[:2] + V2_NORMAL[4:6] + V2_NORMAL[2:4] + V2_NORMAL[6:]
    assert darts_key(darts(renumbered)) == darts_key(darts(V2_NORMAL))
    # A chain 2 -> 3 moved behind two independent nodes (2, 3, 4, 5 renumbered 4, 5, 2, 3),
    # its edge following it: the same cell; pointing that edge elsewhere is another.
    chain = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 2), ("dil_conv_3x3", 0)]
    other = [("sep_conv_5x5", 0), ("max_pool_3x3", 1), ("avg_pool_3x3", 1), ("sep_conv_3x3", 0)]
    moved = other + chain[:2] + [("skip_connect", 4), ("dil_conv_3x3", 0)]
    miswired = other + chain[:2] + [("skip_connect", 2), ("dil_conv_3x3", 0)]
    assert darts_key(darts(moved)) == darts_key(darts(chain + other))
    assert darts_key(darts(miswired)) != darts_key(darts(chain + other))


def test_darts_key_tells_different_cells_apart() -> None:
    base = darts_key(darts(V2_NORMAL))
    keys = {
        base,
        darts_key(darts(V2_NORMAL[:7] + [("dil_conv_5x5", 2)])),  # another op
        darts_key(darts(V2_NORMAL[:7] + [("dil_conv_3x3", 1)])),  # another input
        darts_key(darts(V2_REDUCE, V2_NORMAL)),  # the cells' roles exchanged
        darts_key(darts(V2_NORMAL, normal_concat=[2, 3, 4])),  # another concat
    }
    assert len(keys) == 5
    assert base.startswith("normal=|") and ";reduce_concat=2,3,4,5" in base


def test_nb201_enumeration_gives_the_benchmarks_counts() -> None:
    cells = all_nb201_cells()
    assert len(cells) == 15_625
    official = [nb201_key(g) for g in cells]
    network = [nb201_network_key(g) for g in cells]
    zero = [nb201_is_zero(g) for g in cells]
    assert len(set(official)) == 6_466  # NB201 / NATS-Bench: "6466 unique architectures"
    assert sum(zero) == 341  # the official check_valid is False for these
    # The benchmark's string marks 254 of them as plainly zero, under two strings ...
    plain_zero = [k for k in official if set(k) <= {"#", "+"}]
    assert len(plain_zero) == 254 and set(plain_zero) == {"#+#+#", "#+#+#+#"}
    # ... and spreads all 341 over five; the network key gives them one.
    assert len({k for k, z in zip(official, zero, strict=True) if z}) == 5
    assert {k for k, z in zip(network, zero, strict=True) if z} == {ZERO_NETWORK}
    assert all(z == (k == ZERO_NETWORK) for k, z in zip(network, zero, strict=True))
    assert len(set(network)) == 5_260


@pytest.mark.parametrize("key", [nb201_key, nb201_network_key])
def test_nb201_keys_see_through_skips_and_dead_edges(key) -> None:
    # Node 2 sums both convs either way, and node 1 reaches the output only through node 2.
    assert key(nb201("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|"
                     "avg_pool_3x3~2|")) == key(
        nb201("|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|"
              "avg_pool_3x3~2|"))
    # Once node 1 also feeds the output directly, which conv sits there matters.
    assert key(nb201("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|skip_connect~1|"
                     "avg_pool_3x3~2|")) != key(
        nb201("|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|skip_connect~1|"
              "avg_pool_3x3~2|"))
    ops = SPACE_OPS["nb201"]
    # Node 1 feeds nothing (its out-edges are none): the op into it is irrelevant.
    dead_in = {key(nb201(f"|{op}~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|"
                         "avg_pool_3x3~2|")) for op in ops}
    # Node 1 is zero (its in-edge is none): the ops out of it are irrelevant.
    dead_out = {key(nb201(f"|none~0|+|nor_conv_3x3~0|{a}~1|+|skip_connect~0|{b}~1|"
                          "nor_conv_1x1~2|")) for a in ops for b in ops}
    assert len(dead_in) == 1 and len(dead_out) == 1


# Nodes 1 and 2 exchanged (edge 2 <- 1 is none, so both only read the input).
SWAP_A = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SWAP_B = "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
# One conv reaching the output by two paths, against two convs of their own.
SHARED = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|avg_pool_3x3~1|avg_pool_3x3~2|"
TWO = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|avg_pool_3x3~2|"


def test_network_key_is_exact_where_the_benchmarks_string_is_not() -> None:
    # The relabelling is the same network; the official string writes node 2's sum as
    # `#+(0)@op` but node 1's as `(0)@op`, so it misses it.
    assert nb201_network_key(nb201(SWAP_A)) == nb201_network_key(nb201(SWAP_B))
    assert nb201_key(nb201(SWAP_A)) != nb201_key(nb201(SWAP_B))
    # The official string is a tree: it cannot tell a shared conv from two convs, which are
    # networks of different sizes.
    assert nb201_key(nb201(SHARED)) == nb201_key(nb201(TWO))
    assert nb201_network_key(nb201(SHARED)) != nb201_network_key(nb201(TWO))
    sizes = {count_parameters(build_network("nb201", nb201(a), 1, 2, 8, channels=4,
                                            cells_per_stage=1)) for a in (SHARED, TWO)}
    assert len(sizes) == 2
    # Zero cells: the official string sees a conv after a node of zeros as live.
    dead = [nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
            nb201("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")]
    assert [nb201_key(g) for g in dead] == ["#+#+#", "#+#+(#+#)@nor_conv_3x3"]
    assert all(nb201_is_zero(g) and nb201_network_key(g) == ZERO_NETWORK for g in dead)


def test_architecture_key_dispatches_by_space() -> None:
    assert architecture_key("darts", darts(V2_NORMAL)) == darts_key(darts(V2_NORMAL))
    # The database keys NB201 cells by the network they compute (see ARCHITECTURE_KEYS).
    assert architecture_key("nb201", nb201(SWAP_A)) == nb201_network_key(nb201(SWAP_A))
    assert architecture_key("nb201", nb201(SWAP_A)) != nb201_key(nb201(SWAP_A))
    with pytest.raises(ValueError, match="no architecture key"):
        architecture_key("nb101", darts(V2_NORMAL))
