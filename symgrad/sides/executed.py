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

import contextlib
import functools
import threading
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import sympy as sp

from ..base.errors import FOR_LIMIT, LOOP_LIMIT, LoopLimitError
from ..program import exact as ex
from ..program import exact_fast as xf
from ..program.custom import CUSTOM_OP
from ..program.ops import OPS
from ..program.elementwise import ElementVar
from ..program.program import node_text, record_repr
from ..program.rules import exact_eval
from .run_plan import IfPlan, StepPlan, loop_bound, param_of, plan, relations as _relations
from .ir import (
    Cond,
    Const,
    For,
    If,
    LoweredProgram,
    Operand,
    Step,
    While,
)

DEFAULT_MAX_ITERATIONS = 10_000
DecisionKind = Literal["if", "where", "while", "for", "piece"]


@dataclass(frozen=True, slots=True)
class PathStep:
    """One operation that ran: its node, line, exact value and torch's exact partials."""

    __repr__ = record_repr

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

    __repr__ = record_repr

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

    __repr__ = record_repr

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
        adj = self.adjoints(mode, seed) if seed is None else self._adjoints(mode, seed, lazy=True)
        return tuple(adj[i] if adj[i] is not None else ex.full(self.steps[i].value.shape, ex.ZERO) for i in self.inputs)

    def adjoints(self, mode: Literal["executed", "math"], seed: Any = None) -> list[Any]:
        """Reverse accumulation: d output / d step for every step (matrices for matrix steps).
        `seed` is the output's adjoint (1 for a scalar output; a one-hot matrix picks one
        element of a matrix output). Without a seed the result is computed once per mode and
        precision, and shared: callers must not change it. On a path without cut steps the two
        modes are one computation, and share one list (a loop of 10^5 iterations keeps one
        adjoint per step once, not twice)."""
        if seed is None:
            if mode == "math" and not self.has_cut:
                mode = "executed"
            key = (mode, ex.prec(), _WANTED.names)
            cache = self.__dict__.setdefault("_adjoint_cache", {})
            hit = cache.get(key)
            if hit is None:
                hit = cache[key] = self._adjoints(mode, None)
            return hit
        return self._adjoints(mode, seed)

    @property
    def has_cut(self) -> bool:
        """Whether a step is cut (detach, item, no_grad, a graph break) or is a user's
        torch.autograd.Function (whose executed derivative is its own backward, the mathematics'
        its forward's): only then do the executed and the mathematical adjoints differ."""
        cut = self.__dict__.get("_has_cut")
        if cut is None:
            cut = self.__dict__["_has_cut"] = any(st.cut or st.op == CUSTOM_OP for st in self.steps)
        return cut

    def adjoints_from(self, mode: Literal["executed", "math"], seeds: dict[int, Any]) -> list[Any]:
        """Reverse accumulation from adjoints given at several steps at once (`seeds`, step index
        -> its adjoint) instead of the output's: sum over the seeded steps s of seeds[s] times
        d s / d step, for every step."""
        return self._adjoints(mode, None, seeds)

    def _needed(self) -> list[bool] | None:
        """Inside `adjoints_for(names)`: the steps that depend on one of those inputs, the only
        ones whose adjoints anyone reads; None (every step) outside it."""
        wanted = _WANTED.names
        if wanted is None:
            return None
        needed = [False] * len(self.steps)
        for i in self.inputs:
            needed[i] = self.steps[i].name in wanted
        for st in self.steps:
            if not needed[st.index] and any(needed[p] for p in st.parents):
                needed[st.index] = True
        return needed

    def _adjoints(self, mode: Literal["executed", "math"], seed: Any = None,
                  seeds: dict[int, Any] | None = None, lazy: bool = False) -> list[Any]:
        """Every step's adjoint; with `lazy`, None for a matrix step's that stays 0 (a model's data X)."""
        needed = self._needed()
        adj: list[Any] = [None if ex.is_mat(st.value) else ex.ZERO for st in self.steps]  # None: a matrix of 0s

        made: set[int] = set()  # adjoints that are a product's own array: copied before an `elem` step writes in one

        def add(i: int, b: Any, product: bool = False) -> Any:  # ex.accumulate; from None, a copy as from 0s
            if adj[i] is None and ex.is_mat(b):  # (adjoints are never shared; a product's array is read, not written)
                return (made.add(i) or b) if product else b.copy()
            return ex.accumulate(ex.full(self.steps[i].value.shape, ex.ZERO) if adj[i] is None else adj[i], b)

        if seeds is not None:
            for i, a in seeds.items():
                adj[i] = add(i, a)
        else:
            if seed is None:
                # A matrix output with no seed: every element counts (the gradient of their sum).
                out = self.steps[self.output].value
                seed = ex.full(out.shape, ex.ONE) if ex.is_mat(out) else ex.ONE
            adj[self.output] = seed
        math_mode = mode == "math"
        for st in reversed(self.steps):
            a = adj[st.index]
            if not st.parents or (needed is not None and not needed[st.index]) or a is None or ex.all_zero(a):
                continue
            if st.cut and not math_mode:
                continue
            if st.op == "elem":
                # One element of a matrix: its adjoint lands on that element alone, in place
                # (adjoint arrays are never shared), instead of adding a one-hot matrix.
                p = st.parents[0]
                if adj[p] is None or p in made:
                    adj[p] = ex.full(self.steps[p].value.shape, ex.ZERO) if adj[p] is None else adj[p].copy()
                    made.discard(p)
                target = adj[p]
                target[st.param] = ex.add(target[st.param], a)
                continue
            if st.vjp is not None:
                for p, contribution in zip(st.parents, st.vjp(a)):
                    if needed is not None and not needed[p]:
                        continue
                    # a matrix product's two adjoints are products of their own: each computed
                    # only where it is read (not the adjoint of the data X in X @ W)
                    adj[p] = add(p, contribution(), True) if callable(contribution) else add(p, contribution)
                continue
            partials = (ex.ONE,) * len(st.parents) if (st.cut and math_mode) else st.partials
            if math_mode and st.op == CUSTOM_OP:  # the user's Function is its forward's value, y
                partials = st.param[1]
            scalar = not isinstance(a, np.ndarray)
            for p, d in zip(st.parents, partials):
                if (needed is not None and not needed[p]) or ex.all_zero(d):
                    continue
                b = adj[p]  # of scalars, `add(p, _times(a, d))` is this, sooner
                adj[p] = ex.add(b, ex.mul(a, d)) if (scalar and type(b) is not np.ndarray and b is not None
                                                     and not isinstance(d, np.ndarray)) else add(p, _times(a, d))
        if not lazy:
            adj = [ex.full(st.value.shape, ex.ZERO) if x is None else x for st, x in zip(self.steps, adj)]
        return adj

    def reaches_output(self) -> list[bool]:
        """Which steps torch's backward pass visits (on the graph and upstream of the output)."""
        seen = [False] * len(self.steps)
        seen[self.output] = True
        for st in reversed(self.steps):
            if seen[st.index] and not st.cut:
                # The user's Function: torch runs its backward, which reaches its inputs, never the
                # steps of its forward (read into the program for the mathematics) or what it saved.
                inputs = range(1, 1 + st.param[0].n_inputs) if st.op == CUSTOM_OP else None
                for k, p in enumerate(st.parents):
                    if inputs is None or st.param[2][k] in inputs:
                        seen[p] = True
        return [s and self.steps[i].grad for i, s in enumerate(seen)]


