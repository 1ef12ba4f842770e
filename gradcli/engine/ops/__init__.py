"""The op table, one family per module; ``OPS`` holds every op by name.

Adding an op is one declaration (``@op`` in its family's module, with its rules
and facts) and one row in ``tests/test_ops.py``.
"""

from ..op import NO_BIGGER, NUMPY, OPS, SAME, Op, apply, op
from . import composite, elementwise, linalg, reductions, shape  # noqa: F401  (they register)
from .. import numpy_api

numpy_api.bind()

__all__ = ["NO_BIGGER", "NUMPY", "OPS", "SAME", "Op", "apply", "op"]
