"""The recorded graph: Node, grad modes, topological order (the walk: backward.py).

A ``Node`` is what a tensor's ``_grad_fn`` holds: the op that made it, an edge
per input (the input's own ``Node``, the leaf ``Tensor`` itself, or ``None`` when
that input needs no gradient), and only the values the op's VJPs need
(``Op.saves``), so intermediate arrays that no rule reads are freed as soon as
the forward pass drops them. The backward walk is iterative (no recursion limit
on long chains) and releases each node's saved values as it passes, unless
``retain_graph``.

One internal class, a typed view for users. PyTorch names the class of a
``grad_fn`` after its op (``type(y.grad_fn).__name__ == "MulBackward0"``, which
the reference notebook's users read). One ``Node`` subclass per op did that, but
made the attribute reads of the backward walk and of the forward fast paths
(one code object for every operator) polymorphic, a node of any of some seventy
classes at one site, so CPython's specialised slot reads missed: the chain of
bench/engine.py took 15-26% longer per op than before (backward 40-50%). So the
walk, the fast paths and every module of gradcli see one ``Node`` class,
through the private field ``Tensor._grad_fn``, and the chain is back to its
former speed (medians of alternating processes: 0.99x the per-op time of the
commit before issue 9, 2% more instructions under callgrind).
``Tensor.grad_fn`` (a property) hands out a ``GradFn``: a two-slot object of
the op's PyTorch-named class (``grad_fn_class``), made on first access and
found again through a weak reference on the node, so that ``y.grad_fn is
y.grad_fn`` and ``next_functions`` gives back the same objects, as in PyTorch,
while the node holds no strong reference to it (no cycle; no object more per
op unless someone looks). Internal code never reads ``.grad_fn``: a
``GradFn`` in an edge would not be walked (and ``grad_fn`` cannot be set).
"""

from __future__ import annotations

import itertools
import os
import sys
import weakref
from contextlib import ContextDecorator

import numpy as np


class _Mode:
    __slots__ = ("enabled", "keep_args", "cuts", "file_code")

    def __init__(self) -> None:
        self.enabled = True
        # Keep every input of every node (constants too), for tools that replay
        # or show the graph (symbolic check, `gradcli graph`); off: less memory.
        self.keep_args = False
        # While gradcli records a target (``watch_cuts``): a list of where a
        # Tensor that requires grad became a Python number or plain array
        # (float(), .item(), ...), a path the gradient cannot follow. None: not
        # watched. Read by the conversions only, never by an op.
        self.cuts = None
        # While a function file's own code runs (numpy-style code given Tensors):
        # a method whose PyTorch and numpy meanings differ, called in a form
        # that does not say which, is refused (torch_api.ambiguous).
        self.file_code = False


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


MAX_CUTS = 8  # conversions remembered per recording (the first is named)


class watch_cuts:
    """Inside: conversions of Tensors that require grad to Python numbers or
    plain arrays are noted (``note_cut``) in the list ``as`` gives."""

    def __enter__(self) -> list[str]:
        self._prev = MODE.cuts
        MODE.cuts = []
        return MODE.cuts

    def __exit__(self, *exc) -> bool:
        MODE.cuts = self._prev
        return False


