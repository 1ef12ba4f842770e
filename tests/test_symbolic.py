"""gradcli.symbolic: sympy's derivatives of a parsed tree or a recorded graph agree
with the engine, with hand-derived gradients and with sympy used directly; closed
matrix forms where sympy's matrix calculus finds one; every failure is a skip."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import sympy as sp

import gradcli as gc
from recording import record
from gradcli.engine.graph import keep_args
from gradcli.compute import Target, evaluate
from gradcli.engine.ops import OPS
from gradcli.parse import Call, Var, parse
from gradcli.symbolic import (
    GRAPH_NOTE,
    SymbolicSkip,
    expr_gradient,
    expr_hessian,
    expr_jacobian,
    graph_gradient,
    graph_hessian,
    graph_jacobian,
)

TIMEOUT = 60  # generous: these tests are about answers, test_budget about time

RNG = np.random.default_rng(7)
X4 = np.array([0.3, -1.2, 0.7, 2.1])
POS = np.array([0.5, 1.5, 0.8, 2.5])
UNIT = np.array([0.2, -0.6, 0.45, -0.1])
A3 = np.array([[2.0, 0.5, -0.3], [0.1, 1.5, 0.4], [-0.2, 0.3, 3.0]])
V3 = np.array([0.4, -0.9, 1.3])


def tree_of(text: str, names) -> object:
    return parse(text, inputs=list(names), ops=OPS)


def engine(tree, inputs, wrt=None, grad_output=None):
    """Value and gradients by the engine, through gradcli's own evaluator."""
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in inputs.items()}
    result = evaluate(Target("", tree=tree), arrays, wrt=wrt, grad_output=grad_output)
    return result.value, result.grads


# (expression, inputs): elementwise, reductions, linear algebra, shapes, where, detach
EXPRESSIONS = [
    ("2*dot(x,x)", {"x": X4}),
    ("sum(sin(x) * cos(x) + tan(x / 4))", {"x": X4}),
    (
        "sum(exp(x) - expm1(x) + log(p) + log1p(p) + log2(p) + log10(p))",
        {"x": X4, "p": POS},
    ),
    ("sum(sqrt(p) * square(x) + abs(x) ** 1.5)", {"x": X4, "p": POS}),
    ("sum(arcsin(u) + arccos(u) * arctan(x) + arctanh(u))", {"x": X4, "u": UNIT}),
    (
        "sum(sinh(x) + cosh(x) * tanh(x) + arcsinh(x) + arccosh(p + 1))",
        {"x": X4, "p": POS},
    ),
    ("sum(arctan2(x, p))", {"x": X4, "p": POS}),
    ("sum(sigmoid(x) + relu(x) + softplus(x))", {"x": X4}),
    ("sum(maximum(x, p) + minimum(x, 0.5 * p) + clip(x, -1, 1))", {"x": X4, "p": POS}),
    ("sum(where(x > 0, x ** 3, -x) + sign(x) + floor(x) + ceil(x))", {"x": X4}),
    ("prod(p) + mean(x ** 2) + var(x) + std(x, ddof=1)", {"x": X4, "p": POS}),
    ("max(x) - min(x) + norm(x) + logsumexp(x)", {"x": X4}),
    ("sum(softmax(x) * p) + sum(log_softmax(x) * x)", {"x": X4, "p": POS}),
    ("x @ A @ x", {"x": V3, "A": A3}),
    ("sum(A @ A.T) + trace(A) * dot(x, x)", {"x": V3, "A": A3}),
    ("det(A) + sum(inv(A)) + sum(solve(A, x))", {"x": V3, "A": A3}),
    ("sum(outer(x, x) * A) + inner(x, x)", {"x": V3, "A": A3}),
    (
        "sum(A[0] * x) + A[1, 2] * x[0] + sum(x[::-1] * x) + sum(A[:, 1:])",
        {"x": V3, "A": A3},
    ),
    ("sum(reshape(A, (9,)) ** 2) + sum(transpose(A) @ x)", {"x": V3, "A": A3}),
    ("sum(concatenate([x, 2 * x]) ** 2) + sum(stack([x, x], axis=1))", {"x": V3}),
    (
        "sum(sum(A, axis=0) * x) + sum(max(A, axis=1) * x) + sum(mean(A, 1, True))",
        {"x": V3, "A": A3},
    ),
    (
        "sum(norm(A, axis=0)) + sum(logsumexp(A, axis=1))"
        " + sum(softmax(A, axis=0) * A)",
        {"A": A3},
    ),
    ("c * dot(x, x) + c ** 2 + exp(c)", {"x": V3, "c": np.array(0.7)}),
    ("sum(detach(x * x) * x) + pi * sum(x) + e", {"x": V3}),
]


