"""The `symgrad` command line: its arguments (this module) and its commands (`commands.py`,
imported only once the arguments are read, so that `--help` and argument errors import neither
torch nor SymPy). Nothing imports this module.

    symgrad demo [NAME]                    a worked comparison (default: relu three ways)
    symgrad compare EXPR --at x=0.5 [--branches where] [--dtype float32] [--wrt x] [--order 2]
                           [--v 1,0] [--markdown | --json] [--steps]
    symgrad sweep EXPR --over x=-2:2,y=0 [-n 1001] [--plot sweep.png] [--json]
    symgrad lower EXPR [--branches where]
    symgrad supported                      the lowering table
    symgrad check path/to/file.py:fn --at a=0.5   a torch function of your own, read back by trace
    symgrad check model.py:net --at x=[[1,2]]     an nn.Module (or a function of no arguments that
                                                   returns one): its parameters, at forward's data
    symgrad check train.py:step --at 'X=randn(8,1,28,28),y=randint(0,10,(8,))' [--seed 0]
                                                   data drawn as torch draws it (or X=@batch.npy)

Expressions are read by `symgrad.frontends.parse.parse()`, which walks Python's syntax tree and builds
SymPy objects from an allow-list: `sympify` of a user string runs `eval`, and this never does.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Final

from ..base.errors import SymgradError
from . import arguments



# --------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="symgrad", description="Compare the gradient a PyTorch program "
                                "executes with the derivative of its mathematics.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run a worked comparison")
    d.add_argument("name", nargs="?", default="relu", help="one of: " + ", ".join(arguments.DEMO_NAMES))
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
    ch = sub.add_parser("check", help="compare a torch function or nn.Module of your own: FILE.py:NAME")
    ch.add_argument("target", help="path/to/file.py:NAME: a function of tensors, an nn.Module, or a function "
                    "of no arguments that returns one (its trainable parameters are compared)")
    ch.add_argument("--at", action="append", default=[], required=True,
                    help="NAME=VALUE[,NAME=VALUE]: the function's inputs, or the module forward's data. A value "
                    "is a number, nested lists ([[1, 2]]), randn(8,1,28,28) or rand(...) (floats, from --seed), "
                    "randint(0,10,(8,)) (int64 labels, as torch.randint), or @FILE.npy / @FILE.pt (a saved "
                    "tensor, loaded without pickles). Quote it in the shell: --at 'X=randn(8,1,28,28)'")
    ch.add_argument("--seed", type=int, default=0, help="the seed of the draws in --at (default 0): one "
                    "torch.Generator, drawn in the order --at names them")
    ch.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ch.add_argument("--markdown", action="store_true", help="print markdown instead of text")
    ch.add_argument("--json", action="store_true", help="print the comparison as JSON (Comparison.to_dict())")
    ch.add_argument("--allow", action="append", default=[], metavar="CAUSE",
                    help="a cause to accept (as assert_grad_matches_math's allow=); exit 1 for any other disagreement")
    return p


# Options that take a value: the token after one is that value, never an expression.
_VALUED: Final = frozenset({"--at", "--over", "--branches", "--dtype", "--plot", "-n", "--wrt", "--order", "--v",
                            "--allow", "--seed"})
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


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Exit status: 0 done (for compare and check: the gradients agree, or every
    cause is allowed), 1 the gradients disagree, 2 bad input (a sentence on stderr)."""
    args = _parser().parse_args(_protect_expressions(sys.argv[1:] if argv is None else list(argv)))
    try:
        # Measured import cost: the commands stand on torch and SymPy (about 1.1 s to import on a
        # quiet machine, 8 s on a loaded one); `--help` and argument errors, above, need neither.
        arguments.prepare(args)  # every value read and checked first: bad input needs no torch either
        from .commands import run

        return run(args)
    except SymgradError as err:
        print(f"symgrad: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`symgrad sweep ... | head`): end quietly. Python would otherwise
        # print an error when it flushes stdout at exit, so stdout goes to /dev/null from here.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
