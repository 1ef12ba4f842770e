"""`gradcli eval` and `gradcli ops` against the contract of issue 3.

Every command runs in-process through ``gradcli.cli.main`` (the one place that
maps errors to exit codes), with stdout and stderr captured separately. Expected
numbers come from outside gradcli: gradients derived by hand and evaluated with
numpy in the test (each one checked against central differences of a numpy
version of the function), values computed with numpy, files written by numpy.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import gradcli
from gradcli.cli import main

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "cli"


# -- running the command line ------------------------------------------------------
@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def run(*argv: str) -> Run:
    """``gradcli ARGV...`` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code
    assert code is not None, "main() returned instead of exiting"
    code = 0 if code is None else code
    return Run(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


def _no_nan_tokens(token: str):
    raise AssertionError(f"non-strict JSON token {token!r}")


def strict_loads(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity tokens."""
    return json.loads(text, parse_constant=_no_nan_tokens)


def ok(*argv: str) -> Run:
    r = run(*argv)
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out[:300]}\nstderr: {r.err}"
    assert "Traceback" not in r.err
    return r


def ok_json(*argv: str) -> dict:
    r = ok(*argv, "--json")
    lines = r.out.splitlines()
    assert len(lines) == 1, f"JSON output is one line, got {r.out[:300]!r}"
    return strict_loads(r.out)


def assert_error(r: Run, code: int, *needles: str) -> str:
    """The error contract: exit code, one error line (+ <= 2 hints), empty stdout."""
    assert r.code == code, (
        f"exit {r.code}, expected {code}\nstdout: {r.out}\nstderr: {r.err}"
    )
    assert r.out == "", f"stdout must be empty on an error, got {r.out!r}"
    assert "Traceback" not in r.err
    assert "internal error" not in r.err
    lines = r.err_lines
    assert lines, "an error prints one line on stderr"
    assert lines[0].startswith("error: "), lines
    assert len(lines) <= 3, f"one error line and at most two hints, got {lines}"
    for line in lines[1:]:
        assert line.startswith("hint: "), lines
    for needle in needles:
        assert needle in r.err, f"{needle!r} not in {r.err!r}"
    return lines[0]


def arr(obj) -> np.ndarray:
    """A JSON number-or-nested-list (with "nan"/"inf"/"-inf" strings) as float64."""

    def conv(v):
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, str):
            return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v]
        return v

    return np.array(conv(obj), dtype=np.float64)


def value_text(a) -> str:
    """VALUE syntax for an input, written here (not by gradcli)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return repr(float(a))
    if a.ndim == 1 and a.size >= 2:
        return ",".join(repr(float(v)) for v in a)
    if a.ndim == 2 and a.shape[0] >= 2:
        return ";".join(",".join(repr(float(v)) for v in row) for row in a)
    return json.dumps(a.tolist())


def numeric_grad(f, inputs: dict[str, np.ndarray], name: str, h: float = 1e-6):
    """Central differences of the numpy function ``f`` with respect to ``name``."""
    x = inputs[name].astype(np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (float(f(**{**inputs, name: xp})) - float(f(**{**inputs, name: xm}))) / (
            2 * h
        )
    return g


# -- expressions with hand-derived gradients -----------------------------------------
def _softmax(x):
    z = np.exp(x - x.max())
    return z / z.sum()


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


X4 = np.array([0.0, 1.0, 2.0, 3.0])
XV = np.array([0.3, -1.2, 0.7])
W3 = np.array([1.0, 2.0, -0.5])
XP = np.array([0.5, 1.5, 2.5])
A2 = np.array([[1.0, 2.0], [3.0, 4.0]])
A3 = np.array([[2.0, -1.0, 0.5], [0.3, 1.5, -0.7], [1.1, 0.2, 2.4]])
B3 = A3.T + 1.0
A23 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])

# (expression, inputs, numpy value, {input: hand-derived gradient})
CASES = [
    ("2*dot(x,x)", {"x": X4}, lambda x: 2 * x @ x, {"x": lambda x: 4 * x}),
    (
        "x @ A @ x",
        {"x": np.array([1.0, 2.0]), "A": A2},
        lambda x, A: x @ A @ x,
        {"x": lambda x, A: (A + A.T) @ x, "A": lambda x, A: np.outer(x, x)},
    ),
    ("sum(exp(x))", {"x": XV}, lambda x: np.exp(x).sum(), {"x": lambda x: np.exp(x)}),
    (
        "norm(x)",
        {"x": XV},
        lambda x: np.sqrt(x @ x),
        {"x": lambda x: x / np.sqrt(x @ x)},
    ),
    (
        "sum(where(x>0, x**2, -x))",
        {"x": np.array([-1.5, 0.5, 2.0])},
        lambda x: np.where(x > 0, x**2, -x).sum(),
        {"x": lambda x: np.where(x > 0, 2 * x, -1.0)},
    ),
    (
        "sum(softmax(x)*w)",
        {"x": XV, "w": W3},
        lambda x, w: _softmax(x) @ w,
        {
            "x": lambda x, w: _softmax(x) * (w - _softmax(x) @ w),
            "w": lambda x, w: _softmax(x),
        },
    ),
    (
        "logsumexp(x)",
        {"x": XV},
        lambda x: np.log(np.exp(x).sum()),
        {"x": lambda x: _softmax(x)},
    ),
    (
        "sum(log_softmax(x)*w)",
        {"x": XV, "w": W3},
        lambda x, w: (np.log(_softmax(x)) * w).sum(),
        {
            "x": lambda x, w: w - _softmax(x) * w.sum(),
            "w": lambda x, w: np.log(_softmax(x)),
        },
    ),
    (
        "sum(x[1:3]**2)",
        {"x": X4 + 0.5},
        lambda x: (x[1:3] ** 2).sum(),
        {"x": lambda x: np.array([0.0, 2 * x[1], 2 * x[2], 0.0])},
    ),
    (
        "sum(x[::-1] * w)",
        {"x": XV, "w": W3},
        lambda x, w: x[::-1] @ w,
        {"x": lambda x, w: w[::-1], "w": lambda x, w: x[::-1]},
    ),
    (
        "sum(x[[0, 2]])",
        {"x": X4},
        lambda x: x[0] + x[2],
        {"x": lambda x: np.array([1.0, 0.0, 1.0, 0.0])},
    ),
    (
        "x[0]*x[1]",
        {"x": XV},
        lambda x: x[0] * x[1],
        {"x": lambda x: np.array([x[1], x[0], 0.0])},
    ),
    (
        "A[0, 1] * 3",
        {"A": A2},
        lambda A: 3 * A[0, 1],
        {"A": lambda A: np.array([[0.0, 3.0], [0.0, 0.0]])},
    ),
    (
        "sum(A[:, 1]*w)",
        {"A": A3, "w": W3},
        lambda A, w: A[:, 1] @ w,
        {
            "A": lambda A, w: np.stack([np.zeros(3), w, np.zeros(3)], axis=1),
            "w": lambda A, w: A[:, 1],
        },
    ),
    (
        "sum(A.T @ x)",
        {"A": A3, "x": XV},
        lambda A, x: (A.T @ x).sum(),
        {"A": lambda A, x: np.outer(x, np.ones(3)), "x": lambda A, x: A.sum(axis=1)},
    ),
    (
        "sum(transpose(A) * B)",
        {"A": A3, "B": B3},
        lambda A, B: (A.T * B).sum(),
        {"A": lambda A, B: B.T, "B": lambda A, B: A.T},
    ),
    (
        "sum(reshape(x, (2, 2)) @ v)",
        {"x": np.array([1.0, 2.0, 3.0, 4.0]), "v": np.array([0.5, -1.0])},
        lambda x, v: (x.reshape(2, 2) @ v).sum(),
        {
            "x": lambda x, v: np.array([v[0], v[1], v[0], v[1]]),
            "v": lambda x, v: x.reshape(2, 2).sum(axis=0),
        },
    ),
    (
        "dot(concatenate([x, y]), w)",
        {
            "x": np.array([1.0, 2.0]),
            "y": np.array([3.0, 4.0, 5.0]),
            "w": np.array([0.5, 1.0, -1.0, 2.0, 3.0]),
        },
        lambda x, y, w: np.concatenate([x, y]) @ w,
        {
            "x": lambda x, y, w: w[:2],
            "y": lambda x, y, w: w[2:],
            "w": lambda x, y, w: np.concatenate([x, y]),
        },
    ),
    (
        "sum(stack([x, y]) ** 2)",
        {"x": XV, "y": W3},
        lambda x, y: (x**2).sum() + (y**2).sum(),
        {"x": lambda x, y: 2 * x, "y": lambda x, y: 2 * y},
    ),
    (
        "sum(sin(x)*x)",
        {"x": XV},
        lambda x: (np.sin(x) * x).sum(),
        {"x": lambda x: np.cos(x) * x + np.sin(x)},
    ),
    ("mean(x**2)", {"x": XV}, lambda x: (x**2).mean(), {"x": lambda x: 2 * x / x.size}),
    (
        "prod(x)",
        {"x": np.array([1.5, 2.0, -0.5])},
        lambda x: x.prod(),
        {"x": lambda x: x.prod() / x},
    ),
    (
        "sum(tanh(x))",
        {"x": XV},
        lambda x: np.tanh(x).sum(),
        {"x": lambda x: 1 - np.tanh(x) ** 2},
    ),
    (
        "sum(sigmoid(x))",
        {"x": XV},
        lambda x: _sigmoid(x).sum(),
        {"x": lambda x: _sigmoid(x) * (1 - _sigmoid(x))},
    ),
    (
        "sum(softplus(x))",
        {"x": XV},
        lambda x: np.log1p(np.exp(x)).sum(),
        {"x": lambda x: _sigmoid(x)},
    ),
    (
        "sum(arctan(x))",
        {"x": XV},
        lambda x: np.arctan(x).sum(),
        {"x": lambda x: 1 / (1 + x**2)},
    ),
    ("sum(x**3)/3", {"x": XV}, lambda x: (x**3).sum() / 3, {"x": lambda x: x**2}),
    ("sum(log(x))", {"x": XP}, lambda x: np.log(x).sum(), {"x": lambda x: 1 / x}),
    (
        "sum(sqrt(x))",
        {"x": XP},
        lambda x: np.sqrt(x).sum(),
        {"x": lambda x: 0.5 / np.sqrt(x)},
    ),
    (
        "sum(x ** y)",
        {"x": XP, "y": W3},
        lambda x, y: (x**y).sum(),
        {"x": lambda x, y: y * x ** (y - 1), "y": lambda x, y: x**y * np.log(x)},
    ),
    (
        "var(x)",
        {"x": XV},
        lambda x: x.var(),
        {"x": lambda x: 2 * (x - x.mean()) / x.size},
    ),
    (
        "std(x)",
        {"x": XV},
        lambda x: x.std(),
        {"x": lambda x: (x - x.mean()) / (x.size * x.std())},
    ),
    ("sum(abs(x))", {"x": XV}, lambda x: np.abs(x).sum(), {"x": lambda x: np.sign(x)}),
    (
        "sum(relu(x))",
        {"x": XV},
        lambda x: np.maximum(x, 0).sum(),
        {"x": lambda x: (x > 0).astype(float)},
    ),
    (
        "sum(clip(x, -1, 1))",
        {"x": np.array([-2.0, 0.5, 3.0])},
        lambda x: np.clip(x, -1, 1).sum(),
        {"x": lambda x: np.array([0.0, 1.0, 0.0])},
    ),
    (
        "sum(maximum(x, y))",
        {"x": np.array([1.0, 5.0, 2.0]), "y": np.array([3.0, 1.0, 4.0])},
        lambda x, y: np.maximum(x, y).sum(),
        {
            "x": lambda x, y: (x > y).astype(float),
            "y": lambda x, y: (y > x).astype(float),
        },
    ),
    (
        "max(x)",
        {"x": XV},
        lambda x: x.max(),
        {"x": lambda x: (x == x.max()).astype(float)},
    ),
    (
        "sum(sum(A, axis=0)**2)",
        {"A": A3},
        lambda A: (A.sum(axis=0) ** 2).sum(),
        {"A": lambda A: np.broadcast_to(2 * A.sum(axis=0), A.shape)},
    ),
    (
        "sum(mean(A, axis=1, keepdims=True) * A)",
        {"A": A23},
        lambda A: (A.mean(axis=1, keepdims=True) * A).sum(),
        {"A": lambda A: np.broadcast_to(2 * A.mean(axis=1, keepdims=True), A.shape)},
    ),
    (
        "sum(x + A)",
        {"x": XV, "A": A23},
        lambda x, A: (x + A).sum(),
        {"x": lambda x, A: np.full(3, 2.0), "A": lambda x, A: np.ones((2, 3))},
    ),
    (
        "sum(outer(x, y))",
        {"x": XV, "y": np.array([2.0, -0.5])},
        lambda x, y: np.outer(x, y).sum(),
        {"x": lambda x, y: np.full(3, y.sum()), "y": lambda x, y: np.full(2, x.sum())},
    ),
    (
        "trace(A @ B)",
        {"A": A3, "B": B3},
        lambda A, B: np.trace(A @ B),
        {"A": lambda A, B: B.T, "B": lambda A, B: A.T},
    ),
    (
        "det(A)",
        {"A": A3},
        lambda A: np.linalg.det(A),
        {"A": lambda A: np.linalg.det(A) * np.linalg.inv(A).T},
    ),
    (
        "sum(inv(A))",
        {"A": A3},
        lambda A: np.linalg.inv(A).sum(),
        {"A": lambda A: -np.linalg.inv(A).T @ np.ones((3, 3)) @ np.linalg.inv(A).T},
    ),
    (
        "dot(w, solve(A, b))",
        {"w": W3, "A": A3, "b": XV},
        lambda w, A, b: w @ np.linalg.solve(A, b),
        {
            "w": lambda w, A, b: np.linalg.solve(A, b),
            "A": lambda w, A, b: (
                -np.outer(np.linalg.solve(A.T, w), np.linalg.solve(A, b))
            ),
            "b": lambda w, A, b: np.linalg.solve(A.T, w),
        },
    ),
    # negative literals and arithmetic between literals
    ("sum(x + -1)", {"x": XV}, lambda x: (x - 1).sum(), {"x": lambda x: np.ones(3)}),
    ("sum(x**-1)", {"x": XP}, lambda x: (1 / x).sum(), {"x": lambda x: -1 / x**2}),
    (
        "sum(-2*x*(1+2))",
        {"x": XV},
        lambda x: -6 * x.sum(),
        {"x": lambda x: np.full(3, -6.0)},
    ),
    (
        "sum(maximum(x, -1))",
        {"x": np.array([-2.0, 0.5, 3.0])},
        lambda x: np.maximum(x, -1).sum(),
        {"x": lambda x: np.array([0.0, 1.0, 1.0])},
    ),
    (
        "x*2**0.5",
        {"x": np.array(3.0)},
        lambda x: x * math.sqrt(2),
        {"x": lambda x: np.array(math.sqrt(2))},
    ),
    # a target starting with '-' is an expression, whatever letters follow
    (
        "-tanh(x)",
        {"x": np.array(0.5)},
        lambda x: -np.tanh(x),
        {"x": lambda x: -(1 - np.tanh(x) ** 2)},
    ),
    (
        "-sum(h*h)",
        {"h": np.array([1.0, 2.0])},
        lambda h: -(h @ h),
        {"h": lambda h: -2 * h},
    ),
    (
        "dot(2, x)",
        {"x": np.array(3.0)},
        lambda x: 2 * x,
        {"x": lambda x: np.array(2.0)},
    ),
    (
        "e*x + pi",
        {"x": np.array(0.7)},
        lambda x: math.e * x + math.pi,
        {"x": lambda x: np.array(math.e)},
    ),
    (
        "x/y",
        {"x": np.array(3.0), "y": np.array(4.0)},
        lambda x, y: x / y,
        {"x": lambda x, y: 1 / y, "y": lambda x, y: -x / y**2},
    ),
    (
        "-x + +y",
        {"x": np.array(3.0), "y": np.array(4.0)},
        lambda x, y: -x + y,
        {"x": lambda x, y: np.array(-1.0), "y": lambda x, y: np.array(1.0)},
    ),
    (
        "arctan2(y, x)",
        {"y": np.array(1.0), "x": np.array(2.0)},
        lambda y, x: np.arctan2(y, x),
        {"y": lambda y, x: x / (x**2 + y**2), "x": lambda y, x: -y / (x**2 + y**2)},
    ),
]


@pytest.mark.parametrize("expr, inputs, f, grads", CASES, ids=[c[0] for c in CASES])
def test_hand_derived_gradients_are_right(expr, inputs, f, grads):
    # The table itself first: each hand-derived gradient agrees with central
    # differences of the numpy function (so a typo here cannot pass silently).
    for name, g in grads.items():
        np.testing.assert_allclose(
            g(**inputs),
            numeric_grad(f, inputs, name),
            rtol=1e-6,
            atol=1e-6,
            err_msg=f"test table: d/d{name}",
        )


@pytest.mark.parametrize("expr, inputs, f, grads", CASES, ids=[c[0] for c in CASES])
def test_expression_value_and_gradient(expr, inputs, f, grads):
    argv = ["eval", expr]
    for name, a in inputs.items():
        argv += [f"--{name}", value_text(a)]
    obj = ok_json(*argv)
    assert obj["kind"] == "expression"
    assert obj["target"] == expr
    np.testing.assert_allclose(arr(obj["value"]), f(**inputs), rtol=1e-12, atol=1e-13)
    assert obj["shape"] == []
    assert list(obj["grad"]) == list(inputs), "default --wrt: every input, in order"
    for name, g in grads.items():
        got = arr(obj["grad"][name])
        assert got.shape == inputs[name].shape, f"grad.{name} has the input's shape"
        np.testing.assert_allclose(
            got, g(**inputs), rtol=1e-10, atol=1e-12, err_msg=f"grad.{name} of {expr}"
        )


def test_first_readme_command_plain():
    r = ok("eval", "2*dot(x,x)", "--x", "0,1,2,3")
    # not a terminal: plain is the default format
    assert r.out == "value 28\ngrad.x 0,4,8,12\n"
    assert r.err == ""


# -- the JSON object ---------------------------------------------------------------
def test_json_schema_keys_and_types():
    obj = ok_json("eval", "sum(A @ x)", "--A", "1,2;3,4", "--x", "5,6")
    for key in (
        "schema",
        "target",
        "kind",
        "inputs",
        "value",
        "shape",
        "grad",
        "warnings",
        "notes",
    ):
        assert key in obj, key
    assert obj["schema"] == 1
    assert obj["target"] == "sum(A @ x)"
    assert obj["kind"] == "expression"
    assert obj["inputs"] == {"A": [[1.0, 2.0], [3.0, 4.0]], "x": [5.0, 6.0]}
    A, x = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0])
    assert obj["value"] == float((A @ x).sum())
    assert obj["shape"] == []
    np.testing.assert_array_equal(arr(obj["grad"]["A"]), np.outer(np.ones(2), x))
    np.testing.assert_array_equal(arr(obj["grad"]["x"]), A.sum(axis=0))
    assert obj["warnings"] == [] and obj["notes"] == []


