"""torch's gated linear unit as a SymPy function, with its exact value and torch's backward (issue 20:
`F.glu(x, dim)` of a vector, or along a dim of a matrix).

`glu(i, j, R, K, d, x_00, ...)` is element (i, j) of torch's F.glu of x, the (R, K) result: x is the
(2R, K) matrix for d = 0 (its top half a, its bottom half b), the (R, 2K) one for d = 1 (left half a,
right half b); a rank-1 x of length 2n is its (2n, 1) column, d = 0. The value is a * sigmoid(b).

torch's kernel is fused (aten/src/ATen/native/cpu/GluKernel.cpp), its backward glu_backward:
grad_a = sigmoid(b) * g, grad_b = (1 - sigmoid(b)) * sigmoid(b) * a * g, which is the mathematics'
derivative in exact arithmetic; its bits are not those of `a * torch.sigmoid(b)` (autograd of the
composition multiplies in another order), so a matrix every element of which is such a node lowers to
torch's own call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import sympy as sp

from ..base.errors import UnsupportedNodeError
from . import exact as ex
from .normalization import FusedAlong, element_of, fused_grid, parent_of
from .primitives import sigmoid

Args = Sequence[ex.Exact]
Sigmoid = Callable[[ex.Exact], ex.Exact]  # ops.sigmoid, handed in (ops imports this module)
LEAD: Final = 5  # i, j, R, K, d


def _input_shape(r: int, k: int, d: int) -> tuple[int, int]:
    return (2 * r, k) if d == 0 else (r, 2 * k)


def _halves(r: int, k: int, d: int, i: int, j: int) -> tuple[int, int]:
    """The flat positions in x of a and b of output element (i, j)."""
    _, cols = _input_shape(r, k, d)
    if d == 0:
        return i * cols + j, (i + r) * cols + j
    return i * cols + j, i * cols + j + k


class glu(FusedAlong):
    """Element (i, j) of torch's F.glu of x along d (the module's docstring)."""

    LEAD = LEAD

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > LEAD and all(a.is_Integer for a in args[:LEAD])
        if ok:
            i, j, r, k, d = (int(a) for a in args[:LEAD])
            ok = d in (0, 1) and len(args) == LEAD + 2 * r * k and 0 <= i < r and 0 <= j < k
        if not ok:
            raise UnsupportedNodeError("glu(i, j, R, K, d, x...) takes the element, the result's shape (R, K), the dim "
                                       "(0 or 1) and the 2*R*K elements of x.\nFix: write it as `F.glu(x, dim)` in "
                                       "torch code.")
        return None

    def written_out(self) -> sp.Expr:
        """The mathematics, in SymPy: a * sigmoid(b)."""
        ia, ib = _halves(*self.param(), int(self.args[0]), int(self.args[1]))
        x = self.args[LEAD:]
        return x[ia] * sigmoid(x[ib])


def whole(e: sp.MatrixBase) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """("glu_matrix", operands, param) for a matrix whose element (i, j) is glu(i, j, ...) of one and the
    same x; else None. Where x is a matrix the program holds, it is passed whole ("whole")."""
    first = fused_grid(e, glu)
    if first is None:
        return None
    p = first.param()
    parent = parent_of(first.operands(), _input_shape(*p))
    if parent is not None:
        return "glu_matrix", (parent,), (*p, "whole")
    return "glu_matrix", first.operands(), p


# --------------------------------------------------------------------------- exact values


def _whole(p: Sequence[Any]) -> bool:
    return len(p) == 4 and p[3] == "whole"


def _flat(a: Args, p: Sequence[Any]) -> list[ex.Exact]:
    return list(a[0].flat) if _whole(p) else list(a)


def value(a: Args, p: Sequence[Any], sigmoid: Sigmoid) -> Any:
    """The (R, K) matrix torch's glu computes, exactly: a * sigmoid(b)."""
    r, k, d = (int(v) for v in p[:3])
    x = _flat(a, p)
    out = ex.full((r, k), ex.ZERO)
    for i in range(r):
        for j in range(k):
            ia, ib = _halves(r, k, d, i, j)
            out[i, j] = ex.mul(x[ia], sigmoid(x[ib]))
    return out


def vjp(a: Args, v: Any, p: Sequence[Any], g: Any, sigmoid: Sigmoid) -> tuple[Any, ...]:
    """torch's glu_backward of the output gradient g, exactly: sigmoid(b)*g to a, (1 - s)*s*a*g to b."""
    r, k, d = (int(v) for v in p[:3])
    x = _flat(a, p)
    dx: list[ex.Exact] = [ex.ZERO] * len(x)
    for i in range(r):
        for j in range(k):
            ia, ib = _halves(r, k, d, i, j)
            s, gij = sigmoid(x[ib]), g[i, j]
            dx[ia] = ex.mul(s, gij)
            dx[ib] = ex.mul(ex.mul(ex.mul(ex.sub(ex.ONE, s), s), x[ia]), gij)
    if not _whole(p):
        return tuple(dx)
    m = ex.full(_input_shape(r, k, d), ex.ZERO)
    for n, dv in enumerate(dx):
        m.flat[n] = dv
    return (m,)


def call_text(args: Sequence[str], param: Sequence[Any]) -> str:
    """`torch.nn.functional.glu(X, d)` as the generated program writes it: X itself, or its elements stacked."""
    r, k, d = (int(v) for v in param[:3])
    rows, cols = _input_shape(r, k, d)
    x = args[0] if _whole(param) else f"torch.stack([{', '.join(args[:rows * cols])}]).reshape({rows}, {cols})"
    text = f"torch.nn.functional.glu({x}, {d})"
    return f"{text}[{param[3]}, {param[4]}]" if len(param) == 5 else text


def op_fields(sigmoid: Sigmoid) -> tuple[dict[str, Any], ...]:
    """The element op and the matrix op, for `ops.OPS`."""
    def whole_value(a: Args, p: Sequence[Any]) -> Any:
        return value(a, p, sigmoid)

    def whole_vjp(a: Args, v: Any, p: Sequence[Any], g: Any) -> tuple[Any, ...]:
        return vjp(a, v, p, g, sigmoid)

    element, partials = element_of(whole_value, whole_vjp, 3)
    return (
        dict(name="glu", torch="torch.nn.functional.glu(torch.stack([...]).reshape(2R, K), d)[i, j]",
             value=element, partials=lambda a, v, p: partials(a, p)),
        dict(name="glu_matrix", torch="torch.nn.functional.glu(X, d)", value=whole_value, partials=lambda a, v, p: (),
             vjp=whole_vjp),
    )


def rule_fields(sigmoid: Sigmoid) -> tuple[dict[str, Any], ...]:
    """The rule row, for `rules.RULES`."""
    element, _ = element_of(lambda a, p: value(a, p, sigmoid), None, 3)
    return (
        dict(cls=glu, ops=("glu", "glu_matrix"),
             when="glu(i, j, R, K, d, x...) is element (i, j) of a*sigmoid(b), a and b the two halves of x along d "
                  "(x is (2R, K) for d = 0, (R, 2K) for d = 1), as `F.glu(x, dim)` is read: torch's own fused call, "
                  "whose backward (glu_backward) is sigmoid(b)*g to a and (1 - sigmoid(b))*sigmoid(b)*a*g to b",
             domain="all reals",
             exact=lambda a: element(a[LEAD:], (int(a[2]), int(a[3]), int(a[4]), int(a[0]), int(a[1])))),
    )
