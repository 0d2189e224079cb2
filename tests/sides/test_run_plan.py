"""The executed run's plan (`sides/run_plan.py`): what it reads of a program once per program and
working precision must never stand in for what a run computes at its own point and precision.

Every value is checked against SymPy's exact arithmetic at the point (a float's exact binary
value), and the derivatives against torch's autograd of the same function written by hand.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.sides.executed import adjoints_for, run

x, y = sp.symbols("x y", real=True)


def _point(**values: float) -> dict[str, ex.Exact]:
    return {k: ex.from_float(v) for k, v in values.items()}


def _rational(v: ex.Exact) -> sp.Rational:
    """An exact dyadic (a ball's midpoint or radius) as a SymPy rational."""
    man, e = v.man_exp()
    return sp.Integer(int(man)) * sp.Integer(2) ** int(e)


def _holds(ball: ex.Exact, truth: sp.Basic, digits: int = 60) -> bool:
    """The ball holds the exact value `truth` (SymPy's, to `digits` + 30 digits); a rational is it."""
    if ex.is_rational(ball):
        return sp.Rational(int(ball.p), int(ball.q)) == truth
    t = sp.Rational(sp.N(truth, digits + 30))
    return bool(abs(_rational(ball.mid()) - t) <= _rational(ball.rad()) + abs(t) / sp.Integer(10) ** (digits + 25))


def test_a_constant_is_taken_at_each_runs_precision() -> None:
    """pi in `x + pi` and `sin(x)*pi/3`: a run at 1,000 bits after one at 192 (the plan of 192
    bits kept on the program) has pi to 1,000 bits, and one at 192 after it pi to 192 again."""
    f = sp.sin(x) * sp.pi / 3 + x + sp.pi
    lowered = sg.lower(f)
    point = _point(x=0.3)
    truth = f.subs(x, sp.Rational(*0.3.as_integer_ratio()))
    for bits in (192, 1000, 192, 1000):
        with ex.working_precision(bits):
            value = run(lowered, point).value
            assert ex.is_ball(value)
            # certain to about the working precision: pi was not a 192-bit ball in a 1,000-bit run
            assert value.rel_accuracy_bits() > bits - 20, (bits, value.rel_accuracy_bits())
            assert _holds(value, truth, digits=int(bits * 0.3) - 10)


def test_the_plan_holds_no_value_of_a_point() -> None:
    """The same program at many points, one after another: each run's value and gradient are
    that point's (exact truth), and its derivatives torch's."""
    f = sp.exp(-x / 10) * y + sp.sin(y * x) - 3 * x / 7
    lowered = sg.lower(f)
    for k in range(5):
        xv, yv = 0.3 + k * 0.25, -0.7 + k * 0.5
        with ex.working_precision(ex.START_PREC), adjoints_for(["x", "y"]):
            path = run(lowered, _point(x=xv, y=yv))
            gx, gy = path.gradient("executed")
        at = {x: sp.Rational(*xv.as_integer_ratio()), y: sp.Rational(*yv.as_integer_ratio())}
        assert _holds(path.value, f.subs(at), digits=40)
        assert _holds(gx, sp.diff(f, x).subs(at), digits=40)
        assert _holds(gy, sp.diff(f, y).subs(at), digits=40)
        tx = torch.tensor(xv, dtype=torch.float64, requires_grad=True)
        ty = torch.tensor(yv, dtype=torch.float64, requires_grad=True)
        out = torch.exp(-tx / 10) * ty + torch.sin(ty * tx) - 3 * tx / 7
        ax, ay = torch.autograd.grad(out, (tx, ty))
        assert abs(ex.to_float(gx) - ax.item()) <= 1e-14 * max(1.0, abs(ax.item()))
        assert abs(ex.to_float(gy) - ay.item()) <= 1e-14 * max(1.0, abs(ay.item()))


def test_each_program_has_its_own_plan() -> None:
    """Two programs of the same shape with different constants (x + 1/3 and x + 2/3): each run
    adds its own program's constant, whatever ran before."""
    for c in (sp.Rational(1, 3), sp.Rational(2, 3), sp.Rational(1, 3)):
        lowered = sg.lower(sp.sin(x) + c * x + c)
        with ex.working_precision(ex.START_PREC):
            value = run(lowered, _point(x=0.5)).value
        assert _holds(value, sp.sin(sp.Rational(1, 2)) + c / 2 + c, digits=40)


def test_a_matrix_constant_program_at_two_points() -> None:
    """A matrix constant times a matrix input, at two points one after another: each run's value
    is its own point's (exact truth)."""
    X = sp.MatrixSymbol("X", 2, 2)
    C = sp.ImmutableMatrix([[1, 2], [3, sp.Rational(1, 3)]])
    lowered = sg.lower(sp.trace(C * X))
    for rows in ([[0.5, 1.5], [-2.0, 0.25]], [[1.0, -0.5], [4.0, 3.0]]):
        with ex.working_precision(ex.START_PREC):
            value = run(lowered, {"X": ex.from_floats(np.array(rows))}).value
        assert _holds(value, (C * sp.ImmutableMatrix([[sp.Rational(*v.as_integer_ratio()) for v in r] for r in rows])).trace())


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=-20, max_value=20, allow_nan=False), st.sampled_from([192, 400, 1700]))
def test_runs_at_any_point_and_precision_hold_the_exact_value(v: float, bits: int) -> None:
    """A run at a point and precision after runs at others: its value and slope hold the exact
    ones (a plan of another precision, or another point's values, would not)."""
    f = sp.cos(x * sp.pi / 5) * sp.exp(-x / 3) + sp.Rational(7, 3) * x
    lowered = sg.lower(f)
    with ex.working_precision(ex.START_PREC):
        run(lowered, _point(x=v / 2 + 1))  # another point, at another precision, first
    with ex.working_precision(bits), adjoints_for(["x"]):
        path = run(lowered, _point(x=v))
        (g,) = path.gradient("executed")
    at = {x: sp.Rational(*v.as_integer_ratio())}
    assert _holds(path.value, f.subs(at), digits=40)
    assert _holds(g, sp.diff(f, x).subs(at), digits=40)
