"""A log_softmax's backward reads the exponentials its forward found (`ops.KeptRows`, `Op.kept`)
instead of computing them again: the value and every adjoint are the same balls as without them,
and hold the exact value (SymPy at 60 digits, g_j - softmax_j * sum g); torch's float64 backward
is within the dtype. A NaN row (a NaN, a +inf, all -inf) stays NaN, as torch's kernel makes it."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

from symgrad.program import exact as ex
from symgrad.program import ops

FLOATS = st.floats(-40, 40, allow_nan=False, allow_infinity=False)
SPECIAL = st.sampled_from([math.inf, -math.inf, math.nan])


def _same(a: ex.Exact, b: ex.Exact) -> bool:
    if ex.is_nan(a) or ex.is_nan(b):
        return ex.is_nan(a) and ex.is_nan(b)
    return type(a) is type(b) and str(a) == str(b) and (not hasattr(a, "rad") or (a.mid(), a.rad()) == (b.mid(), b.rad()))


def _contains(v: ex.Exact, truth: sp.Expr) -> bool:
    mid = ex.to_float(v)
    rad = float(v.rad()) if hasattr(v, "rad") else 0.0
    return abs(sp.N(truth, 60) - sp.Float(mid, 60)) <= rad + abs(mid) * 2**-52 + 1e-300


@st.composite
def matrices(draw: st.DrawFn) -> tuple[list[list[float]], int | None, list[list[float]]]:
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = [[draw(FLOATS) for _ in range(cols)] for _ in range(rows)]
    if draw(st.booleans()):  # a special value somewhere: torch's NaN rows and -inf logits
        x[draw(st.integers(0, rows - 1))][draw(st.integers(0, cols - 1))] = draw(SPECIAL)
    g = [[draw(FLOATS) for _ in range(cols)] for _ in range(rows)]
    return x, draw(st.sampled_from([None, 0, 1])), g


def _exact(m: list[list[float]]) -> np.ndarray:
    return np.array([[ex.to_real(v) if not math.isfinite(v) else ex.from_float(v) for v in row] for row in m],
                    dtype=object)


@settings(max_examples=80, deadline=None)
@given(matrices())
def test_kept_rows_give_the_same_value_and_backward(case: tuple[list[list[float]], int | None, list[list[float]]]) -> None:
    x, dim, g = case
    a, grad = _exact(x), _exact(g)
    rows, cols = a.shape
    p = (rows, cols) if dim is None else (rows, cols, dim)
    op = ops.OPS["log_softmax_of"]
    assert op.kept is not None
    plain = op.value([a], p)
    value, kept = op.kept([a], p)
    assert isinstance(kept, ops.KeptRows) and kept.value is value
    for u, w in zip(plain.flat, value.flat):
        assert _same(u, w)
    (again,) = op.vjp([a], plain, p, grad)  # without what the forward found: every exponential again
    (read,) = op.vjp([a], kept, p, grad)
    for u, w in zip(again.flat, read.flat):
        assert _same(u, w)
    # against torch's own backward, and the exact truth where every logit is finite
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = torch.log_softmax(t.reshape(-1), 0).reshape(rows, cols) if dim is None else torch.log_softmax(t, dim)
    (tg,) = torch.autograd.grad(out, t, torch.tensor(g, dtype=torch.float64))
    for k, w in enumerate(read.flat):
        want = tg.reshape(-1)[k].item()
        got = ex.to_float(w)
        assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    if all(math.isfinite(v) for row in x for v in row):
        groups = ops.softmax_groups(p)
        exact = [sp.Rational(v) for row in x for v in row]
        gs = [sp.Rational(v) for row in g for v in row]
        for group in groups:
            total = sum(gs[k] for k in group)
            lse = sp.log(sum(sp.exp(exact[k]) for k in group))
            for k in group:
                assert _contains(value.flat[k], exact[k] - lse)
                assert _contains(read.flat[k], gs[k] - sp.exp(exact[k] - lse) * total)


def test_the_vector_op_keeps_them_too() -> None:
    a = [ex.from_float(v) for v in (0.5, -1.25, 3.0, 1000.0)]
    op = ops.OPS["log_softmax_vector"]
    assert op.kept is not None
    p = (4, 1)
    value, kept = op.kept(a, p)
    g = ex.full((4, 1), ex.ONE)
    g[2, 0] = ex.Q(-3)
    again, read = op.vjp(a, op.value(a, p), p, g), op.vjp(a, kept, p, g)
    assert all(_same(u, w) for u, w in zip(again, read))
    xs = [sp.Rational(v) for v in (0.5, -1.25, 3.0, 1000.0)]
    gs = [1, 1, -3, 1]
    lse = sp.log(sum(sp.exp(u) for u in xs))
    for k in range(4):  # g_k - softmax_k * sum(g), sum(g) = 0 here: g itself, exactly
        assert _contains(read[k], gs[k] - sp.exp(xs[k] - lse) * sum(gs))
        truth = sp.N(xs[k] - lse, 600)  # at 1000 the value is -1.1e-433: 60 digits would not see it
        ball = ex.to_real(value[k, 0])
        mid, rad = (sp.Float(b.str(60, radius=False), 600) for b in (ball.mid(), ball.rad()))
        assert abs(truth - mid) <= rad * (1 + sp.Float(2)**-20) and truth != 0


ROW = st.one_of(
    FLOATS.map(ex.from_float),
    FLOATS.map(lambda x: ex.to_real(ex.from_float(x)) / 3),
    st.just(ex.NEG_ZERO),
    st.integers(0, 3).map(lambda i: (ex.INF, ex.NEG_INF, ex.NAN, ex.INDETERMINATE)[i]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ROW, min_size=0, max_size=5))
def test_a_nan_row_is_torchs(row: list[ex.Exact]) -> None:
    # the definition, element by element: a NaN, a +inf, or every element infinite (all -inf)
    infinite = [u for u in row if ex.is_nan(u) or not ex.is_finite(u)]
    want = any(ex.is_nan(u) or ex.sign(u) > 0 for u in infinite) or len(infinite) == len(row)
    assert ops._nan_row(row) == want
    if row and all(ex.is_finite(u) for u in row):
        assert not ops._nan_row(row)
        floats = [ex.to_float(u) for u in row]
        assert not any(math.isnan(v) for v in torch.log_softmax(torch.tensor(floats, dtype=torch.float64), 0).tolist())
