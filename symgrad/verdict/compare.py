"""Put the three derivatives side by side and name the cause of every disagreement.

`compare()` returns records (`Comparison`, `Entry`); `report.py` renders them. The split of
DESIGN.md section 1 drives the classification: symbolic vs executed differ only through the
program's structure (domain, graph break, detach, control flow, jump, kink); executed vs autograd
only through floating point (NaN trap, overflow, rounding). Each cause is found from the records
(the executed path, its decisions, the rule table), never by matching strings.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Final, Literal

import numpy as np
import sympy as sp
import torch

from ..program import exact as ex
from ..sides import autograd as ag
from ..program.deep import deep
from ..base.causes import EXPLANATIONS, HINTS, Cause
from ..base.rendering import render
from ..frontends.front import expression, is_torch_function
from ..frontends.source import SourceSpan
from ..frontends.trace import Reading, point_by_name, read_function
from ..program.program import Program
from ..base.errors import ORDER, POINT_TOO_LARGE, PRECISION, PrecisionError
from ..base.errors import RTOL as RTOL_MESSAGE
from ..base.errors import (OPTION, POINT_NOT_FINITE, POINT_NOT_NUMBER, RANK_ONE, SHAPE, UNBOUND, OptionError, PointError,
                     ShapeError, UnboundSymbolError)
from ..sides.executed import DEFAULT_MAX_ITERATIONS, Decision, Path, PathStep, as_expression, domain_violation, run
from ..program.primitives import strip
from ..program.rules import exact_eval, op_rule
from ..sides.ir import LoweredProgram
from ..sides.lowering import DTYPES, RTOL, wrt_indices, check_options, lower, lower_with_inputs
from ..program.program import node_text, sstr
from ..program.ops import OPS
from ..sides.symbolic import SymbolicSide, departs, formula, same, symbolic_sides
from ..sides.backward import BackwardPass, BackwardStep, Derivation, Parting, backward_pass

UNUSED = ("{symbol} does not reach the output (the function does not read it, or SymPy simplified it "
          "away, as in x + y - y): its derivative is exactly 0, and all three sides agree. In torch "
          "the output's graph never reaches {symbol}: `torch.autograd.grad` raises unless you pass "
          "`allow_unused=True` (then it returns None), and `{symbol}.grad` stays None after "
          "`backward()`; symgrad reports that as 0.")
# The domain of the argument an op needs for a derivative, in the hint's words.
DOMAIN_WORDS = {
    "log": "x > 0", "sqrt": "x > 0 for the derivative", "pow_frac": "x > 0 for the derivative",
    "pow": "x > 0", "div": "a nonzero denominator", "pow_int": "x != 0", "asin": "-1 < x < 1 for the derivative",
    "acos": "-1 < x < 1 for the derivative", "atan2": "(x, y) != (0, 0)", "tan": "x != pi/2 + k*pi",
}
DIGITS = {"float64": 15.95, "float32": 7.22}
FINFO = {name: torch.finfo(dt) for name, dt in DTYPES.items()}
SMALLEST = {name: float(fi.smallest_normal * fi.eps) for name, fi in FINFO.items()}  # the smallest subnormal
# Every reported value and every comparison is certain to this many bits (about 30 digits).
TARGET_BITS = 100
# Reruns at a precision raised by the bits the balls lost: usually one; more only where a ball
# around 0 could not say how many bits it lost (its midpoint is itself uncertain).
MAX_RERUNS = 3


@dataclass(frozen=True)
class Entry:
    """One compared component: output `output` with respect to input `wrt`."""

    output: int | tuple[int, ...]
    wrt: sp.Basic
    grad_symbolic: sp.Basic | None
    one_sided: tuple[sp.Basic, sp.Basic] | None
    grad_executed: sp.Basic | None
    grad_autograd: float | None
    cause: Cause
    also: tuple[Cause, ...] = ()
    node: str | None = None
    line: int | None = None
    explanation: str = ""
    hint: str = ""
    autograd_error: str | None = None
    formula_of: Callable[[], sp.Basic | None] | None = field(default=None, repr=False, compare=False)
    # The user's own line (a `symgrad.source.SourceSpan`) for a function read by `trace`, else None.
    source: Any = None

    @property
    def ok(self) -> bool:
        return self.cause is Cause.AGREE

    def __repr__(self) -> str:
        def text(v: Any) -> str:
            return repr(v) if v is None or isinstance(v, (float, int, Cause)) else sstr(v)

        parts = ", ".join(f"{name}={text(getattr(self, name))}" for name in
                          ("output", "wrt", "grad_symbolic", "one_sided", "grad_executed", "grad_autograd", "cause"))
        return f"Entry({parts})"

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-safe data: exact numbers as `{"exact": "1/2", "float": 0.5}`,
        autograd's float with NaN and infinities as the strings "nan", "inf", "-inf", and None
        where there is no value (see `symgrad.show.data`)."""
        return render("entry.dict", self)

    @property
    def derivative(self) -> sp.Basic | None:
        """The derivative as SymPy writes it (`X.T*(X*w - y)`), computed when first asked for;
        None for programs, matrix-valued outputs and functions too large for `sympy.diff`."""
        return self.formula_of() if self.formula_of is not None else None


