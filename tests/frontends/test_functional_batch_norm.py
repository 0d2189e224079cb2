"""`F.batch_norm` read as `nn.BatchNorm1d` reads (read10, item 2): the evaluation form with the running
statistics as constants, the training form with the batch's statistics (biased variance).

Ground truth: torch itself (the user's function's forward and `torch.autograd.grad`, bit for bit,
float64 and float32) and `sympy.diff` of (x_ij - mean_j)/sqrt(var_j + eps)*w_j + b_j written out
here, at the binary values the tensors hold.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]
RM = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
RV = torch.tensor([1.5, 0.5, 2.0], dtype=torch.float64)
EPS = 1e-5


def evaluation(x, w, b):
    return torch.tanh(F.batch_norm(x, RM.to(x.dtype), RV.to(x.dtype), w, b, False, 0.1, EPS)).sum()


def training(x, w, b):
    return torch.tanh(F.batch_norm(x, None, None, weight=w, bias=b, training=True)).sum()


def not_affine(x):
    return (F.batch_norm(x, None, None, training=True, eps=0.01) ** 2 * x).sum()


X = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [0.0, 1.0, 3.0]]
W = [1.0, 2.0, -0.5]
B = [0.1, 0.0, -0.3]


def q(v: float) -> sp.Rational:
    return sp.Rational(Fraction(float(v)))


def _point(dtype: torch.dtype, affine: bool = True) -> dict[str, torch.Tensor]:
    at = {"x": torch.tensor(X, dtype=dtype)}
    if affine:
        at |= {"w": torch.tensor(W, dtype=dtype), "b": torch.tensor(B, dtype=dtype)}
    return at


def _torch(fn: Any, at: dict[str, torch.Tensor]) -> tuple[float, list[float]]:
    leaves = {k: v.clone().requires_grad_(True) for k, v in at.items()}
    out = fn(**leaves)
    grads = torch.autograd.grad(out, list(leaves.values()))
    return out.item(), [v for g in grads for v in g.reshape(-1).tolist()]


def _math(at: dict[str, torch.Tensor], train: bool, eps: float, outer: Any) -> tuple[sp.Expr, list[sp.Symbol], dict]:
    """The function written out in SymPy, its inputs in torch's order, and the point."""
    xs = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"x{i}{j}", real=True))
    ws = [sp.Symbol(f"w{j}", real=True) for j in range(3)] if "w" in at else [1, 1, 1]
    bs = [sp.Symbol(f"b{j}", real=True) for j in range(3)] if "b" in at else [0, 0, 0]
    e = q(eps)
    f = sp.Integer(0)
    for j in range(3):
        col = [xs[i, j] for i in range(3)]
        if train:
            mean = sum(col) / 3
            var = sum((v - mean) ** 2 for v in col) / 3
        else:
            # the buffers as the function holds them: `.to(x.dtype)` rounds them in a float32 run
            mean, var = q(float(RM.to(at["x"].dtype)[j])), q(float(RV.to(at["x"].dtype)[j]))
        for i in range(3):
            f += outer((xs[i, j] - mean) / sp.sqrt(var + e) * ws[j] + bs[j], xs[i, j])
    syms = list(xs) + ([*ws, *bs] if "w" in at else [])
    values = [q(v) for v in at["x"].reshape(-1).tolist()]
    if "w" in at:
        values += [q(v) for v in at["w"].tolist()] + [q(v) for v in at["b"].tolist()]
    return f, syms, dict(zip(syms, values))


CASES = [(evaluation, False, EPS, True, lambda y, x: sp.tanh(y)), (training, True, EPS, True, lambda y, x: sp.tanh(y)),
         (not_affine, True, 0.01, False, lambda y, x: y ** 2 * x)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn,train,eps,affine,outer", CASES, ids=[c[0].__name__ for c in CASES])
def test_f_batch_norm_is_torchs_and_the_mathematics(fn: Any, train: bool, eps: float, affine: bool, outer: Any,
                                                     dtype: torch.dtype) -> None:
    at = _point(dtype, affine)
    t = sg.trace(fn, *at.values())
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    value, grads = _torch(fn, at)
    assert [e.grad_autograd for e in c.entries] == grads  # torch's own gradient, bit for bit
    assert float(c.value_autograd) == value
    assert c.ok and c.cause is Cause.AGREE, str(c)
    f, syms, point = _math(at, train, eps, outer)
    for e, s in zip(c.entries, syms):
        truth = sp.diff(f, s).subs(point).evalf(50)
        assert abs(sp.sympify(str(e.grad_symbolic)) - truth) < sp.Float("1e-40")
        assert abs(sp.sympify(str(e.grad_executed)) - truth) < sp.Float("1e-40")


def missing_stats(x):
    return F.batch_norm(x, None, None).sum()


def one_row(x):
    return F.batch_norm(x, None, None, training=True).sum()


def weight_only(x, w):
    return F.batch_norm(x, None, None, w, training=True).sum()


def stats_differentiated(x, m):
    return F.batch_norm(x, m, RV, training=False).sum()


def test_what_torch_refuses_and_symgrad_does_not_read_are_sentences() -> None:
    x = torch.tensor(X, dtype=torch.float64)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(missing_stats, x)
    assert "running_mean is None: torch raises" in str(err.value) and "F.batch_norm(x, None, None)" in str(err.value)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(one_row, x[:1])
    assert "Expected more than 1 value per channel when training" in str(err.value)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):  # torch's own
        one_row(x[:1])
    with pytest.raises(sg.TraceError) as err:
        sg.trace(weight_only, x, torch.tensor(W, dtype=torch.float64))
    assert "both weight and bias or neither" in str(err.value) and "F.batch_norm(x, None, None, w, training=True)" in str(err.value)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(stats_differentiated, x, RM.clone())
    text = str(err.value)
    assert "running_mean is a value symgrad differentiates" in text and "torch gives the running statistics no gradient" in text
    assert "F.batch_norm(x, m, RV, training=False)" in text
