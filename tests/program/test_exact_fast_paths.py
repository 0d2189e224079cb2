"""The exact engine's fast paths for finite balls (`ops.exp` and the other Arb functions, `ops.log1p`,
`exact.div`) give the ball the general rules give, count the same undecided comparisons, and
hold the exact value (SymPy at 60 digits); torch's float64 is beside it. A ball whose integer
part is past 64 bits still gets the raised precision of the general rule."""

from __future__ import annotations

import math

import flint
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

from symgrad.program import exact as ex
from symgrad.program import ops

NAMES = ["exp", "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "erf", "expm1"]
TORCH = {"exp": torch.exp, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "atan": torch.atan,
         "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh, "erf": torch.erf, "expm1": torch.expm1}
SYMPY = {"exp": sp.exp, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "atan": sp.atan, "sinh": sp.sinh,
         "cosh": sp.cosh, "tanh": sp.tanh, "erf": sp.erf, "expm1": lambda u: sp.exp(u) - 1}


def _same(a: ex.Exact, b: ex.Exact) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, flint.arb):
        return (a.is_nan() and b.is_nan()) or ((a.mid(), a.rad()) == (b.mid(), b.rad()) and str(a) == str(b))
    return a == b


def _ball(x: float, third: bool) -> flint.arb:
    """A ball: the float's exact value, or a third of it (not a dyadic number: a radius)."""
    v = ex.to_real(ex.from_float(x))
    return v / 3 if third else v


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.floats(-30, 30, allow_nan=False), st.booleans())
def test_an_arb_function_of_a_finite_ball_is_arbs_own(name: str, x: float, third: bool) -> None:
    with ex.working_precision(ex.START_PREC):
        u = _ball(x, third)
        ex.reset_undecided()
        got = getattr(ops, name)(u)
        want = getattr(u, name)()
        assert _same(got, want if not want.is_nan() else ex.INDETERMINATE)
        assert ex.undecided() == 0
        truth = sp.N(SYMPY[name](sp.Rational(x) / (3 if third else 1)), 60)
        assert got.contains(flint.arb(str(truth))) or abs(float(got.mid()) - float(truth)) <= float(got.rad()) + 1e-50
        t = TORCH[name](torch.tensor(float(sp.Rational(x) / (3 if third else 1)), dtype=torch.float64)).item()
        assert math.isclose(ex.to_float(got), t, rel_tol=1e-12, abs_tol=1e-300) or not math.isfinite(t)


def test_a_ball_past_64_bits_still_gets_the_raised_precision() -> None:
    # exp(-2**70 / 3), a ball: the general rule raises the precision by the argument's bits (the
    # fast path leaves such a ball to it), and the result is a ball of full accuracy, as before
    with ex.working_precision(ex.START_PREC):
        u = ex.to_real(ex.from_float(-(2.0**70))) / 3
        got = ops.exp(u)
        assert got.is_finite() and got > 0 and got.rel_accuracy_bits() > 100
        assert ex.magnitude_bits(u) > 64
        with ex.working_precision(ex.START_PREC + ex.magnitude_bits(u) + 32):
            assert _same(got, u.exp())


@settings(max_examples=100, deadline=None)
@given(st.floats(-0.999, 50, allow_nan=False), st.booleans())
def test_log1p_of_a_ball_is_arbs_own(x: float, third: bool) -> None:
    with ex.working_precision(ex.START_PREC):
        u = _ball(x, third)
        ex.reset_undecided()
        got = ops.log1p(u)
        want = ex.ZERO if x == 0 else u.log1p()
        assert _same(got, want)
        assert ex.undecided() == 0
        if x != 0:
            truth = sp.N(sp.log(1 + sp.Rational(x) / (3 if third else 1)), 60)
            assert got.contains(flint.arb(str(truth))) or abs(float(got.mid()) - float(truth)) <= float(got.rad()) + 1e-50
            assert math.isclose(ex.to_float(got), math.log1p(float(sp.Rational(x) / (3 if third else 1))), rel_tol=1e-12)


def test_balls_around_zero_keep_the_general_rules_and_count_undecided() -> None:
    with ex.working_precision(ex.START_PREC):
        around = flint.arb(0, 1e-30)  # contains 0 and is not 0
        ex.reset_undecided()
        ops.log1p(around)
        assert ex.undecided() >= 1
        ex.reset_undecided()
        ex.div(ex.to_real(ex.ONE), around)
        assert ex.undecided() >= 1
        ex.reset_undecided()
        assert ex.div(ex.to_real(ex.ONE), flint.arb(0)).is_finite() is False  # 1/0 = inf, as torch
        assert ex.undecided() == 0
        ex.reset_undecided()


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: v != 0),
       st.booleans())
def test_div_of_two_balls_is_arbs_quotient(a: float, b: float, third: bool) -> None:
    with ex.working_precision(ex.START_PREC):
        x, y = _ball(a, third), _ball(b, not third)
        ex.reset_undecided()
        got = ex.div(x, y)
        assert _same(got, x / y) and ex.undecided() == 0
        truth = sp.N((sp.Rational(a) / (3 if third else 1)) / (sp.Rational(b) / (1 if third else 3)), 60)
        assert got.contains(flint.arb(str(truth))) or abs(float(got.mid()) - float(truth)) <= float(got.rad()) + 1e-50


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.floats(-30, 30, allow_nan=False))
def test_an_arb_function_of_a_rational_is_arbs_own_or_exact(name: str, x: float) -> None:
    """A rational argument: the exact value where it is rational (f(0), and -0.0 kept by the odd
    functions, as IEEE), else Arb's ball of the rational, as the general rule converts it."""
    with ex.working_precision(ex.START_PREC):
        u = ex.from_float(x)
        got = getattr(ops, name)(u)
        if x == 0:
            want = {"exp": ex.ONE, "cos": ex.ONE, "cosh": ex.ONE}.get(name, ex.ZERO)
            assert got == want and type(got) in (flint.fmpq, ex.NegativeZero)
            odd = name in ("sin", "tan", "atan", "sinh", "tanh", "erf", "expm1")
            assert ex.is_neg_zero(got) == (odd and math.copysign(1, x) < 0)
            return
        assert _same(got, getattr(flint.arb(u), name)())
        truth = sp.N(SYMPY[name](sp.Rational(x)), 60)
        assert got.contains(flint.arb(str(truth))) or abs(float(got.mid()) - float(truth)) <= float(got.rad()) + 1e-50
        t = TORCH[name](torch.tensor(x, dtype=torch.float64)).item()
        assert math.isclose(ex.to_float(got), t, rel_tol=1e-12, abs_tol=1e-300) or not math.isfinite(t)


def test_a_rational_past_63_bits_gets_the_raised_precision() -> None:
    with ex.working_precision(ex.START_PREC):
        u = ex.Q(-(2**70), 3)
        got = ops.exp(u)
        with ex.working_precision(ex.START_PREC + ex.magnitude_bits(u) + 32):
            assert _same(got, flint.arb(u).exp())
        assert got.rel_accuracy_bits() >= ex.START_PREC
