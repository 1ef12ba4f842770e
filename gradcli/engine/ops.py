"""Every differentiable op: forward and vector-Jacobian products side by side.

The VJP contract, stated once: ``vjp(g, out, *inputs, **params)`` receives the
gradient ``g`` arriving at the output, the forward result ``out`` and the op's
inputs, and returns the gradient for one input *as if nothing broadcast*; the
engine sums broadcast axes back (``broadcast.unbroadcast``). What a rule reads
is declared in ``saves`` so the graph keeps nothing else alive:
``inputs``, ``out``, ``both``, ``shape`` (only shapes and dtypes) or ``none``.

An elementwise op may instead declare its local derivative per input
(``local=``: a number, another input, the output, or a function making a new
array); its VJPs ``g * derivative`` are made from that, and the engine's walk
does the multiplication itself, reusing buffers on large arrays
(``graph.scaled``).

Rules are written with numpy's own names (``np.cos(x)``, ``np.sum``, ``@``). On
the fast path they run on ndarrays; with ``create_graph=True`` the same rules run
on Tensors, whose ``__array_ufunc__``/``__array_function__`` send those names back
here, so the backward pass is recorded and can be differentiated again.

One registry, ``OPS``, feeds the Python API (functions, Tensor methods and
operators), numpy interop, the expression language, ``gradcli ops`` and the
tests. An op with ``expr=False`` is internal (indexing machinery). ``guard`` marks
rules whose local derivative can be inf or nan at finite points (see
``graph.run_backward``).
"""

from __future__ import annotations

import inspect
import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import graph
from .graph import Meta, Node
from .tensor import Tensor

REALS = (-3.0, 3.0)
POSITIVE = (0.2, 3.0)
UNIT = (-0.9, 0.9)


@dataclass(eq=False)
class Op:
    """One entry of the registry. Call it like the numpy function it mirrors."""

    name: str
    forward: Callable
    vjps: tuple
    grad_fn: str
    nin: int  # tensor inputs; -1: one sequence of tensors
    params: tuple[str, ...]  # keyword-only, non-differentiable options
    defaults: dict[str, Any]
    saves: str
    rule: str  # the derivative, for `gradcli ops` and docs
    kink: str  # the convention where the derivative is undefined
    # sympy form: SAME (the forward runs on object arrays of symbols), an
    # elementwise callable sym(sp, *elements), ("array", fn) with fn(sp, *arrays,
    # **params) on whole object arrays, or None (no form: the check says so)
    sym: Any
    domain: tuple  # sampling range per input, for the tests
    guard: bool
    multi: bool  # one rule returns the gradients of all inputs
    expr: bool
    differentiable: bool
    extra: dict = field(default_factory=dict)
    masks: bool = False  # its gradient has structural zeros (see graph.run_backward)
    run: Callable | None = None  # what computes the forward: ``forward`` or a C twin
    elementwise: bool = False  # output element i depends on input elements i only
    # Elementwise ops may declare their local derivative instead of VJPs: per
    # input, (graph.CONST, c), (graph.INPUT, i), (graph.OUT, None) or
    # (graph.FRESH, f) with f(out, *inputs). The VJPs g * derivative are made
    # from it, and the engine's walk multiplies by g itself, in place when it may.
    local: tuple | None = None
    composite: bool = False  # defined by other ops (extra["composite"] computes it)
    takes_lead: bool = False  # its rules reshape or index: they get ``lead=``

    @property
    def nreq(self) -> int:
        return max(self.nin, 0)

    def signature(self) -> str:
        names = list(inspect.signature(self.forward).parameters)
        args = names[: max(self.nin, 1)]
        opts = [
            p if self.defaults[p] is inspect.Parameter.empty else f"{p}={self.defaults[p]!r}"
            for p in self.params
        ]
        return f"{self.name}({', '.join(args + opts)})"

    def __call__(self, *args, **kwargs):
        if not kwargs and len(args) == self.nin and not self.composite:
            if self.nin == 1 and type(args[0]) is Tensor:
                return _unary(self, args[0])
            return apply(self, *args)
        n = 1 if self.nin < 0 else self.nin
        if len(args) > n:
            extra = args[n:]
            if len(extra) > len(self.params):
                raise TypeError(f"{self.signature()} takes at most {n + len(self.params)} arguments")
            for k, v in zip(self.params, extra):
                if k in kwargs:
                    raise TypeError(f"{self.name}() got multiple values for {k!r}")
                kwargs[k] = v
            args = args[:n]
        elif len(args) < n:
            raise TypeError(f"{self.signature()} needs {n} tensor argument(s), got {len(args)}")
        for alias, real in (("dim", "axis"), ("keepdim", "keepdims")):
            if alias in kwargs and real in self.params and real not in kwargs:
                kwargs[real] = kwargs.pop(alias)
        for k in kwargs:
            if k not in self.params:
                raise TypeError(f"{self.signature()} got an unexpected keyword {k!r}")
        composite = self.extra.get("composite")
        if composite is not None:
            return composite(*args, **kwargs)
        return apply(self, *args, **kwargs)

    def kink_at(self, arrays, params) -> str | None:
        """The kink convention in force if ``arrays`` sit on this op's kink.

        For a comparison, a tie: the branches of a ``where`` meet there.
        """
        try:
            if self.name in _EXPR_PREDICATES:
                tie = np.any(np.asarray(arrays[0]) == np.asarray(arrays[1]))
                return "a tie in a where() condition, where the branches meet" if tie else None
            test = self.extra.get("at_kink")
            return self.kink if test is not None and np.any(test(*arrays, **params)) else None
        except (ValueError, TypeError, IndexError):  # a kink test never breaks a result
            return None

    def __repr__(self) -> str:
        return f"<op {self.signature()}>"


OPS: dict[str, Op] = {}
NUMPY: dict[Any, Op] = {}  # numpy ufunc or function -> op, for __array_*__
SAME = "same"  # sympy form: the forward itself runs on object arrays of symbols


