"""Discrete cells derived from softmax α, and the text forms people paste and compare.

The derivation rules are the published ones, ties included, so a genotype shown live is the one
the official code would print for the same α:
- DARTS (Liu et al. 2019): per intermediate node, keep the 2 incoming edges whose best
  non-`none` weight is largest (stable: the lower input wins a tie), and on each the best
  non-`none` op (first maximum). `none` is excluded because it would make every cell empty.
- NAS-Bench-201 (Dong & Yang 2020): per edge, the argmax over all ops, `none` included, since
  the benchmark's table contains cells with `none` edges.

Texts are parsed with `ast`, never `eval`, because they come from files and pasted input.
"""

from __future__ import annotations

import ast
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import torch

from nas_engine.catalog import SPACE_OPS
from nas_engine.spaces.dag import edge_count, edge_list

Weights = np.ndarray | torch.Tensor | Sequence[Sequence[float]]

# Same type name and fields as the official repo, so texts load there and vice versa.
DartsGenotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

DARTS_INPUTS = 2
DARTS_EDGES_PER_NODE = 2
NB201_INPUTS = 1
NB201_STEPS = 3
NB201_SOURCES = tuple(source for source, _ in edge_list(NB201_INPUTS, NB201_STEPS))
SKIP = "skip_connect"


def _as_matrix(weights: Weights, ops: Sequence[str], what: str) -> np.ndarray:
    """α as a float (edges, ops) array, whatever container the caller holds it in."""
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu()
    matrix = np.asarray(weights, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (edges, ops) matrix, got shape {matrix.shape}")
    if matrix.shape[1] != len(ops):
        raise ValueError(
            f"{what} has {matrix.shape[1]} op columns but {len(ops)} ops were given: {list(ops)}"
        )
    return matrix


def _darts_steps(rows: int) -> int:
    """Intermediate nodes of a DARTS cell with `rows` edges (14 -> 4)."""
    steps = 1
    while edge_count(DARTS_INPUTS, steps) < rows:
        steps += 1
    if edge_count(DARTS_INPUTS, steps) != rows:
        valid = [edge_count(DARTS_INPUTS, k) for k in range(1, steps + 1)]
        raise ValueError(f"DARTS weights have {rows} edge rows; a cell has one of {valid}")
    return steps


def derive_darts_cell(weights: Weights, ops: Sequence[str]) -> list[tuple[str, int]]:
    """(op, input node) pairs of one cell type, 2 per intermediate node, strongest edge first."""
    matrix = _as_matrix(weights, ops, "DARTS cell weights")
    steps = _darts_steps(len(matrix))
    # The rule ignores `none`; a user-restricted op set may not have it at all.
    columns = [c for c, op in enumerate(ops) if op != "none"]
    if not columns:
        raise ValueError("DARTS derivation needs at least one op other than 'none'")
    pairs: list[tuple[str, int]] = []
    start = 0
    for step in range(steps):
        inputs = DARTS_INPUTS + step
        block = matrix[start : start + inputs][:, columns]
        strength = block.max(axis=1)
        kept = np.argsort(-strength, kind="stable")[:DARTS_EDGES_PER_NODE]
        pairs.extend((ops[columns[int(np.argmax(block[j]))]], int(j)) for j in kept)
        start += inputs
    return pairs


def derive_darts(normal: Weights, reduce: Weights, ops: Sequence[str]) -> DartsGenotype:
    """The normal and reduction cells; concat lists every intermediate node, as DARTS does."""
    normal_pairs = derive_darts_cell(normal, ops)
    reduce_pairs = derive_darts_cell(reduce, ops)
    if len(normal_pairs) != len(reduce_pairs):
        raise ValueError("DARTS normal and reduce weights describe cells of different sizes")
    concat = _darts_concat(len(normal_pairs))
    return DartsGenotype(normal_pairs, concat, reduce_pairs, list(concat))


def _darts_concat(pairs: int) -> list[int]:
    return list(range(DARTS_INPUTS, DARTS_INPUTS + pairs // DARTS_EDGES_PER_NODE))


def _check_pairs(name: str, pairs: Any) -> list[tuple[str, int]]:
    """Pairs as a list of (str, int) tuples, each input an earlier node of its own node."""
    if not isinstance(pairs, list | tuple) or not pairs or len(pairs) % DARTS_EDGES_PER_NODE:
        raise ValueError(
            f"genotype '{name}' must be a non-empty list of (op, input) pairs, "
            f"{DARTS_EDGES_PER_NODE} per intermediate node"
        )
    checked = []
    for position, pair in enumerate(pairs):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)
                and isinstance(pair[1], Integral) and not isinstance(pair[1], bool)):
            raise ValueError(f"genotype '{name}' entry {pair!r} is not an (op name, node) pair")
        node = DARTS_INPUTS + position // DARTS_EDGES_PER_NODE
        if not 0 <= pair[1] < node:
            raise ValueError(f"genotype '{name}' entry {pair!r}: node {node} takes inputs "
                             f"0..{node - 1}")
        checked.append((pair[0], int(pair[1])))
    return checked


def _check_concat(name: str, concat: Any) -> list[int]:
    if not isinstance(concat, list | tuple | range) or not all(
        isinstance(n, Integral) and not isinstance(n, bool) for n in concat
    ):
        raise ValueError(f"genotype '{name}' must be a list of node ids, got {concat!r}")
    return [int(n) for n in concat]


def _darts_from_fields(fields: dict[str, Any]) -> DartsGenotype:
    """A validated genotype with lists and plain ints, so equal cells compare and print equal."""
    missing = [f for f in DartsGenotype._fields if f not in fields]
    if missing:
        raise ValueError(f"genotype is missing {missing}; it needs {list(DartsGenotype._fields)}")
    return DartsGenotype(
        normal=_check_pairs("normal", fields["normal"]),
        normal_concat=_check_concat("normal_concat", fields["normal_concat"]),
        reduce=_check_pairs("reduce", fields["reduce"]),
        reduce_concat=_check_concat("reduce_concat", fields["reduce_concat"]),
    )


def darts_to_text(g: DartsGenotype) -> str:
    """The official repr, with lists for concat so `eval` with the official namedtuple loads it."""
    return repr(_darts_from_fields(g._asdict()))


def _literal(name: str, node: ast.expr) -> Any:
    """A field's value: a Python literal, or `range(a, b)` as the official repo prints concat."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords):
        try:
            return range(*(_literal(name, arg) for arg in node.args))
        except TypeError as error:
            raise ValueError(f"genotype field '{name}' has a bad range: {error}") from error
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError) as error:
        source = ast.unparse(node)
        raise ValueError(f"genotype field '{name}' is not a literal: {source}") from error


def darts_from_text(text: str) -> DartsGenotype:
    """Parse `Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)`."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"genotype text is not valid Python syntax: {error.msg}") from error
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == "Genotype" and not call.args):
        raise ValueError("genotype text must be Genotype(normal=..., normal_concat=..., "
                         "reduce=..., reduce_concat=...) with keyword fields")
    fields: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg not in DartsGenotype._fields or keyword.arg in fields:
            raise ValueError(f"genotype text has an unknown or repeated field: {keyword.arg}")
        fields[keyword.arg] = _literal(keyword.arg, keyword.value)
    return _darts_from_fields(fields)


