"""The point and the exact sides of a comparison.

`read_point` reads `at` into the exact binary values the tensors hold (refusing what is not a
number, not finite, or of the wrong shape); `exact_sides` computes the executed path and the
symbolic and executed derivatives in ball arithmetic, at a precision raised until every reported
value is certain (DESIGN.md section 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
import torch

from ..program import exact as ex
from ..base.held import is_held
from ..base.errors import POINT_TOO_LARGE, PRECISION, PrecisionError
from ..base.errors import (POINT_NOT_FINITE, POINT_NOT_NUMBER, RANK_ONE, SHAPE, UNBOUND, PointError,
                     ShapeError, UnboundSymbolError)
from ..sides.executed import Path, run
from ..sides.ir import For, If, LoweredProgram, NoGrad, Step, While
from ..sides.lowering import DTYPES, lower_with_inputs
from ..sides.overlay import Overlay
from ..sides.symbolic import SymbolicSide, symbolic_sides
from .components import Component, Components, Parts

# Every reported value and every comparison is certain to this many bits (about 30 digits).
TARGET_BITS = 100
# Reruns at a precision raised by the bits the balls lost: usually one; more only where a ball
# around 0 could not say how many bits it lost (its midpoint is itself uncertain).
MAX_RERUNS = 3


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
    # rounded to the dtype as the tensor rounds it (float64: the floats themselves, a copy, but for
    # the floats a reading holds, which nothing changes: `base.held`)
    if dtype != "float64":
        arr = torch.tensor(arr, dtype=DTYPES[dtype]).to(torch.float64).numpy()
    elif not is_held(arr):
        arr = arr.copy()
    if not np.all(np.isfinite(arr)):
        raise PointError(POINT_NOT_FINITE.format(symbol=sym, value="a matrix with NaN or inf entries"))
    return arr


def read_point(lowered: LoweredProgram, at: Mapping[Any, Any], dtype: str) -> list[Any]:
    """The value of each input of `lowered`, in order, as the tensor of `dtype` holds it (a float, or
    a float64 array for a matrix input); a sentence (`PointError`, `ShapeError`,
    `UnboundSymbolError`) for a point that is not a mapping, misses or misspells an input, or
    holds a value that is not a finite number of the declared shape."""
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
        values.append(v if dtype == "float64" else torch.tensor(v, dtype=DTYPES[dtype]).item())
        if not math.isfinite(values[-1]):
            raise PointError(POINT_NOT_FINITE.format(symbol=sym, value=f"{v} (inf in {dtype})"))
    return values


def with_unused_inputs(lowered: LoweredProgram, f: Any, at: Any, branches: str, dtype: str) -> LoweredProgram:
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
        return lowered  # nothing extra, or a name is missing too: read_point says which
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
class ExactSides:
    """The exact sides of a comparison: the executed path, and per (output element, component)
    the symbolic side and the executed derivative, as balls computed at `bits` bits."""

    path: Path
    sym: Mapping[tuple[int, int], SymbolicSide]  # (output element, component) -> symbolic side
    exe: Mapping[tuple[int, int], ex.Exact]  # (output element, component) -> executed derivative
    bits: int = ex.START_PREC  # the working precision the balls were computed at


class PerEntry(Mapping[tuple[int, int], Any]):
    """(output element, component) -> a value, held as one list per output element: a model's
    comparison has 10^5 entries, and a dict keyed by tuples spent 100 bytes on each key and slot
    (twice per entry: the symbolic sides and the executed derivatives)."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: list[Sequence[Any]] = []

    def add_row(self, row: Sequence[Any]) -> None:
        self._rows.append(row)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        o, c = key
        if not (0 <= o < len(self._rows) and 0 <= c < len(self._rows[o])):
            raise KeyError(key)
        return self._rows[o][c]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((o, c) for o, row in enumerate(self._rows) for c in range(len(row)))

    def __len__(self) -> int:
        return sum(len(row) for row in self._rows)

    def row(self, o: int) -> Sequence[Any]:
        """The values of output element o, in component order (as held; callers must not change it)."""
        return self._rows[o]

    def values(self) -> Any:  # the values in key order, without building the keys
        return [v for row in self._rows for v in row]


