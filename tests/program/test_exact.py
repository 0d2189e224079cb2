"""The exact engine's numbers (`program.exact`): an infinity beside a finite ball.

A pole (1/x at an exact 0) is an exact infinity. Arb keeps a finite ball's radius in a sum with an
infinity (inf + [1/3 +/- 1e-58] is [inf +/- 1e-58]), and that read as a ball of no certain bit: a
pole beside any value that is not a dyadic rational (1/x + 1/3, 1/x + pi, 1.0/x + 1.0/y at (3, 0))
asked for more precision until `PrecisionError` ('the program's balls lost more than 10**9 bits')
instead of being reported as the pole it is (`domain`), as 1/x + 1/2 was. The rule: an infinity
plus or minus any finite number is that infinity, exactly; inf - inf is nan; a ball of infinite
radius still says nothing.
"""

from __future__ import annotations

import math

import flint
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.program import exact as ex

x, y = sp.symbols("x y")

# Finite exact values: rationals (dyadic or not), and balls of transcendental numbers, tiny and huge.
RATIONALS = st.builds(ex.Q, st.integers(-10**30, 10**30), st.integers(1, 10**30))
BALLS = st.builds(lambda c, k: ex.to_real(ex.from_sympy(c)) * flint.arb(2) ** k,
                  st.sampled_from([sp.pi, -sp.E, sp.sqrt(2), sp.Rational(1, 3), sp.log(3)]), st.integers(-2000, 2000))
FINITE = st.one_of(RATIONALS, BALLS)


def _exactly(v: ex.Exact, sign: int) -> None:
    assert not ex.is_finite(v) and not ex.is_nan(v) and not ex.is_indeterminate(v)
    assert ex.lost_bits(v) == 0 and ex.to_real(v).rad().is_zero()
    assert ex.to_sympy(v) == sign * sp.oo
    assert ex.to_float(v) == sign * math.inf and ex.round_to_dtype(v, "float64") == sign * math.inf


@settings(max_examples=80, deadline=None)
@given(v=FINITE)
def test_an_infinity_plus_or_minus_a_finite_number_is_that_infinity(v: ex.Exact) -> None:
    with ex.working_precision(ex.START_PREC):
        _exactly(ex.add(ex.INF, v), 1)
        _exactly(ex.add(v, ex.NEG_INF), -1)
        _exactly(ex.sub(v, ex.INF), -1)
        _exactly(ex.sub(ex.INF, v), 1)
        _exactly(ex.add(ex.div(ex.ONE, ex.ZERO), v), 1)  # a pole, then a sum
        assert ex.is_nan(ex.add(ex.sub(ex.INF, v), ex.NEG_INF))  # inf - inf
        assert ex.is_indeterminate(ex.add(ex.INF, ex.INDETERMINATE))  # a ball that says nothing stays so


@settings(max_examples=30, deadline=None)
@given(v=FINITE)
def test_a_matrix_adjoint_with_a_pole_keeps_its_infinity_exact(v: ex.Exact) -> None:
    """Adjoints of matrices are summed by numpy's object loop (`accumulate`): -inf + v is -inf."""
    with ex.working_precision(ex.START_PREC):
        a = ex.mat([[ex.NEG_INF, ex.Q(1, 3)], [ex.ONE, ex.INF]])
        b = ex.mat([[v, v], [v, ex.NEG_INF]])
        out = ex.accumulate(a, b)
        _exactly(out[0, 0], -1)
        assert ex.is_nan(out[1, 1])
        assert ex.is_finite(out[0, 1]) and ex.is_finite(out[1, 0])


@pytest.mark.parametrize("c", [sp.Rational(1, 3), sp.Rational(1, 2), sp.pi, sp.sqrt(2), sp.Float(0.1), sp.Integer(0)], ids=str)
def test_a_pole_beside_any_value_is_domain(c: sp.Basic) -> None:
    """1/x + c at 0, and log(x) + c: a pole (log's -inf) beside a value of any kind is domain,
    the executed derivative -oo (+oo), autograd torch's -inf (+inf)."""
    for f, slope in ((1 / x + c, -sp.oo), (sp.log(x) + c, sp.oo)):
        t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
        lowered = sg.lower(f)
        (torch_grad,) = torch.autograd.grad(lowered(x=t), t)
        (e,) = sg.compare(f, at={x: 0.0}).entries
        assert e.cause is sg.Cause.DOMAIN and e.grad_symbolic is None
        assert e.grad_executed == slope and e.grad_autograd == float(slope) == torch_grad.item()


@pytest.mark.parametrize("a", [3.0, 0.1, -7.0, 2.0, 1e-300])
def test_two_poles_beside_each_other_are_domain_with_exact_slopes(a: float) -> None:
    """1/x + 1/y at (a, 0): both entries domain (the function has no value there); the executed
    slope in x is -1/a**2 exactly (the binary value a holds), in y -oo."""
    f = 1 / x + 1 / y
    tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, 0.0))
    gx, gy = torch.autograd.grad(sg.lower(f)(x=tx, y=ty), (tx, ty))
    comparison = sg.compare(f, at={x: a, y: 0.0})
    ex_, ey = comparison.entries
    assert ex_.cause is ey.cause is sg.Cause.DOMAIN
    assert ex_.grad_executed == -1 / sp.Rational(a) ** 2 and ey.grad_executed == -sp.oo
    assert ex_.grad_autograd == gx.item() and ey.grad_autograd == gy.item() == -math.inf
