"""`symgrad.program.program`: the Program record's helpers (node texts, sizes, the normal form)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symgrad as sg


def test_node_text_reads_only_the_symbols_a_node_has_and_never_serves_another_map() -> None:
    """The text cache is keyed by the part of the user map a node reads (keying on the whole map of
    a 3,000-statement program made lowering quadratic); two maps that differ there give two texts."""
    from symgrad.program.program import node_text

    x_real, y_real = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    many = {sp.Symbol(f"v{k}", real=True): sp.Symbol(f"v{k}") for k in range(5000)}
    node = x_real + 2 * y_real
    assert node_text(node, {**many, x_real: sp.Symbol("x"), y_real: sp.Symbol("y")}) == "x + 2*y"
    assert node_text(node, {**many, x_real: sp.Symbol("a"), y_real: sp.Symbol("b")}) == "a + 2*b"
    assert node_text(node, {x_real: sp.Symbol("a")}) == "a + 2*y"



@pytest.mark.parametrize("make, n", [
    (lambda A: sp.Determinant(A), 151),
    (lambda A: sp.Trace(A.inverse()), 400),
    (lambda A: sp.Trace(A**-2) * sp.Symbol("x"), 200),
], ids=["det", "inverse", "negative-power"])
def test_an_elimination_too_large_is_refused_before_the_work(make, n: int) -> None:  # type: ignore[no-untyped-def]
    from symgrad.program.program import MAX_ELIMINATION_SIZE

    A = sp.MatrixSymbol("A", n, n)
    with pytest.raises(sg.ShapeError) as info:
        sg.compare(make(A), at={A: np.eye(n), sp.Symbol("x"): 1.0})
    text = str(info.value)
    assert f"of a {n} x {n} matrix, more than MAX_ELIMINATION_SIZE = {MAX_ELIMINATION_SIZE}" in text
    assert "Fix: compare a smaller matrix" in text and text.endswith("See docs/errors.md#shapeerror")


def test_an_elimination_at_the_limit_still_compares() -> None:
    A = sp.MatrixSymbol("A", 3, 3)
    value = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 4.0]])
    c = sg.compare(sp.Determinant(A), at={A: value})
    assert c.cause.id == "agree"
    cof = np.linalg.inv(value).T * np.linalg.det(value)  # d det / dA = cofactor matrix
    by = {str(e.wrt): e for e in c.entries}
    assert float(by["A[0, 1]"].grad_executed) == pytest.approx(cof[0, 1], rel=1e-12)
