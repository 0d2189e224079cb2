"""The torch primitives symgrad emits (`OPS`): how torch spells each, its exact value, and torch's
backward formula in exact arithmetic.

Each `Op` holds torch's conventions too: the value torch picks at a kink (`relu'(0) = 0`, `clamp`
counts its boundary as inside, `maximum` splits a tie 1/2 : 1/2, `abs'(0) = 0`, `floor`/`ceil`/
`sign` have gradient 0), and nan/inf where torch's formula blows up (`sqrt` at 0, `asin` at 1).
The executed side is computed from these formulas. A non-smooth op also says which smooth
*piece* its arguments are in, so that the symbolic side can follow the function just left and
just right of a kink or jump. Which SymPy node lowers to which op is THE lowering table's to say
(`RULES` in `rules.py`); `docs/supported.md` is generated from both tables.

The exact values of the elementary functions (`exp`, `sin`, `sigmoid`, `softmax_weights`, ...)
are public: the rules' exact mathematical values are built from them too.

Schema of an `Op` (cf. derivatives.yaml):
    name        stable name, used in the IR and in reports
    torch       spelling, `{0}`, `{1}` are the operands, `{c}` a constant parameter
    value       (args, param) -> exact value, NaN outside the real domain
    partials    (args, value, param) -> torch's backward formula, one exact number per argument
    piece       (args, param) -> which smooth piece the args lie in, None exactly on a kink/jump
    on_piece    (piece, args, param) -> (value, partials) of that piece, continued to the point
    nonsmooth   "kink" or "jump" (None for smooth ops)
    convention  torch's choice at the kink/jump, in words
    departs     (args, param) -> whether torch's kernel takes a shortcut the mathematics does not
                have at these arguments (softplus above its threshold); `math` is then the
                mathematics' (value, partials) and `shortcut` the sentence that says so
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import flint

from . import exact as ex
from . import exact_linalg as el
from . import losses as ls
from . import distances as dist
from . import normalization as nm
from . import reductions as rd
from . import products as pr
from . import calls
from . import layer_norm as ln
from . import cosine as cs
from . import orders as od
from . import cumulative as cu
from . import gated as gl
# The exact elementary functions (public here: the rules' exact values in rules.py use them too).
from .exact_elementary import atan, cos, cosh, erf, exp, expm1, log1p, sin, sinh, tan, tanh  # noqa: F401
from .primitives import SOFTPLUS_THRESHOLD

Args = Sequence[ex.Exact]
Nonsmooth = Literal["kink", "jump"] | None


@dataclass(frozen=True, slots=True)
class Op:
    """One torch primitive symgrad emits, with its exact value and torch's exact backward."""

    name: str
    torch: str
    value: Callable[[Args, Any], ex.Exact]
    partials: Callable[[Args, ex.Exact, Any], tuple[ex.Exact, ...]]
    piece: Callable[[Args, Any], Hashable | None] | None = None
    on_piece: Callable[[Hashable, Args, Any], tuple[ex.Exact, tuple[ex.Exact, ...]]] | None = None
    nonsmooth: Nonsmooth = None
    convention: str = ""
    alternatives: str = ""
    # Where the mathematics is undefined although torch returns finite numbers (its masks).
    undefined: Callable[[Args, Any], bool] | None = None
    # Matrix ops: the vector-Jacobian product (args, value, param, G) -> one adjoint per argument,
    # instead of elementwise `partials`; an adjoint may be a function of no arguments that
    # computes it, called only where it is read (the data's adjoint in X @ W never is).
    vjp: Callable[[Args, Any, Any, Any], tuple[Any, ...]] | None = None
    # Where torch's kernel takes a shortcut the mathematics does not have (softplus returns x
    # itself above its threshold): `departs(args, param)` says whether it does at these
    # arguments (first or second derivative), `math` gives the mathematics' (value, partials)
    # there, which the symbolic side runs with, and `shortcut` says what torch does, in words.
    departs: Callable[[Args, Any], bool] | None = None
    math: Callable[[Args, Any], tuple[ex.Exact, tuple[ex.Exact, ...]]] | None = None
    shortcut: str = ""
    # (args, param, executed, mathematics') -> the finding's whole detail, where the op says what
    # its kernel computes in its own words (cosine_similarity's norms clamped to eps) instead of
    # `shortcut` and the sentence of a kept and a dropped part (softplus's).
    shortcut_detail: Callable[[Args, Any, Any, Any], str] | None = None
    # torch's backward formula where it reads the op's own rounded result y instead of its
    # arguments (derivatives.yaml: sigmoid_backward is y*(1 - y)), written in y: where y rounds to
    # the value the op saturates at, that formula keeps none of the slope's digits. The executed
    # path keeps such a step's arguments, so the verdict can say so.
    reads_result: str = ""
    # A matrix op whose backward reads what its forward found (log_softmax: each softmax's
    # exponentials): (args, param) -> (value, what `vjp` is given as its value argument).
    kept: Callable[[Args, Any], tuple[Any, Any]] | None = None


# --------------------------------------------------------------------------- exact helpers


def _largest(a: Args, terms: dict[int, ex.Exact] | None = None) -> tuple[ex.Exact, int, ex.Exact]:
    """(m, k, rest): the largest argument m = a[k] and rest = the sum of exp(u - m) over the
    others, each term in [0, 1] (`terms`, where given, gets each term by its index: a caller that
    needs them again reads them there instead of computing each exponential twice). Every value of the log-sum-exp family is written from these
    without forming exp(u) (which overflows) or u - logsumexp(a) (which, for u near 1e300,
    cancels the ball's every digit): logsumexp = m + log1p(rest), softmax weight
    exp(u - m)/(1 + rest), log_softmax (u - m) - log1p(rest)."""
    k = 0
    for j in range(1, len(a)):
        if ex.cmp(a[j], a[k]) > 0:
            k = j
    m = a[k]
    rest: ex.Exact = ex.ZERO
    for j, u in enumerate(a):
        if j != k:
            term = exp(ex.sub(u, m))
            if terms is not None:
                terms[j] = term
            rest = ex.add(rest, term)
    return m, k, rest


def logsumexp(a: Args) -> ex.Exact:
    """m + log(sum(exp(u - m))) with m the largest argument, as torch computes it (the sum's
    log as log1p of the other terms: exact at every magnitude)."""
    if any(ex.is_nan(u) for u in a):
        return ex.NAN
    m, _, rest = _largest(a)
    if not ex.is_finite(m):
        return m
    return ex.add(m, log1p(rest))


def _nan_row(a: Args) -> bool:
    """Whether torch 2.13's (log_)softmax of the row `a` is NaN everywhere, forward and backward: a NaN, a +inf, or all -inf."""
    if a and all(isinstance(u, flint.fmpq) or u.is_finite() for u in a):
        return False  # every element finite (a rational, or a finite ball: no NaN): the common row, sooner
    infinite = [u for u in a if ex.is_nan(u) or not ex.is_finite(u)]
    return any(ex.is_nan(u) or ex.sign(u) > 0 for u in infinite) or len(infinite) == len(a)


