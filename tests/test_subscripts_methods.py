"""Issue 11: subscripts with None and '...' in the expression language (numpy's
basic indexing, through all three backends), and the Tensor methods numpy code
calls (astype, squeeze, flatten, ravel, round, argsort, cumsum, repeat, sort).

Truths: numpy's own indexing of the same array for subscript values (the
semantics are numpy's by definition), central finite differences of the numpy
backend for gradients, sympy for the symbolic backend, and values derived by
hand from the numpy or PyTorch documentation beside each method check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcli as gc
from gradcli.backends import NumpyBackend, TensorBackend
from gradcli.engine.ops import OPS
from gradcli.errors import UsageError
from gradcli.interpret import interpret
from gradcli.parse import parse
from gradcli.symbolic import SympyBackend
from helpers import central, cli, f64


# == subscripts: None, '...', with ints, slices and lists ==========================
def _text(part) -> str:
    if part is None:
        return "None"
    if part is Ellipsis:
        return "..."
    if isinstance(part, slice):
        bits = ["" if v is None else str(v) for v in (part.start, part.stop, part.step)]
        return ":".join(bits if part.step is not None else bits[:2])
    return str(part)


@st.composite
def subscripts(draw):
    """(shape, index, text): a valid numpy index of an array of that shape, made
    of ints, slices, at most one '...', any number of None and at most one list."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    used = draw(st.integers(0, len(shape)))
    dots = draw(st.booleans())
    # the axes the parts consume: the leading ones, or with '...' some leading
    # and some trailing
    lead = draw(st.integers(0, used)) if dots else used
    axes = list(range(lead)) + list(range(len(shape) - (used - lead), len(shape)))
    listed = draw(st.sampled_from([None, *range(len(axes))])) if axes else None
    parts = []
    for k, ax in enumerate(axes):
        n = shape[ax]
        if k == listed:
            parts.append(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3)))
        elif draw(st.booleans()):
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            start = draw(st.none() | st.integers(-n - 1, n + 1))
            stop = draw(st.none() | st.integers(-n - 1, n + 1))
            step = draw(st.none() | st.sampled_from([1, 2, -1, -2]))
            parts.append(slice(start, stop, step))
    if dots:
        parts.insert(lead, Ellipsis)
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if len(parts) == 1 and draw(st.booleans()):
        index = parts[0]  # x[None], x[...], x[2], x[1:]: not a tuple
        text = _text(index)
    else:
        index = tuple(parts)
        text = ", ".join(_text(p) for p in parts) + ("," if len(parts) == 1 else "")
        text = text or "()"
    return shape, index, text


def _engine(tree, x: np.ndarray):
    t = f64(x, requires_grad=True)
    return t, interpret(tree, TensorBackend("", 10**6), {"x": t})


@settings(max_examples=40)
@given(subscripts(), st.data())
def test_a_subscript_is_numpys_indexing_and_its_gradient_the_finite_difference(
    case, data
):
    shape, index, text = case
    x = np.asarray(data.draw(st.lists(st.floats(-3, 3), min_size=int(np.prod(shape)),
                                      max_size=int(np.prod(shape)))),
                   dtype=np.float64).reshape(shape)
    want = x[index]  # numpy's meaning of the same index
    tree = parse(f"x[{text}]", inputs=["x"], ops=OPS)
    assert tree.params["index"] == index
    t, out = _engine(tree, x)
    assert out.shape == want.shape
    np.testing.assert_array_equal(out.detach().numpy(), want)
    np.testing.assert_array_equal(interpret(tree, NumpyBackend(), {"x": x}), want)
    # <w, x[index]>: each entry of x gets the sum of the weights it was copied to
    w = np.arange(1.0, want.size + 1).reshape(want.shape)
    (out * f64(w)).sum().backward()
    numpy = NumpyBackend()
    fd = central(lambda v: float((interpret(tree, numpy, {"x": v}) * w).sum()), x)
    np.testing.assert_allclose(t.grad.numpy(), fd, atol=1e-6)
    # The Jacobian (the batched walk, a row per output entry) is the 0/1 matrix
    # of which entry of x each output entry is a copy of.
    J = gc.jacobian(lambda v: interpret(tree, TensorBackend("", 10**6), {"x": v}))(
        f64(x)).numpy().reshape(want.size, x.size)
    source = np.arange(x.size).reshape(shape)[index].reshape(-1)
    np.testing.assert_array_equal(J, np.eye(x.size)[source])


