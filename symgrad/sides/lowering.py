"""Lower a normalised function to a readable torch program, and keep its IR.

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
"""

from __future__ import annotations

import functools
import itertools
import keyword
import linecache
import math
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal, Union

import mpmath
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement
import torch
from sympy.codegen import ast
from sympy.printing.pycode import PythonCodePrinter

from ..program import exact as ex
from ..program.deep import deep
from ..base.errors import OptionError, ProgramError, UnsupportedNodeError
from ..program.primitives import PRIMITIVES, detach, item, log_softmax, logaddexp, logsumexp, no_grad, sigmoid, softmax, softplus
from ..program.program import RESERVED_NAMES, Normalized, NotationPrinter, identifier, identifier_chars, node_text, normalize, rounded, sstr
from ..program.rules import RULES, rule_for
from ..program.rules import exact_eval
from ..program.ops import OPS, softmax_groups
from ..base.errors import UNSUPPORTED, UNSUPPORTED_FIX_DEFAULT
from ..base.errors import OPTION

Branches = Literal["if", "where"]
DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}
# The default relative tolerance between the executed derivative and autograd, per dtype (`rtol=`).
RTOL: Final[dict[str, float]] = {"float64": 1e-9, "float32": 1e-4}

# --------------------------------------------------------------------------- the IR


@dataclass(frozen=True, slots=True)
class Const:
    """A constant operand: its SymPy value and how the program spells it."""

    value: sp.Basic
    text: str


Operand = Union[str, Const]  # a variable name, or a constant


@dataclass(frozen=True, slots=True)
class Cond:
    """A branch or loop condition: a SymPy boolean over program variables."""

    expr: sp.Basic
    text: str
    names: tuple[tuple[sp.Symbol, str], ...]  # symbol -> variable name, for exact evaluation


@dataclass(frozen=True, slots=True)
class Step:
    """`name = op(args)` on one line."""

    name: str
    op: str
    args: tuple[Operand, ...]
    param: Any
    node: sp.Basic
    line: int
    cond: Cond | None = None  # for `where`


@dataclass(frozen=True, slots=True)
class Branch:
    cond: Cond | None  # None for `else`
    body: tuple[Stmt, ...]
    line: int  # the `if`/`elif`/`else` line


@dataclass(frozen=True, slots=True)
class If:
    node: sp.Basic
    target: str
    branches: tuple[Branch, ...]
    line: int


@dataclass(frozen=True, slots=True)
class While:
    node: sp.Basic
    cond: Cond
    body: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True, slots=True)
class For:
    node: sp.Basic
    var: str
    bounds: tuple[Operand, Operand, Operand]
    body: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True, slots=True)
class NoGrad:
    node: sp.Basic
    body: tuple[Stmt, ...]
    line: int


Stmt = Union[Step, If, While, For, NoGrad]

# --------------------------------------------------------------------------- the result

_counter = itertools.count(1)


@dataclass(frozen=True)
class LoweredProgram:
    """The generated torch program: `.source`, `.line_of(node)`, callable with tensors.

    Call it positionally in `.inputs` order or by input name: `lowered(x=torch.tensor(3.0))`.
    The source is registered in `linecache` under `.filename`, so tracebacks and
    `inspect.getsource` show the same lines the reports cite.
    """

    source: str
    filename: str
    inputs: tuple[str, ...]  # variable names, in call order
    symbols: tuple[sp.Symbol, ...]  # the user's own symbols, same order
    body: tuple[Stmt, ...]
    output: Operand
    output_line: int
    branches: Branches
    dtype: str
    normalized: Normalized = field(repr=False)
    line_map: dict[sp.Basic, int] = field(repr=False)
    function: Callable[..., Any] = field(repr=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def line_of(self, node: sp.Basic) -> int | None:
        """The line of `source` that computes `node` (in user or real symbols), or None."""
        node = sp.sympify(node)
        line = self.line_map.get(node)
        if line is None:
            real = node.xreplace({s: sp.Symbol(s.name, real=True) for s in node.free_symbols if isinstance(s, sp.Symbol)})
            line = self.line_map.get(real)
        return line

    def __str__(self) -> str:
        return self.source


# --------------------------------------------------------------------------- printing helpers


class _ConstPrinter(PythonCodePrinter):
    """Python spelling of constant subexpressions (`math.sqrt(2)`, `math.pi`)."""

    def __init__(self) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})


_CONST_PRINTER = _ConstPrinter()
_ATOMIC = re.compile(r"^[A-Za-z_][A-Za-z_0-9.]*$|^[0-9.e+]+$|^[A-Za-z_][\w.]*\([^()]*\)$")


def _complex(c: sp.Basic) -> bool:
    """A constant with no real value (`log(-1)`, `(log(2) + I*pi)**2`, `asin(3/2)`): decided by
    the exact engine, which answers at once, where SymPy's assumptions may evaluate nested
    functions of complex numbers for minutes (`cosh(erf(asin(3/2)))`)."""
    if isinstance(c, (sp.Integer, sp.Rational, sp.Float)) or c in (sp.pi, sp.E):
        return False
    if c is sp.nan:
        return True
    try:
        with ex.working_precision(ex.START_PREC):
            return ex.is_nan(exact_eval(c, {}))
    except (UnsupportedNodeError, TypeError, ValueError):
        return c.is_real is False or (c.is_number and c.is_extended_real is False)


def _const(c: sp.Basic) -> Const:
    if _complex(c):
        # A complex constant (log(-1) = I*pi): the real function has no value where it is used,
        # which is NaN in a real program (and a `domain` finding if the point reaches it).
        return Const(sp.nan, "math.nan")
    if isinstance(c, sp.Integer):
        text = str(int(c)) if abs(int(c)) < _EXACT_INT else _float_text(c)
    elif isinstance(c, sp.Rational):
        if _dyadic(c):
            text = repr(float(c))
        elif abs(int(c.p)) < _EXACT_INT and int(c.q) < _EXACT_INT:
            text = f"{c.p} / {c.q}"  # Python's int division rounds to the nearest float
        else:
            text = _float_text(c)
    elif isinstance(c, sp.Float):
        text = _float_text(c)
    elif c is sp.pi:
        text = "math.pi"
    elif c is sp.E:
        text = "math.e"
    elif c is sp.nan:
        text = "math.nan"
    elif c.has(*_FUSED):
        # torch's fused ops have no `math` spelling: the constant is written as the float64
        # nearest its exact value (the comment above the line shows it in SymPy notation).
        text = _fused_constant(c)
    else:
        try:
            text = _CONST_PRINTER.doprint(c)
        except Exception as err:  # the printer's own message says which function it lacks
            raise UnsupportedNodeError(
                f"The constant {sstr(c)} cannot be spelled in Python: {err}\n"
                "Fix: replace it by a number, e.g. `sympy.Float(sympy.N(c))`."
            ) from err
    return Const(c, text)


_FUSED: Final = (sigmoid, softplus, logsumexp, logaddexp, softmax, log_softmax)


def _fused_constant(c: sp.Basic) -> str:
    with ex.working_precision(ex.START_PREC):
        v = ex.to_float(exact_eval(c, {}))
    if math.isnan(v):
        return "math.nan"
    if math.isinf(v):
        return "math.inf" if v > 0 else "-math.inf"
    return repr(v)


# Integers from 2**53 on are spelled as floats: torch turns a Python int operand into an int64
# (2**63 and more raise "int too big to convert"), and the program computes in floats anyway.
_EXACT_INT = 2**53


