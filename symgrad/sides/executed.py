"""The executed path at a point, and its exact derivative.

`run()` executes the IR of a `LoweredProgram` (the very statements whose lines the program has)
with exact arithmetic, and records what ran as a straight-line `Path`:

    path      := step*                    # in the order they ran; loops unrolled
    step      := index op node line value parents partials cut
    decision  := kind node line taken tie margins   # every branch, loop test, and kink side

Branches are fixed (only the taken `if` branch appears; `torch.where` runs both), loops are
unrolled, and `detach` / `item` / `no_grad` steps are marked as cut: on the executed side no
derivative flows through them, on the mathematical side they are the identity.

Derivatives are reverse accumulation over the steps (linear in their number, DAG-aware): never
`sympy.diff` of an unrolled expression, which swells exponentially. Each step's partials are
torch's backward formula in exact arithmetic, so the executed derivative uses torch's
conventions at kinks (`relu'(0) = 0`, ...). A zero adjoint is not propagated: exactly, 0 times
a partial is 0, which is precisely where floating point (0 * inf = nan) differs.

For the symbolic side, `run(..., force=decisions)` runs the program at the point while taking
every branch, loop test and kink side from a run just beside it (`beside()`), which continues
the piece of the function that lies on that side to the point itself: its value and derivative
there are the one-sided limit and the one-sided derivative.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import sympy as sp

from ..program import exact as ex
from ..base.errors import FOR_LIMIT, LOOP_LIMIT, LoopLimitError
from ..program.program import node_text
from .ir import Branch, Cond, Const, For, If, LoweredProgram, NoGrad, Operand, Step, Stmt, While
from ..program.ops import CUT_OPS, GRAPH_BREAK_OPS, OPS
from ..program.rules import exact_eval, relation_holds

DEFAULT_MAX_ITERATIONS = 10_000
DecisionKind = Literal["if", "where", "while", "for", "piece"]


@dataclass(frozen=True, slots=True)
class PathStep:
    """One operation that ran: its node, line, exact value and torch's exact partials."""

    index: int
    op: str
    node: sp.Basic
    line: int
    name: str
    value: ex.Exact
    parents: tuple[int, ...]
    partials: tuple[ex.Exact, ...]
    cut: str | None = None  # "detach" or "graph-break": no derivative flows on the executed side
    depends: bool = False  # depends on an input (through any edge)
    grad: bool = False  # on torch's autograd graph (depends on an input through uncut edges)
    args_values: tuple[ex.Exact, ...] | None = None  # kept for ops checked later (domain, corners)
    param: Any = None
    vjp: Any = None  # matrix ops: G -> one adjoint per parent, instead of elementwise partials


@dataclass(frozen=True, slots=True)
class Decision:
    """A branch taken, a loop test, or the side of a kink that a step was on."""

    kind: DecisionKind
    node: sp.Basic
    line: int
    taken: Hashable  # branch index, bool, iteration count, or piece
    tie: bool  # exactly on a threshold / kink / jump
    margins: tuple[tuple[sp.Basic, ex.Exact], ...] = ()  # (relation, lhs - rhs)
    step: int | None = None  # the path step of a kink decision
    reads: tuple[int, ...] = ()  # the path steps its condition (or loop bounds) reads


