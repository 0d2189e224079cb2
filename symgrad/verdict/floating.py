"""The floating-point half of the classifier: causes read from the backward pass, where the
executed side and autograd differ (NaN trap, overflow, rounding)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import sympy as sp
import torch

from ..program import exact as ex
from ..base.causes import Cause
from ..sides.autograd import torch_state
from ..sides.executed import Path, PathStep
from ..sides.lowering import DTYPES
from ..program.ops import OPS
from ..program.elementwise import Elementwise
from ..program.primitives import CASTS
from ..program.distances import MM_ROWS, cdist
from .findings import Context, Finding, finite, fmt
from .records import DIGITS

FINFO = {name: torch.finfo(dt) for name, dt in DTYPES.items()}
SMALLEST = {name: float(fi.smallest_normal * fi.eps) for name, fi in FINFO.items()}  # the smallest subnormal


@dataclass(frozen=True)
class Saturating:
    """An op whose backward formula in torch reads the op's own rounded result (`Op.reads_result`,
    derivatives.yaml): where that result rounds to the constant it saturates at (sigmoid and tanh
    to 1, expm1 to -1, a softmax weight to 1), the formula keeps none of the slope's digits,
    however exact each step is. `backward` names torch's function, `run` calls the op in torch,
    `hint` says what to do (`{wider}`: ", or compute in float64" for float32)."""

    backward: str
    run: Callable[[Sequence[torch.Tensor], Any], torch.Tensor]
    hint: str


_LOST_BELOW = ("torch's slope there is off by about the spacing of {dtype} near 1 ({eps:.2g}) at most, so this "
               "matters only where slopes that small are the whole signal. ")

SATURATING: Final[dict[str, Saturating]] = {
    "sigmoid": Saturating(
        "sigmoid_backward", lambda t, p: torch.sigmoid(t[0]),
        _LOST_BELOW + "If they are, work from the logit rather than the probability: `F.logsigmoid(x)` "
        "(slope sigmoid(-x), computed in full) or `F.binary_cross_entropy_with_logits` instead of sigmoid "
        "followed by a log or a probability loss{wider}; compare the rewrite with `symgrad.compare`."),
    "tanh": Saturating(
        "tanh_backward", lambda t, p: torch.tanh(t[0]),
        _LOST_BELOW + "If they are, write tanh(x) for x > 0 as `1 - 2*torch.sigmoid(-2*x)` (for x < 0, "
        "`2*torch.sigmoid(2*x) - 1`): its backward reads sigmoid(-2|x|), small and accurate{wider}; compare "
        "the rewrite with `symgrad.compare`."),
    "expm1": Saturating(
        "backward of expm1 (grad*(result + 1))", lambda t, p: torch.expm1(t[0]),
        _LOST_BELOW + "If they are: far below 0, where expm1(x) cancels nothing, `torch.exp(x) - 1` has the "
        "same value and a backward that reads exp(x) itself{wider}; compare the rewrite with `symgrad.compare`."),
    "softmax": Saturating(
        "_softmax_backward_data",
        lambda t, p: torch.softmax(torch.stack(list(t)), 0)[p],
        _LOST_BELOW + "If they are, compute from the logits in log space (`F.cross_entropy`, `F.log_softmax`; "
        "for two classes log_softmax(0, a, b) is -softplus(b - a), whose backward reads sigmoid(b - a) "
        "directly){wider}; compare the rewrite with `symgrad.compare`."),
    "log_softmax": Saturating(
        "_log_softmax_backward_data",
        lambda t, p: torch.log_softmax(torch.stack(list(t)), 0)[p],
        _LOST_BELOW + "If they are: for two classes log_softmax(0, a, b) is -softplus(b - a), whose backward "
        "reads sigmoid(b - a) directly{wider}; compare the rewrite with `symgrad.compare`."),
}


@dataclass(frozen=True)
class _Slope:
    """torch's local derivative of one step against the exact one, at the arguments torch saw."""

    step: PathStep
    parent: int  # position among the step's parents
    result: float  # torch's rounded result y
    torch_slope: float
    exact_slope: ex.Exact
    rel: float


