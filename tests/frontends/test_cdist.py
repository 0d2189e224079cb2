"""`torch.cdist(A, B, p=2)` (issue 22, item 2), read as torch computes it: the Euclidean distance of
every row of A to every row of B.

Ground truth: torch itself, bit for bit (the fidelity check, and every entry's autograd value
against `torch.autograd.grad` here), in float64 and float32, on torch's direct path (25 rows or
fewer) and its matrix-product path (more); and `sympy.diff` of sqrt(sum_k (a_ik - b_jk)**2)
written out here, at the exact binary values.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg

DTYPES = [torch.float64, torch.float32]


def weighted(a, b):
    return torch.tanh(torch.cdist(a, b)).sum()


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rows", [4, 26], ids=["direct", "matrix-product"])
def test_cdist_is_torchs_call_and_the_derivative_of_each_distance(rows: int, dtype: torch.dtype) -> None:
    torch.manual_seed(10)
    a, b = torch.randn(rows, 2, dtype=dtype), torch.randn(2, 2, dtype=dtype)
    t = sg.trace(weighted, a, b)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert c.ok
    assert "torch.cdist(" in c.lowered.source
    leaves = [a.clone().requires_grad_(True), b.clone().requires_grad_(True)]
    grads = torch.autograd.grad(weighted(*leaves), leaves)
    assert [e.grad_autograd for e in c.entries] == [float(v) for g in grads for v in g.reshape(-1)]
    A = sp.Matrix(rows, 2, lambda i, k: sp.Symbol(f"a[{i}, {k}]", real=True))
    B = sp.Matrix(2, 2, lambda j, k: sp.Symbol(f"b[{j}, {k}]", real=True))
    at = {**{s: exact(float(v)) for s, v in zip(A, a.to(torch.float64).reshape(-1))},
          **{s: exact(float(v)) for s, v in zip(B, b.to(torch.float64).reshape(-1))}}
    checked = list(zip(c.entries, [*A, *B]))
    for e, s in checked if rows <= 25 else checked[:52:9] + checked[-1:]:  # sympy.diff is slow: a sample of the 56
        i = int(str(s).split("[")[1].split(",")[0])
        # Only the distances of this row reach this element: d/ds of sum tanh(d_ij) over them.
        pairs = [(i, j) for j in range(2)] if str(s).startswith("a") else [(r, i) for r in range(rows)]
        f = sum(sp.tanh(sp.sqrt(sum((A[r, k] - B[j, k]) ** 2 for k in range(2)))) for r, j in pairs)
        truth = sp.diff(f, s).subs(at).evalf(40)
        for side in (e.grad_symbolic, e.grad_executed):
            assert abs(sp.sympify(str(side)).evalf(40) - truth) < sp.Float("1e-25"), (str(e.wrt), side, truth)


def self_distances(x):
    return torch.cdist(x, x).sum()


def test_a_zero_distance_of_the_same_row_is_no_cone_and_agrees() -> None:
    """cdist(X, X) has 0 on its diagonal for every X (|x_i - x_i|, constant): no cone, torch's 0 is
    the mathematics' derivative there, and the comparison agrees (it was a sentence before; a
    zero distance between different rows is a kink: tests/frontends/test_fused_kinks.py)."""
    x = torch.randn(3, 2, dtype=torch.float64)
    c = sg.trace(self_distances, x).compare()
    assert c.ok
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(self_distances(leaf), leaf)
    assert [e.grad_autograd for e in c.entries] == g.reshape(-1).tolist()


def l1_distances(a, b):
    return torch.cdist(a, b, p=1.0).sum()


def mismatched(a, b):
    return torch.cdist(a, b.T).sum()


@pytest.mark.parametrize("fn, words", [
    (l1_distances, "`torch.cdist(x1, x2, p=1.0)`: symgrad reads the Euclidean distance, p=2, only"),
    (mismatched, "`torch.cdist` is read of two matrices (r1, D) and (r2, D) with the same number of columns D"),
], ids=["p=1", "columns"])
def test_cdist_outside_what_is_read_is_a_sentence(fn: Any, words: str) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, torch.randn(2, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64))
    assert words in str(err.value) and "Fix:" in str(err.value)
