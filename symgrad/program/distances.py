"""torch.cdist of two matrices as a SymPy function, with its exact value and torch's backward
formula (issue 22, item 2).

`cdist(i, j, r1, r2, D, a_00, ..., a_(r1-1)(D-1), b_00, ..., b_(r2-1)(D-1))` is element (i, j)
of `torch.cdist(A, B, p=2)`, the Euclidean distance sqrt(sum_k (a_ik - b_jk)**2) between row i
of A and row j of B. A matrix of every (i, j) of the same A and B lowers to one `torch.cdist`
call (its bits); torch's backward (derivatives.yaml, _cdist_backward) is sum_j g_ij*(a_i -
b_j)/d_ij for A and its negative summed over i for B, with 0 where d_ij = 0. There the
mathematics is a cone (no derivative: a kink) and torch's 0 is its convention: each distance is a
site of the op's pieces (`pieces`), None on the cone's tip, and a run beside the point continues
the cone along the direction a_i - b_j it came from (its slope the unit vector of that direction),
as `vector_norm` at the origin is: the verdict is a `kink` of the entries the tip reaches. Where
either matrix has more than 25 rows torch computes the distances through a matrix product
(torch 2.13's `_euclidean_dist`: the squared norms, one matmul, `clamp_min_(0)`, `sqrt_`), whose
backward (`_euclidean_dist_backward`) is ratio = g / d, masked to 0 where d == 0, then
a_i * sum_j ratio_ij - sum_j ratio_ij * b_j. In exact arithmetic |a|**2 + |b|**2 - 2 a.b is
sum_k (a_ik - b_jk)**2, never below 0, so both paths are the same function with the same 0 at a
tie (checked against torch: the value there is 0 and its gradient 0, on either path): a zero
distance is the same cone, a `kink`. Their floats differ (the product path cancels), which is the
executed side against autograd: a `rounding` where it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

from . import exact as ex
from ..base.causes import Cause
from ..base.errors import UnsupportedNodeError
from .normalization import Fused, element_of, fused_grid, parent_of, sided_of

Args = Sequence[ex.Exact]
MM_ROWS: Final = 25  # torch's use_mm_for_euclid_dist_if_necessary: more rows than this use the product


class cdist(Fused):
    """Element (i, j) of torch.cdist(A, B) (see the module's docstring)."""

    LEAD = 5

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > 5 and all(a.is_Integer for a in args[:5])
        if ok:
            r1, r2, d = int(args[2]), int(args[3]), int(args[4])
            ok = len(args) == 5 + (r1 + r2) * d and 0 <= int(args[0]) < r1 and 0 <= int(args[1]) < r2
        if not ok:
            raise UnsupportedNodeError("cdist(...) takes (i, j, r1, r2, D), then the r1*D elements of A and the r2*D of B.\n"
                                       "Fix: write it as `torch.cdist(A, B)` in torch code.")
        return None

    def layout(self) -> tuple[int, int, int, int, int]:
        """(r1, r2, D, 0, where A's elements start): the result's shape first, as batch_norm's layout."""
        return int(self.args[2]), int(self.args[3]), int(self.args[4]), 0, 5

    def operands(self) -> tuple[sp.Basic, ...]:
        return tuple(self.args[5:])

    def param(self) -> tuple[int, int, int]:
        return int(self.args[2]), int(self.args[3]), int(self.args[4])

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return "cdist", self.operands(), (*self.param(), int(self.args[0]), int(self.args[1]))

    def written_out(self) -> sp.Expr:
        i, j = int(self.args[0]), int(self.args[1])
        r1, _, d = self.param()
        a, b = self.args[5:5 + r1 * d], self.args[5 + r1 * d:]
        return sp.sqrt(sp.Add(*[(a[i * d + k] - b[j * d + k]) ** 2 for k in range(d)]))


def whole(e: sp.MatrixBase) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """("cdist_matrix", operands, param) for an (r1, r2) matrix whose element (i, j) is cdist(i,
    j, ...) of the same A and B (what `torch.cdist(A, B)` reads as); else None."""
    first = fused_grid(e, cdist, "layout")
    if first is None:
        return None
    r1, r2, d = first.param()
    ops = first.operands()
    a, b = parent_of(ops[:r1 * d], (r1, d)), parent_of(ops[r1 * d:], (r2, d))
    if a is not None and b is not None:
        return "cdist_matrix", (a, b), (r1, r2, d, "whole")
    return "cdist_matrix", ops, (r1, r2, d)


def _rows(a: Args, p: tuple[Any, ...]) -> tuple[list[list[ex.Exact]], list[list[ex.Exact]]]:
    r1, r2, d = p[:3]
    flat = [*a[0].flat, *a[1].flat] if len(p) == 4 and p[3] == "whole" else list(a)
    return ([flat[i * d:(i + 1) * d] for i in range(r1)],
            [flat[r1 * d + j * d:r1 * d + (j + 1) * d] for j in range(r2)])


def _distances(a: Args, p: tuple[Any, ...]) -> tuple[list[list[ex.Exact]], list[list[ex.Exact]], list[list[ex.Exact]]]:
    """A's rows, B's rows and every distance, exactly (a zero distance, the cone's tip, is 0, on
    torch's direct path and on its matrix-product path alike: see the module's docstring)."""
    x1, x2 = _rows(a, p)
    out = []
    for u in x1:
        row = []
        for v in x2:
            sq = ex.Q(0)
            for s, t in zip(u, v):
                sq = ex.add(sq, ex.mul(ex.sub(s, t), ex.sub(s, t)))
            row.append(ex.ZERO if ex.is_zero(sq) else ex.rpow(sq, ex.HALF))
        out.append(row)
    return x1, x2, out


def value(a: Args, p: tuple[Any, ...]) -> Any:
    _, _, dist = _distances(a, p)
    res = ex.full((p[0], p[1]), ex.ZERO)
    for i, row in enumerate(dist):
        for j, v in enumerate(row):
            res[i, j] = v
    return res


def pieces(a: Args, p: tuple[Any, ...]) -> tuple[tuple[ex.Exact, ...] | None, ...]:
    """One site per distance (i, j), row-major: None where rows i and j are the same point (the
    cone's tip, a kink), else the difference a_i - b_j, the direction the cone is met from."""
    x1, x2 = _rows(a, p)
    out = []
    for u in x1:
        for v in x2:
            diff = tuple(ex.sub(s, t) for s, t in zip(u, v))
            out.append(None if all(ex.is_zero(e) for e in diff) else diff)
    return tuple(out)


def vjp(a: Args, v: Any, p: tuple[Any, ...], g: Any, sides: Sequence[Any] | None = None) -> tuple[Any, ...]:
    """torch's _cdist_backward for A, sum_j g_ij*(a_i - b_j)/d_ij, and for B the same with the
    roles swapped (-sum_i g_ij*(a_i - b_j)/d_ij); a zero distance contributes 0 (torch's mask).
    With `sides` (the sites of a run beside the point, `pieces`), a zero distance is the cone
    continued from that side: its slope the unit vector of the difference it came from."""
    r1, r2, d = p[:3]
    x1, x2, dist = _distances(a, p)
    d1 = [[ex.ZERO] * d for _ in range(r1)]
    d2 = [[ex.ZERO] * d for _ in range(r2)]
    for i in range(r1):
        for j in range(r2):
            if ex.is_zero(dist[i][j]):
                side = sides[i * r2 + j] if sides is not None else None
                if side is None:
                    continue  # torch: the gradient of a zero distance is 0
                scale = ex.div(g[i, j], _length(side))
                diff = list(side)
            else:
                scale = ex.div(g[i, j], dist[i][j])
                diff = [ex.sub(x1[i][k], x2[j][k]) for k in range(d)]
            for k in range(d):
                term = ex.mul(scale, diff[k])
                d1[i][k] = ex.add(d1[i][k], term)
                d2[j][k] = ex.sub(d2[j][k], term)
    if len(p) == 4 and p[3] == "whole":
        m1, m2 = ex.full((r1, d), ex.ZERO), ex.full((r2, d), ex.ZERO)
        for i in range(r1):
            for k in range(d):
                m1[i, k] = d1[i][k]
        for j in range(r2):
            for k in range(d):
                m2[j, k] = d2[j][k]
        return (m1, m2)
    return (*(t for row in d1 for t in row), *(t for row in d2 for t in row))


def _length(diff: Sequence[ex.Exact]) -> ex.Exact:
    sq = ex.Q(0)
    for e in diff:
        sq = ex.add(sq, ex.mul(e, e))
    return ex.rpow(sq, ex.HALF)


_component, _partials = element_of(value, vjp, 3)
_matrix_on_piece, _element_piece, _element_on_piece = sided_of(value, vjp, pieces, 3,
                                                               lambda p: [int(p[3]) * int(p[1]) + int(p[4])])


def text(args: Sequence[str], param: tuple[Any, ...]) -> str:
    r1, r2, d = param[:3]
    if len(param) == 4 and param[3] == "whole":
        return f"torch.cdist({args[0]}, {args[1]})"
    call = (f"torch.cdist(torch.stack([{', '.join(args[:r1 * d])}]).reshape({r1}, {d}), "
            f"torch.stack([{', '.join(args[r1 * d:])}]).reshape({r2}, {d}))")
    return call if len(param) == 3 else f"{call}[{param[3]}, {param[4]}]"


CONVENTION: Final = ("torch.cdist has gradient 0 where a distance is 0 (its backward (a_i - b_j)/d_ij is masked where "
                      "d_ij is 0).")
ALTERNATIVES: Final = ("`torch.cdist` gives 0; `torch.sqrt(((A[:, None] - B[None]) ** 2).sum(-1) + eps)` is a smooth "
                       "stand-in")
OP_FIELDS: Final = (
    dict(name="cdist", torch="torch.cdist(torch.stack([...]).reshape(r1, D), torch.stack([...]).reshape(r2, D))[i, j]",
         value=_component, partials=lambda a, v, p: _partials(a, p), piece=_element_piece, on_piece=_element_on_piece,
         nonsmooth="kink", convention=CONVENTION, alternatives=ALTERNATIVES),
)
MATRIX_OP_FIELDS: Final = (
    dict(name="cdist_matrix", torch="torch.cdist(A, B)", value=value, partials=lambda a, v, p: (), vjp=vjp,
         piece=pieces, on_piece=_matrix_on_piece, nonsmooth="kink", convention=CONVENTION, alternatives=ALTERNATIVES),
)
RULE_FIELDS: Final = (
    dict(cls=cdist, ops=("cdist", "cdist_matrix"),
         when="cdist(i, j, r1, r2, D, a..., b...) is element (i, j) of torch.cdist(A, B), sqrt(sum_k (a_ik - b_jk)**2), "
              "the Euclidean distance of row i of the (r1, D) A and row j of the (r2, D) B, as `torch.cdist(A, B)` is "
              "read: torch's own call, whose backward is _cdist_backward",
         domain="all reals", nonsmooth="a cone where two rows are the same point (distance 0): no derivative there; "
         "torch's gradient is 0 (a kink; on torch's matrix-product path, more than 25 rows, too)", hazard_causes=(Cause.KINK,),
         exact=lambda a: _component(a[5:], (int(a[2]), int(a[3]), int(a[4]), int(a[0]), int(a[1])))),
)
