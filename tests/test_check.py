"""gradcli.check: the engine agrees with sympy and finite differences on expressions
and on function files with control flow; a wrong gradient rule is caught and the
right component named; kinks are reported, not failed; skipped symbolic parts leave
finite differences running; large inputs go along random directions."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gradcli as gc
from recording import record
from gradcli.check import (
    check,
    check_hessian,
    check_jacobian,
    expression_function,
    expression_kinks,
    graph_function,
    graph_kinks,
    run_check,
)
from gradcli.engine.graph import keep_args
from gradcli.compute import Target, evaluate
from gradcli.engine.ops import OPS
from gradcli.parse import parse

X4 = np.array([0.3, -1.2, 0.7, 2.1])
POS = np.array([0.5, 1.5, 0.8, 2.5])
A3 = np.array([[2.0, 0.5, -0.3], [0.1, 1.5, 0.4], [-0.2, 0.3, 3.0]])
V3 = np.array([0.4, -0.9, 1.3])


def tree_of(text, names):
    return parse(text, inputs=list(names), ops=OPS)


def engine(tree, inputs, grad_output=None):
    """Value and gradients by the engine, through gradcli's own evaluator."""
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in inputs.items()}
    result = evaluate(Target("", tree=tree), arrays, grad_output=grad_output)
    return result.value, result.grads


def check_expression(text, inputs, grad_output=None, **kw):
    tree = tree_of(text, inputs)
    _, grads = engine(tree, inputs, grad_output)
    return run_check(None, inputs, grads, tree=tree, grad_output=grad_output, **kw)


AGREE = [
    ("2*dot(x,x)", {"x": np.arange(4.0)}),
    ("sum(sin(x) * exp(-x * x) + log(p) * sqrt(p))", {"x": X4, "p": POS}),
    ("sum(sigmoid(x) * tanh(x) + softplus(x) + arctan(x))", {"x": X4}),
    ("logsumexp(x) + norm(x) + std(x) + var(x, ddof=1) + prod(p)", {"x": X4, "p": POS}),
    ("sum(softmax(x) * p) + sum(where(x > 0, x ** 3, 0.5 * x))", {"x": X4, "p": POS}),
    ("x @ A @ x + det(A) + sum(inv(A) @ x)", {"x": V3, "A": A3}),
    (
        "sum(A[0] * x) + sum(concatenate([x, x[::-1]]) ** 2) + trace(A.T @ A)",
        {"x": V3, "A": A3},
    ),
    ("c ** 3 + c * sum(x)", {"c": np.array(1.7), "x": V3}),
]


@pytest.mark.parametrize("text,inputs", AGREE, ids=[t for t, _ in AGREE])
def test_engine_agrees_on_expressions(text, inputs):
    report = check_expression(text, inputs)
    assert report.passed and report.status == "pass", report.lines()
    assert report.symbolic_method == "expression" and not report.skipped
    for c in report.inputs.values():
        assert c.symbolic_passed and c.fd_passed
        assert c.fd_error_estimate < 1e-5
    assert not report.kinks


def test_the_issue_example():
    report = check_expression("2*dot(x,x)", {"x": np.arange(4.0)})
    assert report.formulas == {"x": "∇x = 4*x"}
    c = report.inputs["x"]
    assert c.symbolic_max_error == 0 and c.fd_method == "all 4 components"
    assert c.fd_max_error < 1e-8 and c.fd_max_error <= 2 * c.fd_error_estimate
    lines = report.lines()
    assert lines[0] == "PASS" and "symbolic  ∇x = 4*x" in lines


def test_vector_jacobian_product():
    g = np.array([1.0, -2.0, 0.5])
    report = check_expression("tanh(A @ x) * x", {"A": A3, "x": V3}, grad_output=g)
    assert report.passed and report.quantity == "vjp"
    assert report.inputs["A"].symbolic_passed and report.inputs["x"].fd_passed


