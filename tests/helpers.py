"""Small helpers several test files share: float64 tensors, entry-by-entry
central differences, and the command line run in-process."""

from __future__ import annotations

import contextlib
import io

import numpy as np

import gradcli as gc
from gradcli.cli import main


def f64(values, requires_grad: bool = False):
    return gc.tensor(values, dtype=gc.float64, requires_grad=requires_grad)


def central(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f`` at ``x``, entry by entry."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def cli(*argv: str) -> tuple[int, str, str]:
    """``gradcli ARGV...`` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()
