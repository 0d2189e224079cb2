"""torch's modules of image batches (rank-4 tensors, (N, C, H, W)), which symgrad does not read: one
sentence each that says what the module computes, why flattening first is no fix, and what is.

`nn.BatchNorm2d(C)` normalises each of the C channels over the batch and both spatial dimensions
(N, H, W): flattening the input first (the fix symgrad gives other layers of rank-4 data) would
normalise each of the C*H*W features over the batch alone, another function. The same mathematics
on a matrix is `nn.BatchNorm1d(C)` of the input with its channels last, `x.permute(0, 2, 3,
1).reshape(-1, C)`: N*H*W rows, one per pixel, whose column statistics are the channel's.
`nn.BatchNorm3d` is the same over (N, D, H, W).
"""

from __future__ import annotations

import ast
from typing import Any, Final

import torch

from .source_state import Data, Refuse

_NORMS: Final = {torch.nn.BatchNorm2d: ("H, W", "0, 2, 3, 1", 4), torch.nn.BatchNorm3d: ("D, H, W", "0, 2, 3, 4, 1", 5)}


def refuse_image_layer(m: torch.nn.Module, x: Any, label: str, node: ast.AST) -> None:
    """A sentence for a torch module of image batches given rank-4 (rank-5) data, or given a
    tensor of another rank (torch's own error); nothing for any other module."""
    spec = next((v for k, v in _NORMS.items() if type(m) is k), None)
    if spec is None:
        return
    spatial, order, rank = spec
    name = type(m).__name__
    c = int(getattr(m, "num_features", 0))
    mode = "the batch's statistics (training)" if m.training else "the running buffers (eval mode)"
    if isinstance(x, Data) and x.array.ndim == rank:
        raise Refuse(node, f"`{x.name}` is data of shape {tuple(x.array.shape)}, given to {label}, an `nn.{name}({c})`: "
                           f"it normalises each of the {c} channels over the batch and the spatial dimensions "
                           f"(N, {spatial}) with {mode}, and symgrad reads batch normalisation of an (n, C) matrix "
                           "only (`nn.BatchNorm1d`), computing with tensors of rank 0, 1 and 2. Flattening the input "
                           f"first is no fix: it would normalise each of the C*{spatial.replace(', ', '*')} features "
                           "over the batch alone, another function.\nFix: compare the layers after it (pass its "
                           f"output as data), or, for the same mathematics on a matrix, give `nn.BatchNorm1d({c})` the "
                           f"input with its channels last, `{x.name}.permute({order}).reshape(-1, {c})` computed "
                           "outside the function (one row per pixel).")
    dims = tuple(x.array.shape) if isinstance(x, Data) else None
    raise Refuse(node, f"{label[0].upper()}{label[1:]}, an `nn.{name}({c})`, takes a rank-{rank} batch (N, C, {spatial}); "
                       f"it is given {'data of shape ' + str(dims) if dims is not None else 'a tensor of rank 0, 1 or 2'} "
                       f"(torch raises: expected {rank}D input).\nFix: use `nn.BatchNorm1d({c})` for an (n, {c}) batch.")
