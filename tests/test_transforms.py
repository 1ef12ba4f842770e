"""grad, value_and_grad, vjp, jacobian, hessian, hvp against independent truth.

Truth is hand-derived (the matrix of a linear map, ``A + A.T`` for a quadratic
form, closed-form Hessians) or central finite differences of the function's
*values* (no derivative code involved). The batched walk is also compared with
one ordinary backward pass per row (``method="loop"``), op by op over
``gc.OPS``: a consistency check on top of the finite differences, not instead.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcli as gc
from gradcli import OPS, Tensor
from gradcli.transforms import _rows, grad, hessian, hvp, jacobian, value_and_grad, vjp

F64 = np.float64


# -- finite differences of values ------------------------------------------------------
def values(f, *args):
    """f at float64 arrays, as a float64 array, recording nothing."""
    with gc.no_grad():
        out = f(*[Tensor(np.asarray(a, dtype=F64)) for a in args])
    return np.asarray(out.data if isinstance(out, Tensor) else out, dtype=F64)


def flat_call(f, shapes):
    """f of one flat vector holding all arguments (for finite differences)."""
    sizes = [math.prod(s) for s in shapes]
    cuts = np.cumsum(sizes)[:-1]

    def g(v):
        return values(f, *[p.reshape(s) for p, s in zip(np.split(v, cuts), shapes)])

    return g


def fd_jacobian(f, args, h=1e-6):
    """(out.size, n) by central differences, n = all arguments' elements."""
    shapes = [np.shape(a) for a in args]
    g = flat_call(f, shapes)
    v = np.concatenate([np.ravel(a) for a in args]).astype(F64)
    cols = []
    for j in range(v.size):
        e = np.zeros_like(v)
        e[j] = h * max(1.0, abs(v[j]))
        cols.append(np.ravel(g(v + e) - g(v - e)) / (2 * e[j]))
    return np.stack(cols, axis=1)


def fd_hessian(f, args, h=1e-4):
    """(n, n) from values only: the four-point central second difference."""
    shapes = [np.shape(a) for a in args]
    g = flat_call(f, shapes)
    v = np.concatenate([np.ravel(a) for a in args]).astype(F64)
    n = v.size
    H = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = h
            ej[j] = h
            H[i, j] = H[j, i] = (
                g(v + ei + ej) - g(v + ei - ej) - g(v - ei + ej) + g(v - ei - ej)
            ) / (4 * h * h)
    return H


def as_matrix(blocks, out_shape, args):
    """Jacobian blocks (one per argument) side by side: (out.size, n)."""
    m = math.prod(out_shape)
    return np.concatenate(
        [np.asarray(b.numpy()).reshape(m, np.size(a)) for b, a in zip(blocks, args)],
        axis=1,
    )


def as_hessian(table, args):
    """Nested Hessian blocks as one (n, n) matrix."""
    rows = []
    for row, ai in zip(table, args):
        rows.append(
            np.concatenate(
                [
                    b.numpy().reshape(np.size(ai), np.size(aj))
                    for b, aj in zip(row, args)
                ],
                axis=1,
            )
        )
    return np.concatenate(rows, axis=0)


def close(actual, expected, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=F64), expected, rtol=rtol, atol=atol
    )


vectors = hnp.arrays(
    F64,
    st.integers(1, 6),
    elements=st.floats(
        -2, 2, allow_nan=False, allow_infinity=False, allow_subnormal=False
    ),
)


square_and_vector = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        hnp.arrays(F64, (n, n), elements=st.floats(-3, 3, allow_subnormal=False)),
        hnp.arrays(F64, n, elements=st.floats(-3, 3, allow_subnormal=False)),
    )
)


