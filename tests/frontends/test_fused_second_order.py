"""order=2 through torch's fused ops read element by element (issue 20): `F.layer_norm`,
`F.cosine_similarity` and the values of `torch.sort`/`torch.topk` of scalars stacked into a vector.

Ground truth: torch's own double backward (`torch.autograd.grad(..., create_graph=True)` then
`grad` of each entry: the autograd column, bit for bit) and `sympy.diff` twice of the mathematics
written out here at the exact binary point (the symbolic column; and the executed column where
torch's backward is the mathematics' derivative). Where it is not (a cosine norm below eps, whose
clamp autograd never sees), the executed column is torch's formula differentiated exactly, beside
torch's double backward. A step symgrad cannot differentiate twice (a whole matrix op) is one sentence.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from torch import nn

import symgrad as sg
from symgrad import Cause

EPS_LN = 1e-5


def layer_norm_products(a, b, c):
    first = F.layer_norm(torch.stack([a, b, c]), (3,), eps=EPS_LN)[0]
    return first * F.layer_norm(torch.stack([a, b, c]), (3,), eps=EPS_LN)[2]


def cosine(a, b, c, d):
    return F.cosine_similarity(torch.stack([a, b]), torch.stack([c, d]), 0)


def sorted_product(a, b, c):
    return torch.sort(torch.stack([a, b, c])).values[1] * torch.topk(torch.stack([a, b, c]), 2).values[0]


def layer_norm_weighted(a, b, c):
    return (F.layer_norm(torch.stack([a, b, c]), (3,)) * torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)).sum()


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def torch_hessian(f: Any, point: tuple[float, ...]) -> list[list[float]]:
    ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in point]
    grads = torch.autograd.grad(f(*ts), ts, create_graph=True)
    out = []
    for g in grads:
        row = torch.autograd.grad(g, ts, retain_graph=True, allow_unused=True) if g.requires_grad else [None] * len(ts)
        out.append([0.0 if h is None else float(h) for h in row])
    return out


def close(got: Any, want: sp.Expr, tol: float = 1e-30) -> bool:
    want = sp.N(want, 60)
    return abs(sp.N(sp.sympify(got) - want, 60)) <= tol * max(1, abs(want))


def check(f: Any, point: tuple[float, ...], math: sp.Expr, syms: list[sp.Symbol]) -> sg.Comparison:
    """Every Hessian entry: autograd is torch's double backward bit for bit; symbolic (and executed,
    where torch's backward is the exact derivative) is sympy's second derivative at the point."""
    c = sg.compare(f, point, order=2)
    h = torch_hessian(f, point)
    at = {s: exact(v) for s, v in zip(syms, point)}
    n = len(syms)
    assert len(c.entries) == n * n
    for k, e in enumerate(c.entries):
        i, j = divmod(k, n)
        assert e.grad_autograd == h[i][j], (i, j, e.grad_autograd, h[i][j])
        want = sp.diff(math, syms[i], syms[j]).subs(at)
        assert close(e.grad_symbolic, want), (i, j, e.grad_symbolic, want)
    return c


a, b, c_, d = sp.symbols("a b c d", real=True)


def ln_math(xs: list[sp.Symbol], j: int, eps: sp.Rational) -> sp.Expr:
    mean = sum(xs) / len(xs)
    var = sum((u - mean) ** 2 for u in xs) / len(xs)
    return (xs[j] - mean) / sp.sqrt(var + eps)


@pytest.mark.parametrize("point", [(0.5, 1.0, -0.3), (2.0, 2.0, -1.0), (1e-3, -2e-3, 4e-3)])
def test_layer_norm_hessian_is_sympys_and_torchs_double_backward(point: tuple[float, ...]) -> None:
    xs = [a, b, c_]
    eps = exact(EPS_LN)
    cmp = check(layer_norm_products, point, ln_math(xs, 0, eps) * ln_math(xs, 2, eps), xs)
    assert cmp.cause is Cause.AGREE
    assert all(e.cause is Cause.AGREE and e.grad_executed == e.grad_symbolic for e in cmp.entries)


def cos_math(eps: sp.Rational, at: dict[Any, Any]) -> sp.Expr:
    na, nb = sp.sqrt(a ** 2 + b ** 2), sp.sqrt(c_ ** 2 + d ** 2)
    ca, cb = (n if n.subs(at) > eps else eps for n in (na, nb))
    return (a * c_ + b * d) / (ca * cb)


def test_cosine_hessian_above_eps_agrees() -> None:
    point = (0.5, 1.0, -0.3, 2.0)
    at = {s: exact(v) for s, v in zip((a, b, c_, d), point)}
    cmp = check(cosine, point, cos_math(exact(1e-8), at), [a, b, c_, d])
    assert cmp.cause is Cause.AGREE
    assert all(e.grad_executed == e.grad_symbolic for e in cmp.entries)


def test_cosine_hessian_below_eps_is_torchs_formula_a_control_flow_finding() -> None:
    """||x1|| = 5e-9 < eps: the mathematics is (a*c + b*d)/(eps*||x2||), linear in a and b; torch's
    double backward differentiates its gradient through the unclamped norm: the executed column is
    that formula's second derivative, exactly, and it is a control-flow finding where they differ."""
    point = (3e-9, -4e-9, -0.3, 2.0)
    eps = exact(1e-8)
    at = {s: exact(v) for s, v in zip((a, b, c_, d), point)}
    cmp = check(cosine, point, cos_math(eps, at), [a, b, c_, d])
    na, nb = sp.sqrt(a ** 2 + b ** 2), sp.sqrt(c_ ** 2 + d ** 2)
    # torch's function: the value divides by eps, the graph through ||x1|| (its clamp held off the graph)
    held = sp.Function("held")
    torch_f = (a * c_ + b * d) / ((na + held(eps - na)) * nb)
    for k, e in enumerate(cmp.entries):
        i, j = divmod(k, 4)
        s_i, s_j = (a, b, c_, d)[i], (a, b, c_, d)[j]
        want = sp.diff(torch_f, s_i, s_j).replace(lambda t: isinstance(t, sp.Derivative), lambda t: 0)
        want = want.replace(lambda t: isinstance(t, sp.Subs), lambda t: 0).subs(held(eps - na), eps - na).subs(at)
        assert close(e.grad_executed, want, 1e-25), (i, j, e.grad_executed, want)
        assert float(e.grad_executed) == pytest.approx(e.grad_autograd, rel=1e-9)
        assert (e.cause is Cause.CONTROL_FLOW) is (i < 2 or j < 2), (i, j, e.cause)
    assert cmp.cause is Cause.CONTROL_FLOW


