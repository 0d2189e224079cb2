"""The corners of the fused matrix ops are `kink` findings, as `vector_norm` at the origin is (issue
22, item 1): `torch.cdist` at a zero distance (row i of A and row j of B the same point: the
mathematics is a cone there, torch's gradient 0) and `F.normalize` with a row's (column's) norm
exactly at eps (the kink of max(||x||, eps); torch's clamp_min passes the gradient there, the slope
of x / ||x||). Every element the corner reaches is a kink with its one-sided slopes; every other
agrees.

Ground truth: torch itself for autograd (every entry against `torch.autograd.grad`, bit for bit, in
float64 and float32), and SymPy written out here: the one-sided slopes are `sympy.limit` of
`sympy.diff` of the mathematics along the element from each side; the executed slope is the
mathematics' derivative with torch's convention at the corner (a zero distance's term dropped; the
x / ||x|| piece of a norm at eps).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]
T = sp.Symbol("t", real=True)
CDIST_W = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
NORM_W = torch.tensor([[1.0, 2.0], [3.0, 4.0], [-1.0, 0.5]], dtype=torch.float64)


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def weighted_distances(a, b):
    return (torch.cdist(a, b) * CDIST_W.to(a.dtype)).sum()


def one_distance(a, b):
    return torch.cdist(a, b)[0, 1] * 3 + torch.cdist(a, b)[1, 0]


def self_distances(x):
    return torch.cdist(x, x).sum()


def normalized_rows(x):
    return (F.normalize(x, dim=1, eps=5.0) * NORM_W.to(x.dtype)).sum()


def normalized_columns(x):
    return (F.normalize(x, dim=0, eps=5.0) * NORM_W.to(x.dtype)).sum()


def autograd_of(fn: Any, *xs: torch.Tensor) -> list[float]:
    leaves = [x.clone().requires_grad_(True) for x in xs]
    return [float(v) for g in torch.autograd.grad(fn(*leaves), leaves) for v in g.reshape(-1)]


def sides_of(f: sp.Expr, s: sp.Symbol, at: dict[Any, Any]) -> tuple[sp.Expr, sp.Expr]:
    """The slopes of f along s just left and just right of the point (sympy.limit)."""
    moved = f.subs({k: v for k, v in at.items() if k != s}).subs(s, at[s] + T)
    return tuple(sp.limit(sp.diff(on_side(moved, sign), T), T, 0, "-+"[sign > 0]) for sign in (-1, 1))


def on_side(e: sp.Expr, sign: int) -> sp.Expr:
    """e with each Max(a, b) replaced by the argument that is the larger just beside t = 0 on the
    side `sign` (sympy.limit does not take Max apart)."""
    tiny = sign * sp.Rational(1, 10**30)
    return e.replace(lambda u: isinstance(u, sp.Max),
                     lambda u: max(u.args, key=lambda a: float(a.subs(T, tiny).evalf(80) - u.args[0].subs(T, tiny).evalf(80))))


def close(a: Any, b: sp.Expr) -> bool:
    got = sp.sympify(str(a)).evalf(40)
    return bool(abs(got - sp.sympify(b).evalf(40)) <= sp.Float("1e-25") * max(1, abs(sp.sympify(b).evalf(40))))


def cdist_math(a: torch.Tensor, b: torch.Tensor, weights: sp.Matrix) -> tuple[sp.Matrix, sp.Matrix, Any, Any, dict]:
    A = sp.Matrix(a.shape[0], a.shape[1], lambda i, k: sp.Symbol(f"a{i}{k}", real=True))
    B = sp.Matrix(b.shape[0], b.shape[1], lambda j, k: sp.Symbol(f"b{j}{k}", real=True))
    at = {**{s: exact(float(v)) for s, v in zip(A, a.double().reshape(-1))},
          **{s: exact(float(v)) for s, v in zip(B, b.double().reshape(-1))}}

    def dist(i: int, j: int) -> sp.Expr:
        return sp.sqrt(sum((A[i, k] - B[j, k]) ** 2 for k in range(A.shape[1])))

    pairs = [(i, j) for i in range(A.shape[0]) for j in range(B.shape[0])]
    f = sum(weights[i, j] * dist(i, j) for i, j in pairs)
    # torch's convention: a zero distance's term contributes nothing to the gradient
    torch_f = sum(weights[i, j] * dist(i, j) for i, j in pairs if dist(i, j).subs(at) != 0)
    return A, B, f, torch_f, at


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_zero_distance_of_cdist_is_a_kink_of_the_rows_it_reaches(dtype: torch.dtype) -> None:
    a = torch.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=dtype)
    b = torch.tensor([[0.5, 7.0], [1.0, 2.0]], dtype=dtype)  # a[0] == b[1]: distance [0, 1] is 0
    c = sg.compare(weighted_distances, at={"a": a, "b": b})
    assert c.cause is Cause.KINK
    assert [e.grad_autograd for e in c.entries] == autograd_of(weighted_distances, a, b)
    A, B, f, torch_f, at = cdist_math(a, b, sp.Matrix(2, 2, [exact(float(v)) for v in CDIST_W.reshape(-1)]))
    kinks = {"a[0, 0]", "a[0, 1]", "b[1, 0]", "b[1, 1]"}
    assert {str(e.wrt) for e in c.entries if e.cause is Cause.KINK} == kinks
    for e, s in zip(c.entries, [*A, *B]):
        assert close(e.grad_executed, sp.diff(torch_f, s).subs(at)), (str(e.wrt), e.grad_executed)
        if str(e.wrt) in kinks:
            left, right = sides_of(f, s, at)
            assert e.grad_symbolic is None and e.one_sided is not None
            assert close(e.one_sided[0], left) and close(e.one_sided[1], right), (str(e.wrt), e.one_sided, left, right)
        else:
            assert e.cause is Cause.AGREE and close(e.grad_symbolic, sp.diff(f, s).subs(at))
    kink = next(e for e in c.entries if e.cause is Cause.KINK)
    text = kink.explanation
    assert "`torch.cdist(a, b)` (line" in text and "distance [0, 1] is 0" in text
    assert "row 0 of the first matrix and row 1 of the second are the same point" in text
    assert "torch.cdist has gradient 0 where a distance is 0" in text
    assert "return (torch.cdist(a, b) * CDIST_W.to(a.dtype)).sum()" in text


def test_one_element_of_cdist_at_a_zero_distance_is_a_kink() -> None:
    a = torch.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=torch.float64)
    b = torch.tensor([[0.5, 7.0], [1.0, 2.0]], dtype=torch.float64)
    c = sg.compare(one_distance, at={"a": a, "b": b})
    assert [e.grad_autograd for e in c.entries] == autograd_of(one_distance, a, b)
    A, B, f, torch_f, at = cdist_math(a, b, sp.Matrix([[0, 3], [1, 0]]))
    for e, s in zip(c.entries, [*A, *B]):
        assert close(e.grad_executed, sp.diff(torch_f, s).subs(at))
        if s in (A[0, 0], A[0, 1], B[1, 0], B[1, 1]):
            left, right = sides_of(f, s, at)
            assert e.cause is Cause.KINK and close(e.one_sided[0], left) and close(e.one_sided[1], right)
        else:
            assert e.cause is Cause.AGREE and close(e.grad_symbolic, sp.diff(f, s).subs(at))


def test_cdist_of_a_matrix_with_itself_is_smooth_its_diagonal_is_zero_everywhere() -> None:
    """cdist(X, X)'s diagonal is |x_i - x_i| = 0 for every X, not a cone: the mathematics has a
    derivative (the other distances'), and torch's 0 for the diagonal is it. It agrees (it was
    refused with a sentence before)."""
    x = torch.tensor([[1.0, 2.0], [-0.5, 3.0], [2.0, 0.25]], dtype=torch.float64)
    t = sg.trace(self_distances, x)
    c = t.compare()
    assert c.ok and c.cause is Cause.AGREE
    assert [e.grad_autograd for e in c.entries] == autograd_of(self_distances, x)
    X = sp.Matrix(3, 2, lambda i, k: sp.Symbol(f"x{i}{k}", real=True))
    at = {s: exact(float(v)) for s, v in zip(X, x.reshape(-1))}
    f = sum(sp.sqrt(sum((X[i, k] - X[j, k]) ** 2 for k in range(2))) for i in range(3) for j in range(3) if i != j)
    for e, s in zip(c.entries, X):
        assert close(e.grad_symbolic, sp.diff(f, s).subs(at)) and close(e.grad_executed, sp.diff(f, s).subs(at))


def norm_math(x: torch.Tensor, dim: int) -> tuple[sp.Matrix, Any, Any, dict]:
    """sum W * x / max(||x_g||, 5) written out, and torch's piece at a norm exactly 5 (x / ||x_g||)."""
    X = sp.Matrix(x.shape[0], x.shape[1], lambda i, k: sp.Symbol(f"x{i}{k}", real=True))
    at = {s: exact(float(v)) for s, v in zip(X, x.double().reshape(-1))}
    W = sp.Matrix(3, 2, [exact(float(v)) for v in NORM_W.reshape(-1)])
    groups = [X.row(i) for i in range(X.rows)] if dim == 1 else [X.col(j) for j in range(X.cols)]
    norms = [sp.sqrt(sum(v ** 2 for v in g)) for g in groups]

    def denom(i: int, j: int, torch_side: bool) -> sp.Expr:
        n = norms[i if dim == 1 else j]
        here = n.subs(at)
        if here != 5:  # off the corner: the piece the point lies on (a zero row: x/5, smooth)
            return n if here > 5 else sp.Integer(5)
        return n if torch_side else sp.Max(n, 5)

    f = sum(W[i, j] * X[i, j] / denom(i, j, False) for i in range(X.rows) for j in range(X.cols))
    torch_f = sum(W[i, j] * X[i, j] / denom(i, j, True) for i in range(X.rows) for j in range(X.cols))
    return X, f, torch_f, at


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, dim, x, tied", [
    (normalized_rows, 1, [[3.0, 4.0], [1.0, 2.0], [0.0, 0.0]], {"x[0, 0]", "x[0, 1]"}),  # row 0's norm is 5
    (normalized_columns, 0, [[1.0, 3.0], [2.0, 0.0], [2.0, 4.0]], {"x[0, 1]", "x[1, 1]", "x[2, 1]"}),  # column 1's
], ids=["rows", "columns"])
def test_a_norm_exactly_at_normalize_eps_is_a_kink_of_its_group(fn: Any, dim: int, x: list, tied: set[str],
                                                                 dtype: torch.dtype) -> None:
    xt = torch.tensor(x, dtype=dtype)
    c = sg.compare(fn, at={"x": xt})
    assert c.cause is Cause.KINK
    assert [e.grad_autograd for e in c.entries] == autograd_of(fn, xt)
    X, f, torch_f, at = norm_math(xt, dim)
    kinks = {str(e.wrt) for e in c.entries if e.cause is Cause.KINK}
    # x[1, 1] = 0 of column 1 moves its norm by second order only: both sides are one piece there
    assert kinks == tied - ({"x[1, 1]"} if dim == 0 else set())
    for e, s in zip(c.entries, X):
        assert close(e.grad_executed, sp.diff(torch_f, s).subs(at)), (str(e.wrt), e.grad_executed)
        if str(e.wrt) in kinks:
            left, right = sides_of(f, s, at)
            assert close(e.one_sided[0], left) and close(e.one_sided[1], right), (str(e.wrt), e.one_sided, left, right)
        else:
            assert e.cause is Cause.AGREE and close(e.grad_symbolic, sp.diff(torch_f, s).subs(at))
    text = next(e for e in c.entries if e.cause is Cause.KINK).explanation
    assert f"`F.normalize(x, dim={dim}, eps=5.0)` (line" in text and "norm is exactly eps" in text
    assert "clamp_min passes the gradient where the norm equals eps" in text


