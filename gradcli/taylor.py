"""Taylor expansions of a scalar function of one variable: ``gradcli taylor``.

The derivatives come from Taylor-mode propagation: the graph the engine recorded at
the point is replayed (``interpret.replay``) on truncated power series ("jets",
``_JetBackend``), each op by its series rule: linear ops (those whose rules only
move, sum or scale the gradient) order by order, products by Leibniz's rule,
and the nonlinear elementwise and matrix ops by the classic recurrences (Griewank
and Walther, *Evaluating Derivatives*, ch. 13). An op without a rule falls back to
nested reverse mode (the engine's gradient, recorded with ``create_graph``,
differentiated again; its graph grows geometrically with the order, so it is
limited to ``NESTED_MAX_ORDER``). A vector input is expanded along a direction
``d``: ``g(t) = f(x + t d)`` at ``t = 0``.
``sympy_derivatives`` computes the same numbers a second way (the expression, or
the graph recorded at the point, rebuilt in sympy and differentiated ``order``
times in ``t``, to 30 digits), for the cross-check; it imports sympy, this
module does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .errors import EvaluationError

__all__ = ["Expansion", "expand", "nested", "polynomial_latex", "polynomial_text",
           "sympy_derivatives"]

MAX_ORDER = 20
NESTED_MAX_ORDER = 6


@dataclass
class Expansion:
    variable: str  # the input expanded in
    point: np.ndarray  # its value at the point
    along: np.ndarray | None  # the direction, for a vector input
    derivatives: np.ndarray  # d^k/dt^k f at the point, k = 0..order
    warnings: list[str] = field(default_factory=list)
    kinks: list[str] = field(default_factory=list)  # op-table kinks at the point

    @property
    def coefficients(self) -> np.ndarray:
        """The Taylor coefficients ``d_k / k!``."""
        return self.derivatives / np.array(
            [math.factorial(k) for k in range(len(self.derivatives))], dtype=np.float64)


def expand(target, inputs: Mapping[str, np.ndarray], name: str, order: int, *,
           along: np.ndarray | None = None, max_elements: int = 10_000_000) -> Expansion:
    """Derivatives 0..``order`` of ``target`` in ``name`` (along ``along``), by
    Taylor-mode propagation (nested reverse mode for an op without a series rule).

    >>> from gradcli.compute import prepare
    >>> e = expand(prepare("exp(2*x)", ["x"]), {"x": np.array(0.0)}, "x", 3)
    >>> e.derivatives.tolist()
    [1.0, 2.0, 4.0, 8.0]
    """
    from .compute import evaluate
    from .interpret import replay

    x0 = np.asarray(inputs[name], dtype=np.float64)
    point = {n: np.asarray(a, dtype=np.float64) for n, a in inputs.items()}
    r = evaluate(target, point, wrt=[name], record=True, no_grad=True,
                 max_elements=max_elements)
    from .compute import refuse_cuts

    refuse_cuts(target, r.cuts, "its Taylor coefficients")
    if r.value.size != 1:
        raise EvaluationError(
            f"the output has shape {r.value.shape}, not a single number: a Taylor "
            "expansion needs a scalar function",
            hint="wrap the expression in sum(...), or expand one component")
    from .compute import kinks

    on_kink = kinks(r.output)
    backend = _JetBackend(order)
    d = np.ones_like(x0) if along is None else np.broadcast_to(
        np.asarray(along, dtype=np.float64), x0.shape)
    seed = np.zeros((order + 1,) + x0.shape)
    seed[0] = x0
    if order:
        seed[1] = d
    env = {n: seed if n == name else backend.const(a) for n, a in point.items()}
    try:
        with np.errstate(all="ignore"):
            out = replay((r.output, r.leaves), backend, env)
    except _NoRule as exc:
        if order > NESTED_MAX_ORDER:
            raise EvaluationError(
                f"{exc.args[0]} has no Taylor-mode rule, and nested reverse mode is "
                f"limited to order {NESTED_MAX_ORDER}",
                hint=f"ask for --order {NESTED_MAX_ORDER} or less") from exc
        e = nested(target, inputs, name, order, along=along, max_elements=max_elements)
        e.warnings.append(f"{exc.args[0]} has no Taylor-mode rule: the derivatives "
                          "come from nested reverse mode")
        return _at_kinks(e, on_kink)
    ds = np.asarray(out, dtype=np.float64).reshape(order + 1)
    return _at_kinks(_finish(Expansion(name, x0, along, ds, backend.notes)), on_kink)


def _at_kinks(e: Expansion, found: list[str]) -> Expansion:
    """At a kink the op table knows, f has no Taylor expansion: the derivatives
    are those of the engine's convention (one side, or a tie split), as its
    gradient is; a warning says so, and sympy's differ without either being wrong."""
    e.kinks = list(dict.fromkeys(found))
    if e.kinks:
        e.warnings.insert(0, f"the point is on a kink ({e.kinks[0]}): f has no Taylor "
                             "expansion there; the derivatives follow the engine's "
                             "convention")
    return e


