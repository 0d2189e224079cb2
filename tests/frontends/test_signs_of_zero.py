"""The translation has torch's signs of zero (fixes, item 1).

IEEE arithmetic has two zeros, and torch's kernels decide which one each op returns: `a - b`
is torch.sub, whose gradient wrt b is `-g` summed over a broadcast (where `a + (-b)` sums g
first and negates after: -0.0 where torch has 0.0). The fidelity check compares bit for bit,
so a translation with another sign of zero is refused. The oracle here is torch itself, run on
the user's function: forward value and gradients must be the same bits (torch.equal and
signbit), in float64 and float32, at points with zeros of either sign.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg

ZEROS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0])


def minus_broadcast(x, W, y):
    return (x * W - y).sum()


def squared_minus_broadcast(x, W, y):
    return ((x * W - y) ** 2).sum()


def matmul_minus(x, W, y):
    return ((x @ W - y) ** 2).mean()


def minus_scalar(x, W, y):
    return x * W - y


def minus_column(x, W, y):
    return (x * W - y).sum()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same bits: equal values, the same sign (of a zero too), NaN where NaN."""
    a, b = a.detach(), b.detach()
    return a.shape == b.shape and torch.equal(torch.signbit(a), torch.signbit(b)) and \
        bool(torch.all((a == b) | (torch.isnan(a) & torch.isnan(b))))


def _leaves(values: list[list[float]], dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.tensor(v, dtype=torch.float64).to(dtype).requires_grad_(True) for v in values]


def _both(fn: Any, values: list[Any], dtype: torch.dtype) -> None:
    """fn's translation, run by torch, gives the user's own forward value and gradients, bit for bit."""
    traced = sg.trace(fn, *_leaves(values, dtype))  # refused (a TraceError) where the bits differ
    assert traced.mode == "source", traced.reason
    lowered = sg.lower(traced.program, branches=traced.branches, dtype=str(dtype).replace("torch.", ""))
    mine = _leaves(values, dtype)
    want = fn(*mine)
    want_grads = torch.autograd.grad(want.sum(), mine)
    theirs = _leaves(values, dtype)
    by_name = {s.name: (t.reshape(-1, 1) if t.ndim == 1 else t.reshape(1, 1) if t.ndim == 0 else t)
               for s, t in zip(traced.inputs, theirs)}
    got = lowered(*[by_name[n] for n in lowered.inputs])
    got_grads = torch.autograd.grad(got.sum(), theirs)
    assert _same(got.reshape(want.shape), want), (got, want)
    for g, w in zip(got_grads, want_grads):
        assert _same(g, w), (g, w)


@settings(max_examples=40, deadline=None)
@given(a=ZEROS, b=ZEROS, c=ZEROS, hit=st.booleans(), f32=st.booleans())
def test_a_broadcast_subtraction_has_torchs_signs_of_zero(a: float, b: float, c: float, hit: bool, f32: bool) -> None:
    dtype = torch.float32 if f32 else torch.float64
    c = a * b if hit else c  # a residual of zero (either sign): the gradients are zeros
    for fn in (squared_minus_broadcast,):
        _both(fn, [[[a, 1.0]], [[b, 0.5]], [[c]]], dtype)
    _both(matmul_minus, [[[a, 1.0]], [[b], [0.0]], [[c]]], dtype)
    _both(minus_column, [[[a], [1.0]], [[b], [c]], [[c]]], dtype)
    _both(minus_broadcast, [[[a, a]], [[b, b]], [[c]]], dtype)
    _both(squared_minus_broadcast, [[a], [b], [c]], dtype)  # rank 1, one element each
    _both(minus_broadcast, [[a], [b], [c]], dtype)


@settings(max_examples=30, deadline=None)
@given(a=ZEROS, b=ZEROS, c=ZEROS, f32=st.booleans())
def test_a_scalar_subtraction_has_torchs_signs_of_zero(a: float, b: float, c: float, f32: bool) -> None:
    _both(minus_scalar, [a, b, c], torch.float32 if f32 else torch.float64)


def test_the_gradient_wrt_the_subtracted_target_is_torchs_zero() -> None:
    """Where the residual is zero, torch's gradient wrt y is -(0.0 + 0.0) summed: 0.0, not -0.0."""
    _both(squared_minus_broadcast, [[[1.0, 2.0]], [[0.5, 0.25]], [[0.5]]], torch.float64)
    y = torch.tensor([[0.5]], dtype=torch.float64, requires_grad=True)
    x, W = torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([[0.5, 0.25]], dtype=torch.float64)
    (g,) = torch.autograd.grad(squared_minus_broadcast(x, W, y), y)
    assert g.item() == 0.0 and not torch.signbit(g).item()
    c = sg.compare(squared_minus_broadcast, at={"x": x, "W": W, "y": y})
    assert c.ok, str(c)


def bce(p, t):
    return torch.nn.functional.binary_cross_entropy(p, t)


def bce_logits(z, t):
    return torch.nn.functional.binary_cross_entropy_with_logits(z, t)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_a_loss_of_whole_tensors_keeps_torchs_negative_zero(dtype: torch.dtype) -> None:
    """At logit(p) = 0 torch's gradient wrt the target is -0.0. Read through each element and
    stacked again, the other elements' zeros were added to it (-0.0 + 0.0 = 0.0): the loss now
    takes the tensors themselves, as the user's call does."""
    _both(bce, [[0.5, 0.25], [0.5, 0.5]], dtype)
    _both(bce_logits, [[0.0, 1.0], [0.5, 0.5]], dtype)
    z, t = torch.tensor([0.0, 1.0], dtype=dtype), torch.tensor([0.5, 0.5], dtype=dtype, requires_grad=True)
    (g,) = torch.autograd.grad(bce_logits(z, t), t)
    assert g[0].item() == 0.0 and torch.signbit(g[0]).item()  # torch's own -0.0
    lowered = sg.lower(sg.trace(bce_logits, z, t.detach()).program, dtype=str(dtype)[6:])
    assert "binary_cross_entropy_with_logits(z.reshape(-1), t.reshape(-1)" in lowered.source


def _log_softmax_by_hand(X, W):
    O = torch.relu(X @ W) @ W.T
    O_exp = torch.exp(O)
    log_Z = torch.log(O_exp.sum(dim=1, keepdim=True))
    return (O - log_Z).sum()


def test_a_broadcast_term_subtracted_stays_one_tensor_operation() -> None:
    """`O - log_Z` with log_Z an (n, 1) column broadcast: the subtracted term is negated without
    SymPy's `-expr` (a deep doit that wrote out every element of the log-sum-exp inside: a
    50-statement function took 14 s to read, where it takes 40 ms). The program subtracts whole
    tensors, and its values and gradients are torch's bit for bit (the benchmark's cold-trace row
    times it)."""
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    W = torch.randn(3, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    traced = sg.trace(_log_softmax_by_hand, X, W)
    assert traced.mode == "source"
    code = str(traced.program)
    assert "[0, 1]" not in code and "[3, 2]" not in code  # no element written out
    c = traced.compare(wrt=["W"])
    assert c.ok
    W.grad = None
    _log_softmax_by_hand(X, W).backward()
    assert torch.equal(torch.tensor([float(e.grad_autograd) for e in c.entries], dtype=torch.float64),
                       W.grad.reshape(-1))