@dataclass(frozen=True)
class Path:
    """What ran at one point."""

    steps: tuple[PathStep, ...]
    decisions: tuple[Decision, ...]
    inputs: tuple[int, ...]  # step index of each input, in the program's order
    output: int
    line_counts: dict[int, int] = field(default_factory=dict)

    @property
    def value(self) -> ex.Exact:
        return self.steps[self.output].value

    @property
    def ties(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.tie)

    def gradient(self, mode: Literal["executed", "math"], seed: Any = None) -> tuple[Any, ...]:
        """d output / d input for each input: torch's conventions ("executed"), or with cut
        steps as the identity ("math", valid where no decision is a tie). Matrix inputs get
        a matrix; `seed` picks (or weights) the elements of a matrix output."""
        adj = self.adjoints(mode, seed)
        return tuple(adj[i] for i in self.inputs)

    def adjoints(self, mode: Literal["executed", "math"], seed: Any = None) -> list[Any]:
        """Reverse accumulation: d output / d step for every step (matrices for matrix steps).
        `seed` is the output's adjoint (1 for a scalar output; a one-hot matrix picks one
        element of a matrix output). Without a seed the result is computed once per mode and
        precision, and shared: callers must not change it."""
        if seed is None:
            key = (mode, ex.prec())
            cache = self.__dict__.setdefault("_adjoint_cache", {})
            hit = cache.get(key)
            if hit is None:
                hit = cache[key] = self._adjoints(mode, None)
            return hit
        return self._adjoints(mode, seed)

    def _adjoints(self, mode: Literal["executed", "math"], seed: Any = None) -> list[Any]:
        adj: list[Any] = [ex.full(st.value.shape, ex.ZERO) if ex.is_mat(st.value) else ex.ZERO for st in self.steps]
        if seed is None:
            # A matrix output with no seed: every element counts (the gradient of their sum).
            out = self.steps[self.output].value
            seed = ex.full(out.shape, ex.ONE) if ex.is_mat(out) else ex.ONE
        adj[self.output] = seed
        math_mode = mode == "math"
        for st in reversed(self.steps):
            a = adj[st.index]
            if not st.parents or ex.all_zero(a):
                continue
            if st.cut and not math_mode:
                continue
            if st.op == "elem":
                # One element of a matrix: its adjoint lands on that element alone, in place
                # (adjoint arrays are never shared), instead of adding a one-hot matrix.
                p = st.parents[0]
                target = adj[p]
                target[st.param] = ex.add(target[st.param], a)
                continue
            if st.vjp is not None:
                for p, contribution in zip(st.parents, st.vjp(a)):
                    adj[p] = ex.accumulate(adj[p], contribution)
                continue
            partials = (ex.ONE,) * len(st.parents) if (st.cut and math_mode) else st.partials
            for p, d in zip(st.parents, partials):
                if ex.all_zero(d):
                    continue
                adj[p] = ex.accumulate(adj[p], _times(a, d))
        return adj

    def reaches_output(self) -> list[bool]:
        """Which steps torch's backward pass visits (on the graph and upstream of the output)."""
        seen = [False] * len(self.steps)
        seen[self.output] = True
        for st in reversed(self.steps):
            if seen[st.index] and not st.cut:
                for p in st.parents:
                    seen[p] = True
        return [s and self.steps[i].grad for i, s in enumerate(seen)]


def _times(a: Any, d: Any) -> Any:
    if ex.is_mat(a) or ex.is_mat(d):
        return ex.ewise(ex.mul, a, d)
    return ex.mul(a, d)


