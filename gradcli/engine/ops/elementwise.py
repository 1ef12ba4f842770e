"""Elementwise ops: output element i depends on input elements i only, so each
rule is ``g * f'(x)`` and broadcasts over batch axes as it stands. Every op in
this file is declared ``elementwise`` (its output shape: the inputs' broadcast).
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from ..op import OPS, POSITIVE, REALS, SAME, UNIT, _any
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
    nonzero = not isinstance(b, Tensor) and b != 0  # (a Python bool for a number)
    if nonzero if type(nonzero) is bool else np.all(nonzero):  # a constant: x**4
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


# The rules below select (np.where) rather than multiply by a 0/1 mask, as
# PyTorch's do: where the op is flat, the gradient is 0 even when the cotangent
# arriving is inf or nan (sqrt(relu(x)) at x = -1 has derivative 0, not nan).
@op(lambda g, out, x: np.where(x > 0, g, 0.0), grad_fn="ReluBackward0", rule="(x > 0) dx",
    at_kink=lambda x: x == 0,
    kink="relu'(0) = 0", sym=lambda sp, x: sp.Max(x, 0), zero_regions=True)
def relu(x):
    return np.maximum(x, 0.0)


@op(lambda g, out, x: g * _any(sigmoid, x), grad_fn="SoftplusBackward0",
    rule="sigmoid(x) dx", sym=lambda sp, x: sp.log(1 + sp.exp(x)))
def softplus(x):
    return np.logaddexp(0.0, x)


def _tie_share(g, a, b):
    """``g`` where a wins, half of it on a tie, 0 where it loses (selected)."""
    return np.where(a > b, g, np.where(a == b, 0.5 * g, 0.0))


@op(lambda g, out, a, b: _tie_share(g, a, b), lambda g, out, a, b: _tie_share(g, b, a),
    grad_fn="MaximumBackward0", rule="(a > b) da + (b > a) db",
    at_kink=lambda a, b: a == b,
    kink="a tie splits the gradient in halves", sym=lambda sp, a, b: sp.Max(a, b),
    numpy=(np.maximum,), zero_regions=True)
def maximum(a, b):
    return np.maximum(a, b)


@op(lambda g, out, a, b: _tie_share(g, b, a), lambda g, out, a, b: _tie_share(g, a, b),
    grad_fn="MinimumBackward0", rule="(a < b) da + (b < a) db",
    at_kink=lambda a, b: a == b,
    kink="a tie splits the gradient in halves", sym=lambda sp, a, b: sp.Min(a, b),
    numpy=(np.minimum,), zero_regions=True)
def minimum(a, b):
    return np.minimum(a, b)


# clip is min(max(x, lo), hi): when lo > hi every x gives hi, as numpy does.
@op(lambda g, out, x, lo, hi: np.where((x >= lo) & (x <= hi), g, 0.0),
    lambda g, out, x, lo, hi: np.where((x < lo) & (lo <= hi), g, 0.0),
    lambda g, out, x, lo, hi: np.where((x > hi) | (lo > hi), g, 0.0),
    grad_fn="ClampBackward1", rule="dx inside [lo, hi], dlo below, dhi above",
    at_kink=lambda x, lo, hi: (x == lo) | (x == hi),
    kink="at x == lo or x == hi the gradient goes to x",
    sym=lambda sp, x, lo, hi: sp.Min(sp.Max(x, lo), hi),
    domain=(REALS, (-3.0, -0.5), (0.5, 3.0)), numpy=(np.clip,), zero_regions=True)
def clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


_CLIP_NAMES = {"a": 0, "x": 0, "a_min": 1, "min": 1, "lo": 1, "a_max": 2, "max": 2,
               "hi": 2}


def _clip_arguments(args, kwargs):
    """numpy's keywords (a_min/a_max, min/max) and PyTorch's (min/max) for the
    bounds; a missing or None bound is no bound."""
    args = list(args) + [None] * (3 - len(args))
    for k in [k for k in kwargs if k in _CLIP_NAMES]:
        i = _CLIP_NAMES[k]
        if args[i] is not None:
            raise TypeError(f"clip() got multiple values for {k!r}")
        args[i] = kwargs.pop(k)
    if args[0] is None:
        raise TypeError("clip() needs the array to clip")
    if args[1] is None:
        args[1] = -np.inf
    if args[2] is None:
        args[2] = np.inf
    return tuple(args), kwargs


clip.extra["prepare"] = _clip_arguments
clip.fast_call = False  # positional None bounds need the prepare step


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


# -- more exponentials, angles and rounding (issue 11) -------------------------
_LN2 = math.log(2.0)


@op(lambda g, out, x: g * (out * _LN2), grad_fn="Exp2Backward0", saves="out",
    rule="2**x ln 2 dx", sym=lambda sp, x: 2**x, guard=True, numpy=(np.exp2,))
def exp2(x):
    return np.exp2(x)


# The weights exp(a - out) and exp(b - out) are softmax shares: they never overflow.
@op(lambda g, out, a, b: g * np.exp(a - out), lambda g, out, a, b: g * np.exp(b - out),
    grad_fn="LogaddexpBackward0", saves="both",
    rule="(e^a da + e^b db) / (e^a + e^b)",
    sym=lambda sp, a, b: sp.log(sp.exp(a) + sp.exp(b)), numpy=(np.logaddexp,))
def logaddexp(a, b):
    return np.logaddexp(a, b)


@op(lambda g, out, a, b: g * np.exp2(a - out), lambda g, out, a, b: g * np.exp2(b - out),
    grad_fn="Logaddexp2Backward0", saves="both",
    rule="(2^a da + 2^b db) / (2^a + 2^b)",
    sym=lambda sp, a, b: sp.log(2**a + 2**b, 2), numpy=(np.logaddexp2,))
def logaddexp2(a, b):
    return np.logaddexp2(a, b)


_RAD = math.pi / 180


def _to_radians(sp, x):
    return x * sp.pi / 180


def _to_degrees(sp, x):
    return x * 180 / sp.pi


@op(local=(_RAD,), grad_fn="MulBackward0", saves="none", rule="pi/180 dx",
    sym=_to_radians, numpy=(np.deg2rad,))
def deg2rad(x):
    return np.deg2rad(x)


@op(local=(_RAD,), grad_fn="MulBackward0", saves="none", rule="pi/180 dx",
    sym=_to_radians, numpy=(np.radians,))
def radians(x):
    return np.radians(x)


@op(local=(1 / _RAD,), grad_fn="MulBackward0", saves="none", rule="180/pi dx",
    sym=_to_degrees, numpy=(np.rad2deg,))
def rad2deg(x):
    return np.rad2deg(x)


@op(local=(1 / _RAD,), grad_fn="MulBackward0", saves="none", rule="180/pi dx",
    sym=_to_degrees, numpy=(np.degrees,))
def degrees(x):
    return np.degrees(x)


def _over(a, r):
    """a / r, taken as 0 where r == 0 (hypot's kink: the origin)."""
    return a / np.where(r == 0, 1.0, r)


@op(lambda g, out, a, b: g * _over(a, out), lambda g, out, a, b: g * _over(b, out),
    grad_fn="HypotBackward0", saves="both", rule="(a da + b db) / hypot(a, b)",
    at_kink=lambda a, b: (a == 0) & (b == 0),
    kink="gradient 0 at a == b == 0 (as norm's at 0)",
    sym=lambda sp, a, b: sp.sqrt(a**2 + b**2), guard=True, numpy=(np.hypot,))
def hypot(a, b):
    return np.hypot(a, b)


def _sinc_series(x):
    # sinc'(x) = sum_k>=1 (-1)^k 2k pi^2k x^(2k-1) / (2k+1)!, for |x| < 0.1 where
    # (cos(pi x) - sinc(x)) / x cancels (and its own derivative more so): a
    # polynomial, exact to rounding there, also at x == 0 and when differentiated.
    x2 = (np.pi * np.pi) * (x * x)
    total = 0.0
    for k in range(6, 0, -1):
        total = total * x2 + (-1) ** k * 2 * k / math.factorial(2 * k + 1)
    return total * (np.pi * np.pi) * x


def _sinc_vjp(g, out, x):
    near = np.abs(x) < 0.1
    safe = np.where(near, 1.0, x)
    return g * np.where(near, _sinc_series(x), (np.cos(np.pi * x) - out) / safe)


@op(_sinc_vjp, grad_fn="SincBackward0", saves="both",
    rule="(cos(pi x) - sinc(x)) / x dx (0 at x == 0)", guard=True,
    sym=lambda sp, x: sp.sinc(sp.pi * x), numpy=(np.sinc,))
def sinc(x):
    return np.sinc(x)


# numpy's remainder (the sign of b) is a - floor(a/b) b, fmod (the sign of a)
# a - trunc(a/b) b: slope 1 in a, -floor(a/b) or -trunc(a/b) in b, with jumps
# where a/b is an integer; there the gradient is that of the piece the value
# belongs to (the quotient numpy rounded to).
_JUMP = "at a jump (a/b an integer) the gradient of the piece numpy's value is on"


def _on_jump(a, b):
    return np.remainder(a, b) == 0


@op(lambda g, out, a, b: g, lambda g, out, a, b: -g * np.floor(a / b),
    grad_fn="RemainderBackward0", rule="da - floor(a/b) db", at_kink=_on_jump,
    kink=_JUMP, sym=lambda sp, a, b: sp.Mod(a, b), domain=(REALS, POSITIVE),
    numpy=(np.remainder,), zero_regions=True)
def remainder(a, b):
    return np.remainder(a, b)


@op(lambda g, out, a, b: g, lambda g, out, a, b: -g * np.floor(a / b),
    grad_fn="RemainderBackward0", rule="da - floor(a/b) db", at_kink=_on_jump,
    kink=_JUMP, sym=lambda sp, a, b: sp.Mod(a, b), domain=(REALS, POSITIVE),
    zero_regions=True)
def mod(a, b):
    return np.mod(a, b)


def _trunc_sym(sp, a, b):
    q = a / b
    return a - b * sp.sign(q) * sp.floor(sp.Abs(q))


def _trunc_quotient(a, b):
    q = a / b
    return np.sign(q) * np.floor(np.abs(q))  # trunc, in ops the engine has


@op(lambda g, out, a, b: g, lambda g, out, a, b: -g * _trunc_quotient(a, b),
    grad_fn="FmodBackward0", rule="da - trunc(a/b) db", at_kink=_on_jump,
    kink=_JUMP, sym=_trunc_sym, domain=(REALS, POSITIVE), numpy=(np.fmod,),
    zero_regions=True)
def fmod(a, b):
    return np.fmod(a, b)


@op(lambda g, out, x, **params: g * np.isfinite(x), grad_fn="NanToNumBackward0",
    rule="dx where x is finite, 0 elsewhere",
    kink="0 at nan and inf (they become constants)",
    sym=lambda sp, x, **params: x, numpy=(np.nan_to_num,), zero_regions=True,
    reals=("nan", "posinf", "neginf"))
def nan_to_num(x, *, copy=True, nan=0.0, posinf=None, neginf=None):
    return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def _real_only(x, name: str):
    if np.iscomplexobj(x) and np.asarray(x).dtype != object:
        raise TypeError(f"{name}: complex input is not supported (gradcli is real)")
    return x


@op(local=(1,), grad_fn="RealBackward0", saves="none", rule="dx (real input)",
    sym=lambda sp, x: x, numpy=(np.real,), method=False)
def real(x):
    return np.array(_real_only(x, "real"), copy=True)


@op(local=(1,), grad_fn="ConjBackward0", saves="none", rule="dx (real input)",
    sym=lambda sp, x: x, numpy=(np.conjugate,), method=False)
def conj(x):
    return np.array(_real_only(x, "conj"), copy=True)


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


for _n, _f, _also in (("less", np.less, ()), ("less_equal", np.less_equal, ()),
                      ("greater", np.greater, ()), ("greater_equal", np.greater_equal, ()),
                      ("equal", np.equal, ()), ("not_equal", np.not_equal, ()),
                      ("logical_and", np.logical_and, ()),
                      ("logical_or", np.logical_or, ())):
    _predicate(_n, _f, _also, f"{_n}(a, b): bool result, not differentiable")


@op(grad_fn="", rule="bool result, not differentiable", expr=False, method=False,
    numpy=(np.logical_not,))
def logical_not(x):
    return np.logical_not(x)


# -- & | ^ ~: bitwise on integers, logical on bools (PyTorch's and numpy's alike) ---
def _bitwise_call(name: str, fn, *args):
    try:
        return fn(*args)
    except TypeError as exc:  # numpy's ufunc message names no dtype the user sees
        dts = {np.result_type(a) for a in args}
        kinds = ", ".join(sorted(d.name for d in dts if d.kind not in "biu") or
                          (d.name for d in dts))
        raise TypeError(f"{name}: only integer and bool tensors, not {kinds} "
                        "(PyTorch and numpy refuse floats too)") from exc


def _bitwise_and(a, b):
    return _bitwise_call("bitwise_and (&)", np.bitwise_and, a, b)


def _bitwise_or(a, b):
    return _bitwise_call("bitwise_or (|)", np.bitwise_or, a, b)


def _bitwise_xor(a, b):
    return _bitwise_call("bitwise_xor (^)", np.bitwise_xor, a, b)


def _bitwise_not(x):
    return _bitwise_call("bitwise_not (~)", np.invert, x)


# Internal (no expression name, no gc.* function): reached through the
# operators and numpy's ufuncs; integers and bools carry no gradient.
for _f, _ufunc in ((_bitwise_and, np.bitwise_and), (_bitwise_or, np.bitwise_or),
                   (_bitwise_xor, np.bitwise_xor), (_bitwise_not, np.invert)):
    op(grad_fn="", rule="integer or bool result, not differentiable", expr=False,
       method=False, numpy=(_ufunc,), name=_f.__name__)(_f)
    OPS.pop(_f.__name__)


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
