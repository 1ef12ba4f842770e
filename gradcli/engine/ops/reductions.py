"""Reductions over ``axis`` (None: all axes) and the normalisations along one.

A reduction's rule broadcasts ``g`` back over the reduced axes (``_expand``),
keeping whatever batch axes ``g`` has in front; softmax's axis is counted from
the end. None makes more elements than its input has.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..op import MOVES, NO_BIGGER, SAME, _axes, _from_end
from ..op import op as _op
from ..tensor import Tensor

op = functools.partial(_op, shape=NO_BIGGER)


def _expand(g, shape, axis, keepdims: bool):
    """Broadcast a reduction's gradient back over the reduced axes; whatever
    axes ``g`` has in front of the output's are batch axes, and kept."""
    if type(g) is Tensor and not g.requires_grad:
        # A constant (a create_graph walk's seed): the reshape and broadcast_to
        # ops would record nothing; on its array, without their dispatch.
        return Tensor._make(_expand(g._data, shape, axis, keepdims))
    red = _axes(axis, len(shape))
    gshape = g.shape if type(g) is np.ndarray or type(g) is Tensor else np.shape(g)
    batch = gshape[: len(gshape) - len(shape) + (0 if keepdims else len(red))]
    if not keepdims:
        g = np.reshape(g, batch + tuple(1 if i in red else n for i, n in enumerate(shape)))
    return np.broadcast_to(g, batch + tuple(shape))


def _reduced(nz, out, x, *, axis=None, keepdims=False, **params):
    """support: an input entry meets the cotangent of the one output it reduces to."""
    return (_expand(nz, np.shape(x), axis, keepdims),)


def _along(nz, out, x, *, axis=-1):
    """support: every entry along ``axis`` meets every cotangent along it."""
    ax = _from_end(axis, np.ndim(out))
    return (np.broadcast_to(np.any(nz, axis=ax, keepdims=True), nz.shape),)


def _count(shape, axis) -> int:
    return math.prod(shape[i] for i in _axes(axis, len(shape)))


def _total_form(sp, x, *, axis=None, keepdims=False):
    """Matrix form of the sum of all elements: ones on both sides."""
    if axis is not None or keepdims:
        return None
    if x.kind == "s":
        return ("s", x.e)
    if x.kind == "v":
        return ("s", sp.OneMatrix(1, x.e.shape[0]) * x.e)
    rows, cols = x.e.shape
    return ("s", sp.OneMatrix(1, rows) * x.e * sp.OneMatrix(cols, 1))


def _mean_form(sp, x, **params):
    total = _total_form(sp, x, **params)
    return None if total is None else ("s", total[1] / math.prod(x.shape))


@op(lambda g, out, x, *, axis=None, keepdims=False: _expand(g, x.shape, axis, keepdims),
    grad_fn="SumBackward0", saves="shape", support=MOVES,
    rule="ones broadcast over the summed axes",
    sym=SAME, numpy=(np.sum,),
    matrix=_total_form)
def sum_(x, *, axis=None, keepdims=False):
    return np.sum(x, axis=axis, keepdims=keepdims)


@op(lambda g, out, x, *, axis=None, keepdims=False:
    _expand(g / _count(x.shape, axis), x.shape, axis, keepdims),
    grad_fn="MeanBackward0", saves="shape", support=MOVES,
    rule="1/n broadcast over the axes",
    sym=SAME, numpy=(np.mean,),
    matrix=_mean_form)
def mean(x, *, axis=None, keepdims=False):
    return np.mean(x, axis=axis, keepdims=keepdims)


def _prod_vjp(g, out, x, *, axis=None, keepdims=False):
    ge = _expand(g, x.shape, axis, keepdims)
    if not np.any(getattr(x, "_data", x) == 0):
        return ge * _expand(out, x.shape, axis, keepdims) / x
    # Zeros: the product of all *other* factors, from exclusive cumulative
    # products on both sides (exact, no division by zero).
    red = _axes(axis, x.ndim)
    keep = [i for i in range(x.ndim) if i not in red]
    xt = np.transpose(x, keep + list(red)).reshape(
        [x.shape[i] for i in keep] + [-1]
    )
    if isinstance(x, Tensor):
        # create_graph: no cumprod rule; take each product with that factor set
        # to 1 (n x n values, only here), from differentiable ops.
        n = xt.shape[-1]
        others = np.prod(np.where(np.eye(n, dtype=bool), 1.0, xt[..., None, :]), axis=-1)
    else:
        ones = np.ones(xt.shape[:-1] + (1,), dtype=xt.dtype)
        left = np.cumprod(np.concatenate([ones, xt[..., :-1]], axis=-1), axis=-1)
        right = np.cumprod(np.concatenate([ones, xt[..., :0:-1]], axis=-1), axis=-1)
        others = left * right[..., ::-1]
    others = others.reshape([x.shape[i] for i in keep] + [x.shape[i] for i in red])
    return ge * np.transpose(others, np.argsort(keep + list(red)))


