"""torch's cosine similarity as a SymPy function, with its exact value and torch's backward (issue
20: `F.cosine_similarity(x1, x2, dim, eps)`, D2L's attention chapter).

`cos_sim(m, n, d, j, eps, a_00, ..., a_(m-1)(n-1), b_00, ...)` is group j (row j for d = 1, column
j for d = 0) of torch's cosine similarity of the (m, n) matrices a and b (a vector of length m is
its (m, 1) column, d = 0, j = 0):

    y_j = sum_k a_k b_k / (max(||a||, eps) * max(||b||, eps))      (a, b: group j's elements)

torch 2.13 (aten/src/ATen/native/Distance.cpp, `cosine_similarity`) computes it as
`((x1 / n1) * (x2 / n2)).sum(dim)` with n1 = linalg.vector_norm(x1, 2, dim, keepdim=True).clone()
clamped to eps *in place under no_grad* (each norm on its own, not their product): the value is
the formula above, but autograd never sees the clamp, so its gradient flows through the norm as
if it were not clamped. Where ||a|| > eps that is the exact derivative; where 0 < ||a|| < eps it is
not (the mathematics divides by the constant eps there and has no term through the norm; torch
adds -dot * a_k / (eps**2 * max(||b||, eps) * ||a||)): `departs` says so, and the symbolic side
runs with the mathematics' partials (a finding, not a silent agreement). At ||a|| = 0 torch's
norm_backward is 0, which is the mathematics'. Where ||a|| is exactly eps, max has a kink: the
one-sided slopes differ (through the norm above, none below), and torch takes the one above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

from . import exact as ex
from ..base.causes import Cause
from ..base.errors import UnsupportedNodeError
from .normalization import Fused
from .program import number

Args = Sequence[ex.Exact]
LEAD: Final = 5  # m, n, d, j, eps


class cos_sim(Fused):
    """Group j's cosine similarity of two (m, n) matrices (the module's docstring)."""

    LEAD = LEAD

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > LEAD and all(a.is_Integer for a in args[:4]) and args[4].is_positive is True
        if ok:
            m, n, d, j = (int(a) for a in args[:4])
            ok = len(args) == LEAD + 2 * m * n and d in (0, 1) and 0 <= j < (m if d == 1 else n)
        if not ok:
            raise UnsupportedNodeError(
                "cos_sim(...) takes (m, n, d, j, eps), the m*n elements of x1, then x2's (eps > 0).\n"
                "Fix: write it as `F.cosine_similarity(x1, x2, dim, eps)` in torch code.")
        return None

    def param(self) -> tuple[Any, ...]:
        return (*(int(a) for a in self.args[:4]), self.args[4])

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return "cos_sim", tuple(self.args[LEAD:]), self.param()

    def written_out(self) -> sp.Expr:
        a, b = _group(self.args[LEAD:], self.param())
        dot = sp.Add(*[u * v for u, v in zip(a, b)])
        eps = self.args[4]
        return dot / (sp.Max(sp.sqrt(sp.Add(*[u ** 2 for u in a])), eps) * sp.Max(sp.sqrt(sp.Add(*[v ** 2 for v in b])), eps))


def _positions(p: Sequence[Any]) -> list[int]:
    m, n, d, j = (int(v) for v in p[:4])
    return [j * n + k for k in range(n)] if d == 1 else [k * n + j for k in range(m)]


def _group(a: Sequence[Any], p: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    size = int(p[0]) * int(p[1])
    at = _positions(p)
    return [a[k] for k in at], [a[size + k] for k in at]


# --------------------------------------------------------------------------- exact values


def _total(values: Sequence[ex.Exact]) -> ex.Exact:
    out: ex.Exact = ex.ZERO
    for v in values:
        out = ex.add(out, v)
    return out


def _norm(v: Sequence[ex.Exact]) -> ex.Exact:
    total = _total([ex.mul(u, u) for u in v])
    return ex.ZERO if ex.is_zero(total) else ex.rpow(total, ex.HALF)


def _parts(a: Args, p: Sequence[Any]) -> tuple[list[ex.Exact], list[ex.Exact], ex.Exact, ex.Exact, ex.Exact, ex.Exact]:
    """Group j of a and b, the dot product, ||a||, ||b|| and eps, exact."""
    x, y = _group(a, p)
    eps = ex.from_sympy(p[4]) if isinstance(p[4], sp.Basic) else p[4]
    return x, y, _total([ex.mul(u, v) for u, v in zip(x, y)]), _norm(x), _norm(y), eps


def _clamped(norm: ex.Exact, eps: ex.Exact) -> ex.Exact:
    return norm if ex.cmp(norm, eps) >= 0 else eps


def value(a: Args, p: Sequence[Any]) -> ex.Exact:
    x, y, dot, na, nb, eps = _parts(a, p)
    return ex.div(dot, ex.mul(_clamped(na, eps), _clamped(nb, eps)))


def _partials(a: Args, p: Sequence[Any], through: tuple[bool, bool]) -> tuple[ex.Exact, ...]:
    """d y / d a_k = b_k/(ca*cb) - [through a's norm] dot*a_k/(ca**2*cb*||a||) (0 where ||a|| is 0), and
    alike for b; `through`: whether each norm's term is there (torch: always; the mathematics: where
    that norm is above eps)."""
    x, y, dot, na, nb, eps = _parts(a, p)
    ca, cb = _clamped(na, eps), _clamped(nb, eps)
    out = [ex.ZERO] * len(a)
    size = int(p[0]) * int(p[1])
    for mine, other, n_mine, c_mine, c_other, offset, on in ((x, y, na, ca, cb, 0, through[0]),
                                                            (y, x, nb, cb, ca, size, through[1])):
        scale = ex.mul(c_mine, c_other)
        back = ex.div(dot, ex.mul(ex.mul(c_mine, scale), n_mine)) if on and not ex.is_zero(n_mine) else None
        for k, pos in enumerate(_positions(p)):
            d = ex.div(other[k], scale)
            out[offset + pos] = d if back is None else ex.sub(d, ex.mul(back, mine[k]))
    return tuple(out)


def torch_partials(a: Args, p: Sequence[Any]) -> tuple[ex.Exact, ...]:
    """torch's gradient: through both norms, the in-place clamp invisible to autograd."""
    return _partials(a, p, (True, True))


