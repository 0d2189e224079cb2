"""An image batch (a floating tensor of rank 3 or 4 that does not require grad) given to an
`nn.Module`, to a function that takes a model, or passed on into the user's helpers and methods
(issue: the D2L corpus's Fashion-MNIST models): data, as it is for a plain function. `nn.Flatten`
and `X.reshape((-1, W.shape[0]))` of it give a matrix of constants; data reassigned inside a helper
or a method (`Y = Y.reshape((-1,))`) stays data. Every reading is checked against torch's own
autograd of the user's code, bit for bit (float64 and float32), and against the exact derivative
computed here with SymPy."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from user_code import load_module, same_floats

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F


    class Concise(nn.Module):
        def __init__(self, start_dim=1):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(start_dim), nn.Linear(8, 3))

        def forward(self, X):
            return self.net(X)

        def loss(self, Y_hat, Y):
            return F.cross_entropy(Y_hat, Y)

        def loss2(self, Y_hat, Y):
            Y = Y.reshape((-1,))
            return F.cross_entropy(Y_hat, Y)


    class Scratch(nn.Module):
        def __init__(self, W, b):
            super().__init__()
            self.W = nn.Parameter(W)
            self.b = nn.Parameter(b)

        def forward(self, X):
            X = X.reshape((-1, self.W.shape[0]))
            return torch.tanh(X @ self.W + self.b).sum()


    class Cube(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, X):
            h = self.lin(torch.flatten(X, 1))
            return h.reshape(2, 2, 2).sum()


    def step(model, X, y):
        l = model.loss(model(X), y)
        return l


    def step2(model, X, y):
        l = model.loss2(model(X), y)
        return l


    def forward(X, W, b):
        X = X.reshape((-1, W.shape[0]))
        return X @ W + b


    def softmax_loss(X, y, W, b):
        return F.cross_entropy(forward(X, W, b), y)


    def labels_reshaped(Y_hat, Y):
        Y = Y.reshape((-1,))
        return F.cross_entropy(Y_hat, Y)


    def helper_loss(X, y, W, b):
        return labels_reshaped(forward(X, W, b), y)
''')

DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("module_data"), "user_module_data")


def batch(dtype: torch.dtype) -> torch.Tensor:
    """A stand-in for Fashion-MNIST's (n, 1, 28, 28): (2, 1, 2, 4), exact binary fractions."""
    return ((torch.arange(16, dtype=torch.float64).reshape(2, 1, 2, 4) - 7) / 8).to(dtype)


LABELS = torch.tensor([2, 0])
W83 = [[0.5, -1.0, 0.25], [0.25, 1.0, -0.5], [1.0, 0.5, 0.75], [-0.5, 0.25, 0.125], [0.75, -0.25, 1.0],
       [0.125, 0.5, -0.75], [-1.0, 1.0, 0.5], [0.5, 0.5, -0.25]]
B3 = [0.25, -0.5, 0.125]


def concise(module: Any, dtype: torch.dtype, start_dim: int = 1) -> torch.nn.Module:
    """D2L's concise model (nn.Flatten, nn.Linear) with exact binary-fraction weights."""
    m = module.Concise(start_dim).double()
    with torch.no_grad():
        m.net[1].weight.copy_(torch.tensor(W83, dtype=torch.float64).T)
        m.net[1].bias.copy_(torch.tensor(B3, dtype=torch.float64))
    return m.to(dtype)


def torch_grads(fn: Any, args: list[Any], leaves: list[torch.Tensor]) -> list[float]:
    grads = torch.autograd.grad(fn(*args), leaves)
    return [float(v) for g in grads for v in g.reshape(-1)]


def exact_cross_entropy_grads(X: torch.Tensor, y: torch.Tensor, W: list[list[float]], b: list[float]) -> tuple[Any, Any]:
    """d/dW and d/db of mean_i(-log softmax(X2 W + b)[i, y_i]), X2 the batch flattened in C order,
    exactly (SymPy, the floats as rationals): (P - onehot)^T-shaped sums over the batch / n."""
    X2 = sp.Matrix(X.reshape(X.shape[0], -1).double().tolist()).applyfunc(sp.Rational)
    Wm = sp.Matrix(W).applyfunc(sp.Rational)
    Z = X2 * Wm + sp.ones(X2.rows, 1) * sp.Matrix([b]).applyfunc(sp.Rational)
    n, k = Z.shape
    P = sp.Matrix(n, k, lambda i, j: sp.exp(Z[i, j]) / sum(sp.exp(Z[i, c]) for c in range(k)))
    D = (P - sp.Matrix(n, k, lambda i, j: 1 if int(y[i]) == j else 0)) / n
    return X2.T * D, sp.ones(1, n) * D  # (8, 3) and (1, 3)


def assert_exact(entries: list[Any], want: list[Any]) -> None:
    assert len(entries) == len(want)
    for e, w in zip(entries, want):
        assert float(e.grad_symbolic) == pytest.approx(float(sp.N(w, 30)), rel=1e-13, abs=1e-300)


