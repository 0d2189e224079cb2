"""What the two halves of the classifier share: the `Context` they read, the `Finding` they
return, and how a finding writes a number or a node.

`Context` holds, for one seed of one comparison, the lowered program, the exact sides and their
path, the dtype and tolerance, torch's autograd run, the path's adjoints (mathematical and
executed), the inputs no step reads, and the backward pass (computed once, shared with
`Comparison.backward`). `structural.Structural` reads the executed path from it,
`floating.FloatingPoint` the backward pass.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ..program import exact as ex
from ..program.custom import CUSTOM_OP
from ..sides import autograd as ag
from ..base.causes import Cause
from ..sides.ir import LoweredProgram
from ..program.extremes import extremes, is_large
from ..program.program import node_text, number
from ..sides.backward import Parting
from .point import ExactSides
from .reach import Reach
from .records import backward_of


def finite(v: Any) -> bool:
    """True where every element of a value (a number or a matrix) is finite."""
    return all(ex.is_finite(x) for x in ex.elements(v))


def fmt(v: Any) -> str:
    """A value as explanations write it: as the report's tables do (`program.number`); "none" for
    None; a matrix of more than a dozen values by its shape and extremes (`extremes.extremes`)."""
    if ex.is_mat(v) and is_large(v):
        return extremes(v, number)
    if ex.is_mat(v):
        return "[" + "; ".join(", ".join(fmt(x) for x in row) for row in v) + "]"
    return number(v)


def user_text(lowered: LoweredProgram, node: sp.Basic) -> str:
    """A node of the lowered program written in the user's own symbols."""
    return node_text(node, lowered.normalized.user_symbols) if isinstance(node, sp.Basic) else str(node)


@dataclass
class Finding:
    """One cause found for an entry: the node and line it cites, the fields its templates read,
    and which rounding hint applies (`hint_extra`), or the finding's own hint (`hint`) where it
    is particular to an op (torch's backward formula of a saturating op)."""

    cause: Cause
    node: sp.Basic | None
    line: int | None
    fields: dict[str, Any] = field(default_factory=dict)
    hint_extra: str = ""
    hint: str = ""


class Context:
    """What both halves of the classifier read for one seed (see the module's docstring)."""

    def __init__(self, cmp_lowered: LoweredProgram, exact: ExactSides, dtype: str, rtol: float,
                 run_: ag.AutogradRun, seed: Any = None) -> None:
        self.lowered = cmp_lowered
        self.exact = exact
        self.path = exact.path
        self.dtype = dtype
        self.rtol = rtol
        self.run = run_
        self.math_adj = self.path.adjoints("math", seed)
        read = {p for st in self.path.steps for p in st.parents}
        self.unread = {i for i in self.path.inputs if i not in read}  # inputs no step reads
        self.exe_adj = self.path.adjoints("executed", seed)
        self.seed = seed
        self.cache: dict[str, Any] | None = None  # the comparison's, when its backward pass has this seed

    @functools.cached_property
    def custom_steps(self) -> list[Any]:
        """The steps that call a user's torch.autograd.Function (read once for all entries)."""
        return [st for st in self.path.steps if st.op == CUSTOM_OP]

    @functools.cached_property
    def reach(self) -> Reach:
        """What each input (element) moves on the path (found once per input for all entries)."""
        return Reach(self.path)

    def backward_parting(self) -> Parting | None:
        """Where torch's backward pass first parts from the exact one (computed once, shared
        with `Comparison.backward` when the seeds agree)."""
        hit = self.cache.get("backward") if self.cache is not None else None
        if hit is None:
            hit = backward_of(self.lowered, self.path, self.dtype, self.rtol, ex.prec(), self.seed)
            if self.cache is not None:
                self.cache["backward"] = hit
        return hit.parting

    def node(self, n: sp.Basic | None) -> str:
        return user_text(self.lowered, n) if n is not None else "the output"
