"""torch's outer, prod, full_like, flip, roll, tril/triu, diag, diagonal, trace, var_mean and
std_mean read from torch code (issue 20: D2L's linear algebra and attention chapters; refused
before as "not in symgrad's table").

Ground truth: torch itself, bit for bit (the fidelity check runs the translation beside the
user's function on every reading, and every entry's autograd value is checked here against
`torch.autograd.grad` of the user's own function), in float64 and float32; and `sympy.diff` of the
mathematics written out here at the exact rational point (both exact sides, the symbolic and the
executed path). The product is smooth everywhere (its derivative is the product of the others,
which torch's prod_backward gives at one zero and at two zeros too); a std of equal elements is
the cone's tip (a kink, torch's gradient 0).
"""

from __future__ import annotations

from fractions import Fraction
from collections.abc import Callable
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]
W4 = torch.tensor([0.5, -1.25, 2.0, 0.75], dtype=torch.float64)  # exact in float32 too


def outer(a, b):
    return torch.tanh(torch.outer(a, b)).sum() + torch.ger(b, a)[1, 2]


def outer_method(a, b):
    return (a.outer(b) * 0.5).sum()


def products(x):
    return torch.prod(x) + x.prod() * 0.5


def products_along(X):
    return (X.prod(dim=1) ** 2).sum() + torch.prod(X, 0, keepdim=True).sum() + X[0].prod(-1)


def filled(x):
    return (x * torch.full_like(x, 2.5)).sum() + torch.full_like(x, -1.0)[0] * x[1]


# Each move read once beside X itself: an element's gradient is then the same two terms in torch's graph
# and in the translation's (the translation stacks moved elements, whose gradients reach X one element at a
# time: a sum of many uses of X would add them in another order than torch, which the fidelity check refuses).
def flip_rows(X):
    return (X.flip(0) * X).sum()


def flip_both(X):
    return (torch.flip(X, [0, 1]) ** 2 * X).sum()


def roll_rows(X):
    return (torch.roll(X, 1, 0) * X).sum()


def roll_both(X):
    return (torch.roll(X, shifts=(1, -1), dims=(0, 1)) * X).sum()


def roll_flat(X):
    return (X.roll(2) * X).sum()


def vector_moves(v):
    return ((v.flip(0) * v).sum() + (torch.roll(v, -1) * W4.to(v.dtype)).sum() + torch.diag(v)[1, 1] * 3
            + (torch.diag(v, 1) ** 2).sum() + torch.diag(v, diagonal=-2)[2, 0])


def triangles(X):
    return (torch.tril(X) ** 2).sum() + (X.triu(diagonal=1) * X).sum() + torch.triu(X, -1).sum() + X.tril(1)[0, 1]


def diagonals(X):
    return ((torch.diag(X) ** 2).sum() + torch.diagonal(X, 1).sum() * 3 + torch.diagonal(X, offset=-1).prod()
            + X.diagonal().sum() + torch.trace(X) ** 2 + (X * 2).trace())


def var_mean_all(X):
    v, m = torch.var_mean(X)
    return v * m


def std_mean_rows(X):
    s, m = torch.std_mean(X, dim=1)
    return (s * m).sum()


def var_mean_columns(X):
    v, m = torch.var_mean(X, 0, keepdim=True, correction=0)
    return (v - m ** 2).sum()


def var_mean_legacy(X):
    return torch.var_mean(X, 1, False, True)[1].sum() * 2 + torch.var_mean(X[:, 1], unbiased=False)[0]


def vector_spread(v):
    s, m = torch.std_mean(v)
    return s * 2 + m * m + torch.var_mean(v, correction=0)[0]


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def symbols(name: str, t: torch.Tensor) -> sp.Matrix:
    """The symbols of t's elements, named as symgrad names its entries (`v[1, 0]`: a vector is held as a column; `X[0, 2]`)."""
    if t.dim() == 1:
        return sp.Matrix(t.shape[0], 1, [sp.Symbol(f"{name}[{k}, 0]", real=True) for k in range(t.shape[0])])
    return sp.Matrix(*t.shape, lambda i, j: sp.Symbol(f"{name}[{i}, {j}]", real=True))


def mean(v: Any) -> sp.Expr:
    return sp.Add(*v) / len(v)


def var(v: Any, c: int = 1) -> sp.Expr:
    return sp.Add(*[(u - mean(v)) ** 2 for u in v]) / (len(v) - c)


