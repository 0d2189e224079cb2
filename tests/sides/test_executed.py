"""The executed side against PyTorch itself.

For each program, `grad_executed` (symgrad's exact derivative of the path that ran) must equal
what `torch.autograd` reports for a torch function written by hand in this file: never symgrad's
generated code. The expected shape of the executed path (how often a loop test ran, how many
iterations) is counted by running the same loop in plain Python here.

Points are chosen so that float64 autograd is exact (powers of two, small integers) or, where it
cannot be, compared with a tight relative tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
import sympy as sp
import torch
from sympy.codegen.ast import Assignment, CodeBlock, For, While

import symgrad as sg
from cases import d2l_control_flow as shared_d2l_program

a, b, c = sp.symbols("a b c")
x, y, z, s, i, u = sp.symbols("x y z s i u")


def torch_grads(fn: Callable[..., torch.Tensor], *values: float) -> list[float]:
    """d fn / d each input at `values`, by torch.autograd in float64."""
    inputs = [torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in values]
    out = fn(*inputs)
    grads = torch.autograd.grad(out, inputs, allow_unused=True)
    return [0.0 if g is None else g.item() for g in grads]


def executed(comparison: sg.Comparison) -> list[sp.Basic]:
    return [e.grad_executed for e in comparison.entries]


def assert_exactly(exact: Sequence[sp.Basic], floats: Sequence[float]) -> None:
    """Exact SymPy numbers equal torch's floats (used where float64 is exact at the point)."""
    assert len(exact) == len(floats)
    for e, f in zip(exact, floats):
        assert e is not None
        assert float(e) == f, (exact, floats)


def line_where(comparison: sg.Comparison, prefix: str) -> int:
    """The generated line (1-based) whose code starts with `prefix` (comments skipped)."""
    for k, text in enumerate(comparison.lowered.source.splitlines(), 1):
        if text.strip().startswith(prefix):
            return k
    raise AssertionError(f"no line starts with {prefix!r}:\n{comparison.lowered.source}")


# --------------------------------------------------------------------------- D2L's while/if


def d2l_program() -> sg.Program:
    return shared_d2l_program()


def d2l_torch(a_: torch.Tensor) -> torch.Tensor:
    # D2L's own f(a), for a scalar a.
    b_ = a_ * 2
    while b_.abs() < 1000:
        b_ = b_ * 2
    if b_ > 0:
        c_ = b_
    else:
        c_ = 100 * b_
    return c_


def d2l_counts(a_: float) -> tuple[int, int]:
    """(times the while condition is tested, times the body runs), by plain Python."""
    b_ = 2 * a_
    tests = body = 0
    while True:
        tests += 1
        if not abs(b_) < 1000:
            return tests, body
        b_ = 2 * b_
        body += 1


@pytest.mark.parametrize(
    "point",
    [1.5409961082440433, 0.6613521715704522, 0.39229682477920974, 0.48828125,
     math.nextafter(0.48828125, 0), -0.3, 1000.0, 2.0**-30],
)
def test_d2l_executed_matches_torch(point):
    comparison = sg.compare(d2l_program(), at={a: point})
    assert_exactly(executed(comparison), torch_grads(d2l_torch, point))

    tests, body = d2l_counts(point)
    path = comparison.executed_path
    while_line = line_where(comparison, "while ")
    body_line = line_where(comparison, "b = 2 * b")
    assert path.line_counts[while_line] == tests
    assert path.line_counts.get(body_line, 0) == body
    loop_tests = [d for d in path.decisions if d.kind == "while"]
    assert len(loop_tests) == tests
    assert [d.taken for d in loop_tests] == [True] * body + [False]
    (branch,) = [d for d in path.decisions if d.kind == "if"]
    assert branch.taken == (0 if point > 0 else 1)
    # input, b = 2*a, one step per doubling, and the branch's c = b (or 100*b)
    assert len(path.steps) == 1 + 1 + body + 1


def test_d2l_at_1_54_runs_the_loop_nine_times():
    # b = 3.08...: 9 doublings reach 1577.98; the condition is tested 10 times.
    assert d2l_counts(1.5409961082440433) == (10, 9)
    comparison = sg.compare(d2l_program(), at={a: 1.5409961082440433})
    path = comparison.executed_path
    assert path.line_counts[line_where(comparison, "while ")] == 10
    assert path.line_counts[line_where(comparison, "b = 2 * b")] == 9
    assert len(path.decisions) == 11  # ten loop tests and the if
    assert comparison.value_exact == sp.Rational(1.5409961082440433) * 2**10  # exact doubling


