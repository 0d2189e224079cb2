"""A sweep over the scalars of a function that computes with tensors (issue 20).

`sweep(f, over={x: (-3, 3)}, fixed={W: W_value})`: the scalar inputs run over their ranges, the
tensor inputs are held at the values `fixed` gives (a translation's data and constant tensors
are held as they were read). The batch run is the tensor runner's (`sides.batch_tensors`: the
sweep's points a leading batch dimension through `torch.func.vmap`, or point by point where vmap
cannot run the program, said in the sweep's notes); the verdicts per point are the scalar
sweep's, and each flagged point is compared exactly with the tensors at their fixed values.
This module holds what the tensor sweep adds to `sweep`: reading `fixed`, the derivatives a
tensor sweep takes (`wrt`), and its float symbolic derivative.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import sympy as sp
import torch

from ..base.errors import LoopLimitError, OptionError, PointError, UnsupportedNodeError
from ..program.program import DataMatrix, Vector, dag_atoms
from ..sides.batch_tensors import TensorRun, run_tensor_batch
from ..sides.ir import LoweredProgram
from ..sides.lowering import data_wrt
from ..verdict.compare import compare
from ..verdict.point import read_point
from ..verdict.records import Comparison

# Points without a flag that a tensor sweep compares exactly all the same, evenly spread: a sum
# over a tensor can cancel in the backward pass alone (`(x * W).sum()` with W = [1, 1e16, -1e16]
# loses sum(W) at every x, x = 0 included, where the forward has nothing to cancel), which no
# flag of the forward run sees.
EXACT_SAMPLE: Final = 8


@dataclass(frozen=True)
class Held:
    """The tensor inputs a sweep holds fixed, and its scalar inputs (the columns of its points)."""

    scalars: tuple[sp.Symbol, ...]  # the scalar inputs, in the program's order
    tensors: dict[str, np.ndarray]  # matrix input name -> its value (float64 array of the dtype's numbers)
    symbols: dict[str, sp.MatrixSymbol]  # matrix input name -> its symbol
    numbers: dict[str, Any]  # scalar inputs `fixed` gives one number (held as `over` holds one)

    def at(self, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """The fixed tensors by input name, in `dtype` on `device` (unbatched inputs of the run)."""
        return {k: torch.tensor(v, dtype=dtype, device=device) for k, v in self.tensors.items()}

    def point(self) -> dict[Any, Any]:
        """The fixed tensors as a point of compare() (by symbol)."""
        return {self.symbols[k]: v for k, v in self.tensors.items()}

    def sentence(self) -> str:
        """Which tensors the sweep held, by name and torch's shape (`y (100,)` for a rank-1 tensor,
        which symgrad holds as a (100, 1) column; `X (3, 2)`): the ones `fixed` gave, and the data
        the function reads (a global, a batch reshaped), held at the values the code reads."""
        given = [f"{k} {torch_shape(self.symbols[k], v)}" for k, v in self.tensors.items()
                 if not isinstance(self.symbols[k], DataMatrix)]
        data = [f"{k} {torch_shape(self.symbols[k], v)}" for k, v in self.tensors.items()
                if isinstance(self.symbols[k], DataMatrix)]
        said = []
        if given:
            said.append(("The tensor inputs " if len(given) > 1 else "The tensor input ") + ", ".join(given) + (
                " were" if len(given) > 1 else " was") + " held fixed at the given value at every point.")
        if data:
            said.append(("The data " + ", ".join(data) + (" were" if len(data) > 1 else " was")) +
                        " held fixed at the value your code reads at every point.")
        return " ".join(said)


def torch_shape(symbol: sp.MatrixSymbol, value: np.ndarray) -> tuple[int, ...]:
    """The shape torch holds a tensor input at: (n,) for a rank-1 input (a `Vector`) or rank-1
    data (a `DataMatrix` of a rank-1 array), which symgrad holds as an (n, 1) column; the
    array's own shape otherwise."""
    rows = int(value.shape[0]) if value.ndim else 1
    if isinstance(symbol, Vector) or (isinstance(symbol, DataMatrix) and re.search(rf"\({rows},\)", symbol.about)):
        return (rows,)
    return tuple(int(d) for d in value.shape)