def _cdist_sum(x, B):
    return torch.cdist(x * B, B).sum()


def _normalize_sum(x, W):
    return F.normalize(x * W, dim=1, eps=5.0).sum()


@pytest.mark.parametrize("fn, held", [
    (_cdist_sum, {"B": torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.float64)}),  # x = 1: x*B[i] == B[i]
    (_normalize_sum, {"W": torch.tensor([[3.0, 4.0], [1.0, 2.0]], dtype=torch.float64)}),  # x = 1: row 0's norm 5
], ids=["cdist", "normalize"])
def test_a_sweep_decides_the_corner_of_a_fused_op_as_a_kink(fn: Any, held: dict) -> None:
    s = sg.sweep(fn, over={"x": (0.0, 2.0)}, n=5, fixed=held)
    causes = dict(zip(s.points[:, 0].tolist(), s.causes.tolist()))
    assert causes[1.0] == "kink" and s.counts == {"agree": 4, "kink": 1} and s.skipped_points == 0
    assert not any("does not decide" in n for n in s.notes)
    c = sg.compare(fn, at={"x": 1.0, **held}, wrt=["x"])
    x = sp.Symbol("x", real=True)
    H = next(iter(held.values()))
    if fn is _cdist_sum:  # sum_ij |x*B_i - B_j|: the diagonal is |x - 1|*|B_i|, a cone at x = 1
        f = sum(sp.sqrt(sum((x * exact(float(H[i, k])) - exact(float(H[j, k]))) ** 2 for k in range(2)))
                for i in range(2) for j in range(2))
    else:  # row 0: x*W_0/max(5|x|, 5); row 1: x*W_1/max(sqrt(5)|x|, 5)
        f = sum(x * exact(float(H[i, k])) / sp.Max(sp.sqrt(sum((x * exact(float(H[i, m]))) ** 2 for m in range(2))), 5)
                for i in range(2) for k in range(2))
    (e,) = c.entries
    assert e.cause is Cause.KINK and e.grad_autograd == autograd_of(lambda v: fn(v, *held.values()), torch.tensor(1.0, dtype=torch.float64))[0]
    left, right = sides_of(f, x, {x: sp.Integer(1)})
    assert close(e.one_sided[0], left) and close(e.one_sided[1], right)


