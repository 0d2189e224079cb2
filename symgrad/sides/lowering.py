"""Lower a normalised function to a readable torch program and its IR (the records are `ir`'s).

The generated program is written for students, so it reads like a worked solution. Grammar of
what this module produces (A-normal form: the operands of every operation are names or
constants, never nested operations):

    program   := header imports "def f(" inputs "):" block "return" operand
    block     := statement*
    statement := comment? name "=" operation(operand, ...)        # a `Step`, one line
               | "if" cond ":" block ("elif" cond ":" block)* "else:" block     # an `If`
               | "while" cond ":" block                                          # a `While`
               | "for" name "in range(" operand "," operand "," operand "):" block # a `For`
               | "with torch.no_grad():" block                                   # a `NoGrad`
    operand   := name | constant
    cond      := a comparison (or and/or/not of them), printed inline: it is not differentiated

Every statement records the SymPy node it implements and its line number in `source`; the
executed path (`executed.py`) is rebuilt by running exactly this IR with exact arithmetic, so the
lines that reports cite are the lines that ran.

Piecewise lowers with `branches="if"` to Python `if`/`elif`/`else` (only the taken branch runs)
and with `branches="where"` to nested `torch.where` (every branch runs).

Which op a node becomes is `selection`'s, and how an op, a constant or a variable is spelled in
the text is `spelling`'s; this module walks the function and writes the lines (`_Lowerer` the
statements, `_Expressions` the expressions, `_Writer` the text and its line map).
"""

from __future__ import annotations

import functools
import itertools
import keyword
import linecache
import math
import re
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
import torch
from sympy.codegen import ast

from ..program import exact as ex
from ..program import custom
from ..program.deep import deep
from ..base.errors import OptionError, ProgramError, UnsupportedNodeError
from ..program.elementwise import Alias, MatrixPiecewise, is_elementwise, readable
from ..program.primitives import no_grad
from ..program.program import RESERVED_NAMES, DataMatrix, Normalized, free_symbols, identifier, identifier_chars, node_text, normalize, sstr
from ..base.errors import OPTION
from .dtypes import DtypeBook
from .order import Making, Makings, of as made_in
from .lowering_lines import prune
from .ir import Branch, Branches, Cond, Const, For, If, LoweredProgram, NoGrad, Operand, Step, Stmt, While
from .selection import reads_symbols, select, single_op, summed_matrix, unit_scaled, unsupported
from .spelling import (FUNC_NAMES, Inline, SharedStr, const_of, constant_name, matconst_text, name_for, name_part, named_key,
                       node_comment, operand_text, safe_comment, spell, torch_call_comment)

DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}
# The default relative tolerance between the executed derivative and autograd, per dtype (`rtol=`).
RTOL: Final[dict[str, float]] = {"float64": 1e-9, "float32": 1e-4}

_counter = itertools.count(1)

# --------------------------------------------------------------------------- the lowerer


class _Namer:
    """Unique, readable, length-capped names built from operands (`x_pow_2`, `sin_x`)."""

    MAX = 24

    def __init__(self) -> None:
        # `out` stays free for the output; builtins and modules the program calls never shadow.
        self.used: set[str] = set(RESERVED_NAMES - {"out"})

    def reserve(self, name: str) -> None:
        self.used.add(name)

    def fresh(self, base: str) -> str:
        # Keep a trailing underscore: `identifier()` adds one to keywords (`lambda_`).
        base = identifier_chars(base).lstrip("_")[: self.MAX] or "t"
        if not base[0].isidentifier():
            base = "t_" + base
        if not base.isidentifier():  # cut through a combining sequence
            base = "t_" + re.sub(r"[^A-Za-z0-9_]+", "_", base)
        if keyword.iskeyword(base):
            base += "_"
        name, k = base, 2
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name


class _Scope:
    """Subexpressions already computed and visible here (a branch sees its parent's)."""

    def __init__(self, parent: _Scope | None = None) -> None:
        self.parent = parent
        self.memo: dict[sp.Basic, Operand] = {}

    def get(self, node: sp.Basic) -> Operand | None:
        scope: _Scope | None = self
        while scope is not None:
            if node in scope.memo:
                return scope.memo[node]
            scope = scope.parent
        return None


_HAZARD_COMMENTS = {
    "relu": "torch: relu'(0) = 0",
    "clamp_min": "torch: clamp's gradient is 1 at its boundary",
    "clamp_max": "torch: clamp's gradient is 1 at its boundary",
    "maximum": "torch: a tie splits the gradient 1/2 : 1/2",
    "minimum": "torch: a tie splits the gradient 1/2 : 1/2",
    "abs": "torch: abs'(0) = 0",
    "sign": "gradient 0 everywhere",
    "floor": "gradient 0 everywhere",
    "ceil": "gradient 0 everywhere",
    "heaviside": "Heaviside: 1/2 at 0, gradient 0",
    "where": "torch.where runs both branches",
    "item": "a Python number: leaves the autograd graph",
}


# A subtree nesting deeper than this is lowered bottom-up (`_Expressions._warm_operands`).
DEEP_OPERANDS: Final = 64


def _deeper_than(e: sp.Basic, limit: int) -> bool:
    """Whether `e` nests more than `limit` levels: a walk that stops at that depth, each node
    once per depth reached."""
    best: dict[int, int] = {}  # by id: the nodes live in `e`
    stack = [(e, 0)]
    while stack:
        node, d = stack.pop()
        if d > limit:
            return True
        if best.get(id(node), -1) >= d:
            continue
        best[id(node)] = d
        stack.extend((a, d + 1) for a in node.args if isinstance(a, sp.Basic))
    return False


