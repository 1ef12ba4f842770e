"""A small logistic-regression loss (4 parameters, 12 data rows) and its
hand-derived gradient -X^T (y s) / n + 0.1 [0, w1, w2, w3], s = 1 / (1 + exp(y X w)),
written vectorised over leading axes of w (``w @ X.T``): a stack of points in,
a stack of answers out. lr_one.py has the same functions written for one point.
Each call is logged (function name, ndim of w) to $GRADCLI_TEST_CALLS if set."""

import os
import time

import numpy as np

X = np.array([[1.0, 0.5, -1.2, 0.3], [1.0, -0.7, 0.4, 1.1], [1.0, 1.3, 0.2, -0.6],
              [1.0, -0.1, -0.9, 0.8], [1.0, 0.9, 1.4, -0.2], [1.0, -1.5, 0.6, 0.5],
              [1.0, 0.2, -0.3, -1.3], [1.0, 1.1, 0.7, 0.9], [1.0, -0.8, -1.1, 0.1],
              [1.0, 0.6, 0.9, -1.0], [1.0, -1.2, 0.1, 1.2], [1.0, 0.4, -0.5, 0.6]])
y = np.array([1.0, -1, 1, 1, -1, 1, -1, -1, 1, -1, 1, -1])
N = len(y)


def _log(name, w):
    path = os.environ.get("GRADCLI_TEST_CALLS")
    if path:
        with open(path, "a") as f:
            f.write(f"{name} {np.ndim(w)}\n")


def loss(w):
    _log("loss", w)
    return (np.sum(np.logaddexp(0, -y * (w @ X.T)), axis=-1) / N
            + 0.05 * np.sum(w[..., 1:] ** 2, axis=-1))


def _grad(w):
    s = 1 / (1 + np.exp(y * (w @ X.T)))
    reg = 0.1 * w
    reg[..., 0] = 0.0
    return -(y * s) @ X / N + reg


def grad(w):
    _log("grad", w)
    return _grad(w)


def grad_some(w):
    """The bug: 1e-3 too much in w[1] where w[0] > 0.5."""
    _log("grad_some", w)
    g = _grad(w)
    g[..., 1] += np.where(w[..., 0] > 0.5, 1e-3, 0.0)
    return g


def grad_raises(w):
    """Right for one point; refuses a stack of them."""
    _log("grad_raises", w)
    if np.ndim(w) > 1:
        raise ValueError("one point at a time, please")
    return _grad(w)


def grad_slow(w):
    """Right; a stack of points takes 3 s."""
    _log("grad_slow", w)
    if np.ndim(w) > 1:
        time.sleep(3)
    return _grad(w)


def grad_batch_bug(w):
    """Right for one point; wrong in the second row of a stack."""
    _log("grad_batch_bug", w)
    g = _grad(w)
    if np.ndim(w) > 1:
        g[1, 0] += 1.0
    return g


def grad_mixes(w):
    """Right for one point; a stack's rows are pulled towards their mean."""
    _log("grad_mixes", w)
    g = _grad(w)
    return g if np.ndim(w) == 1 else g + 1e-3 * (np.mean(w, axis=0) - w)


def loss_mix(w):
    """loss + 0.01 sum(w), with the sum averaged over a stack's rows: one point
    is right, a stack's rows each see every row."""
    _log("loss_mix", w)
    return loss(w) + 0.01 * np.mean(np.sum(w, axis=-1))


def grad_mix(w):
    """The gradient of sum_i loss_mix(w)_i over a stack: each row's own
    gradient for one point, plus 0.01 (B rows of 0.01 / B each)."""
    _log("grad_mix", w)
    return _grad(w) + 0.01


def grad_wrong(w):
    """The bug: w[0] regularised too (0.1 w[0] too much), at every point."""
    _log("grad_wrong", w)
    return _grad(w) + 0.1 * w * (np.arange(w.shape[-1]) == 0)
