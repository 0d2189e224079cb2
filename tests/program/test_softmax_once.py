"""The exact log_softmax of a whole vector (`ops.log_softmax_all`) and softmax weights read the
largest argument and the exponentials once per vector: each value is the per-element formula's,
the same ball, and holds the exact value (SymPy at 60 digits); torch's float64 is within the dtype."""

from __future__ import annotations

import math

import mpmath
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

from symgrad.program import exact as ex
from symgrad.program import ops

FLOATS = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


def _same_ball(a: ex.Exact, b: ex.Exact) -> bool:
    return type(a) is type(b) and str(a) == str(b) and (not hasattr(a, "rad") or (a.mid(), a.rad()) == (b.mid(), b.rad()))


def _contains(v: ex.Exact, truth: sp.Expr) -> bool:
    mid, rad = mpmath.mpf(ex.to_float(v)), 0.0
    if hasattr(v, "rad"):
        rad = float(v.rad())
    return abs(sp.N(truth, 60) - sp.Float(mid, 60)) <= rad + abs(mid) * 2**-52 + 1e-300


@settings(max_examples=60, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=5))
def test_log_softmax_of_a_vector_is_each_elements_value(values: list[float]) -> None:
    a = [ex.from_float(v) for v in values]
    whole = ops.log_softmax_all(a)
    weights = ops.softmax_weights(a)
    exact = [sp.Rational(v) for v in values]
    total = sp.log(sum(sp.exp(u) for u in exact))
    t = torch.tensor(values, dtype=torch.float64)
    for i in range(len(a)):
        assert _same_ball(whole[i], ops.log_softmax(a, i))
        assert _contains(whole[i], exact[i] - total)
        assert math.isclose(ex.to_float(whole[i]), torch.log_softmax(t, 0)[i].item(), rel_tol=1e-12, abs_tol=1e-12)
        # the weights as written before the exponentials were shared: exp(u - m)/(1 + rest)
        m, _, rest = ops._largest(a)
        before = ex.div(ops.exp(ex.sub(a[i], m)), ex.add(ex.ONE, rest))
        assert _same_ball(weights[i], before)
        assert _contains(weights[i], sp.exp(exact[i] - total))


def test_an_infinite_logit_is_each_elements_value() -> None:
    # (torch 2.13 gives nan for every element here, and so do both formulas: the rows torch's
    # kernel makes NaN are tests/program/test_log_softmax_infinite.py's)
    a = [ex.from_float(1.0), ex.INF, ex.from_float(-2.0)]
    whole = [ex.to_float(v) for v in ops.log_softmax_all(a)]
    each = [ex.to_float(ops.log_softmax(a, i)) for i in range(3)]
    assert all((math.isnan(g) and math.isnan(w)) or g == w for g, w in zip(whole, each))
    assert all(math.isnan(ex.to_float(v)) for v in ops.log_softmax_all([ex.NAN, ex.ONE]))
