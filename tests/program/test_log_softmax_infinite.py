"""The exact softmax and log_softmax of a row with infinite logits say what torch 2.13 computes
(program/ops.py `_nan_row`): a +inf anywhere in the row, or every element -inf, makes every element
NaN, forward and backward; a -inf beside a finite largest is that element's -inf (log_softmax) or 0
(softmax), the others finite. Checked against torch itself, float64 and float32, and end to end:
the executed column of a comparison is NaN exactly where torch's autograd is."""

from __future__ import annotations

import math

import pytest
import torch

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.program import ops

INF = math.inf
ROWS = [
    [1.0, INF, 2.0],
    [INF, INF, 1.0],
    [INF, -INF, 0.0],
    [-INF, -INF, -INF],
    [1.0, -INF, 2.0],
    [-INF, 0.0, -INF],
    [-INF, 3.0],
    [INF],
    [-INF],
    [0.5, -1.5, 2.0],
]
DTYPES = [torch.float64, torch.float32]


def _exact(v: float) -> ex.Exact:
    return ex.INF if v == INF else ex.NEG_INF if v == -INF else ex.from_float(v)


def _same(ours: list[float], torchs: list[float], dtype: torch.dtype) -> bool:
    rel = 1e-12 if dtype == torch.float64 else 1e-6
    return all((math.isnan(a) and math.isnan(b)) or a == b or
               (math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=rel, abs_tol=rel))
               for a, b in zip(ours, torchs)) and len(ours) == len(torchs)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_forward_is_torchs(row: list[float], dtype: torch.dtype) -> None:
    t = torch.tensor(row, dtype=dtype)
    a = [_exact(float(v)) for v in t.tolist()]
    assert _same([ex.to_float(v) for v in ops.log_softmax_all(a)], torch.log_softmax(t, 0).tolist(), dtype)
    assert _same([ex.to_float(ops.log_softmax(a, i)) for i in range(len(a))], torch.log_softmax(t, 0).tolist(), dtype)
    assert _same([ex.to_float(v) for v in ops.softmax_weights(a)], torch.softmax(t, 0).tolist(), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_backward_is_torchs(row: list[float], dtype: torch.dtype) -> None:
    """torch's backward of log_softmax, seeded with ones (a sum) and with one element's one-hot
    (each partial): NaN exactly where torch's is, the finite ones torch's values."""
    n = len(row)
    a = [_exact(v) for v in row]
    x = torch.tensor([row], dtype=dtype, requires_grad=True)
    (summed,) = torch.autograd.grad(torch.log_softmax(x, 1).sum(), x)
    p = (1, n, 1)
    ones = ex.full((1, n), ex.ONE)
    ours = ops._log_softmax_vector_vjp(a, None, p, ones)
    assert _same([ex.to_float(v) for v in ours], summed[0].tolist(), dtype)
    for i in range(n):
        x = torch.tensor([row], dtype=dtype, requires_grad=True)
        (one,) = torch.autograd.grad(torch.log_softmax(x, 1)[0, i], x)
        assert _same([ex.to_float(v) for v in ops._log_softmax_partials(a, i)], one[0].tolist(), dtype)


def stacked(x, y):
    z = torch.stack([-torch.log(x), y, 2 * y])
    return torch.log_softmax(z, 0).sum()


def by_rows(X):
    return torch.log_softmax(-torch.log(X), dim=1).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_the_executed_side_is_nan_where_torch_is(dtype: torch.dtype) -> None:
    """-log(0) is +inf: torch's log_softmax makes its row NaN, forward and gradient; the executed
    side said 3 for d/dy (the other logits' -inf beside it). The mathematics has no value at 0
    (log's domain): the cause is domain."""
    c = sg.compare(stacked, at={"x": 0.0, "y": 1.0}, dtype=str(dtype)[6:])
    assert c.cause.id == "domain"
    for e in c.entries:
        assert math.isnan(float(e.grad_executed)) and math.isnan(e.grad_autograd), (e.wrt, e.grad_executed)
    X = torch.tensor([[0.0, 0.5], [0.25, 0.5]], dtype=dtype)
    c = sg.compare(by_rows, at={"X": X}, dtype=str(dtype)[6:])
    leaf = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(by_rows(leaf), leaf)
    want = grad.reshape(-1).tolist()
    assert [e.grad_autograd for e in c.entries][:2] == want[:2] or all(math.isnan(v) for v in want[:2])
    assert _same([float(e.grad_executed) for e in c.entries], want, dtype)  # row 0 NaN, row 1 torch's
    assert math.isnan(want[0]) and math.isnan(want[1]) and math.isfinite(want[2])
    assert c.cause.id == "domain"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_softmax_backward_is_torchs(row: list[float], dtype: torch.dtype) -> None:
    a = [_exact(v) for v in row]
    for i in range(len(row)):
        x = torch.tensor(row, dtype=dtype, requires_grad=True)
        (one,) = torch.autograd.grad(torch.softmax(x, 0)[i], x)
        assert _same([ex.to_float(v) for v in ops._softmax_partials(a, i)], one.tolist(), dtype)
