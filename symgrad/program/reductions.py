"""torch's reductions by max, min and spread as SymPy functions, with their exact values and
torch's backward formulas (issue 20, item 3).

Each is a fused op of the elements it reduces, lowered to the torch call itself on the stacked
elements (which reproduces torch's bits), as `losses.py` does for the losses:

| function                       | mathematics                            | torch's backward (derivatives.yaml)          |
|--------------------------------|----------------------------------------|----------------------------------------------|
| `amax(a_0, ..., a_(n-1))`      | Max(a_0, ..., a_(n-1))                 | grad / k to each of the k tied maxima        |
| `amin(a_0, ...)`               | Min(a_0, ...)                          | grad / k to each of the k tied minima        |
| `max_at(a_0, ...)`             | Max(a_0, ...)                          | grad to the index torch returns (the first)  |
| `min_at(a_0, ...)`             | Min(a_0, ...)                          | grad to the index torch returns (the first)  |
| `var(c, a_0, ..., a_(n-1))`    | sum((a_j - mean)**2) / (n - c)         | 2/(n - c) * (a_j - mean) * grad              |
| `std(c, a_0, ..., a_(n-1))`    | sqrt(var(c, a_0, ...))                 | var's with grad / (2*std), 0 where std is 0  |

`amax` is `x.max()`, `torch.max(x)`, `torch.amax(x, dim)` (torch splits a tie evenly,
evenly_distribute_backward and scale_grad_by_count); `max_at` is the values of `x.max(dim=d)`
(value_selecting_reduction_backward: the whole gradient to the index torch returns, which on
the CPU is the first of the tied elements). The mathematics of both is Max: where two elements
tie for the maximum it has no derivative (a kink), and torch's choice is its convention. `std`
at a vector of equal elements is a cone (a kink; torch's gradient is 0 there), and where
n - c <= 0 both are undefined (torch: nan, with its warning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

from . import exact as ex
from ..base.causes import Cause
from ..base.errors import UnsupportedNodeError
from .primitives import logsumexp

Args = Sequence[ex.Exact]


class _Reduction(sp.Function):
    """A reduction of scalar arguments; evaluated numerically as its mathematics written out."""

    is_real = True

    def written_out(self) -> sp.Expr:
        raise NotImplementedError

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        return self.written_out()._eval_evalf(prec)


class _Extreme(_Reduction):
    """The largest (smallest) of its scalar arguments, as one torch reduction."""

    LARGEST = True

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        if not args or any(isinstance(a, (sp.MatrixExpr, sp.MatrixBase)) for a in args):
            raise UnsupportedNodeError(
                f"{cls.__name__}(...) takes the elements it reduces, each a scalar argument of its own.\n"
                f"Fix: write it as `x.{'max' if cls.LARGEST else 'min'}()` in torch code.")
        return None  # never evaluated: the call is torch's reduction

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        """1 where argument argindex is strictly the extreme, 0 where another is (SymPy's Heaviside
        at a tie is a convention, not a derivative: the symbolic side takes one-sided limits)."""
        a = self.args[argindex - 1]
        sign = 1 if self.LARGEST else -1
        return sp.Mul(*[sp.Heaviside(sign * (a - b)) for k, b in enumerate(self.args) if k != argindex - 1])

    def written_out(self) -> sp.Expr:
        return (sp.Max if self.LARGEST else sp.Min)(*self.args)


class amax(_Extreme):
    """`x.max()`, `torch.amax(x, dim)`: Max of the elements; torch splits a tie evenly."""


class amin(_Extreme):
    """`x.min()`, `torch.amin(x, dim)`: Min of the elements; torch splits a tie evenly."""

    LARGEST = False


class max_at(_Extreme):
    """The values of `x.max(dim=d)`: Max of the elements; torch's gradient goes to its index."""


class min_at(_Extreme):
    """The values of `x.min(dim=d)`: Min of the elements; torch's gradient goes to its index."""

    LARGEST = False


