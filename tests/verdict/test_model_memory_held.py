"""A model's comparison holds one copy of the floats it reads (issue 20, item 5): the point a reading
holds is read by `read_point` where it is (`base.held`), never a copy of a user's array that the
user may change after; the fidelity check's two gradients, when they are the same bits, are one
array. Truths: torch's autograd and SymPy's derivative in exact arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad.base.held import hold, is_held
from symgrad.frontends.trace_run import Floats
from symgrad.sides.lowering import lower
from symgrad.verdict.point import read_point


def test_held_is_this_very_array_only() -> None:
    a = hold(np.arange(6.0).reshape(2, 3))
    assert is_held(a)
    assert not is_held(a.copy()) and not is_held(a[:, :2]) and not is_held(a.reshape(3, 2))
    assert not is_held(np.arange(6.0).reshape(2, 3)) and not is_held(a.tolist()) and not is_held(None)


@pytest.mark.parametrize("kind", ["numpy", "torch", "list"])
def test_read_point_copies_what_the_user_may_change_and_reads_a_held_array_in_place(kind: str) -> None:
    W = sp.MatrixSymbol("W", 2, 2)
    lowered = lower((W * W)[0, 1], branches="if", dtype="float64")
    values = [[0.5, -1.25], [3.0, 0.1]]
    raw = {"numpy": np.array(values), "torch": torch.tensor(values, dtype=torch.float64), "list": values}[kind]
    floats = read_point(lowered, {W: raw}, "float64")[0]
    assert floats.tolist() == values
    if kind != "list":  # the user changes their array after: the point read is what was given
        raw[0, 0] = 99.0
    assert floats.tolist() == values and not is_held(floats)
    held = hold(np.array(values))
    assert read_point(lowered, {W: held}, "float64")[0] is held  # symgrad's own floats: read where they are
    # float32 rounds: a float32 point is its own array even of held floats
    f32 = read_point(lowered, {W: held}, "float32")[0]
    assert f32 is not held and f32.tolist() == torch.tensor(values, dtype=torch.float32).double().tolist()


def _loss(W, X):
    return torch.tanh(X @ W).sum()


def test_a_readings_point_is_read_in_place_and_the_comparison_is_torchs_and_sympys() -> None:
    gen = torch.Generator().manual_seed(5)
    W = torch.randn(3, 2, dtype=torch.float64, generator=gen)
    X = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    W0 = W.clone()
    traced = sg.trace(_loss, W, X)
    assert all(is_held(v) for v in traced.point.values() if isinstance(v, np.ndarray))
    c = sg.compare(_loss, at={"W": W, "X": X}, wrt=["W"])
    W[0, 0] = 5.0  # the user's tensor changes after: the comparison's point and entries do not
    Wt = W0.clone().requires_grad_()
    _loss(Wt, X).backward()
    syms = sp.Matrix(3, 2, lambda i, j: sp.Symbol(f"w{i}{j}"))
    Xs = sp.Matrix(4, 3, lambda i, j: sp.Rational(float(X[i, j])))
    f = sum((sp.tanh(v) for v in (Xs * syms)), sp.Integer(0))
    at = {syms[a, b]: sp.Rational(float(W0[a, b])) for a in range(3) for b in range(2)}
    assert len(c.entries) == 6
    for n, e in enumerate(c.entries):
        i, j = divmod(n, 2)
        exact = sp.diff(f, syms[i, j]).subs(at)
        assert abs(sp.N(e.grad_symbolic - exact, 50)) < sp.Float(1e-28)
        assert abs(sp.N(e.grad_executed - exact, 50)) < sp.Float(1e-28)
        assert e.grad_autograd == Wt.grad[i, j].item()
        assert e.cause is sg.Cause.AGREE


@pytest.mark.parametrize("size", [4, 70])
def test_the_fidelity_gradients_of_the_same_bits_are_one_array_and_torchs(size: int) -> None:
    """One array where the gradient has 4,096 values or more (70 x 60 + 5 x 70); a small one keeps
    its two (not looked at: no cost per small check), equal all the same."""
    gen = torch.Generator().manual_seed(3)
    W = torch.randn(size, 60, dtype=torch.float64, generator=gen)
    X = torch.randn(5, size, dtype=torch.float64, generator=gen)
    traced = sg.trace(_loss, W, X)
    Wg, Xg = W.clone().requires_grad_(), X.clone().requires_grad_()
    _loss(Wg, Xg).backward()
    expected = tuple(Wg.grad.reshape(-1).tolist() + Xg.grad.reshape(-1).tolist())
    assert isinstance(traced.fidelity.grad_user, Floats)
    assert (traced.fidelity.grad_translated is traced.fidelity.grad_user) == (size == 70)
    assert traced.fidelity.grad_user == expected == traced.fidelity.grad_translated
