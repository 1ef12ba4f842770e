"""Engine speed and memory, printed as medians and ratios (not asserted).

    python bench/engine.py [--quick] [--against REV]

1. Per-op overhead: a chain of 10,000 scalar ops, x = x*1.0001 + sin(x)*0.001
   (four ops a step), forward plus backward, in microseconds per op.
   Printed beside it: what an empty Python call takes at that moment, since this
   virtual machine's speed drifts (the per-op figure in such calls drifts less).
   With ``--against REV`` (a git revision of this repository), the same chain on
   that revision's gradcli and on this tree's, in alternating fresh processes,
   each the best CPU time of 15 chains: the before-and-after of a change, in
   one run on one machine.
2. Large arrays: value and gradient of f(x) = sum(sin(x)*x + exp(-x*x)), as a
   ratio to a hand-written numpy value-and-gradient of the same f, both timed
   here, in the same process, in turns.
3. Peak memory of the n = 10^7 case, each in a fresh process, beyond the input
   array, in units of the input's size (numpy's allocations, via tracemalloc).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import gradcli as gc  # noqa: E402


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_times(fns, repeat: int) -> list[float]:
    """Median time of each function, run in turns (a, b, a, b, ...), so that a
    machine speeding up or slowing down mid-run weighs on every one alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def empty_call_ns() -> float:
    """What one call of an empty Python function takes here: this machine's
    speed at the moment, to read the per-op figure against."""

    def f():
        pass

    def loop():
        for _ in range(100_000):
            f()

    return median_time(loop, 9) / 100_000 * 1e9


def chain(steps: int = 2500) -> None:
    x = gc.tensor(0.5, dtype=gc.float64, requires_grad=True)
    y = x
    for _ in range(steps):
        y = y * 1.0001 + gc.sin(y) * 0.001
    y.backward()


def numpy_value_and_grad(x: np.ndarray):
    s = np.sin(x)
    e = np.exp(-x * x)
    value = np.sum(s * x + e)
    grad = np.cos(x) * x + s - 2 * x * e
    return value, grad


def gradcli_value_and_grad(x: np.ndarray):
    t = gc.Tensor(x, requires_grad=True)  # wraps the array, no copy
    y = gc.sum(gc.sin(t) * t + gc.exp(-t * t))
    y.backward()
    return y.item(), t.grad.numpy()


def gradcli_from_a_copy(x: np.ndarray):
    """As a user writes it: gc.tensor copies the array (counted too)."""
    t = gc.tensor(x, requires_grad=True)
    y = gc.sum(gc.sin(t) * t + gc.exp(-t * t))
    y.backward()
    return y.item(), t.grad.numpy()


_MEMORY = """
import sys, tracemalloc
import numpy as np
sys.path.insert(0, {root!r})
import gradcli as gc
sys.path.insert(0, {bench!r})
from engine import gradcli_from_a_copy, gradcli_value_and_grad, numpy_value_and_grad
x = np.random.default_rng(0).standard_normal({n})
fn = {fn}
fn(x[:10])  # warm up imports and caches outside the measurement
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
value, grad = fn(x)
peak = tracemalloc.get_traced_memory()[1]
print((peak - base) / x.nbytes)
"""


_PHASES = """
import sys, tracemalloc
import numpy as np
sys.path.insert(0, {root!r})
import gradcli as gc
x = np.random.default_rng(0).standard_normal({n})
def forward(x):
    t = gc.tensor(x, requires_grad=True)
    return t, gc.sum(gc.sin(t) * t + gc.exp(-t * t))
forward(x[:10])[1].backward()
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
t, y = forward(x)
fwd = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
y.backward()
bwd = tracemalloc.get_traced_memory()[1]
print((fwd - base) / x.nbytes, (bwd - base) / x.nbytes)
"""


