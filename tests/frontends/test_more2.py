"""More torch code people write on tensors (issue 20): `F.kl_div` / `nn.KLDivLoss`, read as torch
2.13 composes them.

Ground truth: torch itself (forward value and autograd, bit for bit, float64 and float32: the
fidelity check, and each entry's autograd value against `torch.autograd.grad` of the user's code),
and `sympy.diff` of the mathematics written out here, evaluated at the tensors' exact binary values.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad import Cause
from tests.user_code import load_module, reads_like_torch

DTYPES = [torch.float64, torch.float32]
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")  # torch's kl_div warning


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def symbols(name: str, t: torch.Tensor) -> sp.Matrix:
    rows, cols = (t.shape[0], 1) if t.ndim == 1 else tuple(t.shape)
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}[{i}, {j}]", real=True))


def check_math(c: sg.Comparison, args: list[torch.Tensor], math: Callable[..., sp.Expr], names: str,
               tol: str = "1e-25") -> None:
    """Each entry's symbolic and executed values are sympy.diff of `math` at the exact point."""
    mats = [symbols(n, a) for n, a in zip(names, args)]
    f = math(*mats)
    point = {s: exact(float(v)) for m, a in zip(mats, args) for s, v in zip(m, a.to(torch.float64).reshape(-1))}
    for e, s in zip(c.entries, [s for m in mats for s in m]):
        truth = sp.diff(f, s).subs(point)
        for side in (e.grad_symbolic, e.grad_executed):
            assert abs(sp.sympify(str(side)).evalf(40) - truth.evalf(40)) < sp.Float(tol), (str(e.wrt), side, truth)


def user(tmp_path: Path, body: str, name: str = "f") -> Any:
    """The user's function from a real file (its source is what symgrad reads)."""
    source = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n" + body
    return getattr(load_module(source, tmp_path), name)


def quiet(fn: Any, args: list[torch.Tensor]) -> sg.Comparison:
    with warnings.catch_warnings():  # torch warns of reduction='mean' of kl_div
        warnings.simplefilter("ignore", UserWarning)
        return reads_like_torch(fn, args)


# ---------------------------------------------------------------- F.kl_div

REDUCTIONS = ["mean", "batchmean", "sum", "none"]


def _kl_math(reduction: str, log_target: bool, rows: int) -> Callable[..., sp.Expr]:
    def math(x: sp.Matrix, t: sp.Matrix) -> sp.Expr:
        terms = [sp.exp(b) * (b - a) if log_target else b * sp.log(b) - b * a for a, b in zip(x, t)]
        total = sum(terms, sp.Integer(0))
        return {"mean": total / len(terms), "batchmean": total / rows, "sum": total, "none": total}[reduction]

    return math


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_of_a_matrix_is_torchs_composition(tmp_path: Path, dtype: torch.dtype, reduction: str,
                                                    log_target: bool) -> None:
    """F.kl_div(x, t): xlogy(t, t) - t*x (or exp(t)*(t - x)), reduced as torch reduces it ('batchmean':
    the sum / x.size(0) = 2 rows), bit for bit with torch, exactly sympy.diff of the mathematics."""
    tail = ".sum()" if reduction == "none" else ""
    f = user(tmp_path, f"def f(x, t):\n    return F.kl_div(x, t, reduction={reduction!r}, log_target={log_target}){tail}\n")
    torch.manual_seed(3)
    x = torch.randn(2, 3, dtype=dtype)
    t = torch.rand(2, 3, dtype=dtype) + 0.1 if not log_target else torch.randn(2, 3, dtype=dtype)
    c = quiet(f, [x, t])
    assert all(e.cause is Cause.AGREE for e in c.entries), str(c)
    check_math(c, [x, t], _kl_math(reduction, log_target, 2), "xt", "1e-12" if dtype == torch.float32 else "1e-25")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(-3, 3), min_size=6, max_size=6), st.sampled_from(REDUCTIONS), st.booleans(),
       st.sampled_from(DTYPES))
