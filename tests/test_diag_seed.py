"""The identity seed kept diagonal (``fastpath.Diag``) against the dense identity.

A Jacobian's or a Hessian's rows start from the identity; the walk keeps it as
its diagonal while the rules keep it diagonal (``transforms.USE_DIAG``). The
truth here is the same walk with the dense identity seed (``USE_DIAG = False``,
the code before the trick), compared bit for bit (``np.array_equal``: only a
zero's sign may differ, and -0.0 == 0.0), nan where it put nan; the dense walk
itself is checked against finite differences and closed forms in
test_transforms.py. Every op of ``gc.OPS`` goes through both, on the cases of
the batched-rule test there.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import gradcli as gc
from gradcli import transforms
from gradcli.engine import fastpath
from gradcli.transforms import hessian, jacobian

from test_transforms import build, op_cases


def both(monkeypatch, compute):
    """``compute()`` with the diagonal seed, then with the dense identity."""
    monkeypatch.setattr(transforms, "USE_DIAG", True)
    fast = compute()
    monkeypatch.setattr(transforms, "USE_DIAG", False)
    dense = compute()
    return fast, dense


def as_arrays(result):
    if isinstance(result, gc.Tensor):
        return [result.numpy()]
    return [a for r in result for a in as_arrays(r)]


def same(fast, dense):
    fast, dense = as_arrays(fast), as_arrays(dense)
    assert len(fast) == len(dense)
    for a, b in zip(fast, dense):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=True), np.abs(a - b).max()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(("name", "variant"), list(op_cases()))
def test_every_op_gives_the_dense_seeds_rows_exactly(monkeypatch, name, variant):
    rng = np.random.default_rng(zlib.crc32(f"diag{name}{variant}".encode()))
    f, args = build(name, variant, rng)
    nums = tuple(range(len(args)))
    same(*both(monkeypatch, lambda: jacobian(f, argnums=nums, method="rows")(*args)))
    w = rng.standard_normal(np.shape(f(*args)))

    def scalar(*xs):
        return gc.sum(f(*xs) * w)

    same(*both(monkeypatch, lambda: hessian(scalar, argnums=nums)(*args)))


def counting(monkeypatch):
    """How many times a Diag was made dense during a walk."""
    calls = []
    dense = fastpath.Diag.dense

    def counted(self):
        calls.append(self.shape)
        return dense(self)

    monkeypatch.setattr(fastpath.Diag, "dense", counted)
    return calls


def test_bench_jacobian_stays_diagonal_down_to_the_matrix_product(monkeypatch):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 20))
    x = rng.standard_normal(20)
    calls = counting(monkeypatch)
    got = jacobian(lambda x: gc.tanh(A @ x) * gc.sum(x))(x).numpy()
    assert calls == []  # elementwise rules, then diag(d) @ A as d[:, None] * A
    t = np.tanh(A @ x)  # by hand: d(t_i s)/dx_j = (1 - t_i^2) A_ij s + t_i
    truth = (1 - t * t)[:, None] * A * x.sum() + t[:, None]
    np.testing.assert_allclose(got, truth, rtol=1e-13, atol=1e-13)


def test_vector_times_matrix_and_a_scalar_argument(monkeypatch):
    rng = np.random.default_rng(2)
    B = rng.standard_normal((5, 7))
    x, s = rng.standard_normal(5), np.float64(0.7)

    def f(x, s):
        return gc.exp(x @ B) * s - s

    fast, dense = both(monkeypatch, lambda: jacobian(f, argnums=(0, 1))(x, s))
    same(fast, dense)
    e = np.exp(x @ B)  # by hand
    np.testing.assert_allclose(fast[0].numpy(), e[:, None] * B.T * s, rtol=1e-13)
    np.testing.assert_allclose(fast[1].numpy(), e - 1, rtol=1e-13)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_inf_in_the_constant_matrix_gives_the_dense_products_nan(monkeypatch):
    A = np.array([[1.0, 2.0], [np.inf, 3.0], [0.5, 0.25]])
    x = np.array([1.0, -1.0])
    fast, dense = both(monkeypatch, lambda: jacobian(lambda x: gc.sin(A @ x))(x))
    same(fast, dense)
    assert np.isnan(fast.numpy()).any()  # 0 * inf off the diagonal, as dense


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_local_derivatives_take_the_guarded_dense_walk(monkeypatch):
    x = np.array([0.0, 1.0, 4.0, -2.0])

    def f(x):
        return gc.where(x > 0, gc.sqrt(gc.abs(x)), x) * x

    fast, dense = both(monkeypatch, lambda: jacobian(f)(x))
    same(fast, dense)
    # by hand: sqrt(x) x = x^1.5 for x > 0 (derivative 1.5 sqrt(x)), x^2 else
    np.testing.assert_allclose(fast.numpy(), np.diag([0.0, 1.5, 3.0, -4.0]))
    same(*both(monkeypatch, lambda: hessian(lambda x: gc.sum(f(x)))(x)))


def test_float32_and_a_matrix_output(monkeypatch):
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    fast, dense = both(monkeypatch, lambda: jacobian(lambda x: gc.tanh(x) * x + 1)(x))
    same(fast, dense)
    assert fast.dtype == gc.float32
    t = np.tanh(x.astype(np.float64))  # by hand: (tanh(x) x)' = (1 - t^2) x + t
    truth = np.diag(((1 - t * t) * x + t).ravel()).reshape(2, 3, 2, 3)
    np.testing.assert_allclose(fast.numpy(), truth, rtol=1e-5, atol=1e-6)


def test_quartic_hessian_at_n_100(monkeypatch):
    x = np.random.default_rng(3).standard_normal(100)
    fast, dense = both(
        monkeypatch,
        lambda: hessian(lambda x: gc.sum(x**4) + gc.dot(x, x) ** 2)(x),
    )
    same(fast, dense)
    s = x @ x  # by hand
    truth = np.diag(12 * x * x) + 4 * (s * np.eye(100) + 2 * np.outer(x, x))
    np.testing.assert_allclose(fast.numpy(), truth, rtol=1e-12, atol=1e-10)


def test_a_walk_pruned_to_the_variable_under_no_grad(monkeypatch):
    # c requires grad and is not a variable: the walk keeps to x's edges only.
    rng = np.random.default_rng(4)
    A = rng.standard_normal((6, 4))
    x = rng.standard_normal(4)
    c = gc.tensor(rng.standard_normal(6), dtype=gc.float64, requires_grad=True)

    def f(x):
        return gc.tanh(A @ x) * c + x[0]

    with gc.no_grad():
        fast, dense = both(monkeypatch, lambda: jacobian(f)(x))
    same(fast, dense)
    t = np.tanh(A @ x)  # by hand
    truth = (1 - t * t)[:, None] * A * c.detach().numpy()[:, None]
    truth[:, 0] += 1
    np.testing.assert_allclose(fast.numpy(), truth, rtol=1e-13, atol=1e-13)
    assert c.grad is None



@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diagonal_that_overflows_stays_as_the_dense_batch_has_it(monkeypatch):
    # 1e200 * 1e200 overflows on the diagonal only (zeros elsewhere stay zeros),
    # and inf * 0 is nan there, in the dense batch as in the diagonal one.
    x = np.array([1.0, -2.0, 3.0])
    for f in (lambda x: (x * 1e200) * 1e200, lambda x: ((x * 0.0) * 1e200) * 1e200,
              lambda x: gc.exp(x * 1e200) * x):
        fast, dense = both(monkeypatch, lambda: jacobian(f)(x))
        same(fast, dense)
        assert not np.isfinite(np.diag(fast.numpy())).all()
        assert (fast.numpy()[~np.eye(3, dtype=bool)] == 0).all()  # by hand: diagonal
