"""``check FILE:f --grad FILE:df`` at many points in batches (issue 13): where f
and df are vectorised over a leading axis of the inputs, chunks of rows are
checked with one call each; otherwise, and for every row a batch does not pass,
one point at a time. Either way the output is the same: each test runs the same
command on tests/data/usercheck/lr_vec.py (vectorised, logging its calls) and on
lr_one.py (the same functions for one point, which cannot batch), and compares
the whole output; the call log says which path ran. The gradients are derived
by hand; the expected failures are read off the bug's branch, by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_cli import run

DATA = Path(__file__).resolve().parent / "data" / "usercheck"
VEC, ONE = str(DATA / "lr_vec.py"), str(DATA / "lr_one.py")
X = np.array([[1.0, 0.5, -1.2, 0.3], [1.0, -0.7, 0.4, 1.1], [1.0, 1.3, 0.2, -0.6],
              [1.0, -0.1, -0.9, 0.8], [1.0, 0.9, 1.4, -0.2], [1.0, -1.5, 0.6, 0.5],
              [1.0, 0.2, -0.3, -1.3], [1.0, 1.1, 0.7, 0.9], [1.0, -0.8, -1.1, 0.1],
              [1.0, 0.6, 0.9, -1.0], [1.0, -1.2, 0.1, 1.2], [1.0, 0.4, -0.5, 0.6]])
Y = np.array([1.0, -1, 1, 1, -1, 1, -1, -1, 1, -1, 1, -1])


def truth(w):
    """-X^T (y s) / n + 0.1 [0, w1, w2, w3], s = 1 / (1 + exp(y X w)), by hand."""
    s = 1 / (1 + np.exp(Y * (X @ w)))
    return -X.T @ (Y * s) / len(Y) + 0.1 * np.concatenate([[0.0], w[1:]])


@pytest.fixture
def calls(tmp_path, monkeypatch):
    """The (function, ndim of w) of each call lr_vec.py's functions get."""
    log = tmp_path / "calls.txt"
    monkeypatch.setenv("GRADCLI_TEST_CALLS", str(log))

    def read():
        if not log.exists():
            return []
        out = [(n, int(d)) for n, d in (ln.split() for ln in log.read_text().splitlines())]
        log.unlink()
        return out

    return read


def both(f, df, *argv):
    """The same command on lr_vec.py and lr_one.py: (exit code, stdout, stderr)
    of each, lr_one's with its file name written as lr_vec's."""
    out = []
    for path in (VEC, ONE):
        r = run("check", f"{path}:{f}", "--grad", f"{path}:{df}", *argv)
        out.append((r.code, r.out.replace(ONE, VEC), r.err.replace(ONE, VEC)))
    return out


RANDOM = ("--shape", "w=4", "--random", "40", "--seed", "3")


def batched(log, name):
    return sum(1 for n, d in log if n == name and d == 2)


def alone(log, name):
    return sum(1 for n, d in log if n == name and d == 1)


@pytest.mark.parametrize("fmt", ["--json", "--format=plain"])
def test_a_vectorised_gradient_batches_and_gives_the_same_output(calls, fmt):
    vec, one = both("loss", "grad", *RANDOM, fmt)
    log = calls()
    assert vec == one
    assert vec[0] == 0
    if fmt == "--json":
        assert json.loads(vec[1].splitlines()[-1])["summary"]["passed"] == 40
    else:
        assert vec[1].startswith("PASS: 40 of 40 points passed")
    # a probe of 8 rows, then the other 32 in one chunk: two calls of df, and
    # three rows of the probe and three of the chunk compared alone
    assert batched(log, "grad") == 2 and alone(log, "grad") == 6


def test_a_wrong_gradient_names_the_component_at_each_point_where_it_is_wrong(calls):
    vec, one = both("loss", "grad_some", *RANDOM, "--json")
    log = calls()
    assert vec == one and vec[0] == 1
    assert batched(log, "grad_some") == 2
    records = [json.loads(line) for line in vec[1].splitlines()[:-1]]
    wrong = [r for r in records if r["inputs"]["w"][0] > 0.5]  # the bug's branch
    assert 0 < len(wrong) < 40
    for r in records:
        w = np.array(r["inputs"]["w"])
        if w[0] <= 0.5:
            assert r["passed"], r
            continue
        assert not r["passed"] and r["status"] == "fail"
        (row,) = r["check"]["table"]
        assert row["where"] == "w[1]" and row["odd_one_out"] == "yours"
        assert row["user"] == pytest.approx(truth(w)[1] + 1e-3, abs=1e-12)
        assert row["engine"] == pytest.approx(truth(w)[1], abs=1e-12)
    # each failing row was checked again alone before it was reported
    assert alone(log, "grad_some") >= len(wrong)


