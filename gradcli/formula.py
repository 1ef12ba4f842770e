"""Derivatives as formulas: ``gradcli diff``.

The target is rebuilt in sympy by ``interpret`` (an expression) or ``replay`` (the
graph a function file recorded at the point) on ``symbolic.SympyBackend``; sympy
differentiates it. Each derivative is written, in order of preference, as

- a closed matrix form (``(A + A.T) @ x``), from sympy's matrix calculus over the
  ops' ``matrix`` facts;
- one elementwise formula, when every component has the same formula in the
  components of same-shaped inputs (``cos(x)*x + sin(x)``; a diagonal block as
  ``diag(...)``);
- else component by component, at most ``max_terms`` of them.

Formulas are printed in gradcli's own expression language by ``_Printer``, which
walks the sympy tree (no ``str()`` re-parsed), and in numpy; LaTeX and ``srepr`` are
sympy's. ``verify`` evaluates every formula with the engine at the point and compares
it with the engine's derivative: a formula that disagrees is a bug (exit 70), never
printed. This module imports sympy: only ``gradcli diff`` imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .engine.ops import OPS
from .errors import EvaluationError, GradcliError
from .interpret import interpret, replay
from .parse import Limits, free_names, parse
from .symbolic import Pending, SymbolicSkip, SympyBackend, _clean, _obj

__all__ = ["Block", "Derived", "Piece", "Verified", "check_formulas", "derive",
           "numpy_function", "verify"]

PATH_NOTE = ("a function file's formula holds along the path traced at this point "
             "only (loops unrolled, the branch taken)")


@dataclass
class Piece:
    """One printed formula: a whole block, or one component of it (``index``)."""

    name: str  # grad.x, hessian.x.x[0,1], jacobian.x
    text: str  # gradcli's expression language
    latex: str
    srepr: str
    numpy: str  # the same, as numpy code (np.sin, np.linalg.inv, ...)
    index: tuple | None = None


@dataclass
class Block:
    """The derivative with respect to one input (a pair, for a Hessian)."""

    name: str
    form: str  # "closed" (a scalar's), "matrix", "elementwise" or "components"
    shape: tuple
    pieces: list[Piece]
    total: int  # components of the block
    args: list[str]  # the inputs its formulas read, in input order


@dataclass
class Derived:
    quantity: str  # gradient, jacobian or hessian
    blocks: list[Block]
    notes: list[str] = field(default_factory=list)


# -- the printer -----------------------------------------------------------------
class _Unprintable(Exception):
    """No form in gradcli's language for this sympy expression."""


_ADD, _MUL, _NEG, _POW, _ATOM = 10, 20, 25, 30, 40

_FUNCS = {
    sp.sin: "sin", sp.cos: "cos", sp.tan: "tan", sp.asin: "arcsin", sp.acos: "arccos",
    sp.atan: "arctan", sp.sinh: "sinh", sp.cosh: "cosh", sp.tanh: "tanh",
    sp.asinh: "arcsinh", sp.acosh: "arccosh", sp.atanh: "arctanh", sp.exp: "exp",
    sp.log: "log", sp.Abs: "abs", sp.sign: "sign", sp.floor: "floor",
    sp.ceiling: "ceil", sp.atan2: "arctan2", sp.Mod: "mod",
}
_NUMPY = {"inv": "np.linalg.inv", "det": "np.linalg.det"}
_RELATIONS = {sp.StrictLessThan: "<", sp.LessThan: "<=", sp.StrictGreaterThan: ">",
              sp.GreaterThan: ">=", sp.Equality: "==", sp.Unequality: "!="}


@dataclass
class _Out:
    text: str
    prec: int
    kind: str = "s"  # "s" scalar (or 1 x 1), "v" column, "r" row, "m" matrix
    ones: bool = False  # a vector of ones (sympy's OneMatrix)
    transposed: str | None = None  # M.T: the text of M, atomic (for sum's axis)