def test_json_flag_equals_format_json():
    a = run("eval", "2*dot(x,x)", "--x", "0,1,2,3", "--json")
    b = run("eval", "2*dot(x,x)", "--x", "0,1,2,3", "--format", "json")
    assert a.code == b.code == 0
    assert a.out == b.out
    assert strict_loads(a.out)["grad"] == {"x": [0.0, 4.0, 8.0, 12.0]}


def test_json_carries_full_precision_regardless_of_precision():
    obj = strict_loads(ok("eval", "x/3", "--x", "1", "--json", "--precision", "2").out)
    assert obj["value"] == 1 / 3
    assert obj["grad"]["x"] == 1 / 3


def test_json_non_scalar_value_and_shape():
    obj = ok_json("eval", "A * 2", "--A", "[[[1,2]],[[3,4]]]", "--grad-output", "ones")
    assert obj["shape"] == [2, 1, 2]
    assert obj["value"] == [[[2.0, 4.0]], [[6.0, 8.0]]]
    assert obj["grad"]["A"] == [[[2.0, 2.0]], [[2.0, 2.0]]]


@pytest.mark.parametrize(
    "expr, x, value, grad",
    [
        ("log(x)", "0", "-inf", "inf"),
        ("exp(x)", "1000", "inf", "inf"),
        ("-exp(x)", "1000", "-inf", "-inf"),
        ("x/x", "0", "nan", "nan"),
    ],
)
def test_json_non_finite_numbers_are_strings(expr, x, value, grad):
    r = ok("eval", expr, "--x", x, "--json")
    obj = strict_loads(r.out)  # raises on NaN/Infinity tokens
    assert obj["value"] == value
    assert obj["grad"]["x"] == grad
    assert obj["warnings"], "a non-finite result is listed in warnings"
    assert all(w in r.err for w in obj["warnings"]), (
        "the JSON warnings are those on stderr"
    )


