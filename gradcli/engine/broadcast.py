"""unbroadcast(): the one place where broadcast axes are summed back.

A vector-Jacobian product is written as if nothing broadcast: it returns a
gradient of the *output's* shape, behind the ``lead`` batch axes the cotangent
came with (a Jacobian's rows, a Hessian's). The engine calls ``unbroadcast`` to
turn it into ``batch + shape`` of the input it belongs to, summing over the axes
numpy broadcast and keeping the batch axes. Works on ndarrays and, through the
same method names, on Tensors (create_graph).
"""

from __future__ import annotations

import numpy as np


def unbroadcast(g, shape: tuple[int, ...], lead: int = 0):
    """Sum ``g`` over broadcast axes so that it has ``g.shape[:lead] + shape``.

    >>> unbroadcast(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    >>> unbroadcast(np.ones((2, 3)), (2, 1)).shape
    (2, 1)
    >>> unbroadcast(np.ones((5, 2, 3)), (3,), lead=1).shape
    (5, 3)
    """
    gshape = np.shape(g) if not hasattr(g, "shape") else g.shape
    batch = gshape[:lead]
    want = batch + tuple(shape)
    if gshape == want:
        return g
    extra = len(gshape) - len(want)
    if extra < 0:
        # The rule returned fewer dimensions than the input has (a scalar
        # gradient for a broadcast input): spread it instead.
        g = np.reshape(g, batch + (1,) * -extra + gshape[lead:])
        return np.broadcast_to(g, want)
    start = lead + extra
    axes = tuple(range(lead, start)) + tuple(
        start + i for i, n in enumerate(shape) if n == 1 and gshape[start + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if g.shape[start:] != tuple(shape):  # checked before reshape, whose error names neither
        raise ValueError(f"gradient of shape {gshape} cannot reduce to shape {shape}")
    if extra:
        g = g.reshape(want)
    return g
