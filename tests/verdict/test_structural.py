"""The structural half of the classifier (verdict/structural.py), issue 21's three rules:

1. A cut (item, no_grad, detach) the mathematics' derivative flows through is the cause of an
   entry whenever the exact symbolic and executed values differ at all, however little
   (6.7e-113 against 0 is a graph break, not an agreement), also below the exact engine's
   working resolution of the whole (the part a cut removed is computed by itself); where the
   contribution through the cut is exactly 0 the entry still agrees.
2. A finding names the node that decides THAT entry: the corner, step or branch whose argument
   depends on the entry's input and lies on the way to the output.
3. Whether a function jumps is decided from the mathematics' one-sided limits of its value: a
   removable singularity filled in with its limit (sin(x)/x with 1 at 0) is smooth there, its
   derivative the common limit of the one-sided slopes, and autograd's NaN there a nan-trap.

The truth is SymPy (`sympy.diff`, `sympy.limit`) at the exact binary value of the point, and
torch run here, independently of symgrad.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg

x, y = sp.symbols("x y")


def rational(v: float) -> sp.Rational:
    """The exact binary value a float64 tensor holds for v."""
    f = Fraction(v)
    return sp.Rational(f.numerator, f.denominator)


def close(a: sp.Basic, b: sp.Basic, digits: int = 18) -> bool:
    """Two numbers equal to `digits` significant digits (SymPy arithmetic, exact inputs)."""
    a, b = sp.N(a, 40), sp.N(b, 40)
    return bool(abs(a - b) <= sp.Float(10) ** (-digits) * max(abs(a), abs(b)))


def torch_grads(fn, at: dict[str, float], names: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    """torch.autograd.grad of `fn` at the point, run here; an input the graph never reaches is 0."""
    t = {n: torch.tensor(at[n], dtype=torch.float64, requires_grad=True) for n in names}
    out = fn(**t)
    grads = torch.autograd.grad(out, [t[n] for n in names], allow_unused=True)
    return [0.0 if g is None else float(g) for g in grads]


# --------------------------------------------------------------------------- 1. cuts, whatever the size

CUTS = {"item": (sg.item, "graph-break", lambda t: torch.tensor(t.item(), dtype=t.dtype)),
        "no_grad": (sg.no_grad, "graph-break", lambda t: t.detach()),
        "detach": (sg.detach, "detach", lambda t: t.detach())}


@pytest.mark.parametrize("name", list(CUTS))
def test_a_tiny_derivative_through_a_cut_is_the_cut_not_an_agreement(name: str) -> None:
    """exp(item(x) * (4*y)**3) at (-2.463, 1.186): d/dx is 6.7e-113 in the mathematics and
    exactly 0 in the program. It was called agree (6.7e-113 is 0 to the working resolution);
    at other points the same entry is a graph break. The size does not matter."""
    cut, cause, torch_cut = CUTS[name]
    f = sp.exp(cut(x) * (4 * y) ** 3)
    at = {"x": -2.463, "y": 1.186}
    c = sg.compare(f, at={x: at["x"], y: at["y"]})
    ex_, ey = c.entries
    point = {x: rational(at["x"]), y: rational(at["y"])}
    math_f = sp.exp(x * (4 * y) ** 3)
    truth_x = sp.diff(math_f, x).subs(point)
    assert 1e-113 < sp.N(truth_x, 30) < 1e-112
    assert close(ex_.grad_symbolic, truth_x)
    assert ex_.grad_executed == 0
    assert ex_.cause.id == cause
    assert ex_.node == f"{name}(x)"
    assert ex_.line == c.lowered.line_of(cut(x))
    # y's derivative does not pass through the cut: all three agree.
    assert ey.cause.id == "agree"
    assert close(ey.grad_symbolic, sp.diff(math_f, y).subs(point))
    assert ey.grad_symbolic == ey.grad_executed
    # torch itself: no gradient reaches x through the cut.
    gx, gy = torch_grads(lambda x, y: torch.exp(torch_cut(x) * (4 * y) ** 3), at, ["x", "y"])
    assert gx == 0.0 and ex_.grad_autograd == 0.0
    assert gy == pytest.approx(float(sp.diff(math_f, y).subs(point)), rel=1e-12)


@settings(max_examples=25)
@given(st.floats(-4.0, -0.01), st.floats(0.5, 2.0))
def test_an_item_the_derivative_flows_through_is_a_graph_break_at_every_point(xv: float, yv: float) -> None:
    """The same function over a range where d/dx runs from 1e-1 down to 1e-890: the entry is a
    graph break everywhere, never an agreement, and its symbolic value is SymPy's."""
    c = sg.compare(sp.exp(sg.item(x) * (4 * y) ** 3), at={x: xv, y: yv})
    e = c.entries[0]
    truth = sp.diff(sp.exp(x * (4 * y) ** 3), x).subs({x: rational(xv), y: rational(yv)})
    assert sp.N(truth, 30) != 0
    assert close(e.grad_symbolic, truth, 15)
    assert e.grad_executed == 0
    assert e.cause.id == "graph-break"
    assert c.entries[1].cause.id == "agree"


