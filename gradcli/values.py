"""Command-line VALUE text -> numpy array, and back.

Accepted forms (every result is a float array of the requested dtype):

- scalar ``0.5``, ``-1e-3``, ``3`` -> 0-d
- comma list ``0,1,2,3`` -> 1-d; matrix ``1,2;3,4`` -> 2-d (rows split on ``;``)
- JSON array ``[[1,2],[3,4]]``, any depth; ``[]`` -> shape (0,)
- ``@file.npy``, ``@file.csv``, ``@file.json``, ``@file.txt``
- constructors ``arange``, ``linspace``, ``zeros``, ``ones``, ``randn``, ``eye``

Nothing is evaluated: numbers go through a strict regex before ``float``, JSON
through the stdlib parser, constructors through a fixed table. Non-finite numbers
are refused everywhere, and sizes are checked against ``max_elements`` before any
array is built.

``format_value`` writes the list/matrix syntax back, falling back to JSON where
that syntax would lose the shape (one element, one row, >2-d, empty). For finite
arrays ``parse_value(format_value(a))`` equals ``a`` bit for bit, except that a
JSON nested list cannot record dimensions after an empty one: shape (0, 3) comes
back as (0,), (2, 0, 3) as (2, 0). Shapes whose only zero is the last dimension,
such as (0,) and (3, 0), round-trip.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import DTypeLike

__all__ = ["format_number", "format_value", "parse_value"]

# numpy 1.x allows 32 dimensions (2.x allows 64); the lower bound works on both.
MAX_DIMS = 32
FILE_TYPES = (".npy", ".csv", ".json", ".txt")

# ASCII digits only: float() also takes '1_000', 'nan', 'infinity' and other
# scripts' digits, none of which belong in a command-line number.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SIZE = re.compile(r"\+?[0-9]+")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
# Everything outside numbers, brackets, commas and JSON whitespace: strings,
# true/false/null, objects, NaN/Infinity. Found before json.loads runs, so the
# message can name the culprit and the parse only ever yields lists and numbers.
_JSON_BAD = re.compile(r"[^0-9.eE+\-,\[\] \t\n\r]")
_JSON_TOKEN = re.compile(r'"[^"\n]*"?|[A-Za-z]+|.', re.DOTALL)
_TXT_SEPARATOR = re.compile(r"\s*,\s*|\s+")
_SHOW_MAX = 60
# Reading a value file: a chunk at a time; items are what separators delimit,
# and none is longer than the longest way to write a number (with room to spare).
_CHUNK = 1 << 16
_ITEM = re.compile(r"[^\s,;\[\]]+")
_ITEM_ENDS = frozenset(" \t\n\r\f\v,;[]")
_MAX_ITEM = 400


class _BadNumber(Exception):
    """A token is not a finite number; ``reason`` is the message tail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _TooMany(Exception):
    pass


def _show(text: str) -> str:
    """Quote user text for a message; repr() also neutralises control characters."""
    if len(text) > _SHOW_MAX:
        text = text[: _SHOW_MAX - 3] + "..."
    return repr(text)


def _overflow_limit(dtype: np.dtype) -> float:
    """Smallest magnitude that becomes inf when a float64 is cast to ``dtype``."""
    if dtype.itemsize >= 8:
        return math.inf
    info = np.finfo(dtype)
    # max plus half an ulp: the tie rounds to even, and max's mantissa is odd.
    return float(info.max) + 2.0 ** (info.maxexp - info.nmant - 2)


def _to_float(token: str, limit: float, dtype: np.dtype) -> float:
    if _NUMBER.fullmatch(token):
        value = float(token)
        if abs(value) < limit:
            return value
        raise _BadNumber(f"non-finite value {_show(token)} (overflows {dtype.name})")
    try:
        value = float(token)
    except ValueError:
        value = 0.0
    if not math.isfinite(value):
        raise _BadNumber(f"non-finite value {_show(token)}")
    raise _BadNumber(f"{_show(token)} is not a number")


def _values(n: int) -> str:
    return "1 value" if n == 1 else f"{n} values"


def _index(path: list[int]) -> str:
    return "".join(f"[{i}]" for i in path)


