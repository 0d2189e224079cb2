"""The training-step mistakes of D2L's preliminaries, caught at the user's own line.

    with sg.pitfalls.watch([w, b]) as watcher:      # a TorchFunctionMode plus snapshots of .grad
        train_one_step()
    watcher.findings                                # a tuple of Finding records

    sg.pitfalls.check_step(step, [w, b])            # runs step() twice; returns the findings

Each `Finding` has a `kind`, the `source` (a `SourceSpan` of the user's line: the first frame
outside torch and symgrad), an `explanation` and a `hint`. The kinds:

- `grad-accumulated`: `backward()` while a parameter already holds a nonzero gradient that
  nothing set to zero (asked as a question, once: accumulation can be intended);
- `ascent`: an update moved a parameter along +grad (`w += lr * w.grad`), judged by the
  direction of the whole update against the gradient it used;
- `non-scalar-backward`: `backward()` on a tensor of more than one element without `gradient=`,
  or `torch.autograd.grad` of one without `grad_outputs=`;
- `graph-cut-before-backward`: a parameter received no gradient from `backward()` because an
  `.item()`, `.numpy()`, `.detach()`, `.data` or `torch.no_grad()` took its value out of the
  autograd graph on the way to the loss (the finding cites that line);
- `backward-twice`: a second `backward()` through a graph the first one freed;
- `zeroed-before-step`: the gradients were zeroed (`optimizer.zero_grad()`, `w.grad = None`,
  `w.grad.zero_()`) after `backward()` and before any update used them, and no parameter moved:
  training never moves.

How each is found: the mode sees every torch call. At `backward()` it walks the loss's autograd
graph (`grad_fn.next_functions`) to the `AccumulateGrad` nodes of the watched parameters, so "the
parameter received no gradient" and "this graph was freed by an earlier backward" are structural
facts, not guesses from torch's error text. In-place changes to a parameter's storage (`w -= ...`,
`w.data.add_(...)`, an optimizer's `step()`) are measured against a snapshot of the parameter and
its gradient. The module never changes what the step computes: torch's own errors still rise from
`watch` (with the explanation added as a note); `check_step` turns those it explains into findings.

`calibration(probs, labels)` is the chapter's last pitfall, softmax read as calibrated: expected
calibration error and the reliability diagram, on labelled data.
"""

from __future__ import annotations

import contextlib
import enum
import linecache
import math
import os
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from ..base.errors import CalibrationError, OptionError
from ..frontends.source import SourceSpan

__all__ = ["Bin", "Calibration", "Finding", "Kind", "Watcher", "calibration", "check_step", "watch"]

DOCS_PAGE: Final = "docs/testing.md"
ASCENT_COSINE: Final = 0.5  # an update whose cosine with +grad exceeds this climbs the loss
_TORCH_DIR: Final = os.path.dirname(torch.__file__)
_SYMGRAD_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the package root
_CUTS: Final = {"detach": ".detach()", "detach_": ".detach_()", "item": ".item()", "numpy": ".numpy()",
                "tolist": ".tolist()", "data": ".data"}
_INPLACE_DUNDERS: Final = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__setitem__"}


class Kind(enum.StrEnum):
    """What went wrong in a training step; `str` values, so `finding.kind == "ascent"`."""

    GRAD_ACCUMULATED = "grad-accumulated"
    ASCENT = "ascent"
    NON_SCALAR_BACKWARD = "non-scalar-backward"
    GRAPH_CUT_BEFORE_BACKWARD = "graph-cut-before-backward"
    BACKWARD_TWICE = "backward-twice"
    ZEROED_BEFORE_STEP = "zeroed-before-step"

    @property
    def page(self) -> str:
        return f"{DOCS_PAGE}#{self.value}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One training-step mistake, at the user's line."""

    kind: Kind
    source: SourceSpan | None
    explanation: str
    hint: str
    params: tuple[str, ...] = ()  # the parameters it concerns, by the user's names

    def __str__(self) -> str:
        where = f" at {self.source}" if self.source is not None else ""
        return f"{self.kind.value}{where}: {self.explanation}\n  hint: {self.hint}\n  more: {self.kind.page}"


# --------------------------------------------------------------------------- texts