def _sides(a: Args, p: Sequence[Any]) -> tuple[int, int]:
    _, _, _, na, nb, eps = _parts(a, p)
    return ex.cmp(na, eps), ex.cmp(nb, eps)


def departs(a: Args, p: Sequence[Any]) -> bool:
    """Whether a norm lies strictly below eps (and above 0): there torch's gradient keeps a term
    through the norm that the mathematics, dividing by the constant eps, does not have."""
    x, y, _, na, nb, eps = _parts(a, p)
    return any(ex.cmp(n, eps) < 0 and not ex.is_zero(n) for n in (na, nb))


def math(a: Args, p: Sequence[Any]) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    sa, sb = _sides(a, p)
    return value(a, p), _partials(a, p, (sa >= 0, sb >= 0))


def piece(a: Args, p: Sequence[Any]) -> tuple[int, int] | None:
    """Each norm's side of eps (1 above, -1 below); None where one is exactly eps (the kink of max)."""
    sides = _sides(a, p)
    return None if 0 in sides else sides


def on_piece(taken: Any, a: Args, p: Sequence[Any]) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    """The mathematics on the piece a run beside the point took: through each norm above eps, not below."""
    here = _sides(a, p)
    sides = taken if isinstance(taken, tuple) else here
    through = tuple(s > 0 if h == 0 else h > 0 for s, h in zip(sides, here))
    return value(a, p), _partials(a, p, through)  # type: ignore[arg-type]


def torch_expression(operands: Sequence[sp.Basic], param: Sequence[Any], held: Any) -> sp.Expr:
    """What torch computes, as SymPy, for second derivatives (order=2): dot / (n1 * n2) with each
    norm n = ||a|| + held(max(||a||, eps) - ||a||), `held(u)` a value whose derivative is 0 (the
    in-place clamp under no_grad: the value is the clamped norm, the graph is the norm's). Above
    eps it is the mathematics; below eps its derivatives go through ||a|| as torch's do."""
    a, b = _group(operands, param)
    eps = param[4]
    dot = sp.Add(*[u * v for u, v in zip(a, b)])
    norms = []
    for group in (a, b):
        n = sp.sqrt(sp.Add(*[u ** 2 for u in group]))
        norms.append(n + held(sp.Max(n, eps) - n))
    return dot / (norms[0] * norms[1])


