"""The exact engine (python-flint balls, reverse accumulation over the DAG) checked against an
independent oracle: `sympy.diff`, evaluated by SymPy's own `evalf` at the exact binary point.

The engine never calls `sympy.diff` for values; these tests are where the two meet:

* every smooth op's exact partials against `sympy.diff` of the SymPy function it lowers,
* matrix expressions (products, sums, transposes, Hadamard products, elementwise functions,
  traces, determinants, inverses) against `sympy.diff` of their explicit element-by-element form,
* programs with loops against `sympy.diff` of the loop unrolled by hand,
* deep compositions at Python's default recursion limit, and precision that follows the digits
  needed (one rerun, not a doubling ladder).
"""

from __future__ import annotations

import math
import sys

import mpmath
import numpy as np
import pytest
from conftest import no_hang
import sympy as sp
from hypothesis import given, note, settings
from hypothesis import strategies as st
from sympy.codegen.ast import Assignment, CodeBlock, For

import symgrad as sg
from symgrad.program import exact as ex
from symgrad.program.ops import OPS
from symgrad.sides.symbolic import explicit

x, y, b, i = sp.symbols("x y b i")
XR = sp.Symbol("x", real=True)

SMOOTH = {  # op -> the SymPy function it computes
    "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "asin": sp.asin,
    "acos": sp.acos, "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "erf": sp.erf,
    "sqrt": sp.sqrt,
}
POINTS = (sp.Rational(3, 8), sp.Rational(-5, 7), sp.Rational(9, 4))


def _close(got: sp.Basic, want: sp.Basic, digits: int = 28) -> bool:
    got, want = sp.N(got, 40), sp.N(want, 40)
    return abs(got - want) <= sp.Float(10) ** (-digits) * max(1, abs(want))


@pytest.mark.parametrize("name", sorted(SMOOTH))
@pytest.mark.parametrize("at", POINTS, ids=str)
def test_each_smooth_op_has_sympys_derivative(name: str, at: sp.Rational) -> None:
    fn = SMOOTH[name]
    truth = sp.diff(fn(XR), XR).subs(XR, at)
    if not (truth.is_real and truth.is_finite and fn(at).is_real):
        pytest.skip(f"{name} is not real at {at}")
    with ex.working_precision(ex.START_PREC):
        u = ex.Q(int(at.p), int(at.q))
        op = OPS[name]
        value = op.value((u,), None)
        (partial,) = op.partials((u,), value, None)
        assert _close(ex.to_sympy(value), fn(at))
        assert _close(ex.to_sympy(partial), truth)


def test_pow_partials_are_sympys() -> None:
    base, expo = sp.Rational(7, 10), sp.Rational(3, 10)
    u, v = sp.symbols("u v", positive=True)
    with ex.working_precision(ex.START_PREC):
        args = (ex.Q(7, 10), ex.Q(3, 10))
        value = OPS["pow"].value(args, None)
        du, dv = OPS["pow"].partials(args, value, None)
    assert _close(ex.to_sympy(du), sp.diff(u**v, u).subs({u: base, v: expo}))
    assert _close(ex.to_sympy(dv), sp.diff(u**v, v).subs({u: base, v: expo}))


# --------------------------------------------------------------------------- matrices

N = 2
A = sp.MatrixSymbol("A", N, N)
B = sp.MatrixSymbol("B", N, N)
V = sp.MatrixSymbol("v", N, 1)


def _ewise(f):  # type: ignore[no-untyped-def]
    return lambda m: m.applyfunc(f)


_SQUARE_LEAVES = st.sampled_from([A, B, A.T, sp.Identity(N)])


def _square(depth: int) -> st.SearchStrategy[sp.MatrixExpr]:
    if depth == 0:
        return _SQUARE_LEAVES
    sub = _square(depth - 1)
    return st.one_of(
        _SQUARE_LEAVES,
        st.builds(lambda p, q: p * q, sub, sub),
        st.builds(lambda p, q: p + q, sub, sub),
        st.builds(lambda p, q: p - 2 * q, sub, sub),
        st.builds(lambda p: p.T, sub),
        st.builds(lambda p, q: sp.HadamardProduct(p, q), sub, sub),
        st.builds(lambda p, f: _ewise(f)(p), sub, st.sampled_from([sp.tanh, sp.sin, sp.exp, sp.atan])),
    )


