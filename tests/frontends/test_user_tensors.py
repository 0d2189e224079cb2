"""Every run symgrad makes of a user's function leaves the tensors it did not create as they were
(frontends/user_tensors): `F.batch_norm(..., training=True)` updates its running buffers in place
on each call, and symgrad calls the function several times (the reading, the fidelity check, a
reading again); after `sg.compare`, `sg.trace` and `assert_grad_matches_math` the buffers hold
their values before the call bit for bit, and the verdict is the one of the same function with
buffers it does not share (checked against torch's own gradient)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

import symgrad as sg
from symgrad.frontends.user_tensors import reached
from symgrad.testing import assert_grad_matches_math

D = torch.float64
RM = torch.tensor([0.25, -1.0, 2.0], dtype=D)
RV = torch.tensor([1.0, 0.5, 3.0], dtype=D)
COUNT = torch.zeros(1, dtype=D)
X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 6.0], [0.5, 1.0, 2.0], [2.0, -1.0, 0.25]], dtype=D)
W = torch.tensor([1.0, 2.0, -1.0], dtype=D)


def bn_global(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (F.batch_norm(x, RM, RV, training=True, momentum=0.5) * w).pow(2).sum()


def bn_fresh(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (F.batch_norm(x, RM.clone(), RV.clone(), training=True, momentum=0.5) * w).pow(2).sum()


def counted(x: torch.Tensor) -> torch.Tensor:
    COUNT.add_(1.0)  # a global tensor updated in place, read nowhere in the value
    return (x * x).sum()


def _closure() -> Any:
    mean, var = RM.clone(), RV.clone()

    def bn_closure(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (F.batch_norm(x, mean, var, training=True) * w).pow(2).sum()
    return bn_closure, mean, var


def _torch_grads(fn: Any, *args: torch.Tensor) -> list[float]:
    leaves = [a.clone().requires_grad_(True) for a in args]
    saved = RM.clone(), RV.clone()
    grads = torch.autograd.grad(fn(*leaves), leaves)
    RM.copy_(saved[0])  # (this oracle's own call of bn_global updates them too)
    RV.copy_(saved[1])
    return [float(v) for g in grads for v in g.reshape(-1)]


@pytest.mark.parametrize("entry", ["compare", "trace", "assert"])
def test_running_buffers_are_untouched_and_the_verdict_is_the_fresh_ones(entry: str) -> None:
    before = RM.clone(), RV.clone()
    if entry == "compare":
        c = sg.compare(bn_global, at={"x": X, "w": W})
        fresh = sg.compare(bn_fresh, at={"x": X, "w": W})
        assert c.cause == fresh.cause
        assert [e.grad_autograd for e in c.entries] == [e.grad_autograd for e in fresh.entries]
        assert [e.grad_symbolic for e in c.entries] == [e.grad_symbolic for e in fresh.entries]
        want = _torch_grads(bn_fresh, X, W)
        assert sorted(e.grad_autograd for e in c.entries) == sorted(want)  # torch's own gradient, bit for bit
        assert all(abs(float(e.grad_symbolic) - g) <= 1e-9 * max(1.0, abs(g))
                   for e, g in zip(sorted(c.entries, key=lambda e: e.grad_autograd), sorted(want)))
    elif entry == "trace":
        sg.trace(bn_global, X, W)
    else:
        try:
            assert_grad_matches_math(bn_global, X, W)
        except sg.GradientMismatch:
            pass  # (the verdict is the compare case's; here only the buffers are asked about)
    assert torch.equal(RM, before[0]) and torch.equal(RV, before[1]), (RM, RV)
    # the user's own call still updates them, as torch does
    F.batch_norm(X, RM, RV, training=True, momentum=0.5)
    assert not torch.equal(RM, before[0])
    RM.copy_(before[0])
    RV.copy_(before[1])


def test_closure_cells_and_globals_updated_in_place_are_restored() -> None:
    fn, mean, var = _closure()
    m0, v0 = mean.clone(), var.clone()
    sg.compare(fn, at={"x": X, "w": W})
    assert torch.equal(mean, m0) and torch.equal(var, v0)
    with pytest.raises(sg.TraceError):  # an in-place op symgrad does not read: refused, and still the user's tensor is kept
        sg.compare(counted, at={"x": W})
    assert torch.equal(COUNT, torch.zeros(1, dtype=D)), COUNT


def test_reached_is_arguments_globals_and_cells() -> None:
    fn, mean, var = _closure()
    got = {id(t) for t in reached(fn, (X,), {"w": [W]})}
    assert got == {id(X), id(W), id(mean), id(var)}
    assert {id(t) for t in reached(bn_global, (), {})} == {id(RM), id(RV)}
