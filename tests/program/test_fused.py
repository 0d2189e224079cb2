"""torch's fused ops as SymPy functions: softplus, logaddexp, softmax and log_softmax.

Three oracles, none of them symgrad's own opinion of itself:

* SymPy: each function's derivative (`fdiff`) and each rule's exact value against `sympy.diff`
  and `evalf` of the written-out form (`rewrite(sp.exp)`), at rational points;
* torch 2.13: forward values and autograd gradients of the lowered program against torch's own
  call written by hand, at ordinary points and at large |x| where the written-out form overflows;
* the verdicts of `compare()` that follow from the two: `softplus(x)` at 1000 agrees (slope 1)
  where `log(1 + exp(x))` overflows, and torch's softplus threshold (x itself above 20) is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.program.ops import OPS
from symgrad.program.rules import RULES

x, y, z = sp.symbols("x y z", real=True)
F = torch.nn.functional

# (SymPy expression, the same written by hand in torch) for every fused function, by name.
FUSED: dict[str, tuple[sp.Basic, Callable[..., torch.Tensor]]] = {
    "softplus": (sg.softplus(x), lambda x: F.softplus(x)),
    "logaddexp": (sg.logaddexp(x, y), lambda x, y: torch.logaddexp(x, y)),
    "logsumexp": (sg.logsumexp(x, y, z), lambda x, y, z: torch.logsumexp(torch.stack([x, y, z]), 0)),
    "softmax": (sg.softmax(1, x, y, z), lambda x, y, z: torch.softmax(torch.stack([x, y, z]), 0)[1]),
    "log_softmax": (sg.log_softmax(2, x, y, z), lambda x, y, z: torch.log_softmax(torch.stack([x, y, z]), 0)[2]),
}
RATIONAL_POINTS = ((sp.Rational(3, 8), sp.Rational(-5, 4), sp.Rational(1, 2)),
                   (sp.Rational(-7, 2), sp.Rational(2), sp.Rational(-1, 16)))


def _symbols(expr: sp.Basic) -> list[sp.Symbol]:
    return [s for s in (x, y, z) if s in expr.free_symbols]


def _close(got: sp.Basic, want: sp.Basic, digits: int = 25) -> bool:
    got, want = sp.N(got, 40), sp.N(want, 40)
    return bool(abs(got - want) <= sp.Float(10) ** (-digits) * max(1, abs(want)))


# ---------------------------------------------------------------- the mathematics: SymPy


@pytest.mark.parametrize("name", sorted(FUSED))
@pytest.mark.parametrize("at", RATIONAL_POINTS, ids=str)
def test_derivative_is_sympys_of_the_written_out_form(name: str, at: tuple[sp.Rational, ...]) -> None:
    expr, _ = FUSED[name]
    written = expr.rewrite(sp.exp)
    assert not written.has(type(expr)), written
    values = dict(zip((x, y, z), at))
    assert _close(expr.subs(values).evalf(40), written.subs(values).evalf(40))
    for s in _symbols(expr):
        assert _close(sp.diff(expr, s).subs(values).evalf(40), sp.diff(written, s).subs(values).evalf(40)), s


@pytest.mark.parametrize("name", sorted(FUSED))
@pytest.mark.parametrize("at", RATIONAL_POINTS, ids=str)
def test_exact_rule_is_the_written_out_value(name: str, at: tuple[sp.Rational, ...]) -> None:
    """The rule's `exact` (python-flint) is the mathematics: SymPy's evalf of the written-out form."""
    expr, _ = FUSED[name]
    values = dict(zip((x, y, z), at))
    with ex.working_precision(ex.START_PREC):
        args = [ex.from_sympy(a.subs(values)) for a in expr.args]
        got = ex.to_sympy(RULES[type(expr)].exact(args))
    assert _close(got, expr.rewrite(sp.exp).subs(values).evalf(40))


@pytest.mark.parametrize("at", [sp.Integer(25), sp.Integer(1000), sp.Rational(41, 2), sp.Integer(-1000)], ids=str)
def test_softplus_mathematics_beyond_torchs_threshold(at: sp.Rational) -> None:
    """Above 20 torch's op is x itself (value x, slope 1); the op's `math` is log(1 + exp(x)) and
    sigmoid(x), to 30 digits, also at 1000 and -1000 where exp of the point overflows a float."""
    op = OPS["softplus"]
    with ex.working_precision(ex.START_PREC):
        u = ex.from_sympy(at)
        value, (slope,) = op.math([u], None)  # type: ignore[misc]
        torch_value = op.value([u], None)
        (torch_slope,) = op.partials([u], torch_value, None)
        departs = op.departs([u], None)  # type: ignore[misc]
    with mpmath.workprec(400):
        want = mpmath.log1p(mpmath.exp(-abs(mpmath.mpf(int(at.p)) / int(at.q)))) + max(mpmath.mpf(at.p) / at.q, 0)
        want_slope = 1 / (1 + mpmath.exp(-mpmath.mpf(at.p) / at.q))
    assert _close(ex.to_sympy(value), sp.Float(want, 60), 30)
    assert _close(ex.to_sympy(slope), sp.Float(want_slope, 60), 30)
    assert departs is bool(at >= 20)
    if at > 20:
        assert torch_value == u and torch_slope == ex.ONE


def test_log_softmax_gradient_keeps_the_tiny_weight() -> None:
    """d/dx log_softmax(0, x, y) at (1000, 0) is 1 - s_0 = e^-1000/(1 + e^-1000) = 5.08e-435:
    the exact side computes it as the sum of the other weights, not 1 - (1 - 5e-435)."""
    (e_x, e_y) = sg.compare(sg.log_softmax(0, x, y), at={x: 1000.0, y: 0.0}).entries
    with mpmath.workprec(200):
        tiny = mpmath.exp(-1000) / (1 + mpmath.exp(-1000))
    assert _close(e_x.grad_symbolic, sp.Float(tiny, 40), 30) and _close(e_x.grad_executed, sp.Float(tiny, 40), 30)
    assert _close(e_y.grad_symbolic, -sp.Float(tiny, 40), 30)
    assert e_x.cause is sg.Cause.AGREE  # autograd's 0.0 is within float64's range of 5e-435


def test_softmax_index_comes_first_and_is_checked() -> None:
    assert sg.softmax(0, x, y) + sg.softmax(1, x, y) != 1  # SymPy keeps the two components
    assert sp.simplify((sg.softmax(0, x, y) + sg.softmax(1, x, y)).rewrite(sp.exp)) == 1
    with pytest.raises(sg.UnsupportedNodeError, match=r"softmax\(x, y\) has x as its first argument"):
        sg.softmax(x, y)
    with pytest.raises(sg.UnsupportedNodeError, match="asks for component 3, but there are 2 values"):
        sg.log_softmax(3, x, y)


# ---------------------------------------------------------------- the program: torch 2.13

TORCH_POINTS = {
    "softplus": [(1.0,), (-1000.0,), (19.5,), (20.0,), (20.5,), (1000.0,)],
    "logaddexp": [(0.5, -0.25), (1000.0, 0.0), (-1000.0, -1000.0)],
    "logsumexp": [(0.5, -0.25, 2.0), (1000.0, 0.0, -1000.0)],
    "softmax": [(0.5, -0.25, 2.0), (1000.0, 0.0, -1000.0), (-1000.0, 1000.0, 999.0)],
    "log_softmax": [(0.5, -0.25, 2.0), (1000.0, 0.0, -1000.0)],
}


@pytest.mark.parametrize(("name", "at"), [(n, p) for n, ps in TORCH_POINTS.items() for p in ps],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_and_autograd_are_torchs_own(name: str, at: tuple[float, ...], dtype: str) -> None:
    """The lowered program's forward value and autograd gradient are bit for bit those of the torch
    call written by hand; where no floating-point cause is named, the exact executed derivative
    is that number too (to the dtype's tolerance)."""
    expr, by_hand = FUSED[name]
    syms = _symbols(expr)
    c = sg.compare(expr, at=dict(zip(syms, at)), dtype=dtype)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    tensors = [torch.tensor(v, dtype=tdtype, requires_grad=True) for v in at]
    out = by_hand(*tensors)
    grads = torch.autograd.grad(out, tensors)
    assert c.value_autograd == out.item() or (math.isnan(c.value_autograd) and math.isnan(out.item()))
    for e, g in zip(c.entries, grads):
        assert e.grad_autograd == g.item(), (e.wrt, e.grad_autograd, g.item())
        if e.cause.id in ("agree", "control-flow"):
            tol = 1e-9 if dtype == "float64" else 1e-4
            assert abs(float(e.grad_executed) - g.item()) <= tol * abs(g.item()) + 1e-300, (e.wrt, e.grad_executed)


def test_softplus_at_1000_agrees_where_its_written_out_form_overflows() -> None:
    """The acceptance pair: softplus(x) at 1000 agrees with slope 1 (sigmoid(1000) = 1 - 5e-435),
    log(1 + exp(x)) at 1000 overflows at its exp."""
    (e,) = sg.compare(sg.softplus(x), at={x: 1000.0}).entries
    assert e.cause is sg.Cause.AGREE and e.grad_autograd == 1.0 and e.grad_executed == 1
    assert abs(1 - e.grad_symbolic) < sp.Float("1e-400")
    (w,) = sg.compare(sp.log(1 + sp.exp(x)), at={x: 1000.0}).entries
    assert w.cause is sg.Cause.OVERFLOW and "exp" in w.node
    assert sg.compare("softplus(x)", at={"x": 1000.0}).ok  # the parser knows it too


def test_torchs_softplus_threshold_is_named() -> None:
    """Just above 20 torch's slope is exactly 1, the mathematics' sigmoid(x): the difference
    (2e-9 at 20.5) is structure, not rounding, so it is a control-flow finding at softplus's line."""
    c = sg.compare(sg.softplus(x), at={x: 20.5})
    (e,) = c.entries
    assert e.cause is sg.Cause.CONTROL_FLOW and e.grad_executed == 1 and e.grad_autograd == 1.0
    assert abs(float(e.grad_symbolic) - 1 / (1 + math.exp(-20.5))) < 1e-16
    assert e.line == c.lowered.line_of(sg.softplus(x))
    assert "above 20" in e.explanation and "Its argument is 20.5 (41/2) here" in e.explanation
    # At 20 itself torch's kernel takes log1p(exp(20)): its slope is the mathematics'.
    assert sg.compare(sg.softplus(x), at={x: 20.0}).ok


def test_softplus_minus_x_shows_the_threshold_and_softplus_of_minus_x_is_the_fix() -> None:
    (e,) = sg.compare(sg.softplus(x) - x, at={x: 25.0}).entries
    assert e.cause is sg.Cause.CONTROL_FLOW and e.grad_executed == 0 and e.grad_autograd == 0.0
    assert abs(float(e.grad_symbolic) + math.exp(-25) / (1 + math.exp(-25))) < 1e-25
    assert "softplus(-x)" in e.hint
    (fixed,) = sg.compare(sg.softplus(-x), at={x: 25.0}).entries
    assert fixed.cause is sg.Cause.AGREE
    assert abs(fixed.grad_autograd - float(e.grad_symbolic)) <= 1e-15 * abs(fixed.grad_autograd)


@pytest.mark.parametrize(("at", "cause"), [(1.0, "agree"), (19.5, "rounding"), (20.0, "control-flow"),
                                           (25.0, "control-flow")])
def test_softplus_second_derivative_follows_torchs_double_backward(at: float, cause: str) -> None:
    """softplus_double_backward masks with x < 20, so from 20 on (20 included, where the first
    derivative still is sigmoid(20)) torch's curvature is 0 and the mathematics' is not. Below
    20 it is sigmoid(x)*(1 - sigmoid(x)), and at 19.5 its 1 - sigmoid(x) cancels 8 digits."""
    (e,) = sg.compare(sg.softplus(x), at={x: at}, order=2).entries
    xt = torch.tensor(at, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(F.softplus(xt), xt, create_graph=True)
    (h,) = torch.autograd.grad(g, xt)
    curvature = math.exp(-at) / (1 + math.exp(-at)) ** 2  # sigmoid(x)*(1 - sigmoid(x)), without cancelling
    assert e.cause.id == cause and e.grad_autograd == h.item()
    assert float(e.grad_symbolic) == pytest.approx(curvature, rel=1e-14)
    assert float(e.grad_executed) == (0.0 if at >= 20 else pytest.approx(curvature, rel=1e-14))


def test_log_softmax_agrees_where_its_written_out_form_overflows() -> None:
    fused = sg.compare(sg.log_softmax(0, x, y), at={x: 1000.0, y: 0.0})
    written = sg.compare(x - sp.log(sp.exp(x) + sp.exp(y)), at={x: 1000.0, y: 0.0})
    assert fused.ok and [e.grad_autograd for e in fused.entries] == [0.0, -0.0]
    assert written.cause is sg.Cause.OVERFLOW


def test_a_whole_softmax_vector_is_one_torch_call() -> None:
    """Matrix([softmax(0, x, y), softmax(1, x, y)]) (what torch.softmax(v, 0) is read as) lowers
    to one torch.softmax call, whose backward is torch's; with v= it is a vector-Jacobian product."""
    vec = sp.ImmutableMatrix([sg.softmax(0, x, y), sg.softmax(1, x, y)])
    lowered = sg.lower(vec)
    assert lowered.source.count("torch.softmax(") == 1
    assert "torch.softmax(torch.stack([x, y]), 0).reshape(2, 1)" in lowered.source
    c = sg.compare(vec, at={x: 1000.0, y: 0.0}, v=[1.0, 3.0])
    xt, yt = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1000.0, 0.0))
    torch.softmax(torch.stack([xt, yt]), 0).backward(torch.tensor([1.0, 3.0], dtype=torch.float64))
    assert c.ok and [e.grad_autograd for e in c.entries] == [xt.grad.item(), yt.grad.item()]
    # A vector whose components are not 0, 1, ... of the same values stays a stack of calls.
    assert sg.lower(sp.ImmutableMatrix([sg.softmax(1, x, y), sg.softmax(0, x, y)])).source.count("torch.softmax(") == 2