def op(*vjps, grad_fn: str, saves: str = "inputs", rule: str = "", kink: str = "",
       sym=None, domain=None, guard: bool = False, multi: bool = False,
       expr: bool = True, numpy=(), nin: int | None = None, name: str | None = None,
       at_kink=None, local=None, takes_lead: bool = False):
    """Register ``forward`` with its rules; returns the callable ``Op``.

    ``at_kink(*inputs, **params)`` says where the inputs sit on the kink that
    ``kink`` describes, so a gradient taken there can be reported.

    An elementwise op may give ``local`` instead of VJPs: per input, its local
    derivative as a number, the name of an input, ``"out"``, or a function
    ``f(out, *inputs)`` that returns a new array.
    """

    def deco(forward):
        # The code object, not inspect.signature: this runs at every start-up.
        code = forward.__code__
        names = code.co_varnames
        nonlocal vjps
        spec = None
        if local is not None:
            spec = tuple(_local_spec(d, names[: code.co_argcount]) for d in local)
            vjps = tuple(_local_vjp(*k) for k in spec)
        kwdefaults = forward.__kwdefaults__ or {}
        kw = {
            k: kwdefaults.get(k, inspect.Parameter.empty)
            for k in names[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
        }
        n = code.co_argcount if nin is None else nin
        o = Op(
            name=name or forward.__name__.rstrip("_"),
            forward=forward,
            vjps=vjps,
            grad_fn=grad_fn,
            nin=n,
            params=tuple(kw),
            defaults=kw,
            saves=saves,
            rule=rule,
            kink=kink,
            sym=sym,
            domain=domain if domain is not None else (REALS,) * max(n, 1),
            guard=guard,
            multi=multi,
            expr=expr,
            differentiable=bool(vjps),
            local=spec,
            takes_lead=takes_lead,
        )
        o.run = _axis_checked(forward) if "axis" in kw and n >= 0 else forward
        if at_kink is not None:
            o.extra["at_kink"] = at_kink
        OPS[o.name] = o
        for f in numpy:
            NUMPY[f] = o
        return o

    return deco


def _local_spec(d, names) -> tuple:
    """One entry of ``local=`` as the (kind, value) pair the engine reads."""
    if isinstance(d, (int, float)):
        return (graph.CONST, d)
    if d == "out":
        return (graph.OUT, None)
    if isinstance(d, str):
        return (graph.INPUT, names.index(d))
    return (graph.FRESH, d)


def _local_vjp(kind, v):
    """The VJP ``g * derivative`` of one ``local=`` entry (what create_graph runs)."""
    if kind == graph.CONST:
        if v == 1:
            return lambda g, out, *xs: g
        return (lambda g, out, *xs: -g) if v == -1 else (lambda g, out, *xs: g * v)
    if kind == graph.INPUT:
        return lambda g, out, *xs: _times(g, xs[v])
    if kind == graph.OUT:
        return lambda g, out, *xs: _times(g, out)
    return lambda g, out, *xs: _times(g, v(out, *xs))


# -- the engine's one entry point for every op ----------------------------------
_NONES = [(None,) * n for n in range(8)]


def _shape(x) -> tuple[int, ...]:
    if type(x) is float or type(x) is int:
        return ()
    shape = getattr(x, "shape", None)
    return shape if shape is not None else np.shape(x)


def _record(o: Op, args, arrays, out, params) -> Tensor:
    """Wrap ``out`` in a Tensor whose grad_fn remembers what ``o``'s rules need."""
    shapes = graph.interned(tuple([_shape(d) for d in arrays]))
    saves = o.saves
    if saves == "inputs" or saves == "both":
        saved = tuple(arrays)
    elif saves == "shape":
        saved = tuple(Meta(sh, getattr(d, "dtype", None)) for sh, d in zip(shapes, arrays))
    else:
        n = len(args)
        saved = _NONES[n] if n < 8 else (None,) * n
    keep_out = out if saves == "out" or saves == "both" else None
    node = Node(o, graph.edges(args), saved, keep_out, shapes, params)
    if graph.MODE.keep_args:
        node.args = tuple(args)
    return Tensor._make(out, node)


def _unary(o: Op, x: Tensor) -> Tensor:
    """``apply`` unrolled for one Tensor argument and no options (the hot path)."""
    d = x._data
    try:
        out = o.run(d)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise type(exc)(f"{o.name}: {exc}") from exc
    t = _new(Tensor)  # Tensor._make, inlined
    t._data = out
    t.grad = t._pending = None
    if not (x.requires_grad and o.differentiable and graph.MODE.enabled):
        t.grad_fn = None
        t.requires_grad = False
        return t
    saves = o.saves
    shapes = (() if type(d) in _SCALARS else d.shape,)
    node = _new(Node)  # Node(...), field by field: no __init__ frame on the hot path
    node.seq = _next_seq()
    node.op = o
    node.p0 = x.grad_fn or x
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
    t.grad_fn = node
    t.requires_grad = True
    return t


_new = object.__new__
# Types whose shape is () without asking (a numpy scalar builds a tuple per .shape).
_SCALARS = frozenset({float, int, bool, np.float64, np.float32, np.float16, np.int64,
                      np.int32, np.bool_, np.complex128})
_next_seq = graph._SEQ.__next__


def apply(o: Op, *args, **params) -> Tensor:
    """Run ``o`` forward on the arrays of ``args``; record a Node if needed."""
    if o.nin < 0:
        args = tuple(args[0])
    rg = False
    arrays = []
    if any(type(a) is list or type(a) is tuple for a in args):
        # Sequences are constants: rules read .ndim and .shape of what they save.
        args = tuple(np.asarray(a) if type(a) is list or type(a) is tuple else a
                     for a in args)
    for a in args:
        if type(a) is Tensor:
            arrays.append(a._data)
            if a.requires_grad:
                rg = True
        else:
            arrays.append(a)
    try:
        out = o.run(arrays, **params) if o.nin < 0 else o.run(*arrays, **params)
    except (ValueError, IndexError, np.linalg.LinAlgError) as exc:
        raise type(exc)(f"{o.name}: {exc}") from exc
    if type(out) is float or type(out) is int or type(out) is bool:
        out = np.asarray(out)  # all arguments were Python numbers
    if rg and o.differentiable and graph.MODE.enabled:
        return _record(o, args, arrays, out, params)
    return Tensor._make(out)


def _any(o: Op, *args, **params):
    """Run ``o`` on Tensors (recorded) or on plain arrays (its forward)."""
    if any(isinstance(a, Tensor) for a in args):
        return apply(o, *args, **params)
    return o.forward(*args, **params)


# -- helpers shared by the rules -------------------------------------------------
def _axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a sequence) as non-negative ints, checked."""
    if axis is None:
        return tuple(range(ndim))
    out = []
    for a in axis if isinstance(axis, (tuple, list)) else (axis,):
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for an array of dimension {ndim}")
        out.append(a % ndim)
    return tuple(out)


def _axis_checked(forward):
    """``forward`` refusing an axis the input does not have (numpy lets
    ``sum(x, axis=0)`` through for a 0-d x, and the rule would then fail)."""
    default = forward.__kwdefaults__["axis"]

    def run(x, *args, **params):
        _axes(params.get("axis", default), np.ndim(x))
        return forward(x, *args, **params)

    return run


def _expand(g, shape, axis, keepdims: bool):
    """Broadcast a reduction's gradient back over the reduced axes; whatever
    axes ``g`` has in front of the output's are batch axes, and kept."""
    red = _axes(axis, len(shape))
    gshape = np.shape(g)
    batch = gshape[: len(gshape) - len(shape) + (0 if keepdims else len(red))]
    if not keepdims:
        g = np.reshape(g, batch + tuple(1 if i in red else n for i, n in enumerate(shape)))
    return np.broadcast_to(g, batch + tuple(shape))


def _count(shape, axis) -> int:
    return math.prod(shape[i] for i in _axes(axis, len(shape)))


