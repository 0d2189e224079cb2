"""The exact side's shortcuts for small matrix programs (`exact_fast.whole`, `exact.ewise` through
numpy's loop, the ball-ball fast paths of `exact.add`/`sub`/`mul`) give every value exactly as the per-element
formulas gave it (the same rational, the same ball), and that value holds the exact one (SymPy at
60 digits); torch's float64 is within the dtype."""

from __future__ import annotations

import math

import flint
import mpmath
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

from symgrad.program import exact as ex
from symgrad.program import ops

FLOATS = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


def _same(a: ex.Exact, b: ex.Exact) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, flint.arb):
        return (a.mid(), a.rad()) == (b.mid(), b.rad()) and str(a) == str(b)
    return a == b


def _contains(v: ex.Exact, truth: sp.Expr) -> bool:
    mid, rad = mpmath.mpf(ex.to_float(v)), 0.0
    if hasattr(v, "rad"):
        rad = float(v.rad())
    return abs(sp.N(truth, 60) - sp.Float(mid, 60)) <= rad + abs(mid) * 2**-52 + 1e-300


# --------------------------------------------------------------------------- whole-matrix ops

from symgrad.program import exact_fast as xf  # noqa: E402

ELEMENTS = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(ex.from_float),  # -0.0 too
    st.fractions(max_denominator=10**6).map(ex.from_fraction),
    st.just(ex.ZERO),
    st.integers(1, 3).map(lambda n: ex.Q(3) ** (n * 40000)),  # past ex.norm's height: a ball per element
    st.just(ex.NEG_ZERO),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False).map(lambda x: ex.to_real(ex.from_float(x)) / 3),  # a ball
    st.integers(0, 2).map(lambda i: (ex.INF, ex.NEG_INF, ex.NAN)[i]),
)

NONZERO = st.fractions(max_denominator=10**9).filter(lambda f: f != 0).map(ex.from_fraction)


def _matrix(values: list[ex.Exact], shape: tuple[int, int]) -> "np.ndarray":
    m = ex.full(shape, ex.ZERO)
    for k, v in enumerate(values):
        m.flat[k] = v
    return m


def _per_element(name: str, vals: list, param, shape):  # type: ignore[no-untyped-def]
    """The per-element loop's (value, partials): `ops`' scalar formulas at each element."""
    op = ops.OPS[name]
    value = ex.full(shape, ex.ZERO)
    parts = [ex.full(shape, ex.ZERO) for _ in vals]
    for idx in np.ndindex(*shape):
        args = [v[idx] if ex.is_mat(v) else v for v in vals]
        value[idx] = op.value(args, param)
        for k, d in enumerate(op.partials(args, value[idx], param)):
            parts[k][idx] = d
    return value, parts


def _sympy(v: ex.Exact) -> sp.Rational:
    return sp.Rational(int(v.p), int(v.q))


import numpy as np  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["add", "sub3", "mul", "mul3", "pow2", "pow3"]), st.integers(1, 4), st.integers(1, 3), st.data())
def test_a_whole_matrix_op_is_each_elements_value(case: str, rows: int, cols: int, data: st.DataObject) -> None:
    shape = (rows, cols)
    n = 3 if case.endswith("3") and not case.startswith("pow") else 2
    kind = data.draw(st.sampled_from([ELEMENTS, NONZERO]))
    mats = [_matrix(data.draw(st.lists(kind, min_size=rows * cols, max_size=rows * cols)), shape) for _ in range(n)]
    if data.draw(st.booleans()):
        mats[-1] = data.draw(ELEMENTS)  # a scalar broadcast over the matrix
    if case.startswith("pow"):
        name, param, vals = "pow_int", int(case[-1]), mats[:1]
    elif case.startswith("mul"):
        name, param, vals = "mul", data.draw(st.sampled_from([ex.ONE, ex.Q(1, 2), ex.Q(-3)])), mats
    else:
        signs = tuple(data.draw(st.sampled_from([1, -1])) for _ in mats)
        name, param, vals = "add", (signs, data.draw(st.sampled_from([ex.ZERO, ex.Q(5, 7)]))), mats
    fast = xf.whole(name, vals, param, shape)
    value, parts = _per_element(name, vals, param, shape)
    flat = [x for v in vals for x in (v.flat if ex.is_mat(v) else [v])]
    if fast is None:
        assert any(ex.is_nan(x) for x in flat)  # the per-element loop's NaN rule decides
        return
    got, got_parts = fast
    assert got.shape == shape and len(got_parts) == len(parts)
    for a, b in zip(list(got.flat) + [x for p in got_parts for x in p.flat],
                    list(value.flat) + [x for p in parts for x in p.flat]):
        assert _same(a, b) or (ex.is_nan(a) and ex.is_nan(b))
    # and each is the exact value: SymPy's rational arithmetic (a ball contains it), torch's float64 beside it
    for idx in np.ndindex(*shape):
        at = [v[idx] if ex.is_mat(v) else v for v in vals]
        if not all(type(x) is flint.fmpq for x in at):
            continue
        args = [_sympy(x) for x in at]
        if name == "add":
            truth = _sympy(param[1]) + sum(s * a for s, a in zip(param[0], args))
        elif name == "mul":
            truth = _sympy(param) * sp.Mul(*args)
        else:
            truth = args[0] ** param
            d = got_parts[0][idx]
            assert (_sympy(d) if type(d) is flint.fmpq or ex.is_neg_zero(d) else None) == param * args[0] ** (param - 1) or _contains(d, param * args[0] ** (param - 1))
        v = got[idx]
        assert (ex.is_rational(v) and _sympy(v) == truth) or _contains(v, truth)
        if name == "pow_int" and all(abs(float(a)) < 1e100 for a in args):
            assert math.isclose(float(torch.tensor(float(args[0]), dtype=torch.float64) ** param), float(truth), rel_tol=1e-12)


