"""In-place updates in a torch function's source: what changes a tensor, and what it is read as.

An assignment into an item or an attribute of a Python object (`CALLS["n"] += 1`) is a side effect,
not a value the function computes, and is refused with one sentence.
"""

from __future__ import annotations

import ast
from typing import Any

from .source_state import IN_PLACE, Refuse


def item_target(tr: Any, node: ast.stmt, target: ast.expr) -> None:
    """An assignment into an item or an attribute: of a Python object (a dict counter
    `CALLS["n"] += 1`, `self.steps += 1`) a side effect, of a tensor an in-place change."""
    if not isinstance(target, (ast.Subscript, ast.Attribute)):
        return
    base = target.value
    while isinstance(base, (ast.Subscript, ast.Attribute)):
        base = base.value
    written = tr.code_of(target)
    obj = None
    if isinstance(base, ast.Name) and base.id not in tr.state.env:
        obj = tr.expressions.calls.python_object(base.id)
    if obj is not None and not is_tensor(obj):
        what = (f"an item of the Python {type(obj).__name__} `{base.id}`" if isinstance(target, ast.Subscript)
                else f"the attribute `{written}` of the Python {type(obj).__name__} `{base.id}`")  # type: ignore[union-attr]
        raise Refuse(node, f"`{tr.code_of(node)}` changes {what}, defined outside the function: a side effect "
                           "on Python state, not a value the function computes, so it has no derivative and "
                           "symgrad does not read it.\nFix: keep that bookkeeping outside the function you "
                           "compare (count the calls in the code that calls it).")
    if isinstance(target, ast.Attribute):
        raise Refuse(node, f"`{tr.code_of(node)}` changes the attribute `{written}`: a side effect, not a value "
                           "the function computes.\nFix: assign the value to a name of its own.")
    raise Refuse(node, f"`{tr.code_of(node)}` assigns into a tensor element, which changes the tensor in place. "
                 + IN_PLACE)


def is_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "requires_grad")
