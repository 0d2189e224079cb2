"""A gradient check for test suites that names the cause: `assert_grad_matches_math`.

    from symgrad.testing import assert_grad_matches_math

    def test_my_layer():
        assert_grad_matches_math(my_torch_function, 0.5)          # a torch function, example values
        assert_grad_matches_math(x * sg.detach(x**2), {x: 3.0})   # or SymPy, at a point

It compares the derivative of the mathematics, the exact derivative of the path that ran and
torch's autograd (`symgrad.compare`, through `symgrad.trace` for a torch function) and raises
`GradientMismatch`, an `AssertionError`, when an entry disagrees for a cause that `allow=` does
not accept. The message reads like `torch.testing.assert_close`'s: a headline, one row per
disagreeing entry, the explanation at the user's own line with a caret under it, the fix, the
`allow=` that would accept it, and the cause's page. It needs no pytest; the pytest plugin
(`symgrad_pytest`, registered through the `pytest11` entry point) adds the `symgrad_check`
fixture with per-test defaults and the `--symgrad-dtype` option.
"""

from __future__ import annotations

import inspect
import linecache
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import sympy as sp
import torch

from ..base.causes import Cause, allowed_causes
from ..verdict.compare import compare
from ..verdict.grouping import MAX_ROWS, SHOWN_ROWS, bad_rows, groups, heading, outputs_of, ranked, rest
from ..verdict.records import Comparison, Entry
from ..program.extremes import extremes, is_large
from ..base.errors import GradientMismatch, OptionError, PointError, TraceError, UnsupportedNodeError
from ..program.program import Program, number, sstr

from ..frontends.front import is_torch_function
from ..frontends.source import cell_name, place
from .traced import trace
from ..frontends.front import lower

__all__ = ["GradientMismatch", "assert_grad_matches_math"]

MAX_BLOCKS: Final = 6  # explanation blocks shown; the rest are counted
NOT_A_FUNCTION: Final = (
    "assert_grad_matches_math got {what}, which is neither a torch function nor a SymPy expression "
    "or symgrad Program.\n"
    "It checks the gradient of a function: a Python function of torch tensors (a `def` or a "
    "lambda), read back into mathematics by `symgrad.trace`, or a function written in SymPy.\n"
    "Fix: pass the function itself, e.g. `assert_grad_matches_math(f, 0.5)` with `def f(x): "
    "return torch.sin(x)`, or `assert_grad_matches_math(sympy.sin(x), {{x: 0.5}})`."
)
NOT_A_PYTHON_FUNCTION: Final = (
    "assert_grad_matches_math got {what}, which is callable but not a Python function, so symgrad "
    "cannot read its source.\n"
    "symgrad reads a torch function back into mathematics from its `def` or `lambda` (or records "
    "a real run of one).\n"
    "Fix: wrap it in a function of tensors, e.g. `def f(x): return module(x)`, and pass that."
)
RAISED: Final = (
    "`{name}` raised {error} when called with {inputs}.\n"
    "assert_grad_matches_math runs your function once at the inputs (as float64 tensors that "
    "require grad) before comparing its gradient, and it did not return.\n"
    "Fix: make `{name}({params})` run at these inputs, or pass inputs it accepts."
)
NOT_A_TENSOR: Final = (
    "`{name}` returned {value} ({kind}) when called with {inputs}, not a torch tensor.\n"
    "A gradient is taken of a tensor the function computes from its inputs; a Python number or "
    "None has no autograd graph to differentiate.\n"
    "Fix: return the tensor itself (not `.item()`, not a value printed or stored elsewhere)."
)
INPUT_COUNT: Final = (
    "assert_grad_matches_math got {given} value(s) for {name}, which has {count} input(s): {inputs}.\n"
    "Values without names are taken in the order of the inputs.\n"
    "Fix: give one value per input, or a mapping, e.g. `{{{first}: 0.5}}`."
)
BRANCHES_FOR_FUNCTION: Final = (
    "branches={value!r} was given for the torch function `{name}`.\n"
    "A torch function's branches are the ones its code runs: an `if` is control flow, a "
    "`torch.where` evaluates both sides; symgrad reads that from the code.\n"
    "Fix: leave branches= out for a torch function (it is for SymPy Piecewise expressions)."
)


