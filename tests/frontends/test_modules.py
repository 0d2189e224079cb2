"""A `torch.nn.Module` read as a function of its parameters (issue 22, item 1).

Every reading is checked against torch itself and an exact truth: the translation's forward value
and gradient equal the real module's bit for bit (the fidelity check, and `torch.autograd.grad`
on the model itself beside each entry's autograd value), and for models whose mathematics is
rational (Linear, ReLU) the exact derivatives are computed here with `Fraction`s from the
tensors' binary values, independently of symgrad.
"""

from __future__ import annotations

import inspect
from fractions import Fraction
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symgrad as sg
from user_code import reads_like_torch

DTYPES = [torch.float64, torch.float32]


def line_of(fn: Any, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(k for k, ln in enumerate(lines) if text in ln)


def state_of(model: nn.Module) -> dict[str, Any]:
    """Everything a reading must leave as it was."""
    return {
        "values": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "flags": {k: p.requires_grad for k, p in model.named_parameters(remove_duplicate=False)},
        "grads": {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()},
        "training": [m.training for m in model.modules()],
        "rng": torch.get_rng_state(),
    }


def assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before["values"].keys() == after["values"].keys()
    for k, v in before["values"].items():
        assert torch.equal(v, after["values"][k]), k
    assert before["flags"] == after["flags"]
    for k, g in before["grads"].items():
        assert (g is None) == (after["grads"][k] is None), k
        assert g is None or torch.equal(g, after["grads"][k]), k
    assert before["training"] == after["training"]
    assert torch.equal(before["rng"], after["rng"])


def assert_autograd_is_torchs(c: Any, out: torch.Tensor, params: dict[str, torch.Tensor]) -> None:
    """Each entry's autograd value is torch.autograd.grad of the real module's output `out`
    (element by element for a tensor output) with respect to `params`, bit for bit, and the
    entries are named by the parameters' paths, every element of each once per output."""
    names = list(params)
    cache: dict[int, tuple[torch.Tensor, ...]] = {}
    seen: dict[str, int] = {}
    for e in c.entries:
        text = str(e.wrt)
        name, _, index = text.partition("[")
        assert name in params, text
        k = 0 if not isinstance(e.output, tuple) else e.output[0] * out.shape[-1] + e.output[1] if out.ndim == 2 \
            else e.output[0]
        if k not in cache:
            cache[k] = torch.autograd.grad(out.reshape(-1)[k], list(params.values()), retain_graph=True)
        g = cache[k][names.index(name)].detach().to(torch.float64)
        i, j = (int(v) for v in index.rstrip("]").split(", "))
        value = float(g.reshape(g.shape[0], -1)[i, j]) if g.ndim else float(g)
        assert e.grad_autograd is not None
        assert torch.tensor(e.grad_autograd, dtype=torch.float64).view(torch.int64) == \
            torch.tensor(value, dtype=torch.float64).view(torch.int64), (text, e.grad_autograd, value)
        seen[name] = seen.get(name, 0) + 1
    assert seen == {n: p.numel() * out.numel() for n, p in params.items()}


def exact(t: torch.Tensor) -> list[list[Fraction]]:
    """A tensor's binary values as exact rationals, rows of a matrix (a vector as one row)."""
    rows = t.detach().to(torch.float64).reshape(-1, t.shape[-1]).tolist()
    return [[Fraction(v) for v in row] for row in rows]


def entries_by(c: Any) -> dict[str, Any]:
    return {str(e.wrt): e for e in c.entries}


# ---------------------------------------------------------------- nn.Linear


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_linear_layer_is_x_at_w_transposed_plus_b_with_each_parameter_named_by_its_path(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 1).to(dtype)
    X = torch.randn(5, 4, dtype=dtype)
    before = state_of(model)
    t = sg.trace(model, X)
    assert t.mode == "source" and t.fidelity.ok and t.dtype == str(dtype).replace("torch.", "")
    assert t.wrt == ("weight", "bias")
    c = t.compare()
    assert c.ok
    W, b = model.weight, model.bias
    assert_autograd_is_torchs(c, model(X), {"weight": W, "bias": b})
    # The exact derivative of sum(X W^T + b): d/dW[0, j] = sum_n X[n, j], d/db = number of rows.
    x = exact(X)
    # Entries run output by output: f[n, 0] wrt weight[0, j] is X[n, j]; wrt bias, 1.
    for e in c.entries:
        name = str(e.wrt)
        n = e.output[0] if isinstance(e.output, tuple) else e.output
        want = x[n][int(name.split(", ")[1].rstrip("]"))] if name.startswith("weight") else Fraction(1)
        assert Fraction(str(e.grad_executed)) == want and Fraction(str(e.grad_symbolic)) == want
    assert "weight" in c.lowered.source and "bias" in c.lowered.source
    assert_same_state(before, state_of(model))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_a_linear_layer_is_read_as_torchs_own_fused_linear(dtype: torch.dtype) -> None:
    """torch computes F.linear of a matrix as one fused addmm, whose bits differ from `x @ W.T + b`
    on some sizes (float64, 17 outputs, a batch of 10: measured). nn.Linear is read as F.linear,
    which the lowering writes as torch.nn.functional.linear: the reading reproduces the model bit
    for bit at those sizes too."""
    torch.manual_seed(1)
    model = nn.Linear(33, 17).to(dtype)
    X = torch.randn(10, 33, dtype=dtype)
    traced = sg.trace(model, X)
    assert traced.fidelity.ok, traced.fidelity.detail
    c = traced.compare(v=torch.ones(10, 17, dtype=dtype))  # the gradient of the outputs' sum
    params = [p.detach().clone().requires_grad_(True) for p in (model.weight, model.bias)]
    grads = torch.autograd.grad(F.linear(X, *params).sum(), params)
    assert [e.grad_autograd for e in c.entries] == [float(v) for g in grads for v in g.reshape(-1)]
    assert "torch.nn.functional.linear" in c.lowered.source


# ---------------------------------------------------------------- nn.Sequential MLP with ReLU


def mlp(dtype: torch.dtype) -> nn.Sequential:
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).to(dtype)


