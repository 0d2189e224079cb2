"""A row of values held as what differs from another row (issue 20, item 5).

A model's symbolic derivatives are nearly all the executed derivatives themselves (the very
objects: `symbolic.same_number`), and a list of them spent a pointer on each of 10^5 entries
beside the executed row that holds them already. `Overlay` holds, per position, a byte saying
"the base's value here" and a dict of the positions whose value is another one; every other
position holds None (not yet given), as a list of Nones would. Where more than one position in
`SPARSE` holds another value, the row becomes that list (a dict entry costs more than a pointer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

SPARSE = 16  # past one position in 16 holding another value, a plain list holds the row


class Overlay(Sequence[Any]):
    """A sequence of `len(base)` values, None where nothing was given; setting a position to the
    very object `base` holds there is a bit, setting it to anything else an entry of a dict."""

    __slots__ = ("base", "_same", "_other", "_list")

    def __init__(self, base: Sequence[Any]) -> None:
        self.base = base
        self._same = np.zeros(len(base), dtype=bool)
        self._other: dict[int, Any] = {}
        self._list: list[Any] | None = None  # the row as a list, once it is no longer sparse

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, n: Any) -> Any:
        if isinstance(n, slice):
            return [self[i] for i in range(*n.indices(len(self)))]
        n = int(n)
        if n < 0:
            n += len(self)
        if not 0 <= n < len(self):
            raise IndexError(n)
        if self._list is not None:
            return self._list[n]
        if self._same[n]:
            return self.base[n]
        return self._other.get(n)

    def __setitem__(self, n: int, value: Any) -> None:
        n = int(n)
        if not 0 <= n < len(self):
            raise IndexError(n)
        if self._list is not None:
            self._list[n] = value
            return
        if value is not None and value is self.base[n]:
            self._same[n] = True
            self._other.pop(n, None)
        else:
            self._same[n] = False
            if value is None:
                self._other.pop(n, None)
            else:
                self._other[n] = value
                if len(self._other) * SPARSE > len(self):
                    self._list = list(self)
                    self._same, self._other = np.zeros(0, dtype=bool), {}

    def __iter__(self) -> Iterator[Any]:
        if self._list is not None:
            yield from self._list
            return
        other, base, chunk = self._other, iter(self.base), 4096
        for start in range(0, len(self), chunk):  # the bits read a chunk at a time as Python bools
            for n, same in enumerate(self._same[start:start + chunk].tolist(), start):
                b = next(base)
                yield b if same else other.get(n)

    def unset(self) -> list[int]:
        """The positions that hold None, in order."""
        if self._list is not None:
            return [n for n, v in enumerate(self._list) if v is None]
        return [n for n in np.flatnonzero(~self._same).tolist() if n not in self._other]

    def differing(self) -> int:
        """How many positions hold something other than the base's object (None included)."""
        if self._list is not None:
            return sum(1 for v, b in zip(self._list, self.base) if v is not b)
        return len(self) - int(self._same.sum())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Overlay, list, tuple)):
            return len(other) == len(self) and all(a is b or a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as a list's

    def __repr__(self) -> str:
        return f"Overlay({len(self)} values, {self.differing()} not the base's)"
