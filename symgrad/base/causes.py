"""Why two of the three derivatives differ: the `Cause` enum and its texts, kept in one place.

Members are listed in order of severity: an entry's primary cause is the first that applies,
and a comparison's cause is the most severe primary cause among its entries. Each member has
a stable `id` (used in reports, docs anchors and sweeps), a one-line `title`, and a page,
`docs/causes.md#<id>`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Final

from .errors import OptionError

DOCS_CAUSES: Final = "docs/causes.md"


class Cause(enum.Enum):
    """Why the symbolic, executed and autograd derivatives differ (or `AGREE` when they don't)."""

    DOMAIN = "domain"
    GRAPH_BREAK = "graph-break"
    DETACH = "detach"
    CUSTOM_BACKWARD = "custom-backward"
    CONTROL_FLOW = "control-flow"
    JUMP = "jump"
    KINK = "kink"
    NAN_TRAP = "nan-trap"
    OVERFLOW = "overflow"
    ROUNDING = "rounding"
    AGREE = "agree"

    @property
    def id(self) -> str:
        """The stable identifier, e.g. `"nan-trap"`."""
        return str(self.value)

    @property
    def title(self) -> str:
        return TITLES[self]

    @property
    def sides(self) -> str:
        """Which of the three derivatives this cause separates."""
        return SIDES[self]

    @property
    def meaning(self) -> str:
        """What the cause means, in two or three sentences (the notebook view shows it inline)."""
        return MEANINGS[self]

    @property
    def page(self) -> str:
        return f"{DOCS_CAUSES}#{self.id}"

    @property
    def severity(self) -> int:
        """0 is the most severe; `AGREE` is the least."""
        return _ORDER.index(self)

    @classmethod
    def from_id(cls, cause_id: str) -> Cause:
        for member in cls:
            if member.id == cause_id:
                return member
        raise KeyError(cause_id)


_ORDER: Final = list(Cause)

TITLES: Final = {
    Cause.AGREE: "all three derivatives agree",
    Cause.DOMAIN: "the point is outside the function's real domain",
    Cause.GRAPH_BREAK: "a value left the autograd graph (an autograd graph break)",
    Cause.DETACH: "a detach() made part of the function a constant",
    Cause.CUSTOM_BACKWARD: "a hand-written backward is not the derivative of its forward",
    Cause.CONTROL_FLOW: "a branch or loop of the program decided the gradient",
    Cause.JUMP: "the function jumps here: no derivative exists",
    Cause.KINK: "the function has a corner here: torch picked one of its slopes",
    Cause.NAN_TRAP: "0 times inf or NaN in the backward pass",
    Cause.OVERFLOW: "an intermediate value overflowed the dtype",
    Cause.ROUNDING: "floating-point rounding made autograd's value wrong",
}

SIDES: Final = {
    Cause.AGREE: "none",
    Cause.DOMAIN: "all three",
    Cause.GRAPH_BREAK: "symbolic vs executed (autograd may raise)",
    Cause.DETACH: "symbolic vs executed",
    Cause.CUSTOM_BACKWARD: "symbolic vs executed",
    Cause.CONTROL_FLOW: "symbolic vs executed",
    Cause.JUMP: "symbolic vs executed",
    Cause.KINK: "symbolic vs executed",
    Cause.NAN_TRAP: "executed vs autograd",
    Cause.OVERFLOW: "executed vs autograd",
    Cause.ROUNDING: "executed vs autograd",
}

# Explanation and hint templates. Fields are filled in `symgrad/verdict` (`compare.py`, from the
# findings of `structural.py` and `floating.py`); every template names the node in SymPy notation
# and the line of the generated program.
EXPLANATIONS: Final = {
    Cause.AGREE: "The derivative of the mathematics, of the program that ran, and autograd's "
    "value agree within the {dtype} tolerance (rtol={rtol:g}).",
    Cause.DOMAIN: "`{node}` (line {line}) {why}, so the function has no real derivative at this "
    "point and there is nothing to compare.",
    Cause.GRAPH_BREAK: "`{node}` (line {line}) left the autograd graph (an autograd graph "
    "break: {how}), so torch treats its value {value} as a constant and no gradient flows "
    "back through it{consequence}.{torch_error}",
    Cause.DETACH: "`{node}` (line {line}) is detached: the program uses its value {value} as a "
    "constant, so the part of the derivative that flows through it in the mathematics is "
    "missing from what ran: {executed} instead of {symbolic}.",
    Cause.CUSTOM_BACKWARD: "`{node}` (line {line}) runs your own backward: {element}, `{code}` "
    "({where}), is {returned} here for grad_output = 1, while the derivative of its forward's mathematics "
    "is {derivative}, so the program's derivative is {executed} instead of {symbolic}.",
    Cause.CONTROL_FLOW: "The program's {what} `{node}` (line {line}) decided the gradient: "
    "{detail}",
    Cause.JUMP: "`{node}` (line {line}) jumps at this point: {detail} A function that jumps "
    "has no derivative there; the program's slope is {executed}, that of the piece it ran.",
    Cause.KINK: "`{node}` (line {line}) is exactly on its corner at this point: {detail} "
    "The program's derivative is {executed}: {convention}",
    Cause.NAN_TRAP: "`{node}` (line {line}) has gradient {bad} at this point, but the "
    "program does not use its value here: {why} In the backward pass torch still multiplies "
    "that gradient by 0, and 0 * {bad} is nan, so autograd reports {autograd} instead of "
    "{executed}.",
    Cause.OVERFLOW: "`{node}` (line {line}) is {value} at this point, {beyond} for {dtype} "
    "({limit}); it was stored as {stored}, and {became}, while the exact derivative of the "
    "same program is {executed}.",
    Cause.ROUNDING: "autograd's {autograd} is off by {relerr} from the exact {executed} "
    "(about {lost} of {dtype}'s {digits} significant digits lost). {detail}",
}

# The double-where pattern, as torch code and as symgrad compares it. Written as one SymPy
# expression, Piecewise((f(Piecewise((x, c), (safe, True))), c), ...) is folded by SymPy back into
# Piecewise((f(x), c), ...), the trap itself: the safe input must be a statement of its own.
NAN_TRAP_HINT: Final = (
    "Keep the unused branch's input in its domain: the double-where pattern "
    "`torch.where(c, f(torch.where(c, x, safe)), other)`. In a symgrad Program give the safe input "
    "its own statement, `t = Piecewise((x, c), (safe, True))`, then `Piecewise((f(t), c), (other, True))` "
    "with branches=\"where\" (in one expression SymPy folds the two conditions back into the trap)."
)

# Hints that depend on where a finding sits, not only on its node's row; `symgrad/verdict/hints.py`
# chooses and fills them, and `tests/verdict/test_hints.py` applies each one.
#
# A value that overflows, or a slope that is nan or inf, in the branch of a `torch.where` that the
# point does not keep: the double where, written with the user's own condition, argument and branch.
MASKED_INPUT_HINT: Final = (
    "`{node}` runs in the branch that `torch.where` (line {line}) does not keep here, and {what}; in "
    "the backward pass that branch's gradient 0 still meets it, and 0 * {bad} is nan. Mask its input, "
    "not its output (the double-where pattern): {rewrite}, so that the branch not kept computes "
    "`{safe_node}`. In a symgrad Program give the masked input its own statement, `{statement}`, then "
    "{program} with branches=\"where\" (in one expression SymPy folds the two conditions back into the trap)."
)

# u*log(u) at u = 0, whose right slope falls to -inf: torch's name for the value 0 there is xlogy,
# which has no row; its value is compared through the Piecewise spelling.
ZERO_LOG_ZERO_HINT: Final = (
    "`{product}` is 0 * log(0) here, and no spelling gives it a derivative at this point: its slope "
    "log({u}) + 1 falls to -inf as {u} falls to 0, so compare it where {u} > 0. Where 0 * log(0) should "
    "count as 0 (an entropy term), torch.xlogy({u}, {u}) returns that 0 instead of nan, though its "
    "gradient there is still nan; symgrad has no row for xlogy, and compares that value as "
    "`Piecewise((0, Eq({u}, 0)), ({product}, True))`."
)

# Every hint's fix is something symgrad can compare: each function it names has a row of the
# lowering table (`tests/verdict/test_hints.py` applies each hint to an example and checks the result).
HINTS: Final = {
    Cause.AGREE: "",
    Cause.DOMAIN: "Choose a point inside the domain of `{node}` ({domain}).",
    Cause.GRAPH_BREAK: "Keep the computation in tensors: call `.item()` (or leave "
    "`torch.no_grad()`) only after `backward()`.",
    Cause.DETACH: "Remove the `detach()` if the gradient should flow through `{node}`; keep "
    "it if a constant is what you meant (as in D2L's `u = y.detach()`).",
    Cause.CUSTOM_BACKWARD: "Make {element} ({where}) grad_output times the derivative of `forward` with "
    "respect to {argument} ({derivative} at this point), and compare again (also at other points: a backward can be wrong "
    "on one side of 0 only).",
    Cause.CONTROL_FLOW: "Move the point off the threshold, or, if the {what} should not decide the "
    "gradient, write the function without it (one smooth expression).",
    Cause.JUMP: "A jump has no gradient; if training needs one, use a smooth surrogate: "
    "`sigmoid(x/t)` with a small t for a step, or for rounding a straight-through estimator, "
    "`x + detach(floor(x) - x)`, whose slope is 1 (symgrad names that detach, on purpose).",
    Cause.KINK: "Any value between {low} and {high} is a valid subgradient; if you need a "
    "particular one, choose the op whose convention gives it ({alternatives}).",
    Cause.NAN_TRAP: NAN_TRAP_HINT,
    Cause.OVERFLOW: "If an intermediate value overflows although the result fits, rescale with the "
    "fused op that never forms it: `logsumexp(a, b, ...)` for log(exp(a) + exp(b) + ...), "
    "`softplus(x)` for log(1 + exp(x)), `sigmoid(x)` for 1/(1 + exp(-x)), `softmax(i, a, b, ...)` "
    "and `log_softmax(i, a, b, ...)` for normalised exponentials. If the result itself is past "
    "the dtype's range (cosh(720)), work with its logarithm instead (log(cosh(x)) is "
    "`logaddexp(x, -x) - log(2)`).",
    Cause.ROUNDING: "Rewrite the cancelling expression in a stable form (`expm1(x)` for "
    "exp(x) - 1, `log1p(x)` for log(1 + x), `2*sin(x/2)**2` for 1 - cos(x)){wider}, and "
    "compare the rewrite at this point with `symgrad.compare`.",
}

# What each cause means, in two or three sentences: the notebook view shows it inline (a link to
# docs/causes.md would be a relative path that breaks in the user's own notebook). The pages in
# docs/causes.md say the same at length, with examples.
MEANINGS: Final = {
    Cause.AGREE: "The derivative of the mathematics, the exact derivative of the program that ran, "
    "and autograd's float are the same number, up to the dtype's tolerance.",
    Cause.DOMAIN: "The function has no real value at the point (the log of a negative number, a "
    "division by zero), or its slope is infinite there (sqrt at 0), so there is no derivative to "
    "compare, whatever number torch returns.",
    Cause.GRAPH_BREAK: "A value left the record that .backward() walks (an autograd graph break, "
    "not a torch.compile split): .item() turned it into a Python number, or it was computed under "
    "torch.no_grad(). From there on it is a constant, and no gradient flows back through it.",
    Cause.DETACH: "e.detach() hands on the value of e but forgets how it was computed: to the "
    "backward pass it is a constant. The mathematics has no such idea, so the part of the "
    "derivative that flows through e is missing from what ran.",
    Cause.CUSTOM_BACKWARD: "A torch.autograd.Function's backward is whatever its author wrote: torch runs "
    "it instead of differentiating forward. Where it is not the derivative of forward's mathematics "
    "(a wrong sign, a missing factor, the derivative of another function, a mask that is wrong on one "
    "side), the gradient that ran is not the function's.",
    Cause.CONTROL_FLOW: "Autograd differentiates the branch that ran. Away from a condition's "
    "threshold that is right; exactly on it, a small change of the input takes the other branch, "
    "so the mathematics has a jump or a corner there that the branch taken does not show.",
    Cause.JUMP: "The function itself is discontinuous at the point (floor, sign, round, a step), "
    "so no derivative exists there; torch reports the slope of the piece it computed, usually 0.",
    Cause.KINK: "The graph has a corner: the slopes just left and just right of the point differ, "
    "so the derivative does not exist. torch must return a number anyway, and each op has its own "
    "convention (relu'(0) = 0, clamp counts its boundary as inside, maximum splits a tie).",
    Cause.NAN_TRAP: "torch.where(c, a, b) computes both branches for every input. In the backward "
    "pass the branch not kept gets gradient 0, multiplied by its own local derivative; where that "
    "is nan or inf, 0 * nan = nan, and the NaN reaches the input's gradient.",
    Cause.OVERFLOW: "A float has a largest finite value (about 1.8e308 in float64, 3.4e38 in "
    "float32); exp crosses it early (above 709.78 in float64). The overflowing value is stored as "
    "inf, or an underflow to 0 is divided by, and the gradient that follows is wrong.",
    Cause.ROUNDING: "A float keeps about 16 significant digits (float64) or 7 (float32). "
    "Subtracting two nearly equal numbers throws away the digits they share (cancellation), and "
    "the backward pass works with what is left: autograd's gradient is finite but wrong.",
}


ALLOW: Final = (
    "allow={value!r} names {bad}, which is not a cause.\n"
    "allow= accepts the causes whose disagreements the check should let pass.\n"
    "Fix: pass cause ids or `symgrad.Cause` members, one of {ids}."
)


def allowed_causes(allow: Any) -> frozenset[Cause]:
    """`allow=` (the test helper's, the command line's `--allow`) as a set of causes: ids (a string
    is one id) or `Cause` members; an OptionError names one that is not a cause."""
    if allow is None:
        return frozenset()
    items = [allow] if isinstance(allow, (str, Cause)) else list(allow) if isinstance(allow, Iterable) else [allow]
    out = set()
    for item in items:
        if isinstance(item, Cause):
            out.add(item)
            continue
        try:
            out.add(Cause.from_id(item))
        except (KeyError, TypeError):
            ids = ", ".join(f'"{c.id}"' for c in Cause if c is not Cause.AGREE)
            raise OptionError(ALLOW.format(value=allow, bad=repr(item), ids=ids)) from None
    return frozenset(out)
