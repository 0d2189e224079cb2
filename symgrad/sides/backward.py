"""The backward pass, line by line: every step's adjoint exactly and as torch computed it.

Reverse accumulation is where autograd does its work, so this module writes it out. For each
step of the executed path (output first) a `BackwardStep` holds the step's local derivatives
(`d(x_pow_2)/dx = 2*x`, with their exact values), its exact adjoint d out / d step (on the
executed path, and in the mathematics where detach is the identity), and torch's own adjoint of
the same intermediate, captured from one real backward run of the generated program in the
chosen dtype. `Parting` is the first step whose torch adjoint leaves the exact one, and why:

    parting := the first record (backward order) with |torch - exact| > rtol*|exact| + tiny
    why     := 0*nan | 0*inf     a use whose adjoint is exactly 0 times a non-finite local derivative
             | overflow          a local derivative or forward value past the dtype's range
             | nan               a NaN entering from the forward pass
             | cancellation      the uses' contributions nearly cancel in the sum (backward only), or
                                 a local derivative is evaluated from a forward value that cancelled
             | rounding          none of these: the dtype's rounding of the values involved

How torch's adjoints are captured: the generated source is parsed again and every assignment
`name = ...` is followed by `name = _seen(line, "name", name)`, which registers a tensor hook
(`Tensor.register_hook`, exactly what a user writes by hand) on each intermediate on the graph.
One forward and one backward run then fill every hook; the recorded assignments are matched to
the executed path's steps in order by (line, name), so loops and branches line up. A variable
that is only a copy of another tensor gets its own identity view (`t.view_as(t)`), whose
backward is exact, so each step has a tensor of its own.

Cost: one extra torch forward and backward run, and a linear pass over the path. The local
derivatives' formulas are SymPy of one step each, made only when they are read.
"""

from __future__ import annotations

import ast
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
import torch

from ..base.rendering import render
from ..program import custom
from ..program import exact as ex
from . import outputs
from .autograd import torch_state
from .executed import Path, PathStep, adjoints_for
from .path_expression import step_expression
from .ir import LoweredProgram
from .lowering import DTYPES
from .selection import select
from ..program.program import DataMatrix, node_text, record_repr, sstr

# Ops whose local derivative is a matrix rule (a vector-Jacobian product), in the program's names:
# `{g}` is the adjoint of the step, `{0}`, `{1}` its operands.
_MATRIX_RULES: dict[str, tuple[str, ...]] = {
    "matmul": ("{g}*{1}.T", "{0}.T*{g}"),
    "transpose": ("({g}).T",),
    "elem": ("{g} placed at {p}",),
}
# Ops whose SymPy derivative would print torch's internal masks: their local derivative is shown
# as its value (the slope torch takes on this side of the corner).
_VALUE_ONLY = {"relu", "maximum", "minimum", "clamp_min", "clamp_max", "abs", "sign", "floor", "ceil",
               "round", "heaviside", "vector_norm", "amax", "amin", "max_at", "min_at", "std", "std_along"}


@dataclass(frozen=True, slots=True)
class Local:
    """One local derivative of a step: d(step)/d(parent), in SymPy notation over the generated
    program's variables, its exact value (None for a matrix rule) and the exact contribution
    it sends back (the step's adjoint times it)."""

    __repr__ = record_repr

    of: str
    wrt: str
    parent: int  # the parent's step index in the executed path
    exact_value: Any  # the exact number (python-flint; elementwise matrix), None for a matrix rule
    exact_contribution: Any  # what flows to the parent (0 where the step's adjoint is exactly 0)
    _formula: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> Any:
        """The local derivative's exact value (SymPy), None for a matrix rule (a linear map)."""
        return None if self.exact_value is None else _sym(self.exact_value)

    @property
    def contribution(self) -> Any:
        """Exactly what this step sends back to the parent: its adjoint times the derivative."""
        return _sym(self.exact_contribution)

    @property
    def formula(self) -> str:
        """The derivative's formula (`2*x`); its value where no formula can be written."""
        text = self._formula() if self._formula is not None else None
        return text if text is not None else _sym_text(self.value)

    @property
    def has_formula(self) -> bool:
        """A formula beyond the bare number (for a matrix rule: the rule)."""
        return self._formula is not None and self._formula() is not None

    @property
    def label(self) -> str:
        return f"d({self.of})/{_d(self.wrt)}"

    def __str__(self) -> str:
        return f"{self.label} = {self.formula}"


