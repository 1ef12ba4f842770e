"""Issue 10: a Tensor method or gc.* function with a PyTorch name behaves as in
PyTorch; where gradcli cannot match, it raises a clear error; it never returns a
different number.

Every expected value here is independent of the engine: derived by hand (stated
beside it), from central finite differences, or PyTorch's documented behaviour
(torch itself is not a dependency). One section per part of the issue.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcli as gc
from gradcli import Tensor
from helpers import cli


def f64(values, requires_grad: bool = False) -> Tensor:
    return gc.tensor(values, dtype=gc.float64, requires_grad=requires_grad)


def central_difference(f, x: float, h: float = 1e-6) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


# == 1. In-place updates ==========================================================
# -- training loops -------------------------------------------------------------
C = np.array([1.0, -2.0, 0.5])
P0 = np.array([3.0, 2.0, -1.5])


def quadratic(p):
    return ((p - f64(C)) ** 2).sum()


def expected_losses(steps: int, lr: float) -> list[float]:
    # loss = |p - c|^2, gradient 2 (p - c): one step multiplies p - c by (1 - 2 lr),
    # so the loss by (1 - 2 lr)^2. With lr = 0.25: a quarter per step.
    loss0 = float(np.sum((P0 - C) ** 2))  # 4 + 16 + 4 = 24
    return [loss0 * (1 - 2 * lr) ** (2 * k) for k in range(steps)]


def sgd(params, lr, batch_size):  # the reference notebook's (d2l's) update
    with gc.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def test_sgd_under_no_grad_trains_the_parameter():
    p = f64(P0, requires_grad=True)
    losses = []
    for _ in range(5):
        loss = quadratic(p)
        losses.append(loss.item())
        loss.backward()
        sgd([p], lr=0.25, batch_size=1)
    assert losses == pytest.approx(expected_losses(5, 0.25), rel=1e-12)
    assert losses[0] == 24.0 and losses[-1] == pytest.approx(24.0 / 4**4)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None


@pytest.mark.parametrize("update", ["sub_", "data", "grad_none"])
def test_other_usual_update_loops_train(update):
    p = f64(P0, requires_grad=True)
    original = p
    losses = []
    for _ in range(4):
        loss = quadratic(p)
        losses.append(loss.item())
        loss.backward()
        if update == "sub_":
            with gc.no_grad():
                p.sub_(0.25 * p.grad)
            p.grad.zero_()
        elif update == "data":
            p.data -= 0.25 * p.grad.data
            p.grad.zero_()
        else:
            with gc.no_grad():
                p -= 0.25 * p.grad
            p.grad = None
    assert losses == pytest.approx(expected_losses(4, 0.25), rel=1e-12)
    assert p is original and p.is_leaf and p.requires_grad


# -- the same object, the same memory --------------------------------------------
def test_in_place_operators_keep_the_object_and_its_memory():
    x = f64([1.0, 2.0, 3.0])
    before, buffer = x, x.numpy()
    x += 1
    x -= 0.5
    x *= 4
    x /= 2
    assert x is before
    assert x.numpy() is buffer
    np.testing.assert_array_equal(buffer, [3.0, 5.0, 7.0])  # ((v + 1 - 0.5) * 4) / 2


def test_every_alias_sees_an_in_place_change():
    x = f64([0.0, 1.0, 2.0, 3.0])
    detached, data, view, row = x.detach(), x.data, x[1:3], x[2]
    x.add_(10)
    for alias, expected in ((detached, [10, 11, 12, 13]), (data, [10, 11, 12, 13]),
                            (view, [11, 12]), (row, 12)):
        np.testing.assert_array_equal(alias.numpy(), expected)
    view.mul_(-1)  # through a view: the base changes (PyTorch's views share storage)
    np.testing.assert_array_equal(x.numpy(), [10, -11, -12, 13])
    x[0] = 7.0
    np.testing.assert_array_equal(detached.numpy(), [7, -11, -12, 13])
    data.zero_()
    np.testing.assert_array_equal(x.numpy(), [0, 0, 0, 0])


def test_each_in_place_method_gives_the_documented_values():
    def fresh():
        return f64([-2.0, 0.5, 3.0])

    cases = [
        (lambda t: t.add_(2.0), [0.0, 2.5, 5.0]),
        (lambda t: t.add_(f64([1.0, 1.0, 1.0]), alpha=3), [1.0, 3.5, 6.0]),
        (lambda t: t.sub_(1.0), [-3.0, -0.5, 2.0]),
        (lambda t: t.sub_(2.0, alpha=0.5), [-3.0, -0.5, 2.0]),
        (lambda t: t.mul_(f64([2.0, 4.0, -1.0])), [-4.0, 2.0, -3.0]),
        (lambda t: t.div_(2.0), [-1.0, 0.25, 1.5]),
        (lambda t: t.neg_(), [2.0, -0.5, -3.0]),
        (lambda t: t.clamp_(-1.0, 1.0), [-1.0, 0.5, 1.0]),
        (lambda t: t.clamp_(min=0.0), [0.0, 0.5, 3.0]),
        (lambda t: t.clamp_(max=0.0), [-2.0, 0.0, 0.0]),
        (lambda t: t.copy_(f64([7.0, 8.0, 9.0])), [7.0, 8.0, 9.0]),
        (lambda t: t.copy_(f64(5.0)), [5.0, 5.0, 5.0]),  # broadcast
        (lambda t: t.fill_(1.5), [1.5, 1.5, 1.5]),
        (lambda t: t.zero_(), [0.0, 0.0, 0.0]),
    ]
    for method, expected in cases:
        t = fresh()
        buffer = t.numpy()
        assert method(t) is t
        np.testing.assert_array_equal(buffer, expected)


def test_item_assignment_follows_numpy_indexing():
    x = f64(np.zeros((2, 3)))
    x[0] = 1.0
    x[1, 1:] = f64([5.0, 6.0])
    x[x > 5.5] = -1.0  # a boolean mask
    x[[1, 1], [0, 0]] = 9.0  # repeated advanced indices
    np.testing.assert_array_equal(x.numpy(), [[1, 1, 1], [9, 5, -1]])


def test_copy_and_fill_cast_to_the_tensor_dtype_and_arithmetic_refuses_to():
    i = gc.tensor([1, 2, 3])  # int64
    i.copy_(f64([1.9, -2.9, 3.5]))  # copy_ casts (truncation toward zero)
    np.testing.assert_array_equal(i.numpy(), [1, -2, 3])
    assert i.dtype == np.int64
    with pytest.raises(RuntimeError, match="can't be cast"):
        i += 1.5  # PyTorch: result type Float can't be cast to Long
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        v = f64([1.0, 2.0])
        v += f64(np.ones((3, 2)))
    np.testing.assert_array_equal(i.numpy(), [1, -2, 3])  # unchanged by the errors


def test_detach_and_requires_grad_in_place():
    x = f64([1.0, 2.0], requires_grad=True)
    y = x * 3
    assert y.detach_() is y and y.grad_fn is None and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])
    c = f64([1.0, 2.0])
    assert c.requires_grad_() is c and c.requires_grad and c.is_leaf


# -- a leaf that requires grad ---------------------------------------------------
@pytest.mark.parametrize("change", [
    lambda p: p.__iadd__(1.0), lambda p: p.sub_(1.0), lambda p: p.mul_(2.0),
    lambda p: p.div_(2.0), lambda p: p.neg_(), lambda p: p.clamp_(0.0, 1.0),
    lambda p: p.copy_(f64([0.0, 0.0])), lambda p: p.fill_(0.0), lambda p: p.zero_(),
    lambda p: p.__setitem__(0, 5.0),
])
def test_a_leaf_that_requires_grad_refuses_in_place_changes_while_recording(change):
    p = f64([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being "
                                           "used in an in-place operation"):
        change(p)
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 2.0])
    assert p.is_leaf and p.requires_grad
    with gc.no_grad():
        change(p)  # allowed without recording
    assert p.is_leaf and p.requires_grad


# -- a non-leaf: recorded ---------------------------------------------------------
X0 = 0.7


def in_place_chain(x):
    y = x * x
    y += x  # x^2 + x
    y *= 3  # 3 x^2 + 3 x
    y.sub_(x, alpha=2)  # 3 x^2 + x
    y.div_(x + 1)  # (3 x^2 + x) / (x + 1)
    y.neg_()
    return y


def test_in_place_changes_of_a_non_leaf_are_differentiated():
    x = f64(X0, requires_grad=True)
    y = in_place_chain(x)
    value = -(3 * X0**2 + X0) / (X0 + 1)
    assert y.item() == pytest.approx(value, rel=1e-14)
    assert not y.is_leaf
    y.backward()
    # d/dx of -(3x^2 + x)/(x + 1) = -((6x + 1)(x + 1) - (3x^2 + x)) / (x + 1)^2
    by_hand = -((6 * X0 + 1) * (X0 + 1) - (3 * X0**2 + X0)) / (X0 + 1) ** 2
    assert x.grad.item() == pytest.approx(by_hand, rel=1e-12)
    numeric = central_difference(lambda v: in_place_chain(f64(v)).item(), X0)
    assert x.grad.item() == pytest.approx(numeric, rel=1e-7)


def test_an_in_place_product_with_itself_uses_the_old_value():
    x = f64(1.5, requires_grad=True)
    y = 2 * x + 1
    y *= y  # (2x + 1)^2: derivative 4 (2x + 1) = 16 at x = 1.5
    y.backward()
    assert y.item() == 16.0 and x.grad.item() == 16.0


def test_item_assignment_records_the_gradient_of_the_value():
    x = f64(0.3, requires_grad=True)
    out = gc.zeros(3, dtype=gc.float64)  # a constant, written into
    out[0] = x * x
    out[2] = gc.sin(x)
    out[1:] = out[1:] * 2  # out = [x^2, 0, 2 sin x]
    assert out.requires_grad and not out.is_leaf
    out.sum().backward()
    assert x.grad.item() == pytest.approx(2 * 0.3 + 2 * np.cos(0.3), rel=1e-14)

    w = f64([1.0, 2.0, 3.0], requires_grad=True)
    y = w * 1.0
    y[1] = 10.0  # the overwritten element sends no gradient back
    (y * f64([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 0.0, 3.0])


def _filled(x):
    out = gc.zeros(3, dtype=gc.float64)
    out[0] = x[0] * x[1]
    out[1:] = x[1:] ** 2
    out *= x
    return out.sum()  # x0^2 x1 + x1^3 + x2^3


def test_gradient_jacobian_and_hessian_through_item_assignment():
    a, b, c = 0.5, 1.5, -2.0
    x = np.array([a, b, c])
    np.testing.assert_allclose(gc.grad(_filled)(x).numpy(),
                               [2 * a * b, a * a + 3 * b * b, 3 * c * c], rtol=1e-15)
    np.testing.assert_allclose(gc.hessian(_filled)(x).numpy(),
                               [[2 * b, 2 * a, 0], [2 * a, 6 * b, 0], [0, 0, 6 * c]],
                               rtol=1e-15)
    jac = gc.jacobian(lambda v: gc.tensor([v[0] * v[1], v[1]]))(np.array([2.0, 3.0]))
    np.testing.assert_array_equal(jac.numpy(), [[3.0, 2.0], [0.0, 1.0]])


def test_clamp_copy_and_fill_of_a_non_leaf_are_differentiated():
    x = f64([-2.0, 0.5, 3.0], requires_grad=True)
    y = x * 2
    y.clamp_(-1.0, 1.0)  # 2x inside [-1, 1]: derivative 2, else 0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0, 0.0])

    s = f64(2.0, requires_grad=True)
    z = x.detach() * 1.0  # a constant
    z.copy_(s * s)  # broadcast: three copies of s^2, derivative 3 * 2s = 12
    z.sum().backward()
    assert s.grad.item() == 12.0

    x.grad = None
    u = x * 5
    u.fill_(1.0)  # PyTorch: still in the graph, the old values get gradient 0
    assert u.requires_grad
    u.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_a_value_requiring_grad_cannot_be_written_into_an_integer_tensor():
    x = f64(1.5, requires_grad=True)
    i = gc.zeros(3, dtype=gc.int64)
    with pytest.raises(RuntimeError, match="floating point"):
        i[0] = x  # the gradient would be dropped
    np.testing.assert_array_equal(i.numpy(), [0, 0, 0])
    with gc.no_grad():
        i[0] = x  # values only: cast, as PyTorch's index_put_
    np.testing.assert_array_equal(i.numpy(), [1, 0, 0])


def test_clone_is_a_copy_in_the_graph():
    x = f64([1.0, -0.0], requires_grad=True)
    c = x.clone()
    assert not np.shares_memory(c.detach().numpy(), x.detach().numpy())
    assert np.signbit(c.detach().numpy()[1])  # -0.0 stays -0.0
    c += 1.0  # a non-leaf: recorded, x untouched
    (c * c).sum().backward()  # 2 (x + 1)
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 2.0])
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 0.0])


# -- the version counter ------------------------------------------------------------
def test_a_value_saved_for_backward_then_changed_in_place_stops_backward():
    x = f64([0.5, 1.0], requires_grad=True)
    y = gc.exp(x)  # exp's rule reads its output
    y.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*exp"):
        y.sum().backward()
    assert x.grad is None  # never a gradient from the new values


def test_a_saved_leaf_changed_under_no_grad_stops_backward():
    x = f64([0.5, 1.0], requires_grad=True)
    y = (x * x).sum()  # mul saves x
    with gc.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"mul.*changed in place"):
        y.backward()
    assert x.grad is None
    (x * x).sum().backward()  # a graph recorded after the change is fine: 2x
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_an_alias_changing_a_saved_value_stops_backward():
    x = f64([0.5, 1.0], requires_grad=True)
    y = (gc.sin(x) * 1.0).sum()  # sin saves x
    x.detach()[0] = 100.0  # through another tensor on the same memory
    with pytest.raises(RuntimeError, match=r"sin.*changed in place"):
        y.backward()


def test_a_view_whose_memory_changed_in_place_stops_backward():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1.0
    v = y[0:2]  # a view of y: PyTorch would rebase its history, gradcli refuses
    y.mul_(3.0)
    with pytest.raises(RuntimeError, match="view"):
        v.sum().backward()
    y.sum().backward()  # y's own history is right: 3 per element
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_a_transposed_view_used_after_its_memory_changed_stops_backward():
    x = f64([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1.0
    t = y.T
    before = (t * 1.0).sum()  # used before the change: fine
    y.add_(1.0)
    after = (t * 1.0).sum()  # used after: its history says y, its values y + 1
    before.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="view"):
        after.backward()


def test_changing_a_view_of_a_live_tensor_while_recording_is_refused():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1.0
    with pytest.raises(RuntimeError, match="share"):
        y[0:2].mul_(2.0)
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, 2.0, 3.0])


def test_changing_the_only_holder_of_a_view_is_recorded():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    z = (x * 2.0)[1:]  # the base is a temporary: nothing else sees the change
    z += 1.0
    z *= z  # (2x + 1)^2 for x = 2, 3: derivative 4 (2x + 1)
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 20.0, 28.0])


def test_retain_graph_backward_after_an_in_place_change_raises():
    x = f64([0.5, 1.0], requires_grad=True)
    y = gc.tanh(x)  # tanh's rule reads its output
    s = y.sum()
    s.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    np.testing.assert_allclose(first, 1 - np.tanh([0.5, 1.0]) ** 2, rtol=1e-15)
    with gc.no_grad():
        y.zero_()
    with pytest.raises(RuntimeError, match="tanh"):
        s.backward()
    np.testing.assert_array_equal(x.grad.numpy(), first)


# -- .data and .numpy() ---------------------------------------------------------------
def test_data_is_a_tensor_sharing_memory_without_grad():
    p = f64([1.0, 2.0], requires_grad=True)
    d = p.data
    assert isinstance(d, Tensor) and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), p.detach().numpy())
    d[0] = 5.0
    np.testing.assert_array_equal(p.detach().numpy(), [5.0, 2.0])
    assert p.is_leaf and p.requires_grad


def test_numpy_of_a_tensor_that_requires_grad_raises_as_pytorch():
    p = f64([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Use tensor\.detach\(\)\.numpy\(\) instead"):
        p.numpy()
    with pytest.raises(RuntimeError, match=r"detach"):
        (p * 2).numpy()
    a = p.detach().numpy()
    assert isinstance(a, np.ndarray) and np.shares_memory(a, p.data.numpy())
    c = f64([3.0])
    assert c.numpy() is c.numpy()  # the tensor's own array, shared


# == 2. Lists of tensors and np.array(t) =================================================
def test_gc_functions_differentiate_through_lists_of_tensors():
    # mean([x, x + 2]) = x + 1: derivative 1 (the bug: 0.0)
    assert float(gc.grad(lambda x: gc.mean([x, x + 2]))(0.0)) == 1.0
    # sum([x, x*x]) = x + x^2: derivative 1 + 2x = 7 at 3
    assert float(gc.grad(lambda x: gc.sum([x, x * x]))(3.0)) == 7.0
    # norm([x, x + 2]) = sqrt(x^2 + (x + 2)^2): derivative (2x + 2) / norm
    got = float(gc.grad(lambda x: gc.norm([x, x + 2]))(1.0))
    assert got == pytest.approx(4 / np.sqrt(10.0), rel=1e-6)


def test_gc_tensor_and_stack_of_nested_lists_keep_the_graph():
    def f(v):
        x = f64(v, requires_grad=True)
        t = gc.tensor([[x, x * x], [1.0, gc.sin(x)]])
        s = gc.stack([[x, 2.0], [3.0, x]])
        return (t.sum() + (s * s).sum()), x

    value, x = f(0.4)
    value.backward()
    # x + x^2 + 1 + sin x + 2 x^2 + 13: derivative 1 + 6x + cos x
    assert x.grad.item() == pytest.approx(1 + 6 * 0.4 + np.cos(0.4), rel=1e-14)
    numeric = central_difference(lambda v: f(v)[0].item(), 0.4)
    assert x.grad.item() == pytest.approx(numeric, rel=1e-8)
    t32 = gc.tensor([gc.tensor(1.0, requires_grad=True), 2.0])
    assert t32.dtype == np.float32  # Python numbers take the tensors' dtype


def test_a_list_argument_of_an_operator_is_stacked():
    x = f64(2.0, requires_grad=True)
    y = f64([1.0, 1.0]) * [x, x * x]  # [x, x^2]: derivative 1 + 2x = 5
    y.sum().backward()
    assert x.grad.item() == 5.0


@pytest.mark.parametrize("convert", [
    lambda x: np.mean([x, x + 2]),
    lambda x: np.sum(np.array([x, x * x])),
    lambda x: np.linalg.norm([x, x + 2]),
    lambda x: np.asarray(x),
    lambda x: np.array(x * 2),
])
def test_turning_a_tensor_that_requires_grad_into_an_array_raises(convert):
    x = f64(1.0, requires_grad=True)
    with pytest.raises((TypeError, RuntimeError), match=r"gc\.stack\(.*\.detach\(\)"):
        convert(x)


def test_conversion_still_works_without_recording_or_without_grad():
    x = f64(1.0, requires_grad=True)
    with gc.no_grad():
        assert np.mean([x, x + 2]) == 2.0
        np.testing.assert_array_equal(np.asarray(x), 1.0)
    assert np.mean([x.detach(), x.detach() + 2]) == 2.0
    c = f64([1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(c), [1.0, 2.0])
    assert np.linalg.norm([f64(3.0), f64(4.0)]) == 5.0


# -- in-place changes and the command line's tools (keep_args graphs, inputs) --------
_cli = cli


IN_PLACE_FILE = '''
def f(x):
    y = x * 1.0
    y += x * x          # x + x^2
    y[0] = y[0] * 3     # [3 (x0 + x0^2), x1 + x1^2]
    return y.sum()


def touches_its_input(x, c):
    c += 1
    return (x * c).sum()
'''


def test_a_function_changing_a_tensor_in_place_passes_the_symbolic_check(tmp_path):
    path = tmp_path / "fn.py"
    path.write_text(IN_PLACE_FILE)
    code, out, err = _cli("eval", f"{path}:f", "--x", "1,2", "--check")
    assert code == 0, err
    # value 3 (1 + 1) + (2 + 4) = 12; gradient [3 (1 + 2 x0), 1 + 2 x1] = [9, 5]
    assert out.splitlines()[:3] == ["value 12", "grad.x 9,5", "check PASS"]
    assert "symbolic: skipped" not in out


def test_the_graph_shows_a_view_with_its_values_before_the_change(tmp_path):
    path = tmp_path / "fn.py"
    path.write_text(IN_PLACE_FILE)
    code, out, err = _cli("graph", f"{path}:f", "--x", "1,2")
    assert code == 0, err
    # y[0] was 2 when it was read (x0 + x0^2), before y[0] became 6
    assert any(line.strip(" │├└─").startswith("IndexBackward0  shape ()  value 2 ")
               for line in out.splitlines()), out


def test_a_function_cannot_change_the_callers_inputs(tmp_path):
    path = tmp_path / "fn.py"
    path.write_text(IN_PLACE_FILE)
    code, out, err = _cli("eval", f"{path}:touches_its_input", "--x", "1,2", "--c", "3,4",
                          "--wrt", "x")
    assert code == 3 and out == ""
    assert "cannot be written" in err


@pytest.mark.parametrize("f", [
    lambda x: gc.relu(x),
    lambda x: gc.clamp(x, min=0.0),
    lambda x: -gc.clamp(-x, max=0.0),
    lambda x: gc.maximum(x, gc.zeros_like(x)),
    lambda x: -gc.minimum(-x, gc.zeros_like(x)),
], ids=["relu", "clamp-min", "clamp-max", "maximum", "minimum"])
def test_flat_regions_stop_an_infinite_cotangent_as_pytorch_does(f):
    # sqrt(f(x)) at x = -1, where f is flat at 0: the derivative is 0 (a constant
    # function), though sqrt sends inf down; PyTorch's rules select (where /
    # masked_fill) rather than multiply, and so do gradcli's. At x = 4: 1/(2*2).
    x = gc.tensor([-1.0, 4.0], dtype=gc.float64, requires_grad=True)
    y = f(x)
    assert y.detach().numpy().tolist() == [0.0, 4.0]
    with np.errstate(divide="ignore"):  # (sqrt's inf at 0, stopped below)
        gc.sqrt(y).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.25]


def test_backward_computes_inf_and_nan_without_numpys_warnings():
    # PyTorch's backward does not warn; gradcli's printed numpy's RuntimeWarning
    # from inside its rules (found by a tester). d sqrt(x)/dx = 1/(2 sqrt(x)): inf at 0.
    import warnings

    x = gc.tensor([0.0, 1.0], dtype=gc.float64, requires_grad=True)
    y = gc.sqrt(x).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y.backward()
    assert x.grad.numpy().tolist() == [np.inf, 0.5]
