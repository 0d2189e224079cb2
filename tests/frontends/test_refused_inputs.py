"""An input torch refuses to differentiate (an op's argument it gives no gradient, such as
`F.batch_norm`'s running buffers in training, passed as arguments of the user's function) is run
without requires_grad, as the user would pass a buffer, instead of failing the fidelity check with
torch's error as if the translation were wrong. The gradients asked for are torch's own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import symgrad as sg


def bn_loss(x, m, v):
    y = F.batch_norm(x, m, v, training=True)
    return (y * x).sum()  # (the plain sum of a normalised batch is 0 for every x)


def _point(dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, dtype=dtype, generator=g)
    return x, torch.zeros(3, dtype=dtype), torch.ones(3, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_running_buffers_as_arguments_are_read_and_the_gradient_is_torchs(dtype):
    x, m, v = _point(dtype)
    c = sg.compare(bn_loss, at={"x": x, "m": m, "v": v}, wrt=["x"], dtype=str(dtype).split(".")[1])
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(bn_loss(xr, m.clone(), v.clone()), xr)
    got = [e.grad_autograd for e in c.entries]
    assert got == expected.reshape(-1).tolist()  # torch's own gradient, bit for bit
    assert len(c.entries) == 12 and c.cause.value in {"agree", "rounding"}
    # the buffers the user passed are as they were (torch updates them in place on every run)
    assert torch.equal(m, torch.zeros(3, dtype=dtype)) and torch.equal(v, torch.ones(3, dtype=dtype))


def test_another_error_of_the_users_code_is_still_said():
    def broken(x, m):
        return F.batch_norm(x, m, m, training=False).sum() + x.sum() @ x  # the matmul of a 0-d tensor raises

    x, m, _ = _point(torch.float64)
    with pytest.raises(sg.TraceError) as info:
        sg.compare(broken, at={"x": x, "m": m}, wrt=["x"])
    assert "requires_grad" not in str(info.value)
