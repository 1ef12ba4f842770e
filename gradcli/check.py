"""Cross-check the engine's derivatives against sympy and finite differences.

The engine's gradient is compared with two independent truths:

- **sympy** (``gradcli.symbolic``, imported only when the symbolic part runs): the
  expression rebuilt from the parsed tree, or the graph recorded at the point
  replayed, differentiated exactly and evaluated to 30 digits. It must agree to
  ``rtol``/``atol``.
- **finite differences**: central differences with a step scaled per component
  (``h = eps**(1/3) * max(1, |x_i|)``) and Richardson extrapolation over ``h`` and
  ``h/2``, whose difference is the error estimate, plus rounding (``eps |f| / h``
  with ``|f|`` the largest output, each output's noise read from all its inputs;
  ``eps |f| / h**2`` more for a Hessian). Every component when an input has at
  most ``max_full`` of them; beyond, a few seeded random directions ``v``,
  comparing ``v·∇f`` with the directional difference. They must agree within the
  error estimate plus the tolerance.

At a kink (relu or abs at 0, a tie in max or maximum) the one-sided derivatives
differ, so a disagreement is reported as the kink rather than as a failure (a
user's derivative, ``compare_user``: only between the one-sided derivatives). A
component that no method compared (a nan, a pole, a part skipped) makes the
verdict inconclusive, never a pass. One time budget covers the whole check:
sympy runs in a worker while finite differences run, and a missing sympy
form, or either part out of time, is skipped, saying why.

One entry point, ``check(kind, ...)``, for a gradient, a vector-Jacobian product,
a Jacobian or a Hessian (finite differences of the gradient); it returns a
``CheckReport``. ``run_check``, ``check_jacobian`` and ``check_hessian`` are the
same with the kind in the name.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcli.backends import NumpyBackend, TensorBackend, engine_dtype
from gradcli.engine.graph import enable_grad
from gradcli.engine.tensor import Tensor, get_default_dtype, set_default_dtype
from gradcli.interpret import interpret, replay

__all__ = [
    "DEFAULT_ATOL",
    "CheckReport",
    "Component",
    "Disagreement",
    "InputCheck",
    "UserCheckReport",
    "check",
    "check_hessian",
    "check_jacobian",
    "compare_user",
    "directional_check",
    "expression_function",
    "expression_gradient",
    "expression_kinks",
    "finite_differences",
    "graph_function",
    "graph_kinks",
    "run_check",
]

DEFAULT_ATOL = 1e-12
"""The absolute tolerance when none is given: a floor for components that are 0."""
MAX_FULL = 300  # components per input differenced one by one
DIRECTIONS = 3  # random directions for a larger input
_ROUNDOFF = 64  # engine rounding allowed, in units of eps times the largest component
_CONVERGED = 1e-3  # an FD error estimate this small relative to the value: converged

Inputs = Mapping[str, Any]


# -- the report ---------------------------------------------------------------------
@dataclass
class InputCheck:
    """The comparison for one input (for a Hessian: one block ``"a,b"``)."""

    name: str
    shape: tuple[int, ...]
    fd_method: str  # "all 4 components" or "3 random directions"
    fd_max_error: float | None = None  # max |engine - FD| (directional: per direction)
    fd_error_estimate: float | None = None  # largest FD error estimate
    fd_passed: bool | None = None
    symbolic_max_error: float | None = None  # max |engine - sympy|
    symbolic_passed: bool | None = None
    not_compared: int = 0  # components where a reference was not finite
    unchecked: int = 0  # components no method compared: the verdict is not "pass"

    def to_json(self) -> dict:
        return {
            "shape": list(self.shape),
            "fd_method": self.fd_method,
            "fd_max_error": _num(self.fd_max_error),
            "fd_error_estimate": _num(self.fd_error_estimate),
            "fd_passed": self.fd_passed,
            "symbolic_max_error": _num(self.symbolic_max_error),
            "symbolic_passed": self.symbolic_passed,
            "not_compared": self.not_compared,
            "unchecked": self.unchecked,
        }


@dataclass
class Component:
    """The component furthest from agreement (``ratio`` = error / tolerance)."""

    input: str
    index: tuple[int, ...] | None  # None: along a random direction
    direction: int | None
    engine: float
    fd: float | None
    fd_error: float | None
    symbolic: float | None
    against: str  # "sympy" or "finite differences"
    ratio: float

    @property
    def where(self) -> str:
        if self.index is None:
            return f"{self.input} along random direction {self.direction}"
        if not self.index:
            return self.input
        return f"{self.input}[{', '.join(map(str, self.index))}]"

    def to_json(self) -> dict:
        return {
            "input": self.input,
            "index": None if self.index is None else list(self.index),
            "direction": self.direction,
            "where": self.where,
            "engine": _num(self.engine),
            "fd": _num(self.fd),
            "fd_error": _num(self.fd_error),
            "symbolic": _num(self.symbolic),
            "against": self.against,
            "ratio": _num(self.ratio),
        }


@dataclass
class CheckReport:
    """The verdict and the evidence; ``to_json()`` is the CLI's ``check`` object.

    ``status`` is ``"pass"``, ``"fail"``, ``"kink"`` (the methods disagree, but the
    derivative was taken at a kink) or ``"inconclusive"`` (some component was
    compared by no method: a pole, a nan, a skipped part); ``passed`` is false for
    ``"fail"``, and under ``strict`` for ``"inconclusive"``.
    """

    quantity: str  # "gradient", "vjp", "jacobian" or "hessian"
    passed: bool
    status: str
    inputs: dict[str, InputCheck]
    worst: Component | None
    formulas: dict[str, str]
    symbolic_method: str | None  # "expression", "graph replay" or None (skipped)
    skipped: dict[str, str]  # part -> why, e.g. {"symbolic": "no sympy form for foo"}
    kinks: list[str]
    notes: list[str]
    rtol: float
    atol: float

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "status": self.status,
            "quantity": self.quantity,
            "rtol": self.rtol,
            "atol": self.atol,
            "inputs": {k: v.to_json() for k, v in self.inputs.items()},
            "worst": None if self.worst is None else self.worst.to_json(),
            "formulas": dict(self.formulas),
            "symbolic_method": self.symbolic_method,
            "skipped": [{"part": k, "why": v} for k, v in self.skipped.items()],
            "kinks": list(self.kinks),
            "notes": list(self.notes),
        }

    def lines(self) -> list[str]:
        """Plain-text lines, verdict first, for the table/plain output."""
        out = [self.verdict()]
        for name, c in self.inputs.items():
            if name in self.formulas:
                out.append(f"symbolic  {self.formulas[name]}")
            if c.symbolic_max_error is not None:
                out.append(f"  max |AD - sym| for {name} = {_g(c.symbolic_max_error)}")
            if c.fd_max_error is not None:
                out.append(
                    f"finite differences ({c.fd_method} of {name}): max |AD - FD| = "
                    f"{_g(c.fd_max_error)} "
                    f"(FD error estimate {_g(c.fd_error_estimate)})"
                )
        for part, why in self.skipped.items():
            out.append(f"{part}: skipped: {why}")
        out.extend(f"kink: {k}" for k in self.kinks)
        out.extend(f"note: {n}" for n in self.notes)
        return out

    def verdict(self) -> str:
        if self.status == "pass":
            return "PASS"
        if self.status == "inconclusive":
            n = sum(c.unchecked for c in self.inputs.values())
            total = sum(math.prod(c.shape) for c in self.inputs.values())
            if n >= total:
                return "INCONCLUSIVE: no derivative could be compared"
            return (f"INCONCLUSIVE: {n} of {total} derivative components could not "
                    "be compared")
        w = self.worst
        detail = ""
        if w is not None:
            parts = [f"engine {_v(w.engine)}"]
            if w.fd is not None:
                parts.append(f"finite differences {_v(w.fd)} (± {_g(w.fd_error)})")
            if w.symbolic is not None:
                parts.append(f"sympy {_v(w.symbolic)}")
            detail = f"{w.where}: " + ", ".join(parts)
        if self.status == "kink":
            return f"KINK (not a failure): the derivative was taken at a kink; {detail}"
        return f"FAIL: {detail}"


def _num(v):
    """A float for strict JSON: non-finite numbers as "nan", "inf", "-inf"."""
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _g(v) -> str:
    return "-" if v is None else f"{float(v):.3g}"


def _v(v) -> str:
    return "-" if v is None else f"{float(v):.12g}"


# -- finite differences --------------------------------------------------------------
@dataclass
class _FD:
    """Derivatives of ``F`` with respect to one input.

    ``full``: ``values``/``errors`` of shape ``out.shape + in.shape``. Directions:
    ``(k,) + out.shape``, and ``directions`` ``(k,) + in.shape``, the exact
    effective directions of the Richardson combination (so ``v·∇f`` is compared
    with no error from rounding the perturbed points).
    """

    full: bool
    values: np.ndarray
    errors: np.ndarray
    directions: np.ndarray | None
    failed: int
    done: int | None = None  # set when the time budget ran out: components done
    total: int = 0  # components (directions) to difference


class _OutOfTime(Exception):
    """The check's time budget ran out."""