class FloatingPoint:
    """Executed vs autograd: the causes that live in the dtype's arithmetic."""

    def __init__(self, context: Context) -> None:
        self.lowered, self.path, self.exact = context.lowered, context.path, context.exact
        self.dtype, self.rtol = context.dtype, context.rtol
        self.math_adj, self.exe_adj = context.math_adj, context.exe_adj
        self.node, self.backward_parting = context.node, context.backward_parting
        self.found: dict[tuple[str, tuple[bool, ...]], Any] = {}  # each search of the path, by `once`

    def once(self, search: Callable[[list[bool]], Any], reach: list[bool]) -> Any:
        """`search(reach)`, searched once per path (the same for every entry; thousands of steps)."""
        key = (search.__name__, tuple(reach))
        return self.found[key] if key in self.found else self.found.setdefault(key, search(reach))

    def float_finding(self, k: int, exe: ex.Exact, auto: float | None, idx: tuple[int, int] | None = None) -> Finding | None:
        if auto is None:
            return None
        if not ex.is_finite(exe):
            return None
        fi = FINFO[self.dtype]
        tol = self.rtol * abs(ex.to_float(exe)) + fi.tiny
        if math.isfinite(auto) and abs(auto - ex.to_float(exe)) <= tol:
            return None
        if agrees_when_rounded(exe, auto, self.dtype):
            return None
        reach = self.path.reaches_output()
        over = self.once(self.overflow_step, reach)
        if over is not None:
            st, beyond, limit, stored = over
            became = ("autograd reports that inf" if auto is not None and math.isinf(auto)
                      else f"it turned into {fmt(auto)} in autograd")
            return Finding(Cause.OVERFLOW, st.node, st.line,
                            {"value": fmt(st.value), "beyond": beyond, "limit": limit, "stored": stored, "became": became})
        back = self.once(self.backward_overflow, reach)
        if back is not None:
            st, d, arg = back
            became = ("autograd reports that inf" if math.isinf(auto)
                      else f"it turned into {fmt(auto)} in autograd")
            value = (f"{fmt(st.value)}, and in the backward pass its derivative with respect to "
                     f"`{self.node(arg.node)}` is {fmt(d)}")
            return Finding(Cause.OVERFLOW, st.node, st.line,
                            {"value": value, "beyond": "too large", "limit": f"largest finite value {fi.max:.4g}",
                             "stored": "inf", "became": became})
        if not math.isfinite(auto):
            trap = self.once(self.trap_step, reach)
            if trap is not None:
                st, bad, why = trap
                return Finding(Cause.NAN_TRAP, st.node, st.line, {"bad": _own_element(self.path, self.exe_adj, st, idx) or bad, "why": why})
        return self.rounding(exe, auto, reach)

    def backward_overflow(self, reach: list[bool]) -> tuple[PathStep, ex.Exact, PathStep] | None:
        """A backward-pass number past the dtype's range although every forward value fits:
        a local derivative (1/x at 5e-324) or an adjoint times it."""
        biggest = ex.from_float(float(FINFO[self.dtype].max))
        for st in reversed(self.path.steps):
            if not reach[st.index] or st.cut or st.vjp is not None:
                continue
            a = self.exe_adj[st.index]
            for p, d in zip(st.parents, st.partials):
                if not self.path.steps[p].grad or ex.is_mat(d) or ex.is_mat(a):
                    continue
                for v in (d, ex.mul(a, d)):
                    if ex.is_finite(v) and ex.cmp(abs(v), biggest) > 0:
                        return st, d, self.path.steps[p]
        return None

    def backward_underflow(self, reach: list[bool]) -> tuple[PathStep, ex.Exact] | None:
        """A local derivative of the backward pass below the dtype's smallest number (it is stored
        as 0) where the derivative it is part of is not: 1/(1 + e^-x)'s slope at x = -60 in float32,
        where torch's division backward forms (1/b)/b = 8.7e-53 before it multiplies by e^60."""
        smallest = ex.from_float(SMALLEST[self.dtype])
        for st in reversed(self.path.steps):
            if not reach[st.index] or st.cut or st.vjp is not None:
                continue
            for p, d in zip(st.parents, st.partials):
                if not self.path.steps[p].grad or ex.is_mat(d):
                    continue
                if ex.is_finite(d) and not ex.is_zero(d) and ex.cmp(abs(d), smallest) < 0:
                    return st, d
        return None

    def lost_in_its_inputs(self, reach: list[bool]) -> tuple[PathStep, Any, Any] | None:
        """A log_softmax whose value is far below the rounding of its inputs (at logits (1000, 0)
        it is -e^-1000): torch computes x_i - max - log(sum(exp(x_j - max))), and the log of 1 plus
        that tiny sum rounds to 0. Returns (step, the value, the largest input)."""
        eps = ex.to_real(ex.from_float(float(FINFO[self.dtype].eps)))
        for st in self.path.steps:
            if st.op not in ("log_softmax", "log_softmax_vector", "log_softmax_of") or not reach[st.index]:
                continue
            big = max((_biggest(self.path.steps[p].value) for p in st.parents), default=ex.to_real(ex.ZERO))
            for v in ex.elements(st.value):
                m = abs(ex.to_real(v)).mid()
                if not m.is_zero() and m < eps * max(big, ex.to_real(ex.ONE)):
                    return st, v, big
        return None

    def corner_moved(self, reach: list[bool]) -> tuple[PathStep, str] | None:
        """A corner that rounding to the dtype moved onto the point (or off it): exactly the
        point is beside the corner, but in floating point it sits on it, or the reverse."""
        to_dtype = {"float64": lambda v: float(v), "float32": lambda v: float(np.float32(float(v)))}[self.dtype]
        for st in self.path.steps:
            op = OPS.get(st.op)
            if op is None or op.piece is None or st.args_values is None or not reach[st.index]:
                continue
            if any(ex.is_mat(v) for v in st.args_values):
                continue  # an elementwise corner of a matrix (abs(M)): its pieces are per element
            if not all(ex.is_finite(v) for v in st.args_values) or (
                    (ex.is_rational(st.param) or ex.is_ball(st.param)) and not ex.is_finite(st.param)):
                continue
            rounded = [ex.from_float(to_dtype(ex.to_float(v))) for v in st.args_values]
            param = st.param
            if ex.is_rational(param) or ex.is_ball(param):
                param = ex.from_float(to_dtype(ex.to_float(param)))
            exact_on = op.piece(st.args_values, st.param) is None
            float_on = op.piece(rounded, param) is None
            if exact_on != float_on:
                where = "sits exactly on" if float_on else "is just off"
                return st, (f"In {self.dtype} the point {where} the corner of `{self.node(st.node)}` (line {st.line}), "
                            f"because the program's numbers are rounded to {self.dtype} (a constant such as 1/3 "
                            "is stored as the nearest float); exactly, it is "
                            f"{'beside' if float_on else 'on'} it, so torch took a different slope than the exact program.")
        return None

    def overflow_step(self, reach: list[bool]) -> tuple[PathStep, str, str, str] | None:
        fi = FINFO[self.dtype]
        biggest = ex.from_float(float(fi.max))
        smallest = ex.from_float(float(fi.smallest_normal) * float(fi.eps))  # the smallest subnormal
        for st in self.path.steps:
            if not reach[st.index] or not finite(st.value) or st.op == "input":
                continue
            v = _biggest(st.value)
            if ex.cmp(v, biggest) > 0:
                return st, "too large", f"largest finite value {fi.max:.4g}", "inf"
            # too small only where certain: a ball around an unprovable 0 is no underflow
            if ex.sign(v) > 0 and ex.cmp(v, smallest / 2) < 0 and not any(ex.is_zero_ball(x) for x in ex.elements(st.value)):
                return st, "too small", f"smallest positive value {float(smallest):.4g}", "0"
        return None

    def trap_step(self, reach: list[bool]) -> tuple[PathStep, str, str] | None:
        """Where the backward pass multiplies 0 by inf or NaN: a step whose exact adjoint is 0
        times a non-finite local derivative, or a non-finite adjoint (an infinite slope above)
        times a local derivative that is exactly 0."""
        for st in self.path.steps:
            if not reach[st.index] or st.cut:
                continue
            a = self.exe_adj[st.index]
            for p, d in zip(st.parents, st.partials):
                if not self.path.steps[p].grad:
                    continue
                trapped = _trapped(a, d)
                if trapped is not None:
                    worst, idx = trapped
                    bad = "nan" if ex.is_nan(worst) else ("inf" if ex.sign(worst) > 0 else "-inf")
                    if idx is not None:  # the element of a tensor whose slope is trapped
                        bad += f" in element [{', '.join(map(str, idx if d.shape[1] > 1 else idx[:1]))}]"
                    return st, bad, self.unused_by(st)
        for st in reversed(self.path.steps):
            if not reach[st.index] or st.cut or st.vjp is not None or ex.is_mat(st.value):
                continue
            a = self.exe_adj[st.index]
            if ex.is_mat(a) or ex.is_finite(a):
                continue
            for p, d in zip(st.parents, st.partials):
                if self.path.steps[p].grad and ex.all_zero(d):
                    source = self.infinite_slope_above(st) or st
                    bad = "nan" if ex.is_nan(a) else "inf"
                    return source, bad, (f"its infinite slope reaches `{self.node(st.node)}` (line {st.line}), "
                                         "whose own derivative is exactly 0 here.")
        return None

    def infinite_slope_above(self, st: PathStep) -> PathStep | None:
        """The step whose infinite local derivative made the adjoint of `st` infinite."""
        current = st
        for _ in range(len(self.path.steps)):
            nxt = None
            for user in self.path.steps[current.index + 1:]:
                if current.index not in user.parents or user.vjp is not None:
                    continue
                d = user.partials[user.parents.index(current.index)]
                if not ex.is_mat(d) and not ex.is_finite(d):
                    return user
                if not ex.is_mat(self.exe_adj[user.index]) and not ex.is_finite(self.exe_adj[user.index]):
                    nxt = user
                    break
            if nxt is None:
                return None
            current = nxt
        return None

    def unused_by(self, st: PathStep) -> str:
        for user in self.path.steps[st.index + 1:]:
            if st.index in user.parents and user.op == "where":
                return (f"`torch.where` on line {user.line} runs it for every input but keeps the "
                        "other branch at this point.")
        return "the value reaches the output multiplied by an exact 0."

    def rounding(self, exe: ex.Exact, auto: float, reach: list[bool]) -> Finding:
        e = 0.0 if ex.is_zero_ball(exe) else ex.to_float(exe)  # a ball around 0: no digit of it is known
        rel = abs(auto - e) / abs(e) if e != 0 else math.inf
        if not math.isfinite(auto):
            rel = math.inf  # nan or inf where the exact derivative is finite: every digit is lost
        correct = max(0.0, -math.log10(rel)) if rel > 0 else DIGITS[self.dtype]
        lost = max(0.0, DIGITS[self.dtype] - correct)

        relerr = "its whole value" if e == 0 and math.isfinite(auto) else _rel(rel)

        def found(node: Any, line: Any, detail: str, hint: str = "") -> Finding:
            return Finding(Cause.ROUNDING, node, line, {"relerr": relerr, "lost": f"{lost:.0f}", "detail": detail},
                            hint_extra=hint)

        if (cast := _cast_rounding(self, reach, found) or _cdist_cancelled(self, reach, found)) is not None:
            return cast  # the user's cast decides later ops' dtype; torch.cdist's product path cancels
        moved = self.once(self.corner_moved, reach)
        if moved is not None:
            st, detail = moved
            return found(st.node, st.line, detail)
        # A saturating op's own backward formula explains a finite but wrong slope; where autograd
        # is nan or inf, something downstream divided by or cancelled to 0 (log(1 - sigmoid(x)):
        # 1 - y is 0), and the cancellation below says where.
        saturation = SaturatedBackward(self)
        saturated = self.once(saturation.find, reach) if math.isfinite(auto) else None
        if saturated is not None:
            detail, hint = saturation.text(saturated)
            finding = found(saturated.step.node, saturated.step.line, detail)
            finding.hint = hint
            return finding
        best: tuple[float, PathStep] | None = None
        for st in self.path.steps:
            if st.op != "add" or not reach[st.index] or ex.all_zero(self.math_adj[st.index]) or ex.is_mat(st.value):
                continue
            big = max((_biggest(self.path.steps[p].value) for p in st.parents), default=ex.to_real(ex.ZERO))
            res = abs(ex.to_real(st.value)).mid()
            if big.is_zero():
                continue
            digits = ex.to_float((big / res).log() / ex.to_real(ex.Q(10)).log()) if not res.is_zero() else DIGITS[self.dtype]
            if digits >= 1 and (best is None or digits > best[0]):
                best = (digits, st)
        if best is not None:
            st = best[1]
            detail = (f"`{self.node(st.node)}` (line {st.line}) subtracts nearly equal numbers and loses about "
                      f"{best[0]:.0f} leading digits (cancellation); the backward pass inherits the error.")
            return found(st.node, st.line, detail)
        absorbed = self.once(self.absorbed_by_log, reach)
        if absorbed is not None:
            st, user, digits = absorbed
            detail = (f"`{self.node(st.node)}` (line {st.line}) adds a number far smaller than the sum, which keeps only about "
                      f"{max(0, DIGITS[self.dtype] - digits):.0f} of its {DIGITS[self.dtype]:.0f} digits (absorption), and "
                      f"`{self.node(user.node)}` (line {user.line}) of a value so near 1 turns that into a large relative "
                      "error; the backward pass inherits it.")
            return found(user.node, user.line, detail)
        under = self.once(self.backward_underflow, reach) if e != 0 and abs(auto) < abs(e) else None
        if under is not None:
            st, d = under
            detail = (f"In the backward pass the local derivative of `{self.node(st.node)}` (line {st.line}) is "
                      f"{fmt(d)}, below {self.dtype}'s smallest number ({SMALLEST[self.dtype]:.2g}), "
                      f"so torch stores it as 0 (underflow) before the chain rule multiplies it by the large factors "
                      "that would bring it back into range.")
            return found(st.node, st.line, detail, "underflow")
        lost_in = self.once(self.lost_in_its_inputs, reach)
        if lost_in is not None:
            st, v, big = lost_in
            what = f"`{self.node(st.node)}` (line {st.line})" if st.op == "log_softmax" else f"The log_softmax on line {st.line}"
            detail = (f"{what} has a value as small as {fmt(v)} here, far below the "
                      f"rounding of its inputs (up to about {float(big):.3g}): torch computes log_softmax as "
                      "x_i - max - log(sum(exp(x_j - max))), and the log of 1 plus so small a sum rounds to 0.")
            return found(st.node, st.line, detail, "below-inputs")
        singular = next((st for st in self.path.steps if st.op == "det" and reach[st.index] and ex.is_zero(st.value)), None)
        if singular is not None:
            # torch's det backward at a singular matrix: not rounding that accumulates, one formula
            detail = (f"`{self.node(singular.node)}` (line {singular.line}) is the determinant of a singular matrix "
                      "(it is 0 here). The derivative of a determinant is its matrix of cofactors, which is not 0 "
                      "when the matrix's rank is one less than its size; torch's backward of torch.linalg.det "
                      "does not return it at a singular matrix.")
            return found(singular.node, singular.line, detail, "singular-det")
        parting = self.backward_parting()
        if parting is not None and parting.kind == "cancellation":
            # A cancellation that lives only in the backward pass: cite the line where it parts.
            return found(_node_of(self.path, parting.at.step), parting.line, parting.why, "backward-cancellation")
        out = self.path.steps[self.path.output]
        return found(out.node, self.lowered.output_line, _accumulated(self.dtype, len(self.path.steps), self.exact.bits,
                                                                      exe, auto), "accumulate")

    def absorbed_by_log(self, reach: list[bool]) -> tuple[PathStep, PathStep, float] | None:
        """log(1 + x) for a small x: the sum 1 + x keeps only the leading digits of x, and log near 1
        magnifies what was lost (the add step, the log step reading it, and the digits of x lost)."""
        for user in self.path.steps:
            if user.op != "log" or not reach[user.index] or not user.parents:
                continue
            st = self.path.steps[user.parents[0]]
            if st.op != "add" or ex.is_mat(st.value) or not finite(st.value):
                continue
            small = [abs(ex.to_real(self.path.steps[p].value)).mid() for p in st.parents if self.path.steps[p].depends]
            res = abs(ex.to_real(st.value)).mid()
            if not small or min(small).is_zero() or res.is_zero():
                continue
            digits = ex.to_float((res / min(small)).log() / ex.to_real(ex.Q(10)).log())
            if digits >= 1:
                return st, user, digits
        return None


