"""Exact values at every magnitude a float can hold (issue 21, item 1).

Arb's exponents are unbounded: e^-1e300 is a ball with an exponent near -1.44e300 bits, not 0,
and e^1e300 is a finite ball, not inf. The exact engine must therefore never turn a value into
inf or NaN that a float overflow would: sigmoid(-1e300) is e^-1e300/(1 + e^-1e300), not
1/(1 + inf), and tanh's slope at 710 is 1/cosh(710)**2 = 8.0e-617, not the cancellation 1 - 1.

The oracle is mpmath at 4,000 bits with the textbook formulas (mpmath's exponents are unbounded
too, so exp(1e300) is a number there), at the exact binary value of each float point. Each op's
value and every partial is checked at START_PREC (one pass, no rerun), and each must be certified
to at least 150 bits. Then `compare()` end to end: the issue's examples, and every exp-based op at
+-1e300, +-1e10, +-800 and 0 in float64 (float32 where the point is a float32), beside torch's
own call written by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import pytest
import sympy as sp
import torch
from sympy.codegen.cfunctions import expm1

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.program.ops import OPS
from symgrad.program.rules import RULES

x, y = sp.symbols("x y", real=True)
F = torch.nn.functional
MAXF = 1.7976931348623157e308
POINTS = (1e300, -1e300, 1e10, -1e10, 800.0, -800.0, 0.0, MAXF, -MAXF, 37.5, -37.5)
BITS = 4000


def _mp(v: float) -> mpmath.mpf:
    return mpmath.mpf(v)  # exact: a float is a binary number


def _sig(u: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-u))


def _sig_slope(u: mpmath.mpf) -> mpmath.mpf:
    e = mpmath.exp(-abs(u))
    return e / (1 + e) ** 2  # sigmoid(u)*sigmoid(-u), without the cancellation of 1 - sigmoid(u)


# op -> (its value, its partial: torch's backward formula, exactly), in mpmath
UNARY: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "exp": (mpmath.exp, mpmath.exp),
    "sinh": (mpmath.sinh, mpmath.cosh),
    "cosh": (mpmath.cosh, mpmath.sinh),
    "tanh": (mpmath.tanh, lambda u: mpmath.sech(u) ** 2),
    "sigmoid": (_sig, _sig_slope),
    "expm1": (mpmath.expm1, mpmath.exp),
    "erf": (mpmath.erf, lambda u: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-u * u)),
    # torch's softplus: x itself above 20 (value and slope), log1p(exp(x)) below
    "softplus": (lambda u: u if u > 20 else mpmath.log1p(mpmath.exp(u)), lambda u: 1 if u > 20 else _sig(u)),
}


def _agrees(got: ex.Exact, want: Any, what: str) -> None:
    """`got` certified to 150 bits and within 2**-140 of mpmath's `want`, relatively (an exact 0 for 0)."""
    assert ex.is_finite(got), f"{what}: {got!r} is not finite"
    if want == 0:
        assert ex.is_exact_zero(got), f"{what}: {got!r} is not an exact 0"
        return
    assert ex.certain_bits(got) >= 150, f"{what}: only {ex.certain_bits(got)} bits certain"
    text = ex.to_real(got).mid().str(60, radius=False)
    with mpmath.workprec(BITS):
        rel = abs(mpmath.mpf(text) - want) / abs(want)
        assert rel < mpmath.mpf(2) ** -140, f"{what}: {text} against {mpmath.nstr(want, 20)}"


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("at", POINTS, ids=repr)
def test_each_exp_based_op_is_exact_at_every_float_magnitude(name: str, at: float) -> None:
    value_of, slope_of = UNARY[name]
    with mpmath.workprec(BITS):
        want_value, want_slope = value_of(_mp(at)), slope_of(_mp(at))
    op = OPS[name]
    with ex.working_precision(ex.START_PREC):
        u = ex.from_float(at)
        value = op.value([u], None)
        (slope,) = op.partials([u], value, None)
        _agrees(value, want_value, f"{name}({at!r})")
        _agrees(slope, want_slope, f"{name}'({at!r})")


def test_the_issues_values_are_finite_balls_not_infinities() -> None:
    """sigmoid(-1e300) was 1/(1 + inf) in the exact engine: its slope oo, and the point called
    outside the domain of a function defined on all reals."""
    with ex.working_precision(ex.START_PREC):
        u = ex.from_float(-1e300)
        s = OPS["sigmoid"].value([u], None)
        (ds,) = OPS["sigmoid"].partials([u], s, None)
        (dsp,) = OPS["softplus"].partials([u], OPS["softplus"].value([u], None), None)
        for v in (s, ds, dsp):
            assert ex.is_finite(v) and not ex.is_zero_ball(v) and ex.sign(v) > 0
            assert ex.round_to_dtype(v, "float64") == 0.0  # below every float, yet not 0
        assert ex.is_finite(OPS["exp"].value([ex.from_float(1e300)], None))  # e^1e300: a finite ball


