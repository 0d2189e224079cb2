"""D2L's way of building models: plain leaf tensors with requires_grad=True kept as module
attributes (not `nn.Parameter`s) are inputs exactly like parameters (issue 22, item 1).

    class LinearRegressionScratch(d2l.Module):
        def __init__(self, num_inputs, lr, sigma=0.01):
            self.w = torch.normal(0, sigma, (num_inputs, 1), requires_grad=True)
            self.b = torch.zeros(1, requires_grad=True)

Each reading is checked against torch itself (each entry's autograd value is
`torch.autograd.grad` of the real model's output with respect to its own tensors, bit for bit)
and an exact truth computed here (Fractions of the tensors' binary values for the linear model,
SymPy for softmax), and the model's tensors are left as they were: the same objects, values,
requires_grad flags and `.grad`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
from torch import nn

import symgrad as sg
from symgrad.base.errors import TraceError
from symgrad.frontends import modules as mods

DTYPES = [torch.float64, torch.float32]


class LinearRegressionScratch(nn.Module):
    """linear-regression-scratch.md, "Defining the Model" (d2l.Module is an nn.Module)."""

    def __init__(self, num_inputs: int, lr: float, sigma: float = 0.01, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.lr = lr
        self.w = torch.normal(0, sigma, (num_inputs, 1), dtype=dtype, requires_grad=True)
        self.b = torch.zeros(1, dtype=dtype, requires_grad=True)

    def forward(self, X):
        return torch.matmul(X, self.w) + self.b

    def loss(self, y_hat, y):
        l = (y_hat - y) ** 2 / 2
        return l.mean()


def softmax(X):
    X_exp = torch.exp(X)
    partition = X_exp.sum(1, keepdims=True)
    return X_exp / partition


class SoftmaxRegressionScratch(nn.Module):
    """softmax-regression-scratch.md, "The Model"."""

    def __init__(self, num_inputs: int, num_outputs: int, lr: float, sigma: float = 0.01,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.W = torch.normal(0, sigma, size=(num_inputs, num_outputs), dtype=dtype, requires_grad=True)
        self.b = torch.zeros(num_outputs, dtype=dtype, requires_grad=True)

    def parameters(self):
        return [self.W, self.b]

    def forward(self, X):
        X = torch.reshape(X, (-1, self.W.shape[0]))
        return softmax(torch.matmul(X, self.W) + self.b)


def training_step(model, X, y):
    """oo-design.md, Module.training_step: the loss of the model's prediction."""
    return model.loss(model(X), y)


def snapshot(model: nn.Module, names: list[str]) -> list[tuple[Any, ...]]:
    """What a reading must leave as it was: each tensor object, its value, flag and .grad."""
    out = []
    for n in names:
        t = model.get_submodule(n.rpartition(".")[0]) if "." in n else model
        t = vars(t)[n.rpartition(".")[2]]
        out.append((t, t.detach().clone(), t.requires_grad, t.grad, None if t.grad is None else t.grad.clone()))
    return out


def assert_unchanged(model: nn.Module, names: list[str], before: list[tuple[Any, ...]]) -> None:
    for (t, value, flag, grad, grad_value), (t2, value2, flag2, grad2, _) in zip(before, snapshot(model, names)):
        assert t2 is t and t.is_leaf and not isinstance(t, nn.Parameter)
        assert torch.equal(value, value2) and flag2 == flag and grad2 is grad
        assert grad is None or torch.equal(grad, grad_value)
    assert list(model._parameters) == []  # nothing was registered


def bits(v: float) -> int:
    return int(torch.tensor(v, dtype=torch.float64).view(torch.int64))