class _Parser:
    def __init__(
        self,
        name: str,
        dtype: np.dtype,
        rng: np.random.Generator | None,
        max_elements: int,
    ) -> None:
        self.name = name
        self.dtype = dtype
        self.rng = rng
        self.max_elements = max_elements
        self.limit = _overflow_limit(dtype)

    def error(self, message: str) -> UsageError:
        return UsageError(f"input {self.name}: {message}")

    def number(self, token: str, where: str = "") -> float:
        try:
            return _to_float(token, self.limit, self.dtype)
        except _BadNumber as exc:
            raise self.error(where + exc.reason) from None

    def check_count(self, count: int, where: str = "") -> None:
        if count > self.max_elements:
            raise self.error(
                f"{where}too many elements ({count}; the limit is {self.max_elements})"
            )

    def finish(self, array: np.ndarray, where: str = "") -> np.ndarray:
        """Cast to the dtype; catch what per-token checks cannot (files, maths)."""
        original = np.asarray(array)
        with np.errstate(all="ignore"):
            array = original.astype(self.dtype, copy=False)
        finite = np.isfinite(array)
        if not finite.all():
            bad = tuple(int(i) for i in np.argwhere(~finite)[0])
            at = f" at index {list(bad)}" if bad else ""
            if np.isfinite(original[bad]):
                value = format_number(original[bad])
                problem = f"value {value}{at} overflows {self.dtype.name}"
            else:
                problem = f"non-finite value {format_number(array[bad])}{at}"
            raise self.error(where + problem)
        return array

    # -- forms --------------------------------------------------------------

    def parse(self, text: str) -> np.ndarray:
        text = text.strip()
        if not text:
            raise self.error("empty value")
        if text.startswith("@"):
            return self.parse_file(text[1:])
        if text.startswith("["):
            return self.parse_json(text)
        call = _CALL.match(text)
        if call:
            return self.parse_call(text, call)
        if "," not in text and ";" not in text:
            return self.finish(np.array(self.number(text)))
        return self.parse_rows(text)

    def parse_rows(self, text: str) -> np.ndarray:
        # Exact for valid input, since every separator must be followed by an item.
        self.check_count(text.count(",") + text.count(";") + 1)
        matrix = ";" in text
        rows: list[list[float]] = []
        for i, row in enumerate(text.split(";"), 1):
            if not row.strip():
                raise self.error(f"empty row {i} in {_show(text)}")
            values = []
            for j, item in enumerate(row.split(","), 1):
                item = item.strip()
                if not item:
                    in_row = f" in row {i}" if matrix else ""
                    raise self.error(f"empty item {j}{in_row} of {_show(text)}")
                values.append(self.number(item))
            if rows and len(values) != len(rows[0]):
                raise self.error(
                    f"ragged rows (row {i} has {_values(len(values))}, "
                    f"row 1 has {len(rows[0])})"
                )
            rows.append(values)
        return self.finish(np.array(rows if matrix else rows[0]))

    def parse_json(self, text: str, where: str = "") -> np.ndarray:
        bad = _JSON_BAD.search(text)
        if bad:
            raise self.error(where + self._json_culprit(text, bad.start()))
        count = 0

        def number(token: str) -> float:
            nonlocal count
            count += 1
            if count > self.max_elements:
                raise _TooMany
            return _to_float(token, self.limit, self.dtype)

        def constant(token: str) -> float:
            raise _BadNumber(f"non-finite value {_show(token)}")

        try:
            obj = json.loads(
                text, parse_float=number, parse_int=number, parse_constant=constant
            )
        except _BadNumber as exc:
            raise self.error(where + exc.reason) from None
        except _TooMany:
            raise self.error(
                f"{where}too many elements (more than {self.max_elements})"
            ) from None
        except json.JSONDecodeError as exc:
            at = f"column {exc.colno}"
            if exc.lineno > 1:
                at = f"line {exc.lineno} {at}"
            raise self.error(f"{where}invalid JSON: {exc.msg} at {at}") from None
        except RecursionError:
            raise self.error(f"{where}JSON array nested too deeply") from None

        shape = []
        node = obj
        while isinstance(node, list):
            shape.append(len(node))
            if len(shape) > MAX_DIMS:
                raise self.error(f"{where}more than {MAX_DIMS} dimensions")
            if not node:
                break
            node = node[0]
        try:
            array = np.array(obj, dtype=np.float64)
        except ValueError:
            array = None
        if array is None or array.shape != tuple(shape):
            problem = _ragged(obj, shape, []) or "not a rectangular array"
            raise self.error(where + problem)
        return self.finish(array, where)

    def _json_culprit(self, text: str, pos: int) -> str:
        start = pos
        while start > 0 and text[start - 1].isascii() and text[start - 1].isalpha():
            start -= 1
        found = _JSON_TOKEN.match(text, start)
        token = found.group() if found else text[pos]
        if token in ("NaN", "Infinity"):
            return f"non-finite value {_show(token)}"
        if token == "{":
            return "JSON objects are not numbers"
        return f"{_show(token)} is not a number"

    def parse_file(self, path: str) -> np.ndarray:
        if not path:
            raise self.error("missing file name after '@'")
        extension = os.path.splitext(path)[1].lower()
        where = f"file {_show(path)}: "
        if extension not in FILE_TYPES:
            kind = f"type {_show(extension)}" if extension else "type (no extension)"
            raise self.error(
                f"{where}unsupported {kind}, use one of {', '.join(FILE_TYPES)}"
            )
        if extension == ".npy":
            return self.read_npy(path, where)
        try:
            text = self.read_text(path, where)
        except UnicodeDecodeError as exc:
            raise self.error(f"{where}not UTF-8 text ({exc.reason})") from None
        except (OSError, ValueError) as exc:  # ValueError: embedded null byte
            raise self._unreadable(path, exc) from None
        except MemoryError:
            raise self.error(f"{where}too large for the memory of this machine "
                             "(lower --max-elements)") from None
        if extension == ".json":
            return self.parse_json(text.strip(), where)
        if extension == ".csv":
            return self.parse_table(text, where, lambda line: line.split(","))
        return self.parse_table(text, where, _TXT_SEPARATOR.split)

    def read_text(self, path: str, where: str) -> str:
        """The file's text, read a chunk at a time and refused as soon as it
        holds more items than ``max_elements`` or an item longer than any
        number: never more is read than could be accepted (a pipe, /dev/zero
        and a huge file alike)."""
        chunks: list[str] = []
        count = 0
        tail = ""  # the item the last chunk ended in, maybe unfinished
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with open(path, encoding="utf-8-sig") as file:
            while chunk := file.read(_CHUNK):
                chunks.append(chunk)
                items = _ITEM.findall(tail + chunk)
                ended = chunk[-1] in _ITEM_ENDS
                tail = "" if ended or not items else items.pop()
                count += len(items)
                longest = max(map(len, items), default=0)
                if max(longest, len(tail)) > _MAX_ITEM:
                    raise self.error(f"{where}an item longer than {_MAX_ITEM} characters "
                                     "is not a number")
                if count + bool(tail) > self.max_elements:
                    raise self.error(f"{where}too many elements (more than the limit, "
                                     f"{self.max_elements})")
        return "".join(chunks)

    def _unreadable(self, path: str, exc: Exception) -> UsageError:
        reason = getattr(exc, "strerror", None) or str(exc)
        return self.error(f"cannot read file {_show(path)}: {reason}")

    def read_npy(self, path: str, where: str) -> np.ndarray:
        from numpy.lib import format as npy

        try:
            with open(path, "rb") as file:
                try:
                    version = npy.read_magic(file)
                    if version == (1, 0):
                        shape, _, dtype = npy.read_array_header_1_0(file)
                    elif version == (2, 0):
                        shape, _, dtype = npy.read_array_header_2_0(file)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                except ValueError as exc:
                    raise self.error(f"{where}not a .npy file ({exc})") from None
                # Booleans, complex, strings, objects and records are not numbers.
                if dtype.kind not in "iuf":
                    raise self.error(f"{where}holds {dtype} values, not real numbers")
                self.check_count(math.prod(shape), where)
                file.seek(0)
                try:
                    array = np.load(file, allow_pickle=False)
                except (ValueError, EOFError) as exc:
                    raise self.error(f"{where}damaged .npy file ({exc})") from None
        except (OSError, ValueError) as exc:
            raise self._unreadable(path, exc) from None
        return self.finish(array, where)

    def parse_table(
        self, text: str, where: str, split: Callable[[str], list[str]]
    ) -> np.ndarray:
        rows: list[list[float]] = []
        first_line = 0
        count = 0
        # open() already turned \r\n into \n; splitlines() would also split on
        # form feeds and such, putting line numbers out of step with editors.
        for lineno, line in enumerate(text.split("\n"), 1):
            line = line.strip()
            if not line:
                continue
            items = split(line)
            count += len(items)
            self.check_count(count, where)
            at = f"{where}line {lineno}: "
            values = []
            for j, item in enumerate(items, 1):
                item = item.strip()
                if not item:
                    raise self.error(f"{at}empty item {j}")
                try:
                    values.append(_to_float(item, self.limit, self.dtype))
                except _BadNumber as exc:
                    hint = "" if rows else " (header lines are not supported)"
                    raise self.error(at + exc.reason + hint) from None
            if rows and len(values) != len(rows[0]):
                raise self.error(
                    f"{where}ragged rows (line {lineno} has {_values(len(values))}, "
                    f"line {first_line} has {len(rows[0])})"
                )
            if not rows:
                first_line = lineno
            rows.append(values)
        if not rows:
            raise self.error(f"{where}no numbers in the file")
        return self.finish(np.array(rows[0] if len(rows) == 1 else rows), where)

    # -- constructors -------------------------------------------------------

    def parse_call(self, text: str, call: re.Match[str]) -> np.ndarray:
        name = call.group(1)
        if name not in _CONSTRUCTORS:
            raise self.error(
                f"unknown constructor {_show(name)} "
                f"(known: {', '.join(sorted(_CONSTRUCTORS))})"
            )
        rest = text[call.end() :]
        inner = rest[:-1]
        if not rest.endswith(")") or "(" in inner or ")" in inner:
            raise self.error(f"malformed call {_show(text)}, expected {name}(...)")
        args = [arg.strip() for arg in inner.split(",")] if inner.strip() else []
        if not all(args):
            raise self.error(f"{name}: empty argument in {_show(text)}")
        # linspace over a huge span overflows; finish() reports it, numpy need not.
        with np.errstate(all="ignore"):
            array = _CONSTRUCTORS[name](self, name, args)
        return self.finish(array, f"{name}: ")

    def arity(self, name: str, args: list[str], low: int, high: int, sig: str) -> None:
        if not low <= len(args) <= high:
            raise self.error(f"{name} takes {sig}, got {len(args)} arguments")

    def size(self, name: str, arg: str) -> int:
        if not _SIZE.fullmatch(arg):
            raise self.error(
                f"{name}: size must be a non-negative integer, got {_show(arg)}"
            )
        digits = arg.lstrip("+").lstrip("0")
        # Short-circuit huge literals: int() of thousands of digits is slow.
        if len(digits) > 18 or int(digits or "0") > self.max_elements:
            raise self.error(
                f"{name}: size {_show(arg)} is over the limit of "
                f"{self.max_elements} elements"
            )
        return int(digits or "0")

    def shape(self, name: str, args: list[str]) -> tuple[int, ...]:
        if len(args) > MAX_DIMS:
            raise self.error(f"{name}: more than {MAX_DIMS} dimensions")
        shape = tuple(self.size(name, arg) for arg in args)
        self.check_count(math.prod(shape), f"{name}: ")
        return shape


