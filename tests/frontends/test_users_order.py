"""The translation makes its steps where and as often as the user's code does (fixes, items 2, 3).

torch's autograd adds the gradients of a tensor's several uses in the order its backward runs
them, the reverse of the order the forward made the uses in; and `x * W` written twice is two
products, whose gradients reach x one by one, where one shared product adds them first. Another
order or one product less is other floats in the last bit, and the fidelity check (bit for bit)
refuses the translation. The oracle is torch itself on the user's function: the translation,
lowered and run by torch, gives the same forward value and gradients, bit for bit, and
`trace` keeps the source reading; compare() agrees with the exact derivative.
"""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg


def product_twice(x, W):
    return (torch.sin(x * W) + x * W).sum()


def product_twice_named(x, W):
    a = x * W
    h = torch.tanh(a)
    b = x * W
    return (h * b).sum() + (a ** 2).sum()


def product_twice_in_one_op(x, W):
    return (x @ W * torch.exp(x @ W)).sum() + (x @ W + torch.exp(x @ W)).mean()


def softmax_regression(X, W, Y):
    O = X @ W
    O_exp = torch.exp(O)
    O_sum = O_exp.sum(1, keepdim=True)
    probs = O_exp / O_sum
    log_probs = torch.log(probs)
    a = (O_exp * 0.5).sum() + O_exp.mean()
    b = (O_sum ** 2).mean() + O_sum.sum()
    c = -(Y * log_probs).sum() / X.shape[0] + log_probs.mean()
    d = (probs * probs).sum() + probs.mean()
    return a + b + c + d


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach(), b.detach()
    return a.shape == b.shape and torch.equal(torch.signbit(a), torch.signbit(b)) and \
        bool(torch.all((a == b) | (torch.isnan(a) & torch.isnan(b))))


def _bit_for_bit(fn: Any, values: list[torch.Tensor]) -> Any:
    traced = sg.trace(fn, *values)  # a TraceError where the translation's bits differ
    assert traced.mode == "source", traced.reason
    lowered = sg.lower(traced.program, branches=traced.branches, dtype=str(values[0].dtype).replace("torch.", ""))
    mine = [v.clone().requires_grad_(True) for v in values]
    want = fn(*mine)
    want_grads = torch.autograd.grad(want, mine)
    theirs = {s.name: v.clone().requires_grad_(True) for s, v in zip(traced.inputs, values)}
    got = lowered(*[theirs[n] for n in lowered.inputs])
    got_grads = torch.autograd.grad(got, [theirs[s.name] for s in traced.inputs])
    assert _same(got.reshape(want.shape), want), (got, want)
    for g, w in zip(got_grads, want_grads):
        assert _same(g, w), (g, w)
    return lowered


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), f32=st.booleans())
def test_a_product_written_twice_is_two_products(seed: int, f32: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float32 if f32 else torch.float64
    x, W = torch.randn(3, 4, generator=gen, dtype=dtype), torch.randn(3, 4, generator=gen, dtype=dtype)
    lowered = _bit_for_bit(product_twice, [x, W])
    assert lowered.source.count("= x * W") == 2, lowered.source
    _bit_for_bit(product_twice_named, [x, W])
    _bit_for_bit(product_twice_in_one_op, [x, W.T.contiguous()])


def test_the_two_products_read_their_own_making_and_compare_agrees() -> None:
    x = torch.tensor([[0.3, -1.2], [2.0, 0.7]], dtype=torch.float64)
    W = torch.tensor([[1.1, 0.4], [-0.6, 2.5]], dtype=torch.float64)
    lowered = _bit_for_bit(product_twice_named, [x, W])
    lines = [ln.strip() for ln in lowered.source.splitlines() if "=" in ln and not ln.strip().startswith("#")]
    first, second = (ln.split(" = ")[0] for ln in lines if ln.endswith("x * W"))
    assert any(ln.startswith("tanh") and ln.endswith(f"({first})") for ln in lines)  # tanh reads the first product
    assert any(ln.endswith(f"{first} ** 2") for ln in lines)  # and so does a ** 2, written after the second
    c = sg.compare(product_twice_named, at={"x": x, "W": W})
    assert c.ok, str(c)
    X, Wm = sp.Matrix(2, 2, lambda i, j: x[i, j].item()), sp.Matrix(2, 2, lambda i, j: W[i, j].item())
    xs = sp.Matrix(2, 2, sp.symbols("x:4"))
    a = xs.multiply_elementwise(Wm)
    f = sum(sp.tanh(v) * v + v ** 2 for v in a)
    exact = [float(sp.diff(f, s).subs(dict(zip(xs, X)))) for s in xs]
    got = [e.grad_symbolic for e in c.entries if str(e.wrt).startswith("x")]
    assert len(got) == 4 and [float(g) for g in got] == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_a_softmax_whose_intermediates_are_read_twice_reproduces_torch(seed: int, dtype: torch.dtype) -> None:
    """Each of O_exp, O_sum, probs and log_probs has three or four uses: their gradients are added
    in the order torch's backward runs them."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(8, 6, generator=gen, dtype=torch.float64).to(dtype)
    W = (torch.randn(6, 6, generator=gen, dtype=torch.float64) * 0.3).to(dtype)
    Y = torch.eye(6, dtype=dtype)[torch.randint(0, 6, (8,), generator=gen)]
    _bit_for_bit(softmax_regression, [X, W, Y])
