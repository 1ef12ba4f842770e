"""A logistic-regression loss and its hand-written gradient, for
`gradcli check examples/logistic.py:loss --grad examples/logistic.py:grad`.

w[0] is the bias (column of ones in X) and is not regularised.
grad_buggy has the classic bug: it regularises the bias too.
"""

import numpy as np

X = np.array([[1.0, 0.5, -1.2], [1.0, -0.3, 0.8], [1.0, 1.5, 0.1], [1.0, -1.1, -0.4]])
y = np.array([1.0, -1.0, 1.0, -1.0])
LAM = 0.1


def loss(w):
    return np.sum(np.log1p(np.exp(-y * (X @ w)))) + 0.5 * LAM * np.sum(w[1:] ** 2)


def grad(w):
    s = 1 / (1 + np.exp(y * (X @ w)))  # sigmoid(-y z)
    reg = LAM * w
    reg[0] = 0.0
    return -X.T @ (y * s) + reg


def grad_buggy(w):
    s = 1 / (1 + np.exp(y * (X @ w)))
    return -X.T @ (y * s) + LAM * w  # the bug: the bias is regularised too