def exact_mlp_grads(model: nn.Sequential, X: torch.Tensor) -> dict[str, list[list[Fraction]]]:
    """d sum(relu(X W1^T + b1) W2^T + b2) by hand, in exact rationals (relu'(h) = 1 for h > 0, else 0)."""
    x, w1, b1, w2 = exact(X), exact(model[0].weight), exact(model[0].bias)[0], exact(model[2].weight)
    h = [[sum(x[n][i] * w1[j][i] for i in range(3)) + b1[j] for j in range(4)] for n in range(len(x))]
    gr = [[w2[0][j] for j in range(4)] for _ in x]
    gh = [[gr[n][j] if h[n][j] > 0 else Fraction(0) for j in range(4)] for n in range(len(x))]
    return {
        "0.weight": [[sum(gh[n][j] * x[n][i] for n in range(len(x))) for i in range(3)] for j in range(4)],
        "0.bias": [[sum(gh[n][j] for n in range(len(x)))] for j in range(4)],
        "2.weight": [[sum(max(h[n][j], Fraction(0)) for n in range(len(x))) for j in range(4)]],
        "2.bias": [[Fraction(len(x))]],
    }


class Summed(nn.Module):
    """A module whose forward sums another's output: one scalar, one gradient per parameter."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_two_layer_sequential_mlp_equals_torch_and_the_exact_derivative(dtype: torch.dtype) -> None:
    model = Summed(mlp(dtype))
    X = torch.randn(6, 3, dtype=dtype)
    before = state_of(model)
    t = sg.trace(model, X)
    assert t.mode == "source" and t.fidelity.ok
    assert t.wrt == ("inner.0.weight", "inner.0.bias", "inner.2.weight", "inner.2.bias")
    c = t.compare()
    assert_autograd_is_torchs(c, model(X), dict(zip(t.wrt, model.parameters())))
    truth = exact_mlp_grads(model.inner, X)  # type: ignore[arg-type]
    for e in c.entries:
        name, _, index = str(e.wrt).partition("[")
        i, j = (int(k) for k in index.rstrip("]").split(", "))
        assert Fraction(str(e.grad_executed)) == truth[name.removeprefix("inner.")][i][j], str(e.wrt)
    # The generated program writes each path as an identifier; reports keep the path.
    assert "inner_0_weight" in c.lowered.source and "inner.0.weight[0, 0]" in str(c.report(full=True))
    assert_same_state(before, state_of(model))


def test_a_sequential_given_itself_cites_the_layer_that_decides_an_entry() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2, dtype=torch.float64))
        model[0].bias.zero_()
    X = torch.tensor([[0.0, 1.0]], dtype=torch.float64)  # the first hidden unit is exactly 0: relu's corner
    c = sg.compare(model, at={"input": X})
    assert c.cause is sg.Cause.KINK
    kinked = [e for e in c.entries if not e.ok]
    # The unit at 0 is W[0, 0]*0 + W[0, 1]*1 + b[0]: W[0, 1] and b[0] move it, W[0, 0] does not.
    assert {str(e.wrt) for e in kinked} == {"0.weight[0, 1]", "0.bias[0, 0]"}
    span = kinked[0].source
    assert span.file == "<Sequential>" and "1: ReLU()" in span.text
    assert kinked[0].grad_executed == 0 and kinked[0].grad_autograd == 0.0
    for e in kinked:  # relu's slopes, 0 on the left and the next layer's weight on the right
        assert tuple(Fraction(str(v)) for v in e.one_sided) == (0, Fraction(model[2].weight[0, 0].item()))


# ---------------------------------------------------------------- a module of the user's own


class Block(nn.Module):
    """A submodule of the user's own: read from its own source, its lines cited."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.register_buffer("shift", torch.tensor([0.5, -0.25, 0.0, 1.0]))

    def forward(self, x):
        h = self.fc(x) + self.shift
        return torch.relu(h)


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 1)
        self.scale = nn.Parameter(torch.tensor(0.5), requires_grad=False)  # frozen: a constant

    def forward(self, x):
        y = self.head(self.block(x)) * self.scale
        return y.sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_custom_module_inlines_its_submodules_and_keeps_a_frozen_parameter_constant(dtype: torch.dtype) -> None:
    torch.manual_seed(3)
    model = Custom().to(dtype)
    X = torch.randn(5, 3, dtype=dtype)
    before = state_of(model)
    t = sg.trace(model, X)
    assert t.mode == "source" and t.fidelity.ok
    assert t.wrt == ("block.fc.weight", "block.fc.bias", "head.weight", "head.bias")  # no `scale`, no buffer
    assert "scale" not in {getattr(s, "name", "") for s in t.inputs}
    c = t.compare()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert_autograd_is_torchs(c, model(X), dict(zip(t.wrt, trainable)))
    # Exact: d/d head.weight[0, j] = scale * sum_n relu(h)[n, j]; d/d head.bias = scale * N.
    x, w, b, s = exact(X), exact(model.block.fc.weight), exact(model.block.fc.bias)[0], exact(model.block.shift)[0]
    h = [[sum(x[n][i] * w[j][i] for i in range(3)) + b[j] + s[j] for j in range(4)] for n in range(5)]
    by = entries_by(c)
    half = Fraction(1, 2)
    for j in range(4):
        assert Fraction(str(by[f"head.weight[0, {j}]"].grad_executed)) == half * sum(max(h[n][j], 0) for n in range(5))
    assert Fraction(str(by["head.bias[0, 0]"].grad_executed)) == half * 5
    assert_same_state(before, state_of(model))


