"""Elementwise ops: output element i depends on input elements i only, so each
rule is ``g * f'(x)`` and broadcasts over batch axes as it stands. Every op in
this file is declared ``elementwise`` (its output shape: the inputs' broadcast).
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from ..op import POSITIVE, REALS, SAME, UNIT, _any
from ..tensor import Tensor
from ..op import op as _op

op = functools.partial(_op, elementwise=True)


# Matrix-calculus forms (``Op.matrix``): what a sum, a product, a quotient and a
# power of scalar, vector and matrix forms are, where sympy's algebra applies.
def _same_kind(combine):
    """A sum or difference: both sides of one kind and shape."""
    def form(sp, a, b):
        return (a.kind, combine(a.e, b.e)) if a.kind == b.kind and a.shape == b.shape else None
    return form


def scaled_form(sp, a, b):
    """A product with a plain scalar factor (or of two scalars)."""
    if a.plain:
        return (b.kind, a.e * b.e)
    if b.plain:
        return (a.kind, b.e * a.e)
    return ("s", a.e * b.e) if a.kind == b.kind == "s" else None


def _zeros(g, out, *inputs, **params):
    return np.zeros_like(g)


# -- arithmetic ----------------------------------------------------------------
@op(local=(1, 1), grad_fn="AddBackward0", saves="none", rule="d(a+b) = da + db", sym=SAME,
    numpy=(np.add,),
    fast=operator.add,
    matrix=_same_kind(operator.add))
def add(a, b):
    return a + b


@op(local=(1, -1), grad_fn="SubBackward0", saves="none", rule="d(a-b) = da - db", sym=SAME,
    numpy=(np.subtract,),
    fast=operator.sub,
    matrix=_same_kind(operator.sub))
def sub(a, b):
    return a - b


@op(local=("b", "a"), grad_fn="MulBackward0", rule="d(a*b) = b da + a db", sym=SAME, guard=True,
    numpy=(np.multiply,),
    fast=operator.mul,
    matrix=scaled_form)
def mul(a, b):
    return a * b


@op(lambda g, out, a, b: g / b, lambda g, out, a, b: -g * a / (b * b),
    grad_fn="DivBackward0", rule="d(a/b) = da/b - a db/b^2", sym=SAME, guard=True,
    domain=(REALS, POSITIVE), numpy=(np.divide, np.true_divide),
    fast=operator.truediv,
    matrix=lambda sp, a, b: (a.kind, a.e / b.e) if b.plain else None)
def div(a, b):
    return a / b


@op(local=(-1,), grad_fn="NegBackward0", saves="none", rule="-dx", sym=SAME,
    numpy=(np.negative,),
    fast=operator.neg,
    matrix=lambda sp, x: (x.kind, -x.e))
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
    sym=SAME, guard=True, domain=(POSITIVE, (-2.0, 2.0)), numpy=(np.power,),
    matrix=lambda sp, a, b: ("s", a.e**b.e) if a.plain and b.plain else None)
def pow_(a, b):
    return a**b


@op(lambda g, out, x: g * np.sign(x), grad_fn="AbsBackward0", rule="sign(x) dx",
    at_kink=lambda x: x == 0,
    kink="abs'(0) = 0", sym=lambda sp, x: sp.Abs(x), numpy=(np.absolute, np.abs),
    fast=np.abs, zero_regions=True)
def abs_(x):
    return np.abs(x)


@op(lambda g, out, x: g / (2 * out), grad_fn="SqrtBackward0", saves="out",
    rule="dx / (2 sqrt(x))", sym=lambda sp, x: sp.sqrt(x), guard=True,
    domain=(POSITIVE,), numpy=(np.sqrt,),
    fast=np.sqrt)
def sqrt(x):
    return np.sqrt(x)


@op(local=(lambda out, x: 2 * x,), grad_fn="PowBackward0", rule="2 x dx",
    sym=lambda sp, x: x**2, guard=True, numpy=(np.square,),
    fast=np.square)
def square(x):
    return np.square(x)


@op(local=("out",), grad_fn="ExpBackward0", saves="out",
    rule="exp(x) dx",
    sym=lambda sp, x: sp.exp(x), guard=True, numpy=(np.exp,),
    fast=np.exp)
def exp(x):
    return np.exp(x)


@op(lambda g, out, x: g * (out + 1), grad_fn="Expm1Backward0", saves="out",
    rule="exp(x) dx", sym=lambda sp, x: sp.exp(x) - 1, guard=True, numpy=(np.expm1,))
def expm1(x):
    return np.expm1(x)


@op(lambda g, out, x: g / x, grad_fn="LogBackward0", rule="dx / x",
    sym=lambda sp, x: sp.log(x), guard=True, domain=(POSITIVE,), numpy=(np.log,),
    fast=np.log)
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
    sym=lambda sp, x: sp.sin(x), numpy=(np.sin,),
    fast=np.sin)
def sin(x):
    return np.sin(x)


@op(local=(lambda out, x: -np.sin(x),), grad_fn="CosBackward0", rule="-sin(x) dx",
    sym=lambda sp, x: sp.cos(x), numpy=(np.cos,),
    fast=np.cos)
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
    rule="(1 - tanh(x)^2) dx", sym=lambda sp, x: sp.tanh(x), numpy=(np.tanh,),
    fast=np.tanh)
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
    kink="relu'(0) = 0", sym=lambda sp, x: sp.Max(x, 0), zero_regions=True)
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
    numpy=(np.maximum,), zero_regions=True)
def maximum(a, b):
    return np.maximum(a, b)


@op(lambda g, out, a, b: g * _tie_share(b, a), lambda g, out, a, b: g * _tie_share(a, b),
    grad_fn="MinimumBackward0", rule="(a < b) da + (b < a) db",
    at_kink=lambda a, b: a == b,
    kink="a tie splits the gradient in halves", sym=lambda sp, a, b: sp.Min(a, b),
    numpy=(np.minimum,), zero_regions=True)
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
    domain=(REALS, (-3.0, -0.5), (0.5, 3.0)), numpy=(np.clip,), zero_regions=True)
def clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


@op(None, lambda g, out, c, a, b: np.where(c, g, 0.0),
    lambda g, out, c, a, b: np.where(c, 0.0, g),
    grad_fn="WhereBackward0", rule="da where c, db elsewhere",
    kink="only the selected branch gets a gradient (nan/inf in the other never leak)",
    sym=lambda sp, c, a, b: sp.Piecewise((a, c), (b, True)), numpy=(np.where,), zero_regions=True, method=False)
def where(c, a, b):
    return np.where(c, a, b)


@op(_zeros, grad_fn="SignBackward0", saves="none", rule="0",
    at_kink=lambda x: x == 0,
    kink="zero gradient everywhere (a step at 0)", sym=lambda sp, x: sp.sign(x),
    numpy=(np.sign,), zero_regions=True)
def sign(x):
    return np.sign(x)


@op(_zeros, grad_fn="FloorBackward0", saves="none", rule="0",
    at_kink=lambda x: x == np.floor(x),
    kink="zero gradient everywhere (steps at integers)", sym=lambda sp, x: sp.floor(x),
    numpy=(np.floor,), zero_regions=True)
def floor(x):
    return np.floor(x)


@op(_zeros, grad_fn="CeilBackward0", saves="none", rule="0",
    at_kink=lambda x: x == np.floor(x),
    kink="zero gradient everywhere (steps at integers)", sym=lambda sp, x: sp.ceiling(x),
    numpy=(np.ceil,), zero_regions=True)
def ceil(x):
    return np.ceil(x)


# -- comparisons and tests: bool results, no graph ------------------------------
def _predicate(name: str, fn, also, doc: str):
    # A comparison's kink is a tie: the branches of a where() meet there.
    tie = name not in ("logical_and", "logical_or")
    op(grad_fn="", rule="not differentiable (bool result)", method=False,
       at_kink=(lambda a, b: a == b) if tie else None,
       kink="a tie in a where() condition, where the branches meet" if tie else "",
       sym=lambda sp, a, b: getattr(sp, {"less": "Lt", "less_equal": "Le", "greater": "Gt",
                                        "greater_equal": "Ge", "equal": "Eq", "not_equal": "Ne",
                                        "logical_and": "And", "logical_or": "Or"}[name])(a, b),
       expr=False, numpy=(fn, *also), name=name)(
        lambda a, b: fn(a, b)
    ).rule = doc


# On Tensors, & | ~ are logical, as masks need (also when numpy dispatches them
# from an ndarray on the left, as np.bitwise_and).
for _n, _f, _also in (("less", np.less, ()), ("less_equal", np.less_equal, ()),
                      ("greater", np.greater, ()), ("greater_equal", np.greater_equal, ()),
                      ("equal", np.equal, ()), ("not_equal", np.not_equal, ()),
                      ("logical_and", np.logical_and, (np.bitwise_and,)),
                      ("logical_or", np.logical_or, (np.bitwise_or,))):
    _predicate(_n, _f, _also, f"{_n}(a, b): bool result, not differentiable")


@op(grad_fn="", rule="bool result, not differentiable", expr=False, method=False,
    numpy=(np.logical_not, np.invert))
def logical_not(x):
    return np.logical_not(x)


@op(grad_fn="", rule="bool result, not differentiable", expr=False,
    numpy=(np.isfinite,), method=False)
def isfinite(x):
    return np.isfinite(x)


@op(grad_fn="", rule="bool result, not differentiable", expr=False, numpy=(np.isnan,), method=False)
def isnan(x):
    return np.isnan(x)


@op(grad_fn="", rule="bool result, not differentiable", expr=False, numpy=(np.isinf,), method=False)
def isinf(x):
    return np.isinf(x)


@op(grad_fn="", rule="0: a constant fixed at its value (gradients stop here)", method=False,
    kink="", sym=None)
def detach(x):
    return x
