"""Target + inputs -> Result(value, grads, warnings, notes).

A target is an expression (parsed into a checked tree, run by ``interpret`` on the
``TensorBackend``, which checks every op's size before it runs and labels every
graph node with the text it came from) or a function file (trusted code, run with
Tensors for its parameters). When gradients are wanted, both record a graph with
``keep_args``, which is what locates the first non-finite number and the kinks a
gradient went through; a value alone (``no_grad``) records nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import TensorBackend, engine_dtype, finite
from .engine import backward, graph
from .engine.backward import GraphFreedError
from .engine.graph import Node
from .engine.ops import OPS
from .engine.tensor import Tensor, get_default_dtype, set_default_dtype
from .errors import EvaluationError, UsageError
from .interpret import interpret
from .loader import Loaded, describe, is_file_target, load, user_code, user_frame
from .parse import Call, Limits, Var, free_names, parse, walk

DEFAULT_MAX_ELEMENTS = 10_000_000  # 80 MB per float64 array


@dataclass
class Target:
    text: str
    tree: Any = None  # parse.Expr for an expression
    loaded: Loaded | None = None

    @property
    def kind(self) -> str:
        return "function" if self.loaded else "expression"

    @property
    def label(self) -> str:
        if self.loaded:
            return f"{self.loaded.path}:{self.loaded.name}"
        return self.text

    def order(self, names):
        """``names`` in the target's own order, whatever order the command line
        gave them in: a function's parameter order, an expression's order of
        first appearance (left to right). Outputs (``inputs``, ``grad``, blocks)
        and a derivative's returned tuple follow it."""
        if self.loaded is not None:
            ranks = self.loaded.params or self.loaded.required + self.loaded.optional
        else:
            ranks = tuple(dict.fromkeys(
                node.name for node in walk(self.tree) if isinstance(node, Var)))
        rank = {n: i for i, n in enumerate(ranks)}
        return sorted(names, key=lambda n: rank.get(n, len(rank)))


@dataclass
class Result:
    value: np.ndarray
    grads: dict[str, np.ndarray]
    output: Tensor
    leaves: dict[str, Tensor] = field(default_factory=dict)
    seed: Any = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tangent: np.ndarray | None = None  # J v, for the tangents asked (forward mode)
    tangent_mode: str = "forward"  # or "reverse": J v from the Jacobian's rows
    # where a function file turned a Tensor that requires grad into a number
    # (graph.note_cut): a path no derivative of the engine follows
    cuts: list[str] = field(default_factory=list)


def prepare(text: str, names: list[str], limits: Limits | None = None) -> Target:
    """Parse or load the target and match its inputs against ``names``."""
    given = set(names)
    if is_file_target(text):
        loaded = load(text)
        missing = [p for p in loaded.required if p not in given]
        if missing:
            raise UsageError(
                f"missing input {missing[0]!r} (a parameter of {loaded.name})",
                hint=f"give it a value: --{missing[0]} VALUE",
            )
        known = set(loaded.required) | set(loaded.optional)
        extra = sorted(given - known)
        if extra:
            raise UsageError(
                f"unknown input {extra[0]!r}: {loaded.name} takes "
                f"{', '.join(loaded.required + loaded.optional) or 'no parameters'}"
            )
        return Target(text, loaded=loaded)
    if not text.strip():
        raise UsageError("the expression is empty")
    tree = parse(text, inputs=given, ops=OPS, limits=limits or Limits())
    unused = sorted(given - free_names(tree))
    if unused:
        raise UsageError(
            f"input {unused[0]!r} is not used by the expression",
            hint="drop it, or check the expression for a typo",
        )
    return Target(text, tree=tree)


def _read_only(a):
    """The caller's array as a read-only view: the user's function may change its
    inputs in place (as in PyTorch) no more than it may change the caller's data,
    which later points, finite differences and checks read again."""
    if type(a) is not np.ndarray:
        return a
    v = a.view()
    v.flags.writeable = False
    return v


@contextlib.contextmanager
def _default_dtype(dtype):
    prev = get_default_dtype()
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(prev)


