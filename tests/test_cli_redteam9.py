"""Red-team findings on the command line (round 9): each test states the
truth by hand (or by central differences / numpy) and failed before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_cli import run


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# -- 1. input order: the target's, never the flags' -----------------------------
ORD = """import numpy as np
def f(a, b):
    return np.sum(a * a) + 3 * np.sum(b)
def df(a, b):
    return 2 * a, np.full_like(b, 3.0)
"""


@pytest.mark.parametrize("flags", [("--a", "5,7", "--b", "1,2"),
                                   ("--b", "1,2", "--a", "5,7")])
def test_grad_tuple_is_in_parameter_order_whatever_the_flag_order(tmp_path, flags):
    p = _write(tmp_path, "ord.py", ORD)
    r = run("check", f"{p}:f", "--grad", f"{p}:df", *flags, "--json")
    assert r.code == 0, r.err
    obj = json.loads(r.out)
    assert obj["check"]["status"] == "pass"
    assert list(obj["inputs"]) == ["a", "b"] and list(obj["grad"]) == ["a", "b"]
    # by hand: d/da = 2a, d/db = 3
    assert obj["grad"] == {"a": [10.0, 14.0], "b": [3.0, 3.0]}


def test_random_points_take_the_tuple_in_parameter_order(tmp_path):
    p = _write(tmp_path, "ord.py", ORD)
    r = run("check", f"{p}:f", "--grad", f"{p}:df", "--b", "1,2", "--a", "5,7",
            "--random", "3", "--seed", "1")
    assert r.code == 0, r.out + r.err


def test_outputs_follow_parameter_and_appearance_order(tmp_path):
    p = _write(tmp_path, "ord.py", ORD)
    r = run("hessian", f"{p}:f", "--b", "1,2", "--a", "5,7", "--format", "plain")
    assert r.code == 0, r.err
    keys = [line.split()[0] for line in r.out.splitlines() if line.startswith("hessian")]
    assert keys == ["hessian.a.a", "hessian.a.b", "hessian.b.a", "hessian.b.b"]
    r = run("jacobian", f"{p}:f", "--b", "1,2", "--a", "5,7", "--json")
    assert list(json.loads(r.out)["jacobian"]) == ["a", "b"]
    # an expression: the order in which its inputs first appear
    r = run("eval", "y*x + sum(x)", "--x", "2", "--y", "3", "--json")
    obj = json.loads(r.out)
    assert list(obj["inputs"]) == ["y", "x"] and obj["grad"] == {"y": 2.0, "x": 4.0}
    csv = _write(tmp_path, "p.csv", "x,y\n2,3\n")
    r = run("eval", "y*x + sum(x)", "--points", csv, "--format", "plain")
    assert r.out.splitlines() == ["row,value,grad.y,grad.x,error", "1,8,2,4,"]


# -- 2. a single-valued option given twice ---------------------------------------
@pytest.mark.parametrize("argv, option", [
    # the value is 1 + 4 = 5: the 7 must not be dropped silently
    (("eval", "sum(x*x)", "--x", "1,2", "--expect-value", "7", "--expect-value", "5"),
     "--expect-value"),
    (("eval", "sum(x*x)", "--x", "1,2", "--expect-value", "5.1", "--rtol", "0.1",
      "--rtol=0"), "--rtol"),
    (("eval", "sum(x*x)", "--x", "1,2", "--expect-value", "5.1", "--atol", "1",
      "--atol", "0"), "--atol"),
    (("eval", "x*x", "--x", "1", "--random", "2", "--seed", "1", "--expect-value", "1",
      "--expect-value", "1"), "--expect-value"),
    (("eval", "x*y", "--points", "-", "--format", "json", "--format", "plain"), "--format"),
])
def test_a_repeated_single_valued_option_is_a_usage_error(argv, option):
    r = run(*argv)
    assert r.code == 2, (r.code, r.out, r.err)
    assert r.out == ""
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith("error: ")
    assert option in r.err_lines[0]


def test_repeatable_options_still_check_each():
    # --expect-grad checks every one: d/dx sum(x*x) = 2x = [2, 4], so 2,5 fails
    r = run("eval", "sum(x*x)", "--x", "1,2", "--expect-grad", "x=2,4",
            "--expect-grad", "x=2,5")
    assert r.code == 1 and "2,5" in r.err
    r = run("eval", "sum(x*x)", "--x", "1,2", "--json", "--json", "--expect-value", "5")
    assert r.code == 0 and json.loads(r.out)["value"] == 5.0


# -- 3. finite differences alone, with an error bar wider than the tolerance ----------
NR = """import numpy as np
def f(w):
    return 1e8 + np.sum(np.float_power(w, 2))
