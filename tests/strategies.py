"""Hypothesis strategies for SymPy expressions in x and y, and oracles that do not use symgrad.

The vocabulary is the lowering table's (`symgrad.program.rules.RULES`): +, -, *, /, integer powers,
sqrt, exp, log, sin, cos, tan, atan, tanh, erf, Abs, Max, Min, floor, sign, Piecewise with
simple conditions (`x > c`, `u >= c`, ...), and torch's fused ops: sigmoid, softplus, expm1,
logaddexp, logsumexp, softmax and log_softmax (of 2 or 3 values).

Two flavours:

* `expressions(guarded=True)`: domain filters are applied at construction, so the function is
  finite at every real point: log and sqrt only see positive arguments (`u**2 + c`, `exp(u)`,
  `Abs(u) + c`) or sit behind a Piecewise guard (`Piecewise((log(u), u > 0), (0, True))`),
  divisors and negative powers are bounded away from 0, and tan only sees arguments in [-1, 1]
  (far from its poles at +-pi/2).
* `expressions(guarded=False)`: the same vocabulary applied to anything (log of a negative,
  1/u at a root, tan at a pole), for the "nothing but SymgradError escapes" property.

Oracles (ground truth, independent of symgrad):

* `exact_value(expr, point)`: SymPy's `evalf(30)` at the exact binary point.
* `exact_derivative(expr, sym, point)`: `sympy.diff`, evaluated with `evalf(30)`.
* `enclosure(expr, point)`: an interval that holds every value a float64 evaluation of the
  expression can produce, operation by operation (each result rounded within a few ulps, n-ary
  sums within (n-1) roundings of the sum of magnitudes). It is the tolerance of the forward
  property: a cancellation or a `floor` on a threshold widens it exactly as much as floating
  point can move the value, no more. It also measures how far the point is from every kink,
  jump and branch threshold (`Enclosure.margin`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import sympy as sp
from hypothesis import strategies as st
from sympy.codegen.cfunctions import expm1

import symgrad as sg

X = sp.Symbol("x")
Y = sp.Symbol("y")
SYMBOLS = (X, Y)
REAL = {X: sp.Symbol("x", real=True), Y: sp.Symbol("y", real=True)}

# Thresholds for conditions and Max/Min constants: integers and halves, so that the special
# points (0, integers, +-1/2) hit them exactly.
THRESHOLDS = (sp.Integer(0), sp.Integer(1), sp.Integer(-1), sp.Rational(1, 2), sp.Integer(2))
SPECIAL_POINTS = (0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0)
POSITIVE_SHIFTS = (sp.Integer(1), sp.Rational(1, 2), sp.Integer(2))


# --------------------------------------------------------------------------- expressions

_leaf = st.one_of(
    st.sampled_from(SYMBOLS),
    st.sampled_from(SYMBOLS),
    st.sampled_from((sp.Integer(1), sp.Integer(2), sp.Integer(-1), sp.Integer(3), sp.Rational(1, 2),
                     sp.Rational(-1, 3), sp.pi)),
)


def _positive(u: sp.Basic, how: int, c: sp.Basic) -> sp.Basic:
    """Something > 0 at every real point, built from u (the domain filter for log/sqrt/1/...)."""
    return (u**2 + c, sp.exp(u), sp.Abs(u) + c)[how]


def _bounded(u: sp.Basic, how: int) -> sp.Basic:
    """Something in [-1, 1], built from u (the domain filter for tan: its poles are at +-pi/2)."""
    return (sp.sin(u), sp.cos(u), sp.tanh(u), sp.erf(u), sp.atan(u) / 2)[how]


def _guard(f: type[sp.Function], u: sp.Basic) -> sp.Basic:
    """Piecewise((f(u), u > 0), (0, True)): a log or sqrt behind a branch. (Over a Piecewise u,
    SymPy folds it and may leave an unreachable complex constant: test_unreachable_complex_branch.)"""
    return sp.Piecewise((f(u), u > 0), (0, True))


def _safe(build):
    """SymPy refuses some constructions outright (Max(I*pi, x): "not comparable"): keep u."""

    def f(*args):
        try:
            return build(*args)
        except (TypeError, ValueError):
            return args[0]

    return f


def _extend(children: st.SearchStrategy[sp.Basic], guarded: bool) -> st.SearchStrategy[sp.Basic]:
    # Unguarded expressions may hold complex constants (log(-1) = I*pi), which SymPy refuses in
    # some constructions; those keep their first argument.
    def build(f, *args):
        return st.builds(f if guarded else _safe(f), *args)

    a, b = children, children
    pos = build(_positive, a, st.integers(0, 2), st.sampled_from(POSITIVE_SHIFTS))
    thr = st.sampled_from(THRESHOLDS)
    rel = st.sampled_from((sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan))
    sym = st.sampled_from(SYMBOLS)
    unary = st.sampled_from((sp.exp, sp.sin, sp.cos, sp.atan, sp.tanh, sp.erf, sp.sign, sp.Abs, sp.floor,
                             sg.sigmoid, sg.softplus, expm1))  # torch's fused ops too
    # the n-ary fused ops take 2 or 3 values; softmax and log_softmax also a component in range
    values = st.lists(children, min_size=2, max_size=3)
    component = values.flatmap(lambda vs: st.tuples(st.integers(0, len(vs) - 1), st.just(vs)))
    normalised = st.sampled_from((sg.softmax, sg.log_softmax))
    options = [
        build(lambda u, v: u + v, a, b),
        build(lambda u, v: u - v, a, b),
        build(lambda u, v: u * v, a, b),
        build(lambda u, f: f(u), a, unary),
        build(lambda u, n: u**n, a, st.integers(2, 3)),
        build(sp.Max, a, b),
        build(sp.Min, a, b),
        build(sp.Max, a, thr),
        build(sp.Min, a, thr),
        build(sg.logaddexp, a, b),
        build(lambda vs: sg.logsumexp(*vs), values),
        build(lambda f, c: f(c[0], *c[1]), normalised, component),
        # Piecewise on a symbol's threshold (control flow at integers and halves) or on a
        # subexpression's sign.
        build(lambda u, v, r, s, c: sp.Piecewise((u, r(s, c)), (v, True)), a, b, rel, sym, thr),
        build(lambda u, v, w, r: sp.Piecewise((u, r(w, 0)), (v, True)), a, b, a, rel),
    ]
    if guarded:
        options += [
            build(sp.log, pos),
            build(sp.sqrt, pos),
            build(lambda u, p: u / p, a, pos),
            build(lambda p, n: p**n, pos, st.integers(-3, -1)),
            build(lambda u, how: sp.tan(_bounded(u, how)), a, st.integers(0, 4)),
            # A guarded log and sqrt: fine with branches="if"; a NaN trap with "where".
            build(lambda u, f: _guard(f, u), a, st.sampled_from((sp.log, sp.sqrt))),
        ]
    else:
        options += [
            build(sp.log, a),
            build(sp.sqrt, a),
            build(lambda u, v: u / v, a, b),
            build(lambda u, n: u**n, a, st.integers(-3, -1)),
            build(sp.tan, a),
            build(lambda u: sp.Piecewise((sp.log(u), u > 0), (0, True)), a),
        ]
    return st.one_of(options)


def expressions(*, guarded: bool = True, max_leaves: int = 6) -> st.SearchStrategy[sp.Basic]:
    """SymPy expressions in x and y from the rule table's vocabulary (see the module docstring)."""
    return st.recursive(_leaf, lambda c: _extend(c, guarded), max_leaves=max_leaves)


