"""Numeric rules of the verdict (issue 21, items 2 and 3), against torch 2.13 and an exact truth.

* The real domain of x**y: x > 0, or x = 0 with y > 0 (0**y = 0, flat in y), or x < 0 with an
  integer y (a value, but no real slope in y). Each part: the domain verdict, and the exact
  values beside torch's pow forward and backward.
* A float is as right as its dtype allows when it is the float nearest the exact value: an exact
  slope that rounds (ties to even, subnormals, below the smallest subnormal to 0) to autograd's
  float agrees, in float64 and float32, whatever the tolerance.
* A saturating op whose backward formula in torch reads its own rounded result (sigmoid's
  y*(1 - y), tanh's 1 - y**2, expm1's y + 1, softmax's) is named as torch's backward formula at
  that point, with the op, its line, the formula and the exact slope, not as errors that
  accumulate over the program.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from fractions import Fraction

import flint
import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.codegen.cfunctions import expm1

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.program.ops import OPS
from symgrad.verdict.compare import rounding_only
from symgrad.verdict.floating import agrees_when_rounded

a, b, x, y = sp.symbols("a b x y", real=True)
DT = {"float64": torch.float64, "float32": torch.float32}


def _torch_pow(base: float, e: float, dtype: str = "float64") -> tuple[float, float, float]:
    """torch.pow's forward and its backward with respect to the base and the exponent."""
    u = torch.tensor(base, dtype=DT[dtype], requires_grad=True)
    v = torch.tensor(e, dtype=DT[dtype], requires_grad=True)
    out = torch.pow(u, v)
    du, dv = torch.autograd.grad(out, (u, v))
    return out.item(), du.item(), dv.item()


def _same(got: float | None, want: float) -> bool:
    return got is not None and (got == want or (math.isnan(got) and math.isnan(want)))


# ---------------------------------------------------------------- x**y: the domain, part by part

# (x, y, defined as a real function of both there, the mathematics' slopes: a partial derivative
# each, None where that partial does not exist). Each entry is its own partial derivative: at
# (-3, 2), x**2 has slope -6 in x, while in y the power leaves the reals (no real slope).
POW_PARTS = [
    (2.0, 0.5, True, (0.5 * 2.0 ** -0.5, math.sqrt(2.0) * math.log(2.0))),  # x > 0
    (0.0, 2.5, True, (0, 0)),  # x = 0, y > 0: 0**y = 0 for every y > 0
    (0.0, 1.5, True, (0, 0)),
    (0.0, 2.0, True, (0, 0)),
    (0.0, 1.0, True, (1, 0)),
    (0.0, 0.5, True, (None, 0)),  # x = 0, 0 < y < 1: the slope in x is infinite (a vertical tangent); 0 in y
    (0.0, 0.0, False, (None, None)),  # 0**0: torch's 1 is a convention (the limit depends on the path)
    (0.0, -1.0, False, (None, None)),  # a pole
    (-3.0, 2.0, True, (-6, None)),  # x < 0, integer y: a value (9) and slope -6 in x, but no real slope in y
    (-2.0, -1.0, True, (-0.25, None)),
    (-3.0, 2.5, False, (None, None)),  # x < 0, y not an integer: no real value
]


@pytest.mark.parametrize(("at_x", "at_y", "defined", "slopes"), POW_PARTS, ids=repr)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pow_domain_and_values_on_each_part(at_x: float, at_y: float, defined: bool, slopes: tuple,
                                            dtype: str) -> None:
    c = sg.compare(a**b, at={a: at_x, b: at_y}, dtype=dtype)
    value, du, dv = _torch_pow(at_x, at_y, dtype)
    assert _same(c.value_autograd, value)
    e_a, e_b = c.entries
    assert _same(e_a.grad_autograd, du) and _same(e_b.grad_autograd, dv)
    # The exact executed path is torch's formula in exact arithmetic: the same numbers where torch's
    # are exact (0, 1, -6, nan, inf), and within float rounding elsewhere.
    for e, t in ((e_a, du), (e_b, dv)):
        exe = float(e.grad_executed)
        if math.isfinite(t) and t != 0:
            assert abs(exe - t) <= 1e-6 * abs(t)
        else:
            assert _same(exe, t)
    assert (c.cause is not sg.Cause.DOMAIN) == all(w is not None for w in slopes)
    for e, want in zip((e_a, e_b), slopes):
        if want is None:
            assert e.cause is sg.Cause.DOMAIN and e.grad_symbolic is None
        else:
            assert e.cause is not sg.Cause.DOMAIN
            assert abs(float(e.grad_symbolic) - want) <= 1e-15 * max(1.0, abs(want))
    if not defined:
        assert all(w is None for w in slopes)


