"""Forward mode (issue 11, in part): gc.jvp and gc.jacfwd against central finite
differences of the function's values and against hand-derived Jacobians."""

from __future__ import annotations

import numpy as np
import pytest

import gradcli as gc

FUNCTIONS = {
    "elementwise": lambda x, y: gc.sin(x) * y + gc.exp(-x * x),
    "reduction": lambda x, y: gc.sum(x * x) * y,
    "matrix": lambda x, y: gc.tanh(gc.outer(x, x) @ x) + y,
    "softmax": lambda x, y: gc.softmax(x * y),
    "where": lambda x, y: gc.where(x > 0, gc.log(gc.abs(x) + 1) * y, x * x),
}


def values(f, x, y):
    with gc.no_grad():
        return np.asarray(f(gc.tensor(x, dtype=gc.float64), gc.tensor(y, dtype=gc.float64))
                          .detach().numpy(), dtype=float)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_jvp_is_the_directional_finite_difference(name):
    f = FUNCTIONS[name]
    rng = np.random.default_rng(len(name))
    x, y = rng.uniform(-1.5, 1.5, 4), rng.uniform(0.5, 1.5)
    vx, vy = rng.standard_normal(4), rng.standard_normal()
    value, tangent = gc.jvp(f, (x, y), (vx, vy))
    h = 1e-6
    fd = (values(f, x + h * vx, y + h * vy) - values(f, x - h * vx, y - h * vy)) / (2 * h)
    np.testing.assert_allclose(value.numpy(), values(f, x, y), rtol=1e-15)
    np.testing.assert_allclose(tangent.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_jacfwd_is_the_jacobian_by_hand():
    # d(tanh(x_i) S)/dx_j = (1 - tanh(x_i)^2) S [i == j] + tanh(x_i), S = sum(x)
    x = np.array([0.1, -0.4, 0.7])
    t, s = np.tanh(x), x.sum()
    want = np.diag((1 - t * t) * s) + t[:, None]
    got = gc.jacfwd(lambda v: gc.tanh(v) * gc.sum(v))(x)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-14)


def test_a_tangent_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        gc.jvp(lambda x: x * 2, ([1.0, 2.0],), ([1.0],))


def test_a_function_not_of_its_primals_has_a_zero_tangent():
    value, tangent = gc.jvp(lambda x: gc.tensor([1.0, 2.0], dtype=gc.float64), ([3.0],), ([1.0],))
    assert tangent.numpy().tolist() == [0.0, 0.0]


def test_jacfwd_columns_in_chunks_and_inputs_of_any_shape():
    # f(A, s, c) = s * (A @ w) + 0 * c: d/dA_jk = s * w_k [i == j], d/ds = A @ w,
    # d/dc = 0 (c reaches the output through a product with zero only)
    from gradcli.transforms import _columns

    w = np.array([0.5, -1.0, 2.0])
    A = np.arange(6.0).reshape(2, 3) / 7
    s, c = 1.3, np.array([0.2, 0.4])
    want_A = np.einsum("ij,k->ijk", np.eye(2), s * w)
    leaves = [gc.tensor(a, dtype=gc.float64, requires_grad=True) for a in (A, s, c)]
    out = leaves[1] * (leaves[0] @ gc.tensor(w, dtype=gc.float64)) + leaves[2] * 0.0
    for max_elements in (1, 5, None):
        jA, js, jc = _columns(out, leaves, max_elements=max_elements)
        np.testing.assert_allclose(jA, want_A, rtol=1e-15)
        np.testing.assert_allclose(js, A @ w, rtol=1e-15)
        np.testing.assert_array_equal(jc, np.zeros((2, 2)))


def test_jvp_under_no_grad_still_pushes_the_tangent():
    with gc.no_grad():
        _, tangent = gc.jvp(lambda x: x * x, ([1.0, 3.0],), ([1.0, 1.0],))
    assert tangent.numpy().tolist() == [2.0, 6.0]