def _thresholds_in(expr: sp.Basic) -> list[float]:
    """The constants of the expression as floats: points that sit on its thresholds."""
    out = []
    for atom in expr.atoms(sp.Rational):
        if abs(atom) <= 10:
            out.append(float(atom))
    return sorted(set(out))


@dataclass(frozen=True)
class Case:
    expr: sp.Basic
    point: dict[sp.Symbol, float]
    guarded: bool = True  # built with the domain filters (finite at every real point)

    @property
    def symbols(self) -> list[sp.Symbol]:
        return sorted(self.expr.free_symbols, key=lambda s: s.name)

    def __repr__(self) -> str:
        pt = ", ".join(f"{s}: {v!r}" for s, v in self.point.items())
        return f"Case({sp.sstr(self.expr)}, at={{{pt}}})"


def _coordinate(expr: sp.Basic, specials: bool) -> st.SearchStrategy[float]:
    randoms = st.floats(-4, 4, allow_nan=False, allow_infinity=False)
    if not specials:
        return randoms
    thresholds = _thresholds_in(expr) or [0.0]
    return st.one_of(randoms, st.sampled_from(SPECIAL_POINTS), st.sampled_from(thresholds),
                     st.integers(-3, 3).map(float))


@st.composite
def cases(draw: st.DrawFn, *, guarded: bool = True, specials: bool = True, symbolic: bool = True) -> Case:
    """An expression with at least one free symbol (unless `symbolic=False`) and a point for
    each of its free symbols: random floats in [-4, 4], and with `specials` also the exact
    kink and jump points (0, integers, halves, the expression's own thresholds)."""
    expr = draw(expressions(guarded=guarded))
    if symbolic and not expr.free_symbols:
        expr = expr + draw(st.sampled_from(SYMBOLS))
    point = {}
    for s in sorted(expr.free_symbols, key=lambda s: s.name):
        point[s] = draw(_coordinate(expr, specials))
    return Case(expr, point)


WILD_FLOATS = st.one_of(
    st.floats(-1e3, 1e3),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, math.pi / 2, 710.0, 1e-300, 1e39, -1e39]),
)
NON_FINITE = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def wild_cases(draw: st.DrawFn, *, finite: bool = True) -> Case:
    """An unguarded expression (log of anything, 1/u, tan) at any point: outside the domain, on
    a pole, where exp overflows, beyond float32's range; with `finite=False` also nan and inf."""
    expr = draw(expressions(guarded=False))
    coordinate = WILD_FLOATS if finite else st.one_of(WILD_FLOATS, NON_FINITE)
    point = {s: draw(coordinate) for s in sorted(expr.free_symbols, key=lambda s: s.name)}
    return Case(expr, point, guarded=False)


# --------------------------------------------------------------------------- exact oracles


def real(expr: sp.Basic) -> sp.Basic:
    """The expression over real symbols (what symgrad differentiates, DESIGN.md section 4)."""
    return expr.xreplace(REAL)


def exact_point(point: dict[sp.Symbol, float]) -> dict[sp.Symbol, sp.Rational]:
    """Each coordinate as the exact rational the float64 tensor holds."""
    return {REAL[s]: sp.Rational(Fraction(v).numerator, Fraction(v).denominator) for s, v in point.items()}


def _at(e: sp.Basic, values: dict[sp.Symbol, sp.Rational]) -> sp.Basic:
    """`e.xreplace(values)`, but a Piecewise or ITE only substitutes into what the point takes.

    SymPy's own substitution builds every branch and condition, and a condition such as
    `log(x) > 0` in `ITE(x > 0, log(x) > 0, False)` raises TypeError at x = -1 (I*pi > 0).
    """
    if isinstance(e, sp.Piecewise):
        for value, cond in e.args:
            if _at(cond, values) == sp.true:
                return _at(value, values)
        return sp.nan
    if isinstance(e, sp.ITE):
        test, then, other = e.args
        return _at(then if _at(test, values) == sp.true else other, values)
    if isinstance(e, (sp.And, sp.Or)):
        stop = sp.false if isinstance(e, sp.And) else sp.true
        for a in e.args:
            if _at(a, values) == stop:
                return stop
        return sp.true if stop == sp.false else sp.false
    if not e.args or not e.free_symbols:
        return e.xreplace(values)
    return e.func(*(_at(a, values) for a in e.args))


def exact_value(expr: sp.Basic, point: dict[sp.Symbol, float]) -> sp.Basic:
    """SymPy's value at the exact point, to 30 digits."""
    return _at(real(expr), exact_point(point)).evalf(30)


def _flatten_steps(d: sp.Basic) -> sp.Basic:
    """Replace the derivatives of floor and sign that SymPy leaves unevaluated by 0.

    `diff(floor(u), x)` stays `Derivative(floor(u), x)` (or a `Subs` of one); off the integers
    floor is locally constant, and the callers only evaluate it there (the point is checked to
    be away from every jump with `Enclosure.margin`).
    """
    flat = (sp.floor, sp.ceiling, sp.sign)

    def is_flat(e: sp.Basic) -> bool:
        return isinstance(e, (sp.Derivative, sp.Subs)) and any(
            isinstance(a, flat) for a in sp.preorder_traversal(e))

    # xreplace works top down: a whole Subs goes, not just the Derivative inside it
    return d.xreplace({e: sp.Integer(0) for e in d.atoms(sp.Derivative, sp.Subs) if is_flat(e)})


def exact_derivative(expr: sp.Basic, sym: sp.Symbol, point: dict[sp.Symbol, float]) -> tuple[sp.Basic, sp.Basic]:
    """(`sympy.diff(expr, sym)` over real symbols, its value at the exact point to 30 digits)."""
    d = _flatten_steps(sp.diff(real(expr), REAL[sym]))
    return d, _at(d, exact_point(point)).evalf(30)


# --------------------------------------------------------------------------- float enclosures

UNIT = mpmath.mpf(2) ** -53  # float64 unit roundoff
ULPS = 8  # each torch op is within a few ulps (libm: <= 1-2 ulp); generous but ~1e-15
TINY = mpmath.mpf(2) ** -1000  # absolute slack for underflow
INF = mpmath.inf


class Unbounded(Exception):
    """The enclosure would be unbounded (a pole, log of <= 0 within rounding): no claim."""


@dataclass
class Enclosure:
    """The interval [lo, hi] and the smallest margin to a threshold seen on the way."""

    lo: mpmath.mpf
    hi: mpmath.mpf
    margins: list[mpmath.mpf] = field(default_factory=list)

    @property
    def margin(self) -> mpmath.mpf:
        return min(self.margins, default=INF)


