"""Reports of comparisons over matrices stay a page (issue 20, item 5).

A comparison over matrices has one entry per element; one finding (an overflow at one line, the
kink of one relu) decides many of them. `str(c)`, `to_markdown()`, `_repr_html_()`,
`GradientMismatch`'s message and the fidelity check's sentence say each finding once with the
elements it reaches, write a matrix of more than a dozen values by its shape and extremes, and stay
under 20,000 characters; `to_dict()` keeps every entry.

The truths here are computed independently of symgrad: the elements a relu tie reaches from the
chosen point (a tie at (X*W)[i, j] = 0 reaches W[k, j] exactly where X[i, k] != 0), the extremes of
X @ W with exact rationals, and autograd's values from torch itself.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symgrad as sg
from symgrad.frontends import torch_names as tn
from symgrad.program.extremes import extremes
from symgrad.program.program import number
from symgrad.show.cli import main
from symgrad.verdict.grouping import MAX_FINDINGS, groups

PAGE = 20_000
X = sp.MatrixSymbol("X", 16, 5)
W = sp.MatrixSymbol("W", 5, 3)


# --------------------------------------------------------------------------- the cases


def d2l_softmax_loss(X, W):  # type: ignore[no-untyped-def]
    """D2L's softmax from scratch, inlined, and its cross-entropy summed over the batch."""
    X_exp = torch.exp(X @ W)
    partition = X_exp.sum(1, keepdim=True)
    y_hat = X_exp / partition
    return -torch.log(y_hat).sum()


def _softmax_point() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 5)) * 100, rng.normal(size=(5, 3)) * 3


@pytest.fixture(scope="module")
def softmax() -> sg.Comparison:
    xv, wv = _softmax_point()
    return sg.compare(d2l_softmax_loss, at={"X": torch.tensor(xv), "W": torch.tensor(wv)}, wrt=["W"])


# Ties of the relu layer at (X*W)[i, j] = 0: one per chosen row, two in column 1.
TIES = ((2, 0), (7, 1), (11, 2), (13, 1))


def _relu_point() -> tuple[np.ndarray, np.ndarray]:
    """Integers: W[0, :] = 1, and X[i, 0] set so that (X @ W)[i, j] = 0 at each tie."""
    rng = np.random.default_rng(1)
    xv = rng.integers(-3, 4, size=(16, 5)).astype(float)
    wv = rng.integers(-3, 4, size=(5, 3)).astype(float)
    wv[0, :] = 1.0
    for i, j in TIES:
        xv[i, 0] = 0.0
        xv[i, 0] = -(xv[i] @ wv[:, j])
    z = xv @ wv
    assert all(z[i, j] == 0 for i, j in TIES)
    assert sum(1 for v in z.ravel() if v == 0) == len(TIES)  # no tie but the chosen ones
    return xv, wv


def _relu_expr() -> sp.Basic:
    H = (X * W).applyfunc(lambda t: sp.Max(t, 0))
    return (sp.OneMatrix(1, 16) * H * sp.OneMatrix(3, 1))[0, 0]


