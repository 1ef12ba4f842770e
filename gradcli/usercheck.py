"""Check the user's own derivative code: ``gradcli check FILE:f --grad FILE:df``.

The user's ``df`` takes the same arguments as ``f`` (as numpy arrays) and returns
the derivative: for a gradient or a Jacobian, one array for a single
differentiated input, or a tuple in ``--wrt`` order, or a dict by name; for a
Hessian, one array for a single input, or blocks by pair (a dict keyed
``(a, b)``, ``"a,b"`` or ``{a: {b: ...}}``, or a tuple of tuples in ``--wrt``
order; a block missing beside its mirror is the mirror transposed).

Three answers are compared per component (``check.compare_user``): the user's,
the engine's and central finite differences; where they disagree, the odd one
out is named. A function the engine cannot differentiate (a numpy function
without a rule, a cut graph) is still checked against finite differences of
the function run on plain numpy arrays.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EvaluationError, UsageError
from .loader import Loaded, describe, load, user_code, user_frame

KINDS = {"gradient": "--grad", "jacobian": "--jacobian", "hessian": "--hessian"}


@dataclass(frozen=True)
class UserDerivative:
    kind: str  # gradient, jacobian or hessian
    loaded: Loaded

    @property
    def label(self) -> str:
        return f"{self.loaded.path}:{self.loaded.name}"


def load_derivative(spec: str, kind: str, names: list[str]) -> UserDerivative:
    """``FILE.py:NAME`` (or a file with one function) for ``kind``; it must take
    the inputs ``names`` (as ``f`` does) and require no others."""
    option = KINDS[kind]
    if not spec.split(":")[0].endswith(".py"):
        raise UsageError(f"{option} {spec!r}: expected a function file FILE.py:NAME")
    try:
        loaded = load(spec)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}", hint=exc.hint) from exc
    params = set(loaded.required) | set(loaded.optional)
    missing = [n for n in names if n not in params]
    extra = [n for n in loaded.required if n not in names]
    if missing or extra:
        takes = ", ".join(loaded.required + loaded.optional) or "nothing"
        why = (f"it does not take input {missing[0]!r}" if missing
               else f"it requires {extra[0]!r}, which is not an input")
        raise UsageError(
            f"{option} {loaded.name}: {why}; it takes ({takes}), the inputs are "
            f"({', '.join(names)})",
            hint="the derivative takes the same arguments as the function")
    return UserDerivative(kind, loaded)


class _OutOfTime(BaseException):
    """Raised in user code by ``_bounded``'s timer (a BaseException, so that an
    ``except Exception`` in the user's code does not swallow it)."""


@contextlib.contextmanager
def _bounded(seconds: float | None, what: str):
    """Run the body for at most ``seconds``: past them, an EvaluationError
    "WHAT did not return within the --check-timeout". A SIGALRM timer
    (``signal.setitimer``), so POSIX and the main thread only; elsewhere (Windows,
    a worker thread) the body is not bounded. The timer fires again every half
    second until the body gives up (user code that catches the first), and is
    always cancelled, the previous handler restored, however the body ends
    (Ctrl-C's KeyboardInterrupt passes through untouched)."""
    import signal
    import threading

    if (seconds is None or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def alarm(signum, frame):
        raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 1e-3), 0.5)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _OutOfTime:
        raise EvaluationError(f"{what} did not return within the --check-timeout of "
                              f"{seconds:g} s") from None
    finally:
        signal.signal(signal.SIGALRM, previous)


def call_derivative(d: UserDerivative, point: Mapping[str, np.ndarray], wrt: list[str],
                    out_shape: tuple | None = None,
                    timeout: float | None = None) -> dict[str, np.ndarray]:
    """The user's derivative at ``point``, as blocks by input (``"a,b"`` for a
    Hessian). Its failures, and answers that are not arrays of real numbers, are
    EvaluationErrors naming the function; so is not returning within
    ``timeout`` seconds."""
    fn = d.loaded
    where = f"{os.path.basename(fn.path)}: {fn.name}()"
    args = {n: np.array(a, copy=True) for n, a in point.items()}
    try:
        with _bounded(timeout, where), user_code(), np.errstate(all="ignore"):
            out = fn.func(**args)
    except (KeyboardInterrupt, EvaluationError):
        raise
    except BaseException as exc:  # user code: SystemExit too
        raise EvaluationError(f"{user_frame(exc, fn.path)}: {describe(exc)}") from exc
    if d.kind == "hessian":
        raw = _hessian_blocks(out, wrt, where)
    else:
        raw = _blocks(out, wrt, where)
    return {k: _real(v, where, k) for k, v in raw.items()}


