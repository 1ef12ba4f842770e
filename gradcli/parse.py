"""Expression text -> small checked tree; evaluates nothing.

``parse`` reads the text with ``ast.parse(text, mode="eval")`` and converts the
syntax tree in one ``match`` over an allow-list. User text never reaches ``eval``,
``exec`` or ``sympify``; anything not on the list is a ``UsageError`` naming the
construct and its 1-based column.

The tree has four node types, all frozen dataclasses:

- ``Const(value)``: a number literal, always a Python float (so ``9**9**9`` is float
  arithmetic later, giving inf, and never big-integer work); also ``pi`` and ``e``
  unless an input has that name (inputs win).
- ``Var(name)``: an input.
- ``Call(op, args, params)``: everything else, by the registry name of its op:
  ``+ - * / ** @`` are add, sub, mul, div, pow, matmul; unary ``-`` is neg (unary
  ``+`` is its operand); ``x.T`` is transpose; ``x[...]`` is getitem with
  ``params["index"]`` an int, slice, None (a new axis), Ellipsis, list of ints or
  tuple of those (numpy's indexing: at most one Ellipsis); ``a < b`` and
  the other comparisons are less, less_equal, greater, greater_equal, equal and
  not_equal, allowed only as the condition of ``where(...)``; ``name(...)`` calls
  the op of that name. ``args`` holds the tensor arguments, ``params`` the literal
  non-tensor ones (ints, None, True/False, tuples of ints) by name.
- ``Seq(items)``: the list or tuple argument of an op taking a sequence of tensors
  (``nin == -1``), e.g. ``concatenate([a, b], axis=0)``.

``Expr`` is ``Const | Var | Call``. Every node carries ``col`` and ``end_col``,
0-based character offsets into the text (``source(text, node)`` is the substring).
Equality and repr ignore them: two nodes are equal when they denote the same
expression, wherever it was written.
"""

from __future__ import annotations

import ast
import contextlib
import math
import sys
import warnings
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from gradcli.errors import UsageError

__all__ = [
    "Call",
    "Const",
    "Expr",
    "Limits",
    "Seq",
    "Var",
    "free_names",
    "parse",
    "source",
    "walk",
]


