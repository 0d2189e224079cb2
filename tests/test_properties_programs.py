"""Properties of compare() over random Programs, matrix expressions and second derivatives.

Programs (loops, branches, detach/item/no_grad), matrix expressions on 2x2 and 2x1
MatrixSymbols, and scalar functions at order 2, all at special points (the program's own
thresholds, +-0.0, ties, subnormals, huge values) in float64 and float32. Each example checks
four things (`_check`):

1. nothing but a `SymgradError` escapes (and the report renders);
2. `agree` is never reported where autograd differs from the exact executed derivative beyond
   the tolerance (`comparison.rtol` relative, plus the dtype's tiny absolute);
3. wherever an entry's cause is structural (detach, graph-break, control-flow, kink, jump,
   agree) and no floating-point cause is among its `also`, `grad_executed` is torch's own
   autograd of the lowered program, computed here (`lowered(*tensors)`, `torch.autograd.grad`),
   not read from symgrad's record; and symgrad's `grad_autograd` is that same number;
4. the same call twice gives the same record.

Minimal reproductions of what these properties found are kept at the end.
"""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from sympy.codegen.ast import Assignment, CodeBlock

import symgrad as sg

from strategies import SPECIAL_FLOATS, SYMBOLS, Case, expressions, matrix_cases, programs

BRANCHES = st.sampled_from(["if", "where"])
DTYPES = st.sampled_from(["float64", "float32"])
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}
TINY = {name: torch.finfo(dt).tiny for name, dt in TORCH_DTYPES.items()}
STRUCTURAL = frozenset({sg.Cause.DETACH, sg.Cause.GRAPH_BREAK, sg.Cause.CONTROL_FLOW, sg.Cause.KINK,
                        sg.Cause.JUMP, sg.Cause.AGREE})
# Examples per property in the ci profile; PROPERTY_SCALE=20 runs twenty times as many (bug hunting).
SCALE = int(os.environ.get("PROPERTY_SCALE", "1"))
FLOATING = frozenset({sg.Cause.NAN_TRAP, sg.Cause.OVERFLOW, sg.Cause.ROUNDING})


# --------------------------------------------------------------------------- the oracle: torch itself


def _tensors(lowered: sg.LoweredProgram, point: dict, dtype: str) -> list[torch.Tensor]:
    by_name = {s.name: v for s, v in point.items()}
    return [torch.tensor(by_name[s.name], dtype=TORCH_DTYPES[dtype], requires_grad=True) for s in lowered.symbols]


def _grad(target: torch.Tensor, tensors: list[torch.Tensor], create_graph: bool = False) -> list[torch.Tensor]:
    if not target.requires_grad:  # nothing on the graph reaches it: every derivative is 0
        return [torch.zeros_like(t) for t in tensors]
    return list(torch.autograd.grad(target, tensors, retain_graph=True, create_graph=create_graph,
                                    allow_unused=True, materialize_grads=True))


def torch_gradients(lowered: sg.LoweredProgram, point: dict, dtype: str, order: int) -> list[float] | None:
    """torch's derivatives of the lowered program in the entries' order (output by output,
    row-major; inputs in order, matrix inputs element by element), or None where the forward
    run itself raised."""
    with torch.enable_grad():
        tensors = _tensors(lowered, point, dtype)
        try:
            out = lowered(*tensors)
        except Exception as err:  # noqa: BLE001 - torch's own failure: symgrad records it
            note(f"the lowered program raised: {err}")
            return None
        if order == 2:
            first = _grad(out, tensors, create_graph=True)
            return [float(h) for g in first for h in _grad(g, tensors)]
        targets = [out] if out.ndim == 0 else [out[idx] for idx in np.ndindex(*out.shape)]
        values: list[float] = []
        for target in targets:
            for g in _grad(target, tensors):
                values += [float(v) for v in g.detach().reshape(-1)]
        return values


# --------------------------------------------------------------------------- helpers


def _mp(v) -> mpmath.mpf:
    if isinstance(v, float):
        return mpmath.mpf(v)
    if v in (sp.oo, -sp.oo):
        return mpmath.mpf(float(v))
    if v.is_finite is not True:
        return mpmath.mpf("nan")
    return mpmath.mpf(sp.Float(v, 40))


