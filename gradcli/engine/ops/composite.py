"""Composite ops: defined by other ops, so their gradients come for free."""

from __future__ import annotations

import numpy as np

from ..op import SAME, _axes, op
from .linalg import dot
from .shape import reshape, transpose


def _composite(name: str, fn, rule: str, shape, numpy=(), matrix=None):
    o = op(grad_fn="", rule=rule, sym=SAME, numpy=numpy, name=name, shape=shape,
           matrix=matrix)(fn)
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
