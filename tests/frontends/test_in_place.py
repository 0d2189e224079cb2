"""In-place updates read from source (issue 22, item 6): `op_()` methods and augmented assignment
on tensors that are not leaves, index-puts (`a[i] = v`, `a[mask] = v`, `a[i] += v`), `.data`,
and torch's own error for an in-place change of a leaf that requires grad.

Each function is written to a real .py file and read from its source, the fidelity check holding
and autograd torch's own bit for bit (`reads_like_torch`, float64 and float32); the derivatives
are asserted against values worked out by hand (exact at these points).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from tests.user_code import load_module, reads_like_torch

SOURCE = '''
import torch


def put_clone(x):
    a = x.clone()
    a[0] = x[1] * 3.0
    return (a * a).sum()


def put_zeros(x):
    a = torch.zeros(3, dtype=torch.float64)
    a[1] = x[0] * 2.0
    a[2] += x[2]
    return (a * x).sum()


def put_slice(x):
    a = x * 1.0
    a[1:] = x[0]
    return (a * x).sum()


def put_matrix(X):
    A = X * 2.0
    A[0, 1] = 5.0
    A[1] = X[0] * X[1]
    return A.sum()


def put_mask(x, m):
    a = x * 1.0
    a[m] = 0.0
    return (a * a).sum()


def put_where(x):
    a = x * 1.0
    a[x > 0] = 0.0
    return a.sum()


def ops(x):
    y = x * 2.0
    y.add_(1.0)
    y.mul_(x)
    y.clamp_(min=0.5)
    y *= 3.0
    return y.sum()


def relu_(x):
    y = x - 1.0
    y.relu_()
    return y.sum()


def zero_(x):
    y = x * 2.0
    y.zero_()
    return (y + x).sum()


def in_a_loop(x):
    y = x * 1.0
    for i in range(3):
        y.mul_(2.0)
    return y.sum()


def data(x):
    y = x * x.data
    return y.sum()


def leaf_method(x):
    x.add_(1.0)
    return x.sum()


def leaf_augmented(x):
    x *= 2.0
    return x.sum()


def leaf_alias(x):
    y = x
    y[0] = 1.0
    return y.sum()


def data_changed(x):
    y = x * 2.0
    y.data *= 100
    return y.sum()


def data_method(x):
    y = x * 2.0
    y.data.zero_()
    return y.sum()


def aliased(x):
    a = x * 2.0
    b = a
    b[0] = 1.0
    return a.sum()


def aliased_augmented(x):
    a = x * 2.0
    b = a
    b *= 3.0
    return a.sum()


def rebound(x):
    a = x * 2.0
    b = a
    b = b * 1.0
    b[0] = 1.0
    return a.sum() + b.sum()


def after_exp(x):
    y = torch.exp(x)
    y.add_(1.0)
    return y.sum()
'''

X = [0.5, -1.5, 2.0]


@pytest.fixture(scope="module")
def mod(tmp_path_factory: Any) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("in_place"))


def _line(text: str, after: str) -> int:
    lines = SOURCE.splitlines()
    return lines.index(text, lines.index(after)) + 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name, grads", [
    ("put_clone", [0.0, -30.0, 4.0]),    # (3 x1)^2 + x1^2 + x2^2: x0 overwritten, gradient 0
    ("put_zeros", [-3.0, 1.0, 4.0]),     # 2 x0 x1 + x2^2
    ("put_slice", [1.5, 0.5, 0.5]),      # x0^2 + x0 x1 + x0 x2 -> (2 x0 + x1 + x2, x0, x0)
    ("ops", [9.0, -15.0, 27.0]),         # 3 max((2x + 1) x, 0.5)
    ("relu_", [0.0, 0.0, 1.0]),
    ("zero_", [1.0, 1.0, 1.0]),          # zeros + x
    ("in_a_loop", [8.0, 8.0, 8.0]),
    ("put_where", [0.0, 1.0, 0.0]),      # torch.where(x > 0, 0, x)
])
def test_in_place_on_a_non_leaf_reads_as_torch_computes_it(mod: Any, name: str, grads: list[float],
                                                           dtype: torch.dtype) -> None:
    c = reads_like_torch(getattr(mod, name), [torch.tensor(X, dtype=dtype)])
    assert [e.cause for e in c.entries] == [sg.Cause.AGREE] * 3
    assert [float(e.grad_executed) for e in c.entries] == grads
    assert [e.grad_autograd for e in c.entries] == grads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_an_index_put_into_a_matrix(mod: Any, dtype: torch.dtype) -> None:
    """A[0, 1] = 5 and A[1] = X[0] * X[1] (a row): sum = 2 X00 + 5 + X00 X10 + X01 X11."""
    X2 = torch.tensor([[0.5, -1.5], [2.0, 3.0]], dtype=dtype)
    c = reads_like_torch(mod.put_matrix, [X2])
    assert [float(e.grad_executed) for e in c.entries] == [2.0 + 2.0, 3.0, 0.5, -1.5]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_an_index_put_by_a_boolean_data_mask(mod: Any, dtype: torch.dtype) -> None:
    m = torch.tensor([True, False, True])
    c = reads_like_torch(mod.put_mask, [torch.tensor(X, dtype=dtype), m])
    assert [float(e.grad_executed) for e in c.entries] == [0.0, -3.0, 0.0]


def test_data_is_a_graph_break_at_its_line(mod: Any) -> None:
    """`x * x.data`: the mathematics 2x, the path that ran x (x.data a constant), torch x."""
    c = reads_like_torch(mod.data, [torch.tensor(X, dtype=torch.float64)])
    assert [e.cause for e in c.entries] == [sg.Cause.GRAPH_BREAK] * 3
    assert [float(e.grad_symbolic) for e in c.entries] == [1.0, -3.0, 4.0]
    assert [e.grad_autograd for e in c.entries] == X
    assert all(e.source is not None and e.source.line == _line("    y = x * x.data", "def data(x):") for e in c.entries)


@pytest.mark.parametrize("name, code, text", [
    ("leaf_method", "x.add_(1.0)", "    x.add_(1.0)"),
    ("leaf_augmented", "x *= 2.0", "    x *= 2.0"),
    ("leaf_alias", "y[0] = 1.0", "    y[0] = 1.0"),
])
def test_in_place_on_a_leaf_is_torchs_error(mod: Any, name: str, code: str, text: str) -> None:
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        getattr(mod, name)(x)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(getattr(mod, name), torch.tensor(X, dtype=torch.float64))
    line = _line(text, f"def {name}(x):")
    assert f".py:{line} {text.strip()}: `{code}` changes " in str(err.value)
    assert "a leaf Variable that requires grad is being used in an in-place operation" in str(err.value)


@pytest.mark.parametrize("name, code", [("data_changed", "y.data *= 100"), ("data_method", "y.data.zero_()")])
def test_a_change_through_data_is_one_sentence(mod: Any, name: str, code: str) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(getattr(mod, name), torch.tensor(X, dtype=torch.float64))
    line = _line(f"    {code}", f"def {name}(x):")
    assert f".py:{line} {code}: `{code}` changes a tensor through `.data`, behind autograd's back (a graph break)" in str(err.value)


def test_an_op_whose_backward_needed_the_old_value_is_refused(mod: Any) -> None:
    """exp's backward reads its output, which add_ changed: torch's backward raises, and the
    fidelity check (which runs it) gives no verdict rather than the out-of-place gradient."""
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        mod.after_exp(x).backward()
    with pytest.raises(sg.TraceError):
        sg.trace(mod.after_exp, torch.tensor(X, dtype=torch.float64))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False, width=32).filter(lambda v: v != 0), min_size=2, max_size=5),
       st.integers(0, 4))
def test_index_put_equals_torch_everywhere(tmp_path_factory: Any, values: list[float], k: int) -> None:
    """`a = x.clone(); a[k] = x[1] * 3; (a * a).sum()` at random points: the overwritten element's
    gradient 0, the rest 2 a_i, x[1]'s also 18 x1 where k != 1, torch's bit for bit. (Not at
    signed zeros: torch sums the gradient of x[1] as -0.0 + -0.0 through the clone, the reading as
    -0.0 + 0.0 through two element reads, and the fidelity check refuses that reading.)"""
    k = k % len(values)
    src = (f"import torch\n\ndef f(x):\n    a = x.clone()\n    a[{k}] = x[1] * 3.0\n    return (a * a).sum()\n")
    mod = load_module(src, tmp_path_factory.getbasetemp())
    x = torch.tensor(values, dtype=torch.float64)
    c = reads_like_torch(mod.f, [x])
    want = [0.0 if i == k else 2 * v for i, v in enumerate(values)]
    want[1] += 18 * values[1]
    assert [float(e.grad_executed) for e in c.entries] == want


@pytest.mark.parametrize("name, code", [("aliased", "b[0] = 1.0"), ("aliased_augmented", "b *= 3.0")])
def test_in_place_on_a_second_name_of_a_tensor_is_a_sentence(mod: Any, name: str, code: str) -> None:
    """`b = a` makes no copy: torch changes a too, which a reading of b alone would miss."""
    with pytest.raises(sg.TraceError) as err:
        sg.trace(getattr(mod, name), torch.tensor(X, dtype=torch.float64))
    line = _line(f"    {code}", f"def {name}(x):")
    assert f".py:{line} {code}: `{code}` changes `b` in place, and `b` is the same tensor as `a`" in str(err.value)


def test_a_name_given_a_new_tensor_is_no_longer_an_alias(mod: Any) -> None:
    """`b = b * 1.0` makes a new tensor: b[0] = 1 leaves a as it was (2x + 2x, and 2 for the rest)."""
    c = reads_like_torch(mod.rebound, [torch.tensor(X, dtype=torch.float64)])
    assert [e.grad_autograd for e in c.entries] == [2.0, 4.0, 4.0]