# ---------------------------------------------------------------- 1. a module given an image batch


@DTYPES
def test_a_module_flattens_an_image_batch_with_nn_flatten(module: Any, dtype: torch.dtype) -> None:
    m, X = concise(module, dtype), batch(dtype)
    c = sg.compare(module.step, at={"model": m, "X": X, "y": LABELS}, wrt=["model"])
    assert c.cause == sg.Cause.AGREE and c.dtype == str(dtype).split(".")[1]
    params = list(m.parameters())
    assert same_floats([e.grad_autograd for e in c.entries], torch_grads(module.step, [m, X, LABELS], params))
    dW, db = exact_cross_entropy_grads(X, LABELS, W83, B3)
    assert_exact(c.entries, list(dW.T) + list(db))  # nn.Linear's weight is W.T, row-major
    assert X.shape == (2, 1, 2, 4) and not X.requires_grad and all(p.requires_grad for p in params)


@DTYPES
def test_a_module_called_with_an_image_batch_reads_its_forward(module: Any, dtype: torch.dtype) -> None:
    m, X = concise(module, dtype), batch(dtype)
    traced = sg.trace(m, X)
    assert traced.mode == "source" and traced.fidelity.ok, traced.fidelity.detail
    c = traced.compare()
    assert c.cause == sg.Cause.AGREE
    params = list(m.parameters())
    assert same_floats([e.grad_autograd for e in c.entries], jacobian(m(X), params))
    X2 = X.reshape(2, -1).double().tolist()  # d out[i, k] / d weight[r, c] = X2[i][c] (r = k); / d bias[r] = 1 (r = k)
    cells = [(r, col) for r in range(3) for col in range(8)] + [(r, None) for r in range(3)]  # weight, then bias
    want = [0.0 if r != k else (1.0 if col is None else X2[i][col]) for i in range(2) for k in range(3) for r, col in cells]
    assert [float(e.grad_symbolic) for e in c.entries] == want


def jacobian(out: torch.Tensor, leaves: list[torch.Tensor]) -> list[float]:
    """torch's Jacobian of every output element (row-major) with respect to every leaf element:
    the entries symgrad compares for a matrix output."""
    flat = out.reshape(-1)
    return [float(v) for i in range(flat.numel())
            for g in torch.autograd.grad(flat[i], leaves, retain_graph=True) for v in g.reshape(-1)]


@DTYPES
def test_a_scratch_module_reshapes_the_batch_to_its_weights_rows(module: Any, dtype: torch.dtype) -> None:
    W, b = torch.tensor(W83, dtype=dtype), torch.tensor(B3, dtype=dtype)
    m, X = module.Scratch(W.clone(), b.clone()), batch(dtype)
    c = sg.compare(m, at={"X": X})
    assert c.cause == sg.Cause.AGREE
    assert same_floats([e.grad_autograd for e in c.entries], jacobian(m(X), [m.W, m.b]))
    X2 = sp.Matrix(X.reshape(2, -1).double().tolist()).applyfunc(sp.Rational)
    Z = X2 * sp.Matrix(W83).applyfunc(sp.Rational) + sp.ones(2, 1) * sp.Matrix([B3]).applyfunc(sp.Rational)
    D = Z.applyfunc(lambda u: 1 - sp.tanh(u) ** 2)
    assert_exact(c.entries, list(X2.T * D) + list(sp.ones(1, 2) * D))


def test_a_flatten_that_leaves_rank_three_data_is_a_sentence_naming_the_line(module: Any) -> None:
    m = concise(module, torch.float64, start_dim=2)  # (2, 1, 2, 4) -> (2, 1, 8): rank 3 meets nn.Linear
    with pytest.raises(sg.TraceError) as err:
        sg.trace(m, batch(torch.float64))
    text = str(err.value)
    assert "return self.net(X)" in text and ".py:" in text  # the user's line
    assert "`X` is data of shape (2, 1, 8) (rank 3), given to the submodule `net.1`, an `nn.Linear`, before" in text
    assert "Fix: flatten it first" in text


def test_a_differentiated_value_of_rank_three_in_a_module_is_a_sentence_naming_the_line(module: Any) -> None:
    m = module.Cube().double()
    with pytest.raises(sg.TraceError) as err:
        sg.trace(m, batch(torch.float64))
    text = str(err.value)
    assert "return h.reshape(2, 2, 2).sum()" in text and ".py:" in text
    assert "A tensor of shape (2, 2, 2) has 3 dimensions; symgrad reads tensors of rank 0, 1 and 2." in text


def test_an_image_batch_that_requires_grad_given_to_a_module_is_a_sentence(module: Any) -> None:
    X = batch(torch.float64).requires_grad_(True)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(concise(module, torch.float64), X)
    assert str(err.value).startswith("`X` is a tensor of shape (2, 1, 2, 4) (rank 4) that requires grad; ")