def test_a_sweep_calls_every_such_point_a_graph_break() -> None:
    """A sweep asks compare() about its flagged points: the tiny ones are graph breaks too."""
    xs, ys = [-2.463, -0.1, -3.0, -4.0], [1.186, 1.186, 1.5, 2.0]
    s = sg.sweep(sp.exp(sg.item(x) * (4 * y) ** 3), over={x: xs, y: ys})
    assert s.counts == {"graph-break": 4}


@pytest.mark.parametrize("f, math_f, at, causes", [
    # detach of a term whose derivative is 0 at the point: nothing flows through the cut
    (x + sg.detach(x**2), x + x**2, {x: 0.0}, ["agree"]),
    (x * sg.detach(x**2), x**3, {x: 0.0}, ["agree"]),
    (x + sg.detach((x - 1) ** 2), x + (x - 1) ** 2, {x: 1.0}, ["agree"]),
    # ... and beside that point, where it is not 0: detach, however small the part it hid
    (x + sg.detach((x - 1) ** 2), x + (x - 1) ** 2, {x: 1.0 + 2.0**-52}, ["detach"]),
    # a cut of another input: x's entry does not flow through detach(y)
    (x * sg.detach(y), x * y, {x: 2.0, y: 3.0}, ["agree", "detach"]),
    (x * sg.item(y**2) + y, x * y**2 + y, {x: 0.0, y: 3.0}, ["agree", "agree"]),  # d/dy through item: 2*x*y = 0
])
def test_a_cut_with_nothing_flowing_through_it_agrees(f: sp.Basic, math_f: sp.Basic, at: dict,  # type: ignore[type-arg]
                                                      causes: list[str]) -> None:
    c = sg.compare(f, at=at)
    assert [e.cause.id for e in c.entries] == causes
    point = {s: rational(v) for s, v in at.items()}
    for e, s in zip(c.entries, sorted(at, key=str)):
        assert e.grad_symbolic == sp.diff(math_f, s).subs(point)


MAGNITUDES = [5e-324, 1e-300, 1e-100, 0.5, 1.0, 1e100, 1e300]


@pytest.mark.parametrize("name", list(CUTS))
@pytest.mark.parametrize("xv", MAGNITUDES)
def test_a_part_removed_below_the_working_resolution_is_the_cut(name: str, xv: float) -> None:
    """sin(x) + 1e-300*x*cut(x): the mathematics' derivative is cos(x) + 2e-300*x, the program's
    cos(x) + 1e-300*x. The two differ by 1e-300*x, which for |x| <= 1 is below the exact engine's
    working resolution of the whole (about 2**-100 of cos(x)): the balls of the two sides overlap,
    and the entry said agree (a false pass). The part the cut removed is computed by itself
    (structural.cut_part) and is certainly not 0 at every magnitude, from the smallest subnormal
    to 1e300. The truth: SymPy's derivative of the mathematics minus that of the program with the
    cut's value a constant, at the exact binary point."""
    cut, cause, torch_cut = CUTS[name]
    c_ = sp.Float("1e-300")
    f = sp.sin(x) + c_ * x * cut(x)
    e = sg.compare(f, at={x: xv}).entries[0]
    point = rational(xv)
    k = sp.Symbol("k")
    removed = (sp.diff(sp.sin(x) + c_ * x * x, x) - sp.diff(sp.sin(x) + c_ * x * k, x)).subs({x: point, k: point})
    assert removed != 0  # the truth: a part flows through the cut
    assert e.cause.id == cause
    (gx,) = torch_grads(lambda x: torch.sin(x) + 1e-300 * x * torch_cut(x), {"x": xv}, ["x"])
    assert e.grad_autograd == gx
    if "they differ by" in e.explanation:  # the two values print alike: the report says the part's size
        said = e.explanation.split("they differ by ")[1].split(",")[0]
        assert abs(sp.Float(said, 30) / sp.N(removed, 30) - 1) < 1e-12