@dataclass(frozen=True)
class Comparison:
    """All entries for one function at one point and dtype."""

    entries: tuple[Entry, ...]
    lowered: LoweredProgram
    point: dict[sp.Basic, sp.Basic]  # user symbol -> exact value the tensor holds
    dtype: str
    rtol: float
    value_exact: sp.Basic | None
    value_autograd: float | None
    executed_path: Path
    branches: str
    source: str
    vjp: bool = False  # the entries are a vector-Jacobian product (v= was given)
    order: int = 1  # 2: the entries are the Hessian, entry.output = i for d/dx_j (df/dx_i)
    exact_bits: int = ex.START_PREC  # the working precision of the exact sides' balls
    title: str = ""  # how reports name the function, where not by its expression (a traced torch function)
    # Work done on first request (the backward pass); shared with the classifier that made it.
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def backward(self) -> tuple[BackwardStep, ...]:
        """The backward pass, output first: each step's local derivatives and its adjoint, exact
        and as torch computed it (one extra torch run, on first access)."""
        return self._backward_pass().records

    @property
    def parting(self) -> Parting | None:
        """The first record of `backward` whose torch adjoint is off beyond the tolerance, and why."""
        return self._backward_pass().parting

    def derivation(self) -> Derivation:
        """The backward pass written out as on paper; `str()` of it is the text."""
        bp = self._backward_pass()
        return Derivation(render("derivation.headline", self), "", self.dtype, self.executed_path.steps[self.executed_path.output].name,
                          bp.records, bp.parting, bp.error, self.vjp, ex.is_mat(self.executed_path.value),
                          render("derivation.notes", self))

    def _backward_pass(self) -> BackwardPass:
        hit = self._cache.get("backward")
        if hit is None:
            hit = _backward_of(self.lowered, self.executed_path, self.dtype, self.rtol, self.exact_bits,
                               self._cache.get("seed"))
            self._cache["backward"] = hit
        return hit

    @property
    def cause(self) -> Cause:
        return min((e.cause for e in self.entries), key=lambda c: c.severity, default=Cause.AGREE)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    def __str__(self) -> str:
        return deep(render)("comparison.text", self)

    def __repr__(self) -> str:
        source = render("comparison.function", self)
        source = source if len(source) <= 80 else source[:77] + "..."
        at = render("comparison.point", self)
        at = at if len(at) <= 80 else at[:77] + "..."
        return (f"<Comparison of {source!r} at {at} ({self.dtype}): {self.cause.id}, "
                f"{len(self.entries)} {'entry' if len(self.entries) == 1 else 'entries'}>")

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-safe data (`json.dumps(c.to_dict(), allow_nan=False)` works):
        the settings, the point, the cause, the values, every entry (`Entry.to_dict()`) and the
        generated program. Exact numbers are `{"exact": str, "float": float}`; non-finite
        floats are the strings "nan", "inf", "-inf"; None means no value."""
        return render("comparison.dict", self)

    def report(self, *, full: bool = False) -> str:
        """The terminal report (what `str()` gives). Over 20 entries it counts the entries by
        cause and shows the worst; `full=True` shows every entry."""
        return deep(render)("comparison.text", self, full)

    def to_markdown(self) -> str:
        return deep(render)("comparison.markdown", self)

    def _repr_html_(self) -> str:
        return deep(render)("comparison.html", self)


# --------------------------------------------------------------------------- the point


def _value_of(sym: sp.Basic, raw: Any) -> float:
    if isinstance(raw, bool) or isinstance(raw, (str, bytes)):
        raise PointError(POINT_NOT_NUMBER.format(symbol=sym, value=raw))
    if isinstance(raw, torch.Tensor) or isinstance(raw, np.ndarray):
        if raw.ndim != 0 and raw.size != 1 if isinstance(raw, np.ndarray) else raw.numel() != 1:
            raise PointError(POINT_NOT_NUMBER.format(symbol=sym, value=raw))
        raw = raw.item()
    if isinstance(raw, sp.Basic):
        if not raw.is_number or not raw.is_real:
            raise PointError(POINT_NOT_NUMBER.format(symbol=sym, value=raw))
        raw = float(raw)
    if isinstance(raw, np.generic):
        raw = raw.item()
    if not isinstance(raw, (int, float, Fraction)):
        raise PointError(POINT_NOT_NUMBER.format(symbol=sym, value=raw))
    try:
        value = float(raw)
    except OverflowError:
        raise PointError(POINT_TOO_LARGE.format(symbol=sym, digits=len(str(abs(int(raw)))))) from None
    if not math.isfinite(value):
        raise PointError(POINT_NOT_FINITE.format(symbol=sym, value=value))
    return value


def _matrix_of(sym: sp.MatrixSymbol, raw: Any, dtype: str) -> np.ndarray:
    """A matrix value of exactly the declared shape, rounded to the dtype."""
    declared = (int(sym.rows), int(sym.cols))
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    if isinstance(raw, sp.MatrixBase):
        raw = [[float(v) for v in row] for row in raw.tolist()]
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise PointError(POINT_NOT_NUMBER.format(symbol=sym, value=raw)) from err
    if arr.shape != declared:
        if arr.ndim == 1 and declared[1] == 1 and arr.shape[0] == declared[0]:
            raise ShapeError(RANK_ONE.format(symbol=sym, declared=declared, given=arr.shape))
        raise ShapeError(SHAPE.format(symbol=sym, declared=declared, given=arr.shape))
    arr = torch.tensor(arr, dtype=DTYPES[dtype]).to(torch.float64).numpy()
    if not np.all(np.isfinite(arr)):
        raise PointError(POINT_NOT_FINITE.format(symbol=sym, value="a matrix with NaN or inf entries"))
    return arr


def _point(lowered: LoweredProgram, at: Mapping[Any, Any], dtype: str) -> list[Any]:
    if not isinstance(at, Mapping):
        raise PointError(
            f"`at` is {at!r}, not a mapping from symbols to values.\n"
            "Fix: pass a dict, e.g. `at={x: 0.5}`."
        )
    by_name: dict[str, Any] = {}
    for key, raw in at.items():
        name = key.name if isinstance(key, (sp.Symbol, sp.MatrixSymbol)) else str(key)
        by_name[name] = raw
    known = {s.name for s in lowered.symbols}
    extra = sorted(set(by_name) - known)
    missing = sorted(known - set(by_name))
    if extra and missing:
        # An extra name beside a missing one is probably a typo of it; an extra name alone is
        # an input the function does not read (`x + y - y` is `x`): compare() accepts it.
        raise PointError(
            f"`at` gives a value for {', '.join(extra)}, which the function does not use "
            f"(its inputs: {', '.join(sorted(known)) or 'none'})"
            + (f", and none for {', '.join(missing)}" if missing else "") + ".\n"
            "A typo in a symbol's name would otherwise go unnoticed.\n"
            "Fix: check the symbol's name, and give a value for every input."
        )
    values = []
    given = ("only " + ", ".join(sorted(by_name))) if by_name else "no values"
    for sym in lowered.symbols:
        if sym.name not in by_name:
            raise UnboundSymbolError(UNBOUND.format(symbol=sym, given=given))
        if isinstance(sym, sp.MatrixSymbol):
            values.append(_matrix_of(sym, by_name[sym.name], dtype))
            continue
        v = _value_of(sym, by_name[sym.name])
        # The point is the exact binary value the tensor of this dtype holds.
        values.append(torch.tensor(v, dtype=DTYPES[dtype]).item())
        if not math.isfinite(values[-1]):
            raise PointError(POINT_NOT_FINITE.format(symbol=sym, value=f"{v} (inf in {dtype})"))
    return values


def _with_unused_inputs(lowered: LoweredProgram, f: Any, at: Any, branches: str, dtype: str) -> LoweredProgram:
    """An expression lowered with the point's extra symbols as inputs it does not read."""
    if not isinstance(at, Mapping) or lowered.normalized.is_program:
        return lowered
    known = {s.name for s in lowered.symbols}
    # An unused matrix input (a torch function's tensor that does not reach the output) stays a matrix.
    extra = [k if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else _unused_input(k, at[k]) for k in at
             if isinstance(k, (sp.Symbol, sp.MatrixSymbol, str))
             and (k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else k) not in known]
    named = {k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else str(k) for k in at}
    if not extra or not known <= named:
        return lowered  # nothing extra, or a name is missing too: _point says which
    return lower_with_inputs(f, tuple(sorted(extra, key=lambda s: s.name)), branches=branches, dtype=dtype)  # type: ignore[arg-type]


def _unused_input(name: str, value: Any) -> sp.Basic:
    """The input a name of the point stands for, where the function does not read it: a matrix
    of the value's shape for a 2-D value, otherwise a real symbol."""
    try:
        dims = np.shape(value.detach().numpy() if isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError):
        dims = ()
    return sp.MatrixSymbol(name, *dims) if len(dims) == 2 else sp.Symbol(name)


# --------------------------------------------------------------------------- exact sides


@dataclass(frozen=True)
class _Exact:
    path: Path
    sym: dict[tuple[int, int], SymbolicSide]  # (output element, component) -> symbolic side
    exe: dict[tuple[int, int], ex.Exact]  # (output element, component) -> executed derivative
    bits: int = ex.START_PREC  # the working precision the balls were computed at


Component = tuple[int, tuple[int, int] | None]  # (input index, element of a matrix input)


def _components(lowered: LoweredProgram, point: dict[str, Any], wrt: Sequence[int]) -> list[Component]:
    """The inputs differentiated with respect to: scalars, and matrices element by element."""
    out: list[Component] = []
    for k in wrt:
        v = point[lowered.inputs[k]]
        if ex.is_mat(v):
            out.extend((k, idx) for idx in np.ndindex(*v.shape))
        else:
            out.append((k, None))
    return out


# The most entries one comparison holds: each is an exact derivative on two sides and torch's.
MAX_ENTRIES = 200_000


def _check_entries(lowered: LoweredProgram, comps: Sequence[Component], v: Any) -> None:
    """Refuse a Jacobian too large to compare entry by entry, before any work."""
    shape = getattr(lowered.normalized.output, "shape", None)
    outputs = int(shape[0]) * int(shape[1]) if (shape is not None and v is None) else 1
    count = outputs * len(comps)
    if count > MAX_ENTRIES:
        raise ShapeError(
            f"This comparison would have {count:,} entries ({outputs:,} output elements x {len(comps):,} input "
            f"elements), more than MAX_ENTRIES = {MAX_ENTRIES:,}.\n"
            "Every entry is an exact derivative on two sides beside torch's, so a full Jacobian of this size "
            "would take hours before showing anything.\n"
            "Fix: pass v= (a vector-Jacobian product, what y.backward(gradient=v) computes: one entry per input "
            "element), differentiate with respect to fewer inputs (wrt=), or compare a scalar loss of the output."
        )


def _seeds(value: Any, v: Any) -> list[Any]:
    """One seed per compared output: None for a scalar output, a one-hot matrix per element of
    a matrix output, or the user's vector for a vector-Jacobian product."""
    if v is not None:
        return [v]
    if not ex.is_mat(value):
        return [None]
    seeds = []
    for idx in np.ndindex(*value.shape):
        seed = ex.full(value.shape, ex.ZERO)
        seed[idx] = ex.ONE
        seeds.append(seed)
    return seeds


def _exact_sides(lowered: LoweredProgram, point: dict[str, Any], comps: Sequence[Component], v: Any,
                 max_iterations: int) -> _Exact:
    """Path, executed and symbolic derivatives in ball arithmetic. The first run is at
    `START_PREC` bits; if a reported value certifies fewer than `TARGET_BITS` bits, or a
    comparison could not be decided, the balls say how many bits were lost and one rerun at a
    precision raised by that much follows (DESIGN.md section 4). A comparison still undecided
    then is a tie to the working resolution."""
    bits = ex.START_PREC
    rerun = 0
    while True:
        with ex.working_precision(bits):
            ex.reset_undecided()
            current = _exact_at(lowered, point, comps, v, max_iterations, bits)
            numbers = _numbers(current)
            lost = max((ex.lost_bits(x) for x in numbers), default=0)
            undecided = ex.undecided()
            # Values still uncertain: a ball wider than the working resolution allows, or one
            # that certifies fewer bits than reported. A tiny ball around 0 (sin(pi)) is not one.
            short = [x for x in numbers if ex.is_wide(x) or (not ex.is_zero_ball(x) and ex.lost_bits(x) > bits - TARGET_BITS)]
            zeros = any(ex.is_zero_ball(x) for x in numbers)
        if not short and ((not zeros and not undecided) or rerun):
            return current
        needed = bits + max(lost, 32 if undecided else 0) + TARGET_BITS // 2
        if rerun >= MAX_RERUNS or needed > ex.MAX_PREC:
            if not short:
                return current  # only ties and zeros at the working resolution are left
            raise PrecisionError(PRECISION.format(bits=bits, lost=f"{lost:,}" if lost < 10**9 else "more than 10**9",
                                                  target=TARGET_BITS, needed=f"{needed:,}" if needed < 10**9 else "more than 10**9"))
        rerun += 1
        bits = needed


