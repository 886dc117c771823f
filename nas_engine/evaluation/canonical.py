"""Canonical architecture keys: one string per network, so a database trains nothing twice.

- DARTS (Liu et al. 2019): a node sums its two inputs, so their order is irrelevant, and
  intermediate nodes that do not feed each other can be numbered either way (the concat's
  channel order only permutes the weights of the next layers, which all start with ReLU and a
  linear map). `darts_key` sorts each node's (op, input) pairs and takes the smallest key over
  the node numberings the dependencies allow. Input nodes 0 and 1 keep their roles: they are
  preprocessed differently.
- NAS-Bench-201 (Dong & Yang 2020): `nb201_key` is the benchmark's own "unique string"
  (`Structure.to_unique_str(consider_zero=True)` in D-X-Y/AutoDL-Projects, NATS-Bench's
  `get_unique_str`), which gives the published 6,466 distinct networks among the 15,625 cells.
  It writes node 3 as an expression: `none`, or any op on an input that is exactly zero, is
  `#`; skip_connect passes its input's expression on; another op on input e is `(e)@op`; a
  node joins its incoming terms, sorted, with `+`. That string is a heuristic, not an
  isomorphism test. A node that sums several zeros is `#+#`, not `#`, so an op after it counts
  as live, and such a sum differs from a single `#`; so of the 341 cells with an identically
  zero output (the official `check_valid` is False) only 254 get all-`#` strings, and those
  take two strings (`#+#+#`, `#+#+#+#`), the other 87 three more. It also misses relabellings
  of nodes 1 and 2, and, being a tree, merges cells that share one conv through skips with
  cells that have two convs (different parameter counts).
- `nb201_network_key` is the stricter alternative: the cell as a graph of its live ops (skips
  contracted, `none` and dead edges dropped, identical pools merged), up to isomorphism. All
  341 zero cells share one key. It is sound (equal keys are the same network) but not
  complete: algebraic identities such as avg-pool's linearity are not used.
The network key takes any op on a zero input as zero (the benchmark's string does so on node
1 only); with affine BN a conv's output on zeros is its BN bias, a constant, so either way such
a branch carries nothing of the input.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from nas_engine.catalog import PARAMETER_FREE
from nas_engine.spaces.dag import edge_list
from nas_engine.spaces.genotypes import (
    DARTS_EDGES_PER_NODE,
    DARTS_INPUTS,
    NB201_INPUTS,
    NB201_STEPS,
    SKIP,
    DartsGenotype,
    NB201Genotype,
)

ZERO = "#"  # the benchmark's mark for a zero term
ZERO_NETWORK = "zero"  # `nb201_network_key` of every cell whose output is identically zero

Pairs = list[tuple[str, int]]


def _relabelled(pairs: Pairs, new: dict[int, int]) -> Pairs | None:
    """The cell with node n renumbered `new[n]`, listed in the new order with each node's pairs
    sorted; None when a node would take an input numbered after it."""
    nodes: dict[int, Pairs] = {}
    for first in range(0, len(pairs), DARTS_EDGES_PER_NODE):
        target = new[DARTS_INPUTS + first // DARTS_EDGES_PER_NODE]
        node = [(op, new[src]) for op, src in pairs[first:first + DARTS_EDGES_PER_NODE]]
        if any(src >= target for _, src in node):
            return None
        nodes[target] = sorted(node)
    return [pair for target in sorted(nodes) for pair in nodes[target]]


def _cell_text(pairs: Pairs) -> str:
    nodes = [pairs[i:i + DARTS_EDGES_PER_NODE]
             for i in range(0, len(pairs), DARTS_EDGES_PER_NODE)]
    return "+".join("|" + "|".join(f"{op}~{src}" for op, src in node) + "|" for node in nodes)


def _darts_cell_key(pairs: Pairs, concat: list[int]) -> tuple[str, str]:
    steps = len(pairs) // DARTS_EDGES_PER_NODE
    best: tuple[str, str] | None = None
    for order in itertools.permutations(range(steps)):
        new = {i: i for i in range(DARTS_INPUTS)}
        new |= {DARTS_INPUTS + old: DARTS_INPUTS + k for k, old in enumerate(order)}
        cell = _relabelled(pairs, new)
        if cell is None:
            continue
        candidate = (_cell_text(cell), ",".join(str(n) for n in sorted(new[n] for n in concat)))
        if best is None or candidate < best:
            best = candidate
    assert best is not None  # the given numbering is always allowed
    return best


def darts_key(genotype: DartsGenotype) -> str:
    """`normal=<cell>;normal_concat=..;reduce=<cell>;reduce_concat=..`, a cell written as the
    NB201 arch string writes one (`|op~input|op~input|+|...|`), in canonical form."""
    normal, normal_concat = _darts_cell_key(list(genotype.normal), list(genotype.normal_concat))
    reduce, reduce_concat = _darts_cell_key(list(genotype.reduce), list(genotype.reduce_concat))
    return (f"normal={normal};normal_concat={normal_concat};"
            f"reduce={reduce};reduce_concat={reduce_concat}")


def _incoming(genotype: NB201Genotype) -> list[list[tuple[str, int]]]:
    """(op, source) of each non-input node's incoming edges."""
    nodes: list[list[tuple[str, int]]] = [[] for _ in range(NB201_STEPS)]
    for (op, source), (_, target) in zip(genotype.edges, edge_list(NB201_INPUTS, NB201_STEPS),
                                         strict=True):
        nodes[target - NB201_INPUTS].append((op, source))
    return nodes


