"""More of torch's linear-algebra spellings (issue 20: D2L's chapters on linear algebra and
attention), appended to the table's `_SPELLINGS` by `torch_names` (as `torch_shapes.SHAPE_SPELLINGS` is).

    torch.outer(a, b), a.outer(b), torch.ger(a, b)   a @ b.T of two columns, lowered as torch.outer itself
    x.prod(), torch.prod(x, dim, keepdim)            torch's own call on the stacked elements (`products.prod`)
    torch.full_like(x, c)                             a constant tensor of x's shape
    x.flip(dims), torch.roll(x, shifts, dims)         the same elements, moved
    torch.tril(x, k), torch.triu(x, k)                x's elements on one side of diagonal k, 0 elsewhere
    torch.diag(v), torch.diag(X), torch.diagonal(X)   a diagonal matrix of a vector; a matrix's diagonal
    torch.trace(X)                                    SymPy's Trace, lowered to torch.trace
    torch.var_mean(x), torch.std_mean(x)              (var, mean): var as `x.var` is read, the mean
                                                      torch's own (`products.vm_mean`: Welford's)

A move copies each element exactly, and its backward puts each gradient back where its element
came from: the result is an explicit matrix of the elements (`torch_shapes.made`), as a reshape
is. A tensor of rank 3 or more, and arguments torch reads but symgrad does not, are sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sympy as sp
import torch

from ..base.errors import UnsupportedNodeError
from ..program.calls import OUTER, along_call, called_matmul
from ..program.products import (
    einsum_dot,
    einsum_matmul,
    einsum_trace,
    einsum_vdot,
    prod,
    prod_along,
    vm_mean,
    vm_mean_along,
)
from ..program.orders import order_at
from ..program.reductions import std, std_along, var, var_along
from .torch_reductions import MaxResult, along, grid, spread_arguments, transposed
from .torch_einsum import product_einsum
from .torch_sums import sum_of
from .torch_shapes import made, torch_dims
from .torch_values import Build, Spelling, as_scalar, is_matrix, shape


def _int(v: Any, what: str, fix: str) -> int:
    if isinstance(v, sp.Integer):
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise UnsupportedNodeError(f"{what}: symgrad reads an integer here, not {v!r}.\nFix: {fix}")
    return v


def _ints(v: Any, what: str, fix: str) -> list[int]:
    listed = list(v) if isinstance(v, (list, tuple, sp.Tuple)) else [v]
    return [_int(d, what, fix) for d in listed]


def _only(spelled: str, k: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(k) - known)
    if extra:
        raise UnsupportedNodeError(f"`{spelled}` with `{extra[0]}=` is not read.\n"
                                   f"Fix: call it with {', '.join(f'{n}=' for n in sorted(known)) or 'no keywords'} only.")


def _tensor(x: Any, spelled: str, ranks: tuple[int, ...] = (1, 2)) -> tuple[list[list[Any]], int]:
    rank = len(torch_dims(x))
    if rank not in ranks:
        wanted = " or ".join(str(r) for r in ranks)
        raise UnsupportedNodeError(
            f"`{spelled}` is read of a tensor of rank {wanted}; this one has rank {rank}"
            f"{' (torch raises)' if rank < min(ranks) else ''}.\n"
            f"Fix: pass a {'matrix' if ranks == (2,) else 'vector or a matrix'}, e.g. reshape it first.")
    return grid(x), rank


def _back(grid: list[list[Any]], rank: int) -> Any:
    return made([e for r in grid for e in r], [len(grid[0])] if rank == 1 else [len(grid), len(grid[0])])


# --------------------------------------------------------------------------- outer, prod, full_like


def _outer(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"vec2"} if spelled.startswith("x.") else {"input", "vec2"})
        x = a[0] if a else k.get("input")
        y = a[1] if len(a) > 1 else k.get("vec2")
        if not all(is_matrix(v) and len(torch_dims(v)) == 1 for v in (x, y)):
            ranks = ", ".join(str(len(torch_dims(v))) for v in (x, y))
            raise UnsupportedNodeError(
                f"`{spelled}` takes two vectors (tensors of rank 1); these have ranks {ranks} (torch raises).\n"
                "Fix: flatten them first (`a.flatten()`), or write `a.reshape(-1, 1) * b` for a broadcast product.")
        # x @ y.T of two columns, each element one product: torch.outer itself, as the user called it.
        return called_matmul(OUTER, x, sp.Transpose(y))

    return build


def _prod(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"dim", "keepdim", "input"})
        x = a[0] if a else k.get("input")
        dim = k.get("dim", a[1] if len(a) > 1 else None)
        keepdim = k.get("keepdim", a[2] if len(a) > 2 else False)
        if isinstance(dim, (list, tuple)):
            raise UnsupportedNodeError(f"`{spelled}(dim={list(dim)})`: torch's prod takes one dim (it raises for a "
                                       "list).\nFix: pass one dim, e.g. `dim=1`.")
        return along(spelled, x, dim, keepdim, prod, prod_along)

    return build


def _full_like(a: Sequence[Any], k: dict[str, Any]) -> Any:
    _only("torch.full_like", k, {"fill_value", "input", "dtype"})
    x = a[0] if a else k.get("input")
    fill = k.get("fill_value", a[1] if len(a) > 1 else None)
    if fill is None or is_matrix(fill) or (isinstance(fill, sp.Basic) and fill.free_symbols):
        raise UnsupportedNodeError("`torch.full_like(x, c)` takes a tensor and one constant number c (torch copies "
                                   "a tensor's value with no gradient).\nFix: write `torch.full_like(x, 2.0)`, or "
                                   "`c * torch.ones_like(x)` for a value that carries a gradient.")
    if not is_matrix(x):
        return as_scalar(fill)
    return made([as_scalar(fill)] * (shape(x)[0] * shape(x)[1]), list(torch_dims(x)))  # type: ignore[index]


# --------------------------------------------------------------------------- moves


def _dims_of(spelled: str, dims: Any, rank: int) -> list[int]:
    out = _ints(dims, f"`{spelled}`'s dims", "pass the dims as integers, e.g. `x.flip(0)`.")
    for d in out:
        if not -rank <= d < rank:
            raise UnsupportedNodeError(f"`{spelled}`: dim {d} is out of range for a tensor of rank {rank} (torch "
                                       f"raises IndexError).\nFix: pass a dim from {-rank} to {rank - 1}.")
    return [d % rank for d in out]


def _flip(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"dims"})
        grid, rank = _tensor(a[0], spelled)
        dims = k.get("dims", a[1] if len(a) == 2 else list(a[1:]))
        flipped = {(d if rank == 2 else 1) for d in _dims_of(spelled, dims, rank)}  # a vector is one row
        if len(flipped) == 1 and isinstance(a[0], sp.MatrixExpr):  # one dim: torch.flip itself
            d = 0 if rank == 1 else next(iter(flipped))
            called = along_call(a[0], rank == 1, d, lambda t: torch.flip(t, (0,)), f"torch.flip({{x}}, ({d},))")
            if called is not None:
                return called
        if 0 in flipped:
            grid = grid[::-1]
        if 1 in flipped:
            grid = [r[::-1] for r in grid]
        return _back(grid, rank)

    return build


def _roll(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"shifts", "dims"})
        grid, rank = _tensor(a[0], spelled)
        shifts = _ints(k.get("shifts", a[1] if len(a) > 1 else None), f"`{spelled}`'s shifts",
                       "pass the shifts as integers, e.g. `torch.roll(x, 1, 0)`.")
        dims_given = k.get("dims", a[2] if len(a) > 2 else None)
        if dims_given is None and rank == 1 and len(shifts) == 1 and isinstance(a[0], sp.MatrixExpr):
            called = along_call(a[0], True, 0, lambda t: torch.roll(t, shifts[0], 0), f"torch.roll({{x}}, {shifts[0]})")
            if called is not None:  # a vector rolled: torch.roll itself
                return called
        if dims_given is None:  # every element, flattened, rolled, and the shape put back
            flat = [e for r in grid for e in r]
            s = shifts[0] % len(flat) if len(shifts) == 1 else None
            if s is None:
                raise UnsupportedNodeError(f"`{spelled}` without dims takes one shift (torch raises).\n"
                                           "Fix: pass one shift, or a dim for each shift.")
            flat = flat[-s:] + flat[:-s] if s else flat
            return _back([flat[i * len(grid[0]):(i + 1) * len(grid[0])] for i in range(len(grid))], rank)
        dims = _dims_of(spelled, dims_given, rank)
        if len(dims) != len(shifts):
            raise UnsupportedNodeError(f"`{spelled}`: {len(shifts)} shifts for {len(dims)} dims (torch raises).\n"
                                       "Fix: give one shift per dim.")
        if len(dims) == 1 and isinstance(a[0], sp.MatrixExpr):  # one dim: torch.roll itself
            d = 0 if rank == 1 else dims[0]
            called = along_call(a[0], rank == 1, d, lambda t: torch.roll(t, shifts[0], 0),
                                f"torch.roll({{x}}, {shifts[0]}, {d})")
            if called is not None:
                return called
        for s, d in zip(shifts, dims):
            if rank == 1 or d == 1:
                grid = [r[-(s % len(r)):] + r[:-(s % len(r))] if s % len(r) else r for r in grid]
            else:
                s %= len(grid)
                grid = grid[-s:] + grid[:-s] if s else grid
        return _back(grid, rank)

    return build


def _offset(spelled: str, a: Sequence[Any], k: dict[str, Any], name: str = "diagonal") -> int:
    return _int(k.get(name, a[1] if len(a) > 1 else 0), f"`{spelled}({name}=...)`", f"pass {name} as an integer.")


def _triangle(spelled: str, lower: bool) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"diagonal"})
        grid, _ = _tensor(a[0], spelled, (2,))
        d = _offset(spelled, a, k)
        keep = (lambda i, j: j - i <= d) if lower else (lambda i, j: j - i >= d)
        return _back([[e if keep(i, j) else sp.Integer(0) for j, e in enumerate(r)] for i, r in enumerate(grid)], 2)

    return build


def _diagonal_of(grid: list[list[Any]], d: int) -> list[Any]:
    rows, cols = len(grid), len(grid[0])
    return [grid[i][i + d] for i in range(rows) if 0 <= i + d < cols]


def _diag(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"diagonal"})
        grid, rank = _tensor(a[0], spelled)
        d = _offset(spelled, a, k)
        if rank == 2:
            return made(_diagonal_of(grid, d), [len(_diagonal_of(grid, d))])
        v = grid[0]
        n = len(v) + abs(d)
        at = {(i, i + d) if d >= 0 else (i - d, i): e for i, e in enumerate(v)}
        return made([at.get((i, j), sp.Integer(0)) for i in range(n) for j in range(n)], [n, n])

    return build


def _diagonal(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"offset", "dim1", "dim2"})
        grid, _ = _tensor(a[0], spelled, (2,))
        d = _offset(spelled, a, k, "offset")
        dim1 = _int(k.get("dim1", a[2] if len(a) > 2 else 0), f"`{spelled}(dim1=...)`", "pass 0 or 1.") % 2
        dim2 = _int(k.get("dim2", a[3] if len(a) > 3 else 1), f"`{spelled}(dim2=...)`", "pass 0 or 1.") % 2
        if dim1 == dim2:
            raise UnsupportedNodeError(f"`{spelled}`: dim1 and dim2 are the same dim (torch raises).\n"
                                       "Fix: pass dim1=0, dim2=1.")
        if dim1 == 1:  # the diagonal of the transpose
            grid = [list(c) for c in zip(*grid)]
        values = _diagonal_of(grid, d)
        return made(values, [len(values)])

    return build


def _trace(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, set())
        x = a[0]
        dims = torch_dims(x)
        if len(dims) != 2 or dims[0] != dims[1]:
            raise UnsupportedNodeError(
                f"`{spelled}` is read of a square matrix; this tensor has shape {tuple(dims)}"
                f"{' (torch raises)' if len(dims) != 2 else ''}.\n"
                "Fix: for a non-square matrix, write `torch.diagonal(X).sum()`.")
        return sp.Trace(x)

    return build


# --------------------------------------------------------------------------- var_mean, std_mean


def _spread_mean(name: str, spelled: str) -> Build:
    """`torch.var_mean(x, dim=None, *, correction=1, keepdim=False)` and its legacy forms
    `(x, unbiased)` and `(x, dim, unbiased, keepdim)`: the (var, mean) tuple."""
    node, node_along = (var, var_along) if name == "var" else (std, std_along)

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        x = a[0]
        dim, keepdim, c = spread_arguments(spelled, a, k)
        spread = along(spelled, x, dim, keepdim, lambda *e: node(c, *e), lambda *e: node_along(c, *e))
        mean = along(spelled, x, dim, keepdim, vm_mean, vm_mean_along)
        return (spread, mean)

    return build


# --------------------------------------------------------------------------- einsum

_MATMULS: dict[str, type] = {}


def _matmul_class(equation: str) -> type:
    """einsum_matmul with the user's equation (`"bi,ij->bj"`), which the generated program writes."""
    if equation not in _MATMULS:
        _MATMULS[equation] = type("einsum_matmul", (einsum_matmul,), {"equation": equation})
    return _MATMULS[equation]


