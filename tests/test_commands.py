"""`gradcli jacobian`, `hessian`, `graph`, `check` and `eval --points`, in process.

Expected numbers are derived by hand and computed with numpy in the test: the
Jacobian of a linear map is its matrix, the Hessian of a quadratic form is
A + A.T, the quartic's Hessian has a closed form, and so on.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass

import numpy as np
import pytest

from gradcli.cli import main
from gradcli.engine.ops import OPS


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(*argv: str, stdin: str | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with contextlib.ExitStack() as stack:
            if stdin is not None:
                import sys

                stack.enter_context(_stdin(sys, stdin))
            try:
                main(list(argv))
            except SystemExit as exc:
                code = exc.code or 0
    return Run(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _stdin(sys, text: str):
    old = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = old


def js(*argv: str) -> dict:
    r = run(*argv, "--json")
    assert r.code == 0, r.err
    assert "Traceback" not in r.err
    return json.loads(r.out)


def text(a) -> str:
    """A numpy array in gradcli's VALUE syntax (repr is exact for float64)."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 1:
        return ",".join(repr(float(v)) for v in a)
    return ";".join(",".join(repr(float(v)) for v in row) for row in a)


RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 3))
X = RNG.standard_normal(3)


# -- jacobian --------------------------------------------------------------------
def test_jacobian_of_a_linear_map_is_its_matrix():
    obj = js("jacobian", "A @ x", "--x", text(X), "--A", text(A))
    np.testing.assert_allclose(obj["jacobian"]["x"], A, rtol=0, atol=0)
    # d(Ax)_i / dA_jk = delta_ij x_k: shape output.shape + input.shape
    expected = np.einsum("ij,k->ijk", np.eye(3), X)
    np.testing.assert_array_equal(obj["jacobian"]["A"], expected)
    np.testing.assert_allclose(obj["value"], A @ X, rtol=1e-15)


def test_jacobian_of_an_elementwise_map_is_diagonal():
    obj = js("jacobian", "sin(x)*x", "--x", text(X))
    np.testing.assert_allclose(obj["jacobian"]["x"], np.diag(np.sin(X) + X * np.cos(X)),
                               rtol=1e-15, atol=1e-15)


def test_jacobian_plain_rows_are_matrix_syntax():
    r = run("jacobian", "A @ x", "--x", "1,2", "--A", "1,2;3,4", "--wrt", "x",
            "--format", "plain")
    assert r.out.splitlines() == ["value 5,11", "jacobian.x 1,2;3,4"]


def test_jacobian_too_big_is_refused_before_work():
    r = run("jacobian", "x*1", "--x", "zeros(5000)", "--max-elements", "1000000")
    assert r.code == 3 and r.out == ""
    assert r.err.startswith("error: ") and "25,000,000" in r.err


# -- hessian ---------------------------------------------------------------------
def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose():
    obj = js("hessian", "x @ A @ x", "--x", text(X), "--A", text(A), "--wrt", "x")
    np.testing.assert_allclose(obj["hessian"]["x"]["x"], A + A.T, rtol=1e-14, atol=1e-14)
    assert obj["symmetric"] is True
    np.testing.assert_allclose(obj["eigenvalues"], np.linalg.eigvalsh(A + A.T),
                               rtol=1e-12, atol=1e-12)


def test_hessian_of_the_quartic_matches_its_closed_form():
    x = RNG.standard_normal(6)
    obj = js("hessian", "sum(x**4) + dot(x,x)**2", "--x", text(x))
    h = np.diag(12 * x**2) + 4 * (np.dot(x, x) * np.eye(6) + 2 * np.outer(x, x))
    np.testing.assert_allclose(obj["hessian"]["x"]["x"], h, rtol=1e-13)


def test_hessian_blocks_for_several_inputs():
    obj = js("hessian", "x*y*y", "--x", "2", "--y", "3")
    # f = x y^2: f_xx = 0, f_xy = 2y, f_yy = 2x
    assert obj["hessian"] == {"x": {"x": 0.0, "y": 6.0}, "y": {"x": 6.0, "y": 4.0}}


def test_hessian_table_reports_symmetry_and_convexity():
    r = run("hessian", "dot(x,x)", "--x", "1,2", "--format", "table")
    assert r.code == 0
    assert "symmetric to rounding: yes" in r.out
    assert "positive definite" in r.out


def test_hessian_of_a_vector_output_is_an_evaluation_error():
    r = run("hessian", "x*x", "--x", "1,2")
    assert r.code == 3 and r.out == ""
    assert r.err.startswith("error: ") and "hint: " in r.err


# -- graph -----------------------------------------------------------------------
def test_graph_json_has_every_node_with_value_and_gradient():
    obj = js("graph", "2*dot(x,x)", "--x", "0,1,2,3")
    nodes = {n["id"]: n for n in obj["nodes"]}
    root = nodes[obj["output"]]
    assert root["name"] == "MulBackward0" and root["value"] == 28.0 and root["grad"] == 1.0
    dot = next(n for n in nodes.values() if n["name"] == "DotBackward0")
    assert dot["text"] == "dot(x,x)" and dot["value"] == 14.0 and dot["grad"] == 2.0
    x = nodes["in_x"]
    assert x["kind"] == "input" and x["grad"] == [0.0, 4.0, 8.0, 12.0]
    assert dot["inputs"] == ["in_x", "in_x"]


@pytest.mark.parametrize("fmt, marker", [("dot", "digraph"), ("mermaid", "graph BT")])
def test_graph_formats(fmt, marker):
    r = run("graph", "sin(x)*y", "--x", "1", "--y", "2", "--format", fmt)
    assert r.code == 0 and r.out.startswith(marker)
    assert "SinBackward0" in r.out and "MulBackward0" in r.out