def close(auto: float | None, exact, rtol: float, atol: float) -> bool:
    """`auto` is the exact value within rtol (relative) + atol; infinities only equal themselves."""
    if auto is None or exact is None:
        return False
    with mpmath.workdps(40):
        a, e = _mp(float(auto)), _mp(exact)
        if mpmath.isnan(a) or mpmath.isnan(e):
            return False
        if mpmath.isinf(a) or mpmath.isinf(e):
            return a == e
        return abs(a - e) <= rtol * max(abs(a), abs(e)) + atol


def _same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _record(comparison: sg.Comparison) -> list[tuple]:
    auto = lambda v: "nan" if v is not None and math.isnan(v) else v  # noqa: E731
    return [(e.output, sp.sstr(e.wrt), e.grad_symbolic, e.one_sided, e.grad_executed, auto(e.grad_autograd),
             e.cause, e.also) for e in comparison.entries]


def _check(f, point: dict, *, dtype: str, branches: str = "if", order: int = 1) -> sg.Comparison | None:
    """The four properties of the module docstring, for one call."""
    note(f"point={point!r} dtype={dtype} branches={branches} order={order}")
    try:
        comparison = sg.compare(f, at=point, dtype=dtype, branches=branches, order=order)
    except sg.SymgradError as err:  # 1. a sentence is fine; anything else escapes and fails
        note(f"SymgradError: {type(err).__name__}: {err}")
        event(f"SymgradError {type(err).__name__}")
        return None
    note(comparison.lowered.source)
    assert str(comparison)
    event(f"cause {comparison.cause.id}")
    rtol, atol = comparison.rtol, TINY[dtype]
    oracle = torch_gradients(comparison.lowered, point, dtype, order)
    if oracle is not None:
        assert len(oracle) == len(comparison.entries), "the entries are not one per output and input element"
    for k, e in enumerate(comparison.entries):
        torch_value = None if oracle is None else oracle[k]
        note(f"{e.output} d/d{e.wrt}: cause={e.cause.id} also={[c.id for c in e.also]} symbolic={e.grad_symbolic!s} "
             f"executed={e.grad_executed!s} autograd={e.grad_autograd!r} torch={torch_value!r}")
        # 2. agree means autograd is the exact executed derivative
        if e.cause is sg.Cause.AGREE:
            assert close(e.grad_autograd, e.grad_executed, rtol, atol), "agree, but autograd != executed"
            if torch_value is not None:
                assert close(torch_value, e.grad_executed, rtol, atol), "agree, but torch's autograd != executed"
        # 3. structural causes: the executed derivative is what torch computes
        if oracle is not None and e.cause in STRUCTURAL and not FLOATING & set(e.also):
            assert close(torch_value, e.grad_executed, rtol, atol), (
                f"cause {e.cause.id} (structural), but grad_executed {e.grad_executed!s} is not torch's {torch_value!r}")
        if oracle is not None and e.grad_autograd is not None:
            assert _same_float(e.grad_autograd, torch_value), "grad_autograd is not torch's autograd"
    # 4. the same call twice gives the same record
    again = sg.compare(f, at=point, dtype=dtype, branches=branches, order=order)
    assert _record(again) == _record(comparison), "the same call gave a different record"
    return comparison


# --------------------------------------------------------------------------- properties


@settings(max_examples=60 * SCALE)
@given(case=programs(), branches=BRANCHES, dtype=DTYPES)
def test_programs(case, branches: str, dtype: str) -> None:
    """Programs with loops, branches and detach/item/no_grad at special points, order 1."""
    note(repr(case))
    _check(case.program, case.point, dtype=dtype, branches=branches)


@settings(max_examples=30 * SCALE)
@given(case=programs(max_statements=2, huge=False), branches=BRANCHES, dtype=DTYPES)
def test_programs_second_order(case, branches: str, dtype: str) -> None:
    """The same programs (shorter, no huge values), order 2: the Hessian."""
    note(repr(case))
    _check(case.program, case.point, dtype=dtype, branches=branches, order=2)


