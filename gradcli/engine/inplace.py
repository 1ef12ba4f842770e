"""In-place updates, as in PyTorch: ``x += 1``, ``p.sub_(lr * g)``, ``x[i] = v``.

The new values go into the tensor's own memory, so every alias (``.data``,
``detach()``, a view such as ``x[0]``) sees them. Under ``no_grad``, or when
nothing involved requires grad, that is all. While recording, the new value is
computed out of place by the ordinary ops from a copy of the old one (which
their rules may read), written back, and the tensor takes the new node as its
``grad_fn``: gradients flow through the new value. A leaf that requires grad
cannot be changed so (PyTorch's error): its gradient is taken at its value.

Every change is noted in the version counter (``graph.mark_modified``), so a
backward pass that needs the old values raises instead of using the new ones.
The forward and backward hot paths are untouched: nothing here runs unless an
in-place method is called.
"""

from __future__ import annotations

import sys

import numpy as np

from . import graph
from .tensor import Tensor

_LEAF = "a leaf Variable that requires grad is being used in an in-place operation."


def _requires_grad(x) -> bool:
    return type(x) is Tensor and x.requires_grad


def _target(t: Tensor, name: str) -> np.ndarray:
    d = t._buffer()
    if not d.flags.writeable:
        raise RuntimeError(
            f"{name}: this tensor's memory cannot be written (a broadcast view such as "
            "broadcast_to/expand, where one number stands for many elements, or a "
            "read-only array such as the inputs gradcli hands a function); change a "
            "copy (.clone()) instead"
        )
    return d


def _check_unshared(t: Tensor, d: np.ndarray, name: str) -> None:
    """While recording, refuse to change memory that other tensors may hold with a
    graph of their own: it would go stale (PyTorch rebases views; gradcli cannot)."""
    # References to d: t._data, the caller's and this frame's d, getrefcount's
    # argument. More: a view of d, another tensor on it, or a node that saved it.
    shared = (
        (d.base is not None and sys.getrefcount(d.base) > 2)  # a view of a live array
        or (not t.requires_grad and sys.getrefcount(d) > 4)  # a constant with aliases
    )
    if shared:
        raise RuntimeError(
            f"{name}: in-place change, while gradients are recorded, of a tensor whose "
            "memory other arrays share (it is a view such as x[0], x.T or "
            "x.reshape(...) of a live tensor, or has such views, or a recorded op "
            "saved it): their gradients would go stale. Change a copy (.clone()), "
            "or build the new tensor out of place"
        )


def _write(d: np.ndarray, new, name: str, cast: bool) -> None:
    nd = new._data if isinstance(new, Tensor) else np.asarray(new)
    if np.shape(nd) != d.shape:
        raise RuntimeError(
            f"{name}: output with shape {list(d.shape)} doesn't match the broadcast "
            f"shape {list(np.shape(nd))}"
        )
    dt = np.result_type(nd)
    if not cast and not np.can_cast(dt, d.dtype, casting="same_kind"):
        raise RuntimeError(
            f"{name}: result type {dt.name} can't be cast to the desired output type "
            f"{d.dtype.name}"
        )
    d[...] = nd


def _update(t: Tensor, name: str, fn, *others, plain=None,
            cast: bool = False) -> Tensor:
    """Give ``t`` the values ``fn(t, *others)`` (Tensor ops), in its own memory.

    ``plain(d, *others)``, if given, writes the same values straight into the
    array ``d`` when nothing is recorded.
    """
    recording = graph.MODE.enabled and (
        t.requires_grad or any(_requires_grad(o) for o in others)
    )
    if recording and t.requires_grad and t._grad_fn is None:
        raise RuntimeError(
            f"{_LEAF} ({name}: update a parameter under gc.no_grad(), or through "
            "its .data)"
        )
    d = _target(t, name)
    if graph.MODE.keep_args:  # nodes holding t replay it as it is now
        graph.note_rebase(t, Tensor._make(d.copy(), t._grad_fn))
    if not recording:
        if plain is not None:
            plain(d, *[o._data if isinstance(o, Tensor) else o for o in others])
        else:
            _write(d, fn(t, *others), name, cast)
        graph.mark_modified(d)
        return t
    _check_unshared(t, d, name)
    old = Tensor._make(d.copy(), t._grad_fn)  # what the new node's rules may read
    new = fn(old, *[old if o is t else o for o in others])  # x *= x: old times old
    if new.requires_grad and d.dtype.kind not in "fc":
        raise RuntimeError(
            f"{name}: only Tensors of floating point dtype can require gradients, and "
            f"this one is {d.dtype.name}: writing a value that requires grad into it "
            "would drop the gradient. Make it with a float dtype"
        )
    _write(d, new, name, cast)
    graph.mark_modified(d)
    # Other views of this memory recorded a history the new values do not have
    # (t's own takes the new node below).
    graph.mark_views_stale(d, skip=t._grad_fn)
    t._grad_fn = new._grad_fn
    t.requires_grad = new.requires_grad
    return t


# -- the methods ----------------------------------------------------------------
def _scaled(other, alpha):
    return other if alpha == 1 else other * alpha


def add_(self, other, *, alpha=1):
    return _update(self, "add_", lambda a, o: a + _scaled(o, alpha), other)


def sub_(self, other, *, alpha=1):
    return _update(self, "sub_", lambda a, o: a - _scaled(o, alpha), other)