@pytest.mark.parametrize("text,inputs", EXPRESSIONS, ids=[t for t, _ in EXPRESSIONS])
def test_gradients_agree_with_the_engine(text, inputs):
    tree = tree_of(text, inputs)
    value, grads = engine(tree, inputs)
    sym = expr_gradient(tree, inputs, list(inputs), timeout=TIMEOUT)
    np.testing.assert_allclose(sym.value, value, rtol=1e-12, atol=1e-12)
    for n, g in grads.items():
        np.testing.assert_allclose(sym.values[n], g, rtol=1e-9, atol=1e-12, err_msg=n)
        assert sym.formulas[n]


def test_hand_derived_gradients():
    x, A = V3, A3
    cases = [
        ("sum(x ** 3)", {"x": x}, {"x": 3 * x**2}),
        ("x @ A @ x", {"x": x, "A": A}, {"x": (A + A.T) @ x, "A": np.outer(x, x)}),
        ("logsumexp(x)", {"x": x}, {"x": np.exp(x) / np.sum(np.exp(x))}),
        ("norm(x)", {"x": x}, {"x": x / np.linalg.norm(x)}),
        ("det(A)", {"A": A}, {"A": np.linalg.det(A) * np.linalg.inv(A).T}),
        ("sum(solve(A, x))", {"x": x, "A": A}, {"x": np.linalg.solve(A.T, np.ones(3))}),
        ("var(x)", {"x": x}, {"x": 2 * (x - x.mean()) / 3}),
        ("max(x)", {"x": x}, {"x": np.array([0.0, 0.0, 1.0])}),
    ]
    for text, inputs, expected in cases:
        sym = expr_gradient(
            tree_of(text, inputs), inputs, list(inputs), timeout=TIMEOUT
        )
        for n, g in expected.items():
            np.testing.assert_allclose(
                sym.values[n], g, rtol=1e-12, atol=1e-14, err_msg=text
            )


def test_sympy_used_directly_agrees():
    xs = sp.symbols("a0:4", real=True)
    f = sum(sp.tanh(a) * sp.exp(-(a**2)) + sp.atan(a) / (1 + a**2) for a in xs)
    expected = [float(f.diff(a).subs(dict(zip(xs, X4)))) for a in xs]
    text = "sum(tanh(x) * exp(-x * x) + arctan(x) / (1 + x ** 2))"
    sym = expr_gradient(tree_of(text, ["x"]), {"x": X4}, ["x"], timeout=TIMEOUT)
    np.testing.assert_allclose(sym.values["x"], expected, rtol=1e-14)


def test_hand_built_trees_need_no_parser():
    tree = Call("sum", (Call("mul", (Var("x"), Call("sin", (Var("x"),)))),))
    sym = expr_gradient(tree, {"x": X4}, ["x"], timeout=TIMEOUT)
    np.testing.assert_allclose(
        sym.values["x"], np.sin(X4) + X4 * np.cos(X4), rtol=1e-14
    )


# -- formulas -------------------------------------------------------------------------
def test_closed_matrix_forms():
    x = np.arange(4.0)
    sym = expr_gradient(tree_of("2*dot(x,x)", ["x"]), {"x": x}, ["x"], timeout=TIMEOUT)
    assert sym.formulas["x"] == "∇x = 4*x"
    assert sym.values["x"].tolist() == [0.0, 4.0, 8.0, 12.0]

    inputs = {"x": V3, "A": A3}
    sym = expr_gradient(
        tree_of("x @ A @ x", inputs), inputs, ["x", "A"], timeout=TIMEOUT
    )
    assert sym.formulas["x"] == "∇x = A*x + A.T*x"
    assert sym.formulas["A"] == "∇A = x*x.T"

    inputs = {"x": V3, "c": np.array(2.0), "y": -V3}
    sym = expr_gradient(
        tree_of("c * dot(x, y)", inputs), inputs, list(inputs), timeout=TIMEOUT
    )
    assert sym.formulas["c"] == "∂f/∂c = x.T*y"
    assert sym.formulas["x"] == "∇x = c*y"


def test_vector_jacobian_product_and_its_form():
    g = np.array([1.0, -2.0, 0.5])
    inputs = {"A": A3, "x": V3}
    tree = tree_of("A @ x", inputs)
    sym = expr_gradient(tree, inputs, ["x", "A"], grad_output=g, timeout=TIMEOUT)
    assert sym.quantity == "vjp"
    np.testing.assert_allclose(sym.values["x"], A3.T @ g, rtol=1e-14)
    np.testing.assert_allclose(sym.values["A"], np.outer(g, V3), rtol=1e-14)
    assert sym.formulas["x"] == "∇x(g·f) = A.T*g"
    np.testing.assert_allclose(sym.value, g @ (A3 @ V3))


