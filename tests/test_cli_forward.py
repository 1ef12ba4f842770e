"""Forward mode on the command line (issue 11): ``jacobian --mode`` and
``eval --tangent``. Truth is numpy: the same functions written with numpy,
differentiated by central differences here, or by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import ok, ok_json, run

from gradcli import Tensor

T = np.linspace(0.0, 1.0, 8)
T_TEXT = ",".join(repr(float(v)) for v in T)

MODEL = """
import numpy as np


def f(k, c, t):
    return np.exp(t * k) * c + np.sin(t) * k * k
"""


def numpy_f(k, c):
    return np.exp(T * k) * c + np.sin(T) * k * k


def fd_columns(f, point, h=1e-6):
    """One column of the Jacobian per scalar input, by central differences."""
    cols = []
    for j in range(len(point)):
        e = np.zeros(len(point))
        e[j] = h
        cols.append((f(*(point + e)) - f(*(point - e))) / (2 * h))
    return cols


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("kind", ["expression", "function"])
def test_forward_and_reverse_agree_with_each_other_and_finite_differences(kind, model):
    target = "exp(t*k)*c + sin(t)*k*k" if kind == "expression" else model
    args = [target, "--k", "0.7", "--c", "1.5", "--t", T_TEXT, "--wrt", "k", "--wrt", "c"]
    check = ["--check", "--check-timeout", "120"]  # a busy machine: no time-out
    got = {mode: ok_json("jacobian", *args, "--mode", mode, *extra)
           for mode, extra in (("forward", check), ("reverse", []), ("auto", []))}
    assert got["forward"]["mode"] == "forward"
    assert got["reverse"]["mode"] == "reverse"
    assert got["auto"]["mode"] == "forward"  # 2 input components, 8 outputs
    assert got["forward"]["check"]["passed"]
    want_k, want_c = fd_columns(numpy_f, np.array([0.7, 1.5]))
    for mode, obj in got.items():
        assert obj["kind"] == kind
        np.testing.assert_allclose(obj["jacobian"]["k"], want_k, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(obj["jacobian"]["c"], want_c, rtol=1e-8, atol=1e-9)
    for name in ("k", "c"):
        np.testing.assert_allclose(got["forward"]["jacobian"][name],
                                   got["reverse"]["jacobian"][name], rtol=1e-13, atol=0)


def test_auto_is_reverse_when_the_inputs_are_not_fewer_than_the_output():
    # tanh(A @ x): 3 inputs, 2 outputs; J = (1 - tanh^2) A, by hand
    A = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])
    x = np.array([0.1, -0.2, 0.3])
    want = (1 - np.tanh(A @ x) ** 2)[:, None] * A
    a_text = "1,2,-1;0.5,0,3"
    auto = ok_json("jacobian", "tanh(A @ x)", "--A", a_text, "--x", "0.1,-0.2,0.3",
                   "--wrt", "x")
    forward = ok_json("jacobian", "tanh(A @ x)", "--A", a_text, "--x", "0.1,-0.2,0.3",
                      "--wrt", "x", "--mode", "forward")
    assert (auto["mode"], forward["mode"]) == ("reverse", "forward")
    for obj in (auto, forward):
        np.testing.assert_allclose(obj["jacobian"]["x"], want, rtol=1e-13)
    # the same number of components each way: reverse
    assert ok_json("jacobian", "x*x", "--x", "1,2")["mode"] == "reverse"


def test_the_table_says_the_mode_and_plain_output_is_unchanged():
    r = ok("jacobian", "k*x", "--k", "2", "--x", "1,2,3", "--wrt", "k", "--format", "table")
    assert "computed in forward mode" in r.out
    r = ok("jacobian", "k*x", "--k", "2", "--x", "1,2,3", "--wrt", "k", "--mode", "forward")
    assert r.out.splitlines() == ["value 2,4,6", "jacobian.k 1,2,3"]


def test_an_unknown_mode_is_a_usage_error():
    r = run("jacobian", "x*x", "--x", "1,2", "--mode", "sideways")
    assert r.code == 2 and r.out == ""
    assert "--mode" in r.err and "Traceback" not in r.err


def test_forward_mode_that_goes_non_finite_falls_back_to_reverse_and_says_so(monkeypatch):
    from gradcli import transforms

    def broken(out, leaves, **_):
        return [np.full((out.size,) + x.shape, np.nan) for x in leaves]

    monkeypatch.setattr(transforms, "_columns", broken)
    r = ok("jacobian", "k*x", "--k", "2", "--x", "1,2,3", "--wrt", "k", "--mode", "forward",
           "--json")
    obj = json.loads(r.out)
    assert obj["mode"] == "reverse" and obj["jacobian"]["k"] == [1.0, 2.0, 3.0]
    assert "forward mode gave non-finite numbers" in r.err
    obj = ok_json("jacobian", "k*x", "--k", "2", "--x", "1,2,3", "--wrt", "k")
    assert obj["mode"] == "reverse" and obj["warnings"] == []


# -- eval --tangent -----------------------------------------------------------------
def test_tangent_is_the_directional_derivative_in_every_format():
    # f = sin(x) * y: J v = cos(x) * y * vx + sin(x) * vy
    x, y, vx, vy = np.array([0.3, -1.2]), 1.7, np.array([1.0, -2.0]), 0.5
    want = np.cos(x) * y * vx + np.sin(x) * vy
    args = ["sin(x)*y", "--x", "0.3,-1.2", "--y", "1.7", "--tangent", "x=1,-2",
            "--tangent", "y=0.5"]
    obj = ok_json("eval", *args)
    assert obj["mode"] == "forward"
    np.testing.assert_allclose(obj["tangent"], want, rtol=1e-14)
    np.testing.assert_allclose(obj["value"], np.sin(x) * y, rtol=1e-15)
    assert obj["grad"] == {}  # a vector output: no gradient without --grad-output
    lines = ok("eval", *args, "--format", "plain").out.splitlines()
    assert lines[0].startswith("value ") and lines[-1].startswith("tangent ")
    got = [float(v) for v in lines[-1].removeprefix("tangent ").split(",")]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert "tangent (J v)" in ok("eval", *args, "--format", "table").out
    # with --grad-output the vector-Jacobian product comes too
    obj = ok_json("eval", *args, "--grad-output", "ones")
    np.testing.assert_allclose(obj["grad"]["x"], np.cos(x) * y, rtol=1e-14)


def test_a_tangent_not_given_is_zero_and_a_scalar_output_keeps_its_gradient(model):
    # f = dot(x, x) * y: J v = 2 y <x, vx> (vy = 0); gradient (2 y x, |x|^2)
    obj = ok_json("eval", "dot(x,x)*y", "--x", "1,2", "--y", "3", "--tangent", "x=0.5,-1")
    assert obj["tangent"] == 2 * 3 * (1 * 0.5 + 2 * -1.0)
    assert obj["grad"] == {"x": [6.0, 12.0], "y": 5.0}
    # a function file, along c only: J v = exp(t k) * vc
    obj = ok_json("eval", model, "--k", "0.7", "--c", "1.5", "--t", T_TEXT,
                  "--tangent", "c=2", "--check", "--check-timeout", "120",
                  "--grad-output", "ones")
    np.testing.assert_allclose(obj["tangent"], np.exp(T * 0.7) * 2, rtol=1e-14)
    assert obj["check"]["passed"]


def test_tangent_agrees_with_the_jacobian_of_the_other_mode():
    jac = ok_json("jacobian", "tanh(outer(x, x)) @ x", "--x", "0.2,-0.5,0.9",
                  "--mode", "reverse")
    v = np.array([0.3, 1.0, -0.4])
    obj = ok_json("eval", "tanh(outer(x, x)) @ x", "--x", "0.2,-0.5,0.9",
                  "--tangent", "x=0.3,1,-0.4")
    np.testing.assert_allclose(obj["tangent"], np.array(jac["jacobian"]["x"]) @ v,
                               rtol=1e-12)


@pytest.mark.parametrize(("extra", "says"), [
    (["--tangent", "x=1,2,3"],
     "--tangent x: the tangent has shape (3,) but input 'x' has shape (2,)"),
    (["--tangent", "z=1"], "--tangent z: no input named 'z'"),
    (["--wrt", "x", "--tangent", "y=1"], "--tangent y: input 'y' is not differentiated"),
    (["--tangent", "x"], "--tangent 'x': expected NAME=VALUE"),
    (["--tangent", "x=1,2", "--tangent", "x=0,1"], "--tangent x: given twice"),
    (["--tangent", "x=a,b"], "--tangent x"),
    (["--tangent", "x=1,0", "--check"], "--check checks the gradient"),
])
def test_bad_tangents_are_usage_errors(extra, says):
    r = run("eval", "sin(x)*y", "--x", "1,2", "--y", "3", *extra)
    assert r.code == 2, r.err
    assert r.out == ""
    assert r.err_lines[0].startswith("error: ") and says in r.err_lines[0]
    assert "Traceback" not in r.err


def test_tangent_does_not_go_with_points(tmp_path):
    pts = tmp_path / "p.csv"
    pts.write_text("x,y\n1,2\n", encoding="utf-8")
    r = run("eval", "x*y", "--points", str(pts), "--tangent", "x=1")
    assert r.code == 2 and r.out == ""
    assert "--tangent" in r.err and "--points" in r.err


def test_tangent_does_not_go_with_sigma_or_random():
    r = run("eval", "m*g", "--m", "2", "--g", "9.81", "--sigma", "m=0.1", "--tangent", "m=1")
    assert r.code == 2 and r.out == "" and "--tangent" in r.err and "--sigma" in r.err
    r = run("eval", "x*x", "--x", "1", "--tangent", "x=1", "--random", "3", "--check")
    assert r.code == 2 and r.out == "" and "--tangent" in r.err and "--random" in r.err


# -- kinks and undefined points: forward mode gives reverse mode's numbers ------------
def _floats(obj):
    return np.array(obj, dtype=float)  # (JSON's "nan", "inf" strings too)


# The Jacobian of each at x = 0, 2, -3, by hand: elementwise, so diagonal; the
# chain rule in IEEE arithmetic (inf * 0 = nan), PyTorch's abs'(0) = 0.
KINKS = {
    "sqrt(x*x)": [np.nan, 1.0, -1.0],  # 1/(2 sqrt(x^2)) * 2x
    "abs(x)": [0.0, 1.0, -1.0],
    "log(x*x)": [np.nan, 1.0, -2 / 3],  # 1/x^2 * 2x
    "sqrt(where(x > -1, x, 0)**2)": [np.nan, 1.0, 0.0],  # constant 0 below -1
}


@pytest.mark.parametrize("expr", sorted(KINKS))
def test_forward_and_reverse_agree_element_for_element_at_kinks(expr):
    want = np.diag(KINKS[expr])
    got = {m: ok_json("jacobian", expr, "--x", "0,2,-3", "--mode", m)
           for m in ("forward", "reverse")}
    for m, obj in got.items():
        np.testing.assert_array_equal(_floats(obj["jacobian"]["x"]), want, err_msg=m)
    nan_warnings = [[w for w in obj["warnings"] if w.startswith("jacobian.x")]
                    for obj in got.values()]
    assert nan_warnings[0] == nan_warnings[1]
    if np.isnan(want).any():  # forward mode cannot tell 0 from nan here: it says so
        assert nan_warnings[0] == ["jacobian.x is nan: 1 of 9 elements"]
        assert got["forward"]["mode"] == "reverse"
        assert any("cannot tell 0 from nan" in w for w in got["forward"]["warnings"])
    else:
        assert got["forward"]["mode"] == "forward" and got["forward"]["warnings"] == []


def test_the_issue_example_and_its_tangent():
    r = ok("jacobian", "sqrt(x*x)", "--x", "0,1", "--mode", "forward")
    assert r.out.splitlines()[-1] == "jacobian.x nan,0;0,1"
    assert "warning: jacobian.x is nan: 1 of 4 elements" in r.err
    # auto picks forward (1 input component, 3 outputs): d(sqrt(k^2) t)/dk = t * nan
    obj = ok_json("jacobian", "sqrt(k*k)*t", "--k", "0", "--t", "1,2,3", "--wrt", "k")
    assert obj["mode"] == "reverse" and np.isnan(_floats(obj["jacobian"]["k"])).all()
    # J v along v = 1 at x = 0 and -3: nan (see KINKS), and 0 (f is 0 below -1)
    obj = ok_json("eval", "sqrt(where(x > -1, x, 0)**2)", "--x", "0,-3",
                  "--tangent", "x=1,1")
    np.testing.assert_array_equal(_floats(obj["tangent"]), [np.nan, 0.0])
    assert "tangent is nan: 1 of 2 elements" in obj["warnings"]


@pytest.fixture
def sin_without_second_derivative(monkeypatch):
    """sin's rule raising when run on Tensors (to be differentiated again, as
    forward mode does), as a rule with no second derivative would."""
    from gradcli import OPS
    from gradcli.errors import EvaluationError

    op = OPS["sin"]

    def refusing(rule):
        def vjp(g, *rest, **params):
            if isinstance(g, Tensor):
                raise EvaluationError("sin: no second derivative (a test's rule)")
            return rule(g, *rest, **params)
        return vjp

    monkeypatch.setattr(op, "vjps", tuple(refusing(r) for r in op.vjps))


def test_a_rule_without_second_derivative_sends_forward_mode_to_reverse(
        sin_without_second_derivative):
    # f = sin(k) t: df/dk = cos(k) t; 1 input, 4 outputs: auto picks forward
    t = np.array([1.0, 2.0, -1.0, 0.5])
    args = ["sin(k)*t", "--k", "0.3", "--t", "1,2,-1,0.5", "--wrt", "k"]
    obj = ok_json("jacobian", *args)
    assert obj["mode"] == "reverse" and obj["warnings"] == []
    np.testing.assert_allclose(obj["jacobian"]["k"], np.cos(0.3) * t, rtol=1e-15)
    r = run("jacobian", *args, "--mode", "forward")
    assert r.code == 3 and r.out == "" and "Traceback" not in r.err
    assert r.err_lines[0] == ("error: forward mode: sin: no second derivative "
                              "(a test's rule)")
    assert "--mode reverse" in r.err
    # --tangent: J v from reverse mode's rows, and it says so
    obj = ok_json("eval", *args, "--tangent", "k=2")
    assert obj["mode"] == "reverse"
    np.testing.assert_allclose(obj["tangent"], np.cos(0.3) * t * 2, rtol=1e-15)
    assert any("reverse mode's Jacobian" in w for w in obj["warnings"])


def test_reverse_mode_in_place_of_forward_keeps_the_work_limit():
    # 1 input, 900 outputs: forward mode's 1 column is cheap, reverse mode's 900
    # rows through a graph of ~900 elements are over 100 x --max-elements
    t = ",".join(["1"] * 900)
    for mode in ("auto", "forward"):
        r = run("jacobian", "sqrt(k*k)*t", "--k", "0", "--t", t, "--wrt", "k",
                "--max-elements", "1000", "--mode", mode)
        assert r.code == 3 and r.out == "" and "Traceback" not in r.err
        assert r.err_lines[0].startswith("error: the Jacobian in reverse mode")
        assert "over the limit" in r.err_lines[0]