class _Spread(_Reduction):
    """var(c, a_0, ..., a_(n-1)) and std: the first argument is the correction c (1: unbiased)."""

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        if len(args) < 2 or not args[0].is_Integer or any(isinstance(a, (sp.MatrixExpr, sp.MatrixBase)) for a in args):
            raise UnsupportedNodeError(
                f"{cls.__name__}({', '.join(sp.sstr(a) for a in args)}) is not a {cls.__name__} symgrad reads: the first "
                "argument is the correction (an integer, 1 for torch's unbiased default), then the elements.\n"
                f"Fix: write it as `x.{cls.__name__}()` in torch code.")
        return None

    def mean_and_squares(self) -> tuple[sp.Expr, sp.Expr]:
        a = self.args[1:]
        mean = sp.Add(*a) / len(a)
        return mean, sp.Add(*[(u - mean) ** 2 for u in a]) / (len(a) - self.args[0])


class var(_Spread):
    """`x.var(dim, correction=c)`: sum((a_j - mean)**2) / (n - c)."""

    def written_out(self) -> sp.Expr:
        return self.mean_and_squares()[1]

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex == 1:
            raise sp.core.function.ArgumentIndexError(self, argindex)
        mean, _ = self.mean_and_squares()
        return 2 * (self.args[argindex - 1] - mean) / (len(self.args) - 1 - self.args[0])


class std(_Spread):
    """`x.std(dim, correction=c)`: sqrt(var)."""

    def written_out(self) -> sp.Expr:
        return sp.sqrt(self.mean_and_squares()[1])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex == 1:
            raise sp.core.function.ArgumentIndexError(self, argindex)
        mean, _ = self.mean_and_squares()
        return (self.args[argindex - 1] - mean) / ((len(self.args) - 1 - self.args[0]) * self)


class _Along(_Reduction):
    """var_along(c, m, n, d, j, a_0, ..., a_(mn-1)): the var (std) with correction c of group j
    (row j for d = 1, column j for d = 0) of the (m, n) matrix whose elements, row-major, are
    the a's, as `X.var(dim=d)` is read; logsumexp_along(m, n, d, j, a_0, ...) likewise. torch
    computes each along a dim of the whole matrix (another rounding than one group alone), so
    the node holds the whole matrix, and lowers to torch's call on it, indexed by j."""

    LEAD = 5  # the integer arguments before the elements

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        k = cls.LEAD
        if len(args) <= k or not all(a.is_Integer for a in args[:k]) or len(args) - k != args[k - 4] * args[k - 3]:
            raise UnsupportedNodeError(
                f"{cls.__name__}(...) takes {'the correction, ' if k == 5 else ''}the shape (m, n), the dim, the index "
                f"of the group and the m*n elements.\nFix: write it as `X.{cls.__name__.removesuffix('_along')}(dim=1)` "
                "in torch code.")
        return None

    def group(self) -> list[sp.Basic]:
        k = self.LEAD
        m, n, d, j = (int(v) for v in self.args[k - 4:k])
        a = self.args[k:]
        return [a[j * n + i] for i in range(n)] if d == 1 else [a[i * n + j] for i in range(m)]

    def whole(self) -> sp.Basic:
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex <= self.LEAD:
            raise sp.core.function.ArgumentIndexError(self, argindex)
        group = self.group()
        arg = self.args[argindex - 1]
        if arg not in group:
            return sp.S.Zero
        whole = self.whole()
        return whole.fdiff(group.index(arg) + 1 + (len(whole.args) - len(group)))  # type: ignore[attr-defined]

    def written_out(self) -> sp.Expr:
        whole = self.whole()
        return whole.written_out() if isinstance(whole, _Reduction) else whole  # type: ignore[return-value]


class var_along(_Along):
    """`X.var(dim=d)`: group j's var, read on the whole matrix."""

    def whole(self) -> sp.Basic:
        return var(self.args[0], *self.group())


class std_along(_Along):
    """`X.std(dim=d)`: group j's std, read on the whole matrix."""

    def whole(self) -> sp.Basic:
        return std(self.args[0], *self.group())


class logsumexp_along(_Along):
    """`torch.logsumexp(X, dim=d)`: group j's logsumexp, read on the whole matrix."""

    LEAD = 4

    def whole(self) -> sp.Basic:
        return logsumexp(*self.group())