def _float_text(c: sp.Basic) -> str:
    """The nearest float64 of a number, as a literal. Past float64's range (1e400), the literal
    is the number rounded to 17 digits, which Python reads as inf: that is what the dtype holds,
    and the exact sides still know the true value (an `overflow` where it matters)."""
    v = float(c)
    if math.isfinite(v):
        return repr(v)
    if isinstance(c, sp.Float):
        with mpmath.workprec(80):
            return mpmath.nstr(mpmath.mpf(c._mpf_), 17, min_fixed=0, max_fixed=0)
    return rounded(int(c.p), int(c.q), strip_zeros=True)


def _dyadic(r: sp.Rational) -> bool:
    q = int(r.q)
    return q & (q - 1) == 0 and abs(int(r.p)) < 2**53


def _text(o: Operand, wrap: bool = False) -> str:
    if isinstance(o, str):
        return o
    if wrap and not _ATOMIC.match(o.text):
        return f"({o.text})"
    return o.text


def safe_comment(text: str) -> str:
    """Text that cannot leave a comment line (symbol names may hold newlines)."""
    # Everything str.splitlines() or linecache would break a line at, not only \n.
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", " ", text)


_SMALL = 40


def _size(node: sp.Basic, memo: dict[int, int]) -> int:
    """Subexpressions in a node, counted up to just past `_SMALL` (memoised by identity: SymPy's
    equality compares whole subtrees, which is what makes deep expressions slow)."""
    hit = memo.get(id(node))
    if hit is not None:
        return hit
    total = 1
    for a in node.args:
        total += _size(a, memo)
        if total > _SMALL:
            total = _SMALL + 1
            break
    memo[id(node)] = total
    return total


class _SharedStr(NotationPrinter):
    """SymPy's str printer, remembering what it printed: a comment above each step prints its
    node, whose children the comments above already printed (linear, not quadratic)."""

    def __init__(self) -> None:
        super().__init__()
        self._done: dict[int, tuple[sp.Basic, str]] = {}

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if kwargs or not isinstance(expr, sp.Basic):
            return super()._print(expr, **kwargs)
        hit = self._done.get(id(expr))
        if hit is None:
            hit = (expr, super()._print(expr))  # keeps expr alive, so its id stays its own
            self._done[id(expr)] = hit
        return hit[1]


def _node_text(node: sp.Basic, user: dict[sp.Symbol, sp.Symbol], sizes: dict[int, int] | None = None,
               operands: str | None = None, printer: _SharedStr | None = None) -> str:
    if _size(node, {} if sizes is None else sizes) > _SMALL:
        # Printing a large node whole costs more than lowering it (and SymPy's printer recurses
        # per level): name its head and the variables it combines, computed on the lines above.
        return safe_comment(f"{type(node).__name__}({operands or '...'})")
    if printer is not None and not isinstance(node, (ast.Token, ast.CodeBlock)):
        text = safe_comment(" ".join(printer.doprint(node).split()))
    else:
        text = safe_comment(node_text(node))
    return text if len(text) <= 72 else text[:69] + "..."


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _said(op: str, args: tuple[Operand, ...], param: Any) -> str | None:
    """The comment above a step whose SymPy node is how trace reads a torch call, not what a
    student wrote: the sum of a tensor, a broadcast, a softmax along a dim."""
    if op == "sum":
        return f"the sum of every element of {_text(args[0])} (.sum())"
    if op == "sum_dim":
        return f"the sum of each {'row' if param == 1 else 'column'} of {_text(args[0])}"
    if op == "expand":
        return f"{_text(args[0])} repeated to {param[0]} x {param[1]}, as torch broadcasts it"
    if op in ("softmax_of", "log_softmax_of"):
        return f"{op.removesuffix('_of')} of each {'row' if param[2] == 1 else 'column'} of {_text(args[0])}"
    return None


def _int_name(n: int) -> str:
    word = _WORDS[abs(n)] if abs(n) < len(_WORDS) else (f"c{abs(n)}" if abs(n) < 10**6 else "big")
    return word if n >= 0 else f"neg_{word}"


def _name_part(o: Operand) -> str:
    if isinstance(o, str):
        return o
    v = o.value
    if isinstance(v, sp.Integer) or (isinstance(v, sp.Float) and float(v).is_integer()):
        return _int_name(int(v))
    if v is sp.pi:
        return "pi"
    if v is sp.E:
        return "e"
    return "c"


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


_FUNC_NAMES = {
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin",
    "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "erf": "erf", "abs": "abs", "sign": "sign", "floor": "floor", "ceil": "ceil",
    "heaviside": "step", "sqrt": "sqrt", "relu": "relu",
}
# Ops whose variable is named by what it is, not by its operands (which are long names already).
_PLAIN_NAMES = {"sum": "total", "sum_dim": "sums", "expand": "broadcast", "softmax_of": "softmax", "log_softmax_of": "log_softmax"}

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


