"""The safe expression parser: a string -> a SymPy expression, without `eval`.

`parse()` walks Python's syntax tree and builds SymPy objects from an allow-list: `sympify` of a
user string runs `eval`, and this never does. The command line and `compare("x**2", ...)`,
`sweep("...", ...)` and `lower("...")` all read strings through it, so the API and the CLI
speak one language.
"""

from __future__ import annotations

import ast
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import sympy as sp

from ..base.errors import ParseError, SymgradError
from sympy.codegen.cfunctions import expm1, log1p

from ..program.primitives import detach, item, log_softmax, logaddexp, logsumexp, no_grad, sigmoid, softmax, softplus
from ..sides.selection import unsupported
from ..program.program import sstr

# The functions an expression may call: the scalar rows of the lowering table (so nothing is
# parsed that symgrad could not lower), their lowercase spellings, and the logic of conditions.
# Anything else of SymPy's (factorial(10**9), Integral, Float(1, 10**9) ...) could run unbounded
# exact work while the expression is being built, and could not be lowered anyway.
_FUNCTIONS: dict[str, Any] = {
    **{cls.__name__: cls for cls in (
        sp.Abs, sp.Max, sp.Min, sp.Heaviside, sp.Piecewise, sp.exp, sp.log, sp.sin, sp.cos, sp.tan,
        sp.asin, sp.acos, sp.atan, sp.atan2, sp.sinh, sp.cosh, sp.tanh, sp.erf, sp.floor, sp.ceiling,
        sp.sign, detach, item, no_grad, sigmoid, expm1, log1p, logsumexp, logaddexp, softplus, softmax,
        log_softmax)},
    "abs": sp.Abs, "max": sp.Max, "min": sp.Min, "ceil": sp.ceiling, "sqrt": sp.sqrt,
    "Pow": sp.Pow, "Add": sp.Add, "Mul": sp.Mul,  # built by _power, _apply and _product (guarded)
    "Eq": sp.Eq, "Ne": sp.Ne, "And": sp.And, "Or": sp.Or, "Not": sp.Not,
}
_CONSTANTS: dict[str, Any] = {"pi": sp.pi, "E": sp.E, "True": sp.true, "False": sp.false, "oo": sp.oo}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge, ast.Eq: sp.Eq, ast.NotEq: sp.Ne,
}
# Exact numbers on the command line have at most this many digits (10**10000 is fine, 9**9**9 is
# not): SymPy evaluates a number exactly as soon as it is written, before anything can stop it.
MAX_DIGITS: Final = 10_000


def _relu(*args: Any) -> Any:
    if len(args) != 1:
        raise TypeError(f"relu takes one argument ({len(args)} given)")
    return sp.Max(args[0], 0)


_FUNCTIONS["relu"] = _relu  # torch.relu: lowered as Max(x, 0), relu'(0) = 0 in torch

def _function(name: str) -> Any:
    if name in _FUNCTIONS:
        return _FUNCTIONS[name]
    candidate = getattr(sp, name, None)
    if isinstance(candidate, type) and issubclass(candidate, sp.Function):
        # A SymPy function symgrad cannot lower (besselj, factorial, ...): built unevaluated,
        # so that factorial(10**9) costs nothing, and refused with the lowering's own sentence.
        def refuse(*args: Any) -> Any:
            raise unsupported(candidate(*args, evaluate=False))

        return refuse
    raise ParseError(
        f"{name}(...) is not a function symgrad can read.\n"
        "Expressions on the command line may call the functions symgrad lowers to torch "
        "(`symgrad supported` lists them: sin, exp, log, sqrt, Abs, Max, Min, floor, Heaviside, Piecewise, "
        "...) and symgrad's detach, item, no_grad.\n"
        "Fix: check the spelling, e.g. `sin(x)`, `Abs(x)`, `Max(x, 0)`."
    )


