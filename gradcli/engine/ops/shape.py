"""Shape ops: transpose, reshape, broadcast, join, index. The rules that reshape
or index are told how many batch axes the cotangent has (``takes_lead``).
"""

from __future__ import annotations

import math

import numpy as np

from ..op import MOVES, NO_BIGGER, SAME, _any, _from_end, op, required


def _transpose_vjp(g, out, x, *, axes=None, lead=0):
    nd = np.ndim(g) - lead
    back = range(nd)[::-1] if axes is None else np.argsort([a % nd for a in axes])
    return np.transpose(g, tuple(range(lead)) + tuple(lead + int(i) for i in back))


@op(_transpose_vjp, grad_fn="PermuteBackward0", support=MOVES, saves="none",
    takes_lead=True, view=True, shape=NO_BIGGER, method=False,
    rule="the gradient transposed back", sym=SAME, numpy=(np.transpose,),
    matrix=lambda sp, x, *, axes=None: None if axes is not None
    else (x.kind, x.e.T if x.kind == "m" else x.e))
def transpose(x, *, axes=None):
    return np.transpose(x, axes)


@op(lambda g, out, x, *, shape, lead=0: np.reshape(g, np.shape(g)[:lead] + x.shape),
    grad_fn="ViewBackward0", support=MOVES, saves="shape", takes_lead=True, view=True,
    shape=NO_BIGGER, method=False, rule="the gradient reshaped back", sym=SAME,
    numpy=(np.reshape,))
def reshape(x, *, shape):
    return np.reshape(x, shape)


@op(lambda g, out, x, *, shape: g, grad_fn="ExpandBackward0", support=MOVES,
    saves="none", method=False, view=True,
    shape=lambda shapes, params: tuple(required(params, "shape")),
    rule="summed over the broadcast axes", sym=SAME, numpy=(np.broadcast_to,))
def broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape)


def _pad_widths(pad_width, ndim: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (ndim, 2))


def _pad_vjp(g, out, x, *, pad_width, mode="constant", constant_values=0):
    # The padding is constant: only the entries copied from x reach it. The
    # slices count from the end, so batch axes in front pass through.
    w = _pad_widths(pad_width, x.ndim)
    return g[(Ellipsis,) + tuple(slice(lo, lo + n) for (lo, _), n in zip(w, x.shape))]


def _padded(shapes, params):
    w = _pad_widths(required(params, "pad_width"), len(shapes[0]))
    return tuple(int(n + lo + hi) for n, (lo, hi) in zip(shapes[0], w))


@op(_pad_vjp, grad_fn="ConstantPadNdBackward0", support=MOVES, saves="shape",
    shape=_padded, method=False, rule="the gradient without the padding", sym=SAME,
    numpy=(np.pad,))
def pad(x, *, pad_width, mode="constant", constant_values=0):
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, not {mode!r}")
    w = _pad_widths(pad_width, np.ndim(x))
    if np.any(w < 0):
        raise ValueError("pad: negative pad widths")
    x = np.asarray(x)
    fill = constant_values
    if x.dtype == object and x.size:  # sympy elements: the fill as one of them
        fill = x.flat[0] * 0 + constant_values
    out = np.full(tuple(int(n + lo + hi) for n, (lo, hi) in zip(x.shape, w)), fill,
                  dtype=x.dtype)
    out[tuple(slice(lo, lo + n) for (lo, _), n in zip(w, x.shape))] = x
    return out


def _concat_vjp(g, out, *xs, axis=0):
    if axis is None:  # the inputs were flattened, then joined
        ends = np.cumsum([x.size for x in xs]).tolist()
        batch = np.shape(g)[:-1]
        return [np.reshape(g[..., e - x.size:e], batch + x.shape) for x, e in zip(xs, ends)]
    ax = _from_end(axis, xs[0].ndim)
    ends = np.cumsum([x.shape[ax] for x in xs]).tolist()
    after = (slice(None),) * (-ax - 1)
    return [g[(Ellipsis, slice(e - x.shape[ax], e)) + after] for x, e in zip(xs, ends)]


def _joined(shapes, params):
    return (sum(math.prod(s) for s in shapes[0]),)