def test_kl_div_of_softmaxes_reads_like_torch(tmp_path: Path, values: list[float], reduction: str, log_target: bool,
                                             dtype: torch.dtype) -> None:
    """The common use, KL of two softmaxes of the inputs (the target read three times: its gradients
    added in the order torch's kernel made its uses, which the float32 'mean' shows in the last bit)."""
    target = "p.log_softmax(0)" if log_target else "p.softmax(0)"
    tail = ".sum()" if reduction == "none" else ""
    f = user(tmp_path, f"def f(p, q):\n    return F.kl_div(q.log_softmax(0), {target}, reduction={reduction!r}, "
                       f"log_target={log_target}){tail}\n")
    p, q = torch.tensor(values[:3], dtype=dtype), torch.tensor(values[3:], dtype=dtype)
    quiet(f, [p, q])


def test_kl_div_float32_mean_adds_the_targets_gradients_in_torchs_order(tmp_path: Path) -> None:
    """At this point torch's float32 gradient of p[1] differs in its last bit from the same
    composition written as `(xlogy(t, t) - t*x).mean()`: torch's C++ makes `t * x` first."""
    f = user(tmp_path, "def f(p, q):\n    return F.kl_div(q.log_softmax(0), p.softmax(0))\n")
    torch.manual_seed(0)
    p, q = torch.randn(3), torch.randn(3)
    def naive(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        s = p.softmax(0)
        return (torch.xlogy(s, s) - s * q.log_softmax(0)).mean()

    leaves = [p.clone().requires_grad_(True), q.clone().requires_grad_(True)]
    assert not torch.equal(torch.autograd.grad(naive(*leaves), leaves)[0], torch.autograd.grad(f(*leaves), leaves)[0])
    quiet(f, [p, q])  # the translation: torch's bits


def test_kl_div_at_a_zero_target_is_xlogy_0_0(tmp_path: Path) -> None:
    """A target element exactly 0: torch's xlogy(0, 0) = 0, its value; the derivative of t*log(t) in t
    does not exist there (log(t) + 1 -> -oo), and symgrad says so as a domain edge, not agree."""
    f = user(tmp_path, "def f(x, t):\n    return F.kl_div(x, t, reduction='sum')\n")
    x = torch.tensor([-1.0, -2.0, -0.5], dtype=torch.float64)
    t = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    t_ = sg.trace(f, x, t)
    assert t_.fidelity.ok, t_.fidelity.detail
    c = t_.compare()
    assert float(f(x, t)) == pytest.approx(2 * 0.5 * float(torch.log(torch.tensor(0.5))) + 0.5 + 0.25)
    dx = [e for e in c.entries if str(e.wrt).startswith("x")]
    assert [sp.Rational(str(e.grad_executed)) for e in dx] == [sp.Rational(-1, 2), 0, sp.Rational(-1, 2)]
    zero = [e for e in c.entries if str(e.wrt) == "t[1, 0]" or str(e.wrt) == "t[1]"]
    assert len(zero) == 1 and zero[0].cause is not Cause.AGREE, str(c)
    # the other target elements: log(t) + 1 - x, exactly
    for e in c.entries:
        if str(e.wrt) in ("t[0]", "t[0, 0]"):
            assert abs(sp.sympify(str(e.grad_symbolic)).evalf(30) - (sp.log(sp.Rational(1, 2)) + 2).evalf(30)) < 1e-25


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div_loss_module(tmp_path: Path, dtype: torch.dtype) -> None:
    """nn.KLDivLoss(reduction='batchmean', log_target=True) made inline and as a global: F.kl_div."""
    f = user(tmp_path, "loss = nn.KLDivLoss(reduction='batchmean')\n\n"
                       "def f(p, q):\n    return loss(F.log_softmax(q, 1), F.softmax(p, 1)) + "
                       "nn.KLDivLoss(reduction='sum', log_target=True)(F.log_softmax(q, 1), F.log_softmax(p, 1))\n")
    torch.manual_seed(1)
    quiet(f, [torch.randn(2, 3, dtype=dtype), torch.randn(2, 3, dtype=dtype)])


def test_kl_div_refuses_what_it_does_not_read(tmp_path: Path) -> None:
    f = user(tmp_path, "def f(x, t):\n    return F.kl_div(x, t, reduction='max')\n")
    with pytest.raises(sg.TraceError, match="'mean', 'batchmean', 'sum' and 'none'"):
        sg.trace(f, torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64))
    g = user(tmp_path, "def g(x, t):\n    return F.kl_div(x, t, size_average=False)\n", "g")
    with pytest.raises(sg.TraceError, match="deprecated"):
        sg.trace(g, torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64))


