"""A comparison of many entries said in a page: each finding once, with the elements it reaches.

A comparison over matrices has one entry per element, and the entries that one finding decides
(an overflow at one line, the kink of one `Max` node) share it. The reports (`str()`,
`to_markdown()`, `_repr_html_()`) and `GradientMismatch`'s message read what this module groups:

- `groups`: the disagreeing entries grouped by finding (cause, node, line, the user's line), each
  group said for its worst entry, the others named (`reach`: "W[0, 17], W[3, 17] and 30 more",
  or "every element of W");
- `shown_rows`: which entries a table shows (all of them up to `MAX_ROWS`, else the non-agreeing ones
  first, the most severe and worst first, up to `SHOWN_ROWS`);
- `inputs`: per input tensor, its shape, its entries counted by cause and its worst elements.

Nothing here decides a cause: it orders and groups the entries `compare` made. `to_dict()` and
`Comparison.entries` keep every entry. It reads them through `Comparison.rows`: where compare held
them as an `EntryTable`, the counts, the disagreeing entries and each input's members come from
its arrays, and only the entries a report names are built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..base.causes import Cause
from ..program.program import Vector, float_of, number, sstr
from .records import Comparison, Entry, tensor_of
from .table import EntryTable

MAX_ROWS = 20  # a table of at most this many entries is shown whole
SHOWN_ROWS = 10  # beyond it, this many rows, the non-agreeing ones first
MAX_LISTED = 4  # elements named before "and N more"
MAX_FINDINGS = 8  # findings said in full; the rest, one line per cause
WORST = 3  # the worst elements named per input tensor


def one_line(text: str) -> str:
    """User text (symbol names may hold newlines) that cannot break a report's layout."""
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", " ", text)


def _float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, float):
        return v
    try:
        return float_of(v)
    except (TypeError, ValueError):
        return math.nan


def _relative(a: float, b: float) -> float:
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def disagreement(e: Entry) -> float:
    """How far the sides of an entry are apart, as a relative difference (inf where a side is
    missing, NaN or infinite and another is not): the largest of symbolic (or its one-sided
    derivatives) against executed and executed against autograd. 0 for an agreeing entry."""
    if e.ok:
        return 0.0
    exe = _float(e.grad_executed)
    auto = _float(e.grad_autograd)
    if e.grad_symbolic is not None:
        math_side = [_float(e.grad_symbolic)]
    elif e.one_sided is not None:
        math_side = [_float(e.one_sided[0]), _float(e.one_sided[1])]
    else:
        math_side = []
    worst = max((_relative(m, exe) for m in math_side), default=0.0)
    if math.isnan(auto) and not math.isnan(exe):
        return math.inf
    if not math.isnan(auto):
        worst = max(worst, _relative(exe, auto))
    return math.inf if math.isnan(worst) else worst


def ranked(entries: Sequence[Entry], among: Sequence[int] | None = None) -> list[int]:
    """Indices of `entries` (or of `among`), the most severe cause first, then the largest
    disagreement, then in table order."""
    pool = range(len(entries)) if among is None else among
    return sorted(pool, key=lambda k: (entries[k].cause.severity, -disagreement(entries[k]), k))


def bad_rows(c: Comparison) -> list[int]:
    """The indices of the entries that do not agree, in order (from the table's cause codes
    where the entries are held as one)."""
    rows = c.rows
    if isinstance(rows, EntryTable):
        return rows.bad()
    return [k for k, e in enumerate(rows) if not e.ok]


def shown_rows(c: Comparison, full: bool = False) -> list[int]:
    """The entries a table shows: every one up to `MAX_ROWS` entries (or with `full`); beyond,
    the non-agreeing ones, most severe and worst first, up to `SHOWN_ROWS` (the first rows where
    every entry agrees)."""
    n = len(c.rows)
    if full or n <= MAX_ROWS:
        return list(range(n))
    bad = ranked(c.rows, bad_rows(c))
    return bad[:SHOWN_ROWS] if bad else list(range(SHOWN_ROWS))


def rows_note(c: Comparison, shown: Sequence[int], full_hint: bool = True) -> list[str]:
    """The lines above a cut table: the counts by cause, what is shown, and where the rest is."""
    entries = c.rows
    n = len(entries)
    if len(shown) == n:
        return []
    wrong = set(bad_rows(c))
    bad = any(k in wrong for k in shown)
    which = "that disagree, the most severe first" if bad else "first"
    rest = n - len(shown)
    agree = n - len(shown) - len(wrong - set(shown))
    out = [f"{n} entries: {counts(entries)}"]
    if full_hint:
        out.append(f"showing {len(shown)} {which}; c.report(full=True) (or `symgrad compare ... --full`) prints all {n}")
    else:
        out.append(f"showing {len(shown)} {which}")
    out.append(f"{rest} rows not shown ({agree} of them agree): every entry is in `c.entries` and `c.to_dict()`")
    return out


