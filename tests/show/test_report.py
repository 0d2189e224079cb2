"""Reports: terminal text (golden files), markdown and HTML, for catalogue comparisons.

`str(comparison)` is compared exactly with `tests/golden/reports/<case>.txt` (rewrite with
`SYMGRAD_ACCEPT=1` and review the diff); the structural tests then check, from the records, what
every report must show: the three values side by side, the cause id, the explanation and hint,
the page of the cause, and the generated program with the cited line marked.
"""

from __future__ import annotations

import html
import re
from fractions import Fraction
from html.parser import HTMLParser

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from cases import BY_NAME, Case, Point
from symgrad import Cause
from symgrad.show.report import number

# (case, why of the point) -> the primary cause the report must show. One per kind of report:
# a kink, a cut (detach), a floating-point trap, an overflow with an agreeing second entry, and a
# graph break where torch raised.
REPORTS: dict[str, tuple[str, str]] = {
    "relu": ("on-kink", "kink"),
    "detach": ("inside", "detach"),
    "pw_sqrt_where": ("nan-trap", "nan-trap"),
    "logsumexp": ("overflow", "overflow"),
    "pw_item_if": ("inside", "graph-break"),
}


def _point(case: Case, why: str) -> Point:
    points = [p for p in case.points if p.why == why]
    if case.name == "pw_item_if":
        points = [p for p in points if p.at["x"] < 0]  # the point where torch raises
    assert len(points) == 1, (case.name, why)
    return points[0]


def comparison(name: str) -> sg.Comparison:
    case = BY_NAME[name]
    point = _point(case, REPORTS[name][0])
    symbols = {s.name: s for s in case.expr.free_symbols}
    at = {symbols[k]: v for k, v in point.at.items()}
    return sg.compare(case.expr, at=at, branches=case.branches, dtype=case.dtype)


@pytest.fixture(scope="module", params=sorted(REPORTS))
def named(request: pytest.FixtureRequest) -> tuple[str, sg.Comparison]:
    return request.param, comparison(request.param)


def _symbolic_cell(e: sg.Entry) -> str:
    if e.grad_symbolic is not None:
        return number(e.grad_symbolic)
    if e.one_sided is not None:
        return f"none ({number(e.one_sided[0])} | {number(e.one_sided[1])})"
    return "none"


def _autograd_cell(e: sg.Entry) -> str:
    if e.grad_autograd is None:
        return "torch raised"
    return repr(e.grad_autograd)


# ---------------------------------------------------------------- text


def test_text_report_is_its_golden_file(named: tuple[str, sg.Comparison], golden) -> None:
    name, c = named
    golden(f"reports/{name}.txt", str(c))


def test_the_cause_is_the_expected_one(named: tuple[str, sg.Comparison]) -> None:
    name, c = named
    assert c.cause.id == REPORTS[name][1]
    assert f"\ncause: {c.cause.id}: {c.cause.title}\n" in str(c)


def test_three_values_side_by_side(named: tuple[str, sg.Comparison]) -> None:
    _, c = named
    lines = str(c).split("\n")
    header = next(i for i, line in enumerate(lines) if line.startswith("wrt "))
    assert re.split(r"\s{2,}", lines[header]) == ["wrt", "symbolic", "executed", "autograd", "cause"]
    for k, e in enumerate(c.entries):
        cells = re.split(r"\s{2,}", lines[header + 1 + k].strip())
        cause = e.cause.id + (f" (also {', '.join(a.id for a in e.also)})" if e.also else "")
        assert cells == [sp.sstr(e.wrt), _symbolic_cell(e), number(e.grad_executed), _autograd_cell(e), cause]


def test_each_disagreement_has_its_explanation_hint_and_page(named: tuple[str, sg.Comparison]) -> None:
    _, c = named
    text = str(c)
    for e in c.entries:
        if e.ok:
            continue
        assert e.explanation and e.hint
        assert f"{sp.sstr(e.wrt)}: [{e.cause.id}] {e.explanation}\n" in text
        assert f"\n   hint: {e.hint}\n" in text
        assert f"\n   more: docs/causes.md#{e.cause.id}\n" in text
        assert e.node is not None
        if e.cause is not Cause.ROUNDING:  # rounding names the cancelling subexpression instead
            assert f"`{e.node}`" in e.explanation