# ---------------------------------------------------------------- torch.cumprod


def _cumprod_math(dim: int, weights: list[float] | None = None) -> Callable[..., sp.Expr]:
    """sum_k w_k * y_k of the running products along dim (w = 1 without weights)."""
    def math(x: sp.Matrix) -> sp.Expr:
        lines = [list(x.row(i)) for i in range(x.rows)] if dim == 1 else [list(x.col(j)) for j in range(x.cols)]
        ys = [sp.Mul(*line[:n + 1]) for line in lines for n in range(len(line))]
        w = weights or [1.0] * len(ys)
        return sum((sp.Rational(Fraction(c)) * y for c, y in zip(w, ys)), sp.Integer(0))

    return math


@pytest.mark.parametrize("dtype", DTYPES)
def test_cumprod_of_a_vector(tmp_path: Path, dtype: torch.dtype) -> None:
    """x.cumprod(0) is torch's own call: bit for bit with torch, exactly sympy.diff of the products."""
    f = user(tmp_path, "def f(x):\n    return (x.cumprod(0) * torch.tensor([1.0, -2.0, 3.0, 0.5])).sum()\n")
    torch.manual_seed(2)
    x = torch.randn(4, dtype=dtype)
    c = quiet(f, [x])
    assert "torch.cumprod(x, 0)" in str(c)
    check_math(c, [x], _cumprod_math(0, [1.0, -2.0, 3.0, 0.5]), "x", "1e-12" if dtype == torch.float32 else "1e-25")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod_along_a_dim_of_a_matrix(tmp_path: Path, dtype: torch.dtype, dim: int) -> None:
    f = user(tmp_path, f"def f(X):\n    return torch.cumprod(X, dim={dim}).sum()\n")
    torch.manual_seed(5)
    x = torch.randn(3, 4, dtype=dtype)
    c = quiet(f, [x])
    check_math(c, [x], _cumprod_math(dim % 2), "X", "1e-12" if dtype == torch.float32 else "1e-25")


def test_cumprod_at_zero_inputs_is_the_product_rule(tmp_path: Path) -> None:
    """Where x has zeros torch's cumprod_backward takes its masked path (the first zero's own sum of
    products, 0 after it): at x = (2, 0, 3, 0, 5) its gradient of sum(cumprod(x)) is exactly
    sympy.diff's, (1, 8, 0, 0, 0): d/dx_1 = x_0 + x_0*x_2 + x_0*x_2*x_3 + ... = 2 + 6."""
    f = user(tmp_path, "def f(x):\n    return x.cumprod(0).sum()\n")
    x = torch.tensor([2.0, 0.0, 3.0, 0.0, 5.0], dtype=torch.float64)
    c = quiet(f, [x])
    assert [e.grad_autograd for e in c.entries] == [1.0, 8.0, 0.0, 0.0, 0.0]
    assert all(e.cause is Cause.AGREE for e in c.entries)
    check_math(c, [x], _cumprod_math(0), "x")
    # one zero only: the gradient after it is not 0 at the zero itself
    y = torch.tensor([0.5, -3.0, 0.0, 4.0], dtype=torch.float32)
    c = quiet(f, [y])
    check_math(c, [y], _cumprod_math(0), "x", "1e-12")
    assert [e.grad_autograd for e in c.entries][2] == pytest.approx(0.5 * -3.0 * (1 + 4.0))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.just(0.0), st.floats(-2, 2)), min_size=6, max_size=6), st.sampled_from([0, 1]),
       st.sampled_from(DTYPES))
