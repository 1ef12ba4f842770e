"""Making tensors: gc.tensor, arange, linspace, zeros, ones, randn, ...

As in PyTorch, Python floats become the default float dtype (float32 unless
``set_default_dtype`` says otherwise), Python ints become int64, and numpy
arrays keep their dtype.
"""

from __future__ import annotations

import numpy as np

from .graph import is_grad_enabled
from .tensor import Tensor, get_default_dtype

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_RNG: dict = {}  # made on first use: importing numpy.random costs start-up time


def _rng():
    if "rng" not in _RNG:
        _RNG["rng"] = np.random.default_rng()
    return _RNG["rng"]


def manual_seed(seed: int) -> None:
    """Seed the generator behind ``randn`` and ``rand``."""
    _RNG["rng"] = np.random.default_rng(seed)


def _finish(data: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data``.

    >>> tensor([1.0, 2.0], requires_grad=True)
    tensor([1., 2.], requires_grad=True)
    """
    if isinstance(data, Tensor):
        data = data._data
    elif isinstance(data, (list, tuple)) and _recorded_inside(data):
        # gc.tensor([x, 2 * x]): stacked, so the gradient reaches x (not cut).
        from .op import _stacked

        t = _stacked(data)
        if dtype is not None and np.dtype(dtype) != t.dtype:
            raise TypeError(
                "tensor(): Tensors that require grad cannot be cast to "
                f"{np.dtype(dtype)} here; make them with that dtype"
            )
        return t
    native = isinstance(data, (np.ndarray, np.generic))
    arr = np.array(data, dtype=dtype)
    if dtype is None and not native:
        if arr.dtype.kind == "f":
            arr = arr.astype(get_default_dtype())
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"cannot make a tensor of {arr.dtype} values")
    return _finish(arr, requires_grad)


def _recorded_inside(seq) -> bool:
    """Whether a (nested) sequence holds a Tensor whose gradient is being recorded."""
    if not is_grad_enabled():
        return False
    return any(
        (isinstance(x, Tensor) and x.requires_grad)
        or (isinstance(x, (list, tuple)) and _recorded_inside(x))
        for x in seq
    )


def _float_dtype(dtype, *numbers) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    if any(isinstance(n, float) for n in numbers):
        return get_default_dtype()
    return int64


def arange(start, end=None, step=1, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``arange(4.0)`` is ``tensor([0., 1., 2., 3.])``; ``arange(4)`` holds int64."""
    if end is None:
        start, end = 0, start
    d = _float_dtype(dtype, start, end, step)
    return _finish(np.arange(start, end, step).astype(d), requires_grad)


def linspace(start, end, steps, *, dtype=None, requires_grad: bool = False) -> Tensor:
    d = np.dtype(dtype) if dtype is not None else get_default_dtype()
    return _finish(np.linspace(start, end, steps).astype(d), requires_grad)


def _size(size) -> tuple[int, ...]:
    if len(size) == 1 and not isinstance(size[0], (int, np.integer)):
        return tuple(size[0])
    return tuple(size)


def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.zeros(_size(size), dtype=dtype or get_default_dtype()), requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.ones(_size(size), dtype=dtype or get_default_dtype()), requires_grad)


def zeros_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    data = t._data if isinstance(t, Tensor) else np.asarray(t)
    return _finish(np.zeros(data.shape, dtype=dtype or data.dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    data = t._data if isinstance(t, Tensor) else np.asarray(t)
    return _finish(np.ones(data.shape, dtype=dtype or data.dtype), requires_grad)


def randn(*size, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Standard normal samples; ``randn(3)``, ``randn(2, 3)`` or ``randn(size=())``."""
    if "size" in kwargs:
        if size:
            raise TypeError("randn() takes the size positionally or as size=, not both")
        size = (tuple(kwargs.pop("size")),)
    if kwargs:
        raise TypeError(f"randn() got unexpected keywords {sorted(kwargs)}")
    shape = _size(size)
    d = np.dtype(dtype) if dtype is not None else get_default_dtype()
    return _finish(_rng().standard_normal(shape).astype(d), requires_grad)


def rand(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1)."""
    d = np.dtype(dtype) if dtype is not None else get_default_dtype()
    return _finish(_rng().random(_size(size)).astype(d), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """The identity matrix, ``n`` by ``m`` (default ``n``), as ``torch.eye``."""
    d = np.dtype(dtype) if dtype is not None else get_default_dtype()
    return _finish(np.eye(n, n if m is None else m, dtype=d), requires_grad)


def _fill_dtype(fill, dtype) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    if isinstance(fill, Tensor):
        fill = fill.item()
    if isinstance(fill, (bool, np.bool_)):
        return bool_
    if isinstance(fill, (int, np.integer)):
        return int64
    if isinstance(fill, complex):
        raise NotImplementedError("complex fill values are not supported in gradcli")
    return get_default_dtype()


def full(size, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``full((2, 3), 1.5)``: the dtype from the fill value, as in PyTorch."""
    shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return _finish(np.full(shape, fill_value, dtype=_fill_dtype(fill_value, dtype)),
                   requires_grad)


def full_like(t, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    data = t._data if isinstance(t, Tensor) else np.asarray(t)
    return _finish(np.full(data.shape, fill_value, dtype=dtype or data.dtype), requires_grad)


def empty(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uninitialised in PyTorch; zeros here (the values are not to be read)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def empty_like(t, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros_like(t, dtype=dtype, requires_grad=requires_grad)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing ``a``'s memory and dtype (a change to one shows in the other)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(a).__name__})")
    return Tensor._make(a)


def as_tensor(data, dtype=None) -> Tensor:
    """``data`` itself if it is a Tensor of that dtype, a tensor sharing an
    ndarray's memory when the dtype allows, else a new tensor (as ``tensor``)."""
    if isinstance(data, Tensor):
        if dtype is None or np.dtype(dtype) == data.dtype:
            return data
        return data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype):
        return Tensor._make(data)
    return tensor(data, dtype=dtype)
