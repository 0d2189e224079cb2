"""A comparison's entries held as arrays: `Comparison.entries` built on demand.

A comparison of a model has 10^5 entries, nearly all of which plainly agree. `compare` decides
those in one pass (`compare.plainly_agrees`: the same rule `_entry` applies, without its
findings machinery) and runs the per-entry findings only on the others. The table keeps, in entry
order: a cause code per entry, the float arrays of the executed and autograd values, the exact
values of the plainly agreeing entries (the engine's own numbers, written in SymPy when an entry
is read), and the `Entry` records of the others as `_entry` made them. An agreeing entry is an
`Entry` only when something reads it (`table[i]`), and the whole tuple only when
`Comparison.entries` is read (then kept). The reports read the table: the counts by cause, the
disagreeing entries and the input tensors' members come from the arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import numpy as np
import sympy as sp

from ..base.causes import Cause
from .records import Entry, element
from .components import Components

CAUSES: Final = tuple(Cause)
CODE: Final = {cause: n for n, cause in enumerate(CAUSES)}
AGREE_CODE: Final = CODE[Cause.AGREE]


class EntryTable(Sequence[Entry]):
    """The entries of one comparison, output by output, each output's components in order (see
    the module's docstring). `table[i]` is entry i as `Comparison.entries[i]` holds it; an
    agreeing entry read this way is built again at each read unless the tuple was built."""

    def __init__(self, symbols: Sequence[sp.Basic], comps: Sequence[tuple[int, Any]], labels: Sequence[Any],
                 agree_text: Callable[[int, Any], str], formulas: Sequence[Callable[[], Any] | None] | None,
                 error: str | None, exact: Callable[[int, int], tuple[Any, Any]]) -> None:
        self.symbols = tuple(symbols)
        self.comps = comps if isinstance(comps, Components) else list(comps)  # held by input: not copied per entry
        self.labels = list(labels)
        self.agree_text = agree_text  # (input k, its wrt) -> the explanation of an agreeing entry
        self.formulas = formulas  # per input k: its formula's builder (a scalar output), else None
        self.error = error
        n = len(self.comps) * len(self.labels)
        self.codes = np.full(n, AGREE_CODE, dtype=np.uint8)
        self.executed = np.full(n, np.nan)  # each entry's executed derivative, rounded to a float
        self.autograd = np.full(n, np.nan)  # torch's (NaN where it has none)
        # (output, component) -> the exact (symbolic, executed) values, read where compare keeps
        # them (`point.ExactSides`): nothing is copied per entry.
        self.exact = exact
        self.special: dict[int, Entry] = {}  # the entries _entry made, by index
        self.said = ""  # said after every agreeing entry's explanation (path mode)
        self.built: tuple[Entry, ...] | None = None
        self._mine: dict[Any, Sequence[int]] | None = None

    # ----------------------------------------------------------------- filling

    def entry(self, i: int, e: Entry) -> None:
        """Entry i as `_entry` made it (every other entry agrees: its code says so)."""
        self.special[i] = e
        self.codes[i] = CODE[e.cause]

    def copy(self, special: dict[int, Entry] | None = None, said: str | None = None) -> EntryTable:
        """The same table with other records for its disagreeing entries (`cite`), or a text
        said after every agreeing entry's explanation (path mode). The arrays are shared."""
        out = object.__new__(EntryTable)
        out.__dict__.update(self.__dict__)
        out.special = dict(self.special if special is None else special)
        out.codes = self.codes.copy()
        for i, e in out.special.items():
            out.codes[i] = CODE[e.cause]
        out.said = self.said if said is None else said
        out.built = None
        return out

    # ----------------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self[k] for k in range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self.built is not None:
            return self.built[i]
        hit = self.special.get(i)
        return hit if hit is not None else self._agreeing(i)

    def __iter__(self) -> Iterator[Entry]:
        return (self[i] for i in range(len(self)))

    def _agreeing(self, i: int) -> Entry:
        o, n = divmod(i, len(self.comps))
        k, idx = self.comps[n]
        wrt = self.symbols[k] if idx is None else element(self.symbols[k], idx[0], idx[1])
        sym, exe = self.exact(o, n)
        text = self.agree_text(k, wrt)
        if self.said:
            text = f"{text} {self.said}"
        formula = self.formulas[k] if self.formulas is not None else None
        return Entry(self.labels[o], wrt, sym, None, exe, float(self.autograd[i]), Cause.AGREE, (), None, None, text,
                     "", self.error, formula)

    def entries(self) -> tuple[Entry, ...]:
        """Every entry, built once and kept (`Comparison.entries`)."""
        if self.built is None:
            self.built = tuple(self.special.get(i) or self._agreeing(i) for i in range(len(self)))
        return self.built

    def ok(self) -> bool:
        return bool(np.all(self.codes == AGREE_CODE))

    def cause(self) -> Cause:
        if not len(self):
            return Cause.AGREE
        return min((CAUSES[c] for c in np.unique(self.codes)), key=lambda c: c.severity)

    def bad(self) -> list[int]:
        """The indices of the entries that do not agree, in order."""
        return [int(i) for i in np.flatnonzero(self.codes != AGREE_CODE)]

    def _codes_of(self, among: Sequence[int]) -> np.ndarray:
        if isinstance(among, range):  # an input's entries, one run (`members`): a slice, no index per entry
            return self.codes[among.start:among.stop:among.step]
        return self.codes[np.asarray(list(among), dtype=np.int64)]

    def agreeing(self, among: Sequence[int]) -> int:
        return int(np.count_nonzero(self._codes_of(among) == AGREE_CODE)) if among else 0

    def counts(self, among: Sequence[int] | None = None) -> dict[Cause, int]:
        codes = self.codes if among is None else self._codes_of(among)
        values, counted = np.unique(codes, return_counts=True)
        return {CAUSES[int(v)]: int(n) for v, n in zip(values, counted)}

    def causes_in_order(self) -> list[Cause]:
        """The causes present, each once, in the order of its first entry."""
        values, first = np.unique(self.codes, return_index=True)
        return [CAUSES[int(values[j])] for j in np.argsort(first, kind="stable")]

    def tensor(self, i: int) -> sp.Basic:
        """The input entry i differentiates with respect to (a matrix input's matrix)."""
        return self.symbols[self.comps[i % len(self.comps)][0]]

    def members(self) -> dict[Any, Sequence[int]]:
        """The entries of each input (a matrix input's elements together), in order: a `range`
        where they are one run (an input of a scalar output), not a Python int per entry."""
        if self._mine is None:
            if len(self.labels) == 1 and isinstance(self.comps, Components) and \
                    len({k for k, _ in self.comps.blocks}) == len(self.comps.blocks):
                self._mine = {self.symbols[k]: range(start, stop) for k, start, stop, _ in self.comps.runs()}
                return self._mine
            by_k: dict[int, list[int]] = {}
            for n, (k, _) in enumerate(self.comps):
                by_k.setdefault(k, []).append(n)
            width = len(self.comps)
            mine: dict[Any, list[int]] = {}
            for k, ns in by_k.items():
                mine.setdefault(self.symbols[k], []).extend(o * width + n for o in range(len(self.labels)) for n in ns)
            for v in mine.values():
                v.sort()
            self._mine = mine
        return self._mine

    def outputs(self) -> list[Any]:
        """The output label of each output, in order."""
        return self.labels
