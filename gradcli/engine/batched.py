"""Gradients of chosen leaves: one cotangent, or a whole batch in one walk.

``graph.run_backward`` accumulates into the ``.grad`` of every leaf it reaches.
The transforms (``gradcli.transforms``) need gradients *returned* for the leaves
they made, without touching the caller's tensors, and whole Jacobians and
Hessians fast. This module walks the same ``Node`` records in the same order
(newest first, a heap keyed on ``node.seq``), in two forms:

- ``grads``: one cotangent, optionally recording the pass (``create_graph``),
  as ``run_backward`` does, but returning the leaves' gradients.
- ``batched_grads``: a batch of cotangents ``(B,) + out.shape`` (by default the
  identity: every row of the Jacobian) pushed through the graph in ONE walk.
  Every gradient carries a leading batch axis, so the Python cost per node is
  paid once instead of B times.

Batch-aware rules: elementwise rules (``op.elementwise``) are written
``g * f'(x)`` and broadcast over a leading axis as they stand, as do a few more
(``BROADCASTING``); the others have a rule in ``RULES``, keyed by op name; an op
in neither falls back to calling its ordinary rule once per batch row (correct,
slower). Both walks visit only the nodes from
which a requested leaf is reached, and never free the graph (it may belong to
the caller) nor write any ``.grad``.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from . import graph
from .broadcast import unbroadcast as _unbroadcast
from .graph import Node
from .tensor import Tensor

# Cap on the elements of one batched intermediate: bigger batches go in chunks.
MAX_ELEMENTS = 1 << 22


def unbroadcast(g, shape: tuple[int, ...]):
    """Sum a batched gradient over broadcast axes so that it has exactly ``shape``.

    Axis 0 is the batch and is kept; the other axes align on the right, as numpy
    broadcasting aligns them.

    >>> unbroadcast(np.ones((5, 2, 3)), (5, 3)).shape
    (5, 3)
    >>> unbroadcast(np.ones((5, 2, 3)), (5, 2, 1))[0]
    array([[3.],
           [3.]])
    """
    gshape = np.shape(g)
    if gshape == shape:
        return g
    if not gshape:
        return np.broadcast_to(g, shape)
    lead = len(gshape) - len(shape)
    if lead < 0:
        # A rule returned fewer axes than the input has: spread it instead.
        g = np.reshape(g, gshape[:1] + (1,) * -lead + gshape[1:])
        return np.broadcast_to(g, shape)
    axes = tuple(range(1, 1 + lead)) + tuple(
        lead + i for i, n in enumerate(shape) if i and n == 1 and gshape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if lead:
        g = g.reshape(shape)
    if g.shape != shape:
        raise ValueError(f"batched gradient of shape {gshape} cannot reduce to {shape}")
    return g


# -- which nodes to visit ---------------------------------------------------------
def _plan(root: Node, ids: dict) -> tuple[dict, int]:
    """``graph.edges_to`` and the largest array size in the graph (to size chunks)."""
    wants = graph.edges_to(root, ids)
    biggest = max((math.prod(s) for n in graph.topological_order(root) for s in n.shapes),
                  default=1)
    return wants, biggest


# -- one cotangent --------------------------------------------------------------
def grads(out: Tensor, seed, leaves, *, create_graph: bool = False) -> list:
    """d<seed, out>/d(leaf) for each of ``leaves`` (None where out ignores the leaf).

    ``seed`` has ``out``'s shape. With ``create_graph`` the rules run on Tensors
    and the gradients come back as Tensors with a graph (differentiable again).
    The engine's own walk, restricted to edges that lead to ``leaves``, keeping
    the graph and writing no ``.grad``.

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], requires_grad=True)
    >>> grads(gc.sum(x * x), np.float32(1.0), [x])
    [array([2., 4.], dtype=float32)]
    >>> x.grad is None
    True
    """
    if create_graph and not isinstance(seed, Tensor):
        seed = Tensor._make(np.asarray(seed))
    if out.grad_fn is None:
        return [seed if leaf is out else None for leaf in leaves]
    with graph.set_grad_enabled(create_graph):
        got = graph.run_backward(out.grad_fn, seed, retain_graph=True,
                                 create_graph=create_graph, wrap=Tensor._make,
                                 accumulate=False, only={id(leaf) for leaf in leaves})
    return [got.get(id(leaf)) for leaf in leaves]


def _guards(op) -> bool:
    """Whether the op's rules may need ``graph._guarded`` (as the engine decides)."""
    return op.guard or getattr(op, "elementwise", False)