def _scalar_of(m: sp.MatrixExpr, how: int) -> sp.Basic:
    """A scalar function of a square matrix expression (a 1x1 matrix or a scalar node)."""
    if how == 0:
        return sp.Trace(m)
    if how == 1:
        return sp.OneMatrix(1, N) * m * V
    if how == 2:
        return V.T * m.T * m * V / 2
    return sp.Determinant(m + 3 * sp.Identity(N))


MATRIX_VALUES = {
    A: [[0.5, -1.25], [0.75, 2.0]],
    B: [[-0.375, 1.5], [1.0, 0.25]],
    V: [[1.5], [-0.5]],
}


@settings(max_examples=25)
@given(m=_square(2), how=st.integers(0, 3))
def test_matrix_expressions_match_sympy_diff(m: sp.MatrixExpr, how: int) -> None:
    f = _scalar_of(m, how)
    note(f"f = {f}")
    inputs = sorted((s for s in f.free_symbols if isinstance(s, sp.MatrixSymbol)), key=lambda s: s.name)
    if not inputs:
        return
    at = {s: MATRIX_VALUES[s] for s in inputs}
    c = sg.compare(f, at=at)
    flat = explicit(f, inputs)
    values = {}
    elements = {}
    for s in inputs:
        for r in range(s.rows):
            for col in range(s.cols):
                e = sp.Symbol(f"{s.name}[{r}, {col}]", real=True)
                elements[(s.name, r, col)] = e
                values[e] = sp.Rational(MATRIX_VALUES[s][r][col])
    assert len(c.entries) == len(elements)
    for e in c.entries:
        s, (r, col) = e.wrt.parent, (int(e.wrt.i), int(e.wrt.j))
        truth = sp.diff(flat, elements[(s.name, r, col)]).xreplace(values)
        note(f"d/d{e.wrt}: engine {e.grad_symbolic}, sympy.diff {sp.N(truth, 20)}")
        assert e.grad_symbolic is not None and _close(e.grad_symbolic, truth, 25)
        assert e.cause is sg.Cause.AGREE


def test_inverse_and_det_gradients_match_sympy() -> None:
    f = sp.Trace(sp.Inverse(A) * B) + sp.Determinant(A)
    c = sg.compare(f, at={A: MATRIX_VALUES[A], B: MATRIX_VALUES[B]}, wrt=[A])
    flat = explicit(f, [A, B])
    values = {sp.Symbol(f"{s.name}[{r}, {k}]", real=True): sp.Rational(MATRIX_VALUES[s][r][k])
              for s in (A, B) for r in range(N) for k in range(N)}
    for e in c.entries:
        truth = sp.diff(flat, sp.Symbol(f"A[{int(e.wrt.i)}, {int(e.wrt.j)}]", real=True)).xreplace(values)
        assert e.grad_symbolic == sp.nsimplify(truth)  # rational matrices stay exact rationals
        assert e.grad_executed == e.grad_symbolic and e.ok


def test_softmax_cross_entropy_of_a_minibatch() -> None:
    batch, features, classes = 3, 4, 2
    X = sp.MatrixSymbol("X", batch, features)
    W = sp.MatrixSymbol("W", features, classes)
    rng = np.random.default_rng(1)
    labels = np.zeros((batch, classes))
    labels[np.arange(batch), rng.integers(0, classes, batch)] = 1
    Z = X * W
    loss = (sp.OneMatrix(1, batch) * (Z.applyfunc(sp.exp) * sp.OneMatrix(classes, 1)).applyfunc(sp.log)
            - sp.OneMatrix(1, batch) * sp.HadamardProduct(sp.ImmutableMatrix(labels), Z) * sp.OneMatrix(classes, 1))
    xv, wv = rng.standard_normal((batch, features)), rng.standard_normal((features, classes))
    c = sg.compare(loss, at={X: xv, W: wv}, wrt=[W])
    assert len(c.entries) == features * classes and c.ok
    # d loss / d W = X.T (softmax(XW) - Y), in float64 from numpy: the engine agrees to 1e-12.
    z = xv @ wv
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    want = xv.T @ (p - labels)
    got = np.array([float(e.grad_symbolic) for e in c.entries]).reshape(features, classes)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-14)
    assert "torch.tensor([[" in c.lowered.source  # the constant labels are one tensor


