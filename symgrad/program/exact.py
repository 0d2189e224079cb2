"""The exact engine: python-flint numbers and matrices (DESIGN.md section 4).

A value is an `fmpq` (an exact rational, FLINT) while every operation that produced it was
rational, and an `arb` (an Arb ball: a midpoint and a radius that certainly contains the true
value) once a transcendental function was involved. NaN and infinities are `arb`s too; they mark
points outside a function's domain or torch formulas that blow up there.

The working precision is Arb's context (`flint.ctx.prec`, in bits). It is set for the duration
of a call by `working_precision`, under a process-wide lock, so concurrent calls cannot change
each other's digits. A ball says itself how many bits it lost (`lost_bits`); callers rerun once
at a precision raised by that much, instead of doubling until two runs agree.

A comparison that a ball cannot decide (its ball contains the threshold) is counted
(`undecided()`): the caller raises the precision; if a wider precision still cannot decide, the
value equals the threshold to the working resolution and is treated as a tie (`sin(pi)` is 0).

Matrices are numpy arrays of dtype object holding these scalars; products, inverses and
determinants go through `fmpq_mat` (all entries rational) or `arb_mat` (FLINT's matrix
routines), never through a Python loop per element.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache
from typing import Any

import flint
import numpy as np
import sympy as sp
from flint import arb, arb_mat, fmpq, fmpq_mat, fmpz

Exact = fmpq | arb

# A rational whose numerator and denominator together pass this many bits is kept as a ball:
# long loops over rational inputs would otherwise grow without bound (and cost quadratic time).
MAX_RATIONAL_BITS = 1 << 18
# Where every exact computation starts (bits; about 38 decimal digits), and the most it may rise to.
START_PREC = 192
# Rational powers a**(p/q) are tried for an exact rational root only for q up to this (a float
# exponent such as 0.3 has q = 2**54: no rational number has such a root but 0 and 1).
MAX_EXACT_ROOT = 64
MAX_PREC = 40_000

ZERO = fmpq(0)
ONE = fmpq(1)
HALF = fmpq(1, 2)
NAN = arb.nan()
INF = arb.pos_inf()
NEG_INF = arb.neg_inf()
INDETERMINATE = arb(0, arb.pos_inf())  # a ball that says nothing about its value

LOCK = threading.RLock()


class NegativeZero(fmpq):
    """IEEE's -0.0: equal to 0 in every comparison and in the mathematics, but torch's result
    depends on its sign in a few places (sqrt's slope at -0.0 is -inf, atan2(-0.0, -1) = -pi,
    1/-0.0 = -inf). Arithmetic on it returns plain rationals; the functions below keep the sign
    where IEEE does (negation, products and quotients of zeros, odd functions, sqrt)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "-0"


NEG_ZERO = NegativeZero(0)


def is_neg_zero(v: Any) -> bool:
    return type(v) is NegativeZero


def _sign_bit(v: Any) -> int:
    """-1 or 1, as IEEE's sign bit (a zero's sign is its own)."""
    if type(v) is NegativeZero:
        return -1
    return -1 if sign(v) < 0 else 1


def _zero(negative: bool) -> fmpq:
    return NEG_ZERO if negative else ZERO


class _State(threading.local):
    undecided: int = 0
    held: tuple[np.ndarray, ...] = ()  # matrices whose numbers a new product shares (`sharing`)
    sharing: bool = False  # inside `sharing`
    made: list[Any] | None = None  # (kind and precision, a, b, a @ b) of the large products made (`remembering`)


_state = _State()


def Q(p: int | fmpz | float | Fraction, q: int | fmpz = 1) -> fmpq:
    """An exact rational p/q (a float gives its exact binary value)."""
    if type(p) is int:
        return fmpq(p, q)
    if isinstance(p, float):
        return from_float(p) / q
    if isinstance(p, Fraction):
        return fmpq(p.numerator, p.denominator * q)
    return fmpq(p, q)


@contextlib.contextmanager
def working_precision(bits: int) -> Iterator[None]:
    """Evaluate with `bits` bits of working precision inside the block (the caller's precision,
    and Arb's, are restored afterwards)."""
    with LOCK:
        before = flint.ctx.prec
        flint.ctx.prec = int(bits)
        try:
            yield
        finally:
            flint.ctx.prec = before


def prec() -> int:
    return int(flint.ctx.prec)


def digits() -> int:
    """The working precision in decimal digits."""
    return int(prec() * 0.30103)


def reset_undecided() -> None:
    _state.undecided = 0


def undecided() -> int:
    """How many comparisons since `reset_undecided()` a ball could not decide."""
    return _state.undecided