@settings(max_examples=30 * SCALE)
@given(case=programs(guarded=False, max_statements=3), branches=BRANCHES, dtype=DTYPES)
def test_unguarded_programs(case, branches: str, dtype: str) -> None:
    """Programs over the unguarded vocabulary (log of anything, 1/u, tan at a pole)."""
    note(repr(case))
    _check(case.program, case.point, dtype=dtype, branches=branches)


@st.composite
def _scalar_cases(draw) -> Case:
    expr = draw(expressions(max_leaves=5))
    if not expr.free_symbols:
        expr = expr + draw(st.sampled_from(SYMBOLS))
    point = {s: draw(st.one_of(st.sampled_from(SPECIAL_FLOATS), st.floats(-4, 4)))
             for s in sorted(expr.free_symbols, key=lambda s: s.name)}
    if len(point) == 2 and draw(st.booleans()):
        x, y = sorted(point, key=lambda s: s.name)
        point[y] = point[x]  # a tie
    return Case(expr, point)


@settings(max_examples=50 * SCALE)
@given(case=_scalar_cases(), branches=BRANCHES, dtype=DTYPES)
def test_expressions_second_order(case: Case, branches: str, dtype: str) -> None:
    """Scalar expressions at signed zeros, subnormals, huge values and ties, order 2."""
    note(repr(case))
    _check(case.expr, case.point, dtype=dtype, branches=branches, order=2)


@settings(max_examples=60 * SCALE)
@given(case=matrix_cases(), dtype=DTYPES)
def test_matrix_expressions(case, dtype: str) -> None:
    """MatMul, MatAdd, Transpose, HadamardProduct, elementwise functions, Trace, 1x1 products
    and whole matrix outputs, at signed zeros, subnormals and huge entries."""
    note(repr(case))
    _check(case.expr, case.point, dtype=dtype)


# --------------------------------------------------------------------------- found by the properties


def test_branch_that_keeps_its_target() -> None:
    """`t = Piecewise((t, t > 1), (t**2, True))`: the first branch has no code (was an
    IndentationError in the generated program)."""
    a, t = sp.symbols("a t")
    program = sg.Program([a], CodeBlock(Assignment(t, 2 * a), Assignment(t, sp.Piecewise((t, t > 1), (t * t, True)))), t)
    assert sg.compare(program, at={a: 1.0}).entries[0].grad_executed == 2
    assert sg.compare(program, at={a: 0.25}).entries[0].grad_executed == 2


def test_hessian_outside_the_domain_is_not_a_kink() -> None:
    """x*exp(-x) at -1e300: order 1 once said domain and order 2 "exactly on its corner" (kink,
    with executed nan), while exp(1e300) had no ball. It has one now (issue 21, item 1: exact at
    every magnitude), so both orders see the relu on its flat side: second derivative 0, and
    autograd's nan comes from the exp that overflowed float64."""
    x = sp.Symbol("x")
    (entry,) = sg.compare(sp.Max(0, x * sp.exp(-x)), at={x: -1e300}, order=2).entries
    assert entry.cause is sg.Cause.OVERFLOW and entry.grad_executed == 0 and entry.grad_symbolic == 0
    assert math.isnan(entry.grad_autograd) and entry.node == "exp(-x)"


def test_one_sided_slope_too_large_for_a_float() -> None:
    """Beside 0, the slope of sqrt(a) + log(a) is about 1/delta, a rational past the float
    range: rounding it to a small denominator went through a float (OverflowError)."""
    a = sp.Symbol("a")
    (entry,) = sg.compare(sp.sqrt(a) + sp.Piecewise((sp.log(a), a > 0), (0, True)), at={a: 0.0}).entries
    assert entry.cause is sg.Cause.DOMAIN and entry.grad_executed == sp.oo


def test_hessian_of_a_flattened_product() -> None:
    """order=2 rebuilds the executed path as one expression: `t*exp(a)/2` is Mul(1/2, t, exp(a))
    to SymPy, with no subtree `t*exp(a)` to substitute, so t stayed in it (KeyError)."""
    a, t = sp.symbols("a t")
    program = sg.Program([a], CodeBlock(Assignment(t, a), Assignment(t, t * sp.exp(a) / 2)), t)
    (entry,) = sg.compare(program, at={a: -1.0}, order=2).entries  # (a e**a / 2)'' = (2 + a) e**a / 2
    assert entry.cause is sg.Cause.AGREE
    assert abs(float(entry.grad_executed) - math.exp(-1) / 2) < 1e-15


