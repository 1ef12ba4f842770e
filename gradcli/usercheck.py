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

At many points, a gradient check takes chunks of rows in one call of ``f`` and
``df`` where both are vectorised over a leading batch axis (``GradientBatches``,
``check_batched``); every row a batch does not pass is checked alone, so the
verdicts are those of one point at a time.
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
        kinks=found_kinks, notes=notes, strict=strict, engine_confirmed=confirmed,
        one_sided=_one_sided(kind, inputs, f_value, grad_value, split),
        along=_along(inputs, f_value) if kind == "gradient" else None,
        jumps=_jumps(inputs, f_value) if kind == "gradient" else None,
        pieces=(_pieces(tgt, inputs, wrt, max_elements, engine)
                if kind == "gradient" and engine is not None else None))
    return report, result, value


def _jumps(inputs, f_value):
    """``(block, index) -> bool``: whether f jumps along that component at the
    point (a step, sign at 0): its one-sided change does not shrink with the
    step (at h/16 still more than half of that at h, h = sqrt(eps) max(1, |x|);
    a kink or a smooth f gives 1/16), and is well above rounding."""
    def jumps(block: str, index: tuple) -> bool:
        x = np.asarray(inputs[block], dtype=np.float64)
        h = float(np.sqrt(np.finfo(np.float64).eps)) * max(1.0, abs(float(x[index])))
        try:
            with np.errstate(all="ignore"), user_code():
                def at(t):
                    moved = np.array(x, copy=True)
                    moved[index] += t
                    return float(np.asarray(f_value({**inputs, block: moved}),
                                            dtype=np.float64))
                f0 = at(0.0)
                noise = 1e3 * np.finfo(np.float64).eps * max(1.0, abs(f0))
                for t in (h, -h):
                    far, near = abs(at(t) - f0), abs(at(t / 16) - f0)
                    if np.isfinite(far) and far > noise and near > 0.5 * far:
                        return True
        except Exception:  # user code one step away: no excuse from here
            return False
        return False

    return jumps


PIECE_STEP = 1e-7  # relative step to the points whose gradients are the pieces'


def _pieces(tgt, inputs, wrt, max_elements: int, engine):
    """``masks -> [gradient, ...]``: the engine's gradient at the point and at
    points a relative 1e-7 beside it, one step each way along each masked
    component (at most 8) and along 4 seeded random directions: the gradients
    of the pieces of f that meet at the kink (their convex hull holds every
    answer a convention can give)."""
    from .compute import evaluate

    def pieces(masks):
        rng = np.random.default_rng(0)
        base = {n: np.asarray(inputs[n], dtype=np.float64) for n in wrt}
        steps = []
        for b, m in masks.items():
            for i in [tuple(int(v) for v in i) for i in np.argwhere(m)][:8]:
                for sign in (1.0, -1.0):
                    d = {n: np.zeros_like(x) for n, x in base.items()}
                    d[b][i] = sign
                    steps.append(d)
        for _ in range(4):
            d = {n: rng.standard_normal(x.shape) for n, x in base.items()}
            steps += [d, {n: -v for n, v in d.items()}]
        got = [{n: np.asarray(engine[n], dtype=np.float64) for n in wrt}]
        for d in steps:
            point = {**inputs, **{n: x + PIECE_STEP * np.maximum(1.0, np.abs(x)) * d[n]
                                  for n, x in base.items()}}
            try:
                with np.errstate(all="ignore"):
                    g = evaluate(tgt, point, wrt=list(wrt), max_elements=max_elements).grads
            except Exception:  # outside the domain there, say: no piece from here
                continue
            g = {n: np.asarray(g[n], dtype=np.float64) for n in wrt}
            if all(np.isfinite(v).all() for v in g.values()):
                got.append(g)
        return got

    return pieces


