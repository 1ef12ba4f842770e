"""g(x) = sum(x**3) + x[0]*x[1]: gradient 3 x**2 + (x1, x0, 0...), Hessian
diag(6 x) + the off-diagonal 1s of x0*x1. vec(x) = (x0*x1, sin(x0)): Jacobian
[[x1, x0], [cos x0, 0]]. cube_root(x) = sum(cbrt(x)) (no rule in the engine):
gradient x**(-2/3) / 3."""

import math

import numpy as np


def g(x):
    return np.sum(x ** 3) + x[0] * x[1]


def dg(x):
    out = 3 * x ** 2
    out[0] += x[1]
    out[1] += x[0]
    return out


def dg_bad(x):
    out = 3 * x ** 2
    out[0] += x[1]
    return out  # the bug: the x0*x1 term forgotten in grad x[1]


def hg(x):
    h = np.diag(6 * x)
    h[0, 1] += 1
    h[1, 0] += 1
    return h


def hg_bad(x):
    return np.diag(6 * x)  # the bug: the cross term x0*x1 forgotten


def vec(x):
    return np.stack([x[0] * x[1], np.sin(x[0])])


def jvec(x):
    return np.array([[x[1], x[0]], [np.cos(x[0]), 0.0]])


def jvec_bad(x):
    return np.array([[x[1], x[0]], [np.sin(x[0]), 0.0]])  # the bug: sin for cos


def cube_root(x):
    return np.sum(np.cbrt(x))


def dcube_root(x):
    return np.cbrt(x) ** -2 / 3


def dcube_root_bad(x):
    return np.cbrt(x) ** -2 / 2  # the bug: 1/2 for 1/3


def dg_sometimes(x):
    out = dg(x)
    if x[0] > 0.5:  # the bug: a wrong branch, taken only for x[0] > 0.5
        out[0] = 0.0
    return out


def q(a, b):
    return a ** 2 * b


def hq(a, b):
    # d2/da2 = 2b, d2/dadb = 2a, d2/db2 = 0; (b, a) left to its mirror
    return {("a", "a"): 2 * b, ("a", "b"): 2 * a, "b,b": 0.0}


def hq_bad(a, b):
    return {"a": {"a": 2 * b, "b": a, }, "b": {"a": a, "b": 0.0}}  # the bug: a for 2a


def square(x):
    return np.sum(x ** 2)


def dsquare_half(x):
    return x  # the bug: the factor 2 forgotten, in every component


def erf_of(x):
    return math.erf(x)  # math on a Tensor: a number, and the graph is cut


def derf_of(x):
    return 2 / math.sqrt(math.pi) * math.exp(-float(x) ** 2)


def relu_sum(x):
    return np.sum(np.maximum(x, 0.0))


def drelu_sum(x):
    return (x > 0).astype(float)


def sines(x):
    return np.sum(np.sin(x))


def dsines(x):
    return np.cos(x)