def test_json_non_finite_inside_arrays():
    obj = ok_json("eval", "log(x)", "--x", "0,1,-1", "--grad-output", "ones")
    assert obj["value"][0] == "-inf"
    assert obj["value"][1] == 0.0
    assert obj["value"][2] == "nan"


# -- plain output --------------------------------------------------------------------
@pytest.mark.parametrize(
    "a",
    [
        np.array(0.1) + np.array(0.2),
        np.array([0.1, -2.5e-300, 1e22, -0.0]),
        np.array([[1 / 3, 2.0], [math.pi, -7.25]]),
        np.array([7.0]),
        np.array([[1.5, 2.5]]),
        np.array([[0.1], [0.2]]),
        np.array([[[1.0, 2.0]], [[3.0, 4.0]]]),
    ],
    ids=["scalar", "vector", "matrix", "one-element", "one-row", "column", "3-d"],
)
def test_plain_output_round_trips_as_input(a):
    """value and grad lines of plain output read back (as inputs) to the same floats."""
    args = ["eval", "x*1", "--x", json.dumps(a.tolist()), "--format", "plain"]
    if a.ndim:
        args += ["--grad-output", "ones"]
    lines = ok(*args).out.splitlines()
    assert lines[0].startswith("value ") and lines[1].startswith("grad.x ")
    value_text_out = lines[0].removeprefix("value ")
    grad_text_out = lines[1].removeprefix("grad.x ")
    assert " " not in value_text_out, "one token, a shell word"
    back = ok_json(
        "eval",
        "y*1",
        "--y",
        value_text_out,
        *(["--grad-output", "ones"] if a.ndim else []),
    )
    got = arr(back["inputs"]["y"])
    assert got.shape == a.shape
    np.testing.assert_array_equal(got, a)
    assert np.array_equal(np.signbit(got), np.signbit(a)), "-0 stays -0"
    g = ok_json(
        "eval",
        "y*1",
        "--y",
        grad_text_out,
        *(["--grad-output", "ones"] if a.ndim else []),
    )
    np.testing.assert_array_equal(arr(g["inputs"]["y"]), np.ones_like(a))


def test_plain_lines():
    r = ok("eval", "x @ A @ x", "--x", "1,2", "--A", "1,2;3,4", "--format", "plain")
    # value 27; grad x = (A + A.T) x = [12, 21]; grad A = outer(x, x)
    assert r.out.splitlines() == ["value 27", "grad.x 12,21", "grad.A 1,2;2,4"]


def test_precision_rounds_plain_and_table_only():
    r = ok("eval", "pi*x", "--x", "1", "--precision", "3", "--format", "plain")
    assert r.out.splitlines() == ["value 3.14", "grad.x 3.14"]
    r = ok("eval", "pi*x", "--x", "1", "--precision", "3", "--format", "table")
    assert "3.14" in r.out and "3.1415" not in r.out
    r = ok("eval", "pi*x", "--x", "1", "--format", "plain")
    assert r.out.splitlines()[0] == f"value {math.pi!r}"


@pytest.mark.parametrize("bad", ["0", "18", "-1", "abc"])
def test_precision_out_of_range_is_usage_error(bad):
    assert_error(run("eval", "x", "--x", "1", "--precision", bad), 2, "--precision")


# -- table output --------------------------------------------------------------------
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _colour_codes(text: str) -> list[str]:
    """SGR parameters that set a foreground or background colour."""
    found = []
    for params in _SGR.findall(text):
        for p in params.split(";"):
            if p and (30 <= int(p) <= 49 or 90 <= int(p) <= 107):
                found.append(p)
    return found


def test_table_output():
    r = ok("eval", "2*dot(x,x)", "--x", "0,1,2,3", "--format", "table")
    assert "2*dot(x,x)" in r.out
    assert "28" in r.out
    assert re.search(r"0,? +4,? +8,? +12|0,4,8,12", r.out), r.out
    assert "\x1b[" not in r.out, "no escape codes when stdout is not a terminal"