# --------------------------------------------------------------------------- programs and depth


@settings(max_examples=20)
@given(n=st.integers(1, 6), a=st.sampled_from([sp.sin, sp.cos, sp.tanh, sp.atan]),
       c=st.sampled_from([sp.Rational(1, 3), sp.Rational(-1, 2), sp.Integer(2)]),
       at=st.sampled_from([0.3, -0.7, 1.25]))
def test_loop_programs_match_sympy_diff_of_the_unrolled_loop(n: int, a, c, at: float) -> None:  # type: ignore[no-untyped-def]
    program = sg.Program(inputs=[x], body=CodeBlock(
        Assignment(b, x), For(i, sp.Range(n), CodeBlock(Assignment(b, c * b + a(b) * x)))), output=b)
    unrolled = XR
    for _ in range(n):
        unrolled = c * unrolled + a(unrolled) * XR
    truth = sp.diff(unrolled, XR).subs(XR, sp.Rational(at))
    comparison = sg.compare(program, at={x: at})
    (e,) = comparison.entries
    assert _close(e.grad_symbolic, truth, 25) and _close(e.grad_executed, truth, 25)
    assert _close(comparison.value_exact, unrolled.subs(XR, sp.Rational(at)), 25)


@pytest.mark.parametrize("depth", [100, 2000])
def test_deep_compositions_need_no_recursion_limit(depth: int) -> None:
    f = x
    for k in range(depth):
        f = sp.sin(f) + x / (k + 2)
    limit = sys.getrecursionlimit()
    c = sg.compare(f, at={x: 0.7})
    text = str(c)
    assert sys.getrecursionlimit() == limit
    assert c.ok and "more lines" in text
    # Forward accumulation in float64 from the recurrence itself: the engine's value agrees.
    v, dv = 0.7, 1.0
    for k in range(depth):
        v, dv = np.sin(v) + 0.7 / (k + 2), np.cos(v) * dv + 1 / (k + 2)
    assert abs(float(c.entries[0].grad_symbolic) - dv) < 1e-12


def test_unstable_recurrence_raises_the_precision_once_by_the_bits_lost() -> None:
    program = sg.Program(inputs=[x], body=CodeBlock(
        Assignment(b, x), For(i, sp.Range(300), CodeBlock(Assignment(b, 2 * b + sp.sin(b))))), output=b)
    c = sg.compare(program, at={x: 0.7})
    # Each step doubles the error: about 300 * log2(3) bits are lost, and certified back.
    assert c.exact_bits > 300
    (e,) = c.entries
    assert e.cause is sg.Cause.ROUNDING
    assert "bits" in e.explanation and "digits" in e.explanation
    # The exact value is the same at twice the precision: every reported digit was certain.
    with ex.working_precision(2 * c.exact_bits):
        from symgrad.sides.executed import run

        path = run(c.lowered, {"x": ex.from_float(0.7)})
        twice = ex.to_sympy(path.gradient("executed")[0])
    assert _close(e.grad_executed, twice, 25)


def test_too_much_precision_is_refused_before_the_work() -> None:
    program = sg.Program(inputs=[x], body=CodeBlock(
        Assignment(b, x), For(i, sp.Range(30_000), CodeBlock(Assignment(b, 2 * b + sp.sin(b))))), output=b)
    with pytest.raises(sg.PrecisionError, match="bits"):
        sg.compare(program, at={x: 0.7}, max_iterations=40_000)


def test_exact_zero_at_the_working_resolution() -> None:
    """sin(pi*x) at x = 1 is a ball around 0 at any precision: a tie, not an undecided error."""
    f = sp.Piecewise((x, sp.sin(sp.pi * x) > 0), (2 * x, True))
    c = sg.compare(f, at={x: 1.0})
    assert c.entries[0].grad_executed == 2


def test_a_magnitude_past_every_certifiable_precision_is_a_sentence() -> None:
    """b -> b/3 + exp(b)*x grows like a tower of exponentials: float64 overflows at the third
    pass; the exact value's digits would need about as many bits as its exponent has."""
    program = sg.Program(inputs=[x], body=CodeBlock(
        Assignment(b, x), For(i, sp.Range(4), CodeBlock(Assignment(b, b / 3 + sp.exp(b) * x)))), output=b)
    with pytest.raises(sg.PrecisionError, match="exp\\(exp\\(x\\)\\)"):
        sg.compare(program, at={x: 1.25})


