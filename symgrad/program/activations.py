"""torch's fused activations as SymPy functions, with their exact values and torch's backward formulas.

Each is one kernel of torch's (aten/src/ATen/native/Activation.cpp and its CPU kernels), with
its own backward (tools/autograd/derivatives.yaml), so symgrad reads each as one node, lowered
to the torch call itself (which reproduces torch's bits), and differentiated exactly with
torch's backward formula:

| function                  | mathematics                                   | torch                                   |
|---------------------------|-----------------------------------------------|-----------------------------------------|
| `gelu(x)`                 | x*Phi(x) = x*(1 + erf(x/sqrt(2)))/2           | `F.gelu(x)`                             |
| `gelu_tanh(x)`            | x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))/2 | `F.gelu(x, approximate='tanh')`        |
| `silu(x)`                 | x/(1 + exp(-x))                               | `F.silu(x)`                             |
| `logsigmoid(x)`           | -log(1 + exp(-x))                             | `F.logsigmoid(x)`                       |
| `elu(x, a)`               | x for x > 0, a*(exp(x) - 1) otherwise         | `F.elu(x, alpha=a)`                     |
| `leaky_relu(x, s)`        | x for x > 0, s*x otherwise                    | `F.leaky_relu(x, negative_slope=s)`     |
| `hardtanh(x, lo, hi)`     | Min(Max(x, lo), hi)                           | `F.hardtanh(x, lo, hi)`, `F.relu6(x)`   |

The parameters are the numbers the user passed (a float64 each, as torch takes them). elu
with a != 1 and leaky_relu with s != 1 have a kink at 0, hardtanh at lo and at hi; torch's
conventions there (its backward formulas read at the point): elu'(0) = a (`x <= 0`), leaky_relu'(0)
= s (`x > 0` passes the gradient), hardtanh' = 0 at both corners (`x <= lo or x >= hi` blocks it,
where torch.clamp passes it). The rows of `ops.OPS` are `ACTIVATION_OPS`, added to it here (this
module is imported by `rules.py`, which every reader of the tables imports).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Final

import flint
import sympy as sp

from ..base.causes import Cause
from . import exact as ex
from . import ops
from .ops import OPS, Args, Op
from .primitives import item, sigmoid

# torch's constant in the tanh approximation (kKappa in its GeLU kernels).
GELU_KAPPA: Final = sp.Rational(44715, 10**6)


class _Activation(sp.Function):
    """A fused activation of one real argument x, then its parameters (numbers)."""

    is_real = True
    PARAMS: tuple[str, ...] = ()

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        return None

    @property
    def params(self) -> tuple[float, ...]:
        """The parameters as the float64 torch is given."""
        return tuple(float(a) for a in self.args[1:])

    def written_out(self) -> sp.Expr:
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1:
            return sp.Integer(0)  # a parameter is a number, not an input
        x = sp.Dummy("x", real=True)
        return sp.diff(self.func(x, *self.args[1:]).written_out(), x).subs(x, self.args[0])

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        return self.written_out()._eval_evalf(prec)


class gelu(_Activation):
    """`F.gelu(x)` (approximate='none'): x*Phi(x), Phi the standard normal's distribution function."""

    nargs = 1

    def written_out(self) -> sp.Expr:
        x = self.args[0]
        return x * (1 + sp.erf(x / sp.sqrt(2))) / 2


class gelu_tanh(_Activation):
    """`F.gelu(x, approximate='tanh')`: x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))/2."""

    nargs = 1

    def written_out(self) -> sp.Expr:
        x = self.args[0]
        return x * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + GELU_KAPPA * x**3))) / 2


class silu(_Activation):
    """`F.silu(x)`: x*sigmoid(x) = x/(1 + exp(-x))."""

    nargs = 1

    def written_out(self) -> sp.Expr:
        return self.args[0] / (1 + sp.exp(-self.args[0]))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        return sigmoid(x) * (1 + x * (1 - sigmoid(x)))


class logsigmoid(_Activation):
    """`F.logsigmoid(x)`: log(sigmoid(x)) = -log(1 + exp(-x))."""

    nargs = 1

    def written_out(self) -> sp.Expr:
        return -sp.log(1 + sp.exp(-self.args[0]))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(-self.args[0])


