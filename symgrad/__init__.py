"""symgrad: the gradient a program executes, beside the derivative of its mathematics.

>>> import sympy as sp
>>> import symgrad as sg
>>> x = sp.Symbol("x")
>>> sg.compare(x * sg.detach(x**2), at={x: 3.0}).cause.id
'detach'
"""

from __future__ import annotations

from .causes import Cause as Cause
from .compare import Comparison as Comparison
from .compare import Entry as Entry
from .compare import compare as compare
from .errors import CalibrationError as CalibrationError
from .errors import GradientMismatch as GradientMismatch
from .errors import LoopLimitError as LoopLimitError
from .errors import OptionError as OptionError
from .errors import ParseError as ParseError
from .errors import PointError as PointError
from .errors import PrecisionError as PrecisionError
from .errors import ProgramError as ProgramError
from .errors import ShapeError as ShapeError
from .errors import SymgradError as SymgradError
from .errors import TraceError as TraceError
from .errors import UnboundSymbolError as UnboundSymbolError
from .errors import UnsupportedNodeError as UnsupportedNodeError
from .lowering import LoweredProgram as LoweredProgram
from .lowering import lower as lower
from .primitives import detach as detach
from .primitives import item as item
from .primitives import log_softmax as log_softmax
from .primitives import logaddexp as logaddexp
from .primitives import logsumexp as logsumexp
from .primitives import no_grad as no_grad
from .primitives import sigmoid as sigmoid
from .primitives import softmax as softmax
from .primitives import softplus as softplus
from .program import Program as Program
from .sweep import Sweep as Sweep
from .sweep import sweep as sweep
from .source import SourceSpan as SourceSpan
from .trace import Traced as Traced
from .trace import trace as trace
from . import pitfalls as pitfalls  # noqa: E402 - they stand on everything above
from . import testing as testing  # noqa: E402

__all__ = [
    "CalibrationError", "Cause", "Comparison", "Entry", "GradientMismatch", "LoopLimitError", "LoweredProgram", "OptionError", "ParseError",
    "PointError", "PrecisionError", "Program", "ProgramError", "ShapeError", "SymgradError", "TraceError", "UnboundSymbolError",
    "SourceSpan", "Sweep", "Traced", "UnsupportedNodeError", "compare", "detach", "item", "lower", "log_softmax", "logaddexp", "logsumexp", "no_grad",
    "sigmoid", "softmax", "softplus",
    "pitfalls", "sweep", "testing", "trace",
]
