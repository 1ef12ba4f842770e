"""Composite ops: defined by other ops, so their gradients come for free."""

from __future__ import annotations

import numpy as np

import math

from ..op import NO_BIGGER, SAME, _axes, op
from .linalg import dot
from .shape import concatenate, getitem, reshape, transpose


def _composite(name: str, fn, rule: str, shape, numpy=(), matrix=None, nin=None,
               method=True):
    o = op(grad_fn="", rule=rule, sym=SAME, numpy=numpy, name=name, shape=shape,
           matrix=matrix, nin=nin, method=method,
           fast=fn)(fn)  # fast: its parts check their own axes
    o.extra["composite"] = fn
    o.composite = True
    o.fast_call = False
    o.differentiable = True
    return o


def _inner(a, b):
    # np.inner with a scalar is a plain product: no transpose then.
    return dot(a, transpose(b) if np.ndim(b) == 2 and np.ndim(a) else b)


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


def _every(axis, ndim: int) -> tuple[int, ...]:
    return _axes(axis, ndim)


@_shape_op("flip", "the gradient flipped back", numpy=(np.flip,))
def flip(x, *, axis=None):
    nd = np.ndim(x)
    rev = set(_every(axis, nd))
    return getitem(x, index=tuple(slice(None, None, -1) if i in rev else slice(None)
                                  for i in range(nd)))


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
    shape[a] = int(np.sum(np.broadcast_to(params["repeats"], (shape[a],))))
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
    shape, reps = _tile_reps(shapes[0], params["reps"])
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
