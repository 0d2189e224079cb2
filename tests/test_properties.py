"""Properties of symgrad over random SymPy expressions (STYLE.md point 12).

Each property compares two computations of the same thing, with an oracle that is not symgrad:
SymPy's `evalf(30)` for values and derivatives, PyTorch itself for autograd, and an interval
enclosure of float64 rounding (`strategies.enclosure`) as the forward tolerance. Expressions
come from `strategies.py` (the rule table's vocabulary, domain filters at construction); points
are random floats and, where a property is about kinks too, the exact kink and jump points.

Failures print the SymPy expression and the generated program (`note`), and the ci profile
(tests/conftest.py) makes every run the same.
"""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy as sp
import torch
from hypothesis import assume, event, given, note, reject
from hypothesis import strategies as st

import symgrad as sg

from strategies import (
    Case,
    Unbounded,
    cases,
    enclosure,
    exact_derivative,
    exact_value,
    wild_cases,
)

BRANCHES = st.sampled_from(["if", "where"])
DTYPES = st.sampled_from(["float64", "float32"])
ATOL = {"float64": 4 * torch.finfo(torch.float64).tiny, "float32": 4 * torch.finfo(torch.float32).tiny}
EXACT_RTOL = 1e-20  # two exact evaluations (symgrad's and SymPy's evalf(30)) of the same number


def _show(case: Case, branches: str = "if", dtype: str = "float64") -> sg.LoweredProgram | None:
    """note() the expression and the generated program, for a failing example's report."""
    note(f"expr = {sp.sstr(case.expr)}    srepr: {sp.srepr(case.expr)}")
    note(f"point = {case.point!r}   branches={branches!r} dtype={dtype!r}")
    try:
        lowered = sg.lower(case.expr, branches=branches, dtype=dtype)
    except sg.SymgradError as err:
        note(f"lower() raised {type(err).__name__}: {err}")
        return None
    note(lowered.source)
    return lowered


def _tensors(lowered: sg.LoweredProgram, case: Case, dtype: torch.dtype, grad: bool = False) -> list[torch.Tensor]:
    by_name = {s.name: v for s, v in case.point.items()}
    return [torch.tensor(by_name[s.name], dtype=dtype, requires_grad=grad) for s in lowered.symbols]


def _mp(v: sp.Basic | float) -> mpmath.mpf:
    if not isinstance(v, sp.Basic):
        return mpmath.mpf(v)
    if v in (sp.oo, -sp.oo):
        return mpmath.mpf(float(v))
    if v.is_finite is not True:  # nan, zoo
        return mpmath.mpf("nan")
    return mpmath.mpf(sp.Float(v, 40))


def _num(v: sp.Basic | float | None) -> str:
    """A number for a note, to 20 digits: str() of an exact Rational of thousands of digits
    raises (Python's limit on int digits), and so does format() of a Float past decimal's
    exponents (exp(-1e39) is 8.3e-434294481903251801467152564756854998842)."""
    if not isinstance(v, sp.Basic):
        return repr(v)
    if not (v.is_Rational or v.is_Float):
        return sp.sstr(v)
    with mpmath.workdps(40):
        return mpmath.nstr(_mp(v), 20)


def _close(a: sp.Basic | float, b: sp.Basic | float, rtol: float, atol: float) -> bool:
    with mpmath.workdps(40):
        x, y = _mp(a), _mp(b)
        if mpmath.isnan(x) or mpmath.isnan(y) or mpmath.isinf(x) or mpmath.isinf(y):
            return False
        return abs(x - y) <= rtol * max(abs(x), abs(y)) + atol


def _finite_number(v: sp.Basic) -> bool:
    return v.is_number and v.is_real is True and v.is_finite is True


# --------------------------------------------------------------------------- 1. forward


@given(case=cases(), branches=BRANCHES)
def test_lowered_forward_equals_sympy(case: Case, branches: str) -> None:
    """The lowered program's float64 value is SymPy's exact value, up to float64 rounding.

    The tolerance is an interval that encloses every value float64 evaluation of the expression
    can give (a few ulps per operation, both sides of a threshold where rounding can move the
    argument of a floor, a sign or a condition across it); SymPy's exact value must lie in it
    too, which checks the enclosure itself.
    """
    lowered = _show(case, branches)
    assert lowered is not None
    exact = exact_value(case.expr, case.point)
    note(f"sympy: {_num(exact)}")
    assert _finite_number(exact), f"a guarded expression is not finite at the point: {exact!s}"
    assume(abs(exact) < 1e15)
    try:
        enc = enclosure(case.expr, case.point)
    except Unbounded:
        assume(False)
    with torch.no_grad():
        out = float(lowered(*_tensors(lowered, case, torch.float64)))
    note(f"lowered: {out!r}; float64 enclosure [{mpmath.nstr(enc.lo, 20)}, {mpmath.nstr(enc.hi, 20)}]")
    width = (enc.hi - enc.lo) / max(abs(_mp(exact)), mpmath.mpf(1e-300))
    event("enclosure: relative width " + ("<= 1e-12" if width <= 1e-12 else "> 1e-12"))
    assert enc.lo <= _mp(exact) <= enc.hi, "the oracle's own enclosure misses SymPy's value"
    assert math.isfinite(out) and enc.lo <= out <= enc.hi, (
        f"lowered forward {out!r} is not SymPy's {exact} within float64 rounding")