class SaturatedBackward:
    """Where torch's backward formula of a saturating op (`SATURATING`) itself loses the slope's
    digits, read from the executed path for one comparison."""

    def __init__(self, floating: FloatingPoint) -> None:
        self.path, self.exe_adj = floating.path, floating.exe_adj
        self.dtype, self.rtol, self.node = floating.dtype, floating.rtol, floating.node

    def find(self, reach: list[bool]) -> _Slope | None:
        """A step of a saturating op (`SATURATING`) whose local derivative, as torch's backward
        formula computes it from the op's rounded result, is off from the exact local derivative
        at the same arguments beyond the tolerance: there torch's formula itself loses the digits
        (sigmoid'(40) as y*(1 - y) with y = 1.0). The worst such step, or None."""
        worst: _Slope | None = None
        for st in self.path.steps:
            if st.op not in SATURATING or not reach[st.index] or st.cut or st.args_values is None:
                continue
            if st.vjp is not None or ex.all_zero(self.exe_adj[st.index]):
                continue
            for slope in self._slopes(st):
                if worst is None or slope.rel > worst.rel:
                    worst = slope
        return worst

    def _slopes(self, st: PathStep) -> list[_Slope]:
        """torch's local derivatives of one step that are off. (These ops take scalars: a matrix
        reaches them element by element, `X[0, 0]`, each a step of its own.)"""
        args = list(st.args_values or ())
        if any(ex.is_mat(v) for v in args):
            return []
        rounded = [ex.round_to_dtype(v, self.dtype) for v in args]
        if any(r is None or not math.isfinite(r) for r in rounded):
            return []
        y, slopes = _torch_slopes(SATURATING[st.op], rounded, st.param, self.dtype)  # type: ignore[arg-type]
        at = [ex.from_float(r) for r in rounded]  # type: ignore[arg-type]
        op = OPS[st.op]
        exact = op.partials(at, op.value(at, st.param), st.param)
        out = []
        for k, (p, d_torch, d_exact) in enumerate(zip(st.parents, slopes, exact)):
            if d_torch is None or not self.path.steps[p].grad or not ex.is_finite(d_exact):
                continue
            e = ex.to_float(d_exact)
            if (not math.isfinite(d_torch) or agrees_when_rounded(d_exact, d_torch, self.dtype)
                    or abs(d_torch - e) <= self.rtol * abs(e) + FINFO[self.dtype].tiny):
                continue
            rel = abs(d_torch - e) / abs(e) if e != 0 else math.inf
            out.append(_Slope(st, k, y, d_torch, d_exact, rel))
        return out

    def text(self, s: _Slope) -> tuple[str, str]:
        """The detail and the hint of a saturated backward formula."""
        info = SATURATING[s.step.op]
        st = s.step
        formula = OPS[st.op].reads_result
        node = f"`{self.node(st.node)}` (line {st.line})"
        wrt = ""
        if len(st.parents) > 1:
            wrt = f" with respect to `{self.node(self.path.steps[st.parents[s.parent]].node)}`"
        correct = max(0.0, -math.log10(s.rel)) if 0 < s.rel < math.inf else 0.0
        kept = ("none of its digits" if correct < 1
                else f"only about {correct:.0f} of its {DIGITS[self.dtype]:.0f} digits")
        detail = (f"This is torch's backward formula for {st.op} at this point, not an error that grew over the "
                  f"program: torch's {info.backward} computes the slope of {node}{wrt} as {formula} from "
                  f"the op's own result rounded to {self.dtype}, y = {fmt(s.result)}, and gets {fmt(s.torch_slope)}, "
                  f"while the exact slope there is {fmt(s.exact_slope)}. y itself is correctly rounded, but this "
                  f"near the value the op saturates at, {formula} keeps {kept}: y's rounding error is large "
                  "against so small a slope.")
        fi = FINFO[self.dtype]
        hint = info.hint.format(dtype=self.dtype, eps=float(fi.eps),
                                wider=", or compute in float64" if self.dtype == "float32" else "")
        return detail, hint