def test_detach_is_held_fixed_by_every_method():
    inputs = {"x": V3}
    tree = tree_of("sum(detach(x*x)*x)", inputs)
    _, grads = engine(tree, inputs)
    np.testing.assert_allclose(grads["x"], V3 * V3)  # as the engine computes it
    report = run_check(None, inputs, grads, tree=tree)
    assert (
        report.passed
        and report.inputs["x"].fd_passed
        and report.inputs["x"].symbolic_passed
    )
    f = expression_function(tree, inputs)
    assert float(f({"x": 2 * V3})) == pytest.approx(np.sum(V3 * V3 * 2 * V3))


# -- a wrong rule is caught, and the right component named -----------------------------
def _wrong_sin(g, out, x):
    # Wrong only where x > 1.5: at index 2 of the test point below.
    return g * np.cos(x) * np.where(x > 1.5, 1.001, 1.0)


def test_a_wrong_rule_is_caught_with_the_component(monkeypatch):
    monkeypatch.setattr(OPS["sin"], "vjps", (_wrong_sin,))
    monkeypatch.setattr(OPS["sin"], "local", None)  # the walk then runs the VJP
    x = np.array([0.2, -0.4, 1.9, 0.6])
    report = check_expression("sum(sin(x) * x)", {"x": x})
    assert not report.passed and report.status == "fail"
    assert report.worst.where == "x[2]" and report.worst.index == (2,)
    c = report.inputs["x"]
    assert c.symbolic_passed is False and c.fd_passed is False
    w = report.worst
    assert w.symbolic == pytest.approx(np.sin(1.9) + 1.9 * np.cos(1.9), rel=1e-14)
    assert w.fd == pytest.approx(w.symbolic, rel=1e-8)
    assert w.engine != pytest.approx(w.symbolic, rel=1e-5)
    assert report.lines()[0].startswith("FAIL: x[2]: engine ")
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["passed"] is False and data["worst"]["index"] == [2]


def test_a_wrong_rule_in_a_function_file_is_caught(monkeypatch):
    monkeypatch.setattr(OPS["sin"], "vjps", (_wrong_sin,))
    monkeypatch.setattr(OPS["sin"], "local", None)  # the walk then runs the VJP
    out, ts = record(model, x=np.array([0.5, 1.7, -0.3]), k=np.array(0.8))
    grads = {n: t.grad.data for n, t in ts.items()}
    report = run_check(plain(model), _data(ts), grads, graph=(out, ts))
    assert not report.passed
    assert report.worst.input == "x" and report.worst.index == (1,)


def test_a_small_error_is_caught_by_sympy_alone():
    # 1e-7 relative: inside the noise of finite differences at some points, far
    # outside rtol=1e-8 against sympy.
    x = np.arange(1.0, 5.0)
    report = run_check(
        None, {"x": x}, {"x": 2 * x * (1 + 1e-7)}, tree=tree_of("dot(x,x)", ["x"])
    )
    assert not report.passed and report.inputs["x"].symbolic_passed is False


# -- kinks -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,inputs",
    [
        ("sum(relu(x))", {"x": np.array([0.0, 1.0, -2.0])}),
        ("sum(abs(x - 1))", {"x": np.array([1.0, 3.0])}),
        ("sum(maximum(x, y))", {"x": np.array([1.0, 2.0]), "y": np.array([1.0, 0.0])}),
        ("max(x)", {"x": np.array([2.0, 2.0, 1.0])}),
    ],
)
def test_kinks_are_reported_not_failed(text, inputs):
    report = check_expression(text, inputs)
    assert report.passed and report.status in ("kink", "pass")
    assert report.kinks and report.verdict().split(":")[0] in (
        "KINK (not a failure)",
        "PASS",
    )
    data = report.to_json()
    assert data["passed"] is True and data["kinks"]


def test_a_kink_that_makes_the_methods_disagree():
    report = check_expression("sum(relu(x))", {"x": np.array([0.0, 1.0])})
    assert report.status == "kink" and report.worst.where == "x[0]"
    assert report.kinks == ["relu at column 5: relu'(0) = 0"]
    # Told there is no kink, the same disagreement is a failure.
    tree = tree_of("sum(relu(x))", ["x"])
    bare = run_check(
        None,
        {"x": np.array([0.0, 1.0])},
        {"x": np.array([0.0, 1.0])},
        tree=tree,
        kinks=[],
    )
    assert bare.status == "fail"


