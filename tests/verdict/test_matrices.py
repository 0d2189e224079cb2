"""Matrices: lowering, shapes, gradients with respect to matrix elements, Jacobians and VJPs.

The oracle for the mathematics is SymPy on the explicit matrix (element by element); for the
executed side, torch itself run on hand-written code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from conftest import no_hang
import sympy as sp
import torch

import symgrad as sg

from matrix_cases import (A, A_VAL, ALL_MATRIX_CASES, JACOBIAN, LOSS, MATRIX_CASES, X, X_VAL, MatrixCase, lse_ce,  # noqa: F401
                          naive_ce, o, w,
                          x0, x1, x2, y)


def _t(v: Any) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64, requires_grad=True)




@pytest.mark.parametrize("case", MATRIX_CASES, ids=lambda c: c.name)
def test_matrix_case_lowers_and_agrees_with_torch_and_sympy(case: MatrixCase, golden) -> None:
    lowered = sg.lower(case.expr)
    golden(f"lowering/{case.name}.py", lowered.source)
    assert "torch.transpose" not in lowered.source
    c = sg.compare(case.expr, at=case.at)
    # autograd: the hand-written torch function
    inputs = [_t(case.at[s]) for s in sorted(case.at, key=lambda s: s.name)]
    out = case.torch_fn(*inputs)
    grads = torch.autograd.grad(out, inputs)
    want = [float(v) for g in grads for v in g.reshape(-1)]
    assert [e.grad_autograd for e in c.entries] == pytest.approx(want, rel=1e-12)
    # symbolic: SymPy on the explicit matrix, element by element
    flat = case.expr
    subs: dict[Any, Any] = {}
    for s in sorted(case.at, key=lambda s: s.name):
        flat = flat.xreplace({s: sp.ImmutableMatrix(case.at[s])}) if False else flat
    explicit = case.expr
    syms = {}
    for s in case.at:
        elems = sp.ImmutableMatrix(s.rows, s.cols, lambda i, j: sp.Symbol(f"{s.name}_{i}{j}", real=True))
        explicit = explicit.xreplace({s: elems})
        for i in range(s.rows):
            for j in range(s.cols):
                syms[(s.name, i, j)] = elems[i, j]
                subs[elems[i, j]] = sp.nsimplify(case.at[s][i][j])
    if case.explicit is not None:
        explicit = case.explicit({s.name: sp.Matrix(s.rows, s.cols, lambda i, j: syms[(s.name, i, j)]) for s in case.at})
    explicit = explicit.doit()
    if isinstance(explicit, sp.MatrixBase):
        explicit = explicit[0, 0]
    for e in c.entries:
        parent, i, j = e.wrt.parent, int(e.wrt.i), int(e.wrt.j)
        exact = sp.diff(explicit, syms[(parent.name, i, j)]).subs(subs)
        assert abs(float(e.grad_symbolic) - float(sp.N(exact, 30))) <= 1e-15 * max(1.0, abs(float(sp.N(exact)))), e.wrt
        assert e.cause is sg.Cause.AGREE, (e.wrt, e.explanation)


def test_quadratic_loss_acceptance() -> None:
    c = sg.compare(LOSS, at={X: X_VAL, w: [[1.0], [-1.0]], y: [[0.0], [1.0]]}, wrt=[w])
    assert c.ok and c.cause is sg.Cause.AGREE
    assert [str(e.wrt) for e in c.entries] == ["w[0, 0]", "w[1, 0]"]
    assert [e.grad_symbolic for e in c.entries] == [-7, -10]
    assert [e.grad_executed for e in c.entries] == [-7, -10]
    assert [e.grad_autograd for e in c.entries] == [-7.0, -10.0]
    assert sp.sstr(c.entries[0].derivative) == "X.T*(X*w - y)"
    assert "@" in c.lowered.source and "[0, 0]" in c.lowered.source


def test_rank_one_column_gets_the_d2l_explanation() -> None:
    with pytest.raises(sg.ShapeError) as info:
        sg.compare(LOSS, at={X: X_VAL, w: torch.tensor([1.0, -1.0]), y: [[0.0], [1.0]]})
    text = str(info.value)
    assert text.startswith("w was declared with shape (2, 1)")
    assert "(2,)" in text and "reshape(-1, 1)" in text and "(n, n)" in text
    assert isinstance(info.value, ValueError)


def test_wrong_shape_names_both_shapes() -> None:
    with pytest.raises(sg.ShapeError) as info:
        sg.compare(LOSS, at={X: [[1.0, 2.0, 3.0]], w: [[1.0], [-1.0]], y: [[0.0], [1.0]]})
    assert "(2, 2)" in str(info.value) and "(1, 3)" in str(info.value)


def test_jacobian_and_vjp_of_an_explicit_matrix_output(golden) -> None:
    f = JACOBIAN.expr
    golden(f"lowering/{JACOBIAN.name}.py", sg.lower(f).source)
    c = sg.compare(f, at={x0: 1.0, x1: 2.0, x2: 3.0})
    jac = [[e.grad_symbolic for e in c.entries[:3]], [e.grad_symbolic for e in c.entries[3:]]]
    assert jac == [[2, 1, 0], [0, 1, 6]]
    assert [e.grad_executed for e in c.entries] == [2, 1, 0, 0, 1, 6]
    assert [e.grad_autograd for e in c.entries] == [2.0, 1.0, 0.0, 0.0, 1.0, 6.0]
    assert [e.output for e in c.entries[:3]] == [(0, 0)] * 3 and c.entries[3].output == (1, 0)
    v = sg.compare(f, at={x0: 1.0, x1: 2.0, x2: 3.0}, v=[1.0, 2.0])
    assert [e.grad_executed for e in v.entries] == [2, 3, 12]
    assert [e.grad_autograd for e in v.entries] == [2.0, 3.0, 12.0]
    assert [e.grad_symbolic for e in v.entries] == [2, 3, 12]
    xs = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    out = torch.stack([xs[0] * xs[1], xs[1] + xs[2] ** 2])
    out.backward(gradient=torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert xs.grad.tolist() == [2.0, 3.0, 12.0]


def test_v_on_a_scalar_output_is_refused_with_a_sentence() -> None:
    with pytest.raises(sg.OptionError, match="scalar"):
        sg.compare(x0**2, at={x0: 1.0}, v=[1.0])


def test_cross_entropy_overflow_and_log_sum_exp() -> None:
    big = {o: [[1000.0], [0.0], [-5.0]]}
    naive = sg.compare(naive_ce, at=big)
    assert naive.cause is sg.Cause.OVERFLOW
    assert "logsumexp" in naive.entries[0].hint
    stable = sg.compare(lse_ce, at=big)
    assert stable.ok
    assert [e.grad_autograd for e in stable.entries] == pytest.approx([1.0, -1.0, math.exp(-1005)], abs=1e-300)


def test_matrix_report_shows_matrix_values() -> None:
    c = sg.compare(LOSS, at={X: X_VAL, w: [[1.0], [-1.0]], y: [[0.0], [1.0]]}, wrt=[w])
    text = str(c)
    assert "w[0, 0]" in text and "X_at_w = X*w -> [-1; -1]" in text


# ---------------------------------------------------------------- sizes for exact work

from symgrad.program.program import MAX_MATRIX_ELEMENTS  # noqa: E402


@pytest.mark.parametrize("make, count, first", [
    (lambda s: sp.Trace(sp.MatrixSymbol("B", 1000, 1000)) * s, 1_000_000, "The matrix input B (1000, 1000) has 1,000,000"),
    (lambda s: sp.Determinant(sp.MatrixSymbol("B", 800, 800)) + s, 640_000, "The matrix input B (800, 800) has 640,000"),
    (lambda s: sp.Trace(sp.MatrixSymbol("B", 600, 600)) + sp.Trace(sp.MatrixSymbol("C", 600, 600)) * s, 720_000,
     "The matrix inputs B (600, 600), C (600, 600) have 720,000"),
    (lambda s: sp.Trace(sp.MatrixSymbol("u", 1000, 1) * sp.MatrixSymbol("v", 1, 1000)) * s, 1_000_000,
     "u*v, of shape (1000, 1000), has 1,000,000"),
    (lambda s: sp.Trace(sp.Identity(2000)) * s, 4_000_000, "Identity(2000), of shape (2000, 2000), has 4,000,000"),
], ids=["trace", "det", "two-inputs", "outer-product", "identity"])
def test_a_matrix_too_large_for_exact_work_is_refused_first(make, count: int, first: str) -> None:
    f = make(x0)
    with no_hang("a refused matrix size"), pytest.raises(sg.ShapeError) as err:
        sg.compare(f, at={x0: 1.0})  # no values for the matrices: the size is refused first
    text = str(err.value)
    assert text.startswith(first), text
    assert f"more than MAX_MATRIX_ELEMENTS = {MAX_MATRIX_ELEMENTS:,}" in text
    assert f"about {count * 1024 / 2**20:,.0f} MiB" in text
    assert "Fix: use a smaller matrix" in text and text.endswith("See docs/errors.md#shapeerror")
    with pytest.raises(sg.ShapeError):
        sg.lower(f)


def test_a_matrix_within_the_limit_still_compares() -> None:
    B = sp.MatrixSymbol("B", 20, 20)
    value = np.arange(400, dtype=np.float64).reshape(20, 20) / 400
    c = sg.compare(sp.Trace(B) * x0, at={B: value, x0: 2.0})
    assert c.cause.id == "agree"
    by_wrt = {str(e.wrt): e for e in c.entries}
    from fractions import Fraction

    exact = sum(Fraction(float(value[k, k])) for k in range(20))  # the diagonal's exact binary values
    assert by_wrt["x0"].grad_executed == sp.Rational(exact.numerator, exact.denominator)
    assert by_wrt["B[3, 3]"].grad_autograd == 2.0 and by_wrt["B[3, 4]"].grad_autograd == 0.0


def test_exact_work_too_large_is_refused_before_it_starts() -> None:
    """Data included: a large X times W is counted in multiply-adds (the work the exact side does),
    not only in elements, and refused with the line that costs most."""
    from symgrad.verdict.point import MAX_EXACT_WORK, check_work, exact_work

    Xb, Wb = sp.MatrixSymbol("Xb", 300, 500), sp.MatrixSymbol("Wb", 500, 700)
    lowered = sg.lower(sp.OneMatrix(1, 300) * (Xb * Wb) * sp.OneMatrix(700, 1))
    work, line = exact_work(lowered)
    assert work >= 300 * 500 * 700 > MAX_EXACT_WORK
    assert "Xb @ Wb" in line
    with pytest.raises(sg.ShapeError) as err:
        check_work(lowered)
    assert "MAX_EXACT_WORK" in str(err.value) and "`Xb_at_Wb = Xb @ Wb`" in str(err.value)
    assert "Fix: compare on a smaller batch" in str(err.value)
    small = sg.lower(sp.OneMatrix(1, 3) * (sp.MatrixSymbol("P", 3, 4) * sp.MatrixSymbol("Q", 4, 5)) * sp.OneMatrix(5, 1))
    assert exact_work(small)[0] >= 3 * 4 * 5


def test_a_jacobian_too_large_is_refused_before_the_work() -> None:
    A = sp.MatrixSymbol("A", 300, 300)
    B = sp.MatrixSymbol("B", 300, 300)
    rng = np.random.default_rng(0)
    with no_hang("a refused Jacobian size"), pytest.raises(sg.ShapeError, match="v="):
        sg.compare(A * B, at={A: rng.standard_normal((300, 300)), B: rng.standard_normal((300, 300))})


@pytest.mark.parametrize("values", [
    [[1.0, 2.0], [2.0, 4.0]],
    [[1.0, 2.0, 3.0], [2.0, 4.0, 6.5], [0.5, 1.0, 1.0]],  # rank 2: columns 0 and 1 are parallel
])
def test_the_gradient_of_a_singular_determinant_names_torchs_det_backward(values: list[list[float]]) -> None:
    """d det(A) / dA is A's cofactor matrix, not 0 at a matrix of rank n - 1; torch's backward of
    torch.linalg.det returns something else there. The explanation says that (not 'rounding
    accumulates over 2 steps'), autograd is torch's own, and the written-out determinant agrees."""
    n = len(values)
    A = sp.MatrixSymbol("A", n, n)
    c = sg.compare(sp.Determinant(A), at={A: values})
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    torch.linalg.det(t).backward()
    assert [e.grad_autograd for e in c.entries] == t.grad.flatten().tolist()
    cofactors = sp.Matrix(values).applyfunc(sp.nsimplify).adjugate().T
    assert [e.grad_executed for e in c.entries] == list(cofactors)
    bad = [e for e in c.entries if not e.ok]
    assert bad and all(e.cause.id == "rounding" and "determinant of a singular matrix" in e.explanation
                       and "write the determinant out" in e.hint for e in bad)
    assert sg.compare(sp.Matrix(A).det(), at={A: values}).ok
