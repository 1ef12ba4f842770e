"""``gradcli eval --points FILE``: one result per row, streamed in order."""

from __future__ import annotations

import os
import sys

import click

from ..errors import UsageError
from .options import collect_inputs, out_format, read_inputs


def eval_points(ctx: click.Context, target: str, opts: dict) -> int:
    """The rows of FILE through ``points.stream``, printed by ``render.emit``; a
    bad row gets an error record."""
    from .. import points, render
    from ..compute import DEFAULT_MAX_ELEMENTS

    if opts["expect_value"] is not None or opts["expect_grad"]:
        raise UsageError("--expect-value/--expect-grad check one point, not --points")
    if opts["grad_output"] is not None:
        raise UsageError("--grad-output is for one point; with --points each row's "
                         "value must be a number")
    opts["max_elements"] = opts["max_elements"] or DEFAULT_MAX_ELEMENTS
    fixed = read_inputs(collect_inputs(ctx, opts["var"]), opts)
    path = opts["points"]
    if path == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("--points -: standard input is closed")
        raw = getattr(sys.stdin, "buffer", sys.stdin)  # (a test's StringIO: text)
    else:
        try:
            raw = open(path, "rb")
        except OSError as exc:
            raise UsageError(f"--points {path}: cannot read: {exc.strerror}") from exc
    fmt = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(
        os.path.splitext(path)[1].lower())
    lines = points.lines_of(raw, opts.get("max_line_bytes") or points.MAX_LINE_BYTES)
    try:
        batch = points.stream(target, fixed, lines, source=path, fmt=fmt,
                              dtype=opts["dtype"], max_elements=opts["max_elements"],
                              wrt=opts["wrt"], no_grad=opts["no_grad"],
                              strict=opts["strict"])
        batch.chunks = _progress(batch.chunks)
        return render.emit(batch, out_format(opts), opts["precision"])
    finally:
        if path != "-":
            raw.close()


def _progress(chunks):
    """The chunks, and a progress line on stderr as each is written (the writer
    asks for the next): rows done and their rate, never a total, since the
    input is read once, as it comes (a pipe has no length). Only on a terminal,
    and only once the batch has run for a second (a short one never flickers)."""
    if not sys.stderr.isatty():
        yield from chunks
        return
    import time

    start, done = time.monotonic(), 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        elapsed = time.monotonic() - start
        if elapsed >= 1.0:
            sys.stderr.write(f"\r{done:,} rows ({done / elapsed:,.0f} rows/s)")
            sys.stderr.flush()
    if time.monotonic() - start >= 1.0:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