# --------------------------------------------------------------------------- 2 and 3. entries


# Guarded expressions at random and kink points, and unguarded ones anywhere (outside the
# domain, on poles, overflowing): every comparison must classify honestly.
ANY_CASE = st.one_of(cases(), wild_cases())


def _compare(case: Case, branches: str, dtype: str) -> sg.Comparison:
    """compare(); an unguarded expression may be refused with a SymgradError (not a result)."""
    try:
        return sg.compare(case.expr, at=case.point, branches=branches, dtype=dtype)
    except sg.SymgradError as err:
        if case.guarded:
            raise
        note(f"refused: {type(err).__name__}")
        reject()


@given(case=ANY_CASE, branches=BRANCHES, dtype=DTYPES)
def test_agree_means_all_three_close(case: Case, branches: str, dtype: str) -> None:
    """`agree` is never reported when autograd and executed differ beyond the dtype's tolerance;
    and when it is reported, symbolic, executed and autograd are all close."""
    _show(case, branches, dtype)
    comparison = _compare(case, branches, dtype)
    rtol, atol = comparison.rtol, ATOL[dtype]
    for e in comparison.entries:
        event(f"cause {e.cause.id} ({dtype}, {branches})")
        note(f"{e.wrt}: cause={e.cause.id} symbolic={_num(e.grad_symbolic)} executed={_num(e.grad_executed)} "
             f"autograd={e.grad_autograd!r}")
        auto_ok = (e.grad_executed is not None and e.grad_autograd is not None
                   and _close(e.grad_autograd, e.grad_executed, rtol, atol))
        if not auto_ok:
            assert e.cause is not sg.Cause.AGREE, "agree reported although executed and autograd differ"
        if e.cause is sg.Cause.AGREE:
            assert e.grad_symbolic is not None, "agree reported although no symbolic derivative exists"
            assert _close(e.grad_symbolic, e.grad_executed, EXACT_RTOL, 0), "agree, but symbolic != executed"
            assert _close(e.grad_autograd, e.grad_symbolic, rtol, atol), "agree, but autograd != symbolic"


@given(case=ANY_CASE, branches=BRANCHES, dtype=DTYPES)
def test_every_disagreement_is_explained(case: Case, branches: str, dtype: str) -> None:
    """Each entry that does not agree names its node, a line of the generated program that
    exists, an explanation and a hint."""
    _show(case, branches, dtype)
    comparison = _compare(case, branches, dtype)
    lines = comparison.lowered.source.splitlines()
    for e in comparison.entries:
        if e.cause is sg.Cause.AGREE:
            continue
        note(f"{e.wrt}: cause={e.cause.id} node={e.node!r} line={e.line!r}")
        assert isinstance(e.explanation, str) and e.explanation.strip(), "no explanation"
        assert isinstance(e.hint, str) and e.hint.strip(), "no hint"
        assert isinstance(e.node, str) and e.node.strip(), "no node"
        assert isinstance(e.line, int), "no line"
        assert 1 <= e.line <= len(lines) and lines[e.line - 1].strip(), f"line {e.line} is not in the program"


# --------------------------------------------------------------------------- 4. errors


@given(case=wild_cases(finite=False), branches=BRANCHES, dtype=DTYPES, wrt=st.sampled_from([None, "first"]))
def test_only_symgrad_errors_escape(case: Case, branches: str, dtype: str, wrt: str | None) -> None:
    """Whatever the expression and the point (outside the domain, on a pole, nan, inf, huge,
    float32), compare() returns or raises a SymgradError; and its report renders."""
    _show(case, branches, dtype)
    wrt_arg = [sorted(case.point, key=lambda s: s.name)[0]] if wrt == "first" and case.point else None
    try:
        comparison = sg.compare(case.expr, at=case.point, branches=branches, dtype=dtype, wrt=wrt_arg)
    except sg.SymgradError as err:
        note(f"SymgradError: {type(err).__name__}: {err}")
        return
    assert str(comparison)


# --------------------------------------------------------------------------- 5. away from kinks

KINK_MARGIN = 1e-9