class _Writer:
    """The generated source as it is written: its lines and their indentation, the line that
    computes each node, the variables' names, and the comment above each step."""

    def __init__(self, norm: Normalized, dtype: str) -> None:
        self.norm = norm
        self.dtype = dtype
        self.lines: list[str] = []
        self.line_map: dict[sp.Basic, int] = {}
        self.namer = _Namer()
        self.var_names: dict[sp.Symbol, str] = {}
        for s in norm.inputs:
            self.var_names[s] = self.namer.fresh(identifier(s.name))
        self.indent = 1
        self.dtypes = DtypeBook(dtype)  # a variable's dtype after a cast of a computed value
        self.label: str | None = None  # the statement a target step completes (`b = 2*b`)
        self._sizes: dict[int, int] = {}  # node id -> size, for comments (nodes live as long as this)
        self._printer = SharedStr()

    # -- emission

    def emit(self, text: str) -> int:
        self.lines.append("    " * self.indent + text)
        return len(self.lines)

    def comment(self, node: sp.Basic, note: str = "", target: str | None = None, operands: str | None = None,
                names: Callable[[sp.Basic], str | None] | None = None) -> None:
        text = node_comment(node, self.norm.user_symbols, self._sizes, operands, self._printer, names)
        if target is not None and self.label is not None:
            text, self.label = safe_comment(self.label), None
        self.emit(f"# {text}{note}")

    def record(self, node: sp.Basic, line: int) -> None:
        # Real-symbol nodes only: `line_of` turns a user's node into this form when asked.
        self.line_map.setdefault(node, line)

    def var(self, sym: sp.Symbol) -> str:
        if sym not in self.var_names:
            self.var_names[sym] = self.namer.fresh(identifier(sym.name))
        return self.var_names[sym]

    def cond(self, expr: sp.Basic, elementwise: bool = False) -> Cond:
        syms = sorted((s for s in expr.free_symbols if isinstance(s, sp.Symbol)), key=lambda s: s.name)
        names = tuple((s, self.var(s)) for s in syms)
        text = Inline(dict(names), elementwise).cond(expr)
        return Cond(expr, text, names)


