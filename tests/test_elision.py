"""Results written into temporaries (``fastpath._unary_into`` / ``_binary_into``).

An elementwise op whose rules read no input (exp, tanh, sqrt, neg, +, -) may
compute into its input's array when that input is a temporary nobody else can
see. Here: that it happens (one array fewer at the peak), that a Tensor held
in any way is never written into, and that values and gradients are those of
the plain computation (``REUSE_MIN`` set out of reach) and of hand numpy.
"""

from __future__ import annotations

import functools
import sys
import tracemalloc
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcli as gc
from gradcli.engine import fastpath
from gradcli.engine.graph import keep_args

N = 2 * fastpath.INPLACE_MIN
RNG = np.random.default_rng(7)
A = RNG.standard_normal(N)
B = RNG.standard_normal(N)
C = RNG.standard_normal(N)
AB = A * B


def _on():
    """The reuse is calibrated on on this interpreter (CPython below 3.14)."""
    return min(fastpath._TEMP) > 0


def test_the_calibration_turns_the_reuse_on_only_where_counts_tell():
    cpython = sys.implementation.name == "cpython" and sys.version_info < (3, 14)
    assert _on() == cpython


def _forward_peak(n: int) -> tuple[float, float]:
    """Peaks of the forward pass and of value plus gradient of the bench
    function, from ``gc.tensor(x)`` on (the copy included), in units of x."""
    x = np.random.default_rng(0).standard_normal(n)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        t = gc.tensor(x, requires_grad=True)
        y = gc.sum(gc.sin(t) * t + gc.exp(-t * t))
        fwd = tracemalloc.get_traced_memory()[1]
        y.backward()
        both = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    s, e = np.sin(x), np.exp(-x * x)
    assert np.isclose(y.item(), np.sum(s * x + e), rtol=1e-12)
    np.testing.assert_allclose(t.grad.numpy(), np.cos(x) * x + s - 2 * x * e,
                               rtol=1e-12, atol=1e-12)
    return (fwd - base) / x.nbytes, (both - base) / x.nbytes


@pytest.mark.skipif(not _on(), reason="no reuse on this interpreter")
def test_the_forward_pass_holds_one_array_fewer(monkeypatch):
    # Alive when exp runs: the copy, sin(x), sin(x)*x, -x, (-x)*x and exp's
    # output (6 arrays); exp writes into (-x)*x and + into sin(x)*x: 5.
    n = 1 << 20
    fwd, both = _forward_peak(n)
    monkeypatch.setattr(fastpath, "REUSE_MIN", 1 << 62)
    plain_fwd, plain_both = _forward_peak(n)
    assert plain_fwd - fwd > 0.9
    assert fwd < 5.05 and both < 5.05
    assert plain_both > 5.9


# -- a Tensor held in any way keeps its values -------------------------------------
def _inputs(dtype=np.float64, grad=True):
    return (gc.tensor(A.astype(dtype), requires_grad=grad),
            gc.tensor(B.astype(dtype), requires_grad=grad))


def _copy(t):
    return t.detach().numpy().copy()


def _variable():
    a, b = _inputs()
    u = a * b
    return [(u, AB)], gc.exp(u), np.exp(AB)


def _list_item():
    a, b = _inputs()
    box = [a * b]
    return [(box[0], AB)], gc.exp(box[0]), np.exp(AB)


def _dict_item():
    a, b = _inputs()
    box = {"u": a * b}
    return [(box["u"], AB)], gc.tanh(box["u"]), np.tanh(AB)


def _attribute():
    a, b = _inputs()
    ns = types.SimpleNamespace(u=a * b)
    return [(ns.u, AB)], ns.u + gc.exp(a), AB + np.exp(A)


def _right_operand_held():
    a, b = _inputs()
    u = a * b
    return [(u, AB)], gc.exp(a) - u, np.exp(A) - AB


def _a_view_of_its_array():
    a, b = _inputs()
    keep = []

    def make():
        t = a * b
        keep.append(t[::2])  # a view: holds the array, not the Tensor
        return t

    y = gc.exp(make())
    return [(keep[0], AB[::2])], y, np.exp(AB)


def _its_numpy_array():
    a, b = _inputs()
    keep = []

    def make():
        t = a * b
        keep.append(t.detach().numpy())
        return t

    y = make() + 1.0
    np.testing.assert_array_equal(keep[0], AB)
    return [], y, AB + 1.0


def _saved_by_a_node():
    a, b = _inputs()
    c = gc.tensor(C, requires_grad=True)
    keep = []

    def make():
        t = a * b
        keep.append(t * c)  # mul saves t's array for c's gradient
        return t

    y = gc.exp(make())
    gc.sum(keep[0]).backward()
    np.testing.assert_array_equal(c.grad.numpy(), AB)
    return [], y, np.exp(AB)


