"""The structural half of the classifier: causes read from the executed path, where the symbolic
side and the executed side differ (domain, graph break, detach, control flow, jump, kink, and the
vertical tangent of a cone)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..program import exact as ex
from ..base.causes import Cause
from ..sides.executed import Decision
from ..program.activations import tensor_copy
from ..program.ops import OPS
from ..program.rules import OP_DOMAINS, op_rule
from ..sides.symbolic import SymbolicSide, departs, same
from .findings import Context, Finding, finite, fmt

class Structural:
    """Symbolic vs executed: the causes that live in the program's structure."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.lowered, self.path, self.math_adj = context.lowered, context.path, context.math_adj
        self.node = context.node
        self.rtol = context.rtol
        self.exe_adj = context.exe_adj
        self._cuts: list[Any] | None = None  # the path's cut steps, found once
        self._cut_parts: list[Any] | None = None
        self._used: list[bool] | None = None  # and, once, what the output uses and each tie's elements
        self._tie_elements: dict[int, str] = {}

    def depends_on(self, ks: Sequence[int], idx: tuple[int, int] | None = None) -> Sequence[bool]:
        """Which steps of the path depend on the inputs ks (element idx of a matrix input),
        through any edge, cut or not: what moving those inputs moves (`reach.Reach`, found once
        per input and shared by the context's entries: callers must not change it)."""
        return self.context.reach.of(ks, idx)

    def decides(self, d: Decision, dep: Sequence[bool], used: Sequence[bool]) -> bool:
        """Whether a tie decides the entry whose input moves the steps `dep` marks: a corner or
        step whose argument depends on that input and whose value the output uses, or a branch
        or loop whose condition reads a value that depends on it."""
        if d.step is not None:
            st = self.path.steps[d.step]
            return used[d.step] and any(dep[p] for p in st.parents)
        return any(dep[r] for r in d.reads)

    def ties_of(self, ks: Sequence[int] | None, idx: tuple[int, int] | None = None) -> tuple[Decision, ...]:
        """The ties that decide the entry of inputs ks (`decides`); all ties where none does,
        or for no ks."""
        ties = self.path.ties
        if ks is None:
            return ties
        dep, used = self.depends_on(ks, idx), self.used()
        mine = tuple(d for d in ties if self.decides(d, dep, used))
        return mine or ties

    def used(self) -> list[bool]:
        """Which steps lie upstream of the output (through any edge); computed once, shared:
        callers must not change it."""
        if self._used is None:
            self._used = self._upstream()
        return self._used

    def _upstream(self) -> list[bool]:
        used = [False] * len(self.path.steps)
        used[self.path.output] = True
        for st in reversed(self.path.steps):
            if used[st.index]:
                for p in st.parents:
                    used[p] = True
        return used

    def tie_findings(self, side: SymbolicSide, ks: Sequence[int] | None = None,
                     idx: tuple[int, int] | None = None) -> list[Finding]:
        """A finding for each tie that decides the entry of inputs ks (element idx of a matrix
        input): the corner, step, branch or loop whose argument depends on such an input, on the
        way to the output."""
        found = []
        for d in self.ties_of(ks, idx):
            cause = self.tie_kind(d, side.kind)
            found.append(Finding(cause, d.node, d.line, self.tie_fields(d, side, cause)))
        return found

    def vertical_tangent_findings(self, side: SymbolicSide, exe: ex.Exact, auto: float | None) -> list[Finding]:
        """A corner made of a vertical tangent (sqrt(x**2 + y**2) at the origin, a cone): the
        mathematics has one-sided slopes; the program multiplies sqrt's infinite slope by the
        inner derivative 0, and 0 * inf is nan."""
        st = side.violation
        assert st is not None
        left = side.left.derivative if side.left else None
        right = side.right.derivative if side.right else None
        lo, hi = sorted((left, right), key=lambda v: ex.to_float(v)) if left is not None and right is not None else (left, right)
        found = [Finding(Cause.KINK, st.node, st.line, {
            "detail": (f"its argument is 0 and its slope there is infinite, yet the function as a whole is a cone "
                       f"here: its slope is {fmt(left)} just left of the point and {fmt(right)} just right, "
                       "so the mathematics has no derivative."),
            "convention": "the backward pass multiplies the infinite slope by the inner derivative, which is 0 here.",
            "alternatives": "add a small eps inside the sqrt, or use torch.linalg.norm, whose gradient at 0 is 0",
            "low": fmt(lo), "high": fmt(hi)})]
        if auto is not None and not math.isfinite(auto):
            found.append(Finding(Cause.NAN_TRAP, st.node, st.line, {
                "bad": "inf", "why": "its inner derivative at this point is exactly 0."}))
        return found

    def tie_kind(self, d: Decision, kind: str) -> Cause:
        if d.kind in ("if", "while", "for"):
            return Cause.CONTROL_FLOW
        if d.kind == "where":
            # A smooth function whose `where` takes a special case at the point (Eq(x, 1)) is
            # decided by the branch, not by a corner.
            return Cause.JUMP if kind == "jump" else (Cause.CONTROL_FLOW if kind == "smooth" else Cause.KINK)
        assert d.step is not None
        # A corner (relu, abs, max) never makes a function jump, even where another step does;
        # a step (sign, floor, Heaviside) is a jump only if the function itself jumps here:
        # x*sign(x) is |x|, a kink (decided from the one-sided limits, not the primitive).
        op = OPS[self.path.steps[d.step].op]
        return Cause.JUMP if (op.nonsmooth == "jump" and kind == "jump") else Cause.KINK

    def tie_elements(self, d: Decision) -> str:
        """Which elements of an elementwise step sit on its corner or threshold (`element [0, 1]`),
        or "" for a scalar decision (said once per decision: every entry it reaches cites it)."""
        if id(d) not in self._tie_elements:
            self._tie_elements[id(d)] = self._elements_on(d)
        return self._tie_elements[id(d)]

    def _elements_on(self, d: Decision) -> str:
        if isinstance(d.taken, tuple) and d.kind == "where":
            conds = [f"`{self.node(rel)}`" for rel, m in d.margins if ex.is_zero(m)]
            return (f"its condition {', '.join(conds[:4])}{' and more' if len(conds) > 4 else ''} holds with "
                    "equality; ") if conds else ""
        if not isinstance(d.taken, tuple) or d.step is None or d.kind != "piece":
            return ""
        value = self.path.steps[d.step].value
        if not ex.is_mat(value):
            return ""
        at = [idx for idx, piece in zip(np.ndindex(*value.shape), d.taken) if piece is None]
        if not at:
            return ""
        names = [f"[{', '.join(map(str, idx))}]" if value.shape[1] > 1 else f"[{idx[0]}]" for idx in at[:4]]
        more = f" and {len(at) - 4} more" if len(at) > 4 else ""
        if self.path.steps[d.step].op in ("cdist_matrix", "normalize_matrix"):
            return _fused_elements(self.path.steps[d.step].op, at, names, more)
        return f"element{'s' if len(at) > 1 else ''} {', '.join(names)}{more} of its argument sit{'' if len(at) > 1 else 's'} exactly there; "

    def tie_fields(self, d: Decision, side: SymbolicSide, cause: Cause) -> dict[str, Any]:
        left = side.left.derivative if side.left else None
        right = side.right.derivative if side.right else None
        lv = side.left.value if side.left else None
        rv = side.right.value if side.right else None
        f0 = self.path.value
        lo, hi = (left, right) if (left is None or right is None or not (ex.is_finite(left) and ex.is_finite(right))
                                   or ex.cmp(left, right) <= 0) else (right, left)
        fields: dict[str, Any] = {"left": fmt(left), "right": fmt(right), "low": fmt(lo), "high": fmt(hi)}
        conds = ", ".join(f"`{self.node(rel)}` ({self.node(rel.lhs)} = {self.node(rel.rhs)} here)"
                          for rel, m in d.margins if ex.is_zero(m))
        if cause is Cause.CONTROL_FLOW:
            fields["what"] = "loop" if d.kind in ("while", "for") else "branch"
            if side.kind == "jump":
                what = (f"the function jumps here: {fmt(lv)} from the left, {fmt(f0)} at the point, "
                        f"{fmt(rv)} from the right, so no derivative exists.")
            elif side.kind == "kink":
                what = (f"the slope is {fmt(left)} just left and {fmt(right)} just right, so the "
                        "mathematics has no derivative here.")
            else:
                what = (f"the mathematics is smooth here (slope {fmt(left)} on both sides), but at the "
                        "point itself the program takes a branch that neither side takes.")
            sides = self.count_sides(d, side)
            fields["detail"] = (f"its condition {conds or self.node(d.node)} sits exactly on its threshold; "
                                f"{what}{sides} The program ran only what the point itself takes, so torch "
                                "sees only that path's derivative.")
        elif cause is Cause.JUMP:
            fields["detail"] = (f"{fmt(lv)} just left of the point, {fmt(f0)} at it and {fmt(rv)} "
                                "just right of it.")
        else:
            op = OPS[self.path.steps[d.step].op] if d.step is not None else OPS["where"]
            fields["convention"] = op.convention or "torch.where takes the branch whose condition holds at the point."
            fields["alternatives"] = op.alternatives or "rewrite the branch with the slope you want"
            if side.kind == "kink":
                fields["detail"] = (f"{self.tie_elements(d)}the function's slope is {fmt(left)} just left of the point "
                                    f"and {fmt(right)} just right of it, so the mathematics has no derivative here.")
            elif side.kind == "jump":
                fields["detail"] = "the function also jumps here, so the mathematics has no derivative."
            else:
                fields["detail"] = (f"the function as a whole is smooth here (slope {fmt(left)} on both sides), "
                                    "but the program computes it through this corner.")
        return fields

    def shortcut_findings(self, side: SymbolicSide, exe: ex.Exact) -> list[Finding]:
        """A fused op whose torch kernel took a shortcut the mathematics does not have (softplus
        returns x itself above its threshold): a branch inside torch decided the difference. Only
        where the difference is beyond the tolerance: softplus(x) alone at 25 (slope 1 against
        1 - 1.4e-11) agrees; softplus(x) - x at 30 (0 against -9.36e-14) does not, because the
        program subtracts what the kernel kept and leaves only what it dropped."""
        for st in departs(self.path):
            if side.grad is not None and _within(side.grad, exe, self.rtol):
                return []
            arg = st.args_values[0] if st.args_values else None
            op = OPS[st.op]
            detail = (op.shortcut_detail(st.args_values or (), st.param, exe, side.grad)
                      if op.shortcut_detail is not None else
                      f"{op.shortcut} Its argument is {fmt(arg)} here, so the program's derivative "
                      f"is {fmt(exe)} and the mathematics' {fmt(side.grad)}: the whole difference is what "
                      "the kernel dropped, which the rest of the program did not swamp (a subtraction of "
                      "what the kernel kept leaves only it).")
            return [Finding(Cause.CONTROL_FLOW, st.node, st.line, {"what": "fused op", "detail": detail})]
        return []

    def count_sides(self, d: Decision, side: SymbolicSide) -> str:
        """How a neighbouring point changes the branch taken, or the loop's iteration count."""
        if side.left is None or side.right is None:
            return ""
        if d.kind in ("if", "where"):
            def taken(ds: Sequence[Decision]) -> str:
                hit = next((x for x in ds if x.line == d.line and x.kind == d.kind), None)
                if hit is None:
                    return "?"
                return f"branch {int(hit.taken) + 1}" if d.kind == "if" else ("the first branch" if hit.taken else "the other branch")  # type: ignore[arg-type]
            left, here, right = taken(side.left.decisions), taken([d]), taken(side.right.decisions)
            if left == here == right:
                return ""
            return f" Just left of the point the program takes {left}, at it {here}, just right of it {right}."
        if d.kind not in ("while", "for"):
            return ""
        here = _count(self.path.decisions, d)
        left = _count(side.left.decisions, d)
        right = _count(side.right.decisions, d)
        if here == left == right:
            return ""
        return (f" The loop body runs {left} times just left of the point, {here} times at it and "
                f"{right} times just right of it.")

    def cut_findings(self, ks: Sequence[int], idx: tuple[int, int] | None = None) -> list[Finding]:
        """Cut steps through which the mathematics' derivative with respect to the inputs ks
        (element idx of a matrix input) flows: the step depends on such an input and the
        output's mathematical adjoint at it is not 0. Whether they removed anything is the
        caller's question (the two sides differ)."""
        if self._cuts is None:
            self._cuts = [st for st in self.path.steps if st.cut]
        if not self._cuts:  # nothing was cut: no entry can have a cut finding (a walk per entry saved)
            return []
        found = []
        dep = self.depends_on(ks, idx)
        for st in self._cuts:
            if not dep[st.index]:
                continue
            if ex.all_zero(self.math_adj[st.index]):
                continue
            cause = Cause.GRAPH_BREAK if st.cut == "graph-break" else Cause.DETACH
            found.append(Finding(cause, st.node, st.line, {"value": fmt(st.value), "how": _break_how(st.op, st.node)}))
        return found

    def cut_removes(self, k: int, idx: tuple[int, int] | None = None) -> bool:
        """Whether the cuts removed a part of the derivative with respect to input k (element idx
        of a matrix input), however small: that part, computed by itself (`cut_part`), is
        certainly not 0. The sides' own difference cannot say so below the working resolution
        (sin(x) + 1e-300*x*detach(x): 1e-300 of the whole)."""
        part = self.removed(k, idx)
        return any(differs(v, ex.ZERO) for v in ex.elements(part))

    def removed(self, k: int, idx: tuple[int, int] | None = None) -> Any:
        """The part of the derivative with respect to input k (element idx) that the cuts removed
        (`cut_part`): the mathematics' derivative minus the executed one."""
        if self._cut_parts is None:
            self._cut_parts = cut_part(self.path, self.exe_adj)
        part = self._cut_parts[self.path.inputs[k]]
        return part[idx] if ex.is_mat(part) and idx is not None else part

    def raised_finding(self) -> Finding:
        reach = [False] * len(self.path.steps)
        reach[self.path.output] = True
        for st in reversed(self.path.steps):
            if reach[st.index]:
                if st.cut:
                    return Finding(Cause.GRAPH_BREAK, st.node, st.line, {
                        "value": fmt(st.value), "how": _break_how(st.op, st.node),
                        "consequence": "; its value does not depend on the inputs here anyway, so the "
                        "derivative is the same, but now nothing on the path to the output is on the graph"})
                for p in st.parents:
                    reach[p] = True
        out = self.path.steps[self.path.output]
        return Finding(Cause.GRAPH_BREAK, out.node, self.lowered.output_line, {
            "value": fmt(out.value), "how": "no input reaches the output through the graph",
            "consequence": "; the path that ran does not depend on the inputs"})

    def domain_finding(self, side: SymbolicSide) -> Finding:
        st = side.violation
        if st is None:
            why = (f"has a derivative, {self.node(side.expression)}, with no value here" if side.expression is not None
                   else "has a derivative with no value here")
            return Finding(Cause.DOMAIN, self.lowered.normalized.output, self.lowered.output_line,
                            {"why": why, "domain": "see docs/supported.md"})
        rule = op_rule(st.op)
        op = OPS.get(st.op)
        args = [self.path.steps[p] for p in st.parents]
        at = (" (its argument is " + ", ".join(fmt(a.value) for a in args) + ")") if args else ""
        if not finite(st.value):
            why = f"is not defined in the real numbers here{at}: its value would be {fmt(st.value)}"
        elif op is not None and op.undefined is not None and st.args_values is not None and op.undefined(st.args_values, None):
            why = (f"has no real value or slope here{at}; torch returns {fmt(st.value)} by its own "
                   "convention")
        elif any(ex.is_nan(v) for d in st.partials for v in ex.elements(d)):
            why = f"has no real slope here{at}: a derivative of it is nan, not a real number"
        else:
            why = f"has an infinite slope here{at} (a vertical tangent)"
        domain = OP_DOMAINS.get(st.op) or (rule.domain if rule else "see docs/supported.md")
        return Finding(Cause.DOMAIN, st.node, st.line, {"why": why, "domain": domain})


