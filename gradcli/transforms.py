"""Function transforms, like JAX's, on gradcli's engine: grad, jacobian, hessian, ...

Each transform takes a function ``f`` of Tensors (Python control flow, ``gc.*``
ops, numpy functions and Tensor methods all work) and returns a function of the
same arguments. The arguments named by ``argnums`` become fresh leaf Tensors
(float64, or float32 when given as a float32 tensor or array) that require
grad; ``f`` runs on them with gradient recording on (also under ``gc.no_grad``),
and the results come back as detached Tensors. Gradients are returned, never
accumulated: no caller's ``.grad`` changes.

Whole Jacobians and Hessians push every row's cotangent through the graph at
once: a batch of seeds with a leading axis, through the engine's one backward
walk and its one set of rules (``lead=1``), instead of one backward pass per
row; ``method="loop"`` does the latter, as a reference.

>>> import gradcli as gc
>>> from gradcli.transforms import grad, hessian
>>> f = lambda x: gc.sum(x ** 3)
>>> grad(f)([1.0, 2.0])
tensor([ 3., 12.], dtype=gradcli.float64)
>>> hessian(f)([1.0, 2.0])
tensor([[ 6.,  0.],
        [ 0., 12.]], dtype=gradcli.float64)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from .engine import backward, graph
from .engine.graph import enable_grad
from .engine.tensor import Tensor

# Cap on the elements of one batched gradient: bigger batches go in chunks.
MAX_ELEMENTS = 1 << 22

__all__ = ["grad", "hessian", "hvp", "jacobian", "value_and_grad", "vjp"]


# -- shared plumbing --------------------------------------------------------------
def _leaf(value, position: int, name: str) -> Tensor:
    data = value._data if isinstance(value, Tensor) else value
    try:
        data = np.asarray(data)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: argument {position} is not an array: {exc}") from exc
    if data.dtype.kind not in "fiub":
        raise TypeError(
            f"{name}: cannot differentiate with respect to argument {position} "
            f"({type(value).__name__} of dtype {data.dtype}); pass a number, a "
            "list of numbers, an array or a Tensor"
        )
    dtype = np.float32 if data.dtype == np.float32 else np.float64
    leaf = Tensor._make(np.array(data, dtype=dtype))  # a copy: f cannot alias it
    leaf.requires_grad = True
    return leaf


def _positions(argnums, nargs: int, name: str) -> tuple[tuple[int, ...], bool]:
    single = isinstance(argnums, (int, np.integer))
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError(f"{name}: argnums is empty; name at least one argument")
    out = []
    for n in nums:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{name}: argnums must be ints, not {type(n).__name__}")
        if not -nargs <= n < nargs:
            raise ValueError(
                f"{name}: argnums {n} is out of range for a call with {nargs} "
                "positional argument(s)"
            )
        out.append(int(n) % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: argnums {nums} names an argument twice")
    return tuple(out), single


_RUNNING = [0]  # how many transformed functions are running (nesting check)


def _call(f: Callable, args: tuple, kwargs: dict, nums: tuple[int, ...], name: str):
    """Run ``f`` with fresh leaves at ``nums``; return its output and the leaves."""
    args = list(args)
    if _RUNNING[0] and any(
        isinstance(args[n], Tensor) and args[n].requires_grad for n in nums
    ):
        # The result would be detached: the outer derivative would silently
        # miss this path. Never drop a gradient silently.
        raise NotImplementedError(
            f"{name} inside another transform, on a value that depends on the "
            "outer function's input: transforms do not nest (their results are "
            "detached). Use hessian or hvp for second derivatives, or pass "
            "x.detach() to treat the inner result as a constant"
        )
    leaves = []
    for n in nums:
        args[n] = _leaf(args[n], n, name)
        leaves.append(args[n])
    _RUNNING[0] += 1
    try:
        with enable_grad():
            out = f(*args, **kwargs)
    finally:
        _RUNNING[0] -= 1
    if not isinstance(out, Tensor):
        numeric = isinstance(out, (int, float, np.ndarray, np.generic))
        data = np.asarray(out) if numeric else None
        if data is None or data.dtype.kind not in "fiub":
            raise TypeError(
                f"{name}: the function must return a Tensor (or a number or array), "
                f"not {type(out).__name__}"
            )
        out = Tensor._make(data)
    return out, leaves


def _float(dtype) -> np.dtype:
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _unit_seed(out: Tensor, name: str) -> np.ndarray:
    """The seed 1 for a scalar output (an error naming ``name`` for any other)."""
    if out.size != 1:
        raise ValueError(
            f"{name} needs a function with a scalar output; this one returns shape "
            f"{out.shape}. Reduce it (e.g. gc.sum), or use jacobian for every "
            "output's derivative"
        )
    return np.ones(out.shape, dtype=_float(out.dtype))


def _result(g, leaf: Tensor) -> Tensor:
    if g is None:
        return Tensor._make(np.zeros(leaf.shape, dtype=leaf.dtype))
    data = g._data if isinstance(g, Tensor) else g
    return Tensor._make(np.array(np.broadcast_to(data, leaf.shape), dtype=leaf.dtype))


def _block(data, shape: tuple[int, ...], dtype) -> Tensor:
    return Tensor._make(np.array(np.reshape(data, shape), dtype=dtype))


def _pack(items: list, single: bool):
    return items[0] if single else tuple(items)


# -- the two pullbacks: one cotangent, or a batch of them -------------------------
def _grads(out: Tensor, seed, leaves, *, create_graph: bool = False) -> list:
    """d<seed, out>/d(leaf) for each of ``leaves`` (None where out ignores the leaf).

    ``seed`` has ``out``'s shape. With ``create_graph`` the rules run on Tensors
    and the gradients come back as Tensors with a graph (differentiable again).
    The engine's walk, restricted to edges that lead to ``leaves``, keeping the
    graph and writing no ``.grad``.

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], requires_grad=True)
    >>> _grads(gc.sum(x * x), np.float32(1.0), [x])
    [array([2., 4.], dtype=float32)]
    >>> x.grad is None
    True
    """
    if create_graph and not isinstance(seed, Tensor):
        seed = Tensor._make(np.asarray(seed))
    if out.grad_fn is None:
        return [seed if leaf is out else None for leaf in leaves]
    with graph.set_grad_enabled(create_graph):
        got = backward.run_backward(out.grad_fn, seed, retain_graph=True,
                                 create_graph=create_graph, wrap=Tensor._make,
                                 accumulate=False, only={id(leaf) for leaf in leaves})
    return [got.get(id(leaf)) for leaf in leaves]


def _rows(out: Tensor, leaves, seeds=None, *, max_elements: int = MAX_ELEMENTS) -> list:
    """For each leaf, the gradients of a batch of cotangents: (B,) + leaf.shape.

    ``seeds`` has shape ``(B,) + out.shape``; None means the identity over
    ``out``'s elements (B = out.size): the Jacobian row by row. The batch goes
    through the graph in one walk (in chunks, if ``max_elements`` asks).

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    >>> _rows(x * x, [x])[0]
    array([[2., 0.],
           [0., 4.]])
    """
    shape = out.shape
    dtype = _float(out.dtype)
    m = math.prod(shape)
    B = m if seeds is None else len(seeds)

    def batch(start, stop):
        if seeds is not None:
            return np.asarray(seeds[start:stop], dtype=dtype)
        return np.eye(stop - start, m, start, dtype=dtype).reshape((stop - start,) + shape)

    def fill(got, n):
        return [np.zeros((n,) + x.shape, dtype=x.dtype) if got.get(id(x)) is None
                else got[id(x)] for x in leaves]

    if out.grad_fn is None or B == 0:
        return fill({id(out): batch(0, B)} if B else {}, B)
    biggest = max((math.prod(s) for n in graph.topological_order(out.grad_fn)
                   for s in n.shapes), default=1)
    chunk = max(1, min(B, max_elements // max(biggest, m, 1)))
    parts: list[list] = [[] for _ in leaves]
    only = {id(x) for x in leaves}
    with graph.set_grad_enabled(False):
        for start in range(0, B, chunk):
            stop = min(B, start + chunk)
            seeds_now = batch(start, stop)
            for guard in (False, True):  # see run_backward's guard
                got = backward.run_backward(out.grad_fn, seeds_now, retain_graph=True,
                                         create_graph=False, wrap=Tensor._make,
                                         accumulate=False, only=only, lead=1, guard=guard)
                if all(np.isfinite(g).all() for g in got.values()):
                    break
            for k, r in enumerate(fill(got, stop - start)):
                parts[k].append(r)
    return [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]


# -- gradients --------------------------------------------------------------------
def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``f`` and its gradient together: ``(f(*args), grad f(*args))``.

    >>> import gradcli as gc
    >>> value, (dx, dy) = value_and_grad(lambda x, y: x * y, argnums=(0, 1))(3.0, 4.0)
    >>> value.item(), dx.item(), dy.item()
    (12.0, 4.0, 3.0)
    """

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        nums, single = _positions(argnums, len(args), "grad")
        out, leaves = _call(f, args, kwargs, nums, "grad")
        seed = _unit_seed(out, "grad")
        gs = _grads(out, seed, leaves)
        return out.detach(), _pack([_result(g, x) for g, x in zip(gs, leaves)], single)

    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The gradient of a scalar function, with respect to the argument(s) ``argnums``.

    An int gives one Tensor of that argument's shape; a tuple gives a tuple.

    >>> import gradcli as gc
    >>> grad(lambda x: gc.dot(x, x))([1.0, 2.0, 3.0])
    tensor([2., 4., 6.], dtype=gradcli.float64)
    """
    vg = value_and_grad(f, argnums)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        return vg(*args, **kwargs)[1]

    return grad_f


def vjp(f: Callable, *args) -> tuple[Tensor, Callable]:
    """``(f(*args), vjp_fn)``; ``vjp_fn(v)``: the tuple of ``v^T J``, one per argument.

    Every argument is differentiated; ``vjp_fn`` can be called many times.

    >>> import gradcli as gc
    >>> y, pullback = vjp(lambda x: x * x, [1.0, 2.0])
    >>> pullback([1.0, 10.0])
    (tensor([ 2., 40.], dtype=gradcli.float64),)
    """
    nums = tuple(range(len(args)))
    out, leaves = _call(f, args, {}, nums, "vjp")

    def vjp_fn(cotangent) -> tuple[Tensor, ...]:
        data = (
            cotangent._data if isinstance(cotangent, Tensor) else np.asarray(cotangent)
        )
        if data.shape != out.shape:
            raise ValueError(
                f"vjp: the cotangent has shape {data.shape} but the output has shape "
                f"{out.shape}: they must match"
            )
        seed = np.array(data, dtype=_float(out.dtype))
        gs = _grads(out, seed, leaves)
        return tuple(_result(g, x) for g, x in zip(gs, leaves))

    return out.detach(), vjp_fn


# -- Jacobians --------------------------------------------------------------------
_METHODS = ("auto", "rows", "columns", "loop")


def jacobian(
    f: Callable, argnums: int | Sequence[int] = 0, *, method: str = "auto"
) -> Callable:
    """The Jacobian of ``f``: shape ``out.shape + arg.shape`` for each of ``argnums``.

    ``method``: ``"rows"`` pushes every output's cotangent (the identity) through
    the graph in one batched reverse walk; ``"columns"`` does the same over the
    inputs, differentiating the linear map ``u -> J^T u`` (reverse over reverse),
    which wins when inputs are much fewer than outputs; ``"auto"`` picks one;
    ``"loop"`` runs one ordinary backward pass per output element (the reference).

    >>> import gradcli as gc
    >>> jacobian(lambda x: x ** 2)([1.0, 3.0])
    tensor([[2., 0.],
            [0., 6.]], dtype=gradcli.float64)
    """
    if method not in _METHODS:
        raise ValueError(f"jacobian: method must be one of {_METHODS}, not {method!r}")

    @functools.wraps(f)
    def jacobian_f(*args, **kwargs):
        nums, single = _positions(argnums, len(args), "jacobian")
        out, leaves = _call(f, args, kwargs, nums, "jacobian")
        m = out.size
        how = method
        if how == "auto":
            n = sum(x.size for x in leaves)
            how = "columns" if m >= 64 and 4 * n <= m else "rows"
        if how == "rows":
            rows = _rows(out, leaves)
        elif how == "loop":
            rows = _loop_rows(out, leaves)
        else:
            rows = _columns(out, leaves)
            if method == "auto" and not all(np.isfinite(r).all() for r in rows):
                # Reverse over reverse needs every rule to be differentiable
                # again, at this very point; the rows need first derivatives only.
                rows = _rows(out, leaves)
        blocks = [_block(r, out.shape + x.shape, x.dtype) for r, x in zip(rows, leaves)]
        return _pack(blocks, single)

    return jacobian_f


def _loop_rows(out: Tensor, leaves: list) -> list:
    """One ordinary backward pass per element of ``out``; (out.size,) + leaf.shape."""
    m = out.size
    dtype = _float(out.dtype)
    rows = [np.zeros((m,) + x.shape, dtype=x.dtype) for x in leaves]
    for i in range(m):
        seed = np.zeros(m, dtype=dtype)
        seed[i] = 1
        for k, g in enumerate(_grads(out, seed.reshape(out.shape), leaves)):
            if g is not None:
                rows[k][i] = g._data if isinstance(g, Tensor) else g
    return rows


def _columns(out: Tensor, leaves: list) -> list:
    """Jacobian rows from columns: J e_j is the derivative of ``u -> J^T u`` at e_j."""
    u = Tensor._make(np.ones(out.shape, dtype=_float(out.dtype)))
    u.requires_grad = True
    m = out.size
    rows = []
    for x, jtu in zip(leaves, _grads(out, u, leaves, create_graph=True)):
        if not isinstance(jtu, Tensor):
            rows.append(np.zeros((m,) + x.shape, dtype=x.dtype))
            continue
        cols = _rows(jtu, [u])[0]  # (x.size,) + out.shape
        rows.append(cols.reshape(x.size, m).T.reshape((m,) + x.shape))
    return rows


# -- second derivatives ---------------------------------------------------------------
def hessian(
    f: Callable, argnums: int | Sequence[int] = 0, *, method: str = "auto"
) -> Callable:
    """The Hessian of a scalar ``f``: shape ``arg.shape + arg.shape``.

    With a tuple ``argnums``, a nested tuple of blocks: ``H[i][j]`` has shape
    ``args[i].shape + args[j].shape``. The gradient is built with a graph of its
    own, then differentiated once for all its elements in one batched walk
    (``method="loop"``: one backward pass per gradient element instead).

    >>> import gradcli as gc
    >>> hessian(lambda x, y: x * x * y, argnums=(0, 1))(1.0, 2.0)[0][1]
    tensor(2., dtype=gradcli.float64)
    """
    if method not in ("auto", "loop"):
        raise ValueError(f"hessian: method must be 'auto' or 'loop', not {method!r}")

    @functools.wraps(f)
    def hessian_f(*args, **kwargs):
        nums, single = _positions(argnums, len(args), "hessian")
        out, leaves = _call(f, args, kwargs, nums, "hessian")
        seed = _unit_seed(out, "hessian")
        gs = _grads(out, seed, leaves, create_graph=True)
        table = []
        for xi, gi in zip(leaves, gs):
            if not isinstance(gi, Tensor):
                rows = [np.zeros((xi.size,) + xj.shape) for xj in leaves]
            elif method == "loop":
                rows = _loop_rows(gi, leaves)
            else:
                rows = _rows(gi, leaves)
            table.append(
                [
                    _block(r, xi.shape + xj.shape, xj.dtype)
                    for r, xj in zip(rows, leaves)
                ]
            )
        return table[0][0] if single else tuple(tuple(row) for row in table)

    return hessian_f


def hvp(f: Callable, x, v) -> Tensor:
    """The Hessian of a scalar ``f`` at ``x`` times ``v``, without forming the Hessian.

    Differentiates ``<grad f(x), v>`` once more (reverse over reverse): it is
    ``v^T H``, which is ``H v`` for the symmetric Hessian of a smooth ``f``.

    >>> import gradcli as gc
    >>> hvp(lambda x: gc.sum(x ** 3), [1.0, 2.0], [1.0, 1.0])
    tensor([ 6., 12.], dtype=gradcli.float64)
    """
    out, (leaf,) = _call(f, (x,), {}, (0,), "hvp")
    seed = _unit_seed(out, "hvp")
    vdata = v._data if isinstance(v, Tensor) else np.asarray(v)
    if vdata.shape != leaf.shape:
        raise ValueError(
            f"hvp: v has shape {vdata.shape} but x has shape {leaf.shape}: they "
            "must match"
        )
    (g,) = _grads(out, seed, [leaf], create_graph=True)
    if not isinstance(g, Tensor):
        return _result(None, leaf)
    (hv,) = _grads(g, np.array(vdata, dtype=leaf.dtype), [leaf])
    return _result(hv, leaf)