def _used_twice():
    a, b = _inputs()
    u = a * b
    e = gc.exp(u)
    return [(u, AB), (e, np.exp(AB))], u + e, AB + np.exp(AB)


def _twice_in_one_expression():
    a, b = _inputs()
    u = a * b
    return [(u, AB)], gc.exp(u) + u - (u + 1.0), np.exp(AB) + AB - (AB + 1.0)


def _retain_grad():
    a, b = _inputs()
    u = a * b
    u.retain_grad()
    y = gc.exp(u)
    gc.sum(y).backward()
    np.testing.assert_array_equal(u.grad.numpy(), np.exp(AB))
    return [(u, AB)], y, np.exp(AB)


def _no_grad():
    a, b = _inputs()
    u = a * b
    with gc.no_grad():
        y = gc.exp(u) + gc.exp(a * b) + (a * b)
    return [(u, AB)], y, np.exp(AB) + np.exp(AB) + AB


def _no_requires_grad():
    a, b = _inputs(grad=False)
    u = a * b
    return [(u, AB)], gc.exp(a * b) + u + gc.exp(u), np.exp(AB) + AB + np.exp(AB)


def _integers():
    ia = gc.tensor(np.arange(N) % 7)
    u = ia * ia
    hand = (np.arange(N) % 7) ** 2
    # (PyTorch's dtypes: exp of an int tensor is float32, and so is float32 + int)
    f32 = np.float32
    return [(u, hand)], gc.exp(ia * ia) + (u + 1), np.exp(hand.astype(f32)) + (hand + 1).astype(f32)


def _float32():
    a, b = _inputs(np.float32)
    u = a * b
    a32, b32 = A.astype(np.float32), B.astype(np.float32)
    y = gc.exp(a * b) + u + 1.0
    assert y.dtype == np.float32
    return [(u, a32 * b32)], y, np.exp(a32 * b32) + a32 * b32 + np.float32(1.0)


def _mixed_dtypes():
    a, b = _inputs(np.float32)
    a32, b32 = A.astype(np.float32), B.astype(np.float32)
    y = (a * b) + C  # a float64 array: the float32 temporary cannot take the result
    assert y.dtype == np.float64
    return [], y, (a32 * b32) + C


def _broadcast():
    rows = A.reshape(4, -1)
    r = gc.tensor(rows, requires_grad=True)
    row = gc.tensor(B[: rows.shape[1]], requires_grad=True)
    u = r * 2.0
    # a temporary row (large enough) against a held matrix: the result is
    # larger than the row, so it cannot go there, nor into the held matrix
    y = (row * 1.0) + u + (r * r) - (row * 3.0)
    hand = B[: rows.shape[1]] + rows * 2.0 + rows * rows - B[: rows.shape[1]] * 3.0
    return [(u, rows * 2.0)], y, hand


def _broadcast_row_temporary_large():
    m = N // 2  # a row of REUSE_MIN elements against two such rows
    wide = gc.tensor(A.reshape(2, m), requires_grad=True)
    line = gc.tensor(B[:m], requires_grad=True)
    held = wide * 1.0
    y = (line * 1.0) + held + (wide * 1.0) + (line * 2.0)
    hand = B[:m] + A.reshape(2, m) + A.reshape(2, m) + B[:m] * 2.0
    return [(held, A.reshape(2, m))], y, hand


def _numpy_dispatch():
    a, b = _inputs()
    u = a * b
    y = np.exp(u) + np.exp(a * b) + np.add(a * b, u)
    return [(u, AB)], y, np.exp(AB) * 2 + AB * 2


def _methods():
    a, b = _inputs()
    u = a * b
    y = u.exp() + (a * b).exp() + u.add(a * b) + (a * b).add(u) + u.sub(a * b)
    return [(u, AB)], y, np.exp(AB) * 2 + AB * 4


def _torch_names():
    a, b = _inputs()
    u = a * b
    y = gc.Tensor.add(u, a * b) + gc.add(a * b, u) + gc.sub(u, a * b) + gc.neg(u)
    return [(u, AB)], y, AB * 4 - AB


def _partial():
    a, b = _inputs()
    p = functools.partial(gc.exp, a * b)  # holds the temporary, lends it on call
    first = p()
    np.testing.assert_array_equal(first.detach().numpy(), np.exp(AB))
    return [], p(), np.exp(AB)


def _sort_key():
    a, b = _inputs()
    box = [a * b]
    box.sort(key=gc.exp)  # the key is called with a borrowed reference
    return [(box[0], AB)], gc.exp(a), np.exp(A)


def _map():
    a, b = _inputs()
    box = [a * b]
    out = list(map(gc.exp, box))
    return [(box[0], AB)], out[0], np.exp(AB)


def _keep_args():
    a, b = _inputs()
    with keep_args():
        y = gc.exp(a * b) + gc.exp(a)
    (arg,) = y.grad_fn._node.p0.args  # exp's input, kept
    return [(arg, AB)], y, np.exp(AB) + np.exp(A)


