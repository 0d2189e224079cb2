"""symgrad: the gradient a program executes, beside the derivative of its mathematics.

>>> import sympy as sp
>>> import symgrad as sg
>>> x = sp.Symbol("x")
>>> sg.compare(x * sg.detach(x**2), at={x: 3.0}).cause.id
'detach'

This module is the one public list. The package is layered, and the layers are its folders,
from the bottom up: `base`, `program`, `sides`, `frontends`, `verdict`, `tools`, `show`
(docs/architecture.md). `symgrad.testing` and `symgrad.pitfalls` are public modules of their own.
"""

from __future__ import annotations

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
from .show import data as _data  # noqa: F401 - registers the renderers (symgrad.base.rendering)
from .show import report as _report  # noqa: F401 - registers the renderers (symgrad.base.rendering)
from . import pitfalls as pitfalls  # noqa: E402 - the public modules stand on everything above
from . import testing as testing  # noqa: E402

__all__ = [
    "CalibrationError", "Cause", "Comparison", "Entry", "GradientMismatch", "LoopLimitError", "LoweredProgram", "OptionError", "ParseError",
    "PointError", "PrecisionError", "Program", "ProgramError", "ShapeError", "SymgradError", "TraceError", "UnboundSymbolError",
    "SourceSpan", "Sweep", "Traced", "UnsupportedNodeError", "compare", "detach", "item", "lower", "log_softmax", "logaddexp", "logsumexp", "no_grad",
    "sigmoid", "softmax", "softplus",
    "pitfalls", "sweep", "testing", "trace",
]
