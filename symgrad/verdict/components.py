"""The components a comparison differentiates with respect to, held by input, not by element.

A component is `(input k, element idx)`: `idx` is None for a scalar input and the `(i, j)` of an
element of a matrix input, in row-major order (`np.ndindex`). A model's comparison has 10^5
components; a list of them held a tuple and an index tuple each (about 130 bytes per entry, for
the whole comparison). `Components` holds one block per input (its index and its shape) and makes
the tuple of a component when it is read: the same tuples, equal to the list's, in the same order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any

Component = tuple[int, tuple[int, int] | None]  # (input index, element of a matrix input)


class _Blocks(Sequence[Any]):
    """A sequence held in blocks of the given sizes: `_at(block, offset)` reads one element."""

    __slots__ = ("_starts", "_size")

    def _sizes(self, sizes: Iterator[int] | list[int]) -> None:
        starts, size = [], 0
        for n in sizes:
            starts.append(size)
            size += n
        self._starts = starts
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, n: Any) -> Any:
        if isinstance(n, slice):
            return [self[i] for i in range(*n.indices(self._size))]
        n = int(n)
        if n < 0:
            n += self._size
        if not 0 <= n < self._size:
            raise IndexError(n)
        b = bisect.bisect_right(self._starts, n) - 1
        return self._at(b, n - self._starts[b])

    def _block(self, n: Any) -> int:
        """The block of element n, -1 where n is not an int index inside (the general path reads it)."""
        return bisect.bisect_right(self._starts, n) - 1 if type(n) is int and 0 <= n < self._size else -1

    def _at(self, block: int, offset: int) -> Any:
        raise NotImplementedError


class Components(_Blocks):
    """The components of the inputs `blocks` names, in order: each `(k, None)` for a scalar input,
    `(k, (rows, cols))` for a matrix input, whose elements come together in row-major order."""

    __slots__ = ("blocks",)

    def __init__(self, blocks: Sequence[tuple[int, tuple[int, int] | None]]) -> None:
        self.blocks = tuple((int(k), None if shape is None else (int(shape[0]), int(shape[1]))) for k, shape in blocks)
        self._sizes([1 if shape is None else shape[0] * shape[1] for _, shape in self.blocks])

    def __getitem__(self, n: Any) -> Any:  # a model's 10^5 entries each read their component
        b = self._block(n)
        return super().__getitem__(n) if b < 0 else self._at(b, n - self._starts[b])

    def _at(self, b: int, offset: int) -> Component:
        k, shape = self.blocks[b]
        if shape is None:
            return (k, None)
        return (k, divmod(offset, shape[1]))

    def __iter__(self) -> Iterator[Component]:
        for k, shape in self.blocks:
            if shape is None:
                yield (k, None)
            else:
                rows, cols = shape
                for i in range(rows):
                    for j in range(cols):
                        yield (k, (i, j))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Components):
            return self.blocks == other.blocks
        if isinstance(other, (list, tuple)):
            return len(other) == self._size and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as a list's

    def __repr__(self) -> str:
        return f"Components({list(self.blocks)!r})"

    def runs(self) -> list[tuple[int, int, int, tuple[int, int] | None]]:
        """Each input's run of components: (input k, start, stop, its shape or None)."""
        return [(k, start, start + (1 if shape is None else shape[0] * shape[1]), shape)
                for (k, shape), start in zip(self.blocks, self._starts)]


class Parts(_Blocks):
    """The values of several parts (lists, or 1-D object arrays: a matrix input's gradient
    raveled, a view of it), read in order as one sequence, with no list of every value: a model's
    row of executed derivatives was a list of 10^5 pointers beside the gradient arrays it copied."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Sequence[Any]) -> None:
        self._parts = [p for p in parts if len(p)]
        self._sizes([len(p) for p in self._parts])

    def __getitem__(self, n: Any) -> Any:  # read once per entry by the shared one-sided runs
        b = self._block(n)
        return super().__getitem__(n) if b < 0 else self._parts[b][n - self._starts[b]]

    def _at(self, b: int, offset: int) -> Any:
        return self._parts[b][offset]

    def __iter__(self) -> Iterator[Any]:
        for p in self._parts:
            yield from p

