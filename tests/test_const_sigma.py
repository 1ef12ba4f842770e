"""Issue 13, sections 3 and 4: data inputs (--const, --echo-inputs, default-valued
parameters) and error bars (--sigma, --cov). Every number is checked against a
hand-derived formula, central finite differences or a seeded Monte Carlo."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from test_cli import DATA, arr, assert_error, ok, ok_json, run


def _file(tmp_path, text: str, name: str = "model.py") -> str:
    f = tmp_path / name
    f.write_text("import gradcli as gc\n\n" + text)
    return str(f)


# -- --const -----------------------------------------------------------------------
def test_const_is_not_differentiated_nor_echoed():
    obj = ok_json("eval", "dot(x, y)", "--x", "1,2", "--y", "3,4", "--const", "y")
    assert list(obj["grad"]) == ["x"]
    np.testing.assert_array_equal(arr(obj["grad"]["x"]), [3.0, 4.0])  # d/dx x.y = y
    assert obj["value"] == 11.0
    assert obj["inputs"] == {"x": [1.0, 2.0]}
    obj = ok_json("eval", "dot(x, y)", "--x", "1,2", "--y", "3,4", "--const", "y",
                  "--echo-inputs")
    assert obj["inputs"] == {"x": [1.0, 2.0], "y": [3, 4]}
    assert list(obj["grad"]) == ["x"]


def test_const_integer_data_indexes(tmp_path):
    target = _file(tmp_path, "def f(x, y):\n    return (x[y] ** 2).sum()\n")
    obj = ok_json("eval", target, "--x", "1,2,3", "--y", "0,2,2", "--const", "y")
    # sum of x0^2 + 2 x2^2: gradient (2 x0, 0, 4 x2)
    assert obj["value"] == 1 + 2 * 9
    np.testing.assert_array_equal(arr(obj["grad"]["x"]), [2.0, 0.0, 12.0])
    # without --const the labels are floats, which cannot index: a clean error
    assert_error(run("eval", target, "--x", "1,2,3", "--y", "0,2,2"), 3, "IndexError")
    # --check varies x only; y keeps its integer values in finite differences
    r = ok("check", target, "--x", "1,2,3", "--y", "0,2,2", "--const", "y")
    assert r.out.startswith("check PASS")
    obj = ok_json("hessian", target, "--x", "1,2,3", "--y", "0,2,2", "--const", "y",
                  "--check")
    np.testing.assert_array_equal(arr(obj["hessian"]["x"]["x"]), np.diag([2.0, 0, 4]))
    assert list(obj["hessian"]) == ["x"] and "y" not in obj["inputs"]


def test_const_fractional_data_stays_float():
    obj = ok_json("eval", "sum(x*y)", "--x", "1,2", "--y", "0.5,1", "--const", "y",
                  "--echo-inputs")
    assert obj["inputs"]["y"] == [0.5, 1.0]
    assert obj["value"] == 2.5


def test_const_in_jacobian():
    obj = ok_json("jacobian", "x*y", "--x", "1,2", "--y", "3,4", "--const", "y")
    assert list(obj["jacobian"]) == ["x"] and list(obj["inputs"]) == ["x"]
    np.testing.assert_array_equal(arr(obj["jacobian"]["x"]), np.diag([3.0, 4.0]))


@pytest.mark.parametrize("args, says", [
    (("--const", "x", "--wrt", "x"), "--const x and --wrt x"),
    (("--const", "z"), "--const z: no input named 'z'"),
])
def test_const_conflicts_are_usage_errors(args, says):
    assert_error(run("eval", "dot(x, y)", "--x", "1,2", "--y", "3,4", *args), 2, says)


def test_json_of_a_large_data_input_is_small(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2000, 50))
    y = (rng.random(2000) < 0.5).astype(float)
    w = rng.normal(size=50) * 0.1
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    target = _file(tmp_path, "def loss(w, X, y):\n"
                   "    z = X @ w\n"
                   "    return (gc.softplus(z) - y * z).sum()\n")
    r = ok("eval", target, "--w", ",".join(map(repr, w.tolist())), "--X", f"@{tmp_path}/X.npy",
           "--y", f"@{tmp_path}/y.npy", "--const", "X", "--const", "y", "--json")
    assert len(r.out) < 4000  # 50 inputs, 50 gradient components, no X
    obj = ok_json("eval", target, "--w", ",".join(map(repr, w.tolist())),
                  "--X", f"@{tmp_path}/X.npy", "--y", f"@{tmp_path}/y.npy",
                  "--const", "X", "--const", "y")
    assert list(obj["inputs"]) == ["w"] and list(obj["grad"]) == ["w"]
    # logistic loss: the gradient is X^T (sigmoid(X w) - y)
    want = X.T @ (1 / (1 + np.exp(-(X @ w))) - y)
    np.testing.assert_allclose(arr(obj["grad"]["w"]), want, rtol=1e-10, atol=1e-10)


def test_default_valued_parameter_is_constant_unless_wrt():
    q = np.array([0.1, 0.2, 0.3])
    obj = ok_json("eval", str(DATA / "energy.py"), "--q", "0.1,0.2,0.3", "--k", "2")
    assert list(obj["grad"]) == ["q"]  # energy = k/2 |q|^2: d/dq = k q
    np.testing.assert_allclose(arr(obj["grad"]["q"]), 2 * q, rtol=1e-15)
    obj = ok_json("eval", str(DATA / "energy.py"), "--q", "0.1,0.2,0.3", "--k", "2",
                  "--wrt", "k")
    assert list(obj["grad"]) == ["k"]
    np.testing.assert_allclose(obj["grad"]["k"], q @ q / 2, rtol=1e-15)


def test_default_valued_parameter_is_constant_with_points(tmp_path):
    (tmp_path / "p.csv").write_text("q\n1\n3\n")
    target = _file(tmp_path, "def f(q, n=2.0):\n    return q ** n\n")
    r = ok("eval", target, "--points", str(tmp_path / "p.csv"), "--n", "3")
    # d/dq q^3 = 3 q^2; no gradient column for n
    assert r.out.splitlines() == ["row,value,grad.q,error", "1,1,3,", "2,27,27,"]


# -- --sigma and --cov ---------------------------------------------------------------
MGH = ("eval", "m*g*h", "--m", "2", "--g", "9.81", "--h", "10")


def test_sigma_hand_derived():
    obj = ok_json(*MGH, "--sigma", "m=0.1", "--sigma", "h=0.05")
    m, g, h, um, uh = 2.0, 9.81, 10.0, 0.1, 0.05
    var_m, var_h = (g * h * um) ** 2, (m * g * uh) ** 2
    u = obj["uncertainty"]
    assert u["std"] == pytest.approx(math.sqrt(var_m + var_h), rel=1e-14)
    assert list(u["contributions"]) == ["m", "h"]  # the larger share first
    assert u["contributions"]["m"]["variance"] == pytest.approx(var_m, rel=1e-14)
    assert u["contributions"]["h"]["share"] == pytest.approx(var_h / (var_m + var_h))
    # second order: H_mh = g, so tr(H S H S)/2 = (g um uh)^2; no mean shift
    assert u["second_order"]["std"] == pytest.approx(
        math.sqrt(var_m + var_h + (g * um * uh) ** 2), rel=1e-12)
    assert u["second_order"]["mean_shift"] == 0
    assert u["notes"] == [] and "covariance" not in u
    r = ok(*MGH, "--sigma", "m=0.1", "--sigma", "h=0.05", "--format", "table")
    assert "value = 196.2 +- 9.9" in r.out
    assert "m 99.0%, h 1.0%" in r.out
    r = ok(*MGH, "--sigma", "m=0.1", "--sigma", "h=0.05", "--format", "plain")
    std = float(next(line.split()[1] for line in r.out.splitlines()
                     if line.startswith("uncertainty.std ")))
    assert std == pytest.approx(math.sqrt(var_m + var_h), rel=1e-14)


def test_covariance_terms_hand_derived():
    a, b, sa, sb, c = 1.5, -2.0, 0.3, 0.2, 0.04
    obj = ok_json("eval", "a*b", "--a", str(a), "--b", str(b), "--sigma", f"a={sa}",
                  "--sigma", f"b={sb}", "--cov", f"a,b={c}")
    u = obj["uncertainty"]
    # u^2 = (b sa)^2 + (a sb)^2 + 2 (df/da)(df/db) cov(a, b) = ... + 2 b a c
    want = (b * sa) ** 2 + (a * sb) ** 2 + 2 * a * b * c
    assert u["variance"] == pytest.approx(want, rel=1e-13)
    assert u["contributions"]["a,b"]["variance"] == pytest.approx(2 * a * b * c)
    assert sum(v["variance"] for v in u["contributions"].values()) == pytest.approx(want)
    # a full covariance matrix of a vector input: u^2 = w^T M w
    w, M = np.array([1.0, -2.0, 0.5]), np.array([[0.04, 0.01, 0.0],
                                                 [0.01, 0.09, -0.02],
                                                 [0.0, -0.02, 0.01]])
    obj = ok_json("eval", "sum(w*x)", "--x", "1,2,3", "--w", "1,-2,0.5", "--wrt", "x",
                  "--cov", "x,x=" + ";".join(",".join(map(str, r)) for r in M))
    assert obj["uncertainty"]["variance"] == pytest.approx(w @ M @ w, rel=1e-13)


def test_per_component_sigma():
    obj = ok_json("eval", "sum(x*x)", "--x", "1,2", "--sigma", "x=0.1,0.3")
    # (2 x0 s0)^2 + (2 x1 s1)^2
    assert obj["uncertainty"]["variance"] == pytest.approx(0.2 ** 2 + 1.2 ** 2)


def _central_jacobian(f, x, h=1e-6):
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=1)


def test_vector_output_covariance_against_finite_differences():
    x0, y0 = np.array([0.3, 1.1, -0.7]), 0.8
    sx, sy, cxy = np.array([0.05, 0.1, 0.02]), 0.2, np.array([0.001, -0.002, 0.0])
    obj = ok_json("eval", "sin(x)*y + x*x", "--x", "0.3,1.1,-0.7", "--y", "0.8",
                  "--sigma", "x=0.05,0.1,0.02", "--sigma", "y=0.2",
                  "--cov", "x,y=0.001,-0.002,0")

    def f(v):
        return np.sin(v[:3]) * v[3] + v[:3] ** 2

    J = _central_jacobian(f, np.append(x0, y0))
    S = np.diag(np.append(sx, sy) ** 2)
    S[:3, 3] = S[3, :3] = cxy
    want = J @ S @ J.T
    u = obj["uncertainty"]
    np.testing.assert_allclose(arr(u["covariance"]), want, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(arr(u["std"]), np.sqrt(np.diag(want)), rtol=1e-7)
    total = sum(arr(v["variance"]) for v in u["contributions"].values())
    np.testing.assert_allclose(total, np.diag(want), rtol=1e-7)
    assert obj["grad"] == {}  # a vector output: its covariance, not a gradient


def test_monte_carlo_linear():
    # f = 2a - 3b + c/2 (linear: first order is exact), correlated a and b
    mean = np.array([1.0, 2.0, 3.0])
    S = np.array([[0.04, 0.018, 0.0], [0.018, 0.09, 0.0], [0.0, 0.0, 0.25]])
    obj = ok_json("eval", "2*a - 3*b + c/2", "--a", "1", "--b", "2", "--c", "3",
                  "--sigma", "a=0.2", "--sigma", "b=0.3", "--sigma", "c=0.5",
                  "--cov", "a,b=0.018")
    draws = np.random.default_rng(13).multivariate_normal(mean, S, size=200_000)
    mc = np.std(draws @ np.array([2.0, -3.0, 0.5]))
    assert obj["uncertainty"]["std"] == pytest.approx(mc, rel=0.02)
    assert obj["uncertainty"]["second_order"]["std"] == pytest.approx(
        obj["uncertainty"]["std"], rel=1e-12)  # no curvature


def test_non_linear_note():
    obj = ok_json("eval", "exp(10*a)", "--a", "1", "--sigma", "a=0.1")
    # f' = 10 e^10a, f'' = 100 e^10a: u1 = e^10, u2^2 = u1^2 + (f'' s^2)^2 / 2
    u = obj["uncertainty"]
    e = math.exp(10)
    assert u["std"] == pytest.approx(e, rel=1e-12)
    assert u["second_order"]["std"] == pytest.approx(e * math.sqrt(1.5), rel=1e-12)
    assert u["second_order"]["mean_shift"] == pytest.approx(0.5 * 100 * e * 0.01)
    assert "strongly non-linear" in u["notes"][0] and "22%" in u["notes"][0]
    r = ok("eval", "exp(10*a)", "--a", "1", "--sigma", "a=0.1")
    assert "note: the function is strongly non-linear over +-1 sigma" in r.err
    # a tenth of the sigma: the second-order term is small, no note
    r = ok("eval", "exp(10*a)", "--a", "1", "--sigma", "a=0.01")
    assert "non-linear" not in r.err


@pytest.mark.parametrize("args, says", [
    (("--sigma", "a=-0.1"), "cannot be negative"),
    (("--sigma", "q=1"), "no input named 'q'"),
    (("--sigma", "a=1,2"), "shape (2,) does not fit input a"),
    (("--sigma", "a=1", "--sigma", "b=1", "--cov", "a,b=2"), "not positive semi-definite"),
    (("--cov", "x,x=1,2;3,4"), "not symmetric"),
    (("--cov", "x,x=1,0;0,-1"), "not positive semi-definite"),
    (("--cov", "x,x=1,2,3"), "shape (3,) does not fit"),
    (("--sigma", "a=1", "--cov", "a,b=0.1"), "b has no uncertainty"),
    (("--sigma", "a=1", "--cov", "a,a=1"), "given twice"),
    (("--sigma", "a"), "expected NAME=VALUE"),
    (("--cov", "a=1"), "expected NAME,NAME=VALUE"),
    (("--sigma", "b=1", "--const", "b"), "'b' is a constant"),
    (("--sigma", "b=1", "--wrt", "a"), "'b' is not differentiated"),
    (("--sigma", "a=1", "--no-grad"), "cannot go with --no-grad"),
])
def test_sigma_usage_errors(args, says):
    r = run("eval", "a*b + sum(x)", "--a", "1", "--b", "2", "--x", "1,2", *args)
    assert_error(r, 2, says)


# -- extreme scales: nothing squared before the square root (under/overflow) --------
def test_sigma_tiny_is_not_lost_to_underflow():
    # f = x: u_f = 1 * sigma exactly (one term: |df/dx| sigma, rounded once);
    # sigma^2 is subnormal (or 0) in float64
    s = 1.2345678901234567e-160
    u = ok_json("eval", "x", "--x", "1", "--sigma", f"x={s}")["uncertainty"]
    assert u["std"] == s
    assert u["contributions"]["x"]["share"] == 1.0
    r = ok("eval", "x", "--x", "1", "--sigma", "x=1e-170", "--format", "plain")
    lines = dict(line.split(maxsplit=1) for line in r.out.splitlines())
    assert float(lines["uncertainty.std"]) == 1e-170
    assert float(lines["uncertainty.share.x"]) == 1.0  # the shares add to 1
    # f = 1e-200 x: u_f = 1e-200 * 1e-100
    u = ok_json("eval", "x*1e-200", "--x", "1", "--sigma", "x=1e-100")["uncertainty"]
    assert u["std"] == 1e-200 * 1e-100
    assert u["contributions"]["x"]["share"] == 1.0
    # an ordinary single term is exact too: |3| * 0.1, rounded once
    assert ok_json("eval", "3*x", "--x", "1", "--sigma", "x=0.1")[
        "uncertainty"]["std"] == 3 * 0.1


def test_correlated_tiny_sigmas():
    # f = 1e-200 (a + b), sigma_a = sigma_b = 1e-100, cov(a, b) = -5e-201:
    # u^2 = 1e-400 (1e-200 + 1e-200 - 1e-200) = 1e-600, u = 1e-300;
    # shares a 1, b 1, a,b -1 (they add to 1)
    u = ok_json("eval", "(a+b)*1e-200", "--a", "1", "--b", "2", "--sigma", "a=1e-100",
                "--sigma", "b=1e-100", "--cov", "a,b=-5e-201")["uncertainty"]
    assert u["std"] == pytest.approx(1e-300, rel=1e-14)
    shares = {k: v["share"] for k, v in u["contributions"].items()}
    assert shares == pytest.approx({"a": 1.0, "b": 1.0, "a,b": -1.0}, rel=1e-14)


def test_large_std_with_an_overflowing_variance():
    # f = exp(x) at 700, sigma 1: u = e^700 (finite) though u^2 = e^1400 is not;
    # second order: f'' = e^700, u2^2 = u^2 + (f'' s^2)^2 / 2, mean shift f'' s^2 / 2
    e = math.exp(700)
    obj = ok_json("eval", "exp(x)", "--x", "700", "--sigma", "x=1")
    u = obj["uncertainty"]
    assert u["std"] == e  # e^700 * 1
    assert u["contributions"]["x"]["share"] == 1.0
    assert u["variance"] == "inf"  # the true variance is beyond float64
    assert u["second_order"]["std"] == pytest.approx(e * math.sqrt(1.5), rel=1e-12)
    assert u["second_order"]["mean_shift"] == pytest.approx(e / 2, rel=1e-12)
    # the warning names the real cause (the Jacobian is finite), in the JSON too
    assert not any("Jacobian" in w for w in obj["warnings"])
    assert any("variance overflows" in w for w in obj["warnings"])
    r = ok("eval", "exp(x)", "--x", "700", "--sigma", "x=1", "--format", "plain")
    lines = dict(line.split(maxsplit=1) for line in r.out.splitlines())
    assert float(lines["uncertainty.std"]) == pytest.approx(e, rel=1e-15)
    assert float(lines["uncertainty.share.x"]) == 1.0
    assert "variance overflows" in r.err and "Jacobian" not in r.err


def test_vector_output_at_extreme_scales():
    # f = exp(x), sigma = (1, 2), uncorrelated: covariance diag(e^1400, 4 e^2);
    # the first entry overflows (inf), the rest are ordinary numbers
    u = ok_json("eval", "exp(x)", "--x", "700,1", "--sigma", "x=1,2")["uncertainty"]
    np.testing.assert_allclose(arr(u["std"]), [math.exp(700), 2 * math.e], rtol=1e-15)
    cov = arr(u["covariance"])
    assert cov[0, 0] == math.inf and cov[0, 1] == 0 and cov[1, 0] == 0
    assert cov[1, 1] == pytest.approx(4 * math.e ** 2, rel=1e-15)
    # f = 1e-150 x with cov(x) = [[4, 1], [1, 9]] 1e-300: u = (2, 3) 1e-300, while
    # the covariance (1e-600 [[4, 1], [1, 9]]) underflows to 0
    u = ok_json("eval", "x*1e-150", "--x", "1,2",
                "--cov", "x,x=4e-300,1e-300;1e-300,9e-300")["uncertainty"]
    np.testing.assert_allclose(arr(u["std"]), [2e-300, 3e-300], rtol=1e-14)
    assert arr(u["contributions"]["x"]["share"]).tolist() == [1.0, 1.0]


def test_jacobian_warning_only_when_true_and_in_json():
    # a Jacobian that really is inf: d sqrt(x)/dx at 0
    obj = ok_json("eval", "sqrt(x)", "--x", "0", "--sigma", "x=1")
    assert any("the Jacobian has inf or nan" in w for w in obj["warnings"])


def test_huge_sigma_no_raw_numpy_warning():
    # a huge sigma: the variance overflows, no raw numpy warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = ok("eval", "x", "--x", "1", "--sigma", "x=1e200", "--format", "plain")
    assert [str(w.message) for w in caught] == []
    assert "RuntimeWarning" not in r.err and "Jacobian" not in r.err
    lines = dict(line.split(maxsplit=1) for line in r.out.splitlines())
    assert float(lines["uncertainty.std"]) == 1e200


def test_value_overflow_warned_once():
    # the value overflows (1e400), its gradient does not: each warning once
    args = ("eval", "x*y", "--x", "1e200", "--y", "1e200", "--sigma", "x=1")
    r = ok(*args)
    assert r.err.count("value is inf") == 1
    obj = ok_json(*args)
    assert sum("value is inf" in w for w in obj["warnings"]) == 1
    assert obj["uncertainty"]["std"] == pytest.approx(1e200, rel=1e-15)  # dy/dx = y
    assert any("variance overflows" in w for w in obj["warnings"])


def test_empty_output_has_an_empty_error_bar():
    u = ok_json("eval", "x[:0]", "--x", "1,2", "--sigma", "x=1")["uncertainty"]
    assert u["std"] == [] and u["covariance"] == []
