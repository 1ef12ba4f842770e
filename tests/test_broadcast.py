"""unbroadcast(): exactly each input's shape, values the sum over broadcast axes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcli as gc
from gradcli.engine.broadcast import unbroadcast


def explicit_sum(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum g over the axes numpy broadcast to turn `shape` into g.shape, by
    looping over g's elements and adding each into the input element it came from."""
    out = np.zeros(shape)
    lead = g.ndim - len(shape)
    for idx in np.ndindex(g.shape):
        src = tuple(0 if n == 1 else i for i, n in zip(idx[lead:], shape))
        out[src] += g[idx]
    return out


@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=4, max_side=3),
    data=st.data(),
)
def test_unbroadcast_returns_each_input_shape(shapes, data):
    g = data.draw(
        hnp.arrays(
            np.float64, shapes.result_shape, elements=st.integers(-9, 9).map(float)
        ),
        label="g",
    )
    for shape in shapes.input_shapes:
        r = np.asarray(unbroadcast(g, shape))
        assert r.shape == shape
        # Small integers: every sum is exact, whatever the summation order.
        np.testing.assert_array_equal(r, explicit_sum(g, shape))


@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3),
    data=st.data(),
)
def test_unbroadcast_on_tensors_keeps_the_graph(shapes, data):
    # create_graph runs unbroadcast on Tensors: same shapes and values, and the
    # result still differentiates back to g (as the sum it is: all ones).
    gv = data.draw(
        hnp.arrays(
            np.float64, shapes.result_shape, elements=st.integers(-9, 9).map(float)
        ),
        label="g",
    )
    for shape in shapes.input_shapes:
        g = gc.tensor(gv, requires_grad=True)
        r = unbroadcast(g, shape)
        assert tuple(r.shape) == shape
        np.testing.assert_array_equal(np.asarray(r.data), explicit_sum(gv, shape))
        assert r.requires_grad
        r.sum().backward()
        np.testing.assert_array_equal(g.grad.data, np.ones(gv.shape))


def test_unbroadcast_examples():
    g = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(unbroadcast(g, (3,)), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(unbroadcast(g, (2, 1)), [[3.0], [12.0]])
    np.testing.assert_array_equal(unbroadcast(g, (1, 1)), [[15.0]])
    assert unbroadcast(g, ()) == 15.0 and np.shape(unbroadcast(g, ())) == ()
    assert unbroadcast(g, (2, 3)) is g


def test_unbroadcast_rejects_shapes_that_did_not_broadcast():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)|\(4,\).*\(2, 3\)"):
        unbroadcast(np.ones((2, 3)), (4,))