def counts(entries: Sequence[Entry]) -> str:
    """`13 kink, 82 agree`: the entries counted by cause, the most severe first."""
    if isinstance(entries, EntryTable):  # from the cause codes, no entry built
        return _said(entries.counts())
    by: dict[Cause, int] = {}
    for e in entries:
        by[e.cause] = by.get(e.cause, 0) + 1
    return _said(by)


def _said(by: dict[Cause, int]) -> str:
    return ", ".join(f"{k} {cause.id}" for cause, k in sorted(by.items(), key=lambda kv: kv[0].severity))


# --------------------------------------------------------------------------- the elements


def what(c: Comparison, e: Entry) -> str:
    """What an entry is the derivative of: the output element (Jacobian), the first derivative
    (Hessian), or the v-weighted sum (vector-Jacobian product); "" for a scalar function."""
    return what_output(c, e.output)


def what_output(c: Comparison, output: Any) -> str:
    """`what` of the entries of one output (`Entry.output`)."""
    if getattr(c, "order", 1) == 2:
        return f"d/d{one_line(sstr(c.lowered.symbols[output]))} f"  # type: ignore[index]
    if getattr(c, "vjp", False):
        return "v . f"
    if isinstance(output, tuple):
        if getattr(c, "outputs", ()) and output[1] == 0 and output[0] < len(c.outputs):
            return c.outputs[output[0]]  # a returned tuple's element: `out[1][2]`
        return f"f[{output[0]}, {output[1]}]"
    return ""


def outputs_of(c: Comparison) -> list[Any]:
    """The distinct outputs of the entries (`Entry.output`), in order."""
    rows = c.rows
    if isinstance(rows, EntryTable):
        return list(dict.fromkeys(rows.outputs()))
    return list(dict.fromkeys(e.output for e in rows))


def label(c: Comparison, e: Entry, output: bool = False) -> str:
    """An entry named for a list: its input element, and with `output` the output too (a list
    of entries of several outputs: `f[0, 0] wrt x0`)."""
    name = one_line(sstr(e.wrt))
    of = what(c, e) if output else ""
    return f"{of} wrt {name}" if of else name


def reach(c: Comparison, members: Sequence[int], listed: int = MAX_LISTED) -> str:
    """The entries a finding reaches, briefly: every element of one matrix input, or the first
    `listed` named and how many more ("W[0, 17], W[3, 17] and 30 more")."""
    es = [c.rows[k] for k in members]
    mine: dict[Any, int] = {}
    for e in es:
        t = tensor_of(e)
        mine[t] = mine.get(t, 0) + 1
    tensors = list(mine)
    # every element of a matrix input: as many of its entries as the comparison has (an entry per
    # element and output), counted only where the members could be all of them
    whole = len(es) > 1 and all(isinstance(t, sp.MatrixSymbol) and mine[t] >= t.rows * t.cols for t in tensors) and all(
        len(members_of(c).get(t, ())) == mine[t] for t in tensors)
    if len(es) > 1 and whole:
        names = [one_line(sstr(t)) for t in tensors]
        return "every element of " + (", ".join(names[:-1]) + " and " if len(names) > 1 else "") + names[-1]
    outputs = len({e.output for e in es}) > 1
    names = [label(c, e, outputs) for e in es]
    if len(names) <= listed + 1:
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    return f"{', '.join(names[:listed])} and {len(names) - listed} more"


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Group:
    """The entries one finding decides: its cause, node and line (and the user's line), the
    members (indices into `c.entries`, in table order), the worst of them (`said_for`: the
    entry whose explanation is shown), and whether every member has the same explanation."""

    cause: Cause
    node: str | None
    line: int | None
    members: tuple[int, ...]
    said_for: int
    same_text: bool


def _key(e: Entry) -> tuple[Any, ...]:
    source = (e.source.file, e.source.line) if e.source is not None else None
    error = e.autograd_error.strip().splitlines()[0] if e.autograd_error else None
    return (e.cause, e.node, e.line, source, tuple(a.id for a in e.also), error)


def groups(c: Comparison, among: Sequence[int] | None = None) -> list[Group]:
    """The disagreeing entries (of `among`, indices into `c.entries`, where given) grouped by
    finding, the most severe and worst group first."""
    by: dict[tuple[Any, ...], list[int]] = {}
    entries = c.rows
    bad = bad_rows(c)
    for k in bad if among is None else sorted(set(among) & set(bad)):
        e = entries[k]
        if e.cause is not Cause.AGREE:
            by.setdefault(_key(e), []).append(k)
    out = []
    for members in by.values():
        worst = ranked(entries, members)[0]
        texts = {(entries[k].explanation, entries[k].hint) for k in members}
        e = entries[worst]
        out.append(Group(e.cause, e.node, e.line, tuple(members), worst, len(texts) == 1))
    return sorted(out, key=lambda g: (g.cause.severity, -disagreement(entries[g.said_for]), g.members[0]))


