"""The mathematics side (`sides.symbolic`): how two exact values are told apart (`same`).

`same` compared balls with an absolute floor (a difference below 2**-(prec - 40) of
max(|a|, |b|, 1) was none), so every two derivatives below about 1e-46 were "the same": an exact
derivative of -1e-100 equalled an executed 0, and a branch that float rounding took the other way
was `agree` at x = 1e-100 but `control-flow` at 1e-30. The rule now: two exact numbers are the
same only when they agree to the working precision relative to their own magnitude; a nonzero
ball beside an exact 0 differs whatever its size; a difference the balls cannot decide (one holds
0) counts as undecided, so that the precision is raised. Only a limit taken just beside the point
(known to the working resolution in absolute terms) keeps the absolute floor.
"""

from __future__ import annotations

import flint
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.sides.symbolic import same

x = sp.Symbol("x")
EXPONENTS = st.integers(-1100, 1100)


def ball(v: sp.Basic, exponent: int = 0) -> flint.arb:
    """v * 2**exponent as a ball at the working precision (v transcendental: never exact)."""
    return ex.to_real(ex.from_sympy(v)) * flint.arb(2) ** exponent


@settings(max_examples=60, deadline=None)
@given(k=EXPONENTS)
def test_a_nonzero_ball_is_never_an_exact_zero_whatever_its_size(k: int) -> None:
    with ex.working_precision(ex.START_PREC):
        for v in (ball(sp.pi, k), -ball(sp.E, k), ball(sp.sqrt(2), k)):
            assert not same(v, ex.ZERO) and not same(ex.ZERO, v)
            assert not same(v, ex.Q(0)) and not same(v, -v)


@settings(max_examples=60, deadline=None)
@given(k=EXPONENTS, bits=st.integers(1, 100))
def test_balls_are_the_same_to_the_precision_relative_to_their_magnitude(k: int, bits: int) -> None:
    """pi * 2**k equals itself computed another way (4 atan(1)), at every magnitude; moved by
    2**-bits of itself (bits <= 100, far above the resolution of 2**-(192 - 40)) it differs."""
    with ex.working_precision(ex.START_PREC):
        a = ball(sp.pi, k)
        assert same(a, 4 * flint.arb(1).atan() * flint.arb(2) ** k)
        moved = a * (1 + flint.arb(2) ** -bits)
        assert not same(a, moved) and not same(moved, a)
        assert same(a, a * (1 + flint.arb(2) ** -(ex.START_PREC + 20)))  # below the resolution


def test_rationals_are_the_same_only_when_equal() -> None:
    third = ex.Q(1, 3)
    assert same(third, ex.Q(1, 3))
    assert not same(third, third + ex.Q(1, 2**2000))
    assert not same(ex.Q(1, 2**3000), ex.ZERO)


def test_a_ball_around_zero_beside_an_exact_zero_is_undecided_not_equal() -> None:
    """sin(pi) is a ball around 0 at any precision: beside an exact 0 it is counted undecided (the
    caller raises the precision once), and only then a tie at the working resolution."""
    with ex.working_precision(ex.START_PREC):
        zero_ball = ex.to_real(ex.from_sympy(sp.pi)).sin()
        assert zero_ball.contains(0) and not zero_ball.is_zero()
        ex.reset_undecided()
        assert same(zero_ball, ex.ZERO)
        assert ex.undecided() == 1
        ex.reset_undecided()
        assert same(ex.Q(1, 3), ex.Q(1, 3)) and same(flint.arb(0), ex.ZERO)
        assert ex.undecided() == 0


def test_a_limit_beside_the_point_keeps_the_absolute_resolution() -> None:
    """With `limit`, one value is a limit taken 2**-(2 prec + 128) beside the point: a difference
    below 2**-(prec - 40) of max(|a|, |b|, 1) is none, also around 0."""
    with ex.working_precision(ex.START_PREC):
        tiny = ball(sp.pi, -600)
        assert same(tiny, ex.ZERO, limit=True) and not same(tiny, ex.ZERO)
        assert not same(ball(sp.pi, -100), ex.ZERO, limit=True)


@pytest.mark.parametrize("at", [1e-30, 1e-100, 1e-200, 1e-300, 5e-324])
def test_a_branch_float_rounding_took_is_control_flow_at_every_size(at: float) -> None:
    """tanh(x + 300) < 1 holds exactly, but rounds to 1.0 in float64: torch runs sign(x) (slope 0),
    the mathematics cos(x) (slope -sin(x), about -x). At every x > 0 that is control-flow."""
    f = sp.Piecewise((sp.cos(x), sp.tanh(x + 300) < 1), (sp.sign(x), True))
    assert torch.tanh(torch.tensor(at, dtype=torch.float64) + 300.0).item() == 1.0
    (e,) = sg.compare(f, at={x: at}).entries
    assert e.grad_executed == 0 and e.grad_autograd == 0.0
    assert e.cause is sg.Cause.CONTROL_FLOW
    if e.grad_symbolic is not None:
        truth = -sp.sin(sp.Rational(at))
        assert abs(e.grad_symbolic - truth) <= abs(truth) * sp.Float("1e-40")


@pytest.mark.parametrize(("f", "slope"), [
    (sp.Piecewise((0, sp.Eq(x, 0)), ((1 - sp.cos(x)) / x, True)), sp.Rational(1, 2)),
    (sp.Piecewise((0, sp.Eq(x, 0)), (sp.sin(x) ** 2 / x, True)), sp.Integer(1)),
    (sp.Piecewise((1, sp.Eq(x, 0)), (sp.sin(x) / x, True)), sp.Integer(0)),
])
def test_a_removable_singularity_filled_with_its_limit_is_smooth(f: sp.Basic, slope: sp.Basic) -> None:
    """The one-sided limits of a piece with no value at 0 are taken just beside it: they equal the
    filled-in value to the working resolution (absolute), so the mathematics is smooth there with
    the limit's slope (SymPy: the limit of the derivative), not a jump."""
    assert sp.limit(sp.diff(f.args[1][0], x), x, 0) == slope
    (e,) = sg.compare(f, at={x: 0.0}).entries
    assert e.grad_symbolic is not None and abs(e.grad_symbolic - slope) < sp.Float("1e-40")