@op(_prod_vjp, grad_fn="ProdBackward0", saves="both", support=_reduced,
    rule="product of the other factors", sym=SAME, domain=((0.5, 1.5),),
    numpy=(np.prod,))
def prod(x, *, axis=None, keepdims=False):
    return np.prod(x, axis=axis, keepdims=keepdims)


def _tied(x, *, axis=None, keepdims=False, largest=True):
    best = (np.max if largest else np.min)(x, axis=axis, keepdims=True)
    return np.sum(x == best, axis=axis) > 1


def _extreme_vjp(g, out, x, *, axis=None, keepdims=False):
    # Ties share the gradient evenly, so the rule is symmetric in the maxima.
    hit = x == _expand(out, x.shape, axis, keepdims)
    n = np.sum(hit, axis=axis, keepdims=True)
    return _expand(g, x.shape, axis, keepdims) * (hit / n)


@op(_extreme_vjp, grad_fn="MaxBackward1", saves="both", support=_reduced,
    at_kink=_tied,
    rule="1 at the maximum, 0 elsewhere", kink="tied maxima split the gradient evenly",
    sym=("array", lambda sp, x, *, axis=None, keepdims=False:
         sp.reduce(sp.Max, x, axis, keepdims)),
    numpy=(np.max, np.amax), zero_regions=True)
def max_(x, *, axis=None, keepdims=False):
    return np.max(x, axis=axis, keepdims=keepdims)


@op(_extreme_vjp, grad_fn="MinBackward1", saves="both", support=_reduced,
    at_kink=lambda x, **p: _tied(x, largest=False, **p),
    rule="1 at the minimum, 0 elsewhere", kink="tied minima split the gradient evenly",
    sym=("array", lambda sp, x, *, axis=None, keepdims=False:
         sp.reduce(sp.Min, x, axis, keepdims)),
    numpy=(np.min, np.amin), zero_regions=True)
def min_(x, *, axis=None, keepdims=False):
    return np.min(x, axis=axis, keepdims=keepdims)


# -- norm: numpy's vector and matrix orders -----------------------------------------
_MATRIX_ORDS = (None, "fro", "f", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def _norm_plan(ndim: int, ord, axis) -> tuple[str, tuple[int, ...]]:
    """How numpy.linalg.norm reads ``ord`` and ``axis``: ("all" | "vector" |
    "matrix", the reduced axes), or the ValueError numpy raises."""
    if axis is None:
        if ord is None:
            return "all", tuple(range(ndim))
        if ndim not in (1, 2):
            raise ValueError("Improper number of dimensions to norm.")
        axes = tuple(range(ndim))
    else:
        axes = _axes(axis, ndim)
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"Invalid norm order '{ord}' for vectors")
        if ord is not None and not isinstance(ord, (int, float, np.number)):
            raise ValueError(f"Invalid norm order {ord!r} for vectors")
        return "vector", axes
    if len(axes) != 2:
        raise ValueError("Improper number of dimensions to norm.")
    if axes[0] == axes[1]:
        raise ValueError("Duplicate axes given.")
    if not any(_same_ord(ord, o) for o in _MATRIX_ORDS):
        raise ValueError(f"Invalid norm order {ord!r} for matrices.")
    return "matrix", axes


def _same_ord(ord, o) -> bool:
    if isinstance(o, str) or o is None:
        return ord is o or (isinstance(ord, str) and ord == o)
    return not isinstance(ord, str) and ord is not None and ord == o


def _euclid(kind: str, ord) -> bool:
    """The 2-norm of the entries: Frobenius, or a vector's 2-norm."""
    return kind == "all" or _same_ord(ord, None) or _same_ord(ord, "fro") or (
        _same_ord(ord, "f") or (kind == "vector" and _same_ord(ord, 2)))


def _svd_form(ord) -> bool:
    return isinstance(ord, str) and ord == "nuc" or (
        not isinstance(ord, str) and ord is not None and abs(ord) == 2)


