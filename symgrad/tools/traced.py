"""`trace()`: a torch function read back into mathematics, checked against itself, then compared.

    traced = sg.trace(f, 0.48828125)          # example values, one per parameter
    traced.program                            # the Program it was read as
    traced.compare()                          # the three derivatives, citing the user's lines

The reading itself (the source reader, the fidelity check, path mode) is the front end's
(`symgrad.frontends.trace`); a `Traced` is that `Reading` with the two things a user does next,
which stand on the verdict and on sweeps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace
from typing import Any, Final

import numpy as np
import sympy as sp
import torch

from ..base.errors import OptionError, TraceError
from ..sides.lowering import DTYPES
from ..frontends.source_random import sweep_sentence as draw_sweep
from ..frontends.trace import Reading, read_function
from ..verdict.compare import compare_reading
from ..verdict.records import Comparison
from .sweep import CODE, Sweep, sweep


@dataclass(frozen=True)
class Traced(Reading):
    """A torch function read back into a `Program`, with its example point: `.program`, `.mode`
    ("source" or "path"), `.fidelity`, `.origins` (node -> the user's `SourceSpan`), `.point`."""

    def compare(self, **options: Any) -> Comparison:
        """`symgrad.compare` of the translated program at the traced example values; every entry
        carries the user's `SourceSpan` (`entry.source`). Options as for `symgrad.compare`, and
        `at=` (keyed by parameter name) for another point, where the fidelity check runs again.
        In path mode the recorded run is compared, and every explanation says so."""
        return compare_reading(self, **options)

    def sweep(self, over: Any, **options: Any) -> Sweep:
        """`symgrad.sweep` of the translated program (`over` keyed by parameter name)."""
        if self.draws is not None:  # random draws are data of the call read, not of every point
            raise OptionError(draw_sweep(_name(self), self.draws))
        if self.mode == "path":
            raise OptionError(
                f"`{getattr(self.fn, '__name__', 'this function')}` was read in path mode (a recorded run, because "
                f"{self.reason}): that run is the path of one point, and other points of a sweep may take "
                "another path.\nFix: compare it point by point (`symgrad.compare(fn, at=...)` records each point's "
                "own run), or rewrite the function with the spellings of docs/supported.md so that its source is read."
            )
        if self.parameters:
            raise OptionError(
                f"This reading's inputs include a module's parameters ({', '.join(self.parameters[:3])}"
                f"{', ...' if len(self.parameters) > 3 else ''}); symgrad sweeps functions of numbers, one point "
                "at a time through your own code, not models.\nFix: compare the model point by point "
                "(`symgrad.compare(model, at=...)`), or sweep a function of the numbers you vary.")
        tensors = [s.name for s in self.inputs if isinstance(s, sp.MatrixSymbol)]
        if tensors or _computes_with_tensors(self.program):
            scalars = [s.name for s in self.inputs if s.name not in tensors]
            held = [*scalars[1:], *tensors, *_data(self)]
            at = ", ".join([*(f'"{n}": v' for n in scalars[:1]), *(f'"{n}": {n}' for n in held)])
            named = ", ".join(f"`{t}`" for t in tensors) or "made inside the function, from data or constants"
            raise OptionError(_HELD.format(fn=_name(self), tensors=named,
                                           scalars=", ".join(f"`{n}`" for n in scalars) or "none", at=at))
        options.pop("branches", None)
        options["dtype"] = options.get("dtype") or self.dtype
        result = sweep(self.program, over, branches=self.branches, **options)
        begin = time.perf_counter()
        checked = _check_beside_user(self, result)
        spent = time.perf_counter() - begin
        total = result.seconds + spent
        return replace(result, checked_points=checked, seconds=total,
                       timings={**result.timings, "checked": spent, "total": total})


# A sweep of a function with tensor inputs (issue 20, item 4): said, not run.
_HELD: Final = (
    "`{fn}` computes with tensors ({tensors}); a sweep runs the translation on a batch of numbers, one number per "
    "input and point, and symgrad's batch runner does not run tensor operations (a matmul, a sum) on a batch of "
    "points, so it does not sweep the scalar inputs ({scalars}) with the tensors and data held fixed.\n"
    "Fix: compare point by point, each point checked against your function bit for bit: "
    "`[traced.compare(at={{{at}}}) for v in values]`, or sweep a function of numbers only.")


# Where the user's function cannot run on the whole batch at once (Python control flow on tensor
# values, `.item()`), every flagged point of a sweep and this many of its other points (evenly
# spaced) are run through it one by one.
CHECK_SAMPLE: Final = 200


def _check_beside_user(traced: Traced, s: Sweep) -> int:
    """Run the user's function beside the translation at the points of the sweep, in the sweep's
    dtype, and check that its value and autograd gradient are the translation's bit for bit (the
    fidelity rule, at the points a sweep reports on). Where the function runs on a batch
    (`torch.func.vmap` accepts it: no Python control flow on tensor values, no `.item()`), every
    point is checked in one call; otherwise every point whose cause is not agree and a bounded
    sample of the rest, one by one. A point where they part is a TraceError naming it. Returns how
    many points were checked."""
    n = len(s.points)
    names = [sym.name for sym in s.symbols]
    wrt = [names.index(w.name) for w in s.wrt]
    dtype = DTYPES[s.dtype]
    batch = _run_batch(traced, s, names, wrt, dtype) if n else None
    if batch is not None:
        values, grads = batch
        # A batched kernel that rounds otherwise than the one-point kernel is not a wrong
        # translation: a point that parts in the batch is run on its own, which decides.
        parted = [i for i in range(n) if not (_same(values[i], float(s.value[i])) and
                                               all(_same(a, float(b)) for a, b in zip(grads[i], s.grad_autograd[i])))]
        _check_points(traced, s, parted, names, wrt, dtype)
        return n
    flagged = np.flatnonzero(s.codes != CODE["agree"])  # every point a finding is about
    sample = np.unique(np.linspace(0, n - 1, min(n, CHECK_SAMPLE)).round().astype(np.int64)) if n else flagged
    rows = np.union1d(flagged, sample)
    _check_points(traced, s, [int(i) for i in rows], names, wrt, dtype)
    return len(rows)


def _run_batch(traced: Traced, s: Sweep, names: list[str], wrt: list[int],
               dtype: torch.dtype) -> tuple[list[float], list[list[float]]] | None:
    """The user's function on every point of the sweep at once (`torch.func.vmap` over the points,
    then one backward pass: each point's output depends on its own inputs only, so the gradient of
    the sum is each point's gradient): its values and the gradients of `wrt`, or None where it
    cannot run on a batch (vmap refuses Python control flow on tensor values, `.item()`, a value
    turned into a Python number) or gives no value per point."""
    columns = [torch.tensor(s.points[:, k], dtype=dtype, requires_grad=True) for k in range(len(names))]
    rest = {**_data(traced), **{k: v for k, v in traced.point.items() if k not in names}}

    def one(*values: torch.Tensor) -> Any:
        return traced.fn(**rest, **dict(zip(names, values)))

    try:
        with torch.enable_grad():
            out = torch.func.vmap(one)(*columns)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(s.points),):
                return None
            grads = torch.autograd.grad(out.sum(), [columns[k] for k in wrt], allow_unused=True)
    except Exception:  # noqa: BLE001 - the function does not run batched: checked point by point
        return None
    values = out.detach().tolist()
    per_input = [[math.nan] * len(values) if g is None else g.tolist() for g in grads]
    return values, [list(row) for row in zip(*per_input)] if per_input else [[] for _ in values]


