"""Several functions: the target must be named as several.py:NAME."""

import numpy as np


def _square(v):
    return v * v


def kinetic(p, m=2.0):
    return np.sum(_square(p)) / (2 * m)


def potential(q):
    return np.sum(np.cos(q))


def total(p, q):
    return kinetic(p) + potential(q)
