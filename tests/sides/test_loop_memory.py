"""A loop's executed path keeps one adjoint per step once (issue 23, item 3): where no step is cut,
the executed and the mathematical reverse accumulations are the same computation, and share one
list; where a step is cut (detach), they stay two, and each is still right.

Ground truth: SymPy's derivative of the unrolled loop, evaluated at the exact binary value of
the point with 50 digits, and torch's float64 autograd of the same loop written by hand.
"""

from __future__ import annotations

import sympy as sp
import torch
from sympy.codegen.ast import Assignment, CodeBlock, For

import symgrad as sg

x, b, i = sp.symbols("x b i")
N = 20
POINT = 0.7


def loop(update: sp.Expr) -> sg.Program:
    return sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(N), CodeBlock(Assignment(b, update)))),
                      output=b)


def unrolled(detached: bool) -> tuple[sp.Expr, sp.Expr]:
    """The loop written out, and its derivative: with `detached`, cos(b) is a constant of each
    iteration (torch's detach), so its derivative is taken with cos(b_k) frozen."""
    bk: sp.Expr = x
    dk: sp.Expr = sp.Integer(1)  # d b_k / d x along the executed path
    for _ in range(N):
        if detached:
            dk = dk + sp.cos(bk) / N
        else:
            dk = dk + (-sp.sin(bk) * dk * x + sp.cos(bk)) / N
        bk = bk + sp.cos(bk) * x / N
    return bk, dk


def torch_loop(detached: bool) -> float:
    t = torch.tensor(POINT, dtype=torch.float64, requires_grad=True)
    v = t
    for _ in range(N):
        c = torch.cos(v)
        v = v + (c.detach() if detached else c) * t / N
    (g,) = torch.autograd.grad(v, t)
    return float(g)


def _close(exact: sp.Basic, truth: sp.Basic) -> bool:
    return abs(sp.Float(exact, 50) - truth) <= sp.Float(1e-25) * abs(truth)


def test_a_loop_without_cut_steps_keeps_one_list_of_adjoints_for_both_sides() -> None:
    c = sg.compare(loop(b + sp.cos(b) * x / N), at={x: POINT}, max_iterations=10 * N)
    path = c.executed_path
    assert not path.has_cut
    assert path.adjoints("math") is path.adjoints("executed")  # one reverse pass, one list
    _, d = unrolled(detached=False)
    truth = d.subs(x, sp.Float(POINT, 60)).evalf(50)  # 0.7 as float64 holds, to 50 digits
    (entry,) = c.entries
    assert _close(entry.grad_executed, truth) and _close(entry.grad_symbolic, truth)
    assert abs(torch_loop(detached=False) - float(truth)) <= 1e-13 * abs(float(truth))
    assert c.cause.id == "agree"
    # the shared list is the mathematical accumulation itself, step by step
    fresh = path._adjoints("math")
    assert len(fresh) == len(path.steps)
    assert [str(a) for a in fresh] == [str(a) for a in path.adjoints("math")]


def test_a_loop_with_a_detached_step_keeps_the_two_accumulations_apart() -> None:
    c = sg.compare(loop(b + sg.detach(sp.cos(b)) * x / N), at={x: POINT}, max_iterations=10 * N)
    path = c.executed_path
    assert path.has_cut
    executed, math = path.adjoints("executed"), path.adjoints("math")
    assert executed is not math
    assert [str(a) for a in math] == [str(a) for a in path._adjoints("math")]
    assert [str(a) for a in executed] == [str(a) for a in path._adjoints("executed")]
    _, d_detached = unrolled(detached=True)
    _, d_math = unrolled(detached=False)
    at = sp.Float(POINT, 60)
    (entry,) = c.entries
    assert _close(entry.grad_executed, d_detached.subs(x, at).evalf(50))
    assert _close(entry.grad_symbolic, d_math.subs(x, at).evalf(50))
    assert abs(torch_loop(detached=True) - float(entry.grad_executed)) <= 1e-13 * abs(float(entry.grad_executed))
    assert c.cause.id == "detach"


# --------------------------------------------------------------------------- what a pass keeps, and when
# A pass of a loop whose variable no statement reads keeps no step for the variable (the path is
# the input, the first assignment and the body's steps); where the variable is read, each pass
# keeps it. The autograd column runs before the exact sides where every loop is a `for` over
# constant bounds within max_iterations, and its gradient is torch's own, bit for bit.

import mpmath  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402
from sympy.codegen.ast import While  # noqa: E402

from symgrad.sides.loop_memory import LARGE, autograd_first, loop_vars_read  # noqa: E402
from symgrad.sides.lowering import lower  # noqa: E402

y = sp.Symbol("y")


def polynomial_loop(n: int, reads_i: bool) -> sg.Program:
    update = b * x + i if reads_i else b * x + 1
    return sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(n), CodeBlock(Assignment(b, update)))),
                      output=b)


def polynomial_truth(n: int, reads_i: bool, at: sp.Rational) -> sp.Rational:
    """d b_n / d x of the loop written out, exactly (SymPy)."""
    bk: sp.Expr = x
    for k in range(n):
        bk = bk * x + (k if reads_i else 1)
    return sp.diff(sp.expand(bk), x).subs(x, at)


def torch_polynomial(n: int, reads_i: bool, at: float) -> float:
    t = torch.tensor(at, dtype=torch.float64, requires_grad=True)
    v = t
    for k in range(n):
        v = v * t + (k if reads_i else 1)
    (g,) = torch.autograd.grad(v, t)
    return float(g)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), reads_i=st.booleans(), num=st.integers(-12, 12))