@op(_concat_vjp, grad_fn="CatBackward0", support=MOVES, saves="shape", multi=True,
    nin=-1, shape=_joined, method=False,
    rule="the gradient split back", sym=SAME, numpy=(np.concatenate,))
def concatenate(xs, *, axis=0):
    return np.concatenate(xs, axis=axis)


def _stack_vjp(g, out, *xs, axis=0):
    ax = _from_end(axis, xs[0].ndim + 1)
    after = (slice(None),) * (-ax - 1)
    return [g[(Ellipsis, i) + after] for i in range(len(xs))]


@op(_stack_vjp, grad_fn="StackBackward0", support=MOVES, saves="shape", multi=True,
    nin=-1, shape=_joined, method=False,
    rule="the gradient unstacked", sym=SAME, numpy=(np.stack,))
def stack(xs, *, axis=0):
    return np.stack(xs, axis=axis)


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis))) for p in parts)


def _batched_index(index, lead: int):
    """``index`` for the same array behind ``lead`` batch axes, and whether it is
    advanced. A basic index gets the batch axes as leading full slices. An
    advanced one comes back unchanged: it is used through ``_positions``."""
    parts = index if isinstance(index, tuple) else (index,)
    if _is_basic(parts):
        return (slice(None),) * lead + parts, False
    return index, True


def _positions(index, shape) -> np.ndarray:
    """Where each entry of ``a[index]`` comes from in ``a`` of ``shape``, as flat
    positions: numpy's own placement of the result's axes (advanced indices
    separated by a slice, None or '...' put theirs first), which a rewritten
    index could change, and then one advanced index on the flattened axes
    leaves any batch axes in front where they are."""
    return np.arange(math.prod(shape)).reshape(shape)[index]


def _indexed(shapes, params):
    view = np.broadcast_to(np.zeros((), np.int8), shapes[0])  # no memory
    return view[params["index"]].shape


def _index_add(g, *, index, shape, lead=0):
    batch = np.shape(g)[:lead]
    z = np.zeros(batch + tuple(shape), dtype=np.result_type(g))
    idx, advanced = _batched_index(index, lead)
    if not advanced:
        z[idx] = g
    elif not lead:
        np.add.at(z, index, g)  # repeated indices add up
    else:
        flat = z.reshape(batch + (-1,))  # a view: z is new and contiguous
        np.add.at(flat, (Ellipsis, _positions(index, shape)), g)
    return z


@op(lambda g, out, x, *, index, lead=0:
    _any(index_add, g, index=index, shape=x.shape, lead=lead),
    grad_fn="IndexBackward0", support=MOVES, saves="shape", view=True,
    rule="the gradient scattered back",
    sym=SAME, expr=False, takes_lead=True, method=False, shape=_indexed)
def getitem(x, *, index, lead=0):
    if not lead:
        if type(x) is np.ndarray and _is_basic(index):
            parts = index if type(index) is tuple else (index,)
            if Ellipsis not in parts:
                # A view even when every axis is indexed (numpy: a copy), as
                # PyTorch's x[i]: an in-place change of it reaches x.
                return x[parts + (Ellipsis,)]
        return x[index]
    idx, advanced = _batched_index(index, lead)
    if not advanced:
        return x[idx]
    shape = np.shape(x)
    flat = np.reshape(x, shape[:lead] + (-1,))
    return flat[(Ellipsis, _positions(index, shape[lead:]))]


# The walk passes its own ``lead`` to these rules, which assume the node was
# recorded unbatched (lead=0): a batched walk that records (a Jacobian nested in
# another transform) falls back to one walk per row on graphs that index
# (transforms._rows).
@op(lambda g, out, x, *, index, shape, lead=0: _any(getitem, g, index=index, lead=lead),
    grad_fn="IndexPutBackward0", support=MOVES, saves="none",
    rule="the gradient gathered",
    sym=SAME, expr=False, takes_lead=True, method=False,
    shape=lambda shapes, params: tuple(params["shape"]))
def index_add(x, *, index, shape, lead=0):
    return _index_add(x, index=index, shape=shape, lead=lead)
