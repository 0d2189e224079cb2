"""Programs of tensors (issue 20, item 4): a Program's inputs and variables may be MatrixSymbols,
loops update matrices, and `if`/`while` test scalars computed from them (a norm, a sum). Checked
against SymPy on the unrolled, explicit mathematics and against torch running the same steps."""

from __future__ import annotations

import pytest
import sympy as sp
import torch
from sympy.codegen.ast import Assignment, CodeBlock, For, While
from sympy.matrices.expressions.matexpr import MatrixElement

import symgrad as sg
from symgrad.program.elementwise import MatrixPiecewise
from symgrad.program.primitives import vector_norm

X = sp.MatrixSymbol("X", 3, 2)
w = sp.MatrixSymbol("w", 2, 1)
y = sp.MatrixSymbol("y", 3, 1)
w1 = sp.MatrixSymbol("w1", 2, 1)
k = sp.Symbol("k")
LR = sp.Rational(1, 10)
X_VAL = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
Y_VAL = [[1.0], [0.0], [2.0]]


def gradient_descent(steps: int) -> sg.Program:
    update = Assignment(w1, w1 - LR * X.T * (X * w1 - y))
    return sg.Program([w, X, y], [Assignment(w1, w), For(k, sp.Range(steps), CodeBlock(update))],
                      MatrixElement(w1.T * w1, 0, 0))


@pytest.mark.parametrize("at_w", [[[1.0], [2.0]], [[-0.5], [0.25]]])
def test_gradient_descent_steps_on_a_weight_vector(at_w: list[list[float]]) -> None:
    c = sg.compare(gradient_descent(3), at={w: at_w, X: X_VAL, y: Y_VAL}, wrt=[w])
    # the mathematics: the three steps unrolled on explicit matrices, differentiated by SymPy
    ws = sp.Matrix(2, 1, sp.symbols("w0 w1_", real=True))
    Xm, ym = sp.Matrix(X_VAL).applyfunc(sp.nsimplify), sp.Matrix(Y_VAL).applyfunc(sp.nsimplify)
    cur = ws
    for _ in range(3):
        cur = cur - LR * Xm.T * (Xm * cur - ym)
    loss = (cur.T * cur)[0, 0]
    point = {ws[0]: sp.nsimplify(at_w[0][0]), ws[1]: sp.nsimplify(at_w[1][0])}
    truth = [sp.diff(loss, s).subs(point) for s in ws]
    assert [e.grad_symbolic for e in c.entries] == truth  # exact rationals, equal
    assert [e.grad_executed for e in c.entries] == truth
    # autograd: torch running the same steps
    wt = torch.tensor(at_w, dtype=torch.float64, requires_grad=True)
    Xt, yt = torch.tensor(X_VAL, dtype=torch.float64), torch.tensor(Y_VAL, dtype=torch.float64)
    cur_t = wt
    for _ in range(3):
        cur_t = cur_t - (Xt.T @ (Xt @ cur_t - yt)) / 10
    (g,) = torch.autograd.grad((cur_t.T @ cur_t)[0, 0], [wt])
    assert [e.grad_autograd for e in c.entries] == pytest.approx([float(v) for v in g.reshape(-1)], rel=1e-14)
    assert c.cause is sg.Cause.AGREE
    assert "for k in range(3):" in c.lowered.source


a = sp.MatrixSymbol("a", 3, 1)
b = sp.MatrixSymbol("b", 3, 1)
NORM = vector_norm(*[b[i, 0] for i in range(3)])
D2L = sg.Program([a], [Assignment(b, 2 * a), While(NORM < 1000, CodeBlock(Assignment(b, 2 * b)))],
                 MatrixElement(sp.OneMatrix(1, 3) * b, 0, 0))


def test_a_while_loop_on_a_norm_of_a_vector() -> None:
    at = [[0.5], [-1.0], [0.25]]
    c = sg.compare(D2L, at={a: at})
    # b = 2**10 * a (the norm of 2a is 2.29; nine doublings pass 1000), so d sum(b) / da = 1024 each
    assert [e.grad_symbolic for e in c.entries] == [1024, 1024, 1024]
    assert [e.grad_autograd for e in c.entries] == [1024.0, 1024.0, 1024.0]
    assert c.cause is sg.Cause.AGREE
    # the test reads a number computed from the matrix, again at the end of each pass
    assert c.lowered.source.count("torch.linalg.vector_norm") == 2


def test_a_while_loop_that_ends_exactly_on_its_threshold() -> None:
    # 2a has norm 1000/2**9: after 9 doublings the norm is exactly 1000 and the loop stops; just
    # below, it doubles once more. Only a[0] moves the norm across (a[1] = a[2] = 0 raise it on both sides).
    c = sg.compare(D2L, at={a: [[1000 / 2**10], [0.0], [0.0]]})
    assert [e.cause.id for e in c.entries] == ["control-flow", "agree", "agree"]
    assert c.entries[0].grad_symbolic is None
    assert "1000" in c.entries[0].explanation


def test_if_on_a_sum_chooses_a_matrix() -> None:
    c_ = sp.MatrixSymbol("c", 3, 1)
    total = MatrixElement(sp.OneMatrix(1, 3) * a, 0, 0)
    chosen = MatrixPiecewise((a, total > 0), (100 * a, True))
    p = sg.Program([a], [Assignment(c_, chosen)], MatrixElement(c_.T * c_, 0, 0))
    for at, factor in (([[1.0], [2.0], [-0.5]], 1), ([[1.0], [-2.0], [-0.5]], 100**2)):
        comp = sg.compare(p, at={a: at})
        assert [e.grad_symbolic for e in comp.entries] == [2 * factor * sp.nsimplify(v[0]) for v in at]
        assert comp.cause is sg.Cause.AGREE
    assert "if total > 0:" in sg.lower(p).source or " > 0:" in sg.lower(p).source


def test_branches_of_one_matrix_keep_its_shape() -> None:
    with pytest.raises(sg.ShapeError) as err:
        MatrixPiecewise((a, a[0, 0] > 0), (a.T, True))
    assert "keeps one shape" in str(err.value) and "Fix:" in str(err.value)
