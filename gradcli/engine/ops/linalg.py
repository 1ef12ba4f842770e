"""Linear algebra: products and matrix functions over the last axes.

Rules work on stacks and on batches of cotangents alike (matrices are the last
two axes); a stack against one matrix is folded into one product (``_mm``).
"""

from __future__ import annotations

import functools
import math
from collections import namedtuple

import numpy as np

from ...errors import EvaluationError
from ..op import MOVES, NO_BIGGER, NUMPY, REALS, SAME, op, required
from .elementwise import scaled_form, where
from ..tensor import Tensor


def _swap(a):
    """Swap the last two axes (matrix transpose of a stack)."""
    return np.swapaxes(a, -1, -2)


def _mm(a, b):
    """``a @ b``, with a stack against one matrix or vector folded into one
    product: numpy's matmul loops over the stack, one small product per matrix
    (what a Jacobian's or Hessian's batch of cotangents would cost)."""
    if type(a) is np.ndarray and type(b) is np.ndarray:
        if a.ndim > 2 and b.ndim <= 2:
            return np.tensordot(a, b, axes=1)
        if a.ndim <= 2 and b.ndim > 2:
            out = np.tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 2]))
            return np.moveaxis(out, 0, -2) if a.ndim == 2 else out
    return np.matmul(a, b)


def _nd(x) -> int:
    """``np.ndim(x)``, read off an array or a Tensor (create_graph's rules run on
    Tensors, where np.ndim goes through numpy's dispatch to gradcli's helper)."""
    return x.ndim if type(x) is np.ndarray or type(x) is Tensor else np.ndim(x)


def _times_each(g, v):
    """``g[..., None] * v``: each cotangent of a batch of scalars times ``v``."""
    if _nd(g) == 0:
        return g * v
    return np.multiply.outer(g, v) if type(g) is np.ndarray else g[..., None] * v


def _out_axes(n: int) -> tuple[int, ...]:
    """The last ``n`` axes: a scalar factor's gradient sums over the output's."""
    return tuple(range(-n, 0))


def _products(*vjps):
    """support of a product: its own rules run on the cotangent's nonzero pattern
    and all-ones factors count the nonzero terms each gradient entry sums."""

    def support(nz, out, *inputs):
        ones = [np.ones(np.shape(x)) for x in inputs]
        f = nz.astype(np.float64)
        return tuple(vjp(f, None, *ones) != 0 for vjp in vjps)

    return support


def _dot_nd(na: int, nb: int) -> tuple[str, str, str]:
    """Subscripts of numpy's N-d dot (a's last axis against b's second to last):
    a's, b's and the output's letters, ``z`` the axis summed over."""
    fa = "abcdefghijklm"[: na - 1]
    fb = "nopqrstuvwxy"[: max(nb - 2, 0)]
    if nb == 1:
        return fa + "z", "z", fa
    return fa + "z", fb + "zZ", fa + fb + "Z"


def _dot_vjp_a(g, out, a, b):
    na, nb = _nd(a), _nd(b)  # (not .ndim: a constant may be a Python number)
    if na > 2 or nb > 2:
        sa, sb, so = _dot_nd(na, nb)
        return np.einsum(f"...{so},{sb}->...{sa}", g, b)
    if na == 0:
        return np.sum(g * b, axis=_out_axes(nb)) if nb else g * b
    if nb == 0:
        return g * b
    return _times_each(g, b) if nb == 1 else _mm(g, _swap(b))


def _dot_vjp_b(g, out, a, b):
    na, nb = _nd(a), _nd(b)
    if na > 2 or nb > 2:
        sa, sb, so = _dot_nd(na, nb)
        return np.einsum(f"...{so},{sa}->...{sb}", g, a)
    if nb == 0:
        return np.sum(g * a, axis=_out_axes(na)) if na else g * a
    if na == 0:
        return g * a
    if na == 1:
        return _times_each(g, a) if nb == 1 else a[:, None] * g[..., None, :]
    return _mm(g, a) if nb == 1 else _mm(_swap(a), g)


def _dot_shape(shapes, params):
    a, b = (tuple(s) for s in shapes)
    if not a or not b:
        return a or b
    return a[:-1] + b[:-2] + b[-1:] if len(b) > 1 else a[:-1]


def _matmul_shape(shapes, params):
    a, b = (tuple(s) for s in shapes)
    if not a or not b:
        return a or b
    return np.broadcast_shapes(a[:-2], b[:-2]) + a[-2:-1] + b[-1:] * (len(b) > 1)


def _product_form(sp, a, b):
    """Matrix form of a @ b, for column vectors and matrices."""
    kinds = (a.kind, b.kind)
    if kinds == ("v", "v"):
        return ("s", a.e.T * b.e)
    if kinds == ("m", "v"):
        return ("v", a.e * b.e)
    if kinds == ("v", "m"):
        return ("v", b.e.T * a.e)
    return ("m", a.e * b.e) if kinds == ("m", "m") else None


@op(_dot_vjp_a, _dot_vjp_b, grad_fn="DotBackward0", rule="d(a.b) = da.b + a.db",
    matrix=lambda sp, a, b: scaled_form(sp, a, b) if a.plain or b.plain
    else _product_form(sp, a, b),
    support=_products(_dot_vjp_a, _dot_vjp_b),
    shape=_dot_shape,
    sym=SAME, numpy=(np.dot,))
def dot(a, b):
    # N-d: a's last axis against b's second to last (numpy's rule, not matmul's)
    return np.dot(a, b)


# Vectors are promoted to matrices as matmul does, and the promoted axis dropped.
def _matmul_vjp_a(g, out, a, b):
    if np.ndim(b) == 1:
        return _times_each(g, b)
    if np.ndim(a) == 1 and np.ndim(b) > 2:
        return _mm(g[..., None, :], _swap(b))[..., 0, :]
    return _mm(g, _swap(b))


def _matmul_vjp_b(g, out, a, b):
    if np.ndim(a) == 1:
        return _times_each(g, a) if np.ndim(b) == 1 else a[:, None] * g[..., None, :]
    if np.ndim(b) == 1:
        return _mm(g, a) if np.ndim(a) == 2 else _mm(g[..., None, :], a)[..., 0, :]
    return _mm(_swap(a), g)


@op(_matmul_vjp_a, _matmul_vjp_b, grad_fn="MmBackward0",
    support=_products(_matmul_vjp_a, _matmul_vjp_b),
    rule="d(a@b) = da@b + a@db", sym=SAME, numpy=(np.matmul,), shape=_matmul_shape,
    matrix=_product_form)
