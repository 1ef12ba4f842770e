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
    """One recorded op application: the ``grad_fn`` of the tensor it produced.

    Per input: where its gradient goes (``parents``: the input's own ``grad_fn``,
    the leaf Tensor itself, or None when it needs none) and the value the rules
    read (``saved``: the array for ``Op.saves`` "inputs" or "both", a ``Meta``
    for "shape", else None). Ops of one or two inputs, nearly all, keep these
    in slots of the node (``p0 p1``, ``x0 x1``), others in ``more``: every object
    that outlives the forward pass adds to the cyclic garbage collector's work,
    and a node is made per op. Saved values are arrays, not Tensors, so the
    graph keeps no Tensor alive; ``create_graph`` rebuilds them (``inputs_as_tensors``).
    """

    __slots__ = ("op", "seq", "p0", "p1", "x0", "x1", "out", "shapes", "params", "freed",
                 "_pending", "__dict__")
    # Fields most nodes never set, read from the class until they are: a
    # store fewer each, per op.
    more = None  # (parents, saved) of an op with more than two inputs
    args = None  # every input, recorded under keep_args
    label = None  # e.g. the expression text, for `gradcli graph`

    def __init__(self, op, parents: tuple, saved: tuple, out, shapes: tuple,
                 params: dict) -> None:
        # Creation order is a topological order: inputs exist before outputs.
        self.seq = next(_SEQ)
        self.op = op
        if len(parents) <= 2:
            self.p0, self.p1 = (parents + (None, None))[:2]
            self.x0, self.x1 = (saved + (None, None))[:2]
        else:
            self.p0 = self.p1 = self.x0 = self.x1 = None
            self.more = (parents, saved)
        self.out = out  # the output, for Op.saves "out" and "both"
        self.shapes = shapes  # per input, interned (``interned``)
        self.params = params
        self.freed = False  # True once a backward pass dropped the saved values
        self._pending = None  # the gradient arriving during a backward walk

    @property
    def parents(self) -> tuple:
        """Per input: its ``grad_fn``, the leaf Tensor itself, or None (no gradient)."""
        n = len(self.shapes)
        if n == 1:
            return (self.p0,)
        return (self.p0, self.p1) if n == 2 else self.more[0]

    @property
    def saved(self) -> tuple | None:
        """Per input, what the rules read (None once freed)."""
        if self.freed:
            return None
        n = len(self.shapes)
        if n == 1:
            return (self.x0,)
        return (self.x0, self.x1) if n == 2 else self.more[1]

    def inputs_as_tensors(self, wrap) -> tuple:
        """The saved inputs as Tensors joined to the graph (for create_graph):
        a leaf is itself, another input requiring grad is rebuilt on its grad_fn."""
        out = []
        for p, x in zip(self.parents, self.saved):
            if p is None:
                out.append(x)
            elif type(p) is Node:
                out.append(wrap(x, p))
            else:
                out.append(p)
        return tuple(out)

    def name(self) -> str:
        return self.op.grad_fn

    def __repr__(self) -> str:
        return f"<{self.op.grad_fn} object at {hex(id(self))}>"

    @property
    def next_functions(self) -> tuple:
        return tuple((p, 0) for p in self.parents)


def edge(x):
    """Where the gradient of input ``x`` goes: its ``grad_fn``, the leaf itself, or None."""
    if getattr(x, "requires_grad", False):
        return x.grad_fn or x
    return None


def edges(inputs) -> tuple:
    return tuple([edge(x) for x in inputs])


_INTERNED: dict = {}


def interned(shapes: tuple) -> tuple:
    """One shared tuple per combination of input shapes: every node keeps one,
    and a shared tuple is one object fewer per node for the garbage collector."""
    got = _INTERNED.get(shapes)
    if got is None:
        if len(_INTERNED) > 4096:
            return shapes
        got = _INTERNED[shapes] = shapes
    return got


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


# How an elementwise op declares its local derivative (``Op.local``), per input:
CONST = 0  # a number: the cotangent times it (1: passed through as is)
INPUT = 1  # one of the op's inputs, by position (mul: the other factor)
OUT = 2  # the op's output (exp)
FRESH = 3  # f(out, *inputs), an array made on each call (sin: cos(x))

# Arrays from this many elements up are reused in place where the walk may
# (numpy's own cut-off for reusing temporaries is 256 KiB).
INPLACE_MIN = 1 << 15


