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
from sympy.codegen import ast as cg

from . import source_indexing as ix
from . import source_random as draws
from . import torch_names as tn
from .source_inplace import is_leaf
from .source_state import Bound, Refuse
from .torch_reductions import MaxResult

# The longest rank-1 tensor a `for a in x` loop is read over (each element is one pass of the loop).
MAX_ITEMS: Final = 64


PYTHON_BUILTINS: Final = (range, len, list, sum, float, int)


def builtin_call(calls: Any, func: Any, args: list[Any], node: ast.AST) -> Any:
    """`list(...)`, `sum(values)` (Python's left fold with +, a list of tensors or numbers),
    `float(n)` and `int(n)` of a Python number."""
    if func is list:
        return listed(args, node)
    if func is sum:
        if len(args) not in (1, 2) or not isinstance(args[0], (list, tuple)) or not args[0]:
            raise Refuse(node, "`sum(...)` is read of a non-empty list or tuple (a list comprehension, or the elements "
                               "of a tensor).\nFix: `x.sum()` of a tensor, or `sum([a, b, c])`.")
        values = list(args[0])
        total = args[1] if len(args) == 2 else values.pop(0)  # 0 + a: a (its value, -0.0 aside)
        for v in values:
            total = (total + v if _python_number(total) and _python_number(v)
                     else calls.apply(tn.SPELLINGS["+"], [total, v], {}, node))
        return total
    if len(args) == 1 and _python_number(args[0]):
        return func(args[0])
    raise Refuse(node, f"`{func.__name__}(...)` is read of a Python number only (of a tensor it is `.item()`, a "
                       "number off the autograd graph).\nFix: use the tensor itself, or `.item()` to say so.")


def _python_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def comprehension(tr: Any, node: ast.ListComp) -> list[Any]:
    """`[e for a in it]` (and `if` tests Python decides): a Python list of the values, the loop
    variable in the comprehension's own scope, as Python runs it (at most MAX_ITEMS values)."""
    if len(node.generators) != 1 or not isinstance(node.generators[0].target, ast.Name):
        raise Refuse(node, "symgrad reads a list comprehension with one `for name in ...` only.\n"
                           "Fix: write one loop per comprehension.")
    gen = node.generators[0]
    iterable = tr.value(gen.iter)
    if tn.is_matrix(iterable) and len(ix.torch_shape(iterable)) == 1:
        iterable = [tr.state.materialise(ix.index(iterable, [k], gen.iter), where=gen.iter)
                    for k in range(ix.torch_shape(iterable)[0])]
    if isinstance(iterable, Bound):  # a module container: its members
        iterable = iterable.members(gen.iter)
    if not isinstance(iterable, (range, list, tuple)):
        raise Refuse(gen.iter, "A list comprehension here runs over `range(...)`, a rank-1 tensor, a list or a tuple.\n"
                               "Fix: loop over `range(n)` and index what you need.")
    if len(iterable) > MAX_ITEMS:
        raise Refuse(node, f"This list comprehension makes {len(iterable)} values; symgrad reads at most {MAX_ITEMS}.\n"
                           "Fix: compute it with a tensor operation instead.")
    name = gen.target.id
    env = tr.state.env
    had, old = name in env, env.get(name)
    out: list[Any] = []
    try:
        for v in iterable:
            env[name] = v
            tests = [True if t is sp.true else False if t is sp.false else t for t in (tr.value(t) for t in gen.ifs)]
            if not all(isinstance(t, bool) for t in tests):
                raise Refuse(node, "The `if` of this list comprehension tests a tensor; symgrad reads tests Python "
                                   "decides (on ints).\nFix: choose per element with `torch.where`.")
            if all(tests):
                out.append(tr.value(node.elt))
    finally:
        if had:
            env[name] = old
        else:
            env.pop(name, None)
    return out


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
        if isinstance(whole, MaxResult) and len(names) == 2:  # `v, i = x.max(dim=1)`: values and indices
            tr.state.env.update(zip(names, whole))
            return
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
    leafs = [isinstance(n, ast.Name) and is_leaf(tr.state, n.id) for n in nodes]
    if tr.state.pure or tr.state.matrix_mode:
        for name, v in zip(names, values):
            tr.state.env[name] = v
    else:
        mine = {tr.state.vars.get(tr.state.prefix + n) for n in names} - {None}
        for name, v, vnode in zip(names, values, nodes):
            if isinstance(v, sp.Symbol) and v in mine:  # `a, b = b, a`: the old value kept aside first
                v = tr.state.materialise(v, target=tr.state.fresh(name))
            tr.bind(name, v, vnode)
    for name, leaf in zip(names, leafs):  # each name a copy, or the input leaf itself (`a, b = x, y`)
        key = tr.state.prefix + name
        (tr.state.leaves.add(key), tr.state.copied.discard(key)) if leaf else tr.state.copied.add(key)


