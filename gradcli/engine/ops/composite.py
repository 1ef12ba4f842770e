"""Composite ops: defined by other ops, so their gradients come for free."""

from __future__ import annotations

import numpy as np

import math
import operator

from .. import graph
from ..op import NO_BIGGER, NUMPY, SAME, _axes, op, required
from ..tensor import Tensor
from .elementwise import mul, sub, where
from .linalg import dot
from .reductions import prod
from .shape import broadcast_to, concatenate, getitem, index_add, reshape, stack, transpose


def _composite(name: str, fn, rule: str, shape, numpy=(), matrix=None, nin=None,
               method=True, domain=None):
    o = op(grad_fn="", rule=rule, sym=SAME, numpy=numpy, name=name, shape=shape,
           matrix=matrix, nin=nin, method=method,
           domain=domain, fast=fn)(fn)  # fast: its parts check their own axes
    o.extra["composite"] = fn
    o.composite = True
    o.fast_call = False
    o.differentiable = True
    return o


def _inner(a, b):
    # np.inner sums over the last axis of both: dot's over b's second to last,
    # once b's last two axes swap (a scalar: a plain product, no swap).
    nb = np.ndim(b)
    if nb >= 2 and np.ndim(a):
        b = transpose(b, axes=tuple(range(nb - 2)) + (nb - 1, nb - 2))
    return dot(a, b)


inner = _composite("inner", _inner, "dot(a, b.T)", numpy=(np.inner,),
                   matrix=lambda sp, a, b: ("s", a.e.T * b.e)
                   if (a.kind, b.kind) == ("v", "v") else None,
                   shape=lambda shapes, params: tuple(shapes[0][:-1]) + tuple(shapes[1][:-1])
                   if shapes[0] and shapes[1] else tuple(shapes[0] or shapes[1]))


def _swapaxes(x, axis1, axis2):
    axes = list(range(np.ndim(x)))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes=tuple(axes))


def _expand_dims(x, axis):
    shape = list(np.shape(x))
    for a in sorted(_axes(axis, len(shape) + (len(axis) if isinstance(axis, tuple) else 1))):
        shape.insert(a, 1)
    return reshape(x, shape=tuple(shape))


def _squeeze(x, axis=None):
    return reshape(x, shape=np.squeeze(np.empty(np.shape(x), dtype=bool), axis).shape)


def _ravel(x):
    return reshape(x, shape=(-1,))


# -- shape and assembly, from transpose, reshape, getitem and concatenate ------------
def _shape_op(name: str, rule: str, shape=NO_BIGGER, **kw):
    """Declare a composite shape op from its function (kw: numpy, nin, method)."""

    def deco(fn):
        return _composite(name, fn, rule, shape, **kw)

    return deco


@_shape_op("flip", "the gradient flipped back", numpy=(np.flip,))
def flip(x, *, axis=None):
    nd = np.ndim(x)
    rev = set(_axes(axis, nd))
    out = getitem(x, index=tuple(slice(None, None, -1) if i in rev else slice(None)
                                 for i in range(nd)))
    # PyTorch's flip copies (numpy's would be a view): an in-place change of
    # either tensor must not reach the other
    return out.clone() if isinstance(out, Tensor) else out


def _at_least(x, n: int, name: str):
    if np.ndim(x) < n:
        raise ValueError(f"{name}: the input must have at least {n} dimensions")
    return x


@_shape_op("fliplr", "the gradient flipped back", numpy=(np.fliplr,))
def fliplr(x):
    return flip(_at_least(x, 2, "fliplr"), axis=1)


@_shape_op("flipud", "the gradient flipped back", numpy=(np.flipud,))
def flipud(x):
    return flip(_at_least(x, 1, "flipud"), axis=0)


def _rot90_shape(shapes, params):
    shape = list(shapes[0])
    a, b = _rot90_axes(len(shape), params.get("axes", (0, 1)))
    if params.get("k", 1) % 2:
        shape[a], shape[b] = shape[b], shape[a]
    return tuple(shape)


