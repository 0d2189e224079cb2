"""`F.normalize(x, p=2, dim, eps)` (issue 22, item 2), read as torch computes it: x divided by
max(||row||, eps) (dim 1) or max(||column||, eps) (dim 0).

Ground truth: torch itself, bit for bit (the fidelity check, and every entry's autograd value
against `torch.autograd.grad` here), in float64 and float32; and `sympy.diff` of the mathematics
written out here, on each row's own piece at the point (x/||x|| where the norm is above eps, x/eps
below it: a zero row lies inside the eps piece, where the function is smooth).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]
torch.manual_seed(8)
WEIGHTS = torch.randn(4, 3, dtype=torch.float64)


def rows(x):
    return (F.normalize(x, dim=1) * WEIGHTS.to(x.dtype)).sum()


def columns(x):
    return torch.tanh(F.normalize(x, p=2, dim=0, eps=1e-6)).sum()


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def math_of(x: torch.Tensor, dim: int, eps: float, outer: Any) -> tuple[sp.Expr, sp.Matrix, dict[Any, Any]]:
    """The mathematics at x: each group divided by its norm (or by eps where the norm is below
    it), then `outer` of the normalised matrix; with the symbols and their exact values."""
    n, c = x.shape
    X = sp.Matrix(n, c, lambda i, j: sp.Symbol(f"x[{i}, {j}]", real=True))
    at = {X[i, j]: exact(float(x[i, j])) for i in range(n) for j in range(c)}
    E = exact(eps)
    Y = sp.zeros(n, c)
    for g in range(n if dim == 1 else c):
        cells = [(g, k) for k in range(c)] if dim == 1 else [(k, g) for k in range(n)]
        norm = sp.sqrt(sum(X[i, j] ** 2 for i, j in cells))
        denom = norm if norm.subs(at) > E else E
        for i, j in cells:
            Y[i, j] = X[i, j] / denom
    return outer(Y), X, at


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, dim, eps, outer", [
    # the weights as the run holds them: `.to(x.dtype)` of float64 weights in a float32 run rounds them
    (rows, 1, 1e-12, lambda Y, dt: sum(Y[i, j] * exact(float(WEIGHTS.to(dt)[i, j])) for i in range(4) for j in range(3))),
    (columns, 0, 1e-6, lambda Y, dt: sum(sp.tanh(v) for v in Y)),
], ids=["rows", "columns"])
def test_normalize_is_torchs_call_and_the_mathematics_of_each_rows_piece(fn: Any, dim: int, eps: float, outer: Any,
                                                                         dtype: torch.dtype) -> None:
    torch.manual_seed(9)
    x = torch.randn(4, 3, dtype=dtype)
    x[2] = 0.0  # a zero row (column 2's norm stays above eps): inside the eps piece, smooth, gradient 1/eps
    if dim == 0:
        x[:, 1] = torch.tensor([1e-7, 0.0, 0.0, 0.0], dtype=dtype)  # a column whose norm is below eps
    t = sg.trace(fn, x)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert c.ok, c
    assert "torch.nn.functional.normalize(" in c.lowered.source
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(leaf), [leaf])
    assert [e.grad_autograd for e in c.entries] == [float(v) for v in g.reshape(-1)]
    f, X, at = math_of(x.to(torch.float64), dim, float(torch.tensor(eps, dtype=torch.float64)), lambda Y: outer(Y, dtype))
    for e, s in zip(c.entries, X):
        truth = sp.diff(f, s).subs(at).evalf(40)
        for side in (e.grad_symbolic, e.grad_executed):
            got = sp.sympify(str(side)).evalf(40)
            assert abs(got - truth) <= sp.Float("1e-25") * max(1, abs(truth)), (str(e.wrt), side, truth)


def test_a_norm_exactly_at_eps_is_the_kink_a_finding_not_a_sentence() -> None:
    """Row 0's norm is exactly eps: a kink of x[0, 0] (slope 1/eps below, through the norm above;
    torch's clamp_min takes the norm's), found, not refused (it was a sentence before; the slopes
    against SymPy in tests/frontends/test_fused_kinks.py)."""
    def tie(x):
        return F.normalize(x, dim=1, eps=0.5).sum()

    x = torch.tensor([[0.5, 0.0], [1.0, 2.0]], dtype=torch.float64)  # row 0's norm is exactly eps
    c = sg.trace(tie, x).compare()
    assert c.cause is Cause.KINK
    assert [str(e.wrt) for e in c.entries if e.cause is Cause.KINK] == ["x[0, 0]"]
    assert [sp.nsimplify(str(v)) for v in c.entries[0].one_sided] == [2, 0]  # 1/eps below; 1/n - x**2/n**3 above
    assert "norm is exactly eps" in c.entries[0].explanation


def l1_normalized(x):
    return F.normalize(x, p=1, dim=1).sum()


def vector_normalized(x):
    return F.normalize(x[0], dim=1).sum()


@pytest.mark.parametrize("fn, words", [
    (l1_normalized, "`F.normalize(x, p=1.0)`: symgrad reads the Euclidean norm, p=2, only"),
    (vector_normalized, "`F.normalize(..., dim=1)`: a vector has the dim 0 (-1)"),
], ids=["p=1", "rank-1-dim-1"])
def test_normalize_outside_what_is_read_is_a_sentence(fn: Any, words: str) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, torch.randn(2, 3, dtype=torch.float64))
    assert words in str(err.value) and "Fix:" in str(err.value)


V_WEIGHTS = torch.tensor([0.5, -1.25, 2.0, 0.75, -0.5], dtype=torch.float64)  # exact in float32 too


def unit_vector(v):
    u = F.normalize(v, dim=0)
    return (u * V_WEIGHTS.to(v.dtype)).sum() + torch.tanh(u).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_normalize_of_a_vector_divides_it_by_its_norm(dtype: torch.dtype) -> None:
    torch.manual_seed(11)
    v = torch.randn(5, dtype=dtype)
    t = sg.trace(unit_vector, v)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert c.ok
    leaf = v.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(unit_vector(leaf), [leaf])
    assert [e.grad_autograd for e in c.entries] == [float(x) for x in g]
    X = [sp.Symbol(f"v[{k}]", real=True) for k in range(5)]
    norm = sp.sqrt(sum(x ** 2 for x in X))
    f = sum((x / norm) * exact(float(w)) + sp.tanh(x / norm) for x, w in zip(X, V_WEIGHTS))
    at = {x: exact(float(val)) for x, val in zip(X, v.to(torch.float64))}
    for e, s in zip(c.entries, X):
        truth = sp.diff(f, s).subs(at).evalf(40)
        for side in (e.grad_symbolic, e.grad_executed):
            assert abs(sp.sympify(str(side)).evalf(40) - truth) < sp.Float("1e-25"), (str(e.wrt), side, truth)
