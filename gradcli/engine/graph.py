"""The recorded graph and the one backward loop.

A ``Node`` is a tensor's ``grad_fn``: the op that made it, an edge per input
(the input's own ``Node``, the leaf ``Tensor`` itself, or ``None`` when that input
needs no gradient), and only the values the op's VJPs need (``Op.saves``), so
intermediate arrays that no rule reads are freed as soon as the forward pass
drops them. The backward walk is iterative (no recursion limit on long chains)
and releases each node's saved values as it passes, unless ``retain_graph``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from contextlib import ContextDecorator

import numpy as np

from .broadcast import unbroadcast


class _Mode:
    __slots__ = ("enabled", "keep_args")

    def __init__(self) -> None:
        self.enabled = True
        # Keep every input of every node (constants too), for tools that replay
        # or show the graph (symbolic check, `gradcli graph`); off: less memory.
        self.keep_args = False


MODE = _Mode()  # gradient recording on/off; not thread-local, like a CLI needs


class _GradMode(ContextDecorator):
    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._prev: list[bool] = []

    def __enter__(self):
        self._prev.append(MODE.enabled)
        MODE.enabled = self._enabled
        return self

    def __exit__(self, *exc) -> bool:
        MODE.enabled = self._prev.pop()
        return False


class no_grad(_GradMode):
    """Context manager and decorator: ops inside record no graph.

    >>> import gradcli as gc
    >>> x = gc.ones(2, requires_grad=True)
    >>> with gc.no_grad():
    ...     (x * 2).requires_grad
    False
    """

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_GradMode):
    """Context manager and decorator: record a graph again inside ``no_grad``."""

    def __init__(self) -> None:
        super().__init__(True)


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` as a context manager, decorator or call."""

    def __init__(self, mode: bool) -> None:
        super().__init__(bool(mode))
        self._prev.append(MODE.enabled)
        MODE.enabled = bool(mode)

    def __enter__(self):
        return self


class keep_args(ContextDecorator):
    """Inside: every Node records all its inputs in ``node.args``."""

    def __enter__(self):
        self._prev = MODE.keep_args
        MODE.keep_args = True
        return self

    def __exit__(self, *exc) -> bool:
        MODE.keep_args = self._prev
        return False


def is_grad_enabled() -> bool:
    return MODE.enabled