def test_corner_of_an_elementwise_matrix_function() -> None:
    """abs(M) on its corner with an autograd NaN beside it: the check for a corner moved by
    rounding took the matrix argument for a number (AttributeError)."""
    M, w = sp.MatrixSymbol("M", 2, 2), sp.MatrixSymbol("w", 2, 1)
    comparison = sg.compare(w.T * M.applyfunc(sp.Abs) * w, at={M: [[0.0, 0.0], [0.0, 0.0]], w: [[0.0], [1e300]]})
    entry = comparison.entries[3]  # d/dM[1, 1]: one-sided slopes -+1e600, torch's 0 * inf
    assert entry.cause is sg.Cause.KINK and entry.grad_executed == 0 and math.isnan(entry.grad_autograd)


def test_float32_determinant_at_a_matrix_singular_in_float32() -> None:
    """symgrad's own torch state made float64 the default dtype for float32 runs too, and
    torch's det backward at a float32-singular matrix then raised ("Expected LU and B to have
    the same dtype"), reported as a graph break. In the user's state torch returns 0."""
    M = sp.MatrixSymbol("M", 2, 2)
    default = torch.get_default_dtype()
    comparison = sg.compare(sp.Determinant(M**2), at={M: [[0.0, 1.0], [1e-09, 1.0]]}, dtype="float32")
    assert torch.get_default_dtype() == default
    for e in comparison.entries:
        assert e.cause is not sg.Cause.GRAPH_BREAK and e.grad_autograd == 0.0 and e.autograd_error is None
    assert comparison.entries[0].cause is sg.Cause.ROUNDING  # exactly -2e-9: float32 lost it all


def test_huge_but_certain_magnitude_is_not_a_domain_error() -> None:
    """exp(1e300) is a finite ball at a precision raised by the bits of its argument (it was
    [+/- inf], and the report said exp(-x) was 'not defined in the real numbers'): the relu is on
    its flat side (slope 0), and autograd's nan is a 0*inf of an overflowed exp."""
    x = sp.Symbol("x")
    (entry,) = sg.compare(sp.Max(0, x * sp.exp(-x)), at={x: -1e300}).entries
    assert entry.cause is sg.Cause.OVERFLOW and entry.grad_executed == 0 and entry.grad_symbolic == 0
    assert math.isnan(entry.grad_autograd) and entry.node == "exp(-x)"


def test_hessian_with_a_detached_constant() -> None:
    """order=2 rebuilt `a**2*t*detach(0)` taking detach(0) for a number folded into the
    product, although the program computes it as a step of its own: t stayed (KeyError)."""
    a, t = sp.symbols("a t")
    program = sg.Program([a], CodeBlock(Assignment(t, a), Assignment(t, a**2 * t * sg.detach(2))), t)
    (entry,) = sg.compare(program, at={a: 1.0}, order=2).entries  # (2 a**3)'' = 12 a
    assert entry.cause is sg.Cause.AGREE and entry.grad_executed == 12


def test_determinant_at_a_singular_matrix() -> None:
    """d det(A)/dA is the cofactor matrix, singular A included; it was det(A) * inv(A).T, which
    is 0 * NaN there, and an executed NaN beside a symbolic NaN was reported as agree."""
    M = sp.MatrixSymbol("M", 2, 2)
    comparison = sg.compare(sp.Determinant(M), at={M: [[1.0, 2.0], [2.0, 4.0]]})
    assert [e.grad_executed for e in comparison.entries] == [4, -2, -2, 1]
    assert [e.grad_symbolic for e in comparison.entries] == [4, -2, -2, 1]
    assert all(e.cause is not sg.Cause.AGREE for e in comparison.entries)  # torch says 0 here
    (e00, *_) = sg.compare(sp.Determinant(M.applyfunc(sp.Abs)), at={M: [[0.0, 0.0], [0.0, 1.0]]}).entries
    assert e00.cause is sg.Cause.KINK and e00.grad_executed == 0