def log_softmax(a: Args, i: int) -> ex.Exact:
    """a_i - logsumexp(a), written as (a_i - m) - log1p(rest) (see `_largest`); NaN as torch's (`_nan_row`)."""
    if _nan_row(a):
        return ex.NAN
    m, _, rest = _largest(a)
    return ex.sub(ex.sub(a[i], m), log1p(rest))


def log_softmax_all(a: Args) -> list[ex.Exact]:
    """[log_softmax(a, i) for every i], each the same value, with the largest argument and
    log1p(rest) found once for the whole vector (not once per element)."""
    if _nan_row(a):
        return [ex.NAN for _ in a]
    m, _, rest = _largest(a)
    total = log1p(rest)
    return [ex.sub(ex.sub(u, m), total) for u in a]


def sigmoid(u: ex.Exact) -> ex.Exact:
    """1/(1 + exp(-u)) for u >= 0 and exp(u)/(1 + exp(u)) for u < 0: no exponential of a large
    positive number, so exact at every magnitude (sigmoid(-1e300) is a ball near e^-1e300, not
    1/(1 + inf)); exactly 1/2 at 0, 0 and 1 at -inf and +inf."""
    if ex.is_nan(u):
        return ex.NAN
    if ex.is_zero(u):
        return ex.HALF
    if not ex.is_finite(u):
        return ex.ONE if ex.sign(u) > 0 else ex.ZERO
    if ex.sign(u) > 0:
        return ex.div(ex.ONE, ex.add(ex.ONE, exp(ex.neg(u))))
    e = exp(u)
    return ex.div(e, ex.add(ex.ONE, e))


def softplus_math(u: ex.Exact) -> ex.Exact:
    """log(1 + exp(u)) = max(u, 0) + log1p(exp(-|u|)): no exp of a large number, no cancellation."""
    if ex.is_nan(u):
        return ex.NAN
    if not ex.is_finite(u):
        return u if ex.sign(u) > 0 else ex.ZERO
    top = u if ex.sign(u) > 0 else ex.ZERO
    return ex.add(top, log1p(exp(ex.neg(abs(u)))))


_THRESHOLD = ex.Q(SOFTPLUS_THRESHOLD)


def _softplus_torch(u: ex.Exact) -> ex.Exact:
    """torch.nn.functional.softplus(u) (beta=1, threshold=20): u itself where u > 20."""
    if not ex.is_nan(u) and ex.cmp(u, _THRESHOLD) > 0:
        return u
    return softplus_math(u)


def _softplus_slope(u: ex.Exact) -> ex.Exact:
    """torch's softplus_backward: 1 where u > 20, else z/(z + 1) with z = exp(u), which is
    exactly sigmoid(u)."""
    if not ex.is_nan(u) and ex.cmp(u, _THRESHOLD) > 0:
        return ex.ONE
    return sigmoid(u)


def _softplus_departs(u: ex.Exact) -> bool:
    """From 20 on torch's softplus is not the mathematics': above 20 its value and slope are
    x's, and from 20 on (20 itself included) its double backward is 0
    (softplus_double_backward masks with x < threshold)."""
    return not ex.is_nan(u) and ex.cmp(u, _THRESHOLD) >= 0


def softmax_weights(a: Args) -> list[ex.Exact]:
    """exp(u_j - logsumexp(u)) for every j: torch's softmax, which subtracts the largest first,
    written as exp(u_j - m)/(1 + rest) (see `_largest`)."""
    if _nan_row(a):  # as torch's kernel: a +inf, or every element -inf, makes the row NaN
        return [ex.NAN for _ in a]
    terms: dict[int, ex.Exact] = {}
    m, k, rest = _largest(a, terms)
    return _weights(a, m, k, rest, terms)


def _weights(a: Args, m: ex.Exact, k: int, rest: ex.Exact, terms: dict[int, ex.Exact]) -> list[ex.Exact]:
    """softmax_weights(a) from what `_largest(a, terms)` found: exp(u_j - m)/(1 + rest)."""
    scale = ex.add(ex.ONE, rest)
    return [ex.div(exp(ex.sub(u, m)) if j == k else terms[j], scale) for j, u in enumerate(a)]


def _others(s: list[ex.Exact], i: int) -> ex.Exact:
    """1 - s_i, as the sum of the other weights: 1 - s_i cancels when s_i is nearly 1 (at
    (1000, 0) it is 5.1e-435, which 1 - (1 - 5.1e-435) would need 1,450 bits to see)."""
    total: ex.Exact = Z
    for j, w in enumerate(s):
        if j != i:
            total = ex.add(total, w)
    return total


def _softmax_partials(a: Args, i: int) -> tuple[ex.Exact, ...]:
    """d s_i / d u_j = s_i (delta_ij - s_j); torch's _softmax_backward_data seeded with the
    one-hot of component i gives s_j (delta_ij - s_i), the same number (NaN, s_i, for a NaN row)."""
    s = softmax_weights(a)
    return tuple(ex.mul(s[i], _others(s, i) if j == i else ex.neg(s[j])) for j in range(len(a)))


def _log_softmax_partials(a: Args, i: int) -> tuple[ex.Exact, ...]:
    """d (u_i - logsumexp(u)) / d u_j = delta_ij - s_j (torch: grad - exp(result) * sum(grad))."""
    if _nan_row(a):  # torch's backward reads the forward's NaN row: NaN for every input
        return tuple(ex.NAN for _ in a)
    s = softmax_weights(a)
    return tuple(_others(s, i) if j == i else ex.neg(s[j]) for j in range(len(a)))


def vector_norm(a: Args) -> ex.Exact:
    """sqrt(a_0**2 + ... + a_(n-1)**2), exact."""
    total: ex.Exact = ex.ZERO
    for u in a:
        total = ex.add(total, ex.mul(u, u))
    return _sqrt(total)


def _vector_norm_partials(a: Args, v: ex.Exact) -> tuple[ex.Exact, ...]:
    """torch's backward of the 2-norm: a_i / norm, and 0 where the norm is 0."""
    if ex.is_zero(v):
        return tuple(ex.ZERO for _ in a)
    return tuple(ex.div(u, v) for u in a)


def _vector_norm_on_piece(direction: tuple[ex.Exact, ...], a: Args) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    """Off the origin the norm itself; at it, the cone along `direction`: value 0, slope the unit
    vector of that direction (the one-sided limit of a / norm)."""
    if not all(ex.is_zero(u) for u in a):
        v = vector_norm(a)
        return v, _vector_norm_partials(a, v)
    n = vector_norm(direction)
    return ex.ZERO, tuple(ex.div(d, n) for d in direction)


def _logaddexp_partials(a: Args) -> tuple[ex.Exact, ex.Exact]:
    """torch's logaddexp backward: 1/(1 + exp(b - a)) for a and 1/(1 + exp(a - b)) for b, which
    are sigmoid(a - b) and sigmoid(b - a) (written so that no exp overflows: at (1e300, -1e300)
    the second is e^-2e300, not 1/(1 + inf))."""
    u, w = a
    if ex.is_nan(u) or ex.is_nan(w):
        return (ex.NAN, ex.NAN)
    if not (ex.is_finite(u) and ex.is_finite(w)):
        return (ex.div(ONE, ex.add(ONE, exp(ex.sub(w, u)))), ex.div(ONE, ex.add(ONE, exp(ex.sub(u, w)))))
    return (sigmoid(ex.sub(u, w)), sigmoid(ex.sub(w, u)))