def _along(inputs, f_value):
    """``direction -> (forward, backward)``: f's one-sided directional
    derivatives along a unit ``direction`` (a dict by input; step sqrt(eps)),
    or None where f cannot be evaluated there."""
    def along(direction):
        h = float(np.sqrt(np.finfo(np.float64).eps)) * max(
            1.0, max(float(np.max(np.abs(inputs[b]), initial=0.0)) for b in direction))
        moved = [{**inputs, **{b: np.asarray(inputs[b], dtype=np.float64) + c * h * v
                               for b, v in direction.items()}} for c in (1.0, -1.0)]
        try:
            with np.errstate(all="ignore"), user_code():
                f0 = float(np.asarray(f_value(dict(inputs)), dtype=np.float64))
                fu, fd = (float(np.asarray(f_value(m), dtype=np.float64)) for m in moved)
        except Exception:  # user code one step away: no verdict from here
            return None
        return (fu - f0) / h, (f0 - fd) / h

    return along


def _one_sided(kind: str, inputs, f_value, grad_value, split):
    """``(block, index) -> (forward, backward)`` one-sided differences of the
    component ``index`` of ``block`` (step sqrt(eps) * max(1, |x|)), for
    judging an answer at a kink: of f for a gradient, of f's output element
    for a Jacobian, of the gradient's element for a Hessian. Each perturbed
    evaluation is made once (cached per perturbed input component)."""
    cache: dict = {}

    def at(b: str, j: tuple, point):
        if kind == "hessian":
            return np.asarray(grad_value(point)[b], dtype=np.float64)
        return np.asarray(f_value(point), dtype=np.float64)

    def differences(b: str, j: tuple, a: str):
        key = (b, j, a)
        if key not in cache:
            x = inputs[b]
            dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
            h = float(np.sqrt(np.finfo(dtype).eps)) * max(1.0, abs(float(x[j])))
            up, down = np.array(x, dtype=dtype), np.array(x, dtype=dtype)
            up[j] += h
            down[j] -= h
            hu = float(up[j]) - float(x[j])  # the steps as represented
            hd = float(x[j]) - float(down[j])
            with np.errstate(all="ignore"), user_code():
                f0 = at(a, j, dict(inputs))
                fu = at(a, j, {**inputs, b: up})
                fd = at(a, j, {**inputs, b: down})
                cache[key] = ((fu - f0) / hu, (f0 - fd) / hd) if hu > 0 and hd > 0 else None
        return cache[key]

    def one_sided(block: str, index: tuple):
        try:
            if kind == "gradient":
                got = differences(block, index, block)
                return None if got is None else (float(got[0]), float(got[1]))
            n = split.get(block, 0)
            if kind == "jacobian":
                got = differences(block, index[n:], block)
                return None if got is None else (float(got[0][index[:n]]),
                                                 float(got[1][index[:n]]))
            a, b = block.split(",")
            got = differences(b, index[n:], a)
            return None if got is None else (float(got[0][index[:n]]),
                                             float(got[1][index[:n]]))
        except Exception:  # user code one step away (a domain error): not excused
            return None

    return one_sided


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
    drawn: tuple[str, ...] | None = None  # the inputs a point line shows (None: all)


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


# -- many points in batches -----------------------------------------------------------
# `check FILE:f --grad FILE:df` at many points: where f and df are vectorised over a
# leading batch axis (each differentiated input stacked along a new axis 0, the other
# inputs as given), a chunk of rows is checked with one call of f per finite
# difference and one of df, instead of one per row. Whether they are is decided per
# run, on a first small chunk (the probe); a row the batch does not pass with a
# margin is checked alone, as without batching, so the batch can only make a run
# faster, never change a verdict.
PROBE = 8  # rows in the first chunk, which decides whether the run batches
_TIGHT = 1e-9  # a row of a batch against the same row alone, relative to the block
_MARGIN = 2  # a row passes in a batch only this far inside each tolerance


class _NoBatch(Exception):
    """This chunk is checked one row at a time; ``fatal``: and so is the rest of
    the run (the functions are not vectorised, or not safely)."""

    def __init__(self, why: str, fatal: bool = True) -> None:
        super().__init__(why)
        self.fatal = fatal


