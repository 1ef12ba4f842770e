"""The engine's speed tricks, fenced: each is the same computation as the plain
code it replaces, and each is here because ``bench/engine.py`` measured it.

- ``op_call`` / ``_binary``: a Tensor and its Node built field by field, in one
  frame, for one-input ops and the operators (``x * y``): per-op overhead of a
  chain of scalar ops (bench/engine.py, first figure) 2.2 us/op against 3.5 with
  ``apply``'s general path. Each tests its operands' kind once (two numbers:
  input shapes known, a dtype change seen as a type change):
  ``bench/engine.py --against bf998fa`` 1.31 -> 1.22 us/op, where the elision's
  and PyTorch promotion's checks had cost +7% in their first form.
- Fast twins (``@op(fast=np.sin)``): the ufunc itself runs the forward, without a
  Python frame per call.
- ``scaled``: ``g * d`` without a new allocation where one can be saved: in place
  into a fresh local derivative or a gradient nothing else holds, and ``d``
  itself for the all-ones cotangent ``sum`` sends down. Peak memory of value and
  gradient of sum(sin(x)*x + exp(-x*x)) at n = 10^7 (bench/engine.py, third
  figure).
- ``subtracted``: ``acc -= g`` for a negated cotangent (neg, sub) summed into a
  gradient the walk owns: a pass and an array fewer.
- ``reusable``: the last rule of a node to read its incoming gradient may write
  into it when its reference count says nobody else holds it (typically the
  saved output of ``exp`` passed down by the rule above, once that node freed
  it). Peak memory of the backward pass of sum(sin(x)*x + exp(-x*x)) at
  n = 10^6: 5.0x the input (the copy included) instead of 6.0x.
- ``keep_freed_memory``: glibc's malloc keeps the arrays a call freed for the
  next call instead of handing them back (at import): value and gradient of
  sum(einsum(A, B)) at 500x500 (bench/forward.py) 3.6x numpy's forward -> 3.1x.
- ``Diag``: the identity seed of a Jacobian's or a Hessian's rows kept as its
  diagonal through the rules that keep it diagonal (elementwise rules run on
  the one cotangent ``d``; ``diag(d) @ A`` as ``d[:, None] * A``), made dense
  where a rule needs it: per-element the same products (only a zero's sign may
  differ), checked bit for bit against the dense identity over every op
  (tests/test_diag_seed.py). Jacobian of tanh(A @ x) * x, 100 -> 100, by rows
  (bench/derivatives.py's first figure): 68 us against 109 with the dense
  identity (best of 30 alternating blocks in one process); Hessian of
  sum(x**4) + dot(x,x)**2 at n = 100: 168 us against 183.
- ``reuse_ufunc`` / ``_unary_into`` / ``_binary_into``: an elementwise op whose
  rules do not read an input (``exp`` saves its output; ``add``, ``sub`` save
  nothing) writes its result into that input's array when the input is a
  temporary: a non-leaf Tensor that only the calling expression holds (its
  reference count, calibrated at import through these very call paths, and
  the caller's instruction: a plain one-argument call, or a binary operator),
  whose array nothing else holds (no node saved it, no view, no ``.numpy()``),
  as numpy does for its own temporaries. Peak memory of the forward pass of
  sum(sin(x)*x + exp(-x*x)) at n = 10^7 (bench/engine.py, third figure): 5.0x
  the input (the copy included) instead of 6.0x, so value and gradient peak at
  5.0x. The temporary's Tensor is left holding ``REUSED``, which raises on any
  use: if a caller held it after all without a reference (C code passing a
  borrowed one), it gets an error, never the new values. Cost on the scalar
  chain (first figure), under callgrind with the cyclic collector off: 19,109
  instructions per op against 18,911 before (+1.0%, the tests in the hot
  paths); too little for the wall clock of a shared machine to show.
"""

from __future__ import annotations

import math
import operator
import sys
from typing import TYPE_CHECKING

import numpy as np

from . import graph
from .graph import Meta, Node
from .tensor import Tensor, get_default_dtype

if TYPE_CHECKING:
    from .op import Op

_new = object.__new__
# Types whose shape is () without asking (a numpy scalar builds a tuple per .shape).
_SCALARS = frozenset({float, int, bool, np.float64, np.float32, np.float16, np.int64,
                      np.int32, np.bool_, np.complex128})
