"""Genotype derivation against hand-worked α, text/dict round trips, official-format interop."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
import torch

from nas_engine.spaces.genotypes import (
    DartsGenotype,
    NB201Genotype,
    darts_from_dict,
    darts_from_text,
    darts_to_dict,
    darts_to_text,
    derive_darts,
    derive_darts_cell,
    derive_nb201,
    nb201_from_dict,
    nb201_to_dict,
    skip_count_darts,
    skip_count_nb201,
)

DARTS_OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
             "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
NONE, MAX, AVG, SKIP, SEP3, SEP5, DIL3, DIL5 = range(8)
NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]

# The official repo's type, to check our text loads there.
OfficialGenotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def hand_darts_weights() -> np.ndarray:
    """(14, 8) α; rows: node 2 <- 0,1 | node 3 <- 0,1,2 | node 4 <- 0..3 | node 5 <- 0..4."""
    w = np.full((14, 8), 0.1)
    # node 2: input 0 is dominated by none but its best real op (sep 0.3) still beats input 1.
    w[0, NONE], w[0, SEP3] = 0.9, 0.3
    w[1, SKIP] = 0.2
    # node 3: input 2 is strongest; inputs 0 and 1 tie at 0.5 -> input 0 is kept.
    w[2, DIL3] = 0.5
    w[3, SEP5] = 0.5
    w[4, MAX] = 0.7
    # node 4: input 2 ties avg_pool and sep_conv_3x3 -> the first op (avg_pool) wins.
    w[7, AVG], w[7, SEP3] = 0.6, 0.6
    w[8, DIL5] = 0.4
    # node 5: all-none edges; the non-none argmax still decides (input 3 skip 0.06 > input 0).
    w[9:14] = 0.01
    w[9:14, NONE] = 0.93
    w[9, NONE], w[9, SEP5] = 0.9, 0.04
    w[12, NONE], w[12, SKIP] = 0.9, 0.06
    return w


HAND_DARTS_CELL = [
    ("sep_conv_3x3", 0), ("skip_connect", 1),
    ("max_pool_3x3", 2), ("dil_conv_3x3", 0),
    ("avg_pool_3x3", 2), ("dil_conv_5x5", 3),
    ("skip_connect", 3), ("sep_conv_5x5", 0),
]


def test_darts_rule_on_hand_matrix() -> None:
    assert derive_darts_cell(hand_darts_weights(), DARTS_OPS) == HAND_DARTS_CELL


def test_darts_accepts_tensor_and_nested_list() -> None:
    w = hand_darts_weights()
    assert derive_darts_cell(torch.tensor(w, requires_grad=True), DARTS_OPS) == HAND_DARTS_CELL
    assert derive_darts_cell(w.tolist(), DARTS_OPS) == HAND_DARTS_CELL


def test_darts_all_none_cell_uses_non_none_argmax() -> None:
    w = np.full((14, 8), 0.02)
    w[:, NONE] = 0.86
    w[:, SEP5] = 0.03  # every edge's best real op, all equal -> inputs 0 and 1 kept everywhere
    assert derive_darts_cell(w, DARTS_OPS) == [("sep_conv_5x5", 0), ("sep_conv_5x5", 1)] * 4


def test_darts_restricted_ops_without_none() -> None:
    w = np.full((14, 2), 0.5)
    w[0], w[1] = [0.7, 0.3], [0.4, 0.6]  # node 2: strengths 0.7, 0.6
    w[3], w[4] = [0.2, 0.8], [0.9, 0.1]  # node 3: input 2 (0.9), input 1 (0.8)
    # node 4: all ties -> inputs 0, 1 and the first op
    w[13] = [0.45, 0.55]  # node 5: input 4 (0.55), then tie 0.5 -> input 0
    assert derive_darts_cell(w, ["skip_connect", "sep_conv_3x3"]) == [
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 2), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("skip_connect", 1),
        ("sep_conv_3x3", 4), ("skip_connect", 0),
    ]


def test_derive_darts_both_cells_and_concat() -> None:
    reduce = np.full((14, 8), 0.1)
    reduce[:, MAX] = 0.5  # every edge max_pool, all tied -> inputs 0 and 1
    g = derive_darts(hand_darts_weights(), reduce, DARTS_OPS)
    assert g.normal == HAND_DARTS_CELL
    assert g.reduce == [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4
    assert g.normal_concat == g.reduce_concat == [2, 3, 4, 5]
    assert isinstance(g, DartsGenotype) and type(g).__name__ == "Genotype"


def test_darts_node_count_follows_rows() -> None:
    w = np.full((5, 2), 0.5)  # 2 nodes: 2 + 3 edges
    w[4] = [0.1, 0.9]
    g = derive_darts(w, w, ["skip_connect", "sep_conv_3x3"])
    assert g.normal == [("skip_connect", 0), ("skip_connect", 1),
                        ("sep_conv_3x3", 2), ("skip_connect", 0)]
    assert g.normal_concat == [2, 3]


@pytest.mark.parametrize(
    "shape, ops",
    [((14,), DARTS_OPS), ((2, 14, 8), DARTS_OPS), ((14, 7), DARTS_OPS), ((13, 8), DARTS_OPS),
     ((14, 1), ["none"])],
)
def test_darts_shape_errors(shape: tuple[int, ...], ops: list[str]) -> None:
    with pytest.raises(ValueError):
        derive_darts_cell(np.ones(shape), ops)


def test_darts_text_round_trip_and_official_eval() -> None:
    g = derive_darts(hand_darts_weights(), hand_darts_weights(), DARTS_OPS)
    text = darts_to_text(g)
    assert darts_from_text(text) == g
    assert eval(text, {"Genotype": OfficialGenotype}) == g  # interop check only
    assert "normal_concat=[2, 3, 4, 5]" in text


def test_darts_v2_text_parses_exactly() -> None:
    g = darts_from_text(DARTS_V2_TEXT)
    assert g.normal[7] == ("dil_conv_3x3", 2)
    assert g.reduce[2] == ("skip_connect", 2)
    assert skip_count_darts(g) == 2
    assert skip_count_darts(g, "reduce") == 3
    assert darts_to_text(g) == DARTS_V2_TEXT


def test_darts_official_range_concat_parses() -> None:
    official = DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 6)")
    assert "range(2, 6)" in official
    assert darts_from_text(official) == darts_from_text(DARTS_V2_TEXT)
    assert darts_from_text(official).normal_concat == [2, 3, 4, 5]


def test_darts_dict_round_trip() -> None:
    g = darts_from_text(DARTS_V2_TEXT)
    d = darts_to_dict(g)
    assert d["normal"][0] == ["sep_conv_3x3", 0]
    assert d["reduce_concat"] == [2, 3, 4, 5]
    assert d["text"] == DARTS_V2_TEXT
    assert darts_from_dict(d) == g


@pytest.mark.parametrize(
    "text",
    [
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)])",  # missing fields
        DARTS_V2_TEXT.replace("Genotype(", "Cell("),
        DARTS_V2_TEXT[:-1],  # unbalanced
        DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),  # node 5 from 5
        DARTS_V2_TEXT.replace(", ('dil_conv_3x3', 2)]", "]"),  # odd pair count
        DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=__import__('os')"),
        DARTS_V2_TEXT.replace("reduce_concat", "extra"),
    ],
)
def test_darts_malformed_text_raises(text: str) -> None:
    with pytest.raises(ValueError):
        darts_from_text(text)


def test_darts_skip_count_bad_cell() -> None:
    with pytest.raises(ValueError):
        skip_count_darts(darts_from_text(DARTS_V2_TEXT), "cell")


def hand_nb201_weights() -> np.ndarray:
    """(6, 5) α; rows 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2; columns NB201_OPS."""
    w = np.full((6, 5), 0.1)
    w[0, 0] = 0.5  # none wins: it counts in NB201
    w[1, 3] = 0.6  # nor_conv_3x3
    w[2, 1] = w[2, 2] = 0.4  # tie skip / nor_conv_1x1 -> skip (first)
    w[3, 4] = 0.7  # avg_pool_3x3
    w[4, 2] = 0.5  # nor_conv_1x1
    w[5, 1] = 0.8  # skip_connect
    return w


HAND_NB201_ARCH = (
    "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
)


def test_nb201_argmax_includes_none_and_ties_to_first() -> None:
    g = derive_nb201(hand_nb201_weights(), NB201_OPS)
    assert g.edges == (("none", 0), ("nor_conv_3x3", 0), ("skip_connect", 1),
                       ("avg_pool_3x3", 0), ("nor_conv_1x1", 1), ("skip_connect", 2))
    assert g.to_arch_str() == HAND_NB201_ARCH
    assert skip_count_nb201(g) == 2
    assert derive_nb201(torch.tensor(hand_nb201_weights()), NB201_OPS) == g


def test_nb201_arch_str_and_dict_round_trip() -> None:
    g = NB201Genotype.from_arch_str(HAND_NB201_ARCH)
    assert g == derive_nb201(hand_nb201_weights(), NB201_OPS)
    assert g.to_arch_str() == HAND_NB201_ARCH
    d = nb201_to_dict(g)
    assert d == {"arch_str": HAND_NB201_ARCH,
                 "edges": [["none", 0], ["nor_conv_3x3", 0], ["skip_connect", 1],
                           ["avg_pool_3x3", 0], ["nor_conv_1x1", 1], ["skip_connect", 2]]}
    assert nb201_from_dict(d) == g
    assert nb201_from_dict({"arch_str": HAND_NB201_ARCH}) == g


def test_nb201_collapse_cell_skip_count() -> None:
    collapsed = NB201Genotype.from_arch_str(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|"
        "+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    assert skip_count_nb201(collapsed) == 6


@pytest.mark.parametrize(
    "arch",
    [
        "",
        "|none~0|+|none~0|none~1|",  # two nodes
        "|none~0|+|none~0|+|none~0|none~1|none~2|",  # node 2 has one edge
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",  # four nodes
        "|none~0|+|none~1|none~0|+|none~0|none~1|none~2|",  # inputs out of order
        "|none0|+|none~0|none~1|+|none~0|none~1|none~2|",  # no '~'
        "|none~x|+|none~0|none~1|+|none~0|none~1|none~2|",  # non-integer input
        "none~0+|none~0|none~1|+|none~0|none~1|none~2|",  # missing '|'
        "|~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # empty op
    ],
)
def test_nb201_malformed_arch_str_raises(arch: str) -> None:
    with pytest.raises(ValueError):
        NB201Genotype.from_arch_str(arch)


@pytest.mark.parametrize("shape", [(6,), (5, 5), (6, 4), (1, 6, 5)])
def test_nb201_shape_errors(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        derive_nb201(np.ones(shape), NB201_OPS)


def test_nb201_bad_dict_raises() -> None:
    with pytest.raises(ValueError):
        nb201_from_dict({"edges": [["none", 0]]})
    with pytest.raises(ValueError):
        nb201_from_dict({})