def call(target: Target, leaves: dict[str, Tensor], max_elements: int) -> Tensor:
    """Run the target on Tensors; its failures become EvaluationError."""
    if target.loaded is None:
        out = interpret(target.tree, TensorBackend(target.text, max_elements), leaves)
        return _as_tensor(out, "the expression")
    fn = target.loaded
    try:
        with user_code():
            out = fn.func(**leaves)
    except (KeyboardInterrupt, EvaluationError):
        raise
    except BaseException as exc:  # SystemExit and GeneratorExit too: user code
        raise EvaluationError(
            f"{user_frame(exc, fn.path)}: {describe(exc)}"
        ) from exc
    return _as_tensor(out, f"{os.path.basename(fn.path)}: {fn.name}()")


@contextlib.contextmanager
def _graph_of(target: Target):
    """Around gradcli's own walk of the target's graph: a graph the function
    file freed by running backward() itself is its error (exit 3), not ours."""
    try:
        yield
    except GraphFreedError as exc:
        raise EvaluationError(
            f"{target.label} ran backward() itself, which freed the graph that "
            "gradcli differentiates",
            hint="return the value without calling backward(); gradcli computes "
                 "its gradient") from exc


def _as_tensor(value, where: str) -> Tensor:
    """What the target returned, as a Tensor: a Tensor, a real number or a real
    array; anything else (None, a string "1.5", a list) is an evaluation error
    naming it, never a number made up from it."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating, np.ndarray)):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:39] + "…"
        kind = type(value).__name__
        what = shown if value is None or isinstance(value, (bool, np.bool_)) else (
            f"the {kind} {shown}" if isinstance(value, (str, bytes))
            else f"an object of class {kind}")
        raise EvaluationError(f"{where} returned {what}; return a tensor or a number")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise EvaluationError(f"{where} returned an array of {arr.dtype}; return real numbers")
    return Tensor._make(arr.astype(np.float64))


def _nodes(root: Node | None) -> list[Node]:
    return graph.topological_order(root) if root is not None else []


def nonfinite(what: str, a) -> str:
    """Which non-finite numbers ``a`` holds and how many: ``value is inf: 1 of 1
    element``, ``grad.x has 2 nan and 1 -inf in 10 elements``."""
    a = np.asarray(a)
    counts = [(int(np.isnan(a).sum()), "nan"), (int(np.isposinf(a).sum()), "inf"),
              (int(np.isneginf(a).sum()), "-inf")]
    counts = [(n, kind) for n, kind in counts if n]
    size = f"{a.size:,} element{'s' * (a.size != 1)}"
    if len(counts) == 1:
        n, kind = counts[0]
        return f"{what} is {kind}" + ("" if a.size == 1 else f": {n:,} of {size}")
    return f"{what} has " + " and ".join(f"{n:,} {kind}" for n, kind in counts) + f" in {size}"


def _first(a) -> str:
    """The kind of the first non-finite number of ``a`` (flat order)."""
    flat = np.asarray(a).reshape(-1)
    v = flat[~np.isfinite(flat)][0]
    return "nan" if np.isnan(v) else "inf" if v > 0 else "-inf"


def _describe(node: Node) -> str:
    return f"{node.op.name} at {node.label!r}" if node.label else node.op.name


def _first_nonfinite_forward(target: Target, leaves, out: Tensor,
                             max_elements: int) -> str | None:
    if target.tree is not None:  # evaluate again, watching every op
        tracer = TensorBackend(target.text, max_elements, trace=True)
        interpret(target.tree, tracer, leaves)
        return tracer.first_bad
    values = graph.recorded_values(out._grad_fn, out._data) if out._grad_fn else {}
    bad = [n for n in _nodes(out._grad_fn) if id(n) in values and not finite(values[id(n)])]
    if not bad:
        return None
    return _describe(min(bad, key=lambda n: n.seq))


def _first_nonfinite_backward(out: Tensor, seed) -> str | None:
    found: list[Node] = []

    def hook(node, g, gx):
        if not found and finite(g) and not finite(gx):
            found.append(node)

    backward.run_backward(out._grad_fn, seed, retain_graph=True, create_graph=False,
                       wrap=Tensor._make, hook=hook, accumulate=False)
    return _describe(found[0]) if found else None


def kinks(out: Tensor) -> list[str]:
    """The recorded ops whose gradient was taken exactly at a kink."""
    found = []
    for n in _nodes(out._grad_fn):
        if n.kink is not None:  # a composite op's, noted on its output's node
            found.append(f"{n.kink[0]}{f' at {n.label!r}' if n.label else ''}: {n.kink[1]}")
        if n.args is not None:
            arrays = [a._data if isinstance(a, Tensor) else np.asarray(a) for a in n.args]
            kink = n.op.kink_at(arrays, n.params)
            if kink:
                found.append(f"{_describe(n)}: {kink}")
    return found


def evaluate(
    target: Target,
    inputs: dict[str, np.ndarray],
    *,
    wrt: list[str] | None = None,
    grad_output: np.ndarray | str | None = None,
    no_grad: bool = False,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    record: bool | None = None,
    tangents: dict[str, np.ndarray] | None = None,
) -> Result:
    """Value and gradients of ``target`` at ``inputs`` (float arrays).

    ``record`` keeps the graph (with every op's inputs) even with ``no_grad``,
    for tools that replay it; by default only when gradients are wanted, so that
    a value alone holds no intermediate arrays.

    ``tangents`` (by input name; the inputs of ``wrt`` not named have a zero
    tangent) asks for the directional derivative ``J v`` as well, in forward
    mode (``Result.tangent``). The gradient then comes only where it needs no
    vector: a single-number output, or a ``grad_output``.
    """
    wrt = list(inputs) if wrt is None else wrt
    if tangents is not None:
        check_tangents(tangents, inputs, wrt)
        record = True
    record = not no_grad if record is None else record
    dtype = engine_dtype(inputs)
    leaves = {
        n: Tensor._make(_read_only(a)).requires_grad_(record and n in wrt)
        for n, a in inputs.items()
    }
    with np.errstate(all="ignore"), _default_dtype(dtype), \
            graph.keep_args() if record else contextlib.nullcontext(), \
            graph.enable_grad(), warnings.catch_warnings():
        # inf and nan are results, reported once by gradcli, not by numpy.
        warnings.simplefilter("ignore", RuntimeWarning)
        watch = record and target.loaded is not None
        with graph.watch_cuts() if watch else contextlib.nullcontext() as cuts:
            out = call(target, leaves, max_elements)
        for t in leaves.values():
            t.grad = None  # a backward() inside the function is not our gradient
        if out._data.dtype.kind not in "f":
            raise EvaluationError(
                f"the result is {out._data.dtype.name}, not a number: "
                "gradients need a float result"
            )
        value = np.asarray(out._data)
        result = Result(value, {}, out, leaves, cuts=list(cuts or ()))
        if not finite(value):
            where = _first_nonfinite_forward(target, leaves, out, max_elements)
            origin = f"; first {_first(value)} in {where} (forward pass)" if where else ""
            result.warnings.append(nonfinite("value", value) + origin)
        if tangents is not None:
            refuse_cuts(target, result.cuts, "its directional derivative (--tangent)")
            _directional(target, result, tangents, wrt, max_elements)
            if grad_output is None and value.size != 1:
                no_grad = True
        if no_grad or not wrt:
            return result
        seed = result.seed = _seed(value, grad_output)
        if out.requires_grad:
            try:
                with _graph_of(target):
                    out.backward(gradient=seed, retain_graph=True)
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise EvaluationError(f"backward pass: {exc}") from exc
        for n in wrt:
            g = leaves[n].grad
            if g is None:
                result.warnings.append(_unreached(target, n))
            result.grads[n] = (
                np.asarray(g._data) if g is not None else np.zeros_like(inputs[n])
            )
        if result.cuts:
            _verify_cut(target, inputs, wrt, seed, result.grads, result.cuts,
                        max_elements, result.warnings)
        bad = [n for n in wrt if not finite(result.grads[n])]
        if bad and out._grad_fn is not None:
            origin = _first_nonfinite_backward(out, seed)
            g = result.grads[bad[0]]
            tail = f"; first {_first(g)} in {origin} (backward pass)" if origin else ""
            result.warnings.append(nonfinite(f"grad.{bad[0]}", g) + tail)
        result.notes = kinks(out)
    return result


def check_tangents(tangents: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
                   wrt: list[str]) -> None:
    """Each tangent names an input differentiated, and has its shape."""
    for n, v in tangents.items():
        if n not in inputs:
            raise UsageError(f"--tangent {n}: no input named {n!r}",
                             hint=f"inputs: {', '.join(inputs) or 'none'}")
        if n not in wrt:
            raise UsageError(f"--tangent {n}: input {n!r} is not differentiated "
                             f"(--wrt names {', '.join(wrt) or 'none'})",
                             hint=f"add --wrt {n}, or drop its tangent")
        if np.shape(v) != np.shape(inputs[n]):
            raise UsageError(f"--tangent {n}: the tangent has shape {np.shape(v)} but "
                             f"input {n!r} has shape {np.shape(inputs[n])}: they must "
                             "match")


def _directional(target: Target, result: Result, tangents: dict[str, np.ndarray],
                 wrt: list[str], max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
    """``result.tangent``: J v through the graph just recorded (forward mode).

    Forward mode (by transposition) runs every op's gradient rule on Tensors
    and differentiates it once more. Where a rule cannot be, J v comes from
    reverse mode's Jacobian instead (a row per output element: refused, with
    forward mode's error, when the walks would be too big), and says so.
    """
    from .transforms import _rows, push_forward

    out = result.output
    if out._grad_fn is None or not wrt:
        result.tangent = np.zeros(result.value.shape, dtype=result.value.dtype)
    else:
        vs = [np.asarray(tangents[n], dtype=result.leaves[n].dtype) if n in tangents
              else np.zeros(result.leaves[n].shape, dtype=result.leaves[n].dtype)
              for n in wrt]
        leaves = [result.leaves[n] for n in wrt]
        try:
            with _graph_of(target):
                result.tangent = push_forward(out, leaves, vs)
        except (EvaluationError, ValueError, ArithmeticError) as exc:
            problem = EvaluationError(
                f"forward mode: {exc}",
                hint="forward mode differentiates each op's gradient rule once more, "
                     "which gradcli cannot do here; 'gradcli jacobian --mode reverse' "
                     "gives J, whose product with the tangent is J v")
            try:
                _walk_work("tangent", out.size, out, 1, max_elements)
            except EvaluationError:
                raise problem from exc
            try:
                with _graph_of(target):
                    rows = _rows(out, leaves)
            except (EvaluationError, ValueError, ArithmeticError):
                raise problem from exc
            total = sum(np.tensordot(r.reshape((out.size,) + v.shape), v, axes=v.ndim)
                        for r, v in zip(rows, vs))
            result.tangent = np.asarray(total, dtype=result.value.dtype).reshape(out.shape)
            result.tangent_mode = "reverse"
            result.warnings.append(f"forward mode failed ({exc}); the tangent J v is "
                                   "from reverse mode's Jacobian, a row per output "
                                   "element")
    if not finite(result.tangent):
        result.warnings.append(nonfinite("tangent", result.tangent))
    result.notes = kinks(out)


def _unreached(target: Target, name: str) -> str:
    """Why the gradient of ``name`` is zero: no recorded operation depends on it."""
    if target.loaded is None:
        return (f"grad.{name} is 0: {name} enters the expression only through "
                "conditions, detach() or other ops without a gradient")
    return (f"grad.{name} is 0: no recorded operation uses {name}; if the result "
            "does depend on it, the function cut the graph (.item(), .numpy(), "
            "float(), .detach() or no_grad())")


def refuse_cuts(target: Target, cuts: list[str], what: str) -> None:
    """A derivative finite differences do not check here (a Hessian, a
    directional derivative, Taylor coefficients, a formula) of a function that
    converted a Tensor requiring grad to a number: refused (exit 3), since the
    path through that number may be missing from it (second order too, where
    the gradient at the point is right)."""
    if not cuts:
        return
    where = cuts[0] + (f", and {len(cuts) - 1} more" if len(cuts) > 1 else "")
    raise EvaluationError(
        f"{target.loaded.name} converts a Tensor that requires grad to a number "
        f"({where}): {what} would miss any path through that number, and cannot be "
        "checked against finite differences here",
        hint="keep the value a Tensor (no float(), .item(), .tolist()); gradients "
             "and Jacobians of such a function are checked against finite "
             "differences (eval, jacobian), and 'gradcli check --grad' compares yours")


def _verify_cut(target: Target, inputs: dict[str, np.ndarray], wrt: list[str],
                seed: np.ndarray, grads: dict[str, np.ndarray], cuts: list[str],
                max_elements: int, warnings: list[str], what: str = "grad") -> None:
    """The function converted a Tensor that requires grad to a number: legitimate
    in control flow (``if float(x.sum()) > 0``), a path the gradient misses in
    arithmetic. Central differences of ``<seed, f>`` along a few random
    directions tell which (``grads``: the engine's gradient of it): a gradient
    they contradict is an error (exit 3), not a result."""
    from .check import directional_check

    fixed = {n: Tensor._make(_read_only(a)) for n, a in inputs.items() if n not in wrt}

    def f_value(point):
        leaves = {**fixed, **{n: Tensor._make(_read_only(point[n])) for n in wrt}}
        with graph.no_grad():
            out = call(target, leaves, max_elements)
        return np.sum(seed * np.asarray(out._data, dtype=np.float64))

    try:
        agree = directional_check(inputs, wrt, f_value, grads)
    except EvaluationError:  # f fails without a graph: nothing to compare
        agree = {}
    wrong = [n for n in wrt if agree.get(n) is False]
    name = target.loaded.name
    where = cuts[0] + (f", and {len(cuts) - 1} more" if len(cuts) > 1 else "")
    if wrong:
        raise EvaluationError(
            f"{name} converts a Tensor that requires grad to a number ({where}), so "
            f"the {'gradient' if what == 'grad' else 'derivative'} misses that path: "
            f"{what}.{wrong[0]} disagrees with finite differences",
            hint="keep the value a Tensor (no float(), .item(), .tolist()) so that "
                 "the gradient follows it; 'gradcli check FILE.py:f --grad FILE.py:df' "
                 "checks your own derivative against finite differences")
    unsure = [n for n in wrt if agree.get(n) is None]
    if unsure:
        warnings.append(
            f"{name} converts a Tensor that requires grad to a number ({where}); "
            f"finite differences could not confirm {what}.{unsure[0]}, which misses "
            "that path if the number enters the result")


def _seed(value: np.ndarray, grad_output) -> np.ndarray:
    if grad_output is None:
        if value.size != 1:
            raise EvaluationError(
                f"the output has shape {value.shape}, not a single number: the "
                "gradient needs a vector for a vector-Jacobian product",
                hint="pass --grad-output ones (or a VALUE of that shape), wrap the "
                "expression in sum(...), or use 'gradcli jacobian' for every gradient",
            )
        return np.ones(value.shape, dtype=value.dtype)
    if isinstance(grad_output, str):  # "ones"
        return np.ones(value.shape, dtype=value.dtype)
    g = np.asarray(grad_output, dtype=value.dtype)
    if g.shape != value.shape:
        raise EvaluationError(
            f"--grad-output has shape {g.shape} but the output has shape {value.shape}"
        )
    return g


# -- whole derivatives ---------------------------------------------------------
@dataclass
class Derivatives:
    value: np.ndarray
    blocks: dict[str, Any]  # jacobian: name -> array; hessian: name -> name -> array
    warnings: list[str] = field(default_factory=list)
    recorded: Result | None = None  # the forward pass, graph kept (for --check)
    mode: str | None = None  # a Jacobian's: "forward" or "reverse", as computed


def _as_function(target: Target, inputs: dict[str, np.ndarray], wrt: list[str],
                 max_elements: int):
    """``f(*wrt tensors)`` with the other inputs fixed, and the leaves' dtype."""
    dtype = engine_dtype(inputs)
    fixed = {n: Tensor._make(_read_only(a)) for n, a in inputs.items() if n not in wrt}

    def f(*tensors):
        return call(target, {**fixed, **dict(zip(wrt, tensors))}, max_elements)

    return f, dtype


def _nothing_to_differentiate(what: str, wrt) -> None:
    if not wrt:
        raise UsageError(f"the {what} needs at least one input to differentiate",
                         hint="give one as --NAME VALUE")


def _derivative_size(what: str, out_size: int, inputs, wrt, max_elements: int) -> None:
    for n in wrt:
        size = out_size * inputs[n].size
        if size > max_elements:
            raise EvaluationError(
                f"the {what} block for {n!r} would have {size:,} elements, over the "
                f"limit of {max_elements:,}",
                hint="raise it with --max-elements N if you mean it",
            )


WORK_FACTOR = 100  # elements a Jacobian's or Hessian's walks may touch, x --max-elements


def _walk_work(what: str, rows: int, out: Tensor, factor: int, max_elements: int) -> None:
    """Refuse, before any walk, a derivative whose walks would touch more than
    ``WORK_FACTOR`` x --max-elements elements in all: ``rows`` walks (batched,
    but each row's arrays still pass) of a graph with the elements of ``out``'s,
    ``factor`` times (a Hessian walks the gradient's graph, about 3 times f's)."""
    if out._grad_fn is None:
        return
    per_row = factor * sum(math.prod(s) for n in graph.topological_order(out._grad_fn)
                           for s in n.shapes)
    if rows * per_row > WORK_FACTOR * max_elements:
        raise EvaluationError(
            f"the {what} needs {rows:,} rows, each through a graph of about "
            f"{per_row:,} elements: {rows * per_row:,} in all, over the limit of "
            f"{WORK_FACTOR} x --max-elements ({WORK_FACTOR * max_elements:,})",
            hint="raise it with --max-elements N if you mean it, or differentiate "
                 "fewer inputs (--wrt)")


MODES = ("auto", "forward", "reverse")


def jacobian_mode(mode: str, inputs: int, outputs: int) -> str:
    """The mode a Jacobian is computed in: ``auto`` is forward when the inputs
    differentiated have fewer components in all than the output, else reverse.

    >>> jacobian_mode("auto", 3, 10_000), jacobian_mode("auto", 4, 4)
    ('forward', 'reverse')
    """
    if mode not in MODES:
        raise UsageError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "auto":
        return "forward" if inputs < outputs else "reverse"
    return mode


def jacobian(target: Target, inputs: dict[str, np.ndarray], *, wrt: list[str],
             max_elements: int = DEFAULT_MAX_ELEMENTS, progress=None,
             mode: str = "auto") -> Derivatives:
    """The Jacobian of the output with respect to each input in ``wrt``.

    ``mode``: ``reverse`` pushes a cotangent per output element through the
    graph (one batched walk: the rows), ``forward`` a tangent per input element
    (the columns, ``transforms.jacfwd``), ``auto`` whichever is fewer. Where
    forward mode gives non-finite numbers (a rule not differentiable twice at
    this point: forward mode differentiates the reverse rules once more) and
    reverse mode does not, the answer is reverse mode's, and ``mode`` says so.
    """
    from . import transforms

    _nothing_to_differentiate("Jacobian", wrt)
    value = evaluate(target, inputs, wrt=wrt, no_grad=True, record=True,
                     max_elements=max_elements)
    n = sum(inputs[k].size for k in wrt)
    how = jacobian_mode(mode, n, value.value.size)
    _derivative_size("Jacobian", value.value.size, inputs, wrt, max_elements)
    # Forward mode walks the graph of J^T u (about 3 times f's), once per column.
    rows, factor = (n, 3) if how == "forward" else (value.value.size, 1)
    _walk_work("Jacobian", rows, value.output, factor, max_elements)
    # An empty input's block is empty (and every block of an empty output): only
    # the other inputs are walked.
    live = [k for k in wrt if inputs[k].size] if value.value.size else []
    empty = {k: np.zeros(value.value.shape + inputs[k].shape) for k in wrt if k not in live}
    if not live:
        return Derivatives(value.value, empty, list(value.warnings), value, how)
    f, dtype = _as_function(target, inputs, live, max_elements)
    warnings = list(value.warnings)

    def rows_fit(out: Tensor | None = None) -> None:  # forward mode turning reverse
        out = value.output if out is None else out
        try:
            _walk_work("Jacobian in reverse mode (where forward mode cannot answer)",
                       out.size, out, 1, max_elements)
        except EvaluationError as exc:
            raise _RowsRefused(str(exc), hint=exc.hint) from None

    def run(method: str, used: list | None = None):
        with np.errstate(all="ignore"), _default_dtype(dtype), _graph_of(target), \
                transforms.reporting(progress):
            jac = transforms.jacobian(f, argnums=tuple(range(len(live))), method=method,
                                      _used=used, _before_rows=rows_fit)(
                *(inputs[k] for k in live))
        got = {k: np.asarray(j._data) for k, j in zip(live, jac)}
        return {k: got[k] if k in got else empty[k] for k in wrt}

    if how == "reverse":
        blocks = run("rows")
    else:
        blocks, how = _forward_jacobian(run, mode, warnings, rows_fit)
    if how == "forward" and not all(finite(b) for b in blocks.values()):
        rows_fit()
        again = run("rows")

        def bad(bs):
            return sum(int((~np.isfinite(b)).sum()) for b in bs.values())

        if mode == "auto" or bad(again) < bad(blocks):
            if mode == "forward":
                warnings.append("forward mode gave non-finite numbers at this point "
                                "(an op's rule is not differentiable twice here); the "
                                "Jacobian is reverse mode's")
            blocks, how = again, "reverse"
    if value.cuts and live:
        # u^T J against central differences of <u, f>, u random
        u = np.random.default_rng(0).uniform(0.5, 2.0, value.value.shape)
        nd = value.value.ndim
        grads = {k: np.tensordot(u, blocks[k], axes=nd) for k in live}
        _verify_cut(target, inputs, live, u, grads, value.cuts, max_elements,
                    warnings, what="jacobian")
    warnings += [nonfinite(f"jacobian.{k}", b) for k, b in blocks.items() if not finite(b)]
    return Derivatives(value.value, blocks, warnings, value, how)


class _RowsRefused(EvaluationError):
    """Reverse mode's rows, in place of forward mode's columns, over the limit."""


def _forward_jacobian(run, mode: str, warnings: list[str],
                      rows_fit) -> tuple[dict, str]:
    """The Jacobian in forward mode, or reverse mode's where forward mode
    cannot answer: the blocks and the mode they were computed in.

    Forward mode (by transposition) runs every op's gradient rule on Tensors
    and differentiates it once more; a rule that cannot be (it raises) costs
    ``auto`` nothing: it takes the rows, which need first derivatives only; an
    explicit ``--mode forward`` says so and names reverse mode. Where a nan or
    inf met a zero tangent, forward mode cannot tell 0 from nan; the Jacobian
    is then reverse mode's, in either case.
    """
    used: list = []
    try:
        blocks = run("columns", used)
    except _RowsRefused:
        raise
    except (EvaluationError, ValueError, ArithmeticError) as exc:
        if mode == "forward":
            raise EvaluationError(
                f"forward mode: {exc}",
                hint="forward mode differentiates each op's gradient rule once more, "
                     "which gradcli cannot do here; --mode reverse needs first "
                     "derivatives only") from exc
        rows_fit()
        return run("rows"), "reverse"
    if used != ["rows"]:
        return blocks, "forward"
    if mode == "forward":
        warnings.append("forward mode cannot tell 0 from nan at this point (a nan or "
                        "inf met a zero tangent); the Jacobian is reverse mode's")
    return blocks, "reverse"


def hessian(target: Target, inputs: dict[str, np.ndarray], *, wrt: list[str],
            max_elements: int = DEFAULT_MAX_ELEMENTS, progress=None) -> Derivatives:
    """The Hessian of a scalar output, one block per pair of inputs in ``wrt``."""
    from . import transforms

    _nothing_to_differentiate("Hessian", wrt)
    value = evaluate(target, inputs, wrt=wrt, no_grad=True, record=True,
                     max_elements=max_elements)
    if value.value.size != 1:
        raise EvaluationError(
            f"the Hessian needs a single-number output, not shape {value.value.shape}",
            hint="wrap the expression in sum(...), or use 'gradcli jacobian'",
        )
    total = sum(inputs[n].size for n in wrt)
    _derivative_size("Hessian", total, inputs, wrt, max_elements)
    _walk_work("Hessian", total, value.output, 3, max_elements)
    # A block with an empty input is empty; only the other inputs are walked.
    live = [n for n in wrt if inputs[n].size]
    blocks = {a: {b: np.zeros(inputs[a].shape + inputs[b].shape) for b in wrt}
              for a in wrt}
    if not live:
        return Derivatives(value.value, blocks, list(value.warnings), value)
    # (a path through a converted number may be missing at second order even
    # where the gradient at the point is right: x0 - float(x0) is 0 there)
    refuse_cuts(target, value.cuts, "its Hessian")
    f, dtype = _as_function(target, inputs, live, max_elements)
    with np.errstate(all="ignore"), _default_dtype(dtype), _graph_of(target), \
            transforms.reporting(progress):
        hess = transforms.hessian(f, argnums=tuple(range(len(live))))(
            *(inputs[n] for n in live))
    for i, a in enumerate(live):
        for j, b in enumerate(live):
            blocks[a][b] = np.asarray(hess[i][j]._data)
    warnings = list(value.warnings)
    warnings += [nonfinite(f"hessian.{a}.{b}", blocks[a][b]) for a in wrt for b in wrt
                 if not finite(blocks[a][b])]
    return Derivatives(value.value, blocks, warnings, value)


def hessian_matrix(d: Derivatives, inputs: dict[str, np.ndarray], wrt: list[str]):
    """All blocks as one square matrix over the flattened inputs."""
    sizes = [inputs[n].size for n in wrt]
    return np.block([[d.blocks[a][b].reshape(sa, sb) for b, sb in zip(wrt, sizes)]
                     for a, sa in zip(wrt, sizes)])


@dataclass
class HessianSummary:
    symmetric: bool  # to rounding: max |H - H.T| <= 1e-12 max |H| (finite entries;
    #                  an inf must meet the same inf, and nan is never symmetric)
    asymmetry: float  # max |H - H.T| / max |H|
    eigenvalues: np.ndarray | None = None  # for a single input
    curvature: str = ""  # what the eigenvalues say: convex, concave, a saddle


def hessian_summary(d: Derivatives, inputs: dict[str, np.ndarray],
                    wrt: list[str]) -> HessianSummary:
    """Symmetry, and for a single input the eigenvalues with a convexity hint."""
    h = hessian_matrix(d, inputs, wrt)
    with np.errstate(all="ignore"):
        # inf mirrored by the same inf is symmetric (inf == inf); nan never is, and
        # an inf against anything else is an infinite asymmetry.
        finite = np.isfinite(h) & np.isfinite(h.T)
        scale = max(float(np.max(np.abs(h[finite]))) if finite.any() else 0.0,
                    np.finfo(float).tiny)
        mismatch = ~finite & ~(h == h.T)
        asym = (math.inf if mismatch.any() else
                float(np.max(np.abs(np.where(finite, h - h.T, 0.0)))) / scale
                if h.size else 0.0)
    summary = HessianSummary(bool(not np.isnan(h).any() and asym <= 1e-12), asym)
    if len(wrt) == 1 and summary.symmetric and h.size and np.isfinite(h).all():
        eig = np.linalg.eigvalsh((h + h.T) / 2)
        tol = 1e-12 * scale * len(eig)
        summary.eigenvalues = eig
        summary.curvature = (
            "positive definite: locally strictly convex" if eig.min() > tol else
            "positive semidefinite: locally convex (flat directions)" if eig.min() >= -tol
            else "negative definite: locally strictly concave" if eig.max() < -tol else
            "negative semidefinite: locally concave" if eig.max() <= tol else
            "indefinite: a saddle")
    return summary


# -- many points -------------------------------------------------------------
def batchable(target: Target, rows: list[dict[str, np.ndarray]]) -> bool:
    """Rows can be evaluated as one: an expression of elementwise ops on scalars."""
    from .parse import walk

    if target.tree is None or not rows:
        return False
    names = set(rows[0])
    if any(set(r) != names or any(np.ndim(v) for v in r.values()) for r in rows):
        return False
    return all(OPS[n.op].elementwise for n in walk(target.tree) if isinstance(n, Call))


def _kink_rows(out: Tensor, k: int) -> set[int]:
    rows: set[int] = set()
    for node in _nodes(out._grad_fn):
        test = node.op.extra.get("at_kink")
        if test is None or node.args is None:
            continue
        arrays = [a._data if isinstance(a, Tensor) else np.asarray(a) for a in node.args]
        hit = np.broadcast_to(np.asarray(test(*arrays, **node.params)), (k,))
        rows.update(np.flatnonzero(hit).tolist())
    return rows


def evaluate_rows(target: Target, rows: list[dict[str, np.ndarray]], *, wrt, no_grad: bool,
                  max_elements: int) -> list[Result | EvaluationError | UsageError]:
    """Each row's Result (or its error), evaluating the rows as one where possible."""
    def single(r):
        try:
            return evaluate(target, r, wrt=wrt, no_grad=no_grad, max_elements=max_elements)
        except (EvaluationError, UsageError) as exc:
            return exc

    if not batchable(target, rows):
        return [single(r) for r in rows]
    k = len(rows)
    stacked = {n: np.array([r[n] for r in rows]) for n in rows[0]}
    try:
        batch = evaluate(target, stacked, wrt=wrt, grad_output="ones", no_grad=no_grad,
                         max_elements=max_elements)
    except (EvaluationError, UsageError):
        return [single(r) for r in rows]
    value = np.broadcast_to(batch.value, (k,))
    grads = {n: np.broadcast_to(g, (k,)) for n, g in batch.grads.items()}
    # Rows with something to say (non-finite numbers, kinks) are evaluated again
    # alone, so that their warnings and notes name the op exactly as eval does.
    again = _kink_rows(batch.output, k) if batch.notes else set()
    bad = ~np.isfinite(value)
    for g in grads.values():
        bad |= ~np.isfinite(g)
    again.update(np.flatnonzero(bad).tolist())
    out: list[Result | EvaluationError | UsageError] = []
    for i, r in enumerate(rows):
        if i in again:
            out.append(single(r))
        else:
            out.append(Result(value[i].copy(), {n: g[i].copy() for n, g in grads.items()},
                              batch.output))
    return out
