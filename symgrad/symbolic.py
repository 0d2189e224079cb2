"""The mathematics side: the derivative of the function the user wrote, evaluated exactly.

For a bare expression away from any kink, jump or threshold this is `sympy.diff` of the
expression (with `detach`, `item`, `no_grad` as the identity), evaluated node by node at the
exact point: SymPy is the oracle. For a program it is the derivative of the executed path with
cut steps as the identity, which is the same function (DESIGN.md section 4).

Where a branch, loop test or non-smooth primitive sits exactly on its threshold, SymPy's own
value there is a convention (`Heaviside(0) = 1/2`, `sign(0) = 0`), not mathematics: instead the
function is followed from just left and just right of the point (`executed.beside`), giving the
one-sided limits and derivatives. Equal limits and equal slopes: the derivative exists; equal
limits, different slopes: a kink (`one_sided = (left, right)`); different limits: a jump.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import mpmath
import numpy as np
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

import sympy as sp

from . import _exact as ex
from .executed import Path, PathStep, Side, beside, domain_violation
from .lowering import LoweredProgram
from .primitives import strip
from .rules import exact_eval

Kind = Literal["smooth", "kink", "jump", "domain", "unknown"]

# Expressions with more operations than this are differentiated over the path instead of with
# sympy.diff, whose result swells on deep expressions (DESIGN.md section 4).
SYMPY_DIFF_MAX_OPS = 400


@dataclass(frozen=True, slots=True)
class SymbolicSide:
    """The symbolic derivative with respect to one input."""

    grad: ex.Exact | None
    kind: Kind
    one_sided: tuple[ex.Exact, ex.Exact] | None
    expression: sp.Basic | None  # the derivative as SymPy shows it, when computed with sympy.diff
    left: Side | None = None
    right: Side | None = None
    violation: PathStep | None = None


@dataclass(frozen=True)
class Derivatives:
    """sympy.diff of the mathematics with respect to each input.

    `exprs[k]` is a scalar expression for a scalar input, and a matrix of element-by-element
    derivatives for a matrix input (SymPy's matrix calculus is cross-checked against these:
    it has returned wrong results, sympy issues 15614, 23492, 30527). `shown[k]` is the
    derivative as SymPy's matrix calculus writes it (`X.T*(X*w - y)`), when the check passed.
    """

    exprs: tuple[Any, ...]
    shown: tuple[sp.Basic | None, ...]
    elements: tuple[tuple[str, Any], ...]  # (input name, matrix of element symbols)


def _element_symbols(m: sp.MatrixSymbol) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix(m.rows, m.cols, lambda i, j: sp.Symbol(f"{m.name}[{i}, {j}]", real=True))


def explicit(expr: sp.Basic, matrices: Any) -> sp.Basic:
    """`expr` with every MatrixSymbol written out element by element (real element symbols) and
    every matrix operation carried out on explicit matrices; a 1x1 matrix becomes its entry."""
    if not matrices:
        return expr
    table = {m: _element_symbols(m) for m in matrices}
    out = _write_out(expr, table, {})
    if isinstance(out, sp.MatrixBase) and out.shape == (1, 1):
        out = out[0, 0]
    return out


def _write_out(e: sp.Basic, table: dict[Any, Any], memo: dict[Any, Any]) -> Any:
    if e in memo:
        return memo[e]
    if isinstance(e, sp.MatrixSymbol):
        out = table.get(e, e)
    elif isinstance(e, (sp.Identity, sp.ZeroMatrix, sp.OneMatrix)):
        out = e.as_explicit()
    elif not e.args:
        out = e
    else:
        args = [_write_out(a, table, memo) for a in e.args]
        if isinstance(e, sp.MatMul):
            out = args[0]
            for a in args[1:]:
                out = out * a
        elif isinstance(e, sp.MatAdd):
            out = args[0]
            for a in args[1:]:
                out = out + a
        elif isinstance(e, sp.Transpose):
            out = args[0].T
        elif isinstance(e, sp.Inverse):
            out = args[0].inv()
        elif isinstance(e, sp.MatPow):
            out = args[0] ** args[1]
        elif isinstance(e, sp.Trace):
            out = args[0].trace()
        elif isinstance(e, sp.Determinant):
            out = args[0].det()
        elif isinstance(e, sp.HadamardProduct):
            out = args[0]
            for a in args[1:]:
                out = out.multiply_elementwise(a)
        elif isinstance(e, ElementwiseApplyFunction):
            out = args[1].applyfunc(e.function) if isinstance(args[1], sp.MatrixBase) else e
        elif isinstance(e, MatrixElement):
            out = args[0][int(e.i), int(e.j)]
        else:
            out = e.func(*args)
    if isinstance(out, sp.MatrixBase):
        out = sp.ImmutableMatrix(out)
    memo[e] = out
    return out


def derivative_expressions(lowered: LoweredProgram) -> Derivatives | None:
    """The symbolic derivatives, or None for programs and expressions too large for sympy.diff."""
    norm = lowered.normalized
    if norm.is_program:
        return None
    return _derivatives(norm.output, norm.inputs)


@functools.lru_cache(maxsize=256)
def _derivatives(output: sp.Basic, inputs: tuple[sp.Basic, ...]) -> Derivatives | None:
    if sp.count_ops(output) > SYMPY_DIFF_MAX_OPS:
        return None
    math = strip(output)
    matrices = [s for s in inputs if isinstance(s, sp.MatrixSymbol)]
    flat = explicit(math, matrices)
    exprs: list[Any] = []
    shown: list[sp.Basic | None] = []
    for s in inputs:
        if isinstance(s, sp.MatrixSymbol):
            elems = _element_symbols(s)
            d = sp.ImmutableMatrix(s.rows, s.cols, lambda i, j: sp.diff(flat, elems[i, j]))
            exprs.append(d)
            shown.append(_matrix_calculus(math, s, d, matrices))
        else:
            exprs.append(sp.diff(flat, s))
            shown.append(sp.diff(math, s) if not matrices else None)
    elements = tuple((m.name, _element_symbols(m)) for m in matrices)
    return Derivatives(tuple(exprs), tuple(shown), elements)


def _matrix_calculus(math: sp.Basic, m: sp.MatrixSymbol, elementwise: sp.ImmutableMatrix, matrices: Any) -> sp.Basic | None:
    """SymPy's matrix-calculus derivative, if it agrees with the element-by-element one."""
    if isinstance(math, sp.MatrixExpr) and math.shape != (1, 1):
        return None
    try:
        d = sp.diff(math, m)
        written = explicit(d, matrices)
        if isinstance(written, sp.MatrixBase) and written.shape == elementwise.shape:
            if all(sp.simplify(a - b) == 0 for a, b in zip(written, elementwise)):
                return d
    except Exception:  # SymPy's matrix calculus has gaps; the explicit derivative stands alone
        return None
    return None