class _Encloser:
    """Interval evaluation that models float64 rounding (`rounding=True`) or none (a point
    evaluation at 60 digits, `rounding=False`, used for the distance to kinks)."""

    def __init__(self, point: dict[sp.Symbol, float], rounding: bool) -> None:
        self.values = {REAL[s]: mpmath.mpf(v) for s, v in point.items()}
        self.rounding = rounding
        self.margins: list[mpmath.mpf] = []

    def widen(self, lo, hi, rel, absolute=0):
        if not self.rounding:
            return lo, hi
        mag = max(abs(lo), abs(hi))
        slack = rel * UNIT * mag + absolute + TINY
        return lo - slack, hi + slack

    def threshold(self, lo, hi, t) -> None:
        """Record how far [lo, hi] is from the threshold t (<= 0 when it contains t)."""
        self.margins.append(max(lo - t, t - hi))

    def ev(self, e: sp.Basic):
        if e in self.values:
            v = self.values[e]
            return v, v
        if isinstance(e, sp.Integer):
            v = mpmath.mpf(int(e))
            return v, v
        if isinstance(e, (sp.Rational, sp.Float, sp.NumberSymbol)):
            # an atom; compound constants (log(2), tan(cos(1))) go through their operations,
            # since the program computes them in float64 too (`math.log(math.tan(...))`)
            v = mpmath.mpf(e.evalf(60))
            return self.widen(v, v, ULPS)
        args = e.args
        if isinstance(e, sp.Add):
            parts = [self.ev(a) for a in args]
            lo = mpmath.fsum(p[0] for p in parts)
            hi = mpmath.fsum(p[1] for p in parts)
            mags = mpmath.fsum(max(abs(p[0]), abs(p[1])) for p in parts)
            return self.widen(lo, hi, 0, ULPS * len(parts) * UNIT * mags) if self.rounding else (lo, hi)
        if isinstance(e, sp.Mul):
            lo, hi = self.ev(args[0])
            for a in args[1:]:
                lo, hi = _mul((lo, hi), self.ev(a))
            return self.widen(lo, hi, ULPS * len(args))
        if isinstance(e, sp.Pow):
            return self.power(e)
        if isinstance(e, (sp.exp, sp.atan, sp.tanh, sp.erf, sp.sinh)):
            # monotone increasing (sinh and cosh appear where SymPy rewrites for complex symbols)
            f = {sp.exp: mpmath.exp, sp.atan: mpmath.atan, sp.tanh: mpmath.tanh, sp.erf: mpmath.erf,
                 sp.sinh: mpmath.sinh}[e.func]
            lo, hi = self.ev(args[0])
            if max(abs(lo), abs(hi)) > 700:
                raise Unbounded(e)
            return self.widen(f(lo), f(hi), ULPS)
        if isinstance(e, (sg.sigmoid, sg.softplus, expm1)):
            # torch's fused ops, monotone increasing; softplus is its argument itself above 20
            # in torch (not log(1 + exp(x))), so its enclosure stops there
            f = {sg.sigmoid: lambda v: 1 / (1 + mpmath.exp(-v)), sg.softplus: lambda v: mpmath.log1p(mpmath.exp(v)),
                 expm1: mpmath.expm1}[e.func]
            lo, hi = self.ev(args[0])
            if max(abs(lo), abs(hi)) > 700 or (e.func is sg.softplus and hi >= 20):
                raise Unbounded(e)
            return self.widen(f(lo), f(hi), ULPS)
        if isinstance(e, (sg.logsumexp, sg.softmax, sg.log_softmax)):  # logaddexp is a logsumexp
            return self.normalised(e)
        if isinstance(e, sp.cosh):
            lo, hi = self.ev(args[0])
            if max(abs(lo), abs(hi)) > 700:
                raise Unbounded(e)
            bottom = mpmath.mpf(1) if lo <= 0 <= hi else min(mpmath.cosh(lo), mpmath.cosh(hi))
            return self.widen(bottom, max(mpmath.cosh(lo), mpmath.cosh(hi)), ULPS)
        if isinstance(e, sp.log):
            lo, hi = self.ev(args[0])
            if lo <= 0:
                raise Unbounded(e)
            return self.widen(mpmath.log(lo), mpmath.log(hi), ULPS)
        if isinstance(e, (sp.sin, sp.cos, sp.tan)):
            return self.trig(e.func, *self.ev(args[0]))
        if isinstance(e, sp.Abs):
            lo, hi = self.ev(args[0])
            self.threshold(lo, hi, 0)
            if lo >= 0:
                return lo, hi
            if hi <= 0:
                return -hi, -lo
            return mpmath.mpf(0), max(-lo, hi)
        if isinstance(e, sp.sign):
            lo, hi = self.ev(args[0])
            self.threshold(lo, hi, 0)
            return mpmath.mpf(mpmath.sign(lo)), mpmath.mpf(mpmath.sign(hi))
        if isinstance(e, sp.floor):
            lo, hi = self.ev(args[0])
            nearest = mpmath.nint((lo + hi) / 2)
            self.threshold(lo, hi, nearest)
            return mpmath.floor(lo), mpmath.floor(hi)
        if isinstance(e, (sp.Max, sp.Min)):
            parts = sorted((self.ev(a) for a in args), key=lambda p: p[1], reverse=isinstance(e, sp.Max))
            pick = max if isinstance(e, sp.Max) else min
            if isinstance(e, sp.Max):
                # the gap between the largest and the runner-up (a tie is a kink)
                self.margins.append(parts[0][0] - parts[1][1])
            else:
                self.margins.append(parts[1][0] - parts[0][1])
            return pick(p[0] for p in parts), pick(p[1] for p in parts)
        if isinstance(e, sp.Piecewise):
            return self.piecewise(e)
        raise NotImplementedError(f"no enclosure for {type(e).__name__}: {e}")

    def normalised(self, e: sp.Basic):
        """logsumexp, logaddexp, softmax and log_softmax: the exact range over the box of their
        arguments at its corners (each is monotone in each argument), widened by the error of
        torch's max-shifted kernels at any point of the box.

        torch computes, with m the largest value (d_j = a_j - m and t_j = exp(d_j) rounded):
        logsumexp m + log(sum t_j); logaddexp m + log1p(exp(-|a - b|)); softmax t_i * (1/sum t_j);
        log_softmax (a_i - m) - log(sum t_j). Each t_j is exp(a_j - m) within u/e (from the
        rounding of d_j: |d_j| exp(d_j) <= 1/e) plus ULPS ulps, and t_max = 1, so the sum S is
        within `eta` relative (n terms, n - 1 additions); log(S) then within 1.01 eta absolute
        (S >= 1) plus ULPS ulps of log(n). log_softmax's a_i - m is rounded once, and
        |a_i - m| <= |result|. softmax is relative: t_i carries u |d_i| from d_i's rounding
        (|d_i| capped at 800: beyond, t_i and the result are below TINY).
        """
        i = int(e.args[0]) if isinstance(e, (sg.softmax, sg.log_softmax)) else None
        boxes = [self.ev(a) for a in (e.args if i is None else e.args[1:])]
        n = len(boxes)
        eta = (n + (n + 1) * ULPS) * UNIT
        log_error = mpmath.mpf("1.1") * (eta + ULPS * UNIT * mpmath.log(n))  # of torch's log(S)
        if i is None:
            lo, hi = _logsumexp([b[0] for b in boxes]), _logsumexp([b[1] for b in boxes])
            if isinstance(e, sg.logaddexp):  # one exp and one log1p of at most 1
                return self.widen(lo, hi, ULPS, 3 * ULPS * UNIT)
            return self.widen(lo, hi, ULPS, log_error)
        # increasing in a_i, decreasing in the others
        low = [b[1] for b in boxes]
        high = [b[0] for b in boxes]
        low[i], high[i] = boxes[i][0], boxes[i][1]
        lo, hi = _log_softmax(low, i), _log_softmax(high, i)
        if isinstance(e, sg.log_softmax):
            return self.widen(lo, hi, ULPS, log_error)
        lo, hi = mpmath.exp(lo), mpmath.exp(hi)
        shift = min(max(max(b[1] for b in boxes) - boxes[i][0], 0), 800)  # the largest |d_i|
        return self.widen(lo, hi, mpmath.mpf("1.1") * (shift + eta / UNIT) + ULPS + 3)

    def power(self, e: sp.Pow):
        base, n = e.args
        lo, hi = self.ev(base)
        if n.is_Integer:
            n = int(n)
            if n < 0 and lo <= 0 <= hi:
                raise Unbounded(e)
            cands = [lo**n, hi**n]
            if n % 2 == 0 and lo < 0 < hi and n > 0:
                cands.append(mpmath.mpf(0))
            return self.widen(min(cands), max(cands), ULPS * (abs(n) + 2))
        if n.is_Rational:
            if lo < 0 or (lo == 0 and (self.rounding or n < 0)):
                raise Unbounded(e)
            p = mpmath.mpf(n.p) / n.q
            cands = [lo**p, hi**p]
            rel = ULPS * 2 + abs(p) * abs(mpmath.log(max(hi, mpmath.mpf(2)))) * 2
            return self.widen(min(cands), max(cands), rel)
        raise NotImplementedError(f"no enclosure for {e}")

    def trig(self, f, lo, hi):
        if f is sp.tan:
            # monotone between poles: the interval must not contain pi/2 + k pi
            k_lo = mpmath.floor((lo - mpmath.pi / 2) / mpmath.pi)
            k_hi = mpmath.floor((hi - mpmath.pi / 2) / mpmath.pi)
            if k_lo != k_hi:
                raise Unbounded(sp.tan)
            return self.widen(mpmath.tan(lo), mpmath.tan(hi), ULPS)
        g = mpmath.sin if f is sp.sin else mpmath.cos
        vals = [g(lo), g(hi)]
        # interior extrema: sin at pi/2 + k pi, cos at k pi
        shift = mpmath.pi / 2 if f is sp.sin else mpmath.mpf(0)
        k = mpmath.ceil((lo - shift) / mpmath.pi)
        while shift + k * mpmath.pi <= hi:
            vals.append(g(shift + k * mpmath.pi))
            k += 1
            if len(vals) > 6:
                break
        return self.widen(min(vals), max(vals), ULPS, ULPS * UNIT * max(abs(lo), abs(hi)))

    def condition(self, c: sp.Basic) -> bool | None:
        """True, False, or None when rounding could decide either way."""
        if c is sp.true:
            return True
        if c is sp.false:
            return False
        if isinstance(c, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan)):
            a_lo, a_hi = self.ev(c.lhs)
            b_lo, b_hi = self.ev(c.rhs)
            lo, hi = a_lo - b_hi, a_hi - b_lo
            self.threshold(lo, hi, 0)
            strict_gt = isinstance(c, sp.StrictGreaterThan)
            ge = isinstance(c, sp.GreaterThan)
            if isinstance(c, (sp.StrictGreaterThan, sp.GreaterThan)):
                if lo > 0 or (ge and lo >= 0):
                    return True
                if hi < 0 or (strict_gt and hi <= 0):
                    return False
                return None
            # lhs < rhs (or <=): the mirror image
            strict_lt = isinstance(c, sp.StrictLessThan)
            if hi < 0 or (not strict_lt and hi <= 0):
                return True
            if lo > 0 or (strict_lt and lo >= 0):
                return False
            return None
        if isinstance(c, sp.Not):
            inner = self.condition(c.args[0])
            return None if inner is None else not inner
        if isinstance(c, (sp.And, sp.Or)):
            parts = [self.condition(a) for a in c.args]
            decisive = isinstance(c, sp.Or)  # the value that settles it: True for Or, False for And
            if decisive in parts:
                return decisive
            return None if None in parts else not decisive
        if isinstance(c, sp.ITE):
            test = self.condition(c.args[0])
            if test is not None:
                return self.condition(c.args[1] if test else c.args[2])
            a, b = self.condition(c.args[1]), self.condition(c.args[2])
            return a if a == b else None
        raise NotImplementedError(f"no enclosure for the condition {c}")

    def piecewise(self, e: sp.Piecewise):
        parts = []
        for value, cond in e.args:
            holds = self.condition(cond)
            if holds is False:
                continue
            parts.append(self.ev(value))
            if holds is True:
                break
        else:
            raise Unbounded(e)  # no condition certainly holds: NaN is possible
        return min(p[0] for p in parts), max(p[1] for p in parts)


