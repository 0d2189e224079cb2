"""What `torch.empty(shape)` reads as (`source_fills`): a shape whose values torch does not set, read
only as the tensor a draw fills; its values read before that (an operation, an index, an element
assigned into it) are one sentence naming the line that made it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Final

from .source_state import Refuse

_UNFILLED_USE: Final = ("`{spelling}` at {where} makes a tensor whose values are whatever memory held (torch does not "
                        "set them), and they are read here before a draw fills it.\nFix: fill it first "
                        "(`.uniform_(a, b)`, `.normal_(m, s)`, `torch.nn.init.uniform_(w)`), or use `torch.zeros` "
                        "if zeros are meant; to set it element by element, build it out of place "
                        "(`torch.stack([...])`) or start from `torch.zeros`.")


@dataclass(frozen=True)
class Unfilled:
    """What `torch.empty(shape)` reads as: only a shape, until a draw fills it."""

    shape: tuple[int, ...]
    spelling: str
    where: str
    requires_grad: bool = False

    def refuse(self, node: ast.AST) -> Refuse:
        return Refuse(node, _UNFILLED_USE.format(spelling=self.spelling, where=self.where))
