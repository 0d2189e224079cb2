"""The lowering table: its generated page, and its facts about torch checked against torch itself.

The executed side is computed from `OPS[name].partials` (torch's backward formula in exact
arithmetic, kink conventions included). These tests run real torch autograd on the same op at
the same point and compare: the oracle is torch, never the table's own opinion of itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sympy as sp
import torch

from symgrad.program import exact as ex
from symgrad.show import cli
from symgrad.sides.symbolic import same
from symgrad.program.ops import OPS
from symgrad.program.rules import RULES
from symgrad.show.supported import supported_markdown

DOCS = Path(__file__).parents[2] / "docs"
F = ex.Q
INF, NAN = math.inf, math.nan


def test_supported_page_is_generated_from_the_table() -> None:
    page = (DOCS / "supported.md").read_text()
    assert page == supported_markdown(), (
        "docs/supported.md and symgrad/program/rules.py or ops.py drifted apart: regenerate the page with "
        "`symgrad supported > docs/supported.md`"
    )


def test_cli_prints_the_supported_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["supported"]) == 0
    assert capsys.readouterr().out == supported_markdown()


def test_supported_page_lists_every_row_and_op() -> None:
    page = supported_markdown()
    for cls in RULES:
        assert f"| `{cls.__name__}` |" in page, cls.__name__
    for name in OPS:
        assert f"| `{name}` |" in page, name


def test_the_pow_row_says_its_domain_once_and_right() -> None:
    """The Pow row said "base >= 0 (base > 0 where the derivative is needed)" for `x ** y`, beside
    the finding's own words (x > 0, or x = 0 with y > 0; a negative x at an integer y): the row and
    the findings now read one text (rules.OP_DOMAINS), and the page is generated from it."""
    from symgrad.program.rules import OP_DOMAINS

    row = RULES[sp.Pow].domain
    for op in ("pow_int", "pow_frac", "pow"):
        assert OP_DOMAINS[op] in row
    page = supported_markdown()
    assert "base >= 0" not in page and page.count(OP_DOMAINS["pow"]) == 1


@pytest.mark.parametrize(("px", "py", "x_domain", "y_domain"), [
    (2.0, 0.5, False, False),   # x > 0
    (0.0, 2.0, False, False),   # x = 0 with y > 0: 0**y = 0, flat in y; slope in x 0
    (0.0, 1.0, False, False),   # slope in x is 1
    (0.0, 0.5, True, False),    # slope in x infinite for y < 1
    (0.0, 0.0, True, True),     # x = 0 with y = 0: outside
    (0.0, -1.0, True, True),    # a pole
    (-2.0, 3.0, False, True),   # a negative x at an integer y: a value, no real slope in y
    (-2.0, 2.5, True, True),    # a negative x at a fractional y: no real value
])
def test_the_pow_domain_words_are_the_verdicts(px: float, py: float, x_domain: bool, y_domain: bool) -> None:
    """What the row says is what compare() finds: an entry is `domain` exactly where the words put
    its slope outside; inside, the slope is SymPy's (y*x**(y - 1), x**y*log(x), or 0 for the slope in
    y at x = 0, the limit of 0**y) and torch's within float64."""
    import symgrad as sg

    x, y = sp.symbols("x y")
    c = sg.compare(x ** y, at={x: px, y: py})
    tx = torch.tensor(px, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(py, dtype=torch.float64, requires_grad=True)
    torch_slopes = [float(g) for g in torch.autograd.grad(tx ** ty, [tx, ty])]
    xr, yr = sp.Rational(px), sp.Rational(py)
    truths = [y * x ** (y - 1), sp.Integer(0) if px == 0 else x ** y * sp.log(x)]
    for e, outside, truth, t in zip(c.entries, (x_domain, y_domain), truths, torch_slopes):
        assert e.grad_autograd == t or (math.isnan(t) and math.isnan(e.grad_autograd))
        assert (e.cause is sg.Cause.DOMAIN) is outside
        if not outside:
            exact = truth.subs({x: xr, y: yr})
            assert abs(sp.N(e.grad_symbolic - exact, 60)) <= sp.Float("1e-40") * abs(sp.N(exact, 60))
            assert t == pytest.approx(float(exact), rel=1e-15)


# ---------------------------------------------------------------- facts checked against torch


@dataclass(frozen=True)
class Fact:
    """torch op `fn` at exact `args` (binary fractions, so the tensors hold them exactly)."""

    op: str
    fn: Callable[..., torch.Tensor]
    args: tuple[ex.Exact, ...]
    param: Any = None
    expected: tuple[float, ...] | None = None  # the partials, where the fact is a convention

    @property
    def id(self) -> str:
        return f"{self.op}({', '.join(str(a) for a in self.args)})"


_NN = torch.nn.functional
# torch's activations: their kernels' values and backward formulas, their conventions at the kinks
# (elu'(0) = alpha, leaky_relu'(0) = negative_slope, hardtanh' = 0 at both corners) and at a NaN.
ACTIVATION_FACTS: tuple[Fact, ...] = (
    *(Fact(name, fn, (x,)) for name, fn in (
        ("gelu", _NN.gelu), ("gelu_tanh", lambda a: _NN.gelu(a, approximate="tanh")), ("silu", _NN.silu),
        ("logsigmoid", _NN.logsigmoid)) for x in (F(3, 8), F(-5, 2), F(0), F(7))),
    Fact("logsigmoid", _NN.logsigmoid, (F(-800),), expected=(1.0,)),
    *(Fact(name, fn, (v,), expected=(NAN,)) for name, fn in (("gelu", _NN.gelu), ("silu", _NN.silu),
      ("gelu_tanh", lambda a: _NN.gelu(a, approximate="tanh"))) for v in (ex.INF, ex.NEG_INF)),  # IEEE, as torch
    Fact("silu", _NN.silu, (F(-800),), expected=(0.0,)),
    Fact("elu", lambda a: _NN.elu(a, alpha=0.5), (F(0),), (0.5,), expected=(0.5,)),
    Fact("elu", lambda a: _NN.elu(a, alpha=0.5), (F(-3, 4),), (0.5,)),
    Fact("elu", lambda a: _NN.elu(a, alpha=0.5), (F(1, 2),), (0.5,), expected=(1.0,)),
    Fact("elu", lambda a: _NN.elu(a, alpha=0.5), (ex.NAN,), (0.5,), expected=(1.0,)),
    Fact("leaky_relu", lambda a: _NN.leaky_relu(a, 0.25), (F(0),), (0.25,), expected=(0.25,)),
    Fact("leaky_relu", lambda a: _NN.leaky_relu(a, 0.25), (F(-3, 4),), (0.25,), expected=(0.25,)),
    Fact("leaky_relu", lambda a: _NN.leaky_relu(a, 0.25), (F(1, 2),), (0.25,), expected=(1.0,)),
    Fact("leaky_relu", lambda a: _NN.leaky_relu(a, 0.25), (ex.NAN,), (0.25,), expected=(0.25,)),
    Fact("hardtanh", _NN.hardtanh, (F(-1),), (-1.0, 1.0), expected=(0.0,)),
    Fact("hardtanh", _NN.hardtanh, (F(1),), (-1.0, 1.0), expected=(0.0,)),
    Fact("hardtanh", _NN.hardtanh, (F(1, 2),), (-1.0, 1.0), expected=(1.0,)),
    Fact("hardtanh", _NN.hardtanh, (F(3, 2),), (-1.0, 1.0), expected=(0.0,)),
    Fact("hardtanh", _NN.hardtanh, (ex.NAN,), (-1.0, 1.0), expected=(1.0,)),
    Fact("hardtanh", _NN.relu6, (F(0),), (0.0, 6.0), expected=(0.0,)),
    Fact("hardtanh", _NN.relu6, (F(6),), (0.0, 6.0), expected=(0.0,)),
    Fact("round_even", torch.round, (F(5, 2),), expected=(0.0,)),
    Fact("round_even", torch.round, (F(-7, 2),), expected=(0.0,)),
    Fact("round_even", torch.round, (ex.NAN,), expected=(0.0,)),
    Fact("xlogy", torch.xlogy, (F(0), F(0)), expected=(0.0, NAN)),
    Fact("xlogy", torch.xlogy, (F(0), F(-1)), expected=(0.0, 0.0)),
    Fact("xlogy", torch.xlogy, (F(3, 8), F(5, 4))),
)

FACTS: tuple[Fact, ...] = (
    # A NaN reaching a kink: relu passes its gradient, clamp blocks it, maximum/minimum give
    # both arguments the full gradient, abs and sign give 0 (and sign's value is 0).
    Fact("relu", torch.relu, (ex.NAN,), expected=(1.0,)),
    Fact("clamp_min", lambda a: torch.clamp(a, min=1.0), (ex.NAN,), F(1), expected=(0.0,)),
    Fact("clamp_max", lambda a: torch.clamp(a, max=1.0), (ex.NAN,), F(1), expected=(0.0,)),
    Fact("maximum", torch.maximum, (ex.NAN, F(1, 2)), expected=(1.0, 1.0)),
    Fact("minimum", torch.minimum, (F(1, 2), ex.NAN), expected=(1.0, 1.0)),
    Fact("abs", torch.abs, (ex.NAN,), expected=(0.0,)),
    Fact("sign", torch.sign, (ex.NAN,), expected=(0.0,)),
    # The kink and jump conventions of DESIGN.md section 4, with the number torch uses.
    Fact("relu", torch.relu, (F(0),), expected=(0.0,)),
    Fact("relu", torch.relu, (F(1, 2),), expected=(1.0,)),
    Fact("relu", torch.relu, (F(-1, 2),), expected=(0.0,)),
    Fact("clamp_min", lambda a: torch.clamp(a, min=1.0), (F(1),), F(1), expected=(1.0,)),
    Fact("clamp_min", lambda a: torch.clamp(a, min=1.0), (F(1, 2),), F(1), expected=(0.0,)),
    Fact("clamp_max", lambda a: torch.clamp(a, max=-1.0), (F(-1),), F(-1), expected=(1.0,)),
    Fact("clamp_max", lambda a: torch.clamp(a, max=-1.0), (F(0),), F(-1), expected=(0.0,)),
    Fact("maximum", torch.maximum, (F(2), F(2)), expected=(0.5, 0.5)),
    Fact("maximum", torch.maximum, (F(3), F(2)), expected=(1.0, 0.0)),
    Fact("minimum", torch.minimum, (F(2), F(2)), expected=(0.5, 0.5)),
    Fact("minimum", torch.minimum, (F(3), F(2)), expected=(0.0, 1.0)),
    Fact("abs", torch.abs, (F(0),), expected=(0.0,)),
    Fact("abs", torch.abs, (F(-3, 4),), expected=(-1.0,)),
    Fact("sign", torch.sign, (F(0),), expected=(0.0,)),
    Fact("sign", torch.sign, (F(5),), expected=(0.0,)),
    Fact("floor", torch.floor, (F(1),), expected=(0.0,)),
    Fact("floor", torch.floor, (F(3, 2),), expected=(0.0,)),
    Fact("ceil", torch.ceil, (F(-1),), expected=(0.0,)),
    Fact("heaviside", lambda a: (torch.sign(a) + 1) / 2, (F(0),), expected=(0.0,)),
    # Where torch's formula blows up.
    Fact("sqrt", torch.sqrt, (F(0),), expected=(INF,)),
    Fact("sqrt", torch.sqrt, (F(-1),), expected=(NAN,)),
    Fact("sqrt", torch.sqrt, (F(9, 4),)),
    Fact("pow_int", lambda a: a**-2, (F(0),), -2, expected=(-INF,)),
    Fact("pow_int", lambda a: a**3, (F(-3, 2),), 3),
    Fact("pow_frac", lambda a: a ** (1 / 3), (F(0),), F(1, 3), expected=(INF,)),
    Fact("pow_frac", lambda a: a**1.5, (F(0),), F(3, 2), expected=(0.0,)),
    Fact("pow_frac", lambda a: a**1.5, (F(9, 4),), F(3, 2)),
    Fact("pow_frac", lambda a: a**1.5, (F(-1),), F(3, 2), expected=(NAN,)),
    # torch masks two corners of x ** y.
    Fact("pow", torch.pow, (F(0), F(0)), expected=(0.0, 0.0)),
    Fact("pow", torch.pow, (F(0), F(2)), expected=(0.0, 0.0)),
    Fact("pow", torch.pow, (F(0), F(-1)), expected=(-INF, -INF)),
    Fact("pow", torch.pow, (F(2), F(0))),
    Fact("pow", torch.pow, (F(-2), F(2)), expected=(-4.0, NAN)),
    Fact("pow", torch.pow, (F(1, 2), F(3, 2))),
    Fact("atan2", torch.atan2, (F(0), F(0)), expected=(0.0, 0.0)),
    Fact("atan2", torch.atan2, (F(1), F(-2))),
    Fact("asin", torch.asin, (F(1),), expected=(INF,)),
    Fact("asin", torch.asin, (F(2),), expected=(NAN,)),
    Fact("acos", torch.acos, (F(1),), expected=(-INF,)),
    Fact("log", torch.log, (F(0),), expected=(INF,)),
    Fact("log", torch.log, (F(-1),), expected=(-1.0,)),
    Fact("div", torch.div, (F(1), F(0)), expected=(INF, -INF)),
    Fact("div", torch.div, (F(0), F(0)), expected=(INF, NAN)),
    Fact("div", torch.div, (F(3), F(-4))),
    # Smooth ops at an ordinary point: torch's formula, to rounding.
    *(Fact(name, getattr(torch, name), (F(3, 8),))
      for name in ("exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "erf")),
    Fact("tan", torch.tan, (F(math.pi / 2),)),
    # torch's fused ops: their own kernels, at ordinary points and where the written-out form
    # overflows. softplus is x itself above its threshold 20 (slope exactly 1), sigmoid(x) below.
    Fact("softplus", torch.nn.functional.softplus, (F(3, 8),)),
    Fact("softplus", torch.nn.functional.softplus, (F(-800),), expected=(0.0,)),
    Fact("softplus", torch.nn.functional.softplus, (F(20),)),
    Fact("softplus", torch.nn.functional.softplus, (F(41, 2),), expected=(1.0,)),
    Fact("softplus", torch.nn.functional.softplus, (F(1000),), expected=(1.0,)),
    Fact("logaddexp", torch.logaddexp, (F(3, 8), F(-5, 4))),
    Fact("logaddexp", torch.logaddexp, (F(1000), F(0)), expected=(1.0, 0.0)),
    Fact("logsumexp", lambda a, b: torch.logsumexp(torch.stack([a, b]), 0), (F(1000), F(0)), expected=(1.0, 0.0)),
    Fact("softmax", lambda a, b, c: torch.softmax(torch.stack([a, b, c]), 0)[1], (F(3, 8), F(-5, 4), F(1, 2)), 1),
    Fact("softmax", lambda a, b: torch.softmax(torch.stack([a, b]), 0)[0], (F(1000), F(0)), 0, expected=(0.0, 0.0)),
    Fact("log_softmax", lambda a, b, c: torch.log_softmax(torch.stack([a, b, c]), 0)[2], (F(3, 8), F(-5, 4), F(1, 2)), 2),
    Fact("log_softmax", lambda a, b: torch.log_softmax(torch.stack([a, b]), 0)[1], (F(1000), F(0)), 1,
         expected=(-1.0, 1.0)),
    # torch's 2-norm: a / norm (0.6, not sqrt's 0.6000000000000001), and 0 at the cone's tip.
    Fact("vector_norm", lambda a, b: torch.linalg.vector_norm(torch.stack([a, b]), dim=0), (F(3), F(-4)),
         expected=(0.6, -0.8)),
    Fact("vector_norm", lambda a, b, c: torch.linalg.vector_norm(torch.stack([a, b, c]), dim=0), (F(3, 8), F(-5, 4), F(1, 2))),
    Fact("vector_norm", lambda a, b: torch.linalg.vector_norm(torch.stack([a, b]), dim=0), (F(0), F(0)),
         expected=(0.0, 0.0)),
    # torch's max/min reductions: amax splits a tie evenly, max(dim).values gives it to the first index;
    # std's backward is masked to 0 where every element is equal (reductions.py).
    Fact("amax", lambda a, b, c: torch.amax(torch.stack([a, b, c]), 0), (F(2), F(2), F(1)), expected=(0.5, 0.5, 0.0)),
    Fact("amax", lambda a, b, c: torch.stack([a, b, c]).max(), (F(2), F(2), F(2)), expected=(1 / 3, 1 / 3, 1 / 3)),
    Fact("amin", lambda a, b, c: torch.amin(torch.stack([a, b, c]), 0), (F(1), F(2), F(1)), expected=(0.5, 0.0, 0.5)),
    Fact("max_at", lambda a, b, c: torch.max(torch.stack([a, b, c]), 0).values, (F(1), F(2), F(2)), expected=(0.0, 1.0, 0.0)),
    Fact("min_at", lambda a, b, c: torch.min(torch.stack([a, b, c]), 0).values, (F(1), F(1), F(2)), expected=(1.0, 0.0, 0.0)),
    Fact("var", lambda a, b, c: torch.var(torch.stack([a, b, c])), (F(1), F(2), F(4)), 1),
    Fact("std", lambda a, b, c: torch.std(torch.stack([a, b, c]), correction=0), (F(1), F(2), F(4)), 0),
    Fact("std", lambda a, b, c: torch.std(torch.stack([a, b, c])), (F(3, 2), F(3, 2), F(3, 2)), 1, expected=(0.0, 0.0, 0.0)),
    Fact("std_along", lambda a, b, c, d: torch.std(torch.stack([a, b, c, d]).reshape(2, 2), 0)[1], (F(1), F(2), F(3), F(2)),
         (1, 2, 2, 0, 1), expected=(0.0, 0.0, 0.0, 0.0)),
    Fact("var_along", lambda a, b, c, d: torch.var(torch.stack([a, b, c, d]).reshape(2, 2), 1)[1], (F(1), F(2), F(3), F(5)),
         (1, 2, 2, 1, 1)),
    # torch.cdist's backward is masked to 0 at a zero distance (the cone's tip); F.normalize's clamp_min
    # passes the gradient where the norm is exactly eps (the slope of x / ||x||).
    Fact("cdist", lambda a, b, c, d: torch.cdist(torch.stack([a, b]).reshape(1, 2), torch.stack([c, d]).reshape(1, 2))[0, 0],
         (F(3), F(0), F(0), F(4)), (1, 1, 2, 0, 0), expected=(0.6, -0.8, -0.6, 0.8)),
    Fact("cdist", lambda a, b, c, d: torch.cdist(torch.stack([a, b]).reshape(1, 2), torch.stack([c, d]).reshape(1, 2))[0, 0],
         (F(1), F(2), F(1), F(2)), (1, 1, 2, 0, 0), expected=(0.0, 0.0, 0.0, 0.0)),
    Fact("normalize", lambda a, b: _NN.normalize(torch.stack([a, b]).reshape(1, 2), 2.0, 1, 5.0)[0, 0], (F(3), F(4)),
         (1, 2, 1, F(5), 0, 0), expected=(0.128, -0.096)),
    Fact("normalize", lambda a, b: _NN.normalize(torch.stack([a, b]).reshape(1, 2), 2.0, 1, 5.0)[0, 1], (F(1), F(2)),
         (1, 2, 1, F(5), 0, 1), expected=(0.0, 0.2)),
    # F.cosine_similarity clamps each norm at eps in place under no_grad: at ||a|| = eps (5/8) its gradient
    # flows through the norm (the piece above eps); below eps it still does (Op.departs: not the mathematics').
    Fact("cos_sim", lambda a, b, c, d: _NN.cosine_similarity(torch.stack([a, b]).reshape(2, 1),
                                                             torch.stack([c, d]).reshape(2, 1), 0, 0.625)[0],
         (F(3, 8), F(1, 2), F(1), F(0)), (2, 1, 0, 0, F(5, 8)), expected=(1.024, -0.768, 0.0, 0.8)),
    Fact("cos_sim", lambda a, b, c, d: _NN.cosine_similarity(torch.stack([a, b]).reshape(2, 1),
                                                             torch.stack([c, d]).reshape(2, 1), 0, 0.625)[0],
         (F(3, 16), F(1, 4), F(1), F(0)), (2, 1, 0, 0, F(5, 8))),
    # torch's sort and topk give the gradient to the index they return, among ties their own choice
    Fact("order_at", lambda a, b, c: torch.sort(torch.stack([a, b, c]), 0).values[1], (F(1), F(1), F(0)), (1, 0, 0),
         expected=(1.0, 0.0, 0.0)),
    Fact("order_at", lambda a, b, c: torch.topk(torch.stack([a, b, c]), 2, 0).values[1], (F(1), F(1), F(0)), (1, 2, 2),
         expected=(0.0, 1.0, 0.0)),
    *ACTIVATION_FACTS,
)


@pytest.fixture(autouse=True)
def _working_precision():  # type: ignore[no-untyped-def]
    """The ops run at symgrad's working precision, as inside compare()."""
    with ex.working_precision(ex.START_PREC):
        yield


def _same(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return math.isclose(got, want, rel_tol=1e-14, abs_tol=0.0)


def _torch_grads(fn: Callable[..., torch.Tensor], args: Sequence[ex.Exact]) -> tuple[float, tuple[float, ...]]:
    tensors = [torch.tensor(ex.to_float(a), dtype=torch.float64, requires_grad=True) for a in args]
    out = fn(*tensors)
    grads = torch.autograd.grad(out, tensors)
    return float(out.detach()), tuple(float(g) for g in grads)


@pytest.mark.parametrize("fact", FACTS, ids=lambda f: f.id)
def test_op_partials_are_torchs_backward(fact: Fact) -> None:
    op = OPS[fact.op]
    value = op.value(fact.args, fact.param)
    partials = op.partials(fact.args, value, fact.param)
    torch_value, torch_grads = _torch_grads(fact.fn, fact.args)
    assert _same(ex.to_float(value), torch_value) or (math.isnan(torch_value) and math.isnan(ex.to_float(value))), (
        f"{fact.id}: table value {value}, torch {torch_value}")
    table = tuple(ex.to_float(p) for p in partials)
    assert len(table) == len(torch_grads)
    for k, (mine, theirs) in enumerate(zip(table, torch_grads)):
        assert _same(mine, theirs), f"{fact.id}: d/d(arg {k}) table {partials[k]}, torch {theirs}"
    if fact.expected is not None:
        for k, (mine, want) in enumerate(zip(table, fact.expected)):
            assert _same(mine, want), f"{fact.id}: d/d(arg {k}) table {partials[k]}, expected {want}"


@pytest.mark.parametrize("fact", [f for f in FACTS if f.expected is not None and OPS[f.op].nonsmooth],
                         ids=lambda f: f.id)
def test_conventions_are_exact_rationals(fact: Fact) -> None:
    """At a kink or jump the executed side is exact: torch's convention is a rational number."""
    op = OPS[fact.op]
    partials = op.partials(fact.args, op.value(fact.args, fact.param), fact.param)
    assert all(ex.is_rational(p) for p in partials)
    assert tuple(float(p) for p in partials) == fact.expected


NONSMOOTH_AT = {
    # op: (param, a point on the kink or jump, points beside it on either side)
    "abs": (None, (F(0),), [(F(-1, 4),), (F(1, 4),)]),
    "relu": (None, (F(0),), [(F(-1, 4),), (F(1, 4),)]),
    "clamp_min": (F(1), (F(1),), [(F(3, 4),), (F(5, 4),)]),
    "clamp_max": (F(1), (F(1),), [(F(3, 4),), (F(5, 4),)]),
    "maximum": (None, (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    "minimum": (None, (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    "sign": (None, (F(0),), [(F(-1, 4),), (F(1, 4),)]),
    "floor": (None, (F(1),), [(F(3, 4),), (F(5, 4),)]),
    "ceil": (None, (F(1),), [(F(3, 4),), (F(5, 4),)]),
    "heaviside": (None, (F(0),), [(F(-1, 4),), (F(1, 4),)]),
    # atan2(y, x) jumps across its branch cut, the negative x-axis
    "atan2": (None, (F(0), F(-1)), [(F(-1, 4), F(-1)), (F(1, 4), F(-1))]),
    # the 2-norm is a cone at the origin
    "vector_norm": (None, (F(0), F(0)), [(F(-1, 4), F(0)), (F(1, 4), F(0))]),
    # a tie of the largest (smallest); std's cone where the elements are equal
    "amax": (None, (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    "amin": (None, (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    "max_at": (None, (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    "min_at": (None, (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    "std": (1, (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    "std_along": ((1, 1, 2, 1, 0), (F(1), F(1)), [(F(3, 4), F(1)), (F(5, 4), F(1))]),
    # torch's activations (program/activations.py): a kink at 0, hardtanh's at its two corners
    "elu": ((0.5,), (F(0),), [(F(-1, 4),), (F(1, 4),)]),
    "leaky_relu": ((0.25,), (F(0),), [(F(-1, 4),), (F(1, 4),)]),
    "hardtanh": ((-1.0, 1.0), (F(1),), [(F(3, 4),), (F(5, 4),)]),
    "round_even": (None, (F(5, 2),), [(F(9, 4),), (F(11, 4),)]),  # torch.round jumps at the half-integers
    # the fused matrix ops (distances.py, normalization.py): cdist's cone where two rows are the same
    # point, F.normalize's kink where a row's norm is eps; an element, and the whole matrix op
    "cdist": ((1, 1, 2, 0, 0), (F(1), F(2), F(1), F(2)), [(F(3, 4), F(2), F(1), F(2)), (F(5, 4), F(2), F(1), F(2))]),
    "cdist_matrix": ((1, 1, 2), (F(1), F(2), F(1), F(2)), [(F(3, 4), F(2), F(1), F(2)), (F(5, 4), F(2), F(1), F(2))]),
    "normalize": ((1, 2, 1, F(5), 0, 0), (F(3), F(4)), [(F(3), F(15, 4)), (F(3), F(17, 4))]),
    "normalize_matrix": ((1, 2, 1, F(5)), (F(3), F(4)), [(F(3), F(15, 4)), (F(3), F(17, 4))]),
    # a tie in torch.sort's values (program/orders.py)
    "order_at": ((1, 0, 0), (F(1), F(1), F(0)), [(F(3, 4), F(1), F(0)), (F(5, 4), F(1), F(0))]),
    # F.cosine_similarity's kink where a norm is exactly eps (program/cosine.py)
    "cos_sim": ((2, 1, 0, 0, F(5, 8)), (F(3, 8), F(1, 2), F(1), F(0)),
                [(F(3, 8), F(7, 16), F(1), F(0)), (F(3, 8), F(9, 16), F(1), F(0))]),
}


def test_every_nonsmooth_op_is_checked_and_documented() -> None:
    nonsmooth = {name for name, op in OPS.items() if op.nonsmooth}
    assert nonsmooth == set(NONSMOOTH_AT), "add the new non-smooth op to NONSMOOTH_AT in tests/program/test_rules.py"
    for name in nonsmooth:
        assert OPS[name].convention, f"OPS[{name!r}] has no convention sentence"
        # a fused matrix op's convention is its element's (one backward: distances.py, normalization.py)
        element = name.removesuffix("_matrix")
        assert any(f.op == element and f.expected is not None for f in FACTS), f"no torch fact for {name}"


@pytest.mark.parametrize("name", sorted(NONSMOOTH_AT))
def test_pieces_locate_the_kink(name: str) -> None:
    """`piece` is None exactly on the kink (or, for a reduction's tie, the set of tied arguments,
    which the executed path takes for a tie); beside it, the piece continues the op's own value."""
    op = OPS[name]
    param, on, beside = NONSMOOTH_AT[name]
    if op.vjp is not None:  # a fused matrix op: a site per element, None on the corner; its backward on a piece
        assert None in op.piece(on, param)
    else:
        assert op.piece(on, param) is None or isinstance(op.piece(on, param), frozenset)
    pieces = []
    for args in beside:
        piece = op.piece(args, param)
        assert piece is not None and (op.vjp is None or None not in piece)
        value, partials = op.on_piece(piece, args, param)
        if op.vjp is not None:
            want = op.value(args, param)
            ones = ex.full(want.shape, ex.ONE)
            assert all(same(a, b) for a, b in zip(ex.elements(value), ex.elements(want)))
            assert all(same(a, b) for a, b in zip(partials(ones), op.vjp(args, want, param, ones)))
            pieces.append(piece)
            continue
        assert same(value, op.value(args, param))
        # where torch's kernel departs from the mathematics beside the kink (F.cosine_similarity below eps,
        # `Op.departs`), the piece is the mathematics' (the symbolic side's one-sided slope); elsewhere the op's own
        departing = op.departs is not None and op.math is not None and op.departs(args, param)
        want = op.math(args, param)[1] if departing else op.partials(args, value, param)  # type: ignore[misc]
        assert all(same(a, b) for a, b in zip(partials, want))
        pieces.append(piece)
    assert pieces[0] != pieces[1]


def test_table_rows_name_their_ops() -> None:
    for cls, rule in RULES.items():
        for name in rule.ops:
            assert name in OPS, f"RULES[{cls.__name__}] lowers to unknown op {name!r}"
    assert RULES[sp.Max].ops == ("relu", "clamp_min", "maximum")
    assert RULES[sp.Min].ops == ("clamp_max", "minimum")

