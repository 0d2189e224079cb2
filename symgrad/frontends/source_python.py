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


def is_int(v: Any) -> bool:
    return isinstance(v, (int, sp.Integer)) and not isinstance(v, bool)