class _Printer:
    """sympy -> gradcli expression text (or numpy code), walking the tree.

    ``names`` maps each sympy Symbol / MatrixSymbol to its text (``x``, ``x[0]``,
    ``A[0, 1]``). A product with a vector of ones is a sum (``A.T @ 1`` is
    ``sum(A, 0)``); any other ones vector is ``broadcast_to(1, (n,))`` (numpy:
    ``np.ones(n)``), and an identity ``diag(broadcast_to(1, (n,)))``
    (``np.eye(n)``): no input stands in for them, so each formula reads only the
    inputs it names."""

    def __init__(self, names: Mapping, shapes: Mapping[str, tuple], numpy: bool = False):
        self.names = names
        self.shapes = shapes
        self.numpy = numpy

    def __call__(self, e) -> str:
        return self.p(e).text

    def fn(self, name: str) -> str:
        return (_NUMPY.get(name) or f"np.{name}") if self.numpy else name

    def wrap(self, o: _Out, prec: int) -> str:
        return o.text if o.prec > prec else f"({o.text})"

    def p(self, e) -> _Out:
        if isinstance(e, sp.MatrixExpr):
            return self.matrix(e)
        if e in self.names:
            return _Out(self.names[e], _ATOM)
        if isinstance(e, sp.Symbol):
            raise _Unprintable(f"the symbol {e}")
        if e.is_Number:
            return self.number(e)
        if e is sp.pi:
            return _Out("np.pi" if self.numpy else "pi" if "pi" not in self.shapes
                        else repr(math.pi), _ATOM)
        if e is sp.E:
            return _Out(f"{self.fn('exp')}(1)", _ATOM)
        if isinstance(e, sp.Add):
            return self.add(e.as_ordered_terms())
        if isinstance(e, sp.Mul):
            return self.mul(e)
        if isinstance(e, sp.Pow):
            return self.pow(e)
        if isinstance(e, (sp.Max, sp.Min)):
            name = self.fn("maximum" if isinstance(e, sp.Max) else "minimum")
            args = [self.p(a).text for a in e.args]
            text = args[-1]
            for a in reversed(args[:-1]):
                text = f"{name}({a}, {text})"
            return _Out(text, _ATOM)
        if isinstance(e, sp.Heaviside):  # 0 at 0: relu's and maximum's convention
            return _Out(f"{self.fn('where')}({self.p(e.args[0]).text} > 0, 1, 0)", _ATOM)
        if isinstance(e, sp.Piecewise):
            return self.piecewise(e.args)
        if isinstance(e, sp.Function) and type(e) in _FUNCS:
            if isinstance(e, sp.log) and len(e.args) != 1:
                raise _Unprintable("a logarithm with a base")
            args = ", ".join(self.p(a).text for a in e.args)
            return _Out(f"{self.fn(_FUNCS[type(e)])}({args})", _ATOM)
        raise _Unprintable(type(e).__name__)

    def number(self, e) -> _Out:
        if e in (sp.oo, -sp.oo):  # numpy's inf, a constant of the language
            if "inf" in self.shapes and not self.numpy:
                raise _Unprintable("inf (an input has that name)")
            text = "np.inf" if self.numpy else "inf"
            return _Out(text, _ATOM) if e is sp.oo else _Out(f"-{text}", _NEG)
        if e.is_Integer:
            v = int(e)
            if abs(v) >= 2**53:
                raise _Unprintable(f"the integer {v}")
            return _Out(str(v), _ATOM if v >= 0 else _NEG)
        if e.is_Rational:
            text = f"{e.p}/{e.q}"
            return _Out(text, _MUL if e.p > 0 else _NEG)
        if e.is_Float:
            v = float(e)
            if not math.isfinite(v):
                raise _Unprintable(f"the number {v}")
            return _Out(repr(v), _ATOM if v >= 0 else _NEG)
        raise _Unprintable(f"the number {e}")

    def add(self, terms) -> _Out:
        parts = []
        for i, t in enumerate(terms):
            neg = i > 0 and t.could_extract_minus_sign()
            o = self.p(-t if neg else t)
            text = self.wrap(o, _ADD) if i else (o.text if o.prec >= _ADD else f"({o.text})")
            parts.append((" - " if neg else " + ") + text if i else text)
        kinds = {self.p(t).kind for t in terms[:1]}
        return _Out("".join(parts), _ADD, kinds.pop())

    def mul(self, e) -> _Out:
        coeff, _ = e.as_coeff_Mul()
        if coeff.is_negative:
            o = self.p(-e)
            return _Out("-" + self.wrap(o, _MUL - 1), _NEG, o.kind)
        num, den = [], []
        for f in sp.Mul.make_args(e):
            if f.is_Rational and not f.is_Integer:
                if f.p != 1:
                    num.append(sp.Integer(f.p))
                den.append(sp.Integer(f.q))
            elif isinstance(f, sp.Pow) and f.exp.is_Rational and f.exp.is_negative:
                den.append(f.base ** -f.exp)
            else:
                num.append(f)
        outs = [self.p(f) for f in num]
        kind = next((o.kind for o in outs if o.kind != "s"), "s")
        text = "*".join(self.wrap(o, _MUL - 1) if o.prec != _MUL else o.text
                        for o in outs) or "1"
        if not den:
            return _Out(text, _MUL, kind)
        douts = [self.p(f) for f in den]
        dtext = "*".join(self.wrap(o, _MUL) for o in douts)
        if len(douts) > 1:
            dtext = f"({dtext})"
        return _Out(f"{text}/{dtext}", _MUL, kind)

    def pow(self, e) -> _Out:
        b, x = e.args
        if x == sp.Rational(1, 2):
            return _Out(f"{self.fn('sqrt')}({self.p(b).text})", _ATOM)
        if x.is_Rational and x.is_negative:
            return _Out(f"1/{self.wrap(self.p(b ** -x), _MUL)}", _MUL)
        bo = self.p(b)
        xo = self.p(x)
        return _Out(f"{self.wrap(bo, _POW)}**{self.wrap(xo, _POW)}", _POW, bo.kind)

    def piecewise(self, pieces) -> _Out:
        value, cond = pieces[0]
        if cond is sp.true or len(pieces) == 1:
            if cond is not sp.true:
                raise _Unprintable("a piecewise form without a default")
            return self.p(value)
        if type(cond) not in _RELATIONS:
            raise _Unprintable(f"the condition {cond}")
        test = (f"{self.p(cond.lhs).text} {_RELATIONS[type(cond)]} "
                f"{self.p(cond.rhs).text}")
        rest = self.piecewise(pieces[1:])
        return _Out(f"{self.fn('where')}({test}, {self.p(value).text}, {rest.text})",
                    _ATOM)

    # -- matrix expressions (vectors are n x 1 columns) --------------------------
    def matrix(self, e) -> _Out:
        rows, cols = (int(n) for n in e.shape)
        if e in self.names:
            shape = self.shapes[str(e.name)]
            return _Out(self.names[e], _ATOM, "v" if len(shape) == 1 else "m")
        if isinstance(e, sp.Transpose):
            o = self.p(e.arg)
            if o.kind in "vr":
                return _Out(o.text, o.prec, "r" if o.kind == "v" else "v")
            if o.kind == "s":
                return o
            base = o.text if o.prec >= _ATOM else f"({o.text})"
            return _Out(f"{self.wrap(o, _ATOM - 1)}.T", _ATOM, "m", transposed=base)
        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_matrices()
            out = None
            for m in mats:
                o = self.p(m)
                out = o if out is None else self.product(out, o)
            if coeff != 1:
                c = self.p(coeff)
                if out.prec < _MUL:
                    out = _Out(f"({out.text})", _ATOM, out.kind)
                return self.mul_text(c, out)
            return out
        if isinstance(e, sp.MatAdd):
            terms = list(e.args)
            outs = []
            for i, t in enumerate(terms):
                neg = i > 0 and t.could_extract_minus_sign()
                o = self.p(-t if neg else t)
                outs.append((" - " if neg else " + " if i else "") + self.wrap(o, _ADD))
            return _Out("".join(outs), _ADD, self.p(terms[0]).kind)
        if isinstance(e, sp.Inverse) or (isinstance(e, sp.MatPow) and e.exp == -1):
            return _Out(f"{self.fn('inv')}({self.p(e.args[0]).text})", _ATOM, "m")
        if isinstance(e, sp.Determinant):
            return _Out(f"{self.fn('det')}({self.p(e.arg).text})", _ATOM)
        if isinstance(e, sp.Trace):
            return _Out(f"{self.fn('trace')}({self.p(e.arg).text})", _ATOM)
        if isinstance(e, sp.HadamardProduct):
            outs = [self.p(a) for a in e.args]
            return _Out("*".join(self.wrap(o, _MUL) for o in outs), _MUL, outs[0].kind)
        if isinstance(e, sp.OneMatrix) and (rows, cols) == (1, 1):
            return _Out("1", _ATOM)
        if isinstance(e, sp.OneMatrix) and 1 in (rows, cols):
            return _Out(self.ones(max(rows, cols)), _ATOM, "v" if cols == 1 else "r",
                        ones=True)
        if isinstance(e, sp.Identity):
            text = f"np.eye({rows})" if self.numpy else f"diag({self.ones(rows)})"
            return _Out(text, _ATOM, "m")
        raise _Unprintable(type(e).__name__)

    def ones(self, n: int, value: str = "1") -> str:
        """A vector of ``n`` copies of ``value`` (a scalar's text)."""
        if self.numpy:
            return f"np.ones({n})" if value == "1" else f"np.full({n}, {value})"
        return f"broadcast_to({value}, ({n},))"

    def summed(self, m: _Out, axis: int | None) -> _Out:
        """``sum(m, axis)``, on M rather than M.T (``sum(A.T, 1)`` is ``sum(A, 0)``)."""
        text = m.text
        if axis is not None and m.transposed is not None:
            text, axis = m.transposed, 1 - axis
        tail = "" if axis is None else f", {axis}"
        kind = "s" if axis is None else "v" if axis == 1 else "r"
        return _Out(f"{self.fn('sum')}({text}{tail})", _ATOM, kind)

    def mul_text(self, a: _Out, b: _Out) -> _Out:
        return _Out(f"{self.wrap(a, _MUL - 1)}*{self.wrap(b, _MUL)}", _MUL,
                    b.kind if a.kind == "s" else a.kind)

    def product(self, a: _Out, b: _Out) -> _Out:
        """A matrix product, in numpy's terms for 1-d vectors."""
        if "s" in (a.kind, b.kind):
            return self.mul_text(a, b)
        kinds = a.kind + b.kind
        # a product with a ones vector: a sum (1 @ v, M @ 1, 1 @ M, r @ 1)
        if b.ones and kinds in ("mv", "rv"):
            return self.summed(a, 1 if a.kind == "m" else None)
        if a.ones and kinds in ("rm", "rv"):
            return self.summed(b, 0 if b.kind == "m" else None)
        if kinds == "vr":
            return _Out(f"{self.fn('outer')}({a.text}, {b.text})", _ATOM, "m")
        result = {"rv": "s", "mv": "v", "rm": "r", "mm": "m"}.get(kinds)
        if result is None:
            raise _Unprintable(f"a product of shapes {kinds}")
        return _Out(f"{self.wrap(a, _MUL - 1)} @ {self.wrap(b, _MUL)}", _MUL, result)