class _Forced:
    """Decisions to replay, in the order they are met."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        self.items = list(decisions)
        self.k = 0

    def next(self, kind: DecisionKind) -> Hashable:
        if self.k >= len(self.items):
            raise _Diverged
        d = self.items[self.k]
        self.k += 1
        if d.kind != kind:
            raise _Diverged
        return d.taken


class _Diverged(Exception):
    """A forced run met a different sequence of decisions (a threshold within delta)."""


class _Runner:
    def __init__(self, lowered: LoweredProgram, point: dict[str, ex.Exact], force: _Forced | None, max_iterations: int,
                 math: bool = False) -> None:
        self.lowered = lowered
        self.math = math  # ops whose torch kernel takes a shortcut (Op.departs) compute the mathematics
        self.steps: list[PathStep] = []
        self.decisions: list[Decision] = []
        self.env: dict[str, int] = {}
        self.force = force
        self.max_iterations = max_iterations
        self.line_counts: dict[int, int] = {}
        self.inputs: list[int] = []
        self.reads: tuple[int, ...] = ()  # what the last condition read (`cond`)
        for name in lowered.inputs:
            idx = self.add(PathStep(len(self.steps), "input", sp.Symbol(name), 0, name, point[name], (), (), None, True, True))
            self.env[name] = idx
            self.inputs.append(idx)

    def add(self, st: PathStep) -> int:
        self.steps.append(st)
        if st.line:
            self.line_counts[st.line] = self.line_counts.get(st.line, 0) + 1
        return st.index

    # -- operands and conditions

    def operand(self, o: Operand) -> tuple[ex.Exact, int | None]:
        if isinstance(o, Const):
            return ex.from_sympy(o.value), None
        idx = self.env[o]
        return self.steps[idx].value, idx

    def cond(self, c: Cond) -> tuple[bool, bool, tuple[tuple[sp.Basic, ex.Exact], ...]]:
        """(truth, tie, margins) of a condition at the current values; the steps it read are
        left in `self.reads` for the decision that follows."""
        self.reads = tuple(self.env[name] for _, name in c.names)
        values = {sym: self.steps[self.env[name]].value for sym, name in c.names}
        margins: list[tuple[sp.Basic, ex.Exact]] = []
        tie = False
        for rel in _relations(c.expr):
            lhs = exact_eval(rel.lhs, values)
            rhs = exact_eval(rel.rhs, values)
            m = ex.sub(lhs, rhs)
            margins.append((rel, m))
            depends = any(self.steps[self.env[name]].depends for sym, name in c.names if sym in rel.free_symbols)
            if depends and ex.is_zero(m):
                tie = True
        truth = bool(exact_eval(c.expr, values))
        return truth, tie, tuple(margins)

    def decide(self, kind: DecisionKind, node: sp.Basic, line: int, taken: Hashable, tie: bool,
               margins: tuple[tuple[sp.Basic, ex.Exact], ...] = (), step: int | None = None) -> Hashable:
        if self.force is not None:
            taken = self.force.next(kind)
        reads = () if kind == "piece" else self.reads
        self.decisions.append(Decision(kind, node, line, taken, tie, margins, step, reads))
        return taken

    # -- statements

    def block(self, stmts: Sequence[Stmt]) -> None:
        for s in stmts:
            if isinstance(s, Step):
                self.step(s)
            elif isinstance(s, If):
                self.if_(s)
            elif isinstance(s, While):
                self.while_(s)
            elif isinstance(s, For):
                self.for_(s)
            elif isinstance(s, NoGrad):
                self.block(s.body)

    def if_(self, s: If) -> None:
        taken = len(s.branches) - 1
        tie = False
        margins: tuple[tuple[sp.Basic, ex.Exact], ...] = ()
        reads: tuple[int, ...] = ()
        for k, br in enumerate(s.branches):
            if br.cond is None:
                taken = k
                break
            truth, t, m = self.cond(br.cond)
            tie = tie or t
            margins += m
            reads += self.reads
            if truth:
                taken = k
                break
        self.reads = reads
        taken = self.decide("if", s.node, s.line, taken, tie, margins)
        self.block(s.branches[int(taken)].body)  # type: ignore[arg-type]

    def while_(self, s: While) -> None:
        count = 0
        before: tuple[ex.Exact, ...] = ()
        while True:
            truth, tie, margins = self.cond(s.cond)
            truth = bool(self.decide("while", s.node, s.line, truth, tie, margins))
            self.line_counts[s.line] = self.line_counts.get(s.line, 0) + 1
            if not truth:
                return
            count += 1
            state = tuple(self.steps[self.env[name]].value for _, name in s.cond.names)
            if count > self.max_iterations:
                raise _loop_limit(s, count - 1, self.max_iterations, self, stuck=state == before)
            before = state
            self.block(s.body)

    def for_(self, s: For) -> None:
        vals = [self.operand(b) for b in s.bounds]
        ints = [_truncate(v) for v, _ in vals]
        tie = any(idx is not None and self.steps[idx].depends and ex.is_rational(v) and v.q == 1 for v, idx in vals)
        count = len(range(*ints))
        self.reads = tuple(idx for _, idx in vals if idx is not None)
        count = int(self.decide("for", s.node, s.line, count, tie))  # type: ignore[arg-type]
        if count > self.max_iterations:
            raise _loop_limit(s, count, self.max_iterations, self, stuck=False)
        start, _, step = ints
        for k in range(count):
            self.env[s.var] = self.add(PathStep(len(self.steps), "loop_var", sp.Symbol(s.var), s.line, s.var, ex.Q(start + k * step), (), ()))
            self.block(s.body)

    def step(self, s: Step) -> None:
        vals: list[ex.Exact] = []
        parents: list[int] = []
        const_mask: list[bool] = []
        for a in s.args:
            v, idx = self.operand(a)
            vals.append(v)
            const_mask.append(idx is None)
            if idx is not None:
                parents.append(idx)
        op = OPS[s.op]
        param = _param(s.op, s.param)
        if s.op == "where":
            assert s.cond is not None
            truth, tie, margins = self.cond(s.cond)
            param = bool(self.decide("where", s.node, s.line, truth, tie, margins))
        vjp = None
        if op.vjp is not None:
            value = op.value(vals, param)
            partials: tuple[Any, ...] = ()
            vjp = functools.partial(op.vjp, tuple(vals), value, param)
        elif any(ex.is_mat(v) for v in vals):
            value, partials = self.elementwise(s, op, vals, param)
        else:
            value = op.value(vals, param)
            if s.op not in ("where", "sign") and any(ex.is_nan(v) for v in vals):
                value = ex.NAN  # NaN propagates through every op but a selection (and sign: 0), as in torch
            partials = op.partials(vals, value, param)
            if self.math and op.math is not None and op.departs is not None and op.departs(vals, param):
                value, partials = op.math(vals, param)
            if op.piece is not None and not ex.is_nan(value):
                piece = op.piece(vals, param)
                taken = self.decide("piece", s.node, s.line, piece, piece is None, step=len(self.steps))
                if self.force is not None and taken is not None:
                    assert op.on_piece is not None
                    value, partials = op.on_piece(taken, vals, param)
        partials = tuple(d for d, c in zip(partials, const_mask) if not c)
        cut = None
        if s.op in CUT_OPS:
            cut = "graph-break" if s.op in GRAPH_BREAK_OPS else "detach"
        parent_steps = [self.steps[p] for p in parents]
        depends = any(p.depends for p in parent_steps)
        grad = cut is None and any(p.grad for p in parent_steps)
        keep = tuple(vals) if (op.undefined is not None or op.piece is not None or op.departs is not None
                               or op.reads_result) and vjp is None else None
        idx = self.add(PathStep(len(self.steps), s.op, s.node, s.line, s.name, value, tuple(parents), partials, cut,
                                depends, grad, keep, param if (keep is not None or s.op == "elem") else None, vjp))
        self.env[s.name] = idx

    def elementwise(self, s: Step, op: Any, vals: list[Any], param: Any) -> tuple[Any, tuple[Any, ...]]:
        """A scalar op applied to matrices elementwise (scalars broadcast), with elementwise
        partials; a non-smooth op decides a piece for every element."""
        shape = ex.shape_of(*vals)
        value = ex.full(shape, ex.ZERO)
        partials = [ex.full(shape, ex.ZERO) for _ in vals]
        pieces = []
        elements = list(np.ndindex(*shape))
        for idx in elements:
            args = [v[idx] if ex.is_mat(v) else v for v in vals]
            v = op.value(args, param)
            d = op.partials(args, v, param)
            if self.math and op.math is not None and op.departs is not None and op.departs(args, param):
                v, d = op.math(args, param)
            if op.piece is not None:
                pieces.append(op.piece(args, param))
            value[idx] = v
            for k, dk in enumerate(d):
                partials[k][idx] = dk
        if op.piece is not None:
            taken = self.decide("piece", s.node, s.line, tuple(pieces), any(p is None for p in pieces), step=len(self.steps))
            if self.force is not None and taken is not None:
                for idx, piece in zip(elements, taken):  # type: ignore[arg-type]
                    if piece is not None:
                        args = [v[idx] if ex.is_mat(v) else v for v in vals]
                        value[idx], d = op.on_piece(piece, args, param)
                        for k, dk in enumerate(d):
                            partials[k][idx] = dk
        # A scalar argument broadcast over the matrix collects the partials of every element.
        return value, tuple(p if ex.is_mat(v) else p for p, v in zip(partials, vals))


def _param(op: str, param: Any) -> Any:
    """A step's constant parameter as an exact number at the current working precision
    (the lowering keeps SymPy constants such as pi symbolic)."""
    if op == "add":
        signs, const = param
        return signs, ex.from_sympy(const)
    if isinstance(param, sp.Basic):
        return ex.from_sympy(param)
    return param


def _relations(c: sp.Basic) -> list[sp.Basic]:
    if isinstance(c, sp.core.relational.Relational):
        return [c]
    out: list[sp.Basic] = []
    for a in getattr(c, "args", ()):
        out += _relations(a)
    return out


def _truncate(v: ex.Exact) -> int:
    """A loop bound rounded toward zero, as Python's range(int(b)) does."""
    if ex.is_rational(v):
        return int(v.trunc())
    m = v.mid()
    return int(m.floor().unique_fmpz()) if m >= 0 else -int((-m).floor().unique_fmpz())


