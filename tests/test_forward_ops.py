"""Forward mode, op by op over the engine's own op table (issue 11).

For every differentiable op, on the inputs ``tests/test_ops.py`` draws for it
(its declared domain, away from its kinks), ``gc.jvp`` along random tangents is
compared with two independent truths: ``J v`` from the reverse-mode Jacobian
(the batched rows, contracted with ``v`` here) and the directional central
difference ``(f(x + h v) - f(x - h v)) / 2h`` of the op's values. Second order:
for every op too, forward over reverse (``gc.jvp`` of ``gc.grad``) against
central differences of the gradient and against ``gc.hvp`` (reverse over
reverse; ``gc.hvp`` keeps it: forward mode here is itself two reverse walks, so
forward over reverse would cost more, not less); and ``jvp`` nested the other
ways (reverse over forward, forward over forward) against central differences
of a gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ops import PIECEWISE_LINEAR, SPECS, STEP, call, cases_for, rng_for, values

import gradcli as gc
from gradcli import OPS, Tensor

DIFFERENTIABLE = sorted(n for n, o in OPS.items() if o.differentiable)


def _function(op, case):
    """f(*differentiated inputs) with the other arguments of the case fixed."""

    def f(*xs):
        args = list(case.args)
        for i, x in zip(case.diff, xs):
            args[i] = x
        return call(op, case, args)

    return f


def _moved(case, vs, step):
    args = list(case.args)
    for i, v in zip(case.diff, vs):
        args[i] = case.args[i] + step * v
    return args


def _directional_difference(op, case, vs, h):
    """Central differences at h and 2h: the estimate and its error (their gap)."""
    fine = (values(op, case, _moved(case, vs, h))
            - values(op, case, _moved(case, vs, -h))) / (2 * h)
    coarse = (values(op, case, _moved(case, vs, 2 * h))
              - values(op, case, _moved(case, vs, -2 * h))) / (4 * h)
    return fine, float(np.max(np.abs(coarse - fine), initial=0))


def _step(case) -> float:
    scale = max([1.0] + [float(np.max(np.abs(case.args[i]), initial=0)) for i in case.diff])
    return STEP * scale


def test_the_op_table_has_differentiable_ops_to_test():
    assert len(DIFFERENTIABLE) > 50
    assert set(DIFFERENTIABLE) <= set(SPECS)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=3)
@given(data=st.data())
def test_jvp_is_reverse_mode_j_v_and_the_directional_difference(name, data):
    op, spec = OPS[name], SPECS[name]
    case = data.draw(cases_for(name), label="case")
    if not case.diff:
        return
    rng = rng_for(data)
    vs = [rng.standard_normal(np.shape(case.args[i])) for i in case.diff]
    f = _function(op, case)
    primals = [case.args[i] for i in case.diff]
    value, tangent = gc.jvp(f, primals, vs)
    expected = values(op, case, case.args)
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12, atol=1e-13)
    assert tangent.shape == expected.shape and tangent.dtype == gc.float64
    assert tangent.grad_fn is None and not tangent.requires_grad

    # Reverse mode: every output's cotangent, then J contracted with v here.
    blocks = gc.jacobian(f, argnums=tuple(range(len(primals))), method="rows")(*primals)
    jv = sum(np.tensordot(b.numpy(), v, axes=v.ndim) for b, v in zip(blocks, vs))
    np.testing.assert_allclose(tangent.numpy(), np.reshape(jv, expected.shape),
                               rtol=1e-9, atol=1e-10, err_msg=f"{name}: jvp vs J v")

    fd, err = _directional_difference(op, case, vs, _step(case))
    np.testing.assert_allclose(tangent.numpy(), fd, rtol=spec.rtol,
                               atol=spec.atol + err, err_msg=f"{name}: jvp vs FD")


# Forward over reverse, for every differentiable op: the first input differentiated.
@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=3)
@given(data=st.data())
def test_forward_over_reverse_hessian_vector_products(name, data):
    op = OPS[name]
    case = data.draw(cases_for(name), label="case")
    if not case.diff:
        return
    k = case.diff[0]
    rng = rng_for(data)
    w = rng.standard_normal(np.shape(values(op, case, case.args)))
    v = rng.standard_normal(np.shape(case.args[k]))
    wt = Tensor(w)

    def scalar(x):
        args = list(case.args)
        args[k] = x
        return gc.sum(call(op, case, args) * wt)

    _, hv = gc.jvp(gc.grad(scalar), (case.args[k],), (v,))
    assert hv.shape == np.shape(case.args[k])
    np.testing.assert_allclose(hv.numpy(), gc.hvp(scalar, case.args[k], v).numpy(),
                               rtol=1e-9, atol=1e-10, err_msg=f"{name}: vs gc.hvp")

    def gradient(step):
        return gc.grad(scalar)(case.args[k] + step * v).numpy()

    h = _step(case)
    fine = (gradient(h) - gradient(-h)) / (2 * h)
    coarse = (gradient(2 * h) - gradient(-2 * h)) / (4 * h)
    if name in PIECEWISE_LINEAR:
        assert np.all(hv.numpy() == 0), f"{name}: second derivative must be 0"
    np.testing.assert_allclose(hv.numpy(), fine, rtol=1e-5,
                               atol=1e-6 + float(np.max(np.abs(coarse - fine), initial=0)),
                               err_msg=f"{name}: forward over reverse vs FD")


def _fd_gradient(f, x, v, h=1e-5):
    return (gc.grad(f)(x + h * v).numpy() - gc.grad(f)(x - h * v).numpy()) / (2 * h)


def test_nested_jvp_reverse_over_forward_and_forward_over_forward():
    # f = sum(sin(x) x^3): H v three ways against central differences of grad f
    f = lambda x: gc.sum(gc.sin(x) * x ** 3)  # noqa: E731
    x = np.array([0.3, 0.5, -0.7])
    v, w = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 0.2])
    hv = _fd_gradient(f, x, v)
    directional = lambda x: gc.jvp(f, (x,), (v,))[1]  # noqa: E731
    np.testing.assert_allclose(gc.grad(directional)(x).numpy(), hv, rtol=1e-7)
    _, whv = gc.jvp(directional, (x,), (w,))
    np.testing.assert_allclose(whv.numpy(), hv @ w, rtol=1e-7)
    # a Jacobian of a vector function calling jvp: d(J v)/dx, J v = 3 x^2 v
    jac = gc.jacobian(lambda x: gc.jvp(lambda y: y ** 3, (x,), (v,))[1])(x)
    np.testing.assert_allclose(jac.numpy(), np.diag(6 * x * v), rtol=1e-14)


def test_a_tangent_depending_on_an_outer_variable_is_differentiated():
    # d/ds <grad f(x), s v> = <grad f(x), v>; grad f by hand: cos(x) x^3 + 3 sin(x) x^2
    f = lambda x: gc.sum(gc.sin(x) * x ** 3)  # noqa: E731
    x, v = np.array([0.3, 0.5, -0.7]), np.array([1.0, 2.0, 3.0])
    want = (np.cos(x) * x ** 3 + 3 * np.sin(x) * x ** 2) @ v
    got = gc.grad(lambda s: gc.jvp(f, (x,), (s * Tensor(v),))[1])(2.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-14)


def test_top_level_jvp_results_are_detached():
    value, tangent = gc.jvp(lambda x: x * x, ([1.0, 2.0],), (Tensor([1.0, 1.0]),))
    assert value.grad_fn is None and tangent.grad_fn is None
    assert not tangent.requires_grad