def _blocks(out, wrt: list[str], where: str) -> dict[str, Any]:
    if isinstance(out, Mapping):
        return _by_name(out, wrt, where)
    if len(wrt) == 1:
        return {wrt[0]: out}
    if isinstance(out, (tuple, list)):
        if len(out) != len(wrt):
            raise EvaluationError(
                f"{where} returned {len(out)} arrays; expected {len(wrt)}, one per "
                f"input in --wrt order ({', '.join(wrt)})")
        return dict(zip(wrt, out))
    what = ("one array" if isinstance(out, np.ndarray) or np.isscalar(out)
            and not isinstance(out, (str, bytes)) else _type_of(out))
    raise EvaluationError(
        f"{where} returned {what} for {len(wrt)} inputs; return a tuple in --wrt "
        f"order ({', '.join(wrt)}) or a dict by name")


def _type_of(v) -> str:
    """What the user's function returned, for a message: ``None``, ``a str``,
    ``a generator`` (a generator is not read: it may be endless)."""
    if v is None:
        return "None"
    return f"a {type(v).__name__}"


def _by_name(out: Mapping, wrt: list[str], where: str) -> dict[str, Any]:
    keys = [str(k) for k in out]
    missing = [n for n in wrt if n not in out]
    unknown = [k for k in keys if k not in wrt]
    if missing or unknown:
        why = (f"no entry for {missing[0]!r}" if missing
               else f"an entry {unknown[0]!r} that is not a differentiated input")
        raise EvaluationError(f"{where} returned a dict with {why} (expected keys: "
                              f"{', '.join(wrt)})")
    return {n: out[n] for n in wrt}


def _hessian_blocks(out, wrt: list[str], where: str) -> dict[str, Any]:
    if len(wrt) == 1 and not isinstance(out, (Mapping, tuple, list)):
        return {f"{wrt[0]},{wrt[0]}": out}
    pairs: dict[tuple[str, str], Any] = {}
    if isinstance(out, Mapping):
        for k, v in out.items():
            if isinstance(v, Mapping):
                pairs.update(((k, b), w) for b, w in v.items())
            elif isinstance(k, tuple) and len(k) == 2:
                pairs[k] = v
            elif isinstance(k, str) and k.count(",") == 1:
                pairs[tuple(s.strip() for s in k.split(","))] = v
            elif len(wrt) == 1 and k == wrt[0]:
                pairs[(k, k)] = v
            else:
                raise EvaluationError(f"{where} returned a Hessian block keyed {k!r}; "
                                      "key blocks (a, b), \"a,b\" or {a: {b: ...}}")
    elif isinstance(out, (tuple, list)) and len(wrt) > 1:
        if len(out) != len(wrt) or not all(isinstance(r, (tuple, list))
                                          and len(r) == len(wrt) for r in out):
            raise EvaluationError(f"{where} returned a Hessian that is not "
                                  f"{len(wrt)} rows of {len(wrt)} blocks (--wrt order)")
        pairs = {(a, b): out[i][j] for i, a in enumerate(wrt) for j, b in enumerate(wrt)}
    else:
        return {f"{wrt[0]},{wrt[0]}": out}
    blocks = {}
    for a in wrt:
        for b in wrt:
            if (a, b) in pairs:
                blocks[f"{a},{b}"] = pairs[(a, b)]
            elif (b, a) in pairs:  # the mirror block, transposed
                m = np.asarray(pairs[(b, a)], dtype=np.float64)
                nb = m.ndim - _ndim_hint(pairs, b)
                blocks[f"{a},{b}"] = np.moveaxis(m, list(range(nb)),
                                                 list(range(m.ndim - nb, m.ndim)))
            else:
                raise EvaluationError(f"{where} returned no Hessian block for ({a}, {b})")
    unknown = [p for p in pairs if p[0] not in wrt or p[1] not in wrt]
    if unknown:
        raise EvaluationError(f"{where} returned a Hessian block for {unknown[0]}, "
                              f"not a pair of differentiated inputs ({', '.join(wrt)})")
    return blocks


def _ndim_hint(pairs, b) -> int:
    """The number of dimensions of input ``b``, read from its diagonal block."""
    diag = pairs.get((b, b))
    return np.ndim(diag) // 2 if diag is not None else 0