def note_cut(what: str) -> None:
    """Note ``what`` (e.g. "float()") at the innermost caller outside gradcli:
    ``float() at cut.py:2``. Called only while watched."""
    cuts = MODE.cuts
    if len(cuts) >= MAX_CUTS:
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame = frame.f_back
    if frame is None:
        cuts.append(what)
    else:
        cuts.append(f"{what} at {os.path.basename(frame.f_code.co_filename)}:"
                    f"{frame.f_lineno}")


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
    """One recorded op application: the ``_grad_fn`` of the tensor it produced.

    Per input: where its gradient goes (``parents``: the input's own ``Node``,
    the leaf Tensor itself, or None when it needs none) and the value the rules
    read (``saved``: the array for ``Op.saves`` "inputs" or "both", a ``Meta``
    for "shape", else None). Ops of one or two inputs, nearly all, keep these
    in slots of the node (``p0 p1``, ``x0 x1``), others in ``more``: every object
    that outlives the forward pass adds to the cyclic garbage collector's work,
    and a node is made per op. Saved values are arrays, not Tensors, so the
    graph keeps no Tensor alive; ``create_graph`` rebuilds them (``inputs_as_tensors``).
    """

    __slots__ = ("op", "seq", "p0", "p1", "x0", "x1", "out", "shapes", "params", "freed",
                 "_pending", "__dict__", "__weakref__")
    # Fields most nodes never set, read from the class until they are: a
    # store fewer each, per op.
    more = None  # (parents, saved) of an op with more than two inputs
    label = None  # e.g. the expression text, for `gradcli graph`
    stale_at = None  # a view's: the seq of a recorded in-place change of its memory
    kink = None  # (op name, convention): a composite op's kink, on its output's node
    _view = None  # weakref to the GradFn users hold (``public``)

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
    def args(self) -> tuple | None:
        """Every input, recorded under keep_args, as it was when this node ran
        (an input changed in place since is given by its snapshot: ``note_rebase``)."""
        args = self.__dict__.get("_args")
        if args is None or not REBASED:
            return args
        return tuple([_as_it_was(a, self.seq) for a in args])

    @args.setter
    def args(self, value) -> None:
        self.__dict__["_args"] = value

    @property
    def parents(self) -> tuple:
        """Per input: its ``Node``, the leaf Tensor itself, or None (no gradient)."""
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
        a leaf is itself, another input requiring grad is rebuilt on its Node."""
        out = []
        for p, x in zip(self.parents, self.saved):
            if p is None:
                out.append(x)
            elif isinstance(p, Node):
                out.append(wrap(x, p))
            else:
                out.append(p)
        return tuple(out)

    def public(self) -> GradFn:
        """The ``GradFn`` users see for this node: one while anybody holds it."""
        ref = self._view
        view = ref() if ref is not None else None
        if view is None:
            view = _new(grad_fn_class(self.op.grad_fn))
            view._node = self
            self._view = weakref.ref(view)
        return view

    def __repr__(self) -> str:
        return f"<Node {self.op.grad_fn} at {hex(id(self))}>"


_new = object.__new__


class GradFn:
    """A tensor's ``grad_fn`` as users see it: the op's PyTorch-named class
    (``MulBackward0``) over the engine's one ``Node`` class (module docstring)."""

    __slots__ = ("__weakref__", "_node")

    def name(self) -> str:
        return self._node.op.grad_fn

    def __repr__(self) -> str:
        return f"<{self._node.op.grad_fn} object at {hex(id(self))}>"

    @property
    def next_functions(self) -> tuple:
        """As PyTorch: per input, its ``grad_fn``, the ``AccumulateGrad`` of a
        leaf that requires grad, or None."""
        return tuple((None if p is None else p.public() if type(p) is Node
                      else accumulator(p), 0) for p in self._node.parents)

    @property
    def metadata(self) -> dict:
        """A dict kept with the node (as PyTorch's), for the user's own notes."""
        d = self._node.__dict__
        got = d.get("_metadata")
        if got is None:
            got = d["_metadata"] = {}
        return got


class AccumulateGrad:
    """What ``next_functions`` shows for a leaf: its gradient accumulates into
    ``variable.grad`` (PyTorch's name and attribute). One per leaf while held."""

    __slots__ = ("__weakref__", "variable")

    def __init__(self, variable) -> None:
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"


_ACCUMULATORS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def accumulator(leaf) -> AccumulateGrad:
    """The leaf's ``AccumulateGrad``: the same object while anybody holds it."""
    got = _ACCUMULATORS.get(id(leaf))
    if got is None or got.variable is not leaf:
        got = _ACCUMULATORS[id(leaf)] = AccumulateGrad(leaf)
    return got


def grad_fn_class(name: str) -> type:
    """The class users see for a node of op ``name``, named as PyTorch names it
    (``MulBackward0``), so that ``type(y.grad_fn).__name__`` reads as in PyTorch."""
    cls = _GRAD_FN_CLASSES.get(name)
    if cls is None:
        cls = _GRAD_FN_CLASSES[name] = type(name or "GradFn", (GradFn,), {"__slots__": ()})
    return cls