def _exact_at(lowered: LoweredProgram, point: dict[str, Any], comps: Sequence[Component], v: Any,
              max_iterations: int, bits: int) -> _Exact:
    path = run(lowered, point, max_iterations=max_iterations)
    sym: dict[tuple[int, int], SymbolicSide] = {}
    exe: dict[tuple[int, int], ex.Exact] = {}
    for o, seed in enumerate(_seeds(path.value, v)):
        grads = path.gradient("executed", seed)
        sides = symbolic_sides(lowered, path, point, comps, max_iterations, seed)
        for c, (k, idx) in enumerate(comps):
            g = grads[k]
            exe[(o, c)] = g[idx] if idx is not None else g
            sym[(o, c)] = sides[c]
    return _Exact(path, sym, exe, bits)


def _numbers(e: _Exact) -> list[ex.Exact]:
    """The values a comparison reports or decides with."""
    out: list[ex.Exact] = [*ex.elements(e.path.value), *e.exe.values()]
    for s in e.sym.values():
        if s.grad is not None:
            out.append(s.grad)
        out.extend(s.one_sided or ())
        for side in (s.left, s.right):
            if side is not None:
                out.extend((*ex.elements(side.value), side.derivative))
    return [x for x in out if x is not None]


# --------------------------------------------------------------------------- classification


def _finite(v: Any) -> bool:
    return all(ex.is_finite(x) for x in ex.elements(v))


def _biggest(v: Any) -> Any:
    """The largest magnitude among a value's elements (a ball's midpoint)."""
    return max((abs(ex.to_real(x)).mid() for x in ex.elements(v)), default=ex.to_real(ex.ZERO))


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    if ex.is_mat(v):
        return "[" + "; ".join(", ".join(_fmt(x) for x in row) for row in v) + "]"
    if isinstance(v, float):
        return repr(v)
    if ex.is_rational(v) and v.height_bits() <= 40:
        return str(v)
    return ex.nstr(v, 17)


def _user(lowered: LoweredProgram, node: sp.Basic) -> str:
    return node_text(node, lowered.normalized.user_symbols) if isinstance(node, sp.Basic) else str(node)


@deep
def _backward_of(lowered: LoweredProgram, path: Path, dtype: str, rtol: float, bits: int, seed: Any) -> BackwardPass:
    with ex.working_precision(bits):
        return backward_pass(lowered, path, dtype, rtol, DIGITS[dtype], seed)


@dataclass
class _Finding:
    cause: Cause
    node: sp.Basic | None
    line: int | None
    fields: dict[str, Any] = field(default_factory=dict)
    hint_extra: str = ""


