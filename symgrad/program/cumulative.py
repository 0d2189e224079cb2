"""torch's cumulative product as a SymPy function, with its exact value and torch's backward (issue
20: `torch.cumprod(x, dim)`, `x.cumprod(dim)` of a vector, or along a dim of a matrix).

`cumprod(i, j, R, K, d, x_00, ..., x_(R-1)(K-1))` is element (i, j) of torch's cumulative product
of x held as an (R, K) matrix along d (d = 1: along each row, y_ij = x_i0 * ... * x_ij; d = 0: down
each column, y_ij = x_0j * ... * x_ij; a rank-1 x of length n is its (n, 1) column, d = 0).

The mathematics is a product: its derivative is the product rule, dy_j/dx_k = prod_{i <= j, i != k}
x_i for k <= j (0 for k > j), everywhere, zeros included. torch's backward (derivatives.yaml:
cumprod_backward, aten/src/ATen/native/ReduceOps.cpp) computes reversed_cumsum(y * g) / x where no
element of x is 0, and where one is, masks that give the same product rule (the sum before the first
zero divided by x_k, the first zero's own sum of products, 0 after it): in exact arithmetic it is
the product rule, so the exact sides need no convention; its bits come from torch's own call, which
a matrix every element of which is such a node lowers to (no composition of the table's products
reproduces the division by x_k of the kernel's backward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

from ..base.errors import UnsupportedNodeError
from . import exact as ex
from .normalization import FusedAlong, element_of, fused_grid, parent_of

Args = Sequence[ex.Exact]
LEAD: Final = 5  # i, j, R, K, d


class cumprod(FusedAlong):
    """Element (i, j) of torch's cumulative product of x held as an (R, K) matrix (the module's docstring)."""

    LEAD = LEAD

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > LEAD and all(a.is_Integer for a in args[:LEAD])
        if ok:
            i, j, r, k, d = (int(a) for a in args[:LEAD])
            ok = len(args) == LEAD + r * k and 0 <= i < r and 0 <= j < k and d in (0, 1)
        if not ok:
            raise UnsupportedNodeError("cumprod(i, j, R, K, d, x...) takes the element, the shape (R, K), the dim "
                                       "(0 or 1) and the R*K elements of x.\nFix: write it as `torch.cumprod(x, dim)` "
                                       "in torch code.")
        return None

    def written_out(self) -> sp.Expr:
        """The mathematics, in SymPy: the product of x along d up to (i, j)."""
        i, j = int(self.args[0]), int(self.args[1])
        _, k, d = self.param()
        x = self.args[LEAD:]
        factors = [x[i * k + c] for c in range(j + 1)] if d == 1 else [x[r * k + j] for r in range(i + 1)]
        return sp.Mul(*factors)


def whole(e: sp.MatrixBase) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """("cumprod_matrix", operands, param) for a matrix whose element (i, j) is cumprod(i, j, ...) of one
    and the same x (what `torch.cumprod(x, dim)` is read as); else None. Where x is a matrix the program
    holds, it is passed whole (param ends with "whole")."""
    first = fused_grid(e, cumprod)
    if first is None:
        return None
    p = first.param()
    parent = parent_of(first.operands(), (p[0], p[1]))
    if parent is not None:
        return "cumprod_matrix", (parent,), (*p, "whole")
    return "cumprod_matrix", first.operands(), p


# --------------------------------------------------------------------------- exact values


def _whole(p: Sequence[Any]) -> bool:
    return len(p) == 4 and p[3] == "whole"


def _lines(p: Sequence[Any]) -> list[list[int]]:
    """The flat positions of each line the product runs along (each row for d = 1, each column for d = 0)."""
    r, k, d = (int(v) for v in p[:3])
    return [[i * k + c for c in range(k)] for i in range(r)] if d == 1 else [[i * k + c for i in range(r)] for c in range(k)]


def _flat(a: Args, p: Sequence[Any]) -> list[ex.Exact]:
    return list(a[0].flat) if _whole(p) else list(a)


def value(a: Args, p: Sequence[Any]) -> Any:
    """The (R, K) matrix torch's cumprod computes, exactly."""
    x = _flat(a, p)
    out = ex.full((int(p[0]), int(p[1])), ex.ZERO)
    for line in _lines(p):
        running: ex.Exact = ex.ONE
        for pos in line:
            running = ex.mul(running, x[pos])
            out.flat[pos] = running
    return out


def vjp(a: Args, v: Any, p: Sequence[Any], g: Any) -> tuple[Any, ...]:
    """torch's cumprod_backward of the output gradient g, exactly: the product rule,
    dx_k = sum_{j >= k} g_j * prod_{i <= j, i != k} x_i along each line (zeros of x included)."""
    x = _flat(a, p)
    grads = list(g.flat)
    dx: list[ex.Exact] = [ex.ZERO] * len(x)
    for line in _lines(p):
        for n, k in enumerate(line):
            before: ex.Exact = ex.ONE
            for pos in line[:n]:
                before = ex.mul(before, x[pos])
            total: ex.Exact = ex.ZERO
            running = before
            for m, pos in enumerate(line[n:]):
                if m:
                    running = ex.mul(running, x[pos])
                total = ex.add(total, ex.mul(grads[pos], running))
            dx[k] = total
    if not _whole(p):
        return tuple(dx)
    m = ex.full((int(p[0]), int(p[1])), ex.ZERO)
    for k, d in enumerate(dx):
        m.flat[k] = d
    return (m,)


def call_text(args: Sequence[str], param: Sequence[Any]) -> str:
    """`torch.cumprod(X, d)` as the generated program writes it: X itself, or its elements stacked."""
    r, k, d = (int(v) for v in param[:3])
    x = args[0] if _whole(param) else f"torch.stack([{', '.join(args[:r * k])}]).reshape({r}, {k})"
    text = f"torch.cumprod({x}, {d})"
    return f"{text}[{param[3]}, {param[4]}]" if len(param) == 5 else text


component_value, component_partials = element_of(value, vjp, 3)

OP_FIELDS: Final = (
    dict(name="cumprod", torch="torch.cumprod(torch.stack([...]).reshape(R, K), d)[i, j]", value=component_value,
         partials=lambda a, v, p: component_partials(a, p)),
)
MATRIX_OP_FIELDS: Final = (
    dict(name="cumprod_matrix", torch="torch.cumprod(X, d)", value=value, partials=lambda a, v, p: (), vjp=vjp),
)
RULE_FIELDS: Final = (
    dict(cls=cumprod, ops=("cumprod", "cumprod_matrix"),
         when="cumprod(i, j, R, K, d, x...) is element (i, j) of the cumulative product of x held as an (R, K) "
              "matrix along d (x_i0*...*x_ij for d = 1, x_0j*...*x_ij for d = 0), as `torch.cumprod(x, dim)` is "
              "read: torch's own call, whose backward (cumprod_backward: reversed_cumsum(y*g)/x, masks where x has a "
              "zero) is the product rule",
         domain="all reals",
         exact=lambda a: component_value(a[LEAD:], (int(a[2]), int(a[3]), int(a[4]), int(a[0]), int(a[1])))),
)
