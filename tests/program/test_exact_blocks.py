"""A rational matrix product made a block of columns at a time (`exact._rational_blocks`): the
exact product, element for element (truth: Python's Fraction arithmetic), the same objects'
types and values as FLINT's whole product, and inside `exact.sharing` the held matrix's objects
where the element is the same number."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from flint import fmpq, fmpq_mat
from hypothesis import given, settings
from hypothesis import strategies as st

from symgrad.program import exact as ex


def _matrix(rng: np.random.Generator, rows: int, cols: int, wide: bool) -> np.ndarray:
    """Rationals as floats hold them, one element moved by 2**-240 of its size where `wide` (a run
    beside the point: that column's common denominator is 2**300)."""
    out = ex.full((rows, cols), ex.ZERO)
    for idx in np.ndindex(rows, cols):
        out[idx] = ex.from_float(float(rng.standard_normal()) * 2.0 ** int(rng.integers(-8, 8)))
    if wide:
        i, j = int(rng.integers(rows)), int(rng.integers(cols))
        out[i, j] = ex.add(out[i, j], ex.Q(1, 2**300))
    return out


def _fraction(v: Any) -> Fraction:
    return Fraction(int(v.p), int(v.q))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 6), st.integers(1, 9), st.integers(2, 13), st.booleans(), st.integers(1, 40))
def test_a_rational_product_by_blocks_is_the_exact_product(seed: int, n: int, k: int, m: int, wide: bool,
                                                           block: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _matrix(rng, n, k, False), _matrix(rng, k, m, wide)
    whole = fmpq_mat(a.tolist()) * fmpq_mat(b.tolist())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "RATIONAL_BLOCK", block)  # blocks of max(1, block // k) columns
        got = ex.matmul(a, b)
    assert got.shape == (n, m)
    for i in range(n):
        for j in range(m):
            exact = sum((_fraction(a[i, t]) * _fraction(b[t, j]) for t in range(k)), Fraction(0))
            assert type(got[i, j]) is fmpq
            assert _fraction(got[i, j]) == exact
            assert got[i, j] == whole[i, j]


def test_a_rational_product_by_blocks_shares_the_held_numbers() -> None:
    """Inside `sharing(held)`, each block's element that is the held's number is the held's object
    (an exact 0 too), and any other element its own: the same numbers as outside."""
    rng = np.random.default_rng(3)
    a, b = _matrix(rng, 4, 50, False), _matrix(rng, 50, 30, False)
    b[:, 7] = ex.ZERO
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "RATIONAL_BLOCK", 100)  # two columns a block: 15 blocks
        plain = ex.matmul(a, b)
        held = ex.matmul(a, b)
        held[2, 11] = ex.add(held[2, 11], ex.ONE)
        with ex.sharing([held]):
            shared = ex.matmul(a, b)
    for idx in np.ndindex(4, 30):
        assert shared[idx] == plain[idx]
        if idx[1] == 7:
            assert shared[idx] == 0
        if idx != (2, 11):
            assert shared[idx] is held[idx]
    assert shared[2, 11] is not held[2, 11] and shared[2, 11] == plain[2, 11]


def test_a_small_rational_product_is_flints_in_one_piece() -> None:
    """Below `RATIONAL_BLOCK` entries of b the product is FLINT's whole product, as before."""
    rng = np.random.default_rng(5)
    a, b = _matrix(rng, 3, 4, False), _matrix(rng, 4, 5, True)
    got = ex.matmul(a, b)
    whole = fmpq_mat(a.tolist()) * fmpq_mat(b.tolist())
    assert all(got[i, j] == whole[i, j] for i in range(3) for j in range(5))
