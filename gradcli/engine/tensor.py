"""Tensor: an ndarray with PyTorch's autograd interface.

Math methods and operators are attached by ``ops.py`` from the op registry, so
each op is declared exactly once. This module holds what is not an op: the
data, creation, ``backward``, ``.grad`` accumulation and PyTorch's repr.
"""

from __future__ import annotations

import math

import numpy as np

from . import graph

HOOKS: dict = {}  # id(leaf) -> (weakref to it, its register_hook()s)
_DEFAULT = {"dtype": np.dtype(np.float32)}  # PyTorch's default float dtype


def get_default_dtype() -> np.dtype:
    return _DEFAULT["dtype"]


def set_default_dtype(dtype) -> None:
    """Set the float dtype of tensors made from Python floats (float32 or float64)."""
    d = np.dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"default dtype must be a float dtype, not {d.name}")
    _DEFAULT["dtype"] = d


class Tensor:
    """An ndarray with ``requires_grad``, ``grad``, ``grad_fn`` and ``backward``."""

    # ``_grad_fn``: the Node that made it (None for a leaf), what the engine reads;
    # ``grad_fn`` is its typed view for users (graph.py's docstring says why).
    __slots__ = ("_data", "requires_grad", "grad", "_grad_fn", "_pending", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor

    def __init__(self, data, requires_grad: bool = False) -> None:
        data = data._data if isinstance(data, Tensor) else np.asarray(data)
        self._data = data
        self.grad = None
        self._grad_fn = None
        self._pending = None  # a backward walk's gradient, on its way to .grad
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, grad_fn=None):
        t = object.__new__(cls)
        t._data = data
        t.grad = t._pending = None
        t._grad_fn = grad_fn
        t.requires_grad = grad_fn is not None
        return t

    @property
    def grad_fn(self):
        """The op that made this tensor, as PyTorch shows it (its class is named
        ``MulBackward0`` etc.; ``name()``, ``next_functions``), or None for a leaf."""
        node = self._grad_fn
        return None if node is None else node.public()

    # -- data -----------------------------------------------------------
    def _buffer(self) -> np.ndarray:
        """``_data`` as an ndarray, kept: what aliases (``.data``, ``detach``,
        ``numpy``) share, so that an in-place change through one reaches all."""
        d = self._data
        if type(d) is not np.ndarray:
            d = self._data = np.asarray(d)  # a numpy scalar (a 0-d op result)
        return d

    @property
    def data(self) -> Tensor:
        """The same memory as a Tensor outside the graph (as PyTorch's ``.data``):
        ``p.data -= lr * p.grad.data`` updates ``p`` without being recorded."""
        return Tensor._make(self._buffer())

    @data.setter
    def data(self, value) -> None:
        self._data = np.asarray(value._data if isinstance(value, Tensor) else value)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    def numpy(self) -> np.ndarray:
        """The values as an ndarray sharing this tensor's memory."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
        return self._buffer()

    def tolist(self):
        if self.requires_grad and graph.MODE.cuts is not None:
            graph.note_cut(".tolist()")
        return self._data.tolist()

    def item(self):
        if self._data.size != 1:
            raise ValueError(
                f"a Tensor with {self._data.size} elements cannot be converted to "
                "a Python number"
            )
        if self.requires_grad and graph.MODE.cuts is not None:
            graph.note_cut(".item()")
        return self._data.item() if self._data.ndim else self._data.item()

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad and graph.MODE.enabled:
            # numpy would go on with plain numbers: the gradient silently lost.
            raise RuntimeError(
                "a Tensor that requires grad cannot become a numpy array while "
                "gradients are recorded (its gradient would be lost): for a list of "
                "Tensors use gc.stack([...]) (gc functions stack lists themselves); "
                "for values only use .detach() (np.asarray(t.detach()))"
            )
        if self.requires_grad and graph.MODE.cuts is not None:
            graph.note_cut("np.asarray()")  # allowed under no_grad
        d = np.asarray(self._data)
        if copy:
            d = d.copy()
        return d if dtype is None else d.astype(dtype, copy=False)

    def __len__(self) -> int:
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def _one(self, what: str):
        if self._data.size != 1:
            raise RuntimeError(
                f"{what} of a Tensor with {self._data.size} values is ambiguous; "
                "use .all() or .any()"
            )
        return self._data.item() if self._data.ndim == 0 else self._data.ravel()[0]

    def __bool__(self) -> bool:
        return bool(self._one("Boolean value"))

    # bool() and comparisons are control flow, not cuts: only these are noted
    def __float__(self) -> float:
        if self.requires_grad and graph.MODE.cuts is not None:
            graph.note_cut("float()")
        return float(self._one("float()"))

    def __int__(self) -> int:
        if self.requires_grad and graph.MODE.cuts is not None:
            graph.note_cut("int()")
        return int(self._one("int()"))

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self._one("index"))

    __hash__ = object.__hash__  # == is elementwise, identity stays hashable

    def __iter__(self):
        if not self._data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._data)))

    # -- autograd -------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(
                "only Tensors of floating point dtype can require gradients "
                f"(this one is {self._data.dtype.name}); make it with a float "
                "value or dtype=gc.float64"
            )
        if not requires_grad and self._grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; "
                "use .detach() to get a tensor outside the graph"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """The same values (the same memory), cut from the graph: gradients stop."""
        return Tensor._make(self._buffer())

    def _check_grad(self) -> None:
        """Refuse a ``.grad`` the user assigned that is not a Tensor of this
        tensor's shape and dtype (PyTorch refuses it at the assignment; ``grad``
        is a plain slot, written for every op, so it is checked here, before a
        gradient is added to it)."""
        cur = self.grad
        if cur is None:
            return
        if not isinstance(cur, Tensor):
            raise TypeError(
                "assigned grad expected to be a Tensor or None but got grad of "
                f"{type(cur).__name__} (found when backward() was to add into .grad)"
            )
        d, c = self._data, cur._data
        if np.shape(c) != d.shape:
            raise RuntimeError(
                f"assigned grad has data of a different size: .grad has shape "
                f"{tuple(np.shape(c))}, the tensor {d.shape} (found when backward() "
                "was to add into .grad)"
            )
        if c.dtype != d.dtype:
            raise RuntimeError(
                f"assigned grad has data of a different type: .grad is "
                f"{c.dtype.name}, the tensor {d.dtype.name} (found when backward() "
                "was to add into .grad)"
            )

    def _accumulate(self, g, create_graph: bool, fresh: bool = False) -> None:
        """Add ``g`` into ``.grad`` (leaves only), out of place.

        ``fresh`` says the rule made ``g`` itself (not passed its input through),
        so that an owned, writable array can be kept without a copy.
        """
        if self.grad is not None:
            self._check_grad()
        if HOOKS and id(self) in HOOKS:
            from .torch_api import leaf_hooks

            g = leaf_hooks(self, g)
        if isinstance(g, Tensor):
            if not create_graph:
                g = g.detach()
            if g._data.dtype != self._data.dtype:
                # a rule's float64 constant must not change .grad's dtype (as PyTorch)
                from .torch_api import _cast_to

                g = _cast_to(g, self._data.dtype)
            self.grad = g if self.grad is None else self.grad + g
            return
        dtype = self._data.dtype
        if self.grad is None:
            # Own the array: rules may pass the incoming gradient through or
            # return a read-only broadcast view, and .grad.zero_() writes.
            keep = (
                fresh
                and type(g) is np.ndarray
                and g.dtype == dtype
                and g.flags.owndata
                and g.flags.writeable
            )
            self.grad = Tensor._make(g if keep else np.array(g, dtype=dtype))
        else:
            self.grad = Tensor._make((self.grad._data + g).astype(dtype, copy=False))

    def backward(self, gradient=None, retain_graph=None, create_graph=False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf requiring grad.

        A one-element tensor seeds 1; any other needs ``gradient`` of its shape
        (the vector of the vector-Jacobian product). ``inputs`` (a tensor or a
        sequence of them): accumulate into these tensors' ``.grad`` only.
        """
        from .backward import run_backward  # (backward.py imports this module)

        if not self.requires_grad:
            raise RuntimeError(
                "this tensor does not require grad and has no grad_fn: nothing to "
                "differentiate (make the inputs with requires_grad=True, and do not "
                "compute under gc.no_grad())"
            )
        shape = self._data.shape
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    "grad can be implicitly created only for scalar outputs; this "
                    f"output has shape {shape}. Pass gradient= a tensor of that "
                    "shape (the vector of a vector-Jacobian product), reduce it first "
                    "(y.sum().backward()), or use gc.jacobian for every gradient"
                )
            seed = np.ones(shape, dtype=self._data.dtype)
        else:
            gdata = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient)
            if gdata.shape != shape:
                raise RuntimeError(
                    f"gradient has shape {gdata.shape} but the output has shape "
                    f"{shape}: they must match"
                )
            if create_graph and isinstance(gradient, Tensor):
                seed = gradient
            else:
                seed = np.array(gdata, dtype=self._data.dtype, copy=True)
        if retain_graph is None:
            retain_graph = create_graph
        if inputs is not None:
            from .backward import accumulate_into

            accumulate_into(self, seed, inputs, retain_graph=retain_graph,
                            create_graph=create_graph)
            return
        if self._grad_fn is None:
            self._accumulate(seed, create_graph)
            return
        if create_graph and not isinstance(seed, Tensor):
            seed = Tensor._make(seed)
        with graph.set_grad_enabled(create_graph):
            from .torch_api import retain_hook

            run_backward(
                self._grad_fn,
                seed,
                retain_graph=retain_graph,
                create_graph=create_graph,
                wrap=Tensor._make,
                hook=retain_hook(),
            )

    # -- display --------------------------------------------------------
    def __repr__(self) -> str:
        return format_tensor(self)

    __str__ = __repr__


