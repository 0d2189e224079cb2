"""A matrix product that the generated program writes as the torch call the user made (issue 20:
`torch.dot(x, y)`, `x @ y` of two vectors, `torch.einsum("ij,kj->ik", Q, K)`).

torch computes the same mathematics with other kernels that round otherwise: `torch.dot` is not
`x.T @ y` (measured: most random vectors differ in the last bit), and `torch.einsum` reaches bmm
through its own permutes. A `called_matmul(call, A, B)` is `A @ B` for every rule (the symbolic and
executed sides are the product's), and `call` is the torch text of the user's own op on the two
operands, `{0}` and `{1}` the generated names of A and B: the fidelity check then compares the op the
user ran with the same op, on the same values, in the same layout.

    torch.dot(x, y)                  x.T @ y        "torch.dot({t0}.reshape(-1), {1}.reshape(-1)).reshape(1, 1)"
    torch.einsum("ij,kj->ik", Q, K)  Q @ K.T        "torch.einsum('ij,kj->ik', {0}, {t1})"

(A rank-1 tensor is an (n, 1) column in the translation; `.reshape(-1)` is the user's vector again, a
view of the same numbers; `{t1}` is the tensor K that the operand K.T was made of, `call_text`.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import sympy as sp
import torch

from .products import einsum_matmul

_CALLED: dict[str, type] = {}


def called_matmul(call: str, a: Any, b: Any) -> Any:
    """`a @ b`, lowered as `call` (a torch text with `{0}`, `{1}` for the operands' names)."""
    if call not in _CALLED:
        _CALLED[call] = type("einsum_matmul", (einsum_matmul,), {"equation": call})
    return _CALLED[call](a, b, evaluate=False)


def is_call(param: Any) -> bool:
    """Whether a matmul step's param is a call template (not einsum_matmul's equation)."""
    return isinstance(param, str) and "{" in param


def call_text(call: str, texts: Sequence[str], untransposed: Sequence[str | None] = (None, None)) -> str:
    """The generated line's text of a product: the user's call, else torch.einsum of the user's
    equation (einsum_matmul's `"ij,jk->ik"`). In a call, `{0}`, `{1}` are the operands' names and
    `{t0}`, `{t1}` their transposes: the tensor an operand `Z.T` was made of, by its own name where it
    has one (the user's tensor itself: no `.T` node in torch's graph, whose gradients then add up in
    the order the user's own graph adds them), else `name.T`."""
    if not is_call(call):
        return f"torch.einsum({call!r}, {texts[0]}, {texts[1]})"
    t = [u or f"{x}.T" for u, x in zip(untransposed, texts)]
    return call.format(*texts, t0=t[0], t1=t[1])


# x.T @ y of two columns, as torch.dot; x @ y.T, as torch.outer.
DOT: Final = "torch.dot({t0}.reshape(-1), {1}.reshape(-1)).reshape(1, 1)"
OUTER: Final = "torch.outer({0}.reshape(-1), {t1}.reshape(-1))"


MAX_ALONG = 64  # a longer line is read element by element (the op's matrix grows as n**2)


def along_call(x: Any, vector: bool, dim: int, op: Callable[[torch.Tensor], torch.Tensor], call: str) -> Any:
    """An op that is linear along one dim of x, as torch's own call on x: W @ x (a vector, or dim 0)
    or x @ W.T (dim 1), where W = op(I) is torch's own op along dim 0 of the identity (row i: the share
    of each input in output i; a move: 1 at its source, `torch.cumsum`: 1 for j <= i), lowered as
    `call` (`{x}` for x's name). The user's op on the whole tensor, not its elements one by one: its
    values are torch's (its cumsum of float32 accumulates in double), and torch's graph adds x's
    gradients in the user's order. None where the line is longer than MAX_ALONG."""
    n = int(x.shape[0] if vector or dim == 0 else x.shape[1])
    if n > MAX_ALONG:
        return None
    w = op(torch.eye(n, dtype=torch.float64)).tolist()
    W = sp.ImmutableMatrix(n, n, [sp.Integer(int(v)) for r in w for v in r])
    if vector or dim == 0:
        return called_matmul(call.replace("{x}", "{1}"), W, x)
    return called_matmul(call.replace("{x}", "{0}"), x, W.T)
