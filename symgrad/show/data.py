"""Results as data: `Comparison`, `Entry` and `Sweep` as JSON-safe dictionaries.

Rendering only, like `report.py`: nothing here computes a derivative or decides a cause.

The conventions, the same in every dictionary:

- An exact number (`grad_symbolic`, `grad_executed`, a point's value, ...) is
  `{"exact": "1/2", "float": 0.5}`: the exact value in SymPy notation and its nearest float64.
  A value too long to print exactly (more than `MAX_EXACT_CHARS` characters) keeps 40
  significant digits in `"exact"` and says so with `"rounded": true`.
- A float that is not finite (NaN, an infinity) is the string `"nan"`, `"inf"` or `"-inf"`:
  JSON has no such numbers, and `json.dumps(..., allow_nan=False)` accepts every dictionary.
- `None` means no value: no derivative exists (`grad_symbolic` at a kink), or torch raised
  (`grad_autograd`, with `autograd_error` holding torch's message).
- Matrices are nested lists, row by row.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import sympy as sp

from ..program.program import DataMatrix, decimal, float_of, number, sstr
from ..base.errors import OptionError
from ..base.rendering import renders
from .report_source import source_with_data
from ..tools.sweep import Region, Sweep
from ..verdict.records import Comparison, Entry

MAX_EXACT_CHARS: Final = 4000


def real(v: Any) -> Any:
    """A float as JSON holds it: finite floats as they are, NaN and infinities as strings."""
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def exact(v: Any) -> Any:
    """An exact SymPy number (or matrix) as `{"exact": str, "float": float}`; None stays None."""
    if v is None:
        return None
    if isinstance(v, sp.MatrixBase):
        return [[exact(x) for x in row] for row in v.tolist()]
    if isinstance(v, (float, int)) and not isinstance(v, bool):
        v = sp.Rational(v) if isinstance(v, int) or math.isfinite(v) else sp.Float(v)
    v = sp.sympify(v)
    out: dict[str, Any] = {"exact": None, "float": real(float_of(v))}
    rounded = isinstance(v, sp.Rational) and int(v.p).bit_length() + int(v.q).bit_length() > 3 * MAX_EXACT_CHARS
    if not rounded:
        text = sstr(v)
        rounded = len(text) > MAX_EXACT_CHARS
    if rounded:
        # 40 significant digits and nothing beside them: `exact` holds one number, not a report's spelling.
        out["exact"] = decimal(int(v.p), int(v.q), 40) if isinstance(v, sp.Rational) else number(v, 40)
        out["rounded"] = True
    else:
        out["exact"] = text
    return out


def _floats(v: Any) -> Any:
    """torch's values: a float, or an array as nested lists."""
    if v is None:
        return None
    if hasattr(v, "tolist") and not isinstance(v, (float, int)):
        return _nested(v.tolist())
    return real(v)


def _nested(v: Any) -> Any:
    return [_nested(x) for x in v] if isinstance(v, list) else real(v)


def _span(s: Any) -> Any:
    if s is None:
        return None
    return {"file": s.file, "line": s.line, "col": s.col, "end_col": s.end_col, "text": s.text}


@renders("entry.dict")
def entry_dict(e: Entry) -> dict[str, Any]:
    return {
        "output": list(e.output) if isinstance(e.output, tuple) else e.output,
        "wrt": sstr(e.wrt),
        "grad_symbolic": exact(e.grad_symbolic),
        "one_sided": None if e.one_sided is None else [exact(e.one_sided[0]), exact(e.one_sided[1])],
        "grad_executed": exact(e.grad_executed),
        "grad_autograd": real(e.grad_autograd),
        "cause": e.cause.id,
        "also": [c.id for c in e.also],
        "ok": e.ok,
        "node": e.node,
        "line": e.line,
        "explanation": e.explanation,
        "hint": e.hint,
        "autograd_error": e.autograd_error,
        "source": _span(e.source),
    }


def data_leaf(s: DataMatrix) -> dict[str, Any]:
    """Data of the user's call read as an input (`X_flat`, an image batch reshaped): its shape and
    what it is, never its values (they are the user's own tensor's; `c.point` holds them)."""
    return {"data": True, "shape": [int(s.rows), int(s.cols)], "about": s.about}


