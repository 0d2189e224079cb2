"""The exact elementary functions (`exp`, `sin`, ..., `log1p`): python-flint's Arb functions that
stay exact on the rational points where their value is rational, follow IEEE at +-inf as torch
does, and raise the working precision where an exponential's argument is large (`ops` re-exports
them; the rules' exact values use them too). A finite ball or a small rational goes straight to
Arb (the general rule's own first branch): a check evaluates thousands of them per call."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flint

from . import exact as ex

_SMALL = flint.arb(2) ** 64  # below it `ex.magnitude_bits` is at most 64: no precision is added
_SMALL_Q = flint.fmpq(2) ** 63  # the same for a rational (its bits: those of p less those of q, plus 1)


def _mp(name: str, special: dict[Any, Any]) -> Callable[[ex.Exact], ex.Exact]:
    """An Arb function (a method of `arb`) that stays exact on the rational points where its
    value is rational. At +-inf it follows IEEE (exp(-inf) = 0, sin(inf) = nan), as torch does.
    The exponentials (`_WIDE`) are evaluated at a precision raised by the bits of the argument's
    integer part: Arb reduces exp(u) by multiples of log(2), which spends those bits, and at 192
    bits exp(1e300) is a ball that says nothing; with them it is a finite ball of full accuracy
    (Arb's exponents are unbounded), at every magnitude a float can hold."""
    base = getattr(flint.arb, name)
    at_inf = getattr(math, name)

    def fn(u: ex.Exact) -> flint.arb:
        extra = ex.magnitude_bits(u) if name in _WIDE else 0
        if extra <= 64 or extra > ex.MAX_PREC:
            # Past MAX_PREC no precision certifies the digits: Arb still bounds exp of a huge
            # negative number (a tiny ball around 0), and says nothing for a huge positive one.
            return base(ex.to_real(u))
        with ex.at_least(ex.prec() + extra + 32):  # a rational argument is converted at it too
            return base(ex.to_real(u))

    odd = name in _ODD
    wide = name in _WIDE
    specials = tuple(special.items())

    def f(u: ex.Exact) -> ex.Exact:
        if type(u) is flint.arb and u.is_finite() and (not wide or u.abs_upper() < _SMALL):
            # a finite ball whose integer part takes at most 64 bits (every ball of the common
            # case): `fn`'s own first branch, sooner
            return _total(base(u))
        if ex.is_rational(u):
            if odd and ex.is_neg_zero(u):
                return ex.NEG_ZERO  # f(-0.0) = -0.0 for an odd function, as in IEEE
            # (a rational's hash is a Python Fraction's, 2 us: the table is read by equality)
            hit = next((v for k, v in specials if u == k), None)
            if hit is not None:
                return hit
            if not wide or -_SMALL_Q < u < _SMALL_Q:  # at most 64 bits of integer part: `fn`'s first branch
                return _total(base(flint.arb(u)))
            return _total(fn(u))
        if u.is_nan():
            return ex.NAN
        if ex.is_indeterminate(u):
            return u  # a ball that says nothing stays one (more precision is needed)
        if not u.is_finite():
            try:
                return ex.to_real(at_inf(ex.to_float(u)))
            except (ValueError, OverflowError):
                return ex.NAN
        return _total(fn(u))

    return f


def _total(v: ex.Exact) -> ex.Exact:
    """These functions are defined on every finite real: a NaN from Arb on a finite argument
    means its magnitude is past what Arb's exponents hold, a ball that says nothing (more
    precision or a smaller magnitude is needed), never a point outside the domain."""
    return ex.INDETERMINATE if ex.is_nan(v) else v


_ODD = frozenset({"sin", "tan", "atan", "sinh", "tanh", "erf", "expm1"})
_WIDE = frozenset({"exp", "sinh", "cosh", "expm1"})
exp = _mp("exp", {ex.ZERO: ex.ONE})
sin = _mp("sin", {ex.ZERO: ex.ZERO})
cos = _mp("cos", {ex.ZERO: ex.ONE})
tan = _mp("tan", {ex.ZERO: ex.ZERO})
atan = _mp("atan", {ex.ZERO: ex.ZERO})
sinh = _mp("sinh", {ex.ZERO: ex.ZERO})
cosh = _mp("cosh", {ex.ZERO: ex.ONE})
tanh = _mp("tanh", {ex.ZERO: ex.ZERO})
erf = _mp("erf", {ex.ZERO: ex.ZERO})
expm1 = _mp("expm1", {ex.ZERO: ex.ZERO})


def log1p(u: ex.Exact) -> ex.Exact:
    """log(1 + u) without forming 1 + u (Arb's log1p): NaN below -1, -inf at -1."""
    if type(u) is flint.arb and u.is_finite() and u > -1 and (u > 0 or u < 0):
        return u.log1p()  # a finite ball certainly above -1 and certainly not 0: the last line, sooner
    if ex.is_nan(u):
        return ex.NAN
    c = ex.cmp(u, ex.Q(-1))
    if c < 0:
        return ex.NAN
    if c == 0:
        return ex.NEG_INF
    if ex.is_zero(u):
        return ex.NEG_ZERO if ex.is_neg_zero(u) else ex.ZERO
    if not ex.is_finite(u):
        return ex.INF
    return ex.to_real(u).log1p()
