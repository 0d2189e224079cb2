"""`trace()`: a torch function read back into mathematics, checked against itself, then compared.

    traced = sg.trace(f, 0.48828125)          # example values, one per parameter
    traced.program                            # the Program it was read as
    traced.compare()                          # the three derivatives, citing the user's lines

The reading itself (the source reader, the fidelity check, path mode) is the front end's
(`symgrad.frontends.trace`); a `Traced` is that `Reading` with the two things a user does next,
which stand on the verdict and on sweeps.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import sympy as sp
import torch

from ..base.errors import OptionError, PointError, TraceError
from ..sides.batch_tensors import run_tensor_batch
from ..sides.lowering import DTYPES
from ..frontends.source_random import sweep_sentence as draw_sweep
from ..frontends.trace import Reading, read_function
from ..verdict.compare import compare_reading
from ..verdict.records import Comparison
from . import sweep as sweeping
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

    def sweep(self, over: Any, *, fixed: Mapping[str, Any] | None = None, **options: Any) -> Sweep:
        """`symgrad.sweep` of the translated program (`over` keyed by parameter name). The
        function's tensors (tensor inputs, data, constants) are held at their example values
        while its scalar inputs run over `over`; `fixed={"W": W}` holds a tensor (or data) at
        another value (the function is read again there, and checked against itself)."""
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
        if fixed:  # another value for a tensor or data: the function read again with it, and checked there
            unknown = sorted(set(fixed) - set(self.arguments))
            if unknown:
                raise OptionError(f"`fixed` names {', '.join(unknown)}, which `{_name(self)}` does not take (its "
                                  f"arguments: {', '.join(self.arguments)}).\nFix: name its own parameters.")
            again = read_function(self.fn, (), {**self.arguments, **fixed}, dtype=self.dtype, kind=Traced)
            return again.sweep(over, **options)  # type: ignore[attr-defined]
        options.pop("branches", None)
        options["dtype"] = options.get("dtype") or self.dtype
        # The tensor inputs held at their example values (as the translation declares them: a
        # rank-1 tensor as its column); data and constant tensors are part of the translation.
        held = {s: self.point[s.name] for s in self.inputs if isinstance(s, sp.MatrixSymbol)}
        result = sweep(self.program, over, branches=self.branches, fixed=held or None, **options)
        begin = sweeping.now()
        checked = _check_beside_user(self, result)
        spent = sweeping.now() - begin
        total = result.seconds + spent
        return replace(result, checked_points=checked, seconds=total,
                       timings={**result.timings, "checked": spent, "total": total})


def sweep_function(fn: Any, over: Any, *, fixed: Mapping[str, Any] | None = None, **options: Any) -> Sweep:
    """`symgrad.sweep` of a torch function: read by `trace` at an example point (each range's
    midpoint, each fixed number, an explicit batch's first point, and the values `fixed` gives,
    tensors and data), then swept as `Traced.sweep` sweeps it."""
    if not isinstance(over, Mapping):
        raise PointError("`over` must map the function's parameters to (low, high) ranges or to arrays of values.\n"
                         "Fix: e.g. `over={\"x\": (-2, 2)}`.")
    example: dict[str, Any] = {}
    for key, v in over.items():
        name = key.name if isinstance(key, sp.Basic) else str(key)
        if isinstance(v, tuple) and len(v) == 2:
            example[name] = (float(v[0]) + float(v[1])) / 2
        else:
            values = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64).reshape(-1)
            example[name] = float(values[0]) if values.size else v
    given = {**example, **(fixed or {})}
    missing = [p.name for p in inspect.signature(fn).parameters.values()
               if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in given]
    if missing:
        raise OptionError(
            f"`{getattr(fn, '__name__', 'this function')}` takes {', '.join(f'`{m}`' for m in missing)}, which neither "
            "`over` (the scalars a sweep runs over) nor `fixed` (the tensors and data it holds) gives.\n"
            f"Fix: hold it fixed, e.g. `symgrad.sweep(f, over, fixed={{\"{missing[0]}\": {missing[0]}}})`, or read "
            "the function first at example values and sweep the reading: `symgrad.trace(f, *example_values).sweep(over)`.")
    return trace(fn, **given).sweep(over, **options)


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
        same = _same_arrays(values, s.value) & _same_arrays(grads, s.grad_autograd).all(axis=1)
        parted = np.flatnonzero(~same).tolist()
        _check_points(traced, s, parted, names, wrt, dtype)
        return n
    flagged = np.flatnonzero(s.codes != CODE["agree"])  # every point a finding is about
    sample = np.unique(np.linspace(0, n - 1, min(n, CHECK_SAMPLE)).round().astype(np.int64)) if n else flagged
    rows = np.union1d(flagged, sample)
    _check_points(traced, s, [int(i) for i in rows], names, wrt, dtype)
    return len(rows)


def _run_batch(traced: Traced, s: Sweep, names: list[str], wrt: list[int],
               dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray] | None:
    """The user's function on every point of the sweep at once (`torch.func.vmap` over the points,
    then one backward pass: each point's output depends on its own inputs only, so the gradient of
    the sum is each point's gradient): its values and the gradients of `wrt`, or None where it
    cannot run on a batch (vmap refuses Python control flow on tensor values, `.item()`, a value
    turned into a Python number) or gives no value per point. The values (N,) and gradients
    (N, wrt) come as float64 arrays (a float32 number is exactly a float64 one)."""
    rest = {k: v for k, v in traced.arguments.items() if k not in names}  # data and tensors, as given
    n = len(s.points)
    # A tensor sweep's chunk (its values per chunk within a bound), or every point at once.
    chunk = s.chunk or n
    values = np.empty(n)
    grads_of = np.empty((n, len(wrt)))

    def one(*values: torch.Tensor) -> Any:
        return traced.fn(**rest, **dict(zip(names, values)))

    for start in range(0, n, chunk):
        columns = [torch.tensor(s.points[start:start + chunk, k], dtype=dtype, requires_grad=True)
                   for k in range(len(names))]
        try:
            with torch.enable_grad():
                out = torch.func.vmap(one)(*columns)
                if not isinstance(out, torch.Tensor) or tuple(out.shape) != (columns[0].shape[0],):
                    return None
                grads = torch.autograd.grad(out.sum(), [columns[k] for k in wrt], allow_unused=True)
        except Exception:  # noqa: BLE001 - the function does not run batched: checked point by point
            return None
        stop = start + columns[0].shape[0]
        values[start:stop] = out.detach().to(torch.float64).cpu().numpy()
        for j, g in enumerate(grads):
            grads_of[start:stop, j] = math.nan if g is None else g.detach().to(torch.float64).cpu().numpy()
    return values, grads_of


def _check_points(traced: Traced, s: Sweep, rows: list[int], names: list[str], wrt: list[int],
                  dtype: torch.dtype) -> None:
    """Run the user's function at each of `rows` on its own; a point where it parts from the
    translation is a TraceError naming it."""
    for i in rows:
        tensors = {name: torch.tensor(float(s.points[i, k]), dtype=dtype, requires_grad=True) for k, name in enumerate(names)}
        point = {**traced.arguments, **tensors}
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
        if not (same_value and all(_same(a, b) for a, b in zip(mine, theirs))) and s.chunk:
            # A tensor sweep's batch may round otherwise than one point's run (a batched reduction):
            # the translation run on this point alone decides.
            alone = _translation_alone(traced, s, i, wrt, dtype)
            same_value = _same(float(out), alone[0])
            theirs = alone[1:]
        if not (same_value and all(_same(a, b) for a, b in zip(mine, theirs))):
            what = (f"the value is {float(out)!r} in your function but {float(s.value[i])!r} in the translation"
                    if not same_value else f"autograd is {tuple(mine)} in your function but {tuple(theirs)} in the "
                    "translation")
            raise TraceError(_PARTS.format(fn=_name(traced), at=_at(names, s.points[i]), what=what))


def _translation_alone(traced: Traced, s: Sweep, i: int, wrt: list[int], dtype: torch.dtype) -> list[float]:
    """The translation's value and gradients of `wrt` at point `i` of a tensor sweep, run alone."""
    lowered = s.lowered
    var = {sym.name: name for sym, name in zip(lowered.symbols, lowered.inputs)}
    columns = {var[sym.name]: torch.tensor([float(s.points[i, k])], dtype=dtype) for k, sym in enumerate(s.symbols)}
    held = {var[sym.name]: torch.tensor(traced.point[sym.name], dtype=dtype)
            for sym in lowered.symbols if isinstance(sym, sp.MatrixSymbol)}
    ran = run_tensor_batch(lowered, columns, held, checks=False, loop=True)
    return [float(ran.value[0]), *(float(ran.grads[k][0]) for k in wrt)]


_PARTS: Final = (
    "The translation of `{fn}` does not reproduce it at {at}, a point of this sweep: {what}.\n"
    "The translation was checked where it was read; symgrad gives no verdict at a point where it computes "
    "something else than your code.\n"
    "Fix: compare that point on its own (`symgrad.compare(fn, at=...)` reads the function there), or rewrite the "
    "line that differs with the spellings of docs/supported.md."
)


def _same_arrays(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`_same` elementwise: equal bit for bit as floats (the sign of a zero too), NaN matching NaN."""
    return (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))


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
    return read_function(fn, args, kwargs, kind=Traced)  # type: ignore[return-value]