def assert_grad_matches_math(fn: Any, *inputs: Any, wrt: Any = None, allow: Any = (), dtype: str | None = None,
                             rtol: float | None = None, order: int = 1, branches: str | None = None) -> Comparison:
    """Assert that autograd's gradient of `fn` is the derivative of its mathematics.

    **Arguments:**

    - `fn`: a torch function (a `def` or a lambda of tensors; read by `symgrad.trace`), or a
      SymPy expression or `symgrad.Program`.
    - `*inputs`: for a torch function, one example value per parameter (numbers, lists, arrays or
      tensors), or one mapping by parameter name; for SymPy, one mapping `{symbol: value}` or
      the values in the order of the inputs (free symbols in natural order, or the Program's).
    - `wrt`: the inputs to differentiate with respect to (default: all).
    - `allow`: causes whose disagreements pass: cause ids (`"kink"`, a single string is one
      id) or `symgrad.Cause` members. Use it for code that is knowingly non-smooth or detached.
    - `dtype`: as for `symgrad.compare`: by default the dtype of your tensors for a torch
      function (your float32 code is checked in float32), float64 for SymPy.
    - `rtol`, `order`: as for `symgrad.compare`.
    - `branches`: for a SymPy Piecewise, `"if"` (default) or `"where"`.

    **Returns:** the `Comparison`, when every entry agrees or its cause is allowed.

    **Raises:** `GradientMismatch` (an `AssertionError`) otherwise, with `.comparison`; a
    `SymgradError` sentence for bad input.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> assert_grad_matches_math(x**2, {x: 3.0}).ok
    True
    """
    __tracebackhide__ = True
    allowed = allowed_causes(allow)
    comparison, name = _compare(fn, inputs, wrt=wrt, dtype=dtype, rtol=rtol, order=order, branches=branches)
    # Only the entries that disagree can fail (an agreeing one passes): a passing check builds
    # none of the agreeing entries, a failing one only those its message shows.
    rows = comparison.rows
    failing = [k for k in bad_rows(comparison) if not passes(rows[k], allowed)]
    if failing:
        raise GradientMismatch(_message(comparison, name, failing, allowed), comparison)
    return comparison


# Causes that explain a NaN or an infinity in autograd's value; an allowed cause that is not one of
# them (a kink, say) never lets a non-finite gradient pass on its own.
EXPLAINS_NONFINITE: Final = frozenset({Cause.NAN_TRAP, Cause.OVERFLOW, Cause.ROUNDING, Cause.DOMAIN})


def causes_of(e: Entry) -> tuple[Cause, ...]:
    """Every cause an entry carries: its primary cause, then `also`."""
    return (e.cause, *e.also)


def passes(e: Entry, allowed: frozenset[Cause]) -> bool:
    """Whether an entry passes the check: it agrees, or every cause it carries (primary and
    `also`) is allowed, and a NaN or infinite autograd value is explained by one of them."""
    if e.ok:
        return True
    causes = causes_of(e)
    if not set(causes) <= allowed:
        return False
    auto = e.grad_autograd
    nonfinite = auto is not None and not math.isfinite(auto)
    return not nonfinite or any(c in EXPLAINS_NONFINITE for c in causes)


def _blocking(e: Entry, allowed: frozenset[Cause]) -> list[Cause]:
    """The causes that make a failing entry fail: those not allowed (all of them, where none is)."""
    causes = causes_of(e)
    return [c for c in causes if c not in allowed] or list(causes)


# --------------------------------------------------------------------------- the comparison


