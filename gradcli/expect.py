"""``--expect-value`` / ``--expect-grad``: expected numbers against computed ones.

A number meets its expectation when ``|got - want| <= atol + rtol * |want|``
(numpy's ``isclose``, asymmetric in ``want``); nan never does.

>>> from types import SimpleNamespace
>>> r = SimpleNamespace(value=np.array(5.0), grads={"x": np.array([2.0, 4.0])})
>>> [f.what for f in compare([("value", np.array(6.0))], r, rtol=1e-8)]
['value']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Failure:
    """An unmet expectation; ``max_diff`` is nan when the shapes differ."""

    what: str  # "value" or "grad.NAME"
    want: np.ndarray
    got: np.ndarray
    max_diff: float
    atol: float
    rtol: float
    count: int = 0  # components that differ
    worst: tuple[int, ...] = ()  # the index of the worst of them


def compare(expected: list[tuple[str, np.ndarray]], result, *, rtol: float,
            atol: float | None = None) -> list[Failure]:
    """Each unmet expectation of ``expected``, pairs ("value" or "grad.NAME",
    array), against ``result`` (a compute.Result), in order."""
    atol = atol or 0.0
    failures = []
    for what, want in expected:
        got = result.value if what == "value" else result.grads[what.removeprefix("grad.")]
        got = np.asarray(got, dtype=np.float64)
        if want.shape != got.shape:
            failures.append(Failure(what, want, got, np.nan, atol, rtol))
            continue
        diff = np.abs(got - want)
        bad = ~(diff <= atol + rtol * np.abs(want))
        if bad.any():
            # The worst: a nan first (it meets nothing), else the largest gap.
            gap = np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0)
            at = np.unravel_index(int(np.argmax(gap)), bad.shape) if bad.ndim else ()
            worst = np.nan if np.isnan(diff).all() else float(np.nanmax(np.where(bad, diff, 0)))
            failures.append(Failure(what, want, got, worst, atol, rtol,
                                    int(bad.sum()), tuple(int(i) for i in at)))
    return failures
