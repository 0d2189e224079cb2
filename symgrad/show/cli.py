"""The `symgrad` command line. Nothing imports this module.

    symgrad demo [NAME]                    a worked comparison (default: relu three ways)
    symgrad compare EXPR --at x=0.5 [--branches where] [--dtype float32] [--wrt x] [--order 2]
                           [--v 1,0] [--markdown | --json] [--steps]
    symgrad sweep EXPR --over x=-2:2,y=0 [-n 1001] [--plot sweep.png] [--json]
    symgrad lower EXPR [--branches where]
    symgrad supported                      the lowering table
    symgrad check path/to/file.py:fn --at a=0.5   a torch function of your own, read back by trace

Expressions are read by `symgrad.parse.parse()`, which walks Python's syntax tree and builds
SymPy objects from an allow-list: `sympify` of a user string runs `eval`, and this never does.
"""

from __future__ import annotations

import argparse
import ast as pyast
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import sympy as sp

from ..base.errors import OptionError, ParseError, SymgradError, TraceError
from ..frontends.front import lower
from ..frontends.parse import parse as parse
from ..program.primitives import detach, item
from ..program.program import number
from ..tools.sweep import sweep
from ..tools.testing import allowed_causes, passes
from ..verdict.compare import compare
from .supported import supported_markdown