def matmul(a, b):
    return np.matmul(a, b)


def _outer_vjp_a(g, out, a, b):
    return np.reshape(_mm(g, np.ravel(b)), np.shape(g)[:-2] + np.shape(a))


def _outer_vjp_b(g, out, a, b):
    return np.reshape(_mm(np.ravel(a), g), np.shape(g)[:-2] + np.shape(b))


@op(_outer_vjp_a, _outer_vjp_b, support=_products(_outer_vjp_a, _outer_vjp_b),
    grad_fn="OuterBackward0", rule="d(outer(a,b)) = outer(da,b) + outer(a,db)",
    shape=lambda shapes, params: (math.prod(shapes[0]), math.prod(shapes[1])),
    sym=SAME, numpy=(np.outer,))
def outer(a, b):
    return np.outer(a, b)


def _eye_like(shape, dtype):
    return np.eye(shape[-2], shape[-1], dtype=dtype)


def _trace_vjp(g, out, a, *, offset=0, axis1=0, axis2=1):
    # g on the chosen diagonal of two new axes, zero elsewhere; the new axes are
    # counted from the end, so batch axes in front pass through.
    nd = len(a.shape)
    ax1, ax2 = axis1 % nd, axis2 % nd
    e = np.eye(a.shape[ax1], a.shape[ax2], k=offset, dtype=a.dtype)
    if ax1 > ax2:
        e = e.T
    shape = [1] * nd
    shape[ax1], shape[ax2] = a.shape[ax1], a.shape[ax2]
    return np.expand_dims(g, (min(ax1, ax2) - nd, max(ax1, ax2) - nd)) * e.reshape(shape)


def _trace_shape(shapes, params):
    nd = len(shapes[0])
    if nd < 2:
        raise ValueError("trace takes a matrix or a stack")
    drop = {params.get("axis1", 0) % nd, params.get("axis2", 1) % nd}
    return tuple(n for i, n in enumerate(shapes[0]) if i not in drop)


@op(_trace_vjp, grad_fn="TraceBackward0", shape=_trace_shape, support=MOVES,
    saves="shape", rule="the gradient on the diagonal", sym=SAME, numpy=(np.trace,),
    matrix=lambda sp, a, **params: ("s", sp.Trace(a.e))
    if a.kind == "m" and not params.get("offset") and
    {params.get("axis1", 0) % 2, params.get("axis2", 1) % 2} == {0, 1} else None)
def trace(a, *, offset=0, axis1=0, axis2=1):
    nd = np.ndim(a)
    if nd < 2:
        raise ValueError(f"trace takes a matrix or a stack, not shape {np.shape(a)}")
    if not (-nd <= axis1 < nd and -nd <= axis2 < nd) or axis1 % nd == axis2 % nd:
        raise ValueError(f"trace: axes {axis1} and {axis2} are not two axes of {nd}")
    return np.trace(a, offset=offset, axis1=axis1, axis2=axis2)


def _cofactors(a):
    """adj(A)^T, each entry a signed (n-1)x(n-1) minor: no inverse, so it is
    defined, and differentiable again (on Tensors), at a singular A too."""
    n = np.shape(a)[-1]
    if n == 1:
        return np.ones(np.shape(a))
    keep = np.array([[k for k in range(n) if k != i] for i in range(n)])
    # minors[..., i, j, :, :]: A without row i and column j
    minors = a[..., keep[:, None, :, None], keep[None, :, None, :]]
    sign = 1.0 - 2.0 * (np.add.outer(np.arange(n), np.arange(n)) % 2)
    return sign * np.linalg.det(minors)


def _adjugate_t(a, det):
    """adj(A)^T = det(A) inv(A)^T, the gradient of det: also at a singular A."""
    det = np.reshape(det, np.shape(det) + (1, 1))  # a stack: one det per matrix
    if isinstance(a, Tensor):  # create_graph: the rule must be differentiable too
        try:
            np.linalg.inv(a._data)
        except np.linalg.LinAlgError:
            return _cofactors(a)
        return det * _swap(np.linalg.inv(a))
    try:
        return det * _swap(np.linalg.inv(a))
    except np.linalg.LinAlgError:
        # A = U diag(s) V^T gives adj(A) = det(U V^T) V diag(prod_{j != i} s) U^T,
        # which needs no inverse.
        u, s, vt = np.linalg.svd(a)
        n = s.shape[-1]
        others = np.stack([np.prod(np.delete(s, i, axis=-1), axis=-1) for i in range(n)],
                          axis=-1)
        sign = np.linalg.det(u @ vt)[..., None, None]
        adj = sign * (_swap(vt) * others[..., None, :]) @ _swap(u)
        return _swap(adj)


@op(lambda g, out, a: np.reshape(g, np.shape(g) + (1, 1)) * _adjugate_t(a, out),
    grad_fn="LinalgDetBackward0", shape=NO_BIGGER,
    support=lambda nz, out, a: (nz[..., None, None],),
    saves="both", rule="adj(A)^T = det(A) inv(A)^T",
    kink="at a singular A the gradient is the adjugate (no inverse needed)",
    sym=("array", lambda sp, a: sp.Matrix(a.tolist()).det(method="laplace")),
    guard=True, domain=("matrix",), numpy=(np.linalg.det,))
def det(a):
    return np.linalg.det(a)


@op(lambda g, out, a: -_mm(_swap(out), _mm(g, _swap(out))),
    grad_fn="LinalgInvExBackward0", shape=NO_BIGGER,
    support=lambda nz, out, a: (np.any(nz, axis=(-2, -1), keepdims=True),),
    saves="out", rule="-inv(A)^T G inv(A)^T",
    sym=("array", lambda sp, a: np.array(
        sp.Matrix(a.tolist()).adjugate(method="laplace").tolist(), dtype=object
    ) / sp.Matrix(a.tolist()).det(method="laplace")),
    domain=("matrix",), numpy=(np.linalg.inv,))
def inv(a):
    return np.linalg.inv(a)


