"""The finding of a hand-written backward that is not the derivative of its forward
(`Cause.CUSTOM_BACKWARD`).

A call of the user's `torch.autograd.Function` is one step of the path (`program/custom.py`): on
the executed side its partials are the user's `backward` at the point, on the mathematics' side
it is its forward's value y, whose derivative flows through forward's own steps. For each such
step the output's derivative reaches (with respect to the entry's inputs), the derivative of y
with respect to each argument of `apply` is computed through forward's steps alone (one reverse
pass in the mathematics' mode seeded at y), and set beside what backward returned for that
argument: where they certainly differ, that backward, at the line that makes the returned
gradient, is the cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..base.causes import Cause
from ..program import exact as ex
from ..program.custom import CUSTOM_OP
from .findings import Context, Finding, fmt
from .structural import Structural, differs


def custom_findings(c: Context, ks: Sequence[int], idx: tuple[int, int] | None = None) -> list[Finding]:
    """One finding per call of a user's Function whose backward, for an argument the entry's
    inputs move, is not the derivative of its forward's mathematics at this point."""
    path = c.path
    steps = [st for st in path.steps if st.op == CUSTOM_OP]
    if not steps:
        return []
    dep = Structural(c).depends_on(ks, idx)
    found = []
    for st in steps:
        if not dep[st.index] or ex.all_zero(c.math_adj[st.index]):
            continue
        spec, _, positions = st.param
        y = next((p for p, k in zip(st.parents, positions) if k == 0), None)
        seed: Any = None
        if y is not None:
            value = path.steps[y].value
            seed = ex.full(value.shape, ex.ONE) if ex.is_mat(value) else ex.ONE
        adj = path.adjoints_from("math", {y: seed}) if y is not None else None
        for p, k, returned in zip(st.parents, positions, st.partials):
            if not 1 <= k <= spec.n_inputs or not dep[p]:
                continue
            math = adj[p] if adj is not None else ex.ZERO
            if idx is not None and ex.is_mat(math) and ex.is_mat(returned):  # element by element: this entry's
                math, returned = math[idx], returned[idx]
            if not any(differs(a, b) for a, b in zip(ex.elements(math), ex.elements(returned))):
                continue
            r = spec.returned[k - 1]
            argument = c.node(path.steps[p].node) if path.steps[p].node is not None else f"input {k}"
            found.append(Finding(Cause.CUSTOM_BACKWARD, st.node, st.line, {
                "element": r.element, "where": r.where, "code": r.code, "returned": fmt(returned),
                "derivative": fmt(math), "argument": f"`{argument}`"}))
    return found
