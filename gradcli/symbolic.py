"""Checked tree or recorded graph -> sympy derivatives, for cross-checks.

Only the check path imports this module (it imports sympy). The gradient is
derived a second, independent way: the expression is rebuilt in sympy by
``interpret`` on the ``SympyBackend`` (``expr_*``), or the graph the engine
recorded at the point under ``keep_args()`` by ``replay`` (``graph_*``); sympy
differentiates it, and the result is evaluated at the point to 30 digits. User
text never reaches ``sympify``, ``parse_expr``, ``lambdify`` or ``eval``: every
sympy object is built from tree nodes or graph nodes.

Each op declares its sympy form beside its rules (``Op.sym`` in ops.py):

- ``SAME``: the numpy forward itself runs on object arrays of sympy expressions;
- a callable ``sym(sp, *args, **params)``: an elementwise form, applied with
  broadcasting;
- ``("array", fn)``: ``fn(sp, *arrays, **params)`` takes and returns object arrays
  (reductions, linear algebra); its ``sp`` has two helpers besides sympy's own
  names, ``sp.map(f, *arrays)`` (elementwise) and ``sp.reduce(f, x, axis, keepdims)``
  (``f`` called with all the reduced elements, e.g. ``sp.Max``);
- ``None``: no form yet: the symbolic part is skipped, naming the op.

``detach(...)`` is a constant fixed at its value at the point. Symbolic work runs
in a forked worker process that is killed after ``timeout`` seconds (a thread where
fork is unavailable), so sympy can neither hang nor crash the caller: every
failure becomes a ``SymbolicSkip`` whose message says why.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from gradcli.engine.ops import OPS, SAME
from gradcli.engine.tensor import Tensor
from gradcli.interpret import interpret, replay

__all__ = [
    "MAX_SYMBOLS",
    "Pending",
    "Symbolic",
    "SymbolicSkip",
    "SympyBackend",
    "derivatives",
    "expr_gradient",
    "expr_hessian",
    "expr_jacobian",
    "graph_gradient",
    "graph_hessian",
    "graph_jacobian",
    "start",
]

MAX_SYMBOLS = 300
"""Components differentiated one by one; beyond, only a closed matrix form is tried."""

GRAPH_NOTE = (
    "symbolic check of the path taken at this point: the recorded graph replayed "
    "in sympy; branch conditions and loop counts contribute no gradient"
)
_DIGITS = 30  # evalf precision: far beyond float64, so sympy is the reference
_SHOW = 3  # components shown of a componentwise formula
_WIDTH = 160  # characters of one formula


class SymbolicSkip(Exception):
    """The symbolic part cannot run; ``str(exc)`` says why ("skipped: <why>")."""


@dataclass
class Symbolic:
    """Derivatives per sympy, evaluated at the point (float64 arrays).

    ``values`` is keyed by input name; for a Hessian by ``"a,b"``, the block
    d2f / da db of shape ``a.shape + b.shape``. ``value`` is the function (for a
    vector-Jacobian product, ``sum(grad_output * f)``) per sympy, to cross-check the
    translation against the forward pass.
    """

    quantity: str  # "gradient", "vjp", "jacobian" or "hessian"
    values: dict[str, np.ndarray]
    formulas: dict[str, str]
    value: np.ndarray
    method: str  # "expression" or "graph replay"
    notes: list[str] = field(default_factory=list)


# -- public entry points ------------------------------------------------------------
def derivatives(
    kind: str,
    inputs: Mapping[str, Any],
    wrt: Sequence[str] | None,
    *,
    tree=None,
    graph: tuple[Tensor, Mapping[str, Tensor]] | None = None,
    grad_output=None,
    timeout: float | None = 10.0,
) -> Symbolic:
    """The derivatives of one ``kind`` (gradient, vjp, jacobian or hessian) of the
    parsed expression ``tree``, or of the graph ``(output, leaves)`` recorded under
    ``keep_args()`` (whose leaves are the inputs: ``inputs`` is not read)."""
    return start(kind, inputs, wrt, tree=tree, graph=graph, grad_output=grad_output,
                 timeout=timeout).result()


def start(
    kind: str,
    inputs: Mapping[str, Any],
    wrt: Sequence[str] | None,
    *,
    tree=None,
    graph: tuple[Tensor, Mapping[str, Tensor]] | None = None,
    grad_output=None,
    timeout: float | None = 10.0,
    deadline: float | None = None,
) -> Pending:
    """``derivatives(...)`` started in the background, its ``timeout`` counted from
    now (or ending at ``deadline``, a ``time.monotonic()`` value, when given): the
    caller works meanwhile (finite differences) and then asks for the
    ``result()``, or ``cancel()``s it."""

    def source(b: SympyBackend) -> _Val:
        if tree is not None:
            return interpret(tree, b, b.leaves)
        try:
            return replay(graph, b, b.leaves)
        except ValueError as exc:  # recorded without keep_args()
            raise SymbolicSkip(str(exc)) from exc

    if tree is None:
        inputs = {n: np.asarray(t._data) for n, t in graph[1].items()}
        wrt = wrt or list(graph[1])
    method = "expression" if tree is not None else "graph replay"
    return Pending(_Job(kind, inputs, wrt, grad_output, source, method).run, timeout,
                   deadline)


def expr_gradient(
    tree,
    inputs: Mapping[str, Any],
    wrt: Sequence[str],
    grad_output=None,
    timeout: float | None = 10.0,
) -> Symbolic:
    """The gradient of a scalar expression (or, with ``grad_output``, the VJP).

    >>> from gradcli.parse import Call, Var
    >>> tree = Call("dot", (Var("x"), Var("x")))
    >>> s = expr_gradient(tree, {"x": [1.0, 2.0]}, ["x"], timeout=None)
    >>> s.values["x"].tolist(), s.formulas["x"]
    ([2.0, 4.0], '∇x = 2*x')
    """
    return derivatives("gradient" if grad_output is None else "vjp", inputs, wrt,
                       tree=tree, grad_output=grad_output, timeout=timeout)


def expr_jacobian(tree, inputs, wrt, timeout: float | None = 10.0) -> Symbolic:
    """The Jacobian per input: shape ``output.shape + input.shape``."""
    return derivatives("jacobian", inputs, wrt, tree=tree, timeout=timeout)


def expr_hessian(tree, inputs, wrt, timeout: float | None = 10.0) -> Symbolic:
    """The Hessian blocks ``"a,b"`` of a scalar expression."""
    return derivatives("hessian", inputs, wrt, tree=tree, timeout=timeout)


def graph_gradient(
    output: Tensor,
    leaves: Mapping[str, Tensor],
    wrt: Sequence[str] | None = None,
    grad_output=None,
    timeout: float | None = 10.0,
) -> Symbolic:
    """Replay the graph recorded under ``keep_args()`` from ``output`` to ``leaves``.

    Leaves not named, and every constant, are numbers; so are detached values.

    >>> import gradcli as gc
    >>> from gradcli.engine.graph import keep_args
    >>> x = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    >>> with keep_args():
    ...     y = (x * x).sum() if x.sum() > 0 else x.sum()
    >>> graph_gradient(y, {"x": x}, timeout=None).values["x"].tolist()
    [2.0, 4.0]
    """
    return derivatives("gradient" if grad_output is None else "vjp", {}, wrt,
                       graph=(output, leaves), grad_output=grad_output, timeout=timeout)


def graph_jacobian(output, leaves, wrt=None, timeout: float | None = 10.0) -> Symbolic:
    return derivatives("jacobian", {}, wrt, graph=(output, leaves), timeout=timeout)


def graph_hessian(output, leaves, wrt=None, timeout: float | None = 10.0) -> Symbolic:
    return derivatives("hessian", {}, wrt, graph=(output, leaves), timeout=timeout)


# -- the time budget ------------------------------------------------------------------
class Pending:
    """``task`` running under a time budget that starts now: in a forked worker
    (Linux), else a daemon thread; without a budget, run by ``result()`` itself."""

    def __init__(self, task: Callable[[], Symbolic], timeout: float | None,
                 deadline: float | None = None, warm: bool = True) -> None:
        self.task = task
        self.timeout = timeout
        self.worker = self.receive = self.thread = None
        self.box: list = []
        if timeout is None:
            return
        self.deadline = time.monotonic() + timeout if deadline is None else deadline
        if (
            sys.platform.startswith("linux")
            and "fork" in multiprocessing.get_all_start_methods()
        ):
            if warm:  # a single worker gains nothing from it
                _warm()
            self.worker, self.receive = _fork(task)
        else:
            self.thread = threading.Thread(
                target=lambda: self.box.append(_attempt(task)), daemon=True
            )
            self.thread.start()

    def result(self) -> Symbolic:
        """The derivatives; every failure, running out of time included, is a
        SymbolicSkip."""
        if self.timeout is None:
            status, payload = _attempt(self.task)
        elif self.worker is not None:
            status, payload = self._from_worker()
        else:
            self.thread.join(max(0.0, self.deadline - time.monotonic()))
            if not self.box:  # a daemon thread cannot be stopped, only left behind
                status, payload = "skip", _timeout_reason(self.timeout)
            else:
                status, payload = self.box[0]
        if status == "skip":
            raise SymbolicSkip(payload)
        return payload

    def _from_worker(self):
        worker, receive = self.worker, self.receive
        try:
            if not receive.poll(max(0.0, self.deadline - time.monotonic())):
                return "skip", _timeout_reason(self.timeout)
            try:
                return receive.recv()
            except (EOFError, OSError):
                worker.join(1.0)
                return (
                    "skip",
                    "the sympy worker stopped without an answer "
                    f"(exit {worker.exitcode})",
                )
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the worker, if it still runs (a thread is left behind)."""
        if self.worker is None:
            return
        self.receive.close()
        if self.worker.is_alive():
            self.worker.kill()
        self.worker.join()
        self.worker = None


