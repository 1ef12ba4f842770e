"""Issue 10, section 4: a Tensor method or gc.* function with a PyTorch name
behaves as in PyTorch; numpy functions on Tensors stay numpy's; where gradcli
cannot match, it raises.

Expected values are PyTorch's documented results, derived by hand beside each
check; gradients are checked against central finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradcli as gc
from helpers import central as numeric_grad
from helpers import f64


A = [[1.0, 5.0], [3.0, 2.0]]


def check_grad(fn, x0, atol=1e-6):
    """The engine's gradient of sum(fn(x) * w) against central differences."""
    x0 = np.asarray(x0, dtype=np.float64)
    x = f64(x0, requires_grad=True)
    out = fn(x)
    w = np.arange(1.0, out.numel() + 1).reshape(out.shape)
    (out * f64(w)).sum().backward()
    num = numeric_grad(lambda v: float((fn(f64(v)).detach().numpy() * w).sum()), x0)
    np.testing.assert_allclose(x.grad.numpy(), num, atol=atol)


# == shapes: transpose, t, permute, mT ============================================
def test_transpose_swaps_two_dims_of_a_matrix():
    t = f64(A).transpose(0, 1)
    assert t.tolist() == [[1.0, 3.0], [5.0, 2.0]]
    assert f64(A).transpose(1, 0).tolist() == [[1.0, 3.0], [5.0, 2.0]]
    assert f64(A).transpose(-1, -2).tolist() == [[1.0, 3.0], [5.0, 2.0]]


def test_transpose_of_a_3d_tensor_and_its_gradient():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert f64(x).transpose(0, 2).shape == (4, 3, 2)
    assert f64(x).transpose(0, 2).tolist() == np.swapaxes(x, 0, 2).tolist()
    check_grad(lambda t: t.transpose(0, 2) ** 2, x / 10)


def test_transpose_refuses_numpy_forms():
    with pytest.raises(TypeError, match="transpose\\(dim0, dim1\\)"):
        f64(A).transpose()
    with pytest.raises(TypeError, match="permute"):
        f64(A).transpose((1, 0))


def test_t_permute_mT():
    assert f64(A).t().tolist() == [[1.0, 3.0], [5.0, 2.0]]
    assert f64([1.0, 2.0]).t().tolist() == [1.0, 2.0]  # 1-D: unchanged
    with pytest.raises(RuntimeError, match="<= 2 dimensions"):
        gc.zeros(2, 2, 2).t()
    x = np.arange(24.0).reshape(2, 3, 4)
    assert f64(x).permute(2, 0, 1).shape == (4, 2, 3)
    assert f64(x).permute((2, 0, 1)).tolist() == np.transpose(x, (2, 0, 1)).tolist()
    assert f64(x).mT.shape == (2, 4, 3)
    assert f64(x).mT.tolist() == np.swapaxes(x, -1, -2).tolist()
    with pytest.raises(RuntimeError, match="mT"):
        f64([1.0]).mT
    check_grad(lambda t: t.permute(1, 2, 0).mT * t.permute(1, 0, 2), x / 10)


def test_numpy_transpose_stays_numpy():
    assert np.transpose(f64(A)).tolist() == [[1.0, 3.0], [5.0, 2.0]]
    x = f64(np.arange(6.0).reshape(1, 2, 3))
    assert np.transpose(x).shape == (3, 2, 1)
    assert gc.transpose(f64(A), 0, 1).tolist() == [[1.0, 3.0], [5.0, 2.0]]


# == max, min, argmax, argmin, sort, topk ===========================================
def test_max_along_a_dim_is_values_and_indices():
    r = f64(A).max(1)
    assert r.values.tolist() == [5.0, 3.0] and r.indices.tolist() == [1, 0]
    values, indices = f64(A).max(dim=0)
    assert values.tolist() == [3.0, 5.0] and indices.tolist() == [1, 0]
    assert indices.dtype == gc.int64
    r = f64(A).max(1, keepdim=True)
    assert r.values.shape == (2, 1) and r.indices.tolist() == [[1], [0]]
    assert type(r).__name__ == "max"


def test_min_along_a_dim_and_whole_reductions():
    r = f64(A).min(1)
    assert r.values.tolist() == [1.0, 2.0] and r.indices.tolist() == [0, 1]
    assert f64(A).max().item() == 5.0 and f64(A).min().item() == 1.0
    assert gc.max(f64(A), 1).indices.tolist() == [1, 0]
    assert gc.min(f64(A), 0).values.tolist() == [1.0, 2.0]