def test_the_cited_line_is_marked(named: tuple[str, sg.Comparison]) -> None:
    _, c = named
    text = str(c)
    assert "generated program (cited lines marked >):" in text
    source = c.lowered.source.split("\n")
    for e in c.entries:
        if e.ok:
            continue
        assert e.line is not None, "a disagreement cites a line"
        assert f"(line {e.line})" in e.explanation
        width = len(str(len(c.lowered.source.splitlines())))
        marked = f"> {str(e.line).rjust(width)} | {source[e.line - 1]}"
        assert marked in text.split("\n"), f"line {e.line} is not marked:\n{text}"
    marked_lines = [line for line in text.split("\n") if line.startswith("> ")]
    assert len(marked_lines) == len({e.line for e in c.entries if not e.ok})


def test_the_executed_path_is_shown(named: tuple[str, sg.Comparison]) -> None:
    _, c = named
    text = str(c)
    assert "\nexecuted path:\n" in text
    assert re.search(r"^  line \d+: ", text.split("\nexecuted path:\n", 1)[1], re.MULTILINE)


def test_an_agreeing_report_marks_nothing() -> None:
    x = sp.Symbol("x")
    text = str(sg.compare(x**2, at={x: 3.0}))
    assert "\ngenerated program:\n" in text
    assert not any(line.startswith("> ") for line in text.split("\n"))
    assert "cause: agree: all three derivatives agree" in text


def test_the_torch_error_is_quoted_not_raised() -> None:
    c = comparison("pw_item_if")
    e = c.entries[0]
    assert e.grad_autograd is None and e.autograd_error
    assert "element 0 of tensors does not require grad" in e.autograd_error
    assert "\n   torch said: RuntimeError: element 0 of tensors does not require grad" in str(c)


# ---------------------------------------------------------------- markdown


def test_markdown_has_a_table_and_links_to_the_cause(named: tuple[str, sg.Comparison]) -> None:
    _, c = named
    md = c.to_markdown()
    assert "| wrt | symbolic | executed | autograd | cause |\n|---|---|---|---|---|\n" in md
    for e in c.entries:
        row = (f"| `{sp.sstr(e.wrt)}` | `{_symbolic_cell(e)}` | `{number(e.grad_executed)}` | "
               f"`{_autograd_cell(e)}` |")
        assert row in md, f"no row {row!r} in\n{md}"
        assert f"(docs/causes.md#{e.cause.id})" in md
        if not e.ok:
            assert e.explanation in md and e.hint in md
    assert f"**{c.cause.id}**" in md
    assert "```python\n" in md


# ---------------------------------------------------------------- HTML