def parse(text: str) -> sp.Basic:
    """A SymPy expression from a string, without `eval`.

    >>> parse("Max(x, 0) + x**2")
    x**2 + Max(0, x)
    """
    text = text.strip()
    # A long sum is as deep as it is long, in Python's parser and here: allow DEPTH levels.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, DEPTH))
    try:
        return _parse(text)
    finally:
        sys.setrecursionlimit(limit)


DEPTH: Final = 10_000


def _parse(text: str) -> sp.Basic:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        if "integer string conversion" in str(err.msg):
            raise ParseError(f"{_shown(text)} holds an integer literal of more than 4,300 digits, more than "
                             f"Python reads.\nFix: write it as a power, e.g. 10**400 (at most {MAX_DIGITS:,} "
                             "digits).") from None
        raise ParseError(
            f"{_shown(text)} is not a valid expression: {err.msg}"
            + (f" (at column {err.offset})" if err.offset else "") + ".\n"
            "Fix: write it in Python/SymPy syntax, e.g. `x**2 + sin(x)`."
        ) from None
    except (RecursionError, MemoryError):
        raise ParseError(_TOO_DEEP.format(text=_shown(text))) from None
    try:
        return _build(tree.body, text)
    except RecursionError:
        raise ParseError(_TOO_DEEP.format(text=_shown(text))) from None


_TOO_DEEP: Final = ("{text} is nested too deeply to read: a sum or product of n terms is n levels deep, "
                    f"and symgrad reads at most about {DEPTH:,} levels (Python's parser recurses per level).\n"
                    "Fix: build so long an expression in Python with SymPy (`sympy.Add(*terms)`), or "
                    "write it with fewer terms.")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else repr(text[:60]) + f"... ({len(text)} characters)"


def _segment(text: str, node: ast.AST) -> str:
    return ast.get_source_segment(text, node) or type(node).__name__


def _too_large(text: str, node: ast.AST | None, what: str) -> ParseError:
    shown = repr(_segment(text, node)) if node is not None else "A number"
    return ParseError(
        f"{shown} is too large to evaluate exactly ({what}).\n"
        f"A number on the command line is evaluated exactly before anything else runs, and symgrad "
        f"stops at {MAX_DIGITS:,} digits.\n"
        "Fix: use a smaller number, or a float such as 1e300."
    )


def _digits(v: Any) -> float:
    """About how many decimal digits an exact number holds (0 for anything but a rational)."""
    if isinstance(v, sp.Rational):
        return math.log10(max(abs(int(v.p)), int(v.q))) + 1
    return 0.0


def _power(base: Any, exp_: Any, node: ast.AST | None, text: str) -> Any:
    _numbers_only((base, exp_), node, text)
    if isinstance(base, sp.Number) and isinstance(exp_, sp.Number):
        # SymPy would evaluate the number exactly: 9**9**9**9 never finishes.
        if abs(exp_) > 10_000 and abs(base) not in (0, 1):
            raise _too_large(text, node, f"exponent {_rounded(exp_)}")
        digits = (_digits(base) - 1) * abs(float(exp_))
        if isinstance(exp_, sp.Rational) and digits > MAX_DIGITS:
            raise _too_large(text, node, f"about {digits:.0f} digits")
    return _apply(lambda: base**exp_, node, text)


def _product(factors: Sequence[Any], node: ast.AST | None, text: str) -> Any:
    _numbers_only(factors, node, text)
    digits = sum(_digits(f) for f in factors)
    if digits > MAX_DIGITS + len(factors):
        raise _too_large(text, node, f"about {digits:.0f} digits")
    return _apply(lambda: sp.Mul(*factors), node, text)


def _numbers_only(items: Sequence[Any], node: ast.AST | None, text: str) -> None:
    """Arithmetic takes numbers and symbols: SymPy would warn about `True*x`, then fail."""
    for v in items:
        if isinstance(v, tuple) or (isinstance(v, sp.logic.boolalg.Boolean) and not isinstance(v, sp.Expr)):
            raise _not_built(node, text, f"{_rounded(v) if not isinstance(v, tuple) else 'a tuple'} is not a number")


