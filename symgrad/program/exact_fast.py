"""A shortcut for the exact side of small matrix programs, giving exactly the value the
per-element formulas give (the same rational, the same ball):

- `whole`: an elementwise op (`add`, `mul`, `pow_int`) of matrices of plain rationals as one
  numpy object-array operation (FLINT's own arithmetic per element, no Python loop), with the
  per-element partials; None where a per-element rule could differ (a zero's IEEE sign, a
  rational too large to keep, a ball), and the caller falls back to the per-element loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from flint import fmpq

from . import exact as ex

_height = np.frompyfunc(fmpq.height_bits, 1, 1)
_LARGEST_HEIGHT: Final = ex.MAX_RATIONAL_BITS // 2  # above it `ex.norm` makes a ball


def _plain(v: Any) -> bool:
    """Every element a plain rational (no ball, no IEEE -0) and small enough to stay one."""
    if isinstance(v, np.ndarray):
        return all(type(x) is fmpq for x in v.flat)
    return type(v) is fmpq


def _kept(m: Any) -> Any:
    """m, when each of its rationals stays a rational under `ex.norm`; else None."""
    if isinstance(m, np.ndarray):
        if m.size and int(_height(m).max()) > _LARGEST_HEIGHT:
            return None
        return m
    return m if m.height_bits() <= _LARGEST_HEIGHT else None


def _constant(shape: tuple[int, ...], v: fmpq) -> np.ndarray:
    return ex.full(shape, v)


def whole(op: str, vals: Sequence[Any], param: Any, shape: tuple[int, ...]) -> tuple[Any, tuple[Any, ...]] | None:
    """(value, partials) of an elementwise `add`, `mul` or `pow_int` over matrices, exactly the
    per-element `ops` formulas' (`_add_value`, `_mul_value`/`_mul_partials`, ipow and
    n * u**(n - 1)); None where an element is NaN or the op is another."""
    if not all(not isinstance(v, np.ndarray) or v.shape == tuple(shape) for v in vals):
        return None
    if all(_plain(v) for v in vals):
        fast = _rational(op, vals, param, shape)
        if fast is not None:
            return fast
    return _folded(op, vals, param, shape)


def _rational(op: str, vals: Sequence[Any], param: Any, shape: tuple[int, ...]) -> tuple[Any, tuple[Any, ...]] | None:
    """`whole` for plain rationals: numpy's own +, -, *, ** on the object arrays (FLINT's
    arithmetic); None where ex.norm, a zero's sign or ex.ipow's ball would decide an element."""
    if op == "add":
        signs, const = param
        if type(const) is not fmpq:
            return None
        total: Any = const
        for s, v in zip(signs, vals):
            # each step of `_add_value`: ex.add/ex.sub of plain rationals is norm(a +- b)
            total = _kept(total + v if s > 0 else total - v)
            if total is None:
                return None
        return _matrix(total, shape), tuple(_constant(shape, ex.Q(s)) for s in signs)
    if op == "mul":
        if type(param) is not fmpq or param == 0 or any(_has_zero(v) for v in vals):
            return None  # a zero factor's product carries an IEEE sign (`ex.mul`)
        value = _product(param, vals)
        parts = [_product(param, [v for j, v in enumerate(vals) if j != i]) for i in range(len(vals))]
        if value is None or any(p is None for p in parts):
            return None
        return _matrix(value, shape), tuple(_matrix(p, shape) for p in parts)
    if op == "pow_int" and isinstance(param, int) and param >= 2 and isinstance(vals[0], np.ndarray):
        u = vals[0]
        if _has_zero(u):
            return None  # ex.ipow keeps -0's sign; 0's partial goes through ex.mul's zero rule
        heights = _height(u)
        if u.size and int(heights.max()) * param > ex.MAX_RATIONAL_BITS:
            return None  # ex.ipow makes a ball
        value = _kept(u**param)
        lower = u ** (param - 1)
        # n * u**(n - 1): ex.mul(Q(n), ipow(u, n - 1)); ipow(u, 1) is u itself
        slope = _kept(ex.Q(param) * lower)
        if value is None or slope is None:
            return None
        return value, (slope,)
    return None


_ADD, _SUB, _MUL = (np.frompyfunc(f, 2, 1) for f in (ex.add, ex.sub, ex.mul))
_IPOW = np.frompyfunc(ex.ipow, 2, 1)


def _folded(op: str, vals: Sequence[Any], param: Any, shape: tuple[int, ...]) -> tuple[Any, tuple[Any, ...]] | None:
    """The per-element formulas themselves (`ex.add`, `ex.mul`, `ex.ipow`, their zero and -0
    rules included), each called by numpy's loop on every element in turn instead of by a Python
    loop; None where an element is NaN (the per-element loop makes such a value NaN)."""
    if any(ex.is_nan(x) for v in vals for x in (v.flat if isinstance(v, np.ndarray) else (v,))):
        return None
    if op == "add":
        signs, const = param
        total: Any = const
        for s, v in zip(signs, vals):
            total = (_ADD if s > 0 else _SUB)(total, v)
        return _matrix(total, shape), tuple(_constant(shape, ex.Q(s)) for s in signs)
    if op == "mul":
        one = type(param) is fmpq and param == 1

        def product(factors: Sequence[Any]) -> Any:
            out: Any = param
            for j, v in enumerate(factors):
                # 1 * v is v itself where v is a matrix of plain rationals that stay rationals
                # (`ex.mul`: a zero's sign is its own, and `norm` keeps each): a copy, no call per element
                out = v.copy() if j == 0 and one and isinstance(v, np.ndarray) and _plain(v) and \
                    _kept(v) is not None else _MUL(out, v)
            return _matrix(out, shape)
        return product(vals), tuple(product([v for j, v in enumerate(vals) if j != i]) for i in range(len(vals)))
    if op == "pow_int" and isinstance(param, int) and isinstance(vals[0], np.ndarray):
        return _matrix(_IPOW(vals[0], param), shape), (_matrix(_MUL(ex.Q(param), _IPOW(vals[0], param - 1)), shape),)
    return None


def _has_zero(v: Any) -> bool:
    if isinstance(v, np.ndarray):
        return any(x == 0 for x in v.flat)
    return v == 0


def _product(p: fmpq, factors: Sequence[Any]) -> Any:
    """p * f1 * f2 ..., norm-checked after each factor as `_mul_value` does; None past it."""
    total: Any = p
    for v in factors:
        total = _kept(total * v)
        if total is None:
            return None
    return total


def _matrix(v: Any, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(v, np.ndarray) and v.shape == tuple(shape):
        return v
    return ex.full(shape, v) if not isinstance(v, np.ndarray) else np.broadcast_to(v, shape).copy()