def test_separated_advanced_indices_put_their_axis_first_in_every_walk():
    # numpy: 0 and [1] are advanced and '...' separates them (even expanding to no
    # axes), so their broadcast axis comes first: x[:, 0, ..., [1]] has shape (1, 2)
    # and entry [0, i] is x[i, 0, 1]; a rewritten index would give shape (2, 1).
    x = np.arange(1.0, 9.0).reshape(2, 2, 2)
    tree = parse("x[:, 0, ..., [1]]", inputs=["x"], ops=OPS)
    t, out = _engine(tree, x)
    assert out.detach().numpy().tolist() == [[x[0, 0, 1], x[1, 0, 1]]]
    (out * f64([[10.0, 20.0]])).sum().backward()
    want = np.zeros_like(x)
    want[0, 0, 1], want[1, 0, 1] = 10.0, 20.0
    np.testing.assert_array_equal(t.grad.numpy(), want)
    f = lambda v: interpret(tree, TensorBackend("", 10**6), {"x": v})  # noqa: E731
    J = gc.jacobian(f)(f64(x)).numpy()
    assert J.shape == (1, 2, 2, 2, 2)
    np.testing.assert_array_equal(J[0, 0], np.eye(8)[1].reshape(2, 2, 2))
    np.testing.assert_array_equal(J[0, 1], np.eye(8)[5].reshape(2, 2, 2))


@settings(max_examples=15)
@given(subscripts())
def test_sympy_indexes_as_numpy_does(case):
    shape, index, text = case
    x = np.arange(1.0, np.prod(shape) + 1).reshape(shape) / 7
    tree = parse(f"x[{text}] * 2", inputs=["x"], ops=OPS)
    backend = SympyBackend({"x": x}, ["x"])
    got = backend.evaluate(interpret(tree, backend, backend.leaves))
    np.testing.assert_allclose(np.reshape(got, x[index].shape), 2 * x[index],
                               rtol=1e-12)


def test_outer_product_by_new_axes_end_to_end():
    # sum_ij x_i x_j = (sum x)^2 = 36; its gradient 2 sum(x) = 12 in each entry
    code, out, err = cli("eval", "sum(x[:, None] * x[None, :])", "--x", "1,2,3",
                         "--check", "--format", "json")
    assert (code, err) == (0, "")
    r = json.loads(out)
    assert r["value"] == 36.0 and r["grad"]["x"] == [12.0, 12.0, 12.0]
    c = r["check"]
    assert c["passed"] and c["inputs"]["x"]["fd_passed"]
    assert c["inputs"]["x"]["symbolic_passed"] and c["symbolic_method"] == "expression"


def test_second_order_and_jacobian_through_new_axes():
    # f = sum_ij x_i^2 x_(n-1-j) = (sum x^2)(sum x),
    # so H_ik = 2 d_ik sum(x) + 2 x_i + 2 x_k
    x = np.array([1.0, 2.0, 3.0])
    tree = parse("sum(x[:, None]**2 * x[None, ..., ::-1])", inputs=["x"], ops=OPS)
    f = lambda t: interpret(tree, TensorBackend("", 10**6), {"x": t})  # noqa: E731
    H = gc.hessian(f)(f64(x)).numpy()
    want = 2 * np.eye(3) * x.sum() + 2 * x[:, None] + 2 * x[None, :]
    np.testing.assert_allclose(H, want, rtol=1e-12)
    # the batched walk (a Jacobian's rows) through None, '...' and a list:
    # g[i, 0, j] = x[[2, 0]][i] * x[j]
    tree = parse("x[[2, 0], None] * x[None, ...][:, None, :]", inputs=["x"], ops=OPS)
    g = lambda t: interpret(tree, TensorBackend("", 10**6), {"x": t})  # noqa: E731
    J = gc.jacobian(g)(f64(x)).numpy()
    numpy = NumpyBackend()
    for i in np.ndindex(J.shape[:-1]):
        fd = central(lambda v: float(interpret(tree, numpy, {"x": v})[i]), x)
        np.testing.assert_allclose(J[i], fd, atol=1e-6)
    v = np.array([0.5, -1.0, 2.0])
    _, tangent = gc.jvp(g, (f64(x),), (f64(v),))
    np.testing.assert_allclose(tangent.numpy(), J @ v, rtol=1e-12)


