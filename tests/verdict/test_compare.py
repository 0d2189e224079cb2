"""The comparator: one test per acceptance row, then a sweep of the catalogue.

Expected numbers are written out (SymPy numbers compare with `==`: they are exact), or
computed by SymPy itself (`sympy.diff`, `evalf(30)`) at the exact binary value of the point.
The executed side is checked against PyTorch run here, independently of symgrad: a
hand-written torch function (`Case.torch_fn`) or the generated program called directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction

import pytest
import sympy as sp
import torch

import symgrad as sg

from cases import CASES, ORDINARY, Case, Point, case_points, pair_id

x, y = sp.symbols("x y")
DTYPES = {"float64": torch.float64, "float32": torch.float32}
# Executed (exact) vs autograd (floating point) where the comparison agrees: symgrad's own
# default tolerances (DESIGN.md section 4), so this checks the same promise.
EXECUTED_RTOL = {"float64": 1e-9, "float32": 1e-4}
FLOAT_CAUSES = {"nan-trap", "overflow", "rounding"}
# A transcendental grad_symbolic is a SymPy Float of 20 significant digits.
SYMBOLIC_RTOL = sp.Float("1e-19", 30)


def rational(v: float, dtype: str = "float64") -> sp.Rational:
    """The exact binary value a tensor of `dtype` holds for v."""
    f = Fraction(torch.tensor(v, dtype=DTYPES[dtype]).item())
    return sp.Rational(f.numerator, f.denominator)


def torch_grads(fn: Callable[..., torch.Tensor], at: Mapping[str, float], names: list[str],
                dtype: str = "float64") -> list[float]:
    """torch.autograd.grad of `fn` at the point, by input name, run here (not through symgrad)."""
    tensors = {n: torch.tensor(at[n], dtype=DTYPES[dtype], requires_grad=True) for n in names}
    out = fn(**tensors)
    grads = torch.autograd.grad(out, [tensors[n] for n in names], allow_unused=True)
    return [0.0 if g is None else float(g) for g in grads]


def same_float(a: float | None, b: float | None, rtol: float = 0.0) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rtol * abs(b) if rtol else a == b


def exact_float(v: sp.Basic | None) -> float | None:
    """A SymPy number (possibly oo or nan) as a float."""
    if v is None:
        return None
    if v is sp.nan:
        return math.nan
    return float(v)


def check_disagreements_are_explained(c: sg.Comparison) -> None:
    """Every entry that does not agree names its node and line, and explains and hints."""
    lines = c.lowered.source.splitlines()
    for e in c.entries:
        if e.cause is sg.Cause.AGREE:
            continue
        assert isinstance(e.node, str) and e.node, e
        assert isinstance(e.line, int) and 1 <= e.line <= len(lines), e
        assert not lines[e.line - 1].lstrip().startswith("#"), "the line cited is a comment"
        assert e.explanation.strip(), e
        assert e.hint.strip(), e
        assert e.node in e.explanation, f"the explanation does not name {e.node}: {e.explanation}"


# ---------------------------------------------------------------- the acceptance rows


def test_square_at_3_agrees() -> None:
    c = sg.compare(x**2, at={x: 3.0})
    (e,) = c.entries
    assert (e.grad_symbolic, e.one_sided, e.grad_executed, e.grad_autograd) == (6, None, 6, 6.0)
    assert e.cause is sg.Cause.AGREE and c.cause.id == "agree" and c.ok
    assert e.wrt == x
    assert torch_grads(lambda x: x**2, {"x": 3.0}, ["x"]) == [float(e.grad_executed)]


def test_relu_at_its_kink() -> None:
    c = sg.compare(sp.Max(x, 0), at={x: 0.0})
    (e,) = c.entries
    assert e.grad_symbolic is None
    assert e.one_sided == (0, 1)
    assert e.grad_executed == 0
    assert e.grad_autograd == 0.0
    assert e.cause.id == "kink" and c.cause.id == "kink" and not c.ok
    assert "torch.relu(x)" in c.lowered.source.splitlines()[e.line - 1]
    assert e.node == "Max(0, x)"
    assert torch_grads(torch.relu, {"x": 0.0}, ["x"]) == [float(e.grad_executed)]
    check_disagreements_are_explained(c)


def _relu_if(x: torch.Tensor) -> torch.Tensor:
    return x if x > 0 else x * 0


def test_piecewise_if_on_its_threshold_is_control_flow() -> None:
    c = sg.compare(sp.Piecewise((x, x > 0), (0, True)), at={x: 0.0}, branches="if")
    (e,) = c.entries
    assert e.grad_symbolic is None
    assert e.one_sided == (0, 1)
    assert e.grad_executed == 0
    assert e.grad_autograd == 0.0
    assert e.cause.id == "control-flow" and c.cause.id == "control-flow"
    assert c.lowered.source.splitlines()[e.line - 1].strip() == "if x > 0:"
    assert torch_grads(_relu_if, {"x": 0.0}, ["x"]) == [float(e.grad_executed)]
    check_disagreements_are_explained(c)


def test_piecewise_where_on_its_threshold_is_a_kink() -> None:
    c = sg.compare(sp.Piecewise((x, x > 0), (0, True)), at={x: 0.0}, branches="where")
    (e,) = c.entries
    assert e.grad_symbolic is None
    assert e.one_sided == (0, 1)
    assert e.grad_executed == 0
    assert e.grad_autograd == 0.0
    assert e.cause.id == "kink" and c.cause.id == "kink"
    assert "torch.where(" in c.lowered.source.splitlines()[e.line - 1]
    assert torch_grads(lambda x: torch.where(x > 0, x, 0.0), {"x": 0.0}, ["x"]) == [float(e.grad_executed)]
    check_disagreements_are_explained(c)


def test_abs_at_zero_is_a_kink() -> None:
    c = sg.compare(sp.Abs(x), at={x: 0.0})
    (e,) = c.entries
    assert e.grad_symbolic is None
    assert e.one_sided == (-1, 1)
    assert e.grad_executed == 0
    assert e.grad_autograd == 0.0
    assert e.cause.id == "kink" and c.cause.id == "kink"
    assert e.node == "Abs(x)"
    assert torch_grads(torch.abs, {"x": 0.0}, ["x"]) == [float(e.grad_executed)]
    check_disagreements_are_explained(c)


def test_floor_at_an_integer_jumps() -> None:
    c = sg.compare(sp.floor(x), at={x: 1.0})
    (e,) = c.entries
    assert e.grad_symbolic is None
    assert e.one_sided is None
    assert e.grad_executed == 0
    assert e.grad_autograd == 0.0
    assert e.cause.id == "jump" and c.cause.id == "jump"
    assert e.node == "floor(x)"
    assert torch_grads(torch.floor, {"x": 1.0}, ["x"]) == [float(e.grad_executed)]
    check_disagreements_are_explained(c)


def test_where_sqrt_below_zero_is_a_nan_trap() -> None:
    c = sg.compare(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), at={x: -1.0}, branches="where")
    (e,) = c.entries
    assert e.grad_symbolic == 0
    assert e.one_sided is None
    assert e.grad_executed == 0
    assert math.isnan(e.grad_autograd)
    assert e.cause.id == "nan-trap" and c.cause.id == "nan-trap"
    assert e.node == "sqrt(x)"
    assert "torch.sqrt(x)" in c.lowered.source.splitlines()[e.line - 1]
    assert "double-where" in e.hint
    # What torch itself reports for the same program.
    (g,) = torch_grads(lambda x: torch.where(x > 0, torch.sqrt(x), 0.0), {"x": -1.0}, ["x"])
    assert math.isnan(g)
    check_disagreements_are_explained(c)


def test_where_log_below_zero_is_no_trap() -> None:
    c = sg.compare(sp.Piecewise((sp.log(x), x > 0), (0, True)), at={x: -1.0}, branches="where")
    (e,) = c.entries
    assert e.grad_symbolic == 0
    assert e.one_sided is None
    assert e.grad_executed == 0
    # log's gradient at -1 is 1/x = -1, finite: the unused branch contributes 0 * -1 = -0.0.
    assert e.grad_autograd == 0.0 and math.copysign(1.0, e.grad_autograd) == -1.0
    assert e.cause.id == "agree" and c.ok
    (g,) = torch_grads(lambda x: torch.where(x > 0, torch.log(x), 0.0), {"x": -1.0}, ["x"])
    assert g == float(e.grad_executed)


def test_log_sum_exp_overflows() -> None:
    c = sg.compare(sp.log(sp.exp(x) + sp.exp(y)), at={x: 1000.0, y: 0.0})
    ex_, ey = c.entries
    assert (ex_.wrt, ey.wrt) == (x, y)
    big = sp.exp(1000)
    want_x = (big / (1 + big)).evalf(40)
    want_y = (1 / (1 + big)).evalf(40)
    for e, want in ((ex_, want_x), (ey, want_y)):
        assert e.one_sided is None
        assert abs(e.grad_symbolic - want) <= sp.Float("1e-17", 40) * abs(want), (e.grad_symbolic, want)
        assert abs(e.grad_executed - want) <= sp.Float("1e-17", 40) * abs(want)
    assert math.isnan(ex_.grad_autograd)
    assert ey.grad_autograd == 0.0  # 1/(1 + e**1000) is about 5e-435, below float64's 5e-324
    assert ex_.cause.id == "overflow" and ey.cause.id == "agree" and c.cause.id == "overflow"
    assert ex_.node == "exp(x)"
    assert "torch.exp(x)" in c.lowered.source.splitlines()[ex_.line - 1]
    assert "logsumexp" in ex_.hint
    gx, gy = torch_grads(lambda x, y: torch.log(torch.exp(x) + torch.exp(y)), {"x": 1000.0, "y": 0.0}, ["x", "y"])
    assert math.isnan(gx) and gy == 0.0
    check_disagreements_are_explained(c)


def test_one_minus_cos_over_x_squared_rounds() -> None:
    f = (1 - sp.cos(x)) / x**2
    c = sg.compare(f, at={x: 1e-4})
    (e,) = c.entries
    point = rational(1e-4)
    want = sp.diff(f, x).subs(x, point).evalf(30)
    assert abs(e.grad_symbolic - want) <= sp.Float("1e-16", 30) * abs(want)
    assert float(e.grad_symbolic) == -8.333333327777778e-06
    assert e.grad_executed == e.grad_symbolic
    assert e.one_sided is None
    assert abs(e.grad_autograd - float(want)) > 1.0 * abs(float(want))  # off by more than 100%
    assert e.cause.id == "rounding" and c.cause.id == "rounding"
    assert e.node == "1 - cos(x)"
    assert "1 - cos_x" in c.lowered.source.splitlines()[e.line - 1]
    assert "sin(x/2)" in e.hint
    (g,) = torch_grads(lambda x: (1 - torch.cos(x)) / x**2, {"x": 1e-4}, ["x"])
    assert g == e.grad_autograd
    check_disagreements_are_explained(c)


def test_exp_minus_one_over_x_in_float32_rounds() -> None:
    f = (sp.exp(x) - 1) / x
    c = sg.compare(f, at={x: 1e-6}, dtype="float32")
    (e,) = c.entries
    point = rational(1e-6, "float32")
    assert c.point == {x: point}
    want = sp.diff(f, x).subs(x, point).evalf(30)
    assert abs(e.grad_symbolic - want) <= SYMBOLIC_RTOL * abs(want)
    assert abs(float(e.grad_symbolic) - 0.5000003333334583) <= 1e-10
    assert e.grad_executed == e.grad_symbolic
    assert abs(e.grad_autograd - float(want)) > 100 * abs(float(want))  # orders of magnitude
    assert e.cause.id == "rounding" and c.cause.id == "rounding"
    assert e.node == "exp(x) - 1"
    assert "expm1" in e.hint
    (g,) = torch_grads(lambda x: (torch.exp(x) - 1) / x, {"x": 1e-6}, ["x"], "float32")
    assert g == e.grad_autograd
    check_disagreements_are_explained(c)


def test_log_of_a_negative_number_is_outside_the_domain() -> None:
    c = sg.compare(sp.log(x), at={x: -1.0})
    (e,) = c.entries
    assert e.grad_symbolic is None
    assert e.one_sided is None
    assert e.grad_executed == -1
    assert e.grad_autograd == -1.0
    assert e.cause.id == "domain" and c.cause.id == "domain"
    assert e.node == "log(x)"
    assert "x > 0" in e.hint
    assert torch_grads(torch.log, {"x": -1.0}, ["x"]) == [float(e.grad_executed)]
    check_disagreements_are_explained(c)


# ---------------------------------------------------------------- the catalogue


def _compare(case: Case, point: Point) -> sg.Comparison:
    at = {s: point.at[s.name] for s in case.symbols}
    return sg.compare(case.expr, at=at, branches=case.branches, dtype=case.dtype)


def _program_grads(c: sg.Comparison, case: Case, point: Point) -> list[float] | None:
    """torch.autograd.grad of the generated program, called here; None where torch raises."""
    names = list(c.lowered.inputs)
    at = {n: point.at[s.name] for n, s in zip(names, case.symbols)}
    try:
        return torch_grads(c.lowered.function, at, names, case.dtype)
    except RuntimeError:
        return None


def _has_cut(case: Case) -> bool:
    return any(isinstance(n, (sg.detach, sg.item, sg.no_grad)) for n in sp.preorder_traversal(case.expr))


def _sympy_derivatives(case: Case, point: Point) -> list[sp.Basic]:
    """sympy.diff of the mathematics (detach/item/no_grad as the identity), evaluated with
    evalf(30) at the exact point, for each input in order."""
    real = {s: sp.Symbol(s.name, real=True) for s in case.symbols}
    expr = case.expr.replace(lambda e: isinstance(e, (sg.detach, sg.item, sg.no_grad)), lambda e: e.args[0])
    expr = expr.xreplace(real)
    at = {real[s]: rational(point.at[s.name], case.dtype) for s in case.symbols}
    out = []
    for s in case.symbols:
        d = sp.diff(expr, real[s])
        # floor and ceiling are flat between the integers; SymPy leaves their derivative
        # unevaluated (Derivative(floor(x), x)).
        d = d.replace(lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, (sp.floor, sp.ceiling)),
                      lambda e: sp.Integer(0))
        out.append(d.subs(at).evalf(30))
    return out


ORDINARY_POINTS = case_points(ORDINARY)
ALL_POINTS = case_points()


@pytest.mark.parametrize("pair", ORDINARY_POINTS, ids=pair_id)
def test_catalogue_at_ordinary_points(pair: tuple[Case, Point]) -> None:
    case, point = pair
    c = _compare(case, point)
    names = [s.name for s in case.symbols]
    by_hand = torch_grads(case.torch_fn, point.at, names, case.dtype) if not _cut_raises(case, point) else None
    program = _program_grads(c, case, point)
    sympy_d = _sympy_derivatives(case, point)
    assert [e.wrt for e in c.entries] == case.symbols
    for k, e in enumerate(c.entries):
        # autograd is what torch reports for the generated program ...
        if program is None:
            assert e.grad_autograd is None and e.autograd_error
        else:
            assert same_float(e.grad_autograd, program[k]), (e.grad_autograd, program[k])
        # ... which is what the hand-written torch function reports, to rounding.
        if by_hand is not None:
            assert same_float(e.grad_autograd, by_hand[k], 1e-12), (e.grad_autograd, by_hand[k])
        # The mathematics is sympy.diff.
        assert e.grad_symbolic is not None, e
        want = sympy_d[k]
        assert want.is_finite, want
        assert abs(e.grad_symbolic - want) <= SYMBOLIC_RTOL * abs(want), (e.grad_symbolic, want)
        if e.cause is sg.Cause.AGREE:
            assert same_float(exact_float(e.grad_executed), e.grad_autograd, EXECUTED_RTOL[case.dtype]) or (
                e.grad_executed == 0 and e.grad_autograd == 0.0)
        # Away from kinks, the only reasons to disagree are detach and autograd graph breaks.
        if _has_cut(case):
            assert e.cause.id in ("agree", "detach", "graph-break"), e
        else:
            assert e.cause is sg.Cause.AGREE, (e.cause, e.explanation)
    check_disagreements_are_explained(c)


def _cut_raises(case: Case, point: Point) -> bool:
    try:
        torch_grads(case.torch_fn, point.at, [s.name for s in case.symbols], case.dtype)
    except RuntimeError:
        return True
    return False


@pytest.mark.parametrize("pair", ALL_POINTS, ids=pair_id)
def test_executed_side_is_torchs_convention(pair: tuple[Case, Point]) -> None:
    """At every point (kinks, jumps and domain edges included) the executed derivative is what
    the hand-written torch function computes, except where floating point is the cause."""
    case, point = pair
    c = _compare(case, point)
    if _cut_raises(case, point):
        # Nothing reaches the output through the graph: torch raises, symgrad records it.
        for e in c.entries:
            assert e.grad_autograd is None and "does not require grad" in e.autograd_error
            assert e.grad_executed == 0 and e.cause.id == "graph-break"
        return
    by_hand = torch_grads(case.torch_fn, point.at, [s.name for s in case.symbols], case.dtype)
    for k, e in enumerate(c.entries):
        if e.cause.id in FLOAT_CAUSES or any(a.id in FLOAT_CAUSES for a in e.also):
            continue
        assert same_float(exact_float(e.grad_executed), by_hand[k], EXECUTED_RTOL[case.dtype]) or (
            e.grad_executed == 0 and by_hand[k] == 0.0), (case.name, point.id, e.grad_executed, by_hand[k])


@pytest.mark.parametrize("pair", ALL_POINTS, ids=pair_id)
def test_agree_means_the_three_values_agree(pair: tuple[Case, Point]) -> None:
    """The comparator never says "agree" while the values differ (DESIGN.md section 12)."""
    case, point = pair
    c = _compare(case, point)
    for e in c.entries:
        if e.cause is not sg.Cause.AGREE:
            assert e.explanation and e.node
            continue
        assert e.grad_symbolic is not None and e.grad_symbolic.is_finite, (
            f"{case.name} at {point.id}: cause agree, but grad_symbolic is {e.grad_symbolic} "
            f"(executed {e.grad_executed}, autograd {e.grad_autograd})")
        difference = abs(e.grad_symbolic - e.grad_executed)
        assert difference <= SYMBOLIC_RTOL * abs(e.grad_executed), (e.grad_symbolic, e.grad_executed)
    check_disagreements_are_explained(c)


@pytest.mark.parametrize("pair", [p for p in ALL_POINTS if p[1].why in ("on-kink", "on-jump")], ids=pair_id)
def test_no_derivative_is_reported_where_sympy_s_convention_would_lie(pair: tuple[Case, Point]) -> None:
    """On a kink or jump SymPy's own value (Heaviside(0) = 1/2, Max's tie split) is a convention:
    the entry either has no grad_symbolic, or one-sided derivatives that are equal."""
    case, point = pair
    c = _compare(case, point)
    for e in c.entries:
        if e.grad_symbolic is None:
            assert e.cause.id in ("kink", "jump", "control-flow"), e
            if e.one_sided is not None:
                assert e.one_sided[0] != e.one_sided[1]
                assert e.cause.id in ("kink", "control-flow")


def test_atan2_jumps_across_the_negative_x_axis() -> None:
    """atan2(y, x) is pi just above (-1, 0) and -pi just below: no derivative in y there."""
    c = sg.compare(sp.atan2(y, x), at={x: -1.0, y: 0.0})
    ex_, ey = c.entries
    assert ex_.grad_symbolic == 0 and ex_.cause.id == "agree"  # along the axis atan2 is constant
    assert ey.grad_symbolic is None and ey.cause.id == "jump", (ey.grad_symbolic, ey.cause)


def test_a_rational_constant_is_exact_on_the_exact_sides() -> None:
    """float(1/3) < 1/3: the mathematics is |x - 1/3| left of its kink (slope -1); only the
    program, whose constant is the float 0.3333333333333333, sits on it."""
    c = sg.compare(sp.Abs(x - sp.Rational(1, 3)), at={x: 1 / 3})
    (e,) = c.entries
    assert e.grad_symbolic == -1 and e.grad_executed == -1
    assert e.grad_autograd == 0.0
    assert e.cause.id == "rounding"
    check_disagreements_are_explained(c)


def test_an_irrational_constant_is_exact_on_the_exact_sides() -> None:
    """float(pi) < pi, so at x = float(pi) the mathematics of |x - pi| has slope -1: the point
    is beside the kink, not on it (as for 1/3 above)."""
    c = sg.compare(sp.Abs(x - sp.pi), at={x: math.pi})
    (e,) = c.entries
    assert sp.Rational(Fraction(math.pi).numerator, Fraction(math.pi).denominator) < sp.pi
    assert e.grad_symbolic == -1, (e.cause, e.one_sided)
    assert e.one_sided is None
    assert e.cause.id != "kink"


# --------------------------------------------------------------------------- the user's torch state


def _torch_state() -> tuple[object, ...]:
    return (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.is_anomaly_enabled(),
            torch.is_anomaly_check_nan_enabled(), torch.get_default_dtype())



USER_STATES: dict[str, Callable[[], object]] = {
    "no_grad": torch.no_grad,
    "set_grad_enabled(False)": lambda: torch.set_grad_enabled(False),
    "inference_mode": torch.inference_mode,
    "detect_anomaly": lambda: torch.autograd.set_detect_anomaly(True),
    "detect_anomaly(check_nan=False)": lambda: torch.autograd.set_detect_anomaly(True, check_nan=False),
}


@pytest.mark.parametrize("default", [torch.float64, torch.float32], ids=["default64", "default32"])
@pytest.mark.parametrize("state", list(USER_STATES))
def test_user_torch_state_changes_no_verdict_and_is_restored(state: str, default: torch.dtype) -> None:
    outside = [sg.compare(sp.exp(x), at={x: 1.0}), sg.compare(sp.log(sp.exp(x) + sp.exp(y)), at={x: 1000.0, y: 0.0})]
    assert [c.cause.id for c in outside] == ["agree", "overflow"]
    before_default = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        with USER_STATES[state]():
            before = _torch_state()
            smooth = sg.compare(sp.exp(x), at={x: 1.0})
            assert _torch_state() == before
            big = sg.compare(sp.log(sp.exp(x) + sp.exp(y)), at={x: 1000.0, y: 0.0})
            assert _torch_state() == before
            # float32 runs name their dtype too: the default dtype never decides one.
            small = sg.compare(sp.exp(x), at={x: 1.0}, dtype="float32")
            assert _torch_state() == before
    finally:
        torch.set_default_dtype(before_default)
    assert (smooth.cause.id, big.cause.id, small.cause.id) == ("agree", "overflow", "agree")
    e = math.exp(1.0)
    assert smooth.entries[0].grad_autograd == e == outside[0].entries[0].grad_autograd
    assert math.isnan(big.entries[0].grad_autograd) and math.isnan(outside[1].entries[0].grad_autograd)
    assert small.entries[0].grad_autograd == torch.exp(torch.tensor(1.0, dtype=torch.float32)).item()


def test_user_torch_state_is_restored_when_an_error_escapes() -> None:
    with torch.no_grad(), torch.autograd.set_detect_anomaly(True):
        before = _torch_state()
        with pytest.raises(sg.UnboundSymbolError):
            sg.compare(x * y, at={x: 1.0})
        assert _torch_state() == before
        from symgrad.sides import autograd

        with pytest.raises(ZeroDivisionError), autograd.torch_state():
            assert torch.is_grad_enabled() and not torch.is_anomaly_enabled()
            1 / 0
        assert _torch_state() == before


def test_hessian_under_inference_mode_is_the_same() -> None:
    outside = sg.compare(sp.sin(x) * y, at={x: 0.5, y: 2.0}, order=2)
    with torch.inference_mode():
        inside = sg.compare(sp.sin(x) * y, at={x: 0.5, y: 2.0}, order=2)
        assert torch.is_inference_mode_enabled()
    assert [e.grad_autograd for e in inside.entries] == [e.grad_autograd for e in outside.entries]
    assert inside.cause.id == "agree"


# --------------------------------------------------------------------------- big constants

BIG = sp.Integer(10) ** 20  # past int64 (torch: "int too big to convert" for a Python int operand)


@pytest.mark.parametrize("f, grad", [
    (BIG * x, BIG),
    (-sp.Integer(2) ** 64 * x, -sp.Integer(2) ** 64),
    (x + BIG, sp.Integer(1)),
    (x**2 / sp.Integer(10) ** 30, sp.Rational(4, 10**30)),
    (sp.Rational(10**25 + 1, 3) * x, sp.Rational(10**25 + 1, 3)),
    (sp.Rational(7, 10**30 + 3) * x, sp.Rational(7, 10**30 + 3)),
    (sp.Float("1e300") * x, sp.Float("1e300")),
    (sp.Max(x, BIG) + x, sp.Integer(1)),
    (sp.Piecewise((x, x > BIG), (3 * x, True)), sp.Integer(3)),
], ids=["10**20*x", "-2**64*x", "x+10**20", "x**2/10**30", "rational", "small-rational", "float", "Max", "condition"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_big_constants_are_values_of_the_dtype(f: sp.Basic, grad: sp.Basic, dtype: str) -> None:
    if dtype == "float32" and f.has(sp.Float("1e300")):
        pytest.skip("1e300 is past float32's range (the overflow test covers that)")
    c = sg.compare(f, at={x: 2.0}, dtype=dtype)
    (e,) = c.entries
    assert e.autograd_error is None
    assert c.cause.id == "agree", str(c)
    assert e.grad_executed == grad or sp.Float(e.grad_executed, 30) == sp.Float(grad, 30)
    # torch itself, with the constant as the nearest value of the dtype
    t = torch.tensor(2.0, dtype=DTYPES[dtype], requires_grad=True)
    value = c.lowered(t)
    (g,) = torch.autograd.grad(value, t)
    assert e.grad_autograd == g.item()
    assert e.grad_autograd == pytest.approx(float(grad), rel=1e-6 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("f, dtype", [
    (sp.Integer(10) ** 400 * x, "float64"),
    (-sp.Integer(10) ** 400 * x, "float64"),
    (sp.Rational(10**400, 3) * x, "float64"),
    (sp.Float("1e400") * x, "float64"),
    (sp.Integer(10) ** 39 * x, "float32"),
    (x * sg.item(sp.Integer(10) ** 400), "float64"),
], ids=["10**400*x", "-10**400*x", "rational", "Float", "float32", "item"])
def test_constants_past_the_dtype_range_overflow(f: sp.Basic, dtype: str) -> None:
    c = sg.compare(f, at={x: 2.0}, dtype=dtype)
    (e,) = c.entries
    assert e.autograd_error is None
    assert math.isinf(e.grad_autograd)
    assert e.grad_symbolic == e.grad_executed  # exact: the true constant
    assert abs(float(sp.Float(e.grad_executed, 20))) > torch.finfo(DTYPES[dtype]).max
    assert c.cause.id == "overflow"


@pytest.mark.parametrize("build, want", [
    (lambda u: sp.Max(u, 0), -1.0),                 # relu passes a NaN's gradient
    (lambda u: sp.Max(u, 1), 0.0),                  # clamp blocks it
    (lambda u: sp.Max(u, sp.Symbol("y")), -1.0),    # maximum gives it the full gradient
    (lambda u: sp.Min(u, sp.Symbol("y")), -1.0),
])
def test_nan_reaching_a_kink_follows_torch(build, want) -> None:  # type: ignore[no-untyped-def]
    x = sp.Symbol("x")
    f = build(sp.log(x))
    at = {x: -1.0, **({sp.Symbol("y"): 0.5} if len(f.free_symbols) > 1 else {})}
    c = sg.compare(f, at=at, wrt=[x])
    e = c.entries[0]
    assert e.grad_autograd == want
    assert float(e.grad_executed) == want
    assert e.cause is sg.Cause.DOMAIN  # log(-1) has no real value: the mathematics says so first


@pytest.mark.parametrize("build, cause", [
    (lambda x: x * sp.sign(x), "kink"),            # |x|
    (lambda x: x * sp.Heaviside(x), "kink"),       # relu
    (lambda x: x**2 * sp.sign(x), "agree"),        # smooth through its step: slope 0 both sides, and 0 ran
    (lambda x: sp.sign(x), "jump"),
    (lambda x: x + sp.floor(x), "jump"),
])
def test_jump_or_kink_is_decided_by_the_function(build, cause) -> None:  # type: ignore[no-untyped-def]
    x = sp.Symbol("x")
    c = sg.compare(build(x), at={x: 0.0})
    assert c.entries[0].cause.id == cause


def test_an_overflow_only_in_the_backward_pass_is_overflow() -> None:
    x = sp.Symbol("x")
    e = sg.compare(sp.log(x), at={x: 5e-324}).entries[0]
    assert e.cause is sg.Cause.OVERFLOW and e.grad_autograd == math.inf
    assert float(e.grad_executed) == pytest.approx(2.0240225330731062e+323, rel=1e-15)
    assert "backward pass" in e.explanation and "inf" in e.explanation


def test_a_non_finite_autograd_value_is_named_and_never_nan_percent() -> None:
    re, im = sp.symbols("re im")
    c = sg.compare(sp.sqrt(2 * re + 2 * sp.sqrt(im**2 + re**2)) / 2, at={re: -473274797.10107493, im: -3.800287591081733})
    for e in c.entries:
        assert not math.isfinite(e.grad_autograd) and e.cause is sg.Cause.ROUNDING
        assert repr(e.grad_autograd) in e.explanation and "nan%" not in e.explanation
        assert "2*re + 2*sqrt(im**2 + re**2)" in e.explanation  # the cancellation that made it singular


@pytest.mark.parametrize("build, slopes", [
    (lambda x, y: sp.sqrt(x**2 + y**2), ((-1, 1), (-1, 1))),        # a cone
    (lambda x, y: sp.sqrt(4 * x**2 + y**2), ((-2, 2), (-1, 1))),
    (lambda x, y: x + sp.sqrt(x**2 + y**2), ((0, 2), (-1, 1))),
    (lambda x, y: sp.sqrt(x**4 + y**2), (None, (-1, 1))),            # smooth along x: slope 0
])
def test_a_vertical_tangent_inside_a_cone_is_a_kink_and_a_nan_trap(build, slopes) -> None:  # type: ignore[no-untyped-def]
    x, y = sp.symbols("x y")
    c = sg.compare(build(x, y), at={x: 0.0, y: 0.0})
    for e, want in zip(c.entries, slopes):
        assert math.isnan(e.grad_autograd)  # as torch computes it: inf * 0 in the backward pass
        if want is None:
            assert e.grad_symbolic == 0 and e.cause is sg.Cause.NAN_TRAP
        else:
            assert e.cause is sg.Cause.KINK and sg.Cause.NAN_TRAP in e.also
            assert e.one_sided == tuple(sp.Integer(v) for v in want)
            assert "sqrt" in e.node and "argument" not in e.hint.split("(")[0]


def test_sqrt_at_its_edge_is_still_a_domain_matter() -> None:
    x = sp.Symbol("x")
    assert sg.compare(sp.sqrt(x), at={x: 0.0}).entries[0].cause is sg.Cause.DOMAIN


@pytest.mark.parametrize("build, at, want", [
    (lambda x, y: sp.sqrt(x), {"x": -0.0}, (-math.inf,)),            # sqrt(-0.0) = -0.0: slope -inf
    (lambda x, y: 1 / x, {"x": -0.0}, (-math.inf,)),
    (lambda x, y: x**-3, {"x": -0.0}, (-math.inf,)),
    (lambda x, y: x * sp.atan2(y, x), {"x": -1.0, "y": -0.0}, (-math.pi, 1.0)),
    (lambda x, y: sp.atan2(sp.sin(y), x) * x, {"x": -1.0, "y": -0.0}, (-math.pi, 1.0)),  # sin keeps -0.0
])
def test_signed_zero_is_kept_where_torch_depends_on_it(build, at, want) -> None:  # type: ignore[no-untyped-def]
    x, y = sp.symbols("x y")
    f = build(x, y)
    c = sg.compare(f, at={sp.Symbol(k): v for k, v in at.items()})
    for e, w in zip(c.entries, want):
        assert e.grad_autograd == pytest.approx(w, rel=1e-15)
        assert float(e.grad_executed) == pytest.approx(w, rel=1e-15)
        assert e.cause is not sg.Cause.ROUNDING


@pytest.mark.parametrize("build", [
    lambda x: x**2 * sp.log(-2) ** 2,                               # a complex constant
    lambda x: sp.cosh(sp.erf(sp.asin(sp.Rational(3, 2)))) * x,      # one SymPy evaluates for minutes
])
def test_a_constant_with_no_real_value_is_a_domain_finding_at_once(build) -> None:  # type: ignore[no-untyped-def]
    x = sp.Symbol("x")
    c = sg.compare(build(x), at={x: 1.0})
    assert c.entries[0].cause is sg.Cause.DOMAIN and "math.nan" in c.lowered.source


def test_concurrent_calls_keep_their_own_digits() -> None:
    """The exact engine's precision is process-wide (Arb's context): a lock keeps two threads
    from changing each other's working precision, so results and printed digits are the same."""
    import threading

    from sympy.codegen.ast import Assignment, CodeBlock, For

    x, b, i = sp.symbols("x b i")
    program = sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(200), CodeBlock(
        Assignment(b, 2 * b + sp.sin(b))))), output=b)
    alone = [str(sg.compare(sp.exp(x) * sp.sin(x), at={x: 0.3})), str(sg.compare(program, at={x: 0.7}))]
    out: list[list[str]] = []

    def work() -> None:
        out.append([str(sg.compare(sp.exp(x) * sp.sin(x), at={x: 0.3})), str(sg.compare(program, at={x: 0.7}))])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [alone] * 4