EXTREMES: Final = (amax, amin, max_at, min_at)
SPREADS: Final = (var, std)
ALONG: Final = (var_along, std_along, logsumexp_along)
REDUCTIONS: Final = (*EXTREMES, *SPREADS, *ALONG)


# --------------------------------------------------------------------------- exact values


def _extreme(a: Args, largest: bool) -> tuple[ex.Exact, list[int]]:
    """The extreme value and the indices of every argument that equals it (NaN: the NaNs)."""
    nans = [k for k, u in enumerate(a) if ex.is_nan(u)]
    if nans:
        return ex.NAN, nans
    best = a[0]
    for u in a[1:]:
        c = ex.cmp(u, best)
        if (c > 0) if largest else (c < 0):
            best = u
    return best, [k for k, u in enumerate(a) if ex.cmp(u, best) == 0]


def _evenly(a: Args, largest: bool) -> tuple[ex.Exact, ...]:
    """torch's evenly_distribute_backward (and amax's scale_grad_by_count): grad / k to each of
    the k arguments equal to the result."""
    _, tied = _extreme(a, largest)
    share = ex.Q(1, len(tied))
    return tuple(share if k in tied else ex.ZERO for k in range(len(a)))


def _first(a: Args, largest: bool) -> tuple[ex.Exact, ...]:
    """value_selecting_reduction_backward: the whole gradient to the index torch returns (the
    first of the tied arguments on the CPU)."""
    _, tied = _extreme(a, largest)
    return tuple(ex.ONE if k == tied[0] else ex.ZERO for k in range(len(a)))


def _piece(a: Args, largest: bool) -> int | frozenset[int] | None:
    """Which argument is the extreme; where several tie (the kink), the set of them (the
    executed path takes a set for a tie). Just beside a tie of three, the two left still tie:
    that piece is the set, on which the moved argument has slope 0."""
    value, tied = _extreme(a, largest)
    if ex.is_nan(value):
        return None
    return tied[0] if len(tied) == 1 else frozenset(tied)


def _on_piece(k: int | frozenset[int], a: Args) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    """The piece where argument k (the tied set k) is the extreme: its value, slope 1 in it (split
    among the set) and 0 in the others."""
    chosen = sorted(k) if isinstance(k, frozenset) else [k]
    share = ex.Q(1, len(chosen))
    return a[chosen[0]], tuple(share if j in chosen else ex.ZERO for j in range(len(a)))


def _mean(a: Args) -> ex.Exact:
    total: ex.Exact = ex.ZERO
    for u in a:
        total = ex.add(total, u)
    return ex.div(total, ex.Q(len(a)))


def var_value(a: Args, c: int) -> ex.Exact:
    """sum((a_j - mean)**2) / (n - c); where n - c <= 0 torch divides by max(0, n - c) = 0 (inf,
    or nan for equal elements, and a warning): the mathematics has no value there."""
    n = len(a)
    m = _mean(a)
    total: ex.Exact = ex.ZERO
    for u in a:
        d = ex.sub(u, m)
        total = ex.add(total, ex.mul(d, d))
    return ex.div(total, ex.Q(max(n - c, 0)))


def var_partials(a: Args, c: int) -> tuple[ex.Exact, ...]:
    """torch's var_backward: (2 / (n - c)) * (a_j - mean) * grad (NaN where n - c <= 0)."""
    n = len(a)
    if n - c <= 0:
        return tuple(ex.NAN for _ in a)
    m = _mean(a)
    return tuple(ex.mul(ex.Q(2, n - c), ex.sub(u, m)) for u in a)


def std_value(a: Args, c: int) -> ex.Exact:
    v = var_value(a, c)
    return v if not ex.is_finite(v) else ex.rpow(v, ex.HALF)


def std_partials(a: Args, s: ex.Exact, c: int) -> tuple[ex.Exact, ...]:
    """torch's std_backward: var_backward(grad / (2 * result)), the quotient masked to 0 where
    the result is 0 (a vector of equal elements: torch 2.13's gradient there is 0)."""
    n = len(a)
    if n - c <= 0 or ex.is_nan(s):
        return tuple(ex.NAN for _ in a)
    if ex.is_zero(s):
        return tuple(ex.ZERO for _ in a)
    m = _mean(a)
    return tuple(ex.div(ex.sub(u, m), ex.mul(ex.Q(n - c), s)) for u in a)