def roll(M: sp.Matrix, s: int, axis: int) -> sp.Matrix:
    if axis == 0:
        return sp.Matrix.vstack(*[M.row((i - s) % M.rows) for i in range(M.rows)])
    return sp.Matrix.hstack(*[M.col((j - s) % M.cols) for j in range(M.cols)])


def checked(fn: Callable[..., Any], inputs: dict[str, torch.Tensor], math: Callable[..., sp.Expr]) -> sg.Comparison:
    """fn read from source, bit for bit torch's (fidelity; every autograd entry is torch.autograd.grad's),
    and both exact sides equal to sympy.diff of `math` (of the symbol matrices) at the point."""
    args = list(inputs.values())
    t = sg.trace(fn, *args)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    leaves = [a.clone().requires_grad_(True) for a in args]
    grads = torch.autograd.grad(fn(*leaves), leaves)
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


def rand(*shape: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, math", [
    (outer, lambda A, B: sum(sp.tanh(u) for u in A * B.T) + (B * A.T)[1, 2]),
    (outer_method, lambda A, B: sum(A * B.T) / 2),
], ids=["torch.outer+ger", "a.outer"])
def test_outer_is_the_broadcast_product_of_two_vectors(fn: Any, math: Any, dtype: torch.dtype) -> None:
    a, b = rand(3, dtype=dtype), rand(4, dtype=dtype, seed=1)
    c = checked(fn, {"a": a, "b": b}, math)
    assert c.ok and "torch.outer(a.reshape(-1), b.reshape(-1))" in c.lowered.source  # torch.outer itself, as called


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("zeros", [0, 1, 2], ids=["no-zero", "one-zero", "two-zeros"])
def test_prod_is_torchs_call_and_the_product_rule_at_zero_elements(dtype: torch.dtype, zeros: int) -> None:
    """torch's prod_backward: result / x without a zero, the exclusive products at one zero, 0 at two;
    each the product of the others, as the mathematics says: every entry agrees."""
    x = rand(5, dtype=dtype, seed=3)
    x[[1, 3][:zeros]] = 0.0
    c = checked(products, {"x": x}, lambda X: sp.Mul(*X) * sp.Rational(3, 2))
    assert c.ok and "torch.prod(" in c.lowered.source
    if zeros == 1:  # the zero element's gradient is the product of the others; every other's is 0
        assert [float(e.grad_executed) == 0 for e in c.entries] == [k != 1 for k in range(5)]
    if zeros == 2:
        assert all(e.grad_autograd == 0.0 and e.grad_executed == 0 for e in c.entries)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_prod_along_a_dim_is_each_groups_product(dtype: torch.dtype) -> None:
    X = rand(3, 4, dtype=dtype, seed=4)
    X[1, 2] = 0.0  # a zero in row 1 and column 2
    X[2, 0] = X[2, 3] = 0.0  # two zeros in row 2

    def math(M: sp.Matrix) -> sp.Expr:
        rows = [sp.Mul(*M.row(i)) for i in range(3)]
        return sum(r ** 2 for r in rows) + sum(sp.Mul(*M.col(j)) for j in range(4)) + rows[0]

    c = checked(products_along, {"X": X}, math)
    assert c.ok


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_full_like_is_a_constant_tensor_of_the_shape(dtype: torch.dtype) -> None:
    x = rand(4, dtype=dtype, seed=5)
    c = checked(filled, {"x": x}, lambda X: sum(X) * sp.Rational(5, 2) - X[1])
    assert c.ok