# -- the symbolic job (runs in a worker under the time budget) ----------------------
@dataclass
class _Spec:
    quantity: str
    inputs: dict[str, np.ndarray]
    wrt: list[str]
    tree: Any
    graph: Any
    max_terms: int
    simplify: bool


SIMPLIFY_OPS = 15  # sympy's simplify() only below this size: slow, and rarely shorter


def _simplify(e, on: bool):
    """The shortest of ``e`` and its cheap rewritings (by sympy's count_ops),
    ``e`` itself on a tie: sympy's full simplify() is often slower than all the
    rest together, and longer than what it started from."""
    if not on:
        return e
    try:
        if isinstance(e, sp.MatrixExpr):
            return _factor_right(e.doit())
        size = sp.count_ops(e)
        candidates = [e, sp.factor_terms(e), sp.powsimp(e)]
        if size <= SIMPLIFY_OPS:
            candidates.append(sp.simplify(e))
        return min(candidates, key=_size)
    except Exception:  # sympy's simplification is a nicety, never a failure
        return e


def _size(e) -> tuple:
    """sympy's count_ops, then the divisions: of equal size, ``y*x**(y - 1)``
    rather than ``y*x**y/x``, which is 0/0 at x = 0 where the derivative is not."""
    ops = sp.count_ops(e, visual=True)
    divisions = ops.as_coefficients_dict().get(sp.Symbol("DIV"), 0) if ops else 0
    return sp.count_ops(e), divisions


