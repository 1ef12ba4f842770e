"""``gradcli plot``: f and its derivative sampled along a line, and drawn.

A line through the inputs is ``name = base + t * direction`` with every other
input held: a scalar input over a range (``--x -6:6``: base 0, direction 1), a
vector input along a direction (``--along``), or one component of it
(``--vary x[1]=-1:1``: the unit vector of that component). ``sample`` evaluates
f and its derivative along the line, ``<grad f, direction>``, at evenly spaced
t, through the batched evaluation of ``eval --points`` (``compute.evaluate_rows``,
a chunk at a time: rows of an elementwise expression of scalars go through the
engine as one array). ``terminal`` draws the samples as Unicode text with
uniplot; ``figure`` writes a file with matplotlib (the ``plot`` extra). Both
libraries are imported only here, when a plot is drawn.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import EvaluationError, UsageError

MAX_SAMPLES = 10_000
MIN_WIDTH, MIN_HEIGHT = 30, 10
EXTRA_HINT = 'install the plot extra: pip install "gradcli[plot]"'
FILE_TYPES = (".svg", ".png", ".pdf")
MARKS = "•·"  # f and its derivative, without colour


@dataclass
class Line:
    """``name = base + t * direction`` for t in [lo, hi]; ``axis`` names t."""

    name: str
    base: np.ndarray
    direction: np.ndarray
    lo: float
    hi: float
    axis: str


@dataclass
class Samples:
    line: Line
    t: np.ndarray
    f: np.ndarray
    derivative: np.ndarray
    kinks: list[tuple[float, str]] = field(default_factory=list)  # (t, which op)
    warnings: list[str] = field(default_factory=list)


# -- reading the line ---------------------------------------------------------------
_RANGE_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_range(text: str) -> bool:
    """VALUE text that is a range ``START:END`` (a file, ``@...``, is not)."""
    return ":" in text and not text.lstrip().startswith("@")


def parse_range(text: str, what: str) -> tuple[float, float]:
    """``START:END``, two finite numbers with START < END. Errors are one line
    naming the option (``what``) and the part that is wrong, as a bad VALUE's
    (``input x: '2x' is not a number``).

    >>> parse_range("-6:6", "--x")
    (-6.0, 6.0)
    """
    parts = [p.strip() for p in text.split(":")]
    if len(parts) != 2:
        raise UsageError(f"{what}: a range is START:END with one ':', not "
                         f"{len(parts) - 1} (e.g. -6:6)")
    for end, p in zip(("START", "END"), parts):
        if not p:
            raise UsageError(f"{what}: the range has no {end} (START:END, e.g. -6:6)")
        if not _RANGE_NUMBER.fullmatch(p):
            raise UsageError(f"{what}: the range's {end} {_shown(p)} is not a number")
    lo, hi = (float(p) for p in parts)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UsageError(f"{what}: the ends of a range must be finite numbers")
    if not lo < hi:
        raise UsageError(f"{what}: the range is empty: START ({parts[0]}) must be below "
                         f"END ({parts[1]})")
    if not math.isfinite(hi - lo):
        raise UsageError(f"{what}: the range is too wide (its width overflows)")
    if hi - lo < max(1e-300, 1e-12 * max(abs(lo), abs(hi))):
        raise UsageError(f"{what}: the range is too narrow to sample (its width must be "
                         "at least 1e-12 of its ends and 1e-300)")
    return lo, hi


def _shown(text: str, most: int = 20) -> str:
    """A piece of the user's text in a message: quoted, and cut if long."""
    return repr(text if len(text) <= most else text[:most - 1] + "…")


_VARY = re.compile(r"^\s*([^\W\d]\w*)\s*(?:\[([^\]]*)\])?\s*=(.*)$")


def parse_vary(text: str) -> tuple[str, tuple[int, ...] | None, str]:
    """``NAME[i,...]=START:END`` (or ``NAME=START:END``): the name, the index and
    the range text.

    >>> parse_vary("x[1]=-1:1")
    ('x', (1,), '-1:1')
    """
    m = _VARY.match(text)
    if m is None:
        raise UsageError(f"--vary {text!r}: expected NAME[INDEX]=START:END, e.g. "
                         "--vary x[1]=-1:1")
    name, index, rng = m.group(1), m.group(2), m.group(3)
    if index is None:
        return name, None, rng
    parts = [p.strip() for p in index.split(",")]
    if not all(p.isdigit() and p.isascii() and len(p) <= 9 for p in parts):
        raise UsageError(f"--vary {text!r}: the index must be whole numbers, e.g. x[1] "
                         "or A[0,2]")
    return name, tuple(int(p) for p in parts), rng