@given(case=cases(specials=False), branches=BRANCHES)
def test_gradients_away_from_kinks(case: Case, branches: str) -> None:
    """At a point away from every kink, jump and threshold: grad_symbolic and grad_executed are
    sympy.diff at the exact point, and grad_autograd is what torch.autograd.grad of the lowered
    program gives."""
    lowered = _show(case, branches)
    assert lowered is not None
    try:
        exact = enclosure(case.expr, case.point, rounding=False)
    except Unbounded:
        assume(False)
    note(f"smallest distance to a threshold: {mpmath.nstr(exact.margin, 5)}")
    assume(exact.margin > KINK_MARGIN)

    tensors = _tensors(lowered, case, torch.float64, grad=True)
    out = lowered(*tensors)
    try:
        torch_grads = [0.0 if g is None else float(g)
                       for g in torch.autograd.grad(out, tensors, allow_unused=True)]
    except RuntimeError as err:  # nothing on the graph reaches the output (a constant branch)
        torch_grads = None
        note(f"torch.autograd.grad raised: {err}")

    comparison = sg.compare(case.expr, at=case.point, branches=branches)
    for k, e in enumerate(comparison.entries):
        derivative, oracle = exact_derivative(case.expr, e.wrt, case.point)
        note(f"{e.wrt}: sympy.diff = {derivative} = {_num(oracle)}; symbolic={_num(e.grad_symbolic)} "
             f"executed={_num(e.grad_executed)} autograd={e.grad_autograd!r} cause={e.cause.id}")
        assert _finite_number(oracle), f"sympy.diff is not a finite number here: {oracle!s}"
        assert e.grad_symbolic is not None and _close(e.grad_symbolic, oracle, EXACT_RTOL, 1e-25), (
            "grad_symbolic is not sympy.diff at the point")
        assert e.grad_executed is not None and _close(e.grad_executed, oracle, EXACT_RTOL, 1e-25), (
            "grad_executed is not sympy.diff at the point (no detach, no threshold here)")
        if torch_grads is None:
            assert e.grad_autograd is None and e.autograd_error
        else:
            assert e.grad_autograd is not None
            assert (e.grad_autograd == torch_grads[k]
                    or (math.isnan(e.grad_autograd) and math.isnan(torch_grads[k]))), (
                "grad_autograd is not torch.autograd.grad of the lowered program")


# --------------------------------------------------------------------------- found by the properties
# Minimal reproductions of bugs the properties found, kept as regression tests. A bug not yet
# fixed is a strict xfail: when it XPASSes (the run fails), remove the marker.


def test_floor_of_an_expression() -> None:
    x = sp.Symbol("x")
    comparison = sg.compare(sp.floor(x**2), at={x: 0.5})  # smooth here: slope 0
    assert comparison.ok and comparison.entries[0].grad_symbolic == 0


def test_condition_on_a_piecewise() -> None:
    x = sp.Symbol("x")
    relu = sp.Piecewise((x, x > 0), (0, True))
    expr = sp.Piecewise((1, relu > 1), (0, True))  # SymPy: Piecewise((1, ITE(x > 0, x > 1, False)), (0, True))
    assert sg.compare(expr, at={x: 2.0}).ok


def test_abs_of_an_unproven_real() -> None:
    x = sp.Symbol("x")
    expr = sp.Abs(sp.sqrt(sp.log(x) ** 2 + 1))  # real and smooth for x > 0
    assert sg.compare(expr, at={x: 2.0}).ok


def test_floor_of_a_non_finite_value() -> None:
    x = sp.Symbol("x")
    try:
        sg.compare(sp.floor(sp.log(x)), at={x: 0.0})  # also floor(1/x) at 0, floor(log(x)) at -1
    except sg.SymgradError:
        pass


def test_complex_constant() -> None:
    x = sp.Symbol("x")
    try:
        sg.compare(x + sp.log(-1), at={x: 0.0})  # SymPy: x + I*pi
    except sg.SymgradError:
        pass


def test_sin_of_pi_on_a_branch() -> None:
    x = sp.Symbol("x")
    comparison = sg.compare(sp.sin(sp.Piecewise((x, x > 0), (sp.pi, True))), at={x: 0.0})
    assert comparison.entries[0].cause is sg.Cause.CONTROL_FLOW  # one-sided slopes 0 and 1


def test_where_with_a_tautological_condition() -> None:
    y = sp.Symbol("y")
    p = sp.Piecewise((-1, y >= 0), (y, True))
    expr = sp.Piecewise((sp.Rational(1, 3), p < 0), (y, True))  # ITE(y >= 0, True, y < 0): always true
    lowered = sg.lower(expr, branches="where")
    assert float(lowered(torch.tensor(-1.0, dtype=torch.float64))) == 1 / 3
    assert sg.compare(expr, at={y: -1.0}, branches="where").ok  # not a graph break


