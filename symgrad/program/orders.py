"""The values of torch's sort and topk as SymPy functions, with their exact values and torch's
backward (issue 20: `torch.sort(x).values`, `torch.topk(x, k).values` of a vector).

`order_at(p, how, k, a_0, ..., a_(n-1))` is position p of the values torch returns: how = 0 for
`torch.sort(x)`, 1 for `torch.sort(x, descending=True)`, 2 for `torch.topk(x, k)`, 3 for
`torch.topk(x, k, largest=False)`. Its mathematics is the order statistic (the p-th smallest, or
largest): piecewise linear, with a kink where the element at position p ties with another (the
one-sided slopes go to different elements). torch's backward (derivatives.yaml: sort and topk,
value_selecting_reduction_backward) gives the whole gradient to the index it returned; where
elements tie, which index that is is torch's own choice (neither sort nor topk is stable on the
CPU, and they choose differently): the exact side asks torch itself, on the elements' ranks, which
order it returns (its choice depends only on how the elements compare).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from itertools import combinations
from typing import Any, Final

import sympy as sp
import torch

from . import exact as ex
from ..base.causes import Cause
from ..base.errors import UnsupportedNodeError

Args = Sequence[ex.Exact]
LEAD: Final = 3  # p, how, k
_SPELLED: Final = ("torch.sort(x)", "torch.sort(x, descending=True)", "torch.topk(x, k)",
                   "torch.topk(x, k, largest=False)")


class order_at(sp.Function):
    """Position p of torch.sort's (topk's) values of the vector a (the module's docstring)."""

    is_real = True
    LEAD = LEAD

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > LEAD and all(a.is_Integer for a in args[:LEAD])
        if ok:
            p, how, k = (int(a) for a in args[:LEAD])
            ok = 0 <= how <= 3 and 0 <= p < (len(args) - LEAD if how < 2 else k) and k <= len(args) - LEAD
        if not ok:
            raise UnsupportedNodeError("order_at(p, how, k, a_0, ...) takes the position, the call (0, 1: sort, 2, 3: "
                                       "topk), k and the elements.\nFix: write it as `torch.sort(x).values[p]` in torch code.")
        return None

    def param(self) -> tuple[int, int, int]:
        return tuple(int(a) for a in self.args[:LEAD])  # type: ignore[return-value]

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return "order_at", tuple(self.args[LEAD:]), self.param()

    def written_out(self) -> sp.Expr:
        p, how, _ = self.param()
        a = self.args[LEAD:]
        n = len(a)
        rank = p if how in (0, 3) else n - 1 - p  # the (rank)-th smallest
        # the order statistic: the largest of the smallest over every subset of rank + 1 elements
        return sp.Max(*[sp.Min(*c) for c in combinations(a, n - rank)])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex <= LEAD:
            raise sp.core.function.ArgumentIndexError(self, argindex)
        d = sp.Dummy("d", real=True)
        arg = self.args[argindex - 1]
        return sp.diff(self.written_out().subs(arg, d), d).subs(d, arg)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        return self.written_out()._eval_evalf(prec)


# --------------------------------------------------------------------------- exact values


def _ranks(a: Args) -> list[int]:
    """Each element's dense rank (equal elements the same): how the elements compare, exactly."""
    distinct: list[ex.Exact] = []
    for u in sorted(a, key=functools.cmp_to_key(ex.cmp)):  # exactly: 1 + 2**-240 after 1
        if not distinct or ex.cmp(u, distinct[-1]) != 0:
            distinct.append(u)
    out = []
    for u in a:
        out.append(next(r for r, v in enumerate(distinct) if ex.cmp(u, v) == 0))
    return out


def torch_order(a: Args, p: Sequence[int]) -> list[int]:
    """The indices torch returns, in order: its own call on the ranks (its choice among ties depends
    only on how the elements compare)."""
    _, how, k = p
    ranks = torch.tensor(_ranks(a), dtype=torch.float64)
    if how < 2:
        return [int(i) for i in torch.sort(ranks, descending=how == 1).indices]
    return [int(i) for i in torch.topk(ranks, k, largest=how == 2).indices]


def value(a: Args, p: Sequence[int]) -> ex.Exact:
    if any(ex.is_nan(u) for u in a):
        return ex.NAN
    return a[torch_order(a, p)[p[0]]]


def partials(a: Args, p: Sequence[int]) -> tuple[ex.Exact, ...]:
    """value_selecting_reduction_backward: the whole gradient to the index torch returned."""
    at = torch_order(a, p)[p[0]]
    return tuple(ex.ONE if j == at else ex.ZERO for j in range(len(a)))


def piece(a: Args, p: Sequence[int]) -> int | frozenset[int] | None:
    """The element at position p, or, where others equal it (the kink), the set of them."""
    if any(ex.is_nan(u) for u in a):
        return None
    at = torch_order(a, p)[p[0]]
    tied = [j for j, u in enumerate(a) if ex.cmp(u, a[at]) == 0]
    return at if len(tied) == 1 else frozenset(tied)


def on_piece(taken: Any, a: Args, p: Sequence[int]) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    """On the piece where element `taken` (the tied set `taken`, moving together) is at position p:
    slope 1 to it (split among the set)."""
    chosen = sorted(taken) if isinstance(taken, frozenset) else [int(taken)]
    share = ex.Q(1, len(chosen))
    return a[chosen[0]], tuple(share if j in chosen else ex.ZERO for j in range(len(a)))


def call_text(stacked: str, param: Sequence[int]) -> str:
    pos, how, k = param
    if how < 2:
        return f"torch.sort({stacked}, 0, descending={how == 1}).values[{pos}]"
    return f"torch.topk({stacked}, {k}, 0, largest={how == 2}).values[{pos}]"


CONVENTION: Final = ("torch's sort and topk give the whole gradient to the index they returned; among tied elements "
                     "that is their own choice (neither is stable on the CPU).")
OP_FIELDS: Final = (
    dict(name="order_at", torch="torch.sort(x).values[p], torch.topk(x, k).values[p]", value=value,
         partials=lambda a, v, p: partials(a, p), piece=piece, on_piece=on_piece, nonsmooth="kink",
         convention=CONVENTION,
         alternatives="a tie has no derivative; `torch.sort` and `torch.topk` choose one of the tied elements"),
)
RULE_FIELDS: Final = (
    dict(cls=order_at, ops=("order_at",),
         when="order_at(p, how, k, a_0, ..., a_(n-1)) is position p of the values of torch.sort (how 0, 1: "
              "descending) or torch.topk (how 2: largest, 3: smallest) of the vector a: the order statistic, torch's own "
              "call, whose backward gives the gradient to the index it returned",
         domain="all reals",
         nonsmooth="a kink where the element at position p ties with another: torch gives the gradient to the index "
                   "it returned",
         hazard_causes=(Cause.KINK,), exact=lambda a: value(a[LEAD:], tuple(int(v) for v in a[:LEAD]))),
)