ACCUMULATED: Final = (
    "Did you mean to accumulate gradients? `{code}` adds to the gradient{s} that {names} already "
    "hold{verb} from the previous backward() ({before}), and nothing set {them} to zero in between, so "
    "the update will use the sum of both gradients."
)
ACCUMULATED_HINT: Final = (
    "If not, zero the gradients before each backward(): `optimizer.zero_grad()`, or "
    "`param.grad.zero_()` after the update as D2L's `sgd` does. If you are accumulating over "
    "micro-batches on purpose, divide each loss by their number and ignore this."
)
ASCENT_TEXT: Final = (
    "`{code}` moved {names} along +grad (the update's cosine with the gradient is {cos:+.2f}), "
    "so the step climbs the loss instead of descending it: the gradient points uphill."
)
ASCENT_HINT: Final = (
    "Subtract the gradient: `param -= lr * param.grad` (or `param.data.sub_(lr * param.grad)`); "
    "with an optimizer, leave `maximize=False`."
)
NON_SCALAR: Final = (
    "`{code}` calls backward() on a tensor of shape {shape} without `gradient=`; torch raised "
    "\"grad can be implicitly created only for scalar outputs\". For a non-scalar y, backward() "
    "computes the vector-Jacobian product v^T (dy/dx), and torch cannot guess v: it is the "
    "weight of each element of y in the quantity you differentiate."
)
NON_SCALAR_HINT: Final = (
    "Reduce the loss to a scalar first, as D2L does: `y.sum().backward()` (v = ones: the sum of "
    "the elements' gradients) or `loss.mean().backward()`; or pass the vector itself, "
    "`y.backward(gradient=torch.ones_like(y))`."
)
NON_SCALAR_GRAD: Final = (
    "`{code}` asks torch.autograd.grad for the gradient of a tensor of shape {shape} without "
    "`grad_outputs=`; torch raised \"grad can be implicitly created only for scalar outputs\". For a "
    "non-scalar y, the gradient is the vector-Jacobian product v^T (dy/dx), and torch cannot guess v: "
    "it is the weight of each element of y in the quantity you differentiate."
)
NON_SCALAR_GRAD_HINT: Final = (
    "Reduce it to a scalar first: `torch.autograd.grad(y.sum(), x)` (v = ones), or pass the vector "
    "itself, `torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y))`."
)
ZEROED: Final = (
    "`{code}` zeroes the gradient{s} of {names} after the backward() at {backward} and before any "
    "update used {them}, so the update that follows sees no gradient: the parameters did not move "
    "in this step, and training never moves."
)
ZEROED_HINT: Final = (
    "Zero the gradients before backward() or after the update, never between them: "
    "`optimizer.zero_grad(); loss.backward(); optimizer.step()` (or D2L's `param.grad.zero_()` after "
    "`param -= lr * param.grad`)."
)
GRAPH_CUT: Final = (
    "`{code}` took the value of {names} out of the autograd graph ({how}), so the loss computed "
    "from it does not depend on {them} as far as autograd knows, and the backward() at {backward} "
    "gave {them} no gradient{grad_state}."
)
GRAPH_CUT_HINT: Final = (
    "Keep the computation in tensors that track gradients up to the loss: call `.item()`, "
    "`.numpy()` or `.detach()` only on values you log or plot, after backward(), and leave "
    "`torch.no_grad()` for the update only."
)
TWICE: Final = (
    "`{code}` runs backward() through a graph that the backward() at {before} already freed: "
    "after a backward pass torch frees the values the graph saved for it, so a second pass has "
    "nothing to differentiate; torch raised \"Trying to backward through the graph a second time\"."
)
TWICE_HINT: Final = (
    "Recompute the forward pass (the loss, and whatever it was computed from) before each "
    "backward(). `retain_graph=True` on the first backward() silences the error, but it is "
    "usually the wrong fix: it keeps the whole graph in memory, and the second backward() adds "
    "the same gradient again to `.grad`."
)


# --------------------------------------------------------------------------- the user's line


def _user_frame() -> Any:
    frame = sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not (name.startswith(_TORCH_DIR) or name.startswith(_SYMGRAD_DIR) or name.startswith("<frozen")
                or frame.f_code.co_filename in (_contextlib_file(),)):
            return frame
        frame = frame.f_back
    return None


def _contextlib_file() -> str:
    return contextlib.__file__


def _span(frame: Any) -> SourceSpan | None:
    if frame is None:
        return None
    filename, line = frame.f_code.co_filename, frame.f_lineno
    full = linecache.getline(filename, line, frame.f_globals).rstrip("\n")
    col, end = len(full) - len(full.lstrip()), len(full.rstrip())
    try:
        pos = list(frame.f_code.co_positions())[frame.f_lasti // 2]
        if pos[0] == pos[1] == line and pos[2] is not None and pos[3] is not None and pos[2] < pos[3] <= len(full):
            col, end = pos[2], pos[3]
    except (IndexError, AttributeError):
        pass
    return SourceSpan(filename, line, col, end, full.strip())


def _where(span: SourceSpan | None) -> str:
    return f"line {span.line}" if span is not None else "an earlier line"


def _code(span: SourceSpan | None, fallback: str) -> str:
    if span is None or not span.text:
        return fallback
    full = linecache.getline(span.file, span.line).rstrip("\n")
    piece = full[span.col:span.end_col] if full.strip() and span.end_col > span.col else span.text
    return piece.strip() or span.text


# --------------------------------------------------------------------------- the watcher


def _flat_tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _flat_tensors(o)]
    return []


