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
from dataclasses import replace
from typing import Any

from ..base.causes import Cause
from ..program import exact as ex
from ..program.custom import CUSTOM_OP
from .findings import Context, Finding, fmt
from .structural import differs


def custom_findings(c: Context, ks: Sequence[int], idx: tuple[int, int] | None = None) -> list[Finding]:
    """One finding per call of a user's Function whose backward, for an argument the entry's
    inputs move, is not the derivative of its forward's mathematics at this point."""
    path = c.path
    steps = c.custom_steps
    if not steps:
        return []
    dep = c.reach.of(ks, idx)
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


def inside_forward(c: Context, node: Any) -> tuple[Any, Any] | None:
    """The call of a user's Function whose forward computed `node` (a corner there: a kink finding
    cites it), with its path step, or None. Torch never ran that corner's backward: the user's
    backward decided the program's slope there."""
    path = c.path
    for st in c.custom_steps:  # found once: a walk of the path per kink entry saved
        spec, _, positions = st.param
        y = next((p for p, k in zip(st.parents, positions) if k == 0), None)
        if y is None:
            continue
        stop = {p for p, k in zip(st.parents, positions) if k != 0}
        todo, seen = [y], set()
        while todo:
            i = todo.pop()
            if i in seen or i in stop:
                continue
            seen.add(i)
            if path.steps[i].node == node:
                return spec, st
            todo.extend(path.steps[i].parents)
    return None


def backward_convention(c: Context, finding: Finding) -> Finding:
    """A corner inside a user Function's forward: the program's slope there is what the user's
    backward returns, not the convention of forward's torch op (which never ran backward)."""
    hit = inside_forward(c, finding.node)
    if hit is None:
        return finding
    spec, st = hit
    said = [f"{r.element}, `{r.code}` ({r.where})" for r in spec.returned if r.expression is not None]
    finding.fields["convention"] = (f"`{spec.name}.backward` decides it, not torch's convention for this op (torch runs "
                                    f"your backward instead of differentiating forward): {'; '.join(said)}.")
    low, high = finding.fields.get("low", "?"), finding.fields.get("high", "?")
    return replace(finding, hint=f"Any value between {low} and {high} is a valid subgradient here; the program takes "
                                 f"the one `{spec.name}.backward` returns at the corner, which is yours to choose.")