def for_loop(tr: Any, node: ast.For) -> None:
    """`for i in range(a, b, c)` (a loop of the program; unrolled where the body indexes a tensor
    by i, as Python runs it, and in a function that draws random numbers, so that each iteration
    reads its own draws of the user's run, `source_random`), `for a in x` over a rank-1 tensor
    (a = x[0], x[1], ... in turn), and `for v in (a, b)` over a tuple or list: the body read once
    per element."""
    it, target = node.iter, node.target
    if node.orelse or not isinstance(target, ast.Name):
        raise Refuse(node, "symgrad reads `for name in ...:` loops without `else`.\nFix: loop over one name.")
    is_range = isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
    iterable = (range(*_bounds(tr, it, node)) if is_range else tr.expressions.value(it))  # type: ignore[arg-type]
    drawing = is_range and draws.active() and len(iterable) <= draws.MAX_UNROLLED  # type: ignore[arg-type]
    if is_range and not _indexes_by(node, target.id) and not drawing:
        start, stop, step = iterable.start, iterable.stop, iterable.step  # type: ignore[union-attr]
        loop_var = tr.state.var(target.id)
        tr.state.env[target.id] = loop_var
        tr.state.emit(cg.For(loop_var, sp.Range(start, stop, step), tr._loop_body(node)))
        return
    if tn.is_matrix(iterable):
        shape = ix.torch_shape(iterable)
        if len(shape) != 1:
            raise Refuse(node, f"This loops over a tensor of shape {shape}; symgrad loops over the elements of a rank-1 "
                               "tensor only (a loop over a matrix gives its rows).\nFix: loop over `range(X.shape[0])` "
                               "and index the row you need.")
        values: list[Any] = [ix.index(iterable, [k], node) for k in range(shape[0])]
    elif isinstance(iterable, (range, tuple, list)):
        values = list(iterable)
    elif isinstance(iterable, Bound):  # a module container: its members (`for layer in self.layers`)
        values = iterable.members(it)
    else:
        raise Refuse(node, "symgrad loops over `range(...)`, a rank-1 tensor, a tuple or a list.\n"
                           "Fix: loop over `range(n)` and index what you need.")
    if len(values) > MAX_ITEMS and not drawing:
        raise Refuse(node, f"This loop runs {len(values)} times over the elements of a tensor or list; symgrad reads "
                           f"such a loop element by element, up to {MAX_ITEMS} of them.\nFix: compute it with a "
                           "tensor operation (`x.sum()`, `(x * w).sum()`, `torch.cumsum`) instead of a loop.")
    for v in values:
        tr.state.span = tr.span_of(node)
        tr.state.env[target.id] = tr.state.materialise(v, where=it) if isinstance(v, sp.Basic) else v
        tr.statements(node.body)


def _bounds(tr: Any, it: ast.Call, node: ast.AST) -> list[int]:
    bounds = [tr.expressions.value(a) for a in it.args]
    if not bounds or not all(is_int(b) for b in bounds):
        raise Refuse(node, "The bounds of `range(...)` must be constant integers here.\n"
                           "Fix: use a constant number of iterations, or a `while` loop on a tensor condition.")
    return [int(b) for b in bounds]


def _indexes_by(node: ast.For, name: str) -> bool:
    """The loop's body indexes something by the loop variable (`x[i]`): read element by element."""
    return any(isinstance(n, ast.Subscript) and any(isinstance(m, ast.Name) and m.id == name for m in ast.walk(n.slice))
               for s in node.body for n in ast.walk(s))


def is_int(v: Any) -> bool:
    return isinstance(v, (int, sp.Integer)) and not isinstance(v, bool)


def generated(calls: Any, node: ast.GeneratorExp | ast.ListComp) -> list[Any]:
    """The values of `(e for t in xs)` given to Python's sum: e with t each element of xs in
    turn (a rank-1 tensor's elements, as Python iterates a tensor, or a list's or range's)."""
    (gen,) = node.generators if len(node.generators) == 1 else (None,)
    if gen is None or gen.ifs or gen.is_async or not isinstance(gen.target, ast.Name):
        raise Refuse(node, "Python's `sum` is read of a generator with one `for name in ...` and no `if`.\n"
                           "Fix: write the sum as a loop, or filter with torch.where.")
    xs = calls.value(gen.iter)
    if tn.is_matrix(xs):
        rows, cols = tn.shape(xs)  # type: ignore[misc]
        if cols != 1 or tn.rank1(xs) is not True:
            raise Refuse(node, f"Iterating a {rows} x {cols} tensor yields its rows, tensors of their own, which "
                               "symgrad does not read here.\nFix: iterate a rank-1 tensor, or use `x.sum(0)`.")
        items = [calls.state.materialise(ix.index(xs, [i], node), where=node) for i in range(rows)]
    elif isinstance(xs, (list, tuple, range)):
        items = list(xs)
    else:
        raise Refuse(node, "Python's `sum` of a generator is read over a rank-1 tensor, a list or a range.\n"
                           "Fix: iterate one of those.")
    name, saved = gen.target.id, calls.state.env.get(gen.target.id)
    values = []
    try:
        for v in items:
            calls.state.env[name] = v
            values.append(calls.value(node.elt))
    finally:
        if saved is None:
            calls.state.env.pop(name, None)
        else:
            calls.state.env[name] = saved
    return values
