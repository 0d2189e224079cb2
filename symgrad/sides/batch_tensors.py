"""A lowered program that computes with tensors, run on a whole batch of scalar points at once.

The scalar batch runner (`batch`) holds one number per point in each variable; a program with
tensor values (a matrix input held fixed, a data tensor, `torch.relu(x * W).sum()`) holds a
tensor per point. Here the program runs point by point in form, and `torch.func.vmap` runs it on
a chunk of points at once: the sweep's points become a leading batch dimension of every value
that depends on them, and the tensors held fixed enter unbatched. The run records, per point,
the same flags as the scalar runner (a kink's corner or a threshold hit exactly, a cancelling
difference, an exp that underflowed or overflowed, reduced over the elements of each value).

Where vmap cannot run the program (an `if` or `while` on a value of the point, an op vmap lacks),
every point runs on its own, one after another, and the run says so in its `note`: slower,
never another answer. Chunks are sized so that the values of one chunk stay within
`ELEMENTS` numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import torch

from ..base.errors import ShapeError, SymgradError
from ..program import custom
from ..program.primitives import SOFTPLUS_THRESHOLD
from .batch import (
    CANCEL_MARGIN,
    PARAM_TIES,
    TIE_TESTS,
    VALUE_TIES,
    line_value,
    margin_texts,
    subtracts,
)
from .ir import Cond, Const, For, If, LoweredProgram, NoGrad, Operand, Step, Stmt, While
from .lowering import RTOL, elementwise

# At most this many numbers in the values of one chunk of points (every intermediate of the
# program, each a tensor per point, kept for the backward pass): 2^23 float64 numbers are 64 MiB.
ELEMENTS: Final = 2**23
# At most this many points per chunk, however small the program.
MAX_CHUNK: Final = 2**14
# After a vmapped run, this many points (evenly spread) run again on their own: torch's batched
# kernels (a batched matmul, a reduction over a batch) may round otherwise than one point's run
# in the last bits, and the run says so where they do.
RECHECK: Final = 32


# The ops of a tensor program that sum terms of either sign (a sum, a matrix product, a trace):
# where the terms cancel, digits are lost as in a difference (the scalar runner's `add` flag).
REDUCTIONS: Final = ("sum", "sum_dim", "trace", "matmul", "matmul_call", "along_call")


class Stuck(Exception):
    """A loop of the program passed max_iterations at this point."""


@dataclass(frozen=True)
class TensorRun:
    """The run of a tensor program on a batch of scalar points: per point, its value, the
    gradient with respect to each column, and the flags; `note` says how it ran where vmap
    could not run it (None where it did); `chunk` is the points per vmapped chunk."""

    value: torch.Tensor
    grads: list[torch.Tensor]
    tie: torch.Tensor
    stuck: torch.Tensor
    cancel: torch.Tensor
    note: str | None
    chunk: int


class _Point:
    """One point's run of the IR, step by step through the generated lines' own text, with the
    flags reduced to one boolean per point (inside vmap: one per point of the chunk)."""

    def __init__(self, lowered: LoweredProgram, dtype: torch.dtype, device: torch.device, math_mode: bool,
                 checks: bool, max_iterations: int) -> None:
        self.lowered, self.dtype, self.device = lowered, dtype, device
        self.math_mode, self.checks, self.max_iterations = math_mode, checks, max_iterations
        eps = torch.finfo(dtype).eps
        rtol = RTOL["float64" if dtype == torch.float64 else "float32"]
        self.cancel_ratio = min(0.1, math.sqrt(CANCEL_MARGIN * eps / rtol))
        self.codes: dict[Any, Any] = {}
        self.namespace = {"torch": torch, "math": math, **custom.NAMESPACE}
        self.tie: Any = False
        self.cancel: Any = False
        self.footprint = 0  # numbers held by the run's values (the probe's measure for chunks)

    def run(self, env: dict[str, Any]) -> tuple[torch.Tensor, Any, Any]:
        self.tie, self.cancel, self.footprint = False, False, 0
        self.block(self.lowered.body, env)
        return self.operand(self.lowered.output, env), self.tie, self.cancel

    def mark(self, mask: torch.Tensor) -> None:
        self.tie = self.tie | torch.as_tensor(mask).any()

    def block(self, stmts: Sequence[Stmt], env: dict[str, Any]) -> None:
        for s in stmts:
            if isinstance(s, Step):
                self.step(s, env)
            elif isinstance(s, If):
                for br in s.branches:
                    if br.cond is None or bool(self.condition(br.cond, env)):
                        self.block(br.body, env)
                        break
            elif isinstance(s, While):
                count = 0
                while bool(self.condition(s.cond, env)):
                    count += 1
                    if count > self.max_iterations:
                        raise Stuck("a loop of the program ran past max_iterations")
                    self.block(s.body, env)
            elif isinstance(s, For):
                self.for_(s, env)
            elif isinstance(s, NoGrad):
                if self.math_mode:
                    self.block(s.body, env)
                else:
                    with torch.no_grad():
                        self.block(s.body, env)

    def for_(self, s: For, env: dict[str, Any]) -> None:
        bounds = [self.operand(b, env) for b in s.bounds]
        for b in bounds:
            if self.checks and b.requires_grad:
                self.mark(b == torch.trunc(b))
        start, stop, step = (int(torch.trunc(b.detach())) for b in bounds)
        for k, i in enumerate(range(start, stop, step)):
            if k >= self.max_iterations:
                raise Stuck("a loop of the program ran past max_iterations")
            env[s.var] = torch.tensor(float(i), dtype=self.dtype, device=self.device)
            self.block(s.body, env)

    def operand(self, o: Operand, env: dict[str, Any]) -> torch.Tensor:
        if isinstance(o, Const):
            return torch.tensor(float(o.value), dtype=self.dtype, device=self.device)
        return env[o]

    def condition(self, c: Cond, env: dict[str, Any]) -> torch.Tensor:
        key = ("cond", id(c))
        code = self.codes.get(key)
        if code is None:
            code = (compile(elementwise(c), self.lowered.filename, "eval"),
                    [compile(m, self.lowered.filename, "eval") for m in margin_texts(c)])
            self.codes[key] = code
        ns = dict(self.namespace)
        for _, name in c.names:
            ns[name] = env[name]
        truth = eval(code[0], ns)
        for margin in code[1] if self.checks else ():
            self.mark(eval(margin, ns) == 0)
        return truth if isinstance(truth, torch.Tensor) else torch.tensor(bool(truth), device=self.device)

    def step(self, s: Step, env: dict[str, Any]) -> None:
        args = [self.operand(a, env) for a in s.args]
        if s.op in ("item", "detach", "no_grad"):
            value = args[0] if self.math_mode else args[0].detach()
        elif s.op == custom.CUSTOM_OP and self.math_mode:
            value = args[0]  # the user's Function, for the mathematics: its forward's value
        elif s.op == "where":
            assert s.cond is not None
            value = torch.where(self.condition(s.cond, env), args[0], args[1])
        else:
            value = line_value(self.lowered, self.codes, self.namespace, s, args, self.dtype, self.device, env.__getitem__)
        self.footprint += value.numel()
        if self.checks:
            self.flags(s, args, value)
        env[s.name] = value

    def flags(self, s: Step, args: list[torch.Tensor], value: torch.Tensor) -> None:
        """The scalar runner's flags (`batch._Batch.step`), each reduced over the value's elements."""
        computed = not all(isinstance(a, Const) for a in s.args)
        with torch.no_grad():
            if s.op == "add" and computed and subtracts(s) and not self.exact_operands(s):
                first = next(a for a, o in zip(args, s.args) if not isinstance(o, Const)).abs()
                self.cancel = self.cancel | (value.abs() * (1 / self.cancel_ratio) < first).any()
            if s.op in REDUCTIONS and computed:
                # A sum whose terms (nearly) cancel: the same line on the terms' magnitudes.
                size = line_value(self.lowered, self.codes, self.namespace, s, [a.abs() for a in args], self.dtype,
                                  self.device)
                self.cancel = self.cancel | (value.abs() * (1 / self.cancel_ratio) < size).any()
            if s.op == "softplus" and computed:
                self.cancel = self.cancel | (args[0] > SOFTPLUS_THRESHOLD).any()
                self.mark(args[0] == SOFTPLUS_THRESHOLD)
            if s.op == "exp" and computed:
                self.cancel = self.cancel | ((value == 0) | torch.isinf(value)).any()
            test = TIE_TESTS.get(s.op)
            if test is not None:
                self.mark(test(args))
            if s.op in PARAM_TIES:
                self.mark(PARAM_TIES[s.op](args, s.param))
            if s.op in VALUE_TIES:
                self.mark(VALUE_TIES[s.op](args, value, s.param))
            if s.op == "std_along":  # every element of the group equal: the cone's tip
                _, _, n, d, j = s.param
                group = args[j * n:(j + 1) * n] if d == 1 else args[j::n]
                self.mark(torch.stack(torch.broadcast_tensors(*[u == group[0] for u in group])).all(0))

    def exact_operands(self, s: Step) -> bool:
        return all(isinstance(a, Const) or a in self.lowered.inputs for a in s.args)


def run_tensor_batch(lowered: LoweredProgram, columns: Mapping[str, torch.Tensor], fixed: Mapping[str, torch.Tensor], *,
                     math_mode: bool = False, grad: bool = True, checks: bool = True,
                     max_iterations: int = 10_000, loop: bool = False) -> TensorRun:
    """The program on every point: `columns` are the swept scalar inputs (one value per point,
    shape (N,)), `fixed` the inputs held at one value (tensors, unbatched). Returns the values,
    the gradients with respect to each column (in `columns` order) and the flags per point.
    `loop=True` runs point by point without trying vmap (what a failed vmap falls back to)."""
    names = list(columns)
    cols = list(columns.values())
    n = cols[0].shape[0]
    dtype, device = cols[0].dtype, cols[0].device
    runner = _Point(lowered, dtype, device, math_mode, checks, max_iterations)
    chunk = 1
    if not loop and n:
        try:
            probe = _at(runner, names, [c[:1] for c in cols], fixed, grad)  # also the measure of a point
            chunk = max(1, min(MAX_CHUNK, ELEMENTS // max(1, runner.footprint)))
            del probe
            ran = _vmapped(runner, names, cols, fixed, grad, chunk)
            # (the float symbolic derivative, `checks=False`, is a cross-check only: not run again)
            return _rechecked(ran, runner, names, cols, fixed, grad) if checks else ran
        except SymgradError:  # a sentence for the user (a function that is not one number per point)
            raise
        except Exception as err:  # noqa: BLE001 - vmap refused the program: each point on its own
            note: str | None = (f"torch.func.vmap could not run the translation on a batch of points ({_reason(err)}); "
                                f"each of the {n:,} points ran on its own instead, one after another: slower, the same answers")
    else:
        note = None
    value, grads, tie, stuck, cancel = _looped(runner, names, cols, fixed, grad)
    return TensorRun(value, grads, tie, stuck, cancel, note, chunk)  # (the chunk a batch of this size would take)


def _reason(err: Exception) -> str:
    """vmap's own reason, its first sentence (an `if` or `while` on a value of the point says
    "data-dependent control flow")."""
    text = " ".join(str(err).split()) or type(err).__name__
    text = text.removeprefix("vmap: ")
    return text.split(". ")[0].rstrip(".")[:200]


def _at(runner: _Point, names: list[str], cols: list[torch.Tensor], fixed: Mapping[str, torch.Tensor],
        grad: bool) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """The first of `cols`' points, without vmap: its value, gradients, tie and cancel flags."""
    leaves = [c[0].detach().requires_grad_(grad) for c in cols]
    with torch.enable_grad():
        out, tie, cancel = runner.run({**fixed, **dict(zip(names, leaves))})
        out = _scalar(out)
        grads = _grads(out, leaves) if grad else []
    return out.detach(), grads, torch.as_tensor(tie), torch.as_tensor(cancel)


