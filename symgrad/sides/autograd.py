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
def torch_state(dtype: str | None = None) -> Iterator[None]:
    """The torch state symgrad's own runs need, whatever the user's is, restored exactly after.

    A user may call symgrad inside `torch.no_grad()`, `torch.inference_mode()` or with anomaly
    detection on, or after `torch.set_default_dtype(torch.float32)`. None of that may change a
    verdict: inside, gradients are recorded, inference mode is off, anomaly detection is off (it
    would turn an overflow's NaN into an exception) and the default dtype is the run's `dtype`
    (float64 when none is given). symgrad names its dtypes; torch's own backward formulas do
    not always: the backward of `torch.linalg.det` at a singular float32 matrix makes a tensor
    of the default dtype and raises ("Expected LU and B to have the same dtype") when that is
    float64. On exit, also when an exception escapes, every setting is the user's again.
    """
    # The default dtype and anomaly mode are process-wide: one thread at a time saves and
    # restores them, or two threads would restore each other's settings.
    with _STATE_LOCK:
        default = torch.get_default_dtype()
        try:
            with torch.inference_mode(False), torch.enable_grad(), torch.autograd.set_detect_anomaly(False):
                torch.set_default_dtype(DTYPES[dtype] if dtype in DTYPES else torch.float64)
                yield
        finally:
            torch.set_default_dtype(default)


_STATE_LOCK = threading.RLock()


def in_torch_state(fn: _F) -> _F:
    """`fn` run inside `torch_state(dtype)`, with `fn`'s own `dtype` argument."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            dtype = bound.arguments.get("dtype")
        except TypeError:
            dtype = None
        with torch_state(dtype if isinstance(dtype, str) else None):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class AutogradRun:
    value: Any  # the forward value in the dtype (a float, or an array for a matrix output)
    grads: list[list[Any]]  # [output][input]: a float or an array (None where torch raised)
    error: str | None  # torch's message, if it raised


@in_torch_state
def run(lowered: LoweredProgram, values: Sequence[Any], dtype: str, wrt: Sequence[int], v: Any = None) -> AutogradRun:
    """Forward and backward of the lowered program, as a user would run them: `torch.autograd.grad`
    of a scalar output, of each element of a matrix output, or with `grad_outputs=v`."""
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
        for target, weights in asks:
            if target is None:
                got = tuple(torch.zeros_like(t) if g is None else g
                            for g, t in zip(outputs.grads_of_elements(elements, weights, targets), targets))
            else:
                got = torch.autograd.grad(target, targets, grad_outputs=weights, retain_graph=True,
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