def _solve_t(a, g, b):
    """``solve(A^T, g)`` for every cotangent in ``g`` (batch + the output's
    shape), with one factorisation when A is one matrix: numpy 2 reads a bare
    batch of vectors as a matrix."""
    if np.ndim(a) > 2:  # a stack: numpy's broadcasting solve, vectors as columns
        if np.ndim(b) == 1:
            return np.linalg.solve(_swap(a), g[..., None])[..., 0]
        return np.linalg.solve(_swap(a), g)
    if isinstance(g, Tensor) or isinstance(a, Tensor):  # create_graph: no batch
        if np.ndim(b) == 1 and np.ndim(g) > 1:
            return _swap(np.linalg.solve(_swap(a), _swap(g)))
        return np.linalg.solve(_swap(a), g)
    col = -1 if np.ndim(b) == 1 else -2  # the axis that solve consumes
    rhs = np.moveaxis(g, col, 0)
    x = np.linalg.solve(_swap(a), rhs.reshape(rhs.shape[0], -1)).reshape(rhs.shape)
    return np.moveaxis(x, 0, col)


def _solve_support(nz, out, a, b):
    # x = inv(A) b: every entry of A reaches every x of its matrix; b's column c
    # reaches x's column c.
    col = -1 if np.ndim(b) == 1 else -2
    rb = np.any(nz, axis=col, keepdims=True)
    ra = np.any(rb, axis=-1 if np.ndim(b) == 1 else (-2, -1))[..., None, None]
    return ra, rb


def _solve_vjp_a(g, out, a, b):
    gb = _solve_t(a, g, b)
    return -gb[..., :, None] * out[..., None, :] if np.ndim(b) == 1 else -_mm(gb, _swap(out))


def _solve_shape(shapes, params):
    a, b = (tuple(s) for s in shapes)
    if len(b) == 1:
        return a[:-1]
    return np.broadcast_shapes(a[:-2], b[:-2]) + b[-2:]


@op(_solve_vjp_a, lambda g, out, a, b: _solve_t(a, g, b),
    grad_fn="LinalgSolveExBackward0", shape=_solve_shape, saves="both",
    support=_solve_support,
    rule="db = solve(A^T, g); dA = -db x^T",
    sym=("array", lambda sp, a, b: np.dot(np.array(
        sp.Matrix(a.tolist()).adjugate(method="laplace").tolist(), dtype=object
    ), b) / sp.Matrix(a.tolist()).det(method="laplace")),
    domain=("matrix", REALS),
    numpy=(np.linalg.solve,))
def solve(a, b):
    # numpy 2's rule: b is a vector only when 1-d, else a stack of matrices
    # broadcast against a's stack.
    if np.ndim(a) < 2 or np.ndim(b) < 1:
        raise ValueError(
            f"solve takes a square matrix (or a stack) and a vector or matrix (or a "
            f"stack), not shapes {np.shape(a)} and {np.shape(b)}"
        )
    return np.linalg.solve(a, b)


# -- einsum ------------------------------------------------------------------------
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_plan(subscripts: str, shapes) -> tuple[tuple[str, ...], str]:
    """``subscripts`` with every ``...`` spelled out in letters of its own and the
    output made explicit (numpy's implicit output: the letters used once, sorted,
    after the ellipsis axes). Worked out once per subscripts and shapes."""
    if not isinstance(subscripts, str):
        raise ValueError("einsum: give the subscripts as a string")
    return _spelled(subscripts, tuple(tuple(s) for s in shapes))


@functools.lru_cache(maxsize=256)
def _spelled(subscripts: str, shapes) -> tuple[tuple[str, ...], str]:
    text = subscripts.replace(" ", "")
    lhs, arrow, rhs = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} operand subscripts for {len(shapes)} operands")
    used = set(text) - set(".,->")
    if not used <= set(_LETTERS):
        raise ValueError(f"einsum: subscripts {subscripts!r} are not letters")
    spare = [c for c in _LETTERS if c not in used]
    width = max([len(s) - (len(t) - 3) for t, s in zip(terms, shapes) if "..." in t],
                default=0)
    if width > len(spare):
        raise ValueError("einsum: too many axes under '...'")
    dots = "".join(spare[:width])
    spelled = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            n = len(s) - (len(t) - 3)
            if n < 0:
                raise ValueError(f"einsum: {t!r} has more letters than axes {tuple(s)}")
            t = t.replace("...", dots[width - n:])
        if len(t) != len(s):
            raise ValueError(f"einsum: {t!r} does not match an operand of shape {tuple(s)}")
        spelled.append(t)
    if arrow:
        out = rhs.replace("...", dots)
    else:
        letters = "".join(spelled)
        out = dots + "".join(sorted(c for c in set(letters) - set(dots)
                                    if letters.count(c) == 1))
    return tuple(spelled), out


# A matrix product of views: which operand goes left, each one's axes in the
# order (batch, free, summed) or (batch, summed, free) and merged into the
# matrices' two axes (None: already so), and the product's axes back into the
# target's (None: already so).
_Product = namedtuple("_Product", "swap perm_l shape_l perm_r shape_r shape_out perm_out")


@functools.lru_cache(maxsize=256)
def _as_product(tx: str, sx: tuple, ty: str, sy: tuple, target: str):
    """How ``einsum(tx,ty->target)`` on operands of shapes ``sx``, ``sy`` is one
    (batched) matrix product of transposed and reshaped views, or None: letters
    repeated in a term (diagonals, traces), summed within one operand, sizes that
    broadcast, or no product at all (an elementwise multiply) stay einsum's."""
    if (len(set(tx)) != len(tx) or len(set(ty)) != len(ty)
            or len(set(target)) != len(target)):
        return None
    size: dict = {}
    for t, s in ((tx, sx), (ty, sy)):
        for c, n in zip(t, s):
            if size.setdefault(c, n) != n:
                return None
    if not set(target) <= size.keys():
        return None
    batch = [c for c in target if c in tx and c in ty]
    summed = [c for c in tx if c in ty and c not in target]
    fx = [c for c in target if c in tx and c not in ty]
    fy = [c for c in target if c in ty and c not in tx]
    if (len(batch) + len(summed) + len(fx) != len(tx)
            or len(batch) + len(summed) + len(fy) != len(ty)):
        return None  # a letter summed within one operand
    if not summed and not (fx and fy):
        return None
    rest = [c for c in target if c not in batch]
    swap = rest != fx + fy and rest == fy + fx
    (tl, fl), (tr, fr) = ((ty, fy), (tx, fx)) if swap else ((tx, fx), (ty, fy))
    nb = tuple(size[c] for c in batch)
    m, k, n = (math.prod(size[c] for c in g) for g in (fl, summed, fr))

    def arranged(t, order, shape):
        perm = tuple(t.index(c) for c in order)
        natural = tuple(size[c] for c in order)
        return (None if perm == tuple(range(len(t))) else perm,
                None if shape == natural else shape)

    perm_l, shape_l = arranged(tl, batch + fl + summed, nb + (m, k))
    perm_r, shape_r = arranged(tr, batch + summed + fr, nb + (k, n))
    got = batch + fl + fr
    shape_out = tuple(size[c] for c in got)
    perm_out = tuple(got.index(c) for c in target)
    return _Product(swap, perm_l, shape_l, perm_r, shape_r,
                    None if shape_out == nb + (m, n) else shape_out,
                    None if perm_out == tuple(range(len(target))) else perm_out)


