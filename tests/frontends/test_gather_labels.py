"""`torch.gather` / `x.gather` with integer labels passed as data (issue 22): the spelling others
write for D2L's `y_hat[range(len(y_hat)), y]`, read as the same selection by constant indices.

Ground truth: torch itself (the fidelity check and every entry's autograd value against
`torch.autograd.grad`, bit for bit, float64 and float32) and SymPy: the mathematics written out
here (log_softmax of each row, the labelled element picked), differentiated with `sympy.diff` at
the exact binary values.
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
LOGITS = [[1.0, 2.0, 0.5], [0.125, -1.0, 3.0], [0.25, 0.75, -2.0], [1.5, -0.5, 0.0]]
LABELS = [2, 0, 1, 2]


def functional_unsqueeze(logits, y):
    logp = torch.log_softmax(logits, dim=1)
    return -torch.gather(logp, 1, y.unsqueeze(1)).mean()


def method_view(logits, y):
    logp = torch.log_softmax(logits, dim=1)
    return -logp.gather(1, y.view(-1, 1)).mean()


def keyword_none_index(logits, y):
    logp = torch.log_softmax(logits, dim=1)
    return -torch.gather(logp, dim=1, index=y[:, None]).squeeze(1).mean()


def reshape_then_squeeze(logits, y):
    logp = torch.log_softmax(logits, dim=1)
    return -logp.gather(1, y.reshape(-1, 1)).squeeze().mean()


def d2l_indexing(logits, y):
    logp = torch.log_softmax(logits, dim=1)
    return -logp[range(len(logp)), y].mean()


def q(v: float) -> sp.Rational:
    return sp.Rational(Fraction(float(v)))


def truth(logits: torch.Tensor, labels: list[int]) -> list[sp.Expr]:
    """d/dL of -mean_i log_softmax(L_i)[y_i], by sympy.diff at the exact point."""
    n, c = logits.shape
    L = sp.Matrix(n, c, lambda i, j: sp.Symbol(f"L{i}{j}", real=True))
    at = {s: q(v) for s, v in zip(L, logits.double().reshape(-1).tolist())}
    f = -sum(L[i, labels[i]] - sp.log(sum(sp.exp(L[i, j]) for j in range(c))) for i in range(n)) / n
    return [sp.diff(f, s).subs(at) for s in L]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", [functional_unsqueeze, method_view, keyword_none_index, reshape_then_squeeze])
def test_gather_by_labels_is_the_selection_d2l_writes_by_indexing(fn: Any, dtype: torch.dtype) -> None:
    logits = torch.tensor(LOGITS, dtype=dtype)
    y = torch.tensor(LABELS)
    t = sg.trace(fn, logits, y)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert c.ok and c.cause is Cause.AGREE
    leaf = logits.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(leaf, y), leaf)
    assert [e.grad_autograd for e in c.entries] == g.reshape(-1).tolist()
    assert float(c.value_autograd) == float(fn(logits, y))
    same = sg.trace(d2l_indexing, logits, y).compare()
    for e, d, exact in zip(c.entries, same.entries, truth(logits, LABELS)):
        assert sp.sympify(str(e.grad_symbolic)) == sp.sympify(str(d.grad_symbolic))
        assert abs(sp.sympify(str(e.grad_symbolic)) - exact.evalf(50)) < sp.Float("1e-40")
        assert abs(sp.sympify(str(e.grad_executed)) - exact.evalf(50)) < sp.Float("1e-40")


def along_rows(x, i):
    return (torch.gather(x, 0, i) ** 2).sum()


def of_a_vector(v, i):
    return torch.exp(v.gather(0, i)).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gather_along_dim_0_and_of_a_vector_picks_what_torch_picks(dtype: torch.dtype) -> None:
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]], dtype=dtype)
    i = torch.tensor([[2, 0], [0, 0]])  # out[r][c] = x[i[r][c]][c]
    c = sg.compare(along_rows, at={"x": x, "i": i}, wrt=["x"])
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(along_rows(leaf, i), leaf)
    assert c.ok and [e.grad_autograd for e in c.entries] == g.reshape(-1).tolist()
    X = sp.Matrix(3, 2, lambda r, k: sp.Symbol(f"x{r}{k}"))
    f = sum(X[int(i[r, k]), k] ** 2 for r in range(2) for k in range(2))
    at = {s: q(v) for s, v in zip(X, x.double().reshape(-1).tolist())}
    assert [sp.sympify(str(e.grad_symbolic)) for e in c.entries] == [sp.diff(f, s).subs(at) for s in X]

    v = torch.tensor([0.5, -1.0, 2.0], dtype=dtype)
    j = torch.tensor([2, 2, 0, 1])
    c = sg.compare(of_a_vector, at={"v": v, "i": j}, wrt=["v"])
    leaf = v.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(of_a_vector(leaf, j), leaf)
    assert c.ok and [e.grad_autograd for e in c.entries] == g.tolist()
    V = [sp.Symbol(f"v{k}") for k in range(3)]
    f = sum(sp.exp(V[int(k)]) for k in j)
    at = {s: q(val) for s, val in zip(V, v.double().tolist())}
    for e, s in zip(c.entries, V):
        assert abs(sp.sympify(str(e.grad_symbolic)) - sp.diff(f, s).subs(at).evalf(50)) < sp.Float("1e-40")


def gathered(logits, y):
    return logits.gather(1, y.unsqueeze(1)).sum()


@pytest.mark.parametrize("labels, words", [
    ([2, 3], "holds 3, outside 0..2 of the dimension it gathers along (torch raises)"),
    ([-1, 0], "holds -1, outside 0..2"),
], ids=["past-the-classes", "negative"])
def test_a_label_torch_refuses_is_a_sentence(labels: list[int], words: str) -> None:
    logits = torch.tensor(LOGITS[:2], dtype=torch.float64)
    y = torch.tensor(labels)
    with pytest.raises(RuntimeError):  # torch itself refuses these labels
        gathered(logits, y)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(gathered, logits, y)
    assert words in str(err.value) and "Fix:" in str(err.value)


def wrong_rank(logits, y):
    return logits.gather(1, y).sum()


def test_an_index_of_another_rank_is_torchs_error_in_a_sentence() -> None:
    logits = torch.tensor(LOGITS[:2], dtype=torch.float64)
    y = torch.tensor([2, 0])
    with pytest.raises(RuntimeError):
        wrong_rank(logits, y)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(wrong_rank, logits, y)
    assert "`gather` takes an index of the tensor's rank (2)" in str(err.value)
    assert "x.gather(1, y.unsqueeze(1))" in str(err.value)