def _scalar(out: torch.Tensor) -> torch.Tensor:
    if out.numel() != 1:
        raise ShapeError(
            f"A sweep compares one number per point, and this function returns a tensor of shape "
            f"{tuple(out.shape)} at each point.\nEach point of a sweep is one gradient of one output; a "
            "tensor output has a Jacobian there.\nFix: sweep a number made of it (a function returning "
            "`f(x, W).sum()` or one element, `f(x, W)[0, 1]`), or compare() it at a point, where every "
            "element is an entry.")
    return out.reshape(())


def _grads(out: torch.Tensor, leaves: list[torch.Tensor]) -> list[torch.Tensor]:
    if not out.requires_grad:
        return [torch.full_like(c, math.nan) for c in leaves]
    found = torch.autograd.grad(out.sum(), leaves, allow_unused=True, materialize_grads=True)
    return [g.detach() for g in found]


def _vmapped(runner: _Point, names: list[str], cols: list[torch.Tensor], fixed: Mapping[str, torch.Tensor],
             grad: bool, chunk: int) -> TensorRun:
    n = cols[0].shape[0]
    value = torch.empty(n, dtype=cols[0].dtype, device=cols[0].device)
    grads = [torch.empty_like(value) for _ in cols] if grad else []
    tie = torch.zeros(n, dtype=torch.bool, device=value.device)
    cancel = torch.zeros_like(tie)

    def one(*scalars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, t, c = runner.run({**fixed, **dict(zip(names, scalars))})
        return (_scalar(out), torch.as_tensor(t, device=value.device).reshape(()),
                torch.as_tensor(c, device=value.device).reshape(()))

    batched = torch.func.vmap(one, randomness="error")
    for start in range(0, n, chunk):
        leaves = [c[start:start + chunk].detach().requires_grad_(grad) for c in cols]
        with torch.enable_grad():
            out, t, c = batched(*leaves)
            if grad:
                for whole, g in zip(grads, _grads(out, leaves)):
                    whole[start:start + chunk] = g
        value[start:start + chunk] = out.detach()
        tie[start:start + chunk] = t
        cancel[start:start + chunk] = c
    return TensorRun(value, grads, tie, torch.zeros_like(tie), cancel, None, chunk)


def _rechecked(ran: TensorRun, runner: _Point, names: list[str], cols: list[torch.Tensor],
               fixed: Mapping[str, torch.Tensor], grad: bool) -> TensorRun:
    """`ran` with a note where some of RECHECK points, run on their own, part from the batch."""
    n = cols[0].shape[0]
    m = min(n, RECHECK)
    rows = sorted({round(k * (n - 1) / max(1, m - 1)) for k in range(m)})
    parted, worst = 0, 0.0
    for i in rows:
        try:
            value, grads, _, _ = _at(runner, names, [c[i:i + 1] for c in cols], fixed, grad)
        except Stuck:
            continue
        batch = [ran.value[i], *(g[i] for g in ran.grads)]
        pairs = [(float(a), float(b)) for a, b in zip(batch, [value, *grads])]
        if not all(_same(a, b) for a, b in pairs):
            parted += 1
            worst = max([worst, *(abs(a - b) / max(abs(b), 1e-300) for a, b in pairs if math.isfinite(a - b))])
    if not parted:
        return ran
    note = (f"torch's batched run rounded otherwise than a run of one point at {parted} of {len(rows)} points run "
            f"again on their own (by at most {worst:.2g}, relative): the value and autograd columns are the batch's, "
            "each point's cause is decided within the tolerance, and the points compared exactly ran on their own")
    return replace(ran, note=note)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def _looped(runner: _Point, names: list[str], cols: list[torch.Tensor], fixed: Mapping[str, torch.Tensor],
            grad: bool) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    n = cols[0].shape[0]
    value = torch.full((n,), math.nan, dtype=cols[0].dtype, device=cols[0].device)
    grads = [torch.full_like(value, math.nan) for _ in cols] if grad else []
    tie = torch.zeros(n, dtype=torch.bool, device=value.device)
    stuck, cancel = torch.zeros_like(tie), torch.zeros_like(tie)
    for i in range(n):
        try:
            v, g, t, c = _at(runner, names, [col[i:i + 1] for col in cols], fixed, grad)
        except Stuck:
            stuck[i] = True
            continue
        value[i], tie[i], cancel[i] = v, t, c
        for whole, one in zip(grads, g):
            whole[i] = one
    return value, grads, tie, stuck, cancel