def test_componentwise_formulas_are_shortened():
    x = np.linspace(0.1, 1.0, 10)
    sym = expr_gradient(
        tree_of("sum(sin(x) * x)", ["x"]), {"x": x}, ["x"], timeout=TIMEOUT
    )
    text = sym.formulas["x"]
    assert text.startswith("∂f/∂x0 = x0*cos(x0) + sin(x0); ∂f/∂x1 = ")
    assert text.endswith("… (10 components)")
    assert "x9" not in text


def test_matrix_and_colliding_names():
    inputs = {"x": V3, "x0": np.array(2.0), "A": A3}
    tree = tree_of("x0 * sum(A @ x) + sum(sin(A))", inputs)
    sym = expr_gradient(tree, inputs, list(inputs), timeout=TIMEOUT)
    assert "x[0]" in sym.formulas["x"]  # x0 is taken by the scalar input
    assert "A_0_0" in sym.formulas["A"]
    _, grads = engine(tree, inputs)
    for n in inputs:
        np.testing.assert_allclose(sym.values[n], grads[n], rtol=1e-12)


def test_detach_is_a_constant_at_the_point():
    sym = expr_gradient(
        tree_of("sum(detach(x*x)*x)", ["x"]), {"x": V3}, ["x"], timeout=TIMEOUT
    )
    np.testing.assert_allclose(sym.values["x"], V3 * V3, rtol=1e-15)
    assert sym.formulas["x"].startswith("∂f/∂x0 = 0.16; ∂f/∂x1 = 0.81")  # constants


def test_wrt_subset_and_jacobian_and_hessian():
    inputs = {"x": V3, "A": A3}
    tree = tree_of("x @ A @ x", inputs)
    sym = expr_gradient(tree, inputs, ["x"], timeout=TIMEOUT)
    assert list(sym.values) == ["x"]
    hess = expr_hessian(tree, inputs, ["x"], timeout=TIMEOUT)
    np.testing.assert_allclose(hess.values["x,x"], A3 + A3.T, rtol=1e-14)
    assert hess.formulas["x,x"].startswith("∂²f/∂x0∂x0 = 2*A_0_0")

    jac = expr_jacobian(tree_of("tanh(A @ x)", inputs), inputs, ["x"], timeout=TIMEOUT)
    y = A3 @ V3
    np.testing.assert_allclose(
        jac.values["x"], (1 - np.tanh(y) ** 2)[:, None] * A3, rtol=1e-13
    )
    assert jac.formulas["x"].startswith("∂f[0]/∂x0 = ")


# -- graph replay ---------------------------------------------------------------------
def model(x, k):
    """A function file's function: a branch, a while loop, a for loop, a helper."""

    def helper(t):
        return gc.tanh(t) * 2

    y = x * k
    if y.sum() > 0:
        y = helper(y) + gc.sin(x)
    else:
        y = y * y
    n = 0
    while (y * y).sum() < 50 and n < 10:  # the loop count depends on x
        y = y * 1.5 + x
        n += 1
    for i in range(2):
        y = gc.maximum(y, -y * 0.5) + x[i]
    w = gc.tensor([0.5, -1.0, 2.0], dtype=gc.float64)  # a constant leaf
    return (y * w).sum() + (y.detach() * x).sum() + gc.logsumexp(x)


@pytest.mark.parametrize("x", [V3, -V3, np.array([2.0, 0.1, -0.3])])
def test_graph_replay_of_a_function_with_control_flow(x):
    out, ts = record(model, x=x, k=np.array(0.8))
    sym = graph_gradient(out, ts, timeout=TIMEOUT)
    assert sym.method == "graph replay" and GRAPH_NOTE in sym.notes
    np.testing.assert_allclose(sym.value, out.data, rtol=1e-12)
    for n, t in ts.items():
        np.testing.assert_allclose(sym.values[n], t.grad.data, rtol=1e-9, atol=1e-12)


