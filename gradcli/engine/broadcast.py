"""unbroadcast(): the one place where broadcast axes are summed back.

A vector-Jacobian product is written as if nothing broadcast: it returns a
gradient of the *output's* shape. The engine calls ``unbroadcast`` to turn it into
the shape of the input it belongs to, summing over the axes numpy broadcast.
Works on ndarrays and, through the same method names, on Tensors (create_graph).
"""

from __future__ import annotations

import numpy as np


def unbroadcast(g, shape: tuple[int, ...]):
    """Sum ``g`` over broadcast axes so that it has exactly ``shape``.

    >>> unbroadcast(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    >>> unbroadcast(np.ones((2, 3)), (2, 1)).shape
    (2, 1)
    """
    gshape = np.shape(g) if not hasattr(g, "shape") else g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    if lead < 0:
        # The rule returned fewer dimensions than the input has (a scalar
        # gradient for a broadcast input): spread it instead.
        return np.broadcast_to(g, shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if g.shape[lead:] != shape:  # checked before reshape, whose error names neither
        raise ValueError(f"gradient of shape {gshape} cannot reduce to shape {shape}")
    if lead:
        g = g.reshape(shape)
    return g