def _rounded(v: sp.Number) -> str:
    return sstr(v)


def _apply(build: Callable[[], Any], node: ast.AST | None, text: str) -> Any:
    """Build one SymPy node; SymPy's refusal (True*x, a tuple in a sum) becomes a sentence."""
    try:
        return build()
    except (TypeError, ValueError, AttributeError, sp.SympifyError) as err:
        raise _not_built(node, text, str(err)) from None


def _not_built(node: ast.AST | None, text: str, why: str) -> ParseError:
    where = f"{_segment(text, node)!r} in {_shown(text)}" if node is not None else _shown(text)
    return ParseError(
        f"{where} cannot be built: {why}.\n"
        "Numbers and symbols combine with + - * / **; True, False and comparisons are conditions "
        "(for Piecewise and And/Or), and tuples are only the (value, condition) pairs of a Piecewise.\n"
        "Fix: e.g. `x*2`, or `Piecewise((x, x > 0), (0, True))`."
    )


# A Matrix typed on the command line has at most this many elements (each is an output of the
# function, and compare() computes every one exactly).
MAX_MATRIX_ELEMENTS: Final = 10_000


def _matrix(node: ast.Call, text: str) -> sp.ImmutableMatrix:
    """`Matrix([a, b])` (a column) or `Matrix([[a, b], [c, d]])` (rows): a function with several
    outputs. Lists are read here only: anywhere else a list is not an expression."""
    shown = _segment(text, node)
    how = ("Matrix(...) takes one list: `Matrix([a, b])` is a column of two outputs, "
           "`Matrix([[a, b], [c, d]])` a 2 x 2 matrix.")
    if len(node.args) != 1 or not isinstance(node.args[0], ast.List) or not node.args[0].elts:
        raise ParseError(f"{shown!r} in {_shown(text)} is not a matrix symgrad can read.\n{how}\n"
                         "Fix: write e.g. `Matrix([x**2, x*y])`.")
    items = node.args[0].elts
    nested = [isinstance(e, ast.List) for e in items]
    if any(nested) and not all(nested):
        raise ParseError(f"{shown!r} in {_shown(text)} mixes rows and single elements.\n{how}\n"
                         "Fix: make every element a row (`[[a, b], [c, d]]`) or none (`[a, b]`).")
    rows = [e.elts for e in items] if all(nested) else [[e] for e in items]  # type: ignore[attr-defined]
    widths = {len(row) for row in rows}
    if len(widths) != 1 or 0 in widths:
        raise ParseError(f"{shown!r} in {_shown(text)} has rows of different lengths ({sorted(widths)}).\n{how}\n"
                         "Fix: give every row the same number of elements.")
    if len(rows) * len(rows[0]) > MAX_MATRIX_ELEMENTS:
        raise ParseError(f"{shown!r} in {_shown(text)} has {len(rows) * len(rows[0]):,} elements, more than "
                         f"symgrad reads from a string ({MAX_MATRIX_ELEMENTS:,}).\n"
                         "Fix: build so large a matrix in Python with SymPy (`sympy.ImmutableMatrix`).")
    values = []
    for row in rows:
        built = [_build(e, text) for e in row]
        _numbers_only(built, node, text)
        values.append(built)
    return _apply(lambda: sp.ImmutableMatrix(values), node, text)


def _chain(node: ast.BinOp, ops: tuple[type, ...]) -> tuple[ast.AST, list[tuple[type, ast.AST]]]:
    """A left-leaning chain `a + b - c + ...` as its first operand and (op, operand) pairs,
    walked without recursion: a sum of a thousand terms is a thousand levels deep."""
    items: list[tuple[type, ast.AST]] = []
    cur: ast.AST = node
    while isinstance(cur, ast.BinOp) and type(cur.op) in ops:
        items.append((type(cur.op), cur.right))
        cur = cur.left
    items.reverse()
    return cur, items


