"""THE backward walk: the chain rule over the recorded graph, newest node first.

``run_backward`` sends a cotangent (or a batch of them, ``lead`` axes in front)
from the root to the leaves: each node's rules (``Op.vjps``, or its declared
local derivative) turn the gradient arriving at its output into one per input,
``unbroadcast`` sums broadcast axes back, and gradients meeting at a node add.
A plain gradient, a vector-Jacobian product, a Jacobian's rows, a Hessian's and a
chunk of ``--points`` rows are all this one walk over the same rules. It is
iterative (no recursion limit on long chains) and releases each node's saved
values as it passes, unless ``retain_graph``. The buffer reuse it does is in
``fastpath`` (``scaled``, ``subtracted``) and in the ``owned`` set below.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from .broadcast import unbroadcast
from . import fastpath
from .fastpath import scaled, subtracted
from .graph import CONST, FRESH, INPUT, OUT, Node, topological_order
from .op import MOVES

_SECOND_TIME = (
    "Trying to backward through the graph a second time: its saved values were "
    "freed by the first backward(). Specify retain_graph=True on the first call "
    "to backward through the graph again."
)


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


def _finite(x) -> bool:
    data = getattr(x, "_data", x)
    with np.errstate(all="ignore"):
        return bool(np.isfinite(np.sum(data)))


def _any_to(mask, shape) -> np.ndarray:
    """``mask`` (batch axes in front, broadcast axes) reduced to ``shape`` by any."""
    mask = np.asarray(mask)
    extra = mask.ndim - len(shape)
    if extra > 0:
        mask = np.any(mask, axis=tuple(range(extra)))
    elif extra < 0:
        mask = np.reshape(mask, (1,) * -extra + mask.shape)
    axes = tuple(k for k, n in enumerate(shape) if n == 1 and mask.shape[k] != 1)
    if axes:
        mask = np.any(mask, axis=axes, keepdims=True)
    return np.broadcast_to(mask, shape)


def _cleaned(x, keep_mask):
    """``x`` with its non-finite entries outside ``keep_mask`` set to 0."""
    data = getattr(x, "_data", x)
    if type(data) is not np.ndarray or data.dtype.kind not in "fc" or _finite(data):
        return x
    keep = _any_to(keep_mask, data.shape) | np.isfinite(data)
    return np.where(keep, x, 0.0)


class _Reach:
    """Where a nonzero cotangent reaches the inputs of a node whose op mixes
    entries, and its saved values with the non-finite numbers it never reaches
    set to 0 (their only products are with zero cotangents)."""

    __slots__ = ("masks", "inputs", "out", "none")

    def __init__(self, op, g, out, inputs, params, lead: int):
        nz = np.asarray(getattr(g, "_data", g)) != 0
        self.none = not nz.any()
        raw = [getattr(x, "_data", x) for x in inputs]
        plain = {k: v for k, v in params.items() if k != "lead"}
        self.masks = op.support(nz, getattr(out, "_data", out), *raw, **plain)
        self.inputs = [_cleaned(x, m) for x, m in zip(inputs, self.masks)]
        self.out = out
        if out is not None:  # an output entry: reached if any row of the batch is
            self.out = _cleaned(out, np.any(nz, axis=tuple(range(lead))))


def _mixed_guard(op, i: int, g, gx, out, inputs, params, reach: _Reach):
    """Input ``i``'s gradient with no inf or nan from entries whose cotangent is 0:
    the rule rerun on the cleaned saved values, then zero where nothing reaches."""
    if reach.none:
        return np.where(False, gx, 0.0)
    try:
        if op.multi:
            gx = op.vjps[0](g, reach.out, *reach.inputs, **params)[i]
        else:
            gx = op.vjps[i](g, reach.out, *reach.inputs, **params)
    except (ValueError, ArithmeticError):  # (LinAlgError is a ValueError)
        pass  # the mask alone, then
    return np.where(reach.masks[i], gx, 0.0)


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
            reach = None
            if masked and node in masked:  # g may hold structural zeros
                zeros_below = True
                # Every op whose rules read values: an inf/nan *input* (the branch
                # a where did not take, e.g. sin(sqrt(-1))) makes any local
                # derivative nan. Elementwise ones meet one cotangent per entry;
                # the others declare where their cotangent reaches (``support``).
                guarded = op.elementwise or op.support is not MOVES
                if guarded:
                    g_free = False  # the guard reads g after the rule
            else:
                zeros_below = op.zero_regions and guard
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
                              and type(g) is np.ndarray and g.size >= fastpath.INPLACE_MIN
                              and subtracted(p._pending, g)):
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
                    if op.elementwise or op.support is None:
                        gx = _guarded(g, gx)
                    elif not _finite(gx):
                        if reach is None:
                            reach = _Reach(op, g, out, inputs, params, lead)
                        gx = _mixed_guard(op, i, g, gx, out, inputs, params, reach)
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
