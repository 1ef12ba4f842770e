"""Every op of the registry against independent truth.

- Gradients: the VJP of each op with a random cotangent ``w`` (the gradient of
  ``sum(w * f(inputs))``) against central finite differences in float64, on
  hypothesis-drawn inputs inside ``op.domain`` and away from kinks.
- Second derivatives: a Hessian-vector product through ``create_graph=True``
  against central differences of the first gradient.
- Forward values against numpy or a closed form.
- Kink conventions (issue 2, section 3) against hand-derived values.
- numpy interop: plain-numpy functions called with Tensors, checked against
  the same functions run by numpy on ndarrays.

``SPECS`` maps every op name to its case builder; an op registered without an
entry here fails ``test_every_op_has_a_case`` and its own parametrized tests.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcli as gc
from gradcli import OPS, Tensor

F64 = np.float64
STEP = 1e-6  # central-difference step, relative to max(1, |x|)


# -- cases -----------------------------------------------------------------------
@dataclass
class Case:
    """One application of an op: its inputs, which of them get gradients, options."""

    args: list  # the op's tensor inputs in order (float64 arrays, or constants)
    diff: tuple  # indices of the args that are differentiable float64 inputs
    params: dict = field(default_factory=dict)
    seq: bool = False  # the op takes one sequence of tensors (nin == -1)


@dataclass
class Spec:
    cases: Callable[[Any], st.SearchStrategy]  # op -> strategy of Case
    ref: Callable | None  # independent forward: numpy or a closed form
    rtol: float = 1e-5
    atol: float = 1e-7


@functools.cache
def floats(lo: float, hi: float) -> st.SearchStrategy:
    return st.floats(
        lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )


def _not_near_zero(v: float) -> bool:
    return abs(v) > 1e-3


def _not_near_integer(v: float) -> bool:
    return abs(v - round(v)) > 1e-3


def away_from_zero(lo: float, hi: float) -> st.SearchStrategy:
    # |x| > 1e-3: the kink of abs/relu/sign stays 1000 steps away.
    return floats(lo, hi).filter(_not_near_zero)


def away_from_integers(lo: float, hi: float) -> st.SearchStrategy:
    return floats(lo, hi).filter(_not_near_integer)


def _on_grid(offset: float, k: int) -> float:
    return k / 100 + offset


def grid(offset: float):
    """Values k/100 + offset inside [lo, hi]: two grids with different offsets
    never tie (they differ by at least 0.005), so maximum/minimum/clip stay
    away from their kinks."""

    def make(lo: float, hi: float) -> st.SearchStrategy:
        k_lo = math.ceil((lo - offset) * 100) + 1
        k_hi = math.floor((hi - offset) * 100) - 1
        return st.integers(k_lo, k_hi).map(functools.partial(_on_grid, offset))

    return make


def plain(lo: float, hi: float) -> st.SearchStrategy:
    return floats(lo, hi)


@functools.cache  # building a strategy costs more than drawing from it
def arrays(shape, elements, unique: bool = False) -> st.SearchStrategy:
    return hnp.arrays(F64, shape, elements=elements, unique=unique)


@functools.cache
def cached(make, *args, **kwargs) -> st.SearchStrategy:
    return make(*args, **kwargs)


@functools.cache
def bools(shape) -> st.SearchStrategy:
    return hnp.arrays(np.bool_, shape)


@functools.cache
def broadcastable(n: int) -> st.SearchStrategy:
    return hnp.mutually_broadcastable_shapes(num_shapes=n, max_dims=3, max_side=3)


@functools.cache
def shapes(min_dims: int, max_dims: int, max_side: int) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side)


# -- elementwise ---------------------------------------------------------------
def elementwise(*makers):
    """Inputs of mutually broadcastable shapes, each inside its op.domain range."""

    def build(op):
        n = op.nin
        els = [m(*d) for m, d in zip(makers or (plain,) * n, op.domain)]

        @st.composite
        def cases(draw):
            sh = draw(broadcastable(n)).input_shapes
            return Case([draw(arrays(s, e)) for s, e in zip(sh, els)], tuple(range(n)))

        return cases()

    return build


def where_cases(op):
    @st.composite
    def cases(draw):
        sh = draw(broadcastable(3)).input_shapes
        c = draw(bools(sh[0]))
        a = draw(arrays(sh[1], floats(*op.domain[1])))
        b = draw(arrays(sh[2], floats(*op.domain[2])))
        return Case([c, a, b], (1, 2))

    return cases()


# -- reductions ----------------------------------------------------------------
@functools.cache
def axes_for(ndim: int, kinds=("none", "int", "tuple")) -> st.SearchStrategy:
    options = []
    if "none" in kinds or ndim == 0:
        options.append(st.none())
    if ndim:
        if "int" in kinds:
            options.append(st.integers(-ndim, ndim - 1))
        if "tuple" in kinds:
            options.append(hnp.valid_tuple_axes(ndim))
        if "pair" in kinds and ndim >= 2:
            options.append(
                st.permutations(range(ndim)).map(functools.partial(_pair, ndim))
            )
    return st.one_of(*options)


def _pair(ndim: int, perm) -> tuple[int, int]:
    return (perm[0], perm[1] - ndim)  # two distinct axes, one of them negative


def count(shape, axis) -> int:
    if axis is None:
        return math.prod(shape)
    axis = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(shape[a] for a in axis)


def reduction(
    elements=plain,
    unique=False,
    ddof=False,
    keepdims=True,
    min_dims=0,
    axis_kinds=("none", "int", "tuple"),
    ord_=False,
):
    def build(op):
        els = elements(*op.domain[0])

        @st.composite
        def cases(draw):
            shape = draw(shapes(min_dims, 3, 4))
            x = draw(arrays(shape, els, unique=unique))
            params = {"axis": draw(axes_for(len(shape), axis_kinds))}
            if keepdims:
                params["keepdims"] = draw(st.booleans())
            if ddof:
                n = count(shape, params["axis"])
                params["ddof"] = draw(st.sampled_from([0, 1])) if n > 1 else 0
            if ord_:
                axis = params["axis"]
                # Vector orders along one axis (ties of inf/-inf, and the matrix
                # orders 1, inf, 2, -2, 'nuc': tests/test_corner_cases.py).
                choices = [None, 2, 1, 3, -1, 0.5, 0] if isinstance(axis, int) else [None]
                if isinstance(axis, tuple) and len(axis) == 2:
                    choices.append("fro")
                params["ord"] = draw(st.sampled_from(choices))
            return Case([x], (0,), params)

        return cases()

    return build


def _thousandths(k: int) -> float:
    return k / 1000


def _above_tenth(v: float) -> bool:
    return abs(v) > 0.1


def unique_grid(lo: float, hi: float) -> st.SearchStrategy:
    # Distinct values on a 1e-3 grid: no ties (max/min) and no zero spread (std).
    return st.integers(math.ceil(lo * 1000), math.floor(hi * 1000)).map(_thousandths)


def nonzero(lo: float, hi: float) -> st.SearchStrategy:
    return floats(lo, hi).filter(_above_tenth)


# -- linear algebra ----------------------------------------------------------------
def shaped(templates, elements=plain):
    """Shapes from templates over sizes n, m, k, b, c drawn in 1..4."""

    def build(op):
        els = elements(*op.domain[0])
        template_st = st.sampled_from(templates)

        @st.composite
        def cases(draw):
            sizes = {s: draw(SIDE) for s in "nmkbc"}
            template = draw(template_st)
            shapes = [
                tuple(sizes[s] if isinstance(s, str) else s for s in t)
                for t in template
            ]
            args = [draw(arrays(s, els)) for s in shapes]
            return Case(args, tuple(range(len(args))))

        return cases()

    return build


DOT = [
    ((), ()),
    ((), ("n",)),
    (("m", "n"), ()),
    (("n",), ("n",)),
    (("m", "n"), ("n",)),
    (("n",), ("n", "k")),
    (("m", "n"), ("n", "k")),
    # N-d: a's last axis against b's second to last
    (("b", "m", "n"), ("n",)),
    (("b", "m", "n"), ("n", "k")),
    (("n",), ("b", "n", "k")),
    (("m", "n"), ("b", "n", "k")),
    (("b", "m", "n"), ("c", "n", "k")),
]
MATMUL = [
    (("n",), ("n",)),
    (("m", "n"), ("n",)),
    (("n",), ("n", "k")),
    (("m", "n"), ("n", "k")),
    (("b", "m", "n"), ("b", "n", "k")),
    (("b", "m", "n"), ("n", "k")),
    (("m", "n"), ("b", "n", "k")),
    ((1, "m", "n"), ("b", "n", "k")),
    (("b", 1, "m", "n"), ("c", "n", "k")),
    (("n",), ("b", "n", "k")),
    (("b", "m", "n"), ("n",)),
]
OUTER = [(("n",), ("k",)), ((), ("k",)), (("m", "n"), ("k",)), (("n",), ("b", "k"))]
INNER = [
    (("n",), ("n",)),
    (("m", "n"), ("n",)),
    (("n",), ("k", "n")),
    (("m", "n"), ("k", "n")),
    ((), ("n",)),
    (("m", "n"), ()),
    ((), ("k", "n")),
    # numpy sums b's LAST axis, not dot's second to last (inner(x, T) of a
    # (3, 3, 3) T was dot's: 137 where numpy gives 124)
    (("n",), ("b", "k", "n")),
    (("m", "n"), ("b", "k", "n")),
    (("c", "m", "n"), ("b", "k", "n")),
]


UNIT_FLOATS = floats(-1.0, 1.0)
SIDE = st.integers(1, 4)


@st.composite
def well_conditioned(draw, batch: bool = False):
    """random + (n+1) I: strictly diagonally dominant, so far from singular."""
    n = draw(SIDE)
    lead = (draw(st.integers(1, 3)),) if batch and draw(st.booleans()) else ()
    m = draw(arrays(lead + (n, n), UNIT_FLOATS))
    return m + (n + 1) * np.eye(n)


def matrix_cases(batch: bool):
    def build(op):
        @st.composite
        def cases(draw):
            return Case([draw(well_conditioned(batch))], (0,))

        return cases()

    return build


def solve_cases(op):
    @st.composite
    def cases(draw):
        # numpy 2: b is a vector only when 1-d, else a stack broadcast against a's
        a = draw(well_conditioned(batch=True))
        n = a.shape[-1]
        k = draw(st.integers(1, 3))
        stacks = [(), (1,), (2,)] if a.ndim == 2 else [(), a.shape[:-2], (1,)]
        bshape = draw(st.sampled_from([(n,)] + [s + (n, k) for s in stacks]))
        b = draw(arrays(bshape, floats(*op.domain[1])))
        return Case([a, b], (0, 1))

    return cases()


def _spd_gap(a, upper=False) -> bool:
    """The symmetric matrix numpy reads from ``a`` has eigenvalues 0.1 apart."""
    w = np.linalg.eigvalsh(a, UPLO="U" if upper else "L")
    return bool(np.all(np.diff(w, axis=-1) > 0.1)) if w.shape[-1] > 1 else True


def _sv_gap(a) -> bool:
    """Singular values 0.1 apart and above 0.1 (U and Vh then have gradients)."""
    s = np.linalg.svd(a, compute_uv=False)
    return bool(np.all(s > 0.1) and np.all(-np.diff(s, axis=-1) > 0.1))


def _generic(a):
    """``a`` plus a fixed irrational-looking offset: LAPACK's choice of signs for
    eigenvectors (singular vectors) jumps at structured points (exact zeros,
    equal entries: [[1, 1], [1, 1]]), where no finite difference sees a
    derivative; hypothesis likes such points."""
    return a + 0.01 * np.sin(np.arange(1, a.size + 1) * 1.618).reshape(a.shape)


@st.composite
def cholesky_cases(draw, op):
    return Case([draw(well_conditioned(batch=True))], (0,), {"upper": draw(st.booleans())})


@st.composite
def matrix_power_cases(draw, op):
    a = draw(well_conditioned(batch=True))
    return Case([a / a.shape[-1]], (0,), {"n": draw(st.integers(-3, 5))})


@st.composite
def full_rank(draw, batch: bool = True):
    """m x n, 1 <= m, n <= 4, a dominant identity block: full rank either way."""
    m, n = draw(SIDE), draw(SIDE)
    lead = (draw(st.integers(1, 2)),) if batch and draw(st.booleans()) else ()
    return draw(arrays(lead + (m, n), UNIT_FLOATS)) + (min(m, n) + 1) * np.eye(m, n)


@st.composite
def pinv_cases(draw, op):
    return Case([draw(full_rank())], (0,))


@st.composite
def eigh_cases(draw, op):
    # Any square matrix: numpy reads one triangle, the gradient lands there.
    n = draw(SIDE)
    lead = (draw(st.integers(1, 2)),) if draw(st.booleans()) else ()
    upper = draw(st.booleans())
    a = draw(arrays(lead + (n, n), floats(-2.0, 2.0)).map(_generic).filter(
        functools.partial(_spd_gap, upper=upper)))
    return Case([a], (0,), {"UPLO": "U" if upper else "L"})


@st.composite
def svd_cases(draw, op):
    m, n = draw(SIDE), draw(SIDE)
    lead = (draw(st.integers(1, 2)),) if draw(st.booleans()) else ()
    a = draw(arrays(lead + (m, n), floats(-2.0, 2.0)).map(_generic).filter(_sv_gap))
    uv = draw(st.booleans())
    # full_matrices adds columns of no defined gradient unless m == n
    full = m == n and draw(st.booleans())
    return Case([a], (0,), {"full_matrices": full, "compute_uv": uv})


@st.composite
def qr_cases(draw, op):
    n = draw(SIDE)
    m = draw(st.integers(n, 4))
    lead = (draw(st.integers(1, 2)),) if draw(st.booleans()) else ()
    a = draw(arrays(lead + (m, n), UNIT_FLOATS)) + (n + 1) * np.eye(m, n)
    return Case([_generic(a)], (0,))


def _slogdet_ref(a):
    return np.stack(np.linalg.slogdet(a), axis=-1)


def _eigh_ref(a, *, UPLO):
    w, v = np.linalg.eigh(a, UPLO=UPLO)
    return np.concatenate([w[..., None, :], v], axis=-2)


def _svd_ref(a, *, full_matrices, compute_uv):
    if not compute_uv:
        return np.linalg.svd(a, compute_uv=False)
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return np.concatenate([u.reshape(s.shape[:-1] + (-1,)), s,
                           vh.reshape(s.shape[:-1] + (-1,))], axis=-1)


def _qr_ref(a):
    return np.concatenate(np.linalg.qr(a), axis=-2)


def trace_cases(op):
    """A matrix, or a stack with any two distinct axes and an offset (as
    diagonal takes them)."""
    els = floats(*op.domain[0])

    @st.composite
    def cases(draw):
        if draw(st.booleans()):
            return Case([draw(arrays((draw(SIDE), draw(SIDE)), els))], (0,))
        nd = draw(st.integers(2, 3))
        shape = tuple(draw(SIDE) for _ in range(nd))
        a1, a2 = draw(st.permutations(range(nd)))[:2]
        params = {"offset": draw(st.integers(-2, 2)), "axis1": a1 - nd * draw(st.booleans()),
                  "axis2": a2}
        return Case([draw(arrays(shape, els))], (0,), params)

    return cases()


EINSUM = [  # subscripts, operand shapes over sizes n, m, k (numpy's own examples)
    ("ij,jk->ik", ("nm", "mk")),
    ("ij,jk", ("nm", "mk")),  # implicit output
    ("ii->i", ("nn",)),
    ("ii", ("nn",)),  # the trace
    ("ij->ji", ("nm",)),
    ("ij->", ("nm",)),
    ("i,i", ("n", "n")),
    ("i,j->ij", ("n", "m")),
    ("iij->j", ("nnm",)),
    ("ijk,k->i", ("nmk", "k")),
    ("...ij,...jk->...ik", ("knm", "mk")),
    ("...i,...i", ("nm", "m")),
    ("i...->...", ("nmk",)),
    ("bij,bjk,k->bi", ("knm", "kmn", "n")),
]


@st.composite
def einsum_cases(draw, op):
    els = floats(*op.domain[0])
    subscripts, templates = draw(st.sampled_from(EINSUM))
    sizes = {c: draw(SIDE) for c in "nmk"}
    xs = [draw(arrays(tuple(sizes[c] for c in t), els)) for t in templates]
    return Case(xs, tuple(range(len(xs))), {"subscripts": subscripts}, seq=True)


def _einsum_ref(xs, *, subscripts):
    return np.einsum(subscripts, *xs)


def diag_params(draw, shape):
    return {"k": draw(st.integers(-2, 2))}


def triangle_params(draw, shape):
    return {"k": draw(st.integers(-3, 3))}


@st.composite
def kron_cases(draw, op):
    els = floats(*op.domain[0])
    a = draw(arrays(draw(shapes(0, 3, 3)), els))
    b = draw(arrays(draw(shapes(0, 3, 3)), els))
    return Case([a, b], (0, 1))


@st.composite
def tensordot_cases(draw, op):
    els = floats(*op.domain[0])
    k = draw(st.integers(0, 2))
    shared = tuple(draw(SIDE) for _ in range(k))
    fa = tuple(draw(SIDE) for _ in range(draw(st.integers(0, 2))))
    fb = tuple(draw(SIDE) for _ in range(draw(st.integers(0, 2))))
    if draw(st.booleans()):  # axes=k: a's last k axes against b's first k
        a, b = draw(arrays(fa + shared, els)), draw(arrays(shared + fb, els))
        return Case([a, b], (0, 1), {"axes": k})
    # explicit axis lists, in shuffled positions
    pa = draw(st.permutations(range(len(fa) + k)))
    pb = draw(st.permutations(range(len(fb) + k)))
    sa, sb = [0] * (len(fa) + k), [0] * (len(fb) + k)
    for j, n in enumerate(fa + shared):
        sa[pa[j]] = n
    for j, n in enumerate(shared + fb):
        sb[pb[j]] = n
    ia = [pa[len(fa) + i] for i in range(k)]
    ib = [pb[i] for i in range(k)]
    return Case([draw(arrays(tuple(sa), els)), draw(arrays(tuple(sb), els))], (0, 1),
                {"axes": (ia, ib)})


@st.composite
def cross_cases(draw, op):
    els = floats(*op.domain[0])
    sa, sb = draw(broadcastable(2)).input_shapes
    sa, sb = list(sa), list(sb)
    pa, pb = draw(st.integers(0, len(sa))), draw(st.integers(0, len(sb)))
    sa.insert(pa, 3)
    sb.insert(pb, 3)
    params = {"axisa": pa, "axisb": pb - len(sb)}
    nout = max(len(sa), len(sb))
    params["axisc"] = draw(st.integers(-nout, nout - 1))
    return Case([draw(arrays(tuple(sa), els)), draw(arrays(tuple(sb), els))], (0, 1),
                params)




@st.composite
def transpose_cases(draw, op):
    shape = draw(shapes(0, 4, 3))
    x = draw(arrays(shape, floats(*op.domain[0])))
    nd = len(shape)
    axes = None
    if nd and draw(st.booleans()):
        perm = draw(st.permutations(range(nd)))
        axes = tuple(a - nd if draw(st.booleans()) else a for a in perm)
    return Case([x], (0,), {"axes": axes})


# -- shape -------------------------------------------------------------------------
@st.composite
def reshape_cases(draw, op):
    shape = draw(shapes(0, 3, 4))
    x = draw(arrays(shape, floats(*op.domain[0])))
    sides = list(draw(st.permutations(list(shape))))
    for _ in range(draw(st.integers(0, 2))):
        sides.insert(draw(st.integers(0, len(sides))), 1)
    if sides and draw(st.booleans()):
        sides[draw(st.integers(0, len(sides) - 1))] = -1
    return Case([x], (0,), {"shape": tuple(sides)})


@st.composite
def broadcast_to_cases(draw, op):
    shape = draw(shapes(0, 3, 3))
    other = draw(
        cached(hnp.broadcastable_shapes, shape, min_dims=0, max_dims=4, max_side=3)
    )
    x = draw(arrays(shape, floats(*op.domain[0])))
    return Case([x], (0,), {"shape": np.broadcast_shapes(shape, other)})


@st.composite
def concatenate_cases(draw, op):
    nd = draw(st.integers(1, 3))
    base = list(draw(shapes(nd, nd, 3)))
    axis = draw(st.integers(-nd, nd - 1))
    xs = []
    for _ in range(draw(st.integers(1, 3))):
        shape = list(base)
        shape[axis] = draw(st.integers(1, 3))
        xs.append(draw(arrays(tuple(shape), floats(*op.domain[0]))))
    return Case(xs, tuple(range(len(xs))), {"axis": axis}, seq=True)


@st.composite
def stack_cases(draw, op):
    shape = draw(shapes(0, 3, 3))
    nd = len(shape)
    k = draw(st.integers(1, 3))
    xs = [draw(arrays(shape, floats(*op.domain[0]))) for _ in range(k)]
    return Case(xs, tuple(range(k)), {"axis": draw(st.integers(-nd - 1, nd))}, seq=True)


def one_input(make_params, min_dims=0, max_dims=3, max_side=3):
    """One array of a drawn shape; ``make_params(draw, shape)`` its options."""

    def build(op):
        els = floats(*op.domain[0])

        @st.composite
        def cases(draw):
            shape = draw(shapes(min_dims, max_dims, max_side)) if max_dims else ()
            x = draw(arrays(shape, els))
            return Case([x], (0,), make_params(draw, shape))

        return cases()

    return build


def no_params(draw, shape):
    return {}


@st.composite
def sort_cases(draw, op):
    # distinct values (no ties: the kink), any axis or None
    shape = draw(shapes(1, 3, 3))
    x = draw(arrays(shape, unique_grid(*op.domain[0]), unique=True))
    return Case([x], (0,), {"axis": draw(st.sampled_from([None, *range(-len(shape), len(shape))]))})


def flip_params(draw, shape):
    return {"axis": draw(axes_for(len(shape)))}


def rot90_params(draw, shape):
    nd = len(shape)
    a = draw(st.integers(-nd, nd - 1))
    b = draw(st.integers(-nd, nd - 1).filter(lambda b: b % nd != a % nd))
    return {"k": draw(st.integers(-5, 5)), "axes": (a, b)}


def roll_params(draw, shape):
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"] if nd else ["none"]))
    if kind == "none":
        return {"shift": draw(st.integers(-5, 5)), "axis": None}
    if kind == "int":
        return {"shift": draw(st.integers(-5, 5)), "axis": draw(st.integers(-nd, nd - 1))}
    axes = draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=3))
    shifts = tuple(draw(st.integers(-4, 4)) for _ in axes)
    return {"shift": shifts, "axis": tuple(axes)}


@st.composite
def squeeze_cases(draw, op):
    shape = list(draw(shapes(0, 3, 3)))
    for _ in range(draw(st.integers(0, 2))):
        shape.insert(draw(st.integers(0, len(shape))), 1)
    x = draw(arrays(tuple(shape), floats(*op.domain[0])))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = None
    if ones and draw(st.booleans()):
        picked = draw(st.lists(st.sampled_from(ones), min_size=1, unique=True))
        axis = picked[0] - len(shape) if len(picked) == 1 else tuple(picked)
    return Case([x], (0,), {"axis": axis})


def expand_dims_params(draw, shape):
    nd = len(shape)
    k = draw(st.integers(1, 2))
    axes = draw(st.lists(st.integers(0, nd + k - 1), min_size=k, max_size=k, unique=True))
    axes = [a - (nd + k) if draw(st.booleans()) else a for a in axes]
    return {"axis": axes[0] if k == 1 else tuple(axes)}


def moveaxis_params(draw, shape):
    nd = len(shape)
    k = draw(st.integers(1, nd))
    src = draw(st.lists(st.integers(0, nd - 1), min_size=k, max_size=k, unique=True))
    dst = draw(st.lists(st.integers(-nd, nd - 1), min_size=k, max_size=k,
                        unique_by=lambda a: a % nd))
    if k == 1:
        return {"source": src[0], "destination": dst[0]}
    return {"source": tuple(src), "destination": tuple(dst)}


def swapaxes_params(draw, shape):
    nd = len(shape)
    return {"axis1": draw(st.integers(-nd, nd - 1)), "axis2": draw(st.integers(-nd, nd - 1))}


def repeat_params(draw, shape):
    nd = len(shape)
    axis = draw(st.sampled_from([None] + list(range(-nd, nd))))
    n = math.prod(shape) if axis is None else shape[axis]
    if draw(st.booleans()):
        repeats = draw(st.integers(0, 3))
    else:
        repeats = tuple(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return {"repeats": repeats, "axis": axis}


def tile_params(draw, shape):
    if draw(st.booleans()):
        return {"reps": draw(st.integers(1, 3))}
    return {"reps": tuple(draw(st.lists(st.integers(1, 3), max_size=4)))}


def pad_params(draw, shape):
    nd = len(shape)
    kind = draw(st.sampled_from(["int", "pair", "each"]))
    width = st.integers(0, 2)
    if kind == "int":
        pw = draw(width)
    elif kind == "pair":
        pw = (draw(width), draw(width))
    else:
        pw = tuple((draw(width), draw(width)) for _ in range(nd))
    return {"pad_width": pw, "constant_values": draw(st.sampled_from([0, 1.5]))}


def joined(make_shapes):
    """A sequence of arrays whose shapes ``make_shapes(draw)`` gives."""

    def build(op):
        els = floats(*op.domain[0])

        @st.composite
        def cases(draw):
            xs = [draw(arrays(s, els)) for s in make_shapes(draw)]
            return Case(xs, tuple(range(len(xs))), {}, seq=True)

        return cases()

    return build


def _sides(draw, lo=1):
    return draw(st.integers(lo, 3))


def vstack_shapes(draw):
    n = _sides(draw)
    return [draw(st.sampled_from([(n,), (_sides(draw), n)]))
            for _ in range(draw(st.integers(1, 3)))]


def hstack_shapes(draw):
    k = draw(st.integers(1, 3))
    if draw(st.booleans()):
        return [(_sides(draw),) for _ in range(k)]
    m = _sides(draw)
    return [(m, _sides(draw)) for _ in range(k)]


def column_stack_shapes(draw):
    m = _sides(draw)
    return [draw(st.sampled_from([(m,), (m, _sides(draw))]))
            for _ in range(draw(st.integers(1, 3)))]


def dstack_shapes(draw):
    m, n = _sides(draw), _sides(draw)
    return [draw(st.sampled_from([(m, n), (m, n, _sides(draw))]))
            for _ in range(draw(st.integers(1, 3)))]


@st.composite
def append_cases(draw, op):
    els = floats(*op.domain[0])
    shape = draw(shapes(0, 3, 3))
    if shape and draw(st.booleans()):
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        other = list(shape)
        other[axis] = _sides(draw)
        params, vshape = {"axis": axis}, tuple(other)
    else:
        params, vshape = {}, draw(shapes(0, 2, 3))
    return Case([draw(arrays(shape, els)), draw(arrays(vshape, els))], (0, 1), params)


def _off_the_jumps(case) -> bool:
    q = case.args[0] / case.args[1]
    return bool(np.all(np.abs(q - np.round(q)) > 1e-3))


def remainder_cases(op):
    """a in its range, b of either sign away from 0, a/b away from integers."""
    a_els = floats(*op.domain[0])
    b_els = floats(-3.0, 3.0).filter(_above_tenth)

    @st.composite
    def cases(draw):
        sa, sb = draw(broadcastable(2)).input_shapes
        return Case([draw(arrays(sa, a_els)), draw(arrays(sb, b_els))], (0, 1))

    return cases().filter(_off_the_jumps)


def scan_params(draw, shape):
    return {"axis": draw(axes_for(len(shape), ("none", "int")))}


def diff_params(draw, shape):
    nd = len(shape)
    params = {"n": draw(st.integers(0, 3)), "axis": draw(st.integers(-nd, nd - 1))}
    for key in ("prepend", "append"):  # constants: a number, or slices along the axis
        kind = draw(st.sampled_from(["none", "number", "array"]))
        if kind == "number":
            params[key] = draw(st.floats(-2, 2))
        elif kind == "array":
            ends = list(shape)
            ends[params["axis"]] = draw(st.integers(1, 2))
            params[key] = draw(arrays(tuple(ends), st.floats(-2, 2)))
    return params


@st.composite
def indices(draw, shape):
    """Basic indices (ints, slices with negative steps, Ellipsis, newaxis),
    integer arrays (with repeats), mixed slice + array, boolean masks."""
    nd = len(shape)
    kinds = ["basic"] + (["array", "repeat", "slice", "mask"] if nd else [])
    if nd >= 2:
        kinds.append("mixed")
    kind = draw(st.sampled_from(kinds))
    if kind == "basic":
        return draw(
            cached(
                hnp.basic_indices,
                shape,
                min_dims=0,
                allow_newaxis=True,
                allow_ellipsis=True,
            )
        )
    if kind == "array":
        return draw(cached(hnp.integer_array_indices, shape))
    if kind == "repeat":
        n = shape[0]
        idx = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6))
        return np.array(idx + idx[:1])  # at least one index twice
    if kind == "slice":
        return draw(st.slices(shape[0]))
    if kind == "mask":
        return draw(bools(shape))
    n = shape[1]
    idx = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5)))
    return (draw(st.slices(shape[0])), idx)


@st.composite
def getitem_cases(draw, op):
    shape = draw(shapes(0, 3, 4))
    x = draw(arrays(shape, floats(*op.domain[0])))
    return Case([x], (0,), {"index": draw(indices(shape))})


@st.composite
def index_add_cases(draw, op):
    shape = draw(shapes(0, 3, 4))
    index = draw(indices(shape))
    xshape = np.empty(shape)[index].shape
    x = draw(arrays(xshape, floats(*op.domain[0])))
    return Case([x], (0,), {"index": index, "shape": shape})


def positions(shape, index) -> np.ndarray:
    """Flat positions that ``x[index]`` reads, by indexing an array of positions."""
    return np.asarray(np.arange(math.prod(shape)).reshape(shape)[index])


def index_add_ref(x, *, index, shape):
    # Scatter-add by an explicit loop: independent of np.add.at.
    z = np.zeros(math.prod(shape))
    for p, v in zip(positions(shape, index).ravel(), np.ravel(x)):
        z[p] += v
    return z.reshape(shape)


# -- not differentiable: bool results ----------------------------------------------
def predicate_cases(nin: int, elements):
    def build(op):
        @st.composite
        def cases(draw):
            sh = draw(broadcastable(nin)).input_shapes
            return Case([draw(arrays(s, elements)) for s in sh], ())

        return cases()

    return build


FEW = st.sampled_from([-1.0, 0.0, 0.5, 1.0])  # small set: ties and zeros happen
SPECIAL = st.sampled_from([-1.0, 0.0, 2.5, np.inf, -np.inf, np.nan])


def _where(c, a, b):
    return np.where(c, a, b)


def _softmax(x, *, axis=-1):
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, *, axis=-1):
    return x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True))


def _norm(x, *, ord=None, axis=None, keepdims=False):
    return np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)


def _logsumexp(x, *, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


SPECS: dict[str, Spec] = {
    # elementwise arithmetic
    "add": Spec(elementwise(), np.add),
    "sub": Spec(elementwise(), np.subtract),
    "mul": Spec(elementwise(), np.multiply),
    "div": Spec(elementwise(), np.divide),
    "neg": Spec(elementwise(), np.negative),
    "pow": Spec(elementwise(), lambda a, b: np.exp(b * np.log(a))),
    "abs": Spec(elementwise(away_from_zero), lambda x: np.where(x < 0, -x, x)),
    "sqrt": Spec(elementwise(), lambda x: x**0.5),
    "square": Spec(elementwise(), lambda x: x * x),
    "exp": Spec(elementwise(), lambda x: math.e**x),
    "expm1": Spec(elementwise(), lambda x: np.exp(x) - 1),
    "log": Spec(elementwise(), np.log),
    "log1p": Spec(elementwise(), lambda x: np.log(1 + x)),
    "log2": Spec(elementwise(), lambda x: np.log(x) / np.log(2)),
    "log10": Spec(elementwise(), lambda x: np.log(x) / np.log(10)),
    # trigonometric and hyperbolic
    "sin": Spec(elementwise(), np.sin),
    "cos": Spec(elementwise(), np.cos),
    "tan": Spec(elementwise(), lambda x: np.sin(x) / np.cos(x)),
    "arcsin": Spec(elementwise(), np.arcsin),
    "arccos": Spec(elementwise(), np.arccos),
    "arctan": Spec(elementwise(), np.arctan),
    "arctan2": Spec(elementwise(), lambda y, x: np.arctan(y / x)),  # x > 0 in domain
    "sinh": Spec(elementwise(), lambda x: (np.exp(x) - np.exp(-x)) / 2),
    "cosh": Spec(elementwise(), lambda x: (np.exp(x) + np.exp(-x)) / 2),
    "tanh": Spec(elementwise(), np.tanh),
    "arcsinh": Spec(elementwise(), lambda x: np.log(x + np.sqrt(x * x + 1))),
    "arccosh": Spec(elementwise(), lambda x: np.log(x + np.sqrt(x * x - 1))),
    "arctanh": Spec(elementwise(), lambda x: 0.5 * np.log((1 + x) / (1 - x))),
    # nn-style elementwise
    "sigmoid": Spec(elementwise(), lambda x: 1 / (1 + np.exp(-x))),
    "relu": Spec(elementwise(away_from_zero), lambda x: np.where(x > 0, x, 0.0)),
    "softplus": Spec(elementwise(), lambda x: np.log1p(np.exp(x))),
    "maximum": Spec(elementwise(grid(0.0025), grid(-0.0025)), np.fmax),
    "minimum": Spec(elementwise(grid(0.0025), grid(-0.0025)), np.fmin),
    "clip": Spec(elementwise(grid(0.0025), grid(-0.0025), grid(-0.0025)), np.clip),
    "where": Spec(where_cases, _where),
    "sign": Spec(elementwise(away_from_zero), lambda x: np.where(x > 0, 1.0, -1.0)),
    "floor": Spec(elementwise(away_from_integers), lambda x: x - np.mod(x, 1.0)),
    "ceil": Spec(elementwise(away_from_integers), lambda x: -np.floor(-x)),
    # comparisons and tests: bool results, no graph
    "less": Spec(predicate_cases(2, FEW), np.less),
    "less_equal": Spec(predicate_cases(2, FEW), np.less_equal),
    "greater": Spec(predicate_cases(2, FEW), np.greater),
    "greater_equal": Spec(predicate_cases(2, FEW), np.greater_equal),
    "equal": Spec(predicate_cases(2, FEW), np.equal),
    "not_equal": Spec(predicate_cases(2, FEW), np.not_equal),
    "logical_and": Spec(predicate_cases(2, FEW), np.logical_and),
    "logical_or": Spec(predicate_cases(2, FEW), np.logical_or),
    "logical_not": Spec(predicate_cases(1, FEW), np.logical_not),
    "isfinite": Spec(predicate_cases(1, SPECIAL), np.isfinite),
    "isnan": Spec(predicate_cases(1, SPECIAL), np.isnan),
    "isinf": Spec(predicate_cases(1, SPECIAL), np.isinf),
    "detach": Spec(predicate_cases(1, floats(-3.0, 3.0)), lambda x: x),
    # reductions
    "sum": Spec(reduction(), np.sum),
    "mean": Spec(reduction(), np.mean),
    "prod": Spec(reduction(), np.prod),
    "max": Spec(reduction(unique_grid, unique=True), np.max),
    "min": Spec(reduction(unique_grid, unique=True), np.min),
    "norm": Spec(
        reduction(nonzero, axis_kinds=("none", "int", "pair"), ord_=True), _norm
    ),
    "logsumexp": Spec(reduction(), _logsumexp),
    "var": Spec(reduction(ddof=True), np.var),
    "std": Spec(reduction(unique_grid, unique=True, ddof=True), np.std),
    "softmax": Spec(
        reduction(keepdims=False, min_dims=1, axis_kinds=("int",)), _softmax
    ),
    "log_softmax": Spec(
        reduction(keepdims=False, min_dims=1, axis_kinds=("int",)), _log_softmax
    ),
    # linear algebra
    "dot": Spec(shaped(DOT), np.dot),
    "matmul": Spec(shaped(MATMUL), np.matmul),
    "outer": Spec(shaped(OUTER), np.outer),
    "inner": Spec(shaped(INNER), np.inner),
    "trace": Spec(trace_cases, np.trace),
    "transpose": Spec(transpose_cases, np.transpose),
    # det reaches 5**4 = 625 and LU rounds at ~n eps |det|: central differences
    # of it carry ~1e-7 absolute error (seen: 1.4e-7 on a 1e-6 cofactor).
    "det": Spec(matrix_cases(batch=True), np.linalg.det, atol=1e-6),
    "inv": Spec(matrix_cases(batch=True), np.linalg.inv),
    "solve": Spec(solve_cases, np.linalg.solve),
    "cholesky": Spec(cholesky_cases, lambda a, *, upper: np.linalg.cholesky(a, upper=upper)),
    "matrix_power": Spec(matrix_power_cases, np.linalg.matrix_power),
    "pinv": Spec(pinv_cases, np.linalg.pinv),
    # the decompositions: their internal ops, results packed as numpy's tuples
    "_slogdet": Spec(matrix_cases(batch=True), _slogdet_ref),
    "_eigh": Spec(eigh_cases, _eigh_ref),
    "_svd": Spec(svd_cases, _svd_ref),
    "_qr": Spec(qr_cases, _qr_ref),
    # shape
    "reshape": Spec(reshape_cases, np.reshape),
    "broadcast_to": Spec(broadcast_to_cases, np.broadcast_to),
    "concatenate": Spec(concatenate_cases, np.concatenate),
    "stack": Spec(stack_cases, np.stack),
    "getitem": Spec(getitem_cases, lambda x, *, index: x[index]),
    "index_add": Spec(index_add_cases, index_add_ref),
    "flip": Spec(one_input(flip_params), np.flip),
    "fliplr": Spec(one_input(no_params, min_dims=2), np.fliplr),
    "flipud": Spec(one_input(no_params, min_dims=1), np.flipud),
    "roll": Spec(one_input(roll_params), np.roll),
    "rot90": Spec(one_input(rot90_params, min_dims=2), np.rot90),
    "squeeze": Spec(squeeze_cases, np.squeeze),
    "expand_dims": Spec(one_input(expand_dims_params), np.expand_dims),
    "moveaxis": Spec(one_input(moveaxis_params, min_dims=1, max_dims=4), np.moveaxis),
    "swapaxes": Spec(one_input(swapaxes_params, min_dims=1), np.swapaxes),
    "repeat": Spec(one_input(repeat_params), np.repeat),
    "tile": Spec(one_input(tile_params), np.tile),
    "atleast_1d": Spec(one_input(no_params), np.atleast_1d),
    "atleast_2d": Spec(one_input(no_params), np.atleast_2d),
    "atleast_3d": Spec(one_input(no_params, max_dims=4), np.atleast_3d),
    "vstack": Spec(joined(vstack_shapes), np.vstack),
    "row_stack": Spec(joined(vstack_shapes), np.vstack),
    "hstack": Spec(joined(hstack_shapes), np.hstack),
    "column_stack": Spec(joined(column_stack_shapes), np.column_stack),
    "dstack": Spec(joined(dstack_shapes), np.dstack),
    "append": Spec(append_cases, np.append),
    "pad": Spec(one_input(pad_params, min_dims=1), np.pad),  # numpy: no 0-d
    # more elementwise
    "exp2": Spec(elementwise(), lambda x: 2.0**x),
    "logaddexp": Spec(elementwise(), lambda a, b: np.log(np.exp(a) + np.exp(b))),
    "logaddexp2": Spec(elementwise(), lambda a, b: np.log2(2.0**a + 2.0**b)),
    "deg2rad": Spec(elementwise(), lambda x: x * np.pi / 180),
    "radians": Spec(elementwise(), lambda x: x * np.pi / 180),
    "rad2deg": Spec(elementwise(), lambda x: x * 180 / np.pi),
    "degrees": Spec(elementwise(), lambda x: x * 180 / np.pi),
    "hypot": Spec(elementwise(away_from_zero, away_from_zero),
                  lambda a, b: np.sqrt(a * a + b * b)),
    "sinc": Spec(elementwise(),
                 lambda x: np.where(x == 0, 1.0, np.sin(np.pi * x)
                                   / (np.pi * np.where(x == 0, 1.0, x)))),
    "remainder": Spec(remainder_cases, lambda a, b: a - np.floor(a / b) * b),
    "mod": Spec(remainder_cases, lambda a, b: a - np.floor(a / b) * b),
    "fmod": Spec(remainder_cases, lambda a, b: a - np.trunc(a / b) * b),
    "nan_to_num": Spec(elementwise(), lambda x: x),
    "real": Spec(elementwise(), lambda x: x),
    "conj": Spec(elementwise(), lambda x: x),
    # scans
    "cumsum": Spec(one_input(scan_params), np.cumsum),
    "cumprod": Spec(one_input(scan_params), np.cumprod),
    "diff": Spec(one_input(diff_params, min_dims=1), np.diff),
    # linear algebra from indexing and products
    "diagonal": Spec(trace_cases, np.diagonal),
    "diag": Spec(one_input(diag_params, min_dims=1, max_dims=2), np.diag),
    "tril": Spec(one_input(triangle_params, min_dims=1), np.tril),
    "triu": Spec(one_input(triangle_params, min_dims=1), np.triu),
    "kron": Spec(kron_cases, np.kron),
    "tensordot": Spec(tensordot_cases, np.tensordot),
    "cross": Spec(cross_cases, np.cross),
    "einsum": Spec(einsum_cases, _einsum_ref),
    "sort": Spec(sort_cases, np.sort),
}

# Ops whose second derivative is zero wherever it exists (piecewise linear or
# piecewise constant): their Hessian-vector product must be exactly 0 away from
# the kinks; at the kinks it is undefined, so no second-order convention exists.
PIECEWISE_LINEAR = {
    "sort",
    "remainder",
    "mod",
    "fmod",
    "nan_to_num",
    "abs",
    "relu",
    "sign",
    "floor",
    "ceil",
    "maximum",
    "minimum",
    "clip",
    "max",
    "min",
}


# -- running a case ------------------------------------------------------------------
@functools.cache
def cases_for(name: str) -> st.SearchStrategy:
    return SPECS[name].cases(OPS[name])


def call(op, case: Case, args):
    if case.seq:
        return op(list(args), **case.params)
    return op(*args, **case.params)


def values(op, case: Case, arrays) -> np.ndarray:
    """The op's forward on plain values, no graph."""
    with gc.no_grad():
        out = call(op, case, [gc.tensor(np.asarray(a)) for a in arrays])
    return np.asarray(out.data, dtype=F64)


