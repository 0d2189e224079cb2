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
        if args and nested_deeper_than(args[0], DEEP_NESTING):
            return _in_big_stack(fn, args, kwargs)
        try:
            return fn(*args, **kwargs)
        except RecursionError:
            return _in_big_stack(fn, args, kwargs)

    return wrapper


def nested_deeper_than(obj: Any, limit: int) -> bool:
    """Whether a SymPy expression (or a Program's statements, or a Comparison's function) nests
    more than `limit` levels; a walk over the DAG without recursion, each node visited at most
    as often as a deeper path reaches it."""
    roots = _roots(obj)
    key = (tuple(id(r) for r in roots), limit)
    known = _DEPTHS.get(key)
    if known is None:
        known = _DEPTHS[key] = (roots, _deeper(roots, limit))
        if len(_DEPTHS) > _DEPTHS_KEEP:
            _DEPTHS.pop(next(iter(_DEPTHS)))
    return known[1]


# The answers so far, by the identity of the expressions, which each entry keeps alive (so that no
# other object takes its id): a check run hundreds of times on one translation walks it once. Not
# by equality: hashing a SymPy expression recurses once per level, the very thing guarded here.
_DEPTHS: dict[tuple[tuple[int, ...], int], tuple[list[Any], bool]] = {}
_DEPTHS_KEEP = 16


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
