"""What a person reads never shows the ones matrices the torch reader builds: a sum of every
element reads `sum(A)` (torch's `A.sum()`), never `(1*A)[0, 0]`; a sum along a dim `sum(A, dim=1)`;
a row or a scalar repeated to a shape `broadcast(b.T, (3, 2))`, never `1*b.T`; an elementwise
function `[exp(X[i, j])]`, never SymPy's `Lambda(_d, exp(_d)).(X)`. The printed text is held to the
exact value of the expression it prints (evaluated in SymPy with `sum`, `broadcast` and `ones` as
torch defines them) and to torch's shapes; the reports of the D2L corpus and the matrix catalogue
are scanned for the old spellings."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.frontends.torch_sums import reduce_all
from symgrad.program.elementwise import expand
from symgrad.program.program import sstr

from corpus.d2l.cases import CASES
from corpus.d2l.run import run
from matrix_cases import ALL_MATRIX_CASES

# `1*X` or `X*1` with 1 a ones matrix, and SymPy's own elementwise notation (a scalar -1*x is not one)
OLD_SPELLINGS = re.compile(r"(?<![\w.\-])1\*[A-Za-z_(\[]|\*1(?![\w.])|Lambda\(_d")

X = sp.MatrixSymbol("X", 3, 2)
w = sp.MatrixSymbol("w", 2, 1)
b = sp.MatrixSymbol("b", 2, 1)
c = sp.MatrixSymbol("c", 3, 1)
x = sp.Symbol("x", real=True)


def _torch_sum(m: sp.MatrixBase, dim: int | None = None, keepdim: bool = False) -> Any:
    """torch's `m.sum(dim, keepdim)` on an explicit SymPy matrix, the rank-1 result as a column."""
    if dim is None:
        total = sum(m, sp.Integer(0))
        return sp.ImmutableMatrix([[total]]) if keepdim else total
    if dim == 1:
        return sp.ImmutableMatrix(m.rows, 1, lambda i, _: sum(m[i, :], sp.Integer(0)))
    row = sp.ImmutableMatrix(1, m.cols, lambda _, j: sum(m[:, j], sp.Integer(0)))
    return row if keepdim else row.T


def _torch_broadcast(m: Any, shape: tuple[int, int]) -> sp.ImmutableMatrix:
    """torch's `m.expand(*shape)` (a scalar: `torch.full(shape, m)`), checked against torch's own
    broadcasting rule on the shapes."""
    shape = (int(shape[0]), int(shape[1]))
    if not isinstance(m, sp.MatrixBase):
        return sp.ImmutableMatrix(*shape, lambda i, j: m)
    assert torch.zeros(m.shape).expand(*shape).shape == torch.Size(shape)  # raises where torch would
    return sp.ImmutableMatrix(*shape, lambda i, j: m[i if m.rows > 1 else 0, j if m.cols > 1 else 0])


def _evaluate(text: str, values: dict[str, Any]) -> Any:
    """The printed text's value, with `sum`, `broadcast` and `ones` as torch's."""
    names = {"sum": _torch_sum, "broadcast": _torch_broadcast, "ones": lambda m, n: sp.ones(m, n),
             "HadamardPower": lambda a, p: a.applyfunc(lambda t: t**p), **values}
    names["Integer"] = sp.Integer  # 1/3 exact, not Python's float division
    return eval(re.sub(r"(?<![\w.])(\d+)(?![\w.])", r"Integer(\1)", text), {"__builtins__": {}}, names)  # noqa: S307 - the printer's own text, in a test


def _q(v: Any) -> sp.Rational:
    return sp.Rational(v.numerator, v.denominator)


def _exact(expr: Any, values: dict[str, Any]) -> Any:
    out = expr.xreplace({s: values[s.name] for s in expr.free_symbols if s.name in values})
    out = out.doit()
    return out.as_explicit() if isinstance(out, sp.MatrixExpr) else out


def _ones_forms() -> list[Any]:
    """The ones-matrix products the torch reader builds: `.sum()`, `.sum(dim)`, broadcasts."""
    ones = sp.OneMatrix
    return [
        reduce_all(X),
        reduce_all(sp.HadamardPower(X * w, 2)),
        reduce_all(X * w),  # a column: ones(1, 3)*A alone
        reduce_all(b.T),  # a row: A*ones(2, 1) alone
        sp.MatMul(X, ones(2, 1), evaluate=False),  # X.sum(1)
        sp.MatMul(ones(1, 3), X, evaluate=False),  # X.sum(0, keepdim=True)
        sp.Transpose(sp.MatMul(ones(1, 3), X, evaluate=False)),  # X.sum(0), rank 1
        expand(b.T, 3, 2),  # a bias row repeated down the rows
        expand(c, 3, 2),  # a column repeated along the columns
        expand(sp.MatrixSymbol("s", 1, 1), 3, 2),
        sp.MatAdd(X, expand(b.T, 3, 2), evaluate=False),
        sp.MatMul(x, ones(3, 2), evaluate=False),  # `X + x` reads x * ones
        sp.MatMul(-2, ones(3, 1), b.T, evaluate=False),
        sp.MatMul(sp.Rational(1, 3), ones(1, 3), X, evaluate=False),
    ]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.fractions(min_value=-5, max_value=5, max_denominator=7), min_size=14, max_size=14))