def _rank_tol(s, m: int, n: int):
    """Singular values below this count as zero, those this close as tied
    (numpy's matrix_rank tolerance)."""
    return np.max(s, axis=-1, keepdims=True) * max(m, n) * np.finfo(s.dtype).eps


def _svd_weights(s, ord, m: int, n: int):
    """d norm / d s_k: which singular values the norm follows (ties share evenly)."""
    tol = _rank_tol(s, m, n)
    if ord == "nuc":
        return (s > tol).astype(s.dtype)  # a zero singular value contributes 0
    if ord == 2:
        pick = s >= s[..., :1] - tol
    else:
        pick = (s <= s[..., -1:] + tol) & (s[..., -1:] > tol)  # sigma_min at 0: 0
    return pick / np.maximum(np.sum(pick, axis=-1, keepdims=True), 1)


def _moved(x, axes):
    return np.moveaxis(x, axes, (-2, -1))


def _svd(y, compute_uv: bool):
    """SVD of a stack, its non-finite matrices replaced by 0 (their norms and
    gradients are set to nan by the callers); also whether each was finite."""
    ok = np.all(np.isfinite(y), axis=(-2, -1))
    clean = y if ok.all() else np.where(ok[..., None, None], y, 0.0)
    return np.linalg.svd(clean, full_matrices=False, compute_uv=compute_uv), ok


def _matrix_abs_sums(ord, axes):
    """For ord 1 / -1 (columns) and inf / -inf (rows): the axis summed over and
    the one the extreme is taken over."""
    row, col = axes
    return (row, col) if abs(ord) == 1 else (col, row)


def _norm_vjp(g, out, x, *, ord=None, axis=None, keepdims=False):
    kind, axes = _norm_plan(x.ndim, ord, axis)
    ge = _expand(g, x.shape, axes, keepdims)
    if kind == "matrix" and _svd_form(ord) and isinstance(x, Tensor):
        # create_graph: U diag(w) V^T through the differentiable svd (its rule
        # raises where U and V have no derivative: tied singular values)
        from .linalg import svd

        y = np.moveaxis(x, axes, (-2, -1))
        u, s, vt = svd(y, full_matrices=False)
        w = _svd_weights(s._data, ord, *y.shape[-2:])
        return ge * np.moveaxis((u * w[..., None, :]) @ vt, (-2, -1), axes)
    o = _expand(out, x.shape, axes, keepdims)
    raw = getattr(x, "_data", x)
    raw_o = getattr(o, "_data", o)
    if _euclid(kind, ord):
        safe = np.where(o == 0, 1.0, o)
        return ge * np.where(o == 0, 0.0, x / safe)
    if kind == "vector":
        if ord == 0:
            return ge * np.zeros(x.shape)
        if ord == 1:
            return ge * np.sign(x)
        if abs(ord) == math.inf:  # the largest (smallest) |x|; ties share evenly
            hit = np.abs(raw) == raw_o
            share = hit / np.sum(hit, axis=axes, keepdims=True)
            return ge * (np.sign(x) * share)
        # sign(x) (|x| / norm)^(p-1); 0 where x or the norm is 0 (the kinks)
        zero = (raw == 0) | (raw_o == 0)
        ratio = np.where(zero, 1.0, np.abs(x) / np.where(zero, 1.0, o))
        return ge * np.where(zero, 0.0, np.sign(x) * ratio ** (ord - 1))
    if _svd_form(ord):
        y = _moved(raw, axes)
        (u, s, vt), ok = _svd(y, compute_uv=True)
        w = _svd_weights(s, ord, *y.shape[-2:])
        d = np.matmul(u * w[..., None, :], vt)
        d = np.where(ok[..., None, None], d, np.nan)
        return ge * np.moveaxis(d, (-2, -1), axes)
    summed, over = _matrix_abs_sums(ord, axes)
    sums = np.sum(np.abs(raw), axis=summed, keepdims=True)
    hit = sums == raw_o  # (broadcast along the summed axis)
    share = hit / np.sum(hit, axis=over, keepdims=True)
    return ge * (np.sign(x) * share)


