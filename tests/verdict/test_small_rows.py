"""A small row's floats and closeness are read in plain Python (`compare._row_floats`), a large
one's with numpy: the same float64 operations, so the same bits and the same answers (hypothesis
over exact values, NaN, infinities, None, and autograd values of every kind). A comparison's
title is written when read: the same text as before, and a traced torch function's agreeing
entries still agree against torch's autograd and the exact derivative."""

from __future__ import annotations

import math
import struct

import numpy as np
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.verdict import compare as cmp_mod
from symgrad.verdict.records import Later

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
EXACTS = st.one_of(
    st.floats(-1e308, 1e308, allow_nan=False, allow_infinity=False).map(ex.from_float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(lambda x: ex.to_real(ex.from_float(x)) / 3),
    st.integers(0, 2).map(lambda i: (ex.INF, ex.NEG_INF, ex.NAN)[i]),
    st.just(None),
)
AUTOS = st.one_of(FLOATS, st.just(None), st.integers(-3, 3))


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(EXACTS, AUTOS), min_size=1, max_size=cmp_mod.SMALL_ROW),
       st.sampled_from([1e-7, 1e-12, 0.5]), st.sampled_from([2.2250738585072014e-308, 1.1754943508222875e-38]))
def test_a_small_row_is_the_arrays_answer(pairs: list[tuple[object, object]], rtol: float, tiny: float) -> None:
    exes = [e for e, _ in pairs]
    autos = [[a for _, a in pairs]]
    width = len(exes)
    executed, autograd, closes = cmp_mod._row_floats(exes, autos, width, rtol, tiny)
    # the arrays' way, as a row of more than SMALL_ROW entries is read
    want_e = np.fromiter((cmp_mod._float_of(x) for x in exes), dtype=np.float64, count=width)
    want_a = np.empty(width, dtype=np.float64)
    cmp_mod._auto_floats(autos, want_a)
    want_c = list(cmp_mod._each_auto([cmp_mod._close(want_a, want_e, rtol, tiny)]))
    assert [_bits(x) for x in executed] == [_bits(float(x)) for x in want_e]
    assert [_bits(x) for x in autograd] == [_bits(float(x)) for x in want_a]
    assert [bool(c) for c in closes] == [bool(c) for c in want_c]
    # (an infinite executed value may be "close": plainly_agrees asks that it is finite next)


def test_a_large_row_goes_through_the_arrays() -> None:
    n = cmp_mod.SMALL_ROW + 1
    exes = [ex.from_float(0.5)] * n
    executed, autograd, closes = cmp_mod._row_floats(exes, [np.full(n, 0.5)], n, 1e-7, 1e-308)
    assert isinstance(executed, np.ndarray) and isinstance(autograd, np.ndarray)
    assert all(closes)


def _f(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x) * w).sum()


def test_title_is_written_when_read_and_entries_agree() -> None:
    x = torch.tensor([0.3, -1.2], dtype=torch.float64)
    w = torch.tensor([2.0, 0.5], dtype=torch.float64)
    c = sg.compare(_f, at=(x, w))
    assert type(c.__dict__["title"]) is Later  # nothing written yet
    assert c.title.startswith("_f(x, w) from ") and c.title == cmp_mod.title(_f)
    assert type(c.__dict__["title"]) is str
    assert c.ok and len(c.entries) == 4
    xs, wt = x.clone().requires_grad_(), w.clone().requires_grad_()
    gx, gw = torch.autograd.grad(_f(xs, wt), (xs, wt))
    for k, e in enumerate(c.entries):
        want = (gx if k < 2 else gw)[k % 2].item()
        assert e.grad_autograd == want
        truth = sp.cos(sp.Rational(x[k].item())) * sp.Rational(w[k].item()) if k < 2 else sp.sin(sp.Rational(x[k - 2].item()))
        assert abs(float(e.grad_symbolic) - float(truth)) <= 1e-15 * max(1.0, abs(float(truth)))
    assert "_f(x, w)" in str(c)
