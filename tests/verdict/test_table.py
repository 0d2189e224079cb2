"""A comparison's entries held as arrays (`verdict/table.py`): the entries built on demand are
the entries `_entry` makes, field by field; the fast path decides only what `_entry` would
decide the same way; the reports read the table without building every entry.

The eager reference is the same comparison with the fast path turned off (every entry through
`_entry`, as before the table); the values are checked against torch's own gradients and, for
a tiny model, against SymPy's exact derivative.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.base.causes import Cause
from symgrad.verdict import compare as compare_module
from symgrad.verdict import table as table_module
from symgrad.verdict.records import Entry


def mlp_relu(W1, b1, W2, X):
    h = torch.relu(X @ W1 + b1)
    return -torch.log_softmax(h @ W2, dim=1)[:, 1].mean()


def mlp_nan(W1, b1, W2, X):
    z = X @ W1 + b1
    h = torch.where(z > 0, torch.sqrt(z), torch.zeros_like(z))
    return torch.log_softmax(h @ W2, dim=1)[:, 0].sum()


def mlp_detach(W1, b1, W2, X):
    z = X @ W1 + b1
    h = torch.relu(z) * torch.sigmoid(z.detach())
    return torch.log_softmax(h @ W2, dim=1)[:, 0].sum()


MODELS = {"relu": mlp_relu, "nan": mlp_nan, "detach": mlp_detach}
FIELDS = ("output", "wrt", "grad_symbolic", "one_sided", "grad_executed", "grad_autograd", "cause", "also", "node",
          "line", "explanation", "hint", "autograd_error", "source")


def _point(seed: int, n: int, d: int, h: int, tie: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, dtype=torch.float64, generator=g)
    W1 = torch.randn(d, h, dtype=torch.float64, generator=g)
    b1 = torch.randn(h, dtype=torch.float64, generator=g) * 0.1
    W2 = torch.randn(h, 2, dtype=torch.float64, generator=g)
    if tie:  # unit 0 of example 0 exactly at its corner (a relu tie, a sqrt at 0)
        W1[:, 0] = 0.0
        W1[0, 0] = 1.0
        b1[0] = -float(X[0, 0])
    return {"W1": W1, "b1": b1, "W2": W2, "X": X}


def _eager(monkeypatch: pytest.MonkeyPatch, fn: Any, at: dict[str, Any]) -> sg.Comparison:
    """The same comparison with every entry made by `_entry` (the fast path off)."""
    with monkeypatch.context() as m:
        m.setattr(compare_module, "plainly_agrees", lambda *a: False)
        return sg.compare(fn, at=at, wrt=["W1", "b1", "W2"])


def _same_entry(a: Entry, b: Entry) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert type(x) is type(y), (name, x, y)
        if isinstance(x, float) and math.isnan(x):
            assert math.isnan(y), name
        else:
            assert x == y, (name, x, y)
    assert (a.formula_of is None) == (b.formula_of is None)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(sorted(MODELS)), seed=st.integers(0, 10**6), n=st.integers(1, 3), d=st.integers(1, 3),
       h=st.integers(1, 3), tie=st.booleans())
def test_entries_built_from_the_table_are_the_eager_entries(monkeypatch: pytest.MonkeyPatch, model: str, seed: int,
                                                             n: int, d: int, h: int, tie: bool) -> None:
    fn = MODELS[model]
    at = _point(seed, n, d, h, tie)
    lazy = sg.compare(fn, at=at, wrt=["W1", "b1", "W2"])
    eager = _eager(monkeypatch, fn, at)
    assert lazy.table is not None and eager.table is not None
    assert lazy.cause is eager.cause and lazy.ok == eager.ok
    # the cause codes say what the entries say, before any is built
    assert lazy.table.counts() == {cause: sum(1 for e in eager.entries if e.cause is cause)
                                   for cause in {e.cause for e in eager.entries}}
    assert len(lazy.entries) == len(eager.entries) == d * h + h + 2 * h
    for a, b in zip(lazy.entries, eager.entries):
        _same_entry(a, b)
    # autograd's column is torch's own gradient
    leaves = {k: v.clone().requires_grad_(k != "X") for k, v in at.items()}
    torch.autograd.backward(fn(**leaves))
    want = [float(v) for k in ("W1", "b1", "W2") for v in leaves[k].grad.reshape(-1)]
    got = [e.grad_autograd for e in lazy.entries]
    assert [repr(v) for v in got] == [repr(v) for v in want]  # NaN where torch's is NaN
    assert str(lazy) == str(eager)
    assert lazy.to_dict() == eager.to_dict()


def test_the_fast_path_takes_plainly_agreeing_entries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ties, NaN traps and cuts go through `_entry`; only agreeing entries are held as arrays."""
    for name, fn in MODELS.items():
        c = sg.compare(fn, at=_point(3, 3, 3, 3, True), wrt=["W1", "b1", "W2"])
        table = c.table
        assert set(table.special) >= set(table.bad()), name
        assert all(int(code) == table_module.AGREE_CODE for i, code in enumerate(table.codes) if i not in table.special)
        if name == "detach":  # a cut on the path: every entry through `_entry`
            assert len(table.special) == len(table)
        assert Cause.AGREE in table.counts() or name == "detach"


