"""A torch function's source, read back into a `Program` in A-normal form, with `SourceSpan`s.

`translate(fn, inputs)` reads `fn`'s source (`inspect.getsource` after `inspect.unwrap`; a
function typed into a notebook cell is found through `linecache`), parses it with `ast`, and
walks it with one visitor method per construct. Grammar of what it accepts:

    function   := "def" name "(" params "):" stmt* | "lambda" params ":" expr
    stmt       := name "=" expr | name op"=" expr                   # Assignment
                | name, ... "=" expr                                 # unpacking (source_python)
                | name "[" index "]" "=" expr | name "." op_ "(...)" # in place (source_inplace)
                | "if" test ":" stmt* ("elif" ...)* ("else:" stmt*)?  # a Piecewise per variable
                | "while" test ":" stmt*                             # While
                | "for" name "in range(" const ("," const)* "):" stmt*   # For over Range
                | "for" name "in" tensor|list ":" stmt*              # unrolled (source_python)
                | "break" | "continue"                               # flags (source_loops)
                | "with torch.no_grad():" stmt*                      # every value: no_grad(...)
                | "assert" ...                                       # checked on the run only
                | "return" expr
    expr       := name | number | expr binop expr | "-" expr | call | expr ".T"
                | expr "if" test "else" expr                         # a Piecewise
    call       := spelling "(" expr, ... ")" | expr "." method "(" ... ")"   # torch_names.SPELLINGS
                | helper "(" ... ")"             # the user's own function, inlined (source_inline)
    test       := comparisons joined by and / or / not (not differentiated: printed inline)

Every torch call and every operator becomes its own `Assignment` (A-normal form): written as one
expression, SymPy would rewrite `torch.sqrt(x**2)` to `Abs(x)`, whose autograd at 0 is not the
user's (nan). Each node is built as written, never evaluated (`torch_names.Spelling.node`): SymPy
folds `a / a` to 1 and `a - a` to 0 (no gradient left), `t * (x / t)` in a branch to x and
`(x * 3) * 5` to `15*x` (other floats). A `while` whose condition is true and reads nothing the
loop changes never ends: it is a `LoopLimitError` naming the user's loop, before anything runs. The branches of an `if` are the exception: their values are written into one
Piecewise per assigned variable (only the taken branch runs, as in Python). A function of matrix
inputs (tensors of rank >= 1) is translated into one expression instead, since a `Program`'s
variables are scalars; control flow there is refused.

Names resolve through one table (`torch_names.py`); constants come from the function's globals
and closure. Every construct outside this grammar is refused with one sentence naming the user's
line (`TraceError`), never a traceback. Each node records where it came from (`origins`): the
line, and the user's own code for it (`SourceSpan.code`), which messages name it by.

Three translators share one `TranslationState` (`source_state.py`): this module's
`StatementTranslator` reads statements and owns an `ExpressionTranslator`
(`source_expressions.py`: operators, comparisons, conditions), which owns a `CallTranslator`
(`source_calls.py`: names, attributes and calls through the spelling table).
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sympy as sp
from sympy.codegen import ast as cg

from . import source_data as sd
from . import source_indexing as ix
from . import source_inplace as inplace
from . import source_fills as fills
from . import source_loops as loops
from . import source_python as py
from . import source_random as draws
from . import source_tuples as tuples
from . import torch_names as tn
from .source_calls import NoGradCtx
from .source_expressions import ExpressionTranslator
from .source_state import IN_PLACE, Bound, Data, ProgramNeeded, Refuse, TranslationState, is_bool, to_sympy
from ..base.errors import LoopLimitError, SymgradError, TraceError, UnsupportedNodeError
from ..program.elementwise import MatrixPiecewise
from ..program.primitives import PRIMITIVES
from ..program.program import Program, Vector
from ..sides import order as made_in


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """Where a node came from in the user's code: file, line (1-based), columns, the line's text,
    and `code`, the user's own spelling of the expression that made the node (`x.sum().item()`;
    empty where it is the whole statement)."""

    file: str
    line: int
    col: int
    end_col: int
    text: str
    code: str = ""

    def __str__(self) -> str:
        where = place(self.file, self.line)
        return f"{where} {self.text}" if self.text else where


# IPython's names for a cell: `<ipython-input-7-0123456789ab>` (a terminal) and
# `/tmp/ipykernel_1234/2454120525.py` (ipykernel: Jupyter, VS Code).
_INPUT_CELL: Final = re.compile(r"^<ipython-input-(\d+)-[0-9a-f]+>$")


def cell_name(file: str) -> str | None:
    """A notebook cell as Jupyter names it (`In [2]`): IPython's own map from a cell's file name
    to its execution count, where IPython runs and knows the file; else None (a file)."""
    if "ipykernel_" not in file and not file.startswith("<ipython-input-"):
        return None
    try:
        import IPython  # optional third-party: present where a notebook or an IPython shell runs
    except ImportError:
        IPython = None
    shell = IPython.get_ipython() if IPython is not None else None
    number = getattr(getattr(shell, "compile", None), "_filename_map", {}).get(file)
    if isinstance(number, int):
        return f"In [{number}]"
    found = _INPUT_CELL.match(file)
    return f"In [{found.group(1)}]" if found else None


def place(file: str, line: int) -> str:
    """Where a line is, as the user knows it: `model.py:12`, or `In [2], line 3` in a notebook."""
    cell = cell_name(file)
    return f"{cell}, line {line}" if cell is not None else f"{file.rsplit('/', 1)[-1]}:{line}"


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
    returned: Any = None  # a returned tuple (source_tuples.Returned): the output's labels
    data: dict[str, Any] = field(default_factory=dict)  # data leaves (source_data.DataLeaf) by name: bound at the point
    rank1_output: bool = False  # it returns a rank-1 tensor: its elements are `f[i]`
    constants: dict[Any, tuple[str, str]] = field(default_factory=dict)  # data as constant tensors: their names


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


# --------------------------------------------------------------------------- the statement translator


class StatementTranslator(ast.NodeVisitor):
    """The function's statements, one `visit_<Node>` each; its expressions go to `expressions`."""

    def __init__(self, fn: Any, node: ast.AST, filename: str, first: int, width: int, lines: list[str],
                 inputs: Sequence[tuple[str, tuple[int, int] | None]], data: Mapping[str, Any] | None = None,
                 objects: Mapping[str, Bound] | None = None, matrix_mode: bool | None = None,
                 state: TranslationState | None = None) -> None:
        self.node = node
        self.filename = filename
        self.first = first
        self.width = width
        self.lines = lines
        # A function called from the one being read (`inline`) reads into the caller's state.
        self.state = state if state is not None else TranslationState(node, inputs, data, objects, matrix_mode)
        if state is None:
            self.state.locate = lambda n: self.span_of(n, code=True)
            self.state.inline = lambda f, values, prefix: inline(f, values, self.state, prefix)
            code = getattr(inspect.unwrap(fn), "__code__", None)
            self.state.calling.append((code, getattr(fn, "__name__", "the function")))  # a call of itself is recursion
        self.inlined = state is not None  # a helper's body or a submodule's forward, read into its caller
        self.expressions = ExpressionTranslator(self.state, fn)
        assigned = _assigned_names(node.body if isinstance(node.body, list) else [])  # type: ignore[attr-defined]
        self.compound = _compound_assigned(node.body if isinstance(node.body, list) else [])  # type: ignore[attr-defined]
        # A parameter the function assigns to: a variable of its own from the start (its first value
        # the input), so that a loop's later iterations read the variable, not the input. A tensor
        # parameter is copied only where a loop or branch assigns it (straight-line code inlines it).
        self.copies = [name for name, shp in inputs
                       if name in assigned and (shp is None or (not self.state.matrix_mode and name in self.compound))]
        self.output: Any = None
        self.returned: tuples.Returned | None = None  # a returned tuple's labels

    def span_of(self, node: ast.AST, code: bool = False) -> SourceSpan:
        """Where `node` is in the user's file; with `code`, the user's text of the expression too."""
        k = getattr(node, "lineno", 1) - 1
        text = self.lines[k] if 0 <= k < len(self.lines) else ""
        col = getattr(node, "col_offset", 0) + max(self.width, 0)
        end = getattr(node, "end_col_offset", None)
        one_line = end is not None and getattr(node, "end_lineno", None) == getattr(node, "lineno", None)
        end_col = (end + max(self.width, 0)) if one_line else len(text)
        spelled = ""
        if code:
            spelled = text[col:end_col] if one_line and 0 <= col < end_col <= len(text) else ast.unparse(node)
        return SourceSpan(self.filename, self.first + k, col, end_col, text.strip(), spelled)

    # -- the function

    def run(self) -> None:
        node = self.node
        self.state.span = self.span_of(node)
        for name in sorted(self.compound):  # data a loop changes from its first pass: a variable of the program
            given = self.state.env.get(name)
            value = sd.changed_by_loop(given, self.state)
            if value is not given and not self.state.matrix_mode:
                self.state.bind_matrix(name, value)
        for name in self.copies:
            value = self.state.env[name]
            if tn.is_matrix(value):
                self.state.bind_matrix(name, value)
                continue
            self.state.emit(cg.Assignment(self.state.var(name), value))
            self.state.env[name] = self.state.var(name)
        if isinstance(node, ast.Lambda):
            self.state.span = self.span_of(node.body)
            self.output = self.expressions.value(node.body)
            return
        body = node.body  # type: ignore[attr-defined]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body = body[1:]  # the docstring
        self.statements(_returns_folded(body))
        if self.output is None:
            raise Refuse(node, "The function never returns a value, so there is nothing to differentiate.")

    def statements(self, stmts: Sequence[ast.stmt]) -> None:
        for k, s in enumerate(stmts):
            if self.output is not None:
                raise Refuse(s, "Code after a `return` never runs.")
            self.state.span = self.span_of(s)
            self.visit(s)

    def generic_visit(self, node: ast.AST) -> Any:
        what = {ast.Break: "`break`", ast.Continue: "`continue`", ast.Try: "`try`", ast.Raise: "`raise`",
                ast.FunctionDef: "a nested `def`", ast.Global: "`global`",
                ast.Nonlocal: "`nonlocal`", ast.Delete: "`del`", ast.Import: "`import`",
                ast.ImportFrom: "`import`"}.get(type(node), f"`{type(node).__name__}`")
        fix = {ast.Break: "Fix: write the exit into the loop's condition (`while cond and not done:` is not "
               "supported either; compute the stopping condition from the loop variables).",
               ast.Continue: "Fix: put the rest of the body under an `if`."}.get(type(node), "Fix: rewrite it "
               "with assignments, if/else, while, for over range, and `with torch.no_grad():`.")
        raise Refuse(node, f"{what} is not part of the grammar symgrad reads.\n{fix}")

    def visit_Pass(self, node: ast.Pass) -> None:
        return None

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant):
            return None
        if fills.statement(self, node):  # `w.uniform_(a, b)`, `nn.init.normal_(w)`: a draw of the user's run
            return None
        if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute) and node.value.func.attr.endswith("_"):
            inplace.method(self, node)  # `y.add_(1)`: `y = y.add(1)`, where torch allows it
            return None
        raise Refuse(node, "A bare expression statement computes a value and throws it away (or changes "
                           "something in place), which symgrad cannot follow.\nFix: assign the value to a name.")

    def visit_Assign(self, node: ast.Assign) -> None:
        names = py.unpack_targets(node)
        if names is not None:
            py.unpack(self, names, node)
            return
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript) and not self.state.pure:
            inplace.put(self, node.targets[0], node.value, node)  # `a[i] = v`: an index-put
            return
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr == "data":
                    raise inplace.behind_autograd(self, node)
                inplace.item_target(self, node, t)
            raise Refuse(node, "Only assignments to a single name are supported (no tuple unpacking).\n"
                               "Fix: assign each value to its own name.")
        self.assign(node.targets[0].id, node.value)

    def code_of(self, node: ast.AST) -> str:
        """The user's own text of `node` (its first line, for a statement over several)."""
        return self.span_of(node, code=True).code.splitlines()[0].strip()

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name) or node.value is None:
            raise Refuse(node, "Only annotated assignments to a name with a value are supported.")
        self.assign(node.target.id, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Subscript) and not self.state.pure:
            inplace.put(self, node.target, node.value, node, node.op)  # `a[i] += v`
            return
        if isinstance(node.target, ast.Attribute) and node.target.attr == "data":
            raise inplace.behind_autograd(self, node)  # `x.data *= 100`
        if not isinstance(node.target, ast.Name):
            inplace.item_target(self, node, node.target)
        inplace.refuse_leaf(self, node.target.id, node)  # `x *= 2` of an input: torch's error
        inplace.refuse_alias(self, node.target.id, node)  # `b = a; b *= 2` changes a too
        binop = ast.BinOp(left=ast.Name(id=node.target.id, ctx=ast.Load()), op=node.op, right=node.value)
        ast.copy_location(binop, node)
        self.assign(node.target.id, binop)

    def assign(self, name: str, value_node: ast.expr) -> None:
        if isinstance(value_node, (ast.List, ast.Tuple)) and name not in self.compound:
            # `preds = [p1, p2]`: a Python list of values, handed on as it is (to torch.cat, torch.stack,
            # sum); one a loop changes is no value of the program (a sentence where it is read)
            self.state.env[name] = [self.expressions.value(e) for e in value_node.elts]
            return
        if self.state.pure or self.state.matrix_mode:
            self.state.env[name] = sd.name_constant(self.state, name, self.expressions.value(value_node))
            self.state.bound_making(name, value_node)
        else:
            self.bind(name, sd.name_constant(self.state, name, self.expressions.value(value_node, target=self.state.var(name))), value_node)
        inplace.track(self.state, name, value_node)

    def bind(self, name: str, v: Any, value_node: ast.expr) -> None:
        """`name` given the value `v`, computed from `value_node` (a statement where it needs one)."""
        needs_symbol = name in self.compound or name in self.state.params
        if needs_symbol:
            v = sd.changed_by_loop(v, self.state)  # data a loop changes: a variable of the program, never read once
        target = self.state.var(name)
        if tn.is_matrix(v) and (needs_symbol or isinstance(v, MatrixPiecewise)):
            self.state.bind_matrix(name, v)
            return
        if needs_symbol and isinstance(v, (int, float)) and not isinstance(v, bool):
            # A Python number that a loop or branch changes (a counter `k += 1`): a variable of the
            # program, so that a condition reading it (`while v < 100 and k < 3`) is kept, never
            # folded to its value at the first test.
            v = to_sympy(v)
        if isinstance(v, sp.Basic) and not tn.is_matrix(v) and not is_bool(v):
            if v != target:
                # A plain name, a number, or an op that SymPy folded: still one statement, so
                # loops and branches see a variable.
                # An alias (`v = x`) only of a name no later branch or loop rebinds: `v = x`, then
                # `x = x * 3.0` in a branch, must leave v the old x.
                rebound = isinstance(value_node, ast.Name) and value_node.id in self.compound
                if isinstance(v, sp.Symbol) and not needs_symbol and not rebound:
                    self.state.env[name] = v
                    return
                if v.is_number and not v.has(*PRIMITIVES) and not needs_symbol:
                    self.state.env[name] = v
                    return
                self.state.emit(cg.Assignment(target, v))
            self.state.env[name] = target
        else:
            self.state.env[name] = v

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is None:
            raise Refuse(node, "`return` without a value: there is nothing to differentiate.")
        if isinstance(node.value, ast.Tuple) and self.inlined:  # a helper's values, unpacked by its caller
            self.output = tuple(self.expressions.value(e) for e in node.value.elts)
            return
        if isinstance(node.value, ast.Tuple):  # several values: one output, their elements in order
            self.output, returned = tuples.flattened_return(node, self.expressions.value)
            # Two `return`s of tuples (one per branch): their labels, and no one expression per value.
            self.returned = returned if self.returned is None else tuples.Returned(returned.labels, ())
            return
        if self.state.pure or self.state.matrix_mode:
            self.output = self.expressions.value(node.value)
            return
        v = self.expressions.value(node.value, target=self.state.var("result") if "result" not in self.state.vars else self.state.fresh("result"))
        self.output = v

    def visit_If(self, node: ast.If) -> None:
        self.state.uses_if = True
        cond = self.expressions.test(node.test)
        if cond is sp.true or cond is True:
            self.statements(node.body)
            return
        if cond is sp.false or cond is False:
            self.statements(node.orelse)
            return
        # Both branches as expressions: one Piecewise per variable they assign.
        before = dict(self.state.env)
        outs = []
        drawn = draws.position()  # the random draws read before this `if` (source_random)
        for body in (node.body, node.orelse):
            self.state.env = dict(before)
            self.state.pure += 1
            saved_output, self.output = self.output, None
            try:
                with draws.branch(drawn):
                    self.statements(body)
            finally:
                self.state.pure -= 1
            outs.append((self.state.env, self.output))
            self.output = saved_output
        self.state.env = dict(before)
        self.state.span = self.span_of(node)
        (then_env, then_out), (else_env, else_out) = outs
        if (then_out is None) != (else_out is None):
            raise Refuse(node, "Only one branch of this `if` returns.\nFix: return in both branches, or "
                               "assign a variable in each branch and return it after the `if`.")
        if then_out is not None:
            self.output = self.state.materialise(self.expressions.piecewise(then_out, cond, else_out), target=self.state.var("result"))
            return
        names = [n for n in {**then_env, **else_env} if then_env.get(n) is not before.get(n) or else_env.get(n) is not before.get(n)]
        chosen: dict[str, Any] = {}
        for name in names:
            a, b = then_env.get(name), else_env.get(name)
            if a is None or b is None:
                raise Refuse(node, f"`{name}` is assigned in only one branch of this `if` and has no value "
                                   "before it.\nFix: give it a value before the `if`.")
            chosen[name] = self.expressions.piecewise(a, cond, b)
        loops.assign_chosen(self.state, chosen)

    def _loop_allowed(self, node: ast.AST) -> None:
        if self.state.pure or self.state.matrix_mode:
            raise Refuse(node, "A loop inside an `if` branch (or over matrix values) is not supported.\n"
                               "Fix: move the loop out of the branch.")

    def _loop_body(self, node: ast.While | ast.For) -> cg.CodeBlock:
        """The loop's statements, translated with the loop's own line as their span."""
        self.state.span = self.span_of(node)
        span = self.state.span
        outer, self.state.block = self.state.block, []
        self.state.looping += 1
        try:
            self.statements(node.body)
        finally:
            self.state.looping -= 1
        body, self.state.block = self.state.block, outer
        self.state.span = span
        return cg.CodeBlock(*body) if body else cg.CodeBlock()

    def visit_While(self, node: ast.While) -> None:
        self._loop_allowed(node)
        node = loops.without_exits(self, node)  # type: ignore[assignment]
        if node.orelse:
            raise Refuse(node, "`while ... else` is not supported.")
        cond = self.expressions.test(node.test)
        if cond is sp.false:
            return  # the body never runs, as in Python
        if cond is sp.true:
            raise _endless(self, node)
        self.state.emit(cg.While(cond, self._loop_body(node)))

    def visit_For(self, node: ast.For) -> None:
        self._loop_allowed(node)
        py.for_loop(self, loops.without_exits(self, node))  # type: ignore[arg-type]

    def visit_Assert(self, node: ast.Assert) -> None:
        return None  # checked on the run (the fidelity check runs your function), never part of the mathematics

    def visit_With(self, node: ast.With) -> None:
        if len(node.items) != 1 or not isinstance(self.expressions.value(node.items[0].context_expr), NoGradCtx) or node.items[0].optional_vars:
            raise Refuse(node, "symgrad reads `with torch.no_grad():` blocks only.")
        self.state.no_grad += 1
        try:
            for s in node.body:
                # Every value computed in the block is off the graph; reports cite the `with` line.
                self.state.span = self.span_of(node)
                self.visit(s)
                if self.output is not None:
                    raise Refuse(s, "A `return` inside `with torch.no_grad():` is not supported.")
        finally:
            self.state.no_grad -= 1


