"""One function defined here; the imports below are not candidates."""

from os.path import join  # noqa: F401  (a Python function, imported: not a candidate)

import numpy as np  # noqa: F401

import gradcli as gc


def energy(q, k=1.0):
    return 0.5 * k * gc.sum(q * q)