class _Expressions:
    """Expressions in A-normal form, one step per op, written by a `_Writer`; Piecewise and
    no_grad too, the expressions that lower to blocks (`if`, `torch.where`, `with torch.no_grad()`)."""

    def __init__(self, writer: _Writer, branches: Branches) -> None:
        self.writer = writer
        self.branches = branches
        self._warming = False  # inside `_warm_operands`
        self._depth = 0  # how deep `expr` calls are nested
        self._elementwise = 0  # inside the body of an elementwise function: Piecewise is `torch.where`
        self.makings = Makings()  # each making of a node in the user's order, and which the step reads
        self.context: sp.Basic | None = None if writer.norm.is_program else writer.norm.output  # for messages

    def has_symbols(self, e: sp.Basic) -> bool:
        """Whether `e` needs steps: it reads a symbol, or holds one of our primitives (`detach(2)`
        is a number to SymPy, but a tensor operation to the program)."""
        return reads_symbols(e)

    # -- expressions (A-normal form)

    def expr(self, e: sp.Basic, scope: _Scope, out: list[Stmt], target: str | None = None) -> Operand:
        if self._depth == 0:
            # An expression of a statement or the output: a deep one has its steps lowered
            # bottom-up first, so that the recursion below is shallow.
            self._warm_operands(e, scope, out)
        self._depth += 1
        try:
            return self._expr(e, scope, out, target)
        finally:
            self._depth -= 1

    def _warm_operands(self, root: sp.Basic, scope: _Scope, out: list[Stmt]) -> None:
        """Lower the operands of `root` bottom-up with an explicit stack, in the order the
        recursion would (operands left to right, each node once), when its subtree nests more
        than DEEP_OPERANDS levels: recursion that deep is slow in Python (each level costs more
        the deeper the stack) and every step is then found in `scope`. Piecewise and no_grad
        lower their own parts."""
        if self._warming or isinstance(root, (sp.Symbol, sp.MatrixSymbol)) or not _deeper_than(root, DEEP_OPERANDS):
            return
        self._warming = True
        try:
            stack: list[tuple[sp.Basic, bool]] = [(root, False)]
            seen: dict[int, sp.Basic] = {}  # by id, holding the node (operands may be new nodes)
            while stack:
                e, ready = stack.pop()
                if ready:
                    if e is not root:
                        self._expr(e, scope, out)
                    continue
                if id(e) in seen or isinstance(e, (sp.Symbol, sp.MatrixSymbol)) or scope.get(e) is not None:
                    continue
                if not self.has_symbols(e) and not isinstance(e, (sp.Piecewise, MatrixPiecewise)):
                    continue
                seen[id(e)] = e
                stack.append((e, True))
                if isinstance(e, (sp.Piecewise, MatrixPiecewise, no_grad)):
                    continue
                try:
                    _, operands, _ = select(e)
                except UnsupportedNodeError:
                    continue  # lowered (and refused, with its sentence) by the recursion
                stack.extend((a, False) for a in reversed(operands))
        finally:
            self._warming = False

    def _expr(self, e: sp.Basic, scope: _Scope, out: list[Stmt], target: str | None = None) -> Operand:
        e = unit_scaled(e)
        if isinstance(e, (sp.Symbol, sp.MatrixSymbol)):
            return self.writer.var(e)
        if not self.has_symbols(e) and not isinstance(e, (sp.Piecewise, MatrixPiecewise)):
            if getattr(e, "is_number", False) and not isinstance(e, (sp.MatrixBase, sp.MatrixExpr)):
                return const_of(e)
        hit = scope.get(e) if _shared(e) else None
        if hit is not None:
            return hit
        if isinstance(e, (sp.Piecewise, MatrixPiecewise)):
            result = self.piecewise(e, scope, out, target)
        elif is_elementwise(e) and single_op(e) is None:
            result = self.elementwise(e, scope, out, target)
        elif isinstance(e, no_grad):
            result = self.no_grad(e, scope, out, target)
        else:
            result = self.step(e, scope, out, target)
        scope.memo[e] = result
        return result

    def step(self, e: sp.Basic, scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        try:
            op, operands, param = select(e)
        except UnsupportedNodeError as err:
            node = getattr(err, "node", None)
            if node is None or self.context is None or "it occurs in" in str(err):
                raise
            raise unsupported(node, self.context) from None
        args = tuple(self.expr(a, scope, out) for a in operands)
        args = self.makings.read(operands, args)
        if op in ("stack", "softmax_vector", "log_softmax_vector", "batch_norm", "batch_norm_matrix", "normalize", "cumprod", "glu",
                  "normalize_matrix", "cdist", "cdist_matrix", "layer_norm", "layer_norm_matrix", "cos_sim", "cumprod_matrix", "glu_matrix"):
            # torch.stack takes tensors: a constant is a tensor like an element beside it (0-d where none is)
            beside = next((a for a in args if isinstance(a, str)), None)
            args = tuple(a if isinstance(a, str) else
                         self.const_step(e, a, out, self.writer.namer.fresh("c"), beside, beside is None) for a in args)
        name = target or self.writer.namer.fresh(name_for(op, args, param))
        spelled = spell(op, args, param)
        text = spelled if op == "stack" else \
            _whole_tensors(spelled, operands, args, lambda m: self.writer.var_names.get(m) or scope.get(m))
        shown = args if text == spelled else _tensors_read(operands, args, lambda m: self.writer.var_names.get(m) or scope.get(m))
        named = constant_name(param) if op == "matconst" else None
        if op == "matconst":
            text = matconst_text(param, self.writer.dtype)
            param = ex.from_sympy(param)
        if op == "detach" and isinstance(args[0], Const):
            # A constant has no graph to leave: it is a constant tensor (`2.detach()` is no code).
            text = f"torch.tensor({operand_text(args[0])}, dtype=torch.{self.writer.dtype})"
        if op == "item" and isinstance(args[0], Const):
            # A Python number, as `.item()` returns it (a float; past the float range, its literal).
            v = float(args[0].value)
            text = f"torch.tensor({repr(v) if math.isfinite(v) else operand_text(args[0])}, dtype=torch.{self.writer.dtype})"
        text = self.writer.dtypes.step(op, name, param, operands, args, text)
        note = _HAZARD_COMMENTS.get(op)
        said = torch_call_comment(op, args, param)
        if said is None and is_elementwise(e) and args and isinstance(args[0], str):
            tensors = [operand_text(a) for a in args]
            said = (f"{FUNC_NAMES.get(op, op)} of each element of {tensors[0]}" if len(tensors) == 1 else
                    f"{FUNC_NAMES.get(op, op)} of {', '.join(tensors[:-1])} and {tensors[-1]}, element by element")
        if named is not None or said is not None:  # a front end's own (a draw's line); SymPy's reads wrong here
            self.writer.emit(f"# {safe_comment(named[1] if named is not None else said)}")  # (a OneMatrix prints as 1)
        else:
            self.writer.comment(e, ": a constant from here on; the derivative does not flow through" if op == "detach" else "",
                                target, ", ".join(operand_text(a) for a in shown),
                                lambda m: self.writer.var_names.get(m) or scope.get(m))
        line = self.writer.emit(f"{name} = {text}" + (f"  # {note}" if note else ""))
        self.writer.record(e, line)
        out.append(Step(name, op, args, param, e, line))
        return name

    def const_step(self, node: sp.Basic, c: Const, out: list[Stmt], target: str, anchor: str | None = None,
                   off_graph: bool = False) -> str:
        mode = "off_graph" if off_graph else "like" if anchor is not None else "graph"
        return _const_step(self.writer, node, c, out, target, anchor or self.anchor(node), mode)

    def reads_elements_only(self, node: sp.Basic) -> bool:
        """A scalar Piecewise that reads no scalar variable, in a program whose first input is a
        matrix (`Piecewise((1, x[0, 1] > x[0, 0]), (0, True))`, an element of `F.one_hot` of an
        argmax): its constant branch is a constant tensor off the graph, as torch's integer data is.
        Kept on the graph through the first input, `x * 0 + 1` would be a matrix, not a number."""
        inputs = self.writer.norm.inputs
        return bool(inputs) and isinstance(inputs[0], sp.MatrixSymbol) and not isinstance(node, (sp.MatrixBase, sp.MatrixExpr)) \
            and not any(isinstance(s, sp.Symbol) for s in node.free_symbols)

    def anchor(self, node: sp.Basic) -> str:
        syms = sorted((s for s in node.free_symbols if isinstance(s, sp.Symbol)), key=lambda s: s.name)
        if syms:
            return self.writer.var(syms[0])
        if not self.writer.norm.inputs:
            raise ProgramError("A function without inputs has no derivative to compare.\nFix: give it an input symbol.")
        return self.writer.var_names[self.writer.norm.inputs[0]]

    def piecewise(self, e: sp.Piecewise, scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        pairs = list(e.args)
        if self.branches == "where" or self._elementwise:
            return self.where(e, pairs, scope, out, target)
        name = target or self.writer.namer.fresh("pw")
        self.writer.comment(e, target=target)
        branches: list[Branch] = []
        header_line = 0
        # Every condition's steps (an element read, `X_01 = X[0, 1]`) run before the `if`, as the IR
        # has them: written between a branch and the next `elif` they were a SyntaxError.
        conditions = [c for _, c in pairs]
        tests = [self.test(c, out) for c in conditions[:conditions.index(sp.true) if sp.true in conditions else None]]
        for k, (value, condition) in enumerate(pairs):
            last = condition == sp.true
            cond = None if last else tests[k]
            line = self.writer.emit("else:" if last else f"{'if' if k == 0 else 'elif'} {cond.text}:")  # type: ignore[union-attr]
            if k == 0:
                header_line = line
            if k == 0:
                self.writer.record(e, line)
            self.writer.indent += 1
            start = len(self.writer.lines)
            body: list[Stmt] = []
            op = self.expr(value, _Scope(scope), body, target=name)
            if isinstance(op, Const) and self.reads_elements_only(e):
                self.writer.emit(f"# the constant {sstr(op.value)}: a number that reads no input (off the autograd graph)")
                cline = self.writer.emit(f"{name} = torch.tensor({operand_text(op)}, dtype=torch.{self.writer.dtype})")
                self.writer.record(e, cline)
                body.append(Step(name, "constant", (), op.value, e, cline))
            elif isinstance(op, Const):
                self.const_step(e, op, body, name)
            elif op != name:
                bline = self.writer.emit(f"{name} = {operand_text(op)}")
                body.append(Step(name, "copy", (op,), None, value, bline))
            if all(text.lstrip().startswith("#") for text in self.writer.lines[start:]):
                # `t = Piecewise((t, t > 1), ...)`: this branch keeps t as it is; no code runs.
                self.writer.emit(f"pass  # {name} keeps its value")
            self.writer.indent -= 1
            branches.append(Branch(cond, tuple(body), line))
            if last:
                break
        else:
            # No condition is True: SymPy's Piecewise is undefined there, so the program is NaN.
            line = self.writer.emit("else:")
            self.writer.indent += 1
            body = []
            self.const_step(e, const_of(sp.nan), body, name)
            self.writer.indent -= 1
            branches.append(Branch(None, tuple(body), line))
        out.append(If(e, name, tuple(branches), header_line))
        return name

    def where(self, e: sp.Piecewise, pairs: list[Any], scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        values = [self.expr(v, scope, out) for v, _ in pairs]
        if pairs[-1][1] == sp.true:
            rest: Operand = values[-1]
            pairs, values = pairs[:-1], values[:-1]
        else:
            rest = const_of(sp.nan)
        if not pairs:
            return rest
        for k in range(len(pairs) - 1, -1, -1):
            cond = self.test(pairs[k][1], out, elementwise=True)
            a = values[k]
            if isinstance(a, Const) and isinstance(rest, Const):  # torch.where broadcasts it to the condition's shape
                a = self.const_step(pairs[k][0], a, out, self.writer.namer.fresh("c"), off_graph=True)
            node = e if k == 0 else type(e)(*[(v, c) for v, c in e.args[k:]])
            name = target if (k == 0 and target) else self.writer.namer.fresh("where_" + name_part(a))
            self.writer.comment(node, target=target if k == 0 else None)
            line = self.writer.emit(f"{name} = torch.where({cond.text}, {operand_text(a)}, {operand_text(rest)})  # {_HAZARD_COMMENTS['where']}")
            self.writer.record(node, line)
            out.append(Step(name, "where", (a, rest), None, node, line, cond))
            rest = name
        return rest

    def elementwise(self, e: sp.Basic, scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        """A scalar function of the elements of matrices, written once over the whole tensors:
        each op of its body is one torch call on the operands (torch applies it elementwise), a
        Piecewise is `torch.where` on an elementwise condition. The function's variables are
        the operands' names while the body is written."""
        fn, operands = readable(e)
        names = [self.expr(o, scope, out) for o in operands]
        for v, name in zip(fn.variables, names):
            self.writer.var_names[v] = str(name)
        self._elementwise += 1
        try:
            result = self.expr(fn.expr, _Scope(scope), out, target)
        finally:
            self._elementwise -= 1
        if isinstance(result, Const) or (target is not None and result != target):
            # A constant function (every element c) or one that returns an operand as it is.
            name = target or self.writer.namer.fresh("c")
            self.writer.comment(e, target=target)
            if isinstance(result, Const):
                line = self.writer.emit(f"{name} = {names[0]} * 0 + {operand_text(result, wrap=True)}")
                out.append(Step(name, "const_on_graph", (str(names[0]),), result.value, e, line))
            else:
                line = self.writer.emit(f"{name} = {operand_text(result)}")
                out.append(Step(name, "copy", (result,), None, e, line))
            result = name
        self.writer.record(e, len(self.writer.lines))
        return result

    def test(self, condition: sp.Basic, out: list[Stmt], again: list[tuple[sp.Basic, str]] | None = None,
             elementwise: bool = False) -> Cond:
        """The condition of an `if` or `while`. A side of a comparison that reads a matrix (`b.norm()
        < 1000`, `b.sum() > 0`) is computed into a variable first, on lines of its own: the
        condition then compares numbers. `again` collects (side, variable) for a loop, whose body
        computes them again before the next test."""
        swap: dict[sp.Basic, sp.Basic] = {}
        for rel in _relations_of(condition):
            for side in (rel.lhs, rel.rhs):
                if side in swap or isinstance(side, sp.Symbol) or not _reads_matrix(side):
                    continue
                name = self.expr(side, _Scope(), out)
                if isinstance(name, Const):
                    continue
                var = Alias(" ".join(sstr(side).split()), real=True)  # prints as the side it stands for
                self.writer.var_names[var] = str(name)
                swap[side] = var
                if again is not None:
                    again.append((side, str(name)))
        return self.writer.cond(condition.xreplace(swap) if swap else condition, elementwise)

    def no_grad(self, e: no_grad, scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        self.writer.comment(e, ": computed without recording the autograd graph")
        line = self.writer.emit("with torch.no_grad():")
        self.writer.record(e, line)
        self.writer.indent += 1
        body: list[Stmt] = []
        inner = self.expr(e.args[0], _Scope(scope), body, target=target)
        if not any(isinstance(s, Step) and s.name == inner for s in body):
            # An input or a constant: copy it inside the block, so the copy is off the graph.
            name = target or self.writer.namer.fresh(name_part(inner) + "_nograd")
            cline = self.writer.emit(f"{name} = {operand_text(inner, wrap=True)}.clone()" if isinstance(inner, str) else f"{name} = torch.tensor({operand_text(inner)}, dtype=torch.{self.writer.dtype})")
            body.append(Step(name, "copy", (inner,), None, e.args[0], cline))
            inner = name
        self.writer.indent -= 1
        # The value leaves the graph at the `with` block: this step marks it and cites that line.
        body.append(Step(str(inner), "no_grad", (inner,), None, e, line))
        out.append(NoGrad(e, tuple(body), line))
        return inner


class _Lowerer:
    """A normalised function as a whole program: the header, its statements (assignments and
    loops), and the output's `return` line; their expressions are `_Expressions`'."""

    def __init__(self, norm: Normalized, branches: Branches, dtype: str, made: tuple[Making, ...] = ()) -> None:
        self.norm = norm
        self.made = made  # steps to write first, in the user's order
        self.branches = branches
        self.dtype = dtype
        self.writer = _Writer(norm, dtype)
        self.exprs = _Expressions(self.writer, branches)

    # -- whole program

    def run(self) -> tuple[tuple[Stmt, ...], Operand, int]:
        norm = self.norm
        args = ", ".join(self.writer.var_names[s] for s in norm.inputs)
        real = ", ".join(sstr(s) for s in norm.inputs) or "no inputs"
        what = "the program below" if norm.is_program else norm.source
        self.writer.lines.append(safe_comment(
            f"# symgrad: lowered from  {what}   ({real} real; {self.dtype}; branches=\"{self.branches}\")"
        ))
        for s in norm.inputs:  # data of the user's call (`X_flat`): what it is, never differentiated
            if isinstance(s, DataMatrix):
                self.writer.lines.append(safe_comment(f"# {self.writer.var_names[s]}: {s.about}"))
        if norm.rewritten:
            self.writer.lines.append(safe_comment(f"# SymPy rewrote it for real symbols as  {norm.rewritten}"))
        self.writer.lines.append("import math")
        self.writer.lines.append("import torch")
        self.writer.lines.append("")
        self.writer.lines.append("")
        self.writer.lines.append(f"def f({args}):")
        self.writer.indent = 1
        scope = _Scope()
        body: list[Stmt] = []
        for stmt in norm.statements:
            body.extend(self.statement(stmt, scope))
        out, stmts = self.expr_as_output(norm.output, scope)
        body.extend(stmts)
        line = self.writer.emit(f"return {operand_text(out)}")
        return tuple(body), out, line

    def expr_as_output(self, expr: sp.Basic, scope: _Scope) -> tuple[Operand, list[Stmt]]:
        stmts: list[Stmt] = []
        written: set[sp.Basic] = set()
        for node, reads in self.made:
            if node in written:  # made again (`x * W` twice): its own step
                scope.memo.pop(node, None)
            written.add(node)
            self.exprs.makings.reading = list(reads)  # the making of each operand it reads
            self.exprs.makings.versions.setdefault(node, []).append(self.exprs.expr(node, scope, stmts))
        self.exprs.makings.reading = []
        if (isinstance(expr, sp.MatMul) and expr.shape == (1, 1)
                and summed_matrix(MatrixElement(expr, 0, 0)) is not None):
            # ones(1, m) * A * ones(n, 1), a 1x1 matrix used as a scalar: the sum of A's elements
            op = self.exprs.expr(MatrixElement(expr, 0, 0), scope, stmts, target="out")
            return op, stmts
        if isinstance(expr, sp.MatrixExpr) and expr.shape == (1, 1) and not isinstance(expr, sp.MatrixSymbol):
            # SymPy's (X*w - y).T*(X*w - y) is a 1x1 matrix; the loss the user means is its entry.
            inner = self.exprs.expr(expr, scope, stmts)
            self.writer.emit(f"# {node_comment(expr, self.norm.user_symbols)}: a 1x1 matrix, used as a scalar")
            line = self.writer.emit(f"out = {operand_text(inner)}[0, 0]")
            node = MatrixElement(expr, 0, 0)
            self.writer.record(node, line)
            stmts.append(Step("out", "elem", (inner,), (0, 0), node, line))
            return "out", stmts
        target = None if isinstance(expr, sp.Symbol) or self.norm.is_program else "out"
        op = self.exprs.expr(expr, scope, stmts, target=target)
        if isinstance(op, Const):
            # A constant output still has to be a tensor: keep it on the graph of an input.
            op = self.exprs.const_step(expr, op, stmts, "out")
        return op, stmts

    # -- statements

    def statement(self, stmt: sp.Basic, scope: _Scope) -> list[Stmt]:
        out: list[Stmt] = []
        if isinstance(stmt, ast.CodeBlock):
            for s in stmt.args:
                out.extend(self.statement(s, scope))
            return out
        if isinstance(stmt, ast.AssignmentBase):
            target_sym = stmt.lhs
            rhs = stmt.rhs
            if isinstance(stmt, ast.AugmentedAssignment):
                rhs = _augmented_rhs(stmt)
            # Reading the old value of a variable that is reassigned: memo entries that read it
            # become stale, so each assignment starts from a fresh scope below the parent.
            target = self.writer.var(target_sym)
            # Each assignment starts a fresh scope: a reassigned variable makes earlier
            # subexpressions that read it stale.
            self.writer.label = node_text(stmt, self.norm.user_symbols)
            self.exprs.context = stmt
            op = self.exprs.expr(rhs, _Scope(), out, target=target)
            self.writer.label = None
            if isinstance(op, Const):
                self.writer.comment(stmt)
                line = self.writer.emit(f"{target} = torch.tensor({operand_text(op)}, dtype=torch.{self.dtype})")
                self.writer.record(stmt, line)
                out.append(Step(target, "constant", (), op.value, stmt, line))
            elif op != target:
                line = self.writer.emit(f"{target} = {operand_text(op)}")
                self.writer.record(stmt, line)
                out.append(Step(target, "copy", (op,), None, stmt, line))
            elif rhs == target_sym:
                # `b = b*1`: SymPy made it `b = b` when the Assignment was built; nothing runs.
                self.writer.emit(f"# {node_comment(stmt.xreplace(self.norm.user_symbols), self.norm.user_symbols)}: "
                                 f"SymPy simplified this statement away (the right side is {target_sym} itself)")
                self.writer.record(stmt, self.writer.emit("pass"))
            else:
                self.writer.record(stmt, self.writer.line_map.get(rhs, len(self.writer.lines)))
            return out
        if isinstance(stmt, ast.While):
            again: list[tuple[sp.Basic, str]] = []
            cond = self.exprs.test(stmt.condition, out, again)
            self.writer.comment(stmt)
            line = self.writer.emit(f"while {cond.text}:")
            self.writer.record(stmt, line)
            body = self.loop_body(stmt, again)
            out.append(While(stmt, cond, tuple(body), line))
            return out
        if isinstance(stmt, ast.For):
            rng = stmt.iterable
            bounds = tuple(self.exprs.expr(b, scope, out) for b in rng.args)
            var = self.writer.var(stmt.target)
            start, stop, step_ = (operand_text(b) if isinstance(b, Const) else f"int({b})" for b in bounds)
            if step_ == "1":
                text = f"range({stop})" if start == "0" else f"range({start}, {stop})"
            else:
                text = f"range({start}, {stop}, {step_})"
            line = self.writer.emit(f"for {var} in {text}:")
            self.writer.record(stmt, line)
            body = self.loop_body(stmt)
            out.append(For(stmt, var, bounds, tuple(body), line))  # type: ignore[arg-type]
            return out
        raise ProgramError(f"`{sstr(stmt)}` is not a statement symgrad can lower.")

    def loop_body(self, loop: ast.While | ast.For, again: list[tuple[sp.Basic, str]] = ()) -> list[Stmt]:  # type: ignore[assignment]
        """A loop's statements, one level in; a body with no code left still needs a line. The
        values its test reads from matrices (`again`) are computed anew at the end of the body."""
        self.writer.indent += 1
        start = len(self.writer.lines)
        body: list[Stmt] = []
        for s in loop.body.args:
            body.extend(self.statement(s, _Scope()))
        for side, name in again:
            self.writer.emit("# for the next test of the loop")
            self.exprs.expr(side, _Scope(), body, target=name)
        if all(line.lstrip().startswith("#") for line in self.writer.lines[start:]):
            self.writer.emit("pass  # the loop body is empty")
        self.writer.indent -= 1
        return body


def _relations_of(c: sp.Basic) -> list[sp.Basic]:
    """The comparisons of a condition (and/or/not of them)."""
    if isinstance(c, sp.core.relational.Relational):
        return [c]
    return [r for a in getattr(c, "args", ()) if isinstance(a, sp.Basic) for r in _relations_of(a)]


def _reads_matrix(e: sp.Basic) -> bool:
    return any(isinstance(s, sp.MatrixSymbol) for s in free_symbols(e))


def _augmented_rhs(stmt: ast.AugmentedAssignment) -> sp.Basic:
    lhs, rhs, op = stmt.lhs, stmt.rhs, stmt.binop
    if op == "+":
        return lhs + rhs
    if op == "-":
        return lhs - rhs
    if op == "*":
        return lhs * rhs
    if op == "/":
        return lhs / rhs
    raise ProgramError(f"`{sstr(stmt)}`: the augmented operator {op}= is not supported.\nFix: write `{lhs} = {lhs} {op} ...`.")


# --------------------------------------------------------------------------- entry point


@deep  # its cache compares expressions with SymPy's recursive `==`: deep ones need the worker
def lower(f: Any, *, branches: Branches = "if", dtype: str = "float64") -> LoweredProgram:
    """Lower a SymPy expression or `Program` to a readable torch program, cached by its input
    (both are immutable). `symgrad.lower` (`symgrad.frontends.front`) reads a string first and
    documents the arguments."""
    check_options(branches=branches, dtype=dtype)
    try:
        hash(f)
    except TypeError:  # unhashable input: lower it afresh
        return _lower(f, branches, dtype)
    return _lower_cached(f, branches, dtype, (), made_in(f), named_key())


@functools.lru_cache(maxsize=256)
def _lower_cached(f: Any, branches: Branches, dtype: str, extra: tuple[sp.Symbol, ...] = (),
                  made: tuple[Making, ...] = (), named: tuple[Any, ...] = ()) -> LoweredProgram:
    # SymPy expressions and Programs are immutable, so a lowered program can be shared; the names
    # of constant tensors (`named_constants`: a draw's, the user's data's) are part of its text.
    return _lower(f, branches, dtype, extra, made)


def clear_cache() -> None:
    """Forget every lowered program `lower()` has cached (for a cold timing, or to free memory)."""
    _lower_cached.cache_clear()


def lower_with_inputs(f: Any, extra: tuple[sp.Symbol, ...], *, branches: Branches, dtype: str) -> LoweredProgram:
    """`lower(f)` with inputs the expression does not read (their derivative is 0)."""
    check_options(branches=branches, dtype=dtype)
    return _lower_cached(f, branches, dtype, tuple(extra), made_in(f), named_key())


@deep
def _lower(f: Any, branches: Branches, dtype: str, extra: tuple[sp.Symbol, ...] = (),
           made: tuple[Making, ...] = ()) -> LoweredProgram:
    # Lowering recurses once per nesting level (as SymPy's own printers do); `deep` reruns a
    # deep expression in a worker with a large stack (symgrad/program/deep.py).
    norm = normalize(f, extra)
    lowerer = _Lowerer(norm, branches, dtype)
    body, output, output_line = lowerer.run()
    if made and not norm.statements:
        # The user's order (sides/order.py): the steps this lowering wrote, again, in the order
        # the user's code made them, so that autograd adds a shared value's gradients as torch did.
        steps = {st.node for st in body if isinstance(st, Step)} & _outside_lambdas(norm.output)
        lowerer = _Lowerer(norm, branches, dtype, tuple(m for m in made if m[0] in steps and m[0] != norm.output))
        body, output, output_line = lowerer.run()
    lines, body, output_line, line_map = prune(lowerer.writer.lines, body, output, output_line, lowerer.writer.line_map)
    source = "\n".join(lines) + "\n"
    filename = f"<symgrad-generated-{next(_counter)}>"
    namespace: dict[str, Any] = {"torch": torch, "math": math, **custom.NAMESPACE}  # the user's autograd.Functions
    code = compile(source, filename, "exec")
    exec(code, namespace)
    fn = namespace["f"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    names = tuple(lowerer.writer.var_names[s] for s in norm.inputs)
    lowered = LoweredProgram(
        source=source,
        filename=filename,
        inputs=names,
        symbols=tuple(norm.user_symbols.get(s, s) for s in norm.inputs),
        body=body,
        output=output,
        output_line=output_line,
        branches=branches,
        dtype=dtype,
        normalized=norm,
        line_map=dict(line_map),
        function=fn,
    )
    weakref.finalize(lowered, linecache.cache.pop, filename, None)
    return lowered


def _const_step(writer: _Writer, node: sp.Basic, c: Const, out: list[Stmt], target: str, anchor: str,
                mode: str) -> str:
    """A constant as a tensor: where torch.where broadcasts it (`off_graph`) a 0-d tensor; beside an
    element of a stack (`like`) a tensor like it; else (`graph`) kept on the autograd graph through an
    input, with the node's own shape (gradient 0), for a constant output or branch."""
    value = c.value
    if mode == "off_graph":
        writer.emit(f"# the constant {sstr(value)} (off the autograd graph, as in torch)")
        line = writer.emit(f"{target} = torch.tensor({operand_text(c)}, dtype=torch.{writer.dtype})")
        writer.record(node, line)
        out.append(Step(target, "constant", (), value, node, line))
        return target
    symbol = next((s for s, n in writer.var_names.items() if n == anchor), None)
    if mode == "like":
        writer.emit(f"# the constant {sstr(value)}, a tensor like {anchor} (off the autograd graph, as in torch)")
        text = f"torch.full_like({anchor}, {operand_text(c)})"
    elif not isinstance(symbol, sp.MatrixSymbol):
        writer.emit(f"# the constant {sstr(value)}, kept on the autograd graph through {anchor} (gradient 0)")
        text = f"{anchor} * 0" if value == 0 else f"{anchor} * 0 + {operand_text(c, wrap=True)}"
    else:  # an input matrix: the node's own shape, never the input's
        same = isinstance(node, (sp.MatrixBase, sp.MatrixExpr)) and tuple(node.shape) == tuple(symbol.shape)
        shaped = anchor if same else f"{anchor}[0, 0]"
        text = f"{shaped} * 0" if value == 0 else f"{shaped} * 0 + {operand_text(c, wrap=True)}"
        if not same and isinstance(node, (sp.MatrixBase, sp.MatrixExpr)):
            text = f"({text}).expand({node.shape[0]}, {node.shape[1]})"
        writer.emit(f"# the constant {sstr(value)}, kept on the autograd graph through {anchor} (gradient 0)")
    line = writer.emit(f"{target} = {text}")
    if mode != "like":  # an element beside others of a stack or fused op: the node's line is the op's own
        writer.record(node, line)
    out.append(Step(target, "const_on_graph", (anchor,), value, node, line))
    return target


def _shared(e: sp.Basic) -> bool:
    """Whether a node's step is computed once and read again. A broadcast is not: it is made afresh
    for each use, as torch broadcasts inside each op, so that each use's gradient is summed back to
    the operand's shape on its own (`(a.reshape(-1, 1) * b)` twice)."""
    return not (isinstance(e, sp.MatMul) and any(isinstance(m, sp.OneMatrix) for m in e.args))


def _whole_tensors(text: str, operands: tuple[sp.Basic, ...], args: tuple[Operand, ...], name_of: Any) -> str:
    """`torch.stack([t_00, t_10])` of every element of a tensor t, in torch's (row-major) order,
    written `t.reshape(-1)`: the user passed t itself (`F.binary_cross_entropy(p, t)`), and its
    gradient is the op's own, where one through each element adds zeros from the others (-0.0 +
    0.0 is 0.0: a sign of zero lost)."""
    if "torch.stack([" not in text:
        return text
    elements = {a: e for a, e in zip(args, operands) if isinstance(a, str) and isinstance(e, MatrixElement)}

    def whole(match: re.Match[str]) -> str:
        names = [n.strip() for n in match.group(1).split(",")]
        parts = [elements.get(n) for n in names]
        if not parts or any(p is None for p in parts):
            return match.group(0)
        m = parts[0].parent  # type: ignore[union-attr]
        rows, cols = int(m.shape[0]), int(m.shape[1])
        in_order = [(int(p.i), int(p.j)) for p in parts if p.parent == m] == [(i, j) for i in range(rows) for j in range(cols)]  # type: ignore[union-attr]
        name = name_of(m) if in_order else None
        return f"{name}.reshape(-1)" if isinstance(name, str) else match.group(0)

    return re.sub(r"torch\.stack\(\[([A-Za-z_][A-Za-z0-9_]*(?:, [A-Za-z_][A-Za-z0-9_]*)*)\]\)", whole, text)


def _tensors_read(operands: tuple[sp.Basic, ...], args: tuple[Operand, ...], name_of: Any) -> tuple[Operand, ...]:
    """The operands a step's comment names where `_whole_tensors` passed whole tensors: each
    element of a named tensor as the tensor, once (`binary_cross_entropy(p, t)`)."""
    shown: dict[Operand, None] = {}
    for a, e in zip(args, operands):
        whole = name_of(e.parent) if isinstance(e, MatrixElement) else None
        shown.setdefault(whole if isinstance(whole, str) else a, None)
    return tuple(shown)


def _outside_lambdas(e: sp.Basic) -> set[sp.Basic]:
    """The subexpressions of `e` that the lowering writes at the function's own level: not inside the
    body of an elementwise function (an element's own scalar steps), a `torch.no_grad()` block or a
    branch (lowered in their own scopes)."""
    seen: set[sp.Basic] = set()
    todo = [e]
    while todo:
        node = todo.pop()
        if node in seen or not isinstance(node, sp.Basic) or isinstance(node, sp.Lambda):
            continue
        seen.add(node)
        if not isinstance(node, (no_grad, sp.Piecewise, MatrixPiecewise)):
            todo.extend(node.args)
    return seen


def check_options(*, branches: str = "if", dtype: str = "float64") -> None:
    if branches not in ("if", "where"):
        raise OptionError(OPTION.format(name="branches", value=branches, allowed='"if", "where"'))
    if isinstance(dtype, torch.dtype):
        raise OptionError(f"dtype={dtype} is a torch dtype; symgrad takes its name.\n"
                          f"Fix: pass dtype=\"{str(dtype).replace('torch.', '')}\".")
    if dtype not in DTYPES:
        raise OptionError(OPTION.format(name="dtype", value=dtype, allowed='"float64", "float32"'))


def wrt_indices(lowered: LoweredProgram, wrt: Iterable[Any] | None) -> list[int]:
    """The positions among `lowered.symbols` of the inputs `wrt` names (all of them for None);
    an OptionError names an input the program does not have."""
    if wrt is None:
        return list(range(len(lowered.symbols)))
    if isinstance(wrt, (sp.Basic, str)):
        wrt = [wrt]
    names = [s.name for s in lowered.symbols]
    out = []
    for w in wrt:
        name = w.name if isinstance(w, sp.Symbol) else str(w)
        if name not in names:
            raise OptionError(
                f"wrt names {name}, which is not an input of the function (inputs: {', '.join(names)}).\n"
                "Fix: pass input symbols, e.g. `wrt=[x]`."
            )
        sym = lowered.symbols[names.index(name)]
        if isinstance(sym, DataMatrix):
            raise OptionError(data_wrt(sym, [s.name for s in lowered.symbols if not isinstance(s, DataMatrix)]))
        out.append(names.index(name))
    return out


def data_wrt(sym: DataMatrix, others: Sequence[str]) -> str:
    """The sentence for a data leaf in wrt (`X_flat`, the user's X reshaped): data is never
    differentiated, as torch never differentiates a tensor that does not require grad."""
    source = sym.about.split(" ", 1)[0] if " reshaped to " in sym.about else sym.name
    instead = (f"differentiate the inputs that are not data ({', '.join(others)}), the parameters that read "
               f"{source}" if others else f"differentiate the parameters that read {source}")
    return (f"wrt names {sym.name}, which is data: {sym.about}. symgrad reads data as your code does and never "
            f"differentiates it (your {source} does not require grad, so torch computes no gradient for it either).\n"
            f"Fix: leave {sym.name} out of wrt and {instead}; or, for the derivative with respect to the data "
            f"itself, pass {source} as a float tensor with requires_grad=True, of rank 0, 1 or 2.")


def elementwise(cond: Cond) -> str:
    """A condition spelled for a batch of points (`&`, `|`, `~` instead of and/or/not)."""
    return Inline(dict(cond.names), True).cond(cond.expr)