def _logsumexp(values):
    """log(exp(v_0) + ...), exactly (to the working precision): shifted by the largest."""
    m = max(values)
    return m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in values))


def _log_softmax(values, i):
    """v_i - log(exp(v_0) + ...), exactly: v_i - m first (v_i - logsumexp(v) would lose the
    result to the rounding of m + log(...) at m = 1e300)."""
    m = max(values)
    return (values[i] - m) - mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in values))


def _mul(a, b):
    prods = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return min(prods), max(prods)


def enclosure(expr: sp.Basic, point: dict[sp.Symbol, float], *, rounding: bool = True) -> Enclosure:
    """Every value float64 evaluation can give (`rounding=True`), or the exact value with the
    margins to all thresholds on the way (`rounding=False`). Raises `Unbounded`."""
    with mpmath.workdps(60):
        enc = _Encloser(point, rounding)
        lo, hi = enc.ev(real(expr))
        return Enclosure(lo, hi, enc.margins)


def finite(v: float) -> bool:
    return v is not None and math.isfinite(v)


# --------------------------------------------------------------------------- programs
#
# `Program`s in the inputs a (and b): assignments of the expressions above (x and y renamed to
# the variables in scope), Piecewise assignments on the program's own values, detach/item/no_grad
# inside assignments, For loops over a small Range and While loops with a bounded counter (alone,
# or beside a condition on a value that doubles: D2L's loop with a guard). The loops' updates are
# affine in the loop's own variable, so a few iterations stay small.

from sympy.codegen.ast import Assignment, CodeBlock, For, While  # noqa: E402

from symgrad.program.primitives import detach, item, no_grad  # noqa: E402