def assert_autograd_is_torchs(c: Any, out: torch.Tensor, tensors: dict[str, torch.Tensor]) -> None:
    """Each entry's autograd value is torch.autograd.grad of the real model's output element with
    respect to its tensor, bit for bit, every element of each tensor once per output element."""
    names = list(tensors)
    seen: dict[str, int] = {}
    cache: dict[int, tuple[torch.Tensor, ...]] = {}
    cols = out.shape[-1] if out.ndim == 2 else 1
    for e in c.entries:
        name, _, index = str(e.wrt).partition("[")
        o = e.output if isinstance(e.output, tuple) else (e.output, 0) if e.output is not None else (0, 0)
        k = o[0] * cols + o[1]
        if k not in cache:
            cache[k] = torch.autograd.grad(out.reshape(-1)[k], list(tensors.values()), retain_graph=True)
        g = cache[k][names.index(name)].detach().to(torch.float64)
        i, j = (int(v) for v in index.rstrip("]").split(", "))
        want = float(g.reshape(g.shape[0], -1)[i, j])
        assert e.grad_autograd is not None and bits(e.grad_autograd) == bits(want), (str(e.wrt), e.grad_autograd, want)
        seen[name] = seen.get(name, 0) + 1
    assert seen == {n: t.numel() * out.numel() for n, t in tensors.items()}


def exact(t: torch.Tensor) -> list[list[Fraction]]:
    rows = t.detach().to(torch.float64).reshape(-1, t.shape[-1]).tolist()
    return [[Fraction(v) for v in row] for row in rows]


# ---------------------------------------------------------------- LinearRegressionScratch


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_d2l_linear_regression_scratch_reads_w_and_b_as_inputs(dtype: torch.dtype) -> None:
    torch.manual_seed(40)
    model = LinearRegressionScratch(2, lr=0.03, dtype=dtype)
    model.b.data.fill_(0.25)
    model.w.grad = torch.full_like(model.w, 7.0)  # a .grad left by training: kept as it is
    X = torch.randn(5, 2, dtype=dtype)
    before = snapshot(model, ["w", "b"])
    t = sg.trace(model, X)
    assert t.mode == "source" and t.fidelity.ok and t.wrt == ("w", "b")
    c = sg.compare(model, at={"X": X})
    assert c.ok
    assert_autograd_is_torchs(c, model(X), {"w": model.w, "b": model.b})
    # The exact derivative of X w + b: d f[n] / d w[j] = X[n, j], d f[n] / d b = 1.
    x = exact(X)
    for e in c.entries:
        name = str(e.wrt)
        n = e.output[0] if isinstance(e.output, tuple) else e.output
        want = x[n][int(name[2])] if name.startswith("w[") else Fraction(1)
        assert Fraction(str(e.grad_executed)) == want and Fraction(str(e.grad_symbolic)) == want, (name, n)
    assert_unchanged(model, ["w", "b"], before)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_d2l_training_step_takes_the_model_and_differentiates_its_tensors(dtype: torch.dtype) -> None:
    torch.manual_seed(41)
    model = LinearRegressionScratch(2, lr=0.03, dtype=dtype)
    X, y = torch.randn(6, 2, dtype=dtype), torch.randn(6, 1, dtype=dtype)
    before = snapshot(model, ["w", "b"])
    c = sg.compare(training_step, at={"model": model, "X": X, "y": y}, wrt=["model"])
    assert c.ok and [str(e.wrt) for e in c.entries] == ["model.w[0, 0]", "model.w[1, 0]", "model.b[0, 0]"]
    assert_autograd_is_torchs(c, training_step(model, X, y), {"model.w": model.w, "model.b": model.b})
    # The exact gradient of mean((X w + b - y)^2 / 2): mean(r X[:, j]) and mean(r), r = X w + b - y,
    # from the binary values of X, y, w, b (float64 arithmetic being exact here is not assumed).
    x, w, b, yy = exact(X), exact(model.w.T)[0], exact(model.b)[0][0], [r[0] for r in exact(y)]
    r = [x[n][0] * w[0] + x[n][1] * w[1] + b - yy[n] for n in range(6)]
    want = [sum(r[n] * x[n][0] for n in range(6)) / 6, sum(r[n] * x[n][1] for n in range(6)) / 6, sum(r) / 6]
    for e, g in zip(c.entries, want):
        exact_g = sp.Rational(g.numerator, g.denominator)
        for got in (e.grad_symbolic, e.grad_executed):
            assert abs(sp.Float(got, 60) - exact_g) <= sp.Float(10, 60) ** -45 * abs(exact_g), (str(e.wrt), got, exact_g)
    assert_unchanged(model, ["w", "b"], before)


