"""gradcli: a gradient calculator with its own reverse-mode autodiff engine.

Use it from the command line (``gradcli eval "2*dot(x,x)" --x 0,1,2,3``) or as a
PyTorch-like Python API (``import gradcli as gc``):

>>> import gradcli as gc
>>> x = gc.arange(4.0, requires_grad=True)
>>> y = 2 * gc.dot(x, x)
>>> y.backward()
>>> x.grad
tensor([ 0.,  4.,  8., 12.])
"""

from __future__ import annotations

from .engine.creation import (
    arange,
    bool_,
    float32,
    float64,
    int64,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .engine.graph import enable_grad, is_grad_enabled, set_grad_enabled
from .engine.ops import OPS, Op
from .engine.tensor import Tensor, get_default_dtype, set_default_dtype

__version__ = "0.1.0"

__all__ = [
    "OPS", "Op", "Tensor", "arange", "autograd", "bool_", "clamp", "enable_grad",
    "float32", "float64", "get_default_dtype", "grad", "hessian", "hvp", "int64", "jacfwd", "jvp",
    "is_grad_enabled", "jacobian", "linearize", "linspace", "manual_seed", "no_grad", "ones",
    "ones_like", "rand", "randn", "set_default_dtype", "set_grad_enabled", "tensor",
    "value_and_grad", "vjp", "zeros", "zeros_like", "cat", "eye", "full", "full_like",
    "empty", "empty_like", "from_numpy", "as_tensor", "inference_mode", "mm", "bmm",
    "floor_divide", "remainder", "argmax", "argmin", "sort", "topk", "cumsum", "permute",
    "unsqueeze", "squeeze", "flatten",
    *(name for name in OPS if not name.startswith("_")),
]

# Every op of the registry by its numpy name: gc.sin, gc.dot, gc.sum, ...
globals().update({name: o for name, o in OPS.items() if not name.startswith("_")})
_TRANSFORMS = ("grad", "hessian", "hvp", "jacfwd", "jacobian", "jvp", "linearize",
               "value_and_grad", "vjp")


def __getattr__(name: str):
    # The transforms load on first use: a plain `gradcli eval` never needs them.
    if name in _TRANSFORMS:
        from . import transforms

        return getattr(transforms, name)
    if name == "autograd":  # gc.autograd.grad, gc.autograd.backward
        import importlib  # (`from . import autograd` would ask this hook again)

        return importlib.import_module(".autograd", __name__)
    raise AttributeError(f"module 'gradcli' has no attribute {name!r}")

# PyTorch's names, PyTorch's meanings (numpy's keywords, axis= or ord=, keep numpy's).
from .engine import torch_api as _t  # noqa: E402
from .engine.creation import (  # noqa: E402
    as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
)
from .engine.torch_api import (  # noqa: E402
    bmm, cat, floor_divide, inference_mode, mm, no_grad, remainder,
)

sum = _t._torch_fn(Tensor.sum, OPS["sum"])  # noqa: A001 (PyTorch's names)
mean = _t._torch_fn(Tensor.mean, OPS["mean"])
max = _t._torch_fn(Tensor.max, OPS["max"])
min = _t._torch_fn(Tensor.min, OPS["min"])
std = _t._torch_fn(Tensor.std, OPS["std"])
var = _t._torch_fn(Tensor.var, OPS["var"])
transpose = _t._torch_fn(Tensor.transpose, OPS["transpose"])
norm = _t._torch_fn(Tensor.norm, OPS["norm"])


def clamp(input, min=None, max=None):  # noqa: A002 (PyTorch's names)
    return input.clamp(min, max)


def _method_fn(name):
    def fn(input, *args, **kwargs):  # noqa: A002
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    return fn


argmax, argmin, sort, topk, cumsum = (
    _method_fn(n) for n in ("argmax", "argmin", "sort", "topk", "cumsum"))
permute, unsqueeze, squeeze, flatten = (
    _method_fn(n) for n in ("permute", "unsqueeze", "squeeze", "flatten"))