def nb201_key(genotype: NB201Genotype) -> str:
    """The benchmark's unique string of the cell (the module docstring says what it is)."""
    expressions = ["0"]
    for node in _incoming(genotype):
        terms = []
        for op, source in node:
            given = expressions[source]
            if op == "none" or given == ZERO:
                terms.append(ZERO)
            elif op == SKIP:
                terms.append(given)
            else:
                terms.append(f"({given})@{op}")
        expressions.append("+".join(sorted(terms)))
    return expressions[-1]


INPUT = -1  # the cell input among a node's terms; ops are numbered from 0


def _nb201_graph(genotype: NB201Genotype) -> tuple[list[tuple[str, tuple[int, ...]]],
                                                   tuple[int, ...]]:
    """The live ops as (op, its input's terms) and the output's terms, a node being the sum of
    its terms (INPUT or an op's index). Skips pass their input's terms on; `none` and zero
    inputs add nothing; a pool of a sum already pooled is that op again (the same tensor),
    while every conv edge is an op of its own (its own weights)."""
    ops: list[tuple[str, tuple[int, ...]]] = []
    pooled: dict[tuple[str, tuple[int, ...]], int] = {}
    values: list[tuple[int, ...]] = [(INPUT,)]
    for node in _incoming(genotype):
        terms: list[int] = []
        for op, source in node:
            given = values[source]
            if op == "none" or not given:
                continue
            if op == SKIP:
                terms.extend(given)
                continue
            content = (op, given)
            if op in PARAMETER_FREE and content in pooled:
                terms.append(pooled[content])
                continue
            ops.append(content)
            if op in PARAMETER_FREE:
                pooled[content] = len(ops) - 1
            terms.append(len(ops) - 1)
        values.append(tuple(sorted(terms)))
    return ops, values[-1]


def nb201_is_zero(genotype: NB201Genotype) -> bool:
    """Whether the cell's output is identically zero: every path from the input to node 3
    crosses a `none` edge (the official `check_valid` is False; 341 of the 15,625 cells)."""
    return not _nb201_graph(genotype)[1]


def nb201_network_key(genotype: NB201Genotype) -> str:
    """The cell's live-op graph up to isomorphism, e.g. `0=nor_conv_3x3(x);1=avg_pool_3x3(x+0)
    ;out=0+1` (ops numbered canonically); `zero` for a cell whose output is identically zero."""
    ops, out = _nb201_graph(genotype)
    if not out:
        return ZERO_NETWORK
    live: set[int] = set()
    stack = [t for t in out if t != INPUT]
    while stack:
        op = stack.pop()
        if op not in live:
            live.add(op)
            stack.extend(t for t in ops[op][1] if t != INPUT)
    # Isomorphism invariants of each op (ops only take earlier ops): its expression tree,
    # and its height, so that the ops on the input come first and the key reads in order.
    tree, height = {INPUT: "x"}, {INPUT: 0}
    for i, (name, given) in enumerate(ops):
        tree[i] = f"{name}({'+'.join(sorted(tree[t] for t in given))})"
        height[i] = 1 + max(height[t] for t in given)

    def rank(op: int) -> tuple[int, str]:
        return height[op], tree[op]

    groups = [list(g) for _, g in itertools.groupby(sorted(live, key=rank), key=rank)]
    best: str | None = None
    # Only ops with equal trees can swap numbers; try each numbering of those, keep the least.
    for arrangement in itertools.product(*(itertools.permutations(g) for g in groups)):
        order = [op for group in arrangement for op in group]
        label = {op: str(k) for k, op in enumerate(order)} | {INPUT: "x"}

        def terms(given: tuple[int, ...], label: dict[int, str] = label) -> str:
            return "+".join(sorted(label[t] for t in given))

        parts = [f"{k}={ops[op][0]}({terms(ops[op][1])})" for k, op in enumerate(order)]
        text = ";".join([*parts, f"out={terms(out)}"])
        if best is None or text < best:
            best = text
    assert best is not None
    return best


# space -> the evaluations database's key. NB201 uses the network key: the benchmark's string
# (`nb201_key`, 6,466 classes) gives one key to some cells that are different networks, and a
# shared key would serve one cell's accuracy for another. An MLP's canonical JSON is its key.
ARCHITECTURE_KEYS: dict[str, Callable[[Any], str]] = {
    "darts": darts_key,
    "nb201": nb201_network_key,
    "mlp": lambda arch: arch.to_text(),
}


def architecture_key(space: str, genotype: Any) -> str:
    """The canonical key of `genotype` in `space`, for the evaluations database."""
    if space not in ARCHITECTURE_KEYS:
        raise ValueError(f"no architecture key for space {space!r}; known: "
                         f"{sorted(ARCHITECTURE_KEYS)}")
    return ARCHITECTURE_KEYS[space](genotype)
