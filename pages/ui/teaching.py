"""What each chart shows (one line under it) and how to read it (an expander), written for a
student who has just met differentiable architecture search. The facts are REFERENCE.md §2-3.
"""

from __future__ import annotations

import streamlit as st

ALPHA = """\
**α (alpha)** are the *architecture weights*. Every edge of the cell is a *mixed op*: all
candidate ops run side by side and their outputs are summed, weighted by softmax(α) of that
edge. The network weights *w* learn on one half of the data, α on the other half, in
alternation. When the search ends, each edge keeps only its strongest op: that discrete cell is
the *genotype*."""

TEXTS: dict[str, tuple[str, str]] = {
    "heatmap": (
        "Architecture weights α: one row per edge of the cell, one column per candidate op; "
        "colour and number = softmax weight (raw α with the toggle).",
        ALPHA + """

*Reading it:* a row is one edge's vote over its ops; it sums to 1. At the start every row is
flat (1/number of ops: nobody has won yet). As the search goes on, one cell per row gets
brighter: that op is winning the edge. Rows are named *from→to* nodes (`0→2`: from the first
input into node 2). The DARTS space has two cell types with their own α: *normal* cells keep
the image size, *reduce* cells halve it.

*Raw α* shows the numbers before the softmax. Adding the same amount to a whole row changes
nothing in the softmax, so compare raw α only within a row.""",
    ),
    "dag": (
        "The cell as a graph: every candidate edge, thicker and darker the more weight its best "
        "op has; the derived cell's edges are coloured and labelled with their op.",
        """\
Boxes are the cell's inputs (for DARTS, the outputs of the two previous cells, `c_{k-2}` and
`c_{k-1}`); circles are intermediate nodes, each the sum of its incoming edges. The *derived
cell* (genotype) is what the published rule keeps right now: for DARTS, each node keeps its two
strongest incoming edges and, on each, its best op other than `none`; for NAS-Bench-201, every
edge keeps its argmax op (`none` cuts the edge). Dashed grey edges are candidates the rule
drops. Hover an edge for its top three ops.

Watch the red edges: red is `skip_connect`. A cell made mostly of skips has almost no
parameters left; that is the *collapse*.""",
    ),
    "curves": (
        "Loss and accuracy of the supernet: thin lines are single batches at logged steps, "
        "markers the epoch means and the whole validation split; orange dotted lines mark live "
        "parameter changes.",
        """\
*Train* is measured on the half of the data that trains the weights *w*; *val* on the half
that trains α. A good-looking validation loss does **not** mean a good architecture: a
collapsed supernet (full of skip connections) often has the *lower* validation error, because
skips make the supernet easy to optimise, not because the discrete cell is good. Watch the
curves together with the skip count.

A vertical line marks a live change (for example a new α learning rate or entropy weight): the
steps after it used the new value.""",
    ),
    "diagnostics": (
        "Collapse signals: skip_connects in the derived cell, mean α entropy (how undecided the "
        "edges are) and the share of softmax mass on parameter-free ops.",
        """\
*Why skip_connect wins.* Early on the convolutions are still random and noisy, while a skip
passes the signal through unchanged; gradient descent on α rewards whatever lowers the loss
*now*, so α shifts toward skips, the convolutions then get less gradient, and the effect feeds
itself ("rich get richer"). DARTS on NAS-Bench-201 ends with all six edges = `skip_connect`
(54 % CIFAR-10 accuracy, against 94 % for the best cell).

*Skip count* is how many skips the derived (normal) cell holds; DARTS+ calls it collapse at
2 or more. *Entropy* of an edge is −Σ p log p of its softmax α: ln(number of ops) when the
edge is undecided, 0 when one op has all the weight; shown is the mean over edges.
*Parameter-free mass* is the softmax weight on skip, pooling and `none`, averaged over edges:
rising mass means the supernet routes around its convolutions. *Hessian λmax* (when
`diagnostics.hessian_every` is set) is the sharpest curvature of the validation loss in α;
R-DARTS saw it climb before collapse. The *alarm* turns red when a rule fires: DARTS+ (2 or
more skips) or R-DARTS (λmax grew 1.3× over 8 epochs).

*What entropy regularisation does.* The α loss gets λ·H(α). λ > 0 pushes every edge to
decide (smaller gap between supernet and derived cell, but it speeds up collapse); λ < 0 keeps
edges undecided, which resists early domination by skips. You can change λ while the search
runs, or branch a run with a different λ and compare.""",
    ),
    "trajectories": (
        "α of every op on every edge over the search: skip_connect thick red, other "
        "parameter-free ops dotted, the convolutions in colour.",
        """\
Each small panel is one edge. Collapse looks like the red line climbing away from the others
on many edges at once, usually after the convolutions had a brief lead. An edge where two
lines stay close is undecided: the derived cell could flip there with a little more
training.""",
    ),
    "mass": (
        "Share of softmax weight on parameter-free ops (skip, pools, none), mean over edges, per "
        "cell type; dashed: skip_connect alone; dotted: what uniform α would give.",
        """\
Above the dotted line the supernet prefers ops without parameters. A steady climb of the
skip_connect share is the collapse in one number; entropy regularisation with λ < 0 or the
mitigations (DARTS-, P-DARTS, R-DARTS' stronger weight decay) should flatten it.""",
    ),
    "timeline": (
        "The derived cell epoch by epoch: which op each edge holds (blank: the edge is not "
        "kept).",
        """\
Read a row left to right to see an edge change its mind. A column full of red is a collapsed
cell. The final genotype is the last column; a stable last few columns mean more epochs would
not change it.""",
    ),
    "compare": (
        "The runs side by side, per epoch: validation accuracy, training loss, skip count and "
        "α entropy.",
        """\
Compare runs that differ in one thing (for example the same seed with entropy weight 0 and
−0.1). The one with the better validation accuracy is not automatically the better search:
look at the skip counts and the cells below. A run that keeps its convolutions usually gives
the better network after retraining the cell from scratch.""",
    ),
}


def explain(name: str) -> None:
    """The chart's one-line caption and its how-to-read expander."""
    caption, body = TEXTS[name]
    st.caption(caption)
    with st.expander("How to read this"):
        st.markdown(body)