def _endless(tr: StatementTranslator, node: ast.While) -> LoopLimitError:
    """A loop whose condition holds and reads nothing the loop changes never ends (without
    `break`, which symgrad does not read): said before anything runs it, your function included."""
    changed = _assigned_names(node.body)
    read = sorted({n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)} - changed)
    values = ", ".join(f"{name} = {tr.state.env[name]}" for name in read
                       if isinstance(tr.state.env.get(name), (int, float, sp.Number)))
    what = (f"reads only {', '.join(f'`{n}`' for n in read)}, which the loop never changes"
            + (f" ({values} here)" if values else "") if read else "reads nothing the loop changes")
    where = tr.span_of(node)
    return LoopLimitError(
        f"{place(where.file, where.line)}: the loop `while {tr.code_of(node.test)}:` never ends: its "
        f"condition is true at the start and {what}, so it is true on every pass (symgrad does not read `break`).\n"
        "Fix: change what the condition reads inside the loop (e.g. `k = k + 1` for a counter `k`), or loop "
        "over `range(n)`.")


def _assigned_names(body: Sequence[ast.stmt]) -> set[str]:
    """Names the statements assign: `y = ...`, `a, b = ...`, and in place (`y.add_(1)`, `a[i] = v`)."""
    out: set[str] = set()
    for s in body:
        for n in ast.walk(s):
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                for t in targets:
                    t = t.value if isinstance(t, ast.Subscript) else t
                    out |= {e.id for e in ((t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])) if isinstance(e, ast.Name)}
            elif (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Attribute)
                  and n.value.func.attr.endswith("_") and isinstance(n.value.func.value, ast.Name)):
                out.add(n.value.func.value.id)
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


