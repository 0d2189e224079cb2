"""`torch.max(a, b)` / `torch.min(a, b)` / `a.max(b)` with a tensor b is torch.maximum/minimum.

torch's overloads: `max(input, dim)` takes a Python int, `max(input, other)` a Tensor. symgrad
read a 0-d constant tensor (`torch.tensor(0.)`, a SymPy number once read) as a dim, and the
function was refused ("dim is an integer"). Now a second argument that is a tensor (spelled as a
call that makes one, held as a tensor in a recorded run, a float no dim can be, or a tensor of
the inputs) is `other`, read as torch.maximum/minimum, whose tie torch splits 1/2 : 1/2 (checked
here against torch 2.13 itself). Tested at the tie (a kink: the mathematics has one-sided
slopes 0 and 1) and away from it (agree), against torch's autograd bit for bit and the exact
derivative of Max/Min.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from user_code import load_module

SOURCE = textwrap.dedent('''
    import torch

    def relu_by_max(x):
        return torch.max(x, torch.tensor(0.))

    def relu_by_int_tensor(x):
        return torch.max(x, torch.tensor(0, dtype=torch.float64)) * 3

    def cap(x):
        return torch.min(x, torch.tensor(1.5, dtype=torch.float64))

    def method_cap(x):
        return x.min(torch.tensor(1.5, dtype=torch.float64)) + x.max(torch.tensor(-1.0, dtype=torch.float64))

    def pair(x, y):
        return torch.max(x, y) * 2 + torch.min(x, y)

    def rows(X):
        return (torch.max(X, torch.tensor(0, dtype=torch.float64)) ** 2).sum()

    def dim_still(X):
        return torch.max(X, 1).values.sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("max_of_tensor"), "user_max_of_tensor")


def _torch(fn: Any, *values: Any) -> list[float]:
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    grads = torch.autograd.grad(fn(*leaves), leaves)
    return [float(x) for g in grads for x in g.reshape(-1)]


def test_torch_splits_a_maximum_tie_evenly() -> None:
    """The convention the executed side takes, from torch itself."""
    x = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    z = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    assert [float(g) for g in torch.autograd.grad(torch.max(x, z), [x, z])] == [0.5, 0.5]
    assert [float(g) for g in torch.autograd.grad(torch.min(x, z), [x, z])] == [0.5, 0.5]


@pytest.mark.parametrize(("name", "at", "slope", "cause", "sides"), [
    ("relu_by_max", 0.0, sp.Rational(1, 2), "kink", (0, 1)),
    ("relu_by_max", 0.5, 1, "agree", None),
    ("relu_by_max", -0.5, 0, "agree", None),
    ("relu_by_int_tensor", 0.0, sp.Rational(3, 2), "kink", (0, 3)),
    ("relu_by_int_tensor", 2.0, 3, "agree", None),
    ("cap", 1.5, sp.Rational(1, 2), "kink", (1, 0)),
    ("cap", 1.0, 1, "agree", None),
    ("cap", 2.0, 0, "agree", None),
    ("method_cap", 1.5, sp.Rational(3, 2), "kink", (2, 1)),
    ("method_cap", -1.0, sp.Rational(3, 2), "kink", (1, 2)),
    ("method_cap", 0.25, 2, "agree", None),
])
def test_a_zero_d_tensor_is_the_other_operand(module: Any, name: str, at: float, slope: Any, cause: str,
                                              sides: Any) -> None:
    fn = getattr(module, name)
    traced = sg.trace(fn, torch.tensor(at, dtype=torch.float64))
    assert traced.mode == "source", traced.reason
    c = sg.compare(fn, at={"x": torch.tensor(at, dtype=torch.float64)})
    (e,) = c.entries
    assert e.grad_autograd == _torch(fn, at)[0]
    assert e.grad_executed == slope
    assert e.cause.id == cause
    if sides is None:
        assert e.grad_symbolic == slope
    else:
        assert e.grad_symbolic is None and e.one_sided == sides


@pytest.mark.parametrize(("at", "want"), [((1.0, 1.0), ([sp.Rational(3, 2)] * 2, "kink")),
                                          ((2.0, -1.0), ([2, 1], "agree")), ((-3.0, 0.5), ([1, 2], "agree"))])
def test_two_inputs(module: Any, at: tuple[float, float], want: tuple[list[Any], str]) -> None:
    """`torch.max(x, y) * 2 + torch.min(x, y)`: at x = y each gets (2 + 1)/2 in torch, and the
    mathematics has a kink (one-sided slopes (1, 2) and (2, 1))."""
    c = sg.compare(module.pair, at={"x": torch.tensor(at[0], dtype=torch.float64),
                                    "y": torch.tensor(at[1], dtype=torch.float64)})
    assert [e.grad_autograd for e in c.entries] == _torch(module.pair, *at)
    assert [e.grad_executed for e in c.entries] == want[0]
    assert {e.cause.id for e in c.entries} == {want[1]}


def test_a_matrix_against_an_integer_tensor(module: Any) -> None:
    """`torch.max(X, torch.tensor(0, dtype=float64))` of a matrix: elementwise maximum with 0
    (an integer tensor, still `other`): the tied element gets 2*0*1/2 = 0 and is a kink only
    if its one-sided slopes differ (here both 0: d(max(x, 0)**2) = 2*max(x, 0)*[x > 0])."""
    X = [[0.0, 1.5], [-2.0, 0.25]]
    c = sg.compare(module.rows, at={"X": torch.tensor(X, dtype=torch.float64)})
    assert [e.grad_autograd for e in c.entries] == _torch(module.rows, X)
    assert [e.grad_executed for e in c.entries] == [0, 3, 0, sp.Rational(1, 2)]
    assert [e.cause.id for e in c.entries] == ["agree"] * 4
    assert [e.grad_symbolic for e in c.entries] == [0, 3, 0, sp.Rational(1, 2)]


def test_an_int_is_still_a_dim(module: Any) -> None:
    X = [[0.0, 1.5], [-2.0, 0.25]]
    c = sg.compare(module.dim_still, at={"X": torch.tensor(X, dtype=torch.float64)})
    assert [e.grad_autograd for e in c.entries] == _torch(module.dim_still, X) == [0.0, 1.0, 0.0, 1.0]
    assert c.cause.id == "agree"


def test_path_mode_records_a_tensor_as_other() -> None:
    """A function with no readable source: the recorded run reads the constant tensor as its
    float value, which no dim can be, so it is `other` there too."""
    ns: dict[str, Any] = {"torch": torch}
    exec("def f(x):\n    return torch.max(x, torch.tensor(0, dtype=torch.float64)) * 3\n", ns)  # noqa: S102
    fn = ns["f"]
    for at, slope, cause in ((0.0, sp.Rational(3, 2), "kink"), (1.0, 3, "agree"), (-1.0, 0, "agree")):
        traced = sg.trace(fn, torch.tensor(at, dtype=torch.float64))
        assert traced.mode == "path"
        c = traced.compare()
        (e,) = c.entries
        assert e.grad_autograd == _torch(fn, at)[0]
        assert e.grad_executed == slope and e.cause.id == cause
