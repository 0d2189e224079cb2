"""A lowered program's statements made ready for the executed path's exact run, once per
program and working precision.

`executed.run` walks the IR of a program at every point it is compared at. What it read of each
statement afresh every time does not depend on the point: the op's row of the table, each
constant operand's exact value (a SymPy number converted, at the working precision for one such
as pi), the step's constant parameter, and what the step is (a cut, an op whose arguments the
verdict reads later, a plain op of scalars). `plan(lowered)` reads those once and keeps them on
the lowered program beside its other per-program caches, one plan per working precision: a run
at another precision (a rerun that raised it, a side followed beside the point) has its own.

The plan holds no value of any point: each run computes every value and partial again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..program import exact as ex
from ..program.custom import CUSTOM_OP
from ..program.ops import CUT_OPS, GRAPH_BREAK_OPS, OPS, Op
from .ir import Const, For, If, LoweredProgram, NoGrad, Step, Stmt, While
from .loop_memory import loop_vars_read


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One `Step` as a run reads it: its op's row, its operands (a variable's name, a scalar
    constant's exact value, or a matrix constant as written, converted at each run: a run's
    values are its own), its parameter as an exact number, and what the step is."""

    s: Step
    op: Op
    args: tuple[Any, ...]
    param: Any
    consts: tuple[bool, ...] | None  # which operands are constants; None when none is
    # op.value and op.partials of scalars are the whole step: no matrix op's vjp, no `where`,
    # no piece to decide, no torch shortcut (`departs`), no user Function
    plain: bool
    nan_in: bool  # a NaN argument makes the value NaN (every op but a selection, and sign)
    cut: str | None  # "detach" or "graph-break"
    keep: bool  # the step keeps its arguments, for the checks that read them later
    keep_param: bool  # and its parameter
    shareable: bool  # a run may share a reference run's step here (`_Runner.reused`)


@dataclass(frozen=True, slots=True)
class IfPlan:
    s: If
    bodies: tuple[tuple[Any, ...], ...]  # each branch's body, planned


@dataclass(frozen=True, slots=True)
class LoopPlan:
    s: While | For
    body: tuple[Any, ...]
    # a `for` loop's variable is read by some statement: the run records it, one step per
    # iteration (`for _ in range(n)` keeps none: `loop_memory.loop_vars_read`)
    var_read: bool = True


def plan(lowered: LoweredProgram) -> tuple[Any, ...]:
    """The program's body planned at the working precision (made once per precision, and kept)."""
    bits = ex.prec()
    plans: dict[int, tuple[Any, ...]] = lowered.__dict__.setdefault("_run_plans", {})
    hit = plans.get(bits)
    if hit is None:
        hit = plans[bits] = _body(lowered.body, loop_vars_read(lowered))
    return hit


def _body(stmts: tuple[Stmt, ...], read: frozenset[str]) -> tuple[Any, ...]:
    out: list[Any] = []
    for s in stmts:
        if isinstance(s, Step):
            out.append(_step(s))
        elif isinstance(s, If):
            out.append(IfPlan(s, tuple(_body(b.body, read) for b in s.branches)))
        elif isinstance(s, (While, For)):
            out.append(LoopPlan(s, _body(s.body, read), isinstance(s, While) or s.var in read))
        elif isinstance(s, NoGrad):
            out.extend(_body(s.body, read))  # the run reads a no_grad block as its statements
    return tuple(out)


def _step(s: Step) -> StepPlan:
    op = OPS[s.op]
    args = tuple(a if not isinstance(a, Const) or _matrix(a.value) else ex.from_sympy(a.value) for a in s.args)
    consts = tuple(isinstance(a, Const) for a in s.args)
    keep = (op.undefined is not None or op.piece is not None or op.departs is not None or bool(op.reads_result)) \
        and op.vjp is None
    plain = (op.vjp is None and op.piece is None and op.departs is None and s.op not in ("where", CUSTOM_OP)
             and s.cond is None and not _matrix(s.param))
    return StepPlan(
        s, op, args, None if _matrix(s.param) else param_of(s.op, s.param), consts if any(consts) else None, plain, s.op not in ("where", "sign"),
        ("graph-break" if s.op in GRAPH_BREAK_OPS else "detach") if s.op in CUT_OPS else None,
        keep, keep or s.op in ("elem", CUSTOM_OP),
        s.cond is None and s.op not in ("where", CUSTOM_OP) and op.piece is None)


def _matrix(v: Any) -> bool:
    return isinstance(v, (sp.MatrixBase, sp.MatrixExpr))


def param_of(op: str, param: Any) -> Any:
    """A step's constant parameter as an exact number at the current working precision
    (the lowering keeps SymPy constants such as pi symbolic)."""
    if op == "add":
        signs, const = param
        return signs, ex.from_sympy(const)
    if isinstance(param, sp.Basic):
        return ex.from_sympy(param)
    return param


def relations(c: sp.Basic) -> list[sp.Basic]:
    """The relations (x > 0, ...) inside a condition, in order."""
    if isinstance(c, sp.core.relational.Relational):
        return [c]
    out: list[sp.Basic] = []
    for a in getattr(c, "args", ()):
        out += relations(a)
    return out


def loop_bound(v: ex.Exact) -> int:
    """A loop bound rounded toward zero, as Python's range(int(b)) does."""
    if ex.is_rational(v):
        return int(v.trunc())
    m = v.mid()
    return int(m.floor().unique_fmpz()) if m >= 0 else -int((-m).floor().unique_fmpz())