def numeric_vjp(op, case: Case, w: np.ndarray, i: int) -> np.ndarray:
    """d/dx_i sum(w * f(x)) by central differences, one element at a time."""
    x = case.args[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        h = STEP * max(1.0, abs(x[idx]))
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        args = list(case.args)
        args[i] = xp
        fp = values(op, case, args)
        args[i] = xm
        fm = values(op, case, args)
        grad[idx] = np.sum(w * (fp - fm)) / (xp[idx] - xm[idx])
    return grad


def leaves(case: Case, args=None) -> list:
    args = case.args if args is None else args
    return [
        gc.tensor(a, requires_grad=True) if i in case.diff else gc.tensor(a)
        for i, a in enumerate(args)
    ]


def first_gradient(op, case: Case, w: np.ndarray, args) -> list[np.ndarray]:
    ts = leaves(case, args)
    call(op, case, ts).backward(gradient=gc.tensor(w))
    return [ts[i].grad.numpy() for i in case.diff]


SEEDS = st.integers(0, 2**32 - 1)


def rng_for(data) -> np.random.Generator:
    return np.random.default_rng(data.draw(SEEDS, label="seed"))


# -- the registry and its tests ------------------------------------------------------
def test_every_op_has_a_case():
    # Registering an op without a gradient test fails here (and in test_op).
    missing = sorted(set(OPS) - set(SPECS))
    assert not missing, f"ops without a test case in SPECS: {missing}"
    stale = sorted(set(SPECS) - set(OPS))
    assert not stale, f"SPECS entries for ops that do not exist: {stale}"


def test_specs_cover_differentiable_and_not():
    # Both kinds are registered and both are covered: the completeness test is
    # not vacuous for either.
    assert any(o.differentiable for o in OPS.values())
    assert any(not o.differentiable for o in OPS.values())
    assert PIECEWISE_LINEAR <= set(OPS)


def check_not_differentiable(op, case: Case, expected) -> None:
    # Bool results (or detach's constant), no graph, even from inputs that
    # require grad.
    ts = [gc.tensor(a, requires_grad=a.dtype.kind == "f") for a in case.args]
    out = call(op, case, ts)
    assert isinstance(out, Tensor)
    assert out.dtype == np.asarray(expected).dtype
    assert out.grad_fn is None and not out.requires_grad
    np.testing.assert_array_equal(out.data, expected)


def check_vjp(op, spec: Spec, case: Case, expected, w: np.ndarray) -> list[np.ndarray]:
    """Forward value, then the gradient of sum(w * f) against central differences;
    returns the central differences."""
    ts = leaves(case)
    out = call(op, case, ts)
    assert isinstance(out, Tensor)
    assert out.dtype == F64
    assert out.grad_fn is not None and out.requires_grad
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-13)

    out.backward(gradient=gc.tensor(w))
    numeric = []
    for i in case.diff:
        g = ts[i].grad
        assert g is not None, f"input {i} got no gradient"
        assert g.shape == case.args[i].shape and g.dtype == F64
        assert g.grad_fn is None and not g.requires_grad
        numeric.append(numeric_vjp(op, case, w, i))
        np.testing.assert_allclose(
            g.data,
            numeric[-1],
            rtol=spec.rtol,
            atol=spec.atol,
            err_msg=f"{op.name}: gradient of input {i}",
        )
    return numeric