def _differences(
    F, inputs: dict, name: str, *, max_full: int, directions: int, rng,
    f_scale: float = 0.0, deadline: float | None = None,
) -> _FD:
    """``F``'s derivatives with respect to input ``name``; ``f_scale`` is |f| when
    ``F`` is the gradient of ``f`` (a Hessian), else 0."""
    x0 = inputs[name]
    dtype = x0.dtype if x0.dtype.kind == "f" else np.dtype(np.float64)
    eps = float(np.finfo(dtype).eps)
    step = eps ** (1 / 3)
    failed = 0

    def at(x):
        nonlocal failed
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime
        try:
            with np.errstate(all="ignore"):
                return np.asarray(F({**inputs, name: x}), dtype=np.float64)
        except Exception:  # e.g. a domain error one step away: no estimate here
            failed += 1
            return None

    x64 = x0.astype(np.float64)
    lead = (4,) + (1,) * x0.ndim

    def richardson(v, t):
        """Central differences along v over +-t and +-t/2, extrapolated:
        (value, error estimate, the direction it truly differentiates along)."""
        h = t / 2
        # the four points at once (x - t v is x + (-t) v exactly)
        xs = (x64 + np.array([t, -t, h, -h]).reshape(lead) * v).astype(dtype, copy=False)
        x4 = xs.astype(np.float64, copy=False)
        # the exact displacements / 2t of the rounded points
        w1 = (x4[0] - x4[1]) / 2 / t
        w2 = (x4[2] - x4[3]) / 2 / h
        direction = (4 * w2 - w1) / 3  # what the combination truly differentiates along
        fp, fm, fp2, fm2 = at(xs[0]), at(xs[1]), at(xs[2]), at(xs[3])
        if fp is None or fm is None or fp2 is None or fm2 is None:
            return None, None, direction
        with np.errstate(all="ignore"):
            d1, d2 = (fp - fm) / (2 * t), (fp2 - fm2) / (2 * h)
            # Rounding in one component is relative to the largest the computation
            # handled, not to that component (inv of a large matrix, a Jacobian
            # with large entries): the scale is the largest |f| at any point.
            s = max(_finite_max(fp, fm), _finite_max(fp2, fm2))
            value = (4 * d2 - d1) / 3
            # |D(h/2) - D(h)| is about three times the error of D(h/2), and more
            # than that of the extrapolation; plus the rounding of F over the step
            # (eps |F| / h), and for F a gradient, whose own rounding is eps |f| / h
            # at worst, that over the step again (eps |f| / h^2).
            error = (np.abs(d2 - d1) + 3 * eps * s / t
                     + 3 * eps * f_scale / (t / 2) / (t / 2))  # ** overflows a float
        return value, error, direction

    out_shape = None
    if x0.size <= max_full:
        cols, errs, steps = [], [], []
        done = None
        for i in np.ndindex(x0.shape):
            v = np.zeros(x0.shape)
            v[i] = 1.0
            t = step * max(1.0, abs(float(x0[i])))
            steps.append(t)
            if done is not None:
                value = error = None
                cols.append(value)
                errs.append(error)
                continue
            try:
                value, error = _settled(richardson, v, t, i)
            except _OutOfTime:
                done, value, error = len(cols), None, None
            if value is not None:
                out_shape = value.shape
            cols.append(value)
            errs.append(error)
        values, errors = _stack(cols, errs, out_shape, x0.shape)
        errors = _noise_floor(errors, np.array(steps).reshape(x0.shape))
        # (in..., out...) -> (out..., in...)
        k = x0.ndim
        order = list(range(k, values.ndim)) + list(range(k))
        return _FD(True, values.transpose(order), errors.transpose(order), None, failed,
                   done, x0.size)
    cols, errs, dirs = [], [], []
    scale = np.maximum(1.0, np.abs(x0.astype(np.float64)))
    done = None
    for _ in range(directions):
        z = rng.standard_normal(x0.shape)
        if done is not None:
            break
        try:
            value, error, direction = richardson(z * scale, step / np.max(np.abs(z)))
        except _OutOfTime:
            done = len(cols)
            break
        if value is not None:
            out_shape = value.shape
        cols.append(value)
        errs.append(error)
        dirs.append(direction)
    if not cols:  # not one direction in time: nothing to compare along
        return _FD(False, np.full((0,), np.nan), np.full((0,), np.inf),
                   np.zeros((0,) + x0.shape), failed, done, directions)
    values, errors = _stack(cols, errs, out_shape, (len(cols),))
    return _FD(False, values, errors, np.stack(dirs), failed, done, directions)


SETTLED = 1e-6  # a Richardson error above this (relative) tries smaller steps
SMALLER = (64, 4096, 262144)  # the step divided by these


def _settled(richardson, v, t, i):
    """Component ``i``'s difference (value, error estimate) at step ``t``, and
    where its error estimate is large, at steps ``t/64``, ``t/4096`` and
    ``t/262144`` too,
    each output entry keeping the estimate with the smallest error. A kink
    within the step (abs at -1e-6, t ~ 6e-6) makes D(t) and D(t/2) differ and
    their extrapolation wrong by more than that (-0.39 +- 0.17 for -1); a step
    that no longer reaches it gives -1 to rounding (whose part of the estimate,
    eps |f| / t, grows as the step shrinks, so the pick stays honest)."""
    best = None
    for k in (1,) + SMALLER:
        value, error, direction = richardson(v, t / k)
        if value is None or direction[i] == 0:  # (a step lost in the dtype's rounding)
            break
        # (a unit step in component i: the rounded perturbation may differ from
        # the step in its last bits)
        value, error = value / direction[i], error / abs(direction[i])
        if best is None:
            best = (value, error)
        else:
            better = error < best[1]
            best = (np.where(better, value, best[0]), np.where(better, error, best[1]))
        with np.errstate(all="ignore"):
            if not np.any(best[1] > SETTLED * np.maximum(1.0, np.abs(best[0]))):
                break
    return best if best is not None else (None, None)


NOISE_SAMPLES = 4  # input components from which an output's rounding noise is read


