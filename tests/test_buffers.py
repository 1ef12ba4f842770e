"""Large arrays: the backward walk reuses buffers in place (``fastpath.scaled``).

Arrays from ``fastpath.INPLACE_MIN`` elements up take that path, smaller ones never
do, so the functions below run twice: once as is, once with the cut-off raised
out of reach. The gradients must agree bit for bit and with the hand-derived
gradient; and no array the user can see may change.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcli as gc
from gradcli.engine import fastpath

N = 2 * fastpath.INPLACE_MIN
RNG = np.random.default_rng(7)
X = RNG.uniform(0.1, 2.0, N)
W = RNG.standard_normal(N)
W2 = RNG.standard_normal((2, N))


def _grad(f, x, *, inplace: bool, monkeypatch, **backward):
    monkeypatch.setattr(fastpath, "INPLACE_MIN", fastpath.INPLACE_MIN if inplace else 1 << 62)
    t = gc.Tensor(x.copy(), requires_grad=True)
    f(t).backward(**backward)
    return t.grad.data


def _square_plus_self(y):
    return gc.sum(y * y + y)  # y reaches the sum three times


# f, and its gradient derived by hand
CASES = {
    "bench": (lambda t: gc.sum(gc.sin(t) * t + gc.exp(-t * t)),
              lambda x: np.cos(x) * x + np.sin(x) - 2 * x * np.exp(-x * x)),
    "neg chain": (lambda t: gc.sum(gc.neg(gc.neg(-t)) * W), lambda x: -W),
    "cos tanh": (lambda t: gc.sum(gc.cos(t) * gc.tanh(t)),
                 lambda x: -np.sin(x) * np.tanh(x) + np.cos(x) * (1 - np.tanh(x) ** 2)),
    "shared output": (lambda t: _square_plus_self(gc.exp(t)),
                      lambda x: 2 * np.exp(2 * x) + np.exp(x)),
    "square sub": (lambda t: gc.sum(gc.square(t) - 3.0 * t), lambda x: 2 * x - 3.0),
    "broadcast factor": (lambda t: gc.sum(gc.sin(t) * gc.tensor([2.0], dtype=gc.float64)),
                         lambda x: 2.0 * np.cos(x)),
    "float32 cotangent": (
        lambda t: gc.sum(gc.sin(t) * W.astype(np.float32)),
        lambda x: np.cos(x) * W.astype(np.float32)),
    # -g subtracted in place only where shapes agree: here they do not
    "sub broadcast": (lambda t: gc.sum((gc.tensor(np.ones((2, N))) - t) * W2)
                      + gc.sum(gc.sin(t)),
                      lambda x: np.cos(x) - W2.sum(axis=0)),
    "masked": (lambda t: gc.sum(gc.where(t > 1.0, gc.sqrt(t - 1.0), 0.0) * gc.sin(t)),
               lambda x: np.where(x > 1.0, np.cos(x) * np.sqrt(np.abs(x - 1.0))
                                  + np.sin(x) / (2 * np.sqrt(np.abs(x - 1.0)) + (x <= 1.0)),
                                  0.0)),
}


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # sqrt's branch not taken
@pytest.mark.parametrize("name", sorted(CASES))
def test_in_place_walk_matches_the_plain_walk_and_the_hand_derived_gradient(name,
                                                                            monkeypatch):
    f, df = CASES[name]
    fast = _grad(f, X, inplace=True, monkeypatch=monkeypatch)
    plain = _grad(f, X, inplace=False, monkeypatch=monkeypatch)
    np.testing.assert_array_equal(fast, plain)
    np.testing.assert_allclose(fast, df(X), rtol=1e-12, atol=1e-12)


def test_a_given_gradient_and_every_array_the_user_holds_are_left_alone():
    x = X.copy()
    t = gc.Tensor(x, requires_grad=True)
    s = gc.sin(t)
    e = gc.exp(-t * t)
    y = s * t + e
    seed = W.copy()
    held = (x, s.data.numpy(), e.data.numpy(), y.data.numpy(), seed)
    before = [a.copy() for a in held]
    y.backward(gradient=seed, retain_graph=True)
    first = t.grad.numpy().copy()
    for kept, now in zip(before, held):
        np.testing.assert_array_equal(kept, now)
    expected = W * (np.cos(X) * X + np.sin(X) - 2 * X * np.exp(-X * X))
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-12)
    t.grad = None
    y.backward(gradient=seed)  # the retained graph walks again to the same numbers
    np.testing.assert_array_equal(t.grad.data, first)


def test_leaf_gradients_never_share_a_buffer():
    a = gc.Tensor(X.copy(), requires_grad=True)
    b = gc.Tensor(X.copy(), requires_grad=True)
    gc.sum(-(a * b)).backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    np.testing.assert_array_equal(a.grad.data, -X)
    np.testing.assert_array_equal(b.grad.data, -X)
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.data, -X)


def test_create_graph_on_large_arrays_gives_the_second_derivative():
    t = gc.Tensor(X.copy(), requires_grad=True)
    gc.sum(gc.sin(t) * t).backward(create_graph=True)
    g = t.grad
    t.grad = None
    gc.sum(g).backward()
    np.testing.assert_allclose(t.grad.data, 2 * np.cos(X) - X * np.sin(X), rtol=1e-12,
                               atol=1e-12)


def test_a_float32_input_among_float64_values(monkeypatch):
    def f(t):
        return gc.sum((gc.tensor(W) - t) * W) + gc.sum(gc.sin(t))

    x = X.astype(np.float32)
    fast = _grad(f, x, inplace=True, monkeypatch=monkeypatch)
    plain = _grad(f, x, inplace=False, monkeypatch=monkeypatch)
    assert fast.dtype == plain.dtype == np.float32
    np.testing.assert_array_equal(fast, plain)
    np.testing.assert_allclose(fast, np.cos(x) - W, rtol=1e-5, atol=1e-5)


def _backward_peak(f, x) -> float:
    """Peak memory of ``f(t).backward()`` in units of ``x``, counted over what was
    held when the forward pass started (the copy of ``x`` included)."""
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        t = gc.tensor(x, requires_grad=True)
        y = f(t)
        tracemalloc.reset_peak()
        y.backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(t.grad.numpy(), CASES["bench"][1](x), rtol=1e-12, atol=1e-12)
    return (peak - base) / x.nbytes


def test_the_last_rule_reading_a_gradient_nobody_else_holds_writes_into_it():
    # sum(sin(x)*x + exp(-x*x)): after the walk, the copy, sin(x), -x and exp(-x*x)
    # are held (4 arrays); mul(-x, x) then needs two gradients. Its incoming one is
    # exp's output, freed by exp's node: the second gradient goes into it, so the
    # walk peaks at 5 arrays (it made 6 before: a new one for each gradient).
    f = CASES["bench"][0]
    assert _backward_peak(f, X) < 5.1


def test_a_gradient_someone_still_holds_is_not_written_into():
    # The same function with exp's output held by the user, or by the retained
    # graph, or read by a retain_grad hook: it must keep its values.
    t = gc.Tensor(X.copy(), requires_grad=True)
    e = gc.exp(-t * t)
    e.retain_grad()
    y = gc.sum(gc.sin(t) * t + e)
    kept = e.data.numpy().copy()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(e.data.numpy(), kept)
    np.testing.assert_array_equal(e.grad.numpy(), np.ones(N))
    first = t.grad.numpy().copy()
    np.testing.assert_allclose(first, CASES["bench"][1](X), rtol=1e-12, atol=1e-12)
    t.grad = None
    y.backward()  # walks again over the same saved values
    np.testing.assert_array_equal(t.grad.numpy(), first)
    np.testing.assert_array_equal(e.data.numpy(), kept)


def _glibc() -> bool:
    import os
    import sys

    return sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")


def test_freed_arrays_stay_for_the_next_call_under_glibc(monkeypatch):
    # (fastpath.keep_freed_memory, run at import.) Four 2 MB arrays made and
    # freed five times: with glibc's own thresholds the heap is trimmed after
    # each round and every page faults in again (one fault per 4 kB: ~10,000);
    # kept, the rounds after the first reuse the same memory.
    monkeypatch.setenv("GRADCLI_MALLOC", "default")
    assert fastpath.keep_freed_memory() is False
    monkeypatch.delenv("GRADCLI_MALLOC")
    assert fastpath.keep_freed_memory() is _glibc()
    if _glibc():
        import resource

        def round_():
            return [np.ones(1 << 18) for _ in range(4)]

        round_()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(5):
            round_()
        assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 500