@pytest.mark.parametrize("text, col, message", [
    ("x[..., 0, ...]", 11, "an index can only have a single ellipsis ('...')"),
    ("x[[None, 1]]", 4, "an index must be an integer, a slice of integers like 1:3"),
    ("x[None:y]", 8, "slice bounds must be integer literals (or None)"),
    ("x[(None, 1)][(0, 1), 0]", 14, "an index must be an integer"),
])
def test_what_numpy_or_gradcli_refuses_is_a_usage_error_at_the_subscript(text, col,
                                                                         message):
    with pytest.raises(UsageError, match=f"column {col}: ") as exc:
        parse(text, inputs=["x", "y"], ops=OPS)
    assert message in str(exc.value)
    code, out, err = cli("eval", text, "--x", "1,2,3", "--y", "1")
    assert code == 2 and out == "" and err.startswith("error: expression: ")
    assert "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("x[None, 0, 0]", "too many indices"),
    ("x[None][..., 3]", "index 3 is out of bounds"),
])
def test_an_index_the_shape_refuses_names_the_subscript(text, message):
    code, out, err = cli("eval", text, "--x", "1,2,3")
    assert code == 3 and out == ""
    assert err.startswith(f"error: {text!r} (column 1): ") and message in err


# == astype: numpy's name, numpy's meaning ==========================================
def test_astype_to_a_float_keeps_the_graph():
    x = f64([0.1, -2.5, 3.0], requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.requires_grad
    np.testing.assert_array_equal(y.detach().numpy(),
                                  np.array([0.1, -2.5, 3.0], dtype=np.float32))
    (y * gc.tensor([1.0, 2.0, 3.0], dtype=gc.float32)).sum().backward()
    assert x.grad.dtype == np.float64  # cast back, as .to(dtype)
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 3.0])


def test_astype_to_integers_or_bools_carries_no_gradient():
    x = f64([1.7, -1.7, 2.5, 0.0], requires_grad=True)
    i = x.astype(np.int64)  # numpy truncates toward zero
    assert i.dtype == np.int64 and not i.requires_grad and i.grad_fn is None
    assert i.tolist() == [1, -1, 2, 0]
    b = x.astype(bool)
    assert b.tolist() == [True, True, True, False] and not b.requires_grad
    assert x.astype("int32").dtype == np.int32


def test_astype_copies_unless_told_not_to_and_checks_casting():
    x = f64([1.0, 2.0], requires_grad=True)
    y = x.astype(np.float64)
    assert y is not x and y.tolist() == [1.0, 2.0] and y.requires_grad
    assert x.astype(np.float64, copy=False) is x
    with pytest.raises(TypeError, match="cannot cast from float64 to float32"):
        x.astype(np.float32, casting="safe")
    assert x.astype(np.float32, casting="same_kind").dtype == np.float32
    with pytest.raises(NotImplementedError, match="complex"):
        x.astype(np.complex128)
    if hasattr(np, "astype"):  # numpy >= 2.1
        assert np.astype(x, np.int64).tolist() == [1, 2]


