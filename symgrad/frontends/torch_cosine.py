"""`F.cosine_similarity(x1, x2, dim=1, eps=1e-8)` read as torch 2.13 computes it (issue 20, D2L's
attention chapter): the spelling, appended to the table's `_SPELLINGS` by `torch_names`.

Of two vectors (dim 0: one number) or two (m, n) matrices along dim 1 (one per row) or dim 0 (one
per column), each result a fused `cos_sim` node (`program/cosine`) lowered to torch's own call: each
norm clamped at eps in place under no_grad, so torch's gradient below eps is not the mathematics'
(the verdict says so). Operands of different shapes (torch broadcasts them), rank 3, and a dim the
tensors do not have are sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from ..program.cosine import cos_sim
from .torch_shapes import made, torch_dims
from .torch_values import Spelling, is_matrix, shape

_NAME: Final = "F.cosine_similarity"


def _cosine_similarity(a: Sequence[Any], k: dict[str, Any]) -> Any:
    known = ("x1", "x2", "dim", "eps")
    if len(a) > 4 or set(k) - set(known):
        raise UnsupportedNodeError(f"`{_NAME}` takes x1, x2, dim and eps.\nFix: call it as "
                                   "`F.cosine_similarity(x1, x2, dim=1, eps=1e-8)`.")
    given = {"dim": 1, "eps": 1e-8, **dict(zip(known, a)), **k}
    x1, x2, dim, eps = given.get("x1"), given.get("x2"), given["dim"], given["eps"]
    dims = [list(torch_dims(x)) if is_matrix(x) else [] for x in (x1, x2)]
    if not dims[0] or dims[0] != dims[1]:
        raise UnsupportedNodeError(
            f"`{_NAME}` is read of two vectors or two matrices of one shape; here the shapes are {tuple(dims[0])} and "
            f"{tuple(dims[1])} (torch broadcasts them; symgrad does not here).\nFix: give both the same shape, e.g. "
            "`x2.expand_as(x1)` written out as a tensor of x1's shape.")
    rank = len(dims[0])
    if isinstance(dim, sp.Integer):
        dim = int(dim)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -rank <= dim < rank:
        raise UnsupportedNodeError(f"`{_NAME}(..., dim={dim!r})`: a tensor of rank {rank} has the dims "
                                   f"{list(range(-rank, rank))} (torch raises IndexError).\nFix: pass dim=1 (each "
                                   "row) or dim=0 (each column, a vector's own).")
    if isinstance(eps, bool) or not isinstance(eps, (int, float, sp.Number)) or not float(eps) > 0:
        raise UnsupportedNodeError(f"`{_NAME}(..., eps=...)`: symgrad reads eps as a constant number > 0.\n"
                                   "Fix: pass eps as a positive Python float, e.g. 1e-8.")
    m, n = shape(x1)  # type: ignore[misc]
    d = 0 if rank == 1 else dim % 2
    xs = [x[i, j] if isinstance(x, sp.MatrixBase) else MatrixElement(x, i, j)
          for x in (x1, x2) for i in range(m) for j in range(n)]
    head = (m, n, d)
    cells = [cos_sim(*head, j, sp.Float(float(eps)), *xs) for j in range(m if d == 1 else n)]
    return cells[0] if rank == 1 else made(cells, [len(cells)])


COSINE_SPELLINGS: Final = [
    Spelling("torch.nn.functional.cosine_similarity", "function", cos_sim, _cosine_similarity,
             "of two vectors, or two (m, n) matrices along dim 1 or 0: torch's own call, each norm clamped at eps in "
             "place under no_grad (below eps torch's gradient is not the mathematics': a finding)"),
    Spelling("torch.cosine_similarity", "function", cos_sim, _cosine_similarity, "as F.cosine_similarity"),
]
