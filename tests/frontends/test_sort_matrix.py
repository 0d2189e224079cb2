"""torch.sort and torch.topk of a matrix along dim 1 (-1) or 0 (issue 20 item 5; a vector only before):
each row (column) ordered on its own, the gradient to the index torch returns.

Ground truth: torch itself (its values, and `torch.autograd.grad` of the user's own function, bit for
bit, in float64 and float32, through the fidelity check and every autograd entry), and the mathematics:
away from ties each value is one element (sympy.diff of the written-out permutation, exact); at a tie the
entries the tie reaches are kinks, whose executed side is torch's gradient (torch's index among ties,
which for a row of a matrix is the one it returns for that row alone: checked here too).
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
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]
W = torch.tensor([[0.5, -1.25, 2.0, 0.75], [3.0, -0.5, 1.5, 0.25], [-2.0, 1.0, 0.125, 4.0]], dtype=torch.float64)


def rows_sorted(X):
    return (torch.sort(X, dim=1).values * W[:X.shape[0], :X.shape[1]].to(X.dtype)).sum()


def columns_descending(X):
    return (X.sort(dim=0, descending=True).values * W[:X.shape[0], :X.shape[1]].to(X.dtype)).sum()


def rows_top2(X):
    return (torch.topk(X, 2, dim=-1).values * W[:X.shape[0], :2].to(X.dtype)).sum()


def columns_bottom1(X):
    return (X.topk(1, dim=0, largest=False)[0] * W[:1, :X.shape[1]].to(X.dtype)).sum() + torch.sort(X).values[:, 0].sum()


CASES = [rows_sorted, columns_descending, rows_top2, columns_bottom1]


def _symbols(shape: tuple[int, int]) -> list[sp.Symbol]:
    return [sp.Symbol(f"X[{i}, {j}]", real=True) for i in range(shape[0]) for j in range(shape[1])]


def _permutation_math(fn: Any, X: torch.Tensor, syms: list[sp.Symbol]) -> sp.Expr:
    """The function written out with torch's own indices (away from ties: the permutation is the
    mathematics there), every product exact."""
    m, n = X.shape
    M = sp.Matrix(m, n, syms)
    w = sp.Matrix(3, 4, [sp.Rational(Fraction(float(v))) for v in W.reshape(-1)])
    if fn is rows_sorted:
        idx = torch.sort(X, dim=1).indices
        return sum(M[i, int(idx[i, p])] * w[i, p] for i in range(m) for p in range(n))
    if fn is columns_descending:
        idx = torch.sort(X, dim=0, descending=True).indices
        return sum(M[int(idx[p, j]), j] * w[p, j] for p in range(m) for j in range(n))
    if fn is rows_top2:
        idx = torch.topk(X, 2, dim=-1).indices
        return sum(M[i, int(idx[i, p])] * w[i, p] for i in range(m) for p in range(2))
    idx = torch.topk(X, 1, dim=0, largest=False).indices
    low = torch.sort(X).indices
    return sum(M[int(idx[0, j]), j] * w[0, j] for j in range(n)) + sum(M[i, int(low[i, 0])] for i in range(m))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", CASES, ids=[f.__name__ for f in CASES])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_sort_and_topk_of_a_matrix(fn: Any, dtype: torch.dtype, data: Any) -> None:
    m, n = data.draw(st.integers(2, 3)), data.draw(st.integers(2, 4))
    # values from a small set: ties are frequent
    values = data.draw(st.lists(st.sampled_from([-1.5, -0.5, 0.0, 0.25, 1.0, 2.0]), min_size=m * n, max_size=m * n))
    X = torch.tensor(values, dtype=dtype).reshape(m, n)
    t = sg.trace(fn, X)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    leaf = X.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(leaf), [leaf])
    assert [e.grad_autograd for e in c.entries] == g.reshape(-1).tolist()
    syms = _symbols((m, n))
    f = _permutation_math(fn, X, syms)
    at = {s: sp.Rational(Fraction(float(v))) for s, v in zip(syms, X.to(torch.float64).reshape(-1))}
    for e, s in zip(c.entries, syms):
        assert str(e.wrt) == str(s)
        # executed: the path that ran, torch's index at a tie too
        assert sp.sympify(str(e.grad_executed)) == sp.diff(f, s).subs(at)
        if e.cause is not Cause.KINK:  # away from a tie the mathematics is the permutation's
            assert sp.sympify(str(e.grad_symbolic)) == sp.diff(f, s).subs(at)
            assert e.cause is Cause.AGREE


def test_distinct_values_agree_and_a_tie_is_a_kink() -> None:
    X = torch.tensor([[0.3, -1.2, 0.5], [2.0, 0.75, 0.75]], dtype=torch.float64)
    c = sg.trace(rows_sorted, X).compare()
    assert [e.cause for e in c.entries] == [Cause.AGREE] * 3 + [Cause.AGREE, Cause.KINK, Cause.KINK]
    assert "torch.sort(" in c.lowered.source


def test_torch_orders_a_row_of_a_matrix_as_the_row_alone() -> None:
    """What the reading stands on: torch's indices along dim 1 (0) of a matrix, ties included, are those of
    each row (column) sorted alone, for sort (both directions) and topk."""
    torch.manual_seed(0)
    for _ in range(200):
        X = torch.randint(0, 3, (3, 5)).double()
        for d in (0, 1):
            for desc in (False, True):
                S = torch.sort(X, dim=d, descending=desc).indices
                T = torch.topk(X, 2, dim=d, largest=not desc).indices
                for r in range(X.shape[1 - d]):
                    row = (X[r] if d == 1 else X[:, r]).contiguous()
                    assert torch.equal(S[r] if d == 1 else S[:, r], torch.sort(row, descending=desc).indices)
                    assert torch.equal(T[r] if d == 1 else T[:, r], torch.topk(row, 2, largest=not desc).indices)


def test_a_dim_torch_refuses_is_a_sentence() -> None:
    def bad(X):
        return torch.sort(X, dim=2).values.sum()

    with pytest.raises(sg.TraceError, match=r"`torch.sort\(dim=2\)` of a tensor of rank 2 \(torch raises\)"):
        sg.trace(bad, torch.ones(2, 3, dtype=torch.float64))
