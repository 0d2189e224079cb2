"""In-place updates in a torch function's source: what changes a tensor, and what it is read as.

- `y.add_(1)`, `y.mul_(2)`, `y.clamp_(min=0)`, `y.relu_()`, `y.zero_()` and `y *= 2` on a tensor
  that is not a leaf read as the out-of-place op assigned back to `y` (torch computes the same
  values, and its backward the same gradients, where it can run it at all: where an op needed
  the old value for its backward, torch's backward raises, and the fidelity check, which runs
  it, refuses the reading).
- `a[i] = v`, `a[i, j] = v`, `a[1:3] = v`, `a[mask] = v` (a boolean data tensor) and
  `a[i] += v` are an index-put: a new tensor whose overwritten elements are v (v's gradient flows
  into them) and whose other elements are a's (torch's gradient of a is 0 where it was
  overwritten); a mask computed from tensors (`a[x > 0] = v`) is `torch.where(mask, v, a)`.
- `x.data` is x's value read behind autograd's back: `no_grad(x)`, a graph-break finding at
  that line. Changing it (`x.data *= 100`, `x.data.zero_()`) changes the value autograd uses
  without the graph knowing: one sentence (symgrad has no node for a value whose gradient is
  another value's).
- In-place on a leaf that requires grad (an input of the function, or a name bound to it) is
  torch's own error, said in torch's words.
- An assignment into an item or an attribute of a Python object (`CALLS["n"] += 1`) is a side
  effect, not a value the function computes, and is refused with one sentence.
"""

from __future__ import annotations

import ast
from typing import Any, Final

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from . import source_indexing as ix
from . import torch_names as tn
from .source_state import IN_PLACE, Data, Refuse, TranslationState, to_sympy
from .source_unfilled import Unfilled
from ..program.primitives import no_grad

# torch's own words for an in-place change of a leaf that requires grad (RuntimeError).
LEAF: Final = "a leaf Variable that requires grad is being used in an in-place operation"


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


def is_leaf(state: TranslationState, name: str) -> bool:
    """`name` holds an input of the function itself (a leaf that requires grad), not a copy."""
    key = state.prefix + name
    return key in state.leaves and key not in state.copied


def track(state: TranslationState, name: str, value_node: ast.AST | None) -> None:
    """After `name = <value_node>`: whether name is a copy (computed) or the leaf itself (an alias)."""
    key = state.prefix + name
    for k in [k for k, v in state.aliases.items() if key in (k, v)]:  # a new value: no longer the same tensor
        del state.aliases[k]
    if isinstance(value_node, ast.Name) and is_leaf(state, value_node.id):
        state.leaves.add(key)
        state.copied.discard(key)
    else:
        state.copied.add(key)
        if isinstance(value_node, ast.Name) and value_node.id != name and tn.is_matrix(state.env.get(name)):
            state.aliases[key] = state.prefix + value_node.id


def refuse_alias(tr: Any, name: str, node: ast.AST) -> None:
    """An in-place change of a tensor that has another name (`b = a`): torch changes both."""
    key = tr.state.prefix + name
    others = [k for k, v in tr.state.aliases.items() if v == key] + [v for k, v in tr.state.aliases.items() if k == key]
    if others:
        other = others[0][len(tr.state.prefix):]
        raise Refuse(node, f"`{tr.code_of(node)}` changes `{name}` in place, and `{name}` is the same tensor as `{other}` "
                           f"(an assignment of one name to the other makes no copy): torch changes both, and symgrad "
                           f"reads the change of one name only.\nFix: `{name} = {other}.clone()` if a copy is meant, "
                           "or change the tensor under one name.")


def refuse_leaf(tr: Any, name: str, node: ast.AST) -> None:
    if is_leaf(tr.state, name):
        raise Refuse(node, f"`{tr.code_of(node)}` changes `{name}` in place, and `{name}` is an input of the function "
                           f"(a leaf tensor that requires grad): torch raises RuntimeError here ({LEAF}).\n"
                           f"Fix: work on a copy (`{name} = {name}.clone()` first), or write it out of place "
                           f"(`y = {name} * 2` instead of `{name} *= 2`).")


def behind_autograd(tr: Any, node: ast.AST) -> Refuse:
    """`x.data *= 100`, `x.data.zero_()`: a change autograd does not see."""
    return Refuse(node, f"`{tr.code_of(node)}` changes a tensor through `.data`, behind autograd's back (a graph "
                        "break): later operations use the new values, but the backward pass computes as if the "
                        "old ones were there, so the gradient is not the derivative of what the function computes; "
                        "symgrad reads `.data` only to read a value off the graph.\nFix: change the value out of "
                        "place (`y = y * 100`), or under `with torch.no_grad():` on a copy.")


def method(tr: Any, node: ast.Expr) -> None:
    """`y.op_(...)` as a statement: `y = y.op(...)` (`y.zero_()`: zeros of y's shape)."""
    call = node.value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
    owner, op = call.func.value, call.func.attr[:-1]
    if isinstance(owner, ast.Attribute) and owner.attr == "data":
        raise behind_autograd(tr, node)
    if not isinstance(owner, ast.Name) or owner.id not in tr.state.env:
        raise Refuse(node, f"`{call.func.attr}` changes a tensor in place. " + IN_PLACE)
    name = owner.id
    refuse_leaf(tr, name, node)
    refuse_alias(tr, name, node)
    if op == "zero" and not call.args and not call.keywords:
        value = tr.expressions.calls.apply(tn.SPELLINGS["torch.zeros_like"], [tr.state.env[name]], {}, call)
        tr.bind(name, value, call)
        track(tr.state, name, call)
        return
    if f"Tensor.{op}" not in tn.SPELLINGS:
        raise Refuse(node, f"`.{call.func.attr}` changes a tensor in place, and its out-of-place form `.{op}` is not in "
                           "symgrad's table (docs/supported.md).\nFix: write the change with the spellings that page lists.")
    out_of_place = ast.Call(func=ast.Attribute(value=ast.Name(id=name, ctx=ast.Load()), attr=op, ctx=ast.Load()),
                            args=call.args, keywords=call.keywords)
    ast.copy_location(out_of_place, call)
    ast.copy_location(out_of_place.func, call.func)
    ast.copy_location(out_of_place.func.value, owner)  # type: ignore[attr-defined]
    out_of_place.end_col_offset, out_of_place.end_lineno = call.end_col_offset, call.end_lineno
    tr.assign(name, out_of_place)
    track(tr.state, name, call)