def _product(p: _Product, x, y):
    """``einsum`` by the plan ``p`` of ``_as_product``: np.matmul on views (BLAS
    reads transposed matrices as they are; only merged axes may copy)."""
    if p.swap:
        x, y = y, x
    if p.perm_l is not None:
        x = x.transpose(p.perm_l)
    if p.shape_l is not None:
        x = x.reshape(p.shape_l)
    if p.perm_r is not None:
        y = y.transpose(p.perm_r)
    if p.shape_r is not None:
        y = y.reshape(p.shape_r)
    if _broadcast(x) or _broadcast(y):
        # BLAS reads matrices in memory: a broadcast operand (sum's ones) is
        # copied for the product, after the result is allocated, and dropped
        # right after it (with glibc's default thresholds, one array a call
        # fewer faulted in than a copy held across both operands' products).
        out = np.empty(np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
                       + (x.shape[-2], y.shape[-1]), np.result_type(x, y))
        out = np.matmul(np.ascontiguousarray(x) if _broadcast(x) else x,
                        np.ascontiguousarray(y) if _broadcast(y) else y, out=out)
    else:
        out = np.matmul(x, y)
    if p.shape_out is not None:
        out = out.reshape(p.shape_out)
    return out if p.perm_out is None else out.transpose(p.perm_out)


def _einsum_back(g, xs, i, subscripts, others=None, optimize=False):
    """The gradient of operand ``i``: einsum of ``g`` (batch axes under ``...``)
    with the other operands into operand i's letters. Letters repeated in it
    (a diagonal) come back through identity matrices, letters found nowhere else
    through ones (a sum)."""
    terms, out = _einsum_plan(subscripts, [np.shape(x) for x in xs])
    mine = terms[i]
    others = xs if others is None else others
    big = optimize or max(np.size(x) for x in (g, *others)) >= _EINSUM_BLAS
    if (big and len(xs) == 2 and type(g) is np.ndarray and g.ndim >= len(out)
            and type(others[1 - i]) is np.ndarray):
        # One matrix product (up to transposes): np.matmul on views, the batch of
        # cotangents (the axes in front of the output's) as free axes of g.
        lead = "".join(c for c in _LETTERS if c not in mine + terms[1 - i] + out)
        lead = lead[: g.ndim - len(out)]
        y = others[1 - i]
        p = (_as_product(lead + out, g.shape, terms[1 - i], y.shape, lead + mine)
             if len(lead) == g.ndim - len(out) else None)
        if p is not None:
            return _product(p, g, y)
    sizes = dict(zip(mine, np.shape(xs[i])))
    spare = iter(c for c in _LETTERS if c not in "".join(terms) + out)
    ops = [g] + [x for k, x in enumerate(others) if k != i]
    subs = ["..." + out] + [t for k, t in enumerate(terms) if k != i]
    seen = set("".join(subs))
    target = ""
    for c in mine:
        if c in target:  # a repeat: a fresh letter tied to c by the identity
            f = next(spare)
            ops.append(np.eye(sizes[c]))
            subs.append(c + f)
            target += f
            continue
        if c not in seen:
            ops.append(np.ones(sizes[c]))
            subs.append(c)
            seen.add(c)
        target += c
    # A contraction path (BLAS) pays off from a few thousand elements on; below,
    # its planning costs more than the sums (a 3x3 product: 19 us -> 160 us).
    big = big or max(np.size(o) for o in ops) >= _EINSUM_BLAS
    if big and type(g) is np.ndarray and _broadcast(g):
        # A broadcast cotangent (sum's ones): BLAS wants it in memory; copying
        # it costs less than einsum's own handling (500x500: 12 ms -> 8 ms).
        ops[0] = np.ascontiguousarray(g)
    equation = ",".join(subs) + "->..." + target
    if big and len(ops) > 2 and all(type(o) is np.ndarray for o in ops):
        # numpy plans the order of the pairwise contractions on every call:
        # once per equation and shapes here.
        path = _einsum_path(equation, tuple(o.shape for o in ops))
        return np.einsum(equation, *ops, optimize=path)
    return np.einsum(equation, *ops, optimize=bool(big))


@functools.lru_cache(maxsize=256)
def _einsum_path(equation: str, shapes: tuple) -> list:
    # (numpy's own planner, on stand-ins of the shapes: it reads only those)
    stand_ins = [np.broadcast_to(np.zeros(()), s) for s in shapes]
    return np.einsum_path(equation, *stand_ins, optimize="greedy")[0]


_EINSUM_BLAS = 4096


def _broadcast(g) -> bool:
    """Whether array ``g`` repeats entries along an axis (stride 0: sum's ones)."""
    return any(s == 0 and n > 1 for s, n in zip(g.strides, g.shape))


def _einsum_vjp(g, out, *xs, subscripts, optimize=False, need=None):
    # need: which operands want a gradient (the engine's; a constant gets none).
    return [_einsum_back(g, xs, i, subscripts, optimize=optimize)
            if need is None or need[i] else None for i in range(len(xs))]


def _einsum_support(nz, out, *xs, subscripts, optimize=False):
    ones = [np.ones(np.shape(x)) for x in xs]
    return tuple(_einsum_back(nz.astype(float), xs, i, subscripts, others=ones) != 0
                 for i in range(len(xs)))


def _einsum_shape(shapes, params):
    shapes = shapes[0]
    terms, out = _einsum_plan(required(params, "subscripts"), shapes)
    sizes: dict = {}
    for t, s in zip(terms, shapes):
        for c, n in zip(t, s):
            sizes[c] = max(sizes.get(c, 1), n) if n != 1 else sizes.get(c, 1)
    return tuple(sizes[c] for c in out)


