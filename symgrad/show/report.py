"""Rendering only: a `Comparison` as terminal text, markdown, or HTML.

Nothing here computes a derivative or decides a cause; it lays out the records (`records.py`)
that `compare.py` made: the three values side by side, the cause with its page, the explanation and hint, the
generated program with the cited lines marked, and the executed path.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, Final

import numpy as np
import sympy as sp

from ..program import exact as ex
from ..base.causes import Cause
from ..program.program import DataMatrix, Vector, decimal, node_text, number, sstr
from ..base.errors import OptionError
from ..base.rendering import renders
from ..sides.executed import Decision, Path
from ..tools.sweep import IDS, Sweep
from ..program.extremes import extremes, is_large
from ..verdict.records import Comparison, Entry
from ..verdict.grouping import causes_of, groups, heading, one_line, outputs_of, rest, rows_note, shown_rows, what, what_output
from .report_source import data_clause
from .page import (MIN_SECTION, PAGE_BUDGET, SECTION_BUDGET, cited_lines, cut_line, findings_text, fit, program_lines, program_note, program_rows,
                   said_in_full, tensor_lines)

MAX_PATH_ROWS = 40


def _symbolic(e: Entry) -> str:
    if e.grad_symbolic is not None:
        return number(e.grad_symbolic)
    if e.one_sided is not None:
        return f"none ({number(e.one_sided[0])} | {number(e.one_sided[1])})"
    return "none"


def _autograd(e: Entry) -> str:
    if e.grad_autograd is None:
        return "torch raised" if e.autograd_error else "none"
    return repr(e.grad_autograd)


def _flat(v: Any) -> str:
    """A value on one line (matrices as [a, b; c, d]; more than a dozen values by shape and extremes)."""
    if v is not None and not isinstance(v, (float, int, sp.Number)) and is_large(v):
        return extremes(v, number)
    if isinstance(v, sp.MatrixBase):
        return "[" + "; ".join(", ".join(number(x) for x in row) for row in v.tolist()) + "]"
    if hasattr(v, "tolist") and not isinstance(v, (float, int)):
        rows = v.tolist()
        rows = rows if isinstance(rows, list) and rows and isinstance(rows[0], list) else [rows]
        return "[" + "; ".join(", ".join(repr(float(x)) for x in row) for row in rows) + "]"
    return number(v)


def _label(e: Entry) -> str:
    return one_line(sstr(e.wrt))


# A matrix of more elements than this is named by its shape in a headline (`c.point` holds it).
POINT_ELEMENTS = 12


def _point_value(v: sp.Basic, dtype: str = "float64") -> str:
    """A point's value as the user typed it: the shortest decimal that the dtype reads as exactly
    this value (in float32, 0.1 for 13421773/134217728)."""
    if isinstance(v, sp.MatrixBase) and v.rows * v.cols > POINT_ELEMENTS:
        return f"({v.rows}x{v.cols} matrix)"
    if isinstance(v, sp.MatrixBase):
        return "[" + "; ".join(", ".join(_point_value(x, dtype) for x in row) for row in v.tolist()) + "]"
    if isinstance(v, sp.Rational):
        typed = _float32_decimal(v) if dtype == "float32" else None
        if typed is not None:
            return typed
        f = float(v)
        if sp.Rational(f) == v:
            return repr(f)
    return number(v)


def _float32_decimal(v: sp.Rational) -> str | None:
    """The shortest decimal that rounds to the float32 `v` (numpy's float32 repr), or None where
    `v` is no float32."""

    f = float(v)
    if not math.isfinite(f) or f.as_integer_ratio() != (int(v.p), int(v.q)):  # exactly Rational(f) != v
        return None
    with np.errstate(over="ignore"):
        h = np.float32(f)
    if not np.isfinite(h) or float(h) != f:
        return None
    return str(h)


@renders("comparison.point")
def point_text(c: Comparison) -> str:
    dtype = getattr(c, "dtype", "float64")
    point = c.point
    # a large matrix is named by its shape, read from its symbol: its values are not built; data
    # of the user's call (an image batch reshaped, `X_flat`) first, in its own clause (a semicolon after it)
    inputs = ", ".join(f"{sstr(s)} = {_input_value(s, point, dtype)}" for s in point if not isinstance(s, DataMatrix))
    leaves = [s for s in point if isinstance(s, DataMatrix)]
    data = data_clause(leaves) if leaves else ""
    return one_line(f"{data}; {inputs}" if inputs and data else inputs or data) or "no inputs"


def _input_value(s: Any, point: Mapping[Any, Any], dtype: str) -> str:
    """An input's value in a headline: a rank-1 tensor as torch prints it, `[0.5, 2.0]` (or `(100,)
    vector`), a large matrix by its shape (its values are not built: `point` builds a value when
    it is read), the value otherwise."""
    if _large_symbol(s):
        return f"({s.rows},) vector" if isinstance(s, Vector) else f"({s.rows}x{s.cols} matrix)"
    if isinstance(s, Vector):
        return "[" + ", ".join(_point_value(x, dtype) for x in point[s]) + "]"
    return _point_value(point[s], dtype)


def _large_symbol(s: Any) -> bool:
    return isinstance(s, sp.MatrixSymbol) and int(s.rows) * int(s.cols) > POINT_ELEMENTS


# At most this many rounded inputs are spelled out under a float32 report's headline.
MAX_POINT_NOTES = 4


def point_notes(c: Comparison) -> list[str]:
    """For a float32 run, what its point teaches: each input whose decimal (the one the user
    typed, 0.1) is no float32 number, the float32 the tensor holds instead, written out in full,
    and that number as the exact rational all three sides are evaluated at."""
    if getattr(c, "dtype", "float64") != "float32":
        return []
    rows: list[str] = []
    count = 0  # every rounded element is counted; only the rows shown are named (a 784x10 W has 7,840)
    for s in c.point:
        if isinstance(s, DataMatrix):
            continue  # data of the user's call (an image batch): its floats are what the tensor held, never typed
        v = c.point[s]
        elements = ([((s, i, j), v[i, j]) for i in range(v.rows) for j in range(v.cols)]
                    if isinstance(v, sp.MatrixBase) else [((s, None, None), v)])
        for (sym, i, j), value in elements:
            typed = _float32_decimal(value) if isinstance(value, sp.Rational) else None
            if typed is None or Fraction(typed) == Fraction(int(value.p), int(value.q)):
                continue  # 0.5 is a float32 number: nothing was rounded
            count += 1
            if len(rows) < MAX_POINT_NOTES:
                name = sstr(sym) if i is None else (sstr(sym[i, j]) if isinstance(sym, sp.MatrixSymbol)
                                                    else f"{sstr(sym)}[{i}, {j}]")  # a rank-1 input's element: `b1[3]`
                rows.append(f"  {one_line(name)} = {typed} is held as {_exact_decimal(value)} = {sstr(value)}")
    if not rows:
        return []
    head = ("point: float32 holds the float32 nearest to each decimal, and all three sides are evaluated "
            "at that number exactly:")
    more = count - MAX_POINT_NOTES
    return [head, *rows[:MAX_POINT_NOTES], *([f"  ... and {more} more inputs rounded to float32"] if more > 0 else [])]


def _exact_decimal(v: sp.Rational) -> str:
    """All the decimals of a float (p / 2**k has exactly k of them) where that is at most 40
    significant digits; 17 of them beyond."""
    q = int(v.q)
    k = q.bit_length() - 1
    if q != 1 << k:
        return number(v)
    digits = str(abs(int(v.p)) * 5**k)
    if len(digits.lstrip("0")) > 40:
        return decimal(int(v.p), q, 17)
    digits = digits.rjust(k + 1, "0")  # 0.01's float32 has 25 decimals but 18 significant digits
    whole, frac = (digits[:-k], digits[-k:]) if k else (digits, "")
    text = f"{whole}.{frac}".rstrip("0").rstrip(".") if frac else whole
    return ("-" if v < 0 else "") + text


def _table(c: Comparison, shown: Sequence[int]) -> list[list[str]]:
    """The entries table: a header, then the rows `shown` (indices into `c.entries`)."""
    labelled = any(what_output(c, o) for o in outputs_of(c))
    out = [(["of"] if labelled else []) + ["wrt", "symbolic", "executed", "autograd", "cause"]]
    for k in shown:
        e = c.rows[k]
        out.append(([what(c, e)] if labelled else []) + [
            _label(e), _symbolic(e), number(e.grad_executed), _autograd(e), e.cause.id
            + (f" (also {', '.join(a.id for a in e.also)})" if e.also else "")])
    return out


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def path_lines(path: Path, user: dict[sp.Symbol, sp.Symbol]) -> list[str]:
    """The executed path, compactly: one row per line that ran, loops folded ("ran 9 times").
    Only the rows shown are printed (a deep program's path has thousands of steps)."""
    runs: dict[int, list[tuple[Any, str]]] = {}  # line -> (step, mark) for each time it ran
    for st in path.steps:
        if st.op == "no_grad" and st.parents:
            inner = path.steps[st.parents[0]]
            if inner.line in runs:
                last, mark = runs[inner.line][-1]
                runs[inner.line][-1] = (last, mark + "  [computed under no_grad: a constant, off the graph]")
                continue
        if st.op in ("input", "loop_var") or not st.line:
            continue
        mark = {"detach": "  [a constant: detached]", "graph-break": "  [a constant: left the graph]"}.get(st.cut or "", "")
        if st.op in ("const_on_graph", "constant"):
            mark = "  [a constant]"
        runs.setdefault(st.line, []).append((st, mark))
    tests: dict[int, list[Decision]] = {}
    for d in path.decisions:
        if d.kind != "piece":
            tests.setdefault(d.line, []).append(d)
    lines = sorted(set(runs) | set(tests))
    listed: list[tuple[int, str]] = []
    for line in lines[:MAX_PATH_ROWS]:
        ran = runs.get(line, [])
        if ran:
            st, mark = ran[-1]
            node = one_line(node_text(st.node, user))
            what = node if node.startswith(f"{st.name} =") else f"{st.name} = {node}"
            text = f"{what} -> {_value(st.value)}{mark}" if len(ran) == 1 else \
                f"{what}  ran {len(ran)} times; last value {_value(st.value)}{mark}"
            if line in tests and len(ran) == 1:
                # A `torch.where` line: its value and its condition belong to one row.
                text += f"  ({_decisions(tests[line], user, short=True)})"
            listed.append((line, text))
            if line in tests and len(ran) > 1:
                listed.append((line, _decisions(tests[line], user)))
        else:
            listed.append((line, _decisions(tests[line], user)))
    out = [cut_line(f"  line {line}: {text}") for line, text in listed[:MAX_PATH_ROWS]]
    if len(lines) > MAX_PATH_ROWS:
        out.append(f"  ... {len(lines) - MAX_PATH_ROWS} more lines")
    return out


def _decisions(ds: Sequence[Decision], user: dict[sp.Symbol, sp.Symbol], short: bool = False) -> str:
    d = ds[-1]
    node = node_text(d.node, user)
    tie = "  [on its threshold]" if any(x.tie for x in ds) else ""
    if short:
        return f"condition {'true' if d.taken else 'false'}, both branches computed{tie.strip() and ', on its threshold'}"
    if d.kind == "if":
        return f"{node}: took branch {int(d.taken) + 1}{tie}"  # type: ignore[arg-type]
    if d.kind == "where":
        return f"{node}: condition {'true' if d.taken else 'false'} (both branches computed){tie}"
    if d.kind == "while":
        body = sum(1 for x in ds if x.taken)
        return f"{node}: tested {len(ds)} times, body ran {body} times{tie}"
    return f"{node}: {d.taken} iterations{tie}"


def _value(v: Any) -> str:
    if ex.is_mat(v) and is_large(v):
        return extremes(v, number)
    if ex.is_mat(v):
        return "[" + "; ".join(", ".join(_value(x) for x in row) for row in v) + "]"
    return _scalar_value(v)


def _scalar_value(v: ex.Exact) -> str:
    """A value of the path as the table writes it (`number`): `6.25 (25/4)`, `27`, 17 digits."""
    return number(v)


HEADLINE_MAX = 400


@renders("comparison.function")
def function_text(c: Comparison, program: str = "program") -> str:
    """How a report names the compared function: its title (a traced torch function's name),
    `program` for a Program, or its expression on one line."""
    if getattr(c, "title", ""):
        return c.title
    return program if c.lowered.normalized.is_program else _headline(c.source)


def _headline(source: str) -> str:
    """The function on one line; a long one is cut, saying how long it is."""
    text = one_line(" ".join(source[: 4 * HEADLINE_MAX].split()))
    if len(source) <= HEADLINE_MAX:
        return text
    return f"{text[:HEADLINE_MAX - 40]} ... ({len(source):,} characters)"


@renders("comparison.text")
def render_text(c: Comparison, full: bool = False) -> str:
    shown = shown_rows(c, full)
    summary = [*rows_note(c, shown), *(f"by input: {line}" for line in tensor_lines(c))] if len(shown) < len(c.rows) else []
    user = c.lowered.normalized.user_symbols
    cause = c.cause
    head = [
        f"symgrad: {function_text(c)} at {point_text(c)}"
        f"  ({c.dtype}, branches=\"{c.branches}\")",
        f"cause: {cause.id}: {cause.title}",
    ]
    head += point_notes(c)
    if c.exact_bits > 4 * ex.START_PREC:
        head.append(f"note: the exact values needed {c.exact_bits} bits of working precision (about "
                    f"{int(c.exact_bits * 0.30103)} digits): the program loses digits as it runs, and "
                    "every digit reported is certain")
    if c.lowered.normalized.rewritten:
        head.append(f"note: SymPy rewrote it for real symbols as {c.lowered.normalized.rewritten}")
    head.append(f"value: exact {_flat(c.value_exact)}, autograd's forward {_flat(c.value_autograd)}")
    if getattr(c, "returned", ""):
        head.append(c.returned)
    if getattr(c, "drawn", ""):
        head.append(c.drawn)
    if getattr(c, "order", 1) == 2:
        head.append("entries: the Hessian, d/dx_j of df/dx_i (order=2)")
    if getattr(c, "vjp", False):
        head.append("entries: the vector-Jacobian product v . J that y.backward(gradient=v) computes")
    body = ["", *summary, *([""] if summary else []), *_columns(_table(c, shown)), "", *findings_text(c)]
    if c.ok:
        body += [c.rows[0].explanation if len(c.rows) else "No inputs: nothing to differentiate.", ""]
    program = ["generated program" + (" (cited lines marked >)" if cited_lines(c) else "") + ":", *program_lines(c)]
    front = "\n".join(head + body + program)
    budget = min(SECTION_BUDGET, max(MIN_SECTION, PAGE_BUDGET - len(front)))
    path = ["", "executed path:", *fit(path_lines(c.executed_path, user), budget, "`c.executed_path.steps`")]
    return "\n".join([front, *path]) + "\n"


@renders("comparison.markdown")
def render_markdown(c: Comparison) -> str:
    shown = shown_rows(c)
    table_rows = _table(c, shown)
    table = ["| " + " | ".join(table_rows[0]) + " |", "|" + "---|" * len(table_rows[0])]
    for r in table_rows[1:]:
        cells = list(r)
        cells[-1] = f"[{cells[-1]}]({Cause.from_id(cells[-1].split()[0]).page})"
        table.append("| " + " | ".join(f"`{x}`" if i < 4 else x for i, x in enumerate(cells)) + " |")
    notes = point_notes(c)
    cut = [*rows_note(c, shown, full_hint=False), *(f"by input: `{line}`" for line in tensor_lines(c))]
    first = c.source.splitlines()[0] if c.source else ""
    named = c.title or (first if len(first) <= HEADLINE_MAX else _headline(c.source))
    out = [f"**symgrad**: `{named}` at {point_text(c)} ({c.dtype}, branches=\"{c.branches}\"): "
           f"**{c.cause.id}**, {c.cause.title}", "",
           *([notes[0], "", *(f"- `{row.strip()}`" for row in notes[1:]), ""] if notes else []),
           *([*(f"{line}  " for line in cut), ""] if cut else []), *table, ""]
    gs = groups(c)
    n = said_in_full(c, gs)
    for g in gs[:n]:
        e = c.rows[g.said_for]
        out += [f"- **{heading(c, g)}** ({e.cause.id}): {e.explanation}", f"  *Hint:* {e.hint}" if e.hint else ""]
    out += [f"- {line}" for line in rest(c, gs[n:])]
    cited = cited_lines(c)
    code = []
    for row in program_rows(c):
        if isinstance(row, int):
            code.append(f"# ... {row} line{'s' if row > 1 else ''}")
        else:
            code.append(cut_line(row[1]) + ("  # <- cited" if row[0] in cited else ""))
    note = program_note(c)
    header = c.lowered.source.splitlines()[:next(i for i, line in enumerate(c.lowered.source.splitlines())
                                                   if line.startswith("def f("))]
    out += ["", "```python", *header, *code, "```", *([note] if note else []), ""]
    return "\n".join(x for x in out if x is not None) + "\n"


def _code_spans(text: str) -> str:
    """Escape text for HTML, turning `backtick spans` into <code> elements."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))


# --------------------------------------------------------------------------- the backward pass

MAX_DERIVATION_ROWS = 60


@renders("derivation.headline")
def derivation_headline(c: Comparison) -> str:
    what = function_text(c, "the program")
    return f"backward pass of {what} at {point_text(c)}  ({c.dtype}, branches=\"{c.branches}\")"


def _short(v: Any, digits: int = 12) -> str:
    """A value of the derivation: exact numbers to 12 digits, torch's floats likewise."""
    if v is None:
        return "none"
    if not isinstance(v, (float, int, sp.Number)) and is_large(v):
        return extremes(v, lambda x: _short(x, digits))
    if isinstance(v, sp.MatrixBase):
        return "[" + "; ".join(", ".join(_short(x, digits) for x in row) for row in v.tolist()) + "]"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if hasattr(v, "tolist") and not isinstance(v, (int, sp.Basic)):
        rows = v.tolist()
        rows = rows if isinstance(rows, list) and rows and isinstance(rows[0], list) else [rows]
        return "[" + "; ".join(", ".join(f"{float(x):.{digits}g}" for x in row) for row in rows) + "]"
    if isinstance(v, sp.Rational) and len(sstr(v)) <= 16:
        return sstr(v)
    if v in (sp.oo, -sp.oo, sp.nan, sp.zoo):
        return {sp.oo: "inf", -sp.oo: "-inf", sp.nan: "nan"}.get(v, "inf")
    if isinstance(v, sp.Number) and v.is_finite and v != 0 and 1e-300 < abs(v) < 1e300:
        return f"{float(v):.{digits}g}"  # shown to 12 digits; the record keeps the exact number
    return number(v, digits)


def _term(use: Any, loc: Any, name: Any) -> tuple[str, str]:
    """One term of an adjoint's sum: (its formula, its value). `name` labels a step."""
    g = f"adjoint of {name(use.step)}"
    label = f"d({name(use.step)})/" + (f"d{name(loc.parent)}" if len(name(loc.parent)) == 1 else f"d({name(loc.parent)})")
    if loc.value is None:  # a matrix rule: the formula is the vector-Jacobian product itself
        return loc.formula, _short(loc.contribution)
    if isinstance(loc.value, sp.MatrixBase):
        f = loc.formula
        text = g if f == "1" else (f"-({g})" if f == "-1" else (f"{f}*{g}" if not f.startswith("[") else f"{g} (elementwise) {label}"))
        return text, _short(loc.contribution)
    f = loc.formula
    if f == "1":
        return g, _short(use.adjoint_exact)
    return f"{g} * {label}", f"{_short(use.adjoint_exact)} * {_short(loc.value)}"


def _torch_side(r: Any) -> str:
    if not r.on_graph:
        why = {"detach": "detached", "graph-break": "off the graph"}.get(r.cut or "", "not on the graph")
        return f"torch: none ({why})"
    if r.adjoint_autograd is None:
        return "torch: none (the backward pass never reaches it)"
    return f"torch: {_short(r.adjoint_autograd)}"


@renders("derivation.text")
def render_derivation(d: Any) -> str:
    by_step = {r.step: r for r in d.records}
    parting = d.parting
    marked = {parting.record.step, parting.at.step} if parting is not None else set()
    seed = ("every element's adjoint is its weight in v" if d.vjp else
            "every element's adjoint is 1 (the backward pass of their sum)" if d.matrix_output else "")
    out = [d.headline,
           "adjoint of u = d(out)/d(u), by the chain rule from the output back; exact, with torch's own beside it"
           + (f"; {seed}" if seed else "")]
    if d.error:
        out.append(f"torch raised: {d.error.strip().splitlines()[0]}")
    out.append("")
    width = max((len(str(r.line)) for r in d.records if r.line), default=1)
    counts: dict[str, int] = {}
    labels: dict[int, str] = {}
    for r in reversed(d.records):  # a name a loop reassigns is numbered by pass: b[1], b[2], ...
        counts[r.name] = counts.get(r.name, 0) + 1
        labels[r.step] = f"{r.name}[{counts[r.name]}]"
    total = {n for n, k in counts.items() if k > 1}

    def name(step: int) -> str:
        r = by_step.get(step)
        return labels[step] if r is not None and r.name in total else (r.name if r is not None else "?")

    for note in d.notes:
        out.append(note)
    if d.notes:
        out.append("")
    forward = [r for r in reversed(d.records) if r.line][:MAX_DERIVATION_ROWS]
    out.append("forward pass (the values the local derivatives read):")
    for r in forward:
        what = r.node if r.node.startswith(f"{r.name} =") else f"{name(r.step)} = {r.node}"
        if r.name in total and r.node.startswith(f"{r.name} ="):
            what = f"{name(r.step)}: {r.node}"
        out.append(f"  line {str(r.line).rjust(width)}  {what} = {_short(r.value)}    torch: {_short(r.value_autograd)}")
    if len(forward) < len([r for r in d.records if r.line]):
        out.append(f"  ... {len([r for r in d.records if r.line]) - len(forward)} more steps")
    out += ["", "backward pass (output first):"]
    rows = d.records[:MAX_DERIVATION_ROWS]
    for r in rows:
        where = f"line {str(r.line).rjust(width)}" if r.line else "input".ljust(5 + width)
        mark = ">" if r.step in marked else " "
        head = f"{mark} {where}  adjoint of {name(r.step)}"
        uses = [by_step[u] for u in r.uses if u in by_step]
        cut = [u for u in uses if u.cut is not None]
        live = [u for u in uses if u.cut is None]
        if r.step == d.records[0].step and not uses:
            text = f"{head} = {_short(r.adjoint_exact)}  (the output: the chain rule starts here)"
        elif cut and not live:
            u = cut[0]
            text = (f"{head} = 0: the chain is cut at line {u.line}, where `{u.node}` "
                    f"{'is detached' if u.cut == 'detach' else 'leaves the graph'} (a constant from there on)"
                    + (f"; in the mathematics, where it is the identity, the adjoint is {_short(r.adjoint_math)}"
                       if r.adjoint_math != r.adjoint_exact else ""))
        else:
            terms = [_term(u, loc, name) for u in live for loc in u.local_derivatives if loc.parent == r.step]
            formulas = " + ".join(t for t, _ in terms).replace(" + -(", " - (") or "0"
            values = " + ".join(v for _, v in terms)
            text = f"{head} = {formulas}"
            if values and values != _short(r.adjoint_exact):
                text += f" = {values}"
            text += f" = {_short(r.adjoint_exact)}"
            if cut:
                text += f"  (the use at line {cut[0].line} is cut: nothing flows back through it)"
        text += f"    {_torch_side(r)}"
        if r.parts:
            text += "  <- parts here" if parting is not None and r.step == parting.record.step else "  <- off"
        out.append(text)
        notes = [f"{_term(u, loc, name)[0].split(' * ')[-1]} = {loc.formula}" for u in live if not (cut and not live)
                 for loc in u.local_derivatives if loc.parent == r.step and loc.value is not None
                 and loc.has_formula and loc.formula not in ("0", "1", "-1")]
        if notes:
            out.append(" " * (len(where) + 4) + "where " + ", ".join(dict.fromkeys(notes)))
    if len(d.records) > MAX_DERIVATION_ROWS:
        out.append(f"  ... {len(d.records) - MAX_DERIVATION_ROWS} more steps")
    out.append("")
    if parting is None and d.error:
        out.append("torch raised, so it has no adjoints to set beside the exact ones.")
    elif parting is None:
        out.append("torch's adjoints agree with the exact ones at every step.")
    else:
        where = f"line {parting.line}" if parting.line else "an input"
        out.append(f"parts at {where} ({parting.kind}): {parting.why}")
    return "\n".join(one_line(x) for x in out) + "\n"


@renders("derivation.notes")
def derivation_notes(c: Comparison) -> tuple[str, ...]:
    """The decisions that shaped the path the backward pass runs through."""
    user = c.lowered.normalized.user_symbols
    tests: dict[int, list[Decision]] = {}
    for dd in c.executed_path.decisions:
        if dd.kind != "piece":
            tests.setdefault(dd.line, []).append(dd)
    out = []
    for line, ds in sorted(tests.items()):
        what = {"if": "only the branch taken ran, so only its steps have adjoints",
                "where": "both branches ran; the one not kept gets the adjoint 0",
                "while": "each pass of the body is a step of its own below",
                "for": "each pass of the body is a step of its own below"}[ds[-1].kind]
        out.append(one_line(f"line {line}: {_decisions(ds, user)}: {what}"))
    return tuple(out)


def render_derivation_html(d: Any, budget: int | None = None) -> str:
    """The backward pass, folded; with a `budget`, the lines that fit in it (`str(c.derivation())`
    prints them all)."""
    lines = render_derivation(d).splitlines()
    if budget is not None:
        lines = fit(lines, max(MIN_SECTION, budget - 200), "`print(c.derivation())`")
    text = html.escape("\n".join(lines) + "\n")
    return f'<details class="symgrad-backward"><summary>backward pass, line by line</summary><pre>{text}</pre></details>'


# --------------------------------------------------------------------------- sweeps

CAUSE_COLORS = {
    "domain": "#7f7f7f", "graph-break": "#8c564b", "detach": "#e377c2", "custom-backward": "#1f77b4",
    "control-flow": "#9467bd",
    "jump": "#d62728", "kink": "#ff7f0e", "nan-trap": "#17becf", "overflow": "#bcbd22", "rounding": "#2ca02c",
}
# The cause map's other two colours: a point where all three agree, and one whose loop ran too long.
MAP_COLORS = {**CAUSE_COLORS, "agree": "#e8eef4", "skipped": "#000000"}
WORST_MARK = {"marker": "x", "color": "black", "s": 40, "linewidths": 1.5}
PLOT_EXTRA: Final = ("Fix: `pip install matplotlib` (from a checkout of symgrad, `pip install -e \".[plot]\"` "
                     "installs it with symgrad).")