def test_kink_detection_helpers():
    tree = tree_of("sum(where(x > y, x, y)) + sum(clip(x, -1, 1))", ["x", "y"])
    found = expression_kinks(
        tree, {"x": np.array([1.0, 0.0]), "y": np.array([1.0, 2.0])}
    )
    assert any("greater" in k for k in found) and any("clip" in k for k in found)
    assert expression_kinks(tree, {"x": np.array([0.5]), "y": np.array([2.0])}) == []
    x = gc.tensor([0.0, 2.0], dtype=gc.float64, requires_grad=True)
    with keep_args():
        y = gc.relu(x).sum()
    assert graph_kinks(y) == ["relu: relu'(0) = 0"]


# -- skipped symbolic parts: finite differences still run ------------------------------
def test_no_sympy_form_skips_the_symbolic_part(monkeypatch):
    monkeypatch.setattr(OPS["sin"], "sym", None)
    report = check_expression("sum(sin(x) * x)", {"x": X4})
    assert report.passed and report.skipped == {"symbolic": "no sympy form for sin"}
    assert report.inputs["x"].fd_passed and report.inputs["x"].symbolic_passed is None
    assert report.formulas == {}
    assert "symbolic: skipped: no sympy form for sin" in report.lines()
    assert report.to_json()["skipped"] == [
        {"part": "symbolic", "why": "no sympy form for sin"}
    ]


def test_a_wrong_sympy_form_is_caught_by_the_value(monkeypatch):
    monkeypatch.setattr(OPS["sin"], "sym", lambda sp, x: sp.cos(x))
    report = check_expression("sum(sin(x))", {"x": X4})
    assert (
        report.passed
        and "a sympy form does not match its op" in report.skipped["symbolic"]
    )


def test_time_budget_skips_sympy_and_keeps_finite_differences():
    rng = np.random.default_rng(3)
    inputs = {"A": rng.standard_normal((8, 8)) + 4 * np.eye(8)}
    start = time.perf_counter()
    # The budget covers the whole check: finite differences (a fraction of a second)
    # run while sympy works on det of 8x8 symbols (minutes).
    report = check_expression("det(A)", inputs, timeout=3)
    assert time.perf_counter() - start < 8
    assert report.skipped == {"symbolic": "sympy took longer than 3 s"}
    assert report.passed and report.inputs["A"].fd_passed


# -- large inputs: random directions ---------------------------------------------------
def test_large_input_takes_random_directions():
    x = np.linspace(-2, 2, 2000)
    report = check_expression("sum(sin(x) * x) + dot(x, x)", {"x": x})
    c = report.inputs["x"]
    assert c.fd_method == "3 random directions" and c.fd_passed
    assert "more than 300 components" in report.skipped["symbolic"]
    assert report.passed


def test_large_input_with_a_closed_form_and_a_wrong_rule(monkeypatch):
    x = np.linspace(-2, 2, 2000)
    report = check_expression("3 * dot(x, x)", {"x": x})
    assert report.passed and report.formulas["x"] == "∇x = 6*x"
    assert report.inputs["x"].symbolic_passed
    monkeypatch.setattr(OPS["sin"], "vjps", (_wrong_sin,))
    monkeypatch.setattr(OPS["sin"], "local", None)  # the walk then runs the VJP
    report = check_expression("sum(sin(x))", {"x": x})
    assert not report.passed and report.worst.index is None
    assert report.worst.where.startswith("x along random direction ")


def test_random_directions_are_seeded():
    x = np.linspace(-1, 1, 500)
    a = check_expression("sum(exp(x))", {"x": x}, seed=5)
    b = check_expression("sum(exp(x))", {"x": x}, seed=5)
    assert a.inputs["x"].fd_max_error == b.inputs["x"].fd_max_error


# -- function files with control flow: graph replay ------------------------------------
def model(x, k):
    y = x * k
    if y.sum() > 0:
        y = gc.tanh(y) * 2 + gc.sin(x)
    else:
        y = y * y
    n = 0
    while (y * y).sum() < 20 and n < 5:
        y = y * 1.5 + x
        n += 1
    w = gc.tensor([0.5, -1.0, 2.0], dtype=gc.float64)
    return (y * w).sum() + gc.logsumexp(x) * k