def _loop_limit(s: While | For, count: int, limit: int, r: _Runner, stuck: bool) -> LoopLimitError:
    if isinstance(s, For):
        bounds = [b for b in s.bounds if isinstance(b, str)]
        why = ("Its bounds come from " + ", ".join(bounds) + "." if bounds else "Its bounds are constants.")
        return LoopLimitError(FOR_LIMIT.format(node=node_text(s.node), line=s.line, count=count, limit=limit, why=why))
    cond = sp.sstr(s.cond.expr)
    state = ", ".join(f"{sym} = {_short(r.steps[r.env[name]].value)}" for sym, name in s.cond.names)
    if stuck:
        why = "One pass of the body leaves these values unchanged, so the condition can never become false."
    else:
        why = "The body changes these values, but the condition still held after every pass."
    return LoopLimitError(LOOP_LIMIT.format(node=f"while {cond}", line=s.line, count=count, limit=limit,
                                            cond=cond, state=state or "no state", why=why))


def _short(v: ex.Exact) -> str:
    return sp.sstr(ex.to_sympy(v)) if ex.is_rational(v) and v.height_bits() < 120 else ex.nstr(v, 8)


def run(lowered: LoweredProgram, point: dict[str, ex.Exact], *, force: Sequence[Decision] | None = None,
        max_iterations: int = DEFAULT_MAX_ITERATIONS, math: bool = False) -> Path:
    """Run the lowered program's IR at `point` (input name -> exact value) with exact arithmetic.
    With `math`, an op whose torch kernel takes a shortcut the mathematics does not have
    (`Op.departs`: softplus above its threshold) computes the mathematics' value and partials
    instead: the run the symbolic side differentiates."""
    r = _Runner(lowered, point, _Forced(force) if force is not None else None, max_iterations, math)
    r.block(lowered.body)
    value, idx = r.operand(lowered.output)
    if idx is None:  # a constant output (the lowering keeps it on the graph, so this is rare)
        idx = r.add(PathStep(len(r.steps), "copy", sp.sympify(0), lowered.output_line, "out", value, (), ()))
    return Path(tuple(r.steps), tuple(r.decisions), tuple(r.inputs), idx, r.line_counts)


