"""``gradcli plot`` (issue 14, section 2).

Every sample is checked against f and f' derived by hand and evaluated with
numpy here. The terminal plot has golden files (tests/data/plot/, written by
``UPDATE_GOLDEN=1 pytest tests/test_cli_plot.py``), and each golden plot is also
read back independently: every mark of f and of f' must sit in a character
cell that its own curve passes through (to one cell), and every tick label next
to the row or column where its number falls, from the axes' ranges alone.

matplotlib is not a test dependency: the file output is tested through a stub
``matplotlib.figure`` module that records what is drawn, and the missing extra
by hiding matplotlib.
"""

from __future__ import annotations

import os
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from test_cli import ok, run, strict_loads

DATA = Path(__file__).resolve().parent / "data" / "plot"
ESC = re.compile(r"\x1b\[[0-9;]*m")


def samples(*argv: str) -> dict:
    r = ok("plot", *argv, "--format", "json")
    return strict_loads(r.out)


def num(a) -> np.ndarray:
    return np.array([float(v) for v in a])


def grid(lo: float, hi: float, n: int) -> np.ndarray:
    return np.array([lo + (hi - lo) * i / (n - 1) for i in range(n)])


# -- samples against hand-derived f and f' -----------------------------------------
def test_sin_x_times_x_every_sample():
    d = samples("sin(x)*x", "--x", "-6:6", "--samples", "161")
    t = num(d["t"])
    np.testing.assert_allclose(t, grid(-6, 6, 161), rtol=0, atol=1e-14)
    assert t[80] == 0.0  # a symmetric range has 0 exactly
    np.testing.assert_allclose(num(d["f"]), np.sin(t) * t, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(num(d["derivative"]), np.sin(t) + t * np.cos(t),
                               rtol=1e-13, atol=1e-15)
    assert d["vary"] == "x" and d["kinks"] == [] and d["warnings"] == []


def test_default_samples_fit_the_width_at_round_numbers():
    # 50 columns over 6 units: the round step 0.1 (0.05 would be 120 points),
    # each sample exactly the decimal k/10 (as Python reads "0.3"), so a kink
    # at a round number is sampled exactly
    d = samples("tanh(x)", "--x", "-3:3", "--width", "50")
    t = num(d["t"])
    assert t.tolist() == [float(f"{k / 10}") for k in range(-30, 31)]
    np.testing.assert_allclose(num(d["derivative"]), 1 - np.tanh(t) ** 2, rtol=1e-12)
    d = samples("sin(x)*x + abs(x - 0.3)", "--x", "-6:6", "--width", "80")
    assert d["kinks"] == [0.3]
    t = num(d["t"])
    assert 60 <= len(t) <= 161
    np.testing.assert_allclose(num(d["derivative"]),
                               np.sin(t) + t * np.cos(t) + np.sign(t - 0.3), rtol=1e-13)


def test_round_grid_falls_back_to_even_spacing():
    from gradcli.plot import round_grid

    t = round_grid(-np.pi, np.pi, 40)
    np.testing.assert_allclose(t, grid(-np.pi, np.pi, 81), rtol=0, atol=1e-15)
    assert t[0] == -np.pi and t[-1] == np.pi


def test_csv_other_inputs_held():
    r = ok("plot", "a*exp(-x*x)", "--x", "-2:1", "--a", "3", "--format", "csv",
           "--samples", "7")
    lines = r.out.splitlines()
    assert lines[0] == "t,f,derivative"
    rows = np.array([[float(c) for c in ln.split(",")] for ln in lines[1:]])
    t = rows[:, 0]
    np.testing.assert_allclose(t, grid(-2, 1, 7), atol=1e-15)
    np.testing.assert_allclose(rows[:, 1], 3 * np.exp(-t * t), rtol=1e-15)
    np.testing.assert_allclose(rows[:, 2], -6 * t * np.exp(-t * t), rtol=1e-14)


def test_along_a_line_through_a_point():
    # f = |x0 + t d|^2, df/dt = 2 <x0 + t d, d>
    x0, dvec = np.array([0.0, 1, 2]), np.array([1.0, 2, -1])
    d = samples("dot(x,x)", "--x", "0,1,2", "--along", "1,2,-1", "--t", "-2:3",
                "--samples", "11")
    t = num(d["t"])
    np.testing.assert_allclose(t, grid(-2, 3, 11), atol=1e-15)
    pts = x0 + t[:, None] * dvec
    np.testing.assert_allclose(num(d["f"]), (pts ** 2).sum(1), rtol=1e-14)
    np.testing.assert_allclose(num(d["derivative"]), 2 * pts @ dvec, rtol=1e-14, atol=1e-14)
    assert d["along"] == [1, 2, -1] and d["through"] == [0, 1, 2] and d["vary"] == "t"


def test_along_names_its_input_and_t_defaults():
    d = samples("dot(x,x)*y", "--x", "1,1", "--y", "2", "--along", "x=1,0",
                "--samples", "5")
    t = num(d["t"])
    np.testing.assert_allclose(t, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(num(d["f"]), 2 * ((1 + t) ** 2 + 1))
    np.testing.assert_allclose(num(d["derivative"]), 4 * (1 + t))
    assert d["inputs"] == {"y": 2}


def test_vary_one_component_and_its_kink_only():
    # sum(|x|) with x = (0, t, 2): f = |t| + 2, f' = sign(t) (0 at the kink).
    # x[0] sits on abs's kink at every sample, but f is smooth along the line
    # there: only t = 0 is a kink of the plot.
    r = ok("plot", "sum(abs(x))", "--x", "0,1,2", "--vary", "x[1]=-1:1",
           "--samples", "9", "--format", "json")
    d = strict_loads(r.out)
    t = num(d["t"])
    np.testing.assert_allclose(num(d["f"]), np.abs(t) + 2)
    np.testing.assert_allclose(num(d["derivative"]), np.sign(t))
    assert d["kinks"] == [0.0] and d["vary"] == "x[1]"
    assert [ln for ln in r.err.splitlines() if ln.startswith("note:")] == [
        "note: kink at x[1] = 0: abs at 'abs(x)': abs'(0) = 0"]


def test_vary_a_matrix_entry():
    a = np.array([[1.0, 2], [3, 4]])
    d = samples("sum(A*A)", "--A", "1,2;3,4", "--vary", "A[1,0]=0:2", "--samples", "3")
    t = num(d["t"])
    np.testing.assert_allclose(num(d["f"]), (a * a).sum() - 9 + t * t)
    np.testing.assert_allclose(num(d["derivative"]), 2 * t)


def test_function_file(tmp_path):
    f = tmp_path / "cube.py"
    f.write_text("def f(x):\n    return x * x * x - 2 * x\n")
    d = samples(str(f), "--x", "-1:2", "--samples", "4")
    t = num(d["t"])
    np.testing.assert_allclose(num(d["f"]), t ** 3 - 2 * t)
    np.testing.assert_allclose(num(d["derivative"]), 3 * t ** 2 - 2)
    assert d["kind"] == "function"


def test_samples_that_fail_are_gaps_and_all_failing_is_the_error(tmp_path):
    f = tmp_path / "partial.py"
    f.write_text("def f(x):\n    if x > 0.4:\n        raise ValueError('too big')\n"
                 "    return x * x\n")
    r = ok("plot", str(f), "--x", "-1:1", "--samples", "5", "--format", "json")
    d = strict_loads(r.out)
    assert d["f"][3:] == ["nan", "nan"] and d["derivative"][3:] == ["nan", "nan"]
    np.testing.assert_allclose(num(d["f"][:3]), [1, 0.25, 0])
    np.testing.assert_allclose(num(d["derivative"][:3]), [-2, -1, 0])
    assert r.err.startswith("warning: 2 of 5 samples could not be evaluated (gaps in "
                            "the plot); first at x = 0.5: ")
    assert "ValueError: too big" in r.err
    r = run("plot", str(f), "--x", "1:2")
    assert r.code == 3 and r.out == "" and "ValueError: too big" in r.err_lines[0]


def test_an_input_named_like_an_option_and_a_leading_minus():
    d = samples("t*t", "--var", "t=-1:1", "--samples", "3")
    assert d["f"] == [1, 0, 1] and d["derivative"] == [-2, 0, 2]
    r = run("plot", "t*t", "--t", "-1:1")
    assert r.code == 2 and "--var t=VALUE" in r.err
    d = samples("-x*x", "--x", "-1:1", "--samples", "3")
    assert d["f"] == [-1, 0, -1] and d["derivative"] == [2, 0, -2]


def test_kinks_marked_where_a_sample_sits_on_one():
    r = ok("plot", "abs(x - 0.5) + relu(x)", "--x", "-1:1", "--samples", "9",
           "--format", "json")
    d = strict_loads(r.out)
    t = num(d["t"])
    np.testing.assert_allclose(num(d["f"]), np.abs(t - 0.5) + np.maximum(t, 0))
    # the declared conventions at the kinks: abs'(0) = 0, relu'(0) = 0
    want = np.sign(t - 0.5) + (t > 0)
    np.testing.assert_allclose(num(d["derivative"]), want)
    assert d["kinks"] == [0.0, 0.5]
    text = ok("plot", "abs(x - 0.5) + relu(x)", "--x", "-1:1", "--samples", "9",
              "--width", "40", "--height", "12").out
    assert text.splitlines()[-1] == "kink at x = 0, 0.5 (vertical lines)"


@pytest.mark.parametrize("args, kinks", [
    # f = t^2 along x[1]; x[0] sits on abs's kink at every sample: no kink
    (["abs(x[0]) + x[1]**2", "--x", "0,0", "--vary", "x[1]=-1:1"], []),
    # a tie that the line keeps: maximum(t, t) = t
    (["maximum(x[0],x[1])", "--x", "0,0", "--along", "1,1"], []),
    # a bend however small the function's scale
    (["1e-6*abs(x)", "--x", "-1:1"], [0.0]),
    # steps at the integers: jumps
    (["floor(x)", "--x", "-2:2"], [-2.0, -1.0, 0.0, 1.0, 2.0]),
    # relu(x)^2 is continuously differentiable: no kink in f or f'
    (["relu(x)**2", "--x", "-1:1"], []),
    (["abs(x - 0.3)", "--x", "-1:1", "--dtype", "float32"], [0.3]),
])
def test_kinks_are_where_f_bends_along_the_line(args, kinks):
    d = samples(*args, "--width", "40")
    assert d["kinks"] == kinks


def test_gaps_where_values_are_not_finite():
    r = ok("plot", "log(x)", "--x", "-1:1", "--samples", "5", "--format", "json")
    d = strict_loads(r.out)
    # log: nan below 0, -inf at 0; its derivative 1/x (inf at 0), as PyTorch's.
    assert d["f"][:3] == ["nan", "nan", "-inf"]
    np.testing.assert_allclose(num(d["f"][3:]), np.log([0.5, 1.0]))
    assert d["derivative"][2] == "inf"
    np.testing.assert_allclose(num(d["derivative"][:2] + d["derivative"][3:]),
                               [-1, -2, 2, 1])
    assert "warning: f is not finite at 3 of 5 samples (gaps in the plot)" in r.err
    # drawn: no mark of f left of 0 (the plot's canvas, columns left of the axis)
    text = ok("plot", "log(x)", "--x", "-1:1", "--width", "40", "--height", "12").out
    p = parse_plot(text)
    for r_, c in p.marks("•"):
        assert p.x_range(c)[1] > -p.dx  # f only where x >= 0


def test_nothing_finite_is_an_empty_plot():
    r = ok("plot", "sqrt(x)", "--x", "-2:-1", "--width", "40", "--height", "12")
    p = parse_plot(r.out, x=(-2.0, -1.0))
    assert p.marks("•") == [] and p.marks("·") == []
    assert re.search(r"^warning: f is not finite at (\d+) of \1 samples", r.err, re.M)
    # log(x): f is nan there, its derivative 1/x is not (as in PyTorch)
    r = ok("plot", "log(x)", "--x", "-2:-1", "--width", "40", "--height", "12")
    p = parse_plot(r.out, x=(-2.0, -1.0))
    assert p.marks("•") == [] and p.marks("·")


def test_samples_are_evaluated_in_batches(monkeypatch):
    import gradcli.compute as compute

    calls = []
    real = compute.evaluate
    monkeypatch.setattr(compute, "evaluate",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    samples("sin(x)*x", "--x", "-6:6", "--samples", "2001")
    assert len(calls) <= 4  # one first point, then 2,001 rows in two chunks


# -- bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (["sin(x)", "--x", "6:-6"], "--x: the range is empty: START (6) must be below END (-6)"),
    (["sin(x)", "--x", "a:b"], "--x: the range's START 'a' is not a number"),
    (["sin(x)", "--x", "-6:6x"], "--x: the range's END '6x' is not a number"),
    (["sin(x)", "--x", ":6"], "--x: the range has no START"),
    (["sin(x)", "--x", "1:2:3"], "--x: a range is START:END with one ':', not 2"),
    (["sin(x)", "--x", "-1:1e999"], "must be finite"),
    (["sin(x)", "--x", "-1e308:1e308"], "too wide"),
    (["sin(x)", "--x", "0:1e-320"], "too narrow"),
    (["sin(x)", "--x", "1:1.000000000000001"], "too narrow"),
    (["sin(x)", "--x", "1"], "nothing varies"),
    (["x+y", "--x", "-1:1", "--y", "0:1"], "--x and --y are both ranges"),
    (["dot(x,x)", "--x", "0,1,2", "--along", "1,0"],
     "--along has shape (2,) but x has shape (3,)"),
    (["dot(x,x)", "--x", "0,1,2", "--along", "0,0,0"], "--along is the zero vector"),
    (["dot(x,x)", "--x", "0,1,2"], "input 'x' is not a number"),
    (["dot(x,x)", "--x", "0,1,2", "--t", "0:1"], "give --along too"),
    (["dot(x,x)", "--x", "0,1,2", "--along", "1,0,0", "--vary", "x[0]=0:1"],
     "not both"),
    (["dot(x,x)", "--x", "0,1,2", "--vary", "x[3]=0:1"], "no such component"),
    (["dot(x,x)", "--x", "0,1,2", "--vary", "x=0:1"], "name one component"),
    (["dot(x,x)", "--x", "0,1,2", "--vary", "x[a]=0:1"], "the index must be whole"),
    (["dot(x,x)", "--x", "0,1,2", "--vary", "x[0]=1:0"], "--vary x[0]: the range is empty"),
    (["dot(x,x)", "--x", "0,1,2", "--vary", "x[0]=0:1y"], "--vary x[0]: the range's END"),
    (["dot(x,x)+y", "--x", "0,1", "--y", "1", "--along", "1,0"], "which input?"),
    (["x*y", "--x", "-1:1", "--y", "1,2"], "the output has shape (2,)"),
    (["sin(x)", "--x", "-1:1", "--samples", "1"], "--samples"),
    (["sin(x)", "--x", "-1:1", "--samples", "10001"], "--samples"),
    (["sin(x)", "--x", "-1:1", "--width", "29"], "--width"),
    (["sin(x)", "--x", "-1:1", "--output", "plot.txt"], "the file type must be one of"),
])
def test_bad_input_is_a_usage_error(args, says):
    r = run("plot", *args)
    assert r.code == 2, (r.code, r.err)
    assert r.out == ""
    assert r.err_lines[0].startswith("error: ") and says in r.err_lines[0], r.err
    assert "Traceback" not in r.err
    if ": the range" in says or ": a range" in says:  # one line: no hint echoing it
        assert len(r.err_lines) == 1, r.err


# -- the terminal plot -------------------------------------------------------------------
class Plot:
    """A text plot read back as character cells. The axes' ranges are given
    (derived in the test), never read from the plot's own tick labels."""

    def __init__(self, lines: list[str], x: tuple[float, float], y: tuple[float, float]):
        top = next(i for i, ln in enumerate(lines) if ln.startswith("┌"))
        bottom = next(i for i, ln in enumerate(lines) if ln.startswith("└"))
        self.width = len(lines[top]) - 2
        self.rows = [ln[1:1 + self.width] for ln in lines[top + 1:bottom]]
        self.right = [ln[2 + self.width:].strip() for ln in lines[top + 1:bottom]]
        self.xlabels = lines[bottom + 1]
        self.legend = lines[bottom + 2]
        self.height = len(self.rows)
        self.x, self.y = x, y
        self.dx = (x[1] - x[0]) / self.width
        self.dy = (y[1] - y[0]) / self.height

    def marks(self, ch: str):
        return [(r, c) for r, row in enumerate(self.rows) for c, k in enumerate(row) if k == ch]

    def x_range(self, c: int, slack: int = 0):
        return self.x[0] + (c - slack) * self.dx, self.x[0] + (c + 1 + slack) * self.dx

    def y_range(self, r: int, slack: int = 0):  # row 0 is the top
        return self.y[1] - (r + 1 + slack) * self.dy, self.y[1] - (r - slack) * self.dy


def parse_plot(text: str, x=(-1.0, 1.0), y=(-1.0, 1.0)) -> Plot:
    return Plot(ESC.sub("", text).rstrip("\n").split("\n"), x, y)


def padded(lo: float, hi: float) -> tuple[float, float]:
    """The y range the plot documents: the values' range, 5% added each side."""
    return lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)


