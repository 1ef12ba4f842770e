"""Tensor methods and ``gc.*`` functions with PyTorch names, PyTorch meanings.

A name means what its home library means by it: ``t.transpose(0, 1)``,
``t.std()``, ``t.max(1)`` are PyTorch's; ``np.std(t)`` and ``std(x)`` in an
expression stay numpy's (they reach the ops directly). Everything here is built
from registered ops, so gradients come for free; what cannot match PyTorch
raises instead of returning a different number.
"""

from __future__ import annotations

import math
import weakref
from collections import namedtuple

import numpy as np

from . import graph
from . import fastpath
from .fastpath import _binary
from .op import OPS, apply, check_flag, op
from .ops.composite import _expand_dims, _squeeze, _swapaxes
from .ops.elementwise import _zeros, clip, floor, maximum, minimum
from .ops.linalg import matmul
from .ops.reductions import max_, min_, norm_, std, sum_, var
from .ops.shape import broadcast_to, concatenate, getitem, reshape, transpose
from .tensor import Tensor, get_default_dtype

# PyTorch's named tuples: ``values, indices = t.max(1)`` or ``t.max(1).indices``.
max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])
sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])


# -- a dtype cast that gradients pass through (PyTorch's ToCopyBackward0) ---------
def _cast_back(g, out, x, *, dtype):
    return _cast_to(g, x.dtype)


@op(_cast_back, grad_fn="ToCopyBackward0", saves="shape", support=graph.MOVES,
    rule="dx, cast back", method=False, expr=False, name="_to_dtype")
def _to_dtype(x, *, dtype):
    return np.asarray(x).astype(dtype)


OPS.pop("_to_dtype")  # internal: not an expression name, not a gc.* function


def _cast_to(x, dtype):
    dtype = np.dtype(dtype)
    if isinstance(x, Tensor):
        if x.dtype == dtype:
            return x
        if x.requires_grad and dtype.kind not in "fc":
            return Tensor._make(x._data.astype(dtype))  # ints: no gradient, as PyTorch
        if x.requires_grad and dtype.kind == "c" and graph.MODE.enabled:
            from .op import complex_refused

            raise complex_refused("to", dtype)
        return apply(_to_dtype, x, dtype=dtype)
    return np.asarray(x).astype(dtype, copy=False)


# -- rounding: values on a grid, a zero gradient (PyTorch's RoundBackward0) --------
@op(_zeros, grad_fn="RoundBackward0", saves="none", support=graph.MOVES, rule="0",
    kink="zero gradient everywhere (steps halfway between grid points)",
    zero_regions=True, method=False, expr=False, name="_round")
def _round_op(x, *, decimals=0):
    # numpy's and PyTorch's rule alike: half to even, x * 10**d rounded, / 10**d
    return np.round(x, decimals)


OPS.pop("_round")  # internal: reached through t.round(), np.round(t)


def round_(x, decimals=0, *, numpy_ints: bool = False):
    """``x`` rounded to ``decimals`` places, half to even, with a zero gradient.

    Integer tensors pass through unchanged at ``decimals=0``; at other decimals
    numpy rounds them (``numpy_ints``) and PyTorch refuses, so gradcli does too.
    """
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"round(): decimals must be an integer, not {decimals!r}")
    data = x._data
    if data.dtype.kind == "b":
        raise TypeError("round(): not defined for bool tensors")
    if data.dtype.kind in "iu":
        if decimals and not numpy_ints:
            raise NotImplementedError(
                "round(decimals=...) of an integer tensor is not supported (PyTorch "
                "refuses it); use np.round(t, decimals) for numpy's"
            )
        return Tensor._make(np.round(data, int(decimals)))
    return apply(_round_op, x, decimals=int(decimals))


def _round_method(self, decimals=0, out=None):
    # PyTorch: t.round(decimals=0); numpy's a.round(2) passes decimals by
    # position, with the same meaning, so both spellings are accepted.
    if out is not None:
        raise NotImplementedError("round(out=...) is not supported in gradcli")
    return round_(self, decimals)


# -- numpy's astype: numpy's name, numpy's meaning (PyTorch has no astype) ----------
def _astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
    dtype = np.dtype(dtype)
    if not np.can_cast(self.dtype, dtype, casting=casting):
        raise TypeError(
            f"astype: cannot cast from {self.dtype.name} to {dtype.name} according "
            f"to the rule {casting!r}"
        )
    if dtype.kind == "c" and self.requires_grad:
        raise NotImplementedError(
            "astype: gradients through a complex dtype are not supported in gradcli"
        )
    if dtype == self.dtype:
        return self.clone() if copy else self  # numpy: a copy unless copy=False
    # Floats keep the graph (ToCopyBackward0); an integer or bool result carries
    # no gradient (numpy truncates toward zero, as PyTorch's .to(int) does).
    return _cast_to(self, dtype)


