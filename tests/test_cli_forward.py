"""Forward mode on the command line (issue 11): ``jacobian --mode`` and
``eval --tangent``. Truth is numpy: the same functions written with numpy,
differentiated by central differences here, or by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import ok, ok_json, run

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
