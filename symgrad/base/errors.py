"""Errors that teach: what happened, why, and how to fix it, in SymPy notation.

Every error symgrad raises for bad input is a `SymgradError`, and also the builtin
exception a Python user would expect (`TypeError` for the wrong kind of thing,
`ValueError` for a wrong value). Each message has three parts: the first line names
the node or symbol and what is wrong; then why, defining any term; then the fix.
It ends with a link to the error's section in `docs/errors.md`.

Message texts live here as `Final` constants, so they are written once and tested once.
"""

from __future__ import annotations

from typing import Final

DOCS_ERRORS: Final = "docs/errors.md"


def _link(cls_name: str) -> str:
    return f"See {DOCS_ERRORS}#{cls_name.lower()}"


class SymgradError(Exception):
    """Base class of every error symgrad raises for bad input."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}\n{_link(type(self).__name__)}")


class UnsupportedNodeError(SymgradError, TypeError):
    """A SymPy node has no row in the lowering table, so it cannot be lowered to torch."""


class UnboundSymbolError(SymgradError, ValueError):
    """A free symbol of the function has no value at the point."""


class PointError(SymgradError, ValueError):
    """A value given at the point is not a finite real number (NaN, inf, a string ...)."""


class ShapeError(SymgradError, ValueError):
    """A value's shape differs from the shape its symbol was declared with."""


class ProgramError(SymgradError, ValueError):
    """A `Program` is malformed: an output never assigned, an assignment to an input ..."""


class LoopLimitError(SymgradError, RuntimeError):
    """A loop ran past `max_iterations` without its condition becoming false."""


class OptionError(SymgradError, ValueError):
    """A keyword argument has a value symgrad does not know (`branches="iff"`)."""


class PrecisionError(SymgradError, ArithmeticError):
    """The exact sides would need more working precision than symgrad allows (an unstable
    recurrence run for very many steps, or a magnitude far beyond any dtype)."""


class ParseError(SymgradError, ValueError):
    """A command-line expression could not be read as a SymPy expression."""


class TraceError(SymgradError, TypeError):
    """A torch function could not be read back into a Program: its source is unreadable, or a
    line holds a construct outside what `trace` reads (the message names that line), or the
    translation did not reproduce the function's own value and gradient."""


class GradientMismatch(SymgradError, AssertionError):
    """`symgrad.testing.assert_grad_matches_math` found a disagreement whose cause `allow=` does
    not accept. It is an `AssertionError`, so a test fails rather than errors; `.comparison`
    holds the `Comparison` it found."""

    def __init__(self, message: str, comparison: object = None) -> None:
        super().__init__(message)
        self.comparison = comparison


class CalibrationError(SymgradError, ValueError):
    """The probabilities or labels given to `symgrad.pitfalls.calibration` are not a
    classifier's output: rows that do not sum to 1, labels outside the classes, shapes that do
    not match."""


