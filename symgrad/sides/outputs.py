"""A returned tuple's elements, each differentiated on its own, as the user's code returns them.

A function that returns several values (`return x + y, x ** y`) is read as ONE output column,
its values' elements stacked in order (`frontends/source_tuples.py`), and the generated program
writes that column as `out = torch.stack([x_plus_y, x_pow_y]).reshape(2, 1)`. torch's gradient
of one element of that column runs backward through the stack, which hands every other element
a zero adjoint; 0 times a NaN or inf local derivative of another value (`x ** y`'s
`x**y*log(x)` with respect to y at x = -2) is NaN, and it lands in the gradient of a value that
never reads it. The user's code returns a tuple, and torch's gradient of `out[0]` there never
visits `x ** y`.

So where a lowered program stands for a returned tuple (`LoweredProgram.separate_outputs`),
autograd and the backward pass's torch adjoints differentiate the tensors the column is stacked
from, each with its own weight, never the stack: each returned value's entries get the gradient
torch gives for that value alone. This module writes the program that returns them beside the
column: every `out = torch.stack([...]).reshape(n, 1)` that makes the output also keeps its list
(`torch.stack(_symgrad_elements := [...])`), and every `return out` is `return out,
_symgrad_elements`. A program whose output is not such a stack (a `torch.where` of two columns)
returns `None` for the elements, and its column is differentiated as before.
"""

from __future__ import annotations

import ast
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .ir import LoweredProgram

ELEMENTS = "_symgrad_elements"


def separate(tree: ast.Module, output: str) -> bool:
    """Rewrite the generated program `tree` (in place) to return `(output, elements)`, where
    `elements` is the list the output column was stacked from (None where it was not one).
    False, and the tree untouched, where no assignment stacks the output."""
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if fn is None:
        return False
    found = False
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id == output:
            stacked = _stack_list(node.value)
            if stacked is not None:
                call, k = stacked
                call.args[k] = ast.NamedExpr(ast.Name(ELEMENTS, ast.Store()), call.args[k])
                found = True
    if not found:
        return False
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and node.value is not None:
            node.value = ast.Tuple([node.value, ast.Name(ELEMENTS, ast.Load())], ast.Load())
    first = fn.body[0]
    fn.body.insert(0, ast.Assign([ast.Name(ELEMENTS, ast.Store())], ast.Constant(None), lineno=first.lineno))
    ast.fix_missing_locations(tree)
    return True


def _stack_list(value: ast.expr) -> tuple[ast.Call, int] | None:
    """`torch.stack([...]).reshape(n, 1)`: the stack call and the position of its list."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "reshape":
        inner = value.func.value
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "stack" \
                and isinstance(inner.func.value, ast.Name) and inner.func.value.id == "torch" \
                and inner.args and isinstance(inner.args[0], ast.List):
            return inner, 0
    return None


# The rewritten function of each lowered program, by its unique filename, released with it.
_SEPARATED: dict[str, Callable[..., Any] | None] = {}


def elements_function(lowered: LoweredProgram) -> Callable[..., Any] | None:
    """The lowered program rewritten to return `(column, elements)` (`separate`), run in the
    lowered program's own namespace; None where its output is not a stack of elements."""
    if lowered.filename in _SEPARATED:
        return _SEPARATED[lowered.filename]
    tree = ast.parse(lowered.source)
    fn: Callable[..., Any] | None = None
    if isinstance(lowered.output, str) and separate(tree, lowered.output):
        code = compile(tree, lowered.filename, "exec")
        name = lowered.function.__name__
        body = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
        fn = types.FunctionType(body, lowered.function.__globals__, name, lowered.function.__defaults__)
    _SEPARATED[lowered.filename] = fn
    weakref.finalize(lowered, _SEPARATED.pop, lowered.filename, None)
    return fn


def call(lowered: LoweredProgram, *tensors: Any) -> tuple[Any, list[Any] | None]:
    """The column the lowered program returns, and the tensors it was stacked from (None where
    the program does not stand for a returned tuple, or its output is no stack)."""
    fn = elements_function(lowered) if lowered.separate_outputs else None
    if fn is None:
        return lowered(*tensors), None
    out, elements = fn(*tensors)
    return out, None if elements is None else list(elements)


def grads_of_elements(elements: Sequence[Any], weights: Sequence[float], targets: Sequence[torch.Tensor],
                      retain_graph: bool = True) -> tuple[Any, ...]:
    """torch's gradient of the elements weighted by `weights` with respect to `targets`, each
    element differentiated on its own graph: one backward from the elements with a weight other
    than 0 (and on the graph), never through the stack. None where nothing reaches a target."""
    pairs = [(e, w) for e, w in zip(elements, weights)
             if w != 0 and isinstance(e, torch.Tensor) and e.requires_grad]
    if not pairs:
        return tuple(None for _ in targets)
    outs = [e for e, _ in pairs]
    return torch.autograd.grad(outs, list(targets), grad_outputs=[torch.full_like(e, float(w)) for e, w in pairs],
                               retain_graph=retain_graph, allow_unused=True)