def _factor_right(e):
    """``A*x + B*x`` -> ``(A + B)*x``: a sum of products ending in one factor."""
    if not isinstance(e, sp.MatAdd):
        return e
    lefts, last = [], None
    for t in e.args:
        if not isinstance(t, sp.MatMul):
            return e
        coeff, mats = t.as_coeff_matrices()
        if len(mats) < 2 or (last is not None and mats[-1] != last):
            return e
        last = mats[-1]
        lefts.append(coeff * sp.MatMul(*mats[:-1]) if len(mats) > 2 else coeff * mats[0])
    try:
        return sp.MatMul(sp.MatAdd(*lefts), last)
    except Exception:
        return e


class _Job:
    def __init__(self, spec: _Spec) -> None:
        self.s = spec

    def run(self) -> Derived:
        s = self.s
        tr = SympyBackend(s.inputs, s.wrt)
        if s.tree is not None:
            out = interpret(s.tree, tr, tr.leaves)
        else:
            try:
                out = replay(s.graph, tr, tr.leaves)
            except ValueError as exc:
                raise SymbolicSkip(str(exc)) from exc
        self.tr = tr
        shapes = {n: a.shape for n, a in s.inputs.items()}
        names: dict = {}
        self.where: dict = {}  # component symbol -> (input, index)
        for n, arr in tr.syms.items():
            for idx, sym in np.ndenumerate(arr):
                names[sym] = n if not idx else f"{n}[{', '.join(map(str, idx))}]"
                self.where[sym] = (n, idx)
        for n, m in tr.msyms.items():
            names.setdefault(m, n)
        self.names = names
        self.shapes = shapes
        self.printer = _Printer(names, shapes)
        self.numpy = _Printer(names, shapes, numpy=True)
        # Componentwise formulas name every input, else numbers of this point
        # would stand in a formula that claims to hold everywhere.
        self.components_ok = tr.componentwise and all(n in tr.syms for n in s.inputs)
        blocks = getattr(self, s.quantity)(out)
        return Derived(s.quantity, blocks)

    # -- per quantity --
    def scalar_f(self, out):
        if math.prod(out.shape) != 1:
            raise SymbolicSkip(f"the output has shape {out.shape}, not a single number")
        return out.obj.reshape(())[()] if out.obj is not None else None

    def gradient(self, out) -> list[Block]:
        f = self.scalar_f(out)
        blocks = []
        for n in self.s.wrt:
            m = self.tr.msyms.get(n)
            closed = None
            if out.form is not None and out.form[0] == "s" and m is not None:
                want = () if not self.shapes[n] else (
                    m.shape if len(self.shapes[n]) == 2 else (self.shapes[n][0], 1))
                closed = self.matrix_derivative(lambda m=m: out.form[1].diff(m), want)
            comps = None
            if f is not None and self.components_ok:
                comps = self.componentwise(f, [self.tr.syms[n]])
            blocks.append(self.block(f"grad.{n}", self.shapes[n], closed, comps))
        return blocks

    def hessian(self, out) -> list[Block]:
        f = self.scalar_f(out)
        blocks = []
        for a in self.s.wrt:
            for b in self.s.wrt:
                ma, mb = self.tr.msyms.get(a), self.tr.msyms.get(b)
                sa, sb = self.shapes[a], self.shapes[b]
                shape = sa + sb
                closed = None
                if (out.form is not None and out.form[0] == "s" and ma is not None
                        and mb is not None and len(sa) <= 1 and len(sb) <= 1):
                    want = (() if not sa and not sb else (sa[0], sb[0]) if sa and sb
                            else ((sa or sb)[0], 1))
                    closed = self.matrix_derivative(
                        lambda ma=ma, mb=mb: out.form[1].diff(ma).diff(mb), want)
                comps = None
                if f is not None and self.components_ok:
                    comps = self.componentwise(f, [self.tr.syms[a], self.tr.syms[b]])
                blocks.append(self.block(f"hessian.{a}.{b}", shape, closed, comps))
        return blocks

    def jacobian(self, out) -> list[Block]:
        blocks = []
        for n in self.s.wrt:
            m = self.tr.msyms.get(n)
            sn = self.shapes[n]
            closed = None
            if (out.form is not None and out.form[0] == "v" and m is not None
                    and len(sn) == 1):
                # sympy's layout is the transpose of the Jacobian's
                closed = self.matrix_derivative(lambda m=m: out.form[1].diff(m).T,
                                                (out.shape[0], sn[0]))
            comps = None
            if out.obj is not None and self.components_ok:
                comps = self.componentwise(out.obj, [self.tr.syms[n]])
            blocks.append(self.block(f"jacobian.{n}", tuple(out.shape) + sn, closed,
                                     comps))
        return blocks

    # -- forms --
    def matrix_derivative(self, take, want):
        """The closed form, or None; ``want`` the sympy shape it must have."""
        try:
            d = take()
        except Exception:
            return None
        if not isinstance(d, sp.Basic) or d.has(sp.Derivative):
            return None
        dshape = tuple(int(k) for k in d.shape) if isinstance(d, sp.MatrixExpr) else None
        if want == ():
            if dshape not in (None, (1, 1)):
                return None
        elif dshape != want:
            return None
        return _simplify(d, self.s.simplify)

    def componentwise(self, f, syms_list) -> np.ndarray:
        d = _obj(f)
        for syms in syms_list:
            nxt = np.empty(d.shape + syms.shape, dtype=object)
            for o, fo in np.ndenumerate(d):
                for i, s in np.ndenumerate(syms):
                    nxt[o + i] = _clean(sp.diff(fo, s))
            d = nxt
        return d

    def uniform(self, block: np.ndarray):
        """One formula for every component of ``block``, in the inputs of the
        block's shape (indexed alike) and scalar inputs; or None."""
        shape = block.shape
        if not shape:
            return None  # a scalar's formula is its closed form
        alike = [n for n, s in self.shapes.items() if s == shape and n in self.tr.syms]
        scalars = {self.tr.syms[n][()] for n, s in self.shapes.items()
                   if s == () and n in self.tr.syms}
        stand = {n: sp.Symbol(f"_u_{n}", real=True) for n in alike}
        allowed = scalars | set(stand.values())
        first = None
        for idx, e in np.ndenumerate(block):
            u = e.xreplace({self.tr.syms[n][idx]: stand[n] for n in alike})
            if not u.free_symbols <= allowed:
                return None
            if first is None:
                first = u
            elif u != first:  # structurally: simplifying each difference costs too much
                return None
        return first, stand

    def diagonal(self, block: np.ndarray):
        """A block d[i, j] of two vectors of one length, zero off the diagonal."""
        if block.ndim != 2 or block.shape[0] != block.shape[1]:
            return None
        n = block.shape[0]
        if any(block[i, j] != 0 for i in range(n) for j in range(n) if i != j):
            return None
        diag = np.empty((n,), dtype=object)
        for i in range(n):
            diag[i] = block[i, i]
        return self.uniform(diag)

    def block(self, name, shape, closed, comps) -> Block:
        total = math.prod(shape)
        if closed is not None and not closed.has(sp.OneMatrix, sp.Identity):
            piece = self.piece(name, closed)
            if piece is not None:
                return Block(name, "matrix" if shape else "closed", shape, [piece], total,
                             self.args(closed))
        if comps is not None:
            u = self.uniform(comps)
            diag = False
            if u is None and len(shape) == 2:
                u, diag = self.diagonal(comps), True
            if u is not None:
                e, stand = u
                e = _simplify(e, self.s.simplify)
                piece = self.piece(name, e, stand, diag=diag, shape=shape)
                if piece is not None:
                    extra = [n for n, v in stand.items() if v in e.free_symbols]
                    return Block(name, "elementwise", shape, [piece], total,
                                 self.args(e, extra=extra))
        if closed is not None:  # with a ones vector or an identity
            piece = self.piece(name, closed)
            if piece is not None:
                return Block(name, "matrix", shape, [piece], total, self.args(closed))
        if comps is not None and not shape:
            piece = self.piece(name, _simplify(comps[()], self.s.simplify))
            if piece is None:
                raise SymbolicSkip(f"{name}: {self.unprintable}")
            return Block(name, "closed", shape, [piece], total, self.args(comps[()]))
        if comps is None:
            raise SymbolicSkip(f"no closed matrix form for {name}, and too many "
                               "components to differentiate one by one")
        pieces = []
        used = set()
        for idx, e in np.ndenumerate(comps):
            if len(pieces) >= self.s.max_terms:
                break
            e = _simplify(e, self.s.simplify)
            label = f"{name}[{','.join(map(str, idx))}]" if idx else name
            piece = self.piece(label, e, index=idx)
            if piece is None:
                raise SymbolicSkip(f"{label}: {self.unprintable}")
            pieces.append(piece)
            used |= set(self.args(e))
        args = [n for n in self.shapes if n in used]
        return Block(name, "components", shape, pieces, total, args)

    def args(self, e, extra=()) -> list[str]:
        syms = e.free_symbols
        used = {self.where[s][0] for s in syms if s in self.where}
        used |= {str(s.name) for s in syms if isinstance(s, sp.MatrixSymbol)}
        used |= {str(s) for s in syms if str(s) in self.shapes}
        used |= set(extra)
        return [n for n in self.shapes if n in used]

    def piece(self, name, e, stand=None, diag=False, index=None,
              shape=None) -> Piece | None:
        """``shape``: the block's, for an elementwise formula (``stand`` maps its
        inputs of that shape)."""
        extra = {v: n for n, v in (stand or {}).items()}
        printer = _Printer({**self.names, **extra}, self.shapes)
        numpy = _Printer({**self.names, **extra}, self.shapes, numpy=True)
        try:
            text, code = printer(e), numpy(e)
            if len(text) > _LONGEST:  # it could not be pasted into gradcli eval
                raise _Unprintable(f"a formula of {len(text):,} characters (an "
                                   f"expression takes at most {_LONGEST:,})")
            constant = shape is not None and not any(
                s in e.free_symbols for s in (stand or {}).values())
            if diag:
                if constant:  # the same number all along the diagonal: no input to
                    n = shape[0]  # carry the length, so say it
                    text = f"diag({printer.ones(n, text)})"
                    code = "np.eye({0})".format(n) if code == "1" else (
                        f"np.diag({numpy.ones(n, code)})")
                else:
                    text, code = f"diag({text})", f"np.diag({code})"
            elif constant and shape:  # numpy's function returns the block's shape
                code = (f"np.zeros({shape!r})" if code == "0" else
                        f"np.ones({shape!r})" if code == "1" else
                        f"np.full({shape!r}, {code}, dtype=float)")
        except _Unprintable as exc:
            self.unprintable = f"no form in gradcli's language for {exc}"
            return None
        shown = e.xreplace({v: sp.Symbol(n, real=True) for n, v in (stand or {}).items()})
        latex = sp.latex(shown)
        if diag:
            latex = rf"\operatorname{{diag}}\left({latex}\right)"
        return Piece(name, text, latex, sp.srepr(shown), code, index)


