"""A torch function's inputs in the order its signature declares them, everywhere a comparison names
them (issue 20): the headline's point, the per-input summary, to_markdown, the HTML and to_dict,
as the table's rows already are; never SymPy's sorted order (`W1, X, b1` for `f(X, W1, b1)`)."""

from __future__ import annotations

import re

import torch

import symgrad as sg


def mlp(X, W1, b1):
    return torch.relu(X @ W1 + b1).sum()


def small(z, a):
    return z * a ** 2


def _order(text: str, names: list[str]) -> list[int]:
    return [text.index(n) for n in names]


def test_headline_summary_markdown_html_and_dict_follow_the_signature() -> None:
    X = torch.tensor([[1.0, -2.0, 0.5], [0.5, 3.0, -1.0], [2.0, 0.25, 1.5], [-1.0, 1.0, 2.0]], dtype=torch.float64)
    W1 = torch.tensor([[0.5, -1.0, 1.0, 0.0, 2.0], [1.0, 0.0, -0.5, 1.5, 0.25],
                       [0.75, 1.25, 0.5, -1.0, 0.0]], dtype=torch.float64)
    b1 = torch.tensor([0.0, 0.25, -0.5, 1.0, 0.125], dtype=torch.float64)
    c = sg.compare(mlp, (X, W1, b1))
    text = str(c)
    head = text.splitlines()[0]
    assert head.startswith("symgrad: mlp(X, W1, b1) from ")
    x_at, w_at, b_at = _order(head, [" at X = ", ", W1 = ", ", b1 = "])
    assert x_at < w_at < b_at
    assert "W1 = (3x5 matrix)" in head and "b1 = [0.0, 0.25, -0.5, 1.0, 0.125]" in head
    by_input = [line for line in text.splitlines() if line.startswith("by input:")]
    assert [line.split()[2] for line in by_input] == ["X", "W1", "b1"]
    md = c.to_markdown().splitlines()[0]
    assert md.startswith("**symgrad**: `mlp(X, W1, b1)")
    assert _order(md, [" at X = ", ", W1 = ", ", b1 = "]) == sorted(_order(md, [" at X = ", ", W1 = ", ", b1 = "]))
    html = c._repr_html_()
    found = [m.group(1) for m in re.finditer(r"\b(X|W1|b1) = ", html)]
    assert found[:3] == ["X", "W1", "b1"]
    assert list(c.to_dict()["point"]) == ["X", "W1", "b1"]
    assert [str(s) for s in c.point] == ["X", "W1", "b1"]
    # the values themselves, unchanged: each is the tensor's (float64, exact)
    assert [float(v) for v in c.point[next(iter(c.point))]] == X.reshape(-1).tolist()


def test_scalars_follow_the_signature_too() -> None:
    """f(z, a): `z` first (SymPy's order is a, z); the gradient is torch's."""
    c = sg.compare(small, {"z": 2.0, "a": 3.0})
    assert str(c).splitlines()[0].split(" at ")[1].startswith("z = 2.0, a = 3.0")
    z, a = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (2.0, 3.0))
    gz, ga = torch.autograd.grad(small(z, a), (z, a))
    assert [e.grad_autograd for e in c.entries] == [gz.item(), ga.item()] == [9.0, 12.0]
    assert [str(e.wrt) for e in c.entries] == ["z", "a"]