def test_a_row_wrong_only_in_a_batch_is_judged_alone(calls):
    # grad_batch_bug is right for every point, wrong in row 1 of any stack (a
    # row the probe does not compare alone): that row is checked again alone.
    vec, one = both("loss", "grad_batch_bug", *RANDOM, "--json")
    log = calls()
    assert vec == one and vec[0] == 0
    assert batched(log, "grad_batch_bug") == 2
    assert alone(log, "grad_batch_bug") == 6 + 2


@pytest.mark.parametrize("f,df,argv,why", [
    ("loss", "grad_raises", (), "df refuses a stack"),
    ("loss", "grad_mixes", (), "df mixes the rows of a stack"),
    ("loss_mix", "grad_mix", (), "f mixes the rows of a stack"),
    ("loss", "grad_slow", ("--check-timeout", "0.5"), "df times out on a stack"),
])
def test_functions_that_do_not_batch_are_checked_one_point_at_a_time(calls, f, df, argv,
                                                                     why):
    vec, one = both(f, df, *RANDOM, *argv, "--json")
    log = calls()
    assert vec == one, why
    assert vec[0] == 0 and json.loads(vec[1].splitlines()[-1])["summary"]["passed"] == 40
    # the probe's one try (and up to 3 rows of it alone), then every point alone
    assert batched(log, df) <= 1 and 40 <= alone(log, df) <= 43, why


def test_a_function_for_one_point_is_checked_one_point_at_a_time():
    # lr_one.py's f cannot take a stack (X @ w with w of shape (8, 4)): no df
    # call with a stack, and the verdicts of test 1
    r = run("check", f"{ONE}:loss", "--grad", f"{ONE}:grad_some", *RANDOM, "--json")
    assert r.code == 1
    summary = json.loads(r.out.splitlines()[-1])["summary"]
    assert summary["points"] == 40 and 0 < summary["failed"] < 40


def test_points_file_rows_batch_too(calls, tmp_path):
    rng = np.random.default_rng(7)
    ws = rng.uniform(-1, 1, (30, 4))
    f = tmp_path / "p.csv"
    f.write_text("w[0],w[1],w[2],w[3]\n" + "".join(
        ",".join(repr(float(v)) for v in w) + "\n" for w in ws) + "1,2,x,4\n")
    vec, one = both("loss", "grad_some", "--points", str(f), "--json")
    log = calls()
    assert vec == one and vec[0] == 1
    assert batched(log, "grad_some") == 2
    records = [json.loads(line) for line in vec[1].splitlines()[:-1]]
    assert [r["passed"] for r in records[:30]] == [bool(w[0] <= 0.5) for w in ws]
    assert records[30]["status"] == "error" and records[30]["point"] == 31


def test_rows_that_see_each_other_are_found_by_a_weighted_gradient():
    # loss_mix's rows each add 0.01 mean_j sum(w_j): the gradient of the sum of
    # the rows is each row's own (grad_mix), but weighting row i by u_i gives
    # u_i grad + 0.01 mean(u), not u_i (grad + 0.01): the batch is refused there.
    from gradcli.compute import prepare
    from gradcli.usercheck import GradientBatches, load_derivative

    tgt = prepare(f"{VEC}:loss_mix", ["w"])
    d = load_derivative(f"{VEC}:grad_mix", "gradient", ["w"])
    batches = GradientBatches(tgt, d, ["w"])
    rows = [(k, {"w": np.random.default_rng(k).uniform(-1, 1, 4)}) for k in range(1, 9)]
    assert batches.check(rows) == {}
    assert batches.state == "off" and batches.why == "the rows of f are not independent"
    # the same rows with loss and grad batch, every row passing
    ok = GradientBatches(prepare(f"{VEC}:loss", ["w"]),
                         load_derivative(f"{VEC}:grad", "gradient", ["w"]), ["w"])
    done = ok.check(rows)
    assert ok.state == "on" and sorted(done) == list(range(1, 9))
    assert all(v.passed and v.status == "pass" for v in done.values())


NOT_VECTORISED = '''
import numpy as np


def f(w):
    # for one point; on a stack of 8 points of 8 parameters it still returns 8
    # numbers (row 0 of w, squared, plus a number of the whole stack)
    return w[0] ** 2 + 0.5 * np.sum(np.sin(w))


def df(w):
    return 2 * w * (np.arange(len(w)) == 0) + 0.5 * np.cos(w)
'''


