"""symgrad: the gradient a program executes, beside the derivative of its mathematics.

>>> import sympy as sp
>>> import symgrad as sg
>>> x = sp.Symbol("x")
>>> sg.compare(x * sg.detach(x**2), at={x: 3.0}).cause.id
'detach'

This module is the one public list. The package is layered, and the layers are its folders,
from the bottom up: `base`, `program`, `sides`, `frontends`, `verdict`, `tools`, `show`
(docs/architecture.md). `symgrad.testing` and `symgrad.pitfalls` are public modules of their own.

Each public name is imported when it is first used (PEP 562; `__init__.pyi` lists them for type
checkers): `import symgrad` imports neither
torch nor SymPy, so the command line answers `symgrad --help` and argument errors at once
(measured: importing torch and SymPy takes about 1.1 s on a quiet machine, 8 s on a loaded one).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it (relative to this package)
_PUBLIC: dict[str, str] = {
    "Cause": ".base.causes",
    "CalibrationError": ".base.errors",
    "GradientMismatch": ".base.errors",
    "LoopLimitError": ".base.errors",
    "OptionError": ".base.errors",
    "ParseError": ".base.errors",
    "PointError": ".base.errors",
    "PrecisionError": ".base.errors",
    "ProgramError": ".base.errors",
    "ShapeError": ".base.errors",
    "SymgradError": ".base.errors",
    "TraceError": ".base.errors",
    "UnboundSymbolError": ".base.errors",
    "UnsupportedNodeError": ".base.errors",
    "lower": ".frontends.front",
    "SourceSpan": ".frontends.source",
    "Elementwise": ".program.elementwise",
    "elementwise": ".program.elementwise",
    "detach": ".program.primitives",
    "item": ".program.primitives",
    "log_softmax": ".program.primitives",
    "logaddexp": ".program.primitives",
    "logsumexp": ".program.primitives",
    "no_grad": ".program.primitives",
    "sigmoid": ".program.primitives",
    "softmax": ".program.primitives",
    "softplus": ".program.primitives",
    "Program": ".program.program",
    "LoweredProgram": ".sides.ir",
    "Sweep": ".tools.sweep",
    "sweep": ".tools.sweep",
    "Traced": ".tools.traced",
    "trace": ".tools.traced",
    "Comparison": ".verdict.records",
    "Entry": ".verdict.records",
    "compare": ".verdict.compare",
    "pitfalls": ".pitfalls",
    "testing": ".testing",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    try:
        where = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'symgrad' has no attribute {name!r}") from None
    module = importlib.import_module(where, __name__)
    value = module if where == f".{name}" else getattr(module, name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
