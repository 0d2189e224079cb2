"""The `symgrad` command line. Nothing imports this module.

    symgrad demo [NAME]                    a worked comparison (default: relu three ways)
    symgrad compare EXPR --at x=0.5 [--branches where] [--dtype float32] [--markdown]
    symgrad lower EXPR [--branches where]
    symgrad supported                      the lowering table
    symgrad check path/to/file.py:fn --at a=0.5   a torch function of your own, read back by trace

Expressions are read by `parse()`, which walks Python's syntax tree and builds SymPy objects
from an allow-list: `sympify` of a user string runs `eval`, and this never does.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import sympy as sp

from . import compare, detach, item, lower, no_grad
from .errors import OptionError, ParseError, SymgradError

# The functions an expression may call: the scalar rows of the lowering table (so nothing is
# parsed that symgrad could not lower), their lowercase spellings, and the logic of conditions.
# Anything else of SymPy's (factorial(10**9), Integral, Float(1, 10**9) ...) could run unbounded
# exact work while the expression is being built, and could not be lowered anyway.
_FUNCTIONS: dict[str, Any] = {
    **{cls.__name__: cls for cls in (
        sp.Abs, sp.Max, sp.Min, sp.Heaviside, sp.Piecewise, sp.exp, sp.log, sp.sin, sp.cos, sp.tan,
        sp.asin, sp.acos, sp.atan, sp.atan2, sp.sinh, sp.cosh, sp.tanh, sp.erf, sp.floor, sp.ceiling,
        sp.sign, detach, item, no_grad)},
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


def _function(name: str) -> Any:
    if name in _FUNCTIONS:
        return _FUNCTIONS[name]
    candidate = getattr(sp, name, None)
    if isinstance(candidate, type) and issubclass(candidate, sp.Function):
        # A SymPy function symgrad cannot lower (besselj, factorial, ...): built unevaluated,
        # so that factorial(10**9) costs nothing, and refused with the lowering's own sentence.
        from .lowering import _unsupported

        def refuse(*args: Any) -> Any:
            raise _unsupported(candidate(*args, evaluate=False))

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
    from .program import sstr

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
    raise ParseError(
        f"{shown!r} in {_shown(text)} is not allowed in an expression.\n"
        "The command line reads numbers, symbols, + - * / **, comparisons, tuples and calls of "
        "SymPy functions; anything else (attributes, subscripts, lambdas, strings) could run code.\n"
        "Fix: write the expression with those, e.g. `exp(x) / (1 + exp(x))`."
    )


def _point(items: Sequence[str]) -> dict[str, float]:
    point: dict[str, float] = {}
    for chunk in items:
        for part in chunk.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ParseError(f"--at {part!r} is not NAME=VALUE.\nFix: write e.g. `--at x=0.5` or `--at x=1,y=2`.")
            name, value = part.split("=", 1)
            try:
                point[name.strip()] = float(value)
            except ValueError:
                raise ParseError(f"--at {part!r}: {value!r} is not a number.\nFix: write e.g. `--at x=0.5`.") from None
    return point


def _ranges(items: Sequence[str]) -> dict[str, tuple[float, float] | float]:
    """`x=-2:2` is a range; `y=0` holds y fixed at 0."""
    over: dict[str, tuple[float, float] | float] = {}
    for chunk in items:
        for part in chunk.split(","):
            name, eq, rng = part.partition("=")
            low, sep, high = rng.partition(":")
            try:
                if not (name.strip() and eq):
                    raise ValueError
                over[name.strip()] = (float(low), float(high)) if sep else float(rng)
            except ValueError:
                raise ParseError(f"--over {part!r} is not NAME=LOW:HIGH or NAME=VALUE.\n"
                                 "Fix: write e.g. `--over x=-2:2` (a range) or `--over x=-2:2,y=0` (y fixed at 0).") from None
    return over


# --------------------------------------------------------------------------- demos

x = sp.Symbol("x")
relu_ways: list[tuple[str, Any, str]] = [
    ("Max(x, 0)", sp.Max(x, 0), "if"),
    ("Piecewise, branches=\"if\"", sp.Piecewise((x, x > 0), (0, True)), "if"),
    ("Piecewise, branches=\"where\"", sp.Piecewise((x, x > 0), (0, True)), "where"),
]


def demo_relu() -> str:
    lines = ["relu written three ways, compared at x = 0 (its kink) and at x = 1.", ""]
    rows = [["written as", "x", "symbolic", "executed", "autograd", "cause"]]
    from .report import number

    reports = []
    for label, f, branches in relu_ways:
        for at in (0.0, 1.0):
            c = compare(f, at={x: at}, branches=branches)  # type: ignore[arg-type]
            e = c.entries[0]
            sym = number(e.grad_symbolic) if e.grad_symbolic is not None else (
                f"none ({number(e.one_sided[0])} | {number(e.one_sided[1])})" if e.one_sided else "none")
            rows.append([label, str(at), sym, number(e.grad_executed), repr(e.grad_autograd), c.cause.id])
            if at == 0.0:
                reports.append(str(c))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines += ["", "At 0 the mathematics has no derivative (slope 0 on the left, 1 on the right); each program",
              "picks one by its own rule. The three reports at x = 0:", ""]
    for r in reports:
        lines += ["-" * 72, r]
    return "\n".join(lines)


def _single(f: Any, at: dict[Any, float], **kw: Any) -> Callable[[], str]:
    return lambda: str(compare(f, at=at, **kw))


y = sp.Symbol("y")
DEMOS: dict[str, tuple[str, Callable[[], str]]] = {
    "relu": ("relu three ways at its kink (the default)", demo_relu),
    "detach": ("x*detach(x**2) at 3: the math says 27, the program 9", _single(x * detach(x**2), {x: 3.0})),
    "nan-trap": ("where(x > 0, sqrt(x), 0) at -1: 0 * nan in the backward pass",
                 _single(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), {x: -1.0}, branches="where")),
    "overflow": ("log(exp(x) + exp(y)) at (1000, 0)", _single(sp.log(sp.exp(x) + sp.exp(y)), {x: 1000.0, y: 0.0})),
    "rounding": ("(1 - cos(x))/x**2 at 1e-4", _single((1 - sp.cos(x)) / x**2, {x: 1e-4})),
    "graph-break": ("x*item(x) at 3", _single(x * item(x), {x: 3.0})),
}


# --------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="symgrad", description="Compare the gradient a PyTorch program "
                                "executes with the derivative of its mathematics.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run a worked comparison")
    d.add_argument("name", nargs="?", default="relu", help="one of: " + ", ".join(DEMOS))
    c = sub.add_parser("compare", help="compare the three derivatives at a point")
    c.add_argument("expr")
    c.add_argument("--at", action="append", default=[], required=True, help="NAME=VALUE[,NAME=VALUE]")
    c.add_argument("--branches", default="if", choices=["if", "where"])
    c.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    c.add_argument("--markdown", action="store_true", help="print markdown instead of text")
    c.add_argument("--steps", action="store_true",
                   help="also print the backward pass line by line: each adjoint exact and torch's")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON (Comparison.to_dict())")
    sw = sub.add_parser("sweep", help="compare over a range of points")
    sw.add_argument("expr")
    sw.add_argument("--over", action="append", default=[], required=True,
                    help="NAME=LOW:HIGH (n points; two ranges make a grid) or NAME=VALUE (held fixed)")
    sw.add_argument("-n", type=int, default=1001, help="points per input (default 1001)")
    sw.add_argument("--branches", default="if", choices=["if", "where"])
    sw.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    sw.add_argument("--plot", metavar="PNG", help="draw f and the derivatives (or a map of causes) into this image")
    sw.add_argument("--json", action="store_true", help="print the sweep as JSON (Sweep.to_dict())")
    lo = sub.add_parser("lower", help="print the generated torch program")
    lo.add_argument("expr")
    lo.add_argument("--branches", default="if", choices=["if", "where"])
    lo.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    sub.add_parser("supported", help="print the lowering table (docs/supported.md)")
    ch = sub.add_parser("check", help="compare a torch function of your own: FILE.py:FUNCTION")
    ch.add_argument("target", help="path/to/file.py:function")
    ch.add_argument("--at", action="append", default=[], required=True, help="NAME=VALUE[,NAME=VALUE]")
    ch.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ch.add_argument("--markdown", action="store_true", help="print markdown instead of text")
    return p


def _load_function(target: str) -> Any:
    """`path/to/file.py:fn`: the file is run as a module (it is the user's own code) and `fn` taken
    from it."""
    import importlib.util

    from .errors import TraceError

    path, sep, name = target.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise TraceError(f"{target!r} is not FILE.py:FUNCTION.\nFix: write e.g. `symgrad check model.py:loss --at x=0.5`.")
    if not os.path.isfile(path):
        raise TraceError(f"{path}: no such file.\nFix: give the path of the Python file that defines {name}.")
    spec = importlib.util.spec_from_file_location(f"symgrad_check_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise TraceError(f"{path} cannot be loaded as a Python module.\nFix: give a .py file.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise TraceError(f"{path} defines no function {name}.\nFix: check the name after the colon.")
    return fn


# Options that take a value: the token after one is that value, never an expression.
_VALUED: Final = frozenset({"--at", "--over", "--branches", "--dtype", "--plot", "-n"})
_OPTION_LIKE: Final = re.compile(r"^(-h|--[A-Za-z][\w-]*(=.*)?|-n\d*|-\d+(\.\d*)?|-\.\d+)$", re.DOTALL)


def _protect_expressions(argv: Sequence[str]) -> list[str]:
    """An expression such as `-x**2` starts with `-`, which argparse reads as an option: a space
    in front makes it a positional argument (`parse()` strips it)."""
    out: list[str] = []
    for k, token in enumerate(argv):
        after_option = k > 0 and argv[k - 1] in _VALUED
        if token.startswith("-") and len(token) > 1 and not after_option and not _OPTION_LIKE.match(token):
            token = " " + token
        out.append(token)
    return out


def _check_plot_path(path: str) -> None:
    """Refuse a --plot path that cannot be written, before the sweep runs."""
    folder = os.path.dirname(os.path.abspath(path))
    why = None
    if os.path.isdir(path):
        why = "it is a directory"
    elif not os.path.isdir(folder):
        why = f"its folder {folder} does not exist"
    elif not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        why = "this process may not write there"
    if why:
        raise OptionError(_PLOT_PATH.format(path=path, why=why))


_PLOT_PATH: Final = ("--plot {path}: the image cannot be written there: {why}.\n"
                     "The plot is saved as one image file (its format from the extension, e.g. .png).\n"
                     "Fix: give a file name in a folder you can write, e.g. `--plot sweep.png`.")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_protect_expressions(sys.argv[1:] if argv is None else list(argv)))
    try:
        if args.command == "demo":
            if args.name not in DEMOS:
                raise OptionError(f"There is no demo called {args.name!r}.\nFix: pick one of: {', '.join(DEMOS)}.")
            print(DEMOS[args.name][1]())
        elif args.command == "compare":
            f = parse(args.expr)
            result = compare(f, at=_point(args.at), branches=args.branches, dtype=args.dtype)
            if args.json:
                print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
                return 0
            print(result.to_markdown() if args.markdown else result, end="")
            if args.steps:
                print()
                print(result.derivation(), end="")
        elif args.command == "sweep":
            from .sweep import sweep

            if args.plot:
                _check_plot_path(args.plot)
            result = sweep(parse(args.expr), over=_ranges(args.over), n=args.n, branches=args.branches,
                           dtype=args.dtype)
            if args.json:
                print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
            else:
                print(result, end="")
            if args.plot:
                try:
                    result.plot(args.plot)
                except OSError as err:
                    raise OptionError(_PLOT_PATH.format(path=args.plot, why=err.strerror or err)) from None
                print(f"plot written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
        elif args.command == "lower":
            print(lower(parse(args.expr), branches=args.branches, dtype=args.dtype).source, end="")
        elif args.command == "check":
            result = compare(_load_function(args.target), at=_point(args.at), dtype=args.dtype)
            print(result.to_markdown() if args.markdown else result, end="")
        elif args.command == "supported":
            from .rules import supported_markdown

            print(supported_markdown(), end="")
    except SymgradError as err:
        print(f"symgrad: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