def _own_element(path: Any, exe_adj: Any, st: PathStep, idx: tuple[int, int] | None) -> str | None:
    """What the trap step's slope is at the entry's own element idx, where that element is
    itself trapped (an elementwise step of the input's shape: `x.sqrt()` at x[2] = -1 is nan
    there, whatever the first trapped element is); None where it is not."""
    if idx is None:
        return None
    a = exe_adj[st.index]
    for p, d in zip(st.parents, st.partials):
        if not path.steps[p].grad or not ex.is_mat(d) or not all(i < n for i, n in zip(idx, d.shape)):
            continue
        ai = a[idx] if ex.is_mat(a) else a
        if ex.all_zero(ai) and not ex.is_finite(d[idx]):
            bad = "nan" if ex.is_nan(d[idx]) else ("inf" if ex.sign(d[idx]) > 0 else "-inf")
            return f"{bad} in element [{', '.join(map(str, idx if d.shape[1] > 1 else idx[:1]))}]"
    return None


def _trapped(a: Any, d: Any) -> tuple[Any, tuple[int, ...] | None] | None:
    """A non-finite local derivative that the backward pass multiplies by an exact 0 adjoint,
    with its element where `d` is a matrix of elementwise slopes (the elements a `where` drops),
    or None."""
    if not (ex.is_mat(a) or ex.is_mat(d)):
        bad = next((x for x in ex.elements(d) if not ex.is_finite(x)), None) if ex.all_zero(a) else None
        return None if bad is None else (bad, None)
    shape = ex.shape_of(a, d)
    for idx in np.ndindex(*shape):
        ai = a[idx] if ex.is_mat(a) else a
        di = d[idx] if ex.is_mat(d) else d
        if ex.all_zero(ai) and not ex.is_finite(di):
            return di, (idx if ex.is_mat(d) else None)
    return None


