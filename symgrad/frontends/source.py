"""A torch function's source, read back into a `Program` in A-normal form, with `SourceSpan`s.

`translate(fn, inputs)` reads `fn`'s source (`inspect.getsource` after `inspect.unwrap`; a
function typed into a notebook cell is found through `linecache`), parses it with `ast`, and
walks it with one visitor method per construct. Grammar of what it accepts:

    function   := "def" name "(" params "):" stmt* | "lambda" params ":" expr
    stmt       := name "=" expr | name op"=" expr                   # Assignment
                | "if" test ":" stmt* ("elif" ...)* ("else:" stmt*)?  # a Piecewise per variable
                | "while" test ":" stmt*                             # While
                | "for" name "in range(" const ("," const)* "):" stmt*   # For over Range
                | "with torch.no_grad():" stmt*                      # every value: no_grad(...)
                | "return" expr
    expr       := name | number | expr binop expr | "-" expr | call | expr ".T"
                | expr "if" test "else" expr                         # a Piecewise
    call       := spelling "(" expr, ... ")" | expr "." method "(" ... ")"   # torch_names.SPELLINGS
    test       := comparisons joined by and / or / not (not differentiated: printed inline)

Every torch call and every operator becomes its own `Assignment` (A-normal form): written as one
expression, SymPy would rewrite `torch.sqrt(x**2)` to `Abs(x)`, whose autograd at 0 is not the
user's (nan). The branches of an `if` are the exception: their values are written into one
Piecewise per assigned variable (only the taken branch runs, as in Python). A function of matrix
inputs (tensors of rank >= 1) is translated into one expression instead, since a `Program`'s
variables are scalars; control flow there is refused.

Names resolve through one table (`torch_names.py`); constants come from the function's globals
and closure. Every construct outside this grammar is refused with one sentence naming the user's
line (`TraceError`), never a traceback.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import math
import numbers
import textwrap
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import sympy as sp
from sympy.codegen import ast as cg

from . import torch_names as tn
from ..base.errors import TraceError, UnsupportedNodeError
from ..program.primitives import PRIMITIVES, detach, item, no_grad, strip
from ..program.program import Program
from ..base.errors import SymgradError


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """Where a node came from in the user's code: file, line (1-based), columns, the line's text."""

    file: str
    line: int
    col: int
    end_col: int
    text: str

    def __str__(self) -> str:
        where = f"{self.file.rsplit('/', 1)[-1]}:{self.line}"
        return f"{where} {self.text}" if self.text else where


@dataclass(frozen=True)
class Translation:
    """What `translate` read: a `Program` (or, with matrix inputs, an expression), the inputs in
    parameter order, and where each statement and node came from."""

    function: Any  # Program or SymPy expression
    inputs: tuple[sp.Basic, ...]
    origins: dict[sp.Basic, SourceSpan]
    branches: str  # "if" or "where"
    notes: tuple[str, ...] = ()
    span: SourceSpan | None = None  # the function's own first line


# --------------------------------------------------------------------------- reading the source


def read_source(fn: Any) -> tuple[ast.AST, str, int, int, list[str]]:
    """(the def or lambda node, filename, first line, dedent width, the source lines)."""
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        raise TraceError(f"{fn!r} is not a Python function, so symgrad cannot read its source.\n"
                         "Fix: pass a function defined with `def` or `lambda`.")
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as err:
        raise TraceError(
            f"The source of `{fn.__name__}` cannot be read ({err}): it was probably built with `exec` "
            "or typed into an interpreter that keeps no source.\n"
            "Fix: define the function in a file or a notebook cell, or compare a SymPy Program instead."
        ) from None
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    width = len(lines[0]) - len(lines[0].lstrip()) if dedented != text else 0
    try:
        tree = ast.parse(dedented)
    except SyntaxError:
        # A lambda inside a larger expression: parse the first line's lambda alone.
        start = lines[0].find("lambda")
        try:
            tree = ast.parse("(" + lines[0][start:].strip().rstrip(",)") + ")") if start >= 0 else None
        except SyntaxError:
            tree = None
        if tree is None:
            raise TraceError(f"The source of `{fn.__name__}` cannot be parsed on its own.\n"
                             "Fix: define it with `def` on its own lines.") from None
        width = start - 1
    node = _find(tree, fn, code)
    if node is None:
        raise TraceError(f"symgrad could not find `{fn.__name__}` in its own source.\n"
                         "Fix: define the function with `def` on its own lines.")
    return node, code.co_filename, first, width, [ln.rstrip("\n") for ln in lines]


def _find(tree: ast.AST, fn: Any, code: types.CodeType) -> ast.AST | None:
    want = list(code.co_varnames[: code.co_argcount])
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn.__name__:
            return node
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda) and [a.arg for a in node.args.args] == want:
            return node
    return None


# --------------------------------------------------------------------------- the translator


class _Module:
    def __init__(self, obj: types.ModuleType, name: str) -> None:
        self.obj = obj
        self.name = name


class _Func:
    def __init__(self, name: str) -> None:
        self.name = name


class _Method:
    def __init__(self, name: str, self_value: Any) -> None:
        self.name = name
        self.self_value = self_value


class _NoGradCtx:
    pass


_MODULE_NAMES: Final = {"torch": "torch", "torch.nn.functional": "torch.nn.functional", "torch.linalg": "torch.linalg",
                        "torch.nn": "torch.nn", "math": "math", "numpy": "numpy", "torch.special": "torch.special"}


class _Refuse(Exception):
    def __init__(self, node: ast.AST | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


_IN_PLACE: Final = ("symgrad reads programs whose values are never changed in place (an in-place op on a "
                    "tensor autograd needs for the backward pass changes the graph itself).\n"
                    "Fix: write it out of place, e.g. `b = b * 2` instead of `b.mul_(2)` or `b *= 2` on a leaf.")


class _Translator(ast.NodeVisitor):
    def __init__(self, fn: Any, node: ast.AST, filename: str, first: int, width: int, lines: list[str],
                 inputs: Sequence[tuple[str, tuple[int, int] | None]]) -> None:
        self.fn = inspect.unwrap(fn)
        self.node = node
        self.filename = filename
        self.first = first
        self.width = width
        self.lines = lines
        self.origins: dict[sp.Basic, SourceSpan] = {}
        self.block: list[sp.Basic] = []
        self.pure = 0  # > 0 inside if-branches and conditions: values are expressions, no statements
        self.no_grad = 0
        self.span: SourceSpan | None = None
        self.matrix_mode = any(s is not None for _, s in inputs)
        self.uses_where = False
        self.uses_if = False
        self.names_in_fn = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
            a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
        self.counter = 0
        self.env: dict[str, Any] = {}
        self.inputs: list[sp.Basic] = []
        params = [a.arg for a in node.args.args]  # type: ignore[attr-defined]
        assigned = _assigned_names(node.body if isinstance(node.body, list) else [])  # type: ignore[attr-defined]
        self.compound = _compound_assigned(node.body if isinstance(node.body, list) else [])  # type: ignore[attr-defined]
        self.vars: dict[str, sp.Symbol] = {}
        copies = []
        for name, shp in inputs:
            sym: sp.Basic = sp.MatrixSymbol(name, *shp) if shp is not None else sp.Symbol(name, real=True)
            self.inputs.append(sym)
            self.env[name] = sym
            if name in assigned and shp is None:
                copies.append(name)
        self.params = params
        self.closure = inspect.getclosurevars(self.fn) if isinstance(self.fn, types.FunctionType) else None
        self.output: Any = None
        self._copies = copies

    # -- spans and names

    def span_of(self, node: ast.AST) -> SourceSpan:
        k = getattr(node, "lineno", 1) - 1
        text = self.lines[k] if 0 <= k < len(self.lines) else ""
        col = getattr(node, "col_offset", 0) + max(self.width, 0)
        end = getattr(node, "end_col_offset", None)
        end_col = (end + max(self.width, 0)) if end is not None and getattr(node, "end_lineno", None) == getattr(node, "lineno", None) else len(text)
        return SourceSpan(self.filename, self.first + k, col, end_col, text.strip())

    def fresh(self, base: str = "t") -> sp.Symbol:
        while True:
            self.counter += 1
            name = f"{base}{self.counter}"
            if name not in self.names_in_fn and name not in self.vars:
                sym = sp.Symbol(name, real=True)
                self.vars[name] = sym
                return sym

    def var(self, name: str) -> sp.Symbol:
        if name in self.vars:
            return self.vars[name]
        if name in self.params:
            sym = sp.Symbol(f"{name}_v", real=True)
        else:
            sym = sp.Symbol(name, real=True)
        self.vars[name] = sym
        return sym

    def emit(self, stmt: sp.Basic) -> None:
        self.block.append(stmt)
        if self.span is not None:
            self.origins.setdefault(stmt, self.span)

    def note_node(self, e: Any) -> None:
        """This line made `e`, and the nodes inside it that no earlier line made (one torch call
        may be several nodes: `torch.clamp(x, min=a, max=b)` is a clamp of a clamp)."""
        if not isinstance(e, sp.Basic) or self.span is None or e.is_number:
            return
        todo = [e]
        while todo:  # a constant node inside gets the line too: it is never a step, so never cited
            node = todo.pop()
            if node.is_Atom or isinstance(node, sp.MatrixSymbol) or node in self.origins:
                continue
            self.origins[node] = self.span
            todo.extend(a for a in node.args if isinstance(a, sp.Basic))

    def materialise(self, e: Any, target: sp.Symbol | None = None) -> Any:
        """An op's result: its own statement (A-normal form), or the expression itself in pure
        and matrix mode."""
        if not isinstance(e, sp.Basic) or _is_bool(e):
            return e
        if self.pure or self.matrix_mode or tn.is_matrix(e):
            if self.no_grad and not self.pure:
                e = no_grad(e)
            self.note_node(e)
            return e
        if e.is_number and not e.has(*PRIMITIVES) and target is None:
            return e
        if isinstance(e, sp.Symbol) and target is None:
            return e
        if self.no_grad:
            e = no_grad(e)
        sym = target if target is not None else self.fresh()
        self.emit(cg.Assignment(sym, e))
        self.note_node(e)
        return sym

    # -- the function

    def run(self) -> None:
        node = self.node
        self.span = self.span_of(node)
        for name in self._copies:
            self.emit(cg.Assignment(self.var(name), self.env[name]))
            self.env[name] = self.var(name)
        if isinstance(node, ast.Lambda):
            self.span = self.span_of(node.body)
            self.output = self.value(node.body)
            return
        body = node.body  # type: ignore[attr-defined]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body = body[1:]  # the docstring
        self.statements(_returns_folded(body))
        if self.output is None:
            raise _Refuse(node, "The function never returns a value, so there is nothing to differentiate.")

    def statements(self, stmts: Sequence[ast.stmt]) -> None:
        for k, s in enumerate(stmts):
            if self.output is not None:
                raise _Refuse(s, "Code after a `return` never runs.")
            self.span = self.span_of(s)
            self.visit(s)

    def generic_visit(self, node: ast.AST) -> Any:
        what = {ast.Break: "`break`", ast.Continue: "`continue`", ast.Try: "`try`", ast.Raise: "`raise`",
                ast.Assert: "`assert`", ast.FunctionDef: "a nested `def`", ast.Global: "`global`",
                ast.Nonlocal: "`nonlocal`", ast.Delete: "`del`", ast.Import: "`import`",
                ast.ImportFrom: "`import`"}.get(type(node), f"`{type(node).__name__}`")
        fix = {ast.Break: "Fix: write the exit into the loop's condition (`while cond and not done:` is not "
               "supported either; compute the stopping condition from the loop variables).",
               ast.Continue: "Fix: put the rest of the body under an `if`."}.get(type(node), "Fix: rewrite it "
               "with assignments, if/else, while, for over range, and `with torch.no_grad():`.")
        raise _Refuse(node, f"{what} is not part of the grammar symgrad reads.\n{fix}")

    def visit_Pass(self, node: ast.Pass) -> None:
        return None

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant):
            return None
        if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute) and node.value.func.attr.endswith("_"):
            raise _Refuse(node, f"`{node.value.func.attr}` changes a tensor in place. " + _IN_PLACE)
        raise _Refuse(node, "A bare expression statement computes a value and throws it away (or changes "
                            "something in place), which symgrad cannot follow.\nFix: assign the value to a name.")

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            if any(isinstance(t, ast.Subscript) for t in node.targets):
                raise _Refuse(node, "Assigning into a tensor element (`b[i] = ...`) changes it in place. " + _IN_PLACE)
            raise _Refuse(node, "Only assignments to a single name are supported (no tuple unpacking).\n"
                                "Fix: assign each value to its own name.")
        self.assign(node.targets[0].id, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name) or node.value is None:
            raise _Refuse(node, "Only annotated assignments to a name with a value are supported.")
        self.assign(node.target.id, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise _Refuse(node, "Augmented assignment into a tensor element changes it in place. " + _IN_PLACE)
        binop = ast.BinOp(left=ast.Name(id=node.target.id, ctx=ast.Load()), op=node.op, right=node.value)
        ast.copy_location(binop, node)
        self.assign(node.target.id, binop)

    def assign(self, name: str, value_node: ast.expr) -> None:
        needs_symbol = name in self.compound or name in self.params
        if self.pure or self.matrix_mode:
            self.env[name] = self.value(value_node)
            return
        target = self.var(name) if (needs_symbol or True) else None
        v = self.value(value_node, target=target)
        if isinstance(v, sp.Basic) and not tn.is_matrix(v) and not _is_bool(v):
            if v != target:
                # A plain name, a number, or an op that SymPy folded: still one statement, so
                # loops and branches see a variable.
                if isinstance(v, sp.Symbol) and not needs_symbol:
                    self.env[name] = v
                    return
                if v.is_number and not v.has(*PRIMITIVES) and not needs_symbol:
                    self.env[name] = v
                    return
                self.emit(cg.Assignment(target, v))
            self.env[name] = target
        else:
            self.env[name] = v

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is None:
            raise _Refuse(node, "`return` without a value: there is nothing to differentiate.")
        if isinstance(node.value, ast.Tuple):
            raise _Refuse(node, "The function returns several values; symgrad compares one output.\n"
                                "Fix: return one tensor (e.g. a sum, or stack them).")
        if self.pure or self.matrix_mode:
            self.output = self.value(node.value)
            return
        v = self.value(node.value, target=self.var("result") if "result" not in self.vars else self.fresh("result"))
        self.output = v

    def visit_If(self, node: ast.If) -> None:
        if self.matrix_mode:
            raise _Refuse(node, "Control flow in a function of tensors of rank >= 1 is not supported "
                                "(symgrad writes such a function as one matrix expression).\n"
                                "Fix: use scalar inputs, or compute both branches and combine them.")
        self.uses_if = True
        cond = self.test(node.test)
        if cond is sp.true or cond is True:
            self.statements(node.body)
            return
        if cond is sp.false or cond is False:
            self.statements(node.orelse)
            return
        # Both branches as expressions: one Piecewise per variable they assign.
        before = dict(self.env)
        outs = []
        for body in (node.body, node.orelse):
            self.env = dict(before)
            self.pure += 1
            saved_output, self.output = self.output, None
            try:
                self.statements(body)
            finally:
                self.pure -= 1
            outs.append((self.env, self.output))
            self.output = saved_output
        self.env = dict(before)
        self.span = self.span_of(node)
        (then_env, then_out), (else_env, else_out) = outs
        if (then_out is None) != (else_out is None):
            raise _Refuse(node, "Only one branch of this `if` returns.\nFix: return in both branches, or "
                                "assign a variable in each branch and return it after the `if`.")
        if then_out is not None:
            self.output = self.materialise(self.piecewise(then_out, cond, else_out), target=self.var("result"))
            return
        names = [n for n in {**then_env, **else_env} if then_env.get(n) is not before.get(n) or else_env.get(n) is not before.get(n)]
        for name in names:
            a, b = then_env.get(name), else_env.get(name)
            if a is None or b is None:
                raise _Refuse(node, f"`{name}` is assigned in only one branch of this `if` and has no value "
                                    "before it.\nFix: give it a value before the `if`.")
            self.env[name] = self.materialise(self.piecewise(a, cond, b), target=self.var(name))

    def piecewise(self, a: Any, cond: Any, b: Any) -> Any:
        a, b = _sym(a), _sym(b)
        if tn.is_matrix(a) or tn.is_matrix(b):
            raise _Refuse(None, "A branch whose value is a tensor of rank >= 1 is not supported.")
        return sp.Piecewise((a, cond), (b, True))

    def _loop_allowed(self, node: ast.AST) -> None:
        if self.pure or self.matrix_mode:
            raise _Refuse(node, "A loop inside an `if` branch (or over matrix values) is not supported.\n"
                                "Fix: move the loop out of the branch.")

    def _loop_body(self, node: ast.While | ast.For) -> cg.CodeBlock:
        """The loop's statements, translated with the loop's own line as their span."""
        self.span = self.span_of(node)
        span = self.span
        outer, self.block = self.block, []
        self.statements(node.body)
        body, self.block = self.block, outer
        self.span = span
        return cg.CodeBlock(*body) if body else cg.CodeBlock()

    def visit_While(self, node: ast.While) -> None:
        self._loop_allowed(node)
        if node.orelse:
            raise _Refuse(node, "`while ... else` is not supported.")
        cond = self.test(node.test)
        self.emit(cg.While(cond, self._loop_body(node)))

    def visit_For(self, node: ast.For) -> None:
        self._loop_allowed(node)
        it = node.iter
        if not (isinstance(node.target, ast.Name) and isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                and it.func.id == "range" and not node.orelse):
            raise _Refuse(node, "symgrad reads `for i in range(...)` loops only (iterating over a tensor "
                                "indexes it).\nFix: loop over `range(n)` with a constant n.")
        bounds = [self.value(a) for a in it.args]
        if not all(isinstance(b, (int, sp.Integer)) for b in bounds):
            raise _Refuse(node, "The bounds of `range(...)` must be constant integers here.\n"
                                "Fix: use a constant number of iterations, or a `while` loop on a tensor condition.")
        ints = [int(b) for b in bounds]
        start, stop, step = (0, ints[0], 1) if len(ints) == 1 else (*ints, 1)[:3]
        loop_var = self.var(node.target.id)
        self.env[node.target.id] = loop_var
        self.emit(cg.For(loop_var, sp.Range(start, stop, step), self._loop_body(node)))

    def visit_With(self, node: ast.With) -> None:
        if len(node.items) != 1 or not isinstance(self.value(node.items[0].context_expr), _NoGradCtx) or node.items[0].optional_vars:
            raise _Refuse(node, "symgrad reads `with torch.no_grad():` blocks only.")
        self.no_grad += 1
        try:
            for s in node.body:
                # Every value computed in the block is off the graph; reports cite the `with` line.
                self.span = self.span_of(node)
                self.visit(s)
                if self.output is not None:
                    raise _Refuse(s, "A `return` inside `with torch.no_grad():` is not supported.")
        finally:
            self.no_grad -= 1

    # -- conditions

    def test(self, node: ast.expr) -> Any:
        self.pure += 1
        saved, self.no_grad = self.no_grad, 0
        try:
            c = self.value(node)
        finally:
            self.pure -= 1
            self.no_grad = saved
        if isinstance(c, (bool, np.bool_)):
            return sp.true if c else sp.false
        if isinstance(c, sp.Basic):
            # Conditions are not differentiated: detach and .item() change nothing in them.
            c = strip(c)
        if not _is_bool(c):
            raise _Refuse(node, "This condition is not a comparison (`if b:` on a tensor tests b != 0).\n"
                                "Fix: write the comparison out, e.g. `if b != 0:`.")
        return c

    # -- expressions

    def value(self, node: ast.expr, target: sp.Symbol | None = None) -> Any:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            what = {ast.Subscript: "Indexing a tensor (`x[i]`)", ast.ListComp: "A list comprehension",
                    ast.Lambda: "A lambda inside the function", ast.JoinedStr: "An f-string",
                    ast.Tuple: "A tuple", ast.List: "A list", ast.Dict: "A dict"}.get(type(node), f"`{type(node).__name__}`")
            fix = ("Fix: pass the elements you need as separate inputs, or use whole-tensor operations "
                   "(`sum`, `@`, `.T`)." if isinstance(node, ast.Subscript) else
                   "Fix: rewrite it with the operations in docs/supported.md.")
            raise _Refuse(node, f"{what} is not supported by symgrad's source reader. {fix}")
        takes = "target" in method.__code__.co_varnames[: method.__code__.co_argcount]
        return method(node, target) if (target is not None and takes) else method(node)

    def expr_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            if node.value is None:
                return None
            raise _Refuse(node, f"The constant {node.value!r} is not a number.")
        return node.value

    def expr_Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            return self.env[node.id]
        return self.resolve_global(node.id, node)

    def resolve_global(self, name: str, node: ast.AST) -> Any:
        cv = self.closure
        scopes = []
        if cv is not None:
            scopes = [cv.nonlocals, cv.globals, getattr(self.fn, "__globals__", {}), vars(builtins)]
        else:
            scopes = [getattr(self.fn, "__globals__", {}), vars(builtins)]
        for scope in scopes:
            if name in scope:
                return self.from_python(scope[name], name, node)
        raise _Refuse(node, f"`{name}` is not defined where the function can see it.")

    def from_python(self, obj: Any, name: str, node: ast.AST) -> Any:
        import torch

        if isinstance(obj, types.ModuleType):
            return _Module(obj, obj.__name__)
        if isinstance(obj, bool):
            return obj
        if isinstance(obj, numbers.Number) and isinstance(obj, (int, float)):
            return obj
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, torch.Tensor):
            if obj.requires_grad:
                raise _Refuse(node, f"`{name}` is a tensor that requires grad, read from outside the function: "
                                    "its gradient is not one the comparison can see.\nFix: pass it as an argument.")
            if obj.ndim == 0:
                return float(obj.item()) if obj.is_floating_point() else int(obj.item())
            arr = obj.detach().to(torch.float64).cpu().numpy()
            if arr.ndim == 1:
                arr = arr.reshape(-1, 1)
            return sp.ImmutableMatrix([[sp.Float(float(v)) for v in row] for row in arr])
        if isinstance(obj, torch.nn.Module):
            raise _Refuse(node, f"`{name}` is a torch.nn.Module: its parameters are hidden state that symgrad "
                                "cannot see as inputs.\nFix: write the layer out with its weights as arguments "
                                "(`x @ W + b`).")
        if isinstance(obj, type(torch.no_grad)) and obj is torch.no_grad:
            return _Func("torch.no_grad")
        spelled = _objects().get(id(obj))
        if spelled is not None:
            return _Func(spelled)
        if obj is range:
            return obj
        if obj is abs:  # Python's abs of a tensor is Tensor.__abs__, torch.abs itself
            return _Func("torch.abs")
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            if isinstance(obj, types.FunctionType) and getattr(obj, "__module__", "").split(".")[0] != "torch":
                raise _Refuse(node, f"`{name}` is a function of your own; symgrad reads one function at a time "
                                    "and does not follow calls into helpers.\nFix: inline the helper's body "
                                    "into the function you compare.")
            raise _Refuse(node, f"`{name}` is not in symgrad's table of torch functions (docs/supported.md).")
        raise _Refuse(node, f"`{name}` ({type(obj).__name__}) is not a number, a tensor or a torch function.")

    def expr_Attribute(self, node: ast.Attribute) -> Any:
        base = self.value(node.value)
        if isinstance(base, _Module):
            obj = getattr(base.obj, node.attr, None)
            dotted = f"{base.name}.{node.attr}"
            if obj is None:
                raise _Refuse(node, f"`{dotted}` does not exist.")
            if isinstance(obj, types.ModuleType):
                return _Module(obj, obj.__name__)
            if dotted in tn.REFUSED:
                raise _Refuse(node, tn.REFUSED[dotted])
            if base.name == "math" and isinstance(obj, float):
                return obj
            return self.from_python(obj, dotted, node)
        if _is_value(base):
            name = f"Tensor.{node.attr}"
            if node.attr == "T":
                return self.apply(tn.SPELLINGS["Tensor.T"], [base], {}, node)
            if node.attr.endswith("_") and not node.attr.startswith("_"):
                raise _Refuse(node, f"`.{node.attr}` changes a tensor in place. " + _IN_PLACE)
            if name in tn.REFUSED:
                raise _Refuse(node, tn.REFUSED[name])
            if name in tn.SPELLINGS:
                return _Method(name, base)
            raise _Refuse(node, f"`.{node.attr}` of a tensor is not in symgrad's table (docs/supported.md).")
        raise _Refuse(node, f"`.{node.attr}` of {type(base).__name__} is not supported.")

    def _argument(self, node: ast.expr) -> Any:
        """An argument of a call: a value, or a literal True/False (`keepdim=True`), which is a
        flag of the call, not a number of the mathematics."""
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        return self.value(node)

    def expr_Call(self, node: ast.Call, target: sp.Symbol | None = None) -> Any:
        func = self.value(node.func)
        if func is range:
            raise _Refuse(node, "`range` is supported only as the iterable of a `for` loop.")
        if isinstance(func, _Func) and func.name == "torch.no_grad":
            return _NoGradCtx()
        args = [self._argument(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise _Refuse(node, "`**kwargs` in a call is not supported.")
            kwargs[kw.arg] = self._argument(kw.value)
        if isinstance(func, _Method):
            spelling = tn.SPELLINGS[func.name]
            return self.apply(spelling, [func.self_value, *args], kwargs, node, target)
        if isinstance(func, _Func):
            if func.name in tn.REFUSED:
                raise _Refuse(node, tn.REFUSED[func.name])
            spelling = tn.lookup(func.name)
            if spelling is None:
                raise _Refuse(node, f"`{func.name}` is not in symgrad's table (docs/supported.md).")
            return self.apply(spelling, args, kwargs, node, target)
        raise _Refuse(node, "This call is not to a torch function symgrad knows.")

    def apply(self, spelling: tn.Spelling, args: list[Any], kwargs: dict[str, Any], node: ast.AST,
              target: sp.Symbol | None = None) -> Any:
        if spelling.name == "torch.where":
            self.uses_where = True
            c = args[0]
            if isinstance(c, sp.Basic):
                args = [strip(c), *args[1:]]
        sym_args = [a if _is_bool(a) else _sym(a) for a in args]
        sym_kwargs = {k: _sym(v) for k, v in kwargs.items() if v is not None}
        if spelling.name in ("Tensor.item",) and self.pure:
            return sym_args[0]
        try:
            e = spelling.build(sym_args, sym_kwargs)
        except UnsupportedNodeError as err:
            raise _Refuse(node, str(err)) from None
        except (TypeError, ValueError) as err:
            raise _Refuse(node, f"`{spelling.name}` with these arguments cannot be translated ({err}).") from None
        return self.materialise(e, target)

    def expr_BinOp(self, node: ast.BinOp, target: sp.Symbol | None = None) -> Any:
        a = self.value(node.left)
        b = self.value(node.right)
        op = tn.OPERATORS.get(type(node.op).__name__)
        if op is None:
            raise _Refuse(node, f"The operator `{type(node.op).__name__}` is not supported.")
        if _is_number(a) and _is_number(b):
            return _python_op(op, a, b, node)
        return self.apply(tn.SPELLINGS[op], [a, b], {}, node, target)

    def expr_UnaryOp(self, node: ast.UnaryOp, target: sp.Symbol | None = None) -> Any:
        a = self.value(node.operand)
        if isinstance(node.op, ast.UAdd):
            return a
        if isinstance(node.op, ast.Not):
            return sp.Not(a) if isinstance(a, sp.Basic) else (not a)
        if not isinstance(node.op, ast.USub):
            raise _Refuse(node, "The operator `~` is not supported.")
        if _is_number(a):
            return -a
        return self.apply(tn.SPELLINGS["unary -"], [a], {}, node, target)

    def expr_Compare(self, node: ast.Compare) -> Any:
        parts = []
        left = self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.value(right_node)
            rel = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan, ast.Gt: sp.StrictGreaterThan,
                   ast.GtE: sp.GreaterThan, ast.Eq: sp.Eq, ast.NotEq: sp.Ne}.get(type(op))
            if rel is None:
                raise _Refuse(node, "Only <, <=, >, >=, == and != comparisons are supported.")
            if _is_number(left) and _is_number(right):
                parts.append(sp.true if _python_compare(op, left, right) else sp.false)
            else:
                if tn.is_matrix(left) or tn.is_matrix(right):
                    raise _Refuse(node, "A comparison of tensors of rank >= 1 is not a single condition.")
                parts.append(rel(_sym(left), _sym(right)))
            left = right
        return sp.And(*parts) if len(parts) > 1 else parts[0]

    def expr_BoolOp(self, node: ast.BoolOp) -> Any:
        vals = [self.value(v) for v in node.values]
        vals = [sp.true if v is True else (sp.false if v is False else v) for v in vals]
        return sp.And(*vals) if isinstance(node.op, ast.And) else sp.Or(*vals)

    def expr_IfExp(self, node: ast.IfExp, target: sp.Symbol | None = None) -> Any:
        self.uses_if = True
        if self.matrix_mode:
            raise _Refuse(node, "A conditional expression over tensors of rank >= 1 is not supported.")
        cond = self.test(node.test)
        if cond is sp.true:
            return self.value(node.body, target) if target is not None else self.value(node.body)
        if cond is sp.false:
            return self.value(node.orelse, target) if target is not None else self.value(node.orelse)
        # Both values as expressions: only the taken branch runs.
        self.pure += 1
        try:
            a = self.value(node.body)
            b = self.value(node.orelse)
        finally:
            self.pure -= 1
        return self.materialise(self.piecewise(a, cond, b), target)


def _objects() -> dict[int, str]:
    global _OBJECTS
    if _OBJECTS is None:
        _OBJECTS = tn.objects()
    return _OBJECTS


_OBJECTS: dict[int, str] | None = None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_bool(v: Any) -> bool:
    """A condition (a comparison, and/or/not, true/false); a Symbol is an expression here."""
    return isinstance(v, (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction,
                          sp.logic.boolalg.BooleanAtom))


def _is_value(v: Any) -> bool:
    return isinstance(v, sp.Basic) and not _is_bool(v)


def _sym(v: Any) -> Any:
    if isinstance(v, bool):
        return sp.true if v else sp.false
    if isinstance(v, int):
        return sp.Integer(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 2**53:
            return sp.Integer(int(v))
        return sp.Float(v)
    return v


def _python_op(op: str, a: Any, b: Any, node: ast.AST) -> Any:
    try:
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "**": lambda: a ** b}[op]()
    except (ZeroDivisionError, OverflowError, KeyError) as err:
        raise _Refuse(node, f"The constant expression cannot be computed ({err}).") from None


def _python_compare(op: ast.cmpop, a: Any, b: Any) -> bool:
    return {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b, ast.Eq: a == b, ast.NotEq: a != b}[type(op)]


def _assigned_names(body: Sequence[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for s in body:
        for n in ast.walk(s):
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                out |= {t.id for t in targets if isinstance(t, ast.Name)}
    return out


def _compound_assigned(body: Sequence[ast.stmt]) -> set[str]:
    """Names assigned inside a loop, a branch or a with block: they need a variable."""
    out: set[str] = set()
    for s in body:
        if isinstance(s, (ast.While, ast.For, ast.If, ast.With)):
            out |= _assigned_names([s])
    return out


def _returns_folded(body: Sequence[ast.stmt]) -> list[ast.stmt]:
    """`if c: return a` followed by more code is `if c: return a else: <the rest>`."""
    out: list[ast.stmt] = []
    for k, s in enumerate(body):
        if (isinstance(s, ast.If) and s.body and isinstance(s.body[-1], ast.Return) and not s.orelse
                and k + 1 < len(body)):
            folded = ast.If(test=s.test, body=s.body, orelse=_returns_folded(body[k + 1:]))
            ast.copy_location(folded, s)
            out.append(folded)
            return out
        out.append(s)
    return out


# --------------------------------------------------------------------------- entry point


def translate(fn: Any, inputs: Sequence[tuple[str, tuple[int, int] | None]], rank1: Sequence[str] = ()) -> Translation:
    """Read `fn`'s source into a `Program` (scalar inputs) or an expression (matrix inputs).

    `inputs` names the parameters that are inputs, in order, with their matrix shape (None for a
    scalar). Raises `TraceError` with one sentence naming the user's line for anything outside
    the grammar in this module's docstring.
    """
    node, filename, first, width, lines = read_source(fn)
    tr = _Translator(fn, node, filename, first, width, lines, inputs)
    token = tn.RANK1.set(frozenset(s for s in tr.inputs if getattr(s, "name", None) in set(rank1)))
    try:
        tr.run()
        if tr.uses_where and tr.uses_if:
            raise _Refuse(None, "This function uses both `torch.where` (every branch runs) and Python `if` "
                                "(only the taken branch runs); symgrad lowers a program one way or the other.\n"
                                "Fix: use one of the two in the function you compare.")
        out = _sym(tr.output)
        if not isinstance(out, sp.Basic) or _is_bool(out):
            raise _Refuse(node, "The function does not return a tensor.")
        if tr.matrix_mode:
            function: Any = out
        else:
            if not isinstance(out, sp.Symbol) or out in tr.inputs:
                sym = tr.fresh("result")
                tr.emit(cg.Assignment(sym, out))
                out = sym
            function = Program([s for s in tr.inputs], cg.CodeBlock(*tr.block), out)
    except _Refuse as r:
        where = tr.span_of(r.node) if r.node is not None else (tr.span or tr.span_of(node))
        err = TraceError(f"{where}: {r.message}")
        err.span = where  # type: ignore[attr-defined]
        raise err from None
    except UnsupportedNodeError as e:
        where = tr.span or tr.span_of(node)
        err = TraceError(f"{where}: {e}")
        err.span = where  # type: ignore[attr-defined]
        raise err from None
    except Exception as e:  # a ProgramError from validation, or SymPy refusing a node
        if not isinstance(e, (SymgradError, TypeError, ValueError)):
            raise
        where = tr.span or tr.span_of(node)
        err = TraceError(f"{where}: the function cannot be read as a program: {str(e).splitlines()[0]}\n"
                         "Fix: simplify the code around this line (docs/supported.md lists what symgrad reads).")
        err.span = where  # type: ignore[attr-defined]
        raise err from None
    finally:
        tn.RANK1.reset(token)
    return Translation(function, tuple(tr.inputs), dict(tr.origins), "where" if tr.uses_where else "if",
                       span=tr.span_of(node))
