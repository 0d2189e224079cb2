"""Exact numbers for the symbolic and executed sides.

A value is a `fractions.Fraction` while every operation that produced it was rational (exact),
and an `mpmath.mpf` at the working precision once a transcendental function was involved.
NaN and infinities are `mpf` too; they mark points outside a function's domain or torch
formulas that blow up there. The working precision is mpmath's global context; callers raise
it (`working_precision`) until two evaluations agree on every digit reported.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from fractions import Fraction

import mpmath
import sympy as sp

Exact = Fraction | mpmath.mpf

# A rational whose numerator and denominator together pass this many bits is kept as an mpf:
# long loops over rational inputs would otherwise grow without bound (and cost quadratic time).
MAX_RATIONAL_BITS = 4096

ZERO = Fraction(0)
ONE = Fraction(1)
NAN = mpmath.mpf("nan")
INF = mpmath.mpf("inf")


@contextlib.contextmanager
def working_precision(dps: int) -> Iterator[None]:
    """Evaluate with `dps` decimal digits inside the block."""
    with mpmath.workdps(dps):
        yield


def dps() -> int:
    return int(mpmath.mp.dps)


def norm(v: Exact) -> Exact:
    """Keep rationals small enough that arithmetic on them stays cheap."""
    if isinstance(v, Fraction) and v.numerator.bit_length() + v.denominator.bit_length() > MAX_RATIONAL_BITS:
        return to_mpf(v)
    return v


def to_mpf(v: Exact | int | float) -> mpmath.mpf:
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return mpmath.mpf(v)


def from_float(x: float) -> Fraction:
    """The exact binary value of a float."""
    return Fraction(x)


def is_rational(v: Exact) -> bool:
    return isinstance(v, Fraction)


def is_finite(v: Exact) -> bool:
    return isinstance(v, Fraction) or bool(mpmath.isfinite(v))


def is_nan(v: Exact) -> bool:
    return not isinstance(v, Fraction) and bool(mpmath.isnan(v))


def sign(v: Exact) -> int:
    """-1, 0 or 1; NaN has sign 0 here, so test `is_nan` first where it matters."""
    if isinstance(v, Fraction):
        return (v > 0) - (v < 0)
    if mpmath.isnan(v):
        return 0
    return int(mpmath.sign(v))


def is_zero(v: Exact) -> bool:
    return sign(v) == 0 and not is_nan(v)


def _lift(a: Exact, b: Exact) -> tuple[Exact, Exact]:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a, b
    return to_mpf(a), to_mpf(b)


def add(a: Exact, b: Exact) -> Exact:
    a, b = _lift(a, b)
    return norm(a + b)


def sub(a: Exact, b: Exact) -> Exact:
    a, b = _lift(a, b)
    return norm(a - b)


def mul(a: Exact, b: Exact) -> Exact:
    # 0 times anything finite is an exact 0, as in the mathematics.
    if isinstance(a, Fraction) and a == 0 and is_finite(b):
        return ZERO
    if isinstance(b, Fraction) and b == 0 and is_finite(a):
        return ZERO
    a, b = _lift(a, b)
    return norm(a * b)


def neg(a: Exact) -> Exact:
    return -a


def div(a: Exact, b: Exact) -> Exact:
    """a / b with IEEE-like results at b = 0 (inf or nan), the way torch computes it."""
    if is_zero(b):
        if is_zero(a) or is_nan(a):
            return NAN
        # An exact zero carries no sign; torch's +0.0 divides to +inf.
        return INF if sign(a) > 0 else -INF
    a, b = _lift(a, b)
    return norm(a / b)


def lt(a: Exact, b: Exact) -> bool:
    a, b = _lift(a, b)
    return bool(a < b)


def cmp(a: Exact, b: Exact) -> int:
    """-1, 0 or 1 comparing a with b (exact for rationals)."""
    return sign(sub(a, b))


def ipow(a: Exact, n: int) -> Exact:
    """a**n for an integer n (exact for rationals; inf at a = 0 for n < 0)."""
    if n < 0:
        return div(ONE, ipow(a, -n))
    if isinstance(a, Fraction):
        return norm(a**n)
    return a**n


def _exact_root(q: Fraction, k: int) -> Fraction | None:
    """The k-th root of a non-negative rational when it is rational."""
    if q < 0:
        return None
    roots = []
    for part in (q.numerator, q.denominator):
        r = round(part ** (1.0 / k)) if part < 2**1000 else _iroot(part, k)
        for c in (r - 1, r, r + 1):
            if c >= 0 and c**k == part:
                roots.append(c)
                break
        else:
            return None
    return Fraction(roots[0], roots[1])


def _iroot(n: int, k: int) -> int:
    lo, hi = 0, 1 << (n.bit_length() // k + 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid**k <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo


def rpow(a: Exact, e: Fraction) -> Exact:
    """a**e for a rational exponent; NaN for a negative base and a non-integer exponent."""
    if e.denominator == 1:
        return ipow(a, int(e))
    if sign(a) < 0 or is_nan(a):
        return NAN
    if isinstance(a, Fraction):
        root = _exact_root(a, e.denominator)
        if root is not None:
            return ipow(root, e.numerator)
    if is_zero(a):
        return ZERO if e > 0 else INF
    return to_mpf(a) ** (mpmath.mpf(e.numerator) / e.denominator)


def gpow(a: Exact, b: Exact) -> Exact:
    """a**b for a general exponent, as real numbers (NaN where that is not real)."""
    if isinstance(b, Fraction):
        return rpow(a, b)
    if is_zero(a):
        return ZERO if sign(b) > 0 else (ONE if is_zero(b) else INF)
    if sign(a) < 0:
        return NAN
    return to_mpf(a) ** b


def log(a: Exact) -> Exact:
    if isinstance(a, Fraction) and a == 1:
        return ZERO
    if is_zero(a):
        return -INF
    if sign(a) < 0 or is_nan(a):
        return NAN
    return mpmath.log(to_mpf(a))


def from_sympy(c: sp.Basic) -> Exact:
    """The exact value of a SymPy number (a constant expression is evaluated at working precision)."""
    if isinstance(c, sp.Integer):
        return Fraction(int(c))
    if isinstance(c, sp.Rational):
        return Fraction(int(c.p), int(c.q))
    if isinstance(c, sp.Float):
        # A Float is taken at its own precision: its exact binary value.
        return _float_fraction(c)
    if c is sp.nan:
        return NAN
    if c is sp.oo:
        return INF
    if c is sp.zoo or c is -sp.oo:
        return -INF if c is -sp.oo else NAN
    value = sp.N(c, dps() + 10)
    if not value.is_real:
        return NAN
    return mpmath.mpf(value._to_mpmath(mpmath.mp.prec + 40))


def _float_fraction(c: sp.Float) -> Fraction:
    sgn, man, exp, _ = c._mpf_
    if man == 0:
        return ZERO
    v = Fraction(man) * (Fraction(2) ** exp)
    return -v if sgn else v


def to_sympy(v: Exact) -> sp.Number:
    """A SymPy number: a Rational when exact, else a Float carrying the working precision."""
    if isinstance(v, Fraction):
        return sp.Rational(v.numerator, v.denominator)
    if mpmath.isnan(v):
        return sp.nan
    if mpmath.isinf(v):
        return sp.oo if v > 0 else -sp.oo
    return sp.Float(v, max(dps() - 5, 20))


def to_float(v: Exact) -> float:
    if isinstance(v, Fraction):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    return float(v)


def agree(a: Exact, b: Exact, digits: int) -> bool:
    """True when a and b agree to `digits` significant digits (NaN agrees with NaN)."""
    if is_nan(a) or is_nan(b):
        return is_nan(a) and is_nan(b)
    if not (is_finite(a) and is_finite(b)):
        return to_mpf(a) == to_mpf(b)
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a == b
    fa, fb = to_mpf(a), to_mpf(b)
    scale = max(abs(fa), abs(fb))
    if scale == 0:
        return True
    return bool(abs(fa - fb) <= scale * mpmath.mpf(10) ** (-digits))