_GRAD_FN_CLASSES: dict[str, type] = {}


def edge(x):
    """Where the gradient of input ``x`` goes: its ``Node``, the leaf itself, or None."""
    if getattr(x, "requires_grad", False):
        return x._grad_fn or x
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


def topological_order(root: Node, *more: Node) -> list[Node]:
    """Nodes reachable from ``root`` (and ``more`` roots), each before every node
    it consumes."""
    seen = {id(root): root}
    for r in more:
        seen[id(r)] = r
    stack = list(seen.values())
    while stack:
        for p in stack.pop().parents:
            if isinstance(p, Node) and id(p) not in seen:
                seen[id(p)] = p
                stack.append(p)
    return sorted(seen.values(), key=lambda n: -n.seq)


def recorded_values(root: Node, value) -> dict[int, object]:
    """Each node's output, by ``id(node)``, for a graph recorded under ``keep_args``:
    found among its consumers' inputs (``value`` is the root's own)."""
    values = {id(root): value}
    order = topological_order(root)
    for node in order:
        for a in node.args or ():
            fn = getattr(a, "_grad_fn", None)
            if fn is not None:
                values[id(fn)] = a._data
    if MODIFIED:
        # A view shares its memory, which an in-place change may have rewritten
        # since: its values again from its input's, as they were (inputs first).
        for node in reversed(order):
            if node.op.view and node.args:
                src = node.args[0]
                fn = getattr(src, "_grad_fn", None)
                data = (values.get(id(fn)) if fn is not None
                        else getattr(src, "_data", src))
                if data is not None:
                    values[id(node)] = node.op.forward(np.asarray(data), **node.params)
    return values


# -- the version counter ----------------------------------------------------------
# PyTorch bumps a counter per storage at each in-place change and compares it with
# the value a node noted when it saved the tensor. Here creation order stands in
# for both: a node's ``seq`` says when it saved its values, and an in-place change
# notes the ``seq`` of its moment against the array owning the memory it wrote. A
# saved array whose owner changed after its node's ``seq`` holds new values. The
# forward pass records nothing more than before; the walk looks only once some
# in-place change has happened (``MODIFIED`` not empty).
MODIFIED: dict[int, tuple] = {}  # id(owner) -> (seq of its last change, weakref)


def owner(a):
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while True:
        b = getattr(a, "base", None)
        if not isinstance(b, np.ndarray):
            return a
        a = b


def _forget(ref, key):
    got = MODIFIED.get(key)
    if got is not None and got[1] is ref:
        del MODIFIED[key]


def mark_modified(a) -> None:
    """Note that the memory of ``a`` was changed in place just now."""
    b = owner(a)
    key = id(b)
    got = MODIFIED.get(key)
    ref = got[1] if got is not None else weakref.ref(b, lambda r, k=key: _forget(r, k))
    MODIFIED[key] = (next(_SEQ), ref)


# Under keep_args, nodes hold their input Tensors to replay or show the graph; an
# in-place change of one gives it new values and a new grad_fn, so the tensor as
# it was is kept beside it, for the nodes recorded before the change.
REBASED: dict[int, list] = {}  # id(tensor) -> [weakref to it, (seq, snapshot), ...]


def note_rebase(t, before) -> None:
    """``t`` is being changed in place now; ``before`` holds its values and grad_fn."""
    key = id(t)
    got = REBASED.get(key)
    if got is None or got[0]() is not t:
        got = REBASED[key] = [weakref.ref(t, lambda r, k=key: _forget_rebase(r, k))]
    got.append((next(_SEQ), before))


def _forget_rebase(ref, key) -> None:
    got = REBASED.get(key)
    if got is not None and got[0] is ref:
        del REBASED[key]


def _as_it_was(a, seq: int):
    got = REBASED.get(id(a))
    if got is None or got[0]() is not a:
        return a
    for changed, before in got[1:]:
        if changed > seq:
            return before
    return a


def modified_after(a, seq: int) -> bool:
    """Whether the memory of saved array ``a`` was changed in place after ``seq``."""
    if type(a) is not np.ndarray:
        return False  # numbers, numpy scalars and Meta are immutable
    got = MODIFIED.get(id(owner(a)))
    return got is not None and got[0] > seq