def _storage(t: torch.Tensor) -> int:
    try:
        return int(t.untyped_storage().data_ptr())
    except RuntimeError:
        return -1


def _param_list(params: Any) -> list[tuple[str | None, torch.Tensor]]:
    if isinstance(params, torch.nn.Module):
        return [(n, p) for n, p in params.named_parameters()]
    if isinstance(params, torch.Tensor):
        return [(None, params)]
    if isinstance(params, Mapping):
        items = [(str(k), v) for k, v in params.items()]
    elif isinstance(params, Iterable) and not isinstance(params, (str, bytes)):
        items = [(None, v) for v in params]
    else:
        raise OptionError(
            f"params={params!r} is not a tensor, a list of tensors, a dict of tensors or a torch.nn.Module.\n"
            "The watcher follows the parameters a training step updates.\n"
            "Fix: pass them, e.g. `watch([w, b])` or `watch(model)`."
        )
    out = []
    for name, v in items:
        if not isinstance(v, torch.Tensor):
            raise OptionError(
                f"params holds {v!r}, which is not a tensor.\n"
                "The watcher follows the parameters a training step updates.\n"
                "Fix: pass tensors that require grad, e.g. `watch([w, b])` or `watch(model)`."
            )
        out.append((name, v))
    return out


def _names(pairs: list[tuple[str | None, torch.Tensor]], frame: Any) -> list[str]:
    """The user's own names for the parameters: given ones, else the caller's variable holding it."""
    scopes = []
    while frame is not None and len(scopes) < 4:
        scopes += [frame.f_locals, frame.f_globals]
        frame = frame.f_back
    names = []
    for k, (name, p) in enumerate(pairs):
        if name is None:
            name = next((n for scope in scopes for n, v in scope.items() if v is p and not n.startswith("_")),
                        f"params[{k}]")
        names.append(name)
    return names


@dataclass
class _Update:
    start: torch.Tensor  # the parameter before the first in-place change since the last backward
    grad: torch.Tensor  # the gradient it held then
    steps: list[tuple[float, SourceSpan | None]] = field(default_factory=list)  # (delta . grad, line)


class _Zeroing:
    """What `zeroed-before-step` needs: the gradients a backward() filled and no update has used
    yet, those discarded while unused, and the parameters as the watch began."""

    def __init__(self) -> None:
        self.unused: dict[int, SourceSpan | None] = {}  # param index -> the backward that filled it
        self.discarded: dict[int, tuple[SourceSpan | None, SourceSpan | None]] = {}  # -> (discarding line, backward)
        self.initial: tuple[torch.Tensor, ...] = ()

    def start(self, params: Sequence[torch.Tensor]) -> None:
        with torch.no_grad():
            self.initial = tuple(p.detach().clone() for p in params)

    def discard(self, i: int, span: SourceSpan | None) -> None:
        self.discarded.setdefault(i, (span, self.unused.pop(i)))

    def close(self, params: Sequence[torch.Tensor]) -> list[tuple[SourceSpan | None, list[tuple[int, SourceSpan | None]]]]:
        """The discards to report, by discarding line: none if any parameter moved."""
        discarded, self.discarded = self.discarded, {}
        if not discarded:
            return []
        with torch.no_grad():
            if any(not torch.equal(p.detach(), s) for p, s in zip(params, self.initial) if p.shape == s.shape):
                return []
        by_span: dict[SourceSpan | None, list[tuple[int, SourceSpan | None]]] = {}
        for i, (span, backward) in discarded.items():
            by_span.setdefault(span, []).append((i, backward))
        return list(by_span.items())