def _dtype_of(spec):
    if isinstance(spec, Tensor):
        return spec.dtype
    if isinstance(spec, str):
        if spec in ("cpu",) or spec.startswith("cpu"):
            return None
        raise NotImplementedError(f"to({spec!r}): gradcli runs on the CPU only")
    return np.dtype(spec)


def _to(self, *args, dtype=None, copy=False, **kwargs):
    kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keywords {sorted(kwargs)}")
    for a in args:
        d = _dtype_of(a)
        if d is not None:
            dtype = d
    out = self if dtype is None else _cast_to(self, dtype)
    if copy and out is self:
        out = self.clone()
    return out


# -- shapes -----------------------------------------------------------------------
class _Size(int):
    """``t.size``: numpy's element count as a number, PyTorch's ``size()`` when called."""

    _shape: tuple = ()

    def __new__(cls, shape):
        n = math.prod(shape)  # (np.prod: microseconds per .size, in every transform)
        s = super().__new__(cls, n)
        s._shape = tuple(shape)
        return s

    def __call__(self, dim=None):
        if dim is None:
            return self._shape
        return self._shape[_dim(dim, len(self._shape))]


def _dim(d, n: int) -> int:
    d = int(d)
    m = max(n, 1)
    if not -m <= d < m:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-m}, {m - 1}], "
            f"but got {d})"
        )
    return d % m


def _shape_args(shape):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        return tuple(shape[0])
    return tuple(shape)


def _view(self, *shape):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
        raise NotImplementedError(
            "view(dtype) reinterprets the bytes in PyTorch; gradcli does not support "
            "it (use .to(dtype) to convert the values)"
        )
    return reshape(self, shape=_shape_args(shape))


def _t(self):
    if self.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
    return transpose(self) if self.ndim == 2 else reshape(self, shape=self.shape)


def _transpose(self, *dims):
    if len(dims) != 2:
        raise TypeError(
            "transpose(dim0, dim1) swaps two dimensions, as in PyTorch; for numpy's "
            "transpose(axes) use permute(*dims) or np.transpose(t, axes)"
        )
    n = self.ndim
    if n == 0:
        _dim(dims[0], 0), _dim(dims[1], 0)
        return reshape(self, shape=())
    return _swapaxes(self, _dim(dims[0], n), _dim(dims[1], n))


def _permute(self, *dims):
    dims = tuple(_dim(d, self.ndim) for d in _shape_args(dims))
    if sorted(dims) != list(range(self.ndim)):
        raise RuntimeError(f"permute(): {dims} is not a permutation of the {self.ndim} dims")
    return transpose(self, axes=dims)


def _mT(self):
    if self.ndim < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices")
    return _swapaxes(self, -2, -1)


def _unsqueeze(self, dim):
    return _expand_dims(self, _dim(dim, self.ndim + 1))


_UNSET = object()  # a numpy keyword not given (axis=None means something else)


def _squeeze_method(self, dim=None, *, axis=_UNSET):
    if axis is not _UNSET:  # numpy's keyword: numpy's meaning (raises on size > 1)
        return _squeeze(self, tuple(axis) if isinstance(axis, list) else axis)
    if dim is None:
        return _squeeze(self)
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    dims = [_dim(d, self.ndim) for d in dims]
    # PyTorch leaves a dim that is not of size 1 alone (numpy raises); a 0-d
    # tensor takes dim 0 or -1 and stays as it is.
    keep = tuple(d for d in dims if self.ndim and self.shape[d] == 1)
    if not keep:
        return reshape(self, shape=self.shape)
    return _squeeze(self, keep)


def _c_order(name, order):
    # numpy's 'A' and 'K' follow the memory layout, which a Tensor's values do
    # not define (a transpose is a view): only the row-major order is given.
    if order != "C":
        raise NotImplementedError(f"{name}(order={order!r}): only C order is supported")