class _Wanted(threading.local):
    names: frozenset[str] | None = None


_WANTED = _Wanted()


@contextlib.contextmanager
def adjoints_for(names: Iterable[str] | None) -> Iterator[None]:
    """Inside the block (in this thread), reverse accumulation computes only the adjoints that
    lead to the named inputs: those a comparison differentiates with respect to, as torch's
    backward computes them for the tensors that require grad. The adjoints of data (the X of
    X @ W, half of a layer's backward pass) and of every step that depends on data alone stay 0:
    read them outside such a block, or inside `adjoints_for(None)` (every adjoint)."""
    before = _WANTED.names
    _WANTED.names = None if names is None else frozenset(names)
    try:
        yield
    finally:
        _WANTED.names = before


def _times(a: Any, d: Any) -> Any:
    if ex.is_mat(a) or ex.is_mat(d):
        # Element by element, a zero adjoint is not propagated either (0 times a nan partial, in
        # an element a `where` drops, is 0: the output does not depend on that element).
        return ex.ewise(_times_one, a, d)
    return ex.mul(a, d)


def _times_one(a: Any, d: Any) -> Any:
    if ex.is_rational(a) and a == 0 and not ex.is_finite(d):
        return a
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
                 math: bool = False, reuse: Path | None = None) -> None:
        self.lowered = lowered
        # A run of the same program at the same precision and mode (`run(reuse=)`): its steps are
        # taken as they are where this run computes the very same thing.
        self.reuse = reuse.steps if reuse is not None and reuse.__dict__.get("_made") == (lowered, ex.prec(), math) else None
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

    def cond(self, c: Cond) -> tuple[Any, bool, tuple[tuple[sp.Basic, ex.Exact], ...]]:
        """(truth, tie, margins) of a condition at the current values; the steps it read are
        left in `self.reads` for the decision that follows. A condition on matrices (`A > 0` in
        `torch.where`) holds element by element: its truth is a tuple, one per element in
        row-major order, and its margins those of the elements exactly on their threshold."""
        self.reads = tuple(self.env[name] for _, name in c.names)
        values = {sym: self.steps[self.env[name]].value for sym, name in c.names}
        if any(isinstance(sym, ElementVar) for sym in values):  # a condition of each element
            truths, ties, margins = [], False, []
            for idx in np.ndindex(*ex.shape_of(*values.values())):
                truth, tie, m = self.cond_at({s: v[idx] if ex.is_mat(v) else v for s, v in values.items()}, c)
                truths.append(truth)
                ties = ties or tie
                if tie:  # named by the element it is about: `A[0, 1] > 0`, not `A[i, j] > 0`
                    margins.extend((_at_element(rel, idx), d) for rel, d in m)
            return tuple(truths), ties, tuple(margins)
        return self.cond_at(values, c)

    def cond_at(self, values: dict[sp.Basic, ex.Exact], c: Cond) -> tuple[bool, bool, tuple[tuple[sp.Basic, ex.Exact], ...]]:
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

    def block(self, stmts: Sequence[Any]) -> None:  # a planned body (`run_plan`)
        for p in stmts:
            if type(p) is StepPlan:
                self.step(p)
            elif type(p) is IfPlan:
                self.if_(p.s, p.bodies)
            elif isinstance(p.s, While):
                self.while_(p.s, p.body)
            else:
                self.for_(p.s, p.body, p.var_read)

    def if_(self, s: If, bodies: Sequence[Any]) -> None:
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
        self.block(bodies[int(taken)])  # type: ignore[arg-type]

    def while_(self, s: While, body: Sequence[Any]) -> None:
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
            self.block(body)

    def for_(self, s: For, body: Sequence[Any], var_read: bool = True) -> None:
        vals = [self.operand(b) for b in s.bounds]
        ints = [loop_bound(v) for v, _ in vals]
        tie = any(idx is not None and self.steps[idx].depends and ex.is_rational(v) and v.q == 1 for v, idx in vals)
        count = len(range(*ints))
        self.reads = tuple(idx for _, idx in vals if idx is not None)
        count = int(self.decide("for", s.node, s.line, count, tie))  # type: ignore[arg-type]
        if count > self.max_iterations:
            raise _loop_limit(s, count, self.max_iterations, self, stuck=False)
        start, _, step = ints
        if not var_read:  # no statement reads the variable: its line counts the passes, no step per pass
            self.line_counts[s.line] = self.line_counts.get(s.line, 0) + count
        for k in range(count):
            if var_read:
                self.env[s.var] = self.add(PathStep(len(self.steps), "loop_var", sp.Symbol(s.var), s.line, s.var, ex.Q(start + k * step), (), ()))
            self.block(body)

    def reused(self, s: Step) -> PathStep | None:
        """The reference run's step at this position, where it is this statement applied to the
        very same values (each parent's value the same object), by an op that decides nothing
        (no kink, no `where`): its value and partials are what this step would compute, exactly
        (the same arithmetic on the same numbers at the same precision), and are shared."""
        ref = self.reuse
        n = len(self.steps)
        if ref is None or n >= len(ref):
            return None
        st = ref[n]
        if st.name != s.name or st.op != s.op or st.line != s.line or s.cond is not None or s.op in ("where", CUSTOM_OP) \
                or OPS[s.op].piece is not None:
            return None
        parents = tuple(self.env[a] for a in s.args if not isinstance(a, Const))
        if parents != st.parents or any(self.steps[p].value is not ref[p].value for p in parents):
            return None
        return st

    def step(self, p: StepPlan) -> None:
        s = p.s
        if self.reuse is not None and p.shareable:
            same = self.reused(s)
            if same is not None:
                self.env[s.name] = self.add(same)
                return
        steps, env = self.steps, self.env
        vals: list[ex.Exact] = []
        parents: list[int] = []
        mat = False
        for a in p.args:
            if type(a) is str:
                idx = env[a]
                parents.append(idx)
                v = steps[idx].value
            else:
                v = ex.from_sympy(a.value) if type(a) is Const else a
            vals.append(v)
            mat = mat or isinstance(v, np.ndarray)
        op = p.op
        vjp, param = None, p.param
        if p.plain and not mat:  # op.value and op.partials of scalars are the whole step
            value = op.value(vals, param)
            if p.nan_in:
                for v in vals:
                    if not isinstance(v, ex.fmpq) and v.is_nan():
                        value = ex.NAN  # NaN propagates through every op but a selection (and sign: 0), as in torch
            partials = op.partials(vals, value, param)
        else:
            value, partials, param, vjp = self.general(p, vals)
        if p.consts is not None:
            partials = tuple(d for d, c in zip(partials, p.consts) if not c)
        if s.op == CUSTOM_OP:  # (its spec, the mathematics' partials: the identity of forward's value,
            # and which argument each parent is)
            mask = p.consts or (False,) * len(vals)
            param = (param, tuple(d for d, c in zip(param.math_partials(len(vals)), mask) if not c),
                     tuple(k for k, c in enumerate(mask) if not c))
        depends = grad = False
        for i in parents:
            depends = depends or steps[i].depends
            grad = grad or steps[i].grad
        idx = len(steps)
        steps.append(PathStep(idx, s.op, s.node, s.line, s.name, value, tuple(parents), partials, p.cut, depends,
                              grad and p.cut is None, tuple(vals) if p.keep else None, param if p.keep_param else None,
                              vjp))
        if s.line:
            self.line_counts[s.line] = self.line_counts.get(s.line, 0) + 1
        env[s.name] = idx

    def general(self, p: StepPlan, vals: list[Any]) -> tuple[Any, tuple[Any, ...], Any, Any]:
        """(value, partials, param, vjp) of a step that is not plain op.value and op.partials of scalars."""
        s, op = p.s, p.op
        param = param_of(s.op, s.param) if p.param is None else p.param
        if s.op == "where":
            assert s.cond is not None
            truth, tie, margins = self.cond(s.cond)
            taken = self.decide("where", s.node, s.line, truth, tie, margins)
            param = taken if isinstance(taken, tuple) else bool(taken)
            if isinstance(param, tuple) and not any(ex.is_mat(v) for v in vals):
                # torch.where(A > 0, 1.0, 0.0): constant branches take the condition's shape
                vals[0] = ex.full(ex.shape_of(*(self.steps[self.env[n]].value for _, n in s.cond.names)), vals[0])
        vjp = None
        if op.vjp is not None:
            value, kept = op.kept(vals, param) if op.kept is not None else (op.value(vals, param), None)
            partials: tuple[Any, ...] = ()
            vjp = functools.partial(op.vjp, tuple(vals), value if kept is None else kept, param)
            if op.piece is not None:  # a fused matrix op's corners (cdist's zero distances): one piece per site
                pieces = op.piece(vals, param)
                taken = self.decide("piece", s.node, s.line, pieces, any(p is None for p in pieces), step=len(self.steps))
                if self.force is not None:
                    assert op.on_piece is not None
                    value, vjp = op.on_piece(taken, vals, param)
        elif any(ex.is_mat(v) for v in vals):
            value, partials = self.elementwise(s, op, vals, param)
        else:
            value = op.value(vals, param)
            if p.nan_in and any(ex.is_nan(v) for v in vals):
                value = ex.NAN  # NaN propagates through every op but a selection (and sign: 0), as in torch
            partials = op.partials(vals, value, param)
            if self.math and op.math is not None and op.departs is not None and op.departs(vals, param):
                value, partials = op.math(vals, param)
            if op.piece is not None and not ex.is_nan(value):
                piece = op.piece(vals, param)
                # None, or the set of tied arguments of a reduction (`reductions.py`): on the kink.
                taken = self.decide("piece", s.node, s.line, piece, piece is None or isinstance(piece, frozenset),
                                    step=len(self.steps))
                if self.force is not None and taken is not None:
                    assert op.on_piece is not None
                    value, partials = op.on_piece(taken, vals, param)
        return value, partials, param, vjp

    def elementwise(self, s: Step, op: Any, vals: list[Any], param: Any) -> tuple[Any, tuple[Any, ...]]:
        """A scalar op applied to matrices elementwise (scalars broadcast), with elementwise
        partials; a non-smooth op decides a piece for every element."""
        shape = ex.shape_of(*vals)
        if op.piece is None and op.departs is None:
            fast = xf.whole(s.op, vals, param, shape)  # matrices of plain rationals: one numpy op
            if fast is not None:
                return fast
        value = ex.full(shape, ex.ZERO)
        partials = [ex.full(shape, ex.ZERO) for _ in vals]
        pieces = []
        elements = list(np.ndindex(*shape))
        each = isinstance(param, tuple) and s.op == "where"  # an elementwise condition: one truth per element
        whole = param
        for k, idx in enumerate(elements):
            args = [v[idx] if ex.is_mat(v) else v for v in vals]
            if each:
                param = bool(whole[k])
            v = op.value(args, param)
            if s.op not in ("where", "sign") and any(ex.is_nan(a) for a in args):
                v = ex.NAN  # NaN propagates through every op but a selection (and sign: 0), as in torch
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


