"""Issue 10, section 5: promises broken in corner cases, found by differential testing.

Each test asserts against an independent truth: values derived by hand, numpy's own
``np.linalg.norm``/``np.linalg.svd`` for forward values, central finite differences
(on plain numpy) for gradients.
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest

import gradcli as gc
from gradcli import OPS
from gradcli.cli import main

F64 = np.float64
STEP = 1e-6


def run_cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def central(f, x: np.ndarray, skip=()) -> np.ndarray:
    """d f / d x by central differences, entry by entry (``skip``: left at 0)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        if idx in skip:
            continue
        h = STEP * max(1.0, abs(x[idx]))
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        grad[idx] = (f(xp) - f(xm)) / (xp[idx] - xm[idx])
    return grad


# -- the where promise through every op -----------------------------------------------
# (shapes, params) per op that mixes entries; elementwise ops get ELEMENTWISE below.
# A new op that is not elementwise needs a row here (test_every_op_has_a_row).
I34 = np.array([0, 2, 2])
MIXING = {
    "sum": [([(2, 3)], {"axis": 1}), ([(2, 3, 2)], {"axis": (0, 2)})],
    "mean": [([(2, 3)], {"axis": 0})],
    "prod": [([(2, 3)], {"axis": 1}), ([(2, 3)], {"axis": 0, "keepdims": True})],
    "max": [([(2, 3)], {"axis": 1}), ([(2, 3)], {"axis": 0, "keepdims": True})],
    "min": [([(2, 3)], {"axis": 1})],
    "norm": [
        ([(2, 3)], {"axis": 1}),
        ([(2, 3)], {"axis": 0, "ord": 1}),
        ([(2, 3)], {"axis": 1, "ord": np.inf}),
        ([(2, 3)], {"axis": 1, "ord": 3}),
        ([(2, 2, 3)], {"axis": (1, 2), "ord": 2}),
        ([(2, 2, 3)], {"axis": (1, 2), "ord": -2}),
        ([(2, 2, 3)], {"axis": (1, 2), "ord": "nuc"}),
        ([(2, 2, 3)], {"axis": (1, 2), "ord": 1}),
        ([(2, 2, 3)], {"axis": (2, 1), "ord": -np.inf}),
        ([(3, 2, 2)], {"axis": (0, 1), "ord": "fro"}),
    ],
    "logsumexp": [([(2, 3)], {"axis": 1})],
    "var": [([(2, 3)], {"axis": 1, "ddof": 1})],
    "std": [([(2, 3)], {"axis": 0})],
    "softmax": [([(2, 3)], {"axis": 1}), ([(2, 3)], {"axis": 0})],
    "log_softmax": [([(2, 3)], {"axis": 1})],
    "dot": [([(2, 3), (3,)], {}), ([(3,), (3, 2)], {}), ([(2, 3), (3, 2)], {}),
            ([(2, 2, 3), (2, 3, 2)], {})],
    "matmul": [
        ([(2, 3), (3, 2)], {}),
        ([(2, 2, 3), (3, 2)], {}),
        ([(1, 2, 3), (2, 3, 2)], {}),
        ([(3,), (2, 3, 2)], {}),
    ],
    "outer": [([(2,), (3,)], {}), ([(2, 2), (3,)], {})],
    "trace": [([(3, 3)], {})],
    "det": [(["stack"], {})],
    "inv": [(["stack"], {})],
    "solve": [(["matrix", (3, 2)], {}), (["matrix", (3,)], {}), (["stack", (3,)], {}),
              (["stack", (2, 3, 2)], {}), (["matrix", (2, 3, 1)], {})],
    "cholesky": [(["stack"], {}), (["stack"], {"upper": True})],
    "pinv": [(["stack"], {})],
    "_slogdet": [(["stack"], {})],
    "_eigh": [(["stack"], {}), (["stack"], {"UPLO": "U"})],
    "_svd": [(["stack"], {"full_matrices": False}), (["stack"], {"compute_uv": False})],
    "_qr": [(["stack"], {})],
    "transpose": [([(2, 3, 2)], {"axes": (1, 0, 2)})],
    "reshape": [([(2, 3)], {"shape": (3, 2)})],
    "broadcast_to": [([(3,)], {"shape": (2, 3)})],
    "concatenate": [([(2, 3), (1, 3)], {"axis": 0})],
    "stack": [([(2, 3), (2, 3)], {"axis": -1})],
    "getitem": [([(3, 4)], {"index": (slice(None), 2)}), ([(3, 4)], {"index": I34})],
    "index_add": [([(3,)], {"index": I34, "shape": (4,)})],
    "pad": [([(2, 3)], {"pad_width": ((1, 0), (0, 2))})],
    "cumsum": [([(2, 3)], {"axis": 1}), ([(2, 3)], {})],
    "einsum": [
        ([(2, 3), (3, 2)], {"subscripts": "ij,jk->ik"}),
        ([(3, 3)], {"subscripts": "ii->i"}),
        ([(2, 3), (3,)], {"subscripts": "ij,j"}),
    ],
}
ELEMENTWISE = {1: [(2, 3)], 2: [(2, 3), (3,)], 3: [(2, 3), (3,), ()]}


