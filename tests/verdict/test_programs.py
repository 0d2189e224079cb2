"""Programs: statements, loops and symgrad's primitives, one test per acceptance row.

Every expected number is written out here, worked by hand from the program; SymPy numbers
compare with `==` (they are exact). Each disagreement must name its node in SymPy notation and
the line of the generated program that computes it.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
from sympy.codegen.ast import Assignment, CodeBlock, For, While, aug_assign

import symgrad as sg
from cases import d2l_control_flow as shared_d2l_program

a, b, c = sp.symbols("a b c")
x, y, z, s, i, u = sp.symbols("x y z s i u")


def d2l_control_flow() -> sg.Program:
    """D2L's `f(a)`: double `a` until it reaches 1000 in size, then keep it (or 100 times it)."""
    return shared_d2l_program()


def cited_line(comparison: sg.Comparison, entry: sg.Entry) -> str:
    """The generated line an entry cites (after checking it cites one)."""
    assert isinstance(entry.line, int), f"entry cites no line: {entry}"
    lines = comparison.lowered.source.splitlines()
    assert 1 <= entry.line <= len(lines)
    return lines[entry.line - 1]


def check_disagreement(comparison: sg.Comparison, cause: str, node: str, line_has: str) -> sg.Entry:
    """The one entry disagrees with `cause`, names `node`, and cites a line containing `line_has`."""
    (entry,) = comparison.entries
    assert comparison.cause.id == cause
    assert entry.cause.id == cause
    assert not comparison.ok
    assert entry.node == node
    assert line_has in cited_line(comparison, entry)
    assert entry.explanation and entry.hint
    report = str(comparison)
    assert "executed path" in report
    assert f"[{cause}]" in report
    return entry


def check_agree(comparison: sg.Comparison) -> sg.Entry:
    (entry,) = comparison.entries
    assert comparison.cause.id == "agree"
    assert comparison.ok
    assert entry.one_sided is None
    assert entry.node is None and entry.line is None
    return entry


# --------------------------------------------------------------------------- D2L's control flow


@pytest.mark.parametrize(
    ("point", "grad"),
    [
        (1.5409961082440433, 1024),  # b = 3.08 doubles 9 times: 2 * 2**9
        (0.6613521715704522, 2048),  # 10 doublings
        (0.39229682477920974, 4096),  # 11 doublings
        (math.nextafter(0.48828125, 0), 4096),  # just below the threshold: one doubling more
    ],
)
def test_d2l_ordinary_points_agree(point, grad):
    comparison = sg.compare(d2l_control_flow(), at={a: point})
    entry = check_agree(comparison)
    assert entry.grad_symbolic == grad
    assert entry.grad_executed == grad
    assert entry.grad_autograd == float(grad)
    assert entry.wrt == a


def test_d2l_negative_point_takes_the_else_branch():
    # b = -0.6 doubles 11 times to -1228.8; c = 100*b, so dc/da = 100 * 2 * 2**11.
    comparison = sg.compare(d2l_control_flow(), at={a: -0.3})
    entry = check_agree(comparison)
    assert entry.grad_symbolic == 409600
    assert entry.grad_executed == 409600
    assert entry.grad_autograd == 409600.0


def test_d2l_on_the_threshold_is_a_jump():
    # a = 0.48828125 = 125/256: b = 125/128 reaches exactly 1000 after 10 doublings, so the
    # loop stops on its threshold. Just left it doubles once more: f jumps from 2000 to 1000.
    comparison = sg.compare(d2l_control_flow(), at={a: 0.48828125})
    entry = check_disagreement(comparison, "control-flow", "while Abs(b) < 1000", "while torch.abs(b) < 1000")
    assert entry.grad_symbolic is None
    assert entry.one_sided is None  # a jump has no one-sided derivatives to speak of
    assert entry.grad_executed == 2048
    assert entry.grad_autograd == 2048.0
    assert "2000" in entry.explanation and "1000" in entry.explanation
    assert comparison.value_exact == 1000
    assert comparison.point[a] == sp.Rational(125, 256)


def test_d2l_at_zero_never_ends():
    with pytest.raises(sg.LoopLimitError) as info:
        sg.compare(d2l_control_flow(), at={a: 0})
    message = str(info.value)
    assert "while Abs(b) < 1000" in message  # the loop
    assert "Abs(b) < 1000" in message.split("\n")[1]  # its condition, on the line that explains
    assert "b = 0" in message  # the value that never changes
    assert "max_iterations=10000" in message
    assert isinstance(info.value, RuntimeError)


# --------------------------------------------------------------------------- detach, item, no_grad


