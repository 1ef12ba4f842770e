"""Printed output against output shown in the README: the text exactly, each
number to the rounding of the machine that prints it.

A README example prints floats to the last digit, but the last digits of a
product through BLAS or of numpy's SIMD exp/log depend on the CPU kernel chosen
at run time (OPENBLAS_CORETYPE, AVX2 or AVX-512): the README's
``0.01708328259191394`` is ``0.01708328259191405`` on another kernel, and a
finite difference (whose error bar is printed beside it) moves in its 10th
digit. So the words, signs, separators and the count of numbers must match
exactly, each number within a relative 1e-12, and a finite difference printed
with its error bar within that bar.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
RTOL = 1e-12


def _split(line: str) -> tuple[list[str], list[str]]:
    return _NUMBER.split(line), _NUMBER.findall(line)


def same_line(got: str, shown: str) -> bool:
    if got == shown:
        return True
    (gt, gn), (st, sn) = _split(got), _split(shown)
    if gt != st or len(gn) != len(sn):
        return False
    for i, (a, b) in enumerate(zip(gn, sn)):
        # a finite difference printed with its error bar ("0.0171 ± 4.09e-10")
        # may move within it; every other number to a relative 1e-12
        bar = float(sn[i + 1]) if st[i + 1].strip() == "±" and i + 1 < len(sn) else 0.0
        if a != b and not math.isclose(float(a), float(b), rel_tol=RTOL, abs_tol=bar):
            return False
    return True


def same_lines(got: list[str], shown: list[str]) -> bool:
    return len(got) == len(shown) and all(same_line(g, s) for g, s in zip(got, shown))
