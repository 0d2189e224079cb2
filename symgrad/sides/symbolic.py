"""The mathematics side: the derivative of the function the user wrote, evaluated exactly.

Its values come from exact reverse accumulation over the same DAG the executed side runs, with
the mathematical semantics: `detach`, `item` and `no_grad` are the identity (DESIGN.md section
4). That costs a constant times the program, restricted to what the output needs; `sympy.diff`
swells on deep expressions (a 100-deep composition raised RecursionError, a 4x4 tanh layer took
minutes) and is kept only for the derivative *formula* shown in reports (`formula()`, computed
when asked for and size-capped) and as the independent check of this engine in the tests.

Where a branch, loop test or non-smooth primitive sits exactly on its threshold, SymPy's own
value there is a convention (`Heaviside(0) = 1/2`, `sign(0) = 0`), not mathematics: instead the
function is followed from just left and just right of the point (`executed.beside`), giving the
one-sided limits and derivatives. Equal limits and equal slopes: the derivative exists; equal
limits, different slopes: a kink (`one_sided = (left, right)`); different limits: a jump.
The limits are those of the value, not of the piece's formula at the point: a piece with no
value there (sin(x)/x at 0, which `Piecewise((1, Eq(x, 0)), (sin(x)/x, True))` fills in with
its limit 1) is followed just beside the point instead, so that function is smooth at 0 with
derivative 0, while a filled-in value that is not the limit (2 for sin(x)/x) is a jump.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import flint
import numpy as np
from sympy.matrices.expressions.matexpr import MatrixElement

import sympy as sp

from ..program import exact as ex
from .overlay import Overlay
from .executed import Path, PathStep, Side, beside, beside_run, domain_violation, run, slope_reach
from .ir import LoweredProgram
from ..program.elementwise import MatrixPiecewise, is_elementwise, parts
from ..program.primitives import strip
from ..program.program import more_nodes_than
from ..program.ops import OPS

Kind = Literal["smooth", "kink", "jump", "domain", "unknown"]

# Expressions with more operations than this are differentiated over the path instead of with
# sympy.diff, whose result swells on deep expressions (DESIGN.md section 4).
SYMPY_DIFF_MAX_OPS = 400


@dataclass(frozen=True, slots=True)
class SymbolicSide:
    """The symbolic derivative with respect to one input."""

    grad: ex.Exact | None
    kind: Kind
    one_sided: tuple[ex.Exact, ex.Exact] | None
    expression: sp.Basic | None  # the derivative as SymPy shows it, when computed with sympy.diff
    left: Side | None = None
    right: Side | None = None
    violation: PathStep | None = None


@dataclass(frozen=True)
class Derivatives:
    """sympy.diff of the mathematics with respect to each input, for the sweep's float batch
    (`exprs[k]`: a scalar expression for a scalar input, a matrix of element-by-element
    derivatives for a matrix input). Not used for exact values: those come from the DAG."""

    exprs: tuple[Any, ...]
    elements: tuple[tuple[str, Any], ...]  # (input name, matrix of element symbols)


def _element_symbols(m: sp.MatrixSymbol) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix(m.rows, m.cols, lambda i, j: sp.Symbol(f"{m.name}[{i}, {j}]", real=True))


def explicit(expr: sp.Basic, matrices: Any) -> sp.Basic:
    """`expr` with every MatrixSymbol written out element by element (real element symbols) and
    every matrix operation carried out on explicit matrices; a 1x1 matrix becomes its entry."""
    if not matrices:
        return expr
    table = {m: _element_symbols(m) for m in matrices}
    out = _write_out(expr, table, {})
    if isinstance(out, sp.MatrixBase) and out.shape == (1, 1):
        out = out[0, 0]
    return out


def _write_out(e: sp.Basic, table: dict[Any, Any], memo: dict[Any, Any]) -> Any:
    if e in memo:
        return memo[e]
    if isinstance(e, sp.MatrixSymbol):
        out = table.get(e, e)
    elif isinstance(e, (sp.Identity, sp.ZeroMatrix, sp.OneMatrix)):
        out = e.as_explicit()
    elif not e.args:
        out = e
    else:
        args = [_write_out(a, table, memo) for a in e.args]
        if isinstance(e, sp.MatMul):
            out = args[0]
            for a in args[1:]:
                out = out * a
        elif isinstance(e, sp.MatAdd):
            out = args[0]
            for a in args[1:]:
                out = out + a
        elif isinstance(e, sp.Transpose):
            out = args[0].T
        elif isinstance(e, sp.Inverse):
            out = args[0].inv()
        elif isinstance(e, sp.MatPow):
            out = args[0] ** args[1]
        elif isinstance(e, sp.Trace):
            out = args[0].trace()
        elif isinstance(e, sp.Determinant):
            out = args[0].det()
        elif isinstance(e, sp.HadamardPower):
            out = args[0].applyfunc(lambda t: t ** args[1])
        elif isinstance(e, sp.HadamardProduct):
            out = args[0]
            for a in args[1:]:
                out = out.multiply_elementwise(a)
        elif is_elementwise(e):
            fn, operands = parts(e)
            mats = [_write_out(o, table, memo) for o in operands]
            if all(isinstance(m, sp.MatrixBase) for m in mats):
                out = sp.ImmutableMatrix(*mats[0].shape, lambda i, j: fn(*[m[i, j] for m in mats]))
            else:
                out = e
        elif isinstance(e, MatrixElement):
            out = args[0][int(e.i), int(e.j)]
        elif isinstance(e, MatrixPiecewise) and all(isinstance(v, sp.MatrixBase) for v, _ in args):
            out = sp.ImmutableMatrix(*args[0][0].shape, lambda i, j: sp.Piecewise(*[(v[i, j], c) for v, c in args]))
        else:
            out = e.func(*args)
    if isinstance(out, sp.MatrixBase):
        out = sp.ImmutableMatrix(out)
    memo[e] = out
    return out


def derivative_expressions(lowered: LoweredProgram) -> Derivatives | None:
    """The symbolic derivatives, or None for programs and expressions too large for sympy.diff."""
    norm = lowered.normalized
    if norm.is_program:
        return None
    return _derivatives(norm.output, norm.inputs)


def clear_cache() -> None:
    """Forget the derivatives and formulas computed so far (for a cold timing)."""
    _derivatives.cache_clear()
    _formula.cache_clear()


@functools.lru_cache(maxsize=256)
def _derivatives(output: sp.Basic, inputs: tuple[sp.Basic, ...]) -> Derivatives | None:
    if more_nodes_than(output, SYMPY_DIFF_MAX_OPS):
        return None
    math = strip(output)
    matrices = [s for s in inputs if isinstance(s, sp.MatrixSymbol)]
    if sum(m.rows * m.cols for m in matrices) > FORMULA_MAX_ELEMENTS:
        return None
    flat = explicit(math, matrices)
    exprs: list[Any] = []
    for s in inputs:
        if isinstance(s, sp.MatrixSymbol):
            elems = _element_symbols(s)
            exprs.append(sp.ImmutableMatrix(s.rows, s.cols, lambda i, j: sp.diff(flat, elems[i, j])))
        else:
            exprs.append(sp.diff(flat, s))
    elements = tuple((m.name, _element_symbols(m)) for m in matrices)
    return Derivatives(tuple(exprs), elements)


def point_values(lowered: LoweredProgram, derivs: Derivatives, point: dict[str, Any]) -> dict[sp.Symbol, ex.Exact]:
    values: dict[sp.Symbol, ex.Exact] = {}
    for s, name in zip(lowered.normalized.inputs, lowered.inputs):
        if not isinstance(s, sp.MatrixSymbol):
            values[s] = point[name]
    for m_name, elems in derivs.elements:
        name = lowered.inputs[[s.name for s in lowered.normalized.inputs].index(m_name)]
        for (i, j), sym in zip(np.ndindex(*elems.shape), elems):
            values[sym] = point[name][i, j]
    return values


# --------------------------------------------------------------------------- the formula shown

# The derivative formula shown in reports is SymPy's; it is computed only when asked for, and
# only for expressions and matrices small enough that sympy.diff stays quick.
FORMULA_MAX_OPS = 200
FORMULA_MAX_ELEMENTS = 64


def formula(lowered: LoweredProgram, k: int) -> sp.Basic | None:
    """sympy.diff of the mathematics with respect to input k, as SymPy writes it (matrix
    calculus for a matrix input, `X.T*(X*w - y)`), or None when the function is a program, a
    matrix-valued output, too large, or when SymPy's matrix calculus disagrees with the
    element-by-element derivative at a sample point (sympy issues 15614, 23492, 30527)."""
    norm = lowered.normalized
    if norm.is_program:
        return None
    return _formula(norm.output, norm.inputs, k)


@functools.lru_cache(maxsize=256)
def _formula(output: sp.Basic, inputs: tuple[sp.Basic, ...], k: int) -> sp.Basic | None:
    if isinstance(output, sp.MatrixExpr) and output.shape != (1, 1):
        return None
    if more_nodes_than(output, FORMULA_MAX_OPS):
        return None
    matrices = [s for s in inputs if isinstance(s, sp.MatrixSymbol)]
    if sum(m.rows * m.cols for m in matrices) > FORMULA_MAX_ELEMENTS:
        return None
    math = strip(output)
    s = inputs[k]
    try:
        if not matrices:
            return sp.diff(math, s)
        if not isinstance(s, sp.MatrixSymbol):
            return None
        d = sp.diff(math, s)
        flat = explicit(math, matrices)
        written = explicit(d, matrices)
        elems = _element_symbols(s)
        if not (isinstance(written, sp.MatrixBase) and written.shape == elems.shape):
            return None
        # Checked at a sample point, element by element, to 30 digits (never simplify).
        names = sorted({e for m in matrices for e in _element_symbols(m)}, key=str)
        sample = {e: sp.Rational(n + 2, n + 5) for n, e in enumerate(names)}
        for (i, j), w in zip(np.ndindex(*elems.shape), written):
            want = sp.diff(flat, elems[i, j]).xreplace(sample)
            gap = sp.N(w.xreplace(sample) - want, 30)
            if not gap.is_number or abs(gap) > 1e-20 * (1 + abs(sp.N(want, 30))):
                return None
        return d
    except Exception:  # SymPy's calculus has gaps; the report then shows no formula
        return None


# --------------------------------------------------------------------------- the values


def symbolic_sides(lowered: LoweredProgram, path: Path, point: dict[str, Any], comps: Any, max_iterations: int,
                   seed: Any = None, compact: bool = False, executed: Sequence[Any] | None = None) -> list[Any]:
    """The derivative of the mathematics with respect to each component (input k, element idx
    of a matrix input): exact reverse accumulation over the path with detach, item and no_grad
    as the identity; where a decision is a tie, from the one-sided runs. Where an op of the path
    took a shortcut of torch's that the mathematics does not have (softplus above its
    threshold), the program is run again with the mathematics' op, and that run is the one
    differentiated. With `compact`, a side that is only a smooth derivative g
    (`SymbolicSide(g, "smooth", None, None)`) is given as g itself: a model's 10^5 entries are
    nearly all such, and the caller (`verdict.point`) keeps them as numbers. `executed`: the
    executed derivative of each component, where the caller holds it: a derivative read from a run
    beside the point that is the very same number (the same rational, or the same ball: midpoint
    and radius) is given as that object, so that a model's 10^5 entries hold one copy, not two."""
    math = departs(path)
    if math:
        path = run(lowered, point, max_iterations=max_iterations, math=True)
    # A returned tuple's element is a function of its own: only what it reads can leave its domain.
    own = seed if lowered.separate_outputs else None
    violation = domain_violation(path, own)
    if violation is not None and len(comps) > 1 and (_only_a_vertical_tangent(path, violation)
                                                      or _finite_outside_its_domain(path, violation)):
        # An infinite slope with every value finite: only the entries whose derivative meets it
        # are in question (sqrt(v).sum() at v = (0.5, 0, 2): the middle entry); the others
        # have their derivative as if it were not there.
        reach = slope_reach(path, own)
        hit = [bool(reach[k] if idx is None or not isinstance(reach[k], np.ndarray) else reach[k][idx])
               for k, idx in comps]
        if not all(hit):
            met = [c for c, h in zip(comps, hit) if h]
            free = [c for c, h in zip(comps, hit) if not h]
            sides = dict(zip(met, symbolic_sides(lowered, path, point, met, max_iterations, seed, compact)))
            rest = _without_violation(lowered, path, point, free, max_iterations, seed, math, compact)
            sides.update(zip(free, rest))
            return [sides[c] for c in comps]
    if violation is not None:
        if _only_a_vertical_tangent(path, violation):
            # sqrt(x**2 + y**2) at the origin: sqrt's slope is infinite there, but the function
            # is a cone with finite one-sided slopes. Follow it from both sides.
            sides = [_at_tie(lowered, path, point, k, idx, max_iterations, seed, limit_of_slope=True, math=math)
                     for k, idx in comps]
            if all(sd.kind in ("kink", "smooth") and sd.left is not None and sd.right is not None
                   and ex.is_finite(sd.left.derivative) and ex.is_finite(sd.right.derivative) for sd in sides):
                return [SymbolicSide(sd.grad, sd.kind, sd.one_sided, None, sd.left, sd.right, violation) for sd in sides]
        return [SymbolicSide(None, "domain", None, None, violation=violation) for _ in comps]
    return _without_violation(lowered, path, point, comps, max_iterations, seed, math, compact, executed)