# --------------------------------------------------------------------------- one-sided runs

# Bits to follow a side with: the step beside the point is 2**-240 of its size.
PERTURB_PREC = 1700


@dataclass(frozen=True, slots=True)
class Side:
    """The piece of the function just left (-1) or right (+1) of the point along one input."""

    direction: int
    value: ex.Exact  # the one-sided limit of f at the point
    derivative: ex.Exact  # the one-sided derivative with respect to the input
    decisions: tuple[Decision, ...]
    # The piece had no value at the point (a removable singularity): value and slope are limits
    # taken beside it.
    limit: bool = False


def beside(lowered: LoweredProgram, point: dict[str, Any], name: str, direction: int,
           max_iterations: int = DEFAULT_MAX_ITERATIONS, idx: tuple[int, int] | None = None,
           seed: Any = None, limit_of_slope: bool = False, math: bool = False) -> Side | None:
    """Follow the function from just beside the point (`direction` = -1 left, +1 right of input
    `name`), and continue that piece to the point. None when the side cannot be followed (a
    threshold within delta of the point). With `limit_of_slope`, the derivative is taken beside
    the point itself (the limit of the slope, for a vertical tangent inside: sqrt(x**2) at 0),
    and a side where the function has no real value is None. A piece with no value at the point
    itself (sin(x)/x at 0, a removable singularity a `where` fills in) is not continued to it:
    its value and slope are taken just beside it, as limits (`Side.limit`, `_limit_beside`)."""
    x = point[name] if idx is None else point[name][idx]
    if ex.is_rational(x) and x != 0:
        e = int(x.p).bit_length() - int(x.q).bit_length()
        delta = ex.Q(2) ** (e - 240) if e >= 240 else ex.Q(1, 2 ** (240 - e))
    else:
        delta = ex.Q(1, 2**1200)
    moved = dict(point)
    shifted = ex.add(x, direction * delta)
    if idx is None:
        moved[name] = shifted
    else:
        moved[name] = point[name].copy()
        moved[name][idx] = shifted
    # Beside a loop's threshold the loop may run once more than at the point itself.
    limit = 2 * max_iterations + 1
    try:
        with ex.working_precision(max(PERTURB_PREC, ex.prec())):
            near = run(lowered, moved, max_iterations=limit, math=math)
        at = run(lowered, point, force=near.decisions, max_iterations=limit, math=math)
    except (_Diverged, LoopLimitError):
        return None
    k = lowered.inputs.index(name)
    value = at.value if seed is None else ex.total(ex.ewise(ex.mul, at.value, seed))
    removable = not limit_of_slope and not all(ex.is_finite(v) for v in ex.elements(value))
    if limit_of_slope or removable:
        if not all(ex.is_finite(v) for v in ex.elements(near.value)) or domain_violation(near) is not None:
            return None if limit_of_slope else Side(direction, value, at.gradient("math", seed)[k], near.decisions)
        if removable:
            # The piece has no value at the point itself (sin(x)/x at 0): its one-sided limits
            # are its value and slope beside the point, where that is decided.
            try:
                got = _limit_beside(lowered, point, name, idx, direction, near, seed, limit, math)
            except (_Diverged, LoopLimitError):
                got = None
            if got is None:
                return Side(direction, value, at.gradient("math", seed)[k], near.decisions)
            return Side(direction, got[0], got[1], near.decisions, limit=True)
        with ex.working_precision(max(PERTURB_PREC, ex.prec())):
            g = near.gradient("math", seed)[k]
    else:
        g = at.gradient("math", seed)[k]
    return Side(direction, value, g if idx is None else g[idx], near.decisions)


# How many times a limit beside the point is taken again at a higher precision, when the
# cancellation in the piece ((1 - cos(x))/x**2 beside 0) ate the bits it had.
LIMIT_RERUNS = 3