def _flat_roll(M: sp.Matrix, s: int) -> sp.Matrix:
    flat = list(M)
    return sp.Matrix(M.rows, M.cols, [flat[(k - s) % len(flat)] for k in range(len(flat))])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, moved", [
    (flip_rows, lambda M: sp.Matrix.vstack(*[M.row(M.rows - 1 - i) for i in range(M.rows)])),
    (flip_both, lambda M: sp.Matrix(M.rows, M.cols, lambda i, j: M[M.rows - 1 - i, M.cols - 1 - j] ** 2)),
    (roll_rows, lambda M: roll(M, 1, 0)),
    (roll_both, lambda M: roll(roll(M, 1, 0), -1, 1)),
    (roll_flat, lambda M: _flat_roll(M, 2)),
], ids=["flip(0)", "flip([0,1])", "roll(1,0)", "roll((1,-1),(0,1))", "roll(2)"])
def test_flip_and_roll_move_each_element_with_its_gradient(fn: Any, moved: Any, dtype: torch.dtype) -> None:
    X = rand(3, 4, dtype=dtype, seed=6)
    assert checked(fn, {"X": X}, lambda M: sum(moved(M).multiply_elementwise(M))).ok


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_vector_flip_roll_and_diag(dtype: torch.dtype) -> None:
    v = rand(4, dtype=dtype, seed=7)

    def math(V: sp.Matrix) -> sp.Expr:
        u = list(V)
        return (sum(a * b for a, b in zip(u[::-1], u)) + sum(a * exact(float(w)) for a, w in zip(u[1:] + u[:1], W4))
                + 3 * u[1] + sum(a ** 2 for a in u) + u[0])

    assert checked(vector_moves, {"v": v}, math).ok


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tril_and_triu_keep_one_side_of_a_diagonal(dtype: torch.dtype) -> None:
    X = rand(3, 4, dtype=dtype, seed=8)

    def math(M: sp.Matrix) -> sp.Expr:
        low = sum(M[i, j] ** 2 for i in range(3) for j in range(4) if j <= i)
        up1 = sum(M[i, j] ** 2 for i in range(3) for j in range(4) if j >= i + 1)
        upm1 = sum(M[i, j] for i in range(3) for j in range(4) if j >= i - 1)
        return low + up1 + upm1 + M[0, 1]

    assert checked(triangles, {"X": X}, math).ok


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_diag_diagonal_and_trace_of_a_matrix(dtype: torch.dtype) -> None:
    X = rand(3, 3, dtype=dtype, seed=9)

    def math(M: sp.Matrix) -> sp.Expr:
        tr = M[0, 0] + M[1, 1] + M[2, 2]
        return (M[0, 0] ** 2 + M[1, 1] ** 2 + M[2, 2] ** 2 + 3 * (M[0, 1] + M[1, 2]) + M[1, 0] * M[2, 1] + tr
                + tr ** 2 + 2 * tr)

    c = checked(diagonals, {"X": X}, math)
    assert c.ok and "torch.trace(X)" in c.lowered.source


def _rows(M: sp.Matrix) -> list[list[sp.Basic]]:
    return [list(M.row(i)) for i in range(M.rows)]


def _cols(M: sp.Matrix) -> list[list[sp.Basic]]:
    return [list(M.col(j)) for j in range(M.cols)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, math", [
    (var_mean_all, lambda M: var(list(M)) * mean(list(M))),
    (std_mean_rows, lambda M: sum(sp.sqrt(var(r)) * mean(r) for r in _rows(M))),
    (var_mean_columns, lambda M: sum(var(c, 0) - mean(c) ** 2 for c in _cols(M))),
    (var_mean_legacy, lambda M: 2 * sum(mean(r) for r in _rows(M)) + var(_cols(M)[1], 0)),
], ids=["var_mean(X)", "std_mean(X,dim=1)", "var_mean(X,0,keepdim,correction=0)", "var_mean(X,1,False,True)"])
def test_var_mean_and_std_mean_are_torchs_pair(fn: Any, math: Any, dtype: torch.dtype) -> None:
    """The mean torch.var_mean returns is its own (Welford's), which rounds otherwise than x.mean():
    the translation calls torch.var_mean for it, and the fidelity check holds bit for bit."""
    X = rand(3, 5, dtype=dtype, seed=10) * 3 + 1
    c = checked(fn, {"X": X}, math)
    assert c.ok and "torch.var_mean(" in c.lowered.source


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_std_mean_of_a_vector(dtype: torch.dtype) -> None:
    v = rand(6, dtype=dtype, seed=11)
    u = list
    assert checked(vector_spread, {"v": v}, lambda V: 2 * sp.sqrt(var(u(V))) + mean(u(V)) ** 2 + var(u(V), 0)).ok


def test_var_mean_returns_torchs_welford_mean_not_the_sum_over_n() -> None:
    """The premise of `vm_mean`: torch.var_mean's mean differs from x.mean() in the last bit here."""
    torch.manual_seed(0)
    differ = sum(not torch.equal(torch.var_mean(x)[1], x.mean()) for x in torch.randn(50, 37, dtype=torch.float64) * 10 + 3)
    assert differ > 0


