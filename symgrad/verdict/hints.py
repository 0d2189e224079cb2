"""Hints that depend on where a finding sits, not only on the row of its node.

`compare` asks `placed_hint` first; `None` leaves the choice to the rule row and the cause
(`program.rules`, `base.causes.HINTS`). Each hint here is the fix that the accepted answers give,
written with the user's own condition, argument and branch, and `tests/verdict/test_hints.py`
applies each one and compares again:

- a value that overflows, or a slope that is nan or inf, in the branch of a `torch.where` that the
  point does not keep: the double where, `torch.where(x < 0, torch.exp(torch.where(x < 0, x, 0)), x + 1)`
  (the fused ops that the `exp` row suggests for an overflow do not apply to a branch not kept);
- a cancellation `1 - sigmoid(u)`: the `sigmoid` row's rounding hint (`sigmoid(-u)`, and
  `-logaddexp(0, u)` under a log), which the subtraction's own row does not know;
- `u*log(u)` at u = 0: no derivative whatever the spelling; torch.xlogy's value and how to compare it.
"""

from __future__ import annotations

import functools
import re

import sympy as sp

from ..base.causes import MASKED_INPUT_HINT, NAN_TRAP_HINT, ZERO_LOG_ZERO_HINT, Cause
from ..program import exact as ex
from ..program.ops import OPS
from ..program.rules import op_rule
from ..sides.executed import PathStep
from .findings import Context, Finding

# A single-argument torch function whose call can be written around a masked argument.
_CALL = re.compile(r"torch\.[A-Za-z_.]+\(\{0\}\)")
# Values tried, in order, for the input of a branch not kept: the first at which the function
# and its slope are finite.
SAFE_VALUES = (0, 1)


def placed_hint(f: Finding, c: Context) -> str | None:
    """The hint for where the finding sits, or None to leave it to the rule row and the cause."""
    if f.node is None:
        return None
    if f.cause in (Cause.OVERFLOW, Cause.NAN_TRAP):
        return _masked_input(f, c)
    if f.cause is Cause.ROUNDING:
        return _sigmoid_complement(f, c)
    if f.cause is Cause.DOMAIN:
        return _zero_log_zero(f, c)
    return None


def _step_of(f: Finding, c: Context) -> PathStep | None:
    return next((st for st in c.path.steps if st.node == f.node and st.line == f.line), None) or \
        next((st for st in c.path.steps if st.node == f.node), None)


def _masked_input(f: Finding, c: Context) -> str | None:
    """The double where, for a step in a branch that a `torch.where` does not keep here."""
    s = _step_of(f, c)
    if s is None or ex.is_mat(s.value) or not ex.all_zero(c.exe_adj[s.index]):
        return None
    steps = c.path.steps
    below, where = {s.index}, None
    for st in steps[s.index + 1:]:
        if any(p in below for p in st.parents):
            if st.op == "where":
                where = st
                break
            below.add(st.index)
    if where is None:
        return None
    decision = next((d for d in c.path.decisions if d.kind == "where" and d.line == where.line), None)
    pieces = where.node.args if isinstance(where.node, sp.Piecewise) else ()
    if decision is None or not isinstance(decision.taken, bool) or len(pieces) != 2 or len(s.parents) != 1:
        return NAN_TRAP_HINT  # a branch not kept, but not one this hint can write out
    unused = 1 if decision.taken else 0
    parent = steps[s.parents[0]]
    arg_text = c.node(parent.node)
    # The argument as it appears in the step's node (an input step's symbol carries no assumptions,
    # a torch function read back names its statements).
    arg = next((a for a in sp.preorder_traversal(s.node)
                if c.node(a) == arg_text or (isinstance(a, sp.Symbol) and a.name == parent.name)), None)
    safe = _safe_value(s.node, arg) if arg is not None else None
    if arg is None or safe is None:
        return NAN_TRAP_HINT
    cond = c.node(pieces[0].cond)
    inner = f"torch.where({cond}, {arg_text}, {safe})" if unused == 0 else f"torch.where({cond}, {safe}, {arg_text})"
    template = OPS[s.op].torch if s.op in OPS else ""
    marker = sp.Symbol("MASKED_ARGUMENT")
    masked_call = (template.format(inner) if _CALL.fullmatch(template) else
                   c.node(s.node.xreplace({arg: marker})).replace("MASKED_ARGUMENT", inner))
    names = {str(v) for v in c.lowered.normalized.user_symbols.values()} | {st.name for st in steps}
    t = next(n for n in ("t", "t_masked", "masked_input") if n not in names)
    safe_node = c.node(s.node.xreplace({arg: marker})).replace("MASKED_ARGUMENT", str(safe))  # exp(0), not 1
    statement = (f"{t} = Piecewise(({arg_text}, {cond}), ({safe}, True))" if unused == 0 else
                 f"{t} = Piecewise(({safe}, {cond}), ({arg_text}, True))")
    branch = c.node(s.node.xreplace({arg: sp.Symbol(t)}))
    piece = pieces[unused].expr
    if piece == s.node or (isinstance(piece, sp.Symbol) and piece.name == s.name):
        other = _expression(pieces[1 - unused].expr, c, where)
        kept = [masked_call, other] if unused == 0 else [other, masked_call]
        rewrite = f"`torch.where({cond}, {kept[0]}, {kept[1]})`"
        pairs = [(branch, cond), (other, "True")] if unused == 0 else [(other, cond), (branch, "True")]
        program = f"`Piecewise(({pairs[0][0]}, {pairs[0][1]}), ({pairs[1][0]}, True))`"
    else:
        plain = template.format(arg_text) if _CALL.fullmatch(template) else c.node(s.node)
        rewrite = f"in that branch write `{masked_call}` for `{plain}`"
        program = f"`{branch}` for `{c.node(s.node)}` in that branch"
    what = (f"its value overflows {c.dtype}" if f.cause is Cause.OVERFLOW
            else f"its slope there is {f.fields.get('bad', 'nan')}")
    bad = "inf" if f.cause is Cause.OVERFLOW else f.fields.get("bad", "nan")
    return MASKED_INPUT_HINT.format(node=c.node(s.node), line=where.line, what=what, bad=bad, rewrite=rewrite,
                                    safe_node=safe_node, statement=statement, program=program)