class _Classifier:
    def __init__(self, cmp_lowered: LoweredProgram, exact: _Exact, dtype: str, rtol: float,
                 run_: ag.AutogradRun, seed: Any = None) -> None:
        self.lowered = cmp_lowered
        self.exact = exact
        self.path = exact.path
        self.dtype = dtype
        self.rtol = rtol
        self.run = run_
        self.math_adj = self.path.adjoints("math", seed)
        read = {p for st in self.path.steps for p in st.parents}
        self.unread = {i for i in self.path.inputs if i not in read}  # inputs no step reads
        self.exe_adj = self.path.adjoints("executed", seed)
        self.seed = seed
        self.cache: dict[str, Any] | None = None  # the comparison's, when its backward pass has this seed

    def backward_parting(self) -> Parting | None:
        """Where torch's backward pass first parts from the exact one (computed once, shared
        with `Comparison.backward` when the seeds agree)."""
        hit = self.cache.get("backward") if self.cache is not None else None
        if hit is None:
            hit = _backward_of(self.lowered, self.path, self.dtype, self.rtol, ex.prec(), self.seed)
            if self.cache is not None:
                self.cache["backward"] = hit
        return hit.parting

    def node(self, n: sp.Basic | None) -> str:
        return _user(self.lowered, n) if n is not None else "the output"

    # -- structure: symbolic vs executed

    def tie_findings(self, side: SymbolicSide) -> list[_Finding]:
        found = []
        for d in self.path.ties:
            cause = self.tie_kind(d, side.kind)
            found.append(_Finding(cause, d.node, d.line, self.tie_fields(d, side, cause)))
        return found

    def vertical_tangent_findings(self, side: SymbolicSide, exe: ex.Exact, auto: float | None) -> list[_Finding]:
        """A corner made of a vertical tangent (sqrt(x**2 + y**2) at the origin, a cone): the
        mathematics has one-sided slopes; the program multiplies sqrt's infinite slope by the
        inner derivative 0, and 0 * inf is nan."""
        st = side.violation
        assert st is not None
        left = side.left.derivative if side.left else None
        right = side.right.derivative if side.right else None
        lo, hi = sorted((left, right), key=lambda v: ex.to_float(v)) if left is not None and right is not None else (left, right)
        found = [_Finding(Cause.KINK, st.node, st.line, {
            "detail": (f"its argument is 0 and its slope there is infinite, yet the function as a whole is a cone "
                       f"here: its slope is {_fmt(left)} just left of the point and {_fmt(right)} just right, "
                       "so the mathematics has no derivative."),
            "convention": "the backward pass multiplies the infinite slope by the inner derivative, which is 0 here.",
            "alternatives": "add a small eps inside the sqrt, or use torch.linalg.norm, whose gradient at 0 is 0",
            "low": _fmt(lo), "high": _fmt(hi)})]
        if auto is not None and not math.isfinite(auto):
            found.append(_Finding(Cause.NAN_TRAP, st.node, st.line, {
                "bad": "inf", "why": "its inner derivative at this point is exactly 0."}))
        return found

    def tie_kind(self, d: Decision, kind: str) -> Cause:
        if d.kind in ("if", "while", "for"):
            return Cause.CONTROL_FLOW
        if d.kind == "where":
            # A smooth function whose `where` takes a special case at the point (Eq(x, 1)) is
            # decided by the branch, not by a corner.
            return Cause.JUMP if kind == "jump" else (Cause.CONTROL_FLOW if kind == "smooth" else Cause.KINK)
        assert d.step is not None
        # A corner (relu, abs, max) never makes a function jump, even where another step does;
        # a step (sign, floor, Heaviside) is a jump only if the function itself jumps here:
        # x*sign(x) is |x|, a kink (decided from the one-sided limits, not the primitive).
        op = OPS[self.path.steps[d.step].op]
        return Cause.JUMP if (op.nonsmooth == "jump" and kind == "jump") else Cause.KINK

    def tie_fields(self, d: Decision, side: SymbolicSide, cause: Cause) -> dict[str, Any]:
        left = side.left.derivative if side.left else None
        right = side.right.derivative if side.right else None
        lv = side.left.value if side.left else None
        rv = side.right.value if side.right else None
        f0 = self.path.value
        lo, hi = (left, right) if (left is None or right is None or not (ex.is_finite(left) and ex.is_finite(right))
                                   or ex.cmp(left, right) <= 0) else (right, left)
        fields: dict[str, Any] = {"left": _fmt(left), "right": _fmt(right), "low": _fmt(lo), "high": _fmt(hi)}
        conds = ", ".join(f"`{self.node(rel)}` ({self.node(rel.lhs)} = {self.node(rel.rhs)} here)"
                          for rel, m in d.margins if ex.is_zero(m))
        if cause is Cause.CONTROL_FLOW:
            fields["what"] = "loop" if d.kind in ("while", "for") else "branch"
            if side.kind == "jump":
                what = (f"the function jumps here: {_fmt(lv)} from the left, {_fmt(f0)} at the point, "
                        f"{_fmt(rv)} from the right, so no derivative exists.")
            elif side.kind == "kink":
                what = (f"the slope is {_fmt(left)} just left and {_fmt(right)} just right, so the "
                        "mathematics has no derivative here.")
            else:
                what = (f"the mathematics is smooth here (slope {_fmt(left)} on both sides), but at the "
                        "point itself the program takes a branch that neither side takes.")
            sides = self.count_sides(d, side)
            fields["detail"] = (f"its condition {conds or self.node(d.node)} sits exactly on its threshold; "
                                f"{what}{sides} The program ran only what the point itself takes, so torch "
                                "sees only that path's derivative.")
        elif cause is Cause.JUMP:
            fields["detail"] = (f"{_fmt(lv)} just left of the point, {_fmt(f0)} at it and {_fmt(rv)} "
                                "just right of it.")
        else:
            op = OPS[self.path.steps[d.step].op] if d.step is not None else OPS["where"]
            fields["convention"] = op.convention or "torch.where takes the branch whose condition holds at the point."
            fields["alternatives"] = op.alternatives or "rewrite the branch with the slope you want"
            if side.kind == "kink":
                fields["detail"] = (f"the function's slope is {_fmt(left)} just left of the point and {_fmt(right)} "
                                    "just right of it, so the mathematics has no derivative here.")
            elif side.kind == "jump":
                fields["detail"] = "the function also jumps here, so the mathematics has no derivative."
            else:
                fields["detail"] = (f"the function as a whole is smooth here (slope {_fmt(left)} on both sides), "
                                    "but the program computes it through this corner.")
        return fields

    def shortcut_findings(self, side: SymbolicSide, exe: ex.Exact) -> list[_Finding]:
        """A fused op whose torch kernel took a shortcut the mathematics does not have (softplus
        returns x itself above its threshold): a branch inside torch decided the difference."""
        for st in departs(self.path):
            arg = st.args_values[0] if st.args_values else None
            return [_Finding(Cause.CONTROL_FLOW, st.node, st.line, {
                "what": "fused op",
                "detail": (f"{OPS[st.op].shortcut} Its argument is {_fmt(arg)} here, so the program's derivative "
                           f"is {_fmt(exe)} and the mathematics' {_fmt(side.grad)}.")})]
        return []

    def count_sides(self, d: Decision, side: SymbolicSide) -> str:
        """How a neighbouring point changes the branch taken, or the loop's iteration count."""
        if side.left is None or side.right is None:
            return ""
        if d.kind in ("if", "where"):
            def taken(ds: Sequence[Decision]) -> str:
                hit = next((x for x in ds if x.line == d.line and x.kind == d.kind), None)
                if hit is None:
                    return "?"
                return f"branch {int(hit.taken) + 1}" if d.kind == "if" else ("the first branch" if hit.taken else "the other branch")  # type: ignore[arg-type]
            left, here, right = taken(side.left.decisions), taken([d]), taken(side.right.decisions)
            if left == here == right:
                return ""
            return f" Just left of the point the program takes {left}, at it {here}, just right of it {right}."
        if d.kind not in ("while", "for"):
            return ""
        here = _count(self.path.decisions, d)
        left = _count(side.left.decisions, d)
        right = _count(side.right.decisions, d)
        if here == left == right:
            return ""
        return (f" The loop body runs {left} times just left of the point, {here} times at it and "
                f"{right} times just right of it.")

    def cut_findings(self, k: int) -> list[_Finding]:
        """Cut steps that removed a nonzero part of the derivative with respect to input k."""
        found = []
        for st in self.path.steps:
            if not st.cut or not st.depends:
                continue
            if ex.all_zero(self.math_adj[st.index]):
                continue
            cause = Cause.GRAPH_BREAK if st.cut == "graph-break" else Cause.DETACH
            found.append(_Finding(cause, st.node, st.line, {"value": _fmt(st.value), "how": _break_how(st.op)}))
        return found

    def raised_finding(self) -> _Finding:
        reach = [False] * len(self.path.steps)
        reach[self.path.output] = True
        for st in reversed(self.path.steps):
            if reach[st.index]:
                if st.cut:
                    return _Finding(Cause.GRAPH_BREAK, st.node, st.line, {
                        "value": _fmt(st.value), "how": _break_how(st.op),
                        "consequence": "; its value does not depend on the inputs here anyway, so the "
                        "derivative is the same, but now nothing on the path to the output is on the graph"})
                for p in st.parents:
                    reach[p] = True
        out = self.path.steps[self.path.output]
        return _Finding(Cause.GRAPH_BREAK, out.node, self.lowered.output_line, {
            "value": _fmt(out.value), "how": "no input reaches the output through the graph",
            "consequence": "; the path that ran does not depend on the inputs"})

    def domain_finding(self, side: SymbolicSide) -> _Finding:
        st = side.violation
        if st is None:
            why = (f"has a derivative, {self.node(side.expression)}, with no value here" if side.expression is not None
                   else "has a derivative with no value here")
            return _Finding(Cause.DOMAIN, self.lowered.normalized.output, self.lowered.output_line,
                            {"why": why, "domain": "see docs/supported.md"})
        rule = op_rule(st.op)
        op = OPS.get(st.op)
        args = [self.path.steps[p] for p in st.parents]
        at = (" (its argument is " + ", ".join(_fmt(a.value) for a in args) + ")") if args else ""
        if not _finite(st.value):
            why = f"is not defined in the real numbers here{at}: its value would be {_fmt(st.value)}"
        elif op is not None and op.undefined is not None and st.args_values is not None and op.undefined(st.args_values, None):
            why = (f"has no real value or slope here{at}; torch returns {_fmt(st.value)} by its own "
                   "convention")
        else:
            why = f"has an infinite slope here{at} (a vertical tangent)"
        domain = DOMAIN_WORDS.get(st.op) or (rule.domain if rule else "see docs/supported.md")
        return _Finding(Cause.DOMAIN, st.node, st.line, {"why": why, "domain": domain})

    # -- floating point: executed vs autograd

    def float_finding(self, k: int, exe: ex.Exact, auto: float | None) -> _Finding | None:
        if auto is None:
            return None
        if not ex.is_finite(exe):
            return None
        fi = FINFO[self.dtype]
        tol = self.rtol * abs(ex.to_float(exe)) + fi.tiny
        if math.isfinite(auto) and abs(auto - ex.to_float(exe)) <= tol:
            return None
        reach = self.path.reaches_output()
        over = self.overflow_step(reach)
        if over is not None:
            st, beyond, limit, stored = over
            became = ("autograd reports that inf" if auto is not None and math.isinf(auto)
                      else f"it turned into {_fmt(auto)} in autograd")
            return _Finding(Cause.OVERFLOW, st.node, st.line,
                            {"value": _fmt(st.value), "beyond": beyond, "limit": limit, "stored": stored, "became": became})
        back = self.backward_overflow(reach)
        if back is not None:
            st, d, arg = back
            became = ("autograd reports that inf" if math.isinf(auto)
                      else f"it turned into {_fmt(auto)} in autograd")
            value = (f"{_fmt(st.value)}, and in the backward pass its derivative with respect to "
                     f"`{self.node(arg.node)}` is {_fmt(d)}")
            return _Finding(Cause.OVERFLOW, st.node, st.line,
                            {"value": value, "beyond": "too large", "limit": f"largest finite value {fi.max:.4g}",
                             "stored": "inf", "became": became})
        if not math.isfinite(auto):
            trap = self.trap_step(reach)
            if trap is not None:
                st, bad, why = trap
                return _Finding(Cause.NAN_TRAP, st.node, st.line, {"bad": bad, "why": why})
        return self.rounding(exe, auto, reach)

    def backward_overflow(self, reach: list[bool]) -> tuple[PathStep, ex.Exact, PathStep] | None:
        """A backward-pass number past the dtype's range although every forward value fits:
        a local derivative (1/x at 5e-324) or an adjoint times it."""
        biggest = ex.from_float(float(FINFO[self.dtype].max))
        for st in reversed(self.path.steps):
            if not reach[st.index] or st.cut or st.vjp is not None:
                continue
            a = self.exe_adj[st.index]
            for p, d in zip(st.parents, st.partials):
                if not self.path.steps[p].grad or ex.is_mat(d) or ex.is_mat(a):
                    continue
                for v in (d, ex.mul(a, d)):
                    if ex.is_finite(v) and ex.cmp(abs(v), biggest) > 0:
                        return st, d, self.path.steps[p]
        return None

    def backward_underflow(self, reach: list[bool]) -> tuple[PathStep, ex.Exact] | None:
        """A local derivative of the backward pass below the dtype's smallest number (it is stored
        as 0) where the derivative it is part of is not: 1/(1 + e^-x)'s slope at x = -60 in float32,
        where torch's division backward forms (1/b)/b = 8.7e-53 before it multiplies by e^60."""
        smallest = ex.from_float(SMALLEST[self.dtype])
        for st in reversed(self.path.steps):
            if not reach[st.index] or st.cut or st.vjp is not None:
                continue
            for p, d in zip(st.parents, st.partials):
                if not self.path.steps[p].grad or ex.is_mat(d):
                    continue
                if ex.is_finite(d) and not ex.is_zero(d) and ex.cmp(abs(d), smallest) < 0:
                    return st, d
        return None

    def lost_in_its_inputs(self, reach: list[bool]) -> tuple[PathStep, Any, Any] | None:
        """A log_softmax whose value is far below the rounding of its inputs (at logits (1000, 0)
        it is -e^-1000): torch computes x_i - max - log(sum(exp(x_j - max))), and the log of 1 plus
        that tiny sum rounds to 0. Returns (step, the value, the largest input)."""
        eps = ex.to_real(ex.from_float(float(FINFO[self.dtype].eps)))
        for st in self.path.steps:
            if st.op not in ("log_softmax", "log_softmax_vector", "log_softmax_of") or not reach[st.index]:
                continue
            big = max((_biggest(self.path.steps[p].value) for p in st.parents), default=ex.to_real(ex.ZERO))
            for v in ex.elements(st.value):
                m = abs(ex.to_real(v)).mid()
                if not m.is_zero() and m < eps * max(big, ex.to_real(ex.ONE)):
                    return st, v, big
        return None

    def corner_moved(self, reach: list[bool]) -> tuple[PathStep, str] | None:
        """A corner that rounding to the dtype moved onto the point (or off it): exactly the
        point is beside the corner, but in floating point it sits on it, or the reverse."""
        to_dtype = {"float64": lambda v: float(v), "float32": lambda v: float(np.float32(float(v)))}[self.dtype]
        for st in self.path.steps:
            op = OPS.get(st.op)
            if op is None or op.piece is None or st.args_values is None or not reach[st.index]:
                continue
            if any(ex.is_mat(v) for v in st.args_values):
                continue  # an elementwise corner of a matrix (abs(M)): its pieces are per element
            if not all(ex.is_finite(v) for v in st.args_values) or (
                    (ex.is_rational(st.param) or ex.is_ball(st.param)) and not ex.is_finite(st.param)):
                continue
            rounded = [ex.from_float(to_dtype(ex.to_float(v))) for v in st.args_values]
            param = st.param
            if ex.is_rational(param) or ex.is_ball(param):
                param = ex.from_float(to_dtype(ex.to_float(param)))
            exact_on = op.piece(st.args_values, st.param) is None
            float_on = op.piece(rounded, param) is None
            if exact_on != float_on:
                where = "sits exactly on" if float_on else "is just off"
                return st, (f"In {self.dtype} the point {where} the corner of `{self.node(st.node)}` (line {st.line}), "
                            f"because the program's numbers are rounded to {self.dtype} (a constant such as 1/3 "
                            "is stored as the nearest float); exactly, it is "
                            f"{'beside' if float_on else 'on'} it, so torch took a different slope than the exact program.")
        return None

    def overflow_step(self, reach: list[bool]) -> tuple[PathStep, str, str, str] | None:
        fi = FINFO[self.dtype]
        biggest = ex.from_float(float(fi.max))
        smallest = ex.from_float(float(fi.smallest_normal) * float(fi.eps))  # the smallest subnormal
        for st in self.path.steps:
            if not reach[st.index] or not _finite(st.value) or st.op == "input":
                continue
            v = _biggest(st.value)
            if ex.cmp(v, biggest) > 0:
                return st, "too large", f"largest finite value {fi.max:.4g}", "inf"
            if ex.sign(v) > 0 and ex.cmp(v, smallest / 2) < 0:
                return st, "too small", f"smallest positive value {float(smallest):.4g}", "0"
        return None

    def trap_step(self, reach: list[bool]) -> tuple[PathStep, str, str] | None:
        """Where the backward pass multiplies 0 by inf or NaN: a step whose exact adjoint is 0
        times a non-finite local derivative, or a non-finite adjoint (an infinite slope above)
        times a local derivative that is exactly 0."""
        for st in self.path.steps:
            if not reach[st.index] or st.cut:
                continue
            a = self.exe_adj[st.index]
            for p, d in zip(st.parents, st.partials):
                if not self.path.steps[p].grad:
                    continue
                if not _finite(d) and ex.all_zero(a):
                    worst = next(x for x in ex.elements(d) if not ex.is_finite(x))
                    bad = "nan" if ex.is_nan(worst) else ("inf" if ex.sign(worst) > 0 else "-inf")
                    return st, bad, self.unused_by(st)
        for st in reversed(self.path.steps):
            if not reach[st.index] or st.cut or st.vjp is not None or ex.is_mat(st.value):
                continue
            a = self.exe_adj[st.index]
            if ex.is_mat(a) or ex.is_finite(a):
                continue
            for p, d in zip(st.parents, st.partials):
                if self.path.steps[p].grad and ex.all_zero(d):
                    source = self.infinite_slope_above(st) or st
                    bad = "nan" if ex.is_nan(a) else "inf"
                    return source, bad, (f"its infinite slope reaches `{self.node(st.node)}` (line {st.line}), "
                                         "whose own derivative is exactly 0 here.")
        return None

    def infinite_slope_above(self, st: PathStep) -> PathStep | None:
        """The step whose infinite local derivative made the adjoint of `st` infinite."""
        current = st
        for _ in range(len(self.path.steps)):
            nxt = None
            for user in self.path.steps[current.index + 1:]:
                if current.index not in user.parents or user.vjp is not None:
                    continue
                d = user.partials[user.parents.index(current.index)]
                if not ex.is_mat(d) and not ex.is_finite(d):
                    return user
                if not ex.is_mat(self.exe_adj[user.index]) and not ex.is_finite(self.exe_adj[user.index]):
                    nxt = user
                    break
            if nxt is None:
                return None
            current = nxt
        return None

    def unused_by(self, st: PathStep) -> str:
        for user in self.path.steps[st.index + 1:]:
            if st.index in user.parents and user.op == "where":
                return (f"`torch.where` on line {user.line} runs it for every input but keeps the "
                        "other branch at this point.")
        return "the value reaches the output multiplied by an exact 0."

    def rounding(self, exe: ex.Exact, auto: float, reach: list[bool]) -> _Finding:
        e = ex.to_float(exe)
        rel = abs(auto - e) / abs(e) if e != 0 else math.inf
        if not math.isfinite(auto):
            rel = math.inf  # nan or inf where the exact derivative is finite: every digit is lost
        correct = max(0.0, -math.log10(rel)) if rel > 0 else DIGITS[self.dtype]
        lost = max(0.0, DIGITS[self.dtype] - correct)

        def found(node: Any, line: Any, detail: str, hint: str = "") -> _Finding:
            return _Finding(Cause.ROUNDING, node, line, {"relerr": _rel(rel), "lost": f"{lost:.0f}", "detail": detail},
                            hint_extra=hint)

        moved = self.corner_moved(reach)
        if moved is not None:
            st, detail = moved
            return found(st.node, st.line, detail)
        best: tuple[float, PathStep] | None = None
        for st in self.path.steps:
            if st.op != "add" or not reach[st.index] or ex.all_zero(self.math_adj[st.index]) or ex.is_mat(st.value):
                continue
            big = max((_biggest(self.path.steps[p].value) for p in st.parents), default=ex.to_real(ex.ZERO))
            res = abs(ex.to_real(st.value)).mid()
            if big.is_zero():
                continue
            digits = ex.to_float((big / res).log() / ex.to_real(ex.Q(10)).log()) if not res.is_zero() else DIGITS[self.dtype]
            if digits >= 1 and (best is None or digits > best[0]):
                best = (digits, st)
        if best is not None:
            st = best[1]
            detail = (f"`{self.node(st.node)}` (line {st.line}) subtracts nearly equal numbers and loses about "
                      f"{best[0]:.0f} leading digits (cancellation); the backward pass inherits the error.")
            return found(st.node, st.line, detail)
        absorbed = self.absorbed_by_log(reach)
        if absorbed is not None:
            st, user, digits = absorbed
            detail = (f"`{self.node(st.node)}` (line {st.line}) adds a number far smaller than the sum, which keeps only about "
                      f"{max(0, DIGITS[self.dtype] - digits):.0f} of its {DIGITS[self.dtype]:.0f} digits (absorption), and "
                      f"`{self.node(user.node)}` (line {user.line}) of a value so near 1 turns that into a large relative "
                      "error; the backward pass inherits it.")
            return found(user.node, user.line, detail)
        under = self.backward_underflow(reach) if e != 0 and abs(auto) < abs(e) else None
        if under is not None:
            st, d = under
            detail = (f"In the backward pass the local derivative of `{self.node(st.node)}` (line {st.line}) is "
                      f"{_fmt(d)}, below {self.dtype}'s smallest number ({SMALLEST[self.dtype]:.2g}), "
                      f"so torch stores it as 0 (underflow) before the chain rule multiplies it by the large factors "
                      "that would bring it back into range.")
            return found(st.node, st.line, detail, "underflow")
        lost_in = self.lost_in_its_inputs(reach)
        if lost_in is not None:
            st, v, big = lost_in
            what = f"`{self.node(st.node)}` (line {st.line})" if st.op == "log_softmax" else f"The log_softmax on line {st.line}"
            detail = (f"{what} has a value as small as {_fmt(v)} here, far below the "
                      f"rounding of its inputs (up to about {float(big):.3g}): torch computes log_softmax as "
                      "x_i - max - log(sum(exp(x_j - max))), and the log of 1 plus so small a sum rounds to 0.")
            return found(st.node, st.line, detail, "below-inputs")
        singular = next((st for st in self.path.steps if st.op == "det" and reach[st.index] and ex.is_zero(st.value)), None)
        if singular is not None:
            # torch's det backward at a singular matrix: not rounding that accumulates, one formula
            detail = (f"`{self.node(singular.node)}` (line {singular.line}) is the determinant of a singular matrix "
                      "(it is 0 here). The derivative of a determinant is its matrix of cofactors, which is not 0 "
                      "when the matrix's rank is one less than its size; torch's backward of torch.linalg.det "
                      "does not return it at a singular matrix.")
            return found(singular.node, singular.line, detail, "singular-det")
        parting = self.backward_parting()
        if parting is not None and parting.kind == "cancellation":
            # A cancellation that lives only in the backward pass: cite the line where it parts.
            return found(_node_of(self.path, parting.at.step), parting.line, parting.why, "backward-cancellation")
        out = self.path.steps[self.path.output]
        detail = f"The errors of {self.dtype}'s rounding accumulate over the program's {len(self.path.steps)} steps."
        if self.exact.bits > ex.START_PREC:
            detail += (f" The exact values needed {self.exact.bits} bits (about {int(self.exact.bits * 0.30103)} digits) "
                       "to certify theirs: the program amplifies every rounding error as it runs.")
        return found(out.node, self.lowered.output_line, detail, "accumulate")


    def absorbed_by_log(self, reach: list[bool]) -> tuple[PathStep, PathStep, float] | None:
        """log(1 + x) for a small x: the sum 1 + x keeps only the leading digits of x, and log near 1
        magnifies what was lost (the add step, the log step reading it, and the digits of x lost)."""
        for user in self.path.steps:
            if user.op != "log" or not reach[user.index] or not user.parents:
                continue
            st = self.path.steps[user.parents[0]]
            if st.op != "add" or ex.is_mat(st.value) or not _finite(st.value):
                continue
            small = [abs(ex.to_real(self.path.steps[p].value)).mid() for p in st.parents if self.path.steps[p].depends]
            res = abs(ex.to_real(st.value)).mid()
            if not small or min(small).is_zero() or res.is_zero():
                continue
            digits = ex.to_float((res / min(small)).log() / ex.to_real(ex.Q(10)).log())
            if digits >= 1:
                return st, user, digits
        return None