def _noise_floor(errors: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Each output component's rounding noise, read from all the input components.

    The noise of ``f[o]`` is the same whichever input moved, and an ill-conditioned
    computation (inv of a near-singular matrix) amplifies it beyond eps |f|: one
    component's gap |D(h/2) - D(h)| is a single sample of it, and among thousands
    some fall far below the noise. Four times the median over the inputs of
    ``error * step`` (the noise of ``f[o]`` itself) is a floor for every component;
    the median keeps one component near a singularity from raising it.
    """
    n = steps.size
    if n < NOISE_SAMPLES:
        return errors
    flat = errors.reshape((n, -1))
    t = steps.reshape((n, 1))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-nan column
        noise = np.where(np.isfinite(flat), flat * t, np.nan)
        if np.all(np.isnan(noise)):
            return errors
        floor = 4 * np.nanmedian(noise, axis=0, keepdims=True)
        floor = np.where(np.isnan(floor), 0.0, floor)
        return np.maximum(flat, floor / t).reshape(errors.shape)


def _stack(cols, errs, out_shape, lead):
    if out_shape is None:  # every evaluation failed
        out_shape = ()
    nan = np.full(out_shape, np.nan)
    inf = np.full(out_shape, np.inf)
    values = np.stack([nan if c is None else c for c in cols]).reshape(lead + out_shape)
    errors = np.stack([inf if e is None else e for e in errs]).reshape(lead + out_shape)
    return values, errors


# -- comparisons ---------------------------------------------------------------------
@dataclass
class _Tol:
    rtol: float
    atol: float
    eps: float


def _compare(engine, ref, err, scale, tol: _Tol):
    """Per component: (diff, tolerance, comparable)."""
    with np.errstate(all="ignore"):
        comparable = np.isfinite(ref)
        diff = np.where(np.isfinite(engine), np.abs(engine - ref), np.inf)
        limit = (
            tol.atol + tol.rtol * np.abs(ref) + _ROUNDOFF * tol.eps * scale + 2 * err
        )
    return diff, limit, comparable


def _ratio(diff, limit):
    with np.errstate(all="ignore"):
        r = np.where(diff == 0, 0.0, diff / limit)
    return np.where(np.isnan(r), np.inf, r)


def _finite_max(*arrays) -> float:
    best = 0.0
    for a in arrays:
        if type(a) is float or (isinstance(a, np.ndarray) and a.size == 1):
            v = abs(float(a if type(a) is float else a.flat[0]))  # one number: no array work
            if math.isfinite(v):
                best = max(best, v)
            continue
        a = np.abs(np.asarray(a, dtype=np.float64))
        a = a[np.isfinite(a)]
        if a.size:
            best = max(best, float(a.max()))
    return best


def _check_block(key, engine, fd, sym, tol: _Tol, notes):
    """Compare one block; returns (InputCheck, worst Component or None)."""
    engine = np.asarray(engine, dtype=np.float64)
    block = InputCheck(key, engine.shape, "none")
    candidates: list[Component] = []
    scale = _finite_max(engine, sym if sym is not None else 0.0)
    skipped = np.zeros(engine.shape, dtype=bool)  # a reference was not finite
    checked = np.zeros(engine.shape, dtype=bool)  # some method compared it
    if sym is not None:
        sym = np.asarray(sym, dtype=np.float64).reshape(engine.shape)
        diff, limit, compared = _compare(engine, sym, 0.0, scale, tol)
        skipped |= ~compared
        checked |= compared
        if compared.any():
            block.symbolic_max_error = float(np.max(diff[compared]))
            block.symbolic_passed = bool(np.all(diff[compared] <= limit[compared]))
            r = np.where(compared, _ratio(diff, limit), -1.0)
            i = np.unravel_index(int(np.argmax(r)), r.shape)
            candidates.append(_component(key, i, engine, fd, sym, "sympy", r[i]))
    if fd is not None and fd.full:
        ref, err = fd.values.reshape(engine.shape), fd.errors.reshape(engine.shape)
        diff, limit, compared = _compare(
            engine, ref, err, max(scale, _finite_max(ref)), tol
        )
        # An infinite or undefined derivative (a pole, sqrt at 0): the difference
        # quotient across it grows as the step shrinks, and its error estimate with
        # it. Unconverged, it can neither confirm nor refute the engine there; a
        # quotient within its own error of 0 still says the engine's inf is wrong.
        with np.errstate(all="ignore"):
            compared &= (np.isfinite(engine) | (err <= _CONVERGED * np.abs(ref))
                         | (np.abs(ref) < err))
        skipped |= ~compared
        checked |= compared
        if not np.all(compared) and fd.done is None:
            notes.append(
                f"{key}: {int(np.sum(~compared))} component(s) not compared by finite "
                "differences (not finite, or not converging, at or near the point)"
            )
        if compared.any():
            block.fd_max_error = float(np.max(diff[compared]))
            block.fd_error_estimate = float(np.max(err[compared]))
            block.fd_passed = bool(np.all(diff[compared] <= limit[compared]))
            r = np.where(compared, _ratio(diff, limit), -1.0)
            i = np.unravel_index(int(np.argmax(r)), r.shape)
            candidates.append(
                _component(key, i, engine, fd, sym, "finite differences", r[i])
            )
    elif fd is not None and len(fd.directions):
        n_in = fd.directions.ndim - 1
        got, ref, err, diff, limit, compared = _along(engine, fd, tol)
        with np.errstate(all="ignore"):
            # Each output component is checked along every input component at once.
            rows = compared.any(axis=0).reshape(
                compared.shape[1:] + (1,) * n_in)
            checked |= np.broadcast_to(rows, engine.shape)
        if compared.any():
            block.fd_max_error = float(np.max(diff[compared]))
            block.fd_error_estimate = float(np.max(err[compared]))
            block.fd_passed = bool(np.all(diff[compared] <= limit[compared]))
            r = np.where(compared, _ratio(diff, limit), -1.0)
            j = np.unravel_index(int(np.argmax(r)), r.shape)
            candidates.append(
                Component(
                    key,
                    None,
                    int(j[0]),
                    float(got[j]),
                    float(ref[j]),
                    float(err[j]),
                    None,
                    "finite differences",
                    float(r[j]),
                )
            )
        else:
            notes.append(
                f"{key}: no random direction could be compared by finite differences"
            )
    block.not_compared = int(np.sum(skipped))
    block.unchecked = int(np.sum(~checked))
    if block.unchecked:
        i = tuple(int(j) for j in np.argwhere(~checked)[0])
        first = _component(key, i, engine, None, None, "", 0.0).where
        notes.append(
            f"{key}: {block.unchecked} component(s) compared by no method (first "
            f"{first}): neither sympy nor finite differences gave a usable value "
            "there (a pole, a value outside the domain, or a part skipped)"
        )
    worst = max(candidates, key=lambda c: c.ratio, default=None)
    return block, worst


def _along(engine, fd: _FD, tol: _Tol):
    """The engine's derivative along ``fd``'s random directions against
    ``fd``'s: ``(got, ref, err, diff, limit, compared)``, each ``(k, out...)``."""
    k = len(fd.directions)
    n_in = fd.directions.ndim - 1
    # all k directions at once
    axes = (list(range(1, n_in + 1)), list(range(engine.ndim - n_in, engine.ndim)))
    got = np.tensordot(fd.directions, engine, axes=axes)
    mag = np.tensordot(np.abs(fd.directions), np.abs(engine), axes=axes)
    vsum = np.abs(fd.directions).reshape(k, -1).sum(axis=1).reshape(
        (k,) + (1,) * (got.ndim - 1)
    )
    ref, err = fd.values, fd.errors
    with np.errstate(all="ignore"):
        compared = np.isfinite(ref)
        diff = np.where(np.isfinite(got), np.abs(got - ref), np.inf)
        limit = (
            tol.atol * vsum
            + tol.rtol * np.abs(ref)
            + _ROUNDOFF * tol.eps * mag
            + 2 * err
        )
    return got, ref, err, diff, limit, compared


def _component(name, index, engine, fd, sym, against, ratio) -> Component:
    index = tuple(int(i) for i in index)
    fd_v = fd_e = None
    if fd is not None and fd.full:
        fd_v = float(fd.values.reshape(engine.shape)[index])
        fd_e = float(fd.errors.reshape(engine.shape)[index])
    return Component(
        name,
        index,
        None,
        float(engine[index]),
        fd_v,
        fd_e,
        None if sym is None else float(sym[index]),
        against,
        float(ratio),
    )


def _tolerance(
    inputs: Mapping[str, np.ndarray], rtol: float, atol: float | None, notes
):
    eps = max(
        (float(np.finfo(a.dtype).eps) for a in inputs.values() if a.dtype.kind == "f"),
        default=float(np.finfo(np.float64).eps),
    )
    if 100 * eps > rtol:
        notes.append(
            f"inputs in {'float32' if eps > 1e-10 else 'low precision'}: "
            f"rtol raised from {rtol:g} to {100 * eps:.3g}"
        )
        rtol = 100 * eps
    return _Tol(rtol, DEFAULT_ATOL if atol is None else float(atol), eps)


def _verdict(checks, worst, kinks, notes, strict=False) -> tuple[str, bool]:
    results = [
        r
        for c in checks.values()
        for r in (c.fd_passed, c.symbolic_passed)
        if r is not None
    ]
    if not all(results):
        if kinks:
            notes.append(
                "the methods disagree, but the derivative was taken at a kink, where "
                "the one-sided derivatives differ and each method picks its own "
                "convention"
            )
            return "kink", True
        return "fail", False
    if not results or any(c.unchecked for c in checks.values()):
        notes.append(
            "inconclusive: a component compared by no method is not a pass"
            + ("; --strict makes it a failure" if strict else
               " (--strict makes it a failure)")
        )
        return "inconclusive", not strict
    return "pass", True


# -- entry points --------------------------------------------------------------------
def _arrays(inputs: Inputs) -> dict[str, np.ndarray]:
    out = {}
    for n, v in inputs.items():
        a = np.asarray(v._data if isinstance(v, Tensor) else v)
        out[n] = a if a.dtype.kind == "f" else a.astype(np.float64)
    return out


def _source_function(f, tree, graph, inputs):
    if f is None and tree is not None:
        return expression_function(tree, inputs)
    if f is None and graph is not None:
        return graph_function(*graph)
    return f


def _auto_kinks(kinks, tree, graph, inputs) -> list[str]:
    if kinks is not None:
        return list(kinks)
    if tree is not None:
        return expression_kinks(tree, inputs)
    if graph is not None:
        return graph_kinks(graph[0])
    return []


def _start_symbolic(kind, tree, graph, inputs, wrt, grad_output, timeout, deadline,
                    skipped):
    if tree is None and graph is None:
        skipped["symbolic"] = "no expression or recorded graph to translate"
        return None
    from gradcli import symbolic  # sympy only on this path

    return symbolic.start(kind, inputs, wrt, tree=tree, graph=graph,
                          grad_output=grad_output, timeout=timeout, deadline=deadline)


def _finish_symbolic(pending, skipped):
    if pending is None:
        return None
    from gradcli import symbolic

    try:
        return pending.result()
    except symbolic.SymbolicSkip as exc:
        skipped["symbolic"] = str(exc)
        return None


def _consistent(sym, value, tol: _Tol, skipped) -> bool:
    """sympy's value at the point must be the forward pass's, else a sym form is
    wrong. Loosely (1e-6): the forward pass may round where sympy is exact."""
    if value is None:
        return True
    v = np.asarray(value, dtype=np.float64)
    s = np.asarray(sym.value, dtype=np.float64)
    if s.shape != v.shape and s.size == v.size:
        s = s.reshape(v.shape)
    if s.shape != v.shape:
        skipped["symbolic"] = (
            f"sympy's value has shape {s.shape}, the forward pass {v.shape}"
        )
        return False
    loose = _Tol(max(tol.rtol, 1e-6), tol.atol, tol.eps)
    diff, limit, comparable = _compare(v, s, 0.0, _finite_max(v, s), loose)
    both = ~np.isfinite(s) & ~np.isfinite(v)
    bad = ~both & ((comparable & (diff > limit)) | (~comparable & np.isfinite(v)))
    if np.any(bad):
        i = np.unravel_index(int(np.argmax(bad)), bad.shape)
        skipped["symbolic"] = (
            f"sympy's value {float(s[i]):.17g} differs from the forward value "
            f"{float(v[i]):.17g}: a sympy form does not match its op (or the forward "
            "pass lost precision)"
        )
        return False
    return True


KINDS = ("gradient", "vjp", "jacobian", "hessian")


def check(
    kind: str,
    inputs: Inputs,
    derivatives: Mapping[Any, Any],
    *,
    f_value: Callable[[dict[str, np.ndarray]], Any] | None = None,
    grad_value: Callable[[dict[str, np.ndarray]], Mapping[str, Any]] | None = None,
    tree=None,
    graph: tuple[Tensor, Mapping[str, Tensor]] | None = None,
    wrt: Sequence[str] | None = None,
    grad_output=None,
    rtol: float = 1e-8,
    atol: float | None = None,
    timeout: float | None = 10.0,
    kinks: Sequence[str] | None = None,
    max_full: int = MAX_FULL,
    directions: int = DIRECTIONS,
    seed: int = 0,
    symbolic: bool = True,
    strict: bool = False,
) -> CheckReport:
    """Check the engine's ``derivatives`` of one ``kind`` against sympy and finite
    differences.

    ``kind`` and what ``derivatives`` holds, per input name (per pair ``"a,b"`` or
    ``(a, b)`` for a Hessian), each of shape ``output.shape + input.shape``:

    - ``"gradient"``: the gradient of a single-number output;
    - ``"vjp"``: the gradient of ``sum(grad_output * output)``;
    - ``"jacobian"``: the Jacobian;
    - ``"hessian"``: second derivatives, differenced from the engine's gradient
      as a function of the inputs: of ``tree`` with ``detach(...)`` held fixed
      (``expression_gradient``), else ``grad_value(inputs)``.

    The function differenced is ``f_value(inputs)``, or else the parsed expression
    ``tree`` or the graph ``(output, leaves)`` recorded under ``keep_args()``, with
    ``detach(...)`` held fixed at ``inputs``; sympy differentiates ``tree`` or
    ``graph``. ``kinks`` are those the derivative went through (``None``: found
    from the tree or graph). A component no method could compare makes the
    verdict ``"inconclusive"``, never ``"pass"``; ``strict`` makes that a failure.

    >>> from gradcli.parse import Call, Const, Var
    >>> tree = Call("mul", (Const(2.0), Call("dot", (Var("x"), Var("x")))))
    >>> x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> report = check("gradient", {"x": x}, {"x": 4 * x}, tree=tree)
    >>> report.passed, report.formulas["x"]
    (True, '∇x = 4*x')
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if (kind == "vjp") != (grad_output is not None):
        raise ValueError("grad_output goes with kind 'vjp', and only with it")
    deadline = None if timeout is None else time.monotonic() + timeout
    inputs = _arrays(inputs)
    blocks = {(k if isinstance(k, str) else ",".join(k)): v
              for k, v in derivatives.items()}
    if wrt is None:
        wrt = dict.fromkeys(n for k in blocks for n in k.split(","))
    wrt = list(wrt)
    notes: list[str] = []
    skipped: dict[str, str] = {}
    tol = _tolerance({n: inputs[n] for n in wrt}, rtol, atol, notes)
    f = _source_function(f_value, tree, graph, inputs)
    if f is None and kind != "hessian":
        raise ValueError("give f_value, a tree or a graph")
    if kind == "hessian" and tree is not None:
        # Every method holds detach(...) fixed, finite differences of the gradient too.
        grad_value = expression_gradient(tree, inputs, wrt)
    g = None if grad_output is None else np.asarray(grad_output, dtype=np.float64)

    def F(inp):
        """What finite differences differentiate, as one float64 array."""
        if kind == "hessian":
            gs = grad_value(inp)
            return np.concatenate(
                [np.asarray(gs[a], dtype=np.float64).ravel() for a in wrt])
        out = np.asarray(f(inp), dtype=np.float64)
        if kind == "vjp":
            return np.asarray(np.sum(g * out))
        if kind == "gradient" and out.size != 1:
            raise ValueError(f"the output has shape {out.shape}; give grad_output")
        return out.reshape(()) if kind == "gradient" else out

    value = None  # what sympy's value must match
    if f is not None:
        value = F(inputs) if kind != "hessian" else np.asarray(f(inputs), np.float64)
    # sympy works in the background while finite differences run here: one time
    # budget for both, and what did not finish is skipped, saying so.
    pending = (_start_symbolic(kind, tree, graph, inputs, wrt, g, timeout, deadline,
                               skipped) if symbolic else None)
    f_scale = _finite_max(value) if kind == "hessian" and value is not None else 0.0
    rng = np.random.default_rng(seed)
    try:
        fds = {b: _differences(F, inputs, b, max_full=max_full, directions=directions,
                               rng=rng, f_scale=f_scale, deadline=deadline)
               for b in wrt}
        sym = _finish_symbolic(pending, skipped)
    finally:
        if pending is not None:
            pending.cancel()
    if sym is not None and not _consistent(sym, value, tol, skipped):
        sym = None
    late = [f"{b} after {fd.done} of {fd.total} "
            + ("components" if fd.full else "random directions")
            for b, fd in fds.items() if fd.done is not None]
    if late:
        skipped["finite differences"] = (
            f"the check's time budget of {timeout:g} s ran out: "
            + "; ".join(late) + " (the rest compared by no finite difference)")
    sizes = [inputs[a].size for a in wrt]
    ends = np.cumsum(sizes).tolist()
    checks, worsts = {}, []
    for b, fd in fds.items():
        _note_failures(fd, b, notes)
        parts = [(b, fd)] if kind != "hessian" else [
            (f"{a},{b}", _slice(fd, end - size, end, inputs[a].shape))
            for a, end, size in zip(wrt, ends, sizes)]
        for key, part in parts:
            if key not in blocks and kind != "gradient" and kind != "vjp":
                continue  # only the blocks given are compared
            engine = _arrays({key: blocks.get(key, np.zeros(inputs[b].shape))})[key]
            sv = sym.values.get(key) if sym is not None else None
            checks[key], worst = _check_block(key, engine, part, sv, tol, notes)
            checks[key].fd_method = _method(fd, inputs[b])
            worsts.append(worst)
    kinks = _auto_kinks(kinks, tree, graph, inputs)
    worst = max(filter(None, worsts), key=lambda c: c.ratio, default=None)
    status, passed = _verdict(checks, worst, kinks, notes, strict)
    if sym is not None:
        notes[:0] = sym.notes
    return CheckReport(
        quantity=kind, passed=passed, status=status, inputs=checks, worst=worst,
        formulas=dict(sym.formulas) if sym is not None else {},
        symbolic_method=sym.method if sym is not None else None, skipped=skipped,
        kinks=kinks, notes=notes, rtol=tol.rtol, atol=tol.atol)


def run_check(f_value: Callable | None, inputs: Inputs, grads: Mapping[str, Any], *,
              tree=None, graph: tuple | None = None, wrt: Sequence[str] | None = None,
              rtol: float = 1e-8, atol: float | None = None,
              timeout: float | None = 10.0, grad_output=None,
              kinks: Sequence[str] | None = None, max_full: int = MAX_FULL,
              directions: int = DIRECTIONS, seed: int = 0,
              symbolic: bool = True, strict: bool = False) -> CheckReport:
    """``check("gradient", ...)``, or with ``grad_output`` ``check("vjp", ...)``."""
    return check("gradient" if grad_output is None else "vjp", inputs, grads,
                 f_value=f_value, tree=tree, graph=graph, wrt=wrt, rtol=rtol, atol=atol,
                 timeout=timeout, grad_output=grad_output, kinks=kinks,
                 max_full=max_full, directions=directions, seed=seed, symbolic=symbolic,
                 strict=strict)


def check_jacobian(f_value: Callable | None, inputs: Inputs, jac: Mapping[str, Any], *,
                   tree=None, graph=None, wrt: Sequence[str] | None = None,
                   rtol: float = 1e-8, atol: float | None = None,
                   timeout: float | None = 10.0, kinks: Sequence[str] | None = None,
                   max_full: int = MAX_FULL, directions: int = DIRECTIONS,
                   seed: int = 0, symbolic: bool = True,
                   strict: bool = False) -> CheckReport:
    """``check("jacobian", ...)``: ``jac[name]`` of shape ``out.shape + in.shape``."""
    return check("jacobian", inputs, jac, f_value=f_value, tree=tree, graph=graph,
                 wrt=wrt, rtol=rtol, atol=atol, timeout=timeout, kinks=kinks,
                 max_full=max_full, directions=directions, seed=seed, symbolic=symbolic,
                 strict=strict)


def check_hessian(grad_value: Callable, inputs: Inputs, hess: Mapping[Any, Any], *,
                  f_value: Callable | None = None, tree=None, graph=None,
                  wrt: Sequence[str] | None = None, rtol: float = 1e-8,
                  atol: float | None = None, timeout: float | None = 10.0,
                  kinks: Sequence[str] | None = None, max_full: int = MAX_FULL,
                  directions: int = DIRECTIONS, seed: int = 0,
                  symbolic: bool = True, strict: bool = False) -> CheckReport:
    """``check("hessian", ...)``: blocks ``hess[(a, b)]`` or ``hess["a,b"]``, by finite
    differences of ``grad_value`` and sympy's second derivatives."""
    return check("hessian", inputs, hess, grad_value=grad_value, f_value=f_value,
                 tree=tree, graph=graph, wrt=wrt, rtol=rtol, atol=atol, timeout=timeout,
                 kinks=kinks, max_full=max_full, directions=directions, seed=seed,
                 symbolic=symbolic, strict=strict)


def _slice(fd: _FD, start: int, end: int, shape) -> _FD:
    """The rows of one gradient block out of the concatenated gradient."""
    if fd.full:
        rest = fd.values.shape[1:]
        return _FD(
            True,
            fd.values[start:end].reshape(shape + rest),
            fd.errors[start:end].reshape(shape + rest),
            None,
            fd.failed,
            fd.done,
            fd.total,
        )
    k = fd.values.shape[0]
    if not k:
        return fd
    return _FD(
        False,
        fd.values[:, start:end].reshape((k,) + shape),
        fd.errors[:, start:end].reshape((k,) + shape),
        fd.directions,
        fd.failed,
        fd.done,
        fd.total,
    )


def _method(fd: _FD, x) -> str:
    if fd.full:
        return f"all {x.size} component{'s' if x.size != 1 else ''}"
    return f"{len(fd.directions)} random directions"


def _note_failures(fd: _FD, name: str, notes) -> None:
    if fd.failed:
        notes.append(
            f"{name}: {fd.failed} finite-difference evaluation(s) raised an error"
        )


# -- the numeric side: expressions and graphs, with detach() held fixed --------------
def expression_function(
    tree, inputs: Inputs
) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """The expression as a numpy function in the engine's dtype, ``detach(...)``
    fixed at its value at ``inputs`` (so finite differences treat it as the
    constant the engine sees).

    >>> from gradcli.parse import Call, Var
    >>> f = expression_function(Call("mul", (Call("detach", (Var("x"),)), Var("x"))),
    ...                         {"x": np.array(3.0)})
    >>> float(f({"x": np.array(5.0)}))
    15.0
    """
    inputs = _arrays(inputs)
    backend = NumpyBackend(engine_dtype(inputs))

    def f(inp):
        with np.errstate(all="ignore"):
            return interpret(tree, backend, inp)

    f(inputs)  # detach(...) keeps the values of this first evaluation
    return f


class _HeldDetach(TensorBackend):
    """The engine, with ``detach(...)`` held at its value in the first evaluation."""

    def __init__(self, dtype) -> None:
        super().__init__("", sys.maxsize)
        self.dtype = np.dtype(dtype)
        self.frozen: dict[int, np.ndarray] = {}

    def detach(self, value, node):
        data = value._data if isinstance(value, Tensor) else np.asarray(value)
        return Tensor._make(self.frozen.setdefault(id(node), np.array(data)))


def expression_gradient(tree, inputs: Inputs, wrt: Sequence[str]):
    """The engine's gradient of a single-number expression as a function of the
    inputs, ``detach(...)`` fixed at its value at ``inputs``: what finite
    differences of a Hessian vary.

    >>> from gradcli.parse import Call, Var
    >>> g = expression_gradient(Call("mul", (Call("detach", (Var("x"),)), Var("x"))),
    ...                         {"x": np.array(3.0)}, ["x"])
    >>> float(g({"x": np.array(5.0)})["x"])
    3.0
    """
    inputs = _arrays(inputs)
    dtype = engine_dtype(inputs)
    backend = _HeldDetach(dtype)

    def grad(inp):
        leaves = {n: Tensor._make(np.asarray(a, dtype=dtype)).requires_grad_(n in wrt)
                  for n, a in inp.items()}
        previous = get_default_dtype()
        set_default_dtype(dtype)
        try:
            with np.errstate(all="ignore"), enable_grad():
                out = interpret(tree, backend, leaves)
                if isinstance(out, Tensor) and out.requires_grad:
                    out.backward()
        finally:
            set_default_dtype(previous)
        return {n: np.zeros(np.shape(inp[n])) if leaves[n].grad is None
                else np.asarray(leaves[n].grad._data) for n in wrt}

    grad(inputs)  # detach(...) keeps the values of this first evaluation
    return grad


def expression_kinks(tree, inputs: Inputs) -> list[str]:
    """Where the expression, at ``inputs``, sits on an op's kink."""
    inputs = _arrays(inputs)
    found: list[str] = []
    with np.errstate(all="ignore"):
        interpret(tree, NumpyBackend(engine_dtype(inputs), kinks=found), inputs)
    return list(dict.fromkeys(found))


def graph_function(output: Tensor, leaves: Mapping[str, Tensor]):
    """The recorded graph (under ``keep_args()``) as a numpy function of the named
    leaves: the path taken, with constants and detached values held fixed."""

    def f(inp):
        with np.errstate(all="ignore"):
            return replay((output, leaves), NumpyBackend(), inp)

    return f


def graph_kinks(output: Tensor) -> list[str]:
    """Where the recorded graph (under ``keep_args()``) sits on an op's kink."""
    from gradcli.compute import kinks

    return list(dict.fromkeys(kinks(output)))


# -- the user's own derivative: three answers -----------------------------------------
USER_TABLE = 20  # disagreeing components listed in a report (the worst); the rest counted
ODD = ("yours", "engine", "finite differences", "none", "unknown")


def finite_differences(
    kind: str, inputs: Inputs, wrt: Sequence[str], *,
    f_value: Callable | None = None, grad_value: Callable | None = None,
    timeout: float | None = 10.0, notes: list[str] | None = None,
    components: Mapping[str, np.ndarray] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Central differences, every component (within the time budget; for a
    gradient, with ``components``, only where ``components[name]`` is true), of
    ``f_value`` (``"gradient"``, ``"jacobian"``) or of ``grad_value``
    (``"hessian"``): per input (per pair ``"a,b"``), ``(values, errors)`` of the
    block's shape, nan and inf where nothing could be differenced.

    >>> fd = finite_differences("gradient", {"x": np.array([1.0, 2.0])}, ["x"],
    ...                         f_value=lambda p: np.sum(p["x"] ** 2))
    >>> np.allclose(fd["x"][0], [2.0, 4.0])
    True
    """
    inputs = _arrays(inputs)
    wrt = list(wrt)
    notes = [] if notes is None else notes
    deadline = None if timeout is None else time.monotonic() + timeout
    if kind == "hessian":
        def F(inp):
            gs = grad_value(inp)
            return np.concatenate(
                [np.asarray(gs[a], dtype=np.float64).ravel() for a in wrt])
        f_scale = _finite_max(f_value(inputs)) if f_value is not None else 0.0
    else:
        def F(inp):
            out = np.asarray(f_value(inp), dtype=np.float64)
            return out.reshape(()) if kind == "gradient" else out
        f_scale = 0.0
    rng = None  # every component (max_full below): no random direction
    sizes = [inputs[a].size for a in wrt]
    ends = np.cumsum(sizes).tolist()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    late = []
    for b in wrt:
        if components is not None and kind == "gradient":
            out[b] = _some_components(F, inputs, b, components.get(b), deadline)
            continue
        fd = _differences(F, inputs, b, max_full=sys.maxsize, directions=0, rng=rng,
                          f_scale=f_scale, deadline=deadline)
        _note_failures(fd, b, notes)
        if fd.done is not None:
            late.append(f"{b} after {fd.done} of {fd.total} components")
        if kind != "hessian":
            out[b] = (fd.values, fd.errors)
            continue
        for a, end, size in zip(wrt, ends, sizes):
            part = _slice(fd, end - size, end, inputs[a].shape)
            out[f"{a},{b}"] = (part.values, part.errors)
    if late:
        notes.append(f"finite differences: the time budget of {timeout:g} s ran out: "
                     + "; ".join(late) + " (the rest compared with the engine only)")
    return out


def _some_components(F, inputs, name, mask, deadline):
    """``_differences`` of ``F`` in the components of input ``name`` where
    ``mask`` is true (the others held fixed), spread back over its shape."""
    x0 = inputs[name]
    values, errors = np.full(x0.shape, np.nan), np.full(x0.shape, np.inf)
    sel = np.flatnonzero(mask) if mask is not None else np.zeros(0, dtype=int)
    if not sel.size:
        return values, errors

    def embedded(inp):
        x = np.array(x0, copy=True)
        x.flat[sel] = inp[name]
        return F({**inp, name: x})

    fd = _differences(embedded, {**inputs, name: x0.ravel()[sel]}, name,
                      max_full=sys.maxsize, directions=0, rng=None, deadline=deadline)
    values.flat[sel], errors.flat[sel] = fd.values, fd.errors
    return values, errors


def directional_check(
    inputs: Inputs, wrt: Sequence[str], f_value: Callable, engine: Mapping[str, Any], *,
    rtol: float = 1e-8, atol: float | None = None, timeout: float | None = 10.0,
    directions: int = DIRECTIONS, seed: int = 0,
) -> dict[str, bool | None]:
    """Per input: whether the engine's gradient ``engine[name]`` of the
    single-number ``f_value`` agrees with central differences along a few
    seeded random directions (None: none could be compared).

    >>> directional_check({"x": np.array([1.0, 2.0])}, ["x"],
    ...                   lambda p: np.sum(p["x"] ** 2), {"x": np.array([2.0, 4.0])})
    {'x': True}
    """
    inputs = _arrays(inputs)
    notes: list[str] = []
    tol = _tolerance({n: inputs[n] for n in wrt}, rtol, atol, notes)
    deadline = None if timeout is None else time.monotonic() + timeout
    rng = np.random.default_rng(seed)

    def F(inp):
        return np.asarray(f_value(inp), dtype=np.float64).reshape(())

    out = {}
    for b in wrt:
        fd = _differences(F, inputs, b, max_full=0, directions=directions, rng=rng,
                          deadline=deadline)
        # _check_block's fd_passed, alone
        out[b] = None
        if len(fd.directions):
            _, _, _, diff, limit, compared = _along(np.asarray(engine[b], np.float64),
                                                    fd, tol)
            if compared.any():
                out[b] = bool(np.all(diff[compared] <= limit[compared]))
    return out


@dataclass
class Disagreement:
    """One component where the three answers do not all agree."""

    block: str  # the input, or "a,b" for a Hessian block
    index: tuple[int, ...]
    where: str  # "W[1, 2]"
    user: float
    engine: float | None
    fd: float | None
    fd_error: float | None
    odd: str  # one of ODD: whose answer is the odd one out
    ratio: float  # the largest difference over its tolerance

    def text(self) -> str:
        parts = [f"yours {_v(self.user)}"]
        parts.append("engine -" if self.engine is None else f"engine {_v(self.engine)}")
        parts.append("finite differences -" if self.fd is None else
                     f"finite differences {_v(self.fd)} ± {_g(self.fd_error)}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {"block": self.block, "index": list(self.index), "where": self.where,
                "user": _num(self.user), "engine": _num(self.engine), "fd": _num(self.fd),
                "fd_error": _num(self.fd_error), "odd_one_out": self.odd,
                "ratio": _num(self.ratio)}


@dataclass
class UserCheckReport:
    """The user's derivative against the engine's and finite differences.

    ``status``: ``"pass"``, ``"fail"`` (a disagreement or a shape that does not
    match), ``"kink"`` (a disagreement at a kink the op table knows) or
    ``"inconclusive"`` (a component compared with nothing).
    """

    quantity: str  # gradient, jacobian or hessian
    function: str  # the user's function, e.g. "model.py:df"
    passed: bool
    status: str
    components: int
    counts: dict[str, int]  # agree, unchecked, and each odd one out
    table: list[Disagreement]  # the worst USER_TABLE, worst first
    disagreeing: int
    shapes: list[tuple[str, tuple, tuple]]  # (block, yours, expected)
    engine: str | None  # why the engine's answer is missing, or None
    kinks: list[str]
    notes: list[str]
    rtol: float
    atol: float
    # finite differences only, and their error bar wider than the tolerance:
    # (where, yours, fd, fd_error, tolerance) of the widest, or None
    unresolved: tuple | None = None

    @property
    def worst(self) -> Disagreement | None:
        return self.table[0] if self.table else None

    def to_json(self) -> dict:
        return {
            "reference": "user", "passed": self.passed, "status": self.status,
            "quantity": self.quantity, "function": self.function,
            "rtol": self.rtol, "atol": self.atol, "components": self.components,
            "counts": dict(self.counts), "disagreeing": self.disagreeing,
            "table": [d.to_json() for d in self.table],
            "omitted": self.disagreeing - len(self.table),
            "shapes": [{"block": b, "yours": list(y), "expected": list(e)}
                       for b, y, e in self.shapes],
            "engine": "available" if self.engine is None else f"unavailable: {self.engine}",
            "kinks": list(self.kinks), "notes": list(self.notes),
        }

    def verdict(self) -> str:
        name = f"`{self.function.rsplit(':', 1)[-1]}`"
        if self.shapes:
            b, yours, want = self.shapes[0]
            return (f"FAIL: your {name} returns shape {yours} for {b}; the "
                    f"{self.quantity} has shape {want}")
        if self.status == "pass":
            alone = self.counts.get("engine_only", 0)
            if self.engine is None and alone and alone == self.components:
                return (f"PASS: your {name} agrees with the engine ({self.components} "
                        "components); finite differences compared none of them")
            against = ("finite differences" if self.engine is not None
                       else "the engine and finite differences")
            some = (f"; {alone} compared with the engine only" if alone and
                    self.engine is None else "")
            return (f"PASS: your {name} agrees with {against} ({self.components} "
                    f"components{some})")
        if self.status == "inconclusive" and self.unresolved is not None:
            where, u, d, err, limit = self.unresolved
            n = self.counts.get("unresolved", 0)
            return (f"INCONCLUSIVE: finite differences cannot resolve the tolerance at "
                    f"{n} of {self.components} components, and the engine cannot "
                    f"differentiate f: at `{where}` yours {_v(u)}, finite differences "
                    f"{_v(d)} ± {_g(err)}, tolerance {_g(limit)}")
        if self.status == "inconclusive":
            return (f"INCONCLUSIVE: {self.counts['unchecked']} of {self.components} "
                    "components could not be compared")
        if self.status == "kink" and self.counts.get("at_jump") and any(
                "lies between the one-sided" in n for n in self.notes):
            return (f"KINK (not a failure): your {name} agrees elsewhere, and at the "
                    "kink lies between the one-sided derivatives, at a jump of f is the "
                    "engine's convention")
        if self.status == "kink" and self.counts.get("at_jump"):
            return (f"KINK (not a failure): your {name} agrees elsewhere, and at a jump "
                    "of f (no derivative) is the engine's convention")
        if self.status == "kink":
            return (f"KINK (not a failure): your {name} agrees elsewhere, and at the "
                    "kink lies between the one-sided derivatives")
        w = self.worst
        at = f"`{w.where}`"
        story = {
            "yours": f"your {name} is wrong at {at}",
            "engine": f"the engine differs at {at} (yours agrees with finite differences)",
            "finite differences": (f"finite differences differ at {at} (yours and the "
                                   "engine agree: f may not be smooth there)"),
            "none": f"no two answers agree at {at}",
            "unknown": (f"yours and the engine differ at {at} (no finite difference "
                        "there to tell which is right)"),
        }[w.odd]
        return f"FAIL: {story}: {w.text()}"

    def lines(self) -> list[str]:
        out = [self.verdict()]
        for b, yours, want in self.shapes[1:]:
            out.append(f"shape: yours {yours} for {b}, expected {want}")
        if self.disagreeing:
            out.append(f"{self.disagreeing} of {self.components} components disagree"
                       + (f"; the worst {len(self.table)}:"
                          if self.disagreeing > len(self.table) else ":"))
            out.extend(f"  {d.where}: {d.text()} (odd one out: {d.odd})"
                       for d in self.table)
        odd = ", ".join(f"{k} {self.counts[k]}" for k in ODD if self.counts.get(k))
        if odd:
            out.append(f"odd one out: {odd}")
        if self.engine is not None:
            out.append(f"note: the engine cannot differentiate this function ({self.engine});"
                       " compared with finite differences only")
        out.extend(f"kink: {k}" for k in self.kinks)
        out.extend(f"note: {n}" for n in self.notes)
        return out


def _where(kind: str, block: str, index: tuple[int, ...], ndim_out: int) -> str:
    def at(name, idx):
        return f"{name}[{', '.join(map(str, idx))}]" if idx else name

    if kind == "gradient":
        return at(block, index)
    if kind == "jacobian":
        return f"d out{list(index[:ndim_out]) if ndim_out else ''}/d {at(block, index[ndim_out:])}"
    a, b = block.split(",")
    return f"d2f/d {at(a, index[:ndim_out])} d {at(b, index[ndim_out:])}"


# At most this many components of one block get one-sided differences (two
# evaluations each); a disagreement beyond them is not excused.
ONE_SIDED_MAX = 200


def _between_one_sided(u: np.ndarray, bad: np.ndarray, block: str,
                       one_sided: Callable | None) -> np.ndarray:
    """Where ``bad``, whether ``u`` lies between the one-sided derivatives and
    those differ (the component is on the kink). One-sided differences with
    step sqrt(eps) carry ~1e-8 relative error (and curvature times the step):
    1e-6 relative is the margin, both for "they differ" and for "between"."""
    out = np.zeros(u.shape, dtype=bool)
    if one_sided is None:
        return out
    for i in [tuple(int(v) for v in i) for i in np.argwhere(bad)][:ONE_SIDED_MAX]:
        got = one_sided(block, i)
        if got is None:
            continue
        lo, hi = sorted(got)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        margin = 1e-6 * max(1.0, abs(lo), abs(hi))
        out[i] = hi - lo > margin and lo - margin <= u[i] <= hi + margin
    return out


def _at_jump(candidates: np.ndarray, block: str, jumps: Callable) -> np.ndarray:
    """Where ``candidates``, whether f jumps along that component."""
    out = np.zeros(candidates.shape, dtype=bool)
    for i in [tuple(int(v) for v in i) for i in np.argwhere(candidates)][:ONE_SIDED_MAX]:
        out[i] = bool(jumps(block, i))
    return out


ALONG_RANDOM = 3  # random directions tried besides yours - the engine's and all-ones


def _fits_along(held, along: Callable | None) -> bool:
    """Whether the excused components, together, lie between the one-sided
    derivatives along several directions ``v`` over them (there: <yours, v>):
    yours - the reference's, all ones, and a few seeded random ones. One
    direction is not enough: at a tie of sort(x) weighted [1, 2], [1, 1]
    passes along yours - [1, 2] = [0, -1], but along [1, 1], which keeps the
    order, f's slope is 3 and yours gives 2. A subgradient of the pieces (the
    engine's, or any mix of the pieces' gradients) passes along every one."""
    if along is None:
        return True
    rng = np.random.default_rng(0)
    directions = [{b: np.where(mask, u - ref, 0.0) for b, mask, u, ref, *_ in held},
                  {b: mask.astype(np.float64) for b, mask, *_ in held}]
    directions += [{b: np.where(mask, rng.standard_normal(mask.shape), 0.0)
                    for b, mask, *_ in held} for _ in range(ALONG_RANDOM)]
    yours = {b: u for b, _, u, *_ in held}
    for v in directions:
        scale = math.sqrt(sum(float(np.sum(s * s)) for s in v.values()))
        if not scale:
            continue
        got = along({b: s / scale for b, s in v.items()})
        if got is None:
            continue  # (nothing to compare: the components' own test stands)
        lo, hi = sorted(got)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        dot = sum(float(np.sum(yours[b] * s)) for b, s in v.items()) / scale
        margin = 1e-6 * max(1.0, abs(lo), abs(hi))
        if not lo - margin <= dot <= hi + margin:
            return False
    return True


def _simplex_fit(G: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The weights ``w >= 0``, ``sum(w) = 1``, with ``G @ w`` nearest ``y``:
    Lawson and Hanson's non-negative least squares on ``G`` with a heavily
    weighted row of ones appended (the sum)."""
    scale = max(1.0, float(np.max(np.abs(G), initial=0.0)), float(np.max(np.abs(y))))
    A = np.vstack([G, np.full((1, G.shape[1]), 1e3 * scale)])
    b = np.concatenate([y, [1e3 * scale]])
    n = A.shape[1]
    inside = np.zeros(n, dtype=bool)
    w = np.zeros(n)
    for _ in range(3 * n):
        grad = A.T @ (b - A @ w)
        if inside.all() or np.max(np.where(inside, -np.inf, grad)) <= 1e-12 * scale ** 2:
            break
        inside[int(np.argmax(np.where(inside, -np.inf, grad)))] = True
        for _ in range(3 * n):
            z = np.zeros(n)
            z[inside] = np.linalg.lstsq(A[:, inside], b, rcond=None)[0]
            if np.all(z[inside] > 0):
                w = z
                break
            out = inside & (z <= 0)
            with np.errstate(all="ignore"):
                alpha = float(np.min(w[out] / (w[out] - z[out])))
            if not np.isfinite(alpha):  # (a degenerate step: keep what we have)
                break
            w = w + alpha * (z - w)
            inside &= w > 0
    return w


def _in_hull(held, pieces: Callable | None) -> bool:
    """Whether the excused components of yours, together, are a mix of the
    pieces' gradients there (``pieces(masks)``, the engine's beside the kink):
    the directions tried by ``_fits_along`` miss a kink along a line not along
    the axes (abs(x0 - 2 x1) at (2, 1), where f is smooth along (2, 1))."""
    if pieces is None:
        return True
    got = pieces({b: mask for b, mask, *_ in held})
    if len(got) < 2:
        return True  # (nothing to mix: the other tests stand)
    # every component of those inputs, the agreeing ones too: at a tie of
    # maximum(x0 - 2 x1, 0) + x0^2 yours may agree with the engine's halves in x0
    # and not in x1, and no mix of the pieces gives that pair
    y = np.concatenate([u.ravel() for _, _, u, *_ in held])
    G = np.stack([np.concatenate([g[b].ravel() for b, *_ in held]) for g in got], axis=1)
    w = _simplex_fit(G, y)
    # (1e-5: the pieces' gradients are taken a relative 1e-7 away, where the
    # smooth part has moved by the curvature times that)
    margin = 1e-5 * max(1.0, float(np.max(np.abs(G))), float(np.max(np.abs(y))))
    return float(np.max(np.abs(G @ w - y))) <= margin


def compare_user(
    kind: str, inputs: Inputs, user: Mapping[str, Any], engine: Mapping[str, Any] | None,
    fd: Mapping[str, tuple[np.ndarray, np.ndarray]], *, function: str,
    expected_shapes: Mapping[str, tuple], split: Mapping[str, int] | None = None,
    engine_missing: str | None = None, rtol: float = 1e-8, atol: float | None = None,
    kinks: Sequence[str] = (), notes: Sequence[str] = (), strict: bool = False,
    engine_confirmed: bool = False, one_sided: Callable | None = None,
    along: Callable | None = None, jumps: Callable | None = None,
    pieces: Callable | None = None,
) -> UserCheckReport:
    """Three answers per component: ``user[block]``, ``engine[block]`` (None: the
    engine cannot differentiate; ``engine_missing`` says why) and ``fd[block]``
    (``finite_differences``). Where they disagree, the odd one out is the answer
    the other two outvote. ``split[block]`` is how many leading axes index the
    output (Jacobian) or the first input (Hessian). ``engine_confirmed``: finite
    differences along random directions confirmed the engine (many points), so
    a component yours and the engine agree on needs no difference of its own;
    else such a component is counted ``engine_only``, and the verdict does not
    claim finite differences agreed there.

    At a kink (``kinks``) a component where yours disagrees is excused only
    where ``one_sided(block, index) -> (lo, hi)`` (the one-sided derivatives
    there) differ and yours lies between them: any value between is a
    derivative someone's convention gives (a subgradient). Elsewhere, even
    beside a kink in another component, a disagreement fails. The excused
    components must also fit together: along the direction from the reference
    answer to yours (``along(direction) -> (forward, backward)``, a gradient's
    one-sided directional derivatives), yours must lie between them too
    ([1, 1] for |x0 - x1| at a tie fits each component, not both at once).

    Where f itself jumps along a component (``jumps(block, index)``: a step such
    as sign at 0, whose one-sided differences grow as the step shrinks), there
    is no derivative to be between: yours is excused there only when it is the
    engine's, the op table's declared convention (0 for a step)."""
    inputs = _arrays(inputs)
    notes = list(notes)
    excused = 0
    stepped = 0  # components excused at a jump of f (yours: the engine's convention)
    held: list = []  # (block, mask, u, reference, d, err, have_fd): the excused
    tol = _tolerance(inputs, rtol, atol, notes)
    counts = dict.fromkeys(("agree", "unchecked", "engine_only", "unresolved", "at_jump")
                           + ODD, 0)
    unresolved = None  # the widest error bar among them: (ratio, detail)
    shapes, found = [], []
    total = 0
    for block, want in expected_shapes.items():
        u = np.asarray(user[block], dtype=np.float64)
        if u.shape != tuple(want):
            shapes.append((block, u.shape, tuple(want)))
            continue
        total += u.size
        e = None if engine is None else np.asarray(engine[block], dtype=np.float64)
        d, err = fd.get(block, (np.full(u.shape, np.nan), np.full(u.shape, np.inf)))
        d, err = np.asarray(d).reshape(u.shape), np.asarray(err).reshape(u.shape)
        with np.errstate(all="ignore"):
            have_fd = np.isfinite(d) & np.isfinite(err)
            refs = [d[have_fd]] + ([] if e is None else [e])
            scale = _finite_max(*refs)
            round_off = _ROUNDOFF * tol.eps * scale
            n_out = split.get(block, 0) if split and kind == "jacobian" else 0
            if n_out:
                # A Jacobian's rows are separate outputs, each computed (and
                # rounded) on its own scale: one output's 1e16 let a wrong sign
                # pass in another's derivative of 3
                mags = [np.where(have_fd, np.abs(d), 0.0)] + (
                    [] if e is None else [np.abs(e)])
                row = np.max([np.where(np.isfinite(m), m, 0.0) for m in mags], axis=0)
                row = np.max(row, axis=tuple(range(n_out, u.ndim)), keepdims=True)
                scale = np.broadcast_to(row, u.shape)
                round_off = _ROUNDOFF * tol.eps * scale

            def ok(x, ref, error=0.0):
                """Agreement (the same inf, or both nan, agree) and diff / limit."""
                same = (x == ref) | (np.isnan(x) & np.isnan(ref))
                diff = np.where(same, 0.0, np.abs(x - ref))
                limit = tol.atol + tol.rtol * np.abs(ref) + round_off + 2 * error
                return same | (diff <= limit), np.where(same, 0.0, diff / limit)

            uf, r_uf = ok(u, d, err)
            uf &= have_fd
            if e is not None:
                ue, r_ue = ok(u, e)
                ef, _ = ok(e, d, err)
                ef &= have_fd
                agree = ue & (uf | ~have_fd)
                if not engine_confirmed:  # agreed with the engine alone
                    counts["engine_only"] += int(np.sum(agree & ~have_fd))
                odd = np.where(ef, 0, np.where(ue, 2, np.where(uf, 1, 3)))
                odd = np.where(have_fd, odd, 4)
                ratio = np.where(have_fd, np.fmax(r_ue, r_uf), r_ue)
            else:
                agree = uf
                odd = np.zeros(u.shape, dtype=int)
                ratio = np.where(have_fd, r_uf, 0.0)
                # Finite differences alone: an agreement inside an error bar wider
                # than the tolerance (at the block's scale) confirms nothing at
                # that tolerance (1e8 + |w|^2: eps |f| / h is 0.01).
                resolve = np.broadcast_to(tol.atol + tol.rtol * scale + round_off,
                                          u.shape)
                wide = uf & (2 * err > resolve)
                if wide.any():
                    counts["unresolved"] += int(wide.sum())
                    j = np.unravel_index(np.argmax(np.where(wide, err / resolve, -1.0)),
                                         u.shape)
                    n_out = split.get(block, 0) if split else 0
                    i = tuple(int(v) for v in j)
                    if unresolved is None or err[j] / resolve[j] > unresolved[0]:
                        unresolved = (float(err[j] / resolve[j]), (
                            _where(kind, block, i, n_out), float(u[j]), float(d[j]),
                            float(err[j]), float(resolve[j])))
                unchecked = ~have_fd
                counts["unchecked"] += int(unchecked.sum())
                agree |= unchecked
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        bad = ~agree
        if kinks and bad.any():
            # Where f itself jumps, the one-sided differences are 1/h on one
            # side at least, so any answer lies "between" them: there only the
            # engine's convention is excused (floor(x) + x at 1 passed 3).
            jump = (_at_jump(bad, block, jumps) if jumps is not None
                    else np.zeros(u.shape, dtype=bool))
            if e is not None and jump.any():
                step = jump & ue
                stepped += int(step.sum())
                counts["at_jump"] += int(step.sum())
                bad &= ~step
                agree |= step
            kink = _between_one_sided(u, bad & ~jump, block, one_sided)
            if kink.any():
                excused += int(kink.sum())
                held.append((block, kink, u, d if e is None else e, d, err, have_fd))
            bad &= ~kink
            agree |= kink
        counts["agree"] += int(agree.sum()) - (0 if e is not None else int(unchecked.sum()))
        for k, name in enumerate(ODD):
            counts[name] += int(np.sum(bad & (odd == k)))
        if bad.any():
            idx = np.argwhere(bad)
            r = ratio[bad]
            top = np.argsort(-r, kind="stable")[:USER_TABLE]
            n_out = split.get(block, 0) if split else 0
            for j in top:
                i = tuple(int(v) for v in idx[j])
                found.append(Disagreement(
                    block, i, _where(kind, block, i, n_out), float(u[i]),
                    None if e is None else float(e[i]),
                    float(d[i]) if have_fd[i] else None,
                    float(err[i]) if have_fd[i] else None, ODD[int(odd[i])],
                    float(r[j])))
    # (the joint tests only where nothing else fails: a failure is the verdict
    # already, and its own component heads the table)
    if held and not found and not (_fits_along(held, along) and _in_hull(held, pieces)):
        excused = 0  # jointly no derivative: each of them is yours to answer for
        for block, mask, u, ref, d, err, have_fd in held:
            counts["yours"] += int(mask.sum())
            counts["agree"] -= int(mask.sum())
            n_out = split.get(block, 0) if split else 0
            for i in [tuple(int(v) for v in i) for i in np.argwhere(mask)][:USER_TABLE]:
                found.append(Disagreement(
                    block, i, _where(kind, block, i, n_out), float(u[i]), float(ref[i]),
                    float(d[i]) if have_fd[i] else None,
                    float(err[i]) if have_fd[i] else None, "yours", math.inf))
        notes.append("yours is between the one-sided derivatives in each component at "
                     "the kink, but not along the direction from the engine's answer "
                     "to yours: no convention gives them together")
    disagreeing = sum(counts[k] for k in ODD)
    found.sort(key=lambda c: -c.ratio)
    table = found[:USER_TABLE]
    if shapes:
        status, passed = "fail", False
    elif disagreeing:
        status, passed = "fail", False
    elif excused or stepped:
        status, passed = "kink", True
        if excused:
            notes.append(f"{excused} component{'s' * (excused != 1)} at a kink: yours "
                         "lies between the one-sided derivatives there, where the "
                         "answers differ by convention")
        if stepped:
            notes.append(f"{stepped} component{'s' * (stepped != 1)} at a jump of f (a "
                         "step: no derivative there, finite differences blow up): yours "
                         "is the engine's, the op table's convention")
    elif counts["unchecked"]:
        # exit 0 only when something confirmed yours: nothing did, it fails
        status, passed = "inconclusive", not strict and counts["agree"] > 0
    elif counts["unresolved"]:
        # nothing confirmed yours within the tolerance asked: not a pass
        status, passed = "inconclusive", False
        notes.append("finite differences compared yours within an error estimate wider "
                     "than the tolerance (rounding of a large |f|, or a coarse step); "
                     "a function the engine can differentiate, or a looser --rtol/--atol, "
                     "decides it")
    else:
        status, passed = "pass", True
    return UserCheckReport(kind, function, passed, status, total, counts, table,
                           disagreeing, shapes, engine_missing, list(kinks), notes,
                           tol.rtol, tol.atol,
                           unresolved[1] if unresolved is not None else None)