A_IN, B_IN = sp.Symbol("a"), sp.Symbol("b")
T, U, N, I = sp.Symbol("t"), sp.Symbol("u"), sp.Symbol("n"), sp.Symbol("i")
PRIMITIVE_FUNCTIONS = (detach, item, no_grad)
# Special coordinates: signed zeros, a subnormal, huge values, powers of two (where a doubling
# loop meets its threshold) and the integers and halves of the conditions.
SPECIAL_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 4.0, 0.25, 3.0,
                  5e-324, -5e-324, 1e300, -1e300, 1e-300, 3.4e38, 1e39)


def _small_expressions(max_leaves: int = 3, guarded: bool = True) -> st.SearchStrategy[sp.Basic]:
    return expressions(guarded=guarded, max_leaves=max_leaves)


@st.composite
def _in_scope(draw: st.DrawFn, scope: list[sp.Symbol], guarded: bool) -> sp.Basic:
    """A small expression over two variables of `scope` (x and y renamed)."""
    e = draw(_small_expressions(guarded=guarded))
    x_to, y_to = draw(st.sampled_from(scope)), draw(st.sampled_from(scope))
    return e.xreplace({X: x_to, Y: y_to})


@st.composite
def _statement(draw: st.DrawFn, scope: list[sp.Symbol], guarded: bool) -> tuple[list[sp.Basic], sp.Symbol]:
    """One statement (or two: a counter's start and its loop), and the variable it assigns."""
    target = draw(st.sampled_from([T, U] if U in scope else [T, U, T]))
    live = [s for s in scope if s in (T, U)] or [T]
    acc = draw(st.sampled_from(live))
    kind = draw(st.sampled_from(["assign", "piecewise", "primitive", "for", "while", "while-value", "wild"]))
    rel = draw(st.sampled_from((sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan)))
    thr = draw(st.sampled_from(THRESHOLDS))
    if kind == "assign":
        return [Assignment(target, draw(_in_scope(scope, guarded)))], target
    if kind == "wild":
        # the rest of the table, with no domain filter: asin(2), atan2(-0.0, -1), 0**(1/3), ...
        u, v = draw(_in_scope(scope, guarded)), draw(st.sampled_from(scope))
        return [Assignment(target, draw(st.sampled_from(WILD_BUILDERS))(u, v))], target
    if kind == "piecewise":
        on = draw(st.sampled_from(scope))
        first, other = draw(_in_scope(scope, guarded)), draw(_in_scope(scope, guarded))
        return [Assignment(target, sp.Piecewise((first, rel(on, thr)), (other, True)))], target
    if kind == "primitive":
        prim = draw(st.sampled_from(PRIMITIVE_FUNCTIONS))
        inner, outer = draw(_in_scope(scope, guarded)), draw(_in_scope(scope, guarded))
        how = draw(st.integers(0, 2))
        rhs = (outer * prim(inner), outer + prim(inner), prim(inner))[how]
        return [Assignment(target, rhs)], target
    # a loop: acc = c*acc + g, with g over the inputs (and the loop variable)
    c = draw(st.sampled_from((sp.Integer(2), sp.Integer(1), sp.Rational(1, 2), sp.Integer(-1))))
    g = draw(_in_scope([s for s in scope if s in (A_IN, B_IN)] + ([I] if kind == "for" else []), guarded))
    if draw(st.booleans()):
        g = draw(st.sampled_from(PRIMITIVE_FUNCTIONS))(g)
    update = Assignment(acc, c * acc + g)
    k = draw(st.integers(0, 3))
    if kind == "for":
        start = draw(st.integers(0, 1))
        return [For(I, sp.Range(start, start + k), CodeBlock(update))], acc
    counter = [Assignment(N, sp.Integer(0))]
    step = Assignment(N, N + 1)
    if kind == "while":
        return counter + [While(N < k, CodeBlock(update, step))], acc
    # D2L's doubling loop, with the counter as its guard: the threshold is met at powers of 2
    bound = draw(st.sampled_from((sp.Integer(1), sp.Integer(2), sp.Integer(8))))
    return counter + [While(sp.And(sp.Abs(acc) < bound, N < k + 2), CodeBlock(Assignment(acc, 2 * acc), step))], acc


WILD_BUILDERS = (
    lambda u, v: sp.asin(u), lambda u, v: sp.acos(v), lambda u, v: sp.atan2(u, v), lambda u, v: sp.atan2(v, -1),
    lambda u, v: sp.sinh(u), lambda u, v: sp.cosh(v), lambda u, v: sp.Heaviside(v), lambda u, v: u * sp.Heaviside(v),
    lambda u, v: sp.ceiling(u), lambda u, v: v * sp.sign(v), lambda u, v: v ** sp.Rational(1, 3),
    lambda u, v: v ** sp.Rational(3, 2), lambda u, v: 1 / v, lambda u, v: sp.sqrt(v), lambda u, v: sp.log(v),
    lambda u, v: sp.Max(u, v, 0), lambda u, v: sp.Min(v, -v), lambda u, v: sp.Abs(v) ** 3, lambda u, v: v ** v,
    lambda u, v: sp.sqrt(v**2 + u**2), lambda u, v: sp.tan(v), lambda u, v: sp.exp(sp.exp(v)),
)


@dataclass(frozen=True)
class ProgramCase:
    program: object  # a symgrad.Program
    point: dict[sp.Symbol, float]
    guarded: bool = True

    def __repr__(self) -> str:
        pt = ", ".join(f"{s}: {v!r}" for s, v in self.point.items())
        return f"ProgramCase(\n{self.program}\n, at={{{pt}}})"


def _condition_thresholds(stmts) -> list[float]:
    """The constants of the program's conditions, and their halves and doubles (a threshold on
    2*a or a/2 of an input is met there), as floats."""
    out: set[float] = set()
    for s in stmts:
        for rel in s.atoms(sp.Rel) if isinstance(s, sp.Basic) else ():
            for side in rel.args:
                if side.is_number and side.is_real and abs(side) <= 10:
                    v = float(side)
                    out |= {v, -v, v / 2, 2 * v}
    return sorted(out)


def _special_coordinate(thresholds: list[float], huge: bool = True) -> st.SearchStrategy[float]:
    specials = SPECIAL_FLOATS if huge else tuple(v for v in SPECIAL_FLOATS if abs(v) < 1e30)
    return st.one_of(st.floats(-4, 4, allow_nan=False, allow_infinity=False), st.sampled_from(specials),
                     st.sampled_from(thresholds or [0.0]), st.integers(-3, 3).map(float))


@st.composite
def programs(draw: st.DrawFn, *, guarded: bool = True, max_statements: int = 4, huge: bool = True) -> ProgramCase:
    """A `Program` in a (and maybe b) with assignments, Piecewise, detach/item/no_grad, For and
    While loops, at a point on its conditions' thresholds, a tie (b = a), a signed zero, a
    subnormal, a huge value, or a random one."""
    import symgrad as sg

    inputs = [A_IN, B_IN] if draw(st.booleans()) else [A_IN]
    body: list[sp.Basic] = [Assignment(T, draw(_in_scope(inputs, guarded)))]
    scope = inputs + [T]
    for _ in range(draw(st.integers(1, max_statements))):
        stmts, target = draw(_statement(scope, guarded))
        body += stmts
        if target not in scope:
            scope.append(target)
    output = draw(st.sampled_from([T] + ([T + U] if U in scope else [])))
    program = sg.Program(inputs, CodeBlock(*body), output)
    coordinate = _special_coordinate(_condition_thresholds(body), huge)
    point = {s: draw(coordinate) for s in inputs}
    if len(inputs) == 2 and draw(st.integers(0, 4)) == 0:
        point[B_IN] = point[A_IN]  # a tie of every Max(a, b), Min(a, b) and a > b
    return ProgramCase(program, point, guarded)


