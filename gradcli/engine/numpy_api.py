"""numpy interop and the Tensor's methods and operators, all from the registry.

``np.sin(t)``, ``np.sum(t)``, ``a @ b`` on Tensors come here through
``__array_ufunc__``/``__array_function__`` and go to the op that declares that
numpy function; a numpy function without one raises instead of dropping the
gradient. ``bind()`` gives Tensor a method per op declared ``method=True``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from . import inplace
from .fastpath import _binary
from .op import NUMPY, OPS, Op, apply
from .ops.composite import _expand_dims, _ravel, _squeeze, _swapaxes
from .ops.elementwise import abs_, neg
from .ops.shape import broadcast_to, getitem, reshape, transpose
from .tensor import Tensor


# -- numpy interop and the Tensor's methods, all from the registry ---------------
def _shape_of(x):
    return x.shape if isinstance(x, Tensor) else np.shape(x)


def _constant_like(fill):
    def make(x, dtype=None, **kwargs):
        data = x._data if isinstance(x, Tensor) else np.asarray(x)
        return Tensor._make(np.full(data.shape, fill, dtype=dtype or data.dtype))

    return make


HELPERS: dict[Any, Callable] = {
    np.swapaxes: _swapaxes,
    np.expand_dims: _expand_dims,
    np.squeeze: _squeeze,
    np.ravel: _ravel,
    np.shape: _shape_of,
    np.ndim: lambda x: len(_shape_of(x)),
    np.size: lambda x, axis=None: (
        math.prod(_shape_of(x)) if axis is None else _shape_of(x)[axis]
    ),
    np.zeros_like: _constant_like(0),
    np.ones_like: _constant_like(1),
}


def _round(a, decimals=0, out=None):
    """np.round(t): numpy's rounding (integers too), a zero gradient."""
    from .torch_api import round_  # the one rounding op, beside the Tensor method

    if out is not None:
        raise NotImplementedError("np.round(out=...) is not supported on Tensors")
    return round_(a, decimals, numpy_ints=True)


HELPERS[np.round] = HELPERS[np.around] = _round
if hasattr(np, "astype"):  # numpy >= 2.1
    HELPERS[np.astype] = lambda x, dtype, /, *, copy=True, device=None: x.astype(
        dtype, copy=copy
    )


def _linalg_spellings() -> None:
    """numpy.linalg's array-API spellings of functions the table has: the same
    maths on numpy.linalg's axes (the last two) and its input rules."""
    from .ops.composite import cross, diagonal
    from .ops.linalg import matmul, outer, trace

    def la_outer(x1, x2, /):
        if len(_shape_of(x1)) != 1 or len(_shape_of(x2)) != 1:
            raise ValueError("linalg.outer: both inputs must be 1-dimensional, not "
                             f"{tuple(_shape_of(x1))} and {tuple(_shape_of(x2))}")
        return outer(x1, x2)

    def la_trace(x, /, *, offset=0, dtype=None):
        if dtype is not None:
            raise NotImplementedError("np.linalg.trace(dtype=...) is not supported on "
                                      "Tensors: convert the Tensor instead")
        return trace(x, offset=offset, axis1=-2, axis2=-1)

    la = np.linalg
    HELPERS[la.matmul] = lambda x1, x2, /: matmul(x1, x2)
    HELPERS[la.outer] = la_outer
    HELPERS[la.trace] = la_trace
    HELPERS[la.diagonal] = lambda x, /, *, offset=0: diagonal(x, offset=offset,
                                                              axis1=-2, axis2=-1)
    HELPERS[la.cross] = lambda x1, x2, /, *, axis=-1: cross(x1, x2, axis=axis)


_linalg_spellings()


def _values_only(func):
    """A numpy function whose result is booleans or indices: nothing to
    differentiate, so it runs on the values and returns numpy's own result."""
    def run(*args, **kwargs):
        return func(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()})
    return run


def _plain(a):
    if isinstance(a, Tensor):
        return a._data
    if isinstance(a, (list, tuple)):
        return type(a)(_plain(v) for v in a)
    return a


for _f in (np.all, np.any, np.isclose, np.allclose, np.array_equal, np.argmax, np.argmin,
           np.argsort, np.nonzero, np.argwhere, np.count_nonzero, np.isreal,
           np.iscomplex, np.signbit):
    HELPERS[_f] = _values_only(_f)