def _at_element(rel: sp.Basic, idx: tuple[int, ...]) -> sp.Basic:
    """A condition on the elements of matrices (its variables named `A[i, j]`, `v[i]`) written
    for one element: `A[0, 1] > 0`."""
    at = {i: str(k) for i, k in zip(("[i, j]", "[i]"), (", ".join(map(str, idx)), str(idx[0])))}
    swap = {}
    for s in rel.free_symbols:
        name = str(s.name)
        for pattern, text in at.items():
            if name.endswith(pattern):
                swap[s] = sp.Symbol(name[: -len(pattern)] + "[" + text + "]", real=True)
                break
    return rel.xreplace(swap) if swap else rel


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
        max_iterations: int = DEFAULT_MAX_ITERATIONS, math: bool = False, reuse: Path | None = None) -> Path:
    """Run the lowered program's IR at `point` (input name -> exact value) with exact arithmetic.
    With `math`, an op whose torch kernel takes a shortcut the mathematics does not have
    (`Op.departs`: softplus above its threshold) computes the mathematics' value and partials
    instead: the run the symbolic side differentiates. `reuse`: a run of the same program made
    at the same precision and with the same `math` (a run forced beside the point reuses the
    run at the point): each step that applies the same statement to the very same values is
    that run's step, shared, not computed and held again (a model's first layer, X @ W1, up to
    the kink a forced run decides otherwise)."""
    r = _Runner(lowered, point, _Forced(force) if force is not None else None, max_iterations, math, reuse)
    r.block(plan(lowered))
    value, idx = r.operand(lowered.output)
    if idx is None:  # a constant output (the lowering keeps it on the graph, so this is rare)
        idx = r.add(PathStep(len(r.steps), "copy", sp.sympify(0), lowered.output_line, "out", value, (), ()))
    path = Path(tuple(r.steps), tuple(r.decisions), tuple(r.inputs), idx, r.line_counts)
    path.__dict__["_made"] = (lowered, ex.prec(), math)  # what a run that reuses it must share
    return path


