"""The op contract: the ``Op`` record, the ``@op`` declaration and ``apply``.

The VJP contract, stated once: ``vjp(g, out, *inputs, **params)`` receives the
gradient ``g`` arriving at the output, the forward result ``out`` and the op's
inputs, and returns the gradient for one input *as if nothing broadcast*; the
engine sums broadcast axes back (``broadcast.unbroadcast``). ``g`` may carry
batch axes in front of the output's (a Jacobian's rows): rules count axes from
the end, so one rule serves a gradient, a Jacobian and a Hessian; the few that
reshape or index declare ``takes_lead`` and get ``lead=``, the number of batch
axes. What a rule reads is declared in ``saves`` so the graph keeps nothing else
alive: ``inputs``, ``out``, ``both``, ``shape`` (only shapes and dtypes) or ``none``.

An elementwise op may instead declare its local derivative per input
(``local=``: a number, another input, the output, or a function making a new
array); its VJPs ``g * derivative`` are made from that, and the engine's walk
does the multiplication itself (``fastpath.scaled``).

Rules are written with numpy's own names (``np.cos(x)``, ``np.sum``, ``@``). On
the fast path they run on ndarrays; with ``create_graph=True`` the same rules run
on Tensors, whose ``__array_ufunc__``/``__array_function__`` send those names back
here, so the backward pass is recorded and can be differentiated again.

One registry, ``OPS``, feeds the Python API (functions, Tensor methods and
operators), numpy interop, the expression language, ``gradcli ops`` and the
tests. The ops are declared by family in ``ops/``. An op with ``expr=False`` is
internal (indexing machinery). ``guard`` marks rules whose local derivative can
be inf or nan at finite points. Below a ``where`` (any zero cotangent), the walk
keeps a zero cotangent zero through every rule that reads values: elementwise
ones entry by entry, the others by the ``support`` they declare (see
``backward.run_backward``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import fastpath, graph
from .graph import CONST, FRESH, INPUT, MOVES, OUT, Meta, Node  # noqa: F401 (MOVES: for ops)
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
    # Its gradient is exactly zero on whole regions of its input (the branch
    # not taken, the entries not indexed, a relu's negative side, ...): below
    # it, a zero cotangent must stay zero through inf/nan derivatives.
    zero_regions: bool = False
    run: Callable | None = None  # what computes the forward: ``forward`` or its fast twin
    elementwise: bool = False  # output element i depends on input elements i only
    # The shape of the output from the inputs' shapes and the params, before
    # anything runs (for --max-elements): a function, or NO_BIGGER.
    out_shape: Any = None
    method: bool = True  # bound as a Tensor method of the same name
    # Its matrix-calculus form, for closed formulas (``∇x = A*x + A.T*x``):
    # ``matrix(sp, *forms, **params)`` -> (kind, expr) or None, where each form
    # has ``kind`` ("s" scalar, "v" column vector, "m" matrix), ``e`` (the sympy
    # expression), ``shape`` and ``plain`` (a scalar that is no matrix expression).
    matrix: Any = None
    # Elementwise ops may declare their local derivative instead of VJPs: per
    # input, (CONST, c), (INPUT, i), (OUT, None) or
    # (FRESH, f) with f(out, *inputs). The VJPs g * derivative are made
    # from it, and the engine's walk multiplies by g itself, in place when it may.
    local: tuple | None = None
    composite: bool = False  # defined by other ops (extra["composite"] computes it)
    # Its output may share memory with its input (reshape, transpose, basic
    # indexing): the node is noted against that memory (graph.note_view), so that
    # a recorded in-place change of it afterwards makes the view's history stale
    # (PyTorch rebases it; the walk refuses to use it). Such ops take the general
    # path (``apply``), never the one-input fast path.
    view: bool = False
    fast_call: bool = True  # Op.__call__ may take the fast path (not composite/view)
    takes_lead: bool = False  # its rules reshape or index: they get ``lead=``
    # A ``multi`` rule that gets ``need=``: per input, whether it wants a
    # gradient (a constant's entry is None, not computed).
    takes_need: bool = False
    # How a zero cotangent stays zero through the rules of an op that mixes
    # entries (the where promise below a reduction, a product, a stack of
    # matrices): ``support(nz, out, *inputs, **params)`` says, per input, which
    # entries of its gradient a nonzero cotangent reaches (``nz`` is ``g != 0``,
    # batch axes in front; each mask broadcasts against batch + that input's
    # shape); MOVES: the rules read no values (they move, sum or scale ``g``), so
    # no inf or nan can enter. Elementwise ops need neither: gradient entry i
    # meets cotangent entry i only.
    support: Any = None
    # The ufunc that may compute the forward into a temporary input's array
    # (fastpath.reuse_ufunc), or None.
    reuse: Any = None

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

    __call__ = fastpath.op_call  # one Tensor, no options: the hot path, in one frame

    def call(self, *args, **kwargs):
        """Call the op on anything: numbers, arrays, Tensors, numpy's keywords."""
        if not kwargs and len(args) == self.nin and self.fast_call:
            return apply(self, *args)
        prepare = self.extra.get("prepare")
        if prepare is not None:  # numpy's keyword names for inputs, say
            args, kwargs = prepare(args, kwargs)
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
        if "keepdims" in kwargs:
            check_flag(self.name, "keepdims", kwargs["keepdims"])
        composite = self.extra.get("composite")
        if composite is not None and self.nin < 0:  # a sequence of any shapes
            return composite(list(args[0]), **kwargs)
        if composite is not None:
            args = tuple(_sequence(a) if type(a) is list or type(a) is tuple else a
                         for a in args)
            out = composite(*args, **kwargs)
            if graph.MODE.keep_args and "at_kink" in self.extra:
                _note_kink(self, out, args, kwargs)
            return out
        return apply(self, *args, **kwargs)

    @property
    def reals(self) -> tuple[str, ...]:
        """The parameters that take a real number (``inf`` included)."""
        return self.extra.get("reals", ())

    def kink_at(self, arrays, params) -> str | None:
        """The kink convention in force if ``arrays`` sit on this op's kink."""
        try:
            test = self.extra.get("at_kink")
            return self.kink if test is not None and np.any(test(*arrays, **params)) else None
        except (ValueError, TypeError, IndexError):  # a kink test never breaks a result
            return None

    def __repr__(self) -> str:
        return f"<op {self.signature()}>"