def agrees_when_rounded(exact: ex.Exact, auto: float | None, dtype: str) -> bool:
    """The exact value rounds, in `dtype`, to exactly autograd's float: no float is nearer the
    truth, so autograd is as right as the dtype allows (a slope below the smallest subnormal
    returned as 0 among them). A value past the dtype's range rounds to inf, but that is an
    overflow, never an agreement."""
    if auto is None or not math.isfinite(auto):
        return False
    rounded = ex.round_to_dtype(exact, dtype)
    return rounded is not None and math.isfinite(rounded) and rounded == auto


def _torch_slopes(info: Saturating, args: list[float], param: Any, dtype: str) -> tuple[float, list[float | None]]:
    """torch's result and local derivatives of one op at float arguments: the op run alone in
    `dtype` and differentiated by torch's own backward."""
    with torch_state(dtype):
        ts = [torch.tensor(a, dtype=DTYPES[dtype], requires_grad=True) for a in args]
        y = info.run(ts, param)
        grads = torch.autograd.grad(y, ts, allow_unused=True)
    return float(y.detach()), [None if g is None else float(g) for g in grads]


def _biggest(v: Any) -> Any:
    """The largest magnitude among a value's elements (a ball's midpoint)."""
    return max((abs(ex.to_real(x)).mid() for x in ex.elements(v)), default=ex.to_real(ex.ZERO))