def peak_memory_phases(n: int) -> tuple[float, float]:
    """The copy-included peak of the forward pass and of the backward pass apart."""
    here = Path(__file__).resolve().parent
    code = _PHASES.format(root=str(here.parent), n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    fwd, bwd = out.stdout.split()
    return float(fwd), float(bwd)


def peak_memory(fn_name: str, n: int) -> float:
    here = Path(__file__).resolve().parent
    code = _MEMORY.format(root=str(here.parent), bench=str(here), n=n, fn=fn_name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


_CHAIN = """
import sys, time
sys.path.insert(0, {root!r})
import gradcli as gc
sys.path.insert(0, {bench!r})
from engine import chain
chain(200)  # warm up
best = float("inf")
for _ in range(15):
    t0 = time.process_time()
    chain()
    best = min(best, time.process_time() - t0)
print(best / 10_000 * 1e6)
"""


def per_op_against(rev: str, rounds: int) -> None:
    """The chain on revision ``rev`` and on this tree, in turns (a fresh
    process each), printed as medians and their ratio."""
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as old:
        got = subprocess.run(["git", "-C", str(here.parent), "archive", rev, "gradcli"],
                             capture_output=True)
        if got.returncode:
            sys.exit(f"--against {rev}: {got.stderr.decode().strip()}")
        archive = got.stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        figures: dict[str, list[float]] = {old: [], str(here.parent): []}
        for _ in range(rounds):
            for root, got in figures.items():
                code = _CHAIN.format(root=root, bench=str(here))
                out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True)
                got.append(float(out.stdout))
        before, after = (statistics.median(v) for v in figures.values())
    print(f"per-op overhead, {rev} against this tree ({rounds} alternating processes, "
          f"each the best CPU time of 15 chains): {before:.3f} -> {after:.3f} us/op, "
          f"ratio {after / before:.3f} (target <= 1)")


def main() -> None:
    quick = "--quick" in sys.argv
    if "--against" in sys.argv:
        per_op_against(sys.argv[sys.argv.index("--against") + 1], 4 if quick else 12)
        return
    print("gradcli engine benchmark (medians; ratios against baselines run here)")
    chain()  # warm-up
    t = median_time(chain, 5 if quick else 15)
    call = empty_call_ns()
    print(f"per-op overhead: {t / 10_000 * 1e6:.2f} us/op "
          f"(chain of 10,000 scalar ops, forward + backward; target <= 3); "
          f"an empty Python call takes {call:.0f} ns here, so one op costs "
          f"{t / 10_000 * 1e9 / call:.0f} such calls")

    rng = np.random.default_rng(0)
    for n in (10**6,) if quick else (10**6, 10**7):
        x = rng.standard_normal(n)
        v1, g1 = numpy_value_and_grad(x)
        v2, g2 = gradcli_value_and_grad(x)
        assert np.isclose(v1, v2) and np.allclose(g1, g2), "gradcli disagrees with numpy"
        reps = 7 if n == 10**7 else 21
        tn, tg = median_times([lambda x=x: numpy_value_and_grad(x),
                               lambda x=x: gradcli_value_and_grad(x)], reps)
        print(f"value+grad n=1e{len(str(n)) - 1}: gradcli {tg * 1e3:.1f} ms, "
              f"numpy {tn * 1e3:.1f} ms, ratio {tg / tn:.2f}x (target <= 1.15)")

    n = 10**6 if quick else 10**7
    mg = peak_memory("gradcli_value_and_grad", n)
    mc = peak_memory("gradcli_from_a_copy", n)
    mn = peak_memory("numpy_value_and_grad", n)
    print(f"peak memory n=1e{len(str(n)) - 1}, in units of the input's size: "
          f"from x = gc.tensor(xn, requires_grad=True) on (the copy included) "
          f"{mc:.2f}x (target <= 5.0); wrapping xn without a copy {mg:.2f}x beyond "
          f"it; hand-written numpy {mn:.2f}x beyond it")
    fwd, bwd = peak_memory_phases(n)
    print(f"  of which: the forward pass peaks at {fwd:.2f}x, the backward pass at "
          f"{bwd:.2f}x (copy included; what the forward saved for the rules counts "
          f"in both)")


if __name__ == "__main__":
    main()