def _sublist(labels) -> str:
    """numpy's interleaved form's labels (ints 0-51 and Ellipsis) as subscripts:
    0-25 are 'A'-'Z', 26-51 'a'-'z', as numpy reads them."""
    out = []
    for s in labels:
        if s is Ellipsis:
            out.append("...")
        elif isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 <= s < 52:
            out.append(chr(ord("A") + s) if s < 26 else chr(ord("a") + s - 26))
        else:
            raise ValueError(f"einsum: subscript {s!r} is not within the valid range [0, 52)")
    return "".join(out)


def _einsum_arguments(args, kwargs):
    """numpy's calls, ``einsum("ij,jk", a, b)`` and the interleaved
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])``, as one sequence and the subscripts."""
    if args and isinstance(args[0], str):
        return (list(args[1:]),), {**kwargs, "subscripts": args[0]}
    if len(args) >= 2 and "subscripts" not in kwargs:
        pairs, out = (args, None) if len(args) % 2 == 0 else (args[:-1], args[-1])
        subscripts = ",".join(_sublist(s) for s in pairs[1::2])
        if out is not None:
            subscripts += "->" + _sublist(out)
        return (list(pairs[0::2]),), {**kwargs, "subscripts": subscripts}
    return args, kwargs


@op(_einsum_vjp, grad_fn="EinsumBackward0", multi=True, takes_need=True, nin=-1,
    support=_einsum_support,
    shape=_einsum_shape, method=False, expr=False, sym=SAME, numpy=(np.einsum,),
    rule="einsum of the gradient with the other operands into each one's subscripts")
def einsum(xs, *, subscripts, optimize=False):
    # optimize= as numpy takes it: the forward is numpy's own call, bit for bit.
    if not isinstance(subscripts, str):
        raise ValueError("einsum: give the subscripts as a string")
    return np.einsum(subscripts, *xs, optimize=optimize)


einsum.extra["prepare"] = _einsum_arguments
einsum.extra["numpy_signature"] = "(subscripts, *operands, optimize=False)"
einsum.fast_call = False


# -- matrix functions and decompositions ------------------------------------------
# A decomposition has several results (numpy returns a named tuple), an op one
# array: its op is internal (named with a leading underscore: no expression
# name, no gc.* function) and returns its results packed along the last axis;
# the numpy function (np.linalg.eigh(t), ...) runs it once and returns the named
# tuple of slices (getitem views). Its one VJP gets the cotangents of all the
# results at once, packed the same way: zeros for the results no one used.
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


def _raw(x):
    """The values of a Tensor (rules run on Tensors under create_graph)."""
    return getattr(x, "_data", x)


def _whole_matrix(nz, out, a, **params):
    """support: a nonzero cotangent anywhere in a matrix's results reaches all of
    that matrix (the factorisations mix every entry)."""
    return (np.any(nz, axis=(-2, -1), keepdims=True),)


def _square(a, prefix: str = "") -> None:
    """(An op's errors get its name in front; a composite gives it as ``prefix``.)"""
    shape = np.shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{prefix}takes a square matrix or a stack of them, not shape "
                         f"{shape}")


def _on_finite(fn, a, read=None):
    """``fn(a)``, except that a matrix of the stack with inf or nan among the
    entries it reads (``read``: a mask, default all) gets nan results (LAPACK
    would raise or not converge): inf and nan are results, and a stack's other
    matrices keep theirs."""
    a = np.asarray(a)
    bad = ~np.isfinite(a) if read is None else ~np.isfinite(a) & read
    ok = ~np.any(bad, axis=(-2, -1))
    if ok.all():
        return fn(a)
    eye = np.eye(a.shape[-2], a.shape[-1], dtype=a.dtype)
    res = fn(np.where(ok[..., None, None], a, eye))
    return np.where(ok.reshape(ok.shape + (1,) * (res.ndim - ok.ndim)), res, np.nan)


def _triangle(n: int, upper: bool):
    low = np.tri(n, dtype=bool)
    return low.T if upper else low


def _fold(m, upper: bool = False):
    """The gradient of a function of a symmetric matrix that reads one triangle
    of it (numpy's cholesky and eigh do), from ``m`` with <m, dA> its derivative
    along symmetric dA: each entry of the triangle stands for two entries of A."""
    n = m.shape[-1]
    strict = np.tri(n, k=-1, dtype=bool)
    if upper:
        strict = strict.T
    return where(strict, m + _swap(m), 0.0) + m * np.eye(n)


def _phi(x):
    """The lower triangle with the diagonal halved."""
    return np.tril(x) - 0.5 * x * np.eye(x.shape[-1])


# slogdet: (sign, log|det|) packed on a last axis of 2
def _slogdet_vjp(g, out, a):
    gl = g[..., 1]  # the sign is piecewise constant: no gradient through it
    singular = _raw(out)[..., 0] == 0
    if np.any(singular & (_raw(gl) != 0)):
        raise EvaluationError(
            "slogdet: no gradient at a singular matrix (logabsdet is -inf there)")
    if np.any(singular):  # no cotangent reaches those: any invertible stand-in
        a = where(singular[..., None, None], np.eye(a.shape[-1]), a)
    return gl[..., None, None] * _swap(np.linalg.inv(a))


@op(_slogdet_vjp, grad_fn="LinalgSlogdetBackward0", saves="both", expr=False,
    method=False, support=lambda nz, out, a: (nz[..., 1][..., None, None],),
    shape=lambda shapes, params: tuple(shapes[0][:-2]) + (2,),
    rule="d logabsdet = inv(A)^T; the sign has zero gradient",
    kink="at a singular A (sign 0, logabsdet -inf) the gradient raises",
    domain=("matrix",))
def _slogdet(a):
    _square(a)
    sign, logabsdet = np.linalg.slogdet(a)
    return np.stack([sign, logabsdet], axis=-1)


def slogdet(a) -> SlogdetResult:
    """numpy.linalg.slogdet: (sign, logabsdet), the gradient through logabsdet."""
    _square(a, "slogdet: ")
    p = _slogdet(a)
    return SlogdetResult(p[..., 0], p[..., 1])


def _cholesky_vjp(g, out, a, *, upper=False):
    # Murray (2016): with A = L L^T, dL = L Phi(L^-1 dA L^-T), so
    # <G, dL> = <L^-T Phi(L^T G) L^-1, dA> for symmetric dA.
    ell = _swap(out) if upper else out
    gl = np.tril(_swap(g) if upper else g)  # the zero triangle is a constant
    inv_l = np.linalg.inv(ell)
    m = _swap(inv_l) @ _phi(_swap(ell) @ gl) @ inv_l
    return _fold(m, upper)


