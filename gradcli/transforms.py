"""Function transforms, like JAX's, on gradcli's engine: grad, jacobian, hessian, ...

Each transform takes a function ``f`` of Tensors (Python control flow, ``gc.*``
ops, numpy functions and Tensor methods all work) and returns a function of the
same arguments. The arguments named by ``argnums`` become fresh leaf Tensors
(float64, or float32 when given as a float32 tensor or array) that require
grad; ``f`` runs on them with gradient recording on (also under ``gc.no_grad``),
and the results come back as detached Tensors. Gradients are returned, never
accumulated: no caller's ``.grad`` changes.

Transforms nest, to any depth, closures included (``grad(grad(f))``, the
Hessian of a function that calls ``grad``). When a transform's result depends on
a tensor that requires grad in the caller's recording (an argument, or a tensor
``f`` closes over, e.g. the variable of an enclosing transform) its derivatives
are built with ``create_graph`` and come back still attached to that graph, so
the enclosing differentiation sees them. Each call differentiates with respect
to its own variables only: an argument that requires grad enters ``f`` as a new
tensor of the graph (``x + 0``), and the walk stops there, so the outer
variable it came from (or any other path to it) is never confused with it.

Whole Jacobians and Hessians push every row's cotangent through the graph at
once: a batch of seeds with a leading axis, through the engine's one backward
walk and its one set of rules (``lead=1``), instead of one backward pass per
row; ``method="loop"`` does the latter, as a reference. Nested (attached), the
batch goes through the same walk with ``create_graph``: the rules run on
Tensors; ``jacobian(method="columns")`` then answers with the rows. Where the
graph indexes (``getitem``, ``index_add``: ops whose forward takes ``lead``,
whose rules assume an unbatched recording) an attached Jacobian takes one
recorded walk per row instead.

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

import contextlib
import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from .engine import backward, fastpath, graph
from .engine.graph import Node, enable_grad
from .engine.tensor import Tensor
from .errors import EvaluationError

# Cap on the elements of one batched gradient: bigger batches go in chunks.
MAX_ELEMENTS = 1 << 22
# Cap on the elements the rows a jvp takes from reverse mode may touch in all.
ROWS_BUDGET = 1 << 26
# The identity seed of the rows kept diagonal (fastpath.Diag); False: the
# dense identity (the reference the tests compare it with).
USE_DIAG = True

__all__ = ["grad", "hessian", "hvp", "jacfwd", "jacobian", "jvp", "linearize", "value_and_grad",
           "vjp"]


# -- shared plumbing --------------------------------------------------------------
def _no_tensor_sequence(value, what: str, name: str,
                        several: str = "several arguments of f (with argnums)") -> None:
    """Refuse a tuple or list of Tensors where one array is meant: numpy would
    stack it (``(x,)`` into shape ``(1, n)``), silently, where the caller meant
    torch.autograd.functional's tuple of several inputs."""
    if isinstance(value, (tuple, list)) and any(isinstance(v, Tensor) for v in value):
        raise TypeError(
            f"{name}: {what} is a {type(value).__name__} of Tensors; pass one Tensor "
            f"(or array), not a tuple of inputs as torch.autograd.functional takes; "
            f"for several inputs: {several}"
        )


def _leaf(value, position: int, name: str) -> Tensor:
    _no_tensor_sequence(value, f"argument {position}", name)
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


def _call(f: Callable, args: tuple, kwargs: dict, nums: tuple[int, ...], name: str):
    """Run ``f`` with its own variables at ``nums``: its output, the variables, and
    whether the caller records (an enclosing transform, or gradient mode on).

    A variable is a fresh leaf; an argument that requires grad in the caller's
    recording becomes ``arg + 0`` instead: a tensor of its own (the walk stops
    there) whose graph still leads to the argument.
    """
    outer = graph.is_grad_enabled()
    args = list(args)
    leaves = []
    for n in nums:
        a = args[n]
        if outer and isinstance(a, Tensor) and a.requires_grad:
            args[n] = _alias(a)
        else:
            args[n] = _leaf(a, n, name)
        leaves.append(args[n])
    mode = graph.MODE  # enable_grad(), without a context manager's objects
    prev = mode.enabled
    mode.enabled = True
    try:
        out = f(*args, **kwargs)
    finally:
        mode.enabled = prev
    if not isinstance(out, Tensor):
        numeric = isinstance(out, (int, float, np.ndarray, np.generic))
        data = np.asarray(out) if numeric else None
        if data is None or data.dtype.kind not in "fiub":
            raise TypeError(
                f"{name}: the function must return a Tensor (or a number or array), "
                f"not {type(out).__name__}"
            )
        out = Tensor._make(data)
    return out, leaves, outer