def _well_conditioned(rng, shape):
    n = shape[-1]
    return rng.uniform(-1, 1, shape) + (n + 1) * np.eye(n)


def _build(name: str, shapes, rng) -> list[np.ndarray]:
    op = OPS[name]
    args = []
    for k, s in enumerate(shapes):
        if s == "stack":
            args.append(_well_conditioned(rng, (2, 3, 3)))
        elif s == "matrix":
            args.append(_well_conditioned(rng, (3, 3)))
        else:
            lo, hi = op.domain[k if op.nin >= 0 else 0]
            args.append(rng.uniform(lo, hi, s))
    if name == "where":  # the condition: not differentiable
        args[0] = np.array([[True, False, True], [False, True, True]])
    return args


def poison_cases():
    for name in sorted(OPS):
        op = OPS[name]
        if not op.differentiable or op.composite:
            continue
        rows = MIXING.get(name)
        if rows is None and op.elementwise:
            rows = [(ELEMENTWISE[op.nin], {})]
        for k, (shapes, params) in enumerate(rows or []):
            yield pytest.param(name, shapes, params, id=f"{name}-{k}")


def test_every_op_has_a_row():
    covered = {p.values[0] for p in poison_cases()}
    missing = [n for n, o in OPS.items() if o.differentiable and not o.composite
               and n not in covered]
    assert not missing, f"add these ops to MIXING in this file: {missing}"


def _apply(op, args, params):
    if op.nin < 0:
        return op(list(args), **params)
    return op(*args, **params)


def _forward(op, args, params) -> np.ndarray:
    with gc.no_grad(), np.errstate(all="ignore"):
        return np.asarray(_apply(op, [gc.tensor(a) for a in args], params).data)


def _reached(op, args, params, i, idx) -> np.ndarray:
    """The outputs entry ``idx`` of input ``i`` reaches: those that move when it
    moves, and those a nan there turns non-finite."""
    base = _forward(op, args, params)
    hit = np.zeros(base.shape, dtype=bool)
    for v in (np.nan, args[i][idx] + 0.5, args[i][idx] - 0.7):
        probe = [a.copy() for a in args]
        probe[i][idx] = v
        moved = _forward(op, probe, params)
        hit |= ~np.isfinite(moved) | (moved != base)
    return hit


def _engine_grads(op, args, params, diff, hit, w, route) -> list[np.ndarray]:
    ts = [gc.tensor(a, requires_grad=k in diff) for k, a in enumerate(args)]
    with np.errstate(all="ignore"):
        y = _apply(op, ts, params)
        if route == "where":  # the branch not taken: where the poison reaches
            gc.where(gc.tensor(~hit), y, 0.0).backward(gradient=gc.tensor(w))
        else:  # a cotangent with zeros there
            y.backward(gradient=gc.tensor(np.where(hit, 0.0, w)))
    return [ts[k].grad.data for k in diff]


