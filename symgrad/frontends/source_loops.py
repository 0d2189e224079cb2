"""`break` and `continue` in a loop of a torch function's source, read as control flow.

A loop whose body leaves early is rewritten, before it is read, into one without exits, as
Python runs it: a flag `broke_<line>` (0 before the loop, 1 once `break` ran) that the loop's
condition also tests (`while cond and broke == 0`; a `for` runs its body only while it is 0),
and a flag `skipped_<line>` (0 at the start of each pass, 1 once `continue` ran). A `break` or
`continue` inside an `if` sets its flag in that branch, and the statements after that `if` run
only while both flags are 0. The flags are variables of the program, so an `if` that decides an
exit is a branch like any other: at its threshold the verdict is control flow, as it is for the
same `if` without the exit.

`assign_chosen` writes the variables an `if` assigns, each its Piecewise over the two branches.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

import sympy as sp

from . import torch_names as tn
from .source_state import TranslationState

_LOOPS = (ast.For, ast.While, ast.AsyncFor)


def exits(stmts: Sequence[ast.stmt], kind: type[ast.stmt] | tuple[type[ast.stmt], ...] = (ast.Break, ast.Continue)) -> bool:
    """A `break`/`continue` of this loop in the statements (one of an inner loop is that loop's)."""
    todo: list[ast.AST] = list(stmts)
    while todo:
        node = todo.pop()
        if isinstance(node, kind):
            return True
        if not isinstance(node, _LOOPS) and not isinstance(node, (ast.FunctionDef, ast.Lambda, ast.ClassDef)):
            todo.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt))
    return False


def without_exits(tr: Any, loop: ast.While | ast.For) -> ast.While | ast.For:
    """The loop with its `break`s and `continue`s as flags (the flag before the loop assigned here)."""
    if not exits(loop.body):
        return loop
    broke, skipped = _fresh(tr, "broke", loop.lineno), _fresh(tr, "skipped", loop.lineno)
    uses_break, uses_continue = exits(loop.body, ast.Break), exits(loop.body, ast.Continue)
    tr.compound |= {broke, skipped}  # variables of the program: a loop and its branches change them
    if uses_break:
        tr.assign(broke, _at(ast.Constant(0.0), loop))
    flags = ([broke] if uses_break else []) + ([skipped] if uses_continue else [])
    body = _guarded(loop.body, broke, skipped, flags)
    if uses_continue:
        body = [_set(skipped, 0.0, loop), *body]
    if isinstance(loop, ast.While):
        test = loop.test
        if uses_break:
            clear = _clear([broke], loop)
            test = clear if isinstance(test, ast.Constant) and test.value is True else _at(
                ast.BoolOp(op=ast.And(), values=[test, clear]), loop.test)
        return _at(ast.While(test=test, body=body, orelse=loop.orelse), loop)
    if uses_break:
        body = [_at(ast.If(test=_clear([broke], loop), body=body, orelse=[]), loop)]
    return _at(ast.For(target=loop.target, iter=loop.iter, body=body, orelse=loop.orelse, type_comment=None), loop)


def _guarded(stmts: Sequence[ast.stmt], broke: str, skipped: str, flags: list[str]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for k, s in enumerate(stmts):
        if isinstance(s, ast.Break):
            return [*out, _set(broke, 1.0, s)]
        if isinstance(s, ast.Continue):
            return [*out, _set(skipped, 1.0, s)]
        if isinstance(s, ast.If) and exits([s]):
            body = _guarded(s.body, broke, skipped, flags) or [_at(ast.Pass(), s)]
            out.append(_at(ast.If(test=s.test, body=body, orelse=_guarded(s.orelse, broke, skipped, flags)), s))
            rest = stmts[k + 1:]
            if rest:
                out.append(_at(ast.If(test=_clear(flags, rest[0]), body=_guarded(rest, broke, skipped, flags),
                                      orelse=[]), rest[0]))
            return out
        out.append(s)
    return out


def _clear(flags: list[str], where: ast.AST) -> ast.expr:
    """`flag == 0.0 and ...`: no exit taken yet."""
    tests: list[ast.expr] = [_at(ast.Compare(left=_at(ast.Name(id=f, ctx=ast.Load()), where), ops=[ast.Eq()],
                                             comparators=[_at(ast.Constant(0.0), where)]), where) for f in flags]
    return tests[0] if len(tests) == 1 else _at(ast.BoolOp(op=ast.And(), values=tests), where)


def _set(name: str, value: float, where: ast.AST) -> ast.stmt:
    return _at(ast.Assign(targets=[_at(ast.Name(id=name, ctx=ast.Store()), where)], value=_at(ast.Constant(value), where)),
               where)


def _fresh(tr: Any, base: str, line: int) -> str:
    name, k = f"{base}_{line}", 1
    while name in tr.state.names_in_fn:
        k += 1
        name = f"{base}_{line}_{k}"
    tr.state.names_in_fn.add(name)
    return name


def _at(node: Any, where: ast.AST) -> Any:
    """`node` located at `where` (the user's statement it stands for)."""
    ast.copy_location(node, where)
    node.end_lineno = getattr(where, "end_lineno", None)
    node.end_col_offset = getattr(where, "end_col_offset", None)
    return node


def assign_chosen(state: TranslationState, chosen: dict[str, Any]) -> None:
    """Each variable an `if` assigns, given its Piecewise (`chosen`, in the order the branches
    assign them). Every Piecewise reads the values from before the `if`: where one reads a
    variable written before it here (`y = y * 2; z = z + y` in a branch, whose z reads the y of
    before the `if` doubled), all are computed into temporaries first, then assigned."""
    own: set[Any] = set()
    conflict = False
    for name, value in chosen.items():
        if isinstance(value, sp.Basic) and own & value.free_symbols:
            conflict = True
        own |= {state.vars.get(state.prefix + name), state.vars.get(f"{state.prefix}{name}@matrix")} - {None}
    if conflict and not state.pure:
        for name, value in list(chosen.items()):
            if tn.is_matrix(value):
                state.bind_matrix(f"{name}__new", value)
                chosen[name] = state.env.pop(f"{name}__new")
            else:
                chosen[name] = state.materialise(value, target=state.fresh(f"{name}_new"))
    for name, value in chosen.items():
        if tn.is_matrix(value):
            state.bind_matrix(name, value)
            continue
        state.env[name] = state.materialise(value, target=state.var(name))