def _rot90_axes(nd: int, axes) -> tuple[int, int]:
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("rot90: axes must name two axes")
    if nd < 2:
        raise ValueError("rot90: the input must have at least 2 dimensions")
    a, b = _axes(axes[0], nd)[0], _axes(axes[1], nd)[0]
    if a == b:
        raise ValueError("rot90: the two axes must differ")
    return a, b


@_shape_op("rot90", "the gradient rotated back", shape=_rot90_shape, numpy=(np.rot90,))
def rot90(x, *, k=1, axes=(0, 1)):
    # numpy's definition: a quarter turn is a flip along the second axis and a
    # swap of the two; a half turn flips both.
    a, b = _rot90_axes(np.ndim(x), axes)
    k = operator.index(k) % 4
    if k == 0:
        return reshape(x, shape=np.shape(x))  # a new node
    if k == 2:
        return flip(x, axis=(a, b))
    order = list(range(np.ndim(x)))
    order[a], order[b] = order[b], order[a]
    if k == 1:
        return transpose(flip(x, axis=b), axes=tuple(order))
    return flip(transpose(x, axes=tuple(order)), axis=b)


@_shape_op("roll", "the gradient rolled back", numpy=(np.roll,))
def roll(x, *, shift, axis=None):
    if axis is None:
        return reshape(roll(reshape(x, shape=(-1,)), shift=shift, axis=0),
                       shape=np.shape(x))
    x0 = x
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    nd = np.ndim(x)
    for s, a in zip(shifts.ravel().tolist(), axes.ravel().tolist()):
        a = _axes(a, nd)[0]
        n = np.shape(x)[a]
        if n and s % n:
            index = (slice(None),) * a + ((np.arange(n) - s) % n,)
            x = getitem(x, index=index)
    return x if x is not x0 else reshape(x, shape=np.shape(x))  # a new node


def _squeeze_op(x, *, axis=None):
    return _squeeze(x, axis)


squeeze = _composite("squeeze", _squeeze_op, "the gradient reshaped back", NO_BIGGER,
                     numpy=(np.squeeze,))


def _expand_dims_op(x, *, axis):
    return _expand_dims(x, axis)


expand_dims = _composite("expand_dims", _expand_dims_op, "the gradient reshaped back",
                         NO_BIGGER, numpy=(np.expand_dims,))


def _swapaxes_op(x, *, axis1, axis2):
    nd = np.ndim(x)
    return _swapaxes(x, _axes(axis1, nd)[0], _axes(axis2, nd)[0])


swapaxes = _composite("swapaxes", _swapaxes_op, "the gradient transposed back",
                      NO_BIGGER, numpy=(np.swapaxes,))


@_shape_op("moveaxis", "the gradient transposed back", numpy=(np.moveaxis,))
def moveaxis(x, *, source, destination):
    axes = list(range(np.ndim(x)))
    src = _axes(source, len(axes))
    dst = _axes(destination, len(axes))
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination need as many axes")
    rest = [a for a in axes if a not in src]
    for d, s in sorted(zip(dst, src)):
        rest.insert(d, s)
    return transpose(x, axes=tuple(rest))


def _repeat_shape(shapes, params):
    shape, axis = list(shapes[0]), params.get("axis")
    if axis is None:
        shape, axis = [math.prod(shape)], 0
    a = _axes(axis, len(shape))[0]
    shape[a] = int(np.sum(np.broadcast_to(required(params, "repeats"), (shape[a],))))
    return tuple(shape)


@_shape_op("repeat", "the gradient summed over the copies", shape=_repeat_shape,
           numpy=(np.repeat,), method=False)  # torch's Tensor.repeat is numpy's tile
def repeat(x, *, repeats, axis=None):
    if axis is None:
        x, axis = reshape(x, shape=(-1,)), 0
    a = _axes(axis, np.ndim(x))[0]
    index = np.repeat(np.arange(np.shape(x)[a]), repeats)
    return getitem(x, index=(slice(None),) * a + (index,))


