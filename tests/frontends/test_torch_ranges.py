"""`torch.arange` and `torch.linspace` of Python numbers (issue 20 item 4), read as the constant
tensor torch makes: refused before as "not in symgrad's table".

Ground truth: torch itself (the tensor torch makes, value for value; the fidelity check runs the
translation beside the user's function bit for bit; every autograd entry is `torch.autograd.grad`'s
of the user's own function) in float64 and float32, and `sympy.diff` of the mathematics written out
with torch's values, exactly.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.frontends.torch_ranges import RANGE_SPELLINGS

DTYPES = [torch.float64, torch.float32]


def weighted(x):
    return (x * torch.arange(3)).sum()


def odd(x):
    return (x * torch.arange(1, 7, 2)).exp().sum()


def halves(x):
    return (x / torch.arange(0.5, 2.0, 0.5)).sum()


def columns(X):
    return (X * torch.arange(X.shape[1], dtype=X.dtype)).sum()


def tenths(x):
    return (x * torch.arange(0.1, 0.35, 0.1)).sum()  # torch's float32 values of 0.1, 0.2, 0.3


def spaced(x):
    return (x * torch.linspace(0, 1, 3)).sin().sum() + (x * torch.linspace(-1.0, 2.0, steps=3)).sum()


def _exact(t: torch.Tensor) -> list[sp.Rational]:
    return [sp.Rational(Fraction(float(v))) for v in t.reshape(-1).tolist()]


CASES = [
    (weighted, (3,), lambda v: sum(a * b for a, b in zip(v, _exact(torch.arange(3))))),
    (odd, (3,), lambda v: sum(sp.exp(a * b) for a, b in zip(v, _exact(torch.arange(1, 7, 2))))),
    (halves, (3,), lambda v: sum(a / b for a, b in zip(v, _exact(torch.arange(0.5, 2.0, 0.5))))),
    (columns, (2, 3), lambda v: sum(a * b for a, b in zip(v, [0, 1, 2] * 2))),
    (tenths, (3,), lambda v: sum(a * b for a, b in zip(v, _exact(torch.arange(0.1, 0.35, 0.1))))),
    (spaced, (3,), lambda v: sum(sp.sin(a * b) for a, b in zip(v, _exact(torch.linspace(0, 1, 3))))
     + sum(a * b for a, b in zip(v, _exact(torch.linspace(-1.0, 2.0, 3))))),
]


def _symbols(t: torch.Tensor) -> list[sp.Symbol]:
    if t.dim() == 1:
        return [sp.Symbol(f"{'x'}[{k}, 0]", real=True) for k in range(t.shape[0])]
    return [sp.Symbol(f"X[{i}, {j}]", real=True) for i in range(t.shape[0]) for j in range(t.shape[1])]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, shape, math", CASES, ids=[c[0].__name__ for c in CASES])
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_ranges_are_torchs_constants(fn: Any, shape: tuple[int, ...], math: Any, dtype: torch.dtype, data: Any) -> None:
    n = 1
    for s in shape:
        n *= s
    values = data.draw(st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=n, max_size=n))
    x = torch.tensor(values, dtype=dtype).reshape(shape)
    t = sg.trace(fn, x)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(leaf), leaf)
    assert [e.grad_autograd for e in c.entries] == [float(v) for v in g.reshape(-1)]
    syms = _symbols(x)
    f = math(syms)
    at = {s: sp.Rational(Fraction(float(v))) for s, v in zip(syms, x.to(torch.float64).reshape(-1))}
    for e, s in zip(c.entries, syms):
        assert str(e.wrt) == str(s)
        truth = sp.diff(f, s).subs(at)
        for side in (e.grad_symbolic, e.grad_executed):
            got = sp.sympify(str(side))
            assert abs((got - truth).evalf(40)) <= sp.Float("1e-25") * max(1, abs(truth.evalf(40))), (str(s), side, truth)


@pytest.mark.parametrize("call, torch_args, torch_kw", [
    ("torch.arange(4)", (4,), {}),
    ("torch.arange(2, 9, 3)", (2, 9, 3), {}),
    ("torch.arange(0.0, 1.0, 0.3)", (0.0, 1.0, 0.3), {}),
    ("torch.arange(3, dtype=torch.float64)", (3,), {"dtype": torch.float64}),
    ("torch.linspace(0, 1, 7)", (0, 1, 7), {}),
])
def test_the_constant_is_torchs_tensor(call: str, torch_args: tuple[Any, ...], torch_kw: dict[str, Any]) -> None:
    """The reading holds each value torch makes, exactly (ints for an int64 arange)."""
    spelling = next(s for s in RANGE_SPELLINGS if call.startswith(s.name))
    m = spelling.build(list(torch_args), dict(torch_kw))
    want = getattr(torch, call.split("(")[0].split(".")[1])(*torch_args, **torch_kw)
    assert list(m) == [sp.Rational(Fraction(float(v))) for v in want.tolist()]
    if not want.dtype.is_floating_point:
        assert all(isinstance(v, sp.Integer) for v in m)


def test_a_tensor_argument_and_an_empty_range_are_sentences() -> None:
    def of_tensor(x):
        return (x * torch.arange(x.sum())).sum()

    def empty(x):
        return x.sum() + torch.arange(0).sum()

    x = torch.tensor([0.5, 1.5], dtype=torch.float64)
    with pytest.raises(sg.TraceError, match="`torch.arange` takes Python numbers"):
        sg.trace(of_tensor, x)
    with pytest.raises(sg.TraceError, match="`torch.arange` makes 0 values here"):
        sg.trace(empty, x)