# ---------------------------------------------------------------- 2. data through helpers and methods


@DTYPES
@pytest.mark.parametrize("name", ["softmax_loss", "helper_loss"])
def test_an_image_batch_flows_into_a_helper(module: Any, name: str, dtype: torch.dtype) -> None:
    X, W, b = batch(dtype), torch.tensor(W83, dtype=dtype), torch.tensor(B3, dtype=dtype)
    fn = getattr(module, name)
    traced = sg.trace(fn, X, LABELS, W, b)
    assert traced.mode == "source" and traced.fidelity.ok, traced.fidelity.detail
    c = traced.compare()
    assert c.cause == sg.Cause.AGREE
    leaves = [W.clone().requires_grad_(True), b.clone().requires_grad_(True)]
    assert same_floats([e.grad_autograd for e in c.entries], torch_grads(fn, [X, LABELS, *leaves], leaves))
    dW, db = exact_cross_entropy_grads(X, LABELS, W83, B3)
    assert_exact(c.entries, list(dW) + list(db))


@DTYPES
@pytest.mark.parametrize("rank", [4, 2])
@pytest.mark.parametrize("y", [LABELS, LABELS.reshape(2, 1)], ids=["rank1", "column"])
def test_integer_labels_reshaped_inside_a_method_stay_data(module: Any, y: torch.Tensor, rank: int,
                                                           dtype: torch.dtype) -> None:
    """`model.loss2(model(X), y)`, `loss2` reassigning `Y = Y.reshape((-1,))`: the labels stay data
    (with an image batch, and with X already a matrix, which nn.Flatten leaves as it is)."""
    m, X = concise(module, dtype), batch(dtype) if rank == 4 else batch(dtype).reshape(2, 8)
    c = sg.compare(module.step2, at={"model": m, "X": X, "y": y}, wrt=["model"])
    assert c.cause == sg.Cause.AGREE
    params = list(m.parameters())
    assert same_floats([e.grad_autograd for e in c.entries], torch_grads(module.step2, [m, X, y], params))
    dW, db = exact_cross_entropy_grads(X, LABELS, W83, B3)
    assert_exact(c.entries, list(dW.T) + list(db))


def test_labels_that_do_not_fit_a_reshape_in_a_method_are_a_sentence_naming_its_line(module: Any) -> None:
    y = torch.tensor([2, 0, 1])  # three labels for two rows: reshape((-1,)) fits, cross_entropy does not
    with pytest.raises(sg.SymgradError) as err:
        sg.compare(module.step2, at={"model": concise(module, torch.float64), "X": batch(torch.float64), "y": y},
                   wrt=["model"])
    text = str(err.value)
    assert ".py:20 return F.cross_entropy(Y_hat, Y)" in text  # the method's own line, not the caller's
    assert "the labels [2, 0, 1] do not fit (2, 3) scores" in text and "SympifyError" not in text


# ---------------------------------------------------------------- 3. data a loop changes

LOOPS = textwrap.dedent('''
    import torch


    def loop_after_reshape(X, W):
        X = X.reshape((-1, W.shape[0]))
        for i in range(2):
            X = X * 2
        return torch.sin(X @ W).sum()


    def calls_loop_after_reshape(X, W):
        return loop_after_reshape(X, W)


    def loop_first(X, W):
        for i in range(2):
            X = X * 2
        return torch.sin(X @ W).sum()


    def calls_loop_first(X, W):
        return loop_first(X.reshape((-1, W.shape[0])), W)
''')


@pytest.fixture(scope="module")
def loops(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(LOOPS, tmp_path_factory.mktemp("module_data_loops"), "user_module_data_loops")


@DTYPES
@pytest.mark.parametrize("name", ["loop_after_reshape", "calls_loop_after_reshape", "calls_loop_first"])
def test_data_a_loop_changes_is_read_on_every_pass(loops: Any, name: str, dtype: torch.dtype) -> None:
    """`X = X * 2` in a loop, X an image batch reshaped (at top level, in a helper, and as a helper's
    argument that its first statement, the loop, changes): the loop's
    variable, doubled on each pass (it was read once: the translation doubled it once, and the
    fidelity check refused the function)."""
    X, W = batch(dtype), torch.tensor(W83, dtype=dtype)
    fn = getattr(loops, name)
    traced = sg.trace(fn, X, W)
    assert traced.mode == "source" and traced.fidelity.ok, traced.fidelity.detail
    c = traced.compare()
    assert c.cause == sg.Cause.AGREE
    leaf = W.clone().requires_grad_(True)
    assert same_floats([e.grad_autograd for e in c.entries], torch_grads(fn, [X, leaf], [leaf]))
    X2 = sp.Matrix(X.reshape(2, -1).double().tolist()).applyfunc(sp.Rational) * 4  # doubled twice
    Z = X2 * sp.Matrix(W83).applyfunc(sp.Rational)
    assert_exact(c.entries, list(X2.T * Z.applyfunc(sp.cos)))
