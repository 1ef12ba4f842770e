"""Error bars: input uncertainties propagated to the output.

First order, the GUM's law of propagation of uncertainty: with J the Jacobian of
the output with respect to the inputs that have an uncertainty (flattened and
side by side) and Sigma their covariance matrix, the output's covariance is
``J Sigma J^T``; for a single-number output ``u_f^2 = sum_ij (df/dx_i) (df/dx_j)
Sigma_ij``, which for uncorrelated inputs is ``sum_i (df/dx_i)^2 u_i^2``.

Each input's contribution is its own block, ``J_a Sigma_aa J_a^T``; correlated
pairs add ``2 J_a Sigma_ab J_b^T`` (which may be negative); they sum to the
variance. The first order is exact for a linear function. Whether it is good
enough is judged from the second-order term of the Taylor expansion: for
normally distributed inputs, ``f0 + g.d + d.H.d/2`` has variance
``g Sigma g + tr(H Sigma H Sigma) / 2`` and mean ``f0 + tr(H Sigma) / 2``; a
second-order standard uncertainty more than 10% above the first-order one gets
a note.

All of it is computed in scaled form so that nothing over- or underflows on the
way: each input component's uncertainty is written as a power of two times a
number near 1 (``Sigma = D R D`` with ``D = diag(2^e)``), each output row of
``J D`` is scaled by a power of two to a largest entry near 1, and the powers
of two go back on at the end (``std = 2^r sqrt(var_scaled)``). Powers of two
are exact, so ordinary cases lose nothing, and only a true result beyond
float64's range comes out as inf (or 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import GradcliError, UsageError

NONLINEAR = 0.10  # the second-order std more than 10% above the first-order one
MAX_HESSIAN_WORK = 2_000_000  # output components x inputs^2 for the second-order check


@dataclass
class Covariance:
    """The covariance of the inputs that have an uncertainty, flattened in
    ``names`` order (each input's components in C order), in scaled form: the
    covariance of components i and j is ``scaled[i, j] * 2^(exponents[i] +
    exponents[j])`` (see the module docstring)."""

    names: list[str]
    sizes: list[int]
    scaled: np.ndarray
    exponents: np.ndarray  # int64, one per component
    mantissas: np.ndarray | None = None  # sigma_i / 2^exponents[i], in [0.5, 1) or 0

    @property
    def matrix(self) -> np.ndarray:
        """The covariance matrix itself (inf or 0 where it leaves float64)."""
        e = self.exponents
        with np.errstate(all="ignore"):
            return np.ldexp(self.scaled, e[:, None] + e[None, :])

    def _span(self, a: str) -> slice:
        i = self.names.index(a)
        o = sum(self.sizes[:i])
        return slice(o, o + self.sizes[i])

    def block(self, a: str, b: str) -> np.ndarray:
        """The scaled block of ``a`` and ``b`` (a view)."""
        return self.scaled[self._span(a), self._span(b)]


def covariance(inputs: dict[str, np.ndarray], sigmas: dict[str, np.ndarray],
               covs: dict[tuple[str, str], np.ndarray], *,
               max_elements: int = 10_000_000) -> Covariance:
    """The covariance matrix from standard uncertainties (``--sigma NAME=VALUE``:
    one number, or one per component) and covariances (``--cov A,B=VALUE``: a
    number for two single-number inputs, a matrix of shape (A.size, B.size)
    otherwise; ``--cov A,A=MATRIX`` is A's whole covariance matrix).

    Raises UsageError for a name that is not an input, a negative uncertainty,
    a shape that does not fit, an entry given twice, or a matrix that is not
    symmetric positive semi-definite.

    >>> c = covariance({"m": np.array(2.0), "h": np.array(10.0)},
    ...                {"m": np.array(0.1), "h": np.array(0.05)}, {})
    >>> c.matrix.round(4).tolist()
    [[0.01, 0.0], [0.0, 0.0025]]
    """
    for n in [*sigmas, *(n for pair in covs for n in pair)]:
        if n not in inputs:
            raise UsageError(f"--sigma/--cov {n}: no input named {n!r}",
                             hint=f"inputs: {', '.join(inputs) or 'none'}")
    own = {a for a, b in covs if a == b}
    names = [n for n in inputs if n in sigmas or n in own]
    for a, b in covs:
        for n in (a, b):
            if n not in names:
                raise UsageError(f"--cov {a},{b}: {n} has no uncertainty",
                                 hint=f"give it one with --sigma {n}=VALUE "
                                      f"(or --cov {n},{n}=MATRIX)")
    for n in names:
        if n in sigmas and n in own:
            raise UsageError(f"--sigma {n} and --cov {n},{n}: the uncertainty of {n} "
                             "is given twice")
    sizes = [int(inputs[n].size) for n in names]
    total = sum(sizes)
    if total * total > max_elements:
        raise UsageError(f"--sigma/--cov: the covariance matrix of {total:,} input "
                         f"components would have {total * total:,} elements, over the "
                         f"limit of {max_elements:,}",
                         hint="raise it with --max-elements N if you mean it")
    c = Covariance(names, sizes, np.zeros((total, total)), np.zeros(total, np.int64),
                   np.zeros(total))
    seen: set[frozenset] = set()
    blocks = {}
    for (a, b), value in covs.items():
        if frozenset((a, b)) in seen:
            raise UsageError(f"--cov {a},{b}: the covariance of {a} and {b} is given twice")
        seen.add(frozenset((a, b)))
        blocks[a, b] = _cov_block(a, b, value, inputs)
    # Each component's power of two first (from its standard uncertainty), then
    # every block divided by them: exact, and nothing squares a sigma.
    for n in names:
        if n in sigmas:
            mant, exp = np.frexp(_sigma(n, sigmas[n], inputs[n]))
            c.exponents[c._span(n)] = exp
            c.mantissas[c._span(n)] = mant
            c.block(n, n)[...] = np.diag(mant * mant)
        else:
            block = blocks[n, n]
            scale = float(np.max(np.abs(block), initial=0.0))
            if np.max(np.abs(block - block.T), initial=0.0) > 1e-12 * scale:
                raise UsageError(f"--cov {n},{n}: the covariance matrix is not symmetric")
            with np.errstate(all="ignore"):
                mant, exp = np.frexp(np.sqrt(np.abs(np.diagonal(block))))
            c.exponents[c._span(n)] = exp
            c.mantissas[c._span(n)] = mant
    e = c.exponents
    with np.errstate(all="ignore"):
        for (a, b), block in blocks.items():
            sa, sb = c._span(a), c._span(b)
            scaled = np.ldexp(block, -(e[sa][:, None] + e[sb][None, :]))
            if a == b:
                c.block(a, a)[...] = (scaled + scaled.T) / 2
            else:
                c.block(a, b)[...] = scaled
                c.block(b, a)[...] = scaled.T
    _positive_semidefinite(c)
    return c


def _sigma(name: str, sigma: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One standard uncertainty per component of ``x``, flattened."""
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.ndim == 0:
        sigma = np.full(x.size, float(sigma))
    elif sigma.shape == x.shape or (sigma.ndim == 1 and sigma.size == x.size):
        sigma = sigma.reshape(-1)
    else:
        raise UsageError(f"--sigma {name}: shape {sigma.shape} does not fit input "
                         f"{name} of shape {x.shape}",
                         hint="give one number, or one per component")
    bad = np.flatnonzero(sigma < 0)
    if bad.size:
        at = f" (component {int(bad[0])})" if x.ndim else ""
        raise UsageError(f"--sigma {name}: a standard uncertainty cannot be negative: "
                         f"{sigma[bad[0]]:g}{at}")
    return sigma


def _cov_block(a: str, b: str, value: np.ndarray, inputs) -> np.ndarray:
    na, nb = inputs[a].size, inputs[b].size
    value = np.asarray(value, dtype=np.float64)
    if value.shape in {(na, nb), inputs[a].shape + inputs[b].shape} or (
            na == nb == 1 and value.size == 1):
        block = value.reshape(na, nb)
    else:
        raise UsageError(f"--cov {a},{b}: shape {value.shape} does not fit inputs of "
                         f"shapes {inputs[a].shape} and {inputs[b].shape}",
                         hint=f"give a {na} by {nb} matrix" if na * nb > 1
                         else "give one number")
    if a == b and na == 1 and block[0, 0] < 0:
        raise UsageError(f"--cov {a},{a}: a variance cannot be negative: {block[0, 0]:g}")
    return block


def _positive_semidefinite(c: Covariance) -> None:
    # D R D is positive semi-definite exactly when R is (D is positive diagonal).
    if not c.scaled.size:
        return
    eig = np.linalg.eigvalsh(c.scaled)
    tol = 1e-12 * max(float(np.max(np.abs(eig))), np.finfo(float).tiny) * len(eig)
    if eig[0] < -tol:
        pairs = len(c.names) > 1 or c.sizes[0] > 1
        true = c.matrix
        smallest = (f" (smallest eigenvalue {np.linalg.eigvalsh(true)[0]:.3g})"
                    if np.isfinite(true).all() else "")
        raise UsageError(
            f"--sigma/--cov: the covariance matrix of {', '.join(c.names)} is not "
            f"positive semi-definite{smallest}",
            hint="a covariance of A and B is at most sigma_A * sigma_B in size"
            if pairs else None)


def _row_scaled(x: np.ndarray, exp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x * 2^exp`` (exp broadcast against x, a 2-d array) as ``scaled * 2^r``
    with one power of two per row, the largest |entry| of each scaled row in
    [0.5, 1) (r = 0 for a row of zeros). inf and nan stay inf and nan."""
    mant, ex = np.frexp(x)
    tot = ex.astype(np.int64) + exp
    floor = np.iinfo(np.int64).min // 4
    tot = np.where(mant != 0, tot, floor)
    r = np.max(tot, axis=1, initial=floor) if x.shape[1] else np.full(x.shape[0], floor)
    r = np.where(r == floor, 0, r)
    shift = np.clip(tot - r[:, None], -4000, 0)
    return np.ldexp(mant, shift), r


@dataclass
class Uncertainty:
    """The propagated uncertainty of a value of shape ``shape``. ``share`` and
    ``total_share`` are worked out from the scaled quantities, so they are right
    even where a variance itself over- or underflows."""

    shape: tuple[int, ...]
    std: np.ndarray  # the output's shape
    covariance: np.ndarray  # shape + shape
    contributions: dict[str, np.ndarray]  # name (or "a,b") -> variance, output's shape
    share: dict[str, np.ndarray] = field(default_factory=dict)  # output's shape
    total_share: dict[str, float] = field(default_factory=dict)
    second_order_std: np.ndarray | None = None
    mean_shift: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def variance(self) -> np.ndarray:
        var = np.diagonal(self.covariance.reshape(self.std.size, self.std.size))
        return var.reshape(self.shape)

    def shares(self) -> dict[str, np.ndarray]:
        """Each contribution as a fraction of the variance (0 where it is 0)."""
        return dict(self.share)

    def total_shares(self) -> dict[str, float]:
        """Each contribution's share of the summed variance of all components."""
        return dict(self.total_share)


def _fraction(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    return np.where(whole > 0, part / np.where(whole > 0, whole, 1.0), 0.0)


def propagate(target, inputs: dict[str, np.ndarray], cov: Covariance, *,
              max_elements: int = 10_000_000) -> Uncertainty:
    """First-order uncertainty of ``target``'s output at ``inputs``, and the
    second-order check of it (see the module docstring)."""
    from . import compute

    d = compute.jacobian(target, inputs, wrt=cov.names, max_elements=max_elements)
    shape = d.value.shape
    m = d.value.size
    if m * m > max_elements:
        raise UsageError(f"--sigma: the covariance of an output of {m:,} components "
                         f"would have {m * m:,} elements, over the limit of "
                         f"{max_elements:,}",
                         hint="raise it with --max-elements N if you mean it")
    jac = np.concatenate([d.blocks[n].reshape(m, inputs[n].size).astype(np.float64)
                          for n in cov.names], axis=1).reshape(m, cov.scaled.shape[0])
    with np.errstate(all="ignore"):
        # J Sigma J^T = 2^r t (B C B^T) t 2^r, row by row: C the correlation matrix
        # (1 on its diagonal), B = 2^-r J diag(sigma) / t with t the largest
        # |entry| of each row, so that one term alone gives std = |J| sigma exactly.
        g = cov.mantissas
        a, r = _row_scaled(jac, cov.exponents[None, :])
        corr = cov.scaled / np.where(g > 0, np.outer(g, g), 1.0)
        np.fill_diagonal(corr, np.where(g > 0, 1.0, 0.0))
        b = a * g[None, :]
        t = np.max(np.abs(b), axis=1, initial=0.0)
        t = np.where(np.isfinite(t) & (t > 0), t, 1.0)
        b = b / t[:, None]
        scaled = b @ corr @ b.T
        scaled = (scaled + scaled.T) / 2
        unit = np.maximum(np.diagonal(scaled), 0.0)
        std = np.ldexp(t * np.sqrt(unit), r).reshape(shape)
        out_cov = np.ldexp(t[:, None] * scaled * t[None, :], r[:, None] + r[None, :])
        var = unit * t * t  # in units of 2^(2 r), for the second order
        # the summed variance of all components, in units of 2^(2 top)
        top = int(np.max(r, initial=0))
        weight = np.ldexp(t * t, 2 * (r - top))
        total = float(np.sum(unit * weight))
        parts = {}
        for i, x in enumerate(cov.names):
            for y in cov.names[i:]:
                cxy = corr[cov._span(x), cov._span(y)]
                if x != y and not cxy.any():
                    continue
                part = np.sum((b[:, cov._span(x)] @ cxy) * b[:, cov._span(y)], axis=1)
                parts[x if x == y else f"{x},{y}"] = (1 if x == y else 2) * part
        order = sorted(parts, key=lambda k: -float(np.sum(np.abs(parts[k]) * weight)))
        u = Uncertainty(
            shape, std, out_cov.reshape(shape + shape),
            {k: np.ldexp(parts[k] * t * t, 2 * r).reshape(shape) for k in order},
            share={k: _fraction(parts[k], unit).reshape(shape) for k in order},
            total_share={k: float(np.sum(parts[k] * weight)) / total if total > 0
                         else 0.0 for k in order},
            warnings=list(d.warnings))
    if not np.isfinite(jac).all():
        u.warnings.append("the propagated covariance is not finite: the Jacobian has "
                          "inf or nan")
        return u
    if not np.isfinite(scaled).all():
        u.warnings.append("the propagated covariance is not finite: an input's "
                          "covariance has inf or nan")
        return u
    if not np.isfinite(std).all():
        u.warnings.append("the standard uncertainty overflows float64 (inf); its "
                          "shares are still right")
    elif not np.isfinite(out_cov).all():
        what = "covariance" if shape else "variance"
        u.warnings.append(f"the propagated {what} overflows float64 (shown as inf); "
                          "the standard uncertainty and the shares are right")
    _second_order(u, target, inputs, cov, max_elements, var, r)
    return u


def _second_order(u: Uncertainty, target, inputs, cov: Covariance,
                  max_elements: int, var: np.ndarray, r: np.ndarray) -> None:
    """The second-order std and mean shift; a note when the first order is off.
    ``var`` is the first-order variance of each output component in units of
    ``2^(2 r)``; each Hessian is scaled the same way (``D H D / 2^r``)."""
    m, n = u.std.size, cov.scaled.shape[0]
    if m == 0 or n == 0:
        return  # nothing to propagate
    if m * n * n > MAX_HESSIAN_WORK:
        u.notes.append(f"non-linearity not checked: {m:,} Hessians of {n:,} x {n:,} "
                       "would be too large")
        return
    try:
        hessians = _hessians(target, inputs, cov.names, m, max_elements)
    except GradcliError as exc:
        u.notes.append(f"non-linearity not checked: the Hessian failed: {exc}")
        return
    e = cov.exponents
    first_s, second_s, shift_s, at = [], [], [], []
    with np.errstate(all="ignore"):
        for k, h in enumerate(hessians):
            hs, hr = _row_scaled(np.asarray(h, np.float64).reshape(1, -1),
                                 (e[:, None] + e[None, :]).reshape(1, -1))
            # one power of two for this component: the larger of J's and H's
            rk = int(max(r[k], hr[0])) if np.any(hs) else int(r[k])
            hs = np.ldexp(hs.reshape(n, n), int(max(hr[0] - rk, -4000)))
            v = var[k] * np.ldexp(1.0, int(max(2 * (r[k] - rk), -8000)))
            a = hs @ cov.scaled
            extra = 0.5 * np.sum(a * a.T)
            first_s.append(np.sqrt(v))
            second_s.append(np.sqrt(v + max(extra, 0.0)))
            shift_s.append(0.5 * np.trace(a))
            at.append(rk)
        first_s, second_s = np.array(first_s), np.array(second_s)
        at = np.array(at, dtype=np.int64)
        second = np.ldexp(second_s, at)
        shift = np.ldexp(np.array(shift_s), at)
    u.second_order_std = second.reshape(u.shape)
    u.mean_shift = shift.reshape(u.shape)
    if not (np.isfinite(second_s).all() and np.isfinite(shift_s).all()):
        u.notes.append("non-linearity not checked: the Hessian has inf or nan")
        return
    with np.errstate(all="ignore"):
        excess = np.where(first_s > 0, second_s / np.where(first_s > 0, first_s, 1.0) - 1,
                          np.where(second_s > 0, np.inf, 0.0))
    k = int(np.argmax(excess))
    if excess[k] > NONLINEAR:
        first = u.std.reshape(-1)
        where = "" if not u.shape else f" at {list(np.unravel_index(k, u.shape))}"
        how = (f"{excess[k]:.0%} more than" if math.isfinite(excess[k])
               else "above")
        u.notes.append(
            f"the function is strongly non-linear over +-1 sigma{where}: the second-order "
            f"standard uncertainty {second[k]:.3g} is {how} the first-order "
            f"{first[k]:.3g} (and the mean shifts by {shift[k]:.3g}); the first-order "
            "error bar is not reliable here")


def _hessians(target, inputs, names: list[str], m: int, max_elements: int) -> list:
    """The Hessian of each output component with respect to ``names``, flattened
    into a square matrix each."""
    from . import compute

    if m == 1:
        d = compute.hessian(target, inputs, wrt=names, max_elements=max_elements)
        return [compute.hessian_matrix(d, inputs, names)]
    from . import transforms

    f, dtype = compute._as_function(target, inputs, names, max_elements)
    sizes = [inputs[n].size for n in names]
    out = []
    for k in range(m):
        def component(*xs, k=k):
            return f(*xs).reshape(-1)[k]

        with np.errstate(all="ignore"), compute._default_dtype(dtype), \
                compute._graph_of(target):
            hess = transforms.hessian(component, argnums=tuple(range(len(names))))(
                *(inputs[n] for n in names))
        out.append(np.block([[np.asarray(hess[i][j]._data).reshape(si, sj)
                              for j, sj in enumerate(sizes)]
                             for i, si in enumerate(sizes)]))
    return out
