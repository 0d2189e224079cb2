"""The public names of `symgrad`, for type checkers and editors: `__init__.py` imports each one on
first use (PEP 562), which a type checker cannot follow. tests/test_architecture.py keeps this
list equal to `__init__._PUBLIC`."""

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

__all__: list[str]
