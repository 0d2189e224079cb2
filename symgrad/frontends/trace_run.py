"""The fidelity check's two runs (the user's function and the translation, forward and backward:
`forward`, `backward`, `backward_both`), and the translation's run kept for the autograd side
(behind `trace.py`).

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
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch

from ..sides.autograd import Prerun
from . import source_tuples as tuples_out
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


# --------------------------------------------------------------------------- the two runs


@dataclass(frozen=True)
class Run:
    value: np.ndarray | None
    grads: tuple[np.ndarray, ...] | None
    error: str | None
    several: bool = False  # a returned tuple: `grads` holds each element's gradient, not the sum's
    shapes: tuple[tuple[int, ...], ...] = ()  # a returned tuple: each value's torch shape
    scalar: bool = False  # the output was a 0-d tensor
    reached: tuple[bool, ...] = ()  # per input: whether torch's backward reached it (its gradient was not None)


@dataclass(slots=True)
class Forward:
    """A forward run of `execute`: its output and the leaf tensors it ran on, or `done`, the run
    already finished without a backward pass (the code raised, returned no tensor, a returned tuple)."""

    out: Any
    tensors: list[torch.Tensor]
    done: Run | None = None


def forward(call: Any, tensors: list[torch.Tensor], several: bool = False) -> Forward:
    """Run `call` forward (a returned tuple, or `several`, differentiated at once, element by element)."""
    try:
        with torch.enable_grad():
            out = call(tensors)
    except Exception as err:  # the user's own code raised: no verdict, a sentence (or an input torch refuses)
        if (kept := without_refused(call, tensors, err)) is None:
            return Forward(None, tensors, Run(None, None, f"{type(err).__name__}: {err}"))
        out, tensors = kept
    if isinstance(out, tuple) or several:
        return Forward(out, tensors, execute_several(out, tensors))
    if not isinstance(out, torch.Tensor):
        try:
            return Forward(out, tensors, Run(np.asarray(float(out)).reshape(-1), None,
                                               "the function did not return a tensor"))
        except (TypeError, ValueError):
            return Forward(out, tensors, Run(None, None, "the function did not return a tensor"))
    if not out.requires_grad:
        return Forward(out, tensors, Run(float64_array(out).reshape(-1), None, "the output does not require grad"))
    return Forward(out, tensors)


def backward(f: Forward) -> Run:
    """torch's gradient of a forward run's output (of its sum), with respect to each of its leaves."""
    if f.done is not None:
        return f.done
    out = f.out
    value = float64_array(out).reshape(-1)
    try:
        # A one-element output: torch makes the same ones itself, and its first grad_outputs
        # tensor imports torch.fx's symbolic shapes (80 ms, once per process)
        grads = torch.autograd.grad(out, [t for t in f.tensors if t.requires_grad],
                                    grad_outputs=None if out.numel() == 1 else torch.ones_like(out), allow_unused=True)
    except RuntimeError as err:
        return Run(value, None, str(err))
    return _ran(f, value, iter(grads))


def _ran(f: Forward, value: np.ndarray, found: Any) -> Run:
    """The run of `f` with `found`, torch's gradients of the leaves that require grad, in order
    (each read as torch's own array: a gradient from `autograd.grad` is a CPU tensor that requires
    no grad, whose `.numpy()` shares its memory)."""
    arrays: list[np.ndarray] = []
    reached: list[bool] = []
    for t in f.tensors:
        g = next(found) if t.requires_grad else None
        reached.append(g is not None)
        if g is None:
            arrays.append(np.zeros(t.numel()))
            continue
        try:
            arrays.append(g.numpy().reshape(-1))
        except (RuntimeError, TypeError):  # one that requires grad, or not on the CPU
            arrays.append(g.detach().cpu().numpy().reshape(-1))
    return Run(value, tuple(arrays), None, scalar=f.out.ndim == 0, reached=tuple(reached))


def backward_both(a: Forward, b: Forward) -> tuple[Run, Run]:
    """`(backward(a), backward(b))`, made by one call of torch's engine where both runs reached
    a tensor that requires grad. The two graphs are disjoint (each run made its own leaves and
    read no tensor of the other's), so each leaf's gradient is its own graph's, added in the same
    order as in a call of its own (torch's engine runs a graph's nodes in the order of their
    sequence numbers, whatever else it runs beside them): the same bits. Where the call raises,
    each run is differentiated on its own, so that an error is said of the run that made it (the
    graphs are kept for that)."""
    if a.done is not None or b.done is not None:
        return backward(a), backward(b)
    wanted_a = [t for t in a.tensors if t.requires_grad]
    wanted_b = [t for t in b.tensors if t.requires_grad]
    try:
        ones = [None if o.numel() == 1 else torch.ones_like(o) for o in (a.out, b.out)]
        grads = torch.autograd.grad([a.out, b.out], [*wanted_a, *wanted_b], grad_outputs=ones, retain_graph=True,
                                    allow_unused=True)
    except RuntimeError:
        return backward(a), backward(b)
    found = iter(grads)
    return (_ran(a, float64_array(a.out).reshape(-1), found), _ran(b, float64_array(b.out).reshape(-1), found))


def execute(call: Any, tensors: list[torch.Tensor], several: bool = False) -> Run:
    """Run `call`; its value flattened and torch's gradient of its sum (`several`: of each
    element on its own, the Jacobian's rows concatenated per input, as for a returned tuple)."""
    return backward(forward(call, tensors, several))


def execute_several(out: Any, tensors: list[torch.Tensor]) -> Run:
    """A returned tuple (or the translation's column that stands for one): its elements in order,
    each tensor's row-major, and torch's gradient of each element of each returned tensor."""
    elements = [e for v in tuples_out.flat(out) for e in (v.reshape(-1) if isinstance(v, torch.Tensor) else [v])]
    if not elements or not all(isinstance(e, torch.Tensor) for e in elements):
        return Run(None, None, "the function returned a value that is not a tensor", True)
    value = np.array([float(e.detach().to(torch.float64)) for e in elements])
    rows: list[list[np.ndarray]] = [[] for _ in tensors]
    for e in elements:
        if not e.requires_grad:
            return Run(value, None, "an output does not require grad", True)
        try:
            grads = torch.autograd.grad(e, tensors, retain_graph=True, allow_unused=True)
        except RuntimeError as err:
            return Run(value, None, str(err), True)
        for k, (g, t) in enumerate(zip(grads, tensors)):
            rows[k].append(np.zeros(t.numel()) if g is None else g.detach().to(torch.float64).cpu().numpy().reshape(-1))
    shapes = tuple(tuple(v.shape) if isinstance(v, torch.Tensor) else () for v in tuples_out.flat(out))
    return Run(value, tuple(np.concatenate(r) for r in rows), None, True, shapes)



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