def _cholesky_sym(sp, a, *, upper=False):
    n = a.shape[0]
    s = sp.Matrix(n, n, lambda i, j: a[i, j] if (j >= i) == upper or i == j
                  else a[j, i])
    low = s.cholesky(hermitian=False)  # s is symmetric: U = L^T
    return np.array((low.T if upper else low).tolist(), dtype=object)


@op(_cholesky_vjp, grad_fn="LinalgCholeskyExBackward0", saves="out",
    support=_whole_matrix, shape=NO_BIGGER,
    rule="Phi(L^-T Phi(L^T G) L^-1) (Murray 2016), on the triangle numpy reads",
    kink="numpy reads one triangle (the lower; upper=True: the upper): the "
         "gradient is on that triangle, 0 on the other",
    sym=("array", _cholesky_sym), domain=("matrix",), numpy=(np.linalg.cholesky,))
def cholesky(a, *, upper=False):
    _square(a)
    return _on_finite(lambda x: np.linalg.cholesky(x, upper=upper), a,
                      _triangle(np.shape(a)[-1], upper))


# matrix_power: numpy's own sequence of products (so the same bits), from matmul
# and inv, whose rules give its gradients of every order.
def _matrix_power(a, *, n):
    import operator

    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError("matrix_power: the exponent must be an integer") from None
    _square(a, "matrix_power: ")
    if n == 0:  # the identity, whatever a holds (numpy's result)
        eye = np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape)
        return where(np.ones(a.shape, dtype=bool), eye, a)
    if n < 0:
        a, n = inv(a), -n
        if n == 1:
            return a
    if n == 1:
        from .shape import reshape

        return reshape(a, shape=a.shape)  # numpy's copy: a new node
    if n == 2:
        return matmul(a, a)
    if n == 3:
        return matmul(matmul(a, a), a)
    z = result = None
    while n > 0:
        z = a if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result


def _inv_sym(sp, a):
    """inv(a) as an object array: the adjugate over the determinant, both by
    Laplace expansion (no elimination, no simplification: fast)."""
    m = sp.Matrix(a.tolist())
    return np.array(m.adjugate(method="laplace").tolist(), dtype=object) / m.det(
        method="laplace")


def _matrix_power_sym(sp, a, *, n):
    n = int(n)
    if n < 0:
        a, n = _inv_sym(sp, a), -n
    out = np.array(sp.eye(a.shape[-1]).tolist(), dtype=object)
    for _ in range(n):
        out = out @ a
    return out


matrix_power = op(grad_fn="", rule="products of a (inv(a) for n < 0), by their rules",
                  sym=("array", _matrix_power_sym), numpy=(np.linalg.matrix_power,),
                  name="matrix_power", shape=NO_BIGGER, method=False,
                  domain=("matrix",), fast=_matrix_power)(_matrix_power)
matrix_power.extra["composite"] = _matrix_power
matrix_power.composite = True
matrix_power.fast_call = False
matrix_power.differentiable = True


def _pinv_vjp(g, out, a, *, rcond=None, hermitian=False):
    # Golub and Pereyra (1973), for a matrix of full rank:
    # dX = -X dA X + X X^T dA^T (I - A X) + (I - X A) dA^T X^T X, X = pinv(A).
    raw = _raw(a)
    s = _on_finite(lambda y: np.linalg.svd(y, compute_uv=False, hermitian=hermitian), raw)
    cut = (1e-15 if rcond is None else np.asarray(rcond)[..., None]) * np.max(
        s, axis=-1, keepdims=True)
    deficient = np.any(s <= cut, axis=-1)
    if np.any(deficient & _hits(np.ndim(raw) - 2, g)):
        raise EvaluationError(
            "pinv: no gradient at a rank-deficient matrix (pinv jumps where the rank "
            "changes)", hint="pinv's gradient needs full rank: min(m, n) singular "
                             "values above rcond times the largest")
    x = out
    m, n = raw.shape[-2], raw.shape[-1]
    gt = _swap(g)
    left = np.eye(m) - a @ x
    right = np.eye(n) - x @ a
    grad = (-_swap(x) @ g @ _swap(x) + left @ gt @ (x @ _swap(x))
            + (_swap(x) @ x) @ gt @ right)
    if hermitian:  # numpy then reads the lower triangle only (through eigh)
        return _fold(0.5 * (grad + _swap(grad)))
    return grad


def _pinv_sym(sp, a, *, rcond=None, hermitian=False):
    # full rank: (A^T A)^-1 A^T (tall) or A^T (A A^T)^-1 (wide)
    at = a.T
    if a.shape[0] >= a.shape[1]:
        return _inv_sym(sp, at @ a) @ at
    return at @ _inv_sym(sp, a @ at)


@op(_pinv_vjp, grad_fn="LinalgPinvBackward0", saves="both", support=_whole_matrix,
    shape=lambda shapes, params: tuple(shapes[0][:-2]) + (shapes[0][-1], shapes[0][-2]),
    rule="-X^T G X^T + (I - A X) G^T X X^T + X^T X G^T (I - X A), X = pinv(A) "
         "(Golub and Pereyra 1973)",
    kink="full rank only: at a rank-deficient matrix the gradient raises",
    sym=("array", _pinv_sym), domain=("matrix",), numpy=(np.linalg.pinv,),
    reals=("rcond",))
def pinv(a, *, rcond=None, hermitian=False):
    if np.ndim(a) < 2:
        raise ValueError(f"takes a matrix or a stack of them, not shape "
                         f"{np.shape(a)}")
    return _on_finite(lambda x: np.linalg.pinv(x, rcond=rcond, hermitian=hermitian), a)



def _tie_tol(s):
    """Values closer than this (of a stack's eigen- or singular values) count
    as tied: n eps times the largest magnitude (numpy's matrix_rank tolerance)."""
    big = np.max(np.abs(s), axis=-1, keepdims=True)
    return big[..., None] * s.shape[-1] * np.finfo(np.float64).eps