def test_whole_matrix_ops_leave_zeros_and_balls_to_the_per_element_rules() -> None:
    # 0 * -2 is IEEE's -0 in ex.mul, and (-0)**3 is -0: ex.mul's and ex.ipow's own rules decide those
    a = _matrix([ex.ZERO, ex.Q(2)], (1, 2))
    b = _matrix([ex.Q(-2), ex.Q(3)], (1, 2))
    assert xf._rational("mul", [a, b], ex.ONE, (1, 2)) is None
    value, (da, db) = xf.whole("mul", [a, b], ex.ONE, (1, 2))
    assert ex.is_neg_zero(value[0, 0]) and value[0, 1] == 6 and db[0, 0] == 0 and not ex.is_neg_zero(db[0, 0]) and da[0, 0] == -2
    assert xf._rational("pow_int", [_matrix([ex.NEG_ZERO, ex.Q(2)], (1, 2))], 3, (1, 2)) is None
    value, _ = xf.whole("pow_int", [_matrix([ex.NEG_ZERO, ex.Q(2)], (1, 2))], 3, (1, 2))
    assert ex.is_neg_zero(value[0, 0]) and value[0, 1] == 8
    assert xf.whole("add", [_matrix([ex.NAN, ex.Q(2)], (1, 2)), b], ((1, 1), ex.ZERO), (1, 2)) is None
    got = xf.whole("mul", [b, b], ex.ONE, (1, 2))
    assert got is not None and list(got[0].flat) == [ex.Q(4), ex.Q(9)] and list(got[1][0].flat) == [ex.Q(-2), ex.Q(3)]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.data())
def test_ewise_through_numpys_loop_is_the_python_loops(rows: int, cols: int, data: st.DataObject) -> None:
    """`ex.ewise` calls the scalar function on each element in turn (numpy's loop): the same values,
    NaN, infinities, -0 and balls included, as a plain loop; a scalar broadcasts."""
    shape = (rows, cols)
    a = _matrix(data.draw(st.lists(ELEMENTS, min_size=rows * cols, max_size=rows * cols)), shape)
    b = data.draw(st.one_of(ELEMENTS, st.lists(ELEMENTS, min_size=rows * cols, max_size=rows * cols).map(
        lambda v: _matrix(v, shape))))
    for fn in (ex.add, ex.sub, ex.mul, ex.div):
        got = ex.ewise(fn, a, b)
        assert isinstance(got, np.ndarray) and got.shape == shape
        for k in range(rows * cols):
            want = fn(a.flat[k], b.flat[k] if ex.is_mat(b) else b)
            assert _same(got.flat[k], want) or (ex.is_nan(got.flat[k]) and ex.is_nan(want))
            assert ex.is_neg_zero(got.flat[k]) == ex.is_neg_zero(want)


def test_two_balls_add_sub_mul_as_the_general_rule() -> None:
    """Two balls: the fast path of ex.add/sub/mul is Arb's own arithmetic, as the general rule
    (to_real of a ball is itself); an infinity beside a finite ball stays that infinity."""
    x, y = ex.to_real(ex.Q(1, 3)), ex.to_real(ex.Q(-2, 7))
    assert _same(ex.add(x, y), x + y) and _same(ex.sub(x, y), x - y) and _same(ex.mul(x, y), x * y)
    assert _contains(ex.mul(x, y), sp.Rational(1, 3) * sp.Rational(-2, 7))
    inf = flint.arb("inf")
    assert ex.add(inf, x).is_finite() is False and ex.add(inf, x).rad().is_zero()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_from_floats_is_from_float_of_each_element(rows: int, cols: int, data: st.DataObject) -> None:
    """A point's matrix made exact in one pass: each element's exact binary value (SymPy's
    Rational of the float), -0.0 as NEG_ZERO, subnormals and float32 values included."""
    floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([-0.0, 0.0, 5e-324, -1e308]))
    values = data.draw(st.lists(floats, min_size=rows * cols, max_size=rows * cols))
    for dtype in (np.float64, np.float32):
        with np.errstate(over="ignore"):
            a = np.array(values, dtype=dtype).reshape(rows, cols)
        if not np.isfinite(a).all():
            continue
        got = ex.from_floats(a)
        assert got.shape == (rows, cols) and got.dtype == object
        for k, v in enumerate(a.ravel().tolist()):
            want = ex.from_float(v)
            assert type(got.flat[k]) is type(want) and got.flat[k] == want
            assert sp.Rational(int(got.flat[k].p), int(got.flat[k].q)) == sp.Rational(v)
            assert ex.is_neg_zero(got.flat[k]) == (v == 0 and math.copysign(1, v) < 0)