def _node_of(path: Path, i: int) -> sp.Basic:
    return path.steps[i].node


def _rel(r: float) -> str:
    if not math.isfinite(r):
        return "everything (it is not a finite number)"
    if r >= 10:
        return f"a factor of {r:.3g}"
    return f"{100 * r:.3g}%"


def _count(decisions: Sequence[Decision], d: Decision) -> int:
    """How many times the loop of decision d ran its body in a run."""
    tests = [x for x in decisions if x.line == d.line and x.kind == d.kind]
    if d.kind == "for":
        return int(tests[0].taken) if tests else 0  # type: ignore[arg-type]
    return sum(1 for x in tests if x.taken)


def _break_how(op: str) -> str:
    if op == "item":
        return "`.item()` turned it into a Python number, and the new tensor made from it has no history"
    if op == "no_grad":
        return "it was computed under `torch.no_grad()`, which records no graph"
    return "`.detach()` cut it from the graph"


# --------------------------------------------------------------------------- entries


def _entry(c: _Classifier, k: int, j: Any, sym: SymbolicSide, exe: ex.Exact, auto: float | None, wrt_sym: sp.Basic,
           formula_of: Callable[[], sp.Basic | None] | None = None) -> Entry:
    findings: list[_Finding] = []
    if sym.kind == "domain":
        findings.append(c.domain_finding(sym))
    else:
        cuts = c.cut_findings(k)
        if sym.kind in ("kink", "jump", "unknown"):
            findings.extend(c.tie_findings(sym))
            if sym.violation is not None and not c.path.ties:
                findings.extend(c.vertical_tangent_findings(sym, exe, auto))
            findings.extend(cuts)
        elif not same(sym.grad, exe):  # type: ignore[arg-type]
            findings.extend(cuts)
            if not cuts:
                findings.extend(c.tie_findings(sym))
            if not findings:
                findings.extend(c.shortcut_findings(sym, exe))
        if auto is None and c.run.error is not None and not any(f.cause is Cause.GRAPH_BREAK for f in findings):
            findings.extend(f for f in cuts if f.cause is Cause.GRAPH_BREAK)
        fl = c.float_finding(k, exe, auto)
        if fl is not None:
            findings.append(fl)
    if auto is None and c.run.error is not None and not findings:
        # torch raised although the derivative exists: nothing on the path to the output is on
        # the graph. Cite the step that left it, if one did.
        findings.append(c.raised_finding())
    findings.sort(key=lambda f: f.cause.severity)
    unique: list[_Finding] = []
    for f in findings:
        if all(u.cause is not f.cause for u in unique):
            unique.append(f)
    sym_value = ex.to_sympy(sym.grad) if sym.grad is not None else None
    one_sided = (ex.to_sympy(sym.one_sided[0]), ex.to_sympy(sym.one_sided[1])) if sym.one_sided else None
    exe_value = ex.to_sympy(exe)
    if not unique:
        text = EXPLANATIONS[Cause.AGREE].format(dtype=c.dtype, rtol=c.rtol)
        if c.path.inputs[k] in c.unread:
            text = UNUSED.format(symbol=wrt_sym, dtype=c.dtype)
        return Entry(j, wrt_sym, sym_value, one_sided, exe_value, auto, Cause.AGREE, (), None, None, text, "",
                     c.run.error, formula_of)
    primary = unique[0]
    base = {
        "node": c.node(primary.node), "line": primary.line if primary.line is not None else "?",
        "dtype": c.dtype, "rtol": c.rtol, "symbolic": _fmt(sym.grad), "executed": _fmt(exe),
        "autograd": _fmt(auto), "digits": f"{DIGITS[c.dtype]:.0f}", "torch_error": "",
        "left": "", "right": "", "convention": "", "alternatives": "", "detail": "", "value": "",
        "how": "", "why": "", "domain": "", "bad": "", "beyond": "", "limit": "", "stored": "",
        "relerr": "", "lost": "", "what": "branch", "became": "", "low": "", "high": "",
        "wider": ", or compute in float64" if c.dtype == "float32" else "",
        "consequence": "; the mathematics still depends on the inputs there",
    }
    fields = dict(base, **primary.fields)
    if primary.cause is Cause.GRAPH_BREAK and c.run.error is not None:
        fields["torch_error"] = (f" So torch raised when asked for the gradient: \"{_first_line(c.run.error)}\".")
    explanation = EXPLANATIONS[primary.cause].format(**fields)
    # A structural cause (mathematics vs program) beside a float one (program vs autograd): the
    # second says what autograd reports, which the first does not (a kink where sqrt's nan is
    # trapped: the program's slope is 0, autograd's nan).
    floats = (Cause.NAN_TRAP, Cause.OVERFLOW, Cause.ROUNDING)
    second = next((f for f in unique[1:] if f.cause in floats), None) if primary.cause not in floats else None
    if second is not None:
        more = dict(base, **second.fields)
        more["node"], more["line"] = c.node(second.node), second.line if second.line is not None else "?"
        said = EXPLANATIONS[second.cause].format(**more)
        explanation += f" Besides ({second.cause.id}): {said[0].lower() + said[1:] if said[:1] != '`' else said}"
    hint = _hint(primary, fields, c)
    if second is not None:
        hint += f" For the {second.cause.id}: {_hint(second, more, c)}"
    line = primary.line if isinstance(primary.line, int) else None
    return Entry(j, wrt_sym, sym_value, one_sided, exe_value, auto, primary.cause,
                 tuple(f.cause for f in unique[1:]), fields["node"], line, explanation, hint, c.run.error,
                 formula_of)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