def _alias(a: Tensor) -> Tensor:
    """A new tensor of the graph equal to ``a`` (a copy: ``f`` cannot alias it)."""
    from .engine.ops import OPS

    if a.dtype != np.float32 and a.dtype != np.float64:
        a = OPS["mul"](a, np.ones((), dtype=np.float64))
    return OPS["add"](a, np.zeros((), dtype=a.dtype))


def _outside(out: Tensor, leaves) -> bool:
    """Whether ``out`` depends on a tensor requiring grad other than ``leaves``."""
    if out._grad_fn is None:
        return out.requires_grad and all(out is not x for x in leaves)
    ours = {id(x) for x in leaves if x._grad_fn is None}
    seen = {id(out._grad_fn)}
    stack = [out._grad_fn]
    while stack:
        for p in stack.pop().parents:
            if p is None:
                continue
            if isinstance(p, Node):
                if id(p) not in seen:
                    seen.add(id(p))
                    stack.append(p)
            elif p.requires_grad and id(p) not in ours:
                return True
    return False


def _retire(leaves) -> None:
    """Done: the leaves, still in the graph of an attached result, are constants
    to every enclosing transform (no perturbation confusion, no false nesting)."""
    for x in leaves:
        if x._grad_fn is None:
            x.requires_grad = False


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


def _result(g, leaf: Tensor, attached: bool = False) -> Tensor:
    """The gradient for ``leaf``, detached (or, ``attached``, with its graph)."""
    if g is None:
        return Tensor._make(np.zeros(leaf.shape, dtype=leaf.dtype))
    if attached and isinstance(g, Tensor) and g._grad_fn is not None:
        return g if g.shape == leaf.shape else np.broadcast_to(g, leaf.shape)
    data = g._data if isinstance(g, Tensor) else g
    return Tensor._make(np.array(np.broadcast_to(data, leaf.shape), dtype=leaf.dtype))


def _block(data, shape: tuple[int, ...], dtype, attached: bool = False) -> Tensor:
    if attached and isinstance(data, Tensor) and data._grad_fn is not None:
        return np.reshape(data, shape)
    data = data._data if isinstance(data, Tensor) else data
    return Tensor._make(np.array(np.reshape(data, shape), dtype=dtype))


def _pack(items: list, single: bool):
    return items[0] if single else tuple(items)


def _finite(g) -> bool:
    return g is None or bool(np.isfinite(g._data if isinstance(g, Tensor) else g).all())


def _nodes(root: Node) -> list:
    """The nodes reachable from ``root``, in no particular order (what a count
    or a search over them needs: ``topological_order`` without its sort)."""
    seen = {id(root): root}
    stack = [root]
    while stack:
        for p in stack.pop().parents:
            if p is not None and type(p) is Node and id(p) not in seen:
                seen[id(p)] = p
                stack.append(p)
    return list(seen.values())


def _biggest(nodes) -> int:
    """The most elements any input of ``nodes`` has (a chunk's size divides by it)."""
    # (each distinct tuple of shapes once: they are interned, and few)
    return max([math.prod(s) for shapes in {n.shapes for n in nodes} for s in shapes],
               default=1)