# -- closed forms ----------------------------------------------------------------------
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**32 - 1))
@settings(max_examples=25)
def test_jacobian_of_a_linear_map_is_its_matrix(m, n, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    x = rng.standard_normal(n)
    for method in ("auto", "rows", "columns", "loop"):
        J = jacobian(lambda x: A @ x, method=method)(x)
        assert J.shape == (m, n)
        close(J.numpy(), A, rtol=1e-13, atol=1e-13)


@given(square_and_vector)
@settings(max_examples=25)
def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose(case):
    A, x = case
    for method in ("auto", "loop"):
        H = hessian(lambda x: x @ A @ x, method=method)(x)
        assert H.shape == (len(x), len(x))
        close(H.numpy(), A + A.T, rtol=1e-12, atol=1e-12)


def quartic(x):
    return gc.sum(x**4) + gc.dot(x, x) ** 2


def quartic_hessian(x):
    n = len(x)
    return np.diag(12 * x**2) + 4 * (np.dot(x, x) * np.eye(n) + 2 * np.outer(x, x))


@given(vectors)
@settings(max_examples=25)
def test_hessian_of_the_quartic_matches_its_closed_form(x):
    expected = quartic_hessian(x)
    for method in ("auto", "loop"):
        close(
            hessian(quartic, method=method)(x).numpy(), expected, rtol=1e-12, atol=1e-12
        )
    # atol: rounding in four values of f up to ~700, over h**2 = 1e-8.
    close(hessian(quartic)(x).numpy(), fd_hessian(quartic, [x]), rtol=1e-5, atol=1e-4)


def test_hessian_of_the_quartic_at_n_100():
    x = np.random.default_rng(5).standard_normal(100)
    close(hessian(quartic)(x).numpy(), quartic_hessian(x), rtol=1e-12, atol=1e-10)


@given(vectors, st.integers(0, 2**32 - 1))
@settings(max_examples=25)
def test_hvp_is_the_hessian_times_v(x, seed):
    v = np.random.default_rng(seed).standard_normal(x.shape)
    close(hvp(quartic, x, v).numpy(), quartic_hessian(x) @ v, rtol=1e-12, atol=1e-12)


def test_hvp_of_a_quadratic_form():
    rng = np.random.default_rng(3)
    A, x, v = (
        rng.standard_normal((4, 4)),
        rng.standard_normal(4),
        rng.standard_normal(4),
    )
    close(hvp(lambda x: x @ A @ x, x, v).numpy(), (A + A.T) @ v, rtol=1e-13)


def test_a_tuple_of_tensors_is_refused_not_stacked():
    # torch.autograd.functional.hvp's form hvp(f, (x,), (v,)) used to be read as
    # one array of shape (1, 2): H v came back as [[6, 0]] instead of refusing.
    x, v = gc.tensor([1.0, 2.0]), gc.tensor([1.0, 0.0])

    def cube(t):
        return gc.sum(t ** 3)

    for call in (lambda: hvp(cube, (x,), (v,)), lambda: hvp(cube, x, [v]),
                 lambda: gc.grad(cube)((x,)), lambda: gc.jacobian(cube)([x])):
        with pytest.raises(TypeError, match="of Tensors; pass one Tensor"):
            call()
    # one Tensor, or a list of numbers, is one input: H = diag(6 x) by hand
    close(hvp(cube, x, v).numpy(), [6.0, 0.0], rtol=0)
    close(hvp(cube, [1.0, 2.0], [0.0, 1.0]).numpy(), [0.0, 12.0], rtol=0)


def tanh_map(A):
    return lambda x: gc.tanh(A @ x) * x


def tanh_map_jacobian(A, x):
    t = np.tanh(A @ x)
    return (1 - t * t)[:, None] * A * x[:, None] + np.diag(t)


@given(st.integers(1, 8), st.integers(0, 2**32 - 1))
@settings(max_examples=20)
def test_jacobian_of_a_nonlinear_map(n, seed):
    rng = np.random.default_rng(seed)
    A, x = rng.standard_normal((n, n)), rng.standard_normal(n)
    expected = tanh_map_jacobian(A, x)
    for method in ("auto", "rows", "columns", "loop"):
        close(
            jacobian(tanh_map(A), method=method)(x).numpy(),
            expected,
            rtol=1e-12,
            atol=1e-12,
        )
    close(
        jacobian(tanh_map(A))(x).numpy(),
        fd_jacobian(tanh_map(A), [x]),
        rtol=1e-6,
        atol=1e-8,
    )


def test_jacobian_100_to_100_matches_its_closed_form():
    rng = np.random.default_rng(0)
    A, x = rng.standard_normal((100, 100)) / 10, rng.standard_normal(100)
    close(
        jacobian(tanh_map(A))(x).numpy(),
        tanh_map_jacobian(A, x),
        rtol=1e-12,
        atol=1e-12,
    )


def test_auto_takes_columns_for_few_inputs_and_many_outputs():
    t = np.linspace(0.0, 2.0, 300)

    def curve(p):
        return gc.sin(t * p[0]) * p[1]

    p = np.array([1.3, -0.7])
    expected = np.stack([t * np.cos(t * p[0]) * p[1], np.sin(t * p[0])], axis=1)
    for method in ("auto", "columns", "rows", "loop"):
        close(
            jacobian(curve, method=method)(p).numpy(), expected, rtol=1e-12, atol=1e-12
        )


def test_jacobian_shape_is_output_shape_plus_input_shape():
    x = np.arange(6.0).reshape(2, 3)
    J = jacobian(lambda x: gc.stack([gc.sum(x, axis=0), gc.max(x, axis=0)]))(x)
    assert J.shape == (2, 3, 2, 3)
    expected = np.zeros((2, 3, 2, 3))
    for j in range(3):
        expected[0, j, :, j] = 1.0  # d sum over rows
        expected[1, j, 1, j] = 1.0  # the max of each column is its second row
    close(J.numpy(), expected)


# -- gradients of functions with control flow ------------------------------------------
def halve_until_small(x):
    while gc.norm(x) > 1:
        x = x / 2
    return gc.sum(x**2)


def off_a_boundary(v):
    """The loop's count of halvings is constant near v (norm not at a power of 2)."""
    r = np.linalg.norm(v)
    return r == 0 or abs(np.log2(r) - round(np.log2(r))) > 1e-9


@given(vectors.filter(off_a_boundary))
@settings(max_examples=30)
def test_grad_through_a_while_loop(x):
    # k halvings (constant near x): f = |x|^2 / 4^k, so grad f = 2 x / 4^k.
    k = 0
    while np.linalg.norm(x) / 2**k > 1:
        k += 1
    close(grad(halve_until_small)(x).numpy(), 2 * x / 4**k, rtol=1e-13, atol=1e-15)


def test_grad_through_a_while_loop_against_finite_differences():
    x = np.array([3.0, -1.0, 2.0])  # norm 3.74: two halvings, far from a boundary
    close(
        grad(halve_until_small)(x).numpy(),
        fd_jacobian(halve_until_small, [x])[0],
        rtol=1e-6,
    )


def branchy(x):
    if gc.sum(x) > 0:
        return gc.sum(x**2)
    return gc.sum(gc.sin(x))


@given(vectors.filter(lambda v: abs(v.sum()) > 1e-6))
@settings(max_examples=30)
def test_grad_through_an_if(x):
    expected = 2 * x if x.sum() > 0 else np.cos(x)
    close(grad(branchy)(x).numpy(), expected, rtol=1e-13, atol=1e-15)


def test_numpy_functions_methods_and_loops_inside_f():
    def f(x):
        total = 0.0
        for i in range(len(x)):
            total = total + np.sin(x[i]) * x.sum()
        return total + np.exp(x).mean()

    x = np.array([0.3, -1.2, 0.8])
    close(grad(f)(x).numpy(), fd_jacobian(f, [x])[0], rtol=1e-6)
    close(hessian(f)(x).numpy(), fd_hessian(f, [x]), rtol=1e-5, atol=1e-6)


def test_hessian_against_finite_differences():
    def f(x):
        return gc.sum(gc.sin(x) * gc.exp(x[::-1])) + gc.logsumexp(x) * gc.norm(x)

    x = np.array([0.5, -0.3, 1.1, 0.2])
    close(hessian(f)(x).numpy(), fd_hessian(f, [x]), rtol=1e-5, atol=1e-6)


# -- vjp, value_and_grad, argnums ------------------------------------------------------
def test_vjp_is_v_transpose_j_and_can_be_called_again():
    rng = np.random.default_rng(1)
    A, x = rng.standard_normal((3, 3)), rng.standard_normal(3)
    y, pullback = vjp(tanh_map(A), x)
    close(y.numpy(), values(tanh_map(A), x))
    J = tanh_map_jacobian(A, x)
    for _ in range(2):
        v = rng.standard_normal(3)
        (gx,) = pullback(v)
        close(gx.numpy(), v @ J, rtol=1e-13)


def test_vjp_of_several_arguments():
    a, b = np.array([1.0, 2.0]), np.array([[3.0], [4.0]])
    _, pullback = vjp(lambda a, b: a * b, a, b)  # (2, 2)
    v = np.array([[1.0, 10.0], [100.0, 1000.0]])
    ga, gb = pullback(v)
    close(ga.numpy(), (v * b).sum(axis=0))
    close(gb.numpy(), (v * a).sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="cotangent has shape"):
        pullback(np.ones(3))


@given(vectors)
@settings(max_examples=20)
def test_value_and_grad_value_equals_f(x):
    value, g = value_and_grad(branchy)(x)
    close(value.numpy(), values(branchy, x), rtol=1e-15)
    close(g.numpy(), grad(branchy)(x).numpy(), rtol=0, atol=0)


def two_args(x, c, y):
    return gc.sum(x**2 * y) + c * gc.sum(y)


def test_argnums_tuple_gives_a_tuple():
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    gx, gy = grad(two_args, argnums=(0, 2))(x, 5.0, y)
    close(gx.numpy(), 2 * x * y)
    close(gy.numpy(), x**2 + 5.0)
    (gy_only,) = grad(two_args, argnums=(2,))(x, 5.0, y)
    close(gy_only.numpy(), x**2 + 5.0)
    close(grad(two_args, argnums=-1)(x, 5.0, y).numpy(), x**2 + 5.0)
    close(grad(two_args, argnums=1)(x, 5.0, y).numpy(), y.sum())


def test_hessian_blocks_for_an_argnums_tuple():
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    H = hessian(two_args, argnums=(0, 2))(x, 5.0, y)
    assert [[b.shape for b in row] for row in H] == [[(2, 2)] * 2] * 2
    close(H[0][0].numpy(), np.diag(2 * y))
    close(H[0][1].numpy(), np.diag(2 * x))
    close(H[1][0].numpy(), np.diag(2 * x))
    close(H[1][1].numpy(), np.zeros((2, 2)))
    loop = hessian(two_args, argnums=(0, 2), method="loop")(x, 5.0, y)
    close(as_hessian(H, [x, y]), as_hessian(loop, [x, y]), rtol=0, atol=0)


def test_jacobian_blocks_for_an_argnums_tuple():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([[0.5], [-2.0]])

    def f(a, b):
        return gc.exp(a) * b  # (2, 3)

    for method in ("auto", "rows", "columns", "loop"):
        Ja, Jb = jacobian(f, argnums=(0, 1), method=method)(a, b)
        assert Ja.shape == (2, 3, 3) and Jb.shape == (2, 3, 2, 1)
        close(as_matrix([Ja, Jb], (2, 3), [a, b]), fd_jacobian(f, [a, b]), rtol=1e-6)


def test_kwargs_pass_through_undifferentiated():
    def f(x, *, scale):
        return scale * gc.sum(x**2)

    close(grad(f)(np.array([1.0, 2.0]), scale=3.0).numpy(), [6.0, 12.0])


# -- results: dtype, detached, zeros, identity -----------------------------------------
def test_dtypes_float64_unless_float32_given():
    assert grad(lambda x: gc.sum(x**2))([1, 2]).dtype == np.float64
    assert (
        grad(lambda x: gc.sum(x**2))(np.array([1.0], dtype=np.float32)).dtype
        == np.float32
    )
    x32 = gc.tensor([0.5, -1.0])  # the default float dtype: float32
    H = hessian(quartic)(x32)
    assert H.dtype == np.float32
    close(H.numpy(), quartic_hessian(np.array([0.5, -1.0])), rtol=1e-5)
    J = jacobian(lambda x: x * 2)(3)
    assert J.dtype == np.float64 and J.shape == ()
    close(J.numpy(), 2.0)


def test_results_are_detached():
    x = np.array([1.0, 2.0])
    for result in (
        grad(quartic)(x),
        jacobian(gc.exp)(x),
        hessian(quartic)(x),
        hvp(quartic, x, x),
        value_and_grad(quartic)(x)[0],
    ):
        assert isinstance(result, Tensor)
        assert not result.requires_grad and result.grad_fn is None


def test_functions_that_ignore_their_input_have_zero_derivatives():
    x = np.array([1.0, 2.0, 3.0])
    close(grad(lambda x: gc.sum(gc.ones(3)))(x).numpy(), np.zeros(3))
    close(grad(lambda x: 7.0)(x).numpy(), np.zeros(3))
    close(jacobian(lambda x: np.ones(2))(x).numpy(), np.zeros((2, 3)))
    close(hessian(lambda x: gc.sum(3 * x))(x).numpy(), np.zeros((3, 3)))
    close(hvp(lambda x: gc.sum(x), x, x).numpy(), np.zeros(3))
    _, gy = grad(lambda x, y: gc.sum(x), argnums=(0, 1))(x, 2.0)
    close(gy.numpy(), 0.0)


def test_jacobian_of_the_identity_and_of_plus_one():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    for f in (lambda x: x, lambda x: x + 1):
        for method in ("auto", "rows", "columns", "loop"):
            J = jacobian(f, method=method)(x)
            close(J.numpy(), np.eye(4).reshape(2, 2, 2, 2))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_guarded_zero_cotangents_do_not_leak_nan():
    # sqrt'(0) is inf, but where() sends that branch a zero cotangent at x == 0.
    def f(x):
        return gc.where(x > 0, gc.sqrt(gc.abs(x)), x)

    x = np.array([0.0, 1.0, 4.0])
    for method in ("rows", "columns", "loop"):
        close(jacobian(f, method=method)(x).numpy(), np.diag([1.0, 0.5, 0.25]))
    for method in ("auto", "loop"):
        close(
            hessian(lambda x: gc.sum(f(x)), method=method)(x).numpy(),
            np.diag([0.0, -0.25, -1 / 32]),
        )


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nan_in_the_branch_not_taken_does_not_leak():
    # sqrt(-1) is nan, so sin's local derivative there is nan too: the zero
    # cotangent must stay zero through elementwise rules as well.
    def f(x):
        return gc.where(x > 0, gc.sin(gc.sqrt(x)), x)

    x = np.array([-1.0, 4.0])
    d = np.cos(2.0) / 4  # d/dx sin(sqrt(x)) at 4
    h = -np.sin(2.0) / 16 - np.cos(2.0) / 32
    for method in ("rows", "columns", "loop"):
        close(jacobian(f, method=method)(x).numpy(), np.diag([1.0, d]))
    for method in ("auto", "loop"):
        close(
            hessian(lambda x: gc.sum(f(x)), method=method)(x).numpy(), np.diag([0, h])
        )


def test_batches_split_into_chunks_give_the_same_rows():
    v = np.linspace(-1, 1, 7)
    x = gc.tensor(v, dtype=gc.float64, requires_grad=True)
    y = gc.outer(gc.sin(x), x)
    # d(sin(x_i) x_j)/dx_k = cos(x_i) x_j [i == k] + sin(x_i) [j == k], by hand
    eye = np.eye(7)
    truth = (np.cos(v)[:, None, None] * v[None, :, None] * eye[:, None, :]
             + np.sin(v)[:, None, None] * eye[None, :, :]).reshape(49, 7)
    whole = _rows(y, [x])[0]
    parts = _rows(y, [x], max_elements=10)[0]
    assert whole.shape == (49, 7)
    close(whole, truth, rtol=1e-15, atol=1e-15)
    close(parts, truth, rtol=1e-15, atol=1e-15)


# -- the caller's tensors and grad mode ------------------------------------------------
def test_caller_tensors_keep_their_grad_and_their_graph():
    W0 = gc.tensor(
        np.array([[1.0, 2.0], [3.0, 4.0]]), dtype=gc.float64, requires_grad=True
    )
    W = W0 * 2  # non-leaf, with a graph the caller still needs
    x = gc.tensor([0.5, -0.5], dtype=gc.float64, requires_grad=True)
    x.grad = gc.tensor([7.0, 7.0], dtype=gc.float64)

    def f(x):
        return gc.sum(gc.tanh(W @ x) * W0[0])

    for transform in (
        grad(f),
        jacobian(f),
        hessian(f),
        value_and_grad(f),
        lambda x: hvp(f, x, x),
        lambda x: vjp(f, x)[1](1.0),
    ):
        transform(x)
    assert W0.grad is None
    close(x.grad.numpy(), [7.0, 7.0])
    assert x.grad_fn is None and x.requires_grad
    gc.sum(W).backward()  # the caller's graph was not freed
    close(W0.grad.numpy(), np.full((2, 2), 2.0))


def test_works_under_no_grad():
    x = np.array([1.0, -2.0])
    with gc.no_grad():
        close(grad(quartic)(x).numpy(), 4 * x**3 + 4 * np.dot(x, x) * x)
        close(hessian(quartic)(x).numpy(), quartic_hessian(x))
        close(jacobian(gc.exp)(x).numpy(), np.diag(np.exp(x)))
        assert not gc.is_grad_enabled()


# -- errors ----------------------------------------------------------------------------
def test_non_scalar_outputs_are_refused_with_a_hint():
    x = np.array([1.0, 2.0])
    for transform in (grad, value_and_grad, hessian):
        with pytest.raises(ValueError, match=r"scalar output.*shape \(2,\).*jacobian"):
            transform(lambda x: x * 2)(x)
    with pytest.raises(ValueError, match="scalar output"):
        hvp(lambda x: x * 2, x, x)


def test_nested_transforms_differentiate_through_the_inner_one():
    # Was: refused with NotImplementedError ("transforms do not nest").
    def outer(x):
        return grad(lambda y: gc.sum(y**3))(x)[0]  # 3 x0^2

    close(grad(outer)(np.array([1.0, 2.0])).numpy(), [6.0, 0.0])
    # On a constant the inner transform is a constant.
    c = np.array([1.0, 2.0])
    close(grad(lambda x: gc.sum(x * grad(lambda y: gc.sum(y**2))(c)))(c).numpy(), 2 * c)


def test_auto_falls_back_to_rows_where_columns_come_out_non_finite(monkeypatch):
    # Reverse over reverse needs every rule to be differentiable a second time
    # (at every point); if that fails somewhere, auto answers with the rows.
    from gradcli import transforms

    def broken(out, leaves, **_):
        return [np.full((out.size,) + x.shape, np.nan) for x in leaves]

    monkeypatch.setattr(transforms, "_columns", broken)
    t = np.linspace(0.0, 1.0, 70)
    p = np.array([0.5, 2.0])
    J = jacobian(lambda p: gc.exp(t * p[0]) * p[1])(p).numpy()
    close(J, np.stack([t * np.exp(t * p[0]) * p[1], np.exp(t * p[0])], axis=1))
    with np.errstate(all="ignore"):
        assert np.isnan(jacobian(lambda p: p[0] * t, method="columns")(p).numpy()).all()


def test_bad_arguments_are_refused():
    f = lambda x: gc.sum(x)
    with pytest.raises(ValueError, match="out of range"):
        grad(f, argnums=1)(1.0)
    with pytest.raises(ValueError, match="twice"):
        grad(lambda x, y: x * y, argnums=(0, 0))(1.0, 2.0)
    with pytest.raises(TypeError, match="argnums must be ints"):
        grad(f, argnums=(0.5,))(1.0)
    with pytest.raises(TypeError, match="cannot differentiate"):
        grad(f)("abc")
    with pytest.raises(TypeError, match="must return a Tensor"):
        grad(lambda x: (x, x))(1.0)
    with pytest.raises(ValueError, match="method"):
        jacobian(f, method="forward")
    with pytest.raises(ValueError, match="v has shape"):
        hvp(f, [1.0, 2.0], [1.0])


# -- the batched walk, op by op --------------------------------------------------------
def _unit(rng, shape, lo, hi):
    return rng.uniform(lo, hi, shape)


def _matrix(rng, n=3):
    return np.eye(n) + 0.3 * rng.standard_normal((n, n))


I34 = np.array([0, 2, 2])
SPECIAL = {
    # name: list of (args builder rng -> list of arrays, params, sequence op?)
    "sum": [
        ((2, 3), {}),
        ((2, 3), {"axis": 0}),
        ((2, 3), {"axis": 1, "keepdims": True}),
        ((2, 3, 2), {"axis": (0, 2)}),
    ],
    "mean": [((2, 3), {}), ((2, 3), {"axis": -1})],
    "prod": [((2, 3), {}), ((2, 3), {"axis": 0, "keepdims": True})],
    "max": [((2, 3), {}), ((2, 3), {"axis": 1})],
    "min": [((2, 3), {}), ((2, 3), {"axis": 0, "keepdims": True})],
    "norm": [
        ((2, 3), {}),
        ((2, 3), {"axis": 1}),
        ((2, 3), {"axis": 1, "ord": 3}),
        ((2, 3), {"ord": 1}),
        ((2, 3), {"axis": 0, "ord": np.inf}),
    ],
    "logsumexp": [((2, 3), {}), ((2, 3), {"axis": 0})],
    "var": [((2, 3), {}), ((2, 3), {"axis": 1, "ddof": 1})],
    "std": [((2, 3), {}), ((2, 3), {"axis": 0, "keepdims": True})],
    "softmax": [((2, 3), {}), ((2, 3), {"axis": 0})],
    "log_softmax": [((2, 3), {}), ((2, 3), {"axis": 0})],
    "dot": [
        ((3,), (3,)),
        ((2, 3), (3,)),
        ((3,), (3, 2)),
        ((2, 3), (3, 2)),
        ((), (3,)),
        ((2, 3), ()),
        ((2, 2, 3), (3,)),
        ((2, 3), (2, 3, 2)),
    ],
    "solve": [("matrix", (3,)), ("matrix", (3, 2)), ("matrix", (2, 3, 2))],
    "inner": [((3,), (3,)), ((2, 3), (4, 3))],
    "matmul": [
        ((3,), (3,)),
        ((2, 3), (3,)),
        ((3,), (3, 2)),
        ((2, 3), (3, 2)),
        ((2, 2, 3), (3, 2)),
        ((3,), (2, 3, 2)),
        ((2, 2, 3), (3,)),
        ((2, 1, 2, 3), (3, 3, 2)),
    ],
    "outer": [((2,), (3,)), ((2, 2), (3,))],
    "trace": [((3, 3),), ((2, 3, 4), {"offset": 1, "axis1": 2, "axis2": 0})],
    "diagonal": [((3, 3), {}), ((2, 3, 4), {"offset": -1, "axis1": 1, "axis2": -1})],
    "diag": [((3,), {}), ((2, 3), {"k": 1}), ((2,), {"k": -1})],
    "tril": [((3, 3), {}), ((2, 3, 4), {"k": 1})],
    "triu": [((3, 3), {}), ((3,), {"k": -1})],
    "kron": [((2,), (3,)), ((2, 2), (3,))],
    "tensordot": [((2, 3), (3, 2), {"axes": 1}), ((2, 3), (3, 2), {"axes": ([0, 1], [1, 0])})],
    "cross": [((3,), (3,)), ((2, 3), (3,)), ((3, 2), (2, 3), {"axisa": 0})],
    "transpose": [
        ((2, 3, 4), {}),
        ((2, 3, 4), {"axes": (1, 0, 2)}),
        ((2, 3, 4), {"axes": (2, 0, -2)}),
    ],
    "reshape": [((2, 3), {"shape": (3, 2)}), ((2, 3), {"shape": (-1,)})],
    "broadcast_to": [((3,), {"shape": (2, 3)}), ((2, 1), {"shape": (2, 3)})],
    "getitem": [
        ((3, 4), {"index": 1}),
        ((3, 4), {"index": (slice(None), 2)}),
        ((3, 4), {"index": (Ellipsis, 1)}),
        ((3, 4), {"index": (None, 1)}),
        ((3, 4), {"index": (slice(None, None, -1), slice(1, 3))}),
        ((3, 4), {"index": I34}),
        ((3, 4), {"index": (np.array([0, 2]), np.array([1, 3]))}),
        ((3, 4), {"index": np.array([[True, False, True, False]] * 3)}),
        ((2, 3, 4), {"index": (np.array([0, 1, 1]), slice(None), np.array([1, 2, 2]))}),
        ((2, 3, 4), {"index": (Ellipsis, np.array([0, 3]))}),
    ],
    "index_add": [
        ((3,), {"index": I34, "shape": (4,)}),
        ((3,), {"index": (slice(None), 1), "shape": (3, 4)}),
        ((2, 4), {"index": (np.array([0, 2]),), "shape": (3, 4)}),
    ],
    "concatenate": [([(2, 3), (1, 3)], {"axis": 0}), ([(2, 2), (2, 3)], {"axis": -1})],
    "stack": [
        ([(2, 3), (2, 3)], {"axis": 0}),
        ([(2, 3), (2, 3), (2, 3)], {"axis": -1}),
    ],
    "flip": [((2, 3), {}), ((2, 3, 2), {"axis": (0, -1)})],
    "roll": [((2, 3), {"shift": 1}), ((2, 3), {"shift": (1, -2), "axis": (0, 1)})],
    "rot90": [((2, 3), {}), ((2, 3, 2), {"k": -1, "axes": (2, 0)}), ((2, 3), {"k": 2})],
    "squeeze": [((2, 1, 3), {}), ((1, 3), {"axis": 0})],
    "expand_dims": [((2, 3), {"axis": 1}), ((3,), {"axis": (0, -1)})],
    "moveaxis": [((2, 3, 4), {"source": 0, "destination": -1})],
    "swapaxes": [((2, 3, 4), {"axis1": 0, "axis2": 2})],
    "repeat": [((2, 3), {"repeats": 2}), ((2, 3), {"repeats": (1, 0, 2), "axis": 1})],
    "tile": [((2, 3), {"reps": 2}), ((3,), {"reps": (2, 2)})],
    "pad": [((2, 3), {"pad_width": 1}), ((2, 3), {"pad_width": ((0, 1), (2, 0))})],
    "vstack": [([(2, 3), (3,)], {})],
    "row_stack": [([(2, 3), (1, 3)], {})],
    "hstack": [([(2, 3), (2, 1)], {}), ([(3,), (2,)], {})],
    "column_stack": [([(3,), (3, 2)], {})],
    "dstack": [([(2, 3), (2, 3, 2)], {})],
    "append": [((2, 3), (4,)), ((2, 3), (1, 3), {"axis": 0})],
    "einsum": [
        ([(2, 3), (3, 2)], {"subscripts": "ij,jk->ik"}),
        ([(3, 3)], {"subscripts": "ii->i"}),
        ([(2, 2, 3), (3,)], {"subscripts": "...ij,j"}),
    ],
    "cumsum": [((2, 3), {}), ((2, 3), {"axis": 0}), ((2, 3), {"axis": -1})],
    "matrix_power": [("matrix", {"n": 3}), ("matrix", {"n": -2}), ("matrix", {"n": 6})],
    "cholesky": [("matrix",), ("matrix", {"upper": True})],
    "_eigh": [("matrix",), ("matrix", {"UPLO": "U"})],
    "_svd": [("matrix",), ("matrix", {"compute_uv": False})],
    "cumprod": [((2, 3), {}), ((2, 3), {"axis": 1})],
    "diff": [((2, 3), {}), ((3, 2), {"n": 2, "axis": 0})],
}
BINARY_SHAPES = [((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2,))]


def op_cases():
    for name in sorted(OPS):
        op = OPS[name]
        if not op.differentiable:
            continue
        if name in SPECIAL:
            variants = SPECIAL[name]
        elif op.domain and op.domain[0] == "matrix":
            variants = (
                [("matrix",)] if op.nin == 1 else [("matrix", (3,)), ("matrix", (3, 2))]
            )
        elif name == "where":
            variants = [((2, 3), (3,))]
        elif op.nin == 2:
            variants = BINARY_SHAPES
        elif op.nin == 3:
            variants = [((2, 3), (3,), ())]
        else:
            variants = [((2, 3),)]
        for k, variant in enumerate(variants):
            yield pytest.param(name, variant, id=f"{name}-{k}")


def build(name, variant, rng):
    """(f, args) for one op application; every float input is differentiated."""
    op = OPS[name]
    params = {}
    if variant and isinstance(variant[-1], dict):
        *shapes, params = variant
    else:
        shapes = list(variant)
    domains = list(op.domain) if op.domain else []
    if op.nin == -1:
        shapes = shapes[0]
        lo, hi = domains[0]
        args = [_unit(rng, s, lo, hi) for s in shapes]
        return (lambda *xs: op(list(xs), **params)), args
    args = []
    for i, s in enumerate(shapes):
        d = domains[i] if i < len(domains) else (-3.0, 3.0)
        if s == "matrix":  # near the identity: well conditioned
            args.append(_matrix(rng))
        else:
            lo, hi = d
            args.append(_unit(rng, s, lo, hi))
    if name == "where":
        cond = rng.uniform(size=(2, 3)) > 0.5
        return (lambda a, b: op(cond, a, b)), args
    return (lambda *xs: op(*xs, **params)), args


@pytest.mark.parametrize(("name", "variant"), list(op_cases()))
def test_batched_walk_matches_rows_loop_and_finite_differences(name, variant):
    rng = np.random.default_rng(zlib.crc32(f"{name}{variant}".encode()))
    f, args = build(name, variant, rng)
    nums = tuple(range(len(args)))
    try:
        out_shape = values(f, *args).shape
    except (TypeError, ValueError, IndexError) as exc:  # a new op: options, shapes
        pytest.fail(f"add a case for op {name!r} to SPECIAL in this file: {exc!r}")
    rows = jacobian(f, argnums=nums, method="rows")(*args)
    loop = jacobian(f, argnums=nums, method="loop")(*args)
    cols = jacobian(f, argnums=nums, method="columns")(*args)
    J = as_matrix(rows, out_shape, args)
    close(J, as_matrix(loop, out_shape, args), rtol=1e-12, atol=1e-12)
    fd = fd_jacobian(f, args)
    close(J, fd, rtol=1e-5, atol=1e-6)
    close(as_matrix(cols, out_shape, args), fd, rtol=1e-5, atol=1e-6)

    # Second derivatives: the batched walk runs on the gradient's own graph.
    w = rng.standard_normal(out_shape)

    def scalar(*xs):
        return gc.sum(f(*xs) * w)

    H = as_hessian(hessian(scalar, argnums=nums)(*args), args)
    H_loop = as_hessian(hessian(scalar, argnums=nums, method="loop")(*args), args)
    close(H, H_loop, rtol=1e-12, atol=1e-12)
    if name not in ("floor", "ceil", "sign"):
        close(H, fd_hessian(scalar, args), rtol=1e-4, atol=1e-5)