@pytest.mark.parametrize("sign", [1, -1])
def test_past_every_certifiable_precision_the_saturating_ops_still_bound_their_values(sign: int) -> None:
    """At +-2**50000 (an exponent past MAX_PREC, the most bits a rerun may use) no digit of
    e^(2**50000) is certifiable, but no formula here needs it: each exponential is of a number
    <= 0, whose ball is a certain tiny one. So every value and slope is a finite ball that rounds,
    in float64 and float32, to the float nearest the truth (e^-huge to 0, sigmoid to 0 or 1)."""
    u = ex.Q(sign * 2**50000)
    with ex.working_precision(ex.START_PREC):
        for name, value, slope in (("sigmoid", (1 + sign) / 2, 0.0), ("tanh", float(sign), 0.0),
                                   ("softplus", math.inf if sign > 0 else 0.0, 1.0 if sign > 0 else 0.0)):
            op = OPS[name]
            v = op.value([u], None)
            (d,) = op.partials([u], v, None)
            for dtype in ("float64", "float32"):
                assert ex.round_to_dtype(v, dtype) == value, (name, dtype)
                assert ex.round_to_dtype(d, dtype) == slope, (name, dtype)
        args = [u, ex.neg(u)]
        for name, param in (("logaddexp", None), ("softmax", 0), ("log_softmax", 0)):
            op = OPS[name]
            partials = op.partials(args, op.value(args, param), param)
            assert all(ex.round_to_dtype(d, "float64") is not None for d in partials), name


# (a, b) pairs for the two-argument fused ops: every sign and magnitude against every other
PAIRS = [(a, b) for a in (1e300, -1e300, 1e10, 800.0, -800.0, 0.0) for b in (1e300, -1e300, -800.0, 0.0) if a != b]


def _two(a: mpmath.mpf, b: mpmath.mpf) -> dict[str, tuple[Any, tuple[Any, Any]]]:
    """name -> (value, (d/da, d/db)) in mpmath, from quantities that do not cancel."""
    s0, s1 = 1 / (1 + mpmath.exp(b - a)), 1 / (1 + mpmath.exp(a - b))  # the softmax weights
    m = max(a, b)
    lse = m + mpmath.log1p(mpmath.exp(min(a, b) - m))
    return {
        "logaddexp": (lse, (s0, s1)),
        "logsumexp": (lse, (s0, s1)),
        "softmax": (s0, (s0 * s1, -s0 * s1)),
        "log_softmax": (-mpmath.log1p(mpmath.exp(b - a)), (s1, -s1)),
    }


@pytest.mark.parametrize("name", ["logaddexp", "logsumexp", "softmax", "log_softmax"])
@pytest.mark.parametrize("at", PAIRS, ids=repr)
def test_the_log_sum_exp_family_is_exact_at_every_magnitude(name: str, at: tuple[float, float]) -> None:
    """At (1e300, -1e300) the second weight is e^-2e300: formed as exp(b - logsumexp) it would
    need b - (1e300 + tiny) to 1,000 more bits than the working precision holds."""
    with mpmath.workprec(BITS):
        want_value, want_partials = _two(_mp(at[0]), _mp(at[1]))[name]
    op = OPS[name]
    param = 0 if name in ("softmax", "log_softmax") else None
    with ex.working_precision(ex.START_PREC):
        args = [ex.from_float(v) for v in at]
        value = op.value(args, param)
        partials = op.partials(args, value, param)
        _agrees(value, want_value, f"{name}{at}")
        for k, (got, want) in enumerate(zip(partials, want_partials)):
            _agrees(got, want, f"d{name}{at}/d{k}")


def test_the_rules_exact_values_of_the_fused_functions_at_huge_magnitudes() -> None:
    """The symbolic side's oracle (each rule's `exact`) is the same exact value."""
    with ex.working_precision(ex.START_PREC), mpmath.workprec(BITS):
        args = [ex.from_float(1e300), ex.from_float(-1e300)]
        got = RULES[type(sg.log_softmax(1, x, y))].exact([ex.ONE, *args])
        _agrees(got, -2 * _mp(1e300) - mpmath.log1p(mpmath.exp(-2 * _mp(1e300))), "log_softmax(1, 1e300, -1e300)")
        got = RULES[type(sg.softmax(1, x, y))].exact([ex.ONE, *args])
        _agrees(got, 1 / (1 + mpmath.exp(2 * _mp(1e300))), "softmax(1, 1e300, -1e300)")
        got = RULES[type(sg.sigmoid(x))].exact([ex.from_float(-MAXF)])
        _agrees(got, 1 / (1 + mpmath.exp(_mp(MAXF))), "sigmoid(-1.8e308)")


