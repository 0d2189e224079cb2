"""`Entry.wrt` stays the SymPy object the engine differentiates with respect to (equal to the
element a user builds: a rank-1 input's element is its column's `w[1, 0]`), while `Entry.name`,
repr() and every report write it as the user indexes it, `w[1]` (issue 20)."""

from __future__ import annotations

import sympy as sp
import torch

import symgrad as sg


def f(w, X):
    return (X @ w).sum()


def test_a_rank1_inputs_element_is_named_as_indexed_and_equals_sympys_element() -> None:
    w = torch.tensor([0.5, -1.0], dtype=torch.float64)
    X = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    c = sg.compare(f, (w, X))
    names = [e.name for e in c.entries]
    assert names == ["w[0]", "w[1]", "X[0, 0]", "X[0, 1]", "X[1, 0]", "X[1, 1]"]
    e = c.entries[1]
    # equality is SymPy's, unchanged: element (1, 0) of the (2, 1) column the input `w` is (the
    # point's key), a MatrixElement as any other matrix input's
    w_in = next(iter(c.point))
    assert str(w_in) == "w" and w_in.shape == (2, 1)
    assert e.wrt == w_in[1, 0] and isinstance(e.wrt, sp.matrices.expressions.matexpr.MatrixElement)
    assert str(e.wrt) == "w[1, 0]"  # SymPy's own printer, as documented on Entry
    assert "wrt=w[1]," in repr(e) and str(e) == repr(e)
    assert any(line.startswith("w[1] ") for line in str(c).splitlines())
    assert c.to_dict()["entries"][1]["wrt"] == "w[1]"
    # the values: d/dw_k sum(X @ w) = sum_i X[i, k], torch's own
    wt = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(wt, X), wt)
    assert [e.grad_autograd for e in c.entries[:2]] == g.tolist() == [4.0, 6.0]
    assert [e.grad_executed for e in c.entries[:2]] == [4, 6]


def test_scalar_and_matrix_names() -> None:
    x, y = sp.symbols("x y", real=True)
    c = sg.compare(x * y, at={x: 2.0, y: 3.0})
    assert [e.name for e in c.entries] == ["x", "y"] == [str(e.wrt) for e in c.entries]
