"""`Reading.arguments` (the example values as given) never shares memory with `Reading.point`: a
float64 CPU input is copied from the point when first read (no copy where nothing reads it), so a
change made in place to `traced.arguments[...]` changes neither the point nor the comparison;
and a change to the user's own tensor after `trace` changes neither (issue 20)."""

from __future__ import annotations

import numpy as np
import torch

import symgrad as sg


def f(x, W):
    return torch.tanh(W @ x).sum()


def _grads(x: torch.Tensor, W: torch.Tensor) -> list[float]:
    xl, Wl = x.clone().requires_grad_(True), W.clone().requires_grad_(True)
    gx, gW = torch.autograd.grad(f(xl, Wl), (xl, Wl))
    return [*gx.tolist(), *gW.reshape(-1).tolist()]


def test_arguments_and_point_are_independent() -> None:
    x = torch.tensor([0.5, -1.0], dtype=torch.float64)
    W = torch.tensor([[1.0, 2.0], [-0.5, 0.25]], dtype=torch.float64)
    t = sg.trace(f, x, W)
    point_x = np.array(t.point["x"], copy=True)
    assert list(t.arguments) == ["x", "W"] and len(t.arguments) == 2 and "x" in t.arguments
    got = t.arguments["x"]
    assert isinstance(got, torch.Tensor) and got.shape == x.shape and got.dtype == torch.float64
    assert torch.equal(got, x) and t.arguments["x"] is got  # copied once, then kept
    assert not np.shares_memory(got.numpy(), t.point["x"]) and got.data_ptr() != x.data_ptr()
    got[0] = 99.0  # in place, on what `arguments` gave
    assert np.array_equal(t.point["x"], point_x)
    c = t.compare()
    assert [e.grad_autograd for e in c.entries] == _grads(x, W)
    x[1] = 7.0  # the user's own tensor, after trace
    assert np.array_equal(t.point["x"], point_x)
    assert float(t.arguments["W"][0, 1]) == 2.0 and t.arguments["x"][1] == -1.0
    # another dtype reads the arguments again: the values as they are now in `arguments`
    c32 = t.compare(dtype="float32")
    assert c32.dtype == "float32" and len(c32.entries) == 6


def test_a_reading_that_never_reads_arguments_copies_nothing() -> None:
    x = torch.tensor([0.5, -1.0], dtype=torch.float64)
    W = torch.tensor([[1.0, 2.0], [-0.5, 0.25]], dtype=torch.float64)
    t = sg.trace(f, x, W)
    assert set(t.arguments._held) == {"x", "W"}  # held as the point's arrays until read
    t.compare()
    assert set(t.arguments._held) == {"x", "W"}