_next_seq = graph._SEQ.__next__
_NDARRAY = np.ndarray


def op_call(o: Op, *args, **kwargs):
    """``Op.__call__``: for one Tensor argument and no options (the hot path),
    ``apply`` unrolled in this very frame; anything else goes to ``Op.call``."""
    if kwargs or len(args) != 1 or type(args[0]) is not Tensor or o.nin != 1 \
            or not o.fast_call:
        return o.call(*args, **kwargs)
    x = args[0]
    d = x._data
    try:
        if o.reuse is None or type(d) is not _NDARRAY or d.size < REUSE_MIN:
            out = o.run(d)
        else:
            out = _unary_into(o, x, d)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise type(exc)(f"{o.name}: {exc}") from exc
    t = _new(Tensor)  # Tensor._make, inlined
    t._data = out
    t.grad = t._pending = None
    if not (x.requires_grad and o.differentiable and graph.MODE.enabled):
        # (an int or bool input, never requiring grad, comes this way)
        if type(out) is not type(d) or (type(out) is _NDARRAY and out.dtype is not d.dtype):
            t._data = _torch_dtype(o, d, out)
        t._grad_fn = None
        t.requires_grad = False
        return t
    saves = o.saves
    shapes = (() if type(d) in _SCALARS else d.shape,)
    node = _new(Node)  # Node(...), field by field: no __init__ frame here
    node.seq = _next_seq()
    node.op = o
    node.p0 = x._grad_fn or x
    node.p1 = node.x1 = None
    if saves == "inputs" or saves == "both":
        node.x0 = d
    else:
        node.x0 = Meta(d.shape, d.dtype) if saves == "shape" else None
    node.out = out if saves == "out" or saves == "both" else None
    node.shapes = graph._INTERNED.get(shapes) or graph.interned(shapes)
    node.params = _EMPTY
    node.freed = False
    node._pending = None
    if graph.MODE.keep_args:
        node.args = (x,)
    t._grad_fn = node
    t.requires_grad = True
    return t


def _torch_dtype(o: Op, d, out):
    """PyTorch's result where numpy's changed the dtype: an integer or bool
    input computes in the default float dtype (numpy: float64, and float16 for
    bool, where sin(True) is 0.8413 against 0.84147); other changes stand."""
    dt, ot = getattr(d, "dtype", None), getattr(out, "dtype", None)
    if dt is None or ot is None or dt.kind not in "biu" or ot.kind != "f":
        return out
    default = get_default_dtype()
    return out if ot == default else o.run(np.asarray(d, dtype=default))


# Set by torch_api: PyTorch's promotion for two Tensors of different dtypes,
# promote(a, b) -> (a, b) cast to one dtype, or None where numpy's promotion is
# PyTorch's; checked inside the operator (no extra frame per call). Its second
# entry, result(a, other, out, name), runs for arithmetic whose result's dtype is
# not the Tensor's (an int tensor / 3, times 0.5; a float32 one times a numpy
# float64 scalar or 0-d array): operands cast to PyTorch's result dtype, or None.
_PROMOTE: list = []
_ARITHMETIC = frozenset(("add", "sub", "mul", "div", "pow"))