def test_an_inlined_forward_cites_its_own_line() -> None:
    model = Custom().double()
    with torch.no_grad():
        model.block.fc.weight.zero_()
        model.block.fc.bias.copy_(-model.block.shift)  # every h is exactly 0: relu's corner
    c = sg.compare(model, at={"x": torch.ones(2, 3, dtype=torch.float64)})
    assert c.cause is sg.Cause.KINK
    kinked = next(e for e in c.entries if not e.ok)
    assert kinked.source is not None and kinked.source.line == line_of(Block.forward, "return torch.relu(h)")
    assert "In your code" in kinked.explanation and "test_modules.py" in kinked.explanation


class Branchy(nn.Module):
    """Control flow in a submodule only: the whole reading becomes a Program."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.gate(self.fc(x)).sum()


class Gate(nn.Module):
    def forward(self, h):
        if h.sum() > 0:
            h = h * 2.0
        return h


def test_a_submodule_with_control_flow_makes_the_reading_a_program() -> None:
    torch.manual_seed(4)
    model = Branchy().double()
    X = torch.randn(3, 2, dtype=torch.float64)
    t = sg.trace(model, X)
    assert t.mode == "source" and isinstance(t.program, sg.Program)
    c = t.compare()
    assert_autograd_is_torchs(c, model(X), dict(zip(t.wrt, model.parameters())))


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2, bias=False)
        self.b = nn.Linear(2, 2, bias=False)
        self.b.weight = self.a.weight

    def forward(me, x):  # `self` spelled otherwise
        return me.b(torch.tanh(me.a(x))).sum()


def test_tied_parameters_are_one_input() -> None:
    torch.manual_seed(5)
    model = Tied().double()
    X = torch.randn(3, 2, dtype=torch.float64)
    t = sg.trace(model, X)
    assert t.wrt == ("a.weight",)
    c = t.compare()
    assert_autograd_is_torchs(c, model(X), {"a.weight": model.a.weight})


class Named(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.tensor([[1.5, -2.0]], dtype=torch.float64))

    def forward(self, x):
        return (x * self.x).sum()


def test_a_parameter_named_like_an_argument_of_forward_is_named_under_self() -> None:
    model = Named()
    c = sg.compare(model, at={"x": torch.tensor([[3.0, 4.0]], dtype=torch.float64)})
    assert [str(e.wrt) for e in c.entries] == ["self.x[0, 0]", "self.x[0, 1]"]
    assert [e.grad_autograd for e in c.entries] == [3.0, 4.0]


@pytest.mark.parametrize("layers, X", [
    ([nn.Linear(3, 4), nn.Sigmoid(), nn.Identity(), nn.Linear(4, 3), nn.Softmax(dim=1)], torch.randn(2, 3)),
    ([nn.Flatten(), nn.Linear(3, 3), nn.Tanh(), nn.LogSoftmax(dim=1)], torch.randn(2, 3)),
    ([nn.Linear(3, 2), nn.Dropout(0.5), nn.ReLU()], torch.randn(4, 3)),
    ([nn.Linear(3, 4), nn.SiLU(), nn.Linear(4, 2)], torch.randn(3, 3)),  # F.silu's fused kernel (issue 22)
], ids=["sigmoid-softmax", "flatten-tanh-logsoftmax", "dropout-eval", "silu"])
def test_torchs_own_modules_read_as_their_functional_forms_bit_for_bit(layers: list[nn.Module], X: torch.Tensor) -> None:
    torch.manual_seed(6)
    model = Summed(nn.Sequential(*layers)).double().eval()
    X = X.double()
    before = state_of(model)
    t = sg.trace(model, X)
    assert t.mode == "source" and t.fidelity.ok
    c = t.compare()
    assert_autograd_is_torchs(c, model(X), dict(zip(t.wrt, model.parameters())))
    assert_same_state(before, state_of(model))


# ---------------------------------------------------------------- a function that takes a module


def loss(model, X, y):
    return ((model(X) - y) ** 2).mean()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_function_that_takes_a_module_compares_with_its_parameters_as_inputs(dtype: torch.dtype) -> None:
    model = mlp(dtype)
    X, y = torch.randn(6, 3, dtype=dtype), torch.randn(6, 1, dtype=dtype)
    before = state_of(model)
    c = sg.compare(loss, at={"model": model, "X": X, "y": y}, wrt=["model"])
    names = [f"model.{n}" for n, _ in model.named_parameters()]
    assert_autograd_is_torchs(c, loss(model, X, y), dict(zip(names, model.parameters())))
    assert c.title.startswith("loss(model, X, y)")
    # Without wrt: every input, the data's too, in the function's order.
    everything = sg.trace(loss, model, X, y).compare()
    assert str(everything.entries[0].wrt) == "model.0.weight[0, 0]" and str(everything.entries[-1].wrt).startswith("y[")
    assert_same_state(before, state_of(model))


def test_a_models_parameter_may_be_given_another_value_by_its_path() -> None:
    model = nn.Linear(2, 1).double()
    X = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    weight = torch.tensor([[0.25, -0.5]], dtype=torch.float64)
    c = sg.compare(model, at={"input": X, "weight": weight})
    assert float(c.value_autograd) == -0.75 + model.bias.item()
    assert [e.grad_autograd for e in c.entries] == [1.0, 2.0, 1.0]
    assert not torch.equal(model.weight.detach(), weight)  # the model keeps its own weight


# ---------------------------------------------------------------- refusals


class WithHook(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x):
        return self.fc(x).sum()


@pytest.mark.parametrize("make, words", [
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.AlphaDropout(0.5)).double().train(),
     "`nn.AlphaDropout(p=0.5)` in training mode"),
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.GroupNorm(1, 2)).double(), "is an `nn.GroupNorm`, which symgrad does not read"),
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.Softmax()).double(), "`nn.Softmax()` without `dim`"),
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.Flatten(0)).double(), "nn.Flatten(start_dim=0, end_dim=-1)"),
], ids=["alpha-dropout-train", "groupnorm", "softmax-no-dim", "flatten-all"])
def test_a_module_symgrad_does_not_read_is_a_sentence_naming_its_class_with_a_fix(make: Any, words: str) -> None:
    model = make()
    X = torch.randn(3, 2, dtype=torch.float64)
    before = state_of(model)
    with pytest.raises(sg.TraceError) as info:
        sg.trace(model, X)
    text = str(info.value)
    assert words in text and "Fix:" in text and "Traceback" not in text
    assert text.startswith("<Sequential>:3")  # the layer's line of the forward written out for it
    assert_same_state(before, state_of(model))


def test_a_parameter_of_more_than_two_dimensions_names_its_module() -> None:
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 1)).double()
    with pytest.raises(sg.TraceError) as info:
        sg.trace(model, torch.randn(2, 1, 6, dtype=torch.float64))
    text = str(info.value)
    assert "`0.weight`, a parameter of the `nn.Conv1d` at `0`, has 3 dimensions (2, 1, 3)" in text and "Fix:" in text


def test_a_hooked_submodule_is_refused() -> None:
    model = WithHook().double()
    model.fc.register_forward_hook(lambda m, i, o: o * 2)
    with pytest.raises(sg.TraceError) as info:
        sg.trace(model, torch.ones(1, 2, dtype=torch.float64))
    assert "has hooks" in str(info.value) and "Fix:" in str(info.value)


def test_a_sweep_of_a_model_is_refused_with_a_fix() -> None:
    t = sg.trace(nn.Linear(1, 1).double(), torch.ones(1, 1, dtype=torch.float64))
    with pytest.raises(sg.OptionError) as info:
        t.sweep({"input": (0.0, 1.0)})
    assert "module's parameters" in str(info.value) and "Fix:" in str(info.value)


# ---------------------------------------------------------------- a bias as torch broadcasts it


def regression(W, b, X, y):
    return ((X @ W.T + b - y) ** 2).mean()


def one_row(W, b, x):
    return torch.tanh(x @ W.T + b).sum()


@pytest.mark.parametrize("fn, args", [
    # (6, 1) + (1,) is a (6, 1) matrix, not a rank-1 vector: minus a (6, 1) y it stays (6, 1)
    (regression, (torch.randn(1, 4), torch.randn(1), torch.randn(6, 4), torch.randn(6, 1))),
    # (1, 3) + (3,): the bias is a row, also for a batch of one
    (one_row, (torch.randn(3, 2), torch.randn(3), torch.randn(1, 2))),
], ids=["column-minus-y", "batch-of-one"])
def test_a_bias_broadcasts_as_torch_broadcasts_it(fn: Any, args: tuple[torch.Tensor, ...]) -> None:
    args = tuple(a.double() for a in args)
    t = sg.trace(fn, *args)
    assert t.mode == "source" and t.fidelity.ok
    leaves = [a.clone().requires_grad_(True) for a in args]
    grads = torch.autograd.grad(fn(*leaves), leaves)
    c = t.compare()
    for e in c.entries:
        name, _, index = str(e.wrt).partition("[")
        k = [p for p in inspect.signature(fn).parameters].index(name)
        i, j = (int(v) for v in index.rstrip("]").split(", "))
        g = grads[k].reshape(grads[k].shape[0], -1)
        assert e.grad_autograd == float(g[i, j])


def test_another_dtype_reads_the_example_values_as_given() -> None:
    """A rank-1 bias stays rank 1 when `compare(dtype=...)` reads the model again (it was read as
    its (n, 1) column before, which broadcasts otherwise)."""
    torch.manual_seed(7)
    X = torch.randn(5, 4, dtype=torch.float64)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh()).double()
    c = sg.trace(model, X).compare(dtype="float32")
    assert c.dtype == "float32" and c.ok
    X32 = X.float()
    m32 = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    m32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    out = m32(X32)
    g = torch.autograd.grad(out[0, 0], [m32[0].weight])[0]
    first = next(e for e in c.entries if e.output == (0, 0) and str(e.wrt) == "0.weight[0, 1]")
    assert first.grad_autograd == float(g[0, 1]) != 0
    W, b = model[0].weight.detach(), model[0].bias.detach()
    plain = sg.trace(one_row, W, b, X).compare(dtype="float32")
    b32 = b.float().requires_grad_(True)
    gb = torch.autograd.grad(one_row(W.float(), b32, X32), [b32])[0]
    assert plain.dtype == "float32"
    assert [e.grad_autograd for e in plain.entries if str(e.wrt).startswith("b[")] == [float(v) for v in gb]


# --------------------------------------------------------------------------- loss modules (issue 22, item 3)


def _regression(dtype):
    g = torch.Generator().manual_seed(21)
    return [torch.randn(3, 4, generator=g, dtype=dtype), torch.randn(3, 4, generator=g, dtype=dtype)]


def _probabilities(dtype):
    g = torch.Generator().manual_seed(22)
    return [torch.rand(3, 4, generator=g, dtype=dtype) * 0.9 + 0.05, torch.rand(3, 4, generator=g, dtype=dtype)]


def _classes(dtype):
    g = torch.Generator().manual_seed(23)
    return [torch.randn(5, 3, generator=g, dtype=dtype) * 2, torch.tensor([0, 2, 1, 1, 0])]


# Each loss module with its options, the data it takes, and the functional call it is read as.
LOSS_MODULES = [
    (lambda: nn.MSELoss(), _regression, "mse_loss("),
    (lambda: nn.MSELoss(reduction="sum"), _regression, "reduction='sum'"),
    (lambda: nn.L1Loss(reduction="none"), _regression, "torch.abs("),
    (lambda: nn.SmoothL1Loss(beta=0.5), _regression, "beta=0.5"),
    (lambda: nn.SmoothL1Loss(reduction="sum"), _regression, "smooth_l1_loss("),
    (lambda: nn.HuberLoss(delta=0.7), _regression, "delta=0.7"),
    (lambda: nn.HuberLoss(reduction="none", delta=2.0), _regression, "delta=2.0"),
    (lambda: nn.BCELoss(), _probabilities, "binary_cross_entropy("),
    (lambda: nn.BCEWithLogitsLoss(), _regression, "binary_cross_entropy_with_logits("),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=torch.tensor([0.5, 2.0, 3.0, 1.25])), _regression, "pos_weight="),
    (lambda: nn.BCEWithLogitsLoss(weight=torch.tensor([[0.25], [1.5], [0.75]]), reduction="sum"), _regression,
     "weight="),
    (lambda: nn.CrossEntropyLoss(), _classes, "nll_loss("),
    (lambda: nn.CrossEntropyLoss(reduction="sum"), _classes, "reduction='sum'"),
    (lambda: nn.NLLLoss(), _classes, "nll_loss("),
    (lambda: nn.NLLLoss(ignore_index=1), _classes, "ignore_index=1"),
    (lambda: nn.CrossEntropyLoss(ignore_index=2, reduction="sum"), _classes, "ignore_index=2"),
]
_IDS = [f"{type(make()).__name__}-{k}" for k, (make, _, _) in enumerate(LOSS_MODULES)]

CURRENT_LOSS: Any = None  # the module-level loss object `through_a_global` calls


def through_a_global(a, b):  # type: ignore[no-untyped-def]
    return (CURRENT_LOSS(a, b) * 0.3).sum()


class _Regressor(nn.Module):
    def __init__(self, loss: nn.Module, inputs: int, outputs: int) -> None:
        super().__init__()
        self.fc = nn.Linear(inputs, outputs)
        self.loss = loss

    def forward(self, x, t):  # type: ignore[no-untyped-def]
        return self.loss(self.fc(x), t).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("make, data, spelled", LOSS_MODULES, ids=_IDS)
def test_a_module_level_loss_object_is_its_functional_form(make, data, spelled, dtype) -> None:
    """`loss = nn.HuberLoss(delta=0.7)` outside the function, `loss(a, t)` inside: no parameters,
    so a function; read as its functional form with the module's options, torch's bits."""
    global CURRENT_LOSS
    CURRENT_LOSS = make()
    try:
        c = reads_like_torch(through_a_global, data(dtype))
    finally:
        CURRENT_LOSS = None
    assert spelled in c.lowered.source


@pytest.mark.parametrize("make, data, spelled", LOSS_MODULES, ids=_IDS)
def test_a_loss_submodule_is_its_functional_form(make, data, spelled) -> None:
    """`self.loss = nn.CrossEntropyLoss()` in a model: `self.loss(self.fc(x), y)` is read as
    F.cross_entropy of the layer's output; the gradient of every parameter is torch's own."""
    x, t = data(torch.float64)
    torch.manual_seed(5)
    model = _Regressor(make(), 4, t.shape[1] if t.ndim == 2 else 3).double()
    x = torch.randn(t.shape[0], 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    if isinstance(model.loss, nn.BCELoss):
        model.fc = nn.Sequential(model.fc, nn.Sigmoid()).double()
    traced = sg.trace(model, x, t)
    assert traced.mode == "source" and traced.fidelity.ok, traced.fidelity.detail
    c = traced.compare()
    out = model(x, t)
    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(out, list(params.values()))))
    for e in c.entries:
        name, _, index = str(e.wrt).partition("[")
        g = grads[name].reshape(grads[name].shape[0], -1)
        i, j = (int(v) for v in index.rstrip("]").split(", "))
        assert e.grad_autograd == float(g[i, j])
    assert spelled in c.lowered.source


def mse_sum_inline(a, b):  # type: ignore[no-untyped-def]
    return nn.MSELoss(reduction="sum")(a, b)


def huber_inline(a, b):  # type: ignore[no-untyped-def]
    return nn.HuberLoss(delta=0.5)(a, b)


def smooth_l1_assigned(a, b):  # type: ignore[no-untyped-def]
    loss_fn = nn.SmoothL1Loss(beta=0.25)
    return loss_fn(a, b)


def cross_entropy_inline(x, y):  # type: ignore[no-untyped-def]
    return nn.CrossEntropyLoss()(x, y)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, data", [(mse_sum_inline, _regression), (huber_inline, _regression),
                                      (smooth_l1_assigned, _regression), (cross_entropy_inline, _classes)])
def test_a_loss_module_made_inline_is_its_functional_form(fn, data, dtype) -> None:
    reads_like_torch(fn, data(dtype))


def test_a_loss_module_at_its_kink_takes_torchs_convention() -> None:
    """nn.L1Loss() is F.l1_loss: at a = t a kink, torch's gradient 0, exactly as the functional."""
    global CURRENT_LOSS
    CURRENT_LOSS = nn.L1Loss()
    try:
        a = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
        t = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
        by = {str(e.wrt): e for e in reads_like_torch(through_a_global, [a, t]).entries}
    finally:
        CURRENT_LOSS = None
    assert by["a[0, 0]"].cause is sg.Cause.KINK and by["a[0, 0]"].grad_executed == 0
    assert by["a[0, 1]"].cause is sg.Cause.AGREE and by["a[0, 1]"].grad_executed == Fraction(0.3) / 2  # the literal 0.3 is the float it is


