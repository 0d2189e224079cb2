"""Matrix functions of the exact engine built on its products and elementwise arithmetic
(`exact`): torch.trace, torch.linalg.matrix_power, and the cofactor matrix a determinant's
derivative is. Every value exact (a rational) or a ball, as `exact`'s own."""

from __future__ import annotations

import numpy as np

from .exact import (
    ONE,
    ZERO,
    Exact,
    add,
    det,
    ewise,
    eye,
    inverse,
    is_finite,
    matmul,
    mul,
    neg,
    transpose,
)


def cofactors(a: np.ndarray) -> np.ndarray:
    """d det(A) / dA: the cofactor matrix, also where A is singular (there det(A) * inv(A).T
    is 0 * NaN, although det is a polynomial, smooth everywhere)."""
    n = a.shape[0]
    inv = inverse(a)
    if all(is_finite(v) for v in inv.flat):
        d = det(a)
        return ewise(lambda t: mul(d, t), transpose(inv))
    out = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, axis=0), j, axis=1)
            m = det(minor) if n > 1 else ONE
            out[i, j] = m if (i + j) % 2 == 0 else neg(m)
    return out


def trace(a: np.ndarray) -> Exact:
    s: Exact = ZERO
    for i in range(min(a.shape)):
        s = add(s, a[i, i])
    return s


def matpow(a: np.ndarray, n: int) -> np.ndarray:
    if n < 0:
        return matpow(inverse(a), -n)
    out = eye(a.shape[0])
    base = a
    while n:
        if n & 1:
            out = matmul(out, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return out
