"""The fused reductions (`program/reductions.py`): their exact values and partials are torch's
(amax/amin split a tie evenly, max_at/min_at give it to the first index, var/std torch's
backward with std's mask at equal elements), checked against torch itself on small vectors of
binary fractions; their mathematics is Max/Min and sqrt(sum((x - mean)**2)/(n - c)) (SymPy's
exact derivative away from ties); a tie of three has one-sided derivatives 0 and 1 (the two
left still tie below it); and a sweep marks the points on a tie."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.program.ops import OPS
from symgrad.program.reductions import amax, max_at, std, std_along, var

TORCH = {
    "amax": lambda t, p: torch.amax(t, 0), "amin": lambda t, p: torch.amin(t, 0),
    "max_at": lambda t, p: torch.max(t, 0).values, "min_at": lambda t, p: torch.min(t, 0).values,
    "var": lambda t, p: torch.var(t, correction=p), "std": lambda t, p: torch.std(t, correction=p),
}
VALUES = st.sampled_from([F(-2), F(-1), F(-1, 2), F(0), F(1, 4), F(1), F(3, 2), F(3)])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(TORCH)), st.lists(VALUES, min_size=2, max_size=5), st.sampled_from([0, 1]))
def test_values_and_partials_are_torchs(op: str, values: list[F], correction: int) -> None:
    """Exact value and partials, rounded to float64, are torch's own forward and backward (the
    partials of max/min are exact binary fractions or 1/k: equal; var/std within a rounding)."""
    args = [ex.Q(v.numerator, v.denominator) for v in values]
    leaf = torch.tensor([float(v) for v in values], dtype=torch.float64, requires_grad=True)
    out = TORCH[op](leaf, correction)
    (grad,) = torch.autograd.grad(out, leaf)
    with ex.working_precision(ex.START_PREC):
        value = OPS[op].value(args, correction)
        partials = OPS[op].partials(args, value, correction)
        got = [ex.to_float(p) for p in partials]
    assert ex.to_float(value) == pytest.approx(float(out.detach()), rel=1e-15, abs=1e-300)
    if op in ("var", "std"):
        assert got == pytest.approx(grad.tolist(), rel=1e-14, abs=1e-300)
    else:
        assert got == grad.tolist()


def test_the_mathematics_is_max_and_the_spread() -> None:
    a, b, c = sp.symbols("a b c", real=True)
    point = {a: sp.Rational(1, 2), b: 2, c: sp.Rational(-3, 4)}
    assert amax(a, b, c).written_out() == sp.Max(a, b, c)
    mean = (a + b + c) / 3
    spread = sp.sqrt(((a - mean) ** 2 + (b - mean) ** 2 + (c - mean) ** 2) / 2)
    for k, s in enumerate((a, b, c)):
        assert abs(sp.N(sp.diff(std(1, a, b, c), s).subs(point) - sp.diff(spread, s).subs(point), 40)) < 1e-30
        assert sp.diff(var(0, a, b, c), s).subs(point) == sp.diff(spread**2 * 2 / 3, s).subs(point)
    assert sp.N(std_along(1, 2, 2, 0, 1, a, b, c, a).subs(point), 30) == sp.N(std(1, b, a).subs(point), 30)
    assert sp.diff(std_along(1, 2, 2, 0, 1, a, b, c, a), b) == sp.diff(std(1, b, a), b)


def test_a_three_way_tie_has_one_sided_zero_and_one() -> None:
    """Just below a tie of three the two others still tie: the moved argument's slope is 0
    there, 1 above; torch's amax gives 1/3, max_at 1 to the first and 0 to the others."""
    x, y, z = sp.symbols("x y z", real=True)
    for node, executed in ((amax(x, y, z), [sp.Rational(1, 3)] * 3), (max_at(x, y, z), [1, 0, 0])):
        c = sg.compare(node, at={x: 2.0, y: 2.0, z: 2.0})
        assert [e.grad_executed for e in c.entries] == executed
        for e in c.entries:
            assert e.cause.id == "kink" and e.one_sided == (0, 1)


def test_a_sweep_marks_the_ties() -> None:
    x, y = sp.symbols("x y", real=True)
    xs, ys = np.array([0.5, 1.0, 1.5, 1.0]), np.array([1.0, 1.0, 1.0, 2.0])
    for node, kinks in ((amax(x, y), 1), (std(1, x, y), 1), (std_along(1, 2, 2, 1, 0, x, y, y, 2), 1)):
        s = sg.sweep(node, over={x: xs, y: ys}, progress=False)
        assert s.counts.get("kink", 0) == kinks, (node, s.counts)
