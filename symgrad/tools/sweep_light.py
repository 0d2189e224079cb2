"""The exact checks of a sweep's flagged points that are not the first of their run, without a
report (`symgrad.tools.sweep` stands on it).

A sweep shows, of each flagged point compared exactly, its cause and its exact executed
derivative; of the comparisons themselves it keeps only the worst one per cause and cited line
(`sweep._worst`), and in a run of neighbouring flagged points with one signature the run's first
compared point, compared in full by compare(), is that one. The other points of the run need only
what the sweep reads of them, decided by compare()'s own rules without building its report:

- a run of cancelling points (autograd finite, on no threshold): `rounding_only` (agree or
  rounding, the exact executed derivative), or compare() where that is not the only question;
- a run where autograd is not finite (a NaN trap, an overflow; on no threshold): `cause_only`,
  compare()'s exact sides and findings without its entries, explanations, hints or autograd
  run. Its answer is taken where it agrees, or where it names the cause, line and node of the
  run's first point's comparison: at such a point every comparison's float error is infinite, so
  the first point, compared earlier, is the one `_worst` keeps for that cause and line, and the
  sweep's every field is what compare() at each point would have made it. Otherwise (a cause or
  line of its own, or a first point not compared), compare() decides the point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..sides.ir import LoweredProgram
from ..verdict.compare import cause_only, rounding_only
from ..verdict.records import Comparison
from .sweep_runs import CODE, Runs


def worst_key(c: Comparison) -> tuple[str, int | None, Any] | None:
    """What `sweep._worst` keeps a comparison under: its cause, and the line and node of its
    first entry that does not agree; None for a comparison that agrees."""
    if c.ok:
        return None
    e = next(x for x in c.entries if not x.ok)
    return (c.cause.id, e.line, e.node)


class Light:
    """The light checks of one sweep (its program, options, runs, and the comparisons made)."""

    def __init__(self, lowered: LoweredProgram, wrt: Sequence[int], dtype: str, rtol: float, max_iterations: int,
                 runs: Runs, exact: Mapping[int, Comparison]) -> None:
        self.lowered, self.wrt, self.dtype, self.rtol, self.max_iterations = lowered, list(wrt), dtype, rtol, max_iterations
        self.runs, self.exact = runs, exact
        self.first: dict[int, int] = {}  # run -> its first point compared in full

    def firsts(self, chosen: np.ndarray) -> np.ndarray:
        """Which of the chosen points (sorted) are the first of their run; remembered per run."""
        runs_of = self.runs.run_of(chosen)
        first = np.concatenate(([True], runs_of[1:] != runs_of[:-1])) if len(chosen) else np.zeros(0, dtype=bool)
        for r, i in zip(runs_of[first].tolist(), chosen[first].tolist()):
            self.first[r] = i
        return first

    def decide(self, i: int, point: list[float], auto: list[float]) -> tuple[int, list[float]] | None:
        """(cause code, exact executed derivatives) of flagged point i, as compare() would make
        them; None where compare() must decide it."""
        sig = int(self.runs.signature(np.array([i]))[0])
        if sig == 1:  # cancelling: autograd finite, no tie
            quick = rounding_only(self.lowered, point, self.wrt, auto, self.dtype, self.rtol, self.max_iterations)
            return None if quick is None else (CODE[quick[0]], quick[1])
        if sig != 0:  # on a threshold: compare() decides
            return None
        ref = self.exact.get(self.first.get(int(self.runs.run_of(np.array([i]))[0]), -1))
        if ref is None:
            return None
        got = cause_only(self.lowered, point, self.wrt, auto, self.dtype, self.rtol, self.max_iterations)
        if got is None:
            return None
        cause, values, first = got
        if cause == "agree" or (first is not None and (cause, *first) == worst_key(ref)):
            return CODE[cause], values
        return None