def point_values(lowered: LoweredProgram, derivs: Derivatives, point: dict[str, Any]) -> dict[sp.Symbol, ex.Exact]:
    values: dict[sp.Symbol, ex.Exact] = {}
    for s, name in zip(lowered.normalized.inputs, lowered.inputs):
        if not isinstance(s, sp.MatrixSymbol):
            values[s] = point[name]
    for m_name, elems in derivs.elements:
        name = lowered.inputs[[s.name for s in lowered.normalized.inputs].index(m_name)]
        for (i, j), sym in zip(np.ndindex(*elems.shape), elems):
            values[sym] = point[name][i, j]
    return values


def symbolic_side(lowered: LoweredProgram, path: Path, point: dict[str, Any], k: int, idx: tuple[int, int] | None,
                  derivs: Derivatives | None, max_iterations: int, seed: Any = None) -> SymbolicSide:
    """The derivative of the mathematics with respect to input k (element idx of a matrix)."""
    violation = domain_violation(path)
    if violation is not None:
        return SymbolicSide(None, "domain", None, None, violation=violation)
    expr = None
    if derivs is not None:
        expr = derivs.exprs[k] if idx is None else derivs.exprs[k][idx]
    shown = derivs.shown[k] if derivs is not None else None
    if not path.ties:
        if expr is not None:
            value = exact_eval(expr, point_values(lowered, derivs, point))  # type: ignore[arg-type]
            if not ex.is_finite(value):
                # SymPy's formula is undefined here (0/0, log 0) although the path's is not.
                return SymbolicSide(None, "domain", None, shown if shown is not None else expr)
            return SymbolicSide(value, "smooth", None, shown if shown is not None else expr)
        g = path.gradient("math", seed)[k]
        return SymbolicSide(g[idx] if idx is not None else g, "smooth", None, None)
    name = lowered.inputs[k]
    left = beside(lowered, point, name, -1, max_iterations, idx, seed)
    right = beside(lowered, point, name, +1, max_iterations, idx, seed)
    if left is None or right is None:
        return SymbolicSide(None, "unknown", None, expr, left, right)
    f0 = path.value if seed is None else ex.total(ex.ewise(ex.mul, path.value, seed))
    if not (same(left.value, f0) and same(right.value, f0)):
        return SymbolicSide(None, "jump", None, expr, left, right)
    if same(left.derivative, right.derivative):
        return SymbolicSide(left.derivative, "smooth", None, expr, left, right)
    return SymbolicSide(None, "kink", (left.derivative, right.derivative), expr, left, right)


def same(a: ex.Exact, b: ex.Exact) -> bool:
    """Exactly equal for rationals; equal to all but the last few working digits otherwise.
    Two values both below the working precision's resolution are the same zero (sin(pi) is a
    tiny non-zero number at any finite precision)."""
    if not (ex.is_rational(a) and ex.is_rational(b)) and ex.is_finite(a) and ex.is_finite(b):
        tiny = mpmath.mpf(10) ** (-(ex.dps() - 15))
        if abs(ex.to_mpf(a)) < tiny and abs(ex.to_mpf(b)) < tiny:
            return True
    return ex.agree(a, b, max(ex.dps() - 10, 15))