# The hint of each kind of rounding finding (`_Finding.hint_extra`); {wider} suggests float64 to a
# float32 run.
_ROUNDING_HINTS: Final = {
    "backward-cancellation": (
        "The derivative, not the function, cancels: the chain rule adds nearly equal and opposite "
        "contributions. A quotient whose numerator and denominator both vanish at the point does this "
        "however accurately each is computed (expm1(x)/x or log1p(x)/x near 0). Near such a point, "
        "write the function so that no such quotient is differentiated, e.g. a few terms of its Taylor "
        "series there (`Piecewise((1 + x/2 + x**2/6 + x**3/24, Abs(x) < 1e-3), (expm1(x)/x, True))`){wider}, "
        "and compare the rewrite at this point with `symgrad.compare`."),
    "below-inputs": (
        "The float value is as close as the inputs' rounding allows: the relative error is large only "
        "because the exact value is tiny. If it matters (a gradient with respect to the labels, say), "
        "the entries that read it are the ones to check; `wrt=` leaves them out of the comparison."),
    "underflow": (
        "Write the function so that no factor of its backward pass is that small: compute the small "
        "quantity directly (for 1/(1 + exp(-x)), `torch.sigmoid(x)`, whose backward is s * (1 - s), with "
        "no division){wider}, and compare the rewrite with `symgrad.compare`."),
    "singular-det": (
        "Away from singular matrices torch's determinant backward is accurate. Where you need the gradient "
        "at a singular matrix, write the determinant out (for 2x2, `A[0, 0]*A[1, 1] - A[0, 1]*A[1, 0]`), "
        "whose backward torch computes term by term, and compare it with `symgrad.compare`."),
    "accumulate": (
        "No single step cancels: the program amplifies the rounding error of every step. "
        "Reformulate it so errors do not grow (fewer iterations, a contracting update){wider}, "
        "and compare the reformulation with `symgrad.compare`."),
}