def test_fused_ops_sweep_without_a_float_oracle_of_their_own() -> None:
    """The sweep's float symbolic side lowers sympy.diff of each function (sigmoid, softmax
    weights), and finds softplus(x) - x's threshold and cancellation where they are."""
    s = sg.sweep(sg.softplus(x) - x, over={x: (-30, 30)}, n=61)
    assert s.counts.get("control-flow", 0) >= 1 and s.counts["agree"] >= 40
    assert sg.sweep(sg.softmax(0, x, y), over={x: (-1000, 1000), y: 0.0}, n=11).counts == {"agree": 11}


def test_softplus_of_a_matrix_is_elementwise_and_names_the_threshold() -> None:
    """softplus(X) applies torch's kernel element by element (as sigmoid(X) does); the element above
    20 is where the program's slope is 1 and the mathematics' sigmoid(25) = 1 - 1.4e-11: within
    float64's tolerance, so it agrees, and named as the kernel's shortcut where the tolerance is
    tighter than that."""
    X = sp.MatrixSymbol("X", 2, 1)
    c = sg.compare(sg.softplus(X), at={X: [[1.0], [25.0]]})
    assert [e.cause.id for e in c.entries] == ["agree", "agree", "agree", "agree"]
    assert c.entries[3].grad_executed == 1 and c.entries[3].grad_autograd == 1.0
    tight = sg.compare(sg.softplus(X), at={X: [[1.0], [25.0]]}, rtol=1e-12)
    assert [e.cause.id for e in tight.entries] == ["agree", "agree", "agree", "control-flow"]
    assert "above 20 (its `threshold`)" in tight.entries[3].explanation


