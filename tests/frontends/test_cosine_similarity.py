"""`F.cosine_similarity(x1, x2, dim, eps)` (issue 20: D2L's attention chapter), read as torch 2.13
computes it: ((x1 / n1) * (x2 / n2)).sum(dim), each norm clamped at eps *in place under no_grad*.

Ground truth: torch itself, bit for bit (the fidelity check, and every entry's autograd value
against `torch.autograd.grad` of the user's own function), in float64 and float32; `sympy.diff` of
the mathematics dot / (max(||a||, eps) * max(||b||, eps)) at the exact rational point (the symbolic
side); and, where a norm lies below eps, torch's own formula written out here (the executed side:
torch's gradient flows through the clamped norm, which the mathematics does not), a control-flow
finding on exactly the entries whose gradient it changes. A norm exactly at eps is a kink.
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
W = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64)  # exact in float32 too


def rows(a, b):
    return (F.cosine_similarity(a, b) * W.to(a.dtype)).sum()


def columns(a, b):
    return (F.cosine_similarity(a, b, dim=0, eps=1e-6) ** 2).sum()


def vectors(a, b):
    return torch.cosine_similarity(a, b, dim=0) * 3


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def groups(A: sp.Matrix, dim: int) -> list[list[sp.Basic]]:
    return [list(A.row(i)) for i in range(A.rows)] if dim == 1 else [list(A.col(j)) for j in range(A.cols)]


def cosine(a: list[sp.Basic], b: list[sp.Basic], eps: sp.Rational, at: dict[Any, Any]) -> sp.Expr:
    """The mathematics on the piece each norm lies in at the point (a norm below eps: the constant eps)."""
    na, nb = (sp.sqrt(sum(u ** 2 for u in v)) for v in (a, b))
    ca, cb = (n if n.subs(at) > eps else eps for n in (na, nb))
    return sum(u * v for u, v in zip(a, b)) / (ca * cb)


def symbols(name: str, t: torch.Tensor) -> sp.Matrix:
    t2 = t.reshape(-1, 1) if t.dim() == 1 else t
    return sp.Matrix(*t2.shape, lambda i, j: sp.Symbol(f"{name}[{i}, {j}]", real=True))


def compared(fn: Any, a: torch.Tensor, b: torch.Tensor) -> tuple[sg.Comparison, sp.Matrix, sp.Matrix, dict[Any, Any]]:
    t = sg.trace(fn, a, b)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert "torch.nn.functional.cosine_similarity(" in c.lowered.source
    leaves = [a.clone().requires_grad_(True), b.clone().requires_grad_(True)]
    grads = torch.autograd.grad(fn(*leaves), leaves)
    assert [e.grad_autograd for e in c.entries] == [float(v) for g in grads for v in g.reshape(-1)]
    A, B = symbols("a", a), symbols("b", b)
    at = {s: exact(float(v)) for M, t_ in ((A, a), (B, b)) for s, v in zip(M, t_.to(torch.float64).reshape(-1))}
    assert [str(e.wrt) for e in c.entries] == [str(s) for s in (*A, *B)]
    return c, A, B, at


def close(got: Any, truth: sp.Expr) -> bool:
    g, t = sp.sympify(str(got)).evalf(40), truth.evalf(40)
    return abs(g - t) <= sp.Float("1e-25") * max(1, abs(t))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, dim, eps, outer, shape", [
    (rows, 1, 1e-8, lambda ys, dt: sum(y * exact(float(w)) for y, w in zip(ys, W.to(dt))), (3, 4)),
    (columns, 0, 1e-6, lambda ys, dt: sum(y ** 2 for y in ys), (4, 3)),
    (vectors, 0, 1e-8, lambda ys, dt: 3 * ys[0], (5,)),
], ids=["rows", "columns", "vectors"])
def test_cosine_similarity_is_torchs_call_and_the_mathematics(fn: Any, dim: int, eps: float, outer: Any,
                                                              shape: tuple[int, ...], dtype: torch.dtype) -> None:
    torch.manual_seed(12)
    a, b = torch.randn(*shape, dtype=dtype), torch.randn(*shape, dtype=dtype)
    c, A, B, at = compared(fn, a, b)
    assert c.ok
    E = exact(float(torch.tensor(eps, dtype=torch.float64)))
    f = outer([cosine(g, h, E, at) for g, h in zip(groups(A, dim), groups(B, dim))], dtype)
    for e, s in zip(c.entries, (*A, *B)):
        truth = sp.diff(f, s).subs(at)
        assert close(e.grad_symbolic, truth) and close(e.grad_executed, truth), (str(s), e.grad_symbolic, truth)


def test_a_norm_below_eps_is_torchs_gradient_not_the_mathematics_a_finding_on_its_entries() -> None:
    """Row 1 of a has norm 5e-9 < eps = 1e-8: torch's value divides by eps, but its gradient flows
    through the clamped norm (-dot*a_k/(eps**2*||b||*||a||) more than the mathematics' b_k/(eps*||b||)).
    Only a[1, 0] and a[1, 1] change (a[1, 2] = a[1, 3] = 0 have no such term); b's are the mathematics'."""
    torch.manual_seed(13)
    a, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    a[1] = torch.tensor([3e-9, 4e-9, 0.0, 0.0], dtype=torch.float64)
    c, A, B, at = compared(rows, a, b)
    assert c.cause is Cause.CONTROL_FLOW
    assert [str(e.wrt) for e in c.entries if e.cause is not Cause.AGREE] == ["a[1, 0]", "a[1, 1]"]
    eps = exact(1e-8)
    f = sum(cosine(g, h, eps, at) * exact(float(w)) for g, h, w in zip(groups(A, 1), groups(B, 1), W))
    # torch's formula for row 1 of a, written out: b_k/(eps*cb) - dot*a_k/(eps**2*cb*||a||)
    ra, rb = list(A.row(1)), list(B.row(1))
    na, nb = sp.sqrt(sum(u ** 2 for u in ra)), sp.sqrt(sum(v ** 2 for v in rb))
    dot = sum(u * v for u, v in zip(ra, rb))
    for e, s in zip(c.entries, (*A, *B)):
        truth = sp.diff(f, s).subs(at)
        assert close(e.grad_symbolic, truth), (str(s), e.grad_symbolic, truth)
        if s in ra:
            k = ra.index(s)
            torch_truth = (exact(float(W[1])) * (rb[k] / (eps * nb) - dot * ra[k] / (eps ** 2 * nb * na))).subs(at)
            assert close(e.grad_executed, torch_truth), (str(s), e.grad_executed, torch_truth)
            assert (e.cause is Cause.CONTROL_FLOW) is (k < 2)
        else:
            assert close(e.grad_executed, truth)
    # Its own sentence (not softplus's "what the kernel dropped": torch adds a term here): what
    # torch computes, the norm below eps with the element of the result, and the user's line.
    text = c.entries[0 * 4 + 4].explanation
    assert "with each norm clamped to eps = 1e-08" in text and "in place under no_grad" in text
    assert "Here ||x1|| = 5.0000000000000002e-9 (the result's element 1: row 1 of x1 and x2) is below eps" in text
    assert "-dot * x1_k / (1e-08**2 * n2 * ||x1||)" in text and "kernel dropped" not in text
    assert "`F.cosine_similarity(a, b)` (line 10)" in text and "test_cosine_similarity.py:30 return (F.cosine_similarity(a, b)" in text


def at_eps(a, b):
    return F.cosine_similarity(a, b, dim=0, eps=0.625)


def test_a_norm_exactly_at_eps_is_a_kink_with_the_slopes_of_both_pieces() -> None:
    a, b = torch.tensor([0.375, 0.5], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)  # ||a|| = 0.625
    c, A, B, at = compared(at_eps, a, b)
    assert c.cause is Cause.KINK
    assert [e.cause for e in c.entries] == [Cause.KINK, Cause.KINK, Cause.AGREE, Cause.AGREE]
    eps = sp.Rational(5, 8)
    nb = sp.sqrt(sum(v ** 2 for v in B))
    below = sum(u * v for u, v in zip(A, B)) / (eps * nb)
    above = sum(u * v for u, v in zip(A, B)) / (sp.sqrt(sum(u ** 2 for u in A)) * nb)
    for e, s in zip(c.entries[:2], A):
        left, right = e.one_sided
        assert close(left, sp.diff(below, s).subs(at)) and close(right, sp.diff(above, s).subs(at))
        assert close(e.grad_executed, sp.diff(above, s).subs(at))  # torch takes the piece above eps


def broadcast(a, b):
    return F.cosine_similarity(a, b[0]).sum()


def bad_dim(a, b):
    return F.cosine_similarity(a, b, dim=2).sum()


@pytest.mark.parametrize("fn, words", [
    (broadcast, "`F.cosine_similarity` is read of two vectors or two matrices of one shape; here the shapes are (3, 4) and (4,)"),
    (bad_dim, "`F.cosine_similarity(..., dim=2)`: a tensor of rank 2 has the dims [-2, -1, 0, 1]"),
], ids=["broadcast", "dim-2"])
def test_what_symgrad_does_not_read_is_a_sentence(fn: Any, words: str) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64))
    assert words in str(err.value) and "Fix:" in str(err.value), str(err.value)