def _gaps(v, tol_from, name: str, what: str, g_hits):
    """1 / (v_j - v_i) off the diagonal, 0 on it; raises when a cotangent that
    needs it (``g_hits``) meets two values that tie."""
    raw = _raw(v)
    diff = raw[..., None, :] - raw[..., :, None]
    n = raw.shape[-1]
    off = ~np.eye(n, dtype=bool)
    tied = np.any(off & (np.abs(diff) <= _tie_tol(_raw(tol_from))), axis=(-2, -1))
    if np.any(tied & g_hits):
        raise EvaluationError(
            f"{name}: the gradient of the {what} is undefined at repeated "
            f"{'eigenvalues' if name == 'eigh' else 'singular values'} (the "
            f"{what} are not unique there)",
            hint="differentiate only the eigenvalues / singular values there, or "
                 "move off the tie")
    use = off & ~tied[..., None, None]
    d = v[..., None, :] - v[..., :, None]
    return where(use, 1.0 / where(use, d, 1.0), 0.0)


def _hits(stack: int, *gs):
    """Per matrix of a stack of ``stack`` axes: whether any of the cotangents
    ``gs`` (matrices, batch axes of a Jacobian in front) is nonzero there."""
    out = False
    for g in gs:
        raw = np.asarray(_raw(g)) != 0
        out = out | np.any(raw, axis=tuple(range(raw.ndim - 2 - stack)) +
                           (raw.ndim - 2, raw.ndim - 1))
    return out


# eigh: packed as (n + 1, n), the eigenvalues on top of the eigenvectors
def _eigh_vjp(g, out, a, *, UPLO="L"):
    # A = V diag(w) V^T: dw_i = v_i^T dA v_i, dV = V (F * (V^T dA V)) with
    # F_ij = 1 / (w_j - w_i) (Magnus 1985; Giles 2008), for symmetric dA.
    w, v = out[..., 0, :], out[..., 1:, :]
    gw, gv = g[..., 0, :], g[..., 1:, :]
    hits = _hits(np.ndim(_raw(out)) - 2, gv)
    f = _gaps(w, w, "eigh", "eigenvectors", hits)
    n = v.shape[-1]
    inner = gw[..., :, None] * np.eye(n) + f * (_swap(v) @ gv)
    return _fold(v @ inner @ _swap(v), upper=UPLO == "U")


def _eigh_shape(shapes, params):
    s = tuple(shapes[0])
    return s[:-2] + (s[-1] + 1, s[-1])


@op(_eigh_vjp, grad_fn="LinalgEighBackward0", saves="out", expr=False, method=False,
    support=_whole_matrix, shape=_eigh_shape,
    rule="V (diag(gw) + F * (V^T gV)) V^T, F_ij = 1/(w_j - w_i), on the triangle "
         "numpy reads",
    kink="the eigenvectors' gradient raises at repeated eigenvalues",
    domain=("matrix",))
def _eigh(a, *, UPLO="L"):
    _square(a)

    def packed(x):
        w, v = np.linalg.eigh(x, UPLO=UPLO)
        return np.concatenate([w[..., None, :], v], axis=-2)

    return _on_finite(packed, a, _triangle(np.shape(a)[-1], UPLO == "U"))


def eigh(a, UPLO="L") -> EighResult:
    """numpy.linalg.eigh: (eigenvalues, eigenvectors) of a symmetric matrix (numpy
    reads its lower triangle, UPLO="U" the upper: the gradient lands there)."""
    _square(a, "eigh: ")
    p = _eigh(a, UPLO=UPLO)
    return EighResult(p[..., 0, :], p[..., 1:, :])


# svd: U, S and Vh flattened side by side on one last axis
def _svd_sizes(m: int, n: int, full: bool) -> tuple[int, int, int]:
    k = min(m, n)
    return (m if full else k), k, (n if full else k)


def _svd_unpack(p, m: int, n: int, full: bool):
    mu, k, nv = _svd_sizes(m, n, full)
    front = np.shape(p)[:-1]
    u = np.reshape(p[..., : m * mu], front + (m, mu))
    s = p[..., m * mu : m * mu + k]
    vh = np.reshape(p[..., m * mu + k :], front + (nv, n))
    return u, s, vh


def _svd_vjp(g, out, a, *, full_matrices=True, compute_uv=True, hermitian=False):
    m, n = np.shape(_raw(a))[-2:]
    k = min(m, n)
    if not compute_uv:  # S alone: U diag(gS) V^T (U and V of the point)
        if isinstance(a, Tensor):  # create_graph: U and V recorded
            u, _, vh = svd(a, full_matrices=False)
        else:
            u, _, vh = _svd_unpack(_svd.forward(a, full_matrices=False), m, n, False)
        return (u * g[..., None, :]) @ vh
    u, s, vh = _svd_unpack(out, m, n, full_matrices)
    gu, gs, gvh = _svd_unpack(g, m, n, full_matrices)
    if full_matrices and m != n:
        extra = gu[..., :, k:] if m > n else gvh[..., k:, :]
        if np.any(_raw(extra) != 0):
            raise EvaluationError(
                "svd: no gradient through the columns full_matrices=True adds (any "
                "orthonormal completion would do)",
                hint="use full_matrices=False")
        u, gu, vh, gvh = u[..., :, :k], gu[..., :, :k], vh[..., :k, :], gvh[..., :k, :]
    hits = _hits(np.ndim(_raw(a)) - 2, gu, gvh)
    # Townsend (2016): with F_ij = 1 / (s_j^2 - s_i^2),
    # gA = U [(F * (U^T gU - gU^T U)) S + diag(gS) + S (F * (V^T gV - gV^T V))] V^T
    #      + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T)
    raw_s = _raw(s)
    zero = np.any(raw_s <= _tie_tol(raw_s)[..., 0], axis=-1)
    if np.any(zero & hits) and (m != n or np.any(np.sum(raw_s <= _tie_tol(raw_s)[..., 0],
                                                        axis=-1) > 1)):
        raise EvaluationError(
            "svd: the gradient of U and Vh is undefined at zero singular values of "
            "a non-square matrix (or two of them)",
            hint="differentiate only S there, or move off the degenerate point")
    f = _gaps(s * s, s * s, "svd", "singular vectors", hits)
    v, gv = _swap(vh), _swap(gvh)
    ut_gu = _swap(u) @ gu
    vt_gv = _swap(v) @ gv
    inner = ((f * (ut_gu - _swap(ut_gu))) * s[..., None, :]
             + gs[..., :, None] * np.eye(k)
             + s[..., :, None] * (f * (vt_gv - _swap(vt_gv))))
    grad = u @ inner @ vh
    if m > k:
        safe = where(raw_s > 0, s, 1.0)
        grad = grad + ((gu - u @ ut_gu) / safe[..., None, :]) @ vh
    if n > k:
        safe = where(raw_s > 0, s, 1.0)
        grad = grad + u @ (_swap(gv - v @ vt_gv) / safe[..., :, None])
    return grad