@contextlib.contextmanager
def _warnings_are_errors():
    """In a batch, a warning from user code (a deprecated call, a ragged array)
    is a reason to check the rows one at a time; numpy's floating-point
    RuntimeWarnings are results there as everywhere."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _same(a, b) -> bool:
    """``a`` and ``b`` (a batch's row and the row alone) agree to ``_TIGHT``
    relative to the largest number of ``b``; both finite."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return bool(np.all(np.abs(a - b) <= _TIGHT * (np.abs(b) + scale)))


@dataclass
class GradientBatches:
    """Rows of a gradient check, a chunk at a time: ``check(rows)`` gives the
    verdicts of the rows the chunk passes; the caller checks the others alone.
    ``state``: ``"probe"`` until a chunk has batched, then ``"on"``; ``"off"``
    (``why``) once the functions turned out not to batch."""

    tgt: Any
    d: UserDerivative
    wrt: list[str]
    rtol: float = 1e-8
    atol: float | None = None
    timeout: float | None = 10.0
    max_elements: int = 10_000_000
    strict: bool = False
    size: int = PROBE  # rows in the next chunk
    state: str = "probe"
    why: str | None = None
    batched: int = 0  # rows whose verdict a batch gave

    def check(self, rows: list[tuple[int, dict[str, np.ndarray]]]) -> dict[int, PointVerdict]:
        """Verdicts by row number of the rows this chunk passes (each with the
        report checking it alone would give); ``{}`` when the chunk cannot be
        batched (``state`` and ``why`` say whether the rest can)."""
        if self.state == "off":
            return {}
        try:
            done = self._check(rows)
        except _NoBatch as exc:
            if exc.fatal:
                self.state, self.why = "off", str(exc)
            return {}
        except Exception as exc:  # user code in a batch: anything; the rows alone decide
            self.state, self.why = "off", " ".join(str(exc).split()) or type(exc).__name__
            return {}
        self.batched += len(done)
        if 4 * len(done) < len(rows):  # a wrong df, most likely: batches do not pay
            self.state, self.why = "off", f"{len(done)} of {len(rows)} rows passed in a batch"
        return done

    def _check(self, rows) -> dict[int, PointVerdict]:
        from . import check
        from .compute import DEFAULT_MAX_ELEMENTS, evaluate
        from .engine import graph

        wrt, tgt = self.wrt, self.tgt
        if len(rows) < 2:
            raise _NoBatch("fewer than two rows", fatal=False)
        first = rows[0][1]
        held = [n for n in first if n not in wrt]
        for _, inp in rows:
            if list(inp) != list(first):
                raise _NoBatch("the rows name different inputs", fatal=False)
            for n in wrt:
                if inp[n].shape != first[n].shape or inp[n].dtype != first[n].dtype:
                    raise _NoBatch(f"input {n} changes shape or dtype", fatal=False)
            for n in held:  # constants are given once, not stacked
                if inp[n] is not first[n] and not (
                        inp[n].dtype == first[n].dtype and np.array_equal(inp[n], first[n])):
                    raise _NoBatch(f"input {n} is not differentiated and varies",
                                   fatal=False)
        B = len(rows)
        limit = self.max_elements or DEFAULT_MAX_ELEMENTS
        if sum(B * first[n].size for n in wrt) > limit:
            raise _NoBatch("the stacked inputs are too large", fatal=False)
        point = {n: (np.stack([inp[n] for _, inp in rows]) if n in wrt else first[n])
                 for n in first}
        lead = {n: (B,) + (1,) * first[n].ndim for n in wrt}
        fn = tgt.loaded
        where = f"{os.path.basename(fn.path)}: {fn.name}()"
        plain = _plain_function(tgt)

        def f(p):
            with _bounded(self.timeout, where), _warnings_are_errors(), \
                    user_code(), np.errstate(all="ignore"):
                out = plain(p)
            if out.shape != (B,):
                raise _NoBatch(f"f returned shape {out.shape} for {B} rows")
            return out

        # The engine: the batched f, with the gradient of the sum of its rows.
        with _bounded(self.timeout, where), _warnings_are_errors():
            res = evaluate(tgt, point, wrt=wrt, grad_output="ones",
                           max_elements=self.max_elements)
        value = np.asarray(res.value)
        if value.shape != (B,):
            raise _NoBatch(f"f returned shape {value.shape} for {B} rows")
        if any("no recorded operation uses" in w for w in res.warnings):
            raise _NoBatch("the engine cannot differentiate f")
        if res.notes:  # a kink somewhere: which rows, the rows alone say
            raise _NoBatch("a kink in the chunk", fatal=False)
        engine = {n: np.asarray(res.grads[n], dtype=np.float64) for n in wrt}
        finite = np.isfinite(value)
        for n in wrt:
            finite &= np.all(np.isfinite(engine[n]).reshape(B, -1), axis=1)
        if not finite.any():
            raise _NoBatch("no finite row", fatal=False)
        # Rows are independent (row i of f reads row i of the inputs alone) when
        # the gradient of sum_i u_i f_i is u_i times row i's, for random u.
        u = np.random.default_rng(0).uniform(0.5, 2.0, B)
        for leaf in res.leaves.values():
            leaf.grad = None
        with _bounded(self.timeout, where), np.errstate(all="ignore"):
            res.output.backward(gradient=u.astype(value.dtype), retain_graph=False)
        for n in wrt:
            g = res.leaves[n].grad
            got = None if g is None else np.asarray(g._data, dtype=np.float64)
            if got is None or not _same(got[finite], (u.reshape(lead[n]) * engine[n])[finite]):
                raise _NoBatch("the rows of f are not independent")
        if self.state == "probe":
            # Memory: the chunk's recorded graph, per row (constants counted per
            # row too: an upper bound), sizes the chunks to come.
            nodes = graph.topological_order(res.output._grad_fn)
            held_elements = sum(np.size(getattr(a, "_data", a))
                                for node in nodes for a in (node.args or ()))
            per_row = max(1, held_elements // B)
        del res
        plain_value = f(point)
        with np.errstate(all="ignore"):
            if not np.all((plain_value == value) | (np.abs(plain_value - value)
                                                    <= 1e-12 * np.abs(value))
                          | ~finite):
                raise _NoBatch("f on numpy arrays is not the engine's f")
        with _warnings_are_errors():
            user = call_derivative(self.d, point, wrt, timeout=self.timeout)
        for n in wrt:
            if user[n].shape != (B,) + first[n].shape:
                raise _NoBatch(f"df returned shape {user[n].shape} for {n} of {B} rows")
        # The first and last rows (and the middle one) alone: the same numbers.
        import time

        for i in sorted({0, B // 2, B - 1}):
            inp = rows[i][1]
            if not finite[i]:
                continue
            alone = evaluate(tgt, inp, wrt=wrt, max_elements=self.max_elements)
            start = time.perf_counter()
            mine = call_derivative(self.d, inp, wrt, timeout=self.timeout)
            df_took = time.perf_counter() - start
            with user_code(), np.errstate(all="ignore"):
                f_alone = plain(inp)
            f_took = time.perf_counter() - df_took - start
            # A point alone near its time budget (df's call, or the 4 calls of
            # f per random direction) may run out of it, which a batch would
            # not show: such points are checked alone.
            if self.timeout is not None and max(
                    df_took, 4 * check.DIRECTIONS * len(wrt) * f_took) > self.timeout / 4:
                raise _NoBatch("a point alone takes a good part of the --check-timeout")
            if not (_same(value[i], alone.value) and _same(plain_value[i], f_alone)
                    and all(_same(engine[n][i], alone.grads[n]) and
                            _same(user[n][i], mine[n]) for n in wrt)):
                raise _NoBatch("a row in the batch differs from the row alone")

        # Finite differences along random directions, every row at once: those
        # of check.directional_check (the same directions, steps and rounding),
        # each row confirmed only with a margin.
        tol = check._tolerance({n: first[n] for n in wrt}, self.rtol, self.atol, [])
        rng = np.random.default_rng(0)
        confirmed = finite.copy()
        for b in wrt:
            x0 = point[b]
            dtype = x0.dtype if x0.dtype.kind == "f" else np.dtype(np.float64)
            eps = float(np.finfo(dtype).eps)
            step = eps ** (1 / 3)
            x64 = x0.astype(np.float64)
            scale = np.maximum(1.0, np.abs(x64))
            axes = tuple(range(1, x0.ndim))
            for _ in range(check.DIRECTIONS):
                z = rng.standard_normal(first[b].shape)
                v = z * scale
                t = step / np.max(np.abs(z))
                h = t / 2
                xs = [(x64 + c * v).astype(dtype, copy=False) for c in (t, -t, h, -h)]
                x4 = [x.astype(np.float64, copy=False) for x in xs]
                w1 = (x4[0] - x4[1]) / 2 / t
                w2 = (x4[2] - x4[3]) / 2 / h
                direction = (4 * w2 - w1) / 3
                fp, fm, fp2, fm2 = (f({**point, b: x}) for x in xs)
                with np.errstate(all="ignore"):
                    d1, d2 = (fp - fm) / (2 * t), (fp2 - fm2) / (2 * h)
                    s = np.max(np.where(np.isfinite([fp, fm, fp2, fm2]),
                                        np.abs([fp, fm, fp2, fm2]), 0.0), axis=0)
                    ref = (4 * d2 - d1) / 3
                    err = np.abs(d2 - d1) + 3 * eps * s / t
                    e = engine[b]
                    got = np.sum(direction * e, axis=axes) if axes else direction * e
                    mag = (np.sum(np.abs(direction) * np.abs(e), axis=axes) if axes
                           else np.abs(direction) * np.abs(e))
                    vsum = np.sum(np.abs(direction), axis=axes) if axes else np.abs(direction)
                    bound = (tol.atol * vsum + tol.rtol * np.abs(ref)
                             + check._ROUNDOFF * tol.eps * mag + 2 * err)
                    confirmed &= np.isfinite(ref) & np.isfinite(got) & (
                        np.abs(got - ref) <= bound / _MARGIN)
        # Yours against the engine's: the components _where_to_difference would
        # leave undifferenced (within half the tolerance), with the margin.
        eps64 = float(np.finfo(np.float64).eps)
        atol = 1e-12 if self.atol is None else self.atol
        for b in wrt:
            e, y = engine[b].reshape(B, -1), user[b].reshape(B, -1)
            with np.errstate(all="ignore"):
                big = np.max(np.where(np.isfinite(e), np.abs(e), 0.0), axis=1,
                             initial=0.0)[:, None]
                bound = atol + self.rtol * np.abs(e) + 64 * eps64 * big
                confirmed &= np.all(np.abs(y - e) <= bound / 2 / _MARGIN, axis=1)

        done = {}
        shapes = {b: first[b].shape for b in wrt}
        for i in np.flatnonzero(confirmed).tolist():
            number, inp = rows[i]
            report = check.compare_user(
                "gradient", inp, {b: user[b][i] for b in wrt},
                {b: engine[b][i] for b in wrt}, {}, function=self.d.label,
                expected_shapes=shapes, split={}, rtol=self.rtol, atol=self.atol,
                strict=self.strict, engine_confirmed=True)
            if report.status == "pass":
                done[number] = verdict_of(number, inp, report)
        if self.state == "probe":
            from .points import CHUNK

            self.state = "on"
            self.size = max(2, min(CHUNK, limit // per_row))
        return done


def check_batched(rows, batches: GradientBatches, alone, redraw=None, rest=None) -> Any:
    """The verdicts of ``rows`` (``points.Row``, in order): a chunk of
    ``batches.size`` rows at a time through ``batches``, and each row it does
    not pass through ``alone(rows) -> verdicts`` (``check_rows``), after
    ``redraw(rows)`` (random points: drawn again as checking one at a time
    draws them, with its kink test; by default the rows as they are). Once
    ``batches`` is off, the rows from number K on are ``rest(K)`` (random
    points: drawn as one at a time draws them), by default the rest of ``rows``."""
    import itertools

    rows = iter(rows)
    redraw = redraw or (lambda rs: rs)
    while batches.state != "off" and (chunk := list(itertools.islice(rows, batches.size))):
        good = [(r.number, r.inputs) for r in chunk if r.inputs is not None]
        done = batches.check(good)
        pending: list = []
        for r in chunk:
            if r.number in done:
                yield from alone(redraw(pending))
                pending = []
                yield done[r.number]
            else:
                pending.append(r)
        yield from alone(redraw(pending))
        if batches.state == "off" and rest is not None:
            yield from alone(rest(chunk[-1].number + 1))
            return
    yield from alone(rows)