def _build(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise ParseError(
                f"The literal {_segment(text, node)} in {_shown(text)} is beyond the float range: Python "
                "reads it as infinity (floats stop near 1.8e308), and SymPy would make it oo.\n"
                "symgrad keeps constants exact, so an infinity here is almost never what was meant.\n"
                "Fix: write the number exactly, e.g. 10**400 instead of 1e400, or write oo if you mean infinity."
            )
        return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return sp.true if node.value else sp.false
    if isinstance(node, ast.Name):
        return _CONSTANTS.get(node.id, None) or sp.Symbol(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        first, rest = _chain(node, (ast.Add, ast.Sub))
        terms = [_build(first, text)]
        for op, operand in rest:
            term = _build(operand, text)
            _numbers_only((terms[0], term), node, text)
            terms.append(-term if op is ast.Sub else term)
        return _apply(lambda: sp.Add(*terms), node, text)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        first, rest = _chain(node, (ast.Mult, ast.Div))
        factors = [_build(first, text)]
        for op, operand in rest:
            factor = _build(operand, text)
            _numbers_only((factor,), node, text)
            factors.append(sp.Integer(1) / factor if op is ast.Div else factor)
        return _product(factors, node, text)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_build(node.left, text), _build(node.right, text), node, text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _build(node.operand, text)
        _numbers_only((inner,), node, text)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        lhs, rhs = _build(node.left, text), _build(node.comparators[0], text)
        return _apply(lambda: _COMPARE[type(node.ops[0])](lhs, rhs), node, text)
    if isinstance(node, ast.Tuple):
        return tuple(_build(e, text) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Matrix" and not node.keywords:
        return _matrix(node, text)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = _function(node.func.id)
        args = [_build(a, text) for a in node.args]
        if fn is sp.Pow and len(args) == 2:
            return _power(args[0], args[1], node, text)
        if fn is sp.Mul:
            return _product(args, node, text)
        if fn is sp.Add:
            _numbers_only(args, node, text)
            return _apply(lambda: sp.Add(*args), node, text)
        try:
            return fn(*args)
        except SymgradError:
            raise
        except (TypeError, ValueError, AttributeError, sp.SympifyError) as err:
            raise ParseError(f"{node.func.id}(...) in {_shown(text)}: {err}\nFix: check its arguments.") from None
    shown = _segment(text, node)
    if isinstance(node, ast.List):
        raise ParseError(
            f"{shown!r} in {_shown(text)} is a list, which an expression holds only as the rows of a Matrix.\n"
            "A function with several outputs is a SymPy Matrix of expressions (compare it with --v for a "
            "vector-Jacobian product).\n"
            f"Fix: write `Matrix({shown})` for a column, or `Matrix([[a, b], [c, d]])` for rows."
        )
    if isinstance(node, ast.IfExp):
        body, test, orelse = (_segment(text, n) for n in (node.body, node.test, node.orelse))
        raise ParseError(
            f"{shown!r} in {_shown(text)} is a Python `if`, which an expression cannot hold.\n"
            "SymPy writes a choice between two values as a Piecewise: each piece is (value, condition), "
            "and the last condition True means \"otherwise\".\n"
            f"Fix: write `Piecewise(({body}, {test}), ({orelse}, True))`."
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ParseError(
            f"{_shown(text)} uses ^, which in Python is the bitwise exclusive or, not a power "
            "(and binds more loosely than +, so x^2 + 1 would read as x^(2 + 1)).\n"
            f"Fix: write powers with **: `{text.replace('^', '**')}`."
        )
    raise ParseError(
        f"{shown!r} in {_shown(text)} is not allowed in an expression.\n"
        "The command line reads numbers, symbols, + - * / **, comparisons, tuples and calls of "
        "SymPy functions; anything else (attributes, subscripts, lambdas, strings) could run code.\n"
        "Fix: write the expression with those, e.g. `exp(x) / (1 + exp(x))`."
    )
