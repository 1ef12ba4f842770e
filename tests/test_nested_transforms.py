"""Nested transforms, gc.autograd.grad and backward(inputs=...) (issue 10, section 3).

Every number is checked against an independent truth: a derivative worked out
by hand, or central finite differences of values the engine computes without
nesting.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gradcli as gc
from gradcli.transforms import grad, hessian, hvp, jacobian, value_and_grad, vjp


def close(actual, expected, tol=1e-7):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, rtol=tol, atol=tol)


def fd(f, x, h=1e-5):
    """Central differences of ``f`` (array in, array out): shape f(x).shape + x.shape."""
    x = np.asarray(x, dtype=float)
    f0 = np.asarray(f(x), dtype=float)
    out = np.zeros(f0.shape + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[(...,) + i] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h)
    return out


def value(t) -> np.ndarray:
    return np.asarray(t.detach().numpy() if isinstance(t, gc.Tensor) else t, dtype=float)


# -- the two examples of the issue --------------------------------------------------
def test_inner_grad_of_a_closure_is_differentiated_by_the_outer_one():
    # d/dx [x * d/dy (x y)] = d/dx x^2 = 2x; the old code gave x (1.5).
    got = grad(lambda x: x * grad(lambda y: x * y)(2.0))(1.5)
    close(got.item(), 3.0)


def test_inner_grad_with_argnums_on_an_outer_variable():
    # d/dx [d/db (a b) at (x, 2)] = d/dx x = 1; the old code gave 0.0.
    got = grad(lambda x: grad(lambda a, b: a * b, argnums=1)(x, 2.0))(3.0)
    close(got.item(), 1.0)
    # The outer variable in the differentiated position: d/dx [2 a b at (2, x)] = 4.
    got = grad(lambda x: grad(lambda a, b: a * b * b, argnums=1)(2.0, x))(3.0)
    close(got.item(), 4.0)


# -- depth ---------------------------------------------------------------------------
def test_grad_of_grad_is_the_second_derivative():
    f = lambda x: gc.sin(x) * x**3
    x = 0.7
    second = -np.sin(x) * x**3 + 6 * x**2 * np.cos(x) + 6 * x * np.sin(x)
    close(grad(grad(f))(x).item(), second)


def test_three_levels():
    # d^3/dx^3 (x e^{2x}) = 8 x e^{2x} + 12 e^{2x}
    x = 0.3
    got = grad(grad(grad(lambda x: x * gc.exp(2 * x))))(x)
    close(got.item(), 8 * x * np.exp(2 * x) + 12 * np.exp(2 * x))
    # With closures at every level: d/dz (x y z^2) = 2 x y z, at z = y: 2 x y^2;
    # d/dy of that: 4 x y, at y = x: 4 x^2; d/dx: 8 x.
    def middle(x):
        return grad(lambda y: grad(lambda z: x * y * z * z)(y))(x)

    close(grad(middle)(1.5).item(), 12.0)


def test_perturbation_confusion():
    # Siskind & Pearlmutter: d/dx [x * d/dy (x + y)] is 1 (d/dy (x + y) = 1), not 2.
    close(grad(lambda x: x * grad(lambda y: x + y)(1.0))(1.0).item(), 1.0)
    close(grad(lambda x: x * grad(lambda y: x + y)(x))(1.0).item(), 1.0)
    # The same with the outer variable shadowed by the inner one's name.
    close(grad(lambda x: x * grad(lambda x2: x + x2)(x))(5.0).item(), 1.0)


def test_hessian_of_a_function_that_calls_grad():
    # f(x) = sum_i d/dy_i sum(sin(y) * x^2 * y), at y = x.
    def f(x):
        return gc.sum(grad(lambda y: gc.sum(gc.sin(y) * x**2 * y))(x))

    def f_np(x):  # by hand: sum(x^2 (cos(x) x + sin(x)))
        return np.sum(x**2 * (np.cos(x) * x + np.sin(x)))

    def grad_np(x):
        return fd(f_np, x)

    x = np.array([0.3, -0.5, 1.1])
    close(value(grad(f)(x)), fd(f_np, x), tol=1e-6)
    close(value(hessian(f)(x)), fd(grad_np, x, h=1e-4), tol=1e-5)
    close(value(hessian(f, method="loop")(x)), fd(grad_np, x, h=1e-4), tol=1e-5)


def test_grad_of_hessian_and_hessian_of_hessian():
    f = lambda x: gc.sum(gc.exp(x[0] * x) * x[1])
    x = np.array([0.2, 0.4])

    def hess_np(x):
        return value(hessian(f)(x))

    # d/dx sum(H(x)): the engine's Hessian (not nested) differenced.
    close(value(grad(lambda x: gc.sum(hessian(f)(x)))(x)),
          fd(lambda x: np.sum(hess_np(x)), x), tol=1e-6)
    # Hessian of sum(H): second differences of the third derivative's sum.
    third = lambda x: value(grad(lambda x: gc.sum(hessian(f)(x)))(x))
    close(value(hessian(lambda x: gc.sum(hessian(f)(x)))(x)), fd(third, x, h=1e-4),
          tol=1e-5)


# -- Jacobians inside a transform: the batched walk with create_graph --------------
A = np.random.default_rng(3).normal(size=(3, 4))
JACOBIAN_FNS = {
    "tanh-matmul": lambda x: gc.tanh(A @ x) * gc.sum(x[:3]),
    "reshape": lambda x: gc.reshape(gc.reshape(x, (2, 2)) @ gc.reshape(x, (2, 2)), (4,)),
    "index": lambda x: x[np.array([0, 2])] * x[1],
    "concatenate": lambda x: gc.concatenate([x * x, gc.sin(x)]),
    "transpose": lambda x: gc.sum(gc.transpose(gc.outer(x, gc.exp(x))), axis=0),
    "stack": lambda x: gc.sum(gc.stack([x * x, gc.sin(x)]), axis=0),
    "softmax": lambda x: gc.softmax(x * x),
    "norm": lambda x: gc.norm(x) * x,
    "solve": lambda x: gc.solve(gc.outer(x, x) + 3 * np.eye(4), x),
    "det": lambda x: gc.det(gc.outer(x, x) + np.eye(4)) * x,
    "broadcast": lambda x: gc.sum(x[:, None] * gc.exp(x[None, :]), axis=1),
    "logsumexp": lambda x: gc.logsumexp(gc.outer(x, x), axis=1),
    "prod": lambda x: gc.prod(gc.outer(x, x) + 2, axis=0),
}


@pytest.mark.parametrize("name", sorted(JACOBIAN_FNS))
@pytest.mark.parametrize("method", ["rows", "loop", "columns"])
def test_jacobian_inside_grad(name, method):
    f = JACOBIAN_FNS[name]
    x = np.array([0.3, -0.4, 0.5, 0.8])
    W = np.random.default_rng(4).normal(size=value(jacobian(f)(x)).shape)

    def weighted(x):
        return gc.sum(jacobian(f, method=method)(x) * W)

    expected = fd(lambda x: np.sum(value(jacobian(f)(x)) * W), x)
    close(value(grad(weighted)(x)), expected, tol=1e-6)


@pytest.mark.parametrize("name", sorted(JACOBIAN_FNS))
def test_hessian_of_a_function_that_calls_jacobian(name):
    # Second derivatives of an attached Jacobian (third of f), against
    # differences of its gradient; then one level more, as a sum.
    f = JACOBIAN_FNS[name]
    x = np.array([0.3, -0.4, 0.5, 0.8])
    W = np.random.default_rng(4).normal(size=value(jacobian(f)(x)).shape)
    s = lambda x: gc.sum(jacobian(f)(x) * W)
    close(value(hessian(s)(x)), fd(lambda x: value(grad(s)(x)), x), tol=1e-6)
    close(value(grad(lambda x: gc.sum(hessian(s)(x)))(x)),
          fd(lambda x: np.sum(value(hessian(s)(x))), x, h=1e-4), tol=1e-4)


def test_jacobian_of_a_function_that_calls_grad_is_the_hessian():
    f = lambda x: gc.sum(gc.sin(x) * gc.exp(x[0] * x))
    x = np.array([0.1, 0.7, -0.3])
    close(value(jacobian(grad(f))(x)), value(hessian(f)(x)), tol=1e-10)
    close(value(jacobian(grad(f), method="loop")(x)), value(hessian(f)(x)), tol=1e-10)
    close(value(hessian(f)(x)), fd(lambda x: value(grad(f)(x)), x), tol=1e-6)


def test_jacobian_chunks_inside_grad():
    # A tiny element cap puts the batched walk's rows in several chunks.
    from gradcli.transforms import _rows

    f = lambda x: gc.sin(x) * gc.sum(x * x)  # no indexing: the batched walk
    x = np.array([0.3, 0.6, 0.9])

    def total(x):
        return gc.sum(_rows(f(x), [x], create_graph=True, max_elements=4)[0])

    expected = fd(lambda x: np.sum(value(jacobian(f)(x))), x)
    close(value(grad(total)(x)), expected, tol=1e-6)


# -- the other transforms, nested ----------------------------------------------------
def test_value_and_grad_vjp_and_hvp_inside_grad():
    # value_and_grad's value stays attached too: d/dx [f(x) * f'(x)] with f = x^3.
    def g(x):
        v, d = value_and_grad(lambda y: y**3)(x)
        return v * d  # 3 x^5

    close(grad(g)(1.2).item(), 15 * 1.2**4)
    # vjp with a closure and an attached cotangent: sum(v * d(x y)/dy) = sum(x v).
    def h(x):
        y, pullback = vjp(lambda y: x * gc.sin(y), gc.tensor([0.5, 1.0], dtype=gc.float64))
        (g,) = pullback(x * x * gc.ones(2, dtype=gc.float64))  # x^3 cos(y)
        return gc.sum(g) + gc.sum(y)  # + x sin(y)

    ys = np.array([0.5, 1.0])
    close(grad(h)(2.0).item(), np.sum(3 * 4.0 * np.cos(ys) + np.sin(ys)))
    # hvp of a closure with an attached v: x^2 * H(sum(y^3)) v, v = x * ones.
    def k(x):
        v = x * gc.ones(2, dtype=gc.float64)
        return gc.sum(hvp(lambda y: gc.sum(y**3) * x * x, [1.0, 2.0], v))

    # hvp = x^3 * 6 y; summed: 6 x^3 (1 + 2) = 18 x^3; d/dx = 54 x^2
    close(grad(k)(0.5).item(), 54 * 0.25)


def test_closure_over_a_tensor_requiring_grad_stays_attached():
    x = gc.tensor(1.5, dtype=gc.float64, requires_grad=True)
    g = grad(lambda y: x * y * y)(2.0)  # 4 x
    assert g.grad_fn is not None
    g.backward()
    close(x.grad.item(), 4.0)
    with gc.no_grad():  # nothing records: a plain, detached value
        g = grad(lambda y: x * y * y)(2.0)
    assert g.grad_fn is None and not g.requires_grad
    close(g.item(), 6.0)


def test_top_level_results_are_still_detached():
    # The inner transforms' own variables, left in the graph of their attached
    # results, are constants to the outer one: it is not itself nested.
    cases = [
        (grad(grad(lambda x: x**3))(2.0), 12.0),
        (hessian(lambda x: gc.sum(grad(lambda y: gc.sum(y**3))(x)))([1.0, 2.0]),
         np.diag([6.0, 6.0])),  # the Hessian of sum(3 x^2)
        (jacobian(grad(lambda x: gc.sum(x**3)))([1.0, 2.0]), np.diag([6.0, 12.0])),
        # vjp's value of a closure, times x: 2 x^2, derivative 4 x.
        (grad(lambda x: vjp(lambda y: x * y, 2.0)[0] * x)(1.5), 6.0),
        (grad(lambda x: value_and_grad(lambda y: x * y * y)(2.0)[0] * x)(1.5), 12.0),
    ]
    for got, expected in cases:
        assert got.grad_fn is None and not got.requires_grad
        close(value(got), expected)


# -- gc.autograd.grad ----------------------------------------------------------------
def test_autograd_grad_with_grad_outputs_leaves_dot_grad_alone():
    a = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    b = gc.tensor([3.0, 4.0], dtype=gc.float64, requires_grad=True)
    ga, gb = gc.autograd.grad(a * b, (a, b), grad_outputs=gc.tensor([1.0, 10.0]))
    close(value(ga), [3.0, 40.0])
    close(value(gb), [1.0, 20.0])
    assert a.grad is None and b.grad is None
    assert ga.grad_fn is None and gb.grad_fn is None
    # Several outputs: the sum of their vector-Jacobian products, in one walk.
    (g,) = gc.autograd.grad([a * b, gc.sum(a * a)], [a],
                            grad_outputs=[np.array([1.0, 1.0]), None])
    close(value(g), [3.0 + 2.0, 4.0 + 4.0])
    # A tensor of the graph, not a leaf, as input: the gradient arriving there.
    h = a * b
    z = gc.sum(h * h)
    gh, ga = gc.autograd.grad(z, [h, a])
    close(value(gh), 2 * np.array([3.0, 8.0]))
    close(value(ga), 2 * np.array([3.0, 8.0]) * [3.0, 4.0])
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        gc.autograd.grad(a * b, a)


def test_autograd_grad_allow_unused():
    a = gc.tensor(2.0, dtype=gc.float64, requires_grad=True)
    b = gc.tensor(3.0, dtype=gc.float64, requires_grad=True)
    msg = ("One of the differentiated Tensors appears to not have been used in the "
           "graph. Set allow_unused=True if this is the desired behavior.")
    with pytest.raises(RuntimeError) as exc:
        gc.autograd.grad(a * a, [a, b])
    assert str(exc.value) == msg
    ga, gb = gc.autograd.grad(a * a, [a, b], allow_unused=True)
    close(ga.item(), 4.0)
    assert gb is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        gc.autograd.grad(a * a, [gc.tensor(1.0)])


def test_autograd_grad_create_graph_gives_second_derivatives():
    x = gc.tensor([0.5, 1.5], dtype=gc.float64, requires_grad=True)
    y = gc.sum(gc.sin(x) * x)
    (g,) = gc.autograd.grad(y, x, create_graph=True)
    assert g.grad_fn is not None
    close(value(g), np.cos([0.5, 1.5]) * [0.5, 1.5] + np.sin([0.5, 1.5]))
    (h,) = gc.autograd.grad(gc.sum(g), x)  # the Hessian's row sums (it is diagonal)
    xs = np.array([0.5, 1.5])
    close(value(h), -np.sin(xs) * xs + 2 * np.cos(xs))
    assert x.grad is None
    # retain_graph defaults to create_graph: without it the graph is freed.
    z = gc.sum(x * x * x)
    gc.autograd.grad(z, x)
    with pytest.raises(RuntimeError, match="second time"):
        gc.autograd.grad(z, x)


def test_backward_inputs_accumulates_only_into_those():
    a = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    b = gc.tensor([3.0, 4.0], dtype=gc.float64, requires_grad=True)
    y = gc.sum(a * b)
    y.backward(inputs=[a], retain_graph=True)
    close(value(a.grad), [3.0, 4.0])
    assert b.grad is None
    y.backward(inputs=a)  # accumulates
    close(value(a.grad), [6.0, 8.0])
    assert b.grad is None
    with pytest.raises(RuntimeError, match="cannot be empty"):
        gc.sum(a * b).backward(inputs=[])
    # A tensor of the graph as input: its own .grad, and the leaves' untouched.
    a.grad = None
    h = a * b
    gc.sum(h * h).backward(inputs=[h])
    close(value(h.grad), 2 * np.array([3.0, 8.0]))
    assert a.grad is None and b.grad is None
    # gc.autograd.backward: several outputs, one walk.
    gc.autograd.backward([gc.sum(a * b), gc.sum(a * a)], inputs=[b])
    close(value(b.grad), [1.0, 2.0])
    assert a.grad is None
    b.grad = None
    gc.autograd.backward([gc.sum(a * b), gc.sum(a * a)])  # every leaf
    close(value(a.grad), [3.0 + 2.0, 4.0 + 4.0])
    close(value(b.grad), [1.0, 2.0])


def test_gradcli_eval_loads_neither_transforms_nor_autograd():
    code = (
        "import sys\nfrom gradcli.cli import main\n"
        "try:\n    main(['eval', 'dot(x,x)', '--x', '1,2'])\n"
        "except SystemExit:\n    pass\n"
        "print([m for m in ('gradcli.transforms', 'gradcli.autograd') if m in sys.modules])"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert p.stdout.strip().splitlines()[-1] == "[]"
