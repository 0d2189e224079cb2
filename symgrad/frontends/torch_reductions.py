"""Reductions and transposes read from torch code (issue 20, item 3): `x.max()`/`x.min()` and
`torch.amax`/`torch.amin` (a tie split evenly), `x.max(dim=d)` (values and indices; the gradient
to the index torch returns), `x.argmax(dim)` (integer data), `x.std()`/`x.var()` (whole or along
a dim, `correction=`/`unbiased=`, `keepdim`), `torch.logsumexp(x, dim)` along a dim,
`torch.cumsum(x, dim)`, and `x.transpose(0, 1)`, `torch.transpose`, `x.swapaxes`, `x.permute`,
`x.mT`.

Each reduction is one fused node per element of the result (`program/reductions.py`): the
elements it reduces, stacked as torch reads them, lowered to torch's own call on them, so that
its floats and its backward are torch's. A result along a dim is an explicit matrix of such
nodes, of the shape torch gives it (a rank-1 result as an (n, 1) column). `cumsum` is the
running sums, each the previous one plus the next element, as torch adds them. These rows join
`torch_names.SPELLINGS` (`reduction_spellings`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import sympy as sp
import torch
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from ..program.calls import along_call
from ..program.primitives import logsumexp
from ..program.reductions import amax, amin, logsumexp_along, max_at, min_at, std, std_along, var, var_along
from .torch_argmax import Indices
from .torch_shapes import MAX_ELEMENTS, made, torch_dims
from .torch_values import Build, Spelling, as_scalar, is_matrix, shape


class MaxResult(NamedTuple):
    """torch.return_types.max: `.values` (with the gradient) and `.indices` (integer data)."""

    values: Any
    indices: Indices


def part_of(result: MaxResult, key: Any) -> Any:
    """`.values`/`.indices`, `[0]`/`[1]` of a `max(dim)`'s result, or None for another key."""
    if key in ("values", "indices"):
        return getattr(result, key)
    key = _int(key)
    return result[key] if isinstance(key, int) and not isinstance(key, bool) and -2 <= key < 2 else None


def _grid(x: Any) -> list[list[Any]]:
    """The elements of a value as rows of torch's shape: a rank-1 tensor is one row."""
    if not is_matrix(x):
        return [[as_scalar(x)]]
    rows, cols = shape(x)  # type: ignore[misc]
    if rows * cols > MAX_ELEMENTS:
        raise UnsupportedNodeError(f"This reduction reads {rows * cols} elements; symgrad reads at most {MAX_ELEMENTS} "
                                   "here.\nFix: reduce a smaller tensor.")
    get = (lambda i, j: x[i, j]) if isinstance(x, sp.MatrixBase) else (lambda i, j: MatrixElement(x, i, j))
    grid = [[get(i, j) for j in range(cols)] for i in range(rows)]
    return [[e for r in grid for e in r]] if len(torch_dims(x)) == 1 else grid


def _is_flag(v: Any) -> bool:
    """A literal True/False (the source reader gives them as SymPy's true/false)."""
    return isinstance(v, (bool, sp.logic.boolalg.BooleanAtom))


def _int(v: Any) -> Any:
    if isinstance(v, sp.Integer):
        return int(v)
    if isinstance(v, sp.Basic) and v.is_Integer is not False and v.is_number and v == int(v):
        return int(v)
    return v


def _dims(spelled: str, x: Any, dim: Any) -> list[int] | None:
    """The dims a reduction runs along, each in range(rank) (None: every element)."""
    rank = len(torch_dims(x))
    if dim is None:
        return None
    listed = [_int(d) for d in dim] if isinstance(dim, (list, tuple)) else [_int(dim)]
    out = []
    for d in listed:
        if not isinstance(d, int) or isinstance(d, bool):
            raise UnsupportedNodeError(f"`{spelled}(dim={dim!r})`: dim is an integer (or a tuple of them) here.\n"
                                       "Fix: pass dim as a number, e.g. `dim=1`.")
        if not -max(rank, 1) <= d < max(rank, 1):
            raise UnsupportedNodeError(
                f"`{spelled}(dim={d})` is out of range for a tensor of rank {rank} (torch raises IndexError: dims run "
                f"from {-max(rank, 1)} to {max(rank, 1) - 1}).\nFix: pass a dim of the tensor, e.g. `dim=-1` for its last.")
        out.append(d % max(rank, 1))
    return sorted(set(out)) if listed else None


