"""`gradcli diff` and `gradcli taylor`.

diff: formulas against hand-derived derivatives; every printed formula pasted back
into `gradcli eval` (the round trip) and compared with the engine's derivative, for
every op of the op table that sympy has a form for; the --numpy function run and
compared likewise. taylor: coefficients against hand-derived series (exp, sin,
1/(1-x)), against sympy, and Taylor mode against nested reverse mode. Error cases
exit cleanly with their documented codes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_backends import CASES, point
from test_cli import run

from gradcli.engine.ops import OPS


def ok(*argv: str):
    r = run(*argv)
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out[:300]}\nstderr: {r.err}"
    return r


def formulas(*argv: str) -> dict[str, str]:
    """``name = text`` lines of plain output."""
    out = {}
    for line in ok(*argv).out.splitlines():
        name, _, text = line.partition(" = ")
        out[name] = text
    return out


def value_args(values: dict[str, np.ndarray]) -> list[str]:
    out = []
    for n, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        text = (repr(float(v)) if v.ndim == 0 else ",".join(map(repr, v.tolist())) if
                v.ndim == 1 else ";".join(",".join(map(repr, r)) for r in v.tolist()))
        out += [f"--{n}", text]
    return out


def eval_value(text: str, values: dict[str, np.ndarray]) -> np.ndarray:
    """A formula pasted into `gradcli eval` (only the inputs it uses)."""
    from gradcli.parse import free_names, parse

    used = free_names(parse(text, inputs=set(values), ops=OPS))
    r = ok("eval", text, "--json", "--no-grad",
           *value_args({n: v for n, v in values.items() if n in used}))
    return np.asarray(json.loads(r.out)["value"], dtype=np.float64)


def engine_gradient(target: str, values, wrt=None) -> dict[str, np.ndarray]:
    args = ["eval", target, "--json", *value_args(values)]
    for n in wrt or []:
        args += ["--wrt", n]
    return {k: np.asarray(v, dtype=np.float64)
            for k, v in json.loads(ok(*args).out)["grad"].items()}


# -- diff: hand-derived ---------------------------------------------------------------
def test_the_issues_examples():
    assert formulas("diff", "2*dot(x,x)", "--shape", "x=4") == {"grad.x": "4*x"}
    assert formulas("diff", "x @ A @ x", "--shape", "x=3", "--shape", "A=3,3",
                    "--wrt", "x") == {"grad.x": "(A + A.T) @ x"}


def test_hand_derived_formulas_evaluate_to_the_hand_derived_values():
    rng = np.random.default_rng(1)
    x, A = rng.normal(size=3), rng.normal(size=(3, 3))
    got = formulas("diff", "x @ A @ x", *value_args({"x": x, "A": A}))
    np.testing.assert_allclose(eval_value(got["grad.x"], {"x": x, "A": A}),
                               (A + A.T) @ x, rtol=1e-12)
    np.testing.assert_allclose(eval_value(got["grad.A"], {"x": x, "A": A}),
                               np.outer(x, x), rtol=1e-12)
    hess = formulas("diff", "x @ A @ x", *value_args({"x": x, "A": A}), "--wrt", "x",
                    "--hessian")
    np.testing.assert_allclose(eval_value(hess["hessian.x.x"], {"x": x, "A": A}),
                               A + A.T, rtol=1e-12)
    jac = formulas("diff", "A @ x", *value_args({"x": x, "A": A}), "--jacobian",
                   "--wrt", "x")
    np.testing.assert_allclose(eval_value(jac["jacobian.x"], {"x": x, "A": A}), A)
    # elementwise: d/dx sum(sin(x) x) = x cos(x) + sin(x), at any x
    el = formulas("diff", "sum(sin(x)*x)", "--shape", "x=5")
    np.testing.assert_allclose(eval_value(el["grad.x"], {"x": x}),
                               x * np.cos(x) + np.sin(x), rtol=1e-12)
    sc = formulas("diff", "s*dot(x,x) + log(s)", "--shape", "x=3", "--shape", "s=")
    np.testing.assert_allclose(eval_value(sc["grad.s"], {"x": x, "s": np.array(2.0)}),
                               x @ x + 0.5, rtol=1e-12)


def test_no_closed_form_prints_components_bounded_by_max_terms():
    r = ok("diff", "sum(x)**2", "--x", "0,1,2,3", "--max-terms", "2")
    lines = r.out.splitlines()
    assert [line.split(" = ")[0] for line in lines] == ["grad.x[0]", "grad.x[1]"]
    x = np.array([0.5, 1.0, 2.0, 3.0])
    for line in lines:  # each component is 2 sum(x)
        assert eval_value(line.split(" = ")[1], {"x": x}) == pytest.approx(2 * x.sum())
    assert "no closed matrix or elementwise form" in r.err and "2 of 4" in r.err


def test_json_latex_numpy():
    r = json.loads(ok("diff", "x @ A @ x", "--shape", "x=3", "--shape", "A=3,3",
                      "--wrt", "x", "--json").out)
    p = r["formulas"][0]["pieces"][0]
    assert p["text"] == "(A + A.T) @ x" and "A^{T}" in p["latex"]
    assert "MatrixSymbol" in p["srepr"] and r["point_kind"] == "random"
    latex = ok("diff", "sum(sin(x)*x)", "--x", "0,1", "--latex").out
    assert latex.startswith(r"\nabla_{x} f = ") and r"\cos" in latex
    code = ok("diff", "x @ A @ x", "--shape", "x=3", "--shape", "A=3,3", "--numpy").out
    ns: dict = {}
    exec(compile(code, "<diff --numpy>", "exec"), ns)  # our own generated code, in a test
    rng = np.random.default_rng(2)
    x, A = rng.normal(size=3), rng.normal(size=(3, 3))
    np.testing.assert_allclose(ns["grad_x"](x, A), (A + A.T) @ x)
    np.testing.assert_allclose(ns["grad_A"](x), np.outer(x, x))


def test_function_file_formula_is_along_the_path(tmp_path):
    f = tmp_path / "f.py"
    f.write_text("import gradcli as gc\n\ndef f(x):\n    y = x\n    for _ in range(3):\n"
                 "        y = y * x if x.sum() > 0 else -y\n    return gc.sum(y)\n")
    r = ok("diff", f"{f}:f", "--x", "0.5,1.5")
    name, _, text = r.out.strip().partition(" = ")
    assert name == "grad.x" and "path" in r.err
    x = np.array([0.5, 1.5])
    np.testing.assert_allclose(eval_value(text, {"x": x}), 4 * x**3)  # sum(x**4)


def test_a_wrong_formula_is_never_printed(monkeypatch):
    from gradcli import formula

    real = formula.formula_value
    monkeypatch.setattr(formula, "formula_value",
                        lambda *a, **k: np.asarray(real(*a, **k)) + 1e-3)
    r = run("diff", "2*dot(x,x)", "--shape", "x=4")
    assert r.code == 70 and r.out == "" and "disagrees" in r.err


@pytest.mark.parametrize("argv, code, message", [
    (["sin(x)*y", "--shape", "x="], 2, "--shape y=DIMS"),
    (["sin(x)", "--shape", "x=3"], 3, "--jacobian"),
    (["sin(x)", "--x", "1", "--shape", "x="], 2, "both a value and a --shape"),
    (["sin(x)", "--shape", "x=a"], 2, "whole number"),
    (["sin(x)", "--x", "1", "--hessian", "--jacobian"], 2, "choose one"),
    (["log(x)", "--x", "0"], 3, "not finite"),
])
def test_diff_errors_are_clean(argv, code, message):
    r = run("diff", *argv)
    assert r.code == code and r.out == "" and message in r.err
    assert "Traceback" not in r.err


# -- diff: every op, round trip through `gradcli eval` ----------------------------------
# sympy writes the derivative of its Mod (remainder, mod) unevaluated in y: no formula,
# said as such (exit 3), nothing printed.
NO_FORM = {"remainder", "mod"}
# Its case's M^-2 entries are rational functions longer than an expression may be
# (10,000 characters): no formula that gradcli eval could read back.
TOO_LONG = {"matrix_power"}


@pytest.mark.parametrize("name", sorted(n for n in CASES if OPS[n].sym is not None
                                        or n == "detach"))
def test_every_op_formula_round_trips_through_eval(name):
    """diff of sum(op(...)) at the op's test point: each printed formula, pasted
    into `gradcli eval`, equals `gradcli eval`'s gradient (unsimplified, to keep
    the 3x3 inverse's fast: simplification is covered above)."""
    from gradcli.compute import Target
    from gradcli.errors import EvaluationError
    from gradcli.formula import derive, engine_blocks, verify
    from gradcli.parse import free_names, parse

    target = f"sum({CASES[name]})"
    values = point(name)
    if name in ("det", "inv", "solve"):  # 2 x 2: a 3 x 3 inverse's formulas are slow
        values["M"], values["x"] = values["M"][:2, :2], values["x"][:2]
    tree = parse(target, inputs=set(values), ops=OPS)
    values = {n: v for n, v in values.items() if n in free_names(tree)}
    if name in NO_FORM:
        with pytest.raises(EvaluationError, match="no formula"):
            derive("gradient", values, list(values), tree=tree, timeout=None,
                   simplify=False)
        return
    if name in TOO_LONG:
        with pytest.raises(EvaluationError, match="characters"):
            derive("gradient", values, list(values), tree=tree, timeout=None,
                   simplify=False)
        return
    d = derive("gradient", values, list(values), tree=tree, timeout=None, max_terms=4,
               simplify=False)
    want = engine_gradient(target, values)
    verify(d, engine_blocks("gradient", Target(target, tree=tree), values, list(values),
                            10**7), values, 10**7)
    for b in d.blocks:
        for p in b.pieces:
            expected = want[b.name.removeprefix("grad.")]
            if p.index is not None:
                expected = expected[p.index]
            got = np.broadcast_to(eval_value(p.text, values), np.shape(expected))
            np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9, err_msg=p.text)


# -- taylor -----------------------------------------------------------------------------
def taylor_json(*argv: str) -> dict:
    return json.loads(ok("taylor", *argv, "--json").out)


@pytest.mark.parametrize("target, x0, derivatives", [
    ("exp(x)", 0.0, [1.0] * 11),
    ("sin(x)", 0.0, [0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0]),
    ("1/(1-x)", 0.0, [math.factorial(k) for k in range(11)]),
    ("1/(1-x)", 0.5, [math.factorial(k) * 2.0 ** (k + 1) for k in range(11)]),
    ("exp(2*x)", 0.3, [2.0**k * math.exp(0.6) for k in range(11)]),
])
def test_taylor_against_hand_derived_series(target, x0, derivatives):
    r = taylor_json(target, "--x", repr(x0), "--order", "10")
    np.testing.assert_allclose(r["derivatives"], derivatives, rtol=1e-12, atol=1e-12)
    assert r["check"]["passed"]
    fact = [math.factorial(k) for k in range(11)]
    np.testing.assert_allclose(r["coefficients"], np.array(derivatives) / fact,
                               rtol=1e-12, atol=1e-15)


def test_taylor_plain_output_and_polynomial_round_trip():
    r = ok("taylor", "sin(x)", "--x", "0", "--order", "5")
    lines = r.out.splitlines()
    assert lines[:6] == ["value 0", "d1 1", "d2 0", "d3 -1", "d4 0", "d5 1"]
    assert lines[6] == f"polynomial x - {1 / 6!r}*x**3 + {1 / 120!r}*x**5"
    poly = lines[6].removeprefix("polynomial ")
    # the polynomial is an expression: at x = 0.1 it is sin(0.1) to O(x**7)
    assert eval_value(poly, {"x": np.array(0.1)}) == pytest.approx(math.sin(0.1),
                                                                   abs=1e-10)
    latex = ok("taylor", "exp(x)", "--x", "0", "--order", "2", "--latex").out.strip()
    assert latex == "1 + x + 0.5 x^{2}"


EXPRESSIONS = ["tanh(x)*log(1+x**2)", "x**2.5 + sqrt(x)*arctan(x) + arcsin(x/2)",
               "sigmoid(x) + softplus(x) + cosh(x)/tan(x) + x**3",
               "sum(inv(stack([stack([x, 1]), stack([2, x**2])])))",
               "maximum(x, 0.1) + relu(x) * abs(x) + arctanh(x/2) + log10(x) + exp2(x)",
               "logsumexp(stack([x, 2*x, sin(x)])) + max(stack([x, x**2, 0.5]))",
               ("sum(softmax(stack([x, x**2, 1])) * stack([1, 2, 3]))"
                " + var(stack([x, x**2, 1])) + std(stack([x, exp(x), 1]))"),
               "sum(log_softmax(stack([x, x**2, 1]))) + norm(stack([x, exp(x), 1]))",
               "det(stack([stack([x, 1, x]), stack([2, x**2, 1]), stack([0, sin(x), 3])]))"]


@pytest.mark.parametrize("target", EXPRESSIONS)
def test_taylor_mode_agrees_with_nested_reverse_mode(target):
    from gradcli.compute import prepare
    from gradcli.taylor import expand, nested

    tgt = prepare(target, ["x"])
    a = expand(tgt, {"x": np.array(0.6)}, "x", 5).derivatives
    b = nested(tgt, {"x": np.array(0.6)}, "x", 5).derivatives
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_taylor_against_sympy_and_along_a_direction():
    r = taylor_json("sin(x)*exp(x)", "--x", "0.3", "--order", "6")
    np.testing.assert_allclose(r["derivatives"], r["check"]["sympy"], rtol=1e-12)
    # f(x + t d) = |x + t d|^2: d1 = 2 x.d, d2 = 2 d.d
    r = taylor_json("dot(x,x)", "--x", "1,2", "--along", "3,-1", "--order", "3")
    np.testing.assert_allclose(r["derivatives"], [5, 2 * (3 - 2), 2 * 10, 0])


def test_a_disagreement_with_sympy_exits_1(monkeypatch):
    from gradcli import taylor

    real = taylor.expand

    def off(*a, **k):
        e = real(*a, **k)
        e.derivatives = e.derivatives + np.arange(len(e.derivatives)) * 1e-3
        return e

    monkeypatch.setattr(taylor, "expand", off)
    r = run("taylor", "exp(x)", "--x", "0", "--order", "3")
    assert r.code == 1 and "sympy disagrees on d1, d2, d3" in r.err


@pytest.mark.parametrize("argv, code, message", [
    (["dot(x,x)", "--x", "1,2"], 2, "--along"),
    (["x", "--x", "1", "--order", "21"], 2, "--order"),
    (["x", "--x", "1", "--order", "-1"], 2, "--order"),
    (["x*y", "--x", "1", "--y", "2"], 2, "--wrt"),
    (["x*y", "--x", "1", "--y", "1,2", "--wrt", "x"], 3, "not a single number"),
    (["x", "--x", "1", "--along", "1,2"], 2, "--along has shape"),
])
def test_taylor_errors_are_clean(argv, code, message):
    r = run("taylor", *argv)
    assert r.code == code and r.out == "" and message in r.err
    assert "Traceback" not in r.err


def test_a_formula_too_long_to_paste_back_is_no_formula_not_a_bug():
    # A formula longer than an expression may be (10,000 characters) could not be
    # read back by gradcli eval: it is no formula (EvaluationError, exit 3), not
    # printed, nor taken for a bug of gradcli's (exit 70).
    from gradcli.errors import EvaluationError
    from gradcli.formula import derive
    from gradcli.parse import parse

    M = np.array([[2.0, 0.3, 0.1], [0.2, 1.5, 0.4], [0.1, 0.2, 3.0]])
    tree = parse("sum(matrix_power(M, -2))", inputs={"M"}, ops=OPS)
    with pytest.raises(EvaluationError, match=r"no formula: .*10,000"):
        derive("gradient", {"M": M}, ["M"], tree=tree, timeout=None, simplify=False)


def test_diff_of_a_function_that_cuts_the_graph_is_no_formula(tmp_path):
    # float(x.sum()) cuts the graph: the recorded graph's formula would be 0,
    # while d sum(x) / dx is 1 (before: "grad.x = 0", exit 0).
    f = tmp_path / "cut.py"
    f.write_text("def h(x):\n    return float(x.sum())\n", encoding="utf-8")
    r = run("diff", f"{f}:h", "--x", "1,2")
    assert r.code == 3 and r.out == ""
    assert "converts a Tensor that requires grad to a number (float() at cut.py:2)" in r.err


def test_diff_keeps_default_valued_parameters_constant(tmp_path):
    # As every command: k=2.0 is a constant unless named in --wrt.
    # d/dx sum(x**k) = k x**(k-1); d/dk = sum(x**k log x), by hand.
    f = tmp_path / "power.py"
    f.write_text("def f(x, k=2.0):\n    return (x**k).sum()\n", encoding="utf-8")
    r = run("diff", f"{f}:f", "--x", "0.5,0.9", "--k", "3", "--json")
    assert r.code == 0, r.err
    assert [b["name"] for b in json.loads(r.out)["formulas"]] == ["grad.x"]
    r = run("diff", f"{f}:f", "--x", "0.5,0.9", "--k", "3", "--wrt", "k", "--format", "plain")
    assert r.code == 0 and r.out.startswith("grad.k = ") and "grad.x" not in r.out


# -- diff at kinks and removable singularities (issue 14, review) -----------------------
def _sinc_prime(x):
    return (np.pi * x * np.cos(np.pi * x) - np.sin(np.pi * x)) / (np.pi * x**2)


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


# target, the point (on a kink, or where sympy's formula is 0/0 or overflows), a
# point off it, the derivative there by hand, and what the note names
AWAY = [
    ("maximum(x,0)", {"x": 0.0}, {"x": 0.3}, lambda x: 1.0, "kink"),
    ("maximum(x,0)", {"x": 0.0}, {"x": -0.3}, lambda x: 0.0, "kink"),
    ("sum(clip(x,0,1))", {"x": [0, 0.5, 1]}, {"x": [-0.2, 0.5, 0.9]},
     lambda x: np.array([0.0, 1.0, 1.0]), "kink"),
    ("max(x)", {"x": [1, 1, 0]}, {"x": [1, 1.5, 0]}, lambda x: np.array([0.0, 1, 0]),
     "kink"),
    ("logsumexp(x)", {"x": [1000, 1]}, {"x": [0.3, -0.2]}, _softmax, "not finite"),
    ("softplus(x)", {"x": 1000.0}, {"x": 0.7}, lambda x: 1 / (1 + np.exp(-x)),
     "not finite"),
    ("sinc(x)", {"x": 0.0}, {"x": 0.3}, _sinc_prime, "not finite"),
]


@pytest.mark.parametrize("target, at, off, want, why", AWAY)
def test_diff_at_a_kink_or_singularity_prints_the_formula_with_a_note(
        target, at, off, want, why):
    # Before: exit 70 ("a bug") at each of these points.
    r = ok("diff", target, *value_args(at))
    assert why in r.err and "checked at a" in r.err
    lines = [line.partition(" = ") for line in r.out.splitlines()]
    x = np.asarray(off["x"], dtype=np.float64)
    expected = np.asarray(want(x), dtype=np.float64)
    for name, _, text in lines:
        index = name.partition("[")[2].rstrip("]")
        wanted = expected[int(index)] if index else expected
        got = np.broadcast_to(eval_value(text, off), np.shape(wanted))
        np.testing.assert_allclose(got, wanted, rtol=1e-12, atol=1e-15, err_msg=text)


def test_diff_of_a_power_is_finite_at_zero():
    # d/dx x**y = y x**(y-1): 0 at x = 0, y = 2 (before: y*x**y/x, 0/0, exit 70)
    r = ok("diff", "x**y", "--x", "0", "--y", "2", "--wrt", "x")
    text = r.out.strip().partition(" = ")[2]
    assert eval_value(text, {"x": np.array(0.0), "y": np.array(2.0)}) == 0.0
    assert eval_value(text, {"x": np.array(1.5), "y": np.array(3.0)}) == 3 * 1.5**2


def test_a_wrong_formula_at_a_kink_is_still_a_bug(monkeypatch):
    # Away from the kink a formula must agree with the engine as anywhere.
    from gradcli import formula

    real = formula.formula_value
    monkeypatch.setattr(formula, "formula_value",
                        lambda *a, **k: np.asarray(real(*a, **k)) + 1e-3)
    r = run("diff", "maximum(x,0)", "--x", "0")
    assert r.code == 70 and r.out == "" and "disagrees" in r.err


def test_no_point_off_the_kink_is_a_clean_exit_3(monkeypatch):
    from gradcli import formula

    monkeypatch.setattr(formula, "MOVES", ())
    monkeypatch.setattr(formula, "RANDOM_MOVES", 0)
    r = run("diff", "maximum(x,0)", "--x", "0")
    assert r.code == 3 and r.out == "" and "Traceback" not in r.err
    assert r.err.startswith("error: no formula: the point is on a kink (maximum")


# -- diff --numpy: every printed function runs (review of issue 14) ----------------------
NUMPY_CASES = [
    ("sum(A @ x + b)", {"A": (2, 3), "x": (3,), "b": (2,)}, [], "gradient"),
    ("sum(x)*s", {"x": (3,), "s": ()}, [], "gradient"),
    ("x @ x", {"x": (3,)}, ["--hessian"], "hessian"),
    ("sum(x) + dot(y,y)", {"x": (2,), "y": (2,)}, ["--hessian"], "hessian"),
    ("3*x", {"x": (3,)}, ["--jacobian"], "jacobian"),
]


@pytest.mark.parametrize("target, shapes, extra, quantity", NUMPY_CASES)
def test_every_numpy_function_runs_and_gives_the_engines_derivative(
        target, shapes, extra, quantity):
    # Before: `A.T @ b**0` with b not among grad_x's arguments (NameError), and
    # constant blocks returned as a bare 1 or 0 instead of the block's shape.
    import inspect

    from gradcli.compute import Target, hessian, jacobian
    from gradcli.parse import parse

    args = [a for n, s in shapes.items()
            for a in ("--shape", f"{n}={','.join(map(str, s))}")]
    code = ok("diff", target, *args, *extra, "--numpy").out
    plain = ok("diff", target, *args, *extra).out
    assert "**0" not in code and "**0" not in plain
    ns: dict = {}
    exec(compile(code, "<diff --numpy>", "exec"), ns)  # our own generated code, in a test
    rng = np.random.default_rng(5)
    values = {n: rng.normal(size=s) for n, s in shapes.items()}
    if quantity == "gradient":
        want = {f"grad_{n}": g for n, g in engine_gradient(target, values).items()}
    else:
        tgt = Target(target, tree=parse(target, inputs=set(values), ops=OPS))
        if quantity == "hessian":
            blocks = hessian(tgt, values, wrt=list(values)).blocks
            want = {f"hessian_{a}_{b}": blk for a, row in blocks.items()
                    for b, blk in row.items()}
        else:
            want = {f"jacobian_{n}": b
                    for n, b in jacobian(tgt, values, wrt=list(values)).blocks.items()}
    for fname, expected in want.items():
        fn = ns[fname]
        got = fn(**{p: values[p] for p in inspect.signature(fn).parameters})
        assert np.shape(got) == np.shape(expected), fname
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14, err_msg=fname)
    for line in plain.splitlines():
        name, _, text = line.partition(" = ")
        key = name.replace(".", "_")
        if key in want:
            np.testing.assert_allclose(
                np.broadcast_to(eval_value(text, values), want[key].shape), want[key],
                rtol=1e-12, atol=1e-14, err_msg=text)


# -- taylor at kinks, its accuracy, --latex (review of issue 14) ---------------------------
@pytest.mark.parametrize("target, x0, d1", [
    ("relu(x)", "0", 0.0),  # the engine's relu'(0) = 0
    ("clip(x,0,1)", "1", 1.0),  # at a bound the gradient goes to x
    ("maximum(x,0)", "0", 0.5),  # a tie splits in halves
])
def test_taylor_at_a_kink_warns_and_is_not_a_failed_check(target, x0, d1):
    # Before: exit 1, "the check failed: sympy disagrees on d1" for relu and clip.
    r = run("taylor", target, "--x", x0, "--order", "2", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["derivatives"][1] == d1
    assert out["check"]["status"] in ("kink", "pass") and out["check"]["passed"]
    assert "kink" in r.err and "the check failed" not in r.err


def test_taylor_disagreement_off_a_kink_still_fails(monkeypatch):
    from gradcli import taylor

    real = taylor.expand

    def off(*a, **k):
        e = real(*a, **k)
        e.derivatives = e.derivatives + 1e-3
        return e

    monkeypatch.setattr(taylor, "expand", off)
    r = run("taylor", "relu(x)", "--x", "0.5", "--order", "2")
    assert r.code == 1 and "the check failed" in r.err


def test_taylor_integer_derivatives_are_exact_to_order_20():
    # Before: exp at 0 gave d14 = 1.0000000000000002, tan at 0 d11 = 353791.99999999994
    # (Taylor coefficients 1/k! rounded, then multiplied back by k!).
    # exp at 0: every derivative 1; tan at 0: the tangent numbers (by hand from
    # tan' = 1 + tan^2); 1/(1-x) at 0.5: k! 2^(k+1).
    tangent = [0, 1, 0, 2, 0, 16, 0, 272, 0, 7936, 0, 353792, 0, 22368256, 0,
               1903757312, 0, 209865342976, 0, 29088885112832, 0]
    # (--no-check: sympy's own 20 derivatives of tan take seconds; the truth is above)
    def d(*argv):
        return taylor_json(*argv, "--order", "20", "--no-check")["derivatives"]

    assert d("exp(x)", "--x", "0") == [1] * 21
    assert d("tan(x)", "--x", "0") == tangent
    assert d("1/(1-x)", "--x", "0.5") == [math.factorial(k) * 2 ** (k + 1)
                                          for k in range(21)]
    r = ok("taylor", "exp(x)", "--x", "0", "--order", "14", "--no-check").out.splitlines()
    assert r[14] == "d14 1"


def test_taylor_latex_prints_the_shortest_round_trip_numbers():
    # Before: 0.47942553860420301 (17 digits) where the plain output has repr's
    r = ok("taylor", "sin(x)", "--x", "0.5", "--order", "1", "--latex").out.strip()
    s, c = math.sin(0.5), math.cos(0.5)
    assert r == rf"{s!r} + {c!r} \left(x - 0.5\right)"
    r = ok("taylor", "exp(x)", "--x", "0", "--order", "8", "--latex").out.strip()
    assert r.endswith(rf"{1 / 40320!r} x^{{8}}".replace("e-05", r" \times 10^{-5}"))


def test_inf_in_expressions_is_numpys():
    # Before: "unknown name 'inf'" (norm(x, inf) could not be written)
    x = np.array([1.0, -3.0, 2.0])
    r = json.loads(ok("eval", "norm(x, inf)", "--x", "1,-3,2", "--json").out)
    assert r["value"] == np.linalg.norm(x, np.inf) == 3.0
    assert r["grad"]["x"] == [0.0, -1.0, 0.0]  # d max|x_i| = sign(x_k) at the largest
    r = json.loads(ok("eval", "sum(clip(x, -inf, 1))", "--x", "1,-3,2", "--json").out)
    assert r["value"] == np.sum(np.clip(x, -np.inf, 1)) == -1.0


def test_a_kink_of_an_input_held_constant_does_not_stop_the_move():
    # abs(c) at c = 0 stays a kink wherever x moves; sinc's formula is 0/0 at x = 0
    r = ok("diff", "sinc(x) + abs(c)", "--x", "0", "--c", "0", "--wrt", "x")
    assert "not finite" in r.err
    text = r.out.strip().partition(" = ")[2]
    got = eval_value(text, {"x": np.array(0.3)})
    assert got == pytest.approx(_sinc_prime(0.3), rel=1e-12)


@pytest.mark.parametrize("target", ["sum(abs(x)**y)", "sum((x*x)**y)"])
def test_a_formula_holds_for_negative_x_and_any_exponent(target):
    # sympy simplified y*abs(x)**y*sign(x)/abs(x) into x*y*abs(x**(y - 2)), nan
    # for x < 0 in real arithmetic unless the exponent is an integer: diff
    # printed it (checked at a positive random point, or right at y = 0.5 where
    # 2*y - 2 is an integer). By hand: d|x|^y/dx = y |x|^(y-1) sign(x), and
    # d(x^2)^y/dx = 2 y |x|^(2y-1) sign(x).
    k = 1 if target.startswith("sum(abs") else 2
    for x in (np.array([-1.5, 1.0, 2.0]), np.array([1.5, 1.0, 2.0])):  # (at x > 0 too:
        # the formula printed there was nan for every x < 0)
        y = np.array([0.7, 0.7, 0.7])
        got = formulas("diff", target, *value_args({"x": x, "y": y}))["grad.x"]
        for xx in (x, -x):
            for yv in (0.5, 0.3, 1.7):
                yy = np.full(3, yv)
                want = k * yy * np.abs(xx) ** (k * yy - 1) * np.sign(xx)
                np.testing.assert_allclose(eval_value(got, {"x": xx, "y": yy}), want,
                                           rtol=1e-13)


def test_diff_follows_the_targets_order_not_the_flags():
    # (the other commands already did: inputs in the target's order; here the
    # blocks came in flag order and --shape values were drawn in flag order)
    for flags in (["--y", "1", "--x", "2"], ["--x", "2", "--y", "1"]):
        assert list(formulas("diff", "x*y + y", *flags)) == ["grad.x", "grad.y"]
    points = []
    for shapes in (["--shape", "A=3,3", "--shape", "x=3"],
                   ["--shape", "x=3", "--shape", "A=3,3"]):
        r = json.loads(ok("diff", "x @ A @ x", *shapes, "--json").out)
        assert [b["name"] for b in r["formulas"]] == ["grad.x", "grad.A"]
        points.append(r["point"])
    assert points[0] == points[1]
