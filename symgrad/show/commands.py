"""The commands of the `symgrad` command line (`cli.py` reads the arguments, then calls `run`):
the demos, compare, sweep, lower, supported and check, with their exit status."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp
import torch

from ..base.errors import OptionError, TraceError
from ..frontends.front import lower
from ..frontends.modules import is_module
from ..frontends.parse import parse
from ..program.primitives import detach, item
from ..program.program import number
from ..tools.sweep import sweep
from ..tools.testing import passes
from ..verdict.compare import compare
from .arguments import PLOT_PATH
from .arguments_data import Draw, Loaded
from .supported import supported_markdown


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
# The demos' builders, by the names `arguments.DEMO_NAMES` describes.
DEMOS: dict[str, Callable[[], str]] = {
    "relu": demo_relu,
    "detach": _single(x * detach(x**2), {x: 3.0}),
    "nan-trap": _single(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), {x: -1.0}, branches="where"),
    "overflow": _single(sp.log(sp.exp(x) + sp.exp(y)), {x: 1000.0, y: 0.0}),
    "rounding": _single((1 - sp.cos(x)) / x**2, {x: 1e-4}),
    "graph-break": _single(x * item(x), {x: 3.0}),
}


def _load_function(target: str) -> Any:
    """`path/to/file.py:NAME`: the file is run as a module (it is the user's own code) and NAME taken
    from it: a torch function, a `torch.nn.Module` instance, or a function (or class) of no
    arguments that returns one (`def make(): return Net()`), which is called once. A module is
    compared as `symgrad.compare` compares one: `--at` gives its forward's data by parameter
    name, and the entries are its trainable parameters."""
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
    if is_module(fn) or not _no_arguments(fn):
        return fn
    made = fn()  # a builder of the model: `def make(): return Net()`, or the class itself
    if not is_module(made):
        raise TraceError(f"`{name}` in {path} takes no arguments, and `{name}()` returned {type(made).__name__}, "
                         "not a torch.nn.Module: there is no input to differentiate.\nFix: name a function of "
                         "tensors (its inputs given by --at), a torch.nn.Module, or a function of no arguments "
                         "that returns one.")
    return made


def data_values(at: dict[str, Any], dtype: str, seed: int) -> dict[str, Any]:
    """`--at`'s values, each draw and file made a tensor (`arguments_data`): floating data in the
    run's dtype, integer labels as int64; the draws from one generator seeded by --seed, in the
    order --at names them. Numbers and nested lists are passed on as they are."""
    gen = torch.Generator().manual_seed(seed)
    floating = getattr(torch, dtype)
    out: dict[str, Any] = {}
    for name, v in at.items():
        if isinstance(v, Draw):
            if v.kind == "randint":
                out[name] = torch.randint(v.low, v.high, v.shape, generator=gen)
            else:
                out[name] = getattr(torch, v.kind)(*v.shape, generator=gen, dtype=floating)
        elif isinstance(v, Loaded):
            out[name] = _load_tensor(name, v.path, floating)
        else:
            out[name] = v
    return out


def _load_tensor(name: str, path: str, floating: torch.dtype) -> torch.Tensor:
    """A tensor saved by numpy.save or torch.save, loaded without running code (no pickles;
    torch.load with weights_only=True); floating data in the run's dtype, integers as they are."""
    why = None
    try:
        if path.endswith(".npy"):
            value: Any = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            value = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError, EOFError) as err:
        why = f"it could not be read ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no detail'})"
        value = None
    if why is None and not isinstance(value, torch.Tensor):
        why = f"it holds a {type(value).__name__}, not one tensor"
    if why is None and value.dtype == torch.bool or why is None and value.is_complex():
        why = f"it holds a {value.dtype} tensor; symgrad takes floating data and integer labels"
    if why is not None:
        raise OptionError(f"--at {name}=@{path}: {why}.\nFix: save one tensor, e.g. `torch.save(X, {path!r})` "
                          f"or `numpy.save({path!r}, X.numpy())`.")
    return value.to(floating) if value.is_floating_point() else value.to(torch.int64)


def _no_arguments(fn: Any) -> bool:
    """Whether `fn` takes no parameters at all (a function with defaults is a function of its
    inputs, which --at gives)."""
    try:
        return not inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _verdict(result: Any, allowed: frozenset[Any]) -> int:
    """The exit status of a comparison, as a checker in CI is expected to give: 0 when every entry
    agrees or its causes are allowed (as `assert_grad_matches_math`'s allow= decides), 1 otherwise."""
    return 0 if all(passes(e, allowed) for e in result.entries) else 1


def run(args: argparse.Namespace) -> int:
    """Carry out the command the arguments name; the exit status (0, or 1 where the gradients disagree)."""
    if args.command == "demo":
        print(DEMOS[args.name]())
    elif args.command == "compare":
        f = parse(args.expr)
        wrt = [w.strip() for w in args.wrt.split(",") if w.strip()] if args.wrt else None
        result = compare(f, at=args.at, branches=args.branches, dtype=args.dtype, wrt=wrt,
                         order=args.order, v=args.v)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
            return _verdict(result, args.allow)
        print(result.to_markdown() if args.markdown else result.report(full=args.full), end="")
        if args.steps:
            print()
            print(result.derivation(), end="")
        return _verdict(result, args.allow)
    elif args.command == "sweep":
        result = sweep(parse(args.expr), over=args.over, n=args.n, branches=args.branches,
                       dtype=args.dtype)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        else:
            print(result, end="")
        if args.plot:
            try:
                result.plot(args.plot)
            except OSError as err:
                raise OptionError(PLOT_PATH.format(path=args.plot, why=err.strerror or err)) from None
            print(f"plot written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    elif args.command == "lower":
        print(lower(parse(args.expr), branches=args.branches, dtype=args.dtype).source, end="")
    elif args.command == "check":
        fn = _load_function(args.target)
        result = compare(fn, at=data_values(args.at, args.dtype, args.seed), dtype=args.dtype)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
            return _verdict(result, args.allow)
        print(result.to_markdown() if args.markdown else result, end="")
        return _verdict(result, args.allow)
    elif args.command == "supported":
        print(supported_markdown(), end="")
    return 0