def scaled(g, d, d_fresh: bool, g_free: bool):
    """``g * d`` for arrays, without a new allocation where one can be saved.

    ``d`` itself when ``g`` is the all-ones cotangent that ``sum`` sends down
    (one number broadcast, every stride 0); else written into ``d`` when the
    rule just made it (``d_fresh``), or into ``g`` when nothing else holds it
    (``g_free``); else a new array. The result has ``g * d``'s values and
    dtype in every case.
    """
    if type(g) is not np.ndarray or g.size < INPLACE_MIN:
        return g * d
    if type(d) is np.ndarray and d.shape == g.shape:
        if not any(g.strides) and d.dtype == g.dtype and g.flat[0] == 1:
            return d
        if d_fresh and d.flags.owndata and np.result_type(g, d) == d.dtype:
            return np.multiply(d, g, out=d)
    if g_free and np.result_type(g, d) == g.dtype and np.broadcast_shapes(
            g.shape, np.shape(d)) == g.shape:
        return np.multiply(g, d, out=g)
    return g * d


def _subtracted(acc, g) -> bool:
    """``acc -= g`` in place, if that gives ``acc + (-g)`` exactly (same shape
    and dtype): a pass and an array fewer than negating first. False if not done."""
    if acc.shape != g.shape or np.result_type(acc, g) != acc.dtype:
        return False
    np.subtract(acc, g, out=acc)
    return True


def _has_zero(seed) -> bool:
    data = getattr(seed, "_data", seed)
    return bool(np.any(data == 0))


