"""Whether the generated program's loops end at a point, asked of the generated program itself.

Before the fidelity check runs a user's function whose translation has a loop, symgrad makes
sure the loop ends there (D2L's `while b.norm() < 1000` at a = 0 doubles 0 for ever, and so would
the user's own code). The generated program is the readable one the reports print, without an
iteration counter; this module compiles, once per program, a copy of its source with a counter
in each loop that stops it after `max_iterations` passes, the rule the batch runner and the
exact engine apply (more than `max_iterations` passes of one loop's body is "does not end").
One float64 call of that copy answers in the time of a forward pass; the batch runner, which
answered before, is built for a million points and pays for its masks at one.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .autograd import torch_state
from .ir import LoweredProgram


class _Stop(Exception):
    """A loop of the guarded copy ran past its limit."""


_COUNTER = "_symgrad_passes_"


class _Guard(ast.NodeTransformer):
    """Each `while`/`for` loop: its counter set to 0 before it, one more and a check at the top of
    its body."""

    def __init__(self) -> None:
        self.loops = 0

    def _guarded(self, node: ast.While | ast.For) -> list[ast.stmt]:
        self.generic_visit(node)
        self.loops += 1
        name = f"{_COUNTER}{self.loops}"
        start = ast.parse(f"{name} = 0").body
        check = ast.parse(f"{name} += 1\nif {name} > _symgrad_limit:\n    raise _SymgradStop").body
        node.body = [*check, *node.body]
        return [*start, node]

    def visit_While(self, node: ast.While) -> Any:  # noqa: N802 (ast's spelling)
        return self._guarded(node)

    def visit_For(self, node: ast.For) -> Any:  # noqa: N802
        return self._guarded(node)


def _compile(lowered: LoweredProgram, limit: int) -> Callable[..., Any] | None:
    tree = ast.parse(lowered.source)
    tree = ast.fix_missing_locations(_Guard().visit(tree))
    name = lowered.function.__name__
    scope: dict[str, Any] = dict(lowered.function.__globals__)
    scope.update(_symgrad_limit=limit, _SymgradStop=_Stop)
    try:
        exec(compile(tree, f"{lowered.filename} (loops counted)", "exec"), scope)  # noqa: S102 (our own program)
    except Exception:  # the copy does not compile as the original did: ask the batch runner instead
        return None
    fn = scope.get(name)
    return fn if callable(fn) else None


# Guarded copies by program (kept alive beside its copy, so that no other program takes its id).
_COPIES: dict[tuple[int, int], tuple[LoweredProgram, Callable[..., Any] | None]] = {}
_COPIES_KEEP = 64


def ends_within(lowered: LoweredProgram, values: Sequence[float], limit: int) -> bool | None:
    """True where every loop of `lowered` ends within `limit` passes at the scalar point `values`
    (float64, no gradient), False where one runs past it, None where the copy could not answer
    (it raised, or did not compile): then the caller asks the batch runner."""
    key = (id(lowered), limit)
    known = _COPIES.get(key)
    if known is None:
        known = _COPIES[key] = (lowered, _compile(lowered, limit))
        if len(_COPIES) > _COPIES_KEEP:
            _COPIES.pop(next(iter(_COPIES)))
    fn = known[1]
    if fn is None:
        return None
    try:
        tensors = [torch.tensor(float(v), dtype=torch.float64) for v in values]
        with torch_state("float64"), torch.no_grad():
            fn(*tensors)
    except _Stop:
        return False
    except Exception:  # torch raised in the copy: the batch runner says what it says
        return None
    return True