def is_rational(v: Any) -> bool:
    return isinstance(v, fmpq)


def is_ball(v: Any) -> bool:
    return isinstance(v, arb)


def norm(v: Exact) -> Exact:
    """Keep rationals small enough that arithmetic on them stays cheap."""
    if isinstance(v, fmpq) and v.height_bits() > MAX_RATIONAL_BITS // 2:
        return arb(v)
    return v


def to_real(v: Exact | int | float | Fraction) -> arb:
    """The value as a ball at the working precision."""
    if isinstance(v, arb):
        return v
    if isinstance(v, fmpq):
        return arb(v)
    if isinstance(v, Fraction):
        return arb(fmpq(v.numerator, v.denominator))
    if isinstance(v, float):
        if math.isnan(v):
            return NAN
        if math.isinf(v):
            return INF if v > 0 else NEG_INF
        return arb(from_float(v))
    return arb(v)


def from_float(x: float) -> fmpq:
    """The exact binary value of a float (-0.0 keeps its sign: `NEG_ZERO`)."""
    if x == 0 and math.copysign(1.0, x) < 0:
        return NEG_ZERO
    p, q = float(x).as_integer_ratio()
    return fmpq(p, q)


def from_floats(a: np.ndarray) -> np.ndarray:
    """`from_float` of every element of a float array, as an array of the same shape (one pass
    over the floats, no Python call per element)."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    out = np.empty(flat.size, dtype=object)
    # (a zero's sign read in the same pass: no mask arrays, each a numpy call on a cold cache)
    out[:] = [fmpq(*x.as_integer_ratio()) if x or math.copysign(1.0, x) > 0 else NEG_ZERO for x in flat.tolist()]
    return out.reshape(np.shape(a))


def from_fraction(v: Fraction) -> fmpq:
    return fmpq(v.numerator, v.denominator)


def is_finite(v: Any) -> bool:
    return isinstance(v, fmpq) or bool(v.is_finite())


def is_nan(v: Any) -> bool:
    return not isinstance(v, fmpq) and bool(v.is_nan())


def sign(v: Exact) -> int:
    """-1, 0 or 1; NaN has sign 0 here, so test `is_nan` first where it matters. A ball that
    contains 0 but is not exactly 0 cannot be decided: it counts as undecided and as 0."""
    if isinstance(v, fmpq):
        return (v > 0) - (v < 0)
    if v.is_nan():
        return 0
    if v > 0:
        return 1
    if v < 0:
        return -1
    if not v.is_zero():
        _state.undecided += 1
    return 0


def is_zero(v: Exact) -> bool:
    return sign(v) == 0 and not is_nan(v)


def is_exact_zero(v: Any) -> bool:
    return isinstance(v, fmpq) and v == 0


def _lift(a: Exact, b: Exact) -> tuple[Exact, Exact]:
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        return a, b
    return to_real(a), to_real(b)


def _infinite(v: arb) -> arb:
    """An infinity plus a finite ball is that infinity, exactly: Arb keeps the finite ball's radius
    (inf + [1/3 +/- 1e-58] is [inf +/- 1e-58]), which reads as a ball that lost every bit, so a
    pole beside a value that is not a dyadic rational (1/x + 1/3 at 0) asked for more precision
    forever instead of being the pole it is. An infinite radius still says nothing."""
    if v.is_finite() or v.is_nan() or v.rad().is_zero() or not v.rad().is_finite():
        return v
    return v.mid()


def add(a: Exact, b: Exact) -> Exact:
    if type(a) is arb and type(b) is arb:  # two balls: the last line's result, sooner
        return _infinite(a + b)
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        if type(a) is NegativeZero and type(b) is NegativeZero:
            return NEG_ZERO  # -0 + -0 = -0; any other sum of zeros is +0
        return norm(a + b)
    return _infinite(to_real(a) + to_real(b))


def sub(a: Exact, b: Exact) -> Exact:
    if type(a) is arb and type(b) is arb:  # two balls: the last line's result, sooner
        return _infinite(a - b)
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        if type(a) is NegativeZero and b == 0 and type(b) is not NegativeZero:
            return NEG_ZERO  # -0 - +0 = -0
        return norm(a - b)
    return _infinite(to_real(a) - to_real(b))


def mul(a: Exact, b: Exact) -> Exact:
    if type(a) is arb and type(b) is arb:  # two balls: the last line's result, sooner
        return a * b
    # 0 times anything finite is an exact 0, as in the mathematics (its IEEE sign kept).
    if isinstance(a, fmpq) and a == 0 and is_finite(b):
        return _zero(_sign_bit(a) * _sign_bit(b) < 0)
    if isinstance(b, fmpq) and b == 0 and is_finite(a):
        return _zero(_sign_bit(a) * _sign_bit(b) < 0)
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        return norm(a * b)
    return to_real(a) * to_real(b)


def neg(a: Exact) -> Exact:
    if isinstance(a, fmpq) and a == 0:
        return ZERO if type(a) is NegativeZero else NEG_ZERO
    return -a


def div(a: Exact, b: Exact) -> Exact:
    """a / b with IEEE-like results at b = 0 (inf or nan), the way torch computes it. A ball
    that says nothing (infinite radius) is not a zero: dividing by it says nothing either."""
    if type(a) is arb and type(b) is arb and b.is_finite() and (b > 0 or b < 0):
        return a / b  # a finite ball certainly not 0: the last line's result, sooner
    if is_indeterminate(b) and not is_nan(a):
        return INDETERMINATE
    if is_zero(b):
        if is_zero(a) or is_nan(a):
            return NAN
        # The zero's sign decides the infinity's, as in IEEE (+0.0 unless it is NEG_ZERO).
        return INF if _sign_bit(a) * _sign_bit(b) > 0 else NEG_INF
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        if a == 0:
            return _zero(_sign_bit(a) * _sign_bit(b) < 0)
        return norm(a / b)
    if not is_finite(b):
        if is_nan(b) or not is_finite(a):
            return NAN
        return ZERO
    return to_real(a) / to_real(b)


def lt(a: Exact, b: Exact) -> bool:
    return cmp(a, b) < 0


def cmp(a: Exact, b: Exact) -> int:
    """-1, 0 or 1 comparing a with b (exact for rationals)."""
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        return (a > b) - (a < b)
    return sign(sub(a, b))


def ipow(a: Exact, n: int) -> Exact:
    """a**n for an integer n (exact for rationals; inf at a = 0 for n < 0)."""
    if n < 0:
        return div(ONE, ipow(a, -n))
    if type(a) is NegativeZero and n > 0:
        return NEG_ZERO if n % 2 else ZERO
    if isinstance(a, fmpq):
        if a.height_bits() * n <= MAX_RATIONAL_BITS:
            return a**n
        return to_real(a) ** n
    if not is_finite(a):
        return a if n % 2 or is_nan(a) else abs(a)
    return a**n


def _exact_root(q: fmpq, k: int) -> fmpq | None:
    """The k-th root of a non-negative rational when it is rational."""
    if q < 0:
        return None
    roots = []
    for part in (int(q.p), int(q.q)):
        r = _iroot(part, k)
        if r**k != part:
            return None
        roots.append(r)
    return fmpq(roots[0], roots[1])


def _iroot(n: int, k: int) -> int:
    """floor(n ** (1/k)) for a non-negative integer n."""
    if n < 2:
        return n
    r = int(fmpz(n).root(k)) if hasattr(fmpz, "root") else round(n ** (1.0 / k))
    while r**k > n:
        r -= 1
    while (r + 1) ** k <= n:
        r += 1
    return r


def rpow(a: Exact, e: fmpq) -> Exact:
    """a**e for a rational exponent; NaN for a negative base and a non-integer exponent."""
    if e.q == 1:
        return ipow(a, int(e.p))
    if sign(a) < 0 or is_nan(a):
        return NAN
    if is_zero(a):
        return ZERO if e > 0 else INF
    if isinstance(a, fmpq) and e.q <= MAX_EXACT_ROOT and a.height_bits() <= MAX_RATIONAL_BITS // 4:
        root = _exact_root(a, int(e.q))
        if root is not None:
            return ipow(root, int(e.p))
    if not is_finite(a):
        return INF if e > 0 else ZERO
    return to_real(a) ** arb(e)


def gpow(a: Exact, b: Exact) -> Exact:
    """a**b for a general exponent, as real numbers (NaN where that is not real)."""
    if isinstance(b, fmpq):
        return rpow(a, b)
    if is_nan(a) or is_nan(b):
        return NAN
    if is_zero(a):
        return ZERO if sign(b) > 0 else (ONE if is_zero(b) else INF)
    if sign(a) < 0:
        # A negative base has a real power only at an integer exponent (an exact ball can be one).
        if b.is_exact() and b.is_finite() and b.is_integer():
            return ipow(a, int(b.unique_fmpz()))
        return NAN
    return to_real(a) ** to_real(b)


def magnitude_bits(v: Exact) -> int:
    """An upper bound of log2 |v| for a finite value (0 where |v| < 2): how many bits an
    argument reduction of v (exp of it, say) spends on its integer part."""
    if isinstance(v, fmpq):
        if v == 0:
            return 0
        return max(0, int(v.p).bit_length() - int(v.q).bit_length() + 1)
    if not v.is_finite():
        return 0
    top = v.abs_upper()
    if top.is_zero():
        return 0
    man, exp = top.man_exp()
    return max(0, int(man).bit_length() + int(exp))


@contextlib.contextmanager
def at_least(bits: int) -> Iterator[None]:
    """At least `bits` bits of working precision inside the block (never fewer than the caller's),
    capped at MAX_PREC."""
    bits = min(max(int(bits), prec()), MAX_PREC)
    if bits <= prec():
        yield
        return
    with working_precision(bits):
        yield


def log(a: Exact) -> Exact:
    if isinstance(a, fmpq) and a == 1:
        return ZERO
    if is_nan(a):
        return NAN
    if is_zero(a):
        return NEG_INF
    if sign(a) < 0:
        return NAN
    if not is_finite(a):
        return INF
    return to_real(a).log()


def pi() -> arb:
    return arb.pi()


def from_sympy(c: sp.Basic) -> Any:
    """The exact value of a SymPy number (a constant expression is evaluated at the working
    precision, as a ball)."""
    if isinstance(c, (sp.MatrixBase, sp.MatrixExpr)):
        explicit = c.as_explicit()
        return mat([[from_sympy(explicit[i, j]) for j in range(explicit.cols)] for i in range(explicit.rows)])
    return _from_sympy(c, prec())


def clear_cache() -> None:
    """Forget the SymPy constants converted so far (for a cold timing)."""
    _from_sympy.cache_clear()


@lru_cache(maxsize=4096)
def _from_sympy(c: sp.Basic, bits: int) -> Exact:
    if isinstance(c, sp.Integer):
        return fmpq(int(c))
    if isinstance(c, sp.Rational):
        return fmpq(int(c.p), int(c.q))
    if isinstance(c, sp.Float):
        # A Float is taken at its own precision: its exact binary value.
        return _float_fraction(c)
    if c is sp.nan or c is sp.zoo:
        return NAN
    if c is sp.oo:
        return INF
    if c is -sp.oo:
        return NEG_INF
    if c is sp.pi:
        return arb.pi()
    if c is sp.E:
        return arb.const_e()
    value = sp.N(c, int((bits + 40) * 0.30103) + 5)
    if not value.is_real or not isinstance(value, sp.Float):
        return NAN
    mid = _float_fraction(value)
    # SymPy's N gives about bits + 40 correct bits; the ball says so.
    return arb(mid, abs(arb(mid)) * arb(2) ** (-(bits + 30)))


# A Float whose binary exponent is past this many bits is kept as an exact ball (man * 2**exp):
# as a rational its numerator or denominator alone would have that many bits (an exact slope
# of e^-1e300, read back from a report, has an exponent near -1.44e300).
MAX_FLOAT_EXPONENT = 1 << 16


def _float_fraction(c: sp.Float) -> Exact:
    sgn, man, exp, _ = c._mpf_
    if man == 0:
        return ZERO
    if abs(int(exp)) > MAX_FLOAT_EXPONENT:
        return arb((fmpz(-int(man) if sgn else int(man)), fmpz(int(exp))))
    v = fmpq(int(man)) * (fmpq(2) ** int(exp)) if exp >= 0 else fmpq(int(man), 2 ** int(-exp))
    return -v if sgn else v


def certain_bits(v: Exact) -> int:
    """How many leading bits of v are certain (a large number for exact values)."""
    if isinstance(v, fmpq) or v.is_exact():
        return 1 << 30
    if not v.is_finite():
        return 1 << 30 if (v.is_nan() or v.rad().is_finite()) else 0
    return int(v.rel_accuracy_bits())


# A value whose magnitude is certainly past 2**BEYOND_BITS is beyond every dtype: the verdict
# needs only that, not its digits.
BEYOND_BITS = 4096
UNBOUNDED_LOSS = 1 << 40


_BEYOND = arb(2) ** BEYOND_BITS  # a power of 2: exact at every precision


def beyond_every_dtype(v: Exact) -> bool:
    if isinstance(v, fmpq) or not v.is_finite():
        return False
    return bool(abs(v) > _BEYOND)


def lost_bits(v: Exact) -> int:
    """Bits of the working precision a value has lost (0 for exact values; a ball that contains
    0 has lost them all; a value certainly beyond every dtype needs no digits)."""
    if isinstance(v, fmpq) or v.is_exact() or v.is_nan() or beyond_every_dtype(v):
        return 0
    if not v.is_finite():
        # a ball of infinite radius: no bit is certain; an infinity (of a finite radius) is exact
        return 0 if v.rad().is_finite() else UNBOUNDED_LOSS
    acc = int(v.rel_accuracy_bits())
    if acc >= -prec():
        return max(0, prec() - acc)
    # A ball around 0 (log(1 + 1e-326) at 192 bits): the bits lost are how far its radius is
    # above its midpoint, plus the working precision; a zero midpoint (sin(pi)) asks for one
    # doubling, after which it is a zero to the working resolution.
    mid = v.mid()
    if mid.is_zero():
        # No midpoint to measure against: a wide ball ([+/- 1.01] for sin of a huge argument)
        # says nothing; a tiny one (sin(pi)) asks for one doubling.
        return UNBOUNDED_LOSS if is_wide(v) else prec()
    ratio = float((v.rad() / abs(mid)).log() / arb(2).log())
    return prec() + max(0, math.ceil(ratio)) + 1 if math.isfinite(ratio) else UNBOUNDED_LOSS


def is_zero_ball(v: Any) -> bool:
    """A ball that contains 0 and is not exactly 0."""
    return isinstance(v, arb) and v.is_finite() and not v.is_exact() and bool(v.contains(0))


def is_wide(v: Any) -> bool:
    """A ball that says too little to decide anything at this precision: infinite, or around 0
    with a radius above half the working precision's resolution ([+/- 1] for sin of a huge
    argument), unlike sin(pi)'s ball of radius 2**-190 at 192 bits."""
    if is_indeterminate(v):
        return True
    return is_zero_ball(v) and bool(v.rad() > arb(2) ** (-(prec() // 2)))


def is_indeterminate(v: Any) -> bool:
    """A ball that says nothing: infinite radius (not an exact infinity, not NaN)."""
    return isinstance(v, arb) and not v.is_nan() and not v.is_finite() and not v.rad().is_finite()


def to_sympy(v: Exact) -> sp.Number:
    """A SymPy number: a Rational when exact, else a Float of the digits the ball certifies
    (at most 60: every digit shown is certain, and none more are needed)."""
    if isinstance(v, fmpq):
        return sp.Rational(int(v.p), int(v.q))
    if v.is_nan():
        return sp.nan
    if not v.is_finite():
        mid = v.mid()
        if mid.is_finite():
            return sp.nan  # a ball of unbounded radius: no value is certain
        return sp.oo if mid > 0 else -sp.oo
    if v.is_exact():
        p, e = v.man_exp()
        return sp.Rational(int(p)) * sp.Integer(2) ** int(e)
    acc = int(v.rel_accuracy_bits())
    if acc <= 0:
        # A ball around 0: zero to the working resolution.
        return sp.Float(0)
    d = min(max(int(acc * 0.30103), 2), 60)
    return sp.Float(_mid_text(v, d + 2), d)


def _mid_text(v: arb, d: int) -> str:
    """The midpoint in decimal with d significant digits (no radius)."""
    return v.mid().str(d, radius=False)


def to_float(v: Exact) -> float:
    if type(v) is NegativeZero:
        return -0.0
    if isinstance(v, fmpq):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    if v.is_nan():
        return math.nan
    mid = v.mid()
    if not mid.is_finite():
        return math.inf if mid > 0 else -math.inf
    try:
        return float(mid)
    except OverflowError:
        return math.inf if mid > 0 else -math.inf


# The binary floating-point formats a value is rounded to: (significand bits, the exponent of the
# smallest subnormal, the exponent 2**e a magnitude must stay below to be finite).
FLOAT_FORMATS: dict[str, tuple[int, int, int]] = {
    "float64": (53, -1074, 1024),
    "float32": (24, -149, 128),
    "float16": (11, -24, 16),
    "bfloat16": (8, -133, 128),
}


def round_to_dtype(v: Exact, dtype: str) -> float | None:
    """The float of `dtype` nearest the exact value (ties to even, subnormals and overflow to inf
    as IEEE rounds): what a perfect computation in that dtype returns. A value far below the
    smallest subnormal rounds to 0 (with its sign). For a ball, the float both its ends round to;
    None where they round to different floats (the ball straddles a rounding boundary) or the ball
    says nothing. The result is a Python float (every float32 value is one exactly)."""
    fmt = FLOAT_FORMATS[dtype]
    if isinstance(v, fmpq):
        if type(v) is NegativeZero:
            return -0.0
        return _round_rational(int(v.p), int(v.q), fmt)
    if v.is_nan():
        return math.nan
    if not v.is_finite():
        if not v.rad().is_finite() or v.mid().is_finite():
            return None
        return math.inf if v.mid() > 0 else -math.inf
    if v.is_exact():
        return _round_dyadic(v, fmt)
    lo, hi = _round_dyadic(v.lower(), fmt), _round_dyadic(v.upper(), fmt)
    if lo == hi:
        return 0.0 if lo == 0 else lo  # a ball around 0 that rounds to zero either way: +0.0
    return None


def _round_dyadic(v: arb, fmt: tuple[int, int, int]) -> float:
    """An exact ball (a dyadic number man * 2**exp) rounded to the format."""
    if v.is_zero():
        return 0.0
    man, exp = v.man_exp()
    m, e = int(man), int(exp)
    top = abs(m).bit_length() + e  # 2**(top - 1) <= |v| < 2**top
    if top < fmt[1] - 1:
        return -0.0 if m < 0 else 0.0  # below half the smallest subnormal
    if top > fmt[2] + 1:
        return -math.inf if m < 0 else math.inf
    return _round_rational(m << e, 1, fmt) if e >= 0 else _round_rational(m, 1 << -e, fmt)


def _round_rational(p: int, q: int, fmt: tuple[int, int, int]) -> float:
    """p/q (q > 0) rounded to nearest, ties to even, in a format of `bits` significand bits."""
    bits, emin, emax = fmt
    if p == 0:
        return 0.0
    negative = p < 0
    p = abs(p)
    e = p.bit_length() - q.bit_length()  # 2**e <= p/q < 2**(e + 1), after the correction below
    if (p << max(0, -e)) < (q << max(0, e)):
        e -= 1
    k = max(e - (bits - 1), emin)  # the exponent of one unit in the last place
    num, den = (p, q << k) if k >= 0 else (p << -k, q)
    m, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and m & 1):
        m += 1
    if m == 0:
        return -0.0 if negative else 0.0
    if m.bit_length() + k > emax:
        return -math.inf if negative else math.inf
    out = float(Fraction(m) * Fraction(2) ** k)  # exact: the result is a float64 value
    return -out if negative else out


def nstr(v: Exact, d: int) -> str:
    """A value rounded to d significant digits, as text (huge rationals too)."""
    if isinstance(v, fmpq):
        if v.q == 1 and v.height_bits() <= 60:
            return str(int(v.p))
        v = arb(v)
    if v.is_nan():
        return "nan"
    if not v.is_finite():
        mid = v.mid()
        return "nan" if mid.is_finite() else ("inf" if mid > 0 else "-inf")
    if v.is_zero():
        return "0.0"
    acc = certain_bits(v)
    if acc <= 0:
        return "0.0"
    d = max(1, min(d, int(acc * 0.30103) + 1)) if acc < (1 << 30) else d
    text = v.mid().str(d, radius=False)
    return _tidy(text)


def _tidy(text: str) -> str:
    """Arb prints `1.50000000000000e+5`; a student reads `150000.0` or `1.5e+5`."""
    if "e" in text:
        man, exp = text.split("e")
        if "." in man:
            man = man.rstrip("0").rstrip(".")
        e = int(exp)
        if -5 <= e < 16 and "." not in man and abs(e) < 16:
            return repr(float(f"{man}e{e}"))
        return f"{man}e{'+' if e >= 0 else '-'}{abs(e)}"
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    return text


def agree(a: Exact, b: Exact, d: int) -> bool:
    """True when a and b agree to `d` significant digits (NaN agrees with NaN)."""
    if is_nan(a) or is_nan(b):
        return is_nan(a) and is_nan(b)
    if not (is_finite(a) and is_finite(b)):
        return to_float(a) == to_float(b)
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        return a == b
    fa, fb = to_real(a), to_real(b)
    scale = max(abs(fa).mid(), abs(fb).mid())
    if scale == 0:
        return True
    return bool(abs(fa - fb).mid() <= scale * arb(10) ** (-d))


# --------------------------------------------------------------------------- matrices
# A matrix value is a 2-D numpy array of exact numbers (dtype=object); scalars broadcast.


def is_mat(v: object) -> bool:
    return isinstance(v, np.ndarray)


def mat(rows: list[list[Exact]]) -> np.ndarray:
    out = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            out[i, j] = v
    return out


def full(shape: tuple[int, ...], value: Exact) -> np.ndarray:
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
    if all(a.shape == shape if isinstance(a, np.ndarray) else isinstance(a, (fmpq, arb, int, float)) for a in args):
        # numpy's loop calls fn on each element's arguments, in the same order; no Python loop
        out = np.frompyfunc(fn, len(args), 1)(*args)
        if isinstance(out, np.ndarray) and out.shape == shape:
            return out
    out = np.empty(shape, dtype=object)
    flat = [a.ravel() if isinstance(a, np.ndarray) else None for a in args]
    o = out.ravel()
    for k in range(o.size):
        o[k] = fn(*(f[k] if f is not None else a for f, a in zip(flat, args)))
    return out


def accumulate(a: object, b: object) -> object:
    """a + b for adjoints: scalars, matrices, or a matrix adjoint summed into a scalar. A matrix
    result is always a new array (adjoints are updated in place by `elem` steps)."""
    if isinstance(a, np.ndarray):
        if isinstance(b, np.ndarray):
            if all_zero(a):
                return b.copy()
            out = a + b  # numpy's object loop: FLINT's own addition, exact
            flat = out.ravel()
            for k in range(flat.size):
                x = flat[k]
                if type(x) is arb and not x.is_finite():
                    flat[k] = _infinite(x)  # -inf + 1/3 is -inf (a pole's adjoint), not a ball that lost every bit
            return out
        if is_exact_zero(b):
            return a.copy()
        return ewise(add, a, b)
    if isinstance(b, np.ndarray):
        return add(a, total(b))  # type: ignore[arg-type]  # a scalar broadcast over a matrix collects all its adjoints
    return add(a, b)  # type: ignore[arg-type]


def total(v: object) -> Exact:
    if not isinstance(v, np.ndarray):
        return v  # type: ignore[return-value]
    values = list(v.flat)
    if all(isinstance(x, fmpq) for x in values):
        return norm(sum(values, ZERO))
    s: Exact = ZERO
    for x in values:
        s = add(s, x)
    return s


def all_zero(v: object) -> bool:
    if isinstance(v, np.ndarray):
        return all(isinstance(x, fmpq) and x == 0 for x in v.flat)
    return isinstance(v, fmpq) and v == 0


def elements(v: object) -> list[Exact]:
    return list(v.flat) if isinstance(v, np.ndarray) else [v]  # type: ignore[list-item]


def _kind(a: np.ndarray) -> str:
    """'q' when every entry is rational, 'r' when every entry is finite, else 'x'."""
    kind = "q"
    for x in a.flat:
        if isinstance(x, fmpq):
            continue
        if not x.is_finite():
            return "x"
        kind = "r"
    return kind


def _to_flint(a: np.ndarray, kind: str, own: str | None = None) -> Any:
    """The matrix as FLINT's: `fmpq_mat` (kind 'q') or `arb_mat` (kind 'r'); `own`, the matrix's own
    kind where known: a rational one becomes balls in C (`arb_mat(fmpq_mat)`, the same balls as
    `to_real` of each entry), with no Python ball per entry on the way."""
    rows = a.tolist()
    if kind == "q":
        return fmpq_mat(rows)
    if own == "q":
        return arb_mat(fmpq_mat(rows))
    return arb_mat([[to_real(x) for x in row] for row in rows])


def _from_flint(m: Any, shape: tuple[int, int], held: Any = None) -> np.ndarray:
    held = next((h for h in _state.held if h.shape == shape), False) if held is None else held  # False: none
    if held is not False:
        return _shared_from_flint(m, shape, held)
    out = np.empty(shape, dtype=object)
    o = out.ravel()
    for k, x in enumerate(m.entries()):
        o[k] = norm(x) if isinstance(x, fmpq) else x
    return out


@contextlib.contextmanager
def sharing(matrices: Iterator[Any] | tuple[Any, ...] | list[Any]) -> Iterator[None]:
    """Inside the block (in this thread), a matrix product of the shape of one of `matrices` holds,
    for each element that is the very same number as that matrix's element there (the same
    rational, or the same ball: midpoint and radius), that matrix's own object, and an exact 0 as
    `ZERO`: the one-sided runs of a model recompute its gradient, nearly all of it identical to
    the executed one's, and a copy of 10^5 numbers was held for each. Every value is what it was;
    only fewer objects hold it."""
    before = _state.held, _state.sharing
    _state.held, _state.sharing = tuple(v for v in matrices if isinstance(v, np.ndarray) and v.dtype == object), True
    try:
        yield
    finally:
        _state.held, _state.sharing = before


@contextlib.contextmanager
def remembering() -> Iterator[None]:
    """Inside the block (in this thread), each large product made outside `sharing` (of balls, or
    wholly rational) is kept with its factors; a later one of the same left factor (the same
    objects; balls: at the same precision) takes, for each column block of the right factor of the
    same numbers, that product's block, as it would compute it again (a model's runs beside a kink:
    X @ W1 with one element moved, X.T @ G with one column of G moved). Nested: the outer's too."""
    before = _state.made
    _state.made = list(before or ())  # the enclosing block's products too; its own dropped at its end
    try:
        yield
    finally:
        _state.made = before


def same_number(a: Any, b: Any) -> bool:
    """Whether a and b are the very same number: one object, rationals of one type (-0 is not 0
    here) that are equal, or balls of the same midpoint and radius."""
    if a is b:
        return True
    if type(a) is arb and type(b) is arb:
        return bool(a.mid() == b.mid() and a.rad() == b.rad())
    return type(a) is type(b) and isinstance(a, fmpq) and a == b


def _shared_from_flint(m: Any, shape: tuple[int, int], held: np.ndarray) -> np.ndarray:
    """`_from_flint`, each element read alone and given as `held`'s where it is the same number
    (`sharing`): the product's copies are freed as they are read, not held beside `held`."""
    out = np.empty(shape, dtype=object)
    o, h = out.ravel(), held.ravel()
    cols = shape[1]
    for k in range(o.size):
        x = m[k // cols, k % cols]
        if isinstance(x, fmpq):
            x = ZERO if x == 0 else norm(x)
        o[k] = h[k] if same_number(x, h[k]) else x
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, k = a.shape
    k2, m = b.shape
    if k != k2:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not multiply")
    ka, kb = _kind(a), _kind(b)
    if "x" not in (ka, kb):
        kind = "q" if ka == kb == "q" else "r"
        if m > 1 and (k * m > RATIONAL_BLOCK if kind == "q" else n * m > BALL_BLOCK):
            return _blocks(a, b, kind, ka, kb)
        return _from_flint(_to_flint(a, kind, ka) * _to_flint(b, kind, kb), (n, m))
    # NaN or inf entries: elementwise, with 0 times a finite number an exact 0 as everywhere.
    out = np.empty((n, m), dtype=object)
    for i in range(n):
        for j in range(m):
            s: Exact = ZERO
            for t in range(k):
                s = add(s, mul(a[i, t], b[t, j]))
            out[i, j] = s
    return out


RATIONAL_BLOCK = 1 << 15  # entries of b a product takes at once (FLINT's denominators and primes suit all of b)
BALL_BLOCK = 1 << 15  # entries of a @ b a product of balls makes at once (each block its own arb_mat product)


def _blocks(a: np.ndarray, b: np.ndarray, kind: str, ka: str, kb: str) -> np.ndarray:
    """a @ b, a block of b's columns at a time (X @ W1 moved: 14 MB of FLINT's at once): a rational
    block is the whole's exactly; a ball block depends on a and its columns of b alone. Inside
    `remembering`, a block of the same numbers as a product made there is that product's block."""
    n, m = a.shape[0], b.shape[1]
    width = max(1, RATIONAL_BLOCK // a.shape[1] if kind == "q" else BALL_BLOCK // n)
    out, left = np.empty((n, m), dtype=object), []  # a as FLINT's, made for the first block computed
    held = next((h for h in _state.held if h.shape == (n, m)), False)  # `sharing`, block by block
    key = (kind, prec() if kind == "r" else None)  # a rational product is the same at every precision
    known = next(((mb, mo) for p, ma, mb, mo in _state.made or () if p == key and mb.shape == b.shape
                  and ma.shape == a.shape and all(x is y for x, y in zip(ma.flat, a.flat))), None)

    def product(s: int, e: int) -> None:
        left[:] = left or [_to_flint(a, kind, ka)]
        out[:, s:e] = _from_flint(left[0] * _to_flint(b[:, s:e], kind, kb), (n, e - s), held if held is False else held[:, s:e])

    for s, e in ((s, min(m, s + width)) for s in range(0, m, width)):
        moved = [j for j in range(s, e) if not all(map(same_number, b[:, j], known[0][:, j]))] if known else None
        if moved is not None and (not moved or kind == "q" and len(moved) <= 8):
            out[:, s:e] = known[1][:, s:e]  # a rational column is the whole's exactly: those that moved, alone
            for j in moved:
                product(j, j + 1)
        else:
            product(s, e)
    if _state.made is not None and not _state.sharing and (kind == "r" or all(type(x) is fmpq for x in out.flat)):
        _state.made.append((key, a, b, out))
    return out


def transpose(a: np.ndarray) -> np.ndarray:
    return a.T.copy()


def inverse(a: np.ndarray) -> np.ndarray:
    """The exact inverse (FLINT); NaN entries for a singular matrix."""
    n = a.shape[0]
    kind = _kind(a)
    if kind == "x":
        return full((n, n), NAN)
    try:
        return _from_flint(_to_flint(a, kind).inv(), (n, n))
    except ZeroDivisionError:
        if kind == "r":
            _state.undecided += 1  # a ball matrix that may or may not be singular
        return full((n, n), NAN)


def det(a: np.ndarray) -> Exact:
    kind = _kind(a)
    if kind == "x":
        return NAN
    d = _to_flint(a, kind).det()
    return norm(d) if isinstance(d, fmpq) else d