def _leaf():
    a, _ = _inputs()
    return [(a, A)], gc.exp(a) + gc.neg(a), np.exp(A) - A


HOLDERS = [_variable, _list_item, _dict_item, _attribute, _right_operand_held,
           _a_view_of_its_array, _its_numpy_array, _saved_by_a_node, _used_twice,
           _twice_in_one_expression, _retain_grad, _no_grad, _no_requires_grad,
           _integers, _float32, _mixed_dtypes, _broadcast,
           _broadcast_row_temporary_large, _numpy_dispatch, _methods,
           _torch_names, _partial, _sort_key, _map, _keep_args, _leaf]


@pytest.mark.parametrize("case", HOLDERS, ids=lambda f: f.__name__.strip("_"))
def test_a_held_tensor_keeps_its_values(case):
    with np.errstate(all="ignore"):
        held, y, hand = case()
    for t, values in held:
        np.testing.assert_array_equal(_copy(t), values)
    got = _copy(y)
    assert got.dtype == np.asarray(hand).dtype
    rtol = 1e-6 if got.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, hand, rtol=rtol)


def test_a_reused_tensor_raises_on_every_use():
    a, b = _inputs()
    t = a * b
    t._data = fastpath.REUSED  # as a caller holding it unseen would find it
    uses = [lambda: t + 1, lambda: 1 - t, lambda: gc.exp(t), lambda: np.exp(t),
            lambda: gc.sum(t), lambda: repr(t), lambda: t.shape, lambda: float(t),
            lambda: np.asarray(t.detach()), lambda: t.detach().numpy() == 0,
            lambda: bool(t.detach().numpy()), lambda: t.tolist()]
    for use in uses:
        with pytest.raises((RuntimeError, TypeError)):
            use()


# -- the same numbers as the plain computation ---------------------------------------
_UNARY = ["gc.exp({})", "gc.tanh({})", "gc.neg({})", "gc.sqrt(gc.exp({}))", "-({})",
          "gc.sin({})", "({}).exp()", "np.exp({})", "gc.exp({}) * 0.5"]
_BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "gc.add({}, {})", "({}) + 1.5",
           "2.0 - ({})", "({}).sub({})"]
_EXPR = st.recursive(
    st.sampled_from(["x", "y", "h", "c"]),
    lambda kids: st.one_of(
        st.tuples(st.sampled_from(_UNARY), kids).map(lambda p: p[0].format(p[1])),
        st.tuples(st.sampled_from(_BINARY), kids, kids).map(
            lambda p: p[0].format(*p[1:3 if p[0].count("{}") == 2 else 2]))),
    max_leaves=8)


def _value_and_grad(code, xv, yv, cv):
    x = gc.tensor(xv, requires_grad=True)
    y = gc.tensor(yv, requires_grad=True)
    h = x * y
    before = _copy(h)
    out = eval(code, {"gc": gc, "np": np, "x": x, "y": y, "h": h, "c": gc.tensor(cv)})
    if out.requires_grad:
        out.backward()
    np.testing.assert_array_equal(_copy(h), before)
    np.testing.assert_array_equal(_copy(x), xv)
    grads = [None if t.grad is None else t.grad.numpy() for t in (x, y)]
    return out.detach().numpy(), grads


@settings(max_examples=max(150, settings().max_examples))  # (a few ms each)
@given(_EXPR, st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1))
def test_values_and_gradients_equal_the_plain_computation(expr, dtype, seed):
    rng = np.random.default_rng(seed)
    xv = rng.standard_normal((3, 4)).astype(dtype)
    yv = rng.standard_normal(4).astype(dtype)
    cv = rng.standard_normal((3, 4)).astype(dtype)
    code = compile(f"gc.sum({expr})", "<expr>", "eval")
    with np.errstate(all="ignore"):
        fastpath.REUSE_MIN = 1  # every array may receive a result
        try:
            got = _value_and_grad(code, xv, yv, cv)
        finally:
            fastpath.REUSE_MIN = 1 << 62
        try:
            want = _value_and_grad(code, xv, yv, cv)
        finally:
            fastpath.REUSE_MIN = fastpath.INPLACE_MIN
    np.testing.assert_array_equal(got[0], want[0])
    for g, w in zip(got[1], want[1]):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_array_equal(g, w)


def test_shapes_that_do_not_broadcast_raise_the_usual_error(monkeypatch):
    def message():
        a, b = _inputs()
        with pytest.raises(ValueError) as got:
            (a * 1.0) + (b[: N // 2] * 1.0)
        return str(got.value)

    reused = message()
    monkeypatch.setattr(fastpath, "REUSE_MIN", 1 << 62)
    assert reused == message()
    assert reused.startswith("add: operands could not be broadcast together")
