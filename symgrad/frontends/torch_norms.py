"""`torch.nn.functional.normalize` read as torch computes it (issue 22, item 2): the spelling,
appended to the table's `_SPELLINGS` by `torch_names` (as `torch_shapes.SHAPE_SPELLINGS` is).

    F.normalize(x, p=2, dim=1, eps=1e-12)    # each row (dim 1) or column (dim 0) of an (n, C) x
    F.normalize(v, dim=0)                    # a vector divided by its norm

torch computes x / x.norm(2, dim, keepdim=True).clamp_min(eps); symgrad reads it as one fused
node per element (`program/normalization.normalize`), the whole matrix lowered to torch's own
call, whose bits no composition of the table's rows is sure to give (the norm along a dim, the
clamp and the broadcast division, each with its own backward). p other than 2, a dim the tensor
does not have and a tensor of rank 0 are sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from ..program.distances import cdist
from ..program.normalization import normalize
from .torch_values import RANK1, Spelling, is_matrix, rank1, shape

_NN: Final = "torch.nn.functional."


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, sp.Number)):
        return None
    return float(v)


def _normalize(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x = a[0] if a else k.get("input")
    p = _number(k.get("p", a[1] if len(a) > 1 else 2.0))
    dim = k.get("dim", a[2] if len(a) > 2 else 1)
    eps = _number(k.get("eps", a[3] if len(a) > 3 else 1e-12))
    if set(k) - {"input", "p", "dim", "eps"}:
        raise UnsupportedNodeError(f"`F.normalize` with `{sorted(set(k) - {'input', 'p', 'dim', 'eps'})[0]}=` is not read.\n"
                                   "Fix: call it as F.normalize(x, p=2, dim=d, eps=e).")
    if p != 2.0:
        raise UnsupportedNodeError(
            f"`F.normalize(x, p={p})`: symgrad reads the Euclidean norm, p=2, only.\n"
            "Fix: use p=2, or write it out: `x / x.abs().pow(p).sum(dim, keepdim=True).pow(1 / p).clamp_min(eps)`.")
    if eps is None or eps < 0:
        raise UnsupportedNodeError("`F.normalize(..., eps=...)`: symgrad reads eps as a number >= 0.\n"
                                   "Fix: pass eps as a Python float.")
    if not is_matrix(x):
        raise UnsupportedNodeError(
            "`F.normalize` is read of a vector (dim=0) or an (n, C) matrix, each row (dim=1) or column (dim=0) "
            "divided by its norm.\nFix: pass a tensor of rank 1 or 2.")
    if isinstance(dim, sp.Integer):
        dim = int(dim)
    vector = rank1(x) is True  # an (n, 1) column held as rank 1: its one dim, 0 (or -1)
    if isinstance(dim, bool) or not isinstance(dim, int) or not (-1 <= dim <= 0 if vector else -2 <= dim <= 1):
        raise UnsupportedNodeError(
            f"`F.normalize(..., dim={dim!r})`: " + ("a vector has the dim 0 (-1)" if vector else
                                                    "an (n, C) matrix has the dims 0 and 1 (-2 and -1)")
            + ".\nFix: pass dim=1 (each row) or dim=0 (each column; a vector's own).")
    rows, cols = shape(x)  # type: ignore[misc]
    xs = [MatrixElement(x, i, j) for i in range(rows) for j in range(cols)]
    head = (rows, cols, 0 if vector else dim % 2, sp.Float(eps))
    out = sp.ImmutableMatrix(rows, cols, [normalize(i, j, *head, *xs) for i in range(rows) for j in range(cols)])
    if vector:
        RANK1.set(RANK1.get() | {out})
    return out


def _cdist(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x1, x2 = (a[0] if a else k.get("x1")), (a[1] if len(a) > 1 else k.get("x2"))
    p = _number(k.get("p", a[2] if len(a) > 2 else 2.0))
    if set(k) - {"x1", "x2", "p"} or len(a) > 3:
        raise UnsupportedNodeError("`torch.cdist` is read as torch.cdist(x1, x2, p=2) with torch's default compute_mode.\n"
                                   "Fix: leave compute_mode out.")
    if p != 2.0:
        raise UnsupportedNodeError(f"`torch.cdist(x1, x2, p={p})`: symgrad reads the Euclidean distance, p=2, only.\n"
                                   "Fix: use p=2, or write the distances out with torch ops.")
    if not all(is_matrix(m) and rank1(m) is not True for m in (x1, x2)) or shape(x1)[1] != shape(x2)[1]:  # type: ignore[index]
        raise UnsupportedNodeError(
            "`torch.cdist` is read of two matrices (r1, D) and (r2, D) with the same number of columns D (one point a "
            "row; torch raises for other column counts; a batch of rank 3 symgrad does not read).\n"
            "Fix: pass two matrices of points, e.g. `torch.cdist(A, B)` with A (r1, D) and B (r2, D).")
    (r1, d), (r2, _) = shape(x1), shape(x2)  # type: ignore[misc]
    els = [MatrixElement(x1, i, k) for i in range(r1) for k in range(d)] + \
        [MatrixElement(x2, j, k) for j in range(r2) for k in range(d)]
    return sp.ImmutableMatrix(r1, r2, [cdist(i, j, r1, r2, d, *els) for i in range(r1) for j in range(r2)])


NORM_SPELLINGS: Final = [
    Spelling(f"{_NN}normalize", "function", normalize, _normalize,
             "p=2 of an (n, C) matrix along dim 1 or 0, or of a vector: torch's own call, x / x.norm(2, dim, keepdim=True)."
             "clamp_min(eps) (a norm exactly at eps is a kink)"),
    Spelling("torch.cdist", "function", cdist, _cdist,
             "p=2 of two (r, D) matrices: torch's own call, whose backward is _cdist_backward (a distance 0 "
             "between different rows, the cone's tip, is a kink)"),
]