def plain(fn):
    """The function file's function as f_value: the real code, branches and all."""

    def f(inp):
        with gc.no_grad():
            return fn(
                **{n: gc.tensor(v, dtype=gc.float64) for n, v in inp.items()}
            ).data

    return f


def _data(ts):
    return {n: t.data for n, t in ts.items()}


@pytest.mark.parametrize("x", [V3, -V3])
def test_function_file_with_control_flow(x):
    out, ts = record(model, x=x, k=np.array(0.8))
    grads = {n: t.grad.data for n, t in ts.items()}
    report = run_check(plain(model), _data(ts), grads, graph=(out, ts))
    assert report.passed and report.status == "pass", report.lines()
    assert report.symbolic_method == "graph replay"
    assert any(
        "branch conditions and loop counts contribute no gradient" in n
        for n in report.notes
    )
    # The replayed path as the finite-difference function gives the same verdict.
    again = run_check(None, _data(ts), grads, graph=(out, ts))
    assert again.passed
    assert float(graph_function(out, ts)(_data(ts))) == pytest.approx(float(out.data))


# -- Jacobian and Hessian --------------------------------------------------------------
def test_check_jacobian():
    inputs = {"A": A3, "x": V3}
    tree = tree_of("tanh(A @ x)", inputs)
    d = 1 - np.tanh(A3 @ V3) ** 2
    jac = {"x": d[:, None] * A3, "A": d[:, None, None] * np.eye(3)[:, :, None] * V3}
    report = check_jacobian(None, inputs, jac, tree=tree)
    assert report.passed and report.quantity == "jacobian"
    wrong = dict(jac, x=jac["x"] + np.eye(3) * 1e-4)
    report = check_jacobian(None, inputs, wrong, tree=tree)
    assert not report.passed and report.worst.input == "x"
    assert report.worst.index[0] == report.worst.index[1]


def test_check_hessian():
    inputs = {"x": V3, "A": A3}
    tree = tree_of("x @ A @ x + sum(x ** 4)", inputs)

    def grad_value(inp):
        x, A = inp["x"], inp["A"]
        return {"x": (A + A.T) @ x + 4 * x**3}

    hess = {("x", "x"): A3 + A3.T + np.diag(12 * V3**2)}
    report = check_hessian(grad_value, inputs, hess, tree=tree, wrt=["x"])
    assert report.passed and list(report.inputs) == ["x,x"]
    assert report.inputs["x,x"].symbolic_passed and report.inputs["x,x"].fd_passed
    bad = {("x", "x"): hess[("x", "x")] + np.diag([0, 0, 1e-3])}
    report = check_hessian(grad_value, inputs, bad, tree=tree, wrt=["x"])
    assert not report.passed and report.worst.index == (2, 2)


# -- one entry point for every kind -----------------------------------------------------
def _kinds():
    """Per kind: (expression, derivatives by hand, the same with one component off,
    options, the index of that component) for sin(x) * x**2 at V3."""
    x = V3
    d1 = np.cos(x) * x**2 + 2 * x * np.sin(x)
    d2 = -np.sin(x) * x**2 + 4 * x * np.cos(x) + 2 * np.sin(x)
    g = np.array([0.5, -2.0, 1.5])
    off = np.zeros(3)
    off[1] = 1e-4

    def grad_value(inp):
        y = inp["x"]
        return {"x": np.cos(y) * y**2 + 2 * y * np.sin(y)}

    return {
        "gradient": ("sum(sin(x) * x ** 2)", {"x": d1}, {"x": d1 + off}, {}, (1,)),
        "vjp": ("sin(x) * x ** 2", {"x": g * d1}, {"x": g * d1 + off},
                {"grad_output": g}, (1,)),
        "jacobian": ("sin(x) * x ** 2", {"x": np.diag(d1)},
                     {"x": np.diag(d1) + np.diag(off)}, {}, (1, 1)),
        "hessian": ("sum(sin(x) * x ** 2)", {("x", "x"): np.diag(d2)},
                    {("x", "x"): np.diag(d2 + off)}, {"grad_value": grad_value},
                    (1, 1)),
    }