def _times(g, d):
    """``g * d``, where a ``g`` of all ones (what ``sum`` sends down: one number
    broadcast, every stride 0) gives ``d`` itself: a pass saved on large arrays.
    The engine never writes into a gradient that is an op's input or output."""
    if (type(g) is np.ndarray and g.ndim and not any(g.strides) and type(d) is np.ndarray
            and d.shape == g.shape and d.dtype == g.dtype and g.flat[0] == 1):
        return d
    return g * d


def _zeros(g, out, *inputs, **params):
    return np.zeros_like(g)


def _swap(a):
    """Swap the last two axes (matrix transpose of a stack)."""
    return np.swapaxes(a, -1, -2)


def _mm(a, b):
    """``a @ b``, with a stack against one matrix or vector folded into one
    product: numpy's matmul loops over the stack, one small product per matrix
    (what a Jacobian's or Hessian's batch of cotangents would cost)."""
    if type(a) is np.ndarray and type(b) is np.ndarray:
        if a.ndim > 2 and b.ndim <= 2:
            return np.tensordot(a, b, axes=1)
        if a.ndim <= 2 and b.ndim > 2:
            out = np.tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 2]))
            return np.moveaxis(out, 0, -2) if a.ndim == 2 else out
    return np.matmul(a, b)


# -- elementwise arithmetic --------------------------------------------------
@op(local=(1, 1), grad_fn="AddBackward0", saves="none", rule="d(a+b) = da + db", sym=SAME,
    numpy=(np.add,))
def add(a, b):
    return a + b


@op(local=(1, -1), grad_fn="SubBackward0", saves="none", rule="d(a-b) = da - db", sym=SAME,
    numpy=(np.subtract,))
def sub(a, b):
    return a - b


@op(local=("b", "a"), grad_fn="MulBackward0", rule="d(a*b) = b da + a db", sym=SAME, guard=True,
    numpy=(np.multiply,))
def mul(a, b):
    return a * b


@op(lambda g, out, a, b: g / b, lambda g, out, a, b: -g * a / (b * b),
    grad_fn="DivBackward0", rule="d(a/b) = da/b - a db/b^2", sym=SAME, guard=True,
    domain=(REALS, POSITIVE), numpy=(np.divide, np.true_divide))
def div(a, b):
    return a / b


@op(local=(-1,), grad_fn="NegBackward0", saves="none", rule="-dx", sym=SAME,
    numpy=(np.negative,))
def neg(x):
    return -x


def _pow_vjp_base(g, out, a, b):
    # x**0 is constant: its derivative is 0 everywhere, also at x == 0 (where
    # 0 * 0**-1 would be nan). Elsewhere b * a**(b-1) as is, so that its own
    # derivative in b (a second derivative) stays right at b == 0.
    if not isinstance(b, Tensor) and np.all(b != 0):  # a constant exponent: x**4
        return g * (b * a ** (b - 1))
    return g * (b * a ** np.where((b == 0) & (a == 0), 1.0, b - 1))


def _pow_vjp_exp(g, out, a, b):
    # d(a**b)/db = a**b log a; taken as 0 where a == 0 (the limit for b > 0).
    return g * np.where(a == 0, 0.0, out * np.log(np.where(a == 0, 1.0, a)))


@op(_pow_vjp_base, _pow_vjp_exp, grad_fn="PowBackward0", saves="both",
    rule="d(a**b) = b a**(b-1) da + a**b log(a) db",
    kink="x**0 has gradient 0 everywhere; d/db at a == 0 is 0",
    sym=SAME, guard=True, domain=(POSITIVE, (-2.0, 2.0)), numpy=(np.power,))
def pow_(a, b):
    return a**b


@op(lambda g, out, x: g * np.sign(x), grad_fn="AbsBackward0", rule="sign(x) dx",
    at_kink=lambda x: x == 0,
    kink="abs'(0) = 0", sym=lambda sp, x: sp.Abs(x), numpy=(np.absolute, np.abs))
def abs_(x):
    return np.abs(x)


@op(lambda g, out, x: g / (2 * out), grad_fn="SqrtBackward0", saves="out",
    rule="dx / (2 sqrt(x))", sym=lambda sp, x: sp.sqrt(x), guard=True,
    domain=(POSITIVE,), numpy=(np.sqrt,))
def sqrt(x):
    return np.sqrt(x)


@op(local=(lambda out, x: 2 * x,), grad_fn="PowBackward0", rule="2 x dx",
    sym=lambda sp, x: x**2, guard=True, numpy=(np.square,))
def square(x):
    return np.square(x)


@op(local=("out",), grad_fn="ExpBackward0", saves="out",
    rule="exp(x) dx",
    sym=lambda sp, x: sp.exp(x), guard=True, numpy=(np.exp,))
def exp(x):
    return np.exp(x)


@op(lambda g, out, x: g * (out + 1), grad_fn="Expm1Backward0", saves="out",
    rule="exp(x) dx", sym=lambda sp, x: sp.exp(x) - 1, guard=True, numpy=(np.expm1,))
def expm1(x):
    return np.expm1(x)


@op(lambda g, out, x: g / x, grad_fn="LogBackward0", rule="dx / x",
    sym=lambda sp, x: sp.log(x), guard=True, domain=(POSITIVE,), numpy=(np.log,))
def log(x):
    return np.log(x)


@op(lambda g, out, x: g / (1 + x), grad_fn="Log1PBackward0", rule="dx / (1 + x)",
    sym=lambda sp, x: sp.log(1 + x), guard=True, domain=((-0.8, 3.0),),
    numpy=(np.log1p,))
def log1p(x):
    return np.log1p(x)


@op(lambda g, out, x: g / (x * math.log(2.0)), grad_fn="Log2Backward0",
    rule="dx / (x ln 2)", sym=lambda sp, x: sp.log(x, 2), guard=True,
    domain=(POSITIVE,), numpy=(np.log2,))
def log2(x):
    return np.log2(x)


@op(lambda g, out, x: g / (x * math.log(10.0)), grad_fn="Log10Backward0",
    rule="dx / (x ln 10)", sym=lambda sp, x: sp.log(x, 10), guard=True,
    domain=(POSITIVE,), numpy=(np.log10,))
def log10(x):
    return np.log10(x)


# -- trigonometric and hyperbolic ---------------------------------------------
@op(local=(lambda out, x: np.cos(x),), grad_fn="SinBackward0", rule="cos(x) dx",
    sym=lambda sp, x: sp.sin(x), numpy=(np.sin,))
def sin(x):
    return np.sin(x)


@op(local=(lambda out, x: -np.sin(x),), grad_fn="CosBackward0", rule="-sin(x) dx",
    sym=lambda sp, x: sp.cos(x), numpy=(np.cos,))
def cos(x):
    return np.cos(x)


@op(lambda g, out, x: g * (1 + out * out), grad_fn="TanBackward0", saves="out",
    rule="(1 + tan(x)^2) dx", sym=lambda sp, x: sp.tan(x), guard=True,
    domain=((-1.2, 1.2),), numpy=(np.tan,))
def tan(x):
    return np.tan(x)