# f = x^2 - 1 on [-2, 2]: f in [-1, 3]; f' = 2x in [-4, 4]: y in padded(-4, 4)
GOLDEN = "x*x - 1"


def golden(name: str, text: str) -> None:
    path = DATA / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("width, height", [(40, 12), (80, 24)])
def test_golden_terminal_plot(width, height):
    r = ok("plot", GOLDEN, "--x", "-2:2", "--width", str(width), "--height", str(height))
    golden(f"x2_{width}x{height}.txt", r.out)
    lines = r.out.rstrip("\n").split("\n")
    assert "\x1b" not in r.out  # not a terminal: no colour
    assert len(lines) <= height and max(map(len, lines)) <= width
    assert max(map(len, lines)) >= width - 3  # and it fills the width
    assert lines[0].strip() == GOLDEN
    p = parse_plot(r.out, x=(-2.0, 2.0), y=padded(-4, 4))
    assert p.legend.split() == ["••", "f", "··", "df/dx"]
    f_marks, d_marks = p.marks("•"), p.marks("·")
    assert f_marks and d_marks
    for r_, c in f_marks:  # a mark of f: f passes through its cell (to one cell)
        lo, hi = p.x_range(c, 1)
        xs = np.linspace(lo, hi, 50)
        ys = xs * xs - 1
        ylo, yhi = p.y_range(r_, 1)
        assert ((ys >= ylo) & (ys <= yhi)).any(), (r_, c)
    for r_, c in d_marks:  # f' = 2x likewise
        lo, hi = p.x_range(c, 1)
        ylo, yhi = p.y_range(r_, 1)
        assert 2 * hi >= ylo and 2 * lo <= yhi, (r_, c)
    # every column holds a mark of f or f' (lines, no holes)
    assert {c for _, c in f_marks} | {c for _, c in d_marks} == set(range(p.width))
    # tick labels: y on the right of the row where the number falls
    ys = [(r_, float(s.replace(",", ""))) for r_, s in enumerate(p.right) if s]
    assert len(ys) >= 2
    for r_, v in ys:
        ylo, yhi = p.y_range(r_, 1)
        assert ylo <= v <= yhi, (r_, v)
    # x below the column where the number falls (the frame's │ is column -1)
    xs = [(m.start() - 1, m.end() - 2, float(m.group()))
          for m in re.finditer(r"-?\d+(?:\.\d+)?", p.xlabels)]
    assert len(xs) >= 2 and [v for *_, v in xs] == sorted(v for *_, v in xs)
    for c0, c1, v in xs:
        lo, _ = p.x_range(c0, 1)
        _, hi = p.x_range(c1, 1)
        assert lo <= v <= hi, (c0, c1, v)
    # the axes: y = 0 is a row of ─ (where no curve is drawn), x = 0 a column of │
    zero_rows = [r_ for r_, row in enumerate(p.rows) if row.count("─") > p.width // 3]
    assert len(zero_rows) == 1 and p.y_range(zero_rows[0])[0] <= 0 <= p.y_range(zero_rows[0])[1]


def test_colour_on_a_terminal_and_its_golden(monkeypatch):
    from gradcli.cli import plot as plot_cli

    monkeypatch.setattr(plot_cli, "_color", lambda: True)
    r = ok("plot", GOLDEN, "--x", "-2:2", "--width", "80", "--height", "24")
    golden("x2_80x24_colour.txt", r.out)
    assert "\x1b[" in r.out
    plain = ESC.sub("", r.out).rstrip("\n").split("\n")
    assert len(plain) <= 24 and max(map(len, plain)) <= 80
    # Braille dots in colour, both curves in the legend
    assert any("\u2800" < ch <= "\u28ff" for ch in "".join(plain))
    assert "f" in plain[-1].split() and "df/dx" in plain[-1].split()


class _Out:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, no_color, want", [
    (True, None, True), (True, "1", False), (False, None, False), (True, "", True)])