_LONGEST = Limits.max_length


def derive(
    quantity: str,
    inputs: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    *,
    tree=None,
    graph=None,
    max_terms: int = 20,
    timeout: float | None = 10.0,
    simplify: bool = True,
) -> Derived:
    """The formulas of one ``quantity`` (gradient, jacobian or hessian) of the
    expression ``tree``, or of the graph ``(output, leaves)`` recorded at ``inputs``.

    Simplified with sympy within the first 60% of ``timeout``; if that runs out,
    the unsimplified formulas within the rest (a note says so). Failures are
    EvaluationErrors that say why (exit 3).

    >>> from gradcli.parse import parse
    >>> from gradcli.engine.ops import OPS
    >>> tree = parse("2*dot(x,x)", inputs=["x"], ops=OPS)
    >>> d = derive("gradient", {"x": np.ones(4)}, ["x"], tree=tree, timeout=None)
    >>> d.blocks[0].pieces[0].text
    '4*x'
    """
    spec = _Spec(quantity, {n: np.asarray(v, dtype=np.float64) for n, v in inputs.items()},
                 list(wrt), tree, graph, max_terms, simplify)
    notes = [PATH_NOTE] if tree is None else []
    start = time.monotonic()
    first = None if timeout is None else 0.6 * timeout
    try:
        derived = Pending(_Job(spec).run, first, warm=False).result()
    except SymbolicSkip as exc:
        if timeout is None or not str(exc).startswith("sympy took longer"):
            raise EvaluationError(f"no formula: {exc}") from exc
        spec.simplify = False
        rest = max(timeout - (time.monotonic() - start), 0.05)
        try:
            derived = Pending(_Job(spec).run, rest, warm=False).result()
        except SymbolicSkip as exc2:
            why = (f"sympy took longer than --check-timeout ({timeout:g} s)"
                   if str(exc2).startswith("sympy took longer") else str(exc2))
            raise EvaluationError(
                f"no formula: {why}",
                hint="raise --check-timeout, or differentiate fewer inputs (--wrt)",
            ) from exc2
        notes.append(f"not simplified: sympy's simplification took longer than "
                     f"{first:g} s of --check-timeout")
    for b in derived.blocks:
        if b.form == "components":
            shown = len(b.pieces)
            more = f"; the first {shown} of {b.total} (--max-terms)" if shown < b.total else ""
            notes.append(f"no closed matrix or elementwise form for {b.name}: "
                         f"component by component{more}")
    derived.notes = notes + derived.notes
    return derived


