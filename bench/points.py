"""--points throughput: 10,000 rows of a 4-input expression, in process.

    python bench/points.py

The baseline is the same 10,000 points evaluated one at a time (what a script
calling `eval` in a loop would get, minus process start-up), in the same run.
The end-to-end line times the whole command on a CSV file of those rows: reading
and writing text costs more than the arithmetic.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gradcli.compute import evaluate, evaluate_rows, prepare  # noqa: E402

EXPR = "a*sin(b) + exp(-c*c)*d + a*b/(1 + d*d)"
N = 10_000


def main() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((N, 4))
    rows = [{n: np.float64(v) for n, v in zip("abcd", r)} for r in data]
    rows = [{n: np.asarray(v) for n, v in r.items()} for r in rows]
    target = prepare(EXPR, list("abcd"))
    wrt = list("abcd")

    def batched():
        return evaluate_rows(target, rows, wrt=wrt, no_grad=False, max_elements=10**7)

    def one_by_one():
        return [evaluate(target, r, wrt=wrt) for r in rows]

    b, s = batched(), one_by_one()
    assert all(np.array_equal(x.value, y.value) and
               all(np.array_equal(x.grads[n], y.grads[n]) for n in wrt)
               for x, y in zip(b, s)), "batched rows differ from single evaluations"
    tb = statistics.median(_time(batched) for _ in range(5))
    ts = statistics.median(_time(one_by_one) for _ in range(3))
    print(f"--points, {N:,} rows of {EXPR!r}:")
    print(f"  batched {tb * 1e3:.1f} ms ({N / tb:,.0f} rows/s); one at a time "
          f"{ts * 1e3:.0f} ms ({N / ts:,.0f} rows/s); speed-up {ts / tb:.0f}x "
          "(target: faster than one at a time)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "points.csv")
        with open(path, "w") as fh:
            fh.write("a,b,c,d\n" + "\n".join(",".join(map(repr, r)) for r in data.tolist()))
        exe = shutil.which("gradcli")
        cmd = ([exe] if exe else [sys.executable, "-m", "gradcli"]) + [
            "eval", EXPR, "--points", path, "--format", "plain"]
        te = statistics.median(
            _time(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))
            for _ in range(3))
    print(f"  end to end (the command on a CSV file, start-up included): "
          f"{te * 1e3:.0f} ms ({N / te:,.0f} rows/s)")


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