# == squeeze, flatten, ravel: PyTorch's; numpy's keywords numpy's ====================
def test_squeeze_as_pytorch_and_numpys_keyword():
    y = f64(np.arange(3.0).reshape(1, 3, 1), requires_grad=True)
    assert y.squeeze().shape == (3,) and y.squeeze(0).shape == (3, 1)
    assert y.squeeze(1).shape == (1, 3, 1)  # PyTorch: a dim not of size 1 stays
    assert y.squeeze((0, 2)).shape == (3,) and y.squeeze(-1).shape == (1, 3)
    s = f64(2.0)
    assert s.squeeze(0).shape == () and s.squeeze(-1).shape == ()  # 0-d, as PyTorch
    with pytest.raises(IndexError, match="Dimension out of range"):
        s.squeeze(1)
    assert y.squeeze(axis=2).shape == (1, 3)
    for bad in (lambda: y.squeeze(axis=1), lambda: np.squeeze(y, axis=1)):
        with pytest.raises(ValueError, match="size not equal to one"):
            bad()
    (y.squeeze() * f64([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [[[1.0], [2.0], [3.0]]])


def test_flatten_and_ravel():
    z = f64(np.arange(24.0).reshape(2, 3, 4))
    assert z.flatten().shape == (24,) and z.flatten(1).shape == (2, 12)
    assert z.flatten(0, 1).shape == (6, 4) and z.flatten(-2).shape == (2, 12)
    assert f64(5.0).flatten().shape == (1,) and f64(5.0).ravel().shape == (1,)
    assert z.flatten(order="C").tolist() == list(range(24))
    assert z.ravel().tolist() == list(range(24)) and np.ravel(z).shape == (24,)
    with pytest.raises(TypeError, match="start_dim"):
        z.flatten("F")  # numpy's positional order is PyTorch's start_dim
    for bad in (lambda: z.flatten(order="F"), lambda: z.ravel("F"),
                lambda: z.T.ravel("K")):  # numpy: memory order, here (0, 1, 2, ...)
        with pytest.raises(NotImplementedError, match="only C order"):
            bad()
    x = f64(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (x.ravel() ** 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.arange(6.0).reshape(2, 3))


# == round: zero gradient, half to even ==============================================
def test_round_values_half_to_even():
    x = f64([0.5, 1.5, 2.5, -0.5, -1.5, 1.25, 2.675])
    assert x.round().tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 1.0, 3.0]
    # decimals: x * 10**d rounded, / 10**d: 1.25 -> 12.5 -> 12 -> 1.2
    assert x.round(decimals=1).tolist()[5] == 1.2 and x.round(1).tolist()[5] == 1.2
    assert f64([1234.5, -55.0]).round(-2).tolist() == [1200.0, -100.0]
    assert np.round(x, 1).tolist() == x.round(decimals=1).tolist()
    assert np.around(x).tolist() == x.round().tolist()


@settings(max_examples=25)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6), st.integers(-3, 4))
def test_round_is_numpys_with_a_zero_gradient(values, decimals):
    a = np.array(values)
    x = f64(a, requires_grad=True)
    y = x.round(decimals=decimals)
    assert y.grad_fn is not None and type(y.grad_fn).__name__ == "RoundBackward0"
    assert y.detach().numpy().tobytes() == np.round(a, decimals).tobytes()
    (g,) = gc.autograd.grad((y * y).sum() + x.sum(), [x], create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), np.ones_like(a))  # d(sum x) only
    (gg,) = gc.autograd.grad((g * x).sum(), [x])  # second order: d/dx sum(x) = 1
    np.testing.assert_array_equal(gg.numpy(), np.ones_like(a))


def test_round_of_integers():
    i = gc.tensor([15, 25, -35])
    assert i.round().tolist() == [15, 25, -35] and i.round().dtype == np.int64
    with pytest.raises(NotImplementedError, match="integer tensor"):
        i.round(decimals=-1)  # PyTorch refuses; numpy rounds half to even:
    assert np.round(i, -1).tolist() == [20, 20, -40]
    with pytest.raises(TypeError, match="bool"):
        gc.tensor([True]).round()


