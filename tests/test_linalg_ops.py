"""The linear-algebra ops of issue 11 through numpy's own functions on Tensors
(np.linalg.slogdet, cholesky, matrix_power, pinv, eigh, svd, qr): values bit for
bit against numpy, gradients and Hessian-vector products against central finite
differences on hypothesis-drawn inputs, one hand-derived case per op, stacks,
and the clean error at the points where a gradient does not exist.

(Each op also has its row in tests/test_ops.py, test_backends.py,
test_corner_cases.py and test_transforms.py: those check the op itself, these
the numpy functions with their named tuples of results.)
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcli as gc
from gradcli.cli import main
from gradcli.errors import EvaluationError

H = 1e-6


def _offset(shape):
    """A fixed irrational-looking offset: LAPACK's sign choices jump at exact
    zeros and equal entries, which hypothesis likes (see tests/test_ops.py)."""
    return 0.01 * np.sin(np.arange(1, np.prod(shape, dtype=int) + 1) * 1.618).reshape(shape)


def _parts(out):
    return list(out) if isinstance(out, tuple) else [out]


def _np_value(f, x):
    """sum_k <w_k, f(x)_k>'s parts: f's results from numpy on plain arrays."""
    return [np.asarray(r, dtype=float) for r in _parts(f(x))]


def _loss(f, x, ws):
    return sum(np.sum(w * r) for w, r in zip(ws, _np_value(f, x)))


def _fd_grad(f, x, ws):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = H * max(1.0, abs(x[idx]))
        xp, xm = x.copy(), x.copy()
        xp[idx] += step
        xm[idx] -= step
        g[idx] = (_loss(f, xp, ws) - _loss(f, xm, ws)) / (xp[idx] - xm[idx])
    return g


def _engine_grad(f, x, ws, create_graph=False):
    t = gc.tensor(x, requires_grad=True)
    loss = sum(gc.sum(r * gc.tensor(w)) for w, r in zip(ws, _parts(f(t))))
    loss.backward(create_graph=create_graph)
    return t, t.grad


def check_function(f, x, rng, rtol=1e-5, atol=1e-6):
    """Values bit for bit, the gradient and H v against central differences."""
    ref = _np_value(f, x)
    with gc.no_grad():
        got = _parts(f(gc.tensor(x)))
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.numpy().tobytes() == r.tobytes()
    ws = [rng.standard_normal(r.shape) for r in ref]
    _, grad = _engine_grad(f, x, ws)
    np.testing.assert_allclose(grad.numpy(), _fd_grad(f, x, ws), rtol=rtol, atol=atol)
    # second order: H v through create_graph vs differences of the engine's gradient
    v = rng.standard_normal(x.shape)
    t, g = _engine_grad(f, x, ws, create_graph=True)
    t.grad = None
    s = gc.sum(g * gc.tensor(v))
    if s.requires_grad:  # (a gradient with no graph is constant: H v = 0)
        s.backward()
    hv = t.grad.numpy() if t.grad is not None else np.zeros(x.shape)
    step = H * max(1.0, float(np.max(np.abs(x))))
    gp = _engine_grad(f, x + step * v, ws)[1].numpy()
    gm = _engine_grad(f, x - step * v, ws)[1].numpy()
    np.testing.assert_allclose(hv, (gp - gm) / (2 * step), rtol=1e-4, atol=1e-5)


SIDES = st.integers(1, 3)
LEAD = st.sampled_from([(), (2,)])
ENTRIES = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)
SEEDS = st.integers(0, 2**32 - 1)
FEW = settings(max_examples=12, deadline=None)


@st.composite
def dominant(draw, square=True):
    """Stacks of (m, n) matrices with a dominant identity block: full rank,
    positive definite in the triangle numpy reads, far from singular."""
    n = draw(SIDES)
    m = n if square else draw(st.integers(n, 3))
    lead = draw(LEAD)
    a = draw(hnp.arrays(np.float64, lead + (m, n), elements=ENTRIES))
    return a + (n + 1) * np.eye(m, n) + _offset(lead + (m, n))


def _gapped(a, values):
    v = values(a)
    return v.shape[-1] < 2 or bool(np.all(np.abs(np.diff(v, axis=-1)) > 0.1))


@st.composite
def spread(draw, square=True, values=None):
    """Matrices whose eigenvalues (singular values) are 0.1 apart and, for
    singular values, above 0.1: U, V and eigenvectors have gradients there."""
    m, n = draw(SIDES), draw(SIDES)
    if square:
        m = n
    lead = draw(LEAD)
    a = draw(hnp.arrays(np.float64, lead + (m, n),
                        elements=st.floats(-2.0, 2.0, allow_nan=False,
                                           allow_subnormal=False)))
    a = a + _offset(a.shape)
    assume(_gapped(a, values))
    if not square:
        assume(bool(np.all(np.linalg.svd(a, compute_uv=False) > 0.1)))
    return a


def _svdvals(a):
    return np.linalg.svd(a, compute_uv=False)


FUNCTIONS = {
    "slogdet": (np.linalg.slogdet, dominant()),
    "cholesky": (np.linalg.cholesky, dominant()),
    "cholesky-upper": (lambda a: np.linalg.cholesky(a, upper=True), dominant()),
    "matrix_power-3": (lambda a: np.linalg.matrix_power(a / 4, 3), dominant()),
    "matrix_power--2": (lambda a: np.linalg.matrix_power(a, -2), dominant()),
    "matrix_power-0": (lambda a: np.linalg.matrix_power(a, 0), dominant()),
    "pinv": (np.linalg.pinv, dominant(square=False)),
    "pinv-wide": (lambda a: np.linalg.pinv(np.swapaxes(a, -1, -2)), dominant(square=False)),
    "eigh": (np.linalg.eigh, spread(values=np.linalg.eigvalsh)),
    "eigh-U": (lambda a: np.linalg.eigh(a, UPLO="U"),
               spread(values=lambda a: np.linalg.eigvalsh(a, UPLO="U"))),
    "svd": (lambda a: np.linalg.svd(a, full_matrices=False),
            spread(square=False, values=_svdvals)),
    "svd-full-square": (np.linalg.svd, spread(values=_svdvals)),
    "svd-values": (lambda a: np.linalg.svd(a, compute_uv=False),
                   spread(square=False, values=_svdvals)),
    "qr": (np.linalg.qr, dominant(square=False)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@FEW
@given(data=st.data())
def test_numpy_function_values_gradients_and_second_derivatives(name, data):
    f, inputs = FUNCTIONS[name]
    x = data.draw(inputs, label="x")
    check_function(f, x, np.random.default_rng(data.draw(SEEDS, label="seed")))


# -- by hand ---------------------------------------------------------------------
def grad_of(f, x):
    t = gc.tensor(np.asarray(x, dtype=float), requires_grad=True)
    f(t).backward()
    return t.grad.numpy()


def test_slogdet_gradient_is_the_inverse_transposed_and_the_sign_has_none():
    a = np.array([[0.0, 2.0], [1.0, 3.0]])  # det -2
    t = gc.tensor(a, requires_grad=True)
    sign, logabsdet = np.linalg.slogdet(t)
    assert sign.item() == -1.0 and logabsdet.item() == np.log(2.0)
    logabsdet.backward()
    # inv(A) = [[-3, 2], [1, 0]] / 2 by hand; the gradient is its transpose
    np.testing.assert_allclose(t.grad.numpy(), [[-1.5, 0.5], [1.0, 0.0]], rtol=1e-15)
    np.testing.assert_array_equal(grad_of(lambda x: np.linalg.slogdet(x).sign, a),
                                  np.zeros((2, 2)))


def test_slogdet_of_a_stack_gives_each_matrix_its_inverse():
    a = np.stack([np.diag([2.0, 4.0]), np.diag([-1.0, 5.0])])
    g = grad_of(lambda x: gc.sum(np.linalg.slogdet(x).logabsdet), a)
    np.testing.assert_allclose(g, np.stack([np.diag([0.5, 0.25]), np.diag([-1.0, 0.2])]))


def test_cholesky_by_hand_on_the_triangle_numpy_reads():
    # A = [[4, 2], [2, 5]]: L = [[2, 0], [1, 2]]; L21 = a21 / sqrt(a11), so
    # dL21/da21 = 1/2, dL21/da11 = -a21 / (2 a11^1.5) = -1/8, nothing from a12.
    a = np.array([[4.0, 2.0], [2.0, 5.0]])
    t = gc.tensor(a, requires_grad=True)
    low = np.linalg.cholesky(t)
    np.testing.assert_array_equal(low.detach().numpy(), [[2.0, 0.0], [1.0, 2.0]])
    low[1, 0].backward()
    np.testing.assert_allclose(t.grad.numpy(), [[-0.125, 0.0], [0.5, 0.0]], rtol=1e-14)
    # upper=True reads the upper triangle: U12 = a12 / sqrt(a11)
    g = grad_of(lambda x: np.linalg.cholesky(x, upper=True)[0, 1], a)
    np.testing.assert_allclose(g, [[-0.125, 0.5], [0.0, 0.0]], rtol=1e-14)


@pytest.mark.parametrize("n", [-2, -1, 0, 1, 2, 3, 7])
def test_matrix_power_trace_gradient_is_n_a_to_the_n_minus_1_transposed(n):
    a = np.array([[1.0, 0.5], [-0.25, 2.0]])
    g = grad_of(lambda x: gc.trace(np.linalg.matrix_power(x, n)), a)
    # d tr(A^n) = n tr(A^(n-1) dA), also for n < 0 (and 0 for n = 0)
    want = n * np.linalg.matrix_power(a, n - 1).T if n else np.zeros((2, 2))
    np.testing.assert_allclose(g, want, rtol=1e-13, atol=1e-15)


def test_matrix_power_refuses_a_non_integer_exponent():
    with pytest.raises(TypeError, match="integer"):
        np.linalg.matrix_power(gc.tensor(np.eye(2)), 1.5)


def test_pinv_of_a_column_by_hand():
    # pinv(a) = a^T / |a|^2 for a column a: d sum(w pinv(a)) / da =
    # w / |a|^2 - 2 (w . a) a / |a|^4
    a = np.array([[3.0], [4.0]])
    w = np.array([[1.0, -2.0]])
    g = grad_of(lambda x: gc.sum(np.linalg.pinv(x) * gc.tensor(w)), a)
    want = w.T / 25 - 2 * (w @ a).item() * a / 625
    np.testing.assert_allclose(g, want, rtol=1e-13)


def test_eigh_by_hand_at_a_diagonal_matrix():
    a = np.diag([1.0, 3.0, 6.0])
    v = np.linalg.eigh(gc.tensor(a)).eigenvectors
    np.testing.assert_array_equal(v.numpy(), np.eye(3))  # the signs assumed below
    # dw_k = v_k^T dA v_k: the gradient of sum(c * w) is diag(c)
    c = np.array([1.0, -2.0, 0.5])
    g = grad_of(lambda x: gc.sum(np.linalg.eigh(x).eigenvalues * gc.tensor(c)), a)
    np.testing.assert_allclose(g, np.diag(c), atol=1e-15)
    # dV = V (F * (V^T dA V)), F_ij = 1 / (w_j - w_i): dV[1, 0] = dA_10 / (1 - 3);
    # numpy reads a10 (the lower triangle) and not a01
    g = grad_of(lambda x: np.linalg.eigh(x).eigenvectors[1, 0], a)
    want = np.zeros((3, 3))
    want[1, 0] = -0.5
    np.testing.assert_allclose(g, want, atol=1e-15)


def test_svd_sum_of_singular_values_has_gradient_u_vh():
    # d sum(s) = tr(U^T dA V): the gradient is U Vh (any signs: U Vh is invariant)
    a = np.array([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0]])
    u, _, vh = np.linalg.svd(a, full_matrices=False)
    for kw in ({"full_matrices": False}, {"compute_uv": False}, {}):
        def f(x, kw=kw):
            r = np.linalg.svd(x, **kw)
            return gc.sum(r if kw.get("compute_uv") is False else r.S)

        np.testing.assert_allclose(grad_of(f, a), u @ vh, rtol=1e-13, atol=1e-15)


def test_qr_of_a_column_by_hand():
    # a column a: R = +-|a| (numpy's sign), so dR/da = R a / |a|^2
    a = np.array([[3.0], [4.0]])
    r = np.linalg.qr(a)[1].item()
    g = grad_of(lambda x: np.linalg.qr(x).R[0, 0], a)
    np.testing.assert_allclose(g, r * a / 25, rtol=1e-14)


def test_results_are_numpys_named_tuples_field_for_field():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    t = gc.tensor(a)
    for fn, fields in ((np.linalg.slogdet, ("sign", "logabsdet")),
                       (np.linalg.eigh, ("eigenvalues", "eigenvectors")),
                       (np.linalg.svd, ("U", "S", "Vh")), (np.linalg.qr, ("Q", "R"))):
        got, want = fn(t), fn(a)
        assert got._fields == want._fields == fields
        for field in fields:
            np.testing.assert_array_equal(getattr(got, field).numpy(),
                                          getattr(want, field))


# -- where no gradient exists: a clean error, never inf or nan ----------------------
def raises(f, x, match):
    t = gc.tensor(np.asarray(x, dtype=float), requires_grad=True)
    with pytest.raises(EvaluationError, match=match):
        f(t).backward()


def test_eigh_at_repeated_eigenvalues():
    a = np.diag([2.0, 2.0, 5.0])
    raises(lambda x: gc.sum(np.linalg.eigh(x).eigenvectors), a, "repeated eigenvalues")
    # the eigenvalues alone are fine there: d sum(w) = d trace(A)
    np.testing.assert_allclose(grad_of(lambda x: gc.sum(np.linalg.eigh(x)[0]), a),
                               np.eye(3), atol=1e-15)


def test_svd_at_repeated_and_zero_singular_values():
    raises(lambda x: gc.sum(np.linalg.svd(x).U), np.eye(3), "repeated singular values")
    tall = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    raises(lambda x: gc.sum(np.linalg.svd(x, full_matrices=False).U), tall, "zero singular")
    np.testing.assert_allclose(
        grad_of(lambda x: gc.sum(np.linalg.svd(x, compute_uv=False)), np.eye(3)),
        np.eye(3), atol=1e-15)
    raises(lambda x: gc.sum(np.linalg.svd(x).U), np.arange(6.0).reshape(3, 2) + np.eye(3, 2),
           "full_matrices")


def test_pinv_qr_slogdet_at_rank_deficient_matrices():
    ones = np.ones((2, 2))
    raises(lambda x: gc.sum(np.linalg.pinv(x)), ones, "rank-deficient")
    raises(lambda x: gc.sum(np.linalg.qr(x).Q), ones, "rank-deficient")
    raises(lambda x: np.linalg.slogdet(x).logabsdet, ones, "singular")
    with gc.no_grad():  # the values themselves are numpy's
        np.testing.assert_array_equal(np.linalg.pinv(gc.tensor(ones)).numpy(),
                                      np.linalg.pinv(ones))


def test_qr_at_rounded_rank_deficient_matrices_raises():
    # Rank 1, but rounding leaves R[1, 1] ~ 1e-16 instead of 0: the rule used to
    # divide by it, giving [-1.642, 1, -1.179, 0.5] for the square one (central
    # differences there: [0.358, 0, -0.179, 0], as Q jumps) and ~1e13 entries
    # for the tall one, instead of raising as pinv does.
    square = np.array([[1.0, 2.0], [2.0, 4.0]])
    tall = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    assert abs(np.linalg.qr(square)[1][1, 1]) < 1e-14  # not exactly zero
    for a in (square, tall):
        raises(lambda x: gc.sum(np.linalg.qr(x).Q), a, "rank-deficient")
        raises(lambda x: gc.sum(np.linalg.qr(x).R), a, "rank-deficient")
    x0, v = gc.tensor(square.ravel()), gc.tensor([1.0, 0.0, 0.0, 0.0])

    def f(t):
        return gc.sum(np.linalg.qr(t.reshape(2, 2)).Q)

    for second in (lambda: gc.jvp(f, (x0,), (v,)), lambda: gc.hessian(f)(x0),
                   lambda: gc.hvp(f, x0, v), lambda: gc.jvp(gc.grad(f), (x0,), (v,))):
        with pytest.raises(EvaluationError, match="rank-deficient"):
            second()
    # a stack: the cotangent reaching only the full-rank matrix still gets its
    # gradient, equal to that matrix's alone
    full = np.array([[1.0, 2.0], [3.0, 5.0]])
    stack = np.stack([square, full])
    g = grad_of(lambda x: gc.sum(np.linalg.qr(x).Q[1]), stack)
    np.testing.assert_array_equal(g[0], 0.0)
    np.testing.assert_allclose(g[1], _fd_grad(lambda y: np.linalg.qr(y)[0], full,
                                              [np.ones((2, 2))]), atol=1e-8)


def test_wide_qr_and_other_modes_are_refused():
    with pytest.raises(ValueError, match="m >= n"):
        np.linalg.qr(gc.tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="reduced"):
        np.linalg.qr(gc.tensor(np.eye(3) + 1), mode="r")


def test_a_stack_with_a_nan_matrix_keeps_the_others():
    a = np.stack([np.eye(2) * 2, np.eye(2) * 3])
    a[0, 1, 0] = np.nan
    with gc.no_grad(), np.errstate(all="ignore"):
        s = np.linalg.svd(gc.tensor(a), compute_uv=False).numpy()
    assert np.all(np.isnan(s[0]))
    np.testing.assert_array_equal(s[1], [3.0, 3.0])


def test_the_command_line_reports_a_missing_gradient_as_exit_3():
    out, err = io.StringIO(), io.StringIO()
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          pytest.raises(SystemExit) as exc):
        main(["eval", "sum(pinv(A))", "--A", "1,1;1,1"])
    assert exc.value.code == 3 and out.getvalue() == ""
    assert err.getvalue().startswith("error: pinv: no gradient at a rank-deficient")
    assert "Traceback" not in err.getvalue()


# -- np.sort: the gradient through the permutation ---------------------------------
def test_sort_sends_each_gradient_back_to_where_the_value_came_from():
    x = np.array([3.0, 1.0, 2.0, 1.0])
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    # sorted: x1, x3 (a tie keeps its order), x2, x0
    g = grad_of(lambda t: gc.sum(np.sort(t) * gc.tensor(w)), x)
    np.testing.assert_array_equal(g, [1000.0, 1.0, 100.0, 10.0])
    assert gc.OPS["sort"].kink_at([x], {}) == gc.OPS["sort"].kink
    assert gc.OPS["sort"].kink_at([np.array([2.0, 1.0])], {}) is None
    a = np.array([[3.0, -1.0], [0.0, 5.0]])
    w2 = np.array([[1.0, 2.0], [3.0, 4.0]])
    # axis=0: column 0 becomes (0, 3), column 1 stays (-1, 5)
    g = grad_of(lambda t: gc.sum(np.sort(t, axis=0) * gc.tensor(w2)), a)
    np.testing.assert_array_equal(g, [[3.0, 2.0], [1.0, 4.0]])
    # axis=None: the flat order (-1, 0, 3, 5)
    g = grad_of(lambda t: gc.sum(np.sort(t, axis=None) * gc.tensor(w)), a)
    np.testing.assert_array_equal(g, [[100.0, 1.0], [10.0, 1000.0]])


# -- numpy.linalg's array-API spellings: numpy.linalg's axes, the table's maths ------
LINALG_SPELLINGS = {
    "matmul": (lambda a: np.linalg.matmul(a, np.swapaxes(a, -1, -2)), (2, 3, 4)),
    "trace": (lambda a: np.linalg.trace(a, offset=1), (2, 3, 4)),
    "diagonal": (lambda a: np.linalg.diagonal(a, offset=-1), (2, 4, 3)),
    "outer": (lambda a: np.linalg.outer(a[:3], a[3:] ** 2), (5,)),
    "cross": (lambda a: np.linalg.cross(a[0], a[1] ** 2), (2, 4, 3)),
}


@pytest.mark.parametrize("name", list(LINALG_SPELLINGS))
def test_numpy_linalg_spellings_differentiate(name):
    # Before: "numpy function 'matmul' has no gradient rule" for np.linalg.matmul.
    f, shape = LINALG_SPELLINGS[name]
    rng = np.random.default_rng(7)
    check_function(f, rng.standard_normal(shape), rng)


def test_numpy_linalg_outer_refuses_what_numpy_refuses():
    a = gc.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="1-dimensional"):
        np.linalg.outer(a, a)
    with pytest.raises(ValueError):
        np.linalg.outer(np.ones((2, 2)), np.ones((2, 2)))  # numpy's own rule


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_norm_values_are_numpys_bit_for_bit(data):
    # A tester found norm(x) one ulp off numpy's in a quarter of inputs: numpy
    # takes the square root of a dot product where no axis is given.
    nd = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).normal(size=shape)
    x = x.astype(dtype)
    orders = [None] + ([2, 1, np.inf, 3] if nd == 1 else []) + (["fro", 1, -np.inf]
                                                                  if nd == 2 else [])
    for ord_ in orders:
        want = np.linalg.norm(x, ord_)
        got = np.linalg.norm(gc.tensor(x), ord_).numpy()
        assert got.dtype == want.dtype and np.array_equal(got, want), ord_