def _narrowing_cast(path: Path, reach: list[bool], dtype: str) -> PathStep | None:
    """The first cast of a computed value to a dtype narrower than the run's (`.float()` in a
    float64 run) whose value reaches the output."""
    for st in path.steps:
        to = _cast_to(st)
        if to is not None and reach[st.index] and DIGITS[to] < DIGITS[dtype]:
            return st
    return None


def _cast_rounding(fp: FloatingPoint, reach: list[bool], found: Callable[..., Finding]) -> Finding | None:
    """A rounding finding at the user's narrowing cast, if there is one upstream of the output."""
    st = _narrowing_cast(fp.path, reach, fp.dtype)
    if st is None:
        return None
    finding = found(st.node, st.line, _cast_detail(fp.node(st.node), st, fp.dtype))
    finding.hint = _cast_hint(st)
    return finding


def _cdist_cancelled(fp: FloatingPoint, reach: list[bool], found: Callable[..., Finding]) -> Finding | None:
    """torch.cdist of more than 25 rows (its matrix-product path: |a_i|**2 + |b_j|**2 - 2 a_i.b_j) at two rows
    so close that the subtraction loses at least half the dtype's digits: a rounding finding there."""
    worst: tuple[float, PathStep, int, int, float] | None = None
    for st in fp.path.steps:
        first = st.node[0, 0] if st.op == "cdist_matrix" and isinstance(st.node, sp.MatrixBase) else None
        if not isinstance(first, cdist) or not reach[st.index] or max(first.param()[:2]) <= MM_ROWS:
            continue
        r1, r2, d = first.param()
        values = [fp.path.steps[k].value for k in st.parents]
        parts = [np.asarray(ex.ewise(ex.to_float, v) if ex.is_mat(v) else ex.to_float(v), dtype=np.float64).reshape(-1)
                 for v in values]
        flat = np.concatenate(parts)
        a, b = flat[:r1 * d].reshape(r1, d), flat[r1 * d:].reshape(r2, d)
        sq = ((a[:, None, :] - b[None]) ** 2).sum(-1)
        scale = (a ** 2).sum(-1)[:, None] + (b ** 2).sum(-1)[None]
        for i, j in zip(*np.nonzero(sq > 0)):
            lost = math.log10(scale[i, j] / sq[i, j])
            if lost >= DIGITS[fp.dtype] / 2 and (worst is None or lost > worst[0]):
                worst = (lost, st, int(i), int(j), math.sqrt(sq[i, j]))
    if worst is None:
        return None
    lost, st, i, j, dist = worst
    finding = found(st.node, st.line, (
        f"`{fp.node(st.node)}` (line {st.line}) has more than {MM_ROWS} rows, so torch computes each squared distance "
        "through a matrix product, |a_i|**2 + |b_j|**2 - 2*a_i.b_j: row {i} of the first matrix and row {j} of the "
        f"second are {dist:.3g} apart, and that subtraction loses about {min(lost, DIGITS[fp.dtype]):.0f} of "
        f"{fp.dtype}'s {DIGITS[fp.dtype]:.0f} digits (cancellation); the backward pass, g/d times a_i - b_j, "
        "inherits it.".replace("{i}", str(i)).replace("{j}", str(j))))
    finding.hint = ("Where rows can be this close, compute the distances directly: "
                    "`torch.cdist(A, B, compute_mode=\"donot_use_mm_for_euclid_dist\")` subtracts the coordinates first "
                    "(torch's path for 25 rows or fewer), and compare again with `symgrad.compare`.")
    return finding


