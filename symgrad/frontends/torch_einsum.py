"""`torch.einsum` of two operands of rank 1 or 2 that is one matrix product with transposes (issue
20: attention's `torch.einsum("ij,kj->ik", Q, K)`, Q K^T), read as that product and lowered as the
user's own einsum call (`program.calls`: torch's einsum permutes and reaches bmm, which rounds
otherwise than `Q @ K.T`).

    "ij,kj->ik"  Q @ K.T          "ji,jk->ik"  A.T @ B          "ij,jk->ki"  (A @ B).T = B.T @ A.T
    "ij,j->i"    A @ x (mv)       "i,ij->j"    x @ A = A.T @ x  "i,j->ij"    outer: a @ b.T

(any letters). The rule: one letter is summed (it is in both operands and not in the output), every
other letter is in one operand and in the output once; a vector is an (n, 1) column in the
translation, and a vector result is one again. Anything else returns None (the caller's sentence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..program.calls import called_matmul
from .torch_reductions import transposed

# A user operand in the call: (the product's argument it is read from, whether that argument is its transpose).
_Token = tuple[int, bool]


def _text(token: _Token) -> str:
    j, flipped = token
    return f"{{t{j}}}" if flipped else f"{{{j}}}"


def product_einsum(equation: str, terms: Sequence[str], out: str, ops: Sequence[Any]) -> Any:
    """The product `torch.einsum(equation, a, b)` is, as a `called_matmul`, or None."""
    if len(terms) != 2 or not all(len(t) in (1, 2) and len(set(t)) == len(t) for t in terms + [out] if t):
        return None
    (t1, t2), letters = terms, set(terms[0]) | set(terms[1])
    summed = set(t1) & set(t2)
    free = [c for c in t1 + t2 if c not in summed]
    if len(summed) > 1 or len(set(out)) != len(out) or sorted(out) != sorted(free) or not set(out) <= letters:
        return None
    if not summed:  # "i,j->ij": the outer product of two vectors
        if (len(t1), len(t2)) != (1, 1):
            return None
        left, right, tokens = ops[0], transposed(ops[1]), [(0, False), (1, True)]
        rank1 = (True, True)
    else:
        (c,) = summed
        f1 = t1.replace(c, "")
        f2 = t2.replace(c, "")
        if not (f1 or f2):
            return None  # "i,i->": the dot product (einsum_vdot)
        # the left factor oriented (f1, c), the right one (c, f2); a vector is a column (n, 1)
        flip1 = len(t1) == 1 or t1[0] == c
        flip2 = len(t2) == 2 and t2[1] == c
        left = transposed(ops[0]) if flip1 else ops[0]
        right = transposed(ops[1]) if flip2 else ops[1]
        tokens = [(0, flip1), (1, flip2)]
        rank1 = (len(t1) == 1, len(t2) == 1)
        if out != f1 + f2:  # the output is the product's transpose: right.T @ left.T
            left, right = transposed(right), transposed(left)
            tokens = [(1, not flip1), (0, not flip2)]
    texts = [_text(tok) + (".reshape(-1)" if r1 else "") for tok, r1 in zip(tokens, rank1)]
    call = f"torch.einsum({equation!r}, {texts[0]}, {texts[1]})" + (".reshape(-1, 1)" if len(out) == 1 else "")
    return called_matmul(call, left, right)
