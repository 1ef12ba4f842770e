"""`check FILE:f --grad FILE:df --random N`: a 50-parameter logistic-regression
loss over a 200x50 data matrix (issue 13's speed case), end to end.

    python bench/usercheck.py [N]

Writes the function file to a temporary directory and runs the command as a
user would (a subprocess, start-up included), with the correct gradient (every
point passes) and with a buggy one (every point fails at w[0]).
"""

from __future__ import annotations

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
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lr.py"
        path.write_text(MODEL, encoding="utf-8")
        for df in ("grad", "grad_buggy"):
            argv = [sys.executable, "-m", "gradcli", "check", f"{path}:loss", "--grad",
                    f"{path}:{df}", "--shape", "w=50", "--random", n, "--seed", "1"]
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            took = time.perf_counter() - start
            print(f"{df:>10}: exit {done.returncode}, {took:.2f} s for {n} points "
                  f"({1000 * took / int(n):.1f} ms/point): {done.stdout.splitlines()[0]}")


if __name__ == "__main__":
    main()