def test_pow_op_says_where_it_is_undefined_and_its_exact_values_are_torchs() -> None:
    """The op's own rule, exactly: `undefined` on each part, and value and partials beside torch."""
    op = OPS["pow"]
    assert op.undefined is not None
    with ex.working_precision(ex.START_PREC):
        for at_x, at_y, _, _ in POW_PARTS:
            args = [ex.from_float(at_x), ex.from_float(at_y)]
            value = op.value(args, None)
            du, dv = op.partials(args, value, None)
            real = at_x > 0 or (at_x == 0 and at_y > 0) or (at_x < 0 and at_y == int(at_y))
            assert op.undefined(args, None) is (not real), (at_x, at_y)
            t_value, t_du, t_dv = _torch_pow(at_x, at_y)
            for got, want in ((value, t_value), (du, t_du), (dv, t_dv)):
                g = ex.to_float(got)
                assert _same(g, want) or abs(g - want) <= 1e-15 * abs(want), (at_x, at_y, got, want)
        # exact, not merely close: (-3)**2 = 9, its slope in x is 2*(-3) = -6; 0**(5/2) = 0 and flat
        assert op.value([ex.Q(-3), ex.Q(2)], None) == 9
        assert op.partials([ex.Q(-3), ex.Q(2)], ex.Q(9), None)[0] == -6
        assert op.partials([ex.Q(0), ex.Q(5, 2)], ex.ZERO, None) == (ex.ZERO, ex.ZERO)


def test_a_negative_base_at_an_integer_exponent_says_its_slope_is_not_real() -> None:
    """At (-3, 2) the value 9 is real, the slope in a is -6 (torch's too), the slope in b is
    9*log(-3): not real, and torch's nan. The sentence says so (not 'an infinite slope')."""
    c = sg.compare(a**b, at={a: -3.0, b: 2.0})
    e_a, e_b = c.entries
    assert e_a.grad_executed == -6 and e_a.grad_autograd == -6.0
    assert e_b.grad_executed is sp.nan and math.isnan(e_b.grad_autograd)
    assert "no real slope" in e_b.explanation and "infinite slope" not in e_b.explanation
    assert "integer y" in e_b.hint


# ---------------------------------------------------------------- the float nearest the truth


def _nearest_float32(q: Fraction) -> float:
    """The float32 nearest q, ties to even, by exact comparison of the neighbours (no double rounding)."""
    f = np.float32(float(q)) if abs(q) < 2**128 else np.float32(math.inf if q > 0 else -math.inf)
    cands = [c for c in (np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf)))
             if np.isfinite(c)]
    if not cands:
        return float(f)
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - q), int(np.array(c).view(np.int32)) & 1))
    if abs(q) >= Fraction(2) ** 128 - Fraction(2) ** 103:
        return math.inf if q > 0 else -math.inf
    return float(best)


@settings(max_examples=400, deadline=None)
@given(st.integers(-10**40, 10**40), st.integers(1, 10**40), st.integers(-1250, 1100))
def test_round_to_dtype_is_ieee_rounding(p: int, q: int, k: int) -> None:
    """Against Python's correctly rounded Fraction -> float (float64) and an exact neighbour search
    (float32), through subnormals, below the smallest subnormal and past the largest float."""
    value = Fraction(p, q) * Fraction(2) ** k
    try:
        want64 = float(value)
    except OverflowError:
        want64 = math.inf if value > 0 else -math.inf
    got = ex.round_to_dtype(ex.Q(value), "float64")
    assert got == want64
    if abs(k) < 200:
        assert ex.round_to_dtype(ex.Q(value), "float32") == _nearest_float32(value)


