"""gradcli.parse: accepted forms give exactly the expected trees; everything else is a
UsageError naming the construct and its column; limits refuse hostile text early."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcli.errors import UsageError
from gradcli.parse import (
    Call,
    Const,
    Expr,
    Limits,
    Seq,
    Var,
    free_names,
    parse,
    source,
    walk,
)


# The parser's contract is five members of the engine's Op (nin, nreq, params, expr,
# signature), so a small stand-in registry tests it apart from the engine;
# test_the_engine_registry_meets_the_contract below checks the real one.
def _op(name: str, nin: int = 1, nreq: int | None = None, params=(), expr=True):
    args = ["xs"] if nin == -1 else ["x"] if nin == 1 else ["a", "b", "c"][:nin]
    signature = f"{name}({', '.join(args + [f'{p}=None' for p in params])})"
    return SimpleNamespace(
        name=name,
        nin=nin,
        nreq=nin if nreq is None else nreq,
        params=params,
        expr=expr,
        signature=lambda: signature,
    )


_COMPARISONS = [
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal"
]  # fmt: skip
OPS = {
    op.name: op
    for op in [
        *(_op(name) for name in ["sin", "cos", "exp", "neg"]),
        *(_op(name, 2) for name in ["add", "sub", "mul", "div", "pow", "matmul"]),
        *(_op(name, 2) for name in _COMPARISONS),
        _op("dot", 2),
        _op("where", 3),
        _op("clip", 3),
        _op("log", 2, nreq=1),  # log(a) or log(a, b): an optional tensor argument
        _op("sum", params=("axis", "keepdims")),
        _op("reshape", params=("shape",)),
        _op("transpose", params=("axes",)),
        _op("concatenate", -1, params=("axis",)),
        _op("stack", -1, params=("axis",)),
        _op("getitem", params=("index",), expr=False),
    ]
}
INPUTS = ["x", "A", "y"]


def p(text: str, **kwargs) -> Expr:
    kwargs.setdefault("inputs", INPUTS)
    kwargs.setdefault("ops", OPS)
    return parse(text, **kwargs)


def call(op: str, *args, **params) -> Call:
    return Call(op, args, params)


x, A, y = Var("x"), Var("A"), Var("y")


def c(value: float) -> Const:
    return Const(float(value))


# -- accepted forms ----------------------------------------------------------------

ACCEPTED = [
    ("x", x),
    ("2", c(2)),
    ("2.5e-3", c(0.0025)),
    ("0x10", c(16)),
    ("1_000", c(1000)),
    ("1e400", c(math.inf)),
    ("1" + "0" * 400, c(math.inf)),  # past float range: the same inf as 1e400
    ("pi", c(math.pi)),
    ("e", c(math.e)),
    ("x + 1", call("add", x, c(1))),
    ("x - A", call("sub", x, A)),
    ("2 * x", call("mul", c(2), x)),
    ("x / 2", call("div", x, c(2))),
    ("x ** 2", call("pow", x, c(2))),
    ("A @ x", call("matmul", A, x)),
    ("-x", call("neg", x)),
    ("+x", x),
    ("-2 ** 2", call("neg", call("pow", c(2), c(2)))),
    ("9**9**9", call("pow", c(9), call("pow", c(9), c(9)))),
    ("x + y * 2", call("add", x, call("mul", y, c(2)))),
    ("(x + y) * 2", call("mul", call("add", x, y), c(2))),
    ("x - y - 1", call("sub", call("sub", x, y), c(1))),
    ("A.T", call("transpose", A)),
    ("(A @ A).T.T", call("transpose", call("transpose", call("matmul", A, A)))),
    ("x[0]", call("getitem", x, index=0)),
    ("x[-1]", call("getitem", x, index=-1)),
    ("x[1:3]", call("getitem", x, index=slice(1, 3))),
    ("x[::-1]", call("getitem", x, index=slice(None, None, -1))),
    ("x[:-1]", call("getitem", x, index=slice(None, -1))),
    ("A[0, 1]", call("getitem", A, index=(0, 1))),
    ("A[:, 1]", call("getitem", A, index=(slice(None), 1))),
    ("A[1:, ::2]", call("getitem", A, index=(slice(1, None), slice(None, None, 2)))),
    ("x[[0, 2]]", call("getitem", x, index=[0, 2])),
    ("A[[0, -1], 0]", call("getitem", A, index=([0, -1], 0))),
    ("A[()]", call("getitem", A, index=())),
    ("x[None]", call("getitem", x, index=None)),
    ("x[...]", call("getitem", x, index=Ellipsis)),
    ("x[:, None]", call("getitem", x, index=(slice(None), None))),
    ("A[..., 0]", call("getitem", A, index=(Ellipsis, 0))),
    ("A[None, :, None]", call("getitem", A, index=(None, slice(None), None))),
    ("A[[0, 1], None, ..., ::2]",
     call("getitem", A, index=([0, 1], None, Ellipsis, slice(None, None, 2)))),
    ("x[None:2:None]", call("getitem", x, index=slice(None, 2))),
    ("sin(x)[0]", call("getitem", call("sin", x), index=0)),
    ("sin(x)", call("sin", x)),
    ("exp(-x) * cos(x)", call("mul", call("exp", call("neg", x)), call("cos", x))),
    ("dot(x, x)", call("dot", x, x)),
    ("2*dot(x,x)", call("mul", c(2), call("dot", x, x))),
    ("add(x, 1)", call("add", x, c(1))),
    ("less(x, 1)", call("less", x, c(1))),  # by name, as the registry allows
    ("clip(x, 0, 1)", call("clip", x, c(0), c(1))),
    ("log(x)", call("log", x)),
    ("log(x, 2)", call("log", x, c(2))),
    ("sum(x)", call("sum", x)),
    ("sum(A, 0)", call("sum", A, axis=0)),
    ("sum(A, axis=0)", call("sum", A, axis=0)),
    ("sum(A, -1, True)", call("sum", A, axis=-1, keepdims=True)),
    ("sum(A, keepdims=False, axis=None)", call("sum", A, axis=None, keepdims=False)),
    ("sum(A, axis=(0, 1))", call("sum", A, axis=(0, 1))),
    ("sum(A, axis=[0, 1])", call("sum", A, axis=(0, 1))),  # lists become tuples
    ("reshape(x, (2, 3))", call("reshape", x, shape=(2, 3))),
    ("reshape(x, (-1,))", call("reshape", x, shape=(-1,))),
    ("reshape(x, ())", call("reshape", x, shape=())),
    ("transpose(A, axes=(1, 0))", call("transpose", A, axes=(1, 0))),
    ("concatenate([x, y], axis=0)", call("concatenate", Seq((x, y)), axis=0)),
    ("concatenate((x, 2 * y))", call("concatenate", Seq((x, call("mul", c(2), y))))),
    ("stack([x])", call("stack", Seq((x,)))),
    ("stack([x, y], 1)", call("stack", Seq((x, y)), axis=1)),
    ("where(x > 0, x, 0)", call("where", call("greater", x, c(0)), x, c(0))),
    ("where(x < y, 1, 2)", call("where", call("less", x, y), c(1), c(2))),
    ("where(x <= 1, x, y)", call("where", call("less_equal", x, c(1)), x, y)),
    ("where(x >= 1, x, y)", call("where", call("greater_equal", x, c(1)), x, y)),
    ("where(x == 1, x, y)", call("where", call("equal", x, c(1)), x, y)),
    ("where(x != 1, x, y)", call("where", call("not_equal", x, c(1)), x, y)),
    ("where(sin(x) > y * 2, x, y)",
     call("where", call("greater", call("sin", x), call("mul", y, c(2))), x, y)),
    ("where(x, x, y)", call("where", x, x, y)),  # a condition need not compare
    ("  x + 1\n", call("add", x, c(1))),  # surrounding whitespace
    ("(x +\n 1)", call("add", x, c(1))),  # newlines inside brackets
    ("(x  # a comment\n + 1)", call("add", x, c(1))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms_give_the_expected_tree(text, expected):
    assert p(text) == expected


def test_inputs_shadow_the_constants():
    assert p("pi * e", inputs=["pi", "e"]) == call("mul", Var("pi"), Var("e"))
    assert p("pi * e", inputs=["pi"]) == call("mul", Var("pi"), c(math.e))


def test_numbers_are_floats_at_the_leaf():
    tree = p("9**9**9")
    assert all(type(n.value) is float for n in walk(tree) if isinstance(n, Const))


def test_equality_ignores_positions():
    assert Const(1.0, col=3, end_col=4) == Const(1.0)
    assert repr(Var("x", col=5, end_col=6)) == "Var(name='x')"


# -- positions -----------------------------------------------------------------------


def test_columns_of_each_node():
    text = "2 * sin(x)"
    tree = p(text)
    spans = [(type(n).__name__, n.col, n.end_col) for n in walk(tree)]
    assert spans == [("Call", 0, 10), ("Const", 0, 1), ("Call", 4, 10), ("Var", 8, 9)]
    assert [source(text, n) for n in walk(tree)] == ["2 * sin(x)", "2", "sin(x)", "x"]


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        # Unary plus is its operand: the span excludes the sign.
        ("+x", ["x"]),
        ("(x + 1) * y", ["(x + 1) * y", "x + 1", "x", "1", "y"]),
        ("A[0, 1:]", ["A[0, 1:]", "A"]),
        ("stack([x, y])", ["stack([x, y])", "[x, y]", "x", "y"]),
        ("where(x > 0, x, 0)", ["where(x > 0, x, 0)", "x > 0", "x", "0", "x", "0"]),
        # Columns count characters from the start of the text, across lines and
        # past non-ASCII (ast's columns are UTF-8 bytes per line).
        ("  (x +\r\n  αβ) ", ["x +\r\n  αβ", "x", "αβ"]),
        ("(αβ +\r x) * (\n y)", ["(αβ +\r x) * (\n y)", "αβ +\r x", "αβ", "x", "y"]),
    ],
)
def test_source_recovers_each_nodes_text(text, pieces):
    tree = p(text, inputs=[*INPUTS, "αβ"])
    assert [source(text, node) for node in walk(tree)] == pieces


# -- walk and free_names ---------------------------------------------------------


def test_walk_is_preorder_left_to_right():
    tree = p("sin(x) + stack([A, 1])")
    kinds = [n.op if isinstance(n, Call) else type(n).__name__ for n in walk(tree)]
    assert kinds == ["add", "sin", "Var", "stack", "Seq", "Var", "Const"]


def test_walk_handles_any_depth():
    tree: Call | Var = x
    for _ in range(50_000):
        tree = Call("neg", (tree,))
    assert sum(1 for _ in walk(tree)) == 50_001
    assert free_names(tree) == {"x"}


def test_free_names():
    assert free_names(p("x * A + pi + sum(stack([y, 1]))")) == {"x", "A", "y"}
    assert free_names(p("2 * pi")) == set()


# -- rejections --------------------------------------------------------------------

REJECTED = [
    # (text, 1-based column, part of the message)
    ("x.__class__", 3, "attribute access '.__class__' is not allowed"),
    ("sin(x).real", 8, "attribute access '.real'"),
    ("np.sin(x)", 4, "attribute access '.sin'"),
    ("lambda: 1", 1, "lambda is not allowed"),
    ("[v for v in x]", 1, "comprehension"),
    ("{v for v in x}", 1, "comprehension"),
    ("{v: 1 for v in x}", 1, "comprehension"),
    ("sum(v for v in x)", 4, "generator expression"),  # ast: the parens are its
    ("'x'", 1, "a string is not allowed"),
    ("x + \"a\"", 5, "a string"),
    ("b'x'", 1, "bytes"),
    ("f'{x}'", 1, "f-string"),
    ("True", 1, "'True' is not allowed"),
    ("x * False", 5, "'False' is not allowed"),
    ("None", 1, "'None' is not allowed"),
    ("...", 1, "'...' is not allowed"),
    ("1j", 1, "complex number"),
    ("x + 2j", 5, "complex number"),
    ("x ^ 2", 3, "'^' is not power; use '**'"),
    ("x % 2", 3, "'%' is not allowed"),
    ("x // 2", 3, "'//' is not allowed"),
    ("x << 1", 3, "'<<' is not allowed"),
    ("x >> 1", 3, "'>>' is not allowed"),
    ("x & 1", 3, "'&' is not allowed"),
    ("x | 1", 3, "'|' is not allowed"),
    ("~x", 1, "'~' is not allowed"),
    ("x and y", 3, "'and' is not allowed"),
    ("x or y", 3, "'or' is not allowed"),
    ("not x", 1, "'not' is not allowed"),
    ("x if y else 1", 3, "'if' is not allowed"),
    ("(z := x)", 2, "':=' is not allowed"),
    ("sin(*x)", 5, "'*' unpacking is not allowed"),
    ("stack([*x])", 8, "'*' unpacking is not allowed"),
    ("sum(x, **k)", 8, "'**' unpacking is not allowed"),
    ("{1: x}", 1, "a dict is not allowed"),
    ("{x}", 1, "a set is not allowed"),
    ("[x, 1]", 1, "a list is not allowed"),
    ("x, 1", 1, "a tuple is not allowed"),
    ("await x", 1, "'await' is not allowed"),
    ("(x)(1)", 2, "'x' is an input, not a function"),
    ("sin(x)(1)", 1, "calling anything but a function name is not allowed"),
    ("x.T(1)", 1, "calling anything but a function name is not allowed"),
    ("sin", 1, "'sin' is a function; call it as sin(...)"),
    ("z", 1, "unknown name 'z'; inputs are: x, A, y"),
    ("__import__", 1, "unknown name '__import__'"),
    ("__import__('os')", 1, "unknown function '__import__'"),
    ("__import__('os').system('ls')", 18, "attribute access '.system'"),  # outermost
    ("2 * sinn(x)", 5, "unknown function 'sinn'"),
    ("getitem(x)", 1, "unknown function 'getitem'"),  # expr=False: internal
    # Comparisons, only as where's condition.
    ("x > 0", 3, "comparison is only allowed as the condition of where(...)"),
    ("sin(x > 0)", 7, "comparison is only allowed"),
    ("where(1, x > 0, 2)", 12, "comparison is only allowed"),
    ("where((x > 0) * 1, x, 1)", 10, "comparison is only allowed"),
    ("where(0 < x < 1, x, 0)", 13, "chained comparisons"),
    ("where(x is y, x, 0)", 9, "'is' is not allowed"),
    ("where(x not in y, x, 0)", 9, "'not in' is not allowed"),
    ("x in y", 3, "comparison is only allowed"),
    # Indices: int literals, int slices, None, '...', int lists, tuples of those.
    ("x[y]", 3, "an index must be an integer"),
    ("x[1 + 1]", 3, "an index must be an integer"),
    ("x[1.0]", 3, "an index must be an integer"),
    ("x[True]", 3, "an index must be an integer"),
    ("x[[None]]", 4, "an index must be an integer"),
    ("x[[...]]", 4, "an index must be an integer"),
    ("x[..., 0, ...]", 11, "an index can only have a single ellipsis ('...')"),
    ("x[(None, 0), 1]", 3, "an index must be an integer"),
    ("x[1:...]", 5, "slice bounds must be integer literals"),
    ("x[[0, [1]]]", 7, "an index must be an integer"),
    ("A[(0, 1), 2]", 3, "an index must be an integer"),
    ("x[1:y]", 5, "slice bounds must be integer literals"),
    ("x[::0]", 5, "slice step cannot be zero"),
    ("x[" + "9" * 30 + "]", 3, "integer is too large"),
    # Arguments and params.
    ("sum(x, axis=1.5)", 13, "a parameter must be an integer, None, True, False"),
    ("sum(x, axis=y)", 13, "a parameter must be an integer"),
    ("sum(x, axis='0')", 13, "a parameter must be an integer"),
    ("reshape(x, (2, y))", 16, "a tuple parameter may hold only integers"),
    ("sum(x, axes=1)", 8, "unknown keyword 'axes' for sum(x, axis=None, keepdims=None)"),
    ("sum(x, 1, axis=1)", 11, "'axis' given twice to sum(x, axis=None, keepdims=None)"),
    ("sum(x, axis=1, axis=2)", 16, "'axis' given twice"),
    ("sum(x, 0, True, 1)", 17, "too many arguments for sum(x, axis=None, keepdims=None)"),
    ("sin(x, y)", 8, "too many arguments for sin(x)"),
    ("sin()", 1, "too few arguments for sin(x)"),
    ("2 + clip(x, 1)", 5, "too few arguments for clip(a, b, c)"),
    ("log()", 1, "too few arguments for log(a, b)"),
    ("clip(x, lo=0, hi=1)", 1, "too few arguments"),
    ("stack(x)", 7, "stack() takes a list or tuple of tensors"),
    ("stack([])", 7, "stack() needs at least one tensor"),
    ("stack()", 1, "too few arguments for stack(xs, axis=None)"),
    # Text ast cannot parse.
    ("x = 1", 3, ""),
    ("import os", 1, ""),
    ("x; y", 2, ""),
    ("sin(x", 4, "'(' was never closed"),
    ("x )", 3, "unmatched ')'"),
    ("  x $ 1", 5, ""),
    ("αβ $ 1", 4, ""),
    ("x\ny", 3, ""),
    ("\u00a0x", 1, "U+00A0"),
    ("x\0", 2, "NUL"),
    ("x + \udcff", 5, "invalid character U+DCFF"),  # undecodable argv byte
    ("1" + "0" * 5000, 1, "integer literal has too many digits"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "column", "message"), REJECTED)
def test_rejected_constructs_name_the_construct_and_column(text, column, message):
    with pytest.raises(UsageError) as info:
        p(text)
    error = str(info.value)
    assert error.startswith(f"expression: column {column}: ")
    assert message in error
    assert "\n" not in error


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("sinn(x)", "did you mean 'sin'?"),
        ("xx + 1", "did you mean 'x'?"),
        ("sum(x, axes=0)", "did you mean 'axis'?"),
        ("np.sin(x)", "call it as sin(...)"),
        ("x if y else 1", "use where(condition, a, b)"),
        ("x ** True", "use 1 or 0"),
        ("qqq(x)", None),
    ],
)
def test_hints(text, hint):
    with pytest.raises(UsageError) as info:
        p(text)
    assert info.value.hint == hint


@pytest.mark.parametrize("text", ["", " ", "\n\t "])
def test_empty_text(text):
    with pytest.raises(UsageError, match="^expression: empty$"):
        p(text)


def test_unknown_name_without_inputs():
    with pytest.raises(UsageError, match=r"unknown name 'x'; inputs are: \(none\)"):
        p("x", inputs=[])


@pytest.mark.parametrize(
    ("missing", "text", "message"),
    [
        ("matmul", "x @ y", "column 3: operator '@' is not supported"),
        ("neg", "-x", "column 1: operator '-' is not supported"),
        ("transpose", "A.T", "column 1: '.T' is not supported"),
        ("getitem", "x[0]", "column 1: indexing is not supported"),
        ("less", "where(x < 1, x, y)", "column 9: comparison '<' is not supported"),
    ],
)
def test_syntax_needs_its_op_in_the_registry(missing, text, message):
    ops = {name: op for name, op in OPS.items() if name != missing}
    with pytest.raises(UsageError, match=message):
        p(text, ops=ops)


def test_warnings_filters_do_not_change_the_outcome():
    # "1if" makes ast.parse warn; under -W error that must stay our UsageError.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UsageError, match="'if' is not allowed"):
            p("1if x else 2")


# -- limits ------------------------------------------------------------------------


def test_length_limit_is_checked_before_parsing():
    with pytest.raises(UsageError, match=r"100001 characters .*limit: 10000 char"):
        p("x+" * 50_000 + "x")
    # The check is on the text alone: even text ast.parse would reject is refused
    # for its length.
    with pytest.raises(UsageError, match="limit: 10000"):
        p("(" * 100_000)
    assert p("x" + " " * 9_999) == x  # the limit itself is allowed


BIG = Limits(max_length=1_000_000)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + "x" + ")" * 10_000,
        "-" * 100_000 + "x",
        "+" * 100_000 + "x",
        "sin(" * 10_000 + "x" + ")" * 10_000,
        "[" * 10_000 + "x" + "]" * 10_000,
        "x" + "**x" * 100_000,
        "x" + "+x" * 100_000,
        "x" + "[0]" * 100_000,
        "x" + ".T" * 100_000,
    ],
)
def test_deep_nesting_is_refused(text):
    with pytest.raises(UsageError, match=r"nesting is too deep \(limit: 100 levels\)"):
        p(text, limits=BIG)


def test_depth_limit_boundary():
    # Each operator, call or sign is one level; the innermost leaf is level n + 1.
    assert p("-" * 99 + "x") is not None
    with pytest.raises(UsageError, match=r"column 101: nesting is too deep"):
        p("-" * 100 + "x")
    # Nesting is of different operators: x*(x+(x*(...))) 100 deep is refused.
    nested = "x"
    for i in range(100):
        nested = f"x{'+*'[i % 2]}({nested})"
    with pytest.raises(UsageError, match=r"nesting is too deep"):
        p(nested)
    assert p("-" * 9 + "x", limits=Limits(max_depth=10)) is not None
    with pytest.raises(UsageError, match=r"limit: 9 levels"):
        p("-" * 9 + "x", limits=Limits(max_depth=9))


@pytest.mark.parametrize("n", [101, 2_999, 4_999])
def test_a_chain_of_one_operator_is_not_nesting(n):
    # x+x+...+x is one level however long (issue 12, item 21: 101 terms were
    # refused as "nesting is too deep"), within the length and node limits; its
    # tree keeps Python's left-to-right order.
    tree = p("+".join(["x"] * n))
    depth = 0
    while isinstance(tree, Call):
        assert tree.op == "add" and isinstance(tree.args[1], Var)
        tree, depth = tree.args[0], depth + 1
    assert isinstance(tree, Var) and depth == n - 1


def test_a_long_chain_evaluates_to_pythons_left_to_right_sum():
    import numpy as np  # here only: parsing needs no numpy

    from gradcli.backends import NumpyBackend
    from gradcli.interpret import interpret

    tree = p("+".join(["x"] * 4_999))
    total = 0.0
    for _ in range(4_999):
        total += 0.1  # the order Python, numpy and the tree add in
    assert float(interpret(tree, NumpyBackend(), {"x": np.float64(0.1)})) == total


def test_depth_beyond_the_recursion_limit_is_still_a_usage_error():
    # Raising max_depth past what Python's stack allows must not crash.
    limits = Limits(max_length=10**6, max_depth=10**6)
    for n in (900, 2_000, 30_000):
        try:
            p("-" * n + "x", limits=limits)
        except UsageError as exc:
            assert "nesting is too deep" in str(exc)


def test_node_limit():
    assert p("x+x+x", limits=Limits(max_nodes=5)) is not None
    with pytest.raises(UsageError, match=r"too large \(limit: 4 nodes\)"):
        p("x+x+x", limits=Limits(max_nodes=4))


# -- hostile and random text ----------------------------------------------------------

TOKENS = [
    "x", "(", ")", ",", "+", "-", "*", "/", "**", "@", "[", "]", ":", ".", "T",
    "sin", "sum", "1", "2.5", "lambda", "__import__", "'", '"', ";", " ", "A",
    "where", ">", "=", "axis", "stack", "-1", "\n", "#",
]  # fmt: skip


def _parses_or_refuses(text: str) -> None:
    try:
        tree = p(text)
    except UsageError as exc:
        assert str(exc).startswith("expression: ")
        assert "\n" not in str(exc)
    else:
        assert free_names(tree) <= set(INPUTS)


@given(st.text())
def test_random_text_parses_or_raises_usage_error(text):
    _parses_or_refuses(text)


@given(st.text(alphabet=st.characters(codec="ascii")))
def test_random_ascii_parses_or_raises_usage_error(text):
    _parses_or_refuses(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_parses_or_raises_usage_error(tokens):
    _parses_or_refuses("".join(tokens))
    _parses_or_refuses(" ".join(tokens))


def test_parse_module_imports_nothing_heavy():
    # The parser runs on every invocation. gradcli/__init__ loads the engine, so
    # import parse.py (and errors.py) alone, bypassing the package's __init__.
    package = Path(__file__).resolve().parents[1] / "gradcli"
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('gradcli')\n"
        f"pkg.__path__ = [{str(package)!r}]\n"
        "sys.modules['gradcli'] = pkg\n"
        "import gradcli.parse\n"
        "heavy = {'numpy', 'sympy', 'rich', 'click'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the engine's registry -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2*dot(x,x)",
        "sum(A @ x.T, axis=0, keepdims=True) / 2",
        "where(x > 0, x, 0) + clip(x, -1, 1)",
        "concatenate([x, -x], axis=0)[::-1]",
        "reshape(A, (-1,))",
        "log(sum(exp(x)))",
    ],
)
def test_the_engine_registry_meets_the_contract(text):
    from gradcli.engine.ops import OPS as engine_ops  # numpy: imported here only

    assert parse(text, inputs=["x", "A"], ops=engine_ops) is not None


def test_messages_show_the_engine_signature():
    from gradcli.engine.ops import OPS as engine_ops

    with pytest.raises(UsageError, match=r"sum\(x, axis=None, keepdims=False\)"):
        parse("sum(x, axes=0)", inputs=["x"], ops=engine_ops)


# -- inf: numpy's constant, and real-valued parameters (review of issue 14) --------------
def test_inf_is_numpys_constant_unless_an_input_has_the_name():
    assert p("x * inf", inputs=["x"]) == call("mul", Var("x"), c(math.inf))
    assert p("-inf") == call("neg", c(math.inf))
    assert p("x * inf", inputs=["x", "inf"]) == call("mul", Var("x"), Var("inf"))


def test_real_parameters_take_inf_and_numbers_integer_ones_do_not():
    from gradcli.engine.ops import OPS as ENGINE

    def params(text):
        return parse(text, inputs={"x"}, ops=ENGINE).params

    assert params("norm(x, inf)") == {"ord": math.inf}
    assert params("norm(x, ord=-inf)") == {"ord": -math.inf}
    assert params("norm(x, 0.5)") == {"ord": 0.5}
    assert params("norm(x, 2)") == {"ord": 2} and type(params("norm(x, 2)")["ord"]) is int
    assert params("nan_to_num(x, posinf=1e6)") == {"posinf": 1e6}
    with pytest.raises(UsageError, match="column 8: a parameter must be an integer"):
        parse("sum(x, inf)", inputs={"x"}, ops=ENGINE)
    with pytest.raises(UsageError, match="column 9: this parameter must be a number"):
        parse("norm(x, x)", inputs={"x"}, ops=ENGINE)