def _without_violation(lowered: LoweredProgram, path: Path, point: dict[str, Any], comps: Any, max_iterations: int,
                       seed: Any, math: bool, compact: bool = False, executed: Sequence[Any] | None = None) -> list[Any]:
    if not path.ties:
        grads = path.gradient("math", seed)
        out = []
        for k, idx in comps:
            g = grads[k] if idx is None else grads[k][idx]
            out.append((g if compact else SymbolicSide(g, "smooth", None, None)) if ex.is_finite(g)
                       else SymbolicSide(None, "domain", None, None))
        return out
    shared = _shared_sides(lowered, path, point, comps, max_iterations, seed, math, compact, executed)
    if shared is None:
        return [_at_tie(lowered, path, point, k, idx, max_iterations, seed, math=math) for k, idx in comps]
    unset = shared.unset() if isinstance(shared, Overlay) else [n for n, side in enumerate(shared) if side is None]
    for n in unset:  # filled in place: no second list of 10^5
        k, idx = comps[n]
        shared[n] = _at_tie(lowered, path, point, k, idx, max_iterations, seed, math=math)
    return shared


# The fewest entries for which the one-sided runs are shared between entries (below it, two runs
# per entry cost as little), and the most tied elements the shared runs handle.
SHARED_SIDES_MIN = 8
SHARED_SIDES_TIES = 4


