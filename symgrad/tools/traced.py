"""`trace()`: a torch function read back into mathematics, checked against itself, then compared.

    traced = sg.trace(f, 0.48828125)          # example values, one per parameter
    traced.program                            # the Program it was read as
    traced.compare()                          # the three derivatives, citing the user's lines

The reading itself (the source reader, the fidelity check, path mode) is the front end's
(`symgrad.frontends.trace`); a `Traced` is that `Reading` with the two things a user does next,
which stand on the verdict and on sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..base.errors import OptionError
from ..frontends.trace import Reading, read_function
from ..verdict.compare import compare_reading
from ..verdict.records import Comparison
from .sweep import Sweep, sweep


@dataclass(frozen=True)
class Traced(Reading):
    """A torch function read back into a `Program`, with its example point: `.program`, `.mode`
    ("source" or "path"), `.fidelity`, `.origins` (node -> the user's `SourceSpan`), `.point`."""

    def compare(self, **options: Any) -> Comparison:
        """`symgrad.compare` of the translated program at the traced example values; every entry
        carries the user's `SourceSpan` (`entry.source`). Options as for `symgrad.compare`, and
        `at=` (keyed by parameter name) for another point, where the fidelity check runs again.
        In path mode the recorded run is compared, and every explanation says so."""
        return compare_reading(self, **options)

    def sweep(self, over: Any, **options: Any) -> Sweep:
        """`symgrad.sweep` of the translated program (`over` keyed by parameter name)."""
        if self.mode == "path":
            raise OptionError(
                f"`{getattr(self.fn, '__name__', 'this function')}` was read in path mode (a recorded run, because "
                f"{self.reason}): that run is the path of one point, and other points of a sweep may take "
                "another path.\nFix: compare it point by point (`symgrad.compare(fn, at=...)` records each point's "
                "own run), or rewrite the function with the spellings of docs/supported.md so that its source is read."
            )
        options.pop("branches", None)
        return sweep(self.program, over, branches=self.branches, **options)


def trace(fn: Any, *args: Any, **kwargs: Any) -> Traced:
    """Read a torch function back into a `Program`, at example values.

    **Arguments:**

    - `fn`: a Python function of torch tensors (a `def`, a lambda, or one typed in a notebook).
    - `*args`, `**kwargs`: one example value per input parameter (numbers, lists, numpy arrays
      or tensors): a 0-d value becomes a real `Symbol`, an (n, m) one a `MatrixSymbol`, a rank-1
      one of length n an (n, 1) column.

    **Returns:** a `Traced`: `.program`, `.mode`, `.fidelity`, `.origins`, `.compare()`.
    Raises `TraceError`, with a sentence naming the user's line, when the source cannot be read
    or the translation does not reproduce the function bit for bit.
    """
    reading = read_function(fn, args, kwargs)
    return Traced(**{f.name: getattr(reading, f.name) for f in fields(reading)})
