"""torch's module containers and lazy layers in a `forward` (issue 22, items 1-2):
`nn.ModuleList`, `nn.ModuleDict`, `nn.Sequential` indexed, `nn.LazyLinear`.

Ground truth: torch itself for the forward value and autograd (bit for bit, float64 and
float32), and `sympy.diff` of the mathematics written here independently (parameters as symbols,
evaluated at their exact binary values) for the symbolic and executed sides.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import pytest
import sympy as sp
import torch
import torch.nn as nn

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]


def symbols_of(model: nn.Module) -> dict[str, sp.Matrix]:
    """Each parameter as a matrix of real symbols named `path[i, j]` (a vector as a column)."""
    out = {}
    for name, p in model.named_parameters():
        rows, cols = (p.shape[0], 1) if p.ndim == 1 else tuple(p.shape)
        out[name] = sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}[{i}, {j}]", real=True))
    return out


def values_of(model: nn.Module) -> dict[sp.Symbol, sp.Rational]:
    out = {}
    for name, p in model.named_parameters():
        flat = p.detach().to(torch.float64).reshape(p.shape[0], -1)
        for i in range(flat.shape[0]):
            for j in range(flat.shape[1]):
                out[sp.Symbol(f"{name}[{i}, {j}]", real=True)] = sp.Rational(Fraction(float(flat[i, j])))
    return out


def linear(x: sp.Matrix, s: dict[str, sp.Matrix], path: str) -> sp.Matrix:
    w, b = s[f"{path}.weight"], s[f"{path}.bias"]
    return x * w.T + sp.ones(x.rows, 1) * b.T


def relu(m: sp.Matrix) -> sp.Matrix:
    return m.applyfunc(lambda v: sp.Max(v, 0))


def exact(X: torch.Tensor) -> sp.Matrix:
    return sp.Matrix([[sp.Rational(Fraction(float(v))) for v in row] for row in X.to(torch.float64)])


def check(model: nn.Module, X: torch.Tensor, math: Callable[[sp.Matrix, dict[str, sp.Matrix]], sp.Expr]) -> Any:
    """The model read from source, bit for bit (the fidelity check); every entry's autograd value
    torch's own gradient of the model's output, and its exact sides sympy.diff of `math`."""
    t = sg.trace(model, X)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    assert t.wrt == tuple(n for n, _ in model.named_parameters())
    c = t.compare()
    assert c.ok, c
    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(model(X), list(params.values()), materialize_grads=True)))
    s = symbols_of(model)
    f = math(exact(X), s)
    at = values_of(model)
    for e in c.entries:
        name, _, index = str(e.wrt).partition("[")
        i, j = (int(v) for v in index.rstrip("]").split(", "))
        g = grads[name].reshape(grads[name].shape[0], -1)[i, j]
        assert e.grad_autograd == float(g), str(e.wrt)  # torch's bits
        truth = sp.diff(f, s[name][i, j]).subs(at)
        assert sp.Rational(str(e.grad_executed)) == truth and sp.Rational(str(e.grad_symbolic)) == truth, str(e.wrt)
    assert len(c.entries) == sum(p.numel() for p in params.values())
    return c


class Stack(nn.Module):
    """D2L's MLP of a ModuleList: `for layer in self.layers: x = relu(layer(x))`, the shape
    changing from layer to layer, then a head from a ModuleDict."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, 3), nn.Linear(3, 2)])
        self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1)})

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return (self.heads["a"](x) - self.heads["b"](x)).sum()