@pytest.mark.parametrize(("f", "point", "cause"), [
    ("expm1", -1000.0, "agree"),    # exp(-1000) = 5e-435: below float64, torch's 0 is the nearest float
    ("expm1", -40.0, "rounding"),   # torch's grad * (result + 1): result rounds to -1, so 0, not 4.2e-18
    ("sigmoid", 1000.0, "agree"),
    ("sigmoid", 40.0, "rounding"),  # torch's result * (1 - result): result rounds to 1
])
def test_fused_ops_exact_derivative_does_not_cancel(f: str, point: float, cause: str) -> None:
    """The exact derivative of expm1 is exp(u), of sigmoid sigmoid(u)*sigmoid(-u): no ball
    around 0 standing for 5e-435. What torch computes is taken from torch itself."""
    from sympy.codegen.cfunctions import expm1

    fn = {"expm1": (expm1, torch.expm1), "sigmoid": (sg.sigmoid, torch.sigmoid)}[f]
    t = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(fn[1](t), t)
    x = sp.Symbol("x")
    c = sg.compare(fn[0](x), at={x: point})
    assert c.entries[0].grad_autograd == g.item() == 0.0
    assert c.cause.id == cause, str(c)
    # e**-|p| to 12 digits (sigmoid's is e**-p/(1 + e**-p)**2), below float64's range at |p| = 1000
    want = math.exp(-abs(point)) if abs(point) < 700 else 0.0
    assert float(c.entries[0].grad_executed) == pytest.approx(want, rel=1e-12, abs=0)