def test_max_of_two_tensors_is_elementwise():
    b = f64([[2.0, 2.0], [2.0, 2.0]])
    assert f64(A).max(b).tolist() == [[2.0, 5.0], [3.0, 2.0]]
    assert gc.max(f64(A), b).tolist() == [[2.0, 5.0], [3.0, 2.0]]
    assert gc.min(f64(A), b).tolist() == [[1.0, 2.0], [2.0, 2.0]]


def test_max_dim_gradient_goes_to_the_chosen_entry():
    x = f64(A, requires_grad=True)
    x.max(1).values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    check_grad(lambda t: t.min(0).values * t.max(1).values, [[1.0, 5.0], [3.0, 2.5]])


def test_argmax_argmin():
    assert f64(A).argmax().item() == 1  # flat index of 5
    assert f64(A).argmin().item() == 0
    assert f64(A).argmax(1).tolist() == [1, 0]
    assert f64(A).argmin(dim=0, keepdim=True).tolist() == [[0, 1]]
    assert gc.argmax(f64(A), 0).tolist() == [1, 0]


def test_sort_and_topk():
    s = f64([3.0, 1.0, 2.0]).sort()
    assert s.values.tolist() == [1.0, 2.0, 3.0] and s.indices.tolist() == [1, 2, 0]
    s = f64([3.0, 1.0, 2.0]).sort(descending=True)
    assert s.values.tolist() == [3.0, 2.0, 1.0] and s.indices.tolist() == [0, 2, 1]
    s = f64(A).sort(0)
    assert s.values.tolist() == [[1.0, 2.0], [3.0, 5.0]]
    assert s.indices.tolist() == [[0, 1], [1, 0]]
    k = f64([1.0, 4.0, 2.0, 3.0]).topk(2)
    assert k.values.tolist() == [4.0, 3.0] and k.indices.tolist() == [1, 3]
    k = f64([1.0, 4.0, 2.0, 3.0]).topk(2, largest=False)
    assert k.values.tolist() == [1.0, 2.0] and k.indices.tolist() == [0, 2]
    assert gc.topk(f64(A), 1, dim=0).values.tolist() == [[3.0, 5.0]]
    with pytest.raises(RuntimeError, match="out of range"):
        f64([1.0]).topk(2)


def test_sort_and_topk_gradients():
    check_grad(lambda t: t.sort(1).values ** 2, [[0.3, -1.2, 0.7], [2.0, 0.1, -0.4]])
    check_grad(lambda t: t.topk(2, dim=0).values ** 3, [[0.3, -1.2], [2.0, 0.1], [0.5, 0.9]])