def computes_with_tensors(lowered: LoweredProgram) -> bool:
    """A function with a tensor value: a matrix input, or a constant tensor (data, a global)."""
    if any(isinstance(s, sp.MatrixSymbol) for s in lowered.symbols):
        return True
    norm = lowered.normalized
    return any(dag_atoms(node, (sp.MatrixExpr, sp.MatrixBase)) for node in (*norm.statements, norm.output))


def hold(lowered: LoweredProgram, fixed: Mapping[Any, Any] | None, dtype: str) -> Held:
    """Read `fixed`: each matrix input needs a value of its shape; a scalar input may be fixed
    to one number (as in `over`); a name the function does not use is a sentence."""
    given = {(k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else str(k)): v for k, v in (fixed or {}).items()}
    names = [s.name for s in lowered.symbols]
    extra = sorted(set(given) - set(names))
    if extra:
        raise PointError(f"`fixed` names {', '.join(extra)}, which the function does not use (inputs: "
                         f"{', '.join(names)}).\nFix: hold the function's own inputs fixed.")
    matrices = {s.name: s for s in lowered.symbols if isinstance(s, sp.MatrixSymbol)}
    missing = [m for m in matrices if m not in given]
    if missing:
        shape = "x".join(map(str, matrices[missing[0]].shape))
        raise PointError(
            f"The tensor input{'s' if len(missing) > 1 else ''} {', '.join(missing)} of this function "
            f"{'have' if len(missing) > 1 else 'has'} no value: a sweep runs over scalar inputs and holds each "
            f"tensor at one value.\nFix: give it in `fixed`, e.g. `fixed={{\"{missing[0]}\": torch.randn({shape.replace('x', ', ')})}}`.")
    scalars = tuple(s for s in lowered.symbols if s.name not in matrices)
    numbers = {k: v for k, v in given.items() if k not in matrices}
    # The tensors as the tensor of `dtype` holds them, refused with compare()'s own sentences
    # (shape, NaN, not a number); the scalars only stand in for the check.
    values = read_point(lowered, {**{s.name: 0.0 for s in scalars}, **given}, dtype)
    tensors = {s.name: v for s, v in zip(lowered.symbols, values) if s.name in matrices}
    return Held(scalars, tensors, matrices, numbers)


def check_over(lowered: LoweredProgram, over: Any) -> None:
    """A tensor input named in `over` (which runs scalars over ranges) is a sentence: tensors are
    held, in `fixed`."""
    if not isinstance(over, Mapping):
        return
    matrices = {s.name for s in lowered.symbols if isinstance(s, sp.MatrixSymbol)}
    named = [k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else str(k) for k in over]
    tensors = [k for k in named if k in matrices]
    if tensors:
        raise PointError(
            f"`over` gives {', '.join(tensors)}, a tensor input of this function: a sweep runs its scalar inputs over "
            "ranges and holds each tensor at one value.\n"
            f"Fix: give it in `fixed` instead, e.g. `fixed={{\"{tensors[0]}\": {tensors[0]}}}`; to see the derivatives "
            f"with respect to its elements, compare() single points.")