def test_cosine_hessian_at_a_zero_vector_is_a_sentence() -> None:
    with pytest.raises(sg.UnsupportedNodeError, match=r"Second derivatives \(order=2\) of `F.cosine_similarity` "
                                                        r"\(line \d+\) are not compared where x1 or x2 is all zeros"):
        sg.compare(cosine, (0.0, 0.0, -0.3, 2.0), order=2)


def test_sort_and_topk_hessians() -> None:
    """Away from ties the sorted values are the elements in their order (b, then a): the Hessian of
    a*b, torch's too. At a tie of a and b the order statistic has a corner: a kink on every entry,
    torch's double backward (the element it returned, squared: 2 at (a, a)) reported beside it."""
    cmp = check(sorted_product, (0.5, 1.0, -0.3), a * b, [a, b, c_])
    assert cmp.cause is Cause.AGREE
    tied = sg.compare(sorted_product, (0.5, 0.5, -0.3), order=2)
    h = torch_hessian(sorted_product, (0.5, 0.5, -0.3))
    assert [e.grad_autograd for e in tied.entries] == [v for row in h for v in row]
    assert h[0][0] == 2.0 and all(e.cause is Cause.KINK and e.grad_symbolic is None for e in tied.entries)
    assert [float(e.grad_executed) for e in tied.entries] == [v for row in h for v in row]
    assert "`torch.sort(torch.stack([a, b, c])).values[1]` (line 8) is exactly on its corner" in tied.entries[0].explanation


def test_a_whole_matrix_step_is_a_sentence_not_a_crash() -> None:
    """F.layer_norm's whole result multiplied by a weight tensor is a matrix step: one sentence
    (what, why, fix), not NotImplementedError; nn.LayerNorm's parameters are matrix inputs."""
    with pytest.raises(sg.UnsupportedNodeError, match=r"not compared through line \d+ of the generated program "
                                                        r"\(`\w+`\): it computes a whole 3x1 matrix at once with "
                                                        r"torch's `torch.nn.functional.layer_norm`.*\nFix: compare order=1"):
        sg.compare(layer_norm_weighted, (0.5, 1.0, -0.3), order=2)
    with pytest.raises(sg.OptionError, match="order=2 compares the Hessian of a scalar function of scalar inputs"):
        sg.compare(nn.LayerNorm(3).double(), {"input": torch.tensor([[0.5, 1.0, -0.3]], dtype=torch.float64)}, order=2)
