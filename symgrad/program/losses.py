"""torch's fused losses as SymPy functions, with their exact values and torch's backward formulas.

`torch.nn.functional.mse_loss`, `nll_loss` (and `cross_entropy`, which is `nll_loss` of
`log_softmax`) and `binary_cross_entropy` are kernels of their own: each reduces its elements in
its own order (nll_loss by a cascade of partial sums) and has its own backward formula
(mse_loss's is (2/n)*(x - t)*grad, rounded in that order), so the composition of their parts
gives other bits. symgrad reads each as one fused function of the elements it reduces, lowered
to the torch call itself on the stacked elements, which reproduces torch's bits:

| function                                     | mathematics                                   |
|----------------------------------------------|-----------------------------------------------|
| `mse_loss(r, a_0, ..., a_(n-1), t_0, ...)`   | sum((a_j - t_j)**2) / n**r                    |
| `nll_loss(r, a_0, ..., a_(n-1))`             | -sum(a_j) / n**r                              |
| `binary_cross_entropy(r, p_0, ..., t_0, ...)`| -sum(t_j*log(p_j) + (1 - t_j)*log(1 - p_j)) / n**r |

r is the reduction: 1 for torch's 'mean', 0 for 'sum' ('none' is read elementwise from the
existing rules). The exact values and partials below are the ones `ops.OPS` holds: torch's
kernels, with binary_cross_entropy's clamps (each log at -100 in the value, the denominator
p*(1 - p) at 1e-12 in the backward), which the mathematics does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sympy as sp
from sympy.core.function import ArgumentIndexError

from . import exact as ex
from ..base.errors import UnsupportedNodeError

# The reduction argument: 1 for torch's 'mean', 0 for 'sum', 2 for 'none' (one element: the loss of
# that element, applied elementwise to tensors).
REDUCTIONS: Final = {"sum": 0, "mean": 1, "none": 2}

# torch's clamps in binary_cross_entropy (aten/src/ATen/native/Loss.cpp): each log at -100 in
# the forward kernel, and the denominator (1 - p)*p at EPSILON = 1e-12 in the backward one.
BCE_LOG_FLOOR: Final = -100
BCE_EPSILON: Final = 1e-12


class _Loss(sp.Function):
    """A fused loss over n elements: its first argument is the reduction (1: mean, 0: sum), then
    the elements of each of its `TENSORS` tensors, n of each, in the order torch reads them."""

    is_real = True
    TENSORS = 1

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        if (not args or args[0] not in (0, 1, 2) or (len(args) - 1) % cls.TENSORS or len(args) < 1 + cls.TENSORS
                or (args[0] == 2 and len(args) != 1 + cls.TENSORS)):
            raise UnsupportedNodeError(
                f"{cls.__name__}({', '.join(sp.sstr(a) for a in args)}) is not a loss symgrad reads: the first "
                "argument is the reduction (1 for 'mean', 0 for 'sum', 2 for 'none' of one element), then the n elements of each tensor.\n"
                f"Fix: write it as torch.nn.functional.{cls.__name__}(...) in torch code.")
        return None

    @property
    def n(self) -> int:
        return (len(self.args) - 1) // self.TENSORS

    def parts(self) -> list[tuple[sp.Basic, ...]]:
        """The elements, one tuple per position j (a_j, or (a_j, t_j))."""
        n = self.n
        return [tuple(self.args[1 + k * n + j] for k in range(self.TENSORS)) for j in range(n)]

    def scale(self) -> sp.Basic:
        return sp.Integer(self.n) ** -1 if self.args[0] == 1 else sp.Integer(1)

    def _position(self, argindex: int) -> tuple[int, int]:
        if argindex == 1:
            raise ArgumentIndexError(self, argindex)
        return divmod(argindex - 2, self.n)  # (which tensor, which element)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        return self.written_out()._eval_evalf(prec)

    def written_out(self) -> sp.Expr:
        raise NotImplementedError


class mse_loss(_Loss):
    """`torch.nn.functional.mse_loss(a, t, reduction)`: sum((a_j - t_j)**2) / n**r."""

    TENSORS = 2

    def written_out(self) -> sp.Expr:
        return self.scale() * sp.Add(*[(a - t) ** 2 for a, t in self.parts()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, j = self._position(argindex)
        a, t = self.parts()[j]
        return (1 - 2 * k) * 2 * (a - t) * self.scale()


class nll_loss(_Loss):
    """`torch.nn.functional.nll_loss(L, y, reduction)` of the picked log-probabilities
    a_j = L[j, y_j]: -sum(a_j) / n**r."""

    def written_out(self) -> sp.Expr:
        return -self.scale() * sp.Add(*[a for (a,) in self.parts()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        self._position(argindex)
        return -self.scale()


class binary_cross_entropy(_Loss):
    """`torch.nn.functional.binary_cross_entropy(p, t, reduction)`: the mathematics is
    -sum(t_j*log(p_j) + (1 - t_j)*log(1 - p_j)) / n**r (no clamp: torch's kernel clamps each
    log at -100, and its backward's denominator at 1e-12)."""

    TENSORS = 2

    def written_out(self) -> sp.Expr:
        return -self.scale() * sp.Add(*[t * sp.log(p) + (1 - t) * sp.log(1 - p) for p, t in self.parts()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, j = self._position(argindex)
        p, t = self.parts()[j]
        if k == 0:
            return self.scale() * (-t / p + (1 - t) / (1 - p))
        return self.scale() * (sp.log(1 - p) - sp.log(p))


LOSSES: Final = (mse_loss, nll_loss, binary_cross_entropy)


# --------------------------------------------------------------------------- exact values


def _split(a: Sequence[ex.Exact], tensors: int) -> list[tuple[ex.Exact, ...]]:
    n = len(a) // tensors
    return [tuple(a[k * n + j] for k in range(tensors)) for j in range(n)]


def _scaled(total: ex.Exact, n: int, mean: int) -> ex.Exact:
    return ex.div(total, ex.Q(n)) if mean == 1 else total


def _sum(values: list[ex.Exact]) -> ex.Exact:
    total: ex.Exact = ex.ZERO
    for v in values:
        total = ex.add(total, v)
    return total


def mse_value(a: Sequence[ex.Exact], mean: int) -> ex.Exact:
    pairs = _split(a, 2)
    return _scaled(_sum([ex.mul(ex.sub(x, t), ex.sub(x, t)) for x, t in pairs]), len(pairs), mean)


def mse_partials(a: Sequence[ex.Exact], mean: int) -> tuple[ex.Exact, ...]:
    """torch's mse_loss_backward: norm*(x - t)*grad with norm = 2/n ('mean') or 2; the target's
    is the same with x and t swapped."""
    pairs = _split(a, 2)
    norm = ex.Q(2, len(pairs)) if mean == 1 else ex.Q(2)
    return (*(ex.mul(norm, ex.sub(x, t)) for x, t in pairs), *(ex.mul(norm, ex.sub(t, x)) for x, t in pairs))


def nll_value(a: Sequence[ex.Exact], mean: int) -> ex.Exact:
    return ex.neg(_scaled(_sum(list(a)), len(a), mean))


def nll_partials(a: Sequence[ex.Exact], mean: int) -> tuple[ex.Exact, ...]:
    """torch's nll_loss_backward: -grad/total_weight ('mean', total_weight = n) or -grad, at each
    picked element."""
    return tuple(ex.neg(ex.Q(1, len(a)) if mean == 1 else ex.ONE) for _ in a)


def _clamped_log(u: ex.Exact) -> ex.Exact:
    v = ex.log(u)
    return v if ex.cmp(v, ex.Q(BCE_LOG_FLOOR)) >= 0 else ex.Q(BCE_LOG_FLOOR)


def bce_value(a: Sequence[ex.Exact], mean: int) -> ex.Exact:
    """torch's kernel: (t - 1)*max(log1p(-p), -100) - t*max(log(p), -100), reduced."""
    pairs = _split(a, 2)
    terms = [ex.sub(ex.mul(ex.sub(t, ex.ONE), _clamped_log(ex.sub(ex.ONE, p))), ex.mul(t, _clamped_log(p)))
             for p, t in pairs]
    return _scaled(_sum(terms), len(pairs), mean)


_EPS: Final = ex.from_float(BCE_EPSILON)


def bce_partials(a: Sequence[ex.Exact], mean: int) -> tuple[ex.Exact, ...]:
    """torch's binary_cross_entropy_backward, grad*(p - t)/max((1 - p)*p, 1e-12) (divided by n
    for 'mean'), and its target backward, -logit(p)*grad = (log(1 - p) - log(p))*grad, which
    has no clamp (inf at p = 0)."""
    pairs = _split(a, 2)
    n = ex.Q(len(pairs)) if mean == 1 else ex.ONE
    dp = []
    dt = []
    for p, t in pairs:
        den = ex.mul(ex.sub(ex.ONE, p), p)
        dp.append(ex.div(ex.div(ex.sub(p, t), den if ex.cmp(den, _EPS) >= 0 else _EPS), n))
        dt.append(ex.div(ex.sub(ex.log(ex.sub(ex.ONE, p)), ex.log(p)), n))
    return (*dp, *dt)


def bce_departs(a: Sequence[ex.Exact]) -> bool:
    """Where torch's clamps act: the backward's where (1 - p)*p < 1e-12 (which holds wherever a
    log is below -100 too)."""
    return any(ex.cmp(ex.mul(ex.sub(ex.ONE, p), p), _EPS) < 0 for p, _ in _split(a, 2))


def _xlog(c: ex.Exact, u: ex.Exact) -> ex.Exact:
    """c*log(u), 0 where c is 0 (the limit the mathematics takes: t*log(p) at t = 0)."""
    return ex.ZERO if ex.is_zero(c) else ex.mul(c, ex.log(u))


def bce_math(a: Sequence[ex.Exact], mean: int) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    """The mathematics' value and partials, no clamp: -(t*log(p) + (1 - t)*log(1 - p)) and
    -t/p + (1 - t)/(1 - p) (a term whose coefficient is 0 is 0)."""
    pairs = _split(a, 2)
    n = ex.Q(len(pairs)) if mean == 1 else ex.ONE
    value = ex.div(ex.neg(_sum([ex.add(_xlog(t, p), _xlog(ex.sub(ex.ONE, t), ex.sub(ex.ONE, p))) for p, t in pairs])), n)
    dp = []
    for p, t in pairs:
        left = ex.ZERO if ex.is_zero(t) else ex.neg(ex.div(t, p))
        right = ex.ZERO if ex.is_zero(ex.sub(ex.ONE, t)) else ex.div(ex.sub(ex.ONE, t), ex.sub(ex.ONE, p))
        dp.append(ex.div(ex.add(left, right), n))
    dt = [ex.div(ex.sub(ex.log(ex.sub(ex.ONE, p)), ex.log(p)), n) for p, _ in pairs]
    return value, (*dp, *dt)


def loss_text(name: str, args: Sequence[str], mean: int) -> str:
    """The torch call of a fused loss on its stacked elements, as the generated program writes it."""
    reduction = {0: "sum", 1: "mean", 2: "none"}[mean]
    if mean == 2:  # one element, or whole tensors where the loss is applied elementwise
        return f"torch.nn.functional.{name}({args[0]}, {args[1]}, reduction='none')"
    if name == "nll_loss":
        n = len(args)
        return (f"torch.nn.functional.nll_loss(torch.stack([{', '.join(args)}]).reshape({n}, 1), "
                f"torch.zeros({n}, dtype=torch.long), reduction='{reduction}')")
    n = len(args) // 2
    return (f"torch.nn.functional.{name}(torch.stack([{', '.join(args[:n])}]), "
            f"torch.stack([{', '.join(args[n:])}]), reduction='{reduction}')")