def test_a_loop_keeps_its_variable_per_pass_only_where_a_statement_reads_it(n: int, reads_i: bool, num: int) -> None:
    at = sp.Rational(num, 8)  # a binary value: the float point is the exact one
    c = sg.compare(polynomial_loop(n, reads_i), at={x: float(at)})
    path = c.executed_path
    ops = [s.op for s in path.steps]
    assert ops.count("loop_var") == (n if reads_i else 0)
    (entry,) = c.entries
    truth = polynomial_truth(n, reads_i, at)
    assert sp.Rational(entry.grad_executed) == truth and sp.Rational(entry.grad_symbolic) == truth
    assert entry.grad_autograd == torch_polynomial(n, reads_i, float(at))  # torch's own, bit for bit
    # the for line counts its passes either way
    line = next(k for k, text in enumerate(c.lowered.source.splitlines(), 1) if text.strip().startswith("for i in"))
    assert path.line_counts[line] == n


def test_a_loop_variable_read_by_an_inner_loop_s_bounds_is_kept() -> None:
    # b = x; for i in range(4): for j in range(i): b = b*x   ->  b = x**7 (0 + 1 + 2 + 3 passes)
    j = sp.Symbol("j")
    inner = For(j, sp.Range(i), CodeBlock(Assignment(b, b * x)))
    program = sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(4), CodeBlock(inner))), output=b)
    c = sg.compare(program, at={x: 1.5})
    outer = next(s for s in c.lowered.body if hasattr(s, "var"))
    assert loop_vars_read(c.lowered) == frozenset({outer.var})  # i is read, j is not
    assert c.value_exact == sp.Rational(3, 2) ** 7
    (entry,) = c.entries
    assert sp.Rational(entry.grad_executed) == 7 * sp.Rational(3, 2) ** 6
    assert entry.grad_autograd == 7 * 1.5 ** 6
    assert [s.op for s in c.executed_path.steps].count("loop_var") == 4  # one per pass of i, none of j


def test_the_autograd_column_runs_first_only_where_every_loop_ends_by_construction() -> None:
    n = sp.Symbol("n")
    constant = lower(polynomial_loop(LARGE, False))
    assert autograd_first(constant, LARGE) and not autograd_first(constant, LARGE - 1)  # within or past the limit
    assert not autograd_first(lower(polynomial_loop(LARGE - 1, False)), LARGE)  # too small a graph to matter
    j = sp.Symbol("j")  # 40 passes of 25: 1,000 passes of the inner body (and 40 of the outer)
    nested = sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(40), CodeBlock(
        For(j, sp.Range(25), CodeBlock(Assignment(b, b * x)))))), output=b)
    assert autograd_first(lower(nested), 40) and not autograd_first(lower(nested), 39)
    bounded_by_input = sg.Program(inputs=[x, n], body=CodeBlock(Assignment(b, x), For(i, sp.Range(n),
                                                                CodeBlock(Assignment(b, b * x)))), output=b)
    assert not autograd_first(sg.compare(bounded_by_input, at={x: 0.5, n: 3}).lowered, 10)
    d2l = sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), While(sp.Abs(b) < 10, CodeBlock(Assignment(b, 2 * b)))),
                     output=b)
    assert not autograd_first(sg.compare(d2l, at={x: 0.75}).lowered, 10)
    assert not autograd_first(sg.compare(sp.sin(x), at={x: 0.5}).lowered, 10)  # no loop: as ever


def test_a_loop_past_the_limit_is_refused_before_torch_runs_it() -> None:
    # 10^9 passes over constant bounds: the exact run refuses it (torch would run for hours)
    program = sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(10**9), CodeBlock(Assignment(b, b * x)))),
                         output=b)
    with pytest.raises(sg.LoopLimitError):
        sg.compare(program, at={x: 0.5})


def test_a_compared_loop_gives_torch_s_gradient_bit_for_bit() -> None:
    c = sg.compare(loop(b + sp.cos(b) * x / N), at={x: POINT}, max_iterations=10 * N)
    (entry,) = c.entries
    assert entry.grad_autograd == torch_loop(detached=False)
    assert c.value_autograd == _torch_value()


def _torch_value() -> float:
    t = torch.tensor(POINT, dtype=torch.float64)
    v = t
    for _ in range(N):
        v = v + torch.cos(v) * t / N
    return float(v)


def test_a_loop_large_enough_to_run_autograd_first_is_compared_as_before() -> None:
    """b = b + cos(b)*x/n for n = LARGE passes: the autograd column runs first (its graph freed before
    the exact path is built); autograd's value and gradient are torch's own loop by hand, bit for
    bit, and the executed derivative is the derivative's recurrence in 60-digit arithmetic."""
    n = LARGE
    program = sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(n), CodeBlock(
        Assignment(b, b + sp.cos(b) * x / n)))), output=b)
    c = sg.compare(program, at={x: POINT}, max_iterations=n)
    assert autograd_first(c.lowered, n)
    t = torch.tensor(POINT, dtype=torch.float64, requires_grad=True)
    v = t
    for _ in range(n):
        v = v + torch.cos(v) * t / n
    (g,) = torch.autograd.grad(v, t)
    (entry,) = c.entries
    assert entry.grad_autograd == float(g) and c.value_autograd == float(v.detach())
    with mpmath.workdps(60):
        xv, bk, dk = mpmath.mpf(POINT), mpmath.mpf(POINT), mpmath.mpf(1)
        for _ in range(n):
            bk, dk = bk + mpmath.cos(bk) * xv / n, dk + (-mpmath.sin(bk) * dk * xv + mpmath.cos(bk)) / n
        truth = sp.Float(dk, 50)
    assert _close(entry.grad_executed, truth) and _close(entry.grad_symbolic, truth)
    assert [s.op for s in c.executed_path.steps].count("loop_var") == 0 and c.cause.id == "agree"
