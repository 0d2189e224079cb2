"""The shared case catalogue: small named functions, each with points chosen on purpose.

Every case is a SymPy expression written with plain (complex-by-default) symbols, as a user
writes it, plus a hand-written torch function that computes the same thing the way a student
would write it in PyTorch. The torch function is the independent oracle for the executed side
(`tests/verdict/test_compare.py`): it never goes through symgrad.

Each point says why it was chosen (`Point.why`):

| why            | the point is ...                                                        |
|----------------|-------------------------------------------------------------------------|
| `inside`       | an ordinary point inside the domain, away from every kink and jump      |
| `beside-kink`  | just off a kink, tie or threshold (the derivative exists there)         |
| `on-kink`      | exactly on a kink, a tie or a branch threshold                          |
| `on-jump`      | exactly on a jump                                                       |
| `edge`         | on the boundary of the domain (sqrt at 0, asin at 1, log at 0)          |
| `beside-edge`  | just inside the domain, next to its boundary or a pole                  |
| `outside`      | outside the real domain (log of a negative number, a pole)              |
| `nan-trap`     | inside the function's domain, but a `torch.where` branch is outside its |
| `overflow`     | an intermediate value overflows the dtype                               |
| `cancellation` | the dtype's rounding is amplified by cancellation                       |

`ORDINARY` points (inside, beside-kink, beside-edge) are where the derivative exists and every
side is expected to agree; `tests/verdict/test_compare.py` sweeps them.

Case names are file names: `tests/golden/lowering/<name>.py` is each case's generated program.
Every row of `symgrad.program.rules.RULES` is covered by at least one case (`test_every_rule_has_a_case`
in `tests/sides/test_lowering.py` fails otherwise, and names this file).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import sympy as sp
import torch

import symgrad as sg
from symgrad import detach, item, no_grad
from symgrad.program.custom import CustomSpec, Returned, fused_class, program_name
from symgrad.program import activations as act
from symgrad.program.losses import binary_cross_entropy, mse_loss, nll_loss
from symgrad.program.losses import binary_cross_entropy_with_logits, huber_loss, smooth_l1_loss, weighted_nll_loss
from symgrad.program.losses import smoothed_cross_entropy, weighted_binary_cross_entropy
from symgrad.program.normalization import batch_norm, normalize
from symgrad.program.distances import cdist
from symgrad.program.cosine import cos_sim
from symgrad.program.layer_norm import layer_norm
from symgrad.program.orders import order_at
from symgrad.program.cumulative import cumprod
from symgrad.program.gated import glu
from symgrad.program.products import einsum_dot, einsum_trace, einsum_vdot, prod, prod_along, vm_mean, vm_mean_along
from symgrad.program.rules import exact_eval
from symgrad.program.primitives import to_float32, to_float64, vector_norm
from symgrad.program.reductions import amax, amin, logsumexp_along, max_at, min_at, std, std_along, var, var_along
from sympy.codegen.cfunctions import expm1 as _expm1, log1p as _log1p

Why = Literal[
    "inside", "beside-kink", "on-kink", "on-jump", "edge", "beside-edge", "outside", "nan-trap",
    "overflow", "cancellation",
]
WHYS: tuple[str, ...] = Why.__args__  # type: ignore[attr-defined]
ORDINARY: frozenset[str] = frozenset({"inside", "beside-kink", "beside-edge"})


@dataclass(frozen=True)
class Point:
    """A point of a case: input name -> float, and why it was chosen."""

    why: Why
    values: tuple[tuple[str, float], ...]

    @property
    def at(self) -> dict[str, float]:
        return dict(self.values)

    @property
    def id(self) -> str:
        inner = ",".join(f"{k}={v!r}" for k, v in self.values)
        return f"{self.why}[{inner}]"


class ExpFn(torch.autograd.Function):
    """A hand-written exp: backward multiplies by the saved output."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad_output * y


def _custom_exp(u: sp.Basic) -> sp.Basic:
    """`ExpFn.apply(u)` as symgrad reads it from the class's source: the fused call of its forward's
    value exp(u), its input u and its saved value exp(u), with backward grad_output * saved."""
    g, saved = sp.Symbol("grad_output", real=True), sp.Symbol("ctx_saved_0", real=True)
    back = Returned(0, g * saved, "cases.py", "grad_output * y", "the gradient `ExpFn.backward` returns")
    spec = CustomSpec(program_name(ExpFn), ExpFn, 1, g, (saved,), (back,), "cases.py", False, exact_eval)
    return fused_class(spec)(sp.exp(u), u, sp.exp(u))


def pt(why: Why, **values: float) -> Point:
    assert why in WHYS, why
    return Point(why, tuple(values.items()))


@dataclass(frozen=True)
class Case:
    """One catalogue entry: a SymPy expression, its points, and how to lower it."""

    name: str
    expr: sp.Basic
    points: tuple[Point, ...]
    torch_fn: Callable[..., torch.Tensor] = field(compare=False)
    branches: Literal["if", "where"] = "if"
    dtype: Literal["float64", "float32"] = "float64"
    note: str = ""

    def __post_init__(self) -> None:
        assert re.fullmatch(r"[a-z0-9_]+", self.name), f"case name {self.name!r} is not a file name"
        names = {s.name for s in self.expr.free_symbols}
        for p in self.points:
            assert set(p.at) == names, f"{self.name}: point {p.id} does not give exactly {sorted(names)}"

    @property
    def symbols(self) -> list[sp.Symbol]:
        """The inputs, sorted by name (symgrad's order for a bare expression)."""
        return sorted(self.expr.free_symbols, key=lambda s: s.name)


