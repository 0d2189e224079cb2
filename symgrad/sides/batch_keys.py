"""Each point of a batch run summed up in one int8, as a sweep reads it (`flag_key`).

A point's loop passed max_iterations (STUCK); nothing flagged it (QUIET); or it is flagged, as
1 + its signature: 2 if it sits on a threshold or kink, plus 1 if autograd is finite there. A point
is flagged on a tie, near a cancelling difference, or where autograd or f is not finite. A chunked
run (`batch.run_keyed`) writes each chunk's states while the chunk's values are in the cache, so
that no pass over the whole batch's values and gradients is made again for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

STUCK: Final = -1
QUIET: Final = 0

# Points per pass: each pass's arrays stay in the cache.
FLAG_CHUNK: Final = 2**16


def flag_key(tie: np.ndarray | None, cancel: np.ndarray | None, auto: Sequence[np.ndarray], value: np.ndarray,
             stuck: np.ndarray | None) -> np.ndarray:
    """Each point's state as int8: STUCK where `stuck`; otherwise 1 + 2*tie + (autograd finite)
    where the point is on a threshold or kink (`tie`), near a cancellation (`cancel`), or where
    autograd (every one of the columns `auto`) or f (`value`) is not finite; QUIET elsewhere.
    A mask given as None holds nowhere."""
    n = len(value)
    key = np.empty(n, dtype=np.int8)
    for a in range(0, n, FLAG_CHUNK):
        part = slice(a, a + FLAG_CHUNK)
        finite = np.isfinite(auto[0][part])
        for col in auto[1:]:
            finite &= np.isfinite(col[part])
        flagged = finite & np.isfinite(value[part])
        np.logical_not(flagged, out=flagged)
        k = key[part]
        if tie is not None:
            flagged |= tie[part]
            np.multiply(tie[part], 2, out=k, dtype=np.int8)
            k += finite
        else:
            k[...] = finite
        if cancel is not None:
            flagged |= cancel[part]
        k += 1
        k *= flagged
        if stuck is not None:
            k[stuck[part]] = STUCK
    return key
