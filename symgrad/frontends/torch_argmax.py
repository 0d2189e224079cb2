"""The indices of `x.max(dim)`, `x.min(dim)`, `x.argmax(dim)` and `x.argmin(dim)`, used further.

Indices are integer data of the user's run: piecewise constant in the values they are taken
over, with derivative 0. torch returns, of a group a_0, ..., a_(n-1), the position of the first
largest (smallest) element, so index j is chosen exactly where

    first(j) := a_j > a_i for every i < j, and a_j >= a_i for every i > j      (< and <= for min)

and a value selected by the index is the nested Piecewise

    Piecewise((v_0, first(0)), (Piecewise((v_1, first(1)), ... (v_(n-1), True)), True))

(nested, not one Piecewise of n pieces, so that each condition is computed in the branch that
reads it). Away from a tie exactly one condition holds in a neighbourhood of the point, and the
derivative is that of the value selected: torch's gather and indexing put the gradient back on
the position selected, and none on the values compared. At a tie the chosen condition is on its
threshold: the function there jumps (or has a kink), and the verdict says so on the entries the
tie reaches (a branch decided the difference), never an agreement.

What is read: `x.gather(dim, i)` and `torch.gather(x, dim, i)`, `W[i]` (the rows of W, or the
elements of a vector, picked by i), `W[range(n), i]` (one element per row), and
`torch.nn.functional.one_hot(i, num_classes)`, with `i.unsqueeze(d)`, `i.view(...)`,
`i.reshape(...)`, `i.squeeze()` and `i.long()` on the way. Anything else computed from indices
(a comparison with labels, arithmetic) is a sentence: it is no part of a differentiated value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from .torch_shapes import made, torch_dims
from .torch_values import Spelling, is_matrix, shape

# The most comparisons a selection by indices may write (each a condition of the translation).
MAX_COMPARISONS: Final = 20_000

READ: Final = ("symgrad reads indices in `x.gather(dim, i)`, `W[i]`, `W[range(n), i]` and "
               "`torch.nn.functional.one_hot(i, n)` (with `.unsqueeze`, `.view`, `.reshape`, `.squeeze` and "
               "`.long()` on the way)")


@dataclass(frozen=True)
class Indices:
    """The indices a `max(dim)`/`argmax` returns: `groups[k]` the elements index k is taken over,
    in order; `dims` torch's shape of the index tensor (its positions row-major are the groups);
    `largest` for max/argmax, False for min/argmin."""

    spelled: str
    groups: tuple[tuple[sp.Basic, ...], ...] = ()
    dims: tuple[int, ...] = ()
    largest: bool = True
    origin: Any = None  # the user's line that computed the indices (a SourceSpan), cited for their comparisons

    def refusal(self) -> str:
        return (f"The indices of `{self.spelled}` are integer data that depend on the values at the point "
                f"(no derivative flows through them); {READ}, and nothing else computed from them.\n"
                "Fix: compute it outside the function you compare (e.g. the accuracy), or pick the values "
                "with `.values` or `x.gather(1, i.unsqueeze(1))`, which carry the gradient.")

    def first(self, k: int, j: int) -> sp.Basic:
        """The condition under which index k is j: a_j is the first extreme of its group."""
        g = self.groups[k]
        strict, loose = (sp.StrictGreaterThan, sp.GreaterThan) if self.largest else (sp.StrictLessThan, sp.LessThan)
        return sp.And(*[strict(g[j], g[i]) for i in range(j)], *[loose(g[j], g[i]) for i in range(j + 1, len(g))])

    def pick(self, k: int, values: Sequence[Any]) -> sp.Basic:
        """The value index k selects from `values` (position j: values[j])."""
        n = len(self.groups[k])
        if len(values) < n:
            raise UnsupportedNodeError(
                f"The indices of `{self.spelled}` run to {n - 1}, but they pick from a dimension of size {len(values)} "
                "(torch raises where an index is past it).\nFix: index a tensor whose dimension holds every index.")
        out: Any = sp.sympify(values[n - 1])
        for j in range(n - 2, -1, -1):
            out = sp.Piecewise((values[j], self.first(k, j)), (out, True))
        return out

    def comparisons(self, selections: int) -> None:
        """Refuse a selection that would write more than MAX_COMPARISONS conditions."""
        n = max((len(g) for g in self.groups), default=0)
        if selections * n * n > MAX_COMPARISONS:
            raise UnsupportedNodeError(
                f"Selecting {selections} values by the indices of `{self.spelled}` (over {n} elements each) writes "
                f"about {selections * n * n} comparisons; symgrad reads at most {MAX_COMPARISONS}.\n"
                "Fix: compare a smaller example.")

    def reshaped(self, dims: Sequence[int], spelled: str) -> Indices:
        dims = tuple(int(d) for d in dims)
        if -1 in dims:
            known = math.prod(d for d in dims if d != -1)
            dims = tuple(len(self.groups) // max(known, 1) if d == -1 else d for d in dims)
        if math.prod(dims) != len(self.groups) or len(dims) > 2:
            raise UnsupportedNodeError(f"`{spelled}` of the indices of `{self.spelled}` (shape {self.dims}) to shape "
                                       f"{dims} (torch raises, or symgrad reads ranks 0 to 2).\nFix: keep its elements.")
        return replace(self, dims=dims)


def index_method(ix: Indices, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Indices:
    """`i.unsqueeze(d)`, `i.view(...)`, `i.reshape(...)`, `i.squeeze()`, `i.long()` of indices."""
    spelled = f"{ix.spelled}.{name}(...)"
    flat = [int(a) for a in (args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args)]
    if name in ("long", "int", "clone", "detach") and not flat:
        return ix
    if name == "unsqueeze" and len(flat) == 1:
        d = flat[0] % (len(ix.dims) + 1)
        return ix.reshaped(ix.dims[:d] + (1,) + ix.dims[d:], spelled)
    if name == "squeeze" and not flat:
        return ix.reshaped(tuple(d for d in ix.dims if d != 1), spelled)
    if name in ("view", "reshape") and flat and not kwargs:
        return ix.reshaped(flat, spelled)
    raise not_read(f".{name}", ix.spelled)


def not_read(what: str, spelled: str) -> UnsupportedNodeError:
    """The sentence for a use of indices that is not read."""
    return UnsupportedNodeError(
        f"`{what}` of the indices of `{spelled}` is not read: {READ}, and nothing else computed from them "
        "(they are integer data of the point: no derivative flows through them).\nFix: compute it outside the "
        "function you compare (e.g. the accuracy), or pick the values with `.values`, which carries the gradient.")


def _elements(x: Any) -> list[list[Any]]:
    """The elements of a tensor as rows of its torch shape (a rank-1 tensor: one row)."""
    rows, cols = shape(x)  # type: ignore[misc]
    get = (lambda i, j: x[i, j]) if isinstance(x, sp.MatrixBase) else (lambda i, j: MatrixElement(x, i, j))
    grid = [[get(i, j) for j in range(cols)] for i in range(rows)]
    return [[r[0] for r in grid]] if len(torch_dims(x)) == 1 else grid


grid_of = _elements  # public: the gather by integer data (source_indexing) reads the same grid


def gather(x: Any, dim: Any, ix: Indices) -> Any:
    """`x.gather(dim, i)`: out[r][c] = x[r][i[r][c]] along dim 1, x[i[r][c]][c] along dim 0."""
    xd, idims = torch_dims(x), ix.dims
    if not is_matrix(x) or len(xd) != len(idims) or not isinstance(dim, int) or not -len(xd) <= dim < len(xd):
        raise UnsupportedNodeError(f"`gather` takes an index of the tensor's rank ({len(xd)}) and a dim of it; here the "
                                   f"indices of `{ix.spelled}` have shape {idims} (torch raises).\n"
                                   "Fix: `x.gather(1, i.unsqueeze(1))` for the indices of `x.max(dim=1)`.")
    dim %= len(xd)
    grid = _elements(x)
    if any(n > m for k, (n, m) in enumerate(zip(idims, xd)) if k != dim):
        raise UnsupportedNodeError(f"`gather`'s index (shape {idims}) is larger than the tensor (shape {xd}) "
                                   "in a dimension it does not gather along (torch raises).\nFix: index inside it.")
    ix.comparisons(len(ix.groups))
    if len(xd) == 1:
        values = [ix.pick(k, grid[0]) for k in range(idims[0])]
    elif dim == 1:
        values = [ix.pick(r * idims[1] + c, grid[r]) for r in range(idims[0]) for c in range(idims[1])]
    else:
        values = [ix.pick(r * idims[1] + c, [row[c] for row in grid]) for r in range(idims[0]) for c in range(idims[1])]
    return made(values, list(idims))


def indexed(base: Any, parts: Sequence[Any]) -> Any:
    """`W[i]` (rows of a matrix, elements of a vector) and `W[range(n), i]` (one element per row)."""
    if not is_matrix(base):
        raise UnsupportedNodeError("Indexing a number by indices is not supported: it has no elements.\n"
                                   "Fix: index a tensor.")
    grid, bd = _elements(base), torch_dims(base)
    if len(parts) == 1 and isinstance(parts[0], Indices) and len(parts[0].dims) <= 1:
        ix = parts[0]
        count = len(ix.groups)
        if len(bd) == 1:  # elements of a vector
            ix.comparisons(count)
            return made([ix.pick(k, grid[0]) for k in range(count)], list(ix.dims))
        ix.comparisons(count * bd[1])
        rows = [[ix.pick(k, [row[c] for row in grid]) for c in range(bd[1])] for k in range(count)]
        return made([v for r in rows for v in r], [*ix.dims, bd[1]])
    if len(parts) == 2 and len(bd) == 2 and isinstance(parts[1], Indices) and isinstance(parts[0], (range, list)) \
            and len(parts[1].dims) == 1 and len(parts[0]) == len(parts[1].groups):
        ix = parts[1]
        ix.comparisons(len(ix.groups))
        return made([ix.pick(k, grid[int(r)]) for k, r in enumerate(parts[0])], [len(ix.groups)])
    raise not_read("[...]", next(p.spelled for p in parts if isinstance(p, Indices)))


def one_hot(ix: Indices, num_classes: Any) -> Any:
    """`F.one_hot(i, n)`: 1 where the index is j, else 0 (integers), one row per index."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UnsupportedNodeError(f"`one_hot` of the indices of `{ix.spelled}` needs num_classes as a number: "
                                   "without it torch takes the largest index + 1, which changes with the point.\n"
                                   "Fix: pass it, e.g. `F.one_hot(i, num_classes=10)`.")
    if len(ix.dims) > 1:
        raise UnsupportedNodeError(f"`one_hot` of indices of rank {len(ix.dims)} gives rank 3; symgrad reads ranks "
                                   "up to 2.\nFix: one_hot of a rank-1 index.")
    ix.comparisons(len(ix.groups) * num_classes)
    values = [sp.Piecewise((1, ix.first(k, j)), (0, True)) if j < len(ix.groups[k]) else sp.Integer(0)
              for k in range(len(ix.groups)) for j in range(num_classes)]
    return made(values, [*ix.dims, num_classes])