def _std_piece(a: Args, c: int) -> Any:
    """Off the line of equal elements, one smooth piece; on it (std 0) the cone's tip (None),
    beside it the direction the elements lie in, as for the 2-norm."""
    if len(a) - c <= 0 or all(ex.cmp(u, a[0]) == 0 for u in a):
        return None if len(a) - c > 0 else 0  # n - c <= 0: one piece, undefined (`undefined`)
    m = _mean(a)
    return tuple(ex.sub(u, m) for u in a)


def _std_on_piece(direction: Any, a: Args, c: int) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    """At the tip, the cone along `direction` (the deviations just beside the point): value 0,
    slope the direction's deviations over (n - c) times their std (the one-sided limit)."""
    if not isinstance(direction, tuple) or not all(ex.cmp(u, a[0]) == 0 for u in a):
        s = std_value(a, c)
        return s, std_partials(a, s, c)
    sd = std_value(direction, c)
    return ex.ZERO, tuple(ex.div(d, ex.mul(ex.Q(len(a) - c), sd)) for d in direction)


def _group(a: Args, p: tuple[int, ...]) -> tuple[list[int], int]:
    """The positions of group j among the (m, n) matrix's elements, and the correction (0 where
    the param has none: logsumexp's)."""
    c, m, n, d, j = p if len(p) == 5 else (0, *p)
    return ([j * n + k for k in range(n)] if d == 1 else [i * n + j for i in range(m)]), c


def _along(fn: Any, a: Args, p: Any) -> Any:
    at, c = _group(a, p)
    return fn([a[k] for k in at], c)


def _along_partials(fn: Any, a: Args, p: Any, *value: Any) -> tuple[ex.Exact, ...]:
    at, c = _group(a, p)
    got = fn([a[k] for k in at], *value, c)
    out = [ex.ZERO] * len(a)
    for k, g in zip(at, got):
        out[k] = g
    return tuple(out)


def _along_on_piece(direction: Any, a: Args, p: Any) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    at, c = _group(a, p)
    value, got = _std_on_piece(direction, [a[k] for k in at], c)
    out = [ex.ZERO] * len(a)
    for k, g in zip(at, got):
        out[k] = g
    return value, tuple(out)


def _extreme_op(name: str, largest: bool, evenly: bool) -> dict[str, Any]:
    which = "max" if largest else "min"
    torch = (f"torch.a{which}(torch.stack([{{0}}, ...]), 0)" if evenly
             else f"torch.{which}(torch.stack([{{0}}, ...]), 0).values")
    share = ("splits the gradient evenly among tied elements (1/k to each of k)" if evenly
             else "gives the whole gradient to the index it returns (the first of the tied elements)")
    return dict(
        name=name, torch=torch, value=lambda a, p: _extreme(a, largest)[0],
        partials=lambda a, v, p: (_evenly if evenly else _first)(a, largest),
        piece=lambda a, p: _piece(a, largest), on_piece=lambda k, a, p: _on_piece(k, a), nonsmooth="kink",
        convention=f"torch's {which} reduction {share}.",
        alternatives=(f"`x.{which}()` and `torch.a{which}` split a tie evenly; `x.{which}(dim=d).values` gives all "
                      "to the first; `torch.logsumexp(x / t, 0) * t` is a smooth stand-in for a small t"))