UNSUPPORTED: Final = (
    "{node} has no torch lowering: symgrad's lowering table has no row for {cls}{where}.\n"
    "symgrad only lowers nodes whose torch spelling and derivative conventions it knows, "
    "so that the three derivatives it compares are about the same program.\n"
    "Fix: {fix}"
)
UNSUPPORTED_FIX_DEFAULT: Final = (
    "rewrite the expression with supported functions (`symgrad supported` or "
    "docs/supported.md lists them), or add a row for {cls} to symgrad/program/rules.py "
    "(docs/how-to-add-a-rule.md)."
)
UNBOUND: Final = (
    "{symbol} has no value at the point: the function reads it, but `at` gives {given}.\n"
    "Every free symbol needs a value, because all three derivatives are evaluated at one point.\n"
    "Fix: add it, e.g. `at={{{symbol}: 0.5, ...}}`."
)
POINT_NOT_NUMBER: Final = (
    "The value given for {symbol} is {value!r}, which is not a real number.\n"
    "A point is the exact binary value a tensor holds, so it must be an int, a float, a "
    "SymPy number, or a 0-d tensor/array.\n"
    "Fix: give a number, e.g. `at={{{symbol}: 0.5}}`."
)
POINT_TOO_LARGE: Final = (
    "The value given for {symbol} is too large for a float (it has {digits} digits).\n"
    "A point is the binary value a tensor holds, and float64 stops near 1.8e308.\n"
    "Fix: give a value a tensor can hold, e.g. 1e300."
)
POINT_NOT_FINITE: Final = (
    "The value given for {symbol} is {value}, which is not a finite number.\n"
    "Derivatives are compared at a point of the real line; NaN and infinity are not on it.\n"
    "Fix: give a finite value (to study large inputs, use a large finite one such as 1e300)."
)
LOOP_LIMIT: Final = (
    "The loop `{node}` (line {line}) ran {count} times without its condition becoming false; "
    "the limit is max_iterations={limit}.\n"
    "Its condition {cond} was still true, with {state}. {why}\n"
    "Fix: start from a point where the loop ends, change the condition, or raise "
    "max_iterations if the loop really needs more steps."
)
FOR_LIMIT: Final = (
    "The loop `{node}` (line {line}) would run {count} times; the limit is max_iterations={limit}.\n"
    "{why} symgrad unrolls every iteration on the executed path, so it stops before a loop that long.\n"
    "Fix: use a smaller range, or raise max_iterations if the loop really needs more steps."
)
SHAPE: Final = (
    "{symbol} was declared with shape {declared}, but the value given has shape {given}.\n"
    "A MatrixSymbol's value must have exactly its declared shape: the program's matrix products "
    "are only the mathematics' products for those shapes.\n"
    "Fix: pass a value of shape {declared} (nested lists, a numpy array or a tensor)."
)
RANK_ONE: Final = (
    "{symbol} was declared with shape {declared}, a column, but the value given has shape {given}: "
    "a rank-1 tensor.\n"
    "torch broadcasts a rank-1 tensor against an (n, 1) column, so a residual such as X*w - y "
    "would silently become an (n, n) matrix and the loss a different function (the pitfall D2L "
    "warns about in linear regression); symgrad refuses it rather than compare that function.\n"
    "Fix: pass a column: `value.reshape(-1, 1)` (for a tensor or numpy array) or [[a], [b], ...]."
)
OPTION: Final = "{name}={value!r} is not one of {allowed}.\nFix: pass one of {allowed}."
ORDER: Final = ("order={value!r}: symgrad compares first derivatives (order=1); Hessians (order=2) are "
                "not supported yet.\nFix: pass order=1, or compare the gradient's entries one by one.")
RTOL: Final = ("rtol={value!r} must be a positive number: it is the relative tolerance between the "
               "executed and autograd derivatives.\nFix: pass e.g. rtol=1e-6, or leave it out for the "
               "dtype's default.")
PRECISION: Final = (
    "The exact values cannot be certified within symgrad's working precision: at {bits} bits "
    "the program's balls lost {lost} bits, so certifying the {target} bits symgrad reports would "
    "take {needed} bits, past the limit of 40000.\n"
    "Each step of an unstable recurrence (b = 2*b + sin(b)) doubles the error of the step "
    "before, so the digits needed grow with the number of steps; a value that grows like "
    "exp(exp(x)) needs as many bits as its exponent has.\n"
    "Fix: run fewer iterations, or compare at a point where the program is better conditioned "
    "(smaller magnitudes)."
)


# Tracebacks and pytest name each error by its public path (`symgrad.ShapeError`, as users catch
# it), not by the folder that defines it.
for _cls in (SymgradError, UnsupportedNodeError, UnboundSymbolError, PointError, ShapeError, ProgramError, LoopLimitError,
             OptionError, PrecisionError, ParseError, TraceError, GradientMismatch, CalibrationError):
    _cls.__module__ = "symgrad"
del _cls