def test_sums_and_broadcasts_print_as_torch_computes_them(vals: list[Any]) -> None:
    values = {"X": sp.ImmutableMatrix(3, 2, [_q(v) for v in vals[:6]]),
              "w": sp.ImmutableMatrix(2, 1, [_q(v) for v in vals[6:8]]),
              "b": sp.ImmutableMatrix(2, 1, [_q(v) for v in vals[8:10]]),
              "c": sp.ImmutableMatrix(3, 1, [_q(v) for v in vals[10:13]]),
              "s": sp.ImmutableMatrix(1, 1, [_q(vals[13])]),
              "x": _q(vals[13])}
    for e in _ones_forms():
        text = sstr(e)
        assert not OLD_SPELLINGS.search(text) and "ones(" not in text, text
        got = _evaluate(text, values)
        want = _exact(e, values)
        assert got == want, (text, got, want)


def test_the_texts() -> None:
    assert sstr(reduce_all(sp.HadamardPower(X * w, 2))) == "sum(HadamardPower(X*w, 2))"
    assert sstr(sp.MatAdd(X, expand(b.T, 3, 2), evaluate=False)) == "X + broadcast(b.T, (3, 2))"
    assert sstr(sp.MatMul(X, sp.OneMatrix(2, 1), evaluate=False)) == "sum(X, dim=1)"
    assert sstr(sp.Transpose(sp.MatMul(sp.OneMatrix(1, 3), X, evaluate=False))) == "sum(X, dim=0)"
    assert sstr(sp.MatMul(sp.OneMatrix(1, 3), X, evaluate=False)) == "sum(X, dim=0, keepdim=True)"
    assert sstr(sp.MatMul(x, sp.OneMatrix(3, 2), evaluate=False)) == "broadcast(x, (3, 2))"
    assert sstr(sp.OneMatrix(3, 2)) == "ones(3, 2)"


def _f(w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    return ((X @ w) ** 2).sum()


def _g(W: torch.Tensor, b: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    return torch.relu(X @ W + b).sum()


def test_executed_path_of_a_sum_and_a_bias_reads_as_torch() -> None:
    Xv = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    wv = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    c1 = sg.compare(_f, at={"w": wv, "X": Xv}, wrt=["w"])
    text = str(c1)
    assert f"out = sum(HadamardPower(X*w, 2)) -> {int(_f(wv, Xv).item())}" in text  # 435, torch's value
    Wv = torch.tensor([[1.0, -1.0], [2.0, 0.5]], dtype=torch.float64)
    bv = torch.tensor([0.5, -3.0], dtype=torch.float64)
    c2 = sg.compare(_g, at={"W": Wv, "b": bv, "X": Xv}, wrt=["W", "b"])
    text = str(c2)
    assert "X*W + broadcast(b.T, (3, 2))" in text, text
    assert f"-> {_g(Wv, bv, Xv).item()} (69/2)" in text  # torch's 34.5, exactly 69/2
    for t in (str(c1), c1.to_markdown(), c1._repr_html_(), str(c2), c2.to_markdown(), c2._repr_html_()):
        assert not OLD_SPELLINGS.search(t), OLD_SPELLINGS.search(t)
        assert ")[0, 0]" not in t, t  # no element of a 1x1 sum


def _texts(c: sg.Comparison) -> list[str]:
    return [str(c), c.to_markdown(), c._repr_html_()]


def test_no_ones_factor_or_lambda_in_the_d2l_corpus_reports() -> None:
    warnings.simplefilter("ignore")
    hits = []
    for case in CASES:
        o = run(case)
        texts = _texts(o.comparison) if o.comparison is not None else [str(o.error)] if o.error else []
        hits += [(case.id, m.group(0)) for t in texts for m in [OLD_SPELLINGS.search(t)] if m]
    assert not hits, hits


@pytest.mark.parametrize("case", ALL_MATRIX_CASES, ids=lambda c: c.name)
def test_no_ones_factor_or_lambda_in_the_matrix_reports(case: Any) -> None:
    c = sg.compare(case.expr, at=case.at)
    for t in _texts(c):
        assert not OLD_SPELLINGS.search(t), OLD_SPELLINGS.search(t)
