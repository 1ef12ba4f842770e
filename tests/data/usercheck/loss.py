"""f(W, v) = sum((W @ v)**2) and hand-derived gradients: grad_W = 2 (W v) v^T,
grad_v = 2 W^T (W v). The wrong ones carry one deliberate bug each."""

import numpy as np


def f(W, v):
    return np.sum((W @ v) ** 2)


def df(W, v):
    r = W @ v
    return 2 * np.outer(r, v), 2 * W.T @ r


def df_dict(W, v):
    r = W @ v
    return {"v": 2 * W.T @ r, "W": 2 * np.outer(r, v)}


def df_bad_entry(W, v):
    r = W @ v
    gW = 2 * np.outer(r, v)
    gW[1, 2] += 1.0  # the bug: one entry off by one
    return gW, 2 * W.T @ r


def df_no_two(W, v):
    r = W @ v
    return 2 * np.outer(r, v), W.T @ r  # the bug: the factor 2 forgotten in grad_v


def df_flat(W, v):
    r = W @ v
    return 2 * np.outer(r, v).ravel(), 2 * W.T @ r  # the wrong shape for W


def df_one(W, v):
    return 2 * np.outer(W @ v, v)  # one array for two inputs


def df_missing(W):
    return W


def df_raises(W, v):
    raise ValueError("not implemented yet")


def df_text(W, v):
    return "2*W", "2*v"
