"""Silent wrong answers a red-team tester found, each pinned by a check that
failed before its fix. Expected values are derived by hand beside each check
(PyTorch's and numpy's documented results), or by numpy on plain arrays, or
by central finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcli as gc
from helpers import central, f64


def same(t, values, dtype):
    """``t`` is a Tensor of exactly these values and this dtype."""
    assert isinstance(t, gc.Tensor)
    assert t.dtype == np.dtype(dtype), t.dtype
    assert t.tolist() == values


# == & | ^ ~: bitwise on integers, logical on bools, refused on floats ==============
# 6 = 0b0110, 5 = 0b0101, 12 = 0b1100.
def test_bitwise_operators_on_integer_tensors():
    i = gc.tensor([6, 5, 12])
    same(i & 1, [0, 1, 0], np.int64)  # the low bit
    same(i & 3, [2, 1, 0], np.int64)
    same(i | 0, [6, 5, 12], np.int64)
    same(i | 1, [7, 5, 13], np.int64)
    same(i ^ 3, [5, 6, 15], np.int64)
    same(~i, [-7, -6, -13], np.int64)  # two's complement: ~n == -n - 1
    same(3 & i, [2, 1, 0], np.int64)  # reflected
    same(1 | i, [7, 5, 13], np.int64)
    same(3 ^ i, [5, 6, 15], np.int64)
    same(i & gc.tensor([4, 4, 4]), [4, 4, 4], np.int64)


def test_numpy_bitwise_functions_on_integer_tensors_are_numpys():
    i = gc.tensor([6, 5, 12])
    plain = np.array([6, 5, 12])
    for ufunc, args in ((np.bitwise_and, (i, 3)), (np.bitwise_or, (i, 9)),
                        (np.bitwise_xor, (i, 5)), (np.invert, (i,))):
        got = ufunc(*args)
        want = ufunc(*[plain if a is i else a for a in args])
        same(got, want.tolist(), want.dtype)
    same(np.array([6, 5, 12]) & i, [6, 5, 12], np.int64)  # ndarray on the left
    same(np.logical_and(i, 1), [True, True, True], bool)  # logical stays logical


def test_bitwise_operators_on_bool_tensors_are_logical():
    a = gc.tensor([True, True, False, False])
    b = gc.tensor([True, False, True, False])
    same(a & b, [True, False, False, False], bool)
    same(a | b, [True, True, True, False], bool)
    same(a ^ b, [False, True, True, False], bool)
    same(~a, [False, False, True, True], bool)
    x = f64([0.5, 1.5, 2.5], requires_grad=True)
    same((x > 1) & (x < 2), [False, True, False], bool)  # masks, as before
    same(~(x > 1), [True, False, False], bool)


@pytest.mark.parametrize("expr", [
    lambda f: f & 1, lambda f: 1 | f, lambda f: f ^ f, lambda f: ~f,
    lambda f: np.bitwise_and(f, 1), lambda f: gc.tensor([1, 2]) & 1.5,
])
def test_bitwise_operators_refuse_floats(expr):
    with pytest.raises(TypeError, match="only integer and bool tensors, not float"):
        expr(gc.tensor([1.0, 2.0]))