@pytest.mark.parametrize("kind", ["gradient", "vjp", "jacobian", "hessian"])
def test_one_check_for_every_kind(kind):
    text, right, wrong, options, index = _kinds()[kind]
    tree = tree_of(text, ["x"])
    report = check(kind, {"x": V3}, right, tree=tree, **options)
    assert report.passed and report.status == "pass" and report.quantity == kind
    assert all(c.symbolic_passed and c.fd_passed for c in report.inputs.values())
    report = check(kind, {"x": V3}, wrong, tree=tree, **options)
    assert not report.passed and report.worst.index == index


def test_check_refuses_an_unknown_kind_and_a_stray_grad_output():
    tree = tree_of("sum(x)", ["x"])
    with pytest.raises(ValueError, match="kind must be one of"):
        check("divergence", {"x": V3}, {"x": np.ones(3)}, tree=tree)
    with pytest.raises(ValueError, match="grad_output goes with kind 'vjp'"):
        check("gradient", {"x": V3}, {"x": np.ones(3)}, tree=tree, grad_output=1.0)


# -- the JSON object and odd values ----------------------------------------------------
def test_json_is_strict_with_non_finite_numbers():
    x = np.array([0.0, 4.0])
    with np.errstate(divide="ignore"):  # the engine's own sqrt'(0) = inf
        report = check_expression("sum(sqrt(x))", {"x": x})
    text = json.dumps(report.to_json(), allow_nan=False)
    data = json.loads(text)
    assert set(data) >= {
        "passed",
        "status",
        "inputs",
        "worst",
        "formulas",
        "skipped",
        "kinks",
    }
    assert data["inputs"]["x"]["not_compared"] >= 1


def test_float32_raises_the_tolerance():
    x = np.array([0.3, 0.9], dtype=np.float32)
    tree = tree_of("sum(sin(x) * x)", ["x"])
    grads = {"x": (np.sin(x) + x * np.cos(x)).astype(np.float32)}
    report = run_check(None, {"x": x}, grads, tree=tree)
    assert report.passed and report.rtol > 1e-6
    assert any("float32" in n for n in report.notes)


def test_finite_differences_error_estimate_is_honest():
    x = np.array([0.5, -1.5, 3.0])
    report = run_check(
        None,
        {"x": x},
        {"x": np.exp(x)},
        tree=tree_of("sum(exp(x))", ["x"]),
        symbolic=False,
    )
    c = report.inputs["x"]
    assert c.fd_max_error <= c.fd_error_estimate < 1e-7
    assert report.skipped == {} and report.symbolic_method is None


# -- the sympy worker dies with its parent ---------------------------------------------
def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sympy_worker_dies_when_check_is_terminated():
    # det of an 8x8 matrix of symbols takes sympy far longer than this test waits.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcli", "check", "det(A)", "--A", "randn(8,8)",
         "--seed", "1", "--check-timeout", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while not workers and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert workers, "the sympy worker never started"
        time.sleep(0.3)  # well inside sympy's work
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, workers)), "the sympy worker outlived gradcli"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- detach(...) held fixed by the Hessian's finite differences --------------------------
def test_hessian_finite_differences_hold_detach_fixed():
    # f = sum(c * x * x) with c = x held at the point: the Hessian is diag(2c) by hand.
    x = np.array([1.0, 2.0])
    tree = tree_of("sum(detach(x)*x*x)", ["x"])

    def grad_value(inp):  # what the CLI passes: the engine's gradient, evaluated anew
        return engine(tree, inp)[1]

    hess = {("x", "x"): np.diag(2 * x)}
    report = check_hessian(grad_value, {"x": x}, hess, tree=tree, wrt=["x"])
    assert report.passed and report.status == "pass", report.lines()
    assert report.inputs["x,x"].fd_passed and report.inputs["x,x"].fd_max_error < 1e-6
    wrong = {("x", "x"): np.diag(4 * x)}  # detach(x) differentiated as x
    report = check_hessian(grad_value, {"x": x}, wrong, tree=tree, wrt=["x"])
    assert not report.passed and report.inputs["x,x"].fd_passed is False


