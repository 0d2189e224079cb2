"""THE lowering table: how each SymPy node becomes torch, and what we know about it.

`RULES` maps each supported SymPy class to a `Rule`: which op(s) it lowers to and when, its
domain, its kinks or jumps with torch's convention there, its hazards and the cause each hazard
maps to, and its exact mathematical value (the oracle for the symbolic side, evaluated by
`exact_eval`). The ops themselves, with torch's spelling, exact value and backward formula, are
the other table, `OPS` in `ops.py`. Both are data you can print (`docs/supported.md` is generated
from them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from . import exact as ex
from . import ops
from ..base.causes import NAN_TRAP_HINT, Cause
from ..base.errors import UnsupportedNodeError
from sympy.codegen.cfunctions import expm1, log1p

from .ops import Args
from .elementwise import Elementwise
from . import activations as act
from . import losses as ls
from . import reductions as rd
from . import normalization as nm
from . import products as pr
from . import layer_norm as ln
from . import cosine as cs
from . import orders as od
from . import cumulative as cu
from . import gated as gl
from . import distances as dist
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    weighted_binary_cross_entropy,
    huber_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
    weighted_nll_loss,
    smoothed_cross_entropy,
)
from .custom import CustomFunction
from .primitives import CASTS, detach, item, log_softmax, logaddexp, logsumexp, no_grad, sigmoid, softmax, softplus, vector_norm


# The domain of the argument an op needs, in the words a finding's hint and the table below use
# (said once, here).
OP_DOMAINS: Final = {
    "log": "x > 0", "sqrt": "x > 0 for the derivative", "pow_frac": "x > 0 for the derivative",
    "pow": ("x > 0, or x = 0 with y > 0 (where its slope in x is infinite for y < 1); a negative x only at an "
            "integer y, where its slope in y is not real"),
    "div": "a nonzero denominator", "pow_int": "x != 0", "asin": "-1 < x < 1 for the derivative",
    "acos": "-1 < x < 1 for the derivative", "atan2": "(x, y) != (0, 0)", "tan": "x != pi/2 + k*pi",
    "xlogy": "y > 0",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the lowering table: a SymPy class and everything we know about lowering it."""

    cls: type[sp.Basic]
    ops: tuple[str, ...]
    when: str
    domain: str
    nonsmooth: str = ""
    hazards: str = ""
    hazard_causes: tuple[Cause, ...] = ()
    hints: dict[Cause, str] = field(default_factory=dict)
    exact: Callable[[Args], ex.Exact] | None = None


# --------------------------------------------------------------------------- exact SymPy values


def _n_ary(fn: Callable[[ex.Exact, ex.Exact], ex.Exact]) -> Callable[[Args], ex.Exact]:
    def f(a: Args) -> ex.Exact:
        total = a[0]
        for v in a[1:]:
            total = fn(total, v)
        return total

    return f


def _max2(a: ex.Exact, b: ex.Exact) -> ex.Exact:
    return a if ex.cmp(a, b) >= 0 else b


def _min2(a: ex.Exact, b: ex.Exact) -> ex.Exact:
    return a if ex.cmp(a, b) <= 0 else b


def _pow_exact(a: Args) -> ex.Exact:
    base, e = a
    return ex.gpow(base, e)


def _unary(fn: Callable[[ex.Exact], ex.Exact]) -> Callable[[Args], ex.Exact]:
    return lambda a: fn(a[0])


def _component_exact(fn: Callable[[Args, int], ex.Exact]) -> Callable[[Args], ex.Exact]:
    """The exact value of softmax(i, ...) or log_softmax(i, ...): the index is the first argument."""
    return lambda a: fn(a[1:], int(a[0]))


_SMOOTH_HINTS: Final = {Cause.NAN_TRAP: NAN_TRAP_HINT}

# A stable numerator makes a value accurate, but a quotient whose numerator and denominator both
# vanish at the point still cancels in its backward pass (d/dx expm1(x)/x = (x*exp(x) -
# expm1(x))/x**2): the hints say so, and that symgrad checks the rewrite.
_QUOTIENT: Final = ("That makes the value accurate; if it is then divided by something that also vanishes "
                    "here (expm1(x)/x near 0), the quotient's derivative still cancels in the backward pass, "
                    "so compare the rewrite at this point with `symgrad.compare`.")

# --------------------------------------------------------------------------- the table

def _logits_of(a: Args) -> Args:
    """The n*C logits of smoothed_cross_entropy's exact arguments (after r, s, k, C, row, the n
    labels and the C weights): n = (len - 5 - C)/(C + 1)."""
    classes = int(a[3])
    n = (len(a) - 5 - classes) // (classes + 1)
    return a[5 + n + classes:]


