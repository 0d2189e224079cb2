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

from collections.abc import Callable, Sequence
from typing import Any, Final

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
    its `OPTIONS` constant options (smooth_l1_loss's beta), then the elements of each of its
    tensors, n of each, in the order torch reads them."""

    is_real = True
    TENSORS = 1
    OPTIONS = 0

    @classmethod
    def _tensors(cls, args: Sequence[sp.Basic]) -> int:
        return cls.TENSORS

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        head = 1 + cls.OPTIONS
        tensors = cls._tensors(args) if len(args) >= head else cls.TENSORS
        if (not args or args[0] not in (0, 1, 2) or len(args) < head + tensors or (len(args) - head) % tensors
                or (args[0] == 2 and len(args) != head + tensors)):
            raise UnsupportedNodeError(
                f"{cls.__name__}({', '.join(sp.sstr(a) for a in args)}) is not a loss symgrad reads: the first "
                "argument is the reduction (1 for 'mean', 0 for 'sum', 2 for 'none' of one element), "
                + (f"then its {cls.OPTIONS} option(s), " if cls.OPTIONS else "")
                + "then the n elements of each tensor.\n"
                f"Fix: write it as torch.nn.functional.{cls.__name__}(...) in torch code.")
        return None

    @property
    def n(self) -> int:
        return (len(self.args) - 1 - self.OPTIONS) // self._tensors(self.args)

    def options(self) -> tuple[sp.Basic, ...]:
        return tuple(self.args[1:1 + self.OPTIONS])

    def elements(self) -> tuple[sp.Basic, ...]:
        return tuple(self.args[1 + self.OPTIONS:])

    def parts(self) -> list[tuple[sp.Basic, ...]]:
        """The elements, one tuple per position j (a_j, or (a_j, t_j))."""
        n, head = self.n, 1 + self.OPTIONS
        return [tuple(self.args[head + k * n + j] for k in range(self._tensors(self.args))) for j in range(n)]

    def scale(self) -> sp.Basic:
        return sp.Integer(self.n) ** -1 if self.args[0] == 1 else sp.Integer(1)

    def _position(self, argindex: int) -> tuple[int, int]:
        if argindex <= 1 + self.OPTIONS:
            raise ArgumentIndexError(self, argindex)
        return divmod(argindex - 2 - self.OPTIONS, self.n)  # (which tensor, which element)

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


class weighted_binary_cross_entropy(_Loss):
    """`torch.nn.functional.binary_cross_entropy(p, t, weight=w, reduction)` (and `nn.BCELoss(weight=w)`):
    -sum(w_j*(t_j*log(p_j) + (1 - t_j)*log(1 - p_j))) / n**r ('mean' divides by n, not by the
    weights, as torch's kernel multiplies each element's loss by its weight before the reduction).
    Its arguments: (r, p_0, ..., t_0, ..., w_0, ...), the weights constants (torch does not
    differentiate them), broadcast to p's shape."""

    TENSORS = 3

    def written_out(self) -> sp.Expr:
        return -self.scale() * sp.Add(*[w * (t * sp.log(p) + (1 - t) * sp.log(1 - p)) for p, t, w in self.parts()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, j = self._position(argindex)
        p, t, w = self.parts()[j]
        if k == 0:
            return self.scale() * w * (-t / p + (1 - t) / (1 - p))
        if k == 1:
            return self.scale() * w * (sp.log(1 - p) - sp.log(p))
        return -self.scale() * (t * sp.log(p) + (1 - t) * sp.log(1 - p))


class smooth_l1_loss(_Loss):
    """`torch.nn.functional.smooth_l1_loss(a, t, reduction, beta)` (beta > 0; beta = 0 is read as
    l1_loss, as torch's F does): with d_j = a_j - t_j, the sum of d**2/(2*beta) where |d| < beta
    and |d| - beta/2 elsewhere, / n**r. Its arguments: (r, beta, a_0, ..., t_0, ...)."""

    TENSORS = 2
    OPTIONS = 1

    def written_out(self) -> sp.Expr:
        (beta,) = self.options()
        return self.scale() * sp.Add(*[sp.Piecewise(((a - t) ** 2 / (2 * beta), sp.Abs(a - t) < beta),
                                                    (sp.Abs(a - t) - beta / 2, True)) for a, t in self.parts()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, j = self._position(argindex)
        a, t = self.parts()[j]
        (beta,) = self.options()
        d = a - t
        return (1 - 2 * k) * self.scale() * sp.Piecewise((d / beta, sp.Abs(d) < beta), (sp.sign(d), True))


class huber_loss(_Loss):
    """`torch.nn.functional.huber_loss(a, t, reduction, delta)` (delta > 0): with d_j = a_j - t_j,
    the sum of d**2/2 where |d| < delta and delta*(|d| - delta/2) elsewhere, / n**r. Its
    arguments: (r, delta, a_0, ..., t_0, ...)."""

    TENSORS = 2
    OPTIONS = 1

    def written_out(self) -> sp.Expr:
        (delta,) = self.options()
        return self.scale() * sp.Add(*[sp.Piecewise(((a - t) ** 2 / 2, sp.Abs(a - t) < delta),
                                                    (delta * (sp.Abs(a - t) - delta / 2), True)) for a, t in self.parts()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, j = self._position(argindex)
        a, t = self.parts()[j]
        (delta,) = self.options()
        d = a - t
        return (1 - 2 * k) * self.scale() * sp.Piecewise((d, sp.Abs(d) < delta), (delta * sp.sign(d), True))


class binary_cross_entropy_with_logits(_Loss):
    """`torch.nn.functional.binary_cross_entropy_with_logits(x, t, weight, pos_weight, reduction)`:
    the sum of w_j*((1 - t_j)*x_j + l_j*log(1 + exp(-x_j))) with l_j = (pw_j - 1)*t_j + 1, / n**r
    ('mean' divides by n, not by the weights). Its arguments: (r, has_weight, has_pos_weight,
    x_0, ..., t_0, ..., then w_0, ... and pw_0, ... where given: constants, as torch does not
    differentiate them)."""

    OPTIONS = 2

    @classmethod
    def _tensors(cls, args: Sequence[sp.Basic]) -> int:
        return 2 + int(bool(args[1])) + int(bool(args[2]))

    def terms(self) -> list[tuple[sp.Basic, sp.Basic, sp.Basic, sp.Basic]]:
        """(x, t, w, pw) per element, w and pw 1 where not given."""
        has_w, has_pw = (bool(o) for o in self.options())
        out = []
        for part in self.parts():
            x, t, rest = part[0], part[1], list(part[2:])
            w = rest.pop(0) if has_w else sp.Integer(1)
            pw = rest.pop(0) if has_pw else sp.Integer(1)
            out.append((x, t, w, pw))
        return out

    def written_out(self) -> sp.Expr:
        return self.scale() * sp.Add(*[w * ((1 - t) * x + ((pw - 1) * t + 1) * sp.log(1 + sp.exp(-x)))
                                       for x, t, w, pw in self.terms()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, j = self._position(argindex)
        x, t, w, pw = self.terms()[j]
        softplus = sp.log(1 + sp.exp(-x))
        if k == 0:
            return self.scale() * w * (((pw - 1) * t + 1) / (1 + sp.exp(-x)) - pw * t)
        if k == 1:
            return self.scale() * w * (-x + (pw - 1) * softplus)
        has_w = bool(self.options()[0])
        if k == 2 and has_w:
            return self.scale() * ((1 - t) * x + ((pw - 1) * t + 1) * softplus)
        return self.scale() * w * t * softplus


class weighted_nll_loss(_Loss):
    """`torch.nn.functional.nll_loss(L, y, weight=w, ignore_index=k, reduction)` of n rows and C
    classes: -sum(w[y_i]*a_i)/W**r over the rows kept (y_i != k), a_i = L[i, y_i], W the sum of
    their weights ('mean' divides by W, not by n). Its arguments: (r, k, C, y_0, ..., y_(n-1),
    w_0, ..., w_(C-1), a_0, ..., a_(n-1)), with a_i = 0 for a row ignored."""

    @property
    def OPTIONS(self) -> int:  # type: ignore[override]
        return 2 + self.rows + int(self.args[2])

    @property
    def rows(self) -> int:
        return (len(self.args) - 3 - int(self.args[2])) // 2

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        if (len(args) < 4 or args[0] not in (0, 1) or not args[2].is_Integer or args[2] < 1
                or (len(args) - 3 - int(args[2])) % 2 or len(args) - 3 - int(args[2]) < 2):
            raise UnsupportedNodeError(
                f"weighted_nll_loss({', '.join(sp.sstr(a) for a in args[:6])}, ...) is not a loss symgrad reads: "
                "(r, ignore_index, C, the n labels, the C class weights, the n picked elements).\n"
                "Fix: write it as torch.nn.functional.nll_loss(L, y, weight=w, ignore_index=k) in torch code.")
        return None

    @property
    def n(self) -> int:
        return self.rows

    def kept(self) -> list[tuple[int, sp.Basic, sp.Basic]]:
        """(row, weight, element) of every row kept."""
        n, classes, ignore = self.rows, int(self.args[2]), self.args[1]
        labels = self.args[3:3 + n]
        weights = self.args[3 + n:3 + n + classes]
        elements = self.args[3 + n + classes:]
        return [(i, weights[int(y)], elements[i]) for i, y in enumerate(labels) if y != ignore]

    def scale(self) -> sp.Basic:
        return 1 / sp.Add(*[w for _, w, _ in self.kept()]) if self.args[0] == 1 else sp.Integer(1)

    def written_out(self) -> sp.Expr:
        return -self.scale() * sp.Add(*[w * a for _, w, a in self.kept()])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, j = self._position(argindex)
        weight = next((w for i, w, _ in self.kept() if i == j), sp.Integer(0))
        return -self.scale() * weight


class smoothed_cross_entropy(_Loss):
    """`torch.nn.functional.cross_entropy(X, y, weight=w, ignore_index=k, label_smoothing=s, reduction)`
    of an (n, C) matrix of logits and integer labels, as torch's cross_entropy_loss_label_smoothing
    computes it from one L = log_softmax(X, 1): (1 - s)*nll_loss(L, y, w, k) + s/C * smooth, where
    smooth = -sum over the rows kept of sum_c w_c*L[i, c], divided for 'mean' by the kept rows'
    total weight (their count without weight=), as nll_loss is. Its arguments: (r, s, k, C, row,
    y_0, ..., y_(n-1), w_0, ..., w_(C-1), X[0, 0], ..., X[n-1, C-1]); row is -1 for 'mean' (r = 1)
    and 'sum' (r = 0), and for 'none' (r = 2) the row whose loss this node is (0 where ignored)."""

    @property
    def OPTIONS(self) -> int:  # type: ignore[override]
        return 4 + self.rows + int(self.args[3])

    @property
    def rows(self) -> int:
        return (len(self.args) - 5 - int(self.args[3])) // (int(self.args[3]) + 1)

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        classes = args[3] if len(args) > 3 else None
        rest = len(args) - 5 - int(classes) if classes is not None and classes.is_Integer else -1
        if (len(args) < 7 or args[0] not in (0, 1, 2) or classes is None or not classes.is_Integer or classes < 1
                or rest <= 0 or rest % (int(classes) + 1) or not args[4].is_Integer):
            raise UnsupportedNodeError(
                f"smoothed_cross_entropy({', '.join(sp.sstr(a) for a in args[:6])}, ...) is not a loss symgrad reads: "
                "(r, label_smoothing, ignore_index, C, row, the n labels, the C class weights, the n*C logits).\n"
                "Fix: write it as torch.nn.functional.cross_entropy(X, y, label_smoothing=s) in torch code.")
        return None

    @property
    def n(self) -> int:
        return self.rows * int(self.args[3])

    def _position(self, argindex: int) -> tuple[int, int]:
        if argindex <= 1 + self.OPTIONS:
            raise ArgumentIndexError(self, argindex)
        return 0, argindex - 2 - self.OPTIONS

    def written_out(self) -> sp.Expr:
        r, eps, ignore, classes, row = self.args[:5]
        n, c = self.rows, int(classes)
        labels = self.args[5:5 + n]
        weights = self.args[5 + n:5 + n + c]
        x = self.args[5 + n + c:]
        kept = [i for i, y in enumerate(labels) if y != ignore and (row < 0 or i == row)]

        def log_p(i: int, j: int) -> sp.Expr:
            return x[i * c + j] - sp.log(sp.Add(*[sp.exp(x[i * c + m]) for m in range(c)]))

        total = sp.Add(*[weights[int(labels[i])] for i in kept]) if r == 1 else sp.Integer(1)
        nll = -sp.Add(*[weights[int(labels[i])] * log_p(i, int(labels[i])) for i in kept]) / total
        smooth = -sp.Add(*[weights[j] * log_p(i, j) for i in kept for j in range(c)]) / total
        return (1 - eps) * nll + eps / c * smooth

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        arg = self.args[argindex - 1]
        d = sp.Dummy("d", real=True)
        out = self.written_out().subs(arg, d) if not arg.is_number else None
        if out is None:
            raise ArgumentIndexError(self, argindex)
        return sp.diff(out, d).subs(d, arg)


LOSSES: Final = (mse_loss, nll_loss, binary_cross_entropy, weighted_binary_cross_entropy, smooth_l1_loss, huber_loss, binary_cross_entropy_with_logits,
                 weighted_nll_loss, smoothed_cross_entropy)
LOSS_NAMES: Final = frozenset(cls.__name__ for cls in LOSSES)


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


def _bce_parts(a: Sequence[ex.Exact], weighted: bool) -> list[tuple[ex.Exact, ex.Exact, ex.Exact]]:
    """(p, t, w) per element, w 1 where no weight is given."""
    return [(u[0], u[1], u[2] if weighted else ex.ONE) for u in _split(a, 3 if weighted else 2)]


def bce_value(a: Sequence[ex.Exact], mean: int, weighted: bool = False) -> ex.Exact:
    """torch's kernel: (t - 1)*max(log1p(-p), -100) - t*max(log(p), -100), times the weight
    where one is given (`loss.mul_(weight)`), reduced ('mean' divides by n)."""
    parts = _bce_parts(a, weighted)
    terms = [ex.mul(w, ex.sub(ex.mul(ex.sub(t, ex.ONE), _clamped_log(ex.sub(ex.ONE, p))), ex.mul(t, _clamped_log(p))))
             for p, t, w in parts]
    return _scaled(_sum(terms), len(parts), mean)


_EPS: Final = ex.from_float(BCE_EPSILON)


def bce_partials(a: Sequence[ex.Exact], mean: int, weighted: bool = False) -> tuple[ex.Exact, ...]:
    """torch's binary_cross_entropy_backward, grad*(p - t)/max((1 - p)*p, 1e-12) (times the
    weight where one is given, divided by n for 'mean'), and its target backward, -logit(p)*grad
    = (log(1 - p) - log(p))*grad (times the weight), which has no clamp (inf at p = 0). A weight
    is a constant: its partial is the mathematics', its element's loss / n."""
    parts = _bce_parts(a, weighted)
    n = ex.Q(len(parts)) if mean == 1 else ex.ONE
    dp = []
    dt = []
    dw = []
    for p, t, w in parts:
        den = ex.mul(ex.sub(ex.ONE, p), p)
        dp.append(ex.div(ex.mul(w, ex.div(ex.sub(p, t), den if ex.cmp(den, _EPS) >= 0 else _EPS)), n))
        dt.append(ex.div(ex.mul(w, ex.sub(ex.log(ex.sub(ex.ONE, p)), ex.log(p))), n))
        if weighted:
            dw.append(ex.div(ex.neg(ex.add(_xlog(t, p), _xlog(ex.sub(ex.ONE, t), ex.sub(ex.ONE, p)))), n))
    return (*dp, *dt, *dw)


def bce_departs(a: Sequence[ex.Exact], weighted: bool = False) -> bool:
    """Where torch's clamps act: the backward's where (1 - p)*p < 1e-12 (which holds wherever a
    log is below -100 too)."""
    return any(ex.cmp(ex.mul(ex.sub(ex.ONE, p), p), _EPS) < 0 for p, _, _ in _bce_parts(a, weighted))


def _xlog(c: ex.Exact, u: ex.Exact) -> ex.Exact:
    """c*log(u), 0 where c is 0 (the limit the mathematics takes: t*log(p) at t = 0)."""
    return ex.ZERO if ex.is_zero(c) else ex.mul(c, ex.log(u))


def bce_math(a: Sequence[ex.Exact], mean: int, weighted: bool = False) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    """The mathematics' value and partials, no clamp: -w*(t*log(p) + (1 - t)*log(1 - p)) and
    w*(-t/p + (1 - t)/(1 - p)) (a term whose coefficient is 0 is 0; w is 1 without a weight)."""
    parts = _bce_parts(a, weighted)
    n = ex.Q(len(parts)) if mean == 1 else ex.ONE
    losses = [ex.neg(ex.add(_xlog(t, p), _xlog(ex.sub(ex.ONE, t), ex.sub(ex.ONE, p)))) for p, t, _ in parts]
    value = ex.div(_sum([ex.mul(w, v) for (_, _, w), v in zip(parts, losses)]), n)
    dp = []
    for p, t, w in parts:
        left = ex.ZERO if ex.is_zero(t) else ex.neg(ex.div(t, p))
        right = ex.ZERO if ex.is_zero(ex.sub(ex.ONE, t)) else ex.div(ex.sub(ex.ONE, t), ex.sub(ex.ONE, p))
        dp.append(ex.div(ex.mul(w, ex.add(left, right)), n))
    dt = [ex.div(ex.mul(w, ex.sub(ex.log(ex.sub(ex.ONE, p)), ex.log(p))), n) for p, _, w in parts]
    dw = [ex.div(v, n) for v in losses] if weighted else []
    return value, (*dp, *dt, *dw)


def _option(v: object) -> ex.Exact:
    return ex.from_sympy(v) if isinstance(v, sp.Basic) else v  # type: ignore[return-value]


def _norm(n: int, mean: int) -> ex.Exact:
    return ex.Q(1, n) if mean == 1 else ex.ONE


def smooth_l1_value(a: Sequence[ex.Exact], p: tuple[int, object]) -> ex.Exact:
    """torch's smooth_l1 kernel: z = |x - t|, z*z/(2*beta) where z < beta, else z - beta/2, reduced."""
    beta = _option(p[1])
    terms = []
    for x, t in _split(a, 2):
        z = abs(ex.sub(x, t))
        terms.append(ex.div(ex.mul(z, z), ex.mul(ex.Q(2), beta)) if ex.cmp(z, beta) < 0
                     else ex.sub(z, ex.mul(ex.HALF, beta)))
    return _scaled(_sum(terms), len(terms), p[0])


def _clipped(a: Sequence[ex.Exact], mean: int, bound: ex.Exact, scale: ex.Exact) -> tuple[ex.Exact, ...]:
    """norm*scale*d with d = x - t clipped to [-bound, bound], in torch's branches (d <= -bound, d >=
    bound, between; norm = 1/n for 'mean', else 1); the target's is its negative."""
    pairs = _split(a, 2)
    factor = ex.mul(_norm(len(pairs), mean), scale)
    dx = []
    for x, t in pairs:
        d = ex.sub(x, t)
        d = ex.neg(bound) if ex.cmp(d, ex.neg(bound)) <= 0 else bound if ex.cmp(d, bound) >= 0 else d
        dx.append(ex.mul(factor, d))
    return (*dx, *(ex.neg(v) for v in dx))


def smooth_l1_partials(a: Sequence[ex.Exact], p: tuple[int, object]) -> tuple[ex.Exact, ...]:
    """torch's smooth_l1_loss_backward: with d = x - t, -norm where d <= -beta, norm where d >= beta,
    norm*d/beta between; the target's is its negative. At |d| = beta both branches are the
    mathematics' slope +-norm: the loss is smooth there."""
    beta = _option(p[1])
    return _clipped(a, p[0], beta, ex.div(ex.ONE, beta))


def huber_value(a: Sequence[ex.Exact], p: tuple[int, object]) -> ex.Exact:
    """torch's huber kernel: z = |x - t|, z*z/2 where z < delta, else delta*(z - delta/2), reduced."""
    delta = _option(p[1])
    terms = []
    for x, t in _split(a, 2):
        z = abs(ex.sub(x, t))
        terms.append(ex.mul(ex.HALF, ex.mul(z, z)) if ex.cmp(z, delta) < 0
                     else ex.mul(delta, ex.sub(z, ex.mul(ex.HALF, delta))))
    return _scaled(_sum(terms), len(terms), p[0])


def huber_partials(a: Sequence[ex.Exact], p: tuple[int, object]) -> tuple[ex.Exact, ...]:
    """torch's huber_loss_backward: with d = x - t, -norm*delta where d <= -delta, norm*delta where
    d >= delta, norm*d between; the target's is its negative."""
    return _clipped(a, p[0], _option(p[1]), ex.ONE)


Scalar = Callable[[ex.Exact], ex.Exact]


def _logit_terms(a: Sequence[ex.Exact], p: tuple[int, object, object]) -> list[tuple[ex.Exact, ...]]:
    """(x, t, w, pw) per element of binary_cross_entropy_with_logits, w and pw 1 where not given."""
    has_w, has_pw = bool(p[1]), bool(p[2])
    out = []
    for part in _split(a, 2 + has_w + has_pw):
        rest = list(part[2:])
        w = rest.pop(0) if has_w else ex.ONE
        pw = rest.pop(0) if has_pw else ex.ONE
        out.append((part[0], part[1], w, pw))
    return out


def bce_logits_value(a: Sequence[ex.Exact], p: tuple[int, object, object], softplus: Scalar) -> ex.Exact:
    """torch's kernel, (1 - t)*x - l*log_sigmoid(x) times w with l = (pw - 1)*t + 1, reduced
    ('mean' divides by n); -log_sigmoid(x) is softplus(-x), exactly."""
    terms = []
    for x, t, w, pw in _logit_terms(a, p):
        lw = ex.add(ex.mul(ex.sub(pw, ex.ONE), t), ex.ONE)
        terms.append(ex.mul(w, ex.add(ex.mul(ex.sub(ex.ONE, t), x), ex.mul(lw, softplus(ex.neg(x))))))
    return _scaled(_sum(terms), len(terms), int(p[0]))  # type: ignore[call-overload]


def bce_logits_partials(a: Sequence[ex.Exact], p: tuple[int, object, object], softplus: Scalar,
                        sigmoid: Scalar) -> tuple[ex.Exact, ...]:
    """torch's binary_cross_entropy_with_logits_backward: (l*sigmoid(x) - pw*t)*w*grad (sigmoid(x)
    - t without pos_weight), / n for 'mean'; its target backward, (log_sigmoid(-x) -
    pw*log_sigmoid(x))*w*grad, which is -x + (pw - 1)*softplus(-x) exactly. The weights are
    constants (torch does not differentiate them): their partials are the mathematics'."""
    terms = _logit_terms(a, p)
    norm = _norm(len(terms), int(p[0]))  # type: ignore[call-overload]
    dx, dt, dw, dpw = [], [], [], []
    for x, t, w, pw in terms:
        lw = ex.add(ex.mul(ex.sub(pw, ex.ONE), t), ex.ONE)
        sp_neg = softplus(ex.neg(x))
        dx.append(ex.mul(norm, ex.mul(w, ex.sub(ex.mul(lw, sigmoid(x)), ex.mul(pw, t)))))
        dt.append(ex.mul(norm, ex.mul(w, ex.add(ex.neg(x), ex.mul(ex.sub(pw, ex.ONE), sp_neg)))))
        dw.append(ex.mul(norm, ex.add(ex.mul(ex.sub(ex.ONE, t), x), ex.mul(lw, sp_neg))))
        dpw.append(ex.mul(norm, ex.mul(w, ex.mul(t, sp_neg))))
    return (*dx, *dt, *(dw if p[1] else ()), *(dpw if p[2] else ()))


def _weighted_parts(a: Sequence[ex.Exact], p: tuple) -> tuple[list[ex.Exact], ex.Exact]:  # type: ignore[type-arg]
    """The weight of each row (0 where ignored) and the total weight of the rows kept."""
    ignore, classes = p[1], int(p[2])
    n = len(a)
    labels, weights = p[3:3 + n], [_option(w) for w in p[3 + n:3 + n + classes]]
    per_row = [ex.ZERO if y == ignore else weights[int(y)] for y in labels]
    return per_row, _sum(per_row)


def weighted_nll_value(a: Sequence[ex.Exact], p: tuple) -> ex.Exact:  # type: ignore[type-arg]
    """torch's nll_loss kernel: -sum(w[y_i]*a_i) over the rows kept, / their total weight for 'mean'."""
    per_row, total = _weighted_parts(a, p)
    value = ex.neg(_sum([ex.mul(w, v) for w, v in zip(per_row, a)]))
    return ex.div(value, total) if int(p[0]) == 1 else value


def weighted_nll_partials(a: Sequence[ex.Exact], p: tuple) -> tuple[ex.Exact, ...]:  # type: ignore[type-arg]
    """torch's nll_loss_backward: -w[y_i]*grad/total_weight ('mean') or -w[y_i]*grad, 0 for a row ignored."""
    per_row, total = _weighted_parts(a, p)
    return tuple(ex.neg(ex.div(w, total) if int(p[0]) == 1 else w) for w in per_row)


def _smoothed_parts(a: Sequence[ex.Exact], p: tuple, log_softmax: Any,  # type: ignore[type-arg]
                    softmax: Any) -> tuple[list[tuple[int, int, list[ex.Exact], list[ex.Exact]]], ex.Exact, ex.Exact, ex.Exact]:
    """Per row kept (and, for 'none', only the node's row): (i, y_i, its log_softmax, its softmax),
    the divisor (the kept rows' total weight for 'mean', else 1), 1 - s, and s/C."""
    r, eps, ignore, classes, row = int(p[0]), _option(p[1]), p[2], int(p[3]), int(p[4])
    n = len(a) // classes
    labels, weights = p[5:5 + n], [_option(w) for w in p[5 + n:5 + n + classes]]
    rows = []
    for i, y in enumerate(labels):
        if y == ignore or (row >= 0 and i != row):
            continue
        logits = list(a[i * classes:(i + 1) * classes])
        rows.append((i, int(y), [log_softmax(logits, j) for j in range(classes)], softmax(logits)))
    total = _sum([weights[y] for _, y, _, _ in rows]) if r == 1 else ex.ONE
    return rows, total, ex.sub(ex.ONE, eps), ex.div(eps, ex.Q(classes))


def smoothed_ce_value(a: Sequence[ex.Exact], p: tuple, log_softmax: Any, softmax: Any) -> ex.Exact:  # type: ignore[type-arg]
    """torch's cross_entropy_loss_label_smoothing: (1 - s)*nll + (s/C)*smooth, both / the total."""
    rows, total, keep, share = _smoothed_parts(a, p, log_softmax, softmax)
    classes, n = int(p[3]), len(a) // int(p[3])
    weights = [_option(w) for w in p[5 + n:5 + n + classes]]
    nll = _sum([ex.neg(ex.mul(weights[y], logp[y])) for _, y, logp, _ in rows])
    smooth = _sum([ex.neg(ex.mul(weights[j], logp[j])) for _, _, logp, _ in rows for j in range(classes)])
    if ex.is_zero(total):
        return ex.NAN  # 'mean' of no row kept: 0/0, as in torch
    return ex.add(ex.mul(keep, ex.div(nll, total)), ex.mul(share, ex.div(smooth, total)))


def smoothed_ce_partials(a: Sequence[ex.Exact], p: tuple, log_softmax: Any,  # type: ignore[type-arg]
                         softmax: Any) -> tuple[ex.Exact, ...]:
    """torch's backward: one log_softmax backward of the gradient both parts give its result,
    g_j - softmax_j * sum(g), with g_c = -((1 - s)*w[y]*[c = y] + (s/C)*w_c)/total; 0 for a row
    not kept."""
    rows, total, keep, share = _smoothed_parts(a, p, log_softmax, softmax)
    classes, n = int(p[3]), len(a) // int(p[3])
    weights = [_option(w) for w in p[5 + n:5 + n + classes]]
    out = [ex.ZERO] * len(a)  # a row not kept: 0 (torch masks it), also where no row is kept ('mean' of 0/0)
    for i, y, _, soft in rows:
        if ex.is_zero(total):  # rows kept whose weights are all 0: torch's -w/total is 0/0
            out[i * classes:(i + 1) * classes] = [ex.NAN] * classes
            continue
        g = [ex.neg(ex.div(ex.add(ex.mul(keep, weights[y]) if j == y else ex.ZERO, ex.mul(share, weights[j])), total))
             for j in range(classes)]
        summed = _sum(g)
        for j in range(classes):
            out[i * classes + j] = ex.sub(g[j], ex.mul(soft[j], summed))
    return tuple(out)


def _smoothed_text(args: Sequence[str], param: tuple) -> str:  # type: ignore[type-arg]
    r, eps, ignore, classes, row = int(param[0]), float(param[1]), int(param[2]), int(param[3]), int(param[4])
    n = len(args) // classes
    labels = [int(y) for y in param[5:5 + n]]
    weights = [float(w) for w in param[5 + n:5 + n + classes]]
    weight = ("" if all(w == 1.0 for w in weights) else
              ", weight=torch.stack([" + ", ".join(f"torch.full_like({args[0]}, {w!r})" for w in weights) + "])")
    reduction = {0: "sum", 1: "mean", 2: "none"}[r]
    text = (f"torch.nn.functional.cross_entropy(torch.stack([{', '.join(args)}]).reshape({n}, {classes}), "
            f"torch.tensor({labels}){weight}, ignore_index={ignore}, reduction='{reduction}', label_smoothing={eps!r})")
    return f"{text}[{row}]" if r == 2 else text


def _weighted_nll_text(args: Sequence[str], param: tuple, reduction: str) -> str:  # type: ignore[type-arg]
    n, ignore, classes = len(args), int(param[1]), int(param[2])
    labels = [int(y) for y in param[3:3 + n]]
    weights = [float(w) for w in param[3 + n:3 + n + classes]]
    first = next((args[i] for i, y in enumerate(labels) if y != ignore), args[0])
    zero = f"torch.zeros_like({first})"
    cells = [args[i] if c == y else zero for i, y in enumerate(labels) for c in range(classes)]
    weight = ", ".join(f"torch.full_like({first}, {w!r})" for w in weights)
    return (f"torch.nn.functional.nll_loss(torch.stack([{', '.join(cells)}]).reshape({n}, {classes}), "
            f"torch.tensor({labels}), weight=torch.stack([{weight}]), ignore_index={ignore}, reduction='{reduction}')")


def loss_param(e: _Loss) -> object:
    """The op parameter of a fused loss node: its reduction, with its options after it if it has any."""
    return int(e.args[0]) if not e.OPTIONS else (int(e.args[0]), *e.options())


def _options_text(name: str, param: object) -> str:
    if name in ("smooth_l1_loss", "huber_loss"):
        value = float(param[1])  # type: ignore[index,arg-type]
        return f", {'beta' if name == 'smooth_l1_loss' else 'delta'}={value!r}"
    return ""


def loss_text(name: str, args: Sequence[str], param: object) -> str:
    """The torch call of a fused loss on its stacked elements, as the generated program writes it."""
    mean = param if isinstance(param, int) else int(param[0])  # type: ignore[index]
    reduction = {0: "sum", 1: "mean", 2: "none"}[mean]
    options = _options_text(name, param)
    if name == "weighted_nll_loss":
        return _weighted_nll_text(args, param, reduction)  # type: ignore[arg-type]
    if name == "smoothed_cross_entropy":
        return _smoothed_text(args, param)  # type: ignore[arg-type]
    if name == "binary_cross_entropy_with_logits":
        has_w, has_pw = bool(param[1]), bool(param[2])  # type: ignore[index]
        k = 2 + has_w + has_pw
        n = len(args) // k
        stacked = (list(args) if mean == 2  # one element each, or whole tensors where applied elementwise
                   else [f"torch.stack([{', '.join(args[i * n:(i + 1) * n])}])" for i in range(k)])
        extra = ((f", weight={stacked[2]}" if has_w else "")
                 + (f", pos_weight={stacked[2 + has_w]}" if has_pw else ""))
        return (f"torch.nn.functional.{name}({stacked[0]}, {stacked[1]}{extra}, reduction='{reduction}')")
    if name == "weighted_binary_cross_entropy":  # p, t and the weights, stacked (or whole tensors for 'none')
        n = len(args) // 3
        p, t, w = (list(args) if mean == 2 else [f"torch.stack([{', '.join(args[i * n:(i + 1) * n])}])" for i in range(3)])
        return f"torch.nn.functional.binary_cross_entropy({p}, {t}, weight={w}, reduction='{reduction}')"
    if mean == 2:  # one element, or whole tensors where the loss is applied elementwise
        return f"torch.nn.functional.{name}({args[0]}, {args[1]}, reduction='none'{options})"
    if name == "nll_loss":
        n = len(args)
        return (f"torch.nn.functional.nll_loss(torch.stack([{', '.join(args)}]).reshape({n}, 1), "
                f"torch.zeros({n}, dtype=torch.long), reduction='{reduction}')")
    n = len(args) // 2
    return (f"torch.nn.functional.{name}(torch.stack([{', '.join(args[:n])}]), "
            f"torch.stack([{', '.join(args[n:])}]), reduction='{reduction}'{options})")
