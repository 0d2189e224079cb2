"""How every benchmark row is measured and reported: one function, `interleave`, and one table.

`interleave` runs symgrad's call and its peer's in turn, A B A B ..., a given odd number of
rounds, and a row reports the median of the per-round ratios A/B (with the two medians beside it),
never two medians measured one after the other: a burst of load from another process then
lands on both sides of a round instead of on one side of the row. Each call is prepared by a
factory that gets a fresh index (a new point for a warm row; clearing the caches and building
the input for a cold one); only the call the factory returns is timed.

`Table` prints each row as it is measured, with the 1-minute load average (os.getloadavg)
before and after it, and marks a row whose load was above `LOAD_LIMIT` "rerun (load X)" instead
of met or missed: on a busy machine the measurement says little about symgrad. `busy_core`
makes contention of our own (the `--contended` rows): a process spinning one core beside the row.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

LOAD_LIMIT = 1.5  # 1-minute load average above which a row's verdict is "rerun"
BUSY_LOAD = 1.0  # what our own spinning process adds to the load in a contended row

Call = Callable[[], object]
Factory = Callable[[int], Call]  # index -> the call to time (the factory's own work is not timed)

_INDEX = itertools.count(1)


def clock(call: Call) -> float:
    """Seconds the call takes (perf_counter)."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def reported(call: Call) -> float:
    """The number the call returns (a peak memory measured in a subprocess, say)."""
    value = call()
    assert isinstance(value, (int, float)), value
    return float(value)


@dataclass(frozen=True)
class Paired:
    """What `interleave` measured: times[side][round], and the load around it."""

    times: tuple[tuple[float, ...], ...]
    load_before: float
    load_after: float

    @property
    def rounds(self) -> int:
        return len(self.times[0])

    def median(self, side: int = 0) -> float:
        return statistics.median(self.times[side])

    def ratios(self, peer: int = 1, of: int = 0) -> list[float]:
        """Per round: side `of` over side `peer`, measured next to each other."""
        return [a / b for a, b in zip(self.times[of], self.times[peer])]

    def ratio(self, peer: int = 1, of: int = 0) -> float:
        """Median of the per-round ratios (rounds are odd, so it is one round's own ratio)."""
        return statistics.median(self.ratios(peer, of))

    def difference(self, peer: int = 1, of: int = 0) -> float:
        """Median of the per-round differences, side `of` minus side `peer`."""
        return statistics.median(a - b for a, b in zip(self.times[of], self.times[peer]))


def interleave(sides: Sequence[Factory], rounds: int, *, warmup: int = 0,
               meter: Callable[[Call], float] = clock) -> Paired:
    """Measure sides[0] (symgrad), sides[1] (its peer), ... in turn, `rounds` times: A B A B ...

    Every call of every side, warm-up included, gets its own index from one counter for the whole
    run, so that a warm row can time a new point each call (no point is asked twice, by either
    side, in any row). `warmup` rounds run first and are not recorded. A garbage collection
    runs before each timed call. `rounds` must be odd, so that the median ratio is a measured
    round's ratio.
    """
    if rounds < 1 or rounds % 2 == 0:
        raise ValueError(f"rounds must be odd and positive, got {rounds}")
    load_before = os.getloadavg()[0]
    for _ in range(warmup):
        for side in sides:
            side(next(_INDEX))()
    times: list[list[float]] = [[] for _ in sides]
    for _ in range(rounds):
        for k, side in enumerate(sides):
            call = side(next(_INDEX))
            gc.collect()
            times[k].append(meter(call))
    return Paired(tuple(tuple(t) for t in times), load_before, os.getloadavg()[0])


def seconds(t: float) -> str:
    """A duration as a reader wants it: 12.3 µs, 4.56 ms, 1.23 s."""
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms" if t < 0.1 else f"{t * 1e3:.0f} ms"
    return f"{t:.2f} s"


# A process that spins one core: counts in pure Python until its deadline, or until the process that
# started it is gone, so that it never outlives the run.
SPIN = """
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
parent = int(sys.argv[2])
n = 0
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(100_000):
        n += 1
"""


@contextlib.contextmanager
def busy_core(timeout: float = 900.0) -> Iterator[None]:
    """Run the block beside a process of our own that spins one core (pure Python), started
    before the block and stopped after it; it stops by itself after `timeout` seconds or when
    this process ends."""
    spinner = subprocess.Popen([sys.executable, "-c", SPIN, str(timeout), str(os.getpid())])
    try:
        time.sleep(0.2)  # let it start spinning before the row starts
        yield
    finally:
        spinner.terminate()
        try:
            spinner.wait(timeout=5)
        except subprocess.TimeoutExpired:
            spinner.kill()
            spinner.wait()


@dataclass(frozen=True)
class Row:
    what: str
    state: str  # "warm", "cold", or "" where neither applies
    ours: str
    peer: str
    ratio: str
    target: str
    ok: bool | None  # None: context, no target
    load: tuple[float, float]
    limit: float
    detail: str = ""

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "context"
        worst = max(self.load)
        if worst > self.limit:
            return f"rerun (load {worst:.2f}; as measured: {'met' if self.ok else 'missed'})"
        return "met" if self.ok else "missed"


@dataclass
class Table:
    """The rows of one run, printed as they come and summarised at the end."""

    contended: bool = False
    rows: list[Row] = field(default_factory=list)

    @property
    def limit(self) -> float:
        return LOAD_LIMIT + (BUSY_LOAD if self.contended else 0.0)

    def contention(self) -> contextlib.AbstractContextManager[None]:
        """Around a sweep or check row: our own busy process in --contended mode, else nothing."""
        return busy_core() if self.contended else contextlib.nullcontext()

    def add(self, what: str, state: str, measured: Paired | Sequence[Paired], *, target: str, ok: bool | None,
            ratio: float | None = None, ours: str | None = None, peer: str | None = None, detail: str = "") -> Row:
        """One row. By default symgrad's column is the median of side 0, the peer's that of side 1,
        and the ratio the median of the per-round ratios of side 0 over side 1."""
        runs = [measured] if isinstance(measured, Paired) else list(measured)
        first = runs[0]
        two = len(first.times) > 1
        if ratio is None and two:
            ratio = first.ratio()
        ours = ours if ours is not None else seconds(first.median(0))
        peer = peer if peer is not None else seconds(first.median(1)) if two else "—"
        rounds = "+".join(str(p.rounds) for p in runs)
        unit = ("pair" if two else "run") + ("" if rounds == "1" else "s")
        label = f"{what} [{state + ', ' if state else ''}{rounds} {unit}]"
        row = Row(label, state, ours, peer, "n/a" if ratio is None else f"{ratio:.3g}", target, ok,
                  (runs[0].load_before, runs[-1].load_after), self.limit, detail)
        self.rows.append(row)
        print(f"{row.verdict.upper() if row.ok is not None else 'CONTEXT'}: {row.what}\n"
              f"    symgrad {row.ours}; peer {row.peer}; median ratio {row.ratio} (target {row.target}); "
              f"load {row.load[0]:.2f} -> {row.load[1]:.2f}" + (f"\n    {detail}" if detail else ""), flush=True)
        return row

    def summary(self) -> str:
        lines = ["| row | symgrad | peer | median ratio | target | load before/after | verdict |",
                 "|---|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {r.what} | {r.ours} | {r.peer} | {r.ratio} | {r.target} | "
                         f"{r.load[0]:.2f} / {r.load[1]:.2f} | {r.verdict} |")
        return "\n".join(lines)
