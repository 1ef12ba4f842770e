"""The op table, one family per module; ``OPS`` holds every op by name.

Adding an op is one declaration (``@op`` in its family's module, with its rules
and facts) and one row in ``tests/test_ops.py``.
"""

from ..op import NO_BIGGER, NUMPY, OPS, SAME, Op, apply, op
# In this order: `gradcli ops` and gc.__all__ list the ops as registered.
from . import elementwise, reductions, linalg, shape, composite  # noqa: F401, I001
from .. import fastpath, numpy_api

numpy_api.bind()
fastpath.calibrate_reuse()  # (the operators are bound now)

__all__ = ["NO_BIGGER", "NUMPY", "OPS", "SAME", "Op", "apply", "op"]