def _along(spelled: str, x: Any, dim: Any, keepdim: Any, node: Any, node_along: Any = None) -> Any:
    """`node(*elements)` of each group the reduction runs along, in the shape torch gives the result
    (`node_along(rows, cols, dim, j, *every element)` of group j, where given)."""
    dims = _dims(spelled, x, dim)
    grid = _grid(x)
    rank = len(torch_dims(x))
    keep = bool(keepdim)
    if rank == 0:
        return node(*grid[0])
    if dims is None or len(dims) == rank:
        whole = node(*[e for r in grid for e in r])
        return made([whole], [1] * rank) if keep else whole
    every = [e for r in grid for e in r]
    if dims == [1]:
        values = [node(*r) if node_along is None else node_along(len(grid), len(grid[0]), 1, i, *every)
                  for i, r in enumerate(grid)]
        return made(values, [len(grid), 1] if keep else [len(grid)])
    values = [node(*[r[j] for r in grid]) if node_along is None else node_along(len(grid), len(grid[0]), 0, j, *every)
              for j in range(len(grid[0]))]
    return made(values, [1, len(grid[0])] if keep else [len(grid[0])])


along, grid = _along, _grid  # public: torch_more reduces prod and var_mean's mean, and moves elements, with them


def _not_a_dim(v: Any) -> bool:
    """A number no dim can be: a float (`torch.tensor(0.)`, `torch.tensor(1.5)`) or a fraction."""
    v = _int(v)
    return isinstance(v, (float, sp.Float)) or (isinstance(v, sp.Rational) and not v.is_Integer)


# The calls that make a tensor, where one is the second argument of torch.max/torch.min: there it
# is `other` (torch.maximum), never a dim, even when it holds an integer (`torch.tensor(0)`).
_TENSOR_MAKERS: Final = frozenset({
    "tensor", "as_tensor", "scalar_tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like",
    "new_tensor", "new_zeros", "new_ones", "new_full", "clone", "detach", "to", "double", "float", "type_as"})
_EXTREMES: Final = frozenset({"torch.max", "torch.min", "Tensor.max", "Tensor.min"})


def makes_tensor(e: Any) -> bool:
    """Whether the source expression `e` is a call that makes a tensor (`torch.tensor(0.)`,
    `torch.zeros_like(x)`, `torch.tensor(0).double()`), as a dim never is."""
    return isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr in _TENSOR_MAKERS


def tensor_as_other(spelled: str, args: list[Any], kwargs: dict[str, Any],
                    is_tensor: Callable[[int], bool]) -> tuple[list[Any], dict[str, Any]]:
    """`torch.max(a, b)`/`a.max(b)` where the second argument is a tensor (`is_tensor(1)`: the
    source spells one, or the recorded run holds one): b given as `other=`, so that a 0-d constant
    tensor is read as torch reads it, the elementwise torch.maximum, and never as a dim."""
    if spelled not in _EXTREMES or len(args) != 2 or "other" in kwargs or not is_tensor(1):
        return args, kwargs
    return [args[0]], {**kwargs, "other": args[1]}


def _indices(spelled: str, x: Any, dim: Any, keepdim: Any, largest: bool) -> Indices:
    """The indices of a max/min (argmax/argmin) along `dim` (None: of every element, flattened):
    each group of elements an index is taken over, in order, in the shape torch gives the indices."""
    dims, grid = _dims(spelled, x, dim), _grid(x)
    rank, keep = len(torch_dims(x)), bool(keepdim)
    if rank == 0 or dims is None or len(dims) == rank:
        return Indices(spelled, (tuple(e for r in grid for e in r),), (1,) * rank if keep and dims is not None else (),
                       largest)
    if dims == [1]:
        return Indices(spelled, tuple(tuple(r) for r in grid), (len(grid), 1) if keep else (len(grid),), largest)
    cols = tuple(tuple(r[j] for r in grid) for j in range(len(grid[0])))
    return Indices(spelled, cols, (1, len(cols)) if keep else (len(cols),), largest)


def _refuse_unknown(spelled: str, k: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(k) - known)
    if unknown:
        raise UnsupportedNodeError(f"`{spelled}` with {', '.join(f'{u}=' for u in unknown)} is not supported here; "
                                   f"symgrad reads {', '.join(sorted(known)) or 'no keyword'}.\n"
                                   f"Fix: leave {', '.join(unknown)} out, or compute that part outside the function.")