def _expression(piece: sp.Basic, c: Context, where: PathStep) -> str:
    """A piece of a `torch.where` in the user's notation: a name the program gave a step (`t2` of
    a torch function read back) is replaced by that step's expression."""
    steps = c.path.steps
    if isinstance(piece, sp.Symbol):
        hit = next((steps[p] for p in where.parents if steps[p].name == piece.name), None)
        if hit is not None:
            return c.node(hit.node)
    return c.node(piece)


@functools.lru_cache(maxsize=1024)
def _safe_value(node: sp.Basic, arg: sp.Basic) -> int | None:
    """The first of `SAFE_VALUES` at which `node`, as a function of its argument, and its slope are
    finite real numbers (exp: 0; sqrt and log: 1), or None. Remembered: it differentiates with
    SymPy (4 ms), and a sweep's exact comparisons ask it about the same node at every point."""
    t = sp.Dummy("t")
    body = node.xreplace({arg: t})
    if t not in body.free_symbols or body.free_symbols != {t}:
        return None
    slope = sp.diff(body, t)
    for v in SAFE_VALUES:
        value, d = body.subs(t, v), slope.subs(t, v)
        if value.is_finite and value.is_extended_real and d.is_finite and d.is_extended_real:
            return v
    return None


def _sigmoid_complement(f: Finding, c: Context) -> str | None:
    """1 - sigmoid(u) cancelling: the `sigmoid` row knows the rewrite that never forms it."""
    s = _step_of(f, c)
    if s is None or len(s.parents) != 1 or ex.is_mat(s.value):
        return None
    inner = c.path.steps[s.parents[0]]
    if inner.op != "sigmoid" or not isinstance(s.node, sp.Add):
        return None
    # The node is 1 - sigmoid(u), or 1 - t1 where a torch function read back named the sigmoid t1.
    candidates = [inner.node, *(v for v in s.node.free_symbols if str(v) == inner.name)]
    if not any(sp.expand(s.node + u - 1) == 0 for u in candidates):
        return None
    rule = op_rule("sigmoid")
    return rule.hints.get(Cause.ROUNDING) if rule is not None else None


def _zero_log_zero(f: Finding, c: Context) -> str | None:
    """u*log(u) at u = 0: the log's argument is exactly 0 and a product multiplies the log by it."""
    s = _step_of(f, c)
    if s is None or s.op != "log" or len(s.parents) != 1:
        return None
    u = c.path.steps[s.parents[0]]
    if ex.is_mat(u.value) or not ex.is_rational(u.value) or not ex.is_zero(u.value):
        return None
    for st in c.path.steps[s.index + 1:]:
        if st.op == "mul" and sorted(st.parents) == sorted((u.index, s.index)):
            u_text = c.node(u.node)
            u_part = u_text if u.node.is_Atom else f"({u_text})"
            product = f"{u_part}*{c.node(s.node)}"
            return ZERO_LOG_ZERO_HINT.format(product=product, u=u_text)
    return None
