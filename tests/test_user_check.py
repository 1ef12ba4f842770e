"""Checking the user's own derivative code, at one point and at many (issue 13,
sections 1 and 2).

The functions and their derivatives are in tests/data/usercheck/, derived by
hand; each wrong one carries one deliberate bug, so the component to blame is
known in advance. Expected numbers are computed here with numpy from the
hand-derived formulas, never read from gradcli's own output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gradcli.check import compare_user, finite_differences
from test_cli import run
from shown import same_lines

DATA = Path(__file__).resolve().parent / "data" / "usercheck"
LOSS = str(DATA / "loss.py")
SCALAR = str(DATA / "scalar.py")
W = np.array([[1.0, 2, 3], [4, 5, 6]])
V = np.array([0.5, -1, 2])
AT = ("--W", "1,2,3;4,5,6", "--v", "0.5,-1,2")


def truth_loss():
    """grad_W = 2 (W v) v^T, grad_v = 2 W^T (W v), by hand."""
    r = W @ V
    return 2 * np.outer(r, V), 2 * W.T @ r


def check_json(*argv):
    r = run("check", *argv, "--json")
    return r, json.loads(r.out) if r.out else None


def ndjson(text):
    return [json.loads(line) for line in text.splitlines()]


def assert_clean_error(r, code, *words):
    assert r.code == code, (r.code, r.out, r.err)
    assert r.out == ""
    assert r.err_lines[0].startswith("error: ")
    assert "Traceback" not in r.err
    for w in words:
        assert w in r.err, r.err


# -- one point: right answers pass ---------------------------------------------------
@pytest.mark.parametrize("df", ["df", "df_dict"])
def test_right_gradient_passes_as_tuple_or_dict(df):
    r, obj = check_json(f"{LOSS}:f", "--grad", f"{LOSS}:{df}", *AT)
    assert r.code == 0, r.err
    c = obj["check"]
    assert c["reference"] == "user" and c["status"] == "pass" and c["passed"]
    assert c["components"] == 9 and c["counts"]["agree"] == 9 and c["table"] == []
    gw, gv = truth_loss()
    np.testing.assert_allclose(obj["grad"]["W"], gw)
    np.testing.assert_allclose(obj["grad"]["v"], gv)


def test_plain_output_gives_the_verdict_first():
    r = run("check", f"{LOSS}:f", "--grad", f"{LOSS}:df", *AT, "--format", "plain")
    assert r.code == 0
    assert r.out.splitlines()[0].startswith("check PASS: your `df` agrees with the engine "
                                            "and finite differences")


@pytest.mark.parametrize("kind,target,fn,args,n", [
    ("--hessian", "g", "hg", ("--x", "0.5,2,3"), 9),
    ("--jacobian", "vec", "jvec", ("--x", "0.5,2"), 4),
    ("--hessian", "q", "hq", ("--a", "0.7", "--b", "-1.5"), 4),
])
def test_right_jacobian_and_hessian_pass(kind, target, fn, args, n):
    r, obj = check_json(f"{SCALAR}:{target}", kind, f"{SCALAR}:{fn}", *args)
    assert r.code == 0, r.err
    assert obj["check"]["status"] == "pass" and obj["check"]["components"] == n


# -- one point: the wrong component is blamed ----------------------------------------
def test_one_wrong_entry_is_blamed_with_three_answers():
    r, obj = check_json(f"{LOSS}:f", "--grad", f"{LOSS}:df_bad_entry", *AT)
    assert r.code == 1
    c = obj["check"]
    assert c["status"] == "fail" and not c["passed"]
    assert c["disagreeing"] == 1 and c["counts"]["yours"] == 1
    row = c["table"][0]
    gw, _ = truth_loss()
    assert row["where"] == "W[1, 2]" and row["odd_one_out"] == "yours"
    assert row["user"] == pytest.approx(gw[1, 2] + 1)
    assert row["engine"] == pytest.approx(gw[1, 2], rel=1e-12)
    assert abs(row["fd"] - gw[1, 2]) <= 2 * row["fd_error"] + 1e-8
    plain = run("check", f"{LOSS}:f", "--grad", f"{LOSS}:df_bad_entry", *AT)
    first = plain.out.splitlines()[0]
    assert "your `df_bad_entry` is wrong at `W[1, 2]`: yours 37, engine 36, " \
           "finite differences 36 ± " in first
    assert "error: the check failed" in plain.err


def test_a_forgotten_factor_blames_every_component_of_that_input():
    r, obj = check_json(f"{LOSS}:f", "--grad", f"{LOSS}:df_no_two", *AT)
    assert r.code == 1
    c = obj["check"]
    assert {row["where"] for row in c["table"]} == {"v[0]", "v[1]", "v[2]"}
    _, gv = truth_loss()
    worst = c["table"][0]  # the largest error relative to its tolerance first
    i = int(worst["where"][2])
    assert worst["user"] == pytest.approx(gv[i] / 2)


@pytest.mark.parametrize("kind,target,fn,args,where", [
    ("--grad", "g", "dg_bad", ("--x", "0.5,2,3"), {"x[1]"}),
    ("--hessian", "g", "hg_bad", ("--x", "0.5,2,3"),
     {"d2f/d x[0] d x[1]", "d2f/d x[1] d x[0]"}),
    ("--jacobian", "vec", "jvec_bad", ("--x", "0.5,2"), {"d out[1]/d x[0]"}),
    ("--hessian", "q", "hq_bad", ("--a", "0.7", "--b", "-1.5"),
     {"d2f/d a d b", "d2f/d b d a"}),
])
def test_wrong_gradient_jacobian_hessian_blame_the_bug(kind, target, fn, args, where):
    r, obj = check_json(f"{SCALAR}:{target}", kind, f"{SCALAR}:{fn}", *args)
    assert r.code == 1
    c = obj["check"]
    assert {row["where"] for row in c["table"]} == where
    assert all(row["odd_one_out"] == "yours" for row in c["table"])


def test_jacobian_value_against_hand_derivation():
    # jvec_bad has sin(x0) where cos(x0) belongs: engine and FD must give cos.
    r, obj = check_json(f"{SCALAR}:vec", "--jacobian", f"{SCALAR}:jvec_bad", "--x", "0.5,2")
    row = obj["check"]["table"][0]
    assert row["user"] == pytest.approx(np.sin(0.5))
    assert row["engine"] == pytest.approx(np.cos(0.5), rel=1e-12)
    assert row["fd"] == pytest.approx(np.cos(0.5), rel=1e-8)


def test_shape_mismatch_reports_both_shapes():
    r, obj = check_json(f"{LOSS}:f", "--grad", f"{LOSS}:df_flat", *AT)
    assert r.code == 1
    assert obj["check"]["shapes"] == [{"block": "W", "yours": [6], "expected": [2, 3]}]
    plain = run("check", f"{LOSS}:f", "--grad", f"{LOSS}:df_flat", *AT)
    assert "returns shape (6,) for W; the gradient has shape (2, 3)" in plain.out


def test_table_is_bounded_to_the_worst_20_and_counts_the_rest():
    x = ",".join(str(0.1 * k + 0.05) for k in range(30))
    r, obj = check_json(f"{SCALAR}:square", "--grad", f"{SCALAR}:dsquare_half", "--x", x)
    assert r.code == 1
    c = obj["check"]
    assert c["disagreeing"] == 30 and len(c["table"]) == 20 and c["omitted"] == 10
    ratios = [row["ratio"] for row in c["table"]]
    assert ratios == sorted(ratios, reverse=True)
    # |yours - truth| = x_i grows with i: the worst 20 are the 20 largest x_i
    assert {row["where"] for row in c["table"]} == {f"x[{i}]" for i in range(10, 30)}


def test_function_the_engine_cannot_differentiate_is_checked_by_finite_differences():
    x = ("--x", "0.5,2,3")
    r, obj = check_json(f"{SCALAR}:cube_root", "--grad", f"{SCALAR}:dcube_root", *x)
    assert r.code == 0, r.err
    assert obj["check"]["engine"].startswith("unavailable: ")
    assert "cbrt" in obj["check"]["engine"]
    plain = run("check", f"{SCALAR}:cube_root", "--grad", f"{SCALAR}:dcube_root", *x)
    assert "note: the engine cannot differentiate this function" in plain.out
    r, obj = check_json(f"{SCALAR}:cube_root", "--grad", f"{SCALAR}:dcube_root_bad", *x)
    assert r.code == 1
    truth = np.array([0.5, 2, 3]) ** (-2 / 3) / 3
    for row in obj["check"]["table"]:
        i = int(row["where"][2])
        assert row["engine"] is None and row["odd_one_out"] == "yours"
        assert row["fd"] == pytest.approx(truth[i], rel=1e-8)
        assert row["user"] == pytest.approx(truth[i] * 1.5)


def test_a_cut_graph_is_not_taken_for_the_engine_answer():
    # math.erf on a Tensor gives a plain number: the engine's gradient would be 0.
    r, obj = check_json(f"{SCALAR}:erf_of", "--grad", f"{SCALAR}:derf_of", "--x", "0.3")
    assert r.code == 0, r.err
    # math.erf calls float(): the engine names the conversion and refuses its 0
    assert obj["check"]["engine"].startswith(
        "unavailable: erf_of converts a Tensor that requires grad to a number "
        "(float() at scalar.py:92)")
    assert obj["grad"] == {}


def test_at_a_kink_a_disagreement_is_reported_not_failed():
    # max(x, 0) at x = 0: the engine splits a tie in halves (0.5), so do central
    # differences; (x > 0) says 0. Neither is wrong at a kink.
    r, obj = check_json(f"{SCALAR}:relu_sum", "--grad", f"{SCALAR}:drelu_sum",
                        "--x", "0,1,-1")
    # One-sided derivatives at x[0]: 1 from the right, 0 from the left; (x > 0)'s 0
    # lies between them: a convention, not a mistake.
    assert r.code == 0, r.err
    c = obj["check"]
    assert c["status"] == "kink" and c["passed"] and c["kinks"]
    assert c["disagreeing"] == 0 and "1 component at a kink" in c["notes"][-1]


KINKED = """
import numpy as np