# --------------------------------------------------------------------------- matrices
#
# Matrix expressions on 2x2 (M, K) and 2x1 (w, v) MatrixSymbols: MatMul, MatAdd, Transpose,
# HadamardProduct, elementwise functions (smooth ones and the kinked Abs), scalar multiples;
# outputs are a Trace, a 1x1 product (v.T*M*w), one element, or a whole 2x2 / 2x1 matrix (its
# full Jacobian).

MAT_M, MAT_K = sp.MatrixSymbol("M", 2, 2), sp.MatrixSymbol("K", 2, 2)
VEC_W, VEC_V = sp.MatrixSymbol("w", 2, 1), sp.MatrixSymbol("v", 2, 1)
ELEMENTWISE = (sp.sin, sp.exp, sp.tanh, sp.Abs, sp.cos, sp.atan)


def _square(children: st.SearchStrategy[sp.Basic]) -> st.SearchStrategy[sp.Basic]:
    a, b = children, children
    scalar = st.sampled_from((sp.Integer(2), sp.Integer(-1), sp.Rational(1, 2)))
    return st.one_of(
        st.builds(lambda p, q: p * q, a, b),
        st.builds(lambda p, q: p + q, a, b),
        st.builds(lambda p: p.T, a),
        st.builds(sp.HadamardProduct, a, b),
        st.builds(lambda p, f: p.applyfunc(f), a, st.sampled_from(ELEMENTWISE)),
        st.builds(lambda c, p: c * p, scalar, a),
        st.builds(lambda p: sp.HadamardPower(p, 2), a),
        st.builds(lambda p: p**2, a),
        st.builds(lambda p: sp.Inverse(p + sp.Identity(2)), a),
    )


def square_matrices(max_leaves: int = 4) -> st.SearchStrategy[sp.Basic]:
    """2x2 matrix expressions in M and K."""
    return st.recursive(st.sampled_from((MAT_M, MAT_K, MAT_M)), _square, max_leaves=max_leaves)


@st.composite
def columns(draw: st.DrawFn) -> sp.Basic:
    """A 2x1 expression: w, v, M*w, w + v, w∘v, f(w)."""
    base = draw(st.sampled_from((VEC_W, VEC_V)))
    how = draw(st.integers(0, 4))
    if how == 1:
        return draw(square_matrices(3)) * base
    if how == 2:
        return base + draw(st.sampled_from((VEC_W, VEC_V)))
    if how == 3:
        return sp.HadamardProduct(base, draw(st.sampled_from((VEC_W, VEC_V))))
    if how == 4:
        return base.applyfunc(draw(st.sampled_from(ELEMENTWISE)))
    return base


@st.composite
def matrix_expressions(draw: st.DrawFn) -> sp.Basic:
    how = draw(st.integers(0, 6))
    if how == 6:
        return sp.Determinant(draw(square_matrices(3)))
    if how == 0:
        return sp.Trace(draw(square_matrices()))
    if how == 1:
        return draw(columns()).T * draw(columns())  # a 1x1 result
    if how == 2:
        return draw(st.sampled_from((VEC_W, VEC_V))).T * draw(square_matrices(3)) * draw(columns())
    if how == 3:
        i, j = draw(st.integers(0, 1)), draw(st.integers(0, 1))
        return draw(square_matrices())[i, j]
    if how == 4:
        return draw(square_matrices(3))  # a 2x2 output: the full Jacobian
    return draw(columns())  # a 2x1 output


@dataclass(frozen=True)
class MatrixCase:
    expr: sp.Basic
    point: dict[sp.MatrixSymbol, list[list[float]]]

    def __repr__(self) -> str:
        return f"MatrixCase({sp.sstr(self.expr)}, at={self.point!r})"


MATRIX_FLOATS = st.one_of(st.floats(-3, 3, allow_nan=False, allow_infinity=False),
                          st.sampled_from((0.0, -0.0, 1.0, -1.0, 0.5, 5e-324, 1e300, -1e300, 2.0)))


@st.composite
def matrix_cases(draw: st.DrawFn) -> MatrixCase:
    """A matrix expression and a value for each of its MatrixSymbols (entries random, signed
    zeros, a subnormal, huge; sometimes two entries equal, a tie of an elementwise Abs at 0)."""
    expr = draw(matrix_expressions())
    syms = sorted(expr.atoms(sp.MatrixSymbol), key=lambda m: m.name)
    point = {}
    for m in syms:
        point[m] = [[draw(MATRIX_FLOATS) for _ in range(m.cols)] for _ in range(m.rows)]
    return MatrixCase(expr, point)


# --------------------------------------------------------------------------- torch source
#
# The source text of a torch function, as a student writes it, for `sg.compare(fn, at=...)`
# (the source reader, the fidelity check, path mode). Grammar (every expression holds at least
# one tensor, so that each call is legal torch; compound parts are parenthesised):
#
#   scalar function  def f(x) | def f(x, y):  stmt{1..4}  return e
#   stmt   := v = e
#           | if cond: v = e [else: v = e]               (a new v is assigned in both branches)
#           | if cond: return e                          (an early return)
#           | k = 0; while cmp and|or-group k < n: v = upd; k += 1     (a Python counter beside)
#           | for i in range(n): v = upd                 (i in the update)
#   cond   := cmp | cmp and cmp | cmp or cmp | not cmp | (cmp or cmp) and k > c
#   cmp    := e' < | <= | > | >= c   (c a constant, also a kink's or a clamp's; e' a variable,
#             a small expression, or another variable: a tie at y = x)
#   e      := var | unary(e) | e op e | e op c | c op e | bin(e, e) | special(e)
#   unary  := torch.sin/cos/exp/log/sqrt/tanh/sigmoid/abs/relu/tan/floor/sign/expm1/log1p(e),
#             F.softplus(e), e.exp()/sin()/cos()/abs()/sqrt()/log()/tanh()/sigmoid()/relu(),
#             e ** 2 | 3 | -1 | 0.5, -e, e.detach(), torch.clamp(e, min=c[, max=c]), e.clamp(max=c)
#   op     := + - * /
#   bin    := torch.maximum, torch.minimum, torch.logaddexp, torch.where(e' > c, e, e | c)
#   special:= torch.exp(e.detach()), torch.exp(e * v.item()), torch.exp(e - v.detach())
#   upd    := v * 2 | v + e | v * e + k | torch.sin(v) + e | v / 2 - e      (in loops)
#
#   tensor function  def f(A[, B][, w]):  M = m; return r        A, B 2x2 and w 2x1
#   m      := A | B | m @ m | m + m | m - m | m * m | m / (m * m + 0.5) | c * m | m + c | m.T
#           | m ** 2 | torch.exp(m) | torch.sin(m) | torch.log(m) | torch.sqrt(m) | m.exp()
#   r      := M.sum() | M.mean() | torch.sum(M) | (w.T @ M @ w).sum() | (M @ w).sum()
#           | M.sum() * M.mean() | s(r)       with s a scalar unary above (relu, tanh, ...)
#
# Every scalar rule applies to a tensor element by element (relu, tanh, sigmoid, clamp, abs, floor,
# sign, softplus, detach, torch.where on a comparison, maximum/minimum); control flow on a tensor of
# rank >= 1 is still refused with a sentence (another issue), so tensor functions keep Python
# control flow to their reduced (rank 0) values.

