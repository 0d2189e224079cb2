"""The D2L corpus (tests/corpus/d2l): every differentiable function of tensors in the PyTorch tabs
of D2L's preliminaries, linear regression, linear classification and MLP chapters, through
`symgrad.compare`, each asserted against the verdict the mathematics and torch give.

A case symgrad refuses today (`today="refused"`) passes while the refusal is a symgrad error that
names the book's line (or, for a value given as an argument, the argument), and passes once read
only with the expected verdict: a feature that starts reading it can never make a wrong verdict
pass. The cases whose expectation is not `agree` on the floating side are checked here against
torch and SymPy directly, so that the expectation is not symgrad's opinion."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy as sp
import torch

import symgrad as sg

from corpus.d2l import book
from corpus.d2l.cases import CASES, Case, x_act
from corpus.d2l.run import run, torch_gradients


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case: Case) -> None:
    o = run(case)
    if case.expect == "refused":
        assert isinstance(o.error, sg.SymgradError), (o.cause, o.error)
        assert o.refusal_names_line, o.first_line
        return
    if o.read:
        assert o.cause == case.expect, f"{case.id}: symgrad says {o.cause}, the mathematics and torch {case.expect}"
        _check_against_torch(case, o.comparison)
        return
    assert case.today == "refused", f"{case.id} refused: {o.first_line}"
    assert isinstance(o.error, sg.SymgradError), repr(o.error)
    assert o.refusal_names_line or o.refusal_names_argument, o.first_line


def _check_against_torch(case: Case, comparison: sg.Comparison) -> None:
    """The comparison is of the gradient torch computes: as many entries, symgrad's autograd
    floats torch's own, and where the verdict is `agree` the exact derivative within the dtype's
    rtol of them (compared as sorted lists: the check does not depend on symgrad's entry order)."""
    want = sorted(torch_gradients(case), key=_order)
    got = sorted((e.grad_autograd for e in comparison.entries), key=_order)
    assert len(got) == len(want), (len(got), len(want))
    assert all(a == b or (a != a and b != b) for a, b in zip(got, want)), (got, want)  # nan matches nan
    if case.expect == "agree":
        rtol = 1e-4 if comparison.dtype == "float32" else 1e-9
        exact = sorted(float(e.grad_symbolic) for e in comparison.entries)
        assert all(abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-300 for a, b in zip(exact, want)), case.id


def _order(v: float | None) -> tuple[bool, bool, float]:
    """A sort key under which nan (which compares false with everything) sorts last, and None
    (torch raised when asked) after it."""
    if v is None:
        return (True, True, 0.0)
    return (False, v != v, 0.0 if v != v else v)


def test_ids_unique_and_sections_cited() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(".md" in c.section or "d2l/torch.py" in c.section for c in CASES)
    assert {c.chapter for c in CASES} == {"chapter_preliminaries", "chapter_linear-regression",
                                          "chapter_linear-classification", "chapter_multilayer-perceptrons"}


def test_torch_gradient_of_every_case() -> None:
    """The check a read case meets (`_check_against_torch`) is defined for every case that
    returns, refused today or not: torch differentiates each at its point (several outputs as one
    vector, a module as its leaves, a constant function as zeros), so that a feature that starts
    reading a case is held to torch's numbers, not only to a cause id."""
    for case in CASES:
        if case.expect != "refused":
            assert torch_gradients(case), case.id
    assert torch_gradients(next(c for c in CASES if c.id == "dropout-layer-1")) == [None] * 256
    assert torch_gradients(next(c for c in CASES if c.id == "la-scalar-ops")) == [1.0, 1.0, 2.0, 3.0, 0.5, -0.75,
                                                                                    6.0, 9.0 * float(torch.log(torch.tensor(3.0, dtype=torch.float64)))]


def _worst_relative_error(fn, dfn, x: torch.Tensor) -> float:
    """The largest |torch's gradient - exact derivative| / |exact derivative| over x's elements,
    the derivative evaluated in SymPy at the exact binary value of each element."""
    leaf = x.clone().requires_grad_(True)
    fn(leaf).backward(torch.ones_like(leaf))
    t = sp.Symbol("t", real=True)
    d = sp.diff(dfn(t), t)
    worst = 0.0
    for xi, gi in zip(x.tolist(), leaf.grad.tolist()):
        exact = sp.N(d.subs(t, sp.Rational(Fraction(xi))), 30)
        worst = max(worst, float(abs((sp.Float(gi, 30) - exact) / exact)))
    return worst


@pytest.mark.parametrize("fn, expr", [(torch.sigmoid, lambda t: 1 / (1 + sp.exp(-t))), (torch.tanh, sp.tanh)],
                         ids=["sigmoid", "tanh"])
def test_activation_truth(fn, expr) -> None:
    """mlp.md's activation plots: in float32 torch's gradient is past float32's documented rtol
    (1e-4) somewhere on arange(-8, 8, 0.1) (rounding); in float64 it is within 1e-9 (agree)."""
    assert _worst_relative_error(fn, expr, x_act) > 1e-4
    assert _worst_relative_error(fn, expr, x_act.double()) < 1e-9


def test_overflow_truth() -> None:
    """softmax-regression-concise.md's warning: the scratch softmax at a large logit, and the
    scratch cross-entropy of a softmax that underflows, give torch a non-finite gradient where the
    mathematics has a finite one (the largest logit's softmax derivative is p(1 - p) with p = 1/(1 + e**-799
    + e**-800), and d/dO[0] of -log softmax(O)[0] is p0 - 1 with p0 = e**-800/(e**-800 + 2))."""
    for X in (torch.tensor([[800.0, 1.0, 0.0]], dtype=torch.float64), torch.tensor([[100.0, 1.0, 0.0]])):
        leaf = X.clone().requires_grad_(True)
        book.softmax(leaf)[0, 0].backward()
        assert not torch.isfinite(leaf.grad).all()
    O = torch.tensor([[-800.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    book.cross_entropy_of_softmax(O, torch.tensor([0])).backward()
    assert not torch.isfinite(O.grad).all()
    o = sp.Rational(-800)
    p0 = sp.exp(o) / (sp.exp(o) + 2)
    assert sp.N(p0 - 1, 30).is_finite and abs(float(p0 - 1) + 1) < 1e-300 + 1e-15