def test_cumprod_reads_like_torch_everywhere(tmp_path: Path, values: list[float], dim: int, dtype: torch.dtype) -> None:
    f = user(tmp_path, f"def f(X):\n    return (X.cumprod({dim}) * X).sum()\n")
    quiet(f, [torch.tensor(values, dtype=dtype).reshape(2, 3)])


def test_cumprod_refuses_what_it_does_not_read(tmp_path: Path) -> None:
    f = user(tmp_path, "def f(x):\n    return x.cumprod(0, dtype=torch.float64).sum()\n")
    with pytest.raises(sg.TraceError, match="dtype="):
        sg.trace(f, torch.randn(3, dtype=torch.float64))
    g = user(tmp_path, "def g(x):\n    return x.cumprod(2).sum()\n", "g")
    with pytest.raises(sg.TraceError, match="dims"):
        sg.trace(g, torch.randn(3, dtype=torch.float64))


# ---------------------------------------------------------------- F.softplus(x, beta, threshold)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_with_beta_below_the_threshold_is_the_mathematics(tmp_path: Path, dtype: torch.dtype) -> None:
    """F.softplus(x, beta=2) (threshold 20): log(1 + exp(2x))/2, slope sigmoid(2x), bit for bit with torch."""
    f = user(tmp_path, "def f(x):\n    return F.softplus(x, beta=2.0).sum()\n")
    x = torch.tensor([-3.0, -0.5, 0.0, 0.75, 2.5], dtype=dtype)
    c = quiet(f, [x])
    assert all(e.cause is Cause.AGREE for e in c.entries), str(c)
    check_math(c, [x], lambda m: sum((sp.log(1 + sp.exp(2 * v)) / 2 for v in m), sp.Integer(0)), "x",
               "1e-12" if dtype == torch.float32 else "1e-25")


def test_softplus_with_beta_at_and_above_its_threshold(tmp_path: Path) -> None:
    """beta*x exactly at the threshold: torch's kernel takes log1p (x > threshold is false), slope
    sigmoid(beta*x), the mathematics' (agree); above it x itself, slope exactly 1 where the mathematics'
    is sigmoid(beta*x): control flow, torch's shortcut, named."""
    f = user(tmp_path, "def f(x):\n    return F.softplus(x, beta=2.0, threshold=3.0).sum()\n")
    x = torch.tensor([1.5, 1.75], dtype=torch.float64)
    c = quiet(f, [x])
    at, above = c.entries
    assert at.cause is Cause.AGREE and at.grad_autograd == pytest.approx(1 / (1 + float(torch.exp(torch.tensor(-3.0)))))
    assert above.cause is Cause.CONTROL_FLOW and above.grad_autograd == 1.0 and sp.sympify(str(above.grad_executed)) == 1
    truth = (1 / (1 + sp.exp(-sp.Rational(7, 2)))).evalf(30)
    assert abs(sp.sympify(str(above.grad_symbolic)).evalf(30) - truth) < 1e-25
    assert "threshold" in above.explanation


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(-30, 30), min_size=3, max_size=3), st.sampled_from([0.5, 2.0, 3.0]),
       st.sampled_from([1.0, 20.0]), st.sampled_from(DTYPES))
def test_softplus_with_parameters_reads_like_torch(tmp_path: Path, values: list[float], beta: float, threshold: float,
                                                   dtype: torch.dtype) -> None:
    f = user(tmp_path, f"def f(x):\n    return (F.softplus(x, {beta}, {threshold}) * x).sum()\n")
    quiet(f, [torch.tensor(values, dtype=dtype)])


def test_softplus_refuses_a_beta_it_does_not_read(tmp_path: Path) -> None:
    f = user(tmp_path, "def f(x):\n    return F.softplus(x, beta=-1.0).sum()\n")
    with pytest.raises(sg.TraceError, match="beta > 0"):
        sg.trace(f, torch.randn(3, dtype=torch.float64))