class _Tree(HTMLParser):
    """Elements with their attributes and text; checks that tags nest."""

    VOID = {"br", "img", "hr", "meta", "input", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.elements: list[tuple[str, dict[str, str | None], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append((tag, dict(attrs), []))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1][0] if self.stack else None}"
        name, attrs, text = self.stack.pop()
        content = "".join(text)
        self.elements.append((name, attrs, content))
        if self.stack:
            self.stack[-1][2].append(content)

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.stack[-1][2].append(data)


def parse_html(text: str) -> _Tree:
    tree = _Tree()
    tree.feed(text)
    tree.close()
    assert tree.stack == [], f"unclosed tags: {[t for t, _, _ in tree.stack]}"
    return tree


def _classes(attrs: dict[str, str | None]) -> set[str]:
    return set((attrs.get("class") or "").split())


def test_html_parses_and_marks_the_cited_line(named: tuple[str, sg.Comparison]) -> None:
    _, c = named
    tree = parse_html(c._repr_html_())
    outer = [a for t, a, _ in tree.elements if "symgrad-comparison" in _classes(a)]
    assert len(outer) == 1 and outer[0].get("data-cause") == c.cause.id
    source = c.lowered.source.split("\n")
    cited = [(a, text) for t, a, text in tree.elements if "symgrad-cited" in _classes(a)]
    lines = {e.line for e in c.entries if not e.ok}
    assert {int(a["data-line"]) for a, _ in cited} == lines  # type: ignore[arg-type]
    for attrs, text in cited:
        n = int(attrs["data-line"])  # type: ignore[arg-type]
        assert text.endswith(source[n - 1]), "the cited element holds its line, unescaped by the parser"
    headers = [text for t, _, text in tree.elements if t == "th"]
    assert headers == ["wrt", "symbolic", "executed", "autograd", "cause"]


def test_html_escapes_user_text() -> None:
    c = comparison("pw_sqrt_where")
    raw = c._repr_html_()
    assert "x > 0" not in raw and "x &gt; 0" in raw
    tree = parse_html(raw)
    code = [text for t, a, text in tree.elements if t == "code"]
    assert "Piecewise((sqrt(x), x > 0), (0, True))" in code


def test_html_shows_the_three_values_and_the_explanation(named: tuple[str, sg.Comparison]) -> None:
    _, c = named
    tree = parse_html(c._repr_html_())
    cells = [text for t, _, text in tree.elements if t == "td"]
    for e in c.entries:
        for value in (_symbolic_cell(e), number(e.grad_executed), _autograd_cell(e)):
            assert value in cells
    paragraphs = " ".join(text for t, a, text in tree.elements if "symgrad-explanation" in _classes(a))
    for e in c.entries:
        if not e.ok:
            assert e.explanation.replace("`", "") in paragraphs.replace("`", "")


def test_html_renders_code_spans_and_explains_the_cause_inline() -> None:
    c = comparison("pw_sqrt_where")
    raw = c._repr_html_()
    tree = parse_html(raw)
    paragraphs = [text for t, a, text in tree.elements if "symgrad-explanation" in _classes(a)]
    assert all("`" not in p for p in paragraphs)
    # The cause's meaning is in the page: a relative link would break in the user's notebook.
    assert "href=" not in raw
    meanings = [text for t, a, text in tree.elements if "symgrad-meaning" in _classes(a)]
    assert meanings == [f"What nan-trap means. {sg.Cause.NAN_TRAP.meaning}"]


# ---------------------------------------------------------------- readability problems found


def test_a_decimal_point_is_shown_as_typed() -> None:
    x = sp.Symbol("x")
    head = str(sg.compare((1 - sp.cos(x)) / x**2, at={x: 1e-4})).split("\n")[0]
    assert head.startswith("symgrad: (1 - cos(x))/x**2 at x = 0.0001  (")


def test_a_small_relative_error_is_not_rounded_to_zero() -> None:
    x = sp.Symbol("x")
    c = sg.compare(2 * sp.sin(x / 2) ** 2 / x**2, at={x: 1e-4})
    assert c.cause is Cause.ROUNDING
    assert "off by 0.0%" not in c.entries[0].explanation


def test_an_infinite_slope_is_not_called_undefined() -> None:
    x = sp.Symbol("x")
    e = sg.compare(sp.sqrt(x), at={x: 0.0}).entries[0]
    assert e.cause is Cause.DOMAIN
    assert "not defined in the real numbers" not in e.explanation


def test_the_domain_hint_names_the_domain_of_the_node() -> None:
    x = sp.Symbol("x")
    assert "all reals" not in sg.compare(1 / x, at={x: 0.0}).entries[0].hint
    assert "integer powers" not in sg.compare(sp.sqrt(x), at={x: -1.0}).entries[0].hint


def test_the_kink_hint_orders_the_slopes() -> None:
    x = sp.Symbol("x")
    hint = sg.compare(sp.Min(x, 2), at={x: 2.0}).entries[0].hint
    assert "between 0 and 1" in hint


def test_the_graph_break_explanation_says_it_once() -> None:
    e = comparison("pw_item_if").entries[0]
    assert not ("nothing on the path to the output is on the graph" in e.explanation
                and "Nothing that reaches the output is on the graph" in e.explanation)


def test_the_overflow_explanation_reads_well_when_autograd_is_inf() -> None:
    x = sp.Symbol("x")
    e = sg.compare(sp.exp(x), at={x: 710.0}).entries[0]
    assert e.cause is Cause.OVERFLOW
    assert "turned into inf" not in e.explanation


# Found while writing docs/tutorial-linear-algebra.md: reports of non-scalar outputs and Hessians.
# The table labels rows by `wrt` only, so a Jacobian (or a Hessian) shows the same label on
# several rows with different values, and the `value:` line of a matrix output spans several
# lines (SymPy's and numpy's multi-line reprs).


def _row_labels(report: str) -> list[str]:
    """What identifies each row of the report's table: the text left of the symbolic column."""
    lines = report.splitlines()
    top = next(i for i, line in enumerate(lines) if "symbolic" in line and "autograd" in line)
    at = lines[top].index("symbolic")
    rows = []
    for line in lines[top + 1 :]:
        if not line.strip():
            break
        rows.append(line[:at].strip())
    return rows


def test_a_jacobian_report_says_which_output_each_row_is() -> None:
    x0, x1, x2 = sp.symbols("x0 x1 x2")
    c = sg.compare(sp.Matrix([x0 * x1, x1 + x2**2]), at={x0: 1.0, x1: 2.0, x2: 3.0})
    labels = _row_labels(str(c))
    assert len(labels) == len(c.entries) == 6
    assert len(set(labels)) == 6, labels


def test_a_hessian_report_says_which_row_each_entry_is() -> None:
    x0, x1 = sp.symbols("x0 x1")
    c = sg.compare(x0**2 * x1 + sp.sin(x0 * x1), at={x0: 1.0, x1: 2.0}, order=2)
    labels = _row_labels(str(c))
    assert len(labels) == len(c.entries) == 4
    assert len(set(labels)) == 4, labels


def test_the_value_of_a_matrix_output_is_one_line() -> None:
    x0, x1, x2 = sp.symbols("x0 x1 x2")
    report = str(sg.compare(sp.Matrix([x0 * x1, x1 + x2**2]), at={x0: 1.0, x1: 2.0, x2: 3.0}))
    value = next(line for line in report.splitlines() if line.startswith("value:"))
    assert "autograd's forward" in value, report.split("\n\n")[0]


@pytest.mark.parametrize("power", [400, 5000, 20000])
def test_huge_integers_print_rounded_without_the_int_string_limit(power: int) -> None:
    import sys

    x = sp.Symbol("x")
    limit = sys.get_int_max_str_digits()
    c = sg.compare(x * sp.Integer(10) ** power, at={x: 1.0})
    assert sys.get_int_max_str_digits() == limit
    text, md, page = str(c), c.to_markdown(), c._repr_html_()
    rounded = f"1.0000000000000000e+{power}"
    for shown in (text, md):
        assert rounded in shown
        assert "0" * 100 not in shown  # no thousand-digit numbers
    assert rounded in html.unescape(page)
    assert c.cause.id == "overflow"
    assert c.entries[0].grad_symbolic == sp.Integer(10) ** power  # the record stays exact
    assert abs(c.entries[0].grad_executed / sp.Integer(10) ** power - 1) < sp.Float("1e-17")
    assert f"1.0e+{power}" in c.lowered.source
    assert number(sp.Rational(-(10**power), 3)) == f"-3.3333333333333333e+{power - 1}"
    assert number(sp.Integer(10) ** power) == rounded


_BIG, _SMALL = sp.Integer(2) ** 5000, sp.Rational(1, 3 ** 4000)


def _huge_cases() -> list[tuple[sp.Basic, dict[sp.Symbol, float]]]:
    x = sp.Symbol("x")
    return [
        (_SMALL * x**2, {x: 3.0}),                                          # agree
        (_SMALL * sp.Abs(x), {x: 0.0}),                                     # kink: one-sided +-3**-4000
        (_SMALL * sp.Max(x, 0) + x * sg.detach(x) * _SMALL, {x: 0.0}),     # kink and a cut
        (x * sg.detach(_SMALL * x), {x: 2.0}),                              # detach
        (_BIG * x, {x: 1e-300}),                                            # overflow
        (sp.Piecewise((_SMALL * x, x > 0), (_BIG * x, True)), {x: 0.0}),   # control-flow, one-sided 2**5000
        (sp.floor(x) * _SMALL, {x: 1.0}),                                   # jump
        (sp.sqrt(x) * _SMALL, {x: 0.0}),                                    # domain
    ]


@pytest.mark.parametrize("k", range(8))
def test_huge_exact_numbers_print_rounded_everywhere(k: int) -> None:
    """2**5000 and 3**-4000 (1,506 and 1,909 digits): every text a person reads (the report, its
    markdown and HTML, each explanation and hint, the test helper's message) and every record's
    repr (Entry, its one-sided pair, the executed path, the backward pass) prints them rounded to
    17 digits, never in full; the records keep the exact values. Before, the one-sided pair and
    the reprs of the executed path and the backward pass printed all 1,909 digits."""
    from symgrad.testing import assert_grad_matches_math

    f, at = _huge_cases()[k]
    c = sg.compare(f, at=at)
    texts = {"str": str(c), "markdown": c.to_markdown(), "html": html.unescape(c._repr_html_()),
             "derivation": str(c.derivation()), "path": repr(c.executed_path), "backward": repr(c.backward)}
    for n, e in enumerate(c.entries):
        texts[f"entry {n}"] = repr(e) + "\n" + e.explanation + "\n" + e.hint
        texts[f"one-sided {n}"] = repr(e.one_sided) + str(e.one_sided)
    try:
        assert_grad_matches_math(f, at)
    except AssertionError as err:
        texts["helper"] = str(err)
    for name, text in texts.items():
        longest = max((len(w) for w in re.split(r"[\s,;()\[\]{}<>|=*`/]+", text)), default=0)
        assert longest <= 60, f"{name}: a word of {longest} characters (a number printed in full?)"
        if name != "html":  # the HTML page is markup on few lines: its words are what counts
            assert max(len(line) for line in text.splitlines()) <= 3000, name
    for e in c.entries:  # the values themselves stay exact
        if e.one_sided is not None:
            assert e.one_sided == tuple(e.one_sided) and all(v.is_Rational for v in e.one_sided)
    if k == 1:
        (e,) = c.entries
        assert e.one_sided == (-_SMALL, _SMALL)
        assert "3.2732646578712559e-1909" in repr(e.one_sided)
        assert abs(sp.Float("3.2732646578712559e-1909", 30) / sp.N(_SMALL, 30) - 1) < 1e-16  # the rounding is right


def test_floor_of_a_huge_exp_prints() -> None:
    """exp(1e4) has 4,343 digits before the point; floor() of it is a 4,343-digit integer.
    (At 1e8 the exact engine itself takes minutes: see the engine's own issue.)"""
    x = sp.Symbol("x")
    c = sg.compare(sp.floor(sp.exp(x)), at={x: 1e4})
    text = str(c)
    assert "e+4342" in text and c.cause.id == "overflow"
    assert "0" * 100 not in text


def test_numbers_read_as_the_floats_they_are() -> None:
    from symgrad.show.report import number

    assert number(sp.Rational(3.888784)) == "3.888784"  # not 3.8887839999999998
    assert number(sp.Float(3.888784)) == "3.888784"
    assert number(sp.Rational(13421773, 67108864)) == "0.20000000298023224"  # float32's 0.1, doubled
    # Exact but no float64: 17 significant digits, so it is not mistaken for the float -1.275.
    assert number(sp.Rational(-183746864796716235, 144115188075855872)) == "-1.2750000000000000"
    assert number(sp.Rational(10**30 + 1, 3**40)) == "82252633399.699591"  # not a float64: 17 digits
    # A long rational of ordinary size reads as Python prints its floats, in fixed notation.
    assert number(sp.Rational(309485216144761799957201289, 618970019642690137449562112)) == "0.50000033333345749"
    assert number(sp.Rational(1, 10**400 + 7)) == "1.0000000000000000e-400"


def test_numbers_are_decimals_with_the_short_fraction_beside() -> None:
    """Issue 21, item 17: a decimal a student reads at once, and the fraction beside it where
    that is short; integers stay integers; floats are their shortest decimal."""
    from flint import arb, fmpq

    assert number(sp.Rational(75, 4)) == "18.75 (75/4)"
    assert number(sp.Integer(27)) == "27" and number(27) == "27" and number(sp.Integer(-3)) == "-3"
    assert number(sp.Rational(1, 3)) == "0.33333333333333333 (1/3)"  # never ends: 17 digits
    assert number(sp.Rational(-2, 3)) == "-0.66666666666666667 (-2/3)"
    assert number(sp.Rational(3, 4)) == "0.75 (3/4)" and number(sp.Rational(1, 2)) == "0.5 (1/2)"
    assert number(sp.Rational(1, 5)) == "0.2 (1/5)"  # ends, though no float64 is 1/5 exactly
    assert number(sp.Rational(12345678901, 100000)) == "123456.78901"  # exact; the fraction is long
    assert number(2.7) == "2.7" and number(sp.Float(2.7)) == "2.7" and number(sp.Rational(2.7)) == "2.7"
    assert number(fmpq(75, 4)) == "18.75 (75/4)" and number(fmpq(9)) == "9"  # the exact engine's own numbers
    assert number(arb(2).sqrt()) == "1.414213562373095"  # a ball: its certain digits
    assert number(None) == "none"


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**12), 10**12), st.integers(1, 10**12))
def test_a_number_reads_back_as_the_value_it_shows(p: int, q: int) -> None:
    """Whatever the rational, the text is its decimal (exact where it ends within 17 digits, the
    float64 it is exactly, else its 17-digit rounding), and a fraction beside it is the value itself."""
    from decimal import Decimal

    v = Fraction(p, q)
    text = number(sp.Rational(p, q))
    if v.denominator == 1:
        assert text == str(v.numerator)
        return
    shown, _, beside = text.partition(" (")
    if beside:
        assert beside.endswith(")") and Fraction(beside[:-1]) == v and len(beside[:-1]) <= 12
    else:
        assert len(f"{v.numerator}/{v.denominator}") > 12
    d = Fraction(Decimal(shown))
    if d != v and not (float(v) == float(d) and Fraction(float(v)) == v):  # the float64 it is, exactly
        digits = len(shown.lstrip("-").split("e")[0].replace(".", "").lstrip("0"))
        assert digits == 17, text
        exponent = Decimal(shown).adjusted()
        assert abs(d - v) <= Fraction(10) ** (exponent - 16) / 2, text  # rounded to 17 significant digits


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_is_its_shortest_decimal(f: float) -> None:
    assert number(f) == repr(f) and float(number(f)) == f
    if not f.is_integer():  # an exact integer stays an integer (27, not 27.0)
        assert number(sp.Rational(f)).partition(" (")[0] == repr(f)  # the exact value of a float64