def test_detach_inside_an_expression():
    # d/dx x*x**2 = 3x**2 = 27; with x**2 a constant 9 the program's derivative is 9.
    comparison = sg.compare(x * sg.detach(x**2), at={x: 3})
    entry = check_disagreement(comparison, "detach", "detach(x**2)", ".detach()")
    assert entry.grad_symbolic == 27
    assert entry.grad_executed == 9
    assert entry.grad_autograd == 9.0
    assert entry.autograd_error is None


def test_detach_in_a_program_like_d2l():
    # D2L: y = x*x; u = y.detach(); z = u*x. Math 3x**2 = 12 at 2; executed u = 4.
    program = sg.Program([x], CodeBlock(Assignment(y, x * x), Assignment(z, sg.detach(y) * x)), z)
    comparison = sg.compare(program, at={x: 2})
    entry = check_disagreement(comparison, "detach", "detach(y)", "y.detach()")
    assert entry.grad_symbolic == 12
    assert entry.grad_executed == 4
    assert entry.grad_autograd == 4.0


def test_item_is_a_graph_break():
    comparison = sg.compare(x * sg.item(x), at={x: 3})
    entry = check_disagreement(comparison, "graph-break", "item(x)", ".item()")
    assert entry.grad_symbolic == 6
    assert entry.grad_executed == 3
    assert entry.grad_autograd == 3.0
    assert "autograd graph break" in entry.explanation


def test_item_branch_makes_torch_raise():
    # SymPy turns 0*x into 0, so the else branch is item(0): nothing reaches the output on the
    # graph, and torch refuses to differentiate. That is reported as a graph break, not a crash.
    f = sp.Piecewise((x, x > 0), (sg.item(0 * x), True))
    comparison = sg.compare(f, at={x: -1})
    entry = check_disagreement(comparison, "graph-break", "item(0)", "torch.tensor(0.0")
    assert entry.grad_symbolic == 0
    assert entry.grad_executed == 0
    assert entry.grad_autograd is None
    assert "does not require grad" in entry.autograd_error
    assert "does not require grad" in entry.explanation  # the explanation quotes torch


def test_no_grad_is_a_graph_break():
    comparison = sg.compare(x * sg.no_grad(2 * x), at={x: 3})
    entry = check_disagreement(comparison, "graph-break", "no_grad(2*x)", "torch.no_grad()")
    assert entry.grad_symbolic == 12
    assert entry.grad_executed == 6
    assert entry.grad_autograd == 6.0


def test_special_case_branch_is_control_flow():
    # The maths is x**2 near 1 (slope 2 on both sides); the program's `if x == 1` branch returns
    # a constant, so the program's derivative at 1 is 0.
    f = sp.Piecewise((1, sp.Eq(x, 1)), (x**2, True))
    comparison = sg.compare(f, at={x: 1})
    entry = check_disagreement(comparison, "control-flow", "Piecewise((1, Eq(x, 1)), (x**2, True))", "if x == 1")
    assert entry.grad_symbolic == 2
    assert entry.one_sided is None
    assert entry.grad_executed == 0
    assert entry.grad_autograd == 0.0


def test_for_loop_power():
    program = sg.Program([x], CodeBlock(Assignment(s, 1), For(i, sp.Range(3), CodeBlock(Assignment(s, s * x)))), s)
    comparison = sg.compare(program, at={x: 2})
    entry = check_agree(comparison)
    assert entry.grad_symbolic == 12
    assert entry.grad_executed == 12
    assert entry.grad_autograd == 12.0
    assert comparison.value_exact == 8


def test_augmented_assignment_in_a_loop():
    # s = 0; for i in range(4): s += i*x  ->  s = 6x, ds/dx = 6.
    program = sg.Program(
        [x], CodeBlock(Assignment(s, 0), For(i, sp.Range(4), CodeBlock(aug_assign(s, "+", i * x)))), s
    )
    comparison = sg.compare(program, at={x: 0.5})
    entry = check_agree(comparison)
    assert entry.grad_symbolic == 6
    assert entry.grad_executed == 6
    assert entry.grad_autograd == 6.0


# --------------------------------------------------------------------------- malformed programs


def test_output_never_assigned():
    with pytest.raises(sg.ProgramError) as info:
        sg.Program([x], CodeBlock(Assignment(y, 2 * x)), z)
    message = str(info.value)
    assert "output z" in message and "never assigned" in message
    assert "Fix:" in message
    assert isinstance(info.value, ValueError)


def test_assignment_to_an_input():
    with pytest.raises(sg.ProgramError) as info:
        sg.Program([x], CodeBlock(Assignment(x, 2 * x)), x)
    message = str(info.value)
    assert message.startswith("`x = 2*x` assigns to the input x.")
    assert "Fix:" in message


