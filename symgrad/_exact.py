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
    if isinstance(c, (sp.MatrixBase, sp.MatrixExpr)):
        explicit = c.as_explicit()
        return mat([[from_sympy(explicit[i, j]) for j in range(explicit.cols)] for i in range(explicit.rows)])  # type: ignore[return-value]
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
    # Reported to at most 60 digits: every digit shown is certain, and none more are needed.
    return sp.Float(v, min(max(dps() - 5, 20), 60))


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


# --------------------------------------------------------------------------- matrices
# A matrix value is a 2-D numpy array of exact numbers (dtype=object); scalars broadcast.

import numpy as np  # noqa: E402


def is_mat(v: object) -> bool:
    return isinstance(v, np.ndarray)


def mat(rows: list[list[Exact]]) -> np.ndarray:
    out = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            out[i, j] = v
    return out


def full(shape: tuple[int, int], value: Exact) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.fill(value)
    return out


def eye(n: int) -> np.ndarray:
    out = full((n, n), ZERO)
    for i in range(n):
        out[i, i] = ONE
    return out


def shape_of(*values: object) -> tuple[int, int] | None:
    for v in values:
        if isinstance(v, np.ndarray):
            return v.shape  # type: ignore[return-value]
    return None


def ewise(fn, *args):  # type: ignore[no-untyped-def]
    """Apply a scalar function elementwise, broadcasting scalars over matrices."""
    shape = shape_of(*args)
    if shape is None:
        return fn(*args)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = fn(*(a[idx] if isinstance(a, np.ndarray) else a for a in args))
    return out


def accumulate(a: object, b: object) -> object:
    """a + b for adjoints: scalars, matrices, or a matrix adjoint summed into a scalar."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return ewise(add, a, b)
    if isinstance(a, np.ndarray):
        return ewise(add, a, b)
    if isinstance(b, np.ndarray):
        return add(a, total(b))  # a scalar broadcast over a matrix collects all its adjoints
    return add(a, b)  # type: ignore[arg-type]


def total(v: object) -> Exact:
    if not isinstance(v, np.ndarray):
        return v  # type: ignore[return-value]
    s: Exact = ZERO
    for x in v.flat:
        s = add(s, x)
    return s


def all_zero(v: object) -> bool:
    if isinstance(v, np.ndarray):
        return all(isinstance(x, Fraction) and x == 0 for x in v.flat)
    return isinstance(v, Fraction) and v == 0


def elements(v: object) -> list[Exact]:
    return list(v.flat) if isinstance(v, np.ndarray) else [v]  # type: ignore[list-item]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, k = a.shape
    k2, m = b.shape
    if k != k2:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not multiply")
    out = np.empty((n, m), dtype=object)
    for i in range(n):
        for j in range(m):
            s: Exact = ZERO
            for t in range(k):
                s = add(s, mul(a[i, t], b[t, j]))
            out[i, j] = s
    return out


def transpose(a: np.ndarray) -> np.ndarray:
    return a.T.copy()


def inverse(a: np.ndarray) -> np.ndarray:
    """Gauss-Jordan elimination in exact arithmetic; NaN entries for a singular matrix."""
    n = a.shape[0]
    m = np.empty((n, 2 * n), dtype=object)
    m[:, :n] = a
    m[:, n:] = eye(n)
    for col in range(n):
        pivot = next((r for r in range(col, n) if not is_zero(m[r, col])), None)
        if pivot is None:
            return full((n, n), NAN)
        m[[col, pivot]] = m[[pivot, col]]
        p = m[col, col]
        for j in range(2 * n):
            m[col, j] = div(m[col, j], p)
        for r in range(n):
            if r != col and not is_zero(m[r, col]):
                f = m[r, col]
                for j in range(2 * n):
                    m[r, j] = sub(m[r, j], mul(f, m[col, j]))
    return m[:, n:].copy()


def det(a: np.ndarray) -> Exact:
    n = a.shape[0]
    m = a.copy()
    result: Exact = ONE
    for col in range(n):
        pivot = next((r for r in range(col, n) if not is_zero(m[r, col])), None)
        if pivot is None:
            return ZERO
        if pivot != col:
            m[[col, pivot]] = m[[pivot, col]]
            result = neg(result)
        p = m[col, col]
        result = mul(result, p)
        for r in range(col + 1, n):
            f = div(m[r, col], p)
            for j in range(col, n):
                m[r, j] = sub(m[r, j], mul(f, m[col, j]))
    return result


def trace(a: np.ndarray) -> Exact:
    s: Exact = ZERO
    for i in range(min(a.shape)):
        s = add(s, a[i, i])
    return s


def matpow(a: np.ndarray, n: int) -> np.ndarray:
    if n < 0:
        return matpow(inverse(a), -n)
    out = eye(a.shape[0])
    for _ in range(n):
        out = matmul(out, a)
    return out
