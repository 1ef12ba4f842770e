"""einsum's rule as matrix products of views (issue 11, "Speed").

A two-operand einsum that is a matrix product up to transposes and batch axes
gets each operand's gradient from one np.matmul on views of the cotangent and
the other operand; everything else (diagonals, traces, letters summed within
one operand, sizes that broadcast, elementwise products, three operands) stays
einsum's. ``optimize=True`` takes that path at any size, so small cases check
it: values bit for bit against numpy's own call, gradients of <W, einsum(A, B)>
against central differences (exact up to rounding: the map is linear in each
operand), by hand where the formula is a textbook one.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcli as gc
from gradcli.engine.ops import linalg
from gradcli.transforms import jacobian

H = 1e-3  # bilinear: central differences are exact but for rounding

# (subscripts, shapes, whether both gradients are one matrix product each)
CASES = [
    ("ij,jk->ik", ((3, 4), (4, 5)), True),
    ("ji,kj->ik", ((4, 3), (5, 4)), True),  # both operands transposed
    ("ij,kj->ki", ((3, 4), (5, 4)), True),  # output transposed
    ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5)), True),  # a batch axis
    ("bij,bjk->ibk", ((2, 3, 4), (2, 4, 5)), True),  # batch axis not in front
    ("ij,jk", ((3, 4), (4, 5)), True),  # implicit output
    ("ik,jk", ((3, 4), (5, 4)), True),  # implicit output, sorted: i j
    ("...ij,...jk->...ik", ((2, 3, 4), (4, 5)), True),  # '...' on one side only
    ("...ij,...jk", ((3, 2, 3, 4), (2, 4, 5)), True),
    ("ijk,jkl->li", ((2, 3, 4), (3, 4, 5)), True),  # two summed letters, merged
    ("abc,cd->dba", ((2, 3, 4), (4, 5)), True),
    ("i,j->ij", ((3,), (4,)), True),  # outer product: a product with k = 1
    ("ij,j->i", ((3, 4), (4,)), True),
    ("i,i->", ((4,), (4,)), False),  # each gradient is g times the other: no product
    ("ii,i->i", ((3, 3), (3,)), False),  # a diagonal
    ("ij,jj->i", ((3, 4), (4, 4)), False),  # a diagonal in the other operand
    ("ii,jk->jk", ((3, 3), (2, 4)), False),  # a trace
    ("ij,jk->i", ((3, 4), (4, 5)), False),  # k summed within b alone
    ("...ij,...jk->...ik", ((1, 3, 4), (2, 4, 5)), False),  # a batch axis broadcasts
    ("bi,bi->b", ((3, 4), (3, 4)), False),  # elementwise, then a sum
]


def _loss(sub, xs, w):
    return float(np.sum(w * np.einsum(sub, *xs)))


def _fd(sub, xs, w, k):
    g = np.zeros(xs[k].shape)
    for idx in np.ndindex(xs[k].shape):
        hi = [x.copy() for x in xs]
        lo = [x.copy() for x in xs]
        hi[k][idx] += H
        lo[k][idx] -= H
        g[idx] = (_loss(sub, hi, w) - _loss(sub, lo, w)) / (2 * H)
    return g


def _engine(sub, arrays, w, const=(), optimize=True):
    ts = [gc.tensor(a, requires_grad=k not in const) for k, a in enumerate(arrays)]
    y = gc.einsum(sub, *ts, optimize=optimize)
    gc.sum(y * gc.tensor(w)).backward()
    return y.detach().numpy(), [t.grad for t in ts]


@pytest.mark.parametrize("sub, shapes, product", CASES, ids=[c[0] + str(c[1]) for c in CASES])
def test_values_and_gradients_against_numpy_and_differences(sub, shapes, product):
    rng = np.random.default_rng(len(sub))
    xs = [rng.standard_normal(s) for s in shapes]
    value = np.einsum(sub, *xs, optimize=True)
    w = rng.standard_normal(value.shape)
    got, grads = _engine(sub, xs, w)
    assert got.tobytes() == value.tobytes()  # the forward is numpy's call
    for k, g in enumerate(grads):
        np.testing.assert_allclose(g.numpy(), _fd(sub, xs, w, k), rtol=1e-9, atol=1e-9)
        assert g.shape == xs[k].shape


@pytest.mark.parametrize("sub, shapes, product", CASES, ids=[c[0] + str(c[1]) for c in CASES])
def test_which_gradients_are_matrix_products(sub, shapes, product):
    # Diagonals, traces, one-sided sums, broadcasting and elementwise products
    # must stay einsum's (a matmul would give wrong numbers or raise).
    terms, out = linalg._einsum_plan(sub, shapes)
    out_shape = np.einsum(sub, *[np.zeros(s) for s in shapes]).shape
    plans = [linalg._as_product(out, out_shape, terms[1 - i], shapes[1 - i], terms[i])
             for i in range(2)]
    assert all(p is not None for p in plans) == product
    if not product:
        assert all(p is None for p in plans) or sub.startswith("...")


def test_float32_operands_keep_their_dtype_and_an_integer_constant_works():
    rng = np.random.default_rng(3)
    a32, b32 = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5, 4)))
    w = rng.standard_normal((3, 5)).astype(np.float32)
    got, (ga, gb) = _engine("ij,kj->ik", [a32, b32], w)
    assert got.dtype == ga.dtype == gb.dtype == np.float32
    np.testing.assert_allclose(ga.numpy(), w @ b32, rtol=1e-5)  # by hand: W B
    np.testing.assert_allclose(gb.numpy(), w.T @ a32, rtol=1e-5)  # W^T A
    a = rng.standard_normal((3, 4))
    b_int = rng.integers(-3, 4, (4, 5))
    w = rng.standard_normal((3, 5))
    got, (ga, gb) = _engine("ij,jk->ik", [a, b_int], w, const=(1,))
    assert gb is None and ga.dtype == np.float64
    np.testing.assert_allclose(ga.numpy(), w @ b_int.T, rtol=1e-12)


def test_a_constant_operand_gets_no_gradient_computed(monkeypatch):
    computed = []
    back = linalg._einsum_back

    def spy(g, xs, i, *args, **kwargs):
        computed.append(i)
        return back(g, xs, i, *args, **kwargs)

    monkeypatch.setattr(linalg, "_einsum_back", spy)
    rng = np.random.default_rng(4)
    A, B, W = (rng.standard_normal((70, 70)) for _ in range(3))
    _, (ga, gb) = _engine("ij,jk->ik", [A, B], W, const=(0,), optimize=False)
    assert computed == [1] and ga is None
    np.testing.assert_allclose(gb.numpy(), A.T @ W, rtol=1e-12)  # by hand: A^T W


def test_past_the_blas_size_without_optimize_values_bit_for_bit_gradients_by_hand():
    # 70x70: the rule takes the product path by size; the forward stays numpy's
    # plain (optimize=False) call. d<W, A B>/dA = W B^T, /dB = A^T W; the sum's
    # broadcast ones as the cotangent too.
    rng = np.random.default_rng(5)
    A, B, W = (rng.standard_normal((70, 70)) for _ in range(3))
    got, (ga, gb) = _engine("ij,jk->ik", [A, B], W, optimize=False)
    assert got.tobytes() == np.einsum("ij,jk->ik", A, B).tobytes()
    np.testing.assert_allclose(ga.numpy(), W @ B.T, rtol=1e-12)
    np.testing.assert_allclose(gb.numpy(), A.T @ W, rtol=1e-12)
    a, b = gc.tensor(A, requires_grad=True), gc.tensor(B, requires_grad=True)
    gc.sum(gc.einsum("ji,jk->ik", a, b)).backward()
    ones = np.ones((70, 70))
    np.testing.assert_allclose(a.grad.numpy(), (ones @ B.T).T, rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), A @ ones, rtol=1e-12)
    # a broadcast constant operand (stride 0) too: d<W, A R>/dA = W R^T
    R = np.broadcast_to(rng.standard_normal(70), (70, 70))
    _, (ga, _) = _engine("ij,jk->ik", [A, R], W, const=(1,), optimize=False)
    np.testing.assert_allclose(ga.numpy(), W @ np.array(R).T, rtol=1e-12)


def test_three_operands_with_the_cached_path_by_hand():
    # d<W, A B C>/dB = A^T W C^T, twice (the second from the cached path).
    rng = np.random.default_rng(6)
    A, B, C = (rng.standard_normal(s) for s in ((60, 70), (70, 80), (80, 50)))
    W = rng.standard_normal((60, 50))
    for _ in range(2):
        got, (ga, gb, gc_) = _engine("ij,jk,kl->il", [A, B, C], W)
        np.testing.assert_allclose(gb.numpy(), A.T @ W @ C.T, rtol=1e-10)
        np.testing.assert_allclose(ga.numpy(), W @ (B @ C).T, rtol=1e-10)
        np.testing.assert_allclose(gc_.numpy(), (A @ B).T @ W, rtol=1e-10)


@pytest.mark.parametrize("method", ["rows", "columns"])
def test_jacobian_rows_batch_the_cotangents_through_the_product(method):
    # J[i, k, p, q] = d(A B)[i, k] / dA[p, q] = delta_ip B[q, k]: the rows' batch
    # axis in front of the cotangent is a free axis of the product.
    rng = np.random.default_rng(7)
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    f = jacobian(lambda a: gc.einsum("ij,jk->ik", a, gc.tensor(B), optimize=True),
                 method=method)
    got = f(gc.tensor(A)).numpy()
    np.testing.assert_allclose(got, np.einsum("ip,qk->ikpq", np.eye(3), B), rtol=1e-12)


# numpy's interleaved form: operand, its labels (ints 0-51, Ellipsis), ..., [output]
INTERLEAVED = [
    ("ij,jk->ik", [[0, 1], [1, 2]], [0, 2]),
    ("ij,jk", [[0, 1], [1, 2]], None),  # implicit output
    ("...j,jk->...k", [[Ellipsis, 1], [1, 30]], [Ellipsis, 30]),  # 30 is 'e'
]


@pytest.mark.parametrize("sub, labels, out", INTERLEAVED, ids=[c[0] for c in INTERLEAVED])
def test_the_interleaved_form_is_the_subscripts_form(sub, labels, out):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((3, 4)), rng.standard_normal((4, 5))]
    args = [a for pair in zip(xs, labels) for a in pair] + ([out] if out is not None else [])
    want = np.einsum(*args)
    ts = [gc.tensor(x, dtype=gc.float64, requires_grad=True) for x in xs]
    targs = [a for pair in zip(ts, labels) for a in pair] + ([out] if out is not None else [])
    got = np.einsum(*targs)
    np.testing.assert_array_equal(got.detach().numpy(), want)
    w = rng.standard_normal(want.shape)
    (got * gc.tensor(w)).sum().backward()
    for k, t in enumerate(ts):
        np.testing.assert_allclose(t.grad.numpy(), _fd(sub, xs, w, k), rtol=1e-9, atol=1e-12)


def test_an_interleaved_label_out_of_range_is_refused():
    with pytest.raises(ValueError, match="not within the valid range"):
        np.einsum(gc.tensor(np.ones((2, 2))), [0, 52])
