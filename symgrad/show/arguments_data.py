"""`symgrad check`'s data values in `--at`, where nested lists will not do: an image batch of
(8, 1, 28, 28) drawn as torch draws it, integer class labels, or a tensor from a file.

    X=randn(8,1,28,28)          torch.randn of that shape (the run's dtype), from --seed
    X=rand(8,1,28,28)           torch.rand, uniform on [0, 1)
    y=randint(0,10,(8,))        torch.randint(low, high, size): int64 labels (also randint(10,(8,)))
    X=@batch.npy                a NumPy array file (numpy.load, no pickles)
    X=@batch.pt                 a tensor saved by torch.save (torch.load(weights_only=True))

Read here without torch or NumPy (the command line's arguments are checked before either is
imported); `commands.data_value` makes the tensor. Draws come from one `torch.Generator` seeded by
`--seed` (default 0), in the order `--at` names them: the same command gives the same data.
"""

from __future__ import annotations

import ast as pyast
import os
import re
from dataclasses import dataclass
from typing import Final

from ..base.errors import ParseError

DRAWS: Final = ("randn", "rand", "randint")
FILE_TYPES: Final = (".npy", ".pt", ".pth")
# The most elements one drawn or loaded tensor may hold (an image batch of 256 x 1 x 28 x 28 is 200,704).
MAX_ELEMENTS: Final = 10_000_000

_CALL: Final = re.compile(r"^\s*([A-Za-z_]\w*)\s*\(")

HOW: Final = ("Data in --at is a number, nested lists ([[1, 2], [3, 4]]), randn(8,1,28,28) or rand(...) "
              "(floats drawn from --seed), randint(0,10,(8,)) (int64 labels, as torch.randint(low, high, size)), "
              "or @FILE.npy / @FILE.pt (a tensor saved with numpy.save or torch.save).")


@dataclass(frozen=True)
class Draw:
    """`randn(8,1,28,28)`: what torch draws, by its function, shape and (randint) bounds."""

    kind: str  # randn, rand or randint
    shape: tuple[int, ...]
    low: int = 0
    high: int = 0

    def __str__(self) -> str:
        size = ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "")
        return f"torch.randint({self.low}, {self.high}, ({size}))" if self.kind == "randint" else \
            f"torch.{self.kind}({', '.join(map(str, self.shape))})"


@dataclass(frozen=True)
class Loaded:
    """`@batch.npy`: a tensor from a file, by its path."""

    path: str


def is_data(text: str) -> bool:
    """Whether a value of --at is written as a draw or a file, not as a number or lists."""
    text = text.strip()
    m = _CALL.match(text)
    return text.startswith("@") or bool(m)


def data_spec(part: str, text: str) -> Draw | Loaded:
    """The draw or file a value of --at names; a ParseError sentence for one that is wrong."""
    text = text.strip()
    where = f"--at {part.strip()!r}"
    if text.startswith("@"):
        path = text[1:].strip()
        if not path:
            raise ParseError(f"{where}: @ names no file.\n{HOW}\nFix: write e.g. `--at X=@batch.npy`.")
        if not path.endswith(FILE_TYPES):
            raise ParseError(f"{where}: {path} is not a .npy, .pt or .pth file.\n{HOW}\n"
                             "Fix: save the tensor with numpy.save (.npy) or torch.save (.pt).")
        if not os.path.isfile(path):
            raise ParseError(f"{where}: {path}: no such file.\nFix: give the path of the saved tensor "
                             "(relative to the folder you run symgrad in).")
        return Loaded(path)
    try:
        call = pyast.parse(text, mode="eval").body
    except SyntaxError:
        call = None
    if not isinstance(call, pyast.Call) or not isinstance(call.func, pyast.Name) or call.keywords:
        raise ParseError(f"{where}: {text!r} is not a value symgrad reads.\n{HOW}")
    kind = call.func.id
    if kind not in DRAWS:
        raise ParseError(f"{where}: {kind}(...) is not a draw symgrad makes (randn, rand, randint).\n{HOW}")
    args = [_literal(a) for a in call.args]
    if kind == "randint":
        if len(args) == 2:
            args = [0, *args]
        if len(args) != 3 or not all(isinstance(a, int) for a in args[:2]) or not isinstance(args[2], tuple):
            raise ParseError(f"{where}: randint takes (low, high, size) or (high, size), as torch.randint: "
                             f"e.g. randint(0,10,(8,)) draws 8 labels in 0..9.\n{HOW}")
        low, high, shape = args
        if high <= low:
            raise ParseError(f"{where}: randint({low}, {high}, ...) draws from an empty range: high is "
                             f"excluded, so it must be larger than low.\nFix: e.g. randint(0,10,(8,)).")
        return Draw(kind, _shape(where, shape), low, high)
    shape = args[0] if len(args) == 1 and isinstance(args[0], tuple) else tuple(args)
    return Draw(kind, _shape(where, shape))


def _literal(node: pyast.expr) -> object:
    try:
        value = pyast.literal_eval(node)  # literals only: never code
    except (ValueError, SyntaxError):
        return None
    return tuple(value) if isinstance(value, list) else value


def _shape(where: str, shape: object) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                                           for n in shape):
        raise ParseError(f"{where}: the size of a draw is one or more positive integers, as torch's: "
                         f"e.g. randn(8,1,28,28) or randint(0,10,(8,)).\n{HOW}")
    count = 1
    for n in shape:
        count *= n
    if count > MAX_ELEMENTS:
        raise ParseError(f"{where}: a draw of {count:,} elements is more than {MAX_ELEMENTS:,}.\n"
                         "Fix: a smaller batch: the derivative rules are the same at every size.")
    return shape
