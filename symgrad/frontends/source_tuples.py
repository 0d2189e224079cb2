"""A function that returns several values (`return x + y, x * y`, `return X[-1], X[1:3]`), read
as ONE output: the values flattened and concatenated in order, each scalar one element and each
tensor its elements row-major, the mathematics of `torch.cat([v.reshape(-1) for v in outputs])`.

The output is then a column (as a rank-1 tensor's is), so that compare() gives the Jacobian of
that vector: one entry per output element and input element. A nested tuple is flattened in the
same order (`return a, (b, c)` is `a, b, c`); a one-element tuple `return (v,)` is v's elements.
A value that is not a tensor of the inputs (`return x, 1`, `return x, None`) is refused: torch
gives no gradient of it.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from . import torch_values as tv
from .source_state import Refuse, is_bool
from .torch_shapes import MAX_ELEMENTS, torch_dims


@dataclass(frozen=True, slots=True)
class Returned:
    """What a returned tuple's output column holds: `labels[k]` names its element k (`out[1][0, 2]`:
    element (0, 2) of the second value), `values` each returned value and the user's expression."""

    labels: tuple[str, ...]
    values: tuple[tuple[str, str], ...]

    def sentence(self, most: int = 4) -> str:
        """`output: the 2 returned values in order, flattened (out[0] = A.mean(), out[1] = ...)`."""
        if not self.values:
            return "output: the returned values in order, flattened"
        shown = ", ".join(f"{k} = {_short(text)}" for k, text in self.values[:most])
        more = f", ... {len(self.values) - most} more" if len(self.values) > most else ""
        return f"output: the {len(self.values)} returned values in order, flattened ({shown}{more})"


    def shaped(self, shapes: Sequence[tuple[int, ...]]) -> Returned:
        """The labels for the shapes the user's own run returned (torch holds `A.mean(axis=0)` as
        rank 1, where the translation's row cannot tell); as they were where those do not fit."""
        labels = tuple(label for (name, _), dims in zip(self.values, shapes) for label in _labels(name, dims))
        return Returned(labels, self.values) if len(shapes) == len(self.values) and len(labels) == len(self.labels) else self


def _labels(name: str, dims: Sequence[int]) -> list[str]:
    """Each element of a value of torch shape `dims`, row-major: `out[1]`, `out[1][2]`, `out[1][0, 2]`."""
    return [name + (f"[{', '.join(str(i) for i in idx)}]" if idx else "")
            for idx in itertools.product(*(range(d) for d in dims))]


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def flattened_return(node: ast.Return, value: Callable[[ast.expr], Any]) -> tuple[sp.ImmutableMatrix, Returned]:
    """The column of every element of the returned tuple `node.value`, in order, and its labels;
    `value` translates one returned expression."""
    assert isinstance(node.value, ast.Tuple)
    elements: list[sp.Basic] = []
    labels: list[str] = []
    values: list[tuple[str, str]] = []
    _flatten(node.value, value, elements, (), labels, values)
    if len(elements) > MAX_ELEMENTS:
        raise Refuse(node, f"The returned tuple has {len(elements)} elements in all; symgrad reads returned "
                           f"tuples of at most {MAX_ELEMENTS}.\nFix: return fewer values, or compare each one on its own.")
    if not elements:
        raise Refuse(node, "The function returns an empty tuple: there is nothing to differentiate.\n"
                           "Fix: return the values to compare (`return a, b`).")
    return sp.ImmutableMatrix(len(elements), 1, elements), Returned(tuple(labels), tuple(values))


def _flatten(tup: ast.Tuple, value: Callable[[ast.expr], Any], into: list[sp.Basic], at: tuple[int, ...],
             labels: list[str], values: list[tuple[str, str]]) -> None:
    for k, e in enumerate(tup.elts):
        where = at + (k,)
        if isinstance(e, ast.Starred):
            raise Refuse(e, f"out{_index(where)} unpacks `*{ast.unparse(e.value)}` into the returned tuple: "
                            "symgrad reads the values written out.\nFix: return them one by one, or "
                            "`torch.cat(...)` them into one tensor.")
        if isinstance(e, ast.Tuple):
            _flatten(e, value, into, where, labels, values)
            continue
        if isinstance(e, ast.Constant) and (e.value is None or isinstance(e.value, (bool, int, float, complex, str))):
            raise Refuse(e, f"out{_index(where)} of the returned tuple is the Python constant {e.value!r}, not a "
                            "tensor: torch gives no gradient of it, so it has no place in the output compared.\n"
                            f"Fix: leave it out of the `return`, or return `torch.tensor({e.value!r}.0)` if "
                            "it is meant as a value.")
        v = value(e)
        got = _elements(e, v, where)
        into.extend(got)
        name = f"out{_index(where)}"
        values.append((name, ast.unparse(e)))
        dims = torch_dims(v)
        labels.extend(_labels(name, dims))


def _elements(e: ast.expr, v: Any, where: tuple[int, ...]) -> Sequence[sp.Basic]:
    if tv.is_matrix(v):
        rows, cols = (int(n) for n in v.shape)
        if rows * cols > MAX_ELEMENTS:
            raise Refuse(e, f"out{_index(where)} of the returned tuple has {rows * cols} elements; symgrad reads "
                            f"returned tuples of at most {MAX_ELEMENTS} elements in all.\nFix: return fewer values, "
                            "or compare each one on its own.")
        if isinstance(v, sp.MatrixBase):
            return list(v)  # row-major, as torch's reshape(-1)
        return [MatrixElement(v, i, j) for i in range(rows) for j in range(cols)]
    if v is None or isinstance(v, (tuple, list, str)) or is_bool(v) or isinstance(v, bool):
        raise Refuse(e, f"out{_index(where)} of the returned tuple, `{ast.unparse(e)}`, is "
                        f"{'None' if v is None else 'not a number or a tensor'}: symgrad compares tensors.\n"
                        "Fix: return only tensors (and numbers computed from them).")
    return [sp.sympify(v)]


def flat(out: Any) -> list[Any]:
    """The leaves of a returned (possibly nested) tuple or list, in order; any other value alone."""
    if isinstance(out, (tuple, list)):
        return [leaf for v in out for leaf in flat(v)]
    return [out]


def _index(where: tuple[int, ...]) -> str:
    return "".join(f"[{k}]" for k in where)
