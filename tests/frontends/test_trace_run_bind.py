"""`trace_run.bind` is `inspect.Signature.bind` (the same arguments, in order, the same errors),
and `trace_run.float64_array` is `.detach().to(torch.float64).cpu().numpy()`; a trace binds the
user's values to their parameters either way (the check's values are torch's own)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import symgrad as sg
from symgrad.frontends.trace_run import bind, float64_array


def f(x, y):
    return torch.sin(x) * y


def g(x, y=2.0, *rest, k=1.0, **more):
    return x * y


def h(x, /, y):
    return x + y


@pytest.mark.parametrize("fn, args, kwargs", [
    (f, (1.0, 2.0), {}), (f, (1.0,), {"y": 2.0}), (f, (), {"x": 1.0, "y": 2.0}),
    (g, (1.0,), {}), (g, (1.0, 3.0, 4.0), {"k": 2.0, "z": 5.0}), (h, (1.0, 2.0), {}),
])
def test_bind_is_inspects(fn, args, kwargs) -> None:  # type: ignore[no-untyped-def]
    sig = inspect.signature(fn)
    ours, theirs = bind(sig, args, kwargs), sig.bind(*args, **kwargs)
    assert ours == theirs and list(ours.arguments.items()) == list(theirs.arguments.items())
    assert ours.args == theirs.args and ours.kwargs == theirs.kwargs


@pytest.mark.parametrize("fn, args, kwargs", [(f, (1.0,), {}), (f, (1.0, 2.0, 3.0), {}), (h, (), {"x": 1.0, "y": 2.0})])
def test_bind_refuses_as_inspect_does(fn, args, kwargs) -> None:  # type: ignore[no-untyped-def]
    sig = inspect.signature(fn)
    with pytest.raises(TypeError) as theirs:
        sig.bind(*args, **kwargs)
    with pytest.raises(TypeError) as ours:
        bind(sig, args, kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_float64_array_is_the_tensors_values(dtype: torch.dtype) -> None:
    t = torch.tensor([[0.1, -0.0], [1e-40, 3.0]], dtype=dtype, requires_grad=True)
    got = float64_array(t)
    want = t.detach().to(torch.float64).cpu().numpy()
    assert got.dtype == np.float64 and got.tobytes() == want.tobytes()


def test_a_trace_binds_the_values_to_their_parameters() -> None:
    x, y = torch.tensor(0.5, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
    for reading in (sg.trace(f, x, y), sg.trace(f, x, y=y), sg.trace(f, y=y, x=x)):
        c = reading.compare()
        tx, ty = x.clone().requires_grad_(), y.clone().requires_grad_()
        want = torch.autograd.grad(f(tx, ty), [tx, ty])
        assert c.ok and [e.grad_autograd for e in c.entries] == [w.item() for w in want]
        assert abs(float(c.entries[0].grad_symbolic) - 3.0 * float(torch.cos(x))) < 1e-15
