"""Answers -> text: JSON for scripts, plain lines for shells, a rich table for people.

Every command writes through ``emit``: a ``View`` of its answer (``result_view``,
``jacobian_view``, ``hessian_view``, or a listing such as ``gradcli ops``), or a
``points.Batch`` streamed row by row. rich is imported only for a table (start-up
time matters for scripts).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import CheckFailed, EvaluationError
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
    """Numbers and nested lists (dicts of them: dicts); non-finite numbers as the
    strings "nan", "inf", "-inf"."""
    if isinstance(a, dict):
        return {k: jsonable(v) for k, v in a.items()}
    arr = np.asarray(a)
    f32 = arr.dtype == np.float32
    if arr.dtype.kind in "biu":  # booleans, and integer --const data
        return arr.tolist()
    if arr.ndim == 0:
        return _number(arr, f32)

    def conv(v):
        return [conv(x) for x in v] if isinstance(v, list) else _number(v, f32)

    return conv(arr.astype(np.float64).tolist())


def dumps(obj: dict) -> str:
    """Strict JSON (no NaN tokens), one line, keys in insertion order, valid
    UTF-8: a byte that was not UTF-8 (a file name's, kept by Python as a lone
    surrogate) becomes U+FFFD."""
    text = json.dumps(obj, allow_nan=False, ensure_ascii=False)
    if text.isascii():
        return text
    try:  # the bytes the name had, then U+FFFD where they are not UTF-8
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # another lone surrogate
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


@dataclass
class View:
    """One answer, before it is text.

    ``rows`` are quantities ``(plain key, table label, array)``: plain output is
    ``key VALUE`` per row, then ``facts``; the table has ``footer`` under it. A
    listing has ``columns`` and ``cells`` of text instead: a tab-separated line
    per row in plain output."""

    title: str
    obj: dict  # the JSON object
    rows: list[tuple[str, str, Any]] = field(default_factory=list)
    facts: list[tuple[str, Any]] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    cells: list[tuple[str, ...]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def result_view(target, inputs: dict[str, np.ndarray], result) -> View:
    """``gradcli eval``: the value and a gradient per input."""
    rows = [(f"grad.{n}", f"grad {n}", g) for n, g in result.grads.items()]
    view = _view(target, inputs, result, "grad", result.grads, rows)
    tangent = getattr(result, "tangent", None)
    if tangent is not None:  # --tangent: J v, in forward mode
        view.rows.append(("tangent", "tangent (J v)", tangent))
        view.obj.update(tangent=jsonable(tangent),
                        mode=getattr(result, "tangent_mode", "forward"))
    return view


def jacobian_view(target, inputs: dict[str, np.ndarray], d) -> View:
    """``gradcli jacobian``: a block per input."""
    rows = [(f"jacobian.{n}", f"jacobian {n}", b) for n, b in d.blocks.items()]
    view = _view(target, inputs, d, "jacobian", d.blocks, rows)
    if d.mode is not None:
        view.obj["mode"] = d.mode
        view.footer.append(f"computed in {d.mode} mode")
    return view


def hessian_view(target, inputs: dict[str, np.ndarray], d, summary,
                 precision: int | None) -> View:
    """``gradcli hessian``: a block per pair of inputs, symmetry and eigenvalues."""
    rows = [(f"hessian.{a}.{b}", f"hessian {a},{b}", block)
            for a, row in d.blocks.items() for b, block in row.items()]
    facts = [("symmetric", summary.symmetric)]
    footer = [f"symmetric to rounding: {'yes' if summary.symmetric else 'no'} "
              f"(max |H - H.T| / max |H| = {summary.asymmetry:.3g})"]
    if summary.eigenvalues is not None:
        facts.append(("eigenvalues", summary.eigenvalues))
        footer.append(f"eigenvalues: {text_value(summary.eigenvalues, precision)} "
                      f"({summary.curvature})")
    return _view(target, inputs, d, "hessian", d.blocks, rows, facts, footer)


def _view(target, inputs, answer, key, blocks, rows, facts=(), footer=()) -> View:
    """The JSON keys every answer shares, with ``blocks`` under ``key``, then the
    facts, the warnings and (a Result's) notes."""
    notes = getattr(answer, "notes", None)
    obj = {"schema": SCHEMA, "target": target.label, "kind": target.kind,
           "inputs": jsonable(inputs), "value": jsonable(answer.value),
           "shape": list(answer.value.shape), key: jsonable(blocks),
           **{k: jsonable(v) for k, v in facts}, "warnings": list(answer.warnings),
           **({} if notes is None else {"notes": list(notes)})}
    return View(target.label, obj, [("value", "value", answer.value), *rows], list(facts),
                list(footer), warnings=answer.warnings, notes=notes or [])


def say(kind: str, text: str) -> None:
    """``kind: text`` on stderr, on one line."""
    import click

    click.echo(f"{kind}: {' '.join(str(text).split())}", err=True)


def emit(answer, fmt: str, precision: int | None = None, *, check=None,
         failures=(), verdict_first: bool = False) -> int:
    """Write ``answer`` (a View, or a points.Batch) in ``fmt`` (json, plain or
    table) on stdout, its warnings and failures on stderr; return the exit code.

    ``check`` is a check report: under the JSON's ``"check"``, its lines after
    the answer (before it with ``verdict_first``). ``failures`` are unmet
    ``expect.Failure``s. Exit 1 when the check or an expectation fails.
    """
    import click

    if getattr(answer, "verdicts", None) is not None:
        return _emit_checks(answer, fmt)
    if not isinstance(answer, View):
        return _emit_rows(answer, fmt, precision)
    lines = check.lines() if check else []
    if fmt == "json":
        text = dumps({**answer.obj, **({"check": check.to_json()} if check else {})}) + "\n"
    elif fmt == "plain":
        body = ["\t".join(c) for c in answer.cells]
        body += [f"{k} {text_value(a, precision)}" for k, _, a in answer.rows]
        body += [f"{k} {str(v).lower() if isinstance(v, bool) else text_value(v, precision)}"
                 for k, v in answer.facts]
        checks = [f"check {line}" for line in lines]
        text = "\n".join(checks + body if verdict_first else body + checks) + "\n"
    else:
        text = _table(answer, precision, header=lines if verdict_first else [],
                      footer=answer.footer + ([] if verdict_first else lines))
    # click strips escape codes from a pipe; a listing (gradcli ops) has always
    # kept them under FORCE_COLOR.
    click.echo(text, nl=False, color=True if answer.cells else None)
    for w in answer.warnings:
        say("warning", w)
    for n in answer.notes:
        say("note", f"gradient taken at a kink: {n}")
    for f in failures:
        say("error", failure_text(f))
    if check is not None and not check.passed:
        say("error", f"the check failed: {check.verdict()}")
    failed = failures or (check is not None and not check.passed)
    return CheckFailed.exit_code if failed else 0


SHOW_WHOLE = 10  # components of an unmet expectation shown whole; beyond: a summary


def failure_text(f) -> str:
    """An unmet ``--expect-*``: what, expected, got, worst difference; for a
    large array how many components differ and the worst one, not both arrays."""
    if f.want.shape != f.got.shape:
        return f"{f.what}: expected shape {f.want.shape}, got {f.got.shape}"
    tolerance = f"atol {f.atol:g} + rtol {f.rtol:g}*|expected|"
    if f.want.size <= SHOW_WHOLE:
        return (f"{f.what}: expected {text_value(f.want)}, got {text_value(f.got)} "
                f"(max |diff| {f.max_diff:.3g} > {tolerance})")
    at = ", ".join(map(str, f.worst))
    return (f"{f.what}: {f.count:,} of {f.want.size:,} components differ; the worst, "
            f"[{at}]: expected {text_value(f.want[f.worst])}, got "
            f"{text_value(f.got[f.worst])} (|diff| {abs(f.got[f.worst] - f.want[f.worst]):.3g}"
            f" > {tolerance})")


def _emit_rows(batch, fmt: str, precision: int | None) -> int:
    """``--points``: a record per row as each chunk is done; NDJSON or CSV."""
    import csv

    out = sys.stdout
    writer = None if fmt == "json" else csv.writer(out, lineterminator="\n")
    header = writer is not None  # still to write: with the first row, not before
    # (a usage error reading the first chunk, a line not UTF-8, leaves stdout empty)
    failed = 0
    for chunk in batch.chunks:
        for r in chunk:
            if header:
                writer.writerow(["row", "value"] + [f"grad.{n}" for n in batch.wrt]
                                + ["error"])
                header = False
            failed += r.error is not None
            if not writer:
                obj = ({"error": r.error} if r.error is not None
                       else result_view(batch.target, r.inputs, r.result).obj)
                out.write(dumps({"schema": SCHEMA, "row": r.number, **obj}) + "\n")
            elif r.error is not None:
                writer.writerow([r.number, ""] + [""] * len(batch.wrt) + [r.error])
            else:
                res = r.result
                writer.writerow([r.number, text_value(res.value, precision)]
                                + [text_value(res.grads[n], precision) if n in res.grads
                                   else "" for n in batch.wrt] + [""])
                # CSV has no room for them: the row's warnings and notes go to stderr.
                for w in res.warnings:
                    say("warning", f"row {r.number}: {w}")
                for n in res.notes:
                    say("note", f"row {r.number}: gradient taken at a kink: {n}")
        out.flush()
    if failed:
        say("error", f"{failed} row(s) failed; their records say why")
        return EvaluationError.exit_code
    return 0


def _emit_checks(many, fmt: str) -> int:
    """Checks at many points (``usercheck.ManyChecks``): JSON as one NDJSON record
    per point as it is checked, then a summary record; plain and table, the
    summary, verdict first: how many passed, the failing points (the first
    ``SHOW_FAILED`` unless ``show_all``), the worst component, the seed."""
    from .usercheck import SHOW_FAILED

    out = sys.stdout
    counts = {"passed": 0, "failed": 0, "errors": 0}
    shown: list = []
    worst = None  # (ratio, point, text)
    for v in many.verdicts:
        key = "passed" if v.passed else "errors" if v.status == "error" else "failed"
        counts[key] += 1
        if v.worst is not None and (worst is None or v.worst[0] > worst[0]):
            worst = (v.worst[0], v.number, v.worst[1])
        if not v.passed and (many.show_all or len(shown) < SHOW_FAILED):
            shown.append(v)
        if fmt == "json":
            out.write(dumps({"schema": SCHEMA, "point": v.number,
                             "inputs": None if v.inputs is None else jsonable(v.inputs),
                             "passed": v.passed, "status": v.status, "verdict": v.verdict,
                             "check": v.check}) + "\n")
            out.flush()
    total = sum(counts.values())
    bad = counts["failed"] + counts["errors"]
    head = ("PASS" if not bad else "FAIL" if counts["failed"] else "ERROR") + (
        f": {counts['passed']} of {total} points passed")
    if counts["errors"]:
        head += f"; {counts['errors']} could not be checked"
    seed = f" (seed {many.seed})" if many.seed is not None else ""
    lines = [f"{head}, {many.what}{seed}"]
    for v in shown:
        lines.append(f"point {v.number}: {v.verdict}")
        if v.inputs is not None:
            import shlex

            # pasteable into a shell (quoted), the drawn inputs only (the others
            # are as the command gave them: a data matrix stays off the line)
            lines.append("  at " + " ".join(
                f"--{n} {shlex.quote(format_value(np.asarray(a)))}"
                for n, a in v.inputs.items() if many.drawn is None or n in many.drawn))
    if bad > len(shown):
        lines.append(f"... and {bad - len(shown)} more failing point(s) (--all lists them)")
    if worst is not None:
        lines.append(f"worst: point {worst[1]}: {worst[2]}")
    replay = None
    if bad and many.replay:
        first = next(v.number for v in shown)
        replay = many.replay.format(k=first)
        lines.append(f"replay point {first}: the same command with {replay}")
    if fmt == "json":
        summary = {"points": total, **counts, "seed": many.seed, "source": many.what,
                   "worst": None if worst is None else
                   {"point": worst[1], "ratio": _number(worst[0], False), "text": worst[2]},
                   "failing": [v.number for v in shown], "replay": replay}
        out.write(dumps({"schema": SCHEMA, "summary": summary}) + "\n")
    else:
        out.write("\n".join(lines) + "\n")
    out.flush()
    if bad:
        say("error", lines[0])
    if counts["failed"]:
        return CheckFailed.exit_code
    return EvaluationError.exit_code if counts["errors"] else 0


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


def _table(view: View, precision: int | None, header: list[str], footer: list[str]) -> str:
    """A rich table, rendered to text (colours only on a terminal, never with NO_COLOR)."""
    import io

    from rich.table import Table
    from rich.text import Text

    # A listing's title keeps rich's own style (italic); an answer's has none.
    title = Text(view.title, style="" if view.rows else "table.title")
    t = Table(title=title, title_justify="left", show_header=True)
    if view.rows:
        t.add_column("quantity", style="bold")
        t.add_column("shape")
        t.add_column("value", overflow="fold")
    for name in view.columns:
        t.add_column(name)
    for _, name, a in view.rows:
        shape = "scalar" if np.ndim(a) == 0 else "x".join(map(str, np.shape(a)))
        t.add_row(Text(name), Text(shape), Text(_pretty(a, precision)))
    for cells in view.cells:
        t.add_row(*map(Text, cells))
    buf = io.StringIO()
    console = make_console(buf)
    for line in header:
        console.print(Text(line))
    console.print(t)
    for line in footer:
        console.print(Text(line))
    return buf.getvalue()


def add_uncertainty(view: View, u, precision: int | None) -> View:
    """``eval --sigma``: the propagated uncertainty (``uncertainty.Uncertainty``)
    under the JSON's ``"uncertainty"``, as ``uncertainty.*`` lines, table rows
    and a footer line giving the value with its error bar and the shares."""
    shares = u.shares()
    obj = {"std": jsonable(u.std), "variance": jsonable(u.variance),
           "contributions": {k: {"variance": jsonable(v), "share": jsonable(shares[k])}
                             for k, v in u.contributions.items()}}
    if u.shape:
        obj["covariance"] = jsonable(u.covariance)
    obj["second_order"] = None if u.second_order_std is None else {
        "std": jsonable(u.second_order_std), "mean_shift": jsonable(u.mean_shift)}
    obj["notes"] = list(u.notes)
    view.obj["uncertainty"] = obj
    # The Jacobian's own warnings repeat the value's ("value is inf"): once each,
    # and in the JSON's "warnings" too.
    new = [w for w in dict.fromkeys(u.warnings) if w not in view.warnings]
    view.warnings = [*view.warnings, *new]
    if isinstance(view.obj.get("warnings"), list):
        view.obj["warnings"] = [*view.obj["warnings"], *new]
    view.rows.append(("uncertainty.std", "std. uncertainty", u.std))
    if u.shape:
        view.rows.append(("uncertainty.covariance", "covariance", u.covariance))
    view.rows += [(f"uncertainty.share.{k}", f"variance share {k}", s)
                  for k, s in shares.items()]
    total = u.total_shares()
    parts = ", ".join(f"{k} {100 * s:.1f}%" for k, s in total.items())
    if not u.shape:
        value, std = float(view.rows[0][2]), float(u.std)
        if precision is None and 0 < std < math.inf and math.isfinite(value):
            # Two significant digits of the uncertainty, the value to the same place.
            places = max(0, 1 - math.floor(math.log10(std)))
            shown = f"{value:.{places}f} +- {std:.{places}f}"
        else:
            shown = f"{text_value(np.float64(value), precision)} +- " \
                    f"{text_value(np.float64(std), precision)}"
        view.footer.append(f"value = {shown} (first-order standard uncertainty)")
    view.footer.append(f"shares of the variance: {parts}")
    return view
