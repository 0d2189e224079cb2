"""The front door: whatever a user passes as `f`, turned into what the layers below take.

A SymPy expression or a `Program` passes as it is; a string (the command line's language) is read
by the safe parser (`parse`), never by `sympify`'s `eval`; a Python function of tensors is told
apart here and read by `trace`.
"""

from __future__ import annotations

import inspect
import types
import weakref
from typing import Any

import sympy as sp

from ..sides import lowering
from ..sides.ir import Branches, LoweredProgram
from .parse import parse


def expression(f: Any) -> Any:
    """`f` as SymPy: a string read by the safe parser; anything else as it is (the layers below
    say what they cannot take)."""
    return parse(f) if isinstance(f, str) else f


def lower(f: Any, *, branches: Branches = "if", dtype: str = "float64") -> LoweredProgram:
    """Lower an expression or `Program` to a readable torch program.

    **Arguments:**

    - `f`: a SymPy expression, a `symgrad.Program`, or a string in SymPy notation.
    - `branches`: `"if"` lowers a Piecewise to Python `if`/`else` (only the taken branch runs);
      `"where"` lowers it to `torch.where` (every branch runs).
    - `dtype`: `"float64"` or `"float32"`; recorded in the header.

    **Returns:** a `LoweredProgram`.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> print(lower(sp.sin(x) ** 2).source.splitlines()[-1])
        return out
    """
    return lowering.lower(expression(f), branches=branches, dtype=dtype)


def is_torch_function(f: Any) -> bool:
    """Whether `f` is a Python function (or something wrapping one) rather than SymPy input."""
    if isinstance(f, types.FunctionType) and "__wrapped__" not in f.__dict__:
        return True  # a plain `def` or lambda (what unwrapping it would find)
    if isinstance(f, (sp.Basic, str, type)):
        return False
    if callable(f) and hasattr(f, "forward") and hasattr(f, "named_parameters"):
        return True  # a torch.nn.Module: read by `trace` as the function of its parameters (`modules.py`)
    f = inspect.unwrap(f) if callable(f) else f
    return inspect.isfunction(f) or inspect.ismethod(f)


def signature(fn: Any) -> inspect.Signature:
    """`inspect.signature(fn)`, worked out once per plain function while its code and defaults are
    the ones it was worked out from (a check run hundreds of times binds the same function each
    time; the signature is 15% of a small check). Anything else is asked afresh."""
    return signature_of(fn)[0]


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def signature_of(fn: Any) -> tuple[inspect.Signature, tuple[str, ...] | None]:
    """`signature(fn)`, and its parameters' names where every one is positional (no *args,
    **kwargs or keyword-only parameter), in order (None otherwise), remembered with it."""
    if not inspect.isfunction(fn) or hasattr(fn, "__signature__") or hasattr(fn, "__wrapped__"):
        return _with_names(inspect.signature(fn))
    code, defaults, kwdefaults, annotations = fn.__code__, fn.__defaults__, fn.__kwdefaults__, \
        getattr(fn, "__annotations__", None)
    known = _SIGNATURES.get(fn)
    if known is not None:
        state = known[0]
        if state[0] is code and state[1] is defaults and state[2] is kwdefaults and state[3] is annotations:
            return known[1]
    found = _with_names(inspect.signature(fn))
    _SIGNATURES[fn] = ((code, defaults, kwdefaults, annotations), found)
    return found


def _with_names(sig: inspect.Signature) -> tuple[inspect.Signature, tuple[str, ...] | None]:
    params = tuple(sig.parameters.values())
    return sig, tuple(p.name for p in params) if all(p.kind in _POSITIONAL for p in params) else None


_SIGNATURES: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], tuple[inspect.Signature, tuple[str, ...] | None]]] = \
    weakref.WeakKeyDictionary()
