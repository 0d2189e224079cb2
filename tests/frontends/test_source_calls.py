"""The source reader's calls (`frontends.source_calls`): `.item()` inside a branch.

Inside an `if` branch or a conditional expression (values read as expressions, `state.pure`),
`.item()` was read as its tensor itself, dropping the graph break: `if x >= 1.0: return x` then
`return x * x.item()` read as Piecewise((x, x >= 1), (x*x, True)); the fidelity check refused it
(autograd 0.5 in the user's function, 1.0 in the translation). Now `.item()` is the `item`
primitive wherever it is written; only in a condition, which is not differentiated, it changes
nothing. Each function is read from its source (not recorded) and checked against torch and the
exact derivatives: the mathematics 2x, the path that ran x (x.item() is a constant).
"""

from __future__ import annotations

import itertools
import linecache
from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad.program.primitives import item

_counter = itertools.count()


def _define(source: str) -> Any:
    """A function whose source `inspect` reads (as a notebook cell's)."""
    filename = f"<symgrad-source-calls-cell-{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"torch": torch}
    exec(compile(source, filename, "exec"), ns)
    return ns["f"]


def _torch_grad(fn: Any, at: float) -> float:
    t = torch.tensor(at, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(fn(t), t)
    return g.item()


# Each: source, and whether the x * x.item() branch runs at a point (else the value is 3 x).
BRANCHES = {
    "early return, then .item()": (
        "def f(x):\n    if x >= 1.0:\n        return x * 3.0\n    return x * x.item()\n", lambda v: v < 1.0),
    "early return of .item()": (
        "def f(x):\n    if x <= 1.0:\n        return x.item() * x\n    return x * 3.0\n", lambda v: v <= 1.0),
    "if/else returns": (
        "def f(x):\n    if x != 1.0:\n        return x * x.item()\n    else:\n        return x * 3.0\n", lambda v: v != 1.0),
    "assigned in a branch": (
        "def f(x):\n    if x > 1.0:\n        y = x * 3.0\n    else:\n        y = x * x.item()\n    return y\n",
        lambda v: not v > 1.0),
    "conditional expression": (
        "def f(x):\n    return x * x.item() if x < 1.0 else x * 3.0\n", lambda v: v < 1.0),
    "elif chain": (
        "def f(x):\n    if x >= 2.0:\n        return x * 3.0\n    elif x < 1.0:\n        return x * x.item()\n"
        "    else:\n        return x * 3.0\n", lambda v: v < 1.0),
}


@pytest.mark.parametrize("name", sorted(BRANCHES))
@pytest.mark.parametrize("at", [0.5, 1.5, -3.0])
def test_item_in_a_branch_keeps_its_graph_break(name: str, at: float) -> None:
    source, item_runs = BRANCHES[name]
    fn = _define(source)
    t = sg.trace(fn, at)
    assert t.mode == "source"  # read, not recorded
    assert t.program is not None and (t.program.body.has(item) or t.program.output.has(item))
    (e,) = t.compare().entries
    assert e.grad_autograd == _torch_grad(fn, at)
    q = sp.Rational(Fraction(at))
    if item_runs(at):
        assert (e.grad_symbolic, e.grad_executed) == (2 * q, q)
        assert e.cause is sg.Cause.GRAPH_BREAK
    else:
        assert (e.grad_symbolic, e.grad_executed) == (3, 3) and e.cause is sg.Cause.AGREE


def test_item_in_a_condition_changes_nothing() -> None:
    """A condition is not differentiated: `if x.item() >= 1.0:` decides as `if x >= 1.0:`."""
    fn = _define("def f(x):\n    if x.item() >= 1.0:\n        return x * x\n    return x * 3.0\n")
    for at, slope in ((2.0, 4), (0.5, 3)):
        t = sg.trace(fn, at)
        assert t.mode == "source" and not t.program.body.has(item)
        (e,) = t.compare().entries
        assert e.grad_autograd == _torch_grad(fn, at) and e.grad_executed == slope
        assert e.cause is sg.Cause.AGREE