def _flatten(self, start_dim=0, end_dim=-1, *, order=None):
    if order is not None:  # numpy's a.flatten(order=...): the same values in C order
        _c_order("flatten", order)
    if isinstance(start_dim, str):
        raise TypeError(
            f"flatten({start_dim!r}): the arguments are PyTorch's (start_dim, "
            "end_dim); numpy's order goes by keyword, flatten(order=...)"
        )
    if self.ndim == 0:
        return reshape(self, shape=(1,))
    s, e = _dim(start_dim, self.ndim), _dim(end_dim, self.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = self.shape
    return reshape(self, shape=shape[:s] + (-1,) + shape[e + 1:])


def _ravel_method(self, order="C"):
    _c_order("ravel", order)
    return reshape(self, shape=(-1,))


def _expand(self, *sizes):
    sizes = _shape_args(sizes)
    lead = len(sizes) - self.ndim
    if lead < 0:
        raise RuntimeError(
            f"expand: the number of sizes ({len(sizes)}) must be at least the "
            f"number of dimensions ({self.ndim})"
        )
    shape = tuple(
        (self.shape[i - lead] if s == -1 else s) if i >= lead else s
        for i, s in enumerate(sizes)
    )
    return broadcast_to(self, shape=shape)


def ambiguous(call: str, torch_form: str, numpy_form: str) -> None:
    """In a function file's code (numpy-style code given Tensors), refuse a
    method call whose PyTorch meaning (gradcli's for Tensors) and numpy meaning
    differ and whose form does not say which: the same line run on arrays, as
    the user's own df or a plain Python run sees it, would give another number."""
    if graph.MODE.file_code:
        raise TypeError(
            f"{call} means one thing for a PyTorch tensor and another for a numpy "
            f"array, and a function file is given Tensors: write {torch_form} "
            f"(PyTorch's) or {numpy_form} (numpy's)")


def _repeat(self, *sizes, axis=_UNSET):
    # PyTorch's repeat is numpy's tile; numpy's repeat is np.repeat(t, n), or a
    # numpy keyword here: t.repeat(2, axis=0) (axis=None: flattened first).
    if axis is not _UNSET:
        if len(sizes) != 1:
            raise TypeError("repeat(repeats, axis=...): numpy's form takes one repeats")
        return OPS["repeat"](self, repeats=sizes[0], axis=axis)
    ambiguous("x.repeat(n)", "np.tile(x, n)", "np.repeat(x, n) or x.repeat(n, axis=None)")
    sizes = _shape_args(sizes)
    if len(sizes) < self.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of "
            "dimensions of tensor"
        )
    shape = (1,) * (len(sizes) - self.ndim) + self.shape
    x = reshape(self, shape=tuple(v for s in shape for v in (1, s)))
    x = broadcast_to(x, shape=tuple(v for r, s in zip(sizes, shape) for v in (r, s)))
    out = reshape(x, shape=tuple(r * s for r, s in zip(sizes, shape)))
    # PyTorch's repeat is new memory; repeats of 1 leave a view of the
    # read-only broadcast, which t.repeat(1, 1).add_(1) could not write
    return out if type(out._data) is not np.ndarray or out._data.flags.owndata \
        else out.clone()


# -- reductions ---------------------------------------------------------------------
def _picked(x, idx, d):
    """``x`` at ``idx`` (keepdim indices along dim ``d``): gradient to those entries."""
    grids = list(np.indices(idx.shape, sparse=True))
    grids[d] = idx
    return getitem(x, index=tuple(grids))


def _along(x, dim, keepdim, pick, result):
    n = x.ndim
    d = _dim(dim, n)
    if n == 0:
        return result(reshape(x, shape=()), Tensor._make(np.array(0)))
    idx = np.expand_dims(pick(x._data, axis=d), d)
    values = _picked(x, idx, d)
    if not keepdim:
        values = reshape(values, shape=values.shape[:d] + values.shape[d + 1:])
        idx = np.squeeze(idx, d)
    return result(values, Tensor._make(np.asarray(idx, dtype=np.int64)))


def _extreme(o, elementwise, pick, result, name):
    def method(self, *args, dim=None, keepdim=False, axis=None, keepdims=None, out=None):
        if out is not None:
            raise NotImplementedError(f"{name}(out=...) is not supported in gradcli")
        if len(args) > 2:
            raise TypeError(f"{name}() takes at most 2 positional arguments (dim, keepdim)")
        if args:
            if isinstance(args[0], Tensor):
                return elementwise(self, args[0])
            if dim is not None:
                raise TypeError(f"{name}() got the dim twice")
            ambiguous(f"x.{name}({args[0]!r})", f"x.{name}(dim={args[0]!r})",
                      f"x.{name}(axis={args[0]!r}) or np.{name}(x, {args[0]!r})")
            dim = args[0]
            if len(args) == 2:
                keepdim = args[1]
        check_flag(name, "keepdim", keepdim)
        if axis is not None or keepdims is not None:
            # numpy's keywords on a Tensor: numpy's meaning (the values only)
            return o(self, axis=axis, keepdims=bool(keepdims))
        if dim is None:
            return o(self)
        return _along(self, dim, keepdim, pick, result)

    method.__name__ = name
    return method