# --------------------------------------------------------------------------- one-sided runs

# Bits to follow a side with: the step beside the point is 2**-240 of its size.
PERTURB_PREC = 1700


@dataclass(frozen=True, slots=True)
class Side:
    """The piece of the function just left (-1) or right (+1) of the point along one input."""

    __repr__ = record_repr

    direction: int
    value: ex.Exact  # the one-sided limit of f at the point
    derivative: ex.Exact  # the one-sided derivative with respect to the input
    decisions: tuple[Decision, ...]
    # The piece had no value at the point (a removable singularity): value and slope are limits
    # taken beside it.
    limit: bool = False


def beside_run(lowered: LoweredProgram, point: dict[str, Any], name: str, direction: int,
               max_iterations: int = DEFAULT_MAX_ITERATIONS, idx: tuple[int, int] | None = None,
               math: bool = False, reuse: Path | None = None) -> tuple[Path, Path] | None:
    """The two runs behind `beside`: the program run just beside the point (`direction` along
    input `name`, element idx of a matrix input), and run at the point forced to the pieces it
    took there (sharing the steps of `reuse`, the run at the point, that it computes again:
    `run`). None when the side cannot be followed."""
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
        at = run(lowered, point, force=near.decisions, max_iterations=limit, math=math, reuse=reuse)
    except (_Diverged, LoopLimitError):
        return None
    return near, at


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
    got = beside_run(lowered, point, name, direction, max_iterations, idx, math)
    if got is None:
        return None
    near, at = got
    limit = 2 * max_iterations + 1
    k = lowered.inputs.index(name)
    value = at.value if seed is None else ex.total(ex.ewise(ex.mul, at.value, seed))
    pick = (lambda g: g) if idx is None else (lambda g: g[idx])  # the input's (a matrix input's element's)
    removable = not limit_of_slope and not all(ex.is_finite(v) for v in ex.elements(value))
    if limit_of_slope or removable:
        if not all(ex.is_finite(v) for v in ex.elements(near.value)) or domain_violation(near) is not None:
            return None if limit_of_slope else Side(direction, value, pick(at.gradient("math", seed)[k]), near.decisions)
        if removable:
            # The piece has no value at the point itself (sin(x)/x at 0): its one-sided limits
            # are its value and slope beside the point, where that is decided.
            try:
                got = _limit_beside(lowered, point, name, idx, direction, near, seed, limit, math)
            except (_Diverged, LoopLimitError):
                got = None
            if got is None:
                return Side(direction, value, pick(at.gradient("math", seed)[k]), near.decisions)
            return Side(direction, got[0], got[1], near.decisions, limit=True)
        with ex.working_precision(max(PERTURB_PREC, ex.prec())):
            g = near.gradient("math", seed)[k]
    else:
        g = at.gradient("math", seed)[k]
    return Side(direction, value, pick(g), near.decisions)


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


