"""The Tensor and the backward pass (issue 2, section 2), against independent truth:
directional central differences, hand-derived gradients and Hessians, and the
text PyTorch prints."""

from __future__ import annotations

import math
import operator
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcli as gc
from gradcli import Tensor

F64 = np.float64


def f64(values, requires_grad: bool = True) -> Tensor:
    return gc.tensor(np.array(values, dtype=F64), requires_grad=requires_grad)


# -- directional derivatives of composite functions ------------------------------------
M = np.array(
    [
        [1.0, 0.5, -0.2, 0.0],
        [0.3, 2.0, 0.1, -1.0],
        [0.0, -0.4, 1.5, 0.2],
        [0.7, 0.0, 0.3, 1.0],
    ]
)


def f_sin_exp(x):
    return gc.sum(gc.sin(x) * x + gc.exp(-x * x))


def f_quadratic_ratio(x):
    return (x @ gc.tensor(M) @ x) / (1 + gc.dot(x, x))


def f_reductions(x):
    # norm(x + 3): never at norm's kink (x is drawn in [-2, 2]).
    return (
        gc.logsumexp(x) + gc.norm(x + 3) * gc.tanh(gc.mean(x)) - gc.std(x, ddof=1) ** 2
    )


def f_shapes(x):
    a = x.reshape(2, 2)
    b = gc.concatenate([a, a.T * 2], axis=0)  # (4, 2)
    c = gc.stack([b[:, 0], b[::-1, 1]], axis=1)  # (4, 2)
    return (
        gc.sum(gc.sigmoid(gc.outer(x, x)) * x[:, None])
        + gc.logsumexp(c * c)
        + c[1:].prod()
    )


def f_nn(x):
    s = gc.softmax(x * gc.tensor(M), axis=1)
    return (
        gc.sum(s * gc.log_softmax(x[None, :] + gc.tensor(M), axis=-1))
        + gc.softplus(x).var()
    )


def f_loop(x):
    # Control flow, as in the notebook: the graph is whatever ran.
    y = x
    for _ in range(5):
        y = gc.arctan(y) * 1.5 + gc.square(y) / 10
    # where(y > 0, y, sin(y)) is smooth at 0 (both sides: slope 1, curvature 0).
    # det(M + x x^T / 10) = det(M) (1 + x^T M^-1 x / 10) > 0: M^-1 + M^-T is
    # positive definite, so the matrix is never singular.
    return gc.sum(gc.where(y > 0, y, gc.sin(y))) + gc.det(
        gc.tensor(M) + gc.outer(x, x) / 10
    )


FUNCTIONS = [f_sin_exp, f_quadratic_ratio, f_reductions, f_shapes, f_nn, f_loop]
VECTOR = hnp.arrays(F64, 4, elements=st.floats(-2, 2, allow_subnormal=False))
DIRECTION = hnp.arrays(F64, 4, elements=st.floats(-1, 1, allow_subnormal=False))


@pytest.mark.parametrize("f", FUNCTIONS, ids=[f.__name__ for f in FUNCTIONS])
@given(x=VECTOR, v=DIRECTION)
def test_directional_derivative_matches_central_differences(f, x, v):
    t = gc.tensor(x, requires_grad=True)
    f(t).backward()
    analytic = float(np.dot(v, t.grad.data))
    h = 1e-6
    with gc.no_grad():
        numeric = (f(gc.tensor(x + h * v)).item() - f(gc.tensor(x - h * v)).item()) / (
            2 * h
        )
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-7)


# -- operators with Python numbers and numpy arrays on either side ---------------------
A23 = np.array([[0.5, 1.5, 2.0], [1.2, 0.7, 2.5]])
ROW = np.array([0.8, 1.1, 1.9])
COL = np.array([[1.3], [0.6]])

