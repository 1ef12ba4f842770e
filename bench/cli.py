"""Start-up: wall time of one `gradcli eval`, against `python -c "import numpy"`;
and of `gradcli plot "sin(x)*x" --x -6:6` (cold, end to end, drawn at 80x24),
against that `gradcli eval` (issue 14's target: at most 2x).

    python bench/cli.py [--runs N]

All are timed here, alternating, in the same run; the figures are the ratios of
the medians. A CLI is started thousands of times by scripts: this is its cost.
Both run as a user's Python does, with its bytecode cache: PYTHONDONTWRITEBYTECODE
is dropped from their environment (with it, every start compiles gradcli anew).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - t0


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 30
    exe = shutil.which("gradcli")
    gradcli = ([exe] if exe else [sys.executable, "-m", "gradcli"]) + [
        "eval", "2*dot(x,x)", "--x", "0,1,2,3", "--format", "json"]
    numpy = [sys.executable, "-c", "import numpy"]
    plot = gradcli[:gradcli.index("eval")] + [
        "plot", "sin(x)*x", "--x", "-6:6", "--width", "80", "--height", "24"]
    wall(gradcli), wall(numpy), wall(plot)  # warm the file cache
    tg, tn, tp = [], [], []
    for _ in range(runs):
        tg.append(wall(gradcli))
        tn.append(wall(numpy))
        tp.append(wall(plot))
    mg, mn, mp = statistics.median(tg), statistics.median(tn), statistics.median(tp)
    print(f"gradcli eval --format json: {mg * 1e3:.0f} ms (median of {runs})")
    print(f"python -c 'import numpy':   {mn * 1e3:.0f} ms")
    print(f"ratio {mg / mn:.2f}x (target <= 1.5)")
    print(f"gradcli plot 'sin(x)*x' --x -6:6 (80x24): {mp * 1e3:.0f} ms")
    print(f"ratio to eval {mp / mg:.2f}x (target <= 2)")


if __name__ == "__main__":
    main()