def _binary(o: Op):
    """Operator methods: ``apply`` unrolled for two arguments (the hot path),
    as ``(forward, reflected)``: ``a op b`` and ``b op a`` with ``a`` the Tensor."""
    fwd = o.run
    reuse = o.reuse
    nd = np.ndarray
    scalars = _SCALARS
    mode = graph.MODE
    record = o.differentiable
    save_inputs = o.saves in ("inputs", "both")
    save_out = o.saves == "both"
    new = object.__new__
    shared = graph._INTERNED
    interned = graph.interned
    next_seq = graph._SEQ.__next__
    promotes = o.name in _ARITHMETIC
    numbers = interned(((), ()))  # the input shapes of two numbers

    def make(reflected: bool):
        def method(self, other):
            sd = self._data
            to = type(other)
            if to is Tensor:
                od = other._data
                # (two numpy scalars of one type have one dtype: no .dtype read)
                if ((type(od) is not type(sd) or type(od) is nd)
                        and od.dtype is not sd.dtype and _PROMOTE):
                    cast = _PROMOTE[0](self, other)
                    if cast is not None:  # (now of one dtype: no second pass here)
                        return method(*cast)
                po = (other._grad_fn or other) if other.requires_grad else None
            elif to is list or to is tuple:
                from .op import _sequence

                other = _sequence(other)  # Tensors inside: stacked, recorded
                return method(self, other)  # (an array, or a Tensor if any was one)
            else:
                od = other
                po = None
            if reflected:
                ad, bd = od, sd
            else:
                ad, bd = sd, od
            try:
                if type(ad) in scalars and type(bd) in scalars:  # two numbers
                    out = fwd(ad, bd)
                    # (a numpy scalar's dtype changes with its type)
                    changed = type(out) is not type(sd)
                    shapes = numbers
                else:
                    if reuse is None:
                        out = fwd(ad, bd)
                    else:  # (the calibration counts sd, ad and bd)
                        out = _binary_into(reuse, fwd, other if reflected else self,
                                           self if reflected else other, ad, bd)
                    changed = getattr(out, "dtype", None) is not sd.dtype
                    shapes = (() if type(ad) in scalars else getattr(ad, "shape", ()),
                              () if type(bd) in scalars else getattr(bd, "shape", ()))
                    shapes = shared.get(shapes) or interned(shapes)
            except ValueError as exc:
                raise ValueError(f"{o.name}: {exc}") from exc
            if changed and promotes and _PROMOTE:  # PyTorch's result dtype, if not numpy's
                cast = _PROMOTE[1](self, other, out, o.name)
                if cast is not None:
                    return method(*cast)
            t = new(Tensor)  # Tensor._make, inlined: this runs once per operator
            t._data = out
            t.grad = t._pending = None
            if not ((self.requires_grad or po is not None) and record and mode.enabled):
                t._grad_fn = None
                t.requires_grad = False
                return t
            ps = (self._grad_fn or self) if self.requires_grad else None
            n = new(Node)  # Node(...), field by field: no __init__ frame here
            n.seq = next_seq()
            n.op = o
            if reflected:
                n.p0, n.p1 = po, ps
            else:
                n.p0, n.p1 = ps, po
            if save_inputs:
                n.x0 = ad
                n.x1 = bd
            else:
                n.x0 = n.x1 = None
            n.out = out if save_out else None
            n.shapes = shapes
            n.params = _EMPTY
            n.freed = False
            n._pending = None
            if mode.keep_args:
                n.args = (other, self) if reflected else (self, other)
            t._grad_fn = n
            t.requires_grad = True
            return t

        return method

    return make(False), make(True)


_EMPTY: dict = {}


# Arrays from this many elements up are reused in place where the walk may
# (numpy's own cut-off for reusing temporaries is 256 KiB).
INPLACE_MIN = 1 << 15


def scaled(g, d, d_fresh: bool, g_free: bool):
    """``g * d`` for arrays, without a new allocation where one can be saved.

    ``d`` itself when ``g`` is the all-ones cotangent that ``sum`` sends down
    (one number broadcast, every stride 0); else written into ``d`` when the
    rule just made it (``d_fresh``), or into ``g`` when nothing else holds it
    (``g_free``); else a new array. The result has ``g * d``'s values and
    dtype in every case.
    """
    if type(g) is not np.ndarray or g.size < INPLACE_MIN:
        return g * d
    if type(d) is np.ndarray and d.shape == g.shape:
        if not any(g.strides) and d.dtype == g.dtype and g.flat[0] == 1:
            return d
        if d_fresh and d.flags.owndata and np.result_type(g, d) == d.dtype:
            return np.multiply(d, g, out=d)
    if g_free and np.result_type(g, d) == g.dtype and np.broadcast_shapes(
            g.shape, np.shape(d)) == g.shape:
        return np.multiply(g, d, out=g)
    return g * d


def subtracted(acc, g) -> bool:
    """``acc -= g`` in place, if that gives ``acc + (-g)`` exactly (same shape
    and dtype): a pass and an array fewer than negating first. False if not done."""
    if acc.shape != g.shape or np.result_type(acc, g) != acc.dtype:
        return False
    np.subtract(acc, g, out=acc)
    return True