def test_table_never_coloured_with_no_color(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    r = ok("eval", "2*dot(x,x)", "--x", "0,1,2,3", "--format", "table")
    assert "28" in r.out
    assert _colour_codes(r.out) == []


# -- VALUE forms ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.5", np.array(0.5)),
        ("-1e-3", np.array(-1e-3)),
        ("3", np.array(3.0)),
        ("0,1,2,3", np.array([0.0, 1.0, 2.0, 3.0])),
        (" 1 , 2 ", np.array([1.0, 2.0])),
        ("1,2;3,4", np.array([[1.0, 2.0], [3.0, 4.0]])),
        ("[[1,2],[3,4]]", np.array([[1.0, 2.0], [3.0, 4.0]])),
        ("[[[1],[2]],[[3],[4]]]", np.arange(1.0, 5.0).reshape(2, 2, 1)),
        ("[5]", np.array([5.0])),
        ("arange(4)", np.arange(4.0)),
        ("arange(1,3)", np.array([1.0, 2.0])),
        ("arange(0,1,0.25)", np.array([0.0, 0.25, 0.5, 0.75])),
        ("linspace(0,1,5)", np.array([0.0, 0.25, 0.5, 0.75, 1.0])),
        ("zeros(3)", np.zeros(3)),
        ("ones(2,3)", np.ones((2, 3))),
        ("eye(3)", np.eye(3)),
    ],
)
def test_value_forms(text, expected):
    obj = ok_json("eval", "sum(x*x)", "--x", text)
    got = arr(obj["inputs"]["x"])
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert obj["value"] == float((expected * expected).sum())
    np.testing.assert_array_equal(arr(obj["grad"]["x"]), 2 * expected)


def test_integers_are_promoted_to_float64():
    obj = ok_json("eval", "x/2", "--x", "3")
    assert obj["value"] == 1.5
    obj = ok_json("eval", "x/y", "--x", "1", "--y", "3")
    assert obj["value"] == 1 / 3  # float64, not float32 and not integer division


def test_name_equals_value_form():
    a = ok_json("eval", "2*dot(x,x)", "--x=0,1,2,3")
    b = ok_json("eval", "2*dot(x,x)", "--x", "0,1,2,3")
    assert a == b
    assert a["grad"]["x"] == [0.0, 4.0, 8.0, 12.0]


def test_negative_values_are_values_not_options():
    obj = ok_json("eval", "x*y", "--x", "-2", "--y", "-1e-3")
    assert obj["value"] == (-2) * (-1e-3)
    assert obj["grad"] == {"x": -1e-3, "y": -2.0}


def test_var_for_names_colliding_with_options():
    obj = ok_json("eval", "json*2 + sum(wrt)", "--var", "json=3", "--var", "wrt=1,2")
    assert obj["inputs"] == {"json": 3.0, "wrt": [1.0, 2.0]}
    assert obj["value"] == 9.0
    assert obj["grad"] == {"json": 2.0, "wrt": [1.0, 1.0]}


def test_var_and_name_options_mix():
    obj = ok_json("eval", "x*debug", "--x", "2", "--var", "debug=5")
    assert obj["value"] == 10.0
    assert obj["grad"] == {"x": 5.0, "debug": 2.0}


def test_randn_with_seed_is_reproducible():
    a = ok_json("eval", "sum(x*x)", "--x", "randn(50)", "--seed", "7")
    b = ok_json("eval", "sum(x*x)", "--x", "randn(50)", "--seed", "7")
    c = ok_json("eval", "sum(x*x)", "--x", "randn(50)", "--seed", "8")
    xa = arr(a["inputs"]["x"])
    assert a["inputs"] == b["inputs"]
    assert a["inputs"] != c["inputs"]
    assert xa.shape == (50,) and len(set(xa.tolist())) == 50
    assert np.all(np.abs(xa) < 6), "standard normal draws"
    np.testing.assert_allclose(a["value"], (xa * xa).sum(), rtol=1e-14)
    np.testing.assert_allclose(arr(a["grad"]["x"]), 2 * xa, rtol=1e-15)


def test_randn_shape():
    obj = ok_json("eval", "sum(x)", "--x", "randn(2,3)", "--seed", "1")
    assert arr(obj["inputs"]["x"]).shape == (2, 3)


# -- @file inputs --------------------------------------------------------------------
M = np.array([[1.5, -2.0, 0.25], [3.0, 4.0, -0.5]])


def _check_file_input(tmp_path, name, expected):
    obj = ok_json("eval", "sum(x*x)", "--x", f"@{tmp_path / name}")
    got = arr(obj["inputs"]["x"])
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(arr(obj["grad"]["x"]), 2 * expected)


def test_npy_file(tmp_path):
    np.save(tmp_path / "m.npy", M)
    _check_file_input(tmp_path, "m.npy", M)


def test_npy_integer_file_is_promoted(tmp_path):
    np.save(tmp_path / "i.npy", np.array([1, 2, 3], dtype=np.int32))
    obj = ok_json(
        "eval", "x/2", "--x", f"@{tmp_path / 'i.npy'}", "--grad-output", "ones"
    )
    assert obj["value"] == [0.5, 1.0, 1.5]


def test_csv_file(tmp_path):
    (tmp_path / "m.csv").write_text("1.5,-2,0.25\n3,4,-0.5\n")
    _check_file_input(tmp_path, "m.csv", M)


def test_json_file(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps(M.tolist()))
    _check_file_input(tmp_path, "m.json", M)


def test_txt_file(tmp_path):
    (tmp_path / "m.txt").write_text("1.5 -2 0.25\n3 4 -0.5\n")
    _check_file_input(tmp_path, "m.txt", M)


def test_txt_one_line_is_a_vector(tmp_path):
    (tmp_path / "v.txt").write_text("1 2 3\n")
    _check_file_input(tmp_path, "v.txt", np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("ragged.csv", "1,2\n3\n", "ragged"),
        ("header.csv", "a,b\n1,2\n", "x"),
        ("nan.csv", "1,nan\n", "non-finite"),
        ("bad.json", "[1,", "x"),
        ("obj.json", '{"a": 1}', "x"),
        ("empty.txt", "", "x"),
        ("junk.npy", "not an npy file", "x"),
        ("data.xlsx", "1,2", "xlsx"),
    ],
)
def test_bad_files_are_usage_errors(tmp_path, name, content, needle):
    (tmp_path / name).write_text(content)
    line = assert_error(run("eval", "sum(x)", "--x", f"@{tmp_path / name}"), 2, needle)
    assert "input x" in line


def test_bool_npy_is_refused(tmp_path):
    np.save(tmp_path / "b.npy", np.array([True, False]))
    assert_error(run("eval", "sum(x)", "--x", f"@{tmp_path / 'b.npy'}"), 2, "input x")


def test_missing_value_file(tmp_path):
    assert_error(
        run("eval", "sum(x)", "--x", f"@{tmp_path / 'nope.npy'}"), 2, "input x"
    )


# -- input errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "1,,2",
        "1,2;3",
        "[1,[2]]",
        "[[1,2],[3]]",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "[1,NaN]",
        "[1,Infinity]",
        "1,nan",
        "zeros(3",
        "foo(3)",
        "zeros(-1)",
        "ones(2,x)",
        "randn()x",
        "",
        "  ",
        "1 2",
        '["a"]',
        "[true]",
        "{}",
        "0x10",
        "1_000",
        "arange(0,1,0)",
        "linspace(0,1)",
        "@",
        "@noext",
    ],
)
def test_malformed_values_name_the_input(text):
    line = assert_error(run("eval", "sum(x)", "--x", text), 2)
    assert "x" in line.removeprefix("error: "), line


def test_float32_overflow_is_an_input_error():
    assert_error(run("eval", "sum(x)", "--x", "1e39", "--dtype", "float32"), 2, "x")


def test_missing_input():
    assert_error(run("eval", "x + y", "--x", "1"), 2, "y")


def test_unknown_input():
    assert_error(run("eval", "x", "--x", "1", "--y", "2"), 2, "y")


def test_repeated_input():
    assert_error(run("eval", "x", "--x", "1", "--x", "2"), 2, "x")


def test_repeated_input_via_var():
    assert_error(run("eval", "x", "--x", "1", "--var", "x=2"), 2, "x")


def test_input_without_value():
    assert_error(run("eval", "x", "--x"), 2, "x")


def test_stray_argument():
    assert_error(run("eval", "x", "--x", "1", "stray"), 2, "stray")


def test_var_without_equals():
    assert_error(run("eval", "x", "--var", "x"), 2, "--var")


def test_var_bad_name():
    assert_error(run("eval", "x", "--x", "1", "--var", "1x=2"), 2)


# -- --wrt, --grad-output, --no-grad -------------------------------------------------
def test_wrt_selects_gradients():
    obj = ok_json("eval", "x @ A @ x", "--x", "1,2", "--A", "1,2;3,4", "--wrt", "x")
    assert list(obj["grad"]) == ["x"]
    assert obj["grad"]["x"] == [12.0, 21.0]