def check_flag(name: str, param: str, value) -> None:
    """A flag (keepdims, unbiased) must be a bool (or 0 or 1): numpy's methods
    take dtype second (``a.mean(1, np.float64)``), where PyTorch's take keepdim,
    so a dtype or any other value there would silently keep the dims."""
    if not (isinstance(value, (bool, np.bool_)) or (type(value) is int and value in (0, 1))):
        raise TypeError(
            f"{name}(): {param} must be True or False, not {value!r} (numpy's dtype "
            "goes by name here: dtype=...)")


def _note_kink(o: Op, out, args, params) -> None:
    """A composite op's kink (a tie in ``sort``) on the node of its output,
    where a walk of the graph finds it: the ops it is built of (a gather by
    the stable argsort) know nothing of it. Only while the inputs are kept
    (``keep_args``: a graph that gradcli inspects)."""
    node = getattr(out, "_grad_fn", None)
    if node is not None:
        kink = o.kink_at([a._data if type(a) is Tensor else np.asarray(a) for a in args],
                         params)
        if kink:
            node.kink = (o.name, kink)


def NO_BIGGER(shapes, params):
    """An ``out_shape``: no element more than the largest input has."""
    return None


def required(params, name: str):
    """A param an ``out_shape`` needs: missing, it is the call's error (TypeError,
    which the op itself then reports), not a KeyError."""
    try:
        return params[name]
    except KeyError:
        raise TypeError(f"missing required argument {name!r}") from None


def _broadcast(shapes, params):
    return np.broadcast_shapes(*[tuple(s) for s in shapes])


OPS: dict[str, Op] = {}
NUMPY: dict[Any, Op] = {}  # numpy ufunc or function -> op, for __array_*__
SAME = "same"  # sympy form: the forward itself runs on object arrays of symbols


