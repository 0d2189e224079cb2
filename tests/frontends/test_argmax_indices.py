"""The indices of `x.max(dim)` / `x.argmax(dim)` used further: `x.gather(1, i.unsqueeze(1))`,
`W[i]`, `x[range(n), i]` and `F.one_hot(i, n)`.

Indices are integer data of the user's run: piecewise constant in the values they compare, with
derivative 0. symgrad reads each index as the position torch returns (the first of the largest),
and what it selects as a Piecewise of those comparisons. The truth here is computed without
symgrad: torch's own autograd of the user's function (bit for bit), and the exact derivative of
the value selected, with the argmax taken on the exact binary values in Python. At a tie the
index jumps: the entries the tie reaches must not agree (no derivative exists there, or it is a
kink), and every other entry still agrees exactly.
"""

from __future__ import annotations

import textwrap
from fractions import Fraction
from typing import Any

import hypothesis.strategies as st
import pytest
import sympy as sp
import torch
from hypothesis import given, settings

import symgrad as sg
from user_code import load_module

SOURCE = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    def gathered(x):
        v, i = x.max(dim=1)
        y = x.gather(1, i.unsqueeze(1))
        return (y * y).sum() + v.sum()

    def rows_of_w(x, W):
        i = x.argmax(dim=1)
        return (W[i] * 2).sum() + x.sum()

    def hot(x):
        i = torch.argmax(x, 1)
        return (F.one_hot(i, 3).double() * x * x).sum()

    def picked(x):
        i = x.argmin(1)
        return (x[range(2), i] * 3).sum()

    def row_of_vector(v, W):
        return (W[v.argmax()] * v[0]).sum()

    def no_classes(x):
        return F.one_hot(x.argmax(1)).double().sum() * x.sum()

    def as_number(x):
        return (x.argmax(1).double() * x[:, 0]).sum()

    def accuracy(x, y):
        return (x.argmax(1) == y).double().mean() * x.sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("argmax_indices"), "user_argmax_indices")


W = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def _torch(fn: Any, *values: Any) -> list[float]:
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    grads = torch.autograd.grad(fn(*leaves), leaves, allow_unused=True, materialize_grads=True)
    return [float(x) for g in grads for x in g.reshape(-1)]


def _first(row: list[float], largest: bool = True) -> int:
    """torch's index: the first largest (smallest), on the exact values."""
    exact = [Fraction(v) for v in row]
    best = max(exact) if largest else min(exact)
    return exact.index(best)


def _tied(row: list[float], largest: bool = True) -> set[int]:
    exact = [Fraction(v) for v in row]
    best = max(exact) if largest else min(exact)
    ties = {j for j, v in enumerate(exact) if v == best}
    return ties if len(ties) > 1 else set()


def _expected(name: str, x: list[list[float]]) -> list[Fraction]:
    """The exact derivative of each function at a point without ties, written out by hand."""
    rows = range(len(x))
    if name == "gathered":  # sum_r (max_r)**2 + max_r: 2*max + 1 at the argmax of each row
        return [Fraction(2) * Fraction(x[r][j]) + 1 if j == _first(x[r]) else Fraction(0)
                for r in rows for j in range(3)]
    if name == "rows_of_w":  # d/dx = 1; d/dW[j, c] = 2 * #rows whose argmax is j
        counts = [sum(1 for r in rows if _first(x[r]) == j) for j in range(3)]
        return [Fraction(1)] * 6 + [Fraction(2 * counts[j]) for j in range(3) for _ in range(2)]
    if name == "hot":  # sum_r x[r, i_r]**2
        return [2 * Fraction(x[r][j]) if j == _first(x[r]) else Fraction(0) for r in rows for j in range(3)]
    if name == "picked":  # 3 * sum_r min_r
        return [Fraction(3) if j == _first(x[r], False) else Fraction(0) for r in rows for j in range(3)]
    raise AssertionError(name)


def _check(c: sg.Comparison, torch_grads: list[float]) -> None:
    assert [e.grad_autograd for e in c.entries] == torch_grads


@pytest.mark.parametrize("name", ["gathered", "rows_of_w", "hot", "picked"])
def test_away_from_ties_every_entry_is_exact(module: Any, name: str) -> None:
    x = [[1.0, 2.0, 2.5], [3.0, -1.0, 0.5]]
    fn = getattr(module, name)
    values = (x, W) if name == "rows_of_w" else (x,)
    traced = sg.trace(fn, *[torch.tensor(v, dtype=torch.float64) for v in values])
    assert traced.mode == "source", traced.reason
    c = sg.compare(fn, at={n: torch.tensor(v, dtype=torch.float64) for n, v in zip(("x", "W"), values)})
    _check(c, _torch(fn, *values))
    want = _expected(name, x)
    assert [e.grad_symbolic for e in c.entries] == [sp.Rational(w.numerator, w.denominator) for w in want]
    assert [e.grad_executed for e in c.entries] == [e.grad_symbolic for e in c.entries]
    assert c.cause.id == "agree"


