"""`check FILE:f --grad FILE:df --random N`: a 50-parameter logistic-regression
loss over a 200x50 data matrix (issue 13's speed case), end to end.

    python bench/usercheck.py [N [RUNS]]

Writes the function file to a temporary directory and runs the command as a
user would (a subprocess, start-up included), with the correct gradient (every
point passes) and with a buggy one (every point fails at w[0]), each written
for one point (``X @ w``: checked one point at a time) and vectorised over
leading axes of w (``w @ X.T``: checked in batches); RUNS times each, the four
interleaved (default 3; the machine may be shared), printing each run, the
medians and the ratio one at a time / batched, and whether both wrote the same
output. One untimed run first lets Python cache gradcli's bytecode, as an
installed package has it (PYTHONDONTWRITEBYTECODE is dropped for the
subprocesses: without the cache, each start compiles gradcli again, about
0.25 s).
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


# The same, vectorised over leading axes of w: a stack of points in, a stack out.
def loss_v(w):
    return (np.sum(np.logaddexp(0, -y * (w @ X.T)), axis=-1) / 200
            + 0.05 * np.sum(w[..., 1:] ** 2, axis=-1))


def grad_v(w):
    s = 1 / (1 + np.exp(y * (w @ X.T)))
    reg = 0.1 * w
    reg[..., 0] = 0.0
    return -(y * s) @ X / 200 + reg


def grad_buggy_v(w):
    s = 1 / (1 + np.exp(y * (w @ X.T)))
    return -(y * s) @ X / 200 + 0.1 * w
'''

# (label, f, df): one point at a time, then batched, for each gradient
CASES = [("grad", "loss", "grad"), ("grad_v", "loss_v", "grad_v"),
         ("grad_buggy", "loss", "grad_buggy"), ("grad_buggy_v", "loss_v", "grad_buggy_v")]


def main() -> None:
    n = sys.argv[1] if len(sys.argv) > 1 else "1000"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lr.py"
        path.write_text(MODEL, encoding="utf-8")

        def argv(f, df, count):
            return [sys.executable, "-m", "gradcli", "check", f"{path}:{f}", "--grad",
                    f"{path}:{df}", "--shape", "w=50", "--random", count, "--seed", "1"]

        subprocess.run(argv("loss", "grad", "1"), capture_output=True, env=env,
                       check=False)
        took: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
        outputs: dict[str, str] = {}
        for _ in range(runs):  # interleaved: a slow spell of the machine hits each
            for label, f, df in CASES:
                start = time.perf_counter()
                done = subprocess.run(argv(f, df, n), capture_output=True, text=True,
                                      env=env, check=False)
                took[label].append(time.perf_counter() - start)
                outputs[label] = done.stdout.replace("grad_buggy_v", "grad_buggy").replace(
                    "grad_v", "grad")
                print(f"{label:>12}: exit {done.returncode}, {took[label][-1]:.2f} s for "
                      f"{n} points ({1000 * took[label][-1] / int(n):.2f} ms/point): "
                      f"{done.stdout.splitlines()[0]}")
        med = {label: statistics.median(t) for label, t in took.items()}
        for label, _, _ in CASES:
            print(f"{label:>12}: median of {runs}: {med[label]:.2f} s "
                  f"({1000 * med[label] / int(n):.2f} ms/point, start-up included)")
        for one in ("grad", "grad_buggy"):
            same = "same output" if outputs[one] == outputs[one + "_v"] else \
                "OUTPUT DIFFERS"
            print(f"{one:>12}: one at a time / batched: "
                  f"{med[one] / med[one + '_v']:.2f}x ({same})")


if __name__ == "__main__":
    main()