@dataclass(frozen=True, slots=True)
class BackwardStep:
    """One step of the backward pass: the adjoint of `name` (d out / d name), exact and torch's."""

    __repr__ = record_repr

    step: int  # index in `comparison.executed_path.steps`
    name: str  # the generated program's variable
    line: int | None  # the generated program's line (None for an input)
    op: str
    exact_value: Any  # the exact forward value (python-flint; `value` is it in SymPy)
    value_autograd: Any  # torch's forward value in the dtype (float or array), None if not run
    local_derivatives: tuple[Local, ...]  # d(this)/d(parent), one per parent
    uses: tuple[int, ...]  # steps that use this one: its adjoint sums what they send back
    exact_adjoint: Any  # d out / d step on the executed path (python-flint)
    exact_adjoint_math: Any  # the same with detach / item / no_grad as the identity
    adjoint_autograd: Any  # torch's adjoint (float or array); None: no adjoint in torch
    relative_error: float | None  # |torch - exact| / |exact| (inf when torch is not finite)
    digits_lost: float | None
    cut: str | None  # "detach" / "graph-break": the chain stops here on the executed side
    on_graph: bool  # torch records a graph for it (requires_grad)
    parts: bool = False  # torch's adjoint is beyond the tolerance from the exact one
    _node: Any = field(default=None, repr=False, compare=False)  # the SymPy node (symgrad's real symbols)
    _user: Any = field(default=None, repr=False, compare=False)
    _text: list[str] = field(default_factory=list, repr=False, compare=False)  # `node`, once written

    @property
    def value(self) -> Any:
        """The exact forward value, a SymPy number or matrix."""
        return _sym(self.exact_value)

    @property
    def adjoint_exact(self) -> Any:
        """d out / d step on the executed path, exact (SymPy)."""
        return _sym(self.exact_adjoint)

    @property
    def adjoint_math(self) -> Any:
        """d out / d step in the mathematics (detach, item, no_grad as the identity), exact."""
        return _sym(self.exact_adjoint_math)

    @property
    def node(self) -> str:
        """What the step computes, in SymPy notation with the user's symbols (written when read:
        printing thousands of nodes would cost more than the whole backward pass)."""
        if not self._text:
            self._text.append(node_text(self._node, self._user))
        return self._text[0]


@dataclass(frozen=True, slots=True)
class Parting:
    """Where torch's backward pass first leaves the exact one, and why."""

    __repr__ = record_repr

    record: BackwardStep  # the first record (backward order) whose torch adjoint is off
    at: BackwardStep  # the step whose backward formula sent the difference (a use of `record`)
    kind: str  # "0*nan", "0*inf", "overflow", "nan", "cancellation", "rounding"
    why: str  # a sentence that cites the line

    @property
    def line(self) -> int | None:
        return self.at.line

    @property
    def value(self) -> Any:
        """The exact forward value of the parting record's step."""
        return self.record.value

    @property
    def adjoint_exact(self) -> Any:
        """The exact adjoint of the parting record's step (torch's is `record.adjoint_autograd`)."""
        return self.record.adjoint_exact

    @property
    def adjoint_math(self) -> Any:
        return self.record.adjoint_math

    @property
    def node(self) -> str:
        return self.at.node


@dataclass(frozen=True, slots=True)
class BackwardPass:

    __repr__ = record_repr
    records: tuple[BackwardStep, ...]
    parting: Parting | None
    error: str | None  # torch's message, if the instrumented run raised


@dataclass(frozen=True)
class Derivation:
    """The backward pass written out as on paper; `str()` renders it (`report.render_derivation`)."""

    headline: str
    point: str
    dtype: str
    output: str  # the output's variable name
    records: tuple[BackwardStep, ...]
    parting: Parting | None
    error: str | None
    vjp: bool = False
    matrix_output: bool = False
    notes: tuple[str, ...] = ()  # the branches and loops that decided the path

    def __str__(self) -> str:
        return render("derivation.text", self)


# --------------------------------------------------------------------------- torch's side