# -- reference counts ---------------------------------------------------------------
# An array held by one local variable of its caller shows this count inside a
# function it is passed to (``_count``, and ``reusable`` alike; calibrated here,
# so that an interpreter counting otherwise only turns the reuse off): the
# caller's variable, the parameter, getrefcount's own argument.
_refcount = sys.getrefcount


def _count(a) -> int:
    return _refcount(a)


def _calibrate() -> int:
    a = np.empty(1)
    alone = _count(a)
    held = [a]
    if _count(a) != alone + 1 or sys.implementation.name != "cpython":
        return -1  # counts that do not see every holder: never reuse
    del held
    return alone


_ALONE = _calibrate()


def reusable(g, guarded: bool, hook, shared: bool) -> bool:
    """Whether the walk's gradient ``g`` (held by one local variable of the
    walk, nothing else) may be overwritten by the last rule that reads it.

    Nothing else means no node's saved values, no output Tensor the user may
    still read, no view, no hook: every such holder is a reference. Not for
    a guarded rule (the guard reads ``g`` afterwards) or a captured ``g``.
    """
    return (type(g) is np.ndarray and g.size >= INPLACE_MIN and not guarded
            and hook is None and not shared and g.flags.owndata and g.flags.writeable
            and _refcount(g) == _ALONE)


# -- freed memory kept for reuse ----------------------------------------------------
# A value and gradient of mid-sized arrays allocates and frees several of them
# per call (the output, each operand's gradient, a cotangent in memory). glibc
# hands memory back to the system as soon as more than twice its current mmap
# threshold lies free at the top of its heap (for 2 MB arrays: 4 MB), so the
# next call gets fresh pages and pays a page fault per 4 kB: sum(einsum(A, B))
# and its gradient at 500x500 (bench/forward.py) took 3 such arrays a call,
# about 0.7 ms each on the test machine, a sixth of the time (3.6x numpy's
# forward instead of 3.1x). Fixed at the ceiling glibc's own adaptive rule
# reaches (an mmap threshold of 32 MB, its trim threshold twice that), freed
# memory stays for the next call; arrays of 32 MB and more are mapped and
# unmapped as before. GRADCLI_MALLOC=default leaves glibc's settings alone.
_MMAP_MAX = 32 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def keep_freed_memory() -> bool:
    """Set glibc's malloc thresholds as above; whether they were set (not
    Linux with glibc, or GRADCLI_MALLOC=default: nothing is done)."""
    import os

    if sys.platform != "linux" or os.environ.get("GRADCLI_MALLOC") == "default":
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return False
        import ctypes  # (numpy has imported it already)

        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):  # musl, a static build, ...
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return (mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX) == 1
            and mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_MAX) == 1)


keep_freed_memory()


# -- the identity seed of a Jacobian's rows, kept diagonal -----------------------------
class Diag:
    """A batch of cotangents ``diag(d)``: row ``b`` is ``d``'s element ``b`` times
    the ``b``-th unit array of a node's output (of ``d``'s shape, ``m`` elements);
    the identity (``d`` all ones) is the seed of a Jacobian's or a Hessian's rows.
    The walk keeps it as ``d`` while the rules it meets keep it diagonal
    (``diag_vjp``), instead of multiplying an ``(m,) + shape`` array that is
    nearly all zeros through them. It is kept only while every rule keeps the
    zeros off the diagonal zero (0 times a finite local derivative); then
    ``dense()`` gives the dense batch's values (a zero's sign aside:
    ``-0.0 == 0.0``). Never changed in place.
    """

    __slots__ = ("d", "shape")
    __array_ufunc__ = None  # ``array + Diag``: numpy defers to ``__radd__``

    def __init__(self, d: np.ndarray) -> None:
        self.d = d
        self.shape = (d.size,) + d.shape

    def dense(self) -> np.ndarray:
        m = self.d.size
        out = np.zeros(self.shape, dtype=self.d.dtype)
        out.reshape(m * m)[:: m + 1] = self.d.reshape(m)
        return out

    def __add__(self, other):
        if type(other) is Diag:
            return Diag(self.d + other.d)
        other = np.asarray(other)
        if other.shape != self.shape or other.dtype != np.result_type(other, self.d):
            return self.dense() + other
        out = np.array(other, order="C")  # other + diag(d): d added on the diagonal
        m = self.d.size
        diagonal = out.reshape(m * m)[:: m + 1]
        np.add(diagonal, self.d.reshape(m), out=diagonal)
        return out

    __radd__ = __add__  # (addition commutes, also in floating point)