def line_along(name: str, point: np.ndarray, direction: np.ndarray,
               lo: float, hi: float) -> Line:
    """The line through ``point`` along ``direction`` (same shape, not zero)."""
    if direction.shape != point.shape:
        raise UsageError(f"--along has shape {direction.shape} but {name} has shape "
                         f"{point.shape}: give one number per element of {name}")
    if not np.any(direction):
        raise UsageError("--along is the zero vector: the line needs a direction")
    return Line(name, point, direction.astype(point.dtype), lo, hi, "t")


def line_of_component(name: str, point: np.ndarray, index: tuple[int, ...] | None,
                      lo: float, hi: float) -> Line:
    """One component of ``point`` (all of it, for a scalar) over [lo, hi]."""
    if index is None:
        if point.ndim:
            raise UsageError(f"--vary {name}: {name} has shape {point.shape}; name one "
                             f"component, e.g. --vary {name}[0]={lo:g}:{hi:g}")
        index = ()
    if len(index) != point.ndim or any(i >= n for i, n in zip(index, point.shape)):
        raise UsageError(f"--vary {name}[{','.join(map(str, index))}]: {name} has shape "
                         f"{point.shape}, which has no such component")
    direction = np.zeros_like(point)
    direction[index] = 1
    base = point.copy()
    base[index] = 0
    axis = f"{name}[{','.join(map(str, index))}]" if index else name
    return Line(name, base, direction, lo, hi, axis)


def line_of_scalar(name: str, lo: float, hi: float, dtype) -> Line:
    """A scalar input over [lo, hi]."""
    return Line(name, np.zeros((), dtype=dtype), np.ones((), dtype=dtype), lo, hi, name)


