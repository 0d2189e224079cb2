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
from typing import Literal

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


def derivative_expressions(lowered: LoweredProgram) -> tuple[sp.Basic, ...] | None:
    """sympy.diff of the mathematics with respect to each input, or None for programs and
    expressions too large for it."""
    norm = lowered.normalized
    if norm.is_program:
        return None
    return _derivatives(norm.output, norm.inputs)


@functools.lru_cache(maxsize=256)
def _derivatives(output: sp.Basic, inputs: tuple[sp.Symbol, ...]) -> tuple[sp.Basic, ...] | None:
    if sp.count_ops(output) > SYMPY_DIFF_MAX_OPS:
        return None
    math = strip(output)
    return tuple(sp.diff(math, s) for s in inputs)


def symbolic_side(lowered: LoweredProgram, path: Path, point: dict[str, ex.Exact], k: int,
                  expressions: tuple[sp.Basic, ...] | None, max_iterations: int) -> SymbolicSide:
    """The derivative of the mathematics with respect to input k at the point."""
    violation = domain_violation(path)
    if violation is not None:
        return SymbolicSide(None, "domain", None, None, violation=violation)
    expr = expressions[k] if expressions is not None else None
    if not path.ties:
        if expr is not None:
            values = {s: point[name] for s, name in zip(lowered.normalized.inputs, lowered.inputs)}
            value = exact_eval(expr, values)
            if not ex.is_finite(value):
                # SymPy's formula is undefined here (0/0, log 0) although the path's is not.
                return SymbolicSide(None, "domain", None, expr)
            return SymbolicSide(value, "smooth", None, expr)
        return SymbolicSide(path.gradient("math")[k], "smooth", None, None)
    name = lowered.inputs[k]
    left = beside(lowered, point, name, -1, max_iterations)
    right = beside(lowered, point, name, +1, max_iterations)
    if left is None or right is None:
        return SymbolicSide(None, "unknown", None, expr, left, right)
    f0 = path.value
    if not (same(left.value, f0) and same(right.value, f0)):
        return SymbolicSide(None, "jump", None, expr, left, right)
    if same(left.derivative, right.derivative):
        return SymbolicSide(left.derivative, "smooth", None, expr, left, right)
    return SymbolicSide(None, "kink", (left.derivative, right.derivative), expr, left, right)


def same(a: ex.Exact, b: ex.Exact) -> bool:
    """Exactly equal for rationals; equal to all but the last few working digits otherwise."""
    return ex.agree(a, b, max(ex.dps() - 10, 15))