def _real(v, where: str, block: str) -> np.ndarray:
    data = getattr(v, "_data", v)  # a gradcli Tensor: its array
    try:
        a = np.asarray(data)
    except Exception as exc:
        raise EvaluationError(f"{where} returned {type(v).__name__} for {block}; "
                              "return real numbers") from exc
    if a.dtype.kind not in "iuf":
        what = type(v).__name__ if a.ndim == 0 else f"an array of {a.dtype}"
        raise EvaluationError(f"{where} returned {what} for {block}; return real numbers")
    return a.astype(np.float64)


# -- one point ----------------------------------------------------------------------
def check_point(tgt, d: UserDerivative, inputs: dict[str, np.ndarray], wrt: list[str], *,
                rtol: float = 1e-8, atol: float | None = None, timeout: float = 10.0,
                max_elements: int, strict: bool = False, thorough: bool = True,
                engine_result=None):
    """``(check.UserCheckReport, the engine's Result or None, f's value)`` at one
    point. ``thorough``: finite differences in every component; else (many
    points, a gradient the engine computed) along a few random directions, to
    confirm the engine, and per component only where yours differs from it.
    ``engine_result``: for a gradient, ``compute.evaluate(tgt, inputs, wrt=wrt,
    max_elements=max_elements)`` already computed (by the kink test of random
    points), not computed again."""
    from . import check
    from .compute import evaluate, hessian, jacobian, kinks

    kind = d.kind
    engine, missing, result, value = None, None, None, None
    try:
        if kind == "gradient":
            result = (engine_result if engine_result is not None else
                      evaluate(tgt, inputs, wrt=wrt, max_elements=max_elements))
            engine, value = dict(result.grads), result.value
            cut = [w for w in result.warnings if "no recorded operation uses" in w]
            if cut:
                engine, missing = None, cut[0].split(";")[0]
            out = result.output
        else:
            der = (jacobian if kind == "jacobian" else hessian)(
                tgt, inputs, wrt=wrt, max_elements=max_elements)
            value, out = der.value, der.recorded.output
            engine = (der.blocks if kind == "jacobian" else
                      {f"{a},{b}": blk for a, row in der.blocks.items()
                       for b, blk in row.items()})
        # evaluate() found the kinks of a gradient it computed
        found_kinks = list(result.notes) if kind == "gradient" else kinks(out)
    except EvaluationError as exc:
        if tgt.loaded is None:
            if kind == "gradient" and "not a single number" in str(exc):
                # evaluate()'s hint (--grad-output) does not go with --grad
                raise EvaluationError(
                    f"{str(exc).split(':')[0]}: it has no gradient",
                    hint="check a vector function's derivative with --jacobian "
                    "FILE.py:NAME") from exc
            raise
        missing, found_kinks = str(exc), []
        value = None
    f_value = _forward(tgt, inputs, value, max_elements)
    if value is None:
        with user_code(), np.errstate(all="ignore"):
            value = np.asarray(f_value(inputs), dtype=np.float64)
    if kind in ("gradient", "hessian") and value.size != 1:
        raise EvaluationError(
            f"the function's value has shape {value.shape}, not a single number: it has "
            f"no {kind}", hint="check a vector function's derivative with --jacobian")
    user = call_derivative(d, inputs, wrt, timeout=timeout)
    notes: list[str] = []
    grad_value = None
    f_value = _holding(f_value, inputs, wrt)
    if kind == "hessian":
        if engine is None:
            raise EvaluationError(
                f"--hessian: the engine cannot differentiate the function ({missing}), "
                "and finite differences of a Hessian difference the engine's gradient")

        def grad_value(point):
            return evaluate(tgt, point, wrt=wrt, max_elements=max_elements).grads

        grad_value = _holding(grad_value, inputs, wrt)

    with np.errstate(all="ignore"), warnings.catch_warnings(), user_code():
        warnings.simplefilter("ignore", RuntimeWarning)
        some, confirmed = None, False
        if not thorough and kind == "gradient" and engine is not None:
            some, confirmed = _where_to_difference(inputs, wrt, user, engine, f_value,
                                                   rtol, atol, timeout, notes)
        fd = check.finite_differences(kind, inputs, wrt, f_value=f_value,
                                      grad_value=grad_value, timeout=timeout, notes=notes,
                                      components=some)
    shapes, split = {}, {}
    for key in user:
        if kind == "gradient":
            shapes[key] = inputs[key].shape
        elif kind == "jacobian":
            shapes[key], split[key] = value.shape + inputs[key].shape, value.ndim
        else:
            a, b = key.split(",")
            shapes[key], split[key] = inputs[a].shape + inputs[b].shape, inputs[a].ndim
    report = check.compare_user(
        kind, inputs, user, engine, fd, function=d.label, expected_shapes=shapes,
        split=split, engine_missing=missing, rtol=rtol, atol=atol,
        kinks=found_kinks, notes=notes, strict=strict, engine_confirmed=confirmed)
    return report, result, value


