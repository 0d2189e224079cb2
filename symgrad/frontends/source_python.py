"""Python idioms around tensors in a torch function's source: what Python itself computes.

`list(range(n))` (D2L's `y_hat[list(range(len(y_hat))), y]`) is a list of ints, as Python makes
it; tuple unpacking (`a, b = x, y`, `a, b = helper(x)`), `for a in x` over a rank-1 tensor,
list comprehensions fed to `torch.stack`/`torch.cat`/`sum`, and `assert` (checked on the run,
never part of the mathematics) are read by the statement translator with the pieces here.
"""

from __future__ import annotations

import ast
from typing import Any, Final

import sympy as sp

from . import source_indexing as ix
from . import torch_names as tn
from .source_state import Refuse

# The longest rank-1 tensor a `for a in x` loop is read over (each element is one pass of the loop).
MAX_ITEMS: Final = 64


def listed(args: list[Any], node: ast.AST) -> list[Any]:
    """`list(range(...))` or `list` of a tuple or list: the Python list, as Python makes it."""
    if len(args) == 1 and isinstance(args[0], (range, tuple, list)):
        return list(args[0])
    raise Refuse(node, "`list(...)` is read here of a `range(...)`, a tuple or a list only (`list` of a tensor "
                       "makes a list of its rows).\nFix: index the tensor instead, e.g. `x[i]`.")


def items(value: Any, count: int | None, node: ast.AST) -> list[Any] | None:
    """The values of a tuple or list being unpacked (None: not a Python sequence)."""
    if isinstance(value, (tuple, list)):
        if count is not None and len(value) != count:
            raise Refuse(node, f"This unpacks {len(value)} values into {count} names (Python raises ValueError).\n"
                               "Fix: name as many targets as there are values.")
        return list(value)
    return None


def unpack_targets(node: ast.Assign) -> list[str] | None:
    """`a, b = ...`: the names assigned (None where the target is not a tuple of names)."""
    target = node.targets[0] if len(node.targets) == 1 else None
    if isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in target.elts):
        return [e.id for e in target.elts]  # type: ignore[attr-defined]
    return None


def unpack(tr: Any, names: list[str], node: ast.Assign) -> None:
    """`a, b = x, y` or `a, b = helper(x)` (a tuple), or `a, b = t` of a rank-1 tensor: every value
    first, then each name bound, as Python does (`a, b = b, a` swaps)."""
    value_node = node.value
    if isinstance(value_node, (ast.Tuple, ast.List)) and not any(isinstance(e, ast.Starred) for e in value_node.elts):
        nodes: list[ast.expr] = list(value_node.elts)
        values = items([tr.expressions.value(e) for e in nodes], len(names), node)
    else:
        whole = tr.expressions.value(value_node)
        values = items(whole, len(names), node)
        if values is None and tn.is_matrix(whole):
            rows = ix.torch_shape(whole)
            if len(rows) != 1 or rows[0] != len(names):
                raise Refuse(node, f"This unpacks a tensor of shape {tuple(rows)} into {len(names)} names; symgrad "
                                   "unpacks a rank-1 tensor into as many names as it has elements (Python raises "
                                   "ValueError on another count).\nFix: index the tensor, e.g. `a = t[0]`.")
            values = [tr.state.materialise(ix.index(whole, [k], node), where=node) for k in range(len(names))]
        if values is None:
            raise Refuse(node, "Only a tuple, a list or a rank-1 tensor can be unpacked here.\n"
                               "Fix: assign each value to its own name.")
        nodes = [value_node] * len(names)
    if tr.state.pure or tr.state.matrix_mode:
        for name, v in zip(names, values):
            tr.state.env[name] = v
        return
    mine = {tr.state.vars.get(tr.state.prefix + n) for n in names} - {None}
    for name, v, vnode in zip(names, values, nodes):
        if isinstance(v, sp.Symbol) and v in mine:  # `a, b = b, a`: the old value kept aside first
            v = tr.state.materialise(v, target=tr.state.fresh(name))
        tr.bind(name, v, vnode)


def is_int(v: Any) -> bool:
    return isinstance(v, (int, sp.Integer)) and not isinstance(v, bool)