def _sech2(u: ex.Exact) -> ex.Exact:
    """1 - tanh(u)**2 = 1/cosh(u)**2 = 4t/(1 + t)**2 with t = exp(-2|u|) in (0, 1]: no
    cancellation, and no exponential of a large positive number (past every certifiable
    precision, tanh(sinh(1e16))'s slope, t is still a certain tiny ball); 0 at +-inf."""
    if ex.is_nan(u):
        return ex.NAN
    t = exp(ex.mul(ex.Q(-2), abs(u)))
    one_t = ex.add(ONE, t)
    return ex.div(ex.mul(ex.Q(4), t), ex.mul(one_t, one_t))


def _pow_defined(x: ex.Exact, y: ex.Exact) -> bool:
    """Where x**y is a real number: x > 0; x = 0 with y > 0 (0**y = 0); x < 0 with an integer y."""
    if ex.is_nan(x) or ex.is_nan(y):
        return False
    s = ex.sign(x)
    if s > 0:
        return True
    if s == 0:
        return ex.sign(y) > 0
    return ex.is_rational(y) and y.q == 1


def _outside_unit(u: ex.Exact) -> bool:
    return ex.is_nan(u) or ex.cmp(abs(u), ex.ONE) > 0


def asin(u: ex.Exact) -> ex.Exact:
    """Exact arcsine: NaN outside [-1, 1]."""
    if _outside_unit(u):
        return ex.NAN
    return ex.ZERO if ex.is_zero(u) else ex.to_real(u).asin()


def acos(u: ex.Exact) -> ex.Exact:
    """Exact arccosine: NaN outside [-1, 1]."""
    if _outside_unit(u):
        return ex.NAN
    return ex.ZERO if ex.is_rational(u) and u == ex.ONE else ex.to_real(u).acos()


def atan2(y: ex.Exact, x: ex.Exact) -> ex.Exact:
    """Exact atan2(y, x), signed zeros and infinities as in IEEE and torch."""
    if ex.is_nan(y) or ex.is_nan(x):
        return ex.NAN
    # On the x-axis the sign of a zero y (and of a zero x) decides, as in IEEE and torch:
    # atan2(+-0, x > 0) = +-0, atan2(+-0, x < 0) = +-pi, atan2(+-0, +0) = +-0, atan2(+-0, -0) = +-pi.
    negative_y = ex.is_neg_zero(y)
    if ex.is_zero(y) and (ex.sign(x) > 0 or (ex.is_zero(x) and not ex.is_neg_zero(x))):
        return ex.NEG_ZERO if negative_y else ex.ZERO
    if not (ex.is_finite(y) and ex.is_finite(x)):
        return ex.to_real(math.atan2(ex.to_float(y), ex.to_float(x)))
    if ex.is_zero(y):
        return ex.neg(ex.pi()) if negative_y else ex.pi()  # the negative x-axis
    return flint.arb.atan2(ex.to_real(y), ex.to_real(x))


def _sqrt(u: ex.Exact) -> ex.Exact:
    if ex.is_neg_zero(u):
        return ex.NEG_ZERO  # sqrt(-0.0) = -0.0 (IEEE), so its slope there is -inf
    return ex.rpow(u, ex.HALF)


def floor(u: ex.Exact) -> ex.Exact:
    """Exact floor, as torch.floor: inf and nan stay themselves."""
    if not ex.is_finite(u):
        return u  # floor(inf) = inf and floor(nan) = nan, as in torch
    if ex.is_rational(u):
        return ex.Q(u.floor())
    k = ex.Q(u.mid().floor().unique_fmpz())
    # Decided against the integers next to the midpoint (a ball on an integer is undecided).
    if ex.sign(ex.sub(u, k)) < 0:
        return k - 1
    if ex.sign(ex.sub(u, k + 1)) >= 0:
        return k + 1
    return k


def ceil(u: ex.Exact) -> ex.Exact:
    """Exact ceiling, as torch.ceil: inf and nan stay themselves."""
    if not ex.is_finite(u):
        return u
    if ex.is_rational(u):
        return ex.Q(u.ceil())
    return ex.neg(floor(ex.neg(u)))


def _is_integer(u: ex.Exact) -> bool:
    return ex.is_rational(u) and u.q == 1


def _recip_sqrt(u: ex.Exact) -> ex.Exact:
    return ex.div(ex.ONE, _sqrt(u))


def sgn(u: ex.Exact) -> ex.Exact:
    """The sign of u as an exact -1, 0 or 1."""
    return ex.Q(ex.sign(u))


Z = ex.ZERO
ONE = ex.ONE
HALF = ex.HALF


def _smooth(name: str, torch: str, value: Callable[[ex.Exact], ex.Exact], deriv: Callable[[ex.Exact, ex.Exact], ex.Exact]) -> Op:
    """A smooth unary op: value(u) and torch's backward formula deriv(u, value)."""
    return Op(name, torch, lambda a, p: value(a[0]), lambda a, v, p: (deriv(a[0], v),))


def _nan_in(a: Args) -> ex.Exact | None:
    """NaN when an argument is NaN (torch propagates it through max, min, clamp and relu)."""
    return ex.NAN if any(ex.is_nan(v) for v in a) else None


def _pieces_sign(u: ex.Exact) -> int | None:
    s = ex.sign(u)
    return None if s == 0 else s


# --------------------------------------------------------------------------- the ops

