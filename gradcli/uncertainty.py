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
    ``names`` order (each input's components in C order)."""

    names: list[str]
    sizes: list[int]
    matrix: np.ndarray

    def block(self, a: str, b: str) -> np.ndarray:
        i, j = self.names.index(a), self.names.index(b)
        oi, oj = sum(self.sizes[:i]), sum(self.sizes[:j])
        return self.matrix[oi:oi + self.sizes[i], oj:oj + self.sizes[j]]


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
    c = Covariance(names, sizes, np.zeros((total, total)))
    for n in names:
        if n in sigmas:
            c.block(n, n)[...] = np.diag(_sigma(n, sigmas[n], inputs[n]) ** 2)
    seen: set[frozenset] = set()
    for (a, b), value in covs.items():
        if frozenset((a, b)) in seen:
            raise UsageError(f"--cov {a},{b}: the covariance of {a} and {b} is given twice")
        seen.add(frozenset((a, b)))
        block = _cov_block(a, b, value, inputs)
        if a == b:
            scale = float(np.max(np.abs(block), initial=0.0))
            if np.max(np.abs(block - block.T), initial=0.0) > 1e-12 * scale:
                raise UsageError(f"--cov {a},{a}: the covariance matrix is not symmetric")
            c.block(a, a)[...] = (block + block.T) / 2
        else:
            c.block(a, b)[...] = block
            c.block(b, a)[...] = block.T
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
    if not c.matrix.size:
        return
    eig = np.linalg.eigvalsh(c.matrix)
    tol = 1e-12 * max(float(np.max(np.abs(eig))), np.finfo(float).tiny) * len(eig)
    if eig[0] < -tol:
        pairs = len(c.names) > 1 or c.sizes[0] > 1
        raise UsageError(
            f"--sigma/--cov: the covariance matrix of {', '.join(c.names)} is not "
            f"positive semi-definite (smallest eigenvalue {eig[0]:.3g})",
            hint="a covariance of A and B is at most sigma_A * sigma_B in size"
            if pairs else None)


@dataclass
class Uncertainty:
    """The propagated uncertainty of a value of shape ``shape``."""

    shape: tuple[int, ...]
    std: np.ndarray  # the output's shape
    covariance: np.ndarray  # shape + shape
    contributions: dict[str, np.ndarray]  # name (or "a,b") -> variance, output's shape
    second_order_std: np.ndarray | None = None
    mean_shift: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def variance(self) -> np.ndarray:
        return self.std ** 2

    def shares(self) -> dict[str, np.ndarray]:
        """Each contribution as a fraction of the variance (0 where it is 0)."""
        var = np.diagonal(self.covariance.reshape(self.std.size, self.std.size))
        var = var.reshape(self.shape)
        with np.errstate(all="ignore"):
            return {k: np.where(var > 0, v / np.where(var > 0, var, 1.0), 0.0)
                    for k, v in self.contributions.items()}

    def total_shares(self) -> dict[str, float]:
        """Each contribution's share of the summed variance of all components."""
        total = float(np.sum(self.variance))
        return {k: float(np.sum(v)) / total if total > 0 else 0.0
                for k, v in self.contributions.items()}


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
    blocks = {n: d.blocks[n].reshape(m, inputs[n].size).astype(np.float64)
              for n in cov.names}
    with np.errstate(all="ignore"):
        jac = np.concatenate([blocks[n] for n in cov.names], axis=1)
        out_cov = jac @ cov.matrix @ jac.T
        out_cov = (out_cov + out_cov.T) / 2
        std = np.sqrt(np.maximum(np.diagonal(out_cov), 0.0)).reshape(shape)
        contributions = {}
        for i, a in enumerate(cov.names):
            for b in cov.names[i:]:
                sab = cov.block(a, b)
                if a != b and not sab.any():
                    continue
                part = np.sum((blocks[a] @ sab) * blocks[b], axis=1)
                contributions[a if a == b else f"{a},{b}"] = (
                    (1 if a == b else 2) * part).reshape(shape)
    order = sorted(contributions, key=lambda k: -float(np.sum(np.abs(contributions[k]))))
    u = Uncertainty(shape, std, out_cov.reshape(shape + shape),
                    {k: contributions[k] for k in order}, warnings=list(d.warnings))
    if not np.isfinite(out_cov).all():
        u.warnings.append("the propagated covariance is not finite: the Jacobian has "
                          "inf or nan")
        return u
    _second_order(u, target, inputs, cov, max_elements)
    return u


def _second_order(u: Uncertainty, target, inputs, cov: Covariance,
                  max_elements: int) -> None:
    """The second-order std and mean shift; a note when the first order is off."""
    m, n = u.std.size, cov.matrix.shape[0]
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
    with np.errstate(all="ignore"):
        hs = [h @ cov.matrix for h in hessians]
        extra = np.array([0.5 * np.sum(a * a.T) for a in hs])
        shift = np.array([0.5 * np.trace(a) for a in hs])
        first = u.std.reshape(-1)
        second = np.sqrt(first ** 2 + np.maximum(extra, 0.0))
    u.second_order_std = second.reshape(u.shape)
    u.mean_shift = shift.reshape(u.shape)
    if not np.isfinite(second).all():
        u.notes.append("non-linearity not checked: the Hessian has inf or nan")
        return
    excess = np.where(first > 0, second / np.where(first > 0, first, 1.0) - 1,
                      np.where(second > 0, np.inf, 0.0))
    k = int(np.argmax(excess))
    if excess[k] > NONLINEAR:
        at = "" if not u.shape else f" at {list(np.unravel_index(k, u.shape))}"
        how = (f"{excess[k]:.0%} more than" if math.isfinite(excess[k])
               else "above")
        u.notes.append(
            f"the function is strongly non-linear over +-1 sigma{at}: the second-order "
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