def test_d2l_on_the_threshold_path_is_flagged():
    comparison = sg.compare(d2l_program(), at={a: 0.48828125})
    ties = comparison.executed_path.ties
    assert [d.kind for d in ties] == ["while"]
    assert ties[0].taken is False  # the last test: |b| = 1000 is not < 1000
    assert comparison.executed_path.line_counts[line_where(comparison, "b = 2 * b")] == 10


# --------------------------------------------------------------------------- loops


def test_for_loop_power_matches_torch():
    program = sg.Program([x], CodeBlock(Assignment(s, 1), For(i, sp.Range(3), CodeBlock(Assignment(s, s * x)))), s)

    def power(x_):
        s_ = torch.tensor(1.0, dtype=torch.float64)
        for _ in range(3):
            s_ = s_ * x_
        return s_

    for point in (2.0, -1.5, 0.0):
        comparison = sg.compare(program, at={x: point})
        assert_exactly(executed(comparison), torch_grads(power, point))
        path = comparison.executed_path
        # no statement reads i: no step per pass is kept for it, its line still counts 3 passes
        assert [st.op for st in path.steps].count("loop_var") == 0
        assert path.line_counts[line_where(comparison, "s = s * x")] == 3
        assert path.line_counts[line_where(comparison, "for i in range(3)")] == 3


def test_loop_with_sine_matches_torch_closely():
    # b = a; five times b = 2*b + sin(b): not exact in float64, but 5 steps lose few digits.
    program = sg.Program(
        [a], CodeBlock(Assignment(b, a), For(i, sp.Range(5), CodeBlock(Assignment(b, 2 * b + sp.sin(b))))), b
    )

    def torch_fn(a_):
        b_ = a_
        for _ in range(5):
            b_ = 2 * b_ + torch.sin(b_)
        return b_

    for point in (0.1, 1.0, -2.5):
        comparison = sg.compare(program, at={a: point})
        (grad,) = torch_grads(torch_fn, point)
        assert float(comparison.entries[0].grad_executed) == pytest.approx(grad, rel=1e-12)


def test_while_loop_counting_matches_torch():
    # y = x; while y < 10: y = 3*y/2  (x > 0): dy/dx = (3/2)**n.
    program = sg.Program(
        [x], CodeBlock(Assignment(y, x), While(y < 10, CodeBlock(Assignment(y, sp.Rational(3, 2) * y)))), y
    )

    def torch_fn(x_):
        y_ = x_
        while y_ < 10:
            y_ = 1.5 * y_
        return y_

    for point in (1.0, 0.25, 9.5, 12.0):
        comparison = sg.compare(program, at={x: point})
        assert_exactly(executed(comparison), torch_grads(torch_fn, point))
        n, v = 0, point
        while v < 10:
            v, n = 1.5 * v, n + 1
        assert comparison.entries[0].grad_executed == sp.Rational(3, 2) ** n
        assert len([d for d in comparison.executed_path.decisions if d.kind == "while"]) == n + 1


# --------------------------------------------------------------------------- detach, item, no_grad


def test_detach_program_matches_torch():
    program = sg.Program([x], CodeBlock(Assignment(y, x * x), Assignment(u, sg.detach(y)), Assignment(z, u * x)), z)

    def torch_fn(x_):
        y_ = x_ * x_
        u_ = y_.detach()
        return u_ * x_

    comparison = sg.compare(program, at={x: 2})
    assert_exactly(executed(comparison), torch_grads(torch_fn, 2.0))
    assert executed(comparison) == [4]
    cut = [st for st in comparison.executed_path.steps if st.cut]
    assert [st.cut for st in cut] == ["detach"]


def test_item_matches_torch():
    def torch_fn(x_):
        return x_ * torch.tensor(x_.item(), dtype=torch.float64)

    comparison = sg.compare(x * sg.item(x), at={x: 3})
    assert_exactly(executed(comparison), torch_grads(torch_fn, 3.0))
    assert [st.cut for st in comparison.executed_path.steps if st.cut] == ["graph-break"]


def test_no_grad_matches_torch():
    def torch_fn(x_):
        with torch.no_grad():
            two_x = 2 * x_
        return x_ * two_x

    comparison = sg.compare(x * sg.no_grad(2 * x), at={x: 3})
    assert_exactly(executed(comparison), torch_grads(torch_fn, 3.0))


def test_detach_of_a_sum_keeps_the_other_part():
    # f = x**2 + detach(x**3): only the first term is differentiated.
    def torch_fn(x_):
        return x_**2 + (x_**3).detach()

    comparison = sg.compare(x**2 + sg.detach(x**3), at={x: 1.5})
    assert_exactly(executed(comparison), torch_grads(torch_fn, 1.5))
    assert executed(comparison) == [3]


# --------------------------------------------------------------------------- torch.where