def _ragged(node: object, shape: list[int], path: list[int]) -> str | None:
    """Describe the first place where ``node`` departs from ``shape``."""
    depth = len(path)
    first = _index([0] * depth)
    if depth == len(shape):
        if isinstance(node, list):
            return f"ragged array (item {_index(path)} is a list, item {first} is not)"
        return None
    if not isinstance(node, list):
        return f"ragged array (item {_index(path)} is a number, item {first} is a list)"
    if len(node) != shape[depth]:
        return (
            f"ragged array (item {_index(path)} has {_values(len(node))}, "
            f"item {first} has {shape[depth]})"
        )
    for i, child in enumerate(node):
        problem = _ragged(child, shape, [*path, i])
        if problem:
            return problem
    return None


def _arange(p: _Parser, name: str, args: list[str]) -> np.ndarray:
    p.arity(name, args, 1, 3, "(stop), (start, stop) or (start, stop, step)")
    numbers = [p.number(arg, f"{name}: ") for arg in args]
    if len(numbers) == 1:
        numbers.insert(0, 0.0)
    if len(numbers) == 2:
        numbers.append(1.0)
    start, stop, step = numbers
    if step == 0:
        raise p.error(f"{name}: step must not be zero")
    # numpy's own length formula, evaluated before anything is allocated; the
    # negated test also refuses a span that overflowed to inf.
    span = (stop - start) / step
    if not span <= p.max_elements:
        raise p.error(
            f"{name}: too many elements (about {span:.3g}; "
            f"the limit is {p.max_elements})"
        )
    return np.arange(start, stop, step, dtype=np.float64)


