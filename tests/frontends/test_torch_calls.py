"""The translation computes what the user's code computes, op for op (issue 20 items 1 and 3):
`torch.dot`, `x @ y` of two vectors, `torch.outer` and `torch.einsum` of a product with transposes
are lowered as the user's own torch call on the user's own tensors (`program.calls`), and torch's
broadcasting is torch's (a rank-1 tensor beside a matrix is a (1, n) row, whatever the matrix's shape).

Ground truth: torch itself, bit for bit (the fidelity check runs the translation beside the user's
function; every autograd entry is checked against `torch.autograd.grad` of the user's own function),
in float64 and float32 at random points (hypothesis); and `sympy.diff` of the mathematics written
out here, at the exact rational point, for both exact sides. Before: `torch.dot(x, x) +
torch.outer(x, x).sum()` was refused (`x.T @ x` rounds otherwise than torch.dot, and the shared
`x.T` added the gradients in another order), `(a.reshape(-1, 1) * b)` of a (2,) and a (3,) was
refused, and `torch.einsum("ij,kj->ik", Q, K)` was not read.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg

DTYPES = [torch.float64, torch.float32]
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def symbols(name: str, t: torch.Tensor) -> sp.Matrix:
    """The symbols of t's elements, named as symgrad names its entries (a vector is held as a column)."""
    if t.dim() == 1:
        return sp.Matrix(t.shape[0], 1, [sp.Symbol(f"{name}[{k}, 0]", real=True) for k in range(t.shape[0])])
    return sp.Matrix(*t.shape, lambda i, j: sp.Symbol(f"{name}[{i}, {j}]", real=True))


def checked(fn: Callable[..., Any], inputs: dict[str, torch.Tensor], math: Callable[..., sp.Expr]) -> sg.Comparison:
    """fn read from source, bit for bit torch's forward and autograd, both exact sides sympy.diff's."""
    args = list(inputs.values())
    t = sg.trace(fn, *args)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    leaves = [a.clone().requires_grad_(True) for a in args]
    value = fn(*leaves)
    grads = torch.autograd.grad(value, leaves)
    assert [e.grad_autograd for e in c.entries] == [float(v) for g in grads for v in g.reshape(-1)]
    mats = [symbols(name, a) for name, a in inputs.items()]
    at = {s: exact(float(v)) for M, a in zip(mats, args) for s, v in zip(M, a.to(torch.float64).reshape(-1))}
    f = math(*mats)
    syms = [s for M in mats for s in M]
    assert [str(e.wrt) for e in c.entries] == [str(s) for s in syms]
    for e, s in zip(c.entries, syms):
        truth = sp.diff(f, s).subs(at)
        for side in (e.grad_symbolic, e.grad_executed):
            got = sp.sympify(str(side))
            assert abs((got - truth).evalf(40)) <= sp.Float("1e-25") * max(1, abs(truth.evalf(40))), (str(s), side, truth)
    return c


def vectors(n_min: int = 2, n_max: int = 5) -> st.SearchStrategy[list[float]]:
    return st.lists(st.floats(-3, 3, allow_nan=False, width=32).filter(lambda v: abs(v) > 1e-3), min_size=n_min,
                    max_size=n_max)


# --------------------------------------------------------------------------- item 1: the user's op, in torch's order


def dot_and_outer(x):
    return torch.dot(x, x) + torch.outer(x, x).sum()


def vector_matmul(x, y):
    return (x @ y) * x.dot(x) + torch.dot(y, x).exp()


def moved(x):
    return x.flip(0).cumsum(0).sum() + x.roll(1).dot(x)


def moved_matrix(X):
    return (X.flip(1) * X).sum() + (X.roll(1, 0) * X).exp().sum() + X.flip(0).cumsum(1).sum() + torch.cumsum(X, 0)[1, 0]


def _dot(u: sp.Matrix, v: sp.Matrix) -> sp.Expr:
    return sum(a * b for a, b in zip(u, v))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@SETTINGS