# -- verification: every formula against the engine's derivative -----------------
def formula_value(text: str, inputs: Mapping[str, np.ndarray], max_elements: int):
    """A printed formula evaluated by the engine: parsed by gradcli's own parser."""
    from .compute import Target, evaluate

    tree = parse(text, inputs=set(inputs), ops=OPS)
    used = free_names(tree)
    point = {n: v for n, v in inputs.items() if n in used}
    return evaluate(Target(text, tree=tree), point, no_grad=True,
                    max_elements=max_elements).value


def engine_blocks(quantity: str, target, inputs, wrt, max_elements: int) -> dict:
    """The engine's derivatives, keyed by block name (grad.x, hessian.x.y, ...)."""
    from . import compute

    if quantity == "gradient":
        r = compute.evaluate(target, inputs, wrt=wrt, max_elements=max_elements)
        compute.refuse_cuts(target, r.cuts, "its formula")
        cut = [w for w in r.warnings if "cut the graph" in w]
        if cut:  # a formula of the recorded graph would be 0: not the derivative
            raise EvaluationError(f"no formula: {cut[0]}")
        return {f"grad.{n}": g for n, g in r.grads.items()}
    if quantity == "jacobian":
        d = compute.jacobian(target, inputs, wrt=wrt, max_elements=max_elements)
        compute.refuse_cuts(target, d.recorded.cuts if d.recorded else [], "its formula")
        return {f"jacobian.{n}": b for n, b in d.blocks.items()}
    d = compute.hessian(target, inputs, wrt=wrt, max_elements=max_elements)
    return {f"hessian.{a}.{b}": blk for a, row in d.blocks.items()
            for b, blk in row.items()}


class FormulaMismatch(GradcliError):
    """A formula's value is not the engine's derivative at a point (exit 70,
    unless the point explains it: see ``check_formulas``). ``finite``: the
    formula gave finite numbers there (not an overflow or a 0/0)."""

    def __init__(self, message: str, finite: bool, piece: str) -> None:
        super().__init__(message, hint="this is a bug in gradcli; nothing was printed")
        self.finite = finite
        self.piece = piece