# -- the finite-difference error estimate: rounding included -----------------------------
def _derivatives(kind, text, inputs):
    from gradcli import compute

    tgt = Target(text, tree=tree_of(text, inputs))
    d = getattr(compute, kind)(tgt, inputs, wrt=list(inputs))
    if kind == "hessian":
        return {(a, b): blk for a, row in d.blocks.items() for b, blk in row.items()}
    return d.blocks


def test_hessian_noise_does_not_fail_when_engine_and_sympy_agree():
    # sum(softmax(x)) is 1 everywhere: every second derivative is 0 by hand.
    x = np.array([1.0, 2.0, 3.0])
    tree = tree_of("sum(softmax(x))", ["x"])
    hess = _derivatives("hessian", "sum(softmax(x))", {"x": x})
    assert np.allclose(hess[("x", "x")], 0, atol=1e-15)
    report = check_hessian(None, {"x": x}, hess, tree=tree, wrt=["x"])
    assert report.passed and report.status == "pass", report.lines()
    assert report.inputs["x,x"].symbolic_passed and report.inputs["x,x"].fd_passed
    off = {("x", "x"): hess[("x", "x")] + np.diag([0.0, 1e-2, 0.0])}
    report = check_hessian(None, {"x": x}, off, tree=tree, wrt=["x"], symbolic=False)
    assert not report.passed and report.worst.index == (1, 1)


def test_jacobian_of_an_ill_conditioned_inverse_passes_on_the_right_answer():
    x, B = np.arange(1.0, 9.0), np.eye(8)
    M = np.linalg.inv(np.outer(x, x) + B)
    # d inv(M)[i,j] / dB[k,l] = -inv[i,k] inv[l,j], by hand.
    truth = -np.einsum("ik,lj->ijkl", M, M)
    jac = _derivatives("jacobian", "inv(outer(x,x)+B)", {"x": x, "B": B})
    assert np.allclose(jac["B"], truth, rtol=1e-12, atol=1e-15)
    tree = tree_of("inv(outer(x,x)+B)", ["x", "B"])
    report = check_jacobian(None, {"x": x, "B": B}, jac, tree=tree, symbolic=False)
    assert report.passed and report.inputs["B"].fd_passed, report.lines()
    wrong = {"x": jac["x"], "B": jac["B"].copy()}
    wrong["B"][4, 7, 7, 0] *= 1 + 1e-5
    report = check_jacobian(None, {"x": x, "B": B}, wrong, tree=tree, symbolic=False)
    assert not report.passed and report.worst.where == "B[4, 7, 7, 0]"


def test_jacobian_with_large_entries_passes_on_the_right_answer():
    x = np.array([1.0, 2.0, 3.0])
    text = "log_softmax(outer(x,x),axis=0)"
    jac = _derivatives("jacobian", text, {"x": x})
    report = check_jacobian(None, {"x": x}, jac, tree=tree_of(text, ["x"]))
    assert report.passed and report.status == "pass", report.lines()
    assert report.inputs["x"].symbolic_passed and report.inputs["x"].fd_passed


# -- a documented kink on the Hessian path -----------------------------------------------
def test_hessian_at_a_documented_kink_is_reported_not_failed():
    # std(x) at equal values: sqrt has its kink at 0, where std declares std' = 0;
    # the second derivatives do not exist there (sympy: nan), and the engine gives 0.
    x = np.array([1.0, 1.0])
    hess = _derivatives("hessian", "std(x)", {"x": x})
    assert np.array_equal(hess[("x", "x")], np.zeros((2, 2)))
    tree = tree_of("std(x)", ["x"])
    report = check_hessian(None, {"x": x}, hess, tree=tree, wrt=["x"])
    assert report.status == "kink" and report.passed, report.lines()
    assert any(k.startswith("std") for k in report.kinks)
    out, ts = record(lambda x: x.std(), x=x)

    def grad_value(inp):
        o, t = record(lambda x: x.std(), x=inp["x"])
        return {"x": t["x"].grad._data}

    report = check_hessian(grad_value, {"x": x}, hess, graph=(out, ts), wrt=["x"])
    assert report.status == "kink" and report.passed, report.lines()
    assert any(k.startswith("std") for k in report.kinks)


