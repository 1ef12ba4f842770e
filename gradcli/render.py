"""Result -> text: JSON for scripts, plain lines for shells, a rich table for people.

rich is imported only by ``table`` (start-up time matters for scripts).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .values import format_value

SCHEMA = 1


def _number(x: float, float32: bool):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    # float32 results: the shortest decimal that reads back as that float32.
    return float(repr(np.float32(x)).removeprefix("np.float32(").rstrip(")")) if float32 else x


def jsonable(a) -> Any:
    """Numbers and nested lists; non-finite numbers as the strings "nan", "inf", "-inf"."""
    arr = np.asarray(a)
    f32 = arr.dtype == np.float32
    if arr.dtype.kind == "b":
        return arr.tolist()
    if arr.ndim == 0:
        return _number(arr, f32)

    def conv(v):
        return [conv(x) for x in v] if isinstance(v, list) else _number(v, f32)

    return conv(arr.astype(np.float64).tolist())


def dumps(obj: dict) -> str:
    """Strict JSON (no NaN tokens), one line, keys in insertion order."""
    return json.dumps(obj, allow_nan=False, ensure_ascii=False)


def result_object(target, inputs: dict[str, np.ndarray], result, **extra) -> dict:
    obj = {
        "schema": SCHEMA,
        "target": target.label,
        "kind": target.kind,
        "inputs": {n: jsonable(a) for n, a in inputs.items()},
        "value": jsonable(result.value),
        "shape": list(result.value.shape),
        "grad": {n: jsonable(g) for n, g in result.grads.items()},
        "warnings": list(result.warnings),
        "notes": list(result.notes),
    }
    obj.update(extra)
    return obj


def derivatives_object(target, inputs: dict[str, np.ndarray], d, key: str,
                       extra: dict) -> dict:
    """``jacobian``/``hessian`` JSON: the eval keys, with the blocks under ``key``."""
    def conv(v):
        return {k: conv(x) for k, x in v.items()} if isinstance(v, dict) else jsonable(v)

    return {
        "schema": SCHEMA,
        "target": target.label,
        "kind": target.kind,
        "inputs": {n: jsonable(a) for n, a in inputs.items()},
        "value": jsonable(d.value),
        "shape": list(d.value.shape),
        key: conv(d.blocks),
        **{k: conv(v) for k, v in extra.items()},
        "warnings": list(d.warnings),
    }


def failure_text(f) -> str:
    """An unmet ``--expect-*`` (an ``expect.Failure``): what, expected, got, worst
    difference."""
    if f.want.shape != f.got.shape:
        return f"{f.what}: expected shape {f.want.shape}, got {f.got.shape}"
    return (f"{f.what}: expected {text_value(f.want)}, got {text_value(f.got)} "
            f"(max |diff| {f.max_diff:.3g} > atol {f.atol:g} + rtol {f.rtol:g}*|expected|)")


def rounded(a: np.ndarray, precision: int | None) -> np.ndarray:
    """``a`` with each number cut to ``precision`` significant digits."""
    if precision is None:
        return a
    a = np.asarray(a, dtype=np.float64)
    out = np.array([float(f"{v:.{precision}g}") for v in a.ravel().tolist()])
    return out.reshape(a.shape)


def text_value(a: np.ndarray, precision: int | None = None) -> str:
    """VALUE syntax (what inputs accept), non-finite numbers as nan/inf."""
    a = np.asarray(a)
    if a.dtype == np.float32:
        a = np.vectorize(lambda v: _number(v, True) if math.isfinite(v) else v, otypes=[float])(a) if a.size else a.astype(np.float64)
    return format_value(rounded(a, precision))


def plain_lines(result, precision: int | None) -> list[str]:
    lines = [f"value {text_value(result.value, precision)}"]
    lines += [f"grad.{n} {text_value(g, precision)}" for n, g in result.grads.items()]
    return lines


def _pretty(a: np.ndarray, precision: int | None) -> str:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return str(a)
    if a.ndim == 0:
        return text_value(a, precision)

    def number(v: float) -> str:
        return text_value(np.float64(v), precision)

    return np.array2string(a.astype(np.float64), formatter={"float_kind": number},
                           max_line_width=72, threshold=200)


def make_console(file=None):
    """A rich Console for stdout's terminal (writing to ``file`` if given): colours
    and styles only on a terminal, and no escape codes at all with NO_COLOR
    (rich's own no_color still emits bold)."""
    from rich.console import Console

    probe = Console()
    plain = probe.no_color or not probe.is_terminal
    return Console(file=file, force_terminal=probe.is_terminal and not plain,
                   color_system=None if plain else probe.color_system,
                   width=probe.width if probe.is_terminal else 100)


def table(rows: list[tuple[str, np.ndarray]], title: str, precision: int | None,
          footer: list[str] | None = None, header: list[str] | None = None) -> str:
    """A rich table, rendered to text (colours only on a terminal, never with NO_COLOR)."""
    import io

    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title), title_justify="left", show_header=True)
    t.add_column("quantity", style="bold")
    t.add_column("shape")
    t.add_column("value", overflow="fold")
    for name, a in rows:
        shape = "scalar" if np.ndim(a) == 0 else "x".join(map(str, np.shape(a)))
        t.add_row(Text(name), Text(shape), Text(_pretty(a, precision)))
    buf = io.StringIO()
    console = make_console(buf)
    for line in header or ():
        console.print(Text(line))
    console.print(t)
    for line in () if header else footer or ():
        console.print(Text(line))
    return buf.getvalue()
