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
    red = _axes(axis, len(shape))
    gshape = np.shape(g)
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


@op(lambda g, out, x, *, axis=None, keepdims=False: _expand(g, x.shape, axis, keepdims),
    grad_fn="SumBackward0", saves="shape", support=MOVES, rule="ones broadcast over the summed axes",
    sym=SAME, numpy=(np.sum,))
def sum_(x, *, axis=None, keepdims=False):
    return np.sum(x, axis=axis, keepdims=keepdims)


@op(lambda g, out, x, *, axis=None, keepdims=False:
    _expand(g / _count(x.shape, axis), x.shape, axis, keepdims),
    grad_fn="MeanBackward0", saves="shape", support=MOVES, rule="1/n broadcast over the axes",
    sym=SAME, numpy=(np.mean,))
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


def _norm_vjp(g, out, x, *, ord=None, axis=None, keepdims=False):
    o = _expand(out, x.shape, axis, keepdims)
    safe = np.where(o == 0, 1.0, o)
    return _expand(g, x.shape, axis, keepdims) * np.where(o == 0, 0.0, x / safe)


@op(_norm_vjp, grad_fn="NormBackward1", saves="both", support=_reduced, rule="x / norm(x)",
    at_kink=lambda x, **p: norm_.forward(x, **p) == 0,
    kink="norm'(0) = 0",
    sym=("array", lambda sp, x, *, ord=None, axis=None, keepdims=False:
         sp.map(sp.sqrt, np.sum(x * x, axis=axis, keepdims=keepdims))),
    numpy=(np.linalg.norm,), zero_regions=True)
def norm_(x, *, ord=None, axis=None, keepdims=False):
    """The Euclidean norm over ``axis`` (all axes: the Frobenius norm)."""
    if ord not in (None, 2, "fro"):
        raise ValueError(f"only the 2-norm is supported, not ord={ord!r}")
    if ord == 2 and np.ndim(x) > 1 and axis is None:
        raise ValueError("the matrix 2-norm (largest singular value) is not supported")
    return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))


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
    grad_fn="VarBackward0", support=_reduced, rule="2 (x - mean) / (n - ddof)", sym=SAME,
    numpy=(np.var,))
def var(x, *, axis=None, ddof=0, keepdims=False):
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _std_vjp(g, out, x, *, axis=None, ddof=0, keepdims=False):
    o = _expand(out, x.shape, axis, keepdims)
    safe = np.where(o == 0, 1.0, o)
    d = _centered(x, axis) / (_dof(x.shape, axis, ddof) * safe)
    return _expand(g, x.shape, axis, keepdims) * np.where(o == 0, 0.0, d)


@op(_std_vjp, grad_fn="StdBackward0", saves="both", support=_reduced, rule="(x - mean) / ((n - ddof) std)",
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
    grad_fn="SoftmaxBackward0", saves="out", support=_along, rule="s * (g - sum(g * s))",
    sym=("array", lambda sp, x, *, axis=-1:
         sp.map(sp.exp, x) / np.sum(sp.map(sp.exp, x), axis=axis, keepdims=True)))
def softmax(x, *, axis=-1):
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


@op(lambda g, out, x, *, axis=-1:
    g - np.exp(out) * np.sum(g, axis=_from_end(axis, out.ndim), keepdims=True),
    grad_fn="LogSoftmaxBackward0", saves="out", support=_along, rule="g - softmax(x) sum(g)",
    sym=("array", lambda sp, x, *, axis=-1:
         x - sp.map(sp.log, np.sum(sp.map(sp.exp, x), axis=axis, keepdims=True))))
def log_softmax(x, *, axis=-1):
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
