"""Comparisons over many points at once: where, in a whole range, do the gradients part?

The lowered program runs on the whole batch in torch, forward and backward, recording which
points sit exactly on a threshold or kink and which lost digits in a cancelling subtraction. An
independent float64 computation of the symbolic derivative (SymPy's derivative, lowered the same
way; for programs, the program with `detach`/`item`/`no_grad` as the identity) is compared with
autograd on every point where it can find more than those records (float32 sweeps, detached
parts) and on a sample otherwise. Only the flagged points are compared exactly with `compare()`,
a few per run of neighbouring flagged points; the causes of the rest of a run are inferred from
its compared points; every other point agrees.

Control flow stays vectorised: the batch runner (`symgrad.sides.batch`) runs the IR with masks.

A function that computes with tensors sweeps its scalar inputs with its tensors held (`fixed=`,
`tools.sweep_tensors`): the tensor runner (`symgrad.sides.batch_tensors`) runs it through
`torch.func.vmap` on chunks of points, and a sample of the points without a flag is compared
exactly as well (a sum over a tensor can cancel where no flag of the batch run sees it).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import sympy as sp
import torch

from ..program.custom import CUSTOM_OP
from ..program.deep import deep
from ..sides.autograd import in_torch_state, torch_state
from ..base.causes import Cause
from ..base.rendering import render
from ..frontends.front import expression, is_torch_function
from ..verdict.compare import compare
from ..verdict.records import Comparison
from ..base.errors import LoopLimitError, OptionError, PointError, UnsupportedNodeError
from ..sides.executed import DEFAULT_MAX_ITERATIONS
from ..sides.ir import LoweredProgram, NoGrad, Stmt, every_statement, steps_of
from ..sides.lowering import DTYPES, RTOL, wrt_indices, check_options, lower
from ..program.primitives import strip
from ..program.program import float_of
from ..sides.batch import run_batch, run_keyed
from ..sides.batch_keys import STUCK, flag_key
from ..sides.symbolic import derivative_expressions
from .sweep_light import Light
from .sweep_runs import AGREE, CODE, IDS, SKIPPED, Executed, Runs, flag_more
from .sweep_tensors import (Held, check_over, computes_with_tensors, hold, probe, probe_note, run_held,
                            symbolic_held, tensor_wrt)

def now() -> float:
    """The clock a sweep's `timings` and `seconds` read (`time.perf_counter`); one seam, so that a
    test can count readings instead of the machine's time."""
    return time.perf_counter()


