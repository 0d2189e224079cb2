"""The autograd side: run the lowered torch program at the point and ask torch for gradients.

Inputs are tensors of the chosen dtype holding the point's exact binary values. torch errors
(in the forward pass or in backward, such as "element 0 of tensors does not require grad")
are recorded as data, never raised: the comparator turns them into a cause with a sentence.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

import torch

from . import outputs
from .ir import LoweredProgram
from .lowering import DTYPES

_F = TypeVar("_F", bound=Callable[..., Any])


@contextlib.contextmanager
def torch_state(dtype: str | None = None, *, keep_default_dtype: bool = False) -> Iterator[None]:
    """The torch state symgrad's own runs need, whatever the user's is, restored exactly after.

    A user may call symgrad inside `torch.no_grad()`, `torch.inference_mode()` or with anomaly
    detection on, or after `torch.set_default_dtype(torch.float32)`. None of that may change a
    verdict: inside, gradients are recorded, inference mode is off, anomaly detection is off (it
    would turn an overflow's NaN into an exception, and print torch's warning to the user) and
    the default dtype is the run's `dtype` (float64 when none is given). symgrad names its
    dtypes; torch's own backward formulas do not always: the backward of `torch.linalg.det` at a
    singular float32 matrix makes a tensor of the default dtype and raises ("Expected LU and B to
    have the same dtype") when that is float64. On exit, also when an exception escapes, every
    setting is the user's again.

    `keep_default_dtype`: the user's own code runs (the fidelity check's): its constructors
    (`torch.tensor(0.1)`, `torch.zeros(3)`) make tensors of the user's default dtype, as they do
    when the user runs it, so the default dtype stays the user's; the rest is pinned as above.
    """
    # The default dtype and anomaly mode are process-wide: one thread at a time saves and
    # restores them, or two threads would restore each other's settings.
    # Each setting is changed only where the user's differs (a check enters this state several
    # times, and three context managers cost more than the settings they would set), and every
    # one is put back on exit, also where code run inside changed it.
    with _STATE_LOCK:
        default = torch.get_default_dtype()
        grad = torch.is_grad_enabled()
        anomaly, check_nan = torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()
        inference = torch.inference_mode(False) if torch.is_inference_mode_enabled() else None
        if inference is not None:
            inference.__enter__()
        try:
            if not torch.is_grad_enabled():
                torch.set_grad_enabled(True)
            if anomaly:
                torch.set_anomaly_enabled(False, check_nan)
            wanted = default if keep_default_dtype else DTYPES[dtype] if dtype in DTYPES else torch.float64
            if wanted != default:
                torch.set_default_dtype(wanted)
            yield
        finally:
            if torch.get_default_dtype() != default:
                torch.set_default_dtype(default)
            if torch.is_anomaly_enabled() != anomaly or torch.is_anomaly_check_nan_enabled() != check_nan:
                torch.set_anomaly_enabled(anomaly, check_nan)
            if torch.is_grad_enabled() != grad:
                torch.set_grad_enabled(grad)
            if inference is not None:
                inference.__exit__(None, None, None)


_STATE_LOCK = threading.RLock()


def in_torch_state(fn: _F) -> _F:
    """`fn` run inside `torch_state(dtype)`, with `fn`'s own `dtype` argument (found by its place
    in the signature, once, not bound again per call)."""
    params = list(inspect.signature(fn).parameters.values())
    index = next((k for k, p in enumerate(params) if p.name == "dtype"), None)
    fallback = None if index is None or params[index].default is inspect.Parameter.empty else params[index].default

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if index is None:
            dtype = None
        elif "dtype" in kwargs:
            dtype = kwargs["dtype"]
        else:
            dtype = args[index] if len(args) > index else fallback
        with torch_state(dtype if isinstance(dtype, str) else None):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class AutogradRun:
    value: Any  # the forward value in the dtype (a float, or an array for a matrix output)
    grads: list[list[Any]]  # [output][input]: a float or an array (None where torch raised)
    error: str | None  # torch's message, if it raised


@dataclass(frozen=True, slots=True)
class Prerun:
    """A forward and backward run of a lowered program already made at a point, inside
    `torch_state(dtype)`, with every input requiring grad: the fidelity check's run of a
    translation (`frontends/trace.py`). `run` answers from it, instead of running the program
    again, only where it is the same question: the same lowered program (the object itself), the
    same dtype, the same input values bit for bit, a scalar output, no `v`."""

    lowered: LoweredProgram
    dtype: str
    values: tuple[np.ndarray, ...]  # each input of `lowered.symbols` as run, in the dtype
    value: float  # the output (a 0-d tensor), as a float
    grads: tuple[np.ndarray | None, ...]  # torch's gradient per input, flattened; None where nothing reached it


def run(lowered: LoweredProgram, values: Sequence[Any], dtype: str, wrt: Sequence[int], v: Any = None,
        prerun: Prerun | None = None) -> AutogradRun:
    """Forward and backward of the lowered program, as a user would run them: `torch.autograd.grad`
    of a scalar output, of each element of a matrix output, or with `grad_outputs=v`. `prerun`:
    a run already made (`Prerun`), used where it answers exactly this call."""
    if prerun is not None and v is None:
        reused = _reused(prerun, lowered, values, dtype, wrt)
        if reused is not None:
            return reused
    with torch_state(dtype):
        return _run(lowered, values, dtype, wrt, v)


def _reused(prerun: Prerun, lowered: LoweredProgram, values: Sequence[Any], dtype: str,
            wrt: Sequence[int]) -> AutogradRun | None:
    """The run `run` would make, read from `prerun`; None where it is another question.

    A run with only `wrt` requiring grad computes each of their gradients by the same backward
    formulas as the prerun, where every input required grad. It differs in one way: where no
    input of `wrt` reaches the output, the output does not require grad and torch raises ("element
    0 of tensors does not require grad"), an autograd graph break; that is run again for real."""
    if prerun.lowered is not lowered or prerun.dtype != dtype or lowered.separate_outputs:
        return None
    if len(values) != len(prerun.values) or not all(_same_values(x, ran, dtype)
                                                     for x, ran in zip(values, prerun.values)):
        return None
    if not wrt:
        return AutogradRun(prerun.value, [], None)
    if len(wrt) < len(values) and all(prerun.grads[k] is None for k in wrt):
        return None
    row: list[Any] = [None] * len(values)
    for k in wrt:
        shape = prerun.values[k].shape
        g = prerun.grads[k]
        g = np.zeros(shape) if g is None else g.astype(np.float64).reshape(shape)
        row[k] = float(g) if g.ndim == 0 else g
    return AutogradRun(prerun.value, [row], None)


def _same_values(x: Any, ran: np.ndarray, dtype: str) -> bool:
    """Whether the input value `x`, made a tensor of `dtype` as `run` makes it, is `ran` bit for bit."""
    if ran.dtype != NUMPY_DTYPES.get(dtype):
        return False
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a float32 run rounds 1e300 to inf, as torch does
            mine = np.asarray(x, dtype=np.float64).astype(ran.dtype)
    except (TypeError, ValueError):
        return False
    return mine.shape == ran.shape and mine.tobytes() == ran.tobytes()


NUMPY_DTYPES = {"float64": np.dtype(np.float64), "float32": np.dtype(np.float32)}


def _run(lowered: LoweredProgram, values: Sequence[Any], dtype: str, wrt: Sequence[int], v: Any = None) -> AutogradRun:
    torch_dtype = DTYPES[dtype]
    tensors = [torch.tensor(x, dtype=torch_dtype, requires_grad=(k in wrt)) for k, x in enumerate(values)]
    try:
        out, elements = outputs.call(lowered, *tensors)
    except Exception as err:  # torch's own message becomes data
        return AutogradRun(None, [], f"{type(err).__name__}: {err}")
    value = _value(out)
    targets = [tensors[k] for k in wrt]
    if not targets:
        return AutogradRun(value, [], None)
    if elements is not None:  # a returned tuple: each element on its own, never through the stack
        weights_of = [np.asarray(v, dtype=np.float64).reshape(-1)] if v is not None else \
            [np.eye(len(elements))[k] for k in range(len(elements))]
        asks: list[tuple[Any, Any]] = [(None, w) for w in weights_of]
    elif v is not None:
        asks = [(out, torch.tensor(v, dtype=torch_dtype))]
    elif isinstance(out, torch.Tensor) and out.ndim > 0:
        asks = [(out[idx], None) for idx in np.ndindex(*out.shape)]
    else:
        asks = [(out, None)]
    grads: list[list[Any]] = []
    try:
        for ask, (target, weights) in enumerate(asks):
            if target is None:
                got = tuple(torch.zeros_like(t) if g is None else g
                            for g, t in zip(outputs.grads_of_elements(elements, weights, targets), targets))
            else:
                # the graph is freed as the last backward pass goes (a loop's is the size of the loop)
                got = torch.autograd.grad(target, targets, grad_outputs=weights, retain_graph=ask + 1 < len(asks),
                                          allow_unused=True, materialize_grads=True)
            row: list[Any] = [None] * len(values)
            for k, g in zip(wrt, got):
                row[k] = float(g) if g.ndim == 0 else g.detach().numpy().astype(np.float64)
            grads.append(row)
    except Exception as err:
        return AutogradRun(value, [], f"{type(err).__name__}: {err}")
    return AutogradRun(value, grads, None)


def _value(out: object) -> Any:
    if isinstance(out, torch.Tensor):
        out = out.detach()
        return float(out) if out.ndim == 0 else out.numpy().astype(np.float64)
    try:
        return float(out)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


@in_torch_state
def hessian(lowered: LoweredProgram, values: Sequence[Any], dtype: str, wrt: Sequence[int]) -> tuple[AutogradRun, dict[int, str]]:
    """The Hessian by double backward (`create_graph=True`). A first derivative that is a
    constant has no graph, and torch raises when asked for its derivative: that row is 0,
    and torch's message is returned beside it."""
    torch_dtype = DTYPES[dtype]
    tensors = [torch.tensor(x, dtype=torch_dtype, requires_grad=(k in wrt)) for k, x in enumerate(values)]
    raised: dict[int, str] = {}
    try:
        out = lowered(*tensors)
        first = torch.autograd.grad(out, [tensors[k] for k in wrt], create_graph=True, allow_unused=True,
                                    materialize_grads=True)
    except Exception as err:
        return AutogradRun(None, [], f"{type(err).__name__}: {err}"), raised
    rows: dict[int, dict[int, Any]] = {}
    for a, g in zip(wrt, first):
        row: dict[int, Any] = {}
        try:
            second = torch.autograd.grad(g, [tensors[k] for k in wrt], retain_graph=True, allow_unused=True,
                                         materialize_grads=True)
            for b, h in zip(wrt, second):
                row[b] = float(h)
        except RuntimeError as err:
            raised[a] = f"{type(err).__name__}: {err}"
            for b in wrt:
                row[b] = 0.0
        rows[a] = row
    return AutogradRun(_value(out), [rows], None), raised  # type: ignore[list-item]