# Views: each recorded view node, noted against the memory it views; a recorded
# in-place change of that memory makes every other view's history stale (its
# values changed, its grad_fn does not say how). A node that used a stale view
# after the change stops the walk; one that used it before is fine.
VIEWS: dict[int, tuple] = {}  # id(owner) -> (WeakSet of view nodes, weakref to owner)
STALE: dict[int, object] = {}  # id(node) -> weakref, of every stale view node alive


def note_view(node: Node, out: np.ndarray) -> None:
    b = owner(out)
    key = id(b)
    got = VIEWS.get(key)
    if got is None:
        got = VIEWS[key] = (weakref.WeakSet(),
                            weakref.ref(b, lambda r, k=key: _forget_views(r, k)))
    got[0].add(node)


def _forget_views(ref, key) -> None:
    got = VIEWS.get(key)
    if got is not None and got[1] is ref:
        del VIEWS[key]


def mark_views_stale(a, skip=None) -> None:
    """A recorded in-place change of ``a``'s memory happened just now."""
    got = VIEWS.get(id(owner(a)))
    if not got:
        return
    now = next(_SEQ)
    for node in list(got[0]):
        if node is not skip and node.stale_at is None:
            node.stale_at = now
            key = id(node)
            STALE[key] = weakref.ref(node, lambda r, k=key: STALE.pop(k, None))


_VIEW_STALE = (
    "one of the variables needed for gradient computation has been modified by an "
    "inplace operation: a view made by {name} ({grad_fn}) was used after the memory "
    "it views was changed in place while recording, so its recorded history no "
    "longer gives its values (PyTorch rebases a view; gradcli cannot). Take the "
    "view after the change, or change a copy (.clone()) instead"
)


def check_stale_root(root: Node) -> None:
    if root.stale_at is not None:
        op = root.op
        raise RuntimeError(_VIEW_STALE.format(name=op.name, grad_fn=op.grad_fn))


def _needed(node: Node, n: int):
    """Which saved inputs (indices) and whether the output the rules will read."""
    local = node.op.local
    if local is None:
        return range(n), True
    need, out = set(), False
    for p, (kind, v) in zip(node.parents, local):
        if p is None:
            continue
        if kind == INPUT:
            need.add(v)
        elif kind == OUT:
            out = True
        elif kind == FRESH:
            return range(n), True
    return need, out


def check_versions(node: Node) -> None:
    """Raise if a value ``node`` saved for its rules was changed in place since, or
    if it used a view whose history went stale before it did."""
    if STALE:
        for p in node.parents:
            if isinstance(p, Node) and p.stale_at is not None and p.stale_at < node.seq:
                op = p.op
                raise RuntimeError(_VIEW_STALE.format(name=op.name, grad_fn=op.grad_fn))
    if not MODIFIED:
        return
    n = len(node.shapes)
    saved = (node.x0, node.x1)[:n] if n <= 2 else node.more[1] or ()
    need, need_out = _needed(node, n)
    seq = node.seq
    for i in need:
        if modified_after(saved[i], seq):
            what = f"input {i}" if n > 1 else "input"
            break
    else:
        if not (need_out and modified_after(node.out, seq)):
            return
        what = "output"
    raise RuntimeError(
        "one of the variables needed for gradient computation has been modified by "
        f"an inplace operation: the {what} of {node.op.name} ({node.op.grad_fn}) was "
        "changed in place after it was saved for backward (its version counter moved "
        "on), so its gradient would be computed from the new values. Compute the "
        "gradient before changing it, or change a copy (.clone()) instead"
    )


# How an elementwise op declares its local derivative (``Op.local``), per input:
CONST = 0  # a number: the cotangent times it (1: passed through as is)
INPUT = 1  # one of the op's inputs, by position (mul: the other factor)
OUT = 2  # the op's output (exp)
FRESH = 3  # f(out, *inputs), an array made on each call (sin: cos(x))
MOVES = "moves"  # support: the rules only move, sum or scale the cotangent
