"""`F.embedding(i, W)` and `nn.Embedding` with integer data i: the rows W[i], read as indexing
(torch's forward copies the rows exactly). Checked against torch's own forward and autograd bit
for bit (the fidelity check and `reads_like_torch`), and the exact gradient against the count of
each row's picks by hand; the options whose backward is not the derivative are sentences."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from user_code import load_module, reads_like_torch

SOURCE = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def squares(W, i): return (F.embedding(i, W) ** 2).sum()
    def weighted(W, i, v): return (F.embedding(i, W) * v).sum()
    def padded(W, i): return F.embedding(i, W, padding_idx=0).sum()
    def renormed(W, i): return F.embedding(i, W, max_norm=1.0).sum()

    class Bag(nn.Module):
        def __init__(self, n, d):
            super().__init__()
            self.emb = nn.Embedding(n, d)
            self.out = nn.Linear(d, 1)

        def forward(self, i):
            return torch.tanh(self.out(self.emb(i).mean(0))).sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("embedding"), "user_embedding")


_FLOATS = st.floats(-4, 4, allow_nan=False, width=32)


@settings(max_examples=20, deadline=None)
@given(st.lists(_FLOATS, min_size=8, max_size=8), st.lists(st.integers(0, 3), min_size=1, max_size=6),
       st.sampled_from([torch.float64, torch.float32]))
def test_the_rows_picked_carry_the_gradient(module: Any, w: list[float], ids: list[int], dtype: torch.dtype) -> None:
    W, i = torch.tensor(w, dtype=dtype).reshape(4, 2), torch.tensor(ids)
    c = reads_like_torch(module.squares, [W, i])  # torch's forward and autograd, bit for bit
    # exactly: d/dW[r, j] of sum over picks of W[i_k, j]^2 is 2 * (times r is picked) * W[r, j]
    want = [2 * ids.count(r) * sp.Rational(float(W[r, j])) for r in range(4) for j in range(2)]
    assert [e.grad_executed for e in c.entries] == want
    assert c.cause.id in ("agree", "rounding")
    # the generated program's comments say the stacked rows and the power in SymPy notation over the
    # variables above, not SymPy's class names (`ImmutableDenseMatrix(W_00, ...)`, `HadamardPower(stack)`)
    comments = [line.strip() for line in c.lowered.source.splitlines() if line.strip().startswith("# ")]
    assert not any("ImmutableDenseMatrix" in t or t == "# HadamardPower(stack)" for t in comments), comments
    assert any(t.startswith("# HadamardPower(") and t.endswith(", 2)") for t in comments)
    assert any(t.startswith("# Matrix([") for t in comments)
    assert not any(t.startswith(("# Add(", "# Pow(", "# MatAdd(")) for t in comments), comments


def test_one_index_is_one_row(module: Any) -> None:
    W, v = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.25]], dtype=torch.float64), torch.tensor([2.0, -3.0], dtype=torch.float64)
    c = reads_like_torch(module.weighted, [W, torch.tensor(1), v])
    assert [e.grad_symbolic for e in c.entries] == [0, 0, 2, -3, 0, 0, 3, -1]  # W row by row, then v: W[1]


def test_nn_embedding_in_a_module_agrees_with_torch() -> None:
    torch.manual_seed(3)
    m = load_module(SOURCE, __import__("pathlib").Path(__import__("tempfile").mkdtemp()), "user_embedding_bag").Bag(5, 3).double()
    i = torch.tensor([1, 4, 1])
    c = sg.compare(m, at={"i": i})
    out = m(i)
    grads = torch.autograd.grad(out, [m.emb.weight, m.out.weight, m.out.bias])
    by = {str(e.wrt): e.grad_autograd for e in c.entries}
    assert by["emb.weight[4, 2]"] == float(grads[0][4, 2]) and by["emb.weight[1, 0]"] == float(grads[0][1, 0])
    assert by["emb.weight[0, 1]"] == 0.0 and float(grads[0][0, 1]) == 0.0  # a row no index picks
    assert c.cause.id == "agree"


@pytest.mark.parametrize("name, said", [("padded", "padding_idx"), ("renormed", "max_norm")])
def test_options_whose_backward_is_not_the_derivative_are_sentences(module: Any, name: str, said: str) -> None:
    W = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    with pytest.raises(sg.TraceError) as err:
        sg.compare(getattr(module, name), at={"W": W, "i": torch.tensor([0, 1])})
    assert f"`{said}`" in str(err.value) and "Fix:" in str(err.value) and "Traceback" not in str(err.value)


def test_a_batch_of_sequences_is_a_sentence(module: Any) -> None:
    W = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    with pytest.raises(sg.TraceError) as err:
        sg.compare(module.squares, at={"W": W, "i": torch.tensor([[0, 1], [1, 1]])})
    assert "rank 2 or more" in str(err.value) and "rank 3" in str(err.value)
