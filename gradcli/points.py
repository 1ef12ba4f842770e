"""``--points``: many points from CSV rows or NDJSON lines, read as they come.

CSV: a header of input names; a vector input is several columns ``x[0],x[1],...``
or one column holding a quoted VALUE (``"0,1,2"``). NDJSON: one JSON object per
line, ``{"x": [0, 1, 2], "k": 2}`` (a value may also be a VALUE string). A
malformed row becomes an error record for that row; reading goes on.

``stream`` evaluates the rows, merged with the fixed inputs, a chunk at a time:
what ``render.emit`` prints as it comes.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

import numpy as np

from .errors import EvaluationError, UsageError
from .values import parse_value

_INDEXED = re.compile(r"^([A-Za-z_]\w*)\[(\d+)\]$")


@dataclass
class Row:
    number: int  # 1-based data row (CSV: not counting the header)
    inputs: dict[str, np.ndarray] | None
    error: str | None = None
    result: Any = None  # a compute.Result, once evaluated without error


@dataclass
class Batch:
    target: Any  # compute.Target
    wrt: list[str]  # the gradients each row has (none with no_grad)
    chunks: Iterator[list[Row]]  # evaluated rows, in order, CHUNK at a time


CHUNK = 1000  # rows evaluated (and written) together
MAX_LINE_BYTES = 16 * 2**20  # one line of a --points file (--max-line-bytes)


def lines_of(raw: BinaryIO | TextIO, limit: int = MAX_LINE_BYTES) -> Iterator[bytes | str]:
    """The lines of a binary stream, each read at most ``limit`` bytes at a
    time: a longer line (a file without newlines, /dev/zero) is refused, naming
    it, before it fills memory. Each byte is read once: a pipe loses nothing."""
    number = 0
    while line := raw.readline(limit + 1):
        number += 1
        if len(line) > limit and not line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
            raise UsageError(f"--points: line {number} is longer than {limit:,} bytes",
                             hint="--max-line-bytes N raises the limit")
        yield line


def stream(target: str, fixed: dict[str, np.ndarray], lines: Iterable[str | bytes], *,
           source: str, fmt: str | None, dtype, max_elements: int, wrt: list[str],
           no_grad: bool, strict: bool) -> Batch:
    """``target`` at each row of ``lines`` with the ``fixed`` inputs. Everything
    that fails the whole batch (names, the target, ``wrt``, a file without
    rows) raises here; a row that fails gets its ``error``. ``source`` names the
    file in messages; ``lines`` are text, or bytes decoded here (``lines_of``)."""
    from .compute import evaluate_rows, prepare

    declared, rows = read(lines, fmt=fmt, dtype=dtype, max_elements=max_elements)
    ahead = []  # NDJSON: rows up to the first good one, whose names count
    if declared is not None:  # CSV: a header alone is an empty file
        first_row = next(rows, None)
        if first_row is None:
            raise UsageError(f"--points {source}: no rows")
        ahead.append(first_row)
    else:
        for r in rows:
            ahead.append(r)
            if r.inputs is not None:
                declared = list(r.inputs)
                break
        if not ahead:
            raise UsageError(f"--points {source}: no rows")
        if declared is None:  # not one line could be read
            raise EvaluationError(f"--points {source}: no row could be read ({ahead[0].error})")
    both = sorted(set(declared or ()) & set(fixed))
    if both:
        raise UsageError(f"input {both[0]!r} is given by --points and by --{both[0]}: "
                         "give it once")
    names = sorted(set(declared or ()) | set(fixed))
    tgt = prepare(target, names)
    names = tgt.order(names)  # the target's order: parameters, or first appearance
    # A function file's parameters with a default value are constants unless in --wrt.
    optional = tgt.loaded.optional if tgt.loaded is not None else ()
    wrt = list(wrt) or [n for n in names if n not in optional]
    for n in wrt:
        if n not in names:
            raise UsageError(f"--wrt {n}: no input named {n!r}")

    def chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
        while chunk := list(itertools.islice(rows, CHUNK)):
            good = [r for r in chunk if r.inputs is not None and _merge(r, fixed, names)]
            results = evaluate_rows(tgt, [r.inputs for r in good], wrt=wrt,
                                    no_grad=no_grad, max_elements=max_elements)
            for r, res in zip(good, results):
                if isinstance(res, Exception):
                    r.error = f"row {r.number}: {_one_line(res)}"
                elif strict and res.warnings:
                    r.error = f"row {r.number}: --strict: {res.warnings[0]}"
                else:
                    r.result = res
            yield chunk

    return Batch(tgt, [] if no_grad else wrt, chunks(itertools.chain(ahead, rows)))


def _merge(r: Row, fixed: dict[str, np.ndarray], names: list[str]) -> bool:
    """The row's inputs and the fixed ones, in ``names`` order; False (and the
    row's error) when they do not make up ``names``."""
    merged = {**fixed, **r.inputs}
    twice = sorted(set(r.inputs) & set(fixed))
    missing = sorted(set(names) - set(merged))
    unknown = sorted(set(merged) - set(names))
    if twice or missing or unknown:
        why = [f"input {n!r} is also given by --{n}" for n in twice]
        if missing:
            why.append(f"missing input{'s' * (len(missing) > 1)} "
                       + ", ".join(map(repr, missing)))
        if unknown:
            why.append(f"unknown input{'s' * (len(unknown) > 1)} "
                       + ", ".join(map(repr, unknown)) + f" (the inputs are {', '.join(names)})")
        r.error = f"row {r.number}: {'; '.join(why)}"
        r.inputs = None
        return False
    r.inputs = {n: merged[n] for n in names}
    return True