# A torch function is read and swept by `trace` (`tools.traced`, which stands on this module):
# imported by name when one is swept, as the rendering seam imports the show layer.
TRACED: Final = "symgrad.tools.traced"
MAX_EXACT = 2000  # flagged points compared exactly; beyond that, causes are inferred per group
# The most points one sweep holds, checked before anything is allocated: a sweep keeps each
# point's coordinates (8 bytes per input) several times over, with its values and gradients, in
# numpy and in torch; 2e7 points of one input take about 2.5 GiB at the peak.
MAX_POINTS: Final = 20_000_000


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Region:
    """Where one cause occurs: an interval of the swept input (1-D) or a set of points."""

    cause: str
    count: int
    symbol: str = "x"
    low: float | None = None
    high: float | None = None
    points: tuple[tuple[float, ...], ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        where = (f", low={self.low!r}, high={self.high!r}" if self.low is not None
                 else f", points=<{len(self.points)} points>")
        return f"Region({self.cause!r}, {self.count}, {self.symbol!r}{where})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the cause, how many points, and the interval (1-D) or the points (2-D)."""
        return render("region.dict", self)

    def __str__(self) -> str:
        if self.low is not None:
            where = (f"{self.symbol} = {self.low:.6g}" if self.low == self.high
                     else f"{self.symbol} in [{self.low:.6g}, {self.high:.6g}]")
            return f"{self.cause}: {where} ({_points(self.count)})"
        return f"{self.cause}: {_points(self.count)}"


@dataclass(frozen=True)
class Sweep:
    """Comparisons of one function over many points."""

    source: str
    lowered: LoweredProgram
    symbols: tuple[sp.Basic, ...]  # the inputs, in order
    wrt: tuple[sp.Basic, ...]
    points: np.ndarray  # shape (N, inputs): the exact values the tensors held
    value: np.ndarray  # f, as the program computed it
    # The float64 symbolic derivative, computed when first asked for (`grad_symbolic`).
    symbolic: Any = field(repr=False, compare=False)
    grad_autograd: np.ndarray  # (N, wrt)
    codes: np.ndarray  # (N,): index into IDS of each point's cause
    counts: dict[str, int]
    regions: dict[str, tuple[Region, ...]]
    worst: tuple[Comparison, ...]
    exact_points: int  # how many points were compared exactly
    inferred_points: int  # flagged points whose cause was inferred from their group
    skipped_points: int  # points whose loop passed max_iterations
    dtype: str
    branches: str
    device: str
    seconds: float
    grid: tuple[int, ...] = field(default=())
    # The inputs `over` gives a range (in order; the others are fixed, or an explicit batch).
    swept: tuple[int, ...] = field(default=())
    # The exact executed derivative as floats, built when first asked for (`grad_executed`).
    executed: Any = field(default=None, repr=False, compare=False)
    # For a function read from torch code (`Traced.sweep`): how many points were run through the
    # user's own function beside the translation, value and gradient bit for bit (0 otherwise).
    checked_points: int = 0
    # Where the time went, in seconds, each figure inside `seconds`: "batch" (the lowered program
    # forward and backward on every point, with the flags), "symbolic" (the float symbolic
    # derivative: its sample, or every point where it is needed), "flagged" (the flagged points'
    # exact work: their compare() and rounding checks, refinement included), "other" (the rest:
    # the grid, the runs of flagged points, inference, counts and regions), and "total" (=
    # `seconds`). `Traced.sweep` adds "checked" (the user's own function run beside the
    # translation), which its `seconds` and "total" include.
    timings: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    # Sentences on how the sweep ran where it is not the usual way: the tensors it held fixed, a
    # tensor program that vmap could not run on the batch (run point by point instead).
    notes: tuple[str, ...] = field(default=())
    # A tensor sweep: the points per vmapped chunk (its values per chunk within a bound); 0 otherwise.
    chunk: int = 0

    @property
    def grad_executed(self) -> np.ndarray:
        """(N, wrt): the exact derivative of the executed path, as a float, where it is known: at
        the points compared exactly, and where the float comparison agreed (there it is autograd's
        value within the tolerance); NaN at points whose cause was inferred from their group."""
        if isinstance(self.executed, Executed):
            return self.executed.values()
        return np.full_like(self.grad_autograd, math.nan) if self.executed is None else np.asarray(self.executed)

    def __repr__(self) -> str:
        source = self.source if len(self.source) <= 80 else self.source[:77] + "..."
        counts = ", ".join(f"{k!r}: {v}" for k, v in list(self.counts.items())[:10])
        return (f"<Sweep of {source!r} over {len(self.points):,} points ({self.dtype}): "
                f"{{{counts}}}>")

    def to_dict(self, *, points: bool = True) -> dict[str, Any]:
        """The sweep as JSON-safe data (`json.dumps(s.to_dict(), allow_nan=False)` works): its
        settings, counts, regions and worst points (each with its point, cause and full
        comparison), and with `points=True` one list per column: the inputs, f, and the three
        derivatives per input (NaN and infinities as the strings "nan", "inf", "-inf"; the
        executed derivative is "nan" where it is not known), and each point's cause."""
        return render("sweep.dict", self, points)

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per point: the inputs, f, the symbolic, executed and
        autograd derivatives per input, and the cause. Needs pandas (`pip install pandas`)."""
        return render("sweep.frame", self)

    @property
    def grad_symbolic(self) -> np.ndarray:
        """(N, wrt): the float64 evaluation of the symbolic derivative at each point (SymPy's
        derivative lowered to torch; for a program, the program with `detach`/`item`/`no_grad` as
        the identity). Computed on first use: the sweep itself needs it only on a sample."""
        return self.symbolic.values() if isinstance(self.symbolic, _Symbolic) else np.asarray(self.symbolic)

    @property
    def causes(self) -> np.ndarray:
        """The cause id of each point ("agree" for most; "skipped" where a loop ran too long, or
        where compare() does not decide the point: its sentence is in `notes`)."""
        return np.asarray(IDS)[self.codes]

    def __str__(self) -> str:
        lines = [f"symgrad sweep: {self.source} over {len(self.points)} points ({self.dtype}, "
                 f"branches=\"{self.branches}\", {self.seconds:.2f} s)"]
        width = max([13, *(len(cause) for cause in self.counts)])  # custom-backward is longer than the rest
        for cause, n in sorted(self.counts.items(), key=lambda kv: Cause.from_id(kv[0]).severity):
            lines.append(f"  {cause:<{width}} {n}")
        for cause, regions in self.regions.items():
            for r in regions[:5]:
                lines.append(f"  where {r}")
            if len(regions) > 5:
                lines.append(f"  ... {len(regions) - 5} more {cause} regions")
        if self.inferred_points:
            lines.append(f"  ({self.exact_points} flagged points compared exactly; the causes of "
                         f"{self.inferred_points} more were inferred from points on the same path)")
        if self.skipped_points:
            lines.append(f"  ({_points(self.skipped_points)} skipped: a loop passed max_iterations, or a point symgrad "
                         "does not decide, said below)")
        if self.checked_points:
            which = ("every one" if self.checked_points == len(self.points)
                     else "every one with a finding, and a sample of the rest")
            lines.append(f"  ({_points(self.checked_points)} ({which}) run through your own function too: the same "
                         "value and gradient, bit for bit)")
        lines += [f"  ({note})" for note in self.notes]
        for c in self.worst[:3]:
            e = next(x for x in c.entries if not x.ok)
            at = ", ".join(f"{k} = {float(v):.6g}" for k, v in c.point.items() if k in self.symbols)  # (not a held tensor)
            lines.append(f"  worst: at {at}: "
                         f"[{e.cause.id}] {e.explanation}")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | None = None, *, ax: Any = None) -> Any:
        """Draw the sweep (matplotlib: `pip install matplotlib`, or `pip install -e ".[plot]"` from
        a checkout). One swept input: f and the symbolic, executed and autograd derivatives over
        it, the points that disagree marked and banded by cause. Two: a map of the cause at each
        (x, y) point, one colour per cause, the worst points marked x, beside a heat map of
        autograd's relative error against the exact derivative. More than two: hold some fixed
        in `over` (an OptionError says so)."""
        return render("sweep.plot", self, path, ax=ax)

    def _repr_html_(self) -> str:
        return render("sweep.html", self)


def _points(n: int) -> str:
    return "1 point" if n == 1 else f"{n} points"


# --------------------------------------------------------------------------- the sweep


def _grid(symbols: Sequence[sp.Basic], over: Mapping[Any, Any], n: int,
          dtype: str) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
    if not isinstance(over, Mapping) or not over:
        raise PointError("`over` must map input symbols to (low, high) ranges or to arrays of values.\n"
                         "Fix: e.g. `over={x: (-2, 2)}` or `over={x: [0.0, 0.5, 1.0]}`.")
    names = [s.name for s in symbols]
    by_name = {(k.name if isinstance(k, sp.Symbol) else str(k)): v for k, v in over.items()}
    extra = sorted(set(by_name) - set(names))
    if extra:
        raise PointError(f"`over` names {', '.join(extra)}, which the function does not use (inputs: "
                         f"{', '.join(names)}).\nFix: sweep over the function's inputs.")
    missing = [m for m in names if m not in by_name]
    if missing:
        raise PointError(f"`over` gives no values for {', '.join(missing)}.\n"
                         "Every input needs a range or values.\nFix: add it, e.g. `over={..., "
                         f"{missing[0]}: (-1, 1)}}`.")
    ranges = {k: v for k, v in by_name.items() if isinstance(v, tuple) and len(v) == 2}
    try:
        fixed = {k: float(v) for k, v in by_name.items() if k not in ranges and _is_number(v)}
        batches = {k: np.asarray(v, dtype=np.float64) for k, v in by_name.items() if k not in ranges and k not in fixed}
        for k, (lo, hi) in ranges.items():
            float(lo), float(hi)
    except (TypeError, ValueError) as err:
        raise PointError(f"`over` holds something that is not a number ({err}).\n"
                         "Fix: give numbers: a (low, high) pair, a fixed value or an array of values per input.") from None
    for b in batches.values():
        _check_size(b.size, len(names), None)  # before any copy of the user's batch
    batches = {k: b.reshape(-1) for k, b in batches.items()}
    if ranges and batches:
        raise PointError("`over` mixes ranges and explicit values.\nFix: give every input a (low, high) "
                         "range or a fixed value, or every input an array of the same length.")
    if fixed and not ranges and not batches:
        raise PointError(f"`over` fixes every input ({', '.join(fixed)}): there is nothing to sweep.\n"
                         "A fixed value holds an input constant while the others run over their ranges.\n"
                         f"Fix: give at least one input a (low, high) range, e.g. `over={{{names[0]}: (-1, 1)}}`, "
                         "or compare() the function at that one point.")
    if batches:
        lengths = {len(v) for v in batches.values()}
        if lengths == {0}:
            raise PointError("`over` gives an empty batch of points.\nFix: give at least one value per input.")
        if len(lengths) != 1:
            raise PointError("The explicit batches in `over` have different lengths.\nFix: give arrays of one length.")
        size = next(iter(lengths))
        cols = [batches[m] if m in batches else np.full(size, fixed[m]) for m in names]
        grid: tuple[int, ...] = ()
        swept: tuple[int, ...] = ()
    else:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise OptionError(f"n={n!r} is not a positive number of points.\nFix: pass e.g. n=1001.")
        ranged = [m for m in names if m in ranges]
        _check_size(n ** len(ranged), len(ranged), n)
        axes = [np.linspace(float(ranges[m][0]), float(ranges[m][1]), n) for m in ranged]
        grids = np.meshgrid(*axes, indexing="ij", copy=False) if len(axes) > 1 else axes
        mesh = dict(zip(ranged, (g.reshape(-1) for g in grids)))
        size = n ** len(ranged)
        cols = [mesh[m] if m in mesh else np.full(size, fixed[m]) for m in names]
        grid = tuple(n for _ in ranged)
        swept = tuple(k for k, m in enumerate(names) if m in ranges)
    if len(cols) > 1:
        points = np.stack(cols, axis=1)
    else:  # one input: no copy of our own range, a copy of the user's batch
        points = (np.array(cols[0]) if batches else cols[0]).reshape(-1, 1)
    if dtype != "float64":  # the exact values the tensors of this dtype hold
        points = torch.tensor(points, dtype=DTYPES[dtype]).to(torch.float64).numpy()
    if not np.all(np.isfinite(points)):
        raise PointError("`over` contains NaN or infinite values (after rounding to the dtype).\nFix: give finite values.")
    return points, grid, swept


def _is_number(v: Any) -> bool:
    """A fixed value in `over`: one number (a Python, numpy, SymPy or 0-d torch number)."""
    if isinstance(v, (bool, str, bytes)):
        return False
    if isinstance(v, (int, float, np.number, sp.Number)):
        return True
    return isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 0


def _check_size(count: int, inputs: int, n: int | None) -> None:
    """Refuse a sweep of more than MAX_POINTS points before allocating any of them."""
    if count <= MAX_POINTS:
        return
    gib = count * inputs * 8 / 2**30
    if n is None:
        how, fix = "an explicit batch", f"pass at most {MAX_POINTS:,} points, in several sweeps if need be"
    else:
        per_axis = int(MAX_POINTS ** (1 / inputs))
        while (per_axis + 1) ** inputs <= MAX_POINTS:  # the float root may fall one short
            per_axis += 1
        while per_axis**inputs > MAX_POINTS:
            per_axis -= 1
        grid = f"n={n:,} points per input" + (f", {inputs} inputs: {n:,}**{inputs}" if inputs > 1 else "")
        how, fix = grid, (f"pass a smaller n (n={per_axis:,} gives {per_axis**inputs:,} points)"
                          + (", or sweep fewer inputs at once (fix the others as constants)" if inputs > 1 else ""))
    raise OptionError(
        f"This sweep would have {count:,} points ({how}), more than MAX_POINTS = {MAX_POINTS:,}: "
        f"its coordinates alone would take {gib:,.1f} GiB of memory.\n"
        "A sweep holds every point's coordinates, values and gradients at once, several times over "
        "(in numpy and in torch, float64), so symgrad refuses it before allocating anything.\n"
        f"Fix: {fix}. Fewer points still find every region: the points that disagree are compared "
        "exactly (at most max_exact of them)."
    )


def _symbolic_batch(lowered: LoweredProgram, cols64: list[torch.Tensor], wrt: list[int], max_iterations: int) -> np.ndarray:
    """float64 values of the symbolic derivative on the batch."""
    derivs = derivative_expressions(lowered)
    n = cols64[0].shape[0]
    out = np.empty((n, len(wrt)))
    if derivs is None:
        # A program: its mathematics is the program with detach/item/no_grad as the identity.
        _, grads, _, _ = run_batch(lowered, cols64, math_mode=True, checks=False, max_iterations=max_iterations)
        for j, k in enumerate(wrt):
            out[:, j] = grads[k].cpu().numpy()
        return out
    by_name = {name: c for name, c in zip(lowered.inputs, cols64)}
    for j, k in enumerate(wrt):
        dl = _derivative_program(derivs.exprs[k])
        if not isinstance(dl, LoweredProgram):
            out[:, j] = dl
            continue
        with torch.no_grad():
            value, _, _, _ = run_batch(dl, [by_name[name] for name in dl.inputs], grad=False, checks=False,
                                       max_iterations=max_iterations)
        out[:, j] = value.cpu().numpy()
    return out


def clear_cache() -> None:
    """Forget the lowered derivative programs sweeps have made (for a cold timing)."""
    _derivative_program.cache_clear()


@functools.lru_cache(maxsize=256)
def _derivative_program(d: sp.Basic) -> LoweredProgram | float:
    """SymPy's derivative lowered to torch (a constant derivative as its float)."""
    d = strip(d.replace(lambda e: isinstance(e, (sp.DiracDelta, sp.Derivative)), lambda e: sp.Integer(0)))
    if not d.free_symbols:
        return float(d) if d.is_real else math.nan
    return lower(d, branches="where")


def _flag(sym: np.ndarray, auto: np.ndarray, rtol: float) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(sym - auto) <= rtol * np.abs(sym) + 1e-300
    bad = ~close | ~np.isfinite(auto) | ~np.isfinite(sym)
    return np.asarray(bad.any(axis=1))


@deep
@in_torch_state
def sweep(f: Any, over: Mapping[Any, Any], *, n: int = 1001, wrt: Iterable[Any] | None = None,
          dtype: str | None = None, branches: Literal["if", "where"] = "if", device: str = "cpu",
          rtol: float | None = None, progress: bool | None = None, max_exact: int = MAX_EXACT,
          max_iterations: int = DEFAULT_MAX_ITERATIONS, fixed: Mapping[Any, Any] | None = None) -> Sweep:
    """Compare the three derivatives of `f` over a range, a grid, or a batch of points.

    **Arguments:**

    - `f`: a SymPy expression or a `symgrad.Program`; or a torch function, read by `trace` at
      an example point (each range's midpoint, the values `fixed` gives its tensors and data)
      and swept as `trace(f, ...).sweep(over)` is, your code run beside its translation.
    - `over`: `{x: (low, high)}` (n points; two inputs make an n x n grid) or
      `{x: values, y: values}` (an explicit batch).
    - `n`: points per axis for ranges (default 1001).
    - `fixed`: the tensor inputs held at one value while the scalar inputs run over `over`
      (`fixed={W: torch.randn(8, 8)}`; a scalar input may be fixed to a number here too). A
      function that computes with tensors runs on the batch through `torch.func.vmap` (point by
      point where vmap cannot run it, said in `.notes`), and the derivatives are those with
      respect to its scalar inputs.
    - `dtype`, `branches`, `wrt`, `rtol`: as for `compare()` (`dtype=None`: float64, or the
      dtype of a torch function's tensors).
    - `device`: `"cpu"` or `"cuda"` for the batched torch runs (exact work stays on the CPU).
    - `progress`: show progress on a terminal (default: when stderr is a terminal and the sweep
      is slow); `False` to stay quiet.
    - `max_exact`: at most this many flagged points are compared exactly (default 2,000). A few
      points of each run of neighbouring flagged points are; a run whose compared points disagree
      is compared point by point where it fits, and bisected where it does not; the other points
      of a run take the cause of their nearest compared point (`inferred_points` counts them).

    **Returns:** a `Sweep` with `.counts` (cause id -> points), `.regions`, `.worst`, `.plot()`,
    and `.timings` (seconds spent on the batch run, the float symbolic derivative, the flagged
    points' exact work and the rest, inside `.seconds`).

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sweep(sp.Abs(x), over={x: (-1, 1)}, n=5).counts
    {'agree': 4, 'kink': 1}
    """
    start = now()
    if is_torch_function(f):  # a sweep checks the user's code beside its translation: `trace` reads it first
        return importlib.import_module(TRACED).sweep_function(
            f, over, fixed=fixed, n=n, wrt=wrt, dtype=dtype, device=device, rtol=rtol, progress=progress,
            max_exact=max_exact, max_iterations=max_iterations)
    dtype = "float64" if dtype is None else dtype
    check_options(branches=branches, dtype=dtype)
    tol = float(rtol) if rtol is not None else RTOL[dtype]
    lowered = lower(expression(f), branches=branches, dtype=dtype)
    # A function with tensor values: its scalar inputs are swept, its tensor inputs held (`fixed`).
    tensors = computes_with_tensors(lowered)
    if tensors:
        check_over(lowered, over)
    held = hold(lowered, fixed, dtype) if tensors or fixed else None
    symbols = held.scalars if held is not None else lowered.symbols
    if held is not None and not symbols:
        raise PointError("Every input of this function is a tensor held fixed: there is no scalar input to sweep.\n"
                         "Fix: compare() the function at that one point, or sweep a function of a scalar input.")
    if held is not None and held.numbers and isinstance(over, Mapping):
        over = {**over, **held.numbers}
    points, grid, swept = _grid(symbols, over, n, dtype)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"device={device!r}, but torch sees no GPU here.\nFix: use device=\"cpu\".")
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, ValueError) as err:
        raise OptionError(f"device={device!r} is not a device torch can use here ({err}).\n"
                          "Fix: use device=\"cpu\" (or \"cuda\" on a machine with a GPU).") from None
    names = [s.name for s in symbols]
    wrt_idx = tensor_wrt(held, wrt) if held is not None and tensors else wrt_indices(lowered, wrt)
    cols = [torch.from_numpy(np.ascontiguousarray(points[:, k])).to(device=dev, dtype=DTYPES[dtype])
            for k in range(len(names))]
    clock = _Clock()
    notes: list[str] = []
    chunk = 0
    # Each point's state in one int8 (`sides.batch_keys.flag_key`): stuck (its loop never ended: no
    # value is shown of the unfinished loop), quiet, or flagged with its signature (on a tie, autograd
    # finite). The batch run writes it chunk by chunk, while each chunk's values are in the cache.
    with clock("batch"):
        if held is not None and tensors:
            ran = run_held(lowered, held, cols, max_iterations=max_iterations)
            value, grads = ran.value, ran.grads
            key = flag_key(ran.tie.cpu().numpy(), ran.cancel.cpu().numpy(), [grads[k].cpu().numpy() for k in wrt_idx],
                           value.cpu().numpy(), ran.stuck.cpu().numpy())
            notes += [held.sentence()] if held.tensors else []
            notes += [ran.note] if ran.note else []
            chunk = ran.chunk
        else:
            value, grads, key = run_keyed(lowered, cols, wrt_idx, max_iterations=max_iterations)
    any_stuck = bool(key.min(initial=0) == STUCK)
    stuck = key == STUCK if any_stuck else np.broadcast_to(False, key.shape)
    if len(wrt_idx) == 1:  # one column: the gradient's own memory, no copy
        auto = grads[wrt_idx[0]].to(torch.float64).cpu().numpy().reshape(-1, 1)
    else:
        auto = np.stack([grads[k].to(torch.float64).cpu().numpy() for k in wrt_idx], axis=1)
    symbolic = _Symbolic(lowered, [c.to(torch.float64) for c in cols], wrt_idx, max_iterations, stuck,
                         held if tensors else None)
    # A point is flagged when it is on a threshold or kink, near a cancelling difference, where
    # autograd or f is not finite, or where the float symbolic derivative disagrees with autograd.
    # For a float64 function without detach/item/no_grad, the symbolic derivative in floats is
    # only the same derivative by another formula, with float64's rounding: its disagreements are
    # the flags above (cancellations, thresholds, non-finite values), so it runs on a sample as a
    # cross-check, and on every point only when the sample disagrees (or when it is asked for).
    eager = symbolic.differs(dtype)
    with clock("symbolic"):
        if eager:
            flag_more(key, _flag(symbolic.values(), auto, tol))
        elif not tensors:  # (a tensor program's mathematics here is the same run: nothing to cross-check)
            sample = _sample(key == 0)
            if len(sample) and _flag(symbolic.at(sample), auto[sample], tol).any():
                flag_more(key, _flag(symbolic.values(), auto, tol))
    probed: dict[int, Comparison] = {}
    if tensors:  # an exact check where the flags say nothing (`sweep_tensors.EXACT_SAMPLE`)
        with clock("flagged"):
            probed = probe(f, points, held, key == 0, [symbols[k] for k in wrt_idx], dtype=dtype,
                           branches=branches, rtol=rtol, max_iterations=max_iterations)
        parted = {i: c for i, c in probed.items() if not c.ok}
        if parted:
            flag_more(key, key == 0)
            notes.append(probe_note(parted, len(probed), symbols))
    codes = np.full(len(points), AGREE, dtype=np.int8)
    if any_stuck:
        value = value.to(torch.float64).masked_fill(torch.from_numpy(stuck).to(value.device), math.nan)
        auto[stuck] = math.nan
        codes[stuck] = SKIPPED
    runs = Runs(key)
    # How wrong autograd may be at each flagged point, to compare the worst of a run: against the
    # float symbolic derivative where it was computed (otherwise a run's spread and ends).
    err: np.ndarray | None = None  # None: the same within each run (a run is all finite or not)
    if symbolic.computed:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            err = np.nan_to_num(np.abs(auto - symbolic.values()).max(axis=1), nan=np.inf)
        err[~np.isfinite(auto).all(axis=1)] = np.inf
    chosen = runs.choose(err, max_exact, PER_RUN)
    show = progress if progress is not None else (sys.stderr.isatty() and len(chosen) > 50)
    exact: dict[int, Comparison] = {}
    # Where the float comparison agreed, the executed derivative is autograd's within tolerance.
    executed = Executed(auto, runs)
    t_last = now()

    decided: set[int] = set()  # points compared exactly: by compare(), or by rounding_only()
    wrt_syms = [symbols[k] for k in wrt_idx]
    fixed_at = held.point() if held is not None else {}
    undecided: list[str] = []  # the first point compare() does not decide, and its sentence

    lighter = Light(lowered, wrt_idx, dtype, tol, max_iterations, runs, exact)

    def exactly(todo: Iterable[int], light: bool = False) -> None:
        """Compare these points exactly. `light`: points of a run on no threshold that are not
        its first compared point; `sweep_light.Light` decides them without a report where
        that is the whole question, and compare() where it is not."""
        nonlocal t_last
        for i in todo:
            if i in decided or i in runs.skipped:
                continue
            try:
                quick = lighter.decide(i, points[i].tolist(), auto[i].tolist()) if light else None
                if quick is not None:
                    codes[i], executed[i] = quick
                else:
                    at = {**fixed_at, **{s: float(points[i, k]) for k, s in enumerate(symbols)}}
                    c = compare(f, at, wrt=wrt_syms, dtype=dtype, branches=branches, rtol=rtol,
                                max_iterations=max_iterations)
                    exact[i] = c
                    codes[i] = CODE[c.cause.id]
                    executed[i] = [math.nan if e.grad_executed is None else float_of(e.grad_executed) for e in c.entries]
            except LoopLimitError:
                codes[i] = SKIPPED
                runs.skipped.add(i)
                continue
            except UnsupportedNodeError as err:  # a corner symgrad does not decide (torch.cdist's cone)
                codes[i] = SKIPPED
                runs.skipped.add(i)
                if not undecided:
                    at = ", ".join(f"{sp.sstr(s)} = {float(points[i, k]):.6g}" for k, s in enumerate(symbols))
                    undecided.append(f"at {at}: {str(err).splitlines()[0]}")
                continue
            decided.add(i)
            if show and now() - t_last > 0.2:
                t_last = now()
                print(f"\rsymgrad sweep: comparing flagged points exactly {len(decided)}", end="", file=sys.stderr)

    # For a float64 function without detach/item/no_grad, points of a run on no threshold (of
    # cancellations, or where autograd is not finite) are decided without a report where that is
    # the whole question (`sweep_light`); the first compared point of each run gets its full
    # comparison (the worst points and the report show those).
    light = not eager and not tensors  # (`rounding_only` reads a point of numbers)
    for i, c in probed.items():  # the tensor sweep's exact sample, compared already
        exact[i], codes[i] = c, CODE[c.cause.id]
        executed[i] = [math.nan if e.grad_executed is None else float_of(e.grad_executed) for e in c.entries]
        decided.add(i)
    with clock("flagged"):
        if light and len(chosen):
            first = lighter.firsts(chosen)
            cheap = ~first & (runs.signature(chosen) <= 1)
            exactly(chosen[~cheap].tolist())
            exactly(chosen[cheap].tolist(), light=True)
        else:
            exactly(chosen.tolist())
        runs.refine(codes, decided, exactly, max_exact, light=light)
    if show:
        print(file=sys.stderr)
    inferred = runs.infer(codes, decided)
    numbers = _count(codes, {AGREE, SKIPPED} | {int(codes[i]) for i in decided})
    counts = {IDS[k]: int(m) for k, m in enumerate(numbers) if m and k != SKIPPED}
    worst = _worst(exact, auto, executed)
    seconds = now() - start
    return Sweep(
        source=lowered.normalized.source if not lowered.normalized.is_program else "program",
        lowered=lowered, symbols=tuple(symbols), wrt=tuple(wrt_syms),
        points=points, value=value.to(torch.float64).cpu().numpy(), symbolic=symbolic, grad_autograd=auto,
        codes=codes, counts=dict(sorted(counts.items())), regions=_regions(points, codes, symbols, swept),
        worst=worst, exact_points=len(decided), inferred_points=inferred, skipped_points=int(numbers[SKIPPED]),
        dtype=dtype, branches=branches, device=str(dev), seconds=seconds, grid=grid,
        swept=swept, executed=executed, timings=clock.timings(seconds), notes=tuple(notes + undecided), chunk=chunk,
    )


