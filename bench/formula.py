"""`gradcli diff` and `gradcli taylor`, cold: wall time of whole commands.

    python bench/formula.py [--runs N]

Prints medians (and user+system CPU time, which a machine shared with other
work inflates less than wall time). Targets (issue 14): `diff` of a 10-op
expression under 1.5 s cold; `taylor` to order 10 at a scalar point under 1 s
(the derivatives themselves; the sympy cross-check is timed beside it).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
TEN_OPS = "sum(sin(x)*exp(-x) + log(1 + x**2)/(2 + cos(x)))"  # 10 ops, sum included
CASES = {
    "diff (10 ops, vector x)": ["diff", TEN_OPS, "--shape", "x=4"],
    "diff x @ A @ x": ["diff", "x @ A @ x", "--shape", "x=3", "--shape", "A=3,3"],
    "taylor order 10, --no-check": ["taylor", "sin(x)*exp(x)/(1 + x**2)", "--x", "0.3",
                                    "--order", "10", "--no-check"],
    "taylor order 10, with sympy": ["taylor", "sin(x)*exp(x)", "--x", "0.3",
                                    "--order", "10"],
    "eval (reference)": ["eval", "2*dot(x,x)", "--x", "0,1,2,3"],
}


def timed(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    exe = shutil.which("gradcli")
    base = [exe] if exe else [sys.executable, "-m", "gradcli"]
    for label, args in CASES.items():
        timed(base + args)  # warm the file and bytecode caches
        walls, cpus = zip(*(timed(base + args) for _ in range(runs)))
        print(f"{label:30s} wall {statistics.median(walls):6.2f} s   "
              f"cpu {statistics.median(cpus):6.2f} s   (median of {runs})")


if __name__ == "__main__":
    main()