def _mask(v: Any, pick: Any) -> Any:
    """A mask over the elements of a value: `pick(element)` for each (a bool for a scalar)."""
    if ex.is_mat(v):  # np.fromiter: np.vectorize's own set-up costs more than a small matrix's elements
        return np.fromiter((bool(pick(e)) for e in v.flat), dtype=bool, count=v.size).reshape(v.shape)
    return bool(pick(v))


def _hit(m: Any) -> bool:
    return bool(np.any(m)) if isinstance(m, np.ndarray) else bool(m)


def _merge(a: Any, b: Any) -> Any:
    """a or b, element by element; a whole `True` covers every element."""
    if a is True or b is True:
        return True
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape:
        return a | b
    if isinstance(a, np.ndarray) and b is False:
        return a
    if isinstance(b, np.ndarray) and a is False:
        return b
    return _hit(a) or _hit(b)


def _elementwise_step(path: Path, st: PathStep, p: int) -> bool:
    """Whether element e of the step reads element e of its parent p alone (a scalar op applied to
    matrices, or a `where`): its partials are a matrix of the parent's shape."""
    pv = path.steps[p].value
    return (st.vjp is None and st.op != "elem" and ex.is_mat(pv) and ex.is_mat(st.value)
            and pv.shape == st.value.shape and all(ex.is_mat(d) and d.shape == pv.shape for d in st.partials))


