"""A module-level `nn.LayerNorm` the function reads from outside (`norm = nn.LayerNorm(C,
elementwise_affine=False)`; issue 20): with no parameters it is a function, F.layer_norm of its
normalized_shape and eps, as a loss module made outside is (`loss_modules.LossObject`). One with
a weight and bias (parameters that require grad) is the source reader's sentence for any module
read from outside: its parameters are hidden state; pass the module as an argument.
"""

from __future__ import annotations

import ast
from typing import Any

import torch

from . import torch_names as tn
from .module_images import GlobalImageLayer, is_image_layer
from .source_state import Bound, Refuse


def is_plain_layer_norm(obj: Any) -> bool:
    """torch's own nn.LayerNorm (its forward, not a subclass's) with no parameters."""
    return (isinstance(obj, torch.nn.LayerNorm) and type(obj).forward is torch.nn.LayerNorm.forward
            and not any(True for _ in obj.parameters()))


class GlobalLayerNorm(Bound):
    """`norm(x)` of a module-level nn.LayerNorm without parameters: F.layer_norm(x, shape, eps=eps)."""

    def __init__(self, module: torch.nn.LayerNorm, name: str) -> None:
        self.module = module
        self.name = name

    def attribute(self, name: str, node: ast.AST) -> Any:
        raise Refuse(node, f"`{self.name}.{name}`: symgrad reads a module-level nn.LayerNorm by calling it, "
                           f"`{self.name}(x)`.\nFix: call it, or pass the module as an argument.")

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        if len(args) != 1 or kwargs:
            raise Refuse(node, f"`{self.name}` (an nn.LayerNorm) takes one tensor.\nFix: call it as `{self.name}(x)`.")
        m = self.module
        return calls.apply(tn.SPELLINGS["torch.nn.functional.layer_norm"],
                           [args[0], tuple(m.normalized_shape), None, None, float(m.eps)], {}, node, target)


def global_layer(obj: Any, name: str) -> Bound | GlobalImageLayer | None:
    """What a module-level layer is where the source reader meets its name: a module-level
    nn.BatchNorm2d (its own sentence where it is called, `module_images`), a parameter-less
    nn.LayerNorm (a function); None for any other object."""
    if is_image_layer(obj):
        return GlobalImageLayer(obj, name)
    if is_plain_layer_norm(obj):
        return GlobalLayerNorm(obj, name)
    return None