class Meta:
    """Shape and dtype of an input whose values no rule needs."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


_SEQ = itertools.count()


class Node:
    """One recorded op application: the ``grad_fn`` of the tensor it produced."""

    __slots__ = ("op", "parents", "saved", "out", "shapes", "params", "seq", "args",
                 "label")

    def __init__(self, op, parents, saved, out, shapes, params) -> None:
        # Creation order is a topological order: inputs exist before outputs.
        self.seq = next(_SEQ)
        self.op = op
        self.parents = parents
        self.saved = saved  # None once a backward pass has freed it
        self.out = out
        self.shapes = shapes
        self.params = params

    def __getattr__(self, name: str):
        # args (every input, under keep_args) and label (e.g. the expression
        # text) are set only when wanted: a node is made per op, so every store
        # counts.
        if name in ("args", "label"):
            return None
        raise AttributeError(name)

    @property
    def freed(self) -> bool:
        return self.saved is None

    def name(self) -> str:
        return self.op.grad_fn

    def __repr__(self) -> str:
        return f"<{self.op.grad_fn} object at {hex(id(self))}>"

    @property
    def next_functions(self) -> tuple:
        return tuple((p, 0) for p in self.parents)


_SECOND_TIME = (
    "Trying to backward through the graph a second time: its saved values were "
    "freed by the first backward(). Specify retain_graph=True on the first call "
    "to backward through the graph again."
)


def topological_order(root: Node) -> list[Node]:
    """Nodes reachable from ``root``, each before every node it consumes."""
    seen = {id(root): root}
    stack = [root]
    while stack:
        for p in stack.pop().parents:
            if type(p) is Node and id(p) not in seen:
                seen[id(p)] = p
                stack.append(p)
    return sorted(seen.values(), key=lambda n: -n.seq)


def recorded_values(root: Node, value) -> dict[int, object]:
    """Each node's output, by ``id(node)``, for a graph recorded under ``keep_args``:
    found among its consumers' inputs (``value`` is the root's own)."""
    values = {id(root): value}
    for node in topological_order(root):
        for a in node.args or ():
            fn = getattr(a, "grad_fn", None)
            if fn is not None:
                values[id(fn)] = a._data
    return values


def edges_to(root: Node, leaf_ids) -> dict[int, list[bool]]:
    """For each node from which a leaf in ``leaf_ids`` is reached: which parents lead there.

    ``{id(node): want}``, where ``want[i]`` says parent i leads to such a leaf.
    """
    wants: dict[int, list[bool]] = {}
    for node in reversed(topological_order(root)):  # inputs before consumers
        want = [
            p is not None and ((id(p) in wants) if type(p) is Node else (id(p) in leaf_ids))
            for p in node.parents
        ]
        if True in want:
            wants[id(node)] = want
    return wants


def _guarded(g, gx):
    """Zero where the cotangent is zero, if the product went non-finite.

    A zero cotangent contributes zero even where the local derivative is inf or
    nan: ``where(c, f(x), y)`` must not leak a nan from the branch it did not take.
    """
    data = getattr(gx, "_data", gx)
    if type(data) is np.float64 or type(data) is np.float32:
        if math.isfinite(data):
            return gx
    else:
        with np.errstate(all="ignore"):
            if np.isfinite(np.sum(data)):
                return gx
    return np.where(g == 0, 0.0, gx)


def _has_zero(seed) -> bool:
    data = getattr(seed, "_data", seed)
    return bool(np.any(data == 0))


def run_backward(root: Node, seed, *, retain_graph: bool, create_graph: bool, wrap,
                 hook=None, accumulate: bool = True, only=None):
    """Propagate ``seed`` from ``root`` to every leaf that requires grad.

    ``wrap(array, node)`` makes a Tensor: with ``create_graph`` the rules run on
    Tensors, so that the backward pass is itself recorded and differentiable.
    ``hook(node, g, gx)``, if given, sees every gradient a rule returns (for
    diagnostics); ``accumulate=False`` leaves the leaves' ``.grad`` alone.
    ``only`` (ids of leaves) walks just the edges that lead to those leaves.
    Returns each reached leaf's gradient, by ``id(leaf)``.
    """
    from .tensor import Tensor

    wants = None if only is None else edges_to(root, only)
    if wants is not None and id(root) not in wants:
        return {}
    # Newest node first: by then every consumer has sent its gradient in. A
    # heap keyed on creation order replaces a separate topological sort.
    grads = {id(root): seed}
    heap = [(-root.seq, root)]
    heappush, heappop = heapq.heappush, heapq.heappop
    leaves: dict[int, Tensor] = {}
    # Gradients this walk made itself and stored in one place only: summing
    # into them in place saves an allocation per extra contribution.
    owned: set[int] = set()
    # Nodes whose incoming gradient can hold structural zeros (below a where,
    # an index, a relu, ... or a seed with zeros): their rules are guarded.
    masked: set[int] = {id(root)} if _has_zero(seed) else set()
    while heap:
        node = heappop(heap)[1]
        key = id(node)
        g = grads.pop(key)
        owned.discard(key)
        if node.saved is None:
            raise RuntimeError(_SECOND_TIME)
        op = node.op
        params = node.params
        saved = node.saved
        if create_graph:
            out = wrap(node.out, node) if node.out is not None else None
            inputs = saved
        else:
            out = node.out
            # Unrolled for the common arities: this loop is the per-op overhead.
            if len(saved) == 2:
                a, b = saved
                inputs = (a._data if type(a) is Tensor else a,
                          b._data if type(b) is Tensor else b)
            elif len(saved) == 1:
                a = saved[0]
                inputs = (a._data if type(a) is Tensor else a,)
            else:
                inputs = [x._data if type(x) is Tensor else x for x in saved]
        shapes = node.shapes
        multi = op.multi
        if multi:
            gxs = op.vjps[0](g, out, *inputs, **params)
        vjps = op.vjps
        below = key in masked
        zeros_below = below or op.masks
        # Elementwise rules too: an inf/nan *input* (the branch a where did
        # not take, e.g. sin(sqrt(-1))) makes any local derivative nan.
        guard = below and (op.guard or op.elementwise)
        want = None if wants is None else wants[key]
        i = -1
        for p in node.parents:
            i += 1
            if p is None or (want is not None and not want[i]):
                continue
            if multi:
                gx = gxs[i]
            elif vjps[i] is None:  # not differentiable in this input (a condition)
                continue
            elif params:
                gx = vjps[i](g, out, *inputs, **params)
            else:
                gx = vjps[i](g, out, *inputs)
            if gx is None:
                continue
            if guard:
                gx = _guarded(g, gx)
            if hook is not None:
                hook(node, g, gx)
            if gx.shape != shapes[i]:
                gx = unbroadcast(gx, shapes[i])
            pk = id(p)
            if zeros_below:
                masked.add(pk)
            prev = grads.get(pk)
            if prev is None:
                grads[pk] = gx
                if type(p) is Node:
                    heappush(heap, (-p.seq, p))
                else:
                    leaves[pk] = p
                if (gx is not g and type(gx) is np.ndarray and gx.flags.owndata
                        and gx.flags.writeable and gx is not out
                        and all(gx is not a for a in inputs)):
                    owned.add(pk)  # (a rule may hand back an input or out itself)
            elif pk in owned and np.result_type(prev, gx) == prev.dtype:
                np.add(prev, gx, out=prev)
            else:
                grads[pk] = prev + gx
                if type(grads[pk]) is np.ndarray:
                    owned.add(pk)
        if not retain_graph:
            node.saved = node.out = None
    if accumulate:
        for pk, leaf in leaves.items():
            leaf._accumulate(grads[pk], create_graph, pk in owned)
    return {pk: grads[pk] for pk in leaves}