@pytest.mark.parametrize("f, cause", [
    (sp.Piecewise((sp.sqrt(sp.Symbol("x")), sp.Symbol("x") > 0), (0, True)), "kink"),
    (sp.Piecewise((sp.log(sp.Symbol("x")), sp.Symbol("x") > 0), (0, True)), "jump"),
])
def test_a_structural_cause_beside_a_nan_trap_says_what_autograd_reports(f: sp.Basic, cause: str) -> None:
    """At 0 the where runs sqrt (log) for every input: the mathematics has no derivative (a kink,
    a jump) and the program's slope is 0, but torch's backward multiplies inf by 0, so autograd
    is nan. The explanation says both, with autograd's actual value; the hint gives both fixes."""
    x = sp.Symbol("x")
    e = sg.compare(f, at={x: 0.0}, branches="where").entries[0]
    xt = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    inner = torch.sqrt(xt) if f.args[0][0].func is sp.Pow else torch.log(xt)
    torch.where(xt > 0, inner, torch.zeros_like(xt)).backward()
    assert math.isnan(xt.grad.item()) and math.isnan(e.grad_autograd)
    assert e.cause.id == cause and e.also == (sg.Cause.NAN_TRAP,) and float(e.grad_executed) == 0
    assert "the program's slope is 0" in e.explanation or "The program's derivative is 0" in e.explanation
    assert "Besides (nan-trap):" in e.explanation and "autograd reports nan instead of 0" in e.explanation
    assert "(line 8)" in e.explanation and "double-where" in e.hint