# d(a op b)/da and d(a op b)/db, elementwise (before summing broadcast axes).
PARTIALS = {
    operator.add: (lambda a, b: np.ones_like(a + b), lambda a, b: np.ones_like(a + b)),
    operator.sub: (lambda a, b: np.ones_like(a + b), lambda a, b: -np.ones_like(a + b)),
    operator.mul: (lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    operator.truediv: (lambda a, b: 1 / b + 0 * a, lambda a, b: -a / b**2),
    operator.pow: (lambda a, b: b * a ** (b - 1), lambda a, b: a**b * np.log(a)),
}


def reduce_to(g: np.ndarray, shape) -> np.ndarray:
    """Sum g down to shape explicitly, axis by axis."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


OTHERS = {
    "int": 2,
    "float": 1.5,
    "ndarray-row": ROW,
    "ndarray-col": COL,
    "0-d ndarray": np.array(1.25),
    "np.float64": np.float64(0.75),
}


@pytest.mark.parametrize("fn", list(PARTIALS), ids=lambda f: f.__name__)
@pytest.mark.parametrize("other", list(OTHERS))
@pytest.mark.parametrize("side", ["tensor-left", "tensor-right"])
def test_operators_mix_numbers_and_arrays(fn, other, side):
    const = OTHERS[other]
    t = gc.tensor(A23, requires_grad=True)
    a, b = (
        (A23, np.asarray(const, F64))
        if side == "tensor-left"
        else (np.asarray(const, F64), A23)
    )
    y = fn(t, const) if side == "tensor-left" else fn(const, t)
    assert isinstance(y, Tensor) and y.grad_fn is not None
    np.testing.assert_allclose(y.data, fn(a, b), rtol=1e-15)
    w = np.arange(1.0, 7.0).reshape(2, 3) / 7
    y.backward(gradient=gc.tensor(w))
    partial = PARTIALS[fn][0 if side == "tensor-left" else 1](a, b)
    assert t.grad.shape == A23.shape and t.grad.dtype == F64
    np.testing.assert_allclose(
        t.grad.data, reduce_to(w * partial, A23.shape), rtol=1e-14
    )


@pytest.mark.parametrize("fn", list(PARTIALS), ids=lambda f: f.__name__)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
    data=st.data(),
)
def test_tensor_op_tensor_broadcasts_and_gradients_keep_shapes(fn, shapes, data):
    sa, sb = shapes.input_shapes
    xa = data.draw(hnp.arrays(F64, sa, elements=st.floats(0.5, 2.0)), label="a")
    xb = data.draw(hnp.arrays(F64, sb, elements=st.floats(0.5, 2.0)), label="b")
    a, b = gc.tensor(xa, requires_grad=True), gc.tensor(xb, requires_grad=True)
    y = fn(a, b)
    assert y.shape == shapes.result_shape
    w = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(gradient=gc.tensor(w))
    for t, x, k in ((a, xa, 0), (b, xb, 1)):
        assert t.grad.shape == x.shape and t.grad.dtype == F64
        expected = reduce_to(w * PARTIALS[fn][k](xa, xb), x.shape)
        np.testing.assert_allclose(t.grad.data, expected, rtol=1e-12, atol=1e-14)


def test_matmul_with_arrays_on_either_side():
    t = gc.tensor(A23, requires_grad=True)
    v = np.array([1.0, -2.0, 0.5])
    (t @ v).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.tile(v, (2, 1)))  # d(Av)/dA = 1 v^T
    t = gc.tensor(A23, requires_grad=True)
    u = np.array([2.0, -1.0])
    (u @ t).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.tile(u[:, None], (1, 3)))  # u 1^T
    x = gc.tensor(v, requires_grad=True)
    y = A23 @ x  # ndarray @ Tensor: the Tensor's __rmatmul__
    assert isinstance(y, Tensor)
    y.backward(gradient=gc.tensor([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad.data, A23.sum(axis=0))


def test_unary_minus_and_abs():
    x = f64([-2.0, 0.5, 3.0])
    y = -x
    assert y.data.tolist() == [2.0, -0.5, -3.0]
    y.sum().backward()
    assert x.grad.tolist() == [-1.0, -1.0, -1.0]
    x = f64([-2.0, 0.5, 3.0])
    y = abs(x)
    assert y.data.tolist() == [2.0, 0.5, 3.0]
    y.sum().backward()
    assert x.grad.tolist() == [-1.0, 1.0, 1.0]
    x = f64([-2.0, 0.5])
    y = +x
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_gradient_has_the_dtype_of_its_input():
    # float32 leaf, float64 array: the result is float64 (numpy's promotion) but
    # the gradient reaching the leaf is float32, like the leaf.
    x = gc.tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == np.float32
    y = x * np.array([0.5, 3.0])
    assert y.dtype == F64
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [0.5, 3.0]
    z = gc.tensor(2.0, requires_grad=True)
    (z * 3.0 + z**2).backward()
    assert z.grad.dtype == np.float32 and z.grad.item() == 7.0
    z64 = gc.tensor(2.0, dtype=gc.float64, requires_grad=True)
    (gc.sum(gc.ones(3) * z64)).backward()
    assert z64.grad.dtype == F64 and z64.grad.shape == () and z64.grad.item() == 3.0


# -- comparisons -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "cmp",
    [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge],
    ids=lambda f: f.__name__,
)
def test_comparisons_give_bool_tensors_without_graph(cmp):
    x = f64([0.0, 1.0, 2.0, 3.0])
    for other in (1.0, np.array([3.0, 1.0, 0.0, 3.0]), f64([1.0, 1.0, 1.0, 1.0])):
        r = cmp(x, other)
        assert isinstance(r, Tensor) and r.dtype == np.bool_
        assert r.grad_fn is None and not r.requires_grad
        plain = other.detach() if isinstance(other, Tensor) else other
        np.testing.assert_array_equal(r.data, cmp(np.arange(4.0), np.asarray(plain)))


def test_comparison_prints_like_the_notebook():
    x = gc.arange(4.0, requires_grad=True)
    (2 * gc.dot(x, x)).backward()
    assert repr(x.grad == 4 * x) == "tensor([True, True, True, True])"


def test_while_loop_on_a_norm():
    a = gc.tensor(0.75, dtype=gc.float64, requires_grad=True)
    b = a * 2
    steps = 0
    while b.norm() < 1000:
        b = b * 2
        steps += 1
    assert steps == 10 and b.item() == 0.75 * 2**11
    b.backward()
    assert a.grad.item() == 2.0**11


# -- backward() ----------------------------------------------------------------------
def test_backward_of_a_scalar_seeds_one():
    x = f64([1.0, 2.0])
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x = f64([1.0, 2.0])
    y = (x * 3).sum(keepdims=True)  # one element, shape (1,)
    assert y.shape == (1,)
    y.backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x = f64([[2.0]])
    (x * x).backward()  # shape (1, 1)
    assert x.grad.tolist() == [[4.0]]


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = f64(np.ones((2, 3)))
    with pytest.raises(RuntimeError) as info:
        (x * 2).backward()
    msg = str(info.value)
    assert msg.startswith("grad can be implicitly created only for scalar outputs")
    assert "(2, 3)" in msg
    for remedy in ("gradient=", ".sum()", "gc.jacobian"):
        assert remedy in msg
    assert x.grad is None


def test_backward_with_a_gradient_of_the_wrong_shape():
    x = f64(np.ones((2, 3)))
    with pytest.raises(RuntimeError) as info:
        (x * 2).backward(gradient=gc.ones(3, 2))
    assert "(3, 2)" in str(info.value) and "(2, 3)" in str(info.value)
    with pytest.raises(RuntimeError, match=r"\(3,\)") as info:
        (x * 2).backward(gradient=np.ones(3))
    assert "(2, 3)" in str(info.value)


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="require"):
        gc.tensor(1.0).backward()
    x = f64([1.0, 2.0])
    with gc.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="require"):
        y.backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        gc.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        gc.arange(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        gc.tensor([True]).requires_grad_()
    assert gc.tensor([1.0, 2.0]).requires_grad_().requires_grad


# -- .grad: accumulation, zero_, leaves only, no aliasing ------------------------------
def test_gradients_accumulate_until_zeroed():
    x = f64([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    (x * 10).sum().backward()
    assert x.grad.tolist() == [12.0, 14.0, 16.0]
    x.grad.zero_()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_non_leaf_tensors_get_no_grad():
    x = f64([1.0, 2.0])
    y = x * 2
    z = (y * y).sum()
    z.backward()
    assert x.is_leaf and not y.is_leaf and not z.is_leaf
    assert y.grad is None and z.grad is None
    assert x.grad.tolist() == [8.0, 16.0]


def test_grads_never_alias_each_other_or_the_given_gradient():
    x, y = f64(np.zeros(3)), f64(np.zeros(3))
    seed = gc.ones(3, dtype=gc.float64)
    z = x + y  # add passes the same incoming gradient to both inputs
    z.backward(gradient=seed)
    x.grad.zero_()
    assert y.grad.tolist() == [1.0, 1.0, 1.0]
    assert seed.tolist() == [1.0, 1.0, 1.0]
    y.grad.zero_()
    assert seed.tolist() == [1.0, 1.0, 1.0]
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())

    seed = np.ones(3)
    (x + y).backward(gradient=seed)
    seed[:] = 5.0
    assert x.grad.tolist() == [1.0, 1.0, 1.0] and y.grad.tolist() == [1.0, 1.0, 1.0]

    w = f64([1.0, 2.0, 3.0])  # a leaf differentiated directly: its own gradient
    seed = gc.tensor([4.0, 5.0, 6.0], dtype=gc.float64)
    w.backward(gradient=seed)
    w.grad.zero_()
    assert seed.tolist() == [4.0, 5.0, 6.0]

    v = f64([1.0, 2.0])
    s = v.sum()  # broadcast gradient views must not reach .grad read-only
    s.backward()
    v.grad.zero_()
    assert v.grad.tolist() == [0.0, 0.0]


def test_same_input_used_twice_sums_both_paths():
    x = f64([1.0, 2.0])
    y = x * x + x  # both parents of mul are x
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 5.0]


# -- the recorded nodes --------------------------------------------------------------
def _nodes_by_every_path():
    """One node from each way a node is made (the engine's Node, ``_grad_fn``),
    with its inputs as recorded."""
    x = f64([1.0, 2.0])
    c = f64([3.0, 4.0], requires_grad=False)
    m = x * 2.0  # a non-leaf input
    return [
        ((x * c)._grad_fn, (x, c)),  # operator method
        ((2.0 - x)._grad_fn, (2.0, x)),  # reflected operator
        (gc.sin(m)._grad_fn, (m,)),  # one-input fast path
        (gc.sum(x, axis=0)._grad_fn, (x,)),  # apply, with an option
        (gc.concatenate([x, c, m])._grad_fn, (x, c, m)),  # more than two inputs
        (gc.where(x > 1.0, x, c)._grad_fn, (x > 1.0, x, c)),
    ]


def test_every_node_field_is_set_and_edges_follow_the_inputs():
    from gradcli.engine.graph import AccumulateGrad, Node

    for node, inputs in _nodes_by_every_path():
        assert type(node) is Node  # one class for the walk (graph.py's docstring)
        for slot in Node.__slots__:
            getattr(node, slot)  # AttributeError if a path forgot a field
        expected = tuple(
            (t._grad_fn or t) if isinstance(t, Tensor) and t.requires_grad else None
            for t in inputs
        )
        assert len(node.parents) == len(inputs) == len(node.shapes)
        assert all(p is q for p, q in zip(node.parents, expected)), node
        assert [np.shape(v) for v in inputs] == list(node.shapes)
        # next_functions as PyTorch, on the grad_fn users see: a non-leaf's entry
        # is its grad_fn, a leaf's its AccumulateGrad
        shown = node.public().next_functions
        got = [(fn.variable if isinstance(fn, AccumulateGrad)
                else None if fn is None else fn._node, k) for fn, k in shown]
        assert all(a is p and k == 0 for (a, k), p in zip(got, expected))
        assert all(type(fn).__name__ == "AccumulateGrad"
                   for (fn, _), p in zip(shown, expected)
                   if isinstance(p, Tensor))


def test_a_walk_frees_saved_values_but_keeps_the_edges():
    x = f64([1.0, 2.0])
    c = f64([5.0, 7.0], requires_grad=False)
    cat = gc.concatenate([x * 1.0, x, c])  # three inputs: kept apart from the slots
    y = gc.sum(gc.sin(cat) * 2.0)
    nodes = [y._grad_fn, y._grad_fn.parents[0], cat._grad_fn]
    assert not any(n.freed for n in nodes)
    y.backward()
    for n in nodes:
        assert n.freed and n.saved is None
    assert len(cat._grad_fn.parents) == 3 and cat._grad_fn.parents[1] is x
    assert cat._grad_fn.parents[2] is None
    np.testing.assert_array_equal(x.grad.data, 4.0 * np.cos([1.0, 2.0]))


def test_a_rule_that_raises_leaves_no_gradient_behind(monkeypatch):
    from gradcli.engine import graph

    x = f64([1.0, 2.0])
    y = (gc.sin(x) * x + x * 3.0).sum()

    def broken(out, x):
        raise ValueError("a broken rule")

    monkeypatch.setattr(gc.OPS["sin"], "local", ((graph.FRESH, broken),))
    with pytest.raises(ValueError, match="a broken rule"):
        y.backward(retain_graph=True)  # after x had received its first parts
    assert x.grad is None
    monkeypatch.undo()
    y.backward()
    v = np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.data, np.cos(v) * v + np.sin(v) + 3.0)


# -- retain_graph, detach, no_grad -----------------------------------------------------
def test_second_backward_needs_retain_graph():
    x = f64([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert "second time" in str(info.value) and "retain_graph=True" in str(info.value)
    assert x.grad.tolist() == [2.0, 4.0]

    x = f64([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [6.0, 12.0]


def test_detach_as_in_the_notebook():
    # Cells 52-55: u = y.detach() is a constant, so d(u * x)/dx = u.
    x = gc.arange(4.0, requires_grad=True)
    y = x * x
    u = y.detach()
    assert not u.requires_grad and u.grad_fn is None and u.is_leaf
    assert u.tolist() == [0.0, 1.0, 4.0, 9.0]
    z = u * x
    z.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 4.0, 9.0]
    x.grad.zero_()
    y.sum().backward()  # y's own graph survived z's backward
    assert x.grad.tolist() == [0.0, 2.0, 4.0, 6.0]


def test_no_grad_context_and_decorator_and_enable_grad():
    x = f64([1.0, 2.0])
    with gc.no_grad():
        y = x * 2
        assert not gc.is_grad_enabled()
        with gc.enable_grad():
            assert gc.is_grad_enabled()
            w = x * 3
        v = x * 4
    assert gc.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert w.requires_grad and w.grad_fn is not None
    assert not v.requires_grad

    @gc.no_grad()
    def frozen(t):
        return t * 5

    @gc.enable_grad()
    def thawed(t):
        return t * 6

    assert not frozen(x).requires_grad and gc.is_grad_enabled()
    with gc.no_grad():
        r = thawed(x)
        assert not gc.is_grad_enabled()
    assert r.requires_grad
    r.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), gc.no_grad():
        _ = 1 / 0
    assert gc.is_grad_enabled()


# -- the 1,000,000-op chain ------------------------------------------------------------
def test_a_long_op_chain():
    # 200,000 ops: 200 times Python's recursion limit, deeper than any C stack
    # a recursive walk could use (the unwalked chain below is a million).
    x = gc.tensor(1.0, dtype=gc.float64, requires_grad=True)
    y = x
    for _ in range(200_000):
        y = y * 1.0000001
    y.backward()  # iterative: no RecursionError
    assert x.grad.item() == pytest.approx(1.0000001**2e5, rel=1e-9)
    del y  # the chain is freed without a crash


def test_deleting_an_unwalked_million_op_chain_does_not_crash():
    # In a fresh process: a crash in deallocation must fail this test, not pytest.
    code = textwrap.dedent("""
        import gradcli as gc
        x = gc.tensor(1.0, dtype=gc.float64, requires_grad=True)
        y = x
        for _ in range(1_000_000):
            y = y * 1.0000001
        del y
        print("ok")
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


# -- repr: PyTorch's format, with torch -> gradcli -------------------------------------
def lines(*rows: str) -> str:
    return "\n".join(rows)


def _grad_leaf(values, **kw):
    return gc.tensor(values, requires_grad=True, **kw)


REPRS = [
    (lambda: gc.tensor(3.0), "tensor(3.)"),
    (lambda: gc.tensor(0.5), "tensor(0.5000)"),
    (lambda: gc.tensor(1e-5), "tensor(1.0000e-05)"),
    (lambda: gc.tensor(123456789.0), "tensor(1.2346e+08)"),
    (lambda: gc.tensor(5), "tensor(5)"),
    (lambda: gc.tensor(True), "tensor(True)"),
    (lambda: gc.tensor([True, False]), "tensor([ True, False])"),
    (lambda: gc.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
    (lambda: gc.tensor([1, -10, 100]), "tensor([  1, -10, 100])"),
    (
        lambda: gc.tensor(np.array([1, 2], dtype=np.int32)),
        "tensor([1, 2], dtype=gradcli.int32)",
    ),
    (lambda: gc.tensor([[1, 2], [3, 4]]), "tensor([[1, 2],\n        [3, 4]])"),
    (
        lambda: gc.tensor([[1.0, 2.0], [3.0, 4.0]]),
        "tensor([[1., 2.],\n        [3., 4.]])",
    ),
    (
        lambda: gc.tensor([[0.1, 20.0], [3.0, 4.0]]),
        "tensor([[ 0.1000, 20.0000],\n        [ 3.0000,  4.0000]])",
    ),
    (
        lambda: gc.zeros(2, 2, 2),
        lines(
            "tensor([[[0., 0.],",
            "         [0., 0.]],",
            "",
            "        [[0., 0.],",
            "         [0., 0.]]])",
        ),
    ),
    (
        lambda: gc.tensor([1.0, 2.0], dtype=gc.float64),
        "tensor([1., 2.], dtype=gradcli.float64)",
    ),
    (
        lambda: _grad_leaf([1.0, 2.0], dtype=gc.float64),
        "tensor([1., 2.], dtype=gradcli.float64, requires_grad=True)",
    ),
    (
        lambda: gc.arange(4.0, requires_grad=True),
        "tensor([0., 1., 2., 3.], requires_grad=True)",
    ),
    (
        lambda: gc.arange(3.0, requires_grad=True) * 2,
        "tensor([0., 2., 4.], grad_fn=<MulBackward0>)",
    ),
    (
        lambda: gc.arange(3.0, requires_grad=True).sum(),
        "tensor(3., grad_fn=<SumBackward0>)",
    ),
    (
        lambda: gc.tensor(2.0, dtype=gc.float64, requires_grad=True) * 3,
        "tensor(6., dtype=gradcli.float64, grad_fn=<MulBackward0>)",
    ),
    (
        lambda: gc.dot(gc.arange(3.0, requires_grad=True), gc.ones(3)),
        "tensor(3., grad_fn=<DotBackward0>)",
    ),
    (
        lambda: gc.arange(3.0, requires_grad=True) + 1,
        "tensor([1., 2., 3.], grad_fn=<AddBackward0>)",
    ),
    (lambda: gc.tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
    (lambda: gc.tensor([1e9, 1.0]), "tensor([1.0000e+09, 1.0000e+00])"),
    (lambda: gc.tensor([1.5, -2.25]), "tensor([ 1.5000, -2.2500])"),
    (lambda: gc.tensor([-1.0, 2.0]), "tensor([-1.,  2.])"),
    (lambda: gc.zeros(3), "tensor([0., 0., 0.])"),
    (lambda: gc.tensor([1.0, math.nan, math.inf]), "tensor([1., nan, inf])"),
    (lambda: gc.tensor([]), "tensor([])"),
    (lambda: gc.tensor([], dtype=gc.int64), "tensor([], dtype=gradcli.int64)"),
    (lambda: gc.zeros(0, 3), "tensor([], size=(0, 3))"),
    (
        lambda: gc.arange(30.0),
        lines(
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,",
            "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,",
            "        28., 29.])",
        ),
    ),
    (
        lambda: gc.arange(14.0, requires_grad=True),
        lines(
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.],",
            "       requires_grad=True)",
        ),
    ),
    (
        lambda: gc.arange(2000.0),
        lines(
            "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,",
            "        1.9990e+03])",
        ),
    ),
    (lambda: gc.zeros(1001), "tensor([0., 0., 0.,  ..., 0., 0., 0.])"),
    (
        lambda: gc.ones(2, 1000),
        lines(
            "tensor([[1., 1., 1.,  ..., 1., 1., 1.],",
            "        [1., 1., 1.,  ..., 1., 1., 1.]])",
        ),
    ),
    (
        lambda: gc.ones(1001, 2),
        lines(
            "tensor([[1., 1.],",
            "        [1., 1.],",
            "        [1., 1.],",
            "        ...,",
            "        [1., 1.],",
            "        [1., 1.],",
            "        [1., 1.]])",
        ),
    ),
]


@pytest.mark.parametrize(
    "make, expected", REPRS, ids=[e.split("\n")[0] for _, e in REPRS]
)
def test_repr_matches_pytorch(make, expected):
    t = make()
    assert repr(t) == expected
    assert str(t) == expected


# -- create_graph: gradients of gradients ---------------------------------------------
def hessian(f, x0: np.ndarray) -> np.ndarray:
    """Row i: the gradient of (df/dx)_i, from two backward passes."""
    n = x0.size
    rows = []
    for i in range(n):
        x = gc.tensor(x0, requires_grad=True)
        f(x).backward(create_graph=True)
        g = x.grad
        assert g.requires_grad and g.grad_fn is not None
        x.grad = None
        g[i].backward()
        rows.append(x.grad.data if x.grad is not None else np.zeros(n))
    return np.array(rows)


def test_hessian_of_sum_of_cubes():
    x0 = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(
        hessian(lambda x: gc.sum(x**3), x0), np.diag(6 * x0), rtol=1e-15
    )


def test_hessian_of_a_quadratic_form():
    a = np.array([[1.0, 2.0, 0.0], [-1.0, 3.0, 0.5], [4.0, 0.0, -2.0]])
    x0 = np.array([0.3, -1.0, 2.0])
    h = hessian(lambda x: gc.dot(x, gc.tensor(a) @ x), x0)
    np.testing.assert_allclose(h, a + a.T, rtol=1e-15)


def test_hessian_of_a_mixed_function():
    # f = x0^2 x1 + sin(x1) x2: H = [[2 x1, 2 x0, 0], [2 x0, -sin(x1) x2, cos(x1)],
    # [0, cos(x1), 0]].
    x0 = np.array([0.7, 1.3, -0.4])
    h = hessian(lambda x: x[0] ** 2 * x[1] + gc.sin(x[1]) * x[2], x0)
    a, b, c = x0
    expected = [
        [2 * b, 2 * a, 0],
        [2 * a, -math.sin(b) * c, math.cos(b)],
        [0, math.cos(b), 0],
    ]
    np.testing.assert_allclose(h, expected, rtol=1e-14, atol=1e-15)


def test_third_derivative():
    x = gc.tensor(2.0, dtype=gc.float64, requires_grad=True)
    (x**4).backward(create_graph=True)
    d1 = x.grad
    assert d1.item() == 32.0  # 4 x^3
    x.grad = None
    d1.backward(create_graph=True)
    d2 = x.grad
    assert d2.item() == 48.0  # 12 x^2
    x.grad = None
    d2.backward()
    assert x.grad.item() == 48.0  # 24 x