def _norm_kink(x, *, ord=None, axis=None, keepdims=False):
    kind, axes = _norm_plan(np.ndim(x), ord, axis)
    out = norm_.forward(x, ord=ord, axis=axis, keepdims=True)
    if _euclid(kind, ord):
        return out == 0
    if kind == "vector":
        if abs(ord) == math.inf:  # tied extremes, or the extreme |x| is 0
            tied = np.sum(np.abs(x) == out, axis=axes) > 1
            return tied | np.any(out == 0, axis=axes)
        if ord < 1:  # 0, p < 1: every zero entry; 1: also (sign)
            return np.any(x == 0, axis=axes)
        return np.any(x == 0, axis=axes) if ord == 1 else out == 0
    if _svd_form(ord):
        y = _moved(x, axes)
        s, ok = _svd(y, compute_uv=False)
        tol = _rank_tol(s, *y.shape[-2:])
        if ord == "nuc":
            return np.any(s <= tol, axis=-1)
        end = s[..., :1] if ord == 2 else s[..., -1:]
        tied = np.sum(np.abs(s - end) <= tol, axis=-1) > 1
        return tied | (end[..., 0] <= tol[..., 0])
    summed, over = _matrix_abs_sums(ord, axes)
    hit = np.sum(np.abs(x), axis=summed, keepdims=True) == out
    tied = np.sum(hit, axis=over) > 1
    return tied | np.any(hit & (x == 0), axis=axes)


def _norm_sym(sp, x, *, ord=None, axis=None, keepdims=False):
    kind, axes = _norm_plan(x.ndim, ord, axis)
    absx = sp.map(sp.Abs, x)
    if _euclid(kind, ord):
        return sp.map(sp.sqrt, np.sum(x * x, axis=axes, keepdims=keepdims))
    if kind == "vector":
        if ord == 0:
            nz = sp.map(lambda e: sp.Piecewise((0, sp.Eq(e, 0)), (1, True)), x)
            return np.sum(nz, axis=axes, keepdims=keepdims)
        if ord == 1:
            return np.sum(absx, axis=axes, keepdims=keepdims)
        if abs(ord) == math.inf:
            return sp.reduce(sp.Max if ord > 0 else sp.Min, absx, axes, keepdims)
        p = float(ord)
        p = sp.Integer(int(p)) if p.is_integer() else sp.Rational(str(p))
        sums = np.sum(sp.map(lambda e: e**p, absx), axis=axes, keepdims=keepdims)
        return sp.map(lambda t: t ** (1 / p), sums)
    if _svd_form(ord):
        raise NotImplementedError(
            f"norm: ord={ord!r} over a matrix (singular values) has no closed "
            "sympy form")
    summed, over = _matrix_abs_sums(ord, axes)
    sums = np.sum(absx, axis=summed, keepdims=True)
    best = sp.reduce(sp.Max if ord > 0 else sp.Min, sums, over, True)
    return best if keepdims else np.squeeze(best, axis=axes)


@op(_norm_vjp, grad_fn="NormBackward1", saves="both", support=_reduced,
    rule="x / norm(x); ord 1, inf: sign(x) on the extreme entries (rows, columns); "
         "p: sign(x) (|x|/norm)^(p-1); matrix 2, -2, 'nuc': U diag(w) V^T",
    at_kink=_norm_kink,
    kink="norm'(0) = 0; ties (largest |x|, row or column sums, singular values) share "
         "the gradient evenly; a zero entry (ord 1, p < 1) or zero singular value "
         "('nuc', -2) gives 0",
    sym=("array", _norm_sym), reals=("ord",),
    numpy=(np.linalg.norm,), zero_regions=True)
def norm_(x, *, ord=None, axis=None, keepdims=False):
    """numpy.linalg.norm: vector orders over one axis, matrix orders over two
    (ord 2, -2, 'nuc' from singular values), Frobenius over all axes by default."""
    kind, axes = _norm_plan(np.ndim(x), ord, axis)
    if axis is None and (ord is None or (ord in ("fro", "f") and np.ndim(x) == 2)
                         or (ord == 2 and np.ndim(x) == 1)):
        # numpy's own call (the square root of a dot product, where a given axis
        # sums instead): bit for bit
        return np.linalg.norm(x, ord=ord, keepdims=keepdims)
    if kind == "all":
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if kind == "matrix" and _svd_form(ord):
        y = _moved(x, axes)
        s, ok = _svd(y, compute_uv=False)
        pick = np.sum if ord == "nuc" else np.max if ord == 2 else np.min
        r = pick(s, axis=-1)
        r = np.where(ok, r, np.nan)
        if keepdims:
            r = np.expand_dims(r, axes)
        return r
    return np.linalg.norm(x, ord=ord, axis=axes, keepdims=keepdims)


