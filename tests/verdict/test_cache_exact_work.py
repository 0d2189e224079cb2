"""`point.exact_work` is kept on the lowered program it was made for (a property of its statements
and its inputs' shapes alone): the kept figure is the one made afresh, each lowered program has its
own (another shape, another program, a `replace`d copy), and a program too large is refused every time."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sympy as sp

import symgrad as sg
from symgrad.verdict import point


def _product(n: int, m: int, k: int) -> object:
    a, b = sp.MatrixSymbol("A", n, m), sp.MatrixSymbol("B", m, k)
    return sg.lower(sp.OneMatrix(1, n) * (a * b) * sp.OneMatrix(k, 1))


def test_each_lowered_program_keeps_its_own_figure() -> None:
    small, large = _product(3, 4, 5), _product(30, 40, 50)
    first = point.exact_work(small)
    assert first == point._work(small) and first[0] >= 3 * 4 * 5
    assert point.exact_work(large) == point._work(large) and point.exact_work(large)[0] >= 30 * 40 * 50
    assert point.exact_work(small) is first  # kept on it: not made again
    copy = replace(small, separate_outputs=True)
    assert "_exact_work" not in copy.__dict__  # a copy makes its own
    assert point.exact_work(copy) == first


def test_a_program_too_large_is_refused_at_every_call() -> None:
    huge = _product(300, 500, 700)
    for _ in range(2):
        with pytest.raises(sg.ShapeError, match="MAX_EXACT_WORK"):
            point.check_work(huge)
