"""torch's losses with the options issue 22 adds: `F.binary_cross_entropy(..., weight=w)` and
`nn.BCELoss(weight=w)`; `F.cross_entropy(X, y, label_smoothing=s)` of integer labels.

Ground truth: torch itself (forward value and autograd, bit for bit, float64 and float32: the
fidelity check and each entry's autograd value against `torch.autograd.grad` here), and
`sympy.diff` of the mathematics written out here, evaluated at the tensors' exact binary values.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import pytest
import sympy as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def symbols(name: str, t: torch.Tensor) -> sp.Matrix:
    rows, cols = (t.shape[0], 1) if t.ndim == 1 else tuple(t.shape)
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}[{i}, {j}]", real=True))


def at(m: sp.Matrix, t: torch.Tensor) -> dict[sp.Symbol, sp.Rational]:
    return {s: exact(float(v)) for s, v in zip(m, t.detach().to(torch.float64).reshape(-1))}


def check(fn: Callable[..., Any], args: list[torch.Tensor], math: Callable[..., sp.Expr], names: str,
          tol: str = "1e-25") -> Any:
    """fn read from source bit for bit; autograd torch's own; symbolic and executed sides the
    derivative of `math` (of the inputs' symbol matrices), exactly evaluated, within `tol`."""
    t = sg.trace(fn, *args)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    out = fn(*leaves)
    grads = torch.autograd.grad(out.sum(), leaves)
    assert [e.grad_autograd for e in c.entries] == [float(v) for g in grads for v in g.reshape(-1)]
    mats = [symbols(n, a) for n, a in zip(names, args)]
    f = math(*mats)
    point = {k: v for m, a in zip(mats, args) for k, v in at(m, a).items()}
    for e, s in zip(c.entries, [s for m in mats for s in m]):
        truth = sp.diff(f, s).subs(point)
        for side in (e.grad_symbolic, e.grad_executed):
            assert abs(sp.sympify(str(side)).evalf(40) - truth.evalf(40)) < sp.Float(tol), (str(e.wrt), side, truth)
    return c


# ---------------------------------------------------------------- binary_cross_entropy(weight=)

torch.manual_seed(0)
W_FULL = torch.randint(1, 12, (3, 4)).to(torch.float64) / 8  # exact in float32 too
W_ROW = torch.tensor([0.5, 1.25, 2.0, 0.75], dtype=torch.float64)  # exact in float32 too
BCE_LOSS = nn.BCELoss(weight=W_ROW, reduction="sum")


def bce_full(p, t):
    return F.binary_cross_entropy(p, t, weight=W_FULL.to(p.dtype))


def bce_row_sum(p, t):
    return F.binary_cross_entropy(p, t, weight=W_ROW.to(p.dtype), reduction="sum")


def bce_none(p, t):
    return (F.binary_cross_entropy(p, t, W_ROW.to(p.dtype), reduction="none") * 0.7).sum()


def bce_module(p, t):
    return BCE_LOSS(p, t)


def bce_math(w: Any, scale: Any) -> Callable[[sp.Matrix, sp.Matrix], sp.Expr]:
    """-sum(w*(t*log(p) + (1 - t)*log(1 - p))) * scale, w broadcast as torch broadcasts it."""
    def f(p: sp.Matrix, t: sp.Matrix) -> sp.Expr:
        return -scale * sum(w(i, j) * (t[i, j] * sp.log(p[i, j]) + (1 - t[i, j]) * sp.log(1 - p[i, j]))
                            for i in range(p.rows) for j in range(p.cols))
    return f


def _as(dtype: torch.dtype, w: torch.Tensor) -> Any:
    v = w.to(dtype).to(torch.float64)
    return (lambda i, j: exact(float(v[i, j]))) if v.ndim == 2 else (lambda i, j: exact(float(v[j])))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, weight, scale", [
    (bce_full, W_FULL, sp.Rational(1, 12)), (bce_row_sum, W_ROW, 1), (bce_none, W_ROW, exact(0.7)),
    (bce_module, W_ROW, 1)], ids=["mean-full", "sum-row", "none", "nn.BCELoss"])