def _shared_sides(lowered: LoweredProgram, path: Path, point: dict[str, Any], comps: Any, max_iterations: int,
                  seed: Any, math: Any, compact: bool = False, executed: Sequence[Any] | None = None) -> Any:
    """The one-sided derivatives of many entries from a few runs, where every tie is a kink or
    step of one element of an elementwise op (a ReLU unit at 0 in one example of a layer).

    Just beside the point along input element x_k, a tied element's argument a moves by delta
    times da/dx_k, so the side each tied element takes is the sign of that derivative (times the
    direction). Entries whose signs agree take the same pieces: one run forced to those pieces
    gives all their one-sided derivatives, as each entry's own run beside the point would (it is
    that run, for one of them). An entry that does not move a tied corner's argument
    (da/dx_k = 0) has the same derivative whichever piece the corner takes; one that does not move
    a tied step's argument is left to its own runs, and so is every entry when a tie is a branch,
    a loop or a `where`.
    Returns the side of each entry (in the order of `comps`), None for an entry left to its own
    runs; None for all where nothing is shared."""
    ties = path.ties
    if len(comps) < SHARED_SIDES_MIN or not ties or any(d.kind != "piece" or d.step is None for d in ties):
        return None
    tied: list[tuple[int, tuple[int, ...]]] = []  # (the argument's step, the element) of each tied element
    for d in ties:
        st = path.steps[d.step]  # type: ignore[index]
        if len(st.parents) != 1 or not isinstance(d.taken, tuple) or not ex.is_mat(st.value):
            return None
        arg = path.steps[st.parents[0]].value
        if not ex.is_mat(arg) or arg.shape != st.value.shape:
            return None
        tied += [(st.parents[0], idx) for idx, piece in zip(np.ndindex(*arg.shape), d.taken) if piece is None]
    if not tied or len(tied) > SHARED_SIDES_TIES:
        return None
    moves = []  # d(tied argument)/d(inputs), one gradient per tied element
    for step, idx in tied:
        onehot = ex.full(path.steps[step].value.shape, ex.ZERO)
        onehot[idx] = ex.ONE
        moves.append(dataclasses.replace(path, output=step).gradient("math", onehot))
    # A corner (relu, abs, clamp) is continuous: an entry that does not move its argument to first
    # order has one derivative whichever piece is taken there. A step (sign, floor) is not: such an
    # entry is left to its own runs (x**2 through sign jumps although its slope in x is 0).
    corners = all(OPS[path.steps[d.step].op].nonsmooth == "kink" for d in ties)  # type: ignore[index]
    # Each entry's signs, one code per entry (the signs of the tied arguments' derivatives as one
    # number in base 3), read input by input without a tuple per entry (a model has 10^5).
    width = len(moves)
    codes = np.zeros(len(comps), dtype=np.int8)  # at most 3**SHARED_SIDES_TIES - 1 = 80: a byte per entry
    still = np.ones(len(comps), dtype=bool)  # certainly moves no tied argument (d/dx_k exactly 0)
    nonzero = np.ones(len(comps), dtype=bool)  # every sign certain and not 0
    for t, g in enumerate(moves):
        signs, exact_zeros = _signs(_values(g, comps), len(comps))
        codes += (signs + 1) * 3 ** t
        still &= exact_zeros
        nonzero &= signs != 0
    decided = np.ones(len(comps), dtype=bool) if corners else nonzero  # a corner, or every sign certain and not 0
    # the last tie's arrays, and its gradient (the loop's g), not held through the runs
    del moves, g, signs, exact_zeros

    # Every sign turned over: each digit s + 1 becomes 1 - s = 2 - (s + 1).
    negated = (3 ** width - 1) - codes
    # One forced run per pattern of signs and direction, made with the first entry (in order)
    # that has it either way round.
    makers: dict[int, tuple[int, int]] = {}  # run key -> (that entry, the direction)
    for n in np.flatnonzero(decided):
        for direction, key in ((1, int(codes[n])), (-1, int(negated[n]))):
            if key not in makers:
                makers[key] = (int(n), direction)
    f0 = path.value if seed is None else ex.total(ex.ewise(ex.mul, path.value, seed))
    # Entry indices as int32 (a comparison has at most MAX_ENTRIES = 10**6): 4 bytes per entry, not 8.
    # The entries that may read a run: an entry that does not move a corner reads one slope of its
    # run, the others their two sides; which of them are decided here is known once every run's
    # value is (both of its runs have one).
    alone = (np.flatnonzero(decided & still) if corners else np.empty(0, dtype=np.int64)).astype(np.int32)
    sided = (np.flatnonzero(decided & ~still) if corners else np.flatnonzero(decided)).astype(np.int32)
    wanted = _wanted(codes, negated, alone, sided)
    # Where the executed derivatives are given, each entry whose side is the executed object is a
    # bit (`Overlay`), not a pointer to it in a list of 10^5 beside the executed row.
    out: Any = Overlay(executed) if executed is not None and compact else [None] * len(comps)
    slopes: dict[tuple[int, int], Any] = {}  # (entry, run) -> its derivative on that run, for the two-sided
    values: dict[int, Any] = {}  # each run's value, None where it has none at the point
    decisions: dict[int, Any] = {}
    # Each run made, its gradient read and the run dropped before the next is made (one run and
    # one gradient held at a time, not every run's steps held together).
    for key, (n0, direction) in makers.items():
        at = _forced_beside(lowered, point, comps[n0], direction, max_iterations, math, path)
        if at is None:
            continue
        value = at.value if seed is None else ex.total(ex.ewise(ex.mul, at.value, seed))
        # a piece with no value at the point: its limits are the entry's own runs
        values[key] = value if all(ex.is_finite(v) for v in ex.elements(value)) else None
        decisions[key] = at.decisions
        if values[key] is None or key not in wanted:
            continue
        # The seed given explicitly (the one `adjoints` takes for none): the run keeps no cache
        # of every step's adjoints, which held three runs' worth of a model's gradients at once.
        grads = at.gradient("math", seed if seed is not None else
                            ex.full(at.value.shape, ex.ONE) if ex.is_mat(at.value) else ex.ONE)
        del at
        for n in _each(wanted.pop(key)):
            k, idx = comps[n]
            g = grads[k] if idx is None else grads[k][idx]
            if corners and still[n]:
                # It does not move a corner at all: one run both ways, one slope, exactly the
                # derivative (no two sides kept for it: a model has 10^5 such entries).
                if executed is not None:
                    g = same_number(g, executed[n])  # one object where the two are one number
                out[n] = g if compact else SymbolicSide(g, "smooth", None, None)
            else:
                slopes[(n, key)] = g
        del grads
    # The entries decided here: both runs have a value at the point; the others are left to
    # their own runs.
    valued = np.array([key for key, v in values.items() if v is not None], dtype=np.int64)
    mine = decided & np.isin(codes, valued) & np.isin(negated, valued)
    for n in np.flatnonzero(decided & ~mine).tolist():
        out[n] = None
    sided = sided[mine[sided]]
    for n in sided.tolist():
        right, left = int(codes[n]), int(negated[n])
        # A corner is continuous: both sides' values are the value at the point (only its slope
        # breaks), so only slopes are compared.
        out[n] = _one_sided(Side(-1, values[left], slopes[(n, left)], decisions[left]),
                            Side(1, values[right], slopes[(n, right)], decisions[right]), f0, continuous=corners)
    return out