@renders("comparison.dict")
def comparison_dict(c: Comparison) -> dict[str, Any]:
    return {
        "source": source_with_data(c),  # a data leaf: the matrices read named once, the data said once
        "point": {sstr(s): data_leaf(s) if isinstance(s, DataMatrix) else exact(c.point[s]) for s in c.point},
        "dtype": c.dtype,
        "branches": c.branches,
        "rtol": c.rtol,
        "order": c.order,
        "vjp": c.vjp,
        "cause": c.cause.id,
        "ok": c.ok,
        "value_exact": exact(c.value_exact),
        "value_autograd": _floats(c.value_autograd),
        "entries": [entry_dict(e) for e in c.rows],  # each entry built to be written, none kept
        "program": c.lowered.source,
    }


def _column(a: np.ndarray) -> list[Any]:
    if np.all(np.isfinite(a)):
        return a.astype(float).tolist()
    return [real(v) for v in a.tolist()]


@renders("sweep.dict")
def sweep_dict(s: Sweep, points: bool = True) -> dict[str, Any]:
    names = [sstr(v) for v in s.symbols]
    wrt = [sstr(v) for v in s.wrt]
    out: dict[str, Any] = {
        "source": s.source,
        "inputs": names,
        "wrt": wrt,
        "dtype": s.dtype,
        "branches": s.branches,
        "n_points": len(s.points),
        "grid": list(s.grid),
        "swept": [names[k] for k in s.swept],
        "fixed": {names[k]: real(s.points[0, k]) for k in range(len(names)) if k not in s.swept} if s.grid else {},
        "counts": dict(s.counts),
        "regions": [r.to_dict() for rs in s.regions.values() for r in rs],
        "worst": [{"point": {sstr(k): real(float(v)) for k, v in c.point.items() if k in s.symbols}, "cause": c.cause.id,
                   "explanation": next((e.explanation for e in c.entries if not e.ok), ""),
                   "comparison": comparison_dict(c)} for c in s.worst],
        "exact_points": s.exact_points,
        "inferred_points": s.inferred_points,
        "skipped_points": s.skipped_points,
        "seconds": s.seconds,
        "timings": dict(s.timings),
    }
    if s.notes:  # a tensor sweep: what it held, how it ran
        out["notes"] = list(s.notes)
    if points:
        out["points"] = {
            **{name: _column(s.points[:, k]) for k, name in enumerate(names)},
            "f": _column(s.value),
            **{f"symbolic d/d{w}": _column(s.grad_symbolic[:, j]) for j, w in enumerate(wrt)},
            **{f"executed d/d{w}": _column(s.grad_executed[:, j]) for j, w in enumerate(wrt)},
            **{f"autograd d/d{w}": _column(s.grad_autograd[:, j]) for j, w in enumerate(wrt)},
            "cause": s.causes.tolist(),
        }
    return out


PANDAS: Final = ("Sweep.to_frame() needs pandas, which is not installed here.\n"
                 "The frame holds one row per point: the inputs, f, the three derivatives and the cause.\n"
                 "Fix: `pip install pandas`, or use `Sweep.to_dict()[\"points\"]` (plain lists, the same columns).")


@renders("sweep.frame")
def sweep_frame(s: Sweep) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise OptionError(PANDAS) from None
    names = [sstr(v) for v in s.symbols]
    wrt = [sstr(v) for v in s.wrt]
    cols: dict[str, Any] = {name: s.points[:, k] for k, name in enumerate(names)}
    cols["f"] = s.value
    for j, w in enumerate(wrt):
        cols[f"symbolic d/d{w}"] = s.grad_symbolic[:, j]
        cols[f"executed d/d{w}"] = s.grad_executed[:, j]
        cols[f"autograd d/d{w}"] = s.grad_autograd[:, j]
    cols["cause"] = s.causes
    return pd.DataFrame(cols)


@renders("region.dict")
def region_dict(r: Region) -> dict[str, Any]:
    """A sweep's region as JSON-safe data: the cause, how many points, and the interval (1-D) or
    the points (2-D)."""
    out: dict[str, Any] = {"cause": r.cause, "count": r.count, "symbol": r.symbol}
    if r.low is not None:
        out["low"], out["high"] = real(r.low), real(r.high)
    else:
        out["points"] = [[real(v) for v in p] for p in r.points]
    return out