def _send(p, gx, gs, heap, heappush, ids, result) -> None:
    if type(p) is Node:
        key = id(p)
        prev = gs.get(key)
        if prev is None:
            gs[key] = gx
            heappush(heap, (-p.seq, p))
        else:
            gs[key] = prev + gx
    else:
        k = ids[id(p)]
        result[k] = gx if result[k] is None else result[k] + gx


# -- a batch of cotangents --------------------------------------------------------
def batched_grads(out: Tensor, leaves, seeds=None, *, max_elements: int = MAX_ELEMENTS):
    """For each leaf, the gradients of a batch of cotangents: shape (B,) + leaf.shape.

    ``seeds`` has shape ``(B,) + out.shape``; None means the identity over
    ``out``'s elements (B = out.size), which gives the Jacobian row by row. The
    batch goes through the graph in as few walks as ``max_elements`` allows.

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    >>> batched_grads(x * x, [x])[0]
    array([[2., 0.],
           [0., 4.]])
    """
    ids = {id(leaf): k for k, leaf in enumerate(leaves)}
    shape = out.shape
    dtype = out.dtype if out.dtype.kind == "f" else np.dtype(np.float64)
    m = math.prod(shape)
    B = m if seeds is None else len(seeds)
    result: list = [None] * len(leaves)
    if out.grad_fn is None:
        if id(out) in ids:
            result[ids[id(out)]] = _seeds(seeds, 0, B, shape, dtype)
        return _fill(result, leaves, B)
    root = out.grad_fn
    wants, biggest = _plan(root, ids)
    if id(root) not in wants:
        return _fill(result, leaves, B)
    chunk = max(1, min(B, max_elements // max(biggest, m, 1)))
    parts: list[list] = [[] for _ in leaves]
    with graph.set_grad_enabled(False):
        for start in range(0, B, chunk):
            stop = min(B, start + chunk)
            batch = _seeds(seeds, start, stop, shape, dtype)
            res: list = [None] * len(leaves)
            _walk_batched(root, batch, wants, ids, res, False)
            if not all(r is None or np.isfinite(r).all() for r in res):
                res = [None] * len(leaves)
                _walk_batched(root, batch, wants, ids, res, True)
            for k, r in enumerate(_fill(res, leaves, stop - start)):
                parts[k].append(r)
    return [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]


def _seeds(seeds, start: int, stop: int, shape, dtype):
    if seeds is not None:
        return np.asarray(seeds[start:stop], dtype=dtype)
    m = math.prod(shape)
    return np.eye(stop - start, m, start, dtype=dtype).reshape((stop - start,) + shape)


def _fill(result: list, leaves, B: int) -> list:
    return [
        np.zeros((B,) + leaf.shape, dtype=leaf.dtype) if r is None else r
        for r, leaf in zip(result, leaves)
    ]


def _walk_batched(root, seeds, wants, ids, result, guard: bool) -> None:
    """``graph.run_backward`` with a batch axis in front of every gradient.

    A batch of unit seeds is full of zeros, so with ``guard`` every guarded or
    elementwise rule is guarded. Without it, rules skip ``graph._guarded`` (a
    pass over every such gradient). That is exact whenever the results come out
    finite: a nan or inf the guard would have zeroed either reaches a result or
    is dropped by a selection (where, indexing), where the guard's zero would be
    dropped too. Otherwise the caller walks again with ``guard``.
    """
    B = seeds.shape[0]
    gs = {id(root): seeds}
    heap = [(-root.seq, root)]
    heappush, heappop = heapq.heappush, heapq.heappop
    while heap:
        node = heappop(heap)[1]
        g = gs.pop(id(node))
        if node.freed:
            raise RuntimeError(graph._SECOND_TIME)
        op = node.op
        out = node.out
        inputs = node.saved
        want = wants[id(node)]
        name = op.name
        if _broadcasts(op):
            params = node.params
            gxs = []
            for i, w in enumerate(want):
                gx = op.vjps[i](g, out, *inputs, **params) if w else None
                if gx is not None and guard and _guards(op):
                    gx = graph._guarded(g, gx)
                gxs.append(gx)
        else:
            rule = RULES.get(name)
            gxs = None
            if rule is not None:
                try:
                    gxs = rule(g, out, inputs, node, want, guard)
                except _Unsupported:
                    gxs = None
            if gxs is None:
                gxs = _loop(g, out, inputs, node, want, guard)
        shapes = node.shapes
        for i, p in enumerate(node.parents):
            if not want[i]:
                continue
            gx = gxs[i]
            if gx is None:
                continue
            full = (B,) + shapes[i]
            if gx.shape != full:
                gx = unbroadcast(gx, full)
            _send(p, gx, gs, heap, heappush, ids, result)


class _Unsupported(Exception):
    """A batched rule does not cover this case: use the per-row fallback."""


def _loop(g, out, inputs, node, want, guard: bool = True) -> list:
    """The ordinary rules, once per batch row, stacked (any op, slower)."""
    op = node.op
    params = node.params
    rows: list[list] = [[] for _ in want]
    for b in range(g.shape[0]):
        gb = g[b]
        if op.multi:
            gxs = op.vjps[0](gb, out, *inputs, **params)
        for i, w in enumerate(want):
            if not w:
                continue
            gx = gxs[i] if op.multi else op.vjps[i](gb, out, *inputs, **params)
            if gx is None:
                gx = np.zeros(node.shapes[i])
            if guard and _guards(op):
                gx = graph._guarded(gb, gx)
            if np.shape(gx) != node.shapes[i]:
                gx = _unbroadcast(gx, node.shapes[i])
            rows[i].append(gx)
    return [np.stack(r) if w else None for r, w in zip(rows, want)]


# -- batch-aware rules: g has shape (B,) + out.shape --------------------------------
# Besides the elementwise ops, ordinary rules that broadcast over a leading axis.
BROADCASTING = frozenset(
    {
        "inv",  # -out^T g out^T: matmul broadcasts over the batch axis
        "broadcast_to",  # g itself; unbroadcast does the work
    }
)


def _broadcasts(op) -> bool:
    return (getattr(op, "elementwise", False) or op.name in BROADCASTING) and not (
        op.multi
    )


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(a % ndim for a in axis)
    return (axis % ndim,)


def _shifted(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` of an array of ``ndim`` axes, counted in its batched form."""
    return tuple(a + 1 for a in _axes(axis, ndim))


def _bexpand(g, shape: tuple[int, ...], axis, keepdims: bool):
    """Broadcast a batched reduction gradient back over the reduced axes."""
    B = g.shape[0]
    if not keepdims:
        red = _axes(axis, len(shape))
        g = g.reshape((B,) + tuple(1 if i in red else n for i, n in enumerate(shape)))
    return np.broadcast_to(g, (B,) + shape)


def _sum(g, out, inputs, node, want, guard):
    p = node.params
    return [_bexpand(g, node.shapes[0], p.get("axis"), p.get("keepdims", False))]


def _mean(g, out, inputs, node, want, guard):
    p = node.params
    shape = node.shapes[0]
    axis = p.get("axis")
    n = math.prod(shape[i] for i in _axes(axis, len(shape)))
    return [_bexpand(g / n, shape, axis, p.get("keepdims", False))]


def _reduction(axis_of):
    """Rules of the form ``expand(g) * L(x, out)``: L is the ordinary rule at g = 1."""

    def rule(g, out, inputs, node, want, guard):
        p = node.params
        shape = node.shapes[0]
        axis, keepdims = axis_of(p)
        ones = np.ones(g.shape[1:], dtype=g.dtype)
        local = node.op.vjps[0](ones, out, *inputs, **p)
        ge = _bexpand(g, shape, axis, keepdims)
        gx = ge * local
        if guard and _guards(node.op):
            gx = graph._guarded(ge, gx)
        return [gx]

    return rule


_by_params = _reduction(lambda p: (p.get("axis"), p.get("keepdims", False)))
_last_two = _reduction(lambda p: ((-2, -1), False))


def _softmax(g, out, inputs, node, want, guard):
    ax = _shifted(node.params.get("axis", -1), out.ndim)
    return [out * (g - np.sum(g * out, axis=ax, keepdims=True))]


def _log_softmax(g, out, inputs, node, want, guard):
    ax = _shifted(node.params.get("axis", -1), out.ndim)
    return [g - np.exp(out) * np.sum(g, axis=ax, keepdims=True)]


def _swap(a):
    return np.swapaxes(a, -1, -2)


def _matmul(g, out, inputs, node, want, guard):
    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    if a.ndim == 0 or b.ndim == 0:
        raise _Unsupported
    B = g.shape[0]
    ga = gb = None
    if a.ndim == 1 and b.ndim == 1:  # g: (B,)
        if want[0]:
            ga = g[:, None] * b
        if want[1]:
            gb = g[:, None] * a
    elif a.ndim == 2 and b.ndim == 1:  # g: (B, m)
        if want[0]:
            ga = g[:, :, None] * b
        if want[1]:
            gb = g @ a
    elif a.ndim == 1 and b.ndim == 2:  # g: (B, n)
        if want[0]:
            ga = g @ b.T
        if want[1]:
            gb = a[:, None] * g[:, None, :]
    elif a.ndim == 2 and b.ndim == 2:  # g: (B, m, n); one BLAS call each
        if want[0]:
            ga = (g.reshape(-1, g.shape[-1]) @ b.T).reshape(B, a.shape[0], a.shape[1])
        if want[1]:
            gb = np.tensordot(g, a, axes=([1], [0])).transpose(0, 2, 1)
    else:  # stacks: promote vectors to matrices as matmul does, then undo it
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g[..., None, :] if a.ndim == 1 else g
        if b.ndim == 1:
            g2 = g2[..., None]
        if want[0]:
            ga = np.matmul(g2, _swap(b2))
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if want[1]:
            gb = np.matmul(_swap(a2), g2)
            if b.ndim == 1:
                gb = gb[..., 0]
    return [ga, gb]


def _dot(g, out, inputs, node, want, guard):
    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    if a.ndim and b.ndim:
        return _matmul(g, out, (a, b), node, want, guard)
    B = g.shape[0]
    ga = gb = None
    if want[0]:
        ga = g * b
        if a.ndim == 0:
            ga = ga.reshape(B, -1).sum(axis=1)
    if want[1]:
        gb = g * a
        if b.ndim == 0:
            gb = gb.reshape(B, -1).sum(axis=1)
    return [ga, gb]


def _outer(g, out, inputs, node, want, guard):
    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    B = g.shape[0]
    ga = (g @ b.ravel()).reshape((B,) + a.shape) if want[0] else None
    gb = None
    if want[1]:
        gb = np.tensordot(g, a.ravel(), axes=([1], [0])).reshape((B,) + b.shape)
    return [ga, gb]


def _solve(g, out, inputs, node, want, guard):
    a = np.asarray(inputs[0])
    n = a.shape[0]
    B = g.shape[0]
    if out.ndim == 1:  # g: (B, n)
        gb = np.linalg.solve(a.T, g.T).T
        ga = -gb[:, :, None] * out[None, None, :] if want[0] else None
    else:  # g: (B, n, k): one solve for the whole batch
        k = out.shape[1]
        gb = np.linalg.solve(a.T, g.transpose(1, 0, 2).reshape(n, B * k))
        gb = gb.reshape(n, B, k).transpose(1, 0, 2)
        ga = -np.matmul(gb, out.T) if want[0] else None
    return [ga, gb if want[1] else None]


def _transpose(g, out, inputs, node, want, guard):
    axes = node.params.get("axes")
    nd = g.ndim - 1
    if axes is None:
        perm = (0,) + tuple(range(nd, 0, -1))
    else:
        perm = (0,) + tuple(1 + int(i) for i in np.argsort([a % nd for a in axes]))
    return [np.transpose(g, perm)]


def _reshape(g, out, inputs, node, want, guard):
    return [g.reshape((g.shape[0],) + node.shapes[0])]


def _concatenate(g, out, inputs, node, want, guard):
    axis = node.params.get("axis", 0)
    if axis is None:
        raise _Unsupported
    ax = axis % (g.ndim - 1) + 1
    lead = (slice(None),) * ax
    res = []
    start = 0
    for shape, w in zip(node.shapes, want):
        stop = start + shape[ax - 1]
        res.append(g[lead + (slice(start, stop),)] if w else None)
        start = stop
    return res


def _stack(g, out, inputs, node, want, guard):
    ax = node.params.get("axis", 0) % (g.ndim - 1) + 1
    lead = (slice(None),) * ax
    return [g[lead + (i,)] if w else None for i, w in enumerate(want)]


def _is_basic(parts: tuple) -> bool:
    kinds = (int, np.integer, slice, type(None), type(Ellipsis))
    return all(isinstance(p, kinds) for p in parts)


def _consumes(p) -> int:
    """How many axes of the indexed array one part of an index uses up."""
    if p is None or isinstance(p, (bool, np.bool_)):
        return 0
    if isinstance(p, (list, np.ndarray)):
        arr = np.asarray(p)
        return arr.ndim if arr.dtype == bool else 1
    return 1


def _explicit(index, ndim: int) -> tuple:
    """``index`` as a tuple without Ellipsis, so it never reaches the batch axis."""
    parts = index if isinstance(index, tuple) else (index,)
    dots = [k for k, p in enumerate(parts) if p is Ellipsis]
    if len(dots) > 1:
        raise _Unsupported
    if dots:
        k = dots[0]
        used = sum(_consumes(p) for p in parts if p is not Ellipsis)
        parts = parts[:k] + (slice(None),) * (ndim - used) + parts[k + 1 :]
    return parts


def _getitem(g, out, inputs, node, want, guard):
    shape = node.shapes[0]
    idx = _explicit(node.params["index"], len(shape))
    B = g.shape[0]
    z = np.zeros((B,) + shape, dtype=g.dtype)
    try:
        if _is_basic(idx):
            z[(slice(None),) + idx] = g
        else:
            # Advanced indices: batch axis last, where indexing never moves it.
            np.add.at(np.moveaxis(z, 0, -1), idx, np.moveaxis(g, 0, -1))
    except (IndexError, ValueError) as exc:
        raise _Unsupported from exc
    return [z]


def _index_add(g, out, inputs, node, want, guard):
    idx = _explicit(node.params["index"], len(node.params["shape"]))
    try:
        if _is_basic(idx):
            gx = g[(slice(None),) + idx]
        else:
            gx = np.moveaxis(np.moveaxis(g, 0, -1)[idx], -1, 0)
    except (IndexError, ValueError) as exc:
        raise _Unsupported from exc
    if gx.shape != (g.shape[0],) + node.shapes[0]:
        raise _Unsupported
    return [gx]


RULES = {
    "sum": _sum,
    "mean": _mean,
    "prod": _by_params,
    "max": _by_params,
    "min": _by_params,
    "norm": _by_params,
    "logsumexp": _by_params,
    "var": _by_params,
    "std": _by_params,
    "det": _last_two,
    "trace": _last_two,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "dot": _dot,
    "matmul": _matmul,
    "outer": _outer,
    "solve": _solve,
    "transpose": _transpose,
    "reshape": _reshape,
    "concatenate": _concatenate,
    "stack": _stack,
    "getitem": _getitem,
    "index_add": _index_add,
}