@dataclass(frozen=True)
class _Located:
    # Keyword-only, so hand-written trees read Call("sin", (Var("x"),)); outside
    # equality, so a tree equals another wherever each was written.
    col: int = field(default=0, compare=False, repr=False, kw_only=True)
    end_col: int = field(default=0, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Const(_Located):
    value: float


@dataclass(frozen=True)
class Var(_Located):
    name: str


@dataclass(frozen=True)
class Call(_Located):
    op: str
    args: tuple[Expr | Seq, ...]
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Seq(_Located):
    items: tuple[Expr, ...]


Expr = Const | Var | Call
_Node = Const | Var | Call | Seq


@dataclass(frozen=True)
class Limits:
    """Refuse expressions that would cost more than any real one needs.

    Every refusal is a UsageError mentioning the limit.
    """

    max_length: int = 10_000
    """Characters of text; checked before anything else reads it."""
    max_depth: int = 100
    """Nesting of the syntax: each operator, call, index or sign is one level; a
    chain of one operator, ``a + b + c + ...``, is one level however long (it is
    bounded by the node and length limits)."""
    max_nodes: int = 10_000
    """Nodes of the resulting tree."""


class _Op(Protocol):
    """What the parser needs of an engine ``Op``; importing the engine would import
    numpy, and the parser must start fast."""

    @property
    def nin(self) -> int: ...  # tensor arguments; -1: one sequence of tensors
    @property
    def nreq(self) -> int: ...  # how many of the nin are required
    @property
    def params(self) -> tuple[str, ...]: ...  # non-tensor parameter names
    @property
    def expr(self) -> bool: ...  # callable by name from expressions
    def signature(self) -> str: ...  # for messages: "sum(x, axis=None, keepdims=False)"


def source(text: str, node: _Node) -> str:
    """The part of ``text`` that ``node`` was parsed from.

    >>> text = "2 * sin(x)"
    >>> source(text, Call("sin", (Var("x", col=8, end_col=9),), col=4, end_col=10))
    'sin(x)'
    """
    return text[node.col : node.end_col]


def walk(expr: _Node) -> Iterator[_Node]:
    """Every node of the tree, parents before children, left to right.

    Iterative, so any depth is fine.

    >>> [type(n).__name__ for n in walk(Call("add", (Var("x"), Const(1.0))))]
    ['Call', 'Var', 'Const']
    """
    stack: list[_Node] = [expr]
    while stack:
        node = stack.pop()
        yield node
        match node:
            case Call(args=children) | Seq(items=children):
                stack.extend(reversed(children))


def free_names(expr: _Node) -> set[str]:
    """The input names the expression uses.

    >>> sorted(free_names(Call("mul", (Var("y"), Call("neg", (Var("x"),))))))
    ['x', 'y']
    """
    return {node.name for node in walk(expr) if isinstance(node, Var)}


def parse(
    text: str,
    *,
    inputs: Collection[str],
    ops: Mapping[str, _Op],
    limits: Limits = Limits(),
) -> Expr:
    """Parse ``text`` into a checked tree of ``Const``, ``Var``, ``Call`` and ``Seq``.

    ``inputs`` are the names that become ``Var``; ``ops`` is the op registry, whose
    entries with ``expr`` true can be called by name. Raises UsageError for anything
    else.

    >>> from types import SimpleNamespace as Op
    >>> ops = {"sin": Op(nin=1, nreq=1, params=(), expr=True),
    ...        "mul": Op(nin=2, nreq=2, params=(), expr=True)}
    >>> tree = parse("2 * sin(x)", inputs=["x"], ops=ops)
    >>> tree.op, tree.args[0], source("2 * sin(x)", tree.args[1])
    ('mul', Const(value=2.0), 'sin(x)')
    """
    if len(text) > limits.max_length:
        raise UsageError(
            f"expression: {len(text)} characters is too long "
            f"(limit: {limits.max_length} characters)"
        )
    # ast.parse calls leading whitespace an "unexpected indent"; skip it and keep
    # every column relative to the text as given.
    lead = len(text) - len(text.lstrip(" \t\f\r\n"))
    if lead == len(text):
        raise UsageError("expression: empty")
    parser = _Parser(text, lead, inputs, ops, limits)
    parser.check_characters()
    try:
        with warnings.catch_warnings(), _recursion_limit(min(2 * limits.max_length + 500, 25_000)):
            # e.g. SyntaxWarning for "1if x else 2": our error comes next anyway,
            # and a warnings filter set to "error" must not change the outcome.
            warnings.simplefilter("ignore")
            tree = ast.parse(text[lead:], mode="eval")
    except SyntaxError as exc:
        raise parser.syntax_error(exc) from exc
    except (RecursionError, MemoryError) as exc:
        # CPython's parser gives up on deep nesting (e.g. 100000 unary minuses)
        # with these rather than a SyntaxError.
        raise parser.too_deep(None) from exc
    try:
        return parser.expr(tree.body, 1)
    except RecursionError as exc:  # only if max_depth was raised far beyond 100
        raise parser.too_deep(None) from exc


@contextlib.contextmanager
def _recursion_limit(at_least: int):
    """CPython builds a long chain ``x+x+...+x`` (left-nested) with one level of
    recursion per operator, counted against the recursion limit: 1000 stops it
    near 3,000 terms, well inside the length limit. Inside: enough for any text
    within the default length limit (deeper unary or bracket nesting still ends
    in the parser's own MemoryError or SyntaxError), capped so that the C stack
    is never at risk (100,000 levels were seen to pass)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, at_least))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


_CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}  # numpy's np.pi, np.e, np.inf

_BINARY = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.Pow: "pow",
    ast.MatMult: "matmul",
}
_COMPARISONS = {
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
    ast.Eq: "equal",
    ast.NotEq: "not_equal",
}
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.And: "and",
    ast.Or: "or",
    ast.Not: "not",
    ast.Invert: "~",
}
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.JoinedStr: "an f-string",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
}
_INT64 = 2**63  # larger ints in indices and params would only fail later, obscurely
_INDEX = (
    "an index must be an integer, a slice of integers like 1:3, None, '...', "
    "a list of integers or a tuple of those"
)
_PARAM = "a parameter must be an integer, None, True, False or a tuple of integers"
_REAL_PARAM = "this parameter must be a number (inf and -inf included), None, True or False"


class _Span(TypedDict):
    col: int
    end_col: int


class _Parser:
    """The conversion of one text: positions, counts and the recursive walk.

    The walk recurses, but at most ``max_depth`` levels (a few frames each): deeper
    input is refused before the next level is entered.
    """

    def __init__(
        self,
        text: str,
        lead: int,
        inputs: Collection[str],
        ops: Mapping[str, _Op],
        limits: Limits,
    ) -> None:
        self.text = text
        self.inputs = tuple(dict.fromkeys(inputs))  # ordered, for messages
        self.input_set = frozenset(self.inputs)
        self.ops = ops
        self.limits = limits
        self.nodes = 0
        # ast positions are (line, UTF-8 byte column) within text[lead:]; lines
        # end at \n, \r\n or a lone \r, as for the tokenizer.
        self.line_starts = [lead]
        i = lead
        while (i := _next_line(text, i)) >= 0:
            self.line_starts.append(i)
        self.char_of_byte: dict[int, list[int]] = {}

    # -- positions and errors --------------------------------------------------

    def offset(self, lineno: int, byte_col: int) -> int:
        lineno = min(lineno, len(self.line_starts))
        start = self.line_starts[lineno - 1]
        end = self.line_starts[lineno] if lineno < len(self.line_starts) else None
        line = self.text[start:end]
        if line.isascii():
            return start + byte_col
        table = self.char_of_byte.get(lineno)
        if table is None:
            table = [i for i, ch in enumerate(line) for _ in ch.encode()]
            table.append(len(line))
            self.char_of_byte[lineno] = table
        return start + table[min(byte_col, len(table) - 1)]

    def col(self, node: ast.expr | ast.keyword) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end_col(self, node: ast.expr) -> int:
        assert node.end_lineno is not None and node.end_col_offset is not None
        return self.offset(node.end_lineno, node.end_col_offset)

    def span(self, node: ast.expr) -> _Span:
        """The position of a new tree node, counted against max_nodes."""
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self.error(
                self.col(node),
                f"expression is too large (limit: {self.limits.max_nodes} nodes)",
            )
        return {"col": self.col(node), "end_col": self.end_col(node)}

    def error(
        self, col: int | None, message: str, hint: str | None = None
    ) -> UsageError:
        where = "" if col is None else f"column {col + 1}: "
        return UsageError(f"expression: {where}{message}", hint=hint)

    def refuse(self, node: ast.expr, what: str, hint: str | None = None) -> UsageError:
        return self.error(self.col(node), f"{what} is not allowed", hint)

    def too_deep(self, col: int | None) -> UsageError:
        limit = self.limits.max_depth
        return self.error(col, f"nesting is too deep (limit: {limit} levels)")

    def check_depth(self, node: ast.expr, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise self.too_deep(self.col(node))

    def operator_col(self, left: ast.expr, right: ast.expr, symbol: str) -> int:
        """Where ``symbol`` sits between two operands: ast records no position for
        operators, and pointing at the '^' beats pointing at the operand before."""
        word = symbol.split()[0]  # "not in" may be split by any whitespace
        i, stop = self.end_col(left), self.col(right)
        while 0 <= i < stop:
            if self.text[i] == "#":  # a comment, in a parenthesized multi-line text
                i = _next_line(self.text, i)
            elif self.text.startswith(word, i):
                return i
            else:
                i += 1
        return self.end_col(left)

    def check_characters(self) -> None:
        """Refuse what ast.parse rejects without a position, or with ValueError."""
        nul = self.text.find("\0")
        if nul >= 0:
            raise self.error(nul, "the NUL character is not allowed")
        try:
            self.text.encode()
        except UnicodeEncodeError as exc:  # lone surrogates, e.g. undecodable argv
            code = ord(self.text[exc.start])
            raise self.error(exc.start, f"invalid character U+{code:04X}") from exc

    def syntax_error(self, exc: SyntaxError) -> UsageError:
        col = None
        if exc.lineno and exc.offset is not None:
            start = self.line_starts[min(exc.lineno, len(self.line_starts)) - 1]
            # SyntaxError.offset counts characters from 1, unlike ast's byte columns.
            col = min(start + max(exc.offset - 1, 0), len(self.text))
        message = exc.msg or "invalid syntax"
        if message == "too many nested parentheses":
            return self.too_deep(col)
        if message.startswith("Exceeds the limit"):  # int_max_str_digits
            message = "integer literal has too many digits"
        return self.error(col, message)

    def require(self, op: str, col: int, what: str) -> None:
        """Syntax maps to ops by fixed names; a registry without one refuses it."""
        if op not in self.ops:
            raise self.error(col, f"{what} is not supported")

    # -- the walk ----------------------------------------------------------------

    def expr(self, node: ast.expr, depth: int) -> Expr:
        self.check_depth(node, depth)
        args: tuple[Expr, ...]
        match node:
            case ast.Constant(value=bool() as value):
                raise self.refuse(node, f"'{value}'", hint="use 1 or 0")
            case ast.Constant(value=int() | float() as value):
                return Const(_to_float(value), **self.span(node))
            case ast.Constant(value=complex()):
                raise self.refuse(node, "a complex number")
            case ast.Constant(value=str()):
                raise self.refuse(node, "a string")
            case ast.Constant(value=bytes()):
                raise self.refuse(node, "a bytes literal")
            case ast.Constant():  # None, ...
                raise self.refuse(node, f"'{ast.unparse(node)}'")
            case ast.Name(id=name):
                return self.name(node, name)
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return self.expr(operand, depth + 1)
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                self.require("neg", self.col(node), "operator '-'")
                args = (self.expr(operand, depth + 1),)
                return Call("neg", args, **self.span(node))
            case ast.UnaryOp(op=op):
                raise self.refuse(node, f"'{_SYMBOLS[type(op)]}'")
            case ast.BinOp(op=op):
                # A chain of one operator (a + b + c + ...) nests to the left in
                # Python's tree. It is one level of nesting here, however long,
                # and is walked along its spine, not by recursion; the tree keeps
                # Python's left-to-right order (numpy's numbers, to the last bit).
                spine = []
                link: ast.expr = node
                while isinstance(link, ast.BinOp) and type(link.op) is type(op):
                    spine.append(link)
                    link = link.left
                result = self.expr(link, depth + 1)
                for b in reversed(spine):
                    result = self.binary(b, result, depth)
                return result
            case ast.Attribute(value=value, attr="T"):
                self.require("transpose", self.col(node), "'.T'")
                args = (self.expr(value, depth + 1),)
                return Call("transpose", args, **self.span(node))
            case ast.Attribute(attr=attr):
                raise self.attribute_error(node, attr)
            case ast.Subscript(value=value, slice=index):
                self.require("getitem", self.col(node), "indexing")
                args = (self.expr(value, depth + 1),)
                params = {"index": self.index(index)}
                return Call("getitem", args, params, **self.span(node))
            case ast.Call():
                return self.function(node, depth)
            case ast.Compare(left=left, ops=[op, *_], comparators=[right, *_]):
                col = self.operator_col(left, right, _SYMBOLS[type(op)])
                raise self.error(
                    col, "comparison is only allowed as the condition of where(...)"
                )
            case ast.BoolOp(op=op, values=[left, right, *_]):
                col = self.operator_col(left, right, _SYMBOLS[type(op)])
                raise self.error(col, f"'{_SYMBOLS[type(op)]}' is not allowed")
            case ast.IfExp(test=test, body=body):
                col = self.operator_col(body, test, "if")
                hint = "use where(condition, a, b)"
                raise self.error(col, "'if' is not allowed", hint)
            case _:
                what = _CONSTRUCTS.get(type(node), f"'{type(node).__name__}'")
                raise self.refuse(node, what)

    def name(self, node: ast.Name, name: str) -> Expr:
        if name in self.input_set:
            return Var(name, **self.span(node))
        if name in _CONSTANTS:
            return Const(_CONSTANTS[name], **self.span(node))
        col = self.col(node)
        op = self.ops.get(name)
        if op is not None and op.expr:
            raise self.error(col, f"'{name}' is a function; call it as {name}(...)")
        inputs = ", ".join(self.inputs) if self.inputs else "(none)"
        raise self.error(
            col,
            f"unknown name '{name}'; inputs are: {inputs}",
            _did_you_mean(name, [*self.inputs, *_CONSTANTS])
            or f"give it a value with --{name} VALUE",
        )

    def attribute_error(self, node: ast.Attribute, attr: str) -> UsageError:
        # Point at the attribute's name, which ends the node.
        col = max(self.end_col(node) - len(attr), self.col(node))
        op = self.ops.get(attr)
        hint = f"call it as {attr}(...)" if op is not None and op.expr else None
        return self.error(col, f"attribute access '.{attr}' is not allowed", hint)

    def binary(self, node: ast.BinOp, left: Expr, depth: int) -> Call:
        """``node`` with its left operand already read as ``left``."""
        symbol = _SYMBOLS[type(node.op)]
        col = self.operator_col(node.left, node.right, symbol)
        if symbol == "^":
            raise self.error(col, "'^' is not power; use '**'")
        op_name = _BINARY.get(type(node.op))
        if op_name is None:
            raise self.error(col, f"'{symbol}' is not allowed")
        self.require(op_name, col, f"operator '{symbol}'")
        return Call(op_name, (left, self.expr(node.right, depth + 1)), **self.span(node))

    def function(self, node: ast.Call, depth: int) -> Call:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr != "T":
            raise self.attribute_error(func, func.attr)
        if not isinstance(func, ast.Name):
            raise self.refuse(func, "calling anything but a function name")
        name = func.id
        op = self.ops.get(name)
        if op is None or not op.expr:
            if name in self.input_set:
                message = f"'{name}' is an input, not a function"
                raise self.error(self.col(func), message)
            names = [n for n, o in self.ops.items() if o.expr]
            hint = _did_you_mean(name, names)
            raise self.error(self.col(func), f"unknown function '{name}'", hint)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.refuse(arg, "'*' unpacking")
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.error(self.col(keyword), "'**' unpacking is not allowed")

        # Positional arguments fill the tensor slots, then the params in order.
        ntensors, nrequired = (1, 1) if op.nin == -1 else (op.nin, op.nreq)
        tensors, extra = node.args[:ntensors], node.args[ntensors:]
        if len(tensors) < nrequired:
            message = f"too few arguments for {op.signature()}"
            raise self.error(self.col(node), message)
        if len(extra) > len(op.params):
            message = f"too many arguments for {op.signature()}"
            raise self.error(self.col(extra[len(op.params)]), message)

        args: list[Expr | Seq] = []
        for i, arg in enumerate(tensors):
            if op.nin == -1:
                args.append(self.seq(arg, depth + 1, name))
            elif i == 0 and name == "where" and isinstance(arg, ast.Compare):
                args.append(self.compare(arg, depth + 1))
            else:
                args.append(self.expr(arg, depth + 1))
        reals = getattr(op, "reals", ())  # optional in the contract
        params = {p: self.param(value, p in reals) for p, value in zip(op.params, extra)}
        for keyword in node.keywords:
            assert keyword.arg is not None  # splats refused above
            if keyword.arg not in op.params:
                raise self.error(
                    self.col(keyword),
                    f"unknown keyword '{keyword.arg}' for {op.signature()}",
                    _did_you_mean(keyword.arg, op.params),
                )
            if keyword.arg in params:
                message = f"'{keyword.arg}' given twice to {op.signature()}"
                raise self.error(self.col(keyword), message)
            params[keyword.arg] = self.param(keyword.value, keyword.arg in reals)
        return Call(name, tuple(args), params, **self.span(node))

    def seq(self, node: ast.expr, depth: int, name: str) -> Seq:
        self.check_depth(node, depth)
        if not isinstance(node, ast.List | ast.Tuple):
            message = f"{name}() takes a list or tuple of tensors, e.g. {name}([x, y])"
            raise self.error(self.col(node), message)
        if not node.elts:
            raise self.error(self.col(node), f"{name}() needs at least one tensor")
        items = tuple(self.expr(item, depth + 1) for item in node.elts)
        return Seq(items, **self.span(node))

    def compare(self, node: ast.Compare, depth: int) -> Call:
        self.check_depth(node, depth)
        left, right, *rest = [node.left, *node.comparators]
        symbol = _SYMBOLS[type(node.ops[0])]
        if rest:
            col = self.operator_col(right, rest[0], _SYMBOLS[type(node.ops[1])])
            message = "chained comparisons like 'a < b < c' are not allowed"
            raise self.error(col, message)
        col = self.operator_col(left, right, symbol)
        name = _COMPARISONS.get(type(node.ops[0]))
        if name is None:
            raise self.error(col, f"'{symbol}' is not allowed")
        self.require(name, col, f"comparison '{symbol}'")
        args = (self.expr(left, depth + 1), self.expr(right, depth + 1))
        return Call(name, args, **self.span(node))

    # -- literals that stay Python values: indices and params --------------------

    def integer(self, node: ast.expr, message: str, clip: bool = False) -> int:
        """An integer literal; ``clip``: a slice bound, which numpy (as Python)
        clips to the axis, so that any size means "to the end"."""
        negative = False
        match node:
            case ast.UnaryOp(
                op=ast.USub() | ast.UAdd() as sign, operand=ast.Constant(value=value)
            ):
                negative = isinstance(sign, ast.USub)
            case ast.Constant(value=value):
                pass
            case _:
                value = None
        if type(value) is not int:  # bool is an int, but not an integer here
            raise self.error(self.col(node), message)
        if abs(value) >= _INT64:
            if not clip:
                raise self.error(self.col(node), "integer is too large")
            value = _INT64 - 1
        return -value if negative else value

    def index(self, node: ast.expr, top: bool = True) -> object:
        match node:
            case ast.Tuple(elts=elts) if top:
                parts = tuple(self.index(elt, top=False) for elt in elts)
                dots = [elt for elt, part in zip(elts, parts) if part is Ellipsis]
                if len(dots) > 1:  # numpy's IndexError, caught before any work
                    message = "an index can only have a single ellipsis ('...')"
                    raise self.error(self.col(dots[1]), message)
                return parts
            case ast.Constant(value=None):
                return None  # numpy's newaxis: a new axis of length 1
            case ast.Constant(value=value) if value is Ellipsis:
                return Ellipsis
            case ast.List(elts=elts):
                return [self.integer(elt, _INDEX) for elt in elts]
            case ast.Slice(lower=lower, upper=upper, step=step):
                bound = "slice bounds must be integer literals (or None)"
                parts = [
                    None if _is_none(part) else self.integer(part, bound, clip=True)
                    for part in (lower, upper, step)
                ]
                if step is not None and parts[2] == 0:
                    raise self.error(self.col(step), "slice step cannot be zero")
                return slice(*parts)
            case _:
                return self.integer(node, _INDEX)

    def param(self, node: ast.expr, real: bool = False) -> object:
        """A literal parameter; ``real``: one that takes any real number (norm's
        ``ord``), ``inf`` and ``-inf`` included."""
        if real:
            sign, inner = 1, node
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
                sign, inner = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
            match inner:
                case ast.Name(id="inf") if "inf" not in self.input_set:
                    return sign * math.inf
                case ast.Constant(value=float() as value):
                    return sign * value
        match node:
            case ast.Constant(value=None | True | False as value):
                return value
            case ast.Tuple(elts=elts) | ast.List(elts=elts):
                message = "a tuple parameter may hold only integers"
                return tuple(self.integer(elt, message) for elt in elts)
            case _:
                return self.integer(node, _REAL_PARAM if real else _PARAM)


def _is_none(node: ast.expr | None) -> bool:
    """An absent slice bound, or a written ``None`` as in ``x[None:2]`` (numpy: the
    same as ``x[:2]``)."""
    return node is None or (isinstance(node, ast.Constant) and node.value is None)


def _next_line(text: str, i: int) -> int:
    """Where the line after the one holding offset ``i`` starts, or -1."""
    n = text.find("\n", i)
    r = text.find("\r", i, n if n >= 0 else len(text))
    if r >= 0:
        return r + 2 if text.startswith("\r\n", r) else r + 1
    return n + 1 if n >= 0 else -1


def _to_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # a huge int literal: the same inf as 1e400
        return math.inf


def _did_you_mean(word: str, candidates: Collection[str]) -> str | None:
    import difflib  # only on the error path

    matches = difflib.get_close_matches(word, candidates, n=3)
    if not matches:
        return None
    return "did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"