class elu(_Activation):
    """`F.elu(x, alpha)`: x for x > 0, alpha*(exp(x) - 1) otherwise."""

    nargs = 2
    PARAMS = ("alpha",)

    def written_out(self) -> sp.Expr:
        x, a = self.args
        return sp.Piecewise((x, x > 0), (a * (sp.exp(x) - 1), True))


class leaky_relu(_Activation):
    """`F.leaky_relu(x, negative_slope)`: x for x > 0, negative_slope*x otherwise."""

    nargs = 2
    PARAMS = ("negative_slope",)

    def written_out(self) -> sp.Expr:
        x, s = self.args
        return sp.Piecewise((x, x > 0), (s * x, True))


class hardtanh(_Activation):
    """`F.hardtanh(x, min_val, max_val)` (and `F.relu6(x)`, hardtanh(x, 0, 6)): Min(Max(x, lo), hi)."""

    nargs = 3
    PARAMS = ("min_val", "max_val")

    def written_out(self) -> sp.Expr:
        x, lo, hi = self.args
        return sp.Min(sp.Max(x, lo), hi)


class round_even(_Activation):
    """`torch.round(x)`: the nearest integer, a half-integer to the even one (torch's rounding);
    a step function, derivative 0 between its jumps at the half-integers (torch's gradient: 0)."""

    nargs = 1

    def written_out(self) -> sp.Expr:
        x = self.args[0]
        if x.is_number:
            return sp.Integer(round(sp.Rational(x)))  # Python rounds a half to the even integer too
        return sp.floor(x + sp.Rational(1, 2))  # (off the half-integers)

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Integer(0)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        return self.written_out() if self.args[0].is_number else None


class xlogy(_Activation):
    """`torch.xlogy(x, y)`: x*log(y), and 0 where x = 0 (torch's convention, the limit for y > 0)."""

    nargs = 2

    def written_out(self) -> sp.Expr:
        return self.args[0] * sp.log(self.args[1])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, y = self.args
        return sp.log(y) if argindex == 1 else x / y


class softplus_beta(_Activation):
    """`F.softplus(x, beta, threshold)` with other than torch's defaults: log(1 + exp(beta*x))/beta; torch's
    kernel returns x itself where beta*x > threshold (there its slope is exactly 1)."""

    nargs = 3
    PARAMS = ("beta", "threshold")

    def written_out(self) -> sp.Expr:
        x, beta, _ = self.args
        return sp.log(1 + sp.exp(beta * x)) / beta

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1:
            return sp.Integer(0)
        return sigmoid(self.args[1] * self.args[0])


class mish(_Activation):
    """`F.mish(x)`: x*tanh(softplus(x)) = x*tanh(log(1 + exp(x))), torch's fused kernel (no threshold)."""

    nargs = 1

    def written_out(self) -> sp.Expr:
        return self.args[0] * sp.tanh(sp.log(1 + sp.exp(self.args[0])))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        t = sp.tanh(sp.log(1 + sp.exp(x)))
        return t + x * sigmoid(x) * (1 - t**2)


ACTIVATIONS: Final = (gelu, gelu_tanh, silu, logsigmoid, elu, leaky_relu, hardtanh, round_even, xlogy, softplus_beta,
                      mish)


def select(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any]:
    """The op an activation node lowers to, its operands and its parameters (floats)."""
    if isinstance(e, xlogy):
        return "xlogy", tuple(e.args), None
    return type(e).__name__, (e.args[0],), e.params  # type: ignore[attr-defined]


class tensor_copy(item):
    """A value with a gradient copied into `torch.tensor([...])`: a new leaf with no history, as
    `.item()` makes (the same rule row and op); only the words of the graph break differ."""


# --------------------------------------------------------------------------- exact values

Z = ex.ZERO
ONE = ex.ONE
_NAN_PASSES = ONE  # torch's backward of each of these reads a NaN input as the gradient's own piece


def _ball(u: ex.Exact, fn: Callable[[flint.arb], flint.arb]) -> ex.Exact:
    v = fn(ex.to_real(u))
    return ex.INDETERMINATE if ex.is_nan(v) else v