def _relu_kinks(xv: np.ndarray, wv: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """The truth, from the point alone: each entry a tie reaches, with its one-sided derivatives
    and torch's (relu'(0) = 0), by the rule of the module's docstring (left slope sum of min(a, 0),
    right slope sum of max(a, 0) over the ties the element moves, a its factor)."""
    z = xv @ wv
    out: dict[str, tuple[int, int, int]] = {}
    for k in range(5):
        for j in range(3):
            a = [xv[i, k] for i, jj in TIES if jj == j and xv[i, k] != 0]
            if a:
                smooth = sum(xv[i, k] for i in range(16) if z[i, j] > 0)
                out[f"W[{k}, {j}]"] = (int(smooth + sum(min(v, 0) for v in a)),
                                        int(smooth + sum(max(v, 0) for v in a)), int(smooth))
    for i, j in TIES:
        for k in range(5):
            if wv[k, j] != 0:
                # row i of X reaches the output only through row i of X @ W
                smooth = sum(wv[k, jj] for jj in range(3) if z[i, jj] > 0)
                a = wv[k, j]
                out[f"X[{i}, {k}]"] = (int(smooth + min(a, 0)), int(smooth + max(a, 0)), int(smooth))
    return out


@pytest.fixture(scope="module")
def relu() -> sg.Comparison:
    xv, wv = _relu_point()
    return sg.compare(_relu_expr(), at={X: xv, W: wv}, wrt=[W])


@pytest.fixture(scope="module")
def relu_both() -> sg.Comparison:
    xv, wv = _relu_point()
    return sg.compare(_relu_expr(), at={X: xv, W: wv})


# --------------------------------------------------------------------------- reading a report


def _finding_heads(text: str) -> list[tuple[str, str]]:
    """(heading, cause) of each finding said in full in a terminal report."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^(\S.*?): \[([a-z-]+)\] ", text, re.M)]


ELEMENT = re.compile(r"\b[A-Za-z_]\w*\[\d+, \d+\]|\bw\d+\b")


def _listed(head: str) -> tuple[list[str], int, int | None]:
    """The elements a heading names, how many more it counts, and the total it states."""
    names_part = head.split(" (", 1)[0]
    more = re.search(r" and (\d+) more$", names_part)
    total = re.search(r"\((\d+) entries", head)
    return ELEMENT.findall(names_part), int(more.group(1)) if more else 0, int(total.group(1)) if total else None


def _truth_by_cause(c: sg.Comparison) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in c.entries:
        if not e.ok:
            out.setdefault(e.cause.id, set()).add(sp.sstr(e.wrt))
    return out


# --------------------------------------------------------------------------- the tests


def test_the_relu_ties_reach_exactly_the_entries_the_point_says_with_torchs_gradient(relu_both: sg.Comparison) -> None:
    """The ground truth the report tests stand on: the kinks are where the chosen ties are, with
    the one-sided derivatives of the module's rule; autograd is torch's own relu gradient."""
    xv, wv = _relu_point()
    truth = _relu_kinks(xv, wv)
    got = {sp.sstr(e.wrt): e for e in relu_both.entries if e.cause is sg.Cause.KINK}
    assert set(got) == set(truth)
    for name, (left, right, torch_value) in truth.items():
        assert got[name].one_sided == (left, right), name
        assert got[name].grad_executed == torch_value
    tx, tw = torch.tensor(xv, requires_grad=True), torch.tensor(wv, requires_grad=True)
    torch.relu(tx @ tw).sum().backward()
    for e in relu_both.entries:
        m = re.fullmatch(r"([XW])\[(\d+), (\d+)\]", sp.sstr(e.wrt))
        assert m is not None
        grad = (tx if m.group(1) == "X" else tw).grad
        assert e.grad_autograd == float(grad[int(m.group(2)), int(m.group(3))])


@pytest.mark.parametrize("case", ["softmax", "relu", "relu_both"])
def test_every_view_of_a_large_comparison_is_a_page(case: str, request: pytest.FixtureRequest) -> None:
    c = request.getfixturevalue(case)
    for text in (str(c), c.to_markdown(), c._repr_html_(), c.report()):
        assert len(text) < PAGE
    assert len(c.to_dict()["entries"]) == len(c.entries)  # the machine-readable form keeps everything
    assert [d["explanation"] for d in c.to_dict()["entries"]] == [e.explanation for e in c.entries]


def test_each_kink_is_said_once_naming_exactly_the_elements_it_reaches(relu: sg.Comparison) -> None:
    """wrt W: each relu tie's finding once, its heading naming every W[k, j] it reaches; the
    headings together name exactly the entries whose cause is kink."""
    xv, wv = _relu_point()
    truth = {n for n in _relu_kinks(xv, wv) if n.startswith("W")}
    assert _truth_by_cause(relu) == {"kink": truth}
    text = str(relu)
    heads = _finding_heads(text)
    named: list[str] = []
    for head, cause in heads:
        names, more, _ = _listed(head)
        assert cause == "kink" and more == 0
        named += names
    assert sorted(named) == sorted(truth)  # each element once, and no other
    # Each tie's node is explained once: one finding per relu node, the sentence once per finding.
    # One finding per relu node an entry cites (two ties in column 1: its entries cite one of them).
    nodes = {e.node for e in relu.entries if not e.ok}
    assert text.count("is exactly on its corner at this point") == len(heads) == len(groups(relu)) == len(nodes)


def test_a_cut_table_shows_the_disagreeing_rows_and_says_where_the_rest_are(relu_both: sg.Comparison) -> None:
    text = str(relu_both)
    kinks = sum(1 for e in relu_both.entries if e.cause is sg.Cause.KINK)
    n = len(relu_both.entries)
    assert f"{n} entries: {kinks} kink, {n - kinks} agree" in text
    assert f"{n - 10} rows not shown ({n - kinks} of them agree): every entry is in `c.entries` and `c.to_dict()`" in text
    rows = [m.group(0) for line in text.splitlines() if (m := re.match(r"^[XW]\[\d+, \d+\](?= {2,})", line))]
    assert len(rows) == 10 and all(r in _truth_by_cause(relu_both)["kink"] for r in rows)
    # Per input tensor: shape, counts by cause, the worst few.
    w_kinks = sum(1 for e in relu_both.entries if e.cause is sg.Cause.KINK and sp.sstr(e.wrt).startswith("W"))
    def counted(n: int, k: int) -> str:
        return f"{n} entries, {k} kink" + (f", {n - k} agree" if n > k else "")

    assert f"by input: W (5x3): {counted(15, w_kinks)}; worst " in text
    assert f"by input: X (16x5): {counted(80, kinks - w_kinks)}; worst " in text
    # The headings count their elements: named + "and N more" = the stated total = the finding's entries.
    for head, cause in _finding_heads(text):
        names, more, total = _listed(head)
        truth = _truth_by_cause(relu_both)[cause]
        assert set(names) <= truth
        assert total is None or len(names) + more == total
    stated = sum(len(_listed(h)[0]) + _listed(h)[1] for h, _ in _finding_heads(text))
    assert stated == kinks  # every kink entry is reached by exactly one finding said


def test_the_overflow_is_said_once_for_every_element_with_the_matrix_by_its_extremes(softmax: sg.Comparison) -> None:
    """D2L's softmax at large inputs: one overflow at `torch.exp(X @ W)`, said once, reaching every
    element of W; the 16x3 value written by its extremes, which are those of exp(X @ W) computed
    here with exact rationals."""
    text = str(softmax)
    assert {e.cause for e in softmax.entries} == {sg.Cause.OVERFLOW}
    assert _finding_heads(text) == [("every element of W (15 entries; written for W[0, 0], the worst of them; "
                                     "each one's values: `c.entries`)", "overflow")]
    assert text.count("too large for float64") == 1
    xv, wv = _softmax_point()
    z = [[sum(Fraction(xv[i, k]) * Fraction(wv[k, j]) for k in range(5)) for j in range(3)] for i in range(16)]
    flat = [v for row in z for v in row]
    lo, hi = flat.index(min(flat)), flat.index(max(flat))
    m = re.search(r"`torch\.exp\(X @ W\)` \(line \d+\) is \(16x3 matrix: min (\S+) at \[(\d+), (\d+)\], "
                  r"max (\S+) at \[(\d+), (\d+)\]\)", text)
    assert m is not None, text
    assert (int(m.group(2)), int(m.group(3))) == divmod(lo, 3)
    assert (int(m.group(5)), int(m.group(6))) == divmod(hi, 3)
    # exp of the exact extreme, to the 17 digits written.
    for text_value, z_value in ((m.group(1), flat[lo]), (m.group(4), flat[hi])):
        ratio = sp.N(sp.Float(text_value, 30) / sp.exp(sp.Rational(z_value.numerator, z_value.denominator)), 30)
        assert abs(float(ratio) - 1) < 1e-15
    assert float(sp.Float(m.group(4), 30)) == math.inf  # too large for float64: the finding
    for view in (softmax.to_markdown(), softmax._repr_html_()):
        assert view.count("too large for float64") == 1
    # The executed path writes the 16x3 values by their extremes too, never the 48 numbers.
    path = text.split("executed path:")[1]
    assert "(16x3 matrix: min" in path and ";" not in path


def test_many_findings_are_folded_one_line_per_cause_and_each_element_is_still_named_once() -> None:
    """Forty |w_k| at their kinks: forty findings (one node each). The first MAX_FINDINGS are said
    in full, the rest in one line that counts them and names where they reach."""
    ws = sp.symbols("w0:40")
    c = sg.compare(sum(sp.Abs(w) for w in ws), at={w: 0.0 for w in ws})
    text = str(c)
    assert len(text) < PAGE and len(c._repr_html_()) < PAGE and len(c.to_markdown()) < PAGE
    heads = _finding_heads(text)
    assert len(heads) == MAX_FINDINGS
    folded = re.search(r"^(\d+) more kink findings at lines .*, reaching (.*) and (\d+) more \(each one's "
                       r"explanation: `c.entries`\)$", text, re.M)
    assert folded is not None, text
    assert int(folded.group(1)) == 40 - MAX_FINDINGS
    named = [h for h, _ in heads] + ELEMENT.findall(folded.group(2))
    assert len(set(named)) == len(named)
    assert len(named) + int(folded.group(3)) == 40


def test_a_small_comparison_prints_every_row_and_each_finding_for_its_entry() -> None:
    """At most 20 entries: the whole table, no counts, no per-input lines, as before; a finding
    that decides two entries with the same sentence is said once."""
    A = sp.MatrixSymbol("A", 2, 2)
    c = sg.compare(sp.Trace(A.applyfunc(sp.Abs)), at={A: [[0.0, 1.0], [-2.0, 0.0]]})
    text = str(c)
    assert "entries:" not in text and "by input" not in text and "rows not shown" not in text
    assert [m.group(0) for line in text.splitlines() if (m := re.match(r"^A\[\d, \d\](?= {2,})", line))] == \
        ["A[0, 0]", "A[0, 1]", "A[1, 0]", "A[1, 1]"]
    # Both kinks are one finding (one node, the same sentence): said once, naming both.
    assert _finding_heads(text) == [("A[0, 0] and A[1, 1]", "kink")]
    assert text.count("is exactly on its corner") == 1
    assert [sp.sstr(e.wrt) for e in c.entries if not e.ok] == ["A[0, 0]", "A[1, 1]"]


def test_gradient_mismatch_at_n_64_is_a_page() -> None:
    """assert_grad_matches_math on D2L's softmax with a 64-wide layer: 640 entries overflow; the
    message shows the ten worst rows, counts the rest, says the overflow once for all of them and
    writes the 64x5 and 5x64 points by their extremes."""
    rng = np.random.default_rng(0)
    xv, wv = torch.tensor(rng.normal(size=(64, 5)) * 100), torch.tensor(rng.normal(size=(5, 64)) * 3)
    with pytest.raises(sg.GradientMismatch) as info:
        sg.testing.assert_grad_matches_math(d2l_softmax_loss, xv, wv)
    text = str(info.value)
    c = info.value.comparison  # type: ignore[attr-defined]
    assert len(c.entries) == 640 and {e.cause for e in c.entries} == {sg.Cause.OVERFLOW}
    assert len(text) < 5_000
    assert "Mismatched entries: 640 / 640 (100.0%)" in text
    assert "630 more mismatched entries not shown" in text
    assert text.count("too large for float64") == 1
    assert "It reaches every element of X and W (640 entries" in text
    lo = np.unravel_index(np.argmin(xv.numpy()), (64, 5))
    assert f"X = (64x5 matrix: min {number(float(xv.min()))} at [{lo[0]}, {lo[1]}]" in text


def test_the_fidelity_sentence_at_n_64_names_the_first_values_that_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    """A translation that drops a `.detach()` (planted): the gradient of sum(X * X.detach()) is X
    in torch and 2X in the translation, 4,096 values; the sentence counts them and sets the first
    three beside each other (the record keeps them all)."""
    monkeypatch.setitem(tn.SPELLINGS, "Tensor.detach", tn.Spelling("Tensor.detach", "method", sp.Symbol, lambda a, k: a[0]))
    xv = torch.tensor(np.random.default_rng(0).normal(size=(64, 64)))
    with pytest.raises(sg.TraceError) as info:
        sg.trace(_self_detached, xv)
    text = str(info.value)
    assert len(text) < 2_000
    g = xv.numpy().ravel()
    assert "the gradient differs in 4,096 of its 4,096 values: " in text
    for k, name in enumerate(("X[0, 0]", "X[0, 1]", "X[0, 2]")):
        assert f"{name} is {float(g[k])!r} in your function but {float(2 * g[k])!r} in the translation" in text
    assert "and 4,093 more (every value: `.fidelity.grad_user` and `.fidelity.grad_translated`)" in text
    fid = info.value.fidelity  # type: ignore[attr-defined]
    assert fid.grad_user == tuple(float(v) for v in g) and fid.grad_translated == tuple(float(2 * v) for v in g)


def _self_detached(X):  # type: ignore[no-untyped-def]
    Y = X * X.detach()
    return Y.sum()


def test_the_cli_check_of_a_large_model_is_a_page(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.py"
    path.write_text("import torch\n\n\ndef loss(X, W):\n    X_exp = torch.exp(X @ W)\n"
                    "    partition = X_exp.sum(1, keepdim=True)\n    return -torch.log(X_exp / partition).sum()\n")
    xv, wv = _softmax_point()
    assert main(["check", f"{path}:loss", "--at", f"X={xv.tolist()}", "--at", f"W={wv.tolist()}"]) == 1
    out = capsys.readouterr().out
    assert len(out) < PAGE and out.count("too large for float64") == 1
    counted = re.search(r"^95 entries: (\d+) overflow, (\d+) agree$", out, re.M)
    assert counted is not None and int(counted.group(1)) + int(counted.group(2)) == 95
    assert "by input: W (5x3): 15 entries, 15 overflow; worst " in out


# --------------------------------------------------------------------------- extremes


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(3, 6)),
                  elements=st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_extremes_are_numpys(a: np.ndarray) -> None:
    """The shape, the smallest and largest finite values with the first place each is at, and the
    counts of nan, inf and -inf: as numpy computes them."""
    text = extremes(a, number)
    rows, cols = a.shape
    assert text.startswith(f"({rows}x{cols} matrix: ")
    finite = np.isfinite(a)
    counts = {"nan": int(np.isnan(a).sum()), "inf": int(np.isposinf(a).sum()), "-inf": int(np.isneginf(a).sum())}
    said = {kind: int(n) for n, kind in re.findall(r"(?:: |, )(\d+) (nan|inf|-inf)\b", text)}
    assert said == {kind: n for kind, n in counts.items() if n}
    if finite.any():
        vals = np.where(finite, a, np.nan)
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        if lo == hi:
            first = a.ravel()[int(np.flatnonzero(vals.ravel() == lo)[0])]
            assert f"every {'finite value' if not finite.all() else 'value'} {number(float(first))}" in text
        else:
            ilo = np.unravel_index(int(np.flatnonzero(vals.ravel() == lo)[0]), a.shape)
            ihi = np.unravel_index(int(np.flatnonzero(vals.ravel() == hi)[0]), a.shape)
            assert (f"min {number(float(a[ilo]))} at [{ilo[0]}, {ilo[1]}], "
                    f"max {number(float(a[ihi]))} at [{ihi[0]}, {ihi[1]}]") in text
