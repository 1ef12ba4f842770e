"""Plain numpy on Tensors, methods, and gradcli functions."""

import numpy as np

import gradcli as gc


def f(x, A):
    return np.sum(np.sin(x)) + (A @ x).norm() + np.exp(x).sum() + gc.tanh(x[0])
