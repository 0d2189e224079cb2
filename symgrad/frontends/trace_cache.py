"""Translations read so far, kept with what a reading at another point needs of them (behind `trace.py`).

A check run hundreds of times in a test suite reads each function once: the translation is kept by
everything that can change it (`key`: the code object and its file, the input shapes, which
inputs are rank 1, the data's values, the values of the globals and closure cells the function
and its helpers read, its defaults, and the dtype of the run), with the program it lowers to and
whether that program has a loop, so that a reading at a new point lowers nothing again. The
fidelity check still runs at every point, so a translation is never trusted where it does not
reproduce the function.

The lowered program is kept with the translation it was lowered from, in the order the user's
code made its nodes then (`sides.order`): another function read since, whose expression is equal
but made in another order, does not change the program this function's reading runs.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch

from ..sides.ir import has_loop


@dataclass(slots=True)
class Entry:
    """A translation kept, with its lowered program (None until lowered) and whether the lowered
    program has a loop."""

    translation: Any
    lowered: Any = None
    loops: bool = False

    def lowered_as(self, lowered: Any) -> Any:
        """Keep `lowered`, the program this translation lowers to; returns it."""
        self.lowered, self.loops = lowered, has_loop(lowered.body)
        return lowered


_ENTRIES: dict[Any, Entry] = {}
KEEP: Final = 256


def clear() -> None:
    """Forget the translations read so far (for a cold timing)."""
    _ENTRIES.clear()


def put(key: Any, translation: Any) -> Entry:
    """Keep `translation` under `key` (None: not kept; the entry is still returned), the oldest
    one forgotten past KEEP."""
    entry = Entry(translation)
    if key is not None:
        if len(_ENTRIES) >= KEEP:
            _ENTRIES.pop(next(iter(_ENTRIES)))
        _ENTRIES[key] = entry
    return entry


def find(fn: Any, shapes: Sequence[tuple[str, tuple[int, int] | None]], rank1: Sequence[str],
         data: Mapping[str, Any], dtype: Any) -> tuple[Any, Entry | None]:
    """The key of everything a reading of `fn` depends on (None where it cannot be said: read it
    again), and the entry kept under it (None: none)."""
    f = fn if isinstance(fn, types.FunctionType) and "__wrapped__" not in fn.__dict__ else inspect.unwrap(fn)
    if not isinstance(f, types.FunctionType):
        return None, None
    parts = _read_values(f, frozenset())
    if parts is None:
        return None, None
    held = []
    for name, a in sorted(data.items()):  # a Python int or flag is data too
        held.append((name, a) if isinstance(a, (int, str)) or a is None else (name, str(a.dtype), a.shape, a.tobytes()))
    # Code objects compare equal across files (CPython leaves co_filename out of ==): the file is
    # part of the key, or an exec'd `def f` is served the reading of an equal one from a notebook.
    key = (f.__code__, f.__code__.co_filename, tuple(shapes), tuple(rank1), tuple(held), parts, dtype)
    return key, _ENTRIES.get(key)


# Libraries whose attributes a reading uses are fixed: a module of the user's (`d2l`, whose
# `d2l.linreg` may be redefined) is read again each time.
_LIBRARIES: Final = frozenset({"torch", "numpy", "math", "sympy", "symgrad", "builtins", "operator", "functools"})


@functools.lru_cache(maxsize=KEEP)
def _names(code: types.CodeType) -> tuple[tuple[str, bool], ...]:
    """The names a code object reads beyond its locals, sorted, each with whether it is a closure
    cell (`inspect.getclosurevars`' nonlocals) or else a global where the function's globals hold it."""
    cells = set(code.co_freevars)
    names = (set(code.co_names) - {"None", "True", "False"}) | cells
    return tuple((name, name in cells) for name in sorted(names))


def _read_values(f: types.FunctionType, seen: frozenset[Any]) -> tuple[Any, ...] | None:
    """What `f`'s reading depends on beyond its code: its defaults and the values of the globals
    and closure cells it reads, a helper of the user's (`source_inline`) by its own (None: read
    `f` again each time). `seen`: the code objects on the way here. A function met again (itself:
    `def relu(x): return torch.relu(x)`, whose attribute name `relu` counts as a global read, or a
    recursive helper) is known by its code, which the key already holds."""
    if not isinstance(f, types.FunctionType):
        return None
    seen = seen | {f.__code__}
    # `{**globals, **nonlocals}` of `inspect.getclosurevars(f)`, sorted by name (an empty cell, which
    # getclosurevars refuses too: None), then the defaults
    space = f.__globals__
    cells = dict(zip(f.__code__.co_freevars, f.__closure__ or ()))
    read: list[tuple[str, Any]] = []
    for name, is_cell in _names(f.__code__):
        if is_cell and name in cells:
            try:
                read.append((name, cells[name].cell_contents))
            except ValueError:  # an empty cell
                return None
        elif name in space:
            read.append((name, space[name]))
    for k, d in [*enumerate(f.__defaults__ or ()), *(f.__kwdefaults__ or {}).items()]:
        read.append((f"default {k}", d))
    parts: list[Any] = []
    for name, v in read:
        if isinstance(v, (bool, int, float, complex, str)) or v is None:
            parts.append((name, v))
        elif isinstance(v, torch.Tensor):
            parts.append((name, str(v.dtype), tuple(v.shape), v.requires_grad, _bytes_of(v)))
        elif isinstance(v, np.ndarray):
            parts.append((name, str(v.dtype), v.shape, v.tobytes()))
        elif isinstance(v, types.FunctionType) and (v.__module__ or "").split(".")[0] not in _LIBRARIES:
            u = inspect.unwrap(v)
            if getattr(u, "__code__", None) in seen:
                parts.append((name, u.__code__))
                continue
            inner = _read_values(u, seen) if len(seen) < 8 else None  # type: ignore[arg-type]
            if inner is None:
                return None
            parts.append((name, v.__code__, inner))  # a helper: its code and what it reads
        elif isinstance(v, types.ModuleType) and v.__name__.split(".")[0] not in _LIBRARIES:
            return None  # a module of the user's: its attributes may change
        elif isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)):
            parts.append((name, id(v)))  # torch, a library function, a class: by identity
        else:
            return None  # an object whose attributes the reading may use: read again each time
    return tuple(parts)


def _bytes_of(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().numpy().tobytes() if not t.is_meta else b""