def test_symbol_read_before_assignment():
    with pytest.raises(sg.ProgramError) as info:
        sg.Program([x], CodeBlock(Assignment(y, x * z), Assignment(z, x)), y)
    message = str(info.value)
    assert message.startswith("`y = x*z` reads z before it is assigned.")
    assert "Fix:" in message


def test_while_whose_condition_never_changes():
    with pytest.raises(sg.ProgramError) as info:
        sg.Program([x], CodeBlock(Assignment(y, x), While(x < 10, CodeBlock(Assignment(y, 2 * y)))), y)
    message = str(info.value)
    assert message.startswith("The loop `while x < 10` never changes what its condition reads (x).")
    assert "assigns only y" in message
    assert "Fix:" in message


# --------------------------------------------------------------------------- loop limits and long loops


def counting_loop() -> sg.Program:
    """y = x; while y < 10: y = y + 1."""
    return sg.Program([x], CodeBlock(Assignment(y, x), While(y < 10, CodeBlock(Assignment(y, y + 1)))), y)


def test_max_iterations_is_honoured():
    # From 0.5 the body runs 10 times (0.5 -> 10.5): allowed with 10, refused with 9.
    comparison = sg.compare(counting_loop(), at={x: 0.5}, max_iterations=10)
    entry = check_agree(comparison)
    assert entry.grad_executed == 1
    assert comparison.value_exact == sp.Rational(21, 2)
    with pytest.raises(sg.LoopLimitError) as info:
        sg.compare(counting_loop(), at={x: 0.5}, max_iterations=9)
    message = str(info.value)
    assert "while y < 10" in message
    assert "max_iterations=9" in message


def test_max_iterations_on_a_threshold_counts_the_point_itself():
    # From 0 the body runs exactly 10 times and stops on the threshold y = 10. The run at the
    # point fits in max_iterations=10; only the one-sided run just left needs an 11th pass.
    comparison = sg.compare(counting_loop(), at={x: 0}, max_iterations=10)
    (entry,) = comparison.entries
    assert entry.grad_executed == 1
    assert comparison.value_exact == 10


def test_for_loop_limit_names_the_loop():
    program = sg.Program([x], CodeBlock(Assignment(s, 0), For(i, sp.Range(20), CodeBlock(Assignment(s, s + x)))), s)
    with pytest.raises(sg.LoopLimitError) as info:
        sg.compare(program, at={x: 1}, max_iterations=5)
    first = str(info.value).splitlines()[0]
    assert "for i in range(0, 20" in first or "for i in range(20)" in first


def test_ten_thousand_iterations():
    # s = 0; for i in range(10000): s = s + x  ->  s = 10000x. One rational step per pass.
    program = sg.Program(
        [x], CodeBlock(Assignment(s, 0), For(i, sp.Range(10_000), CodeBlock(Assignment(s, s + x)))), s
    )
    comparison = sg.compare(program, at={x: 3})
    entry = check_agree(comparison)
    assert entry.grad_symbolic == 10_000
    assert entry.grad_executed == 10_000
    assert entry.grad_autograd == 10_000.0
    assert comparison.value_exact == 30_000
    path = comparison.executed_path
    body_line = next(
        k for k, text in enumerate(comparison.lowered.source.splitlines(), 1) if text.strip().startswith("s = s +")
    )
    assert path.line_counts[body_line] == 10_000
    assert [st.op for st in path.steps].count("add") == 10_000  # the body's one addition, 10,000 times
    # i is read by no statement: the path keeps no step of it per pass (the input, s = 0, the additions)
    assert [st.op for st in path.steps].count("loop_var") == 0
    assert len(path.steps) == 2 + 10_000
    (decision,) = [d for d in path.decisions if d.kind == "for"]
    assert decision.taken == 10_000


# --------------------------------------------------------------------------- both branch modes


def sqrt_branch() -> sg.Program:
    """y = Piecewise((sqrt(x), x > 0), (0, True)); z = 3*y: a statement-level branch."""
    return sg.Program(
        [x], CodeBlock(Assignment(y, sp.Piecewise((sp.sqrt(x), x > 0), (0, True))), Assignment(z, 3 * y)), z
    )


@pytest.mark.parametrize("branches", ["if", "where"])
def test_statement_piecewise_inside_its_domain(branches):
    comparison = sg.compare(sqrt_branch(), at={x: 4}, branches=branches)
    entry = check_agree(comparison)
    assert entry.grad_symbolic == sp.Rational(3, 4)
    assert entry.grad_executed == sp.Rational(3, 4)
    assert entry.grad_autograd == 0.75