class _Clock:
    """Seconds spent in named parts of a sweep (`Sweep.timings`)."""

    PARTS: Final = ("batch", "symbolic", "flagged")

    def __init__(self) -> None:
        self.spent = dict.fromkeys(self.PARTS, 0.0)

    @contextlib.contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        begin = now()
        try:
            yield
        finally:
            self.spent[part] += now() - begin

    def timings(self, total: float) -> dict[str, float]:
        """The parts, "other" (what the parts leave of the total) and "total"."""
        return {**self.spent, "other": max(0.0, total - sum(self.spent.values())), "total": total}


def _count(codes: np.ndarray, present: set[int]) -> np.ndarray:
    """How many points have each code, given the codes that can occur (inferred points take the
    code of a compared one): one pass per code, without bincount's copy of the codes as intp."""
    numbers = np.zeros(len(IDS), dtype=np.int64)
    for k in present:
        numbers[k] = np.count_nonzero(codes == k)
    return numbers


# At most this many points of a sweep check the float symbolic derivative when the flags above
# stand in for it (an even spread over the points not flagged).
CROSS_CHECK: Final = 1024


def _sample(candidates: np.ndarray) -> np.ndarray:
    """At most CROSS_CHECK of the points where `candidates` holds, evenly spread."""
    if len(candidates) <= CROSS_CHECK:
        return np.flatnonzero(candidates)
    spread = np.unique(np.linspace(0, len(candidates) - 1, CROSS_CHECK).astype(np.int64))
    return spread[candidates[spread]]


