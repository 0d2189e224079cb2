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