def test_round_to_dtype_of_balls_and_tiny_values() -> None:
    with ex.working_precision(ex.START_PREC):
        assert ex.round_to_dtype(ex.to_real(ex.Q(1, 3)), "float64") == 1 / 3
        assert ex.round_to_dtype(ex.to_real(ex.Q(1, 3)), "float32") == float(np.float32(1 / 3))
        tiny = OPS["exp"].value([ex.from_float(-1e300)], None)  # e^-1e300, a ball
        assert ex.round_to_dtype(tiny, "float64") == 0.0 and ex.round_to_dtype(ex.neg(tiny), "float32") == 0.0
        half_min = ex.Q(1, 2**1075)  # half the smallest subnormal: a tie, to even (0)
        assert ex.round_to_dtype(half_min, "float64") == 0.0
        assert ex.round_to_dtype(ex.Q(3, 2**1076), "float64") == 5e-324  # above the tie: the subnormal
        assert ex.round_to_dtype(ex.Q(2**1024), "float64") == math.inf
        assert ex.round_to_dtype(ex.INDETERMINATE, "float64") is None
        straddles = flint.arb(1, 2.0**-40)
        assert ex.round_to_dtype(straddles, "float64") is None  # 1 +- 2**-40 holds many float64 values
        assert ex.round_to_dtype(flint.arb(1, 2.0**-80), "float64") == 1.0  # every value in it rounds to 1


@pytest.mark.parametrize(("build", "at", "dtype", "truth"), [
    (sp.tanh, 710.0, "float64", lambda u: mpmath.sech(u) ** 2),  # 8.0e-617: 0 is the nearest float64
    (sp.tanh, 100.0, "float32", lambda u: mpmath.sech(u) ** 2),  # 5.5e-87: below float32's 1.4e-45
    (sg.sigmoid, -120.0, "float32", lambda u: mpmath.exp(u) / (1 + mpmath.exp(u)) ** 2),
    (sg.sigmoid, 800.0, "float64", lambda u: mpmath.exp(-u) / (1 + mpmath.exp(-u)) ** 2),
    (sp.exp, -800.0, "float64", mpmath.exp),
    (sp.erf, 30.0, "float64", lambda u: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-u * u)),
])
def test_a_slope_below_the_smallest_subnormal_agrees_with_autograds_zero(build: Callable[[sp.Basic], sp.Basic],
                                                                          at: float, dtype: str,
                                                                          truth: Callable[[mpmath.mpf], mpmath.mpf]) -> None:
    (e,) = sg.compare(build(x), at={x: at}, dtype=dtype).entries
    t = torch.tensor(at, dtype=DT[dtype], requires_grad=True)
    fn = {sp.tanh: torch.tanh, sg.sigmoid: torch.sigmoid, sp.exp: torch.exp, sp.erf: torch.erf}[build]
    (g,) = torch.autograd.grad(fn(t), t)
    assert g.item() == 0.0 and e.grad_autograd == 0.0
    with mpmath.workprec(2000):
        want = truth(mpmath.mpf(at))
        assert 0 < want < mpmath.mpf(2) ** (-1075 if dtype == "float64" else -150)
        assert abs(mpmath.mpf(sp.Float(e.grad_executed, 40)._mpf_) / want - 1) < mpmath.mpf(10) ** -30
    assert e.cause is sg.Cause.AGREE


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_float_nearest_the_exact_slope_agrees_at_any_tolerance(dtype: str) -> None:
    """exp'(1) = e: torch returns the float nearest e, so it agrees even where the relative
    tolerance is far below the dtype's spacing (rtol=1e-300); a float one step away does not."""
    (e,) = sg.compare(sp.exp(x), at={x: 1.0}, dtype=dtype, rtol=1e-300).entries
    t = torch.tensor(1.0, dtype=DT[dtype], requires_grad=True)
    (g,) = torch.autograd.grad(torch.exp(t), t)
    with mpmath.workprec(200):
        nearest = float(mpmath.e) if dtype == "float64" else float(np.float32(float(mpmath.e)))
    assert e.grad_autograd == g.item() == nearest
    assert e.cause is sg.Cause.AGREE
    # The rule itself, in both directions: the exact value e rounds to torch's float, not to its neighbour.
    with ex.working_precision(ex.START_PREC):
        exact_e = OPS["exp"].value([ex.ONE], None)
        assert agrees_when_rounded(exact_e, nearest, dtype)
        ulp = float(np.nextafter(np.float64(nearest), np.inf) if dtype == "float64" else
                    np.nextafter(np.float32(nearest), np.float32(np.inf)))
        assert not agrees_when_rounded(exact_e, ulp, dtype)
        assert not agrees_when_rounded(OPS["exp"].value([ex.Q(800)], None), math.inf, dtype)  # overflow


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_sweeps_rounding_check_follows_the_same_rule(dtype: str) -> None:
    """`rounding_only`, which decides a sweep's flagged points without a report, agrees where
    compare() does: torch's float nearest e at rtol=1e-300, not the float next to it."""
    t = torch.tensor(1.0, dtype=DT[dtype], requires_grad=True)
    (g,) = torch.autograd.grad(torch.exp(t), t)
    lowered = sg.lower(sp.exp(x), dtype=dtype)
    verdict, values = rounding_only(lowered, [1.0], [0], [g.item()], dtype, 1e-300)  # type: ignore[misc]
    assert verdict == "agree" and values == [float(mpmath.e)]
    ulp = float(np.nextafter(np.float64(g.item()), np.inf) if dtype == "float64" else
                np.nextafter(np.float32(g.item()), np.float32(np.inf)))
    assert rounding_only(lowered, [1.0], [0], [ulp], dtype, 1e-300)[0] == "rounding"  # type: ignore[index]