def pyplot(path: str | None, ax: Any, what: str = "Sweep.plot()") -> Any:
    """matplotlib's pyplot, or an OptionError saying how to install it."""
    try:
        import matplotlib

        if path is not None and ax is None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # the extra is optional
        raise OptionError(f"{what} needs matplotlib, which is not installed.\n{PLOT_EXTRA}") from err
    return plt


def plotted_axes(s: Sweep) -> list[int]:
    """The inputs a picture runs over: the ranged ones of a grid; for an explicit batch, those
    whose values vary."""

    if s.grid:
        return list(s.swept)
    varying = [k for k in range(s.points.shape[1]) if len(s.points) and np.ptp(s.points[:, k]) > 0]
    return varying or [0]


@renders("sweep.plot")
def plot_sweep(s: Sweep, path: str | None = None, *, ax: Any = None) -> Any:
    """One swept input: f and the three derivatives over it, bands and markers coloured by cause.
    Two: a map of causes over the (x, y) plane (one colour per cause, the worst points marked
    x) beside a heat map of autograd's error against the exact derivative (given `ax`, the map
    alone). More than two: an OptionError saying to hold some fixed."""
    axes = plotted_axes(s)
    if len(axes) > 2:
        names = ", ".join(sstr(s.symbols[k]) for k in axes)
        first, second = sstr(s.symbols[axes[0]]), sstr(s.symbols[axes[1]])
        raise OptionError(
            f"Sweep.plot() draws one or two swept inputs; this sweep runs over {len(axes)} ({names}).\n"
            "A picture has two dimensions: a line over one input, or a map over two.\n"
            f"Fix: hold the others fixed in `over`, e.g. `over={{{first}: (-1, 1), {second}: (-1, 1), "
            + ", ".join(f"{sstr(s.symbols[k])}: 0.0" for k in axes[2:])
            + "}`, or read the numbers with `to_dict()`."
        )
    plt = pyplot(path, ax)
    own = ax is None
    if own:
        fig, panels = plt.subplots(1, len(axes), figsize=(12, 5) if len(axes) == 2 else (8, 5), dpi=100)
    else:
        fig, panels = ax.figure, ax
    _draw(s, fig, panels, axes)
    if path is not None:
        fig.savefig(path)
        if own:
            plt.close(fig)
    return fig