def bce_weight_inline(p, t):  # type: ignore[no-untyped-def]
    return nn.BCELoss(weight=torch.ones(4))(p, t)


def mse_three_arguments(a, b):  # type: ignore[no-untyped-def]
    return nn.MSELoss()(a, b, b)


class _OwnLoss(nn.MSELoss):
    def forward(self, a, b):  # type: ignore[no-untyped-def]
        return (a - b).abs().sum()


def test_loss_module_refusals_name_what_they_refuse() -> None:
    global CURRENT_LOSS
    p, t = _probabilities(torch.float64)
    with pytest.raises(sg.TraceError, match="made here with a tensor option"):
        sg.trace(bce_weight_inline, p, t)
    with pytest.raises(sg.TraceError, match=r"its forward takes \(input, target\)"):
        sg.trace(mse_three_arguments, p, t)
    CURRENT_LOSS = nn.BCELoss(weight=torch.ones(4))  # its weight buffer is a constant of the functional row
    try:
        traced = sg.trace(through_a_global, p, t)
        assert traced.fidelity.ok and "weight=" in traced.compare().lowered.source
        CURRENT_LOSS = _OwnLoss()  # a forward of the user's own is not torch's loss: hidden code, as before
        with pytest.raises(sg.TraceError, match="torch.nn.Module read from outside"):
            sg.trace(through_a_global, p, t)
    finally:
        CURRENT_LOSS = None


