"""`Reading.arguments`: the example values as the user gave them, kept for a later reading (another
dtype, `Traced.sweep`'s fixed values), independent of the reading's point.

A float64 CPU tensor that is an input is held as the reading's own float64 copy of its values (the
point, `Reading.point`, which nothing writes to) until it is first read here: then it becomes a
tensor of its own, a copy, in the shape it was given. A check that never reads it (most) pays no
copy; a change made in place to what it reads changes neither the point nor a later read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch


class Given(Mapping[str, Any]):
    """The example values by parameter name, in the order given (the module's docstring)."""

    __slots__ = ("_held", "_order", "_values")

    def __init__(self, values: dict[str, Any], held: dict[str, tuple[np.ndarray, tuple[int, ...]]],
                 order: tuple[str, ...]) -> None:
        self._values = values  # name -> the value as kept (a tensor of its own, a number, data)
        self._held = held  # name -> (the point's array, the shape given): copied when first read
        self._order = order

    def __getitem__(self, key: str) -> Any:
        hit = self._held.get(key)
        if hit is not None:
            array, shape = hit
            self._values[key] = torch.from_numpy(np.array(array, dtype=np.float64).reshape(shape))  # a copy
            self._held.pop(key, None)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: object) -> bool:
        return key in self._values or key in self._held

    def __repr__(self) -> str:
        return repr(dict(self.items()))