# ---------------------------------------------------------------- compare(), end to end

BY_HAND: dict[str, tuple[Callable[[sp.Basic], sp.Basic], Callable[[torch.Tensor], torch.Tensor]]] = {
    "exp": (sp.exp, torch.exp), "sinh": (sp.sinh, torch.sinh), "cosh": (sp.cosh, torch.cosh),
    "tanh": (sp.tanh, torch.tanh), "sigmoid": (sg.sigmoid, torch.sigmoid), "expm1": (expm1, torch.expm1),
    "erf": (sp.erf, torch.erf), "softplus": (sg.softplus, F.softplus),
}


def _torch(fn: Callable[[torch.Tensor], torch.Tensor], at: float, dtype: torch.dtype) -> tuple[float, float]:
    t = torch.tensor(at, dtype=dtype, requires_grad=True)
    out = fn(t)
    (g,) = torch.autograd.grad(out, t)
    return out.item(), g.item()


@pytest.mark.parametrize("name", sorted(BY_HAND))
@pytest.mark.parametrize("at", [1e300, -1e300, 1e10, -1e10, 800.0, -800.0, 0.0], ids=repr)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compare_at_every_magnitude_is_exact_and_names_no_false_domain(name: str, at: float, dtype: str) -> None:
    """Every op is defined on all reals: never `domain`; the executed slope is mpmath's (finite,
    however small or large); autograd's value is torch's own; where the exact slope rounds to
    autograd's finite float the entry agrees, and where autograd is inf an overflow is named."""
    if dtype == "float32" and abs(at) > 3e38:
        pytest.skip("not a float32")
    build, fn = BY_HAND[name]
    (e,) = sg.compare(build(x), at={x: at}, dtype=dtype).entries
    _, slope = _torch(fn, at, torch.float64 if dtype == "float64" else torch.float32)
    assert e.cause is not sg.Cause.DOMAIN and e.grad_symbolic is not None
    assert e.grad_autograd == slope or (math.isnan(slope) and math.isnan(e.grad_autograd))
    with mpmath.workprec(BITS):
        want = UNARY[name][1](_mp(at))
        got = mpmath.mpf(sp.Float(e.grad_executed, 40)._mpf_)
        assert (want == 0 and got == 0) or abs(got / want - 1) < mpmath.mpf(10) ** -30, (got, want)
    rounded = ex.round_to_dtype(ex.from_sympy(e.grad_executed), dtype)
    if math.isinf(slope):
        assert e.cause is sg.Cause.OVERFLOW  # past the dtype's range: never an agreement with inf
    elif rounded == slope:
        assert e.cause is sg.Cause.AGREE


@pytest.mark.parametrize(("build", "at", "wrt", "want"), [
    (lambda: sg.softplus(y), {y: -1e300}, y, lambda: mpmath.exp(-_mp(1e300)) / (1 + mpmath.exp(-_mp(1e300)))),
    (lambda: sg.sigmoid(y), {y: -1e300}, y, lambda: _sig_slope(_mp(-1e300))),
    (lambda: sg.logaddexp(x, y), {x: 1e300, y: -1e300}, y, lambda: 1 / (1 + mpmath.exp(2 * _mp(1e300)))),
    (lambda: sg.logaddexp(x, y), {x: -1e300, y: 1e300}, x, lambda: 1 / (1 + mpmath.exp(2 * _mp(1e300)))),
], ids=["softplus", "sigmoid", "logaddexp-b", "logaddexp-a"])
def test_the_issues_examples_agree_with_a_finite_exact_slope(build, at, wrt, want) -> None:  # type: ignore[no-untyped-def]
    """The issue: softplus(y) at -1e300 'agreed' with an executed slope oo; sigmoid(y) there was
    called `domain`. Both sides are now e^-1e300 exactly, and autograd's 0.0 (torch's own) is the
    float nearest it."""
    c = sg.compare(build(), at=at)
    e = next(en for en in c.entries if en.wrt == wrt)
    assert e.cause is sg.Cause.AGREE and e.grad_autograd == 0.0
    with mpmath.workprec(BITS):
        w = want()
        for side in (e.grad_symbolic, e.grad_executed):
            assert side.is_finite and side > 0
            assert abs(mpmath.mpf(sp.Float(side, 40)._mpf_) / w - 1) < mpmath.mpf(10) ** -30
