"""A comparison of any size as a page: the parts of a report that keep it bounded.

A comparison over a whole model has thousands of entries, a generated program of hundreds of
lines and intermediate values of thousands of elements. The reports (`report.py`) read their
bounded parts from here: the findings, each said once with the elements it reaches (grouped by
`verdict.grouping`), the first `MAX_FINDINGS` in full while they fit in `FINDINGS_BUDGET` and the
rest one line per cause; the generated program, shown around its cited lines when it is long;
lines cut at `MAX_LINE`; and `fit`, which gives the executed path and the backward pass what the
sections above them leave of `PAGE_BUDGET`. Every part says where the whole is (`c.entries`,
`c.to_dict()`, `c.lowered.source`, `c.executed_path`, `c.derivation()`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..verdict.grouping import MAX_FINDINGS, MAX_ROWS, Group, bad_rows, groups, heading, inputs, rest
from ..verdict.records import Comparison


def cited_lines(c: Comparison) -> set[int]:
    rows = c.rows  # the disagreeing entries only: a table builds no other
    return {rows[k].line for k in bad_rows(c) if rows[k].line is not None}


# A line of the generated program or the executed path longer than this is cut, saying how long.
MAX_LINE = 300


def cut_line(text: str) -> str:
    return text if len(text) <= MAX_LINE else f"{text[:MAX_LINE - 40]} ... ({len(text):,} characters)"


# A generated program of more lines than this is shown around its cited lines.
MAX_PROGRAM_LINES = 60
MAX_CITED_SHOWN = 12  # cited lines shown (each with the comment above it) in a long program


def program_rows(c: Comparison) -> list[tuple[int, str] | int]:
    """The generated function's lines as (number, text); a long one keeps its first lines, each
    cited line with the comment above it, and its last lines, and an int stands for that many
    lines left out."""
    cited = cited_lines(c)
    lines = c.lowered.source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def f("))
    numbered = list(enumerate(lines[start:], start=start + 1))
    if len(numbered) <= MAX_PROGRAM_LINES:
        return list(numbered)
    keep = {n for n, _ in numbered[:3]} | {n for n, _ in numbered[-2:]}
    first = [g.line for g in groups(c) if g.line is not None]  # the findings' own lines first
    for n in list(dict.fromkeys([*first, *sorted(cited)]))[:MAX_CITED_SHOWN]:
        keep |= {n - 1, n}
    out: list[tuple[int, str] | int] = []
    gap = 0
    for n, text in numbered:
        if n in keep:
            if gap:
                out.append(gap)
            gap = 0
            out.append((n, text))
        else:
            gap += 1
    if gap:
        out.append(gap)
    return out


def program_note(c: Comparison) -> str:
    """Under a generated program shown in part: how much is shown and where the rest is."""
    rows_ = program_rows(c)
    total = sum(r if isinstance(r, int) else 1 for r in rows_)
    shown = sum(1 for r in rows_ if not isinstance(r, int))
    if shown == total:
        return ""
    more = len(cited_lines(c)) - MAX_CITED_SHOWN
    cited = f", {more} more cited lines among them" if more > 0 else ""
    return f"({shown} of its {total} lines shown{cited}; the whole program: `c.lowered.source`)"


def program_lines(c: Comparison, marker: str = ">") -> list[str]:
    """The generated function with line numbers; cited lines are marked. A long one is shown
    around its cited lines (`_program_rows`)."""
    cited = cited_lines(c)
    width = len(str(len(c.lowered.source.splitlines())))
    out = []
    for row in program_rows(c):
        if isinstance(row, int):
            out.append(f"  {' ' * width} | ... {row} line{'s' if row > 1 else ''}")
            continue
        number_, text = row
        mark = marker if number_ in cited else " "
        out.append(cut_line(f"{mark} {str(number_).rjust(width)} | {text}"))
    note = program_note(c)
    return out + ([note] if note else [])


def _finding_text(c: Comparison, g: Group) -> list[str]:
    """One finding, said once: the elements it reaches, its cause, the explanation of its worst
    entry, the hint, torch's message, the cause's page."""
    e = c.rows[g.said_for]
    out = [f"{heading(c, g)}: [{e.cause.id}] {e.explanation}"]
    if e.hint:
        out.append(f"   hint: {e.hint}")
    if e.autograd_error:
        out.append(f"   torch said: {e.autograd_error.strip().splitlines()[0]}")
    out.append(f"   more: {e.cause.page}")
    return out


# What a report of any size stays under: a page of about 20,000 characters. The findings get at
# most FINDINGS_BUDGET of it (the rest are folded, one line per cause); the executed path and the
# backward pass get what the sections above them leave, at most SECTION_BUDGET each.
PAGE_BUDGET = 18_000
FINDINGS_BUDGET = 7_000
MIN_SECTION = 1_200
SECTION_BUDGET = 6_000  # the most the executed path, or the backward pass, takes of a page


def said_in_full(c: Comparison, gs: Sequence[Group]) -> int:
    """How many findings a report says in full: up to `MAX_FINDINGS`, while their texts fit in
    `FINDINGS_BUDGET` (at least one)."""
    used = 0
    for n, g in enumerate(gs[:MAX_FINDINGS]):
        e = c.rows[g.said_for]
        used += len(e.explanation) + len(e.hint) + len(heading(c, g)) + 100
        if n and used > FINDINGS_BUDGET:
            return n
    return min(len(gs), MAX_FINDINGS)


def findings_text(c: Comparison) -> list[str]:
    """Every finding once (the first `said_in_full` in full, the rest one line per cause), each
    followed by a blank line."""
    gs = groups(c)
    n = said_in_full(c, gs)
    out: list[str] = []
    for g in gs[:n]:
        out += _finding_text(c, g) + [""]
    if len(gs) > n:
        out += [*rest(c, gs[n:]), ""]
    return out


def fit(lines: Sequence[str], budget: int, where: str) -> list[str]:
    """The first of `lines` that fit in `budget` characters, and a line saying how many more
    there are and `where` to read them."""
    out: list[str] = []
    used = 0
    for k, line in enumerate(lines):
        if used + len(line) + 1 > budget:
            return out + [f"  ... {len(lines) - k} more lines: {where}"]
        out.append(line)
        used += len(line) + 1
    return out


def tensor_lines(c: Comparison) -> list[str]:
    """For a comparison whose table is cut: each matrix input summarised."""
    return inputs(c) if len(c.rows) > MAX_ROWS else []