_OP_LIST: tuple[Op, ...] = (
    # Arithmetic. `add` and `mul` carry a constant parameter: add's is (signs, constant term),
    # mul's is the numeric coefficient; `div` is a / b.
    Op(
        "add",
        "{0} + {1}",
        lambda a, p: _add_value(a, p),
        lambda a, v, p: tuple(ex.Q(s) for s in p[0]),
    ),
    Op(
        "mul",
        "{0} * {1}",
        lambda a, p: _mul_value(a, p),
        lambda a, v, p: _mul_partials(a, p),
    ),
    Op(
        "div",
        "{0} / {1}",
        lambda a, p: ex.div(a[0], a[1]),
        lambda a, v, p: (ex.div(ONE, a[1]), ex.neg(ex.div(a[0], ex.mul(a[1], a[1])))),
    ),
    Op(
        "pow_int",
        "{0} ** {c}",
        lambda a, p: ex.ipow(a[0], p),
        # torch: grad * n * u**(n - 1); at u = 0 and n < 1 this is inf.
        lambda a, v, p: (ex.mul(ex.Q(p), ex.ipow(a[0], p - 1)),),
    ),
    Op(
        "sqrt",
        "torch.sqrt({0})",
        lambda a, p: _sqrt(a[0]),
        # torch: grad / (2 * sqrt(u)): inf at 0, nan below 0.
        lambda a, v, p: (ex.div(ONE, ex.mul(ex.Q(2), v)),),
    ),
    Op(
        "pow_frac",
        "{0} ** {c}",
        lambda a, p: ex.rpow(a[0], p),
        lambda a, v, p: (ex.mul(p, ex.rpow(a[0], p - 1)),),
    ),
    Op(
        "pow",
        "{0} ** {1}",
        lambda a, p: ex.gpow(a[0], a[1]),
        # torch masks two corners: d/du is 0 where the exponent is 0, d/dv is 0 where u = 0 and v >= 0.
        lambda a, v, p: (
            Z if ex.is_zero(a[1]) else ex.mul(a[1], ex.gpow(a[0], ex.sub(a[1], ONE))),
            Z if (ex.is_zero(a[0]) and ex.sign(a[1]) >= 0) else ex.mul(v, ex.log(a[0])),
        ),
        # x**y with a variable exponent is real for x > 0, for x = 0 with y > 0 (0**y = 0, flat in
        # y), and for x < 0 with an integer y (there its slope in y, x**y*log(x), is not real).
        undefined=lambda a, p: not _pow_defined(a[0], a[1]),
    ),
    _smooth("exp", "torch.exp({0})", exp, lambda u, v: v),
    _smooth("log", "torch.log({0})", ex.log, lambda u, v: ex.div(ONE, u)),
    _smooth("sin", "torch.sin({0})", sin, lambda u, v: cos(u)),
    _smooth("cos", "torch.cos({0})", cos, lambda u, v: ex.neg(sin(u))),
    _smooth("tan", "torch.tan({0})", tan, lambda u, v: ex.add(ONE, ex.mul(v, v))),
    _smooth("asin", "torch.asin({0})", asin, lambda u, v: _recip_sqrt(ex.sub(ONE, ex.mul(u, u)))),
    _smooth("acos", "torch.acos({0})", acos, lambda u, v: ex.neg(_recip_sqrt(ex.sub(ONE, ex.mul(u, u))))),
    _smooth("atan", "torch.atan({0})", atan, lambda u, v: ex.div(ONE, ex.add(ONE, ex.mul(u, u)))),
    _smooth("sinh", "torch.sinh({0})", sinh, lambda u, v: cosh(u)),
    _smooth("cosh", "torch.cosh({0})", cosh, lambda u, v: sinh(u)),
    # torch: grad * (1 - result**2); exactly 1/cosh(u)**2, which keeps its digits where tanh is
    # 1 to the working precision (1 - v*v at u = 710 would need 2,050 bits, at 1e300 never).
    Op("tanh", "torch.tanh({0})", lambda a, p: tanh(a[0]), lambda a, v, p: (_sech2(a[0]),),
       reads_result="1 - y**2"),
    _smooth(
        "erf",
        "torch.erf({0})",
        erf,
        lambda u, v: ex.mul(2 / flint.arb.pi().sqrt(), exp(ex.neg(ex.mul(u, u)))),
    ),
    # Fused ops: torch's own stable formulas, not the composition of their parts.
    # The exact derivatives are written without cancellation: exp(u) is torch's result + 1, and
    # sigmoid(u)*sigmoid(-u) its result*(1 - result), but neither loses digits (expm1 at -1000:
    # result + 1 would need 1,450 bits to tell 5e-435 from 0).
    Op("expm1", "torch.expm1({0})", lambda a, p: expm1(a[0]), lambda a, v, p: (exp(a[0]),),  # torch: grad * (result + 1)
       reads_result="y + 1"),
    _smooth("log1p", "torch.log1p({0})", log1p, lambda u, v: ex.div(ONE, ex.add(u, ONE))),
    Op("sigmoid", "torch.sigmoid({0})", lambda a, p: sigmoid(a[0]),  # torch's sigmoid_backward: y*(1 - y)
       lambda a, v, p: (ex.mul(v, sigmoid(ex.neg(a[0]))),), reads_result="y*(1 - y)"),
    # torch: grad * exp(self - result), the softmax weights (written without forming self - result).
    Op("logsumexp", "torch.logsumexp(torch.stack([{0}, ...]), 0)", lambda a, p: logsumexp(a),
       lambda a, v, p: tuple(softmax_weights(a))),
    Op("logaddexp", "torch.logaddexp({0}, {1})", lambda a, p: logsumexp(a), lambda a, v, p: _logaddexp_partials(a)),
    # softmax and log_softmax of a stacked vector, component `{c}`; their backward is the
    # softmax weights' (exact, no shortcut).
    Op("softmax", "torch.softmax(torch.stack([{0}, ...]), 0)[{c}]", lambda a, p: softmax_weights(a)[p],
       lambda a, v, p: _softmax_partials(a, p), reads_result="y_j*(delta_ij - y_i)"),
    Op("log_softmax", "torch.log_softmax(torch.stack([{0}, ...]), 0)[{c}]",
       lambda a, p: log_softmax(a, p), lambda a, v, p: _log_softmax_partials(a, p),
       reads_result="delta_ij - exp(y_j)"),
    # torch's 2-norm of a stacked vector: its backward is a_i / norm, masked to 0 at the origin,
    # where the mathematics is a cone (a kink). Beside the origin the piece is the direction the
    # arguments lie in, which continues to the origin as that direction's unit vector.
    Op("vector_norm", "torch.linalg.vector_norm(torch.stack([{0}, ...]), dim=0)", lambda a, p: vector_norm(a),
       lambda a, v, p: _vector_norm_partials(a, v),
       piece=lambda a, p: None if all(ex.is_zero(u) for u in a) else tuple(a),
       on_piece=lambda d, a, p: _vector_norm_on_piece(d, a),  # type: ignore[arg-type]
       nonsmooth="kink",
       convention="torch.linalg.vector_norm has gradient 0 at the origin (its backward a / norm is masked "
       "where the norm is 0).",
       alternatives="`torch.linalg.vector_norm` (and `torch.norm`, `.norm()`) gives 0; "
       "`torch.sqrt((v**2).sum() + eps)` is a smooth stand-in"),
    # torch's softplus kernel: x itself where x > 20 (value and slope), log1p(exp(x)) elsewhere.
    Op("softplus", "torch.nn.functional.softplus({0})", lambda a, p: _softplus_torch(a[0]),
       lambda a, v, p: (_softplus_slope(a[0]),),
       departs=lambda a, p: _softplus_departs(a[0]),
       math=lambda a, p: (softplus_math(a[0]), (sigmoid(a[0]),)),
       shortcut="torch's softplus returns its argument itself where it is above 20 (its `threshold`), "
       "dropping log1p(exp(-x)), which is under 2.1e-9; there the slope torch differentiates is exactly 1, "
       "and from 20 on its second derivative is 0, while the mathematics log(1 + exp(x)) has slope "
       "sigmoid(x) and curvature sigmoid(x)*(1 - sigmoid(x))."),
    # torch's fused losses of stacked elements (`losses.py`), param 1 for 'mean', 0 for 'sum'.
    Op("mse_loss", "torch.nn.functional.mse_loss(torch.stack([...]), torch.stack([...]), reduction)",
       lambda a, p: ls.mse_value(a, p), lambda a, v, p: ls.mse_partials(a, p)),
    Op("nll_loss", "torch.nn.functional.nll_loss(torch.stack([...]).reshape(n, 1), zeros, reduction)",
       lambda a, p: ls.nll_value(a, p), lambda a, v, p: ls.nll_partials(a, p)),
    # binary_cross_entropy's kernel clamps each log at -100 and its backward's denominator at 1e-12.
    Op("binary_cross_entropy", "torch.nn.functional.binary_cross_entropy(torch.stack([...]), torch.stack([...]), "
       "reduction)", lambda a, p: ls.bce_value(a, p), lambda a, v, p: ls.bce_partials(a, p),
       departs=lambda a, p: ls.bce_departs(a), math=lambda a, p: ls.bce_math(a, p),
       shortcut="torch's binary_cross_entropy clamps: its value takes each log at no less than -100, and its "
       "backward divides p - t by (1 - p)*p but by no less than 1e-12, so where p is within 1e-12 of 0 or 1 "
       "its gradient is (p - t)/1e-12 (0 at p = t = 0, where the mathematics' slope is 1/(1 - p) = 1)."),
    # The same with weight= (its args p, t and the constant weights): each element's loss times its weight.
    Op("weighted_binary_cross_entropy", "torch.nn.functional.binary_cross_entropy(torch.stack([...]), "
       "torch.stack([...]), weight=torch.stack([...]), reduction)", lambda a, p: ls.bce_value(a, p, True),
       lambda a, v, p: ls.bce_partials(a, p, True), departs=lambda a, p: ls.bce_departs(a, True),
       math=lambda a, p: ls.bce_math(a, p, True),
       shortcut="torch's binary_cross_entropy clamps: its value takes each log at no less than -100, and its "
       "backward divides p - t by (1 - p)*p but by no less than 1e-12, so where p is within 1e-12 of 0 or 1 "
       "its gradient is w*(p - t)/1e-12 (0 at p = t = 0, where the mathematics' slope is w/(1 - p) = w)."),
    # smooth_l1_loss and huber_loss: param (reduction, beta or delta); C1 at |x - t| = beta, where
    # torch's backward takes the outer branch, whose slope is the inner one's there.
    Op("smooth_l1_loss", "torch.nn.functional.smooth_l1_loss(torch.stack([...]), torch.stack([...]), reduction, beta)",
       lambda a, p: ls.smooth_l1_value(a, p), lambda a, v, p: ls.smooth_l1_partials(a, p)),
    Op("huber_loss", "torch.nn.functional.huber_loss(torch.stack([...]), torch.stack([...]), reduction, delta)",
       lambda a, p: ls.huber_value(a, p), lambda a, v, p: ls.huber_partials(a, p)),
    # param (reduction, has_weight, has_pos_weight); torch's kernel and backward are the mathematics'.
    Op("binary_cross_entropy_with_logits", "torch.nn.functional.binary_cross_entropy_with_logits(torch.stack([...]), "
       "torch.stack([...]), weight, pos_weight, reduction)", lambda a, p: ls.bce_logits_value(a, p, softplus_math),
       lambda a, v, p: ls.bce_logits_partials(a, p, softplus_math, sigmoid)),
    # param (reduction, ignore_index, C, the n labels, the C class weights); its args the picked elements.
    Op("weighted_nll_loss", "torch.nn.functional.nll_loss(L, y, weight, ignore_index, reduction) of the picked elements "
       "in an (n, C) stack", lambda a, p: ls.weighted_nll_value(a, p), lambda a, v, p: ls.weighted_nll_partials(a, p)),
    # param (reduction, label_smoothing, ignore_index, C, row, the n labels, the C class weights); its
    # args the n*C logits: torch's cross_entropy with label_smoothing, one log_softmax feeding both parts.
    Op("smoothed_cross_entropy", "torch.nn.functional.cross_entropy(X, y, weight, ignore_index, reduction, "
       "label_smoothing) of the logits in an (n, C) stack", lambda a, p: ls.smoothed_ce_value(a, p, log_softmax, softmax_weights),
       lambda a, v, p: ls.smoothed_ce_partials(a, p, log_softmax, softmax_weights)),
    Op(
        "atan2",
        "torch.atan2({0}, {1})",
        lambda a, p: atan2(a[0], a[1]),
        lambda a, v, p: _atan2_partials(a),
        # Its branch cut: on the negative x-axis atan2 jumps from pi (y > 0) to -pi (y < 0).
        piece=lambda a, p: None if (ex.is_zero(a[0]) and ex.sign(a[1]) < 0) else (ex.sign(a[0]) if ex.sign(a[1]) < 0 else 0),
        on_piece=lambda s, a, p: ((ex.mul(ex.Q(s), ex.pi()), _atan2_partials(a))
                                  if (s != 0 and ex.is_zero(a[0])) else (atan2(a[0], a[1]), _atan2_partials(a))),
        nonsmooth="jump",
        convention="torch.atan2 returns pi on the negative x-axis (y = +0) and its gradient there "
        "is that of the upper half-plane.",
        undefined=lambda a, p: ex.is_zero(a[0]) and ex.is_zero(a[1]),
    ),
    Op(
        "abs",
        "torch.abs({0})",
        lambda a, p: abs(a[0]),
        lambda a, v, p: (sgn(a[0]),),
        piece=lambda a, p: _pieces_sign(a[0]),
        on_piece=lambda s, a, p: (ex.mul(ex.Q(s), a[0]), (ex.Q(s),)),
        nonsmooth="kink",
        convention="torch.abs has gradient sign(x), which is 0 at x = 0.",
        alternatives="`torch.abs` gives 0; `torch.sqrt(x**2 + eps)` is a smooth stand-in",
    ),
    Op(
        "relu",
        "torch.relu({0})",
        lambda a, p: _nan_in(a) or (a[0] if ex.sign(a[0]) > 0 else Z),
        # A NaN input passes its gradient (torch's threshold_backward), as measured on 2.13.
        lambda a, v, p: (ONE if (ex.sign(a[0]) > 0 or ex.is_nan(a[0])) else Z,),
        piece=lambda a, p: _pieces_sign(a[0]),
        on_piece=lambda s, a, p: (a[0], (ONE,)) if s > 0 else (Z, (Z,)),
        nonsmooth="kink",
        convention="torch.relu has gradient 0 at 0 (only inputs > 0 pass the gradient).",
        alternatives="`torch.relu` gives 0, `torch.clamp(x, min=0)` gives 1, "
        "`torch.maximum(x, torch.zeros_like(x))` gives 1/2",
    ),
    Op(
        "clamp_min",
        "torch.clamp({0}, min={c})",
        lambda a, p: _nan_in(a) or (a[0] if ex.cmp(a[0], p) >= 0 else p),
        # clamp blocks the gradient of a NaN input.
        lambda a, v, p: (ONE if (ex.cmp(a[0], p) >= 0 and not ex.is_nan(a[0])) else Z,),
        piece=lambda a, p: _pieces_sign(ex.sub(a[0], p)),
        on_piece=lambda s, a, p: (a[0], (ONE,)) if s > 0 else (p, (Z,)),
        nonsmooth="kink",
        convention="torch.clamp counts its boundary as inside: gradient 1 at x = min.",
        alternatives="`torch.clamp(x, min=c)` gives 1, `torch.maximum(x, c)` gives 1/2",
    ),
    Op(
        "clamp_max",
        "torch.clamp({0}, max={c})",
        lambda a, p: _nan_in(a) or (a[0] if ex.cmp(a[0], p) <= 0 else p),
        lambda a, v, p: (ONE if (ex.cmp(a[0], p) <= 0 and not ex.is_nan(a[0])) else Z,),
        piece=lambda a, p: _pieces_sign(ex.sub(p, a[0])),
        on_piece=lambda s, a, p: (a[0], (ONE,)) if s > 0 else (p, (Z,)),
        nonsmooth="kink",
        convention="torch.clamp counts its boundary as inside: gradient 1 at x = max.",
        alternatives="`torch.clamp(x, max=c)` gives 1, `torch.minimum(x, c)` gives 1/2",
    ),
    Op(
        "maximum",
        "torch.maximum({0}, {1})",
        lambda a, p: _nan_in(a) or (a[0] if ex.cmp(a[0], a[1]) >= 0 else a[1]),
        lambda a, v, p: _tie_split(ex.cmp(a[0], a[1]), a),
        piece=lambda a, p: _pieces_sign(ex.sub(a[0], a[1])),
        on_piece=lambda s, a, p: (a[0], (ONE, Z)) if s > 0 else (a[1], (Z, ONE)),
        nonsmooth="kink",
        convention="torch.maximum splits a tie: each argument gets half the gradient.",
        alternatives="`torch.maximum` splits 1/2 : 1/2; `torch.where(a >= b, a, b)` gives all to a",
    ),
    Op(
        "minimum",
        "torch.minimum({0}, {1})",
        lambda a, p: _nan_in(a) or (a[0] if ex.cmp(a[0], a[1]) <= 0 else a[1]),
        lambda a, v, p: _tie_split(-ex.cmp(a[0], a[1]), a),
        piece=lambda a, p: _pieces_sign(ex.sub(a[1], a[0])),
        on_piece=lambda s, a, p: (a[0], (ONE, Z)) if s > 0 else (a[1], (Z, ONE)),
        nonsmooth="kink",
        convention="torch.minimum splits a tie: each argument gets half the gradient.",
        alternatives="`torch.minimum` splits 1/2 : 1/2; `torch.where(a <= b, a, b)` gives all to a",
    ),
    Op(
        "sign",
        "torch.sign({0})",
        lambda a, p: sgn(a[0]),
        lambda a, v, p: (Z,),
        piece=lambda a, p: _pieces_sign(a[0]),
        on_piece=lambda s, a, p: (ex.Q(s), (Z,)),
        nonsmooth="jump",
        convention="torch.sign has gradient 0 everywhere, also at its jump.",
    ),
    Op(
        "floor",
        "torch.floor({0})",
        lambda a, p: floor(a[0]),
        lambda a, v, p: (Z,),
        piece=lambda a, p: None if (_is_integer(a[0]) or not ex.is_finite(a[0])) else int(floor(a[0])),
        on_piece=lambda k, a, p: (ex.Q(k), (Z,)),
        nonsmooth="jump",
        convention="torch.floor has gradient 0 everywhere, also at the integers where it jumps.",
    ),
    Op(
        "ceil",
        "torch.ceil({0})",
        lambda a, p: ceil(a[0]),
        lambda a, v, p: (Z,),
        piece=lambda a, p: None if (_is_integer(a[0]) or not ex.is_finite(a[0])) else int(ceil(a[0])),
        on_piece=lambda k, a, p: (ex.Q(k), (Z,)),
        nonsmooth="jump",
        convention="torch.ceil has gradient 0 everywhere, also at the integers where it jumps.",
    ),
    Op(
        # torch.heaviside has no backward at all; (sign(x) + 1) / 2 has SymPy's value 1/2 at 0
        # and gradient 0, which is what a student expects of a step.
        "heaviside",
        "(torch.sign({0}) + 1) / 2",
        lambda a, p: (ex.Q(ex.sign(a[0]) + 1, 2)),
        lambda a, v, p: (Z,),
        piece=lambda a, p: _pieces_sign(a[0]),
        on_piece=lambda s, a, p: (ex.Q(s + 1, 2), (Z,)),
        nonsmooth="jump",
        convention="lowered as (sign(x) + 1) / 2: value 1/2 and gradient 0 at 0 "
        "(torch.heaviside itself has no backward).",
    ),
    Op(
        # torch.where(c, a, b): the condition is an operand of the statement, not of the op.
        "where",
        "torch.where({c}, {0}, {1})",
        lambda a, p: a[0] if p else a[1],
        lambda a, v, p: (ONE, Z) if p else (Z, ONE),
    ),
    Op(
        "copy",
        "{0}",
        lambda a, p: a[0],
        lambda a, v, p: (ONE,),
    ),
    Op(
        # The constant result of an `if` branch, kept on the autograd graph through an input.
        "const_on_graph",
        "{0} * 0",
        lambda a, p: p,
        lambda a, v, p: (Z,),
    ),
    Op("constant", "torch.tensor({c})", lambda a, p: p, lambda a, v, p: ()),
    Op("detach", "{0}.detach()", lambda a, p: a[0], lambda a, v, p: (ONE,)),
    Op("item", "torch.tensor({0}.item(), dtype={0}.dtype)", lambda a, p: a[0], lambda a, v, p: (ONE,)),
    Op("no_grad", "{0}", lambda a, p: a[0], lambda a, v, p: (ONE,)),
    Op("cast", "{0}.to(torch.{c})", lambda a, p: a[0], lambda a, v, p: (ONE,)),  # `.float()` of a computed value
)