def _cast_detail(node: str, st: PathStep, dtype: str) -> str:
    to = _cast_to(st)
    return (f"`{node}` (line {st.line}) casts a computed value to {to} (`.float()`, `.to(torch.{to})`): torch "
            f"rounds it to {to}'s {DIGITS[to]:.0f} significant digits and runs every later op in {to}, so the "
            f"derivative carries {to}'s rounding although the comparison is in {dtype}.")


def _cast_hint(st: PathStep) -> str:
    to = _cast_to(st)
    return (f"If {to} is meant, compare with dtype=\"{to}\"; if not, leave the cast out (or cast the final "
            "result only), and compare again with `symgrad.compare`.")


def _cast_to(st: PathStep) -> str | None:
    """The dtype a cast step (`.float()` of a computed value) gives its value; None for any other step."""
    if st.op != "cast":
        return None
    e = st.node.function.expr if isinstance(st.node, Elementwise) else st.node
    return e.dtype if isinstance(e, CASTS) else None


def _node_of(path: Path, i: int) -> sp.Basic:
    return path.steps[i].node


def _accumulated(dtype: str, steps: int, bits: int, exe: ex.Exact, auto: float) -> str:
    """Rounding that no single step explains: accumulated over the program."""
    detail = f"The errors of {dtype}'s rounding accumulate over the program's {steps} steps."
    if ex.is_zero_ball(exe):
        # Balls cannot prove an exact 0 (a sum of normalised deviations): they bound it.
        return detail + (f" The exact derivative is 0 to within {float(abs(ex.to_real(exe)).upper()):.1e} (the bound of "
                         f"the exact values at {bits} bits): its terms cancel, and {dtype}'s rounded terms leave "
                         f"autograd a residue of {fmt(auto)}.")
    if bits > ex.START_PREC:
        detail += (f" The exact values needed {bits} bits (about {int(bits * 0.30103)} digits) "
                   "to certify theirs: the program amplifies every rounding error as it runs.")
    return detail


def _rel(r: float) -> str:
    if not math.isfinite(r):
        return "everything (it is not a finite number)"
    if r >= 10:
        return f"a factor of {r:.3g}"
    return f"{100 * r:.3g}%"