@op(lambda g, out, x: g / np.sqrt(1 - x * x), grad_fn="AsinBackward0",
    rule="dx / sqrt(1 - x^2)", sym=lambda sp, x: sp.asin(x), guard=True,
    domain=(UNIT,), numpy=(np.arcsin,))
def arcsin(x):
    return np.arcsin(x)


@op(lambda g, out, x: -g / np.sqrt(1 - x * x), grad_fn="AcosBackward0",
    rule="-dx / sqrt(1 - x^2)", sym=lambda sp, x: sp.acos(x), guard=True,
    domain=(UNIT,), numpy=(np.arccos,))
def arccos(x):
    return np.arccos(x)


@op(lambda g, out, x: g / (1 + x * x), grad_fn="AtanBackward0", rule="dx / (1 + x^2)",
    sym=lambda sp, x: sp.atan(x), numpy=(np.arctan,))
def arctan(x):
    return np.arctan(x)


@op(lambda g, out, y, x: g * x / (x * x + y * y),
    lambda g, out, y, x: -g * y / (x * x + y * y),
    grad_fn="Atan2Backward0", rule="(x dy - y dx) / (x^2 + y^2)",
    sym=lambda sp, y, x: sp.atan2(y, x), guard=True,
    domain=(POSITIVE, POSITIVE), numpy=(np.arctan2,))
def arctan2(y, x):
    return np.arctan2(y, x)


@op(lambda g, out, x: g * np.cosh(x), grad_fn="SinhBackward0", rule="cosh(x) dx",
    sym=lambda sp, x: sp.sinh(x), numpy=(np.sinh,))
def sinh(x):
    return np.sinh(x)


@op(lambda g, out, x: g * np.sinh(x), grad_fn="CoshBackward0", rule="sinh(x) dx",
    sym=lambda sp, x: sp.cosh(x), numpy=(np.cosh,))
def cosh(x):
    return np.cosh(x)


@op(local=(lambda out, x: 1 - out * out,), grad_fn="TanhBackward0", saves="out",
    rule="(1 - tanh(x)^2) dx", sym=lambda sp, x: sp.tanh(x), numpy=(np.tanh,))
def tanh(x):
    return np.tanh(x)


@op(lambda g, out, x: g / np.sqrt(x * x + 1), grad_fn="AsinhBackward0",
    rule="dx / sqrt(x^2 + 1)", sym=lambda sp, x: sp.asinh(x), numpy=(np.arcsinh,))
def arcsinh(x):
    return np.arcsinh(x)


@op(lambda g, out, x: g / (np.sqrt(x - 1) * np.sqrt(x + 1)), grad_fn="AcoshBackward0",
    rule="dx / sqrt(x^2 - 1)", sym=lambda sp, x: sp.acosh(x), guard=True,
    domain=((1.2, 4.0),), numpy=(np.arccosh,))
def arccosh(x):
    return np.arccosh(x)


@op(lambda g, out, x: g / (1 - x * x), grad_fn="AtanhBackward0", rule="dx / (1 - x^2)",
    sym=lambda sp, x: sp.atanh(x), guard=True, domain=(UNIT,), numpy=(np.arctanh,))
def arctanh(x):
    return np.arctanh(x)


# -- nn-style elementwise ----------------------------------------------------
@op(lambda g, out, x: g * (out * (1 - out)), grad_fn="SigmoidBackward0", saves="out",
    rule="sigmoid(x) (1 - sigmoid(x)) dx", sym=lambda sp, x: 1 / (1 + sp.exp(-x)))
def sigmoid(x):
    # exp(-log(1 + exp(-x))) never overflows, for large |x| of either sign.
    return np.exp(-np.logaddexp(0.0, -x))


@op(lambda g, out, x: g * (x > 0), grad_fn="ReluBackward0", rule="(x > 0) dx",
    at_kink=lambda x: x == 0,
    kink="relu'(0) = 0", sym=lambda sp, x: sp.Max(x, 0))
def relu(x):
    return np.maximum(x, 0.0)


@op(lambda g, out, x: g * _any(sigmoid, x), grad_fn="SoftplusBackward0",
    rule="sigmoid(x) dx", sym=lambda sp, x: sp.log(1 + sp.exp(x)))
def softplus(x):
    return np.logaddexp(0.0, x)


def _tie_share(a, b):
    """1 where a wins, 1/2 on a tie, 0 where it loses (as floats)."""
    return (a > b) + 0.5 * (a == b)


@op(lambda g, out, a, b: g * _tie_share(a, b), lambda g, out, a, b: g * _tie_share(b, a),
    grad_fn="MaximumBackward0", rule="(a > b) da + (b > a) db",
    at_kink=lambda a, b: a == b,
    kink="a tie splits the gradient in halves", sym=lambda sp, a, b: sp.Max(a, b),
    numpy=(np.maximum,))
def maximum(a, b):
    return np.maximum(a, b)


@op(lambda g, out, a, b: g * _tie_share(b, a), lambda g, out, a, b: g * _tie_share(a, b),
    grad_fn="MinimumBackward0", rule="(a < b) da + (b < a) db",
    at_kink=lambda a, b: a == b,
    kink="a tie splits the gradient in halves", sym=lambda sp, a, b: sp.Min(a, b),
    numpy=(np.minimum,))
def minimum(a, b):
    return np.minimum(a, b)


# clip is min(max(x, lo), hi): when lo > hi every x gives hi, as numpy does.
@op(lambda g, out, x, lo, hi: g * ((x >= lo) & (x <= hi)),
    lambda g, out, x, lo, hi: g * ((x < lo) & (lo <= hi)),
    lambda g, out, x, lo, hi: g * ((x > hi) | (lo > hi)),
    grad_fn="ClampBackward1", rule="dx inside [lo, hi], dlo below, dhi above",
    at_kink=lambda x, lo, hi: (x == lo) | (x == hi),
    kink="at x == lo or x == hi the gradient goes to x",
    sym=lambda sp, x, lo, hi: sp.Min(sp.Max(x, lo), hi),
    domain=(REALS, (-3.0, -0.5), (0.5, 3.0)), numpy=(np.clip,))
def clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


@op(None, lambda g, out, c, a, b: np.where(c, g, 0.0),
    lambda g, out, c, a, b: np.where(c, 0.0, g),
    grad_fn="WhereBackward0", rule="da where c, db elsewhere",
    kink="only the selected branch gets a gradient (nan/inf in the other never leak)",
    sym=lambda sp, c, a, b: sp.Piecewise((a, c), (b, True)), numpy=(np.where,))
def where(c, a, b):
    return np.where(c, a, b)


@op(_zeros, grad_fn="SignBackward0", saves="none", rule="0",
    at_kink=lambda x: x == 0,
    kink="zero gradient everywhere (a step at 0)", sym=lambda sp, x: sp.sign(x),
    numpy=(np.sign,))
def sign(x):
    return np.sign(x)


@op(_zeros, grad_fn="FloorBackward0", saves="none", rule="0",
    at_kink=lambda x: x == np.floor(x),
    kink="zero gradient everywhere (steps at integers)", sym=lambda sp, x: sp.floor(x),
    numpy=(np.floor,))