def _tile_reps(shape, reps) -> tuple[tuple[int, ...], tuple[int, ...]]:
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else (reps,)
    d = max(len(shape), len(reps))
    return (1,) * (d - len(shape)) + tuple(shape), (1,) * (d - len(reps)) + reps


def _tile_shape(shapes, params):
    shape, reps = _tile_reps(shapes[0], required(params, "reps"))
    return tuple(n * r for n, r in zip(shape, reps))


@_shape_op("tile", "the gradient summed over the tiles", shape=_tile_shape,
           numpy=(np.tile,))
def tile(x, *, reps):
    shape, reps = _tile_reps(np.shape(x), reps)
    if any(r < 0 for r in reps):
        raise ValueError("tile: negative repetitions")
    x = reshape(x, shape=shape)
    if not shape:
        return x
    index = np.ix_(*[np.tile(np.arange(n), r) for n, r in zip(shape, reps)])
    return getitem(x, index=index)


@_shape_op("atleast_1d", "the gradient reshaped back", numpy=(np.atleast_1d,))
def atleast_1d(x):
    return reshape(x, shape=np.shape(x) or (1,))  # a new node even when no change


@_shape_op("atleast_2d", "the gradient reshaped back", numpy=(np.atleast_2d,))
def atleast_2d(x):
    shape = np.shape(x)
    return reshape(x, shape=_prep_2d(shape))


def _3d(shape) -> tuple[int, ...]:
    return {0: (1, 1, 1), 1: (1,) + tuple(shape) + (1,), 2: tuple(shape) + (1,)}.get(
        len(shape), tuple(shape))


@_shape_op("atleast_3d", "the gradient reshaped back", numpy=(np.atleast_3d,))
def atleast_3d(x):
    shape = np.shape(x)
    return reshape(x, shape=_3d(shape))


# The joins take one sequence of inputs of any shapes (nin=-1), shaped as numpy
# does (the prep), then concatenated along one axis.
def _prep_2d(shape):
    return (1,) * (2 - len(shape)) + tuple(shape) if len(shape) < 2 else tuple(shape)


def _prep_col(shape):
    return tuple(shape) + (1,) if len(shape) == 1 else _prep_2d(shape)


def _prep_1d(shape):
    return tuple(shape) or (1,)


def _join_shape(prep, axis_of):
    def shape(shapes, params):
        shapes = [prep(s) for s in shapes[0]]
        if not shapes:
            raise ValueError("need at least one array to concatenate")
        a = axis_of(shapes[0])
        out = list(shapes[0])
        out[a] = sum(s[a] for s in shapes)
        return tuple(out)

    return shape


def _joiner(name: str, prep, axis_of, numpy, doc: str):
    def join(xs):
        if not len(xs):
            raise ValueError(f"{name}: need at least one array")
        shaped = [x if np.shape(x) == prep(np.shape(x)) else
                  reshape(x, shape=prep(np.shape(x))) for x in xs]
        return concatenate(shaped, axis=axis_of(prep(np.shape(xs[0]))))

    join.__name__ = name
    join.__doc__ = doc
    return _composite(name, join, "the gradient split back",
                      _join_shape(prep, axis_of), numpy=numpy, nin=-1, method=False)


vstack = _joiner("vstack", _prep_2d, lambda s: 0, (np.vstack,),
                 "Rows: inputs as at least 2-d, joined along axis 0.")
row_stack = _joiner("row_stack", _prep_2d, lambda s: 0,
                    (np.row_stack,) if hasattr(np, "row_stack") else (),
                    "numpy's old name of vstack.")
hstack = _joiner("hstack", _prep_1d, lambda s: 0 if len(s) == 1 else 1, (np.hstack,),
                 "Columns: 1-d inputs joined end to end, others along axis 1.")
column_stack = _joiner("column_stack", _prep_col, lambda s: 1, (np.column_stack,),
                       "1-d inputs as columns, joined along axis 1.")
