"""Shapes, integer data and indexing, as the source reader reads them (issue 20, item 3).

- `x.shape`, `x.shape[0]`, `x.size(0)`, `len(x)`, `x.numel()`, `x.dim()` are Python ints, as in
  torch: a rank-1 tensor (written as an (n, 1) column) has shape `(n,)`.
- Integer and boolean tensors are `Data`: labels, counts and masks, never made floats and never
  differentiated; the reader uses them as indices (`y_hat[range(n), y]`) and reads their shape.
- Indexing a differentiated tensor picks its elements: `x[i]`, `X[i, j]`, `X[i]` (a row),
  `X[:, j]`, slices with constant bounds, and a gather by two index lists of one length
  (`X[range(n), y]`, `X[torch.arange(n), y]`). The result is one `MatrixElement` or an explicit
  column of them (a rank-1 result, as torch gives), so each element keeps its own derivative:
  torch's indexing copies elements exactly, and its backward puts each gradient back where the
  element came from.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from . import torch_names as tn
from .source_state import Data, Refuse

# An explicit matrix of more elements than this is not built from an index (each element is a
# node of the translation): a sentence instead.
MAX_INDEXED = 4096


def torch_shape(v: Any) -> tuple[int, ...]:
    """The shape torch gives a value: () for a number, (n,) for a rank-1 tensor."""
    if isinstance(v, Data):
        return tuple(int(d) for d in v.array.shape)
    if tn.is_matrix(v):
        rows, cols = tn.shape(v)  # type: ignore[misc]
        return (rows,) if cols == 1 and tn.rank1(v) is True else (rows, cols)
    return ()


def size(v: Any, dim: Any, node: ast.AST) -> int:
    shape = torch_shape(v)
    if not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
        raise Refuse(node, f"Dimension {dim!r} is outside the tensor's {len(shape)} dimension(s).\n"
                           "Fix: pass a dimension the tensor has.")
    return shape[dim]


def _positions(part: Any, length: int, node: ast.AST) -> list[int] | int:
    """One index part as the positions it picks along a dimension of `length`: an int (the
    dimension is dropped), or a list (kept)."""
    if isinstance(part, (bool, np.bool_)):
        raise Refuse(node, "A boolean index is not supported.\nFix: index with integers.")
    if isinstance(part, (int, np.integer)):
        k = int(part)
        if not -length <= k < length:
            raise Refuse(node, f"Index {k} is out of range for a dimension of size {length} (torch raises here).\n"
                               "Fix: index inside the tensor.")
        return k % length
    if isinstance(part, slice):
        return list(range(length))[part]
    if isinstance(part, range):
        return [_positions(k, length, node) for k in part]  # type: ignore[misc]
    if isinstance(part, Data) and part.array.dtype == np.bool_ and part.array.ndim == 1:
        if len(part.array) != length:  # torch raises IndexError
            raise Refuse(node, f"The mask `{part.name}` has {len(part.array)} elements, but it indexes a dimension "
                               f"of size {length} (torch raises here).\nFix: give the mask that dimension's size.")
        return _selected([int(k) for k in np.flatnonzero(part.array)], part.name, node)
    if isinstance(part, Data):
        if part.array.dtype == np.bool_ or part.array.ndim != 1:
            raise Refuse(node, "Indexing by a boolean mask or by a tensor of rank other than 1 is not supported.\n"
                               "Fix: index by a rank-1 tensor of integers (labels), e.g. `X[range(n), y]`.")
        return [_positions(int(k), length, node) for k in part.array]  # type: ignore[misc]
    if isinstance(part, (list, tuple)) and all(isinstance(k, (int, np.integer)) for k in part):
        return [_positions(int(k), length, node) for k in part]  # type: ignore[misc]
    raise Refuse(node, "This index is not a constant: symgrad reads integers, slices with constant bounds, "
                       "`range(...)` and integer tensors passed as data.\n"
                       "Fix: index with constants, or with labels passed to the function as an integer tensor.")


def index(base: Any, parts: Sequence[Any], node: ast.AST) -> Any:
    """`base[parts]` as torch indexes it."""
    if any(tn.is_mask(p) for p in parts):
        raise Refuse(node, "This index is a mask computed from a differentiated tensor: the elements it selects, "
                           "and so the result's shape, change where a value crosses the threshold: control flow that no "
                           "derivative sees, which symgrad does not read.\nFix: keep every "
                           "element and zero the others, e.g. `torch.where(x > 0, x, 0.0)` for `x[x > 0]` (the sum "
                           "is the same), or pass the mask as a boolean tensor computed outside the function.")
    if len(parts) == 1 and isinstance(parts[0], Data) and parts[0].array.dtype == np.bool_ \
            and parts[0].array.ndim == 2 and tn.is_matrix(base) and len(torch_shape(base)) == 2:
        return _masked(base, parts[0], node)
    if isinstance(base, Data):
        try:
            picked = base.array[tuple(parts) if len(parts) > 1 else parts[0]]
        except (IndexError, TypeError) as err:
            raise Refuse(node, f"Indexing the data `{base.name}` failed: {err}.\nFix: index inside it.") from None
        return picked.item() if np.ndim(picked) == 0 else Data(np.asarray(picked), base.name)
    if isinstance(base, tuple):  # a shape
        if len(parts) != 1 or not isinstance(parts[0], (int, slice)):
            raise Refuse(node, "A shape is indexed by one integer.\nFix: write `x.shape[0]`.")
        return base[parts[0]]
    if not tn.is_matrix(base):
        raise Refuse(node, "Indexing a number (a tensor of rank 0) is not supported: it has no elements.\n"
                           "Fix: use the value itself.")
    rows, cols = tn.shape(base)  # type: ignore[misc]
    vector = torch_shape(base) == (rows,)
    if vector:
        if len(parts) != 1:
            raise Refuse(node, "A rank-1 tensor takes one index.\nFix: write `x[i]`.")
        picked = _positions(parts[0], rows, node)
        if isinstance(picked, int):
            return MatrixElement(base, picked, 0)
        return _column([MatrixElement(base, r, 0) for r in picked], node)
    if len(parts) == 1:
        parts = [parts[0], slice(None)]
    if len(parts) != 2:
        raise Refuse(node, "A matrix takes at most two indices.\nFix: write `X[i, j]`.")
    r, c = (_positions(p, n, node) for p, n in zip(parts, (rows, cols)))
    if isinstance(r, int) and isinstance(c, int):
        return MatrixElement(base, r, c)
    if isinstance(r, int):
        return _column([MatrixElement(base, r, j) for j in c], node)  # type: ignore[union-attr]
    if isinstance(c, int):
        return _column([MatrixElement(base, i, c) for i in r], node)
    if _advanced(parts):  # two index lists: pairs, a rank-1 result (a gather)
        if len(r) != len(c):
            raise Refuse(node, f"The two index lists have lengths {len(r)} and {len(c)}; torch pairs them "
                               "element by element.\nFix: give both the same length.")
        return _column([MatrixElement(base, i, j) for i, j in zip(r, c)], node)
    if len(r) * len(c) > MAX_INDEXED:
        raise Refuse(node, f"This slice has {len(r) * len(c)} elements; symgrad builds slices of at most "
                           f"{MAX_INDEXED}.\nFix: slice less, or pass the part you need as its own input.")
    return sp.ImmutableMatrix(len(r), len(c), [MatrixElement(base, i, j) for i in r for j in c])


def _selected(picked: list[int], name: str, node: ast.AST) -> list[int]:
    if not picked:
        raise Refuse(node, f"The mask `{name}` selects no element: the result is an empty tensor, which has no "
                           "entries to compare.\nFix: compare at a point where the mask selects at least one element.")
    return picked


def _masked(base: Any, mask: Data, node: ast.AST) -> Any:
    """`X[M]` with `M` a boolean matrix of `X`'s shape: the elements where `M` is true, in row-major
    order, as a rank-1 tensor (torch's order)."""
    if tuple(mask.array.shape) != tn.shape(base):
        raise Refuse(node, f"The mask `{mask.name}` has shape {tuple(mask.array.shape)}, but it indexes a tensor of "
                           f"shape {tn.shape(base)} (torch raises here).\nFix: give the mask the tensor's shape.")
    picked = _selected([(int(i), int(j)) for i, j in np.argwhere(mask.array)], mask.name, node)  # type: ignore[misc]
    return _column([MatrixElement(base, i, j) for i, j in picked], node)  # type: ignore[misc]


def _advanced(parts: Sequence[Any]) -> bool:
    return all(not isinstance(p, slice) for p in parts)


def _column(elements: list[Any], node: ast.AST) -> Any:
    """A rank-1 result: an (n, 1) column of the elements picked."""
    if len(elements) > MAX_INDEXED:
        raise Refuse(node, f"This index picks {len(elements)} elements; symgrad builds at most {MAX_INDEXED}.\n"
                           "Fix: index less, or pass the part you need as its own input.")
    column = sp.ImmutableMatrix(len(elements), 1, elements)
    tn.RANK1.set(tn.RANK1.get() | {column})  # torch gives a rank-1 tensor: it broadcasts as a row
    return column