def _split_top(text: str) -> list[str]:
    """Split at the commas outside brackets: `w=[[1],[2]],x=3` is two assignments."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return parts


def _value(part: str, value: str) -> Any:
    """A number, or a vector or matrix written as nested lists of numbers (`[[1],[2]]`)."""
    text = value.strip()
    if not text.startswith("["):
        try:
            return float(text)
        except ValueError:
            raise ParseError(f"--at {part.strip()!r}: {text!r} is not a number.\n"
                             "Fix: write e.g. `--at x=0.5`, or a matrix as nested lists: `--at \"w=[[1],[2]]\"`.") from None
    try:
        tree = pyast.literal_eval(text)  # literals only: never code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        tree = None

    def numbers(v: Any, depth: int) -> Any:
        if isinstance(v, (list, tuple)) and depth < 2 and v:
            return [numbers(u, depth + 1) for u in v]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        raise ValueError

    try:
        out = numbers(tree, 0)
        if isinstance(out, list) and any(isinstance(r, list) for r in out) and (
                not all(isinstance(r, list) for r in out) or len({len(r) for r in out}) != 1):
            raise ValueError
        return out
    except ValueError:
        raise ParseError(f"--at {part.strip()!r}: {text!r} is not a number, a vector [1, 2] or a matrix "
                         "[[1, 2], [3, 4]] of numbers with rows of one length.\n"
                         "Fix: write e.g. `--at \"w=[[1],[2]]\"` (quote it in the shell).") from None


def _point(items: Sequence[str]) -> dict[str, Any]:
    """`--at x=1,y=2`, `--at "w=[[1],[2]]"`, `--at fc1.weight=[[0.5]]`; a name given twice is refused."""
    point: dict[str, Any] = {}
    for chunk in items:
        for part in _split_top(chunk):
            if not part.strip():
                continue
            if "=" not in part:
                raise ParseError(f"--at {part!r} is not NAME=VALUE.\nFix: write e.g. `--at x=0.5` or `--at x=1,y=2`.")
            name, value = part.split("=", 1)
            name = name.strip()
            if name in point:
                raise ParseError(f"--at gives {name} twice; a point has one value per input.\n"
                                 f"Fix: give {name} once.")
            point[name] = _value(part, value)
    return point


def _weights(text: str) -> list[float] | list[list[float]]:
    """`--v 1,0.5` (one weight per output element, row-major) or `--v "1,2;3,4"` (rows split by
    `;`): the seed of a vector-Jacobian product, what `y.backward(gradient=v)` takes."""
    how = ("--v holds one weight per output element, what y.backward(gradient=v) takes: numbers split by "
           "commas (row-major), rows split by semicolons.\nFix: write e.g. `--v 1,0` or `--v \"1,0;0,1\"`.")
    rows = [row for row in text.strip().split(";")]
    if not text.strip() or any(not row.strip() for row in rows):
        raise ParseError(f"--v {text!r} has an empty row or no weights at all.\n{how}")
    out: list[list[float]] = []
    for row in rows:
        values = []
        for part in row.split(","):
            try:
                value = float(part)
            except ValueError:
                raise ParseError(f"--v {text!r}: {part.strip()!r} is not a number.\n{how}") from None
            if not math.isfinite(value):
                raise ParseError(f"--v {text!r}: {part.strip()} is not a finite number, and a weight of the "
                                 f"vector-Jacobian product must be one.\n{how}")
            values.append(value)
        out.append(values)
    if len({len(row) for row in out}) != 1:
        raise ParseError(f"--v {text!r} has rows of different lengths ({', '.join(str(len(r)) for r in out)}).\n{how}")
    return out[0] if len(out) == 1 else out


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
    c.add_argument("--full", action="store_true", help="every entry, even over 20 (default: a summary)")
    c.add_argument("--wrt", help="NAME[,NAME]: the inputs to differentiate with respect to (default: all)")
    c.add_argument("--order", type=int, default=1, choices=[1, 2], help="2 compares the Hessian (default 1)")
    c.add_argument("--allow", action="append", default=[], metavar="CAUSE",
                   help="a cause to accept (as assert_grad_matches_math's allow=); exit 1 for any other disagreement")
    c.add_argument("--v", metavar="W,W[;W,W]", help="the weights of a vector-Jacobian product, one per output "
                   "element of a Matrix(...) expression (what y.backward(gradient=v) takes): commas between "
                   "weights, semicolons between rows")
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
    ch.add_argument("--allow", action="append", default=[], metavar="CAUSE",
                    help="a cause to accept (as assert_grad_matches_math's allow=); exit 1 for any other disagreement")
    return p


def _load_function(target: str) -> Any:
    """`path/to/file.py:fn`: the file is run as a module (it is the user's own code) and `fn` taken
    from it."""
    import importlib.util

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
_VALUED: Final = frozenset({"--at", "--over", "--branches", "--dtype", "--plot", "-n", "--wrt", "--order", "--v",
                            "--allow"})
_OPTION_LIKE: Final = re.compile(r"^(-h|--[A-Za-z][\w-]*(=.*)?|-n\d*|-\d+(\.\d*)?|-\.\d+)$", re.DOTALL)


def _protect_expressions(argv: Sequence[str]) -> list[str]:
    """An expression such as `-x**2` starts with `-`, which argparse reads as an option: a space
    in front makes it a positional argument (`parse()` strips it)."""
    out: list[str] = []
    positional = False  # after `--`, every token is an argument (`symgrad compare --at x=1 -- '-x**2'`)
    for k, token in enumerate(argv):
        after_option = k > 0 and argv[k - 1] in _VALUED
        if token == "--" and not positional and not after_option:
            positional = True
            continue
        if positional and token.startswith("-"):
            token = " " + token
        elif token.startswith("-") and len(token) > 1 and not after_option and not _OPTION_LIKE.match(token):
            token = " " + token
        elif after_option and argv[k - 1] == "--v" and token.startswith("-"):
            token = " " + token  # `--v -1,2`: negative weights, not an option (`_weights` strips the space)
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
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if why is None and extension not in _IMAGE_FORMATS:
        why = (f"its extension {'.' + extension if extension else '(none)'} is not an image format "
               f"({', '.join('.' + e for e in sorted(_IMAGE_FORMATS))})")
    if why:
        raise OptionError(_PLOT_PATH.format(path=path, why=why))


# The image formats matplotlib writes (its savefig picks the format from the extension).
_IMAGE_FORMATS: Final = frozenset({"png", "pdf", "svg", "svgz", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp",
                                   "gif", "avif", "pgf", "raw", "rgba"})


_PLOT_PATH: Final = ("--plot {path}: the image cannot be written there: {why}.\n"
                     "The plot is saved as one image file (its format from the extension, e.g. .png).\n"
                     "Fix: give a file name in a folder you can write, e.g. `--plot sweep.png`.")


def _verdict(result: Any, allow: Sequence[str]) -> int:
    """The exit status of a comparison, as a checker in CI is expected to give: 0 when every entry
    agrees or its causes are allowed (as `assert_grad_matches_math`'s allow= decides), 1 otherwise."""
    allowed = allowed_causes(allow)
    return 0 if all(passes(e, allowed) for e in result.entries) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Exit status: 0 done (for compare and check: the gradients agree, or every
    cause is allowed), 1 the gradients disagree, 2 bad input (a sentence on stderr)."""
    args = _parser().parse_args(_protect_expressions(sys.argv[1:] if argv is None else list(argv)))
    try:
        return _run(args)
    except SymgradError as err:
        print(f"symgrad: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`symgrad sweep ... | head`): end quietly. Python would otherwise
        # print an error when it flushes stdout at exit, so stdout goes to /dev/null from here.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        if args.name not in DEMOS:
            raise OptionError(f"There is no demo called {args.name!r}.\nFix: pick one of: {', '.join(DEMOS)}.")
        print(DEMOS[args.name][1]())
    elif args.command == "compare":
        f = parse(args.expr)
        allowed_causes(args.allow)  # a misspelt cause is bad input, said before the work
        wrt = [w.strip() for w in args.wrt.split(",") if w.strip()] if args.wrt else None
        v = _weights(args.v) if args.v is not None else None
        result = compare(f, at=_point(args.at), branches=args.branches, dtype=args.dtype, wrt=wrt,
                         order=args.order, v=v)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
            return _verdict(result, args.allow)
        print(result.to_markdown() if args.markdown else result.report(full=args.full), end="")
        if args.steps:
            print()
            print(result.derivation(), end="")
        return _verdict(result, args.allow)
    elif args.command == "sweep":
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
        allowed_causes(args.allow)
        result = compare(_load_function(args.target), at=_point(args.at), dtype=args.dtype)
        print(result.to_markdown() if args.markdown else result, end="")
        return _verdict(result, args.allow)
    elif args.command == "supported":
        print(supported_markdown(), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