def floor(x):
    return np.floor(x)


@op(_zeros, grad_fn="CeilBackward0", saves="none", rule="0",
    at_kink=lambda x: x == np.floor(x),
    kink="zero gradient everywhere (steps at integers)", sym=lambda sp, x: sp.ceiling(x),
    numpy=(np.ceil,))
def ceil(x):
    return np.ceil(x)


# -- comparisons and tests: bool results, no graph ------------------------------
def _predicate(name: str, fn, doc: str):
    op(grad_fn="", rule="not differentiable (bool result)",
       sym=lambda sp, a, b: getattr(sp, {"less": "Lt", "less_equal": "Le", "greater": "Gt",
                                        "greater_equal": "Ge", "equal": "Eq", "not_equal": "Ne",
                                        "logical_and": "And", "logical_or": "Or"}[name])(a, b),
       expr=False, numpy=(fn,), name=name)(
        lambda a, b: fn(a, b)
    ).rule = doc


_EXPR_PREDICATES = {"less", "less_equal", "greater", "greater_equal", "equal", "not_equal"}
for _n, _f in (("less", np.less), ("less_equal", np.less_equal), ("greater", np.greater),
               ("greater_equal", np.greater_equal), ("equal", np.equal),
               ("not_equal", np.not_equal), ("logical_and", np.logical_and),
               ("logical_or", np.logical_or)):
    _predicate(_n, _f, f"{_n}(a, b): bool result, not differentiable")


@op(grad_fn="", rule="bool result, not differentiable", expr=False,
    numpy=(np.logical_not,))
def logical_not(x):
    return np.logical_not(x)


@op(grad_fn="", rule="bool result, not differentiable", expr=False,
    numpy=(np.isfinite,))
def isfinite(x):
    return np.isfinite(x)


@op(grad_fn="", rule="bool result, not differentiable", expr=False, numpy=(np.isnan,))
def isnan(x):
    return np.isnan(x)


@op(grad_fn="", rule="bool result, not differentiable", expr=False, numpy=(np.isinf,))
def isinf(x):
    return np.isinf(x)


# -- reductions (axis=None: all axes) -----------------------------------------
@op(lambda g, out, x, *, axis=None, keepdims=False: _expand(g, x.shape, axis, keepdims),
    grad_fn="SumBackward0", saves="shape", rule="ones broadcast over the summed axes",
    sym=SAME, numpy=(np.sum,))
def sum_(x, *, axis=None, keepdims=False):
    return np.sum(x, axis=axis, keepdims=keepdims)


@op(lambda g, out, x, *, axis=None, keepdims=False:
    _expand(g / _count(x.shape, axis), x.shape, axis, keepdims),
    grad_fn="MeanBackward0", saves="shape", rule="1/n broadcast over the axes",
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


@op(_prod_vjp, grad_fn="ProdBackward0", saves="both",
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


@op(_extreme_vjp, grad_fn="MaxBackward1", saves="both",
    at_kink=_tied,
    rule="1 at the maximum, 0 elsewhere", kink="tied maxima split the gradient evenly",
    sym=("array", lambda sp, x, *, axis=None, keepdims=False:
         sp.reduce(sp.Max, x, axis, keepdims)),
    numpy=(np.max, np.amax))
def max_(x, *, axis=None, keepdims=False):
    return np.max(x, axis=axis, keepdims=keepdims)


@op(_extreme_vjp, grad_fn="MinBackward1", saves="both",
    at_kink=lambda x, **p: _tied(x, largest=False, **p),
    rule="1 at the minimum, 0 elsewhere", kink="tied minima split the gradient evenly",
    sym=("array", lambda sp, x, *, axis=None, keepdims=False:
         sp.reduce(sp.Min, x, axis, keepdims)),
    numpy=(np.min, np.amin))
def min_(x, *, axis=None, keepdims=False):
    return np.min(x, axis=axis, keepdims=keepdims)


def _norm_vjp(g, out, x, *, ord=None, axis=None, keepdims=False):
    o = _expand(out, x.shape, axis, keepdims)
    safe = np.where(o == 0, 1.0, o)
    return _expand(g, x.shape, axis, keepdims) * np.where(o == 0, 0.0, x / safe)


@op(_norm_vjp, grad_fn="NormBackward1", saves="both", rule="x / norm(x)",
    at_kink=lambda x, **p: norm_.forward(x, **p) == 0,
    kink="norm'(0) = 0",
    sym=("array", lambda sp, x, *, ord=None, axis=None, keepdims=False:
         sp.map(sp.sqrt, np.sum(x * x, axis=axis, keepdims=keepdims))),
    numpy=(np.linalg.norm,))
def norm_(x, *, ord=None, axis=None, keepdims=False):
    """The Euclidean norm over ``axis`` (all axes: the Frobenius norm)."""
    if ord not in (None, 2, "fro"):
        raise ValueError(f"only the 2-norm is supported, not ord={ord!r}")
    if ord == 2 and np.ndim(x) > 1 and axis is None:
        raise ValueError("the matrix 2-norm (largest singular value) is not supported")
    return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))


@op(lambda g, out, x, *, axis=None, keepdims=False:
    _expand(g, x.shape, axis, keepdims) * np.exp(x - _expand(out, x.shape, axis, keepdims)),
    grad_fn="LogsumexpBackward0", saves="both", rule="softmax(x)",
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
    grad_fn="VarBackward0", rule="2 (x - mean) / (n - ddof)", sym=SAME,
    numpy=(np.var,))
def var(x, *, axis=None, ddof=0, keepdims=False):
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _std_vjp(g, out, x, *, axis=None, ddof=0, keepdims=False):
    o = _expand(out, x.shape, axis, keepdims)
    safe = np.where(o == 0, 1.0, o)
    d = _centered(x, axis) / (_dof(x.shape, axis, ddof) * safe)
    return _expand(g, x.shape, axis, keepdims) * np.where(o == 0, 0.0, d)


@op(_std_vjp, grad_fn="StdBackward0", saves="both", rule="(x - mean) / ((n - ddof) std)",
    kink="std'(constant) = 0",
    sym=("array", lambda sp, x, *, axis=None, ddof=0, keepdims=False:
         sp.map(sp.sqrt, np.var(x, axis=axis, ddof=ddof, keepdims=keepdims))),
    numpy=(np.std,))
def std(x, *, axis=None, ddof=0, keepdims=False):
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


# -- nn-style normalisations (numerically stable) --------------------------------
def _from_end(axis: int, ndim: int) -> int:
    """``axis`` counted from the end, so batch axes in front do not shift it."""
    return _axes(axis, ndim)[0] - ndim


@op(lambda g, out, x, *, axis=-1:
    out * (g - np.sum(g * out, axis=_from_end(axis, out.ndim), keepdims=True)),
    grad_fn="SoftmaxBackward0", saves="out", rule="s * (g - sum(g * s))",
    sym=("array", lambda sp, x, *, axis=-1:
         sp.map(sp.exp, x) / np.sum(sp.map(sp.exp, x), axis=axis, keepdims=True)))
