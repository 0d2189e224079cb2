"""Floating data of rank 1 with more than 64 elements (a target vector of 10,000 values, a global
vector, an image batch flattened to one row) read as a data input of the program, by the rules of
rank-2 data (`source_data`): never differentiated, refused in wrt with a sentence, bound per call,
the translation cache keyed by its values; rank 1 to the reader (it broadcasts as a row, as torch's
does). Before, it was written into the program as constants: a 10,000-row linear regression's
program was 227,000 characters.

Ground truth: torch's own autograd of the user's code (bit for bit), and the exact gradient
computed with Python's fractions from the floats' exact values."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

import symgrad as sg
from symgrad.base.errors import OptionError
from symgrad.program.program import DataMatrix

g = torch.Generator().manual_seed(0)
XG = torch.randn(10000, 5, generator=g, dtype=torch.float64)
YG = torch.randn(10000, generator=g, dtype=torch.float64)
V100 = torch.randn(100, generator=g, dtype=torch.float64)
V_SHORT = torch.randn(8, generator=g, dtype=torch.float64)


def regression(w):
    return ((XG @ w - YG) ** 2).mean()


def row_broadcast(W):
    return (W * V100).sum() + ((W - V100) ** 2).sum()


def short_vector(w):
    return (w * V_SHORT).sum()


def flat_batch(w, X):
    return (X.reshape(-1) * w).sum()


def _torch_grad(f, *args):
    leaf = args[0].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(leaf, *args[1:]), leaf)
    return grad.reshape(-1).tolist()


def _leaves(c: sg.Comparison) -> list[DataMatrix]:
    return [s for s in c.point if isinstance(s, DataMatrix)]


def test_a_10000_row_linear_regression_reads_its_target_as_data() -> None:
    w = torch.randn(5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    c = sg.compare(regression, at={"w": w})
    assert c.ok, str(c)
    source = c.lowered.source
    assert len(source) < 1500, len(source)  # no 10,000 constants: it was 226,964 characters
    assert "# YG: the global tensor YG (float64, (10000,)), data (never differentiated)" in source
    assert sorted(s.name for s in _leaves(c)) == ["XG", "YG"]
    assert len(c.entries) == 5 and all(str(e.wrt).startswith("w[") for e in c.entries)
    assert [e.grad_autograd for e in c.entries] == _torch_grad(regression, w)  # torch's own, bit for bit
    # the exact gradient: 2/n X^T (X w - y), with every float's exact value
    X = [[Fraction(v) for v in row] for row in XG.tolist()]
    y = [Fraction(v) for v in YG.tolist()]
    ws = [Fraction(v) for v in w.tolist()]
    r = [sum(a * b for a, b in zip(row, ws)) - t for row, t in zip(X, y)]
    want = [2 * sum(X[i][j] * r[i] for i in range(10000)) / 10000 for j in range(5)]
    assert [Fraction(int(e.grad_symbolic.p), int(e.grad_symbolic.q)) for e in c.entries] == want


def test_a_data_vector_in_wrt_is_a_sentence() -> None:
    w = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(OptionError, match="wrt names YG, which is data: the global tensor YG"):
        sg.trace(regression, w).compare(wrt=["YG"])


def test_a_long_global_vector_broadcasts_as_a_row() -> None:
    W = torch.randn(3, 100, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    c = sg.compare(row_broadcast, at={"W": W})
    assert c.ok and [s.name for s in _leaves(c)] == ["V100"]
    assert len(c.lowered.source) < 2000
    assert [e.grad_autograd for e in c.entries] == _torch_grad(row_broadcast, W)
    v = [Fraction(x) for x in V100.tolist()]
    want = [v[j] + 2 * (Fraction(W[i, j].item()) - v[j]) for i in range(3) for j in range(100)]
    assert [Fraction(int(e.grad_symbolic.p), int(e.grad_symbolic.q)) for e in c.entries] == want


def test_a_short_vector_stays_its_constants() -> None:
    w = torch.ones(8, dtype=torch.float64)
    c = sg.compare(short_vector, at={"w": w})
    assert c.ok and _leaves(c) == []
    assert [e.grad_autograd for e in c.entries] == V_SHORT.tolist()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_an_image_batch_flattened_to_one_row_is_a_data_input(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    X = torch.rand(5, 1, 4, 4, generator=gen, dtype=dtype)
    w = torch.randn(80, generator=gen, dtype=dtype)
    c = sg.trace(flat_batch, w, X).compare()
    assert c.ok, str(c)
    (leaf,) = _leaves(c)
    assert leaf.name == "X_flat" and tuple(leaf.shape) == (80, 1)
    assert leaf.about.startswith(f"X ({str(dtype)[6:]}) reshaped to (80,), data (never differentiated)")
    assert [e.grad_autograd for e in c.entries] == _torch_grad(flat_batch, w, X)
    assert [Fraction(int(e.grad_symbolic.p), int(e.grad_symbolic.q)) for e in c.entries] == \
        [Fraction(v) for v in X.reshape(-1).tolist()]
    # bound per call: a new batch at the same shapes is read with its own values, then the old one again
    X2 = torch.rand(5, 1, 4, 4, generator=gen, dtype=dtype)
    c2 = sg.trace(flat_batch, w, X2).compare()
    assert [e.grad_autograd for e in c2.entries] == X2.reshape(-1).tolist()
    c3 = sg.trace(flat_batch, w, X).compare()
    assert [e.grad_autograd for e in c3.entries] == X.reshape(-1).tolist()


def test_a_traced_data_vector_is_a_copy_of_the_call() -> None:
    """An in-place change of the batch after trace does not move the traced point."""
    gen = torch.Generator().manual_seed(4)
    X = torch.rand(5, 1, 4, 4, generator=gen, dtype=torch.float64)
    w = torch.randn(80, generator=gen, dtype=torch.float64)
    traced = sg.trace(flat_batch, w, X)
    want = X.reshape(-1).tolist()
    X.mul_(2)
    assert [e.grad_autograd for e in traced.compare().entries] == want


def scaled_row(W, s):
    return ((W * s - V100) ** 2).sum()


def test_a_sweep_holds_the_data_vector_fixed() -> None:
    W = torch.randn(1, 100, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    sw = sg.trace(scaled_row, W, torch.tensor(0.5, dtype=torch.float64)).sweep({"s": [0.1, 0.5, 2.0]})
    assert sw.counts == {"agree": 3}, str(sw)
    want = []
    for v in (0.1, 0.5, 2.0):
        s = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        want.append(torch.autograd.grad(scaled_row(W, s), s)[0].item())
    assert [float(r[0]) for r in sw.grad_autograd] == want
