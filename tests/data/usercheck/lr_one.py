"""lr_vec.py's functions written for one point at a time (``X @ w``, ``w[0]``):
a stack of points fails in them. The same hand-derived gradient."""


import numpy as np

X = np.array([[1.0, 0.5, -1.2, 0.3], [1.0, -0.7, 0.4, 1.1], [1.0, 1.3, 0.2, -0.6],
              [1.0, -0.1, -0.9, 0.8], [1.0, 0.9, 1.4, -0.2], [1.0, -1.5, 0.6, 0.5],
              [1.0, 0.2, -0.3, -1.3], [1.0, 1.1, 0.7, 0.9], [1.0, -0.8, -1.1, 0.1],
              [1.0, 0.6, 0.9, -1.0], [1.0, -1.2, 0.1, 1.2], [1.0, 0.4, -0.5, 0.6]])
y = np.array([1.0, -1, 1, 1, -1, 1, -1, -1, 1, -1, 1, -1])
N = len(y)


def loss(w):
    return np.sum(np.logaddexp(0, -y * (X @ w))) / N + 0.05 * np.sum(w[1:] ** 2)


def grad(w):
    s = 1 / (1 + np.exp(y * (X @ w)))
    reg = 0.1 * w
    reg[0] = 0.0
    return -X.T @ (y * s) / N + reg


def grad_some(w):
    g = grad(w)
    if w[0] > 0.5:
        g[1] += 1e-3
    return g


grad_raises = grad_slow = grad_batch_bug = grad_mixes = grad


def loss_mix(w):
    return loss(w) + 0.01 * np.sum(w)


def grad_mix(w):
    return grad(w) + 0.01


def grad_wrong(w):
    return grad(w) + 0.1 * w * (np.arange(len(w)) == 0)
