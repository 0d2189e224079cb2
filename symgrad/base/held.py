"""Float arrays symgrad made for itself and never changes (a reading's example values): read
where they are, without a copy of each (a model's point is 10^5 floats, copied by every reader).

`hold(a)` registers an array symgrad owns; `is_held(a)` says whether `a` is one of them, by
identity (a weak registry: an array is forgotten when it is freed, and an equal array, a view or
a user's array of the same floats is not held).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

_HELD: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


def hold(a: np.ndarray) -> np.ndarray:
    """`a`, registered as held: symgrad's own array, which nothing writes to."""
    _HELD[id(a)] = a
    return a


def is_held(a: Any) -> bool:
    """Whether `a` is an array registered by `hold` (this very object, still alive)."""
    return isinstance(a, np.ndarray) and _HELD.get(id(a)) is a
