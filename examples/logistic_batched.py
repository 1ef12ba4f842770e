"""examples/logistic.py's loss and gradient written for a stack of points as
well as for one: w may have leading axes (a stack of parameter vectors along
axis 0), and each answer has them too. `gradcli check ... --random N` then
checks many points in one call of each (see the README).

w[0] is the bias (column of ones in X) and is not regularised.
"""

import numpy as np

X = np.array([[1.0, 0.5, -1.2], [1.0, -0.3, 0.8], [1.0, 1.5, 0.1], [1.0, -1.1, -0.4]])
y = np.array([1.0, -1.0, 1.0, -1.0])
LAM = 0.1


def loss(w):
    z = w @ X.T  # (..., 4): X @ w for each point of the stack
    return (np.sum(np.log1p(np.exp(-y * z)), axis=-1)
            + 0.5 * LAM * np.sum(w[..., 1:] ** 2, axis=-1))


def grad(w):
    s = 1 / (1 + np.exp(y * (w @ X.T)))  # sigmoid(-y z), (..., 4)
    reg = LAM * w
    reg[..., 0] = 0.0
    return -(y * s) @ X + reg  # (..., 3): -X.T @ (y s) for each point
