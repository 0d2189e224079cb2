"""`x.clone()` and `torch.clone(x)`: a copy of a tensor, the same values on the graph.

A copy is its argument to every side (torch's clone copies the values exactly and its backward
passes the gradient through unchanged); the source reader (`source_inplace`) tells a copy from the
leaf it copies, since an in-place change of a copy is allowed where one of the leaf is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

from .torch_values import Spelling


def _copy(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or set(kwargs) - {"memory_format"}:
        raise ValueError("clone takes the tensor only")
    return args[0]


COPY_SPELLINGS: Final[list[Spelling]] = [
    Spelling("Tensor.clone", "method", sp.ImmutableMatrix, _copy, "the same values (a copy: not a leaf)"),
    Spelling("torch.clone", "function", sp.ImmutableMatrix, _copy, "as Tensor.clone"),
]