@pytest.mark.parametrize("point", [2.0, 0.0, 1.0, -3.0])
def test_where_matches_torch(point):
    f = sp.Piecewise((x**2, x > 1), (3 * x, True))

    def torch_fn(x_):
        return torch.where(x_ > 1, x_**2, 3 * x_)

    comparison = sg.compare(f, at={x: point}, branches="where")
    assert_exactly(executed(comparison), torch_grads(torch_fn, point))
    # both branches ran: the input, x**2, 3*x and the where
    assert len(comparison.executed_path.steps) == 4


def test_where_trap_executed_is_the_double_where_gradient():
    # At -1 autograd of the single where is nan; the executed derivative is 0, which is what
    # the double-where program gives in torch.
    f = sp.Piecewise((sp.sqrt(x), x > 0), (0, True))

    def single(x_):
        return torch.where(x_ > 0, torch.sqrt(x_), torch.zeros_like(x_))

    def double(x_):
        safe = torch.where(x_ > 0, x_, torch.ones_like(x_))
        return torch.where(x_ > 0, torch.sqrt(safe), torch.zeros_like(x_))

    comparison = sg.compare(f, at={x: -1.0}, branches="where")
    assert math.isnan(torch_grads(single, -1.0)[0])
    assert math.isnan(comparison.entries[0].grad_autograd)
    assert_exactly(executed(comparison), torch_grads(double, -1.0))
    assert_exactly(executed(sg.compare(f, at={x: 4.0}, branches="where")), torch_grads(double, 4.0))


# --------------------------------------------------------------------------- kinks and their conventions


def test_max_tie_splits_in_half():
    comparison = sg.compare(sp.Max(x, y), at={x: 2, y: 2})
    assert executed(comparison) == [sp.Rational(1, 2), sp.Rational(1, 2)]
    assert_exactly(executed(comparison), torch_grads(torch.maximum, 2.0, 2.0))


def test_min_tie_splits_in_half():
    comparison = sg.compare(sp.Min(x, y), at={x: -1, y: -1})
    assert executed(comparison) == [sp.Rational(1, 2), sp.Rational(1, 2)]
    assert_exactly(executed(comparison), torch_grads(torch.minimum, -1.0, -1.0))


def test_three_way_max_tie_sums_to_one():
    # torch folds Max pairwise: maximum(maximum(x, y), z). The gradients sum to 1, unlike
    # SymPy's own Max derivative at a tie (3/2), which is a convention, not the mathematics.
    comparison = sg.compare(sp.Max(x, y, z), at={x: 1, y: 1, z: 1})
    grads = executed(comparison)
    assert sum(grads) == 1
    assert grads == [sp.Rational(1, 4), sp.Rational(1, 4), sp.Rational(1, 2)]
    assert_exactly(grads, torch_grads(lambda p, q, r: torch.maximum(torch.maximum(p, q), r), 1.0, 1.0, 1.0))


@pytest.mark.parametrize("point", [1.0, -1.0, 0.0, 2.0, -2.0])
def test_clamp_at_and_beside_its_boundaries(point):
    comparison = sg.compare(sp.Min(sp.Max(x, -1), 1), at={x: point})
    assert_exactly(executed(comparison), torch_grads(lambda t: torch.clamp(t, -1, 1), point))
    assert comparison.entries[0].grad_executed == (1 if abs(point) <= 1 else 0)


@pytest.mark.parametrize(
    ("expr", "torch_fn", "expected"),
    [
        (sp.Max(x, 0), torch.relu, 0),  # relu'(0) = 0
        (sp.Max(x, 0) + 0 * x, lambda t: torch.relu(t), 0),
        (sp.Abs(x), torch.abs, 0),  # abs'(0) = 0
        ((x + sp.Abs(x)) / 2, lambda t: (t + torch.abs(t)) / 2, sp.Rational(1, 2)),
        (sp.floor(x), torch.floor, 0),
        (sp.sign(x), torch.sign, 0),
    ],
    ids=["relu", "relu-plus-zero", "abs", "half-abs", "floor", "sign"],
)
def test_kink_conventions_at_zero(expr, torch_fn, expected):
    comparison = sg.compare(expr, at={x: 0})
    assert executed(comparison) == [expected]
    assert_exactly(executed(comparison), torch_grads(torch_fn, 0.0))
    assert comparison.entries[0].grad_symbolic is None  # no derivative at the kink or jump


def test_if_branch_on_threshold_matches_torch():
    # Python `if x > 0` at 0 takes the else branch: gradient of 0*x, i.e. 0.
    f = sp.Piecewise((x, x > 0), (0, True))

    def torch_fn(x_):
        return x_ if x_ > 0 else x_ * 0

    comparison = sg.compare(f, at={x: 0})
    assert_exactly(executed(comparison), torch_grads(torch_fn, 0.0))
    (branch,) = comparison.executed_path.decisions
    assert branch.kind == "if" and branch.tie and branch.taken == 1