def sweep_png(s: Sweep, dpi: int = 80) -> bytes | None:
    """The sweep's picture as PNG bytes (no pyplot state touched); None where matplotlib is
    missing or the sweep runs over more than two inputs."""

    axes = plotted_axes(s)
    if len(axes) > 2:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(12, 5) if len(axes) == 2 else (8, 5), dpi=dpi)
    _draw(s, fig, fig.subplots(1, len(axes)), axes)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw(s: Sweep, fig: Any, panels: Any, axes: list[int]) -> None:
    """Draw on `panels`: one axes (the line, or the cause map alone) or two (map and heat map)."""
    if len(axes) == 1:
        _draw_line(s, panels, axes[0])
        return
    if hasattr(panels, "__len__"):
        fig.subplots_adjust(left=0.06, right=0.95, bottom=0.24, top=0.9, wspace=0.25)
        _draw_map(s, fig, panels[0], panels[1], axes)
    else:
        _draw_map(s, fig, panels, None, axes)


def _draw_line(s: Sweep, ax: Any, axis: int) -> None:

    xs = s.points[:, axis]
    order = np.argsort(xs, kind="stable")
    j = next((k for k, w in enumerate(s.wrt) if w == s.symbols[axis]), 0)
    d = "f'" if len(s.wrt) == 1 else f"df/d{sstr(s.wrt[j])}"
    with np.errstate(invalid="ignore"):
        ax.plot(xs[order], s.value[order], color="#1f77b4", lw=1.5, label="f")
        ax.plot(xs[order], s.grad_symbolic[order, j], color="black", lw=1.2, ls="--", label=f"symbolic {d}")
        # Known where compared exactly (points) and where the float comparison agreed (a line).
        ax.plot(xs[order], s.grad_executed[order, j], color="#9467bd", lw=2.5, alpha=0.45, marker=".", ms=4,
                label=f"executed {d}")
        ax.plot(xs[order], s.grad_autograd[order, j], color="#d62728", lw=1.0, alpha=0.7, label=f"autograd {d}")
    sorted_x = np.unique(xs)
    half = float(np.median(np.diff(sorted_x))) / 2 if len(sorted_x) > 1 else 0.5
    for cause, regions in s.regions.items():  # a band under each run of one cause
        for r in regions:
            if r.low is not None:
                ax.axvspan(r.low - half, r.high + half, color=CAUSE_COLORS.get(cause, "black"), alpha=0.15, lw=0)
    for cause in sorted(set(s.causes) - {"agree", "skipped"}):
        sel = s.causes == cause
        ys = np.where(np.isfinite(s.grad_autograd[sel, j]), s.grad_autograd[sel, j], 0.0)
        ax.scatter(xs[sel], ys, s=30, marker="o", color=CAUSE_COLORS.get(cause, "black"), zorder=5, label=cause)
    ax.set_xlabel(sstr(s.symbols[axis]))
    ax.set_title(_plot_title(s), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)


