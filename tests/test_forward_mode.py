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



@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_linearize_runs_f_once_and_gives_the_directional_finite_difference(name):
    calls = []

    def f(x, y):
        calls.append(1)
        return FUNCTIONS[name](x, y)

    rng = np.random.default_rng(len(name) + 1)
    x, y = rng.uniform(-1.5, 1.5, 4), rng.uniform(0.5, 1.5)
    value, f_jvp = gc.linearize(f, x, y)
    np.testing.assert_allclose(value.numpy(), values(FUNCTIONS[name], x, y), rtol=1e-15)
    h = 1e-6
    for _ in range(3):  # one recording, several tangents
        vx, vy = rng.standard_normal(4), rng.standard_normal()
        fd = (values(FUNCTIONS[name], x + h * vx, y + h * vy)
              - values(FUNCTIONS[name], x - h * vx, y - h * vy)) / (2 * h)
        np.testing.assert_allclose(f_jvp(vx, vy).numpy(), fd, rtol=1e-6, atol=1e-8)
    assert len(calls) == 1


def test_linearize_refuses_tangents_that_do_not_fit():
    _, f_jvp = gc.linearize(lambda x, y: x * y, [1.0, 2.0], 3.0)
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        f_jvp([1.0, 0.0])
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        f_jvp([1.0], 0.0)


def test_linearize_inside_grad_sees_the_outer_variable():
    # g(s) = d/dt [(s x)^2 summed] along v at x = (1, 2), v = (1, 1): 2 s^2 (x . v) = 6 s^2,
    # so g'(s) = 12 s.
    def g(s):
        _, f_jvp = gc.linearize(lambda x: gc.sum((s * x) ** 2), gc.tensor([1.0, 2.0]))
        return f_jvp(gc.tensor([1.0, 1.0]))

    assert gc.grad(g)(1.5).item() == pytest.approx(18.0, rel=1e-14)


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


# -- kinks and undefined points: forward mode must give reverse mode's numbers ----------
# Each Jacobian by hand, the chain rule evaluated in IEEE arithmetic at the
# point (PyTorch's conventions: abs'(0) = 0; inf * 0 = nan).
INF, NAN = np.inf, np.nan
AT_KINKS = {
    # d sqrt(x^2) = 1/(2 sqrt(x^2)) * 2x: inf * 0 = nan at 0
    "sqrt(x*x)": (lambda x: gc.sqrt(x * x), [0.0, 2.0, -3.0], [NAN, 1.0, -1.0]),
    "abs(x)": (lambda x: gc.abs(x), [0.0, 2.0, -3.0], [0.0, 1.0, -1.0]),
    "x**0.5": (lambda x: x ** 0.5, [0.0, 4.0, 1.0], [INF, 0.25, 0.5]),
    "log(x)": (lambda x: gc.log(x), [0.0, 2.0, 0.5], [INF, 0.5, 2.0]),
    # d log(x^2) = 1/x^2 * 2x: inf * 0 = nan at 0
    "log(x*x)": (lambda x: gc.log(x * x), [0.0, 2.0, -0.5], [NAN, 1.0, -4.0]),
    # d (x sqrt(x)) = sqrt(x) + x/(2 sqrt(x)): reverse mode's 0 at 0 (the guard:
    # the cotangent x = 0 meets sqrt's infinite derivative), also the true 1.5 sqrt(0)
    "x*sqrt(x)": (lambda x: x * gc.sqrt(x), [0.0, 4.0, 1.0], [0.0, 3.0, 1.5]),
    # the zero tangent below a where (the guard would mask it: a silent 0)
    "sqrt(where(x>-1,x,0)**2)": (lambda x: gc.sqrt(gc.where(x > -1, x, 0.0) ** 2),
                                 [0.0, 2.0, -3.0], [NAN, 1.0, 0.0]),
    # relu's rule selects, as PyTorch's threshold_backward: the nan arriving
    # from 2 relu(x) * inf at 0 stops there (relu'(0) = 0), and so does the inf
    # of sqrt(relu(x)) below 0 (the function is flat there)
    "sqrt(relu(x)**2)": (lambda x: gc.sqrt(gc.relu(x) ** 2), [0.0, 2.0], [0.0, 1.0]),
    "sqrt(relu(x))": (lambda x: gc.sqrt(gc.relu(x)), [-1.0, 4.0], [0.0, 0.25]),
}