# ---------------------------------------------------------------- F.mish


def _mish(v: sp.Expr) -> sp.Expr:
    return v * sp.tanh(sp.log(1 + sp.exp(v)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mish_is_torchs_fused_kernel(tmp_path: Path, dtype: torch.dtype) -> None:
    """F.mish(x): torch's own call, bit for bit; exactly sympy.diff of x*tanh(log(1 + exp(x)))."""
    f = user(tmp_path, "def f(x):\n    return (F.mish(x) * x).sum()\n")
    x = torch.tensor([-4.0, -0.75, 0.0, 0.5, 3.0], dtype=dtype)
    c = quiet(f, [x])
    assert all(e.cause is Cause.AGREE for e in c.entries), str(c)
    assert "torch.nn.functional.mish(x)" in str(c)
    check_math(c, [x], lambda m: sum((_mish(v) * v for v in m), sp.Integer(0)), "x",
               "1e-12" if dtype == torch.float32 else "1e-25")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(-40, 40), min_size=3, max_size=3), st.sampled_from(DTYPES))
def test_mish_reads_like_torch(tmp_path: Path, values: list[float], dtype: torch.dtype) -> None:
    f = user(tmp_path, "def f(x):\n    return F.mish(x).sum()\n")
    quiet(f, [torch.tensor(values, dtype=dtype)])


# ---------------------------------------------------------------- F.glu


def test_glu_composed_is_not_torchs_bits() -> None:
    """Why F.glu is a fused op: autograd of `a * torch.sigmoid(b)` differs from torch's glu_backward."""
    torch.manual_seed(0)
    x = (torch.randn(6, dtype=torch.float64) * 3).requires_grad_(True)
    g = torch.randn(3, dtype=torch.float64)
    (fused,) = torch.autograd.grad(torch.nn.functional.glu(x, 0), x, g)
    (composed,) = torch.autograd.grad(x[:3] * torch.sigmoid(x[3:]), x, g)
    assert not torch.equal(fused, composed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "dim"), [((6,), 0), ((6,), -1), ((2, 6), 1), ((2, 6), -1), ((4, 3), 0)])
def test_glu_is_torchs_fused_call(tmp_path: Path, dtype: torch.dtype, shape: tuple[int, ...], dim: int) -> None:
    f = user(tmp_path, f"def f(x):\n    return (F.glu(x, {dim}) * F.glu(x, {dim})).sum()\n")
    torch.manual_seed(4)
    x = torch.randn(*shape, dtype=dtype) * 2
    c = quiet(f, [x])
    assert "torch.nn.functional.glu(x, " in str(c)
    d = 0 if len(shape) == 1 else dim % 2

    def squared(m: sp.Matrix) -> sp.Expr:
        if d == 0:
            a, b = m[: m.rows // 2, :], m[m.rows // 2:, :]
        else:
            a, b = m[:, : m.cols // 2], m[:, m.cols // 2:]
        return sum(((u / (1 + sp.exp(-v))) ** 2 for u, v in zip(a, b)), sp.Integer(0))

    check_math(c, [x], squared, "x", "1e-12" if dtype == torch.float32 else "1e-25")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(-20, 20), min_size=8, max_size=8), st.sampled_from([0, 1]), st.sampled_from(DTYPES))
def test_glu_reads_like_torch(tmp_path: Path, values: list[float], dim: int, dtype: torch.dtype) -> None:
    f = user(tmp_path, f"def f(x):\n    return (F.glu(x, {dim}) * torch.tensor([[1.0, -2.0], [0.5, 3.0]])).sum()\n")
    quiet(f, [torch.tensor(values, dtype=dtype).reshape(4, 2) if dim == 0 else torch.tensor(values, dtype=dtype).reshape(2, 4)])


def test_glu_refuses_an_odd_dim(tmp_path: Path) -> None:
    f = user(tmp_path, "def f(x):\n    return F.glu(x, 0).sum()\n")
    with pytest.raises(sg.TraceError, match="odd length 5"):
        sg.trace(f, torch.randn(5, dtype=torch.float64))


