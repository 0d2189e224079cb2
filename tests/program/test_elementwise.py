"""`symgrad.elementwise(f, A, B, ...)`: a scalar function applied to every element of matrices,
broadcast as torch broadcasts (issue 20, item 1). Its values and derivatives are checked against
SymPy on explicit matrices (element by element, exactly) and against torch's own broadcasting."""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.matexpr import MatrixElement

import symgrad as sg
from symgrad.program.elementwise import Elementwise, broadcast_shape
from symgrad.program.program import sstr as notation

A = sp.MatrixSymbol("A", 2, 3)
R = sp.MatrixSymbol("R", 1, 3)
C = sp.MatrixSymbol("C", 2, 1)
x = sp.Symbol("x")


def total(M: Any) -> Any:
    rows, cols = M.shape
    return MatrixElement(sp.MatMul(sp.OneMatrix(1, rows), M, sp.OneMatrix(cols, 1), evaluate=False), 0, 0)


def test_shapes_broadcast_as_torch_does() -> None:
    assert sg.elementwise(lambda a, r: a * r, A, R).shape == (2, 3)
    assert sg.elementwise(lambda c, r: c - r, C, R).shape == (2, 3)
    assert sg.elementwise(sp.tanh, A).shape == (2, 3)
    for shapes in ([(2, 3), (1, 3)], [(2, 1), (1, 3)], [(1, 1), (4, 5)]):
        assert broadcast_shape(shapes) == tuple(torch.broadcast_shapes(*shapes))


def test_shapes_that_do_not_broadcast_are_a_sentence() -> None:
    with pytest.raises(sg.ShapeError) as err:
        sg.elementwise(lambda a, b: a + b, A, sp.MatrixSymbol("B", 3, 2))
    assert "do not broadcast" in str(err.value) and "Fix:" in str(err.value)


@pytest.mark.parametrize(("f", "operands", "fragment"), [
    (lambda a: a, (), "at least one matrix"),
    (lambda a: a, (x,), "is not one"),
    (sp.Lambda((x,), x), (A, R), "takes 1 variable"),
    (3, (A,), "not callable"),
    (lambda a, b: a + b, (A,), "one parameter per matrix"),
    (lambda a: sp.Matrix([a, a]), (A,), "scalar expression"),
])
def test_bad_input_is_a_sentence(f: Any, operands: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(sg.UnsupportedNodeError) as err:
        sg.elementwise(f, *operands)
    assert fragment in str(err.value) and "Fix:" in str(err.value)


def test_it_prints_as_the_matrix_of_its_elements() -> None:
    e = sg.elementwise(lambda a, r: sp.Max(a, r), A, R)
    assert sp.sstr(e) in ("[Max(A[i, j], R[i, j])]", "[Max(R[i, j], A[i, j])]")
    assert isinstance(e, Elementwise)
    # SymPy's own applyfunc, in symgrad's notation (SymPy prints `Lambda(_d, exp(_d)).(v)`)
    assert notation(sp.MatrixSymbol("v", 3, 1).applyfunc(sp.exp)) == "[exp(v[i])]"


def test_a_lambda_a_python_function_and_a_sympy_function_agree() -> None:
    u = sp.Symbol("u")
    made = [sg.elementwise(sp.Lambda(u, sp.tanh(u)), A), sg.elementwise(lambda t: sp.tanh(t), A),
            sg.elementwise(sp.tanh, A)]
    explicit = [m.as_explicit() for m in made]
    assert explicit[0] == explicit[1] == explicit[2] == A.as_explicit().applyfunc(sp.tanh)


def _explicit_truth(f: Any, values: dict[str, list[list[float]]], shapes: dict[str, tuple[int, int]]) -> list[sp.Basic]:
    """The gradient of sum(f(elements)) by SymPy on explicit matrices, exact, in input order."""
    syms = {n: sp.Matrix(*shapes[n], lambda i, j, n=n: sp.Symbol(f"{n}_{i}_{j}", real=True)) for n in shapes}
    rows = max(s[0] for s in shapes.values())
    cols = max(s[1] for s in shapes.values())

    def at(n: str, i: int, j: int) -> Any:
        r, c = shapes[n]
        return syms[n][i if r > 1 else 0, j if c > 1 else 0]

    names = sorted(shapes)
    expr = sum(f(*[at(n, i, j) for n in names]) for i in range(rows) for j in range(cols))
    point = {syms[n][i, j]: sp.nsimplify(values[n][i][j]) for n in names for i in range(shapes[n][0]) for j in range(shapes[n][1])}
    return [sp.diff(expr, s).subs(point) for n in names for s in syms[n]]


FUNCTIONS = {
    "tanh_product": lambda a, b: sp.tanh(a * b) + a,
    "exp_quotient": lambda a, b: sp.exp(a) / (2 + b**2),
    "log_sum": lambda a, b: sp.log(a**2 + b**2 + 1),
    "power": lambda a, b: (a**2 + 1) ** (b / 2),
}

values = st.floats(min_value=-2, max_value=2, allow_nan=False).map(lambda v: round(v * 8) / 8)


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(sorted(FUNCTIONS)), a=st.lists(values, min_size=6, max_size=6),
       r=st.lists(values, min_size=3, max_size=3))