# The rows `ops.OPS` adds (as `Op(**fields)`), each with torch's spelling and backward; `op_fields`
# adds logsumexp along a dim, from the exact log-sum-exp and softmax weights `ops.py` holds.
OP_FIELDS: Final[tuple[dict[str, Any], ...]] = (
    _extreme_op("amax", True, True), _extreme_op("amin", False, True),
    _extreme_op("max_at", True, False), _extreme_op("min_at", False, False),
    dict(name="var", torch="torch.var(torch.stack([{0}, ...]), correction={c})",
         value=lambda a, p: var_value(a, p), partials=lambda a, v, p: var_partials(a, p)),
    dict(name="std", torch="torch.std(torch.stack([{0}, ...]), correction={c})",
         value=lambda a, p: std_value(a, p), partials=lambda a, v, p: std_partials(a, v, p),
         piece=lambda a, p: _std_piece(a, p), on_piece=lambda d, a, p: _std_on_piece(d, a, p), nonsmooth="kink",
         convention="torch's std has gradient 0 where every element is equal (its backward grad / (2*std) is "
                    "masked where std is 0).",
         alternatives="`torch.std` gives 0 there; `torch.sqrt(x.var() + eps)` is a smooth stand-in"),
    dict(name="var_along", torch="torch.var(torch.stack([{0}, ...]).unflatten(0, ({m}, {n})), {d}, correction={c})[{j}]",
         value=lambda a, p: _along(var_value, a, p), partials=lambda a, v, p: _along_partials(var_partials, a, p)),
    dict(name="std_along", torch="torch.std(torch.stack([{0}, ...]).unflatten(0, ({m}, {n})), {d}, correction={c})[{j}]",
         value=lambda a, p: _along(std_value, a, p), partials=lambda a, v, p: _along_partials(std_partials, a, p, v),
         piece=lambda a, p: _along(_std_piece, a, p), on_piece=_along_on_piece, nonsmooth="kink",
         convention="torch's std has gradient 0 where every element of the group is equal (its backward "
                    "grad / (2*std) is masked where std is 0).",
         alternatives="`torch.std` gives 0 there; `torch.sqrt(X.var(dim) + eps)` is a smooth stand-in"),
)

_EXTREME_TEXT = ("{f}(a_0, ..., a_(n-1)) is the {which} of its n scalar arguments (the elements it reduces), as "
                 "{spelled} are read: torch's `{torch}`, whose backward {share}")


def _extreme_rule(cls: type[sp.Function], spelled: str, share: str) -> dict[str, Any]:
    largest = cls.LARGEST  # type: ignore[attr-defined]
    op = next(f for f in OP_FIELDS if f["name"] == cls.__name__)
    return dict(cls=cls, ops=(cls.__name__,),
                when=_EXTREME_TEXT.format(f=cls.__name__, which="largest" if largest else "smallest", spelled=spelled,
                                          torch=op["torch"].replace("{0}", "a_0"), share=share),
                domain="all reals",
                nonsmooth=f"kink where two arguments tie for the {'largest' if largest else 'smallest'}: no derivative "
                          f"there; torch {share}",
                hazard_causes=(Cause.KINK,), exact=lambda a: _extreme(a, largest)[0])


# The rows `rules.RULES` adds (as `Rule(**fields)`, the `hazard_causes` a kink's).
RULE_FIELDS: Final[tuple[dict[str, Any], ...]] = (
    _extreme_rule(amax, "`x.max()`, `torch.max(x)` and `torch.amax(x, dim)`", "splits a tie evenly (1/k each)"),
    _extreme_rule(amin, "`x.min()`, `torch.min(x)` and `torch.amin(x, dim)`", "splits a tie evenly (1/k each)"),
    _extreme_rule(max_at, "the values of `x.max(dim=d)` and `torch.max(x, d)`",
                  "gives the whole gradient to the index it returns (the first tied one)"),
    _extreme_rule(min_at, "the values of `x.min(dim=d)` and `torch.min(x, d)`",
                  "gives the whole gradient to the index it returns (the first tied one)"),
    dict(cls=var, ops=("var",), when="var(c, a_0, ..., a_(n-1)) is sum((a_j - mean)**2)/(n - c), as `x.var()` "
         "and `x.var(dim, correction=c)` are read (c = 1, unbiased, by default): torch's "
         "`torch.var(torch.stack([a_0, ...]), correction=c)`, whose backward is 2/(n - c)*(a_j - mean)",
         domain="n - c > 0 (torch: nan otherwise)", hazard_causes=(Cause.DOMAIN,), exact=lambda a: var_value(a[1:], int(a[0]))),
    dict(cls=std, ops=("std",), when="std(c, a_0, ..., a_(n-1)) is sqrt(var(c, a_0, ...)), as `x.std()` and "
         "`x.std(dim, correction=c)` are read: torch's `torch.std(torch.stack([a_0, ...]), correction=c)`, "
         "whose backward is (a_j - mean)/((n - c)*std)", domain="n - c > 0 (torch: nan otherwise)",
         nonsmooth="a cone where every element is equal (std 0): no derivative there; torch's gradient is 0",
         hazard_causes=(Cause.KINK, Cause.DOMAIN), exact=lambda a: std_value(a[1:], int(a[0]))),
    dict(cls=var_along, ops=("var_along",), when="var_along(c, m, n, d, j, a_0, ..., a_(mn-1)) is the var of group j "
         "(row j for d = 1, column j for d = 0) of the (m, n) matrix of the a's, as `X.var(dim=d)` is read: torch's "
         "`torch.var(M, d, correction=c)[j]` on the whole matrix (a group alone rounds otherwise)",
         domain="n - c > 0 in the group (torch: nan otherwise)", hazard_causes=(Cause.DOMAIN,),
         exact=lambda a: _along(var_value, a[5:], tuple(int(v) for v in a[:5]))),
    dict(cls=std_along, ops=("std_along",), when="std_along(c, m, n, d, j, a_0, ...) is the std of group j of the "
         "(m, n) matrix of the a's, as `X.std(dim=d)` is read: torch's `torch.std(M, d, correction=c)[j]`",
         domain="n - c > 0 in the group (torch: nan otherwise)",
         nonsmooth="a cone where every element of the group is equal (std 0): no derivative there; torch's gradient is 0",
         hazard_causes=(Cause.KINK, Cause.DOMAIN),
         exact=lambda a: _along(std_value, a[5:], tuple(int(v) for v in a[:5]))),
)