def _sniff(first: str) -> str:
    return "ndjson" if first.lstrip().startswith("{") else "csv"


def read(lines: Iterable[str], *, fmt: str | None, dtype,
         max_elements: int) -> tuple[list[str] | None, Iterator[Row]]:
    """The input names a CSV header declares (None for NDJSON, whose lines each
    name theirs) and the rows of inputs from ``lines``, read lazily."""
    it = _decoded(lines)
    first = next((ln for ln in it if ln.strip()), None)
    if first is None:
        return None, iter(())
    fmt = fmt or _sniff(first)
    if fmt == "ndjson":
        return None, _ndjson(first, it, dtype, max_elements)
    header = next(csv.reader([first]))
    groups = _columns(header)
    return list(groups), _csv(header, groups, it, dtype, max_elements)


def _decoded(lines: Iterable[str | bytes]) -> Iterator[str]:
    """The lines as text, decoded one at a time, so that a byte that is not
    UTF-8 is reported on its own line, whatever the source (a file, a pipe);
    a byte-order mark at the start (Excel's CSV) is dropped."""
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"--points: line {number} is not UTF-8 text "
                                 f"(byte {exc.start + 1}: {exc.reason})") from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        yield line


def _ndjson(first, rest, dtype, max_elements) -> Iterator[Row]:
    number = 0
    for line in itertools.chain([first], rest):
        if not line.strip():
            continue
        number += 1
        try:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"not valid JSON ({exc.msg} at column {exc.colno}); "
                                 "each line must be one JSON object of input values") from None
            if not isinstance(obj, dict):
                raise UsageError("a line must be a JSON object of input values")
            inputs = {}
            for name, v in obj.items():
                text = v if isinstance(v, str) else json.dumps(v)
                inputs[name] = parse_value(text, name=name, dtype=dtype,
                                           max_elements=max_elements)
            yield Row(number, inputs)
        except RecursionError:
            yield Row(number, None, f"row {number}: the JSON is nested too deeply")
        except (UsageError, ValueError) as exc:
            yield Row(number, None, f"row {number}: {_one_line(exc)}")


def _columns(header: list[str]) -> dict[str, list[tuple[int, int | None]]]:
    """Input name -> [(column, index or None)], indexed columns in index order."""
    groups: dict[str, list[tuple[int, int | None]]] = {}
    for col, raw in enumerate(header):
        name = raw.strip()
        m = _INDEXED.match(name)
        key, idx = (m.group(1), int(m.group(2))) if m else (name, None)
        if not key.isidentifier():
            raise UsageError(f"--points header: column {col + 1} {raw!r} is not an input name")
        groups.setdefault(key, []).append((col, idx))
    for name, cols in groups.items():
        idxs = [i for _, i in cols]
        if None in idxs and len(cols) > 1:
            raise UsageError(f"--points header: input {name!r} appears more than once")
        if None not in idxs:
            if sorted(idxs) != list(range(len(idxs))):
                raise UsageError(
                    f"--points header: columns {name}[...] must be {name}[0] to "
                    f"{name}[{len(idxs) - 1}], each once"
                )
            cols.sort(key=lambda c: c[1])
    return groups


