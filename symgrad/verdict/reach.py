"""What moving an input moves: the steps of an executed path that depend on some inputs (one
element of a matrix input), found once per path and input set, so that each entry the
classifier explains (785 kink entries of a network with one ReLU tie) asks a lookup, not a walk
of the whole path.

The rule (that of the walk it replaces, one pass over every step per entry): the inputs' own steps
depend on them; a step depends on them where any parent does, through any edge, cut or not;
except that, for one element idx of a matrix input, an `elem` step that reads another element
of that input does not (nor, then, what only it reaches).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Reach:
    """The steps that depend on inputs ks (element idx), as a read-only boolean array indexed by
    step: for the whole of each input set, computed once (one walk of the steps it reaches);
    for an element of a matrix input read element by element (`elem` steps), that once-found
    part plus the steps the element's own `elem` steps reach (a walk of those alone)."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self._children: list[list[int]] | None = None
        self._whole: dict[tuple[int, ...], np.ndarray] = {}  # sources -> what they reach, `elem` reads and all
        self._base: dict[tuple[int, ...], np.ndarray] = {}  # sources -> what they reach but through `elem` reads
        self._elems: dict[tuple[int, ...], list[int]] = {}  # sources -> their `elem` reads
        self._last: tuple[Any, np.ndarray] | None = None  # one entry asks several times

    def of(self, ks: Sequence[int], idx: tuple[int, int] | None = None) -> np.ndarray:
        sources = tuple(sorted({self.path.inputs[k] for k in ks}))
        key = (sources, idx)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        elems = self._elem_reads(sources)
        if idx is None or not elems:
            if sources not in self._whole:
                self._whole[sources] = self._walk(sources, frozenset())
            dep = self._whole[sources]
        else:
            if sources not in self._base:
                self._base[sources] = self._walk(sources, frozenset(elems))
            steps = self.path.steps
            mine = [e for e in elems if steps[e].param == idx]
            if mine:
                dep = self._base[sources] | self._walk(tuple(mine), frozenset(e for e in elems if e not in mine))
                dep.flags.writeable = False
            else:
                dep = self._base[sources]
        self._last = (key, dep)
        return dep

    def _elem_reads(self, sources: tuple[int, ...]) -> list[int]:
        if sources not in self._elems:
            children = self.children()
            self._elems[sources] = [c for s in sources for c in children[s]
                                    if self.path.steps[c].op == "elem" and self.path.steps[c].parents[0] in sources]
        return self._elems[sources]

    def children(self) -> list[list[int]]:
        """Each step's children (the steps that read it), found once."""
        if self._children is None:
            children: list[list[int]] = [[] for _ in self.path.steps]
            for st in self.path.steps:
                for p in set(st.parents):
                    children[p].append(st.index)
            self._children = children
        return self._children

    def _walk(self, starts: tuple[int, ...], skip: frozenset[int]) -> np.ndarray:
        """The steps reached from starts (themselves included), never entering skip."""
        dep = bytearray(len(self.path.steps))
        children = self.children()
        todo = list(starts)
        while todo:
            i = todo.pop()
            if dep[i]:
                continue
            dep[i] = 1
            todo.extend(c for c in children[i] if c not in skip and not dep[c])
        found = np.frombuffer(bytes(dep), dtype=bool)  # read-only: shared by the entries that ask
        return found