TORCH_CONSTANTS = (0.0, 0.5, 1.0, 2.0, -1.0, 3.0, -0.5)
TORCH_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, 1e300, -1e300, 1e-300, -1e-300, 5e-324)
# float32's ends: the largest float, a tiny normal and the smallest subnormal
TORCH_FLOATS32 = TORCH_FLOATS[:9] + (3.4028234663852886e38, -3.4028234663852886e38, 1e-38, -1e-38, 1e-45)
_UNARY = ("torch.sin({})", "torch.cos({})", "torch.exp({})", "torch.log({})", "torch.sqrt({})",
          "torch.tanh({})", "torch.sigmoid({})", "torch.abs({})", "torch.relu({})", "torch.tan({})",
          "torch.floor({})", "torch.sign({})", "torch.expm1({})", "torch.log1p({})",
          "torch.nn.functional.softplus({})", "{}.exp()", "{}.sin()", "{}.cos()", "{}.abs()", "{}.sqrt()",
          "{}.log()", "{}.tanh()", "{}.sigmoid()", "{}.relu()", "({} ** 2)", "({} ** 3)", "({} ** -1)",
          "({} ** 0.5)", "(-{})", "{}.detach()")
_BINARY_OPS = ("+", "-", "*", "/")
_RELATIONS = ("<", "<=", ">", ">=")


def _num(c: float) -> str:
    return f"({c!r})" if c < 0 or (c == 0 and math.copysign(1, c) < 0) else repr(c)


class _Source:
    """The lines of one function being drawn, its constants (points on its thresholds) and names."""

    def __init__(self, where: bool = True) -> None:
        self.lines: list[str] = []
        self.constants: set[float] = set()
        self.fresh = 0
        self.where = where  # torch.where allowed (the reader refuses it beside Python control flow)

    def name(self) -> str:
        self.fresh += 1
        return f"v{self.fresh}"

    def const(self, draw: st.DrawFn, constants: tuple[float, ...] = TORCH_CONSTANTS) -> float:
        c = draw(st.sampled_from(constants))
        self.constants.add(c)
        return c


def _torch_expr(draw: st.DrawFn, src: _Source, scope: list[str], depth: int) -> str:
    """A scalar tensor expression over the tensor variables in `scope`."""
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(scope))
    sub = lambda: _torch_expr(draw, src, scope, depth - 1)
    kinds = ["unary", "unary", "unary", "op", "op", "const-op", "clamp", "bin", "special"]
    kind = draw(st.sampled_from(kinds + ["where"] if src.where else kinds))
    if kind == "unary":
        return draw(st.sampled_from(_UNARY)).format(sub())
    if kind == "op":
        return f"({sub()} {draw(st.sampled_from(_BINARY_OPS))} {sub()})"
    if kind == "const-op":
        op, c = draw(st.sampled_from(_BINARY_OPS)), _num(src.const(draw))
        return f"({sub()} {op} {c})" if draw(st.booleans()) else f"({c} {op} {sub()})"
    if kind == "clamp":
        lo, hi = src.const(draw), src.const(draw)
        how = draw(st.integers(0, 3))
        return (f"torch.clamp({sub()}, min={_num(lo)})", f"torch.clamp({sub()}, min={_num(lo)}, max={_num(hi)})",
                f"{sub()}.clamp(max={_num(hi)})", f"torch.clamp({sub()}, max={_num(hi)})")[how]
    if kind == "bin":
        fn = draw(st.sampled_from(("torch.maximum", "torch.minimum", "torch.logaddexp")))
        return f"{fn}({sub()}, {sub()})"
    if kind == "where":
        test = _comparison(draw, src, scope)
        other = sub() if draw(st.booleans()) else _num(src.const(draw))
        return f"torch.where({test}, {sub()}, {other})"
    how = draw(st.integers(0, 2))
    v = draw(st.sampled_from(scope))
    return (f"torch.exp({sub()}.detach())", f"torch.exp({sub()} * {v}.item())", f"torch.exp({sub()} - {v}.detach())")[how]


def _comparison(draw: st.DrawFn, src: _Source, scope: list[str]) -> str:
    left = draw(st.sampled_from(scope)) if draw(st.integers(0, 2)) else _torch_expr(draw, src, scope, 1)
    rel = draw(st.sampled_from(_RELATIONS))
    right = draw(st.sampled_from(scope)) if draw(st.integers(0, 4)) == 0 else _num(src.const(draw))
    return f"{left} {rel} {right}"


def _condition(draw: st.DrawFn, src: _Source, scope: list[str], counters: list[str]) -> str:
    a, b = _comparison(draw, src, scope), _comparison(draw, src, scope)
    how = draw(st.integers(0, 4 if counters else 3))
    if how == 4:
        return f"({a} or {b}) and {draw(st.sampled_from(counters))} > {draw(st.integers(0, 2))}"
    return (a, f"{a} and {b}", f"{a} or {b}", f"not {a}")[how]


def _update(draw: st.DrawFn, src: _Source, v: str, scope: list[str], counter: str) -> str:
    e = _torch_expr(draw, src, scope, 1)
    return draw(st.sampled_from((f"{v} * 2", f"{v} + {e}", f"{v} * {e} + {counter}", f"torch.sin({v}) + {e}",
                                 f"{v} / 2 - {e}")))


def _torch_statement(draw: st.DrawFn, src: _Source, scope: list[str], counters: list[str]) -> None:
    kind = draw(st.sampled_from(["assign", "assign", "if", "if-else", "return", "while", "for"]))
    pad = "    "
    if kind == "assign":
        v = src.name()
        src.lines.append(f"{pad}{v} = {_torch_expr(draw, src, scope, 2)}")
        scope.append(v)
    elif kind in ("if", "if-else"):
        cond = _condition(draw, src, scope, counters)
        if kind == "if":  # an existing variable changed in one branch only
            v = draw(st.sampled_from(scope))
            src.lines += [f"{pad}if {cond}:", f"{pad}    {v} = {_torch_expr(draw, src, scope, 2)}"]
        else:
            v = src.name()
            src.lines += [f"{pad}if {cond}:", f"{pad}    {v} = {_torch_expr(draw, src, scope, 2)}",
                          f"{pad}else:", f"{pad}    {v} = {_torch_expr(draw, src, scope, 2)}"]
            scope.append(v)
    elif kind == "return":
        src.lines += [f"{pad}if {_condition(draw, src, scope, counters)}:",
                      f"{pad}    return {_torch_expr(draw, src, scope, 2)}"]
    elif kind == "while":
        k = f"k{len(counters)}"
        v = draw(st.sampled_from(scope))
        test = _comparison(draw, src, [v])
        if draw(st.booleans()):
            test = f"({test} {draw(st.sampled_from(('and', 'or')))} {_comparison(draw, src, scope)})"
        n = draw(st.integers(0, 3))
        guard = f"{test} and {k} < {n}" if draw(st.booleans()) else f"{k} < {n} and {test}"
        src.lines += [f"{pad}{k} = 0", f"{pad}while {guard}:", f"{pad}    {v} = {_update(draw, src, v, scope, k)}",
                      f"{pad}    {k} += 1"]
        counters.append(k)
    else:
        v = draw(st.sampled_from(scope))
        n = draw(st.integers(0, 3))
        src.lines += [f"{pad}for i in range({n}):", f"{pad}    {v} = {_update(draw, src, v, scope, 'i')}"]