def _flat(x: Any) -> list[Any]:
    return [e for r in grid(x) for e in r]


def _einsum(a: Sequence[Any], k: dict[str, Any]) -> Any:
    _only("torch.einsum", k, set())
    equation = a[0] if a else None
    ops = list(a[1][0:]) if len(a) == 2 and isinstance(a[1], (list, tuple)) else list(a[1:])
    if not isinstance(equation, str):
        raise UnsupportedNodeError("`torch.einsum` takes its equation as a string first.\n"
                                   "Fix: write `torch.einsum(\"ij,jk->ik\", A, B)`.")
    eq = equation.replace(" ", "")
    ins, _, out = eq.partition("->")
    terms = ins.split(",")
    ranks = [len(torch_dims(o)) if is_matrix(o) else 0 for o in ops]
    shape_ok = "->" in eq and len(terms) == len(ops) and all(len(t) == r for t, r in zip(terms, ranks))
    first = {c: chr(ord("i") + n) for n, c in enumerate(dict.fromkeys(c for c in eq if c.isalpha()))}
    canonical = "".join(first.get(c, c) for c in eq)
    if shape_ok and canonical == "ij,jk->ik":
        return _matmul_class(equation)(ops[0], ops[1], evaluate=False)
    if shape_ok and canonical == "ij->ji":
        return transposed(ops[0])
    if shape_ok and canonical in ("ij->ij", "i->i"):
        return ops[0]
    if shape_ok and canonical in ("ij->i", "ij->j"):
        return sum_of([ops[0], 1 if canonical == "ij->i" else 0], {})
    if shape_ok and canonical in ("ij->", "i->"):
        return sum_of([ops[0]], {})
    if shape_ok and canonical == "ii->" and len(set(torch_dims(ops[0]))) == 1:
        n = torch_dims(ops[0])[0]
        return einsum_trace(n, n, *_flat(ops[0]))
    if shape_ok and canonical in ("ij,ij->", "i,i->", "ij,ij->ij", "i,i->i") and torch_dims(ops[0]) == torch_dims(ops[1]):
        if canonical.endswith(("ij", "i")) and not canonical.endswith("->"):
            return sp.HadamardProduct(ops[0], ops[1])
        m, n = shape(ops[0])  # type: ignore[misc]
        return (einsum_dot if canonical == "ij,ij->" else einsum_vdot)(m, n, *_flat(ops[0]), *_flat(ops[1]))
    product = product_einsum(equation, terms, out, ops) if shape_ok else None
    if product is not None:
        return product
    raise UnsupportedNodeError(
        f"`torch.einsum({equation!r}, ...)` of operands of rank {', '.join(map(str, ranks)) or 'none'} is not a pattern "
        "symgrad reads: it reads a matrix product (\"ij,jk->ik\"), a transpose (\"ij->ji\"), a trace (\"ii->\"), the "
        "sum of an elementwise product (\"ij,ij->\", \"i,i->\"), an elementwise product (\"ij,ij->ij\") and sums "
        "(\"ij->i\", \"ij->j\", \"ij->\"), with tensors of rank 1 and 2 (a batched product such as \"bij,bjk->bik\" "
        "has rank 3).\nFix: write it with those, or with torch ops (`A @ B`, `A.sum(1)`), e.g. a loop `A[b] @ B[b]` "
        "over the batch of a rank-3 product.")