def df_wrong(w):
    return 2*w + 0.01
def df(w):
    return 2*w
def g(w):
    return np.sum(np.float_power(w, 2))
"""


def test_an_unresolved_finite_difference_comparison_is_not_a_pass(tmp_path):
    # truth by hand: 2w = [1, 3]; df_wrong is off by 0.01, a million times rtol
    p = _write(tmp_path, "nr.py", NR)
    r = run("check", f"{p}:f", "--grad", f"{p}:df_wrong", "--w", "0.5,1.5", "--json")
    obj = json.loads(r.out)
    assert r.code == 1, r.err
    c = obj["check"]
    assert c["status"] == "inconclusive" and not c["passed"]
    assert c["counts"]["unresolved"] == 2
    assert "cannot resolve the tolerance" in r.err
    # the right gradient cannot be confirmed at rtol 1e-8 either, but at 1e-2 it can
    # (2 x the estimate, eps 1e8 / h ~ 0.01, is under 0.01 x 3)
    r = run("check", f"{p}:f", "--grad", f"{p}:df", "--w", "0.5,1.5", "--json")
    assert r.code == 1 and json.loads(r.out)["check"]["status"] == "inconclusive"
    r = run("check", f"{p}:f", "--grad", f"{p}:df", "--w", "0.5,1.5", "--rtol", "1e-2",
            "--json")
    assert r.code == 0 and json.loads(r.out)["check"]["status"] == "pass", r.err
    # without the large offset finite differences resolve 1e-8: a pass
    r = run("check", f"{p}:g", "--grad", f"{p}:df", "--w", "0.5,1.5,0", "--json")
    assert r.code == 0 and json.loads(r.out)["check"]["status"] == "pass", r.err


# -- 4. kinks of sort (a composite op) and jumps of sign ----------------------------
KK = """import numpy as np
def fs(x): return np.sum(np.sort(x) * np.array([1.0, 2.0]))
def s_a(x): return np.array([1.0, 2.0])
def s_b(x): return np.array([2.0, 1.0])
def s_c(x): return np.array([3.0, 0.0])
def s_11(x): return np.array([1.0, 1.0])
def s_22(x): return np.array([2.0, 2.0])
def s_mix(x): return np.array([1.25, 1.75])
def zero(x): return np.zeros_like(x)
def half(x): return np.full_like(x, 0.5)
"""


@pytest.mark.parametrize("df, status", [("s_a", "kink"), ("s_b", "kink"), ("s_c", "fail"),
                                        ("s_mix", "kink"), ("s_11", "fail"),
                                        ("s_22", "fail")])
def test_a_tie_in_sort_is_a_kink_for_check_grad(tmp_path, df, status):
    # f = min(x) + 2 max(x); at x0 == x1 the one-sided derivatives of x0 are 1 and 2
    # (and of x1 alike): [1, 2] and [2, 1] are between, [3, 0] is not. Together:
    # along [1, 1] (the order kept) f's slope is 3, so an answer (a, b) needs
    # a + b = 3: [1.25, 1.75] passes, [1, 1] and [2, 2] (each component between
    # 1 and 2, and fine along yours - [1, 2]) passed before and fail
    p = _write(tmp_path, "kk.py", KK)
    r = run("check", f"{p}:fs", "--grad", f"{p}:{df}", "--x", "1,1", "--json")
    c = json.loads(r.out)["check"]
    assert c["status"] == status, (r.out, r.err)
    assert r.code == (0 if status == "kink" else 1)
    assert any(k.startswith("sort") for k in c["kinks"])


def test_a_tie_in_sort_gets_a_kink_note_and_none_without_a_tie():
    r = run("eval", "sum(sort(x)*w)", "--x", "1,1,2", "--w", "1,2,3", "--json")
    assert any(n.startswith("sort") for n in json.loads(r.out)["notes"]), r.out
    r = run("eval", "sum(sort(x)*w)", "--x", "1,0,2", "--w", "1,2,3", "--json")
    obj = json.loads(r.out)
    # no tie: sorted (0, 1, 2) -> d/dx = (w[1], w[0], w[2]) by hand
    assert obj["notes"] == [] and obj["grad"]["x"] == [2.0, 1.0, 3.0]


def test_check_grad_at_the_jump_of_sign(tmp_path):
    p = _write(tmp_path, "kk.py", KK)
    # sign's declared convention at its jump is 0: yours 0 passes as a kink there
    r = run("check", "sum(sign(x)*1)", "--grad", f"{p}:zero", "--x=0", "--json")
    c = json.loads(r.out)["check"]
    assert r.code == 0 and c["status"] == "kink" and c["counts"]["at_jump"] == 1, r.out
    # any other answer there is not the convention: it fails
    r = run("check", "sum(sign(x)*1)", "--grad", f"{p}:half", "--x=0", "--json")
    assert r.code == 1 and json.loads(r.out)["check"]["status"] == "fail"
    # the smooth part still counts at the jump: d/dx (sign(x) + 3x) is 3 there, not 0
    r = run("check", "sum(sign(x)+3*x)", "--grad", f"{p}:zero", "--x=0", "--json")
    assert r.code == 1 and json.loads(r.out)["check"]["status"] == "fail"
    # away from the jump the answer is 0 by hand, no excuse needed
    r = run("check", "sum(sign(x)*1)", "--grad", f"{p}:zero", "--x=0.5", "--json")
    assert r.code == 0 and json.loads(r.out)["check"]["status"] == "pass"


FLOOR = """import numpy as np
def f(x): return np.sum(np.floor(x) + x)
def d3(x): return np.full_like(x, 3.0)
def d1(x): return np.ones_like(x)
def c(x): return np.sum(np.ceil(x) * x)
def dc(x): return np.ceil(x) + 50.0
"""


@pytest.mark.parametrize("fn, df, code", [("f", "d3", 1), ("f", "d1", 0), ("c", "dc", 1)])
def test_check_grad_at_a_step_of_floor_takes_only_the_convention(tmp_path, fn, df, code):
    # f = floor(x) + x jumps at 1 (f(1-) = 1, f(1) = 2): its one-sided
    # difference from the left is 1/h, so every answer lay "between"
    # the one-sided derivatives: 3 passed as KINK. Only the engine's convention
    # (floor' = 0, so 1) passes now; ceil(x) * x likewise (convention: ceil(x) = 1)
    p = _write(tmp_path, "fl.py", FLOOR)
    r = run("check", f"{p}:{fn}", "--grad", f"{p}:{df}", "--x", "1", "--json")
    assert r.code == code, (r.out, r.err)
    points = tmp_path / "ints.csv"
    points.write_text("x\n1\n2\n3\n")
    r = run("check", f"{p}:{fn}", "--grad", f"{p}:{df}", "--points", str(points))
    assert r.code == code, (r.out, r.err)


# -- 5. --points CSV: no header before a usage error ---------------------------------
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_points_usage_error_in_the_first_chunk_writes_nothing(tmp_path, fmt):
    p = tmp_path / "nonutf.csv"
    p.write_bytes(b"x,y\n1,2\n\xff,3\n4,5\n")
    r = run("eval", "x*y", "--points", str(p), "--format", fmt)
    assert r.code == 2 and r.out == "", (r.out, r.err)
    assert "not UTF-8" in r.err


def test_points_header_comes_with_the_first_row(tmp_path):
    p = _write(tmp_path, "ok.csv", "x,y\n1,2\n3,4\n")
    r = run("eval", "x*y", "--points", p, "--format", "plain")
    # by hand: x*y = 2, 12; d/dx = y, d/dy = x
    assert r.code == 0
    assert r.out.splitlines() == ["row,value,grad.x,grad.y,error", "1,2,2,1,", "2,12,4,3,"]


# -- 6. a null byte, a Hessian with inf, two output formats -------------------------
def test_a_null_byte_in_a_function_file_names_no_line(tmp_path):
    p = tmp_path / "bin.py"
    p.write_bytes(b"\x00\x01binary")
    r = run("eval", str(p), "--x", "1")
    assert r.code == 2 and r.out == ""
    assert r.err_lines[0].startswith("error: bin.py: syntax error") and "None" not in r.err


def test_hessian_with_mirrored_infinities_is_symmetric():
    # d2/dx2 sqrt(x0^2 + x1^2) at 0 by the engine's rules: inf on the diagonal, 0 off
    # it; inf == inf mirrors itself, so the matrix is symmetric
    r = run("hessian", "sqrt(sum(x*x))", "--x", "0,0", "--json")
    obj = json.loads(r.out)
    h = obj["hessian"]["x"]["x"]
    assert h == [["inf", 0.0], [0.0, "inf"]] and obj["symmetric"] is True
    # a nan is never symmetric: d2/dx0^2 of sum(x^3)/0 is 6 x0 / 0, nan at x0 = 0
    r = run("hessian", "sum(x*x*x)/0", "--x", "0,1", "--json")
    obj = json.loads(r.out)
    assert obj["hessian"]["x"]["x"][0][0] == "nan" and obj["symmetric"] is False
    # an inf facing a finite number is not symmetric; inf facing inf is
    from types import SimpleNamespace

    from gradcli.compute import hessian_summary

    x = {"x": np.zeros(2)}
    for h, want in [([[1.0, np.inf], [2.0, 1.0]], False),
                    ([[1.0, np.inf], [np.inf, 1.0]], True),
                    ([[1.0, -np.inf], [np.inf, 1.0]], False),
                    ([[1.0, 2.0], [2.0 + 1e-9, 1.0]], False)]:
        d = SimpleNamespace(blocks={"x": {"x": np.array(h)}})
        assert hessian_summary(d, x, ["x"]).symmetric is want, h


@pytest.mark.parametrize("argv", [("--json", "--format", "table"),
                                  ("--format=plain", "--json")])
def test_json_with_another_format_is_a_usage_error(argv):
    r = run("eval", "x", "--x", "1", *argv)
    assert r.code == 2 and r.out == "" and len(r.err_lines) == 1
    assert "--json" in r.err and "--format" in r.err
    r = run("eval", "x", "--x", "1", "--json", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["value"] == 1.0


DEFAULTS = """import numpy as np
def f(b, a, c=2.0):
    return np.sum(a * b) * c