@pytest.mark.parametrize("name, shapes, params", list(poison_cases()))
def test_a_zero_cotangent_keeps_inf_and_nan_out_of_every_gradient(name, shapes, params):
    """An input entry that is nan or inf, all of whose outputs get a zero
    cotangent (a where that did not take them, or a seed with zeros), must put
    no nan into any gradient: the other entries get the finite differences of
    the outputs that do count, and the poisoned entry gets 0."""
    op = OPS[name]
    rng = np.random.default_rng(zlib.crc32(f"{name}{shapes}{params}".encode()))
    args = _build(name, shapes, rng)
    diff = [i for i, a in enumerate(args) if a.dtype.kind == "f"]
    w = rng.standard_normal(_forward(op, args, params).shape)
    for i in diff:
        for j in sorted({0, args[i].size // 2, args[i].size - 1}):
            idx = np.unravel_index(j, args[i].shape)
            hit = _reached(op, args, params, i, idx)
            poisoned = [a.copy() for a in args]
            poisoned[i][idx] = np.nan

            def counted(x, k):  # what the outputs the poison never reaches add up to
                xs = [a.copy() for a in poisoned]
                xs[k] = x
                with np.errstate(all="ignore"):
                    y = _forward(op, xs, params)
                    return float(np.sum(np.where(hit, 0.0, w * y)))

            want = [central(lambda x, k=k: counted(x, k), poisoned[k],
                            {idx} if k == i else ()) for k in diff]
            for poison in (np.nan, np.inf, -np.inf):
                poisoned[i][idx] = poison
                for route in ("seed", "where"):
                    got = _engine_grads(op, poisoned, params, diff, hit, w, route)
                    for k, gk, wk in zip(diff, got, want):
                        where = f"{name}{params}: input {i}{idx} = {poison}, " \
                                f"grad of input {k} ({route})"
                        assert np.all(np.isfinite(gk)), where
                        np.testing.assert_allclose(gk, wk, rtol=1e-5, atol=1e-6,
                                                   err_msg=where)


@pytest.mark.parametrize("expr, inputs, value, grads", [
    # Issue 10's two reports, by hand: d/dB of sum_j log(A[1, :]) @ B[:, j] is
    # log(A[1, k]); the det of the second matrix is not taken.
    ("sum(where(C > 0, log(A) @ B, 0))",
     {"C": "-1,-1;1,1", "A": "-1,2;3,4", "B": "1,2;3,4"},
     math.log(3) * 3 + math.log(4) * 7,
     {"A": [[0, 0], [1, 7 / 4]], "B": [[math.log(3)] * 2, [math.log(4)] * 2]}),
    ("sum(where(c > 0, det(stack([A, log(B)])), 0))",
     {"c": "1,-1", "A": "2,1;1,3", "B": "-1,2;3,4"},
     5.0,
     {"A": [[3, -1], [-1, 2]], "B": [[0, 0], [0, 0]]}),
    # A reduction along an axis and outer, the same promise.
    ("sum(where(c > 0, norm(sqrt(A), None, 1), 0))",
     {"c": "1,-1", "A": "9,16;-1,1"},
     5.0,
     {"A": [[0.1, 0.1], [0, 0]]}),
    ("sum(where(C > 0, outer(sqrt(a), b), 0))",
     {"C": "-1,-1;1,1", "a": "-1,4", "b": "1,3"},
     8.0,
     {"a": [0, 1], "b": [2, 2]}),
    ("sum(where(c > 0, sum(inv(stack([A, log(B)])), (1, 2)), 0))",
     {"c": "1,-1", "A": "2,0;0,4", "B": "-1,2;3,4"},
     0.75,
     {"A": [[-0.25, -0.125], [-0.125, -0.0625]], "B": [[0, 0], [0, 0]]}),
])
def test_where_over_mixing_ops_by_hand(capsys, expr, inputs, value, grads):
    opts = [x for n, v in inputs.items() for x in (f"--{n}", v)]
    code, out, err = run_cli(capsys, "eval", expr, *opts, "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["value"] == pytest.approx(value, rel=1e-12)
    for n, want in grads.items():
        np.testing.assert_allclose(got["grad"][n], want, rtol=1e-12, atol=1e-15)


# -- det at a singular matrix: second derivatives; inv and solve refuse cleanly --------
def _fd_hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Second central differences of a plain-numpy f (exact up to rounding for a
    polynomial of degree <= 3 in each pair of entries, as det is)."""
    n = x.size
    H = np.zeros((n, n))
    flat = x.ravel()
    for p in range(n):
        for q in range(n):
            def at(dp, dq):
                y = flat.copy()
                y[p] += dp
                y[q] += dq
                return f(y.reshape(x.shape))
            H[p, q] = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)
    return H.reshape(x.shape + x.shape)


def test_hessian_of_det_at_a_singular_matrix_by_hand(capsys):
    # det [[a, b], [c, d]] = ad - bc: d2/da dd = 1, d2/db dc = -1, else 0.
    code, out, err = run_cli(capsys, "hessian", "det(A)", "--A", "1,2;2,4",
                             "--format", "json")
    assert code == 0, err
    H = np.array(json.loads(out)["hessian"]["A"]["A"])
    want = np.zeros((2, 2, 2, 2))
    want[0, 0, 1, 1] = want[1, 1, 0, 0] = 1.0
    want[0, 1, 1, 0] = want[1, 0, 0, 1] = -1.0
    np.testing.assert_array_equal(H, want)


@pytest.mark.parametrize("a", [
    [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]],  # rank 1
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],  # rank 2
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
])
def test_hessian_of_det_at_singular_matrices_matches_finite_differences(a):
    a = np.array(a)
    H = gc.hessian(gc.det)(a)
    np.testing.assert_allclose(H.data, _fd_hessian(np.linalg.det, a), atol=1e-6)
    # The first derivative there is the adjugate transposed (cofactors).
    g = gc.grad(gc.det)(a)
    np.testing.assert_allclose(g.data, central(np.linalg.det, a), atol=1e-6)


def test_hessian_of_det_over_a_stack_with_one_singular_matrix():
    a = np.stack([np.array([[1.0, 2.0], [2.0, 4.0]]), np.array([[2.0, 1.0], [0.5, 3.0]])])
    w = np.array([0.7, -1.3])

    def f(x):
        return np.sum(w * np.linalg.det(x))

    H = gc.hessian(lambda x: gc.sum(gc.det(x) * w))(a)
    np.testing.assert_allclose(H.data, _fd_hessian(f, a), atol=1e-6)


@pytest.mark.parametrize("expr, extra", [
    ("sum(inv(A))", []),
    ("sum(solve(A, b))", ["--b", "1,1"]),
])
@pytest.mark.parametrize("command", ["eval", "jacobian", "hessian", "check"])
def test_singular_inv_and_solve_exit_3_with_a_clear_message(capsys, command, expr, extra):
    code, out, err = run_cli(capsys, command, expr, "--A", "1,2;2,4", *extra)
    assert code == 3
    name = expr[4:expr.index("(", 4)]
    assert f"{name}: Singular matrix" in err
    assert "Traceback" not in err and "internal error" not in err and not out


def test_singular_inv_and_solve_raise_from_the_python_api():
    a = gc.tensor([[1.0, 2.0], [2.0, 4.0]], requires_grad=True)
    with pytest.raises(np.linalg.LinAlgError, match="inv: Singular matrix"):
        gc.inv(a)
    with pytest.raises(np.linalg.LinAlgError, match="solve: Singular matrix"):
        gc.solve(a, gc.tensor([1.0, 1.0]))


# -- norm: numpy's vector and matrix orders ------------------------------------------
def _svd_norm(x, ord, axes, keepdims=False):
    """ord 2, -2, 'nuc' from numpy's singular values, the axes moved last."""
    s = np.linalg.svd(np.moveaxis(x, axes, (-2, -1)), compute_uv=False)
    r = {2: np.max, -2: np.min, "nuc": np.sum}[ord](s, axis=-1)
    return np.expand_dims(r, axes) if keepdims else r


def _by_hand(x, ord, axes, keepdims=False):
    """The other matrix orders and the vector orders from their definitions."""
    a = np.abs(x)
    if len(axes) == 1:
        (ax,) = axes
        if ord in (None, 2):
            r = np.sqrt(np.sum(x * x, axis=ax, keepdims=True))
        elif ord == np.inf:
            r = np.max(a, axis=ax, keepdims=True)
        elif ord == -np.inf:
            r = np.min(a, axis=ax, keepdims=True)
        elif ord == 0:
            r = np.sum(x != 0, axis=ax, keepdims=True).astype(F64)
        else:
            r = np.sum(a**ord, axis=ax, keepdims=True) ** (1 / ord)
    else:
        row, col = axes
        if ord in (None, "fro"):
            r = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
        else:
            summed, over = (row, col) if abs(ord) == 1 else (col, row)
            pick = np.max if ord > 0 else np.min
            r = pick(np.sum(a, axis=summed, keepdims=True), axis=over, keepdims=True)
    return r if keepdims else np.squeeze(r, axis=axes)


VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 0.5, -1, -2, 0]
MATRIX_ORDS = [None, "fro", 1, -1, np.inf, -np.inf, 2, -2, "nuc"]
NORM_CASES = (
    [((4,), {"ord": o}) for o in VECTOR_ORDS]
    + [((3, 4), {"ord": o, "axis": a, "keepdims": k}) for o in VECTOR_ORDS
       for a, k in ((1, False), (-2, True))]
    + [((3, 4), {"ord": o}) for o in MATRIX_ORDS]
    + [((4, 3), {"ord": o, "axis": (1, 0)}) for o in MATRIX_ORDS]
    + [((2, 3, 4), {"ord": o, "axis": a, "keepdims": k}) for o in MATRIX_ORDS
       for a, k in (((2, 0), False), ((0, -1), True), ((1, 2), False))]
)


@pytest.mark.parametrize("shape, params", NORM_CASES,
                         ids=[f"{s}-{p}" for s, p in NORM_CASES])
def test_norm_orders_value_and_gradient(shape, params):
    rng = np.random.default_rng(len(shape) * 100 + len(repr(params)))
    x = rng.uniform(-2, 2, shape)
    ord = params.get("ord")
    axis = params.get("axis")
    keepdims = params.get("keepdims", False)
    axes = tuple(range(len(shape))) if axis is None else (
        tuple(a % len(shape) for a in axis) if isinstance(axis, tuple) else (axis % len(shape),))

    t = gc.tensor(x, requires_grad=True)
    y = gc.norm(t, **params)
    want = (_svd_norm(x, ord, axes, keepdims) if len(axes) == 2 and ord in (2, -2, "nuc")
            else _by_hand(x, ord, axes, keepdims))
    np.testing.assert_allclose(y.data, want, rtol=1e-12)
    np.testing.assert_allclose(y.data, np.linalg.norm(x, **params), rtol=1e-12)
    assert y.shape == np.shape(want)

    w = rng.standard_normal(np.shape(want))
    y.backward(gradient=gc.tensor(w))
    fd = central(lambda z: float(np.sum(w * np.linalg.norm(z, **params))), x)
    np.testing.assert_allclose(t.grad.data, fd, rtol=1e-6, atol=1e-7)
    assert OPS["norm"].kink_at([x], params) is None  # random entries: no kink


def test_spectral_norm_is_not_frobenius(capsys):
    # Issue 10: norm(A, 2, (0, 1)) gave the Frobenius norm 5.4772.
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    u, s, vt = np.linalg.svd(a)
    for expr in ("norm(A, 2, (0, 1))", "norm(A, 2)"):
        code, out, err = run_cli(capsys, "eval", expr, "--A", "1,2;3,4", "--format", "json")
        assert code == 0, err
        got = json.loads(out)
        assert got["value"] == pytest.approx(s[0], rel=1e-14)
        assert got["value"] == pytest.approx(5.4649857042190, rel=1e-12)
        np.testing.assert_allclose(got["grad"]["A"], np.outer(u[:, 0], vt[0]), rtol=1e-12)
    t = gc.tensor(a, requires_grad=True)
    np.linalg.norm(t, 2).backward()  # numpy's own name dispatches here
    np.testing.assert_allclose(t.grad.data, np.outer(u[:, 0], vt[0]), rtol=1e-12)


@pytest.mark.parametrize("x, params, grad", [
    # Tied largest singular values (the identity): u v^T averaged over the ties.
    ([[1.0, 0.0], [0.0, 1.0]], {"ord": 2}, [[0.5, 0.0], [0.0, 0.5]]),
    # A zero singular value: 'nuc' follows the nonzero ones, -2 gives 0.
    ([[3.0, 0.0], [0.0, 0.0]], {"ord": "nuc"}, [[1.0, 0.0], [0.0, 0.0]]),
    ([[3.0, 0.0], [0.0, 0.0]], {"ord": -2}, [[0.0, 0.0], [0.0, 0.0]]),
    # Tied column sums (ord 1) share evenly; a zero in the column gets sign 0.
    ([[1.0, -2.0], [2.0, 1.0]], {"ord": 1}, [[0.5, -0.5], [0.5, 0.5]]),
    ([[0.0, 1.0], [3.0, 1.0]], {"ord": 1}, [[0.0, 0.0], [1.0, 0.0]]),
    ([[1.0, -2.0], [2.0, 1.0]], {"ord": -np.inf}, [[0.5, -0.5], [0.5, 0.5]]),
    # Vectors: tied max |x|; zero entries for ord 1 and p < 1; the zero vector.
    ([3.0, -3.0, 1.0], {"ord": np.inf}, [0.5, -0.5, 0.0]),
    ([0.0, -2.0, 1.0], {"ord": 1}, [0.0, -1.0, 1.0]),
    ([0.0, 4.0], {"ord": 0.5}, [0.0, 1.0]),
    ([0.0, 0.0], {"ord": 3}, [0.0, 0.0]),
    ([1.0, 0.0], {"ord": 0}, [0.0, 0.0]),
])
def test_norm_kinks_are_reported_with_their_convention(x, params, grad):
    x = np.array(x)
    t = gc.tensor(x, requires_grad=True)
    gc.norm(t, **params).backward()
    np.testing.assert_allclose(t.grad.data, grad, atol=1e-15)
    assert OPS["norm"].kink_at([x], params) == OPS["norm"].kink


@pytest.mark.parametrize("x, params, message", [
    (np.ones(3), {"ord": "fro"}, "Invalid norm order 'fro' for vectors"),
    (np.ones(3), {"ord": "nuc"}, "Invalid norm order 'nuc' for vectors"),
    (np.ones((2, 2)), {"ord": 3}, "Invalid norm order 3 for matrices"),
    (np.ones((2, 2)), {"ord": 0.5, "axis": (0, 1)}, "Invalid norm order 0.5 for matrices"),
    (np.ones((2, 2, 2)), {"ord": 2}, "Improper number of dimensions"),
    (np.ones((2, 2, 2)), {"axis": (0, 1, 2)}, "Improper number of dimensions"),
    (np.ones((2, 2)), {"axis": (1, -1)}, "Duplicate axes"),
])
def test_norm_refuses_what_numpy_refuses(x, params, message):
    with pytest.raises(ValueError):
        np.linalg.norm(x, **params)
    with pytest.raises(ValueError, match=message):
        gc.norm(gc.tensor(x, requires_grad=True), **params)


def test_norm_second_derivatives(capsys):
    # Orders with piecewise-linear forms have Hessian 0 away from kinks; the
    # p-norms match central differences of their gradient; the singular-value
    # orders refuse cleanly instead of answering wrong.
    x = np.array([[1.0, -2.0, 0.5], [0.3, 1.5, -2.5]])
    for params in ({"ord": 1}, {"ord": np.inf}, {"ord": 1, "axis": 1},
                   {"ord": np.inf, "axis": 0}):
        H = gc.hessian(lambda a: gc.norm(a, **params).sum())(x)
        assert np.all(H.data == 0)
    for params in ({"ord": 3, "axis": 1}, {"ord": -1, "axis": 0}, {"ord": "fro"}):
        H = gc.hessian(lambda a: gc.norm(a, **params).sum())(x)
        fd = np.stack([central(lambda z, k=k: float(np.ravel(
            gc.grad(lambda a: gc.norm(a, **params).sum())(z).data)[k]), x)
            for k in range(x.size)]).reshape(x.shape + x.shape)
        np.testing.assert_allclose(H.data, fd, rtol=1e-5, atol=1e-6)
    # the singular-value orders: through the SVD's derivative, which exists
    # while the singular values are distinct
    for ord in (2, -2, "nuc"):
        H = gc.hessian(lambda a, ord=ord: gc.norm(a, ord=ord))(x)
        fd = np.stack([central(lambda z, k=k, ord=ord: float(np.ravel(
            gc.grad(lambda a: gc.norm(a, ord=ord))(z).data)[k]), x)
            for k in range(x.size)]).reshape(x.shape + x.shape)
        np.testing.assert_allclose(H.data, fd, rtol=1e-5, atol=1e-6)
    from gradcli.errors import EvaluationError
    with pytest.raises(EvaluationError, match="repeated singular values"):
        gc.hessian(lambda a: gc.norm(a, ord="nuc"))(np.eye(2))
    code, out, err = run_cli(capsys, "hessian", "norm(A, 2)", "--A", "1,0;0,1")
    assert code == 3 and "repeated singular values" in err and not out


@pytest.mark.parametrize("expr, sym", [
    ("norm(A, 1)", True), ("norm(A, -1, (1, 0))", True), ("sum(norm(A, 3, 1))", True),
    ("sum(norm(A, -2, 0))", True), ("norm(A)", True),
    ("norm(A, 2)", False), ("norm(A, -2)", False),
])
def test_norm_sympy_forms_or_a_clean_skip(capsys, expr, sym):
    code, out, err = run_cli(capsys, "check", expr, "--A", "1,-2,0.5;0.3,1.5,-2.5")
    assert code == 0, err
    if sym:
        assert "max |AD - sym|" in out
    else:
        assert "has no closed sympy form" in out


@pytest.mark.parametrize("ord", [2, -2, "nuc", 1, -np.inf])
def test_norm_jacobian_of_a_stack_by_batched_rows(ord):
    # The rules take a batch of cotangents (a Jacobian's rows in one walk).
    rng = np.random.default_rng(7)
    x = rng.uniform(-2, 2, (3, 2, 4))

    def f(a):
        return gc.norm(a, ord=ord, axis=(2, 1))

    J = gc.jacobian(f, method="rows")(x).data
    J_loop = gc.jacobian(f, method="loop")(x).data
    fd = np.stack([central(lambda z, k=k: float(np.linalg.norm(z, ord, (2, 1))[k]), x)
                   for k in range(3)])
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(J, J_loop, rtol=1e-13, atol=1e-14)


def test_where_over_a_matrix_product_second_derivatives_by_hand(capsys):
    # f = sum_j sum_k log(A[1, k]) B[k, j]: d2f / dA[1, k] dB[k, j] = 1 / A[1, k],
    # d2f / dA[1, k]^2 = -sum_j B[k, j] / A[1, k]^2; row 0 of A never counts.
    code, out, err = run_cli(capsys, "hessian", "sum(where(C > 0, log(A) @ B, 0))",
                             "--C", "-1,-1;1,1", "--A", "-1,2;3,4", "--B", "1,2;3,4",
                             "--format", "json")
    assert code == 0, err
    h = json.loads(out)["hessian"]
    ab = np.zeros((2, 2, 2, 2))
    ab[1, 0, 0, :] = 1 / 3
    ab[1, 1, 1, :] = 1 / 4
    aa = np.zeros((2, 2, 2, 2))
    aa[1, 0, 1, 0] = -3 / 9
    aa[1, 1, 1, 1] = -7 / 16
    np.testing.assert_allclose(h["A"]["B"], ab, rtol=1e-14, atol=0)
    np.testing.assert_allclose(h["A"]["A"], aa, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(h["B"]["B"], np.zeros((2, 2, 2, 2)))