class SidesPerEntry(PerEntry):
    """`ExactSides.sym`: a `PerEntry` of symbolic sides, where a side that is only a smooth
    derivative g is held as g itself (`symbolic_sides(compact=True)`) and read as
    `SymbolicSide(g, "smooth", None, None)`: 88 bytes less per entry of a model."""

    __slots__ = ()

    def __getitem__(self, key: tuple[int, int]) -> Any:
        v = super().__getitem__(key)
        return v if type(v) is SymbolicSide else SymbolicSide(v, "smooth", None, None)

    def values(self) -> Any:
        return [v if type(v) is SymbolicSide else SymbolicSide(v, "smooth", None, None) for row in self._rows for v in row]

    def held(self, key: tuple[int, int]) -> Any:
        """The side as held: a `SymbolicSide`, or a smooth derivative's value."""
        return super().__getitem__(key)

    def raw(self) -> Any:
        """Each entry's side as held: a `SymbolicSide`, or a smooth derivative's value."""
        return (v for row in self._rows for v in row)


def components(lowered: LoweredProgram, point: dict[str, Any], wrt: Sequence[int]) -> Components:
    """The inputs differentiated with respect to: scalars, and matrices element by element (held
    by input, each element's `(k, idx)` made when read: `components.Components`)."""
    return Components([(k, point[lowered.inputs[k]].shape if ex.is_mat(point[lowered.inputs[k]]) else None) for k in wrt])


# The most entries one comparison holds: each is an exact derivative on two sides and torch's.
MAX_ENTRIES = 1_000_000
# The most exact multiply-adds one run of the program may take, estimated from its matrix
# products (and elementwise ops) before anything runs: the exact side runs the program and its
# backward pass in rationals and balls, about a microsecond or more each (a 784-64-10 MLP at batch
# 32 is 1.6 million for its first layer). Past this, a sentence instead of hours of work.
MAX_EXACT_WORK = 100_000_000


def check_entries(lowered: LoweredProgram, comps: Sequence[Component], v: Any) -> None:
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


def exact_work(lowered: LoweredProgram) -> tuple[int, str]:
    """An estimate of the exact multiply-adds of one run of the program (each statement once, a
    loop's body once), and the line that costs most: a property of the program alone (its
    statements and its inputs' shapes), made once per lowered program and kept on it."""
    kept = lowered.__dict__.get("_exact_work")
    if kept is None:
        kept = lowered.__dict__["_exact_work"] = _work(lowered)
    return kept  # type: ignore[no-any-return]


def _work(lowered: LoweredProgram) -> tuple[int, str]:
    shapes: dict[str, tuple[int, int]] = {}
    for name, sym in zip(lowered.inputs, lowered.normalized.inputs):
        if isinstance(sym, sp.MatrixSymbol):
            shapes[name] = (int(sym.shape[0]), int(sym.shape[1]))
    total, worst, worst_line = 0, 0, ""

    def walk(stmts: Sequence[Any]) -> None:
        nonlocal total, worst, worst_line
        for s in stmts:
            if isinstance(s, Step):
                shape = getattr(s.node, "shape", None)
                out = (int(shape[0]), int(shape[1])) if shape is not None and not isinstance(s.node, MatrixElement) else None
                if out is not None:
                    shapes[s.name] = out
                cost = out[0] * out[1] if out is not None else 1
                if s.op == "matmul" and len(s.args) == 2:
                    a = shapes.get(str(s.args[0]))
                    if a is not None and out is not None:
                        cost = out[0] * a[1] * out[1]
                total += cost
                if cost > worst:
                    worst, worst_line = cost, lowered.source.splitlines()[s.line - 1].strip()
            elif isinstance(s, If):
                for branch in s.branches:
                    walk(branch.body)
            elif isinstance(s, (While, For, NoGrad)):
                walk(s.body)

    walk(lowered.body)
    return total, worst_line


def check_work(lowered: LoweredProgram) -> None:
    """Refuse a program whose exact run alone would take hours (data included), before any work."""
    work, line = exact_work(lowered)
    if work > MAX_EXACT_WORK:
        raise ShapeError(
            f"One exact run of this program takes about {work:,} multiply-adds of exact numbers (the largest, "
            f"`{line}`), more than MAX_EXACT_WORK = {MAX_EXACT_WORK:,}: an hour or more before any verdict.\n"
            "symgrad computes the mathematics and the path that ran in exact arithmetic, every element of "
            "every matrix, data included.\n"
            "Fix: compare on a smaller batch of data (a few rows of X keep every parameter's entries), or on "
            "smaller layers.")


