"""A function file that turns a Tensor that requires grad into a Python number
(float(), .item(), .tolist()) and computes with it cuts the graph: the engine's
gradient misses that path. gradcli printed it with exit 0 (a silent wrong
answer), and check --grad blamed the engine for a right df. The same conversion
in control flow (``if float(...) > 0``) is legitimate and stays quiet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_cli import run

X = np.array([0.3, 0.5])
AT = ("--x", "0.3,0.5")
REPO = Path(__file__).resolve().parent.parent

CUT = """\
import numpy as np
def f(x): return np.sum(np.sin(x)) * float(np.sum(x**2))
def df_true(x): return np.cos(x) * np.sum(x**2) + np.sum(np.sin(x)) * 2 * x
def df_wrong(x): return np.cos(x) * np.sum(x**2)
def g(x):
    s = np.sum(x)
    return np.sum(x**3) * s.item()
def flow(x):
    if float(np.sum(x)) > 0:
        return np.sum(x**2)
    return np.sum(np.sin(x))
def v(x):
    return x**2 * float(np.sum(x))
def h(x):
    return np.sum(x**2) * sum(x.tolist())
"""


@pytest.fixture
def cut(tmp_path):
    (tmp_path / "cut.py").write_text(CUT)
    return str(tmp_path / "cut.py")


def test_eval_refuses_a_gradient_that_misses_a_float_path(cut):
    # before: exit 0 and grad.x = cos(x) * sum(x^2), the float() path missing
    r = run("eval", f"{cut}:f", *AT)
    assert (r.code, r.out) == (3, ""), r.out
    first = r.err.splitlines()[0]
    assert first.startswith("error: f converts a Tensor that requires grad to a "
                            "number (float() at cut.py:2), so the gradient misses "
                            "that path")
    assert "Traceback" not in r.err


@pytest.mark.parametrize("name, where", [("g", ".item() at cut.py:7"),
                                         ("h", ".tolist() at cut.py:15")])
def test_eval_refuses_an_item_or_tolist_cut(cut, name, where):
    r = run("eval", f"{cut}:{name}", *AT)
    assert (r.code, r.out) == (3, "")
    assert f"({where})" in r.err.splitlines()[0]


def test_jacobian_and_hessian_refuse_a_cut_too(cut):
    for command, target in (("jacobian", "v"), ("hessian", "f")):
        r = run(command, f"{cut}:{target}", *AT)
        assert (r.code, r.out) == (3, ""), (command, r.out)
        assert "float() at cut.py:" in r.err


def test_check_grad_compares_yours_with_finite_differences_and_names_the_cut(cut):
    r = run("check", f"{cut}:f", "--grad", f"{cut}:df_true", *AT, "--json")
    assert r.code == 0, r.out + r.err
    c = json.loads(r.out)["check"]
    assert c["passed"] and c["status"] == "pass"
    assert "float() at cut.py:2" in c["engine"]
    plain = run("check", f"{cut}:f", "--grad", f"{cut}:df_true", *AT)
    assert plain.code == 0
    assert "PASS" in plain.out and "note: the engine cannot differentiate" in plain.out


def test_check_grad_fails_a_wrong_df_naming_yours(cut):
    r = run("check", f"{cut}:f", "--grad", f"{cut}:df_wrong", *AT, "--json")
    assert r.code == 1
    c = json.loads(r.out)["check"]
    s2, s1 = np.sum(X**2), np.sum(np.sin(X))
    truth = np.cos(X) * s2 + s1 * 2 * X  # by hand: product rule
    assert {row["odd_one_out"] for row in c["table"]} == {"yours"}
    for row in c["table"]:
        i = int(row["where"][2])
        assert row["engine"] is None
        assert row["fd"] == pytest.approx(truth[i], rel=1e-7)
        assert row["user"] == pytest.approx(np.cos(X[i]) * s2)


def test_a_conversion_in_control_flow_gives_the_right_gradient(cut):
    for at, truth in (("0.3,0.5", [0.6, 1.0]),  # 2x
                      ("-0.3,-0.5", np.cos([-0.3, -0.5]))):  # cos x
        r = run("eval", f"{cut}:flow", "--x", at, "--json")
        assert r.code == 0, r.err
        assert np.allclose(json.loads(r.out)["grad"]["x"], truth, rtol=1e-14)
        assert "converts" not in r.err


@pytest.mark.parametrize("argv", [
    ("examples/model.py:f", "--a", "0.5"),
    ("examples/logistic.py:loss", "--w", "0.1,-0.2,0.3"),
    ("examples/logistic_batched.py:loss", "--w", "0.1,-0.2,0.3"),
])
def test_no_false_alarm_on_the_examples(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(REPO)
    r = run("eval", *argv)
    assert r.code == 0, r.err
    assert "converts" not in r.err


def test_converting_a_tensor_outside_a_recording_is_not_noted():
    import gradcli as gc
    from gradcli.engine import graph

    x = gc.tensor([1.0, 2.0], requires_grad=True)
    assert float(x.sum()) == 3.0 and graph.MODE.cuts is None
    with graph.watch_cuts() as cuts:
        float(x.sum()), bool(x.sum() > 0), (x > 1).tolist()
    assert len(cuts) == 1 and cuts[0].startswith("float() at test_cut_graph.py:")


SECOND = """\
import numpy as np
def f(x):
    c = float(x[0])
    return np.sum(x**2) + (x[0] - c)**2  # exactly sum(x**2): Hessian 2 I, d2 along e0 is 2
def g(x):
    return x**2 + (x - float(x[0]))  # J = [[2x0, 0], [-1, 2x1 + 1]] at x: J (1, 0) = (2x0, -1)
"""


@pytest.mark.parametrize("argv, what", [
    (["hessian", "{f}:f", "--x", "1,2,3"], "its Hessian"),
    (["taylor", "{f}:f", "--x", "1,2,3", "--along", "1,0,0", "--order", "3"],
     "its Taylor coefficients"),
    (["diff", "{f}:f", "--x", "1,2,3"], "its formula"),
    (["eval", "{f}:g", "--x", "1,2", "--tangent", "x=1,0"],
     "its directional derivative"),
])
def test_derivatives_finite_differences_do_not_check_refuse_a_conversion(tmp_path, argv,
                                                                         what):
    # Found by a tester: the gradient of f at the point is right (x0 - float(x0)
    # is 0 there), so the gradient check passed, but the Hessian came out 4 at
    # [0, 0] (truth 2), taylor's d2 4, diff's formula 4*x0 - 2 (truth 2*x0), and
    # g's tangent (3, 0) (truth (2, -1), by hand above).
    f = tmp_path / "second.py"
    f.write_text(SECOND, encoding="utf-8")
    r = run(*[a.format(f=f) for a in argv])
    assert r.code == 3 and r.out == ""
    assert "converts a Tensor that requires grad to a number (float() at second.py:" in r.err
    assert what in r.err


def test_check_of_a_cut_function_prints_no_formula_of_the_cut_graph(tmp_path):
    f = tmp_path / "second.py"
    f.write_text(SECOND, encoding="utf-8")
    r = run("check", f"{f}:f", "--x", "1,2,3", "--json")
    assert r.code == 0, r.err
    c = json.loads(r.out)["check"]
    assert c["passed"] and not c.get("formulas")  # (4*x0 - 2 was printed: wrong)