def check_hvp(op, spec: Spec, case: Case, w: np.ndarray, numeric: list, rng) -> None:
    """H v through create_graph vs (grad(x + h v) - grad(x - h v)) / 2h."""
    ts = leaves(case)
    call(op, case, ts).backward(gradient=gc.tensor(w), create_graph=True)
    grads = [ts[i].grad for i in case.diff]
    for g, i, num in zip(grads, case.diff, numeric):
        # The create_graph path computes the same first gradient.
        assert isinstance(g, Tensor) and g.shape == case.args[i].shape
        np.testing.assert_allclose(
            g.data,
            num,
            rtol=spec.rtol,
            atol=spec.atol,
            err_msg=f"{op.name}: create_graph gradient {i}",
        )
    for i in case.diff:
        ts[i].grad = None
    vs = {i: rng.standard_normal(case.args[i].shape) for i in case.diff}
    s = sum((g * gc.tensor(vs[i])).sum() for i, g in zip(case.diff, grads))
    if s.requires_grad:
        s.backward()
    # A gradient with no graph does not depend on the inputs: its H v is 0.
    hvp = [
        ts[i].grad.numpy() if ts[i].grad is not None else np.zeros(case.args[i].shape)
        for i in case.diff
    ]

    scale = max(
        [1.0] + [float(np.max(np.abs(case.args[i]), initial=0)) for i in case.diff]
    )
    h = STEP * scale

    def difference(step):
        plus = [a + step * vs[i] if i in case.diff else a for i, a in enumerate(case.args)]
        minus = [a - step * vs[i] if i in case.diff else a for i, a in enumerate(case.args)]
        gp = first_gradient(op, case, w, plus)
        gm = first_gradient(op, case, w, minus)
        return [(p - m) / (2 * step) for p, m in zip(gp, gm)]

    fine, coarse = difference(h), difference(2 * h)
    for k, i in enumerate(case.diff):
        numeric = fine[k]
        assert hvp[k].shape == case.args[i].shape
        if op.name in PIECEWISE_LINEAR:
            assert np.all(hvp[k] == 0), f"{op.name}: second derivative must be 0"
        # The central difference errs by about h^2 times the third derivative,
        # which can be large (prod of 27 factors of 2 with zeros among them:
        # 1.5e-6 where the truth is 0); the same quotient at 2h errs 4 times as
        # much, so their gap estimates the error, and the tolerance allows it.
        err = np.abs(coarse[k] - numeric)
        np.testing.assert_allclose(
            hvp[k],
            numeric,
            rtol=1e-5,
            atol=1e-6 + float(np.max(err, initial=0)),
            err_msg=f"{op.name}: Hessian-vector product, input {i}",
        )