def _back(path: Path, st: PathStep, pos: int, m: Any) -> Any:
    """The elements of parent `pos` that the elements `m` of step `st` read; a `where` reads only
    its taken branch's elements (its partial there is not 0)."""
    p = st.parents[pos]
    if st.op == "where" and pos < len(st.partials):
        taken = _mask(st.partials[pos], lambda d: not (ex.is_rational(d) and d == 0))
        if isinstance(m, np.ndarray) and isinstance(taken, np.ndarray) and m.shape == taken.shape:
            return m & taken
        if m is True and isinstance(taken, np.ndarray) and _elementwise_step(path, st, p):
            return taken
        return _hit(m) and _hit(taken)
    if isinstance(m, np.ndarray) and _elementwise_step(path, st, p):
        return m
    return _hit(m)


def _used(path: Path, seed: Any = None) -> list[Any]:
    """Steps whose value the output uses, element by element for a matrix step read elementwise
    (a bool, or a mask of its elements): every operand, except the elements a `where` drops.
    `seed`: only the output elements it weighs (a returned tuple's element, `outputs.py`); a
    column stacked from elements then uses only those elements' steps."""
    used: list[Any] = [False] * len(path.steps)
    used[path.output] = True if seed is None or not ex.is_mat(seed) else _mask(seed, lambda v: not (ex.is_rational(v) and v == 0))
    for st in reversed(path.steps):
        m = used[st.index]
        if not _hit(m):
            continue
        if st.op == "stack" and isinstance(m, np.ndarray) and m.size == len(st.parents):
            for p, hit in zip(st.parents, m.reshape(-1)):
                used[p] = _merge(used[p], bool(hit))
            continue
        for pos, p in enumerate(st.parents):
            used[p] = _merge(used[p], _back(path, st, pos, m))
    return used


