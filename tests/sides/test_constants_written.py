"""A constant the lowering needs as a tensor is written as a constant of the right shape and
dtype (fixes, item 5).

It was written `<first input> * 0 + c`: with the first input's shape (a (2, 3) constant where
torch.where's condition is (3, 3): the translation raised), on the autograd graph where the
user's constant is not (a gradient of zeros where torch has none), and NaN where that input is
infinite. Now: beside an element of a stack, `torch.full_like(element, c)`; in torch.where, a
0-d tensor that torch broadcasts. Checked bit for bit against the user's code run by torch, and
the generated code is read for what it says.
"""

from __future__ import annotations

import torch

import symgrad as sg


def mask_of_product(x, W):
    return (torch.where(x @ W > 0, 1.0, 0.0) * (x @ W)).sum()


def mask_only(x, W):
    return torch.where(x @ W > 0, 1.0, 0.0).sum()


def stacked_with_one(x):
    return (torch.stack([x.sum(), torch.tensor(1.0, dtype=x.dtype)]) ** 2).sum()


X = torch.tensor([[1.0, -2.0], [0.5, 3.0], [1.0, 1.0]], dtype=torch.float64)
W = torch.tensor([[0.3, 0.2, 0.1], [-0.1, 0.4, 0.2]], dtype=torch.float64)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(torch.signbit(a), torch.signbit(b)) and \
        bool(torch.all((a == b) | (torch.isnan(a) & torch.isnan(b))))


def _lowered(fn, *values):
    traced = sg.trace(fn, *values)
    assert traced.mode == "source", traced.reason
    return traced, sg.lower(traced.program, branches=traced.branches, dtype=str(values[0].dtype).replace("torch.", ""))


def _code(lowered) -> list[str]:
    return [ln.strip() for ln in lowered.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_a_where_of_constants_takes_the_conditions_shape() -> None:
    for dtype in (torch.float64, torch.float32):
        x, w = X.to(dtype), W.to(dtype)
        traced, lowered = _lowered(mask_of_product, x, w)
        code = _code(lowered)
        assert f"c = torch.tensor(1, dtype=torch.{str(dtype)[6:]})" in code, code
        assert not any("* 0" in ln for ln in code), code
        mine = [x.clone().requires_grad_(True), w.clone().requires_grad_(True)]
        want = mask_of_product(*mine)
        want_grads = torch.autograd.grad(want, mine)
        theirs = {"x": x.clone().requires_grad_(True), "W": w.clone().requires_grad_(True)}
        got = lowered(*[theirs[n] for n in lowered.inputs])
        got_grads = torch.autograd.grad(got, [theirs["x"], theirs["W"]])
        assert _same(got, want) and all(_same(g, h) for g, h in zip(got_grads, want_grads))


def test_a_where_of_constants_alone_is_off_the_graph_as_in_torch() -> None:
    """The user's mask has no gradient (torch raises): so has the translation, and compare says
    graph-break with the exact derivative 0, not a gradient of zeros through an input."""
    traced, lowered = _lowered(mask_only, X, W)
    out = lowered(*[{"x": X, "W": W}[n].clone().requires_grad_(True) for n in lowered.inputs])
    assert not out.requires_grad and out.item() == mask_only(X, W).item() == 6.0
    c = sg.compare(mask_only, at={"x": X, "W": W})
    assert {e.cause for e in c.entries} == {sg.Cause.GRAPH_BREAK}
    assert all(e.grad_symbolic == 0 and e.grad_executed == 0 for e in c.entries)


def test_a_constant_beside_an_element_is_a_tensor_like_it() -> None:
    x = torch.tensor([[0.5, 1.5]], dtype=torch.float64)
    traced, lowered = _lowered(stacked_with_one, x)
    code = _code(lowered)
    assert any("torch.full_like(" in ln and ln.endswith(", 1)") for ln in code), code
    assert not any("* 0" in ln for ln in code), code
    for v in ([[0.5, 1.5]], [[float("inf"), 1.0]], [[-0.0, 0.0]]):
        t = torch.tensor(v, dtype=torch.float64)
        a, b = t.clone().requires_grad_(True), t.clone().requires_grad_(True)
        want, got = stacked_with_one(a), lowered(b)
        assert _same(got, want), (v, got, want)  # 1 beside an infinite sum: inf, never NaN from inf * 0
        assert _same(torch.autograd.grad(got, b)[0], torch.autograd.grad(want, a)[0])