def _phi(u: ex.Exact) -> ex.Exact:
    """The standard normal density exp(-u**2/2)/sqrt(2*pi)."""
    return ex.div(ops.exp(ex.neg(ex.div(ex.mul(u, u), ex.Q(2)))), _ball(ex.Q(2), lambda r: (r * flint.arb.pi()).sqrt()))


def _cdf(u: ex.Exact) -> ex.Exact:
    """Phi(u) = erfc(-u/sqrt(2))/2, which keeps its digits far in the left tail (1 + erf would not)."""
    if ex.is_zero(u):
        return ex.HALF
    return _ball(u, lambda r: (-r / flint.arb(2).sqrt()).erfc() / 2)


def gelu_value(u: ex.Exact) -> ex.Exact:
    if ex.is_nan(u) or not ex.is_finite(u):
        return u if ex.sign(u) > 0 else ex.NAN  # as torch: inf, and -inf*0 = NaN
    return ex.mul(u, _cdf(u))


def gelu_slope(u: ex.Exact) -> ex.Exact:
    """torch's GeluBackward (none): cdf + x*pdf, exactly the mathematics' Phi(x) + x*phi(x)."""
    if ex.is_nan(u):
        return ex.NAN
    if not ex.is_finite(u):
        return ex.NAN  # as torch's backward (inf*0 in it)
    return ex.add(_cdf(u), ex.mul(u, _phi(u)))


def _gelu_inner2(u: ex.Exact) -> ex.Exact:
    """2*sqrt(2/pi)*(u + kappa*u**3): 1 + tanh(z) is 2*sigmoid(2z), which never cancels."""
    k = ex.from_sympy(GELU_KAPPA)
    beta = _ball(ex.Q(2), lambda r: (r / flint.arb.pi()).sqrt())
    return ex.mul(ex.mul(ex.Q(2), beta), ex.add(u, ex.mul(k, ex.mul(u, ex.mul(u, u)))))


def gelu_tanh_value(u: ex.Exact) -> ex.Exact:
    if ex.is_nan(u) or not ex.is_finite(u):
        return u if ex.sign(u) > 0 else ex.NAN  # as torch: inf, and -inf*0 = NaN
    if ex.is_zero(u):
        return Z
    return ex.mul(u, ops.sigmoid(_gelu_inner2(u)))


def gelu_tanh_slope(u: ex.Exact) -> ex.Exact:
    """torch's GeluBackward (tanh): (1 + t)/2 + x/2*(1 - t**2)*beta*(1 + 3*kappa*x**2), t = tanh(inner),
    written as s + 2*x*s*(1 - s)*beta*(1 + 3*kappa*x**2) with s = sigmoid(2*inner)."""
    if ex.is_nan(u):
        return ex.NAN
    if not ex.is_finite(u):
        return ex.NAN  # as torch's backward (inf*0 in it)
    if ex.is_zero(u):
        return ex.HALF
    z2 = _gelu_inner2(u)
    s, r = ops.sigmoid(z2), ops.sigmoid(ex.neg(z2))
    k = ex.from_sympy(GELU_KAPPA)
    beta = _ball(ex.Q(2), lambda q: (q / flint.arb.pi()).sqrt())
    dz = ex.mul(beta, ex.add(ONE, ex.mul(ex.mul(ex.Q(3), k), ex.mul(u, u))))
    return ex.add(s, ex.mul(ex.mul(ex.Q(2), ex.mul(u, ex.mul(s, r))), dz))


def silu_value(u: ex.Exact) -> ex.Exact:
    if ex.is_nan(u) or not ex.is_finite(u):
        return u if ex.sign(u) > 0 else ex.NAN  # as torch: inf, and -inf*0 = NaN
    return ex.mul(u, ops.sigmoid(u))


def silu_slope(u: ex.Exact) -> ex.Exact:
    """torch's silu_backward: sigmoid*(1 + x*(1 - sigmoid)), 1 - sigmoid(x) written sigmoid(-x)."""
    if ex.is_nan(u):
        return ex.NAN
    if not ex.is_finite(u):
        return ex.NAN  # as torch's backward (inf*0 in it)
    return ex.mul(ops.sigmoid(u), ex.add(ONE, ex.mul(u, ops.sigmoid(ex.neg(u)))))


