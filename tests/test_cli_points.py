"""``eval --points`` as scripts use it (issue 12, items 1, 2, 23 and the closed
stdin of item 14): a pipe read once and whole, even with a progress line on a
terminal; lines bounded; exact line numbers for bad bytes, from a file and from
stdin alike; messages that name the row's problem."""

from __future__ import annotations

import os
import zlib
import pty
import subprocess
import sys

import numpy as np
import pytest

from test_cli import run

ROWS = 20_000


def _csv(rows: int = ROWS) -> bytes:
    return ("x,y\n" + "".join(f"{i},{i + 1}\n" for i in range(rows))).encode()


def test_a_pipe_is_read_whole_with_the_progress_line_on_a_terminal():
    # The progress bar used to open the path again to count lines: on a pipe
    # that drained it, and 2,048 of 20,001 lines came out, with exit 0.
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gradcli", "eval", "x*y", "--points", "/dev/stdin"],
            input=_csv(), stdout=subprocess.PIPE, stderr=secondary, timeout=120)
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == 0
    lines = done.stdout.decode().splitlines()
    assert len(lines) == ROWS + 1
    # row i: x*y = i(i+1), gradient (y, x)
    assert lines[-1] == f"{ROWS},{(ROWS - 1) * ROWS},{ROWS},{ROWS - 1},"


def test_a_line_without_end_is_refused_not_read_into_memory(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gradcli", "eval", "x*y", "--points", "/dev/zero",
         "--max-line-bytes", "65536"],
        capture_output=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[0] == (
        "error: --points: line 1 is longer than 65,536 bytes")
    assert done.stdout == b""


def test_the_line_limit_counts_bytes_and_can_be_raised(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("x\n" + "1" * 100 + "\n")
    r = run("eval", "x", "--points", str(f), "--no-grad", "--max-line-bytes", "50")
    assert r.code == 2 and "line 2 is longer than 50 bytes" in r.err
    r = run("eval", "x", "--points", str(f), "--no-grad", "--max-line-bytes", "200")
    assert r.code == 0 and r.out.splitlines()[1] == "1,1.111111111111111e+99,"  # 100 ones


def test_a_bad_byte_deep_in_the_input_names_its_line_from_file_and_stdin(tmp_path):
    data = bytearray(_csv(5000))
    at = data.index(b"\n4000,") + 1  # the start of line 4002 (header, rows 0..)
    data[at] = 0xFF
    f = tmp_path / "bad.csv"
    f.write_bytes(bytes(data))
    from_file = subprocess.run([sys.executable, "-m", "gradcli", "eval", "x*y", "--points",
                                str(f)], capture_output=True, timeout=60)
    from_stdin = subprocess.run([sys.executable, "-m", "gradcli", "eval", "x*y", "--points",
                                 "-"], input=bytes(data), capture_output=True, timeout=60)
    for done in (from_file, from_stdin):
        assert done.returncode == 2
        assert done.stderr.decode().splitlines()[-1] == (
            "error: --points: line 4002 is not UTF-8 text (byte 1: invalid start byte)")


def test_an_excel_byte_order_mark_is_accepted(tmp_path):
    f = tmp_path / "excel.csv"
    f.write_bytes(b"\xef\xbb\xbfx,y\r\n2,3\r\n")
    r = run("eval", "x*y", "--points", str(f), "--format", "plain")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["row,value,grad.x,grad.y,error", "1,6,3,2,"]


def test_ndjson_rows_say_what_is_wrong(tmp_path):
    f = tmp_path / "p.ndjson"
    f.write_text('{"x": 1, "y": 2}\n{"x": 1}\n{"x": 1, "y": 2, "z": 3}\n{bad\n')
    r = run("eval", "x*y", "--points", str(f))
    assert r.code == 3
    errors = [line.split(",", 4)[4] for line in r.out.splitlines()[2:]]
    assert errors == [
        "row 2: missing input 'y'",
        "\"row 3: unknown input 'z' (the inputs are x, y)\"",
        "row 4: not valid JSON (Expecting property name enclosed in double quotes at "
        "column 2); each line must be one JSON object of input values",
    ]


def test_no_grad_writes_no_gradient_columns(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("x,y\n2,3\n")
    r = run("eval", "x*y", "--points", str(f), "--no-grad")
    assert r.code == 0
    assert r.out.splitlines() == ["row,value,error", "1,6,"]


def test_a_header_only_file_is_an_empty_one(tmp_path):
    header, empty = tmp_path / "h.csv", tmp_path / "e.csv"
    header.write_text("x,y\n")
    empty.write_text("")
    for f in (header, empty):
        r = run("eval", "x*y", "--points", str(f))
        assert (r.code, r.out) == (2, "")
        assert r.err.splitlines() == [f"error: --points {f}: no rows"]


def test_a_closed_stdin_is_a_usage_error():
    done = subprocess.run([sys.executable, "-m", "gradcli", "eval", "x*y", "--points", "-"],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                          preexec_fn=lambda: os.close(0))
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().splitlines() == ["error: --points -: standard input is closed"]


def _elementwise_ops():
    from gradcli import OPS

    return sorted(n for n, o in OPS.items()
                  if o.elementwise and o.expr and o.differentiable and n != "where")


@pytest.mark.parametrize("name", _elementwise_ops())
def test_rows_in_a_chunk_give_a_single_evaluations_numbers_to_the_last_bit(tmp_path, name):
    # issue 10: --points evaluates such rows as one stacked array; the README
    # promises the numbers of one eval per row, bit for bit, for every op.
    from gradcli import OPS
    from gradcli.compute import evaluate, evaluate_rows, prepare

    op = OPS[name]
    names = "xyz"[: op.nin]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    rows = [{n: np.array(rng.uniform(*op.domain[i])) for i, n in enumerate(names)}
            for _ in range(64)]
    rows.append({n: np.array(2.0 if i else 0.5) for i, n in enumerate(names)})  # x**2.0
    tgt = prepare(f"{name}({', '.join(names)})", list(names))
    chunk = evaluate_rows(tgt, rows, wrt=list(names), no_grad=False,
                          max_elements=10_000_000)
    for row, got in zip(rows, chunk):
        one = evaluate(tgt, row, wrt=list(names), max_elements=10_000_000)
        assert got.value.tobytes() == one.value.tobytes(), (name, row)
        for n in names:
            assert got.grads[n].tobytes() == one.grads[n].tobytes(), (name, n, row)