@pytest.mark.parametrize("build, at", [
    (lambda u: sp.exp(sp.exp(u)), 1e8),
    (lambda u: sp.cos(sp.sinh(u)), 1e8),
    (lambda u: sp.sin(sp.exp(u)), 1e300),
    (lambda u: sp.tan(sp.sinh(u**2)), 1e300),
])
def test_huge_magnitudes_end_in_a_sentence_at_once(build, at) -> None:  # type: ignore[no-untyped-def]
    """Past what any working precision certifies, a PrecisionError says so at once: never a
    hang, a MemoryError, a RecursionError, or a `domain` verdict for a function defined there."""
    with no_hang("compare at a huge magnitude"), pytest.raises(sg.PrecisionError, match=r"exp\(exp\(x\)\)"):
        sg.compare(build(x), at={x: at})


def test_a_large_but_certifiable_magnitude_is_an_overflow() -> None:
    # sinh(x**2) at 1e300: sinh(1e600) needs about 2,000 bits, which Arb's unbounded exponents hold
    # (it was a PrecisionError while exp's argument reduction ran at the working precision). The
    # exact slope 2*x*cosh(x**2) is mpmath's, and x**2 is where float64 overflows.
    (e,) = sg.compare(sp.sinh(x**2), at={x: 1e300}).entries
    with mpmath.workprec(4000):
        want = 2 * mpmath.mpf(1e300) * mpmath.cosh(mpmath.mpf(1e300) ** 2)
        got = mpmath.mpf(sp.Float(e.grad_executed, 30)._mpf_)
        assert abs(got / want - 1) < mpmath.mpf(10) ** -25
    assert e.cause is sg.Cause.OVERFLOW and e.node == "x**2" and e.grad_autograd == math.inf
    c = sg.compare(sp.exp(sp.exp(x)), at={x: 10.0})
    assert c.entries[0].cause is sg.Cause.OVERFLOW and c.entries[0].grad_autograd == float("inf")
    # tanh(sinh(1e16)): sinh overflows float64; the exact slope is below every resolution (a
    # zero to the working precision), and torch's 0 * inf is nan.
    (e,) = sg.compare(sp.tanh(sp.sinh(x)), at={x: 1e16}).entries
    assert e.cause is sg.Cause.OVERFLOW and math.isnan(e.grad_autograd) and e.grad_executed.is_zero


def test_a_deep_expression_rebuilt_hits_the_cache_without_recursion_errors() -> None:
    """lower()'s cache compares an equal, rebuilt expression with SymPy's recursive `==`."""
    def build() -> sp.Basic:
        f = x
        for k in range(1500):
            f = sp.sin(f) + x / (k + 2)
        return f

    first, again = sg.lower(build()), sg.lower(build())
    assert first is again


@pytest.mark.parametrize("at", [(0.0, -750.0), (0.0, -800.0), (-800.0, 0.0)])
def test_a_ball_around_zero_says_how_many_bits_it_needs(at) -> None:  # type: ignore[no-untyped-def]
    """log(1 + 1.9e-326) at 192 bits is a ball around 0 of radius 1e-58 (it was a
    PrecisionError): below the working resolution it is a zero, and the derivatives, whose
    balls are tight, are certified."""
    y = sp.Symbol("y")
    c = sg.compare(sp.log(sp.exp(x) + sp.exp(y)), at={x: at[0], y: at[1]})
    assert c.ok and c.exact_bits <= 2000
    small = c.entries[1] if at[1] < at[0] else c.entries[0]
    assert 0 < small.grad_executed < sp.Float("1e-300")


def test_an_unstable_recurrence_past_float64s_range_is_certified() -> None:
    """b = 2*b + sin(b) run 3,000 times: its ball around 0 at 192 bits cannot say how many bits
    it lost (its midpoint is noise too); the reruns follow the estimates up to about 12,000 bits."""
    program = sg.Program(inputs=[x], body=CodeBlock(
        Assignment(b, x), For(i, sp.Range(3000), CodeBlock(Assignment(b, 2 * b + sp.sin(b))))), output=b)
    c = sg.compare(program, at={x: 0.7})
    assert 4000 < c.exact_bits <= ex.MAX_PREC
    assert c.entries[0].cause is sg.Cause.OVERFLOW  # b passes float64's range