# -- PyTorch's print format (precision 4, threshold 1000, edgeitems 3, width 80) --
_PRECISION, _THRESHOLD, _EDGE, _WIDTH = 4, 1000, 3, 80


class _Formatter:
    def __init__(self, values: np.ndarray) -> None:
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.ravel()
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
            return
        with np.errstate(all="ignore"):
            nz = flat[np.isfinite(flat) & (flat != 0)]
        if nz.size == 0:
            return
        nz_abs = np.abs(nz.astype(np.float64))
        lo, hi = float(nz_abs.min()), float(nz_abs.max())
        vals = nz.tolist()
        self.int_mode = all(v == math.ceil(v) for v in vals)
        if self.int_mode:
            if hi / lo > 1000.0 or hi > 1.0e8:
                self.sci_mode = True
                widths = [len(f"{v:.{_PRECISION}e}") for v in vals]
            else:
                widths = [len(f"{v:.0f}") + 1 for v in vals]
        elif hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4:
            self.sci_mode = True
            widths = [len(f"{v:.{_PRECISION}e}") for v in vals]
        else:
            widths = [len(f"{v:.{_PRECISION}f}") for v in vals]
        self.max_width = max(self.max_width, *widths)

    def format(self, v) -> str:
        if self.floating:
            if self.sci_mode:
                s = f"{v:{self.max_width}.{_PRECISION}e}"
            elif self.int_mode:
                s = f"{v:.0f}"
                if not (math.isinf(v) or math.isnan(v)):
                    s += "."
            else:
                s = f"{v:.{_PRECISION}f}"
        else:
            s = str(v)
        return " " * (self.max_width - len(s)) + s


