"""The dtype of each variable of the generated program, after a cast of a computed value.

A program runs in one dtype (`float64` or `float32`) until the user's code casts a computed value
(`y.float()`, `y.to(torch.float64)`: the `cast` op). From there torch runs every op on that value
in the cast's dtype, promoting as it does: among operands of rank >= 1 the widest dtype wins, a
0-d operand counts only where no operand has a rank (torch's type promotion). A constant the
reader made of a Python number broadcast over a tensor (`z + 1` read as z + OneMatrix, a
`ZeroMatrix`, an `Identity`, a scalar multiple of one) is a Python number to torch, which takes
the tensor's dtype: the generated program writes it in the program's dtype and casts it at its
use (`onematrix.to(torch.float32)`, exact: 0s, 1s and a Python float rounded as torch rounds it).

`DtypeBook.step` is told each step the lowering writes and returns its text with those casts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

_WIDTH: Final = {"float32": 0, "float64": 1}


class DtypeBook:
    """The variables whose dtype is not the program's, and the Python-number constants."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        self.dtypes: dict[str, str] = {}  # a variable -> its dtype, where that is not the program's
        self.weak: set[str] = set()  # variables that hold a Python number broadcast (`z + 1`)

    def step(self, op: str, name: str, param: Any, operands: Sequence[Any], args: Sequence[Any], text: str) -> str:
        """Record the dtype of `name = text` and return the text, a broadcast number cast where it meets
        a narrower tensor."""
        if op == "matconst":
            if text.startswith(("torch.ones(", "torch.zeros(", "torch.eye(")):  # a OneMatrix, ZeroMatrix, Identity
                self.weak.add(name)
            return text
        if op == "cast":
            if param != self.dtype:
                self.dtypes[name] = param
            return text
        if not self.dtypes:
            if args and all(a in self.weak for a in args if isinstance(a, str)) and any(isinstance(a, str) for a in args):
                self.weak.add(name)
            return text
        strong = [(a, o) for a, o in zip(args, operands) if isinstance(a, str) and a not in self.weak]
        if not strong:
            if any(isinstance(a, str) for a in args):
                self.weak.add(name)
            return text
        ranked = [a for a, o in strong if isinstance(o, (sp.MatrixBase, sp.MatrixExpr))] or [a for a, _ in strong]
        result = max((self.dtypes.get(a, self.dtype) for a in ranked), key=_WIDTH.__getitem__)
        if result == self.dtype:
            return text
        self.dtypes[name] = result
        for a in args:
            if isinstance(a, str) and a in self.weak:
                text = re.sub(rf"(?<![\w.]){re.escape(a)}(?!\w)", f"{a}.to(torch.{result})", text)
        return text