# ---------------------------------------------------------------- SoftmaxRegressionScratch


def softmax_truth(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> dict[tuple[int, int, str, int, int], sp.Expr]:
    """SymPy's derivative of softmax(X W + b)[n, k] wrt W[i, l] and b[l], at the exact binary values."""
    x, w, bb = exact(X), exact(W), exact(b)[0]
    rows, ins, outs = len(x), len(w), len(bb)
    Ws = sp.Matrix(ins, outs, lambda i, l: sp.Symbol(f"W{i}_{l}"))
    bs = [sp.Symbol(f"b{l}") for l in range(outs)]
    at = {Ws[i, l]: sp.Rational(w[i][l].numerator, w[i][l].denominator) for i in range(ins) for l in range(outs)}
    at.update({bs[l]: sp.Rational(bb[l].numerator, bb[l].denominator) for l in range(outs)})
    out = {}
    for n in range(rows):
        o = [sum(sp.Rational(x[n][i].numerator, x[n][i].denominator) * Ws[i, l] for i in range(ins)) + bs[l]
             for l in range(outs)]
        for k in range(outs):
            f = sp.exp(o[k]) / sum(sp.exp(v) for v in o)
            for i in range(ins):
                for l in range(outs):
                    out[(n, k, "W", i, l)] = sp.diff(f, Ws[i, l]).subs(at)
            for l in range(outs):
                out[(n, k, "b", l, 0)] = sp.diff(f, bs[l]).subs(at)
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_d2l_softmax_regression_scratch_reads_W_and_b_as_inputs(dtype: torch.dtype) -> None:
    torch.manual_seed(42)
    model = SoftmaxRegressionScratch(4, 3, lr=0.1, sigma=0.5, dtype=dtype)
    model.b.data.copy_(torch.tensor([0.5, -0.25, 0.125], dtype=dtype))
    X = torch.randn(2, 1, 2, 2, dtype=dtype)
    before = snapshot(model, ["W", "b"])
    c = sg.compare(model, at={"X": X.reshape(2, 4)})
    assert c.ok
    assert_autograd_is_torchs(c, model(X), {"W": model.W, "b": model.b})
    truth = softmax_truth(X.reshape(2, 4), model.W, model.b)
    assert len(c.entries) == len(truth)
    for e in c.entries:
        name, _, index = str(e.wrt).partition("[")
        i, j = (int(v) for v in index.rstrip("]").split(", "))
        want = sp.N(truth[(*e.output, name, i, j)], 60)
        tol = sp.Float(10, 60) ** -40 * max(abs(want), sp.Float(10) ** -30)
        assert abs(sp.Float(e.grad_symbolic, 60) - want) <= tol, (str(e.wrt), e.output)
        assert abs(sp.Float(e.grad_executed, 60) - want) <= tol, (str(e.wrt), e.output)
    assert_unchanged(model, ["W", "b"], before)


# ---------------------------------------------------------------- submodules, refusals


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.tensor([[0.5], [-1.5]], dtype=torch.float64, requires_grad=True)

    def forward(self, X):
        return X @ self.w


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = Scaled()
        self.c = nn.Parameter(torch.tensor([0.75], dtype=torch.float64))
        self.fixed = torch.tensor([2.0], dtype=torch.float64)  # no requires_grad: a constant

    def forward(self, X):
        return self.net(X) * self.fixed + self.c


def test_a_tensor_attribute_of_a_submodule_is_named_by_its_path_after_the_parameters() -> None:
    model = Outer()
    X = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    before = snapshot(model, ["net.w"])
    t = sg.trace(model, X)
    assert t.wrt == ("c", "net.w")
    c = t.compare()
    assert c.ok
    assert_autograd_is_torchs(c, model(X), {"c": model.c, "net.w": model.net.w})
    # d f[n] / d net.w[j] = 2 X[n, j]; d f[n] / d c = 1
    for e in c.entries:
        want = 2 * Fraction(float(X[e.output[0], int(str(e.wrt)[6])])) if str(e.wrt).startswith("net.w") else 1
        assert Fraction(str(e.grad_executed)) == want and Fraction(str(e.grad_symbolic)) == want
    assert_unchanged(model.net, ["w"], before)
    # a value given by its path is used for that call only
    other = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    v = sg.trace(model, X, **{"net.w": other}).compare()
    assert [float(e.grad_symbolic) for e in v.entries if str(e.wrt).startswith("net.w")] == [2.0, 4.0, 6.0, -2.0]
    assert_unchanged(model.net, ["w"], before)


class NotALeaf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        base = torch.ones(2, 1, dtype=torch.float64, requires_grad=True)
        self.w = base * 2  # computed from another tensor: requires grad, not a leaf

    def forward(self, X):
        return X @ self.w


def test_a_tensor_attribute_computed_from_others_is_a_sentence() -> None:
    with pytest.raises(TraceError) as err:
        sg.trace(NotALeaf(), torch.ones(3, 2, dtype=torch.float64))
    text = str(err.value)
    assert "`w` is a tensor that requires grad but is not a parameter of the module" in text
    assert "computed from other tensors" in text and "return X @ self.w" in text and "Fix:" in text


def test_the_tensor_attributes_are_restored_after_a_run_and_after_a_failure() -> None:
    model = LinearRegressionScratch(2, lr=0.03)
    w, b = model.w, model.b
    w.grad = torch.full_like(w, 3.0)
    grad = w.grad
    before = snapshot(model, ["w", "b"])
    # the user's code run with other values: they are the attribute during the run only
    subject = mods.subject(model, (torch.ones(3, 2, dtype=torch.float64),), {})
    assert subject is not None and subject.wrt == ("w", "b")
    other = torch.tensor([[2.0], [-1.0]], dtype=torch.float64)
    out = subject.run(["w", "b"], [other, torch.tensor([0.5], dtype=torch.float64)])
    assert out.tolist() == [[1.5]] * 3
    assert_unchanged(model, ["w", "b"], before)
    # whatever the block did to them, `kept` puts the same tensors back with their values, flags, .grad
    with pytest.raises(RuntimeError), mods.kept([model]):
        with torch.no_grad():
            w.add_(1.0)
        w.requires_grad_(False)
        w.grad = None
        model.b = torch.zeros(1, dtype=torch.float64)
        raise RuntimeError("the user's code failed")
    assert vars(model)["b"] is b and w.grad is grad
    assert_unchanged(model, ["w", "b"], before)


class Uses(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, X):
        return X @ self.w


class Shares(nn.Module):
    """One leaf tensor kept by two submodules: one input, named by its first path."""

    def __init__(self) -> None:
        super().__init__()
        w = torch.tensor([[0.5], [2.0]], dtype=torch.float64, requires_grad=True)
        self.a, self.c = Uses(w), Uses(w)

    def forward(self, X):
        return self.a(X) * self.c(X)


def test_one_tensor_kept_by_two_submodules_is_one_input_swapped_under_both_paths() -> None:
    model = Shares()
    X = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    t = sg.trace(model, X)
    assert t.wrt == ("a.w",) and t.fidelity.ok
    c = t.compare()
    assert c.ok
    assert_autograd_is_torchs(c, model(X), {"a.w": model.a.w})
    # f = (X w)^2: d f / d w[j] = 2 (X w) X[0, j] = 2 * 6.5 * (1, 3)
    assert [Fraction(str(e.grad_symbolic)) for e in c.entries] == [13, 39]
    assert [Fraction(str(e.grad_executed)) for e in c.entries] == [13, 39]
    assert model.a.w is model.c.w and model.a.w.tolist() == [[0.5], [2.0]]
