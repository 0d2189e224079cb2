"""`torch.nn.functional.layer_norm` (and `nn.LayerNorm`, which `modules` reads as it) read as torch
computes it (issue 20): the spelling, appended to the table's `_SPELLINGS` by `torch_names`.

    F.layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-05)

over the last dim of a vector (C,) or an (n, C) matrix (normalized_shape = (C,)): the matrix of fused
`layer_norm` nodes (`program/layer_norm`), each element (x - mean)/sqrt(var + eps)*w + b of its row,
with the row's biased variance, lowered to torch's own call. weight and bias (rank 1, length C) are
each optional. A normalized_shape over more than the last dim, a tensor of rank 3, eps <= 0 and
another shape of weight or bias are sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from ..program.layer_norm import layer_norm
from .torch_shapes import made, torch_dims
from .torch_values import Spelling, is_matrix, rank1, shape

_ORDER: Final = ("input", "normalized_shape", "weight", "bias", "eps")


def _elements(v: Any, c: int, what: str) -> list[Any]:
    """The C elements of a rank-1 tensor of length C (weight, bias)."""
    if not is_matrix(v) or shape(v) != (c, 1) or rank1(v) is False:
        given = tuple(torch_dims(v)) if is_matrix(v) else "a number"
        raise UnsupportedNodeError(
            f"`F.layer_norm`'s {what} must be a tensor of shape ({c},), the normalized_shape; here it is {given} "
            f"(torch raises for another shape).\nFix: pass a tensor of shape ({c},), e.g. `nn.LayerNorm({c})`'s.")
    return [v[k, 0] if isinstance(v, sp.MatrixBase) else MatrixElement(v, k, 0) for k in range(c)]


def _sizes(v: Any) -> list[int] | None:
    listed = list(v) if isinstance(v, (list, tuple, sp.Tuple)) else [v]
    try:
        return [int(d) for d in listed] if all(float(d) == int(d) for d in listed) else None
    except (TypeError, ValueError):
        return None


def functional_layer_norm(a: Sequence[Any], k: dict[str, Any]) -> Any:
    extra = set(k) - set(_ORDER)
    if len(a) > len(_ORDER) or extra:
        raise UnsupportedNodeError(f"`F.layer_norm` takes {', '.join(_ORDER)}; this call passes "
                                   f"{', '.join(sorted(extra)) or 'more arguments'}.\nFix: call it as torch documents it.")
    given = {"weight": None, "bias": None, "eps": 1e-05, **dict(zip(_ORDER, a)), **k}
    x = given.get("input")
    dims = list(torch_dims(x)) if is_matrix(x) else []
    sizes = _sizes(given.get("normalized_shape"))
    if not dims or sizes is None or sizes != dims[-len(sizes):] or len(sizes) != 1:
        raise UnsupportedNodeError(
            f"`F.layer_norm` is read over the last dim of a vector or an (n, C) matrix, normalized_shape = (C,); here "
            f"the input has shape {tuple(dims)} and normalized_shape is {given.get('normalized_shape')!r}"
            f"{' (torch raises: it must be the input’s last dims)' if sizes is None or sizes != dims[-len(sizes):] else ''}"
            ".\nFix: normalise over the last dim, `F.layer_norm(x, (x.shape[-1],))`; for the whole of a matrix, "
            "reshape it to a vector first.")
    eps = given["eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float, sp.Number)) or not float(eps) > 0:
        raise UnsupportedNodeError(
            f"`F.layer_norm(..., eps={float(eps) if isinstance(eps, (int, float, sp.Number)) else eps!r})`: symgrad reads eps as a constant number > 0 (with eps = 0 a row of equal "
            "values divides by 0).\nFix: pass eps as a positive Python float, e.g. 1e-5.")
    c = dims[-1]
    w, b = given["weight"], given["bias"]
    wb = [*([] if w is None else _elements(w, c, "weight")), *([] if b is None else _elements(b, c, "bias"))]
    rows, cols = shape(x)  # type: ignore[misc]
    vector = int(len(dims) == 1)
    xs = [x[i, j] if isinstance(x, sp.MatrixBase) else MatrixElement(x, i, j) for i in range(rows) for j in range(cols)]
    head = (rows, cols, sp.Float(float(eps)), int(w is not None), int(b is not None), vector)
    cells = [layer_norm(i, j, *head, *xs, *wb) for i in range(rows) for j in range(cols)]
    return made(cells, dims)


LAYER_NORM_SPELLINGS: Final = [
    Spelling("torch.nn.functional.layer_norm", "function", layer_norm, functional_layer_norm,
             "over the last dim of a vector or an (n, C) matrix (normalized_shape = (C,)): torch's own call, with each "
             "row's biased variance, eps inside the sqrt; weight and bias each optional (nn.LayerNorm reads as it)"),
]