def k(x, y):
    return np.sum(np.abs(x)) + np.sum(y ** 3)


def dk_wrong_y(x, y):  # d(y^3)/dy = 3 y^2: +1 is wrong, and y has no kink
    return np.sign(x), 3 * y ** 2 + 1.0


def dk_right(x, y):  # sign(0) = 0: a subgradient of |x| at 0
    return np.sign(x), 3 * y ** 2


def dk_one_sided(x, y):  # 1 at x = 0: the right-hand derivative, also fine
    return np.where(x >= 0, 1.0, -1.0), 3 * y ** 2


def dk_outside(x, y):  # 5 at x = 0: outside [-1, 1], wrong at the kink too
    g = np.sign(x)
    g[0] = 5.0
    return g, 3 * y ** 2


def h(x):
    return np.sum(np.maximum(x, 0) ** 2) + np.max(x)


def dh(x, first=3.0):  # at x = (1, 1): 2 x_i plus a share of max's 1, in [2, 3]
    return np.array([first, 2.0])


def dh_outside(x):
    return dh(x, first=9.0)


def a(x):
    return np.abs(x[0] - x[1]) + x[2]


def da_together(x):  # (s, -s, 1) with |s| <= 1 is a subgradient at x0 = x1: s = 1
    return np.array([1.0, -1.0, 1.0])