def _svd_shape(shapes, params):
    s = tuple(shapes[0])
    m, n = s[-2:]
    if not params.get("compute_uv", True):
        return s[:-2] + (min(m, n),)
    mu, k, nv = _svd_sizes(m, n, params.get("full_matrices", True))
    return s[:-2] + (m * mu + k + nv * n,)


def _svd_check(a, hermitian, prefix: str = "") -> None:
    if np.ndim(a) < 2:
        raise ValueError(f"{prefix}takes a matrix or a stack of them, not shape "
                         f"{np.shape(a)}")
    if hermitian:
        raise ValueError(f"{prefix}gradcli takes hermitian=False only")


@op(_svd_vjp, grad_fn="LinalgSvdBackward0", saves="both", expr=False, method=False,
    support=lambda nz, out, a, **params: (np.any(nz, axis=-1)[..., None, None],),
    shape=_svd_shape,
    rule="U [(F*(U^T gU - gU^T U)) S + diag(gS) + S (F*(V^T gV - gV^T V))] V^T + "
         "(I - UU^T) gU S^-1 V^T + U S^-1 gV^T (I - VV^T) (Townsend 2016)",
    kink="U's and Vh's gradient raises at repeated singular values (and at zero "
         "ones of a non-square matrix); S's is U diag(gS) Vh everywhere",
    domain=("matrix",))
def _svd(a, *, full_matrices=True, compute_uv=True, hermitian=False):
    _svd_check(a, hermitian)
    if not compute_uv:
        return _on_finite(lambda x: np.linalg.svd(x, compute_uv=False), a)

    def packed(x):
        u, s, vh = np.linalg.svd(x, full_matrices=full_matrices)
        front = s.shape[:-1]
        return np.concatenate([u.reshape(front + (-1,)), s, vh.reshape(front + (-1,))],
                              axis=-1)

    return _on_finite(packed, a)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """numpy.linalg.svd: (U, S, Vh), or S alone for compute_uv=False."""
    _svd_check(a, hermitian, "svd: ")
    p = _svd(a, full_matrices=full_matrices, compute_uv=compute_uv, hermitian=hermitian)
    if not compute_uv:
        return p
    m, n = np.shape(a)[-2:]
    return SVDResult(*_svd_unpack(p, m, n, full_matrices))


# qr: Q (m, n) on top of R (n, n), for m >= n
def _qr_vjp(g, out, a, *, mode="reduced"):
    # m >= n (Walter and Lehmann 2018; Seeger et al. 2017): with
    # M = R gR^T - gQ^T Q, gA = (gQ + Q copyltu(M)) R^-T, copyltu(M) the
    # symmetric matrix with M's lower triangle.
    m, n = np.shape(_raw(a))[-2:]
    q, r = out[..., :m, :], out[..., m:, :]
    gq, gr = g[..., :m, :], np.triu(g[..., m:, :])
    # Rank deficient where a diagonal entry of R is zero relative to the largest
    # (numpy's matrix_rank tolerance, max(m, n) eps max|diag R|): rounding leaves
    # R[k, k] ~ 1e-16 there, and R^-T would turn it into a huge wrong gradient.
    diag = np.abs(np.diagonal(_raw(r), axis1=-2, axis2=-1))
    dt = diag.dtype if np.issubdtype(diag.dtype, np.floating) else np.float64
    tol = max(m, n) * np.finfo(dt).eps * np.max(diag, axis=-1, keepdims=True)
    singular = np.any(diag <= tol, axis=-1)
    if np.any(singular & _hits(np.ndim(_raw(a)) - 2, gq, gr)):
        raise EvaluationError(
            "qr: no gradient at a rank-deficient matrix (Q and R jump where the "
            "rank changes)", hint="qr's gradient needs full column rank: no diagonal "
                                  "entry of R near zero relative to the largest")
    if np.any(singular):  # no cotangent reaches those: any invertible stand-in
        r = where(singular[..., None, None], np.eye(n), r)
    mm = r @ _swap(gr) - _swap(gq) @ q
    sym = np.tril(mm) + _swap(np.tril(mm, -1))
    return (gq + q @ sym) @ _swap(np.linalg.inv(r))


def _qr_shape(shapes, params):
    s = tuple(shapes[0])
    return s[:-2] + (s[-2] + s[-1], s[-1])


def _qr_check(a, mode, prefix: str = "") -> None:
    shape = np.shape(a)
    if len(shape) < 2 or shape[-2] < shape[-1]:
        raise ValueError(f"{prefix}gradcli takes a square or tall matrix (m >= n), not "
                         f"shape {shape}")
    if mode not in ("reduced", "complete") or (mode == "complete" and
                                               shape[-2] != shape[-1]):
        raise ValueError(f"{prefix}gradcli takes mode='reduced' (or 'complete' for a "
                         f"square matrix), not {mode!r}")


@op(_qr_vjp, grad_fn="LinalgQrBackward0", saves="both", expr=False, method=False,
    support=_whole_matrix, shape=_qr_shape,
    rule="(gQ + Q copyltu(R gR^T - gQ^T Q)) R^-T (Walter and Lehmann 2018)",
    kink="m >= n and full rank only: the gradient raises at a rank-deficient matrix "
         "(a diagonal entry of R at most max(m, n) eps times the largest)",
    domain=("matrix",))
def _qr(a, *, mode="reduced"):
    _qr_check(a, mode)
    return _on_finite(lambda x: np.concatenate(np.linalg.qr(x, mode=mode), axis=-2), a)


def qr(a, mode="reduced") -> QRResult:
    """numpy.linalg.qr, mode 'reduced', of a square or tall matrix: (Q, R)."""
    _qr_check(a, mode, "qr: ")
    p = _qr(a, mode=mode)
    m = np.shape(a)[-2]
    return QRResult(p[..., :m, :], p[..., m:, :])


# numpy's multi-result functions, called like ops on Tensors (np.linalg.eigh(t))
DECOMPOSITIONS = {np.linalg.slogdet: slogdet, np.linalg.eigh: eigh, np.linalg.svd: svd,
                  np.linalg.qr: qr}
NUMPY.update(DECOMPOSITIONS)