def put(tr: Any, target: ast.Subscript, value_node: ast.expr, node: ast.stmt, op: ast.operator | None = None) -> None:
    """`a[index] = v` (or `a[index] op= v`): the index-put, bound to `a`."""
    if not isinstance(target.value, ast.Name) or target.value.id not in tr.state.env:
        item_target(tr, node, target)  # an item of a Python object: a side effect
        raise Refuse(node, f"`{tr.code_of(node)}` assigns into an element of something that is not a tensor the "
                           "function computed. " + IN_PLACE)
    name = target.value.id
    refuse_leaf(tr, name, node)
    refuse_alias(tr, name, node)
    state: TranslationState = tr.state
    base = state.env[name]
    if isinstance(base, Unfilled):  # `w = torch.empty(3); w[0] = v`: the others are whatever memory held
        raise base.refuse(node)
    if not tn.is_matrix(base):
        raise Refuse(node, f"`{name}` is a number here (a tensor of rank 0), which has no elements to assign into.\n"
                           "Fix: assign the new value to the name itself.")
    parts_nodes = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
    parts = [tr.expressions.index_part(p) for p in parts_nodes]
    if op is not None:
        old = state.materialise(ix.index(base, parts, target), where=target)
        binop = ast.BinOp(left=target, op=op, right=value_node)
        ast.copy_location(binop, node)
        v = tr.expressions.calls.apply(tn.SPELLINGS[tn.OPERATORS[type(op).__name__]],
                                       [old, tr.expressions.value(value_node)], {}, binop)
    else:
        v = to_sympy(tr.expressions.value(value_node))
    if len(parts) == 1 and isinstance(parts[0], sp.Basic) and tn.is_mask(parts[0]):
        new = tr.expressions.calls.apply(tn.SPELLINGS["torch.where"], [parts[0], v, base], {}, node)
    else:
        new = _put(base, parts, v, node)
        state.note_node(new, node)
    tr.bind(name, new, target)
    track(state, name, target)


def _put(base: Any, parts: list[Any], v: Any, node: ast.AST) -> Any:
    """base with the elements `parts` picks replaced by v's (v broadcast over them as torch does)."""
    rows, cols = tn.shape(base)  # type: ignore[misc]
    if rows * cols > ix.MAX_INDEXED:
        raise Refuse(node, f"This tensor has {rows * cols} elements; symgrad writes an assignment into at most "
                           f"{ix.MAX_INDEXED}.\nFix: build the tensor out of place (torch.where, torch.cat).")
    vector = tn.rank1(base) is True and cols == 1
    if len(parts) == 1 and isinstance(parts[0], Data) and parts[0].array.dtype == np.bool_:
        mask = np.asarray(parts[0].array).reshape(rows, -1) if not vector else parts[0].array.reshape(rows, 1)
        if mask.shape != (rows, cols):
            raise Refuse(node, f"The mask has shape {parts[0].array.shape}, the tensor {ix.torch_shape(base)}.\n"
                               "Fix: give the mask the tensor's shape.")
        positions = [(r, c) for r in range(rows) for c in range(cols) if mask[r, c]]
    else:
        marks = sp.MatrixSymbol("_put", rows, cols)
        token = tn.RANK1.set(tn.RANK1.get() | {marks}) if vector else None
        try:
            picked = ix.index(marks, parts, node)
        finally:
            if token is not None:
                tn.RANK1.reset(token)
        cells = [picked] if isinstance(picked, MatrixElement) else list(picked)
        positions = [(int(e.args[1]), int(e.args[2])) for e in cells]
    if tn.is_matrix(v):
        vr, vc = tn.shape(v)  # type: ignore[misc]
        values = [_element(v, i, j) for i in range(vr) for j in range(vc)]
        if len(values) == 1:
            values = values * len(positions)
        if len(values) != len(positions):
            raise Refuse(node, f"This assigns {len(values)} values into {len(positions)} elements (torch raises: the "
                               "shapes do not broadcast).\nFix: give the value the shape of what the index picks.")
    else:
        values = [v] * len(positions)
    cells_new = {p: val for p, val in zip(positions, values)}
    new = sp.ImmutableMatrix(rows, cols, [cells_new.get((r, c), _element(base, r, c))
                                          for r in range(rows) for c in range(cols)])
    if vector:
        tn.RANK1.set(tn.RANK1.get() | {new})
    return new


def _element(m: Any, r: int, c: int) -> Any:
    """The element (r, c) of m as a node of its own (an explicit matrix's entry, a zero of zeros)."""
    if isinstance(m, (sp.ImmutableMatrix, sp.ZeroMatrix, sp.OneMatrix)):
        return m[r, c]
    return MatrixElement(m, r, c)


def data(state: TranslationState, value: Any, node: ast.AST) -> Any:
    """`x.data`: x's value, off the graph (a graph break at this line)."""
    return state.materialise(no_grad(value), where=node)
