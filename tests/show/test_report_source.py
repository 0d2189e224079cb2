"""A comparison with data of the user's call (`X_flat`) says what it is a function of once
(show/report_source.py): `to_dict()["source"]` is the expression with each matrix its elements are
read from named once and the data leaf described once, and the headline gives the data its own
clause. The named text is checked against the expression itself: substituting the names back gives
the comparison's own expression."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sympy as sp
import torch
import torch.nn.functional as F

import symgrad as sg
from symgrad.program.program import DataMatrix, sstr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "frontends"))
from test_data_leaf import batch, model_for, training_step  # noqa: E402


def _compare(n: int, side: int, classes: int, dtype: torch.dtype = torch.float64) -> sg.Comparison:
    X, y = batch(n, side, classes, dtype)
    return sg.trace(training_step, model_for(X, classes), X, y).compare()


def test_the_source_names_the_logits_once_and_the_data_once() -> None:
    c = _compare(2, 2, 2)
    source = c.to_dict()["source"]
    json.dumps(source)
    expr_text, rest = source.split(", where ", 1)
    assert expr_text.startswith("nll_loss(1, log_softmax(") and "X_flat" not in expr_text
    assert expr_text.count("M1[") == 4  # each logit once, by the name of its matrix
    where, data = rest.split("; the data ", 1)
    assert data == "X_flat (X reshaped to (2, 4), never differentiated)"
    assert source.count("X_flat") == 2 and source.count("model.net.1.weight") == 1  # each said once
    # M1 is the matrix the expression reads, exactly: put back, it is the comparison's expression
    norm = c.lowered.normalized
    expr = norm.output.xreplace(norm.user_symbols)
    parents = {e.parent for e in expr.atoms(sp.matrices.expressions.matexpr.MatrixElement)}
    (m1,) = [p for p in parents if not isinstance(p, sp.MatrixSymbol)]
    assert where == f"M1 = {sstr(m1)}"
    M1 = sp.MatrixSymbol("M1", *m1.shape)
    assert expr.xreplace({m1: M1}).xreplace({M1: m1}) == expr and sstr(expr.xreplace({m1: M1})) == expr_text
    # the comparison is unchanged: torch's own gradient of the user's loss
    X, y = batch(2, 2, 2, torch.float64)
    model = model_for(X, 2)
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(F.cross_entropy(model(X), y), params)
    want = sorted(v for g in grads for v in g.reshape(-1).tolist())
    assert sorted(e.grad_autograd for e in c.entries) == want


def test_a_large_batch_still_names_its_data_in_the_source() -> None:
    c = _compare(6, 3, 4)
    source = c.to_dict()["source"]
    assert c.source == "an expression of more than 400 nodes"  # SymPy's text repeats the logits' matrix 24 times
    assert source.startswith("nll_loss(1, log_softmax(") and source.count("M1[") == 24
    assert source.count(", where M1 = X_flat*model.net.1.weight.T") == 1
    assert source.endswith("; the data X_flat (X reshaped to (6, 9), never differentiated)")


def test_a_comparison_without_data_keeps_its_source() -> None:
    x = sp.Symbol("x")
    c = sg.compare(sp.sin(x) * x, at={x: 0.5})
    assert c.to_dict()["source"] == c.source == "x*sin(x)"


def test_the_headline_gives_the_data_its_own_clause() -> None:
    c = _compare(2, 2, 2, torch.float32)
    head = str(c).splitlines()[0]
    data, inputs = head.split(" at the data ", 1)[1].split("; ", 1)
    assert data == "X_flat (X reshaped to (2, 4), never differentiated)"
    assert "X_flat" not in inputs and inputs.count(" = ") == 2  # bias and weight, each with its value
    assert any(isinstance(s, DataMatrix) for s in c.point)


G = torch.Generator().manual_seed(9)
XG = torch.randn(100, 3, generator=G, dtype=torch.float64)
YG = torch.randn(100, generator=G, dtype=torch.float64)


def regression(w):
    return ((XG @ w - YG) ** 2).mean()


def test_global_data_is_said_by_its_shape_and_a_one_element_matrix_stays_inline() -> None:
    """A sum is the one element of a 1x1 matrix: named, it would read `M1[0, 0]/100, where M1 = ...`;
    it stays where it is read. The globals are said once each, by their shape."""
    w = torch.zeros(3, dtype=torch.float64)
    c = sg.compare(regression, at={"w": w})
    said = ("the data XG (a global of shape (100, 3), never differentiated) and "
            "YG (a global of shape (100,), never differentiated)")
    assert c.to_dict()["source"] == f"{c.source}; {said}" and "M1" not in c.source
    assert str(c).splitlines()[0].split(" at ", 1)[1].startswith(f"{said}; w = [0.0, 0.0, 0.0]")
    leaf = w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(regression(leaf), leaf)
    assert [e.grad_autograd for e in c.entries] == grad.tolist()