@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_op(name, data):
    """Forward vs numpy, VJP vs central differences, H v (create_graph) vs
    central differences of the gradient; one draw serves all three."""
    op = OPS[name]
    spec = SPECS[name]
    case = data.draw(cases_for(name), label="case")
    expected = (
        spec.ref(case.args, **case.params)
        if case.seq
        else spec.ref(*case.args, **case.params)
    )
    if not op.differentiable:
        check_not_differentiable(op, case, expected)
        return
    rng = rng_for(data)
    w = rng.standard_normal(np.shape(expected))
    numeric = check_vjp(op, spec, case, expected, w)
    check_hvp(op, spec, case, w, numeric, rng)


# -- the facts each declaration carries -------------------------------------------------
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_declares_the_facts_the_engine_needs(name):
    """A new op that leaves out a fact the engine reads fails here, not silently
    (a batched walk, --max-elements, --points chunking or the symbolic check
    quietly doing the wrong thing)."""
    op = OPS[name]
    n = max(op.nin, 1)
    assert callable(op.out_shape), f"{name}: no out_shape (shape= or elementwise)"
    assert len(op.domain) == n, f"{name}: domain has {len(op.domain)} ranges for {n} inputs"
    assert callable(op.run)
    if op.differentiable and not op.composite:
        assert len(op.vjps) == (1 if op.multi else n), f"{name}: one VJP per input"
        assert any(v is not None for v in op.vjps)
    if op.expr and op.differentiable:
        assert op.sym is not None, f"{name}: no sympy form (sym=)"
        assert op.rule, f"{name}: no derivative rule text for `gradcli ops`"
    if op.kink and "at_kink" in op.extra:
        assert callable(op.extra["at_kink"])
    if op.differentiable and not op.composite and not op.elementwise:
        # How a zero cotangent stays zero through its rules (the where promise).
        assert op.support is not None, f"{name}: no support= (or MOVES)"


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=15)  # a structural fact: a few shapes per op find a wrong one
@given(data=st.data())
def test_declared_out_shape_matches_the_forward(name, data):
    # The shape --max-elements checks before anything runs: numpy's own output
    # shape is the truth; NO_BIGGER promises no more elements than an input.
    op = OPS[name]
    case = data.draw(cases_for(name), label="case")
    out = values(op, case, case.args)
    arrays = case.args
    shapes = [np.shape(a) for a in arrays]
    if case.seq:  # one input: the sequence
        shapes = [shapes]
    declared = op.out_shape(shapes, case.params)
    if declared is None:
        assert out.size <= max(np.size(a) for a in arrays)
    elif op.name in ("concatenate", "stack"):  # _joined: the element count
        assert math.prod(declared) == out.size
    else:
        assert tuple(declared) == out.shape


