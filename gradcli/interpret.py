"""The one interpreter of a parsed expression, and the one replay of a recorded graph.

Both walk their source once and leave every meaning to a ``Backend``: the engine's
Tensors (``backends.TensorBackend``), plain numpy (``backends.NumpyBackend``) or sympy
(``symbolic.SympyBackend``). ``detach`` is special here only: a recorded graph holds
no detach, just its value. Errors are the backend's, unlocated: the place that knows
the text (``TensorBackend``) names the op and column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .engine.graph import topological_order
from .engine.tensor import Tensor
from .parse import Call, Const, Expr, Seq, Var

__all__ = ["Backend", "interpret", "replay"]


class Backend(Protocol):
    """What ``interpret`` and ``replay`` compute with."""

    def literal(self, value: float) -> Any: ...  # a number written in the expression

    def const(self, value: Any) -> Any: ...  # a value a graph holds fixed, as recorded

    def detach(self, value: Any, node: Call) -> Any: ...  # value held constant

    def apply(self, name: str, args: list, params: dict, node: Call | None) -> Any:
        """The op ``OPS[name]`` on ``args`` as it takes them (one list for a sequence
        op); ``node`` is the tree node, None in a replay."""


def interpret(tree: Expr, backend: Backend, env: Mapping[str, Any]) -> Any:
    """``tree`` (``parse.Expr``) evaluated by ``backend``, inputs taken from ``env``.

    >>> from gradcli.backends import NumpyBackend
    >>> tree = Call("mul", (Const(2.0), Call("sin", (Var("x"),))))
    >>> float(interpret(tree, NumpyBackend(), {"x": 0.0}))
    0.0
    """

    # Iterative, children left to right before their parent (a long chain
    # a + b + c + ... is a deep tree); each value is dropped once its parent has it.
    values: list = []
    todo: list = [(tree, False)]
    while todo:
        node, ready = todo.pop()
        match node:
            case Const(value=v):
                values.append(backend.literal(v))
            case Var(name=n):
                values.append(env[n])
            case Seq(items=kids) | Call(args=kids) if not ready:
                todo.append((node, True))
                todo.extend((k, False) for k in reversed(kids))
            case Seq(items=kids) | Call(args=kids):
                args = values[len(values) - len(kids):]
                del values[len(values) - len(kids):]
                if isinstance(node, Seq):
                    values.append(args)
                elif node.op == "detach":
                    values.append(backend.detach(args[0], node))
                else:
                    values.append(backend.apply(node.op, args, node.params, node))
            case _:
                raise TypeError(f"unexpected tree node {node!r}")
    return values[0]


def replay(graph: tuple[Tensor, Mapping[str, Tensor]], backend: Backend,
           env: Mapping[str, Any]) -> Any:
    """The graph ``(output, leaves)`` recorded under ``graph.keep_args()``, replayed by
    ``backend`` with each named leaf taken from ``env``: the path taken at the point,
    every other value (constants, detached values) held as recorded.

    >>> import numpy as np
    >>> import gradcli as gc
    >>> from gradcli.backends import NumpyBackend
    >>> from gradcli.engine.graph import keep_args
    >>> x = gc.tensor([1.0, 2.0], requires_grad=True)
    >>> with keep_args():
    ...     y = (x * x).sum() if x.sum() > 0 else x.sum()
    >>> float(replay((y, {"x": x}), NumpyBackend(), {"x": np.array([3.0, 4.0])}))
    25.0
    """
    output, leaves = graph
    names = {id(t): n for n, t in leaves.items()}
    if id(output) in names:
        return env[names[id(output)]]
    root = output._grad_fn
    if root is None:
        return backend.const(output._data)
    order = list(reversed(topological_order(root)))  # inputs before outputs
    if any(node.args is None for node in order):
        raise ValueError("the graph was recorded without keep_args(), so it cannot be "
                         "replayed")
    values: dict[int, Any] = {}

    def arg(a):
        if isinstance(a, Tensor):
            if id(a) in names:
                return env[names[id(a)]]
            if a._grad_fn is not None:
                return values[id(a._grad_fn)]
            a = a._data
        return backend.const(a)

    for node in order:
        args = [arg(a) for a in node.args]
        args = [args] if node.op.nin < 0 else args
        values[id(node)] = backend.apply(node.op.name, args, dict(node.params), None)
    return values[id(root)]