def _diagonal_row(vec, d, shape, zeros_off: bool = False):
    """A rule's gradient ``vec`` (of ``d``'s shape, for the one cotangent ``d``)
    as the gradient of the batch ``diag(d)`` for an input of ``shape``, or None
    (to be done densely). For an input broadcast from a scalar the dense walk
    sums each row, whose one entry that is not a zero is ``vec``'s.
    ``zeros_off``: the caller knows the dense rule keeps the zeros off the
    diagonal zero (a finite local derivative); else ``vec`` must be finite
    (where the rule turns a zero into inf or nan, it does so to ``d`` too)."""
    if type(vec) is not np.ndarray or vec.shape != d.shape:
        return None
    if not zeros_off and not np.isfinite(vec).all():
        return None  # (a zero times an inf off the diagonal: nan there)
    if shape == vec.shape:
        return Diag(vec)
    if shape == ():
        return np.array(vec.reshape(vec.size))  # (a copy: vec may be d itself)
    return None


def diag_vjp(op, i: int, g: Diag, out, inputs, shapes, params):
    """Input ``i``'s gradient of the batch ``g`` through an op, without the dense
    batch: a Diag, an array, or None where it must be done densely.

    An elementwise rule is linear in ``g`` entry by entry, so run on ``d`` (one
    cotangent) it gives the diagonal of its dense answer: the same products,
    entry for entry. ``matmul``/``dot`` of a constant matrix and a vector:
    ``diag(d) @ a`` is ``d[:, None] * a``, the same products with zeros added.
    """
    d = g.d
    if op.elementwise:
        local = op.local
        if local is not None:
            kind, v = local[i]
            if kind == graph.CONST:  # (a finite number: zeros stay zeros)
                if v == 1 and shapes[i] == d.shape:
                    return g  # passed on as it is, as the dense batch is
                return _diagonal_row(d if v == 1 else d * v, d, shapes[i], True)
            loc = (inputs[v] if kind == graph.INPUT else out if kind == graph.OUT
                   else v(out, *inputs))
            if type(loc) is np.ndarray:
                if (loc.shape != () and loc.shape != d.shape
                        or not np.isfinite(loc).all()):
                    return None
            elif type(loc) is float or type(loc) is int:
                if not math.isfinite(loc):
                    return None
            elif np.shape(loc) != () or not np.isfinite(loc):
                return None
            # 0 * loc off the diagonal is a zero: d * loc is all that is left
            return _diagonal_row(d * loc, d, shapes[i], True)
        elif op.multi or op.takes_lead or op.vjps[i] is None:
            return None
        else:
            vec = op.vjps[i](d, out, *inputs, **params)
        return _diagonal_row(vec, d, shapes[i])
    if (op.name == "matmul" or op.name == "dot") and not params and d.ndim == 1:
        a, b = inputs
        other = a if i == 1 else b
        if (type(other) is not np.ndarray or other.ndim != 2
                or other.dtype.kind != "f" or shapes[i] != (other.shape[i],)):
            return None
        with np.errstate(all="ignore"):
            # diag(d) @ a (d against a's rows), or, for x @ b, diag(d) @ b.T
            gx = d[:, None] * (a if i == 1 else b.T)
            if not np.isfinite(np.sum(gx)):
                return None  # (an inf or nan in the matrix: the dense product's nan)
        return gx
    return None


# -- results written into temporaries -------------------------------------------------
# Inputs from this many elements up may receive the result (tests set it high to
# compute the plain way for comparison).
REUSE_MIN = INPLACE_MIN

# The ufunc that computes an op's forward into an operand (``out=``), for the
# operators' fast twins; an op whose twin is a ufunc itself uses it.
_AS_UFUNC = {operator.add: np.add, operator.sub: np.subtract, operator.neg: np.negative}


def reuse_ufunc(o: Op):
    """The ufunc with which ``o`` may write its result into a temporary input,
    or None: only an elementwise op whose rules read no input (so no node keeps
    that array) and whose forward is that ufunc, one output, no core dims."""
    if not o.elementwise or o.saves in ("inputs", "both") or o.nin not in (1, 2):
        return None
    f = o.run if isinstance(o.run, np.ufunc) else _AS_UFUNC.get(o.run)
    if f is None or f.nin != o.nin or f.nout != 1 or f.signature is not None:
        return None
    return f