def _add_value(a: Args, p: tuple[tuple[int, ...], ex.Exact]) -> ex.Exact:
    signs, const = p
    total = const
    for s, v in zip(signs, a):
        total = ex.add(total, v) if s > 0 else ex.sub(total, v)
    return total


def _mul_value(a: Args, p: ex.Exact) -> ex.Exact:
    total = p
    for v in a:
        total = ex.mul(total, v)
    return total


def _mul_partials(a: Args, p: ex.Exact) -> tuple[ex.Exact, ...]:
    out = []
    for i in range(len(a)):
        total = p
        for j, v in enumerate(a):
            if j != i:
                total = ex.mul(total, v)
        out.append(total)
    return tuple(out)


def _tie_split(c: int, a: Args) -> tuple[ex.Exact, ex.Exact]:
    """maximum/minimum's backward: all to the larger (smaller), 1/2 : 1/2 on a tie, and the
    full gradient to both arguments when either is NaN (torch 2.13, measured)."""
    if ex.is_nan(a[0]) or ex.is_nan(a[1]):
        return (ONE, ONE)
    return (ONE, Z) if c > 0 else ((Z, ONE) if c < 0 else (HALF, HALF))


def _atan2_partials(a: Args) -> tuple[ex.Exact, ex.Exact]:
    y, x = a
    r2 = ex.add(ex.mul(x, x), ex.mul(y, y))
    if ex.is_zero(r2):
        return (Z, Z)  # torch masks the origin to 0
    return (ex.div(x, r2), ex.neg(ex.div(y, r2)))