def mul_(self, other):
    return _update(self, "mul_", lambda a, o: a * o, other)


def div_(self, other):
    return _update(self, "div_", lambda a, o: a / o, other)


def pow_(self, other):
    return _update(self, "pow_", lambda a, o: a ** o, other)


def remainder_(self, other):
    return _update(self, "remainder_", lambda a, o: a % o, other)


def floor_divide_(self, other):
    return _update(self, "floor_divide_", lambda a, o: a // o, other)


def bitwise_and_(self, other):
    return _update(self, "bitwise_and_", lambda a, o: a & o, other)


def bitwise_or_(self, other):
    return _update(self, "bitwise_or_", lambda a, o: a | o, other)


def bitwise_xor_(self, other):
    return _update(self, "bitwise_xor_", lambda a, o: a ^ o, other)


def neg_(self):
    return _update(self, "neg_", lambda a: -a)


def clamp_(self, min=None, max=None):
    """``clamp``'s values written back: a result type this dtype cannot hold
    (an int tensor clamped to 2.5: float) raises, as in PyTorch."""
    if min is None and max is None:
        raise RuntimeError("clamp_: at least one of 'min' or 'max' must not be None")
    return _update(self, "clamp_", lambda a, lo, hi: a.clamp(lo, hi), min, max)


def _overwritten(a, src):
    """``src`` broadcast to ``a``'s shape, recorded as an op of ``a`` that sends it
    no gradient (PyTorch's CopyBackwards): ``a`` stays in the graph."""
    from .ops.elementwise import where

    return where(np.zeros(a.shape, dtype=bool), a, src)


def _assign(d, src):
    d[...] = src


def copy_(self, src):
    """Copy ``src``'s values (broadcast, cast to this dtype) into this tensor."""
    return _update(self, "copy_", _overwritten, src, plain=_assign, cast=True)


def fill_(self, value):
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(
            f"fill_ only supports 0-dimension value tensor but got tensor with "
            f"{value.ndim} dimensions."
        )
    return _update(self, "fill_", _overwritten, value, plain=_assign, cast=True)


def zero_(self):
    return fill_(self, 0)


def detach_(self):
    """Cut this tensor from the graph, in place: it becomes a leaf."""
    self._grad_fn = None
    self.requires_grad = False
    return self


def clone(self):
    """A copy in new memory, still in the graph (the gradient passes through)."""
    if self.requires_grad and graph.MODE.enabled:
        return self * 1  # x * 1 is x exactly (-0.0, inf, nan included)
    return Tensor._make(np.array(self._data, copy=True))


def _indexed_shape(shape, index) -> tuple:
    return np.broadcast_to(np.zeros((), np.int8), shape)[index].shape


def _placed(a, index, value):
    """``a`` with ``value`` written at ``index`` (numpy's assignment: broadcast, the
    last of repeated indices wins), out of place from recorded ops."""
    from .ops.elementwise import where
    from .ops.shape import broadcast_to, getitem, reshape

    shape = a.shape
    inner = _indexed_shape(shape, index)
    # Which element of value (flattened, broadcast to the indexed shape) lands
    # where; -1: none.
    source = np.full(shape, -1, dtype=np.intp)
    source[index] = np.arange(int(np.prod(inner)), dtype=np.intp).reshape(inner)
    if not isinstance(value, Tensor):
        value = Tensor._make(np.asarray(value))
    flat = reshape(broadcast_to(value, shape=inner), shape=(-1,))
    if flat.shape[0] == 0:
        return where(np.zeros(shape, dtype=bool), a, np.zeros((), a.dtype))
    gathered = getitem(flat, index=np.maximum(source, 0))
    return where(source >= 0, gathered, a)


def setitem(self, index, value):
    from .numpy_api import _index

    index = _index(index)
    if isinstance(value, (list, tuple)) and _requires_grad_inside(value):
        from .op import _stacked

        value = _stacked(value)

    def plain(d, v):
        d[index] = v

    _update(self, "setitem", lambda a, v: _placed(a, index, v), value, plain=plain,
            cast=True)


def _requires_grad_inside(seq) -> bool:
    return any(
        _requires_grad(x) or (isinstance(x, (list, tuple)) and _requires_grad_inside(x))
        for x in seq
    )


def bind() -> None:
    T = Tensor
    T.add_ = add_
    T.sub_ = sub_
    T.mul_ = mul_
    T.div_ = div_
    T.neg_ = neg_
    T.pow_ = pow_
    T.remainder_ = remainder_
    T.floor_divide_ = floor_divide_
    T.bitwise_and_ = bitwise_and_
    T.bitwise_or_ = bitwise_or_
    T.bitwise_xor_ = bitwise_xor_
    T.clamp_ = clamp_
    T.copy_ = copy_
    T.fill_ = fill_
    T.zero_ = zero_
    T.detach_ = detach_
    T.clone = clone
    T.__iadd__ = add_
    T.__isub__ = sub_
    T.__imul__ = mul_
    T.__itruediv__ = div_
    T.__ipow__ = pow_  # (else Python rebinds the name to a new tensor)
    T.__imod__ = remainder_
    T.__ifloordiv__ = floor_divide_
    T.__iand__ = bitwise_and_
    T.__ior__ = bitwise_or_
    T.__ixor__ = bitwise_xor_
    T.__setitem__ = setitem