def _wanted(codes: np.ndarray, negated: np.ndarray, alone: np.ndarray, sided: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Run key -> the entries that read its gradient (as index arrays, not a Python int per entry:
    a model has 10^5), the keys in the order their first entry meets them: an entry alone reads
    its own pattern's run, a two-sided one the run of each direction."""
    wanted: dict[int, list[np.ndarray]] = {}
    for key in dict.fromkeys(codes[alone].tolist()):
        wanted.setdefault(int(key), []).append(alone[codes[alone] == key])
    pairs = np.stack((negated[sided], codes[sided]), axis=1).reshape(-1)
    for key in dict.fromkeys(pairs.tolist()):
        wanted.setdefault(int(key), []).append(sided[(negated[sided] == key) | (codes[sided] == key)])
    return wanted


def _each(parts: list[np.ndarray], chunk: int = 4096) -> Iterator[int]:
    """The entries of index arrays, in order, as Python ints made a chunk at a time."""
    for part in parts:
        for start in range(0, len(part), chunk):
            yield from part[start:start + chunk].tolist()


def same_number(g: Any, e: Any) -> Any:
    """`e` where `g` is the very same number (`exact.same_number`), else `g`: either stands for
    the other in every value and verdict, and only one is kept."""
    return e if ex.same_number(g, e) else g


def _values(g: Sequence[Any], comps: Any) -> Iterator[Any]:
    """Each component's value in the gradient g (input by input), read from g's arrays: no list
    of a model's 10^5 values (`Components.runs`, where the components are held by input)."""
    runs = getattr(comps, "runs", None)
    if runs is None:
        yield from (g[k] if idx is None else g[k][idx] for k, idx in comps)
        return
    for k, _, _, shape in runs():
        v = g[k]
        if shape is None:
            yield v
        elif ex.is_mat(v) and v.shape == shape:
            yield from v.flat  # row-major, as the components
        else:
            yield from (v[idx] if ex.is_mat(v) else v for idx in np.ndindex(*shape))


def _signs(values: Iterable[Any], count: int) -> tuple[np.ndarray, np.ndarray]:
    """`ex.sign` of each value (counting each ball it cannot decide, as it does) and whether each
    is an exact rational 0 (`ex.is_exact_zero`), as int8 and bool arrays of `count` entries (a
    byte per entry, no array of a model's 10^5 values beside them)."""
    signs = np.zeros(count, dtype=np.int8)
    exact_zeros = np.zeros(count, dtype=bool)
    for n, v in enumerate(values):
        if v > 0:
            signs[n] = 1
        elif v < 0:
            signs[n] = -1
        elif ex.is_rational(v):
            exact_zeros[n] = True  # a rational neither above nor below 0 is 0
        else:
            ex.sign(v)  # 0 or NaN, or a ball around 0 it counts as undecided
    return signs, exact_zeros


def _forced_beside(lowered: LoweredProgram, point: dict[str, Any], comp: Any, direction: int, max_iterations: int,
                   math: Any, reuse: Path | None = None) -> Path | None:
    """The program run at the point with the pieces it takes just beside it along `comp`'s input
    element (the two runs of `executed.beside`), or None where that side cannot be followed;
    `reuse`: the run at the point, whose steps before the pieces it shares."""
    k, idx = comp
    got = beside_run(lowered, point, lowered.inputs[k], direction, max_iterations, idx, bool(math), reuse)
    return None if got is None else got[1]


def departs(path: Path) -> list[PathStep]:
    """The steps where torch's kernel took a shortcut the mathematics does not have
    (`Op.departs`: softplus at or above its threshold)."""
    out = []
    for st in path.steps:
        op = OPS.get(st.op)
        if op is None or op.departs is None or st.args_values is None:
            continue
        if any(ex.is_mat(v) for v in st.args_values):  # an elementwise op of a matrix: any element
            shape = ex.shape_of(*st.args_values)
            hit = any(op.departs([v[idx] if ex.is_mat(v) else v for v in st.args_values], st.param)
                      for idx in np.ndindex(*shape))
        else:
            hit = op.departs(st.args_values, st.param)
        if hit:
            out.append(st)
    return out


# A slope taken 2**-1200 beside the point is its one-sided limit up to terms of that order:
# below this it is 0, and it is rounded to the nearest rational with a small denominator.
LIMIT_RESOLUTION = 2**-400


def _limit(side: Side | None) -> Side | None:
    """A slope taken beside the point, as its limit: tiny terms (2*delta for x**2) dropped."""
    if side is None or not ex.is_finite(side.derivative):
        return side
    d = ex.to_real(side.derivative)
    if abs(d) < flint.arb(LIMIT_RESOLUTION):
        return dataclasses.replace(side, derivative=ex.ZERO)
    if ex.is_rational(side.derivative):
        q = side.derivative
        # exactly, in rationals: a huge slope (1/delta beside a pole) has no float
        near = flint.fmpq((flint.fmpq(q) * 2**20 + flint.fmpq(1, 2)).floor(), 2**20)
        if abs(ex.to_real(ex.sub(q, near))) < flint.arb(LIMIT_RESOLUTION):
            return dataclasses.replace(side, derivative=near)
    return side


def _removable(side: Side | None) -> Side | None:
    """A side whose piece has no value at the point (sin(x)/x at 0) carries limits taken just
    beside it: its value is known to the working resolution (a ball, never an exact rational
    that differs from the limit by delta), its slope as `_limit` rounds it."""
    if side is None or not side.limit:
        return side
    side = _limit(side)
    assert side is not None
    return dataclasses.replace(side, value=ex.ewise(ex.to_real, side.value) if ex.is_mat(side.value) else ex.to_real(side.value))


def _only_a_vertical_tangent(path: Path, st: PathStep) -> bool:
    """The violation is an infinite slope of a step whose value is a finite real number, and
    every value the output uses is finite (not log of a negative, not a pole)."""
    if not all(ex.is_finite(v) for v in ex.elements(st.value)):
        return False
    op = OPS.get(st.op)
    if op is not None and op.undefined is not None and st.args_values is not None and op.undefined(st.args_values, None):
        return False
    return all(ex.is_finite(v) for v in ex.elements(path.value))


def _finite_outside_its_domain(path: Path, st: PathStep) -> bool:
    """An elementwise step outside its domain in some elements where torch still gives finite
    values (xlogy(0, 0) = 0): only the entries that reach those elements are in question."""
    op = OPS.get(st.op)
    return (op is not None and op.undefined is not None and ex.is_mat(st.value)
            and all(ex.is_finite(v) for v in ex.elements(st.value)) and all(ex.is_finite(v) for v in ex.elements(path.value)))


def _at_tie(lowered: LoweredProgram, path: Path, point: dict[str, Any], k: int, idx: tuple[int, int] | None,
            max_iterations: int, seed: Any, limit_of_slope: bool = False, math: bool = False) -> SymbolicSide:
    name = lowered.inputs[k]
    left = beside(lowered, point, name, -1, max_iterations, idx, seed, limit_of_slope, math)
    right = beside(lowered, point, name, +1, max_iterations, idx, seed, limit_of_slope, math)
    left = _limit(left) if limit_of_slope else _removable(left)
    right = _limit(right) if limit_of_slope else _removable(right)
    if left is None or right is None:
        return SymbolicSide(None, "unknown", None, None, left, right)
    f0 = path.value if seed is None else ex.total(ex.ewise(ex.mul, path.value, seed))
    near = limit_of_slope or left.limit or right.limit  # known to the working resolution only
    return _one_sided(left, right, f0, near)


def _one_sided(left: Side, right: Side, f0: ex.Exact, near: bool = False, continuous: bool = False) -> SymbolicSide:
    """The mathematics at a tie from its two sides: a jump (the limits differ from the value), a
    kink (the slopes differ), or smooth. `continuous`: every tie is a corner, whose pieces meet
    at the point, so the values are not in question."""
    if not continuous and not (same(left.value, f0, near) and same(right.value, f0, near)):
        return SymbolicSide(None, "jump", None, None, left, right)
    if same(left.derivative, right.derivative, near):
        return SymbolicSide(left.derivative, "smooth", None, None, left, right)
    return SymbolicSide(None, "kink", (left.derivative, right.derivative), None, left, right)


def same(a: ex.Exact, b: ex.Exact, limit: bool = False) -> bool:
    """Whether two exact values are the same number. Rationals: exactly equal. Balls: equal up to
    the working precision relative to their own magnitude (a difference of at most 2**-(prec - 40)
    of the larger), never to an absolute floor: -1e-100 and 0 differ, as 2e-300 and 1e-300 do.
    A ball whose difference from the other still holds 0 (sin(pi) beside an exact 0, two balls of
    one number) is undecided at this precision: it counts as undecided (`ex.undecided`, so that
    the exact sides are computed again at a higher one) and, once refined, is a tie at the working
    resolution. With `limit`, one of the two is a limit taken just beside the point (a removable
    singularity's value, a cone's slope), known only to the working resolution in absolute terms:
    then a difference below 2**-(prec - 40) of max(|a|, |b|, 1) is none."""
    if a is b:  # one number, however wide its ball
        return True
    if ex.is_rational(a) and ex.is_rational(b):
        return a == b
    if not (ex.is_finite(a) and ex.is_finite(b)):
        return ex.agree(a, b, 15)
    d = ex.to_real(ex.sub(a, b))
    if d.contains(0):
        ex.sign(d)  # undecided unless exactly 0: the caller's precision is raised once
        return True
    resolution = flint.arb(2) ** (40 - ex.prec())
    scale = max(abs(ex.to_real(a)).mid(), abs(ex.to_real(b)).mid())
    if limit:
        scale = max(scale, flint.arb(1))
    return bool(abs(d).mid() <= scale * resolution)
