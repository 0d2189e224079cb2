"""The tensors a user's function reads, left as they were by every run symgrad makes of it.

symgrad runs the user's function several times to read it (the fidelity check's run, the
recorded run of path mode, a reading again at another point). A function that updates a tensor it
did not create in place, `F.batch_norm(x, running_mean, running_var, training=True)` (torch adds a
momentum's share of the batch's statistics to the running buffers on every call), `x.add_(1)` on
an argument, `buf.copy_(y)` on a global, would otherwise see that tensor change once per run:
several calls' worth of drift from one `sg.compare`. The rule: after `sg.compare`, `sg.trace` or
`assert_grad_matches_math` the tensors the function can reach, its arguments (and the tensors in
a list, tuple or dict argument), the globals its code (and the code of the functions it defines)
names, and its closure cells, hold the values they held before the call, bit for bit: symgrad
checks, it does not train. (A module's parameters and buffers are kept by `modules.kept`; a tensor of
more than MAX_KEPT_ELEMENTS elements, a data set, is not copied.)
"""

from __future__ import annotations

import contextlib
import functools
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import torch


# A tensor of more elements than this is not copied (a data set the function reads, which it does
# not update in place; a copy would double the memory symgrad adds); a running buffer, a weight, a
# counter is far smaller. A meta tensor has no values to change.
MAX_KEPT_ELEMENTS: Final = 1 << 20


@functools.lru_cache(maxsize=256)
def _code_names(code: types.CodeType) -> frozenset[str]:
    """The global names a code object and the code objects it defines read (the same for an equal
    code object: they are its constants)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return frozenset(names)


def _tensors_in(value: Any) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        yield from (v for v in value if isinstance(v, torch.Tensor))
    elif isinstance(value, dict):
        yield from (v for v in value.values() if isinstance(v, torch.Tensor))


def replaced(value: Any) -> bool:
    """An argument that no run of symgrad's passes to the user's code: a floating tensor of rank 0,
    1 or 2 is an input of the reading (`trace._example`), and every run (the fidelity check's, a
    recorded run, a run that records draws) gets a leaf tensor of symgrad's own in its place
    (`trace._call_with`). The user's own tensor is only read."""
    return isinstance(value, torch.Tensor) and value.is_floating_point() and value.ndim <= 2 and not value.is_meta


def reached(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *, inputs_replaced: bool = False) -> list[torch.Tensor]:
    """The tensors fn can update in place without creating them: its arguments, the globals its
    code names and its closure cells (each tensor once). `inputs_replaced`: a plain function's
    runs, where an argument that is an input never reaches the user's code (`replaced`)."""
    found: dict[int, torch.Tensor] = {}
    for v in (*args, *kwargs.values()):
        if not (inputs_replaced and isinstance(v, torch.Tensor) and replaced(v)):
            _add(found, v)
    fn = getattr(fn, "__func__", fn)  # a bound method reads its function's globals
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        space = getattr(fn, "__globals__", {})
        for name in _code_names(code):
            if name in space:
                _add(found, space[name])
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                _add(found, cell.cell_contents)
            except ValueError:  # an empty cell
                continue
    return list(found.values())


def _add(found: dict[int, torch.Tensor], value: Any) -> None:
    """The tensors of `value` (`_tensors_in`) added to `found`, by identity (nothing else is walked)."""
    if isinstance(value, (torch.Tensor, list, tuple, dict)):
        found.update((id(t), t) for t in _tensors_in(value))


@contextlib.contextmanager
def unchanged(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *, inputs_replaced: bool = False) -> Iterator[None]:
    """The tensors `reached(fn, args, kwargs)` hold after the block the values they held before it
    (copied back in place where a run changed them: the same tensor objects, no new ones)."""
    saved = [(t, t.detach().clone()) for t in reached(fn, args, kwargs, inputs_replaced=inputs_replaced)
             if t.layout == torch.strided and not t.is_meta and t.numel() <= MAX_KEPT_ELEMENTS]
    if not saved:
        yield
        return
    try:
        yield
    finally:
        with torch.no_grad():
            for t, data in saved:
                if t.shape == data.shape and not torch.equal(t, data):  # (a NaN compares unequal: copied, the same)
                    t.copy_(data)