def _compare(fn: Any, inputs: tuple[Any, ...], **options: Any) -> tuple[Comparison, str]:
    __tracebackhide__ = True
    branches = options.pop("branches")
    if isinstance(fn, (sp.Basic, sp.MatrixBase, Program)):
        lowered_branches = branches if branches is not None else "if"
        return compare(fn, at=_point(fn, inputs, lowered_branches), branches=lowered_branches,
                       **options), _expr_name(fn)
    if is_torch_function(fn):
        name = getattr(fn, "__name__", "the function")
        if branches is not None:
            raise OptionError(BRANCHES_FOR_FUNCTION.format(value=branches, name=name))
        args, kwargs = _arguments(inputs)
        try:
            reading = trace(fn, *args, **kwargs)
        except Exception:  # a function that raises or returns no tensor: that sentence first
            _run_once(fn, name, args, kwargs)
            raise
        fidelity = getattr(reading, "fidelity", None)
        if fidelity is None or fidelity.grad_user is None:  # no gradient in your run: say why, if we can
            _run_once(fn, name, args, kwargs)
        return reading.compare(**options), name
    if callable(fn):
        raise UnsupportedNodeError(NOT_A_PYTHON_FUNCTION.format(what=_what(fn)))
    raise UnsupportedNodeError(NOT_A_FUNCTION.format(what=_what(fn)))


def _what(obj: Any) -> str:
    text = " ".join(repr(obj).split())
    text = text if len(text) <= 60 else text[:57] + "..."
    kind = type(obj).__name__
    return f"{text} ({'an' if kind[0] in 'aeiou' else 'a'} {kind})"


def _expr_name(f: Any) -> str:
    text = " ".join(sstr(f.output if isinstance(f, Program) else f).split())
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"the Program returning {text}" if isinstance(f, Program) else text


def _point(f: Any, inputs: tuple[Any, ...], branches: str) -> Any:
    if len(inputs) == 1 and isinstance(inputs[0], Mapping):
        return inputs[0]
    symbols = list(lower(f, branches=branches).symbols)  # type: ignore[arg-type]
    if len(inputs) != len(symbols):
        raise PointError(INPUT_COUNT.format(given=len(inputs), name=_expr_name(f), count=len(symbols),
                                            inputs=", ".join(sstr(s) for s in symbols) or "none",
                                            first=sstr(symbols[0]) if symbols else "x"))
    return {s.name: v for s, v in zip(symbols, inputs)}