def softmax(x, *, axis=-1):
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


@op(lambda g, out, x, *, axis=-1:
    g - np.exp(out) * np.sum(g, axis=_from_end(axis, out.ndim), keepdims=True),
    grad_fn="LogSoftmaxBackward0", saves="out", rule="g - softmax(x) sum(g)",
    sym=("array", lambda sp, x, *, axis=-1:
         x - sp.map(sp.log, np.sum(sp.map(sp.exp, x), axis=axis, keepdims=True))))
def log_softmax(x, *, axis=-1):
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


# -- linear algebra ------------------------------------------------------------
def _times_each(g, v):
    """``g[..., None] * v``: each cotangent of a batch of scalars times ``v``."""
    if np.ndim(g) == 0:
        return g * v
    return np.multiply.outer(g, v) if type(g) is np.ndarray else g[..., None] * v


def _out_axes(n: int) -> tuple[int, ...]:
    """The last ``n`` axes: a scalar factor's gradient sums over the output's."""
    return tuple(range(-n, 0))


def _dot_vjp_a(g, out, a, b):
    na, nb = np.ndim(a), np.ndim(b)  # np.ndim: a constant may be a Python number
    if na == 0:
        return np.sum(g * b, axis=_out_axes(nb)) if nb else g * b
    if nb == 0:
        return g * b
    return _times_each(g, b) if nb == 1 else _mm(g, _swap(b))


def _dot_vjp_b(g, out, a, b):
    na, nb = np.ndim(a), np.ndim(b)
    if nb == 0:
        return np.sum(g * a, axis=_out_axes(na)) if na else g * a
    if na == 0:
        return g * a
    if na == 1:
        return _times_each(g, a) if nb == 1 else a[:, None] * g[..., None, :]
    return _mm(g, a) if nb == 1 else _mm(_swap(a), g)


@op(_dot_vjp_a, _dot_vjp_b, grad_fn="DotBackward0", rule="d(a.b) = da.b + a.db",
    sym=SAME, numpy=(np.dot,))
def dot(a, b):
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        raise ValueError("dot takes vectors and matrices; use matmul for stacks")
    return np.dot(a, b)


# Vectors are promoted to matrices as matmul does, and the promoted axis dropped.
def _matmul_vjp_a(g, out, a, b):
    if np.ndim(b) == 1:
        return _times_each(g, b)
    if np.ndim(a) == 1 and np.ndim(b) > 2:
        return _mm(g[..., None, :], _swap(b))[..., 0, :]
    return _mm(g, _swap(b))


def _matmul_vjp_b(g, out, a, b):
    if np.ndim(a) == 1:
        return _times_each(g, a) if np.ndim(b) == 1 else a[:, None] * g[..., None, :]
    if np.ndim(b) == 1:
        return _mm(g, a) if np.ndim(a) == 2 else _mm(g[..., None, :], a)[..., 0, :]
    return _mm(_swap(a), g)


@op(_matmul_vjp_a, _matmul_vjp_b, grad_fn="MmBackward0",
    rule="d(a@b) = da@b + a@db", sym=SAME, numpy=(np.matmul,))
def matmul(a, b):
    return np.matmul(a, b)


@op(lambda g, out, a, b: np.reshape(_mm(g, np.ravel(b)), np.shape(g)[:-2] + np.shape(a)),
    lambda g, out, a, b: np.reshape(_mm(np.ravel(a), g), np.shape(g)[:-2] + np.shape(b)),
    grad_fn="OuterBackward0", rule="d(outer(a,b)) = outer(da,b) + outer(a,db)",
    sym=SAME, numpy=(np.outer,))
def outer(a, b):
    return np.outer(a, b)


def _eye_like(shape, dtype):
    return np.eye(shape[-2], shape[-1], dtype=dtype)


@op(lambda g, out, a: np.reshape(g, np.shape(g) + (1, 1)) * _eye_like(a.shape, a.dtype),
    grad_fn="TraceBackward0", saves="shape", rule="identity", sym=SAME,
    numpy=(np.trace,))
def trace(a):
    if np.ndim(a) != 2:
        raise ValueError(f"trace takes a matrix, not shape {np.shape(a)}")
    return np.trace(a)


def _transpose_vjp(g, out, x, *, axes=None, lead=0):
    nd = np.ndim(g) - lead
    back = range(nd)[::-1] if axes is None else np.argsort([a % nd for a in axes])
    return np.transpose(g, tuple(range(lead)) + tuple(lead + int(i) for i in back))


@op(_transpose_vjp, grad_fn="PermuteBackward0", saves="none", takes_lead=True,
    rule="the gradient transposed back", sym=SAME, numpy=(np.transpose,))
def transpose(x, *, axes=None):
    return np.transpose(x, axes)


def _adjugate_t(a, det):
    """adj(A)^T = det(A) inv(A)^T, the gradient of det: also at a singular A."""
    det = np.reshape(det, np.shape(det) + (1, 1))  # a stack: one det per matrix
    if isinstance(a, Tensor):
        return det * _swap(np.linalg.inv(a))
    try:
        return det * _swap(np.linalg.inv(a))
    except np.linalg.LinAlgError:
        # A = U diag(s) V^T gives adj(A) = det(U V^T) V diag(prod_{j != i} s) U^T,
        # which needs no inverse.
        u, s, vt = np.linalg.svd(a)
        n = s.shape[-1]
        others = np.stack([np.prod(np.delete(s, i, axis=-1), axis=-1) for i in range(n)],
                          axis=-1)
        sign = np.linalg.det(u @ vt)[..., None, None]
        adj = sign * (_swap(vt) * others[..., None, :]) @ _swap(u)
        return _swap(adj)


@op(lambda g, out, a: np.reshape(g, np.shape(g) + (1, 1)) * _adjugate_t(a, out),
    grad_fn="LinalgDetBackward0",
    saves="both", rule="adj(A)^T = det(A) inv(A)^T",
    kink="at a singular A the gradient is the adjugate (no inverse needed)",
    sym=("array", lambda sp, a: sp.Matrix(a.tolist()).det(method="laplace")),
    guard=True, domain=("matrix",), numpy=(np.linalg.det,))
def det(a):
    return np.linalg.det(a)


@op(lambda g, out, a: -_mm(_swap(out), _mm(g, _swap(out))),
    grad_fn="LinalgInvExBackward0", saves="out", rule="-inv(A)^T G inv(A)^T",
    sym=("array", lambda sp, a: np.array(
        sp.Matrix(a.tolist()).adjugate(method="laplace").tolist(), dtype=object
    ) / sp.Matrix(a.tolist()).det(method="laplace")),
    domain=("matrix",), numpy=(np.linalg.inv,))
def inv(a):
    return np.linalg.inv(a)