@op(lambda g, out, x, *, axis=None, keepdims=False:
    _expand(g, x.shape, axis, keepdims) * np.exp(x - _expand(out, x.shape, axis, keepdims)),
    grad_fn="LogsumexpBackward0", saves="both", support=_reduced, rule="softmax(x)",
    sym=("array", lambda sp, x, *, axis=None, keepdims=False:
         sp.map(sp.log, np.sum(sp.map(sp.exp, x), axis=axis, keepdims=keepdims))))
def logsumexp(x, *, axis=None, keepdims=False):
    # Shift by the maximum so exp never overflows.
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)


def _dof(shape, axis, ddof) -> int:
    """n - ddof, never below 0 (numpy's forward divides by the same: ddof >= n is inf)."""
    return max(_count(shape, axis) - ddof, 0)


def _centered(x, axis):
    return x - np.mean(x, axis=axis, keepdims=True)


@op(lambda g, out, x, *, axis=None, ddof=0, keepdims=False:
    _expand(g, x.shape, axis, keepdims) * (2 * _centered(x, axis) / _dof(x.shape, axis, ddof)),
    grad_fn="VarBackward0", support=_reduced, rule="2 (x - mean) / (n - ddof)",
    sym=SAME,
    numpy=(np.var,))
def var(x, *, axis=None, ddof=0, keepdims=False):
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _std_vjp(g, out, x, *, axis=None, ddof=0, keepdims=False):
    o = _expand(out, x.shape, axis, keepdims)
    safe = np.where(o == 0, 1.0, o)
    d = _centered(x, axis) / (_dof(x.shape, axis, ddof) * safe)
    return _expand(g, x.shape, axis, keepdims) * np.where(o == 0, 0.0, d)


@op(_std_vjp, grad_fn="StdBackward0", saves="both", support=_reduced,
    rule="(x - mean) / ((n - ddof) std)",
    kink="std'(constant) = 0",
    at_kink=lambda x, *, axis=None, ddof=0, keepdims=False:
    np.max(x, axis=axis) == np.min(x, axis=axis),
    sym=("array", lambda sp, x, *, axis=None, ddof=0, keepdims=False:
         sp.map(sp.sqrt, np.var(x, axis=axis, ddof=ddof, keepdims=keepdims))),
    numpy=(np.std,), zero_regions=True)
def std(x, *, axis=None, ddof=0, keepdims=False):
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


# -- nn-style normalisations (numerically stable) --------------------------------

@op(lambda g, out, x, *, axis=-1:
    out * (g - np.sum(g * out, axis=_from_end(axis, out.ndim), keepdims=True)),
    grad_fn="SoftmaxBackward0", saves="out", support=_along,
    rule="s * (g - sum(g * s))",
    sym=("array", lambda sp, x, *, axis=-1:
         sp.map(sp.exp, x) / np.sum(sp.map(sp.exp, x), axis=axis, keepdims=True)))
def softmax(x, *, axis=-1):
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


@op(lambda g, out, x, *, axis=-1:
    g - np.exp(out) * np.sum(g, axis=_from_end(axis, out.ndim), keepdims=True),
    grad_fn="LogSoftmaxBackward0", saves="out", support=_along,
    rule="g - softmax(x) sum(g)",
    sym=("array", lambda sp, x, *, axis=-1:
         x - sp.map(sp.log, np.sum(sp.map(sp.exp, x), axis=axis, keepdims=True))))
def log_softmax(x, *, axis=-1):
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


# -- scans ----------------------------------------------------------------------
def _cumsum_vjp(g, out, x, *, axis=None, lead=0):
    # Each input entry reaches every later partial sum: a reversed cumsum of g.
    if axis is None:  # x was flattened first
        back = np.flip(np.cumsum(np.flip(g, -1), axis=-1), -1)
        return np.reshape(back, np.shape(g)[:lead] + tuple(x.shape))
    ax = _from_end(axis, len(x.shape))
    return np.flip(np.cumsum(np.flip(g, ax), axis=ax), ax)


@op(_cumsum_vjp, grad_fn="CumsumBackward0", saves="shape", support=MOVES,
    takes_lead=True, rule="the reversed cumulative sum of the gradient", sym=SAME,
    numpy=(np.cumsum,))
def cumsum(x, *, axis=None):
    return np.cumsum(x, axis=axis)