def zero_norm(values: Sequence[ex.Exact], param: Sequence[Any]) -> bool:
    """Whether x1's or x2's group is all zeros (its norm 0, where torch's norm_backward masks the
    gradient and no written-out form has its double backward)."""
    a, b = _group(values, param)
    return any(all(ex.is_zero(u) for u in group) for group in (a, b))


def call_text(args: Sequence[str], param: Sequence[Any]) -> str:
    m, n, d, j, eps = param
    size = m * n
    x1 = f"torch.stack([{', '.join(args[:size])}]).unflatten(0, ({m}, {n}))"
    x2 = f"torch.stack([{', '.join(args[size:])}]).unflatten(0, ({m}, {n}))"
    return f"torch.nn.functional.cosine_similarity({x1}, {x2}, {d}, {float(eps)!r})[{j}]"


def below_eps(a: Args, p: Sequence[Any], executed: Any, mathematics: Any) -> str:
    """The control-flow finding's sentence where a norm is below eps: what torch computes (each
    norm clamped to eps, the clamp invisible to autograd), which norm, and the two derivatives."""
    n, d, j = (int(v) for v in p[1:4])
    _, _, _, na, nb, eps = _parts(a, p)
    e = number(eps)
    which = " and ".join(f"||{name}|| = {number(v)}" for name, v in (("x1", na), ("x2", nb))
                         if ex.cmp(v, eps) < 0 and not ex.is_zero(v))
    group = "" if n == 1 and d == 0 else f" (the result's element {j}: {'row' if d == 1 else 'column'} {j} of x1 and x2)"
    return (f"torch's `F.cosine_similarity` computes sum((x1 / n1) * (x2 / n2)) with each norm clamped to eps = {e}, "
            f"n1 = max(||x1||, {e}) and n2 = max(||x2||, {e}), in place under no_grad (aten's cosine_similarity). "
            f"Here {which}{group} is below eps, so torch divides by {e}, as the mathematics does, but the clamp is "
            "invisible to autograd: its gradient still flows through the unclamped norm, adding to d/dx1_k the term "
            f"-dot * x1_k / ({e}**2 * n2 * ||x1||) (and alike for x2), which the mathematics, whose divisor there is "
            f"the constant {e}, does not have. So the program's derivative is {number(executed)} and the "
            f"mathematics' {number(mathematics)}.")


CONVENTION: Final = ("F.cosine_similarity clamps each norm at eps in place under no_grad: where a norm is exactly "
                     "eps torch's gradient flows through the norm, the slope of the piece above eps.")
OP_FIELDS: Final = (
    dict(name="cos_sim", torch="torch.nn.functional.cosine_similarity(X1, X2, dim, eps)[j]", value=value,
         partials=lambda a, v, p: torch_partials(a, p), departs=departs, math=math, shortcut_detail=below_eps,
         shortcut="torch's F.cosine_similarity clamps each norm at eps in place under no_grad (aten's "
                  "cosine_similarity), so its gradient flows through a norm below eps as if it were not clamped; "
                  "the mathematics divides by the constant eps there.",
         piece=piece, on_piece=on_piece, nonsmooth="kink", convention=CONVENTION,
         alternatives="`F.cosine_similarity` with a smaller eps, or `(a * b).sum() / (a.norm() * b.norm() + eps)`, "
                      "whose gradient is its own mathematics'"),
)
RULE_FIELDS: Final = (
    dict(cls=cos_sim, ops=("cos_sim",),
         when="cos_sim(m, n, d, j, eps, a..., b...) is group j (row j for d = 1, column j for d = 0) of the cosine "
              "similarity of the (m, n) matrices a and b, sum a_k b_k / (max(||a||, eps) * max(||b||, eps)), as "
              "`F.cosine_similarity(x1, x2, dim, eps)` is read: torch's own call, which clamps each norm in place "
              "under no_grad (its gradient flows through a norm below eps as if it were not clamped)",
         domain="all reals (eps > 0)",
         nonsmooth="a kink where a norm is exactly eps (torch takes the slope above); below eps torch's gradient is "
                   "not the mathematics' (a control-flow finding)",
         hazard_causes=(Cause.KINK, Cause.CONTROL_FLOW),
         exact=lambda a: value(a[LEAD:], (int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4]))),
)