def _linspace(p: _Parser, name: str, args: list[str]) -> np.ndarray:
    p.arity(name, args, 3, 3, "(start, stop, num)")
    start = p.number(args[0], f"{name}: ")
    stop = p.number(args[1], f"{name}: ")
    return np.linspace(start, stop, p.size(name, args[2]))


def _zeros(p: _Parser, name: str, args: list[str]) -> np.ndarray:
    return np.zeros(p.shape(name, args))


def _ones(p: _Parser, name: str, args: list[str]) -> np.ndarray:
    return np.ones(p.shape(name, args))


def _randn(p: _Parser, name: str, args: list[str]) -> np.ndarray:
    shape = p.shape(name, args)
    rng = p.rng if p.rng is not None else np.random.default_rng()
    # Always draw float64, so one seed gives the same numbers whatever the dtype.
    return np.asarray(rng.standard_normal(shape))


def _eye(p: _Parser, name: str, args: list[str]) -> np.ndarray:
    p.arity(name, args, 1, 2, "(n) or (n, m)")
    rows, columns = p.shape(name, [args[0], args[-1]])  # eye(n) is n by n
    return np.eye(rows, columns)


_CONSTRUCTORS: dict[str, Callable[[_Parser, str, list[str]], np.ndarray]] = {
    "arange": _arange,
    "eye": _eye,
    "linspace": _linspace,
    "ones": _ones,
    "randn": _randn,
    "zeros": _zeros,
}