def cut_part(path: Any, exe_adj: Sequence[Any]) -> list[Any]:
    """What the cuts removed from the derivative, for every step (read at the inputs): the
    mathematics' derivative minus the executed one, computed as a quantity of its own, so that
    its balls are as accurate relative to it as to any other number. It is the sum over the cut
    steps s of (the executed adjoint at s) times (the mathematics' derivative of s's argument):
    one reverse pass in the mathematics' mode, seeded at every cut step with its executed
    adjoint."""
    seeds = {st.index: exe_adj[st.index] for st in path.steps if st.cut and st.parents
             and not ex.all_zero(exe_adj[st.index])}
    if not seeds:
        return [ex.full(st.value.shape, ex.ZERO) if ex.is_mat(st.value) else ex.ZERO for st in path.steps]
    return path.adjoints_from("math", seeds)  # type: ignore[no-any-return]


def differs(a: ex.Exact, b: ex.Exact) -> bool:
    """Certainly different, by however little: unequal rationals, or balls whose difference
    does not contain 0 (6.7e-113 against 0). Unlike `symbolic.same`, no working resolution
    makes a tiny difference equal; a difference the balls cannot decide is not one."""
    if ex.is_rational(a) and ex.is_rational(b):
        return a != b
    if not (ex.is_finite(a) and ex.is_finite(b)):
        return not same(a, b)
    return not ex.to_real(ex.sub(a, b)).contains(0)


