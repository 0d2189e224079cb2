"""Path mode (`frontends.recorder`): a recorded run, for code whose source cannot be read.

The recorder knew `>` and `<` only: a run deciding `x >= 1.0` (torch dispatches it as `ge`) was
refused with '`ge` is not in symgrad's table of torch spellings', and so were `<=`, `==`, `!=`
and torch's functions and methods for them. Every comparison is recorded now, under each name
torch dispatches it by, and each recorded run is checked against torch (autograd bit for bit) and
against the exact derivative of the branch Python took.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg

# (spelling with {x} and {c}, what it decides in Python)
RELATIONS = [
    ("{x} >= {c}", operator.ge), ("{x} <= {c}", operator.le), ("{x} > {c}", operator.gt), ("{x} < {c}", operator.lt),
    ("{x} == {c}", operator.eq), ("{x} != {c}", operator.ne),
    ("{c} < {x}", lambda a, b: b < a), ("{c} >= {x}", lambda a, b: b >= a),  # reflected: `le(x, c)`, `gt(x, c)`
    ("torch.ge({x}, {c})", operator.ge), ("torch.greater_equal({x}, {c})", operator.ge),
    ("torch.gt({x}, {c})", operator.gt), ("torch.greater({x}, {c})", operator.gt),
    ("torch.le({x}, {c})", operator.le), ("torch.less_equal({x}, {c})", operator.le),
    ("torch.lt({x}, {c})", operator.lt), ("torch.less({x}, {c})", operator.lt),
    ("torch.eq({x}, {c})", operator.eq), ("torch.ne({x}, {c})", operator.ne), ("torch.not_equal({x}, {c})", operator.ne),
    ("{x}.ge({c})", operator.ge), ("{x}.le({c})", operator.le), ("{x}.eq({c})", operator.eq), ("{x}.ne({c})", operator.ne),
    ("{x}.not_equal({c})", operator.ne), ("{x}.greater_equal({c})", operator.ge),
]
C = 0.75
POINTS = [0.5, 1.25, -2.0]  # below and above C: never on it (a tie is refused, below)


def _exec(source: str) -> Any:
    """A function with no readable source (exec'd): symgrad records a run of it."""
    ns: dict[str, Any] = {"torch": torch}
    exec(source, ns)
    return ns["f"]


def _torch_grad(fn: Any, at: float) -> float:
    t = torch.tensor(at, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(fn(t), t)
    return g.item()


@pytest.mark.parametrize(("spelling", "decides"), RELATIONS, ids=[r[0] for r in RELATIONS])
def test_every_comparison_is_recorded_in_a_branch(spelling: str, decides: Any) -> None:
    """`if <comparison>: return x * x.item()` else `return x * 3.0`, recorded at points on both
    sides: the branch Python took is the executed path; x * x.item() is a graph break (the
    mathematics 2x, the path x), x * 3.0 agrees (3)."""
    cond = spelling.format(x="x", c=C)
    fn = _exec(f"def f(x):\n    if {cond}:\n        return x * x.item()\n    return x * 3.0\n")
    for at in POINTS:
        t = sg.trace(fn, at)
        assert t.mode == "path"
        (e,) = t.compare().entries
        assert e.grad_autograd == _torch_grad(fn, at)
        q = sp.Rational(Fraction(at))
        if decides(at, C):
            assert (e.grad_symbolic, e.grad_executed) == (2 * q, q)
            assert e.cause is sg.Cause.GRAPH_BREAK
        else:
            assert (e.grad_symbolic, e.grad_executed) == (3, 3) and e.cause is sg.Cause.AGREE


@pytest.mark.parametrize(("spelling", "decides"), RELATIONS, ids=[r[0] for r in RELATIONS])
def test_every_comparison_is_recorded_in_a_where(spelling: str, decides: Any) -> None:
    """torch.where(<comparison>, sin(x), x * x): both branches run, the comparison chooses; the
    recorded Piecewise holds the relation, so the exact sides follow it."""
    cond = spelling.format(x="x", c=C)
    fn = _exec(f"def f(x):\n    return torch.where({cond}, torch.sin(x), x * x)\n")
    for at in POINTS:
        t = sg.trace(fn, at)
        assert t.mode == "path"
        (e,) = t.compare().entries
        assert e.grad_autograd == _torch_grad(fn, at)
        q = sp.Rational(Fraction(at))
        truth = sp.cos(q) if decides(at, C) else 2 * q
        assert e.cause is sg.Cause.AGREE
        assert abs(sp.N(e.grad_executed - truth, 50)) < sp.Float("1e-40")


@pytest.mark.parametrize("spelling", ["{x} >= {c}", "{x} <= {c}", "{x} == {c}", "{x} != {c}", "torch.ge({x}, {c})",
                                      "{x}.ne({c})"])
def test_a_recorded_decision_on_its_threshold_is_refused_with_a_sentence(spelling: str) -> None:
    """Exactly on the threshold a run shows one side only: refused (a kink or jump could hide)."""
    cond = spelling.format(x="x", c=C)
    fn = _exec(f"def f(x):\n    if {cond}:\n        return x * x\n    return x * 3.0\n")
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, C)
    assert "exactly on its threshold" in str(err.value) and "Fix:" in str(err.value)


def test_a_comparison_of_two_inputs_is_recorded() -> None:
    fn = _exec("def f(x, y):\n    if x >= y:\n        return x * y\n    return x - y\n")
    for point in ((2.0, 1.0), (1.0, 2.0)):
        t = sg.trace(fn, *point)
        assert t.mode == "path"
        tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in point)
        want = [g.item() for g in torch.autograd.grad(fn(tx, ty), (tx, ty))]
        comparison = t.compare()
        assert [e.grad_autograd for e in comparison.entries] == want
        assert comparison.cause is sg.Cause.AGREE
        exact = [point[1], point[0]] if point[0] >= point[1] else [1, -1]
        assert [e.grad_executed for e in comparison.entries] == [sp.Rational(Fraction(v)) for v in exact]
        assert not any(math.isnan(e.grad_autograd) for e in comparison.entries)