def parse_value(
    text: str,
    *,
    name: str,
    dtype: DTypeLike = np.float64,
    rng: np.random.Generator | None = None,
    max_elements: int = 10_000_000,
) -> np.ndarray:
    """Parse VALUE text for input ``name`` into a float array of ``dtype``.

    Raises UsageError, naming the input, for anything it cannot read. ``rng``
    feeds ``randn(...)``; ``max_elements`` is checked before an array is built.

    >>> parse_value("1,2;3,4", name="x").tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    >>> parse_value("arange(0,1,0.25)", name="x").tolist()
    [0.0, 0.25, 0.5, 0.75]
    >>> parse_value("[[1],[2]]", name="x", dtype="float32").shape
    (2, 1)
    """
    resolved = np.dtype(dtype)
    if resolved.kind != "f":
        raise TypeError(f"parse_value: dtype must be a float type, not {resolved}")
    # The common case, one plain number (each cell of a --points file), skips the
    # parser: the same strict syntax, the same overflow limit.
    if _NUMBER.fullmatch(text):
        value = float(text)
        if abs(value) < _overflow_limit(resolved):
            return np.array(value, dtype=resolved)
    return _Parser(name, resolved, rng, max_elements).parse(text)


def format_number(x: float) -> str:
    """Shortest text that reads back as the same float64.

    >>> format_number(28.0), format_number(0.1), format_number(-0.0)
    ('28', '0.1', '-0')
    """
    text = repr(float(x))
    return text.removesuffix(".0")


def format_value(a: np.ndarray) -> str:
    """Write ``a`` in VALUE syntax that ``parse_value`` reads back unchanged.

    >>> format_value(np.array([[1.0, 2.0], [3.0, 4.5]]))
    '1,2;3,4.5'
    >>> format_value(np.array([7.0])), format_value(np.zeros((1, 2)))
    ('[7]', '[[0,0]]')
    """
    a = np.asarray(a)
    if a.ndim == 0:
        return format_number(a.item())
    # '7' would read back as 0-d and '1,2' as 1-d: one element or one row go as JSON.
    if a.ndim == 1 and a.size >= 2:
        return ",".join(map(format_number, a.tolist()))
    if a.ndim == 2 and a.shape[0] >= 2 and a.shape[1] >= 1:
        return ";".join(",".join(map(format_number, row)) for row in a.tolist())
    return _json_text(a.tolist())


def _json_text(obj: Any) -> str:
    if isinstance(obj, list):
        return "[" + ",".join(_json_text(item) for item in obj) + "]"
    return format_number(obj)