def test_a_loss_subclass_with_its_own_forward_is_read_from_its_source() -> None:
    x, t = _regression(torch.float64)
    model = _Regressor(_OwnLoss(), 4, 4).double()
    traced = sg.trace(model, x, t)
    assert traced.fidelity.ok and "mse_loss" not in traced.compare().lowered.source


@pytest.mark.parametrize("make", [lambda: nn.CrossEntropyLoss(weight=torch.tensor([0.5, 2.0, 1.25]), ignore_index=1),
                                  lambda: nn.NLLLoss(weight=torch.tensor([0.5, 2.0, 1.25]), reduction="sum")])
def test_a_weighted_loss_module_reads_its_weight_buffer_as_constants(make) -> None:
    """The weight buffer of nn.CrossEntropyLoss / nn.NLLLoss is a constant of the functional form
    (float32 weights with float32 scores, as torch requires)."""
    global CURRENT_LOSS
    CURRENT_LOSS = make()
    try:
        c = reads_like_torch(through_a_global, _classes(torch.float32))
    finally:
        CURRENT_LOSS = None
    assert "weight=torch.stack([" in c.lowered.source


def test_a_bias_is_named_and_shown_as_the_rank_1_tensor_torch_holds() -> None:
    # a module's rank-1 parameter is read as a rank-1 input: its elements `0.bias[1]`, as the
    # user indexes the tensor (not `[1, 0]` of the column symgrad computes with), its value in
    # the headline `[a, b]` as torch prints it, and its shape in the summary `(n,)`
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 20), nn.ReLU(), nn.Linear(20, 1)).double()
    X = torch.randn(3, 2, dtype=torch.float64)
    c = sg.trace(model, X).compare()  # three outputs, f[n, 0]: each wrt every parameter
    assert c.ok
    assert_autograd_is_torchs(c, model(X), dict(model.named_parameters()))
    names = [e.to_dict()["wrt"] for e in c.entries][:81]
    assert names[40:43] == ["0.bias[0]", "0.bias[1]", "0.bias[2]"] and names[80] == "2.bias[0]"
    text = str(c)
    bias = model[2].bias.item()
    assert f"2.bias = [{bias!r}]" in text.splitlines()[0] and "0.bias = (20,) vector" in text.splitlines()[0]
    assert "by input: 0.bias (20,): 60 entries, 60 agree" in text
    assert "by input: 0.weight (20x2): 120 entries" in text
