"""``Tensor.grad_fn``: PyTorch's typed object over the engine's one Node class.

The truths here are PyTorch's documented behaviour (and the reference notebook's
``grad_fn=<MulBackward0>``): a grad_fn's class is named after its op, it is the
same object each time it is read, ``next_functions`` gives the inputs' grad_fn
objects (a leaf's ``AccumulateGrad``, one per leaf), ``metadata`` is a dict kept
with the node, and ``grad_fn`` is read-only.
"""

from __future__ import annotations

import gc as pygc
import re
import weakref

import numpy as np
import pytest

import gradcli as gc
from gradcli.engine.graph import AccumulateGrad, GradFn, Node


def _x():
    return gc.tensor([1.0, 2.0], dtype=gc.float64, requires_grad=True)


def test_the_same_object_each_read_and_while_held_after_its_tensor_is_gone():
    x = _x()
    y = x * 3.0
    assert y.grad_fn is y.grad_fn
    fn = y.grad_fn
    assert isinstance(fn, GradFn) and type(fn).__name__ == "MulBackward0"
    assert fn.name() == "MulBackward0"
    assert re.fullmatch(r"<MulBackward0 object at 0x[0-9a-f]+>", repr(fn))
    del y
    (acc, k), (const, _) = fn.next_functions  # the graph is alive while fn is held
    assert acc.variable is x and k == 0 and const is None


def test_next_functions_give_the_inputs_own_grad_fn_objects():
    x = _x()
    a = gc.sin(x)
    b = gc.exp(x)
    s = gc.sum(a * b)
    (mul, _), = s.grad_fn.next_functions
    (sin_fn, _), (exp_fn, _) = mul.next_functions
    assert sin_fn is a.grad_fn and exp_fn is b.grad_fn
    assert (type(sin_fn).__name__, type(exp_fn).__name__) == ("SinBackward0", "ExpBackward0")
    assert mul.next_functions[0][0] is sin_fn  # read again: the same objects


def test_a_leaf_has_one_accumulate_grad_however_many_consumers():
    # PyTorch keeps one AccumulateGrad per leaf: every consumer's next_functions
    # shows that one object (gradcli made a new one per read before).
    x = _x()
    a, b = gc.sin(x), x * 2.0
    (acc_a, _), = a.grad_fn.next_functions
    (acc_b, _), _ = b.grad_fn.next_functions
    assert isinstance(acc_a, AccumulateGrad) and acc_a is acc_b and acc_a.variable is x
    assert acc_a.name() == "AccumulateGrad"
    assert a.grad_fn.next_functions[0][0] is acc_a


def test_metadata_is_one_dict_kept_with_the_node():
    x = _x()
    y = x * x
    y.grad_fn.metadata["note"] = 1  # the view read here is dropped at once
    assert y.grad_fn.metadata == {"note": 1}
    assert (x + 1.0).grad_fn.metadata == {}


def test_grad_fn_cannot_be_assigned():
    # PyTorch: AttributeError (grad_fn is not writable); before, the assignment
    # silently cut the tensor from its graph.
    x = _x()
    y = x * 2.0
    with pytest.raises(AttributeError):
        y.grad_fn = None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [2.0, 2.0])


def test_the_graph_is_of_one_class_and_holds_no_grad_fn_object():
    # The walk's edges are Nodes and leaves only, whatever the user read.
    x = _x()
    y = gc.sum(gc.tanh(x * x) + gc.concatenate([x, x])[:2])
    seen = [y.grad_fn, *[fn for fn, _ in y.grad_fn.next_functions]]  # views made
    stack, nodes = [y._grad_fn], []
    while stack:
        n = stack.pop()
        nodes.append(n)
        for p in n.parents:
            assert p is None or type(p) is Node or p is x
            if type(p) is Node:
                stack.append(p)
    assert len(nodes) == 6 and seen  # sum, add, tanh, mul, index, cat
    y.backward()
    # d/dx_i of sum(tanh(x^2)) + x_i (the first two of cat([x, x])): 2x sech^2(x^2) + 1
    xn = np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.detach().numpy(),
                               2 * xn / np.cosh(xn * xn) ** 2 + 1, rtol=1e-14)


def test_a_read_grad_fn_makes_no_reference_cycle():
    # The node refers to its view weakly: dropping the tensor and the view frees
    # the node (and the values it saved) without waiting for the cyclic collector.
    was = pygc.isenabled()
    pygc.disable()
    try:
        x = _x()
        y = gc.sin(x) * x
        fn = y.grad_fn
        node = weakref.ref(y._grad_fn)
        assert fn.next_functions
        del y, fn
        assert node() is None
    finally:
        if was:
            pygc.enable()