def _finish(e: Expansion) -> Expansion:
    d = e.derivatives
    if not np.isfinite(d).all():
        k = int(np.flatnonzero(~np.isfinite(d))[0])
        e.warnings.append(f"d{k} is {d[k]} at the point: the expansion stops being "
                          "meaningful there")
    return e


def nested(target, inputs: Mapping[str, np.ndarray], name: str, order: int, *,
           along: np.ndarray | None = None, max_elements: int = 10_000_000) -> Expansion:
    """Derivatives 0..``order`` by nested reverse mode (``grad`` of ``grad`` ...,
    each recorded with ``create_graph``): the fallback of ``expand``, and its
    independent reference in the tests.

    >>> from gradcli.compute import prepare
    >>> nested(prepare("exp(2*x)", ["x"]), {"x": np.array(0.0)}, "x", 3).derivatives.tolist()
    [1.0, 2.0, 4.0, 8.0]
    """
    from .autograd import grad
    from .compute import _default_dtype, _graph_of, call
    from .engine import graph
    from .engine.tensor import Tensor

    x0 = np.asarray(inputs[name], dtype=np.float64)
    fixed = {n: Tensor._make(np.asarray(a, dtype=np.float64))
             for n, a in inputs.items() if n != name}
    ds: list[float] = []
    with np.errstate(all="ignore"), _default_dtype(np.float64), graph.enable_grad(), \
            _graph_of(target):
        if along is None:
            t = Tensor._make(x0.copy()).requires_grad_(True)
            x = t
        else:
            t = Tensor._make(np.array(0.0)).requires_grad_(True)
            x = Tensor._make(x0) + t * Tensor._make(np.asarray(along, dtype=np.float64))
        y = call(target, {**fixed, name: x}, max_elements)
        if y._data.size != 1:
            raise EvaluationError(
                f"the output has shape {y._data.shape}, not a single number: a Taylor "
                "expansion needs a scalar function",
                hint="wrap the expression in sum(...), or expand one component")
        y = y.reshape(())
        ds.append(float(y._data))
        g = y
        for _ in range(order):
            if not g.requires_grad:
                ds.append(0.0)  # a constant: every later derivative is 0
                g = Tensor._make(np.array(0.0))
                continue
            try:
                (g,) = grad(g, t, create_graph=True, allow_unused=True)
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise EvaluationError(f"backward pass: {exc}") from exc
            if g is None:
                g = Tensor._make(np.array(0.0))
            g = g.reshape(())
            ds.append(float(g._data))
    return _finish(Expansion(name, x0, along, np.array(ds, dtype=np.float64)))


# -- Taylor mode: jets, arrays with the orders on a leading axis -------------------
class _NoRule(Exception):
    """The op has no series rule here (``args[0]`` names it)."""


