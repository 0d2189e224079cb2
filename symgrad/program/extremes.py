"""A matrix of more than a dozen values, as a person reads it: its shape and its extremes.

Every message and report that writes a value (an explanation's intermediate value, a row of the
executed path, a step of the backward pass, the fidelity check's gradient) writes a small matrix
in full, `[1, 2; 3, 4]`, and a larger one as `(16x3 matrix: min 2.5e-18 at [3, 1], max
1.4e+511 at [12, 1], 2 nan)`: the record it came from keeps every value (`to_dict()`, the
path's steps), and a page of text stays a page. The values may be the exact engine's numbers,
SymPy numbers, or floats (numpy arrays, torch tensors, tuples).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from . import exact as ex

# A matrix of more values than this is written by its shape and extremes.
MAX_VALUES = 12


def size(v: Any) -> int:
    """How many values `v` holds (1 for a number)."""
    if isinstance(v, sp.MatrixBase):
        return int(v.rows * v.cols)
    if isinstance(v, np.ndarray):
        return int(v.size)
    if isinstance(v, (list, tuple)):
        return len(v)
    numel = getattr(v, "numel", None)
    return int(numel()) if callable(numel) else 1


def is_large(v: Any) -> bool:
    """True for a matrix (or vector) of more than `MAX_VALUES` values."""
    return size(v) > MAX_VALUES


def _grid(v: Any) -> tuple[tuple[int, ...], list[Any]]:
    """The shape and the values, row-major."""
    if isinstance(v, sp.MatrixBase):
        return (v.rows, v.cols), list(v)
    if isinstance(v, (list, tuple)):
        return (len(v),), list(v)
    if not isinstance(v, np.ndarray):
        v = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
    flat = v.ravel()
    return tuple(v.shape), list(flat) if flat.dtype == object else flat.tolist()


def _kind(x: Any) -> tuple[str, Any]:
    """("nan" | "inf" | "-inf" | "value", the value as an exact number for ordering)."""
    if isinstance(x, (float, int, np.floating, np.integer)) and not isinstance(x, bool):
        f = float(x)
        if math.isnan(f):
            return "nan", None
        if math.isinf(f):
            return ("inf" if f > 0 else "-inf"), None
        return "value", ex.from_float(f)
    if isinstance(x, sp.Basic):
        if x is sp.nan:
            return "nan", None
        if x in (sp.oo, sp.zoo):
            return "inf", None
        if x == -sp.oo:
            return "-inf", None
        x = ex.from_sympy(x)
    if ex.is_nan(x):
        return "nan", None
    if not ex.is_finite(x):
        return ("inf" if ex.sign(x) >= 0 else "-inf"), None
    return "value", x


def _at(k: int, shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return f"[{k // shape[1]}, {k % shape[1]}]"
    return f"[{k}]"


def extremes(v: Any, write: Callable[[Any], str]) -> str:
    """`v` (more than a dozen values) by its shape, its smallest and largest values with where
    they are, and how many values are NaN or infinite: `16x3 matrix: min -4.0 at [2, 1], max 7.5
    at [0, 0], 1 nan`. `write` writes one value."""
    shape, values = _grid(v)
    what = f"{shape[0]}x{shape[1]} matrix" if len(shape) == 2 else f"{shape[0]} values"
    counts = {"nan": 0, "inf": 0, "-inf": 0}
    low = high = None  # (index, exact value)
    for k, x in enumerate(values):
        kind, exact = _kind(x)
        if kind != "value":
            counts[kind] += 1
            continue
        if low is None or ex.cmp(exact, low[1]) < 0:
            low = (k, exact)
        if high is None or ex.cmp(exact, high[1]) > 0:
            high = (k, exact)
    parts = []
    if low is not None and high is not None:
        if low[0] == high[0] or ex.cmp(low[1], high[1]) == 0:
            parts.append(f"every {'finite value' if any(counts.values()) else 'value'} {write(values[low[0]])}")
        else:
            parts.append(f"min {write(values[low[0]])} at {_at(low[0], shape)}, "
                         f"max {write(values[high[0]])} at {_at(high[0], shape)}")
    parts += [f"{n} {kind}" for kind, n in counts.items() if n]
    return f"({what}: {', '.join(parts)})"