@dataclass(frozen=True)
class SourceCase:
    """A torch function's source (`def f(...)`), the point (parameter name -> a Python float, or a
    tensor in `dtype`), and the dtype torch computes in."""
    source: str
    point: dict[str, object]
    dtype: str

    def __repr__(self) -> str:
        return f"SourceCase(dtype={self.dtype!r}, at={self.point!r}, source=\n{self.source})"


def _torch_coordinate(src: _Source, dtype: str) -> st.SearchStrategy[float]:
    """Kinks and thresholds (0, the function's constants, their negatives, halves and doubles),
    the ends of the dtype's range, a subnormal, signed zeros, and random values."""
    near = sorted({c * m for c in src.constants for m in (1.0, -1.0, 0.5, 2.0)} | {0.0})
    ends = TORCH_FLOATS if dtype == "float64" else TORCH_FLOATS32
    return st.one_of(st.floats(-4, 4, allow_nan=False, allow_infinity=False), st.sampled_from(ends),
                     st.sampled_from(near), st.integers(-3, 3).map(float))


@st.composite
def torch_scalar_functions(draw: st.DrawFn, *, max_statements: int = 4) -> SourceCase:
    """A scalar torch function of x (and y) by the grammar above, at a point on its thresholds."""
    params = ["x", "y"] if draw(st.booleans()) else ["x"]
    # straight-line code (torch.where allowed), control flow (no torch.where: the reader refuses
    # the two together, with a sentence), or both now and then
    style = draw(st.sampled_from(["straight", "control", "control", "control", "mixed"]))
    src = _Source(where=style != "control")
    scope, counters = list(params), []
    for _ in range(draw(st.integers(0, max_statements))):
        if style == "straight":
            v = src.name()
            src.lines.append(f"    {v} = {_torch_expr(draw, src, scope, 2)}")
            scope.append(v)
        else:
            _torch_statement(draw, src, scope, counters)
    result = _torch_expr(draw, src, scope, 2)
    if draw(st.integers(0, 2)) and scope[-1] not in params:
        result = scope[-1] if draw(st.booleans()) else f"({result} + {scope[-1]})"
    body = "\n".join(src.lines + [f"    return {result}"])
    source = f"import torch\n\n\ndef f({', '.join(params)}):\n{body}\n"
    dtype = draw(st.sampled_from(["float64", "float64", "float32"]))
    coordinate = _torch_coordinate(src, dtype)
    point: dict[str, object] = {p: draw(coordinate) for p in params}
    if len(params) == 2 and draw(st.integers(0, 4)) == 0:
        point["y"] = point["x"]  # a tie of every maximum(x, y) and x > y
    return SourceCase(source, point, dtype)


_MATRIX_UNARY = ("torch.exp({})", "torch.sin({})", "torch.log({})", "torch.sqrt({})", "{}.exp()", "{}.sin()",
                 "{}.T", "({} ** 2)",
                 # scalar rules applied to every element (issue 20)
                 "torch.relu({})", "{}.relu()", "torch.tanh({})", "torch.sigmoid({})", "torch.abs({})",
                 "{}.clamp(min=0.0)", "torch.clamp({}, -0.5, 2.0)", "torch.nn.functional.softplus({})",
                 "torch.cos({})", "{}.detach()", "torch.floor({})", "torch.sign({})")




def _matrix_expr(draw: st.DrawFn, src: _Source, leaves: list[str], depth: int) -> str:
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from(leaves))
    sub = lambda: _matrix_expr(draw, src, leaves, depth - 1)
    kind = draw(st.sampled_from(["unary", "op", "op", "matmul", "scale", "shift", "divide", "where", "bin"]))
    if kind == "unary":
        return draw(st.sampled_from(_MATRIX_UNARY)).format(sub())
    if kind == "where":  # a condition per element; the threshold a constant the points sit on
        a = sub()
        rel, c = draw(st.sampled_from(_RELATIONS)), _num(src.const(draw))
        return f"torch.where({a} {rel} {c}, {sub()}, {sub() if draw(st.booleans()) else c})"
    if kind == "bin":
        return f"{draw(st.sampled_from(('torch.maximum', 'torch.minimum')))}({sub()}, {sub()})"
    if kind == "op":
        return f"({sub()} {draw(st.sampled_from(('+', '-', '*')))} {sub()})"
    if kind == "matmul":
        return f"({sub()} @ {sub()})"
    if kind == "scale":
        return f"({_num(src.const(draw, TORCH_CONSTANTS))} * {sub()})"
    if kind == "shift":
        return f"({sub()} + {_num(src.const(draw, TORCH_CONSTANTS))})"
    m = sub()
    return f"({sub()} / ({m} * {m} + 0.5))"


@st.composite
def torch_matrix_functions(draw: st.DrawFn) -> SourceCase:
    """A function of 2x2 tensors A (and B) and maybe a 2x1 column w, reduced to a scalar by the
    grammar above, at entries on kinks, signed zeros, huge and tiny values, or random ones."""
    params = ["A"] + (["B"] if draw(st.booleans()) else [])
    column = draw(st.booleans())
    params += ["w"] if column else []
    src = _Source()
    m = _matrix_expr(draw, src, params[:2] if len(params) > 1 and params[1] == "B" else ["A"], 3)
    reductions = ["M.sum()", "M.mean()", "torch.sum(M)", "M.sum() * M.mean()"]
    if column:
        reductions += ["(w.T @ M @ w).sum()", "(M @ w).sum()"]
    result = draw(st.sampled_from(reductions))
    if draw(st.integers(0, 2)) == 0:
        result = draw(st.sampled_from(_UNARY)).format(f"({result})")
    source = f"import torch\n\n\ndef f({', '.join(params)}):\n    M = {m}\n    return {result}\n"
    dtype = draw(st.sampled_from(["float64", "float64", "float32"]))
    ends = TORCH_FLOATS if dtype == "float64" else TORCH_FLOATS32
    entry = st.one_of(st.floats(-3, 3, allow_nan=False, allow_infinity=False), st.sampled_from(ends))
    point: dict[str, object] = {}
    for p in params:
        rows = 2
        cols = 1 if p == "w" else 2
        point[p] = [[draw(entry) for _ in range(cols)] for _ in range(rows)]
    return SourceCase(source, point, dtype)