class _Symbolic:
    """The float symbolic derivative on the sweep's points, computed when first needed (a
    float32 sweep, a function with detach/item/no_grad, a plot), on all points or a sample."""

    def __init__(self, lowered: LoweredProgram, cols64: list[torch.Tensor], wrt: list[int],
                 max_iterations: int, stuck: np.ndarray, held: Held | None = None) -> None:
        self.lowered, self.cols64, self.wrt = lowered, cols64, wrt
        self.max_iterations, self.stuck = max_iterations, stuck
        self.held = held  # the tensors a tensor sweep holds (`sweep_tensors`); None for numbers only
        self._values: np.ndarray | None = None

    def batch(self, cols64: list[torch.Tensor]) -> np.ndarray:
        if self.held is not None:
            return symbolic_held(self.lowered, self.held, cols64, self.wrt, self.max_iterations)
        return _symbolic_batch(self.lowered, cols64, self.wrt, self.max_iterations)

    def differs(self, dtype: str) -> bool:
        """Whether the float symbolic derivative can disagree with autograd where no flag of the
        run does: in float32 (it is computed in float64, with 29 more bits), or through
        detach/item/no_grad (the identity in the mathematics)."""
        if dtype != "float64":
            return True
        # (and a hand-written backward: the user's torch.autograd.Function)
        # (and a cast of a computed value, `.float()`: torch rounds, the mathematics does not)
        return (any(s.op in ("item", "detach", "no_grad", "cast", CUSTOM_OP) for s in steps_of(self.lowered.body))
                or _has_no_grad(self.lowered.body))

    @property
    def computed(self) -> bool:
        return self._values is not None

    def at(self, rows: np.ndarray) -> np.ndarray:
        if self._values is not None:
            return self._values[rows]
        take = torch.from_numpy(rows).to(self.cols64[0].device)
        return self.batch([c[take] for c in self.cols64])

    def values(self) -> np.ndarray:
        if self._values is None:
            with torch_state("float64"):
                sym = self.batch(self.cols64)
            sym[self.stuck] = math.nan
            self._values = sym
        return self._values