# == argsort, sort ==================================================================
def test_argsort_is_pytorchs_plain_int64():
    x = f64([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]], requires_grad=True)
    idx = x.argsort()  # dim=-1
    assert idx.dtype == np.int64 and not idx.requires_grad and idx.grad_fn is None
    assert idx.tolist() == [[1, 2, 0], [2, 0, 1]]
    assert x.argsort(0).tolist() == [[1, 0, 1], [0, 1, 0]]
    assert x.argsort(dim=1, descending=True).tolist() == [[0, 2, 1], [1, 0, 2]]
    assert x.argsort(axis=None).tolist() == [5, 3, 1, 2, 0, 4]  # numpy: flattened
    assert x.argsort(axis=0).tolist() == [[1, 0, 1], [0, 1, 0]]
    assert f64(4.0).argsort().tolist() == 0
    assert np.argsort(x).tolist() == [[1, 2, 0], [2, 0, 1]]  # numpy's, a plain array
    ties = f64([1.0, 0.0, 1.0, 0.0])
    assert ties.argsort(stable=True).tolist() == [1, 3, 0, 2]
    assert ties.argsort(descending=True, stable=True).tolist() == [0, 2, 1, 3]


def test_sort_puts_nan_last_ascending_and_first_descending_as_pytorch():
    x = f64([1.0, float("nan"), 3.0, float("inf"), float("nan")])
    assert x.sort().indices.tolist() == [0, 2, 3, 1, 4]
    assert x.sort(descending=True).indices.tolist() == [1, 4, 3, 2, 0]
    assert x.argsort(descending=True).tolist() == [1, 4, 3, 2, 0]


@settings(max_examples=25)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=6, unique=True), st.booleans())
def test_sort_gradient_goes_back_through_the_permutation(values, descending):
    a = np.array(values)
    x = f64(a, requires_grad=True)
    out, idx = x.sort(descending=descending)
    order = sorted(range(len(a)), key=lambda i: a[i], reverse=descending)
    assert idx.tolist() == order and out.detach().numpy().tolist() == a[order].tolist()
    w = np.arange(1.0, len(a) + 1)
    (out * f64(w)).sum().backward()
    want = np.zeros_like(a)
    want[order] = w  # the entry sorted to place k receives w[k]
    np.testing.assert_array_equal(x.grad.numpy(), want)


