"""A product that the generated program writes as the torch call the user made (issue 20:
`torch.dot(x, y)`, `x @ y` of two vectors, `A @ x` (torch.mv), `torch.outer`, `torch.einsum("ij,kj->ik",
Q, K)`, `x.flip(0)`, `x.roll(1)`, `torch.cumsum`).

torch computes the same mathematics with other kernels that round otherwise: `torch.dot` is not
`x.T @ y` (measured: most random vectors differ in the last bit), `torch.einsum` reaches bmm through
its own permutes, and torch's float32 cumsum accumulates in double. And a tensor's gradients add up in
the order of torch's graph: an op read element by element, or beside a shared `x.T`, adds them in
another order. So the node is the product for every rule (the symbolic and executed sides are the
product's), and its step is the user's own call on the user's own tensors:

    called_matmul(call, A, B)    A @ B, op `matmul_call` on (A, B) untransposed: a factor `Z.T` of the
                                 product is the step's operand Z, and the call reads `{0}`, `{1}` (the
                                 factors) and `{t0}`, `{t1}` (their transposes), each by Z's own name
                                 where the factor is `Z.T` (no `.T` node in torch's graph).
    along_call(x, ..., op, call) W @ x or x @ W.T, W = torch's op of the identity (the op is torch's by
                                 construction), op `along_call` on x alone (W is the step's parameter,
                                 no constant line): `torch.flip(x, (0,))`, `torch.cumsum(x, 1)`.

    torch.dot(x, y)                  x.T @ y        "torch.dot({t0}.reshape(-1), {1}.reshape(-1)).reshape(1, 1)"
    torch.einsum("ij,kj->ik", Q, K)  Q @ K.T        "torch.einsum('ij,kj->ik', {0}, {t1})"

(A rank-1 tensor is an (n, 1) column in the translation; `.reshape(-1)` is the user's vector again, a
view of the same numbers.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import sympy as sp
import torch

from . import exact as ex
from .products import einsum_matmul

_CALLED: dict[tuple[str, str], type] = {}


def _called(call: str, kind: str) -> type:
    if (call, kind) not in _CALLED:
        _CALLED[call, kind] = type("einsum_matmul", (einsum_matmul,), {"equation": call, "call_kind": kind})
    return _CALLED[call, kind]


def called_matmul(call: str, a: Any, b: Any) -> Any:
    """`a @ b`, lowered as `call` (a torch text with `{0}`, `{1}`, `{t0}`, `{t1}`)."""
    return _called(call, "matmul")(a, b, evaluate=False)


def is_call(param: Any) -> bool:
    """Whether a matmul's param is a call (not einsum_matmul's equation, which is no format)."""
    return isinstance(param, str) and "{" in param


def call_parts(e: sp.MatMul) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """The step of a called product: (`matmul_call`, (Z0, Z1), (call, flip0, flip1)), a factor Z.T
    read as Z flipped; (`along_call`, (x,), (call, W, left)); None for another product."""
    kind = getattr(e, "call_kind", None)
    if kind is None:
        return None
    a, b = e.args
    if kind == "matmul":
        # A factor `Z.T` is read as Z flipped only where the call reads its transpose (`{t0}`:
        # torch.dot(x, y) is x.T @ y, a `.T` the user never wrote); one the call reads as it is
        # (`torch.mv({0}, ...)` of the user's `X.T @ r`) is the user's own `.T`, its own step, made
        # before the other factor as Python evaluates it (its gradient then adds in torch's order).
        flips = [isinstance(m, sp.Transpose) and f"{{t{k}}}" in e.equation for k, m in enumerate((a, b))]
        return "matmul_call", tuple(m.arg if f else m for m, f in zip((a, b), flips)), (e.equation, *flips)
    left = kind == "along_left"
    return "along_call", ((b if left else a),), (e.equation, ex.from_sympy(a if left else b), left)


def call_text(param: Any, texts: Sequence[str]) -> str:
    """The generated line's text of a called product: the user's call on the step's operands."""
    if len(texts) == 1:  # along_call: (call, W, left)
        return param[0].replace("{x}", texts[0])
    call, flips = param[0], param[1:]
    plain = [f"{x}.T" if f else x for x, f in zip(texts, flips)]
    turned = [x if f else f"{x}.T" for x, f in zip(texts, flips)]
    return call.format(*plain, t0=turned[0], t1=turned[1])


def _flip(m: Any, f: bool) -> Any:
    return ex.transpose(m) if f else m


def _matmul_vjp(a: Any, v: Any, p: Any, g: Any) -> tuple[Any, ...]:
    f0, f1 = p[1], p[2]
    A, B = _flip(a[0], f0), _flip(a[1], f1)
    return (lambda: _flip(ex.matmul(g, ex.transpose(B)), f0), lambda: _flip(ex.matmul(ex.transpose(A), g), f1))


def _along_value(a: Any, p: Any) -> Any:
    return ex.matmul(p[1], a[0]) if p[2] else ex.matmul(a[0], p[1])


def _along_vjp(a: Any, v: Any, p: Any, g: Any) -> tuple[Any, ...]:
    return (lambda: ex.matmul(ex.transpose(p[1]), g) if p[2] else ex.matmul(g, ex.transpose(p[1])),)


def _no_partials(a: Any, v: Any, p: Any) -> tuple[Any, ...]:
    raise NotImplementedError("a matrix op: its vjp")


OP_FIELDS: Final[tuple[dict[str, Any], ...]] = (
    dict(name="matmul_call", torch="the user's call on {0}, {1} (torch.dot, torch.mv, torch.outer, torch.einsum)",
         value=lambda a, p: ex.matmul(_flip(a[0], p[1]), _flip(a[1], p[2])), partials=_no_partials, vjp=_matmul_vjp),
    dict(name="along_call", torch="the user's call on {0} (torch.flip, torch.roll, torch.cumsum)",
         value=_along_value, partials=_no_partials, vjp=_along_vjp),
)

# x.T @ y of two columns, as torch.dot; x @ y.T, as torch.outer; A @ x of a matrix and a column, as torch.mv.
DOT: Final = "torch.dot({t0}.reshape(-1), {1}.reshape(-1)).reshape(1, 1)"
OUTER: Final = "torch.outer({0}.reshape(-1), {t1}.reshape(-1))"
MV: Final = "torch.mv({0}, {1}.reshape(-1)).reshape(-1, 1)"

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
        return _called(call, "along_left")(W, x, evaluate=False)
    return _called(call, "along_right")(x, W.T, evaluate=False)
