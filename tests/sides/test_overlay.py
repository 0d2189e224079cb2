"""A model's symbolic derivatives held as what differs from the executed row (`sides/overlay.py`):
the row reads as the list it stands for, whatever is set, and a comparison's entries are the same
with the row as an overlay or a list, and right: each cause at exactly the entries it reaches, each
exact value SymPy's rational, each autograd value torch's."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.sides import overlay
from symgrad.sides.overlay import Overlay
from symgrad.verdict.components import Parts


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 40), st.lists(st.tuples(st.integers(0, 39), st.sampled_from(["base", "none", "other"])),
                                     max_size=60), st.integers(1, 20))
def test_an_overlay_reads_as_the_list_it_stands_for(size: int, sets: list[Any], sparse: int) -> None:
    base = Parts([np.array([object() for _ in range(size // 2)], dtype=object), [object() for _ in range(size - size // 2)]])
    old = overlay.SPARSE
    overlay.SPARSE = sparse
    try:
        row, model = Overlay(base), [None] * size
        for n, what in sets:
            n %= size
            value = base[n] if what == "base" else None if what == "none" else object()
            row[n] = value
            model[n] = value
        assert len(row) == size
        assert all(a is b for a, b in zip(row, model)) and len(list(row)) == size
        assert all(row[n] is model[n] for n in range(size)) and row[-1] is model[-1]
        assert row.unset() == [n for n, v in enumerate(model) if v is None]
        assert row.differing() == sum(1 for n, v in enumerate(model) if v is not base[n])
        assert row == model
        with pytest.raises(IndexError):
            row[size]
    finally:
        overlay.SPARSE = old


def _f(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    Z = X @ W
    return torch.relu(Z).sum() + 3 * Z[1, 2] - 3 * Z[1, 2].detach()


def _plain(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    return torch.relu(X @ W).sum()


def _point() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    X = torch.randn(4, 40, dtype=torch.float64, generator=gen)
    W = torch.randn(40, 16, dtype=torch.float64, generator=gen) * 0.25
    W[:, 0] = 0.0
    W[0, 0] = 1.0
    X[0, 0] = 0.0  # (X W)[0, 0] = 0: a ReLU tie in one element
    return W, X


@pytest.mark.parametrize("detached", [False, True], ids=["plain", "detached"])
@pytest.mark.parametrize("sparse", [16, 10**9, 1])
def test_a_models_entries_are_the_same_with_the_symbolic_row_as_an_overlay_and_right(
        sparse: int, detached: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ReLU tie's kink, and a planted difference (a detached term on one element, Z[1, 2]), are
    found on exactly the entries they reach, however the row is held."""
    monkeypatch.setattr(overlay, "SPARSE", sparse)
    f = _f if detached else _plain
    W, X = _point()
    c = sg.compare(f, at={"W": W, "X": X}, wrt=["W"])
    Wt = W.clone().requires_grad_()
    f(Wt, X).backward()
    Z = [[sum((Fraction(float(X[r, t])) * Fraction(float(W[t, j])) for t in range(40)), Fraction(0))
          for j in range(16)] for r in range(4)]
    assert Z[0][0] == 0
    entries = list(c.entries)
    assert len(entries) == 640
    for n, e in enumerate(entries):
        i, j = divmod(n, 16)
        # torch's path: relu'(0) = 0, the detached term's derivative 0 (the two 3 Z[1, 2] cancel
        # in value, not in the executed derivative: -3 Z[1, 2].detach() is a constant there)
        executed = sum((Fraction(float(X[r, i])) for r in range(4) if Z[r][j] > 0), Fraction(0)) \
            + (3 * Fraction(float(X[1, i])) if detached and j == 2 else 0)
        assert e.grad_executed == executed, (i, j)
        assert e.grad_autograd == Wt.grad[i, j].item()
        if detached and j == 2 and X[1, i] != 0:
            assert e.cause is sg.Cause.DETACH, (i, j, e.cause)
            assert e.grad_symbolic == executed - 3 * Fraction(float(X[1, i]))  # detach as the identity
        elif j == 0 and X[0, i] != 0:
            # (beside a detach, main also names these entries `detach`: a label question, not a value one)
            assert e.cause is (sg.Cause.DETACH if detached else sg.Cause.KINK), (i, j, e.cause)
            # the one-sided slopes: the ReLU of (X W)[0, 0] off or on
            assert sorted(e.one_sided) == sorted([executed, executed + Fraction(float(X[0, i]))])
        else:
            assert e.cause is sg.Cause.AGREE, (i, j, e.cause)
            assert e.grad_symbolic == executed


def _with_element(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    return 3 * W[0, 1] ** 2 + torch.relu(X @ W).sum()  # the element read first: its adjoint added last


@pytest.mark.parametrize("block", [4, 1 << 15])
def test_an_inputs_adjoint_that_is_a_products_array_is_copied_before_an_element_is_added_into_it(
        block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """W's adjoint is first the product X.T @ G (the array `exact.remembering` keeps for the runs
    beside the tie to reuse), then W[0, 1]'s adjoint is added into one element in place: into a
    copy, or the runs beside the point would read 6 W[0, 1] twice. Small blocks make every
    product a remembered one."""
    from symgrad.program import exact as ex
    monkeypatch.setattr(ex, "RATIONAL_BLOCK", block)
    monkeypatch.setattr(ex, "BALL_BLOCK", block)
    W, X = _point()
    c = sg.compare(_with_element, at={"W": W, "X": X}, wrt=["W"])
    Wt = W.clone().requires_grad_()
    _with_element(Wt, X).backward()
    Z = [[sum((Fraction(float(X[r, t])) * Fraction(float(W[t, j])) for t in range(40)), Fraction(0))
          for j in range(16)] for r in range(4)]
    for n, e in enumerate(c.entries):
        i, j = divmod(n, 16)
        executed = sum((Fraction(float(X[r, i])) for r in range(4) if Z[r][j] > 0), Fraction(0)) \
            + (6 * Fraction(float(W[0, 1])) if (i, j) == (0, 1) else 0)
        assert e.grad_executed == executed, (i, j)
        assert e.grad_autograd == Wt.grad[i, j].item()
        if j == 0 and X[0, i] != 0:
            assert e.cause is sg.Cause.KINK, (i, j, e.cause)
            assert sorted(e.one_sided) == sorted([executed, executed + Fraction(float(X[0, i]))])
        else:
            assert e.cause is sg.Cause.AGREE and e.grad_symbolic == executed, (i, j, e.cause)
