"""The `symgrad` command line. Nothing imports this module.

    symgrad demo [NAME]                    a worked comparison (default: relu three ways)
    symgrad compare EXPR --at x=0.5 [--branches where] [--dtype float32] [--markdown]
    symgrad lower EXPR [--branches where]
    symgrad supported                      the lowering table

Expressions are read by `parse()`, which walks Python's syntax tree and builds SymPy objects
from an allow-list: `sympify` of a user string runs `eval`, and this never does.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable, Sequence
from typing import Any

import sympy as sp

from . import compare, detach, item, lower, no_grad
from .errors import OptionError, ParseError, SymgradError

_FUNCTIONS: dict[str, Any] = {
    "abs": sp.Abs, "max": sp.Max, "min": sp.Min, "ceil": sp.ceiling,
    "detach": detach, "item": item, "no_grad": no_grad,
    "Eq": sp.Eq, "Ne": sp.Ne, "And": sp.And, "Or": sp.Or, "Not": sp.Not, "Piecewise": sp.Piecewise,
}
_CONSTANTS: dict[str, Any] = {"pi": sp.pi, "E": sp.E, "True": sp.true, "False": sp.false, "oo": sp.oo}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge, ast.Eq: sp.Eq, ast.NotEq: sp.Ne,
}


def _function(name: str) -> Any:
    if name in _FUNCTIONS:
        return _FUNCTIONS[name]
    candidate = getattr(sp, name, None)
    if isinstance(candidate, type) and issubclass(candidate, (sp.Function, sp.Expr)) or candidate in (sp.sqrt, sp.Max, sp.Min, sp.root):
        return candidate
    raise ParseError(
        f"{name}(...) is not a function symgrad can read.\n"
        "Expressions on the command line may use SymPy's functions (sin, exp, Max, Piecewise, ...) "
        "and symgrad's detach, item, no_grad.\n"
        "Fix: check the spelling, e.g. `sin(x)`, `Abs(x)`, `Max(x, 0)`."
    )


def parse(text: str) -> sp.Basic:
    """A SymPy expression from a string, without `eval`.

    >>> parse("Max(x, 0) + x**2")
    x**2 + Max(0, x)
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ParseError(
            f"{text!r} is not a valid expression: {err.msg}"
            + (f" (at column {err.offset})" if err.offset else "") + ".\n"
            "Fix: write it in Python/SymPy syntax, e.g. `x**2 + sin(x)`."
        ) from None
    return _build(tree.body, text)


def _build(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return sp.true if node.value else sp.false
    if isinstance(node, ast.Name):
        return _CONSTANTS.get(node.id, None) or sp.Symbol(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _build(node.left, text), _build(node.right, text)
        if isinstance(node.op, ast.Pow) and isinstance(right, sp.Number) and isinstance(left, sp.Number) and abs(right) > 10_000:
            # SymPy would evaluate the number exactly: 9**9**9**9 never finishes.
            raise ParseError(
                f"{ast.get_source_segment(text, node)!r} is too large to evaluate exactly (exponent {right}).\n"
                "A number on the command line is evaluated exactly before anything else runs.\n"
                "Fix: use a smaller power, or a float such as 1e300."
            )
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _build(node.operand, text)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return _COMPARE[type(node.ops[0])](_build(node.left, text), _build(node.comparators[0], text))
    if isinstance(node, ast.Tuple):
        return tuple(_build(e, text) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = _function(node.func.id)
        args = [_build(a, text) for a in node.args]
        try:
            return fn(*args)
        except (TypeError, ValueError) as err:
            raise ParseError(f"{node.func.id}(...) in {text!r}: {err}\nFix: check its arguments.") from None
    shown = ast.get_source_segment(text, node) or type(node).__name__
    raise ParseError(
        f"{shown!r} in {text!r} is not allowed in an expression.\n"
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


def _ranges(items: Sequence[str]) -> dict[str, tuple[float, float]]:
    over: dict[str, tuple[float, float]] = {}
    for chunk in items:
        for part in chunk.split(","):
            name, _, rng = part.partition("=")
            low, sep, high = rng.partition(":")
            try:
                if not (name.strip() and sep):
                    raise ValueError
                over[name.strip()] = (float(low), float(high))
            except ValueError:
                raise ParseError(f"--over {part!r} is not NAME=LOW:HIGH.\nFix: write e.g. `--over x=-2:2`.") from None
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
    sw = sub.add_parser("sweep", help="compare over a range of points")
    sw.add_argument("expr")
    sw.add_argument("--over", action="append", default=[], required=True,
                    help="NAME=LOW:HIGH (n points; two inputs make a grid)")
    sw.add_argument("-n", type=int, default=1001, help="points per input (default 1001)")
    sw.add_argument("--branches", default="if", choices=["if", "where"])
    sw.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    sw.add_argument("--plot", metavar="PNG", help="draw f and both derivatives into this image")
    lo = sub.add_parser("lower", help="print the generated torch program")
    lo.add_argument("expr")
    lo.add_argument("--branches", default="if", choices=["if", "where"])
    lo.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    sub.add_parser("supported", help="print the lowering table (docs/supported.md)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            if args.name not in DEMOS:
                raise OptionError(f"There is no demo called {args.name!r}.\nFix: pick one of: {', '.join(DEMOS)}.")
            print(DEMOS[args.name][1]())
        elif args.command == "compare":
            f = parse(args.expr)
            result = compare(f, at=_point(args.at), branches=args.branches, dtype=args.dtype)
            print(result.to_markdown() if args.markdown else result, end="")
        elif args.command == "sweep":
            from .sweep import sweep

            result = sweep(parse(args.expr), over=_ranges(args.over), n=args.n, branches=args.branches,
                           dtype=args.dtype)
            print(result, end="")
            if args.plot:
                result.plot(args.plot)
                print(f"plot written to {args.plot}")
        elif args.command == "lower":
            print(lower(parse(args.expr), branches=args.branches, dtype=args.dtype).source, end="")
        elif args.command == "supported":
            from .rules import supported_markdown

            print(supported_markdown(), end="")
    except SymgradError as err:
        print(f"symgrad: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
