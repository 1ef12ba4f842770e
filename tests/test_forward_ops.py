"""Forward mode, op by op over the engine's own op table (issue 11).

For every differentiable op, on the inputs ``tests/test_ops.py`` draws for it
(its declared domain, away from its kinks), ``gc.jvp`` along random tangents is
compared with two independent truths: ``J v`` from the reverse-mode Jacobian
(the batched rows, contracted with ``v`` here) and the directional central
difference ``(f(x + h v) - f(x - h v)) / 2h`` of the op's values. Second order:
on a sample of ops, forward over reverse (``gc.jvp`` of ``gc.grad``) against
central differences of the gradient and against ``gc.hvp`` (reverse over
reverse; ``gc.hvp`` keeps it: forward mode here is itself two reverse walks, so
forward over reverse would cost more, not less). ``jvp`` of a function that
calls ``jvp`` is refused today (NotImplementedError), which is tested too.
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


# Forward over reverse: a sample across the families (elementwise, reductions,
# linear algebra, scans, shape), the first input differentiated.
SECOND_ORDER = ["mul", "div", "pow", "exp", "log", "tanh", "arctan2", "sigmoid",
                "softplus", "hypot", "logaddexp", "sinc", "abs", "maximum", "prod",
                "logsumexp", "softmax", "norm", "std", "matmul", "det", "inv", "solve",
                "einsum", "cumprod", "cross", "kron", "getitem", "pad"]


def test_the_second_order_sample_is_in_the_table():
    assert set(SECOND_ORDER) <= set(DIFFERENTIABLE)


@pytest.mark.parametrize("name", SECOND_ORDER)
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


def test_jvp_of_a_function_calling_jvp_is_refused():
    v = np.array([1.0, 2.0])
    inner = lambda x: gc.jvp(lambda y: gc.sum(y ** 3), (x,), (v,))[1]  # noqa: E731
    with pytest.raises(NotImplementedError, match="jvp: inside another transform"):
        gc.jvp(inner, ([0.5, -1.0],), (v,))