def test_graph_replay_unnamed_leaves_are_constants_and_jacobian_hessian():
    x = gc.tensor(V3, dtype=gc.float64, requires_grad=True)
    k = gc.tensor(np.array(1.5), dtype=gc.float64, requires_grad=True)
    with keep_args():
        y = gc.sin(x) * k
        f = (y * y).sum()
    sym = graph_gradient(f, {"x": x}, timeout=TIMEOUT)
    assert list(sym.values) == ["x"]
    np.testing.assert_allclose(
        sym.values["x"], 2 * 1.5**2 * np.sin(V3) * np.cos(V3), rtol=1e-13
    )
    jac = graph_jacobian(y, {"x": x}, timeout=TIMEOUT)
    np.testing.assert_allclose(jac.values["x"], np.diag(1.5 * np.cos(V3)), rtol=1e-13)
    hess = graph_hessian(f, {"x": x, "k": k}, timeout=TIMEOUT)
    np.testing.assert_allclose(
        hess.values["k,k"], 2 * np.sum(np.sin(V3) ** 2), rtol=1e-13
    )
    np.testing.assert_allclose(
        hess.values["x,k"], 4 * 1.5 * np.sin(V3) * np.cos(V3), rtol=1e-13
    )


def test_graph_vjp_of_a_vector_output():
    x = gc.tensor(V3, dtype=gc.float64, requires_grad=True)
    with keep_args():
        y = gc.exp(x) * x
    g = np.array([1.0, 2.0, -1.0])
    sym = graph_gradient(y, {"x": x}, grad_output=g, timeout=TIMEOUT)
    np.testing.assert_allclose(sym.values["x"], g * (np.exp(V3) * (1 + V3)), rtol=1e-13)


# -- skips, never crashes or hangs -----------------------------------------------------
def test_op_without_a_sympy_form_is_a_skip(monkeypatch):
    monkeypatch.setattr(OPS["sin"], "sym", None)
    with pytest.raises(SymbolicSkip, match="no sympy form for sin"):
        expr_gradient(tree_of("sum(sin(x))", ["x"]), {"x": X4}, ["x"], timeout=TIMEOUT)


def test_a_failing_sympy_form_is_a_skip(monkeypatch):
    def broken(sp, x):
        raise RuntimeError("boom")

    monkeypatch.setattr(OPS["sin"], "sym", broken)
    with pytest.raises(
        SymbolicSkip, match="sympy form of sin failed: RuntimeError: boom"
    ):
        expr_gradient(tree_of("sum(sin(x))", ["x"]), {"x": X4}, ["x"], timeout=TIMEOUT)


def test_time_budget():
    A = RNG.standard_normal((8, 8))
    start = time.perf_counter()
    with pytest.raises(SymbolicSkip, match=r"sympy took longer than 0\.3 s"):
        expr_gradient(tree_of("det(A)", ["A"]), {"A": A}, ["A"], timeout=0.3)
    assert time.perf_counter() - start < 3


def test_thread_fallback_where_fork_is_unavailable(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    sym = expr_gradient(tree_of("dot(x, x)", ["x"]), {"x": V3}, ["x"], timeout=TIMEOUT)
    np.testing.assert_allclose(sym.values["x"], 2 * V3)
    with pytest.raises(SymbolicSkip, match="no sympy form for sin"):
        monkeypatch.setattr(OPS["sin"], "sym", None)
        expr_gradient(tree_of("sum(sin(x))", ["x"]), {"x": V3}, ["x"], timeout=TIMEOUT)


def test_graph_without_keep_args_and_non_scalar_output_are_skips():
    x = gc.tensor(V3, dtype=gc.float64, requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(SymbolicSkip, match="without keep_args"):
        graph_gradient(y, {"x": x}, timeout=TIMEOUT)
    with pytest.raises(SymbolicSkip, match=r"shape \(3,\), not a scalar"):
        expr_gradient(tree_of("x * x", ["x"]), {"x": V3}, ["x"], timeout=TIMEOUT)


def test_large_inputs_use_the_closed_form_or_skip():
    x = np.linspace(-1, 1, 1000)
    sym = expr_gradient(
        tree_of("3 * dot(x, x)", ["x"]), {"x": x}, ["x"], timeout=TIMEOUT
    )
    assert sym.formulas["x"] == "∇x = 6*x"
    np.testing.assert_allclose(sym.values["x"], 6 * x, rtol=1e-15)
    with pytest.raises(SymbolicSkip, match="more than 300 components"):
        expr_gradient(tree_of("sum(sin(x))", ["x"]), {"x": x}, ["x"], timeout=TIMEOUT)


def test_sympy_is_imported_only_on_the_check_path():
    code = (
        "import sys, gradcli, gradcli.check, gradcli.parse\n"
        "assert 'sympy' not in sys.modules, 'sympy imported'\n"
        "import gradcli.symbolic\n"
        "assert 'sympy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_root()))


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent
