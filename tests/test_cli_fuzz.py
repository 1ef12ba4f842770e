"""Generated garbage at `gradcli eval`: it answers or refuses, it never crashes.

Whatever the expression, the inputs and the options, the exit code is 0, 2 or 3
(1 only when an --expect-* assertion was asked for), stderr never shows a
traceback or an internal error, and a refusal prints nothing on stdout and an
``error: `` line first on stderr.

FUZZ_N=5000 pytest tests/test_cli_fuzz.py runs a longer search (default 250 each).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.cli import main

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_N", "120")),  # FUZZ_N=5000 for a long hunt
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = None
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    assert code is not None, f"main() returned instead of exiting: {argv!r}"
    text = err.getvalue()
    # A Python warning would reach stderr in a real run, beside gradcli's own lines.
    for w in caught:
        if issubclass(w.category, (RuntimeWarning, UserWarning)):
            text += f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n"
    return (code if isinstance(code, int) else -1), out.getvalue(), text


def _no_nan_tokens(token):
    raise AssertionError(f"non-strict JSON token {token!r}")


def check(argv: list[str], plain: bool = False, checking: bool = False) -> None:
    """``plain``: no format option and no --help given, so a success is plain lines.
    ``checking``: a cross-check runs, whose failure (exit 1) is an answer."""
    code, out, err = run(argv)
    expecting = checking or any(a.startswith("--expect-") for a in argv)
    allowed = {0, 2, 3} | ({1} if expecting else set())
    msg = f"argv={argv!r}\nexit={code}\nstdout={out[:500]!r}\nstderr={err[:800]!r}"
    event(f"exit {code}")
    assert code in allowed, msg
    debug = "--debug" in argv  # (a garbage value may be the --debug flag itself)
    assert debug or "Traceback" not in err, msg  # --debug asks for the traceback
    assert "internal error" not in err, msg
    assert "Warning:" not in err, msg  # numpy/Python warnings must not leak to stderr
    if code in (2, 3):
        assert out == "", msg
        assert debug or err.startswith("error: "), msg
        lines = err.splitlines()
        assert len(lines) <= 3 and all(x.startswith("hint: ") for x in lines[1:]), msg
    if code == 0 and plain and not re.fullmatch(r"-[A-Za-z]*|--.*", argv[1], re.DOTALL):
        # (a target like "-h" or "--json" is an option: those are click's to take)
        assert out.startswith("value "), msg
    if (
        code == 0
        and "--json" in argv
        and "--format" not in argv
        and not {"-h", "--help", "--version", "-V"} & set(argv)
    ):
        json.loads(out, parse_constant=_no_nan_tokens)


# -- pieces --------------------------------------------------------------------------
NAMES = ["x", "y", "A"]
OP_NAMES = sorted(gradcli.OPS)
GARBAGE_TOKENS = [
    "__import__",
    "os",
    "lambda",
    "yield",
    "not",
    "and",
    "or",
    "in",
    "is",
    "if",
    "else",
    "for",
    "None",
    "True",
    "'s'",
    '"s"',
    "b'x'",
    "...",
    "@",
    "^",
    "%",
    "//",
    "~",
    "<<",
    ":=",
    "=",
    "==",
    "<",
    ">=",
    "!=",
    ",",
    ":",
    ";",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ".",
    ".T",
    ".foo",
    ".__class__",
    "#",
    "\\",
    "\n",
    "\t",
    " ",
    "0x1F",
    "1_0",
    "1j",
    "1e400",
    "9**9**9",
    "nan",
    "inf",
    "é",
    "\x00",
    "∑",
    "unknown_fn",
    "z",
    "pi",
    "e",
]

numbers = st.one_of(
    st.integers(-10, 10).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.sampled_from(["0", "-0", "1e308", "1e-320", "2", "0.5", "100", "1e400", "000"]),
)
leaf = st.one_of(st.sampled_from(NAMES + ["pi", "e", "z"]), numbers)


def _call(args, name, kw):
    return f"{name}({', '.join(args + kw)})"


kwargs = st.lists(
    st.one_of(
        st.builds(
            lambda k, v: f"{k}={v}",
            st.sampled_from(
                ["axis", "keepdims", "ord", "ddof", "shape", "axes", "foo"]
            ),
            st.sampled_from(
                [
                    "0",
                    "1",
                    "-1",
                    "None",
                    "True",
                    "(0, 1)",
                    "(2, 2)",
                    "x",
                    "5",
                    "'a'",
                    "99",
                ]
            ),
        ),
    ),
    max_size=2,
)

index = st.one_of(
    st.integers(-5, 5).map(str),
    st.sampled_from(
        [
            ":",
            "1:3",
            "::-1",
            "::0",
            "0, 1",
            ":, 1",
            "[0, 2]",
            "None",
            "...",
            "x",
            "1.5",
            "0:99",
            "-9",
            "[]",
            "1:2:3:4",
        ]
    ),
)


def extend(children):
    return st.one_of(
        st.builds(
            lambda a, op, b: f"{a} {op} {b}",
            children,
            st.sampled_from(
                [
                    "+",
                    "-",
                    "*",
                    "/",
                    "**",
                    "@",
                    "^",
                    "%",
                    "//",
                    "<",
                    ">",
                    "==",
                    "and",
                    "or",
                    "|",
                    "&",
                ]
            ),
            children,
        ),
        st.builds(
            lambda op, a: f"{op}{a}", st.sampled_from(["-", "+", "~", "not "]), children
        ),
        st.builds(lambda a: f"({a})", children),
        st.builds(
            _call,
            st.lists(children, max_size=3),
            st.sampled_from(OP_NAMES + ["foo", "eval", "open", "getattr"]),
            kwargs,
        ),
        st.builds(lambda a, i: f"{a}[{i}]", children, index),
        st.builds(
            lambda a, attr: f"{a}{attr}",
            children,
            st.sampled_from([".T", ".foo", ".shape"]),
        ),
        st.builds(lambda xs: f"[{', '.join(xs)}]", st.lists(children, max_size=3)),
        st.builds(
            lambda c, a, b: f"where({c}, {a}, {b})", children, children, children
        ),
    )


structured_expr = st.recursive(leaf, extend, max_leaves=12)

# Mostly well-formed: ops of the table with their arity, so that evaluation (shapes,
# domains, kinks, non-finite numbers, size limits) is what gets exercised.
EXPR_OPS = [o for o in gradcli.OPS.values() if o.expr]
params = {
    "axis": st.sampled_from(["0", "1", "-1", "2", "None", "(0, 1)"]),
    "keepdims": st.sampled_from(["True", "False"]),
    "ord": st.sampled_from(["1", "2", "None", "3"]),
    "ddof": st.sampled_from(["0", "1", "5"]),
    "shape": st.sampled_from(
        ["(3, 3)", "(9,)", "(-1,)", "(2, 2)", "(1, 3)", "(3, -1)"]
    ),
    "axes": st.sampled_from(["(1, 0)", "None", "(0,)", "1", "0"]),
    "axis1": st.sampled_from(["0", "1", "-1", "2"]),
    "axis2": st.sampled_from(["0", "1", "-1", "2"]),
    "axisa": st.sampled_from(["0", "-1", "1"]),
    "axisb": st.sampled_from(["0", "-1", "1"]),
    "axisc": st.sampled_from(["0", "-1", "1"]),
    "source": st.sampled_from(["0", "-1", "(0, 1)", "3"]),
    "destination": st.sampled_from(["0", "-1", "(1, 0)", "3"]),
    "shift": st.sampled_from(["1", "-2", "(1, 1)", "0", "None"]),
    "repeats": st.sampled_from(["2", "0", "(1, 2, 0)", "-1", "None"]),
    "reps": st.sampled_from(["2", "(2, 1)", "()", "0", "-1"]),
    "pad_width": st.sampled_from(["1", "(0, 2)", "-1", "None"]),
    "mode": st.sampled_from(["None", "1"]),
    "constant_values": st.sampled_from(["0", "2", "None"]),
    "copy": st.sampled_from(["True", "False"]),
    "nan": st.sampled_from(["0", "1"]),
    "posinf": st.sampled_from(["None", "5"]),
    "neginf": st.sampled_from(["None", "-5"]),
    "n": st.sampled_from(["0", "1", "2", "-1", "9"]),
    "offset": st.sampled_from(["0", "1", "-1", "5"]),
    "k": st.sampled_from(["0", "1", "-2", "9"]),
    "kind": st.sampled_from(["None", "1"]),
    "hermitian": st.sampled_from(["True", "False"]),
    "upper": st.sampled_from(["True", "False"]),
    "rcond": st.sampled_from(["None", "0", "1"]),
}
# A parameter of an op added later, not listed above: the usual suspects.
ANY_PARAM = st.sampled_from(["0", "1", "-1", "None", "True", "(0, 1)"])


def _op_call(draw_children):
    def build(o, args, chosen):
        if o.nin < 0:
            return f"{o.name}([{', '.join(args)}]{''.join(chosen)})"
        return (
            f"{o.name}({', '.join(args[: o.nin] + [c.lstrip(', ') for c in chosen])})"
        )

    return st.sampled_from(EXPR_OPS).flatmap(
        lambda o: st.builds(
            build,
            st.just(o),
            st.lists(draw_children, min_size=max(o.nin, 1), max_size=max(o.nin, 3)),
            st.lists(
                st.sampled_from(o.params).flatmap(
                    lambda p: params.get(p, ANY_PARAM).map(lambda v, p=p: f", {p}={v}")
                )
                if o.params
                else st.nothing(),
                max_size=1 if o.params else 0,
                unique_by=lambda t: t.split("=")[0],
            ),
        )
    )


def extend_valid(children):
    return st.one_of(
        _op_call(children),
        st.builds(
            lambda a, op, b: f"({a}) {op} ({b})",
            children,
            st.sampled_from(["+", "-", "*", "/", "**", "@"]),
            children,
        ),
        st.builds(lambda a: f"-({a})", children),
        st.builds(
            lambda a, i: f"({a})[{i}]",
            children,
            st.sampled_from(["0", "1:3", "::-1", ":, 1", "0, 1", "[0, 2]", "-1"]),
        ),
        st.builds(lambda a: f"({a}).T", children),
        st.builds(
            lambda c, op, a, b: f"where({c} {op} 0, {a}, {b})",
            children,
            st.sampled_from(["<", ">", "==", ">="]),
            children,
            children,
        ),
    )


valid_leaf = st.one_of(
    st.sampled_from(NAMES), st.sampled_from(["0", "1", "2", "-1", "0.5", "1e308", "pi"])
)
valid_expr = st.recursive(valid_leaf, extend_valid, max_leaves=8)
token_soup = st.lists(
    st.one_of(st.sampled_from(GARBAGE_TOKENS), leaf, st.sampled_from(OP_NAMES)),
    max_size=12,
).map("".join)
expressions = st.one_of(
    valid_expr,
    valid_expr,
    structured_expr,
    token_soup,
    st.text(max_size=40),
    st.builds(lambda a, b: a + b, structured_expr, token_soup),
)

sizes = st.sampled_from(
    ["0", "1", "2", "3", "5", "-1", "1.5", "1000", "10**9", "99999999999", "x", ""]
)
json_values = st.recursive(
    st.one_of(
        st.integers(-5, 5),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["NaN", "Infinity", '"a"', "true", "null", "{}", "1e999"]),
    ),
    lambda c: st.lists(c, max_size=3),
    max_leaves=10,
).map(lambda v: json.dumps(v) if not isinstance(v, str) else v)


@pytest.fixture(scope="session")
def data_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz-values")
    np.save(d / "v.npy", np.array([1.0, 2.0, 3.0]))
    np.save(d / "b.npy", np.array([True]))
    (d / "m.csv").write_text("1,2\n3,4\n")
    (d / "r.csv").write_text("1,2\n3\n")
    (d / "m.json").write_text("[[1,2],[3,4]]")
    (d / "m.txt").write_text("1 2\n3 4\n")
    (d / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "bin.txt").write_bytes(b"\xff\xfe\x00")
    return d


def values(files):
    return st.one_of(
        numbers,
        st.lists(numbers, min_size=1, max_size=5).map(",".join),
        st.lists(
            st.lists(numbers, min_size=1, max_size=3).map(",".join),
            min_size=1,
            max_size=3,
        ).map(";".join),
        json_values,
        st.builds(
            lambda f, args: f"{f}({','.join(args)})",
            st.sampled_from(
                ["arange", "linspace", "zeros", "ones", "eye", "randn", "foo", "rand"]
            ),
            st.lists(sizes, max_size=4),
        ),
        st.sampled_from(
            [
                f"@{files / n}"
                for n in [
                    "v.npy",
                    "b.npy",
                    "m.csv",
                    "r.csv",
                    "m.json",
                    "m.txt",
                    "junk.npy",
                    "bin.txt",
                    "missing.npy",
                    "noext",
                    "x.xlsx",
                ]
            ]
            + ["@", "@/"]
        ),
        st.text(max_size=20),
        st.sampled_from(
            [
                "",
                " ",
                "-",
                "--",
                "--x",
                "nan",
                "inf",
                "1,",
                ";",
                "[",
                "[]",
                "[[]]",
                "1,2;3",
                "ones",
                "zeros()",
                "1e39",
            ]
        ),
    )


def options(files):
    vals = values(files)
    return st.lists(
        st.one_of(
            st.builds(
                lambda n: ["--wrt", n], st.sampled_from(NAMES + ["q", "", "--x"])
            ),
            st.builds(lambda v: ["--grad-output", v], st.one_of(st.just("ones"), vals)),
            st.just(["--no-grad"]),
            st.builds(
                lambda f: ["--format", f],
                st.sampled_from(["table", "plain", "json", "xml", ""]),
            ),
            st.just(["--json"]),
            st.builds(
                lambda p: ["--precision", p],
                st.sampled_from(["1", "3", "17", "0", "99", "x", "-2"]),
            ),
            st.builds(
                lambda d: ["--dtype", d],
                st.sampled_from(["float64", "float32", "float16", "int"]),
            ),
            st.builds(
                lambda s: ["--seed", s], st.sampled_from(["0", "42", "-1", "x", "1e3"])
            ),
            st.builds(
                lambda m: ["--max-elements", m],
                st.sampled_from(["1", "3", "10", "0", "-5", "x"]),
            ),
            st.just(["--strict"]),
            st.builds(
                lambda o, v: [o, v],
                st.sampled_from(["--rtol", "--atol"]),
                st.sampled_from(["0", "1e-3", "-1", "nan", "x", "inf"]),
            ),
            st.builds(lambda v: ["--expect-value", v], vals),
            st.builds(
                lambda n, v: ["--expect-grad", f"{n}={v}"],
                st.sampled_from(NAMES + ["q"]),
                vals,
            ),
            st.builds(
                lambda n, v: ["--var", f"{n}={v}"],
                st.sampled_from(NAMES + ["json", "1x", "", "a b"]),
                vals,
            ),
            st.builds(
                lambda s: [s],
                st.sampled_from(
                    [
                        "--var",
                        "--unknown",
                        "-x",
                        "stray",
                        "--",
                        "-",
                        "--=1",
                        "--x=",
                        "--help=1",
                    ]
                ),
            ),
        ),
        max_size=4,
    ).map(lambda groups: [a for g in groups for a in g])


def inputs(files):
    return st.lists(
        st.tuples(
            st.sampled_from(NAMES + ["z", "pi", "json"]), values(files), st.booleans()
        ),
        max_size=3,
    ).map(
        lambda items: [
            a for n, v, eq in items for a in ([f"--{n}={v}"] if eq else [f"--{n}", v])
        ]
    )


# -- the properties ------------------------------------------------------------------
@FUZZ
@given(expr=expressions, data=st.data())
def test_garbage_expressions(expr, data):
    # well-formed inputs (only those the expression names, else that is the error)
    choices = {
        "x": ["0.5", "1,2,3", "0", "-1,0,2", "0,0,0"],
        "y": ["2", "1,0,-1", "1e308"],
        "A": ["1,2,3;4,5,6;7,8,10", "1,2;3,4", "0,0;0,0", "eye(3)"],
    }
    argv = ["eval", expr]
    for name, opts in choices.items():
        if re.search(rf"\b{name}\b", expr) or data.draw(st.integers(0, 9)) == 0:
            argv += [f"--{name}", data.draw(st.sampled_from(opts))]
    if data.draw(st.booleans()):
        argv += ["--grad-output", "ones"]
    check(argv, plain=True)


@FUZZ
@given(expr=st.one_of(structured_expr, valid_expr), data=st.data())
def test_garbage_values(expr, data, data_files):
    argv = ["eval", expr, *data.draw(inputs(data_files))]
    check(argv)


@FUZZ
@given(data=st.data())
def test_garbage_options(data, data_files):
    expr = data.draw(
        st.sampled_from(
            [
                "sum(x*y)",
                "x*x",
                "dot(x, x)",
                "A @ x",
                "log(x)",
                "max(x)",
                "x",
                "sum(sqrt(x))",
            ]
        )
    )
    argv = [
        "eval",
        expr,
        *data.draw(inputs(data_files)),
        *data.draw(options(data_files)),
    ]
    argv = data.draw(st.permutations(argv)) if data.draw(st.booleans()) else argv
    check(argv)


FILES = sorted(str(p) for p in (Path(__file__).parent / "data" / "cli").glob("*.py"))
FILE_TARGETS = FILES + [
    f"{f}:{n}" for f in FILES for n in ("f", "total", "energy", "nope", "")
]


@FUZZ
@given(target=st.sampled_from(FILE_TARGETS), data=st.data())
def test_garbage_for_function_files(target, data, data_files):
    names = st.sampled_from(["x", "q", "k", "p", "m", "A", "a", "z"])
    pairs = data.draw(
        st.lists(
            st.tuples(
                names,
                st.one_of(
                    st.sampled_from(["1", "0.5", "1,2", "0,0", "1,2;3,4", "-1", "0"]),
                    values(data_files),
                ),
            ),
            max_size=3,
            unique_by=lambda t: t[0],
        )
    )
    argv = ["eval", target, *[a for n, v in pairs for a in (f"--{n}", v)]]
    argv += data.draw(options(data_files)) if data.draw(st.booleans()) else []
    check(argv)


@settings(max_examples=60, deadline=None)
@given(
    argv=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "eval",
                    "ops",
                    "--json",
                    "--format",
                    "plain",
                    "--help",
                    "--version",
                    "-V",
                    "x",
                    "--x",
                    "1",
                    "--",
                    "-",
                ]
            ),
            st.text(max_size=8),
        ),
        max_size=6,
    )
)
def test_garbage_command_lines(argv):
    check(argv)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(command=st.sampled_from(["jacobian", "hessian", "graph"]),
       expr=st.one_of(structured_expr, valid_expr), data=st.data())
def test_garbage_for_the_other_commands(command, expr, data, data_files):
    check([command, expr, *data.draw(inputs(data_files))])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(expr=valid_expr, data=st.data())
def test_garbage_for_check(expr, data, data_files):
    # exit 1 (the check disagrees) is an answer, not an error: allowed like --expect-*
    check(["check", expr, "--check-timeout", "2", *data.draw(inputs(data_files))],
          checking=True)