def output_seeds(value: Any, v: Any) -> list[Any]:
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


def exact_sides(lowered: LoweredProgram, point: dict[str, Any], comps: Sequence[Component], v: Any,
                 max_iterations: int) -> ExactSides:
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
            undecided = ex.undecided()
            lost, short, zeros = 0, False, False
            for x in _numbers(current):
                if x.is_finite() and not x.is_exact():
                    acc = int(x.rel_accuracy_bits())
                    # The top bit of its radius at least two below its midpoint's: certainly not
                    # around 0 (not a zero ball, not wide), and it has lost bits - acc bits, or
                    # none if beyond every dtype. Where that changes neither the most bits lost
                    # nor whether it is short, the balls' own checks below say nothing more (a
                    # model has 10^5 balls).
                    if acc >= 1 and bits - acc <= lost and bits - acc <= bits - TARGET_BITS:
                        continue
                bits_lost = ex.lost_bits(x)
                lost = max(lost, bits_lost)
                # Values still uncertain: a ball wider than the working resolution allows, or one
                # that certifies fewer bits than reported. A tiny ball around 0 (sin(pi)) is not one.
                zero = ex.is_zero_ball(x)
                zeros = zeros or zero
                short = short or ex.is_wide(x) or (not zero and bits_lost > bits - TARGET_BITS)
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
              max_iterations: int, bits: int) -> ExactSides:
    # The runs beside the point take the blocks of the large products of the run at the point and
    # of the executed gradient that multiply the same numbers (`remembering`), and the one-sided
    # runs' gradients share the executed one's numbers where they are the same (`sharing`).
    with ex.remembering():
        path = run(lowered, point, max_iterations=max_iterations)
        sym, exe = SidesPerEntry(), PerEntry()
        for seed in output_seeds(path.value, v):
            with ex.remembering():  # this seed's gradient's products, dropped after its sides
                grads = path.gradient("executed", seed)
                row = _row(grads, comps)
                with ex.sharing(list(grads)):
                    del grads
                    sides = symbolic_sides(lowered, path, point, comps, max_iterations, seed, compact=True, executed=row)
            exe.add_row(row)
            sym.add_row(sides if isinstance(sides, (list, Overlay)) else list(sides))
    return ExactSides(path, sym, exe, bits)


def _row(grads: Sequence[Any], comps: Sequence[Component]) -> Sequence[Any]:
    """The derivative of each component, in order: a matrix input's elements read as one run, a
    view of its gradient (`Parts`: no list of its 10^5 pointers beside the array)."""
    if not isinstance(comps, Components):
        return [grads[k][idx] if idx is not None else grads[k] for k, idx in comps]
    parts: list[Any] = []
    for k, _, _, shape in comps.runs():
        g = grads[k]
        if shape is None:
            parts.append([g])
        elif ex.is_mat(g) and g.shape == shape:
            parts.append(g.reshape(-1))  # the same objects, row-major as `np.ndindex` (a view where it can be)
        else:
            parts.append([g[idx] if ex.is_mat(g) else g for idx in np.ndindex(*shape)])
    return Parts(parts)


def _numbers(e: ExactSides) -> Iterator[ex.Exact]:
    """The values a comparison reports or decides with, the balls among them (a rational has
    lost no bits). A value may come more than once (an entry's symbolic derivative is often its
    one-sided runs' slope, and a run's value is every entry's): what `exact_sides` reads of them
    (the most bits lost, whether any is uncertain) is the same however often."""
    ball = ex.is_ball
    yield from (x for x in ex.elements(e.path.value) if ball(x))
    yield from (x for x in e.exe.values() if ball(x))
    sides = e.sym.raw() if isinstance(e.sym, SidesPerEntry) else e.sym.values()
    for s in sides:
        if type(s) is not SymbolicSide:
            if ball(s):
                yield s
            continue
        if s.grad is not None and ball(s.grad):
            yield s.grad
        yield from (x for x in s.one_sided or () if ball(x))
        for side in (s.left, s.right):
            if side is not None:
                yield from (x for x in (*ex.elements(side.value), side.derivative) if x is not None and ball(x))