def test_agreeing_entries_hold_the_exact_derivative() -> None:
    """A tiny model whose every entry agrees: each entry's exact values are SymPy's derivative of
    the loss written out, at the exact point."""
    at = _point(5, 2, 2, 2, False)
    c = sg.compare(mlp_relu, at=at, wrt=["W1", "b1", "W2"])
    assert c.ok and len(c.table.special) == 0
    q = {k: sp.Matrix(v.numpy().tolist()).applyfunc(sp.Rational) if v.ndim == 2 else
         sp.Matrix([[sp.Rational(float(x)) for x in v.tolist()]]) for k, v in at.items()}
    syms = {k: sp.Matrix(*q[k].shape, lambda i, j: sp.Symbol(f"{k}_{i}_{j}")) for k in ("W1", "b1", "W2")}
    z = q["X"] * syms["W1"] + sp.ones(q["X"].rows, 1) * syms["b1"]
    values = {s: q[k][s_i] for k in syms for s_i, s in enumerate(syms[k])}
    hz = z.subs(values)
    h = sp.Matrix(*z.shape, lambda i, j: z[i, j] if hz[i, j] > 0 else 0)  # relu: the pieces taken at the point
    logits = h * syms["W2"]
    loss = -sum(logits[i, 1] - sp.log(sum(sp.exp(logits[i, j]) for j in range(2))) for i in range(logits.rows)) / logits.rows
    flat = [s for k in ("W1", "b1", "W2") for s in syms[k]]
    for e, s in zip(c.entries, flat):
        truth = sp.diff(loss, s).subs(values)
        assert abs(sp.N(e.grad_executed - truth, 40)) < sp.Float(10) ** -25 * (1 + abs(sp.N(truth, 20)))
        assert abs(sp.N(e.grad_symbolic - truth, 40)) < sp.Float(10) ** -25 * (1 + abs(sp.N(truth, 20)))


@pytest.mark.parametrize("tie", [False, True])
def test_reports_do_not_build_every_entry(monkeypatch: pytest.MonkeyPatch, agreeing_built: list[int],
                                          tie: bool) -> None:
    """ok, cause, repr(), str(), report(), to_markdown() and the HTML read the table: they build
    at most the rows they show (and the first entry's explanation), never the whole tuple; the
    text is the text of the eager comparison."""
    at = _point(7, 4, 6, 5, tie)
    eager = _eager(monkeypatch, mlp_relu, at)
    texts = [str(eager), eager.to_markdown(), eager._repr_html_(), repr(eager)]
    built = agreeing_built
    c = sg.compare(mlp_relu, at=at, wrt=["W1", "b1", "W2"])
    n = len(c.table)
    assert n == 6 * 5 + 5 + 5 * 2 and built[0] == 0
    assert c.ok is (not tie) and c.cause is (Cause.KINK if tie else Cause.AGREE) and built[0] == 0
    assert [str(c), c.to_markdown(), c._repr_html_(), repr(c)] == texts
    assert c.table.built is None  # the tuple was never built
    assert built[0] <= 3 * 11  # at most each report's shown rows and its first explanation
    assert c.to_dict() == eager.to_dict()  # every entry written, each built to be written and not kept
    assert c.table.built is None
    entries = c.entries  # built on first read, then kept
    assert c.entries is entries and c.table.built is entries and len(entries) == n
    before = built[0]
    assert str(c) == texts[0] and built[0] == before


def test_entries_given_anew_replace_the_table() -> None:
    """`dataclasses.replace(c, entries=...)` and `with_fields` with new entries: the record holds
    those entries, and ok, cause and the report read them, not the table they were built from."""
    import dataclasses

    from symgrad.verdict.records import with_fields

    c = sg.compare(mlp_relu, at=_point(2, 2, 2, 2, False), wrt=["W1", "b1", "W2"])
    assert c.ok and c.table is not None
    bad = dataclasses.replace(c.entries[0], cause=Cause.ROUNDING)
    for changed in (dataclasses.replace(c, entries=(bad, *c.entries[1:])), with_fields(c, entries=(bad, *c.entries[1:]))):
        assert changed.table is None and not changed.ok and changed.cause is Cause.ROUNDING
        assert "1 rounding" in str(changed) or "rounding" in str(changed)
    kept = with_fields(c, title="same entries")  # the entries already built: the tuple is what it holds
    assert kept.ok and kept.entries == c.entries
