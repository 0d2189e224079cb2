"""The values the torch front end builds, and one row of its spelling table.

A traced tensor of rank >= 1 is a SymPy matrix node (`is_matrix`, `shape`); a rank-1 tensor of
length n is written as an (n, 1) column, and `rank1` tells whether torch holds a value as rank 1
(it broadcasts as a row beside a matrix). `Spelling` is the schema of a row of `torch_names`'
table; the builders of that table (`torch_names`, `torch_shapes`) stand on these.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sympy as sp
import torch
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from ..base.errors import UnsupportedNodeError
from ..program.elementwise import Elementwise, MatrixPiecewise

Kind = Literal["operator", "function", "method", "attribute"]
Build = Callable[[Sequence[Any], dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Spelling:
    """One way torch spells an operation, and the SymPy node it becomes."""

    name: str
    kind: Kind
    rule: type[sp.Basic]
    build: Build
    note: str = ""

    def node(self, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """The SymPy node of this op applied to `args`, as the user wrote it: SymPy evaluates
        nothing, so it never folds the op away (`a - a` is not 0, `t * (x / t)` not x, `exp(log(x))`
        not x, `(x * 3) * 5` not `15 * x`), which would leave another value or no gradient."""
        with sp.evaluate(False):
            return self.build(args, numpy_aliases(self.name, kwargs))


# torch's argument parser reads numpy's names as its own for every op written in C++:
# `A.sum(axis=1, keepdims=True)` is `A.sum(dim=1, keepdim=True)` (D2L writes both).
_NUMPY_NAMES = {"axis": "dim", "keepdims": "keepdim"}


@functools.lru_cache(maxsize=None)
def _native(name: str) -> bool:
    """`torch.sum`, `Tensor.sum`: an op whose arguments torch's C++ parser reads (a Python-level
    one, `torch.norm`, raises TypeError for `axis=`)."""
    obj: Any = torch.Tensor if name.startswith("Tensor.") else torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part, None)
    return type(obj).__name__ in ("builtin_function_or_method", "method_descriptor")


def numpy_aliases(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """kwargs with `axis=` read as `dim=` and `keepdims=` as `keepdim=`, where torch reads them so."""
    if not any(key in _NUMPY_NAMES for key in kwargs) or not _native(name):
        return kwargs
    for numpy_name, own in _NUMPY_NAMES.items():
        if numpy_name in kwargs and own in kwargs:
            raise UnsupportedNodeError(
                f"`{name.replace('Tensor.', 'x.')}` is given both {own}= and {numpy_name}=, which torch reads as "
                f"one argument (it raises TypeError).\nFix: write only `{own}=`.")
    return {_NUMPY_NAMES.get(key, key): value for key, value in kwargs.items()}


# --------------------------------------------------------------------------- torch's own Max and Min

# Max(x, 0) is relu, torch.clamp(x, min=0) and torch.maximum(x, zeros) alike for the mathematics,
# but the three have different gradients at the kink (0, 1 and 1/2). A node read from torch code
# keeps the op the user called: these subclasses are Max and Min for every rule (the MRO finds
# `RULES[Max]`), and `torch_op` tells the lowering which torch op to emit.


class maximum(sp.Max):
    """`torch.maximum(a, b)`: Max(a, b), lowered as torch.maximum (a tie splits 1/2 : 1/2)."""

    torch_op = "maximum"


class minimum(sp.Min):
    """`torch.minimum(a, b)`: Min(a, b), lowered as torch.minimum (a tie splits 1/2 : 1/2)."""

    torch_op = "minimum"


class clamp_min(sp.Max):
    """`torch.clamp(u, min=c)`: Max(u, c), lowered as torch.clamp (gradient 1 at u = c)."""

    torch_op = "clamp_min"


class clamp_max(sp.Min):
    """`torch.clamp(u, max=c)`: Min(u, c), lowered as torch.clamp (gradient 1 at u = c)."""

    torch_op = "clamp_max"


def is_matrix(v: Any) -> bool:
    """A matrix-valued SymPy node (a traced tensor of rank >= 1)."""
    return isinstance(v, (sp.MatrixExpr, sp.MatrixBase))


def shape(v: Any) -> tuple[int, int] | None:
    return (int(v.shape[0]), int(v.shape[1])) if is_matrix(v) else None


def as_scalar(v: Any) -> Any:
    return sp.sympify(v)


# The inputs that are rank-1 tensors (read as (n, 1) columns), while a function is translated.
RANK1: contextvars.ContextVar[frozenset[sp.Basic]] = contextvars.ContextVar("rank1", default=frozenset())
# The inner nodes a composite spelling made, in the order torch's kernel makes them (F.kl_div makes
# `target * input` before `xlogy(target, target)`): the source reader notes them first (sides/order.py).
MADE_FIRST: contextvars.ContextVar[tuple[sp.Basic, ...]] = contextvars.ContextVar("made_first", default=())


def rank1(v: Any) -> bool | None:
    """Whether torch holds `v` as a rank-1 tensor (True), as a 2-D one (False), or symgrad cannot
    tell (None: a scalar broadcast, a matrix built from elements). symgrad writes a rank-1 tensor
    of length n as an (n, 1) column; torch broadcasts it as a row."""
    if isinstance(v, sp.MatrixSymbol):
        return v in RANK1.get()
    if v in RANK1.get():  # a constant, an index's or a reduction's rank-1 result (`X.sum(1)`)
        return True
    if isinstance(v, (sp.MatAdd, sp.HadamardProduct)):
        states = {rank1(a) for a in v.args if is_matrix(a)} - {None}
        return states.pop() if len(states) == 1 else None
    if isinstance(v, sp.MatMul):
        if any(isinstance(a, sp.OneMatrix) for a in v.args):
            return None  # a broadcast (`ones(m, 1) * b`): as the operand it meets, ((6, 1) + (1,) is 2-D)
        mats = [a for a in v.args if is_matrix(a) and not isinstance(a, sp.OneMatrix)]
        return rank1(mats[-1]) if mats and mats[-1].shape[1] == 1 else None
    if isinstance(v, sp.HadamardPower):
        return rank1(v.base)
    if isinstance(v, ElementwiseApplyFunction):
        return rank1(v.expr)
    if isinstance(v, (Elementwise, MatrixPiecewise)):  # as its operands (its branches) lie
        parts = v.operands if isinstance(v, Elementwise) else [value for value, _ in v.args]
        states = {rank1(a) for a in parts} - {None}
        return states.pop() if len(states) == 1 else None
    return None
