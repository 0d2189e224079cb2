"""A point's matrix whose values are finite but whose sum overflows (1e308 + 1e308) is a finite
point, compared against torch's autograd and the exact derivative, with no warning; a NaN or an
infinity is the sentence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

import symgrad as sg


def _f(w: torch.Tensor) -> torch.Tensor:
    return (w * 1e-300).sum()


def test_a_point_whose_sum_overflows_is_finite() -> None:
    w = torch.tensor([[1e308, 1.5e308], [-1.0, 0.25]], dtype=torch.float64)
    assert not math.isfinite(sum(w.reshape(-1).tolist()))
    c = sg.compare(_f, at=(w,))
    ws = w.clone().requires_grad_()
    (g,) = torch.autograd.grad(_f(ws), ws)
    assert c.ok and len(c.entries) == 4
    for e, want in zip(c.entries, g.reshape(-1).tolist()):
        assert e.grad_autograd == want
        assert e.grad_executed == sp.Rational(1e-300)  # the exact binary value of the constant
    W = sp.MatrixSymbol("W", 2, 2)
    c2 = sg.compare((sp.OneMatrix(1, 2) * W * sp.OneMatrix(2, 1))[0, 0], at={W: w.numpy()})
    assert c2.ok and all(e.grad_symbolic == 1 for e in c2.entries)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_nan_or_an_infinity_is_the_sentence(bad: float) -> None:
    w = torch.tensor([[1.0, bad], [0.5, 2.0]], dtype=torch.float64)
    with pytest.raises(sg.PointError, match="not a finite number"):
        sg.compare(_f, at=(w,))
    W = sp.MatrixSymbol("W", 2, 2)
    with pytest.raises(sg.PointError):
        sg.compare((sp.OneMatrix(1, 2) * W * sp.OneMatrix(2, 1))[0, 0], at={W: np.array([[1.0, bad], [0.5, 2.0]])})
