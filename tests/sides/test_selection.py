"""Op selection (`sides.selection`): which torch op a SymPy node lowers to.

A coefficient 1 (or 1.0) times one matrix, `MatMul(1, X)`, is X itself: SymPy writes the product of
the factors left after taking the coefficient and X out as `MatMul()`, a GenericIdentity of no
shape, and printing it raised a raw TypeError ('GenericIdentity does not have a specified shape').
The torch front end reads `A + 1.0` as `A + 1*ones(2, 2)` and `1.0 * A` as `1*A`, so every such
constant beside a matrix met it. The rule is checked for every constant against torch itself.
"""

from __future__ import annotations

import itertools
import linecache
import math
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad.sides.selection import select, unit_scaled

A = sp.MatrixSymbol("A", 2, 2)
B = sp.MatrixSymbol("B", 2, 2)
GRID = [[1.0, 0.5], [0.25, 2.0]]
OTHER = [[-3.0, 0.125], [7.0, -0.75]]

_counter = itertools.count()


def _define(body: str) -> Any:
    """`def f(A): return <body>` compiled under a cell's name that `inspect` reads (as a notebook's)."""
    filename = f"<symgrad-selection-cell-{next(_counter)}>"
    source = f"def f(A):\n    return {body}\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"torch": torch}
    exec(compile(source, filename, "exec"), ns)
    return ns["f"]


def _same_bits(a: float | None, b: float) -> bool:
    return a is not None and (a == b or math.isnan(a) and math.isnan(b)) and math.copysign(1, a) == math.copysign(1, b)


CONSTANTS = ["0", "1", "-1", "1.0", "-1.0", "0.0", "2", "0.5", "3.0", "-2.5"]
FORMS = ["({c} * A).sum()", "(A * {c}).sum()", "(A + {c}).sum()", "({c} + A).sum()", "(A - {c}).sum()",
         "({c} - A).sum()", "(A * A + {c}).sum()", "(A - (-{c})).sum()", "torch.sin(A * {c} + A).mean()"]


@pytest.mark.parametrize("c", CONSTANTS)
def test_a_matrix_beside_any_constant_is_read_as_torch_computes_it(c: str) -> None:
    """Every constant (0, 1, -1, 1.0, integers and floats) times, plus and minus a matrix: the
    translation runs and its autograd is torch's own, bit for bit; the exact sides agree with the
    derivative of the mathematics (SymPy's, element by element)."""
    for form in FORMS:
        body = form.format(c=c)
        fn = _define(body)
        t = torch.tensor(GRID, dtype=torch.float64, requires_grad=True)
        want = torch.autograd.grad(fn(t), t)[0].reshape(-1).tolist()
        comparison = sg.compare(fn, at={"A": torch.tensor(GRID, dtype=torch.float64)})
        got = [e.grad_autograd for e in comparison.entries]
        assert all(map(_same_bits, got, want)), (body, got, want)
        assert comparison.cause is sg.Cause.AGREE, body
        # the mathematics: f written with A's elements, differentiated by SymPy
        x = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
        k = sp.nsimplify(c, rational=True)
        math_f = {"({c} * A).sum()": lambda: sum(k * x), "(A * {c}).sum()": lambda: sum(k * x),
                  "(A + {c}).sum()": lambda: sum(x) + 4 * k, "({c} + A).sum()": lambda: sum(x) + 4 * k,
                  "(A - {c}).sum()": lambda: sum(x) - 4 * k, "({c} - A).sum()": lambda: 4 * k - sum(x),
                  "(A * A + {c}).sum()": lambda: sum(v**2 for v in x) + 4 * k,
                  "(A - (-{c})).sum()": lambda: sum(x) + 4 * k,
                  "torch.sin(A * {c} + A).mean()": lambda: sum(sp.sin(k * v + v) for v in x) / 4}[form]()
        exact = {s: sp.Rational(v) for s, v in zip(x, itertools.chain(*GRID))}
        for e, s in zip(comparison.entries, x):
            truth = sp.diff(math_f, s).subs(exact)
            assert e.grad_executed == e.grad_symbolic
            assert abs(sp.N(e.grad_symbolic - truth, 40)) < sp.Float("1e-35"), (body, s)


@pytest.mark.parametrize("inner", [A, sp.MatMul(A, B, evaluate=False), sp.OneMatrix(2, 2),
                                   sp.HadamardProduct(A, B), sp.MatAdd(A, B, evaluate=False)], ids=str)
def test_a_unit_coefficient_is_the_matrix_itself(inner: sp.Basic) -> None:
    """`1*X`, `1*(1*X)`: the same tensor, selected as X is, and lowered to the program of X itself."""
    for unit in (sp.MatMul(1, inner, evaluate=False),
                 sp.MatMul(1, sp.MatMul(1, inner, evaluate=False), evaluate=False)):
        assert unit_scaled(unit) == inner
        if not isinstance(inner, sp.MatrixSymbol):
            assert select(unit) == select(inner)
            assert not any(isinstance(o, sp.Identity) and not o.is_Identity for o in select(unit)[1])
        body = sg.lower(unit).source.split("def f(", 1)[1]
        assert body == sg.lower(inner).source.split("def f(", 1)[1]
        assert "eye" not in body


@pytest.mark.parametrize("coeff", [sp.Integer(1), sp.Float(1.0), sp.Integer(0), sp.Float(0.0), sp.Integer(-1),
                                   sp.Float(-1.0), sp.Integer(3), sp.Float(0.25)], ids=str)
def test_any_coefficient_of_a_matrix_lowers_and_computes_it(coeff: sp.Basic) -> None:
    """`c*X` and `X + c*ones` from SymPy: the lowered program's value and gradient are torch's for
    `c * X` and `X + c` (what the user's code computes), bit for bit."""
    scaled = sp.MatMul(coeff, sp.MatAdd(A, B, evaluate=False), evaluate=False)
    shifted = sp.MatAdd(A, sp.MatMul(coeff, sp.OneMatrix(2, 2), evaluate=False), evaluate=False)
    c = float(coeff)
    for expr, torch_fn in ((scaled, lambda a, b: c * (a + b)), (shifted, lambda a, b: a + c)):
        lowered = sg.lower(expr)
        a = torch.tensor(GRID, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(OTHER, dtype=torch.float64, requires_grad=True)
        mine = lowered(**{n: v for n, v in (("A", a), ("B", b)) if n in map(str, lowered.inputs)})
        ta = a.detach().clone().requires_grad_(True)
        tb = b.detach().clone().requires_grad_(True)
        theirs = torch_fn(ta, tb)
        assert torch.equal(mine, theirs)
        w = torch.tensor(OTHER, dtype=torch.float64)
        ga = torch.autograd.grad((mine * w).sum(), a)[0]
        gb = torch.autograd.grad((theirs * w).sum(), ta)[0]
        assert torch.equal(ga, gb)


@pytest.mark.parametrize("placeholder", [sp.MatMul(), sp.MatAdd()], ids=["MatMul()", "MatAdd()"])
def test_sympys_placeholders_of_no_shape_are_refused_with_a_sentence(placeholder: sp.Basic) -> None:
    """GenericIdentity and GenericZeroMatrix have no shape: a sentence, never SymPy's raw TypeError."""
    with pytest.raises(sg.UnsupportedNodeError):
        select(placeholder)
