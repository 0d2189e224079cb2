"""The command line's arguments, read and checked before any command runs: points, weights,
ranges, the plot's file, the causes allowed, the demo's name. Imports nothing heavy, so that bad
input gets its sentence without torch or SymPy (`cli.py` calls `prepare`, then the command)."""

from __future__ import annotations

import argparse
import ast as pyast
import math
import os
from collections.abc import Sequence
from typing import Any, Final

from ..base.causes import allowed_causes
from ..base.errors import OptionError, ParseError
from .arguments_data import Draw, Loaded, data_spec, is_data

# The demos by name, as `symgrad demo --help` lists them (`commands.py` builds them; a test keeps
# the two lists equal).
DEMO_NAMES: Final = {
    "relu": "relu three ways at its kink (the default)",
    "detach": "x*detach(x**2) at 3: the math says 27, the program 9",
    "nan-trap": "where(x > 0, sqrt(x), 0) at -1: 0 * nan in the backward pass",
    "overflow": "log(exp(x) + exp(y)) at (1000, 0)",
    "rounding": "(1 - cos(x))/x**2 at 1e-4",
    "graph-break": "x*item(x) at 3",
}


def prepare(args: argparse.Namespace) -> None:
    """Read every value of `args` in place (`--at` to a point, `--v` to weights, `--over` to
    ranges, `--allow` to causes), and check the demo's name and the plot's file; a SymgradError
    sentence for the first that is wrong."""
    if args.command == "demo" and args.name not in DEMO_NAMES:
        raise OptionError(f"There is no demo called {args.name!r}.\nFix: pick one of: {', '.join(DEMO_NAMES)}.")
    if getattr(args, "allow", None) is not None:
        args.allow = allowed_causes(args.allow)
    if getattr(args, "at", None) is not None:
        args.at = point(args.at)
        drawn = [k for k, v in args.at.items() if isinstance(v, (Draw, Loaded))]
        if drawn and args.command != "check":
            raise ParseError(f"--at {drawn[0]}: a draw or a file is data of a torch function, for `symgrad check`; "
                             f"`symgrad {args.command}` takes numbers and nested lists.\n"
                             "Fix: write the value as a number or nested lists, or check a torch function of your own.")
    if getattr(args, "v", None) is not None:
        args.v = weights(args.v)
    if getattr(args, "over", None) is not None:
        args.over = ranges(args.over)
    if getattr(args, "plot", None):
        check_plot_path(args.plot)


def split_top(text: str) -> list[str]:
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


def number_or_matrix(part: str, value: str) -> Any:
    """A number, or a vector or matrix written as nested lists of numbers (`[[1],[2]]`); for
    `symgrad check`, a draw or a file (`randn(8,1,28,28)`, `@batch.npy`: `arguments_data`)."""
    text = value.strip()
    if is_data(text):
        return data_spec(part, text)
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


def point(items: Sequence[str]) -> dict[str, Any]:
    """`--at x=1,y=2`, `--at "w=[[1],[2]]"`, `--at fc1.weight=[[0.5]]`; a name given twice is refused."""
    out: dict[str, Any] = {}
    for chunk in items:
        for part in split_top(chunk):
            if not part.strip():
                continue
            if "=" not in part:
                raise ParseError(f"--at {part!r} is not NAME=VALUE.\nFix: write e.g. `--at x=0.5` or `--at x=1,y=2`.")
            name, text = part.split("=", 1)
            name = name.strip()
            if name in out:
                raise ParseError(f"--at gives {name} twice; a point has one value per input.\n"
                                 f"Fix: give {name} once.")
            out[name] = number_or_matrix(part, text)
    return out


def weights(text: str) -> list[float] | list[list[float]]:
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


def ranges(items: Sequence[str]) -> dict[str, tuple[float, float] | float]:
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


def check_plot_path(path: str) -> None:
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
    if why is None and extension not in IMAGE_FORMATS:
        why = (f"its extension {'.' + extension if extension else '(none)'} is not an image format "
               f"({', '.join('.' + e for e in sorted(IMAGE_FORMATS))})")
    if why:
        raise OptionError(PLOT_PATH.format(path=path, why=why))


# The image formats matplotlib writes (its savefig picks the format from the extension).
IMAGE_FORMATS: Final = frozenset({"png", "pdf", "svg", "svgz", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp",
                                   "gif", "avif", "pgf", "raw", "rgba"})


PLOT_PATH: Final = ("--plot {path}: the image cannot be written there: {why}.\n"
                     "The plot is saved as one image file (its format from the extension, e.g. .png).\n"
                     "Fix: give a file name in a folder you can write, e.g. `--plot sweep.png`.")