@pytest.mark.parametrize("name", sorted(n for n, o in OPS.items() if o.elementwise))
@settings(max_examples=15)  # structural, as above
@given(data=st.data())
def test_elementwise_ops_commute_with_a_permutation(name, data):
    # What `elementwise` promises (--points stacks rows along a new axis on it):
    # output element i depends on input elements i only, so permuting every
    # input alike permutes the output alike.
    op = OPS[name]
    case = data.draw(cases_for(name), label="case")
    n = 5
    rng = rng_for(data)
    args = []
    for i, a in enumerate(case.args):
        a = np.asarray(a)
        lo, hi = op.domain[i] if op.domain[i] != "matrix" else (-1.0, 1.0)
        if a.dtype.kind == "b":
            args.append(rng.uniform(size=n) > 0.5)
        else:
            args.append(rng.uniform(lo, hi, size=n).astype(a.dtype))
    perm = rng.permutation(n)
    plain = values(op, case, args)
    permuted = values(op, case, [a[perm] for a in args])
    np.testing.assert_array_equal(permuted, plain[perm])


ZERO_HEAVY = st.sampled_from([0.0, 0.0, 0.5, -1.0, 2.0, 1.5])


@given(data=st.data())
def test_prod_with_zeros(data):
    # prod's rule has its own path when factors are zero (no division): first
    # and second derivatives there against central differences too.
    op = OPS["prod"]
    shape = data.draw(shapes(1, 3, 4), label="shape")
    x = data.draw(arrays(shape, ZERO_HEAVY), label="x")
    params = {
        "axis": data.draw(axes_for(len(shape)), label="axis"),
        "keepdims": data.draw(st.booleans(), label="keepdims"),
    }
    case = Case([x], (0,), params)
    expected = np.prod(x, **params)
    rng = rng_for(data)
    w = rng.standard_normal(np.shape(expected))
    numeric = check_vjp(op, SPECS["prod"], case, expected, w)
    check_hvp(op, SPECS["prod"], case, w, numeric, rng)


