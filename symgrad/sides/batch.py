"""A lowered program run on a whole batch of points at once, forward and backward (`run_batch`).

The IR is run with masks (`_Batch`), so an `if` runs each branch on the points that take it
(only those: no NaN traps that the program does not have), and a `while` keeps iterating on the
points whose condition still holds. Each line runs the very text of the generated program. The
run also records which points sit exactly on a threshold or kink (the tie mask), which lost
digits in a cancelling subtraction (the cancellation mask), and which passed `max_iterations`
(the stuck mask). Sweeps (`symgrad.tools.sweep`) and trace's loop guard stand on it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import sympy as sp
import torch

from ..program import custom
from ..program.primitives import SOFTPLUS_THRESHOLD
from .batch_keys import flag_key
from .executed import DEFAULT_MAX_ITERATIONS
from .ir import Cond, Const, For, If, LoweredProgram, NoGrad, Operand, Step, Stmt, While, has_loop, statement_expression
from .lowering import RTOL, elementwise
from .spelling import Inline


_TIE_TEST: dict[str, Callable[[list[torch.Tensor]], torch.Tensor]] = {
    "relu": lambda a: a[0] == 0,
    "abs": lambda a: a[0] == 0,
    "sign": lambda a: a[0] == 0,
    "heaviside": lambda a: a[0] == 0,
    "floor": lambda a: a[0] == torch.floor(a[0]),
    "ceil": lambda a: a[0] == torch.floor(a[0]),
    "maximum": lambda a: a[0] == a[1],
    "minimum": lambda a: a[0] == a[1],
    # torch masks x ** y's gradient wrt the base where y = 0 and wrt the exponent where x = 0.
    "pow": lambda a: (a[0] == 0) | (a[1] == 0),
    "atan2": lambda a: (a[0] == 0) & (a[1] == 0),  # undefined at the origin
    "vector_norm": lambda a: torch.stack([u == 0 for u in a]).all(0),  # the cone's tip
    **{op: (lambda a, f=f: (lambda m: (m == f(m, 0).values).sum(0) > 1)(torch.stack(torch.broadcast_tensors(*a))))
       for op, f in (("amax", torch.max), ("max_at", torch.max), ("amin", torch.min), ("min_at", torch.min))},  # a tie
    "std": lambda a: torch.stack(torch.broadcast_tensors(*[u == a[0] for u in a])).all(0),  # every element equal
    # The rule table's other corners and jumps (`rules.py`, `nonsmooth`): a point on one is
    # compared exactly, which decides (a slope of 1 or alpha = 1 has no kink there).
    "leaky_relu": lambda a: a[0] == 0,
    "elu": lambda a: a[0] == 0,
    "round_even": lambda a: a[0] - torch.floor(a[0]) == 0.5,  # jumps at the half-integers
}
# Corners whose place is the step's parameter: clamp's bound, hardtanh's two.
PARAM_TIES: dict[str, Callable[[list[torch.Tensor], Any], torch.Tensor]] = {
    "clamp_min": lambda a, p: a[0] == float(p),
    "clamp_max": lambda a, p: a[0] == float(p),
    "hardtanh": lambda a, p: (a[0] == float(p[0])) | (a[0] == float(p[1])),
}


def _norm_at_eps(a: list[torch.Tensor], value: torch.Tensor, p: Any) -> torch.Tensor:
    """F.normalize's kink: a row's (column's) norm exactly at eps. Its operands are the (n, C)
    matrix itself ("whole") or its elements in row-major order, each with the points' shape."""
    n, c, dim, eps = (int(p[0]), int(p[1]), int(p[2]), float(p[3]))
    if len(p) == 6:  # one element (i, j): its own row's (column's) norm, not the whole matrix's
        i, j = int(p[4]), int(p[5])
        group = [a[i * c + k] for k in range(c)] if dim == 1 else [a[k * c + j] for k in range(n)]
        return torch.linalg.vector_norm(torch.stack(group, -1), dim=-1) == eps
    x = a[0] if len(p) == 5 and p[4] == "whole" else torch.stack(a, -1).reshape(*a[0].shape, n, c)
    return (torch.linalg.vector_norm(x, dim=-2 if dim == 0 else -1) == eps).any(-1)


# Corners read off the step's value and parameter: a zero distance (cdist's cone), a norm at eps.
VALUE_TIES: dict[str, Callable[[list[torch.Tensor], torch.Tensor, Any], torch.Tensor]] = {
    "cdist": lambda a, v, p: v == 0,
    "cdist_matrix": lambda a, v, p: v == 0,
    "normalize": _norm_at_eps,
    "normalize_matrix": _norm_at_eps,
    # torch.sort/topk's values: the element at position p ties with another (program/orders.py)
    "order_at": lambda a, v, p: (torch.stack(a) == v).sum(0) > 1,
    # F.cosine_similarity: a norm of group j exactly at eps (program/cosine.py)
    "cos_sim": lambda a, v, p: _cos_norm_at_eps(a, p),
}


def _cos_norm_at_eps(a: list[torch.Tensor], p: Any) -> torch.Tensor:
    m, n, d, j, eps = int(p[0]), int(p[1]), int(p[2]), int(p[3]), float(p[4])
    at = [j * n + k for k in range(n)] if d == 1 else [k * n + j for k in range(m)]
    norms = [torch.linalg.vector_norm(torch.stack([a[off + k] for k in at], -1), dim=-1) for off in (0, m * n)]
    return (norms[0] == eps) | (norms[1] == eps)


# How much larger than eps * ratio**2 autograd's error after a cancelling difference may be, and
# the difference still not flagged (see `_Batch.cancel_ratio`).
CANCEL_MARGIN: Final = 100.0

# Each generated line compiled once per lowering (a sweep's runs, and the sample of its symbolic
# derivative, reuse them); only the most recent lowerings are kept.
_COMPILED: dict[str, dict[Any, Any]] = {}
_COMPILED_KEEP: Final = 256


_COMPILED_LOCK = threading.Lock()  # sweeps may run in several threads


def _compiled_lines(filename: str) -> dict[Any, Any]:
    with _COMPILED_LOCK:
        codes = _COMPILED.pop(filename, None)
        if codes is None:
            codes = {}
            while len(_COMPILED) >= _COMPILED_KEEP:
                _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[filename] = codes  # most recent last
        return codes


class _Batch:
    """Run a lowered program's IR on a batch, with masks for control flow."""

    def __init__(self, lowered: LoweredProgram, n: int, device: torch.device, dtype: torch.dtype,
                 math_mode: bool, max_iterations: int, checks: bool = True) -> None:
        self.checks = checks  # record ties and cancellations (not needed for a derivative's values)
        self.lowered = lowered
        self.n = n
        self.device = device
        self.dtype = dtype
        self.math_mode = math_mode
        self.max_iterations = max_iterations
        # The masks, each None until a point is marked in it (most runs mark one or two of the three).
        self.tie: torch.Tensor | None = None
        self.stuck: torch.Tensor | None = None
        self.cancel: torch.Tensor | None = None
        # Flag a difference that lost more digits than the comparison's tolerance can absorb,
        # counting the backward pass: differentiating a cancelling difference cancels about as
        # many digits again, times a constant of the formula (autograd's error in
        # (1 - cos x)/x**2 is about 24*eps/x**4 = 6*eps*ratio**2), so a difference may lose at
        # most half of log10(rtol / eps), less one digit (a constant of up to 100).
        eps = torch.finfo(dtype).eps
        rtol = RTOL["float64" if dtype == torch.float64 else "float32"]
        self.cancel_ratio = min(0.1, math.sqrt(CANCEL_MARGIN * eps / rtol))
        self.codes = _compiled_lines(lowered.filename)
        self.namespace = {"torch": torch, "math": math, **custom.NAMESPACE}  # the user's autograd.Functions

    # -- variables on a subset of the batch

    def read(self, env: dict[str, torch.Tensor], name: str, idx: torch.Tensor | None) -> torch.Tensor:
        v = env[name]
        return v if idx is None or v.ndim == 0 else v[idx]

    def write(self, env: dict[str, torch.Tensor], name: str, idx: torch.Tensor | None, value: torch.Tensor) -> None:
        if idx is None:
            env[name] = value
            return
        base = env.get(name)
        if base is None or base.ndim == 0:
            fill = base if base is not None else torch.tensor(math.nan, dtype=self.dtype, device=self.device)
            base = fill.expand(self.n).to(value.dtype)
        if value.ndim == 0:
            value = value.expand(idx.shape[0])
        if value.dtype != base.dtype and value.is_floating_point() and base.is_floating_point():
            # A constant kept on the graph through a loop variable (`i * 0 + 1`, float64 here) into
            # a variable of the program's dtype: the same number.
            value = value.to(base.dtype)
        env[name] = base.index_put((idx,), value)

    def mark(self, mask: torch.Tensor, idx: torch.Tensor | None) -> None:
        self.tie = self._merge(self.tie, mask, idx)

    def _merge(self, acc: torch.Tensor | None, mask: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        """`acc` with the points of `mask` (on the batch, or on its subset `idx`) marked. The first
        mask of the whole batch is taken as it is (each test makes a new tensor), not or-ed into zeros."""
        if mask.ndim == 0:
            mask = mask.expand(self.n if idx is None else idx.shape[0])
        if idx is None:
            if acc is None:
                return mask.clone() if mask.stride(0) == 0 else mask
            return acc.logical_or_(mask)
        if acc is None:
            acc = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        return acc.index_put((idx,), acc[idx] | mask)

    # -- statements

    def block(self, stmts: Sequence[Stmt], env: dict[str, torch.Tensor], idx: torch.Tensor | None) -> None:
        for s in stmts:
            if idx is not None and idx.numel() == 0:
                return
            if isinstance(s, Step):
                self.step(s, env, idx)
            elif isinstance(s, If):
                self.if_(s, env, idx)
            elif isinstance(s, While):
                self.while_(s, env, idx)
            elif isinstance(s, For):
                self.for_(s, env, idx)
            elif isinstance(s, NoGrad):
                if self.math_mode:
                    self.block(s.body, env, idx)
                else:
                    with torch.no_grad():
                        self.block(s.body, env, idx)

    def operand(self, o: Operand, env: dict[str, torch.Tensor], idx: torch.Tensor | None) -> torch.Tensor:
        if isinstance(o, Const):
            # Made once per lowering, dtype and device (each chunk of a sweep reads the same constants);
            # no step writes into an operand.
            key = ("const", o.value, self.dtype, self.device)
            value = self.codes.get(key)  # type: ignore[call-overload]
            if value is None:
                value = torch.tensor(float(o.value), dtype=self.dtype, device=self.device)
                self.codes[key] = value  # type: ignore[index]
            return value
        return self.read(env, o, idx)

    def step(self, s: Step, env: dict[str, torch.Tensor], idx: torch.Tensor | None) -> None:
        args = [self.operand(a, env, idx) for a in s.args]
        if s.op == custom.CUSTOM_OP:  # the user's own Function: no constant that other runs share is handed to it
            args = [a.clone() if a.ndim == 0 else a for a in args]
        if s.op in ("item", "detach", "no_grad"):
            value = args[0] if self.math_mode else args[0].detach()
            if s.op == "item":
                value = value.clone()
        elif s.op == "cast" and self.math_mode:
            value = args[0]  # `.float()` of a computed value: the identity for the mathematics
        elif s.op == custom.CUSTOM_OP and self.math_mode:
            value = args[0]  # the user's Function, for the mathematics: its forward's value
        elif s.op == "where":
            assert s.cond is not None
            cond = self.condition(s.cond, env, idx)
            value = torch.where(cond, args[0], args[1])
        else:
            value = line_value(self.lowered, self.codes, self.namespace, s, args, self.dtype, self.device,
                               lambda n: self.read(env, n, idx))
        if not self.checks:
            pass
        elif s.op == "add" and value.ndim and _subtracts(s) and not self.exact_operands(s):
            # Cancellation: a difference much smaller than its terms lost digits, and a float
            # comparison cannot be trusted there (both float sides may share the error).
            # A sum far smaller than its first term means its terms (nearly) cancelled.
            with torch.no_grad():
                first = next(a for a in args if a.ndim).abs()
                self.cancel = self._merge(self.cancel, value.abs().mul_(1 / self.cancel_ratio) < first, idx)
        if self.checks and s.op == "softplus" and value.ndim:
            # Above its threshold torch's softplus returns its argument itself (slope 1, not
            # sigmoid's): the mathematics differs there by less than a float comparison sees.
            with torch.no_grad():
                self.cancel = self._merge(self.cancel, args[0] > SOFTPLUS_THRESHOLD, idx)
            self.mark(args[0] == SOFTPLUS_THRESHOLD, idx)
        if self.checks and s.op == "exp" and value.ndim:
            # exp underflowed to 0 (or overflowed): a later division or log may hide it.
            with torch.no_grad():
                self.cancel = self._merge(self.cancel, (value == 0) | torch.isinf(value), idx)
        test = _TIE_TEST.get(s.op) if self.checks else None
        if test is not None:
            self.mark(test(args), idx)
        if self.checks and s.op in PARAM_TIES:
            self.mark(PARAM_TIES[s.op](args, s.param), idx)
        if self.checks and s.op in VALUE_TIES:
            with torch.no_grad():
                self.mark(VALUE_TIES[s.op](args, value, s.param), idx)
        if self.checks and s.op == "std_along":  # every element of the group equal: the cone's tip
            _, _, n, d, j = s.param
            group = args[j * n:(j + 1) * n] if d == 1 else args[j::n]
            self.mark(torch.stack(torch.broadcast_tensors(*[u == group[0] for u in group])).all(0), idx)
        self.write(env, s.name, idx, value)

    def exact_operands(self, s: Step) -> bool:
        """Inputs and constants carry no rounding error, so their difference is exact (`x - 1`
        near 1 loses nothing): only differences of computed values can cancel digits."""
        return all(isinstance(a, Const) or a in self.lowered.inputs for a in s.args)

    def condition(self, c: Cond, env: dict[str, torch.Tensor], idx: torch.Tensor | None) -> torch.Tensor:
        key = ("cond", id(c))
        code = self.codes.get(key)  # type: ignore[call-overload]
        if code is None:
            code = (compile(elementwise(c), self.lowered.filename, "eval"),
                    [compile(_on_text(c, rel), self.lowered.filename, "eval") for rel in _relations(c.expr)])
            self.codes[key] = code  # type: ignore[index]
        ns = dict(self.namespace)
        for _, name in c.names:
            ns[name] = self.read(env, name, idx)
        truth = eval(code[0], ns)
        for on in code[1] if self.checks else ():
            self.mark(torch.as_tensor(eval(on, ns), device=self.device), idx)
        if not isinstance(truth, torch.Tensor):
            truth = torch.tensor(bool(truth), device=self.device)
        size = self.n if idx is None else idx.shape[0]
        return truth.expand(size) if truth.ndim == 0 else truth

    def if_(self, s: If, env: dict[str, torch.Tensor], idx: torch.Tensor | None) -> None:
        here = idx if idx is not None else torch.arange(self.n, device=self.device)
        left = torch.ones(here.shape[0], dtype=torch.bool, device=self.device)
        for br in s.branches:
            if br.cond is None:
                take = left
            else:
                take = left & self.condition(br.cond, env, idx)
            left = left & ~take
            sub = here[take]
            if sub.numel():
                self.block(br.body, env, sub)

    def while_(self, s: While, env: dict[str, torch.Tensor], idx: torch.Tensor | None) -> None:
        active = idx if idx is not None else torch.arange(self.n, device=self.device)
        count = 0
        while active.numel():
            cond = self.condition(s.cond, env, active)
            active = active[cond]
            if not active.numel():
                return
            count += 1
            if count > self.max_iterations:
                self.stuck = self._merge(self.stuck, torch.ones_like(active, dtype=torch.bool), active)
                return
            self.block(s.body, env, active)

    def for_(self, s: For, env: dict[str, torch.Tensor], idx: torch.Tensor | None) -> None:
        here = idx if idx is not None else torch.arange(self.n, device=self.device)
        bounds = [self.operand(b, env, idx) for b in s.bounds]
        start, stop, step = (torch.trunc(b.detach()).to(torch.int64).expand(here.shape[0]) for b in bounds)
        counts = torch.clamp(torch.div(stop - start + step - torch.sign(step), step, rounding_mode="trunc"), min=0)
        for b in bounds:
            if b.ndim and b.requires_grad:
                self.mark(b == torch.trunc(b), idx)
        top = int(counts.max()) if counts.numel() else 0
        if top > self.max_iterations:
            over = here[counts > self.max_iterations]
            self.stuck = self._merge(self.stuck, torch.ones_like(over, dtype=torch.bool), over)
        for k in range(min(top, self.max_iterations)):
            keep = counts > k
            sub = here[keep]
            value = (start[keep] + k * step[keep]).to(self.dtype)
            self.write(env, s.var, sub, value)
            self.block(s.body, env, sub)


def line_value(lowered: LoweredProgram, codes: dict[Any, Any], namespace: dict[str, Any], s: Step,
               args: Sequence[torch.Tensor], dtype: torch.dtype, device: torch.device,
               read: Callable[[str], torch.Tensor] | None = None) -> torch.Tensor:
    """A step's value: the generated line's own text (compiled once into `codes`), run on `args`.
    A name the text reads that is not an operand of the step (a loss given whole tensors,
    `binary_cross_entropy(s_p.reshape(-1), ...)`, whose operands are their elements) is `read`'s."""
    key = ("elem", s.args[0], s.param) if s.op == "elem" else s.line
    code = codes.get(key)
    if code is None:
        # an element read runs as its own text, printed or not (`lowering_lines`: a read that only
        # the exact sides need is not a line of the program)
        text = f"{s.args[0]}[{s.param[0]}, {s.param[1]}]" if s.op == "elem" else statement_expression(lowered, s)
        code = compile(text, lowered.filename, "eval")
        codes[key] = code
    ns = dict(namespace)
    for a, v in zip(s.args, args):
        if isinstance(a, str):
            ns[a] = v
    if read is not None:
        for n in code.co_names:
            if n not in ns:
                try:
                    ns[n] = read(n)
                except KeyError:
                    pass  # a name of torch's or Python's
    value = eval(code, ns)  # the generated line's own text, compiled once
    return value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=dtype, device=device)


def _subtracts(s: Step) -> bool:
    signs, const = s.param
    return any(x < 0 for x in signs) or (const != 0 and bool(const.is_negative) != (signs[0] < 0))


def _relations(c: sp.Basic) -> list[sp.Basic]:
    if isinstance(c, sp.core.relational.Relational):
        return [c]
    return [r for a in getattr(c, "args", ()) for r in _relations(a)]


def _margin_text(c: Cond, rel: sp.Basic) -> str:
    inline = Inline(dict(c.names), True)
    return f"({inline.value(rel.lhs)}) - ({inline.value(rel.rhs)})"


def _on_text(c: Cond, rel: sp.Basic) -> str:
    """The text of whether a point is on the relation: its margin is 0. Against a finite number
    that is `lhs == rhs` itself, one op fewer: in floats, a - c == 0 exactly when a == c for a
    finite c (a difference of two finite floats is 0 only between equal ones, a - c is infinite
    for an infinite a, and NaN compares unequal either way; both sides round c to the dtype)."""
    if isinstance(rel.rhs, sp.Number) and rel.rhs.is_finite:
        inline = Inline(dict(c.names), True)
        return f"({inline.value(rel.lhs)}) == ({inline.value(rel.rhs)})"
    return f"({_margin_text(c, rel)}) == 0"


# A straight-line program runs on the CPU in chunks of at most this many points: each chunk's
# intermediates stay in the cache, and their memory is reused by the next chunk instead of being
# fresh pages each time (10^6 points of (1 - cos x)/x**2, forward and backward with the flags,
# measured here: 7.1 ms in chunks of 2^16, 22 to 42 ms in one piece, most of it page faults).
# A program with a loop runs in one piece: its statements run once per iteration, and chunks
# would multiply that Python overhead.
CHUNK: Final = 2**16
# torch splits an elementwise op among its intra-op threads only above this many elements
# (ATen's GRAIN_SIZE): every op on a chunk this size runs whole on the thread that calls it.
GRAIN: Final = 2**15
# At most this many workers: the Python side of a chunk's ops (about a quarter of a 2^15-point
# chunk's time, measured on (1 - cos x)/x**2 and a where) holds the GIL, so more workers than
# about four to eight would wait on it rather than on torch.
MAX_WORKERS: Final = 8


def chunking(n: int, threads: int) -> tuple[int, int]:
    """(points per chunk, worker threads) for a straight-line run of `n` points on the CPU, with
    torch's intra-op thread count `threads` (read, never set: it is process-wide).

    With one thread, chunks of CHUNK run one after another. With T threads, T workers of our own
    take chunks of at most GRAIN points from a shared counter, and each runs its chunk's ops on
    its own thread: torch does not split an op that small, so no op waits at a barrier for all T
    threads. On a machine where another process holds a core, torch's split ops each wait for
    the thread that was descheduled (every op, many per chunk); here a worker that is
    descheduled only takes fewer chunks, and the others take the rest. Beyond MAX_WORKERS
    threads, the others are left to whatever else the process runs."""
    if threads <= 1 or n <= GRAIN:
        return min(CHUNK, max(n, 1)), 1
    size = min(CHUNK, GRAIN)
    return size, min(threads, MAX_WORKERS, -(-n // size))


def run_batch(lowered: LoweredProgram, columns: Sequence[torch.Tensor], *, math_mode: bool = False,
              grad: bool = True, checks: bool = True, max_iterations: int = DEFAULT_MAX_ITERATIONS,
              cancel_out: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Forward (and backward) of the program on a batch: (value, gradients, tie mask, stuck mask).
    The tie mask holds the points near a cancellation too, unless `cancel_out` is given: then it
    receives the cancellation mask, and the tie mask holds only ties. A mask in which no point was
    marked is handed as a view of one False (to read, not to write into)."""
    n = columns[0].shape[0]
    size, workers = chunking(n, torch.get_num_threads())
    if n <= size or columns[0].device.type != "cpu" or has_loop(lowered.body):
        value, grads, *masks = _run_batch(lowered, columns, math_mode, grad, checks, max_iterations)
    else:
        value, grads, *masks = _chunks(lowered, columns, size, workers, math_mode, grad, checks, max_iterations)
    # A mask no point was marked in is False for every point: one False seen n times (a view, no memory).
    tie, stuck, cancel = (torch.zeros((), dtype=torch.bool, device=value.device).expand(n) if m is None else m
                          for m in masks)
    if cancel_out is not None:
        # Per point: whether a difference cancelled too many digits (or an exp underflowed or
        # overflowed) for a float comparison.
        cancel_out.append(cancel)
        return value, grads, tie, stuck
    return value, grads, tie | cancel, stuck


def run_keyed(lowered: LoweredProgram, columns: Sequence[torch.Tensor], wrt: Sequence[int], *,
              max_iterations: int = DEFAULT_MAX_ITERATIONS) -> tuple[torch.Tensor, list[torch.Tensor], np.ndarray]:
    """A sweep's run: forward and backward of the program on a batch, with each point's state
    (`batch_keys.flag_key`, autograd read on the inputs `wrt`) in place of the masks: (value,
    gradients, states). A chunked run writes each chunk's states while its values are in the
    cache; its masks are never made whole."""
    n = columns[0].shape[0]
    size, workers = chunking(n, torch.get_num_threads())
    if n <= size or columns[0].device.type != "cpu" or has_loop(lowered.body):
        value, grads, tie, stuck, cancel = _run_batch(lowered, columns, False, True, True, max_iterations)
        key = flag_key(*(None if m is None else m.cpu().numpy() for m in (tie, cancel)),
                       [grads[k].cpu().numpy() for k in wrt], value.cpu().numpy(),
                       None if stuck is None else stuck.cpu().numpy())
        return value, grads, key
    value, grads, key = _chunks(lowered, columns, size, workers, False, True, True, max_iterations, wrt)
    return value, grads, key.numpy()


def _chunk_key(part: tuple[Any, ...], wrt: Sequence[int]) -> torch.Tensor:
    """A chunk's states (`flag_key`) from its value, gradients and masks (CPU tensors)."""
    value, grads, tie, stuck, cancel = part
    return torch.from_numpy(flag_key(*(None if m is None else m.numpy() for m in (tie, cancel)),
                                     [grads[k].numpy() for k in wrt], value.numpy(),
                                     None if stuck is None else stuck.numpy()))


def _chunks(lowered: LoweredProgram, columns: Sequence[torch.Tensor], size: int, workers: int, math_mode: bool,
            grad: bool, checks: bool, max_iterations: int, keyed: Sequence[int] | None = None) -> tuple[Any, ...]:
    """`_run_batch` chunk by chunk, each chunk's results written into the whole batch's tensors
    (allocated once, no concatenation), by `workers` threads taking the next chunk as they finish.
    A mask stays None until a chunk marks a point in it (then it is made, False elsewhere). With
    `keyed` (the inputs autograd is read on), each chunk's states are written in place of its
    masks: (value, gradients, states)."""
    n = columns[0].shape[0]
    starts = list(range(0, n, size))
    out: list[Any] = [None] * (3 if keyed is not None else 5)
    lock = threading.Lock()
    taken = iter(starts)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                with lock:
                    start = next(taken, None)
                    if start is None or errors:
                        return
                part = _run_batch(lowered, [c[start:start + size] for c in columns], math_mode, grad, checks,
                                  max_iterations)
                if keyed is not None:
                    part = (part[0], part[1], _chunk_key(part, keyed))
                with lock:
                    if out[0] is None:  # the whole batch's tensors, shaped and typed as the first chunk's
                        out[:2] = [_whole(part[0], n), [_whole(g, n) for g in part[1]]]
                        if keyed is not None:
                            out[2] = _whole(part[2], n)
                    for k in range(2, len(out)):
                        if out[k] is None and part[k] is not None:
                            out[k] = torch.zeros(n, dtype=torch.bool, device=part[k].device)
                stop = start + part[0].shape[0]
                for whole, piece in ((out[0], part[0]), *zip(out[1], part[1]), *zip(out[2:], part[2:])):
                    if piece is not None:
                        whole[start:stop] = piece
        except BaseException as err:  # raised in the caller's thread below
            with lock:
                errors.append(err)

    threads = [threading.Thread(target=work, name=f"symgrad-batch-{k}", daemon=True) for k in range(workers - 1)]
    for t in threads:
        t.start()
    work()  # the calling thread is one of the workers
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return tuple(out)


def _whole(piece: torch.Tensor, n: int) -> torch.Tensor:
    return torch.empty((n, *piece.shape[1:]), dtype=piece.dtype, device=piece.device)


def _run_batch(lowered: LoweredProgram, columns: Sequence[torch.Tensor], math_mode: bool, grad: bool, checks: bool,
               max_iterations: int) -> tuple[Any, ...]:
    """One piece of `run_batch`: (value, gradients, tie mask, stuck mask, cancellation mask), each
    mask None where no point was marked in it."""
    n = columns[0].shape[0]
    dtype = columns[0].dtype
    inputs = [c.detach().requires_grad_(grad) for c in columns]  # a new leaf on the same numbers
    runner = _Batch(lowered, n, columns[0].device, dtype, math_mode, max_iterations, checks)
    env = dict(zip(lowered.inputs, inputs))
    with torch.enable_grad():
        runner.block(lowered.body, env, None)
        out = runner.operand(lowered.output, env, None)
        if out.ndim == 0:
            out = out.expand(n).clone()  # (a constant's tensor is shared by every run of the lowering)
        grads: list[torch.Tensor] = []
        if grad:
            if out.requires_grad:
                grads = list(torch.autograd.grad(out.sum(), inputs, allow_unused=True, materialize_grads=True))
            else:
                grads = [torch.full_like(c, math.nan) for c in columns]
    return out.detach(), [g.detach() for g in grads], runner.tie, runner.stuck, runner.cancel


# The flags' rules, read by the runner of tensor programs (`batch_tensors`) as well.
TIE_TESTS: Final = _TIE_TEST
subtracts: Final = _subtracts


def margin_texts(c: Cond) -> list[str]:
    """Each relation of a condition as the text of `lhs - rhs` (zero: the point is on it)."""
    return [_margin_text(c, rel) for rel in _relations(c.expr)]