@given(values=vectors())
def test_dot_and_outer_are_torchs_own_calls(values: list[float], dtype: torch.dtype) -> None:
    """torch.dot rounds otherwise than `x.T @ x` (most random vectors: the last bit), and the outer
    product's gradients add up in the user's graph's order only without a shared `x.T`."""
    x = torch.tensor(values, dtype=dtype)
    c = checked(dot_and_outer, {"x": x}, lambda X: _dot(X, X) + sum(X * X.T))
    assert "torch.dot(x.reshape(-1), x.reshape(-1))" in c.lowered.source
    assert "torch.outer(x.reshape(-1), x.reshape(-1))" in c.lowered.source


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@SETTINGS
@given(values=vectors(4, 8))
def test_vector_matmul_is_torch_dot(values: list[float], dtype: torch.dtype) -> None:
    """`x @ y` of two vectors is torch.dot in torch (at::matmul), and is lowered so."""
    n = len(values) // 2
    x, y = torch.tensor(values[:n], dtype=dtype), torch.tensor(values[n:2 * n], dtype=dtype)
    checked(vector_matmul, {"x": x, "y": y},
            lambda X, Y: _dot(X, Y) * _dot(X, X) + sp.exp(_dot(Y, X)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@SETTINGS
@given(values=vectors(3, 6))
def test_moves_and_cumsum_are_torchs_own_calls(values: list[float], dtype: torch.dtype) -> None:
    """x.flip(0), x.roll(1) and cumsum are torch.flip/roll/cumsum on x (float32's cumsum accumulates in
    double in torch: a running sum of float32 adds rounds otherwise), and x's gradients from the move,
    the dot and x itself add up in the user's order."""
    x = torch.tensor(values, dtype=dtype)
    n = len(values)

    def math(X: sp.Matrix) -> sp.Expr:
        flipped = list(reversed(list(X)))
        cums = [sum(flipped[:k + 1]) for k in range(n)]
        rolled = [X[(i - 1) % n] for i in range(n)]
        return sum(cums) + sum(r * v for r, v in zip(rolled, X))

    c = checked(moved, {"x": x}, math)
    for call in ("torch.flip(x, (0,))", "torch.roll(x, 1)", "torch.cumsum("):
        assert call in c.lowered.source


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@SETTINGS
@given(values=st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=6, max_size=6))
def test_moves_of_a_matrix_along_one_dim(values: list[float], dtype: torch.dtype) -> None:
    X = torch.tensor(values, dtype=dtype).reshape(2, 3)

    def math(M: sp.Matrix) -> sp.Expr:
        flip1 = sp.Matrix(2, 3, lambda i, j: M[i, 2 - j])
        roll0 = sp.Matrix(2, 3, lambda i, j: M[(i - 1) % 2, j])
        flip0 = sp.Matrix(2, 3, lambda i, j: M[1 - i, j])
        cum1 = sp.Matrix(2, 3, lambda i, j: sum(flip0[i, k] for k in range(j + 1)))
        return (sum(flip1.multiply_elementwise(M)) + sum(sp.exp(v) for v in roll0.multiply_elementwise(M))
                + sum(cum1) + M[0, 0] + M[1, 0])

    checked(moved_matrix, {"X": X}, math)


def matrix_vector(A, x):
    return (A @ x).tanh().sum() + torch.matmul(A, x).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rows, cols", [(1, 200), (3, 4), (2, 37)])
def test_matrix_times_vector_is_torch_mv(rows: int, cols: int, dtype: torch.dtype) -> None:
    """`A @ x` of a matrix and a vector is torch.mv in torch (at::matmul), which rounds otherwise than
    the mm of `A @ x.reshape(-1, 1)` (a (1, 200) A: most random draws differ in the last bit)."""
    torch.manual_seed(rows * 100 + cols)
    A, x = torch.randn(rows, cols, dtype=torch.float64).to(dtype), torch.randn(cols, dtype=torch.float64).to(dtype)
    t = sg.trace(matrix_vector, A, x)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare(wrt=["x"]) if rows * cols > 60 else t.compare()
    assert "torch.mv(A, x.reshape(-1))" in c.lowered.source
    leaves = [A.clone().requires_grad_(True), x.clone().requires_grad_(True)]
    grads = torch.autograd.grad(matrix_vector(*leaves), leaves)
    want = [float(v) for g in (grads if rows * cols <= 60 else grads[1:]) for v in g.reshape(-1)]
    assert [e.grad_autograd for e in c.entries] == want


# --------------------------------------------------------------------------- item 3: einsum of a product with transposes


def scores(Q, K):
    return torch.einsum("ij,kj->ik", Q, K).exp().sum()


def left_transposed(A, B):
    return torch.einsum("ji,jk->ik", A, B).sin().sum()


def output_transposed(A, B):
    return torch.einsum("ab,bc->ca", A, B).tanh().sum()


def outer_einsum(a, b):
    return torch.einsum("i,j->ij", a, b).exp().sum()


def mv_einsum(A, x):
    return torch.einsum("ij,j->i", A, x).exp().sum()


def vm_einsum(x, B):
    return torch.einsum("i,ij->j", x, B).exp().sum()


def self_scores(Q):
    return torch.einsum("ij,kj->ik", Q, Q).exp().sum()


def _sum_exp(M: sp.Matrix) -> sp.Expr:
    return sum(sp.exp(v) for v in M)


EINSUMS = [
    (scores, (2, 3), (4, 3), lambda Q, K: _sum_exp(Q * K.T), "torch.einsum('ij,kj->ik', Q, K)"),
    (left_transposed, (3, 2), (3, 4), lambda A, B: sum(sp.sin(v) for v in A.T * B), "torch.einsum('ji,jk->ik', A, B)"),
    (output_transposed, (2, 3), (3, 4), lambda A, B: sum(sp.tanh(v) for v in (A * B).T), "torch.einsum('ab,bc->ca', A, B)"),
    (outer_einsum, (3,), (2,), lambda a, b: _sum_exp(a * b.T), "torch.einsum('i,j->ij', a.reshape(-1), b.reshape(-1))"),
    (mv_einsum, (2, 3), (3,), lambda A, x: _sum_exp(A * x), "torch.einsum('ij,j->i', A, x.reshape(-1)).reshape(-1, 1)"),
    (vm_einsum, (2,), (2, 4), lambda x, B: _sum_exp(B.T * x), "torch.einsum('i,ij->j', x.reshape(-1), B).reshape(-1, 1)"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, s1, s2, math, call", EINSUMS, ids=[e[0].__name__ for e in EINSUMS])
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1))
def test_einsum_products_are_torchs_einsum(fn: Any, s1: tuple[int, ...], s2: tuple[int, ...], math: Any, call: str,
                                           dtype: torch.dtype, seed: int) -> None:
    """Each pattern is the matrix product the mathematics says, and the generated program calls the
    user's einsum on the user's tensors (torch's einsum rounds otherwise than `Q @ K.T`)."""
    names = list(fn.__code__.co_varnames[:2])
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*s1, dtype=torch.float64, generator=g).to(dtype)
    b = torch.randn(*s2, dtype=torch.float64, generator=g).to(dtype)
    c = checked(fn, dict(zip(names, (a, b))), math)
    assert call in c.lowered.source


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@SETTINGS
@given(values=st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=6, max_size=6))
def test_einsum_of_one_tensor_twice(values: list[float], dtype: torch.dtype) -> None:
    Q = torch.tensor(values, dtype=dtype).reshape(2, 3)
    checked(self_scores, {"Q": Q}, lambda M: _sum_exp(M * M.T))