# --------------------------------------------------------------------------- a call read into its caller


def inline(fn: Any, values: Mapping[str, Any], state: TranslationState, prefix: str) -> Any:
    """The value of a call of `fn` (a submodule's `forward`) made from the function being read:
    `fn`'s own source read into the caller's `state` with its parameters bound to `values`, its
    variables named under `prefix` (`fc1.h`), every node citing `fn`'s own lines. A refusal
    inside it cites `fn`'s line; a body with control flow in a reading of one matrix expression
    is `ProgramNeeded` (the reading starts again as a Program)."""
    node, filename, first, width, lines = read_source(fn)
    if state.matrix_mode and any(isinstance(n, (ast.If, ast.While, ast.For, ast.IfExp)) for n in ast.walk(node)):
        raise ProgramNeeded()
    tr = StatementTranslator(fn, node, filename, first, width, lines, (), None, state=state)
    saved = state.enter(node, dict(values), prefix, lambda n: tr.span_of(n, code=True))
    assigned = _assigned_names(node.body if isinstance(node.body, list) else [])  # type: ignore[attr-defined]
    tr.copies = [name for name, v in values.items() if name in assigned and not isinstance(v, (Bound, Data))
                 and (not tn.is_matrix(v) or (not state.matrix_mode and name in tr.compound))]  # data: a value, as at top level
    try:
        tr.run()
    except Refuse as r:
        if r.span is None:
            r.span = tr.span_of(r.node) if r.node is not None else (state.span or tr.span_of(node))
        raise
    except UnsupportedNodeError as e:
        r = Refuse(None, str(e))
        r.span = state.span or tr.span_of(node)
        raise r from None
    finally:
        state.leave(saved)
    return tr.output


