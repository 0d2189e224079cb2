"""The `Cause` enum, its texts, and its page `docs/causes.md`.

Every cause has a stable id, a title and a page; the page has a section per cause, anchored on
the id, whose examples are real: each `symgrad ...` command on the page is run and must still
print the lines shown (`tests/doc_examples.py`).
"""

from __future__ import annotations

import re
import string

import pytest

from doc_examples import anchors, console_examples, read, run_cli, missing_lines, run_pycon
from symgrad import Cause
from symgrad.base.causes import DOCS_CAUSES, EXPLANATIONS, HINTS, SIDES, TITLES

PAGE = "causes.md"
IDS = [c.id for c in Cause]

# DESIGN.md section 5: the ids, and the order in which a primary cause is chosen.
DESIGN_IDS = {
    "agree", "detach", "custom-backward", "graph-break", "control-flow", "kink", "jump", "nan-trap", "overflow",
    "rounding", "domain",
}
DESIGN_ORDER = [
    "domain", "graph-break", "detach", "custom-backward", "control-flow", "jump", "kink", "nan-trap", "overflow",
    "rounding", "agree",
]


# ---------------------------------------------------------------- the enum


def test_the_ids_are_the_design_s_ids() -> None:
    assert set(IDS) == DESIGN_IDS
    assert len(IDS) == len(set(IDS))


@pytest.mark.parametrize("cause", list(Cause), ids=IDS)
def test_every_cause_has_an_id_a_title_and_a_page(cause: Cause) -> None:
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", cause.id), cause.id
    assert cause.title and cause.title == TITLES[cause]
    assert not cause.title[0].isupper() and not cause.title.endswith("."), "titles are lower-case phrases"
    assert cause.page == f"{DOCS_CAUSES}#{cause.id}" == f"docs/causes.md#{cause.id}"
    assert cause.sides == SIDES[cause]
    assert Cause.from_id(cause.id) is cause


def test_from_id_refuses_an_unknown_id() -> None:
    with pytest.raises(KeyError):
        Cause.from_id("nan_trap")


def test_severity_follows_the_design_order() -> None:
    assert [c.id for c in sorted(Cause, key=lambda c: c.severity)] == DESIGN_ORDER
    assert Cause.AGREE.severity == max(c.severity for c in Cause)


@pytest.mark.parametrize("table", [TITLES, SIDES, EXPLANATIONS, HINTS], ids=["TITLES", "SIDES", "EXPLANATIONS", "HINTS"])
def test_every_text_table_has_every_member(table: dict) -> None:
    assert set(table) == set(Cause)


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.AGREE], ids=lambda c: c.id)
def test_every_disagreement_has_an_explanation_and_a_hint(cause: Cause) -> None:
    assert EXPLANATIONS[cause].strip()
    assert HINTS[cause].strip()


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.AGREE], ids=lambda c: c.id)
def test_explanations_cite_the_node_or_the_line(cause: Cause) -> None:
    """DESIGN section 5: every disagreement names the node and the line of the program."""
    fields = {name for _, name, _, _ in string.Formatter().parse(EXPLANATIONS[cause]) if name}
    if cause is Cause.ROUNDING:
        # The rounding template puts the node and the line into {detail}.
        assert "detail" in fields
    else:
        assert {"node", "line"} <= fields, fields


# ---------------------------------------------------------------- the page


def test_every_id_has_an_anchor_on_the_page() -> None:
    found = anchors(PAGE)
    missing = [i for i in IDS if i not in found]
    assert missing == [], f"docs/causes.md has no <a id=...> anchor for {missing}"
    assert len(found) == len(set(found)), "an anchor is declared twice"
    assert set(found) == set(IDS), f"anchors that are no cause: {sorted(set(found) - set(IDS))}"


@pytest.mark.parametrize("cause", list(Cause), ids=IDS)
def test_each_anchor_heads_a_section_with_the_id_and_title(cause: Cause) -> None:
    text = read(PAGE)
    heading = f'<a id="{cause.id}"></a>\n## `{cause.id}`: {cause.title}\n'
    assert heading in text, f"expected the section heading:\n{heading}"