def test_max_of_a_value_outside_the_domain() -> None:
    x = sp.Symbol("x")
    comparison = sg.compare(sp.Max(sp.log(x), 0), at={x: -1.0})
    assert comparison.entries[0].cause is sg.Cause.DOMAIN


def test_unreachable_complex_branch() -> None:
    x = sp.Symbol("x")
    u = sp.Piecewise((x, x > 0), (-1, True))
    expr = sp.Piecewise((sp.sqrt(u), u > 0), (0, True))  # real everywhere: sqrt(x) for x > 0, else 0
    assert sg.compare(expr, at={x: 4.0}).ok


def test_report_of_sin_of_pi() -> None:
    x = sp.Symbol("x")
    comparison = sg.compare(sp.sin(sp.pi * x), at={x: 1.0})  # compare itself returns (agree)
    assert str(comparison)


def test_max_that_real_symbols_make_invalid() -> None:
    x = sp.Symbol("x")
    expr = sp.Max(x, sp.log(sp.Min(0, x)))  # fine for a complex x; not for a real one
    try:
        sg.compare(expr, at={x: 0.0})
    except sg.SymgradError:
        pass


def test_tie_beside_a_smooth_term() -> None:
    """A tie of Min inside Max(-1, .) beside a smooth term: once reported as agree (the smooth
    term sent the math side through sympy.diff, whose Heaviside conventions matched torch's)."""
    x, y = sp.symbols("x y")
    comparison = sg.compare(sp.exp(x) + sp.Max(-1, sp.Min(x, y)), at={x: -1.0, y: -1.0})
    dx, dy = comparison.entries  # the Max is flat on both sides: the math has slopes e**-1 and 0
    assert dx.cause is sg.Cause.KINK and dy.cause is sg.Cause.KINK
    assert abs(float(dx.grad_symbolic) - float(sp.exp(-1))) < 1e-15 and dy.grad_symbolic == 0
    assert abs(float(dx.grad_executed) - float(sp.exp(-1)) - 0.5) < 1e-15 and dy.grad_executed == sp.Rational(1, 2)
    assert dx.grad_autograd == pytest.approx(float(sp.exp(-1)) + 0.5, rel=1e-15)


@pytest.mark.parametrize("branches", ["if", "where"])
def test_constant_operand_of_a_two_tensor_op_in_a_condition(branches: str) -> None:
    """A condition spelled a constant operand of torch.logaddexp, torch.atan2 or torch.stack as
    a Python number (`if torch.logaddexp(1, y) > 0:`), which torch refuses with a TypeError:
    the program could not run, and compare() called that a graph break."""
    y = sp.Symbol("y")
    conditions = [sg.logaddexp(1, y) > 1, sg.logsumexp(y, 2) > 2, sg.softmax(0, y, sp.Rational(1, 3)) > 0.5,
                  sg.log_softmax(1, 2, y, y) < -1, sp.atan2(1, y) > 1]
    for c in conditions:  # each holds at y = 1/2
        expr = sp.Piecewise((y, c), (2 * y, True))
        lowered = sg.lower(expr, branches=branches)
        assert float(lowered(torch.tensor(0.5, dtype=torch.float64))) == 0.5
        (entry,) = sg.compare(expr, at={y: 0.5}, branches=branches).entries
        assert entry.cause is sg.Cause.AGREE and entry.grad_executed == 1


def test_report_of_a_slope_past_the_float64_exponents() -> None:
    """The slope of logsumexp(x, 1) at x = -1e39 is exp(-1e39 - 1): the report took its Float
    for a Rational to look for a float64 equal to it, a denominator of 2**(1.4e39) bits, and
    filled the memory."""
    x = sp.Symbol("x")
    comparison = sg.compare(sg.logsumexp(x, 1), at={x: -1e39})
    (entry,) = comparison.entries
    assert entry.cause is sg.Cause.AGREE and entry.grad_autograd == 0.0
    row = "8.2641077004422041e-434294481903251801467152564756854998842"
    assert str(comparison).count(row) == 2  # symbolic and executed


@pytest.mark.xfail(strict=True, raises=sg.UnsupportedNodeError,
                   reason="SymPy writes Abs(x*exp(-p)) as exp(-re(p))*Abs(x) for a complex x; after "
                   "the switch to real symbols re(Piecewise(...)) stays, and lowering refuses re")
def test_re_left_by_sympy() -> None:
    x = sp.Symbol("x")
    p = sp.Piecewise((sp.log(x), x > 0), (0, True))
    assert sg.compare(sp.Abs(x * sp.exp(-p)), at={x: 2.0}).ok