def _holding(fn, inputs, wrt):
    """``fn`` with every input but ``wrt`` as given: finite differences read
    their inputs as floats, and integer --const data (indices) must stay the
    data the engine and the user's derivative saw."""
    held = {n: a for n, a in inputs.items() if n not in wrt}
    if not held:
        return fn
    return lambda point: fn({**point, **held})


def _where_to_difference(inputs, wrt, user, engine, f_value, rtol, atol, timeout,
                         notes) -> tuple[dict[str, np.ndarray], bool]:
    """Per input, the components finite differences must arbitrate: where yours
    is not clearly the engine's (half the tolerance), or every one when central
    differences along random directions do not confirm the engine; and whether
    they confirmed it for every input."""
    from . import check

    confirmed = check.directional_check(inputs, wrt, f_value, engine, rtol=rtol,
                                        atol=atol, timeout=timeout)
    masks = {}
    for b in wrt:
        u, e = user[b], np.asarray(engine[b], dtype=np.float64)
        if u.shape != e.shape:
            masks[b] = np.zeros(e.shape, dtype=bool)  # reported as a shape mismatch
        elif confirmed[b] is not True:
            masks[b] = np.ones(e.shape, dtype=bool)
            notes.append(f"{b}: finite differences along random directions did not "
                         "confirm the engine's gradient: every component differenced")
        else:
            eps = float(np.finfo(np.float64).eps)
            limit = ((1e-12 if atol is None else atol) + rtol * np.abs(e)
                     + 64 * eps * check._finite_max(e))
            masks[b] = ~(np.abs(u - e) <= limit / 2)
    return masks, all(confirmed[b] is True for b in wrt)


def _forward(tgt, inputs, value, max_elements: int):
    """The function finite differences vary: an expression in numpy (``detach``
    held fixed, as the engine sees it); a function file on plain numpy arrays
    when it runs there and gives the engine's value at the point (much faster
    than the engine's forward pass), else through the engine (``value`` is
    None when the engine could not run it)."""
    from . import check
    from .compute import evaluate

    if tgt.tree is not None:
        return check.expression_function(tgt.tree, inputs)
    if value is None:
        return _plain_function(tgt)
    try:
        plain = _plain(tgt, inputs)
        value = np.asarray(value, dtype=np.float64)
        with np.errstate(all="ignore"):  # np.allclose(rtol=1e-12, atol=0, equal_nan), faster
            same = plain.shape == value.shape and bool(np.all(
                (plain == value) | (np.abs(plain - value) <= 1e-12 * np.abs(value))
                | (np.isnan(plain) & np.isnan(value))))
    except EvaluationError:  # written for Tensors: gradcli methods, gc.* functions
        same = False
    if same:
        return _plain_function(tgt)
    return lambda point: evaluate(tgt, point, no_grad=True,
                                  max_elements=max_elements).value


def _plain(tgt, point):
    """The function file's function on plain numpy arrays (the engine cannot run it)."""
    fn = tgt.loaded
    try:
        with user_code(), np.errstate(all="ignore"):
            out = fn.func(**{n: np.array(a, copy=True) for n, a in point.items()})
    except (KeyboardInterrupt, EvaluationError):
        raise
    except BaseException as exc:
        raise EvaluationError(f"{user_frame(exc, fn.path)}: {describe(exc)}") from exc
    return _real(out, f"{os.path.basename(fn.path)}: {fn.name}()", "its value")


def _plain_function(tgt):
    """``_plain(tgt, point)`` as a function of the point, for finite differences,
    which call it many times: the caller holds ``user_code()`` and
    ``np.errstate(all="ignore")`` around all the calls."""
    fn = tgt.loaded
    func, where = fn.func, f"{os.path.basename(fn.path)}: {fn.name}()"

    def f(point):
        try:
            out = func(**{n: np.array(a, copy=True) for n, a in point.items()})
        except (KeyboardInterrupt, EvaluationError):
            raise
        except BaseException as exc:
            raise EvaluationError(f"{user_frame(exc, fn.path)}: {describe(exc)}") from exc
        return _real(out, where, "its value")

    return f