def test_colour_only_on_a_terminal_without_no_color(monkeypatch, tty, no_color, want):
    from gradcli.cli import plot as plot_cli

    monkeypatch.setattr(sys, "stdout", _Out(tty))
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert plot_cli._color() is want


@pytest.mark.parametrize("cols, lines", [(80, 24), (60, 20), (40, 12), (30, 11)])
def test_fits_the_terminal(monkeypatch, cols, lines):
    monkeypatch.setenv("COLUMNS", str(cols))
    monkeypatch.setenv("LINES", str(lines))
    r = ok("plot", "1e6*exp(x)", "--x", "-3:30")
    out = r.out.rstrip("\n").split("\n")
    # one line left for the shell's prompt
    assert len(out) <= lines - 1 and max(map(len, out)) <= cols
    assert "(y ×1e18)" in out[0]  # huge values: short tick labels, unit in the title


# -- --output ----------------------------------------------------------------------------
def test_output_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    r = run("plot", "sin(x)", "--x", "-1:1", "--output", str(tmp_path / "p.svg"))
    assert r.code == 2 and r.out == ""
    assert r.err_lines[0].startswith("error: --output") and "matplotlib" in r.err_lines[0]
    assert r.err_lines[1] == 'hint: install the plot extra: pip install "gradcli[plot]"'
    assert not (tmp_path / "p.svg").exists()


