"""`trace` of a function traced before, at a new point, and the fidelity check's own torch run:
what is remembered between calls (the function's signature, the translation's depth) never
answers for what changed, and the gradient the check records is torch's own, bit for bit.
Oracles: torch.autograd.grad run here by hand, and the exact derivative written out."""

from __future__ import annotations

import math

import pytest
import torch

import symgrad as sg


def power(x, k=2):
    return x ** k


def scaled_sum(W, b):
    return torch.tanh(W * 3.0 + b).sum() / 4


def vector_out(W):
    return torch.sin(W) * W


def by_hand(fn, *values, **options):  # noqa: ANN001, ANN201
    """torch's own gradient of fn's sum (a one-element output: of the output itself), float64."""
    leaves = [v.detach().clone().requires_grad_(True) for v in values]
    out = fn(*leaves, **options)
    (grads) = torch.autograd.grad(out.sum() if out.numel() > 1 else out, leaves)
    return tuple(float(g) for t in grads for g in t.reshape(-1))


def test_a_new_default_is_read_when_traced_again():
    """The signature is remembered per function, keyed by its defaults: a default changed between
    two traces is the one the second reads (x**3, not x**2)."""
    x = 0.5
    first = sg.trace(power, x)
    c = first.compare()
    assert float(c.entries[0].grad_symbolic) == 2 * x and c.entries[0].grad_autograd == 2 * x
    power.__defaults__ = (3,)
    try:
        again = sg.trace(power, x)
        c = again.compare()
        assert float(c.entries[0].grad_symbolic) == 3 * x**2
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (gt,) = torch.autograd.grad(t ** 3, t)
        assert c.entries[0].grad_autograd == float(gt) == 0.75
        assert again.fidelity.grad_user == (3 * x**2,)
    finally:
        power.__defaults__ = (2,)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_the_check_records_torchs_gradient_of_a_scalar(k):
    """A one-element output: the check asks torch for the gradient without grad_outputs (torch
    makes the ones); the recorded gradient is torch's own, bit for bit, at every new point."""
    g = torch.Generator().manual_seed(k)
    W = torch.randn(3, 2, generator=g, dtype=torch.float64)
    b = torch.randn(2, generator=g, dtype=torch.float64)
    traced = sg.trace(scaled_sum, W, b)
    assert traced.mode == "source" and traced.fidelity.ok
    assert traced.fidelity.grad_user == by_hand(scaled_sum, W, b)
    assert traced.fidelity.grad_translated == traced.fidelity.grad_user
    # the exact derivative of tanh(3w + b)/4 by w: 3 (1 - tanh^2)/4
    expected = [3 * (1 - math.tanh(3 * float(W[i, j]) + float(b[j])) ** 2) / 4 for i in range(3) for j in range(2)]
    assert traced.fidelity.grad_user[:6] == pytest.approx(expected, rel=1e-14)


def test_the_check_records_torchs_gradient_of_a_vector():
    """A tensor output: the gradient of its sum (ones as grad_outputs), as before."""
    W = torch.tensor([[0.3, -1.2], [2.0, 0.7]], dtype=torch.float64)
    traced = sg.trace(vector_out, W)
    assert traced.fidelity.ok
    assert traced.fidelity.grad_user == by_hand(vector_out, W)
    expected = [math.cos(w) * w + math.sin(w) for w in (0.3, -1.2, 2.0, 0.7)]
    assert traced.fidelity.grad_user == pytest.approx(expected, rel=1e-15)