def logsigmoid_value(u: ex.Exact) -> ex.Exact:
    """min(x, 0) - log1p(exp(-|x|)), torch's kernel's formula (exact: the mathematics)."""
    return ex.neg(ops.softplus_math(ex.neg(u)))


def elu_value(u: ex.Exact, alpha: ex.Exact) -> ex.Exact:
    if ex.is_nan(u):
        return ex.NAN
    return u if ex.sign(u) > 0 else ex.mul(alpha, ops.expm1(u))


def elu_slope(u: ex.Exact, alpha: ex.Exact) -> ex.Exact:
    """torch's elu_backward (is_result=False): alpha*exp(x) where x <= 0, 1 elsewhere (a NaN too)."""
    if ex.is_nan(u) or ex.sign(u) > 0:
        return _NAN_PASSES
    return ex.mul(alpha, ops.exp(u))


def _sign_piece(u: ex.Exact) -> int | None:
    if ex.is_nan(u):
        return 1
    s = ex.sign(u)
    return None if s == 0 else s


def _f(p: tuple[float, ...], i: int = 0) -> ex.Exact:
    return ex.from_float(p[i])


def _hardtanh_piece(u: ex.Exact, lo: ex.Exact, hi: ex.Exact) -> int | None:
    if ex.is_nan(u):
        return 0
    a, b = ex.cmp(u, lo), ex.cmp(u, hi)
    if a == 0 or b == 0:
        return None
    return -1 if a < 0 else (1 if b > 0 else 0)


def _hardtanh_on_piece(s: Hashable, u: ex.Exact, lo: ex.Exact, hi: ex.Exact) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    return {-1: (lo, (Z,)), 1: (hi, (Z,))}.get(s, (u, (ONE,)))  # type: ignore[call-overload]


def hardtanh_value(u: ex.Exact, lo: ex.Exact, hi: ex.Exact) -> ex.Exact:
    if ex.is_nan(u):
        return ex.NAN
    return lo if ex.cmp(u, lo) < 0 else (hi if ex.cmp(u, hi) > 0 else u)


def hardtanh_slope(u: ex.Exact, lo: ex.Exact, hi: ex.Exact) -> ex.Exact:
    """torch's hardtanh_backward: 0 where x <= min_val or x >= max_val (a NaN passes)."""
    if ex.is_nan(u):
        return ONE
    return Z if (ex.cmp(u, lo) <= 0 or ex.cmp(u, hi) >= 0) else ONE


def _unary(name: str, torch: str, value: Callable[[ex.Exact], ex.Exact], slope: Callable[[ex.Exact], ex.Exact]) -> Op:
    return Op(name, torch, lambda a, p: value(a[0]), lambda a, v, p: (slope(a[0]),))


def _leaky_value(u: ex.Exact, s: ex.Exact) -> ex.Exact:
    return ex.NAN if ex.is_nan(u) else (u if ex.sign(u) > 0 else ex.mul(s, u))


def _leaky_slope(u: ex.Exact, s: ex.Exact) -> ex.Exact:
    """torch's leaky_relu_backward: grad where x > 0, negative_slope*grad elsewhere (a NaN too)."""
    return ONE if (not ex.is_nan(u) and ex.sign(u) > 0) else s


def _smooth_piece(u: ex.Exact, c: ex.Exact) -> int | None:
    """The pieces of elu and leaky_relu: x > 0 and x < 0, one at 0 (None) unless the two meet
    with one slope there (a parameter of 1), where the function is smooth."""
    if ex.cmp(c, ONE) == 0:
        return 1 if ex.sign(u) >= 0 else -1
    return _sign_piece(u)


def round_value(u: ex.Exact) -> ex.Exact:
    """torch.round: the nearest integer, a half-integer to the even one; inf and nan stay."""
    if not ex.is_finite(u):
        return u
    f = ops.floor(u)
    c = ex.cmp(ex.sub(u, f), ex.HALF)
    r = f if c < 0 or (c == 0 and int(f) % 2 == 0) else ex.add(f, ONE)  # type: ignore[call-overload]
    return ex.NEG_ZERO if ex.is_zero(r) and (ex.sign(u) < 0 or ex.is_neg_zero(u)) else r  # -0.5 rounds to -0.0