@pytest.mark.parametrize("cause", list(Cause), ids=IDS)
def test_the_overview_table_says_which_sides_differ(cause: Cause) -> None:
    row = f"| [`{cause.id}`](#{cause.id}) | {cause.sides} | {cause.title} |"
    assert row in read(PAGE)


def _section(cause: Cause) -> str:
    text = read(PAGE)
    start = text.index(f'<a id="{cause.id}"></a>')
    following = [text.index(f'<a id="{c.id}"></a>') for c in Cause if text.index(f'<a id="{c.id}"></a>') > start]
    end = min(following, default=text.index("## Summary"))
    return text[start:end]


@pytest.mark.parametrize("cause", list(Cause), ids=IDS)
def test_each_section_says_the_sides_and_the_fix(cause: Cause) -> None:
    section = _section(cause)
    assert "**Sides that differ:**" in section
    assert "**What it means.**" in section
    assert re.search(r"\*\*(How to fix it|What to do)\.\*\*", section)


# A hand-written torch.autograd.Function has no command-line spelling: its section's example is a
# doctest (test_the_custom_backward_section_shows_custom_backward).
@pytest.mark.parametrize("cause", [c for c in Cause if c not in (Cause.CONTROL_FLOW, Cause.CUSTOM_BACKWARD)],
                         ids=lambda c: c.id)
def test_each_section_s_first_example_shows_its_cause(cause: Cause) -> None:
    first = next(ex for ex in console_examples(PAGE) if f"```console\n$ {ex.command}\n" in _section(cause))
    rc, out = run_cli(first.argv)
    assert rc == (0 if cause is Cause.AGREE else 1)  # the command line exits 1 when the gradients disagree
    assert f"cause: {cause.id}: {cause.title}" in out


def test_the_control_flow_section_shows_control_flow() -> None:
    section = _section(Cause.CONTROL_FLOW)
    examples = [ex for ex in console_examples(PAGE) if f"$ {ex.command}\n" in section]
    assert len(examples) >= 2
    for ex in examples:
        rc, out = run_cli(ex.argv)
        assert "cause: control-flow:" in out, ex.command
    assert "'control-flow'" in section  # the D2L loop, a doctest


def test_the_custom_backward_section_shows_custom_backward() -> None:
    section = _section(Cause.CUSTOM_BACKWARD)
    assert "```pycon" in section and "'custom-backward')" in section  # run by test_pycon_examples_run


@pytest.mark.parametrize("example", console_examples(PAGE), ids=lambda e: e.id)
def test_console_example_prints_what_the_page_shows(example) -> None:
    rc, out = run_cli(example.argv)
    assert rc == (0 if "cause: agree" in out else 1), out  # 1: the gradients disagree; never 2 (bad input)
    missing = missing_lines(example.expected, out)
    assert missing == [], (
        f"docs/causes.md shows lines that `{example.command}` no longer prints; first missing:\n"
        f"{missing[0]}\n\nthe command prints:\n{out}"
    )


def test_pycon_examples_run() -> None:
    result = run_pycon(PAGE)
    assert result.attempted > 0
    assert result.failed == 0, "a doctest in docs/causes.md failed (see the captured output)"


def test_page_ends_with_summary_and_exercises() -> None:
    headings = re.findall(r"^## (.+)$", read(PAGE), re.MULTILINE)
    assert headings[-2:] == ["Summary", "Exercises"]
    exercises = read(PAGE).split("## Exercises", 1)[1]
    assert 2 <= len(re.findall(r"^\d+\. ", exercises, re.MULTILINE)) <= 3


def test_report_links_point_at_this_page() -> None:
    rc, out = run_cli(["compare", "x*detach(x**2)", "--at", "x=3"])
    assert "more: docs/causes.md#detach" in out
    assert "detach" in anchors(PAGE)