def _limit_beside(lowered: LoweredProgram, point: dict[str, Any], name: str, idx: tuple[int, int] | None,
                  direction: int, near: Path, seed: Any, limit: int, math: bool) -> tuple[ex.Exact, ex.Exact] | None:
    """The one-sided limits of value and slope of the piece `near` ran, where it has no value at
    the point itself: its value and slope at a distance delta so small that the slope times delta
    is below the caller's working resolution (delta = 2**-(2*prec + 128) of the point), so that
    the value there is the limit to that resolution. None where the piece is not that tame there
    (a pole, x*sin(1/x): its slope times delta is not small), or leaves the piece `near` ran.
    A piece that cancels near the point loses bits there; it is run again at a precision
    raised by what the balls lost, until they certify the caller's working precision."""
    caller = ex.prec()
    x = point[name] if idx is None else point[name][idx]
    e = int(x.p).bit_length() - int(x.q).bit_length() if (ex.is_rational(x) and x != 0) else 0
    shift = 2 * caller + 128
    delta = ex.Q(2) ** (e - shift) if e >= shift else ex.Q(1, 2 ** (shift - e))
    moved = dict(point)
    if idx is None:
        moved[name] = ex.add(x, direction * delta)
    else:
        moved[name] = point[name].copy()
        moved[name][idx] = ex.add(x, direction * delta)
    k = lowered.inputs.index(name)
    bits = max(PERTURB_PREC, shift + 128)
    for _ in range(LIMIT_RERUNS + 1):
        with ex.working_precision(bits):
            there = run(lowered, moved, max_iterations=limit, math=math)
            if [(d.kind, d.taken) for d in there.decisions] != [(d.kind, d.taken) for d in near.decisions]:
                return None
            if not all(ex.is_finite(v) for v in ex.elements(there.value)) or domain_violation(there) is not None:
                return None
            g = there.gradient("math", seed)[k]
            slope = g if idx is None else g[idx]
            value = there.value if seed is None else ex.total(ex.ewise(ex.mul, there.value, seed))
            short = max(_uncertain_bits(value, caller), _uncertain_bits(slope, caller))
        if short <= 0 or bits + short > ex.MAX_PREC:
            break
        bits += short + 64
    if short > 0:
        return None
    with ex.working_precision(bits):
        moved_by = abs(ex.to_real(ex.mul(slope, delta)))
        scale = max(abs(ex.to_real(value)).mid(), ex.to_real(ex.ONE))
        if not bool(moved_by < scale * ex.to_real(ex.Q(1, 2 ** (caller + 40)))):
            return None
    return value, slope


def _uncertain_bits(v: ex.Exact, caller: int) -> int:
    """How many more bits a ball needs for its radius to be 2**-(caller + 64) of its size (or of
    1, for a value around 0)."""
    if ex.is_rational(v) or v.is_exact():
        return 0
    if not v.is_finite():
        return ex.MAX_PREC
    man, e = v.rad().mid().man_exp()
    rad_bits = int(e) + int(man).bit_length()
    mid = v.mid()
    size = 0
    if not mid.is_zero():
        m, f = mid.man_exp()
        size = max(0, int(f) + int(m).bit_length())
    return rad_bits - size + caller + 64


def _used(path: Path) -> list[bool]:
    """Steps whose value the output uses: every operand, except the branch a `where` drops."""
    used = [False] * len(path.steps)
    used[path.output] = True
    for st in reversed(path.steps):
        if not used[st.index]:
            continue
        for p, d in zip(st.parents, st.partials if st.op == "where" else (None,) * len(st.parents)):
            if st.op == "where" and ex.all_zero(d):
                continue
            used[p] = True
    return used


def domain_violation(path: Path) -> PathStep | None:
    """The first step where the mathematics is undefined on the path that matters: a value that
    is not a finite real number where the output uses it, or an infinite slope where the output
    depends on it."""
    adj = path.adjoints("math")
    used = _used(path)
    for st in path.steps:
        if used[st.index] and not all(ex.is_finite(v) for v in ex.elements(st.value)):
            return st
    for st in path.steps:
        a = adj[st.index]
        if ex.is_rational(a) and a == 0:
            continue
        op = OPS.get(st.op)
        if op is not None and op.undefined is not None and st.args_values is not None and op.undefined(st.args_values, None):
            return st
        for p, d in zip(st.parents, st.partials if not st.cut else ()):
            if path.steps[p].depends and not all(ex.is_finite(v) for v in ex.elements(d)):
                return st
    return None


# --------------------------------------------------------------------------- second order