@pytest.mark.parametrize("name", sorted(AT_KINKS))
def test_forward_mode_gives_reverse_modes_numbers_at_kinks(name):
    f, x, diagonal = AT_KINKS[name]
    x = np.array(x)
    want = np.diag(diagonal)  # elementwise: nothing off the diagonal
    with np.errstate(all="ignore"):
        forward = gc.jacfwd(f)(x).numpy()
        reverse = gc.jacobian(f, method="rows")(x).numpy()
        loop = gc.jacobian(f, method="loop")(x).numpy()
    np.testing.assert_array_equal(reverse, want)  # (nan == nan here)
    np.testing.assert_array_equal(loop, want)
    np.testing.assert_array_equal(forward, want)
    # jvp: J v in IEEE arithmetic (a nan derivative times a zero tangent is nan)
    n = len(x)
    for v in (np.linspace(1.0, -0.5, n), np.eye(n)[0], np.eye(n)[1]):
        with np.errstate(all="ignore"):
            _, tangent = gc.jvp(f, (x,), (v,))
            jv = np.array([sum(want[i, j] * v[j] for j in range(n)) for i in range(n)])
        np.testing.assert_array_equal(tangent.numpy(), jv, err_msg=f"{name} along {v}")


def _rule_not_twice_differentiable(monkeypatch, name="sin"):
    """``name``'s rule raising when run on Tensors (to be differentiated again),
    as a rule without a second derivative does; its first derivative intact."""
    from gradcli import OPS
    from gradcli.errors import EvaluationError

    op = OPS[name]

    def refusing(rule):
        def vjp(g, *rest, **params):
            if isinstance(g, gc.Tensor):
                raise EvaluationError(f"{name}: no second derivative (a test's rule)")
            return rule(g, *rest, **params)
        return vjp

    monkeypatch.setattr(op, "vjps", tuple(refusing(r) for r in op.vjps))


def test_auto_jacobian_takes_the_rows_where_a_rule_has_no_second_derivative(monkeypatch):
    # f = sin(k) t: d/dk = cos(k) t; 1 input, 70 outputs: auto would take columns
    _rule_not_twice_differentiable(monkeypatch)
    from gradcli.errors import EvaluationError

    t = np.linspace(0.0, 2.0, 70)
    f = lambda k: gc.sin(k) * t
    np.testing.assert_allclose(gc.jacobian(f)(0.3).numpy(), np.cos(0.3) * t, rtol=1e-15)
    with pytest.raises(EvaluationError, match="no second derivative"):
        gc.jacfwd(f)(0.3)
    with pytest.raises(EvaluationError, match="no second derivative"):
        gc.jvp(f, (0.3,), (1.0,))


def test_jvp_takes_reverse_rows_only_within_its_budget(monkeypatch):
    # f = sqrt(where(x > -1, x, 0)^2) at -3: 0 near -3, so J v = 0 (reverse mode's
    # row); forward mode's own walk meets 0 * inf there (nan), which stands when
    # the rows are over the budget
    from gradcli import transforms

    f = AT_KINKS["sqrt(where(x>-1,x,0)**2)"][0]
    x, v = np.array([-3.0, 2.0]), np.array([1.0, 1.0])
    with np.errstate(all="ignore"):
        assert gc.jvp(f, (x,), (v,))[1].numpy().tolist() == [0.0, 1.0]
        monkeypatch.setattr(transforms, "ROWS_BUDGET", 0)
        got = gc.jvp(f, (x,), (v,))[1].numpy()
    assert np.isnan(got[0]) and got[1] == 1.0