def test_wrt_repeatable():
    obj = ok_json(
        "eval", "x*y*z", "--x", "2", "--y", "3", "--z", "5", "--wrt", "z", "--wrt", "x"
    )
    assert set(obj["grad"]) == {"x", "z"}
    assert obj["grad"]["x"] == 15.0 and obj["grad"]["z"] == 6.0


def test_wrt_unknown_name():
    assert_error(run("eval", "x", "--x", "1", "--wrt", "y"), 2, "y")


def test_grad_output_ones():
    obj = ok_json("eval", "x*x", "--x", "1,2,3", "--grad-output", "ones")
    assert obj["value"] == [1.0, 4.0, 9.0]
    assert obj["shape"] == [3]
    assert obj["grad"]["x"] == [2.0, 4.0, 6.0]


def test_grad_output_vector_is_a_vjp():
    A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x = np.array([0.5, -1.0, 2.0])
    v = np.array([3.0, -2.0])
    obj = ok_json(
        "eval",
        "A @ x",
        "--A",
        value_text(A),
        "--x",
        value_text(x),
        "--grad-output",
        value_text(v),
    )
    np.testing.assert_allclose(arr(obj["value"]), A @ x)
    np.testing.assert_allclose(arr(obj["grad"]["x"]), A.T @ v)  # v^T J, J = A
    np.testing.assert_allclose(arr(obj["grad"]["A"]), np.outer(v, x))


def test_grad_output_matrix():
    obj = ok_json("eval", "A*A", "--A", "1,2;3,4", "--grad-output", "1,0;0,2")
    assert obj["grad"]["A"] == [[2.0, 0.0], [0.0, 16.0]]


@pytest.mark.parametrize("g", ["1,2", "[[1,2,3]]", "5,6,7,8"])
def test_grad_output_wrong_shape(g):
    assert_error(
        run("eval", "x*x", "--x", "1,2,3", "--grad-output", g), 3, "--grad-output"
    )


def test_grad_output_malformed():
    r = run("eval", "x*x", "--x", "1,2,3", "--grad-output", "abc")
    assert_error(r, 2, "grad-output")


def test_non_scalar_output_needs_grad_output():
    r = run("eval", "x*x", "--x", "1,2,3")
    assert_error(r, 3, "--grad-output ones", "sum(", "gradcli jacobian")
    assert "(3,)" in r.err_lines[0]


def test_no_grad():
    obj = ok_json("eval", "x*x", "--x", "1,2,3", "--no-grad")
    assert obj["value"] == [1.0, 4.0, 9.0]
    assert obj["grad"] == {}
    r = ok("eval", "dot(x,x)", "--x", "1,2", "--no-grad", "--format", "plain")
    assert r.out == "value 5\n"


def test_constant_expression_has_a_value():
    # no inputs: a value, and no gradients to take
    obj = ok_json("eval", "1+2")
    assert obj["value"] == 3.0
    assert obj["grad"] == {}
    assert ok("eval", "2**10", "--format", "plain").out.splitlines()[0] == "value 1024"


def test_unused_gradient_is_zero():
    obj = ok_json("eval", "sum(x) + 0*sum(y)", "--x", "1,2", "--y", "3,4")
    assert obj["grad"]["y"] == [0.0, 0.0]


# -- --dtype -------------------------------------------------------------------------
def test_dtype_float32():
    obj = ok_json("eval", "x*x", "--x", "0.1", "--dtype", "float32")
    x = np.float32(0.1)
    assert np.float32(obj["value"]) == x * x
    assert np.float32(obj["grad"]["x"]) == np.float32(2) * x
    assert obj["value"] != 0.1 * 0.1, "computed in float32, not float64"


def test_dtype_float32_vector():
    x = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    obj = ok_json("eval", "sum(sin(x))", "--x", "0.1,0.2,0.3", "--dtype", "float32")
    np.testing.assert_allclose(np.float32(obj["value"]), np.sin(x).sum(), rtol=1e-6)
    np.testing.assert_array_equal(
        np.array(obj["grad"]["x"], dtype=np.float32), np.cos(x)
    )


def test_dtype_bad_choice():
    assert_error(run("eval", "x", "--x", "1", "--dtype", "float16"), 2, "--dtype")


# -- --strict ------------------------------------------------------------------------
def test_strict_non_finite_value_exits_3():
    r = run("eval", "log(x)", "--x", "0", "--strict")
    assert_error(r, 3)


def test_strict_non_finite_gradient_exits_3():
    r = run("eval", "sqrt(x)", "--x", "0", "--strict", "--json")
    assert_error(r, 3, "grad.x")


def test_strict_finite_is_fine():
    r = ok("eval", "log(x)", "--x", "1", "--strict", "--format", "plain")
    assert r.out == "value 0\ngrad.x 1\n"


# -- --expect-value / --expect-grad --------------------------------------------------
def test_expect_pass():
    r = ok(
        "eval",
        "dot(x,x)",
        "--x",
        "1,2",
        "--expect-value",
        "5",
        "--expect-grad",
        "x=2,4",
        "--format",
        "plain",
    )
    assert r.out == "value 5\ngrad.x 2,4\n"
    assert r.err == ""


def test_expect_value_fail():
    r = run("eval", "dot(x,x)", "--x", "1,2", "--expect-value", "6")
    assert r.code == 1
    assert "Traceback" not in r.err
    err = [line for line in r.err_lines if line.startswith("error: ")]
    assert len(err) == 1, r.err
    assert "value" in err[0] and "6" in err[0] and "5" in err[0], err[0]


def test_expect_grad_fail():
    r = run("eval", "dot(x,x)", "--x", "1,2", "--expect-grad", "x=2,5", "--json")
    assert r.code == 1
    err = [line for line in r.err_lines if line.startswith("error: ")]
    assert len(err) == 1, r.err
    assert "grad.x" in err[0] and "2,5" in err[0] and "2,4" in err[0], err[0]


def test_expect_grad_several_fail():
    r = run(
        "eval",
        "x*y",
        "--x",
        "2",
        "--y",
        "3",
        "--expect-grad",
        "x=3",
        "--expect-grad",
        "y=5",
        "--expect-value",
        "6",
    )
    # value 6 and grad.x 3 are met; only grad.y (2, not 5) is reported
    assert r.code == 1
    err = [line for line in r.err_lines if line.startswith("error: ")]
    assert len(err) == 1, err
    assert "grad.y" in err[0] and "5" in err[0] and "2" in err[0], err


@pytest.mark.parametrize(
    "extra, code",
    [
        ([], 1),
        (["--rtol", "1e-3"], 0),  # |5 - 5.001| = 1e-3 <= 1e-3 * 5.001
        (["--rtol", "1e-5"], 1),
        (["--atol", "0.01"], 0),
        (["--atol", "1e-4"], 1),
        (["--atol", "0.0005", "--rtol", "0.0001"], 0),  # 1e-3 <= 5e-4 + 5.001e-4
    ],
)
def test_expect_tolerances(extra, code):
    r = run("eval", "dot(x,x)", "--x", "1,2", "--expect-value", "5.001", *extra)
    assert r.code == code, r.err
    assert "Traceback" not in r.err


def test_expect_shape_mismatch_fails():
    r = run("eval", "dot(x,x)", "--x", "1,2", "--expect-grad", "x=2,4,6")
    assert r.code == 1
    assert "grad.x" in r.err


def test_expect_nan_never_passes():
    r = run("eval", "x/x", "--x", "0", "--expect-value", "1", "--atol", "1e300")
    assert r.code == 1


def test_expect_grad_for_unknown_input():
    assert_error(run("eval", "dot(x,x)", "--x", "1,2", "--expect-grad", "y=1"), 2, "y")


def test_expect_grad_malformed():
    assert_error(
        run("eval", "dot(x,x)", "--x", "1,2", "--expect-grad", "x"), 2, "--expect-grad"
    )


def test_expect_value_malformed():
    assert_error(
        run("eval", "dot(x,x)", "--x", "1,2", "--expect-value", "abc"),
        2,
        "expect-value",
    )


@pytest.mark.parametrize("opt", ["--rtol", "--atol"])
def test_tolerance_malformed(opt):
    assert_error(run("eval", "x", "--x", "1", opt, "abc"), 2, opt)


# -- size limits -----------------------------------------------------------------------
def test_broadcast_over_the_limit_is_refused_quickly():
    t0 = time.perf_counter()
    r = run("eval", "sum(x + A)", "--x", "zeros(20000)", "--A", "zeros(20000,1)")
    elapsed = time.perf_counter() - t0
    assert_error(r, 3)
    assert "400,000,000" in r.err or "400000000" in r.err or "limit" in r.err
    assert elapsed < 2.0, f"refused, not attempted: took {elapsed:.2f}s"