def _no_rule(name: str) -> TypeError:
    return TypeError(
        f"numpy function {name!r} has no gradient rule in gradcli, so it cannot "
        "take Tensors (a gradient is never silently dropped); use the ops that "
        "`gradcli ops` lists, or call .detach().numpy() for values only"
    )


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    if ufunc is np.positive and method == "__call__" and not kwargs:
        return inputs[0]
    o = NUMPY.get(ufunc)
    if method != "__call__" or kwargs or o is None:
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        raise _no_rule(name)
    return apply(o, *inputs)


# Reductions whose numpy signature puts dtype= and out= among the options
# (np.sum(a, axis, dtype, out, keepdims)): a call that uses them, by position or
# name, is read by numpy's own signature (``_numpy_options``).
_WITH_DTYPE = {np.sum, np.mean, np.prod, np.cumsum, np.cumprod, np.std, np.var, np.max,
               np.min, np.amax, np.amin, np.trace}


def _numpy_options(func, args, kwargs):
    """``func``'s arguments bound by numpy's signature: ``dtype=`` casts the input
    first (as numpy accumulates in it), ``out=`` is refused, the rest go to the
    op by name (np.sum(t, 0, None, None, True) is keepdims=True, not a dtype)."""
    import inspect

    bound = inspect.signature(func).bind(*args, **kwargs)
    named = dict(bound.arguments)
    first = next(iter(named))
    x = named.pop(first)
    dtype = named.pop("dtype", None)
    if named.pop("out", None) is not None:
        raise TypeError(f"{func.__name__}(out=...) is not supported on Tensors")
    if dtype is not None:
        x = x.astype(dtype) if isinstance(x, Tensor) else np.asarray(x).astype(dtype)
    return (x,), named


def _array_function(self, func, types, args, kwargs):
    o = NUMPY.get(func)
    if o is not None:
        if func in _WITH_DTYPE and (len(args) > 2 or "dtype" in kwargs or "out" in kwargs):
            args, kwargs = _numpy_options(func, args, kwargs)
        return o(*args, **kwargs)
    helper = HELPERS.get(func)
    if helper is not None:
        return helper(*args, **kwargs)
    raise _no_rule(func.__name__)


def _index(index):
    """Tensors inside an index become plain arrays or ints (no graph through them)."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, list) and any(isinstance(i, Tensor) for i in index):
        return [_index(i) for i in index]
    return index


def bind() -> None:
    T = Tensor
    for dunder, name in (("add", "add"), ("sub", "sub"), ("mul", "mul"),
                         ("truediv", "div"), ("pow", "pow"), ("matmul", "matmul")):
        fwd, ref = _binary(OPS[name])
        setattr(T, f"__{dunder}__", fwd)
        setattr(T, f"__r{dunder}__", ref)
    for dunder, name in (("eq", "equal"), ("ne", "not_equal"), ("lt", "less"),
                         ("le", "less_equal"), ("gt", "greater"),
                         ("ge", "greater_equal")):
        setattr(T, f"__{dunder}__", _binary(OPS[name])[0])
    # & | ^ ~: bitwise on integers, logical on bools, refused on floats (as
    # PyTorch and numpy); the ops are internal, reached through NUMPY.
    for dunder, ufunc in (("and", np.bitwise_and), ("or", np.bitwise_or),
                          ("xor", np.bitwise_xor)):
        fwd, ref = _binary(NUMPY[ufunc])
        setattr(T, f"__{dunder}__", fwd)
        setattr(T, f"__r{dunder}__", ref)
    T.__neg__ = lambda self: apply(neg, self)
    T.__pos__ = lambda self: self
    T.__abs__ = lambda self: apply(abs_, self)
    invert = NUMPY[np.invert]
    T.__invert__ = lambda self: apply(invert, self)
    T.__getitem__ = lambda self, index: apply(getitem, self, index=_index(index))
    inplace.bind()  # the in-place methods, __setitem__ and __iadd__ & co.
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function

    for name, o in OPS.items():
        if not o.method or hasattr(T, name):
            continue
        setattr(T, name, _method(o))
    T.T = property(lambda self: transpose(self))
    T.broadcast_to = lambda self, *shape: broadcast_to(
        self, shape=shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    )
    T.all = lambda self, axis=None: Tensor._make(np.all(self._data, axis=axis))
    T.any = lambda self, axis=None: Tensor._make(np.any(self._data, axis=axis))
    # PyTorch's names with PyTorch's meanings (t.transpose(0, 1), t.max(1), t.std())
    from . import torch_api

    torch_api.bind()


def _method(o: Op):
    def method(self, *args, **kwargs):
        return o(self, *args, **kwargs)

    method.__name__ = o.name
    method.__doc__ = f"{o.signature()}: derivative {o.rule}"
    return method