def as_expression(path: Path, symbols: Sequence[sp.Symbol], math: bool = False) -> sp.Basic:
    """The executed path as one straight-line SymPy expression of the inputs: branches fixed,
    loops unrolled, detached and broken steps replaced by the constant they held. Used for
    second derivatives (order=2), where the path is differentiated twice. With `math`, the
    mathematics of the same path: `detach`, `item` and `no_grad` are the identity, and softplus
    is log(1 + e^x) everywhere (not x itself above torch's threshold)."""
    exprs: list[Any] = []
    inputs = dict(zip(path.inputs, symbols))
    for st in path.steps:
        if st.index in inputs:
            exprs.append(inputs[st.index])
            continue
        if math and st.cut and st.parents:
            exprs.append(exprs[st.parents[0]])  # the cut ops (detach, item, no_grad) pass their one value on
            continue
        if math and st.op == "softplus" and st.parents:
            exprs.append(_SOFTPLUS(exprs[st.parents[0]]))
            continue
        if st.cut or not st.parents or st.op in ("loop_var", "constant", "const_on_graph", "matconst"):
            exprs.append(ex.to_sympy(st.value) if not ex.is_mat(st.value) else sp.ImmutableMatrix(st.value.tolist()))
            continue
        exprs.append(step_expression(st, [exprs[p] for p in st.parents]))
    return exprs[path.output]


def step_expression(st: PathStep, args: list[Any]) -> sp.Basic:
    """One step as SymPy, from its parents' expressions (constants are folded back in from the
    node, which holds them)."""
    op = st.op
    node = st.node
    if op in ("copy", "detach", "item", "no_grad"):
        return args[0]
    if op == "where":
        # Only the taken branch reaches the output; a constant branch is the value itself.
        for a, d in zip(args, st.partials):
            if not ex.all_zero(d):
                return a
        return ex.to_sympy(st.value)
    if op in ("add", "mul", "div", "pow_int", "pow_frac", "sqrt", "pow"):
        # The node is the SymPy subexpression this step computes; its free symbols are the
        # program's variables, which the parents' expressions replace.
        return _substitute(node, st, args)
    sympy_fn = {"exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "asin": sp.asin,
                "acos": sp.acos, "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh,
                "erf": sp.erf, "expm1": _EXPM1, "log1p": _LOG1P, "sigmoid": _SIGMOID, "abs": sp.Abs, "sign": sp.sign, "floor": sp.floor, "ceil": sp.ceiling}.get(op)
    if sympy_fn is not None:
        return sympy_fn(args[0])
    if op == "relu":
        return TorchRelu(args[0])
    if op in ("logsumexp", "logaddexp", "vector_norm"):
        return node.func(*_with_constants(node, args, len(node.args)))
    if op in ("softmax", "log_softmax"):
        # The index is the node's first argument; the values follow it.
        return node.func(node.args[0], *_with_constants(sp.Tuple(*node.args[1:]), args, len(node.args) - 1))
    if op == "softplus":
        return TorchSoftplus(args[0])
    if op in ("atan2", "maximum", "minimum"):
        a, b = _with_constants(node, args, 2)
        return {"atan2": sp.atan2, "maximum": TorchMaximum, "minimum": TorchMinimum}[op](a, b)
    if op in ("clamp_min", "clamp_max"):
        c = ex.to_sympy(st.param) if st.param is not None else node.args[0]
        return TorchClampMin(args[0], c) if op == "clamp_min" else -TorchClampMin(-args[0], -c)
    if op == "heaviside":
        return sp.Heaviside(args[0])
    raise NotImplementedError(op)


from sympy.codegen.cfunctions import expm1 as _EXPM1, log1p as _LOG1P  # noqa: E402

from ..program.primitives import SOFTPLUS_THRESHOLD  # noqa: E402
from ..program.primitives import sigmoid as _SIGMOID  # noqa: E402
from ..program.primitives import softplus as _SOFTPLUS  # noqa: E402
from ..program.primitives import PRIMITIVES
from .selection import select


def _with_constants(node: sp.Basic, args: list[Any], arity: int) -> list[Any]:
    """The operands of a binary step: its parents' expressions where the node has a variable
    operand, the node's own constant where it has one (`atan2(x, -1)`)."""
    if len(args) == arity:
        return args
    operands = list(node.args[:arity]) if len(node.args) >= arity else []
    out, rest = [], iter(args)
    for o in operands:
        out.append(o if _constant_operand(o) else next(rest))
    return out


def _constant_operand(o: sp.Basic) -> bool:
    """An operand the program folds into its step, as the lowering decides: a number, unless it
    holds one of our primitives (`detach(0)` is a number to SymPy, a step of its own to torch)."""
    return bool(getattr(o, "is_number", False)) and not o.free_symbols and not o.has(*PRIMITIVES)