def heading(c: Comparison, g: Group, where: str = "`c.entries`") -> str:
    """The elements a finding reaches, how many where not all are named, and for which of them it
    is written where their texts differ: `W[0, 0], W[1, 0], W[2, 0], W[3, 0] and 3 more (7
    entries; written for W[2, 0], the worst of them; ...)`."""
    head = reach(c, g.members)
    parts = [f"{len(g.members)} entries"] if head.startswith("every element") or head.endswith(" more") else []
    if len(g.members) > 1 and not g.same_text:
        outputs = len({c.rows[k].output for k in g.members}) > 1
        parts.append(f"written for {label(c, c.rows[g.said_for], outputs)}, the worst of them; each one's values: {where}")
    return f"{head} ({'; '.join(parts)})" if parts else head


def rest(c: Comparison, gs: Sequence[Group], where: str = "`c.entries`") -> list[str]:
    """One line per cause for the findings beyond the first `MAX_FINDINGS`: how many, at which
    lines, and the elements they reach."""
    out = []
    by: dict[Cause, list[Group]] = {}
    for g in gs:
        by.setdefault(g.cause, []).append(g)
    for cause, more in by.items():
        lines = sorted({g.line for g in more if g.line is not None})
        at = ""
        if lines:
            shown = ", ".join(str(n) for n in lines[:MAX_LISTED])
            at = f" at line{'s' if len(lines) > 1 else ''} {shown}" + (f" and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else "")
        members = sorted(k for g in more for k in g.members)
        out.append(f"{len(more)} more {cause.id} finding{'s' if len(more) > 1 else ''}{at}, reaching "
                   f"{reach(c, members)} (each one's explanation: {where})")
    return out


# --------------------------------------------------------------------------- input tensors


def inputs(c: Comparison) -> list[str]:
    """Per matrix input: its shape, its entries counted by cause, its worst elements; the scalar
    inputs together. Empty where no input is a matrix."""
    by = members_of(c)
    if not any(isinstance(t, sp.MatrixSymbol) for t in by):
        return []
    entries = c.rows
    wrong = set(bad_rows(c))
    out = []
    scalars: list[int] = []
    for t, members in by.items():
        if not isinstance(t, sp.MatrixSymbol):
            scalars += members
            continue
        n = len(members)
        size = f"({t.rows},)" if isinstance(t, Vector) else f"({t.rows}x{t.cols})"  # a rank-1 tensor: torch's shape
        line = f"{one_line(sstr(t))} {size}: {n} entr{'y' if n == 1 else 'ies'}, {_counted(c, members)}"
        bad = ranked(entries, [k for k in members if k in wrong])[:WORST]
        if bad:
            several = len(outputs_of(c)) > 1 if isinstance(entries, EntryTable) else \
                len({entries[k].output for k in members}) > 1
            line += "; worst " + ", ".join(f"{label(c, entries[k], several)} ({_sides(entries[k])})" for k in bad)
        out.append(line)
    if scalars:
        names = list(dict.fromkeys(one_line(sstr(t)) for t, members in by.items() if not isinstance(t, sp.MatrixSymbol)))
        shown = ", ".join(names[:MAX_LISTED]) + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")
        out.append(f"scalars {shown}: {_counted(c, scalars)}")
    return out


def causes_of(c: Comparison) -> list[Cause]:
    """The causes of the entries, each once, in the order of its first entry."""
    rows = c.rows
    if isinstance(rows, EntryTable):
        return rows.causes_in_order()
    return list(dict.fromkeys(e.cause for e in rows))


def members_of(c: Comparison) -> dict[Any, Sequence[int]]:
    """The entries of each input (a matrix input's elements together), inputs in the order of
    their first entry, each one's entries in order."""
    rows = c.rows
    if isinstance(rows, EntryTable):
        return rows.members()
    by: dict[Any, list[int]] = {}
    for k, e in enumerate(rows):
        by.setdefault(tensor_of(e), []).append(k)
    return by


def _counted(c: Comparison, members: Sequence[int]) -> str:
    rows = c.rows
    if isinstance(rows, EntryTable):
        return _said(rows.counts(members))
    return counts([rows[k] for k in members])


def _sides(e: Entry) -> str:
    if e.grad_symbolic is not None:
        math_side = number(e.grad_symbolic)
    elif e.one_sided is not None:
        math_side = f"none ({number(e.one_sided[0])} | {number(e.one_sided[1])})"
    else:
        math_side = "none"
    auto = repr(e.grad_autograd) if e.grad_autograd is not None else ("torch raised" if e.autograd_error else "none")
    return f"symbolic {math_side}, executed {number(e.grad_executed)}, autograd {auto}"