def test_values_and_derivatives_equal_sympy_and_torch_broadcasting(name: str, a: list[float], r: list[float]) -> None:
    f = FUNCTIONS[name]
    a_val = [a[:3], a[3:]]
    r_val = [r]
    c = sg.compare(total(sg.elementwise(f, A, R)), at={A: a_val, R: r_val})
    truth = _explicit_truth(f, {"A": a_val, "R": r_val}, {"A": (2, 3), "R": (1, 3)})
    assert len(c.entries) == 9
    for e, t in zip(c.entries, truth):
        assert e.cause.id in ("agree", "rounding"), (e.wrt, e.explanation)
        assert abs(sp.N(e.grad_symbolic - t, 40)) <= sp.Float("1e-25") * (1 + abs(sp.N(t, 20)))
    # autograd is torch's broadcasting of the same function, written directly
    At = torch.tensor(a_val, dtype=torch.float64, requires_grad=True)
    Rt = torch.tensor(r_val, dtype=torch.float64, requires_grad=True)
    torch_f = {"tanh_product": lambda p, q: torch.tanh(p * q) + p, "exp_quotient": lambda p, q: torch.exp(p) / (2 + q**2),
               "log_sum": lambda p, q: torch.log(p**2 + q**2 + 1), "power": lambda p, q: (p**2 + 1) ** (q / 2)}[name]
    ga, gr = torch.autograd.grad(torch_f(At, Rt.expand(2, 3)).sum(), [At, Rt])
    want = [float(v) for v in ga.reshape(-1)] + [float(v) for v in gr.reshape(-1)]
    assert [e.grad_autograd for e in c.entries] == pytest.approx(want, rel=1e-13, abs=1e-300)


def test_a_piecewise_body_decides_per_element_and_names_the_element() -> None:
    # where(A > 0, A**2, -A): a kink at the zero element only (slopes 0 from the right, -1 from the left)
    f = sg.elementwise(lambda a: sp.Piecewise((a**2, a > 0), (-a, True)), A)
    c = sg.compare(total(f), at={A: [[1.0, 0.0, -2.0], [0.5, 3.0, -1.0]]})
    got = [e.cause.id for e in c.entries]
    assert got == ["agree", "kink", "agree", "agree", "agree", "agree"]
    assert [e.grad_executed for e in c.entries] == [2, -1, -1, 1, 6, -1]
    assert c.entries[1].one_sided is not None and sorted(c.entries[1].one_sided) == [-1, 0]
    assert "A[0, 1] > 0" in c.entries[1].explanation
    assert "torch.where(A > 0, " in c.lowered.source


# ----- a condition that compares a value a Piecewise chose (issue 21: a hang)

def _truth(cond: Any, at: Any) -> bool:
    return bool(cond.subs(x_real, at))


x_real = sp.Symbol("x", real=True)


@pytest.mark.parametrize("at", [-3, -1, 0, sp.Rational(1, 4), sp.Rational(1, 2), sp.Rational(3, 4), 1, 2, 5])
@pytest.mark.parametrize("shape", ["le", "gt", "add", "nested", "and"])
def test_a_condition_on_a_piecewise_is_written_case_by_case(at: Any, shape: str) -> None:
    """Under sp.evaluate(False) (the torch reader builds every node so), a Piecewise whose condition
    compares a Piecewise's value never finished: SymPy's own rewrite of the condition nests its folded
    constants one level deeper on every pass. `piecewise` writes the condition as an ITE over the
    pieces; its truth at every point is the truth of the comparison of the chosen value, computed
    here by SymPy with evaluation on (the exact truth)."""
    from conftest import no_hang
    from symgrad.program.elementwise import piecewise

    def inner() -> Any:
        return sp.Piecewise((x_real, x_real <= sp.Rational(1, 2)), (2 * x_real, True))

    def condition() -> Any:
        v = inner()
        return {"le": lambda: v <= 0, "gt": lambda: v > 1, "add": lambda: v + 1 < 2,
                "nested": lambda: piecewise((v, v > 0), (-v, True)) >= sp.Rational(3, 4),
                "and": lambda: sp.And(v > -2, x_real < 3)}[shape]()

    truth = _truth(condition(), at)  # evaluated by SymPy, outside evaluate(False)
    with no_hang(f"a Piecewise on {shape}"), sp.evaluate(False):
        built = piecewise((x_real, condition()), (3 * x_real, True))
    assert not built.args[0].cond.has(sp.Piecewise)
    assert _truth(built.args[0].cond, at) is truth
    assert built.subs(x_real, at) == (at if truth else 3 * at)


def test_a_condition_of_too_many_cases_is_refused_before_it_is_built() -> None:
    from symgrad.program.elementwise import MAX_CONDITION_CASES, piecewise

    v: Any = x_real
    for k in range(13):  # v > 0 compares 2**13 values > MAX_CONDITION_CASES
        v = sp.Piecewise((v, x_real > k), (v + 1, True))
    assert 2 ** 13 > MAX_CONDITION_CASES
    with pytest.raises(sg.UnsupportedNodeError) as err, sp.evaluate(False):
        piecewise((x_real, v > 0), (0, True))
    assert "Fix:" in str(err.value) and "4,096 cases" in str(err.value)
