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
- `x.gather(dim, i)` / `torch.gather(x, dim, i)` with `i` integer data (labels: `y.unsqueeze(1)`,
  `y.view(-1, 1)`, `y[:, None]`) is the same selection by constant indices: out[r][c] =
  x[r][i[r][c]] along dim 1, x[i[r][c]][c] along dim 0 (`with_data`); `i.unsqueeze(d)` and
  `i.squeeze()` of data stay data.
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
from .source_unfilled import Unfilled
from .torch_argmax import grid_of
from .torch_shapes import made, torch_dims

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
    if isinstance(base, Unfilled):  # `torch.empty(3)[0]`: whatever memory held
        raise base.refuse(node)
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


def with_data(spelling: Any, args: Sequence[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """What a spelling computes where integer data is its tensor or its index: `y.unsqueeze(1)`,
    `y.squeeze()` (still data), `x.gather(dim, y)` (the elements the labels pick); None for any
    other spelling (the caller reads it as it did)."""
    name = spelling.name
    if name in ("Tensor.unsqueeze", "Tensor.squeeze") and args and isinstance(args[0], Data):
        array = args[0].array
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if name == "Tensor.unsqueeze":
            if not isinstance(dim, int) or not -array.ndim - 1 <= dim <= array.ndim:
                raise Refuse(node, f"`.unsqueeze` of `{args[0].name}` takes a dim from {-array.ndim - 1} to "
                                   f"{array.ndim} (torch raises).\nFix: give a dim in that range.")
            return Data(np.expand_dims(array, dim % (array.ndim + 1)), args[0].name)
        return Data(array.squeeze() if dim is None else (array.squeeze(dim) if array.shape[dim] == 1 else array),
                    args[0].name)
    if name == "torch.nn.functional.embedding":
        return _embedding(args, kwargs, node)
    if name not in ("Tensor.gather", "torch.gather"):
        return None
    index = kwargs.get("index", args[2] if len(args) > 2 else None)
    if not isinstance(index, Data):
        return None
    x, dim = args[0], kwargs.get("dim", args[1] if len(args) > 1 else None)
    return _gather(x, int(dim) if isinstance(dim, (int, np.integer, sp.Integer)) else dim, index, node)


_EMBEDDING_ARGS = ("input", "weight", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse")


def _embedding(args: Sequence[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """`F.embedding(i, W)` of integer data i: the rows of W that i picks, `W[i]` (torch's forward
    copies them exactly; the fidelity check compares its backward with the user's). `padding_idx`,
    `max_norm` (W renormalised in place), `scale_grad_by_freq` and `sparse` are sentences. None
    where i is not data (the spelling's own sentence)."""
    given = dict(zip(_EMBEDDING_ARGS, args)) | kwargs
    ids, weight = given.get("input"), given.get("weight")
    if not isinstance(ids, Data):
        return None
    for what, why in (("max_norm", "renormalises the rows of `weight` in place before reading them, which changes "
                                   "the tensor you differentiate"),
                      ("scale_grad_by_freq", "divides each row's gradient by how often the batch picks it: not the "
                                             "derivative of the function"),
                      ("sparse", "returns a sparse gradient")):
        if given.get(what) is not None and given.get(what) is not False:
            raise Refuse(node, f"`F.embedding` with `{what}` {why}; symgrad reads it without.\n"
                               f"Fix: leave `{what}` out, or index the rows yourself (`W[i]`).")
    if not tn.is_matrix(weight) or len(torch_shape(weight)) != 2:
        raise Refuse(node, "`F.embedding`'s weight is a matrix (num_embeddings, embedding_dim) that the function "
                           "differentiates.\nFix: pass the embedding matrix as a differentiated input.")
    if ids.array.dtype == np.bool_ or not np.issubdtype(ids.array.dtype, np.integer) or ids.array.ndim > 1:
        raise Refuse(node, f"`F.embedding`'s input `{ids.name}` is {'not integer data' if ids.array.ndim <= 1 else 'of rank 2 or more'}"
                           ": symgrad reads integer indices of rank 0 or 1 (the result is a row or a matrix; a batch of "
                           "sequences gives a tensor of rank 3).\nFix: pass one sequence of indices at a time.")
    if given.get("padding_idx") is not None:
        raise Refuse(node, "`F.embedding` with `padding_idx` passes no gradient to that row (torch's backward skips it), "
                           "which symgrad does not read yet.\nFix: compare without `padding_idx` (every other row's "
                           "gradient is the same), or pick the rows yourself (`W[i]`) and detach the padding row.")
    return index(weight, [ids.array.item() if ids.array.ndim == 0 else ids], node)


def _gather(x: Any, dim: Any, index: Data, node: ast.AST) -> Any:
    """torch.gather(x, dim, index) of integer data: out[r][c] = x[r][index[r][c]] (dim 1) or
    x[index[r][c]][c] (dim 0); a rank-1 x: out[k] = x[index[k]]. torch raises where the index is not
    of x's rank, is negative or past the dimension, or is larger than x in another dimension."""
    array = index.array
    if array.dtype.kind not in "iu":
        raise Refuse(node, f"`gather`'s index `{index.name}` is {'a boolean mask' if array.dtype == np.bool_ else 'not integer'} "
                           "data (torch raises: gather takes an int64 index).\nFix: pass the labels as an integer "
                           "tensor (`y.long()` outside the function).")
    if not tn.is_matrix(x) or isinstance(x, Data):
        raise Refuse(node, "`gather` picks from a differentiated tensor here; this one is a number or data.\n"
                           "Fix: gather from the tensor whose elements carry the gradient.")
    xd, idims = torch_dims(x), tuple(int(d) for d in array.shape)
    if len(xd) != len(idims) or not isinstance(dim, int) or not -len(xd) <= dim < len(xd):
        raise Refuse(node, f"`gather` takes an index of the tensor's rank ({len(xd)}) and a dim of it; here the index "
                           f"`{index.name}` has shape {idims} and the dim is {dim!r} (torch raises).\nFix: "
                           f"`x.gather(1, {index.name}.unsqueeze(1))` for one label per row of an (n, C) x.")
    dim %= len(xd)
    if any(n > m for k, (n, m) in enumerate(zip(idims, xd)) if k != dim):
        raise Refuse(node, f"`gather`'s index `{index.name}` (shape {idims}) is larger than the tensor (shape {xd}) "
                           "in a dimension it does not gather along (torch raises).\nFix: index inside it.")
    bad = [int(v) for v in array.reshape(-1) if not 0 <= int(v) < xd[dim]]
    if bad:
        raise Refuse(node, f"`gather`'s index `{index.name}` holds {bad[0]}, outside 0..{xd[dim] - 1} of the dimension it "
                           "gathers along (torch raises).\nFix: pass labels inside the number of classes.")
    if array.size > MAX_INDEXED:
        raise Refuse(node, f"This gather picks {array.size} elements; symgrad builds at most {MAX_INDEXED}.\n"
                           "Fix: compare a smaller batch.")
    grid = grid_of(x)
    if len(xd) == 1:
        values = [grid[0][int(k)] for k in array]
    elif dim == 1:
        values = [grid[r][int(array[r, c])] for r in range(idims[0]) for c in range(idims[1])]
    else:
        values = [grid[int(array[r, c])][c] for r in range(idims[0]) for c in range(idims[1])]
    return made(values, list(idims))