@pytest.mark.parametrize("at", [-60.0, -80.0])
def test_a_backward_factor_below_float32s_range_is_named_as_underflow(at: float) -> None:
    """1/(1 + e^-x) in float32 at x = -60: torch's division backward forms (1/b)/b, about 7.7e-53,
    below float32's smallest number, so autograd is 0 where the slope is 8.8e-27. The explanation
    names that step and the underflow; torch.sigmoid(x) agrees there."""
    x = sp.Symbol("x")
    e = sg.compare(1 / (1 + sp.exp(-x)), at={x: at}, dtype="float32").entries[0]
    t = torch.tensor(at, dtype=torch.float32, requires_grad=True)
    (1 / (1 + torch.exp(-t))).backward()
    assert e.grad_autograd == t.grad.item() == 0.0 and float(e.grad_executed) > 1e-40
    assert e.cause.id == "rounding" and "(underflow)" in e.explanation and "`1/(1 + exp(-x))`" in e.explanation
    assert "torch.sigmoid(x)" in e.hint
    assert sg.compare(sg.sigmoid(x), at={x: at}, dtype="float32").ok


def test_the_exact_sides_per_entry_are_a_mapping_by_output_element_and_component() -> None:
    """verdict.point.PerEntry: (output element, component) -> value, held as a list per output
    element; it reads as the dict it replaced (keys in order, KeyError past the ends)."""
    from symgrad.verdict.point import PerEntry

    held = PerEntry()
    held.add_row(["a", "b", "c"])
    held.add_row(["d", "e", "f"])
    assert dict(held) == {(0, 0): "a", (0, 1): "b", (0, 2): "c", (1, 0): "d", (1, 1): "e", (1, 2): "f"}
    assert len(held) == 6 and list(held.values()) == list("abcdef") and held[(1, 2)] == "f"
    for missing in [(2, 0), (0, 3), (-1, 0), (0, -1)]:
        with pytest.raises(KeyError):
            held[missing]
    assert (1, 1) in held and (2, 2) not in held
