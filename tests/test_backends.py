"""One interpreter, three backends: every op the expression language reaches, run at
a point inside its domain by the engine, plain numpy and sympy, from the parsed tree
and from the graph the engine recorded (replayed by all three). Engine and numpy agree bit for bit (they must:
finite differences vary the numpy function and compare with the engine), in float64
and in float32; sympy, evaluated to 30 digits, agrees to 1e-12, which also fences
every op's sympy form."""

from __future__ import annotations

import numpy as np
import pytest

from gradcli.backends import NumpyBackend, TensorBackend
from gradcli.check import expression_function
from gradcli.compute import Target, evaluate
from gradcli.engine.ops import OPS
from gradcli.interpret import interpret, replay
from gradcli.parse import free_names, parse
from gradcli.symbolic import SymbolicSkip, SympyBackend

UNARY = ["neg", "abs", "sqrt", "square", "exp", "expm1", "log", "log1p", "log2",
         "log10", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh",
         "tanh", "arcsinh", "arccosh", "arctanh", "sigmoid", "relu", "softplus",
         "sign", "floor", "ceil", "detach"]
BINARY = ["add", "sub", "mul", "div", "pow", "arctan2", "maximum", "minimum"]
COMPARISONS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
               "equal": "==", "not_equal": "!="}
# name -> expression over x (3,), y (3,), A (2, 3), M (3, 3) well conditioned.
CASES = {
    **{n: f"{n}(x)" for n in UNARY},
    # The last argument a literal: float32 runs must round it as the engine does.
    **{n: f"{n}(x, y) + {n}(x, 0.37)" for n in BINARY},
    "clip": "clip(x, -1.3, 1.1)",
    "where": "where(x < y, x, 0.37)",
    **{n: f"where(x {s} y, x, y)" for n, s in COMPARISONS.items()},
    "sum": "sum(A, axis=1)",
    "mean": "mean(A, axis=0, keepdims=True)",
    "prod": "prod(A, axis=1)",
    "max": "max(A, axis=1)",
    "min": "min(A)",
    "norm": "norm(x)",
    "logsumexp": "logsumexp(A, axis=1)",
    "var": "var(A, axis=1, ddof=1)",
    "std": "std(A)",
    "softmax": "softmax(A, axis=1)",
    "log_softmax": "log_softmax(A, axis=0)",
    "dot": "dot(A, x)",
    "matmul": "A @ M",
    "outer": "outer(x, y)",
    "inner": "inner(A, x)",
    "trace": "trace(M) + trace(A, 1, 1, 0)",
    "transpose": "A.T",
    "det": "det(M)",
    "inv": "inv(M)",
    "solve": "solve(M, x)",
    "cholesky": "cholesky(M) + cholesky(M, True)",
    "pinv": "pinv(A)",
    "matrix_power": "matrix_power(M, 3) + matrix_power(M, -2) + matrix_power(M, 0)",
    "reshape": "reshape(A, (3, 2))",
    "concatenate": "concatenate([x, y, x])",
    "stack": "stack([x, y], axis=1)",
    "getitem": "A[1, ::-1] + x[[0, 2, 2]] + A[None, ..., 2][0, :, None] * x[None, :]",
    "broadcast_to": "broadcast_to(x, (2, 3))",
    "flip": "flip(A, 1) + flip(A)",
    "fliplr": "fliplr(A)",
    "flipud": "flipud(A)",
    "roll": "roll(A, 1, axis=1) + roll(A, (1, 2), (0, 1))",
    "rot90": "rot90(A) @ A + transpose(rot90(A, 2)) @ transpose(rot90(A, -1, (1, 0)))",
    "squeeze": "squeeze(reshape(x, (1, 3, 1)), axis=0)",
    "expand_dims": "expand_dims(x, (0, 2))",
    "moveaxis": "moveaxis(A, 0, -1)",
    "swapaxes": "swapaxes(A, 0, 1)",
    "repeat": "repeat(A, 2, axis=0) + 0 * repeat(x, (1, 0, 3))[0]",
    "tile": "tile(x, (2, 2))",
    "atleast_1d": "atleast_1d(sum(x))",
    "atleast_2d": "atleast_2d(x)",
    "atleast_3d": "atleast_3d(A)",
    "vstack": "vstack([x, A])",
    "row_stack": "row_stack([A, y])",
    "hstack": "hstack([x, y, x])",
    "column_stack": "column_stack([x, y, transpose(A)])",
    "dstack": "dstack([A, A])",
    "append": "append(A, x) + append(A, expand_dims(y, 0), 0)[2, 0]",
    "pad": "pad(A, (1, 2))",
    "exp2": "exp2(x)",
    "logaddexp": "logaddexp(x, y)",
    "logaddexp2": "logaddexp2(x, y)",
    "deg2rad": "deg2rad(x)",
    "radians": "radians(x)",
    "rad2deg": "rad2deg(x)",
    "degrees": "degrees(x)",
    "hypot": "hypot(x, y)",
    "sinc": "sinc(x)",
    "remainder": "remainder(x, y)",
    "mod": "mod(x, y)",
    "fmod": "fmod(x, y)",
    "nan_to_num": "nan_to_num(x)",
    "real": "real(x)",
    "conj": "conj(x)",
    "cumsum": "cumsum(A, axis=1)",
    "cumprod": "cumprod(A)",
    "diff": "diff(A, 1, 0) + diff(x, 2)",
    "diagonal": "diagonal(M, 1) + 0 * sum(diagonal(A))",
    "diag": "diag(x, 1) + 0 * sum(diag(M))",
    "tril": "tril(M, -1)",
    "triu": "triu(A)",
    "kron": "kron(x, A)",
    "tensordot": "tensordot(A, M, 1)",
    "cross": "cross(x, y) + cross(M, y)",
    "sort": "sort(A) + sort(A, 0) + sort(x, None)",
}
# Ops no expression can reach, with the reason; the first test below keeps the two
# lists complete.
INTERNAL = {
    "index_add": "the gradient of getitem; no expression syntax",
    "einsum": "its subscripts are a string, and expressions take no strings",
    "logical_and": "numpy interop only: the parser has no 'and'",
    "logical_or": "numpy interop only: the parser has no 'or'",
    "logical_not": "numpy interop only: the parser has no 'not'",
    "isfinite": "numpy interop only, bool result",
    "isnan": "numpy interop only, bool result",
    "isinf": "numpy interop only, bool result",
    "_slogdet": "np.linalg.slogdet's packed results (a tuple is no expression value)",
    "_eigh": "np.linalg.eigh's packed results (a tuple is no expression value)",
    "_svd": "np.linalg.svd's packed results (a tuple is no expression value)",
    "_qr": "np.linalg.qr's packed results (a tuple is no expression value)",
}