def test_max_elements_option_for_ops():
    assert_error(
        run("eval", "sum(outer(x,x))", "--x", "1,2,3", "--max-elements", "8"),
        3,
        "outer",
    )
    obj = ok_json("eval", "sum(outer(x,x))", "--x", "1,2,3", "--max-elements", "9")
    assert obj["value"] == 36.0
    assert obj["grad"]["x"] == [12.0, 12.0, 12.0]  # d/dx_i (sum x)^2 = 2 sum x


def test_max_elements_option_for_inputs():
    assert_error(run("eval", "sum(x)", "--x", "1,2,3", "--max-elements", "2"), 2, "x")
    assert_error(
        run("eval", "sum(x)", "--x", "zeros(100)", "--max-elements", "10"), 2, "x"
    )


def test_max_elements_bad_value():
    assert_error(
        run("eval", "x", "--x", "1", "--max-elements", "0"), 2, "--max-elements"
    )


def test_huge_constructor_refused_before_allocation():
    t0 = time.perf_counter()
    assert_error(run("eval", "sum(x)", "--x", "zeros(100000,100000)"), 2, "x")
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("expr", ["x*9**9**9", "9**9**9*x", "x*2**2000", "x*10**400"])
def test_huge_literal_power_is_inf_not_a_hang(expr):
    t0 = time.perf_counter()
    r = ok("eval", expr, "--x", "1", "--json")
    assert time.perf_counter() - t0 < 2.0
    obj = strict_loads(r.out)
    assert obj["value"] == "inf"
    assert obj["warnings"] and "value" in obj["warnings"][0]


def test_expression_too_long():
    assert_error(run("eval", "+".join(["x"] * 6000), "--x", "1"), 2)


def test_expression_too_deep():
    assert_error(run("eval", "-" * 500 + "x", "--x", "1"), 2)


# -- expression usage errors ---------------------------------------------------------
@pytest.mark.parametrize(
    "expr, needle",
    [
        ("x.foo", "foo"),
        ("lambda: x", "lambda"),
        ("[a for a in x]", "comprehension"),
        ("x ^ 2", "^"),
        ("'a' + x", "string"),
        ("foo(x)", "foo"),
        ("x + zz", "zz"),
        ("x > 0", "where"),
        ("__import__('os')", "__import__"),
        ("x.__class__", "__class__"),
        ("(x := 1)", "column"),
        ("x if x else x", "column"),
        ("sum(x, axis=q)", "column"),
        ("f'{x}'", "column"),
        ("x +", "column"),
        ("sin(x", "column"),
        ("[x, x]", "column"),
    ],
)
def test_bad_expressions_name_the_construct_and_column(expr, needle):
    line = assert_error(run("eval", expr, "--x", "1"), 2, needle)
    assert "column" in line, line


def test_empty_expression():
    assert_error(run("eval", "", "--x", "1"), 2)
    assert_error(run("eval", "   "), 2)


def test_unknown_function_column_is_one_based():
    line = assert_error(run("eval", "x + foo(x)", "--x", "1"), 2, "foo")
    assert "column 5" in line, line


def test_evaluation_errors_exit_3():
    assert_error(run("eval", "dot(x, y)", "--x", "1,2,3", "--y", "1,2,3,4"), 3, "dot")
    assert_error(run("eval", "sum(x + y)", "--x", "1,2,3", "--y", "1,2"), 3)
    assert_error(run("eval", "sum(x[5])", "--x", "1,2,3"), 3)
    assert_error(run("eval", "sum(reshape(x, (2, 2)))", "--x", "1,2,3"), 3, "reshape")
    assert_error(run("eval", "sum(inv(A))", "--A", "1,2;2,4"), 3)


def test_condition_without_comparison_is_answered_or_refused():
    # where(c, x, x) is x whatever c means: value 0.5, gradient 1 -- or a clean refusal
    r = run("eval", "where(x, x, x)", "--x", "0.5", "--json")
    if r.code == 0:
        obj = strict_loads(r.out)
        assert obj["value"] == 0.5 and obj["grad"]["x"] == 1.0
    else:
        assert_error(r, r.code)
        assert r.code in (2, 3)


def test_axis_out_of_range_is_an_error_not_a_crash():
    for argv in (
        ["sum(x, axis=0)", "--x", "0.5"],
        ["sum(sum(x, axis=0))", "--x", "0.5"],
        ["sum(x, axis=3)", "--x", "1,2"],
    ):
        r = run("eval", *argv)
        assert r.code in (2, 3), (argv, r)
        assert_error(r, r.code, "axis")


def test_det_at_a_singular_matrix():
    # d det(A)/dA is the cofactor matrix, defined at singular A as well:
    # for [[1,2],[2,4]] it is [[4,-2],[-2,1]]. A non-finite answer must come with
    # a warning; an error must follow the error contract. Never a crash.
    r = run("eval", "det(A)", "--A", "1,2;2,4", "--json")
    assert r.code in (0, 3), r
    if r.code == 3:
        assert_error(r, 3, "det")
        return
    obj = strict_loads(r.out)
    assert obj["value"] == pytest.approx(0.0, abs=1e-12)
    g = arr(obj["grad"]["A"])
    if np.isfinite(g).all():
        np.testing.assert_allclose(g, [[4.0, -2.0], [-2.0, 1.0]], atol=1e-9)
    else:
        assert any("grad.A" in w for w in obj["warnings"]), obj


def test_python_warnings_do_not_leak_to_stderr():
    # mean of an empty vector: nan, with gradcli's warning, not numpy's RuntimeWarning
    # (a subprocess: in-process, pytest would capture the Python warning itself)
    p = _subprocess("eval", "mean(x)", "--x", "[]", "--json")
    assert p.returncode == 0, p.stderr
    assert strict_loads(p.stdout)["value"] == "nan"
    for line in p.stderr.splitlines():
        assert line.startswith(("warning: ", "note: ")), p.stderr


# -- function files ------------------------------------------------------------------
def test_function_file_single_function():
    q = np.array([0.1, 0.2, 0.3])
    # k has a default value: a constant unless named in --wrt
    obj = ok_json("eval", str(DATA / "energy.py"), "--q", "0.1,0.2,0.3", "--k", "2",
                  "--wrt", "q", "--wrt", "k")
    assert obj["kind"] == "function"
    assert obj["target"].endswith("energy.py:energy")
    # energy = k/2 |q|^2: d/dq = k q, d/dk = |q|^2 / 2
    np.testing.assert_allclose(obj["value"], q @ q, rtol=1e-15)
    np.testing.assert_allclose(arr(obj["grad"]["q"]), 2 * q, rtol=1e-15)
    np.testing.assert_allclose(obj["grad"]["k"], (q @ q) / 2, rtol=1e-15)


def test_function_file_default_parameter_is_optional():
    q = np.array([0.1, 0.2, 0.3])
    obj = ok_json("eval", f"{DATA / 'energy.py'}:energy", "--q", "0.1,0.2,0.3")
    np.testing.assert_allclose(obj["value"], 0.5 * (q @ q), rtol=1e-15)
    assert list(obj["grad"]) == ["q"]
    np.testing.assert_allclose(arr(obj["grad"]["q"]), q, rtol=1e-15)


def test_function_file_named_function_and_helpers():
    p, q = np.array([1.0, 2.0]), np.array([0.0, 1.0])
    obj = ok_json("eval", f"{DATA / 'several.py'}:total", "--p", "1,2", "--q", "0,1")
    # total = |p|^2 / 4 + sum(cos q)
    np.testing.assert_allclose(obj["value"], p @ p / 4 + np.cos(q).sum(), rtol=1e-15)
    np.testing.assert_allclose(arr(obj["grad"]["p"]), p / 2, rtol=1e-15)
    np.testing.assert_allclose(arr(obj["grad"]["q"]), -np.sin(q), rtol=1e-15)
    obj = ok_json("eval", f"{DATA / 'several.py'}:kinetic", "--p", "3", "--m", "0.5",
                  "--wrt", "p", "--wrt", "m")
    # p^2 / (2m): d/dp = p/m, d/dm = -p^2/(2 m^2)
    assert obj["value"] == pytest.approx(9.0)
    assert obj["grad"]["p"] == pytest.approx(6.0)
    assert obj["grad"]["m"] == pytest.approx(-18.0)


def test_function_file_several_functions_need_a_name():
    r = run("eval", str(DATA / "several.py"), "--p", "1", "--q", "2")
    assert_error(r, 2, "kinetic", "potential", "total")


def test_function_file_no_functions():
    assert_error(run("eval", str(DATA / "empty.py"), "--x", "1"), 2, "empty.py")