def _no_partials(a: Args, v: Any, p: Any) -> tuple[ex.Exact, ...]:
    return ()


def _matpow_vjp(a: Args, v: Any, n: int, g: Any) -> tuple[Any, ...]:
    at = ex.transpose(a[0])
    total = ex.full(a[0].shape, Z)
    for k in range(n):
        total = ex.accumulate(total, ex.matmul(ex.matmul(el.matpow(at, k), g), el.matpow(at, n - 1 - k)))
    return (total,)


def _elem_vjp(a: Args, v: Any, p: tuple[int, int], g: Any) -> tuple[Any, ...]:
    out = ex.full(a[0].shape, Z)
    out[p] = g
    return (out,)


def softmax_groups(p: tuple[Any, ...]) -> list[list[int]]:
    """The flat (row-major) positions each softmax of a (rows, cols) matrix runs over: all of
    them (a whole vector, `dim` None), each row (`dim` 1) or each column (`dim` 0)."""
    rows, cols = p[0], p[1]
    dim = p[2] if len(p) > 2 else None
    if dim is None:
        return [list(range(rows * cols))]
    if dim == 1:
        return [list(range(i * cols, (i + 1) * cols)) for i in range(rows)]
    return [list(range(j, rows * cols, cols)) for j in range(cols)]