# -- the two pullbacks: one cotangent, or a batch of them -------------------------
def _grads(out: Tensor, seed, leaves, *, create_graph: bool = False,
           prune: bool = True, guard: bool = True) -> list:
    """d<seed, out>/d(leaf) for each of ``leaves`` (None where out ignores the leaf).

    ``seed`` has ``out``'s shape. With ``create_graph`` the rules run on Tensors
    and the gradients come back as Tensors with a graph (differentiable again).
    The engine's walk, restricted to edges that lead to ``leaves`` (``prune``;
    not needed when no other tensor requiring grad is below ``out``), keeping
    the graph and writing no ``.grad``. A "leaf" may be a non-leaf tensor
    (an argument that required grad: ``_alias``).

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], requires_grad=True)
    >>> _grads(gc.sum(x * x), np.float32(1.0), [x])
    [array([2., 4.], dtype=float32)]
    >>> x.grad is None
    True
    """
    if create_graph and not isinstance(seed, Tensor):
        seed = Tensor._make(np.asarray(seed))
    return backward.gradients([out], [seed], leaves, retain_graph=True,
                              create_graph=create_graph, prune=prune, guard=guard)


def _rows(out: Tensor, leaves, seeds=None, *, max_elements: int | None = None,
          create_graph: bool = False, prune: bool = True) -> list:
    """For each leaf, the gradients of a batch of cotangents: (B,) + leaf.shape.

    ``seeds`` has shape ``(B,) + out.shape``; None means the identity over
    ``out``'s elements (B = out.size): the Jacobian row by row. The batch goes
    through the graph in one walk (in chunks, if ``max_elements`` asks); with
    ``create_graph``, a walk whose rules run on Tensors, recorded: the rows
    come back as Tensors that can be differentiated again (one walk per row
    where the graph indexes: see the module's docstring).

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    >>> _rows(x * x, [x])[0]
    array([[2., 0.],
           [0., 4.]])
    """
    max_elements = MAX_ELEMENTS if max_elements is None else max_elements
    shape = out.shape
    dtype = _float(out.dtype)
    m = math.prod(shape)
    B = m if seeds is None else len(seeds)

    def batch(start, stop):
        if seeds is not None:
            return np.asarray(seeds[start:stop], dtype=dtype)
        return np.eye(stop - start, m, start, dtype=dtype).reshape((stop - start,) + shape)

    def fill(got, n):
        return [np.zeros((n,) + x.shape, dtype=x.dtype) if g is None else g
                for g, x in zip(got, leaves)]

    if out._grad_fn is None or B == 0:
        return fill([batch(0, B) if B and x is out else None for x in leaves], B)
    order = _nodes(out._grad_fn)
    if create_graph and any("lead" in n.op.params for n in order):
        # A recorded node whose forward took ``lead`` (indexing) has rules that
        # assume it was recorded unbatched: one recorded walk per row instead.
        per_row = [_grads(out, batch(i, i + 1)[0], leaves, create_graph=True,
                          prune=prune) for i in range(B)]
        return [np.stack([np.zeros(x.shape, dtype=x.dtype) if r[k] is None else r[k]
                          for r in per_row]) for k, x in enumerate(leaves)]
    biggest = _biggest(order)
    chunk = max(1, min(B, max_elements // max(biggest, m, 1)))
    parts: list[list] = [[] for _ in leaves]
    for start in range(0, B, chunk):
        stop = min(B, start + chunk)
        # The identity over out's elements in one chunk: kept diagonal
        # (fastpath.Diag) by the unguarded walk, dense for the guarded one.
        diagonal = (seeds is None and not create_graph and len(shape) >= 1
                    and start == 0 and stop == B and USE_DIAG)
        seeds_now = None if diagonal else batch(start, stop)
        if create_graph:
            seeds_now = Tensor._make(seeds_now)
        for guard in (False, True):  # see run_backward's guard
            if diagonal:
                seeds_now = (fastpath.Diag(np.ones(shape, dtype=dtype)) if not guard
                             else batch(start, stop))
            got = backward.gradients([out], [seeds_now], leaves, retain_graph=True,
                                     create_graph=create_graph, prune=prune, lead=1,
                                     guard=guard)
            if all(_finite(g) for g in got):
                break
        for k, r in enumerate(fill(got, stop - start)):
            parts[k].append(r)
        for report in _REPORTING:
            report(stop, B)
    return [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]


_REPORTING: list = []  # callbacks (rows done, rows) of the batched walks running


@contextlib.contextmanager
def reporting(callback):
    """Inside: ``callback(done, total)`` after each chunk of a Jacobian's or a
    Hessian's rows (the command line's progress line); None: nothing."""
    if callback is not None:
        _REPORTING.append(callback)
    try:
        yield
    finally:
        if callback is not None:
            _REPORTING.remove(callback)


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
        out, leaves, outer = _call(f, args, kwargs, nums, "grad")
        seed = _unit_seed(out, "grad")
        dep = _outside(out, leaves)
        nested = outer and dep
        gs = _grads(out, seed, leaves, create_graph=nested, prune=dep)
        result = _pack([_result(g, x, nested) for g, x in zip(gs, leaves)], single)
        if not nested:
            return out.detach(), result
        _retire(leaves)
        return out, result

    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The gradient of a scalar function, with respect to the argument(s) ``argnums``.

    An int gives one Tensor of that argument's shape; a tuple gives a tuple.
    Nests: ``grad(grad(f))`` is the second derivative.

    >>> import gradcli as gc
    >>> grad(lambda x: gc.dot(x, x))([1.0, 2.0, 3.0])
    tensor([2., 4., 6.], dtype=gradcli.float64)
    >>> grad(grad(lambda x: x ** 3))(2.0)
    tensor(12., dtype=gradcli.float64)
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
    out, leaves, outer = _call(f, args, {}, nums, "vjp")
    dep = _outside(out, leaves)
    nested_out = outer and dep

    def vjp_fn(cotangent) -> tuple[Tensor, ...]:
        data = (
            cotangent._data if isinstance(cotangent, Tensor) else np.asarray(cotangent)
        )
        if data.shape != out.shape:
            raise ValueError(
                f"vjp: the cotangent has shape {data.shape} but the output has shape "
                f"{out.shape}: they must match"
            )
        attached_v = (isinstance(cotangent, Tensor) and cotangent.requires_grad
                      and graph.is_grad_enabled())
        nested = nested_out or attached_v
        seed = cotangent if attached_v else np.array(data, dtype=_float(out.dtype))
        gs = _grads(out, seed, leaves, create_graph=nested, prune=dep)
        if nested:
            _retire(leaves)
        return tuple(_result(g, x, nested) for g, x in zip(gs, leaves))

    if not nested_out:
        return out.detach(), vjp_fn
    _retire(leaves)  # (vjp_fn finds them by identity, and they are constants now)
    return out, vjp_fn


# -- Jacobians --------------------------------------------------------------------
_METHODS = ("auto", "rows", "columns", "loop")


def jacobian(
    f: Callable, argnums: int | Sequence[int] = 0, *, method: str = "auto",
    _used: list | None = None, _before_rows: Callable | None = None,
) -> Callable:
    """The Jacobian of ``f``: shape ``out.shape + arg.shape`` for each of ``argnums``.

    ``method``: ``"rows"`` pushes every output's cotangent (the identity) through
    the graph in one batched reverse walk; ``"columns"`` does the same over the
    inputs, differentiating the linear map ``u -> J^T u`` (reverse over reverse),
    which wins when inputs are much fewer than outputs; ``"auto"`` picks one;
    ``"loop"`` runs one ordinary backward pass per output element (the reference).
    Inside another transform (attached to the caller's graph) ``"columns"`` is
    computed as ``"rows"``; so are columns where a nan or inf meets a zero
    tangent (forward mode cannot tell there whether the product is 0 or nan:
    see ``_columns``). ``_used`` (a list), if given, gets the method each call
    actually took ("rows", "columns" or "loop"); ``_before_rows(out)``, if
    given, runs before columns turn into rows (and may refuse, raising).

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
        out, leaves, outer = _call(f, args, kwargs, nums, "jacobian")
        dep = _outside(out, leaves)
        nested = outer and dep
        m = out.size
        how = method
        if how == "auto":
            n = sum(x.size for x in leaves)
            how = "columns" if m >= 64 and 4 * n <= m else "rows"
        if nested:
            # Attached rows: one recorded walk (or one per row, for "loop").
            if how == "loop":
                rows = _loop_rows(out, leaves, create_graph=True)
            else:
                rows = _rows(out, leaves, create_graph=True)
        elif how == "rows":
            rows = _rows(out, leaves, prune=dep)
        elif how == "loop":
            rows = _loop_rows(out, leaves, prune=dep)
        else:
            try:
                rows = _columns(out, leaves, exact=True)
            except (ValueError, ArithmeticError, EvaluationError):
                # A rule that cannot run on Tensors to be differentiated again
                # (the columns do); the rows need first derivatives only.
                if method != "auto":
                    raise
                rows = None
            if rows is None or (method == "auto"
                                and not all(np.isfinite(r).all() for r in rows)):
                # None: a nan or inf met a zero tangent (see _columns); or
                # reverse over reverse needs every rule to be differentiable
                # again, at this very point; the rows need first derivatives only.
                if _before_rows is not None:
                    _before_rows(out)
                rows, how = _rows(out, leaves, prune=dep), "rows"
        if _used is not None:
            _used.append("rows" if nested and how == "columns" else how)
        blocks = [_block(r, out.shape + x.shape, x.dtype, nested)
                  for r, x in zip(rows, leaves)]
        if nested:
            _retire(leaves)
        return _pack(blocks, single)

    return jacobian_f


def _loop_rows(out: Tensor, leaves: list, *, create_graph: bool = False,
               prune: bool = True) -> list:
    """One ordinary backward pass per element of ``out``; (out.size,) + leaf.shape.

    With ``create_graph`` each row keeps its graph, and the rows are stacked by
    a recorded op."""
    m = out.size
    dtype = _float(out.dtype)
    if create_graph:
        per_leaf: list[list] = [[] for _ in leaves]
    else:
        rows = [np.zeros((m,) + x.shape, dtype=x.dtype) for x in leaves]
    for i in range(m):
        seed = np.zeros(m, dtype=dtype)
        seed[i] = 1
        gs = _grads(out, seed.reshape(out.shape), leaves, create_graph=create_graph,
                    prune=prune)
        for k, g in enumerate(gs):
            if create_graph:
                x = leaves[k]
                per_leaf[k].append(np.zeros(x.shape, dtype=x.dtype) if g is None else g)
            elif g is not None:
                rows[k][i] = g._data if isinstance(g, Tensor) else g
    if not create_graph:
        return rows
    return [np.stack(p) if p else np.zeros((0,) + x.shape, dtype=x.dtype)
            for p, x in zip(per_leaf, leaves)]


def _columns(out: Tensor, leaves: list, *, max_elements: int | None = None,
             exact: bool = False) -> list | None:
    """Jacobian rows from columns: J e_j is the derivative of ``u -> J^T u`` at e_j.

    Every input's columns go through the graph of ``J^T u`` in one batched
    walk (in chunks, if ``max_elements`` asks), all of ``J^T u``'s blocks at
    once: a walk per input would cover that graph, nearly all of it shared,
    once per input.

    ``exact``: None when a nan or inf met a zero tangent in that walk. The
    walk runs in the original graph's forward order, so a zero it meets may be
    a tangent's structural zero (another input's column: the product is 0) or
    a computed one (``d(x*x) = 2x dx`` at x = 0, then sqrt's infinite
    derivative: the product is nan, as reverse mode finds); the guard cannot
    tell them apart, and would answer 0 for both. The caller then takes the
    rows (reverse mode) instead. Without ``exact``, the guarded columns.

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    >>> y = gc.tensor(3.0, dtype=gc.float64, requires_grad=True)
    >>> [r.tolist() for r in _columns(x * y, [x, y])]
    [[[3.0, 0.0], [0.0, 3.0]], [1.0, 2.0]]
    """
    max_elements = MAX_ELEMENTS if max_elements is None else max_elements
    dtype = _float(out.dtype)
    u = Tensor._make(np.ones(out.shape, dtype=dtype))
    u.requires_grad = True
    m = out.size
    prune = _outside(out, leaves)  # (the walk to J^T u: all of it, if nothing else)
    jtus = _grads(out, u, leaves, create_graph=True, prune=prune)
    live = [(k, g) for k, g in enumerate(jtus) if isinstance(g, Tensor)]
    rows = [None if isinstance(g, Tensor) else np.zeros((m,) + x.shape, dtype=x.dtype)
            for g, x in zip(jtus, leaves)]
    if not live:
        return rows
    offsets, n = [], 0
    for k, _ in live:
        offsets.append(n)
        n += leaves[k].size
    roots = [g._grad_fn for _, g in live if g._grad_fn is not None]
    order = graph.topological_order(*roots) if roots else []
    biggest = max((math.prod(s) for node in order for s in node.shapes), default=1)
    chunk = max(1, min(n, max_elements // max(biggest, m, 1)))
    cols = np.empty((n,) + out.shape, dtype=dtype)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        seeds = [np.eye(stop - start, leaves[k].size, start - o, dtype=g.dtype)
                 .reshape((stop - start,) + g.shape) for (k, g), o in zip(live, offsets)]
        for guard in (False, True):  # see run_backward's guard
            (got,) = backward.gradients([g for _, g in live], seeds, [u],
                                        retain_graph=True, create_graph=False, lead=1,
                                        guard=guard)
            if _finite(got):
                break
            if exact:
                return None
        cols[start:stop] = 0 if got is None else got
        for report in _REPORTING:
            report(stop, n)
    flat = cols.reshape(n, m)
    for (k, _), o in zip(live, offsets):
        x = leaves[k]
        rows[k] = np.ascontiguousarray(flat[o:o + x.size].T).reshape((m,) + x.shape)
    return rows


# -- forward mode, by transposition of the reverse rules --------------------------------
def jvp(f: Callable, primals: Sequence, tangents: Sequence) -> tuple[Tensor, Tensor]:
    """``(f(*primals), J v)``: the directional derivative along ``tangents``.

    Forward mode by transposition: ``u -> J^T u`` (one reverse pass, recorded)
    is linear in ``u``, so ``J v`` is its derivative along ``v`` (a second
    reverse pass). Every op's tangent rule is thereby its VJP transposed: no
    second rule table to keep in step with the first. Nests like the other
    transforms: ``jvp`` of ``grad`` (forward over reverse), ``grad`` or ``jvp``
    of a function calling ``jvp``, tangents that depend on outer variables.

    >>> import gradcli as gc
    >>> value, tangent = jvp(lambda x, y: x * y, (3.0, 4.0), (1.0, 0.0))
    >>> value.item(), tangent.item()
    (12.0, 4.0)
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    out, leaves, outer = _call(f, primals, {}, tuple(range(len(primals))), "jvp")
    attached_v = outer and any(isinstance(v, Tensor) and v.requires_grad for v in tangents)
    nested = (outer and _outside(out, leaves)) or attached_v
    vs = _tangents(tangents, leaves, nested, "jvp")
    if not nested:
        return out.detach(), Tensor._make(push_forward(out, leaves, vs))
    # Inside another transform, of its variables: J v keeps its graph (both
    # walks recorded), so that the enclosing differentiation sees J's and v's
    # dependence on them.
    tangent = push_forward(out, leaves, vs, create_graph=True)
    _retire(leaves)
    return out, tangent


def _tangents(tangents: Sequence, leaves: Sequence[Tensor], nested: bool, name: str) -> list:
    """The tangents as arrays of their primals' dtype and shape (checked); a
    tangent that requires grad stays a Tensor when ``nested`` (its graph counts)."""
    vs = []
    for k, (v, x) in enumerate(zip(tangents, leaves)):
        data = np.asarray(v._data if isinstance(v, Tensor) else v, dtype=x.dtype)
        if data.shape != x.shape:
            raise ValueError(f"{name}: tangent {k} has shape {data.shape} but primal {k} "
                             f"has shape {x.shape}: they must match")
        attached = nested and isinstance(v, Tensor) and v.requires_grad
        vs.append(v if attached else data)
    return vs


def linearize(f: Callable, *primals) -> tuple[Tensor, Callable]:
    """``(f(*primals), f_jvp)``, JAX's ``linearize``: ``f`` runs once, and
    ``f_jvp(*tangents)`` is ``J v`` at those primals, as often as asked, from
    the one recording (each call: ``jvp``'s two reverse passes over it).

    Inside another transform whose variables ``f`` depends on, each ``f_jvp``
    call is a fresh ``jvp`` instead (runs ``f`` again), so that the enclosing
    differentiation sees every dependence.

    >>> import gradcli as gc
    >>> value, f_jvp = linearize(lambda x: x ** 3, 2.0)
    >>> value.item(), f_jvp(1.0).item(), f_jvp(0.5).item()
    (8.0, 12.0, 6.0)
    """
    out, leaves, outer = _call(f, primals, {}, tuple(range(len(primals))), "linearize")
    if outer and _outside(out, leaves):
        def f_jvp_nested(*tangents):
            return jvp(f, primals, tangents)[1]

        return out, f_jvp_nested

    def f_jvp(*tangents):
        if len(tangents) != len(leaves):
            raise ValueError(f"linearize: {len(leaves)} primals but {len(tangents)} tangents")
        return Tensor._make(push_forward(out, leaves, _tangents(tangents, leaves, False,
                                                                "linearize")))

    return out.detach(), f_jvp


def push_forward(out: Tensor, leaves: Sequence[Tensor], tangents: Sequence, *,
                 create_graph: bool = False):
    """``J v`` of a recorded ``out`` along ``tangents`` (one per leaf, of its
    shape): ``jvp``'s work on a graph already recorded, which it keeps. An
    array; with ``create_graph``, a Tensor whose graph leads to whatever ``out``
    and the tangents depend on (differentiable again).

    >>> import gradcli as gc
    >>> x = gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)
    >>> push_forward(x * x, [x], [np.array([1.0, 0.5])])
    array([2., 2.])
    """
    dtype = _float(out.dtype)
    # u = ones: J^T u at a seed without zeros (none of the walk's zero masking).
    u = Tensor._make(np.ones(out.shape, dtype=dtype))
    u.requires_grad = True
    with enable_grad():
        terms = [(g * (v if isinstance(v, Tensor) else Tensor._make(np.asarray(v)))).sum()
                 for g, v in zip(_grads(out, u, list(leaves), create_graph=True), tangents)
                 if isinstance(g, Tensor)]
        tangent = None
        if terms:
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            if isinstance(total, Tensor) and total._grad_fn is not None:
                one = np.ones((), dtype=total.dtype)
                if create_graph:
                    (tangent,) = _grads(total, one, [u], create_graph=True)
                else:
                    tangent = _unambiguous(total, one, u, out, leaves, tangents)
    _retire([u])  # a constant to every walk from here on
    if create_graph:
        if isinstance(tangent, Tensor) and tangent._grad_fn is not None:
            return tangent if tangent.shape == out.shape else np.reshape(tangent, out.shape)
    if tangent is None:
        zeros = np.zeros(out.shape, dtype=dtype)
        return Tensor._make(zeros) if create_graph else zeros
    data = tangent._data if isinstance(tangent, Tensor) else tangent
    data = np.array(np.reshape(data, out.shape), dtype=dtype)
    return Tensor._make(data) if create_graph else data


def _unambiguous(total: Tensor, one, u: Tensor, out: Tensor, leaves, tangents):
    """J v: the derivative of ``total`` = <J^T u, v> in ``u``; where that comes
    out inf or nan, reverse mode's row of that output element times v.

    This walk runs in f's forward order, where forward mode cannot tell 0 from
    nan: a zero it meets times an infinite derivative is nan for a computed
    zero (d(x*x) = 2x dx at x = 0, then sqrt's derivative), 0 for a
    selection's (a where's branch not taken, then an op at its kink), and
    the engine's guard against the latter would mask the former too (a silent
    0). The rows of the non-finite elements (one reverse walk for them all)
    give reverse mode's numbers there, if they touch at most ``ROWS_BUDGET``
    elements in all (else forward mode's inf and nan stand).
    """
    (got,) = _grads(total, one, [u], guard=False)
    if got is None or _finite(got) or out._grad_fn is None:
        return got
    got = np.array(np.broadcast_to(getattr(got, "_data", got), out.shape))
    at = np.flatnonzero(~np.isfinite(got))
    per_row = sum(math.prod(s) for n in graph.topological_order(out._grad_fn)
                  for s in n.shapes)
    if at.size * per_row > ROWS_BUDGET:
        return got  # (too many rows to walk: forward mode's inf and nan stand)
    seeds = np.zeros((at.size, out.size), dtype=got.dtype)
    seeds[np.arange(at.size), at] = 1
    rows = _rows(out, list(leaves), seeds.reshape((at.size,) + out.shape))
    with np.errstate(all="ignore"):
        got.reshape(-1)[at] = sum(np.tensordot(r, np.asarray(v), axes=np.ndim(v))
                                  for r, v in zip(rows, tangents))
    return got


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian column by column, forward mode (by transposition, as ``jvp``):
    the cheaper way when the inputs have fewer elements than the output.

    >>> jacfwd(lambda x: x ** 2)([1.0, 3.0])
    tensor([[2., 0.],
            [0., 6.]], dtype=gradcli.float64)
    """
    return jacobian(f, argnums, method="columns")


# -- second derivatives ---------------------------------------------------------------
def hessian(
    f: Callable, argnums: int | Sequence[int] = 0, *, method: str = "auto"
) -> Callable:
    """The Hessian of a scalar ``f``: shape ``arg.shape + arg.shape``.

    With a tuple ``argnums``, a nested tuple of blocks: ``H[i][j]`` has shape
    ``args[i].shape + args[j].shape``. The gradient is built with a graph of its
    own, then differentiated once for all its elements in one batched walk
    (``method="loop"``: one backward pass per gradient element instead).
    ``f`` may itself call ``grad`` (or any transform).

    >>> import gradcli as gc
    >>> hessian(lambda x, y: x * x * y, argnums=(0, 1))(1.0, 2.0)[0][1]
    tensor(2., dtype=gradcli.float64)
    """
    if method not in ("auto", "loop"):
        raise ValueError(f"hessian: method must be 'auto' or 'loop', not {method!r}")

    @functools.wraps(f)
    def hessian_f(*args, **kwargs):
        nums, single = _positions(argnums, len(args), "hessian")
        out, leaves, outer = _call(f, args, kwargs, nums, "hessian")
        seed = _unit_seed(out, "hessian")
        dep = _outside(out, leaves)
        nested = outer and dep
        gs = _grads(out, seed, leaves, create_graph=True, prune=dep)
        table = []
        for xi, gi in zip(leaves, gs):
            if not isinstance(gi, Tensor):
                rows = [np.zeros((xi.size,) + xj.shape) for xj in leaves]
            elif method == "loop":
                rows = _loop_rows(gi, leaves, create_graph=nested, prune=dep)
            else:
                rows = _rows(gi, leaves, create_graph=nested, prune=dep)
            table.append(
                [
                    _block(r, xi.shape + xj.shape, xj.dtype, nested)
                    for r, xj in zip(rows, leaves)
                ]
            )
        if nested:
            _retire(leaves)
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
    several = "gc.hessian(f, argnums=(0, 1))(x, y) and its product with v"
    _no_tensor_sequence(x, "x", "hvp", several)
    _no_tensor_sequence(v, "v", "hvp", several)
    out, (leaf,), outer = _call(f, (x,), {}, (0,), "hvp")
    seed = _unit_seed(out, "hvp")
    vdata = v._data if isinstance(v, Tensor) else np.asarray(v)
    if vdata.shape != leaf.shape:
        raise ValueError(
            f"hvp: v has shape {vdata.shape} but x has shape {leaf.shape}: they "
            "must match"
        )
    dep = _outside(out, [leaf])
    attached_v = outer and isinstance(v, Tensor) and v.requires_grad
    nested = (outer and dep) or attached_v
    (g,) = _grads(out, seed, [leaf], create_graph=True, prune=dep)
    if not isinstance(g, Tensor):
        return _result(None, leaf)
    vseed = v if attached_v else np.array(vdata, dtype=leaf.dtype)
    (hv,) = _grads(g, vseed, [leaf], create_graph=nested, prune=dep)
    if nested:
        _retire([leaf])
    return _result(hv, leaf, nested)