def test_function_file_unknown_name():
    assert_error(run("eval", f"{DATA / 'several.py'}:nope", "--p", "1"), 2, "nope")


def test_function_file_missing():
    assert_error(
        run("eval", str(DATA / "no_such_file.py"), "--x", "1"), 2, "no_such_file.py"
    )
    assert_error(
        run("eval", f"{DATA / 'no_such_file.py'}:f", "--x", "1"), 2, "no_such_file.py"
    )


def test_function_file_syntax_error(tmp_path):
    # written here, not kept in tests/data, so that linters of the tree stay quiet
    path = tmp_path / "syntax_error.py"
    path.write_text("def f(x):\n    return x +\n")
    assert_error(run("eval", str(path), "--x", "1"), 2, "syntax_error.py", "line 2")


def test_function_file_missing_input():
    assert_error(run("eval", str(DATA / "energy.py"), "--k", "1"), 2, "q")


def test_function_file_extra_input():
    assert_error(run("eval", str(DATA / "energy.py"), "--q", "1", "--z", "1"), 2, "z")


def test_function_file_star_args():
    assert_error(run("eval", str(DATA / "star_args.py"), "--x", "1"), 2)


def test_function_file_exception_names_file_and_line():
    line = assert_error(
        run("eval", str(DATA / "raises.py"), "--x", "1"),
        3,
        "raises.py",
        "line 3",
        "ValueError",
        "boom from f",
    )
    assert str(DATA) not in line or "raises.py" in line


def test_function_file_exception_in_helper():
    assert_error(
        run("eval", f"{DATA / 'raises_in_helper.py'}:f", "--x", "1"),
        3,
        "raises_in_helper.py",
        "line 2",
        "AttributeError",
    )


def test_function_file_exception_at_load():
    assert_error(
        run("eval", str(DATA / "raises_at_load.py"), "--x", "1"),
        3,
        "raises_at_load.py",
        "line 2",
        "ZeroDivisionError",
    )


def test_function_file_sys_exit_is_an_evaluation_error():
    assert_error(run("eval", str(DATA / "exits.py"), "--x", "1"), 3, "exits.py")


def test_function_file_non_scalar_output():
    assert_error(
        run("eval", str(DATA / "vector_out.py"), "--x", "1,2"), 3, "--grad-output"
    )
    obj = ok_json(
        "eval", str(DATA / "vector_out.py"), "--x", "1,2", "--grad-output", "ones"
    )
    assert obj["grad"]["x"] == [2.0, 4.0]


@pytest.mark.parametrize(
    "x, value, grad",
    [
        ([1.0, 2.0], 17.0, [4.0, 32.0]),  # sum x^4 = 17 > 10
        ([3.0, 3.0], 81.0, [54.0, 54.0]),  # 162 > 100: halved once; grad 4x^3/2
        ([0.5, 1.0], -1.0625, [-0.5, -4.0]),  # 1.0625 <= 10: negated
    ],
)
def test_function_file_control_flow(x, value, grad):
    obj = ok_json("eval", str(DATA / "control.py"), "--x", value_text(np.array(x)))
    assert obj["value"] == pytest.approx(value, rel=1e-15)
    np.testing.assert_allclose(arr(obj["grad"]["x"]), grad, rtol=1e-15)


def test_notebook_f_from_examples():
    # b = 2a doubled until |b| >= 1000: a = 0.5 -> b = 1024 = 2048 a, so db/da = 2048
    r = ok(
        "eval", str(REPO / "examples" / "model.py:f"), "--a", "0.5", "--format", "plain"
    )
    assert r.out == "value 1024\ngrad.a 2048\n"
    # a negative: c = 100 b
    obj = ok_json("eval", str(REPO / "examples" / "model.py"), "--a", "-0.3")
    # 2 * 0.3 * 2^k >= 1000 first at k = 11 (0.6 * 2048 = 1228.8)
    assert obj["value"] == pytest.approx(-122880.0)
    assert obj["grad"]["a"] == pytest.approx(409600.0)


def test_function_file_numpy_functions_on_tensors():
    x = np.array([0.1, 0.2])
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    obj = ok_json(
        "eval", str(DATA / "numpy_fns.py"), "--x", "0.1,0.2", "--A", "1,2;3,4"
    )
    Ax = A @ x
    n = np.sqrt(Ax @ Ax)
    value = np.sin(x).sum() + n + np.exp(x).sum() + np.tanh(x[0])
    gx = np.cos(x) + A.T @ Ax / n + np.exp(x) + np.array([1 - np.tanh(x[0]) ** 2, 0.0])
    gA = np.outer(Ax, x) / n
    np.testing.assert_allclose(obj["value"], value, rtol=1e-14)
    np.testing.assert_allclose(arr(obj["grad"]["x"]), gx, rtol=1e-13)
    np.testing.assert_allclose(arr(obj["grad"]["A"]), gA, rtol=1e-13)


def test_function_file_does_not_leak_into_later_runs():
    ok_json("eval", str(DATA / "energy.py"), "--q", "1", "--dtype", "float32")
    obj = ok_json("eval", "x/3", "--x", "1")
    assert obj["value"] == 1 / 3  # the default dtype is float64 again


# -- non-finite results: warnings name the quantity and the op ----------------------
def _warnings(r: Run) -> list[str]:
    return [line for line in r.err_lines if line.startswith("warning: ")]


def test_forward_non_finite_warning():
    r = ok("eval", "sum(log(x))", "--x", "0,1", "--format", "plain")
    assert r.out.splitlines()[0] == "value -inf"
    ws = _warnings(r)
    assert any("value" in w and "log" in w for w in ws), ws
    assert "Traceback" not in r.err


def test_backward_non_finite_warning():
    r = ok("eval", "sum(sqrt(x))", "--x", "0,1", "--format", "plain")
    assert r.out.splitlines() == ["value 1", "grad.x inf,0.5"]
    ws = _warnings(r)
    assert len(ws) == 1, ws
    assert "grad.x" in ws[0] and "sqrt" in ws[0], ws


def test_warning_lines_do_not_go_to_stdout():
    r = ok("eval", "sum(sqrt(x))", "--x", "0,1", "--json")
    obj = strict_loads(r.out)
    assert obj["grad"]["x"] == ["inf", 0.5]
    assert len(obj["warnings"]) == 1 and "sqrt" in obj["warnings"][0]


@pytest.mark.parametrize(
    "expr, x, op",
    [
        ("sum(exp(x))", "1000,1", "exp"),
        ("sum(log(x))", "0,1", "log"),
        ("x/x", "0", "div"),
    ],
)
def test_every_non_finite_warning_names_the_op(expr, x, op):
    """Value and gradient non-finite: each warning names its quantity and the op."""
    r = ok("eval", expr, "--x", x, "--json")
    ws = _warnings(r)
    assert any(w.startswith("warning: value") for w in ws), ws
    grad_ws = [w for w in ws if "grad.x" in w]
    assert grad_ws, ws
    for w in ws:
        assert op in w.split(" ", 2)[2], f"warning does not name the op {op!r}: {w!r}"


# -- kinks ---------------------------------------------------------------------------
def _notes(r: Run) -> list[str]:
    return [line for line in r.err_lines if line.startswith("note: ")]


@pytest.mark.parametrize(
    "expr, args, op",
    [
        ("relu(x)", ["--x", "0"], "relu"),
        ("sum(relu(x))", ["--x", "-1,0,1"], "relu"),
        ("abs(x)", ["--x", "0"], "abs"),
        ("max(x)", ["--x", "1,3,3"], "max"),
        ("maximum(x, y)", ["--x", "2", "--y", "2"], "maximum"),
    ],
)
def test_kink_note(expr, args, op):
    r = ok("eval", expr, *args, "--format", "plain")
    notes = _notes(r)
    assert len(notes) == 1, r.err
    assert op in notes[0]
    obj = ok_json("eval", expr, *args)
    assert len(obj["notes"]) == 1 and op in obj["notes"][0]


def test_max_tie_gradient_is_a_subgradient():
    obj = ok_json("eval", "max(x)", "--x", "1,3,3")
    g = arr(obj["grad"]["x"])
    # any subgradient of max at a tie: convex weights on the tied entries only
    assert g[0] == 0.0 and np.all(g >= 0) and g.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "expr, args",
    [
        ("relu(x)", ["--x", "0.5"]),
        ("abs(x)", ["--x", "-2"]),
        ("max(x)", ["--x", "1,2,3"]),
        ("maximum(x, y)", ["--x", "1", "--y", "2"]),
    ],
)
def test_no_kink_note_away_from_kinks(expr, args):
    r = ok("eval", expr, *args)
    assert _notes(r) == []
    assert r.err == ""