# -- sampling -----------------------------------------------------------------------
def grid(lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` evenly spaced points from lo to hi, each a weighted mean of the ends
    (not lo + i*step): a symmetric range has 0 exactly.

    >>> grid(-6, 6, 5).tolist()
    [-6.0, -3.0, 0.0, 3.0, 6.0]
    """
    i = np.arange(n, dtype=np.float64)
    # weights in [0, 1]: no product overflows, whatever the ends
    return lo * ((n - 1 - i) / (n - 1)) + hi * (i / (n - 1))


def round_grid(lo: float, hi: float, columns: int) -> np.ndarray:
    """The default samples: a round step (1, 2 or 5 times a power of ten) that
    gives about one or two points per column (at most ``2 * columns`` + 1),
    each ``k * step`` computed exactly as the decimal it is (an integer over a
    power of ten), so that a kink at a round number in the range is sampled
    exactly. Where the ends are not multiples of such a step:
    ``grid(lo, hi, 2 * columns + 1)``.

    >>> round_grid(-6, 6, 40)[:3].tolist()
    [-6.0, -5.8, -5.6]
    """
    low = math.floor(math.log10(hi - lo)) - 1 - len(str(columns))
    for e in range(max(low, -300), 300):
        for c in (1, 2, 5):
            num, den = (c * 10**e, 1) if e >= 0 else (c, 10**-e)
            count = (hi - lo) * den / num
            if count > 2 * columns:
                continue
            m_lo, m_hi = round(lo * den / num), round(hi * den / num)
            if count < 0.75 * columns or m_lo * num / den != lo or m_hi * num / den != hi:
                return grid(lo, hi, 2 * columns + 1)
            return np.arange(m_lo, m_hi + 1, dtype=np.float64) * num / den
    return grid(lo, hi, 2 * columns + 1)


def sample(target, fixed: dict[str, np.ndarray], line: Line, t: np.ndarray, *,
           max_elements: int) -> Samples:
    """f and its derivative along ``line`` at the points ``t`` (increasing,
    from line.lo to line.hi); ``fixed`` holds the other inputs. A sample whose
    evaluation fails is a gap (nan), and its error a warning; if every sample
    fails, the first error is raised."""
    from .compute import evaluate, evaluate_rows
    from .points import CHUNK

    n = len(t)
    if not 2 <= n <= MAX_SAMPLES:
        raise UsageError(f"{n:,} samples: must be from 2 to {MAX_SAMPLES:,}")
    names = list(fixed) + [line.name]
    dtype = line.base.dtype
    ts = t.astype(dtype)

    def point(k: int) -> dict[str, np.ndarray]:
        x = np.asarray(line.base + ts[k] * line.direction, dtype=dtype)
        return {m: (x if m == line.name else fixed[m]) for m in names}

    # One point first, value only: a wrong shape is the command's error, not a
    # row's (and a function file's own error is as eval reports it).
    try:
        first = evaluate(target, point(0), no_grad=True, max_elements=max_elements)
    except EvaluationError:
        first = None  # (this sample's gap and warning come below)
    if first is not None and first.value.size != 1:
        raise UsageError(f"the output has shape {first.value.shape}; a plot needs a "
                         "single-number output",
                         hint="wrap the expression in sum(...), or plot one element")
    f = np.full(n, np.nan)
    d = np.full(n, np.nan)
    out = Samples(line, t, f, d)
    failed: list[tuple[int, Exception]] = []
    noted: dict[int, list[str]] = {}  # samples whose gradient went through a kink
    with np.errstate(all="ignore"):
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            rows = [point(k) for k in range(start, stop)]
            results = evaluate_rows(target, rows, wrt=[line.name], no_grad=False,
                                    max_elements=max_elements)
            for k, res in zip(range(start, stop), results):
                if isinstance(res, Exception):
                    failed.append((k, res))
                    continue
                f[k] = float(np.asarray(res.value).reshape(()))
                g = np.asarray(res.grads[line.name], dtype=np.float64)
                d[k] = float(np.sum(g * line.direction)) if g.ndim else float(
                    g * line.direction)
                if res.notes:
                    noted[k] = res.notes
    if noted:
        bent = _bent(target, line, point, t, f, sorted(noted), max_elements)
        out.kinks = [(float(t[k]), note) for k in bent for note in noted[k]]
    if len(failed) == n:
        raise failed[0][1]
    if failed:
        k, exc = failed[0]
        out.warnings.append(f"{len(failed)} of {n} samples could not be evaluated (gaps "
                            f"in the plot); first at {line.axis} = {t[k]:g}: "
                            + " ".join(str(exc).split()))
    for what, a in (("f", f), ("the derivative", d)):
        bad = int(np.count_nonzero(~np.isfinite(a))) - len(failed)
        if bad:
            out.warnings.append(f"{what} is not finite at {bad} of {n} samples "
                                "(gaps in the plot)")
    return out


def _bent(target, line: Line, point, t: np.ndarray, f: np.ndarray, ks: list[int],
          max_elements: int) -> list[int]:
    """Of the samples ``ks`` whose gradient went through an op's kink, those
    where f along the line bends or jumps. A kink the line only runs along (a
    held component of a vector at abs's 0, a tie the line keeps) leaves f
    smooth along the line, and is not one of the plot's.

    The test: the one-sided slopes' difference at steps h and 2h. Smooth, it is
    about h f'' (doubles with h); at a bend it is the change of slope (stays);
    at a jump, jump / h (halves)."""
    from .compute import evaluate_rows

    dtype = line.base.dtype
    eps = float(np.finfo(dtype).eps)
    spacing = (line.hi - line.lo) / (len(t) - 1)
    bent = []
    for start in range(0, len(ks), 250):
        part = ks[start:start + 250]
        rows, steps = [], []
        for k in part:
            h = max(spacing * 1e-3, eps ** 0.5 * max(1.0, abs(t[k])))
            at = dtype.type(t[k])
            # the steps as taken in the input's precision
            sides = [dtype.type(at + s * h) for s in (-2, -1, 1, 2)]
            steps.append([float(v) - float(at) for v in sides])
            for v in sides:
                p = point(k)
                p[line.name] = np.asarray(line.base + v * line.direction, dtype=dtype)
                rows.append(p)
        got = evaluate_rows(target, rows, wrt=[], no_grad=True, max_elements=max_elements)
        for i, (k, hs) in enumerate(zip(part, steps)):
            res = got[4 * i:4 * i + 4]
            if any(isinstance(r, Exception) for r in res) or 0.0 in hs:
                bent.append(k)  # an edge of f's domain: keep the op's word for it
                continue
            v = [float(np.asarray(r.value).reshape(())) for r in res]
            gap = [(v[3] - f[k]) / hs[3] - (f[k] - v[0]) / -hs[0],   # at 2h
                   (v[2] - f[k]) / hs[2] - (f[k] - v[1]) / -hs[1]]   # at h
            noise = 8 * eps * (abs(f[k]) + max(map(abs, v))) / abs(hs[1])
            if not all(map(math.isfinite, gap)):
                bent.append(k)
            elif abs(gap[1]) > noise and abs(gap[0]) < 1.5 * abs(gap[1]):
                bent.append(k)
    return bent


# -- output -------------------------------------------------------------------------
def derivative_label(line: Line) -> str:
    """``df/dx``, ``df/dx[1]``, ``df/dt`` (along the direction)."""
    return f"df/d{line.axis}"


def records(s: Samples) -> dict[str, Any]:
    """The samples as JSON-able columns (non-finite numbers as strings)."""
    from .render import jsonable

    return {"t": jsonable(s.t), "f": jsonable(s.f), "derivative": jsonable(s.derivative)}


def _finite_span(*arrays: np.ndarray) -> tuple[float, float]:
    vals = np.concatenate([a[np.isfinite(a)] for a in arrays])
    if vals.size == 0:
        return -1.0, 1.0
    lo, hi = float(vals.min()), float(vals.max())
    if lo == hi:
        pad = max(1.0, abs(lo)) * 0.5
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def terminal(s: Samples, title: str, width: int, height: int, *, color: bool) -> str:
    """The plot as text of at most ``width`` columns and ``height`` lines: title,
    the framed plot with its tick labels, legend, and a line naming the kinks
    (also drawn as vertical lines). Numbers too large or small for short tick
    labels are drawn in units of a power of ten, which the title names."""
    from uniplot import plot_to_string

    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise UsageError(f"the plot needs at least {MIN_WIDTH}x{MIN_HEIGHT} characters, "
                         f"not {width}x{height}",
                         hint="use --format csv or --output FILE on a small terminal")
    kink_line = _kink_line(s, width)
    with np.errstate(all="ignore"):
        ys = [np.where(np.isfinite(a), a, np.nan) for a in (s.f, _broken(s))]
        finite = np.concatenate([a[np.isfinite(a)] for a in ys])
        ey = _exponent(float(np.max(np.abs(finite))) if finite.size else 0.0)
        ex = _exponent(max(abs(s.line.lo), abs(s.line.hi)))
        ys = [_scaled(a, ey) for a in ys]
    y_lo, y_hi = _finite_span(*ys)
    units = [f"{a} ×1e{e}" for a, e in ((s.line.axis, ex), ("y", ey)) if e]
    suffix = f"   ({', '.join(units)})" if units else ""
    if len(title) + len(suffix) > width:  # the units stay: they say what the numbers are
        title = title[: max(1, width - len(suffix) - 1)] + "…"
    title = (title + suffix)[:width]
    for a in ys:
        if not np.isfinite(a).any():  # uniplot needs a number: one out of sight
            a[0] = y_hi + 10 * (y_hi - y_lo)
    t = _scaled(s.t, ex)
    kinks = _scaled(np.array([k for k, _ in s.kinks]), ex)
    lo, hi = _scaled(np.array([s.line.lo, s.line.hi]), ex)
    gridlines = sorted({0.0, *kinks.tolist()})
    # In colour, Braille dots (2x4 per character); without, one mark per
    # character, a different one per curve, so that f and f' stay apart.
    style = (dict(character_set="braille") if color else
             dict(character_set="ascii", force_ascii_characters=list(MARKS)))

    def inside(lines: list[float], a: float, b: float, cells: int) -> list[float]:
        # uniplot draws a gridline within half a cell of the far edge outside
        # its canvas (an IndexError): those are left out.
        return [g for g in lines if a <= g and (g - a) / (b - a) * cells < cells - 0.5]

    def draw(cols: int, rows: int) -> list[str]:
        with np.errstate(all="ignore"):
            text = plot_to_string(
                ys, [t, t], width=cols, height=rows, lines=True, color=color,
                legend_labels=["f", derivative_label(s.line)], **style,
                x_min=lo, x_max=hi, y_min=y_lo, y_max=y_hi, title=title,
                x_gridlines=inside(gridlines, lo, hi, cols),
                y_gridlines=inside([0.0], y_lo, y_hi, rows))
        return text.rstrip("\n").split("\n") + ([kink_line] if kink_line else [])

    # uniplot's frame: title, top, the canvas rows, bottom, x labels, legend;
    # the tick labels' width is known once drawn: draw, measure, draw again.
    cols, rows = width - 10, height - 5 - (1 if kink_line else 0)
    for _ in range(4):
        lines = draw(cols, rows)
        wide = max(_visible_len(ln) for ln in lines) - width
        tall = len(lines) - height
        if -3 <= wide <= 0 and tall <= 0 or cols <= 4 and rows <= 3:
            break
        cols, rows = max(4, cols - wide), max(3, rows - max(tall, 0))
    return "\n".join(ln.rstrip() for ln in lines) + "\n"


def _broken(s: Samples) -> np.ndarray:
    """The derivative to draw: nan (a gap) where it is not finite and at the
    kinks, whose one-sided derivatives differ: no line joins the two sides."""
    at = np.isin(s.t, [t for t, _ in s.kinks])
    return np.where(np.isfinite(s.derivative) & ~at, s.derivative, np.nan)


def _exponent(big: float) -> int:
    """A power of ten (a multiple of 3) that keeps tick labels of numbers up to
    ``big`` in size short, or 0.

    >>> _exponent(3e21), _exponent(0.5), _exponent(2e-9)
    (21, 0, -9)
    """
    if big == 0 or 1e-2 <= big < 1e5:
        return 0
    return 3 * math.floor(math.log10(big) / 3)


def _scaled(a: np.ndarray, e: int) -> np.ndarray:
    """``a / 10**e`` in two steps, neither of which overflows (e reaches -324)."""
    half = e // 2
    return np.asarray(a, dtype=np.float64) * 10.0 ** -half * 10.0 ** -(e - half)


_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _visible_len(text: str) -> int:
    return len(_ESCAPE.sub("", text))


def _kink_line(s: Samples, width: int) -> str:
    if not s.kinks:
        return ""
    at = list(dict.fromkeys(f"{t:g}" for t, _ in s.kinks))
    text = f"kink at {s.line.axis} = {', '.join(at)} (vertical lines)"
    return text if len(text) <= width else text[: width - 1] + "…"


def figure_class(path: str):
    """matplotlib's Figure, for writing ``path``: its type checked, and a clear
    error (exit 2) naming the extra that installs matplotlib when it is missing.
    Called before sampling, so that neither costs a wasted run."""
    import os

    ext = os.path.splitext(path)[1].lower()
    if ext not in FILE_TYPES:
        raise UsageError(f"--output {path}: the file type must be one of "
                         f"{', '.join(FILE_TYPES)}")
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise UsageError(f"--output {path} needs matplotlib, which is not installed",
                         hint=EXTRA_HINT) from exc
    return Figure


def figure(s: Samples, title: str, path: str, figure_class) -> None:
    """Write the plot to ``path`` (.svg, .png or .pdf) with matplotlib: f solid,
    its derivative dashed (broken at kinks), kinks as dotted vertical lines,
    gaps where a value is not finite. No pyplot: no global state, no display backend."""
    fig = figure_class(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    with np.errstate(all="ignore"):
        f = np.where(np.isfinite(s.f), s.f, np.nan)
    ax.plot(s.t, f, label="f", linewidth=1.6)
    ax.plot(s.t, _broken(s), label=derivative_label(s.line), linewidth=1.6,
            linestyle="--")
    for k, t in enumerate(dict.fromkeys(t for t, _ in s.kinks)):
        ax.axvline(t, color="0.5", linewidth=0.8, linestyle=":",
                   label="kink" if k == 0 else None)
    ax.axhline(0.0, color="0.8", linewidth=0.6, zorder=0)
    ax.set_xlim(s.line.lo, s.line.hi)
    ax.set_xlabel(s.line.axis)
    ax.set_title(title)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write: {exc.strerror or exc}") from exc