def _round_piece(u: ex.Exact) -> Hashable | None:
    """The integer u rounds to; None on a half-integer (a jump)."""
    if not ex.is_finite(u):
        return 0
    f = ops.floor(u)
    return None if ex.cmp(ex.sub(u, f), ex.HALF) == 0 else ex.to_float(round_value(u))


def xlogy_value(x: ex.Exact, y: ex.Exact) -> ex.Exact:
    """torch.xlogy: 0 where x = 0 (and y is not NaN), x*log(y) elsewhere."""
    if ex.is_nan(y) or ex.is_nan(x):
        return ex.NAN
    return Z if ex.is_zero(x) else ex.mul(x, ex.log(y))


def xlogy_partials(x: ex.Exact, y: ex.Exact) -> tuple[ex.Exact, ex.Exact]:
    """derivatives.yaml: self: xlogy(grad, other).masked_fill((self == 0) & (other <= 0), 0), which is
    log(y) (0 where x = 0 and y <= 0); other: grad*self/other (NaN at x = y = 0)."""
    dx = Z if (ex.is_zero(x) and not ex.is_nan(y) and ex.sign(y) <= 0) else ex.log(y)
    return dx, ex.div(x, y)


def _xlogy_math(a: Args) -> ex.Exact:
    """The mathematics' x*log(y): defined for y > 0 only (0 at x = 0 there)."""
    x, y = a
    if ex.is_nan(y) or ex.sign(y) <= 0:
        return ex.NAN
    return xlogy_value(x, y)


def _scaled(u: ex.Exact, p: tuple[float, ...]) -> ex.Exact:
    return ex.mul(_f(p), u)


def softplus_beta_value(u: ex.Exact, p: tuple[float, ...]) -> ex.Exact:
    """torch's softplus kernel: x where beta*x > threshold, log1p(exp(beta*x))/beta elsewhere."""
    bu = _scaled(u, p)
    if not ex.is_nan(u) and ex.cmp(bu, _f(p, 1)) > 0:
        return u
    return ex.div(ops.softplus_math(bu), _f(p))


def softplus_beta_slope(u: ex.Exact, p: tuple[float, ...]) -> ex.Exact:
    """torch's softplus_backward: 1 where beta*x > threshold, else z/(z + 1) with z = exp(beta*x), which
    is exactly sigmoid(beta*x)."""
    bu = _scaled(u, p)
    if not ex.is_nan(u) and ex.cmp(bu, _f(p, 1)) > 0:
        return ONE
    return ops.sigmoid(bu)


def mish_value(u: ex.Exact) -> ex.Exact:
    """torch's mish kernel x*tanh(log1p(exp(x))), exactly the mathematics."""
    if ex.is_nan(u) or not ex.is_finite(u):
        return u if ex.sign(u) > 0 else ex.NAN  # as torch: inf, and -inf*tanh(0) = NaN
    return ex.mul(u, ops.tanh(ops.softplus_math(u)))


def mish_slope(u: ex.Exact) -> ex.Exact:
    """torch's mish_backward: t + x*sigmoid(x)*(1 - t*t), t = tanh(softplus(x)): the mathematics' derivative."""
    if ex.is_nan(u) or not ex.is_finite(u):
        return ex.NAN
    t = ops.tanh(ops.softplus_math(u))
    return ex.add(t, ex.mul(ex.mul(u, ops.sigmoid(u)), ex.sub(ONE, ex.mul(t, t))))


def _softplus_beta_math(a: Args, p: tuple[float, ...]) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
    bu = _scaled(a[0], p)
    return ex.div(ops.softplus_math(bu), _f(p)), (ops.sigmoid(bu),)


_NN = "torch.nn.functional."