# -- --debug -------------------------------------------------------------------------
def _subprocess(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradcli", *argv],
        capture_output=True,
        check=False,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_debug_shows_the_traceback():
    p = _subprocess("eval", "x +", "--x", "1", "--debug")
    assert p.returncode != 0
    assert "Traceback" in p.stderr
    assert p.stdout == ""


def test_debug_keeps_the_exit_code():
    """--debug adds a traceback; the exit code still says what kind of error it was."""
    p = _subprocess("eval", "x +", "--x", "1", "--debug")
    assert "Traceback" in p.stderr
    assert p.returncode == 2, f"usage error with --debug exits {p.returncode}"
    p = _subprocess("eval", "x*x", "--x", "1,2", "--debug")
    assert p.returncode == 3, f"evaluation error with --debug exits {p.returncode}"


def test_debug_does_not_change_a_good_run():
    r = ok("eval", "2*dot(x,x)", "--x", "0,1,2,3", "--debug", "--format", "plain")
    assert r.out == "value 28\ngrad.x 0,4,8,12\n"


def test_no_traceback_without_debug():
    for argv in (["eval", "x +", "--x", "1"], ["eval", "x*x", "--x", "1,2"]):
        r = run(*argv)
        assert r.code in (2, 3) and "Traceback" not in r.err


# -- --version, --help ---------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    r = ok(flag)
    assert "gradcli" in r.out
    assert importlib.metadata.version("gradcli") in r.out
    assert r.err == ""


@pytest.mark.parametrize("argv", [["eval", "--help"], ["eval", "-h"]])
def test_eval_help_has_examples_and_every_option(argv):
    r = ok(*argv)
    assert "Examples" in r.out
    assert 'gradcli eval "2*dot(x,x)" --x 0,1,2,3' in r.out
    for opt in (
        "--var",
        "--wrt",
        "--grad-output",
        "--no-grad",
        "--format",
        "--json",
        "--precision",
        "--strict",
        "--expect-value",
        "--expect-grad",
        "--rtol",
        "--atol",
        "--dtype",
        "--seed",
        "--max-elements",
        "--debug",
    ):
        assert opt in r.out, opt


def test_top_level_help():
    r = ok("--help")
    assert "eval" in r.out and "ops" in r.out


def test_ops_help():
    r = ok("ops", "--help")
    assert "--format" in r.out


# -- click's own usage errors --------------------------------------------------------
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["eval", "x", "--x", "1", "--format", "xml"], "--format"),
        (["eval", "x", "--x", "1", "--format"], "--format"),
        (["nosuchcommand"], "nosuchcommand"),
        (["--nosuchoption"], "--nosuchoption"),
        (["eval"], "TARGET"),
        (["eval", "x", "--x", "1", "--seed", "abc"], "--seed"),
        (["eval", "x", "--x", "1", "--grad-output"], "--grad-output"),
        (["ops", "--bogus"], "--bogus"),
        (["ops", "--format", "yaml"], "--format"),
        (["ops", "extra"], "extra"),
    ],
)
def test_click_usage_errors_follow_the_error_contract(argv, needle):
    assert_error(run(*argv), 2, needle)


# -- gradcli ops -----------------------------------------------------------------------
EXPR_OPS = sorted(n for n, o in gradcli.OPS.items() if o.expr)
# What differentiates on Tensors but has no spelling in the expression language:
# einsum's subscripts are a string, the decompositions return several arrays.
PYTHON_ONLY = ["np.einsum", "np.linalg.eigh", "np.linalg.qr", "np.linalg.slogdet",
               "np.linalg.svd"]


def test_ops_json_lists_every_expression_op():
    r = ok("ops", "--format", "json")
    obj = strict_loads(r.out)
    names = [o["name"] for o in obj["ops"] if o["expression"]]
    assert sorted(names) == EXPR_OPS
    assert sorted(o["name"] for o in obj["ops"] if not o["expression"]) == PYTHON_ONLY
    for o in obj["ops"]:
        assert o["signature"].startswith(o["name"] + "(")
        assert isinstance(o["derivative"], str) and o["derivative"]
        assert "kink" in o
    assert ok("ops", "--json").out == r.out


def test_ops_plain_lists_every_expression_op():
    lines = ok("ops", "--format", "plain").out.splitlines()
    names = sorted(line.split("(", 1)[0] for line in lines)
    assert names == sorted(EXPR_OPS + PYTHON_ONLY)
    for line in lines:
        assert len(line.split("\t")) == 3, line


def test_ops_table_lists_every_expression_op():
    out = ok("ops", "--format", "table").out
    for name in EXPR_OPS + PYTHON_ONLY:
        assert re.search(rf"(^|[\s│|]){re.escape(name)}\(", out, re.MULTILINE), name


def test_ops_default_is_plain_off_a_terminal():
    assert ok("ops").out == ok("ops", "--format", "plain").out


def test_ops_kink_conventions_listed():
    obj = strict_loads(ok("ops", "--json").out)
    kinks = {o["name"]: o["kink"] for o in obj["ops"]}
    for name in ("relu", "abs", "max", "maximum"):
        assert kinks[name], f"{name} has a kink convention"


# -- --shape NAME=DIMS, shared by the commands that take shapes without values ------
@pytest.mark.parametrize("pairs, expected", [
    (("x=3",), {"x": (3,)}),
    (("A=3,4", "s="), {"A": (3, 4), "s": ()}),
    (("A=(2, 5)",), {"A": (2, 5)}),
    (("v=7,",), {"v": (7,)}),
    (("s=()",), {"s": ()}),
])
def test_read_shapes(pairs, expected):
    from gradcli.cli.options import read_shapes

    assert read_shapes(pairs) == expected


@pytest.mark.parametrize("pair", ["x", "x=0", "x=-1", "x=3.5", "x=a", "1x=3", "x=1,,2",
                                  "x=٣", "x=99999999999"])
def test_read_shapes_refuses(pair):
    from gradcli.cli.options import read_shapes
    from gradcli.errors import UsageError

    with pytest.raises(UsageError, match="--shape"):
        read_shapes((pair,))


@pytest.mark.parametrize("argv", [
    ["diff", "x*x", "--shape", "x=", "--latex", "-h"],   # a flag of diff's
    ["graph", "x*x", "--x", "1", "--full", "-h"],
    ["check", "x*x", "--x", "1", "--all", "-h"],
])
def test_h_after_a_flag_is_help(argv):
    # -h is help unless it is a value; whether the option before it takes one is
    # the command's own declaration (diff's --hessian is a flag, check's a file).
    r = ok(*argv)
    assert r.out.startswith(f"Usage: gradcli {argv[0]} ")


def test_h_after_an_option_that_takes_a_value_is_that_value():
    r = run("check", "x*x", "--x", "1", "--hessian", "-h")
    assert r.code == 2 and r.out == "" and "-h" in r.err


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_an_empty_input_leaves_the_other_jacobian_blocks_alone(mode):
    # Before: one empty input made every block zeros (jacobian.y was 0).
    # d(sum(x) + y z) / dy = z = 3, / dz = y = 2, by hand; x's block is empty.
    r = ok("jacobian", "sum(x)+y*z", "--x", "[]", "--y", "2", "--z", "3", "--mode", mode,
           "--format", "plain")
    assert r.out.splitlines() == ["value 6", "jacobian.x []", "jacobian.y 3", "jacobian.z 2"]


def test_an_empty_input_leaves_the_other_hessian_blocks_alone():
    # d2(y^2 z)/dy2 = 2z = 6, d2/dydz = 2y = 4, d2/dz2 = 0, by hand.
    j = ok_json("hessian", "sum(x)+y*y*z", "--x", "[]", "--y", "2", "--z", "3")
    h = j["hessian"]
    assert (h["y"]["y"], h["y"]["z"], h["z"]["y"], h["z"]["z"]) == (6, 4, 4, 0)
    assert h["x"]["y"] == [] and h["y"]["x"] == []


@pytest.mark.parametrize("name", PYTHON_ONLY)
def test_the_python_only_functions_of_gradcli_ops_differentiate(name):
    # Each line is true: the numpy function, on a Tensor, records a gradient.
    fn = np
    for part in name.split(".")[1:]:
        fn = getattr(fn, part)
    a = gradcli.tensor(np.array([[4.0, 1.0], [1.0, 3.0]]), requires_grad=True)
    result = fn("ij->", a) if name == "np.einsum" else fn(a)
    first = result if name == "np.einsum" else result[-1]
    first.sum().backward()
    assert a.grad is not None and np.isfinite(a.grad.numpy()).all()