x, y, z = sp.symbols("x y z")
HALF_PI = math.pi / 2  # the float64 nearest pi/2: tan is huge there but finite


# Hand-written torch versions of the functions below (the oracle for the executed side).


def _pw_relu_if(x: torch.Tensor) -> torch.Tensor:
    if x > 0:
        return x
    return x * 0


def _pw_three_if(x: torch.Tensor) -> torch.Tensor:
    if x < -1:
        return x**2
    if x < 1:
        return torch.sin(x)
    return 2 * x


def _pw_bump_if(x: torch.Tensor) -> torch.Tensor:
    if x > -1 and x < 1:
        return 1 - x**2
    return x * 0


def _pw_smooth_if(x: torch.Tensor) -> torch.Tensor:
    return x**2 if x < 1 else 2 * x - 1


def _pw_sqrt_if(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x) if x > 0 else x * 0


def _pw_partial_if(x: torch.Tensor) -> torch.Tensor:
    return x if x > 0 else x * 0 + math.nan


def _pw_item_if(x: torch.Tensor) -> torch.Tensor:
    return x if x > 0 else torch.tensor(0.0, dtype=x.dtype)


def _no_grad_square(x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        x2 = x**2
    return x + x2


def _no_grad_symbol(x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        c = x.clone()
    return x * c


def _item(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(x.item(), dtype=x.dtype)


def _where(c: torch.Tensor, a: Any, b: Any) -> torch.Tensor:
    return torch.where(c, a, b)


CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ Add, Mul, Integer
    Case("square", x**2, (pt("inside", x=3.0), pt("inside", x=-0.5)), lambda x: x**2,
         note="the acceptance row: x**2 at 3 agrees"),
    Case("add_sub_const", x - 2 * y + 3, (pt("inside", x=1.5, y=-0.25),),
         lambda x, y: x - 2 * y + 3),
    Case("mul_three", 3 * x * y, (pt("inside", x=0.5, y=-2.0),), lambda x, y: 3 * x * y),
    Case("shared_sin", sp.sin(x) ** 2 + sp.sin(x), (pt("inside", x=0.3),),
         lambda x: torch.sin(x) ** 2 + torch.sin(x), note="a shared subexpression is computed once"),
    Case("div_xy", x / y, (pt("inside", x=1.0, y=3.0), pt("outside", x=1.0, y=0.0)),
         lambda x, y: x / y),
    # ------------------------------------------------------------------ Pow
    Case("pow_cube", x**3, (pt("inside", x=-1.5), pt("inside", x=2.0)), lambda x: x**3),
    Case("pow_neg_two", x**-2, (pt("inside", x=0.5), pt("outside", x=0.0)), lambda x: x**-2),
    Case("reciprocal", 1 / x, (pt("inside", x=4.0), pt("beside-edge", x=2.0**-20)), lambda x: 1 / x),
    Case("pow_three_halves", x ** sp.Rational(3, 2), (pt("inside", x=2.0), pt("edge", x=0.0)),
         lambda x: x**1.5),
    Case("cube_root", x ** sp.Rational(1, 3), (pt("inside", x=8.0), pt("edge", x=0.0)),
         lambda x: x ** (1 / 3)),
    Case("sqrt", sp.sqrt(x), (pt("inside", x=4.0), pt("beside-edge", x=2.0**-40), pt("edge", x=0.0),
                              pt("outside", x=-1.0)), lambda x: torch.sqrt(x)),
    Case("rsqrt", 1 / sp.sqrt(x), (pt("inside", x=4.0),), lambda x: 1 / torch.sqrt(x)),
    Case("pow_x_x", x**x, (pt("inside", x=0.5), pt("inside", x=2.0)), lambda x: x**x),
    Case("pow_x_y", x**y, (pt("inside", x=2.0, y=3.0), pt("edge", x=0.0, y=2.0)), lambda x, y: x**y),
    # ------------------------------------------------------------------ exp, log
    Case("exp", sp.exp(x), (pt("inside", x=0.0), pt("inside", x=1.5), pt("overflow", x=710.0)),
         lambda x: torch.exp(x)),
    Case("log", sp.log(x), (pt("inside", x=1.0), pt("inside", x=0.5), pt("edge", x=0.0),
                            pt("outside", x=-1.0)), lambda x: torch.log(x),
         note="the acceptance row: log(x) at -1 is outside the domain"),
    Case("logsumexp", sp.log(sp.exp(x) + sp.exp(y)), (pt("inside", x=1.0, y=2.0),
                                                      pt("overflow", x=1000.0, y=0.0)),
         lambda x, y: torch.log(torch.exp(x) + torch.exp(y)),
         note="the acceptance row: exp(1000) overflows; torch.logsumexp is the fix"),
    # ------------------------------------------------------------------ trigonometry
    Case("sin", sp.sin(x), (pt("inside", x=0.0), pt("inside", x=1.0)), lambda x: torch.sin(x)),
    Case("cos", sp.cos(x), (pt("inside", x=0.0), pt("inside", x=2.0)), lambda x: torch.cos(x)),
    Case("tan", sp.tan(x), (pt("inside", x=0.5), pt("beside-edge", x=HALF_PI)), lambda x: torch.tan(x)),
    Case("asin", sp.asin(x), (pt("inside", x=0.5), pt("edge", x=1.0), pt("outside", x=2.0)),
         lambda x: torch.asin(x)),
    Case("acos", sp.acos(x), (pt("inside", x=-0.5), pt("edge", x=-1.0)), lambda x: torch.acos(x)),
    Case("atan", sp.atan(x), (pt("inside", x=1.0), pt("inside", x=-3.0)), lambda x: torch.atan(x)),
    Case("atan2", sp.atan2(y, x), (pt("inside", x=1.0, y=1.0), pt("inside", x=-2.0, y=0.5),
                                   pt("on-jump", x=-1.0, y=0.0), pt("outside", x=0.0, y=0.0)),
         lambda x, y: torch.atan2(y, x),
         note="atan2 jumps from pi to -pi across the negative x axis; undefined at the origin"),
    Case("sinh", sp.sinh(x), (pt("inside", x=0.5),), lambda x: torch.sinh(x)),
    Case("cosh", sp.cosh(x), (pt("inside", x=-0.5), pt("overflow", x=720.0)), lambda x: torch.cosh(x)),
    Case("tanh", sp.tanh(x), (pt("inside", x=0.0), pt("inside", x=0.75)), lambda x: torch.tanh(x)),
    Case("erf", sp.erf(x), (pt("inside", x=0.0), pt("inside", x=0.5)), lambda x: torch.erf(x)),
    Case("expm1", _expm1(x), (pt("inside", x=1e-10), pt("inside", x=-0.5)), lambda x: torch.expm1(x),
         note="torch's fused expm1: exact near 0, where exp(x) - 1 cancels"),
    Case("log1p", _log1p(x), (pt("inside", x=1e-10), pt("inside", x=2.0)), lambda x: torch.log1p(x)),
    Case("sigmoid", sg.sigmoid(x), (pt("inside", x=0.0), pt("inside", x=-800.0)), lambda x: torch.sigmoid(x),
         note="torch's fused sigmoid never overflows"),
    Case("fused_logsumexp", sg.logsumexp(x, y), (pt("inside", x=1000.0, y=0.0), pt("inside", x=0.5, y=0.5)),
         lambda x, y: torch.logsumexp(torch.stack([x, y]), 0),
         note="torch's fused logsumexp: (1, 0) at (1000, 0), where log(exp(x) + exp(y)) overflows"),
    Case("fused_logaddexp", sg.logaddexp(x, y), (pt("inside", x=1000.0, y=0.0), pt("inside", x=0.5, y=-0.25)),
         lambda x, y: torch.logaddexp(x, y), note="torch's own logaddexp kernel, the mathematics of logsumexp"),
    Case("softplus", sg.softplus(x), (pt("inside", x=1.0), pt("inside", x=-800.0), pt("inside", x=1000.0)),
         lambda x: torch.nn.functional.softplus(x),
         note="torch's fused softplus: at 1000 its slope is 1 (x itself above 20), where log(1 + exp(x)) overflows"),
    # torch's fused activations (issue 22, program/activations.py)
    Case("softplus_beta", act.softplus_beta(x, sp.Float(2.0, 53), sp.Float(3.0, 53)),
         (pt("inside", x=0.5), pt("inside", x=1.5), pt("inside", x=400.0)),
         lambda x: torch.nn.functional.softplus(x, beta=2.0, threshold=3.0),
         note="F.softplus(x, beta=2, threshold=3): at beta*x = 3 torch's slope is sigmoid(3), above it 1 (x itself)"),
    Case("mish", act.mish(x), (pt("inside", x=0.5), pt("inside", x=-3.0), pt("inside", x=30.0)),
         lambda x: torch.nn.functional.mish(x), note="torch's fused mish, x*tanh(softplus(x))"),
    Case("gelu", act.gelu(x), (pt("inside", x=0.5), pt("inside", x=-3.0)), lambda x: torch.nn.functional.gelu(x)),
    Case("gelu_tanh", act.gelu_tanh(x), (pt("inside", x=0.5), pt("inside", x=-3.0)),
         lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    Case("silu", act.silu(x), (pt("inside", x=0.5), pt("inside", x=-30.0)), lambda x: torch.nn.functional.silu(x)),
    Case("logsigmoid", act.logsigmoid(x), (pt("inside", x=0.5), pt("inside", x=-800.0)),
         lambda x: torch.nn.functional.logsigmoid(x), note="never overflows: -800 is -800 - log1p(exp(-800))"),
    Case("elu", act.elu(x, sp.Float(0.5, 53)), (pt("on-kink", x=0.0), pt("beside-kink", x=-(2.0**-30)),
                                                pt("inside", x=-1.0)),
         lambda x: torch.nn.functional.elu(x, alpha=0.5), note="torch's gradient at 0 is alpha"),
    Case("leaky_relu", act.leaky_relu(x, sp.Float(0.2, 53)), (pt("on-kink", x=0.0), pt("inside", x=-1.0)),
         lambda x: torch.nn.functional.leaky_relu(x, 0.2), note="torch's gradient at 0 is negative_slope"),
    Case("hardtanh", act.hardtanh(x, sp.Float(-1.0, 53), sp.Float(1.0, 53)),
         (pt("on-kink", x=1.0), pt("on-kink", x=-1.0), pt("inside", x=0.5)),
         lambda x: torch.nn.functional.hardtanh(x), note="torch's gradient at both corners is 0 (clamp's is 1)"),
    Case("round_even", act.round_even(x), (pt("on-jump", x=2.5), pt("inside", x=2.25)), lambda x: torch.round(x)),
    Case("xlogy", act.xlogy(x, y), (pt("inside", x=0.5, y=2.0), pt("inside", x=0.0, y=2.0)),
         lambda x, y: torch.xlogy(x, y), note="torch's 0 at x = 0, the limit for y > 0"),
    Case("fused_softmax", sg.softmax(1, x, y, z), (pt("inside", x=1000.0, y=0.0, z=-1000.0),
                                                   pt("inside", x=0.5, y=1.0, z=-0.25)),
         lambda x, y, z: torch.softmax(torch.stack([x, y, z]), 0)[1],
         note="component 1 of torch's softmax of (x, y, z): never overflows"),
    Case("fused_log_softmax", sg.log_softmax(1, x, y), (pt("inside", x=1000.0, y=0.0), pt("inside", x=0.25, y=0.5)),
         lambda x, y: torch.log_softmax(torch.stack([x, y]), 0)[1],
         note="y - log(exp(x) + exp(y)) without overflow: gradient (-1, 1) at (1000, 0)"),
    Case("fused_vector_norm", vector_norm(x, y), (pt("on-kink", x=0.0, y=0.0), pt("inside", x=3.0, y=-4.0),
                                                   pt("beside-kink", x=2.0**-20, y=0.0)),
         lambda x, y: torch.linalg.vector_norm(torch.stack([x, y]), dim=0),
         note="torch's 2-norm: (0.6, -0.8) at (3, -4), where sqrt(x**2 + y**2) gives 0.6000000000000001; "
         "gradient 0 at the origin, a cone (one-sided slopes -1 and 1)"),
    Case("custom_function_exp", _custom_exp(x), (pt("inside", x=0.5), pt("inside", x=-2.0)), lambda x: ExpFn.apply(x),
         note="the user's torch.autograd.Function ExpFn (forward exp(x), backward grad_output * the saved output), "
         "as symgrad reads `ExpFn.apply(x)`: its value exp(x), its backward the user's"),
    Case("fused_mse_loss", mse_loss(1, x, y, z, sp.Integer(0)), (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.nn.functional.mse_loss(torch.stack([x, y]), torch.stack([z, torch.zeros_like(z)])),
         note="torch's mse_loss of (x, y) against (z, 0), reduction='mean': backward (2/n)*(a - t)*grad"),
    # torch's reductions (program/reductions.py): a tie split evenly, or all to the first index; std's cone
    Case("fused_amax", amax(x, y, z), (pt("on-kink", x=2.0, y=2.0, z=1.0), pt("inside", x=0.5, y=2.0, z=-1.0)),
         lambda x, y, z: torch.amax(torch.stack([x, y, z]), 0),
         note="torch.amax (x.max()) splits a tie evenly: 1/2 each at (2, 2, 1); Max has no derivative there"),
    Case("fused_amin", amin(x, y), (pt("on-kink", x=1.0, y=1.0), pt("inside", x=0.5, y=2.0)),
         lambda x, y: torch.amin(torch.stack([x, y]), 0), note="torch.amin splits a tie evenly"),
    Case("fused_max_at", max_at(x, y, z), (pt("on-kink", x=2.0, y=2.0, z=1.0), pt("inside", x=0.5, y=2.0, z=-1.0)),
         lambda x, y, z: torch.max(torch.stack([x, y, z]), 0).values,
         note="the values of x.max(dim): the whole gradient to the index torch returns (the first of a tie)"),
    Case("fused_min_at", min_at(x, y), (pt("on-kink", x=1.0, y=1.0), pt("inside", x=0.5, y=2.0)),
         lambda x, y: torch.min(torch.stack([x, y]), 0).values, note="x.min(dim).values: the first of a tie"),
    Case("fused_var", var(1, x, y, z), (pt("inside", x=0.5, y=2.0, z=-1.0),),
         lambda x, y, z: torch.var(torch.stack([x, y, z])), note="torch.var, unbiased: 2/(n - 1)*(a - mean)"),
    Case("fused_std", std(1, x, y, z), (pt("on-kink", x=1.5, y=1.5, z=1.5), pt("inside", x=0.5, y=2.0, z=-1.0)),
         lambda x, y, z: torch.std(torch.stack([x, y, z])),
         note="torch.std: gradient 0 where every element is equal, a cone of the mathematics"),
    Case("fused_var_along", var_along(0, 2, 2, 0, 1, x, y, z, sp.Integer(1)), (pt("inside", x=0.5, y=2.0, z=-1.0),),
         lambda x, y, z: torch.var(torch.stack([x, y, z, torch.ones_like(z)]).unflatten(0, (2, 2)), 0, correction=0)[1],
         note="column 1 of X.var(dim=0, correction=0), read on the whole matrix"),
    Case("fused_std_along", std_along(1, 2, 2, 1, 0, x, y, z, sp.Integer(1)),
         (pt("on-kink", x=0.5, y=0.5, z=-1.0), pt("inside", x=0.5, y=2.0, z=-1.0)),
         lambda x, y, z: torch.std(torch.stack([x, y, z, torch.ones_like(z)]).unflatten(0, (2, 2)), 1)[0],
         note="row 0 of X.std(dim=1), read on the whole matrix: a cone where the row's elements are equal"),
    Case("fused_logsumexp_along", logsumexp_along(2, 2, 1, 1, x, y, z, sp.Integer(1)), (pt("inside", x=0.5, y=2.0, z=-1.0),),
         lambda x, y, z: torch.logsumexp(torch.stack([x, y, z, torch.ones_like(z)]).unflatten(0, (2, 2)), 1)[1],
         note="row 1 of torch.logsumexp(X, dim=1), read on the whole matrix"),
    Case("fused_nll_loss", nll_loss(0, x, y), (pt("inside", x=-0.5, y=-2.25),),
         lambda x, y: torch.nn.functional.nll_loss(torch.stack([x, y]).reshape(2, 1), torch.zeros(2, dtype=torch.long),
                                                   reduction="sum"),
         note="torch's nll_loss of the picked log-probabilities, reduction='sum': -(x + y)"),
    Case("fused_binary_cross_entropy", binary_cross_entropy(1, x, y, sp.Rational(1, 2), sp.Integer(1)),
         (pt("inside", x=0.25, y=0.75),),
         lambda x, y: torch.nn.functional.binary_cross_entropy(torch.stack([x, y]), torch.stack(
             [torch.full_like(x, 0.5), torch.ones_like(y)])),
         note="torch's binary_cross_entropy of (x, y) against (1/2, 1) (its clamps near 0 and 1: "
         "tests/frontends/test_losses.py)"),
    Case("fused_weighted_binary_cross_entropy",
         weighted_binary_cross_entropy(0, x, y, sp.Rational(1, 2), sp.Integer(1), sp.Rational(3, 2), sp.Rational(1, 4)),
         (pt("inside", x=0.25, y=0.75),),
         lambda x, y: torch.nn.functional.binary_cross_entropy(torch.stack([x, y]), torch.stack(
             [torch.full_like(x, 0.5), torch.ones_like(y)]), weight=torch.stack(
             [torch.full_like(x, 1.5), torch.full_like(y, 0.25)]), reduction="sum"),
         note="torch's binary_cross_entropy of (x, y) against (1/2, 1) with weight=(3/2, 1/4), reduction='sum' "
         "(tests/frontends/test_losses2.py)"),
    Case("fused_smoothed_cross_entropy",
         smoothed_cross_entropy(1, sp.Rational(1, 4), -100, 3, -1, 1, sp.Integer(1), sp.Integer(1), sp.Integer(1),
                                x, y, z),
         (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.nn.functional.cross_entropy(torch.stack([x, y, z]).reshape(1, 3), torch.tensor([1]),
                                                           label_smoothing=0.25),
         note="torch's cross_entropy of the logits (x, y, z) against the label 1, label_smoothing=1/4: "
         "(3/4)*(-L[1]) + (1/12)*(-(L[0] + L[1] + L[2])) with L = log_softmax (tests/frontends/test_losses2.py)"),
    Case("fused_batch_norm", batch_norm(1, 0, 3, 1, 1, sp.Rational(1, 2**16), 0, x, y, z),
         (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.nn.functional.batch_norm(torch.stack([x, y, z]).reshape(3, 1),
                                                        None, None, None, None, True, 0.0, 2.0**-16)[1, 0],
         note="element (1, 0) of torch's batch norm (training, no affine) of the column (x, y, z): "
         "(y - mean)/sqrt(var + eps), the biased variance (tests/frontends/test_modules2.py)"),
    Case("fused_normalize", normalize(0, 1, 1, 3, 1, sp.Rational(1, 2**20), x, y, z),
         (pt("inside", x=0.5, y=-1.25, z=2.0), pt("inside", x=0.0, y=2.0**-22, z=0.0)),
         lambda x, y, z: torch.nn.functional.normalize(torch.stack([x, y, z]).reshape(1, 3), 2.0, 1, 2.0**-20)[0, 1],
         note="y / max(sqrt(x**2 + y**2 + z**2), eps) of F.normalize (dim 1): the second point's norm is below eps, "
         "where it is y/eps (tests/frontends/test_normalize.py)"),
    Case("fused_cdist", cdist(0, 1, 1, 2, 1, x, y, z),
         (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.cdist(torch.stack([x]).reshape(1, 1), torch.stack([y, z]).reshape(2, 1))[0, 1],
         note="torch.cdist of the point x to z on a line: sqrt((x - z)**2), a cone at x = z "
         "(tests/frontends/test_cdist.py)"),
    # torch code read since session 11 (tests/frontends/test_more_ops.py, test_layer_norm.py): one case per rule row
    Case("fused_prod", prod(x, y, z), (pt("inside", x=0.5, y=-1.25, z=2.0), pt("inside", x=0.0, y=-1.25, z=2.0)),
         lambda x, y, z: torch.prod(torch.stack([x, y, z])),
         note="torch.prod: its backward is the product of the others, also at a zero element (smooth)"),
    Case("fused_prod_along", prod_along(2, 2, 1, 0, x, y, z, sp.Integer(1)), (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.stack([x, y, z, torch.ones_like(z)]).reshape(2, 2).prod(1)[0],
         note="row 0 of X.prod(dim=1), read on the whole matrix: x*y"),
    Case("fused_vm_mean", vm_mean(x, y, z), (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.var_mean(torch.stack([x, y, z]))[1],
         note="the mean torch.var_mean returns (Welford's: another rounding than x.mean())"),
    Case("fused_vm_mean_along", vm_mean_along(2, 2, 1, 1, x, y, z, sp.Integer(1)), (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.var_mean(torch.stack([x, y, z, torch.ones_like(z)]).reshape(2, 2), dim=1)[1][1],
         note="row 1's mean of torch.var_mean(X, dim=1): (z + 1)/2"),
    Case("fused_einsum_trace", einsum_trace(2, 2, x, y, z, sp.Integer(1)), (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.einsum("ii->", torch.stack([x, y, z, torch.ones_like(z)]).reshape(2, 2)),
         note="torch.einsum('ii->', A), its own kernel: x + 1"),
    Case("fused_einsum_dot", einsum_dot(1, 2, x, y, z, sp.Integer(1)), (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.einsum("ij,ij->", torch.stack([x, y]).reshape(1, 2),
                                      torch.stack([z, torch.ones_like(z)]).reshape(1, 2)),
         note="torch.einsum('ij,ij->', A, B) of (x, y) and (z, 1): x*z + y"),
    Case("fused_einsum_vdot", einsum_vdot(2, 1, x, y, z, sp.Integer(1)), (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.einsum("i,i->", torch.stack([x, y]), torch.stack([z, torch.ones_like(z)])),
         note="torch.einsum('i,i->', a, b) of (x, y) and (z, 1): x*z + y"),
    Case("fused_layer_norm", layer_norm(0, 0, 3, 1, sp.Rational(1, 2**16), 0, 0, 1, x, y, z),
         (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.nn.functional.layer_norm(torch.stack([x, y, z]), (3,), eps=2.0**-16)[0],
         note="element 0 of F.layer_norm of (x, y, z): (x - mean)/sqrt(var + eps), the biased variance"),
    Case("fused_cos_sim", cos_sim(2, 1, 0, 0, sp.Rational(1, 2**27), x, y, z, sp.Integer(1)),
         (pt("inside", x=0.5, y=-1.25, z=2.0),),
         lambda x, y, z: torch.nn.functional.cosine_similarity(torch.stack([x, y]), torch.stack([z, torch.ones_like(z)]),
                                                               dim=0, eps=2.0**-27),
         note="F.cosine_similarity of (x, y) and (z, 1) (tests/frontends/test_more_ops.py for a norm below eps)"),
    Case("fused_order_at", order_at(0, 0, 0, x, y, z), (pt("inside", x=0.5, y=-1.25, z=2.0),
                                                        pt("on-kink", x=0.5, y=0.5, z=2.0)),
         lambda x, y, z: torch.sort(torch.stack([x, y, z])).values[0],
         note="torch.sort(x).values[0]: the smallest, a tie a kink (the gradient to the index torch returns)"),
    Case("fused_glu", glu(0, 0, 1, 1, 0, x, y), (pt("inside", x=0.5, y=-1.25), pt("inside", x=-2.0, y=3.0)),
         lambda x, y: torch.nn.functional.glu(torch.stack([x, y]), 0)[0],
         note="F.glu of (x, y): x*sigmoid(y), torch's fused kernel and its glu_backward"),
    Case("fused_cumprod", cumprod(2, 0, 3, 1, 0, x, y, z), (pt("inside", x=0.5, y=-1.25, z=2.0),
                                                           pt("inside", x=0.5, y=0.0, z=2.0)),
         lambda x, y, z: torch.cumprod(torch.stack([x, y, z]), 0)[2],
         note="element 2 of torch.cumprod of (x, y, z): x*y*z, a zero y included (torch's cumprod_backward)"),
    Case("fused_smooth_l1_loss", smooth_l1_loss(1, sp.Rational(1, 2), x, y, z, sp.Integer(0)),
         (pt("inside", x=0.5, y=-1.25, z=0.0), pt("inside", x=0.25, y=0.125, z=0.0)),
         lambda x, y, z: torch.nn.functional.smooth_l1_loss(torch.stack([x, y]), torch.stack([z, torch.zeros_like(z)]),
                                                            beta=0.5),
         note="torch's smooth_l1_loss of (x, y) against (z, 0), beta=1/2: smooth at |x - z| = 1/2 (the first point)"),
    Case("fused_huber_loss", huber_loss(0, sp.Rational(3, 4), x, y, z, sp.Integer(0)),
         (pt("inside", x=1.0, y=0.25, z=0.25),),
         lambda x, y, z: torch.nn.functional.huber_loss(torch.stack([x, y]), torch.stack([z, torch.zeros_like(z)]),
                                                        reduction="sum", delta=0.75),
         note="torch's huber_loss, delta=3/4, reduction='sum': |x - z| = delta, where d and delta*sign(d) meet"),
    Case("fused_binary_cross_entropy_with_logits",
         binary_cross_entropy_with_logits(1, 1, 1, x, y, sp.Rational(1, 4), sp.Integer(1), sp.Rational(1, 2),
                                          sp.Rational(3, 2), sp.Integer(2), sp.Rational(1, 2)),
         (pt("inside", x=0.5, y=-3.0),),
         lambda x, y: torch.nn.functional.binary_cross_entropy_with_logits(
             torch.stack([x, y]), torch.stack([torch.full_like(x, 0.25), torch.ones_like(y)]),
             weight=torch.stack([torch.full_like(x, 0.5), torch.full_like(x, 1.5)]),
             pos_weight=torch.stack([torch.full_like(x, 2.0), torch.full_like(x, 0.5)])),
         note="torch's stable BCE with logits of (x, y) against (1/4, 1), weights (1/2, 3/2), pos_weight (2, 1/2)"),
    Case("fused_weighted_nll_loss",
         weighted_nll_loss(1, 1, 3, 0, 1, 2, sp.Rational(1, 2), sp.Integer(2), sp.Rational(5, 4), x, sp.Integer(0), y),
         (pt("inside", x=-0.5, y=-2.25),),
         lambda x, y: torch.nn.functional.nll_loss(
             torch.stack([x, torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x),
                          torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x), y]).reshape(3, 3),
             torch.tensor([0, 1, 2]), weight=torch.stack([torch.full_like(x, 0.5), torch.full_like(x, 2.0),
                                                          torch.full_like(x, 1.25)]), ignore_index=1),
         note="torch's nll_loss with class weights (1/2, 2, 5/4) and ignore_index=1 (row 1): -(x/2 + 5*y/4)/(7/4)"),
    # ------------------------------------------------------------------ kinks and jumps
    Case("abs", sp.Abs(x), (pt("on-kink", x=0.0), pt("beside-kink", x=-(2.0**-20)), pt("inside", x=3.0)),
         lambda x: torch.abs(x), note="the acceptance row: Abs(x) at 0, one-sided (-1, 1)"),
    Case("sqrt_of_square", sp.sqrt(x**2), (pt("on-kink", x=0.0), pt("inside", x=-2.0)),
         lambda x: torch.abs(x), note="SymPy rewrites sqrt(x**2) to Abs(x) for real x"),
    Case("sign", sp.sign(x), (pt("on-jump", x=0.0), pt("inside", x=-2.0)), lambda x: torch.sign(x)),
    Case("relu", sp.Max(x, 0), (pt("on-kink", x=0.0), pt("beside-kink", x=2.0**-30), pt("inside", x=-1.0)),
         lambda x: torch.relu(x), note="the acceptance row: Max(x, 0) at 0 is torch.relu"),
    Case("max_clamp", sp.Max(x, 1), (pt("on-kink", x=1.0), pt("inside", x=2.0)),
         lambda x: torch.clamp(x, min=1)),
    Case("max_pair", sp.Max(x, y), (pt("on-kink", x=1.0, y=1.0), pt("inside", x=2.0, y=-1.0)),
         lambda x, y: torch.maximum(x, y)),
    Case("max_three", sp.Max(x, y, z), (pt("on-kink", x=2.0, y=2.0, z=2.0),
                                        pt("inside", x=1.0, y=3.0, z=2.0)),
         lambda x, y, z: torch.maximum(torch.maximum(x, y), z)),
    Case("max_three_zero", sp.Max(x, y, 0), (pt("on-kink", x=-1.0, y=0.0), pt("inside", x=1.0, y=-2.0)),
         lambda x, y: torch.relu(torch.maximum(x, y))),
    Case("max_three_const", sp.Max(x, y, 2), (pt("on-kink", x=2.0, y=1.0), pt("inside", x=3.0, y=1.0)),
         lambda x, y: torch.clamp(torch.maximum(x, y), min=2)),
    Case("min_clamp", sp.Min(x, 1), (pt("on-kink", x=1.0), pt("inside", x=0.0)),
         lambda x: torch.clamp(x, max=1)),
    Case("min_pair", sp.Min(x, y), (pt("on-kink", x=-1.0, y=-1.0), pt("inside", x=2.0, y=-1.0)),
         lambda x, y: torch.minimum(x, y)),
    Case("min_three", sp.Min(x, y, z), (pt("on-kink", x=0.5, y=0.5, z=0.5),
                                        pt("inside", x=1.0, y=3.0, z=2.0)),
         lambda x, y, z: torch.minimum(torch.minimum(x, y), z)),
    Case("min_three_const", sp.Min(x, y, -1), (pt("on-kink", x=-1.0, y=0.0), pt("inside", x=-3.0, y=2.0)),
         lambda x, y: torch.clamp(torch.minimum(x, y), max=-1)),
    Case("heaviside", sp.Heaviside(x), (pt("on-jump", x=0.0), pt("inside", x=2.0)),
         lambda x: (torch.sign(x) + 1) / 2),
    Case("floor", sp.floor(x), (pt("on-jump", x=1.0), pt("inside", x=1.5)), lambda x: torch.floor(x),
         note="the acceptance row: floor(x) at 1 jumps"),
    Case("ceiling", sp.ceiling(x), (pt("on-jump", x=-1.0), pt("inside", x=-0.5)), lambda x: torch.ceil(x)),
    # ------------------------------------------------------------------ Piecewise, both modes
    Case("pw_relu_if", sp.Piecewise((x, x > 0), (0, True)),
         (pt("on-kink", x=0.0), pt("inside", x=2.0), pt("inside", x=-2.0)), _pw_relu_if,
         note="the acceptance row: control flow on the threshold"),
    Case("pw_relu_where", sp.Piecewise((x, x > 0), (0, True)),
         (pt("on-kink", x=0.0), pt("inside", x=2.0), pt("inside", x=-2.0)),
         lambda x: _where(x > 0, x, 0.0), branches="where",
         note="the acceptance row: a kink of torch.where"),
    Case("pw_three_if", sp.Piecewise((x**2, x < -1), (sp.sin(x), x < 1), (2 * x, True)),
         (pt("inside", x=-2.0), pt("inside", x=0.5), pt("inside", x=3.0), pt("on-jump", x=1.0)),
         _pw_three_if),
    Case("pw_three_where", sp.Piecewise((x**2, x < -1), (sp.sin(x), x < 1), (2 * x, True)),
         (pt("inside", x=-2.0), pt("inside", x=0.5), pt("inside", x=3.0), pt("on-jump", x=1.0)),
         lambda x: _where(x < -1, x**2, _where(x < 1, torch.sin(x), 2 * x)), branches="where"),
    Case("pw_smooth_if", sp.Piecewise((x**2, x < 1), (2 * x - 1, True)),
         (pt("on-kink", x=1.0), pt("inside", x=0.5), pt("inside", x=2.0)), _pw_smooth_if,
         note="the pieces meet with equal slopes: the derivative exists on the threshold"),
    Case("pw_bump_if", sp.Piecewise((1 - x**2, (x > -1) & (x < 1)), (0, True)),
         (pt("inside", x=0.5), pt("inside", x=2.0), pt("on-kink", x=1.0)), _pw_bump_if),
    Case("pw_bump_where", sp.Piecewise((1 - x**2, (x > -1) & (x < 1)), (0, True)),
         (pt("inside", x=0.5), pt("inside", x=2.0), pt("on-kink", x=1.0)),
         lambda x: _where((x > -1) & (x < 1), 1 - x**2, 0.0), branches="where"),
    Case("pw_sqrt_if", sp.Piecewise((sp.sqrt(x), x > 0), (0, True)),
         (pt("inside", x=4.0), pt("inside", x=-1.0)), _pw_sqrt_if,
         note="with `if` the sqrt branch never runs at -1: no NaN trap"),
    Case("pw_sqrt_where", sp.Piecewise((sp.sqrt(x), x > 0), (0, True)),
         (pt("inside", x=4.0), pt("nan-trap", x=-1.0)),
         lambda x: _where(x > 0, torch.sqrt(x), 0.0), branches="where",
         note="the acceptance row: torch.where's NaN trap"),
    Case("pw_log_where", sp.Piecewise((sp.log(x), x > 0), (0, True)),
         (pt("inside", x=2.0), pt("inside", x=-1.0)),
         lambda x: _where(x > 0, torch.log(x), 0.0), branches="where",
         note="the acceptance row: log's gradient -1 at -1 is finite, so 0 * (-1) = -0.0: no trap"),
    Case("pw_partial_if", sp.Piecewise((x, x > 0)), (pt("inside", x=2.0), pt("outside", x=-1.0)),
         _pw_partial_if, note="no condition holds below 0: SymPy's Piecewise is undefined (NaN) there"),
    Case("pw_partial_where", sp.Piecewise((x, x > 0)), (pt("inside", x=2.0), pt("outside", x=-1.0)),
         lambda x: _where(x > 0, x, math.nan), branches="where"),
    # ------------------------------------------------------------------ symgrad's own functions
    Case("detach", x * detach(x**2), (pt("inside", x=3.0),), lambda x: x * (x**2).detach(),
         note="math 27, executed 9"),
    Case("item", x * item(x), (pt("inside", x=3.0),), _item),
    Case("pw_item_if", sp.Piecewise((x, x > 0), (item(0), True)),
         (pt("inside", x=2.0), pt("inside", x=-1.0)), _pw_item_if,
         note="at -1 nothing reaches the output through the graph: torch raises"),
    Case("no_grad", x + no_grad(x**2), (pt("inside", x=3.0),), _no_grad_square),
    Case("no_grad_symbol", x * no_grad(x), (pt("inside", x=3.0),), _no_grad_symbol),
    Case("cast_float32", 3 * to_float32(x**2), (pt("inside", x=0.5),), lambda x: 3 * (x**2).float(),
         note="at 0.5 every value is a float32; elsewhere float32's rounding in a float64 run: rounding at the cast"),
    Case("cast_float64", 3 * to_float64(x**2), (pt("inside", x=0.5),), lambda x: 3 * (x**2).double()),
    # ------------------------------------------------------------------ constants
    Case("const_rational", x + sp.Rational(1, 3), (pt("inside", x=1.0),), lambda x: x + 1 / 3),
    Case("const_div", x / 3, (pt("inside", x=1.0),), lambda x: x / 3),
    Case("const_float", 1.5 * x, (pt("inside", x=2.0),), lambda x: 1.5 * x),
    Case("const_pi", sp.sin(2 * sp.pi * x), (pt("inside", x=0.125),),
         lambda x: torch.sin(2 * math.pi * x)),
    Case("const_e_pi", sp.E * x + sp.pi, (pt("inside", x=1.0),), lambda x: math.e * x + math.pi),
    Case("const_sqrt_two", sp.sqrt(2) * x, (pt("inside", x=3.0),), lambda x: x * math.sqrt(2)),
    # ------------------------------------------------------------------ floating point
    Case("one_minus_cos", (1 - sp.cos(x)) / x**2, (pt("inside", x=1.0), pt("cancellation", x=1e-4)),
         lambda x: (1 - torch.cos(x)) / x**2,
         note="the acceptance row: 1 - cos(x) cancels near 0 (rounding)"),
    Case("expm1_f32", (sp.exp(x) - 1) / x, (pt("inside", x=0.5), pt("cancellation", x=1e-6)),
         lambda x: (torch.exp(x) - 1) / x, dtype="float32",
         note="the acceptance row: exp(x) - 1 cancels in float32; torch.expm1 is the fix"),
)

BY_NAME: dict[str, Case] = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"


def case_points(whys: frozenset[str] | None = None) -> list[tuple[Case, Point]]:
    """(case, point) pairs, optionally only points of the given kinds."""
    return [(c, p) for c in CASES for p in c.points if whys is None or p.why in whys]


def pair_id(pair: tuple[Case, Point]) -> str:
    return f"{pair[0].name}-{pair[1].id}"


def d2l_control_flow() -> Any:
    """D2L's control-flow function as a Program: double `a` until |b| reaches 1000, then keep
    b (or 100 times it). Shared by the program, executed, error and sweep tests."""
    import symgrad as sg
    from sympy.codegen.ast import Assignment, CodeBlock, While

    a, b, c = sp.symbols("a b c")
    return sg.Program(
        inputs=[a],
        body=CodeBlock(
            Assignment(b, 2 * a),
            While(sp.Abs(b) < 1000, CodeBlock(Assignment(b, 2 * b))),
            Assignment(c, sp.Piecewise((b, b > 0), (100 * b, True))),
        ),
        output=c,
    )