def by_indices(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """The spelling `name` applied where an argument is indices (`source_calls.apply`)."""
    if name in ("Tensor.gather", "torch.gather"):
        x, dim = args[0], kwargs.get("dim", args[1] if len(args) > 1 else None)
        ix = kwargs.get("index", args[2] if len(args) > 2 else None)
        if isinstance(x, Indices) or not isinstance(ix, Indices):
            raise UnsupportedNodeError(f"`gather` of the indices of `{_spelled(args, kwargs)}` themselves is not "
                                       f"read: {READ}.\nFix: gather the values with them.")
        return gather(x, int(dim) if isinstance(dim, (int, sp.Integer)) else dim, ix)
    if name == "torch.nn.functional.one_hot" and isinstance(args[0], Indices):
        n = kwargs.get("num_classes", args[1] if len(args) > 1 else None)
        return one_hot(args[0], int(n) if isinstance(n, (int, sp.Integer)) else n)
    if name.startswith("Tensor.") and isinstance(args[0], Indices) and \
            not any(isinstance(a, Indices) for a in (*args[1:], *kwargs.values())):
        return index_method(args[0], name.removeprefix("Tensor."), args[1:], kwargs)
    raise not_read(name.replace("Tensor.", ".").replace("torch.nn.functional.", "F."), _spelled(args, kwargs))


def cite_comparisons(result: Any, indices: Sequence[Any], origins: dict[Any, Any]) -> None:
    """The comparisons inside `result` that decide an index are cited at the line that computed the
    indices (`i = x.argmax(dim=1)`), not at the line that selects with them."""
    origin = next((ix.origin for ix in indices if isinstance(ix, Indices) and ix.origin is not None), None)
    if origin is None or not isinstance(result, sp.Basic):
        return
    for node in result.atoms(sp.And, sp.core.relational.Relational):
        origins.setdefault(node, origin)


def _spelled(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    return next(a.spelled for a in (*args, *kwargs.values()) if isinstance(a, Indices))


def _needs_indices(spelled: str) -> Any:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        raise UnsupportedNodeError(f"`{spelled}` is read with an index computed by `x.max(dim)` or `x.argmax(dim)`, "
                                   "or an integer tensor passed as data (labels); an index computed from "
                                   "differentiated values is not read here.\n"
                                   "Fix: pass the labels as an integer tensor argument (`x.gather(1, y.unsqueeze(1))`).")
    return build


ARGMAX_SPELLINGS: list[Spelling] = [
    Spelling("Tensor.gather", "method", sp.Piecewise, _needs_indices("x.gather"),
             "by the indices of x.max(dim)/x.argmax(dim): the value at the index (a tie: a branch on its threshold)"),
    Spelling("torch.gather", "function", sp.Piecewise, _needs_indices("torch.gather"), "as Tensor.gather"),
    Spelling("torch.nn.functional.one_hot", "function", sp.Piecewise, _needs_indices("F.one_hot"),
             "of the indices of x.argmax(dim) (num_classes given): 1 at the index, 0 elsewhere"),
    Spelling("torch.nn.functional.embedding", "function", MatrixElement, _needs_indices("F.embedding"),
             "F.embedding(i, W) of integer data i (rank 0 or 1): the rows W[i] (no padding_idx, max_norm, "
             "scale_grad_by_freq or sparse)"),
]
