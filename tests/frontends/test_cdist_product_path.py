"""torch.cdist's matrix-product path (more than 25 rows) at two rows that are close but not the same
point (read10, item 6): torch computes |a_i|**2 + |b_j|**2 - 2*a_i.b_j, which cancels; autograd's
gradient there is torch's own (bit for bit here), the exact derivative the mathematics' (sympy.diff),
and the finding is `rounding` at the cdist line, saying it is the product path's cancellation. On
torch's direct path (25 rows or fewer) the same rows agree: it subtracts the coordinates first."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad import Cause

W = torch.tensor([1.0, 2.0])


def weighted(a, b):
    return (torch.cdist(a, b) * W.to(a.dtype)).sum()


def _point(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.arange(2 * rows, dtype=torch.float64).reshape(rows, 2) / 4 + 0.3
    b = a[:2].clone()
    b[0, 0] += 1e-9  # row 0 of a and row 0 of b: 1e-9 apart
    b[1, 1] += 0.5
    return a, b


def _autograd(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    leaves = [a.clone().requires_grad_(True), b.clone().requires_grad_(True)]
    return [v for g in torch.autograd.grad(weighted(*leaves), leaves) for v in g.reshape(-1).tolist()]


def _exact_a00(a: torch.Tensor, b: torch.Tensor) -> sp.Expr:
    """d/da00 of sum_ij w_j |a_i - b_j|: only row 0's distances, by sympy.diff at the binary values."""
    s = sp.Symbol("a00", real=True)
    q = lambda v: sp.Rational(Fraction(float(v)))  # noqa: E731
    f = sum(q(W[j]) * sp.sqrt((s - q(b[j, 0])) ** 2 + (q(a[0, 1]) - q(b[j, 1])) ** 2) for j in range(2))
    return sp.diff(f, s).subs(s, q(a[0, 0])).evalf(40)


def test_the_product_paths_cancellation_is_rounding_at_the_cdist_line() -> None:
    a, b = _point(26)
    c = sg.compare(weighted, at={"a": a, "b": b})
    assert [e.grad_autograd for e in c.entries] == _autograd(a, b)  # torch's own, bit for bit
    e = next(e for e in c.entries if str(e.wrt) == "a[0, 0]")
    assert abs(sp.sympify(str(e.grad_executed)) - _exact_a00(a, b)) < sp.Float("1e-25")
    assert e.grad_symbolic == e.grad_executed and e.cause is Cause.ROUNDING
    assert abs(e.grad_autograd - float(e.grad_executed)) > 0.1  # the cancellation shows
    assert {str(x.wrt) for x in c.entries if x.cause is not Cause.AGREE} == {"a[0, 0]", "a[0, 1]", "b[0, 0]", "b[0, 1]"}
    text = e.explanation
    assert "`torch.cdist(a, b)` (line" in text and "has more than 25 rows" in text
    assert "|a_i|**2 + |b_j|**2 - 2*a_i.b_j" in text and "row 0 of the first matrix and row 0 of the second" in text
    assert "(cancellation)" in text and "return (torch.cdist(a, b) * W.to(a.dtype)).sum()" in text
    assert 'compute_mode="donot_use_mm_for_euclid_dist"' in e.hint
    # the hint's fix, in torch: the direct path gives the exact derivative to the last digits
    leaf = a.clone().requires_grad_(True)
    direct = (torch.cdist(leaf, b, compute_mode="donot_use_mm_for_euclid_dist") * W).sum()
    (g,) = torch.autograd.grad(direct, leaf)
    assert abs(g[0, 0].item() - float(e.grad_executed)) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_the_direct_path_at_the_same_rows_agrees(dtype: torch.dtype) -> None:
    a, b = (t.to(dtype) for t in _point(4))
    c = sg.compare(weighted, at={"a": a, "b": b})
    assert [e.grad_autograd for e in c.entries] == _autograd(a, b)
    if dtype == torch.float64:
        assert c.ok, str(c)