def df(b, a, c=2.0):
    return a * c, b * c
"""


def test_a_default_valued_parameter_from_a_points_file_is_data(tmp_path):
    # README: parameters with defaults are data at every point of --points, not
    # in df's answer; a column of the file for one was differentiated (df was
    # asked for 3 arrays). By hand: d/db (c a.b) = c a, d/da = c b
    p = _write(tmp_path, "f1.py", DEFAULTS)
    rows = tmp_path / "p.csv"
    rows.write_text('c,b\n1,"3,5"\n3,"1,1"\n')
    r = run("check", f"{p}:f", "--grad", f"{p}:df", "--points", str(rows), "--a", "4,2")
    assert r.code == 0, r.err
    r = run("eval", f"{p}:f", "--points", str(rows), "--a", "4,2", "--json")
    got = [json.loads(line) for line in r.out.splitlines()]
    assert [g["value"] for g in got] == [22.0, 18.0]
    assert [list(g["grad"]) for g in got] == [["b", "a"], ["b", "a"]]
    assert got[1]["grad"] == {"b": [12.0, 6.0], "a": [3.0, 3.0]}


ROWS = """import numpy as np
import gradcli as gc
def f(x): return gc.stack([x[0] ** 2, 1e16 * x[1]])
def wrong(x): return np.array([[-2 * x[0], 0.0], [0.0, 1e16]])
def right(x): return np.array([[2 * x[0], 0.0], [0.0, 1e16]])
"""


def test_a_jacobians_rows_are_checked_each_on_its_own_scale(tmp_path):
    # d out[0]/d x[0] = 2 x0 = 3 by hand; -3 passed because the rounding
    # allowance was scaled by the other output's 1e16
    p = _write(tmp_path, "rows.py", ROWS)
    r = run("check", f"{p}:f", "--jacobian", f"{p}:wrong", "--x", "1.5,1", "--json")
    assert r.code == 1 and json.loads(r.out)["check"]["status"] == "fail", r.out
    r = run("check", f"{p}:f", "--jacobian", f"{p}:right", "--x", "1.5,1", "--json")
    assert r.code == 0 and json.loads(r.out)["check"]["status"] == "pass", r.err


CONES = """import numpy as np
def a(x): return np.abs(x[0] - 2 * x[1])
def m(x): return np.maximum(x[0], 2 * x[1])
def r(x): return np.maximum(x[0] - 2 * x[1], 0) + x[0] ** 2
def n(x): return np.linalg.norm(x, np.inf)
def v(*g): return lambda x: np.array(g, dtype=float)
a_bad, a_ok = v(0.5, -0.5), v(0.5, -1.0)
m_bad, m_ok = v(0.5, 0.5), v(0.7, 0.6)
r_bad = lambda x: np.array([0.5 + 2 * x[0], -0.5])
r_ok = lambda x: np.array([0.5 + 2 * x[0], -1.0])
n_bad, n_ok = v(0.5, -0.3, 0.0), v(0.3, -0.7, 0.0)
"""


@pytest.mark.parametrize("fn, df, point, code", [
    ("a", "a_bad", "2,1", 1), ("a", "a_ok", "2,1", 0),
    ("m", "m_bad", "2,1", 1), ("m", "m_ok", "2,1", 0),
    ("r", "r_bad", "2,1", 1), ("r", "r_ok", "2,1", 0),
    ("n", "n_bad", "1,-1,0.5", 1), ("n", "n_ok", "1,-1,0.5", 0),
])
def test_at_a_kink_yours_must_be_a_mix_of_the_pieces_gradients(tmp_path, fn, df, point,
                                                              code):
    # By hand: |x0 - 2 x1| at (2, 1) has the subgradients t (1, -2), |t| <= 1,
    # and is smooth (0) along (2, 1): (0.5, -0.5) gives 0.5 there. max(x0, 2 x1):
    # t (1, 0) + (1 - t) (0, 2). relu(x0 - 2 x1) + x0^2: (4, 0) + t (1, -2).
    # norm(x, inf) at (1, -1, 0.5): t (1, 0, 0) + (1 - t) (0, -1, 0). Each _bad
    # fits every component's one-sided derivatives and passed as KINK.
    p = _write(tmp_path, "cones.py", CONES)
    r = run("check", f"{p}:{fn}", "--grad", f"{p}:{df}", f"--x={point}", "--json")
    assert r.code == code, (r.out, r.err)
    status = json.loads(r.out)["check"]["status"]
    assert status in (("kink", "pass") if code == 0 else ("fail",)), status