def darts_to_dict(g: DartsGenotype) -> dict[str, Any]:
    """JSON-ready: pairs as [op, node] lists, plus the text form for pasting."""
    g = _darts_from_fields(g._asdict())
    return {
        "normal": [list(pair) for pair in g.normal],
        "normal_concat": g.normal_concat,
        "reduce": [list(pair) for pair in g.reduce],
        "reduce_concat": g.reduce_concat,
        "text": darts_to_text(g),
    }


def darts_from_dict(d: dict[str, Any]) -> DartsGenotype:
    """Inverse of `darts_to_dict`; the "text" entry is only a copy and is ignored."""
    return _darts_from_fields({f: d[f] for f in DartsGenotype._fields if f in d})


@dataclass(frozen=True)
class NB201Genotype:
    """One NB201 cell: (op, input node) per edge, in edge-row order 1<-0, 2<-0, 2<-1, 3<-0, ..."""

    edges: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        sources = tuple(source for _, source in self.edges)
        if sources != NB201_SOURCES or not all(isinstance(op, str) and op for op, _ in self.edges):
            raise ValueError(f"NB201 cell needs {len(NB201_SOURCES)} (op, input) edges with "
                             f"inputs {list(NB201_SOURCES)}, got {list(self.edges)}")

    def to_arch_str(self) -> str:
        """The benchmark's key, e.g. `|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|`."""
        nodes: list[list[str]] = [[] for _ in range(NB201_STEPS)]
        for (op, source), (_, target) in zip(self.edges, edge_list(NB201_INPUTS, NB201_STEPS),
                                             strict=True):
            nodes[target - NB201_INPUTS].append(f"{op}~{source}")
        return "+".join(f"|{'|'.join(node)}|" for node in nodes)

    @classmethod
    def from_arch_str(cls, s: str) -> NB201Genotype:
        nodes = s.strip().split("+")
        if len(nodes) != NB201_STEPS:
            raise ValueError(f"NB201 arch string needs {NB201_STEPS} '+'-separated nodes, "
                             f"got {len(nodes)}: {s!r}")
        edges = []
        for node in nodes:
            if len(node) < 2 or node[0] != "|" or node[-1] != "|":
                raise ValueError(f"NB201 arch string node {node!r} must be wrapped in '|'")
            for edge in node[1:-1].split("|"):
                op, tilde, source = edge.partition("~")
                if not tilde or not source.isdigit():
                    raise ValueError(f"NB201 arch string edge {edge!r} is not 'op~input'")
                edges.append((op, int(source)))
        return cls(tuple(edges))