def _extreme(name: str, spelled: str, binary: Build) -> Build:
    """`x.max()`, `torch.max(x)` (every element, a tie split evenly), `x.max(dim, keepdim)`
    ((values, indices); the gradient to the index), `torch.max(a, b)` (elementwise, `binary`)."""
    evenly, at = (amax, max_at) if name == "max" else (amin, min_at)

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        other = k.get("other", a[1] if len(a) > 1 else None)
        if "other" in k or (other is not None and (is_matrix(other) or (isinstance(other, sp.Basic) and other.free_symbols)
                                                   or _not_a_dim(other))):
            # torch.max(a, b) of a tensor b is torch.maximum (a tie split 1/2 : 1/2); a dim is a Python int.
            _refuse_unknown(spelled, {n: v for n, v in k.items() if n != "other"}, set())
            return binary([a[0], other], {})
        _refuse_unknown(spelled, k, {"dim", "keepdim"})
        dim = k.get("dim", a[1] if len(a) > 1 else None)
        keepdim = k.get("keepdim", a[2] if len(a) > 2 else False)
        if dim is None:
            if keepdim:
                raise UnsupportedNodeError(f"`{spelled}(keepdim=True)` needs a dim (torch raises).\n"
                                           f"Fix: write `{spelled}(dim=1, keepdim=True)`, or leave keepdim out.")
            return _along(spelled, a[0], None, False, evenly)
        if isinstance(_int(dim), (list, tuple)):
            raise UnsupportedNodeError(f"`{spelled}(dim=...)` takes one dim (torch raises for a tuple).\n"
                                       f"Fix: use `torch.a{name}(x, dim=(0, 1))` for several dims.")
        return MaxResult(_along(spelled, a[0], dim, keepdim, at),
                         _indices(f"{spelled}(dim={_int(dim)})", a[0], dim, keepdim, name == "max"))

    return build


def _a_extreme(name: str, spelled: str) -> Build:
    """`torch.amax(x, dim=(), keepdim=False)`: every element by default, a tie split evenly."""
    node = amax if name == "max" else amin

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _refuse_unknown(spelled, k, {"dim", "keepdim"})
        dim = k.get("dim", a[1] if len(a) > 1 else None)
        keepdim = k.get("keepdim", a[2] if len(a) > 2 else False)
        if isinstance(dim, (list, tuple)) and not dim:
            dim = None
        return _along(spelled, a[0], dim, keepdim, node)

    return build