_BILINEAR = {"mul", "dot", "matmul", "outer", "inner", "kron", "tensordot", "cross"}
_CONSTANT = {"sign", "floor", "ceil", "less", "less_equal", "greater", "greater_equal",
             "equal", "not_equal", "isfinite", "isnan", "isinf", "logical_and",
             "logical_or", "logical_not"}
_LN2, _LN10 = math.log(2.0), math.log(10.0)


class _JetBackend:
    """``replay``'s backend on jets: ``y[k]`` is the k-th derivative in t (not the
    Taylor coefficient ``y[k] / k!``). The recurrences are the classic ones with
    binomial weights (Leibniz's rule for products) instead of the quotients
    ``j / k``, so integer derivatives (exp and tan at 0, 1/(1-x)) stay exact
    integers, and no rounded ``1/k!`` is multiplied back by ``k!``."""

    def __init__(self, order: int) -> None:
        self.n = order + 1
        self.notes: list[str] = []
        # C[k][i] = k choose i, exact as floats up to order 20 (and well beyond)
        self.C = [[float(math.comb(k, i)) for i in range(k + 1)] for k in range(self.n)]

    def const(self, value):
        a = np.asarray(value)
        out = np.zeros((self.n,) + a.shape, dtype=a.dtype if a.dtype == bool else np.float64)
        out[0] = a
        return out

    literal = const

    def detach(self, value, node=None):
        return self.const(value[0])

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def apply(self, name: str, args: list, params: dict, node=None):
        from .engine.graph import CONST, MOVES
        from .engine.ops import OPS

        o = OPS[name]
        rule = getattr(self, f"_{name}", None)
        if rule is not None:
            return rule(*args, **params)
        linear = (o.support is MOVES and name != "pad") or (
            o.local is not None and all(kind == CONST for kind, _ in o.local))
        if linear:
            if o.nin < 0:
                return np.stack([_run(o, [[a[k] for a in args[0]]], params)
                                 for k in range(self.n)])
            return np.stack([_run(o, [a[k] for a in args], params) for k in range(self.n)])
        if name in _BILINEAR:  # Leibniz: (ab)^(k) = sum_i C(k, i) a^(i) b^(k-i)
            a, b = args
            return np.stack([sum(self.C[k][i] * _run(o, [a[i], b[k - i]], params)
                                 for i in range(k + 1)) for k in range(self.n)])
        if name in _CONSTANT:
            return self.const(_run(o, [a[0] for a in args], params))
        raise _NoRule(name)

    # helpers: y' = h u', so y^(k) = (h u')^(k-1) = sum_{j=1..k} C(k-1, j-1) u^(j) h^(k-j)
    def _step(self, u, h, k):
        c = self.C[k - 1]
        return sum(c[j - 1] * u[j] * h[k - j] for j in range(1, k + 1))

    def _integrate(self, u, y0, h):
        y = np.zeros(np.broadcast_shapes(u.shape, h.shape))
        y[0] = y0
        for k in range(1, self.n):
            y[k] = self._step(u, h, k)
        return y

    def _ode(self, u, y0, h_of):
        """y' = h(y) u', h's derivative m from y_0..y_m."""
        y = np.zeros(u.shape)
        h = np.zeros(u.shape)
        y[0] = y0
        h[0] = h_of(y, 0)
        for k in range(1, self.n):
            y[k] = self._step(u, h, k)
            h[k] = h_of(y, k)
        return y

    def _square_coeff(self, y, m):
        """(y^2)^(m), by Leibniz."""
        c = self.C[m]
        return sum(c[i] * y[i] * y[m - i] for i in range(m + 1))

    # arithmetic
    def _div(self, a, b):
        shape = np.broadcast_shapes(a.shape, b.shape)
        y = np.zeros(shape)
        for k in range(self.n):  # a = b y, by Leibniz, solved for y^(k)
            c = self.C[k]
            y[k] = (a[k] - sum(c[j] * b[j] * y[k - j] for j in range(1, k + 1))) / b[0]
        return y

    def _pow(self, a, b):
        if np.any(b[1:]):  # a**b = exp(b log a)
            y = self._exp(self.apply("mul", [b, self._log(a)], {}))
            y[0] = a[0] ** b[0]
            return y
        r = b[0]
        if np.all(r == np.round(r)) and np.all(np.abs(r) <= 64) and np.all(r >= 0):
            return self._int_pow(a, np.asarray(r))
        shape = np.broadcast_shapes(a.shape, b.shape)
        y = np.zeros(shape)
        y[0] = a[0] ** r
        for k in range(1, self.n):  # a y' = r a' y, differentiated k - 1 times
            c = self.C[k - 1]
            y[k] = (r * sum(c[i] * a[k - i] * y[i] for i in range(k))
                    - sum(c[i] * a[i] * y[k - i] for i in range(1, k))) / a[0]
        return y

    def _int_pow(self, a, r):
        if r.ndim == 0:  # powers by repeated products: exact at a_0 = 0
            out = self.const(np.ones(a.shape[1:]))
            for _ in range(int(r)):
                out = self.apply("mul", [out, a], {})
            return out
        return np.stack([self._int_pow(a, rr) for rr in r.reshape(-1)]).reshape(
            np.broadcast_shapes(a.shape, (self.n,) + r.shape))

    def _square(self, u):
        return self.apply("mul", [u, u], {})

    def _sqrt(self, u):
        y = np.zeros(u.shape)
        y[0] = np.sqrt(u[0])
        for k in range(1, self.n):  # y y = u, by Leibniz
            c = self.C[k]
            y[k] = (u[k] - sum(c[j] * y[j] * y[k - j] for j in range(1, k))) / (2 * y[0])
        return y

    # exponentials and logarithms
    def _exp(self, u):
        return self._ode(u, np.exp(u[0]), lambda y, m: y[m])

    def _expm1(self, u):
        y = self._exp(u)
        y[0] = np.expm1(u[0])
        return y

    def _exp2(self, u):
        y = self._exp(u * _LN2)
        y[0] = np.exp2(u[0])
        return y

    def _log(self, u):
        return self._integrate(u, np.log(u[0]), self._div(self.const(np.ones(u.shape[1:])), u))

    def _log2(self, u):
        y = self._log(u) / _LN2
        y[0] = np.log2(u[0])
        return y

    def _log10(self, u):
        y = self._log(u) / _LN10
        y[0] = np.log10(u[0])
        return y

    def _log1p(self, u):
        one = self.const(np.ones(u.shape[1:]))
        return self._integrate(u, np.log1p(u[0]), self._div(one, u + one))

    # trigonometric and hyperbolic
    def _sin_cos(self, u, sign):
        s, c = np.zeros(u.shape), np.zeros(u.shape)
        s[0] = np.sin(u[0]) if sign < 0 else np.sinh(u[0])
        c[0] = np.cos(u[0]) if sign < 0 else np.cosh(u[0])
        for k in range(1, self.n):  # s' = c u', c' = -+ s u'
            s[k] = self._step(u, c, k)
            c[k] = sign * self._step(u, s, k)
        return s, c

    def _sin(self, u):
        return self._sin_cos(u, -1)[0]

    def _cos(self, u):
        return self._sin_cos(u, -1)[1]

    def _sinh(self, u):
        return self._sin_cos(u, 1)[0]

    def _cosh(self, u):
        return self._sin_cos(u, 1)[1]

    def _tan(self, u):
        return self._ode(u, np.tan(u[0]), lambda y, m: (m == 0) + self._square_coeff(y, m))

    def _tanh(self, u):
        return self._ode(u, np.tanh(u[0]), lambda y, m: (m == 0) - self._square_coeff(y, m))

    def _sigmoid(self, u):
        from .engine.ops import OPS

        y0 = _run(OPS["sigmoid"], [u[0]], {})
        return self._ode(u, y0, lambda y, m: y[m] - self._square_coeff(y, m))

    def _softplus(self, u):
        from .engine.ops import OPS

        return self._integrate(u, _run(OPS["softplus"], [u[0]], {}), self._sigmoid(u))

    def _inverse_trig(self, u, y0, inner, sign=1.0, root=True):
        """y' = sign u' / sqrt(inner(u)) (or / inner(u) without the root)."""
        one = self.const(np.ones(u.shape[1:]))
        w = inner(u, one)
        h = self._div(one, self._sqrt(w) if root else w)
        return self._integrate(u, y0, sign * h)

    def _arcsin(self, u):
        return self._inverse_trig(u, np.arcsin(u[0]), lambda u, one: one - self._square(u))

    def _arccos(self, u):
        return self._inverse_trig(u, np.arccos(u[0]), lambda u, one: one - self._square(u),
                                  -1.0)

    def _arctan(self, u):
        return self._inverse_trig(u, np.arctan(u[0]), lambda u, one: one + self._square(u),
                                  root=False)

    def _arcsinh(self, u):
        return self._inverse_trig(u, np.arcsinh(u[0]), lambda u, one: self._square(u) + one)

    def _arccosh(self, u):
        return self._inverse_trig(u, np.arccosh(u[0]), lambda u, one: self._square(u) - one)

    def _arctanh(self, u):
        return self._inverse_trig(u, np.arctanh(u[0]), lambda u, one: one - self._square(u),
                                  root=False)

    # kinks: the branch taken at the point, the engine's convention on the kink
    # (``expand`` warns of a kink at the point, from the op table's kink tests)
    def _abs(self, u):
        return np.sign(u[0]) * u

    def _relu(self, u):
        return (u[0] > 0) * u

    def _extreme(self, a, b, larger: bool):
        wins = a[0] > b[0] if larger else a[0] < b[0]
        tie = a[0] == b[0]
        y = np.where(wins, a, np.where(tie, (a + b) / 2, b))
        y[0] = np.maximum(a[0], b[0]) if larger else np.minimum(a[0], b[0])
        return y

    def _maximum(self, a, b):
        return self._extreme(a, b, True)

    def _minimum(self, a, b):
        return self._extreme(a, b, False)

    def _where(self, c, a, b):
        return np.where(c[0], a, b)

    def _clip(self, x, lo, hi):
        inside = (x[0] >= lo[0]) & (x[0] <= hi[0])
        return np.where(inside, x, np.where(x[0] < lo[0], lo, hi))

    # reductions: composed of the rules above; the value itself is the op's own
    def _exact(self, y, name, args, params):
        from .engine.ops import OPS

        y[0] = _run(OPS[name], [a[0] for a in args], params)
        return y

    def _shifted(self, x, axis):
        """x less its maximum (a constant: only the value moves), for exp."""
        out = x.copy()
        out[0] = x[0] - np.max(x[0], axis=axis, keepdims=True)
        return out

    def _logsumexp(self, x, axis=None, keepdims=False):
        e = self._exp(self._shifted(x, axis))
        y = self._log(self.apply("sum", [e], {"axis": axis, "keepdims": keepdims}))
        return self._exact(y, "logsumexp", [x], {"axis": axis, "keepdims": keepdims})

    def _softmax(self, x, axis=-1):
        e = self._exp(self._shifted(x, axis))
        y = self._div(e, self.apply("sum", [e], {"axis": axis, "keepdims": True}))
        return self._exact(y, "softmax", [x], {"axis": axis})

    def _log_softmax(self, x, axis=-1):
        y = x - self._logsumexp(x, axis=axis, keepdims=True)
        return self._exact(y, "log_softmax", [x], {"axis": axis})

    def _var(self, x, axis=None, ddof=0, keepdims=False):
        mu = self.apply("mean", [x], {"axis": axis, "keepdims": True})
        c = x - mu
        total = self.apply("sum", [self.apply("mul", [c, c], {})],
                           {"axis": axis, "keepdims": keepdims})
        count = x[0].size // max(mu[0].size, 1)
        y = total / (count - ddof)
        return self._exact(y, "var", [x], {"axis": axis, "ddof": ddof, "keepdims": keepdims})

    def _std(self, x, axis=None, ddof=0, keepdims=False):
        y = self._sqrt(self._var(x, axis=axis, ddof=ddof, keepdims=keepdims))
        return self._exact(y, "std", [x], {"axis": axis, "ddof": ddof, "keepdims": keepdims})

    def _norm(self, x, ord=None, axis=None, keepdims=False):
        if ord is not None or isinstance(axis, (tuple, list)):
            raise _NoRule("norm with ord or a pair of axes")
        y = self._sqrt(self.apply("sum", [self.apply("mul", [x, x], {})],
                                  {"axis": axis, "keepdims": keepdims}))
        return self._exact(y, "norm", [x], {"ord": ord, "axis": axis, "keepdims": keepdims})

    def _extreme_of(self, x, axis, keepdims, name):
        m0 = (np.max if name == "max" else np.min)(x[0], axis=axis, keepdims=True)
        mask = x[0] == m0
        count = mask.sum(axis=axis, keepdims=True)  # a tie shares evenly (``expand`` warns)
        y = np.stack([np.sum(x[k] * mask / count, axis=axis, keepdims=keepdims)
                      for k in range(self.n)])
        return self._exact(y, name, [x], {"axis": axis, "keepdims": keepdims})

    def _max(self, x, axis=None, keepdims=False):
        return self._extreme_of(x, axis, keepdims, "max")

    def _min(self, x, axis=None, keepdims=False):
        return self._extreme_of(x, axis, keepdims, "min")

    def _det(self, a):
        """det(A0) exp(sum_m (-1)^(m+1) tr(E^m) / m), E = A0^-1 (A - A0): E has
        no constant term, so the sum stops at the order."""
        if a.ndim != 3:
            raise _NoRule("det of a stack of matrices")
        try:
            a0_inv = np.linalg.inv(a[0])
        except np.linalg.LinAlgError as exc:
            raise _NoRule("det of a singular matrix") from exc
        e = a.copy()
        e[0] = 0.0
        e = self.apply("matmul", [self.const(a0_inv), e], {})
        power, log = e, np.zeros(self.n)
        for m in range(1, self.n):
            log += (-1) ** (m + 1) / m * np.trace(power, axis1=1, axis2=2)
            power = self.apply("matmul", [power, e], {})
        y = np.linalg.det(a[0]) * self._exp(log)
        return self._exact(y, "det", [a], {})

    # matrices
    def _inv(self, a):
        y = np.zeros(a.shape)
        y[0] = np.linalg.inv(a[0])
        for k in range(1, self.n):  # A Y = I, by Leibniz
            c = self.C[k]
            y[k] = -y[0] @ sum(c[j] * (a[j] @ y[k - j]) for j in range(1, k + 1))
        return y

    def _solve(self, a, b):
        from .engine.ops import OPS

        shape = _run(OPS["solve"], [a[0], b[0]], {}).shape
        x = np.zeros((self.n,) + shape)
        for k in range(self.n):  # A X = B, by Leibniz
            rhs = b[k] - sum(self.C[k][j] * _run(OPS["matmul"], [a[j], x[k - j]], {})
                             for j in range(1, k + 1))
            x[k] = _run(OPS["solve"], [a[0], rhs], {})
        return x


