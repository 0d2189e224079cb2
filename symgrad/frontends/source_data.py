"""Data the source reader holds as values, never as inputs (issue 20, items 2 and 3).

A tensor argument that is not differentiated is data (`source_state.Data`): integer and boolean
tensors (labels, counts, masks), and a floating tensor of rank 3 or 4 that does not require grad
(an image batch (256, 1, 28, 28)). The reader computes with data as numpy computes, which is what
torch computes on such values:

- `X.reshape(-1, 784)`, `X.view(X.shape[0], -1)`, `torch.flatten(X, 1)`, `X.flatten()`,
  `torch.reshape(X, s)`: the array reshaped in C order (torch's order), still data;
- `y > 0`, `y == k`, `X != 0`: a boolean array (a mask, `x[mask]` selects by it);
- floating data of rank 2 meeting a differentiated value (`X2 @ W`, `X2 * w`): a DATA INPUT of
  the program (`DataLeaf`), the `MatrixSymbol` `X_flat` whose value is bound at the point exactly
  as an input tensor that is not differentiated is bound (exact: every float64 and float32 is a
  rational number); never differentiated, never in `wrt`. The reading carries each leaf's values
  (`Translation.data`), which the fidelity check, compare(), sweeps and the reports bind. Floating
  data of rank 1 with more than GLOBAL_LEAF_ELEMENTS elements is a data leaf too, by the same rules
  (held as the (n, 1) column a rank-1 input is held as, rank 1 to the reader: it broadcasts as a
  row). Where the translator gives no state, for data of rank 0 (one number) and for a short
  vector, the constant tensor of its values, as a small tensor read from a global is. A floating
  global tensor of rank 1 or 2 with more than GLOBAL_LEAF_ELEMENTS elements (a fixed projection, a
  target vector) is a data leaf too, named after the global (`global_leaf`). Data of rank 3 or more there is a sentence naming the line
  (symgrad's tensors have rank 0, 1 or 2), and so is a differentiated value of rank 3 or more
  (`torch_shapes`).

Data is data wherever it goes: an argument of a function, of a module's `forward` or of a function
that takes a model (`trace._is_batch`), `nn.Flatten` of it (`modules.ModuleRef.flatten`, as
`torch.flatten(X, start_dim, end_dim)` here), and an argument passed on into the user's helpers and
methods, where reassigning it (`Y = Y.reshape((-1,))`) rebinds the name to the new data, as at top level
(`source.inline` makes no program variable of it).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import sympy as sp
import torch

from ..program.program import DataMatrix
from . import torch_names as tn
from .source_state import Data, Refuse

# The spellings that reshape: on data, numpy's reshape in C order.
RESHAPES: Final = frozenset({"Tensor.reshape", "Tensor.view", "torch.reshape", "Tensor.flatten", "torch.flatten"})

# Data methods read as the spellings above, or computed on the data (`computed`).
DATA_METHODS: Final = frozenset({"reshape", "view", "flatten", "unsqueeze", "squeeze", "sum", "mean", "float", "double",
                                 "long", "int", "bool", "abs", "max", "min", "count_nonzero", "clamp", "add", "sub",
                                 "mul", "div", "neg", "square", "sqrt"})

_COMPARE: Final = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
                   ast.Eq: operator.eq, ast.NotEq: operator.ne}


def is_data_operand(v: Any) -> bool:
    return isinstance(v, Data) or (isinstance(v, (int, float)) and not isinstance(v, bool))


def compare(op: ast.cmpop, left: Any, right: Any, node: ast.AST) -> Data:
    """`y > 0`, `y == k` of data (with numbers or data): a boolean array, still data."""
    if not (is_data_operand(left) and is_data_operand(right)):
        raise Refuse(node, "This comparison mixes data (a tensor passed as data: labels, a mask, an image batch) "
                           "with a differentiated value; symgrad computes masks from data only.\n"
                           "Fix: compare data with data or numbers, or use `torch.where(cond, a, b)` on the "
                           "differentiated value.")
    fn = _COMPARE.get(type(op))
    if fn is None:
        raise Refuse(node, "Only <, <=, >, >=, == and != comparisons are supported.")
    a, b = (v.array if isinstance(v, Data) else v for v in (left, right))
    try:
        out = np.asarray(fn(a, b))
    except ValueError as err:
        raise Refuse(node, f"These data do not broadcast ({err}); torch raises here.\nFix: compare data of "
                           "shapes that broadcast.") from None
    name = next(v.name for v in (left, right) if isinstance(v, Data))
    return Data(out, name)


# What torch computes on data alone (every tensor argument data, the others Python numbers): the
# arithmetic operators and the methods that count, convert or reduce (`mask.sum()`, `y + 1`,
# `X / 255`, `y.float()`), each run by torch itself on the data, so that its dtype and values
# are torch's (an integer tensor divided is the default floating dtype).
_OPERATORS: Final = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
                     "**": operator.pow, "@": operator.matmul, "unary -": operator.neg}
_DATA_METHODS: Final = DATA_METHODS - {"reshape", "view", "flatten", "unsqueeze", "squeeze"}


def of_data(spelling: Any, args: Sequence[Any], kwargs: dict[str, Any], node: ast.AST) -> Data | None:
    """What a spelling computes of data alone: a reshape (`reshaped`), or torch's value (`computed`);
    None for any other spelling or where a value of the mathematics takes part."""
    data = reshaped(spelling, args, kwargs, node)
    return computed(spelling, args, kwargs, node) if data is None else data


def computed(spelling: Any, args: Sequence[Any], kwargs: dict[str, Any], node: ast.AST) -> Data | None:
    """What an op of data alone computes (`mask.sum()`, `y + 1`, `X / 255`, `counts.float()`): data,
    its values as torch gives them; None where a value of the mathematics (or anything other than
    data and Python numbers) takes part, or the op is not one of these."""
    name = spelling.name
    method = name.split(".", 1)[1] if name.startswith(("Tensor.", "torch.")) else None
    if name not in _OPERATORS and method not in _DATA_METHODS:
        return None
    values = [*args, *kwargs.values()]
    if not any(isinstance(v, Data) for v in values) or not all(
            isinstance(v, (Data, bool, int, float, np.number)) or v is None for v in values):
        return None
    data = next(v for v in values if isinstance(v, Data))
    tensors = [torch.from_numpy(np.ascontiguousarray(v.array)) if isinstance(v, Data) else v for v in args]
    named = {k: torch.from_numpy(np.ascontiguousarray(v.array)) if isinstance(v, Data) else v for k, v in kwargs.items()}
    try:
        if name in _OPERATORS:
            out = _OPERATORS[name](*tensors)
        elif name.startswith("Tensor."):
            out = getattr(tensors[0], method)(*tensors[1:], **named)
        else:
            out = getattr(torch, method)(*tensors, **named)
    except (RuntimeError, TypeError, ValueError) as err:
        raise Refuse(node, f"torch raises computing `{name.replace('Tensor.', '.')}` of the data `{data.name}`: "
                           f"{str(err).splitlines()[0]}\nFix: compute it as torch accepts (outside the function "
                           "if need be).") from None
    if isinstance(out, tuple) or not isinstance(out, torch.Tensor):  # a pair (values, indices) of a max along a dim
        return None
    return Data(out.numpy(), data.name)


def reshaped(spelling: Any, args: Sequence[Any], kwargs: dict[str, Any], node: ast.AST) -> Data | None:
    """A reshape of data (`X.reshape(-1, 784)`, `torch.flatten(X, 1)`): the array in C order, still
    data; None where the spelling is no reshape of data."""
    if spelling.name not in RESHAPES or not args or not isinstance(args[0], Data):
        return None
    x: Data = args[0]
    array = x.array
    if spelling.name.endswith("flatten"):
        start = _int(kwargs.get("start_dim", args[1] if len(args) > 1 else 0), node)
        end = _int(kwargs.get("end_dim", args[2] if len(args) > 2 else -1), node)
        if array.ndim == 0:
            return Data(array.reshape(1), x.name)
        start, end = (d % array.ndim if -array.ndim <= d < array.ndim else _out_of_range(d, array.ndim, node)
                      for d in (start, end))
        if start > end:
            raise Refuse(node, f"flatten's start_dim {start} comes after end_dim {end} (torch raises).\n"
                               "Fix: give start_dim <= end_dim.")
        dims = (*array.shape[:start], math.prod(array.shape[start:end + 1]), *array.shape[end + 1:])
        return Data(array.reshape(dims), x.name)
    sizes: Any = list(args[1:]) if len(args) > 1 else kwargs.get("shape", kwargs.get("size", ()))
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = list(sizes[0])
    dims = [_int(d, node) for d in sizes]
    try:
        return Data(array.reshape(dims), x.name)  # numpy's C order is torch's
    except ValueError:
        raise Refuse(node, f"`{x.name}` has {array.size} elements, which do not fit the shape {tuple(dims)} "
                           "(torch raises).\nFix: give sizes whose product is the number of elements.") from None


@dataclass(frozen=True)
class DataLeaf:
    """Floating data of rank 2 read as a data input of the program: its symbol (`DataMatrix`, which
    says what it is) and its values (float64, exactly the data's floats)."""

    symbol: DataMatrix
    array: np.ndarray


def as_constants(args: Sequence[Any], node: ast.AST, spelling: Any, state: Any = None) -> list[Any]:
    """The operands of an op, floating data among them (an image batch reshaped to a matrix)
    written as data leaves (`state` given; rank 2) or constant tensors of its values; floating data
    of rank 3 or more is a sentence. Integer and boolean data stay data (the spellings that read
    labels and masks read them so), except as an operand of arithmetic with a value of the
    mathematics (`x * mask`, `w @ counts`, `y - x`): torch promotes them there to the other
    operand's floating dtype, a copy of their values (True is 1.0), and so does this."""
    mixed = any(isinstance(a, sp.Basic) and not isinstance(a, sp.Number) for a in args)
    promoted = getattr(spelling, "name", None) in _PROMOTING and mixed
    if mixed and getattr(spelling, "name", None) in _PRODUCTS:
        whole = next((a for a in args if isinstance(a, Data) and a.array.dtype.kind != "f"), None)
        if whole is not None:
            raise Refuse(node, f"`{whole.name}` is {whole.array.dtype} data in a matrix product with a floating tensor: "
                               "torch does not promote there (it raises: the operands must have the same dtype).\n"
                               f"Fix: convert it first, e.g. `{whole.name}.double()` (or `.float()`, as the other operand).")
    return [_named(_constant(_as_float(a) if promoted else a, node, spelling, state), a, promoted, state)
            if isinstance(a, Data) and (promoted or a.array.dtype.kind == "f") else a for a in args]


def name_constant(state: Any, name: str, value: Any, what: str = "a constant tensor your code makes") -> Any:
    """A constant tensor the user's code names (`mask = torch.tensor([1, 0, 1])`, a global `M`)
    named so in the generated program, under a comment saying `what` it is (the first name wins)."""
    if isinstance(value, sp.ImmutableDenseMatrix) and not value.free_symbols and name.isidentifier():
        where = f" at {place(state.span)}" if state.span is not None else ""
        state.constant_names.setdefault(value, (name, f"{name}: {what}{where}"))
    return value


def _named(value: Any, d: Data, promoted: bool, state: Any) -> Any:
    """A constant tensor made of the user's data (`x * mask`: mask's values as floats) named after
    the user's variable in the generated program (`mask = torch.tensor(...)`, a comment saying what
    it is), through `state.constant_names` (value -> (name, comment): equal values, one name)."""
    if state is not None and isinstance(value, sp.ImmutableDenseMatrix) and d.name.isidentifier():
        where = f" at {place(state.span)}" if state.span is not None else ""
        how = (f"{d.array.dtype} data promoted to floats as torch does in arithmetic (True is 1.0)"
               if promoted and d.array.dtype.kind != "f" else f"{d.array.dtype} data")
        state.constant_names.setdefault(value, (d.name, f"{d.name}: your {how}{where}, never differentiated"))
    return value


# The arithmetic where torch promotes integer and boolean tensors to the floating operand's dtype.
_PROMOTING: Final = frozenset({"*", "+", "-", "/", "**", "torch.mul", "torch.add", "torch.sub", "torch.div",
                               "Tensor.mul", "Tensor.add", "Tensor.sub", "Tensor.div"})


# The matrix products, where torch promotes nothing.
_PRODUCTS: Final = frozenset({"@", "torch.matmul", "Tensor.matmul", "torch.mm", "Tensor.mm", "torch.mv", "Tensor.mv",
                              "torch.dot", "Tensor.dot"})


def _as_float(d: Data) -> Data:
    """Integer or boolean data as floats, as torch promotes it (each value converted once)."""
    return d if d.array.dtype.kind == "f" else Data(d.array.astype(np.float64), d.name)


def changed_by_loop(d: Any, state: Any = None) -> Any:
    """Floating data of rank <= 2 that a loop or branch rebinds (`for i in range(k): X = X * 2`):
    its data leaf (rank 2, `state` given) or the constant tensor of its values, so that the
    program's variable holds it and each pass reads the last; any other value as it is (integer
    data, data of rank 3 or more stay data)."""
    if isinstance(d, Data) and d.array.dtype.kind == "f" and d.array.ndim <= 2:
        return _constant(d, ast.Pass(), None, state)
    return d


def leaves_of(state: Any) -> dict[str, DataLeaf]:
    """The data leaves a reading made, by name, in the order it made them."""
    return {leaf.symbol.name: leaf for leaf in state.data_leaves.values()}


def leaf_values(leaves: Mapping[str, DataLeaf]) -> dict[str, np.ndarray]:
    """Each data leaf's value, as the point binds it (float64, exact)."""
    return {name: leaf.array for name, leaf in leaves.items()} if leaves else {}


def _leaf(d: Data, state: Any) -> DataMatrix:
    """The data leaf of `d` (the same array read again is the same leaf)."""
    array = d.array
    held: dict[Any, DataLeaf] = state.data_leaves
    key = (d.name, array.shape, array.dtype.str, array.__array_interface__["data"][0], array.strides)
    if key in held:
        return held[key].symbol
    taken = {*state.names_in_fn, *state.vars, *(getattr(s, "name", "") for s in state.inputs),
             *(leaf.symbol.name for leaf in held.values())}
    base = f"{d.name}_flat"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    where = f" at {place(state.span)}" if state.span is not None else ""
    sym = DataMatrix(name, *_column(array).shape, f"{d.name} ({array.dtype}) reshaped to {tuple(array.shape)}, data "
                                                  f"(never differentiated), first used{where}")
    held[key] = DataLeaf(sym, np.array(_column(array), dtype=np.float64))  # a copy: never the memory of the user's tensor
    return _rank1(sym, array)


def _column(array: np.ndarray) -> np.ndarray:
    """Data of rank 1 as the (n, 1) column a rank-1 input is held as (the program is passed it so)."""
    return array.reshape(-1, 1) if array.ndim == 1 else array


def _rank1(sym: DataMatrix, array: np.ndarray) -> DataMatrix:
    """The leaf of rank-1 data is rank 1 to the reader: it broadcasts as a row, as torch's does."""
    if array.ndim == 1:
        tn.RANK1.set(tn.RANK1.get() | {sym})
    return sym


# Floating data, and a floating global tensor, of rank 1 or 2 with more elements than this is a data
# leaf (a global's named after it: a fixed projection matrix, a target vector); a smaller one is the
# constant matrix of its values.
GLOBAL_LEAF_ELEMENTS: Final = 64


def global_leaf(array: np.ndarray, name: str, state: Any) -> DataMatrix | None:
    """The data leaf of a floating global tensor of rank 2 (`P` in `X @ P`, read from outside the
    function) or rank 1 (a target `y` of 10,000 values) with more than GLOBAL_LEAF_ELEMENTS
    elements; None for any other value."""
    if array.ndim not in (1, 2) or array.dtype.kind != "f" or array.size <= GLOBAL_LEAF_ELEMENTS:
        return None
    held: dict[Any, DataLeaf] = state.data_leaves
    key = ("global", name, array.shape, array.dtype.str, array.__array_interface__["data"][0], array.strides)
    if key in held:
        return _rank1(held[key].symbol, array)
    taken = {*state.vars, *(getattr(s, "name", "") for s in state.inputs), *(leaf.symbol.name for leaf in held.values())}
    base = name if name.isidentifier() else "global_data"
    leaf_name, k = base, 1
    while leaf_name in taken:
        k += 1
        leaf_name = f"{base}_{k}"
    sym = DataMatrix(leaf_name, *_column(array).shape, f"the global tensor {name} ({array.dtype}, {tuple(array.shape)}), "
                                                         "data (never differentiated)")
    held[key] = DataLeaf(sym, np.array(_column(array), dtype=np.float64))
    return _rank1(sym, array)


def place(span: Any) -> str:
    """A `SourceSpan` without its line's text (`model.py:12`, `In [3], line 4`)."""
    text = str(span)
    return text[:len(text) - len(span.text)].strip() if span.text else text


def _constant(d: Data, node: ast.AST, spelling: Any, state: Any = None) -> Any:
    array = d.array
    if array.ndim > 2:
        what = f"`{spelling.name.replace('Tensor.', '.')}`" if spelling.kind != "operator" else f"`{spelling.name}`"
        raise Refuse(node, f"`{d.name}` is data of shape {tuple(array.shape)} (rank {array.ndim}), used here by {what} "
                           "before it is reshaped; symgrad computes with tensors of rank 0, 1 and 2.\n"
                           f"Fix: flatten it first, e.g. `{d.name}.reshape({d.name}.shape[0], -1)` or "
                           f"`torch.flatten({d.name}, 1)` (what `nn.Flatten` does).")
    if array.ndim == 0:
        return sp.Float(float(array))
    if state is not None and (array.ndim == 2 or array.ndim == 1 and array.size > GLOBAL_LEAF_ELEMENTS):
        return _leaf(d, state)  # a batch reshaped to a matrix; a long vector (a target of 10,000 values)
    rows = array.reshape(-1, 1) if array.ndim == 1 else array
    matrix = sp.ImmutableMatrix([[sp.Float(float(v)) for v in row] for row in rows])
    if array.ndim == 1:
        tn.RANK1.set(tn.RANK1.get() | {matrix})  # torch's rank-1 tensor: it broadcasts as a row
    return matrix


def _int(v: Any, node: ast.AST) -> int:
    if isinstance(v, (int, np.integer, sp.Integer)) and not isinstance(v, bool):
        return int(v)
    raise Refuse(node, "A reshape of data takes constant sizes.\nFix: write the sizes as numbers, or as `x.shape[0]`.")


def _out_of_range(d: int, ndim: int, node: ast.AST) -> int:
    raise Refuse(node, f"Dimension {d} is outside the data's {ndim} dimensions (torch raises).\n"
                       "Fix: pass a dimension the tensor has.")