# -- many points ----------------------------------------------------------------------
SHOW_FAILED = 10  # failing points listed by default (--all: every one)


@dataclass
class PointVerdict:
    """One point's check: ``status`` is a report's, or ``"error"`` (the point could
    not be read or evaluated; ``verdict`` says why)."""

    number: int
    inputs: dict[str, np.ndarray] | None
    passed: bool
    status: str
    verdict: str
    check: dict | None = None  # the report's JSON
    worst: tuple[float, str] | None = None  # (ratio to tolerance, where and values)


@dataclass
class ManyChecks:
    """Checks at many points, made as they are read: what ``render.emit`` writes."""

    what: str  # "random points (seed 42)" or "points of FILE"
    verdicts: Any  # Iterator[PointVerdict]
    seed: int | None = None
    replay: str | None = None  # how to replay point K: a template with {k}
    show_all: bool = False


def verdict_of(number: int, inputs, report=None, failures=()) -> PointVerdict:
    """A point's verdict from a check report (user or engine) and unmet
    ``--expect-*`` failures (``expect.Failure``)."""
    passed, status, texts, worst = True, "pass", [], None
    obj: dict = {}
    if report is not None:
        passed, status = report.passed, report.status
        texts.append(report.verdict())
        obj = report.to_json()
        w = report.worst
        if w is not None and w.ratio > 0 and status != "pass":
            text = w.text() if hasattr(w, "text") else report.verdict()
            worst = (float(w.ratio), f"{w.where}: {text}")
    for f in failures:
        passed, status = False, "fail"
        texts.append(f"{f.what}: expected {_short(f.want)}, got {_short(f.got)}")
        ratio = float("inf") if f.max_diff != f.max_diff else float(f.max_diff)
        if worst is None or ratio > worst[0]:
            worst = (ratio, texts[-1])
    if failures:
        obj = {**obj, "expect": [{"what": f.what, "max_diff": _num(f.max_diff)}
                                 for f in failures]}
    if not texts:
        texts.append("PASS")
    return PointVerdict(number, inputs, passed, status, "; ".join(texts), obj, worst)


def not_finite(number: int, inputs, value) -> PointVerdict | None:
    """A point where f's value is not finite (nan, inf: outside its domain)
    could not be checked: finite differences compare nothing there. Its
    ``"error"`` verdict, or None for a finite value."""
    v = np.asarray(value, dtype=np.float64)
    if np.all(np.isfinite(v)):
        return None
    return PointVerdict(number, inputs, False, "error",
                        f"could not be checked: the value is {_short(v)} (not finite; "
                        "the point may be outside f's domain: see --domain)")


def _short(a) -> str:
    from .values import format_value

    a = np.asarray(a)
    return format_value(a) if a.size <= 10 else f"an array of shape {a.shape}"


def _num(v):
    from .check import _num as num

    return num(v)


def check_rows(rows, check_one) -> Any:
    """Each row (``points.Row``) through ``check_one(number, inputs) ->
    PointVerdict``; a row that could not be read, or whose check raised an
    evaluation or usage error, gets an ``"error"`` verdict."""
    for r in rows:
        if r.inputs is None:
            yield PointVerdict(r.number, None, False, "error", r.error or "unreadable")
            continue
        try:
            yield check_one(r.number, r.inputs)
        except (EvaluationError, UsageError) as exc:
            yield PointVerdict(r.number, r.inputs, False, "error",
                               " ".join(str(exc).split()))


def check_chunks(rows, check_chunk, size: int) -> Any:
    """As ``check_rows``, with ``check_chunk([(number, inputs), ...])`` yielding
    the verdicts of up to ``size`` rows at once; where a chunk raises, its rows
    are checked one at a time, so that only the row at fault gets the error."""
    import itertools

    rows = iter(rows)
    while chunk := list(itertools.islice(rows, size)):
        good = [(r.number, r.inputs) for r in chunk if r.inputs is not None]
        try:
            done = {v.number: v for v in check_chunk(good)}
        except (EvaluationError, UsageError):
            done = {}
        for r in chunk:
            if r.number in done:
                yield done[r.number]
            else:
                yield from check_rows([r], lambda n, i: next(iter(check_chunk([(n, i)]))))
