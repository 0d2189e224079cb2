"""Path mode (a function without source, `frontends.recorder`) reads random draws as data of the
user's run and integer indexing of a tensor it recorded (read10, item 5), as source mode does.

`torch.rand/randn/randint/randn_like` inside the function are the constants of the values the run
drew, and `F.dropout` is `x * noise` with torch's own noise (mask / (1 - p)); every run symgrad
makes starts from the random state at the call. `v[0]`, `v[-1]`, `X[1, 2]` are the elements.
Ground truth: torch itself from the same seed (the function's forward and `torch.autograd.grad`,
bit for bit, float64 and float32), and `sympy.diff` at the values torch drew.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]

SOURCE = '''
import torch
import torch.nn.functional as F

def indexed(x, y):
    v = torch.stack([x * 2, y, x * y])
    return v[0] * v[-1] + torch.sin(v[1])

def matrix_element(x, y):
    X = torch.stack([torch.stack([x, y, x * y]), torch.stack([y * y, x + y, torch.exp(x)])])
    return X[1, 2] * X[0, -1] + X[-2, 0]

def drawn(x):
    n = torch.randn(3, dtype=x.dtype)
    u = torch.rand(2, dtype=x.dtype)
    return (x * n).sum() + torch.tanh(u[1] * x)

def drawn_like(x, y):
    v = torch.stack([x, y])
    return (v * torch.randn_like(v)).sum() + (torch.randint(0, 5, (2,)) * v).sum()

def dropped(x, y):
    v = torch.stack([x * 2, y, x * y, torch.sin(x)])
    return F.dropout(v, 0.5).sum()
'''


def _functions() -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(SOURCE, ns)  # no readable source: path mode records a run
    return ns


FNS = _functions()
X, Y = 0.5, -1.5


def q(v: float) -> sp.Rational:
    return sp.Rational(Fraction(float(v)))


def torch_truth(fn: Any, args: list[torch.Tensor], seed: int) -> tuple[float, list[float]]:
    torch.manual_seed(seed)
    leaves = [a.clone().requires_grad_(True) for a in args]
    out = fn(*leaves)
    grads = torch.autograd.grad(out, leaves)
    return out.item(), [g.item() for g in grads]


def _compare(name: str, dtype: torch.dtype, seed: int, n_args: int) -> tuple[Any, list[torch.Tensor]]:
    args = [torch.tensor(v, dtype=dtype) for v in (X, Y)[:n_args]]
    torch.manual_seed(seed)
    c = sg.compare(FNS[name], at=dict(zip(("x", "y"), args)))
    return c, args


def _check_torch(c: Any, fn: Any, args: list[torch.Tensor], seed: int) -> None:
    value, grads = torch_truth(fn, args, seed)
    assert [e.grad_autograd for e in c.entries] == grads  # the user's own autograd, bit for bit
    assert float(c.value_autograd) == value
    assert "Path mode" in str(c)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_integer_indexing_of_a_recorded_tensor(dtype: torch.dtype) -> None:
    c, args = _compare("indexed", dtype, 0, 2)
    assert c.ok, str(c)
    _check_torch(c, FNS["indexed"], args, 0)
    x, y = sp.symbols("x y", real=True)
    f = (2 * x) * (x * y) + sp.sin(y)
    at = {x: q(args[0]), y: q(args[1])}
    for e, s in zip(c.entries, (x, y)):
        assert abs(sp.sympify(str(e.grad_symbolic)) - sp.diff(f, s).subs(at).evalf(50)) < sp.Float("1e-40")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_an_element_of_a_recorded_matrix(dtype: torch.dtype) -> None:
    c, args = _compare("matrix_element", dtype, 0, 2)
    assert c.ok, str(c)
    _check_torch(c, FNS["matrix_element"], args, 0)
    x, y = sp.symbols("x y", real=True)
    f = sp.exp(x) * (x * y) + x  # X[1, 2] * X[0, -1] + X[-2, 0]
    at = {x: q(args[0]), y: q(args[1])}
    for e, s in zip(c.entries, (x, y)):
        assert abs(sp.sympify(str(e.grad_symbolic)) - sp.diff(f, s).subs(at).evalf(50)) < sp.Float("1e-40")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_draws_are_data_of_the_users_run(dtype: torch.dtype) -> None:
    c, args = _compare("drawn", dtype, 3, 1)
    assert c.ok, str(c)
    _check_torch(c, FNS["drawn"], args, 3)
    torch.manual_seed(3)
    n, u = torch.randn(3, dtype=dtype), torch.rand(2, dtype=dtype)  # what the run drew
    x = sp.Symbol("x", real=True)
    f = sum(x * q(v) for v in n.tolist()) + sp.tanh(q(u[1]) * x)
    (e,) = c.entries
    assert abs(sp.sympify(str(e.grad_symbolic)) - sp.diff(f, x).subs(x, q(args[0])).evalf(50)) < sp.Float("1e-40")
    assert "`torch.randn` at" in str(c) and "data drawn in your run" in str(c)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_draws_like_a_tensor_and_integer_draws(dtype: torch.dtype) -> None:
    c, args = _compare("drawn_like", dtype, 5, 2)
    assert c.ok, str(c)
    _check_torch(c, FNS["drawn_like"], args, 5)
    torch.manual_seed(5)
    r, k = torch.randn(2, dtype=dtype), torch.randint(0, 5, (2,))
    for e, a, b in zip(c.entries, r.tolist(), k.tolist()):
        assert sp.sympify(str(e.grad_symbolic)) == q(a) + b  # exact: a sum of two numbers torch holds


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dropout_is_torchs_noise(dtype: torch.dtype) -> None:
    c, args = _compare("dropped", dtype, 2, 2)
    assert c.ok, str(c)
    _check_torch(c, FNS["dropped"], args, 2)
    torch.manual_seed(2)
    noise = torch.empty(4, dtype=dtype).bernoulli_(0.5).div_(0.5)  # torch's own mask / (1 - p) from that state
    x, y = sp.symbols("x y", real=True)
    f = sum(q(m) * v for m, v in zip(noise.tolist(), (2 * x, y, x * y, sp.sin(x))))
    at = {x: q(args[0]), y: q(args[1])}
    for e, s in zip(c.entries, (x, y)):
        assert abs(sp.sympify(str(e.grad_symbolic)) - sp.diff(f, s).subs(at).evalf(50)) < sp.Float("1e-40")
    assert "the dropout mask at" in str(c)


def test_a_sweep_of_a_recorded_function_that_draws_is_refused() -> None:
    t = sg.trace(FNS["drawn"], torch.tensor(X, dtype=torch.float64))
    assert t.mode == "path" and t.draws is not None
    with pytest.raises(sg.OptionError, match="draws random numbers"):
        t.sweep({"x": (-1.0, 1.0, 5)})


def test_another_point_reads_the_same_draws() -> None:
    """compare(at=...) of a path-mode reading runs the user's function from the same random state."""
    torch.manual_seed(9)
    t = sg.trace(FNS["drawn"], torch.tensor(X, dtype=torch.float64))
    torch.manual_seed(1234)  # the global state moved on: the reading keeps the state at its call
    c = t.compare(at={"x": torch.tensor(0.25, dtype=torch.float64)})
    _check_torch(c, FNS["drawn"], [torch.tensor(0.25, dtype=torch.float64)], 9)
