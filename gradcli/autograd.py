"""``gc.autograd``: PyTorch's functional autograd API, ``grad`` and ``backward``.

``grad(outputs, inputs)`` returns the gradients instead of accumulating them:
no ``.grad`` changes. With ``create_graph=True`` they carry a graph of their own,
so they can be differentiated again (a second ``grad`` gives second
derivatives). The transforms (``gc.grad``, ``gc.hessian``, ...) stand on the
same walk (``engine.backward.gradients``).

>>> import gradcli as gc
>>> x = gc.tensor(3.0, dtype=gc.float64, requires_grad=True)
>>> (dx,) = gc.autograd.grad(x ** 3, x, create_graph=True)
>>> dx
tensor(27., dtype=gradcli.float64, grad_fn=<MulBackward0>)
>>> gc.autograd.grad(dx, x)
(tensor(18., dtype=gradcli.float64),)
>>> x.grad is None
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .engine import backward as _backward
from .engine.tensor import HOOKS as _HOOKS
from .engine.tensor import Tensor

__all__ = ["backward", "grad"]

_UNUSED = (
    "One of the differentiated Tensors appears to not have been used in the graph. "
    "Set allow_unused=True if this is the desired behavior."
)


def _tensors(value, what: str) -> tuple[Tensor, ...]:
    items = (value,) if isinstance(value, Tensor) else tuple(value)
    for t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} must be Tensors, not {type(t).__name__}")
    return items


def _seeds(outputs, grad_outputs, create_graph: bool, what: str) -> list:
    """One seed per output: ``grad_outputs``' entries, or 1 for a one-element output."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)) or not isinstance(
        grad_outputs, Sequence
    ):
        grad_outputs = (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"{what} has {len(grad_outputs)} tensors but there are {len(outputs)} "
            "outputs: give one per output (None for a one-element output)"
        )
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a "
                "grad_fn"
            )
        dtype = out.dtype if out.dtype.kind == "f" else np.dtype(np.float64)
        if g is None:
            if out.size != 1:
                raise RuntimeError(
                    "grad can be implicitly created only for scalar outputs; output "
                    f"{i} has shape {out.shape}: pass {what}"
                )
            seed = np.ones(out.shape, dtype=dtype)
        elif isinstance(g, Tensor) and create_graph:
            seed = g  # the result may depend on it: keep its graph
        else:
            seed = np.array(g._data if isinstance(g, Tensor) else g, dtype=dtype)
        if seed.shape != out.shape:
            raise RuntimeError(
                f"Mismatch in shape: {what}[{i}] has a shape of {seed.shape} and "
                f"output[{i}] has a shape of {out.shape}."
            )
        if create_graph and not isinstance(seed, Tensor):
            seed = Tensor._make(seed)
        seeds.append(seed)
    return seeds


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to each of ``inputs``, as a tuple.

    The sum over outputs of ``<grad_output, d output / d input>``; a one-element
    output's ``grad_output`` defaults to 1. Inputs may be leaves or any tensor
    of the graph. An input the outputs do not depend on is an error, or None
    with ``allow_unused=True``. The graph is freed unless ``retain_graph``
    (default: ``create_graph``). No ``.grad`` is written.

    >>> import gradcli as gc
    >>> a = gc.tensor([1.0, 2.0], requires_grad=True)
    >>> gc.autograd.grad(a * a, a, grad_outputs=gc.tensor([1.0, 10.0]))
    (tensor([ 2., 40.]),)
    """
    outputs = _tensors(outputs, "outputs")
    inputs = _tensors(inputs, "inputs")
    if not inputs:
        raise RuntimeError("grad requires at least one input")
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    seeds = _seeds(outputs, grad_outputs, create_graph, "grad_outputs")
    got = _backward.gradients(outputs, seeds, inputs, retain_graph=retain_graph,
                              create_graph=create_graph)
    if _HOOKS:  # a leaf's hooks see every gradient computed for it, as in PyTorch
        from .engine.torch_api import leaf_hooks

        got = [g if g is None or x._grad_fn is not None else leaf_hooks(x, g)
               for x, g in zip(inputs, got)]
    result = []
    for x, g in zip(inputs, got):
        if g is None:
            if not allow_unused:
                raise RuntimeError(_UNUSED)
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g if create_graph else g.detach())
        else:  # a copy: the walk may hand back a seed or share one array
            result.append(Tensor._make(np.array(np.broadcast_to(g, x.shape), dtype=x.dtype)))
    return tuple(result)


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Tensor | Sequence[Tensor] | None = None,
) -> None:
    """Accumulate the gradients of ``tensors`` into the leaves' ``.grad``, as PyTorch.

    Several outputs go through one walk (with ``grad_tensors``, one per output);
    ``inputs``: accumulate into these tensors only.

    >>> import gradcli as gc
    >>> a = gc.tensor(2.0, requires_grad=True)
    >>> b = gc.tensor(3.0, requires_grad=True)
    >>> gc.autograd.backward([a * b, a * a], inputs=[a])
    >>> a.grad, b.grad
    (tensor(7.), None)
    """
    tensors = _tensors(tensors, "tensors")
    if retain_graph is None:
        retain_graph = create_graph
    seeds = _seeds(tensors, grad_tensors, create_graph, "grad_tensors")
    if inputs is None:
        targets = _leaves(tensors)
    else:
        targets = list({id(x): x for x in _tensors(inputs, "inputs")}.values())
        if not targets:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        for x in targets:
            if not x.requires_grad:
                raise RuntimeError(
                    "One of the differentiated Tensors does not require grad"
                )
    got = _backward.gradients(tensors, seeds, targets, retain_graph=retain_graph,
                              create_graph=create_graph, prune=inputs is not None)
    for x, g in zip(targets, got):  # an assigned .grad that is refused: none changed
        if g is not None and x.grad is not None:
            x._check_grad()
    for x, g in zip(targets, got):
        if g is not None:
            x._accumulate(g, create_graph)


def _leaves(tensors) -> list[Tensor]:
    """Every leaf requiring grad below ``tensors`` (the outputs themselves included)."""
    from .engine.graph import Node, topological_order

    found = {id(t): t for t in tensors if t._grad_fn is None and t.requires_grad}
    nodes = [t._grad_fn for t in tensors if t._grad_fn is not None]
    if nodes:
        for node in topological_order(*nodes):
            for p in node.parents:
                if p is not None and not isinstance(p, Node):
                    found.setdefault(id(p), p)
    return list(found.values())
