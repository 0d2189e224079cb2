"""symgrad: the gradient a program executes, beside the derivative of its mathematics.

>>> import sympy as sp
>>> import symgrad as sg
>>> x = sp.Symbol("x")
>>> sg.compare(x * sg.detach(x**2), at={x: 3.0}).cause.id
'detach'

This module is the one public list. The package is layered, and the layers are its folders,
from the bottom up: `base`, `program`, `sides`, `frontends`, `verdict`, `tools`, `show`
(docs/architecture.md). `symgrad.testing` and `symgrad.pitfalls` are public modules of their own.

Each public name is imported when it is first used (PEP 562): `import symgrad` imports neither
torch nor SymPy, so the command line answers `symgrad --help` and argument errors at once
(measured: importing torch and SymPy takes about 1.1 s on a quiet machine, 8 s on a loaded one).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # the same list, for type checkers and editors (tests/test_architecture.py keeps them equal)
    from .base.causes import Cause as Cause
    from .base.errors import CalibrationError as CalibrationError
    from .base.errors import GradientMismatch as GradientMismatch
    from .base.errors import LoopLimitError as LoopLimitError
    from .base.errors import OptionError as OptionError
    from .base.errors import ParseError as ParseError
    from .base.errors import PointError as PointError
    from .base.errors import PrecisionError as PrecisionError
    from .base.errors import ProgramError as ProgramError
    from .base.errors import ShapeError as ShapeError
    from .base.errors import SymgradError as SymgradError
    from .base.errors import TraceError as TraceError
    from .base.errors import UnboundSymbolError as UnboundSymbolError
    from .base.errors import UnsupportedNodeError as UnsupportedNodeError
    from .frontends.front import lower as lower
    from .frontends.source import SourceSpan as SourceSpan
    from .program.elementwise import Elementwise as Elementwise
    from .program.elementwise import elementwise as elementwise
    from .program.primitives import detach as detach
    from .program.primitives import item as item
    from .program.primitives import log_softmax as log_softmax
    from .program.primitives import logaddexp as logaddexp
    from .program.primitives import logsumexp as logsumexp
    from .program.primitives import no_grad as no_grad
    from .program.primitives import sigmoid as sigmoid
    from .program.primitives import softmax as softmax
    from .program.primitives import softplus as softplus
    from .program.program import Program as Program
    from .sides.ir import LoweredProgram as LoweredProgram
    from .tools.sweep import Sweep as Sweep
    from .tools.sweep import sweep as sweep
    from .tools.traced import Traced as Traced
    from .tools.traced import trace as trace
    from .verdict.records import Comparison as Comparison
    from .verdict.records import Entry as Entry
    from .verdict.compare import compare as compare
    from . import pitfalls as pitfalls
    from . import testing as testing


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