# -- kink conventions (issue 2, section 3), hand-derived -------------------------------
def f64(values, requires_grad: bool = True) -> Tensor:
    return gc.tensor(np.array(values, dtype=F64), requires_grad=requires_grad)


def grad_of(y: Tensor, *xs: Tensor, gradient=None) -> list[np.ndarray]:
    y.backward(gradient=gradient)
    return [x.grad.numpy() for x in xs]


def test_relu_and_abs_at_zero():
    x = f64([-1.0, 0.0, 2.0])
    assert grad_of(gc.relu(x).sum(), x)[0].tolist() == [0.0, 0.0, 1.0]
    x = f64([-1.0, 0.0, 2.0])
    assert grad_of(gc.abs(x).sum(), x)[0].tolist() == [-1.0, 0.0, 1.0]
    x = f64([-1.0, 0.0, 2.0])
    assert grad_of(abs(x).sum(), x)[0].tolist() == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "fn, share_a, share_b",
    [
        (gc.maximum, [0.5, 1.0, 0.0], [0.5, 0.0, 1.0]),
        (gc.minimum, [0.5, 0.0, 1.0], [0.5, 1.0, 0.0]),
    ],
)
def test_maximum_minimum_ties_split_in_halves(fn, share_a, share_b):
    a, b = f64([1.0, 2.0, 3.0]), f64([1.0, 0.0, 5.0])
    ga, gb = grad_of(fn(a, b), a, b, gradient=f64([2.0, 2.0, 2.0], False))
    assert ga.tolist() == [2 * s for s in share_a]
    assert gb.tolist() == [2 * s for s in share_b]


def test_maximum_tie_with_a_broadcast_scalar():
    a, b = f64(1.0), f64([1.0, 0.0, 2.0])
    ga, gb = grad_of(gc.maximum(a, b).sum(), a, b)
    assert ga.shape == () and float(ga) == 0.5 + 1.0 + 0.0
    assert gb.tolist() == [0.5, 0.0, 1.0]