class _Lowerer:
    def __init__(self, norm: Normalized, branches: Branches, dtype: str) -> None:
        self.norm = norm
        self.branches = branches
        self.dtype = dtype
        self.lines: list[str] = []
        self.line_map: dict[sp.Basic, int] = {}
        self.namer = _Namer()
        self.var_names: dict[sp.Symbol, str] = {}
        for s in norm.inputs:
            self.var_names[s] = self.namer.fresh(identifier(s.name))
        self.indent = 1
        self.label: str | None = None  # the statement a target step completes (`b = 2*b`)
        self._sizes: dict[int, int] = {}  # node id -> size, for comments (nodes live as long as this)
        self._printer = _SharedStr()
        self._warming = False  # inside `_warm_operands`
        self._depth = 0  # how deep `expr` calls are nested
        self.context: sp.Basic | None = norm.output if not norm.is_program else None  # for messages

    def has_symbols(self, e: sp.Basic) -> bool:
        """Whether `e` needs steps: it reads a symbol, or holds one of our primitives (`detach(2)`
        is a number to SymPy, but a tensor operation to the program)."""
        return _reads_symbols(e)

    # -- emission

    def emit(self, text: str) -> int:
        self.lines.append("    " * self.indent + text)
        return len(self.lines)

    def comment(self, node: sp.Basic, note: str = "", target: str | None = None, operands: str | None = None) -> None:
        text = _node_text(node, self.norm.user_symbols, self._sizes, operands, self._printer)
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

    # -- whole program

    def run(self) -> tuple[tuple[Stmt, ...], Operand, int]:
        norm = self.norm
        args = ", ".join(self.var_names[s] for s in norm.inputs)
        real = ", ".join(sstr(s) for s in norm.inputs) or "no inputs"
        what = "the program below" if norm.is_program else norm.source
        self.lines.append(safe_comment(
            f"# symgrad: lowered from  {what}   ({real} real; {self.dtype}; branches=\"{self.branches}\")"
        ))
        if norm.rewritten:
            self.lines.append(safe_comment(f"# SymPy rewrote it for real symbols as  {norm.rewritten}"))
        self.lines.append("import math")
        self.lines.append("import torch")
        self.lines.append("")
        self.lines.append("")
        self.lines.append(f"def f({args}):")
        self.indent = 1
        scope = _Scope()
        body: list[Stmt] = []
        for stmt in norm.statements:
            body.extend(self.statement(stmt, scope))
        out, stmts = self.expr_as_output(norm.output, scope)
        body.extend(stmts)
        line = self.emit(f"return {_text(out)}")
        return tuple(body), out, line

    def expr_as_output(self, expr: sp.Basic, scope: _Scope) -> tuple[Operand, list[Stmt]]:
        stmts: list[Stmt] = []
        if (isinstance(expr, sp.MatMul) and expr.shape == (1, 1)
                and _summed(MatrixElement(expr, 0, 0)) is not None):
            # ones(1, m) * A * ones(n, 1), a 1x1 matrix used as a scalar: the sum of A's elements
            op = self.expr(MatrixElement(expr, 0, 0), scope, stmts, target="out")
            return op, stmts
        if isinstance(expr, sp.MatrixExpr) and expr.shape == (1, 1) and not isinstance(expr, sp.MatrixSymbol):
            # SymPy's (X*w - y).T*(X*w - y) is a 1x1 matrix; the loss the user means is its entry.
            inner = self.expr(expr, scope, stmts)
            self.emit(f"# {_node_text(expr, self.norm.user_symbols)}: a 1x1 matrix, used as a scalar")
            line = self.emit(f"out = {_text(inner)}[0, 0]")
            node = MatrixElement(expr, 0, 0)
            self.record(node, line)
            stmts.append(Step("out", "elem", (inner,), (0, 0), node, line))
            return "out", stmts
        target = None if isinstance(expr, sp.Symbol) or self.norm.is_program else "out"
        op = self.expr(expr, scope, stmts, target=target)
        if isinstance(op, Const):
            # A constant output still has to be a tensor: keep it on the graph of an input.
            op = self.const_step(expr, op, stmts, "out")
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
            target = self.var(target_sym)
            # Each assignment starts a fresh scope: a reassigned variable makes earlier
            # subexpressions that read it stale.
            self.label = node_text(stmt, self.norm.user_symbols)
            self.context = stmt
            op = self.expr(rhs, _Scope(), out, target=target)
            self.label = None
            if isinstance(op, Const):
                self.comment(stmt)
                line = self.emit(f"{target} = torch.tensor({_text(op)}, dtype=torch.{self.dtype})")
                self.record(stmt, line)
                out.append(Step(target, "constant", (), op.value, stmt, line))
            elif op != target:
                line = self.emit(f"{target} = {_text(op)}")
                self.record(stmt, line)
                out.append(Step(target, "copy", (op,), None, stmt, line))
            elif rhs == target_sym:
                # `b = b*1`: SymPy made it `b = b` when the Assignment was built; nothing runs.
                self.emit(f"# {_node_text(stmt.xreplace(self.norm.user_symbols), self.norm.user_symbols)}: "
                          f"SymPy simplified this statement away (the right side is {target_sym} itself)")
                self.record(stmt, self.emit("pass"))
            else:
                self.record(stmt, self.line_map.get(rhs, len(self.lines)))
            return out
        if isinstance(stmt, ast.While):
            cond = self.cond(stmt.condition)
            self.comment(stmt)
            line = self.emit(f"while {cond.text}:")
            self.record(stmt, line)
            body = self.loop_body(stmt)
            out.append(While(stmt, cond, tuple(body), line))
            return out
        if isinstance(stmt, ast.For):
            rng = stmt.iterable
            bounds = tuple(self.expr(b, scope, out) for b in rng.args)
            var = self.var(stmt.target)
            start, stop, step_ = (_text(b) if isinstance(b, Const) else f"int({b})" for b in bounds)
            if step_ == "1":
                text = f"range({stop})" if start == "0" else f"range({start}, {stop})"
            else:
                text = f"range({start}, {stop}, {step_})"
            line = self.emit(f"for {var} in {text}:")
            self.record(stmt, line)
            body = self.loop_body(stmt)
            out.append(For(stmt, var, bounds, tuple(body), line))  # type: ignore[arg-type]
            return out
        raise ProgramError(f"`{sstr(stmt)}` is not a statement symgrad can lower.")

    def loop_body(self, loop: ast.While | ast.For) -> list[Stmt]:
        """A loop's statements, one level in; a body with no code left still needs a line."""
        self.indent += 1
        start = len(self.lines)
        body: list[Stmt] = []
        for s in loop.body.args:
            body.extend(self.statement(s, _Scope()))
        if all(line.lstrip().startswith("#") for line in self.lines[start:]):
            self.emit("pass  # the loop body is empty")
        self.indent -= 1
        return body

    def cond(self, expr: sp.Basic, elementwise: bool = False) -> Cond:
        syms = sorted((s for s in expr.free_symbols if isinstance(s, sp.Symbol)), key=lambda s: s.name)
        names = tuple((s, self.var(s)) for s in syms)
        text = Inline(dict(names), elementwise).cond(expr)
        return Cond(expr, text, names)

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
                if not self.has_symbols(e) and not isinstance(e, sp.Piecewise):
                    continue
                seen[id(e)] = e
                stack.append((e, True))
                if isinstance(e, (sp.Piecewise, no_grad)):
                    continue
                try:
                    _, operands, _ = select(e)
                except UnsupportedNodeError:
                    continue  # lowered (and refused, with its sentence) by the recursion
                stack.extend((a, False) for a in reversed(operands))
        finally:
            self._warming = False

    def _expr(self, e: sp.Basic, scope: _Scope, out: list[Stmt], target: str | None = None) -> Operand:
        if isinstance(e, (sp.Symbol, sp.MatrixSymbol)):
            return self.var(e)
        if not self.has_symbols(e) and not isinstance(e, sp.Piecewise):
            if getattr(e, "is_number", False) and not isinstance(e, (sp.MatrixBase, sp.MatrixExpr)):
                return _const(e)
        hit = scope.get(e)
        if hit is not None:
            return hit
        if isinstance(e, sp.Piecewise):
            result = self.piecewise(e, scope, out, target)
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
        if op in ("stack", "softmax_vector", "log_softmax_vector"):
            # torch.stack takes tensors: constant elements become tensors of the program's dtype.
            args = tuple(a if isinstance(a, str) else self.const_step(e, a, out, self.namer.fresh("c")) for a in args)
        name = target or self.namer.fresh(_name_for(op, args, param))
        text = _spell(op, args, param)
        if op == "matconst":
            text = _matconst_text(param, self.dtype)
            param = ex.from_sympy(param)
        if op == "detach" and isinstance(args[0], Const):
            # A constant has no graph to leave: it is a constant tensor (`2.detach()` is no code).
            text = f"torch.tensor({_text(args[0])}, dtype=torch.{self.dtype})"
        if op == "item" and isinstance(args[0], Const):
            # A Python number, as `.item()` returns it (a float; past the float range, its literal).
            v = float(args[0].value)
            text = f"torch.tensor({repr(v) if math.isfinite(v) else _text(args[0])}, dtype=torch.{self.dtype})"
        note = _HAZARD_COMMENTS.get(op)
        said = _said(op, args, param)
        if said is None and isinstance(e, ElementwiseApplyFunction) and args and isinstance(args[0], str):
            said = f"{_FUNC_NAMES.get(op, op)} of each element of {args[0]}"  # SymPy prints a Lambda
        if said is not None:  # SymPy's own text of these reads wrong (a OneMatrix prints as 1)
            self.emit(f"# {safe_comment(said)}")
        else:
            self.comment(e, ": a constant from here on; the derivative does not flow through" if op == "detach" else "",
                         target, ", ".join(_text(a) for a in args))
        line = self.emit(f"{name} = {text}" + (f"  # {note}" if note else ""))
        self.record(e, line)
        out.append(Step(name, op, args, param, e, line))
        return name

    def const_step(self, node: sp.Basic, c: Const, out: list[Stmt], target: str) -> str:
        anchor = self.anchor(node)
        value = c.value
        text = f"{anchor} * 0" if value == 0 else f"{anchor} * 0 + {_text(c, wrap=True)}"
        self.emit(f"# the constant {sstr(value)}, kept on the autograd graph through {anchor} (gradient 0)")
        line = self.emit(f"{target} = {text}")
        self.record(node, line)
        out.append(Step(target, "const_on_graph", (anchor,), value, node, line))
        return target

    def anchor(self, node: sp.Basic) -> str:
        syms = sorted((s for s in node.free_symbols if isinstance(s, sp.Symbol)), key=lambda s: s.name)
        if syms:
            return self.var(syms[0])
        if not self.norm.inputs:
            raise ProgramError("A function without inputs has no derivative to compare.\nFix: give it an input symbol.")
        return self.var_names[self.norm.inputs[0]]

    def piecewise(self, e: sp.Piecewise, scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        pairs = list(e.args)
        if self.branches == "where":
            return self.where(e, pairs, scope, out, target)
        name = target or self.namer.fresh("pw")
        self.comment(e, target=target)
        branches: list[Branch] = []
        header_line = 0
        for k, (value, condition) in enumerate(pairs):
            last = condition == sp.true
            if k == 0:
                cond = self.cond(condition)
                line = header_line = self.emit(f"if {cond.text}:")
            elif last:
                cond = None
                line = self.emit("else:")
            else:
                cond = self.cond(condition)
                line = self.emit(f"elif {cond.text}:")
            if k == 0:
                self.record(e, line)
            self.indent += 1
            start = len(self.lines)
            body: list[Stmt] = []
            op = self.expr(value, _Scope(scope), body, target=name)
            if isinstance(op, Const):
                self.const_step(e, op, body, name)
            elif op != name:
                bline = self.emit(f"{name} = {_text(op)}")
                body.append(Step(name, "copy", (op,), None, value, bline))
            if all(text.lstrip().startswith("#") for text in self.lines[start:]):
                # `t = Piecewise((t, t > 1), ...)`: this branch keeps t as it is; no code runs.
                self.emit(f"pass  # {name} keeps its value")
            self.indent -= 1
            branches.append(Branch(cond, tuple(body), line))
            if last:
                break
        else:
            # No condition is True: SymPy's Piecewise is undefined there, so the program is NaN.
            line = self.emit("else:")
            self.indent += 1
            body = []
            self.const_step(e, _const(sp.nan), body, name)
            self.indent -= 1
            branches.append(Branch(None, tuple(body), line))
        out.append(If(e, name, tuple(branches), header_line))
        return name

    def where(self, e: sp.Piecewise, pairs: list[Any], scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        values = [self.expr(v, scope, out) for v, _ in pairs]
        if pairs[-1][1] == sp.true:
            rest: Operand = values[-1]
            pairs, values = pairs[:-1], values[:-1]
        else:
            rest = _const(sp.nan)
        if not pairs:
            return rest
        for k in range(len(pairs) - 1, -1, -1):
            cond = self.cond(pairs[k][1], elementwise=True)
            a = values[k]
            if isinstance(a, Const) and isinstance(rest, Const):
                a = self.const_step(pairs[k][0], a, out, self.namer.fresh("c"))
            node = e if k == 0 else sp.Piecewise(*[(v, c) for v, c in e.args[k:]])
            name = target if (k == 0 and target) else self.namer.fresh("where_" + _name_part(a))
            self.comment(node, target=target if k == 0 else None)
            line = self.emit(f"{name} = torch.where({cond.text}, {_text(a)}, {_text(rest)})  # {_HAZARD_COMMENTS['where']}")
            self.record(node, line)
            out.append(Step(name, "where", (a, rest), None, node, line, cond))
            rest = name
        return rest

    def no_grad(self, e: no_grad, scope: _Scope, out: list[Stmt], target: str | None) -> Operand:
        self.comment(e, ": computed without recording the autograd graph")
        line = self.emit("with torch.no_grad():")
        self.record(e, line)
        self.indent += 1
        body: list[Stmt] = []
        inner = self.expr(e.args[0], _Scope(scope), body, target=target)
        if not any(isinstance(s, Step) and s.name == inner for s in body):
            # An input or a constant: copy it inside the block, so the copy is off the graph.
            name = target or self.namer.fresh(_name_part(inner) + "_nograd")
            cline = self.emit(f"{name} = {_text(inner, wrap=True)}.clone()" if isinstance(inner, str) else f"{name} = torch.tensor({_text(inner)}, dtype=torch.{self.dtype})")
            body.append(Step(name, "copy", (inner,), None, e.args[0], cline))
            inner = name
        self.indent -= 1
        # The value leaves the graph at the `with` block: this step marks it and cites that line.
        body.append(Step(str(inner), "no_grad", (inner,), None, e, line))
        out.append(NoGrad(e, tuple(body), line))
        return inner


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


# --------------------------------------------------------------------------- op selection


def _constant(e: sp.Basic) -> bool:
    """A number the program spells as a literal: `detach(2)` is a number to SymPy, but the
    program computes it (a constant tensor, off the graph)."""
    return not _reads_symbols(e) and bool(e.is_number)


# A subtree nesting deeper than this is lowered bottom-up (`_Lowerer._warm_operands`).
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


# Nodes known to read a symbol or hold a primitive, or not to: SymPy's `is_number` and
# `free_symbols` are not remembered, and walk the whole subtree at each call (quadratic in depth
# when asked at every node). Keyed by identity, each entry holding its node (so that its id stays
# its own): keyed by the node, a lookup of an equal node that is another object would compare
# the two subtrees in full. Emptied when it grows past _READS_KEEP nodes.
_READS: dict[int, tuple[sp.Basic, bool]] = {}
_READS_KEEP: Final = 200_000


def _reads_symbols(e: sp.Basic) -> bool:
    """Whether `e` reads a symbol or holds one of our primitives: an explicit stack, post-order,
    each node of the DAG once."""
    hit = _READS.get(id(e))
    if hit is not None:
        return hit[1]
    found: dict[int, tuple[sp.Basic, bool]] = {}  # this walk's (another thread may empty _READS)

    def known(node: sp.Basic) -> tuple[sp.Basic, bool] | None:
        return found.get(id(node)) or _READS.get(id(node))

    stack: list[tuple[sp.Basic, bool]] = [(e, False)]
    while stack:
        node, ready = stack.pop()
        if known(node) is not None:
            continue
        if isinstance(node, (sp.Symbol, sp.MatrixSymbol, *PRIMITIVES)):
            found[id(node)] = (node, True)
            continue
        args = [a for a in node.args if isinstance(a, sp.Basic)] if isinstance(node, sp.Basic) else []
        if ready or not args:
            found[id(node)] = (node, any(known(a)[1] for a in args))  # type: ignore[index]
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in args if known(a) is None)
    if len(_READS) > _READS_KEEP:
        _READS.clear()
    _READS.update(found)
    return found[id(e)][1] if id(e) in found else known(e)[1]  # type: ignore[index]


def _coeff_split(e: sp.Mul) -> tuple[sp.Number, list[sp.Basic]]:
    coeff, rest = e.as_coeff_mul()
    return coeff, list(rest)


def select(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any]:
    """Which op a node lowers to, its operand subexpressions, and the op's constant parameter."""
    if isinstance(e, (sp.MatrixExpr, sp.MatrixBase, MatrixElement, sp.Determinant, sp.Trace)):
        return _select_matrix(e)
    if isinstance(e, sp.Add):
        signs: list[int] = []
        terms: list[sp.Basic] = []
        # Constants stay SymPy numbers: the exact sides evaluate them at their working precision.
        const = sp.Add(*[t for t in e.args if _constant(t)])
        for t in e.args:
            if _constant(t):
                continue
            c, rest = t.as_coeff_Mul()
            if c.is_negative:
                signs.append(-1)
                terms.append(-t)
            else:
                signs.append(1)
                terms.append(t)
        return "add", *_positive_first(terms, signs, const)
    if isinstance(e, sp.Mul):
        coeff, factors = _coeff_split(e)
        num: list[sp.Basic] = []
        den: list[sp.Basic] = []
        for fac in factors:
            if isinstance(fac, sp.Pow) and fac.exp.is_Integer and fac.exp < 0:
                den.append(fac.base ** (-fac.exp))
            else:
                num.append(fac)
        q = coeff.q if isinstance(coeff, sp.Rational) else 1
        if den or q != 1:
            p = coeff.p if isinstance(coeff, sp.Rational) else coeff
            numerator = sp.Mul(sp.Integer(p) if isinstance(p, int) else p, *num, evaluate=True) if num else sp.Integer(p)
            denominator = sp.Mul(sp.Integer(q), *den) if den else sp.Integer(q)
            return "div", (numerator, denominator), None
        return "mul", tuple(num), coeff
    if isinstance(e, sp.Pow):
        base, exp_ = e.base, e.exp
        if exp_.is_Integer:
            n = int(exp_)
            if n == -1:
                return "div", (sp.Integer(1), base), None
            return "pow_int", (base,), n
        if exp_ == sp.Rational(1, 2):
            return "sqrt", (base,), None
        if exp_ == sp.Rational(-1, 2):
            return "div", (sp.Integer(1), sp.sqrt(base)), None
        if exp_.is_Rational or exp_.is_Float:
            return "pow_frac", (base,), ex.from_sympy(exp_)
        return "pow", (base, exp_), None
    if isinstance(e, (sp.Max, sp.Min)):
        return _select_minmax(e)
    if isinstance(e, detach):
        return "detach", (e.args[0],), None
    if isinstance(e, item):
        return "item", (e.args[0],), None
    if isinstance(e, (softmax, log_softmax)):
        # Component i of torch's softmax of the stacked values: the index is the op's parameter.
        return type(e).__name__, tuple(e.args[1:]), int(e.args[0])
    if isinstance(e, sp.Heaviside):
        if len(e.args) > 1 and e.args[1] != sp.Rational(1, 2):
            raise UnsupportedNodeError(
                f"{sstr(e)} has no torch lowering: symgrad lowers Heaviside with H(0) = 1/2 only.\n"
                "Fix: write `Heaviside(x)` (H(0) = 1/2), or a Piecewise with the value you want at 0."
            )
        return "heaviside", (e.args[0],), None
    rule = rule_for(e)
    if rule is None or not rule.ops or not isinstance(e, sp.Function) or isinstance(e, sp.Piecewise):
        raise unsupported(e)
    if isinstance(e, sp.log) and len(e.args) != 1:
        raise unsupported(e)
    return rule.ops[0], tuple(e.args), None


def _positive_first(terms: list[sp.Basic], signs: list[int], const: sp.Basic) -> tuple[tuple[sp.Basic, ...], Any]:
    """`X*w - y` reads better than `-y + X*w`: added terms first, subtracted ones after."""
    order = sorted(range(len(terms)), key=lambda k: signs[k] < 0)
    if const.is_positive and all(s < 0 for s in signs):
        order = list(range(len(terms)))  # `1 - cos(x)` keeps its constant first
    return tuple(terms[k] for k in order), (tuple(signs[k] for k in order), const)


def _select_matrix(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any]:
    if isinstance(e, MatrixElement):
        summed = _summed(e)
        if summed is not None:
            return "sum", (summed,), None
        return "elem", (e.parent,), (int(e.i), int(e.j))
    if isinstance(e, sp.MatAdd):
        signs: list[int] = []
        terms: list[sp.Basic] = []
        for t in e.args:
            c, mats = t.as_coeff_mmul() if isinstance(t, sp.MatMul) else (sp.Integer(1), t)
            if isinstance(c, sp.Number) and c.is_negative:
                signs.append(-1)
                terms.append(-t)
            else:
                signs.append(1)
                terms.append(t)
        return "add", *_positive_first(terms, signs, sp.Integer(0))
    if isinstance(e, sp.MatMul):
        repeated = _repeated(e)
        if repeated is not None:
            return "expand", (repeated,), (int(e.rows), int(e.cols))
        along = _summed_along(e)
        if along is not None:
            return "sum_dim", (along[0],), along[1]
        coeff, mats = e.as_coeff_matrices()
        product = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
        if coeff != 1:
            if isinstance(coeff, sp.Rational) and abs(coeff.p) == 1 and coeff.q & (coeff.q - 1):
                # X / n, as torch divides (`.mean()`): times 1/n rounds differently (n no power of 2)
                return "div", (product if coeff.p == 1 else -product, sp.Integer(coeff.q)), None
            if _constant(coeff):
                return "mul", (product,), coeff
            return "mul", (coeff, product), sp.Integer(1)
        if len(mats) == 2:
            return "matmul", (mats[0], mats[1]), None
        return "matmul", (sp.MatMul(*mats[:-1]), mats[-1]), None
    if isinstance(e, sp.Transpose):
        return "transpose", (e.arg,), None
    if isinstance(e, sp.HadamardProduct):
        inverse = [a for a in e.args if isinstance(a, sp.HadamardPower) and a.exp == -1]
        if len(inverse) == 1 and len(e.args) == 2:  # A / B elementwise, as torch divides
            numerator = next(a for a in e.args if a is not inverse[0])
            return "div", (numerator, inverse[0].base), None
        return "mul", tuple(e.args), sp.Integer(1)
    if isinstance(e, sp.HadamardPower):
        # SymPy writes HadamardProduct(A, A) as HadamardPower(A, 2): an elementwise power.
        exp_ = e.exp
        if exp_ == -1:  # 1 / B elementwise
            return "div", (sp.Integer(1), e.base), None
        if exp_.is_Integer and int(exp_) >= 1:
            return "pow_int", (e.base,), int(exp_)
        if exp_ == sp.Rational(1, 2):
            return "sqrt", (e.base,), None
        if (exp_.is_Rational or exp_.is_Float) and exp_ > 0:
            return "pow_frac", (e.base,), ex.from_sympy(exp_)
        raise unsupported(e)
    if isinstance(e, sp.Inverse):
        return "inv", (e.arg,), None
    if isinstance(e, sp.MatPow):
        n = e.exp
        if not n.is_Integer:
            raise unsupported(e)
        return "matpow", (e.base,), int(n)
    if isinstance(e, sp.Determinant):
        return "det", (e.arg,), None
    if isinstance(e, sp.Trace):
        return "trace", (e.arg,), None
    if isinstance(e, (sp.Identity, sp.ZeroMatrix, sp.OneMatrix)):
        return "matconst", (), e
    if isinstance(e, ElementwiseApplyFunction):
        body = e.function(sp.Dummy("u"))
        op, operands, param = select(body)
        if len(operands) != 1 or not isinstance(operands[0], sp.Dummy):
            raise unsupported(e)
        return op, (e.expr,), param
    if isinstance(e, sp.MatrixBase):
        if not e.free_symbols and all(v.is_real is not False for v in e):
            return "matconst", (), sp.ImmutableMatrix(e)  # a constant matrix is one tensor
        vector = _whole_softmax(e)
        if vector is not None:
            return vector
        return "stack", tuple(e), (e.rows, e.cols)
    raise unsupported(e)


def _ones_ends(e: sp.MatMul) -> tuple[sp.OneMatrix | None, sp.Basic | None, sp.OneMatrix | None]:
    """A product's OneMatrix factors at either end and the product between them (None where
    there is no matrix between them). Its own factors, not a nested product's:
    `A.sum(0, keepdim=True).sum()` is a sum of a sum, in two steps, as torch rounds it."""
    factors = list(e.args)
    left = factors.pop(0) if len(factors) > 1 and isinstance(factors[0], sp.OneMatrix) else None
    right = factors.pop() if len(factors) > 1 and isinstance(factors[-1], sp.OneMatrix) else None
    if not factors or any(not isinstance(f, (sp.MatrixExpr, sp.MatrixBase)) for f in factors):
        return left, None, right
    return left, factors[0] if len(factors) == 1 else sp.MatMul(*factors), right


def _summed(e: MatrixElement) -> sp.Basic | None:
    """A, where `e` is (ones(1, m) * A * ones(n, 1))[0, 0] (either ones may be absent for a
    vector): the sum of A's elements, as `.sum()` of a tensor is read."""
    if (e.i, e.j) != (0, 0) or not isinstance(e.parent, sp.MatMul):
        return None
    left, inner, right = _ones_ends(e.parent)
    if inner is None or not (left or right) or (left is not None and left.rows != 1) or (right is not None and right.cols != 1):
        return None
    return inner if (inner.rows > 1 or not left) and (inner.cols > 1 or not right) else None


def _repeated(e: sp.MatMul) -> sp.Basic | None:
    """R, where `e` is ones(m, 1) * R (R a row), R * ones(1, n) (R a column) or both (R 1x1):
    how a broadcast is read, lowered to torch's `R.expand(m, n)`."""
    left, inner, right = _ones_ends(e)
    if inner is None or not (left or right) or (left is not None and left.cols != 1) or (right is not None and right.rows != 1):
        return None
    return inner if (inner.rows == 1 or not left) and (inner.cols == 1 or not right) else None


def _summed_along(e: sp.MatMul) -> tuple[sp.Basic, int] | None:
    """(A, 1) for A * ones(n, 1), the sums of A's rows; (A, 0) for ones(1, m) * A, the sums of its
    columns (how `A.sum(dim)` is read), lowered to torch's own `A.sum(dim, keepdim=True)`."""
    left, inner, right = _ones_ends(e)
    if inner is None or (left is None) == (right is None):
        return None
    if right is not None:
        return (inner, 1) if right.cols == 1 and right.rows > 1 else None
    return (inner, 0) if left is not None and left.rows == 1 and left.cols > 1 else None


def _whole_softmax(e: sp.MatrixBase) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """A matrix whose elements, in row-major order, are softmax(0, a...), ..., softmax(n-1, a...)
    of the same values (what `torch.softmax(v, 0)` reads as) lowers to one torch.softmax call,
    as the user's code computes it: n calls, one per component, would round differently. So
    does a matrix each of whose rows (columns) is such a vector of its own values, what
    `torch.softmax(X, 1)` (`torch.softmax(X, 0)`) reads as: the param is (rows, cols, dim)."""
    elements = list(e)
    first = elements[0] if elements else None
    if not isinstance(first, (softmax, log_softmax)):
        return None
    for dim in (None, 1, 0):
        param = (e.rows, e.cols) if dim is None else (e.rows, e.cols, dim)
        groups = softmax_groups(param)
        if len(groups[0]) < 2:
            continue
        values: list[sp.Basic] = [sp.S.Zero] * len(elements)
        for group in groups:
            head = elements[group[0]]
            ok = isinstance(head, type(first)) and len(head.args) == len(group) + 1
            for m, k in enumerate(group):
                el = elements[k]
                ok = ok and type(el) is type(first) and el.args[1:] == head.args[1:] and int(el.args[0]) == m
                if not ok:
                    break
                values[k] = head.args[1 + m]
            if not ok:
                break
        else:
            # A matrix the program holds, one softmax per row or column: softmax it as it is. A
            # vector stays stacked into one dimension: a rank-1 tensor's softmax (which an
            # (n, 1) column stands for) rounds differently from an (n, 1) tensor's along dim 0.
            whole = _elements_of(values, e.rows, e.cols) if dim is not None and min(e.rows, e.cols) > 1 else None
            if whole is not None:
                return f"{type(first).__name__}_of", (whole,), param
            return f"{type(first).__name__}_vector", tuple(values), param
    return None


def _elements_of(values: Sequence[sp.Basic], rows: int, cols: int) -> sp.Basic | None:
    """M, where `values` are M[0, 0], M[0, 1], ... of one (rows, cols) matrix M, in row-major order."""
    first = values[0]
    if not isinstance(first, MatrixElement) or first.parent.shape != (rows, cols):
        return None
    parent = first.parent
    for k, v in enumerate(values):
        if not (isinstance(v, MatrixElement) and v.parent == parent and (int(v.i), int(v.j)) == divmod(k, cols)):
            return None
    return parent


def _matconst_text(c: sp.Basic, dtype: str) -> str:
    if isinstance(c, sp.MatrixBase):
        rows = ", ".join("[" + ", ".join(_matrix_entry(v) for v in c.row(i)) + "]" for i in range(c.rows))
        return f"torch.tensor([{rows}], dtype=torch.{dtype})"
    if isinstance(c, sp.Identity):
        return f"torch.eye({c.rows}, dtype=torch.{dtype})"
    kind = "zeros" if isinstance(c, sp.ZeroMatrix) else "ones"
    return f"torch.{kind}({c.rows}, {c.cols}, dtype=torch.{dtype})"


def _matrix_entry(v: sp.Basic) -> str:
    """An entry of a constant matrix as a float literal (exact on the exact sides)."""
    if v.is_Integer:
        return f"{int(v)}.0" if abs(int(v)) < 2**53 else repr(float(v))
    return repr(float(v))


def _select_minmax(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any]:
    is_max = isinstance(e, sp.Max)
    consts = [a for a in e.args if _constant(a)]
    others = [a for a in e.args if not _constant(a)]
    # A node read from torch code (`torch_names.py`) keeps the op the user called: torch.clamp
    # and torch.maximum have other conventions at the kink than relu, though all are Max(x, 0).
    forced = getattr(e, "torch_op", None)
    if forced in ("clamp_min", "clamp_max") and len(consts) == 1 and len(others) == 1:
        return forced, (others[0],), consts[0]
    if forced in ("maximum", "minimum") and len(e.args) == 2 and others:
        return forced, tuple(e.args), None
    pair = "maximum" if is_max else "minimum"
    if consts and len(others) == 1:
        c = consts[0]
        if is_max and c == 0:
            return "relu", (others[0],), None
        return ("clamp_min" if is_max else "clamp_max"), (others[0],), c
    if consts:
        # Several arguments and a constant: clamp the maximum of the others.
        rest = (sp.Max if is_max else sp.Min)(*others)
        if is_max and consts[0] == 0:
            return "relu", (rest,), None
        return ("clamp_min" if is_max else "clamp_max"), (rest,), consts[0]
    if len(others) == 2:
        return pair, (others[0], others[1]), None
    head = (sp.Max if is_max else sp.Min)(*others[:-1])
    return pair, (head, others[-1]), None


_SUGGESTIONS = {
    "besselj": "there is no Bessel function in torch's autograd; for integer order use a "
    "truncated series or torch.special.bessel_j0/j1 outside symgrad",
    "gamma": "use `exp(loggamma(x))` outside symgrad, or add a row for gamma (torch.lgamma)",
    "re": "symgrad's symbols are real: drop re()",
    "im": "symgrad's symbols are real: im() of a real number is 0",
    "sec": "write 1/cos(x)",
    "csc": "write 1/sin(x)",
    "cot": "write cos(x)/sin(x)",
    "Mod": "write x - y*floor(x/y)",
}


def unsupported(e: sp.Basic, context: sp.Basic | None = None) -> UnsupportedNodeError:
    cls = type(e).__name__
    fix = _SUGGESTIONS.get(cls)
    fix_text = (fix + "; or " + UNSUPPORTED_FIX_DEFAULT.format(cls=cls)) if fix else UNSUPPORTED_FIX_DEFAULT.format(cls=cls)
    where = f" (it occurs in `{node_text(context)}`)" if context is not None and context != e else ""
    err = UnsupportedNodeError(UNSUPPORTED.format(node=sstr(e), cls=cls, where=where, fix=fix_text))
    err.node = e  # type: ignore[attr-defined]
    return err


def _name_for(op: str, args: tuple[Operand, ...], param: Any) -> str:
    parts = [_name_part(a) for a in args]
    if op in _PLAIN_NAMES:
        return _PLAIN_NAMES[op]
    if op in _FUNC_NAMES:
        return f"{_FUNC_NAMES[op]}_{parts[0]}"
    if op == "pow_int":
        return f"{parts[0]}_pow_{param}" if param >= 0 else f"{parts[0]}_pow_neg{-param}"
    if op == "pow_frac":
        return f"{parts[0]}_pow"
    if op == "pow":
        return f"{parts[0]}_pow_{parts[1]}"
    if op == "div":
        return f"inv_{parts[1]}" if parts[0] == "1" else f"{parts[0]}_div_{parts[1]}"
    if op == "mul":
        c = param
        head = [] if c == 1 else (["neg"] if c == -1 else [_num_name(c)])
        return "_".join(head + parts) if len(parts) > 1 or head else parts[0]
    if op == "add":
        signs, const = param
        if signs[0] < 0 and const.is_positive:
            text = _num_name(const)
            rest = zip(signs, parts)
        else:
            text = parts[0] if signs[0] > 0 else "neg_" + parts[0]
            rest = zip(signs[1:], parts[1:])
            if const != 0:
                parts.append(_num_name(abs(const)))
                signs = (*signs, -1 if const.is_negative else 1)
                rest = zip(signs[1:], parts[1:])
        for s, p in rest:
            text += ("_plus_" if s > 0 else "_minus_") + p
        return text
    if op in ("detach",):
        return f"{parts[0]}_detached"
    if op == "item":
        return f"{parts[0]}_item"
    if op in ("clamp_min", "maximum"):
        return "max_" + "_".join(parts)
    if op in ("clamp_max", "minimum"):
        return "min_" + "_".join(parts)
    if op == "atan2":
        return "atan2_" + "_".join(parts)
    if op == "matmul":
        return f"{parts[0]}_at_{parts[1]}"
    if op == "transpose":
        return f"{parts[0]}_T"
    if op == "elem":
        return f"{parts[0]}_{param[0]}{param[1]}"
    if op in ("inv", "det", "trace"):
        return f"{op}_{parts[0]}"
    if op == "matpow":
        return f"{parts[0]}_pow_{param}"
    if op == "matconst":
        return "const_matrix" if isinstance(param, sp.MatrixBase) else type(param).__name__.lower()
    return op


def _ratio(c: Any) -> tuple[int, int] | None:
    """(p, q) of an exact rational parameter (FLINT's fmpq or a Fraction), else None."""
    if ex.is_rational(c):
        return int(c.p), int(c.q)
    if isinstance(c, Fraction):
        return c.numerator, c.denominator
    return None


def _num_name(c: Any) -> str:
    r = _ratio(c)
    if r is not None and r[1] == 1:
        return _int_name(r[0])
    if isinstance(c, sp.Basic):
        return _name_part(_const(c))
    return "c"


def _num_text(c: Any) -> str:
    """A constant parameter as the program spells it (`2`, `0.5`, `math.pi`)."""
    if isinstance(c, sp.Basic):
        return _text(_const(c), wrap=True)
    r = _ratio(c)
    if r is not None:
        text = _const(sp.Rational(*r)).text
        return f"({text})" if " " in text else text  # `(1 / 3)`, but `-1.5` and `2` as they are
    return repr(ex.to_float(c))


def _spell(op: str, args: tuple[Operand, ...], param: Any) -> str:
    """How the program spells one op applied to its operands."""
    if op == "add":
        signs, const = param
        text = ""
        if signs[0] < 0 and const.is_positive:
            # 1 - cos(x) reads better than -cos(x) + 1
            text = _num_text(const)
            for s, a in zip(signs, args):
                text += f" + {_text(a, wrap=True)}" if s > 0 else f" - {_text(a, wrap=True)}"
            return text
        for k, (s, a) in enumerate(zip(signs, args)):
            t = _text(a, wrap=True)
            text += (t if s > 0 else f"-{t}") if k == 0 else (f" + {t}" if s > 0 else f" - {t}")
        if const != 0:
            text += f" + {_num_text(const)}" if not const.is_negative else f" - {_num_text(-const)}"
        return text
    if op == "mul":
        c = param
        factors = " * ".join(_text(a, wrap=True) for a in args)
        if c == 1:
            return factors
        if c == -1:
            return f"-{factors}"
        return f"{_num_text(c)} * {factors}"
    if op == "div":
        return f"{_text(args[0], wrap=True)} / {_text(args[1], wrap=True)}"
    if op == "pow_int":
        # torch takes a Python int exponent only up to 2**63; past that, the float of it.
        return f"{_text(args[0], wrap=True)} ** {param if abs(param) < 2**53 else repr(float(param))}"
    if op == "pow_frac":
        c = param
        spelled = _num_text(c)
        return f"{_text(args[0], wrap=True)} ** {spelled}"
    if op == "pow":
        return f"{_text(args[0], wrap=True)} ** {_text(args[1], wrap=True)}"
    if op == "elem":
        return f"{_text(args[0], wrap=True)}[{param[0]}, {param[1]}]"
    if op == "matpow":
        return f"torch.linalg.matrix_power({_text(args[0])}, {param})"
    if op == "transpose":
        return f"{_text(args[0], wrap=True)}.T"
    if op == "expand":
        return f"{_text(args[0], wrap=True)}.expand({param[0]}, {param[1]})"
    if op == "sum_dim":
        return f"{_text(args[0], wrap=True)}.sum({param}, keepdim=True)"
    if op == "stack":
        return f"torch.stack([{', '.join(_text(a) for a in args)}]).reshape({param[0]}, {param[1]})"
    if op in ("softmax_of", "log_softmax_of"):
        return f"torch.{op.removesuffix('_of')}({_text(args[0])}, {param[2]})"
    if op in ("softmax_vector", "log_softmax_vector"):
        fn = op.removesuffix("_vector")
        stacked = f"torch.stack([{', '.join(_text(a) for a in args)}])"
        if len(param) > 2:  # along each row (dim 1) or column (dim 0) of the matrix
            return f"torch.{fn}({stacked}.reshape({param[0]}, {param[1]}), {param[2]})"
        return f"torch.{fn}({stacked}, 0).reshape({param[0]}, {param[1]})"
    if op == "matconst":
        return ""
    if op in ("clamp_min", "clamp_max"):
        return OPS[op].torch.format(_text(args[0]), c=_const(param).text if isinstance(param, sp.Basic) else _num_text(param))
    if op in ("logsumexp", "softmax", "log_softmax"):
        # torch.stack takes tensors: a constant argument is a tensor like the first variable one.
        # Stacked along a new first dimension, so that a batch of points (a sweep) stays a batch.
        other = next((_text(a) for a in args if isinstance(a, str)), None)
        parts = [f"torch.full_like({other}, {_text(a)})" if isinstance(a, Const) and other else _text(a) for a in args]
        stacked = f"torch.stack([{', '.join(parts)}])"
        return f"torch.logsumexp({stacked}, 0)" if op == "logsumexp" else f"torch.{op}({stacked}, 0)[{param}]"
    if op in ("maximum", "minimum", "atan2", "logaddexp") and any(isinstance(a, Const) for a in args):
        # torch.maximum, torch.atan2 and torch.logaddexp take two tensors: a constant operand is a tensor like the other one.
        other = next(_text(a) for a in args if isinstance(a, str))
        return OPS[op].torch.format(*(f"torch.full_like({other}, {_text(a)})" if isinstance(a, Const) else a
                                      for a in args))
    return OPS[op].torch.format(*(_text(a) for a in args))


class Inline:
    """Conditions print inline (they are not differentiated): `torch.abs(b) < 1000`."""

    _REL = {sp.StrictGreaterThan: ">", sp.GreaterThan: ">=", sp.StrictLessThan: "<",
            sp.LessThan: "<=", sp.Equality: "==", sp.Unequality: "!="}

    def __init__(self, names: dict[sp.Symbol, str], elementwise: bool) -> None:
        self.names = names
        self.elementwise = elementwise

    def cond(self, c: sp.Basic) -> str:
        if c == sp.true:
            return "torch.tensor(True)" if self.elementwise else "True"
        if c == sp.false:
            return "torch.tensor(False)" if self.elementwise else "False"
        for cls, sym in self._REL.items():
            if isinstance(c, cls):
                return f"{self.value(c.lhs)} {sym} {self.value(c.rhs)}"
        if isinstance(c, sp.ITE):
            # SymPy writes a condition on a Piecewise as ITE(c, a, b): (c and a) or (not c and b).
            return self.cond(sp.Or(sp.And(c.args[0], c.args[1], evaluate=False),
                                   sp.And(sp.Not(c.args[0]), c.args[2], evaluate=False), evaluate=False))
        if isinstance(c, (sp.And, sp.Or)):
            if self.elementwise:
                joiner = " & " if isinstance(c, sp.And) else " | "
            else:
                joiner = " and " if isinstance(c, sp.And) else " or "
            return joiner.join(f"({self.cond(a)})" for a in c.args)
        if isinstance(c, sp.Not):
            return f"~({self.cond(c.args[0])})" if self.elementwise else f"not ({self.cond(c.args[0])})"
        raise UnsupportedNodeError(
            f"The condition {sstr(c)} ({type(c).__name__}) cannot be lowered.\n"
            "Conditions are comparisons (<, <=, >, >=, Eq, Ne) joined by And, Or, Not.\n"
            "Fix: write the condition as such a comparison."
        )

    def value(self, e: sp.Basic) -> str:
        if isinstance(e, sp.Symbol):
            return self.names[e]
        if _constant(e):
            return _text(_const(e))
        if isinstance(e, sp.Piecewise) or e.has(*PRIMITIVES):
            raise UnsupportedNodeError(
                f"{sstr(e)} inside a condition cannot be lowered inline.\n"
                "Fix: assign it to a variable first and compare the variable."
            )
        op, operands, param = select(e)
        # constants stay Consts, as in a step: _spell makes them tensors where torch takes only
        # tensors (`torch.logaddexp(torch.full_like(y, 1), y)`, torch.stack, torch.atan2)
        args = tuple(self.value(a) if isinstance(a, sp.Symbol) else (
            _const(a) if _constant(a) else f"({self.value(a)})") for a in operands)
        return _spell(op, args, param)


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
    return _lower_cached(f, branches, dtype)


@functools.lru_cache(maxsize=256)
def _lower_cached(f: Any, branches: Branches, dtype: str, extra: tuple[sp.Symbol, ...] = ()) -> LoweredProgram:
    # SymPy expressions and Programs are immutable, so a lowered program can be shared.
    return _lower(f, branches, dtype, extra)


def clear_cache() -> None:
    """Forget every lowered program `lower()` has cached (for a cold timing, or to free memory)."""
    _lower_cached.cache_clear()


def has_loop(stmts: Sequence[Stmt]) -> bool:
    """Whether a lowered program's statements hold a While or For loop, at any depth."""
    for s in stmts:
        if isinstance(s, (While, For)):
            return True
        if isinstance(s, If) and any(has_loop(b.body) for b in s.branches):
            return True
        if isinstance(s, NoGrad) and has_loop(s.body):
            return True
    return False


def lower_with_inputs(f: Any, extra: tuple[sp.Symbol, ...], *, branches: Branches, dtype: str) -> LoweredProgram:
    """`lower(f)` with inputs the expression does not read (their derivative is 0)."""
    check_options(branches=branches, dtype=dtype)
    return _lower_cached(f, branches, dtype, tuple(extra))


@deep
def _lower(f: Any, branches: Branches, dtype: str, extra: tuple[sp.Symbol, ...] = ()) -> LoweredProgram:
    # Lowering recurses once per nesting level (as SymPy's own printers do); `deep` reruns a
    # deep expression in a worker with a large stack (symgrad/program/deep.py).
    norm = normalize(f, extra)
    lowerer = _Lowerer(norm, branches, dtype)
    body, output, output_line = lowerer.run()
    source = "\n".join(lowerer.lines) + "\n"
    filename = f"<symgrad-generated-{next(_counter)}>"
    namespace: dict[str, Any] = {"torch": torch, "math": math}
    code = compile(source, filename, "exec")
    exec(code, namespace)
    fn = namespace["f"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    names = tuple(lowerer.var_names[s] for s in norm.inputs)
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
        line_map=dict(lowerer.line_map),
        function=fn,
    )
    weakref.finalize(lowered, linecache.cache.pop, filename, None)
    return lowered


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
        out.append(names.index(name))
    return out


def elementwise(cond: Cond) -> str:
    """A condition spelled for a batch of points (`&`, `|`, `~` instead of and/or/not)."""
    return Inline(dict(cond.names), True).cond(cond.expr)


def statement_expression(lowered: LoweredProgram, step: Step) -> str:
    """The right-hand side of a step's line in the generated program, as Python source."""
    text = lowered.source.splitlines()[step.line - 1].strip()
    _, rhs = text.split(" = ", 1)
    return rhs.split("  # ", 1)[0]