def _check_points(traced: Traced, s: Sweep, rows: list[int], names: list[str], wrt: list[int],
                  dtype: torch.dtype) -> None:
    """Run the user's function at each of `rows` on its own; a point where it parts from the
    translation is a TraceError naming it."""
    for i in rows:
        tensors = {name: torch.tensor(float(s.points[i, k]), dtype=dtype, requires_grad=True) for k, name in enumerate(names)}
        point = {**_data(traced), **traced.point, **tensors}
        try:
            with torch.enable_grad():
                out = traced.fn(**point)
                grads = torch.autograd.grad(out, [tensors[names[k]] for k in wrt], allow_unused=True)
        except Exception as err:  # the user's own code: a sentence, chained to its traceback
            raise TraceError(_PARTS.format(fn=_name(traced), at=_at(names, s.points[i]),
                                           what=f"your function raised {type(err).__name__}: {err}")) from err
        mine = [math.nan if g is None else float(g) for g in grads]
        out = out.detach() if isinstance(out, torch.Tensor) else out
        theirs = [float(v) for v in s.grad_autograd[i]]
        same_value = _same(float(out), float(s.value[i]))
        if not (same_value and all(_same(a, b) for a, b in zip(mine, theirs))):
            what = (f"the value is {float(out)!r} in your function but {float(s.value[i])!r} in the translation"
                    if not same_value else f"autograd is {tuple(mine)} in your function but {tuple(theirs)} in the "
                    "translation")
            raise TraceError(_PARTS.format(fn=_name(traced), at=_at(names, s.points[i]), what=what))


