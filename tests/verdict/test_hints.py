"""Hints only for fixes symgrad can check (issue 11, item 7).

Each case takes an example that produces a cause, checks that the hint symgrad gives suggests a
rewrite, applies that rewrite, and compares again: the cause goes away (or, where the hint says it
cannot, symgrad says exactly what the hint warned of). The quotient cases are here on purpose: a
stable numerator (`expm1`, `log1p`, `2*sin(x/2)**2`) makes the value of `expm1(x)/x` accurate near
0, but the quotient's derivative still cancels in the backward pass, and the hint says so.

A last test reads every hint text symgrad has and checks that each function it names in code has
a row of the lowering table (or a torch spelling that `trace` reads): no hint recommends what
symgrad could not compare.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import sympy as sp
import torch
from sympy.codegen.ast import Assignment, CodeBlock, For
from sympy.codegen.cfunctions import expm1

import symgrad as sg
from cases import d2l_control_flow

x, y, a, b, t, r, i = sp.symbols("x y a b t r i")


@dataclass(frozen=True)
class HintCase:
    """`before` at `at` has cause `cause` and a hint naming `says`; `after` (the hint's rewrite)
    at `after_at` (default: the same point) has cause `then`."""

    name: str
    before: Any
    at: dict[Any, float]
    cause: str
    says: tuple[str, ...]
    after: Any
    then: str = "agree"
    after_at: dict[Any, float] | None = None
    dtype: str = "float64"
    after_dtype: str | None = None
    branches: str = "if"
    after_branches: str | None = None
    then_says: tuple[str, ...] = field(default_factory=tuple)


class SquareHalf(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[no-untyped-def]
        x, = ctx.saved_tensors
        return grad_output * x


class SquareRight(SquareHalf):
    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[no-untyped-def]
        x, = ctx.saved_tensors
        return grad_output * 2 * x


def square_half_backward(x):  # type: ignore[no-untyped-def]
    return SquareHalf.apply(x)


def square_right_backward(x):  # type: ignore[no-untyped-def]
    return SquareRight.apply(x)


def _loop(k: int) -> sg.Program:
    """b = 2*b + sin(b), k times: no single step cancels, but every step amplifies the error."""
    return sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(k), CodeBlock(
        Assignment(b, 2 * b + sp.sin(b))))), output=b)


def _double_where() -> sg.Program:
    """The double-where pattern with the safe input as a statement of its own."""
    return sg.Program(inputs=[x], body=CodeBlock(
        Assignment(t, sp.Piecewise((x, x > 0), (1, True))),
        Assignment(r, sp.Piecewise((sp.sqrt(t), x > 0), (0, True)))), output=r)


def _masked_exp() -> sg.Program:
    """The double where of the overflow hint, as a symgrad Program: the masked input a statement."""
    return sg.Program(inputs=[x], body=CodeBlock(
        Assignment(t, sp.Piecewise((x, x < 0), (0, True))),
        Assignment(r, sp.Piecewise((sp.exp(t), x < 0), (x + 1, True)))), output=r)


def where_exp(x):  # type: ignore[no-untyped-def]
    return torch.where(x < 0, torch.exp(x), 1 + x)


# The hint's rewrite of `where_exp`, character for character (the test checks the hint spells it so).
WHERE_EXP_MASKED = "torch.where(x < 0, torch.exp(torch.where(x < 0, x, 0)), x + 1)"


def where_exp_masked(x):  # type: ignore[no-untyped-def]
    return torch.where(x < 0, torch.exp(torch.where(x < 0, x, 0)), x + 1)


def where_exp_second(x):  # type: ignore[no-untyped-def]
    return torch.where(x >= 0, 1 + x, torch.exp(x))


def where_exp_second_masked(x):  # type: ignore[no-untyped-def]
    return torch.where(x >= 0, x + 1, torch.exp(torch.where(x >= 0, 0, x)))


def log_one_minus_sigmoid(x):  # type: ignore[no-untyped-def]
    return torch.log(1 - torch.sigmoid(x))


def minus_logaddexp(x):  # type: ignore[no-untyped-def]
    return -torch.logaddexp(torch.zeros_like(x), x)


D2L = d2l_control_flow()
A = D2L.inputs[0]
# The series the backward-cancellation hint suggests, built from SymPy objects (as a user would).
EXPM1_TAYLOR = sp.Piecewise((1 + x / 2 + x**2 / 6 + x**3 / 24, sp.Abs(x) < sp.Rational(1, 1000)), (expm1(x) / x, True))

CASES: tuple[HintCase, ...] = (
    # -- rounding: the rewrite fixes it where the cancelling difference is not divided by a vanishing number
    HintCase("exp_minus_one", "(exp(x) - 1)**2", {x: 1e-9}, "rounding", ("`expm1(x)` for exp(x) - 1",),
             "expm1(x)**2"),
    HintCase("log_one_plus", "log(1 + x)**2", {x: 1e-9}, "rounding", ("`log1p(x)`",), "log1p(x)**2"),
    HintCase("one_minus_cos", "(1 - cos(x))**2", {x: 1e-5}, "rounding", ("`2*sin(x/2)**2` for 1 - cos(x)",),
             "(2*sin(x/2)**2)**2"),
    # -- rounding: the quotient cases. The stable numerator leaves the backward pass cancelling,
    # as the hint warns, and the second hint (a few terms of the series) then fixes it.
    HintCase("expm1_over_x", "(exp(x) - 1)/x", {x: 1e-6}, "rounding",
             ("`expm1(x)` for exp(x) - 1", "the quotient's derivative still cancels"), "expm1(x)/x",
             then="rounding", dtype="float32",
             then_says=("The derivative, not the function, cancels", "Taylor", "or compute in float64")),
    HintCase("expm1_over_x_series", "expm1(x)/x", {x: 1e-6}, "rounding",
             ("Piecewise((1 + x/2 + x**2/6 + x**3/24, Abs(x) < 1e-3), (expm1(x)/x, True))",),
             EXPM1_TAYLOR, dtype="float32"),
    HintCase("expm1_over_x_float64", "expm1(x)/x", {x: 1e-6}, "rounding", ("or compute in float64",),
             "expm1(x)/x", dtype="float32", after_dtype="float64"),
    HintCase("cos_over_x_squared", "(1 - cos(x))/x**2", {x: 1e-4}, "rounding",
             ("`2*sin(x/2)**2` for 1 - cos(x)", "the quotient's derivative still cancels"), "2*sin(x/2)**2/x**2",
             then="rounding", then_says=("The derivative, not the function, cancels",)),
    HintCase("cos_over_x_squared_series", "2*sin(x/2)**2/x**2", {x: 1e-4}, "rounding", ("Taylor series",),
             "Piecewise((1/2 - x**2/24 + x**4/720, Abs(x) < 1e-2), (2*sin(x/2)**2/x**2, True))"),
    HintCase("log_over_x", "log(1 + x)/x", {x: 1e-9}, "rounding",
             ("`log1p(x)`", "log1p(x)/x near 0"), "log1p(x)/x",
             then="rounding", then_says=("The derivative, not the function, cancels",)),
    HintCase("log_over_x_series", "log1p(x)/x", {x: 1e-9}, "rounding", ("Taylor series",),
             "Piecewise((1 - x/2 + x**2/3 - x**3/4, Abs(x) < 1e-3), (log1p(x)/x, True))"),
    HintCase("accumulate_float64", _loop(15), {x: 0.5}, "rounding", ("No single step cancels", "or compute in float64"),
             _loop(15), dtype="float32", after_dtype="float64"),
    HintCase("accumulate_fewer", _loop(15), {x: 0.5}, "rounding", ("fewer iterations",), _loop(10), dtype="float32"),
    # -- overflow: each written-out form, and the fused op the hint names
    HintCase("log_sum_exp", "log(exp(a) + exp(b))", {a: 1000.0, b: 0.0}, "overflow",
             ("`logsumexp(a, b)` for log(exp(a) + exp(b))",), "logsumexp(a, b)"),
    HintCase("logistic", "1/(1 + exp(-x))", {x: -1000.0}, "overflow", ("`sigmoid(x)` for 1/(1 + exp(-x))",),
             "sigmoid(x)"),
    HintCase("log_one_plus_exp", "log(1 + exp(x))", {x: 1000.0}, "overflow", ("`softplus(x)` for log(1 + exp(x))",),
             "softplus(x)"),
    HintCase("normalised_exp", "exp(x)/(exp(x) + exp(y))", {x: 1000.0, y: 0.0}, "overflow",
             ("`softmax(i, a, b)`",), "softmax(0, x, y)"),
    HintCase("log_normalised_exp", "x - log(exp(x) + exp(y))", {x: 1000.0, y: 0.0}, "overflow",
             ("`log_softmax(i, a, b)`",), "log_softmax(0, x, y)"),
    HintCase("result_past_the_range", "cosh(x)", {x: 720.0}, "overflow", ("`logaddexp(x, -x) - log(2)`",),
             "logaddexp(x, -x) - log(2)"),
    # -- nan-trap: the double-where pattern, with the safe input as its own statement
    HintCase("double_where", "Piecewise((sqrt(x), x > 0), (0, True))", {x: -1.0}, "nan-trap",
             ("double-where pattern", "`torch.where(x > 0, torch.sqrt(torch.where(x > 0, x, 1)), 0)`",
              "`t = Piecewise((x, x > 0), (1, True))`", "`Piecewise((sqrt(t), x > 0), (0, True))`"), _double_where(),
             branches="where"),
    # -- an overflow in the branch torch.where does not keep: the double where, not a fused op (issue 11)
    HintCase("double_where_overflow_torch", where_exp, {"x": 1000.0}, "overflow",
             ("double-where pattern", f"`{WHERE_EXP_MASKED}`", "computes `exp(0)`"), where_exp_masked),
    HintCase("double_where_overflow_second_branch", where_exp_second, {"x": 1000.0}, "overflow",
             ("`torch.where(x >= 0, x + 1, torch.exp(torch.where(x >= 0, 0, x)))`",), where_exp_second_masked),
    HintCase("double_where_overflow_deeper", "Piecewise((2*exp(x), x < 0), (1 + x, True))", {x: 1000.0}, "overflow",
             ("in that branch write `torch.exp(torch.where(x < 0, x, 0))` for `torch.exp(x)`",
              "`t = Piecewise((x, x < 0), (0, True))`", "`exp(t)` for `exp(x)` in that branch"),
             sg.Program(inputs=[x], body=CodeBlock(
                 Assignment(t, sp.Piecewise((x, x < 0), (0, True))),
                 Assignment(r, sp.Piecewise((2 * sp.exp(t), x < 0), (x + 1, True)))), output=r), branches="where"),
    HintCase("double_where_overflow_program", "Piecewise((exp(x), x < 0), (1 + x, True))", {x: 1000.0}, "overflow",
             ("double-where pattern", f"`{WHERE_EXP_MASKED}`", "`t = Piecewise((x, x < 0), (0, True))`",
              "`Piecewise((exp(t), x < 0), (x + 1, True))`"), _masked_exp(), branches="where"),
    # -- 1 - sigmoid(x) cancels to 0 where sigmoid(x) rounds to 1: the sigmoid row's rewrites (issue 11)
    HintCase("log_one_minus_sigmoid", "log(1 - sigmoid(x))", {x: 40.0}, "rounding",
             ("`-logaddexp(0, x)` for log(1 - sigmoid(x))", "F.logsigmoid(-x)", "F.binary_cross_entropy_with_logits"),
             "-logaddexp(0, x)"),
    HintCase("log_one_minus_sigmoid_float32", "log(1 - sigmoid(x))", {x: 17.0}, "rounding",
             ("`-logaddexp(0, x)` for log(1 - sigmoid(x))",), "-logaddexp(0, x)", dtype="float32"),
    HintCase("log_one_minus_sigmoid_softplus", "log(1 - sigmoid(x))", {x: 17.0}, "rounding",
             ("`-softplus(x)` is the same function",), "-softplus(x)", dtype="float32"),
    HintCase("log_one_minus_sigmoid_torch", log_one_minus_sigmoid, {"x": 40.0}, "rounding",
             ("`-logaddexp(0, x)` for log(1 - sigmoid(x))",), minus_logaddexp),
    HintCase("one_minus_sigmoid", "1 - sigmoid(x)", {x: 40.0}, "rounding", ("`sigmoid(-x)` for 1 - sigmoid(x)",),
             "sigmoid(-x)"),
    # -- x*log(x) at 0: no spelling has a derivative there, as the hint says; torch.xlogy's value 0 does
    HintCase("zero_log_zero", "x*log(x)", {x: 0.0}, "domain",
             ("torch.xlogy(x, x)", "`Piecewise((0, Eq(x, 0)), (x*log(x), True))`", "compare it where x > 0"),
             "Piecewise((0, Eq(x, 0)), (x*log(x), True))", then="control-flow"),
    HintCase("zero_log_zero_off_the_edge", "x*log(x)", {x: 0.0}, "domain", ("compare it where x > 0",),
             "x*log(x)", after_at={x: 0.5}),
    # -- structure
    HintCase("detach", "x*detach(x**2)", {x: 3.0}, "detach", ("Remove the `detach()`",), "x*x**2"),
    HintCase("custom_backward", square_half_backward, {x: 3.0}, "custom-backward",
             ("grad_output times the derivative of `forward` with respect to `x` (6 at this point)",),
             square_right_backward),
    HintCase("graph_break_item", "x*item(x)", {x: 3.0}, "graph-break", ("Keep the computation in tensors",), "x*x"),
    HintCase("graph_break_no_grad", "x + no_grad(x**2)", {x: 3.0}, "graph-break", ("leave `torch.no_grad()`",),
             "x + x**2"),
    HintCase("domain", "log(x)", {x: -1.0}, "domain", ("Choose a point inside the domain of `log(x)` (x > 0)",),
             "log(x)", after_at={x: 1.0}),
    HintCase("control_flow_loop", D2L, {A: 0.48828125}, "control-flow", ("Move the point off the threshold",),
             D2L, after_at={A: 0.5}),
    HintCase("control_flow_special_case", "Piecewise((1, Eq(x, 1)), (x**2, True))", {x: 1.0}, "control-flow",
             ("write the function without it",), "x**2"),
    HintCase("softplus_threshold", "softplus(x) - x", {x: 25.0}, "control-flow",
             ("softplus(x) - x is softplus(-x)",), "softplus(-x)"),
    HintCase("jump_step", "Heaviside(x)", {x: 0.0}, "jump", ("`sigmoid(x/t)` with a small t",), "sigmoid(x/(1/100))"),
    # A straight-through estimator is a detach on purpose: symgrad names it so, with slope 1.
    HintCase("jump_straight_through", "floor(x)", {x: 1.0}, "jump", ("`x + detach(floor(x) - x)`",),
             "x + detach(floor(x) - x)", then="detach", after_at={x: 1.5}),
    HintCase("kink_smooth_stand_in", "Abs(x)", {x: 0.0}, "kink", ("`torch.sqrt(x**2 + eps)` is a smooth stand-in",),
             "sqrt(x**2 + 1e-12)"),
)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_hints_rewrite_removes_the_cause(case: HintCase) -> None:
    before = sg.compare(case.before, at=case.at, dtype=case.dtype, branches=case.branches)  # type: ignore[arg-type]
    (entry,) = [e for e in before.entries if not e.ok][:1] or before.entries[:1]
    assert entry.cause.id == case.cause, (entry.cause.id, entry.explanation)
    for phrase in case.says:
        assert phrase in entry.hint, (phrase, entry.hint)
    after = sg.compare(case.after, at=case.after_at or case.at, dtype=case.after_dtype or case.dtype,  # type: ignore[arg-type]
                       branches=case.after_branches or case.branches)  # type: ignore[arg-type]
    assert after.cause.id == case.then, (after.cause.id, [e.explanation for e in after.entries])
    worst = next((e for e in after.entries if not e.ok), after.entries[0])
    for phrase in case.then_says:
        assert phrase in worst.hint, (phrase, worst.hint)


def test_an_overflow_in_the_branch_kept_keeps_the_fused_op_hint() -> None:
    """The double where is for a branch the point does not keep; where the overflowing exp is the
    branch kept (the result itself is past the range), the exp row's hint stays."""
    c = sg.compare("Piecewise((exp(x), x > 0), (1 + x, True))", at={"x": 1000.0}, branches="where")
    (e,) = c.entries
    assert e.cause is sg.Cause.OVERFLOW and "Never form the huge exponential" in e.hint
    assert "double-where" not in e.hint and "torch.where(x > 0, x" not in e.hint
    plain = sg.compare("log(exp(x) + exp(y))", at={"x": 1000.0, "y": 0.0})
    assert "double-where" not in plain.entries[0].hint and "logsumexp" in plain.entries[0].hint


def test_a_branch_the_hint_cannot_write_out_gets_the_pattern() -> None:
    """Three pieces: the unused exp(x) is the first branch of a where whose other branch is a where
    itself; the hint gives the pattern with c, f, x and safe named, as before."""
    c = sg.compare("Piecewise((exp(x), x < 0), (exp(-x), x < 1), (1 + x, True))", at={"x": 1000.0},
                   branches="where")
    (e,) = c.entries
    assert e.cause is sg.Cause.OVERFLOW
    assert "`torch.where(c, f(torch.where(c, x, safe)), other)`" in e.hint


def test_the_masked_input_stops_the_nan_that_torch_itself_reports() -> None:
    """Ground truth from torch alone: the gradient of the where over exp at 1000 is nan, and that
    of the double where the hint writes is exactly d(x + 1)/dx = 1."""
    for fn, want in ((where_exp, None), (where_exp_masked, 1.0)):
        v = torch.tensor(1000.0, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(v), v)
        assert (math.isnan(g.item()) if want is None else g.item() == want), (fn.__name__, g)


def test_where_float_rounds_sigmoid_to_one_as_the_hint_says() -> None:
    """The sigmoid row's hint says torch rounds sigmoid(x) to exactly 1 from about 37 in float64
    and 16.7 in float32: checked against torch, and the cancellation symgrad reports there."""
    for dtype, below, above in ((torch.float64, 36.7, 37.0), (torch.float32, 16.6, 16.7)):
        assert torch.sigmoid(torch.tensor(below, dtype=dtype)).item() < 1
        assert torch.sigmoid(torch.tensor(above, dtype=dtype)).item() == 1
    assert "from about x = 37 in float64, 16.7 in float32" in sg.compare(
        "log(1 - sigmoid(x))", at={"x": 40.0}).entries[0].hint


def test_what_the_xlogy_hint_says_of_torch_and_of_its_spelling() -> None:
    """torch.xlogy(x, x) is 0 at 0 where x*log(x) is nan, and its gradient there is nan (torch
    itself); the Piecewise spelling symgrad compares has that value at 0, exactly and in autograd,
    and away from 0 the gradient torch.xlogy has, log(x) + 1."""
    z = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    value = torch.xlogy(z, z)
    (g,) = torch.autograd.grad(value, z)
    assert value.item() == 0.0 and math.isnan(g.item())
    assert math.isnan((torch.tensor(0.0, dtype=torch.float64) * torch.log(torch.tensor(0.0, dtype=torch.float64))).item())
    spelled = "Piecewise((0, Eq(x, 0)), (x*log(x), True))"
    at0 = sg.compare(spelled, at={"x": 0.0})
    assert at0.value_exact == 0 and at0.value_autograd == 0.0
    assert sg.compare("x*log(x)", at={"x": 0.0}).value_autograd != 0.0  # nan: what the hint fixes
    (e,) = sg.compare(spelled, at={"x": 0.5}).entries
    half = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(torch.xlogy(half, half), half)
    assert e.cause is sg.Cause.AGREE and abs(e.grad_symbolic - (1 - sp.log(2))) < sp.Float("1e-40")
    assert e.grad_autograd == gx.item()


def test_the_xlogy_hint_is_only_for_zero_times_log_zero() -> None:
    """log(x) at -1 (outside the domain, no product) and x**2*log(x) at 0 (whose right slope is 0)
    keep the general domain hint."""
    for expr, at in (("log(x)", -1.0), ("x*log(x)", -1.0), ("x**2*log(x)", 0.0)):
        (e,) = sg.compare(expr, at={"x": at}).entries
        assert e.cause is sg.Cause.DOMAIN and "xlogy" not in e.hint and "Choose a point inside" in e.hint, expr


def test_the_straight_through_estimator_has_slope_one() -> None:
    (e,) = sg.compare("x + detach(floor(x) - x)", at={"x": 1.5}).entries
    assert e.grad_executed == 1 and e.grad_autograd == 1.0 and e.grad_symbolic == 0


def test_after_a_stable_numerator_the_value_is_accurate_but_the_quotient_still_cancels() -> None:
    """What the rounding hint promises for expm1(x)/x near 0: the forward value is exact to the
    dtype, the gradient still loses digits, and the backward pass is where they are lost."""
    c = sg.compare("expm1(x)/x", at={"x": 1e-6}, dtype="float32")
    (e,) = c.entries
    assert abs(c.value_autograd - float(c.value_exact)) <= 1.2e-7 * float(c.value_exact)
    assert e.cause is sg.Cause.ROUNDING
    assert "backward pass" in e.explanation and "nearly cancel" in e.explanation


# ---------------------------------------------------------------- kinks: the convention each op gives


def relu_(x):  # type: ignore[no-untyped-def]
    return torch.relu(x)


def clamp_(x):  # type: ignore[no-untyped-def]
    return torch.clamp(x, min=0)


def maximum_(x):  # type: ignore[no-untyped-def]
    return torch.maximum(x, torch.zeros_like(x))


def test_each_kink_alternative_gives_the_subgradient_the_hint_names() -> None:
    """Max(x, 0) at 0: the hint lists torch.relu (0), torch.clamp (1) and torch.maximum (1/2);
    symgrad reads each back and reports exactly that executed slope (the kink stays: the
    mathematics has no derivative there, whichever convention is chosen)."""
    (e,) = sg.compare(sp.Max(x, 0), at={x: 0.0}).entries
    assert e.cause is sg.Cause.KINK
    for spelled, fn, slope in (("`torch.relu` gives 0", relu_, 0), ("`torch.clamp(x, min=0)` gives 1", clamp_, 1),
                               ("`torch.maximum(x, torch.zeros_like(x))` gives 1/2", maximum_, sp.Rational(1, 2))):
        assert spelled in e.hint
        (k,) = sg.compare(fn, at={"x": 0.0}).entries
        assert k.cause is sg.Cause.KINK and k.grad_executed == slope and k.grad_autograd == float(slope)


def test_every_cause_has_a_checked_hint() -> None:
    checked = {c.cause for c in CASES} | {"kink"}
    assert checked == {cause.id for cause in sg.Cause} - {"agree"}


# ---------------------------------------------------------------- hint texts name only what symgrad has

_CODE = re.compile(r"`([^`]*)`")
_CALL = re.compile(r"((?:torch\.nn\.functional\.|torch\.|F\.)?[A-Za-z_][A-Za-z0-9_.]*)\(")


def _hint_texts() -> list[str]:
    from symgrad.verdict import compare as _compare_module  # noqa: F401 (the module, for its hint texts)
    from symgrad.base.causes import HINTS, MASKED_INPUT_HINT, ZERO_LOG_ZERO_HINT
    from symgrad.program.ops import OPS
    from symgrad.program.rules import RULES

    texts = [*HINTS.values(), MASKED_INPUT_HINT, ZERO_LOG_ZERO_HINT]
    for rule in RULES.values():
        texts += list(rule.hints.values())
    texts += [op.alternatives for op in OPS.values() if op.alternatives]
    return texts


def test_every_function_a_hint_names_has_a_row() -> None:
    """Each call written in code in a hint (`expm1(x)`, `torch.clamp(x, min=0)`) is a function
    the parser knows or a torch spelling `trace` reads, so that the rewrite can be compared."""
    from symgrad.frontends.parse import _FUNCTIONS
    from symgrad.frontends.torch_names import SPELLINGS

    known = set(_FUNCTIONS) | {n for n in SPELLINGS if "." in n}
    known |= {n.replace("torch.nn.functional.", "F.") for n in SPELLINGS}
    # f(...) stands for the user's function in the double-where pattern, and `backward()` is
    # when to call `.item()`, not a rewrite.
    outside = {"f", "backward"}
    missing = set()
    for text in _hint_texts():
        for code in _CODE.findall(text):
            for name in _CALL.findall(code):
                if name in outside:
                    continue
                if "." in name and not name.startswith(("torch.", "F.")):
                    name = f"Tensor.{name.rsplit('.', 1)[1]}"  # a method: y.detach() is Tensor.detach
                if name not in known and f"torch.{name}" not in known:
                    missing.add(name)
    assert not missing, f"hints name functions symgrad cannot compare: {sorted(missing)}"