# == std, var ========================================================================
def test_std_var_default_to_the_unbiased_estimate():
    x = f64([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5
    assert x.var().item() == pytest.approx(5 / 3, rel=1e-15)
    assert x.std().item() == pytest.approx(math.sqrt(5 / 3), rel=1e-15)
    assert x.std(unbiased=False).item() == pytest.approx(math.sqrt(5 / 4), rel=1e-15)
    assert x.var(correction=0).item() == pytest.approx(5 / 4, rel=1e-15)
    assert x.var(False).item() == pytest.approx(5 / 4, rel=1e-15)
    assert gc.std(x).item() == pytest.approx(math.sqrt(5 / 3), rel=1e-15)
    m = f64([[1.0, 3.0], [2.0, 6.0]])
    assert m.var(1).tolist() == pytest.approx([2.0, 8.0])  # (1 + 1) / 1, (4 + 4) / 1
    assert m.var(dim=0, keepdim=True).shape == (1, 2)


def test_numpy_std_stays_population():
    x = f64([1.0, 2.0, 3.0, 4.0])
    assert float(np.std(x)) == pytest.approx(math.sqrt(5 / 4), rel=1e-15)
    assert float(np.var(x)) == pytest.approx(5 / 4, rel=1e-15)
    assert gc.std(x, ddof=0).item() == pytest.approx(math.sqrt(5 / 4), rel=1e-15)


def test_std_var_keywords_pick_the_library():
    # rows [1, 2, 4] (mean 7/3) and [0, 3, 9] (mean 4): squared deviations
    # (16 + 1 + 25) / 9 = 14/3 and 16 + 1 + 25 = 42, over 3 (ddof=0) or 2
    m = f64([[1.0, 2.0, 4.0], [0.0, 3.0, 9.0]])
    population, unbiased = [14 / 9, 14.0], [7 / 3, 21.0]
    for numpy_call in (m.var(axis=1), m.var(axis=1, keepdims=True).reshape(2),
                       gc.var(m, axis=1), m.std(axis=1) ** 2, gc.std(m, axis=1) ** 2,
                       np.var(m, axis=1), m.var(axis=1, ddof=0)):
        assert numpy_call.tolist() == pytest.approx(population, rel=1e-14)
    for torch_call in (m.var(dim=1), m.var(1), gc.var(m, 1), gc.var(m, dim=1),
                       m.std(dim=1) ** 2, m.std(1) ** 2, gc.std(m, 1) ** 2,
                       m.var(axis=1, ddof=1), m.var(axis=1, correction=1)):
        assert torch_call.tolist() == pytest.approx(unbiased, rel=1e-14)
    # all of m: 6 squared deviations from mean 19/6, within rows plus between
    # them: 14/3 + 42 + 3 (7/3 - 19/6)^2 + 3 (4 - 19/6)^2
    total = 14 / 3 + 42 + 6 * (5 / 6) ** 2
    assert m.var(keepdims=True).item() == pytest.approx(total / 6, rel=1e-14)
    assert m.var(keepdim=True).item() == pytest.approx(total / 5, rel=1e-14)
    with pytest.raises(TypeError, match="not both"):
        m.std(1, axis=0)


def test_std_var_gradients():
    check_grad(lambda t: t.std(), [1.0, 2.0, 3.5, 4.0])
    check_grad(lambda t: t.var(1), [[1.0, 2.0, 3.5], [0.5, -1.0, 2.0]])


def test_the_expression_std_stays_numpy():
    import contextlib
    import io
    import json

    from gradcli.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main(["eval", "std(x)", "--x", "1,2,3,4", "--format", "json"])
    assert exc.value.code in (0, None), out.getvalue()
    assert str(math.sqrt(5 / 4))[:8] in json.dumps(json.loads(out.getvalue()))


# == size and shape methods ==========================================================
def test_size_numel_dim():
    x = gc.zeros(2, 3)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.numel() == 6 and x.dim() == 2
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(2)


def test_view_unsqueeze_squeeze_flatten():
    x = f64(np.arange(6.0))
    assert x.view(2, 3).shape == (2, 3) and x.view((3, -1)).shape == (3, 2)
    with pytest.raises(NotImplementedError, match="view\\(dtype\\)"):
        x.view(gc.float32)
    assert x.unsqueeze(0).shape == (1, 6) and x.unsqueeze(-1).shape == (6, 1)
    y = gc.zeros(1, 3, 1)
    assert y.squeeze().shape == (3,) and y.squeeze(0).shape == (3, 1)
    assert y.squeeze(1).shape == (1, 3, 1)  # not of size 1: unchanged, as PyTorch
    z = gc.zeros(2, 3, 4)
    assert z.flatten().shape == (24,) and z.flatten(1).shape == (2, 12)
    assert z.flatten(0, 1).shape == (6, 4)
    check_grad(lambda t: t.view(3, 2).unsqueeze(1).flatten(1) ** 2, np.arange(6.0) / 5)


def test_expand_and_repeat():
    x = f64([[1.0], [2.0]])
    assert x.expand(2, 3).tolist() == [[1.0] * 3, [2.0] * 3]
    assert x.expand(-1, 2).tolist() == [[1.0, 1.0], [2.0, 2.0]]
    assert x.expand(2, 2, 2).shape == (2, 2, 2)
    v = f64([1.0, 2.0])
    assert v.repeat(2).tolist() == [1.0, 2.0, 1.0, 2.0]
    assert v.repeat(2, 2).tolist() == [[1.0, 2.0, 1.0, 2.0]] * 2
    with pytest.raises(RuntimeError, match="repeat"):
        f64(A).repeat(2)
    check_grad(lambda t: t.expand(2, 3) * t.repeat(1, 3), [[0.5], [1.5]])


def test_clone():
    x = f64([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.tolist() == [1.0, 2.0] and c is not x
    check_grad(lambda t: t.clone() ** 2, [1.0, 2.0])


# == clamp, norm, sum, mean ==========================================================
def test_clamp_min_max():
    x = f64([-2.0, 0.5, 3.0])
    assert x.clamp(min=0.0).tolist() == [0.0, 0.5, 3.0]
    assert x.clamp(max=1.0).tolist() == [-2.0, 0.5, 1.0]
    assert x.clamp(-1.0, 1.0).tolist() == [-1.0, 0.5, 1.0]
    assert gc.clamp(x, min=0.0).tolist() == [0.0, 0.5, 3.0]
    with pytest.raises(RuntimeError, match="At least one"):
        x.clamp()
    g = f64([-2.0, 0.5, 3.0], requires_grad=True)
    g.clamp(min=0.0).sum().backward()
    assert g.grad.tolist() == [0.0, 1.0, 1.0]


def test_norm_is_the_vector_norm_of_all_entries():
    m = f64([[3.0, 0.0], [0.0, 4.0]])
    assert m.norm().item() == pytest.approx(5.0)
    # PyTorch's norm(2) of a matrix: sqrt(9 + 16), not the spectral norm (4)
    assert m.norm(2).item() == pytest.approx(5.0)
    assert m.norm(p=1).item() == pytest.approx(7.0)
    assert m.norm(p=1, dim=1).tolist() == [3.0, 4.0]
    assert m.norm(dim=0, keepdim=True).shape == (1, 2)
    assert m.norm(p=float("inf")).item() == 4.0
    check_grad(lambda t: t.norm(p=3, dim=1), [[1.0, -2.0], [0.5, 1.5]])
    check_grad(lambda t: t.norm(), [[1.0, -2.0], [0.5, 1.5]])


def test_sum_and_mean_with_dim_and_keepdim():
    m = f64(A)
    assert m.sum(dim=1).tolist() == [6.0, 5.0]
    assert m.sum(dim=0, keepdim=True).tolist() == [[4.0, 7.0]]
    assert m.mean(dim=(0, 1)).item() == 2.75
    assert m.mean(1, True).tolist() == [[3.0], [2.5]]
    with pytest.raises(RuntimeError, match="mean"):
        gc.tensor([1, 2]).mean()
    assert gc.tensor([True, True, False]).sum().item() == 2


def test_gc_sum_and_mean_are_pytorchs_with_numpys_keywords_numpys():
    # torch.sum(t, dtype=...) casts first; torch.mean refuses integers; axis= and
    # keepdims= are numpy's spelling, numpy's meaning (np.mean of ints is a float)
    m, ints = f64(A), gc.tensor([1, 2, 4])
    s = gc.sum(ints, dtype=gc.float64)
    assert s.dtype == gc.float64 and s.item() == 7.0
    assert gc.sum(m, 1).tolist() == [6.0, 5.0]
    assert gc.sum(m, dim=0, keepdim=True).tolist() == [[4.0, 7.0]]
    assert gc.mean(m, (0, 1)).item() == 2.75
    with pytest.raises(RuntimeError, match="mean"):
        gc.mean(ints)
    assert gc.mean(ints, axis=0).item() == 7 / 3
    assert gc.sum(m, axis=1, keepdims=True).tolist() == [[6.0], [5.0]]
    check_grad(lambda t: gc.sum(t * t, 0), [[1.0, -2.0], [0.5, 1.5]])
    check_grad(lambda t: gc.mean(t, dim=1, dtype=gc.float64), [[1.0, -2.0], [0.5, 1.5]])


# == functions: cat, mm, bmm, eye, full, empty, from_numpy, as_tensor ==================
def test_cat_mm_bmm():
    a, b = f64(A), f64([[1.0, 0.0], [0.0, 1.0]])
    assert gc.cat([a, b]).shape == (4, 2) and gc.cat((a, b), dim=1).shape == (2, 4)
    assert a.mm(b).tolist() == A and gc.mm(a, a).tolist() == [[16.0, 15.0], [9.0, 19.0]]
    with pytest.raises(RuntimeError, match="matrices"):
        gc.mm(f64([1.0, 2.0]), a)
    x = f64(np.arange(8.0).reshape(2, 2, 2))
    assert gc.bmm(x, x).tolist() == (np.arange(8.0).reshape(2, 2, 2)
                                     @ np.arange(8.0).reshape(2, 2, 2)).tolist()
    with pytest.raises(RuntimeError, match="3-D"):
        gc.bmm(a, a)
    check_grad(lambda t: gc.cat([t, t * t], dim=0).mm(t.t()), [[0.5, 1.0], [2.0, -1.0]])


def test_creation_functions():
    assert gc.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]] and gc.eye(2).dtype == gc.float32
    assert gc.eye(2, 3).shape == (2, 3)
    assert gc.full((2, 2), 1.5).tolist() == [[1.5, 1.5]] * 2
    assert gc.full((2,), 1.5).dtype == gc.float32
    assert gc.full((2,), 7).dtype == gc.int64  # the dtype from the fill value
    assert gc.full((2,), True).dtype == gc.bool_
    assert gc.full_like(f64(A), 2.0).tolist() == [[2.0, 2.0]] * 2
    assert gc.full_like(f64(A), 2.0).dtype == gc.float64
    assert gc.empty(2, 3).shape == (2, 3)
    a = np.arange(3.0)
    t = gc.from_numpy(a)
    a[0] = 9.0
    assert t.tolist() == [9.0, 1.0, 2.0] and t.dtype == gc.float64
    t2 = gc.as_tensor(a)
    assert t2.numpy() is a or np.shares_memory(t2.numpy(), a)
    assert gc.as_tensor([1, 2]).dtype == gc.int64
    x = f64([1.0])
    assert gc.as_tensor(x) is x


# == dtypes ==========================================================================
def test_casts():
    x = gc.tensor([1.5, -2.5])
    assert x.double().dtype == gc.float64 and x.double().float().dtype == gc.float32
    assert x.long().tolist() == [1, -2] and x.long().dtype == gc.int64
    assert x.to(gc.float64).dtype == gc.float64
    assert x.to(f64([1.0])).dtype == gc.float64
    assert x.is_floating_point() and not x.long().is_floating_point()
    g = gc.tensor([1.5, -2.5], requires_grad=True)
    y = (g.double() ** 2).sum()
    y.backward()
    assert g.grad.dtype == gc.float32 and g.grad.tolist() == [3.0, -5.0]
    with pytest.raises(NotImplementedError, match="CPU"):
        x.to("cuda")


def test_a_0d_float64_does_not_promote_float32():
    a, b = gc.tensor(2.0, dtype=gc.float64), gc.ones(3)
    assert (a * b).dtype == gc.float32 and (b + a).dtype == gc.float32
    assert (b - a).tolist() == [-1.0] * 3 and (a / b).tolist() == [2.0] * 3
    assert (f64([1.0]) * gc.tensor(2.0)).dtype == gc.float64
    # a 0-d float beside an int tensor: float (a higher category promotes)
    assert (gc.tensor([1, 2]) * gc.tensor(2.0)).dtype == gc.float32
    assert (gc.tensor([1, 2]) * gc.tensor(2.0, dtype=gc.float64)).dtype == gc.float64
    # across categories the float's dtype wins: int64 and float32 give float32
    assert (gc.tensor([1, 2]) + gc.tensor([0.5, 0.5])).dtype == gc.float32
    assert (gc.tensor([1, 2]) + gc.tensor([0.5, 0.5])).tolist() == [1.5, 2.5]
    assert (f64([1.0]) + gc.tensor([1.0])).dtype == gc.float64  # same category: widest
    x = gc.ones(2, requires_grad=True)
    (x * gc.tensor(3.0, dtype=gc.float64)).sum().backward()
    assert x.grad.dtype == gc.float32 and x.grad.tolist() == [3.0, 3.0]


def test_operators_promote_as_pytorch_with_python_and_numpy_numbers():
    # PyTorch's rules (tensor_attributes.html#type-promotion-doc): a Python number,
    # and a numpy scalar (a "wrapped number", np.float64 subclasses float), does
    # not promote a tensor of its category; a float one beside an int tensor
    # gives the default float dtype, float32 here; int / int is true division
    # into the default float dtype; a 0-d operand does not promote a
    # dimensioned one of its category.
    f32, i = np.float32, gc.tensor([1, 3])
    third = gc.tensor([1, 3]) / 3
    assert third.dtype == gc.float32 and third.tolist() == [f32(1) / f32(3), 1.0]
    assert (i / gc.tensor([2, 4])).dtype == gc.float32
    assert (gc.tensor(2) / i).dtype == gc.float32
    assert (gc.tensor([True]) / gc.tensor([True])).dtype == gc.float32
    assert i.div(3).dtype == gc.float32
    for y, want in ((gc.tensor([1, 2]) + 0.5, [1.5, 2.5]), (0.5 + gc.tensor([1, 2]), [1.5, 2.5]),
                    (gc.tensor([1, 2]) ** -1.0, [1.0, 0.5]), (2.0 ** gc.tensor([1, 2]), [2.0, 4.0]),
                    (gc.tensor([1, 2]) * np.float64(0.5), [0.5, 1.0])):
        assert y.dtype == gc.float32 and y.tolist() == want
    x = gc.tensor([1.0, 3.0])
    for other in (np.float64(0.1), np.array(0.1)):
        y = x * other
        assert y.dtype == gc.float32
        assert y.tolist() == [f32(0.1), f32(3) * f32(0.1)]  # computed in float32
    assert (gc.tensor([1, 3], dtype=np.int32) * np.int64(2)).dtype == np.int32
    assert (gc.tensor([1, 2]) * 2).dtype == gc.int64  # int stays int
    assert (gc.tensor([1, 2]) * 1j).dtype == np.complex64  # the default complex dtype
    assert (f64([1.0]) * np.float32(0.5)).dtype == gc.float64
    w = gc.tensor([1.0, 3.0], requires_grad=True)
    (w * np.float64(0.1)).sum().backward()
    assert w.grad.dtype == gc.float32 and w.grad.tolist() == [f32(0.1)] * 2
    # numpy's functions keep numpy's rules
    assert np.add(gc.tensor([1, 2]), 0.5).dtype == gc.float64
    assert np.divide(gc.tensor([1, 3]), 3).dtype == gc.float64
    before = gc.get_default_dtype()
    gc.set_default_dtype(gc.float64)
    try:
        assert (gc.tensor([1, 3]) / 3).dtype == gc.float64
        assert (gc.tensor([1, 2]) + 0.5).dtype == gc.float64
    finally:
        gc.set_default_dtype(before)


def test_operators_refuse_operands_numpy_holds_as_objects():
    # PyTorch raises for a Fraction operand; numpy would make an object array,
    # a Tensor of Python objects whose arithmetic is no longer float's
    from fractions import Fraction

    x = gc.tensor([1.0, 2.0], requires_grad=True)
    s = x.sum()  # a 0-d result: a numpy scalar inside
    for y in (lambda: x * Fraction(1, 3), lambda: Fraction(1, 3) + x,
              lambda: x / [Fraction(1, 2), 1], lambda: s * Fraction(1, 3)):
        with pytest.raises(TypeError, match="Fraction|object"):
            y()
    assert (x * 0.5).tolist() == [0.5, 1.0]  # numbers still work


def test_complex_values_of_tensors_requiring_grad_are_refused():
    # the rules are real ones: d|c x|/dx = |c| sign(x), but a complex product's
    # rule without the conjugate gave Re(c^2)/|c| (-1.34 for c = 1+2j, x = 2,
    # against sqrt(5) = 2.24): refused, not wrong
    x = gc.tensor([2.0], dtype=gc.float64, requires_grad=True)
    c = gc.tensor([1.0, 2.0]) * 1j  # values alone: allowed
    assert c.tolist() == [1j, 2j]
    for f in (lambda: abs(x * (1 + 2j)), lambda: 1j * x, lambda: np.multiply(x, 1j),
              lambda: x * np.complex64(1j), lambda: np.exp(1j * x), lambda: c * x,
              lambda: c.requires_grad_()):
        with pytest.raises((TypeError, RuntimeError), match="real|floating"):
            f()
    with gc.no_grad():
        assert (x * 1j).tolist() == [2j]


def test_diagonal_is_a_view_and_flip_a_copy_as_in_pytorch():
    # PyTorch: A.diagonal() shares A's memory; t.flip(d) is new memory. The
    # diagonal used to be a copy (add_ on it did nothing to A) and flip a view
    # (mul_ on it zeroed the original).
    A = gc.zeros(3, 3)
    A.diagonal().add_(1.0)
    assert A.tolist() == np.eye(3).tolist()
    d = A.diagonal(1)
    A.add_(2.0)
    assert d.tolist() == [2.0, 2.0]
    img = gc.tensor(np.arange(6.0).reshape(2, 3))
    img.flip(1).mul_(0.0)
    f = img.flip(1)
    img.add_(10.0)
    assert img.tolist() == (np.arange(6.0).reshape(2, 3) + 10).tolist()
    assert f.tolist() == np.arange(6.0).reshape(2, 3)[:, ::-1].tolist()
    # gradients unchanged: the diagonal's entries, the flipped weights
    B = f64(np.arange(9.0).reshape(3, 3), requires_grad=True)
    (B.diagonal(1) * f64([2.0, 3.0])).sum().backward()
    want = np.zeros((3, 3))
    want[0, 1], want[1, 2] = 2.0, 3.0
    assert B.grad.tolist() == want.tolist()
    check_grad(lambda t: (t.flip(0) * f64([1.0, 2.0, 3.0])).sum(), [0.5, -1.0, 2.0])
    C = B * 1.0
    with pytest.raises(RuntimeError, match="view"):  # recorded: gradcli cannot rebase
        C.diagonal().add_(1.0)


def test_int_and_bool_tensors_compute_in_the_default_float_dtype():
    # PyTorch: sin of a bool or int tensor is float32 (the default dtype);
    # numpy's float16 for bool gave sin(True) = 0.8413 (truth 0.84147). numpy's
    # own functions keep numpy's rule; ops that keep integers keep them.
    f32 = np.float32
    b, i = gc.tensor([True, False]), gc.tensor([1, 4])
    for y, want in ((b.sin(), [np.sin(f32(1)), 0.0]), (gc.exp(b), [np.exp(f32(1)), 1.0]),
                    (i.sqrt(), [1.0, 2.0]), (gc.sin(i), np.sin(np.array([1, 4], f32))),
                    (gc.tensor(3).exp(), np.exp(f32(3)))):
        assert y.dtype == gc.float32
        assert np.array(y.tolist(), dtype=f32).tolist() == np.array(want, f32).tolist()
    assert np.sin(i).dtype == np.float64 and np.sin(b).dtype == np.float16
    assert gc.floor(i).dtype == gc.int64 and gc.abs(i).tolist() == [1, 4]
    before = gc.get_default_dtype()
    gc.set_default_dtype(gc.float64)
    try:
        assert gc.sin(i).tolist() == np.sin(np.array([1.0, 4.0])).tolist()
    finally:
        gc.set_default_dtype(before)


def test_create_graph_keeps_float32_gradients():
    for f in (lambda x: x.max(), lambda x: 2.0**x, lambda x: x ** 3):
        x = gc.tensor([0.3, 0.6], requires_grad=True)
        (f(x) ** 2).sum().backward(create_graph=True)
        assert x.grad.dtype == gc.float32
        assert x.grad.requires_grad


# == gradients: retain_grad, register_hook ============================================
def test_retain_grad():
    x = f64([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    assert y.grad.tolist() == [6.0, 12.0]  # d(y^2)/dy = 2y
    assert x.grad.tolist() == [18.0, 36.0]
    assert y.retains_grad


def test_register_hook_on_a_leaf():
    seen = []
    x = f64([1.0, 2.0], requires_grad=True)
    h = x.register_hook(lambda g: seen.append(g.tolist()))
    (x * x).sum().backward()
    assert seen == [[2.0, 4.0]] and x.grad.tolist() == [2.0, 4.0]
    x.grad = None
    h.remove()
    x.register_hook(lambda g: g * 10)
    (x * x).sum().backward()
    assert x.grad.tolist() == [20.0, 40.0] and seen == [[2.0, 4.0]]
    with pytest.raises(NotImplementedError, match="non-leaf"):
        (x * 2).register_hook(lambda g: g)


def test_repeat_is_new_memory_even_with_repeats_of_one():
    # t.repeat(1, 1) was a read-only view of a broadcast: add_ on it raised
    t = f64([[1.0, 2.0], [3.0, 4.0]])
    y = t.repeat(1, 1)
    y.add_(1.0)
    assert y.tolist() == [[2.0, 3.0], [4.0, 5.0]] and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    check_grad(lambda u: (u.repeat(1) * f64([3.0, 4.0])).sum(), [1.0, 2.0])


def test_a_dtype_where_pytorch_takes_keepdim_or_unbiased_is_refused():
    # numpy's methods take dtype second: A.mean(1, np.float64) kept the dims
    # (a (3, 1) result, broadcast against A: 13.12 where numpy gives 12.83) and
    # A.var(1, np.float64) was unbiased; PyTorch refuses a non-bool there
    A = f64([[2.0, 1.0, 0.5], [0.3, 3.0, 1.0], [1.0, 0.2, 4.0]])
    for f in (lambda: A.mean(1, np.float64), lambda: A.sum(1, np.float64),
              lambda: A.var(1, np.float64), lambda: A.std(0, float),
              lambda: gc.sum(A, 1, float), lambda: A.prod(1, np.float64),
              lambda: A.logsumexp(1, float), lambda: A.max(1, "x")):
        with pytest.raises(TypeError, match="True or False"):
            f()
    a = np.array(A.tolist())
    assert A.sum(1, True).tolist() == a.sum(1, keepdims=True).tolist()
    assert A.var(1, True).tolist() == np.var(a, 1, ddof=1).tolist()
    assert np.mean(A, 1, np.float64).tolist() == np.mean(a, 1, np.float64).tolist()


def test_a_leafs_hook_sees_autograd_grad_too():
    # PyTorch: "the hook will be called every time a gradient with respect to
    # the Tensor is computed", torch.autograd.grad included; d(x.x)/dx = 2x
    x = f64([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
    (g,) = gc.autograd.grad((x * x).sum(), x)
    assert g.tolist() == [20.0, 40.0] and seen == [[2.0, 4.0]]
    assert x.grad is None  # grad() writes no .grad
    (x * x).sum().backward()  # and backward applies it once
    assert x.grad.tolist() == [20.0, 40.0] and len(seen) == 2


def test_no_grad_without_parentheses_and_inference_mode():
    x = f64([1.0], requires_grad=True)

    @gc.no_grad
    def f(t):
        return t * 2

    @gc.no_grad()
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    with gc.inference_mode():
        assert not (x * 2).requires_grad
    with gc.inference_mode(False):
        assert (x * 2).requires_grad
    assert (x * 2).requires_grad


# == allclose, item, tolist, comparisons, cumsum =====================================
def test_allclose_item_tolist_comparisons():
    x = f64([1.0, 2.0])
    assert x.allclose(x + 1e-9) and not x.allclose(x + 1.0)
    assert f64([3.5]).item() == 3.5 and x.tolist() == [1.0, 2.0]
    assert x.gt(1.0).tolist() == [False, True] and x.ge(2.0).tolist() == [False, True]
    assert x.lt(2.0).tolist() == [True, False] and x.le(1.0).tolist() == [True, False]
    assert x.eq(f64([1.0, 3.0])).tolist() == [True, False]
    assert x.ne(1.0).tolist() == [False, True]


def test_cumsum():
    assert f64([1.0, 2.0, 3.0]).cumsum(0).tolist() == [1.0, 3.0, 6.0]
    assert f64(A).cumsum(dim=1).tolist() == [[1.0, 6.0], [3.0, 5.0]]
    assert gc.tensor([1, 2, 3]).cumsum(0).tolist() == [1, 3, 6]
    check_grad(lambda t: t.cumsum(0) ** 2, [[0.5, 1.0], [2.0, -1.0], [0.3, 0.2]])


# == // and % =============================================================================
def test_floor_divide_and_remainder_signs():
    a = f64([7.0, -7.0, 7.0, -7.0])
    b = f64([2.0, 2.0, -2.0, -2.0])
    assert (a // b).tolist() == [3.0, -4.0, -4.0, 3.0]  # floor(3.5), floor(-3.5), ...
    assert (a % b).tolist() == [1.0, 1.0, -1.0, -1.0]  # the divisor's sign
    assert (7.0 % f64([2.0])).tolist() == [1.0] and (f64([7.0]) // 2).tolist() == [3.0]
    assert (gc.tensor([7, -7]) // 2).tolist() == [3, -4]
    assert (gc.tensor([7, -7]) % 3).tolist() == [1, 2]
    with pytest.raises(ZeroDivisionError) as caught:
        gc.tensor([1]) // 0
    assert str(caught.value) == "integer division by zero"  # the class name once


def test_floor_divide_and_remainder_gradients():
    a = f64([7.0, -7.0, 5.5], requires_grad=True)
    b = f64([2.0, 2.0, -1.5], requires_grad=True)
    (a // b).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, 0.0] and b.grad.tolist() == [0.0, 0.0, 0.0]
    a.grad = b.grad = None
    (a % b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0, 1.0]
    # -floor(a / b): -3, 4, 4
    assert b.grad.tolist() == [-3.0, 4.0, 4.0]


def test_grad_fn_types_and_next_functions_are_named_as_pytorch_names_them():
    # issue 10 section 4: type(y.grad_fn).__name__ is MulBackward0; a leaf's
    # entry in next_functions is an AccumulateGrad whose .variable is the leaf.
    x = gc.tensor([1.0, 2.0], requires_grad=True)
    c = gc.tensor([3.0, 4.0])
    y = x * c
    s = gc.sum(gc.sin(y))
    assert type(y.grad_fn).__name__ == "MulBackward0"
    assert type(s.grad_fn).__name__ == "SumBackward0"
    (sin_fn, k), = s.grad_fn.next_functions
    assert type(sin_fn).__name__ == "SinBackward0" and k == 0
    (mul_fn, _), = sin_fn.next_functions
    assert mul_fn is y.grad_fn
    (acc, _), (const, _) = mul_fn.next_functions
    assert type(acc).__name__ == "AccumulateGrad" and acc.variable is x
    assert const is None  # c needs no gradient
    s.backward()  # and the walk still reaches x: d sum(sin(x c))/dx = c cos(x c)
    np.testing.assert_allclose(x.grad.detach().numpy(), [3 * np.cos(3.0), 4 * np.cos(8.0)])


def test_gc_norm_is_pytorchs_and_np_linalg_norm_numpys():
    # [[1,2],[3,4]]: the 2-norm of all entries is sqrt(30); the largest singular
    # value is sqrt(15 + sqrt(221)) (from A^T A's characteristic polynomial).
    A = gc.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=gc.float64)
    assert float(gc.norm(A, 2)) == pytest.approx(math.sqrt(30), rel=1e-15)
    assert float(A.norm(2)) == pytest.approx(math.sqrt(30), rel=1e-15)
    spectral = math.sqrt(15 + math.sqrt(221))
    assert float(np.linalg.norm(A, 2)) == pytest.approx(spectral, rel=1e-14)
    assert float(gc.norm(A, ord=2)) == pytest.approx(spectral, rel=1e-14)