# ---------------------------------------------------------------- F.pairwise_distance, F.triplet_margin_loss


def _dist(u: sp.Matrix, v: sp.Matrix, eps: sp.Expr) -> sp.Expr:
    return sp.sqrt(sum(((s - t + eps) ** 2 for s, t in zip(u, v)), sp.Integer(0)))


EPS = sp.Rational(Fraction(1e-6))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_pairwise_distance_is_torchs_composition(tmp_path: Path, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    """norm(x1 - x2 + eps) along the last dim (Distance.cpp), bit for bit; exactly sympy.diff of it."""
    f = user(tmp_path, "def f(x, y):\n    return (F.pairwise_distance(x, y) * 3.0).sum()\n")
    torch.manual_seed(7)
    x, y = torch.randn(*shape, dtype=dtype), torch.randn(*shape, dtype=dtype)
    c = quiet(f, [x, y])

    def math(m: sp.Matrix, n: sp.Matrix) -> sp.Expr:
        rows = [(m.row(i), n.row(i)) for i in range(m.rows)] if len(shape) == 2 else [(m, n)]
        return 3 * sum((_dist(u, v, EPS) for u, v in rows), sp.Integer(0))

    check_math(c, [x, y], math, "xy", "1e-12" if dtype == torch.float32 else "1e-25")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_triplet_margin_loss_is_torchs_composition(tmp_path: Path, dtype: torch.dtype, reduction: str) -> None:
    """clamp_min(margin + d(a, p) - d(a, n), 0) reduced (Loss.cpp), bit for bit with torch; exactly
    sympy.diff of the rows (both positive here)."""
    tail = ".sum()" if reduction == "none" else ""
    f = user(tmp_path, f"def f(a, p, n):\n    return F.triplet_margin_loss(a, p, n, margin=2.0, reduction={reduction!r}){tail}\n")
    a = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]], dtype=dtype)
    p = torch.tensor([[0.75, -0.5, 1.0], [1.5, 0.0, -0.25]], dtype=dtype)
    n = torch.tensor([[0.0, -1.5, 2.5], [2.0, 1.0, -1.0]], dtype=dtype)
    c = quiet(f, [a, p, n])

    def math(ma: sp.Matrix, mp: sp.Matrix, mn: sp.Matrix) -> sp.Expr:
        rows = sum((2 + _dist(ma.row(i), mp.row(i), EPS) - _dist(ma.row(i), mn.row(i), EPS) for i in range(2)),
                   sp.Integer(0))
        return rows / 2 if reduction == "mean" else rows

    check_math(c, [a, p, n], math, "apn", "1e-12" if dtype == torch.float32 else "1e-25")


def test_triplet_margin_loss_clamped_to_zero(tmp_path: Path) -> None:
    """One triplet whose loss is clamped to 0: torch's clamp_min passes no gradient, every entry 0 (agree)."""
    f = user(tmp_path, "def f(a, p, n):\n    return F.triplet_margin_loss(a, p, n)\n")
    a = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    c = quiet(f, [a, a + 0.25, a - 3.0])
    assert all(e.grad_autograd == 0 and e.cause is Cause.AGREE for e in c.entries), str(c)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(-3, 3), min_size=12, max_size=12), st.sampled_from(DTYPES))
def test_pairwise_distance_reads_like_torch(tmp_path: Path, values: list[float], dtype: torch.dtype) -> None:
    f = user(tmp_path, "def f(x, y):\n    return F.pairwise_distance(x, y).sum()\n")
    t = torch.tensor(values, dtype=dtype)
    quiet(f, [t[:6].reshape(2, 3), t[6:].reshape(2, 3)])


def test_pairwise_distance_refuses_other_norms(tmp_path: Path) -> None:
    f = user(tmp_path, "def f(x, y):\n    return F.pairwise_distance(x, y, p=1.0).sum()\n")
    with pytest.raises(sg.TraceError, match="2-norm only"):
        sg.trace(f, torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64))