def _plot_title(s: Sweep) -> str:
    fixed = [f"{sstr(v)} = {s.points[0, k]:.6g}" for k, v in enumerate(s.symbols)
             if s.grid and k not in s.swept and len(s.points)]
    title = _headline(s.source)
    title = title if len(title) <= 80 else title[:77] + "..."
    return f"{title}{'  at ' + ', '.join(fixed) if fixed else ''}  ({s.dtype}, branches=\"{s.branches}\")"


def relative_error(s: Sweep) -> Any:
    """Per point, autograd's largest relative error against the exact executed derivative (the
    float evaluation of the symbolic one where the executed one is not known); NaN where
    autograd or the reference is NaN or infinite."""

    ref = np.where(np.isfinite(s.grad_executed), s.grad_executed, s.grad_symbolic)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        err = np.abs(s.grad_autograd - ref) / np.maximum(np.abs(ref), 1e-300)
    bad = ~np.isfinite(err)
    out = np.where(bad, 0.0, err).max(axis=1, initial=0.0)
    return np.where(bad.any(axis=1), np.nan, out)


def grid_extent(s: Sweep, axes: Sequence[int]) -> tuple[float, float, float, float]:
    """The extent of a grid's image: each pixel is the cell centred on its grid point."""
    n0, n1 = s.grid
    x = s.points[::n1, axes[0]]
    y = s.points[:n1, axes[1]]
    hx = (x[-1] - x[0]) / (n0 - 1) / 2 if n0 > 1 else 0.5
    hy = (y[-1] - y[0]) / (n1 - 1) / 2 if n1 > 1 else 0.5
    return (float(x[0] - hx), float(x[-1] + hx), float(y[0] - hy), float(y[-1] + hy))