def test_max_min_reductions_split_among_tied_extremes():
    x = f64([1.0, 3.0, 3.0, 2.0])
    assert grad_of(gc.max(x), x)[0].tolist() == [0.0, 0.5, 0.5, 0.0]
    x = f64([2.0, -1.0, -1.0, -1.0])
    assert np.allclose(grad_of(gc.min(x), x)[0], [0.0, 1 / 3, 1 / 3, 1 / 3], rtol=1e-15)
    a = f64([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    (ga,) = grad_of(gc.max(a, axis=1), a, gradient=f64([2.0, 3.0], False))
    np.testing.assert_allclose(ga, [[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]], rtol=1e-15)
    a = f64([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    (ga,) = grad_of(
        a.max(axis=0, keepdims=True), a, gradient=f64([[1.0, 1.0, 1.0]], False)
    )
    np.testing.assert_allclose(ga, [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]], rtol=1e-15)


def test_norm_at_zero_has_zero_gradient():
    x = f64([0.0, 0.0, 0.0])
    assert grad_of(gc.norm(x), x)[0].tolist() == [0.0, 0.0, 0.0]
    a = f64([[0.0, 0.0], [3.0, 4.0]])
    (ga,) = grad_of(gc.norm(a, axis=1).sum(), a)
    np.testing.assert_allclose(ga, [[0.0, 0.0], [0.6, 0.8]], rtol=1e-15)


@pytest.mark.parametrize(
    "power",
    [
        lambda x: x**0,
        lambda x: x**0.0,
        lambda x: gc.pow(x, 0),
        lambda x: np.power(x, 0.0),
        lambda x: x ** gc.tensor(0.0, dtype=gc.float64),
    ],
    ids=["int", "float", "gc.pow", "np.power", "tensor"],
)
def test_x_to_the_zero_has_zero_gradient_everywhere(power):
    x = f64([-2.0, 0.0, 3.0])
    y = power(x)
    assert y.data.tolist() == [1.0, 1.0, 1.0]
    assert grad_of(y.sum(), x)[0].tolist() == [0.0, 0.0, 0.0]


def test_pow_at_zero_base_and_integer_powers_of_negatives():
    x = f64([-2.0, 0.0, 3.0])
    assert grad_of((x**1).sum(), x)[0].tolist() == [1.0, 1.0, 1.0]
    x = f64([-2.0, 0.0, 3.0])
    assert grad_of((x**3).sum(), x)[0].tolist() == [12.0, 0.0, 27.0]  # 3 x^2
    x = f64([-2.0, 0.0, 3.0])
    assert grad_of((x**2.0).sum(), x)[0].tolist() == [-4.0, 0.0, 6.0]
    # d/db a**b = a**b log a, taken as 0 at a == 0 (its limit for b > 0).
    a, b = f64([0.0, 2.0]), f64(3.0)
    ga, gb = grad_of((a**b).sum(), a, b)
    assert ga.tolist() == [0.0, 12.0]
    assert float(gb) == pytest.approx(8 * math.log(2.0), rel=1e-15)


@pytest.mark.parametrize(
    "branch, x, value, grad",
    [
        (
            lambda x: gc.where(x > 0, gc.sqrt(x), 0.0),
            [-1.0, 4.0],
            [0.0, 2.0],
            [0.0, 0.25],
        ),
        (
            lambda x: gc.where(x > 0, gc.log(x), 0.0),
            [0.0, 2.0],
            [0.0, math.log(2.0)],
            [0.0, 0.5],
        ),
        (lambda x: gc.where(x != 0, 1 / x, 0.0), [0.0, 2.0], [0.0, 0.5], [0.0, -0.25]),
        (lambda x: gc.where(x > 0, x**0.5, -x), [-1.0, 4.0], [1.0, 2.0], [-1.0, 0.25]),
        (
            lambda x: gc.where(x > 0, gc.sin(gc.sqrt(x)), 0.0),
            [-1.0, 4.0],
            [0.0, math.sin(2.0)],
            [0.0, math.cos(2.0) / 4],
        ),
        (
            lambda x: gc.where(x > 0, 2 * gc.exp(gc.log(x)), 0.0),
            [-1.0, 0.0, 3.0],
            [0.0, 0.0, 6.0],
            [0.0, 0.0, 2.0],
        ),
        (
            lambda x: np.where(x < 1, gc.arcsin(x), gc.arccosh(x)),
            [0.5, 2.0, 1.0],
            [math.asin(0.5), math.acosh(2.0), 0.0],
            [1 / math.sqrt(0.75), 1 / math.sqrt(3.0), None],
        ),
    ],
    ids=["sqrt", "log", "reciprocal", "both-branches", "nested", "chain", "np.where"],
)
def test_where_never_leaks_the_branch_not_taken(branch, x, value, grad):
    t = f64(x)
    with np.errstate(all="ignore"):
        y = branch(t)
        np.testing.assert_allclose(y.data, value, rtol=1e-15, atol=0)
        (g,) = grad_of(y.sum(), t)
    for got, want in zip(g.tolist(), grad):
        if want is None:  # arccosh'(1) is inf: selected, so it does show
            assert got == math.inf
        else:
            assert got == pytest.approx(want, rel=1e-15, abs=0)


def test_where_sends_the_gradient_only_to_the_selected_branch():
    a, b = f64([1.0, 2.0, 3.0]), f64([10.0, 20.0, 30.0])
    c = gc.tensor([True, False, True])
    ga, gb = grad_of(gc.where(c, a, b), a, b, gradient=f64([1.0, 2.0, 3.0], False))
    assert ga.tolist() == [1.0, 0.0, 3.0] and gb.tolist() == [0.0, 2.0, 0.0]


def test_clip_at_the_bounds_gives_the_gradient_to_x():
    x, lo, hi = f64([-1.0, 0.0, 1.0, 2.0, -3.0]), f64(-1.0), f64(1.0)
    gx, glo, ghi = grad_of(gc.clip(x, lo, hi).sum(), x, lo, hi)
    assert gx.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert float(glo) == 1.0 and float(ghi) == 1.0


def test_sign_floor_ceil_have_zero_gradient():
    for fn in (gc.sign, gc.floor, gc.ceil):
        x = f64([-1.5, 0.0, 0.5, 2.0])
        assert grad_of(fn(x).sum(), x)[0].tolist() == [0.0] * 4


# -- indexing syntax, scattered back (hand-derived) ------------------------------------
@pytest.mark.parametrize(
    "index, grad",
    [
        (0, [[1, 1, 1], [0, 0, 0]]),
        ((0, 1), [[0, 1, 0], [0, 0, 0]]),
        ((slice(None), 1), [[0, 1, 0], [0, 1, 0]]),
        ((1, slice(None, None, -1)), [[0, 0, 0], [1, 1, 1]]),
        ((slice(None), slice(0, 2)), [[1, 1, 0], [1, 1, 0]]),
        (([1, 1, 0], [2, 2, 0]), [[1, 0, 0], [0, 0, 2]]),
        ((slice(None), np.array([0, 0, 0, 2])), [[3, 0, 1], [3, 0, 1]]),
        (np.array([[True, False, True], [False, False, True]]), [[1, 0, 1], [0, 0, 1]]),
        ((-1, -1), [[0, 0, 0], [0, 0, 1]]),
        ((Ellipsis, None, 2), [[0, 0, 1], [0, 0, 1]]),
    ],
    ids=[
        "int",
        "pair",
        "column",
        "reversed-row",
        "slices",
        "arrays-repeated",
        "column-repeats",
        "mask",
        "negative",
        "ellipsis-newaxis",
    ],
)
def test_indexing_scatters_gradient_back(index, grad):
    a = gc.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = a[index]
    np.testing.assert_array_equal(y.data, np.arange(6.0).reshape(2, 3)[index])
    y.sum().backward()
    assert a.grad.shape == (2, 3)
    np.testing.assert_array_equal(a.grad.data, np.array(grad, dtype=F64))


def test_indexing_1d_and_tensor_indices():
    x = gc.tensor(np.arange(5.0), requires_grad=True)
    y = x[1:3].sum() + 10 * x[::-1][0] + 100 * x[gc.tensor([0, 0])].sum()
    y.backward()
    assert x.grad.tolist() == [200.0, 1.0, 1.0, 0.0, 10.0]


# -- numpy interop ---------------------------------------------------------------------
X = np.array([0.3, -1.2, 2.0])
A = np.array([[2.0, 0.5, -0.3], [0.1, 3.0, 0.4], [-0.2, 0.6, 2.5]])
INTEROP = {
    "np.sin": (lambda x: np.sin(x), [X]),
    "np.exp": (lambda x: np.exp(x), [X]),
    "np.sum": (lambda x: np.sum(x), [X]),
    "np.sum axis keepdims": (lambda a: np.sum(a, axis=0, keepdims=True), [A]),
    "np.mean": (lambda a: np.mean(a, axis=1), [A]),
    "np.prod": (lambda x: np.prod(x), [X]),
    "np.max": (lambda a: np.max(a, axis=1), [A]),
    "np.min": (lambda a: np.min(a), [A]),
    "np.var ddof": (lambda x: np.var(x, ddof=1), [X]),
    "np.std": (lambda a: np.std(a, axis=0), [A]),
    "np.dot": (lambda x, y: np.dot(x, y), [X, 2 * X + 1]),
    "@": (lambda a, x: a @ x, [A, X]),
    "@ reflected": (lambda x: A @ x, [X]),
    "np.matmul": (lambda a, b: np.matmul(a, b), [A, A.T]),
    "np.where": (lambda x: np.where(x > 0, x, 0.1 * x), [X]),
    "np.linalg.norm": (lambda x: np.linalg.norm(x), [X]),
    "np.linalg.norm axis": (lambda a: np.linalg.norm(a, axis=0), [A]),
    "np.linalg.det": (lambda a: np.linalg.det(a), [A]),
    "np.linalg.inv": (lambda a: np.linalg.inv(a), [A]),
    "np.linalg.solve": (lambda a, x: np.linalg.solve(a, x), [A, X]),
    "np.trace": (lambda a: np.trace(a), [A]),
    "np.outer": (lambda x, y: np.outer(x, y), [X, X[:2]]),
    "np.inner": (lambda x, y: np.inner(x, y), [X, 3 * X]),
    "np.transpose": (lambda a: np.transpose(a) * A, [A]),
    ".T": (lambda a: a.T @ A, [A]),
    "np.concatenate": (lambda x: np.concatenate([x, 2 * x, X]), [X]),
    "np.stack": (lambda x: np.stack([x, X * x], axis=1), [X]),
    "np.reshape": (lambda a: np.reshape(a, (9,)) * np.arange(9.0), [A]),
    "np.ravel": (lambda a: np.ravel(a) ** 2, [A]),
    "np.swapaxes": (lambda a: np.swapaxes(a, 0, 1) * A, [A]),
    "np.expand_dims": (lambda x: np.expand_dims(x, 0) * A, [X]),
    "np.squeeze": (lambda a: np.squeeze(a[:, :1]) * X, [A]),
    "np.maximum": (lambda x: np.maximum(x, 0.5), [X]),
    "np.minimum": (lambda x, y: np.minimum(x, y), [X, X[::-1]]),
    "np.clip": (lambda x: np.clip(x, -1.0, 1.0), [X]),
    "np.abs": (lambda x: np.abs(x), [X]),
    "np.power": (lambda x: np.power(x, 3), [X]),
    "np.square": (lambda x: np.square(x), [X]),
    "np.sqrt": (lambda x: np.sqrt(x * x + 1), [X]),
    "np.log": (lambda x: np.log(x * x + 1), [X]),
    "np.log1p expm1": (lambda x: np.log1p(np.expm1(x) + 1), [X]),
    "np.tanh arctan": (lambda x: np.tanh(x) + np.arctan(x), [X]),
    "np.arctan2": (lambda x, y: np.arctan2(x, y), [X, X[::-1]]),
    "np.sinh cosh arcsinh": (lambda x: np.sinh(x) * np.cosh(x) + np.arcsinh(x), [X]),
    "np.negative subtract divide": (
        lambda x, y: np.divide(np.subtract(-x, y), y * y + 1),
        [X, X[::-1]],
    ),
    "ndarray * Tensor": (lambda x: X * x + np.ones(3) - x / (X * X + 1), [X]),
    "plain numpy model": (lambda x: np.sum(np.sin(x) * x + np.exp(-x * x)), [X]),
}


def numeric_grad(f, arrays, i, w) -> np.ndarray:
    """Central differences of sum(w * f) on plain ndarrays: numpy alone."""
    x = arrays[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        h = STEP * max(1.0, abs(x[idx]))
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fp = f(*[xp if j == i else a for j, a in enumerate(arrays)])
        fm = f(*[xm if j == i else a for j, a in enumerate(arrays)])
        grad[idx] = np.sum(w * (np.asarray(fp) - np.asarray(fm))) / (xp[idx] - xm[idx])
    return grad


@pytest.mark.parametrize("label", list(INTEROP))
def test_numpy_functions_on_tensors(label):
    f, arrays = INTEROP[label]
    expected = np.asarray(f(*arrays))  # numpy itself, on ndarrays
    ts = [gc.tensor(a, requires_grad=True) for a in arrays]
    y = f(*ts)
    assert isinstance(y, Tensor) and y.grad_fn is not None
    np.testing.assert_allclose(y.data, expected, rtol=1e-13, atol=1e-14)
    w = np.random.default_rng(len(label)).standard_normal(expected.shape)
    y.backward(gradient=gc.tensor(w))
    for i, t in enumerate(ts):
        assert t.grad.shape == arrays[i].shape
        np.testing.assert_allclose(
            t.grad.data,
            numeric_grad(f, arrays, i, w),
            rtol=1e-6,
            atol=1e-8,
            err_msg=f"{label}: input {i}",
        )


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda t: np.nancumsum(t), "nancumsum"),
        (lambda t: np.fft.fft(t), "fft"),
        (lambda t: np.add.reduce(t), "add.reduce"),
        (lambda t: np.multiply.accumulate(t), "multiply.accumulate"),
        (lambda t: np.partition(t, 1), "partition"),
        (lambda t: np.ediff1d(t), "ediff1d"),
        (lambda t: np.copysign(t, t), "copysign"),
        (lambda t: np.sin(t, out=np.empty(3)), "sin"),
    ],
    ids=[
        "nancumsum",
        "fft",
        "add.reduce",
        "multiply.accumulate",
        "partition",
        "ediff1d",
        "copysign",
        "sin-out",
    ],
)
def test_numpy_functions_without_a_rule_raise_type_error(call, name):
    t = gc.tensor(X, requires_grad=True)
    with pytest.raises(TypeError, match=rf"\b{re.escape(name)}\b"):
        call(t)


# -- shape and assembly, hand-derived ---------------------------------------------------
def test_roll_sends_each_gradient_back_to_where_the_value_came_from():
    x = f64([1.0, 2.0, 3.0, 4.0])
    y = gc.roll(x, 1)
    assert y.data.tolist() == [4.0, 1.0, 2.0, 3.0]
    (g,) = grad_of(y, x, gradient=f64([10.0, 20.0, 30.0, 40.0], False))
    assert g.tolist() == [20.0, 30.0, 40.0, 10.0]


def test_repeat_and_tile_sum_the_gradients_of_the_copies():
    x = f64([1.0, 2.0])
    (g,) = grad_of(gc.repeat(x, (3, 1)), x, gradient=f64([1.0, 2.0, 4.0, 8.0], False))
    assert g.tolist() == [7.0, 8.0]
    x = f64([1.0, 2.0])
    (g,) = grad_of(gc.tile(x, (2, 2)), x, gradient=f64([[1, 2, 4, 8], [16, 32, 64, 128]], False))
    assert g.tolist() == [1 + 4 + 16 + 64, 2 + 8 + 32 + 128]


def test_flip_and_pad_gradients_by_hand():
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    (g,) = grad_of(gc.flip(x, axis=1), x, gradient=f64([[1.0, 2.0], [3.0, 4.0]], False))
    assert g.tolist() == [[2.0, 1.0], [4.0, 3.0]]
    x = f64([1.0, 2.0])
    y = gc.pad(x, (1, 2), constant_values=7)
    assert y.data.tolist() == [7.0, 1.0, 2.0, 7.0, 7.0]
    (g,) = grad_of(y, x, gradient=f64([1.0, 2.0, 3.0, 4.0, 5.0], False))
    assert g.tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="^pad: only mode='constant'"):  # named once
        gc.pad(x, 1, mode="edge")
    with pytest.raises(ValueError, match="^pad: only mode='constant'"):
        np.pad(x, 2, mode="reflect")
    with pytest.raises(ValueError, match="^pad: negative pad widths"):
        np.pad(x, -1)


