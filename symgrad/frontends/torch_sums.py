"""`sum` and `mean` read from torch code: of every element, or along dims given as torch takes
them (`A.sum(1)`, `A.sum(dim=(0, 1))`, `A.sum(axis=[0, 1])`, `A.mean(0, True)`), with keepdim
(numpy's `keepdims=` too: D2L's softmax, `X_exp.sum(1, keepdims=True)`).

The dims are checked as torch checks them (each in range for the tensor's rank, none twice);
dims that cover every dim of the tensor are the sum of every element. The result has torch's
shape: a sum along dim 1 of an (m, n) matrix is an (m, 1) column (with keepdim, or the rank-1
tensor that symgrad writes as a column), along dim 0 a (1, n) row with keepdim (an (n, 1)
column, rank 1, without); every element with keepdim a (1, 1) matrix (a (1,) tensor for a
vector). `m * ones(n, 1)` lowers to torch's own `m.sum(1, keepdim=True)`, so it rounds as the
user's code does. These builders are the `torch.sum`/`Tensor.sum`/`torch.mean`/`Tensor.mean`
rows of `torch_names`' table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from .torch_shapes import made, torch_dims
from .torch_values import RANK1, as_scalar, is_matrix, rank1, shape


def reduce_all(m: Any) -> Any:
    """The sum of every element of a matrix, as a scalar: (1 x m) @ M @ (n x 1), element [0, 0]."""
    rows, cols = shape(m)  # type: ignore[misc]
    total: Any = m
    # Unevaluated: SymPy's MatMul would multiply an explicit matrix out, element by element
    # (and a matrix product inside it, `(X*W)[i, j]`, into its scalar sums).
    left = [sp.OneMatrix(1, rows)] if rows > 1 or cols == 1 else []  # one element: torch's sum is still 0.0 + it
    right = [sp.OneMatrix(cols, 1)] if cols > 1 else []
    if left or right:
        total = sp.MatMul(*left, total, *right, evaluate=False)  # one product: a sum of a sum stays two
    return MatrixElement(total, 0, 0)


def _integer(v: Any) -> Any:
    if isinstance(v, sp.Integer):  # the source reader gives literals as SymPy numbers
        return int(v)
    return v


def _rank(x: Any, listed: list[Any]) -> int:
    """The rank torch holds x at. An (n, 1) column symgrad cannot tell from a rank-1 tensor is
    read as rank 1 where the dims are 0 or -1 (its only dim), as 2-D otherwise."""
    if not is_matrix(x):
        return 0
    rank = len(torch_dims(x))
    if rank == 2 and shape(x)[1] == 1 and rank1(x) is None and all(d in (0, -1) for d in listed):  # type: ignore[index]
        return 1
    return rank


def reduced_dims(name: str, a: Sequence[Any], k: dict[str, Any]) -> tuple[list[int] | None, bool, int]:
    """(the dims a `sum`/`mean` runs along, each in range(rank), or None for every element;
    keepdim; the rank of the tensor). Refusals are sentences: what, why, the fix."""
    unknown = sorted(set(k) - {"dim", "keepdim"})
    if unknown or len(a) > 3:
        extra = ", ".join(f"{u}=" for u in unknown) or "more than a dim and keepdim"
        raise UnsupportedNodeError(
            f"`{name}` with {extra} is not supported: symgrad reads the dims and keepdim of a {name}, in the "
            f"tensor's own dtype.\nFix: call `{name}()` over every element, or `{name}(dim, keepdim=...)`, and "
            "convert the tensor's dtype before the call if you need to.")
    dim = k.get("dim", a[1] if len(a) > 1 else None)
    keepdim = k.get("keepdim", a[2] if len(a) > 2 else False)
    if not isinstance(keepdim, (bool, sp.logic.boolalg.BooleanAtom)):
        raise UnsupportedNodeError(f"`{name}(keepdim={keepdim!r})`: keepdim is True or False (torch raises otherwise).\n"
                                   "Fix: pass keepdim=True or keepdim=False.")
    listed = [_integer(d) for d in dim] if isinstance(dim, (list, tuple, sp.Tuple)) else [] if dim is None else [_integer(dim)]
    x = a[0]
    rank = _rank(x, listed)
    bound = max(rank, 1)
    out: list[int] = []
    for d in listed:
        if not isinstance(d, int) or isinstance(d, bool):
            raise UnsupportedNodeError(
                f"`{name}(dim={dim!r})`: a dim is an integer, or a list or tuple of integers, known when the "
                f"function is read; {d!r} is not.\nFix: pass the dim as a number, e.g. `{name}(dim=1)` or "
                f"`{name}(dim=(0, 1))`.")
        if not -bound <= d < bound:
            raise UnsupportedNodeError(
                f"`{name}(dim={dim!r})`: dim {d} is out of range for a tensor of rank {rank} (torch raises "
                f"IndexError: its dims run from {-bound} to {bound - 1}).\nFix: pass a dim of the tensor, "
                f"e.g. `dim=-1` for its last, or leave dim out to {name} every element.")
        if d % bound in out:
            raise UnsupportedNodeError(
                f"`{name}(dim={dim!r})` names dim {d % bound} twice (torch raises: \"dim {d % bound} appears "
                f"multiple times in the list of dims\").\nFix: name each dim once, e.g. `dim=(0, 1)`.")
        out.append(d % bound)
    whole = not out or rank == 0 or len(out) == rank
    return (None if whole else out), bool(keepdim), rank


def _along(name: str, a: Sequence[Any], k: dict[str, Any]) -> tuple[Any, int] | None:
    """A matrix's sums along one dim and how many elements each adds up, or None for a sum of
    every element (after the checks of `reduced_dims`)."""
    dims, keepdim, rank = reduced_dims(name, a, k)
    if dims is None:
        return None
    m = a[0]
    rows, cols = shape(m)  # type: ignore[misc]
    if dims == [1]:
        sums, count = sp.MatMul(m, sp.OneMatrix(cols, 1), evaluate=False), cols
    else:
        sums, count = sp.MatMul(sp.OneMatrix(1, rows), m, evaluate=False), rows
        sums = sums if keepdim else sp.Transpose(sums)
    if not keepdim:  # torch's rank-1 result: beside a matrix it broadcasts as a row (`X / X.sum(1)`)
        RANK1.set(RANK1.get() | {sums})
    return sums, count


def _whole(name: str, a: Sequence[Any], k: dict[str, Any], total: Any) -> Any:
    """The reduction of every element: a scalar, or with keepdim the tensor of torch's shape
    (1, 1) of a matrix, (1,) of a vector, that holds it."""
    _, keepdim, rank = reduced_dims(name, a, k)
    return made([total], [1] * rank) if keepdim and rank > 0 else total


def _reduction(name: str, mean: bool) -> Any:
    """The builder of `x.sum(...)` (`mean`: of `x.mean(...)`, the sums divided by how many elements
    each adds up)."""

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        x = a[0]
        if not is_matrix(x):
            reduced_dims(name, a, k)
            return as_scalar(x)
        along = _along(name, a, k)
        if along is None:
            rows, cols = shape(x)  # type: ignore[misc]
            return _whole(name, a, k, reduce_all(x) / (rows * cols) if mean else reduce_all(x))
        if not mean:
            return along[0]
        value = along[0] / along[1]
        if along[0] in RANK1.get():  # a rank-1 result, as the sums are
            RANK1.set(RANK1.get() | {value})
        return value

    return build


sum_of = _reduction("sum", mean=False)  # `x.sum()`, `torch.sum(x, dim, keepdim)`
mean_of = _reduction("mean", mean=True)  # `x.mean()`, `torch.mean(x, dim, keepdim)`