def _softmax_matrix(a: Args, p: tuple[Any, ...], log: bool) -> Any:
    out: list[ex.Exact] = list(a)
    for group in softmax_groups(p):
        values = [a[k] for k in group]
        result = log_softmax_all(values) if log else softmax_weights(values)
        for k, r in zip(group, result):
            out[k] = r
    return _stack(out, p[:2])


def _softmax_vector_vjp(a: Args, v: Any, p: tuple[Any, ...], g: Any) -> tuple[Any, ...]:
    """torch's _softmax_backward_data, per softmax: s_j (g_j - sum_k g_k s_k) for each value."""
    s, gs = list(v.flat), list(g.flat)
    out: list[ex.Exact] = list(gs)
    for group in softmax_groups(p):
        dot: ex.Exact = Z
        for k in group:
            dot = ex.add(dot, ex.mul(gs[k], s[k]))
        for k in group:
            out[k] = ex.mul(s[k], ex.sub(gs[k], dot))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class KeptRows:
    """A log_softmax's value and, per softmax, what its forward's `_largest` found (the largest
    argument's index, 1 + ... less one: `rest`, each other exp(u_j - m)), None for a NaN row: its
    backward's weights exp(result_j) = softmax_weights are made from them, the same numbers, instead of
    every exponential computed again (`Op.kept`)."""

    value: Any
    rows: tuple[tuple[ex.Exact, int, ex.Exact, dict[int, ex.Exact]] | None, ...]


def _log_softmax_kept(a: Args, p: tuple[Any, ...]) -> tuple[Any, KeptRows]:
    """`_softmax_matrix(a, p, log=True)` (the same numbers: `log_softmax_all` per softmax), and what it found."""
    out: list[ex.Exact] = list(a)
    rows: list[tuple[ex.Exact, int, ex.Exact, dict[int, ex.Exact]] | None] = []
    for group in softmax_groups(p):
        values = [a[k] for k in group]
        if _nan_row(values):
            result, found = [ex.NAN for _ in values], None
        else:
            terms: dict[int, ex.Exact] = {}
            m, top, rest = _largest(values, terms)
            total = log1p(rest)
            result, found = [ex.sub(ex.sub(u, m), total) for u in values], (m, top, rest, terms)
        for k, r in zip(group, result):
            out[k] = r
        rows.append(found)
    value = _stack(out, p[:2])
    return value, KeptRows(value, tuple(rows))


def _log_softmax_vector_vjp(a: Args, v: Any, p: tuple[Any, ...], g: Any) -> tuple[Any, ...]:
    """torch's _log_softmax_backward_data, per softmax: g_j - exp(result_j) sum_k g_k (exp(result_j)
    is softmax_weights' s_j, made from the forward's `KeptRows` where `v` is one)."""
    gs = list(g.flat)
    out: list[ex.Exact] = list(gs)
    kept = v.rows if isinstance(v, KeptRows) else None
    for r, group in enumerate(softmax_groups(p)):
        total: ex.Exact = Z
        for k in group:
            total = ex.add(total, gs[k])
        values = [a[k] for k in group]
        found = kept[r] if kept is not None else None
        weights = softmax_weights(values) if kept is None else \
            [ex.NAN for _ in values] if found is None else _weights(values, *found)
        for k, sk in zip(group, weights):
            out[k] = ex.sub(gs[k], ex.mul(sk, total))
    return tuple(out)


def _softmax_of_vjp(log: bool) -> Callable[[Args, Any, Any, Any], tuple[Any, ...]]:
    """The backward of torch.softmax(M, dim) of a whole matrix operand: the stacked op's, per element."""
    inner = _log_softmax_vector_vjp if log else _softmax_vector_vjp

    def vjp(a: Args, v: Any, p: tuple[Any, ...], g: Any) -> tuple[Any, ...]:
        m = a[0]
        out = ex.full(m.shape, Z)
        for k, d in enumerate(inner(list(m.flat), v, p, g)):
            out.flat[k] = d
        return (out,)

    return vjp


def _stack_vjp(a: Args, v: Any, p: tuple[int, int], g: Any) -> tuple[Any, ...]:
    return tuple(g.flat)


def _expand_value(m: Any, shape: tuple[int, int]) -> Any:
    """m, whose dimensions are those of `shape` or 1, repeated to `shape` (torch's expand)."""
    out = ex.full(shape, Z)
    for i in range(shape[0]):
        for j in range(shape[1]):
            out[i, j] = m[i if m.shape[0] > 1 else 0, j if m.shape[1] > 1 else 0]
    return out


def _sum_to(m: Any, shape: tuple[int, int]) -> Any:
    """m summed over the dimensions that are 1 in `shape` (torch's sum_to_size): the sums of its
    rows for (rows, 1), of its columns for (1, cols), of everything for (1, 1). The adjoint of
    `_expand_value`, and the other way round."""
    out = ex.full(shape, Z)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            k = (i if shape[0] > 1 else 0, j if shape[1] > 1 else 0)
            out[k] = ex.add(out[k], m[i, j])
    return out


def _summed_shape(m: Any, dim: int) -> tuple[int, int]:
    """The shape of the sums of m's rows (dim 1) or columns (dim 0), kept 2-D."""
    return (m.shape[0], 1) if dim == 1 else (1, m.shape[1])


