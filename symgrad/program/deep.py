"""Deep inputs without recursion limits.

SymPy's printers, `xreplace` and our lowering recurse once per nesting level, so a 10,000-deep
composition needs far more than Python's default 1,000 frames, and raising the limit on the
caller's thread (8 MiB of C stack) crashes the process instead. `deep(fn)` runs `fn` as it is;
only if it raises `RecursionError` is it run again in a worker thread with a large stack and a
high recursion limit. The caller's recursion limit is restored afterwards, and the worker sees
the caller's torch grad mode (thread-local in torch).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import sympy as sp
import torch

T = TypeVar("T")

STACK_BYTES = 1 << 30  # reserved, not committed: the pages are used only as deep as the work goes
RECURSION_LIMIT = 1_000_000

_local = threading.local()
_limit_lock = threading.Lock()


# Nesting deeper than this goes straight to the worker (a first try would only fail slowly).
DEEP_NESTING = 250


def deep(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        if getattr(_local, "inside", False):
            return fn(*args, **kwargs)
        if args and not _shallow(args[0]):
            return _in_big_stack(fn, args, kwargs)
        try:
            return fn(*args, **kwargs)
        except RecursionError:
            return _in_big_stack(fn, args, kwargs)

    return wrapper


# Immutable inputs known to nest no deeper than DEEP_NESTING, by identity, each entry holding its
# object (so that its id stays its own): a program traced again at a new point is lowered from the
# same cached translation, whose depth is then not walked again (a walk of its whole DAG, about a
# millisecond for a 50-statement function, on every call). Emptied when it grows past _SHALLOW_KEEP.
_SHALLOW: dict[int, Any] = {}
_SHALLOW_KEEP = 256


def _shallow(obj: Any) -> bool:
    """Not nested deeper than DEEP_NESTING: remembered for SymPy objects and frozen records."""
    if id(obj) in _SHALLOW:
        return True
    if nested_deeper_than(obj, DEEP_NESTING):
        return False
    params = getattr(type(obj), "__dataclass_params__", None)
    if isinstance(obj, sp.Basic) or (params is not None and params.frozen):
        if len(_SHALLOW) >= _SHALLOW_KEEP:
            _SHALLOW.clear()
        _SHALLOW[id(obj)] = obj
    return True


def nested_deeper_than(obj: Any, limit: int) -> bool:
    """Whether a SymPy expression (or a Program's statements, or a Comparison's function) nests
    more than `limit` levels; a walk over the DAG without recursion, each node visited at most
    as often as a deeper path reaches it."""
    return _deeper(_roots(obj), limit)


def _deeper(roots: list[Any], limit: int) -> bool:
    best: dict[int, int] = {}
    stack = [(r, 0) for r in roots]
    while stack:
        node, d = stack.pop()
        if d > limit:
            return True
        key = id(node)
        if best.get(key, -1) >= d:
            continue
        best[key] = d
        stack.extend((a, d + 1) for a in getattr(node, "args", ()))
    return False


def _roots(obj: Any) -> list[Any]:
    lowered = getattr(obj, "lowered", None)  # a Comparison
    if lowered is not None:
        obj = lowered.normalized
    for name in ("output", "body"):  # a Program or a normalised function
        if hasattr(obj, name) and not hasattr(obj, "func"):
            return [getattr(obj, n) for n in ("output", "body") if isinstance(getattr(obj, n, None), tuple(_BASIC))]
    return [obj] if isinstance(obj, tuple(_BASIC)) else []


def _basic() -> list[type]:
    return [sp.Basic]


_BASIC = _basic()


def _in_big_stack(fn: Callable[..., T], args: Any, kwargs: Any) -> T:
    result: list[Any] = []
    failure: list[BaseException] = []
    grad = torch.is_grad_enabled()

    def work() -> None:
        _local.inside = True
        try:
            with torch.set_grad_enabled(grad):
                result.append(fn(*args, **kwargs))
        except BaseException as err:  # handed back to the caller's thread below
            failure.append(err)

    with _limit_lock:
        limit = sys.getrecursionlimit()
        size = threading.stack_size()
        try:
            threading.stack_size(STACK_BYTES)
            sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
            worker = threading.Thread(target=work, name="symgrad-deep")
            worker.start()
            worker.join()
        finally:
            threading.stack_size(size)
            sys.setrecursionlimit(limit)
    if failure:
        raise failure[0]
    return result[0]