# --------------------------------------------------------------------------- sort, topk


@dataclass(frozen=True)
class OrderIndices:
    """The indices torch.sort/topk return: a permutation, not an argmax's index (not `Indices`, which
    gather and W[i] read); symgrad reads none of their uses."""

    spelled: str
    origin: Any = None  # the user's line (a SourceSpan), as `Indices` has it

    def __repr__(self) -> str:
        return f"the indices of {self.spelled}"


MAX_ORDERED = 12  # the order statistic's formula (a Max of Mins over subsets) grows fast past this


def _vector(spelled: str, x: Any) -> None:
    dims = torch_dims(x) if is_matrix(x) else ()
    if len(dims) not in (1, 2):
        raise UnsupportedNodeError(
            f"`{spelled}` is read of a vector or a matrix along one dim; this tensor has shape {tuple(dims)}.\n"
            "Fix: sort a vector, or a matrix along dim=1 (each row) or dim=0 (each column).")


def _along(spelled: str, x: Any, dim: Any) -> int:
    """The dim a sort runs along: 1 (each row of a matrix, or the vector's one dim) or 0 (each column)."""
    rank = len(torch_dims(x))
    d = _int(dim, f"`{spelled}(dim=...)`", "pass dim=0 or -1.")
    if not -rank <= d < rank:
        raise UnsupportedNodeError(f"`{spelled}(dim={d})` of a tensor of rank {rank} (torch raises).\n"
                                   f"Fix: pass a dim from {-rank} to {rank - 1}.")
    return 1 if rank == 1 or d % 2 == 1 else 0


