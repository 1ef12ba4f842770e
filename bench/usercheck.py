"""`check FILE:f --grad FILE:df --random N`: a 50-parameter logistic-regression
loss over a 200x50 data matrix (issue 13's speed case), end to end.

    python bench/usercheck.py [N [RUNS]]

Writes the function file to a temporary directory and runs the command as a
user would (a subprocess, start-up included), with the correct gradient (every
point passes) and with a buggy one (every point fails at w[0]); RUNS times each
(default 3; the machine may be shared), printing each run and the median. One
untimed run first lets Python cache gradcli's bytecode, as an installed package
has it (PYTHONDONTWRITEBYTECODE is dropped for the subprocesses: without the
cache, each start compiles gradcli again, about 0.25 s).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = '''
import numpy as np

_rng = np.random.default_rng(0)
X = _rng.standard_normal((200, 50))
y = np.where(_rng.standard_normal(200) > 0, 1.0, -1.0)


def loss(w):
    return np.sum(np.logaddexp(0, -y * (X @ w))) / 200 + 0.05 * np.sum(w[1:] ** 2)


def grad(w):
    s = 1 / (1 + np.exp(y * (X @ w)))
    reg = 0.1 * w
    reg[0] = 0.0
    return -X.T @ (y * s) / 200 + reg


def grad_buggy(w):
    s = 1 / (1 + np.exp(y * (X @ w)))
    return -X.T @ (y * s) / 200 + 0.1 * w
'''


def main() -> None:
    n = sys.argv[1] if len(sys.argv) > 1 else "1000"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lr.py"
        path.write_text(MODEL, encoding="utf-8")

        def argv(df, count):
            return [sys.executable, "-m", "gradcli", "check", f"{path}:loss", "--grad",
                    f"{path}:{df}", "--shape", "w=50", "--random", count, "--seed", "1"]

        subprocess.run(argv("grad", "1"), capture_output=True, env=env, check=False)
        for df in ("grad", "grad_buggy"):
            took = []
            for _ in range(runs):
                start = time.perf_counter()
                done = subprocess.run(argv(df, n), capture_output=True, text=True,
                                      env=env, check=False)
                took.append(time.perf_counter() - start)
                print(f"{df:>10}: exit {done.returncode}, {took[-1]:.2f} s for {n} points "
                      f"({1000 * took[-1] / int(n):.1f} ms/point): "
                      f"{done.stdout.splitlines()[0]}")
            med = statistics.median(took)
            print(f"{df:>10}: median of {runs}: {med:.2f} s ({1000 * med / int(n):.2f} "
                  "ms/point, start-up included)")


if __name__ == "__main__":
    main()