def verify(derived: Derived, expected: Mapping[str, np.ndarray],
           inputs: Mapping[str, np.ndarray], max_elements: int,
           rtol: float = 1e-7) -> float:
    """Every formula's value at the point against the engine's; the largest
    relative difference. A disagreement raises FormulaMismatch (a bug, exit 70,
    unless ``check_formulas`` finds the point explains it)."""
    worst = 0.0
    with np.errstate(all="ignore"):
        for b in derived.blocks:
            want_all = np.asarray(expected[b.name], dtype=np.float64)
            scale = max(1.0, float(np.max(np.abs(want_all[np.isfinite(want_all)]),
                                          initial=0.0)))
            for p in b.pieces:
                want = want_all if p.index is None else want_all[p.index]
                try:
                    got = np.asarray(formula_value(p.text, inputs, max_elements),
                                     dtype=np.float64)
                except Exception as exc:  # our own formula must evaluate
                    raise GradcliError(
                        f"the formula printed for {p.name} does not evaluate: {exc}",
                        hint="this is a bug in gradcli; nothing was printed") from exc
                if got.shape == () and want.shape != ():
                    got = np.broadcast_to(got, want.shape)  # a constant, every component
                ok = got.shape == want.shape and np.allclose(
                    got, want, rtol=rtol, atol=1e-9 * scale, equal_nan=True)
                if not ok:
                    finite = got.shape != want.shape or bool(
                        np.isfinite(got[np.isfinite(want)]).all())
                    raise FormulaMismatch(
                        f"the formula for {p.name} ({p.text}) disagrees with the engine's "
                        f"derivative at the point", finite, p.name)
                diff = np.abs(got - want)[np.isfinite(want)]
                worst = max(worst, float(np.max(diff, initial=0.0)) / scale)
    return worst


@dataclass
class Verified:
    """Where the formulas were checked: at the point, or (``moved``) at another
    point, because the given one is on a kink or the formula is not finite there."""

    worst: float
    at: str = "point"  # "point", "nearby" or "random"
    moved: dict[str, np.ndarray] | None = None
    note: str | None = None


MOVES = (1e-3, 1e-3, 1e-2, 1e-2, 1e-1, 1e-1)  # relative steps to a nearby point
RANDOM_MOVES = 3  # then points uniform in [0.2, 0.9], as --shape draws, signed
# as the given point's components: a formula that fails on every point of the
# point's own signs (x*y*abs(x**(y - 2)), nan for x < 0) is not checked there


def _kinks_at(target, graph, point) -> list[str]:
    """The op-table kinks the target's graph sits on at ``point``."""
    from .backends import NumpyBackend

    found: list[str] = []
    with np.errstate(all="ignore"):
        try:
            if target.tree is not None:
                interpret(target.tree, NumpyBackend(kinks=found), point)
            else:
                replay(graph, NumpyBackend(kinks=found), point)
        except Exception:  # the kink test never breaks the command
            pass
    return list(dict.fromkeys(found))


def _on_path(target, graph, max_elements: int):
    """A function file's target replaced by the path it recorded: at another
    point, the formula (of that path) is compared with that path's derivative."""
    if target.tree is not None:
        return target
    from dataclasses import replace as dc_replace

    from .backends import TensorBackend

    def path(**leaves):
        return replay(graph, TensorBackend(target.label, max_elements), leaves)

    return dc_replace(target, loaded=dc_replace(target.loaded, func=path))


def _beside(derived: Derived, target, graph, inputs, wrt, max_elements: int,
            seed: int | None, mirror: bool = False):
    """The FormulaMismatch of a formula that is not finite at a point beside the
    given one (a relative step of 1e-3) where the derivative is, or None: a
    formula right at the point alone (``2*x*y*abs(x**(2*y - 2))`` at y = 0.5,
    nan for x < 0 at any other y) is no formula of the function. ``mirror``:
    at the point with the differentiated inputs negated instead (that formula
    at x = 1.5 holds for x > 0 only). A finite disagreement there is a bug, as
    at the point (exit 70). Nothing is said where the engine cannot give the
    derivative there, or on a new kink."""
    rng = np.random.default_rng(1 if seed is None else seed + 1)
    moved = dict(inputs)
    for n in wrt:
        v = np.asarray(inputs[n], dtype=np.float64)
        moved[n] = -v if mirror else (
            v + MOVES[0] * (1 + np.abs(v)) * rng.uniform(-1, 1, v.shape))
    if not set(_kinks_at(target, graph, moved)) <= set(_kinks_at(target, graph, inputs)):
        return None
    try:
        with np.errstate(all="ignore"):
            want = engine_blocks(derived.quantity, _on_path(target, graph, max_elements),
                                 moved, list(wrt), max_elements)
    except GradcliError:
        return None
    if not all(np.isfinite(v).all() for v in want.values()):
        return None
    try:
        verify(derived, want, moved, max_elements)
    except FormulaMismatch as exc:
        if exc.finite:
            raise
        return exc
    return None