def test_every_table_and_headline_uses_the_one_spelling() -> None:
    """x*detach(x**2) at 2.5: the table, the value headline, the explanation, the executed path,
    markdown and HTML all write 18.75 (75/4) and 6.25 (25/4), not the fraction alone."""
    x = sp.Symbol("x")
    c = sg.compare(x * sg.detach(x**2), at={x: 2.5})
    (e,) = c.entries
    assert (e.grad_symbolic, e.grad_executed, e.grad_autograd) == (sp.Rational(75, 4), sp.Rational(25, 4), 6.25)
    text = str(c)
    assert "value: exact 15.625 (125/8), autograd's forward 15.625" in text
    row = next(line for line in text.splitlines() if line.startswith("x "))
    assert row.split("  ")[0] == "x" and "18.75 (75/4)" in row and "6.25 (25/4)" in row
    assert "what ran: 6.25 (25/4) instead of 18.75 (75/4)." in e.explanation
    assert "x_pow_2 = x**2 -> 6.25 (25/4)" in text and "-> 15.625 (125/8)" in text
    assert "| `18.75 (75/4)` | `6.25 (25/4)` |" in c.to_markdown()
    assert "18.75 (75/4)" in html.unescape(c._repr_html_())
    assert not re.search(r"(?<![(\d./])75/4(?!\))", text)  # never the fraction alone
    # Floats: the point 2.7 and its exact square as the float64 nearest reads back.
    c27 = sg.compare(x * sg.detach(x), at={x: 2.7})
    (e27,) = c27.entries
    assert "its value 2.7 as a constant" in e27.explanation  # not 2.7000000000000002
    assert "2.7000000000000002" not in str(c27)


