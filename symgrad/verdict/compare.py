"""Put the three derivatives side by side and name the cause of every disagreement.

`compare()` returns records (`records.Comparison`, `records.Entry`); `report.py` renders them. The
split of DESIGN.md section 1 drives the classification: symbolic vs executed differ only through
the program's structure (domain, graph break, detach, control flow, jump, kink:
`structural.Structural`); executed vs autograd only through floating point (NaN trap, overflow,
rounding: `floating.FloatingPoint`). Each cause is found from the records (the executed path, its
decisions, the rule table), never by matching strings. This module reads the point
(`point.read_point`), computes the exact sides (`point.exact_sides`) and autograd's, and assembles
each entry from the findings of both halves.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Literal

import numpy as np
import sympy as sp
import torch

from ..program import exact as ex
from ..sides import autograd as ag
from ..program.deep import deep
from ..base.causes import EXPLANATIONS, HINTS, Cause
from ..frontends.front import expression, is_torch_function, signature
from ..frontends.source import SourceSpan, place
from ..frontends.modules import expand_wrt, is_module
from ..frontends.source_random import named as named_draws
from ..frontends.trace import Reading, in_your_words, int_sentence, point_by_name, read_function, spellings
from ..program.program import Program, Vector, float_of
from ..base.errors import ORDER
from ..base.errors import RTOL as RTOL_MESSAGE
from ..base.errors import OptionError, ShapeError
from ..sides.executed import DEFAULT_MAX_ITERATIONS, adjoints_for, domain_violation, run
from ..sides.path_expression import as_expression
from ..program.primitives import strip
from ..program.rules import exact_eval, op_rule
from ..program.ops import OPS
from ..sides.ir import LoweredProgram
from ..sides.loop_memory import autograd_first, give_back_freed
from ..sides.lowering import RTOL, wrt_indices, check_options, lower
from ..sides.symbolic import SymbolicSide, formula, same
from .records import DIGITS, Comparison, Entry, LazyValues, Later, OneSided, declared_order, element, with_fields
from .table import EntryTable
from .components import Components
from .grouping import outputs_of
from .point import (Component, ExactSides, SidesPerEntry, check_entries, check_work, components, exact_sides, output_seeds, read_point,
                    with_unused_inputs)
from .findings import Context, Finding, finite, fmt, user_text
from .hints import placed_hint
from .custom_backward import backward_convention, custom_findings
from .structural import Structural, cut_part, differs
from .floating import FINFO, FloatingPoint, agrees_when_rounded

UNUSED = ("{symbol} does not reach the output (the function does not read it, or SymPy simplified it "
          "away, as in x + y - y): its derivative is exactly 0, and all three sides agree. In torch "
          "the output's graph never reaches {symbol}: `torch.autograd.grad` raises unless you pass "
          "`allow_unused=True` (then it returns None), and `{symbol}.grad` stays None after "
          "`backward()`; symgrad reports that as 0.")


# --------------------------------------------------------------------------- entries


@functools.lru_cache(maxsize=8)
def _agree_text(dtype: str, rtol: float) -> str:
    """One string for every agreeing entry of a dtype and tolerance (a model has 10^5 of them)."""
    return EXPLANATIONS[Cause.AGREE].format(dtype=dtype, rtol=rtol)


def _point_of(lowered: LoweredProgram, floats: Sequence[Any]) -> LazyValues:
    """The point as SymPy values, user symbol -> the exact value each tensor holds (each built
    when first read)."""
    by_symbol = dict(zip(lowered.symbols, floats))
    return LazyValues(lowered.symbols, lambda s: _sympy_value(_exact_value(by_symbol[s])))


def _pair(values: tuple[Any, Any]) -> tuple[sp.Basic, sp.Basic]:
    return OneSided((ex.to_sympy(values[0]), ex.to_sympy(values[1])))


def _entry(c: Context, k: int, j: Any, sym: SymbolicSide, exe: ex.Exact, auto: float | None, wrt_sym: sp.Basic,
           formula_of: Callable[[], sp.Basic | None] | None = None, idx: tuple[int, int] | None = None,
           inputs: Sequence[int] | None = None, halves: tuple[Structural, FloatingPoint] | None = None) -> Entry:
    """One entry (output j, input k, element idx of a matrix input; `inputs`, the inputs it
    differentiates with respect to, (k,) unless a Hessian's two): the findings of both halves
    of the classifier, the primary one first, and its explanation and hint. Every structural
    finding cites the node that decides THIS entry (`Structural.ties_of`,
    `Structural.cut_findings`). `halves`: the two classifiers of context c, made once for all
    its entries."""
    ks = tuple(inputs) if inputs is not None else (k,)
    structural, floating = halves if halves is not None else (Structural(c), FloatingPoint(c))
    unique = _findings(c, k, sym, exe, auto, ks, idx, structural, floating)
    sym_value = sym.grad  # exact numbers, written in SymPy when first read (`records.Built`)
    one_sided = Later(_pair, sym.one_sided) if sym.one_sided else None
    exe_value = exe
    if not unique:
        text = _agree_text(c.dtype, c.rtol)
        if c.path.inputs[k] in c.unread:
            text = UNUSED.format(symbol=wrt_sym() if isinstance(wrt_sym, Later) else wrt_sym, dtype=c.dtype)
        return Entry(j, wrt_sym, sym_value, one_sided, exe_value, auto, Cause.AGREE, (), None, None, text, "",
                     c.run.error, formula_of)
    primary = unique[0]
    if primary.cause is Cause.KINK:  # a corner of a user Function's forward: its backward decided the slope
        primary = unique[0] = backward_convention(c, primary)
    base = {
        "node": c.node(primary.node), "line": primary.line if primary.line is not None else "?",
        "dtype": c.dtype, "rtol": c.rtol, "symbolic": fmt(sym.grad), "executed": fmt(exe),
        "autograd": fmt(auto), "digits": f"{DIGITS[c.dtype]:.0f}", "torch_error": "",
        "left": "", "right": "", "convention": "", "alternatives": "", "detail": "", "value": "",
        "how": "", "why": "", "domain": "", "bad": "", "beyond": "", "limit": "", "stored": "",
        "relerr": "", "lost": "", "what": "branch", "became": "", "low": "", "high": "",
        "wider": ", or compute in float64" if c.dtype == "float32" else "",
        "consequence": "; the mathematics still depends on the inputs there",
    }
    fields = dict(base, **primary.fields)
    if primary.cause is Cause.GRAPH_BREAK and c.run.error is not None:
        fields["torch_error"] = (f" So torch raised when asked for the gradient: \"{_first_line(c.run.error)}\".")
    explanation = EXPLANATIONS[primary.cause].format(**fields)
    if primary.cause is Cause.DETACH and fields["symbolic"] == fields["executed"] and len(ks) == 1:
        # The part removed is below the digits shown (sin(x) + 1e-300*x*detach(x)): say its size.
        explanation = (explanation[:-1] + f"; they differ by {fmt(structural.removed(ks[0], idx))}, "
                       "below the digits shown.")
    # A structural cause (mathematics vs program) beside a float one (program vs autograd): the
    # second says what autograd reports, which the first does not (a kink where sqrt's nan is
    # trapped: the program's slope is 0, autograd's nan).
    floats = (Cause.NAN_TRAP, Cause.OVERFLOW, Cause.ROUNDING)
    second = next((f for f in unique[1:] if f.cause in floats), None) if primary.cause not in floats else None
    if second is not None:
        more = dict(base, **second.fields)
        more["node"], more["line"] = c.node(second.node), second.line if second.line is not None else "?"
        said = EXPLANATIONS[second.cause].format(**more)
        explanation += f" Besides ({second.cause.id}): {said[0].lower() + said[1:] if said[:1] != '`' else said}"
    hint = _hint(primary, fields, c)
    if second is not None:
        hint += f" For the {second.cause.id}: {_hint(second, more, c)}"
    line = primary.line if isinstance(primary.line, int) else None
    return Entry(j, wrt_sym, sym_value, one_sided, exe_value, auto, primary.cause,
                 tuple(f.cause for f in unique[1:]), fields["node"], line, explanation, hint, c.run.error,
                 formula_of)


def _findings(c: Context, k: int, sym: SymbolicSide, exe: ex.Exact, auto: float | None, ks: tuple[int, ...],
              idx: tuple[int, int] | None, structural: Structural, floating: FloatingPoint) -> list[Finding]:
    """The findings of both halves of the classifier for one entry, one per cause, the most
    severe first (`_entry`'s; none where the entry agrees)."""
    findings: list[Finding] = []
    if sym.kind == "domain":
        findings.append(structural.domain_finding(sym))
    else:
        cuts = structural.cut_findings(ks, idx)
        if sym.kind == "smooth":  # at a corner of forward, any subgradient is the backward's to choose
            cuts = cuts + custom_findings(c, ks, idx)
        if sym.kind in ("kink", "jump", "unknown"):
            findings.extend(structural.tie_findings(sym, ks, idx))
            if sym.violation is not None and not c.path.ties:
                findings.extend(structural.vertical_tangent_findings(sym, exe, auto))
            findings.extend(cuts)
        elif cuts and (differs(sym.grad, exe) or len(ks) == 1 and structural.cut_removes(ks[0], idx)  # type: ignore[arg-type]
                       if _exact(sym) else not same(sym.grad, exe, True)):  # type: ignore[arg-type]
            # A cut the derivative flows through, and the sides differ at all: that cut is the
            # cause, however small the difference (exp(item(x)*y) where exp is 1e-113), also
            # where it is below the working resolution of the whole (sin(x) + 1e-300*x*detach(x)).
            findings.extend(cuts)
        elif not same(sym.grad, exe, not _exact(sym)):  # type: ignore[arg-type]
            findings.extend(structural.tie_findings(sym, ks, idx))
            if not findings:
                findings.extend(structural.shortcut_findings(sym, exe))
        if auto is None and c.run.error is not None and not any(f.cause is Cause.GRAPH_BREAK for f in findings):
            findings.extend(f for f in cuts if f.cause is Cause.GRAPH_BREAK)
        fl = floating.float_finding(k, exe, auto, idx)
        if fl is not None:
            findings.append(fl)
    if auto is None and c.run.error is not None and not findings:
        # torch raised although the derivative exists: nothing on the path to the output is on
        # the graph. Cite the step that left it, if one did.
        findings.append(structural.raised_finding())
    findings.sort(key=lambda f: f.cause.severity)
    unique: list[Finding] = []
    for f in findings:
        if all(u.cause is not f.cause for u in unique):
            unique.append(f)
    return unique


def _exact(sym: SymbolicSide) -> bool:
    """The mathematics' derivative is exact (a ball that holds it), not a limit of slopes taken
    just beside the point (a cone's, or a removable singularity's), which is known only to the
    working resolution."""
    return sym.violation is None and not any(s is not None and s.limit for s in (sym.left, sym.right))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


# The hint of each kind of rounding finding (`findings.Finding.hint_extra`); {wider} suggests float64 to a
# float32 run.
_ROUNDING_HINTS: Final = {
    "backward-cancellation": (
        "The derivative, not the function, cancels: the chain rule adds nearly equal and opposite "
        "contributions. A quotient whose numerator and denominator both vanish at the point does this "
        "however accurately each is computed (expm1(x)/x or log1p(x)/x near 0). Near such a point, "
        "write the function so that no such quotient is differentiated, e.g. a few terms of its Taylor "
        "series there (`Piecewise((1 + x/2 + x**2/6 + x**3/24, Abs(x) < 1e-3), (expm1(x)/x, True))`){wider}, "
        "and compare the rewrite at this point with `symgrad.compare`."),
    "below-inputs": (
        "The float value is as close as the inputs' rounding allows: the relative error is large only "
        "because the exact value is tiny. If it matters (a gradient with respect to the labels, say), "
        "the entries that read it are the ones to check; `wrt=` leaves them out of the comparison."),
    "underflow": (
        "Write the function so that no factor of its backward pass is that small: compute the small "
        "quantity directly (for 1/(1 + exp(-x)), `torch.sigmoid(x)`, whose backward is s * (1 - s), with "
        "no division){wider}, and compare the rewrite with `symgrad.compare`."),
    "singular-det": (
        "Away from singular matrices torch's determinant backward is accurate. Where you need the gradient "
        "at a singular matrix, write the determinant out (for 2x2, `A[0, 0]*A[1, 1] - A[0, 1]*A[1, 0]`), "
        "whose backward torch computes term by term, and compare it with `symgrad.compare`."),
    "accumulate": (
        "No single step cancels: the program amplifies the rounding error of every step. "
        "Reformulate it so errors do not grow (fewer iterations, a contracting update){wider}, "
        "and compare the reformulation with `symgrad.compare`."),
}


def _hint(f: Finding, fields: dict[str, Any], c: Context) -> str:
    """The hint for where the finding sits (`hints.placed_hint`) or the rule's own hint for this
    cause, followed by the finding's own (a step torch's backward formula decides) where it has
    one; else the cause's general hint."""
    specific = _specific_hint(f, c)
    if f.hint:
        return f.hint if specific is None else f"{specific} {f.hint}"
    return specific if specific is not None else HINTS[f.cause].format(**fields)


def _specific_hint(f: Finding, c: Context) -> str | None:
    placed = placed_hint(f, c)
    if placed is not None:
        return placed
    if f.hint_extra in _ROUNDING_HINTS:
        return _ROUNDING_HINTS[f.hint_extra].format(wider=", or compute in float64" if c.dtype == "float32" else "")
    if f.node is not None:
        # The rule rows' hint for a node and cause, found once per context (a model's 10^3 kink
        # entries cite one node, and the walk over the path's 10^3 steps was theirs each).
        memo: dict[Any, str | None] = vars(c).setdefault("rule_hints", {})
        key = (f.node, f.cause)
        if key not in memo:
            memo[key] = _rule_hint(c, f)
        return memo[key]
    return None


def _rule_hint(c: Context, f: Finding) -> str | None:
    for st in c.path.steps:
        if st.node == f.node and st.op in OPS:
            rule = op_rule(st.op)
            if rule is not None and f.cause in rule.hints:
                return rule.hints[f.cause]
    if f.cause is Cause.ROUNDING:
        # A cancellation: the functions inside the subtraction know the stable rewrite.
        for st in c.path.steps:
            if st.node in f.node.args if isinstance(f.node, sp.Basic) else False:
                rule = op_rule(st.op)
                if rule is not None and Cause.ROUNDING in rule.hints:
                    return rule.hints[Cause.ROUNDING]
    return None


# --------------------------------------------------------------------------- entry point


@deep
def compare(f: Any, at: Mapping[Any, Any], *, wrt: Iterable[Any] | None = None, dtype: str | None = None,
            branches: Literal["if", "where"] = "if", order: int = 1, v: Any = None, rtol: float | None = None,
            max_iterations: int = DEFAULT_MAX_ITERATIONS) -> Comparison:
    """Compare the symbolic, executed and autograd derivatives of `f` at the point `at`.

    **Arguments:**

    - `f`: a SymPy expression or a `symgrad.Program`; a torch function, a `torch.nn.Module`
      (its parameters are its inputs, named by their paths: `fc1.weight`), or a function that
      takes one.
    - `at`: the point, `{symbol: value}`; values are rounded to `dtype` first, and all three
      sides are evaluated at the exact binary value the tensor holds. For a module, the data
      by `forward`'s parameter names (`{"input": X}`); a parameter's path gives it another value.
    - `wrt`: the inputs to differentiate with respect to (default: all, in order; a module's
      trainable parameters). A module's name (`"model"`, `"fc1"`) means every parameter under it.
    - `dtype`: `"float64"` or `"float32"`. Default (None): for a torch function, the dtype of
      your tensors (float64 for Python numbers), so that your float32 code is checked in float32;
      float64 for SymPy input and strings.
    - `branches`: `"if"` (default) or `"where"`: how a Piecewise is lowered.
    - `rtol`: relative tolerance between executed and autograd (default per dtype:
      1e-9 for float64, 1e-4 for float32).
    - `max_iterations`: how many times a loop may run before `LoopLimitError`.

    **Returns:** a `Comparison`; `str()` of it is a report.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> compare(sp.Max(x, 0), at={x: 0.0}).cause.id
    'kink'
    """
    if is_torch_function(f):  # a torch function: read back by `trace`, at `at` by parameter name
        return compare_function(f, at, wrt=wrt, dtype=dtype, order=order, v=v, rtol=rtol,
                                max_iterations=max_iterations)
    return _compare_expression(f, at, wrt=wrt, dtype=dtype, branches=branches, order=order, v=v, rtol=rtol,
                               max_iterations=max_iterations)


@deep
def _compare_expression(f: Any, at: Mapping[Any, Any], *, wrt: Iterable[Any] | None = None, dtype: str | None = None,
                        branches: Literal["if", "where"] = "if", order: int = 1, v: Any = None,
                        rtol: float | None = None, max_iterations: int = DEFAULT_MAX_ITERATIONS,
                        separate: bool = False, prerun: ag.Prerun | None = None) -> Comparison:
    """compare() of a SymPy expression or Program; `separate`: it stands for a returned tuple, whose
    column's elements autograd differentiates each on its own (`sides/outputs.py`); `prerun`: the
    fidelity check's run of the translation, which the autograd side reads where it is the same run."""
    f = expression(f)
    dtype = "float64" if dtype is None else dtype
    check_options(branches=branches, dtype=dtype)
    if order not in (1, 2):
        raise OptionError(ORDER.format(value=order))
    if rtol is not None and not (isinstance(rtol, (int, float)) and rtol > 0):
        raise OptionError(RTOL_MESSAGE.format(value=rtol))
    tol = float(rtol) if rtol is not None else RTOL[dtype]
    lowered = with_unused_inputs(lower(f, branches=branches, dtype=dtype), f, at, branches, dtype)
    if separate:
        lowered = replace(lowered, separate_outputs=True)
    floats = read_point(lowered, at, dtype)
    wrt_idx = wrt_indices(lowered, wrt)
    point = {name: _exact_value(x) for name, x in zip(lowered.inputs, floats)}
    comps = components(lowered, point, wrt_idx)
    check_entries(lowered, comps, v)
    check_work(lowered)
    if order == 2:
        return _hessian(lowered, floats, point, comps, dtype, tol, branches, max_iterations, v)
    v_exact = _vector(lowered, v, point, max_iterations)
    v_float = None if v is None else np.asarray(ex.ewise(ex.to_float, v_exact), dtype=np.float64)
    with collector_paused(), adjoints_for(lowered.inputs[k] for k in wrt_idx):
        # A loop's exact path and torch's graph of it are each as large as the loop: one is built
        # after the other is freed where the loops end by construction (`sides/loop_memory.py`).
        if autograd_first(lowered, max_iterations):
            run_ = ag.run(lowered, floats, dtype, wrt_idx, v_float, prerun)
            give_back_freed()
            exact = exact_sides(lowered, point, comps, v_exact, max_iterations)
        else:
            exact = exact_sides(lowered, point, comps, v_exact, max_iterations)
            run_ = ag.run(lowered, floats, dtype, wrt_idx, v_float, prerun)
        with ex.working_precision(exact.bits):
            return _assemble(lowered, exact, run_, floats, comps, v_exact, dtype, tol, branches)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused for the exact work and the entries, and restored as it was
    (on or off) after: a comparison of a model makes 10^5 to 10^6 objects that live until it
    returns, and each of them made the collector walk the whole heap again (half the time of a
    50,890-entry comparison). Nothing made here is freed later for the pause: what is not
    returned is freed by its reference count when it goes, as ever; cycles wait for the next
    collection after the call."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# --------------------------------------------------------------------------- functions read from torch code


def compare_reading(reading: Reading, **options: Any) -> Comparison:
    """`symgrad.compare` of the translated program at the traced example values (or at `at=`,
    keyed by parameter name); every entry carries the user's `SourceSpan` (`entry.source`).
    In path mode the recorded run is compared, and every explanation says so.

    A reading is trusted only at the point and in the dtype its fidelity check ran in: another
    point (`at=`) or another dtype (`dtype=`) reads the function again there, so the translation
    is checked against your code where it is compared, and the autograd column is your code's."""
    at = options.pop("at", None)
    point = reading.point if at is None else point_by_name(reading.fn, at)
    options.pop("branches", None)
    dtype = options.pop("dtype", None) or reading.dtype
    if at is not None or dtype != reading.dtype:
        # Another dtype reads the example values as they were given (a rank-1 tensor still rank 1).
        again = read_function(reading.fn, (), point if at is not None or not reading.arguments else reading.arguments,
                              dtype=dtype,
                              max_iterations=options.get("max_iterations", DEFAULT_MAX_ITERATIONS),
                              rng_state=None if reading.draws is None else reading.draws.state)  # the same draws
        return compare_reading(again, **options)
    function = reading.program if reading.mode == "source" else reading.recorded
    names = [s.name if hasattr(s, "name") else str(s) for s in reading.inputs]  # (str() of a symbol is SymPy's printer)
    vectors = {s.name: s for s in reading.inputs if isinstance(s, Vector)}  # a rank-1 input's elements: `x[i]`
    point = {vectors.get(k, k) if isinstance(k, str) else k: v for k, v in point.items()}
    asked = options.get("wrt")
    asked = [] if asked is None else [asked] if isinstance(asked, (str, sp.Basic)) else list(asked)
    said = int_sentence(reading.arguments, [w.name if hasattr(w, "name") else str(w) for w in asked],
                        "`wrt` asks for its derivative")
    if said is not None:
        raise OptionError(said)
    # A module's name in wrt (`"model"`, `"fc1"`) means every parameter under it; a module compares
    # its trainable parameters by default.
    options["wrt"] = expand_wrt(names, options.get("wrt"))
    if options.get("wrt") is None and reading.wrt is not None:
        options["wrt"] = list(reading.wrt)
    if options.get("wrt") is None and reading.inputs and not isinstance(function, Program):
        # A function of tensors reads back as a bare expression, whose inputs would come in
        # natural order: entries follow the parameters as the function declares them.
        options["wrt"] = list(reading.inputs)
    with named_draws(reading.draws, reading.constants):  # each draw named in the generated program (`rand_1`), citing its line
        c = _compare_expression(function, point, branches=reading.branches, dtype=dtype,
                                separate=reading.returned is not None, prerun=reading.fidelity.run, **options)
    c = with_fields(cite(c, reading.origins), title=Later(title, reading.fn),  # written when a report reads it
                    point=Later(declared_order, c.__dict__["point"], names))  # the signature's order
    if reading.returned is not None:  # a returned tuple: its values in order are the output
        c = with_fields(c, outputs=reading.returned.labels, returned=reading.returned.sentence())
    # (the outputs from the table where the entries are held as one: none of them built)
    rows = [o[0] for o in outputs_of(c) if isinstance(o, tuple)]
    if reading.rank1_output and rows:  # a rank-1 output's elements: `f[i]`, as the user indexes it
        c = with_fields(c, outputs=tuple(f"f[{i}]" for i in range(max(rows) + 1)))
    if reading.draws is not None:  # random draws: data of the user's run
        c = with_fields(c, drawn=reading.draws.sentence())
    if reading.mode == "path":
        said = (f"(Path mode: symgrad compared the run it recorded, with branches as taken and loops "
                f"unrolled, because {reading.reason})")
        if c.table is not None:  # every entry says so: the agreeing ones as they are built
            table = c.table.copy({i: with_fields(e, explanation=f"{e.explanation} {said}")
                                  for i, e in c.table.special.items()}, said=f"{c.table.said} {said}".strip())
            c = with_fields(c, entries=Later(table.entries), table=table)
        else:
            c = with_fields(c, entries=tuple(with_fields(e, explanation=f"{e.explanation} {said}") for e in c.entries))
    return c


def compare_function(fn: Any, at: Any, **options: Any) -> Comparison:
    """`symgrad.compare(fn, at=...)` for a torch function: `at` keyed by parameter name, or a
    tuple of values in parameter order; `dtype=None` compares in the dtype of your tensors."""
    point = point_by_name(fn, at)
    reading = read_function(fn, (), point, max_iterations=options.get("max_iterations", DEFAULT_MAX_ITERATIONS),
                            dtype=options.pop("dtype", None))
    return compare_reading(reading, **options)


def title(fn: Any) -> str:
    """A traced function as reports name it: `loss(W, b, X, Y) from model.py:12`."""
    if is_module(fn):  # a model: its class, forward's parameters and where forward is defined
        forward = type(fn).forward
        code = getattr(forward, "__code__", None)
        where = f" from {place(code.co_filename, code.co_firstlineno)}" if code is not None and not \
            type(fn).__module__.startswith("torch.") else ""
        return f"{type(fn).__qualname__}({', '.join(inspect.signature(fn.forward).parameters)}){where}"
    f = inspect.unwrap(fn)
    try:
        params = ", ".join(signature(f).parameters)
    except (TypeError, ValueError):
        params = "..."
    code = getattr(f, "__code__", None)
    where = f" from {place(code.co_filename, code.co_firstlineno)}" if code is not None else ""
    return f"{getattr(f, '__qualname__', getattr(f, '__name__', 'function'))}({params}){where}"


def cite(comparison: Any, origins: Mapping[Any, SourceSpan]) -> Any:
    """The comparison with each entry's `source` set to the user's line its generated line came
    from, and the explanation citing it."""
    lowered = comparison.lowered
    lines: dict[int, SourceSpan] = {}
    for node, span in origins.items():
        line = lowered.line_map.get(node)
        if line is not None:
            lines.setdefault(line, span)
    ordered = sorted(lines)

    def span_of(line: int | None) -> SourceSpan | None:
        if line is None:
            return None
        if line in lines:
            return lines[line]
        before = [n for n in ordered if n <= line]
        return lines[before[-1]] if before else None

    spelled: dict[str, str] | None = None  # the nodes named as the user wrote them, when a finding needs them

    def cited(e: Entry) -> Entry:
        nonlocal spelled
        span = span_of(e.line)
        if span is not None and not e.ok:
            if spelled is None:
                spelled = spellings(lowered, origins)
            e = with_fields(e, source=span, explanation=f"{in_your_words(e.explanation, spelled)} In your code: `{span}`.",
                            hint=in_your_words(e.hint, spelled))
        elif span is not None:
            e = with_fields(e, source=span)
        return e

    table = getattr(comparison, "table", None)
    if table is not None and span_of(None) is None:
        # A plainly agreeing entry has no line, so no span: only `_entry`'s records change.
        table = table.copy({i: cited(e) for i, e in table.special.items()})
        return with_fields(comparison, entries=Later(table.entries), table=table)
    return with_fields(comparison, entries=tuple(cited(e) for e in comparison.entries))


def rounding_only(lowered: LoweredProgram, floats: Sequence[float], wrt: Sequence[int], auto: Sequence[float],
                  dtype: str, rtol: float, max_iterations: int = DEFAULT_MAX_ITERATIONS) -> tuple[str, list[float]] | None:
    """For a sweep's runs of cancelling points: decide a scalar point where the only question is
    autograd's float error, as compare() would, without a report. The exact sides are computed
    as for compare() (same precision and reruns); `auto` is autograd's value per input of `wrt`,
    from the sweep's batch. Returns ("agree" or "rounding", the exact executed derivatives as
    floats), or None where the question is wider and compare() must decide: the path sits on a
    tie, a value or derivative is not finite, the mathematics differs from the executed path
    (through a cut, by however little), or a value of the path or of its backward pass is past
    the dtype's range."""
    point = {name: ex.from_float(float(v)) for name, v in zip(lowered.inputs, floats)}
    comps = [(k, None) for k in wrt]
    exact = exact_sides(lowered, point, comps, None, max_iterations)
    if exact.path.ties or not finite(exact.path.value) or not all(math.isfinite(a) for a in auto):
        return None
    cut = any(st.cut for st in exact.path.steps)
    with ex.working_precision(exact.bits):
        removed = cut_part(exact.path, exact.path.adjoints("executed")) if cut else []
        values, exes = [], []
        for n in range(len(comps)):
            side, exe = exact.sym[(0, n)], exact.exe[(0, n)]
            if side.kind != "smooth" or side.grad is None or not ex.is_finite(exe) or not same(side.grad, exe, not _exact(side)):
                return None
            if cut and differs(side.grad, exe):  # a cut hid a part, however small: compare() says which
                return None
            if cut and differs(removed[exact.path.inputs[wrt[n]]], ex.ZERO):  # below the whole's resolution
                return None
            values.append(ex.to_float(exe))  # as compare() decides: autograd beside the float of exe
            exes.append(exe)
        c = FloatingPoint(Context(lowered, exact, dtype, rtol, ag.AutogradRun(None, [], None)))
        reach = c.path.reaches_output()
        if c.overflow_step(reach) is not None or c.backward_overflow(reach) is not None:
            return None
    tiny = FINFO[dtype].tiny
    off = any(abs(a - e) > rtol * abs(e) + tiny and not agrees_when_rounded(x, a, dtype)
              for a, e, x in zip(auto, values, exes))
    # shown as compare() shows it (its entry's grad_executed): a ball around 0 at the working
    # resolution is 0, not its midpoint
    return ("rounding" if off else "agree"), [float_of(ex.to_sympy(e)) for e in exes]


def cause_only(lowered: LoweredProgram, floats: Sequence[float], wrt: Sequence[int], auto: Sequence[float],
               dtype: str, rtol: float, max_iterations: int = DEFAULT_MAX_ITERATIONS
               ) -> tuple[str, list[float], tuple[int | None, str | None] | None] | None:
    """For a sweep's runs of points where autograd is not finite: what compare() would say of a
    scalar point that a sweep reads, without its report (no entries, explanations or hints,
    no autograd run). The exact sides and each entry's findings are compare()'s own (`_findings`,
    at the same precision and reruns); `auto` is autograd's value per input of `wrt`, from the
    sweep's batch (where torch did not raise). Returns the comparison's cause id, the exact
    executed derivatives as floats (as `float_of` reads a comparison's `grad_executed`), and the
    line and node of its first entry that does not agree (None where all agree); None for a
    point whose output is not a scalar."""
    point = {name: ex.from_float(float(v)) for name, v in zip(lowered.inputs, floats)}
    comps = [(k, None) for k in wrt]
    with collector_paused(), adjoints_for(lowered.inputs[k] for k in wrt):
        exact = exact_sides(lowered, point, comps, None, max_iterations)
        if ex.is_mat(exact.path.value):
            return None
        with ex.working_precision(exact.bits):
            row: list[Any] = [None] * len(lowered.inputs)
            for k, a in zip(wrt, auto):
                row[k] = float(a)
            c = Context(lowered, exact, dtype, rtol, ag.AutogradRun(None, [row], None))
            c.cache = {"seed": None}
            structural, floating = Structural(c), FloatingPoint(c)
            causes, values, first = [], [], None
            for n, (k, _) in enumerate(comps):
                exe = exact.exe[(0, n)]
                values.append(math.nan if exe is None else float_of(ex.to_sympy(exe)))
                unique = _findings(c, k, exact.sym[(0, n)], exe, float(auto[n]), (k,), None, structural, floating)
                if not unique:
                    continue
                primary = unique[0]
                if primary.cause is Cause.KINK:  # as `_entry` names it
                    primary = backward_convention(c, primary)
                causes.append(primary.cause)
                if first is None:
                    first = (primary.line if isinstance(primary.line, int) else None, c.node(primary.node))
    cause = min(causes, key=lambda cause: cause.severity, default=Cause.AGREE)
    return cause.id, values, first


def plainly_agrees(sym: SymbolicSide | ex.Exact, exe: ex.Exact, auto: Any, rtol: float, tiny: float,
                   close: bool | None = None) -> bool:
    """Whether an entry agrees by `_entry`'s own rule with nothing for its findings to look at, on
    a path with no cut and no user Function (the caller's question): the mathematics is smooth
    there and the same number as the executed derivative (`same`, as `_entry` asks it), which is
    finite, and autograd's float is finite and within the tolerance of it. Every other entry goes
    through `_entry`; this decides nothing `_entry` would decide otherwise. `sym` may be a
    smooth side's bare value, as `point.SidesPerEntry` holds it; `close`, the answer to the
    float half (autograd finite and within the tolerance), where the caller computed it for a
    whole row at once (`_close`, the same float64 operations)."""
    if type(sym) is SymbolicSide:
        if sym.kind != "smooth" or sym.one_sided:
            return False
        a, limit = sym.grad, not _exact(sym)
    else:  # SymbolicSide(sym, "smooth", None, None): exact, no one-sided slopes
        a, limit = sym, False
    if close is None:
        if type(auto) is not float or not math.isfinite(auto):
            return False
        e = ex.to_float(exe)
        close = abs(auto - e) <= rtol * abs(e) + tiny
    if not close or not ex.is_finite(exe):  # the cheap half first: the rule is a conjunction
        return False
    if a is exe or (ex.is_rational(a) and ex.is_rational(exe) and a == exe):
        return True
    if ex.is_ball(a) and ex.is_ball(exe) and a.is_finite():  # type: ignore[union-attr]
        # `same`'s own difference of two finite balls, and its first answer. (`same` also counts
        # such a ball as undecided: a count only `exact_sides` reads, of its own run, before this.)
        if (a - exe).contains(0):
            return True
    return same(a, exe, limit)  # type: ignore[arg-type]


# The floats of a row handled at once: a model's row of 10^5 held no temporaries of its size
# beside the table's (`_close`'s four, at the peak of a comparison's memory).
CHUNK = 1 << 15
# A row of at most this many entries is read in plain Python (`_row_floats`).
SMALL_ROW: Final = 64


def _row_floats(exes: Sequence[Any], autos: Sequence[Any], width: int, rtol: float,
                tiny: float) -> tuple[Any, Any, Iterable[Any]]:
    """One row's executed derivatives as floats, autograd's floats (NaN where it has no float:
    `_auto_floats`) and whether each pair is close (`_close`). A row of at most `SMALL_ROW`
    entries in plain Python, one entry at a time: the same float64 operations, without a numpy
    call (each costs tens of microseconds on a cold cache, as a check's first touch is).
    (`_assemble` fills a larger row into its table a chunk at a time instead.)"""
    if width > SMALL_ROW:
        executed = np.fromiter((_float_of(x) for x in exes), dtype=np.float64, count=width)
        autograd = np.empty(width, dtype=np.float64)
        _auto_floats(autos, autograd)
        return executed, autograd, _each_auto([_close(autograd, executed, rtol, tiny)])
    executed_f = [_float_of(x) for x in exes]
    autograd_f = [a if type(a) is float else math.nan for a in _each_auto(autos)]
    return executed_f, autograd_f, [abs(a - e) <= rtol * abs(e) + tiny for a, e in zip(autograd_f, executed_f)]


def _close(autos: np.ndarray, exes: np.ndarray, rtol: float, tiny: float) -> np.ndarray:
    """`plainly_agrees`'s float half for a row: autograd's float finite and within the tolerance
    of the executed derivative's (NaN where either has none, which is never within it)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if autos.size <= CHUNK:
            return np.abs(autos - exes) <= rtol * np.abs(exes) + tiny  # type: ignore[no-any-return]
        out = np.empty(autos.shape, dtype=bool)
        for s in range(0, autos.size, CHUNK):
            a, e = autos[s:s + CHUNK], exes[s:s + CHUNK]
            out[s:s + CHUNK] = np.abs(a - e) <= rtol * np.abs(e) + tiny
        return out


def _float_of(v: Any) -> float:
    try:
        return ex.to_float(v) if v is not None and not ex.is_mat(v) else math.nan
    except (TypeError, ValueError, AttributeError):
        return math.nan


def _blocks(comps: Sequence[Component]) -> list[tuple[int, int, int]]:
    """The runs of components of one input, (input k, start, stop): a matrix input's elements
    come together, in row-major order (`point.components`)."""
    if isinstance(comps, Components):
        return [(k, start, stop) for k, start, stop, _ in comps.runs()]
    out: list[tuple[int, int, int]] = []
    for n, (k, _) in enumerate(comps):
        if out and out[-1][0] == k and out[-1][2] == n:
            out[-1] = (k, out[-1][1], n + 1)
        else:
            out.append((k, n, n + 1))
    return out


def _autos(grads: Sequence[Any] | None, comps: Sequence[Component], blocks: Sequence[tuple[int, int, int]]) -> list[Any]:
    """autograd's value of each component, as `_entry` is given it: a float for a matrix input's
    element (`float(grad[idx])`), the input's own for a scalar one, None where torch raised. Held
    in parts, in order: a matrix input's whole gradient as its float64 array (`_each_auto` reads
    its elements as Python floats, a chunk at a time), any other run as a list of the values."""
    if grads is None:
        return [[None] * len(comps)]
    out: list[Any] = []
    for k, start, stop in blocks:
        g = grads[k]
        if isinstance(g, np.ndarray) and g.size == stop - start and _whole(comps, start, stop, g.shape):
            out.append(np.asarray(g, dtype=np.float64).reshape(-1))  # in the order of np.ndindex
        else:
            out.append([g if idx is None or g is None else float(g[idx]) for _, idx in comps[start:stop]])
    return out


def _each_auto(parts: Sequence[Any], chunk: int = 4096) -> Iterator[Any]:
    """The values `_autos` holds, in order (an array's as Python floats, made a chunk at a time)."""
    for part in parts:
        if isinstance(part, np.ndarray):
            for start in range(0, part.size, chunk):
                yield from part[start:start + chunk].tolist()
        else:
            yield from part


def _auto_floats(parts: Sequence[Any], out: np.ndarray) -> None:
    """autograd's floats written into the table's row `out`: each value as a float64, NaN where it
    is not a float (each part where it goes, no array of the whole row beside it)."""
    start = 0
    for part in parts:
        out[start:start + len(part)] = part if isinstance(part, np.ndarray) else \
            np.array([a if type(a) is float else math.nan for a in part], dtype=np.float64)
        start += len(part)


def _whole(comps: Sequence[Component], start: int, stop: int, shape: tuple[int, ...]) -> bool:
    """Whether components start:stop are every element of a matrix of `shape`, in row-major order."""
    if isinstance(comps, Components):
        return any(s == start and e == stop and sh == tuple(shape) for _, s, e, sh in comps.runs())
    return [idx for _, idx in comps[start:stop]] == list(np.ndindex(*shape))


def _assemble(lowered: LoweredProgram, exact: ExactSides, run_: ag.AutogradRun, floats: list[Any], comps: list[Component],
              v_exact: Any, dtype: str, tol: float, branches: str) -> Comparison:
    """Entries, classified, in the order of DESIGN.md section 6: the plainly agreeing ones in
    one pass (`plainly_agrees`), the others by `_entry`, held in an `EntryTable`."""
    value = exact.path.value
    seeds = output_seeds(value, v_exact)
    cache: dict[str, Any] = {"seed": v_exact}
    scalar = len(seeds) == 1 and seeds[0] is None
    labels = [0 if seed is None or v_exact is not None else tuple(np.ndindex(*value.shape))[o]
              for o, seed in enumerate(seeds)]
    formulas = [functools.partial(formula, lowered, k) for k in range(len(lowered.symbols))] if scalar else None
    read = {p for st in exact.path.steps for p in st.parents}
    unread = {k for k, i in enumerate(exact.path.inputs) if i not in read}  # as `Context.unread`
    agree_text = _agree_text(dtype, tol)

    def text(k: int, wrt: Any) -> str:
        if k in unread:
            return UNUSED.format(symbol=wrt() if isinstance(wrt, Later) else wrt, dtype=dtype)
        return agree_text

    def values(o: int, n: int) -> tuple[Any, Any]:  # an agreeing entry's exact values, when it is built
        return exact.sym[(o, n)].grad, exact.exe[(o, n)]

    table = EntryTable(lowered.symbols, comps, labels, text, formulas, run_.error, values)
    cut = any(st.cut for st in exact.path.steps)
    tiny = float(FINFO[dtype].tiny)
    width = len(comps)
    blocks = _blocks(comps)
    for o, seed in enumerate(seeds):
        c = Context(lowered, exact, dtype, tol, run_, seed)
        if seed is None or v_exact is not None:
            c.cache = cache
        halves: tuple[Structural, FloatingPoint] | None = None
        plain = not cut and not c.custom_steps  # no cut, no user Function: nothing for a finding to read
        autos = _autos(run_.grads[o] if run_.grads else None, comps, blocks)
        exes = exact.exe.row(o)
        # each side as held: a smooth one as its bare value (`SidesPerEntry`), not wrapped to be read
        helds = exact.sym.row(o) if isinstance(exact.sym, SidesPerEntry) else [exact.sym[(o, n)] for n in range(width)]
        row = slice(o * width, (o + 1) * width)
        if width <= SMALL_ROW:
            table.executed[row], table.autograd[row], closes = _row_floats(exes, autos, width, tol, tiny)
        else:
            exe_floats = (_float_of(x) for x in exes)  # into the table a chunk at a time (no array of the row beside it)
            for s in range(o * width, (o + 1) * width, CHUNK):
                n = min(CHUNK, (o + 1) * width - s)
                table.executed[s:s + n] = np.fromiter(exe_floats, dtype=np.float64, count=n)
            _auto_floats(autos, table.autograd[row])
            closes = _each_auto([_close(table.autograd[row], table.executed[row], tol, tiny)])
        for n, (held, exe, auto, close) in enumerate(zip(helds, exes, _each_auto(autos), closes)):
            if plain and close and plainly_agrees(held, exe, auto, tol, tiny, close):
                continue  # the table's code says agree; its Entry is built when read
            k, idx = comps[n]
            if halves is None:
                halves = (Structural(c), FloatingPoint(c))
            wrt_sym = lowered.symbols[k] if idx is None else element(lowered.symbols[k], idx[0], idx[1])
            shown = formulas[k] if formulas is not None else None
            table.entry(o * width + n, _entry(c, k, labels[o], exact.sym[(o, n)], exe, auto, wrt_sym, shown, idx,
                                              halves=halves))
    return Comparison(
        entries=Later(table.entries),  # type: ignore[arg-type]
        lowered=lowered,
        point=Later(_point_of, lowered, floats),
        dtype=dtype,
        rtol=tol,
        value_exact=Later(_sympy_value, value) if finite(value) else None,
        value_autograd=run_.value,
        executed_path=exact.path,
        branches=branches,
        source=lowered.normalized.source,
        vjp=v_exact is not None,
        exact_bits=exact.bits,
        work=cache,
        table=table,
    )


def _hessian(lowered: LoweredProgram, floats: list[Any], point: dict[str, Any], comps: list[Component], dtype: str,
             tol: float, branches: str, max_iterations: int, v: Any) -> Comparison:
    """order=2: the Hessian three ways. Entry (i, j) is d/dx_j of df/dx_i."""
    if v is not None or any(idx is not None for _, idx in comps):
        raise OptionError(
            "order=2 compares the Hessian of a scalar function of scalar inputs; this call has "
            + ("v=" if v is not None else "a matrix input") + ".\nFix: use order=1, or write the inputs as scalar symbols."
        )
    wrt = [k for k, _ in comps]
    with ex.working_precision(2 * ex.START_PREC):
        path = run(lowered, point, max_iterations=max_iterations)
        if ex.is_mat(path.value):
            raise OptionError("order=2 needs a scalar output; this function's output is a matrix.\nFix: use order=1.")
        norm = lowered.normalized
        syms = list(norm.inputs)
        values = {s: point[name] for s, name in zip(syms, lowered.inputs)}
        math = strip(norm.output) if not norm.is_program else as_expression(path, syms, math=True)
        executed = as_expression(path, syms)
        ties = path.ties
        violation = domain_violation(path)
        sym_h: dict[tuple[int, int], Any] = {}
        exe_h: dict[tuple[int, int], Any] = {}
        for a in wrt:
            da_math = sp.diff(math, syms[a])
            da_exe = _torch_conventions(sp.diff(executed, syms[a]))
            for b in wrt:
                sym_h[(a, b)] = None if (ties or violation) else exact_eval(sp.diff(da_math, syms[b]), values)
                exe_h[(a, b)] = exact_eval(_torch_conventions(sp.diff(da_exe, syms[b])), values)
    run_, raised = ag.hessian(lowered, floats, dtype, wrt)
    c = Context(lowered, ExactSides(path, {}, {}), dtype, tol, run_)
    entries = []
    for a in wrt:
        for b in wrt:
            sym_value = sym_h[(a, b)]
            exe_value = exe_h[(a, b)]
            auto = run_.grads[0][a][b] if run_.grads else None
            # domain first (DESIGN.md section 5's order): an undefined value may leave a kink undecided
            kind = ("domain" if violation is not None or (sym_value is not None and not ex.is_finite(sym_value))
                    else "kink" if ties else "smooth")
            side = SymbolicSide(sym_value if kind == "smooth" else None, kind, None, None, violation=violation)
            # At the precision the values were computed at: `same` resolves differences to it.
            with ex.working_precision(2 * ex.START_PREC):
                entry = _entry(c, a, a, side, exe_value, auto, lowered.symbols[b], inputs=(a, b))
            if kind == "kink":
                d = ties[0]
                entry = replace(entry, line=d.line, node=user_text(lowered, d.node), explanation=(
                    f"`{user_text(lowered, d.node)}` (line {d.line}) is exactly on its corner, where its slope jumps: "
                    "the second derivative does not exist there (SymPy's DiracDelta(0) is not a number). "
                    f"torch's double backward treats the slope as flat and reports {fmt(auto)}."),
                    hint="Compare the Hessian beside the corner, where it exists, or use a smooth stand-in "
                    "(softplus for relu) if you need curvature there.")
            if raised.get(a) and entry.ok:
                entry = replace(entry, autograd_error=raised[a], explanation=(
                    f"All three agree: the second derivative is {fmt(exe_value)}. torch's create_graph "
                    f"path raised (\"{_first_line(raised[a])}\") because d f/d {lowered.symbols[a]} is a "
                    "constant with no graph behind it, which means its derivative is 0; symgrad reports 0."))
            entries.append(entry)
    return Comparison(
        entries=tuple(entries), lowered=lowered,
        point={s: _sympy_value(_exact_value(x)) for s, x in zip(lowered.symbols, floats)},
        dtype=dtype, rtol=tol, value_exact=_sympy_value(path.value) if finite(path.value) else None,
        value_autograd=run_.value, executed_path=path, branches=branches, source=lowered.normalized.source,
        order=2,
    )


def _torch_conventions(e: sp.Basic) -> sp.Basic:
    """Derivatives of piecewise-linear ops as torch's double backward computes them: the slope
    of a step is 0 (no DiracDelta), and relu'(0) = 0 (Heaviside at 0 is 0, not SymPy's 1/2)."""
    e = e.replace(lambda t: isinstance(t, sp.DiracDelta), lambda t: sp.Integer(0))
    return e.replace(lambda t: isinstance(t, sp.Heaviside) and len(t.args) == 1,
                     lambda t: sp.Heaviside(t.args[0], 0))


def _exact_value(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return ex.from_floats(x) if x.ndim == 2 else ex.mat([[ex.from_float(float(v)) for v in row] for row in x])
    return ex.from_float(x)


def _sympy_value(v: Any) -> sp.Basic:
    if ex.is_mat(v):
        return sp.ImmutableMatrix([[ex.to_sympy(x) for x in row] for row in v])
    return ex.to_sympy(v)


def _vector(lowered: LoweredProgram, v: Any, point: dict[str, Any], max_iterations: int) -> Any:
    """The exact weights of a vector-Jacobian product (`y.backward(gradient=v)`), checked
    against the output's shape."""
    if v is None:
        return None
    with ex.working_precision(ex.START_PREC):
        value = run(lowered, point, max_iterations=max_iterations).value
    if not ex.is_mat(value):
        raise OptionError(
            "v= weights the outputs of a vector-Jacobian product (what y.backward(gradient=v) computes), "
            "but this function's output is a scalar.\nFix: leave v out; the gradient of a scalar needs no weights."
        )
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    arr = np.asarray(v, dtype=np.float64)
    if arr.size == value.size and arr.shape != value.shape:
        arr = arr.reshape(value.shape)
    if arr.shape != value.shape:
        raise ShapeError(
            f"v has shape {arr.shape}, but the output has shape {value.shape}.\n"
            "v holds one weight per output element.\nFix: pass v with the output's shape."
        )
    return _exact_value(arr)