@pytest.mark.parametrize(("build", "fix"), [
    (lambda X: sg.logsumexp(X, 1), "`logsumexp(X[0, 0], X[1, 0])`"),
    (lambda X: sg.logaddexp(X, x), "`logaddexp(X[0, 0], X[1, 0])`"),
    (lambda X: sg.softmax(0, X, x), "`softmax(0, X[0, 0], X[1, 0])`"),
])
def test_a_matrix_argument_of_an_n_ary_fused_op_is_a_sentence(build: Callable[[Any], Any], fix: str) -> None:
    X = sp.MatrixSymbol("X", 2, 1)
    with pytest.raises(sg.UnsupportedNodeError) as info:
        build(X)
    assert "has the 2 x 1 matrix X among its arguments, which are scalars" in str(info.value)
    assert fix in str(info.value)


def test_the_backward_pass_writes_torchs_softplus_slope_out() -> None:
    """`derivation()` shows softplus's local derivative as torch's backward computes it."""
    text = str(sg.compare(sg.softplus(x) * y, at={x: 25.0, y: 2.0}).derivation())
    assert "d(softplus)/dx = Piecewise((1, x > 20), (sigmoid(x), True))" in text


@pytest.mark.parametrize("dim, a3, causes", [
    (1, 3.0, ["agree"] * 6),
    (0, 3.0, ["agree"] * 6),
    # Row (30, 0, -0.25): its first weight is 1 - 1.7e-13, and torch's backward
    # s_j (g_j - sum_k g_k s_k) cancels 13 digits for a3 (an error of 7e-4, relative).
    (1, 30.0, ["agree", "agree", "agree", "rounding", "agree", "agree"]),
])
def test_a_softmax_per_row_or_column_is_one_call_with_the_exact_vjp(dim: int, a3: float, causes: list[str]) -> None:
    """A 2x3 matrix of softmax weights, one softmax per row (dim 1) or per column (dim 0): one
    torch.softmax(..., dim) call; its exact vector-Jacobian product is sympy.diff's of
    sum(v * M), and autograd's is torch's own."""
    a = sp.symbols("a0:6")
    groups = [[0, 1, 2], [3, 4, 5]] if dim == 1 else [[0, 3], [1, 4], [2, 5]]
    cells: dict[int, sp.Basic] = {}
    for g in groups:
        for m, k in enumerate(g):
            cells[k] = sg.softmax(m, *[a[j] for j in g])
    M = sp.ImmutableMatrix(2, 3, [cells[k] for k in range(6)])
    assert f".reshape(2, 3), {dim})" in sg.lower(M).source
    point = dict(zip(a, (0.5, -1.0, 2.0, a3, 0.0, -0.25)))
    seed = [1.0, -2.0, 0.5, 3.0, 0.25, -1.0]
    c = sg.compare(M, at=point, v=seed)
    weighted = sum(w * m for w, m in zip(seed, M))
    exact = {s: sp.Rational(v) for s, v in point.items()}
    for e, s in zip(c.entries, a):
        truth = sp.diff(weighted.rewrite(sp.exp), s).subs(exact).evalf(40)
        assert abs(float(e.grad_executed) - float(truth)) <= 1e-15 * abs(float(truth)) + 1e-300
        assert float(e.grad_executed) == float(e.grad_symbolic)
    ts = [torch.tensor(point[s], dtype=torch.float64, requires_grad=True) for s in a]
    out = torch.softmax(torch.stack(ts).reshape(2, 3), dim)
    out.backward(torch.tensor(seed, dtype=torch.float64).reshape(2, 3))
    assert [e.cause.id for e in c.entries] == causes
    assert [e.grad_autograd for e in c.entries] == [t.grad.item() for t in ts]