dstack = _joiner("dstack", _3d, lambda s: 2, (np.dstack,),
                 "Depth: inputs as at least 3-d, joined along axis 2.")


def _append_shape(shapes, params):
    a, v = shapes
    if params.get("axis") is None:
        return (math.prod(a) + math.prod(v),)
    ax = _axes(params["axis"], len(a))[0]
    out = list(a)
    out[ax] += v[ax]
    return tuple(out)


@_shape_op("append", "the gradient split back", shape=_append_shape,
           numpy=(np.append,), method=False)
def append(arr, values, *, axis=None):
    if axis is None:
        return concatenate([reshape(arr, shape=(-1,)), reshape(values, shape=(-1,))])
    return concatenate([arr, values], axis=axis)


# -- scans ------------------------------------------------------------------------
def _along(axis: int, part) -> tuple:
    return (slice(None),) * axis + (part,)


# From prod, so zeros among the factors need no division: O(n^2) products along
# the axis, exact at every point (a division by x would fail at zeros).
@_shape_op("cumprod", "prod's gradient, partial product by partial product",
           numpy=(np.cumprod,), domain=((0.5, 1.5),))  # prod's range: no underflow
def cumprod(x, *, axis=None):
    if axis is None:
        x, axis = reshape(x, shape=(-1,)), 0
    ax = _axes(axis, np.ndim(x))[0]
    n = np.shape(x)[ax]
    if n == 0:
        return reshape(x, shape=np.shape(x))
    parts = [getitem(x, index=_along(ax, 0))]  # the first is x0 itself
    parts += [prod(getitem(x, index=_along(ax, slice(0, k + 1))), axis=ax)
              for k in range(1, n)]
    return stack(parts, axis=ax)


def _diff_shape(shapes, params):
    shape = list(shapes[0])
    ax = _axes(params.get("axis", -1), len(shape))[0]
    for key in ("prepend", "append"):
        extra = params.get(key)
        if extra is not None and params.get("n", 1):
            shape[ax] += np.shape(extra)[ax] if np.ndim(extra) else 1
    shape[ax] = max(shape[ax] - params.get("n", 1), 0)
    return tuple(shape)


@_shape_op("diff", "the gradient's differences, negated", shape=_diff_shape,
           numpy=(np.diff,))
def diff(x, *, n=1, axis=-1, prepend=None, append=None):
    if n < 0:
        raise ValueError(f"diff: order must be non-negative, not {n}")
    if np.ndim(x) == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    ax = _axes(axis, np.ndim(x))[0]
    if n and (prepend is not None or append is not None):  # (n = 0: numpy ignores them)
        # numpy's: a value without the axis is broadcast to one slice along it
        one = tuple(1 if i == ax else k for i, k in enumerate(np.shape(x)))
        ends = [(e if np.ndim(e) else broadcast_to(e, shape=one), at)
                for e, at in ((prepend, 0), (append, 1)) if e is not None]
        x = concatenate([e for e, at in ends if at == 0] + [x]
                        + [e for e, at in ends if at == 1], axis=ax)
    x = reshape(x, shape=np.shape(x))  # a node of its own, also for n == 0
    for _ in range(n):
        x = sub(getitem(x, index=_along(ax, slice(1, None))),
                getitem(x, index=_along(ax, slice(None, -1))))
    return x


# -- linear algebra from indexing, products and sums ------------------------------
def _diag_positions(n: int, m: int, k: int):
    """Rows and columns of the k-th diagonal of an n x m matrix."""
    size = max(0, min(n + min(k, 0), m - max(k, 0)))
    rows = np.arange(size) - min(k, 0)
    return rows, rows + k


def _diagonal_shape(shapes, params):
    shape = list(shapes[0])
    nd = len(shape)
    a1, a2 = _axes(params.get("axis1", 0), nd)[0], _axes(params.get("axis2", 1), nd)[0]
    rows, _ = _diag_positions(shape[a1], shape[a2], params.get("offset", 0))
    return tuple(n for i, n in enumerate(shape) if i not in (a1, a2)) + (len(rows),)