@dataclass
class _Capture:
    tensors: list[Any]  # per path step: the torch tensor that holds it, or None
    grads: dict[int, Any]  # path step -> torch's adjoint (numpy or float)
    error: str | None


def _assign_lines(tree: ast.Module) -> set[int]:
    return {n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name)}


class _Instrument(ast.NodeTransformer):
    """After every `name = ...`, `name = _symgrad_seen(line, "name", name)`."""

    def _body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            self.visit(s)
            out.append(s)
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
                name = s.targets[0].id
                at = {"lineno": s.lineno, "col_offset": s.col_offset, "end_lineno": s.end_lineno,
                      "end_col_offset": s.end_col_offset}
                call = ast.Call(ast.Name("_symgrad_seen", ast.Load(), **at),
                                [ast.Constant(s.lineno, **at), ast.Constant(name, **at), ast.Name(name, ast.Load(), **at)],
                                [], **at)
                out.append(ast.Assign([ast.Name(name, ast.Store(), **at)], call, **at))
        return out

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for attr in ("body", "orelse"):
            stmts = getattr(node, attr, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                setattr(node, attr, self._body(stmts))
        return node


def _to_host(t: Any) -> Any:
    t = t.detach()
    return float(t) if t.ndim == 0 else t.to(torch.float64).numpy().copy()


# The instrumented program of each lowered program, by its unique filename (and whether it returns
# a returned tuple's elements beside its column), released with it.
_INSTRUMENTED: dict[tuple[str, bool], tuple[Any, set[int]]] = {}


def _instrumented(lowered: LoweredProgram) -> tuple[Any, set[int]]:
    key = (lowered.filename, lowered.separate_outputs)
    hit = _INSTRUMENTED.get(key)
    if hit is None:
        tree = ast.parse(lowered.source)
        lines = _assign_lines(tree)
        if lowered.separate_outputs and isinstance(lowered.output, str):
            outputs.separate(tree, lowered.output)  # `return out, elements`: each element differentiated alone
        hit = (compile(_Instrument().visit(tree), lowered.filename, "exec"), lines)
        _INSTRUMENTED[key] = hit
        weakref.finalize(lowered, _INSTRUMENTED.pop, key, None)
    return hit


def _capture(lowered: LoweredProgram, path: Path, dtype: str, seed: Any) -> _Capture:
    """One forward and one backward run of the generated program, every intermediate hooked."""
    code, lines = _instrumented(lowered)
    events: list[tuple[int, str, Any]] = []
    hooked: set[int] = set()
    grads_by_event: dict[int, Any] = {}

    def seen(line: int, name: str, t: Any) -> Any:
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if id(t) in hooked:
                t = t.view_as(t)  # a copy of another tensor: its own identity node, exact backward
            k = len(events)
            hooked.add(id(t))
            if t.grad_fn is not None:
                t.register_hook(lambda g, k=k: grads_by_event.__setitem__(k, _to_host(g)))
        events.append((line, name, t))
        return t

    namespace: dict[str, Any] = {"_symgrad_seen": seen, **custom.NAMESPACE}  # the user's autograd.Functions
    exec(code, namespace)  # noqa: S102 - our own generated program, with the hooks added
    fn = namespace["f"]
    torch_dtype = DTYPES[dtype]
    tensors: list[Any] = [None] * len(path.steps)
    inputs = []
    for i, sym in zip(path.inputs, lowered.symbols):
        v = path.steps[i].value
        raw = np.asarray(ex.ewise(ex.to_float, v), dtype=np.float64) if ex.is_mat(v) else ex.to_float(v)
        # Data of the user's call (`DataMatrix`) does not require grad, as in the user's own run.
        t = torch.tensor(raw, dtype=torch_dtype, requires_grad=not isinstance(sym, DataMatrix))
        tensors[i] = t
        hooked.add(id(t))
        inputs.append(t)
    grads: dict[int, Any] = {}
    with torch_state(dtype):
        try:
            out = fn(*inputs)
        except Exception as err:  # torch's own message becomes data
            return _Capture(tensors, grads, f"{type(err).__name__}: {err}")
        out, elements = out if lowered.separate_outputs and isinstance(out, tuple) else (out, None)
        _match(path, events, lines, tensors)
        event_of = {id(t): k for k, (_, _, t) in enumerate(events) if isinstance(t, torch.Tensor)}
        try:
            if isinstance(out, torch.Tensor) and out.ndim > 0:
                weights = torch.ones_like(out) if seed is None else torch.tensor(
                    np.asarray(ex.ewise(ex.to_float, seed), dtype=np.float64), dtype=torch_dtype)
            else:
                weights = None
            if elements is not None and weights is not None:
                # A returned tuple: the elements the column is stacked from, each on its own graph
                # (outputs.py); the column's own adjoint is the seed, as torch hands it to a tuple.
                got = outputs.grads_of_elements(elements, weights.reshape(-1).tolist(), [t for t in inputs if t.requires_grad],
                                                retain_graph=False)
                grads[path.output] = _to_host(weights)
            else:
                got = torch.autograd.grad(out, [t for t in inputs if t.requires_grad], grad_outputs=weights,
                                          allow_unused=True)
        except Exception as err:
            return _Capture(tensors, grads, f"{type(err).__name__}: {err}")
    for i, g in zip([i for i, t in zip(path.inputs, inputs) if t.requires_grad], got):
        if g is not None:
            grads[i] = _to_host(g)
    for st in path.steps:
        t = tensors[st.index]
        if st.op != "input" and isinstance(t, torch.Tensor):
            k = event_of.get(id(t))
            if k is not None and k in grads_by_event:
                grads[st.index] = grads_by_event[k]
    return _Capture(tensors, grads, None)


def _match(path: Path, events: list[tuple[int, str, Any]], lines: set[int], tensors: list[Any]) -> None:
    """Each step of the executed path gets the tensor its assignment produced: the recorded
    assignments in order, matched by (line, name)."""
    j = 0
    for st in path.steps:
        if st.op in ("input", "loop_var", "no_grad") or st.line not in lines:
            continue
        while j < len(events) and (events[j][0], events[j][1]) != (st.line, st.name):
            j += 1
        if j == len(events):
            return  # the float run took another path from here on: no torch values for the rest
        tensors[st.index] = events[j][2]
        j += 1


# --------------------------------------------------------------------------- the exact side


def backward_pass(lowered: LoweredProgram, path: Path, dtype: str, rtol: float, digits: float,
                  seed: Any = None) -> BackwardPass:
    """Every step's adjoint, exact and torch's, and where they part. `seed` is the output's
    adjoint (None: 1, or every element of a matrix output)."""
    cap = _capture(lowered, path, dtype, seed)
    data = {name for name, sym in zip(lowered.inputs, lowered.symbols) if isinstance(sym, DataMatrix)}
    # Every step's adjoint, an input's that is not differentiated too, wherever it is asked for;
    # not the data of the user's call (`DataMatrix`), whose gradient torch never computes there.
    with adjoints_for([name for name in lowered.inputs if name not in data] if data else None):
        exe = path.adjoints("executed", seed)
        mth = path.adjoints("math", seed)
    upstream = _upstream(path)
    of_data = _of_data(path, data)
    uses: list[list[int]] = [[] for _ in path.steps]
    for st in path.steps:
        for p in st.parents:
            if not uses[p] or uses[p][-1] != st.index:
                uses[p].append(st.index)
    user = lowered.normalized.user_symbols
    fi = torch.finfo(DTYPES[dtype])
    records: dict[int, BackwardStep] = {}
    order = [st for st in reversed(path.steps) if upstream[st.index] and (st.depends or st.index == path.output)]
    for st in order:
        t = cap.tensors[st.index]
        on_graph = isinstance(t, torch.Tensor) and t.requires_grad
        auto = cap.grads.get(st.index) if on_graph else None
        rel, lost, parts = _error(exe[st.index], auto, on_graph, rtol, fi.tiny, digits)
        records[st.index] = BackwardStep(
            step=st.index, name=st.name, line=st.line or None, op=st.op,
            exact_value=st.value, value_autograd=_to_host(t) if isinstance(t, torch.Tensor) else None,
            local_derivatives=_locals(path, st, exe[st.index], of_data), uses=tuple(uses[st.index]),
            exact_adjoint=exe[st.index], exact_adjoint_math=mth[st.index], adjoint_autograd=auto,
            relative_error=rel, digits_lost=lost, cut=st.cut, on_graph=on_graph, parts=parts,
            _node=st.node, _user=user)
    recs = tuple(records[st.index] for st in order)
    first = next((r for r in recs if r.parts), None)
    parting = _why(path, first, records, exe, cap, rtol, fi, user) if first is not None else None
    return BackwardPass(recs, parting, cap.error)


def _of_data(path: Path, data: set[str]) -> list[bool]:
    """The steps computed from the data of the user's call alone (`DataMatrix` inputs, and what
    only they reach), by step; empty where the program has no data."""
    if not data:
        return []
    out = [False] * len(path.steps)
    for st in path.steps:
        if st.op == "input":
            out[st.index] = st.name in data
        elif st.parents:
            out[st.index] = all(out[p] for p in st.parents)
    return out


def _upstream(path: Path) -> list[bool]:
    """Steps the output is computed from (through any edge, cut ones included)."""
    up = [False] * len(path.steps)
    up[path.output] = True
    for st in reversed(path.steps):
        if up[st.index]:
            for p in st.parents:
                up[p] = True
    return up


def _contributions(path: Path, st: PathStep, adj: Any, data: Sequence[bool] = ()) -> list[Any]:
    """What a step sends back to each parent: its adjoint times the local derivative (a matrix
    rule's vector-Jacobian product), exactly 0 where its adjoint is 0 or the step is cut, and to
    a parent computed from data alone (`data`, by step: X_flat in X_flat @ W.T), never differentiated."""
    if ex.all_zero(adj) or st.cut is not None:
        return [_zero_like(path.steps[p].value) for p in st.parents]
    if st.vjp is not None and any(data[p] for p in st.parents if p < len(data)):
        return [_zero_like(path.steps[p].value) if p < len(data) and data[p] else c() if callable(c) else c
                for p, c in zip(st.parents, st.vjp(adj))]
    if st.op == "elem":
        target = ex.full(path.steps[st.parents[0]].value.shape, ex.ZERO)
        target[st.param] = adj
        return [target]
    if st.vjp is not None:  # every contribution, each computed if it is given as a function
        return [c() if callable(c) else c for c in st.vjp(adj)]
    return [_zero_like(d) if ex.all_zero(d) else (ex.ewise(ex.mul, adj, d) if (ex.is_mat(adj) or ex.is_mat(d)) else ex.mul(adj, d))
            for d in st.partials]


def _locals(path: Path, st: PathStep, adj: Any, data: Sequence[bool] = ()) -> tuple[Local, ...]:
    if not st.parents:
        return ()
    names = [path.steps[p].name for p in st.parents]
    contributions = _contributions(path, st, adj, data)
    if st.vjp is not None or st.op == "elem":
        rules = _MATRIX_RULES.get(st.op)
        out = []
        for k, (p, c) in enumerate(zip(st.parents, contributions)):
            text = None
            if rules is not None and k < len(rules):
                text = rules[k].format(*names, g=f"adjoint of {st.name}", p=list(st.param) if st.param else "")
            out.append(Local(st.name, names[k], p, None, c, _const_text(text)))
        return tuple(out)
    return tuple(Local(st.name, names[k], p, d, c, _formula_of(path, st, k))
                 for k, (p, d, c) in enumerate(zip(st.parents, st.partials, contributions)))


def _d(name: str) -> str:
    """`dx` for a one-letter name, `d(x_pow_2)` otherwise."""
    return f"d{name}" if len(name) == 1 else f"d({name})"


def _const_text(text: str | None) -> Callable[[], str | None] | None:
    return None if text is None else (lambda: text)


def _formula_of(path: Path, st: PathStep, k: int) -> Callable[[], str | None]:
    """d(step)/d(parent k) as SymPy over the program's variable names, made when read."""

    def formula() -> str | None:
        if st.op in _VALUE_ONLY or st.op in ("constant", "const_on_graph", "matconst", "loop_var", "stack"):
            return None
        names = [path.steps[p].name for p in st.parents]
        if any(ex.is_mat(path.steps[p].value) for p in st.parents) or ex.is_mat(st.value):
            if st.op in ("add", "copy", "detach", "item", "no_grad", "where") or (st.op == "mul" and len(names) == 1):
                return _sym_text(_sym(st.partials[k])) if not ex.is_mat(st.partials[k]) else _uniform(st.partials[k])
            return None
        places = [sp.Symbol(n if names.index(n) == i else f"{n}_{i}") for i, n in enumerate(names)]
        try:
            e = _division(st, places) if st.op == "div" else step_expression(st, list(places))
            d = sp.diff(e, places[k])
        except Exception:  # a step SymPy cannot rebuild: its value speaks for it
            return None
        if not d.free_symbols <= set(places) or (d == 0 and not ex.all_zero(st.partials[k])):
            return None
        return sstr(d)

    return formula


def _division(st: PathStep, places: list[sp.Symbol]) -> sp.Basic:
    """A division rebuilt from its two operands (SymPy keeps `a/b` as `a*b**-1`, where `b` is
    not a subtree to replace)."""
    _, operands, _ = select(st.node)
    rest = iter(places)
    num, den = (o if (getattr(o, "is_number", False) and not o.free_symbols) else next(rest) for o in operands)
    return num / den


def _uniform(m: Any) -> str | None:
    """An elementwise partial that is one number everywhere (a sum, a scaling) as that number."""
    els = ex.elements(m)
    if els and all(ex.is_rational(v) and v == els[0] for v in els):
        return str(els[0])
    return None


def _zero_like(v: Any) -> Any:
    return ex.full(v.shape, ex.ZERO) if ex.is_mat(v) else ex.ZERO


def _sym(v: Any) -> Any:
    if ex.is_mat(v):
        return sp.ImmutableMatrix([[ex.to_sympy(x) for x in row] for row in v])
    return ex.to_sympy(v)


def _sym_text(v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, sp.MatrixBase):
        return "[" + "; ".join(", ".join(_sym_text(x) for x in row) for row in v.tolist()) + "]"
    if isinstance(v, sp.Rational) and len(str(v)) <= 24:
        return str(v)
    if isinstance(v, sp.Basic) and v.is_number and v.is_finite is not False:
        return sp.sstr(sp.Float(v, 8))
    return sstr(v)


def _error(exact: Any, auto: Any, on_graph: bool, rtol: float, tiny: float,
           digits: float) -> tuple[float | None, float | None, bool]:
    """(relative error, digits lost, beyond the tolerance) of torch's adjoint against the exact."""
    if not on_graph:
        return None, None, False
    e = np.asarray(ex.ewise(ex.to_float, exact), dtype=np.float64) if ex.is_mat(exact) else ex.to_float(exact)
    a = np.zeros_like(e) if auto is None else np.asarray(auto, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    if not all(ex.is_finite(v) for v in ex.elements(exact)):
        same = np.array_equal(np.isnan(e), np.isnan(a)) and np.all((e == a) | np.isnan(e))
        return (None if same else math.inf), None, not bool(same)
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(e)):
        return math.inf, digits, True  # finite exactly (perhaps past the dtype's range), not in torch
    scale = float(np.max(np.abs(e))) if e.size else 0.0
    diff = float(np.max(np.abs(a - e))) if e.size else 0.0
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
    correct = -math.log10(rel) if rel > 0 else digits
    lost = max(0.0, digits - max(0.0, correct))
    return rel, lost, diff > rtol * scale + tiny


# --------------------------------------------------------------------------- why they part


def _why(path: Path, first: BackwardStep, records: dict[int, BackwardStep], exe: list[Any], cap: _Capture,
         rtol: float, fi: Any, user: dict[Any, Any]) -> Parting:
    uses = [records[u] for u in first.uses if u in records and records[u].on_graph and records[u].cut is None]
    target = f"`{first.node}`" + (f" (line {first.line})" if first.line else " (an input)")
    exact_text = _num(exe[first.step])
    torch_text = _auto_text(first.adjoint_autograd)
    biggest = ex.from_float(float(fi.max))

    def local(u: BackwardStep) -> Local:
        return next(loc for loc in u.local_derivatives if loc.parent == first.step)

    finite_torch = first.adjoint_autograd is not None and bool(np.all(np.isfinite(np.asarray(first.adjoint_autograd))))
    if not finite_torch:
        for u in uses:
            loc = local(u)
            d = _partial(path, u, first.step)
            if d is not None and ex.all_zero(exe[u.step]) and not all(ex.is_finite(v) for v in ex.elements(d)):
                bad = "nan" if any(ex.is_nan(v) for v in ex.elements(d)) else "inf"
                reason = _zero_reason(path, u, records)
                return Parting(first, u, f"0*{bad}", (
                    f"`{u.node}` (line {u.line}): its local derivative {loc.label} = {loc.formula} is {bad} here, "
                    f"and its adjoint is exactly 0{reason}. torch multiplies them, 0 * {bad} = nan, and that "
                    f"nan reaches the adjoint of {target}: torch {torch_text}, exactly {exact_text}."))
        for u in uses:
            loc = local(u)
            d = _partial(path, u, first.step)
            a = exe[u.step]
            if d is not None and ex.all_zero(d) and not all(ex.is_finite(v) for v in ex.elements(a)):
                source = next((r for r in records.values() if any(
                    lc.exact_value is not None and not ex.is_mat(lc.exact_value) and not ex.is_finite(lc.exact_value)
                    for lc in r.local_derivatives)), None)
                above = (f", from the infinite slope of `{source.node}` (line {source.line})"
                         if source is not None and source.step != u.step else "")
                return Parting(first, u, "0*inf", (
                    f"`{u.node}` (line {u.line}): its adjoint is {_num(a)}{above}, and its local derivative "
                    f"{loc.label} = {loc.formula} is exactly 0 here. torch multiplies them, inf * 0 = nan, and "
                    f"that nan reaches the adjoint of {target}: torch {torch_text}, exactly {exact_text}."))
        for u in uses:
            d = _partial(path, u, first.step)
            vals = [path.steps[u.step].value, *(path.steps[p].value for p in path.steps[u.step].parents)]
            for v in ([d] if d is not None else []) + vals:
                for x in ex.elements(v):
                    if ex.is_finite(x) and ex.cmp(abs(x), biggest) > 0:
                        loc = local(u)
                        return Parting(first, u, "overflow", (
                            f"`{u.node}` (line {u.line}): {'its local derivative ' + loc.label + ' = ' + loc.formula if v is d else 'a value it uses'} "
                            f"is {_num(x)} exactly, past {_dtype_name(fi)}'s largest finite value {fi.max:.4g}, "
                            f"so torch holds inf there; the adjoint of {target} becomes {torch_text} (exactly {exact_text})."))
        for u in uses:
            host = u.value_autograd
            if host is not None and not np.all(np.isfinite(np.asarray(host))):
                return Parting(first, u, "nan", (
                    f"A NaN enters at `{u.node}` (line {u.line}): torch's forward value there is {_auto_text(host)}, "
                    f"exactly {_sym_text(u.value)}; its local derivative carries it into the adjoint of {target}: "
                    f"torch {torch_text}, exactly {exact_text}."))
    contribs = [(u, _exact_contribution(path, u, first.step, exe)) for u in uses]
    contribs = [(u, c) for u, c in contribs if c is not None and not ex.all_zero(c)]
    if len(contribs) >= 2 and finite_torch:
        lost = _cancelled(exe[first.step], [c for _, c in contribs])
        if lost >= 1:
            contribs.sort(key=lambda uc: -_magnitude(uc[1]))
            terms = ", ".join(f"{_num(c)} from `{u.node}` (line {u.line})" for u, c in contribs)
            return Parting(first, contribs[0][0], "cancellation", (
                f"In the backward pass the adjoint of {target} is the sum of what its {len(contribs)} uses send back: "
                f"{terms}. They nearly cancel, to {exact_text}: about {lost:.0f} leading digits are lost in the "
                f"sum (a cancellation in the backward pass), so torch gets {torch_text}."))
    ranked = sorted(contribs or [(u, None) for u in uses], key=lambda uc: -_magnitude(uc[1]) if uc[1] is not None else 0)
    for u, _ in ranked:
        loc = local(u)
        worst = _worst_forward(path, u, records)
        if worst is not None and worst[1] > rtol:
            w, err = worst
            cancels = _cancel_digits(path, w.step)
            how = (f", because it subtracts nearly equal numbers (cancellation: about {cancels:.0f} leading digits lost)"
                   if cancels >= 1 else "")
            return Parting(first, u, "cancellation" if cancels >= 1 else "rounding", (
                f"`{u.node}` (line {u.line}): its local derivative {loc.label} = {loc.formula} is evaluated with the "
                f"forward value of `{w.node}` (line {w.line}), which torch holds with a relative error of {err:.2g}{how}. "
                f"So the adjoint of {target} is {torch_text} in torch, exactly {exact_text}."))
    at = ranked[0][0] if ranked else first
    return Parting(first, at, "rounding", (
        f"The adjoint of {target} is {torch_text} in torch, exactly {exact_text}"
        + (f", first off after `{at.node}` (line {at.line})" if at is not first else "")
        + f": the rounding of {_dtype_name(fi)} in the values and local derivatives it is computed from."))


def _dtype_name(fi: Any) -> str:
    return "float64" if fi.bits == 64 else "float32"


def _partial(path: Path, u: BackwardStep, parent: int) -> Any:
    st = path.steps[u.step]
    if st.vjp is not None or st.op == "elem":
        return None
    return st.partials[st.parents.index(parent)]


def _exact_contribution(path: Path, u: BackwardStep, parent: int, exe: list[Any]) -> Any:
    """All that step `u` sends back to `parent`, exactly."""
    st = path.steps[u.step]
    total = None
    for p, c in zip(st.parents, _contributions(path, st, exe[u.step])):
        if p == parent:
            total = c if total is None else ex.accumulate(total, c)
    return total


def _magnitude(v: Any) -> float:
    return max((abs(ex.to_float(x)) for x in ex.elements(v)), default=0.0) if v is not None else 0.0


def _cancelled(total: Any, parts: Sequence[Any]) -> float:
    """Leading digits lost when `parts` are summed to `total` (elementwise, the worst)."""
    worst = 0.0
    for k, t in enumerate(ex.elements(total)):
        mags = sum(abs(ex.to_float(ex.elements(p)[k])) for p in parts)
        tf = abs(ex.to_float(t))
        if mags == 0:
            continue
        worst = max(worst, 17.0 if tf == 0 else math.log10(mags / tf))
    return worst


def _cancel_digits(path: Path, i: int) -> float:
    st = path.steps[i]
    if st.op != "add" or ex.is_mat(st.value):
        return 0.0
    big = max((abs(ex.to_float(path.steps[p].value)) for p in st.parents), default=0.0)
    res = abs(ex.to_float(st.value))
    if big == 0:
        return 0.0
    return 17.0 if res == 0 else math.log10(big / res)


def _worst_forward(path: Path, u: BackwardStep, records: dict[int, BackwardStep]) -> tuple[BackwardStep, float] | None:
    """Among a step and the operands its local derivatives read, the forward value torch holds
    least accurately."""
    best = None
    for i in (u.step, *path.steps[u.step].parents):
        r = records.get(i)
        if r is None or r.value_autograd is None:
            continue
        e = np.asarray(ex.ewise(ex.to_float, path.steps[i].value), dtype=np.float64) if ex.is_mat(path.steps[i].value) \
            else ex.to_float(path.steps[i].value)
        e = np.asarray(e, dtype=np.float64)
        a = np.asarray(r.value_autograd, dtype=np.float64)
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        if scale == 0 or not np.all(np.isfinite(e)):
            continue
        err = float(np.max(np.abs(a - e))) / scale
        if best is None or err > best[1]:
            best = (r, err)
    return best


def _zero_reason(path: Path, u: BackwardStep, records: dict[int, BackwardStep]) -> str:
    for k in u.uses:
        user = path.steps[k]
        if user.op == "where":
            return f" (`torch.where` on line {user.line} keeps the other branch at this point)"
    return ""


def _num(v: Any) -> str:
    if ex.is_mat(v):
        return "[" + "; ".join(", ".join(_num(x) for x in row) for row in v) + "]"
    if ex.is_rational(v) and v.height_bits() <= 40:
        return str(v)
    return ex.nstr(v, 12)


def _auto_text(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:.12g}"
    arr = np.asarray(v, dtype=np.float64)
    rows = arr.reshape(arr.shape[0], -1) if arr.ndim >= 1 else arr.reshape(1, 1)
    return "[" + "; ".join(", ".join(f"{float(x):.12g}" for x in row) for row in rows) + "]"