def _argpick(pick, name):
    def method(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._make(np.asarray(pick(self._data), dtype=np.int64))
        d = _dim(dim, self.ndim)
        return Tensor._make(np.asarray(pick(self._data, axis=d, keepdims=keepdim),
                                       dtype=np.int64))

    method.__name__ = name
    return method


def _order(data, d, descending):
    # Stable: ties keep their order, as in PyTorch's stable sort. NaN counts as
    # the largest value (last ascending, first descending), as in PyTorch.
    if descending:
        kind = data.dtype.kind
        if kind == "f":
            return np.lexsort((-data, ~np.isnan(data)), axis=d)  # last key first
        if kind not in "iub":
            raise NotImplementedError(f"sort(descending=True) of {data.dtype.name} tensors")
        keys = ~data if kind == "b" else -data.astype(np.int64)
        return np.argsort(keys, axis=d, kind="stable")
    return np.argsort(data, axis=d, kind="stable")


def _argsort(self, dim=-1, descending=False, stable=False, *, axis=_UNSET, kind=None,
             order=None):
    """PyTorch's argsort (int64 indices, nothing recorded); with numpy's keywords
    (``axis=``, ``kind=``) numpy's, where ``axis=None`` sorts the flattened values."""
    if order is not None:
        raise NotImplementedError("argsort(order=...) is for structured arrays")
    if axis is not _UNSET or kind is not None:
        dim = -1 if axis is _UNSET else axis
        idx = np.argsort(self._data, axis=dim, kind="stable")
        return Tensor._make(np.asarray(idx, dtype=np.int64))
    if self.ndim == 0:
        return Tensor._make(np.array(0))
    d = _dim(dim, self.ndim)
    return Tensor._make(_order(self._data, d, descending).astype(np.int64))


def _sort(self, *args, dim=_UNSET, descending=None, stable=False):
    if len(args) > 2:
        raise TypeError("sort() takes at most 2 positional arguments (dim, descending)")
    if dim is _UNSET and descending is None:
        # (numpy's a.sort() sorts in place and returns None)
        ambiguous("x.sort()", "x.sort(dim=-1) for (values, indices)", "np.sort(x)")
    if args:
        if dim is not _UNSET:
            raise TypeError("sort() got the dim twice")
        dim = args[0]
        if len(args) == 2:
            descending = args[1]
    dim = -1 if dim is _UNSET else dim
    descending = bool(descending)
    if self.ndim == 0:
        return sort_result(reshape(self, shape=()), Tensor._make(np.array(0)))
    d = _dim(dim, self.ndim)
    idx = _order(self._data, d, descending)
    return sort_result(_picked(self, idx, d), Tensor._make(idx.astype(np.int64)))


def _topk(self, k, dim=-1, largest=True, sorted=True):
    d = _dim(dim, self.ndim)
    n = self.shape[d] if self.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: k ({k}) is out of range for a dimension of size {n}")
    if self.ndim == 0:
        return topk_result(reshape(self, shape=()), Tensor._make(np.array(0)))
    idx = np.take(_order(self._data, d, largest), np.arange(k), axis=d)
    return topk_result(_picked(self, idx, d), Tensor._make(idx.astype(np.int64)))


def _spread(name, o):
    def method(self, dim=None, unbiased=None, keepdim=False, *, correction=None,
               ddof=None, axis=None, keepdims=None):
        if isinstance(dim, bool):  # the old std(unbiased) form
            dim, unbiased = None, dim
        check_flag(name, "keepdim", keepdim)
        if unbiased is not None:
            check_flag(name, "unbiased", unbiased)
        # numpy's keywords (axis=, keepdims=, ddof=) keep numpy's meaning: ddof=0
        # unless given; otherwise PyTorch's, the unbiased estimate.
        numpy_style = axis is not None or keepdims is not None or ddof is not None
        if axis is not None:
            if dim is not None:
                raise TypeError(f"{name}(): give the axis once (dim or axis=), not both")
            dim = axis
        if keepdims is not None:
            keepdim = keepdims
        given = [v is not None for v in (unbiased, correction, ddof)]
        if sum(given) > 1:
            raise TypeError(f"{name}(): give one of unbiased=, correction= (or ddof=)")
        if unbiased is not None:
            c = 1 if unbiased else 0
        elif correction is not None:
            c = correction
        elif ddof is not None:
            c = ddof
        else:
            if not numpy_style:
                ambiguous(f"x.{name}()", f"x.{name}(unbiased=True)",
                          f"x.{name}(ddof=0) or np.{name}(x)")
            c = 0 if numpy_style else 1
        if isinstance(dim, list):
            dim = tuple(dim)
        return o(self, axis=dim, ddof=c, keepdims=bool(keepdim))

    method.__name__ = name
    return method


def _norm(self, p="fro", dim=None, keepdim=False, dtype=None):
    x = self if dtype is None else _cast_to(self, dtype)
    if isinstance(dim, list):
        dim = tuple(dim)
    if isinstance(dim, tuple) and len(dim) == 1:
        dim = dim[0]
    if p == "nuc":
        if not (isinstance(dim, tuple) and len(dim) == 2) and x.ndim != 2:
            raise RuntimeError("norm(p='nuc') needs a matrix or two dims")
        return norm_(x, ord="nuc", axis=dim if dim is not None else (0, 1),
                     keepdims=keepdim)
    if p is None or p == "fro":
        p = 2
    if isinstance(p, str):
        raise ValueError(f"norm(): unknown p {p!r}")
    if dim is None:
        # PyTorch: the vector p-norm of all the entries, whatever the shape
        out = norm_(reshape(x, shape=(-1,)), ord=p)
        return reshape(out, shape=(1,) * x.ndim) if keepdim else out
    if isinstance(dim, tuple):
        if p != 2:
            raise NotImplementedError(
                "norm(p, dim=(d0, d1)) with p other than 2/'fro'/'nuc' is not "
                "supported in gradcli (PyTorch takes a vector norm over both dims)"
            )
        return norm_(x, ord="fro", axis=tuple(_dim(d, x.ndim) for d in dim),
                     keepdims=keepdim)
    return norm_(x, ord=p, axis=_dim(dim, x.ndim), keepdims=keepdim)


def _cumsum(self, dim=_UNSET, *, dtype=None, axis=_UNSET):
    x = self if dtype is None else _cast_to(self, dtype)
    if axis is not _UNSET:  # numpy's keyword: numpy's meaning (None: flattened)
        return OPS["cumsum"](x, axis=axis)
    if dim is _UNSET:
        raise TypeError(
            "cumsum() missing the dim: PyTorch's t.cumsum(dim) takes it; for numpy's "
            "cumulative sum of the flattened values use np.cumsum(t)"
        )
    if x.ndim == 0:
        return reshape(x, shape=())
    return OPS["cumsum"](x, axis=_dim(dim, x.ndim))


def _clamp(self, min=None, max=None):
    """PyTorch's clamp: the result's dtype is the result type of the tensor and
    its bounds (an int tensor clamped to 2.5 is float, not truncated to 2)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    target = _result_dtype_of([self] + [b for b in (min, max) if b is not None],
                              "clamp")
    if target is None:
        target = self.dtype  # (a bound of no known kind: numpy's clip decides)
    x = _cast_to(self, target)
    if target.kind not in "fc":  # no gradient: the plain values
        lo, hi = (None if b is None
                  else _plain(_cast_to(_operand_as(b, target), target))
                  for b in (min, max))
        return Tensor._make(np.clip(x._data, lo, hi))
    lo = -np.inf if min is None else _operand_as(min, target)
    hi = np.inf if max is None else _operand_as(max, target)
    return clip(x, lo, hi)


def _plain(x):
    return x._data if isinstance(x, Tensor) else x


def _sum(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    check_flag("sum", "keepdim", keepdim)
    x = self if dtype is None else _cast_to(self, dtype)
    if x.dtype.kind == "b" or (dtype is None and x.dtype.kind in "iu"):
        x = _cast_to(x, np.int64) if x.dtype != np.int64 else x  # PyTorch sums ints as int64
    return sum_(x, axis=_axis(dim, axis), keepdims=bool(keepdim if keepdims is None else keepdims))


def _mean(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    check_flag("mean", "keepdim", keepdim)
    x = self if dtype is None else _cast_to(self, dtype)
    if x.dtype.kind not in "fc":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a "
            f"floating point or complex dtype. Got: {x.dtype.name}"
        )
    return OPS["mean"](x, axis=_axis(dim, axis),
                       keepdims=bool(keepdim if keepdims is None else keepdims))


def _axis(dim, axis):
    d = axis if dim is None else dim
    return tuple(d) if isinstance(d, list) else d


# -- products, division ---------------------------------------------------------------
def mm(a, b):
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: both arguments must be matrices (got {a.ndim}-D and {b.ndim}-D)")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} "
            f"and {b.shape[0]}x{b.shape[1]})"
        )
    return matmul(a, b)


def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: both arguments must be 3-D (got {a.ndim}-D and {b.ndim}-D)")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(f"bmm: shapes {a.shape} and {b.shape} do not align")
    return matmul(a, b)


def _as_operand(x, like: Tensor):
    if isinstance(x, Tensor):
        return x
    return Tensor._make(np.asarray(x, dtype=_weak_dtype(x, like)))


def _weak_dtype(x, like):
    """A Python number beside a Tensor takes its dtype, as in PyTorch (floats
    beside an int tensor: the default float dtype)."""
    if isinstance(x, (bool, int)) and like.dtype.kind in "iufc":
        return like.dtype
    if isinstance(x, float):
        return like.dtype if like.dtype.kind in "fc" else get_default_dtype()
    return np.asarray(x).dtype


def _operands(a, b, integer_fn):
    """The two operands as Tensors, and the result when both are integers
    (no gradient; PyTorch raises on a zero divisor where numpy gives 0)."""
    ref = a if isinstance(a, Tensor) else b
    a, b = _as_operand(a, ref), _as_operand(b, ref)
    ad, bd = a._data, b._data
    if ad.dtype.kind in "iub" and bd.dtype.kind in "iub":
        if np.any(bd == 0):
            raise ZeroDivisionError("integer division by zero")
        return a, b, Tensor._make(integer_fn(ad, bd))
    return a, b, None


def floor_divide(a, b):
    """``a // b``: rounded toward minus infinity, as PyTorch; gradient zero."""
    a, b, ints = _operands(a, b, np.floor_divide)
    if ints is not None:
        return ints
    with np.errstate(all="ignore"):
        exact = np.floor_divide(a._data, b._data)
    out = floor(a / b)
    out._data = np.asarray(exact, dtype=out.dtype)  # numpy's exact floor, same graph
    return out


def remainder(a, b):
    """``a % b`` with the divisor's sign (Python's, PyTorch's remainder);
    gradients 1 and -floor(a / b)."""
    a, b, ints = _operands(a, b, np.remainder)
    return ints if ints is not None else OPS["remainder"](a, b)  # numpy's remainder is PyTorch's: the divisor's sign


# -- type promotion: a 0-d tensor does not promote a dimensioned one of its kind ----
def _category(dt) -> int:
    return {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}.get(dt.kind, 4)


def _promote(self, other):
    """PyTorch's rule where numpy's differs: a 0-d tensor does not promote a
    dimensioned one of its category, and across categories (int and float) the
    float's dtype wins (numpy would widen int64 and float32 to float64)."""
    sd, od = self._data, other._data
    cs, co = _category(sd.dtype), _category(od.dtype)
    if (sd.ndim == 0) != (od.ndim == 0):
        zero_is_self = sd.ndim == 0
        cz, cd = (cs, co) if zero_is_self else (co, cs)
        if cz <= cd:  # the dimensioned tensor's dtype
            target = od.dtype if zero_is_self else sd.dtype
        else:  # a higher category: the 0-d tensor's dtype
            target = sd.dtype if zero_is_self else od.dtype
    elif cs != co and max(cs, co) >= 2:
        target = sd.dtype if cs > co else od.dtype
    else:
        return None
    return _cast_to(self, target), _cast_to(other, target)


# numpy's extended precision where it is wider than float64 (float128 and
# complex256 on x86 Linux): PyTorch has no such dtype.
_WIDE = frozenset(d for d in (np.dtype(np.longdouble), np.dtype(np.clongdouble))
                  if d.itemsize > (16 if d.kind == "c" else 8))


def _refuse_wide(dtype) -> None:
    raise TypeError(
        f"unsupported operand of dtype {dtype.name} (numpy's extended precision "
        "long double): PyTorch has no such dtype; convert it first (float(), "
        "complex(), .astype(np.float64))"
    )


def _operand_kind(x):
    """(rank, dtype) as PyTorch's result_type sees an operand: rank 2 for a
    dimensioned tensor or array, 1 for a 0-d one, 0 for a Python number or a
    numpy scalar (a "wrapped number": int64, the default float or complex dtype,
    whatever its own width); None for anything else."""
    if isinstance(x, Tensor):
        x = x._data
    if isinstance(x, np.ndarray):
        if x.dtype in _WIDE:
            _refuse_wide(x.dtype)
        return (2 if x.ndim else 1), x.dtype
    if isinstance(x, np.generic) and x.dtype in _WIDE:
        # (its .item() is itself: as a "weak number" it would never stop promoting)
        _refuse_wide(x.dtype)
    if isinstance(x, (bool, np.bool_)):
        return 0, np.dtype(bool)
    if isinstance(x, (int, np.integer)):
        return 0, np.dtype(np.int64)
    if isinstance(x, (float, np.floating)):
        return 0, get_default_dtype()
    if isinstance(x, (complex, np.complexfloating)):
        return 0, np.result_type(get_default_dtype(), np.complex64)
    return None


def _promote_types(a, b):
    """PyTorch's promote_types: across categories the higher one's dtype
    (int64 and float16 give float16, numpy's float64); else numpy's."""
    ca, cb = _category(a), _category(b)
    if ca != cb and max(ca, cb) >= 2:
        if min(ca, cb) >= 2:  # float and complex: the complex of the wider
            return np.result_type(a, b)
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """PyTorch's combine_categories: ``lower`` (0-d or wrapped operands) changes
    ``higher`` only from a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    ch, cl = _category(higher), _category(lower)
    if ch == 3:
        return higher
    if cl == 3:
        return np.result_type(higher, np.complex64) if ch == 2 else lower
    if ch == 2:
        return higher
    if ch == 0 or cl == 2:
        return _promote_types(higher, lower)
    return higher


def _result_dtype(a, b, name: str):
    """The dtype of ``a <name> b`` under PyTorch's rules, or None (not known)."""
    return _result_dtype_of((a, b), name)


def _result_dtype_of(operands, name: str):
    """PyTorch's result_type of any number of operands, or None (not known)."""
    kinds = [_operand_kind(x) for x in operands]
    if None in kinds:
        return None
    by_rank: list = [None, None, None]
    for rank, dt in kinds:
        by_rank[rank] = dt if by_rank[rank] is None else _promote_types(by_rank[rank], dt)
    out = _combine(by_rank[2], _combine(by_rank[1], by_rank[0]))
    if name == "div" and out.kind in "biu":  # true division: the default float dtype
        out = get_default_dtype()
    return out


def _operand_as(x, dtype):
    if isinstance(x, Tensor):
        return x if x._data.dtype == dtype else _cast_to(x, dtype)
    if isinstance(x, np.ndarray):
        return Tensor._make(x.astype(dtype))
    if isinstance(x, np.generic):
        return x.item()  # a wrapped number, weak as a Python number is
    return x


def _promote_result(self, other, out, name):
    """Tensor arithmetic whose numpy result dtype is not PyTorch's: both
    operands cast to PyTorch's (a Python or numpy number stays a weak number),
    for the operator to run again; else None. An operand numpy could only
    hold as Python objects (a Fraction, say) is refused, as PyTorch does."""
    dtype = getattr(out, "dtype", None)
    if dtype is not None and dtype.kind == "c" and graph.MODE.enabled and (
            self.requires_grad or getattr(other, "requires_grad", False)):
        from .op import complex_refused

        raise complex_refused(name, dtype)
    if getattr(out, "dtype", object) == object and self._data.dtype != object:
        kind = type(other).__name__ if getattr(other, "dtype", None) != object else "object array"
        raise TypeError(f"{name}: unsupported operand type {kind!r} (a Tensor holds "
                        "numbers: convert it with float() or np.asarray(..., dtype=float))")
    target = _result_dtype(self, other, name)
    if target is None or target == out.dtype:
        return None
    a, b = _operand_as(self, target), _operand_as(other, target)
    if a is self and b is other:  # (nothing left to cast: numpy's answer stands)
        return None
    return a, b


# -- gradients: hooks and retained gradients ---------------------------------------
from .tensor import HOOKS as _HOOKS  # noqa: E402


class _Handle:
    def __init__(self, t, hook) -> None:
        self._key, self._hook = id(t), hook

    def remove(self) -> None:
        entry = _HOOKS.get(self._key)
        if entry is not None and self._hook in entry[1]:
            entry[1].remove(self._hook)


def _register_hook(self, hook):
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self._grad_fn is not None:
        raise NotImplementedError(
            "register_hook on a non-leaf tensor is not supported in gradcli (hooks "
            "on leaves are); use retain_grad() to read a non-leaf's gradient"
        )
    key = id(self)
    entry = _HOOKS.get(key)
    if entry is None or entry[0]() is not self:
        # (the dict bound as a default: at exit the module's globals may be gone)
        entry = _HOOKS[key] = (
            weakref.ref(self, lambda _, hooks=_HOOKS: hooks.pop(key, None)), [])
    entry[1].append(hook)
    return _Handle(self, hook)


def leaf_hooks(t, g):
    """Run the hooks of leaf ``t`` on its incoming gradient ``g`` (an array or
    Tensor); a hook's non-None result replaces it, as in PyTorch."""
    entry = _HOOKS.get(id(t))
    if entry is None or entry[0]() is not t:
        return g
    hooks = entry[1]
    if np.result_type(g._data if isinstance(g, Tensor) else g) != t._data.dtype:
        g = _cast_to(g, t._data.dtype)  # (hooks see the gradient in .grad's dtype)
    for h in list(hooks):
        arg = g if isinstance(g, Tensor) else Tensor._make(np.array(g))
        r = h(arg)
        if r is not None:
            _check_hook_result(h, arg, r)
            g = r if isinstance(g, Tensor) else np.asarray(r._data)
    return g


def _check_hook_result(hook, arg, r) -> None:
    """PyTorch's checks of what a hook returns instead of the gradient."""
    name = getattr(hook, "__name__", type(hook).__name__)
    if not isinstance(r, Tensor):
        raise TypeError(f"expected Tensor, but hook '{name}' returned "
                        f"'{type(r).__name__}'")
    if r.shape != arg.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value (was "
                           f"{tuple(arg.shape)}, got {tuple(r.shape)})")
    if r.dtype != arg.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value (was "
                           f"{arg.dtype.name}, got {r.dtype.name})")


_RETAINED: dict = {}  # id(node) -> weakref to the non-leaf tensor keeping its grad


def _retain_grad(self):
    if not self.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if self._grad_fn is not None:
        node = self._grad_fn
        key = id(node)
        _RETAINED[key] = (
            weakref.ref(node, lambda _, kept=_RETAINED: kept.pop(key, None)),
            weakref.ref(self))
    return None


def retain_hook():
    """The run_backward ``hook`` that fills ``.grad`` of retained non-leaves, or None."""
    if not _RETAINED:
        return None
    seen: set = set()

    def hook(node, g, gx):
        key = id(node)
        if key in seen or key not in _RETAINED:
            return
        seen.add(key)
        nref, tref = _RETAINED[key]
        t = tref()
        if nref() is not node or t is None:
            _RETAINED.pop(key, None)
            return
        t._accumulate(g if isinstance(g, Tensor) else np.array(g), isinstance(g, Tensor))

    return hook


def retains(t) -> bool:
    entry = _RETAINED.get(id(t._grad_fn)) if t._grad_fn is not None else None
    return entry is not None and entry[0]() is t._grad_fn and entry[1]() is t


# -- the Tensor's methods -----------------------------------------------------------
def bind() -> None:
    T = Tensor
    T.size = property(lambda self: _Size(self._data.shape))
    T.view = _view
    T.reshape = lambda self, *shape: reshape(self, shape=_shape_args(shape))
    T.t = _t
    T.transpose = _transpose
    T.permute = _permute
    T.mT = property(_mT)
    T.unsqueeze = _unsqueeze
    T.squeeze = _squeeze_method
    T.flatten = _flatten
    T.expand = _expand
    T.expand_as = lambda self, other: _expand(self, other.shape)
    T.repeat = _repeat
    T.max = _extreme(max_, maximum, np.argmax, max_result, "max")
    T.min = _extreme(min_, minimum, np.argmin, min_result, "min")
    T.argmax = _argpick(np.argmax, "argmax")
    T.argmin = _argpick(np.argmin, "argmin")
    T.sort = _sort
    T.topk = _topk
    T.std = _spread("std", std)
    T.var = _spread("var", var)
    T.norm = _norm
    T.cumsum = _cumsum
    T.argsort = _argsort
    T.round = _round_method
    T.astype = _astype
    T.ravel = _ravel_method
    T.clamp = T.clip = _clamp
    T.sum = _sum
    T.mean = _mean
    T.mm = mm
    T.bmm = bmm
    T.to = _to
    T.double = lambda self: _cast_to(self, np.float64)
    T.float = lambda self: _cast_to(self, np.float32)
    T.long = lambda self: _cast_to(self, np.int64)
    T.int = lambda self: _cast_to(self, np.int32)
    T.bool = lambda self: _cast_to(self, np.bool_)
    T.is_floating_point = lambda self: self._data.dtype.kind == "f"
    T.allclose = lambda self, other, rtol=1e-05, atol=1e-08, equal_nan=False: bool(
        np.allclose(self._data, other._data if isinstance(other, Tensor) else other,
                    rtol=rtol, atol=atol, equal_nan=equal_nan))
    T.retain_grad = _retain_grad
    T.retains_grad = property(retains)
    T.register_hook = _register_hook
    fastpath._PROMOTE[:] = [_promote, _promote_result]  # every operator made by fastpath._binary
    fastpath._RETAINED[:] = [_RETAINED]  # never reuse a retained non-leaf's array
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        setattr(T, name, getattr(T, f"__{name}__"))
    T.greater, T.less, T.greater_equal, T.less_equal = T.gt, T.lt, T.ge, T.le
    T.not_equal = T.ne
    T.__floordiv__ = floor_divide
    T.__rfloordiv__ = lambda self, other: floor_divide(other, self)
    T.__mod__ = remainder
    T.__rmod__ = lambda self, other: remainder(other, self)
    T.floor_divide = floor_divide
    T.remainder = remainder
    T.add = _binary(OPS["add"])[0]
    T.sub = _binary(OPS["sub"])[0]
    T.mul = _binary(OPS["mul"])[0]
    T.div = _binary(OPS["div"])[0]


# -- gc.* functions ---------------------------------------------------------------------
def cat(tensors, dim=0, *, axis=None):
    return concatenate(list(tensors), axis=dim if axis is None else axis)


def _torch_fn(method, numpy_op):
    """``gc.max(t, 1)`` as ``t.max(1)``; numpy's keywords (``axis=``) keep numpy's op."""
    def fn(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            return numpy_op(x, *args, **kwargs)
        if args and isinstance(args[0], Tensor):
            return method(x, args[0])
        if numpy_op.name == "transpose" and len(args) != 2:
            return numpy_op(x, *args, **kwargs)  # np.transpose(x[, axes]): PyTorch has none
        if "axis" in kwargs or "keepdims" in kwargs or "ddof" in kwargs or "ord" in kwargs:
            return numpy_op(x, *args, **kwargs)
        return method(x, *args, **kwargs)

    fn.__name__ = numpy_op.name
    fn.__doc__ = f"PyTorch's {numpy_op.name}; with numpy's keywords, numpy's."
    return fn


class no_grad(graph.no_grad):
    """PyTorch's no_grad: ``with gc.no_grad():``, ``@gc.no_grad()`` or ``@gc.no_grad``."""

    def __new__(cls, func=None):
        if func is not None:
            if not callable(func):
                raise TypeError("no_grad() takes no arguments (or decorates a function)")
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func=None) -> None:
        super().__init__()


class inference_mode(graph.no_grad):
    """PyTorch's inference_mode: as no_grad here (``inference_mode(False)`` records)."""

    def __new__(cls, mode=True):
        if callable(mode):
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        graph._GradMode.__init__(self, not mode)
