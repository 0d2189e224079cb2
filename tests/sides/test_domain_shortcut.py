"""`executed.domain_violation` on a path whose every value and slope is finite skips the element
masks and answers from the ops' own domains alone (the common case, per call). It must name the
same step as the full check (`_nonfinite_violation`), on finite paths and others; and the verdict
is the mathematics': atan2 at the origin (every value and slope finite, torch masks the slope to
0) is a domain cause, 0**y with y > 0 is not, sqrt at 0 (an infinite slope) is."""

from __future__ import annotations

import math

import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.sides.executed import _nonfinite_violation, domain_violation, run
from symgrad.sides.lowering import lower

x, y = sp.symbols("x y", real=True)

EXPRESSIONS = [
    sp.atan2(y, x),
    x**y,
    sp.sqrt(x) + y,
    sp.log(x) * y,
    sp.sin(x) * y + sp.exp(y),
    1 / x + y,
    sp.Max(x, 0) * y,
    sp.Abs(x - y) + sp.atan2(x, y),
]
VALUES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 3.0])


def _path(e: sp.Expr, xv: float, yv: float):  # type: ignore[no-untyped-def]
    lowered = lower(e)
    point = {s: ex.from_float(v) for s, v in zip(lowered.inputs, [{"x": xv, "y": yv}[n] for n in lowered.inputs])}
    with ex.working_precision(ex.START_PREC):
        return run(lowered, point)


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(EXPRESSIONS), VALUES, VALUES)
def test_the_shortcut_names_the_step_the_full_check_names(e: sp.Expr, xv: float, yv: float) -> None:
    path = _path(e, xv, yv)
    with ex.working_precision(ex.START_PREC):
        assert domain_violation(path) is _nonfinite_violation(path, None)


def test_atan2_at_the_origin_is_outside_its_domain_with_every_value_finite() -> None:
    path = _path(sp.atan2(y, x), 0.0, 0.0)
    # every value and slope of the path is finite: the shortcut decides
    assert all(ex.is_finite(v) for st_ in path.steps for v in (*ex.elements(st_.value), *st_.partials))
    with ex.working_precision(ex.START_PREC):
        found = domain_violation(path)
    assert found is not None and found.op == "atan2"
    c = sg.compare(sp.atan2(y, x), at={x: 0.0, y: 0.0})
    assert c.cause.id == "domain"
    # torch's own slope there, which the mathematics does not have: 0 and 0
    tx = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    assert [g.item() for g in torch.autograd.grad(torch.atan2(ty, tx), [tx, ty])] == [0.0, 0.0]


def test_finite_paths_agree_and_an_infinite_slope_is_still_found() -> None:
    c = sg.compare(x**y, at={x: 0.0, y: 2.0})  # 0**2: flat in y there, a real number
    assert all(e.cause.id != "domain" for e in c.entries)
    assert sp.Rational(c.entries[0].grad_executed) == 0
    c = sg.compare(sp.sin(x) * y, at={x: 0.5, y: 3.0})
    assert c.ok and abs(float(c.entries[0].grad_symbolic) - 3 * math.cos(0.5)) < 1e-15
    c = sg.compare(sp.sqrt(x) + y, at={x: 0.0, y: 1.0})  # sqrt's slope at 0 is infinite
    assert c.entries[0].cause.id == "domain"