def _ordered(spelled: str, x: Any, how: int, k: int, dim: int = 1) -> MaxResult:
    """torch's values, each group (the vector; each row for dim 1, each column for dim 0 of a matrix)
    ordered on its own: order_at of the group's elements (torch sorts each row as it sorts the row
    alone, ties included: measured, test_sort_of_a_matrix)."""
    rows = grid(x)
    groups = rows if dim == 1 else [list(c) for c in zip(*rows)]
    if len(groups[0]) > MAX_ORDERED:
        raise UnsupportedNodeError(
            f"`{spelled}` of {len(groups[0])} elements: symgrad reads sort and topk of at most {MAX_ORDERED}.\n"
            "Fix: sort a shorter vector.")
    count = len(groups[0]) if how < 2 else k
    values = [[order_at(p, how, k, *g) for p in range(count)] for g in groups]
    if len(torch_dims(x)) == 1:
        return MaxResult(made(values[0], [count]), OrderIndices(spelled))  # type: ignore[arg-type]
    if dim == 0:
        return MaxResult(made([values[j][p] for p in range(count) for j in range(len(groups))], [count, len(groups)]),
                         OrderIndices(spelled))  # type: ignore[arg-type]
    return MaxResult(made([v for g in values for v in g], [len(groups), count]), OrderIndices(spelled))  # type: ignore[arg-type]