def _hint(f: _Finding, fields: dict[str, Any], c: _Classifier) -> str:
    """The rule's own hint for this cause if it has one, else the cause's general hint."""
    if f.hint_extra in _ROUNDING_HINTS:
        return _ROUNDING_HINTS[f.hint_extra].format(wider=", or compute in float64" if c.dtype == "float32" else "")
    if f.node is not None:
        for st in c.path.steps:
            if st.node == f.node and st.op in OPS:
                rule = op_rule(st.op)
                if rule is not None and f.cause in rule.hints:
                    return rule.hints[f.cause]
        if f.cause is Cause.ROUNDING:
            # A cancellation: the functions inside the subtraction know the stable rewrite.
            for st in c.path.steps:
                if st.node in f.node.args if isinstance(f.node, sp.Basic) else False:
                    rule = op_rule(st.op)
                    if rule is not None and Cause.ROUNDING in rule.hints:
                        return rule.hints[Cause.ROUNDING]
    return HINTS[f.cause].format(**fields)


# --------------------------------------------------------------------------- entry point


@deep
def compare(f: Any, at: Mapping[Any, Any], *, wrt: Iterable[Any] | None = None, dtype: str = "float64",
            branches: Literal["if", "where"] = "if", order: int = 1, v: Any = None, rtol: float | None = None,
            max_iterations: int = DEFAULT_MAX_ITERATIONS) -> Comparison:
    """Compare the symbolic, executed and autograd derivatives of `f` at the point `at`.

    **Arguments:**

    - `f`: a SymPy expression or a `symgrad.Program`.
    - `at`: the point, `{symbol: value}`; values are rounded to `dtype` first, and all three
      sides are evaluated at the exact binary value the tensor holds.
    - `wrt`: the inputs to differentiate with respect to (default: all, in order).
    - `dtype`: `"float64"` (default) or `"float32"`.
    - `branches`: `"if"` (default) or `"where"`: how a Piecewise is lowered.
    - `rtol`: relative tolerance between executed and autograd (default per dtype:
      1e-9 for float64, 1e-4 for float32).
    - `max_iterations`: how many times a loop may run before `LoopLimitError`.

    **Returns:** a `Comparison`; `str()` of it is a report.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> compare(sp.Max(x, 0), at={x: 0.0}).cause.id
    'kink'
    """
    if is_torch_function(f):  # a torch function: read back by `trace`, at `at` by parameter name
        return compare_function(f, at, wrt=wrt, dtype=dtype, order=order, v=v, rtol=rtol,
                                max_iterations=max_iterations)
    f = expression(f)
    check_options(branches=branches, dtype=dtype)
    if order not in (1, 2):
        raise OptionError(ORDER.format(value=order))
    if rtol is not None and not (isinstance(rtol, (int, float)) and rtol > 0):
        raise OptionError(RTOL_MESSAGE.format(value=rtol))
    tol = float(rtol) if rtol is not None else RTOL[dtype]
    lowered = _with_unused_inputs(lower(f, branches=branches, dtype=dtype), f, at, branches, dtype)
    floats = _point(lowered, at, dtype)
    wrt_idx = wrt_indices(lowered, wrt)
    point = {name: _exact_value(x) for name, x in zip(lowered.inputs, floats)}
    comps = _components(lowered, point, wrt_idx)
    _check_entries(lowered, comps, v)
    if order == 2:
        return _hessian(lowered, floats, point, comps, dtype, tol, branches, max_iterations, v)
    v_exact = _vector(lowered, v, point, max_iterations)
    exact = _exact_sides(lowered, point, comps, v_exact, max_iterations)
    run_ = ag.run(lowered, floats, dtype, wrt_idx, None if v is None else np.asarray(ex.ewise(ex.to_float, v_exact), dtype=np.float64))
    with ex.working_precision(exact.bits):
        return _assemble(lowered, exact, run_, floats, comps, v_exact, dtype, tol, branches)


# --------------------------------------------------------------------------- functions read from torch code


def compare_reading(reading: Reading, **options: Any) -> Comparison:
    """`symgrad.compare` of the translated program at the traced example values (or at `at=`,
    keyed by parameter name); every entry carries the user's `SourceSpan` (`entry.source`).
    In path mode the recorded run is compared, and every explanation says so."""
    at = options.pop("at", None)
    point = reading.point if at is None else point_by_name(reading.fn, at)
    options.pop("branches", None)
    if reading.mode == "path" and at is not None:  # another point may run another path
        return compare_reading(read_function(reading.fn, (), point), **options)
    function = reading.program if reading.mode == "source" else reading.recorded
    if options.get("wrt") is None and reading.inputs and not isinstance(function, Program):
        # A function of tensors reads back as a bare expression, whose inputs would come in
        # natural order: entries follow the parameters as the function declares them.
        options["wrt"] = list(reading.inputs)
    c = compare(function, at=point, branches=reading.branches, **options)
    c = replace(cite(c, reading.origins), title=title(reading.fn))
    if reading.mode == "path":
        said = (f"(Path mode: symgrad compared the run it recorded, with branches as taken and loops "
                f"unrolled, because {reading.reason})")
        c = replace(c, entries=tuple(replace(e, explanation=f"{e.explanation} {said}") for e in c.entries))
    return c


def compare_function(fn: Any, at: Any, **options: Any) -> Comparison:
    """`symgrad.compare(fn, at=...)` for a torch function: `at` keyed by parameter name, or a
    tuple of values in parameter order."""
    point = point_by_name(fn, at)
    reading = read_function(fn, (), point, max_iterations=options.get("max_iterations", DEFAULT_MAX_ITERATIONS))
    return compare_reading(reading, **options)


