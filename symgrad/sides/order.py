"""The order in which the user's code made a matrix expression's nodes.

A function of matrix inputs is read as one SymPy expression, and an expression has no order:
the lowering would write each node when the recursion first meets it (the first term's operands
first). torch's autograd adds the gradients of a tensor's several uses in the order its backward
runs them, which is the reverse of the order the forward made the uses in. With three or more uses
(`O_exp`, `O_sum`, `probs` and `log_probs` of a softmax each read twice) another order of the
additions is other floats in the last bit, and the fidelity check (rightly, bit for bit) refuses the
translation. So the torch source reader remembers here the order the user's code made the nodes in
(`remember`), and the lowering writes the steps in that order (`of`): every step the user made,
where the user made it.

The order is advice, never meaning: an expression lowered without one (a SymPy input, another
reading) computes the same values, possibly with other last bits of an accumulated gradient.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

# A node, and the making of each operand it reads ((operand, 0) for the first making)
Making = tuple[sp.Basic, tuple[tuple[sp.Basic, int], ...]]

_LIMIT = 256  # readings remembered (as many as lowered programs are cached)
_ORDERS: OrderedDict[sp.Basic, tuple[Making, ...]] = OrderedDict()


def remember(expr: sp.Basic, nodes: tuple[Making, ...]) -> None:
    """The nodes of `expr` in the order the user's code made them, a node made twice twice, each with
    the makings it reads (the latest reading of an equal expression wins)."""
    _ORDERS[expr] = nodes
    _ORDERS.move_to_end(expr)
    while len(_ORDERS) > _LIMIT:
        _ORDERS.popitem(last=False)


def of(expr: object) -> tuple[Making, ...]:
    """The remembered order of `expr`'s nodes, or () for an expression no reading made."""
    if not isinstance(expr, sp.Basic):
        return ()
    return _ORDERS.get(expr, ())


@dataclass
class Makings:
    """The lowering's record of the makings: each making's operand (in the user's order), and the
    makings the node being written reads."""

    versions: dict[sp.Basic, list[Any]] = field(default_factory=dict)
    reading: list[tuple[sp.Basic, int]] = field(default_factory=list)

    def read(self, operands: tuple[sp.Basic, ...], args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Each operand the user made more than once read from the making the user's op read
        (`a = x*W; b = x*W; a + f(b)`: the first product and f of the second), as torch does."""
        if not self.reading:
            return args
        out = list(args)
        left = list(self.reading)
        for k, a in enumerate(operands):
            hit = next((j for j, (node, _) in enumerate(left) if node == a), None)
            if hit is None:
                continue
            _, making = left.pop(hit)
            made = self.versions.get(a, [])
            if making < len(made):
                out[k] = made[making]
        return tuple(out)
