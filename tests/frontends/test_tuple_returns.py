"""A function that returns several values (`return x + y, x * y`, `return X[-1], X[1:3]`) is read
as ONE output: the values flattened and concatenated in order, each scalar one element, each
tensor its elements row-major (the mathematics of `torch.cat([v.reshape(-1) for v in out])`).
Every entry is checked against torch's autograd of each element of the user's own tuple (bit for
bit) and against the exact derivative SymPy gives of the same mathematics, in float64 and
float32; the fidelity check compares the user's flattened tuple with the translation."""

from __future__ import annotations

import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import sympy as sp
import torch
from hypothesis import given, settings

import symgrad as sg
from symgrad.frontends.trace_run import execute as _execute
from user_code import load_module

SOURCE = textwrap.dedent('''
    import torch

    def scalar_ops(x, y):
        return x + y, x * y, x / y, x ** y

    def arith(x, y):
        return x + y, x * y, x / y

    def powers(x, y):
        return x - y, x ** y

    def means(A):
        return A.mean(), A.sum() / A.numel()

    def means_axis0(A):
        return A.mean(axis=0), A.sum(axis=0) / A.shape[0]

    def joined(X, Y):
        return torch.cat((X, Y), dim=0), torch.cat((X, Y), dim=1)

    def sliced(X):
        return X[-1], X[1:3]

    def mixed(X, y):
        return (X * y).sum(), X[0] * y, torch.exp(X)

    def nested(x, y):
        return x * y, (x + y, (x / y,))

    def single(x, y):
        return (x * y,)

    def branches(x, y):
        if x > y:
            return x * y, x - y
        return x + y, y / x

    def with_int(x):
        return x * 2, 1

    def with_none(x):
        return x * 2, None
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("tuple_returns"), "user_tuple_returns")


X34 = [[0.5, 1.0, -2.0, 3.0], [1.5, -0.25, 2.0, 0.75], [4.0, 0.1, -1.0, 2.5]]
Y34 = [[2.0, 1.0, 4.0, 3.0], [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]]


def _exact(t: torch.Tensor) -> sp.Matrix | sp.Rational:
    """The exact binary value a tensor holds, as SymPy rationals."""
    if t.ndim == 0:
        return sp.Rational(Fraction(float(t)))
    rows = t.reshape(t.shape[0], -1).tolist()
    return sp.Matrix([[sp.Rational(Fraction(v)) for v in r] for r in rows])


def _torch_jacobian(fn: Any, tensors: list[torch.Tensor]) -> list[list[float]]:
    """torch's gradient of each element of each returned value of the user's own tuple (one
    `torch.autograd.grad` per element), each row the inputs' gradients flattened in order."""
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    rows = []
    for v in out:
        for e in v.reshape(-1):
            grads = torch.autograd.grad(e, leaves, retain_graph=True, allow_unused=True, materialize_grads=True)
            rows.append([float(x) for g in grads for x in g.reshape(-1)])
    return rows


def _same_exact(got: sp.Basic, want: sp.Basic) -> bool:
    """Equal: exactly where symgrad holds a rational, within 1e-40 where it holds a transcendental
    number as a certain decimal of more digits (3**(1/10) * log(3))."""
    if isinstance(got, sp.Rational) or isinstance(want, sp.Rational):
        return bool(got == want)
    w = sp.N(want, 60)
    return abs(sp.N(got, 60) - w) <= sp.Float(10, 60) ** -40 * max(1, abs(w))


def _check(c: sg.Comparison, want_autograd: list[list[float]], want_exact: list[list[sp.Basic]], labels: list[str]) -> None:
    n_in = len(want_autograd[0])
    assert len(c.entries) == len(want_autograd) * n_in
    for k, e in enumerate(c.entries):
        row, col = divmod(k, n_in)
        assert e.output == (row, 0)
        assert e.grad_autograd == want_autograd[row][col] or (e.grad_autograd != e.grad_autograd and
                                                              want_autograd[row][col] != want_autograd[row][col])
        assert _same_exact(e.grad_symbolic, want_exact[row][col]), (row, col, e.grad_symbolic, want_exact[row][col])
    assert [c.outputs[r] for r in range(len(want_autograd))] == labels


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_scalar_values_are_one_output(module: Any, dtype: torch.dtype) -> None:
    x, y = torch.tensor(3.0, dtype=dtype), torch.tensor(0.1, dtype=dtype)
    c = sg.compare(module.scalar_ops, at={"x": x, "y": y})
    assert c.dtype == str(dtype).removeprefix("torch.")
    X, Y = _exact(x), _exact(y)
    xs, ys = sp.symbols("x y", positive=True)
    outs = [xs + ys, xs * ys, xs / ys, xs ** ys]
    exact = [[sp.diff(o, s).subs({xs: X, ys: Y}) for s in (xs, ys)] for o in outs]
    _check(c, _torch_jacobian(module.scalar_ops, [x, y]), exact, ["out[0]", "out[1]", "out[2]", "out[3]"])
    assert c.cause.id == "agree"
    assert all(_same_exact(v, o.subs({xs: X, ys: Y})) for v, o in zip(c.value_exact, outs))
    text = str(c)
    assert "output: the 4 returned values in order, flattened (out[0] = x + y, out[1] = x * y" in text
    assert "\nout[3]  y " in text


def _elements(m: Any) -> list[sp.Basic]:
    return list(m) if isinstance(m, sp.MatrixBase) else [m]


MATRIX_CASES = {
    # name: (inputs, the flattened output in SymPy of the input matrices, labels of the first elements)
    # torch's backward of `x ** y` gives -0.0 where an element does not read an input element:
    # the fidelity check takes it as the translation's 0 (equal numbers), every value still exact.
    "powers": ([[0.5, 2.0, 1.5], [2.0, -1.0, 0.5]], lambda x, y: [x[i] - y[i] for i in range(3)] +
               [x[i] ** y[i] for i in range(3)], ["out[0][0]", "out[0][1]", "out[0][2]", "out[1][0]"]),
    "means": ([X34], lambda A: [sum(A) / 12, sum(A) / 12], ["out[0]", "out[1]"]),
    "means_axis0": ([X34], lambda A: [sum(A[:, j]) / 3 for j in range(4)] * 2,
                    ["out[0][0]", "out[0][1]", "out[0][2]", "out[0][3]", "out[1][0]"]),
    "joined": ([X34, Y34], lambda A, B: _elements(A.col_join(B)) + _elements(A.row_join(B)),
               ["out[0][0, 0]", "out[0][0, 1]"]),
    "sliced": ([X34], lambda A: _elements(A[2, :]) + _elements(A[1:3, :]),
               ["out[0][0]", "out[0][1]", "out[0][2]", "out[0][3]", "out[1][0, 0]"]),
    "mixed": ([X34, 0.75], lambda A, y: [sum(A) * y] + [A[0, j] * y for j in range(4)] + [sp.exp(a) for a in A],
              ["out[0]", "out[1][0]", "out[1][1]", "out[1][2]", "out[1][3]", "out[2][0, 0]"]),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(MATRIX_CASES))
def test_tensor_values_are_flattened_in_order(module: Any, name: str, dtype: torch.dtype) -> None:
    values, mathematics, first_labels = MATRIX_CASES[name]
    fn = getattr(module, name)
    tensors = [torch.tensor(v, dtype=dtype) for v in values]
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
    traced = sg.trace(fn, *tensors)
    assert traced.mode == "source", traced.reason
    assert traced.fidelity.ok, traced.fidelity.detail
    flat = [float(v) for t in fn(*tensors) for v in t.reshape(-1).double()]
    assert list(traced.fidelity.value_user) == flat == list(traced.fidelity.value_translated)
    c = sg.compare(fn, at=dict(zip(params, tensors)))
    # The exact Jacobian of the same mathematics, in SymPy at the exact binary point.
    symbols = [sp.Matrix(sp.MatrixSymbol(p, *_exact(t).shape)) if t.ndim else sp.Symbol(p, real=True)
               for p, t in zip(params, tensors)]
    flat_symbols = [s for m in symbols for s in _elements(m)]
    at = {s: v for m, t in zip(symbols, tensors) for s, v in zip(_elements(m), _elements(_exact(t)))}
    outs = mathematics(*symbols)
    exact = [[sp.diff(o, s).subs(at) for s in flat_symbols] for o in outs]
    _check(c, _torch_jacobian(fn, tensors), exact, [c.outputs[k] for k in range(len(outs))])
    assert list(c.outputs[:len(first_labels)]) == first_labels
    assert len(c.outputs) == len(flat)
    assert c.cause.id == "agree"


def test_fidelity_compares_each_element_not_a_sum() -> None:
    """The user's tuple is run as its elements: the gradient held is the Jacobian's rows (each
    element's torch.autograd.grad), so that two translations whose sum agrees but whose elements
    do not are told apart."""
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    run = _execute(lambda t: (t[0] * t[1], t[0] + t[1]), [x, y])
    assert run.several and run.error is None
    assert list(run.value) == [10.0, 7.0]
    assert [list(g) for g in run.grads] == [[5.0, 1.0], [2.0, 1.0]]  # d/dx of each, d/dy of each
    assert run.shapes == ((), ())
    swapped = _execute(lambda t: (t[0] + t[1], t[0] * t[1]), [x, y])
    assert [list(g) for g in swapped.grads] != [list(g) for g in run.grads]  # a sum would be the same
    column = _execute(lambda t: torch.stack([t[0] * t[1], t[0] + t[1]]).reshape(2, 1), [x, y], several=True)
    assert [list(g) for g in column.grads] == [list(g) for g in run.grads]


def test_nested_and_single_element_tuples(module: Any) -> None:
    x, y = torch.tensor(1.5, dtype=torch.float64), torch.tensor(-0.5, dtype=torch.float64)
    c = sg.compare(module.nested, at={"x": x, "y": y})
    assert list(c.outputs) == ["out[0]", "out[1][0]", "out[1][1][0]"]
    assert [e.grad_symbolic for e in c.entries] == [sp.Rational(-1, 2), sp.Rational(3, 2), 1, 1,
                                                    -2, -6]  # 1/y, -x/y**2
    c = sg.compare(module.single, at={"x": x, "y": y})
    assert list(c.outputs) == ["out[0]"]
    assert [e.grad_autograd for e in c.entries] == [-0.5, 1.5]
    assert "output: the 1 returned values in order" in str(c)


def test_a_returned_tuple_chosen_by_a_branch(module: Any) -> None:
    for x, y, want in ((3.0, 2.0, [2.0, 3.0, 1.0, -1.0]), (1.0, 2.0, [1.0, 1.0, -2.0, 1.0])):
        xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
        c = sg.compare(module.branches, at={"x": xt, "y": yt})
        assert [e.grad_autograd for e in c.entries] == want
        assert [float(e.grad_symbolic) for e in c.entries] == want
        assert [v for row in _torch_jacobian(module.branches, [xt, yt]) for v in row] == want


@pytest.mark.parametrize("name, what", [("with_int", "out[1] of the returned tuple is the Python constant 1"),
                                        ("with_none", "out[1] of the returned tuple is the Python constant None")])
def test_a_returned_number_or_none_is_refused_with_its_place(module: Any, name: str, what: str) -> None:
    with pytest.raises(sg.SymgradError) as err:
        sg.compare(getattr(module, name), at={"x": torch.tensor(2.0, dtype=torch.float64)})
    assert what in str(err.value)
    assert "user_tuple_returns.py:" in str(err.value)


@settings(max_examples=8, deadline=None)
@given(st.floats(0.25, 4.0), st.floats(0.25, 4.0), st.sampled_from([torch.float64, torch.float32]))
def test_scalar_tuple_entries_are_torch_and_exact(module: Any, x: float, y: float, dtype: torch.dtype) -> None:
    xt, yt = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    c = sg.compare(module.arith, at={"x": xt, "y": yt})
    assert [e.grad_autograd for e in c.entries] == [v for row in _torch_jacobian(module.arith, [xt, yt]) for v in row]
    X, Y = _exact(xt), _exact(yt)
    exact = [1, 1, Y, X, 1 / Y, -X / Y ** 2]  # d/dx, d/dy of x + y, x * y, x / y
    assert [e.grad_symbolic for e in c.entries] == exact
