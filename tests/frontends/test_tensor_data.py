"""Data read from torch code (issue 20, items 3 and 4): Python ints stay ints (a count, an index,
`range(n)`), never floats and never differentiated; an image batch of rank 3 or 4 that does not
require grad is data, read when it is reshaped to a matrix before it meets a differentiated value;
`x[mask]` with a boolean data mask selects elements (torch's rank-1 result); a rank-1 input's
entries are named `b1[3]`, as the user indexes them. Every reading is checked against torch run
on the user's own function, bit for bit (float64 and float32), and against the exact derivative."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import sympy as sp
import torch

import symgrad as sg
import symgrad.testing
from user_code import load_module, same_floats

SOURCE = textwrap.dedent('''
    import torch

    def power_loop(x, n):
        s = x * 0
        for i in range(n):
            s = s + x ** 2
        return s

    def int_uses(x, n, k):
        return (torch.tanh(x.reshape(n, -1)) ** k).sum() * n + x[k]

    def only_ints(a, b):
        return torch.tensor(float(a * b))

    def flat_reshape(X, W):
        return torch.tanh(X.reshape(-1, 4) @ W).sum()

    def flat_view(X, W):
        return torch.tanh(X.view(X.shape[0], -1) @ W).sum()

    def flat_function(X, W):
        return torch.tanh(torch.flatten(X, 1) @ W).sum()

    def flat_method(X, W, b):
        return (torch.relu(X.flatten(1) @ W + b) ** 2).mean()

    def batch_in_arithmetic(X, W):
        Y = X * 2
        return (Y.reshape(2, -1) @ W).sum()

    def batch_times_weight(X, W):
        Y = X * W[0, 0]
        return (Y.reshape(2, -1) @ W).sum()

    def mask_vector(x, m):
        return (x[m] ** 2).sum()

    def mask_matrix(X, M):
        return (X[M] ** 3).sum()

    def mask_rows(X, m):
        return (torch.sin(X[m]) * X[m]).sum()

    def mask_from_labels(x, y):
        return (x[y > 0] ** 2).sum() + x[y == 0].sum()

    def mask_from_x(x):
        return x[x > 0].sum()

    def weight_of_rank_three(W):
        return torch.tanh(W.reshape(2, 2, 2)).sum()

    def relu_count(a, n, y):
        s = a * 0
        for i in range(n):
            s = s + torch.sin(a * (i + 1))
        return torch.relu(s) * y.shape[0]

    def scaled(a, X):
        return torch.tanh(a * X).sum()

    def kinked_bias(W, b1):
        return torch.relu(W @ b1 + b1).sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("tensor_data"), "user_tensor_data")


def torch_grads(fn: Any, args: list[Any]) -> list[float]:
    """torch's own autograd of `fn` at `args`: every floating tensor of rank <= 2 that the
    reading differentiates is a leaf; ints, integer, boolean and image-batch tensors as given."""
    leaves = [a.clone().requires_grad_(True) if _differentiated(a) else a for a in args]
    wrt = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
    grads = torch.autograd.grad(fn(*leaves), wrt)
    return [float(v) for g in grads for v in g.reshape(-1)]


def _differentiated(a: Any) -> bool:
    return isinstance(a, torch.Tensor) and a.is_floating_point() and a.ndim <= 2


def reads_like_torch(fn: Any, args: list[Any]) -> sg.Comparison:
    traced = sg.trace(fn, *args)
    assert traced.mode == "source", traced.reason
    assert traced.fidelity.ok, traced.fidelity.detail
    c = traced.compare()
    assert same_floats([e.grad_autograd for e in c.entries], torch_grads(fn, args))
    return c


DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])


# ---------------------------------------------------------------- 1. Python ints are data


@DTYPES
def test_an_int_is_a_count_never_an_input(module: Any, dtype: torch.dtype) -> None:
    x = torch.tensor(1.5, dtype=dtype)
    c = reads_like_torch(module.power_loop, [x, 3])
    assert [str(e.wrt) for e in c.entries] == ["x"]  # n is no input: no entry, no float
    assert c.entries[0].grad_symbolic == 9  # d/dx of n*x**2 is 2*n*x = 9 exactly
    assert c.cause.id == "agree"


def test_an_int_is_an_int_in_the_users_run_and_in_the_translation(module: Any) -> None:
    x = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    c = reads_like_torch(module.int_uses, [x, 2, 3])  # reshape(n, -1) and x[k] raise in torch for a float
    assert [str(e.wrt) for e in c.entries] == [f"x[{i}, 0]" for i in range(4)]
    xs = [sp.Rational(v) for v in x.tolist()]
    for i, e in enumerate(c.entries):  # d/dx_i of 2*sum(tanh(x)**3) + x[3]
        t = sp.tanh(xs[i])
        assert e.grad_symbolic == pytest.approx(float(2 * 3 * t ** 2 * (1 - t ** 2) + (1 if i == 3 else 0)), rel=1e-14)


def test_another_int_reads_the_function_again(module: Any) -> None:
    traced = sg.trace(module.power_loop, torch.tensor(1.5, dtype=torch.float64), 3)
    c = traced.compare(at={"x": 0.5, "n": 5})
    assert [e.grad_symbolic for e in c.entries] == [5]  # 2 * 5 * 0.5
    assert c.entries[0].grad_autograd == torch_grads(module.power_loop, [torch.tensor(0.5, dtype=torch.float64), 5])[0]


def test_a_float_count_is_still_an_input(module: Any) -> None:
    c = sg.compare(lambda x, n: torch.sin(x) * n, at={"x": 0.5, "n": 3.0})
    assert [str(e.wrt) for e in c.entries] == ["x", "n"]
    assert c.entries[1].grad_autograd == float(torch.sin(torch.tensor(0.5, dtype=torch.float64)))


def test_differentiating_with_respect_to_an_int_is_one_sentence(module: Any) -> None:
    traced = sg.trace(module.power_loop, torch.tensor(1.5, dtype=torch.float64), 3)
    with pytest.raises(sg.OptionError) as err:
        traced.compare(wrt=["n"])
    text = str(err.value)
    assert text.startswith("`n` is the Python int 3: ") and "Fix: pass 3.0 to differentiate with respect to it." in text
    with pytest.raises(sg.PointError) as err2:
        sg.trace(module.only_ints, 2, 3)
    assert str(err2.value).startswith("`a` is the Python int 2 and `b` is the Python int 3: ")
    assert "Fix: pass 2.0 and 3.0 to differentiate with respect to them." in str(err2.value)


def test_an_int_where_torch_needs_a_tensor_is_one_sentence() -> None:
    def f(x, n):
        return torch.sin(x) * torch.exp(n)

    with pytest.raises(sg.PointError) as err:  # torch.exp(2) raises TypeError in the user's own run
        sg.compare(f, at={"x": 0.5, "n": 2})
    text = str(err.value)
    assert text.startswith("`n` is the Python int 2: ") and "TypeError: exp()" in text
    assert "Fix: pass 2.0 to differentiate with respect to it." in text
    c = sg.compare(f, at={"x": 0.5, "n": 2.0})  # the fix: n is an input
    n = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(torch.tensor(0.5, dtype=torch.float64), n), n)
    assert [str(e.wrt) for e in c.entries] == ["x", "n"] and c.entries[1].grad_autograd == float(g)


def test_differentiating_with_respect_to_data_is_one_sentence(module: Any) -> None:
    y = torch.tensor([1, 0, 1])
    traced = sg.trace(module.mask_from_labels, torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64), y)
    with pytest.raises(sg.OptionError) as err:
        traced.compare(wrt=["y"])
    assert str(err.value).startswith("`y` is data, an int64 tensor of shape (3,) (labels, counts, a mask): ")
    traced = sg.trace(module.flat_view, batch(torch.float64), torch.tensor(WEIGHTS, dtype=torch.float64))
    with pytest.raises(sg.OptionError) as err:
        traced.compare(wrt=["X"])
    assert str(err.value).startswith("`X` is data, a tensor of shape (2, 1, 2, 4) (rank 4) that your function reshapes: ")
    assert "Fix: leave `X` out of wrt, or differentiate a reshape of it (pass `X.reshape(2, -1)`" in str(err.value)


def test_sympy_inputs_still_take_ints_as_exact_numbers() -> None:
    x = sp.Symbol("x")
    c = sg.compare(x ** 3, at={x: 2})
    assert c.entries[0].grad_symbolic == 12 and c.entries[0].grad_autograd == 12.0


# ---------------------------------------------------------------- 2. an image batch reshaped


def batch(dtype: torch.dtype) -> torch.Tensor:
    return ((torch.arange(16, dtype=torch.float64).reshape(2, 1, 2, 4) - 7) / 8).to(dtype)


WEIGHTS = [[0.5, -1.0], [0.25, 1.0], [1.0, 0.5], [-0.5, 0.25], [0.75, -0.25], [0.125, 0.5], [-1.0, 1.0], [0.5, 0.5]]


@DTYPES
@pytest.mark.parametrize("name", ["flat_view", "flat_function", "flat_method"])
def test_an_image_batch_is_data_flattened_before_it_meets_a_weight(module: Any, name: str, dtype: torch.dtype) -> None:
    X, W = batch(dtype), torch.tensor(WEIGHTS, dtype=dtype)
    args = [X, W] if name != "flat_method" else [X, W, torch.tensor([0.25, -2.0], dtype=dtype)]
    c = reads_like_torch(getattr(module, name), args)
    assert {str(e.wrt).split("[")[0] for e in c.entries} == ({"W"} if name != "flat_method" else {"W", "b"})
    assert X.shape == (2, 1, 2, 4) and not X.requires_grad  # the user's tensor is left as it was
    if name != "flat_method":  # d/dW sum(tanh(X2 W)) = X2^T (1 - tanh(X2 W)**2), exactly
        X2 = sp.Matrix(X.reshape(2, -1).double().tolist()).applyfunc(sp.Rational)
        Wm = sp.Matrix(W.double().tolist()).applyfunc(sp.Rational)
        want = X2.T * (X2 * Wm).applyfunc(lambda u: 1 - sp.tanh(u) ** 2)
        for e in c.entries:
            assert float(e.grad_symbolic) == pytest.approx(float(want[int(e.wrt.i), int(e.wrt.j)]), rel=1e-14)


def test_a_reshape_to_minus_one_reads_the_batch_in_torchs_order(module: Any) -> None:
    X = batch(torch.float64)
    W = torch.tensor(WEIGHTS[:4], dtype=torch.float64)
    c = reads_like_torch(module.flat_reshape, [X, W])  # (2, 1, 2, 4) -> (4, 4), C order
    assert len(c.entries) == 8


def test_a_batch_in_arithmetic_of_data_alone_is_data(module: Any) -> None:
    # `X * 2` of data alone is computed as torch computes it, still data, then reshaped
    X, W = batch(torch.float64), torch.tensor(WEIGHTS, dtype=torch.float64)
    traced = sg.trace(module.batch_in_arithmetic, X, W)
    assert traced.mode == "source" and traced.fidelity.ok
    leaf = W.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(module.batch_in_arithmetic(X, leaf), leaf)
    c = traced.compare()
    assert c.ok and [e.grad_autograd for e in c.entries] == g.reshape(-1).tolist()


def test_a_batch_in_arithmetic_before_its_reshape_is_a_sentence(module: Any) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(module.batch_times_weight, batch(torch.float64), torch.tensor(WEIGHTS, dtype=torch.float64))
    text = str(err.value)
    assert "Y = X * W[0, 0]" in text and ".py:" in text  # the user's line
    assert "`X` is data of shape (2, 1, 2, 4) (rank 4), used here by `*` before it is reshaped" in text
    assert "Fix: flatten it first, e.g. `X.reshape(X.shape[0], -1)`" in text


def test_a_differentiated_batch_of_rank_four_is_a_sentence(module: Any) -> None:
    X = batch(torch.float64).requires_grad_(True)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(module.flat_view, X, torch.tensor(WEIGHTS, dtype=torch.float64))
    assert str(err.value).startswith("`X` is a tensor of shape (2, 1, 2, 4) (rank 4) that requires grad; ")
    assert "Fix: differentiate a reshape of it" in str(err.value)


def test_a_differentiated_value_of_rank_three_is_a_sentence(module: Any) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(module.weight_of_rank_three, torch.tensor(WEIGHTS[:4], dtype=torch.float64).reshape(2, 4))
    text = str(err.value)
    assert "return torch.tanh(W.reshape(2, 2, 2)).sum()" in text  # the user's line
    assert "A tensor of shape (2, 2, 2) has 3 dimensions; symgrad reads tensors of rank 0, 1 and 2." in text


# ---------------------------------------------------------------- 3. mask indexing


MATRIX = [[1.0, -2.0], [0.5, 0.25], [-1.5, 3.0]]


@DTYPES
def test_a_boolean_data_mask_selects_elements(module: Any, dtype: torch.dtype) -> None:
    x = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=dtype)
    m = torch.tensor([True, False, True, True])
    c = reads_like_torch(module.mask_vector, [x, m])
    assert [e.grad_symbolic for e in c.entries] == [2 * sp.Rational(v) if k else 0 for v, k in zip(x.double().tolist(), m.tolist())]
    X = torch.tensor(MATRIX, dtype=dtype)
    c = reads_like_torch(module.mask_matrix, [X, X < 1])  # X[M] is rank 1, row-major: torch's order
    for e in c.entries:
        v = sp.Rational(MATRIX[int(e.wrt.i)][int(e.wrt.j)])
        assert e.grad_symbolic == (3 * v ** 2 if v < 1 else 0)
    c = reads_like_torch(module.mask_rows, [X, torch.tensor([True, False, True])])  # rows
    assert [e.grad_symbolic == 0 for e in c.entries] == [False, False, True, True, False, False]


@DTYPES
def test_a_mask_computed_from_data_selects_elements(module: Any, dtype: torch.dtype) -> None:
    x = torch.tensor([1.0, -2.0, 3.0], dtype=dtype)
    c = reads_like_torch(module.mask_from_labels, [x, torch.tensor([1, 0, 2])])
    assert [e.grad_symbolic for e in c.entries] == [2, 1, 6]


def test_a_mask_of_a_differentiated_value_points_at_where(module: Any) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(module.mask_from_x, torch.tensor([1.0, -2.0], dtype=torch.float64))
    text = str(err.value)
    assert "return x[x > 0].sum()" in text and "a mask computed from a differentiated tensor" in text
    assert "`torch.where(x > 0, x, 0.0)`" in text


def test_a_mask_of_another_length_is_a_sentence(module: Any) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(module.mask_vector, torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([True, False, True]))
    assert "The mask `m` has 3 elements, but it indexes a dimension of size 2" in str(err.value)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-4, 4, allow_nan=False, width=32), st.booleans()), min_size=1, max_size=6)
       .filter(lambda pairs: any(k for _, k in pairs)),
       st.sampled_from([torch.float64, torch.float32]))
def test_any_data_mask_selects_what_torch_selects(module: Any, pairs: list[tuple[float, bool]], dtype: torch.dtype) -> None:
    # -0.0 is left out: torch's backward of x[m] adds the gradient into zeros (a -0.0 gradient comes back
    # +0.0), symgrad's picks elements one by one (it stays -0.0); the fidelity check refuses that point.
    x = torch.tensor([v + 0.0 for v, _ in pairs], dtype=dtype)
    m = torch.tensor([k for _, k in pairs])
    c = reads_like_torch(module.mask_vector, [x, m])  # bit for bit with torch's x[m]
    assert [e.grad_symbolic for e in c.entries] == [2 * sp.Rational(v) if k else 0 for v, k in zip(x.double().tolist(), m.tolist())]


# ---------------------------------------------------------------- 5. a rank-1 input's entries


def test_a_rank_one_inputs_entries_are_named_by_one_index(module: Any) -> None:
    W = torch.tensor([[1.0, -1.0], [0.5, 2.0]], dtype=torch.float64)
    b1 = torch.tensor([0.0, 0.5], dtype=torch.float64)  # W @ b1 + b1 = [-0.5, 1.5]: no tie
    c = reads_like_torch(module.kinked_bias, [W, b1])
    text, markdown = str(c), c.to_markdown()
    for shown in (text, markdown):
        assert "b1[0]" in shown and "b1[1]" in shown and "b1[0, 0]" not in shown and "b1[1, 0]" not in shown
        assert "W[0, 1]" in shown  # a matrix keeps two indices
    data = c.to_dict()
    assert [e["wrt"] for e in data["entries"]][-2:] == ["b1[0]", "b1[1]"]
    with pytest.raises(sg.GradientMismatch) as err:  # relu at 0: W @ b1 + b1 = [0, ...] at b1 = [0.25, 0.25]
        sg.testing.assert_grad_matches_math(module.kinked_bias, torch.tensor([[1.0, -2.0], [0.5, 2.0]],
                                            dtype=torch.float64), torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert "b1[0]" in str(err.value) and "b1[0, 0]" not in str(err.value)


# ---------------------------------------------------------------- 4. sweeps hold data fixed


@DTYPES
def test_a_sweep_holds_ints_and_data_at_their_values(module: Any, dtype: torch.dtype) -> None:
    y = torch.tensor([2, 0, 1])
    traced = sg.trace(module.relu_count, torch.tensor(0.5, dtype=dtype), 3, y)
    s = traced.sweep({"a": (-1, 1)}, n=9)
    assert s.checked_points == 9 and [w.name for w in s.wrt] == ["a"]
    for k, a in enumerate(s.points[:, 0].tolist()):  # torch, point by point, on the user's own function
        t = torch.tensor(a, dtype=dtype, requires_grad=True)
        out = module.relu_count(t, 3, y)
        (g,) = torch.autograd.grad(out, t)
        assert same_floats([float(s.value[k]), float(s.grad_autograd[k, 0])], [float(out.detach()), float(g)])
        inside = sum(sp.sin(sp.Rational(a) * (i + 1)) for i in range(3))  # the exact derivative where relu is smooth
        if inside != 0:
            want = 3 * sum((i + 1) * sp.cos(sp.Rational(a) * (i + 1)) for i in range(3)) if inside > 0 else 0
            tol = 1e-5 if dtype == torch.float32 else 1e-12
            assert float(s.grad_executed[k, 0]) == pytest.approx(float(want), rel=tol, abs=tol)
    assert s.counts == {"agree": 8, "kink": 1}  # a = 0: relu's corner at sin(0) + sin(0) + sin(0)


def test_a_sweep_of_tensor_inputs_holds_them_and_runs(module: Any) -> None:
    # Issue 20: the scalar `a` is swept with the tensor X held at its example value (once a
    # sentence; tests/tools/test_sweep_tensors.py holds the rule's own tests).
    X = torch.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=torch.float64)
    traced = sg.trace(module.scaled, 1.0, X)
    s = traced.sweep({"a": (-1, 1)}, n=5)
    assert s.counts == {"agree": 5} and [w.name for w in s.wrt] == ["a"] and s.checked_points == 5
    for k, v in enumerate(s.points[:, 0].tolist()):  # torch, point by point, on the user's own function
        assert same_floats([float(s.grad_autograd[k, 0])], torch_grads(module.scaled, [torch.tensor(v, dtype=torch.float64), X])[:1])
        exact = sum(x * (1 - sp.tanh(sp.Rational(v) * x) ** 2) for x in (1, 2, 3, -4))
        assert float(s.grad_autograd[k, 0]) == pytest.approx(float(exact), rel=1e-14)
    with pytest.raises(sg.OptionError) as err2:
        sg.sweep(module.scaled, over={"a": (-1, 1)})
    assert "`symgrad.trace(f, *example_values).sweep(over)`" in str(err2.value)


# ---------------------------------------------------------------- Python flags are data

FLAGS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F


    def classifier_loss(Y_hat, Y, averaged=True):
        return F.cross_entropy(Y_hat, Y, reduction='mean' if averaged else 'none').sum()


    def scaled(x, mode):
        if mode == "double":
            return (x * 2).sum()
        return (x * 3).sum()
''')


@DTYPES
@pytest.mark.parametrize("averaged", [True, False])
def test_a_bool_option_is_decided_by_python_never_an_input(tmp_path: Path, dtype: torch.dtype, averaged: bool) -> None:
    """D2L's `Classifier.loss(Y_hat, Y, averaged=True)`: a Python bool (or string, or None) given
    as an argument is an option Python decides with while the function is read, in the user's
    run and in the translation alike: no entry, and `'mean' if averaged else 'none'` chosen as
    Python chooses it. The same code object read with the other flag reads again (not a cached
    reading of the other one)."""
    mod = load_module(FLAGS, tmp_path)
    Y_hat = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], dtype=dtype)
    Y = torch.tensor([2, 0])
    c = reads_like_torch(mod.classifier_loss, [Y_hat, Y, averaged])
    assert [str(e.wrt) for e in c.entries] == [f"Y_hat[{i}, {j}]" for i in range(2) for j in range(3)]
    assert all(e.ok for e in c.entries)
    # d/dY_hat of the summed losses is softmax - onehot; 'mean' halves it (exactly, by the rule)
    p = torch.softmax(Y_hat.double(), 1) - torch.nn.functional.one_hot(Y, 3).double()
    want = (p / 2 if averaged else p).flatten().tolist()
    got = [float(e.grad_symbolic) for e in c.entries]
    assert all(abs(g - w) <= 1e-12 * max(1.0, abs(w)) for g, w in zip(got, want))


def test_a_string_option_picks_the_branch_python_takes(tmp_path: Path) -> None:
    mod = load_module(FLAGS, tmp_path)
    x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    for mode, slope in (("double", 2), ("triple", 3)):
        c = reads_like_torch(mod.scaled, [x, mode])
        assert [e.grad_symbolic for e in c.entries] == [slope, slope]


def test_a_flag_in_wrt_is_a_sentence(tmp_path: Path) -> None:
    mod = load_module(FLAGS, tmp_path)
    Y_hat = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(sg.OptionError) as err:
        sg.compare(mod.classifier_loss, at={"Y_hat": Y_hat, "Y": torch.tensor([0, 1]), "averaged": True},
                   wrt=["averaged"])
    first, fix = str(err.value).splitlines()[:2]
    assert first.startswith("`averaged` is the Python option True: ") and "never differentiates it" in first
    assert fix == "Fix: leave `averaged` out of wrt."