def _has_no_grad(stmts: Sequence[Stmt]) -> bool:
    return any(isinstance(s, NoGrad) for s in every_statement(stmts))


# Points compared exactly in each run of neighbouring flagged points with the same signature:
# its two ends, its worst point and an even spread; the points between take the cause of the
# nearest compared point of their run (`sweep_runs.Runs.infer`).
PER_RUN = 8


def _worst(exact: dict[int, Comparison], auto: np.ndarray, executed: np.ndarray, k: int = 10) -> tuple[Comparison, ...]:
    bad = [(i, c) for i, c in exact.items() if not c.ok]

    def key(item: tuple[int, Comparison]) -> tuple[int, float]:
        i, c = item
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            err = float(np.nan_to_num(np.max(np.abs(auto[i] - executed[i]) / np.maximum(np.abs(executed[i]), 1e-300)),
                                      nan=np.inf))
        return (c.cause.severity, -err)

    # One point per cause and cited line: the worst of each; neighbours on the same line and with
    # the same cause repeat the same explanation, so they are not listed again.
    out: dict[tuple[str, Any, Any], Comparison] = {}
    for _, c in sorted(bad, key=key):
        e = next(x for x in c.entries if not x.ok)
        out.setdefault((c.cause.id, e.line, e.node), c)
        if len(out) == k:
            break
    return tuple(out.values())