def rule_fields(lse: Any) -> tuple[dict[str, Any], ...]:
    """Every row, logsumexp along a dim included (`lse(a)`: the exact log-sum-exp of `ops.py`)."""
    return (*RULE_FIELDS, dict(
        cls=logsumexp_along, ops=("logsumexp_along",), when="logsumexp_along(m, n, d, j, a_0, ..., a_(mn-1)) is the "
        "logsumexp of group j (row j for d = 1, column j for d = 0) of the (m, n) matrix of the a's, as "
        "`torch.logsumexp(X, dim=d)` is read: torch's `torch.logsumexp(M, d)[j]` on the whole matrix (a group alone "
        "rounds otherwise), whose backward is the group's softmax weights", domain="all reals",
        exact=lambda a: _along(lambda g, c: lse(g), a[4:], tuple(int(v) for v in a[:4]))))

_LSE_TEXT = "torch.logsumexp(torch.stack([{0}, ...]).unflatten(0, ({m}, {n})), {d})[{j}]"


def op_fields(lse: Any, weights: Any) -> tuple[dict[str, Any], ...]:
    """Every row, logsumexp along a dim included: `lse(a)` and `weights(a)` are the exact
    log-sum-exp and softmax weights (torch's backward of logsumexp is the softmax weights)."""
    return (*OP_FIELDS, dict(name="logsumexp_along", torch=_LSE_TEXT,
                             value=lambda a, p: _along(lambda g, c: lse(g), a, p),
                             partials=lambda a, v, p: _along_partials(lambda g, c: tuple(weights(g)), a, p)))


REDUCTION_OPS: Final = frozenset({*(f["name"] for f in OP_FIELDS), "logsumexp_along"})
_PARAM_NAMES: Final = {"var_along": "cmndj", "std_along": "cmndj", "logsumexp_along": "mndj"}
SPREAD_OPS: Final = frozenset({"var", "std", "var_along", "std_along", "logsumexp_along"})  # with a param


def reduction_text(op: str, stacked: str, param: Any) -> str:
    """The torch call of a reduction on its stacked elements, as the generated program writes it."""
    template = _LSE_TEXT if op == "logsumexp_along" else next(f["torch"] for f in OP_FIELDS if f["name"] == op)
    names = dict(zip(_PARAM_NAMES.get(op, "c"), param if isinstance(param, tuple) else (param,)))
    text = template.replace("torch.stack([{0}, ...])", stacked)
    for key, v in names.items():
        text = text.replace("{" + key + "}", str(v))
    return text