def _arguments(inputs: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if len(inputs) == 1 and isinstance(inputs[0], Mapping):
        return (), {(k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else str(k)): v
                    for k, v in inputs[0].items()}
    return inputs, {}


def _as_tensor(value: Any) -> torch.Tensor | None:
    try:
        if isinstance(value, torch.Tensor):  # in its own dtype, as the function will be compared
            t = value.detach().clone()
            return (t if t.is_floating_point() else t.to(torch.float64)).requires_grad_(True)
        if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
            return None
        return torch.tensor(value, dtype=torch.float64).requires_grad_(True)
    except (TypeError, ValueError, RuntimeError):
        return None


def _run_once(fn: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Call the user's function at the inputs, so that a function that raises or returns a
    non-tensor gets a sentence naming it, not a translation error. Called only where the reading
    failed or found no gradient in your run: a function that reads and differentiates has run
    twice already (the fidelity check), and a third run costs a check as much as gradcheck's."""
    __tracebackhide__ = True
    t_args = [_as_tensor(v) for v in args]
    t_kwargs = {k: _as_tensor(v) for k, v in kwargs.items()}
    if any(t is None for t in [*t_args, *t_kwargs.values()]):
        return  # a value that is not a number: `trace` says which
    try:
        signature = inspect.signature(fn)
        params = ", ".join(signature.parameters)
        signature.bind(*t_args, **t_kwargs)
    except (TypeError, ValueError):
        return  # the wrong number of values: `trace` says so
    def shown() -> str:  # only for a sentence: a tensor's repr costs more than the call
        return ", ".join([_short(v) for v in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]) or "no inputs"

    try:  # the random state kept: the reading draws what the call draws, and the user's state stays theirs
        with torch.enable_grad(), torch.random.fork_rng(devices=[]):
            out = fn(*t_args, **t_kwargs)
    except Exception as err:  # the user's own code: a sentence, chained to its traceback
        raise TraceError(RAISED.format(name=name, error=f"{type(err).__name__}: {err}", inputs=shown(),
                                       params=params)) from err
    if not isinstance(out, torch.Tensor):
        raise TraceError(NOT_A_TENSOR.format(name=name, value=_short(out), kind=_what(out).rsplit(" (", 1)[1][:-1],
                                             inputs=shown()))


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- the message


def _message(c: Comparison, name: str, failing: list[int], allowed: frozenset[Cause]) -> str:
    """The failure message; `failing`: the indices of the failing entries (into `c.rows`, which
    builds an agreeing entry only when read: none is)."""
    rows = c.rows
    bad = [rows[k] for k in failing]
    causes = sorted({k for e in bad for k in _blocking(e, allowed)}, key=lambda k: k.severity)
    what = "Hessian" if c.order == 2 else "Gradient"
    lines = [f"{what} of {name} differs from the mathematics: {', '.join(k.id for k in causes)}"]
    total = len(rows)
    lines.append(f"Mismatched entries: {len(failing)} / {total} ({100 * len(failing) / total:.1f}%) "
                 f"at {_at(c)} ({c.dtype})")
    members = list(failing)
    shown = members if len(members) <= MAX_ROWS else ranked(rows, members)[:SHOWN_ROWS]
    lines += ["", *_table(c, [rows[k] for k in shown]), ""]
    if len(shown) < len(members):
        lines += [f"{len(members) - len(shown)} more mismatched entries not shown (the worst are above): "
                  "every entry is in `.comparison.entries` and `.comparison.to_dict()`", ""]
    unexplained = [e for e in bad if set(causes_of(e)) <= allowed]
    if unexplained:
        e = unexplained[0]
        lines += [f"autograd is {e.grad_autograd!r} for {' '.join(sstr(e.wrt).split())}, and none of its causes "
                  f"({', '.join(k.id for k in causes_of(e))}) explains a NaN or an infinity: an allowed cause "
                  "never accepts a value it does not explain.", ""]
    blocks = groups(c, members)
    for g in blocks[:MAX_BLOCKS]:
        lines += _block(c, rows[g.said_for], heading(c, g, "`.comparison.entries`") if len(g.members) > 1 else "") + [""]
    if len(blocks) > MAX_BLOCKS:
        lines += [*rest(c, blocks[MAX_BLOCKS:], "`.comparison.entries`"), ""]
    accept = sorted(allowed | set(causes), key=lambda k: k.severity)
    lines.append("To accept " + ("it" if len(causes) == 1 else "them") + " (the code is meant to do this): "
                 "allow={" + ", ".join(f'"{k.id}"' for k in accept) + "}")
    lines += [f"More: {k.page}" for k in causes]
    return "\n".join(lines)


def _at(c: Comparison) -> str:
    parts = []
    for s, v in c.point.items():
        if isinstance(v, sp.MatrixBase) and is_large(v):
            parts.append(f"{sstr(s)} = {extremes(v, number)}")
        elif isinstance(v, sp.MatrixBase):
            parts.append(f"{sstr(s)} = [" + "; ".join(", ".join(number(x) for x in row) for row in v.tolist()) + "]")
        else:
            f = float(v)
            parts.append(f"{sstr(s)} = {f!r}" if sp.Rational(f) == v else f"{sstr(s)} = {number(v)}")
    return ", ".join(parts) or "no inputs"


def _table(c: Comparison, failing: list[Entry]) -> list[str]:
    outputs = outputs_of(c)  # from the table's labels: no entry built
    labelled = any(isinstance(o, tuple) for o in outputs) or len(outputs) > 1
    head = (["output"] if labelled else []) + ["input", "math", "executed", "autograd", "cause"]
    rows = [head]
    for e in failing:
        math = number(e.grad_symbolic) if e.grad_symbolic is not None else (
            f"none ({number(e.one_sided[0])} | {number(e.one_sided[1])})" if e.one_sided is not None else "none")
        auto = repr(e.grad_autograd) if e.grad_autograd is not None else (
            "torch raised" if e.autograd_error else "none")
        out = [str(list(e.output)) if isinstance(e.output, tuple) else str(e.output)] if labelled else []
        cause = e.cause.id + (f" (also {', '.join(k.id for k in e.also)})" if e.also else "")
        rows.append(out + [" ".join(sstr(e.wrt).split()), math, number(e.grad_executed), auto, cause])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def _block(c: Comparison, e: Entry, reaches: str = "") -> list[str]:
    """The explanation at the user's line (or the generated program's), with a caret; `reaches`:
    the entries the finding decides, where they are more than `e`."""
    explanation = e.explanation
    out: list[str] = []
    span = e.source
    if span is not None:
        explanation = explanation.replace(f" In your code: `{span}`.", "")
        # A line of the generated program, which this message does not show: the entry's own is
        # the user's line cited below; others are left out.
        explanation = re.sub(r" \(line (\d+)\)", lambda m: f" (line {span.line})" if int(m.group(1)) == e.line else "",
                             explanation)
        full = linecache.getline(span.file, span.line).rstrip("\n") or " " * span.col + span.text
        out.append(f"{e.cause.id} at {place(span.file, span.line) if cell_name(span.file) else f'{span.file}:{span.line}'}:")
        if full.strip():
            if span.col < span.end_col <= len(full):
                start, end = span.col, span.end_col
            else:
                start, end = len(full) - len(full.lstrip()), len(full.rstrip())
            out += [f"    {full}", "    " + " " * start + "^" * (end - start)]
    elif e.line is not None:
        text = c.lowered.source.splitlines()[e.line - 1]
        indent = len(text) - len(text.lstrip())
        out += [f"{e.cause.id} at line {e.line} of the generated program:", f"    {text}",
                "    " + " " * indent + "^" * len(text.strip())]
    else:
        out.append(f"{e.cause.id}:")
    if reaches:
        out.append(f"It reaches {reaches}.")
    out.append(explanation)
    if e.hint:
        out.append(f"Fix: {e.hint}")
    return out


# --------------------------------------------------------------------------- pytest's assert rewriting


def explain_assert(op: str, left: Any, right: Any) -> list[str] | None:
    """pytest's `pytest_assertrepr_compare` for symgrad's records: `assert c.cause == Cause.AGREE`
    shows what each cause means and where it is explained; a `Comparison` shows its report."""
    if op not in ("==", "!=", "is", "is not"):
        return None
    sides = [_cause_of(left), _cause_of(right)]
    if None in sides:
        return None
    lines = [f"{_side_name(left)} {op} {_side_name(right)}"]
    for side, cause in zip((left, right), sides):
        lines.append(f"  {cause.id}: {cause.title} ({cause.page})")
        if isinstance(side, Comparison):
            found = groups(side)
            for g in found[:MAX_BLOCKS]:
                lines.append(f"    {' '.join(heading(side, g).split())}: {side.rows[g.said_for].explanation}")
            lines += [f"    {line}" for line in rest(side, found[MAX_BLOCKS:])]
    return lines


def _cause_of(side: Any) -> Cause | None:
    if isinstance(side, Cause):
        return side
    if isinstance(side, (Comparison, Entry)):
        return side.cause
    if isinstance(side, str):
        try:
            return Cause.from_id(side)
        except KeyError:
            return None
    return None


def _side_name(side: Any) -> str:
    if isinstance(side, Cause):
        return f"Cause.{side.name}"
    if isinstance(side, Comparison):
        return f"Comparison(cause={side.cause.id})"
    if isinstance(side, Entry):
        return f"Entry(cause={side.cause.id})"
    return repr(side)
