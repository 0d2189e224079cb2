"""A constant tensor cast to a narrower dtype is its values rounded to that dtype (fixes, item 4).

`W.float()` of float64 weights holds float32(W), and so does `W.to(x.dtype)` in a float32 run:
torch multiplies by the rounded weights. The mathematics must too, or symgrad's exact
derivative is the one of other weights (off in the 8th digit, inside float32's tolerance: a
false pass of the symbolic column). The oracle: torch's own rounding of each weight (its exact
binary value, as a SymPy Rational) and torch's autograd, which must equal it exactly here.
"""

from __future__ import annotations

import pytest
import sympy as sp
import torch

import symgrad as sg

W = torch.tensor([[0.1, 1 / 3], [2 / 3, 0.7]], dtype=torch.float64)


def by_float(x):
    return (x * W.float()).sum()


def by_to(x):
    return (x * W.to(torch.float32)).sum()


def by_to_keyword(x):
    return (x * W.to(dtype=torch.float32)).sum()


def by_dtype_of(x):
    return (x * W.to(x.dtype)).sum()


def by_double(x):
    return (x * W.double()).sum()


X = [[1.0, 2.0], [3.0, 4.0]]


def _grads(fn, dtype):
    c = sg.compare(fn, at={"x": torch.tensor(X, dtype=dtype)})
    assert c.ok, str(c)
    return [e.grad_symbolic for e in c.entries], [e.grad_executed for e in c.entries], [e.grad_autograd for e in c.entries]


def _exact(weights: torch.Tensor) -> list[sp.Rational]:
    return [sp.Rational(float(v)) for v in weights.to(torch.float64).reshape(-1)]


@pytest.mark.parametrize("fn", [by_float, by_to, by_to_keyword, by_dtype_of], ids=lambda f: f.__name__)
def test_a_float64_constant_cast_to_float32_in_a_float32_run_is_rounded(fn) -> None:
    symbolic, executed, autograd = _grads(fn, torch.float32)
    want = _exact(W.float())
    assert symbolic == want and executed == want
    assert [sp.Rational(a) for a in autograd] == want  # torch's gradient is the rounded weight itself
    assert _exact(W) != want  # the unrounded weights are other numbers


@pytest.mark.parametrize("fn", [by_dtype_of, by_double], ids=lambda f: f.__name__)
def test_a_cast_that_does_not_narrow_keeps_the_weights(fn) -> None:
    symbolic, executed, autograd = _grads(fn, torch.float64)
    assert symbolic == _exact(W) and executed == _exact(W) and [sp.Rational(a) for a in autograd] == _exact(W)


def test_float_of_the_weights_in_a_float64_run_is_rounded_too() -> None:
    """x float64 times W.float(): torch promotes the product to float64, the weights stay rounded."""
    symbolic, _, autograd = _grads(by_float, torch.float64)
    assert symbolic == _exact(W.float()) and [sp.Rational(a) for a in autograd] == _exact(W.float())


def test_the_reading_of_x_dtype_is_per_run() -> None:
    """The same function read for a float32 and a float64 run: each reading has its own weights."""
    a = sg.trace(by_dtype_of, torch.tensor(X, dtype=torch.float32)).program
    b = sg.trace(by_dtype_of, torch.tensor(X, dtype=torch.float64)).program
    assert a != b and a.has(sp.Float(float(W.float()[0, 0]), precision=53))