_PARTS: Final = (
    "The translation of `{fn}` does not reproduce it at {at}, a point of this sweep: {what}.\n"
    "The translation was checked where it was read; symgrad gives no verdict at a point where it computes "
    "something else than your code.\n"
    "Fix: compare that point on its own (`symgrad.compare(fn, at=...)` reads the function there), or rewrite the "
    "line that differs with the spellings of docs/supported.md."
)


def _computes_with_tensors(program: Any) -> bool:
    """A translation with a tensor value (a matrix input, or a constant tensor: data, a global)."""
    parts = [program.body, program.output] if hasattr(program, "body") else [program]
    return any(isinstance(n, (sp.MatrixExpr, sp.MatrixBase)) for p in parts for n in sp.preorder_traversal(p))


def _data(traced: Traced) -> dict[str, Any]:
    """The arguments a sweep holds as they were given: data, never inputs (a Python int, an
    integer or boolean tensor, an image batch)."""
    return {k: v for k, v in traced.arguments.items() if k not in traced.point}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def _name(traced: Traced) -> str:
    return getattr(traced.fn, "__name__", "the function")


def _at(names: list[str], values: Any) -> str:
    return ", ".join(f"{name} = {float(v)!r}" for name, v in zip(names, values))


def trace(fn: Any, *args: Any, **kwargs: Any) -> Traced:
    """Read a torch function back into a `Program`, at example values.

    **Arguments:**

    - `fn`: a Python function of torch tensors (a `def`, a lambda, or one typed in a notebook);
      a `torch.nn.Module`, read as the function of its parameters that `forward` computes (each
      trainable parameter an input named by its path, `fc1.weight`); or a function that takes
      modules among its arguments (their parameters are inputs, `model.fc1.weight`).
    - `*args`, `**kwargs`: one example value per input parameter (numbers, lists, numpy arrays
      or tensors; for a module, `forward`'s): a 0-d value becomes a real `Symbol`, an (n, m) one
      a `MatrixSymbol`, a rank-1 one of length n an (n, 1) column. A keyword named by a
      parameter's path gives that parameter another value (the model itself is not changed).

    **Returns:** a `Traced`: `.program`, `.mode`, `.fidelity`, `.origins`, `.compare()`; for a
    module, `.wrt` (its trainable parameters, compared by default) and `.parameters`.
    Raises `TraceError`, with a sentence naming the user's line, when the source cannot be read
    or the translation does not reproduce the function bit for bit.
    """
    reading = read_function(fn, args, kwargs)
    return Traced(**{f.name: getattr(reading, f.name) for f in fields(reading)})
