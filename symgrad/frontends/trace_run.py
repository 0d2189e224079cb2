"""The fidelity check's run of a translation, kept for the autograd side (behind `trace.py`).

The fidelity check (`trace._fidelity`) runs the translation forward and backward at the point,
every input requiring grad, in the state the autograd side runs it in (`sides.autograd.torch_state`
with the default dtype the compared dtype's). Where the output is a scalar, that run is the one
the autograd side would make again at the same point; `prerun_of` keeps it as a
`sides.autograd.Prerun`, which `autograd.run` reads only where it answers the same question
(the same lowered program, dtype and input values bit for bit; see `autograd._reused`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np
import torch

from ..sides.autograd import Prerun
from ..sides.lowering import DTYPES


_NOTHING: Final = contextlib.nullcontext()


def default_dtype(dtype: str) -> contextlib.AbstractContextManager[None]:
    """torch's default dtype made `dtype`'s for the block (inside `torch_state`, which holds the
    lock on process-wide settings), and put back after; nothing done where it already is."""
    wanted = DTYPES[dtype]
    return _NOTHING if torch.get_default_dtype() == wanted else _default_dtype(wanted)


@contextlib.contextmanager
def _default_dtype(wanted: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(wanted)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def prerun_of(lowered: Any, names: Sequence[str], rank1: set[str], tensors: Sequence[torch.Tensor], run: Any,
              dtype: str, values: Mapping[str, Any] | None = None) -> Prerun | None:
    """The translation's run (`run`: trace's record of it, with the leaf `tensors` it ran on, in
    the order of `names`) as the autograd side would make it: a scalar output, its gradient with
    respect to every input, in the order of `lowered.symbols`; None for any other run (a returned
    tuple, a matrix output, no gradient). `values`: the float64 values the leaves were made from
    (floats or float64 arrays), by name, read instead of the tensors in a float64 run (the same
    values; no rounding)."""
    if run.several or not run.scalar or run.grads is None or run.value is None or len(run.reached) != len(names):
        return None
    index = {n: k for k, n in enumerate(names)}
    if len(lowered.symbols) != len(names) or any(s.name not in index for s in lowered.symbols):
        return None
    ran, grads = [], []
    for s in lowered.symbols:
        k = index[s.name]
        array = np.asarray(values[s.name], dtype=np.float64) if values is not None and dtype == "float64" else \
            tensors[k].detach().numpy()
        ran.append(array.reshape(-1, 1) if s.name in rank1 else array)
        grads.append(run.grads[k] if run.reached[k] else None)
    return Prerun(lowered, dtype, tuple(ran), float(run.value[0]), tuple(grads))


class Floats(Sequence[float]):
    """A fidelity run's values held as one float64 array, read as the tuple of Python floats they
    are (`Fidelity.grad_user`, `grad_translated`): a model's gradient has 10^5 values, and a tuple
    of floats spent 32 bytes on each, twice, for the whole comparison. Equal to a tuple or list
    of the same floats (and to another `Floats`), as the tuple was; `np.asarray` reads the array."""

    __slots__ = ("_array",)

    def __init__(self, values: Any) -> None:
        self._array = np.array(values, dtype=np.float64).reshape(-1)  # its own copy

    def __len__(self) -> int:
        return int(self._array.size)

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return tuple(self._array[k].tolist())
        return float(self._array[k])

    def __iter__(self) -> Iterator[float]:
        return iter(self._array.tolist())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._array if dtype is None else self._array.astype(dtype)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Floats):
            other = other._array.tolist()
        if isinstance(other, (tuple, list)):
            return len(other) == len(self) and tuple(self._array.tolist()) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._array.tolist()))

    def __repr__(self) -> str:
        return repr(tuple(self._array.tolist()))


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@functools.lru_cache(maxsize=256)
def positional_names(sig: inspect.Signature) -> tuple[str, ...] | None:
    """The parameters' names where every one is positional (no *args, **kwargs or keyword-only
    parameter), in order; None otherwise. A Signature is hashed by its parameters."""
    params = tuple(sig.parameters.values())
    return tuple(p.name for p in params) if all(p.kind in _POSITIONAL for p in params) else None


def bind(sig: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any],
         positional: tuple[str, ...] | None | bool = True) -> inspect.BoundArguments:
    """`sig.bind(*args, **kwargs)`: where one value is given positionally for each of the
    function's positional parameters (a check's usual call), the same BoundArguments made
    directly, without inspect's general matching (a fifth of a small trace's own time).
    `positional`: `positional_names(sig)` where the caller has it (True: worked out here)."""
    names = None if kwargs else positional_names(sig) if positional is True else positional
    if names is not None and len(names) == len(args):
        return inspect.BoundArguments(sig, dict(zip(names, args)))  # type: ignore[arg-type]
    return sig.bind(*args, **kwargs)


def float64_array(value: torch.Tensor) -> np.ndarray:
    """A tensor's values as a float64 numpy array (sharing a float64 CPU tensor's memory, as
    `.detach().to(torch.float64).cpu().numpy()` does, without the calls that change nothing)."""
    t = value.detach()
    if t.dtype != torch.float64:
        t = t.to(torch.float64)
    if t.device.type != "cpu":
        t = t.cpu()
    return t.numpy()


_REFUSED = "cannot have requires_grad True"


def without_refused(call: Any, tensors: Sequence[torch.Tensor], err: Exception) -> tuple[Any, list[torch.Tensor]] | None:
    """The user's run again where torch refused an input that requires grad (an argument an op does
    not differentiate: `F.batch_norm`'s running buffers in training, passed as arguments): the
    fewest inputs without requires_grad that let it run, as the user would pass a buffer. Their
    gradients are then not reached, and the fidelity check compares that with the translation's
    (which does not read them; one that did would differ, so nothing passes falsely). Returns the
    output and the tensors it ran on; None where that is not the error or nothing lets it run."""
    if not (isinstance(err, RuntimeError) and _REFUSED in str(err)):
        return None
    off: set[int] = set()
    for k in range(len(tensors)):  # off one more input at a time until the run goes through
        off.add(k)
        ran = _run_without(call, tensors, off)
        if ran is None:
            return None
        if ran is not _REFUSED:
            break
    else:
        return None
    for k in sorted(off):  # then each back on where the run goes through with it
        ran_on = _run_without(call, tensors, off - {k})
        if ran_on is not None and ran_on is not _REFUSED:
            off.discard(k)
            ran = ran_on
    return ran  # type: ignore[return-value]


def _run_without(call: Any, tensors: Sequence[torch.Tensor], off: set[int]) -> Any:
    tried = [t.detach().clone() if i in off else t for i, t in enumerate(tensors)]
    try:
        with torch.enable_grad():
            return call(tried), tried
    except RuntimeError as again:
        return _REFUSED if _REFUSED in str(again) else None
    except Exception:  # noqa: BLE001 - another error of the user's code: the first one is said
        return None