def _summary(a: np.ndarray) -> np.ndarray:
    """The values PyTorch shows of a large tensor (edge items of every axis)."""
    if a.ndim == 0:
        return a
    if a.shape[0] > 2 * _EDGE:
        parts = [_summary(x) for x in a[:_EDGE]] + [_summary(x) for x in a[-_EDGE:]]
    else:
        parts = [_summary(x) for x in a]
    return np.stack(parts) if parts else a


def _body(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        per_line = max(1, (_WIDTH - indent) // (fmt.max_width + 2))
        if summarize and a.shape[0] > 2 * _EDGE:
            items = (
                [fmt.format(v) for v in a[:_EDGE].tolist()]
                + [" ..."]
                + [fmt.format(v) for v in a[-_EDGE:].tolist()]
            )
        else:
            items = [fmt.format(v) for v in a.tolist()]
        lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"
    if summarize and a.shape[0] > 2 * _EDGE:
        rows = (
            [_body(a[i], indent + 1, summarize, fmt) for i in range(_EDGE)]
            + ["..."]
            + [_body(a[i], indent + 1, summarize, fmt) for i in range(len(a) - _EDGE, len(a))]
        )
    else:
        rows = [_body(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def format_tensor(t: Tensor, prefix: str = "tensor(") -> str:
    """PyTorch's repr: ``tensor([ 0.,  4.,  8., 12.], grad_fn=<MulBackward0>)``."""
    a = np.asarray(t._data)
    indent = len(prefix)
    suffixes = []
    if a.size == 0:
        body = "[]"
        if a.ndim != 1:
            suffixes.append(f"size={a.shape}")
    else:
        summarize = a.size > _THRESHOLD
        fmt = _Formatter(_summary(a) if summarize else a)
        body = _body(a, indent, summarize, fmt)
    kind = a.dtype.kind
    if a.size == 0:
        # PyTorch: no values to tell an int64 or bool tensor by, so any dtype
        # but the default float one is shown.
        show_dtype = a.dtype != get_default_dtype()
    else:
        show_dtype = (kind == "f" and a.dtype != get_default_dtype()) or (
            kind not in "fb" and a.dtype != np.int64
        )
    if show_dtype:
        suffixes.append(f"dtype=gradcli.{a.dtype.name}")
    if t._grad_fn is not None:
        suffixes.append(f"grad_fn=<{t._grad_fn.op.grad_fn}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    out = [prefix + body]
    last = len(out[0]) - out[0].rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > _WIDTH:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    return "".join(out) + ")"