def test_graph_of_a_function_file(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f(a):\n    b = a * 2\n    for _ in range(3):\n        b = b * b\n"
                    "    return b\n")
    obj = js("graph", str(path), "--a", "0.5")
    ops = [n["name"] for n in obj["nodes"] if n["kind"] == "op"]
    assert ops == ["MulBackward0"] * 4
    # f = (2a)^8: f' = 8 * 2^8 a^7
    assert obj["nodes"][0]["grad"] == 8 * 256 * 0.5**7


# -- points ----------------------------------------------------------------------
def test_points_csv_with_a_bad_row(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x,y\n1,2\nabc,5\n0.5,4\n")
    r = run("eval", "x*y + sin(x)", "--points", str(path), "--format", "plain")
    assert r.code == 3
    lines = r.out.splitlines()
    assert lines[0] == "row,value,grad.x,grad.y,error"
    assert lines[1] == f"1,{float(2 + np.sin(1.0))!r},{float(2 + np.cos(1.0))!r},1,"
    assert lines[2].startswith("2,,,,") and "abc" in lines[2]
    assert lines[3] == f"3,{float(2 + np.sin(0.5))!r},{float(4 + np.cos(0.5))!r},0.5,"
    assert r.err.startswith("error: 1 row(s) failed")


def test_points_ndjson_from_stdin_with_a_fixed_input():
    r = run("eval", "k*dot(x,x)", "--points", "-", "--k", "3", "--json",
            stdin='{"x": [1, 2]}\n{"x": "3,4"}\n[1]\n')
    assert r.code == 3
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [row["row"] for row in rows] == [1, 2, 3]
    assert rows[0]["value"] == 15.0 and rows[0]["grad"] == {"k": 5.0, "x": [6.0, 12.0]}
    assert rows[1]["value"] == 75.0 and rows[1]["grad"]["x"] == [18.0, 24.0]
    assert "error" in rows[2] and "value" not in rows[2]


def test_points_vector_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x[0],x[1]\n1,2\n3,4\n")
    r = run("eval", "dot(x,x)", "--points", str(path), "--format", "plain")
    assert r.code == 0
    assert r.out.splitlines()[1:] == ['1,5,"2,4",', '2,25,"6,8",']


def test_points_batched_equal_single_evaluations(tmp_path):
    data = RNG.standard_normal((50, 3))
    path = tmp_path / "p.csv"
    path.write_text("a,b,c\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in data))
    expr = "a*sin(b) + exp(-c*c) + where(a > 0, a, -a)"
    rows = [json.loads(line) for line in
            run("eval", expr, "--points", str(path), "--json").out.splitlines()]
    for (a, b, c), row in zip(data, rows):
        single = js("eval", expr, "--a", repr(float(a)), "--b", repr(float(b)), "--c", repr(float(c)))
        assert row["value"] == single["value"] and row["grad"] == single["grad"]
        # and against the hand-derived gradient
        assert row["grad"]["b"] == pytest.approx(a * np.cos(b), rel=1e-15)


def test_points_header_errors_are_usage_errors(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x[0],x[2]\n1,2\n")
    r = run("eval", "sum(x)", "--points", str(path))
    assert r.code == 2 and r.out == "" and r.err.startswith("error: --points header")


# -- check -----------------------------------------------------------------------
def test_check_passes_and_shows_its_work():
    obj = js("eval", "2*dot(x,x)", "--x", "0,1,2,3", "--check")
    check = obj["check"]
    assert check["passed"] is True and check["formulas"]["x"] == "∇x = 4*x"
    assert check["inputs"]["x"]["symbolic_max_error"] == 0.0
    r = run("check", "2*dot(x,x)", "--x", "0,1,2,3", "--format", "plain")
    assert r.code == 0 and r.out.splitlines()[0] == "check PASS"


def test_check_catches_a_wrong_rule(monkeypatch):
    sin = OPS["sin"]
    monkeypatch.setattr(sin, "vjps", (lambda g, out, x: g * np.cos(x) * (1 + (x > 0.25)),))
    monkeypatch.setattr(sin, "local", None)  # the walk then runs the VJP
    r = run("check", "sum(sin(x))", "--x", "0.1,0.2,0.3")
    assert r.code == 1
    assert "FAIL" in r.out and "x[2]" in r.err


def test_check_reports_a_kink_without_failing():
    # relu at 0: finite differences see the average slope 1/2, the engine 0
    r = run("check", "sum(relu(x))", "--x", "0,1", "--format", "plain")
    assert r.code == 0 and r.out.startswith("check KINK")
    assert "gradient taken at a kink: relu" in r.err


def test_check_of_a_function_file_replays_the_path(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f(a):\n    b = a * 2\n    while b.norm() < 1000:\n"
                    "        b = b * 2\n    return b\n")
    obj = js("check", str(path), "--a", "0.4857")
    assert obj["check"]["passed"] is True
    assert obj["check"]["symbolic_method"] == "graph replay"
    assert obj["grad"]["a"] == 4096.0


def test_jacobian_and_hessian_check():
    assert js("jacobian", "tanh(A @ x)", "--x", text(X), "--A", text(A),
              "--check")["check"]["passed"] is True
    assert js("hessian", "sum(exp(x)*x)", "--x", text(X), "--check")["check"]["passed"]


def test_check_with_no_grad_is_a_usage_error():
    r = run("eval", "x*x", "--x", "1", "--check", "--no-grad")
    assert r.code == 2 and r.out == ""