def _run(o, args, params):
    from .engine.tensor import Tensor

    out = o.run(*args, **params)
    return out._data if isinstance(out, Tensor) else np.asarray(out)


def sympy_derivatives(target, inputs: Mapping[str, np.ndarray], name: str, order: int,
                      along=None, timeout: float | None = 10.0) -> np.ndarray:
    """The same derivatives per sympy (raises ``symbolic.SymbolicSkip`` with the
    reason when sympy cannot: an op without a form, the time budget)."""
    from .symbolic import Pending

    point = {n: np.asarray(v, dtype=np.float64) for n, v in inputs.items()}
    graph = None
    if target.tree is None:
        from .compute import evaluate

        r = evaluate(target, point, record=True, no_grad=True)
        graph = (r.output, r.leaves)

    def task():
        return _sympy_task(target.tree, graph, point, name, order, along)

    return Pending(task, timeout, warm=False).result()


def _sympy_task(tree, graph, point, name, order, along):
    import sympy as sp

    from .interpret import interpret, replay
    from .symbolic import SymbolicSkip, SympyBackend, _clean, _to_float

    tr = SympyBackend(point, [name])
    if not tr.componentwise:
        raise SymbolicSkip("too many components for sympy")
    if tree is not None:
        out = interpret(tree, tr, tr.leaves)
    else:
        try:
            out = replay(graph, tr, tr.leaves)
        except ValueError as exc:
            raise SymbolicSkip(str(exc)) from exc
    f = out.obj.reshape(())[()]
    t = sp.Symbol("_t", real=True)
    syms = tr.syms[name]
    d = None if along is None else np.broadcast_to(np.asarray(along, np.float64),
                                                    syms.shape)
    sub = {}
    for idx, s in np.ndenumerate(syms):
        sub[s] = tr.point[s] + t * (1 if d is None else sp.Float(float(d[idx]), 30))
    g = f.xreplace(sub)
    values = dict(tr.point)
    values[t] = sp.Integer(0)
    out_values = []
    for k in range(order + 1):
        if k:
            g = _clean(sp.diff(g, t))
        out_values.append(_to_float(g, values))
    return np.array(out_values, dtype=np.float64)