def test_std_mean_of_equal_elements_is_the_cones_tip_a_kink() -> None:
    def equal(v):
        s, m = torch.std_mean(v)
        return s + m

    v = torch.tensor([1.5, 1.5, 1.5], dtype=torch.float64)
    c = sg.trace(equal, v).compare()
    leaf = v.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(equal(leaf), [leaf])
    assert [e.grad_autograd for e in c.entries] == [float(u) for u in g]  # torch: 0 + 1/3
    assert c.cause is Cause.KINK and all(e.cause is Cause.KINK for e in c.entries)


def outer_of_matrix(X, v):
    return torch.outer(X, v).sum()


def trace_not_square(X):
    return torch.trace(X)


def tril_of_vector(v):
    return torch.tril(v).sum()


def prod_of_dims(X):
    return X.prod(dim=(0, 1))


def roll_count(X):
    return torch.roll(X, (1, 2), 0).sum()


@pytest.mark.parametrize("fn, shapes, words", [
    (outer_of_matrix, [(2, 3), (3,)], "`torch.outer` takes two vectors (tensors of rank 1); these have ranks 2, 1"),
    (trace_not_square, [(2, 3)], "`torch.trace` is read of a square matrix; this tensor has shape (2, 3)"),
    (tril_of_vector, [(3,)], "`torch.tril` is read of a tensor of rank 2; this one has rank 1 (torch raises)"),
    (prod_of_dims, [(2, 3)], "`x.prod(dim=[0, 1])`: torch's prod takes one dim"),
    (roll_count, [(2, 3)], "`torch.roll`: 2 shifts for 1 dims (torch raises)"),
], ids=["outer-matrix", "trace-2x3", "tril-vector", "prod-dims", "roll-counts"])
def test_what_is_not_read_is_a_sentence_naming_the_line(fn: Any, shapes: list[tuple[int, ...]], words: str) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, *[torch.randn(*s, dtype=torch.float64) for s in shapes])
    text = str(err.value)
    assert words in text and "Fix:" in text and "test_more_ops.py:" in text, text


def einsum_matmul(A, B):
    return torch.tanh(torch.einsum("bi,ij->bj", A, B)).sum()


def einsum_trace(A):
    return torch.einsum("ii->", A) * 2


def einsum_dot(A, B):
    return torch.einsum("ij,ij->", A, B)


def einsum_vdot(a, b):
    return torch.einsum("i,i->", a, b) * 3


def einsum_plain(A):
    return (torch.einsum("ij->ji", A) ** 2 * W4.to(A.dtype)).sum() + (torch.einsum("ij->i", A) ** 2).sum()


def einsum_rest(A, B):
    return torch.einsum("ij->j", A * B).sum() + torch.einsum("ij->", A) + torch.einsum("ij,ij->ij", A, B)[0, 1]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, shapes, math, call", [
    (einsum_matmul, [(3, 4), (4, 2)], lambda A, B: sum(sp.tanh(u) for u in A * B), "torch.einsum('bi,ij->bj', A, B)"),
    (einsum_trace, [(3, 3)], lambda A: 2 * A.trace(), "torch.einsum('ii->'"),
    (einsum_dot, [(3, 4), (3, 4)], lambda A, B: sum(A.multiply_elementwise(B)), "torch.einsum('ij,ij->'"),
    (einsum_vdot, [(5,), (5,)], lambda a, b: 3 * sum(a.multiply_elementwise(b)), "torch.einsum('i,i->'"),
    (einsum_plain, [(4, 3)], lambda A: sum(A[c, r] ** 2 * exact(float(W4[c])) for r in range(3) for c in range(4))
     + sum(sum(A.row(i)) ** 2 for i in range(4)), ".T"),
    (einsum_rest, [(3, 4), (3, 4)], lambda A, B: sum(A.multiply_elementwise(B)) + sum(A) + A[0, 1] * B[0, 1], ".sum("),
], ids=["ij,jk->ik", "ii->", "ij,ij->", "i,i->", "ij->ji,ij->i", "ij->j,ij->,ij,ij->ij"])
def test_einsum_patterns(fn: Any, shapes: list[tuple[int, ...]], math: Any, call: str, dtype: torch.dtype) -> None:
    """A contraction (a matmul, a trace, a sum of products) is torch.einsum's own call (its bmm rounds, and
    accumulates the gradient, otherwise than `A @ B`, torch.trace or `(a * b).sum()`: measured); a transpose,
    a sum along a dim and an elementwise product are the table's ops, whose bits einsum's equal."""
    inputs = {name: rand(*s, dtype=dtype, seed=20 + k) for k, (name, s) in enumerate(zip("AB" if len(shapes[0]) == 2 else "ab",
                                                                                       shapes))}
    c = checked(fn, inputs, math)
    assert c.ok and call in c.lowered.source


