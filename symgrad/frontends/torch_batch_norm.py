"""`torch.nn.functional.batch_norm` read as `nn.BatchNorm1d` is (read10, item 2): the spelling,
appended to the table's `_SPELLINGS` by `torch_names` (as `torch_shapes.SHAPE_SPELLINGS` is).

    F.batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
                 momentum=0.1, eps=1e-05)

of an (n, C) batch `x` is the matrix of fused `batch_norm` nodes (`program/normalization`), each
element (x_ij - mean_j)/sqrt(var_j + eps)*w_j + b_j, lowered to torch's own call. With
training=False the running mean and variance are constants (buffers: torch gives them no
gradient); with training=True mean and var are the batch's (the biased variance), and the running
buffers, which torch updates in place, are no part of the function; every run symgrad makes of the
user's function leaves them as they were (`user_tensors`: after `sg.compare` or `sg.trace` they hold
their values before it, bit for bit, never one or several calls' worth of updates). `weight`/`bias` (both or
neither, rank 1 of length C) may be inputs. What torch refuses (a missing running buffer in
evaluation, one row in training, another shape) and what symgrad does not read (a running buffer
that is a differentiated value, an (N, C, L) input) are sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from ..program.normalization import batch_norm
from .torch_values import Spelling, is_matrix, rank1, shape

_NAME: Final = "torch.nn.functional.batch_norm"
_ORDER: Final = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
_DEFAULTS: Final = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-05}


def _torch_shape(v: Any) -> tuple[int, ...]:
    if not is_matrix(v):
        return ()
    rows, cols = shape(v)  # type: ignore[misc]
    return (rows,) if cols == 1 and rank1(v) is True else (rows, cols)


def _column(v: Any, c: int, what: str) -> list[Any]:
    """The C elements of a rank-1 tensor of length C (weight, bias, a running buffer)."""
    if not is_matrix(v) or shape(v) != (c, 1) or rank1(v) is False:  # (a constant rounded: rank 1 unknown)
        given = _torch_shape(v) or "a number"
        raise UnsupportedNodeError(
            f"`F.batch_norm`'s {what} must be a rank-1 tensor of length {c} (one per feature of the (n, {c}) "
            f"batch); here it is {given} (torch raises for another shape).\nFix: pass a tensor of shape ({c},).")
    return [v[k, 0] if isinstance(v, sp.MatrixBase) else MatrixElement(v, k, 0) for k in range(c)]


def _functional_batch_norm(a: Sequence[Any], k: dict[str, Any]) -> Any:
    extra = set(k) - set(_ORDER)
    if len(a) > len(_ORDER) or extra:
        raise UnsupportedNodeError(f"`F.batch_norm` takes {', '.join(_ORDER)}; this call passes "
                                   f"{', '.join(sorted(extra)) or 'more arguments'}.\nFix: call it as torch documents it.")
    given = {**_DEFAULTS, **dict(zip(_ORDER, a)), **k}
    x = given.get("input")
    dims = _torch_shape(x)
    if len(dims) != 2:
        raise UnsupportedNodeError(
            f"`F.batch_norm` is read for an (n, C) batch, one column per feature; here the input has shape "
            f"{dims or '() (a number)'} (an (N, C, L) input has rank 3, which symgrad does not read).\n"
            "Fix: pass a batch of shape (n, C).")
    n, c = dims
    training, eps = given["training"], given["eps"]
    if isinstance(training, sp.logic.boolalg.BooleanAtom):
        training = bool(training)
    if not isinstance(training, bool) or not isinstance(eps, (int, float, sp.Number)) or isinstance(eps, bool) \
            or not isinstance(given["momentum"], (int, float, sp.Number, type(None))):
        raise UnsupportedNodeError("`F.batch_norm`'s training must be True or False and its eps a number, as Python "
                                   "decides them.\nFix: pass them as constants.")
    if training and n == 1:
        raise UnsupportedNodeError(
            "`F.batch_norm` with training=True normalises with the batch's statistics, and this batch has one row: "
            "torch raises 'Expected more than 1 value per channel when training'.\nFix: pass a batch of two or more "
            "rows, or training=False with running statistics.")
    w, b = given["weight"], given["bias"]
    if (w is None) != (b is None):
        raise UnsupportedNodeError(
            "`F.batch_norm` is read with both weight and bias or neither (nn.BatchNorm1d's affine=True or "
            "False); this call passes one.\nFix: pass both (a bias of zeros, a weight of ones for the one left out).")
    wb = [] if w is None else [*_column(w, c, "weight"), *_column(b, c, "bias")]
    stats: list[Any] = []
    if not training:
        for what in ("running_mean", "running_var"):
            v = given.get(what)
            if v is None:
                raise UnsupportedNodeError(
                    f"`F.batch_norm` with training=False normalises with the running statistics, and {what} is "
                    "None: torch raises.\nFix: pass the running mean and variance, or training=True to use the "
                    "batch's statistics.")
            elements = _column(v, c, what)
            if any(getattr(e, "free_symbols", None) for e in elements):
                raise UnsupportedNodeError(
                    f"`F.batch_norm`'s {what} is a value symgrad differentiates (an input, or computed from one): "
                    "torch gives the running statistics no gradient (they are buffers).\nFix: pass them as "
                    "constants, e.g. a tensor made outside the function, or `.detach()` them.")
            stats += [sp.Float(float(e)) for e in elements]
    affine = int(w is not None)
    xs = [MatrixElement(x, i, j) for i in range(n) for j in range(c)]
    head = (n, c, int(training), sp.Float(float(eps)), affine)
    return sp.ImmutableMatrix(n, c, [batch_norm(i, j, *head, *xs, *wb, *stats) for i in range(n) for j in range(c)])


BATCH_NORM_SPELLINGS: Final = [
    Spelling(_NAME, "function", batch_norm, _functional_batch_norm,
             "of an (n, C) batch, as nn.BatchNorm1d reads: training=False with the running statistics as "
             "constants, training=True with the batch's (biased variance); weight and bias both or neither"),
]