def run_backward(root: Node, seed, *, retain_graph: bool, create_graph: bool, wrap,
                 hook=None, accumulate: bool = True, only=None, lead: int = 0,
                 guard: bool = True):
    """Propagate ``seed`` from ``root`` to every leaf that requires grad.

    ``seed`` has shape ``batch + out.shape`` with ``lead`` batch axes in front
    (a Jacobian's rows: ``lead=1``); every gradient of the walk keeps them, and
    rules count axes from the end. ``lead=0`` is the ordinary gradient.

    ``wrap(array, node)`` makes a Tensor: with ``create_graph`` the rules run on
    Tensors, so that the backward pass is itself recorded and differentiable.
    ``hook(node, g, gx)``, if given, sees every gradient a rule returns (for
    diagnostics); ``accumulate=False`` leaves the leaves' ``.grad`` alone.
    ``only`` (ids of leaves) walks just the edges that lead to those leaves.
    ``guard=False`` skips the masking of zero cotangents (below): exact whenever
    the results come out finite, since a nan or inf the guard would have zeroed
    either reaches a result or is dropped by a selection (where, indexing) that
    drops the guard's zero too; a caller that sees a non-finite result walks
    again with the guard (what a batch of unit seeds, full of zeros, saves).
    Returns each reached leaf's gradient, by ``id(leaf)``.
    """
    from .tensor import Tensor

    if lead and accumulate:
        raise ValueError("a batch of cotangents has no .grad to accumulate into")
    batch = np.shape(seed)[:lead]
    wants = None if only is None else edges_to(root, only)
    if wants is not None and id(root) not in wants:
        return {}
    # Newest node first: by then every consumer has sent its gradient in. A
    # heap keyed on creation order replaces a separate topological sort.
    heap = [(-root.seq, root)]
    heappush, heappop = heapq.heappush, heapq.heappop
    leaves: list[Tensor] = []
    # Gradients this walk made itself and stored in one place only: summing
    # into them in place saves an allocation per extra contribution.
    owned: set = set()
    # Nodes whose incoming gradient can hold structural zeros (below a where,
    # an index, a relu, ... or a seed with zeros): their rules are guarded.
    masked: set = {root} if guard and _has_zero(seed) else set()
    # Gradients wait in the ``_pending`` field of the node (or leaf) they are
    # for; one walk at a time per graph (a retained graph walked from two
    # threads at once would mix them).
    try:
        root._pending = seed
        while heap:
            node = heappop(heap)[1]
            g = node._pending
            node._pending = None
            if node.freed:
                raise RuntimeError(_SECOND_TIME)
            op = node.op
            local = op.local
            shapes = node.shapes
            # The common arities straight from the node's slots: this loop is the
            # per-op overhead.
            n = len(shapes)
            if n == 1:
                parents = (node.p0,)
                inputs = (node.x0,)
            elif n == 2:
                parents = (node.p0, node.p1)
                inputs = (node.x0, node.x1)
            else:
                parents, inputs = node.more
            if create_graph:
                out = wrap(node.out, node) if node.out is not None else None
                inputs = node.inputs_as_tensors(wrap)
                local = None  # the VJPs, on Tensors
            else:
                out = node.out
            # g_free: this walk made g and nothing else holds it, so a rule with a
            # single input may write its gradient into it.
            g_free = False
            if owned and node in owned:
                owned.discard(node)
                g_free = len(parents) == 1 and hook is None
            if local is None:
                params = node.params
                if op.takes_lead:
                    params = {**params, "lead": lead}
                vjps = op.vjps
                multi = op.multi
                if multi:
                    gxs = vjps[0](g, out, *inputs, **params)
            if masked and node in masked:  # g may hold structural zeros
                zeros_below = True
                # Elementwise rules too: an inf/nan *input* (the branch a where did
                # not take, e.g. sin(sqrt(-1))) makes any local derivative nan.
                guarded = op.guard or op.elementwise
                if guarded:
                    g_free = False  # the guard reads g after the rule
            else:
                zeros_below = op.masks and guard
                guarded = False
            want = None if wants is None else wants[id(node)]
            i = -1
            for p in parents:
                i += 1
                if p is None or (want is not None and not want[i]):
                    continue
                if local is not None:  # elementwise: g times the local derivative
                    kind, v = local[i]
                    if kind == CONST:
                        if v == 1:
                            gx = g
                        elif (v == -1 and p in owned and not guarded and hook is None
                              and type(g) is np.ndarray and g.size >= INPLACE_MIN
                              and _subtracted(p._pending, g)):
                            # (neg, sub: -g subtracted straight from the sum so far)
                            if zeros_below:
                                masked.add(p)
                            continue
                        else:
                            gx = scaled(g, v, False, g_free)
                    else:
                        d = inputs[v] if kind == INPUT else out if kind == OUT else v(out, *inputs)
                        if type(g) is np.ndarray or type(d) is np.ndarray:
                            gx = scaled(g, d, kind == FRESH, g_free)
                        else:
                            gx = g * d
                else:
                    if multi:
                        gx = gxs[i]
                    elif vjps[i] is None:  # not differentiable here (a condition)
                        continue
                    elif params:
                        gx = vjps[i](g, out, *inputs, **params)
                    else:
                        gx = vjps[i](g, out, *inputs)
                    if gx is None:
                        continue
                if guarded:
                    gx = _guarded(g, gx)
                if hook is not None:
                    hook(node, g, gx)
                if lead:
                    if gx.shape != batch + shapes[i]:
                        gx = unbroadcast(gx, shapes[i], lead)
                elif gx.shape != shapes[i]:
                    gx = unbroadcast(gx, shapes[i])
                if zeros_below:
                    masked.add(p)
                prev = p._pending
                if prev is None:
                    p._pending = gx
                    if type(p) is Node:
                        heappush(heap, (-p.seq, p))
                    else:
                        leaves.append(p)
                    if (type(gx) is np.ndarray and (gx is not g or g_free) and gx.flags.owndata
                            and gx.flags.writeable and gx is not out
                            and all(gx is not a for a in inputs)):
                        owned.add(p)  # (a rule may hand back an input or out itself)
                elif p in owned and np.result_type(prev, gx) == prev.dtype:
                    np.add(prev, gx, out=prev)
                else:
                    p._pending = prev = prev + gx
                    if type(prev) is np.ndarray:
                        owned.add(p)
            if not retain_graph:  # free the saved values
                node.x0 = node.x1 = node.out = None
                if n > 2:
                    node.more = (parents, None)
                node.freed = True
    except BaseException:
        # A rule raised (or the graph was freed): leave no gradient behind in
        # the fields, for the next walk of a retained graph.
        for _, waiting in heap:
            waiting._pending = None
        for leaf in leaves:
            leaf._pending = None
        raise
    got = {}
    for leaf in leaves:
        got[id(leaf)] = leaf._pending
        leaf._pending = None
    if accumulate:
        for leaf in leaves:
            leaf._accumulate(got[id(leaf)], create_graph, leaf in owned)
    return got