@_shape_op("diagonal", "the gradient on the diagonal", shape=_diagonal_shape,
           numpy=(np.diagonal,))
def diagonal(a, *, offset=0, axis1=0, axis2=1):
    nd = np.ndim(a)
    if nd < 2:
        raise ValueError("diagonal: the input must have at least 2 dimensions")
    a1, a2 = _axes(axis1, nd)[0], _axes(axis2, nd)[0]
    if a1 == a2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    x = moveaxis(a, source=(a1, a2), destination=(-2, -1))
    rows, cols = _diag_positions(np.shape(x)[-2], np.shape(x)[-1], offset)
    out = getitem(x, index=(Ellipsis, rows, cols))
    if isinstance(a, Tensor) and isinstance(out, Tensor) and type(a._data) is np.ndarray:
        # PyTorch's diagonal is a view: ``A.diagonal().add_(1)`` changes A, and
        # a change of A reaches it. The same values in A's memory (the node's
        # rule reads none), noted as a view for the in-place checks.
        view = np.diagonal(a._data, offset, a1, a2)
        view.flags.writeable = a._data.flags.writeable
        out._data = view
        if out._grad_fn is not None:
            graph.note_view(out._grad_fn, view)
    return out


def _diag_shape(shapes, params):
    shape, k = shapes[0], params.get("k", 0)
    if len(shape) == 1:
        return (shape[0] + abs(k),) * 2
    return (len(_diag_positions(shape[0], shape[1], k)[0]),)


@_shape_op("diag", "the gradient on (or from) the diagonal", shape=_diag_shape,
           numpy=(np.diag,), method=False)
def diag(v, *, k=0):
    nd = np.ndim(v)
    if nd == 2:
        return diagonal(v, offset=k)
    if nd != 1:
        raise ValueError("diag: the input must be 1-d or 2-d")
    n = np.shape(v)[0] + abs(k)
    rows, cols = _diag_positions(n, n, k)
    return index_add(v, index=(rows, cols), shape=(n, n))


def _triangle(name: str, lower: bool):
    def fn(x, *, k=0):
        shape = np.shape(x)
        if len(shape) == 0:
            raise ValueError(f"{name}: the input must have at least 1 dimension")
        if len(shape) == 1:  # numpy: a vector is the row of a square matrix
            x, shape = broadcast_to(x, shape=shape * 2), shape * 2
        keep = np.tri(shape[-2], shape[-1], k - (0 if lower else 1), dtype=bool)
        return where(keep if lower else ~keep, x, 0.0)

    fn.__name__ = name
    return _composite(name, fn, "the gradient on the kept triangle",
                      lambda shapes, params: tuple(shapes[0]) * 2 if len(shapes[0]) == 1
                      else tuple(shapes[0]), numpy=(getattr(np, name),))


tril = _triangle("tril", True)
triu = _triangle("triu", False)


def _kron_shape(shapes, params):
    a, b = shapes
    d = max(len(a), len(b))
    a, b = (1,) * (d - len(a)) + tuple(a), (1,) * (d - len(b)) + tuple(b)
    return tuple(m * n for m, n in zip(a, b))


@_shape_op("kron", "the products' gradients summed back", shape=_kron_shape,
           numpy=(np.kron,), method=False)
def kron(a, b):
    sa, sb = np.shape(a), np.shape(b)
    d = max(len(sa), len(sb))
    sa, sb = (1,) * (d - len(sa)) + sa, (1,) * (d - len(sb)) + sb
    # a's axes interleaved with b's: (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...)
    wa = tuple(x for n in sa for x in (n, 1))
    wb = tuple(x for n in sb for x in (1, n))
    return reshape(mul(reshape(a, shape=wa), reshape(b, shape=wb)),
                   shape=tuple(m * n for m, n in zip(sa, sb)))