# == cumsum: PyTorch's dim; numpy's axis ===============================================
def test_cumsum_dim_and_numpy_axis():
    A = f64([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
    assert A.cumsum(0).tolist() == [[1.0, 5.0], [4.0, 7.0]]
    assert A.cumsum(-1).tolist() == [[1.0, 6.0], [3.0, 5.0]]
    assert A.cumsum(axis=None).tolist() == [1.0, 6.0, 9.0, 11.0]  # numpy: flattened
    assert np.cumsum(A).tolist() == [1.0, 6.0, 9.0, 11.0]
    with pytest.raises(TypeError, match="missing the dim"):
        A.cumsum()
    assert gc.tensor([1, 2, 3], dtype=np.int32).cumsum(0).dtype == np.int64  # PyTorch
    # d/dA_ij of sum_k w_k cumsum(A)_k along dim 1: the sum of the weights from j on
    A.cumsum(1).mul(f64([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_array_equal(A.grad.numpy(), [[3.0, 2.0], [7.0, 4.0]])


# == repeat: PyTorch's (numpy's tile); np.repeat numpy's ===============================
def test_repeat_is_pytorchs_tile_and_np_repeat_numpys():
    v = f64([1.0, 2.0], requires_grad=True)
    assert v.repeat(3).tolist() == [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    assert v.repeat(2, 1).tolist() == [[1.0, 2.0], [1.0, 2.0]]
    assert np.repeat(v, 3).tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    assert np.tile(v, 3).tolist() == v.repeat(3).tolist()
    assert v.repeat(2, axis=0).tolist() == [1.0, 1.0, 2.0, 2.0]  # numpy's keyword
    M = f64([[1.0, 2.0], [3.0, 4.0]])
    assert M.repeat(2, axis=None).tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
    assert M.repeat((1, 2), axis=1).tolist() == [[1.0, 2.0, 2.0], [3.0, 4.0, 4.0]]
    # each entry appears 3 times in v.repeat(3): weights 1..6 give [1+3+5, 2+4+6]
    (v.repeat(3) * f64(np.arange(1.0, 7.0))).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [9.0, 12.0])
    v.grad = None
    (np.repeat(v, 3) * f64(np.arange(1.0, 7.0))).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [6.0, 15.0])  # [1+2+3, 4+5+6]


HUGE = 10**20  # past int64: numpy (as Python) clips a slice bound to the axis


@pytest.mark.parametrize("text, index", [
    (f"x[:{HUGE}]", np.s_[:HUGE]),
    (f"x[-{HUGE}:]", np.s_[-HUGE:]),
    (f"x[::{HUGE}]", np.s_[::HUGE]),
    (f"x[::-{HUGE}]", np.s_[::-HUGE]),
    (f"x[1:{HUGE}:2]", np.s_[1:HUGE:2]),
])
def test_a_huge_slice_bound_is_clipped_as_numpy_does(text, index):
    x = np.array([1.5, -2.0, 3.25, 4.0])
    tree = parse(text, inputs={"x"}, ops=OPS)
    got = interpret(tree, NumpyBackend(), {"x": x})
    np.testing.assert_array_equal(got, x[index])


def test_a_huge_integer_index_is_still_refused():
    with pytest.raises(UsageError, match="too large"):
        parse(f"x[{HUGE}]", inputs={"x"}, ops=OPS)



def test_diff_prepend_in_the_expression_language_by_hand():
    # diff([0, 1, 2, 4]) = [1, 1, 2]: value 1 + 1 + 4; the gradient of
    # x0^2 + (x1 - x0)^2 + (x2 - x1)^2 is [2x0 - 2(x1 - x0), 2(x1 - x0) - 2(x2 - x1), 2(x2 - x1)].
    code, out, err = cli("eval", "sum(diff(x, prepend=0)**2)", "--x", "1,2,4",
                         "--check", "--format", "json")
    assert (code, err) == (0, "")
    r = json.loads(out)
    assert r["value"] == 6 and r["grad"]["x"] == [0, -2, 4]
    assert r["check"]["passed"]


def test_rot90_through_the_expression_language_by_hand():
    # rot90([[a, b], [c, d]]) = [[b, d], [a, c]]: its first row is (b, d).
    code, out, err = cli("eval", "rot90(A)[0, 0] + 10 * rot90(A)[0, 1]", "--A", "[[1, 2], [3, 4]]",
                         "--check", "--format", "json")
    assert (code, err) == (0, "")
    r = json.loads(out)
    assert r["value"] == 2 + 10 * 4 and r["grad"]["A"] == [[0, 1], [0, 10]]
    assert r["check"]["passed"]


NUMPY_POSITIONAL = [
    "np.sum(v, 0, np.float64)",  # numpy's third argument is dtype (was keepdims here)
    "np.sum(v, 0, None, None, True)",
    "np.mean(v, 1, None, None, True)",
    "np.sum(v, axis=0, dtype=np.float32)",
    "np.cumsum(v, 0, np.float32)",
    "np.std(v, 0, None, None, 1)",
    "np.var(v, None, None, None, 1, True)",
    "np.prod(v, 1, float)",
    "np.max(v, 0, None, True)",
    "np.trace(v, 0, 0, 1, np.float32)",
]


@pytest.mark.parametrize("call", NUMPY_POSITIONAL)
def test_numpy_reductions_read_their_arguments_by_numpys_signature(call):
    # A tester's np.sum(x, dtype=np.float64) raised "unexpected keyword"; positional
    # options went to the op's own order. Truth: numpy's own call on the array, and
    # central differences of it for the gradient of the sum of the result.
    a = np.arange(1.0, 7.0).reshape(2, 3)
    t = f64(a, requires_grad=True)
    got = eval(call, {"np": np, "v": t})  # noqa: S307 (the test's own fixed text)
    want = eval(call, {"np": np, "v": a})  # noqa: S307
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got.detach().numpy(), want)
    got.sum().backward()
    h = 0.25 if "float32" in call else 1e-6  # (float32 calls: linear, exact steps)
    fd = central(lambda x: float(np.sum(eval(call, {"np": np, "v": x}))), a, h)  # noqa: S307
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-5, atol=1e-6)


def test_numpy_out_is_refused_on_a_tensor():
    with pytest.raises(TypeError, match="out=.... is not supported"):
        np.sum(f64([1.0, 2.0]), out=np.zeros(()))