def test_a_weight_multiplies_each_elements_loss_before_the_reduction(fn: Any, weight: torch.Tensor, scale: Any,
                                                                     dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    p = (torch.rand(3, 4, dtype=torch.float64) * 0.8 + 0.1).to(dtype)
    t = torch.rand(3, 4, dtype=torch.float64).to(dtype)
    if fn is bce_module and dtype is torch.float32:
        return  # the module's weight buffer is float64: torch refuses a float32 input with it
    # The literal 0.7 is the float64 it is in the mathematics (DESIGN.md section 4: a Float at its own precision).
    c = check(fn, [p, t], bce_math(_as(dtype, weight), scale), "pt")
    assert c.ok
    assert "weight=" in c.lowered.source


def test_a_weighted_bce_at_torchs_clamp_is_control_flow_with_the_weight_in_both_sides() -> None:
    """p = t = 0: torch's backward w*(p - t)/max(p(1 - p), 1e-12) is 0; the mathematics' slope
    of -w*log(1 - p) is w/(1 - p) = w (here 2, summed)."""
    p = torch.tensor([[0.0, 0.25, 0.25, 0.75]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0, 0.5, 0.0]], dtype=torch.float64)
    c = sg.trace(bce_row_sum, p, t).compare()
    by = {sp.sstr(e.wrt): e for e in c.entries}
    assert by["p[0, 0]"].cause is Cause.CONTROL_FLOW
    assert by["p[0, 0]"].grad_executed == 0 and by["p[0, 0]"].grad_autograd == 0.0
    assert by["p[0, 0]"].grad_symbolic == sp.Rational(1, 2)  # W_ROW[0] = 0.5
    # p = 1/4, t = 1: w*(p - t)/(p(1 - p)) = 1.25 * (-3/4)/(3/16) = -5, exactly, on all three sides.
    assert by["p[0, 1]"].cause is Cause.AGREE and by["p[0, 1]"].grad_executed == -5 == by["p[0, 1]"].grad_symbolic
    assert by["p[0, 1]"].grad_autograd == -5.0


def test_a_weight_that_does_not_broadcast_is_torchs_error_as_a_sentence() -> None:
    p = torch.full((3, 5), 0.5, dtype=torch.float64)
    with pytest.raises(sg.TraceError, match=r"a weight of shape \(4,\) does not broadcast to the input's \(3, 5\)"):
        sg.trace(bce_row_sum, p, p)


# ---------------------------------------------------------------- cross_entropy(label_smoothing=) of labels

CE_W = torch.tensor([0.5, 2.0, 1.25], dtype=torch.float64)  # exact in float32 too
CE_LOSS = nn.CrossEntropyLoss(label_smoothing=0.1)


def ce_mean(x, y):
    return F.cross_entropy(x, y, label_smoothing=0.1)


def ce_weighted_sum(x, y):
    return F.cross_entropy(x, y, weight=CE_W.to(x.dtype), label_smoothing=0.25, reduction="sum")


def ce_weighted_ignored_mean(x, y):
    return F.cross_entropy(x, y, weight=CE_W.to(x.dtype), ignore_index=1, label_smoothing=0.3)