# ---------------------------------------------------------------- torch's own backward formula

# (name, SymPy build, torch call, point, dtype, torch's function, formula, the exact slope in mpmath)
SATURATED = [
    ("sigmoid-40", lambda: sg.sigmoid(x), lambda t: torch.sigmoid(t[0]), (40.0,), "float64",
     "sigmoid_backward", "y*(1 - y)", lambda u: mpmath.exp(-u) / (1 + mpmath.exp(-u)) ** 2),
    ("sigmoid-20", lambda: sg.sigmoid(x), lambda t: torch.sigmoid(t[0]), (20.0,), "float64",
     "sigmoid_backward", "y*(1 - y)", lambda u: mpmath.exp(-u) / (1 + mpmath.exp(-u)) ** 2),
    ("sigmoid-10-f32", lambda: sg.sigmoid(x), lambda t: torch.sigmoid(t[0]), (10.0,), "float32",
     "sigmoid_backward", "y*(1 - y)", lambda u: mpmath.exp(-u) / (1 + mpmath.exp(-u)) ** 2),
    ("tanh-20", lambda: sp.tanh(x), lambda t: torch.tanh(t[0]), (20.0,), "float64",
     "tanh_backward", "1 - y**2", lambda u: mpmath.sech(u) ** 2),
    ("tanh-minus-9.5-f32", lambda: sp.tanh(x), lambda t: torch.tanh(t[0]), (-9.5,), "float32",
     "tanh_backward", "1 - y**2", lambda u: mpmath.sech(u) ** 2),
    ("expm1-minus-40", lambda: expm1(x), lambda t: torch.expm1(t[0]), (-40.0,), "float64",
     "expm1", "y + 1", mpmath.exp),
    ("softmax-40", lambda: sg.softmax(0, x, y), lambda t: torch.softmax(torch.stack(t), 0)[0], (40.0, 0.0),
     "float64", "_softmax_backward_data", "y_j*(delta_ij - y_i)",
     lambda u: mpmath.exp(-u) / (1 + mpmath.exp(-u)) ** 2),
]


@pytest.mark.parametrize(("name", "build", "by_hand", "at", "dtype", "backward", "formula", "slope"),
                         SATURATED, ids=[s[0] for s in SATURATED])