def _solve_t(a, g, b):
    """``solve(A^T, g)`` for every cotangent in ``g`` (batch + ``b.shape``), all
    with one factorisation: numpy 2 reads a bare batch of vectors as a matrix."""
    if isinstance(g, Tensor) or isinstance(a, Tensor):  # create_graph: no batch
        return np.linalg.solve(_swap(a), g)
    col = -1 if np.ndim(b) == 1 else -2  # the axis that solve consumes
    rhs = np.moveaxis(g, col, 0)
    x = np.linalg.solve(_swap(a), rhs.reshape(rhs.shape[0], -1)).reshape(rhs.shape)
    return np.moveaxis(x, 0, col)


def _solve_vjp_a(g, out, a, b):
    gb = _solve_t(a, g, b)
    return -gb[..., :, None] * out if np.ndim(b) == 1 else -_mm(gb, _swap(out))


@op(_solve_vjp_a, lambda g, out, a, b: _solve_t(a, g, b),
    grad_fn="LinalgSolveExBackward0", saves="both",
    rule="db = solve(A^T, g); dA = -db x^T",
    sym=("array", lambda sp, a, b: np.dot(np.array(
        sp.Matrix(a.tolist()).adjugate(method="laplace").tolist(), dtype=object
    ), b) / sp.Matrix(a.tolist()).det(method="laplace")),
    domain=("matrix", REALS),
    numpy=(np.linalg.solve,))
def solve(a, b):
    if np.ndim(a) != 2 or np.ndim(b) not in (1, 2):
        raise ValueError(
            f"solve takes a square matrix and a vector or matrix, not shapes "
            f"{np.shape(a)} and {np.shape(b)}"
        )
    return np.linalg.solve(a, b)


# -- shape ---------------------------------------------------------------------
@op(lambda g, out, x, *, shape, lead=0: np.reshape(g, np.shape(g)[:lead] + x.shape),
    grad_fn="ViewBackward0", saves="shape", takes_lead=True, rule="the gradient reshaped back", sym=SAME, numpy=(np.reshape,))
def reshape(x, *, shape):
    return np.reshape(x, shape)


@op(lambda g, out, x, *, shape: g, grad_fn="ExpandBackward0", saves="none",
    rule="summed over the broadcast axes", sym=SAME, expr=False,
    numpy=(np.broadcast_to,))
def broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape)


def _concat_vjp(g, out, *xs, axis=0):
    if axis is None:  # the inputs were flattened, then joined
        ends = np.cumsum([x.size for x in xs]).tolist()
        batch = np.shape(g)[:-1]
        return [np.reshape(g[..., e - x.size:e], batch + x.shape) for x, e in zip(xs, ends)]
    ax = _from_end(axis, xs[0].ndim)
    ends = np.cumsum([x.shape[ax] for x in xs]).tolist()
    after = (slice(None),) * (-ax - 1)
    return [g[(Ellipsis, slice(e - x.shape[ax], e)) + after] for x, e in zip(xs, ends)]


@op(_concat_vjp, grad_fn="CatBackward0", saves="shape", multi=True, nin=-1,
    rule="the gradient split back", sym=SAME, numpy=(np.concatenate,))
def concatenate(xs, *, axis=0):
    return np.concatenate(xs, axis=axis)


def _stack_vjp(g, out, *xs, axis=0):
    ax = _from_end(axis, xs[0].ndim + 1)
    after = (slice(None),) * (-ax - 1)
    return [g[(Ellipsis, i) + after] for i in range(len(xs))]


@op(_stack_vjp, grad_fn="StackBackward0", saves="shape", multi=True, nin=-1,
    rule="the gradient unstacked", sym=SAME, numpy=(np.stack,))
def stack(xs, *, axis=0):
    return np.stack(xs, axis=axis)


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis))) for p in parts)


def _consumes(p) -> int:
    """How many axes of the indexed array one part of an index uses up."""
    if p is None or isinstance(p, (bool, np.bool_)):
        return 0
    if isinstance(p, (list, np.ndarray)):
        arr = np.asarray(p)
        return arr.ndim if arr.dtype == bool else 1
    return 1


def _batched_index(index, ndim: int, lead: int):
    """``index`` of an array of ``ndim`` axes, for the same array behind ``lead``
    batch axes, and whether it is advanced. Basic indices get the batch axes as
    leading full slices; an advanced one comes without Ellipsis, to be used with
    the batch axes moved last (where advanced indexing never moves them)."""
    parts = index if isinstance(index, tuple) else (index,)
    if _is_basic(parts):
        return (slice(None),) * lead + parts, False
    dots = [k for k, p in enumerate(parts) if p is Ellipsis]
    if dots:
        k = dots[0]
        used = sum(_consumes(p) for p in parts if p is not Ellipsis)
        parts = parts[:k] + (slice(None),) * (ndim - used) + parts[k + 1:]
    return parts, True


def _last(a, lead: int):
    """``a`` with its ``lead`` batch axes moved last (a view)."""
    return np.moveaxis(a, tuple(range(lead)), tuple(range(-lead, 0)))


def _first(a, lead: int):
    return np.moveaxis(a, tuple(range(-lead, 0)), tuple(range(lead)))


def _index_add(g, *, index, shape, lead=0):
    z = np.zeros(np.shape(g)[:lead] + tuple(shape), dtype=np.result_type(g))
    idx, advanced = _batched_index(index, len(shape), lead)
    if not advanced:
        z[idx] = g
    else:
        np.add.at(_last(z, lead), idx, _last(g, lead))  # repeated indices add up
    return z


@op(lambda g, out, x, *, index, lead=0:
    _any(index_add, g, index=index, shape=x.shape, lead=lead),
    grad_fn="IndexBackward0", saves="shape", rule="the gradient scattered back",
    sym=SAME, expr=False, takes_lead=True)
def getitem(x, *, index, lead=0):
    if not lead:
        return x[index]
    idx, advanced = _batched_index(index, np.ndim(x) - lead, lead)
    return _first(_last(x, lead)[idx], lead) if advanced else x[idx]


# Recorded nodes always have lead=0 (create_graph walks are unbatched); the walk
# passes its own ``lead`` to these rules.
@op(lambda g, out, x, *, index, shape, lead=0: _any(getitem, g, index=index, lead=lead),
    grad_fn="IndexPutBackward0", saves="none", rule="the gradient gathered",
    sym=SAME, expr=False, takes_lead=True)
def index_add(x, *, index, shape, lead=0):
    return _index_add(x, index=index, shape=shape, lead=lead)


@op(grad_fn="", rule="0: a constant fixed at its value (gradients stop here)",
    kink="", sym=None)
def detach(x):
    return x


# -- composite: defined by other ops, so their gradients come for free -----------
def _composite(name: str, fn, rule: str, numpy=()):
    o = op(grad_fn="", rule=rule, sym=SAME, numpy=numpy, name=name)(fn)
    o.extra["composite"] = fn
    o.composite = True
    o.differentiable = True
    return o


def _inner(a, b):
    # np.inner with a scalar is a plain product: no transpose then.
    return dot(a, transpose(b) if np.ndim(b) == 2 and np.ndim(a) else b)