def _tensordot_axes(axes, na: int, nb: int):
    if isinstance(axes, (int, np.integer)):
        if axes < 0 or axes > min(na, nb):
            raise ValueError(f"tensordot: axes={axes} is out of range")
        return tuple(range(na - axes, na)), tuple(range(axes))
    ia, ib = axes
    ia = (ia,) if isinstance(ia, (int, np.integer)) else tuple(ia)
    ib = (ib,) if isinstance(ib, (int, np.integer)) else tuple(ib)
    if len(ia) != len(ib):
        raise ValueError("tensordot: the two axis lists differ in length")
    return tuple(_axes(i, na)[0] for i in ia), tuple(_axes(i, nb)[0] for i in ib)


def _tensordot_shape(shapes, params):
    sa, sb = shapes
    ia, ib = _tensordot_axes(params.get("axes", 2), len(sa), len(sb))
    return (tuple(n for i, n in enumerate(sa) if i not in ia)
            + tuple(n for i, n in enumerate(sb) if i not in ib))


@_shape_op("tensordot", "dot's gradients through the transposes",
           shape=_tensordot_shape, numpy=(np.tensordot,), method=False)
def tensordot(a, b, *, axes=2):
    sa, sb = np.shape(a), np.shape(b)
    ia, ib = _tensordot_axes(axes, len(sa), len(sb))
    if [sa[i] for i in ia] != [sb[i] for i in ib]:
        raise ValueError(f"tensordot: shapes {sa} and {sb} do not align on {axes}")
    free_a = [i for i in range(len(sa)) if i not in ia]
    free_b = [i for i in range(len(sb)) if i not in ib]
    k = math.prod(sa[i] for i in ia)
    left = reshape(transpose(a, axes=tuple(free_a) + ia), shape=(-1, k) if k else
                   (math.prod(sa[i] for i in free_a), 0))
    right = reshape(transpose(b, axes=ib + tuple(free_b)), shape=(k, -1) if k else
                    (0, math.prod(sb[i] for i in free_b)))
    return reshape(dot(left, right), shape=tuple(sa[i] for i in free_a)
                   + tuple(sb[i] for i in free_b))


def _cross_shape(shapes, params):
    sa, sb = list(shapes[0]), list(shapes[1])
    axis = params.get("axis")
    axa = params.get("axisa", -1) if axis is None else axis
    axb = params.get("axisb", -1) if axis is None else axis
    axc = params.get("axisc", -1) if axis is None else axis
    sa.pop(_axes(axa, len(sa))[0])  # ValueError, not a modulo by 0, for 0-d
    sb.pop(_axes(axb, len(sb))[0])
    out = list(np.broadcast_shapes(tuple(sa), tuple(sb)))
    out.insert(_axes(axc, len(out) + 1)[0], 3)
    return tuple(out)


@_shape_op("cross", "the gradients of its products", shape=_cross_shape,
           numpy=(np.cross,), method=False)
