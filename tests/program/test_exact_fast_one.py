"""`exact_fast.whole` of a product with coefficient 1 whose first factor is a matrix of plain
rationals (data: one-hot labels, a mask) takes that factor as it is instead of 1 * each element:
every value and partial is the per-element formulas' own (the same rational or ball, type and
IEEE zero sign included), and holds the exact product (SymPy); a factor past `ex.norm`'s height, or
with a -0, still goes through `ex.mul`; the partial is never the factor's own array."""

from __future__ import annotations

import flint
import numpy as np
import sympy as sp
from hypothesis import given, settings, strategies as st

from symgrad.program import exact as ex
from symgrad.program import exact_fast as xf
from symgrad.program import ops

RATIONALS = st.one_of(
    st.fractions(max_denominator=10**6).map(ex.from_fraction),
    st.just(ex.ZERO), st.just(ex.ONE),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(ex.from_float),  # -0.0: NEG_ZERO
    st.integers(1, 2).map(lambda n: ex.Q(3) ** (n * 70000)),  # past ex.norm's height: a ball in ex.mul
)
OTHERS = st.one_of(
    RATIONALS,
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False).map(lambda x: ex.to_real(ex.from_float(x)) / 3),
    st.integers(0, 1).map(lambda i: (ex.INF, ex.NEG_INF)[i]),
)


def _same(a: ex.Exact, b: ex.Exact) -> bool:
    if ex.is_nan(a) or ex.is_nan(b):
        return ex.is_nan(a) and ex.is_nan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, flint.arb):
        return str(a) == str(b) and (a.mid(), a.rad()) == (b.mid(), b.rad())
    return a == b


def _matrix(values: list[ex.Exact], shape: tuple[int, int]) -> np.ndarray:
    m = ex.full(shape, ex.ZERO)
    for k, v in enumerate(values):
        m.flat[k] = v
    return m


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 2), st.data())
def test_one_times_a_rational_matrix_is_each_elements_product(rows: int, cols: int, others: int,
                                                             data: st.DataObject) -> None:
    shape = (rows, cols)
    n = rows * cols
    first = _matrix(data.draw(st.lists(RATIONALS, min_size=n, max_size=n)), shape)
    rest = [_matrix(data.draw(st.lists(OTHERS, min_size=n, max_size=n)), shape) for _ in range(others)]
    vals = [first, *rest]
    fast = xf.whole("mul", vals, ex.ONE, shape)
    assert fast is not None
    got, got_parts = fast
    op = ops.OPS["mul"]
    for idx in np.ndindex(*shape):
        args = [v[idx] for v in vals]
        value = op.value(args, ex.ONE)
        assert _same(got[idx], value)
        for k, d in enumerate(op.partials(args, value, ex.ONE)):
            assert _same(got_parts[k][idx], d)
        if all(type(a) is flint.fmpq and a.height_bits() < 200 for a in args):  # the exact product, by SymPy
            truth = sp.Mul(*[sp.Rational(int(a.p), int(a.q)) for a in args])
            v = got[idx]
            assert (ex.is_rational(v) and sp.Rational(int(v.p), int(v.q)) == truth) or \
                (ex.is_ball(v) and abs(sp.Float(ex.to_float(v), 30) - truth) <= float(v.rad()) + abs(truth) * 2**-50)
    for p in (got, *got_parts):
        assert all(p is not v for v in vals)  # never the factor's own array: adjoints and values are not shared


def test_one_hot_labels_times_log_probabilities() -> None:
    # the softmax-regression step Y * log_softmax: Y's zeros stay exact zeros, its ones give 1 * the ball (ex.mul's own ball)
    y = _matrix([ex.ONE, ex.ZERO, ex.ZERO, ex.ONE], (2, 2))
    logp = _matrix([ex.to_real(ex.from_float(-0.25)) / 3, ex.to_real(ex.Q(1, 2)).log(), ex.NEG_INF,
                    ex.to_real(ex.Q(1, 3))], (2, 2))
    got, (d_y, d_logp) = xf.whole("mul", [y, logp], ex.ONE, (2, 2))
    assert _same(got[0, 0], ex.mul(ex.ONE, logp[0, 0])) and _same(got[1, 1], ex.mul(ex.ONE, logp[1, 1]))
    assert got[0, 1] == 0 and type(got[0, 1]) is ex.NegativeZero  # 0 * a negative ball: IEEE's -0, as ex.mul says
    assert ex.is_nan(got[1, 0]) or _same(got[1, 0], ops.OPS["mul"].value([ex.ZERO, ex.NEG_INF], ex.ONE))
    assert all(_same(a, b) for a, b in zip(d_logp.flat, y.flat))