@pytest.mark.parametrize("name", ["gathered", "rows_of_w", "hot", "picked"])
def test_a_tie_is_never_an_agreement_on_the_entries_it_reaches(module: Any, name: str) -> None:
    """Row 0 ties (2 and 2 for the max; -1 and -1 for the min): its tied entries of x have no
    derivative (the index jumps there); row 1 and the entries the tie does not reach agree."""
    x = [[1.0, 2.0, 2.0], [3.0, 0.5, -1.0]] if name != "picked" else [[1.0, -1.0, -1.0], [3.0, 0.5, -1.0]]
    fn = getattr(module, name)
    values = (x, W) if name == "rows_of_w" else (x,)
    c = sg.compare(fn, at={n: torch.tensor(v, dtype=torch.float64) for n, v in zip(("x", "W"), values)})
    _check(c, _torch(fn, *values))
    tied = _tied(x[0], name != "picked")
    assert tied == {1, 2}
    for e in c.entries:
        reached = str(e.wrt) in {f"x[0, {j}]" for j in tied}
        if reached:
            assert e.cause.id == "control-flow" and e.grad_symbolic is None, (str(e.wrt), e.cause.id)
            # the comparison that decides the index is cited as the user wrote the indices
            code = {"gathered": "x.max(dim=1)", "rows_of_w": "x.argmax(dim=1)", "hot": "torch.argmax(x, 1)",
                    "picked": "x.argmin(1)"}[name]
            assert f"its condition `{code}` (x[0, 1] = x[0, 2] here) sits exactly on its threshold" in e.explanation, \
                e.explanation
        else:
            assert e.cause.id == "agree", (str(e.wrt), e.cause.id)
    if name == "rows_of_w":  # W's derivative exists at the tie (x fixed: linear in W): torch's first index
        assert [e.grad_symbolic for e in c.entries[6:]] == [2, 2, 2, 2, 0, 0]


def test_a_vector_argmax_picks_a_row(module: Any) -> None:
    """`W[v.argmax()] * v[0]`: the row of W at v's argmax (scalar index), times v[0]."""
    v = [0.5, 3.0, -2.0]
    c = sg.compare(module.row_of_vector, at={"v": torch.tensor(v, dtype=torch.float64),
                                             "W": torch.tensor(W, dtype=torch.float64)})
    _check(c, _torch(module.row_of_vector, v, W))
    assert [e.grad_symbolic for e in c.entries] == [7, 0, 0, 0, 0, sp.Rational(1, 2), sp.Rational(1, 2), 0, 0]
    assert c.cause.id == "agree"


@pytest.mark.parametrize(("name", "words"), [
    ("no_classes", ["num_classes", "changes with the point"]),
    ("as_number", ["integer data", "`.double`", "gather"]),
])
def test_other_uses_are_sentences(module: Any, name: str, words: list[str]) -> None:
    x = torch.tensor([[1.0, 2.0, 2.5], [3.0, -1.0, 0.5]], dtype=torch.float64)
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(getattr(module, name), x)
    text = str(err.value)
    assert "Fix:" in text and "user_argmax_indices.py:" in text
    for w in words:
        assert w in text, (w, text)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-2, 2), min_size=6, max_size=6))
def test_small_integers_tie_often_and_never_pass_falsely(module: Any, flat: list[int]) -> None:
    """Integer values make ties common: wherever a row ties, its tied entries do not agree; every
    other entry is torch's value and the exact derivative."""
    x = [[float(v) for v in flat[:3]], [float(v) for v in flat[3:]]]
    c = sg.compare(module.hot, at={"x": torch.tensor(x, dtype=torch.float64)})
    _check(c, _torch(module.hot, x))
    for r in range(2):
        tied = _tied(x[r])
        for j in range(3):
            e = c.entries[3 * r + j]
            if j in tied:
                assert e.grad_symbolic is None or e.cause.id == "agree" and e.grad_symbolic == e.grad_executed
                if x[r][j] != 0:  # x**2 at the argmax: the value jumps between tied elements unless it is 0
                    assert e.cause.id != "agree"
            else:
                want = 2 * Fraction(x[r][j]) if j == _first(x[r]) else Fraction(0)
                assert e.grad_symbolic == sp.Rational(want.numerator, want.denominator)
                assert e.cause.id == "agree"
