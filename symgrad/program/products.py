"""torch's product reductions and the mean `torch.var_mean` returns, as SymPy functions with their
exact values and torch's backward formulas (issue 20: `torch.prod`, `torch.var_mean`).

Each is a fused op of the elements it reduces, lowered to the torch call itself on the stacked
elements (which reproduces torch's bits), as `reductions.py` does for var and std:

| function                              | mathematics           | torch's backward (derivatives.yaml)            |
|---------------------------------------|-----------------------|------------------------------------------------|
| `prod(a_0, ..., a_(n-1))`             | a_0 * ... * a_(n-1)   | prod_backward: the product of the others       |
| `prod_along(m, n, d, j, a_00, ...)`   | group j's product     | the same, within group j                       |
| `vm_mean(a_0, ..., a_(n-1))`          | (a_0 + ...) / n       | var_mean_backward's mean part: 1/n each        |
| `vm_mean_along(m, n, d, j, a_00, ...)`| group j's mean        | the same, within group j                       |

torch's prod_backward is `grad * result / x` where no element is 0; where exactly one is 0 it
is `prod_safe_zeros_backward` (exclusive cumulative products from both ends: the product of the
others, exact in the mathematics), and where two or more are 0 it is 0 everywhere (every product
of the others holds a 0). Each of the three is the product rule's value, so torch's gradient is
the mathematics' at every point: the product is smooth.

`vm_mean` is the mean `torch.var_mean(x)` returns: torch computes it with Welford's running mean,
in the same pass as the variance, which rounds otherwise than `x.mean()` (measured: most random
vectors differ in the last bit), so it lowers to `torch.var_mean(...)[1]`, never to a sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp
from sympy.core.function import ArgumentIndexError

from . import exact as ex
from ..base.errors import UnsupportedNodeError

Args = Sequence[ex.Exact]


class _Grouped(sp.Function):
    """A reduction of its element arguments (after LEAD integer ones: rows, cols, dim, group)."""

    is_real = True
    LEAD = 0
    SPELLED = ""

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        k = cls.LEAD
        if len(args) <= k or any(isinstance(a, (sp.MatrixExpr, sp.MatrixBase)) for a in args) or (
                k and (not all(a.is_Integer for a in args[:k]) or len(args) - k != args[0] * args[1])):
            raise UnsupportedNodeError(
                f"{cls.__name__}(...) takes {'the shape (m, n), the dim, the index of the group and ' if k else ''}"
                f"the elements it reduces, each a scalar argument of its own.\nFix: write it as `{cls.SPELLED}` in "
                "torch code.")
        return None  # never evaluated: the call is torch's reduction

    def positions(self) -> list[int]:
        """The argument positions (0-based, LEAD included) of the group this node reduces."""
        if not self.LEAD:
            return list(range(len(self.args)))
        m, n, d, j = (int(v) for v in self.args[:4])
        at = [j * n + i for i in range(n)] if d == 1 else [i * n + j for i in range(m)]
        return [self.LEAD + k for k in at]

    def group(self) -> list[sp.Basic]:
        return [self.args[k] for k in self.positions()]

    def param(self) -> Any:
        return tuple(int(v) for v in self.args[:self.LEAD]) if self.LEAD else None

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return type(self).__name__, tuple(self.args[self.LEAD:]), self.param()

    def written_out(self) -> sp.Expr:
        """The mathematics in SymPy (its numeric value is this node's)."""
        raise NotImplementedError

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        numeric = all(a.is_number for a in self.args)
        return self.written_out()._eval_evalf(prec) if numeric else None


class _Product(_Grouped):
    def written_out(self) -> sp.Expr:
        return sp.Mul(*self.group())

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        """The product of the group's other arguments (by position: `prod(x, x)` is x*x)."""
        if argindex <= self.LEAD:
            raise ArgumentIndexError(self, argindex)
        at = self.positions()
        if argindex - 1 not in at:
            return sp.S.Zero
        return sp.Mul(*[self.args[k] for k in at if k != argindex - 1])


class _Mean(_Grouped):
    def written_out(self) -> sp.Expr:
        g = self.group()
        return sp.Add(*g) / len(g)

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex <= self.LEAD:
            raise ArgumentIndexError(self, argindex)
        return sp.Rational(1, len(self.positions())) if argindex - 1 in self.positions() else sp.S.Zero


class prod(_Product):
    """`x.prod()`, `torch.prod(x)`: the product of every element."""

    SPELLED = "x.prod()"


class prod_along(_Product):
    """`X.prod(dim=d)`: group j's product (row j for d = 1, column j for d = 0), read on the whole
    matrix (torch's call on it, indexed by j)."""

    LEAD = 4
    SPELLED = "X.prod(dim=1)"


class vm_mean(_Mean):
    """The mean of `torch.var_mean(x)` (and `torch.std_mean`): torch's Welford mean."""

    SPELLED = "torch.var_mean(x)[1]"


class vm_mean_along(_Mean):
    """The mean of `torch.var_mean(X, dim=d)`: group j's Welford mean, read on the whole matrix."""

    LEAD = 4
    SPELLED = "torch.var_mean(X, dim=1)[1]"


class _Einsum(_Grouped):
    """A contraction `torch.einsum` computes with its own kernel (bmm: another rounding, and another
    gradient accumulation, than `torch.trace` or `(a * b).sum()`), of the stacked elements (LEAD = 2:
    the operand's shape (m, n)); the equation is the class's."""

    LEAD = 2
    EQUATION = ""
    OPERANDS = 1

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        m, n = (int(a) for a in args[:2]) if len(args) > 2 and all(a.is_Integer for a in args[:2]) else (0, 0)
        if m * n == 0 or len(args) != 2 + cls.OPERANDS * m * n:
            raise UnsupportedNodeError(f"{cls.__name__}(m, n, ...) takes the shape and the m*n elements of each operand.\n"
                                       f"Fix: write it as `torch.einsum({cls.EQUATION!r}, ...)` in torch code.")
        return None

    def positions(self) -> list[int]:
        return list(range(2, len(self.args)))

    def param(self) -> Any:
        return (int(self.args[0]), int(self.args[1]), self.EQUATION)


class einsum_trace(_Einsum):
    """`torch.einsum("ii->", A)`: the sum of the diagonal of the square (n, n) A."""

    EQUATION = "ii->"

    def written_out(self) -> sp.Expr:
        n = int(self.args[1])
        return sp.Add(*[self.args[2 + i * n + i] for i in range(n)])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex <= 2:
            raise ArgumentIndexError(self, argindex)
        i, j = divmod(argindex - 3, int(self.args[1]))
        return sp.S.One if i == j else sp.S.Zero


class einsum_dot(_Einsum):
    """`torch.einsum("ij,ij->", A, B)` (and "i,i->" of two vectors, (n, 1) here): sum of a_k * b_k."""

    OPERANDS = 2
    EQUATION = "ij,ij->"

    def written_out(self) -> sp.Expr:
        k = (len(self.args) - 2) // 2
        return sp.Add(*[u * v for u, v in zip(self.args[2:2 + k], self.args[2 + k:])])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex <= 2:
            raise ArgumentIndexError(self, argindex)
        k = (len(self.args) - 2) // 2
        at = argindex - 3
        return self.args[2 + (at + k) % (2 * k)]


class einsum_vdot(einsum_dot):
    """`torch.einsum("i,i->", a, b)` of two vectors."""

    EQUATION = "i,i->"


class einsum_matmul(sp.MatMul):
    """`torch.einsum("ij,jk->ik", A, B)`: A @ B for every rule, lowered as torch.einsum (whose backward,
    through bmm, accumulates otherwise than `A @ B`'s for small matrices); `equation` is the user's."""

    torch_op = "einsum"
    equation = "ij,jk->ik"


PRODUCTS: Final = (prod, prod_along, vm_mean, vm_mean_along, einsum_trace, einsum_dot, einsum_vdot)
PRODUCT_OPS: Final = frozenset(cls.__name__ for cls in PRODUCTS)

# --------------------------------------------------------------------------- exact values


def _positions(a: Args, p: Any) -> list[int]:
    if p is None:
        return list(range(len(a)))
    m, n, d, j = p
    return [j * n + i for i in range(n)] if d == 1 else [i * n + j for i in range(m)]


def product_value(a: Args, p: Any = None) -> ex.Exact:
    total: ex.Exact = ex.ONE
    for k in _positions(a, p):
        total = ex.mul(total, a[k])
    return total


def product_partials(a: Args, p: Any = None) -> tuple[ex.Exact, ...]:
    """torch's prod_backward, which is the product of the others at every point (no zero: result /
    a_k; one zero: the exclusive cumulative products; two zeros: 0): prefix times suffix products."""
    at = _positions(a, p)
    prefix: list[ex.Exact] = [ex.ONE]
    for k in at[:-1]:
        prefix.append(ex.mul(prefix[-1], a[k]))
    out: list[ex.Exact] = [ex.ZERO] * len(a)
    suffix: ex.Exact = ex.ONE
    for pos in range(len(at) - 1, -1, -1):
        out[at[pos]] = ex.mul(prefix[pos], suffix)
        suffix = ex.mul(suffix, a[at[pos]])
    return tuple(out)


def mean_value(a: Args, p: Any = None) -> ex.Exact:
    at = _positions(a, p)
    total: ex.Exact = ex.ZERO
    for k in at:
        total = ex.add(total, a[k])
    return ex.div(total, ex.Q(len(at)))


def mean_partials(a: Args, p: Any = None) -> tuple[ex.Exact, ...]:
    at = set(_positions(a, p))
    share = ex.Q(1, len(at))
    return tuple(share if k in at else ex.ZERO for k in range(len(a)))


_TORCH: Final = {
    "einsum_trace": "torch.einsum('ii->', {s}.unflatten(0, ({m}, {n})))",
    "einsum_dot": "torch.einsum('ij,ij->', {s}.unflatten(0, ({m}, {n})), {t}.unflatten(0, ({m}, {n})))",
    "einsum_vdot": "torch.einsum('i,i->', {s}, {t})",
    "prod": "torch.prod({s}, 0)",
    "prod_along": "torch.prod({s}.unflatten(0, ({m}, {n})), {d})[{j}]",
    "vm_mean": "torch.var_mean({s}, 0, correction=0)[1]",
    "vm_mean_along": "torch.var_mean({s}.unflatten(0, ({m}, {n})), {d}, correction=0)[1][{j}]",
}


def product_text(op: str, parts: Sequence[str], param: Any) -> str:
    """The torch call of one of these reductions on its stacked elements, as the generated program
    writes it (stacked along a new first dim, so that a batch of points stays a batch); a product of
    two operands (einsum_dot) stacks each on its own."""
    names = dict(zip("mndj", param)) if param else {}
    names.pop("d", None) if op.startswith("einsum") else None
    k = len(parts) // 2 if op in ("einsum_dot", "einsum_vdot") else len(parts)
    return _TORCH[op].format(s=f"torch.stack([{', '.join(parts[:k])}])", t=f"torch.stack([{', '.join(parts[k:])}])",
                             **names)


_PROD_TEXT = "torch's backward (prod_backward) is the product of the other elements at every point"
OP_FIELDS: tuple[dict[str, Any], ...] = (
    dict(name="prod", torch=_TORCH["prod"].format(s="torch.stack([{0}, ...])"),
         value=lambda a, p: product_value(a), partials=lambda a, v, p: product_partials(a)),
    dict(name="prod_along", torch=_TORCH["prod_along"].replace("{s}", "torch.stack([{0}, ...])"),
         value=product_value, partials=lambda a, v, p: product_partials(a, p)),
    dict(name="vm_mean", torch=_TORCH["vm_mean"].format(s="torch.stack([{0}, ...])"),
         value=lambda a, p: mean_value(a), partials=lambda a, v, p: mean_partials(a)),
    dict(name="vm_mean_along", torch=_TORCH["vm_mean_along"].replace("{s}", "torch.stack([{0}, ...])"),
         value=mean_value, partials=lambda a, v, p: mean_partials(a, p)),
)

def _dot_partials(a: Args) -> tuple[ex.Exact, ...]:
    k = len(a) // 2
    return tuple(a[(i + k) % (2 * k)] for i in range(2 * k))


def _dot_value(a: Args) -> ex.Exact:
    k = len(a) // 2
    total: ex.Exact = ex.ZERO
    for u, v in zip(a[:k], a[k:]):
        total = ex.add(total, ex.mul(u, v))
    return total


def _diagonal(a: Args, p: Any) -> list[int]:
    n = int(p[1])
    return [i * n + i for i in range(n)]


def _trace_value(a: Args, p: Any) -> ex.Exact:
    total: ex.Exact = ex.ZERO
    for k in _diagonal(a, p):
        total = ex.add(total, a[k])
    return total


OP_FIELDS += (
    dict(name="einsum_trace", torch="torch.einsum('ii->', A)",
         value=lambda a, p: _trace_value(a, p),
         partials=lambda a, v, p: tuple(ex.ONE if k in _diagonal(a, p) else ex.ZERO for k in range(len(a)))),
    *(dict(name=name, torch=f"torch.einsum({eq!r}, A, B)", value=lambda a, p: _dot_value(a),
           partials=lambda a, v, p: _dot_partials(a)) for name, eq in (("einsum_dot", "ij,ij->"), ("einsum_vdot", "i,i->"))),
)

RULE_FIELDS: Final[tuple[dict[str, Any], ...]] = (
    dict(cls=prod, ops=("prod",), when="prod(a_0, ..., a_(n-1)) is the product of its n scalar arguments (the "
         "elements it reduces), as `x.prod()` and `torch.prod(x)` are read: torch's `torch.prod(torch.stack([a_0, "
         f"...]), 0)`; {_PROD_TEXT} (a zero element included)", domain="all reals",
         exact=lambda a: product_value(a)),
    dict(cls=prod_along, ops=("prod_along",), when="prod_along(m, n, d, j, a_0, ..., a_(mn-1)) is the product of "
         "group j (row j for d = 1, column j for d = 0) of the (m, n) matrix of the a's, as `X.prod(dim=d)` is read: "
         f"torch's `torch.prod(M, d)[j]` on the whole matrix; {_PROD_TEXT} of its group",
         domain="all reals", exact=lambda a: product_value(a[4:], tuple(int(v) for v in a[:4]))),
    dict(cls=vm_mean, ops=("vm_mean",), when="vm_mean(a_0, ..., a_(n-1)) is the mean (a_0 + ...)/n that "
         "`torch.var_mean(x)` and `torch.std_mean(x)` return: torch's `torch.var_mean(torch.stack([a_0, ...]), 0)[1]`, "
         "Welford's running mean (it rounds otherwise than `x.mean()`), whose backward is 1/n to each element",
         domain="all reals", exact=lambda a: mean_value(a)),
    dict(cls=vm_mean_along, ops=("vm_mean_along",), when="vm_mean_along(m, n, d, j, a_0, ..., a_(mn-1)) is the mean "
         "of group j of the (m, n) matrix of the a's that `torch.var_mean(X, dim=d)` returns: torch's "
         "`torch.var_mean(M, d)[1][j]` on the whole matrix", domain="all reals",
         exact=lambda a: mean_value(a[4:], tuple(int(v) for v in a[:4]))),
    dict(cls=einsum_trace, ops=("einsum_trace",), when="einsum_trace(n, n, a_00, ..., a_(n-1)(n-1)) is the sum of the "
         "diagonal, as `torch.einsum('ii->', A)` is read: torch's einsum itself (its bmm rounds otherwise than "
         "torch.trace)", domain="all reals", exact=lambda a: _trace_value(a[2:], a[:2])),
    *(dict(cls=cls, ops=(cls.__name__,), when=f"{cls.__name__}(m, n, a..., b...) is sum_k a_k*b_k, as "
           f"`torch.einsum({cls.EQUATION!r}, a, b)` is read: torch's einsum itself (its bmm rounds, and accumulates "
           "the gradient, otherwise than `(a * b).sum()`)", domain="all reals", exact=lambda a: _dot_value(a[2:]))
      for cls in (einsum_dot, einsum_vdot)),
)