ACTIVATION_OPS: Final[tuple[Op, ...]] = (
    _unary("gelu", f"{_NN}gelu({{0}})", gelu_value, gelu_slope),
    _unary("gelu_tanh", f"{_NN}gelu({{0}}, approximate='tanh')", gelu_tanh_value, gelu_tanh_slope),
    _unary("silu", f"{_NN}silu({{0}})", silu_value, silu_slope),
    # log_sigmoid_backward: grad*(max_deriv - sign*z/(1 + z)), z = exp(-|x|): sigmoid(-x) exactly.
    _unary("logsigmoid", f"{_NN}logsigmoid({{0}})", logsigmoid_value, lambda u: ops.sigmoid(ex.neg(u))),
    Op("elu", f"{_NN}elu({{0}}, alpha={{c[0]!r}})", lambda a, p: elu_value(a[0], _f(p)),
       lambda a, v, p: (elu_slope(a[0], _f(p)),),
       piece=lambda a, p: _smooth_piece(a[0], _f(p)),
       on_piece=lambda s, a, p: ((a[0], (ONE,)) if s == 1 else (ex.mul(_f(p), ops.expm1(a[0])), (ex.mul(_f(p), ops.exp(a[0])),))),
       nonsmooth="kink",
       convention="torch's elu has gradient alpha at 0 (its backward takes alpha*exp(x) where x <= 0).",
       alternatives="`F.elu` gives alpha at 0; `F.elu(x, alpha=1.0)` has no kink (slope 1 on both sides)"),
    Op("leaky_relu", f"{_NN}leaky_relu({{0}}, negative_slope={{c[0]!r}})", lambda a, p: _leaky_value(a[0], _f(p)),
       lambda a, v, p: (_leaky_slope(a[0], _f(p)),),
       piece=lambda a, p: _smooth_piece(a[0], _f(p)),
       on_piece=lambda s, a, p: (a[0], (ONE,)) if s == 1 else (ex.mul(_f(p), a[0]), (_f(p),)),
       nonsmooth="kink",
       convention="torch's leaky_relu has gradient negative_slope at 0 (only inputs > 0 pass the gradient whole).",
       alternatives="`F.leaky_relu` gives negative_slope at 0, `torch.where(x >= 0, x, s * x)` gives 1"),
    Op("hardtanh", f"{_NN}hardtanh({{0}}, {{c[0]!r}}, {{c[1]!r}})",
       lambda a, p: hardtanh_value(a[0], _f(p), _f(p, 1)),
       lambda a, v, p: (hardtanh_slope(a[0], _f(p), _f(p, 1)),),
       piece=lambda a, p: _hardtanh_piece(a[0], _f(p), _f(p, 1)),
       on_piece=lambda s, a, p: _hardtanh_on_piece(s, a[0], _f(p), _f(p, 1)),
       nonsmooth="kink",
       convention="torch's hardtanh (and relu6) has gradient 0 at min_val and at max_val (its backward blocks "
       "x <= min_val and x >= max_val), where torch.clamp has gradient 1.",
       alternatives="`F.hardtanh`/`F.relu6` give 0 at the corners, `torch.clamp(x, lo, hi)` gives 1"),
    Op("round_even", "torch.round({0})", lambda a, p: round_value(a[0]), lambda a, v, p: (Z,),
       piece=lambda a, p: _round_piece(a[0]),
       on_piece=lambda n, a, p: (ex.from_float(n), (Z,)),  # type: ignore[arg-type]
       nonsmooth="jump",
       convention="torch.round has gradient 0 everywhere; at a half-integer it rounds to the even integer."),
    Op("xlogy", "torch.xlogy({0}, {1})", lambda a, p: xlogy_value(a[0], a[1]), lambda a, v, p: xlogy_partials(a[0], a[1]),
       undefined=lambda a, p: any(not ex.is_nan(y) and ex.sign(y) <= 0 for y in ex.elements(a[1]))),
    _unary("mish", f"{_NN}mish({{0}})", mish_value, mish_slope),
    Op("softplus_beta", f"{_NN}softplus({{0}}, beta={{c[0]!r}}, threshold={{c[1]!r}})",
       lambda a, p: softplus_beta_value(a[0], p), lambda a, v, p: (softplus_beta_slope(a[0], p),),
       departs=lambda a, p: not ex.is_nan(a[0]) and ex.cmp(_scaled(a[0], p), _f(p, 1)) >= 0,
       math=_softplus_beta_math,
       shortcut="torch's softplus returns its argument itself where beta*x is above its `threshold`, dropping "
       "log1p(exp(-beta*x))/beta; there the slope torch differentiates is exactly 1, and from the threshold on "
       "its second derivative is 0, while the mathematics log(1 + exp(beta*x))/beta has slope sigmoid(beta*x)."),
)

OPS.update({op.name: op for op in ACTIVATION_OPS})