def test_over_20_entries_a_summary_and_the_full_table_on_request() -> None:
    ws = sp.symbols("w0:25")
    c = sg.compare(sum(sp.Abs(w) for w in ws), at={w: (0.0 if k % 5 == 0 else 1.0) for k, w in enumerate(ws)})
    text = str(c)
    assert "25 entries: 5 kink, 20 agree" in text
    assert "showing 5 that disagree, the most severe first; c.report(full=True)" in text
    rows = [line.split()[0] for line in text.splitlines() if re.match(r"^w\d+ ", line)]
    assert rows == ["w0", "w5", "w10", "w15", "w20"]
    full = c.report(full=True)
    assert "25 entries" not in full
    assert [line.split()[0] for line in full.splitlines() if re.match(r"^w\d+ ", line)] == [f"w{k}" for k in range(25)]
    small = sg.compare(sp.Abs(ws[0]), at={ws[0]: 0.0})
    assert small.report() == str(small) == small.report(full=True)


def test_a_float32_point_shows_what_float32_made_of_each_decimal() -> None:
    """The headline keeps the decimal typed (0.1); under it, the float32 the tensor holds with all
    its decimals, and that number as a fraction: the point all three sides are evaluated at."""
    x, y = sp.symbols("x y")
    c = sg.compare(x * y, at={x: 0.1, y: 2.0}, dtype="float32")
    text = str(c)
    assert "x*y at x = 0.1, y = 2.0  (float32" in text
    assert "  x = 0.1 is held as 0.100000001490116119384765625 = 13421773/134217728\n" in text
    assert "  y = 2.0" not in text  # 2 is a float32 number: nothing was rounded
    md = c.to_markdown()
    assert "- `x = 0.1 is held as 0.100000001490116119384765625 = 13421773/134217728`" in md
    page = html.unescape(c._repr_html_())
    assert "x = 0.1 is held as 0.100000001490116119384765625 = 13421773/134217728" in page
    assert c.point[x] == sp.Rational(13421773, 134217728)  # the record is exact