def _substitute(node: sp.Basic, st: PathStep, args: list[Any]) -> sp.Basic:
    """Rebuild an arithmetic step from its node with the parents' expressions in place of the
    node's direct operands."""
    op, operands, param = select(node)
    constant = [_constant_operand(o) for o in operands]
    if sum(not c for c in constant) != len(args):
        return node
    rest = iter(args)
    v = [o if c else next(rest) for o, c in zip(operands, constant)]
    # Rebuilt from the operands as the step computes them, not by xreplace on the node: SymPy
    # flattens `t*exp(a)/2` into Mul(1/2, t, exp(a)), which holds no subtree `t*exp(a)` to replace.
    if op == "add":
        signs, const = param
        return const + sp.Add(*(sign * a for sign, a in zip(signs, v)))
    if op == "mul":
        return param * sp.Mul(*v)
    if op == "div":
        return v[0] / v[1]
    if op == "pow_int":
        return v[0] ** param
    if op == "sqrt":
        return sp.sqrt(v[0])
    if op == "pow_frac":
        return v[0] ** node.exp
    if op == "pow":
        return v[0] ** v[1]
    return node.xreplace(dict(zip(operands, v)))


# --------------------------------------------------------------------------- torch's double backward
# The executed path differentiated twice must follow each op's double backward, not SymPy's
# conventions (`Heaviside(0) = 1/2`, a nested maximum flattened into a 3-way Max). Each
# piecewise-linear op is a SymPy function whose derivative is torch's backward mask, and the
# mask's own derivative is 0 (torch's masks are constants of the graph). `exact(args)` gives
# the exact value; `_eval_node` in rules.py calls it.


class _TorchOp(sp.Function):
    is_real = True

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        raise NotImplementedError


class TorchMask(_TorchOp):
    """torch's backward mask of a kink: 1 above, 0 below, `at` exactly on it (relu: 0,
    clamp: 1, maximum/minimum: 1/2); its derivative is 0."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return sp.Integer(0)

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        u, at = a
        s = ex.sign(u)
        return ex.ONE if s > 0 else (ex.ZERO if s < 0 else at)


class TorchRelu(_TorchOp):
    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return TorchMask(self.args[0], sp.Integer(0))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["relu"].value(a, None)


class TorchClampMin(_TorchOp):
    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        u, c = self.args
        return TorchMask(u - c, sp.Integer(1)) if argindex == 1 else sp.Integer(0)

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["clamp_min"].value(a[:1], a[1])


class TorchMaximum(_TorchOp):
    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        a, b = self.args
        return TorchMask(a - b, sp.Rational(1, 2)) if argindex == 1 else TorchMask(b - a, sp.Rational(1, 2))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["maximum"].value(a, None)


class TorchMinimum(_TorchOp):
    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        a, b = self.args
        return TorchMask(b - a, sp.Rational(1, 2)) if argindex == 1 else TorchMask(a - b, sp.Rational(1, 2))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["minimum"].value(a, None)


class TorchSoftplus(_TorchOp):
    """torch.nn.functional.softplus as torch computes it: x itself above 20. Its derivative is
    torch's softplus_backward, whose own derivative is softplus_double_backward."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return TorchSoftplusSlope(self.args[0])

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["softplus"].value(a, None)

    def _sympystr(self, printer: sp.printing.StrPrinter) -> str:
        return f"softplus({printer._print(self.args[0])})"


class TorchSoftplusSlope(_TorchOp):
    """softplus_backward: 1 where x > 20, sigmoid(x) elsewhere."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return TorchSoftplusCurve(self.args[0])

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        (slope,) = OPS["softplus"].partials(a, OPS["softplus"].value(a, None), None)
        return slope

    def _sympystr(self, printer: sp.printing.StrPrinter) -> str:
        u = printer._print(self.args[0])
        return f"Piecewise((1, {u} > {SOFTPLUS_THRESHOLD}), (sigmoid({u}), True))"  # as the backward pass reads


class TorchSoftplusCurve(_TorchOp):
    """softplus_double_backward: sigmoid(x)*(1 - sigmoid(x)) where x < 20, and 0 from 20 on (its
    mask is x < threshold, while softplus_backward's is x > threshold: at 20 itself the slope is
    sigmoid(20) but the curvature 0)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        x = self.args[0]
        s = _SIGMOID(x)
        return sp.Piecewise((0, x >= SOFTPLUS_THRESHOLD), (s * (1 - s) * (1 - 2 * s), True))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        if OPS["softplus"].departs(a, None):  # type: ignore[misc]
            return ex.ZERO
        s = OPS["sigmoid"].value(a, None)
        return ex.mul(s, ex.sub(ex.ONE, s))

    def _sympystr(self, printer: sp.printing.StrPrinter) -> str:
        u = printer._print(self.args[0])
        return f"Piecewise((0, {u} >= {SOFTPLUS_THRESHOLD}), (sigmoid({u})*(1 - sigmoid({u})), True))"