@pytest.mark.parametrize("xv", MAGNITUDES)
def test_a_tiny_detached_part_of_user_code_is_the_cut(xv: float, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same in torch code read from source: torch.sin(x) + x * x.detach() * 1e-300."""
    from user_code import load_module

    fn = load_module("import torch\n\n\ndef f(x):\n    return torch.sin(x) + x * x.detach() * 1e-300\n", tmp_path).f
    e = sg.compare(fn, at={"x": xv}).entries[0]
    assert e.cause is sg.Cause.DETACH
    (gx,) = torch_grads(lambda x: torch.sin(x) + x * x.detach() * 1e-300, {"x": xv}, ["x"])
    assert e.grad_autograd == gx
    if "they differ by" in e.explanation:  # the two values print alike: the report says the part's size
        said = e.explanation.split("they differ by ")[1].split(",")[0]
        assert abs(sp.Float(said, 30) / (sp.Float("1e-300", 60) * rational(xv)) - 1) < 1e-12


@pytest.mark.parametrize("xv", MAGNITUDES)
def test_two_cut_parts_that_cancel_exactly_agree(xv: float) -> None:
    """The part removed is 0 where the parts through two cuts cancel exactly (sin(x)*detach(x) -
    sin(x)*detach(x) + x: both sides' derivative is 1): no cause, whatever the balls' radius."""
    f = sp.Add(sp.sin(x) * sg.detach(x), -sp.sin(x) * sg.detach(x), x, evaluate=False)
    e = sg.compare(f, at={x: xv}).entries[0]
    assert e.cause.id == "agree"


# --------------------------------------------------------------------------- 2. the node that decides the entry


def test_each_entry_cites_its_own_kink() -> None:
    """Max(x, 0) + Abs(y) at (0, 0): x's entry cited Abs(y), its line and its hint."""
    c = sg.compare(sp.Max(x, 0) + sp.Abs(y), at={x: 0.0, y: 0.0})
    ex_, ey = c.entries
    assert (ex_.cause.id, ey.cause.id) == ("kink", "kink")
    assert ex_.node == "Max(0, x)" and ex_.line == c.lowered.line_of(sp.Max(x, 0))
    assert ey.node == "Abs(y)" and ey.line == c.lowered.line_of(sp.Abs(y))
    assert ex_.line != ey.line
    assert "torch.relu" in ex_.hint and "torch.abs" not in ex_.hint
    assert "torch.abs" in ey.hint and "torch.relu" not in ey.hint
    assert "`Max(0, x)`" in ex_.explanation and "Abs" not in ex_.explanation
    assert "`Abs(y)`" in ey.explanation and "Max" not in ey.explanation
    # the one-sided slopes, from SymPy's one-sided limits of the difference quotient
    h = sp.Symbol("h", positive=True)
    f = sp.Max(x, 0) + sp.Abs(y)
    for e, s in ((ex_, x), (ey, y)):
        at0 = {x: 0, y: 0}
        q = (f.subs(at0 | {s: h}) - f.subs(at0)) / h
        left = sp.limit((f.subs(at0) - f.subs(at0 | {s: -h})) / h, h, 0)
        assert e.one_sided == (left, sp.limit(q, h, 0))
    # torch's conventions: relu'(0) = 0, abs'(0) = 0
    gx, gy = torch_grads(lambda x, y: torch.relu(x) + torch.abs(y), {"x": 0.0, "y": 0.0}, ["x", "y"])
    assert (ex_.grad_autograd, ey.grad_autograd) == (gx, gy) == (0.0, 0.0)


def test_a_kink_two_inputs_reach_is_cited_by_both_and_the_other_by_its_own() -> None:
    """Abs(x + y) + Max(x, 0) at (0, 0): x reaches both corners, y only Abs(x + y); Max(x, y)
    at (1, 1): both reach the one corner."""
    c = sg.compare(sp.Max(x, 0) + sp.Abs(x + y), at={x: 0.0, y: 0.0})
    ex_, ey = c.entries
    assert ey.node == "Abs(x + y)" and ey.line == c.lowered.line_of(sp.Abs(x + y))
    assert ex_.node in ("Abs(x + y)", "Max(0, x)")
    assert ex_.one_sided == (-1, 2) and ey.one_sided == (-1, 1)
    # the corner of one input met first on the path: y's entry cited Abs(x), which y never moves
    c = sg.compare(sp.Abs(x) + sp.Max(x + y, 0), at={x: 0.0, y: 0.0})
    ex_, ey = c.entries
    assert ey.node == "Max(0, x + y)" and ey.line == c.lowered.line_of(sp.Max(x + y, 0))
    assert ex_.node in ("Abs(x)", "Max(0, x + y)")
    assert ex_.one_sided == (-1, 2) and ey.one_sided == (0, 1)
    c = sg.compare(sp.Max(x, y), at={x: 1.0, y: 1.0})
    assert [(e.node, e.line) for e in c.entries] == [("Max(x, y)", c.lowered.line_of(sp.Max(x, y)))] * 2
    # torch.maximum splits a tie 1/2 : 1/2
    gx, gy = torch_grads(lambda x, y: torch.maximum(x, y), {"x": 1.0, "y": 1.0}, ["x", "y"])
    assert [e.grad_executed for e in c.entries] == [sp.Rational(1, 2)] * 2 and [gx, gy] == [0.5, 0.5]


@pytest.mark.parametrize("branches, x_cause", [("if", "control-flow"), ("where", "kink")])
def test_a_branch_and_a_corner_each_decide_their_own_input(branches: str, x_cause: str) -> None:
    """A branch on x beside a corner in y: y's entry was called control-flow (the branch's
    cause ranks first) although moving y never moves the branch's condition."""
    pw = sp.Piecewise((x, x > 0), (0, True))
    c = sg.compare(pw + sp.Abs(y), at={x: 0.0, y: 0.0}, branches=branches)
    ex_, ey = c.entries
    assert (ex_.cause.id, ex_.node, ex_.line) == (x_cause, str(pw), c.lowered.line_of(pw))
    assert (ey.cause.id, ey.node, ey.line) == ("kink", "Abs(y)", c.lowered.line_of(sp.Abs(y)))
    c = sg.compare(sp.floor(x) + sp.Abs(y), at={x: 1.0, y: 0.0})
    assert [(e.cause.id, e.node) for e in c.entries] == [("jump", "floor(x)"), ("kink", "Abs(y)")]


def test_each_element_of_a_matrix_input_cites_its_own_kink() -> None:
    m = sp.MatrixSymbol("M", 1, 2)
    c = sg.compare(sp.Abs(m[0, 0]) + sp.Max(m[0, 1], 0), at={m: np.array([[0.0, 0.0]])})
    assert [(e.cause.id, e.node) for e in c.entries] == [("kink", "Abs(M[0, 0])"), ("kink", "Max(0, M[0, 1])")]
    assert [e.one_sided for e in c.entries] == [(-1, 1), (0, 1)]


def test_a_hessian_entry_still_sees_a_cut_of_either_input() -> None:
    """d/dx of df/dy flows through item(x**2) although df/dy alone does not read x."""
    s = sp.Symbol("s")
    from sympy.codegen.ast import Assignment, CodeBlock
    p = sg.Program(inputs=[x, y], body=CodeBlock(Assignment(s, sg.item(x**2))), output=s * x * y)
    c = sg.compare(p, at={x: 1.5, y: -2.0}, order=2)
    assert [e.cause.id for e in c.entries] == ["graph-break", "graph-break", "graph-break", "agree"]


# --------------------------------------------------------------------------- 3. jumps from the limits of the value

SINC = sp.Piecewise((1, sp.Eq(x, 0)), (sp.sin(x) / x, True))


def _removable(g: sp.Basic, x0: sp.Rational, fill: sp.Basic | None = None) -> tuple[sp.Basic, sp.Basic, sp.Basic]:
    """Piecewise((fill, Eq(x, x0)), (g, True)) with fill = the limit of g (SymPy's), and that
    limit and the limit of g's derivative there (the derivative the mathematics has)."""
    value = sp.limit(g, x, x0)
    assert value == sp.limit(g, x, x0, "-")
    slope = sp.limit(sp.diff(g, x), x, x0)
    assert slope == sp.limit(sp.diff(g, x), x, x0, "-")
    return sp.Piecewise((value if fill is None else fill, sp.Eq(x, x0)), (g, True)), value, slope


@pytest.mark.parametrize("g, x0", [
    (sp.sin(x) / x, 0),
    ((1 - sp.cos(x)) / x**2, 0),           # cancels twice: the limit needs more bits beside 0
    ((sp.exp(x) - 1) / x, 0),
    ((x**2 - 1) / (x - 1), 1),
    (sp.log(x) / (x - 1), 1),
])
def test_a_removable_singularity_filled_with_its_limit_is_smooth(g: sp.Basic, x0: int) -> None:
    """torch.where(x == x0, limit, g(x)) at x0: the mathematics is smooth there, its derivative
    the limit of g's slope. The program's derivative is 0 (the constant branch); where that is
    the mathematics' (sinc), autograd's NaN from the unused branch is a nan-trap; where not,
    the branch decided it (control-flow), never a jump."""
    f, _, slope = _removable(g, sp.Integer(x0))
    c = sg.compare(f, at={x: float(x0)}, branches="where")
    e = c.entries[0]
    assert e.one_sided is None and e.grad_symbolic is not None
    assert close(e.grad_symbolic, slope) if slope != 0 else e.grad_symbolic == 0
    assert e.grad_executed == 0
    assert e.cause.id == ("nan-trap" if slope == 0 else "control-flow")
    # torch: the unused branch's 0/0 poisons the gradient
    t = torch.tensor(float(x0), dtype=torch.float64, requires_grad=True)
    body = sp.lambdify(x, g, modules=[{"sin": torch.sin, "cos": torch.cos, "exp": torch.exp, "log": torch.log}])
    out = torch.where(t == x0, torch.tensor(float(sp.limit(g, x, x0)), dtype=torch.float64), body(t))
    (grad,) = torch.autograd.grad(out, [t])
    assert math.isnan(float(grad)) and math.isnan(e.grad_autograd)
    # with branches="if" the constant branch alone runs: all agree where the slope is 0
    e_if = sg.compare(f, at={x: float(x0)}, branches="if").entries[0]
    assert e_if.cause.id == ("agree" if slope == 0 else "control-flow")


@pytest.mark.parametrize("extra", [0, sg.detach((x - 1) ** 2)])
def test_a_filled_in_branch_with_the_right_slope_agrees_with_the_mathematics(extra: sp.Basic) -> None:
    """(3 - x)/2 fills in log(x)/(x - 1) at 1 with its limit 1 and its slope -1/2: the program's
    derivative is the mathematics' (a limit known to the working resolution); only autograd's
    NaN from the unused branch differs. A detach whose part has slope 0 there changes nothing."""
    f = sp.Piecewise(((3 - x) / 2, sp.Eq(x, 1)), (sp.log(x) / (x - 1), True)) + extra
    _, value, slope = _removable(sp.log(x) / (x - 1), sp.Integer(1))
    assert (value, slope) == (1, sp.Rational(-1, 2))
    e = sg.compare(f, at={x: 1.0}, branches="where").entries[0]
    assert close(e.grad_symbolic, slope) and e.grad_executed == slope
    assert e.cause.id == "nan-trap" and e.also == () and math.isnan(e.grad_autograd)


def test_the_torch_sinc_is_a_nan_trap_not_a_jump() -> None:
    def f(x):  # type: ignore[no-untyped-def]
        return torch.where(x == 0, 1.0, torch.sin(x) / x)

    c = sg.compare(f, at={"x": 0.0})
    e = c.entries[0]
    assert (e.cause.id, e.grad_symbolic, e.grad_executed) == ("nan-trap", 0, 0)
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(f(t), [t])
    assert math.isnan(float(grad)) and math.isnan(e.grad_autograd)
    assert "jump" not in e.explanation


@pytest.mark.parametrize("branches", ["where", "if"])
def test_a_special_case_and_a_real_jump_keep_their_causes(branches: str) -> None:
    """Piecewise((1, Eq(x, 1)), (x**2, True)) at 1: the value 1 is the limit 1, but the
    branch's slope 0 is not the mathematics' 2: control-flow (DESIGN.md section 5). A filled-in
    value that is not the limit is a jump: sin(x)/x with 2 at 0 (the limit is 1)."""
    e = sg.compare(sp.Piecewise((1, sp.Eq(x, 1)), (x**2, True)), at={x: 1.0}, branches=branches).entries[0]
    assert (e.cause.id, e.grad_symbolic, e.grad_executed) == ("control-flow", 2, 0)
    step = sg.compare(sp.Piecewise((0, x < 0), (1, True)), at={x: 0.0}, branches=branches).entries[0]
    assert step.cause.id == ("jump" if branches == "where" else "control-flow")
    assert step.grad_symbolic is None
    wrong, value, _ = _removable(sp.sin(x) / x, sp.Integer(0), fill=sp.Integer(2))
    assert value == 1
    e = sg.compare(wrong, at={x: 0.0}, branches=branches).entries[0]
    assert e.grad_symbolic is None and e.one_sided is None
    assert e.cause.id == ("jump" if branches == "where" else "control-flow")
    if branches == "where":
        assert "2 at it" in e.explanation and "1.0 just left" in e.explanation


def test_a_pole_filled_in_is_not_a_removable_singularity() -> None:
    """1/x with 0 at 0 has no limit there: the mathematics has no derivative (never smooth)."""
    e = sg.compare(sp.Piecewise((0, sp.Eq(x, 0)), (1 / x, True)), at={x: 0.0}, branches="where").entries[0]
    assert e.grad_symbolic is None and e.cause.id == "jump"