def test_einsum_that_is_no_product_stays_a_sentence() -> None:
    def batched(A, B):
        return torch.einsum("ij,ij->i", A, B).sum()

    with pytest.raises(sg.TraceError, match="is not a pattern symgrad reads"):
        sg.trace(batched, torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64))


# --------------------------------------------------------------------------- item 2: torch's broadcasting


def column_times_vector(a, b):
    return (a.reshape(-1, 1) * b).sum() + (a.reshape(-1, 1) * b).exp().sum()


def vector_times_matrix(v, M):
    return (v * M).exp().sum()


def column_plus_vector(C, v):
    return (C + v).sin().sum()


def row_times_column(R, C):
    return (R * C).exp().sum()


def vector_times_vector(u, v):
    return (u * v).exp().sum()


def _bcast(A: sp.Matrix, B: sp.Matrix, op: Callable[[Any, Any], Any]) -> sp.Matrix:
    rows, cols = max(A.rows, B.rows), max(A.cols, B.cols)
    return sp.Matrix(rows, cols, lambda i, j: op(A[i % A.rows, j % A.cols], B[i % B.rows, j % B.cols]))


BROADCASTS = [
    # (m, 1) * (n,) is (m, n): the vector a row
    (column_times_vector, (2,), (3,), lambda a, b: sum(_bcast(a, b.T, sp.Mul)) + _sum_exp(_bcast(a, b.T, sp.Mul))),
    # (n,) * (m, n) is (m, n)
    (vector_times_matrix, (3,), (2, 3), lambda v, M: _sum_exp(_bcast(v.T, M, sp.Mul))),
    # (m, 1) + (n,) is (m, n)
    (column_plus_vector, (4, 1), (3,), lambda C, v: sum(sp.sin(u) for u in _bcast(C, v.T, sp.Add))),
    # (1, n) * (m, 1) is (m, n)
    (row_times_column, (1, 3), (2, 1), lambda R, C: _sum_exp(_bcast(R, C, sp.Mul))),
    # (n,) * (n,) is (n,)
    (vector_times_vector, (3,), (3,), lambda u, v: _sum_exp(_bcast(u, v, sp.Mul))),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, s1, s2, math", BROADCASTS, ids=[b[0].__name__ for b in BROADCASTS])
def test_broadcasting_is_torchs(fn: Any, s1: tuple[int, ...], s2: tuple[int, ...], math: Any, dtype: torch.dtype) -> None:
    names = list(fn.__code__.co_varnames[:2])
    torch.manual_seed(sum(s1) + 10 * sum(s2))
    a, b = torch.randn(*s1, dtype=torch.float64).to(dtype), torch.randn(*s2, dtype=torch.float64).to(dtype)
    assert fn(a, b).dim() == 0  # torch broadcasts them
    checked(fn, dict(zip(names, (a, b))), math)


def test_a_vector_against_a_matrix_torch_refuses_is_a_sentence() -> None:
    def wrong(v, M):
        return (v * M).sum()

    v, M = torch.ones(2, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError):
        wrong(v, M)  # torch's own refusal: (2,) is a (1, 2) row against 3 columns
    with pytest.raises(sg.TraceError, match=r"rank-1 tensor of length 2 against a \(2, 3\) one: torch raises"):
        sg.trace(wrong, v, M)