def check_formulas(derived: Derived, expected: Mapping[str, np.ndarray], target,
                   inputs: Mapping[str, np.ndarray], wrt: Sequence[str],
                   max_elements: int, *, graph=None, seed: int | None = None,
                   mirror: bool = False) -> Verified:
    """``verify`` at the point, and beside it (and with ``mirror``, at the
    point's negation: ``_beside``); where the point explains a disagreement, at
    another point. A formula holds on the open pieces where the function is
    smooth: on a kink the op table knows (``maximum(x, 0)`` at 0, a tie in
    ``max``, ``clip`` at a bound) the engine takes a convention no formula of
    the pieces gives, and a formula may be 0/0 at a removable singularity
    (``sinc`` at 0) or overflow (``softplus`` at 1000) where the derivative is
    finite. Then the formulas are checked at a nearby point off every kink (or,
    failing that, at a random one), and a note says so. A disagreement there, or
    at a point that explains nothing, is a bug (exit 70); no usable point is an
    EvaluationError (exit 3)."""
    try:
        worst = verify(derived, expected, inputs, max_elements)
    except FormulaMismatch as exc:
        kinks = _kinks_at(target, graph, inputs)
        if exc.finite and not kinks:
            raise
        first = exc
    else:
        beside = _beside(derived, target, graph, inputs, wrt, max_elements, seed)
        if beside is None and mirror:
            beside = _beside(derived, target, graph, inputs, wrt, max_elements, seed,
                             mirror=True)
        if beside is None:
            return Verified(worst)
        raise EvaluationError(
            f"no formula: the formula for {beside.piece} holds at the point but is not "
            "finite beside it, where the derivative is",
            hint="give another point (--NAME VALUE)")
    why = (f"the point is on a kink ({kinks[0]})" if first.finite else
           f"the formula for {first.piece} is not finite at the point (an overflow, or "
           "0/0 where the derivative has a limit)")
    on_path = _on_path(target, graph, max_elements)
    rng = np.random.default_rng(0 if seed is None else seed)
    moves = [(step, "nearby") for step in MOVES] + [(None, "random")] * RANDOM_MOVES
    for step, at in moves:
        moved = dict(inputs)
        for n in wrt:
            v = np.asarray(inputs[n], dtype=np.float64)
            moved[n] = (v + step * (1 + np.abs(v)) * rng.uniform(-1, 1, v.shape)
                        if step is not None else
                        rng.uniform(0.2, 0.9, v.shape) * np.where(v < 0, -1.0, 1.0))
        # off every kink that moving the inputs differentiated can leave (a kink
        # of the other inputs alone stays, and is no reason to give up)
        if not set(_kinks_at(target, graph, moved)) <= set(kinks):
            continue
        try:
            with np.errstate(all="ignore"):
                want = engine_blocks(derived.quantity, on_path, moved, list(wrt),
                                     max_elements)
        except GradcliError:
            continue  # outside the domain there, say
        if not all(np.isfinite(v).all() for v in want.values()):
            continue
        try:
            worst = verify(derived, want, moved, max_elements)
        except FormulaMismatch as exc:
            if exc.finite:
                raise
            continue
        where = "a nearby point" if at == "nearby" else "a random point"
        return Verified(worst, at, moved,
                        f"{why}: the formula holds away from it, and was checked at "
                        f"{where} instead")
    raise EvaluationError(f"no formula: {why}, and no point near it could check one",
                          hint="give a point off the kink (--NAME VALUE)" if kinks else
                          "give another point (--NAME VALUE)")


def derive_checked(quantity: str, inputs: Mapping[str, np.ndarray], wrt: Sequence[str],
                   expected: Mapping[str, np.ndarray], target, *, graph=None,
                   max_terms: int = 20, timeout: float | None = 10.0,
                   max_elements: int, seed: int | None = None) -> tuple[Derived, Verified]:
    """``derive``, then ``check_formulas``. Where no point near the given one
    checks the simplified formulas, or they fail at the point's negation, the
    unsimplified ones: sympy's rewriting may take a power that is complex for
    some signs (``x*y*abs(x**(y - 2))`` for ``y*abs(x)**y*sign(x)/abs(x)``: nan
    at every x < 0 in real arithmetic)."""
    derived = derive(quantity, inputs, wrt, tree=target.tree, graph=graph,
                     max_terms=max_terms, timeout=timeout)
    try:
        return derived, check_formulas(derived, expected, target, inputs, wrt,
                                       max_elements, graph=graph, seed=seed, mirror=True)
    except EvaluationError as exc:
        first = exc
    plain = derive(quantity, inputs, wrt, tree=target.tree, graph=graph,
                   max_terms=max_terms, timeout=timeout, simplify=False)
    try:
        checked = check_formulas(plain, expected, target, inputs, wrt, max_elements,
                                 graph=graph, seed=seed)
    except EvaluationError:
        raise first from None
    plain.notes.append("not simplified: sympy's simplified formula is not finite at, "
                       "beside or at the negation of the point, where the derivative is")
    return plain, checked


def numpy_function(derived: Derived, shapes: Mapping[str, tuple]) -> str:
    """A small Python module computing the formulas with numpy (a function per
    block; a block shown component by component only when all are shown)."""
    out = ["import numpy as np"]
    for b in derived.blocks:
        fname = b.name.replace(".", "_")
        if b.form == "components" and len(b.pieces) < b.total:
            out += ["", "", (f"# {b.name}: only {len(b.pieces)} of {b.total} "
                             "components shown (--max-terms); no function")]
            continue
        out += ["", "", f"def {fname}({', '.join(b.args)}):"]
        if b.form == "components":
            items = ", ".join(p.numpy for p in b.pieces)
            out.append(f"    return np.array([{items}], dtype=float)"
                       f".reshape({tuple(b.shape)!r})")
        else:
            out.append(f"    return {b.pieces[0].numpy}")
    return "\n".join(out).rstrip() + "\n"