MM_W = torch.tensor([1.0, 2.0])


def mm_distances(a, b):
    return (torch.cdist(a, b) * MM_W.to(a.dtype)).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_torchs_matrix_product_path_at_a_zero_distance_is_the_same_kink(dtype: torch.dtype) -> None:
    """More than 25 rows: torch 2.13 computes the distances through a matrix product (_euclidean_dist:
    the squared norms, one matmul, clamp_min(0), sqrt), whose value at a tie is 0 and whose backward
    masks a zero distance to 0, as its direct path does (checked here against torch's direct path
    too). The verdict is the cone's kink, naming the element and the line (was a sentence that
    said torch clamps to 1e-30, which torch 2.13 does not)."""
    a = torch.arange(52, dtype=dtype).reshape(26, 2) / 4
    b = a[:2].clone()  # rows 0 and 1 of both are the same points: distances [0, 0] and [1, 1] are 0
    c = sg.compare(mm_distances, at={"a": a, "b": b})
    theirs = autograd_of(mm_distances, a, b)
    assert [e.grad_autograd for e in c.entries] == theirs  # torch's own gradient, bit for bit
    direct = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
    assert torch.equal(torch.cdist(a, b)[:2, :2].diagonal(), direct[:2, :2].diagonal())  # both 0 at the ties
    assert c.cause is Cause.KINK
    kinks = {f"a[{r}, {k}]" for r in range(2) for k in range(2)} | {f"b[{r}, {k}]" for r in range(2) for k in range(2)}
    assert {str(e.wrt) for e in c.entries if e.cause is Cause.KINK} == kinks
    weights = sp.Matrix(26, 2, lambda i, j: j + 1)
    A, B, f, torch_f, at = cdist_math(a, b, weights)
    checked = list(zip(c.entries, [*A, *B]))
    for e, s in checked[:4] + checked[8:9] + checked[-4:]:  # the tied rows' entries and one other (sympy is slow)
        assert close(e.grad_executed, sp.diff(torch_f, s).subs(at)), (str(e.wrt), e.grad_executed)
        if str(e.wrt) in kinks:
            left, right = sides_of(f, s, at)
            assert e.grad_symbolic is None and close(e.one_sided[0], left) and close(e.one_sided[1], right)
        else:
            assert e.cause is Cause.AGREE and close(e.grad_symbolic, sp.diff(f, s).subs(at))
    text = next(e for e in c.entries if e.cause is Cause.KINK).explanation
    assert "`torch.cdist(a, b)` (line" in text and "distances [0, 0], [1, 1] are 0" in text
    assert "row 0 of the first matrix and row 0 of the second, row 1 of the first matrix and row 1 of the second" in text
    assert "torch.cdist has gradient 0 where a distance is 0" in text
    assert "return (torch.cdist(a, b) * MM_W.to(a.dtype)).sum()" in text