def exact_value(name: str) -> Callable[[Args], ex.Exact]:
    """The mathematics' exact value of a node `name(x, *params)` (the rule table's `exact`)."""
    if name == "xlogy":
        return _xlogy_math
    if name == "softplus_beta":  # the mathematics, not torch's switch at the threshold
        return lambda a: _softplus_beta_math(a[:1], tuple(ex.to_float(v) for v in a[1:]))[0]
    op = OPS[name]
    return lambda a: op.value(a[:1], tuple(ex.to_float(v) for v in a[1:]))


_KINK: Final = (Cause.KINK,)

# The rule table's words for each row (`rules.RULES` builds its rows from these).
RULE_TEXTS: Final[dict[str, dict[str, Any]]] = {
    "gelu": dict(when="always: torch's fused `torch.nn.functional.gelu(x)` (approximate='none'), x*Phi(x) "
                 "with Phi(x) = (1 + erf(x/sqrt(2)))/2; its backward is Phi(x) + x*exp(-x**2/2)/sqrt(2*pi)",
                 domain="all reals"),
    "gelu_tanh": dict(when="always: torch's fused `torch.nn.functional.gelu(x, approximate='tanh')`, "
                      "x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))/2 (the approximation is the mathematics here)",
                      domain="all reals"),
    "silu": dict(when="always: torch's fused `torch.nn.functional.silu(x)`, x/(1 + exp(-x)); its backward is "
                 "sigmoid(x)*(1 + x*(1 - sigmoid(x)))", domain="all reals"),
    "logsigmoid": dict(when="always: torch's fused `torch.nn.functional.logsigmoid(x)`, min(x, 0) - "
                       "log1p(exp(-|x|)), which never overflows; its backward is sigmoid(-x)", domain="all reals"),
    "elu": dict(when="elu(x, alpha): torch's fused `torch.nn.functional.elu(x, alpha)`, x for x > 0 and "
                "alpha*expm1(x) otherwise", domain="all reals",
                nonsmooth="kink at 0 unless alpha = 1 (one-sided slopes alpha and 1); torch's gradient there is alpha",
                hazard_causes=_KINK),
    "leaky_relu": dict(when="leaky_relu(x, s): torch's `torch.nn.functional.leaky_relu(x, negative_slope=s)`, x "
                       "for x > 0 and s*x otherwise", domain="all reals",
                       nonsmooth="kink at 0 unless s = 1 (one-sided slopes s and 1); torch's gradient there is s",
                       hazard_causes=_KINK),
    "round_even": dict(when="`torch.round(x)`: the nearest integer, a half-integer to the even one", domain="all reals",
                       nonsmooth="jumps at the half-integers; torch.round has gradient 0 everywhere",
                       hazard_causes=(Cause.JUMP,)),
    "xlogy": dict(when="`torch.xlogy(x, y)`: x*log(y), 0 where x = 0; its backward is log(y) in x (0 where x = 0 and "
                  "y <= 0) and x/y in y", domain="y > 0 (torch: 0 at x = 0 for every y but NaN)",
                  hazard_causes=(Cause.DOMAIN,)),
    "mish": dict(when="always: torch's fused `torch.nn.functional.mish(x)`, x*tanh(log1p(exp(x))); its backward "
                 "(mish_backward) is t + x*sigmoid(x)*(1 - t**2) with t = tanh(softplus(x))", domain="all reals"),
    "softplus_beta": dict(when="softplus_beta(x, beta, threshold): torch's fused `torch.nn.functional.softplus(x, "
                          "beta, threshold)`, log1p(exp(beta*x))/beta, x itself where beta*x > threshold; its "
                          "backward is sigmoid(beta*x), 1 above the threshold", domain="all reals",
                          hazard_causes=(Cause.CONTROL_FLOW,)),
    "hardtanh": dict(when="hardtanh(x, lo, hi): torch's `torch.nn.functional.hardtanh(x, lo, hi)` "
                     "(`F.relu6(x)` is hardtanh(x, 0, 6)), Min(Max(x, lo), hi)", domain="all reals",
                     nonsmooth="kinks at lo and at hi; torch's gradient is 0 at both (torch.clamp's is 1)",
                     hazard_causes=_KINK),
}