def test_joins_through_numpy_split_the_gradient_back():
    x, y = f64([1.0, 2.0]), f64([[3.0, 4.0], [5.0, 6.0]])
    out = np.vstack([x, y])
    assert out.shape == (3, 2) and isinstance(out, Tensor)
    gx, gy = grad_of(out, x, y, gradient=f64([[1, 2], [3, 4], [5, 6]], False))
    assert gx.tolist() == [1.0, 2.0] and gy.tolist() == [[3.0, 4.0], [5.0, 6.0]]
    x, y = f64([1.0, 2.0]), f64([3.0, 4.0])
    gx, gy = grad_of(np.column_stack([x, y]), x, y,
                     gradient=f64([[1, 2], [3, 4]], False))
    assert gx.tolist() == [1.0, 3.0] and gy.tolist() == [2.0, 4.0]


# -- elementwise and scans, hand-derived --------------------------------------------------
def test_remainder_mod_fmod_slopes_follow_numpy_rounding():
    a, b = f64([5.5, -5.5, 5.5, -5.5]), f64([2.0, 2.0, -2.0, -2.0])
    y = gc.remainder(a, b)
    assert y.data.tolist() == [1.5, 0.5, -0.5, -1.5]  # the sign of b
    ga, gb = grad_of(y.sum(), a, b)
    assert ga.tolist() == [1.0] * 4 and gb.tolist() == [-2.0, 3.0, 3.0, -2.0]
    a, b = f64([5.5, -5.5, 5.5, -5.5]), f64([2.0, 2.0, -2.0, -2.0])
    y = gc.fmod(a, b)
    assert y.data.tolist() == [1.5, -1.5, 1.5, -1.5]  # the sign of a
    ga, gb = grad_of(y.sum(), a, b)
    assert ga.tolist() == [1.0] * 4 and gb.tolist() == [-2.0, 2.0, 2.0, -2.0]


def test_remainder_at_a_jump_takes_the_piece_of_its_value_and_says_so():
    a, b = f64([4.0]), f64([2.0])
    y = gc.mod(a, b)
    assert y.data.tolist() == [0.0]
    _, gb = grad_of(y.sum(), a, b)
    assert gb.tolist() == [-2.0]  # the piece a - 2 b, which is 0 there
    assert OPS["mod"].kink_at([np.array(4.0), np.array(2.0)], {}) == OPS["mod"].kink
    assert OPS["fmod"].kink_at([np.array(4.5), np.array(2.0)], {}) is None


def test_hypot_and_sinc_at_zero():
    a, b = f64([0.0, 3.0]), f64([0.0, 4.0])
    ga, gb = grad_of(gc.hypot(a, b).sum(), a, b)
    assert ga.tolist() == [0.0, 0.6] and gb.tolist() == [0.0, 0.8]
    x = f64([0.0])
    y = gc.sinc(x)
    assert y.data.tolist() == [1.0]
    y.backward(create_graph=True)
    assert x.grad.data.tolist() == [0.0]
    g = x.grad
    x.grad = None
    g.sum().backward()
    assert x.grad.data.tolist() == pytest.approx([-(math.pi**2) / 3], rel=1e-14)


def test_nan_to_num_stops_the_gradient_at_nan_and_inf():
    x = f64([1.0, 0.0, -1.0, 2.0])
    with np.errstate(all="ignore"):
        y = gc.nan_to_num(gc.log(x), posinf=7.0)
        assert np.isfinite(y.data).all()
        (g,) = grad_of(y.sum(), x)
    assert g.tolist() == [1.0, 0.0, 0.0, 0.5]


def test_cumsum_cumprod_diff_by_hand():
    x = f64([1.0, 2.0, 3.0])
    (g,) = grad_of(gc.cumsum(x, 0), x, gradient=f64([1.0, 10.0, 100.0], False))
    assert g.tolist() == [111.0, 110.0, 100.0]
    x = f64([2.0, 0.0, 3.0])  # a zero factor: no division anywhere
    y = gc.cumprod(x)
    assert y.data.tolist() == [2.0, 0.0, 0.0]
    (g,) = grad_of(y.sum(), x)
    assert g.tolist() == [1.0, 2.0 + 6.0, 0.0]
    x = f64([1.0, 4.0, 9.0])
    (g,) = grad_of(gc.diff(x), x, gradient=f64([1.0, 10.0], False))
    assert g.tolist() == [-1.0, -9.0, 10.0]


@pytest.mark.parametrize(
    "call, value, grad",
    [
        (lambda x: np.clip(x, a_min=-1.0, a_max=1.0), [-1.0, 0.5, 1.0], [0, 1, 0]),
        (lambda x: np.clip(x, min=-1.0, max=1.0), [-1.0, 0.5, 1.0], [0, 1, 0]),
        (lambda x: x.clamp(min=-1.0, max=1.0), [-1.0, 0.5, 1.0], [0, 1, 0]),
        (lambda x: gc.clip(x, -1.0, None), [-1.0, 0.5, 3.0], [0, 1, 1]),
        (lambda x: np.clip(x, None, 1.0), [-2.0, 0.5, 1.0], [1, 1, 0]),
    ],
    ids=["a_min-a_max", "min-max", "clamp", "no-max", "no-min"],
)
def test_clip_takes_numpy_and_pytorch_keyword_names(call, value, grad):
    x = f64([-2.0, 0.5, 3.0])
    y = call(x)
    assert y.data.tolist() == value
    assert grad_of(y.sum(), x)[0].tolist() == grad


def test_diag_tril_and_trace_with_offsets_by_hand():
    v = f64([1.0, 2.0])
    m = gc.diag(v, k=1)
    assert m.data.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]
    (g,) = grad_of(m, v, gradient=f64(np.arange(9.0).reshape(3, 3), False))
    assert g.tolist() == [1.0, 5.0]
    a = f64(np.arange(6.0).reshape(2, 3))
    (g,) = grad_of(gc.trace(a, offset=1), a)
    assert g.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    a = f64([[1.0, np.inf], [3.0, 4.0]])
    y = gc.tril(a)  # the dropped triangle is 0, not inf * 0
    assert y.data.tolist() == [[1.0, 0.0], [3.0, 4.0]]
    (g,) = grad_of(y.sum(), a)
    assert g.tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_cross_and_kron_by_hand():
    a, b = f64([1.0, 0.0, 0.0]), f64([0.0, 1.0, 0.0])
    c = gc.cross(a, b)
    assert c.data.tolist() == [0.0, 0.0, 1.0]
    ga, gb = grad_of(c, a, b, gradient=f64([1.0, 2.0, 3.0], False))
    # d/da <w, a x b> = b x w, d/db = w x a
    assert ga.tolist() == np.cross([0, 1, 0], [1, 2, 3]).tolist()
    assert gb.tolist() == np.cross([1, 2, 3], [1, 0, 0]).tolist()
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0, 5.0])
    ga, gb = grad_of(gc.kron(a, b).sum(), a, b)
    assert ga.tolist() == [12.0, 12.0] and gb.tolist() == [3.0, 3.0, 3.0]


def test_einsum_takes_numpy_call_forms_and_diagonals_by_hand():
    a = f64([[1.0, 2.0], [3.0, 4.0]])
    y = gc.einsum("ii", a)
    assert float(y.data) == 5.0
    (g,) = grad_of(y, a)
    assert g.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    a, b = f64([[1.0, 2.0], [3.0, 4.0]]), f64([1.0, 10.0])
    y = np.einsum("ij,j->i", a, b)
    assert y.data.tolist() == [21.0, 43.0]
    ga, gb = grad_of(y.sum(), a, b)
    assert ga.tolist() == [[1.0, 10.0], [1.0, 10.0]] and gb.tolist() == [4.0, 6.0]
    with pytest.raises(ValueError, match="einsum"):
        gc.einsum("ij,jk", a)


@pytest.mark.parametrize("optimize", [False, True, "greedy"])
@pytest.mark.parametrize("n", [2, 70])  # 70x70: past the size where the rule uses BLAS
def test_einsum_takes_optimize_as_numpy(optimize, n):
    # The value is numpy's own call, bit for bit; d sum(A @ B) / dA = 1 B^T and
    # / dB = A^T 1, by hand.
    rng = np.random.default_rng(n)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a, b = f64(A), f64(B)
    y = np.einsum("ij,jk->ik", a, b, optimize=optimize)
    np.testing.assert_array_equal(y.data, np.einsum("ij,jk->ik", A, B, optimize=optimize))
    ga, gb = grad_of(y.sum(), a, b)
    ones = np.ones((n, n))
    np.testing.assert_allclose(ga, ones @ B.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, A.T @ ones, rtol=1e-12, atol=1e-12)


# -- split: lists of Tensors through numpy ------------------------------------------------
SPLIT_CALLS = {
    "split sections": (lambda a: np.split(a, 2, axis=1), (3, 4)),
    "split indices": (lambda a: np.split(a, [1, 3, 9]), (4, 2)),
    "split negative axis": (lambda a: np.split(a, [2], axis=-1), (2, 3)),
    "array_split uneven": (lambda a: np.array_split(a, 3, axis=1), (2, 5)),
    "array_split 1-d": (lambda a: np.array_split(a, 4), (6,)),
    "hsplit 1-d": (lambda a: np.hsplit(a, [2]), (5,)),
    "hsplit 2-d": (lambda a: np.hsplit(a, 2), (3, 4)),
    "vsplit": (lambda a: np.vsplit(a, [1]), (3, 2)),
    "dsplit": (lambda a: np.dsplit(a, 2), (2, 1, 4)),
}


@pytest.mark.parametrize("label", list(SPLIT_CALLS))
def test_splits_return_lists_of_tensors_whose_gradients_scatter_back(label):
    f, shape = SPLIT_CALLS[label]
    rng = np.random.default_rng(len(label))
    x = rng.standard_normal(shape)
    want = f(x)  # numpy itself, on an ndarray
    t = gc.tensor(x, requires_grad=True)
    parts = f(t)
    assert isinstance(parts, list) and len(parts) == len(want)
    for p, w in zip(parts, want):
        assert isinstance(p, Tensor) and p.shape == w.shape
        np.testing.assert_array_equal(p.data, w)
    ws = [rng.standard_normal(w.shape) for w in want]
    sum((p * gc.tensor(w)).sum() for p, w in zip(parts, ws)).backward()

    def weighted(a):
        return sum(float(np.sum(p * w)) for p, w in zip(f(a), ws))

    np.testing.assert_allclose(t.grad.data, numeric_grad(weighted, [x], 0, 1.0),
                               rtol=1e-6, atol=1e-8)


def test_split_refuses_what_numpy_refuses():
    t = gc.tensor(np.arange(5.0), requires_grad=True)
    with pytest.raises(ValueError, match="equal division"):
        np.split(t, 2)
    with pytest.raises(ValueError, match="vsplit"):
        np.vsplit(t, 1)
