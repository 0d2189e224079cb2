"""What a compared loop holds in memory, and when.

A comparison holds two large things for a loop of 10^5 iterations: the executed path (every
iteration's steps, exact values and partials, read again by the findings) and the autograd
column's graph (torch's own: every iteration's tensors and saved variables, about 4,900 bytes an
iteration of `b = b + cos(b)*x/n`, until `torch.autograd.grad` returns). Run one after the other,
the first is still held when the second is built, and their peaks add up.

`autograd_first(lowered, max_iterations)`: the autograd column may run before the exact sides
where that is safe, a program whose every loop is a `for` over constant bounds within
`max_iterations` (it ends, in torch as in the exact run), and worth it (`LARGE` passes or more). A `while` loop, or a `for` whose bounds
come from the inputs, may not end or may run past the limit: there the exact run goes first,
stops at `max_iterations` and says so, and torch never runs a loop that does not end.

`give_back_freed()`: torch's graph, once freed, is free memory of the C heap, kept by malloc
for the process; the exact run's Python objects come from Python's own arenas and would not
reuse it (the peaks would still add up). glibc's `malloc_trim(0)` hands the free pages back to
the system, so the exact run that follows starts from the size before the graph. Nothing in use
moves; elsewhere (no glibc) it does nothing.

`loop_vars_read(lowered)`: the loop variables any statement reads (`for i in range(n)` with
`i` in the body or after the loop); the executed path records a step per iteration only for those.
"""

from __future__ import annotations

import ctypes
from typing import Any

from .ir import Const, For, If, LoweredProgram, NoGrad, Step, Stmt, While, every_statement


def autograd_first(lowered: LoweredProgram, max_iterations: int) -> bool:
    """Whether every loop of the program is a `for` over constant bounds of at most
    `max_iterations` passes, and they run at least `LARGE` passes in all (the autograd column may
    then run before the exact sides; a smaller loop's graph is too small to matter, and its
    comparison keeps the usual order)."""
    passes = _passes(lowered.body, max_iterations)
    return passes is not None and passes >= LARGE


LARGE = 1000  # passes of loop bodies in all, from which a loop's graph is worth freeing first


def _passes(stmts: tuple[Stmt, ...], limit: int) -> int | None:
    """The passes of loop bodies the statements run in all (nested ones counted per pass of the
    loop around them); None where a loop may not end by construction within `limit` passes."""
    total = 0
    for s in stmts:
        if isinstance(s, While):
            return None
        if isinstance(s, For):
            if not all(isinstance(b, Const) for b in s.bounds):
                return None
            try:
                start, stop, step = (int(b.value) for b in s.bounds)  # type: ignore[union-attr]
                count = len(range(start, stop, step))
            except (TypeError, ValueError):
                return None
            inner = _passes(s.body, limit)
            if count > limit or inner is None:
                return None
            total += count * (1 + inner)
        elif isinstance(s, If):
            for br in s.branches:
                inner = _passes(br.body, limit)
                if inner is None:
                    return None
                total += inner
        elif isinstance(s, NoGrad):
            inner = _passes(s.body, limit)
            if inner is None:
                return None
            total += inner
    return total


def loop_vars_read(lowered: LoweredProgram) -> frozenset[str]:
    """The loop variables (of `for` loops) that a statement, a condition, a loop's bounds or the
    output reads."""
    names = {s.var for s in every_statement(lowered.body) if isinstance(s, For)}
    if not names:
        return frozenset()
    read: set[str] = set()
    if isinstance(lowered.output, str):
        read.add(lowered.output)
    for s in every_statement(lowered.body):
        if isinstance(s, Step):
            read.update(a for a in s.args if isinstance(a, str))
            if s.cond is not None:
                read.update(name for _, name in s.cond.names)
        elif isinstance(s, If):
            for br in s.branches:
                if br.cond is not None:
                    read.update(name for _, name in br.cond.names)
        elif isinstance(s, While):
            read.update(name for _, name in s.cond.names)
        elif isinstance(s, For):
            read.update(b for b in s.bounds if isinstance(b, str))
    return frozenset(names & read)


def give_back_freed() -> None:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim(0)`); nothing
    where there is no glibc."""
    trim = _TRIM[0]
    if trim is not None:
        trim(0)


def _malloc_trim() -> Any:
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = [_malloc_trim()]