inner = _composite("inner", _inner, "dot(a, b.T)", numpy=(np.inner,))


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


def _array_function(self, func, types, args, kwargs):
    o = NUMPY.get(func)
    if o is not None:
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


def _setitem(self, index, value):
    if self.requires_grad:
        raise RuntimeError(
            "in-place assignment into a tensor that requires grad would corrupt its "
            "gradient; build a new tensor (e.g. with gc.where or gc.concatenate)"
        )
    if type(self._data) is not np.ndarray:
        self._data = np.array(self._data)
    self._data[_index(index)] = value._data if isinstance(value, Tensor) else value


def _binary(o: Op):
    """Operator methods: ``apply`` unrolled for two arguments (the hot path),
    as ``(forward, reflected)``: ``a op b`` and ``b op a`` with ``a`` the Tensor."""
    fwd = o.run
    mode = graph.MODE
    record = o.differentiable
    save_inputs = o.saves in ("inputs", "both")
    save_out = o.saves == "both"
    new = object.__new__
    shared = graph._INTERNED
    interned = graph.interned
    next_seq = graph._SEQ.__next__

    def make(reflected: bool):
        def method(self, other):
            if type(other) is Tensor:
                od = other._data
                rg = self.requires_grad or other.requires_grad
            else:
                if type(other) is list or type(other) is tuple:
                    other = np.asarray(other)
                od = other
                rg = self.requires_grad
            if reflected:
                a, b, ad, bd = other, self, od, self._data
            else:
                a, b, ad, bd = self, other, self._data, od
            try:
                out = fwd(ad, bd)
            except ValueError as exc:
                raise ValueError(f"{o.name}: {exc}") from exc
            t = new(Tensor)  # Tensor._make, inlined: this runs once per operator
            t._data = out
            t.grad = t._pending = None
            if not (rg and record and mode.enabled):
                t.grad_fn = None
                t.requires_grad = False
                return t
            shapes = (() if type(ad) in _SCALARS else getattr(ad, "shape", ()),
                      () if type(bd) in _SCALARS else getattr(bd, "shape", ()))
            n = new(Node)  # Node(...), field by field: no __init__ frame here
            n.seq = next_seq()
            n.op = o
            n.p0 = (a.grad_fn or a) if type(a) is Tensor and a.requires_grad else None
            n.p1 = (b.grad_fn or b) if type(b) is Tensor and b.requires_grad else None
            if save_inputs:
                n.x0 = ad
                n.x1 = bd
            else:
                n.x0 = n.x1 = None
            n.out = out if save_out else None
            n.shapes = shared.get(shapes) or interned(shapes)
            n.params = _EMPTY
            n.freed = False
            n._pending = None
            if mode.keep_args:
                n.args = (a, b)
            t.grad_fn = n
            t.requires_grad = True
            return t

        return method

    return make(False), make(True)


_EMPTY: dict = {}


def _bind() -> None:
    T = Tensor
    for dunder, name in (("add", "add"), ("sub", "sub"), ("mul", "mul"),
                         ("truediv", "div"), ("pow", "pow"), ("matmul", "matmul")):
        fwd, ref = _binary(OPS[name])
        setattr(T, f"__{dunder}__", fwd)
        setattr(T, f"__r{dunder}__", ref)
    for dunder, name in (("eq", "equal"), ("ne", "not_equal"), ("lt", "less"),
                         ("le", "less_equal"), ("gt", "greater"),
                         ("ge", "greater_equal"), ("and", "logical_and"),
                         ("or", "logical_or")):
        setattr(T, f"__{dunder}__", _binary(OPS[name])[0])
    T.__rand__ = _binary(OPS["logical_and"])[1]
    T.__ror__ = _binary(OPS["logical_or"])[1]
    T.__neg__ = lambda self: apply(neg, self)
    T.__pos__ = lambda self: self
    T.__abs__ = lambda self: apply(abs_, self)
    T.__invert__ = lambda self: apply(logical_not, self)
    T.__getitem__ = lambda self, index: apply(getitem, self, index=_index(index))
    T.__setitem__ = _setitem
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function

    skip = {"where", "getitem", "index_add", "concatenate", "stack", "reshape",
            "transpose", "broadcast_to"} | _EXPR_PREDICATES
    for name, o in OPS.items():
        if name in skip or name.startswith(("logical", "is")) or hasattr(T, name):
            continue
        setattr(T, name, _method(o))
    T.reshape = lambda self, *shape: reshape(
        self, shape=shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    )
    T.view = T.reshape
    T.flatten = T.ravel = lambda self: reshape(self, shape=(-1,))
    T.transpose = _transpose_method
    T.T = property(lambda self: transpose(self))
    T.clamp = _method(clip)
    T.broadcast_to = lambda self, *shape: broadcast_to(
        self, shape=shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    )
    T.all = lambda self, axis=None: Tensor._make(np.all(self._data, axis=axis))
    T.any = lambda self, axis=None: Tensor._make(np.any(self._data, axis=axis))


def _method(o: Op):
    def method(self, *args, **kwargs):
        return o(self, *args, **kwargs)

    method.__name__ = o.name
    method.__doc__ = f"{o.signature()}: derivative {o.rule}"
    return method


def _transpose_method(self, *axes):
    if not axes:
        return transpose(self)
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = tuple(axes[0])
    if len(axes) == 2 and self.ndim != 2:
        return _swapaxes(self, *axes)  # PyTorch's transpose(dim0, dim1)
    return transpose(self, axes=axes)


# The hot elementwise ops run their numpy ufunc or operator directly: the
# same computation as the declared forward, without a Python frame per call.
for _name, _fast in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                     ("div", operator.truediv), ("neg", operator.neg), ("sin", np.sin),
                     ("cos", np.cos), ("exp", np.exp), ("log", np.log), ("tanh", np.tanh),
                     ("sqrt", np.sqrt), ("square", np.square), ("abs", np.abs)):
    OPS[_name].run = _fast

# On Tensors, & | ~ are logical, as masks need (also when numpy dispatches them
# from an ndarray on the left, as np.bitwise_and).
NUMPY[np.bitwise_and] = OPS["logical_and"]
NUMPY[np.bitwise_or] = OPS["logical_or"]
NUMPY[np.invert] = OPS["logical_not"]

# Ops whose gradient is exactly zero on whole regions of their input (the
# branch not taken, the entries not indexed, a relu's negative side, ...):
# below them, a zero cotangent must stay zero through inf/nan derivatives.
for _name in ("where", "getitem", "relu", "clip", "maximum", "minimum", "max", "min",
              "abs", "sign", "floor", "ceil", "norm", "std"):
    OPS[_name].masks = True

for _name in ("add", "sub", "mul", "div", "neg", "pow", "abs", "sqrt", "square", "exp",
              "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "arcsin",
              "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh",
              "arccosh", "arctanh", "sigmoid", "relu", "softplus", "maximum", "minimum",
              "clip", "where", "sign", "floor", "ceil", "detach") + tuple(_EXPR_PREDICATES):
    OPS[_name].elementwise = True

_bind()