def cause_map(s: Sweep) -> Any:
    """The cause of each grid point as an RGB image: row k is the k-th value of the second
    input (from its low end, `origin="lower"`), column j the j-th of the first."""
    from matplotlib.colors import to_rgb
    palette = np.array([to_rgb(MAP_COLORS[c]) for c in IDS])
    return palette[s.codes.reshape(s.grid)].transpose(1, 0, 2)


def _draw_map(s: Sweep, fig: Any, ax: Any, heat: Any, axes: list[int]) -> None:
    import matplotlib
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    xs, ys = s.points[:, axes[0]], s.points[:, axes[1]]
    causes = s.causes
    present = [c for c in MAP_COLORS if c in set(causes.tolist())]
    if s.grid:
        ax.imshow(cause_map(s), origin="lower", extent=grid_extent(s, axes), interpolation="nearest", aspect="auto")
    else:
        ax.scatter(xs, ys, s=12, c=[to_rgb(MAP_COLORS[c]) for c in causes])
    worst = np.array([[float(c.point[s.symbols[axes[0]]]), float(c.point[s.symbols[axes[1]]])] for c in s.worst])
    handles: list[Any] = [Patch(facecolor=MAP_COLORS[c], edgecolor="#555555", label=c) for c in present]
    if len(worst):
        handles.append(ax.scatter(worst[:, 0], worst[:, 1], **WORST_MARK, zorder=5, label="worst points"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(len(handles), 4), fontsize=8)
    ax.set_xlabel(sstr(s.symbols[axes[0]]))
    ax.set_ylabel(sstr(s.symbols[axes[1]]))
    ax.set_title("cause at each point: " + _plot_title(s), fontsize=9)
    if heat is None:
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.maximum(relative_error(s), 1e-17))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d62728")
    top = max(0.0, float(np.nanmax(logs, initial=-17.0)))
    if s.grid:
        shown = heat.imshow(np.ma.masked_invalid(logs.reshape(s.grid).T), origin="lower", extent=grid_extent(s, axes),
                            interpolation="nearest", aspect="auto", cmap=cmap, vmin=-17, vmax=top)
    else:
        shown = heat.scatter(xs, ys, s=12, c=np.ma.masked_invalid(logs), cmap=cmap, vmin=-17, vmax=top)
    fig.colorbar(shown, ax=heat, label="log10 relative error (floor 1e-17)")
    if len(worst):
        heat.scatter(worst[:, 0], worst[:, 1], **WORST_MARK, zorder=5)
    heat.set_xlabel(sstr(s.symbols[axes[0]]))
    heat.set_ylabel(sstr(s.symbols[axes[1]]))
    heat.set_title("autograd against the exact derivative (red: NaN or inf)", fontsize=9)