def _slope_violations(path: Path, seed: Any = None) -> list[tuple[PathStep, int, Any]]:
    """(step, parent position, elements) where a partial is not finite and the output's
    mathematical adjoint there (seeded by `seed`, None: every output element) is not 0: an
    infinite slope the derivative would multiply."""
    adj = path.adjoints("math", seed)
    found = []
    for st in path.steps:
        a = adj[st.index]
        if ex.all_zero(a) or st.cut:
            continue
        live = _mask(a, lambda v: not (ex.is_rational(v) and v == 0))
        for pos, (p, d) in enumerate(zip(st.parents, st.partials)):
            if not path.steps[p].depends:
                continue
            bad = _mask(d, lambda v: not ex.is_finite(v))
            if isinstance(bad, np.ndarray) and isinstance(live, np.ndarray) and bad.shape == live.shape:
                bad = bad & live
            if _hit(bad):
                found.append((st, pos, bad))
    return found


def domain_violation(path: Path, seed: Any = None) -> PathStep | None:
    """The first step where the mathematics is undefined on the path that matters: a value that
    is not a finite real number where the output uses it (element by element), or an infinite
    slope where the output depends on it. `seed`: of the output elements it weighs only (each
    element of a returned tuple is a function of its own); None: of the whole output."""
    if not all(_finite_all(st.value) and all(_finite_all(d) for d in st.partials) for st in path.steps):
        return _nonfinite_violation(path, seed)
    # Every value and every slope on the path is finite (the common case): no value can leave the
    # domain and no slope is infinite, so only an op's own domain (log of a negative number) is left.
    adj = path.adjoints("math", seed)
    return next((st for st in path.steps if _outside_own_domain(st, adj)), None)