def test_a_saturating_ops_backward_formula_is_named(name, build, by_hand, at, dtype, backward, formula,  # type: ignore[no-untyped-def]
                                                    slope) -> None:
    expr = build()
    syms = [x, y][:len(at)]
    c = sg.compare(expr, at=dict(zip(syms, at)), dtype=dtype)
    e = c.entries[0]  # the slope in x
    ts = [torch.tensor(v, dtype=DT[dtype], requires_grad=True) for v in at]
    out = by_hand(ts)
    (g,) = torch.autograd.grad(out, ts[0])
    assert e.grad_autograd == g.item()  # autograd's value is torch's own
    with mpmath.workprec(400):
        want = slope(mpmath.mpf(at[0]))
        assert abs(mpmath.mpf(sp.Float(e.grad_executed, 40)._mpf_) / want - 1) < mpmath.mpf(10) ** -30
        assert abs(g.item() - want) > 1e-9 * want  # torch is off beyond float64's tolerance
    assert e.cause is sg.Cause.ROUNDING
    line = c.lowered.line_of(expr)
    assert e.line == line and e.node == sp.sstr(expr)
    text = e.explanation
    assert f"torch's backward formula for {OPS_NAME[name]} at this point" in text
    assert backward in text and formula in text and f"(line {line})" in text
    assert f"y = {out.item()!r}" in text  # torch's own rounded result
    assert f"gets {g.item()!r}" in text or (g.item() == 0 and "gets 0.0" in text)
    assert "accumulate" not in text and "Reformulate" not in e.hint
    assert "symgrad.compare" in e.hint


OPS_NAME = {s[0]: s[0].split("-")[0] for s in SATURATED}


def test_tanhs_suggested_rewrite_has_an_accurate_backward() -> None:
    """The hint's rewrite, 1 - 2*sigmoid(-2*x) for x > 0, agrees where torch.tanh's backward is 0."""
    (e,) = sg.compare(1 - 2 * sg.sigmoid(-2 * x), at={x: 20.0}).entries
    with mpmath.workprec(200):
        want = mpmath.sech(20) ** 2
    assert e.cause is sg.Cause.AGREE and abs(e.grad_autograd - float(want)) <= 1e-15 * float(want)


def test_expm1s_suggested_rewrite_has_an_accurate_backward() -> None:
    (e,) = sg.compare(sp.exp(x) - 1, at={x: -40.0}).entries
    assert e.cause is sg.Cause.AGREE and e.grad_autograd == math.exp(-40.0)


def test_a_composed_program_cites_the_saturating_step() -> None:
    """3*tanh(2*x) at 10: the tanh step on its own line is named, with its own exact slope."""
    f = 3 * sp.tanh(2 * x)
    c = sg.compare(f, at={x: 10.0})
    (e,) = c.entries
    assert e.cause is sg.Cause.ROUNDING and e.grad_autograd == 0.0
    assert e.node == "tanh(2*x)" and e.line == c.lowered.line_of(sp.tanh(2 * x))
    with mpmath.workprec(200):
        slope = float(mpmath.sech(20) ** 2)  # tanh's own slope at 2*x = 20, not the entry's 6 times it
    assert f"the exact slope there is {slope:.15e}"[:40] in e.explanation


@pytest.mark.parametrize(("expr", "at"), [(sg.sigmoid(x), 1.5), (sp.tanh(x), 0.75), (expm1(x), -2.0)])
def test_no_saturation_is_named_where_torchs_formula_keeps_its_digits(expr: sp.Basic, at: float) -> None:
    assert sg.compare(expr, at={x: at}).ok
    assert sg.compare(expr, at={x: at}, dtype="float32").ok


def test_a_cancellation_elsewhere_is_still_named_as_one() -> None:
    (e,) = sg.compare((1 - sp.cos(x)) / x**2, at={x: 1e-4}).entries
    assert e.cause is sg.Cause.ROUNDING and "cancellation" in e.explanation


def test_random_saturating_points_name_torchs_formula_or_agree() -> None:
    """Over many points: either the entry agrees (and torch's slope is within the tolerance or the
    float nearest the exact one), or it is torch's sigmoid formula, never an accumulation."""
    rng = random.Random(21)
    for _ in range(25):
        at = rng.uniform(15.0, 45.0)
        (e,) = sg.compare(sg.sigmoid(x), at={x: at}).entries
        assert e.cause in (sg.Cause.AGREE, sg.Cause.ROUNDING)
        if e.cause is sg.Cause.ROUNDING:
            assert "sigmoid_backward" in e.explanation and "accumulate" not in e.explanation
