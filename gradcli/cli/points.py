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
    try:
        lines = sys.stdin if path == "-" else open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"--points {path}: cannot read: {exc.strerror}") from exc
    fmt = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(
        os.path.splitext(path)[1].lower())
    batch = points.stream(target, fixed, lines, source=path, fmt=fmt, dtype=opts["dtype"],
                          max_elements=opts["max_elements"], wrt=opts["wrt"],
                          no_grad=opts["no_grad"], strict=opts["strict"])
    batch.chunks = _progress(batch.chunks, path)
    return render.emit(batch, out_format(opts), opts["precision"])


def _progress(chunks, path: str):
    """The chunks, and a one-line progress bar on stderr as each is written (the
    writer asks for the next): only on a terminal, and only once the batch has
    run for a second (a short one never flickers)."""
    if not sys.stderr.isatty():
        yield from chunks
        return
    import time

    start, done, total = time.monotonic(), 0, None
    if path != "-":
        with open(path, "rb") as fh:
            total = max(sum(1 for _ in fh) - 1, 1)
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if time.monotonic() - start >= 1.0:
            bar = f"[{'#' * int(min(done / total, 1.0) * 30):<30}] {done}/{total}" if total \
                else f"{done}"
            sys.stderr.write(f"\r{bar} rows")
            sys.stderr.flush()
    if time.monotonic() - start >= 1.0:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