def test_a_function_for_one_point_that_returns_as_many_numbers_as_rows(tmp_path):
    path = tmp_path / "nv.py"
    path.write_text(NOT_VECTORISED, encoding="utf-8")
    from gradcli.compute import prepare
    from gradcli.usercheck import GradientBatches, load_derivative

    batches = GradientBatches(prepare(f"{path}:f", ["w"]),
                              load_derivative(f"{path}:df", "gradient", ["w"]), ["w"])
    rows = [(k, {"w": np.random.default_rng(k).uniform(-1, 1, 8)}) for k in range(1, 9)]
    assert batches.check(rows) == {} and batches.state == "off"
    # and on the command line every point passes (df is right for one point:
    # 2 w_0 e_0 + cos(w) / 2, by hand)
    r = run("check", f"{path}:f", "--grad", f"{path}:df", "--shape", "w=8",
            "--random", "16", "--seed", "4", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out.splitlines()[-1])["summary"]["passed"] == 16


def test_a_gradient_wrong_everywhere_stops_batching_after_the_probe(calls):
    # no row of the probe passes: the batches would not pay, every point is
    # checked alone, each failing at w[0] by 0.1 w[0] (by hand)
    vec, one = both("loss", "grad_wrong", *RANDOM, "--json")
    log = calls()
    assert vec == one and vec[0] == 1
    assert batched(log, "grad_wrong") == 1 and alone(log, "grad_wrong") >= 40
    for line in vec[1].splitlines()[:-1]:
        r = json.loads(line)
        w = np.array(r["inputs"]["w"])
        (row,) = r["check"]["table"]
        assert row["where"] == "w[0]" and row["odd_one_out"] == "yours"
        assert row["user"] - row["engine"] == pytest.approx(0.1 * w[0], abs=1e-12)


TWO = '''
import numpy as np


def f(a, b, k=2.0):
    return {value}


def df(a, b, k=2.0):
    gb = a.copy()
    gb[..., 0] += np.cos(b[..., 0])
    return b + 2 * k * a, gb  # by hand: (b + 2 k a, a + cos(b_0) e_0)
'''


def test_two_inputs_and_a_constant_batch_with_the_same_output(tmp_path, monkeypatch):
    # f(a, b) = a.b + k |a|^2 + sin(b_0), k held (a default value): vectorised
    # with axis=-1, and for one point with np.dot, which cannot take a stack.
    from gradcli import usercheck

    seen = []
    real = usercheck.GradientBatches.check

    def check(self, rows):
        done = real(self, rows)
        seen.append((len(rows), len(done)))
        return done

    monkeypatch.setattr(usercheck.GradientBatches, "check", check)
    out = []
    for name, value in (("v", "np.sum(a * b, axis=-1) + k * np.sum(a ** 2, axis=-1)"),
                        ("o", "np.dot(a, b) + k * np.dot(a, a)")):
        path = tmp_path / f"{name}.py"
        path.write_text(TWO.format(value=value + " + np.sin(b[..., 0])"), encoding="utf-8")
        r = run("check", f"{path}:f", "--grad", f"{path}:df", "--shape", "a=3",
                "--shape", "b=3", "--k", "1.5", "--random", "20", "--seed", "2", "--json")
        out.append((r.code, r.out.replace(str(path), "F")))
    assert out[0] == out[1] and out[0][0] == 0
    assert json.loads(out[0][1].splitlines()[-1])["summary"]["passed"] == 20
    assert seen[:2] == [(8, 8), (12, 12)]  # the vectorised f: every point in a batch
    assert seen[2:] == [(8, 0)]  # np.dot: the probe fails, the rest one at a time


def test_points_slow_alone_are_checked_alone(tmp_path):
    # One point alone would use a good part of its --check-timeout (df takes
    # 0.1 s of 0.3), where a batch may not: running out of time shows in a
    # point's report, so such points are checked alone, as they would be.
    path = tmp_path / "slow.py"
    path.write_text("import time\nimport numpy as np\n\n\ndef f(w):\n"
                    "    return np.sum(w ** 2, axis=-1)\n\n\ndef df(w):\n"
                    "    time.sleep(0.1)\n    return 2 * w\n", encoding="utf-8")
    from gradcli.compute import prepare
    from gradcli.usercheck import GradientBatches, load_derivative

    batches = GradientBatches(prepare(f"{path}:f", ["w"]),
                              load_derivative(f"{path}:df", "gradient", ["w"]), ["w"],
                              timeout=0.3)
    rows = [(k, {"w": np.random.default_rng(k).uniform(-1, 1, 3)}) for k in (1, 2)]
    assert batches.check(rows) == {}
    assert batches.state == "off" and "--check-timeout" in batches.why
    fast = GradientBatches(batches.tgt, batches.d, ["w"], timeout=10.0)
    assert sorted(fast.check(rows)) == [1, 2] and fast.state == "on"