_MATRIX_OPS: tuple[Op, ...] = (
    Op("matmul", "{0} @ {1}", lambda a, p: ex.matmul(a[0], a[1]), _no_partials,
       vjp=lambda a, v, p, g: (lambda: ex.matmul(g, ex.transpose(a[1])), lambda: ex.matmul(ex.transpose(a[0]), g))),
    # torch.nn.functional.linear(x, W, b) with b an (m, 1) column: x @ W.T + b, torch's addmm.
    Op("linear", "torch.nn.functional.linear({0}, {1}, {2}.reshape(-1))",
       lambda a, p: ex.ewise(ex.add, ex.matmul(a[0], ex.transpose(a[1])),
                             _expand_value(ex.transpose(a[2]), (a[0].shape[0], a[1].shape[0]))),
       _no_partials, vjp=lambda a, v, p, g: (lambda: ex.matmul(g, a[1]), lambda: ex.matmul(ex.transpose(g), a[0]),
                                              lambda: ex.transpose(_sum_to(g, (1, g.shape[1]))))),
    Op("transpose", "{0}.T", lambda a, p: ex.transpose(a[0]), _no_partials,
       vjp=lambda a, v, p, g: (ex.transpose(g),)),
    Op("inv", "torch.linalg.inv({0})", lambda a, p: ex.inverse(a[0]), _no_partials,
       vjp=lambda a, v, p, g: (ex.ewise(ex.neg, ex.matmul(ex.matmul(ex.transpose(v), g), ex.transpose(v))),)),
    Op("det", "torch.linalg.det({0})", lambda a, p: ex.det(a[0]), _no_partials,
       vjp=lambda a, v, p, g: (ex.ewise(lambda t: ex.mul(g, t), el.cofactors(a[0])),)),
    Op("trace", "torch.trace({0})", lambda a, p: el.trace(a[0]), _no_partials,
       vjp=lambda a, v, p, g: (ex.ewise(lambda t: ex.mul(g, t), ex.eye(a[0].shape[0])),)),
    Op("matpow", "torch.linalg.matrix_power({0}, {c})", lambda a, p: el.matpow(a[0], p), _no_partials,
       vjp=_matpow_vjp),
    Op("elem", "{0}[{c}]", lambda a, p: a[0][p], _no_partials, vjp=_elem_vjp),
    Op("stack", "torch.stack([{0}]).reshape({c})", lambda a, p: _stack(a, p), _no_partials, vjp=_stack_vjp),
    Op("matconst", "{c}", lambda a, p: p, _no_partials, vjp=lambda a, v, p, g: ()),
    # Every element of a matrix added up (what `.sum()` of a tensor is read as): torch's own
    # reduction, which rounds as the user's `.sum()` does (ones @ M @ ones would not).
    Op("sum", "{0}.sum()", lambda a, p: _sum_to(a[0], (1, 1))[0, 0], _no_partials,
       vjp=lambda a, v, p, g: (ex.full(a[0].shape, g),)),
    # The sums of each row (dim 1) or column (dim 0), as `A.sum(dim)` is read.
    Op("sum_dim", "{0}.sum({c}, keepdim=True)", lambda a, p: _sum_to(a[0], _summed_shape(a[0], p)), _no_partials,
       vjp=lambda a, v, p, g: (_expand_value(g, a[0].shape),)),
    # A row (column) repeated down (across) a matrix, as torch broadcasts `X + b`.
    Op("expand", "{0}.expand({c})", lambda a, p: _expand_value(a[0], p), _no_partials,
       vjp=lambda a, v, p, g: (_sum_to(g, a[0].shape),)),
    # A whole softmax vector from one torch call (torch.softmax(v, 0) read back from torch code),
    # or a softmax along each row (dim 1) or column (dim 0) of a matrix: torch.softmax(X, dim).
    Op("softmax_vector", "torch.softmax(torch.stack([{0}, ...]), 0).reshape({c}), or "
       "torch.softmax(torch.stack([{0}, ...]).reshape(m, n), dim)",
       lambda a, p: _softmax_matrix(a, p, log=False), _no_partials, vjp=_softmax_vector_vjp),
    Op("log_softmax_vector", "torch.log_softmax(torch.stack([{0}, ...]), 0).reshape({c}), or "
       "torch.log_softmax(torch.stack([{0}, ...]).reshape(m, n), dim)",
       lambda a, p: _softmax_matrix(a, p, log=True), _no_partials, vjp=_log_softmax_vector_vjp, kept=_log_softmax_kept),
    # The same of a matrix the program already holds (its elements in order): torch.softmax(M, dim).
    Op("softmax_of", "torch.softmax({0}, dim)", lambda a, p: _softmax_matrix(list(a[0].flat), p, log=False),
       _no_partials, vjp=_softmax_of_vjp(log=False)),
    Op("log_softmax_of", "torch.log_softmax({0}, dim)", lambda a, p: _softmax_matrix(list(a[0].flat), p, log=True),
       _no_partials, vjp=_softmax_of_vjp(log=True), kept=lambda a, p: _log_softmax_kept(list(a[0].flat), p)),
)


def _stack(a: Args, shape: tuple[int, int]) -> Any:
    out = ex.full(shape, Z)
    for k, v in enumerate(a):
        out.flat[k] = v
    return out


# torch's max/min/var/std reductions of stacked elements (`reductions.py`).
_REDUCTION_OPS: Final = tuple(Op(**fields) for fields in (*rd.op_fields(logsumexp, softmax_weights), *pr.OP_FIELDS))
# The user's own torch.autograd.Function (`custom.py`): its value is its first argument (the
# forward's mathematics), its backward the user's, read from source; the parameter is its `CustomSpec`.
_CUSTOM: Final = Op("custom_function", "{c}.apply(...)", lambda a, p: a[0], lambda a, v, p: p.partials(a),
                    convention="the user's own `backward`")
# torch's batch norm, F.normalize (`normalization.py`) and torch.cdist (`distances.py`): one element of
# each, and the whole matrix (a matrix op).
_NORM_OPS: Final = tuple(Op(**fields) for fields in (*nm.OP_FIELDS, *dist.OP_FIELDS, *ln.OP_FIELDS, *cs.OP_FIELDS, *od.OP_FIELDS,
                                                        *cu.OP_FIELDS))
_NORM_MATRIX_OPS: Final = tuple(Op(**fields) for fields in (*nm.MATRIX_OP_FIELDS, *dist.MATRIX_OP_FIELDS,
                                                               *ln.MATRIX_OP_FIELDS, *cu.MATRIX_OP_FIELDS))
_MATRIX_OPS += tuple(Op(**fields) for fields in calls.OP_FIELDS)  # the user's own torch call of a product (calls)
_GLU_OPS: Final = tuple(Op(**fields) for fields in gl.op_fields(sigmoid))  # F.glu (gated.py): element, matrix
OPS: Final[dict[str, Op]] = {op.name: op for op in (*_OP_LIST, *_MATRIX_OPS, *_REDUCTION_OPS, _CUSTOM, *_NORM_OPS,
                                                     *_NORM_MATRIX_OPS, *_GLU_OPS)}
MATRIX_OPS: Final = frozenset(op.name for op in (*_MATRIX_OPS, *_NORM_MATRIX_OPS, _GLU_OPS[1]))

# Ops that take part of the function off the autograd graph.
GRAPH_BREAK_OPS: Final = frozenset({"item", "no_grad"})
DETACH_OPS: Final = frozenset({"detach"})
CUT_OPS: Final = GRAPH_BREAK_OPS | DETACH_OPS
