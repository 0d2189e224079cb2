"""A sweep's points as states, and its flagged points as runs (`symgrad.tools.sweep` stands on it).

After the batch run, each point is summed up in one int8 (`sides.batch_keys.flag_key`): its loop
passed max_iterations, nothing flagged it, or it is flagged, with its signature (on a threshold or
not, autograd finite or not). A run is a stretch of neighbouring flagged points with
one signature, held as its first point and its length: a run of half a million flagged points is
two numbers, and finding, choosing and filling runs costs array operations over the runs, not over
the points (`Runs`). The exact executed derivative a sweep shows is built from the same runs
(`Executed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

import numpy as np

from ..base.causes import Cause
from ..sides.batch_keys import QUIET

# Per-point causes are kept as small integer codes (a million strings would cost more than the sweep).
IDS: tuple[str, ...] = (*(c.id for c in Cause), "skipped")
CODE = {cause_id: k for k, cause_id in enumerate(IDS)}
AGREE, SKIPPED = CODE["agree"], CODE["skipped"]

# A point flagged by a later check than the batch run's (the float symbolic derivative disagrees,
# a tensor sweep's exact sample): not on a tie and autograd finite, or the batch would have flagged it.
LATE_FLAG: Final = 1 + 1


def flag_more(key: np.ndarray, more: np.ndarray) -> None:
    """Flag the QUIET points where `more` holds (in place): not on a tie, autograd finite."""
    key[(key == QUIET) & more] = LATE_FLAG


def ranges(first: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The points first[r], ..., first[r] + lengths[r] - 1 of every r, in order, in one array."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(lengths) - lengths  # where each run starts in the output
    return np.arange(total, dtype=np.int64) - np.repeat(before - first, lengths)


class Runs:
    """Neighbouring flagged points with the same signature (on a threshold or not, autograd
    finite or not): one run each, held as its first point, its length and its signature."""

    def __init__(self, key: np.ndarray) -> None:
        n = len(key)
        starts = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1)).astype(np.int64) if n else \
            np.zeros(0, dtype=np.int64)
        ends = np.append(starts[1:], n)
        keep = key[starts] > QUIET
        self.first = starts[keep]
        self.lengths = (ends - starts)[keep]
        self.sig = (key[self.first] - 1).astype(np.int8)  # 2*tie + finite, per run
        self.count = int(self.lengths.sum())  # flagged points
        self.skipped: set[int] = set()  # flagged points whose exact comparison passed max_iterations

    def __len__(self) -> int:
        return len(self.first)

    def run(self, r: int) -> np.ndarray:
        return np.arange(self.first[r], self.first[r] + self.lengths[r], dtype=np.int64)

    def run_of(self, points: np.ndarray) -> np.ndarray:
        """The run of each of these points (each a flagged point)."""
        return np.searchsorted(self.first, points, side="right") - 1

    def signature(self, points: np.ndarray) -> np.ndarray:
        """2*tie + finite of each of these flagged points: its run's."""
        return self.sig[self.run_of(points)]

    def points_of(self, runs: np.ndarray) -> np.ndarray:
        """The flagged points of these runs, in order."""
        return ranges(self.first[runs], self.lengths[runs])

    def flagged(self) -> np.ndarray:
        """Every flagged point, in order."""
        return ranges(self.first, self.lengths)

    def holds(self, i: int) -> bool:
        """Whether point i is flagged."""
        r = int(np.searchsorted(self.first, i, side="right")) - 1
        return r >= 0 and i < self.first[r] + self.lengths[r]

    def choose(self, err: np.ndarray | None, limit: int, per_run: int) -> np.ndarray:
        """The flagged points to compare exactly first: every point of a short run; of a longer
        one its ends, its worst point and an even spread (`per_run` in all); within `limit`,
        the worst first. `err` is per point; None where it is only whether autograd is finite,
        the same for every point of a run (its first point is then its worst)."""
        if not len(self.first):
            return np.zeros(0, dtype=np.int64)
        short = self.lengths <= per_run
        picks = [self.points_of(np.flatnonzero(short))] if short.any() else []
        for r in np.flatnonzero(~short):
            lo, m = int(self.first[r]), int(self.lengths[r])
            spread = lo + np.linspace(0, m - 1, per_run - 1).astype(np.int64)
            worst = lo if err is None else lo + int(np.argmax(err[lo:lo + m]))
            picks.append(np.append(spread, worst))
        chosen = np.unique(np.concatenate(picks))
        if len(chosen) > limit:
            bad = np.where(self.signature(chosen) & 1, 0.0, np.inf) if err is None else err[chosen]
            worst = chosen[np.argsort(-bad, kind="stable")[: limit // 2]]
            rest = np.setdiff1d(chosen, worst)
            spread = rest[np.linspace(0, len(rest) - 1, limit - len(worst)).astype(int)] if len(rest) else rest
            chosen = np.union1d(worst, spread)
        return chosen

    def compared(self, decided: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """The exactly compared flagged points (sorted) and their runs."""
        done = np.array(sorted(decided), dtype=np.int64)
        if not len(self.first):  # (points compared exactly, none flagged: a tensor sweep's exact sample)
            return done[:0], done[:0]
        r = self.run_of(done)
        at = np.maximum(r, 0)
        inside = (r >= 0) & (done < self.first[at] + self.lengths[at])
        return done[inside], r[inside]

    def refine(self, codes: np.ndarray, decided: set[int], exactly: Callable[..., None], limit: int,
               light: bool = False) -> None:
        """Compare more points of the runs whose compared points disagree (rounding that comes
        and goes): point by point where the rest of the run fits in `limit`, otherwise by
        bisection between compared neighbours that disagree, to find where the cause changes
        (log2 of the run's length comparisons per change), within `limit`. With `light`, a run
        of cancelling points (autograd finite, no tie) whose compared points all agree or round
        is decided by `rounding_only`."""
        done, runs = self.compared(decided)
        if not len(done):
            return
        quiet = {AGREE, CODE["rounding"]}
        for r in np.unique(runs):
            mine = done[runs == r]
            seen = set(codes[mine].tolist())
            if len(seen) < 2:
                continue
            room = limit - len(decided)
            if room <= 0:
                return
            points = self.run(r)
            cheap = light and seen <= quiet and int(self.sig[r]) == 1
            todo = points[~np.isin(points, mine)]
            if len(todo) <= room:
                exactly(todo.tolist(), cheap)
                continue
            gaps = [(int(a), int(b)) for a, b in zip(mine[:-1], mine[1:]) if codes[a] != codes[b] and b - a > 1]
            while gaps and len(decided) < limit:
                a, b = gaps.pop()
                mid = (a + b) // 2
                exactly([mid], cheap)
                if mid not in decided:  # skipped (its loop ran too long): stop bisecting this gap
                    continue
                gaps += [(p, q) for p, q in ((a, mid), (mid, b)) if codes[p] != codes[q] and q - p > 1]

    def infer(self, codes: np.ndarray, decided: Iterable[int]) -> int:
        """Give each flagged point not compared exactly the cause of the nearest compared point
        of its run (of its signature, for a run with none compared). `codes` is updated in
        place; returns how many points were inferred. A run is a range of consecutive points,
        so each stretch between two compared points is filled as two slices."""
        if not self.count:
            return 0
        done, done_runs = self.compared(decided)
        skipped = np.array(sorted(self.skipped), dtype=np.int64)  # a loop ran too long: no cause
        inferred = self.count - len(done) - len(skipped)
        if not len(done):
            codes[self.flagged()] = AGREE
            codes[skipped] = SKIPPED
            return inferred
        has = np.zeros(len(self.first), dtype=bool)
        has[done_runs] = True
        bounds = np.flatnonzero(np.diff(done_runs)) + 1
        for mine, r in zip(np.split(done, bounds), done_runs[np.concatenate(([0], bounds))]):
            first = int(self.first[r])
            last = first + int(self.lengths[r]) - 1
            keep = codes[mine].copy()
            codes[first:mine[0]] = keep[0]
            for a, b, ca, cb in zip(mine[:-1], mine[1:], keep[:-1], keep[1:]):
                mid = (int(a) + int(b)) // 2  # equally near both: the left one's cause
                codes[a + 1:mid + 1] = ca
                codes[mid + 1:b] = cb
            codes[mine[-1] + 1:last + 1] = keep[-1]
        # Runs without a compared point (max_exact was reached): the nearest of the same signature.
        lone_runs = np.flatnonzero(~has)
        if len(lone_runs):
            lone = self.points_of(lone_runs)
            lone_sig, done_sig = np.repeat(self.sig[lone_runs], self.lengths[lone_runs]), self.sig[done_runs]
            for sig in np.unique(lone_sig):
                mine = lone[lone_sig == sig]
                pool = done[done_sig == sig]
                codes[mine] = codes[nearest(pool if len(pool) else done, mine)]
        codes[skipped] = SKIPPED
        return inferred


def nearest(pool: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each of `points` (indices), the nearest index in the sorted array `pool`."""
    right = np.clip(np.searchsorted(pool, points), 0, len(pool) - 1)
    left = np.clip(right - 1, 0, len(pool) - 1)
    take_left = np.abs(points - pool[left]) <= np.abs(pool[right] - points)
    return np.where(take_left, pool[left], pool[right])


class Executed:
    """The exact executed derivative of a sweep as floats: autograd's value where the float
    comparison agreed, the exact value at the points compared exactly, NaN at the flagged points
    whose cause was inferred. Built on first use; until then the sweep keeps only its exact rows."""

    def __init__(self, auto: np.ndarray, runs: Runs) -> None:
        self.auto, self.runs = auto, runs
        self.known: dict[int, Any] = {}
        self._values: np.ndarray | None = None

    @property
    def flagged(self) -> np.ndarray:
        """The flagged points, sorted."""
        return self.runs.flagged()

    def __setitem__(self, i: int, row: Any) -> None:
        self.known[i] = row
        self._values = None

    def __getitem__(self, i: int) -> np.ndarray:
        if i in self.known:
            return np.asarray(self.known[i], dtype=np.float64)
        return np.full(self.auto.shape[1], math.nan) if self.runs.holds(i) else self.auto[i]

    def values(self) -> np.ndarray:
        if self._values is None:
            out = self.auto.copy()
            out[self.runs.flagged()] = math.nan
            for i, row in self.known.items():
                out[i] = row
            self._values = out
        return self._values