def _regions(points: np.ndarray, codes: np.ndarray, symbols: Sequence[sp.Basic],
             swept: Sequence[int] = ()) -> dict[str, tuple[Region, ...]]:
    out: dict[str, list[Region]] = {}
    quiet = (AGREE, SKIPPED)
    if points.shape[1] == 1 or len(swept) == 1:
        axis = swept[0] if swept else 0
        xs = points[:, axis]
        order = None if bool(np.all(xs[1:] >= xs[:-1])) else np.argsort(xs, kind="stable")
        if order is not None:
            xs, codes = xs[order], codes[order]
        # Runs of equal causes along the swept input (run-length encoding, no Python loop per point).
        starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
        ends = np.concatenate((starts[1:], [len(codes)])) - 1
        for a, b in zip(starts, ends):
            if codes[a] not in quiet:
                cid = IDS[codes[a]]
                out.setdefault(cid, []).append(Region(cid, int(b - a + 1), sp.sstr(symbols[axis]), float(xs[a]), float(xs[b])))
    else:
        axes = list(swept) or list(range(points.shape[1]))
        for code in sorted(set(np.unique(codes).tolist()) - set(quiet)):
            sel = np.unique(points[codes == code][:, axes], axis=0)  # each point once
            out[IDS[code]] = [Region(IDS[code], int(np.sum(codes == code)), ", ".join(sp.sstr(symbols[k]) for k in axes),
                                     points=tuple(map(tuple, sel.tolist())))]
    return {k: tuple(v) for k, v in out.items()}