def _arg_extreme(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _refuse_unknown(spelled, k, {"dim", "keepdim"})
        dim = k.get("dim", a[1] if len(a) > 1 else None)
        _dims(spelled, a[0], dim)
        return _indices(spelled if dim is None else f"{spelled}(dim={_int(dim)})", a[0], dim,
                        k.get("keepdim", a[2] if len(a) > 2 else False), "argmax" in spelled)

    return build


def _spread(name: str, spelled: str) -> Build:
    """`x.var()`, `x.var(dim, keepdim=..., correction=c)`, `x.var(dim, unbiased)` (legacy), `x.var(unbiased)`."""
    node, along = (var, var_along) if name == "var" else (std, std_along)

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        dim, keepdim, c = spread_arguments(spelled, a, k)
        return _along(spelled, a[0], dim, keepdim, lambda *e: node(c, *e), lambda *e: along(c, *e))

    return build


def spread_arguments(spelled: str, a: Sequence[Any], k: dict[str, Any]) -> tuple[Any, Any, int]:
    """(dim, keepdim, correction) of `x.var(...)`, `x.std(...)`, `torch.var_mean(...)`: `(x, dim, unbiased,
    keepdim)`, `(x, unbiased)` (legacy) or `dim=`, `keepdim=`, `correction=` (1, unbiased, by default)."""
    _refuse_unknown(spelled, k, {"dim", "keepdim", "correction", "unbiased"})
    rest = list(a[1:])
    dim, unbiased, keepdim = None, None, k.get("keepdim", False)
    if rest and _is_flag(rest[0]):
        unbiased = bool(rest.pop(0))
    elif rest:
        dim = rest.pop(0)
        if rest and _is_flag(rest[0]):
            unbiased = bool(rest.pop(0))
        if rest:
            keepdim = rest.pop(0)
    dim = k.get("dim", dim)
    unbiased = bool(k["unbiased"]) if "unbiased" in k else unbiased
    correction = k.get("correction")
    if correction is not None and unbiased is not None:
        raise UnsupportedNodeError(f"`{spelled}` takes either correction= or unbiased= (torch raises for both).\n"
                                   "Fix: write `correction=1` (unbiased) or `correction=0`.")
    c = _int(correction) if correction is not None else (0 if unbiased is False else 1)
    if not isinstance(c, int):
        raise UnsupportedNodeError(f"`{spelled}(correction={correction})`: symgrad reads an integer correction.\n"
                                   "Fix: pass correction as an integer, e.g. `correction=0`.")
    return dim, keepdim, c


def _logsumexp(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """`torch.logsumexp(x, dim, keepdim=False)`: one fused logsumexp of each row or column (of every
    element of a vector: its one dim)."""
    _refuse_unknown("torch.logsumexp", k, {"dim", "keepdim"})
    dim = k.get("dim", a[1] if len(a) > 1 else None)
    keepdim = k.get("keepdim", a[2] if len(a) > 2 else False)
    if dim is None or (isinstance(dim, (list, tuple)) and not dim):
        if is_matrix(a[0]) and len(torch_dims(a[0])) == 2:
            raise UnsupportedNodeError("torch.logsumexp of a matrix needs its dim (torch raises without it).\n"
                                       "Fix: write `torch.logsumexp(X, dim=1)` for one per row, or dim=0 for one per column.")
        dim = None
    return _along("torch.logsumexp", a[0], dim, keepdim, logsumexp, logsumexp_along)


def _cumsum(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """`torch.cumsum(x, dim)`: the running sums along dim, each the previous one plus the next
    element (torch adds them in that order)."""
    _refuse_unknown("torch.cumsum", k, {"dim"})
    dim = k.get("dim", a[1] if len(a) > 1 else None)
    if dim is None:
        raise UnsupportedNodeError("torch.cumsum needs its dim (torch raises without it).\nFix: write `torch.cumsum(x, dim=0)`.")
    x = a[0]
    if not is_matrix(x):
        _dims("torch.cumsum", x, dim)
        return as_scalar(x)
    dims = _dims("torch.cumsum", x, dim)
    vector = len(torch_dims(x)) == 1
    called = along_call(x, vector, 0 if vector else dims[0], lambda t: torch.cumsum(t, 0), "torch.cumsum({x}, %d)" % (
        0 if vector else dims[0]))
    if called is not None:  # torch's own cumsum (its float32 sums accumulate in double)
        return called
    grid = _grid(x)

    def running(line: list[Any]) -> list[Any]:
        out = [line[0]]
        for e in line[1:]:
            out.append(sp.Add(out[-1], e, evaluate=False))
        return out

    if len(torch_dims(x)) == 1:
        return made(running(grid[0]), [len(grid[0])])
    if dims == [1]:
        rows = [running(r) for r in grid]
    else:
        columns = [running([r[j] for r in grid]) for j in range(len(grid[0]))]
        rows = [[c[i] for c in columns] for i in range(len(grid))]
    return made([e for r in rows for e in r], [len(grid), len(grid[0])])


def _swap(spelled: str) -> Build:
    """`x.transpose(d0, d1)` / `torch.transpose` / `x.swapaxes`: of rank 2, the transpose where the
    dims differ, the tensor itself where they are one dim; of rank 0 or 1, the tensor itself."""

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _refuse_unknown(spelled, k, {"dim0", "dim1", "axis0", "axis1"})
        d0 = k.get("dim0", k.get("axis0", a[1] if len(a) > 1 else None))
        d1 = k.get("dim1", k.get("axis1", a[2] if len(a) > 2 else None))
        if d0 is None or d1 is None:
            raise UnsupportedNodeError(f"`{spelled}` takes two dims (torch raises otherwise).\nFix: write `{spelled}(0, 1)`.")
        x = a[0]
        found = _dims(spelled, x, (d0, d1))
        return transposed(x) if found is not None and len(found) == 2 else x

    return build


def _permute(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """`x.permute(1, 0)` / `x.permute((1, 0))` / `torch.permute(x, dims)`: a permutation of the dims."""
    _refuse_unknown("permute", k, {"dims"})
    order = k.get("dims", list(a[1:]))
    if len(order) == 1 and isinstance(order[0], (list, tuple)):
        order = list(order[0])
    order = [_int(d) for d in order]
    x = a[0]
    rank = len(torch_dims(x))
    if len(order) != rank or sorted(d % max(rank, 1) if isinstance(d, int) else d for d in order) != list(range(rank)):
        raise UnsupportedNodeError(f"`permute{tuple(order)}` is not a permutation of the {rank} dims of this tensor "
                                   f"(torch raises).\nFix: name each dim once, e.g. `permute(1, 0)` for a matrix.")
    return transposed(x) if rank == 2 and order[0] % 2 == 1 else x


def _matrix_transpose(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """`x.mT`: the transpose of a matrix (torch raises for rank 0 and 1)."""
    x = a[0]
    if len(torch_dims(x)) != 2:
        raise UnsupportedNodeError("`.mT` is only for matrices: torch raises for a tensor of rank "
                                   f"{len(torch_dims(x))}.\nFix: use `.T` or `.reshape(1, -1)` first.")
    return transposed(x)


def transposed(x: Any) -> Any:
    """The transpose as one node (`.T` would push it inside: `(2*X).T` is `2*X.T` to SymPy)."""
    return x.T if isinstance(x, sp.MatrixBase) else sp.Transpose(x)


def reduction_spellings(maximum: Build, minimum: Build) -> list[Spelling]:
    """The rows for `torch_names.SPELLINGS`; `maximum`/`minimum` read `torch.max(a, b)` of two tensors."""
    out: list[Spelling] = []
    for name, binary, evenly, at in (("max", maximum, amax, max_at), ("min", minimum, amin, min_at)):
        for spelled, kind in ((f"Tensor.{name}", "method"), (f"torch.{name}", "function")):
            out.append(Spelling(spelled, kind, evenly, _extreme(name, spelled.replace("Tensor.", "x."), binary),
                                f"every element: {name} of them, a tie split evenly (torch's convention); with a dim, "
                                f"(values, indices) (`{at.__name__}`: the gradient to the index); of two tensors, "
                                f"torch.{name}imum"))
        for spelled, kind in ((f"torch.a{name}", "function"), (f"Tensor.a{name}", "method")):
            out.append(Spelling(spelled, kind, evenly, _a_extreme(name, spelled.replace("Tensor.", "x.")),
                                "every element, or along dim (0 or 1, keepdim), a tie split evenly"))
        for spelled, kind in ((f"torch.arg{name}", "function"), (f"Tensor.arg{name}", "method")):
            out.append(Spelling(spelled, kind, at, _arg_extreme(spelled.replace("Tensor.", "x.")),
                                "integer data (no gradient), read in x.gather(dim, i), W[i] and F.one_hot(i, n) (torch_argmax); "
                                "anything else computed from it is a sentence"))
    for name, node in (("var", var), ("std", std)):
        for spelled, kind in ((f"Tensor.{name}", "method"), (f"torch.{name}", "function")):
            out.append(Spelling(spelled, kind, node, _spread(name, spelled.replace("Tensor.", "x.")),
                                "every element or along dim (keepdim); correction=c or unbiased= (1 by default)"))
    out += [
        Spelling("torch.logsumexp", "function", logsumexp, _logsumexp, "every element of a vector, or along dim (keepdim)"),
        Spelling("Tensor.logsumexp", "method", logsumexp, _logsumexp, "every element of a vector, or along dim (keepdim)"),
        Spelling("torch.cumsum", "function", sp.Add, _cumsum, "the running sums along dim: torch.cumsum itself (past 64 along dim, element by element)"),
        Spelling("Tensor.cumsum", "method", sp.Add, _cumsum, "the running sums along dim: torch.cumsum itself (past 64 along dim, element by element)"),
        Spelling("Tensor.transpose", "method", sp.Transpose, _swap("x.transpose"), "rank 2; rank 0 and 1: the tensor itself"),
        Spelling("torch.transpose", "function", sp.Transpose, _swap("torch.transpose"), "as Tensor.transpose"),
        Spelling("Tensor.swapaxes", "method", sp.Transpose, _swap("x.swapaxes"), "as Tensor.transpose"),
        Spelling("torch.swapaxes", "function", sp.Transpose, _swap("torch.swapaxes"), "as Tensor.transpose"),
        Spelling("Tensor.permute", "method", sp.Transpose, _permute, "rank 2: (1, 0) transposes"),
        Spelling("torch.permute", "function", sp.Transpose, _permute, "as Tensor.permute"),
        Spelling("Tensor.mT", "attribute", sp.Transpose, _matrix_transpose, "a matrix's transpose (rank 2 only)"),
    ]
    return out