# -- a component no method compared is not a pass ------------------------------------------
def test_a_component_compared_by_nothing_is_inconclusive_not_pass():
    # x**y at x = -2, y = 3: d/dx = y x**(y-1) = 12 by hand; d/dy = x**y log(x) has
    # no real value, so the engine's nan is compared by nothing.
    inputs = {"x": np.array(-2.0), "y": np.array(3.0)}
    value, grads = engine(tree_of("x**y", inputs), inputs)
    assert grads["x"] == 12 and np.isnan(grads["y"])
    report = check_expression("x**y", inputs)
    assert report.status == "inconclusive" and report.passed, report.lines()
    assert report.inputs["x"].symbolic_passed and report.inputs["x"].fd_passed
    assert report.inputs["y"].unchecked == 1 and report.inputs["x"].unchecked == 0
    assert report.verdict().startswith("INCONCLUSIVE: 1 of 2")
    assert report.to_json()["inputs"]["y"]["unchecked"] == 1
    report = check_expression("x**y", inputs, strict=True)
    assert report.status == "inconclusive" and not report.passed


def test_a_pole_is_inconclusive_not_a_failure():
    # x/y at y = 0: the derivatives are infinite; differences across the pole are
    # finite but grow without bound as the step shrinks.
    inputs = {"x": np.array(1.0), "y": np.array(0.0)}
    with np.errstate(divide="ignore"):
        report = check_expression("x/y", inputs)
    assert report.status == "inconclusive" and report.passed, report.lines()
    assert report.inputs["y"].fd_passed is None and report.inputs["y"].unchecked == 1


def test_a_non_finite_engine_derivative_where_one_exists_still_fails():
    # d(x*x)/dx at 2 is 4: an engine nan or inf there is wrong, and finite
    # differences converge to 4, so it fails rather than turning inconclusive.
    tree = tree_of("x*x", ["x"])
    for bad in (np.nan, np.inf):
        report = check("gradient", {"x": np.array(2.0)}, {"x": np.array(bad)},
                       tree=tree, symbolic=False)
        assert report.status == "fail" and not report.passed, report.lines()


# -- one time budget for the whole check -------------------------------------------------
# Each evaluation 3 matrix products, 1,200 of them for x; sympy has no closed matrix
# form for sin of a vector, and 90,300 components are too many one by one.
SLOW = "sum(B@B@B@B)*sum(sin(x))"


def _slow_inputs():
    rng = np.random.default_rng(5)
    return {"B": rng.standard_normal((300, 300)) / 20, "x": np.arange(300.0)}