def tensor_wrt(held: Held, wrt: Iterable[Any] | None) -> list[int]:
    """The positions among the scalar inputs of the derivatives a tensor sweep takes (all the
    scalar inputs for None); a tensor input in `wrt` is a sentence."""
    names = [s.name for s in held.scalars]
    if wrt is None:
        return list(range(len(names)))
    asked = [wrt] if isinstance(wrt, (sp.Basic, str)) else list(wrt)
    out = []
    for w in asked:
        name = w.name if isinstance(w, (sp.Symbol, sp.MatrixSymbol)) else str(w)
        if name in held.tensors and isinstance(held.symbols[name], DataMatrix):
            raise OptionError(data_wrt(held.symbols[name], [s.name for s in held.scalars]))
        if name in held.tensors:
            raise OptionError(
                f"wrt names {name}, a tensor input this sweep holds fixed; a sweep reports the derivatives with respect "
                f"to the scalar inputs it runs over ({', '.join(names) or 'none'}), one number per point.\n"
                f"Fix: leave {name} out of wrt, or compare() single points for the derivatives with respect to its "
                f"elements: `symgrad.compare(f, at={{..., \"{name}\": {name}}})`.")
        if name not in names:
            raise OptionError(f"wrt names {name}, which is not an input of the function (inputs: "
                              f"{', '.join(names + list(held.tensors))}).\nFix: pass input symbols, e.g. `wrt=[x]`.")
        out.append(names.index(name))
    return out


def run_held(lowered: LoweredProgram, held: Held, cols: Sequence[torch.Tensor], **options: Any) -> TensorRun:
    """The tensor runner on the sweep's columns (one per scalar input) with the tensors held."""
    columns = {lowered.inputs[lowered.symbols.index(s)]: c for s, c in zip(held.scalars, cols)}
    fixed = {lowered.inputs[lowered.symbols.index(held.symbols[k])]: v
             for k, v in held.at(cols[0].dtype, cols[0].device).items()}
    return run_tensor_batch(lowered, columns, fixed, **options)


def symbolic_held(lowered: LoweredProgram, held: Held, cols64: Sequence[torch.Tensor], wrt: Sequence[int],
                  max_iterations: int) -> np.ndarray:
    """float64 values of the mathematics' derivative on the batch: the program with
    detach/item/no_grad as the identity, run by the tensor runner in float64."""
    found = run_held(lowered, held, cols64, math_mode=True, checks=False, max_iterations=max_iterations)
    out = np.empty((cols64[0].shape[0], len(wrt)))
    for j, k in enumerate(wrt):
        out[:, j] = found.grads[k].cpu().numpy()
    out[found.stuck.cpu().numpy()] = math.nan
    return out


def probe(f: Any, points: np.ndarray, held: Held, clean: np.ndarray, wrt: Sequence[sp.Basic],
          **options: Any) -> dict[int, Comparison]:
    """compare() at EXACT_SAMPLE of the points where `clean` holds (evenly spread), with the
    tensors held: the exact check a tensor sweep makes where its flags say nothing."""
    rows = np.flatnonzero(clean)
    if len(rows) > EXACT_SAMPLE:
        rows = rows[np.unique(np.linspace(0, len(rows) - 1, EXACT_SAMPLE).round().astype(np.int64))]
    found: dict[int, Comparison] = {}
    for i in rows.tolist():
        at = {**held.point(), **{s: float(points[i, k]) for k, s in enumerate(held.scalars)}}
        try:
            found[i] = compare(f, at, wrt=list(wrt), **options)
        except (LoopLimitError, UnsupportedNodeError):  # a loop past its limit, a corner not decided: no sample
            continue
    return found


def probe_note(parted: dict[int, Comparison], checked: int, symbols: Sequence[sp.Basic]) -> str:
    """The sentence a sweep says where its exact sample found what the flags did not."""
    c = next(iter(parted.values()))
    at = ", ".join(f"{k} = {float(v):.6g}" for k, v in c.point.items() if k in symbols)
    return (f"{len(parted)} of {checked} points without a flag, compared exactly as a check, do not agree "
            f"({c.cause.id} at {at}): a loss of digits the batch run's flags do not see (a sum over a tensor that "
            "cancels in the backward pass), so every point was taken as flagged: a spread of each run of points "
            "was compared exactly, and the others take the cause of their nearest compared point")