def cross(a, b, *, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(a, source=axisa, destination=-1)
    b = moveaxis(b, source=axisb, destination=-1)
    if np.shape(a)[-1] != 3 or np.shape(b)[-1] != 3:
        raise ValueError("cross: gradcli takes 3-component vectors only")
    a0, a1, a2 = (getitem(a, index=(Ellipsis, i)) for i in range(3))
    b0, b1, b2 = (getitem(b, index=(Ellipsis, i)) for i in range(3))
    c = stack([sub(mul(a1, b2), mul(a2, b1)), sub(mul(a2, b0), mul(a0, b2)),
               sub(mul(a0, b1), mul(a1, b0))], axis=-1)
    return moveaxis(c, source=-1, destination=axisc)


# -- split: lists of parts -----------------------------------------------------------
# An op returns one array, and an expression one value, so the splits are no ops:
# they are functions returning a list of basic slices (getitem, a view each, whose
# gradient is scattered back), reached on Tensors through numpy (np.split(t, 3)).
def _split_bounds(n: int, indices_or_sections, even: bool, name: str) -> list[int]:
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError(f"{name}: number of sections must be larger than 0")
        if even and n % k:
            raise ValueError(f"{name}: array split does not result in an equal division")
        size, extra = divmod(n, k)
        return [0] + np.cumsum([size + 1] * extra + [size] * (k - extra)).tolist()
    return [0] + [int(i) for i in indices_or_sections] + [n]


def _split(x, indices_or_sections, axis, *, even: bool, name: str) -> list:
    nd = np.ndim(x)
    if not nd:
        raise ValueError(f"{name}: a 0-d array cannot be split")
    ax = _axes(axis, nd)[0]
    bounds = _split_bounds(np.shape(x)[ax], indices_or_sections, even, name)
    return [getitem(x, index=(slice(None),) * ax + (slice(a, b),))
            for a, b in zip(bounds[:-1], bounds[1:])]


def split(ary, indices_or_sections, axis=0) -> list:
    """numpy's split: equal sections or cut at indices; a list of Tensors."""
    return _split(ary, indices_or_sections, axis, even=True, name="split")


def array_split(ary, indices_or_sections, axis=0) -> list:
    """numpy's array_split: as split, sections may differ by one."""
    return _split(ary, indices_or_sections, axis, even=False, name="array_split")


def hsplit(ary, indices_or_sections) -> list:
    if np.ndim(ary) == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return split(ary, indices_or_sections, axis=1 if np.ndim(ary) > 1 else 0)


def vsplit(ary, indices_or_sections) -> list:
    if np.ndim(ary) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, axis=0)


def dsplit(ary, indices_or_sections) -> list:
    if np.ndim(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, axis=2)


SPLITS = {np.split: split, np.array_split: array_split, np.hsplit: hsplit,
          np.vsplit: vsplit, np.dsplit: dsplit}
NUMPY.update(SPLITS)  # numpy interop calls them like ops


# -- sort: numpy's np.sort, a gather by the stable order ------------------------------
def _sort(a, *, axis=-1, kind=None):
    if axis is None:
        a, axis = reshape(a, shape=(-1,)), 0
    nd = np.ndim(a)
    if not nd:
        raise ValueError("sort: a 0-d array has no axis to sort (numpy: axis=None)")
    ax = _axes(axis, nd)[0]
    raw = getattr(a, "_data", a)
    order = np.argsort(raw, axis=ax, kind="stable")  # ties: first come, first out
    index = list(np.indices(np.shape(a), sparse=True))
    index[ax] = order
    return getitem(a, index=tuple(index))


def _sort_sym(sp, a, *, axis=-1, kind=None):
    """A sorting network of Min and Max along the axis (odd-even transposition)."""
    if axis is None:
        a, axis = a.reshape(-1), 0
    x = np.moveaxis(np.array(a, dtype=object), axis, -1).copy()
    n = x.shape[-1]
    for step in range(n):
        for i in range(step % 2, n - 1, 2):
            lo = sp.map(sp.Min, x[..., i], x[..., i + 1])
            hi = sp.map(sp.Max, x[..., i], x[..., i + 1])
            x[..., i], x[..., i + 1] = lo, hi
    return np.moveaxis(x, -1, axis)


def _sort_ties(a, *, axis=-1, kind=None):
    if axis is None:
        a, axis = np.reshape(a, -1), 0
    s = np.sort(a, axis=axis)
    return np.any(np.diff(s, axis=axis) == 0)


def _sort_shape(shapes, params):
    return (math.prod(shapes[0]),) if params.get("axis", -1) is None else tuple(shapes[0])


sort = op(grad_fn="", name="sort", rule="the gradient sent back through the permutation",
          kink="ties keep their order (stable): the gradient of the k-th sorted value "
               "goes to the first of the tied inputs still unsorted",
          at_kink=_sort_ties, sym=("array", _sort_sym), numpy=(np.sort,),
          shape=_sort_shape, method=False, fast=_sort)(_sort)
sort.extra["composite"] = _sort
sort.composite = True
sort.fast_call = False
sort.differentiable = True