def stack_math(x: sp.Matrix, s: dict[str, sp.Matrix]) -> sp.Expr:
    for path in ("layers.0", "layers.1"):
        x = relu(linear(x, s, path))
    return sum(linear(x, s, "heads.a") - linear(x, s, "heads.b"))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_module_list_loop_and_a_module_dict_key_read_their_members_with_their_paths(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = Stack().to(dtype)
    X = torch.randn(3, 2, dtype=dtype)
    c = check(model, X, stack_math)
    names = {str(e.wrt).partition("[")[0] for e in c.entries}
    assert names == {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                     "heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias"}
    assert "layers_0_weight" in c.lowered.source


class Indexed(nn.Module):
    """Members by index (`[0]`, `[-1]`), `len`, a comprehension over `.values()`, and an
    nn.Sequential indexed."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        self.heads = nn.ModuleDict({"u": nn.Linear(2, 1), "v": nn.Linear(2, 1)})
        self.seq = nn.Sequential(nn.Linear(2, 2), nn.Tanh())

    def forward(self, x):
        h = self.layers[0](x) + self.layers[-1](x) * len(self.layers)
        h = self.seq[0](torch.relu(h))
        outs = [head(h) for head in self.heads.values()]
        return sum(outs).sum()


def indexed_math(x: sp.Matrix, s: dict[str, sp.Matrix]) -> sp.Expr:
    h = linear(x, s, "layers.0") + 3 * linear(x, s, "layers.2")
    h = linear(relu(h), s, "seq.0")
    return sum(linear(h, s, "heads.u") + linear(h, s, "heads.v"))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_members_by_index_len_and_dict_values_are_the_submodules_themselves(dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    model = Indexed().to(dtype)
    X = torch.randn(4, 2, dtype=dtype)
    c = check(model, X, indexed_math)
    # layers.1 is never called: its parameters are inputs whose every derivative is 0.
    assert all(e.grad_executed == 0 for e in c.entries if str(e.wrt).startswith("layers.1."))


class Keys(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({"p": nn.Linear(2, 1), "q": nn.Linear(2, 1)})

    def forward(self, x):
        total = x.sum() * 0.0
        for key in self.heads:  # a dict's keys, as Python iterates it
            total = total + self.heads[key](x).sum()
        return total


def test_a_loop_over_a_module_dict_runs_over_its_keys() -> None:
    torch.manual_seed(2)
    model = Keys().double()
    X = torch.randn(3, 2, dtype=torch.float64)
    check(model, X, lambda x, s: sum(linear(x, s, "heads.p")) + sum(linear(x, s, "heads.q")))


class Holder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, 2)])
        self.heads = nn.ModuleDict({"a": nn.Linear(2, 1)})


class PastTheEnd(Holder):
    def forward(self, x):
        return self.layers[3](x).sum()


class NoSuchKey(Holder):
    def forward(self, x):
        return self.heads["z"](x).sum()


class ListCalled(Holder):
    def forward(self, x):
        return self.layers(x).sum()


class NotAContainer(Holder):
    def forward(self, x):
        return self.layers[0][0](x).sum()


@pytest.mark.parametrize("cls, words", [
    (PastTheEnd, ["`layers`, an `nn.ModuleList` of 1 modules, has no member 3", "IndexError",
                  "Fix: index within the list"]),
    (NoSuchKey, ["`heads`, an `nn.ModuleDict` with the keys ['a'], has no member 'z'", "KeyError",
                 "Fix: index with one of its keys"]),
    (ListCalled, ["`layers` is an `nn.ModuleList`, which holds modules and has no forward", "NotImplementedError",
                  "Fix: call its members, e.g. `for layer in self.layers: x = layer(x)`"]),
    (NotAContainer, ["`layers.0`, an `nn.Linear`, cannot be indexed", "Fix: call the module itself"]),
], ids=["index", "key", "called", "not-a-container"])
def test_a_container_misused_is_the_sentence_python_would_raise(cls: Any, words: list[str]) -> None:
    model = cls().double()
    X = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(model, X)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


# ---------------------------------------------------------------- nn.LazyLinear


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_lazy_linear_after_its_first_forward_is_a_linear(dtype: torch.dtype) -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.LazyLinear(3), nn.ReLU(), nn.LazyLinear(1)).to(dtype)
    X = torch.randn(4, 2, dtype=dtype)
    model(X)  # the first forward makes the parameters
    wrapped = Summed(model)
    check(wrapped, X, lambda x, s: sum(linear(relu(linear(x, s, "inner.0")), s, "inner.2")))


class Summed(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).sum()


def test_a_lazy_linear_that_never_ran_is_a_sentence_run_the_model_once_first() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.LazyLinear(1)).double()
    X = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(model, X)
    text = str(err.value)
    assert "`1.weight`, a parameter of the `nn.LazyLinear` at `1`, has no value yet" in text
    assert "Fix: run the model once first (`model(X)` on an example batch), then compare it." in text
    with pytest.raises(sg.TraceError, match="run the model once first"):
        sg.compare(model, at={"input": X})


def chain(x, w1, w2):
    ws = [w1, w2]
    for w in ws:  # unrolled: x changes shape from pass to pass, each pass straight-line code
        x = torch.tanh(x @ w)
    return x.sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_an_unrolled_loop_may_change_a_tensors_shape_from_pass_to_pass(dtype: torch.dtype) -> None:
    torch.manual_seed(4)
    x, w1, w2 = (torch.randn(*s, dtype=dtype) for s in ((2, 3), (3, 2), (2, 1)))
    t = sg.trace(chain, x, w1, w2)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert c.ok
    leaves = [v.clone().requires_grad_(True) for v in (x, w1, w2)]
    grads = torch.autograd.grad(chain(*leaves), leaves)
    assert [e.grad_autograd for e in c.entries] == [float(v) for g in grads for v in g.reshape(-1)]
    X, W1, W2 = (sp.Matrix(*v.shape, lambda i, j, n=n: sp.Symbol(f"{n}{i}{j}", real=True))
                 for n, v in zip("xvw", (x, w1, w2)))
    f = sum(((X * W1).applyfunc(sp.tanh) * W2).applyfunc(sp.tanh))
    at = {s: sp.Rational(Fraction(float(v))) for M, t_ in zip((X, W1, W2), (x, w1, w2))
          for s, v in zip(M, t_.to(torch.float64).reshape(-1))}
    for e, s in zip(c.entries, [*X, *W1, *W2]):
        truth = sp.diff(f, s).subs(at).evalf(40)
        assert abs(sp.Float(str(e.grad_symbolic), 40) - truth) < sp.Float("1e-30"), (str(e.wrt), e.grad_symbolic, truth)


# ---------------------------------------------------------------- nn.BatchNorm1d


def bn_math(training: bool, eps: float, affine: bool, rm: list[float], rv: list[float]) -> Any:
    """sum(tanh(BN(x W^T + b))) written out here: each column j of h normalised by the batch's mean
    and *biased* variance (training) or the running buffers (evaluation), times w_j plus b_j."""
    def f(x: sp.Matrix, s: dict[str, sp.Matrix]) -> sp.Expr:
        h = linear(x, s, "inner.0")
        n, c = h.shape
        total = sp.Integer(0)
        for j in range(c):
            col = [h[i, j] for i in range(n)]
            if training:
                mean = sum(col) / n
                var = sum((v - mean) ** 2 for v in col) / n
            else:
                mean, var = sp.Rational(Fraction(rm[j])), sp.Rational(Fraction(rv[j]))  # the buffers' binary values
            w, b = (s["inner.1.weight"][j, 0], s["inner.1.bias"][j, 0]) if affine else (1, 0)
            total += sum(sp.tanh((v - mean) / sp.sqrt(var + sp.Rational(Fraction(eps))) * w + b) for v in col)
        return total
    return f


def buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.named_buffers()}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode, options", [
    ("train", {}), ("eval", {}), ("train", {"affine": False}), ("eval", {"affine": False}),
    ("eval", {"track_running_stats": False}), ("train", {"momentum": None}),
], ids=["train", "eval", "train-no-affine", "eval-no-affine", "eval-no-running-stats", "train-cumulative"])
def test_batch_norm_1d_is_torchs_kernel_and_the_mathematics_of_its_statistics(mode: str, options: dict[str, Any],
                                                                             dtype: torch.dtype) -> None:
    torch.manual_seed(6)
    model = Summed(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3, **options), nn.Tanh())).to(dtype)
    if mode == "eval":
        with torch.no_grad():  # running statistics of their own, then evaluation mode
            model(torch.randn(6, 2, dtype=dtype) * 2 + 1)
        model.eval()
    bn = model.inner[1]
    X = torch.randn(4, 2, dtype=dtype)
    before = buffers(model)
    t = sg.trace(model, X)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert "torch.nn.functional.batch_norm(" in c.lowered.source
    after = buffers(model)  # the running buffers and num_batches_tracked: as they were
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(model(X), list(params.values()))))
    training = mode == "train" or bn.running_mean is None
    rm = [] if training else [float(v) for v in bn.running_mean]
    rv = [] if training else [float(v) for v in bn.running_var]
    f = bn_math(training, bn.eps, bn.affine, rm, rv)(exact(X), symbols_of(model))
    point = values_of(model)
    for e in c.entries:
        name, _, index = str(e.wrt).partition("[")
        i, j = (int(v) for v in index.rstrip("]").split(", "))
        assert e.grad_autograd == float(grads[name].reshape(grads[name].shape[0], -1)[i, j]), str(e.wrt)
        truth = sp.diff(f, symbols_of(model)[name][i, j]).subs(point).evalf(40)
        for side in (e.grad_symbolic, e.grad_executed):
            assert abs(sp.sympify(str(side)).evalf(40) - truth) < sp.Float("1e-25"), (str(e.wrt), side, truth)
        if training and name == "inner.0.bias":
            # A shift of a column before a batch norm in training is normalised away: the exact
            # derivative is 0, and autograd's is float64's (float32's) rounding of it.
            assert abs(float(e.grad_executed)) < 1e-30 and abs(float(e.grad_symbolic)) < 1e-30
            assert abs(e.grad_autograd) < 1e-5
            assert e.cause in (Cause.AGREE, Cause.ROUNDING)
        else:
            assert e.cause is Cause.AGREE, str(e.wrt)


def test_batch_norm_of_identical_rows_is_smooth_with_eps_and_agrees() -> None:
    """A batch of equal rows: var = 0 and x - mean = 0 in every column; with eps > 0 the
    mathematics is smooth there, y = b, and torch's gradient is finite and the same."""
    torch.manual_seed(7)
    model = Summed(nn.Sequential(nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 1))).double()
    X = torch.ones(4, 3, dtype=torch.float64) * 0.5
    c = sg.compare(model, at={"x": X}, wrt=["x", "inner.0.weight", "inner.0.bias"])
    assert c.ok
    leaf = X.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(model(leaf), [leaf])
    by = {str(e.wrt): e for e in c.entries}
    assert all(by[f"x[{i}, {j}]"].grad_autograd == float(gx[i, j]) for i in range(4) for j in range(3))
    assert all(by[f"inner.0.weight[{j}, 0]"].grad_executed == 0 for j in range(3))  # xhat = 0
    bias, v = model.inner[0].bias.detach(), model.inner[2].weight.detach()
    for j in range(3):  # y = b in every row: d/db_j = 4 * (1 - tanh(b_j)**2) * v_j, exactly
        truth = (4 * (1 - sp.tanh(sp.Rational(Fraction(float(bias[j])))) ** 2) * sp.Rational(Fraction(float(v[0, j])))).evalf(40)
        assert abs(sp.sympify(str(by[f"inner.0.bias[{j}, 0]"].grad_executed)).evalf(40) - truth) < sp.Float("1e-25")


def test_batch_norm_refusals_are_torchs_errors_as_sentences() -> None:
    model = Summed(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))).double()
    with pytest.raises(sg.TraceError) as err:
        sg.trace(model, torch.randn(1, 2, dtype=torch.float64))
    assert "this batch has one row: torch raises 'Expected more than 1 value per channel when training'" in str(err.value)
    assert "Fix: pass a batch of two or more rows, or call `model.eval()`" in str(err.value)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(nn.BatchNorm1d(3).double(), torch.randn(3, dtype=torch.float64))
    assert "an `nn.BatchNorm1d(3)`, is given a tensor of shape (3,); it normalises an (n, 3) batch" in str(err.value)
    model.eval()  # one row in evaluation mode: the running statistics, read
    assert sg.trace(model, torch.randn(1, 2, dtype=torch.float64)).fidelity.ok