def _outside_own_domain(st: PathStep, adj: Any) -> bool:
    """The step's own op undefined at its arguments (log of a negative number) where the output depends on it."""
    op = OPS.get(st.op)
    return (not ex.all_zero(adj[st.index]) and op is not None and op.undefined is not None
            and st.args_values is not None and _undefined(op, st))


def _finite_all(v: Any) -> bool:
    """Every element of a value (or a partial) finite: a rational, or a finite ball."""
    if isinstance(v, np.ndarray):
        rational = ex.is_rational
        for x in v.flat:
            if not (rational(x) or x.is_finite()):
                return False
        return True
    return ex.is_finite(v)


def _nonfinite_violation(path: Path, seed: Any) -> PathStep | None:
    """`domain_violation`'s own checks of a path where some value or slope is not finite: the
    first step whose non-finite value the output uses, or whose infinite slope it meets."""
    used = _used(path, seed)
    for st in path.steps:
        u = used[st.index]
        if not _hit(u):
            continue
        bad = _mask(st.value, lambda v: not ex.is_finite(v))
        if _hit(bad & u if isinstance(bad, np.ndarray) and isinstance(u, np.ndarray) else (_hit(bad) and _hit(u))):
            return st
    adj = path.adjoints("math", seed)
    slopes = {id(st) for st, _, _ in _slope_violations(path, seed)}
    return next((st for st in path.steps
                 if _outside_own_domain(st, adj) or (id(st) in slopes and not ex.all_zero(adj[st.index]))), None)


def _undefined(op: Any, st: PathStep) -> bool:
    vals = st.args_values or ()
    if not any(ex.is_mat(v) for v in vals):
        return bool(op.undefined(vals, None))
    shape = ex.shape_of(*vals)
    return any(op.undefined([v[idx] if ex.is_mat(v) else v for v in vals], None) for idx in np.ndindex(*shape))


def _undefined_mask(op: Any, st: PathStep) -> Any:
    """Where an op is undefined: True for a step of scalars, a mask of its elements otherwise."""
    vals = st.args_values or ()
    if not any(ex.is_mat(v) for v in vals):
        return True
    shape = ex.shape_of(*vals)
    mask = np.zeros(shape, dtype=bool)
    for idx in np.ndindex(*shape):
        mask[idx] = bool(op.undefined([v[idx] if ex.is_mat(v) else v for v in vals], None))
    return mask


def slope_reach(path: Path, seed: Any = None) -> list[Any]:
    """For each input, the elements whose derivative meets an infinite slope (a bool for a
    scalar input, a mask for a matrix one): the elements that reach a violating element through
    elementwise steps, and every element of what reaches it through any other op. Elements it
    does not reach have a finite derivative (their paths to the output never meet it)."""
    taint: list[Any] = [False] * len(path.steps)
    for st, pos, bad in _slope_violations(path, seed):
        p = st.parents[pos]
        taint[p] = _merge(taint[p], bad if isinstance(bad, np.ndarray) and _elementwise_step(path, st, p) else True)
    for st in path.steps:
        op = OPS.get(st.op)
        if op is not None and op.undefined is not None and st.args_values is not None and _undefined(op, st):
            bad = _undefined_mask(op, st)  # elementwise: the elements outside the domain only
            for p in st.parents:
                taint[p] = _merge(taint[p], bad if isinstance(bad, np.ndarray) and _elementwise_step(path, st, p) else True)
    for st in reversed(path.steps):
        m = taint[st.index]
        if not _hit(m):
            continue
        for pos, p in enumerate(st.parents):
            back = m if isinstance(m, np.ndarray) and _elementwise_step(path, st, p) else _hit(m)
            taint[p] = _merge(taint[p], back)
    return [taint[i] for i in path.inputs]