class Watcher(TorchFunctionMode):
    """`with watch(params) as w:` a TorchFunctionMode that records training-step findings."""

    def __init__(self, params: Any, names: Sequence[str] | None = None) -> None:
        super().__init__()
        pairs = _param_list(params)
        self.params: tuple[torch.Tensor, ...] = tuple(p for _, p in pairs)
        self.names: tuple[str, ...] = tuple(names) if names is not None else tuple(_names(pairs, sys._getframe(2)))
        self._findings: list[Finding] = []
        self._seen: set[tuple[str, str, int]] = set()
        self._cuts: list[tuple[frozenset[int], str, SourceSpan | None]] = []  # since the last backward
        self._no_grad_at: SourceSpan | None = None
        self._freed: dict[int, tuple[Any, SourceSpan | None]] = {}
        self._last_backward: dict[int, SourceSpan | None] = {}  # param index -> the backward that filled .grad
        self._updates: dict[int, _Update] = {}
        self._asked = False
        self.explained: list[tuple[BaseException, Finding]] = []  # torch errors a finding explains
        self._zeroed = _Zeroing()

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self._findings)

    def __enter__(self) -> Watcher:
        self._zeroed.start(self.params)
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._close_updates()
        self._close_zeroed()

    # -- recording

    def _add(self, kind: Kind, span: SourceSpan | None, explanation: str, hint: str,
             params: Iterable[int] = ()) -> Finding | None:
        key = (kind.value, span.file if span else "", span.line if span else 0)
        if key in self._seen:
            return None
        self._seen.add(key)
        finding = Finding(kind, span, explanation, hint, tuple(self.names[i] for i in params))
        self._findings.append(finding)
        return finding

    def _index(self, t: Any) -> int | None:
        for i, p in enumerate(self.params):
            if t is p:
                return i
        return None

    def _reached(self, t: torch.Tensor) -> tuple[set[int], list[Any]]:
        """The watched parameters `t`'s autograd graph reaches, and the graph's nodes."""
        found: set[int] = set()
        nodes: list[Any] = []
        if t.grad_fn is None:
            i = self._index(t)
            return ({i} if i is not None else set()), nodes
        stack, seen = [t.grad_fn], set()
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            variable = getattr(node, "variable", None)
            if variable is not None:
                i = self._index(variable)
                if i is not None:
                    found.add(i)
                continue
            nodes.append(node)
            stack.extend(n for n, _ in node.next_functions)
        return found, nodes

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        attr = getattr(getattr(func, "__self__", None), "__name__", None)  # Tensor.grad.__get__ -> "grad"
        if name == "backward":
            return self._backward(func, args, kwargs)
        if func is torch.autograd.grad:
            return self._grad(func, args, kwargs)
        if attr == "grad" and name == "__set__" and args:
            self._grad_set(args)
        if name == "_set_grad_enabled" and args and args[0] is False:
            self._no_grad_at = _span(_user_frame())
        inplace = name in _INPLACE_DUNDERS or (name.endswith("_") and not name.endswith("__")) \
            or (attr == "data" and name == "__set__")
        if attr is not None:  # a getter or setter: only `.data` takes a value out of the graph
            if attr == "data" and name == "__get__":
                self._cut("data", args)
        elif name in _CUTS or (not inplace and not torch.is_grad_enabled()):
            self._cut(name, args)
        if inplace and args:
            return self._inplace(func, args, kwargs)
        return func(*args, **kwargs)

    def _cut(self, name: str, args: tuple[Any, ...]) -> None:
        tensors = _flat_tensors(args[:1] if name in _CUTS else list(args))
        if not tensors:
            return
        reached: set[int] = set()
        for t in tensors:
            if t.requires_grad:
                reached |= self._reached(t)[0]
        if reached:
            how = f"`{_CUTS[name]}`" if name in _CUTS else (
                f"computed under `torch.no_grad()`, entered at {_where(self._no_grad_at)}"
                if self._no_grad_at is not None else "computed with gradients disabled")
            self._cuts.append((frozenset(reached), how, _span(_user_frame())))

    def _inplace(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        targets = _flat_tensors(args[:1])
        storages = {_storage(p): i for i, p in enumerate(self.params)}  # `.data =` may move a parameter
        hit = sorted({storages[k] for k in map(_storage, targets) if k in storages and k != 0})
        for i in hit:
            self._zeroed.unused.pop(i, None)  # an update: the gradient is used (or the parameter moved anyway)
        grads = {_storage(p.grad): i for i, p in enumerate(self.params) if p.grad is not None}
        zeroing = sorted({grads[k] for k in map(_storage, targets) if k in grads and k != 0 and grads[k] in self._zeroed.unused})
        before = {}
        with torch.no_grad():
            for i in hit:
                g = self.params[i].grad
                if g is not None:
                    before[i] = (self.params[i].detach().clone(), g.detach().clone())
        result = func(*args, **kwargs)
        for i in zeroing:
            g = self.params[i].grad
            if g is None or not bool((g != 0).any()):
                self._discard(i)
        if before:
            span = _span(_user_frame())
            with torch.no_grad():
                for i, (old, g) in before.items():
                    delta = self.params[i].detach() - old
                    update = self._updates.setdefault(i, _Update(old, g))
                    update.steps.append((float((delta * g).sum()), span))
        return result

    def _close_updates(self) -> None:
        """Judge each parameter's updates since the last backward: ascent if they climb +grad."""
        with torch.no_grad():
            climbing: dict[SourceSpan | None, list[tuple[int, float]]] = {}
            for i, u in self._updates.items():
                total = (self.params[i].detach() - u.start).reshape(-1).to(torch.float64)
                g = u.grad.reshape(-1).to(torch.float64)
                norm = float(total.norm() * g.norm())
                if norm == 0 or not math.isfinite(norm):
                    continue
                cos = float((total * g).sum()) / norm
                if cos > ASCENT_COSINE:
                    span = max(u.steps, key=lambda s: s[0])[1]
                    climbing.setdefault(span, []).append((i, cos))
            for span, items in climbing.items():
                names = _join([f"`{self.names[i]}`" for i, _ in items])
                cos = min(c for _, c in items)
                self._add(Kind.ASCENT, span, ASCENT_TEXT.format(code=_code(span, "the update"), names=names, cos=cos),
                          ASCENT_HINT, [i for i, _ in items])
        self._updates = {}

    def _grad_set(self, args: tuple[Any, ...]) -> None:
        """`p.grad = None` (what `optimizer.zero_grad()` does) or `p.grad = zeros`."""
        i = self._index(args[0])
        value = args[1] if len(args) > 1 else None
        if i is not None and i in self._zeroed.unused and (value is None or (
                isinstance(value, torch.Tensor) and not bool((value != 0).any()))):
            self._discard(i)

    def _discard(self, i: int) -> None:
        self._zeroed.discard(i, _span(_user_frame()))

    def _close_zeroed(self) -> None:
        """A gradient discarded before any update used it, in a step where no parameter moved."""
        for span, items in self._zeroed.close(self.params):
            many = len(items) > 1
            self._add(Kind.ZEROED_BEFORE_STEP, span, ZEROED.format(
                code=_code(span, "zero_grad()"), s="s" if many else "", names=_join([f"`{self.names[i]}`" for i, _ in items]),
                backward=_where(items[0][1]), them="them" if many else "it"), ZEROED_HINT, [i for i, _ in items])

    def _grad(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`torch.autograd.grad(outputs, inputs, grad_outputs=...)`: a non-scalar output without
        `grad_outputs` is the same mistake as a non-scalar backward()."""
        outputs = kwargs.get("outputs", args[0] if args else None)
        grad_outputs = kwargs.get("grad_outputs", args[2] if len(args) > 2 else None)
        single = outputs if isinstance(outputs, torch.Tensor) else (
            outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else None)
        if isinstance(single, torch.Tensor) and single.numel() != 1 and grad_outputs is None:
            span = _span(_user_frame())
            finding = self._add(Kind.NON_SCALAR_BACKWARD, span, NON_SCALAR_GRAD.format(
                code=_code(span, "torch.autograd.grad(...)"), shape=tuple(single.shape)), NON_SCALAR_GRAD_HINT)
            return self._run_explained(func, args, kwargs, finding, Kind.NON_SCALAR_BACKWARD)
        return func(*args, **kwargs)

    def _backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        span = _span(_user_frame())
        self._close_updates()
        loss = args[0]
        if isinstance(loss, (list, tuple)):  # torch.autograd.backward(tensors, ...)
            loss = loss[0] if len(loss) == 1 else None
        gradient = kwargs.get("gradient", kwargs.get("grad_tensors", args[1] if len(args) > 1 else None))
        retain = kwargs.get("retain_graph", args[2] if len(args) > 2 else None)
        create = kwargs.get("create_graph", args[3] if len(args) > 3 else False)
        if not isinstance(loss, torch.Tensor):
            return func(*args, **kwargs)
        if loss.numel() != 1 and gradient is None:
            finding = self._add(Kind.NON_SCALAR_BACKWARD, span, NON_SCALAR.format(
                code=_code(span, "backward()"), shape=tuple(loss.shape)), NON_SCALAR_HINT)
            return self._run_explained(func, args, kwargs, finding, Kind.NON_SCALAR_BACKWARD)
        reached, nodes = self._reached(loss)
        freed = next((self._freed[id(n)] for n in nodes if id(n) in self._freed and self._freed[id(n)][0] is n), None)
        held = self._held(reached)
        try:
            result = func(*args, **kwargs)
        except RuntimeError as err:
            if freed is not None or "second time" in str(err):
                before = freed[1] if freed is not None else None
                finding = self._add(Kind.BACKWARD_TWICE, span, TWICE.format(
                    code=_code(span, "backward()"), before=_where(before)), TWICE_HINT)
                self._explain(err, finding, Kind.BACKWARD_TWICE)
                raise
            if not reached:
                finding = self._graph_cut(span, reached, raised=True)
                if finding is not None:
                    self._explain(err, finding, Kind.GRAPH_CUT_BEFORE_BACKWARD)
            raise
        if not (retain if retain is not None else create):
            for n in nodes:
                self._freed[id(n)] = (n, span)
        self._ask_accumulated(span, held)
        for i in reached:
            self._last_backward[i] = span
            self._zeroed.unused[i] = span
        self._graph_cut(span, reached, raised=False)
        self._cuts = []
        return result

    def _run_explained(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], finding: Finding | None,
                       kind: Kind) -> Any:
        try:
            return func(*args, **kwargs)
        except RuntimeError as err:
            self._explain(err, finding, kind)
            raise

    def _explain(self, err: BaseException, finding: Finding | None, kind: Kind) -> None:
        finding = finding or next((f for f in self._findings if f.kind is kind), None)
        if finding is None:
            return
        if not any(e is err for e, _ in self.explained):
            err.add_note(f"symgrad.pitfalls: {finding}")
            self.explained.append((err, finding))

    def _held(self, reached: set[int]) -> list[int]:
        """The parameters this backward() reaches that already hold a nonzero gradient."""
        if self._asked:
            return []
        held = []
        for i in sorted(reached):
            g = self.params[i].grad
            if g is not None and bool((g != 0).any()):
                held.append(i)
        return held

    def _ask_accumulated(self, span: SourceSpan | None, held: list[int]) -> None:
        if self._asked or not held:
            return
        self._asked = True
        befores = {self._last_backward.get(i) for i in held}
        before = next(iter(befores)) if len(befores) == 1 else None
        names = _join([f"`{self.names[i]}`" for i in held])
        text = ACCUMULATED.format(code=_code(span, "backward()"), s="s" if len(held) > 1 else "", names=names,
                                  verb="" if len(held) > 1 else "s",
                                  before=_where(before) if before is not None else "before",
                                  them="them" if len(held) > 1 else "it")
        if before is None:
            text = text.replace(" from the previous backward() (before)", " from an earlier backward()")
        self._add(Kind.GRAD_ACCUMULATED, span, text, ACCUMULATED_HINT, held)

    def _graph_cut(self, span: SourceSpan | None, reached: set[int], raised: bool) -> Finding | None:
        missing = [i for i in range(len(self.params)) if i not in reached and self.params[i].requires_grad]
        by_cut: dict[tuple[str, SourceSpan | None], list[int]] = {}
        for i in missing:
            cut = next(((how, at) for params, how, at in reversed(self._cuts) if i in params), None)
            if cut is not None:
                by_cut.setdefault(cut, []).append(i)
        first = None
        for (how, at), items in by_cut.items():
            names = _join([f"`{self.names[i]}`" for i in items])
            state = (" (torch raised \"element 0 of tensors does not require grad\": nothing in the loss "
                     "required grad)") if raised else (
                f"; {'their' if len(items) > 1 else 'its'} `.grad` is "
                + ("None" if all(self.params[i].grad is None for i in items) else "unchanged"))
            finding = self._add(Kind.GRAPH_CUT_BEFORE_BACKWARD, at, GRAPH_CUT.format(
                code=_code(at, "a line"), names=names, how=how, them="them" if len(items) > 1 else "it",
                backward=_where(span), grad_state=state), GRAPH_CUT_HINT, items)
            first = first or finding
        return first


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def watch(params: Any) -> Watcher:
    """Watch a training step: `with sg.pitfalls.watch([w, b]) as w: ...`, then `w.findings`.

    **Arguments:**

    - `params`: the parameters the step trains: a tensor, a list or dict of tensors, or a
      `torch.nn.Module` (its `named_parameters()`). Unnamed ones are named after the caller's
      variables that hold them.

    **Returns:** a `Watcher` (a `torch.overrides.TorchFunctionMode`); its `findings` is a tuple of
    `Finding`s. torch's own errors rise from the block unchanged, with the explanation added as a
    note (`err.__notes__`).
    """
    pairs = _param_list(params)
    return Watcher([p for _, p in pairs], _names(pairs, sys._getframe(1)))


def check_step(step: Callable[[], Any], params: Any, runs: int = 2) -> tuple[Finding, ...]:
    """Run a training step `runs` times under `watch(params)` and return the findings.

    Two runs are the default because two of the mistakes only show on the second run: a
    gradient that nothing zeroes is added to on the next backward(), and a graph built outside the
    step is freed by the first. A torch error that a finding explains (a non-scalar backward, a
    second backward, a loss with nothing requiring grad) ends the check and becomes the finding,
    as does an error that follows from a graph cut (`w.grad` is None); any other exception is
    re-raised. The parameters and their gradients are restored afterwards (an optimizer's own
    state, such as momentum, is not). Every run starts from the same random state, so that a
    model with dropout draws the same masks each time, and a step that shuffles or samples its
    batch with Python's `random` or NumPy's global `np.random` draws the same batch (a loss that
    moved only because other units were dropped, or another batch was drawn, is no finding): torch's
    CPU generator, CUDA's where CUDA is in use, Python's `random` and `np.random`'s global state are
    each set back before every run and left as they were before the check. A generator the step
    holds itself (`np.random.default_rng(0)`, a `torch.Generator`) is the step's own state and is
    not restored: each run then draws its next numbers; seed it inside the step to compare like
    with like.

    **Returns:** a tuple of `Finding`s, empty for a correct step (zeroed, descending, scalar loss).
    """
    if not callable(step):
        raise OptionError(
            f"check_step got step={step!r}, which is not callable.\n"
            "check_step runs your training step itself, several times.\n"
            "Fix: pass a function of no arguments that does one step, e.g. `check_step(train_step, [w, b])`."
        )
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise OptionError(f"runs={runs!r} must be a positive int.\nFix: pass e.g. runs=2.")
    pairs = _param_list(params)
    watcher = Watcher([p for _, p in pairs], _names(pairs, sys._getframe(1)))
    saved = [(p.detach().clone(), None if p.grad is None else p.grad.detach().clone()) for _, p in pairs]
    restore = _random_states()  # each run draws what the first drew (dropout's masks, a sampled batch)
    try:
        with watcher:
            for _ in range(runs):
                before = len(watcher.findings)
                restore()
                try:
                    step()
                except Exception as err:
                    explained = any(e is err for e, _ in watcher.explained) or any(
                        f.kind is Kind.GRAPH_CUT_BEFORE_BACKWARD for f in watcher.findings[before:])
                    if not explained:
                        raise
                    break  # the step stopped half-way: a further run would start from that state
    finally:
        restore()
        with torch.no_grad():
            for (_, p), (value, grad) in zip(pairs, saved):
                p.copy_(value)
                p.grad = grad
    return watcher.findings


def _random_states() -> Callable[[], None]:
    """The global random states a training step may draw from, saved now: torch's CPU generator,
    CUDA's (only where CUDA is already in use: saving it would start CUDA), Python's `random` and
    NumPy's global `np.random`. The function returned sets each back."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    python = random.getstate()
    legacy = np.random.get_state()

    def restore() -> None:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        random.setstate(python)
        np.random.set_state(legacy)

    return restore


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True, slots=True)
class Bin:
    """One confidence bin of a reliability diagram: predictions with confidence in (low, high]."""

    low: float
    high: float
    count: int
    confidence: float  # the mean top probability in the bin (nan when empty)
    accuracy: float  # the fraction of its predictions that were right (nan when empty)


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error of a classifier's probabilities, and its per-bin record."""

    ece: float  # sum over bins of count/n * |accuracy - confidence|
    bins: tuple[Bin, ...]
    n: int
    accuracy: float
    confidence: float  # the mean top probability

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(b.count for b in self.bins)

    def __str__(self) -> str:
        rows = [f"expected calibration error {self.ece:.4f} over {self.n} predictions "
                f"(accuracy {self.accuracy:.4f}, mean confidence {self.confidence:.4f})",
                "  bin            count  confidence  accuracy"]
        for b in self.bins:
            if b.count:
                rows.append(f"  ({b.low:.3f}, {b.high:.3f}]  {b.count:>5}  {b.confidence:10.4f}  {b.accuracy:8.4f}")
        if self.confidence > self.accuracy + self.ece / 2 and self.ece > 0.02:
            rows.append("over-confident: the probabilities are higher than the accuracy they predict; softmax "
                        "outputs are not calibrated probabilities by themselves (temperature scaling fixes this)")
        return "\n".join(rows)

    def plot(self, path: str | None = None, *, ax: Any = None) -> Any:
        """The reliability diagram (matplotlib: `pip install matplotlib`): accuracy against
        confidence per bin, the gap to each bin's confidence shaded, and the diagonal of perfect
        calibration. Draws on `ax` if given, writes `path` if given; returns the figure."""
        try:
            import matplotlib

            if path is not None and ax is None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as err:  # the extra is optional
            raise OptionError("Calibration.plot() needs matplotlib, which is not installed.\n"
                              "Fix: `pip install matplotlib` (from a checkout of symgrad, "
                              "`pip install -e \".[plot]\"` installs it with symgrad).") from err
        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
        else:
            fig = ax.figure
        lows = [b.low for b in self.bins]
        width = self.bins[0].high - self.bins[0].low
        accs = [0.0 if b.count == 0 else b.accuracy for b in self.bins]
        confs = [0.0 if b.count == 0 else b.confidence for b in self.bins]
        ax.bar(lows, accs, width=width, align="edge", edgecolor="black", label="accuracy")
        ax.bar(lows, [c - a for c, a in zip(confs, accs)], bottom=accs, width=width, align="edge",
               color="tab:red", alpha=0.3, label="gap to confidence")
        ax.plot([0, 1], [0, 1], "k--", label="perfectly calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"reliability diagram (ECE = {self.ece:.3f})")
        ax.legend(loc="upper left")
        if path is not None:
            fig.savefig(path)
        return fig


def _array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise CalibrationError(f"{what} is {value!r:.60}, not an array.\nFix: pass a tensor or a numpy array.") from err


def calibration(probs: Any, labels: Any, bins: int = 15) -> Calibration:
    """Expected calibration error and reliability diagram of a classifier's probabilities.

    **Arguments:**

    - `probs`: shape (n, k), each row the predicted distribution over k classes (a softmax).
    - `labels`: shape (n,), the true class of each row, integers in 0..k-1.
    - `bins`: the number of equal-width confidence bins (default 15).

    **Returns:** a `Calibration`: `.ece`, `.bins` (count, confidence, accuracy per bin),
    `.plot()`. Raises `CalibrationError` with a sentence for input that is not a classifier's.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise CalibrationError(f"bins={bins!r} must be a positive int.\nFix: pass e.g. bins=15.")
    p = _array(probs, "probs")
    y = _array(labels, "labels")
    if p.ndim != 2 or p.shape[1] < 2:
        raise CalibrationError(
            f"probs has shape {p.shape}, but calibration needs one row of class probabilities per "
            "prediction, shape (n, k) with k >= 2.\n"
            "Fix: for a binary classifier's p(class 1), pass `torch.stack([1 - p, p], dim=1)`.")
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise CalibrationError(
            f"labels has shape {y.shape}, but probs has shape {p.shape}: there must be one label per row.\n"
            "Fix: pass labels of shape (n,), the true class index of each row of probs.")
    if p.shape[0] == 0:
        raise CalibrationError("probs has no rows.\nFix: pass at least one prediction.")
    if not np.issubdtype(p.dtype, np.floating) and not np.issubdtype(p.dtype, np.integer):
        raise CalibrationError(f"probs has dtype {p.dtype}, not numbers.\nFix: pass float probabilities.")
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        row = int(np.argmax(~np.isfinite(p).all(axis=1) | (p < 0).any(axis=1) | (p > 1).any(axis=1)))
        raise CalibrationError(
            f"probs row {row} is {p[row].tolist()!r:.80}: probabilities must lie in [0, 1].\n"
            "These look like logits, not probabilities.\n"
            "Fix: pass `torch.softmax(logits, dim=1)`.")
    sums = p.sum(axis=1)
    bad = np.abs(sums - 1) > 1e-4
    if bad.any():
        row = int(np.argmax(bad))
        raise CalibrationError(
            f"probs row {row} sums to {sums[row]:.6g}, not 1: a row must be a distribution over the classes.\n"
            "Calibration compares each prediction's top probability with how often it is right; "
            "that is only meaningful for probabilities that sum to 1.\n"
            "Fix: pass `torch.softmax(logits, dim=1)` (not the logits, not sigmoid per class).")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise CalibrationError(f"labels has dtype {y.dtype}, not class indices.\nFix: pass integer labels in 0..{p.shape[1] - 1}.")
    y = y.astype(np.int64)
    out = (y < 0) | (y >= p.shape[1])
    if out.any():
        row = int(np.argmax(out))
        raise CalibrationError(
            f"labels[{row}] is {int(y[row])}, outside the {p.shape[1]} classes of probs (0..{p.shape[1] - 1}).\n"
            "Each label is the index of a column of probs.\n"
            "Fix: pass labels in 0..k-1 (not one-hot, not 1-based).")
    conf = p.max(axis=1)
    right = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    records = []
    ece = 0.0
    n = p.shape[0]
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        c = float(conf[mask].mean()) if count else math.nan
        a = float(right[mask].mean()) if count else math.nan
        if count:
            ece += count / n * abs(a - c)
        records.append(Bin(float(edges[b]), float(edges[b + 1]), count, c, a))
    return Calibration(float(ece), tuple(records), n, float(right.mean()), float(conf.mean()))
