"""`nn.init.xavier_*`, `kaiming_*`, `zeros_`, `ones_`, `constant_`, `eye_` on a tensor the function
made (read10, item 1): the next draws of the user's run, as `nn.init.uniform_/normal_` are.

Ground truth: torch itself under a seed (the user's function run from the same random state: its
output and `torch.autograd.grad`, bit for bit, float64 and float32; the values `nn.init` itself
draws into a fresh tensor from that state), and the exact derivative by `sympy.diff` over those
values (SymPy rationals of the floats).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
from torch import nn

import symgrad as sg
from tests.user_code import torch_truth
from symgrad import Cause
from symgrad.frontends.source_inits import calculate_gain

DTYPES = [torch.float64, torch.float32]


def xavier_uniform(x):
    W = torch.empty(3, 2, dtype=x.dtype)
    nn.init.xavier_uniform_(W)
    return torch.tanh(x @ W).sum()


def xavier_normal_gain(x):
    W = torch.empty(3, 2, dtype=x.dtype)
    nn.init.xavier_normal_(W, gain=2.5)
    return torch.tanh(x @ W).sum()


def kaiming_uniform(x):
    W = torch.empty(3, 2, dtype=x.dtype)
    nn.init.kaiming_uniform_(W, a=0.1, mode="fan_out")
    return torch.tanh(x @ W).sum()


def kaiming_normal_relu(x):
    W = torch.empty(3, 2, dtype=x.dtype)
    torch.nn.init.kaiming_normal_(W, mode="fan_in", nonlinearity="relu")
    return torch.tanh(x @ W).sum()


def kaiming_inline(x):
    return torch.tanh(x @ nn.init.kaiming_uniform_(torch.empty(3, 2, dtype=x.dtype))).sum()


# (function, torch's own init of the same (3, 2) tensor from the same random state)
DRAWN = [
    (xavier_uniform, lambda w: nn.init.xavier_uniform_(w)),
    (xavier_normal_gain, lambda w: nn.init.xavier_normal_(w, gain=2.5)),
    (kaiming_uniform, lambda w: nn.init.kaiming_uniform_(w, a=0.1, mode="fan_out")),
    (kaiming_normal_relu, lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")),
    (kaiming_inline, lambda w: nn.init.kaiming_uniform_(w)),
]


def q(v: float) -> sp.Rational:
    return sp.Rational(Fraction(float(v)))


def exact_grads(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> list[sp.Float]:
    """d/dx of sum(tanh(x @ W + b)) by sympy.diff, at the values x and W hold."""
    xs = sp.Matrix(1, 3, sp.symbols("x0:3", real=True))
    Wq = sp.Matrix(3, 2, [q(v) for v in W.reshape(-1).tolist()])
    z = xs * Wq
    if b is not None:
        z = z + sp.Matrix(1, 2, [q(v) for v in b.reshape(-1).tolist()])
    f = sum(sp.tanh(v) for v in z)
    at = {s: q(v) for s, v in zip(xs, x.reshape(-1).tolist())}
    return [sp.diff(f, s).subs(at).evalf(50) for s in xs]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn,init", DRAWN, ids=[f.__name__ for f, _ in DRAWN])
def test_an_initialiser_is_the_next_draw_of_the_users_run(fn: Any, init: Any, dtype: torch.dtype) -> None:
    x = torch.tensor([[0.5, -1.25, 2.0]], dtype=dtype)
    torch.manual_seed(11)
    t = sg.trace(fn, x)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    out, grads = torch_truth(fn, x, 11)
    assert c.ok and c.cause is Cause.AGREE, str(c)
    assert [e.grad_autograd for e in c.entries] == grads  # torch's gradient, bit for bit
    assert float(c.value_autograd) == float(out)
    torch.manual_seed(11)
    W = init(torch.empty(3, 2, dtype=dtype))  # what nn.init itself draws from that state
    for e, truth in zip(c.entries, exact_grads(x, W)):
        assert abs(sp.sympify(str(e.grad_symbolic)) - truth) < sp.Float("1e-40")
        assert abs(sp.sympify(str(e.grad_executed)) - truth) < sp.Float("1e-40")
    assert "drawn in your run" in str(c)


@pytest.mark.parametrize("shape", [(3, 2), (5, 7), (1, 4)])
@pytest.mark.parametrize("nonlinearity,a", [("leaky_relu", 0), ("leaky_relu", 0.2), ("relu", 0), ("tanh", 0),
                                            ("linear", 0), ("selu", 0), ("sigmoid", 0), ("leaky_relu", None)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_the_bound_is_torchs_bit_for_bit(shape: tuple[int, int], nonlinearity: str, a: Any, mode: str) -> None:
    """The gain and the bound symgrad computes give the very values nn.init draws (same seed)."""
    assert calculate_gain(nonlinearity, a, "", None) == nn.init.calculate_gain(nonlinearity, a)
    fan = shape[1] if mode == "fan_in" else shape[0]
    std = calculate_gain(nonlinearity, a, "", None) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    for draw, ours in ((lambda w: nn.init.kaiming_uniform_(w, a=a or 0, mode=mode, nonlinearity=nonlinearity)
                        if a is not None else nn.init.kaiming_uniform_(w, mode=mode, nonlinearity=nonlinearity),
                        lambda w: w.uniform_(-bound, bound)),
                       (lambda w: nn.init.kaiming_normal_(w, a=a or 0, mode=mode, nonlinearity=nonlinearity)
                        if a is not None else nn.init.kaiming_normal_(w, mode=mode, nonlinearity=nonlinearity),
                        lambda w: w.normal_(0, std))):
        if a is None:
            continue
        torch.manual_seed(5)
        theirs = draw(torch.empty(shape))
        torch.manual_seed(5)
        assert torch.equal(theirs, ours(torch.empty(shape)))


def fixed_inits(x):
    W = torch.empty(3, 2, dtype=x.dtype)
    nn.init.eye_(W)
    b = torch.empty(2, dtype=x.dtype)
    nn.init.constant_(b, 0.1)
    Z = torch.empty(3, 2, dtype=x.dtype)
    nn.init.zeros_(Z)
    O = torch.empty(3, 2, dtype=x.dtype)
    nn.init.ones_(O)
    return torch.tanh(x @ (W + Z) + b).sum() + (x @ O).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fixed_initialisers_are_the_values_torch_writes(dtype: torch.dtype) -> None:
    x = torch.tensor([[0.5, -1.25, 2.0]], dtype=dtype)
    t = sg.trace(fixed_inits, x)
    assert t.mode == "source" and t.fidelity.ok
    c = t.compare()
    out, grads = torch_truth(fixed_inits, x, 0)
    assert c.ok and [e.grad_autograd for e in c.entries] == grads and float(c.value_autograd) == float(out)
    b = torch.full((2,), 0.1, dtype=dtype)  # 0.1 rounded to the tensor's dtype, as fill_ rounds it
    truth = exact_grads(x, torch.eye(3, 2, dtype=dtype), b)
    for e, tr in zip(c.entries, truth):
        assert abs(sp.sympify(str(e.grad_symbolic)) - (tr + 2)) < sp.Float("1e-40")  # + d/dx of sum(x @ ones)


def input_initialised(x):
    nn.init.xavier_uniform_(x)
    return (x * x).sum()


def vector_xavier(x):
    w = torch.empty(3, dtype=x.dtype)
    nn.init.xavier_uniform_(w)
    return (x * w).sum()


def bad_mode(x):
    W = torch.empty(3, 2, dtype=x.dtype)
    nn.init.kaiming_normal_(W, mode="fan_middle")
    return (x @ W).sum()


def test_an_initialiser_on_an_input_is_the_uniform_sentence() -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(input_initialised, torch.tensor([[0.5, -1.0], [2.0, 1.5]], dtype=torch.float64))
    text = str(err.value)
    assert "nn.init.xavier_uniform_(x)" in text  # the user's line
    assert "overwrites the input `x` with a draw under no_grad, behind autograd's back" in text  # what, why
    assert "Fix: draw into a new tensor" in text


def test_a_vector_has_no_fans_as_torch_says() -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(vector_xavier, torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
    text = str(err.value)
    assert "nn.init.xavier_uniform_(w)" in text and "fan_in and fan_out" in text
    assert "fewer than 2 dimensions" in text and "Fix: initialise a matrix" in text
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):  # torch's own
        vector_xavier(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))


def test_a_mode_torch_refuses_is_a_sentence() -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(bad_mode, torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64))
    text = str(err.value)
    assert "mode='fan_middle'" in text and "torch raises ValueError" in text and "mode='fan_out'" in text