# --------------------------------------------------------------------------- notebooks

# One style sheet for both views, scoped to `.symgrad`: colours are translucent or inherited, so
# the view reads on a light page and on a dark one (JupyterLab's dark theme, VS Code's).
CSS: Final = """<style>
.symgrad{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:13px;line-height:1.45;color:inherit;
 border:1px solid rgba(127,127,127,.35);border-radius:6px;padding:10px 14px;margin:4px 0;max-width:1100px}
.symgrad code,.symgrad pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.symgrad code{background:rgba(127,127,127,.15);border-radius:3px;padding:0 3px}
.symgrad pre{background:rgba(127,127,127,.08);border-radius:4px;padding:6px 8px;overflow-x:auto;margin:4px 0}
.symgrad pre code{background:none;padding:0}
.symgrad table{border-collapse:collapse;margin:6px 0}
.symgrad th,.symgrad td{border-bottom:1px solid rgba(127,127,127,.3);padding:3px 10px;text-align:left;vertical-align:top}
.symgrad th{font-weight:600;border-bottom:2px solid rgba(127,127,127,.5)}
.symgrad .symgrad-cause{display:inline-block;border-radius:10px;padding:0 8px;font-weight:600;font-size:12px}
.symgrad .symgrad-meta{opacity:.75}
.symgrad .symgrad-finding{border-left:3px solid rgba(127,127,127,.5);padding:2px 0 2px 10px;margin:8px 0}
.symgrad .symgrad-finding p{margin:2px 0}
.symgrad .symgrad-meaning{opacity:.85;font-size:12px}
.symgrad .symgrad-program span{display:block;white-space:pre}
.symgrad .symgrad-program .symgrad-cited{background:rgba(255,140,0,.28);font-weight:600}
.symgrad details{margin:4px 0}
.symgrad summary{cursor:pointer;font-weight:600}
.symgrad img{max-width:100%;background:#fff;border-radius:4px}
</style>"""
AGREE_COLOR: Final = "#5f7d95"


