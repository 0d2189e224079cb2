"""What a comparison with data of the user's call (`X_flat`, a `DataMatrix`) is a function of,
written once: the expression with each matrix its elements are read from named (`M1[0, 0]`,
`M1 = X_flat*W.T + b.T`), and the data leaf described in its own clause.

SymPy writes an element of a matrix expression with the whole expression (`(X_flat*W.T +
1*b.T)[0, 0]`), so a loss of a (n, k) logit matrix repeats it n*k times; `to_dict()["source"]`
of D2L's softmax regression was that expression over and over, and which symbol was data was not
said. Here each such matrix is written once, and each data leaf once, after the expression.
"""

from __future__ import annotations

import re
from typing import Any

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..program.program import NODE_TEXT_MAX, DataMatrix, more_nodes_than, sstr

# Past this many nodes (after the matrices are named) the expression is summarised, as
# `program.normalize` summarises a source it will not print.
SOURCE_NODES = 400


def data_clause(leaves: list[DataMatrix]) -> str:
    """`the data X_flat (X reshaped to (6, 9), never differentiated)`: each leaf once, its own
    clause, so that no comma of it reads as one between inputs; a global's `(a global of shape
    (10000,), never differentiated)`."""
    return "the data " + " and ".join(f"{s.name} ({_what(s)}, never differentiated)" for s in leaves)


def _what(s: DataMatrix) -> str:
    found = re.match(r"the global tensor .* \((?:b?float|int|uint)\d+, (\(.*\))\), data", s.about)
    return f"a global of shape {found.group(1)}" if found else s.short.removesuffix(", data")


def source_with_data(c: Any) -> str:
    """`c.source`, for a comparison whose point holds a data leaf, written with the matrices its
    elements are read from named once and the data said once (see the module); else `c.source`."""
    leaves = [s for s in c.point if isinstance(s, DataMatrix)]
    norm = c.lowered.normalized
    if not leaves or norm.is_program:
        return c.source
    expr = norm.output.xreplace(norm.user_symbols) if norm.user_symbols else norm.output
    named = _matrices_read(expr)
    taken = {str(s) for s in expr.free_symbols}
    names: dict[sp.Basic, sp.MatrixSymbol] = {}
    k = 1
    for m in named:
        while f"M{k}" in taken:
            k += 1
        names[m] = sp.MatrixSymbol(f"M{k}", *m.shape)
        k += 1
    short = expr.xreplace(names) if names else expr
    text = f"an expression of more than {SOURCE_NODES} nodes" if more_nodes_than(short, SOURCE_NODES) else sstr(short)
    where = [f"{s.name} = {_text(m)}" for m, s in names.items()]
    return text + (", where " + "; ".join(where) if where else "") + "; " + data_clause(leaves)


def _text(m: sp.Basic) -> str:
    return sstr(m) if not more_nodes_than(m, NODE_TEXT_MAX) else f"a {m.shape[0]}x{m.shape[1]} matrix expression"


def _matrices_read(expr: sp.Basic) -> list[sp.Basic]:
    """The matrix expressions (not symbols) of which `expr` reads more than one element, in order of
    first reading. Each node is visited once (the same matrix is one node however often it is read)."""
    found: dict[sp.Basic, set[tuple[int, int]]] = {}
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MatrixElement):
            if not isinstance(node.parent, sp.MatrixSymbol):
                found.setdefault(node.parent, set()).add((int(node.i), int(node.j)))
            continue  # an element's matrix is named whole, not read inside
        stack.extend(reversed(node.args))
    return [m for m, elements in found.items() if len(elements) > 1]  # one element read: said where it is
