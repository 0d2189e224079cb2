"""The autograd side: run the lowered torch program at the point and ask torch for gradients.

Inputs are tensors of the chosen dtype holding the point's exact binary values. torch errors
(in the forward pass or in backward, such as "element 0 of tensors does not require grad")
are recorded as data, never raised: the comparator turns them into a cause with a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .lowering import DTYPES, LoweredProgram


@dataclass(frozen=True, slots=True)
class AutogradRun:
    value: float | None  # the forward value in the dtype
    grads: tuple[float | None, ...]  # one per input (None where torch raised)
    error: str | None  # torch's message, if it raised


def run(lowered: LoweredProgram, values: Sequence[float], dtype: str, wrt: Sequence[int]) -> AutogradRun:
    """Forward and backward of the lowered program, as a user would run them."""
    torch_dtype = DTYPES[dtype]
    tensors = [torch.tensor(v, dtype=torch_dtype, requires_grad=(k in wrt)) for k, v in enumerate(values)]
    none = tuple(None for _ in values)
    try:
        out = lowered(*tensors)
    except Exception as err:  # torch's own message becomes data
        return AutogradRun(None, none, f"{type(err).__name__}: {err}")
    value = _float(out)
    targets = [tensors[k] for k in wrt]
    if not targets:
        return AutogradRun(value, none, None)
    try:
        grads = torch.autograd.grad(out, targets, allow_unused=True, materialize_grads=True)
    except Exception as err:
        return AutogradRun(value, none, f"{type(err).__name__}: {err}")
    result: list[float | None] = [None] * len(values)
    for k, g in zip(wrt, grads):
        result[k] = float(g)
    return AutogradRun(value, tuple(result), None)


def _float(out: object) -> float | None:
    try:
        return float(out.detach()) if isinstance(out, torch.Tensor) else float(out)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        return math.nan