_WARM: list[bool] = []


def _warm() -> None:
    """Do sympy's lazy imports once in the parent, not again in every worker."""
    if _WARM:
        return
    _WARM.append(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = sp.MatrixSymbol("_x", 2, 1)
            d = (x.T * x).diff(x)
            sp.lambdify([x], d, modules="numpy")(np.ones((2, 1)))
            y = sp.Symbol("_y", real=True)
            sp.Piecewise((sp.Max(y, 0), y > 0), (sp.Abs(y), True)).diff(y).xreplace(
                {y: 1}
            )
    except Exception:  # only a speed-up
        pass


def _attempt(task):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sympy's deprecation chatter
            return "ok", task()
    except SymbolicSkip as exc:
        return "skip", str(exc)
    except RecursionError:
        return "skip", "sympy ran out of recursion depth (the expression is too deep)"
    except MemoryError:
        return "skip", "sympy ran out of memory"
    except Exception as exc:  # a sympy failure is a reason to skip, never a crash
        return "skip", f"sympy failed: {type(exc).__name__}: {exc}"


def _timeout_reason(timeout: float) -> str:
    return f"sympy took longer than {timeout:g} s"


def _die_with(parent: int) -> None:
    """In the worker: be killed when the parent dies, however it dies (SIGTERM,
    SIGKILL, a crash), instead of running on as an orphan."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # not Linux's prctl: the parent's own cleanup still applies
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def _child(task, conn, parent: int) -> None:
    # Ctrl-C reaches the whole process group: the parent answers it (exit 130)
    # and ends this worker; the worker itself says nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    result = _attempt(task)
    try:
        conn.send(result)
    except Exception as exc:
        conn.send(("skip", f"the sympy result could not be returned: {exc}"))
    conn.close()


def _fork(task):
    """``task`` started in a forked worker: (the process, the end to read from).
    A forked child shares the graph and sympy already imported, and unlike a
    thread it can be killed when sympy hangs."""
    ctx = multiprocessing.get_context("fork")
    for stream in (sys.stdout, sys.stderr):
        try:  # else the child, on exit, would flush a copy of what is buffered
            stream.flush()
        except Exception:
            pass
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_child, args=(task, send, os.getpid()),
                         daemon=True)
    worker.start()
    send.close()
    return worker, receive


# -- sympy helpers for the ops' forms ---------------------------------------------
class _Sympy:
    """sympy, plus the two helpers that ``("array", fn)`` forms may use."""

    def __getattr__(self, name: str):
        return getattr(sp, name)

    @staticmethod
    def map(f, *arrays):
        """``f`` elementwise over object arrays, with broadcasting."""
        return _obj(np.frompyfunc(f, len(arrays), 1)(*arrays))

    @staticmethod
    def reduce(f, x, axis=None, keepdims: bool = False):
        """``f(*elements)`` over ``axis`` (an int, a tuple or None: all axes)."""
        x = _obj(x)
        nd = x.ndim
        if axis is None:
            axes = tuple(range(nd))
        else:
            axes = tuple(
                a % nd for a in (axis if isinstance(axis, (tuple, list)) else (axis,))
            )
        keep = [i for i in range(nd) if i not in axes]
        moved = np.transpose(x, keep + list(axes)).reshape(
            [x.shape[i] for i in keep] + [-1]
        )
        out = np.empty(moved.shape[:-1], dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = f(*moved[idx])
        if keepdims:
            out = out.reshape([1 if i in axes else n for i, n in enumerate(x.shape)])
        return out


_SP = _Sympy()


def _number(v):
    """A constant as an exact sympy number: integers stay integers (2, not 2.0)."""
    if isinstance(v, sp.Basic):
        return v
    if isinstance(v, (bool, np.bool_)):
        return sp.true if v else sp.false
    v = float(v)
    if math.isnan(v):
        return sp.nan
    if math.isinf(v):
        return sp.oo if v > 0 else -sp.oo
    if v.is_integer() and abs(v) < 2**53:
        return sp.Integer(int(v))
    return sp.Float(v)  # the float64's exact binary value


def _obj(x) -> np.ndarray:
    """Any op result as an object ndarray (0-d for a scalar)."""
    if isinstance(x, Tensor):
        x = x._data
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return x
        return _constant(x)
    out = np.empty((), dtype=object)
    out[()] = x if isinstance(x, sp.Basic) else _number(x)
    return out


def _constant(a) -> np.ndarray:
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    for idx, v in np.ndenumerate(a):
        out[idx] = _number(v)
    return out


def _show(e) -> str:
    s = sp.sstr(e, full_prec=False)
    return s if len(s) <= _WIDTH else s[: _WIDTH - 1] + "…"


# -- translation: a value is an object array plus, maybe, a matrix-calculus form ------
@dataclass
class _Val:
    obj: np.ndarray | None  # componentwise: object array of sympy expressions
    form: tuple | None  # (kind, expr): kind "s" scalar, "v" n x 1 column, "m" matrix
    shape: tuple


class SympyBackend:
    """The sympy backend of ``interpret`` and ``replay``: symbols for the inputs
    (``leaves``), and the ops applied to sympy values."""

    def __init__(self, inputs: Mapping[str, np.ndarray], wrt: Sequence[str]) -> None:
        self.inputs = inputs
        sizes = {n: inputs[n].size for n in inputs}
        self.componentwise = sum(sizes[n] for n in wrt) <= MAX_SYMBOLS
        budget = MAX_SYMBOLS
        symbolic = []
        # wrt inputs and scalars are symbols; other inputs while the budget lasts,
        # so that the formulas name them (beyond it, they are numbers).
        for n in list(wrt) + [n for n in inputs if n not in wrt]:
            if n in wrt or inputs[n].ndim == 0 or sizes[n] <= budget:
                symbolic.append(n)
                budget -= sizes[n]
        self.syms: dict[str, np.ndarray] = {}
        self.point: dict = {}
        if self.componentwise:
            names = _component_names({n: inputs[n].shape for n in symbolic})
            for n in symbolic:
                arr = np.empty(inputs[n].shape, dtype=object)
                for idx, label in np.ndenumerate(names[n]):
                    s = sp.Symbol(label, real=True)
                    arr[idx] = s
                    self.point[s] = sp.Float(float(inputs[n][idx]), _DIGITS)
                self.syms[n] = arr
        self.msyms: dict[str, Any] = {}
        self.mvalues: dict = {}
        for n, a in inputs.items():
            if a.ndim == 0:
                s = self.syms[n][()] if n in self.syms else sp.Symbol(n, real=True)
                self.msyms[n] = s  # the componentwise Symbol, when there is one
                self.mvalues[s] = float(a)
            elif a.ndim <= 2 and min(a.shape) > 0:
                rows, cols = (a.shape[0], 1) if a.ndim == 1 else a.shape
                m = sp.MatrixSymbol(n, rows, cols)
                self.msyms[n] = m
                self.mvalues[m] = np.asarray(a, dtype=np.float64).reshape(rows, cols)
        self.leaves = {n: self.leaf(n) for n in inputs}  # the env of interpret, replay

    def leaf(self, name: str) -> _Val:
        a = self.inputs[name]
        obj = None
        if self.componentwise:
            obj = self.syms[name] if name in self.syms else _constant(a)
        m = self.msyms.get(name)
        kind = "s" if a.ndim == 0 else "v" if a.ndim == 1 else "m"
        return _Val(obj, None if m is None else (kind, m), a.shape)

    def const(self, value) -> _Val:
        a = np.asarray(value._data if isinstance(value, Tensor) else value)
        obj = _constant(a) if self.componentwise else None
        form = ("s", _number(a[()])) if a.ndim == 0 else None
        return _Val(obj, form, a.shape)

    literal = const  # exact: 0.1 is the float64 nearest 0.1, integers stay integers

    def detach(self, v: _Val, node=None) -> _Val:
        if v.obj is None:
            raise SymbolicSkip("detach() needs the componentwise symbolic check")
        obj = _constant(self.evaluate(v))
        form = ("s", obj[()]) if obj.ndim == 0 else None
        return _Val(obj, form, v.shape)

    def evaluate(self, v: _Val) -> np.ndarray:
        """``v`` at the point, to 30 digits, as float64."""
        return _evaluate(v.obj, self.point)

    def apply(self, name: str, args: list, params: dict, node=None) -> _Val:
        o = OPS.get(name)
        if o is None:
            raise SymbolicSkip(f"no sympy form for {name}")
        sym = o.sym
        if sym is None:
            raise SymbolicSkip(f"no sympy form for {name}")
        if o.nin < 0:
            args = args[0]
        obj = None
        if self.componentwise:
            objs = [a.obj for a in args]
            try:
                if isinstance(sym, str) and sym == SAME:
                    out = (
                        o.forward(objs, **params)
                        if o.nin < 0
                        else o.forward(*objs, **params)
                    )
                elif isinstance(sym, tuple) and sym[0] == "array":
                    out = sym[1](_SP, *objs, **params)
                elif callable(sym):
                    out = _SP.map(lambda *a: sym(_SP, *a, **params), *objs)
                else:
                    raise SymbolicSkip(f"unknown sympy form for {name}: {sym!r}")
            except SymbolicSkip:
                raise
            except Exception as exc:
                raise SymbolicSkip(
                    f"the sympy form of {name} failed: {type(exc).__name__}: {exc}"
                ) from exc
            obj = _obj(out)
            shape = obj.shape
        form = _matrix_form(o, args, params)
        if obj is None:
            if form is None:
                raise SymbolicSkip(
                    f"more than {MAX_SYMBOLS} components to differentiate one by one, "
                    f"and {name} has no closed matrix form here"
                )
            shape = _form_shape(form)
        return _Val(obj, form, shape)


def _form_shape(form) -> tuple:
    kind, e = form
    if kind == "s":
        return ()
    if kind == "v":
        return (int(e.shape[0]),)
    return tuple(int(n) for n in e.shape)


def _component_names(shapes: Mapping[str, tuple]) -> dict[str, np.ndarray]:
    """Readable, distinct symbol names: x0, x1 for vectors, A_0_1 for matrices."""

    def plain(n, shape):
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            if not idx:
                out[idx] = n
            elif len(idx) == 1 and not n[-1].isdigit():
                out[idx] = f"{n}{idx[0]}"
            else:
                out[idx] = n + "".join(f"_{i}" for i in idx)
        return out

    def bracket(n, shape):
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            out[idx] = n if not idx else f"{n}[{','.join(map(str, idx))}]"
        return out

    names = {n: plain(n, s) for n, s in shapes.items()}
    seen: dict[str, int] = {}
    for arr in names.values():
        for label in arr.flat:
            seen[label] = seen.get(label, 0) + 1
    for n, s in shapes.items():
        if s and any(seen[label] > 1 for label in names[n].flat):
            names[n] = bracket(n, s)
    return names


@dataclass
class _Form:
    """One argument's matrix-calculus form, as an op's ``matrix`` fact reads it."""

    kind: str  # "s" scalar, "v" n x 1 column, "m" matrix
    e: Any  # the sympy expression
    shape: tuple
    plain: bool  # a scalar that is no matrix expression


def _matrix_form(o, args: list[_Val], params: dict):
    """The op on matrix-calculus forms (its ``matrix`` fact), where sympy's
    matrix calculus applies; an elementwise form of plain scalars is a scalar."""
    if not args or any(a.form is None for a in args):
        return None
    forms = [_Form(a.form[0], a.form[1], a.shape,
                   a.form[0] == "s" and not isinstance(a.form[1], sp.MatrixExpr))
             for a in args]
    try:
        if o.matrix is not None:
            return o.matrix(_SP, *forms, **params)
        sym = o.sym
        if callable(sym) and all(f.plain for f in forms):
            return ("s", sym(_SP, *(f.e for f in forms), **params))
    except Exception:  # sympy refuses the mix (e.g. a scalar plus a 1x1 matrix)
        return None
    return None


# -- differentiation and evaluation ---------------------------------------------------
def _clean(d):
    """Derivatives sympy leaves unevaluated that are 0 almost everywhere."""
    if not isinstance(d, sp.Basic):
        return d
    if d.has(sp.DiracDelta):
        d = d.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    if d.has(sp.Derivative):
        steps = (sp.floor, sp.ceiling, sp.sign)
        d = d.replace(
            lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, steps),
            lambda e: sp.S.Zero,
        )
        if d.has(sp.Subs):
            d = d.doit()
    return d


def _diff(f, syms: np.ndarray) -> np.ndarray:
    """Each element of ``f`` (one expression or an object array) differentiated by
    each symbol of ``syms``: shape ``f.shape + syms.shape``."""
    f = _obj(f)
    d = np.empty(f.shape + syms.shape, dtype=object)
    for o, fo in np.ndenumerate(f):
        for i, s in np.ndenumerate(syms):
            d[o + i] = _clean(sp.diff(fo, s))
    return d


def _to_float(e, point) -> float:
    """One sympy value at the point (``point`` maps symbols to 30-digit Floats)."""
    if isinstance(e, (int, float)):
        return float(e)
    if e.free_symbols:
        # Substituting 30-digit Floats makes sympy evaluate as it rebuilds, and its
        # constructor cache shares repeated subexpressions (the determinants of
        # inv or solve); evalf finishes what is left (pi * 2.0, ...).
        e = e.xreplace(point)
    if not e.is_Number:
        e = e.evalf(_DIGITS)
    if e is sp.nan or e is sp.zoo:
        return math.nan
    if e in (sp.oo, -sp.oo):
        return float(e)
    if not e.is_number or e.has(sp.Derivative):
        raise SymbolicSkip(f"sympy cannot evaluate {_show(e)} at the point")
    try:
        c = complex(e)
    except TypeError as exc:
        raise SymbolicSkip(f"sympy cannot evaluate {_show(e)} at the point") from exc
    if c.imag and abs(c.imag) > 1e-12 * max(1.0, abs(c.real)):
        return math.nan  # outside the real domain, as numpy says
    return c.real


def _evaluate(arr: np.ndarray, point) -> np.ndarray:
    """Every element at the point, to 30 digits, as float64."""
    out = np.empty(arr.shape, dtype=np.float64)
    for idx, e in np.ndenumerate(arr):
        out[idx] = _to_float(e, point)
    return out


def _lambdified(expr, values: Mapping) -> np.ndarray:
    """Evaluate a matrix-calculus result with numpy. Symbols are renamed first, so
    that no name the user chose ever reaches lambdify's code printer."""
    safe = {}
    args = []
    vals = []
    for i, (s, v) in enumerate(values.items()):
        if s not in expr.free_symbols:
            continue
        if isinstance(s, sp.MatrixSymbol):
            t = sp.MatrixSymbol(f"_m{i}", *s.shape)
        else:
            t = sp.Symbol(f"_s{i}", real=True)
        safe[s] = t
        args.append(t)
        vals.append(v)
    f = sp.lambdify(args, expr.xreplace(safe), modules="numpy")
    with np.errstate(all="ignore"):
        return np.asarray(f(*vals), dtype=np.float64)


@dataclass
class _Job:
    """One symbolic computation, run whole in the worker."""

    quantity: str
    inputs: Mapping[str, Any]
    wrt: Sequence[str]
    grad_output: Any
    build: Callable[[SympyBackend], _Val]
    method: str

    def run(self) -> Symbolic:
        inputs = {n: np.asarray(v, dtype=np.float64) for n, v in self.inputs.items()}
        wrt = list(self.wrt)
        for n in wrt:
            if n not in inputs:
                raise SymbolicSkip(f"unknown input {n}")
        tr = SympyBackend(inputs, wrt)
        out = self.build(tr)
        notes = [GRAPH_NOTE] if self.method == "graph replay" else []
        if self.quantity == "jacobian":
            values, formulas, value = self.jacobian(tr, out)
        elif self.quantity == "hessian":
            values, formulas, value = self.hessian(tr, out)
        else:
            values, formulas, value = self.gradient(tr, out, notes)
        return Symbolic(self.quantity, values, formulas, value, self.method, notes)

    def scalar(self, tr, out: _Val):
        """The objective: f itself, or sum(grad_output * f) for a VJP."""
        if self.grad_output is None:
            if math.prod(out.shape) != 1:
                raise SymbolicSkip(f"the output has shape {out.shape}, not a scalar")
            return out.obj.reshape(())[()] if out.obj is not None else None
        if out.obj is None:
            return None
        g = np.broadcast_to(np.asarray(self.grad_output, dtype=np.float64), out.shape)
        return sp.Add(*[_number(gi) * oi for gi, oi in zip(g.flat, out.obj.flat)])

    def gradient(self, tr, out: _Val, notes):
        f = self.scalar(tr, out)
        label = "f" if self.grad_output is None else "(g·f)"
        values: dict[str, np.ndarray] = {}
        formulas: dict[str, str] = {}
        if f is not None:
            for n in self.wrt:
                d = _diff(f, tr.syms[n])
                values[n] = _evaluate(d, tr.point)
                formulas[n] = _componentwise(label, tr.syms[n], d)
            value = np.asarray(_to_float(f, tr.point))
        closed, closed_value = self.closed_forms(tr, out, label)
        for n, (text, v) in closed.items():
            if n in values:
                ref = values[n]
                scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
                if not np.allclose(
                    v, ref, rtol=1e-9, atol=1e-12 * scale, equal_nan=True
                ):
                    continue  # sympy's matrix calculus disagrees with itself: not shown
            else:
                values[n] = v
            formulas[n] = text
        if f is None:
            missing = [n for n in self.wrt if n not in values]
            if missing or closed_value is None:
                raise SymbolicSkip(
                    f"more than {MAX_SYMBOLS} components to differentiate one by one, "
                    f"and no closed matrix form for {', '.join(missing) or 'the value'}"
                )
            value = closed_value
            notes.append(
                "symbolic values from the closed matrix form, evaluated in float64"
            )
        return values, formulas, value

    def closed_forms(self, tr, out: _Val, label: str):
        """``{input: (formula, values)}`` where sympy's matrix calculus applies."""
        if out.form is None:
            return {}, None
        kind, e = out.form
        mvalues = dict(tr.mvalues)
        if self.grad_output is None:
            if kind != "s":
                return {}, None
            objective = e
        elif kind == "v":
            name = next(c for c in ("g", "v", "w", "u", "g_out") if c not in tr.inputs)
            gm = sp.MatrixSymbol(name, e.shape[0], 1)
            mvalues[gm] = np.asarray(self.grad_output, dtype=np.float64).reshape(-1, 1)
            objective = gm.T * e
            label = f"({name}·f)"
        elif kind == "s":
            objective = _number(float(np.asarray(self.grad_output).reshape(()))) * e
        else:
            return {}, None
        result = {}
        for n in self.wrt:
            m = tr.msyms.get(n)
            if m is None:
                continue
            try:
                d = objective.diff(m)
                shape = tr.inputs[n].shape
                if d.has(sp.Derivative):
                    continue
                dshape = getattr(d, "shape", None)
                if shape == ():
                    if dshape not in (None, (1, 1)):
                        continue
                elif dshape != (m.shape if len(shape) == 2 else (shape[0], 1)):
                    continue
                v = _lambdified(d, mvalues).reshape(shape)
            except Exception:
                continue
            head = (
                f"∂{label}/∂{n}"
                if shape == ()
                else f"∇{n}"
                if label == "f"
                else f"∇{n}{label}"
            )
            result[n] = (f"{head} = {_show(d)}", v)
        try:
            value = _lambdified(objective, mvalues).reshape(())
        except Exception:
            value = None
        return result, value

    def jacobian(self, tr, out: _Val):
        if out.obj is None:
            raise SymbolicSkip(
                f"more than {MAX_SYMBOLS} components for a symbolic Jacobian"
            )
        values, formulas = {}, {}
        for n in self.wrt:
            syms = tr.syms[n]
            d = _diff(out.obj, syms)
            values[n] = _evaluate(d, tr.point)
            parts = []
            for o, _ in np.ndenumerate(out.obj):
                label = "f" if not o else f"f[{','.join(map(str, o))}]"
                for i, s in np.ndenumerate(syms):
                    parts.append(f"∂{label}/∂{s} = {_show(d[o + i])}")
            formulas[n] = _shorten(parts)
        return values, formulas, _evaluate(out.obj, tr.point)

    def hessian(self, tr, out: _Val):
        f = self.scalar(tr, out)
        if f is None:
            raise SymbolicSkip(
                f"more than {MAX_SYMBOLS} components for a symbolic Hessian"
            )
        grads = {n: _diff(f, tr.syms[n]) for n in self.wrt}
        values, formulas = {}, {}
        for a in self.wrt:
            for b in self.wrt:
                sa, sb = tr.syms[a], tr.syms[b]
                d = _diff(grads[a], sb)
                parts = [f"∂²f/∂{sa[i]}∂{s} = {_show(d[i + j])}"
                         for i in np.ndindex(sa.shape) for j, s in np.ndenumerate(sb)]
                values[f"{a},{b}"] = _evaluate(d, tr.point)
                formulas[f"{a},{b}"] = _shorten(parts)
        return values, formulas, np.asarray(_to_float(f, tr.point))


def _shorten(parts: list[str]) -> str:
    if len(parts) <= _SHOW + 1:
        return "; ".join(parts)
    return "; ".join(parts[:_SHOW]) + f"; … ({len(parts)} components)"


def _componentwise(label: str, syms: np.ndarray, d: np.ndarray) -> str:
    return _shorten([f"∂{label}/∂{s} = {_show(e)}" for s, e in zip(syms.flat, d.flat)])
