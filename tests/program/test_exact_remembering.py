"""A large product of balls made a block of columns at a time, and `exact.remembering`: a later
product of the same left factor takes the blocks of the right factor that hold the same numbers
from the product made before, and computes the others (a model's runs beside a kink: X @ W1 with
one element moved, X.T @ G with one column of G moved). Truths: Python's Fraction arithmetic (a
rational product), the exact product inside each ball (Arb at 2,000 bits), FLINT's own product of
each block, and the same product made with nothing remembered."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import flint
import numpy as np
import pytest
from flint import arb_mat, fmpq, fmpq_mat
from hypothesis import given, settings
from hypothesis import strategies as st

from symgrad.program import exact as ex


def _rationals(rng: np.random.Generator, rows: int, cols: int) -> list[list[fmpq]]:
    return [[ex.Q(int(rng.integers(-9, 10)), int(rng.integers(1, 8))) for _ in range(cols)] for _ in range(rows)]


def _fraction(v: Any) -> Fraction:
    return Fraction(int(v.p), int(v.q))


def _exact_product(qa: list[list[fmpq]], qb: list[list[fmpq]], i: int, j: int) -> Fraction:
    return sum((_fraction(qa[i][t]) * _fraction(qb[t][j]) for t in range(len(qb))), Fraction(0))


def _contains(ball: Any, q: Fraction) -> bool:
    with ex.working_precision(2000):  # the rational as a ball far narrower than the product's
        return bool(ball.contains(flint.arb(fmpq(q.numerator, q.denominator))))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 5), st.integers(1, 6), st.integers(2, 12), st.integers(1, 30))
def test_a_ball_product_by_blocks_holds_the_exact_product_and_is_each_blocks_own(seed: int, n: int, k: int, m: int,
                                                                                block: int) -> None:
    rng = np.random.default_rng(seed)
    qa, qb = _rationals(rng, n, k), _rationals(rng, k, m)
    with ex.working_precision(192):
        a, b = ex.mat(qa), ex.mat([[ex.to_real(q) for q in row] for row in qb])  # 1/3 as a ball: not exact
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ex, "BALL_BLOCK", block)  # blocks of max(1, block // n) columns
            got = ex.matmul(a, b)
        width = max(1, block // n) if n * m > block else m
        for s in range(0, m, width):
            own = arb_mat(fmpq_mat(qa)) * arb_mat([[b[t, j] for j in range(s, min(m, s + width))] for t in range(k)])
            for i in range(n):
                for j in range(s, min(m, s + width)):
                    assert _contains(got[i, j], _exact_product(qa, qb, i, j))
                    assert ex.same_number(got[i, j], own[i, j - s])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 11), st.booleans())
def test_a_remembered_ball_product_gives_its_blocks_of_the_same_numbers(seed: int, col: int, rebuilt: bool) -> None:
    """Inside `remembering` (then `sharing`, as the one-sided runs are): a product of a copy of the
    left factor (the same objects) and a right factor whose column `col` moved takes the made
    product's very objects in every block that does not hold `col`, and in that block computes
    what the product computes with nothing remembered. `rebuilt`: the right factor's other numbers
    new objects (a run's recomputed adjoint), the same numbers."""
    rng = np.random.default_rng(seed)
    qa, qb = _rationals(rng, 3, 4), _rationals(rng, 4, 12)
    with ex.working_precision(192), pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "BALL_BLOCK", 9)  # blocks of 3 columns
        a, b = ex.mat(qa), ex.mat([[ex.to_real(q).exp() for q in row] for row in qb])
        moved = ex.mat([[ex.to_real(q).exp() if rebuilt else x for q, x in zip(row, brow)] for row, brow in zip(qb, b)])
        moved[1, col] = ex.add(moved[1, col], ex.Q(1, 3))
        plain = ex.matmul(a, moved)  # nothing remembered
        with ex.remembering():
            made = ex.matmul(a, b)
            held = made.copy()  # the gradient that holds the product's objects
            with ex.sharing([held]):
                got = ex.matmul(a.copy(), moved)
        for i, j in np.ndindex(3, 12):
            assert ex.same_number(got[i, j], plain[i, j])
            if j // 3 != col // 3:
                assert got[i, j] is made[i, j]
        with ex.remembering():  # another precision: nothing is taken
            ex.matmul(a, b)
            with ex.working_precision(256):
                again = ex.matmul(a, b)
        assert not any(x is y for x, y in zip(again.flat, made.flat))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 9), st.integers(0, 3))
def test_a_remembered_rational_product_computes_the_moved_columns_alone(seed: int, col: int, row: int) -> None:
    """A rational product remembered at the point's precision, then made at a run beside it
    (1,700 bits, one element of the right factor moved by 2**-300): every column that did not
    move is the made product's objects (a rational is the same at every precision), the moved one
    is the exact product (Fraction arithmetic)."""
    rng = np.random.default_rng(seed)
    qa, qb = _rationals(rng, 2, 4), _rationals(rng, 4, 10)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "RATIONAL_BLOCK", 12)  # three columns a block
        a, b = ex.mat(qa), ex.mat(qb)
        moved = b.copy()
        moved[row, col] = ex.add(moved[row, col], ex.Q(1, 2**300))
        qb[row][col] = moved[row, col]
        with ex.remembering():
            with ex.working_precision(192):
                made = ex.matmul(a, b)
            with ex.working_precision(1700):
                got = ex.matmul(a, moved)
    for i, j in np.ndindex(2, 10):
        assert type(got[i, j]) is fmpq and _fraction(got[i, j]) == _exact_product(qa, qb, i, j)
        if j != col:
            assert got[i, j] is made[i, j]


def test_outside_remembering_nothing_is_kept_and_inside_sharing_nothing_is_made() -> None:
    rng = np.random.default_rng(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "RATIONAL_BLOCK", 4)
        a, b = ex.mat(_rationals(rng, 2, 4)), ex.mat(_rationals(rng, 4, 6))
        first = ex.matmul(a, b)
        assert not any(x is y for x, y in zip(ex.matmul(a, b).flat, first.flat))
        for held in ([ex.full((5, 5), ex.ZERO)], []):
            with ex.remembering():
                with ex.sharing(held):
                    inside = ex.matmul(a, b)  # made inside `sharing`: not a product to take from
                again = ex.matmul(a, b)
                assert not any(x is y for x, y in zip(again.flat, inside.flat))
                assert all(x is y for x, y in zip(ex.matmul(a, b).flat, again.flat))