class _Axes:
    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        return lambda *a, **k: self.log.append((name, a, k))


class _Figure:
    made: list = []

    def __init__(self, **kwargs):
        self.log = [("Figure", (), kwargs)]
        _Figure.made.append(self)

    def subplots(self):
        return _Axes(self.log)

    def savefig(self, path):
        self.log.append(("savefig", (path,), {}))
        Path(path).write_text("stub")


def test_output_draws_f_and_the_derivative_with_gaps_and_kinks(monkeypatch, tmp_path):
    stub = types.ModuleType("matplotlib")
    fig_mod = types.ModuleType("matplotlib.figure")
    fig_mod.Figure = _Figure
    stub.figure = fig_mod
    monkeypatch.setitem(sys.modules, "matplotlib", stub)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", fig_mod)
    _Figure.made.clear()
    out = tmp_path / "p.pdf"
    r = ok("plot", "sqrt(x) + abs(x - 0.5)", "--x", "-1:1", "--samples", "9",
           "--output", str(out))
    assert r.out == "" and out.read_text() == "stub"
    assert f"note: wrote {out} (9 samples)" in r.err
    log = _Figure.made[0].log
    plots = [a for name, a, _ in log if name == "plot"]
    t = grid(-1, 1, 9)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.sqrt(t) + np.abs(t - 0.5)
        d = 0.5 / np.sqrt(t) + np.sign(t - 0.5)
    np.testing.assert_allclose(plots[0][0], t, atol=1e-15)
    np.testing.assert_allclose(plots[0][1], f)  # nan (a gap) where t < 0
    # at t = 0: 1/(2 sqrt(0)) is inf, not finite: a gap too; and the line of
    # the derivative is broken at the kink (t = 0.5, the 7th sample)
    d[6] = np.nan
    np.testing.assert_allclose(plots[1][1], np.where(np.isfinite(d), d, np.nan))
    assert [a[0] for name, a, _ in log if name == "axvline"] == [0.5]
    assert ("savefig", (str(out),), {}) in log
    assert [a for name, a, _ in log if name == "set_xlabel"] == [("x",)]


