"""`assert_grad_matches_math` reads the comparison's table (`Comparison.rows`), not the tuple of
every entry: a passing check builds none of the agreeing entries, a failing one only the rows
its message shows, and the message is the one the built entries give."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from symgrad.base.causes import Cause
from symgrad.testing import GradientMismatch, assert_grad_matches_math
from symgrad.tools import testing as testing_module


def mlp_relu(W1, b1, W2, X):  # type: ignore[no-untyped-def]
    h = torch.relu(X @ W1 + b1)
    return -torch.log_softmax(h @ W2, dim=1)[:, 1].mean()


def _point(tie: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    X = torch.randn(4, 6, dtype=torch.float64, generator=g)
    W1 = torch.randn(6, 5, dtype=torch.float64, generator=g)
    b1 = torch.randn(5, dtype=torch.float64, generator=g) * 0.1
    W2 = torch.randn(5, 2, dtype=torch.float64, generator=g)
    if tie:  # unit 0 of example 0 exactly at relu's corner
        W1[:, 0] = 0.0
        W1[0, 0] = 1.0
        b1[0] = -float(X[0, 0])
    return {"W1": W1, "b1": b1, "W2": W2, "X": X}


def _torch_grads(at: dict[str, torch.Tensor]) -> list[float]:
    leaves = {k: v.clone().requires_grad_(k != "X") for k, v in at.items()}
    mlp_relu(**leaves).backward()
    return [x for k in ("W1", "b1", "W2") for x in leaves[k].grad.flatten().tolist()]  # type: ignore[union-attr]


def test_a_passing_check_builds_no_agreeing_entry(agreeing_built: list[int]) -> None:
    at = _point(False)
    built = agreeing_built
    c = assert_grad_matches_math(mlp_relu, at, wrt=["W1", "b1", "W2"])
    assert built[0] == 0 and c.table is not None and c.table.built is None
    assert len(c.table) == 6 * 5 + 5 + 5 * 2 and c.ok
    assert [e.grad_autograd for e in c.entries] == _torch_grads(at)  # torch's own values


def test_an_allowed_kink_passes_building_no_agreeing_entry(agreeing_built: list[int]) -> None:
    at = _point(True)
    built = agreeing_built
    c = assert_grad_matches_math(mlp_relu, at, wrt=["W1", "b1", "W2"], allow="kink")
    assert built[0] == 0 and c.table is not None and c.table.built is None
    assert c.table.counts() == {Cause.AGREE: 38, Cause.KINK: 7}


def test_a_failing_check_builds_only_what_its_message_shows(agreeing_built: list[int]) -> None:
    at = _point(True)
    built = agreeing_built
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(mlp_relu, at, wrt=["W1", "b1", "W2"])
    c = info.value.comparison
    assert built[0] == 0 and c.table.built is None  # the 7 kink entries were made by compare itself
    text = str(info.value)
    assert "Mismatched entries: 7 / 45 (15.6%)" in text and "kink" in text.splitlines()[0]
    # the same message as the built entries give (the table's path and the tuple's agree)
    eager = dataclasses.replace(c, entries=tuple(c.entries))
    assert eager.table is None
    bad = [k for k, e in enumerate(eager.entries) if not e.ok]
    said = testing_module._message(eager, "mlp_relu", bad, frozenset())
    assert text == said + "\nSee docs/errors.md#gradientmismatch"
    # every kink entry: W1's column 0 and b1[0], torch's relu'(0) = 0 on that unit
    kinks = [e for e in c.entries if e.cause is Cause.KINK]
    assert [str(e.wrt) for e in kinks] == [f"W1[{i}, 0]" for i in range(6)] + ["b1[0, 0]"]
    grads = _torch_grads(at)
    assert [e.grad_autograd for e in c.entries] == grads