def test_time_budget_covers_finite_differences_too():
    inputs = _slow_inputs()
    B, x = inputs["B"], inputs["x"]
    B4 = B @ B @ B @ B
    # By hand: d/dx sum(B^4) sum(sin(x)) = sum(B^4) cos(x); the B-gradient is
    # sum(sin(x)) times sum_k (B^k)^T 1 1^T (B^(3-k))^T.
    ones = np.ones_like(B)
    Bp = [np.eye(300), B, B @ B, B @ B @ B]
    gB = sum(Bp[k].T @ ones @ Bp[3 - k].T for k in range(4)) * np.sin(x).sum()
    grads = {"B": gB, "x": B4.sum() * np.cos(x)}
    tree = tree_of(SLOW, inputs)
    start = time.monotonic()
    report = run_check(None, inputs, grads, tree=tree, timeout=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 6, elapsed  # differencing x alone takes far longer
    assert "finite differences" in report.skipped, report.lines()
    assert "time budget of 1 s ran out" in report.skipped["finite differences"]
    assert "no closed matrix form" in report.skipped["symbolic"]
    assert report.status == "inconclusive" and report.passed
    assert report.inputs["x"].unchecked > 0
    report = run_check(None, inputs, grads, tree=tree, timeout=1.0, strict=True)
    assert report.status == "inconclusive" and not report.passed


def test_cli_check_timeout_bounds_the_whole_check_and_strict_fails_it(tmp_path):
    from gradcli.cli import main

    inputs = _slow_inputs()
    np.save(tmp_path / "B.npy", inputs["B"])
    argv = ["check", SLOW, "--B", "@" + str(tmp_path / "B.npy"), "--x", "arange(300)",
            "--check-timeout", "1", "--format", "json"]
    for extra, code in (([], 0), (["--strict"], 1)):
        out = io.StringIO()
        start = time.monotonic()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            with pytest.raises(SystemExit) as exc:
                main(argv + extra)
        assert time.monotonic() - start < 10
        assert (exc.value.code or 0) == code
        data = json.loads(out.getvalue())["check"]
        assert data["status"] == "inconclusive"
        assert any(s["part"] == "finite differences" for s in data["skipped"])


def test_an_engine_nan_where_the_derivative_is_zero_fails_without_sympy():
    # d(sum(softmax(x)))/dx = 0 everywhere, by hand; finite differences see 0 within
    # their noise, which refutes an engine nan even with sympy left out.
    tree = tree_of("sum(softmax(x))", ["x"])
    bad = np.array([0.0, np.nan, 0.0])
    report = check("gradient", {"x": V3}, {"x": bad}, tree=tree, symbolic=False)
    assert report.status == "fail" and not report.passed, report.lines()
    assert report.worst.index == (1,)


def test_finite_differences_at_a_huge_point_do_not_overflow():
    # The step grows with |x|: at x = 4.43e159 its square is past the largest
    # float, where Python's ** raised OverflowError (an internal error, exit 70).
    report = check_expression("x * 1.5", {"x": np.array(4.43e159)})
    c = report.inputs["x"]
    assert c.fd_max_error is not None and c.fd_max_error <= 1e-8 * 1.5


@pytest.mark.parametrize("text, x, error", [
    ("sum(abs(x))", [-1e-6, 1.0], 1e-6),  # by hand: sign(x), [-1, 1]
    ("sum(abs(x))", [-1e-9, 1.0], 1e-3),  # (a step under 1e-9: rounding 3e-5)
    ("sum(relu(x - 0.5))", [0.5000001, 2.0], 1e-6),  # 1 where x > 0.5
])
def test_finite_differences_beside_a_kink_take_a_step_that_does_not_reach_it(
        text, x, error):
    # the step (~6e-6) crossed the kink: finite differences said -0.39 +- 0.17
    # for -1, and the check FAILed though the engine and sympy were right
    report = check_expression(text, {"x": np.array(x)})
    assert report.passed, report.lines()
    c = report.inputs["x"]
    assert c.fd_passed and c.fd_error_estimate < error


def test_a_wrong_gradient_beside_a_kink_still_fails(tmp_path):
    # +1 for abs at -1e-6 (truth -1): the finer step makes the difference exact
    from test_cli import run

    f = tmp_path / "a.py"
    f.write_text("import numpy as np\ndef f(x):\n    return np.sum(np.abs(x))\n"
                 "def df(x):\n    return np.ones_like(x)\n"
                 "def right(x):\n    return np.sign(x)\n")
    assert run("check", f"{f}:f", "--grad", f"{f}:df", "--x=-1e-6,1").code == 1
    assert run("check", f"{f}:f", "--grad", f"{f}:right", "--x=-1e-6,1").code == 0


def test_simplex_fit_finds_a_mix_that_exists_and_none_that_does_not():
    from gradcli.check import _simplex_fit

    rng = np.random.default_rng(0)
    for _ in range(200):  # y built as a mix of G's columns: it is found again
        m, k = int(rng.integers(1, 6)), int(rng.integers(1, 8))
        G = rng.standard_normal((m, k))
        y = G @ rng.dirichlet(np.ones(k))
        w = _simplex_fit(G, y)
        assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
        assert np.max(np.abs(G @ w - y)) < 1e-6
    # the segment from (1, 0) to (0, 2): (0.5, 0.5) lies off it, (0.5, 1) on it
    G = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert np.max(np.abs(G @ _simplex_fit(G, np.array([0.5, 0.5])) - [0.5, 0.5])) > 0.1
    assert np.max(np.abs(G @ _simplex_fit(G, np.array([0.5, 1.0])) - [0.5, 1.0])) < 1e-9