def op(*vjps, grad_fn: str, saves: str = "inputs", rule: str = "", kink: str = "",
       sym=None, domain=None, guard: bool = False, multi: bool = False,
       expr: bool = True, numpy=(), nin: int | None = None, name: str | None = None,
       at_kink=None, local=None, takes_lead: bool = False, elementwise: bool = False,
       zero_regions: bool = False, fast=None, shape=None, method: bool = True,
       matrix=None, view: bool = False, support=None, reals=(),
       takes_need: bool = False):
    """Register ``forward`` with its rules and facts; returns the callable ``Op``.

    Every fact the engine, the command line or the tests need about an op is
    given here, nowhere else: ``elementwise``, ``zero_regions``, ``support``
    (how a cotangent's zeros reach the inputs, for ops that mix entries), ``fast`` (a
    C-level twin of ``forward`` computing the same numbers, for the hot ops),
    ``shape`` (the output's shape, ``out_shape``; elementwise ops broadcast),
    ``at_kink``/``kink``, ``sym`` (the sympy form), ``domain`` (where tests
    sample), ``numpy`` (the numpy functions that dispatch here), ``method``
    (bound as a Tensor method), ``matrix`` (its matrix-calculus form) and ``reals``
    (the parameters that take a real number, ``inf`` included, not only an integer:
    norm's ``ord``).

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
            takes_need=takes_need,
            elementwise=elementwise,
            zero_regions=zero_regions,
            support=support,
            out_shape=shape if shape is not None else _broadcast if elementwise else None,
            method=method,
            matrix=matrix,
            view=view,
            fast_call=not view,
        )
        if fast is not None:
            o.run = fast
        else:
            o.run = _axis_checked(forward) if "axis" in kw and n >= 0 else forward
        o.reuse = fastpath.reuse_ufunc(o)
        if at_kink is not None:
            o.extra["at_kink"] = at_kink
        if reals:
            o.extra["reals"] = tuple(reals)
        OPS[o.name] = o
        for f in numpy:
            NUMPY[f] = o
        return o

    return deco


def _local_spec(d, names) -> tuple:
    """One entry of ``local=`` as the (kind, value) pair the engine reads."""
    if isinstance(d, (int, float)):
        return (CONST, d)
    if d == "out":
        return (OUT, None)
    if isinstance(d, str):
        return (INPUT, names.index(d))
    return (FRESH, d)


def _local_vjp(kind, v):
    """The VJP ``g * derivative`` of one ``local=`` entry (what create_graph runs)."""
    if kind == CONST:
        if v == 1:
            return lambda g, out, *xs: g
        return (lambda g, out, *xs: -g) if v == -1 else (lambda g, out, *xs: g * v)
    if kind == INPUT:
        return lambda g, out, *xs: _times(g, xs[v])
    if kind == OUT:
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
    if getattr(out, "dtype", None) is not None and out.dtype.kind == "c":
        raise complex_refused(o.name, out.dtype)
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
    if o.view and type(out) is np.ndarray and out.base is not None:
        graph.note_view(node, out)
    if graph.MODE.keep_args:
        node.args = tuple(args)
    return Tensor._make(out, node)


def complex_refused(name: str, dtype) -> TypeError:
    """The error for a complex result of a Tensor that requires grad: the rules
    are real ones (a complex product's gradient needs a conjugate they lack)."""
    return TypeError(
        f"{name}: a Tensor that requires grad would hold {np.dtype(dtype).name} values; "
        "gradcli differentiates real numbers only (split into real and imaginary "
        "parts, or compute the complex values under gc.no_grad())")


def _holds_tensor(seq) -> bool:
    return any(
        type(x) is Tensor
        or ((type(x) is list or type(x) is tuple) and _holds_tensor(x))
        for x in seq
    )


def _stacked(seq) -> Tensor:
    """A (nested) sequence holding Tensors as one ``stack`` of them, recorded: the
    gradient reaches every Tensor inside (``gc.mean([x, x + 2])``)."""
    from .ops.shape import stack

    items = [_stacked(x) if (type(x) is list or type(x) is tuple) and _holds_tensor(x)
             else x for x in seq]
    dts = [x.dtype for x in items if type(x) is Tensor]
    # Python numbers and lists beside Tensors take their dtype (weak, as in
    # PyTorch): [x, 1.0] with x float32 stays float32.
    dt = np.result_type(*dts)
    return stack([x if type(x) is Tensor or isinstance(x, np.ndarray) else _weak(x, dt)
                  for x in items])


def _weak(x, dt):
    """Python numbers (or lists of them) as an array of dtype ``dt``, or of the
    default float dtype when they hold floats and ``dt`` is not a float dtype."""
    from .tensor import get_default_dtype

    a = np.asarray(x)
    if a.dtype.kind == "f" and dt.kind not in "fc":
        return a.astype(get_default_dtype())
    return a.astype(np.result_type(dt, a.dtype) if a.dtype.kind == "c" else dt)


def _sequence(seq):
    """A sequence argument: stacked if it holds Tensors, else a constant array
    (rules read .ndim and .shape of what they save)."""
    return _stacked(seq) if _holds_tensor(seq) else np.asarray(seq)


def apply(o: Op, *args, **params) -> Tensor:
    """Run ``o`` forward on the arrays of ``args``; record a Node if needed."""
    if o.nin < 0:
        args = tuple(args[0])
    rg = False
    arrays = []
    if any(type(a) is list or type(a) is tuple for a in args):
        args = tuple(_sequence(a) if type(a) is list or type(a) is tuple else a
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
        msg = str(exc)  # (an op's own message may name it already: once is enough)
        raise type(exc)(msg if msg.startswith(f"{o.name}: ") else f"{o.name}: {msg}") \
            from exc
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


# -- helpers shared by the families ------------------------------------------------
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


def _from_end(axis: int, ndim: int) -> int:
    """``axis`` counted from the end, so batch axes in front do not shift it."""
    return _axes(axis, ndim)[0] - ndim


def _times(g, d):
    """``g * d``, where a ``g`` of all ones (what ``sum`` sends down: one number
    broadcast, every stride 0) gives ``d`` itself: a pass saved on large arrays.
    The engine never writes into a gradient that is an op's input or output."""
    if (type(g) is np.ndarray and g.ndim and not any(g.strides) and type(d) is np.ndarray
            and d.shape == g.shape and d.dtype == g.dtype and g.flat[0] == 1):
        return d
    return g * d