def title(fn: Any) -> str:
    """A traced function as reports name it: `loss(W, b, X, Y) from model.py:12`."""
    f = inspect.unwrap(fn)
    try:
        params = ", ".join(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        params = "..."
    code = getattr(f, "__code__", None)
    where = f" from {os.path.basename(code.co_filename)}:{code.co_firstlineno}" if code is not None else ""
    return f"{getattr(f, '__qualname__', getattr(f, '__name__', 'function'))}({params}){where}"


def cite(comparison: Any, origins: Mapping[Any, SourceSpan]) -> Any:
    """The comparison with each entry's `source` set to the user's line its generated line came
    from, and the explanation citing it."""
    lowered = comparison.lowered
    lines: dict[int, SourceSpan] = {}
    for node, span in origins.items():
        line = lowered.line_map.get(node)
        if line is not None:
            lines.setdefault(line, span)
    ordered = sorted(lines)

    def span_of(line: int | None) -> SourceSpan | None:
        if line is None:
            return None
        if line in lines:
            return lines[line]
        before = [n for n in ordered if n <= line]
        return lines[before[-1]] if before else None

    entries = []
    for e in comparison.entries:
        span = span_of(e.line)
        if span is not None and not e.ok:
            e = replace(e, source=span, explanation=f"{e.explanation} In your code: `{span}`.")
        elif span is not None:
            e = replace(e, source=span)
        entries.append(e)
    return replace(comparison, entries=tuple(entries))


def rounding_only(lowered: LoweredProgram, floats: Sequence[float], wrt: Sequence[int], auto: Sequence[float],
                  dtype: str, rtol: float, max_iterations: int = DEFAULT_MAX_ITERATIONS) -> tuple[str, list[float]] | None:
    """For a sweep's runs of cancelling points: decide a scalar point where the only question is
    autograd's float error, as compare() would, without a report. The exact sides are computed
    as for compare() (same precision and reruns); `auto` is autograd's value per input of `wrt`,
    from the sweep's batch. Returns ("agree" or "rounding", the exact executed derivatives as
    floats), or None where the question is wider and compare() must decide: the path sits on a
    tie, a value or derivative is not finite, the mathematics differs from the executed path,
    or a value of the path or of its backward pass is past the dtype's range."""
    point = {name: ex.from_float(float(v)) for name, v in zip(lowered.inputs, floats)}
    comps = [(k, None) for k in wrt]
    exact = _exact_sides(lowered, point, comps, None, max_iterations)
    if exact.path.ties or not _finite(exact.path.value) or not all(math.isfinite(a) for a in auto):
        return None
    with ex.working_precision(exact.bits):
        values = []
        for n in range(len(comps)):
            side, exe = exact.sym[(0, n)], exact.exe[(0, n)]
            if side.kind != "smooth" or side.grad is None or not ex.is_finite(exe) or not same(side.grad, exe):
                return None
            values.append(ex.to_float(exe))
        c = _Classifier(lowered, exact, dtype, rtol, ag.AutogradRun(None, [], None))
        reach = c.path.reaches_output()
        if c.overflow_step(reach) is not None or c.backward_overflow(reach) is not None:
            return None
    tiny = FINFO[dtype].tiny
    off = any(abs(a - e) > rtol * abs(e) + tiny for a, e in zip(auto, values))
    return ("rounding" if off else "agree"), values


def _assemble(lowered: LoweredProgram, exact: _Exact, run_: ag.AutogradRun, floats: list[Any], comps: list[Component],
              v_exact: Any, dtype: str, tol: float, branches: str) -> Comparison:
    """Entries, classified, in the order of DESIGN.md section 6."""
    value = exact.path.value
    seeds = _seeds(value, v_exact)
    entries = []
    cache: dict[str, Any] = {"seed": v_exact}
    for o, seed in enumerate(seeds):
        c = _Classifier(lowered, exact, dtype, tol, run_, seed)
        if seed is None or v_exact is not None:
            c.cache = cache
        label: Any = 0 if seed is None or v_exact is not None else tuple(np.ndindex(*value.shape))[o]
        scalar = seed is None
        for n, (k, idx) in enumerate(comps):
            auto = run_.grads[o][k] if run_.grads else None
            if auto is not None and idx is not None:
                auto = float(auto[idx])
            wrt_sym = lowered.symbols[k] if idx is None else lowered.symbols[k][idx[0], idx[1]]
            shown = functools.partial(formula, lowered, k) if scalar else None
            entries.append(_entry(c, k, label, exact.sym[(o, n)], exact.exe[(o, n)], auto, wrt_sym, shown))
    return Comparison(
        entries=tuple(entries),
        lowered=lowered,
        point={s: _sympy_value(_exact_value(x)) for s, x in zip(lowered.symbols, floats)},
        dtype=dtype,
        rtol=tol,
        value_exact=_sympy_value(value) if _finite(value) else None,
        value_autograd=run_.value,
        executed_path=exact.path,
        branches=branches,
        source=lowered.normalized.source,
        vjp=v_exact is not None,
        exact_bits=exact.bits,
        _cache=cache,
    )


def _hessian(lowered: LoweredProgram, floats: list[Any], point: dict[str, Any], comps: list[Component], dtype: str,
             tol: float, branches: str, max_iterations: int, v: Any) -> Comparison:
    """order=2: the Hessian three ways. Entry (i, j) is d/dx_j of df/dx_i."""
    if v is not None or any(idx is not None for _, idx in comps):
        raise OptionError(
            "order=2 compares the Hessian of a scalar function of scalar inputs; this call has "
            + ("v=" if v is not None else "a matrix input") + ".\nFix: use order=1, or write the inputs as scalar symbols."
        )
    wrt = [k for k, _ in comps]
    with ex.working_precision(2 * ex.START_PREC):
        path = run(lowered, point, max_iterations=max_iterations)
        if ex.is_mat(path.value):
            raise OptionError("order=2 needs a scalar output; this function's output is a matrix.\nFix: use order=1.")
        norm = lowered.normalized
        syms = list(norm.inputs)
        values = {s: point[name] for s, name in zip(syms, lowered.inputs)}
        math = strip(norm.output) if not norm.is_program else as_expression(path, syms, math=True)
        executed = as_expression(path, syms)
        ties = path.ties
        violation = domain_violation(path)
        sym_h: dict[tuple[int, int], Any] = {}
        exe_h: dict[tuple[int, int], Any] = {}
        for a in wrt:
            da_math = sp.diff(math, syms[a])
            da_exe = _torch_conventions(sp.diff(executed, syms[a]))
            for b in wrt:
                sym_h[(a, b)] = None if (ties or violation) else exact_eval(sp.diff(da_math, syms[b]), values)
                exe_h[(a, b)] = exact_eval(_torch_conventions(sp.diff(da_exe, syms[b])), values)
    run_, raised = ag.hessian(lowered, floats, dtype, wrt)
    c = _Classifier(lowered, _Exact(path, {}, {}), dtype, tol, run_)
    entries = []
    for a in wrt:
        for b in wrt:
            sym_value = sym_h[(a, b)]
            exe_value = exe_h[(a, b)]
            auto = run_.grads[0][a][b] if run_.grads else None
            # domain first (DESIGN.md section 5's order): an undefined value may leave a kink undecided
            kind = ("domain" if violation is not None or (sym_value is not None and not ex.is_finite(sym_value))
                    else "kink" if ties else "smooth")
            side = SymbolicSide(sym_value if kind == "smooth" else None, kind, None, None, violation=violation)
            # At the precision the values were computed at: `same` resolves differences to it.
            with ex.working_precision(2 * ex.START_PREC):
                entry = _entry(c, a, a, side, exe_value, auto, lowered.symbols[b])
            if kind == "kink":
                d = ties[0]
                entry = replace(entry, line=d.line, node=_user(lowered, d.node), explanation=(
                    f"`{_user(lowered, d.node)}` (line {d.line}) is exactly on its corner, where its slope jumps: "
                    "the second derivative does not exist there (SymPy's DiracDelta(0) is not a number). "
                    f"torch's double backward treats the slope as flat and reports {_fmt(auto)}."),
                    hint="Compare the Hessian beside the corner, where it exists, or use a smooth stand-in "
                    "(softplus for relu) if you need curvature there.")
            if raised.get(a) and entry.ok:
                entry = replace(entry, autograd_error=raised[a], explanation=(
                    f"All three agree: the second derivative is {_fmt(exe_value)}. torch's create_graph "
                    f"path raised (\"{_first_line(raised[a])}\") because d f/d {lowered.symbols[a]} is a "
                    "constant with no graph behind it, which means its derivative is 0; symgrad reports 0."))
            entries.append(entry)
    return Comparison(
        entries=tuple(entries), lowered=lowered,
        point={s: _sympy_value(_exact_value(x)) for s, x in zip(lowered.symbols, floats)},
        dtype=dtype, rtol=tol, value_exact=_sympy_value(path.value) if _finite(path.value) else None,
        value_autograd=run_.value, executed_path=path, branches=branches, source=lowered.normalized.source,
        order=2,
    )


def _torch_conventions(e: sp.Basic) -> sp.Basic:
    """Derivatives of piecewise-linear ops as torch's double backward computes them: the slope
    of a step is 0 (no DiracDelta), and relu'(0) = 0 (Heaviside at 0 is 0, not SymPy's 1/2)."""
    e = e.replace(lambda t: isinstance(t, sp.DiracDelta), lambda t: sp.Integer(0))
    return e.replace(lambda t: isinstance(t, sp.Heaviside) and len(t.args) == 1,
                     lambda t: sp.Heaviside(t.args[0], 0))


def _exact_value(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return ex.mat([[ex.from_float(float(v)) for v in row] for row in x])
    return ex.from_float(x)


def _sympy_value(v: Any) -> sp.Basic:
    if ex.is_mat(v):
        return sp.ImmutableMatrix([[ex.to_sympy(x) for x in row] for row in v])
    return ex.to_sympy(v)


def _vector(lowered: LoweredProgram, v: Any, point: dict[str, Any], max_iterations: int) -> Any:
    """The exact weights of a vector-Jacobian product (`y.backward(gradient=v)`), checked
    against the output's shape."""
    if v is None:
        return None
    with ex.working_precision(ex.START_PREC):
        value = run(lowered, point, max_iterations=max_iterations).value
    if not ex.is_mat(value):
        raise OptionError(
            "v= weights the outputs of a vector-Jacobian product (what y.backward(gradient=v) computes), "
            "but this function's output is a scalar.\nFix: leave v out; the gradient of a scalar needs no weights."
        )
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    arr = np.asarray(v, dtype=np.float64)
    if arr.size == value.size and arr.shape != value.shape:
        arr = arr.reshape(value.shape)
    if arr.shape != value.shape:
        raise ShapeError(
            f"v has shape {arr.shape}, but the output has shape {value.shape}.\n"
            "v holds one weight per output element.\nFix: pass v with the output's shape."
        )
    return _exact_value(arr)