def test_a_float32_matrix_point_names_its_rounded_elements_and_counts_the_rest() -> None:
    X = sp.MatrixSymbol("X", 2, 3)
    c = sg.compare(sp.Trace(X * X.T), at={X: [[0.1, 0.5, 0.2], [0.3, 1.0, 0.7]]}, dtype="float32")
    rows = [line for line in str(c).splitlines() if line.startswith("  X[") or line.startswith("  ...")]
    assert rows == [
        "  X[0, 0] = 0.1 is held as 0.100000001490116119384765625 = 13421773/134217728",
        "  X[0, 2] = 0.2 is held as 0.20000000298023223876953125 = 13421773/67108864",
        "  X[1, 0] = 0.3 is held as 0.300000011920928955078125 = 5033165/16777216",
        "  X[1, 2] = 0.7 is held as 0.699999988079071044921875 = 11744051/16777216",
    ]
    many = sg.compare(sum(sp.symbols("a0:6")), at={f"a{k}": 0.1 * (k + 1) for k in range(6)}, dtype="float32")
    assert "  ... and 1 more inputs rounded to float32" in str(many)


def test_a_tiny_float32_point_is_shown_to_17_digits_and_as_its_fraction() -> None:
    from symgrad.show.report import _exact_decimal

    v = sp.Rational(332307, 2**118)  # float32's 1e-30: 118 decimals, too many to spell out
    assert _exact_decimal(v) == "1.0000000031710769e-30"
    assert _exact_decimal(sp.Rational(-13421773, 134217728)) == "-0.100000001490116119384765625"
    assert _exact_decimal(sp.Integer(3)) == "3"


@pytest.mark.parametrize("v", [0.01, 0.1, 3.0, 123.456, 0.5, 2.0**-30, 0.3, 1e-3, 7e-5])
def test_a_float32_point_is_shown_with_all_its_decimals(v: float) -> None:
    """`x = 0.01 is held as 0.00999999977648258209228515625`: every decimal of the float32, the
    leading zeros too (they were once dropped, printing 0.9999...), and exactly its value."""
    import numpy as np

    from symgrad.show.report import _exact_decimal

    f = float(np.float32(v))
    r = sp.Rational(*Fraction(f).as_integer_ratio())
    text = _exact_decimal(r)
    if "e" not in text:  # at most 40 significant digits: all of them
        assert Fraction(text) == Fraction(f)
        assert Fraction(_exact_decimal(-r)) == -Fraction(f)
    else:
        assert float(text) == f
    if v == 0.01:
        assert text == "0.00999999977648258209228515625"