def _number(c: float) -> str:
    return repr(float(c))


def _polynomial(e: Expansion, number, shifted, power, times: str) -> str:
    """The Taylor polynomial in one notation: ``number(c)`` writes a
    coefficient, ``shifted(var, sign, a)`` the input less the point,
    ``power(var, k)`` a power, ``times`` joins a coefficient and its power."""
    if e.along is None:
        a = float(e.point)
        var = e.variable if a == 0 else shifted(e.variable, "-" if a > 0 else "+", abs(a))
    else:
        var = "t"
    terms = []
    coefficients = e.coefficients
    for k, c in enumerate(coefficients):
        if c == 0 and (k or np.any(coefficients[1:] != 0)):
            continue
        mag = number(abs(c)) if k == 0 or abs(c) != 1 else ""
        body = times.join(p for p in (mag, "" if k == 0 else power(var, k)) if p) or "1"
        sign = "-" if c < 0 or (math.copysign(1, c) < 0 and c == 0) else "+"
        terms.append((sign, body))
    if not terms:
        return "0"
    text = ("-" if terms[0][0] == "-" else "") + terms[0][1]
    return text + "".join(f" {s} {b}" for s, b in terms[1:])


def polynomial_text(e: Expansion) -> str:
    """The Taylor polynomial in gradcli's expression language: in the input
    (``x - 0.5``), or in ``t`` along a direction."""
    return _polynomial(e, _number, lambda v, s, a: f"({v} {s} {_number(a)})",
                       lambda v, k: v if k == 1 else f"{v}**{k}", "*")


def _latex_number(c: float) -> str:
    text = repr(float(c))  # the shortest that reads back, as the plain output
    if text.endswith(".0"):
        text = text[:-2]
    if "e" in text:
        mant, exp = text.split("e")
        return rf"{mant} \times 10^{{{int(exp)}}}"
    return text


def polynomial_latex(e: Expansion) -> str:
    """The Taylor polynomial as LaTeX."""
    return _polynomial(e, _latex_number,
                       lambda v, s, a: rf"\left({v} {s} {_latex_number(a)}\right)",
                       lambda v, k: v if k == 1 else f"{v}^{{{k}}}", " ")
