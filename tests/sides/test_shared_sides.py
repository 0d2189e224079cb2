"""The one-sided runs shared between entries at an elementwise tie (sides/symbolic.py,
`_shared_sides`) give exactly what each entry's own runs give: the same cause, one-sided
derivatives and symbolic value, entry by entry, at ReLU, abs and clamp corners and at sign
steps placed in chosen elements (steps whose argument an entry does not move keep their own
runs)."""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

import symgrad as sg
import symgrad.sides.symbolic as symbolic

X = sp.MatrixSymbol("X", 3, 2)
W = sp.MatrixSymbol("W", 2, 3)


def total(M: Any) -> Any:
    rows, cols = M.shape
    return MatrixElement(sp.MatMul(sp.OneMatrix(1, rows), M, sp.OneMatrix(cols, 1), evaluate=False), 0, 0)


FUNCTIONS = {
    "relu": total(sp.HadamardProduct((X * W).applyfunc(lambda t: sp.Max(t, 0)), X * W + sp.OneMatrix(3, 3))),
    "abs": total((X * W).applyfunc(sp.Abs)),
    "clamp": total(sg.elementwise(lambda t: sp.Min(sp.Max(t, -1), 1) * t, X * W)),
    "sign_square": total(sg.elementwise(lambda t: sp.sign(t * t) + t, X * W)),
    "sign": total(sg.elementwise(lambda t: sp.sign(t) * 2 + t * t, X * W)),
}
POINTS = [
    ({X: [[1.0, 0.0], [0.5, -1.0], [2.0, 1.0]], W: [[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]}),  # (X W)[0, 1] = 0
    ({X: [[1.0, 2.0], [0.5, -1.0], [2.0, 1.0]], W: [[2.0, 0.0, 0.5], [-1.0, 1.0, 1.0]]}),  # (X W)[0, 0] = 0, [1, 1] < 0
    ({X: [[0.0, 0.0], [0.5, -1.0], [2.0, 1.0]], W: [[2.0, 0.0, 0.5], [-1.0, 1.0, 1.0]]}),  # a whole row of ties
]


@pytest.mark.parametrize("point", POINTS, ids=["one-tie", "other-tie", "row-of-ties"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_shared_runs_decide_each_entry_as_its_own_runs_do(name: str, point: dict[Any, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    f = FUNCTIONS[name]
    shared = sg.compare(f, at=point)
    monkeypatch.setattr(symbolic, "SHARED_SIDES_MIN", 10**9)  # every entry its own two runs
    own = sg.compare(f, at=point)
    assert len(shared.entries) == len(own.entries) == 12
    for a, b in zip(shared.entries, own.entries):
        assert (a.cause, a.grad_symbolic, a.one_sided, a.grad_executed) == \
               (b.cause, b.grad_symbolic, b.one_sided, b.grad_executed), a.wrt
    assert any(not e.ok for e in own.entries) or name == "sign_square"


def test_signs_in_bulk_are_ex_sign_one_by_one() -> None:
    """`_signs` (one pass over the tied arguments' derivatives) gives `ex.sign` of each value,
    counts the balls it cannot decide as `ex.sign` does, and finds the exact rational zeros."""
    import flint
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from symgrad.program import exact as ex

    def value(kind: int, p: int, q: int) -> Any:
        return [flint.fmpq(p, q), ex.NEG_ZERO, flint.arb(p) / q, flint.arb(0, abs(p) + 1), flint.arb("nan"),
                flint.arb("inf") * (1 if p >= 0 else -1), flint.arb(0)][kind]

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 6), st.integers(-5, 5), st.integers(1, 7)), max_size=12))
    def check(raw: list[tuple[int, int, int]]) -> None:
        with ex.working_precision(128):
            values = [value(*r) for r in raw]
            ex.reset_undecided()
            signs, zeros = symbolic._signs(iter(values), len(values))
            bulk = ex.undecided()
            ex.reset_undecided()
            assert signs.tolist() == [ex.sign(v) for v in values]
            assert bulk == ex.undecided()
            assert zeros.tolist() == [ex.is_exact_zero(v) for v in values]

    check()