def test_statement_piecewise_if_runs_one_branch():
    comparison = sg.compare(sqrt_branch(), at={x: -1}, branches="if")
    entry = check_agree(comparison)
    assert entry.grad_symbolic == 0
    assert entry.grad_executed == 0
    assert entry.grad_autograd == 0.0
    assert "torch.where" not in comparison.lowered.source
    assert "if x > 0:" in comparison.lowered.source


def test_statement_piecewise_where_is_a_nan_trap():
    comparison = sg.compare(sqrt_branch(), at={x: -1}, branches="where")
    entry = check_disagreement(comparison, "nan-trap", "sqrt(x)", "torch.sqrt(x)")
    assert entry.grad_symbolic == 0
    assert entry.grad_executed == 0
    assert math.isnan(entry.grad_autograd)
    assert "double-where" in entry.hint


@pytest.mark.parametrize(("branches", "cause", "executed"), [("if", "control-flow", 0), ("where", "kink", 0)])
def test_statement_piecewise_on_its_threshold(branches, cause, executed):
    # y = Piecewise((x, x > 0), (0, True)); z = 3*y at 0: slopes 0 and 3, no derivative.
    program = sg.Program(
        [x], CodeBlock(Assignment(y, sp.Piecewise((x, x > 0), (0, True))), Assignment(z, 3 * y)), z
    )
    comparison = sg.compare(program, at={x: 0}, branches=branches)
    line_has = "if x > 0" if branches == "if" else "torch.where(x > 0"
    entry = check_disagreement(comparison, cause, "Piecewise((x, x > 0), (0, True))", line_has)
    assert entry.grad_symbolic is None
    assert entry.one_sided == (0, 3)
    assert entry.grad_executed == executed
    assert entry.grad_autograd == 0.0


# --------------------------------------------------------------------------- constants under primitives


@pytest.mark.parametrize("prim", [sg.detach, sg.item, sg.no_grad], ids=["detach", "item", "no_grad"])
@pytest.mark.parametrize("const, value", [(sp.Integer(2), 2.0), (sp.pi, math.pi), (sp.Rational(1, 3), 1 / 3),
                                          (sp.Integer(10) ** 20, 1e20)], ids=["2", "pi", "1/3", "10**20"])
def test_a_primitive_of_a_constant_is_a_constant_tensor(prim, const, value) -> None:
    import ast as pyast

    f = x * prim(const) + prim(prim(const)) * 3 + sp.Max(x, 0) * prim(const) ** 2
    lowered = sg.lower(f)
    pyast.parse(lowered.source)  # valid code: no `2.detach()`
    comparison = sg.compare(f, at={x: 1.5})
    (entry,) = comparison.entries
    assert comparison.cause.id == "agree"
    assert entry.grad_executed == entry.grad_symbolic
    assert abs(entry.grad_executed - (const + const**2).evalf(40)) < sp.Float("1e-18") * (const + const**2).evalf(40)
    assert entry.grad_autograd == pytest.approx(value + value**2, rel=1e-15)
    assert comparison.value_autograd == pytest.approx(1.5 * value + 3 * value + 1.5 * value**2, rel=1e-15)


def test_primitives_of_constants_in_sums_products_and_conditions() -> None:
    two = sg.detach(sp.Integer(2))
    # d/dx at 1.5 of x + 3*2, x*2*3, x**2 (the exponent a constant tensor); SymPy cannot build Max(x, detach(2))
    for f, grad in [(x + 3 * two, 1), (x * two * sg.item(sp.Integer(3)), 6), (x**two, 3)]:
        comparison = sg.compare(f, at={x: 1.5})
        assert comparison.entries[0].grad_executed == grad, f
        assert comparison.entries[0].grad_autograd == grad, f
    with pytest.raises(sg.UnsupportedNodeError, match="inside a condition"):
        sg.lower(sp.Piecewise((x, x > two), (0, True)))


@pytest.mark.parametrize("loop", ["for", "while"])
def test_a_loop_body_sympy_simplified_away_is_valid_code(loop: str) -> None:
    body = CodeBlock(Assignment(b, b * 1))  # SymPy builds b = b
    if loop == "for":
        p = sg.Program([a], CodeBlock(Assignment(b, 3 * a), For(i, sp.Range(0, 4, 1), body)), b)
    else:
        p = sg.Program([a], CodeBlock(Assignment(b, 3 * a), Assignment(i, 0),
                                      While(i < 4, CodeBlock(Assignment(b, b * 1), Assignment(i, i + 1)))), b)
    lowered = sg.lower(p)
    assert "SymPy simplified this statement away" in lowered.source
    comparison = sg.compare(p, at={a: 0.5})
    (entry,) = comparison.entries
    assert comparison.cause.id == "agree"
    assert entry.grad_symbolic == entry.grad_executed == 3
    assert entry.grad_autograd == 3.0 and comparison.value_autograd == 1.5
