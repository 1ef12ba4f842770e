"""What ``interpret`` and ``replay`` compute with: the engine's Tensors, or plain numpy.

``TensorBackend`` runs the engine (recording a graph when gradients are wanted),
refuses an op whose result would pass ``--max-elements`` before it allocates, labels
every graph node with the text it came from, and names the op and column of a
failure. ``NumpyBackend`` runs the same forwards on plain arrays in the same dtype,
for finite differences: it must compute what the engine computes, bit for bit.
The third backend, sympy's, is ``symbolic.SympyBackend``.
"""

from __future__ import annotations

import math

import numpy as np

from .engine.ops import OPS
from .engine.tensor import Tensor, get_default_dtype
from .errors import EvaluationError
from .parse import source

__all__ = ["NumpyBackend", "TensorBackend", "engine_dtype", "finite"]


def engine_dtype(inputs) -> np.dtype:
    """The dtype the engine computes in: its first float input's (float64 without
    one; integer inputs are --const data such as labels)."""
    return next((a.dtype for a in inputs.values() if np.asarray(a).dtype.kind == "f"),
                np.dtype(np.float64))


def finite(a) -> bool:
    """No inf or nan in ``a`` (always true of a non-float array)."""
    a = np.asarray(a)
    return a.dtype.kind not in "fc" or bool(np.isfinite(a).all())


def _shape(v) -> tuple[int, ...]:
    return v.shape if isinstance(v, Tensor) else np.shape(v)


class _Arrays:
    """Literals as arrays of the computation's dtype: numpy arithmetic then never
    overflows into an exception (2**2000 is inf) nor changes dtype."""

    dtype: np.dtype

    def literal(self, value: float):
        return np.asarray(value, dtype=self.dtype)

    def const(self, value):
        return value


class TensorBackend(_Arrays):
    """The engine: each op runs as ``OPS[name](...)``, recorded when a graph is on.

    With ``trace``, ``first_bad`` names the first op whose result is non-finite from
    finite arguments (constants included, which the graph does not record).
    """

    def __init__(self, text: str, max_elements: int, trace: bool = False) -> None:
        self.text = text
        self.max_elements = max_elements
        self.trace = trace
        self.first_bad: str | None = None
        self.dtype = get_default_dtype()

    def detach(self, value, node):
        return self.apply("detach", [value], {}, node)

    def where(self, node) -> str:
        """The op's place in messages: its text and column (a replay has neither)."""
        if node is None:
            return "a replayed op"
        return f"{source(self.text, node)!r} (column {node.col + 1})"

    def apply(self, name: str, args: list, params: dict, node):
        o = OPS[name]
        flat = args[0] if o.nin < 0 else args
        shapes = [_shape(v) for v in flat]
        try:
            shape = o.out_shape([shapes] if o.nin < 0 else shapes, params)
        except (ValueError, IndexError, TypeError):
            shape = None  # the op itself will say what is wrong
        if shape is not None and math.prod(shape) > self.max_elements:
            raise EvaluationError(
                f"{self.where(node)} would make an array of {math.prod(shape):,} "
                f"elements (shape {shape}), over the limit of {self.max_elements:,}",
                hint="raise it with --max-elements N if you mean it",
            )
        try:
            out = o(*args, **params)
        except (ValueError, IndexError, TypeError, ZeroDivisionError,
                np.linalg.LinAlgError) as exc:
            msg = str(exc)
            while msg.startswith(f"{name}: "):  # numpy's own messages may name it too
                msg = msg[len(name) + 2:]
            raise EvaluationError(f"{self.where(node)}: {name}: {msg}") from exc
        if out._grad_fn is not None and node is not None:
            out._grad_fn.label = source(self.text, node)
        if self.trace and self.first_bad is None and not finite(out._data) and all(
            finite(getattr(v, "_data", v)) for v in flat
        ):
            self.first_bad = f"{name} at {source(self.text, node)!r}" if node else name
        return out


class NumpyBackend(_Arrays):
    """Each op's own forward on plain arrays, literals in ``dtype`` (the engine's).

    ``detach(...)`` keeps the value of the first evaluation: run it at the point
    first. With a ``kinks`` list, the kinks that the arguments sit on are added to it.

    >>> from gradcli.interpret import interpret
    >>> from gradcli.parse import Call, Const, Var
    >>> b = NumpyBackend(np.float32)
    >>> interpret(Call("mul", (Var("x"), Const(0.1))), b, {"x": np.float32(3)}).dtype
    dtype('float32')
    """

    def __init__(self, dtype=np.float64, kinks: list[str] | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.kinks = kinks
        self.frozen: dict[int, object] = {}

    def detach(self, value, node):
        return self.frozen.setdefault(id(node), value)

    def apply(self, name: str, args: list, params: dict, node):
        o = OPS[name]
        out = o.run(*args, **params)
        if self.kinks is not None:
            kink = o.kink_at(args, params)
            if kink:
                at = node is not None and node.end_col
                where = f" at column {node.col + 1}" if at else ""
                self.kinks.append(f"{name}{where}: {kink}")
        return out._data if isinstance(out, Tensor) else out