def da_apart(x):  # each entry within [-1, 1], but along (1, 1, 0) f is flat: slope 2
    return np.array([1.0, 1.0, 1.0])
"""


@pytest.mark.parametrize("df, at, code, where", [
    ("dk_wrong_y", "k", 1, "y[0]"),
    ("dk_right", "k", 0, "pass"),  # (the engine's abs'(0) = 0 too: all agree)
    ("dk_one_sided", "k", 0, "kink"),
    ("dk_outside", "k", 1, "x[0]"),
    ("dh", "h", 0, "kink"),
    ("dh_outside", "h", 1, "x[0]"),
    ("da_together", "a", 0, "kink"),
    ("da_apart", "a", 1, "x[0]"),  # (a tester's find: passed as KINK per component)
])
def test_a_kink_excuses_only_answers_between_its_one_sided_derivatives(tmp_path, df, at,
                                                                        code, where):
    # Found by a tester: with x[0] on abs's kink, a wrong derivative of y (no
    # kink) passed as KINK. The truths: d|x|/dx at 0 is anything in [-1, 1] (the
    # one-sided derivatives), d(y^3)/dy = 3 y^2; for h at (1, 1) each component's
    # one-sided derivatives are 2 and 3.
    f = tmp_path / "kinked.py"
    f.write_text(KINKED, encoding="utf-8")
    point = {"k": ("--x", "0,0.5", "--y", "1,2"), "h": ("--x", "1,1"),
             "a": ("--x", "1,1,0.5")}[at]
    r, obj = check_json(f"{f}:{at}", "--grad", f"{f}:{df}", *point)
    assert r.code == code, r.err
    c = obj["check"]
    assert c["passed"] == (code == 0) and c["kinks"]
    if code:
        assert c["status"] == "fail" and c["table"][0]["where"] == where
        assert c["table"][0]["odd_one_out"] == "yours"
    else:
        assert c["status"] == where and c["disagreeing"] == 0


def test_random_points_are_drawn_again_off_a_kink():
    from gradcli.points import random_points

    rows = list(random_points({}, {"x": (3,)}, {}, ["x"], 30, 4,
                              at_kink=lambda p: p["x"][0] > 0))
    assert all(r.inputs["x"][0] <= 0 for r in rows)
    assert all(np.all(np.abs(r.inputs["x"]) <= 1) for r in rows)
    again = list(random_points({}, {"x": (3,)}, {}, ["x"], 1, 4, start=17,
                               at_kink=lambda p: p["x"][0] > 0))
    np.testing.assert_array_equal(again[0].inputs["x"], rows[16].inputs["x"])


def test_nan_in_every_answer_is_not_a_disagreement():
    x = {"x": np.array([1.0, 2.0])}
    nan = np.array([np.nan, 4.0])
    rep = compare_user("gradient", x, {"x": nan}, {"x": nan},
                       {"x": (nan, np.array([np.inf, 1e-9]))}, function="f.py:df",
                       expected_shapes={"x": (2,)})
    assert rep.passed and rep.disagreeing == 0


def test_a_wrong_engine_rule_is_the_odd_one_out_at_many_points(monkeypatch):
    # sin's rule broken for x > 0.25: at many points the engine is confirmed by
    # finite differences along random directions, which now fail, so every
    # component is differenced, and yours (cos x) is outvoted by none.
    from gradcli.engine.ops import OPS

    sin = OPS["sin"]
    monkeypatch.setattr(sin, "vjps", (lambda g, out, x: g * np.cos(x) * (1 + (x > 0.25)),))
    monkeypatch.setattr(sin, "local", None)
    r = run("check", f"{SCALAR}:sines", "--grad", f"{SCALAR}:dsines", "--shape", "x=4",
            "--domain", "x=0.5:1", "--random", "2", "--seed", "3", "--json")
    assert r.code == 1
    for rec in ndjson(r.out)[:-1]:
        rows = rec["check"]["table"]
        assert len(rows) == 4 and all(row["odd_one_out"] == "engine" for row in rows)
        x = np.array(rec["inputs"]["x"])
        for row in rows:
            i = int(row["where"][2])
            assert row["fd"] == pytest.approx(np.cos(x[i]), rel=1e-8)


# -- the odd one out, from the comparison itself --------------------------------------
def test_compare_user_names_whoever_the_other_two_outvote():
    x = {"x": np.array([1.0, 2.0, 3.0, 4.0])}
    truth = np.array([2.0, 4.0, 6.0, 8.0])
    user, engine, fd = truth.copy(), truth.copy(), truth.copy()
    user[0] += 1  # yours wrong
    engine[1] += 1  # the engine wrong
    fd[2] += 1  # finite differences wrong
    user[3], engine[3] = 7.0, 9.0  # all three differ
    err = np.full(4, 1e-9)
    rep = compare_user("gradient", x, {"x": user}, {"x": engine}, {"x": (fd, err)},
                       function="f.py:df", expected_shapes={"x": (4,)})
    odd = {row.where: row.odd for row in rep.table}
    assert odd == {"x[0]": "yours", "x[1]": "engine", "x[2]": "finite differences",
                   "x[3]": "none"}
    assert not rep.passed and rep.counts["agree"] == 0


def test_compare_user_without_finite_differences_cannot_tell_who_is_right():
    x = {"x": np.array([1.0])}
    rep = compare_user("gradient", x, {"x": np.array([3.0])}, {"x": np.array([2.0])},
                       {"x": (np.array([np.nan]), np.array([np.inf]))},
                       function="f.py:df", expected_shapes={"x": (1,)})
    assert rep.table[0].odd == "unknown" and not rep.passed


def test_finite_differences_of_a_hand_derived_gradient():
    x = np.array([0.3, -1.2, 2.0])
    fd = finite_differences("gradient", {"x": x}, ["x"],
                            f_value=lambda p: np.sum(np.sin(p["x"]) * p["x"]))
    values, errors = fd["x"]
    truth = np.cos(x) * x + np.sin(x)
    assert np.all(np.abs(values - truth) <= 2 * errors + 1e-12)


# -- bad input: clean errors ----------------------------------------------------------
@pytest.mark.parametrize("argv,code,words", [
    ((f"{LOSS}:f", "--grad", f"{LOSS}:df_missing", *AT), 2,
     ("df_missing", "does not take input 'v'")),
    ((f"{LOSS}:f", "--grad", f"{LOSS}:df_raises", *AT), 3,
     ("line", "df_raises", "ValueError: not implemented yet")),
    ((f"{LOSS}:f", "--grad", f"{LOSS}:df_one", *AT), 3, ("one array for 2 inputs",)),
    ((f"{LOSS}:f", "--grad", f"{LOSS}:df_text", *AT), 3, ("return real numbers",)),
    ((f"{LOSS}:f", "--grad", f"{LOSS}:nothing", *AT), 2, ("--grad", "nothing")),
    ((f"{LOSS}:f", "--grad", str(DATA / "absent.py:df"), *AT), 2, ("no such file",)),
    ((f"{LOSS}:f", "--grad", "2*W", *AT), 2, ("FILE.py:NAME",)),
    ((f"{LOSS}:f", "--grad", f"{LOSS}:df", "--hessian", f"{LOSS}:df", *AT), 2,
     ("one of --grad",)),
    ((f"{SCALAR}:vec", "--grad", f"{SCALAR}:dg", "--x", "1,2"), 3, ("--jacobian",)),
    (("sum(x**2)", "--x", "1,2", "--random", "3", "--domain", "x=1:1"), 2,
     ("--domain", "LO must be less than HI")),
    (("sum(x**2)", "--x", "1,2", "--random", "3", "--domain", "x=a:b"), 2, ("--domain",)),
    (("sum(x**2)", "--x", "1,2", "--random", "0"), 2, ("--random",)),
    (("sum(x**2)", "--x", "1,2", "--replay", "3"), 2, ("--replay goes with --random",)),
    (("sum(x**2)", "--x", "1,2", "--all"), 2, ("--all goes with",)),
    (("sum(x**2)", "--x", "1,2", "--random", "2", "--points", "p.csv"), 2, ("not both",)),
    (("sum(x**2)", "--x", "1,2", "--random", "2", "--shape", "x=3"), 2, ("--shape",)),
    ((f"{SCALAR}:g", "--grad", f"{SCALAR}:dg", "--x", "1,2", "--grad-output", "ones"), 2,
     ("--grad-output",)),
    (("sum(x**2)", "--x", "1,2", "--wrt", "x", "--random", "2", "--domain", "y=0:1"), 2,
     ("--domain y",)),
])
def test_bad_input_gives_one_clean_error(argv, code, words):
    assert_clean_error(run("check", *argv), code, *words)


def test_eval_random_needs_something_to_check():
    assert_clean_error(run("eval", "sum(x**2)", "--x", "1,2", "--random", "2"), 2,
                       "--random")


# -- many points -----------------------------------------------------------------------
def test_random_points_are_reproducible_by_seed_and_inside_their_domain():
    argv = ("check", f"{SCALAR}:g", "--grad", f"{SCALAR}:dg", "--x", "10,20,30",
            "--random", "4", "--json")
    a = run(*argv, "--seed", "5")
    b = run(*argv, "--seed", "5")
    c = run(*argv, "--seed", "6")
    assert a.code == 0, a.err
    assert a.out == b.out and a.out != c.out
    records = ndjson(a.out)
    assert [r.get("point") for r in records[:-1]] == [1, 2, 3, 4]
    summary = records[-1]["summary"]
    assert summary["seed"] == 5 and summary["points"] == 4 and summary["passed"] == 4
    for r in records[:-1]:
        x = np.array(r["inputs"]["x"])
        assert np.all(np.abs(x - [10, 20, 30]) <= 1.0)  # default: centre +- 1
        assert r["check"]["reference"] == "user" and r["passed"]
    d = ndjson(run(*argv, "--seed", "5", "--domain", "x=-3:-2").out)
    for r in d[:-1]:
        assert np.all((np.array(r["inputs"]["x"]) >= -3) & (np.array(r["inputs"]["x"]) <= -2))


def test_the_seed_is_printed_even_without_one_given():
    r = run("check", f"{SCALAR}:g", "--grad", f"{SCALAR}:dg", "--shape", "x=2",
            "--random", "2", "--format", "plain")
    assert r.code == 0
    assert "(seed " in r.out.splitlines()[0]


def test_replay_reproduces_a_failing_point():
    # dg_sometimes is wrong only where x[0] > 0.5: some points fail, some pass.
    argv = ("check", f"{SCALAR}:g", "--grad", f"{SCALAR}:dg_sometimes", "--shape", "x=3",
            "--seed", "11", "--json")
    many = ndjson(run(*argv, "--random", "8").out)
    points = {r["point"]: r for r in many[:-1]}
    failing = [k for k, r in points.items() if not r["passed"]]
    passing = [k for k, r in points.items() if r["passed"]]
    assert failing and passing
    for k, r in points.items():  # the bug's branch decides, by hand
        assert r["passed"] == (r["inputs"]["x"][0] <= 0.5)
    k = failing[-1]
    assert many[-1]["summary"]["replay"] == f"--seed 11 --replay {failing[0]}"
    one = run(*argv, "--random", "1", "--replay", str(k))
    assert one.code == 1
    again = ndjson(one.out)
    assert again[0]["point"] == k and again[0]["inputs"] == points[k]["inputs"]
    assert again[0]["check"]["table"][0]["where"] == "x[0]"
    ok = run(*argv, "--random", "1", "--replay", str(passing[0]))
    assert ok.code == 0


def test_failing_points_first_10_or_all():
    argv = ("check", f"{SCALAR}:g", "--grad", f"{SCALAR}:dg_bad", "--shape", "x=3",
            "--seed", "2", "--random", "12", "--format", "plain")
    r = run(*argv)
    assert r.code == 1
    lines = r.out.splitlines()
    assert lines[0] == "FAIL: 0 of 12 points passed, 12 random points (seed 2)"
    assert sum(ln.startswith("point ") for ln in lines) == 10
    assert "... and 2 more failing point(s) (--all lists them)" in lines
    assert any(ln.startswith("worst: point ") and "x[1]" in ln for ln in lines)
    every = run(*argv, "--all").out.splitlines()
    assert sum(ln.startswith("point ") for ln in every) == 12


def test_points_file_checks_each_row(tmp_path):
    f = tmp_path / "p.csv"
    # x[0] > 0.5 takes dg_sometimes's wrong branch: rows 2 and 4 fail, row 3 is bad.
    f.write_text('x\n"0.25,2,3"\n"1,1,1"\n"bad"\n"0.75,-1,2"\n')
    r = run("check", f"{SCALAR}:g", "--grad", f"{SCALAR}:dg_sometimes",
            "--points", str(f), "--json")
    assert r.code == 1
    records = ndjson(r.out)
    status = {rec["point"]: rec["status"] for rec in records[:-1]}
    assert status == {1: "pass", 2: "fail", 3: "error", 4: "fail"}
    s = records[-1]["summary"]
    assert (s["passed"], s["failed"], s["errors"], s["seed"]) == (1, 2, 1, None)
    assert s["failing"] == [2, 3, 4]


def test_eval_points_with_expect_and_check(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("x,y\n1,2\n3,4\n")
    r = run("eval", "x*y", "--points", str(f), "--expect-value", "2", "--json")
    assert r.code == 1
    recs = ndjson(r.out)
    assert [rec["passed"] for rec in recs[:-1]] == [True, False]  # 1*2 = 2, 3*4 = 12
    r = run("eval", "x*y", "--points", str(f), "--expect-grad", "x=4", "--format", "plain")
    assert r.code == 1 and "point 1: grad.x: expected 4, got 2" in r.out  # d/dx = y
    r = run("eval", "x*y", "--points", str(f), "--check", "--json")
    assert r.code == 0, r.err
    recs = ndjson(r.out)
    assert all(rec["check"]["passed"] for rec in recs[:-1])


# -- the README's failing examples (exit 1, so tests/test_readme.py cannot run them) --
def _text_blocks():
    import re
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    for block in re.findall(r"^```text[ \t]*\n(.*?)^```[ \t]*$", readme,
                            re.MULTILINE | re.DOTALL):
        lines = block.splitlines()
        if lines and lines[0].startswith("$ gradcli check") and "--grad" in lines[0]:
            yield shlex.split(lines[0][2:])[1:], lines[1:]


def test_readme_failing_examples_are_true(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    blocks = list(_text_blocks())
    assert len(blocks) == 2
    for argv, shown in blocks:
        r = run(*argv)
        assert r.code == 1, r.err
        out = r.out.splitlines()
        # (each number to the rounding of this machine's kernels: tests/shown.py)
        if "..." in shown:  # shortened: the lines shown before and after "..."
            cut = shown.index("...")
            assert same_lines(out[:cut], shown[:cut]), out
            assert same_lines(out[len(out) - (len(shown) - cut - 1):], shown[cut + 1:]), out
        else:
            assert same_lines(out, shown), out


# -- speed at many points (issue 13, "Speed"), without a wrong answer -----------------
NOT_BATCH_SAFE = '''
import numpy as np


def f(w):
    # w[0] is the first parameter, len(w) their number: wrong on a stack of points
    return w[0] ** 2 * len(w) + np.sum(np.sin(w))


def df(w):
    g = np.cos(w)
    g[0] += 2 * w[0] * len(w)
    return g


def df_wrong_first(w):
    g = np.cos(w)
    g[0] += 2 * w[0]  # forgot len(w)
    return g


def noisy(w):
    print("f was called")  # on stdout: must not reach gradcli's output
    return f(w)
'''


def test_many_points_with_a_function_that_is_not_batch_safe(tmp_path):
    # df = cos(w) + (2 n w_0, 0, ...) by hand; the wrong one misses the factor n = 4
    path = tmp_path / "nb.py"
    path.write_text(NOT_BATCH_SAFE, encoding="utf-8")
    argv = ("--shape", "w=4", "--random", "5", "--seed", "2", "--json")
    good = run("check", f"{path}:f", "--grad", f"{path}:df", *argv)
    assert good.code == 0, good.err
    assert all(rec["check"]["passed"] for rec in ndjson(good.out)[:-1])
    bad = run("check", f"{path}:f", "--grad", f"{path}:df_wrong_first", *argv)
    assert bad.code == 1, bad.err
    recs = ndjson(bad.out)[:-1]
    assert len(recs) == 5
    for rec in recs:
        w = np.array(rec["inputs"]["w"])
        rows = rec["check"]["table"]
        assert [row["where"] for row in rows] == ["w[0]"] and rows[0]["odd_one_out"] == "yours"
        truth = np.cos(w[0]) + 8 * w[0]
        assert rows[0]["fd"] == pytest.approx(truth, rel=1e-7)
        assert rows[0]["user"] == pytest.approx(np.cos(w[0]) + 2 * w[0], rel=1e-12)


def test_what_a_function_prints_while_differenced_goes_to_stderr(tmp_path):
    path = tmp_path / "nb.py"
    path.write_text(NOT_BATCH_SAFE, encoding="utf-8")
    r = run("check", f"{path}:noisy", "--grad", f"{path}:df", "--shape", "w=3",
            "--random", "2", "--seed", "5", "--json")
    assert r.code == 0, r.err
    recs = ndjson(r.out)  # every line is JSON
    assert len(recs) == 3 and all(rec["check"]["passed"] for rec in recs[:-1])
    assert "f was called" in r.err


def test_the_engine_evaluates_f_once_per_random_point(tmp_path, monkeypatch):
    # The kink test of a random point and the gradient check share one engine
    # evaluation (the gradient, with its kinks). (A stack of the points is
    # evaluated once too, to try them in a batch: f does not batch.)
    from gradcli import compute

    calls = []
    real = compute.evaluate

    def counted(target, inputs, **kwargs):
        if np.ndim(inputs["w"]) == 1:
            calls.append(kwargs.get("no_grad", False))
        return real(target, inputs, **kwargs)

    monkeypatch.setattr(compute, "evaluate", counted)
    path = tmp_path / "nb.py"
    path.write_text(NOT_BATCH_SAFE, encoding="utf-8")
    r = run("check", f"{path}:f", "--grad", f"{path}:df", "--shape", "w=3",
            "--random", "4", "--seed", "1")
    assert r.code == 0, r.err
    assert calls == [False] * 4


def test_a_gradient_evaluation_finds_the_kinks_the_forward_pass_records():
    # The kink test of random points reads them from the gradient's evaluation:
    # max(x, 0) at x = 0 (a tie) is a kink, at x = 1 it is not.
    from gradcli.compute import evaluate, kinks, prepare

    tgt = prepare(f"{SCALAR}:relu_sum", ["x"])
    for x, kink in ((np.array([0.0, 1.0]), True), (np.array([1.0, -2.0]), False)):
        notes = evaluate(tgt, {"x": x}, wrt=["x"]).notes
        recorded = kinks(evaluate(tgt, {"x": x}, no_grad=True, record=True).output)
        assert bool(notes) is kink and notes == recorded


# -- --const data: held fixed, integers kept, at one point and many ----------------
CONSTS = str(DATA / "consts.py")
XM = np.array([[1.0, 2], [3, 4], [5, 6]])


def test_const_matrix_is_held_at_random_points():
    r = run("check", f"{CONSTS}:fc", "--x", "1,2", "--X", "1,2;3,4;5,6", "--const", "X",
            "--grad", f"{CONSTS}:dfc", "--random", "3", "--seed", "2", "--json")
    assert r.code == 0, r.err
    rows = ndjson(r.out)
    for row in rows[:-1]:
        assert np.array_equal(row["inputs"]["X"], XM)  # not drawn
        assert row["status"] == "pass"
    assert rows[-1]["summary"]["passed"] == 3


def test_const_matrix_is_held_with_points_file(tmp_path):
    pts = tmp_path / "p.csv"
    pts.write_text('x\n"1,2"\n"0.5,-1"\n')
    r = run("check", f"{CONSTS}:fc", "--X", "1,2;3,4;5,6", "--const", "X",
            "--grad", f"{CONSTS}:dfc", "--points", str(pts))
    assert r.code == 0, r.err
    assert "2 of 2 points passed" in r.out


def test_const_in_expression_at_random_points():
    r = run("check", "0.5*sum((X@x)**2)", "--x", "1,2", "--X", "1,2;3,4;5,6",
            "--const", "X", "--random", "2", "--seed", "1", "--json")
    assert r.code == 0, r.err
    rows = ndjson(r.out)
    for row in rows[:-1]:
        assert list(row["check"]["inputs"]) == ["x"]
        x = np.array(row["inputs"]["x"])
        # the engine's gradient X^T X x, by hand, via the worst component
        w = row["check"]["worst"]
        assert w["engine"] == pytest.approx((XM.T @ XM @ x)[w["index"][0]], rel=1e-12)


def test_integer_index_const_stays_integer_at_random_points():
    r = run("check", f"{CONSTS}:fi", "--x", "1,2,3", "--idx", "0,2,2", "--const", "idx",
            "--grad", f"{CONSTS}:dfi", "--random", "3", "--seed", "3", "--json")
    assert r.code == 0, r.err
    rows = ndjson(r.out)
    assert all(row["inputs"]["idx"] == [0, 2, 2] for row in rows[:-1])


def test_integer_index_const_finite_differences_compare():
    # every finite difference ran (idx stayed integer): none unchecked
    r, obj = check_json(f"{CONSTS}:fi", "--x", "1,2,3", "--idx", "0,2,2", "--const",
                        "idx", "--grad", f"{CONSTS}:dfi")
    assert r.code == 0, r.err
    c = obj["check"]
    assert c["counts"]["agree"] == 3 and c["counts"]["engine_only"] == 0
    assert not any("raised" in n for n in c["notes"])
    assert obj["grad"]["x"] == [2.0, 0.0, 12.0]  # 2 x * count(0, 1, 2) = (1, 0, 2)


def test_wrong_derivative_with_integer_index_const_fails():
    r, obj = check_json(f"{CONSTS}:fi_wrong", "--x", "1,2,3", "--idx", "0,2,2",
                        "--const", "idx", "--grad", f"{CONSTS}:dfi_wrong")
    assert r.code == 1
    worst = obj["check"]["table"][0]
    assert worst["where"] == "x[2]" and worst["user"] == 6.0
    assert worst["fd"] == pytest.approx(12.0, rel=1e-6)


def test_verdict_does_not_claim_finite_differences_that_compared_nothing():
    r, obj = check_json(f"{CONSTS}:f_whole", "--x", "1,2,3", "--grad",
                        f"{CONSTS}:df_whole")
    c = obj["check"]
    assert c["counts"]["engine_only"] == 3
    r = run("check", f"{CONSTS}:f_whole", "--x", "1,2,3", "--grad", f"{CONSTS}:df_whole")
    assert "finite differences compared none" in r.out


def test_nothing_compared_is_not_exit_0():
    r = run("check", f"{CONSTS}:f_cut", "--x", "1,2,3", "--grad", f"{CONSTS}:df_cut_wrong")
    assert r.code == 1, (r.out, r.err)
    assert "INCONCLUSIVE" in r.out


# -- --random options: clean usage errors, never exit 70 ---------------------------
def test_domain_whose_width_overflows_is_a_usage_error():
    r = run("check", "sum(sqrt(x))", "--x", "1,1", "--domain", "x=-1e308:1e308",
            "--random", "5", "--seed", "3")
    assert_clean_error(r, 2, "--domain", "overflows")


def test_wide_domain_within_float64_draws_inside_it():
    r = run("check", "sum(x)", "--x", "1,1", "--domain", "x=-1e307:1e307",
            "--random", "3", "--seed", "3", "--json")
    assert r.code == 0, r.err
    for row in ndjson(r.out)[:-1]:
        x = np.array(row["inputs"]["x"])
        assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 1e307)
        assert row["check"]["worst"]["engine"] == 1.0  # d sum(x) / dx_i = 1


@pytest.mark.parametrize("shape,limit", [("100000,100000", ()),
                                         ("10,10", ("--max-elements", "50"))])
def test_shape_respects_max_elements(shape, limit):
    r = run("check", "sum(x)", "--shape", f"x={shape}", "--random", "2", *limit)
    assert_clean_error(r, 2, "--shape x", "too many elements")


def test_shape_at_max_elements_is_drawn():
    r = run("check", "sum(x)", "--shape", "x=5,10", "--random", "1", "--seed", "1",
            "--max-elements", "50", "--json")
    assert r.code == 0, r.err
    assert np.shape(ndjson(r.out)[0]["inputs"]["x"]) == (5, 10)


# -- --check-timeout bounds the user's derivative ------------------------------------
def test_derivative_that_never_returns_is_stopped():
    import signal
    import time

    before = signal.getsignal(signal.SIGALRM)
    t0 = time.monotonic()
    r = run("check", f"{CONSTS}:f_xy", "--grad", f"{CONSTS}:df_loop", "--x", "1,2",
            "--y", "0.5", "--check-timeout", "0.5")
    assert time.monotonic() - t0 < 5
    assert_clean_error(r, 3, "df_loop()", "did not return within the --check-timeout "
                       "of 0.5 s")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # cancelled
    assert signal.getsignal(signal.SIGALRM) is before  # restored


def test_derivative_swallowing_the_first_timeout_is_stopped_too():
    r = run("check", f"{CONSTS}:f_xy", "--grad", f"{CONSTS}:df_stubborn", "--x", "1,2",
            "--y", "0.5", "--check-timeout", "0.3")
    assert_clean_error(r, 3, "df_stubborn()", "did not return")


def test_timer_cancelled_after_a_derivative_that_returns():
    import signal

    r, obj = check_json(f"{CONSTS}:f_xy", "--grad", f"{CONSTS}:df_xy", "--x", "1,2",
                        "--y", "0.5", "--check-timeout", "0.5")
    assert r.code == 0, r.err
    assert obj["grad"]["x"] == [0.5, 0.5] and obj["grad"]["y"] == 3.0  # y; sum(x)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_ctrl_c_in_a_derivative_exits_130():
    import signal
    import subprocess
    import sys
    import time

    p = subprocess.Popen([sys.executable, "-m", "gradcli", "check", f"{CONSTS}:f_xy",
                          "--grad", f"{CONSTS}:df_loop", "--x", "1,2", "--y", "0.5",
                          "--check-timeout", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 130, err
    assert out == b""


def test_const_not_echoed_in_check_grad_json_unless_asked():
    at = ("--x", "1,2,3", "--idx", "0,2,2", "--const", "idx", "--grad", f"{CONSTS}:dfi")
    r, obj = check_json(f"{CONSTS}:fi", *at)
    assert r.code == 0, r.err
    assert list(obj["inputs"]) == ["x"]
    r, obj = check_json(f"{CONSTS}:fi", *at, "--echo-inputs")
    assert obj["inputs"]["idx"] == [0, 2, 2]


# -- messages name what was returned, and hints say what works ---------------------
@pytest.mark.parametrize("df,what", [("df_none", "returned None for 2 inputs"),
                                     ("df_text", "returned a str for 2 inputs"),
                                     ("df_gen", "returned a generator for 2 inputs")])
def test_derivative_returning_a_non_array_is_named(df, what):
    r = run("check", f"{CONSTS}:f_xy", "--grad", f"{CONSTS}:{df}", "--x", "1,2",
            "--y", "0.5")
    assert_clean_error(r, 3, what)
    assert "one array" not in r.err


def test_non_scalar_expression_with_grad_hints_jacobian():
    r = run("check", "x * A", "--x", "1,2", "--A", "3", "--grad", f"{CONSTS}:df_xa")
    assert_clean_error(r, 3, "shape (2,)", "--jacobian")
    assert "--grad-output" not in r.err


# -- a point where the value is not finite is not passed -----------------------------
@pytest.mark.parametrize("target,extra", [("sum(log(x))", ()),
                                          (f"{CONSTS}:f_log", ("--grad", f"{CONSTS}:df_log"))])
def test_point_with_non_finite_value_could_not_be_checked(target, extra):
    r = run("check", target, "--shape", "x=3", "--random", "8", "--seed", "3", *extra,
            "--json")
    rows = ndjson(r.out)
    outside = 0
    for row in rows[:-1]:
        x = np.array(row["inputs"]["x"])
        if np.any(x < 0):  # log of a negative number: nan, by hand
            outside += 1
            assert row["status"] == "error" and not row["passed"]
            assert "not finite" in row["verdict"]
        else:
            assert row["passed"], row["verdict"]
    assert 0 < outside < 8  # the seed draws both kinds
    s = rows[-1]["summary"]
    assert s["errors"] == outside and s["failed"] == 0
    assert r.code == 3


@pytest.mark.parametrize("cmd", [("check",), ("eval", "--check")])
def test_check_of_a_non_scalar_without_inputs_is_inconclusive_not_internal(cmd):
    # no input: nothing to differentiate, as for a single number
    r = run(cmd[0], "vstack([0, 0])", *cmd[1:], "--check-timeout", "2")
    assert r.code == 0, r.err
    assert "INCONCLUSIVE: no derivative could be compared" in r.out


def test_default_valued_parameter_is_held_at_random_points():
    r = run("check", f"{CONSTS}:f_scaled", "--x", "1,2", "--s", "3", "--grad",
            f"{CONSTS}:df_scaled", "--random", "3", "--seed", "4", "--json")
    assert r.code == 0, r.err
    for row in ndjson(r.out)[:-1]:
        assert row["inputs"]["s"] == 3.0 and row["passed"]


def test_a_failing_points_line_pastes_into_a_shell_without_the_data(tmp_path):
    # A tester pasted "at --X 1,0.5,-1;1,-0.3,2 ..." into a shell: the ';' split the
    # command, and the --const data (never drawn) made the line long.
    import shlex

    f = tmp_path / "lr.py"
    f.write_text("import numpy as np\n"
                 "def loss(w, X, y):\n    return np.sum((X @ w - y) ** 2)\n"
                 "def grad(w, X, y):\n    return 2 * X.T @ (X @ w - y) + 1.0\n",
                 encoding="utf-8")
    r = run("check", f"{f}:loss", "--grad", f"{f}:grad", "--shape", "w=3",
            "--X", "1,0.5,-1;1,-0.3,2;1,1.2,0.1", "--y", "1,0,1", "--const", "X",
            "--const", "y", "--random", "2", "--seed", "2", "--format", "plain")
    assert r.code == 1
    lines = [line for line in r.out.splitlines() if line.startswith("  at ")]
    assert len(lines) == 2
    for line in lines:
        words = shlex.split(line)
        assert words[:2] == ["at", "--w"] and len(words) == 3  # w alone, one word
    r = run("check", f"{f}:loss", "--grad", f"{f}:grad", "--shape", "w=3",
            "--shape", "X=3,3", "--y", "1,0,1", "--const", "y", "--random", "1",
            "--seed", "2", "--format", "plain")
    words = shlex.split(next(line for line in r.out.splitlines() if line.startswith("  at ")))
    assert "--y" not in words and ";" in words[words.index("--X") + 1]  # X drawn, quoted