def _count(decisions: Sequence[Decision], d: Decision) -> int:
    """How many times the loop of decision d ran its body in a run."""
    tests = [x for x in decisions if x.line == d.line and x.kind == d.kind]
    if d.kind == "for":
        return int(tests[0].taken) if tests else 0  # type: ignore[arg-type]
    return sum(1 for x in tests if x.taken)


def _break_how(op: str, node: Any) -> str:
    if isinstance(node, tensor_copy):
        return "`torch.tensor(...)` copied its value into a new tensor, which has no history"
    if op == "item":
        return "`.item()` turned it into a Python number, and the new tensor made from it has no history"
    if op == "no_grad":
        return "it was computed under `torch.no_grad()`, which records no graph"
    return "`.detach()` cut it from the graph"



def _within(a: Any, b: Any, rtol: float) -> bool:
    """Whether two exact values are within the comparison's relative tolerance of each other."""
    if ex.is_mat(a) or ex.is_mat(b):
        return False
    fa, fb = ex.to_float(a), ex.to_float(b)
    return math.isfinite(fa) and math.isfinite(fb) and abs(fa - fb) <= rtol * max(abs(fa), abs(fb))


def _fused_elements(op: str, at: list[tuple[int, ...]], names: list[str], more: str) -> str:
    """Where a fused matrix op sits on its corner: the zero distances of torch.cdist (row i of
    the first matrix and row j of the second the same point), the rows or columns of
    F.normalize's argument whose norm is exactly eps."""
    if op == "cdist_matrix":
        pairs = ", ".join(f"row {i} of the first matrix and row {j} of the second" for i, j in at[:4])
        return (f"distance{'s' if len(at) > 1 else ''} {', '.join(names)}{more} {'are' if len(at) > 1 else 'is'} 0 "
                f"({pairs}{more} are the same point, the tip of a cone); ")
    return (f"element{'s' if len(at) > 1 else ''} {', '.join(names)}{more} of its argument lie on a row or column "
            "whose norm is exactly eps; ")