# --------------------------------------------------------------------------- entry point


def translate(fn: Any, inputs: Sequence[tuple[str, tuple[int, int] | None]], rank1: Sequence[str] = (),
              data: Mapping[str, Any] | None = None, objects: Mapping[str, Bound] | None = None,
              matrix_mode: bool | None = None) -> Translation:
    """Read `fn`'s source into a `Program` (scalar inputs) or an expression (matrix inputs).

    `inputs` names the parameters that are inputs, in order, with their matrix shape (None for a
    scalar). `objects` binds names of the function (`self`, `model`) to objects read through
    their attributes and calls (`modules.py`); `matrix_mode` decides between one matrix expression
    and a Program where the functions it calls decide it (None: this function's own body).
    Raises `TraceError` with one sentence naming the user's line for anything outside the grammar
    in this module's docstring (`ProgramNeeded` where a called function needs a Program).
    """
    node, filename, first, width, lines = read_source(fn)
    tr = StatementTranslator(fn, node, filename, first, width, lines, inputs, data, objects, matrix_mode)
    for k, s in enumerate(tr.state.inputs):  # a rank-1 input: its elements read `b1[3]`, as the user indexes them
        if isinstance(s, sp.MatrixSymbol) and s.name in set(rank1) and tr.state.env.get(s.name) == s:
            tr.state.inputs[k] = tr.state.env[s.name] = Vector(s.name, *s.shape)
    token = tn.RANK1.set(frozenset(s for s in tr.state.inputs if getattr(s, "name", None) in set(rank1)))
    try:
        tr.run()
        if tr.state.uses_where and tr.state.uses_if:
            raise Refuse(None, "This function uses both `torch.where` (every branch runs) and Python `if` "
                               "(only the taken branch runs); symgrad lowers a program one way or the other.\n"
                               "Fix: use one of the two in the function you compare.")
        out = to_sympy(tr.output)
        if not isinstance(out, sp.Basic) or is_bool(out):
            raise Refuse(node, "The function does not return a tensor.")
        rank1_out = tn.is_matrix(out) and tn.rank1(out) is True  # read while the rank-1 inputs are known
        if tr.state.matrix_mode:
            function: Any = out
            made_in.remember(out, tuple(tr.state.made))  # the lowering writes the steps in this order
        else:
            if not tn.is_matrix(out) and (not isinstance(out, sp.Symbol) or out in tr.state.inputs):
                sym = tr.state.fresh("result")
                tr.state.emit(cg.Assignment(sym, out))
                out = sym
            function = Program([*tr.state.inputs, *(v.symbol for v in sd.leaves_of(tr.state).values())],
                               cg.CodeBlock(*tr.state.block), out)
    except LoopLimitError:
        raise  # a loop that never ends: path mode would run your function forever
    except Refuse as r:
        where = r.span or (tr.span_of(r.node) if r.node is not None else (tr.state.span or tr.span_of(node)))
        err = TraceError(f"{where}: {r.message}")
        err.span = where  # type: ignore[attr-defined]
        raise err from None
    except UnsupportedNodeError as e:
        where = tr.state.span or tr.span_of(node)
        err = TraceError(f"{where}: {e}")
        err.span = where  # type: ignore[attr-defined]
        raise err from None
    except Exception as e:  # a ProgramError from validation, or SymPy refusing a node
        if not isinstance(e, (SymgradError, TypeError, ValueError)):
            raise
        where = tr.state.span or tr.span_of(node)
        err = TraceError(f"{where}: the function cannot be read as a program: {str(e).splitlines()[0]}\n"
                         "Fix: simplify the code around this line (docs/supported.md lists what symgrad reads).")
        err.span = where  # type: ignore[attr-defined]
        raise err from None
    finally:
        tn.RANK1.reset(token)
    leaves = sd.leaves_of(tr.state)
    return Translation(function, (*tr.state.inputs, *(v.symbol for v in leaves.values())), dict(tr.state.origins),
                       "where" if tr.state.uses_where else "if", span=tr.span_of(node), returned=tr.returned, data=leaves,
                       rank1_output=tr.returned is None and rank1_out, constants=dict(tr.state.constant_names))