_RULE_LIST: tuple[Rule, ...] = (
    Rule(sp.Add, ("add",), "always; terms with a negative coefficient print as subtraction",
         "all reals",
         hazards="subtracting nearly equal numbers cancels digits (`1 - cos(x)` near 0)",
         hazard_causes=(Cause.ROUNDING,),
         hints={Cause.ROUNDING: "The subtraction cancels leading digits: rewrite it so nearly "
                "equal numbers are not subtracted (`expm1(x)` for exp(x) - 1, `2*sin(x/2)**2` for "
                "1 - cos(x), `log1p(x)` for log(1 + x); torch.expm1 and torch.log1p in torch code). "
                + _QUOTIENT},
         exact=_n_ary(ex.add)),
    Rule(sp.Mul, ("mul", "div"), "`div` when a factor has a negative integer power or the "
         "coefficient a denominator (`x/y`, `x/3`); `mul` otherwise", "all reals; division "
         "by zero is a pole",
         hazards="a division by a number that underflowed to 0 gives inf",
         hazard_causes=(Cause.DOMAIN, Cause.OVERFLOW), exact=_n_ary(ex.mul)),
    Rule(sp.Pow, ("pow_int", "sqrt", "pow_frac", "pow", "div"),
         "`x**n` for an integer n (`1 / x` for n = -1), `torch.sqrt` for n = 1/2, `x ** (p/q)` "
         "for other rationals, `x ** y` for a symbolic exponent (`x**x`)",
         f"integer powers: all reals (negative powers: {OP_DOMAINS['pow_int']}); `sqrt` and other "
         f"fractional powers: {OP_DOMAINS['pow_frac']} (x >= 0 for the value); a symbolic exponent "
         f"`x ** y`: {OP_DOMAINS['pow']}",
         nonsmooth="torch masks two corners of `x ** y`: the gradient wrt the base is 0 where "
         "y = 0, and wrt the exponent 0 where x = 0 and y >= 0",
         hazards="`sqrt` has an infinite slope at 0 and is NaN below it: `torch.where` around "
         "it is a NaN trap", hazard_causes=(Cause.DOMAIN, Cause.NAN_TRAP),
         hints=_SMOOTH_HINTS, exact=_pow_exact),
    Rule(sp.exp, ("exp",), "always", "all reals",
         hazards="overflows float64 above about 709.78 (float32: 88.72)",
         hazard_causes=(Cause.OVERFLOW, Cause.ROUNDING),
         hints={Cause.OVERFLOW: "Never form the huge exponential: use the fused op that subtracts "
                "the largest exponent first, `logsumexp(a, b)` for log(exp(a) + exp(b)), `softplus(x)` "
                "for log(1 + exp(x)), `sigmoid(x)` for 1/(1 + exp(-x)), `softmax(i, a, b)` and "
                "`log_softmax(i, a, b)` for exp(a)/(exp(a) + exp(b)) and its log (torch.logsumexp, "
                "F.softplus, torch.sigmoid, torch.softmax, torch.log_softmax in torch code).",
                Cause.ROUNDING: "exp(x) - 1 near 0 cancels digits: use `expm1(x)` (torch.expm1). " + _QUOTIENT},
         exact=_unary(ops.exp)),
    Rule(sp.log, ("log",), "one argument (natural logarithm)", "x > 0",
         hazards="log(0) = -inf; its gradient 1/x is inf at 0",
         hazard_causes=(Cause.DOMAIN, Cause.NAN_TRAP),
         hints={Cause.ROUNDING: "log(1 + x) near 0 loses the digits of x when it forms 1 + x: use "
                "`log1p(x)` (torch.log1p), which never forms it. " + _QUOTIENT.replace("expm1(x)/x", "log1p(x)/x"),
                **_SMOOTH_HINTS},
         exact=_unary(ex.log)),
    Rule(sp.sin, ("sin",), "always", "all reals", exact=_unary(ops.sin)),
    Rule(sp.cos, ("cos",), "always", "all reals",
         hazards="1 - cos(x) near 0 cancels digits", hazard_causes=(Cause.ROUNDING,),
         hints={Cause.ROUNDING: "1 - cos(x) near 0 cancels digits: write it as `2*sin(x/2)**2`. "
                + _QUOTIENT.replace("expm1(x)/x", "2*sin(x/2)**2/x**2")},
         exact=_unary(ops.cos)),
    Rule(sp.tan, ("tan",), "always", "x != pi/2 + k*pi (poles)", hazard_causes=(Cause.DOMAIN,),
         exact=_unary(ops.tan)),
    Rule(sp.asin, ("asin",), "always", "-1 <= x <= 1 (slope infinite at +-1)",
         hazards="gradient inf at +-1, NaN outside", hazard_causes=(Cause.DOMAIN, Cause.NAN_TRAP),
         hints=_SMOOTH_HINTS, exact=_unary(ops.asin)),
    Rule(sp.acos, ("acos",), "always", "-1 <= x <= 1 (slope infinite at +-1)",
         hazards="gradient inf at +-1, NaN outside", hazard_causes=(Cause.DOMAIN, Cause.NAN_TRAP),
         hints=_SMOOTH_HINTS, exact=_unary(ops.acos)),
    Rule(sp.atan, ("atan",), "always", "all reals", exact=_unary(ops.atan)),
    Rule(sp.atan2, ("atan2",), "atan2(y, x) -> torch.atan2(y, x)", "(x, y) != (0, 0)",
         nonsmooth="undefined at the origin, where torch returns 0 and gradient 0",
         hazard_causes=(Cause.DOMAIN,), exact=lambda a: ops.atan2(a[0], a[1])),
    Rule(sp.sinh, ("sinh",), "always", "all reals", hazard_causes=(Cause.OVERFLOW,),
         exact=_unary(ops.sinh)),
    Rule(sp.cosh, ("cosh",), "always", "all reals", hazard_causes=(Cause.OVERFLOW,),
         exact=_unary(ops.cosh)),
    Rule(sp.tanh, ("tanh",), "always", "all reals", exact=_unary(ops.tanh)),
    Rule(sp.erf, ("erf",), "always", "all reals", exact=_unary(ops.erf)),
    Rule(expm1, ("expm1",), "always: torch's fused `torch.expm1`, exact near 0 where exp(x) - 1 "
         "cancels", "all reals", hazard_causes=(Cause.OVERFLOW,), exact=_unary(ops.expm1)),
    Rule(log1p, ("log1p",), "always: torch's fused `torch.log1p`, exact near 0 where log(1 + x) "
         "cancels", "x > -1", hazards="log1p(-1) = -inf; its gradient 1/(1 + x) is inf there",
         hazard_causes=(Cause.DOMAIN, Cause.NAN_TRAP), exact=_unary(ops.log1p)),
    Rule(sigmoid, ("sigmoid",), "always: torch's fused `torch.sigmoid`, which never overflows "
         "(1/(1 + exp(-x)) does for x < -709)", "all reals",
         # The hint for a cancellation 1 - sigmoid(x) (`symgrad/verdict/hints.py` picks it there).
         hints={Cause.ROUNDING: "1 - sigmoid(x) cancels where sigmoid(x) is near 1 (torch rounds it to "
                "exactly 1 from about x = 37 in float64, 16.7 in float32), and the log of what is left is -inf: write "
                "`sigmoid(-x)` for 1 - sigmoid(x), and `-logaddexp(0, x)` for log(1 - sigmoid(x)), which "
                "never form the difference (torch: F.logsigmoid(-x); in a loss, "
                "F.binary_cross_entropy_with_logits on the logits x). `-softplus(x)` is the same function, "
                "but above 20 torch's softplus returns x itself, dropping log1p(exp(-x))."},
         exact=_unary(ops.sigmoid)),
    Rule(logsumexp, ("logsumexp",), "any number of scalar arguments: torch's fused "
         "`torch.logsumexp(torch.stack([...]), 0)`, which subtracts the largest first", "all reals",
         exact=ops.logsumexp),
    Rule(logaddexp, ("logaddexp",), "two scalar arguments: torch's own `torch.logaddexp(a, b)`, "
         "m + log1p(exp(-|a - b|)) with m the larger (the mathematics of `logsumexp(a, b)`)", "all reals",
         exact=ops.logsumexp),
    Rule(softplus, ("softplus",), "always: torch's fused `torch.nn.functional.softplus(x)` (beta=1, "
         "threshold=20), which never overflows (log(1 + exp(x)) does for x > 709)", "all reals",
         nonsmooth="none in the mathematics; torch's kernel returns x itself where x > 20, so the program "
         "that runs jumps by log1p(exp(-20)) = 2.1e-9 at 20 and has slope 1 above it (the mathematics: "
         "sigmoid(x)), and its second derivative is 0 from 20 on",
         hazards="above 20 torch drops log1p(exp(-x)) (under 2.1e-9): exact to float32, about 9 digits "
         "in float64; a later subtraction (softplus(x) - x) shows it", hazard_causes=(Cause.CONTROL_FLOW,),
         hints={Cause.CONTROL_FLOW: "torch's softplus is x itself above 20, which drops log1p(exp(-x)): "
                "below float32's precision, but not float64's. Where those digits matter, rewrite so that "
                "the large part cancels before torch runs: softplus(x) - x is softplus(-x), which torch "
                "computes in full (compare both with `symgrad.compare`)."},
         exact=_unary(ops.softplus_math)),
    Rule(mse_loss, ("mse_loss",), "mse_loss(r, a_0, ..., a_(n-1), t_0, ..., t_(n-1)) is sum((a_j - t_j)**2)/n**r "
         "(r = 1: torch's reduction='mean', 0: 'sum'), as `F.mse_loss(a, t)` is read: torch's fused "
         "`torch.nn.functional.mse_loss` of the stacked elements, whose backward is (2/n)*(a - t)*grad", "all reals",
         exact=lambda a: ls.mse_value(a[1:], int(a[0]))),
    Rule(nll_loss, ("nll_loss",), "nll_loss(r, a_0, ..., a_(n-1)) is -(a_0 + ... + a_(n-1))/n**r of the picked "
         "log-probabilities a_j = L[j, y_j], as `F.nll_loss(L, y)` and `F.cross_entropy(X, y)` (nll_loss of "
         "log_softmax(X, 1)) are read: torch's own `torch.nn.functional.nll_loss` of the stacked elements, which "
         "adds them up in its own cascade", "all reals", exact=lambda a: ls.nll_value(a[1:], int(a[0]))),
    Rule(binary_cross_entropy, ("binary_cross_entropy",), "binary_cross_entropy(r, p_0, ..., p_(n-1), t_0, ..., "
         "t_(n-1)) is -sum(t_j*log(p_j) + (1 - t_j)*log(1 - p_j))/n**r, as `F.binary_cross_entropy(p, t)` is read: "
         "torch's own kernel of the stacked elements", "0 <= p <= 1 (torch raises outside); p = 0 or 1 where t "
         "is not p: the mathematics is infinite",
         nonsmooth="none in the mathematics inside (0, 1); torch's kernel clamps each log at -100 and its backward's "
         "denominator (1 - p)*p at 1e-12, so within 1e-12 of p = 0 or 1 the program's gradient is (p - t)/1e-12 "
         "(0 at p = t = 0 and p = t = 1, where the mathematics' slope is 1 and -1)",
         hazards="p at 0 or 1: log(0); near them torch's clamps act", hazard_causes=(Cause.DOMAIN, Cause.CONTROL_FLOW),
         hints={Cause.CONTROL_FLOW: "torch's binary_cross_entropy clamps its logs at -100 and its backward's "
                "denominator at 1e-12: near p = 0 or 1 its gradient is not the mathematics'. Compute the loss "
                "from the logits z with p = sigmoid(z) instead, `(F.softplus(z) - t * z).mean()`, which needs "
                "no clamp."},
         exact=lambda a: ls.bce_math(a[1:], int(a[0]))[0]),
    Rule(weighted_binary_cross_entropy, ("weighted_binary_cross_entropy",), "weighted_binary_cross_entropy(r, p_0, "
         "..., t_0, ..., w_0, ...) is -sum(w_j*(t_j*log(p_j) + (1 - t_j)*log(1 - p_j)))/n**r ('mean' divides by n), as "
         "`F.binary_cross_entropy(p, t, weight=w)` and `nn.BCELoss(weight=w)` are read (constant weights): torch's "
         "own kernel of the stacked elements, each element's loss times its weight",
         "0 <= p <= 1 (torch raises outside); p = 0 or 1 where t is not p: the mathematics is infinite",
         nonsmooth="as binary_cross_entropy's: torch's clamps act within 1e-12 of p = 0 or 1",
         hazards="p at 0 or 1: log(0); near them torch's clamps act", hazard_causes=(Cause.DOMAIN, Cause.CONTROL_FLOW),
         hints={Cause.CONTROL_FLOW: "torch's binary_cross_entropy clamps its logs at -100 and its backward's "
                "denominator at 1e-12: near p = 0 or 1 its gradient is not the mathematics'. Compute the loss "
                "from the logits z with `F.binary_cross_entropy_with_logits(z, t, weight=w)`, which needs no clamp."},
         exact=lambda a: ls.bce_math(a[1:], int(a[0]), True)[0]),
    Rule(smooth_l1_loss, ("smooth_l1_loss",), "smooth_l1_loss(r, beta, a_0, ..., t_0, ...) is the sum of "
         "d**2/(2*beta) where |d| < beta and |d| - beta/2 elsewhere (d = a_j - t_j), /n**r, as "
         "`F.smooth_l1_loss(a, t, beta=beta)` is read (beta > 0; beta = 0 is l1_loss, as torch's F reads it): "
         "torch's own kernel of the stacked elements", "all reals",
         nonsmooth="none in the first derivative: at |d| = beta the slopes d/beta and sign(d) meet (torch's backward "
         "takes sign(d) there, the same number); the second derivative jumps from 1/beta to 0",
         exact=lambda a: ls.smooth_l1_value(a[2:], (int(a[0]), a[1]))),
    Rule(huber_loss, ("huber_loss",), "huber_loss(r, delta, a_0, ..., t_0, ...) is the sum of d**2/2 where "
         "|d| < delta and delta*(|d| - delta/2) elsewhere (d = a_j - t_j), /n**r, as `F.huber_loss(a, t, "
         "delta=delta)` is read: torch's own kernel of the stacked elements", "all reals",
         nonsmooth="none in the first derivative: at |d| = delta the slopes d and delta*sign(d) meet (torch's "
         "backward takes delta*sign(d) there); the second derivative jumps from 1 to 0",
         exact=lambda a: ls.huber_value(a[2:], (int(a[0]), a[1]))),
    Rule(binary_cross_entropy_with_logits, ("binary_cross_entropy_with_logits",),
         "binary_cross_entropy_with_logits(r, has_w, has_pw, x_0, ..., t_0, ..., [w_0, ...], [pw_0, ...]) is "
         "the sum of w*((1 - t)*x + ((pw - 1)*t + 1)*log(1 + exp(-x))), /n**r, as "
         "`F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw)` is read (constant weights): torch's "
         "own stable kernel of the stacked elements, (1 - t)*x - l*log_sigmoid(x), whose backward is "
         "(l*sigmoid(x) - pw*t)*w", "all reals",
         exact=lambda a: ls.bce_logits_value(a[3:], (int(a[0]), a[1], a[2]), ops.softplus_math)),
    Rule(smoothed_cross_entropy, ("smoothed_cross_entropy",), "smoothed_cross_entropy(r, s, k, C, row, y_0, ..., "
         "w_0, ..., X[0, 0], ...) is (1 - s)*nll + (s/C)*smooth of L = log_softmax(X, 1), with nll = "
         "-sum(w[y_i]*L[i, y_i]) and smooth = -sum(w_c*L[i, c]) over the rows kept (y_i != k), each divided for 'mean' "
         "by the kept rows' total weight (for 'none', row `row` alone), as `F.cross_entropy(X, y, "
         "label_smoothing=s)` of integer labels is read (weight=, ignore_index= too): torch's own "
         "cross_entropy of the logits in an (n, C) stack, whose one log_softmax takes the gradient of both parts",
         "all reals; 'mean' of no row kept is 0/0 (nan), as in torch",
         exact=lambda a: ls.smoothed_ce_value(_logits_of(a), tuple(a[:len(a) - len(_logits_of(a))]), ops.log_softmax,
                                              ops.softmax_weights)),
    Rule(weighted_nll_loss, ("weighted_nll_loss",), "weighted_nll_loss(r, k, C, y_0, ..., w_0, ..., a_0, ...) is "
         "-sum(w[y_i]*a_i)/W**r over the rows with y_i != k (W: their total weight), as `F.nll_loss(L, y, weight=w, "
         "ignore_index=k)` and `F.cross_entropy` with them are read: torch's own nll_loss of the picked elements at "
         "their places in an (n, C) stack", "all reals; 'mean' of no row kept is 0/0 (nan), as in torch",
         exact=lambda a: ls.weighted_nll_value(a[3 + int(a[2]) + (len(a) - 3 - int(a[2])) // 2:],
                                               (int(a[0]), *a[1:3 + int(a[2]) + (len(a) - 3 - int(a[2])) // 2]))),
    *(Rule(cls, (cls.__name__,), exact=act.exact_value(cls.__name__), **act.RULE_TEXTS[cls.__name__])
      for cls in act.ACTIVATIONS),
    Rule(softmax, ("softmax",), "softmax(i, a_0, ..., a_(n-1)) is component i (from 0) of the softmax "
         "of its n scalar arguments, exp(a_i)/(exp(a_0) + ... + exp(a_(n-1))): torch's fused "
         "`torch.softmax(torch.stack([a_0, ...]), 0)[i]`, which subtracts the largest first", "all reals",
         exact=_component_exact(lambda a, i: ops.softmax_weights(a)[i])),
    Rule(log_softmax, ("log_softmax",), "log_softmax(i, a_0, ..., a_(n-1)) is component i (from 0), "
         "a_i - log(exp(a_0) + ... + exp(a_(n-1))): torch's fused "
         "`torch.log_softmax(torch.stack([a_0, ...]), 0)[i]`", "all reals",
         exact=_component_exact(ops.log_softmax)),
    Rule(vector_norm, ("vector_norm",), "vector_norm(a_0, ..., a_(n-1)) is the 2-norm of its n scalar "
         "arguments (a vector's elements, as `torch.norm(v)` and `torch.linalg.vector_norm(v)` are read): "
         "torch's fused `torch.linalg.vector_norm(torch.stack([a_0, ...]), dim=0)`, whose backward is a / norm",
         "all reals",
         nonsmooth="a cone at the origin (every argument 0): no derivative there; torch's gradient is 0",
         hazard_causes=(Cause.KINK,), exact=ops.vector_norm),
    Rule(sp.Abs, ("abs",), "always", "all reals",
         nonsmooth="kink at 0; torch.abs has gradient 0 there (one-sided slopes -1 and 1)",
         hazard_causes=(Cause.KINK,), exact=_unary(abs)),
    Rule(sp.sign, ("sign",), "always", "all reals",
         nonsmooth="jump at 0; torch.sign has gradient 0 everywhere", hazard_causes=(Cause.JUMP,),
         exact=_unary(ops.sgn)),
    Rule(sp.Max, ("relu", "clamp_min", "maximum"),
         "`torch.relu(x)` for Max(x, 0); `torch.clamp(x, min=c)` for Max(x, c) with another "
         "constant c; `torch.maximum` pairwise for the other arguments (any number)",
         "all reals",
         nonsmooth="kink where two arguments tie: relu gives 0, clamp gives 1, maximum splits "
         "1/2 : 1/2", hazard_causes=(Cause.KINK,), exact=_n_ary(_max2)),
    Rule(sp.Min, ("clamp_max", "minimum"),
         "`torch.clamp(x, max=c)` for Min(x, c) with a constant c; `torch.minimum` pairwise for "
         "the other arguments (any number)", "all reals",
         nonsmooth="kink where two arguments tie: clamp gives 1, minimum splits 1/2 : 1/2",
         hazard_causes=(Cause.KINK,), exact=_n_ary(_min2)),
    Rule(sp.Heaviside, ("heaviside",), "one argument; H(0) = 1/2 as in SymPy",
         "all reals", nonsmooth="jump at 0; the lowering has gradient 0 everywhere "
         "(torch.heaviside itself has no backward)", hazard_causes=(Cause.JUMP,),
         exact=lambda a: (a[1] if len(a) > 1 and ex.sign(a[0]) == 0 else ex.Q(ex.sign(a[0]) + 1, 2))),
    Rule(sp.floor, ("floor",), "always", "all reals",
         nonsmooth="jumps at the integers; torch.floor has gradient 0 everywhere",
         hazard_causes=(Cause.JUMP,), exact=_unary(ops.floor)),
    Rule(sp.ceiling, ("ceil",), "always", "all reals",
         nonsmooth="jumps at the integers; torch.ceil has gradient 0 everywhere",
         hazard_causes=(Cause.JUMP,), exact=_unary(ops.ceil)),
    Rule(sp.Piecewise, ("where",),
         "`branches=\"if\"`: Python if/elif/else, only the taken branch runs; "
         "`branches=\"where\"`: nested `torch.where`, every branch runs", "the union of the "
         "pieces (NaN where no condition holds)",
         nonsmooth="kink or jump where a condition is on its threshold; with `if` that is "
         "control flow",
         hazards="`torch.where` computes every branch: a branch outside its domain gives 0 * "
         "nan in the backward pass", hazard_causes=(Cause.CONTROL_FLOW, Cause.KINK, Cause.JUMP,
                                                    Cause.NAN_TRAP),
         hints=_SMOOTH_HINTS),
    Rule(detach, ("detach",), "always", "that of its argument",
         nonsmooth="identity for the mathematics; a constant on the executed path",
         hazard_causes=(Cause.DETACH,)),
    Rule(CustomFunction, ("custom_function",), "`MyFn.apply(x, ...)` of the user's own torch.autograd.Function "
         "read from torch code: MyFn(y, x, ..., saved) is y, its forward's mathematics read from source; "
         "the executed path uses the user's backward, read from source", "that of its forward",
         nonsmooth="those of its forward, for the mathematics; the user's backward on the executed path",
         hazard_causes=(Cause.CUSTOM_BACKWARD,), exact=lambda a: a[0]),
    *(Rule(cast, ("cast",), f"`.{'float' if cast.dtype == 'float32' else 'double'}()`, `.to(torch.{cast.dtype})` "
           "of a computed value", "that of its argument",
           hazards=f"identity for the mathematics and the exact executed path; torch rounds the value to "
           f"{cast.dtype} and runs every later op in it, its backward the cast back",
           hazard_causes=(Cause.ROUNDING,), exact=lambda a: a[0]) for cast in CASTS),
    Rule(item, ("item",), "always", "that of its argument",
         nonsmooth="identity for the mathematics; a Python number, then a new tensor: an "
         "autograd graph break", hazard_causes=(Cause.GRAPH_BREAK,)),
    Rule(no_grad, ("no_grad",), "always", "that of its argument",
         nonsmooth="identity for the mathematics; computed under torch.no_grad(): an autograd "
         "graph break", hazard_causes=(Cause.GRAPH_BREAK,)),
    Rule(sp.MatrixSymbol, (), "an input tensor of exactly the declared shape; a rank-1 tensor "
         "for an (n, 1) column is refused (broadcasting would turn an (n, 1) residual into (n, n))",
         "real matrices of the declared shape"),
    Rule(sp.MatMul, ("matmul", "mul", "expand", "sum_dim", "matmul_call", "along_call"), "`A @ B` for matrix factors (pairwise, left to "
         "right); a scalar factor multiplies elementwise; `A * ones(n, 1)` (`ones(1, m) * A`), the sums of A's "
         "rows (columns), as `A.sum(dim)` is read, is `A.sum(1, keepdim=True)` (`A.sum(0, keepdim=True)`); a row "
         "repeated down a matrix, `ones(m, 1) * r` (how trace reads "
         "`X + b` for a rank-1 or (1, n) b), or a column repeated across it, `c * ones(1, n)`, is "
         "`r.expand(m, n)`, whose backward sums as torch's broadcast does", "shapes must agree"),
    Rule(sp.MatAdd, ("add",), "`A + B - C` elementwise", "equal shapes"),
    Rule(sp.Transpose, ("transpose",), "`A.T` (2-D tensors only, never torch.transpose without dims)",
         "any matrix"),
    Rule(sp.HadamardProduct, ("mul",), "`A * B` elementwise", "equal shapes"),
    Rule(sp.HadamardPower, ("pow_int", "sqrt", "pow_frac"), "`A ** n` elementwise for a positive "
         "constant n (SymPy writes HadamardProduct(A, A) as HadamardPower(A, 2))",
         "that of the scalar power, element by element"),
    Rule(sp.MatPow, ("matpow",), "`torch.linalg.matrix_power(A, n)` for an integer n", "square A "
         "(invertible for n < 0)"),
    Rule(sp.Inverse, ("inv",), "`torch.linalg.inv(A)`", "square, invertible A",
         hazards="ill-conditioned matrices lose digits", hazard_causes=(Cause.DOMAIN, Cause.ROUNDING)),
    Rule(sp.Determinant, ("det",), "`torch.linalg.det(A)`", "square A"),
    Rule(sp.Trace, ("trace",), "`torch.trace(A)`", "square A"),
    Rule(MatrixElement, ("elem", "sum"), "`A[i, j]`; a 1x1 matrix used as a scalar becomes `(...)[0, 0]`; "
         "the sum of every element, `(ones(1, m) * A * ones(n, 1))[0, 0]` (how `.sum()` is read), is `A.sum()`",
         "indices inside the shape"),
    Rule(sp.Identity, ("matconst",), "`torch.eye(n, dtype=...)`", "-"),
    Rule(sp.OneMatrix, ("matconst",), "`torch.ones(m, n, dtype=...)`", "-"),
    Rule(ElementwiseApplyFunction, (), "`M.applyfunc(f)`: f's body written once over the whole tensor, each "
         "scalar op of it one torch call that applies elementwise (`torch.exp(X)`, `torch.relu(X)`); a "
         "Piecewise in it is `torch.where` on an elementwise condition, each element deciding its own piece",
         "that of the function, element by element"),
    Rule(Elementwise, (), "`symgrad.elementwise(f, A, B, ...)`: f of n elements applied to n matrices, "
         "broadcast as torch broadcasts (a dimension of 1 repeats, `.expand`); lowered as `M.applyfunc(f)` is "
         "(`torch.maximum(A, B)`, `torch.where(A > 0, A, B)`)", "that of the function, element by element"),
    Rule(sp.ImmutableDenseMatrix, ("stack", "softmax_vector", "log_softmax_vector", "softmax_of", "log_softmax_of"), "an explicit matrix of "
         "expressions: `torch.stack([...]).reshape(m, n)`; a whole softmax vector, (softmax(0, a_0, ...), ..., "
         "softmax(n-1, a_0, ...)) in row-major order (as `torch.softmax(v, 0)` is read), is one call, "
         "`torch.softmax(torch.stack([a_0, ...]), 0).reshape(m, n)`, and so is a matrix whose rows (or columns) "
         "are each a whole softmax of their own elements (as `torch.softmax(X, dim)` is read), "
         "`torch.softmax(torch.stack([...]).reshape(m, n), dim)` (log_softmax alike); where the values are the "
         "elements of one matrix M in order, `torch.softmax(M, dim)`", "that of its elements"),
    Rule(sp.Symbol, (), "an input keeps its name (sanitised to an identifier)", "all reals"),
    Rule(sp.Integer, (), "a Python int literal", "-"),
    Rule(sp.Rational, ("div",), "`p / q` (exact in the executed side, the nearest value of the "
         "dtype in the program)", "-"),
    Rule(sp.Float, (), "a Python float literal (its own precision in the exact sides)", "-"),
    Rule(sp.core.numbers.Pi, (), "`math.pi`", "-"),
    Rule(sp.core.numbers.Exp1, (), "`math.e`", "-"),
)

RULES: Final[dict[type[sp.Basic], Rule]] = {rule.cls: rule for rule in (*_RULE_LIST, *(Rule(**f) for f in rd.rule_fields(ops.logsumexp)),
                                                                         *(Rule(**f) for f in (*nm.RULE_FIELDS, *dist.RULE_FIELDS, *pr.RULE_FIELDS, *ln.RULE_FIELDS, *cs.RULE_FIELDS, *od.RULE_FIELDS)),
                                                                         *(Rule(**f) for f in (*cu.RULE_FIELDS, *gl.rule_fields(ops.sigmoid))))}


def rule_for(node: sp.Basic) -> Rule | None:
    """The row for a node, following the MRO as SymPy's printers do."""
    for cls in type(node).__mro__:
        if cls in RULES:
            return RULES[cls]
    return None


def op_rule(op_name: str) -> Rule | None:
    """The first row that lowers to an op (for hints and words)."""
    for rule in _RULE_LIST:
        if op_name in rule.ops:
            return rule
    return None


def constant_value(node: sp.Basic) -> ex.Exact:
    """The exact value of a constant node (no free symbols)."""
    return ex.from_sympy(node)


# --------------------------------------------------------------------------- exact evaluation


def exact_eval(expr: sp.Basic, values: dict[sp.Symbol, ex.Exact], memo: dict[sp.Basic, Any] | None = None) -> Any:
    """The exact mathematical value of a SymPy expression (or truth of a condition).

    Walks the expression as a DAG (shared subexpressions are evaluated once) with each class's
    `exact` from the table; this is the oracle for the symbolic side and for conditions.
    """
    memo = {} if memo is None else memo

    def ev(e: sp.Basic) -> Any:
        hit = memo.get(e)
        if hit is not None:
            return hit
        result = _eval_node(e, ev, values)
        memo[e] = result
        return result

    return ev(expr)


_RELATIONS: Final = {
    sp.StrictGreaterThan: lambda c: c > 0,
    sp.GreaterThan: lambda c: c >= 0,
    sp.StrictLessThan: lambda c: c < 0,
    sp.LessThan: lambda c: c <= 0,
    sp.Equality: lambda c: c == 0,
    sp.Unequality: lambda c: c != 0,
}


def relation_holds(rel: sp.Basic, margin: ex.Exact) -> bool:
    """Whether a relational holds, given margin = lhs - rhs."""
    return bool(_RELATIONS[type(rel)](ex.sign(margin)))


def _eval_node(e: sp.Basic, ev: Callable[[sp.Basic], Any], values: dict[sp.Symbol, ex.Exact]) -> Any:
    if isinstance(e, sp.Symbol):
        return values[e]
    if e is sp.true:
        return True
    if e is sp.false:
        return False
    if e.is_Number or isinstance(e, sp.NumberSymbol):
        return ex.from_sympy(e)
    if type(e) in _RELATIONS:
        margin = ex.sub(ev(e.lhs), ev(e.rhs))
        if ex.is_nan(margin):
            return False
        return relation_holds(e, margin)
    if isinstance(e, sp.And):
        return all(ev(a) for a in e.args)
    if isinstance(e, sp.Or):
        return any(ev(a) for a in e.args)
    if isinstance(e, sp.Not):
        return not ev(e.args[0])
    if isinstance(e, sp.Piecewise):
        for value, cond in e.args:
            if ev(cond):
                return ev(value)
        return ex.NAN
    if isinstance(e, (detach, item, no_grad, *CASTS)):
        return ev(e.args[0])
    if isinstance(e, sp.DiracDelta):
        return ex.ZERO if not ex.is_zero(ev(e.args[0])) else ex.NAN
    if isinstance(e, sp.Derivative) and isinstance(e.expr, (sp.floor, sp.ceiling, sp.sign, sp.Heaviside)):
        return ex.ZERO  # away from their jumps these are flat
    if isinstance(e, sp.Subs) and isinstance(e.expr, sp.Derivative) and isinstance(
            e.expr.expr, (sp.floor, sp.ceiling, sp.sign, sp.Heaviside)):
        return ex.ZERO  # diff(floor(u)) is written Subs(Derivative(floor(_xi), _xi), _xi, u)
    if isinstance(e, sp.ITE):
        return ev(e.args[1]) if ev(e.args[0]) else ev(e.args[2])
    # SymPy writes derivatives of Abs(u) with re/im/arg when it cannot prove u real; at a real
    # point (the only points symgrad evaluates) they are the identity, 0, and 0 or pi.
    if isinstance(e, (sp.re, sp.conjugate)):
        return ev(e.args[0])
    if isinstance(e, sp.im):
        u = ev(e.args[0])
        return ex.NAN if ex.is_nan(u) else ex.ZERO
    if isinstance(e, sp.arg):
        u = ev(e.args[0])
        return ex.NAN if ex.is_nan(u) else (ex.ZERO if ex.sign(u) >= 0 else ex.pi())
    exact = getattr(type(e), "exact", None)
    if exact is not None and isinstance(e, sp.Function) and rule_for(e) is None:
        return exact([ev(a) for a in e.args])  # torch's double-backward ops (executed.py)
    rule = rule_for(e)
    if rule is None or rule.exact is None:
        if not e.free_symbols:
            return ex.from_sympy(e)
        raise UnsupportedNodeError(
            f"{sp.sstr(e)} has no exact evaluation rule ({type(e).__name__}).\n"
            "Fix: rewrite it with the functions in docs/supported.md."
        )
    return rule.exact([ev(a) for a in e.args])
