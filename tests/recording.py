"""A function of Tensors run with its graph recorded, as the check replays it."""

from __future__ import annotations

import numpy as np

import gradcli as gc
from gradcli.engine.graph import keep_args


def record(fn, **inputs):
    """``fn(**inputs)`` on float64 leaves under ``keep_args``, gradients taken."""
    ts = {
        n: gc.tensor(np.asarray(v, dtype=np.float64), dtype=gc.float64, requires_grad=True)
        for n, v in inputs.items()
    }
    with keep_args():
        out = fn(**ts)
    out.backward(retain_graph=True)
    return out, ts
