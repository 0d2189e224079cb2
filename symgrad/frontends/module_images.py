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
import inspect
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import torch

from .source_state import Data, Refuse

_NORMS: Final = {torch.nn.BatchNorm2d: ("H, W", "0, 2, 3, 1", 4), torch.nn.BatchNorm3d: ("D, H, W", "0, 2, 3, 4, 1", 5)}


def is_image_layer(m: Any) -> bool:
    """torch's own `nn.BatchNorm2d` / `nn.BatchNorm3d` (a module of image batches symgrad does not read)."""
    return any(type(m) is k for k in _NORMS)


def _sentence(m: torch.nn.Module, x_name: str, shape: tuple[int, ...], label: str) -> str:
    """What the layer computes, why flattening is no fix, and what computes the same on a matrix."""
    spatial, order, _ = _NORMS[type(m)]
    name = type(m).__name__
    c = int(getattr(m, "num_features", 0))
    mode = "the batch's statistics (training)" if m.training else "the running buffers (eval mode)"
    return (f"`{x_name}` is data of shape {shape}, given to {label}, an `nn.{name}({c})`: "
            f"it normalises each of the {c} channels over the batch and the spatial dimensions "
            f"(N, {spatial}) with {mode}, and symgrad reads batch normalisation of an (n, C) matrix "
            "only (`nn.BatchNorm1d`), computing with tensors of rank 0, 1 and 2. Flattening the input "
            f"first is no fix: it would normalise each of the C*{spatial.replace(', ', '*')} features "
            "over the batch alone, another function.\nFix: compare the layers after it (pass its "
            f"output as data), or, for the same mathematics on a matrix, give `nn.BatchNorm1d({c})` the "
            f"input with its channels last, `{x_name}.permute({order}).reshape(-1, {c})` computed "
            "outside the function (one row per pixel).")


def refuse_image_layer(m: torch.nn.Module, x: Any, label: str, node: ast.AST) -> None:
    """A sentence for a torch module of image batches given rank-4 (rank-5) data, or given a
    tensor of another rank (torch's own error); nothing for any other module."""
    if not is_image_layer(m):
        return
    spatial, _, rank = _NORMS[type(m)]
    name = type(m).__name__
    c = int(getattr(m, "num_features", 0))
    if isinstance(x, Data) and x.array.ndim == rank:
        raise Refuse(node, _sentence(m, x.name, tuple(x.array.shape), label))
    dims = tuple(x.array.shape) if isinstance(x, Data) else None
    raise Refuse(node, f"{label[0].upper()}{label[1:]}, an `nn.{name}({c})`, takes a rank-{rank} batch (N, C, {spatial}); "
                       f"it is given {'data of shape ' + str(dims) if dims is not None else 'a tensor of rank 0, 1 or 2'} "
                       f"(torch raises: expected {rank}D input).\nFix: use `nn.BatchNorm1d({c})` for an (n, {c}) batch.")


@dataclass(frozen=True)
class GlobalImageLayer:
    """A module-level `nn.BatchNorm2d` the function calls (`BN(x)`), not an attribute of a module:
    its call is the layer's sentence, not the one for a module's hidden parameters."""

    module: torch.nn.Module
    name: str

    @property
    def label(self) -> str:
        return f"the module-level global `{self.name}`"

    def call(self, args: list[Any], node: ast.AST) -> Any:
        refuse_image_layer(self.module, args[0] if args else None, self.label, node)


def global_image_layer_sentence(fn: Any, arguments: Mapping[str, Any]) -> str | None:
    """Before the arguments are read (where a rank-4 argument would get the data-reshape sentence):
    the layer's sentence, for a function that calls a module-level `nn.BatchNorm2d` (3d) on a
    floating argument of its rank (`return BN(x).sum()`); None otherwise. Costs nothing unless an
    argument has rank >= 4."""
    big = {}
    for n, v in arguments.items():
        if isinstance(v, torch.Tensor) and v.ndim >= 4 and v.is_floating_point():
            big[n] = v
    if not big:
        return None
    fn = inspect.unwrap(fn)
    try:
        seen = inspect.getclosurevars(fn)
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (TypeError, OSError, SyntaxError):
        return None
    layers = {n: m for n, m in {**seen.globals, **seen.nonlocals}.items() if is_image_layer(m)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in layers and node.args:
            m, rank = layers[node.func.id], _NORMS[type(layers[node.func.id])][2]
            named = _rank_kept(node.args[0], big)
            if named is not None and big[named].ndim == rank:
                x = big[named]
                line = fn.__code__.co_firstlineno + node.lineno - 1
                where = f"{inspect.getsourcefile(fn) or '?'}".rsplit("/", 1)[-1] + f":{line}"
                return (f"{where} {ast.unparse(node)}: "
                        + _sentence(m, named, tuple(x.shape), GlobalImageLayer(m, node.func.id).label))
    return None


# Calls that keep their operand's shape (`torch.relu(x)`, `x.float()`), by their last name.
_SHAPE_KEPT: Final = frozenset({
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "sigmoid", "tanh", "abs", "exp", "log", "sqrt",
    "neg", "square", "clamp", "clip", "float", "double", "half", "contiguous", "clone", "detach", "softplus",
    "hardtanh", "mul", "add", "sub", "div", "pow"})


def _rank_kept(e: ast.AST, big: Mapping[str, Any]) -> str | None:
    """The rank-4 (rank-5) argument an expression is computed from element by element, keeping
    its shape (`x`, `x * 2`, `-x`, `torch.relu(x + 1)`, `x.float()`), or None where the expression
    may have another shape (a reshape, a reduction, an index, a name that is not such an argument)."""
    if isinstance(e, ast.Name):
        return e.id if e.id in big else None
    if isinstance(e, ast.UnaryOp):
        return _rank_kept(e.operand, big)
    if isinstance(e, ast.BinOp) and not isinstance(e.op, ast.MatMult):
        sides = [_rank_kept(side, big) if not isinstance(side, ast.Constant) else "" for side in (e.left, e.right)]
        named = [n for n in sides if n]
        return named[0] if named and None not in sides else None
    if isinstance(e, ast.Call) and all(isinstance(k.value, ast.Constant) for k in e.keywords):
        f = e.func
        last = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if last not in _SHAPE_KEPT:
            return None
        rest = [a for a in e.args if not isinstance(a, ast.Constant)]
        if isinstance(f, ast.Attribute) and isinstance(f.value, (ast.Name, ast.Call, ast.BinOp, ast.UnaryOp)) \
                and _rank_kept(f.value, big) is not None:  # a method: `x.float()`, `(x * 2).relu()`
            return _rank_kept(f.value, big) if not rest else None
        if len(rest) == 1 and not isinstance(f, ast.Attribute) or len(rest) == 1 and _rank_kept(f.value, big) is None:
            return _rank_kept(rest[0], big)  # `torch.relu(x)`, `F.relu(x * 2)`
    return None
