"""Contractions and forward mode (issue 11, "Speed"): medians and ratios against
numpy baselines timed in this same process (nothing asserted but correctness).

Run: ``python bench/forward.py [--repeats N] [--check]`` (``--check``: exit 1 if
a target is missed). Each figure is the median over interleaved blocks of calls
(gradcli, numpy, gradcli, ...), so that load from other processes hits both
sides alike; the ratio is of the two medians, then the range of the per-block
ratios and the ratio of the fastest blocks (on a busy machine the least
disturbed: gradcli's many mid-sized arrays suffer more from other processes
than numpy's few). BLAS is pinned to one thread, as in bench/derivatives.py.

1. ``einsum("ij,jk->ik")`` and ``tensordot(axes=1)`` of two 500x500 operands,
   value and gradient (``sum(op(a, b)).backward()``, leaves wrapping the arrays
   without a copy), against numpy's forward ``np.einsum(..., optimize=True)``.
   Target: at most 3.5x (a value and a gradient are three products).
2. The Jacobian of a function from 3 scalar inputs to 10^4 outputs,
   ``p0 * exp(-p1 * t) * sin(p2 * t) + p1 * t``, in forward mode (three
   columns) against numpy computing the same values; and in reverse mode
   (10^4 rows, batched). Target: forward at most 10x numpy's values, and faster
   than reverse mode.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradcli as gc  # noqa: E402
import statistics  # noqa: E402

from derivatives import _calibrate, _ms, _per_call, median_time  # noqa: E402
from gradcli.transforms import jacobian  # noqa: E402

N = 500
M = 10_000
CONTRACTION_TARGET = 3.5
FORWARD_TARGET = 10.0


def value_and_gradient(op, A, B):
    """sum(op(a, b)) and its gradient, from leaves that wrap A and B."""
    a = gc.Tensor(A, requires_grad=True)
    b = gc.Tensor(B, requires_grad=True)
    y = gc.sum(op(a, b))
    y.backward()
    return y.item(), a.grad.numpy(), b.grad.numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--only", choices=["contractions", "jacobian"],
                        help="run one of the two parts")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    missed = False
    print(f"gradcli forward-mode and contraction bench: medians of {args.repeats} "
          f"interleaved blocks, BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"numpy {np.__version__}", flush=True)

    if args.only != "jacobian":
        missed |= contractions(rng, args.repeats)
    if args.only != "contractions":
        missed |= forward_jacobian(args.repeats)
    return 1 if args.check and missed else 0


def compare(ours, base, *, repeats: int, block: float = 0.025):
    """Per-call times of interleaved blocks: (gradcli's, numpy's) lists."""
    n_ours, n_base = _calibrate(ours, block), _calibrate(base, block)
    t_ours, t_base = [], []
    for _ in range(repeats):
        t_ours.append(_per_call(ours, n_ours))
        t_base.append(_per_call(base, n_base))
    return t_ours, t_base


def _report(label: str, t_ours, t_base, target=None) -> bool:
    """Print a figure (the ratio of the medians, then of the fastest blocks,
    the least disturbed by other processes); whether it missed its target."""
    ours, base = statistics.median(t_ours), statistics.median(t_base)
    ratio = ours / base
    ratios = [a / b for a, b in zip(t_ours, t_base)]
    line = (f"{label}: gradcli {_ms(ours)}, numpy {_ms(base)}, ratio {ratio:.1f}x "
            f"(blocks {min(ratios):.1f}-{max(ratios):.1f}x; fastest blocks "
            f"{min(t_ours) / min(t_base):.1f}x)")
    if target is not None:
        line += f" (target <= {target:g}x: {'ok' if ratio <= target else 'MISSED'})"
    print(line, flush=True)
    return target is not None and ratio > target


def contractions(rng, repeats: int) -> bool:
    """Part 1: einsum and tensordot value and gradient; whether a target missed."""
    missed = False
    A, B = rng.standard_normal((N, N)), rng.standard_normal((N, N))
    ones = np.ones((N, N))
    want = (np.sum(A @ B), ones @ B.T, A.T @ ones)  # hand-derived value and gradient
    ops = {
        # The same call as the baseline: numpy's default (optimize=False) is a
        # plain loop, 30x slower than BLAS here, and gradcli's forward is numpy's.
        "einsum('ij,jk->ik', optimize=True)":
            lambda a, b: gc.einsum("ij,jk->ik", a, b, optimize=True),
        "tensordot(axes=1)": lambda a, b: gc.tensordot(a, b, axes=1),
        "matmul (for reference)": lambda a, b: a @ b,
    }

    def baseline():
        return np.einsum("ij,jk->ik", A, B, optimize=True)

    for label, op in ops.items():
        got = value_and_gradient(op, A, B)
        if not all(np.allclose(g, w, rtol=1e-10, atol=1e-8) for g, w in zip(got, want)):
            raise SystemExit(f"{label}: WRONG")
        times = compare(lambda op=op: value_and_gradient(op, A, B), baseline,
                        repeats=repeats, block=0.2)
        target = None if "reference" in label else CONTRACTION_TARGET
        missed |= _report(f"{label} {N}x{N} value+grad vs np.einsum(optimize=True)",
                          *times, target)
    return missed


def forward_jacobian(repeats: int) -> bool:
    """Part 2: the forward-mode Jacobian 3 -> 10^4; whether a target missed."""
    t = np.linspace(0.0, 10.0, M)
    p = (1.5, 0.3, 2.0)

    def f(p0, p1, p2):
        return p0 * gc.exp(-p1 * t) * gc.sin(p2 * t) + p1 * t

    def numpy_values(p0, p1, p2):
        return p0 * np.exp(-p1 * t) * np.sin(p2 * t) + p1 * t

    def numpy_jacobian(p0, p1, p2):  # by hand: the truth the modes must match
        e, s = np.exp(-p1 * t), np.sin(p2 * t)
        return (e * s, -t * p0 * e * s + t, p0 * e * t * np.cos(p2 * t))

    forward = jacobian(f, argnums=(0, 1, 2), method="columns")
    reverse = jacobian(f, argnums=(0, 1, 2), method="rows")
    for name, jac in (("forward", forward), ("reverse", reverse)):
        got = [b.numpy() for b in jac(*p)]
        if not all(np.allclose(g, w, rtol=1e-12, atol=1e-12)
                   for g, w in zip(got, numpy_jacobian(*p))):
            raise SystemExit(f"jacobian {name}: WRONG")
    times = compare(lambda: forward(*p), lambda: numpy_values(*p), repeats=repeats)
    missed = _report(f"forward-mode jacobian 3 -> {M:,} vs numpy's values", *times,
                     FORWARD_TARGET)
    ours = statistics.median(times[0])
    t_rev = median_time(lambda: reverse(*p), repeats=3)
    faster = ours < t_rev
    print(f"reverse-mode jacobian 3 -> {M:,} (batched rows): {_ms(t_rev)}, "
          f"{t_rev / ours:.0f}x forward mode ({'ok' if faster else 'MISSED'}: forward "
          "must be faster)", flush=True)
    return missed or not faster


if __name__ == "__main__":
    sys.exit(main())