VALUES = [-2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0]


@settings(max_examples=12, deadline=None)
@given(a=st.lists(st.sampled_from(VALUES), min_size=4, max_size=4),
       b=st.lists(st.sampled_from(VALUES), min_size=4, max_size=4),
       i=st.integers(0, 1), j=st.integers(0, 1))
def test_every_placed_tie_of_cdist_is_a_kink_of_its_two_rows_and_nothing_else(a: list, b: list, i: int, j: int) -> None:
    """Rows a_i and b_j made the same point: the entries of every tied pair's rows are kinks (the
    cone's slope is +-1 along each coordinate, whatever else moves), every other entry agrees; the
    executed derivative is torch's (a zero distance's term dropped), autograd torch's own."""
    at = torch.tensor(a, dtype=torch.float64).reshape(2, 2)
    bt = torch.tensor(b, dtype=torch.float64).reshape(2, 2)
    bt[j] = at[i]
    c = sg.compare(weighted_distances, at={"a": at, "b": bt})
    assert [e.grad_autograd for e in c.entries] == autograd_of(weighted_distances, at, bt)
    tied = [(r, s) for r in range(2) for s in range(2) if torch.equal(at[r], bt[s])]
    expected = {f"a[{r}, {k}]" for r, _ in tied for k in range(2)} | {f"b[{s}, {k}]" for _, s in tied for k in range(2)}
    assert {str(e.wrt) for e in c.entries if e.cause is Cause.KINK} == expected
    assert all(e.cause is Cause.AGREE for e in c.entries if str(e.wrt) not in expected)
    A, B, _, torch_f, exact_at = cdist_math(at, bt, sp.Matrix(2, 2, [exact(float(v)) for v in CDIST_W.reshape(-1)]))
    for e, s in zip(c.entries, [*A, *B]):
        assert close(e.grad_executed, sp.diff(torch_f, s).subs(exact_at))
