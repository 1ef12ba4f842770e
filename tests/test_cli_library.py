"""What the command line only prints, used as a library: the ``--points`` row
stream (points.stream), the ``--expect-*`` comparison (expect.compare) and the
one output path (render.emit). Nothing here goes through click."""

from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest

from gradcli import expect, points, render
from gradcli.compute import evaluate, prepare
from gradcli.errors import UsageError


def _stream(lines, fixed=None, **kw):
    opts = dict(source="p.csv", fmt=None, dtype="float64", max_elements=10**6, wrt=[],
                no_grad=False, strict=False)
    return points.stream("x*y*k", fixed or {"k": np.array(2.0)}, lines, **{**opts, **kw})


def test_points_stream_merges_fixed_inputs_and_marks_bad_rows():
    batch = _stream(["x,y\n", "1,2\n", "oops,1\n", "3,4\n"])
    assert batch.wrt == ["x", "y", "k"]  # the expression's order (README: Output)
    rows = [r for chunk in batch.chunks for r in chunk]
    assert [r.number for r in rows] == [1, 2, 3]
    assert list(rows[0].inputs) == ["x", "y", "k"]  # merged, in the target's order
    assert float(rows[0].result.value) == 4.0
    assert float(rows[2].result.grads["x"]) == 8.0  # d(x*y*k)/dx = y*k
    assert rows[1].result is None and rows[1].error.startswith("row 2: ")


def test_points_stream_ndjson_row_with_other_names_is_an_error_record():
    batch = _stream(['{"x": 1, "y": 2}\n', '{"x": 1, "z": 2}\n'])
    first, second = next(batch.chunks)
    assert first.error is None and second.result is None
    assert second.error == ("row 2: missing input 'y'; unknown input 'z' "
                            "(the inputs are x, y, k)")  # the target's order


def test_points_stream_refuses_a_name_given_twice_before_any_row():
    with pytest.raises(UsageError, match="given by --points and by --x"):
        _stream(["x,y\n", "1,2\n"], fixed={"x": np.array(1.0)})


def test_points_stream_is_chunked():
    lines = ["x,y\n"] + [f"{i},1\n" for i in range(points.CHUNK + 5)]
    sizes = [len(chunk) for chunk in _stream(lines).chunks]
    assert sizes == [points.CHUNK, 5]


def _result():
    """dot(x,x) at x = 1,2: value 5, gradient 2,4."""
    tgt = prepare("dot(x,x)", ["x"])
    return evaluate(tgt, {"x": np.array([1.0, 2.0])}, wrt=["x"], max_elements=100)


def test_expect_compare_is_structured():
    r = _result()
    assert expect.compare([("value", np.array(5.0)), ("grad.x", np.array([2.0, 4.0]))],
                          r, rtol=1e-8) == []
    (f,) = expect.compare([("grad.x", np.array([2.0, 5.0]))], r, rtol=1e-8)
    assert (f.what, f.max_diff, f.atol) == ("grad.x", 1.0, 0.0)
    (f,) = expect.compare([("value", np.array([5.0, 5.0]))], r, rtol=1e-8)
    assert np.isnan(f.max_diff) and f.want.shape != f.got.shape
    # every expectation counts, a repeated one too
    assert len(expect.compare([("value", np.array(6.0))] * 2, r, rtol=1e-8)) == 2
    assert expect.compare([("value", np.array(5.5))], r, rtol=0.0, atol=0.5) == []


def _emit(*args, **kw):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = render.emit(*args, **kw)
    return code, out.getvalue(), err.getvalue()


def test_emit_writes_every_format_of_one_view():
    tgt = prepare("dot(x,x)", ["x"])
    r = _result()
    view = render.result_view(tgt, {"x": np.array([1.0, 2.0])}, r)
    assert _emit(view, "plain") == (0, "value 5\ngrad.x 2,4\n", "")
    assert json.loads(_emit(view, "json")[1])["grad"] == {"x": [2.0, 4.0]}
    table = _emit(view, "table")[1]
    assert "grad x" in table and "dot(x,x)" in table
    failures = expect.compare([("value", np.array(6.0))], r, rtol=1e-8)
    code, out, err = _emit(view, "plain", failures=failures)
    assert code == 1 and out == "value 5\ngrad.x 2,4\n"
    assert err.startswith("error: value: expected 6, got 5 (max |diff| 1 > atol 0")


def test_an_unmet_expectation_on_a_large_array_is_summarised():
    # issue 12, item 24: not two arrays of a million numbers on one line.
    from test_cli import run

    r = run("eval", "x*x", "--x", "arange(100000)", "--grad-output", "ones",
            "--expect-grad", "x=arange(100000)", "--format", "plain")
    assert r.code == 1
    # d(x*x)/dx = 2x against x: every component but x = 0 differs; the worst is
    # the last, 2 * 99999 against 99999.
    assert r.err.splitlines() == [
        "error: grad.x: 99,999 of 100,000 components differ; the worst, [99999]: "
        "expected 99999, got 199998 (|diff| 1e+05 > atol 0 + rtol 1e-08*|expected|)"]


def test_the_worst_unmet_component_of_a_matrix_is_named_by_its_index():
    from gradcli import expect

    want = np.zeros((4, 5))
    got = want.copy()
    got[1, 3], got[2, 0] = 0.5, np.nan  # nan meets nothing: it is the worst
    r = SimpleNamespace(value=got, grads={})
    (f,) = expect.compare([("value", want)], r, rtol=1e-8)
    assert (f.count, f.worst) == (2, (2, 0))