def _sort(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"dim", "descending", "stable"})
        _vector(spelled, a[0])
        dim = k.get("dim", a[1] if len(a) > 1 and not isinstance(a[1], (bool, sp.logic.boolalg.BooleanAtom)) else -1)
        descending = k.get("descending", a[2] if len(a) > 2 else False)
        if k.get("stable"):
            raise UnsupportedNodeError(f"`{spelled}(..., stable=True)` is not read (its ties go another way).\n"
                                       "Fix: leave stable out.")
        return _ordered(spelled, a[0], int(bool(descending)), 0, _along(spelled, a[0], dim))

    return build


def _topk(spelled: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _only(spelled, k, {"k", "dim", "largest", "sorted"})
        _vector(spelled, a[0])
        count = _int(k.get("k", a[1] if len(a) > 1 else None), f"`{spelled}`'s k", "pass k as an integer.")
        dim = _along(spelled, a[0], k.get("dim", a[2] if len(a) > 2 else -1))
        largest = k.get("largest", a[3] if len(a) > 3 else True)
        if not bool(k.get("sorted", a[4] if len(a) > 4 else True)):
            raise UnsupportedNodeError(f"`{spelled}(..., sorted=False)` returns its values in an order of torch's own, "
                                       "which symgrad does not read.\nFix: leave sorted out.")
        dims = torch_dims(a[0])
        n = dims[0] if len(dims) == 1 else dims[1] if dim == 1 else dims[0]
        if not 0 < count <= max(n, 0):
            raise UnsupportedNodeError(f"`{spelled}` with k = {count} of {n} elements (torch raises: k must be in "
                                       f"[0, {n}]).\nFix: pass a k from 1 to {n}.")
        return _ordered(spelled, a[0], 2 if bool(largest) else 3, count, dim)

    return build


MORE_SPELLINGS: Final[list[Spelling]] = [
    Spelling("torch.outer", "function", sp.HadamardProduct, _outer("torch.outer"),
             "two vectors: a * b.T, torch.outer itself"),
    Spelling("Tensor.outer", "method", sp.HadamardProduct, _outer("x.outer"), "as torch.outer"),
    Spelling("torch.ger", "function", sp.HadamardProduct, _outer("torch.ger"), "as torch.outer"),
    Spelling("torch.prod", "function", prod, _prod("torch.prod"),
             "every element, or along one dim (keepdim): torch's own call, whose backward is the product of the others"),
    Spelling("Tensor.prod", "method", prod, _prod("x.prod"), "as torch.prod"),
    Spelling("torch.full_like", "function", sp.ImmutableMatrix, _full_like, "a constant tensor of x's shape"),
    Spelling("torch.flip", "function", sp.ImmutableMatrix, _flip("torch.flip"), "the same elements, reversed along dims (along one: torch.flip itself)"),
    Spelling("Tensor.flip", "method", sp.ImmutableMatrix, _flip("x.flip"), "as torch.flip"),
    Spelling("torch.roll", "function", sp.ImmutableMatrix, _roll("torch.roll"),
             "the same elements, shifted along dims (flattened without dims; along one: torch.roll itself)"),
    Spelling("Tensor.roll", "method", sp.ImmutableMatrix, _roll("x.roll"), "as torch.roll"),
    Spelling("torch.tril", "function", sp.ImmutableMatrix, _triangle("torch.tril", True),
             "a matrix's elements on and below diagonal k, 0 above"),
    Spelling("Tensor.tril", "method", sp.ImmutableMatrix, _triangle("x.tril", True), "as torch.tril"),
    Spelling("torch.triu", "function", sp.ImmutableMatrix, _triangle("torch.triu", False),
             "a matrix's elements on and above diagonal k, 0 below"),
    Spelling("Tensor.triu", "method", sp.ImmutableMatrix, _triangle("x.triu", False), "as torch.triu"),
    Spelling("torch.diag", "function", sp.ImmutableMatrix, _diag("torch.diag"),
             "a vector: the diagonal matrix (diagonal k); a matrix: its diagonal k"),
    Spelling("Tensor.diag", "method", sp.ImmutableMatrix, _diag("x.diag"), "as torch.diag"),
    Spelling("torch.diagonal", "function", sp.ImmutableMatrix, _diagonal("torch.diagonal"),
             "a matrix's diagonal (offset, dim1, dim2)"),
    Spelling("Tensor.diagonal", "method", sp.ImmutableMatrix, _diagonal("x.diagonal"), "as torch.diagonal"),
    Spelling("torch.trace", "function", sp.Trace, _trace("torch.trace"), "a square matrix: torch.trace"),
    Spelling("Tensor.trace", "method", sp.Trace, _trace("x.trace"), "as torch.trace"),
    Spelling("torch.einsum", "function", einsum_matmul, _einsum,
             "ij,jk->ik (torch.einsum itself), ij->ji, ii-> and ij,ij->, i,i-> (torch.einsum itself), ij,ij->ij, "
             "ij->i, ij->j, ij->, and a product with transposes (ij,kj->ik, ji,jk->ik, ij,jk->ki, i,j->ij, ij,j->i, "
             "i,ij->j: torch.einsum itself), of tensors of rank 1 and 2 (any letters); another pattern is a sentence"),
    Spelling("torch.sort", "function", order_at, _sort("torch.sort"),
             "of a vector, or a matrix along dim 1 or 0 (at most 12 elements a row or column): (values, indices); the "
             "values torch's own call, the gradient to the index it returns (a tie is a kink); the indices are not read"),
    Spelling("Tensor.sort", "method", order_at, _sort("x.sort"), "as torch.sort"),
    Spelling("torch.topk", "function", order_at, _topk("torch.topk"),
             "of a vector, or a matrix along dim 1 or 0 (at most 12 elements a row or column): (values, indices), as "
             "torch.sort"),
    Spelling("Tensor.topk", "method", order_at, _topk("x.topk"), "as torch.topk"),
    Spelling("torch.var_mean", "function", vm_mean, _spread_mean("var", "torch.var_mean"),
             "(var, mean): var as x.var (correction=, dim=, keepdim=); the mean torch's own (Welford's)"),
    Spelling("torch.std_mean", "function", vm_mean, _spread_mean("std", "torch.std_mean"),
             "(std, mean): std as x.std; the mean as in torch.var_mean"),
]