class _Reused:
    """What a Tensor whose array became the next op's result holds instead:
    every use raises (numpy's too), so that a holder nobody counted (C code
    passing a borrowed reference) gets an error, never the new values."""

    __slots__ = ()
    __array_ufunc__ = None  # numpy's ufuncs refuse it
    __hash__ = None  # type: ignore[assignment]

    def _fail(self, *args, **kwargs):
        raise RuntimeError(
            "internal error: this Tensor's memory was reused for the result of the "
            "next op, as it looked like a temporary nothing else held; please report "
            "how it was reached (the values are gone)")

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            # (introspection, e.g. doctest's and inspect's: no such attribute)
            raise AttributeError(name)
        self._fail()

    __array__ = __array_function__ = _fail
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail  # type: ignore
    __bool__ = __len__ = __iter__ = __getitem__ = __contains__ = _fail
    __float__ = __int__ = __index__ = __complex__ = _fail

    def __repr__(self) -> str:
        return "<memory reused by gradcli>"


REUSED = _Reused()

# Calibrated by ``calibrate_reuse`` (ops/__init__.py, once the ops exist): the
# reference counts that a temporary Tensor and its array show inside
# ``_held_here`` when reached from the caller's expression through
# ``Op.__call__`` (``op_call``) -> ``_unary_into`` (index 0) or through an
# operator method -> ``_binary_into``, two Tensors (1) or a Tensor and a constant
# (2); -1: never reuse.
_TEMP = [-1, -1, -1]
_ARRAY_ALONE = [-1, -1, -1]
_PROBE: list | None = None  # while calibrating: what _held_here saw
_RETAINED: list = []  # set by torch_api: its dict of retain_grad()ed non-leaves


def _held_here(t, d, kind: int) -> bool:
    """Whether Tensor ``t`` and its array ``d`` are held by the calling
    expression only (no variable, container, attribute, node, view or alias)."""
    nt = _refcount(t)
    nd = _refcount(d)
    if _PROBE is not None:
        _PROBE.append((kind, nt, nd))
        return False
    return (nt == _TEMP[kind] and nd == _ARRAY_ALONE[kind] and type(t) is Tensor
            and t._grad_fn is not None and t.grad is None and d.flags.owndata
            and d.flags.writeable and not graph.MODE.keep_args
            and not (_RETAINED and id(t._grad_fn) in _RETAINED[0]))


# Per code object: what the instruction at each offset is, "call1" (a call with
# one positional argument, no keywords) or "binop" (a binary operator).
_SITES: dict = {}
_CALLS = ("CALL", "CALL_FUNCTION", "CALL_METHOD")
_BINOPS = ("BINARY_OP", "BINARY_ADD", "BINARY_SUBTRACT", "BINARY_MULTIPLY",
           "BINARY_TRUE_DIVIDE", "BINARY_POWER", "BINARY_MATRIX_MULTIPLY")


def _kinds(code) -> dict:
    import dis  # (first needed here: an array big enough to reuse)

    kinds = {}
    before = None
    for ins in dis.get_instructions(code):
        if ins.opname in _BINOPS:
            kinds[ins.offset] = "binop"
        elif ins.opname in _CALLS and ins.arg == 1 and before != "KW_NAMES":
            kinds[ins.offset] = "call1"
        if ins.opname not in ("PRECALL", "CACHE"):
            before = ins.opname
    return kinds


def _site(frame) -> str:
    """What the instruction running in ``frame`` is: a temporary's only
    holder is that instruction's operand, so only these two kinds pass (not
    ``p()`` of a ``functools.partial`` holding it, nor a ``key=`` call)."""
    code = frame.f_code
    kinds = _SITES.get(code)
    if kinds is None:
        if len(_SITES) > 1024:
            _SITES.clear()
        kinds = _SITES[code] = _kinds(code)
    return kinds.get(frame.f_lasti, "")