def ce_none(x, y):
    return (F.cross_entropy(x, y, label_smoothing=0.5, reduction="none") * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum()


def ce_module(x, y):
    return CE_LOSS(x, y)


def smoothed_math(y: list[int], s: float, weights: list[float], ignore: int, reduction: str,
                  row_scale: list[float] | None = None) -> Callable[[sp.Matrix], sp.Expr]:
    """torch's documented mathematics, written out: with L = log_softmax(X, 1) and the rows kept
    (y_i != ignore), (1 - s)*(-sum w[y_i]*L[i, y_i]) + s/C*(-sum_i sum_c w_c*L[i, c]), each / the
    kept rows' total weight for 'mean'; 'none' is each row's own, times row_scale here."""
    def f(x: sp.Matrix) -> sp.Expr:
        n, classes = x.shape
        S, W = exact(s), [exact(w) for w in weights]
        def log_p(i: int, c: int) -> sp.Expr:
            return x[i, c] - sp.log(sum(sp.exp(x[i, k]) for k in range(classes)))
        kept = [i for i in range(n) if y[i] != ignore]
        per_row = {i: (1 - S) * (-W[y[i]] * log_p(i, y[i])) + S / classes * -sum(W[c] * log_p(i, c) for c in range(classes))
                   for i in kept}
        if reduction == "none":
            return sum(exact(row_scale[i]) * per_row[i] for i in kept)  # type: ignore[index]
        total = sum(W[y[i]] for i in kept) if reduction == "mean" else 1
        return sum(per_row.values()) / total
    return f


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, labels, math", [
    (ce_mean, [0, 2, 1, 1], smoothed_math([0, 2, 1, 1], 0.1, [1, 1, 1], -100, "mean")),
    (ce_weighted_sum, [0, 2, 1, 1], smoothed_math([0, 2, 1, 1], 0.25, [0.5, 2.0, 1.25], -100, "sum")),
    (ce_weighted_ignored_mean, [0, 1, 2, 2], smoothed_math([0, 1, 2, 2], 0.3, [0.5, 2.0, 1.25], 1, "mean")),
    (ce_none, [2, 0, 1, 0], smoothed_math([2, 0, 1, 0], 0.5, [1, 1, 1], -100, "none", [1.0, 2.0, 3.0, 4.0])),
    (ce_module, [1, 1, 0, 2], smoothed_math([1, 1, 0, 2], 0.1, [1, 1, 1], -100, "mean")),
], ids=["mean", "weighted-sum", "weighted-ignored-mean", "none", "nn.CrossEntropyLoss"])
def test_label_smoothing_of_integer_labels_is_torchs_kernel(fn: Any, labels: list[int], math: Any,
                                                            dtype: torch.dtype) -> None:
    torch.manual_seed(5)
    x = torch.randn(4, 3, dtype=dtype)
    y = torch.tensor(labels)
    t = sg.trace(fn, x, y)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert c.ok
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(leaf, y), [leaf])
    assert [e.grad_autograd for e in c.entries] == [float(v) for v in g.reshape(-1)]
    X = symbols("x", x)
    f = math(X)
    point = at(X, x)
    for e, s in zip(c.entries, X):
        truth = sp.diff(f, s).subs(point).evalf(40)
        for side in (e.grad_symbolic, e.grad_executed):
            assert abs(sp.sympify(str(side)).evalf(40) - truth) < sp.Float("1e-25"), (str(e.wrt), side, truth)
    assert "label_smoothing=" in c.lowered.source
    # A row ignored has gradient 0, exactly, on every side.
    for e in c.entries:
        if fn is ce_weighted_ignored_mean and str(e.wrt).startswith("x[1,"):
            assert e.grad_executed == 0 and e.grad_autograd == 0.0


def test_label_smoothing_out_of_range_is_torchs_error_as_a_sentence() -> None:
    def ce_big(x, y):
        return F.cross_entropy(x, y, label_smoothing=1.5)

    with pytest.raises(sg.TraceError, match=r"torch takes 0 <= label_smoothing <= 1"):
        sg.trace(ce_big, torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 2]))


def test_label_smoothing_with_every_row_ignored_is_nan_as_in_torch() -> None:
    def ce_all_ignored(x, y):
        return F.cross_entropy(x, y, ignore_index=1, label_smoothing=0.2)

    x, y = torch.randn(2, 3, dtype=torch.float64), torch.tensor([1, 1])
    assert torch.isnan(ce_all_ignored(x, y))
    c = sg.trace(ce_all_ignored, x, y).compare()
    # The loss is 0/0 (no derivative: domain); torch's backward masks every ignored row to 0.
    assert all(e.cause is Cause.DOMAIN and e.grad_symbolic is None for e in c.entries)
    assert all(e.grad_executed == 0 and e.grad_autograd == 0.0 for e in c.entries)