def _csv(header, groups, rest, dtype, max_elements) -> Iterator[Row]:
    # A field may hold a whole vector as one quoted VALUE: no small length cap
    # (values.parse_value bounds the element count).
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(rest)
    width = len(header)
    number = 0
    for cells in reader:
        if not cells or all(not c.strip() for c in cells):
            continue
        number += 1
        try:
            if len(cells) != width:
                raise UsageError(f"has {len(cells)} cells, the header has {width}")
            inputs = {}
            for name, cols in groups.items():
                if cols[0][1] is None:
                    inputs[name] = parse_value(cells[cols[0][0]], name=name, dtype=dtype,
                                               max_elements=max_elements)
                else:
                    parts = [parse_value(cells[c], name=f"{name}[{i}]", dtype=dtype)
                             for c, i in cols]
                    if any(p.ndim for p in parts):
                        raise UsageError(f"input {name}: each {name}[i] cell must be a number")
                    inputs[name] = np.array(parts, dtype=dtype)
            yield Row(number, inputs)
        except UsageError as exc:
            yield Row(number, None, f"row {number}: {_one_line(exc)}")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# -- random points -------------------------------------------------------------------
RADIUS = 1.0  # default domain: uniform in centre +- RADIUS, per component
REDRAWS = 20  # draws of one point that sit on a kink before giving up


def read_domain(pair: str) -> tuple[str, float, float]:
    """``NAME=LO:HI`` (``--domain``), read; LO < HI, both finite."""
    name, eq, text = pair.partition("=")
    lo, colon, hi = text.partition(":")
    name = name.strip()
    if not eq or not colon or not name.isidentifier():
        raise UsageError(f"--domain {pair!r}: expected NAME=LO:HI, e.g. --domain x=-2:2")
    try:
        low, high = float(lo), float(hi)
    except ValueError:
        raise UsageError(f"--domain {pair!r}: LO and HI must be numbers") from None
    if not (np.isfinite(low) and np.isfinite(high)):
        raise UsageError(f"--domain {pair!r}: LO and HI must be finite")
    if not low < high:
        raise UsageError(f"--domain {pair!r}: LO must be less than HI")
    if not np.isfinite(high - low):
        raise UsageError(f"--domain {pair!r}: HI - LO overflows a float64",
                         hint="give a narrower domain")
    return name, low, high


def random_points(centres: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                  domains: dict[str, tuple[float, float]], drawn: list[str], n: int,
                  seed: int, *, dtype="float64", start: int = 1,
                  at_kink=None) -> Iterator[Row]:
    """Points ``start .. start + n - 1``: each input in ``drawn`` uniform in its
    ``domains`` entry or else in centre +- RADIUS (the centre its given value, or 0
    for a shape alone); the other inputs keep their values. Point ``k`` depends
    only on ``(seed, k)``, so ``--replay K`` redraws it alone. A point where
    ``at_kink(inputs)`` is true is drawn again (up to REDRAWS times)."""
    for k in range(start, start + n):
        rng = np.random.default_rng([seed, k])
        for _ in range(REDRAWS):
            inputs = {}
            for name, value in centres.items():
                if name not in drawn:
                    inputs[name] = value
            for name in drawn:
                centre = centres.get(name)
                shape = shapes[name] if name in shapes else np.shape(centre)
                if name in domains:
                    lo, hi = domains[name]
                    x = rng.uniform(lo, hi, size=shape)
                else:
                    c = np.zeros(shape) if centre is None else np.asarray(centre, np.float64)
                    x = c + rng.uniform(-RADIUS, RADIUS, size=shape)
                inputs[name] = np.asarray(x, dtype=dtype)
            if at_kink is None or not at_kink(inputs):
                break
        yield Row(k, inputs)