def derive_nb201(weights: Weights, ops: Sequence[str]) -> NB201Genotype:
    """Argmax op per edge, `none` included (first maximum on ties)."""
    matrix = _as_matrix(weights, ops, "NB201 cell weights")
    if len(matrix) != len(NB201_SOURCES):
        raise ValueError(f"NB201 weights need {len(NB201_SOURCES)} edge rows, got {len(matrix)}")
    best = np.argmax(matrix, axis=1)
    return NB201Genotype(tuple((ops[int(b)], s) for b, s in zip(best, NB201_SOURCES, strict=True)))


def nb201_to_dict(g: NB201Genotype) -> dict[str, Any]:
    return {"arch_str": g.to_arch_str(), "edges": [list(edge) for edge in g.edges]}


def nb201_from_dict(d: dict[str, Any]) -> NB201Genotype:
    """From "edges" (as `nb201_to_dict` writes), or from a bare "arch_str"."""
    if "edges" in d:
        try:
            return NB201Genotype(tuple((op, source) for op, source in d["edges"]))
        except (TypeError, ValueError) as error:
            raise ValueError(f"NB201 genotype 'edges' are malformed: {error}") from error
    if "arch_str" in d:
        return NB201Genotype.from_arch_str(d["arch_str"])
    raise ValueError("NB201 genotype dict needs 'edges' or 'arch_str'")


def skip_count_darts(g: DartsGenotype, cell: str = "normal") -> int:
    """skip_connect edges kept in one cell type: DARTS' collapse grows the normal cell's count."""
    if cell not in ("normal", "reduce"):
        raise ValueError(f"DARTS cell must be 'normal' or 'reduce', got {cell!r}")
    return sum(op == SKIP for op, _ in getattr(g, cell))


def skip_count_nb201(g: NB201Genotype) -> int:
    """skip_connect edges in the cell; 6 is the fully collapsed cell."""
    return sum(op == SKIP for op, _ in g.edges)


def parse_genotype(space: str, text: str) -> Any:
    """A pasted cell: `Genotype(...)` for darts, the arch string for nb201, the JSON of an
    `MlpArch` for mlp; every op must be one of the space's."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the cell is empty")
    if space == "darts":
        genotype = darts_from_text(text)
        ops = [op for op, _ in (*genotype.normal, *genotype.reduce)]
    elif space == "nb201":
        genotype = NB201Genotype.from_arch_str(text)
        ops = [op for op, _ in genotype.edges]
    elif space == "mlp":
        from nas_engine.spaces.mlp import MlpArch

        return MlpArch.from_text(text)
    else:
        raise ValueError(f"no genotype format for space {space!r}")
    unknown = sorted(set(ops) - set(SPACE_OPS[space]))
    if unknown:
        raise ValueError(f"unknown op {unknown[0]!r} (the {space} ops: "
                         f"{', '.join(SPACE_OPS[space])})")
    return genotype


def genotype_from_dict(space: str, d: dict[str, Any]) -> DartsGenotype | NB201Genotype:
    """A genotype as records and genotype.json hold it."""
    if space == "darts":
        return darts_from_dict(d)
    if space == "nb201":
        return nb201_from_dict(d)
    raise ValueError(f"no genotype format for space {space!r}")
