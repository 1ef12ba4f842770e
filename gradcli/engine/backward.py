"""THE backward walk: the chain rule over the recorded graph, newest node first.

``run_backward`` sends a cotangent (or a batch of them, ``lead`` axes in front)
from the root to the leaves: each node's rules (``Op.vjps``, or its declared
local derivative) turn the gradient arriving at its output into one per input,
``unbroadcast`` sums broadcast axes back, and gradients meeting at a node add.
A plain gradient, a vector-Jacobian product, a Jacobian's rows, a Hessian's and a
chunk of ``--points`` rows are all this one walk over the same rules. It is
iterative (no recursion limit on long chains) and releases each node's saved
values as it passes, unless ``retain_graph``. The buffer reuse it does is in
``fastpath`` (``scaled``, ``subtracted``, ``reusable``) and in the ``owned`` set
below; so is the diagonal form a Jacobian's identity seed may take (``Diag``,
``diag_vjp``: one branch of the loop below, which makes it dense where a rule
needs the batch).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from . import fastpath
from .broadcast import unbroadcast
from .fastpath import Diag, diag_vjp, reusable, scaled, subtracted
from .graph import (CONST, FRESH, INPUT, MODE, MODIFIED, MOVES, OUT, STALE, Node,
                    check_stale_root, check_versions, topological_order)
from .tensor import Tensor


class GraphFreedError(RuntimeError):
    """A walk reached values an earlier backward() freed (PyTorch's message)."""


_SECOND_TIME = (
    "Trying to backward through the graph a second time: its saved values were "
    "freed by the first backward(). Specify retain_graph=True on the first call "
    "to backward through the graph again."
)


def edges_to(root: Node, leaf_ids, *more: Node) -> dict[int, list[bool]]:
    """For each node from which a target in ``leaf_ids`` is reached: which parents
    lead there. A target is a leaf or a Node (a non-leaf tensor's ``grad_fn``).

    ``{id(node): want}``, where ``want[i]`` says parent i leads to a target.
    """
    wants: dict[int, list[bool]] = {}
    for node in reversed(topological_order(root, *more)):  # inputs before consumers
        want = [
            p is not None and (id(p) in leaf_ids or (type(p) is not Tensor and id(p) in wants))
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
        plain = {k: v for k, v in params.items() if k != "lead" and k != "need"}
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
    zero = data == 0
    # (the array's own method: np.any's Python wrapper costs more than the test
    # itself for the one-element seed of every gradient and Hessian)
    return bool(zero.any()) if type(zero) is np.ndarray else bool(zero)


def run_backward(root: Node, seed, *, retain_graph: bool, create_graph: bool, wrap,
                 hook=None, accumulate: bool = True, only=None, lead: int = 0,
                 guard: bool = True):
    """``_walk`` (below) with numpy's floating-point warnings off: an inf or
    nan the rules compute (sqrt's derivative at 0) is a result, which the
    caller inspects; PyTorch's backward does not warn either."""
    with np.errstate(all="ignore"):
        return _walk(root, seed, retain_graph=retain_graph, create_graph=create_graph,
                     wrap=wrap, hook=hook, accumulate=accumulate, only=only, lead=lead,
                     guard=guard)


def _walk(root: Node, seed, *, retain_graph: bool, create_graph: bool, wrap,
          hook=None, accumulate: bool = True, only=None, lead: int = 0,
          guard: bool = True):
    """Propagate ``seed`` from ``root`` to every leaf that requires grad.

    ``root`` and ``seed`` may be lists (several outputs, one walk: gradients
    meeting at a node add before it is walked). ``seed`` has shape
    ``batch + out.shape`` with ``lead`` batch axes in front (a Jacobian's rows:
    ``lead=1``); every gradient of the walk keeps them, and rules count axes
    from the end. ``lead=0`` is the ordinary gradient.

    ``wrap(array, node)`` makes a Tensor: with ``create_graph`` the rules run on
    Tensors, so that the backward pass is itself recorded and differentiable.
    ``hook(node, g, gx)``, if given, sees every gradient a rule returns (for
    diagnostics); ``accumulate=False`` leaves the leaves' ``.grad`` alone.
    ``only`` (ids of leaves, or of Nodes) walks just the edges that lead to those
    targets; a target Node's gradient (what arrives at its output: the gradient
    with respect to a non-leaf tensor) is returned too, by ``id(node)``.
    ``guard=False`` skips the masking of zero cotangents (below): exact whenever
    the results come out finite, since a nan or inf the guard would have zeroed
    either reaches a result or is dropped by a selection (where, indexing) that
    drops the guard's zero too; a caller that sees a non-finite result walks
    again with the guard (what a batch of unit seeds, full of zeros, saves).
    Returns each reached leaf's gradient, by ``id(leaf)``.
    """
    if lead and accumulate:
        raise ValueError("a batch of cotangents has no .grad to accumulate into")
    if isinstance(root, Node):
        roots, seeds = (root,), (seed,)
    else:
        roots, seeds = tuple(root), tuple(seed)
        seed = seeds[0]
    batch = np.shape(seed)[:lead] if lead else ()
    wants = None if only is None else edges_to(roots[0], only, *roots[1:])
    captured: dict = {}
    if wants is not None:
        keep = [id(r) in wants or id(r) in only for r in roots]
        roots = tuple(r for r, k in zip(roots, keep) if k)
        seeds = tuple(s for s, k in zip(seeds, keep) if k)
        if not roots:
            return {}
    # Newest node first: by then every consumer has sent its gradient in. A
    # heap keyed on creation order replaces a separate topological sort.
    heap = []
    heappush, heappop = heapq.heappush, heapq.heappop
    if STALE:
        for r in roots:
            check_stale_root(r)
    # Some array was changed in place while recording (no code of the user's
    # runs during a walk to change more): a bool, read per node.
    versions = bool(MODIFIED) or bool(STALE)
    leaves: list[Tensor] = []
    # Gradients this walk made itself and stored in one place only: summing
    # into them in place saves an allocation per extra contribution.
    owned: set = set()
    # Nodes whose incoming gradient can hold structural zeros (below a where,
    # an index, a relu, ... or a seed with zeros): their rules are guarded.
    masked: set = {r for r, s in zip(roots, seeds) if guard and _has_zero(s)}
    # A diagonal seed (fastpath.Diag): unguarded batched walks of retained graphs
    # only, without hooks; the gradients it leaves are made dense at the end.
    diags = type(seed) is Diag
    if diags and (guard or create_graph or hook is not None or not retain_graph
                  or lead != 1 or len(seeds) != 1):
        raise ValueError("a diagonal seed is for an unguarded batched walk")
    # Gradients wait in the ``_pending`` field of the node (or leaf) they are
    # for; one walk at a time per graph (a retained graph walked from two
    # threads at once would mix them).
    try:
        for r, s in zip(roots, seeds):
            if r._pending is None:
                r._pending = s
                heappush(heap, (-r.seq, r))
            else:  # two outputs of one node
                r._pending = r._pending + s
        # (what the rare cases set per node, tested once per node as ``rare``)
        rare = only is not None or versions
        nd = np.ndarray
        g_shared = False  # g is also a captured answer: no rule may write into it
        want = None  # which parents lead to a target (``only``)
        while heap:
            node = heappop(heap)[1]
            g = node._pending
            node._pending = None
            if rare:
                if only is not None:
                    g_shared = id(node) in only
                    if g_shared:  # a non-leaf target: an answer
                        captured[id(node)] = g
                        if id(node) not in wants:
                            continue
                    want = wants[id(node)]
                if versions and not node.freed:  # some array was changed in place:
                    check_versions(node)  # not one this node saved or viewed?
            if node.freed:
                raise GraphFreedError(_SECOND_TIME)
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
                if n == 1:  # inputs_as_tensors, unrolled for the common arities
                    p0 = node.p0
                    inputs = (node.x0 if p0 is None else
                              wrap(node.x0, p0) if type(p0) is Node else p0,)
                elif n == 2:
                    p0, p1 = node.p0, node.p1
                    inputs = (node.x0 if p0 is None else
                              wrap(node.x0, p0) if type(p0) is Node else p0,
                              node.x1 if p1 is None else
                              wrap(node.x1, p1) if type(p1) is Node else p1)
                else:
                    inputs = node.inputs_as_tensors(wrap)
                local = None  # the VJPs, on Tensors
            else:
                out = node.out
            if diags and type(g) is Diag:  # (fastpath: the identity seed, diagonal)
                gxs = []
                for i, p in enumerate(parents):
                    if p is None or (want is not None and not want[i]):
                        continue
                    gx = diag_vjp(op, i, g, out, inputs, shapes, node.params)
                    if gx is None:
                        break
                    gxs.append((p, gx))
                else:
                    for p, gx in gxs:
                        prev = p._pending
                        if prev is None:
                            p._pending = gx
                            if type(p) is not Tensor:
                                heappush(heap, (-p.seq, p))
                            else:
                                leaves.append(p)
                        else:
                            p._pending = prev = prev + gx
                            if type(prev) is nd:
                                owned.add(p)
                    continue
                g = g.dense()  # a rule needs the dense batch: the whole node densely
            # g_free: this walk made g and nothing else holds it, so a rule with a
            # single input may write its gradient into it.
            g_free = False
            if owned and node in owned:
                owned.discard(node)
                g_free = len(parents) == 1 and hook is None and not g_shared
            if local is None:
                params = node.params
                if op.takes_lead:
                    params = {**params, "lead": lead}
                vjps = op.vjps
                multi = op.multi
                if multi:
                    if op.takes_need:  # the inputs to compute a gradient for
                        params = {**params, "need": tuple(
                            p is not None and (want is None or want[k])
                            for k, p in enumerate(parents))}
                    gxs = vjps[0](g, out, *inputs, **params)
            if masked and node in masked:  # g may hold structural zeros
                zeros_below = True
                reach = None
                # Every op whose rules read values: an inf/nan *input* (the branch
                # a where did not take, e.g. sin(sqrt(-1))) makes any local
                # derivative nan. Elementwise ones meet one cotangent per entry;
                # the others declare where their cotangent reaches (``support``).
                guarded = op.elementwise or op.support is not MOVES
                if guarded:
                    g_free = False  # the guard reads g after the rule
            else:
                zeros_below = guard and op.zero_regions
                guarded = False
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
                              and type(g) is nd and g.size >= fastpath.INPLACE_MIN
                              and subtracted(p._pending, g)):
                            # (neg, sub: -g subtracted straight from the sum so far)
                            if zeros_below:
                                masked.add(p)
                            continue
                        else:
                            if i == n - 1 and not g_free:  # the last rule to read g
                                g_free = reusable(g, guarded, hook, g_shared)
                            gx = scaled(g, v, False, g_free)
                    else:
                        d = inputs[v] if kind == INPUT else out if kind == OUT else v(out, *inputs)
                        if type(g) is nd or type(d) is nd:
                            if i == n - 1 and not g_free:  # the last rule to read g
                                g_free = reusable(g, guarded, hook, g_shared)
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
                    if type(p) is not Tensor:
                        heappush(heap, (-p.seq, p))
                    else:
                        leaves.append(p)
                    if (type(gx) is nd and (gx is not g or g_free) and gx.flags.owndata
                            and gx.flags.writeable and gx is not out
                            and gx is not inputs[0]
                            and (n == 1 or (gx is not inputs[1] if n == 2
                                            else all(gx is not a for a in inputs)))):
                        owned.add(p)  # (a rule may hand back an input or out itself)
                elif p in owned and np.result_type(prev, gx) == prev.dtype:
                    np.add(prev, gx, out=prev)
                else:
                    p._pending = prev = prev + gx
                    if type(prev) is nd:
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
    got = captured
    for leaf in leaves:
        got[id(leaf)] = leaf._pending
        leaf._pending = None
    if diags:
        for k, g in got.items():
            if type(g) is Diag:
                got[k] = g.dense()
    if accumulate:
        for leaf in leaves:  # an assigned .grad that is refused: none changed
            if leaf.grad is not None:
                leaf._check_grad()
        for leaf in leaves:
            leaf._accumulate(got[id(leaf)], create_graph, leaf in owned)
    return got


def gradients(outputs, seeds, inputs, *, retain_graph: bool, create_graph: bool,
              prune: bool = True, lead: int = 0, guard: bool = True) -> list:
    """The sum over ``outputs`` of ``<seed, d output / d input>``, for each input.

    What ``gc.autograd.grad``, the transforms and ``backward(inputs=...)`` share:
    one walk from every output at once, writing no ``.grad``. An input is a leaf
    or any tensor of the graph (then its gradient is what arrives at its
    ``grad_fn``, and the walk goes below it only for another input). None where
    an input is not reached. With ``create_graph`` the seeds should be Tensors
    and the gradients come back as Tensors with a graph of their own (recorded
    while the walk runs). ``prune=False`` skips the search for the edges that
    lead to the inputs, for a caller that knows every leaf requiring grad below
    the outputs is an input (the walk then covers them all).
    """
    targets = [x if x._grad_fn is None else x._grad_fn for x in inputs]
    ids = {id(t) for t in targets}
    roots, root_seeds, direct = [], [], {}
    for out, seed in zip(outputs, seeds):
        if out._grad_fn is not None:
            roots.append(out._grad_fn)
            root_seeds.append(seed)
        elif id(out) in ids:  # an input differentiated by itself
            k = id(out)
            direct[k] = seed if k not in direct else direct[k] + seed
    got: dict = {}
    if roots:
        if not prune and any(isinstance(t, Node) for t in targets):
            prune = True  # a non-leaf input is found by the search only
        # set_grad_enabled(create_graph), without a context manager's objects
        # and frames (a Jacobian's and a Hessian's per-call overhead)
        prev = MODE.enabled
        MODE.enabled = bool(create_graph)
        try:
            got = run_backward(roots[0] if len(roots) == 1 else roots,
                               root_seeds[0] if len(roots) == 1 else root_seeds,
                               retain_graph=retain_graph, create_graph=create_graph,
                               wrap=Tensor._make, accumulate=False,
                               only=ids if prune else None, lead=lead, guard=guard)
        finally:
            MODE.enabled = prev
    for k, seed in direct.items():
        got[k] = seed if got.get(k) is None else got[k] + seed
    return [got.get(id(t)) for t in targets]


def accumulate_into(output, seed, inputs, *, retain_graph: bool,
                    create_graph: bool) -> None:
    """``output.backward(seed, inputs=inputs)``: accumulate into ``inputs`` only."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not inputs:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    for x in inputs:
        if not isinstance(x, Tensor):
            raise TypeError(f"backward: inputs must be Tensors, not {type(x).__name__}")
        if not x.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    distinct = list({id(x): x for x in inputs}.values())
    if create_graph and not isinstance(seed, Tensor):
        seed = Tensor._make(seed)
    got = gradients([output], [seed], distinct, retain_graph=retain_graph,
                    create_graph=create_graph)
    for x, g in zip(distinct, got):  # an assigned .grad that is refused: none changed
        if g is not None and x.grad is not None:
            x._check_grad()
    for x, g in zip(distinct, got):
        if g is not None:
            x._accumulate(g, create_graph)