# -- start-up -------------------------------------------------------------------------
_IMPORTS = """
import contextlib, io, json, sys
from gradcli.cli import main

def loaded():
    return sorted(p for p in ("uniplot", "matplotlib", "sympy", "rich")
                  if any(m == p or m.startswith(p + ".") for m in sys.modules))

seen = []
for argv in (["eval", "sin(x)", "--x", "1"],
             ["plot", "sin(x)*x", "--x", "-6:6", "--format", "csv"],
             ["plot", "sin(x)*x", "--x", "-6:6"]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            assert not exc.code, exc.code
    seen.append(loaded())
print(json.dumps(seen))
"""


def test_the_plotting_library_is_imported_only_to_draw():
    import subprocess

    p = subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    after_eval, after_csv, after_plot = strict_loads(p.stdout.splitlines()[-1])
    assert after_eval == [] and after_csv == []
    assert after_plot == ["uniplot"]


# -- any range, any size: a plot that fits, or a usage error ------------------------------
_ends = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=int(os.environ.get("PLOT_EXAMPLES", "25")))
@given(lo=_ends, hi=_ends, scale=st.sampled_from(["1", "1e-300", "1e300", "0"]),
       width=st.integers(30, 120), height=st.integers(10, 40))
def test_any_range_and_size_fits_or_is_a_usage_error(lo, hi, scale, width, height):
    r = run("plot", f"{scale}*sin(x)*x + abs(x)", "--x", f"{lo!r}:{hi!r}",
            "--width", str(width), "--height", str(height))
    assert r.code in (0, 2), r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    if r.code == 2:
        assert r.out == "" and r.err.startswith("error: --x: the range ")
        assert r.err.count("\n") == 1, r.err
        return
    lines = r.out.rstrip("\n").split("\n")
    assert len(lines) <= height and max(map(len, lines)) <= width