def einsum_batched(A, B):
    return torch.einsum("ij,ij->i", A, B).sum()  # (`"ij,kj->ik"`, Q K^T, is read since: test_torch_calls)


def test_einsum_of_another_pattern_is_a_sentence_naming_it() -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(einsum_batched, torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64))
    text = str(err.value)
    assert "`torch.einsum('ij,ij->i', ...)` of operands of rank 2, 2 is not a pattern symgrad reads" in text
    assert "bij,bjk->bik" in text and "Fix:" in text and "test_more_ops.py:" in text


W5 = torch.tensor([0.5, -1.25, 2.0, 0.75, 3.0], dtype=torch.float64)  # exact in float32 too


def sorted_values(x):
    return (torch.sort(x).values * W5.to(x.dtype)).sum()


def sorted_descending(x):
    v, i = x.sort(descending=True)
    return (torch.tanh(v) * W5.to(x.dtype)).sum()


def top3(x):
    return (torch.topk(x, 3).values * W5[:3].to(x.dtype)).sum() + (x.topk(2, largest=False)[0] ** 2).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, ranks", [
    (sorted_values, lambda order: [(p, k, False) for p, k in enumerate(order)]),
    (sorted_descending, lambda order: [(p, k, True) for p, k in enumerate(order[::-1])]),
], ids=["sort", "sort-descending"])
def test_sort_values_are_torchs_call_and_the_order_statistics(fn: Any, ranks: Any, dtype: torch.dtype) -> None:
    """Away from ties the sorted values are the elements in their exact order (the mathematics there)."""
    x = rand(5, dtype=dtype, seed=30)
    order = sorted(range(5), key=lambda k: float(x[k]))

    def math(X: sp.Matrix) -> sp.Expr:
        return sum((sp.tanh(X[k]) if desc else X[k]) * exact(float(W5[p])) for p, k, desc in ranks(order))

    c = checked(fn, {"x": x}, math)
    assert c.ok and "torch.sort(" in c.lowered.source


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_topk_values(dtype: torch.dtype) -> None:
    x = rand(5, dtype=dtype, seed=31)
    order = sorted(range(5), key=lambda k: float(x[k]))

    def math(X: sp.Matrix) -> sp.Expr:
        return (sum(X[k] * exact(float(W5[p])) for p, k in enumerate(order[::-1][:3]))
                + sum(X[k] ** 2 for k in order[:2]))

    c = checked(top3, {"x": x}, math)
    assert c.ok and "torch.topk(" in c.lowered.source


def test_a_tie_in_a_sort_is_a_kink_on_the_tied_elements_with_torchs_index_as_the_executed_side() -> None:
    """x = (1, 1, 1, 0, 1): the four 1's tie for positions 1 to 4. Moving one of them down puts it at
    position 1 (slope W5[1] = -5/4), up at position 4 (W5[4] = 3); torch's sort gives each tied element the
    weight of the position it returned it at (its own order among ties, not a stable one)."""
    x = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    c = sg.trace(sorted_values, x).compare()
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(sorted_values(leaf), [leaf])
    assert [e.grad_autograd for e in c.entries] == g.tolist()
    assert [float(e.grad_executed) for e in c.entries] == g.tolist()
    assert [e.cause for e in c.entries] == [Cause.KINK, Cause.KINK, Cause.KINK, Cause.AGREE, Cause.KINK]
    for e in c.entries:
        if e.cause is Cause.KINK:
            assert tuple(sp.nsimplify(str(v)) for v in e.one_sided) == (sp.Rational(-5, 4), 3)


def sort_indices_used(x):
    v, i = torch.sort(x)
    return x[i].sum()


def sort_of_matrix(X):
    return torch.sort(X, dim=2).values.sum()  # (along dim 1 or 0 it is read since: test_sort_matrix)


@pytest.mark.parametrize("fn, shape, words", [
    (sort_indices_used, (4,), "This index is not a constant"),
    (sort_of_matrix, (2, 3), "`torch.sort(dim=2)` of a tensor of rank 2 (torch raises)"),
], ids=["indices", "matrix"])
def test_sort_outside_what_is_read_is_a_sentence(fn: Any, shape: tuple[int, ...], words: str) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, torch.randn(*shape, dtype=torch.float64))
    assert words in str(err.value) and "Fix:" in str(err.value), str(err.value)