def _unary_into(o: Op, x: Tensor, d):
    """``o.run(d)``, computed into ``d`` itself when ``x`` is a temporary."""
    site = _site(sys._getframe(2))  # the caller of Op.__call__
    if _PROBE is not None:
        _PROBE.append(site)
    if site == "call1" and _held_here(x, d, 0):
        x._data = REUSED
        try:
            return o.reuse(d, out=d, casting="no")  # no cast: the result's dtype is d's
        except TypeError:
            x._data = d  # nothing written
    return o.run(d)


def _fits(d, other) -> bool:
    """Whether ``d`` op ``other`` has ``d``'s shape (shapes that do not
    broadcast: False, and the plain path raises its usual error)."""
    if type(other) is not np.ndarray or other.shape == d.shape:
        return True
    try:
        return np.broadcast_shapes(d.shape, other.shape) == d.shape
    except ValueError:
        return False


def _binary_into(ufunc, fwd, a, b, ad, bd):
    """``fwd(ad, bd)``, computed into ``ad`` or ``bd`` when its Tensor is a
    temporary and the result has its shape (and, by ``casting="no"``, dtype)."""
    site = _site(sys._getframe(2))  # the caller of the operator method
    if _PROBE is not None:
        _PROBE.append(site)
    if site != "binop":
        return fwd(ad, bd)
    kind = 1 if type(a) is Tensor and type(b) is Tensor else 2  # (their counts differ)
    if (type(ad) is np.ndarray and ad.size >= REUSE_MIN and _fits(ad, bd)
            and _held_here(a, ad, kind)):
        t, d = a, ad
    elif (type(bd) is np.ndarray and bd.size >= REUSE_MIN and _fits(bd, ad)
            and _held_here(b, bd, kind)):
        t, d = b, bd
    else:
        return fwd(ad, bd)
    t._data = REUSED
    try:
        return ufunc(ad, bd, out=d, casting="no")
    except TypeError:
        t._data = d  # nothing written
    return fwd(ad, bd)


def _probe(exp, x) -> None:
    """The calls ``calibrate_reuse`` watches (each line one kind of caller)."""
    exp(x * 1.0)  # a temporary
    held = x * 1.0
    exp(held)  # held by a variable: one reference more
    [x * 1.0, x * 1.0].sort(key=exp)  # key=: not a plain call
    (x * 1.0) + (x * 1.0)  # two temporaries
    held + (x * 1.0)
    (x * 1.0) + 1.0
    1.0 + (x * 1.0)
    held.add(x * 1.0)  # a method call: not an operator


def calibrate_reuse() -> None:
    """Watch ``_probe``'s calls through the real paths and keep the counts a
    temporary shows, if this interpreter tells it from a held Tensor by one
    reference and the call sites read as expected; otherwise never reuse."""
    global _PROBE, REUSE_MIN
    from .op import OPS

    _TEMP[:] = _ARRAY_ALONE[:] = [-1, -1, -1]
    # 3.14 may push a variable's value without a reference of its own (as the
    # probe may not show everywhere); free-threaded builds count in two places.
    if (sys.implementation.name != "cpython" or sys.version_info >= (3, 14)
            or not hasattr(sys, "_getframe")
            or not getattr(sys, "_is_gil_enabled", lambda: True)()):
        return
    mode = graph.MODE
    saved = (REUSE_MIN, mode.enabled, mode.keep_args)
    x = Tensor(np.ones(1), requires_grad=True)
    _PROBE, REUSE_MIN, mode.enabled, mode.keep_args = [], 0, True, False
    try:
        _probe(OPS["exp"], x)
        seen = _PROBE
    finally:
        _PROBE = None
        REUSE_MIN, mode.enabled, mode.keep_args = saved
    if len(seen) < 16 or not all(type(seen[i]) is tuple for i in (1, 7, 13)):
        return
    t, a = seen[1][1:]
    t2, a2 = seen[7][1:]
    t3, a3 = seen[13][1:]
    u, b, c = (0, t, a), (1, t2, a2), (2, t3, a3)
    expected = ["call1", u, "call1", (0, t + 1, a), "", "",
                "binop", b, b,
                "binop", (1, t2 + 1, a2), b,
                "binop", c,
                "binop", c,
                ""]
    if seen == expected and min(t, t2, t3) > 1:
        _TEMP[:] = [t, t2, t3]
        _ARRAY_ALONE[:] = [a, a2, a3]