def point(name: str) -> dict[str, np.ndarray]:
    """Inputs inside the op's declared domain (x for its first input, y its second)."""
    o = OPS[name]
    rng = np.random.default_rng(sorted(OPS).index(name))
    dom = [d if d != "matrix" else (-1.0, 1.0) for d in o.domain] + [(-3.0, 3.0)] * 2
    x, y = rng.uniform(*dom[0], 3), rng.uniform(*dom[1], 3)
    if name in COMPARISONS:
        y[0] = x[0]  # a tie, where equal and the others differ
    A = rng.uniform(*dom[0], (2, 3))
    return {"x": x, "y": y, "A": A, "M": 3 * np.eye(3) + rng.uniform(-1, 1, (3, 3))}


def run(name: str, dtype):
    """(tree, inputs used, engine's value, engine's recorded graph)."""
    full = point(name)
    tree = parse(CASES[name], inputs=list(full), ops=OPS)
    inputs = {n: full[n].astype(dtype) for n in sorted(free_names(tree))}
    r = evaluate(Target(CASES[name], tree=tree), inputs, record=True, no_grad=True)
    return tree, inputs, r.value, (r.output, r.leaves)


def same_bits(got, want) -> None:
    got = np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes(), (got, want)


def test_every_op_is_covered_or_unreachable_with_a_reason():
    assert set(CASES) | set(INTERNAL) == set(OPS)
    assert not set(CASES) & set(INTERNAL)
    assert all(not OPS[n].expr for n in INTERNAL)  # no expression op hides here


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_and_numpy_agree_bit_for_bit(name, dtype):
    tree, inputs, value, graph = run(name, dtype)
    assert value.dtype == dtype
    with np.errstate(all="ignore"):
        same_bits(interpret(tree, NumpyBackend(dtype), inputs), value)
        same_bits(replay(graph, NumpyBackend(dtype), inputs), value)
        again = replay(graph, TensorBackend("", 10**6), graph[1])  # the engine again
        same_bits(getattr(again, "_data", again), value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sympy_agrees_with_the_engine(name):
    tree, inputs, value, graph = run(name, np.float64)
    backend = SympyBackend(inputs, list(inputs))
    if OPS[name].sym is None and name != "detach":  # detach is the interpreter's
        with pytest.raises(SymbolicSkip, match=f"no sympy form for {name}"):
            interpret(tree, backend, backend.leaves)
        return
    from_tree = backend.evaluate(interpret(tree, backend, backend.leaves))
    np.testing.assert_allclose(from_tree.reshape(value.shape), value, rtol=1e-12,
                               atol=1e-12)
    from_graph = backend.evaluate(replay(graph, backend, backend.leaves))
    np.testing.assert_allclose(from_graph.reshape(value.shape), value, rtol=1e-12,
                               atol=1e-12)


def test_an_op_without_a_sympy_form_is_the_documented_skip(monkeypatch):
    monkeypatch.setattr(OPS["sin"], "sym", None)
    tree, inputs, _, graph = run("sin", np.float64)
    backend = SympyBackend(inputs, list(inputs))
    with pytest.raises(SymbolicSkip, match="^no sympy form for sin$"):
        interpret(tree, backend, backend.leaves)
    with pytest.raises(SymbolicSkip, match="^no sympy form for sin$"):
        replay(graph, backend, backend.leaves)


def test_detach_is_frozen_at_the_point_by_numpy_and_sympy():
    x = np.array([0.5, -1.5, 2.0])
    tree = parse("detach(x * x) * x", inputs=["x"], ops=OPS)
    numpy = NumpyBackend()
    interpret(tree, numpy, {"x": x})  # the point
    same_bits(interpret(tree, numpy, {"x": 2 * x}), x * x * (2 * x))
    backend = SympyBackend({"x": x}, ["x"])
    out = interpret(tree, backend, backend.leaves)
    s0, s1, s2 = backend.leaves["x"].obj
    assert list(out.obj) == [0.25 * s0, 2.25 * s1, 4 * s2]


def test_float32_finite_differences_use_float32_constants():
    x = np.array([0.3, 1.7, 2.9], dtype=np.float32)
    tree = parse("x * 0.1 + 0.7", inputs=["x"], ops=OPS)
    f = expression_function(tree, {"x": x})
    y = x * np.float32(1.001)
    # numpy in float32 is the truth; a float64 constant would make a float64 result.
    same_bits(f({"x": y}), y * np.float32(0.1) + np.float32(0.7))
    engine = evaluate(Target("x * 0.1 + 0.7", tree=tree), {"x": y}, no_grad=True)
    same_bits(f({"x": y}), engine.value)
