"""A gradient's reverse pass makes no matrix of zeros for a step nothing flows into
(`Path._adjoints(lazy=True)`, what `Path.gradient` reads): the data X of a model, each step its
inputs do not reach. The gradient is the very same numbers as with every adjoint made (the list
`adjoints` returns), and SymPy's derivative of the expression at the exact point (the truth)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symgrad.program import exact as ex
from symgrad.sides.executed import adjoints_for, run
from symgrad.sides.lowering import lower

X = sp.MatrixSymbol("X", 3, 2)
W = sp.MatrixSymbol("W", 2, 3)
B = sp.MatrixSymbol("B", 1, 3)
ONES_ROW, ONES_COL = sp.OneMatrix(1, 3), sp.OneMatrix(3, 1)

EXPRESSIONS = {
    # a product's two adjoints, a relu, the data never differentiated
    "layer": (ONES_ROW * (X * W).applyfunc(lambda t: sp.Max(t, 0)).applyfunc(lambda t: t**2) * ONES_COL)[0, 0],
    # one element read (an `elem` step: its adjoint lands in place on a matrix not yet made)
    "element": sp.sin((X * W)[1, 2]) + W[0, 1] * (X * W)[0, 0] + B[0, 1] ** 2,
    # a matrix used twice and a broadcast row
    "twice": (ONES_ROW * (X * W + sp.OneMatrix(3, 1) * B).applyfunc(sp.exp) * ONES_COL)[0, 0] + (B * B.T)[0, 0],
}


def _point(rng: np.random.Generator) -> dict[str, Any]:
    def m(rows: int, cols: int) -> np.ndarray:
        return ex.mat([[ex.from_float(float(rng.integers(-8, 9)) / 4) for _ in range(cols)] for _ in range(rows)])
    return {"X": m(3, 2), "W": m(2, 3), "B": m(1, 3)}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(EXPRESSIONS)), st.integers(0, 2**32), st.sampled_from([None, ("W",), ("W", "B")]))
def test_a_lazy_gradient_is_every_adjoints_and_sympys(name: str, seed: int, wanted: Any) -> None:
    expr = EXPRESSIONS[name]
    lowered = lower(expr)
    point = {k: v for k, v in _point(np.random.default_rng(seed)).items() if k in lowered.inputs}
    symbols = {s.name: s for s in lowered.normalized.inputs}
    with ex.working_precision(ex.START_PREC), adjoints_for(wanted if wanted is None else
                                                           [w for w in wanted if w in lowered.inputs]):
        path = run(lowered, point)
        if path.ties:
            return  # a relu exactly at 0: SymPy's derivative is not the path's
        for mode in ("executed", "math"):
            lazy = path.gradient(mode, ex.ONE)
            full = path._adjoints(mode, ex.ONE)
            assert all(x is not None for x in full)
            for i, g in zip(path.inputs, lazy):
                assert ex.is_mat(g) and g.shape == full[i].shape
                assert all(ex.same_number(a, b) or (ex.is_exact_zero(a) and ex.is_exact_zero(b))
                           for a, b in zip(g.flat, full[i].flat))
    at = {symbols[k][i, j]: sp.Rational(int(v[i, j].p), int(v[i, j].q)) for k, v in point.items()
          for i in range(v.shape[0]) for j in range(v.shape[1])}
    for k, g in zip(lowered.inputs, lazy):
        if wanted is not None and k not in wanted:
            continue  # not asked for: never differentiated
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                truth = sp.diff(expr.doit(), symbols[k][i, j])
                value = sp.N(truth.xreplace(at).doit(), 40)
                got = ex.to_sympy(g[i, j])
                assert abs(got - value) <= sp.Float(1e-30) * max(1, abs(value)), (name, k, i, j)


def test_a_lazy_reverse_pass_makes_no_zero_matrix_for_the_data() -> None:
    """A model's data X (a product's other operand, never differentiated): its adjoint stays None
    in the lazy pass, and `gradient` still gives a matrix of exact zeros for it where asked."""
    expr = EXPRESSIONS["layer"]
    lowered = lower(expr)
    point = _point(np.random.default_rng(1))
    with ex.working_precision(ex.START_PREC), adjoints_for(["W"]):
        path = run(lowered, point)
        adj = path._adjoints("executed", ex.ONE, lazy=True)
        x = path.inputs[lowered.inputs.index("X")]
        assert adj[x] is None
        assert ex.is_mat(path._adjoints("executed", ex.ONE)[x])
        g = path.gradient("executed", ex.ONE)[lowered.inputs.index("X")]
        assert g.shape == (3, 2) and all(ex.is_exact_zero(v) for v in g.flat)