def _badge(cause_id: str, text: str | None = None) -> str:
    """A cause as a coloured label whose text stays readable on its colour in either theme."""
    colour = CAUSE_COLORS.get(cause_id, AGREE_COLOR)
    r, g, b = (int(colour[k:k + 2], 16) / 255 for k in (1, 3, 5))
    ink = "#000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.55 else "#fff"
    esc = html.escape
    return (f'<span class="symgrad-cause symgrad-{esc(cause_id)}" style="background:{colour};color:{ink}">'
            f"{esc(text if text is not None else cause_id)}</span>")


def _meanings(causes: Sequence[Cause]) -> str:
    """Each cause's meaning, inline (a relative link would break in the user's notebook)."""
    out = []
    for cause in dict.fromkeys(causes):
        if cause is not Cause.AGREE:
            out.append(f'<p class="symgrad-meaning"><b>What {html.escape(cause.id)} means.</b> '
                       f"{_code_spans(cause.meaning)}</p>")
    return "".join(out)


@renders("comparison.html")
def render_html(c: Comparison) -> str:
    esc = html.escape
    shown = shown_rows(c)
    table_rows = _table(c, shown)
    cells = "".join(f"<th>{esc(h)}</th>" for h in table_rows[0])
    trs = [f"<tr>{cells}</tr>"]
    for r in table_rows[1:]:
        cid = r[-1].split()[0]
        trs.append("<tr>" + "".join(f"<td><code>{esc(x)}</code></td>" for x in r[:-1]) + f"<td>{_badge(cid, r[-1])}</td></tr>")
    cut = "".join(f'<p class="symgrad-meta">{_code_spans(line)}</p>' for line in rows_note(c, shown, full_hint=False))
    cut += "".join(f'<p class="symgrad-meta">by input: <code>{esc(line)}</code></p>' for line in tensor_lines(c))
    notes = []
    gs = groups(c)
    n = said_in_full(c, gs)
    for g in gs[:n]:
        e = c.rows[g.said_for]
        parts = [f'<p class="symgrad-explanation"><b>{_code_spans(heading(c, g))}</b> {_badge(e.cause.id)} '
                 f"{_code_spans(e.explanation)}</p>"]
        if e.hint:
            parts.append(f'<p class="symgrad-hint"><i>Hint:</i> {_code_spans(e.hint)}</p>')
        if e.autograd_error:
            parts.append(f'<p class="symgrad-torch"><i>torch said:</i> <code>{esc(e.autograd_error.strip().splitlines()[0])}</code></p>')
        notes.append(f'<div class="symgrad-finding">{"".join(parts)}</div>')
    notes += [f'<p class="symgrad-finding">{_code_spans(line)}</p>' for line in rest(c, gs[n:])]
    if c.ok:
        first = c.rows[0].explanation if len(c.rows) else "No inputs: nothing to differentiate."
        notes.append(f'<p class="symgrad-explanation">{_code_spans(first)}</p>')
    cited = cited_lines(c)
    lines = c.lowered.source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def f("))
    code = [f'<span data-line="{n}">  {n:3d} | {esc(text)}</span>' for n, text in enumerate(lines[:start], start=1)]
    for row in program_rows(c):
        if isinstance(row, int):
            code.append(f'<span class="symgrad-gap">      | ... {row} line{"s" if row > 1 else ""}</span>')
            continue
        number_, text = row
        if number_ in cited:
            code.append(f'<span class="symgrad-cited" data-line="{number_}">&gt; {number_:3d} | {esc(cut_line(text))}</span>')
        else:
            code.append(f'<span data-line="{number_}">  {number_:3d} | {esc(cut_line(text))}</span>')
    program = "".join(code)  # each line a block of its own: the cited one highlighted across
    note = program_note(c)
    program_note_html = f'<p class="symgrad-meta">{_code_spans(note)}</p>' if note else ""
    source = function_text(c, "the program")
    mark = " (cited lines marked &gt;)" if cited else ""
    front = (
        f'<div class="symgrad symgrad-comparison" data-cause="{esc(c.cause.id)}">{CSS}'
        f"<p><b>symgrad</b>: <code>{esc(source)}</code> at {esc(point_text(c))} "
        f'<span class="symgrad-meta">({esc(c.dtype)}, branches="{esc(c.branches)}")</span></p>'
        f"{_point_notes_html(c)}"
        f"<p>{_badge(c.cause.id)} {esc(c.cause.title)}</p>"
        f'{cut}<table class="symgrad-entries">{"".join(trs)}</table>{"".join(notes)}'
        f"{_meanings(causes_of(c))}"
        f"<p><b>generated program</b>{mark}</p>"
        f'<pre class="symgrad-program">{program}</pre>{program_note_html}'
    )
    left = max(2 * MIN_SECTION, PAGE_BUDGET - len(front))
    lines = path_lines(c.executed_path, c.lowered.normalized.user_symbols)
    path = "\n".join(esc(line) for line in fit(lines, min(SECTION_BUDGET, left // 2), "`c.executed_path.steps`"))
    return (
        f"{front}"
        f'<details class="symgrad-path"><summary>executed path</summary><pre>{path}</pre></details>'
        f"{render_derivation_html(c.derivation(), min(SECTION_BUDGET, left - len(path)))}</div>"
    )


def _point_notes_html(c: Comparison) -> str:
    notes = point_notes(c)
    if not notes:
        return ""
    rows = "".join(f"<li><code>{html.escape(row.strip())}</code></li>" for row in notes[1:])
    return f'<p class="symgrad-meta">{html.escape(notes[0])}</p><ul class="symgrad-point">{rows}</ul>'


@renders("sweep.html")
def render_sweep_html(s: Sweep) -> str:

    esc = html.escape
    rows = "".join(f"<tr><td>{_badge(c)}</td><td>{n}</td></tr>" for c, n in s.counts.items())
    fixed = [f"{sstr(v)} = {s.points[0, k]:.6g}" for k, v in enumerate(s.symbols)
             if s.grid and k not in s.swept and len(s.points)]
    regions = []
    for rs in s.regions.values():
        for r in rs[:5]:
            regions.append(f"<li>{_badge(r.cause)} {esc(str(r).split(': ', 1)[1])}</li>")
        if len(rs) > 5:
            regions.append(f"<li>... {len(rs) - 5} more {esc(rs[0].cause)} regions</li>")
    worst = []
    for c in s.worst[:5]:
        e = next(x for x in c.entries if not x.ok)
        at = ", ".join(f"{sstr(k)} = {float(v):.6g}" for k, v in c.point.items() if k in s.symbols)  # (not a held tensor)
        hint = f'<br><i>Hint:</i> {_code_spans(e.hint)}' if e.hint else ""
        worst.append(f'<li><b>at {esc(at)}</b> {_badge(c.cause.id)} {_code_spans(e.explanation)}{hint}</li>')
    png = sweep_png(s)
    if png is not None:
        alt = f"symgrad sweep of {_headline(s.source)}: " + ", ".join(f"{c} {n}" for c, n in s.counts.items())
        picture = (f'<img class="symgrad-plot" alt="{esc(alt)}" '
                   f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
    elif len(plotted_axes(s)) > 2:
        picture = ('<p class="symgrad-meta">No picture: this sweep runs over more than two inputs; hold some '
                   "fixed in <code>over</code> to draw it.</p>")
    else:
        picture = '<p class="symgrad-meta">No picture: matplotlib is not installed (<code>pip install matplotlib</code>).</p>'
    causes = [Cause.from_id(c) for c in s.counts if c != "skipped"]
    return (
        f'<div class="symgrad symgrad-sweep">{CSS}<p><b>symgrad sweep</b>: <code>{esc(_headline(s.source))}</code> over '
        f"{len(s.points):,} points{esc(' at ' + ', '.join(fixed)) if fixed else ''} "
        f'<span class="symgrad-meta">({esc(s.dtype)}, branches="{esc(s.branches)}", {s.seconds:.2f} s)</span></p>'
        f'<table class="symgrad-counts"><tr><th>cause</th><th>points</th></tr>{rows}</table>{picture}'
        + (f'<p><b>where</b></p><ul class="symgrad-regions">{"".join(regions)}</ul>' if regions else "")
        + (f'<p><b>worst points</b> (one per cause and line)</p><ol class="symgrad-worst">{"".join(worst)}</ol>' if worst else "")
        + "".join(f'<p class="symgrad-meta">{esc(note)}</p>' for note in s.notes)
        + f"{_meanings(causes)}</div>"
    )
